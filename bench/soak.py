#!/usr/bin/python3
"""
bench/soak.py: a steady load on an orch server for a long time, and what it does to the server.

Requests are sent at a fixed rate (open loop: request i is due at start + i / rate, whatever
the answers before it took), by THREADS threads on keep-alive connections of their own, in a
fixed mix:

    submit  POST /v1/workflows/soak/executions   (one command task that runs `true`)
    list    GET  /v1/executions?limit=20
    get     GET  /v1/executions/{id}            (an execution submitted earlier)
    logs    GET  /v1/executions/{id}/logs       (its captured output)

Every SAMPLE seconds the server's RSS (VmRSS of /proc/PID/status) and open descriptors
(/proc/PID/fd) are read. At the end it prints a table per minute (requests, errors, late
sends, p50/p99/max latency, RSS and descriptors at the end of the minute), the totals, and
the growth of RSS and descriptors after the warm-up (`--warmup` seconds), and writes the
same as JSON (`--json FILE`).

Latency is measured from the moment a request was due, so a server (or client) that falls
behind shows it in the figures instead of silently lowering the rate; `late` counts the
requests sent more than 100 ms after they were due (no thread was free: the answers before
took too long, or the client lacked CPU). The service time (from the send to the answer) is
given too, and the CPU used per minute by the server and by this client (% of one core).

Two ways to use it:
  bench/soak.py --orch build-rel/src/cli/orch           # starts its own server (SQLite)
  ORCH_API_KEY=sk_... bench/soak.py --url http://127.0.0.1:PORT --pid PID   # a running one

With --orch it makes a data directory, an admin key (`orch keys create`), starts
`orch server --workers WORKERS` on a free port, registers the workflow, runs the load and
stops the server with SIGTERM (its exit status and any line of its log at warn level or
above are reported). With --url the workflow is registered on that server.

Exit status: 0 when every answer was the expected 2xx; 1 otherwise (the errors are listed).
Growth is reported, not judged, unless --max-rss-growth-kib / --max-fd-growth are given:
then exceeding either also exits 1.
"""
import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

WORKFLOW = {"name": "soak", "tasks": [{"name": "t", "command": ["true"]}]}


