#!/usr/bin/python3
"""
api-front.py: the API's front door against nginx, side by side in one run.

For each store (STORES: sqlite, postgres) and size (SIZES: executions already stored), and
each number of connections (CONNS), ROUNDS rounds of, in turn:
  nginx     GET of a 2 KB static JSON file (nginx from Debian, a config written here, on
            a loopback port, started and stopped by its PID);
  get       GET /v1/executions?limit=20 on orch (ORCH_BIN);
  post      POST /v1/workflows/bench-noop/executions (one noop task; 201 only after the
            commit that holds the execution);
and the same two on ORCH_BASE_BIN when it is set (the build before a change), so that
before and after are measured in the same run, alternating. Each orch server starts on a
fresh copy of the seeded store every round (the posts add executions), GETs first.

Figures are medians over the rounds of wrk's req/s and latency percentiles (wrk -t2, or
-t1 for one connection, --latency), plus the server's CPU time per request (utime+stime of
/proc/PID/stat over the run, divided by the requests): at one connection the p50 is the
service time, and the CPU per request says how much of a p99 at 50 connections is work
rather than waiting for a core; on PostgreSQL also the whole cluster's CPU time per request
(it runs on the same cores). The load average is printed with the figures.

Seeding: SQLite through bench/api-fill.py (rows inserted by Python's sqlite3 into a store
orch created). PostgreSQL: the schema is made by orch itself (`orch keys create`), then the
same rows go in with COPY ... FROM STDIN (psql) with session_replication_role = replica,
so that the per-row triggers of executions_hourly do not run; executions_hourly is then
rebuilt with one GROUP BY, and ANALYZE. PostgreSQL runs with fsync and synchronous_commit
on (durable, as orch's own SQLite default is durable to a crash of the process).

Environment: ORCH_BIN (default: a Release build in build-bench/), ORCH_BASE_BIN, STORES
("sqlite postgres"), SIZES ("10000 1000000"), CONNS ("1 10 50 200"), ROUNDS (5), DURATION
(wrk seconds, 3), WORKERS (server task slots, 4), HTTP_THREADS (ORCH_HTTP_THREADS for
orch, unset: its default), NGINX (/usr/sbin/nginx), KEEP=1 (keep the work directory).
Needs: wrk, nginx, psql and PostgreSQL 15's server binaries for postgres.
"""
import importlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

ENV = os.environ
STORES = ENV.get("STORES", "sqlite postgres").split()
SIZES = [int(x) for x in ENV.get("SIZES", "10000 1000000").split()]
CONNS = [int(x) for x in ENV.get("CONNS", "1 10 50 200").split()]
ROUNDS = int(ENV.get("ROUNDS", "5"))
DURATION = int(ENV.get("DURATION", "3"))
WORKERS = ENV.get("WORKERS", "4")
NGINX = ENV.get("NGINX", "/usr/sbin/nginx")
LIST_PATH = "/v1/executions?limit=20"
POST_PATH = "/v1/workflows/bench-noop/executions"


def die(msg):
    sys.exit(f"api-front: {msg}")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except OSError:
        return 0


