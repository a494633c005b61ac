#!/usr/bin/python3
"""
ui-server.py: the web UI's cost to the server, three measurements against a real `orch server`
on a SQLite store filled straight through SQL (bench/api-fill.py), for each store size:

1. latency of the executions page's requests: single sequential requests on one keep-alive
   loopback connection, median and p99 of the wall time (server time plus loopback), for
   GET /v1/executions newest first, with status / workflow / time-range / parent filters,
   keyset next pages (the API's nextCursor), /v1/stats/executions?hours=24 and /v1/health;
2. idle polling: PAGES open pages (a mix of the UI's pages), each on its own keep-alive
   session with the session cookie, sending its page's requests at the page's intervals
   (ui/*.js: If-None-Match where the page sends it) for POLL seconds while nothing runs; the
   server process's CPU time (utime + stime from /proc/PID/stat) over the window, as % of one
   CPU;
3. first load of each page: bytes of index.html, every asset it loads (app.js imports every
   module statically) and the page's first API answers (bodies plus response headers).
With --pg the store is a private PostgreSQL server (tests/pg/start-pg.sh) filled with COPY.

Usage: bench/ui-server.py [--orch BIN] [--sizes 10000,1000000] [--reps 50] [--poll 60]
       [--pages 20] [--without PATH] [--pg] [--keep]
ORCH_BIN or --orch: the binary (a Release build: build-rel/src/cli/orch).
"""
import argparse
import gzip
import http.client
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

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


def pg_ticks(pgdir):
    """CPU ticks of the PostgreSQL server: the postmaster and its children (its backends)."""
    if not pgdir:
        return 0
    with open(os.path.join(pgdir, "data", "postmaster.pid")) as f:
        master = int(f.readline())
    total = cpu_ticks(master)
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == master:
                    total += int(fields[11]) + int(fields[12])
            except OSError:
                pass
    return total


class Conn:
    def __init__(self, port, headers):
        self.port = port
        self.headers = dict(headers)
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.etags = {}

    def get(self, path, cache=False, extra=None):
        h = dict(self.headers)
        if extra:
            h.update(extra)
        if cache and path in self.etags:
            h["If-None-Match"] = self.etags[path]
        t0 = time.perf_counter()
        self.c.request("GET", path, headers=h)
        r = self.c.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        if r.status not in (200, 304):
            raise RuntimeError(f"GET {path} -> {r.status} {body[:200]!r}")
        tag = r.getheader("ETag")
        if tag:
            self.etags[path] = tag
        head = sum(len(k) + len(v) + 4 for k, v in r.getheaders()) + 17
        return r.status, body, dt, head


def q(**kw):
    kw = {k: v for k, v in kw.items() if v is not None}
    return "?" + urllib.parse.urlencode(kw) if kw else ""


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)


