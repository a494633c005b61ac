#!/usr/bin/python3
"""bench/ui-graph.py: server time of what the web UI's execution page polls, from the
server's own access log (the "N.Nms" of each request line).

A fresh data directory and `orch server` on a free loopback port; a workflow of TASKS
tasks (default 1000: LAYERS layers, each task depending on three of the layer above), one
execution of it (all `true` tasks, run to the end), then REPEAT times each of:
  graph        GET /v1/workflows/big/graph                (layout computed in C)
  graph+exec   GET /v1/workflows/big/graph?execution=ID   (with statuses)
  detail       GET /v1/executions/ID
  detail 304   the same with If-None-Match (an unchanged page's poll)
  stats        GET /v1/stats/executions?hours=24
Prints the median and the maximum server time of each (wall time, from the access log:
on a loaded machine it includes waiting for a CPU), the server's CPU time per request
(utime + stime of the process from /proc, over the REPEAT requests), and the answer's size.

Environment: ORCH_BIN (default build-bench/src/cli/orch, a Release build), TASKS, LAYERS
(20), REPEAT (20), WORKERS (4).
"""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ORCH = os.environ.get("ORCH_BIN", str(REPO / "build-bench" / "src" / "cli" / "orch"))
TASKS = int(os.environ.get("TASKS", "1000"))
LAYERS = int(os.environ.get("LAYERS", "20"))
REPEAT = int(os.environ.get("REPEAT", "20"))
WORKERS = os.environ.get("WORKERS", "4")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if not os.access(ORCH, os.X_OK):
        sys.exit(f"ui-graph: no orch binary at {ORCH} (set ORCH_BIN)")
    work = Path(tempfile.mkdtemp(prefix="orch-ui-bench-"))
    data = work / "data"
    key = json.loads(subprocess.run([ORCH, "keys", "create", "--name", "b", "--scope", "admin",
                                     "--data-dir", str(data), "--json"], check=True,
                                    capture_output=True, text=True).stdout)["key"]
    port = free_port()
    log = open(work / "server.err", "w+")
    srv = subprocess.Popen([ORCH, "server", "--listen", f"127.0.0.1:{port}", "--data-dir",
                            str(data), "--workers", WORKERS], stderr=log,
                           stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def call(method, path, body=None, headers=None):
        h = {"Authorization": f"Bearer {key}", **(headers or {})}
        data_ = json.dumps(body).encode() if body is not None else None
        if data_:
            h["Content-Type"] = "application/json"
        req = urllib.request.Request(base + path, data=data_, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    try:
        for _ in range(600):
            try:
                if call("GET", "/v1/health/live")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        per = max(1, TASKS // LAYERS)
        tasks = []
        for i in range(TASKS):
            layer, j = divmod(i, per)
            t = {"name": f"t{i:05d}", "command": "true"}
            if layer:
                t["dependsOn"] = sorted({f"t{(layer - 1) * per + (j * 7 + k * 13) % per:05d}"
                                         for k in range(3)})
            tasks.append(t)
        assert call("POST", "/v1/workflows", {"name": "big", "tasks": tasks})[0] in (200, 201)
        ex = json.loads(call("POST", "/v1/workflows/big/executions", {})[2])["id"]
        while json.loads(call("GET", f"/v1/executions/{ex}")[2])["status"] not in (
                "succeeded", "failed"):
            time.sleep(0.5)
        cases = [("graph", "/v1/workflows/big/graph", None),
                 ("graph+exec", f"/v1/workflows/big/graph?execution={ex}", None),
                 ("detail", f"/v1/executions/{ex}", None),
                 ("detail 304", f"/v1/executions/{ex}", "etag"),
                 ("stats", "/v1/stats/executions?hours=24", None)]
        etag = call("GET", f"/v1/executions/{ex}")[1]["ETag"]
        sizes, cpu = {}, {}
        tick = os.sysconf("SC_CLK_TCK")

        def cpu_ms():
            f = Path(f"/proc/{srv.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) * 1000.0 / tick
        for name, path, cond in cases:
            c0 = cpu_ms()
            for _ in range(REPEAT):
                st, _, body = call("GET", path, headers={"If-None-Match": etag} if cond else None)
                sizes[name] = (st, len(body))
            cpu[name] = (cpu_ms() - c0) / REPEAT
        time.sleep(0.5)
        log.flush()
        lines = Path(log.name).read_text().splitlines()
        gets = [float(m.group(1)) for m in
                (re.search(r"INFO \[API\] GET \S+ \d+ ([\d.]+)ms", line) for line in lines) if m]
        gets = gets[-len(cases) * REPEAT:]  # the requests above, in order
        print(f"{TASKS} tasks in {LAYERS} layers, {REPEAT} requests each (server time from "
              f"the access log)")
        print(f"{'request':<12} {'status':>6} {'bytes':>9} {'median ms':>10} {'max ms':>8} "
              f"{'CPU ms':>7}")
        for k, (name, path, cond) in enumerate(cases):
            st, size = sizes[name]
            t = gets[k * REPEAT:(k + 1) * REPEAT]
            print(f"{name:<12} {st:>6} {size:>9} {statistics.median(t):>10.1f} {max(t):>8.1f} "
                  f"{cpu[name]:>7.1f}")
    finally:
        srv.terminate()
        srv.wait(timeout=60)
        log.close()


if __name__ == "__main__":
    main()
