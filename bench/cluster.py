#!/usr/bin/python3
"""bench/cluster.py (run by bench/cluster.sh): orch on PostgreSQL with 1, 2 and 3 nodes.

Per node count N and rep: a fresh database, N nodes (n1 `orch server` on a free loopback
port, the others `orch worker`; --workers $BENCH_CONCURRENCY, --lease 10s), the workflow
"fan" (noop root, 8 tasks running `sleep 0.05`, noop join), CLUSTER_EXECS executions
submitted through the API by one client as fast as it can; wall time = last finishedAt -
first createdAt (from the API); every execution must succeed. Then, with the largest
cluster idle, the database's transactions/s (pg_stat_database) and each node's CPU.
PostgreSQL: a private server under /tmp (fsync on, synchronous_commit on), or the server
of $PG_URL if set.
Environment: ORCH_BIN, PG_URL, PGBIN, BENCH_CONCURRENCY (2), CLUSTER_EXECS (40),
CLUSTER_REPS (3), CLUSTER_NODES ("1 2 3"), CLUSTER_IDLE_S (10), KEEP=1 (keep node logs).
"""
import http.client, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
import urllib.parse
from datetime import datetime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORCH = os.environ.get("ORCH_BIN") or os.path.join(REPO, "build", "src", "cli", "orch")
WORKERS = int(os.environ.get("BENCH_CONCURRENCY") or 2)
EXECS = int(os.environ.get("CLUSTER_EXECS") or 40)
REPS = int(os.environ.get("CLUSTER_REPS") or 3)
NODES = [int(x) for x in (os.environ.get("CLUSTER_NODES") or "1 2 3").split()]
IDLE_S = float(os.environ.get("CLUSTER_IDLE_S") or 10)
FAN = int(os.environ.get("CLUSTER_FAN") or 8)
SLEEP = float(os.environ.get("CLUSTER_SLEEP") or 0.05)
TASKS = FAN + 2
FINAL = {"succeeded", "failed", "cancelled", "timed_out"}
WORKFLOW = {"name": "fan", "tasks": [{"name": "root", "type": "noop"}] +
            [{"name": f"w{i}", "command": ["sleep", str(SLEEP)], "dependsOn": ["root"]}
             for i in range(FAN)] +
            [{"name": "join", "type": "noop", "dependsOn": [f"w{i}" for i in range(FAN)]}]}


