#!/usr/bin/python3
"""bench/redis-dispatch.py (run by bench/redis-dispatch.sh): 3 orch nodes on PostgreSQL,
with and without Redis (ORCH_REDIS_URL), alternating in one run, REDIS_ROUNDS rounds each,
medians reported. The same private PostgreSQL (fsync on) and redis-server for both.

Per mode and round, a fresh database and 3 nodes (n1 `orch server`, n2 and n3 `orch
worker`, --lease 10s):
  - dispatch: the owner n1 has DISPATCH_OWNER_SLOTS slot(s) and the workers enough for the
    rest, so every offered task finds a free slot at once; DISPATCH_EXECS executions of a
    fan of DISPATCH_FAN tasks, one after another. Latency of an offered task = its process's
    start (the task writes its clock, `date +%s%N`, to $ORCH_OUTPUT) - its attempt's
    startedAt (the owner begins the attempt and commits the offer in the same turn).
  - fan-out: one execution of FANOUT_TASKS tasks (`true`) over the 3 nodes (--workers
    BENCH_CONCURRENCY each): tasks/s = tasks / (finishedAt - createdAt); PostgreSQL
    transactions per task (pg_stat_database xact_commit + xact_rollback of the database,
    over the run) and NOTIFYs per task (a LISTENer on every channel the engine uses
    counts what it receives);
  - idle: IDLE_S seconds with nothing to do: transactions/s per node;
  - log follow: a task on n2 prints LOG_LINES lines "T<ns>" every 50 ms; the client reads
    them from n1's API (GET /v1/executions/{id}/logs?follow=true), and, with Redis, also
    from the attempt's Redis stream (XREAD BLOCK): latency = receipt - the ns in the line.
Load average printed with the figures. Environment: ORCH_BIN, PG_URL, BENCH_CONCURRENCY (2),
REDIS_ROUNDS (3), DISPATCH_EXECS (20), DISPATCH_FAN (6), FANOUT_TASKS (2000), IDLE_S (10),
LOG_LINES (40), KEEP=1.
"""
import json, os, select, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster as cl  # noqa: E402 (its PrivatePostgres, Api, psql, with_db, ts)

ORCH = cl.ORCH
WORKERS = int(os.environ.get("BENCH_CONCURRENCY") or 2)
ROUNDS = int(os.environ.get("REDIS_ROUNDS") or 3)
D_EXECS = int(os.environ.get("DISPATCH_EXECS") or 20)
D_FAN = int(os.environ.get("DISPATCH_FAN") or 6)
FAN_N = int(os.environ.get("FANOUT_TASKS") or 2000)
IDLE_S = float(os.environ.get("IDLE_S") or 10)
LOG_LINES = int(os.environ.get("LOG_LINES") or 40)
CHANNELS = ["orch_work", "orch_cancel", "orch_schedules", "orch_offer", "orch_result",
            "orch_offer_cancel", "orch_nodes"]