def wait_http(url, proc, what, headers=None, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            die(f"{what} exited (status {proc.returncode})")
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    die(f"{what} did not answer on {url}")


def stop(proc):
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------ wrk

def to_ms(v):
    for suffix, f in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(suffix):
            return float(v[: -len(suffix)]) * f
    return float(v)


PG_PID = None  # the postmaster of the benchmark's PostgreSQL, when it runs


def pg_ticks():
    """CPU time of the whole PostgreSQL cluster, in clock ticks: the postmaster's with its
    reaped children's (cutime, cstime: backends that ended), plus its live children's."""
    if not PG_PID:
        return 0
    total = 0
    try:
        with open(f"/proc/{PG_PID}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        total = sum(int(x) for x in rest[11:15])
    except OSError:
        return 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[1]) == PG_PID:
            total += int(rest[11]) + int(rest[12])
    return total


def run_wrk(url, conns, script, pid=None):
    threads = 1 if conns == 1 else 2
    t0 = cpu_ticks(pid) if pid else 0
    g0 = pg_ticks() if pid else 0
    res = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{DURATION}s", "--latency",
                          "--timeout", "10s", "-s", script, url],
                         capture_output=True, text=True, timeout=DURATION + 120)
    t1 = cpu_ticks(pid) if pid else 0
    g1 = pg_ticks() if pid else 0
    out = res.stdout
    if res.returncode != 0:
        die(f"wrk failed on {url}: {res.stderr}{out}")
    fig = {"rps": 0.0, "p50": 0.0, "p99": 0.0, "bad": 0, "requests": 0}
    for line in out.splitlines():
        w = line.split()
        if line.startswith("Requests/sec:"):
            fig["rps"] = float(w[1])
        elif w[:1] == ["50%"]:
            fig["p50"] = to_ms(w[1])
        elif w[:1] == ["99%"]:
            fig["p99"] = to_ms(w[1])
        elif "Non-2xx or 3xx responses:" in line:
            fig["bad"] += int(w[-1])
        elif line.startswith("  Socket errors:"):
            fig["bad"] += sum(int(x.strip(",")) for x in w[3::2])
        elif "requests in" in line:
            fig["requests"] = int(w[0])
    if pid and fig["requests"]:
        fig["cpu_us"] = (t1 - t0) / os.sysconf("SC_CLK_TCK") * 1e6 / fig["requests"]
        if PG_PID:
            fig["pg_us"] = (g1 - g0) / os.sysconf("SC_CLK_TCK") * 1e6 / fig["requests"]
    return fig


# ------------------------------------------------------------------ nginx