def parse_mix(text):
    mix = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if k not in ("submit", "list", "get", "logs") or not v.isdigit():
            raise SystemExit(f"soak.py: bad --mix part '{part}' (submit=N,list=N,get=N,logs=N)")
        mix[k] = int(v)
    if sum(mix.values()) <= 0:
        raise SystemExit("soak.py: --mix sums to 0")
    return mix


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_sample(pid):
    """(RSS KiB, open descriptors, CPU seconds) of pid, or (None, None, None) if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        with open(f"/proc/{pid}/stat") as f:
            st = f.read().rsplit(")", 1)[1].split()
        cpu = (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
        return rss, fds, cpu
    except (OSError, StopIteration, IndexError, ValueError):
        return None, None, None


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0.0
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


class Client:
    """One keep-alive connection; reconnects after a connection error (counted as an error)."""

    def __init__(self, host, port, key):
        self.host, self.port = host, port
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.conn = None

    def call(self, method, path, body=None, timeout=30):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            self.conn.request(method, path, body=body, headers=self.headers)
            r = self.conn.getresponse()
            data = r.read()
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return r.status, data
        except (OSError, http.client.HTTPException) as e:
            try:
                self.conn.close()
            except OSError:
                pass
            self.conn = None
            return None, repr(e).encode()


class Soak:
    def __init__(self, args, host, port, key, pid):
        self.a = args
        self.host, self.port, self.key, self.pid = host, port, key, pid
        self.mix = parse_mix(args.mix)
        # The kind of request i: a fixed repeating pattern spread evenly over the mix.
        total = sum(self.mix.values())
        self.pattern = []
        acc = {k: 0.0 for k in self.mix}
        for _ in range(total):
            for k in acc:
                acc[k] += self.mix[k] / total
            k = max(acc, key=acc.get)
            acc[k] -= 1
            self.pattern.append(k)
        self.ids = []  # executions submitted (ids), for get and logs
        self.ids_lock = threading.Lock()
        self.lock = threading.Lock()
        self.minutes = {}  # minute -> {"lat": [...], "n", "errors", "late", by kind}
        self.errors = []  # first few error descriptions
        self.samples = []  # (t, rss_kib, fds)
        self.stop = threading.Event()
        self.t0 = None

    def bucket(self, minute):
        b = self.minutes.get(minute)
        if b is None:
            b = self.minutes[minute] = {"lat": [], "svc": [], "n": 0, "errors": 0, "late": 0,
                                        "kinds": {k: 0 for k in self.mix}}
        return b

    def one(self, client, kind, rnd):
        if kind in ("get", "logs"):
            with self.ids_lock:
                eid = self.ids[rnd % len(self.ids)] if self.ids else None
            if eid is None:
                kind = "list"
        if kind == "submit":
            st, body = client.call("POST", "/v1/workflows/soak/executions", b"{}")
            if st == 201:
                try:
                    eid = json.loads(body)["id"]
                    with self.ids_lock:
                        self.ids.append(eid)
                        if len(self.ids) > 2000:
                            del self.ids[:1000]
                except (ValueError, KeyError):
                    return kind, False, f"submit: no id in {body[:200]!r}"
            return kind, st == 201, f"submit: {st} {body[:200]!r}"
        if kind == "list":
            st, body = client.call("GET", "/v1/executions?limit=20")
        elif kind == "get":
            st, body = client.call("GET", f"/v1/executions/{eid}")
        else:
            st, body = client.call("GET", f"/v1/executions/{eid}/logs")
        return kind, st == 200, f"{kind}: {st} {body[:200]!r}"

    def worker(self, j):
        client = Client(self.host, self.port, self.key)
        period = 1.0 / self.a.rate
        threads = self.a.threads
        n_total = int(self.a.rate * self.a.duration)
        i = j
        while i < n_total and not self.stop.is_set():
            due = self.t0 + i * period
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
                now = time.monotonic()
            kind = self.pattern[i % len(self.pattern)]
            late = now - due > 0.1
            sent = now
            kind, ok, what = self.one(client, kind, i * 7919)
            end = time.monotonic()
            minute = int((due - self.t0) // 60)
            with self.lock:
                b = self.bucket(minute)
                b["n"] += 1
                b["kinds"][kind] = b["kinds"].get(kind, 0) + 1
                b["lat"].append(end - due)
                b["svc"].append(end - sent)
                b.setdefault("svc_kind", {}).setdefault(kind, []).append(end - sent)
                if late:
                    b["late"] += 1
                if not ok:
                    b["errors"] += 1
                    if len(self.errors) < 20:
                        self.errors.append(f"t={due - self.t0:.1f}s {what}")
            i += threads

    def sampler(self):
        while not self.stop.is_set():
            rss, fds, cpu = proc_sample(self.pid)
            if rss is None:
                self.errors.append(f"t={time.monotonic() - self.t0:.1f}s the server is gone")
                self.stop.set()
                return
            self.samples.append((time.monotonic() - self.t0, rss, fds, cpu, os.times()[0] +
                                 os.times()[1]))
            self.stop.wait(self.a.sample)

    def run(self):
        self.t0 = time.monotonic() + 0.2
        ts = [threading.Thread(target=self.worker, args=(j,), daemon=True)
              for j in range(self.a.threads)]
        s = threading.Thread(target=self.sampler, daemon=True)
        s.start()
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        elapsed = time.monotonic() - self.t0
        self.stop.set()
        s.join()
        rss, fds, cpu = proc_sample(self.pid)
        if rss is not None:
            self.samples.append((elapsed, rss, fds, cpu, os.times()[0] + os.times()[1]))
        return elapsed

    def report(self, elapsed):
        rows = []
        for m in sorted(self.minutes):
            b = self.minutes[m]
            lat = sorted(b["lat"])
            svc = sorted(b["svc"])
            end = [s for s in self.samples if s[0] < (m + 1) * 60]
            begin = [s for s in self.samples if s[0] < m * 60] or self.samples[:1]
            span = end[-1][0] - begin[-1][0] if end and begin else 0
            rows.append({
                "minute": m + 1, "requests": b["n"], "errors": b["errors"], "late": b["late"],
                "kinds": b["kinds"],
                "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
                "max_ms": (lat[-1] if lat else 0) * 1000,
                "svc_p50_ms": pct(svc, 50) * 1000, "svc_p99_ms": pct(svc, 99) * 1000,
                "svc_p99_ms_by_kind": {k: pct(sorted(v), 99) * 1000
                                       for k, v in b.get("svc_kind", {}).items()},
                "server_cpu_pct": 100 * (end[-1][3] - begin[-1][3]) / span if span > 0 else None,
                "client_cpu_pct": 100 * (end[-1][4] - begin[-1][4]) / span if span > 0 else None,
                "rss_kib": end[-1][1] if end else None, "fds": end[-1][2] if end else None,
            })
        after = [s for s in self.samples if s[0] >= self.a.warmup]
        at_warm = after[0] if after else None
        growth = None
        if at_warm:
            growth = {
                "warmup_s": self.a.warmup,
                "rss_kib_at_warmup": at_warm[1], "rss_kib_max_after": max(s[1] for s in after),
                "rss_kib_last": after[-1][1],
                "fds_at_warmup": at_warm[2], "fds_max_after": max(s[2] for s in after),
                "fds_last": after[-1][2],
            }
            growth["rss_growth_kib"] = growth["rss_kib_max_after"] - growth["rss_kib_at_warmup"]
            growth["fd_growth"] = growth["fds_max_after"] - growth["fds_at_warmup"]
        total = sum(r["requests"] for r in rows)
        return {
            "rate": self.a.rate, "duration_s": self.a.duration, "elapsed_s": elapsed,
            "threads": self.a.threads, "mix": self.mix, "requests": total,
            "achieved_rate": total / elapsed if elapsed > 0 else 0,
            "errors": sum(r["errors"] for r in rows), "late": sum(r["late"] for r in rows),
            "error_samples": self.errors, "minutes": rows, "growth": growth,
            "samples": self.samples, "loadavg_end": os.getloadavg(),
            "submitted": len(self.ids),
        }


def print_report(rep, out=sys.stdout):
    la = rep.get("loadavg_start")
    print(f"soak: {rep['requests']} requests in {rep['elapsed_s']:.1f} s "
          f"({rep['achieved_rate']:.0f}/s, asked {rep['rate']}/s), {rep['errors']} errors, "
          f"{rep['late']} sent >100 ms late; load average at start "
          f"{la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, at end "
          f"{rep['loadavg_end'][0]:.2f} {rep['loadavg_end'][1]:.2f} {rep['loadavg_end'][2]:.2f}"
          if la else "", file=out)
    print("| minute | requests | errors | late | p50 ms | p99 ms | max ms | service p50 / p99 ms "
          "| server CPU | client CPU | RSS MiB | fds |", file=out)
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", file=out)
    for r in rep["minutes"]:
        rss = f"{r['rss_kib'] / 1024:.1f}" if r["rss_kib"] else "-"
        scpu = f"{r['server_cpu_pct']:.0f}%" if r["server_cpu_pct"] is not None else "-"
        ccpu = f"{r['client_cpu_pct']:.0f}%" if r["client_cpu_pct"] is not None else "-"
        print(f"| {r['minute']} | {r['requests']} | {r['errors']} | {r['late']} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | "
              f"{r['svc_p50_ms']:.2f} / {r['svc_p99_ms']:.2f} | {scpu} | {ccpu} | {rss} | "
              f"{r['fds'] if r['fds'] is not None else '-'} |", file=out)
    g = rep["growth"]
    if g:
        print(f"after {g['warmup_s']} s: RSS {g['rss_kib_at_warmup'] / 1024:.1f} MiB -> max "
              f"{g['rss_kib_max_after'] / 1024:.1f} MiB (last {g['rss_kib_last'] / 1024:.1f}), "
              f"growth {g['rss_growth_kib']} KiB; descriptors {g['fds_at_warmup']} -> max "
              f"{g['fds_max_after']} (last {g['fds_last']}), growth {g['fd_growth']}", file=out)
    for e in rep["error_samples"]:
        print(f"  error: {e}", file=out)


def api(host, port, key, method, path, body=None):
    c = Client(host, port, key)
    st, data = c.call(method, path, json.dumps(body).encode() if body is not None else None)
    if c.conn:
        c.conn.close()
    return st, data


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orch", help="start a server with this binary")
    ap.add_argument("--url", help="use the server at this URL (key in $ORCH_API_KEY)")
    ap.add_argument("--pid", type=int, help="the pid of the server at --url (for RSS and fds)")
    ap.add_argument("--rate", type=float, default=1000, help="requests per second (1000)")
    ap.add_argument("--duration", type=float, default=600, help="seconds (600)")
    ap.add_argument("--warmup", type=float, default=60,
                    help="growth is measured after this many seconds (60)")
    ap.add_argument("--mix", default="submit=10,list=40,get=30,logs=20")
    ap.add_argument("--threads", type=int, default=64, help="client threads/connections (64)")
    ap.add_argument("--workers", type=int, default=4, help="--orch: the server's worker slots")
    ap.add_argument("--sample", type=float, default=2, help="seconds between RSS/fd samples")
    ap.add_argument("--json", help="write the report as JSON to this file")
    ap.add_argument("--max-rss-growth-kib", type=int)
    ap.add_argument("--max-fd-growth", type=int)
    ap.add_argument("--keep", action="store_true", help="--orch: keep the data directory")
    a = ap.parse_args()
    if bool(a.orch) == bool(a.url):
        ap.error("give --orch or --url")
    if a.url and not a.pid:
        ap.error("--url needs --pid")
    if a.rate <= 0 or a.duration <= 0 or a.threads <= 0:
        ap.error("--rate, --duration and --threads must be positive")

    proc = tmp = None
    srv_err = None
    try:
        if a.orch:
            tmp = tempfile.mkdtemp(prefix="orch-soak.")
            data = os.path.join(tmp, "data")
            env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
            env["ORCH_NO_PROGRESS"] = "1"
            k = subprocess.run([a.orch, "keys", "create", "--name", "soak", "--scope", "admin",
                                "--data-dir", data, "--json"], capture_output=True, text=True,
                               env=env, check=True)
            key = json.loads(k.stdout)["key"]
            port = free_port()
            host = "127.0.0.1"
            srv_err = open(os.path.join(tmp, "server.err"), "w+")
            proc = subprocess.Popen([a.orch, "server", "--listen", f"{host}:{port}", "--data-dir",
                                     data, "--workers", str(a.workers), "--log-level", "warn"],
                                    stdout=subprocess.DEVNULL, stderr=srv_err,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
            pid = proc.pid
            end = time.monotonic() + 30
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"soak.py: the server exited with {proc.returncode}")
                try:
                    st, _ = api(host, port, key, "GET", "/v1/health")
                    if st == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > end:
                    raise SystemExit("soak.py: the server did not become healthy in 30 s")
                time.sleep(0.1)
        else:
            u = urllib.parse.urlsplit(a.url)
            host, port, pid = u.hostname, u.port or 80, a.pid
            key = os.environ.get("ORCH_API_KEY")
            if not key:
                raise SystemExit("soak.py: --url needs the key in $ORCH_API_KEY")
        st, body = api(host, port, key, "POST", "/v1/workflows", WORKFLOW)
        if st not in (200, 201):
            raise SystemExit(f"soak.py: cannot register the workflow: {st} {body[:300]!r}")
        s = Soak(a, host, port, key, pid)
        la = os.getloadavg()
        elapsed = s.run()
        rep = s.report(elapsed)
        rep["loadavg_start"] = la
        failed = rep["errors"] > 0
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                rc = proc.wait()
            rep["server_exit"] = rc
            srv_err.seek(0)
            rep["server_log"] = srv_err.read()[-4000:]
            if rc != 0 or rep["server_log"].strip():
                failed = True
        g = rep["growth"]
        if g and a.max_rss_growth_kib is not None and g["rss_growth_kib"] > a.max_rss_growth_kib:
            failed = True
            rep["error_samples"].append(f"RSS grew by {g['rss_growth_kib']} KiB after "
                                        f"{a.warmup} s (bound {a.max_rss_growth_kib})")
        if g and a.max_fd_growth is not None and g["fd_growth"] > a.max_fd_growth:
            failed = True
            rep["error_samples"].append(f"descriptors grew by {g['fd_growth']} after "
                                        f"{a.warmup} s (bound {a.max_fd_growth})")
        print_report(rep)
        if proc is not None:
            print(f"server exit status {rep['server_exit']}; its log (warn and above): "
                  f"{len(rep['server_log'].splitlines())} lines")
            if rep["server_log"].strip():
                print(rep["server_log"][-2000:])
        if a.json:
            with open(a.json, "w") as f:
                json.dump(rep, f, indent=1)
        return 1 if failed else 0
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if srv_err:
            srv_err.close()
        if tmp and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp:
            print(f"kept: {tmp}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