def die(msg):
    raise SystemExit(f"redis-dispatch: {msg}")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class RedisServer:
    def __init__(self, work):
        self.port = cl.free_port()
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", work],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        end = time.monotonic() + 30
        while self.cmd("PING") != "PONG":
            if time.monotonic() > end:
                die("redis-server did not start")
            time.sleep(0.05)

    def cmd(self, *args):
        try:
            res = subprocess.run(["redis-cli", "-p", str(self.port)] + [str(a) for a in args],
                                 capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            return None
        return res.stdout.strip()

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Listener:
    """psql LISTENing on the engine's channels; counts the notifications it receives."""

    def __init__(self, url):
        self.p = subprocess.Popen(["psql", "-X", "-q", "-d", url], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.p.stdin.write("".join(f"LISTEN {c};\n" for c in CHANNELS))
        self.p.stdin.flush()
        self.count = 0

    def poll(self):
        self.p.stdin.write("SELECT 1;\n")
        self.p.stdin.flush()

    def close(self):
        self.p.stdin.write("SELECT 1;\n\\q\n")
        self.p.stdin.close()
        out = self.p.stdout.read()
        self.p.wait()
        self.count += out.count("Asynchronous notification")
        return self.count


class Nodes:
    def __init__(self, work, url, redis_url, slots, tag):
        self.work, self.url, self.tag, self.procs = work, url, tag, []
        self.env = dict(os.environ, DATABASE_URL=url)
        self.env.pop("ORCH_REDIS_URL", None)
        self.env.pop("REDIS_URL", None)
        if redis_url:
            self.env["ORCH_REDIS_URL"] = redis_url
        res = subprocess.run([ORCH, "keys", "create", "--name", "bench", "--scope", "admin", "--json"],
                             env=self.env, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            die(f"orch keys create failed: {res.stderr.strip()}")
        self.key = json.loads(res.stdout)["key"]
        self.ports = [cl.free_port(), cl.free_port()]
        for i, w in enumerate(slots, 1):
            role = ["server", "--listen", f"127.0.0.1:{self.ports[i - 1]}"] if i <= 2 else ["worker"]
            with open(os.path.join(work, f"{tag}-n{i}.log"), "wb") as log:
                self.procs.append(subprocess.Popen(
                    [ORCH] + role + ["--node", f"n{i}", "--lease", "10s", "--workers", str(w),
                                     "--log-level", "warn"],
                    env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True))
        self.api = cl.Api(self.ports[0], self.key)
        end = time.monotonic() + 30
        while True:
            try:
                items = self.api.call("GET", "/v1/nodes")["items"]
                if sum(x["state"] == "alive" for x in items) >= 3:
                    break
            except (OSError, cl.http.client.HTTPException, SystemExit) as e:
                why = e
            else:
                why = f"{sum(x['state'] == 'alive' for x in items)} alive"
            for i, p in enumerate(self.procs, 1):
                if p.poll() is not None:
                    die(f"node n{i} exited with {p.returncode} (logs in {work})")
            if time.monotonic() > end:
                die(f"nodes did not come up: {why} (logs in {work})")
            time.sleep(0.05)
        time.sleep(11)  # n1's heartbeat (lease / 3) learns the others' slots

    def wait(self, ids, timeout=900):
        end = time.monotonic() + timeout
        while True:
            ds = [self.api.call("GET", f"/v1/executions/{i}") for i in ids]
            if all(d["status"] in cl.FINAL for d in ds):
                bad = [d["status"] for d in ds if d["status"] != "succeeded"]
                if bad:
                    die(f"{len(bad)} executions did not succeed: {bad[:3]}")
                return ds
            if time.monotonic() > end:
                die("executions not final in time")
            time.sleep(0.1)

    def stop(self):
        for p in self.procs:
            p.send_signal(15)
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def xacts(admin, db):
    return int(cl.psql(admin, "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                              f"WHERE datname = '{db}'"))


def stats_settle(admin, db):
    """pg_stat_database: a backend that goes idle flushes its counts up to 10 s later
    (PostgreSQL 15's PGSTAT_IDLE_INTERVAL): wait that long, then read."""
    time.sleep(11)
    return xacts(admin, db)


def dispatch(n):
    wf = {"name": "disp", "tasks": [{"name": f"w{i}", "command":
          "echo \"{\\\"t\\\": $(date +%s%N)}\" > \"$ORCH_OUTPUT\"; sleep 0.3"} for i in range(D_FAN)]}
    n.api.call("POST", "/v1/workflows", wf)
    lat, local = [], []
    for _ in range(D_EXECS):
        i = n.api.call("POST", "/v1/workflows/disp/executions", {})["id"]
        d = n.wait([i])[0]
        for t in d["tasks"]:
            a = t["attempts"][-1]
            ms = t["output"]["t"] / 1e6 - cl.ts(a["startedAt"]) * 1000
            (local if a["node"] and a["node"].endswith(f":{n.procs[0].pid}") else lat).append(ms)
    return lat, local


def fanout(n, admin, db):
    wf = {"name": "big", "tasks": [{"name": f"w{i}", "command": ["true"]} for i in range(FAN_N)]}
    n.api.call("POST", "/v1/workflows", wf)
    lis = Listener(n.url)
    x0 = stats_settle(admin, db)
    i = n.api.call("POST", "/v1/workflows/big/executions", {})["id"]
    end = time.monotonic() + 900
    while True:
        lis.poll()
        d = n.api.call("GET", f"/v1/executions/{i}")
        if d["status"] in cl.FINAL:
            break
        if time.monotonic() > end:
            die("fan-out not final in 900 s")
        time.sleep(0.2)
    if d["status"] != "succeeded":
        die(f"fan-out {d['status']}")
    x1 = stats_settle(admin, db)
    notifies = lis.close()
    wall = cl.ts(d["finishedAt"]) - cl.ts(d["createdAt"])
    nodes = {}
    for t in d["tasks"]:
        nodes[t["attempts"][-1]["node"]] = nodes.get(t["attempts"][-1]["node"], 0) + 1
    return FAN_N / wall, (x1 - x0) / FAN_N, notifies / FAN_N, sorted(nodes.values())


def idle(n, admin, db):
    x0 = stats_settle(admin, db)
    t0 = time.monotonic()
    time.sleep(IDLE_S)
    return (xacts(admin, db) - x0) / (time.monotonic() - t0) / 3


def resp(args):
    return ("*%d\r\n" % len(args) + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)).encode()


def read_reply(f):
    line = f.readline()[:-2]
    t, rest = line[:1], line[1:]
    if t in (b"+", b":"):
        return rest
    if t == b"-":
        die(f"redis: {rest.decode()}")
    if t == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    n = int(rest)
    return None if n < 0 else [read_reply(f) for _ in range(n)]


def logfollow(n, redis):
    # n1 has its slot busy with a long task, so the talker runs elsewhere.
    lines = LOG_LINES
    wf = {"name": "talk", "tasks": [{"name": "hold", "command": ["sleep", str(lines * 0.05 + 3)]},
                                    {"name": "say", "command":
                                     f"for i in $(seq {lines}); do echo T$(date +%s%N); sleep 0.05; done"}]}
    n.api.call("POST", "/v1/workflows", wf)
    i = n.api.call("POST", "/v1/workflows/talk/executions", {})["id"]
    api_lat, red_lat = [], []
    req = urllib.request.Request(f"http://127.0.0.1:{n.ports[1]}/v1/executions/{i}/logs?follow=true",
                                 headers={"Authorization": f"Bearer {n.key}"})
    key = None
    rsock = None
    if redis:
        rsock = socket.create_connection(("127.0.0.1", redis.port))
        rfile = rsock.makefile("rb")
    with urllib.request.urlopen(req, timeout=60) as r:
        fd = r.fp
        buf = b""
        last_id = "0"
        end = time.monotonic() + 60
        while (len(api_lat) < lines or (redis and len(red_lat) < lines)) and time.monotonic() < end:
            if redis and key is None:
                d = n.api.call("GET", f"/v1/executions/{i}")
                say = [t for t in d["tasks"] if t["name"] == "say"][0]
                if say["attempts"]:
                    key = f"orch:log:{i}:1:{say['attempts'][-1]['number']}"
            if redis and key and rsock is not None:
                rsock.sendall(resp(["XREAD", "BLOCK", "20", "STREAMS", key, last_id]))
                reply = read_reply(rfile)
                now = time.time_ns()
                for _stream, entries in reply or []:
                    for eid, fields in entries:
                        last_id = eid.decode()
                        f = dict(zip(fields[::2], fields[1::2]))
                        for tok in f.get(b"d", b"").split():
                            if tok.startswith(b"T1") and tok[1:].isdigit():
                                red_lat.append((now - int(tok[1:])) / 1e6)
            ready, _, _ = select.select([fd], [], [], 0.01)
            if ready:
                chunk = fd.read1(65536) if hasattr(fd, "read1") else os.read(fd.fileno(), 65536)
                if not chunk:
                    break
                now = time.time_ns()
                buf += chunk
                *done, buf = buf.split(b"\n")
                for ln in done:
                    for tok in ln.replace(b"\\n", b" ").replace(b'"', b" ").split():
                        if tok.startswith(b"T1") and tok[1:].isdigit():
                            api_lat.append((now - int(tok[1:])) / 1e6)
    if rsock:
        rsock.close()
    n.wait([i])
    return api_lat, red_lat


def main():
    if not os.access(ORCH, os.X_OK):
        die(f"no orch binary at {ORCH}")
    work = tempfile.mkdtemp(prefix="orch-redis-bench-", dir="/tmp")
    pg = None
    redis = RedisServer(work)
    res = {m: {"lat": [], "tps": [], "xpt": [], "npt": [], "idle": [], "api": [], "red": [], "spread": [], "local": []}
           for m in ("postgres", "redis")}
    try:
        admin = os.environ.get("PG_URL")
        if not admin:
            pg = cl.PrivatePostgres()
            admin = pg.start()
        print(f"redis-dispatch: PostgreSQL {cl.psql(admin, 'SHOW server_version')}, redis-server "
              f"{redis.cmd('INFO', 'server').split('redis_version:')[1].split()[0]}, {os.cpu_count()} CPUs,"
              f" {ROUNDS} rounds, load average {os.getloadavg()}", flush=True)
        for rnd in range(1, ROUNDS + 1):
            for mode in ("postgres", "redis"):
                db = f"orch_rd_{os.getpid()}_{mode}_{rnd}"
                cl.psql(admin, f"CREATE DATABASE {db}")
                url = cl.with_db(admin, db)
                ru = f"redis://127.0.0.1:{redis.port}" if mode == "redis" else None
                r = res[mode]
                redis.cmd("FLUSHALL")
                n = Nodes(work, url, ru, [1, D_FAN, D_FAN], f"{mode}{rnd}d")
                try:
                    lat, local = dispatch(n)
                    r["lat"] += lat
                    r["local"] += local
                    a, b = logfollow(n, redis if ru else None)
                    r["api"] += a
                    r["red"] += b
                finally:
                    n.stop()
                cl.psql(admin, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
                cl.psql(admin, f"CREATE DATABASE {db}")
                n = Nodes(work, url, ru, [WORKERS] * 3, f"{mode}{rnd}f")
                try:
                    tps, xpt, npt, spread = fanout(n, admin, db)
                    r["tps"].append(tps)
                    r["xpt"].append(xpt)
                    r["npt"].append(npt)
                    r["spread"].append(spread)
                    r["idle"].append(idle(n, admin, db))
                finally:
                    n.stop()
                cl.psql(admin, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
                print(f"round {rnd} {mode}: dispatch p50 {statistics.median(r['lat']):.2f} ms; fan-out "
                      f"{tps:.0f} tasks/s, {xpt:.2f} xacts/task, {npt:.2f} NOTIFYs/task, tasks per "
                      f"node {spread}; idle {r['idle'][-1]:.2f} xacts/s/node; load {os.getloadavg()}",
                      flush=True)
        print("\n| | without Redis | with Redis |\n| --- | --- | --- |")
        P, R = res["postgres"], res["redis"]

        def row(name, f):
            print(f"| {name} | {f(P)} | {f(R)} |")
        row("dispatch latency p50 (ms)", lambda r: f"{pct(r['lat'], 50):.2f}")
        row("dispatch latency p99 (ms)", lambda r: f"{pct(r['lat'], 99):.2f}")
        row("offered tasks measured", lambda r: f"{len(r['lat'])}")
        row("reference: the owner's own tasks, attempt begun to process started, p50 / p99 (ms)",
            lambda r: f"{pct(r['local'], 50):.2f} / {pct(r['local'], 99):.2f}" if r["local"] else "-")
        row(f"{FAN_N}-task fan-out, tasks/s (median)", lambda r: f"{statistics.median(r['tps']):.0f}")
        row("PostgreSQL transactions per task (median)", lambda r: f"{statistics.median(r['xpt']):.2f}")
        row("NOTIFYs received per task (median)", lambda r: f"{statistics.median(r['npt']):.3f}")
        row("idle transactions/s per node (median)", lambda r: f"{statistics.median(r['idle']):.2f}")
        row("log follow via the API of another node, p50 / p99 (ms)",
            lambda r: f"{pct(r['api'], 50):.1f} / {pct(r['api'], 99):.1f}" if r["api"] else "-")
        row("log follow from the Redis stream, p50 / p99 (ms)",
            lambda r: f"{pct(r['red'], 50):.1f} / {pct(r['red'], 99):.1f}" if r["red"] else "-")
        print(f"\nload average at the end: {os.getloadavg()}")
    finally:
        redis.stop()
        if pg:
            pg.stop()
        if os.environ.get("KEEP") == "1":
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