def nginx_start(work):
    prefix = os.path.join(work, "nginx")
    www = os.path.join(prefix, "www")
    os.makedirs(os.path.join(prefix, "logs"), exist_ok=True)
    os.makedirs(www, exist_ok=True)
    # 2 KB of JSON shaped like a page of executions.
    items, body = [], ""
    i = 0
    while True:
        items.append({"id": f"ex_06h4yp8evg{i:06d}", "workflow": "bench-history",
                      "workflowVersion": 1, "status": "succeeded", "params": {},
                      "createdAt": "2026-12-07T07:10:00.000Z"})
        text = json.dumps({"items": items, "nextCursor": None}, separators=(",", ":"))
        if len(text) > 2048:
            break
        body = text
        i += 1
    body = body + " " * (2048 - len(body) - 1) + "\n"
    with open(os.path.join(www, "list.json"), "w") as f:
        f.write(body)
    port = free_port()
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""daemon off;
worker_processes auto;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    default_type application/json;
    server {{
        listen 127.0.0.1:{port};
        root {www};
    }}
}}
""")
    proc = subprocess.Popen([NGINX, "-p", prefix, "-c", conf, "-e", f"{prefix}/logs/error.log"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/list.json"
    wait_http(url, proc, "nginx")
    return proc, url


# ------------------------------------------------------------------ stores

def orch(binary, args, env, capture=True):
    res = subprocess.run([binary] + args, env=env, capture_output=capture, text=True,
                         timeout=600)
    if res.returncode != 0:
        die(f"orch {' '.join(args)} failed: {res.stderr}")
    return res.stdout


def seed_pg(url, n):
    """The rows of api-fill.py, by COPY, with the row triggers off."""
    fill = importlib.import_module("api-fill")
    now = int(time.time() * 1000)
    start = now - n - 1000
    definition = json.dumps({"name": "bench-history",
                             "tasks": [{"name": "work", "command": ["true"]}]})
    ex, tr, at = [], [], []
    for i in range(n):
        created = start + i
        eid = fill.make_id("ex_", created, i)
        failed = i % 10 == 7
        status = "failed" if failed else "succeeded"
        err = "task 'work' failed: exit status 1" if failed else ""
        terr = "exit status 1" if failed else ""
        ex.append(f"{eid},bench-history,1,{status},{{}},{created},{created + 1},{created + 40},"
                  f"{err}\n")
        tr.append(f"{eid},0,work,{status},1,,{created + 1},{created + 40},{terr}\n")
        at.append(f"{eid},0,1,{status},bench-host:1,{100000 + i % 50000},{100000 + i % 50000},0,"
                  f"{created + 1},{created + 40},{1 if failed else 0},0,{terr}\n")
    sql = ("SET session_replication_role = replica;"
           f"INSERT INTO workflows (name, version, definition, created_at) VALUES "
           f"('bench-history', 1, '{definition}', {start - 1000});")
    psql(url, sql)
    for table, cols, rows in (
            ("executions", "id, workflow, workflow_version, status, params, created_at,"
             " started_at, finished_at, error", ex),
            ("task_runs", "execution_id, idx, name, status, attempt, available_at, started_at,"
             " finished_at, error", tr),
            ("attempts", "execution_id, task_idx, number, status, node, pid, pgid, proc_start,"
             " started_at, finished_at, exit_code, signal, error", at)):
        cmd = (f"SET session_replication_role = replica; COPY {table} ({cols}) FROM STDIN"
               " WITH (FORMAT csv, NULL '')")
        res = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", cmd],
                             input="".join(rows), capture_output=True, text=True, timeout=1200)
        if res.returncode != 0:
            die(f"COPY {table} failed: {res.stderr}")
    psql(url, "DELETE FROM executions_hourly;"
              "INSERT INTO executions_hourly (hour, status, n) SELECT created_at / 3600000,"
              " status, count(*) FROM executions GROUP BY created_at / 3600000, status;"
              "ANALYZE;")


def psql(url, sql):
    res = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                         capture_output=True, text=True, timeout=1200)
    if res.returncode != 0:
        die(f"psql failed on {sql[:80]!r}: {res.stderr}")
    return res.stdout.strip()


class Store:
    """A seeded store, and fresh copies of it for each server start."""

    def __init__(self, kind, n, work, binary, pg_url):
        self.kind, self.n, self.work, self.pg_url = kind, n, work, pg_url
        self.copies = 0
        env = dict(ENV)
        if kind == "sqlite":
            self.seed = os.path.join(work, f"sqlite-{n}")
            args = ["keys", "create", "--name", "bench", "--scope", "admin", "--data-dir",
                    self.seed, "--json"]
        else:
            self.seed_db = f"seed_{n}"
            psql(pg_url, f"CREATE DATABASE {self.seed_db}")
            env["DATABASE_URL"] = self.url_of(self.seed_db)
            args = ["keys", "create", "--name", "bench", "--scope", "admin", "--json"]
        self.key = json.loads(orch(binary, args, env))["key"]
        t0 = time.time()
        if kind == "sqlite":
            subprocess.run([sys.executable, os.path.join(HERE, "api-fill.py"),
                            os.path.join(self.seed, "orch.db"), str(n)], check=True,
                           stdout=subprocess.DEVNULL, timeout=3600)
        else:
            seed_pg(self.url_of(self.seed_db), n)
        print(f"   {kind}: {n} executions seeded in {time.time() - t0:.0f}s", file=sys.stderr)

    def url_of(self, db):
        return self.pg_url.rsplit("/", 1)[0] + "/" + db

    def fresh(self):
        """(args, env) of a server on a new copy of the seeded store."""
        self.copies += 1
        env = dict(ENV)
        if self.kind == "sqlite":
            d = os.path.join(self.work, f"run-{self.n}-{self.copies}")
            shutil.rmtree(d, ignore_errors=True)
            shutil.copytree(self.seed, d, ignore=shutil.ignore_patterns("locks"))
            return ["--data-dir", d], env, d
        db = f"run_{self.n}_{self.copies}"
        psql(self.pg_url, f"CREATE DATABASE {db} TEMPLATE {self.seed_db}")
        env["DATABASE_URL"] = self.url_of(db)
        return [], env, db

    def drop(self, where):
        if self.kind == "sqlite":
            shutil.rmtree(where, ignore_errors=True)
        else:
            psql(self.pg_url, f"DROP DATABASE IF EXISTS {where}")


def orch_server(binary, store):
    args, env, where = store.fresh()
    port = free_port()
    env["ORCH_API_KEY"] = store.key
    # All of wrk's connections come from 127.0.0.1: lift the per-address cap (64).
    env.setdefault("ORCH_HTTP_CONNECTIONS_PER_ADDRESS", "1000")
    if ENV.get("HTTP_THREADS"):
        env["ORCH_HTTP_THREADS"] = ENV["HTTP_THREADS"]
    log = open(os.path.join(store.work, "server.log"), "a")
    proc = subprocess.Popen([binary, "server", "--listen", f"127.0.0.1:{port}", "--workers",
                             WORKERS, "--log-level", "warn"] + args, env=env,
                            stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {store.key}"}
    wait_http(base + "/v1/health/scheduler", proc, f"orch server ({binary})")
    req = urllib.request.Request(base + "/v1/workflows", method="POST", headers={
        **auth, "Content-Type": "application/json"}, data=json.dumps(
            {"name": "bench-noop", "tasks": [{"name": "nothing", "type": "noop"}]}).encode())
    with urllib.request.urlopen(req, timeout=30) as r:
        if r.status not in (200, 201):
            die("cannot create bench-noop")
    return proc, base, where


# ------------------------------------------------------------------ the run

def main():
    global PG_PID
    for tool in ("wrk",):
        if not shutil.which(tool):
            die(f"'{tool}' is missing")
    if not os.access(NGINX, os.X_OK):
        die(f"no nginx at {NGINX} (apt-get install nginx-light, or NGINX=...)")
    binary = ENV.get("ORCH_BIN")
    if not binary:
        build = os.path.join(REPO, "build-bench")
        subprocess.run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release",
                        "-DWERROR=OFF"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["cmake", "--build", build, "-j2", "--target", "orch"], check=True,
                       stdout=subprocess.DEVNULL)
        binary = os.path.join(build, "src/cli/orch")
    bins = [("orch", binary)]
    if ENV.get("ORCH_BASE_BIN"):
        bins.append(("base", ENV["ORCH_BASE_BIN"]))
    work = tempfile.mkdtemp(prefix="orch-api-front-")
    os.chmod(work, 0o755)  # nginx's workers (user nobody) read their file under it
    pg_dir = pg_url = None
    ngx = None
    results = {}  # (store, n, target, conns) -> [fig]
    try:
        ngx, ngx_url = nginx_start(work)
        if "postgres" in STORES:
            pg_dir = os.path.join(work, "pg")
            res = subprocess.run([os.path.join(REPO, "tests/pg/start-pg.sh"), pg_dir],
                                 capture_output=True, text=True, timeout=300)
            if res.returncode != 0:
                die(f"cannot start PostgreSQL: {res.stderr}")
            pg_url = res.stdout.strip()
            # Durable commits, as in production. The test clusters start with -c fsync=off on
            # the command line, which outranks ALTER SYSTEM: restart with fsync on.
            opts = os.path.join(pg_dir, "opts")
            with open(opts) as f:
                text = f.read().replace("-c fsync=off", "-c fsync=on")
            with open(opts, "w") as f:
                f.write(text)
            subprocess.run([os.path.join(REPO, "tests/pg/ctl-pg.sh"), pg_dir, "restart"],
                           check=True, capture_output=True, timeout=300)
            psql(pg_url, "ALTER SYSTEM SET synchronous_commit = on")
            psql(pg_url, "SELECT pg_reload_conf()")
            if psql(pg_url, "SHOW fsync") != "on" or psql(pg_url, "SHOW synchronous_commit") != "on":
                die("PostgreSQL does not run with fsync and synchronous_commit on")
            with open(os.path.join(pg_dir, "data", "postmaster.pid")) as f:
                PG_PID = int(f.readline())
        get_lua = os.path.join(HERE, "api-get.lua")
        post_lua = os.path.join(HERE, "api-post.lua")
        for kind in STORES:
            for n in SIZES:
                print(f"== {kind}, {n} executions", file=sys.stderr)
                # Seeded by the older binary when there is one: the newer migrates its copy
                # at its start (an older one cannot open a newer schema).
                store = Store(kind, n, work, ENV.get("ORCH_BASE_BIN") or binary, pg_url)
                os.environ["ORCH_API_KEY"] = store.key
                for r in range(ROUNDS):
                    order = bins if r % 2 == 0 else list(reversed(bins))
                    for c in CONNS:
                        results.setdefault((kind, n, "nginx", c), []).append(
                            run_wrk(ngx_url, c, get_lua, None))
                    for name, b in order:
                        proc, base, where = orch_server(b, store)
                        try:
                            for c in CONNS:
                                results.setdefault((kind, n, f"{name} get", c), []).append(
                                    run_wrk(base + LIST_PATH, c, get_lua, proc.pid))
                            for c in CONNS:
                                results.setdefault((kind, n, f"{name} post", c), []).append(
                                    run_wrk(base + POST_PATH, c, post_lua, proc.pid))
                        finally:
                            stop(proc)
                        store.drop(where)
                    print(f"   round {r + 1}/{ROUNDS} done (load {os.getloadavg()[0]:.1f})",
                          file=sys.stderr)
    finally:
        stop(ngx)
        if pg_dir:
            subprocess.run([os.path.join(REPO, "tests/pg/stop-pg.sh"), pg_dir],
                           capture_output=True, timeout=120)
        if ENV.get("KEEP") == "1":
            print(f"api-front: work kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    report(results, bins)


def med(figs, k):
    vals = [f[k] for f in figs if k in f]
    return statistics.median(vals) if vals else float("nan")


def report(results, bins):
    la = os.getloadavg()
    print(f"# api-front: medians of {ROUNDS} rounds of {DURATION}s, wrk -t2 (-t1 at 1 connection),"
          f" load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f}, {os.cpu_count()} CPUs")
    print()
    print("| store | executions | target | conns | req/s | p50 ms | p99 ms | CPU us/req |"
          " PG CPU us/req | non-2xx | req/s / nginx | p99 / nginx |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    targets = ["nginx"] + [f"{b} {w}" for b, _ in bins for w in ("get", "post")]
    for kind in STORES:
        for n in SIZES:
            for t in targets:
                for c in CONNS:
                    figs = results.get((kind, n, t, c))
                    if not figs:
                        continue
                    ng = results.get((kind, n, "nginx", c))
                    rps, p50, p99 = med(figs, "rps"), med(figs, "p50"), med(figs, "p99")
                    cpu = med(figs, "cpu_us")
                    bad = sum(f["bad"] for f in figs)
                    ratio = p99r = ""
                    if ng and t.endswith("get"):
                        ratio = f"{rps / med(ng, 'rps'):.2f}"
                        p99r = f"{p99 / med(ng, 'p99'):.2f}"
                    cpu_s = "" if cpu != cpu else f"{cpu:.0f}"
                    pgc = med(figs, "pg_us")
                    pgc_s = "" if pgc != pgc else f"{pgc:.0f}"
                    print(f"| {kind} | {n} | {t} | {c} | {rps:,.0f} | {p50:.2f} | {p99:.2f} |"
                          f" {cpu_s} | {pgc_s} | {bad} | {ratio} | {p99r} |")


if __name__ == "__main__":
    main()
