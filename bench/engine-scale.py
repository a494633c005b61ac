#!/usr/bin/python3
"""bench/engine-scale.py (run by bench/engine-scale.sh): the engine with many live executions.

usage: engine-scale.py ORCH_BIN WAITING [WAITING...]
       engine-scale.py pg-start | pg-db URL NAME | pg-stop DIR   (a private PostgreSQL)
       engine-scale.py hold-fds N PROGRAM ARG...   (exec PROGRAM holding N more descriptors)

For each WAITING count K, one `orch server` (SQLite, a fresh data directory, --workers 2):
  1. the two worker slots are taken by two executions of `block` (a command that sleeps);
  2. K executions of `wait` (one command running `true`, argv form) are submitted from 8
     connections at once: they wait for a slot;
  3. SHORT (500) executions of `short` (two chained noop tasks, which take no slot) are
     submitted one after the other; their completion rate is SHORT / (last finishedAt -
     first createdAt), from the API;
  4. the two blockers are cancelled and the K waiting executions drain through the two
     slots: their rate is K / (last finishedAt - the cancel), from the API, or, if they
     take longer than DRAIN_S (60) seconds, the number that ended in the first DRAIN_S
     seconds / DRAIN_S (the server is then stopped with the rest still waiting).
Every execution must succeed (the blockers: be cancelled). Prints one line per K:
  "K short_per_s drain_per_s submit_s"
Environment: SHORT (500), DRAIN_S (60), KEEP=1 (keep the data directories and server logs).
"""
import os, signal, subprocess, sys, tempfile, time, json, shutil
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster import Api, free_port, ts, die  # noqa: E402

SHORT = int(os.environ.get("SHORT") or 500)
DRAIN_S = float(os.environ.get("DRAIN_S") or 60)
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}
WORKFLOWS = [
    {"name": "block", "tasks": [{"name": "b", "command": ["sleep", "3600"]}]},
    {"name": "wait", "tasks": [{"name": "w", "command": ["true"]}]},
    {"name": "short", "tasks": [{"name": "a", "type": "noop"},
                                {"name": "b", "type": "noop", "dependsOn": ["a"]}]},
]


def listing(api, wf):
    out, cursor = [], None
    while True:
        q = f"/v1/executions?workflow={wf}&limit=1000" + (f"&cursor={cursor}" if cursor else "")
        page = api.call("GET", q)
        out += page["items"]
        cursor = page.get("nextCursor")
        if not cursor:
            return out


def done_count(api, k):
    """How many of the k waiting executions are final (from /v1/health's counters: the
    executions still live in the engine)."""
    def find(o):
        if isinstance(o, dict):
            e = o.get("executions")
            if isinstance(e, dict) and "running" in e:
                return e["running"]
            for v in o.values():
                r = find(v)
                if r is not None:
                    return r
        return None
    live = find(api.call("GET", "/v1/health"))
    if live is None:
        die("/v1/health shows no executions.running")
    return k - live


def wait_final(api, wf, n, limit_s):
    end = time.monotonic() + limit_s
    while True:
        items = listing(api, wf)
        if len(items) == n and all(x["status"] in FINAL for x in items):
            return items
        if time.monotonic() > end:
            die(f"{wf}: not all {n} executions final after {limit_s} s")
        time.sleep(0.2)