def die(msg):
    raise SystemExit(f"cluster: {msg}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(url, sql):
    res = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
                         capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        die(f"psql failed on {sql!r}: {res.stderr.strip()}")
    return res.stdout.strip()


def with_db(url, name):
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((u.scheme, u.netloc, "/" + name, u.query, u.fragment))


class PrivatePostgres:
    """initdb + pg_ctl as tests/pg/start-pg.sh does, but with fsync and synchronous_commit on."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="orch-cluster-pg-", dir="/tmp")
        self.bin = os.environ.get("PGBIN") or "/usr/lib/postgresql/15/bin"
        if not os.path.exists(os.path.join(self.bin, "initdb")):
            self.bin = subprocess.run(["pg_config", "--bindir"], capture_output=True,
                                      text=True).stdout.strip() or "/nonexistent"
        self.data, self.log = os.path.join(self.dir, "data"), os.path.join(self.dir, "pg.log")
        self.started = False

    def pg(self, *args):
        as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        with open(os.path.join(self.dir, "ctl.log"), "ab") as f:
            return subprocess.run(as_pg + [os.path.join(self.bin, args[0])] + list(args[1:]),
                                  stdout=f, stderr=subprocess.STDOUT, timeout=120).returncode

    def start(self):
        sock = os.path.join(self.dir, "sock")
        os.makedirs(sock)
        open(self.log, "w").close()
        if os.getuid() == 0:
            for p in (self.dir, sock, self.log):
                shutil.chown(p, "postgres")
        if self.pg("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8") != 0:
            die("initdb failed:\n" + open(os.path.join(self.dir, "ctl.log")).read())
        for _ in range(5):  # a port may be taken between free_port() and the start
            port = free_port()
            opts = (f"-p {port} -c listen_addresses=127.0.0.1 -k {sock} -c max_connections=200"
                    " -c fsync=on -c synchronous_commit=on")
            if self.pg("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", opts,
                       "start") == 0:
                self.started = True
                return f"postgresql://postgres@127.0.0.1:{port}/postgres"
        die("cannot start PostgreSQL:\n" + open(self.log).read()[-2000:])

    def stop(self):
        if self.started:
            self.pg("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


class Api:
    def __init__(self, port, key):
        self.port, self.key, self.conn = port, key, None

    def call(self, method, path, body=None):
        for attempt in (1, 2):  # GETs only: a keep-alive connection the server closed
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.conn.request(method, path, body=None if body is None else json.dumps(body),
                                  headers={"Authorization": f"Bearer {self.key}",
                                           "Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
                break
            except (OSError, http.client.HTTPException):
                self.conn = None
                if attempt == 2 or method != "GET":
                    raise
        if r.status not in (200, 201):
            die(f"{method} {path}: HTTP {r.status}: {data[:500]!r}")
        return json.loads(data)

    def executions(self):
        out, cursor = [], None
        while True:
            q = "/v1/executions?workflow=fan&limit=1000" + (f"&cursor={cursor}" if cursor else "")
            page = self.call("GET", q)
            out += page["items"]
            cursor = page.get("nextCursor")
            if not cursor:
                return out


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class Cluster:
    def __init__(self, work, url, n, tag):
        self.work, self.url, self.n, self.tag, self.procs = work, url, n, tag, []
        self.env = dict(os.environ, DATABASE_URL=url)

    def start(self):
        res = subprocess.run([ORCH, "keys", "create", "--name", "bench", "--scope", "admin", "--json"],
                             env=self.env, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            die(f"orch keys create failed: {res.stderr.strip()}")
        self.port = free_port()
        self.api = Api(self.port, json.loads(res.stdout)["key"])
        for i in range(1, self.n + 1):
            role = ["server", "--listen", f"127.0.0.1:{self.port}"] if i == 1 else ["worker"]
            with open(self.log(i), "wb") as log:
                self.procs.append(subprocess.Popen(
                    [ORCH] + role + ["--node", f"n{i}", "--lease", "10s", "--workers", str(WORKERS),
                                     "--log-level", "warn"],
                    env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True))
        end = time.monotonic() + 30
        while True:
            for i, p in enumerate(self.procs):
                if p.poll() is not None:
                    die(f"node n{i + 1} exited with {p.returncode}:\n" + open(self.log(i + 1)).read())
            try:
                nodes = self.api.call("GET", "/v1/nodes")["items"]
                if sum(x["state"] == "alive" and x["role"] in ("server", "worker") for x in nodes) >= self.n:
                    return self
            except (OSError, http.client.HTTPException):
                pass
            if time.monotonic() > end:
                die(f"{self.n} nodes did not come up in 30 s (logs in {self.work})")
            time.sleep(0.05)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for i, p in enumerate(self.procs):
            try:
                rc = p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                rc = p.wait()
            logged = open(self.log(i + 1)).read().strip()
            if rc != 0 or logged:  # --log-level warn: a clean run logs nothing
                print(f"cluster: node n{i + 1} exited with {rc}; its log:\n{logged[-2000:]}", file=sys.stderr)
        self.procs = []

    def cpu(self):
        """CPU seconds (user + system) each node has used so far."""
        ticks = [open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[11:13] for p in self.procs]
        return [(int(u) + int(s)) / os.sysconf("SC_CLK_TCK") for u, s in ticks]

    def log(self, i):
        return os.path.join(self.work, f"{self.tag}-n{i}.log")


def run_once(work, admin, n, rep):
    db = f"orch_cluster_{os.getpid()}_{n}_{rep}"
    psql(admin, f"CREATE DATABASE {db}")
    c = Cluster(work, with_db(admin, db), n, f"n{n}-r{rep}")
    try:
        c.start()
        c.api.call("POST", "/v1/workflows", WORKFLOW)
        t0 = time.monotonic()
        ids = [c.api.call("POST", "/v1/workflows/fan/executions", {})["id"] for _ in range(EXECS)]
        submit = time.monotonic() - t0
        end = time.monotonic() + 600
        while True:
            done = {e["id"]: e for e in c.api.executions() if e["status"] in FINAL}
            if all(i in done for i in ids):
                break
            if time.monotonic() > end:
                die(f"N={n}: {len(ids) - len(done)} executions not final after 600 s")
            time.sleep(0.1)
        bad = [(i, done[i]["status"]) for i in ids if done[i]["status"] != "succeeded"]
        if bad:
            die(f"N={n} rep {rep}: {len(bad)} of {len(ids)} executions did not succeed: {bad[:5]}")
        wall = max(ts(done[i]["finishedAt"]) for i in ids) - min(ts(done[i]["createdAt"]) for i in ids)
        per_node = psql(c.url, "SELECT coalesce(owner_node, '-') || '=' || count(*) FROM executions"
                               " GROUP BY owner_node ORDER BY owner_node").split()
        print(f"N={n} rep {rep}: {wall:.3f} s, {EXECS * TASKS / wall:.0f} tasks/s (submitting took "
              f"{submit:.3f} s), executions per node: {' '.join(per_node)}", flush=True)
        idle = None
        if n == max(NODES) and rep == REPS:
            q = f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{db}'"
            time.sleep(2)  # let the last statistics of the run be flushed
            t0, x0, c0 = time.monotonic(), int(psql(admin, q)), c.cpu()
            time.sleep(IDLE_S)
            x1, c1, secs = int(psql(admin, q)), c.cpu(), time.monotonic() - t0
            idle = (x1 - x0) / secs, [(b - a) / secs * 100 for a, b in zip(c0, c1)]
        return wall, idle
    finally:
        c.stop()
        psql(admin, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def main():
    if not os.access(ORCH, os.X_OK):
        die(f"no orch binary at {ORCH} (build it, or set ORCH_BIN)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = tempfile.mkdtemp(prefix="orch-cluster-", dir="/tmp")
    pg = None
    try:
        admin = os.environ.get("PG_URL")
        if not admin:
            pg = PrivatePostgres()
            admin = pg.start()
        print(f"cluster: PostgreSQL {psql(admin, 'SHOW server_version')} (fsync "
              f"{psql(admin, 'SHOW fsync')}, synchronous_commit {psql(admin, 'SHOW synchronous_commit')}),"
              f" {os.cpu_count()} CPUs, {EXECS} executions x {TASKS} tasks ({FAN} x sleep {SLEEP}),"
              f" --workers {WORKERS} per node, {REPS} reps", flush=True)
        walls, idle = {}, None
        for n in NODES:
            walls[n] = []
            for rep in range(1, REPS + 1):
                w, i = run_once(work, admin, n, rep)
                walls[n].append(w)
                idle = i if i is not None else idle
        tasks = EXECS * TASKS
        base = tasks / statistics.median(walls[NODES[0]])
        print(f"\n| nodes | slots | wall s median | min | max | tasks/s (median) | vs {NODES[0]} node"
              f" | sleep floor s |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for n in NODES:
            med = statistics.median(walls[n])
            floor = EXECS * FAN * SLEEP / (n * WORKERS)
            print(f"| {n} | {n * WORKERS} | {med:.3f} | {min(walls[n]):.3f} | {max(walls[n]):.3f} | "
                  f"{tasks / med:.0f} | {tasks / med / base:.2f} | {floor:.2f} |")
        if idle is not None:
            cpu = " ".join(f"n{i + 1} {x:.0f}%" for i, x in enumerate(idle[1]))
            print(f"\nidle, {max(NODES)} nodes, {IDLE_S:.0f} s: {idle[0]:.1f} transactions/s in the database;"
                  f" CPU of one core per node: {cpu}")
    finally:
        if pg:
            pg.stop()
        if os.environ.get("KEEP") == "1":
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
