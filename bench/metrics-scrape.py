#!/usr/bin/python3
"""
metrics-scrape.py: the server time of one GET /metrics scrape, on a fresh `orch server`
(SQLite) and again once W workflows have each run (so the workflow label has W values)
and E executions are stored.

Each round sends --reps scrapes in sequence on one keep-alive loopback connection (with a
read key, as Prometheus does) and reports the median and p99 of the wall time (server time
plus loopback), the server process's CPU time per scrape (utime + stime from /proc/PID/stat
over the round) and the size of the answer.

Usage: bench/metrics-scrape.py [--orch BIN] [--workflows 100] [--executions 10000]
       [--reps 200] [--keep]
ORCH_BIN or --orch: the binary (a Release build: build-rel/src/cli/orch).
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


class Conn:
    def __init__(self, port, key):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.h = {"Authorization": f"Bearer {key}"}

    def req(self, method, path, body=None):
        h = dict(self.h)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        self.c.request(method, path, body=data, headers=h)
        r = self.c.getresponse()
        return r.status, r.read()


def scrape_round(conn, pid, reps):
    times = []
    size = 0
    t0 = cpu_ticks(pid)
    for _ in range(reps):
        s = time.perf_counter()
        status, body = conn.req("GET", "/metrics")
        times.append((time.perf_counter() - s) * 1000)
        assert status == 200, (status, body[:200])
        size = len(body)
    cpu_ms = (cpu_ticks(pid) - t0) * 1000 / TICK / reps
    times.sort()
    series = sum(1 for line in body.decode().splitlines() if line and line[0] != "#")
    return {"median_ms": statistics.median(times), "p99_ms": times[int(len(times) * 0.99) - 1],
            "cpu_ms": cpu_ms, "bytes": size, "series": series}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orch", default=os.environ.get("ORCH_BIN",
                                                     os.path.join(REPO, "build-rel/src/cli/orch")))
    ap.add_argument("--workflows", type=int, default=100)
    ap.add_argument("--executions", type=int, default=10000)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="orch-metrics-bench-")
    data = os.path.join(tmp, "data")
    key = json.loads(subprocess.run(
        [a.orch, "keys", "create", "--name", "bench", "--scope", "admin", "--json",
         "--data-dir", data], check=True, capture_output=True, text=True).stdout)["key"]
    port = free_port()
    log = open(os.path.join(tmp, "server.log"), "w")
    p = subprocess.Popen([a.orch, "server", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
                          "--workers", "2", "--log-level", "warn", "--no-ui"],
                         stdout=log, stderr=log)
    try:
        for _ in range(400):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/v1/health/live")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.05)
        conn = Conn(port, key)
        empty = scrape_round(conn, p.pid, a.reps)
        for i in range(a.workflows):
            st, body = conn.req("POST", "/v1/workflows",
                                {"name": f"bench-wf-{i:03d}",
                                 "tasks": [{"name": "a", "type": "noop"}]})
            assert st in (200, 201), body
        t = time.monotonic()
        for i in range(a.executions):
            st, body = conn.req("POST", f"/v1/workflows/bench-wf-{i % a.workflows:03d}/executions")
            assert st == 201, body
        while True:
            st, body = conn.req("GET", "/v1/executions?status=queued,running&limit=1")
            if not json.loads(body)["items"]:
                break
            time.sleep(0.2)
        load_s = time.monotonic() - t
        full = scrape_round(conn, p.pid, a.reps)
    finally:
        p.terminate()
        p.wait(timeout=60)
        log.close()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{a.executions} executions of {a.workflows} workflows submitted and run in "
          f"{load_s:.1f} s")
    print("| server | series | bytes | median ms | p99 ms | server CPU ms per scrape |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, r in (("fresh", empty),
                    (f"{a.workflows} workflows, {a.executions} executions", full)):
        print(f"| {name} | {r['series']} | {r['bytes']} | {r['median_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['cpu_ms']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
