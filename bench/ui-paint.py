#!/usr/bin/python3
"""bench/ui-paint.py: how long headless Chromium takes to show an execution page of a big
DAG, from the start of the navigation to the first complete page (graph, timeline, task
table) and to its paint, as the page marks them (performance marks
`orch:execution-rendered` and `orch:execution-painted` of ui/execution.js).

A fresh data directory and `orch server`; a workflow of TASKS tasks (default 1000, LAYERS
layers, each task depending on three of the layer above), one execution of it run to the
end; then the page is loaded REPEAT times in a 1280x800 window, signed in with a key.
Prints the median and the maximum of each mark, and the bytes the first load transferred.

Environment: ORCH_BIN (default build-bench/src/cli/orch, a Release build), TASKS, LAYERS
(20), REPEAT (5). Needs chromium, chromium-driver and python3-selenium.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO = Path(__file__).resolve().parent.parent
ORCH = os.environ.get("ORCH_BIN", str(REPO / "build-bench" / "src" / "cli" / "orch"))
TASKS = int(os.environ.get("TASKS", "1000"))
LAYERS = int(os.environ.get("LAYERS", "20"))
REPEAT = int(os.environ.get("REPEAT", "5"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if not os.access(ORCH, os.X_OK):
        sys.exit(f"ui-paint: no orch binary at {ORCH} (set ORCH_BIN)")
    work = Path(tempfile.mkdtemp(prefix="orch-ui-paint-"))
    data = work / "data"
    key = json.loads(subprocess.run([ORCH, "keys", "create", "--name", "b", "--scope", "admin",
                                     "--data-dir", str(data), "--json"], check=True,
                                    capture_output=True, text=True).stdout)["key"]
    port = free_port()
    log = open(work / "server.err", "w")
    srv = subprocess.Popen([ORCH, "server", "--listen", f"127.0.0.1:{port}", "--data-dir",
                            str(data), "--workers", "4"], stderr=log, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def call(method, path, body=None):
        h = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        req = urllib.request.Request(base + path, method=method, headers=h,
                                     data=json.dumps(body).encode() if body is not None else None)
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read() or b"null")

    drv = None
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(base + "/v1/health/live", timeout=2)
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
        call("POST", "/v1/workflows", {"name": "big", "tasks": tasks})
        ex = call("POST", "/v1/workflows/big/executions", {})["id"]
        while call("GET", f"/v1/executions/{ex}")["status"] not in ("succeeded", "failed"):
            time.sleep(0.5)

        opts = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,800"):
            opts.add_argument(a)
        drv = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        drv.set_script_timeout(300)
        drv.set_page_load_timeout(300)
        drv.get(base + "/login")
        drv.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch('/v1/session', {method: 'POST', headers: {'Content-Type': 'application/json'},"
            " body: JSON.stringify({key: arguments[0]})}).then(r => done(r.status));", key)
        marks = {"orch:execution-detail": [], "orch:execution-graph": [],
                 "orch:execution-timeline": [], "orch:execution-table": [],
                 "orch:execution-rendered": [], "orch:execution-painted": [],
                 "orch:execution-graph-whole": []}
        transferred = None
        cost = {"ScriptDuration": [], "RecalcStyleDuration": [], "LayoutDuration": [], "TaskDuration": []}
        drv.execute_cdp_cmd("Performance.enable", {})
        for n in range(REPEAT):
            drv.get(f"{base}/executions/{ex}")
            end = time.monotonic() + 300
            while time.monotonic() < end:
                got = drv.execute_script(
                    "return performance.getEntriesByName('orch:execution-painted').length &&"
                    " (performance.getEntriesByName('orch:execution-graph-whole').length ||"
                    "  document.querySelectorAll('#graph g.node').length >= arguments[0])", TASKS // 2)
                if got:
                    break
                time.sleep(0.05)
            for m in marks:
                marks[m].append(drv.execute_script(
                    "const e = performance.getEntriesByName(arguments[0]);"
                    "return e.length ? e[0].startTime : null", m))
            after = {m["name"]: m["value"] for m in drv.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}
            for k in cost:
                cost[k].append(1000 * after.get(k, 0))  # counted from the navigation
            if n == 0:
                transferred = drv.execute_script(
                    "return performance.getEntriesByType('navigation')[0].transferSize + "
                    "performance.getEntriesByType('resource').reduce((a, r) => a + r.transferSize, 0)")
        slow = drv.execute_script(
            "return performance.getEntriesByType('resource').map(r => [r.name.replace(location.origin, ''),"
            " Math.round(r.startTime), Math.round(r.duration), r.transferSize])"
            ".sort((a, b) => b[2] - a[2]).slice(0, 6)")
        print(f"execution page of {TASKS} tasks in {LAYERS} layers, {REPEAT} loads "
              f"(ms since the navigation started; first load transferred {transferred} bytes)")
        for m, v in marks.items():
            v = [x for x in v if x is not None]
            if v:
                print(f"{m:<26} median {statistics.median(v):8.1f}  max {max(v):8.1f}")
        print("the renderer's main thread per load, median ms (CDP Performance.getMetrics): " +
              ", ".join(f"{k[:-8].lower()} {statistics.median(v):.0f}" for k, v in cost.items()))
        print("slowest requests of the last load (path, start ms, duration ms, bytes):")
        for r in slow:
            print(f"  {r[0][:70]:<70} {r[1]:>6} {r[2]:>6} {r[3]:>8}")
    finally:
        if drv:
            drv.quit()
        srv.terminate()
        srv.wait(timeout=60)
        log.close()


if __name__ == "__main__":
    main()
