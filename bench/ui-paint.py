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
import os
import statistics
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

sys.path.insert(0, str(Path(__file__).resolve().parent))
from uibench import Server, fill  # noqa: E402

TASKS = int(os.environ.get("TASKS", "1000"))
LAYERS = int(os.environ.get("LAYERS", "20"))
REPEAT = int(os.environ.get("REPEAT", "5"))


def main():
    srv = Server("ui-paint")
    base, key = srv.base, srv.key
    drv = None
    try:
        ex = fill(srv, TASKS, LAYERS)

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
        srv.stop()


if __name__ == "__main__":
    main()