def submit(port, key, wf, n, clients=8):
    """n executions of wf, from `clients` keep-alive connections at once (the server
    takes the submissions that arrive together in one turn and one commit)."""
    def part(m):
        a = Api(port, key)
        for _ in range(m):
            a.call("POST", f"/v1/workflows/{wf}/executions", {})
    with ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(part, n // clients + (i < n % clients)) for i in range(clients)]:
            f.result()


def one(orch, k, work):
    data = os.path.join(work, f"data-{k}")
    res = subprocess.run([orch, "keys", "create", "--name", "bench", "--scope", "admin", "--json",
                          "--data-dir", data], capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        die(f"orch keys create failed: {res.stderr.strip()}")
    port = free_port()
    api = Api(port, json.loads(res.stdout)["key"])
    log = open(os.path.join(work, f"server-{k}.log"), "wb")
    srv = subprocess.Popen([orch, "server", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
                            "--workers", "2", "--log-level", "warn"],
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    try:
        end = time.monotonic() + 30
        while True:
            if srv.poll() is not None:
                die(f"server exited with {srv.returncode}")
            try:
                api.call("GET", "/v1/health")
                break
            except Exception:
                api.conn = None
                if time.monotonic() > end:
                    die("server did not come up in 30 s")
                time.sleep(0.05)
        for wf in WORKFLOWS:
            api.call("POST", "/v1/workflows", wf)
        blockers = [api.call("POST", "/v1/workflows/block/executions", {})["id"] for _ in range(2)]
        end = time.monotonic() + 30
        while sum(api.call("GET", f"/v1/executions/{b}")["status"] == "running" for b in blockers) < 2:
            if time.monotonic() > end:
                die("the blockers did not start")
            time.sleep(0.05)
        t0 = time.monotonic()
        submit(port, api.key, "wait", k)
        submit_s = time.monotonic() - t0
        api.conn = None  # idle meanwhile: the server may have closed it
        for _ in range(SHORT):
            api.call("POST", "/v1/workflows/short/executions", {})
        shorts = wait_final(api, "short", SHORT, 600)
        if any(x["status"] != "succeeded" for x in shorts):
            die("a short execution did not succeed")
        span = max(ts(x["finishedAt"]) for x in shorts) - min(ts(x["createdAt"]) for x in shorts)
        short_rate = SHORT / span if span > 0 else float("inf")
        drain_rate = 0.0
        if k:
            t_cancel = time.time()
            for b in blockers:
                api.call("POST", f"/v1/executions/{b}/cancel", {})
            # All of them, or those that ended in the first DRAIN_S seconds.
            end = time.monotonic() + DRAIN_S
            while True:
                time.sleep(min(1.0, max(0.0, end - time.monotonic())))
                if time.monotonic() >= end or done_count(api, k) >= k:
                    break
            waits = [x for x in listing(api, "wait") if x["status"] in FINAL]
            if any(x["status"] != "succeeded" for x in waits):
                die("a waiting execution did not succeed")
            if len(waits) >= k:
                span = max(ts(x["finishedAt"]) for x in waits) - t_cancel
                drain_rate = k / span if span > 0 else float("inf")
            else:
                n = sum(ts(x["finishedAt"]) <= t_cancel + DRAIN_S for x in waits)
                drain_rate = n / DRAIN_S
        print(f"{k} {short_rate:.1f} {drain_rate:.1f} {submit_s:.2f}", flush=True)
    finally:
        if srv.poll() is None:
            os.kill(srv.pid, signal.SIGTERM)
        try:
            srv.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(srv.pid, signal.SIGKILL)
            srv.wait()
        log.close()


def pg_main(args):
    """pg-start: a private PostgreSQL, prints "URL DIR"; pg-db URL NAME: a new database,
    prints its URL; pg-stop DIR: stops and removes it."""
    from cluster import PrivatePostgres, psql, with_db
    if args[0] == "pg-start":
        pg = PrivatePostgres()
        url = pg.start()
        print(url, pg.dir)
    elif args[0] == "pg-db":
        psql(args[1], f"DROP DATABASE IF EXISTS {args[2]}")
        psql(args[1], f"CREATE DATABASE {args[2]}")
        print(with_db(args[1], args[2]))
    else:
        pg = PrivatePostgres.__new__(PrivatePostgres)
        pg.dir = args[1]
        pg.bin = os.environ.get("PGBIN") or "/usr/lib/postgresql/15/bin"
        pg.data = os.path.join(pg.dir, "data")
        pg.started = os.path.isdir(pg.data)
        pg.stop()


def hold_fds(n, argv):
    """Exec argv holding n more inheritable descriptors (on /dev/null) at 100 and up."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
    src = os.open("/dev/null", os.O_RDONLY)
    for i in range(n):
        os.dup2(src, 100 + i, inheritable=True)
    os.close(src)
    os.execv(argv[0], argv)


def main():
    if sys.argv[1] == "hold-fds":
        return hold_fds(int(sys.argv[2]), sys.argv[3:])
    if sys.argv[1].startswith("pg-"):
        return pg_main(sys.argv[1:])
    orch = sys.argv[1]
    work = tempfile.mkdtemp(prefix="orch-engine-scale-", dir=os.environ.get("TMPDIR", "/tmp"))
    try:
        for k in sys.argv[2:]:
            one(orch, int(k), work)
    finally:
        if os.environ.get("KEEP") == "1":
            print(f"kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
