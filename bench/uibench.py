"""bench/uibench.py: what the web UI's benches (ui-graph.py, ui-paint.py) share: an `orch
server` on a fresh data directory and a free loopback port, with an admin key, and the store
filled with one big DAG: a workflow `big` of TASKS tasks in LAYERS layers (each task
depending on three of the layer above), all `true`, and one execution of it run to the end.

Environment: ORCH_BIN (default build-bench/src/cli/orch, a Release build).
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORCH = os.environ.get("ORCH_BIN", str(REPO / "build-bench" / "src" / "cli" / "orch"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`orch server` on a fresh data directory; its stderr (the access log) in self.log."""

    def __init__(self, bench, workers="4"):
        if not os.access(ORCH, os.X_OK):
            sys.exit(f"{bench}: no orch binary at {ORCH} (set ORCH_BIN)")
        self.work = Path(tempfile.mkdtemp(prefix=f"orch-{bench}-"))
        data = self.work / "data"
        self.key = json.loads(subprocess.run(
            [ORCH, "keys", "create", "--name", "b", "--scope", "admin", "--data-dir", str(data),
             "--json"], check=True, capture_output=True, text=True).stdout)["key"]
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log = open(self.work / "server.err", "w+")
        self.proc = subprocess.Popen([ORCH, "server", "--listen", f"127.0.0.1:{port}",
                                      "--data-dir", str(data), "--workers", str(workers)],
                                     stderr=self.log, stdout=subprocess.DEVNULL)
        for _ in range(600):
            try:
                if self.call("GET", "/v1/health/live", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)

    def call(self, method, path, body=None, headers=None, timeout=300):
        """One request with the admin key: (status, headers, body bytes), any status."""
        h = {"Authorization": f"Bearer {self.key}", **(headers or {})}
        data = json.dumps(body).encode() if body is not None else None
        if data:
            h["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def json(self, method, path, body=None):
        st, _, data = self.call(method, path, body)
        assert st < 400, f"{method} {path}: {st} {data[:300]!r}"
        return json.loads(data or b"null")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        self.log.close()


def dag_tasks(tasks, layers):
    """The tasks of the big DAG: t00000 ...; each below the first layer depends on three of
    the layer above."""
    per = max(1, tasks // layers)
    out = []
    for i in range(tasks):
        layer, j = divmod(i, per)
        t = {"name": f"t{i:05d}", "command": "true"}
        if layer:
            t["dependsOn"] = sorted({f"t{(layer - 1) * per + (j * 7 + k * 13) % per:05d}"
                                     for k in range(3)})
        out.append(t)
    return out


def fill(srv, tasks, layers):
    """Store workflow `big` and run one execution of it to the end; returns its id."""
    srv.json("POST", "/v1/workflows", {"name": "big", "tasks": dag_tasks(tasks, layers)})
    ex = srv.json("POST", "/v1/workflows/big/executions", {})["id"]
    while srv.json("GET", f"/v1/executions/{ex}")["status"] not in ("succeeded", "failed"):
        time.sleep(0.5)
    return ex
