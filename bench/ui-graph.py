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
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from uibench import Server, fill  # noqa: E402

TASKS = int(os.environ.get("TASKS", "1000"))
LAYERS = int(os.environ.get("LAYERS", "20"))
REPEAT = int(os.environ.get("REPEAT", "20"))
WORKERS = os.environ.get("WORKERS", "4")


def main():
    srv = Server("ui-graph", WORKERS)
    call = srv.call
    try:
        ex = fill(srv, TASKS, LAYERS)
        cases = [("graph", "/v1/workflows/big/graph", None),
                 ("graph+exec", f"/v1/workflows/big/graph?execution={ex}", None),
                 ("detail", f"/v1/executions/{ex}", None),
                 ("detail 304", f"/v1/executions/{ex}", "etag"),
                 ("stats", "/v1/stats/executions?hours=24", None)]
        etag = call("GET", f"/v1/executions/{ex}")[1]["ETag"]
        sizes, cpu = {}, {}
        tick = os.sysconf("SC_CLK_TCK")

        def cpu_ms():
            f = Path(f"/proc/{srv.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) * 1000.0 / tick
        for name, path, cond in cases:
            c0 = cpu_ms()
            for _ in range(REPEAT):
                st, _, body = call("GET", path, headers={"If-None-Match": etag} if cond else None)
                sizes[name] = (st, len(body))
            cpu[name] = (cpu_ms() - c0) / REPEAT
        time.sleep(0.5)
        srv.log.flush()
        lines = Path(srv.log.name).read_text().splitlines()
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
        srv.stop()


if __name__ == "__main__":
    main()