def fill(orch, data, n):
    out = subprocess.run([orch, "keys", "create", "--name", "bench", "--scope", "admin",
                          "--data-dir", data, "--json"], check=True, capture_output=True, text=True)
    key = json.loads(out.stdout)["key"]
    db = os.path.join(data, "orch.db")
    t0 = time.time()
    mid = subprocess.run([sys.executable, os.path.join(HERE, "api-fill.py"), db, str(n)],
                         check=True, capture_output=True, text=True).stdout.strip()
    # A second, rarer workflow (1%) interleaved with the newest, and 20 children of one
    # execution in the middle (the parent filter).
    subprocess.run([sys.executable, os.path.join(HERE, "api-fill.py"), db, str(max(n // 100, 10)),
                    "bench-rare"], check=True, capture_output=True, text=True)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("UPDATE executions SET parent_id = ?, parent_task_idx = 0 WHERE id IN"
                " (SELECT id FROM executions WHERE workflow = 'bench-rare' ORDER BY id LIMIT 20)",
                (mid,))
    lo, hi = con.execute("SELECT min(created_at), max(created_at) FROM executions").fetchone()
    con.close()
    return key, mid, lo, hi, time.time() - t0


def pg_fill(orch, data, url, n):
    """The same rows as api-fill.py, into PostgreSQL with COPY (orch creates the schema)."""
    env = dict(os.environ, DATABASE_URL=url)
    os.makedirs(data, exist_ok=True)
    out = subprocess.run([orch, "keys", "create", "--name", "bench", "--scope", "admin", "--json"],
                         check=True, capture_output=True, text=True, env=env)
    key = json.loads(out.stdout)["key"]
    t0 = time.time()
    spec = __import__("importlib.util").util.spec_from_file_location("fill", os.path.join(HERE, "api-fill.py"))
    fill_mod = __import__("importlib.util").util.module_from_spec(spec)
    spec.loader.exec_module(fill_mod)
    now = int(time.time() * 1000)
    mid = None

    def copy(table, cols, rows):
        # Triggers off (the counts per hour are made below, as migration 11 makes them): the
        # deferred triggers of executions_hourly would update one row per hour and status
        # 200,000 times in one transaction, each walking the row's versions made before it.
        text = "".join("\t".join("\\N" if v is None else str(v) for v in r) + "\n" for r in rows)
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                        "SET session_replication_role = replica", "-c",
                        f"COPY {table} ({cols}) FROM STDIN"], input=text, text=True, check=True)

    for wf, count in (("bench-history", n), ("bench-rare", max(n // 100, 10))):
        start = now - count - 1000
        d = json.dumps({"name": wf, "tasks": [{"name": "work", "command": ["true"]}]})
        subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                        "INSERT INTO workflows (name, version, definition, created_at) VALUES"
                        f" ('{wf}', 1, '{d}', {start})"], check=True)
        for base in range(0, count, 200000):
            ex, tr, at = [], [], []
            for i in range(base, min(count, base + 200000)):
                c = start + i
                eid = fill_mod.make_id("ex_", c, i)
                failed = i % 10 == 7
                st = "failed" if failed else "succeeded"
                err = "exit status 1" if failed else None
                ex.append((eid, wf, 1, st, "{}", c, c + 1, c + 40, "task 'work' failed: exit status 1" if failed else None))
                tr.append((eid, 0, "work", st, 1, None, c + 1, c + 40, err))
                at.append((eid, 0, 1, st, "bench-host:1", 100000 + i % 50000, 100000 + i % 50000, 0,
                           c + 1, c + 40, 1 if failed else 0, 0, err))
                if wf == "bench-history" and i == n // 2:
                    mid = eid
            copy("executions", "id, workflow, workflow_version, status, params, created_at,"
                 " started_at, finished_at, error", ex)
            copy("task_runs", "execution_id, idx, name, status, attempt, available_at, started_at,"
                 " finished_at, error", tr)
            copy("attempts", "execution_id, task_idx, number, status, node, pid, pgid, proc_start,"
                 " started_at, finished_at, exit_code, signal, error", at)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                    f"UPDATE executions SET parent_id = '{mid}', parent_task_idx = 0 WHERE id IN"
                    " (SELECT id FROM executions WHERE workflow = 'bench-rare' ORDER BY id LIMIT 20)"],
                   check=True)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c",
                    "DELETE FROM executions_hourly", "-c",
                    "INSERT INTO executions_hourly (hour, status, n) SELECT created_at / 3600000,"
                    " status, count(*) FROM executions GROUP BY created_at / 3600000, status"],
                   check=True)
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", "VACUUM ANALYZE"],
                   check=True)
    lo, hi = subprocess.run(["psql", "-X", "-At", "-F", " ", "-d", url, "-c",
                             "SELECT min(created_at), max(created_at) FROM executions"],
                            check=True, capture_output=True, text=True).stdout.split()
    return key, mid, int(lo), int(hi), time.time() - t0


def pg_plans(url, lo, hi):
    """PostgreSQL's plans of the list's statements (src/store/postgres.c, values inlined as the
    planner sees bound ones): the newest 50, and the middle 1% range as the store sends it
    (executions_created_at chosen: ORDER BY id || '') and as a walk of the ids."""
    m = lo + (hi - lo) // 2
    u = m + (hi - lo) // 100
    out = []
    for name, sql in (
            ("newest 50", "SELECT * FROM executions WHERE created_at >= -9223372036854775808"
             " AND created_at < 9223372036854775807 ORDER BY id DESC LIMIT 50"),
            ("1% in the middle, range", f"SELECT * FROM executions WHERE created_at >= {m}"
             f" AND created_at < {u} ORDER BY id || '' DESC LIMIT 50"),
            ("1% in the middle, walk", f"SELECT * FROM executions WHERE created_at >= {m}"
             f" AND created_at < {u} ORDER BY id DESC LIMIT 50")):
        plan = subprocess.run(["psql", "-X", "-At", "-d", url, "-c", "EXPLAIN (ANALYZE, COSTS OFF,"
                               " TIMING OFF, SUMMARY ON) " + sql],
                              check=True, capture_output=True, text=True).stdout
        out.append((name, [x.strip() for x in plan.splitlines() if x.strip()]))
    return out


def start_server(orch, data, port, log, url=None):
    p = subprocess.Popen([orch, "server", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
                          "--workers", "4", "--log-level", "warn"] +
                         (["--database-url", url] if url else []), stdout=log, stderr=log)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v1/health/scheduler")
            c.getresponse().read()
            return p
        except OSError:
            if p.poll() is not None:
                raise RuntimeError("the server exited")
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def latency(port, key, mid, lo, hi, reps):
    c = Conn(port, {"Authorization": f"Bearer {key}"})
    span = hi - lo
    m = lo + span // 2
    first = json.loads(c.get("/v1/executions?limit=50")[1])
    cur2 = first["nextCursor"]
    deep = cur2
    for _ in range(20):  # 20 pages further down
        deep = json.loads(c.get("/v1/executions" + q(limit=50, cursor=deep))[1])["nextCursor"]
    cases = [
        ("newest 50", "/v1/executions?limit=50"),
        ("status=failed", "/v1/executions?status=failed&limit=50"),
        ("status=failed,timed_out (overview)", "/v1/executions?status=failed%2Ctimed_out&limit=8"),
        ("status=running (none)", "/v1/executions?status=running&limit=20"),
        ("workflow (99%)", "/v1/executions?workflow=bench-history&limit=50"),
        ("workflow (1%)", "/v1/executions?workflow=bench-rare&limit=50"),
        ("since: newest 10% of the span", "/v1/executions" + q(since=iso(hi - span // 10), limit=50)),
        ("since+until: 1% in the middle", "/v1/executions" + q(since=iso(m), until=iso(m + span // 100), limit=50)),
        ("since+until: oldest 1%", "/v1/executions" + q(since=iso(lo), until=iso(lo + span // 100), limit=50)),
        ("parentId (20 children)", "/v1/executions" + q(parentId=mid, limit=50)),
        ("cursor: page 2", "/v1/executions" + q(limit=50, cursor=cur2)),
        ("cursor: page 22", "/v1/executions" + q(limit=50, cursor=deep)),
        ("cursor page 2, status=failed", None),
        ("stats hours=24", "/v1/stats/executions?hours=24"),
        ("health", "/v1/health"),
        ("health, If-None-Match (304)", "/v1/health"),
        ("newest 50, If-None-Match (304)", "/v1/executions?limit=50"),
    ]
    fc = json.loads(c.get("/v1/executions?status=failed&limit=50")[1])["nextCursor"]
    cases[12] = (cases[12][0], "/v1/executions" + q(status="failed", limit=50, cursor=fc))
    res = []
    for name, path in cases:
        cache = "304" in name
        c.etags.clear()
        if cache:
            c.get(path, cache=True)
        ts, nbytes, status = [], 0, 0
        for _ in range(reps):
            status, body, dt, _h = c.get(path, cache=cache)
            ts.append(dt * 1000)
            nbytes = len(body)
        res.append((name, status, nbytes, statistics.median(ts), pct(ts, 99)))
    return res


# The pages, as ui/*.js poll them: (path, seconds, If-None-Match?) per page.
def page_polls(mid, fail_ids):
    return {
        "overview": [("/v1/health", 2, True), ("/v1/stats/executions?hours=24", 30, False),
                     ("/v1/executions?status=running&limit=20", 2, True),
                     ("/v1/executions?status=failed%2Ctimed_out&limit=8", 2, True)] +
                    [(f"/v1/executions/{i}", 2, True) for i in fail_ids] +
                    [("/v1/schedules", 15, False)],
        "executions": [("/v1/executions?limit=25", 2, True)],
        "execution": [(f"/v1/executions/{mid}", 1.5, True)],
        "workflows": [("/v1/workflows", 5, False), ("/v1/schedules", 5, False),
                      ("/v1/executions?workflow=bench-history&limit=20", 5, True),
                      ("/v1/executions?workflow=bench-rare&limit=20", 5, True)],
        "cluster": [("/v1/nodes", 3, False), ("/v1/health", 3, True)],
    }


def first_calls(mid, fail_ids):
    """The API answers each page asks for when it is first opened (after /v1/session)."""
    return {
        "overview": ["/v1/health", "/v1/stats/executions?hours=24",
                     "/v1/executions?status=running&limit=20",
                     "/v1/executions?status=failed%2Ctimed_out&limit=8", "/v1/schedules"] +
                    [f"/v1/executions/{i}" for i in fail_ids],
        "workflows": ["/v1/workflows", "/v1/schedules",
                      "/v1/executions?workflow=bench-history&limit=20",
                      "/v1/executions?workflow=bench-rare&limit=20"],
        "workflow": ["/v1/workflows/bench-history", "/v1/workflows/bench-history/graph",
                     "/v1/schedules", "/v1/workflows/bench-history/versions"],
        "executions": ["/v1/workflows", "/v1/executions?limit=25"],
        "execution": [f"/v1/executions/{mid}", "/v1/workflows/bench-history?version=1",
                      f"/v1/workflows/bench-history/graph?version=1&execution={mid}",
                      f"/v1/executions?parentId={mid}&limit=50",
                      f"/v1/executions/{mid}/logs"],
        "cluster": ["/v1/nodes", "/v1/health"],
        "keys": ["/v1/keys"],
    }


def sign_in(port, key):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/v1/session", body=json.dumps({"key": key}),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 201:
        raise RuntimeError(f"sign-in -> {r.status}")
    return r.getheader("Set-Cookie").split(";")[0]


def idle_polling(port, pid, key, mid, fail_ids, npages, secs, without="", pgdir=None):
    polls = page_polls(mid, fail_ids)
    if without:
        polls = {k: [x for x in v if not x[0].startswith(without)] for k, v in polls.items()}
    mix = ["overview", "executions", "execution", "workflows", "cluster"]
    stop = threading.Event()
    counts = {"requests": 0, "304": 0, "errors": 0}
    lock = threading.Lock()

    def run(page, cookie):
        c = Conn(port, {"Cookie": cookie, "Accept": "application/json"})
        due = {p: time.monotonic() for p, _s, _c in polls[page]}
        while not stop.is_set():
            now = time.monotonic()
            for path, every, cache in polls[page]:
                if due[path] <= now:
                    try:
                        st = c.get(path, cache=cache)[0]
                        with lock:
                            counts["requests"] += 1
                            counts["304"] += st == 304
                    except Exception:
                        with lock:
                            counts["errors"] += 1
                    due[path] = now + every
            stop.wait(max(0.05, min(due.values()) - time.monotonic()))

    threads = []
    pages = [mix[i % len(mix)] for i in range(npages)]
    for page in pages:
        t = threading.Thread(target=run, args=(page, sign_in(port, key)), daemon=True)
        threads.append(t)
    for t in threads:
        t.start()
    time.sleep(3)  # every page has made its first requests
    c0, g0, t0 = cpu_ticks(pid), pg_ticks(pgdir), time.monotonic()
    r0 = counts["requests"]
    time.sleep(secs)
    c1, g1, t1 = cpu_ticks(pid), pg_ticks(pgdir), time.monotonic()
    r1, n304 = counts["requests"], counts["304"]
    stop.set()
    for t in threads:
        t.join()
    cpu = (c1 - c0) / TICK
    return {"pages": pages, "seconds": t1 - t0, "cpu_s": cpu, "pct": 100 * cpu / (t1 - t0),
            "requests": r1 - r0, "per_s": (r1 - r0) / (t1 - t0), "304_total": n304,
            "errors": counts["errors"], "pg_s": (g1 - g0) / TICK,
            "pg_pct": 100 * (g1 - g0) / TICK / (t1 - t0)}


def unzip(body):
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def first_load(port, key, mid, fail_ids, enc=None):
    """Bytes on the wire; enc: the Accept-Encoding a browser sends (None: plain)."""
    ae = {"Accept-Encoding": enc} if enc else {}
    c = Conn(port, ae)
    st, html, _dt, head = c.get("/", extra={"Accept": "text/html"})
    assets = {"/": len(html) + head}
    todo = re.findall(r'(?:src|href)="(/assets/[^"]+)"', unzip(html).decode())
    seen = set()
    while todo:
        a = todo.pop()
        if a in seen:
            continue
        seen.add(a)
        _s, body, _d, head = c.get(a)
        assets[a] = len(body) + head
        if a.endswith(".js"):
            for m in re.findall(r"""(?:import|from)\s*['"]\./([\w.-]+)['"]""",
                                unzip(body).decode()):
                todo.append("/assets/" + m)
    static = sum(assets.values())
    cookie = sign_in(port, key)
    api = Conn(port, {"Cookie": cookie, **ae})
    _s, body, _d, head = api.get("/v1/session")
    session = len(body) + head
    out = {}
    for page, calls in first_calls(mid, fail_ids).items():
        n = session
        for path in calls:
            _s, body, _d, head = api.get(path)
            n += len(body) + head
        out[page] = (static, n, static + n)
    return assets, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orch", default=os.environ.get("ORCH_BIN",
                                                     os.path.join(REPO, "build-rel/src/cli/orch")))
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--poll", type=float, default=60)
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--without", default="",
                    help="leave the polled requests whose path starts with this out (attribution)")
    ap.add_argument("--pg", action="store_true",
                    help="on a private PostgreSQL (tests/pg/start-pg.sh) instead of SQLite")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="orch-ui-server.")
    pgdir = url = None
    if a.pg:
        pgdir = tempfile.mkdtemp(prefix="orch-ui-server-pg.")
        url = subprocess.run([os.path.join(REPO, "tests/pg/start-pg.sh"), pgdir], check=True,
                             capture_output=True, text=True).stdout.strip()
    try:
        for n in [int(x) for x in a.sizes.split(",")]:
            data = os.path.join(work, f"n{n}")
            if url:
                dbname = f"bench{n}"
                subprocess.run(["psql", "-X", "-q", "-d", url, "-c", f"CREATE DATABASE {dbname}"],
                               check=True)
                dburl = url.rsplit("/", 1)[0] + "/" + dbname
                key, mid, lo, hi, secs = pg_fill(a.orch, data, dburl, n)
            else:
                dburl = None
                key, mid, lo, hi, secs = fill(a.orch, data, n)
            print(f"== {n:,} executions (+{max(n // 100, 10):,} of bench-rare), filled in {secs:.0f} s",
                  flush=True)
            port = free_port()
            log = open(os.path.join(work, f"server-{n}.log"), "w")
            srv = start_server(a.orch, data, port, log, dburl)
            try:
                print(f"{'request':38} {'status':>6} {'bytes':>8} {'median ms':>10} {'p99 ms':>8}")
                for name, st, nb, med, p99 in latency(port, key, mid, lo, hi, a.reps):
                    print(f"{name:38} {st:>6} {nb:>8} {med:>10.2f} {p99:>8.2f}", flush=True)
                if dburl:
                    for name, lines in pg_plans(dburl, lo, hi):
                        print(f"plan, {name}: " + " | ".join(lines), flush=True)
                c = Conn(port, {"Authorization": f"Bearer {key}"})
                fails = json.loads(c.get("/v1/executions?status=failed%2Ctimed_out&limit=8")[1])
                fail_ids = [x["id"] for x in fails["items"]]
                if a.poll > 0:
                    r = idle_polling(port, srv.pid, key, mid, fail_ids, a.pages, a.poll,
                                     a.without, pgdir)
                    print(f"idle polling{' without ' + a.without if a.without else ''}: {a.pages} pages ({', '.join(sorted(set(r['pages'])))}),"
                          f" {r['requests']} requests in {r['seconds']:.0f} s ({r['per_s']:.1f}/s),"
                          f" server CPU {r['cpu_s']:.2f} s = {r['pct']:.2f}% of one CPU,"
                          f" errors {r['errors']}" +
                          (f"; PostgreSQL CPU {r['pg_s']:.2f} s = {r['pg_pct']:.2f}%" if pgdir else ""),
                          flush=True)
                for enc in (None, "gzip, deflate, br"):
                    assets, pages = first_load(port, key, mid, fail_ids, enc)
                    print(f"first load ({enc or 'no Accept-Encoding'}): assets " +
                          ", ".join(f"{k} {v}" for k, v in assets.items()))
                    for page, (st, api, tot) in pages.items():
                        print(f"  {page:11} assets {st:>7} + API {api:>7} = {tot:>7} bytes"
                              f" ({tot / 1024:.1f} KiB)", flush=True)
            finally:
                srv.terminate()
                srv.wait()
                log.close()
    finally:
        if pgdir:
            subprocess.run([os.path.join(REPO, "tests/pg/stop-pg.sh"), pgdir], capture_output=True)
            shutil.rmtree(pgdir, ignore_errors=True)
        if a.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
