"""
Several orch nodes on one real PostgreSQL server: claims, node failure (kill -9),
fencing of a paused node (SIGSTOP past its lease), a database that goes away and
comes back, the connection pool, /v1/nodes, `orch db`, `orch worker`, and the cost
of an idle cluster. Every process is real; the database is a private PostgreSQL
started by the test (tests/pg/start-pg.sh).
"""
import collections
import json
import os
import threading
import time

import pytest

from apiutil import FINAL
from conftest import SANITIZER_MARKERS, pid_alive, wait_for
from pgutil import Node, Postgres, append_cmd, side_effects


@pytest.fixture(scope="module")
def pg():
    p = Postgres().start()
    yield p
    p.destroy()


@pytest.fixture
def nodes():
    started = []
    yield started
    for n in started:
        n.cleanup()


def shapes(side, sleep=0.1):
    """Workflows of mixed shapes whose tasks append 'EXEC TASK ATTEMPT' to `side`."""
    def t(name, deps=()):
        d = {"name": name, "command": append_cmd(side, sleep), "retries": 3,
             "retryBackoff": {"initial": "100ms", "jitter": False}}
        if deps:
            d["dependsOn"] = list(deps)
        return d
    return [
        {"name": "chain", "tasks": [t("a"), t("b", ["a"]), t("c", ["b"])]},
        {"name": "fan", "tasks": [t("root")] + [t(f"x{i}", ["root"]) for i in range(4)] +
         [t("join", [f"x{i}" for i in range(4)])]},
        {"name": "single", "tasks": [t("only")]},
        {"name": "diamond", "tasks": [t("a"), t("b", ["a"]), t("c", ["a"]), t("d", ["b", "c"])]},
    ]


def executions(node, limit=1000):
    out, before = [], None
    while True:
        q = f"/v1/executions?limit={min(limit, 1000)}" + (f"&cursor={before}" if before else "")
        r = node.get(q)
        assert r.status == 200, r
        out += r.json["items"]
        before = r.json.get("nextCursor")
        if not before or len(out) >= limit:
            return out


def wait_all_final(node, ids, timeout):
    end = time.monotonic() + timeout
    while True:
        st = {e["id"]: e["status"] for e in executions(node) if e["id"] in ids}
        if len(st) == len(ids) and all(s in FINAL for s in st.values()):
            return st
        if time.monotonic() > end:
            left = collections.Counter(s for s in st.values())
            raise AssertionError(f"not all executions ended within {timeout}s: {left}")
        time.sleep(0.2)


def check_exactly_once(node, ids, side, noops=("root", "join")):
    """Every task of every execution succeeded once; side effects agree with the store
    (tasks named in `noops` have none)."""
    lines = side_effects(side)
    seen = collections.Counter(lines)
    dup = [k for k, c in seen.items() if c > 1]
    assert not dup, f"an attempt ran its side effect twice: {dup[:5]}"
    by_task = collections.defaultdict(list)
    for ex, task, attempt in lines:
        by_task[(ex, task)].append(attempt)
    lost = 0
    for ex in ids:
        d = node.execution(ex)
        assert d["status"] == "succeeded", json.dumps(d, indent=1)
        for t in d["tasks"]:
            assert t["status"] == "succeeded", (ex, t)
            ok = [a for a in t["attempts"] if a["status"] == "succeeded"]
            assert len(ok) == 1, f"{ex}/{t['name']} succeeded {len(ok)} times: {t['attempts']}"
            statuses = {a["number"]: a["status"] for a in t["attempts"]}
            lost += sum(1 for s in statuses.values() if s == "lost")
            assert set(statuses.values()) <= {"succeeded", "lost"}, (ex, t["attempts"])
            ran = by_task.get((ex, t["name"]), [])
            if t["name"] in noops:
                continue
            assert ran.count(ok[0]["number"]) == 1, (ex, t["name"], ran, statuses)
            # Any other run is of an attempt recorded as lost (it did its work just
            # before its node died, and the report never reached the store).
            for n in ran:
                assert statuses.get(n) in ("succeeded", "lost"), (ex, t["name"], ran, statuses)
    return lost


def test_three_nodes_kill_one_mid_run(pg, nodes, tmp_path):
    url = pg.database()
    side = tmp_path / "side.txt"
    n1 = Node(tmp_path, url, "n1")
    nodes.append(n1)
    n1.start()  # the first node: it takes the scheduler lease
    n2 = Node(tmp_path, url, "n2", admin_key=n1.admin_key)
    n3 = Node(tmp_path, url, "n3", role="worker", admin_key=n1.admin_key)
    nodes += [n2, n3]
    n2.start()
    n3.start()
    for d in shapes(side):
        n2.apply(d)
    tick = {"name": "tick", "tasks": [{"name": "t", "type": "noop"}],
            "schedules": [{"name": "s", "every": "1s", "overlap": "allow"}]}
    n2.apply(tick)
    names = [d["name"] for d in shapes(side)]
    ids = []
    for i in range(200):
        node = (n1, n2)[i % 2]
        ids.append(node.trigger(names[i % len(names)])["id"])
    # Kill the first node (it leads the scheduler) while work is spread over all three.
    wait_for_done = time.monotonic() + 60
    while sum(1 for e in executions(n2) if e["id"] in ids and e["status"] in FINAL) < 40:
        assert time.monotonic() < wait_for_done, "no progress"
        time.sleep(0.1)
    assert n1.get("/v1/health").json["components"]["node"]["schedulerLeader"] is True
    n1.kill()
    killed_at = time.time()
    statuses = wait_all_final(n2, set(ids), timeout=240)
    assert set(statuses.values()) == {"succeeded"}, collections.Counter(statuses.values())
    lost = check_exactly_once(n2, ids, side)
    assert lost >= 1, "the kill hit no running task: the test proves nothing"
    running = [e for e in executions(n2) if e["status"] in ("running", "queued")
               and e["workflow"] != "tick"]
    assert not running, running
    # The scheduler moved to another node: no due time doubled, none lost.
    time.sleep(2.5)
    sched = n2.get("/v1/schedules").json["items"]
    sid = [s["id"] for s in sched if s["workflow"] == "tick"][0]
    fires = n2.get(f"/v1/schedules/{sid}/fires?limit=1000").json["items"]
    due = sorted(int(time.mktime(time.strptime(f["scheduledFor"][:19], "%Y-%m-%dT%H:%M:%S")))
                 for f in fires)
    assert len(due) == len(set(due)), "a due time fired twice"
    assert due[-1] - due[0] == len(due) - 1, f"due times missing: {due}"
    assert due[0] < killed_at - 1 and due[-1] > killed_at + 3, (due[0], due[-1], killed_at)
    ticks = [e for e in executions(n2) if e["workflow"] == "tick"]
    assert len({e["scheduledFor"] for e in ticks}) == len(ticks)
    leaders = [n.get("/v1/health").json["components"]["node"]["schedulerLeader"] for n in (n2,)]
    log3 = n3.log()
    assert leaders == [True] or "fires the schedules now" in log3
    nodes_now = {n["id"]: n for n in n2.get("/v1/nodes").json["items"]}
    assert nodes_now["n1"]["state"] == "lost" and nodes_now["n1"]["executions"] == 0
    assert nodes_now["n2"]["state"] == "alive" and nodes_now["n3"]["role"] == "worker"
    for n in (n2, n3):
        assert n.stop() == 0, n.log()[-3000:]
        n.assert_log_clean()
    assert "Execution" in n2.log() + n3.log()


def test_paused_node_is_fenced(pg, nodes, tmp_path):
    """A node paused past its lease finds its execution taken; its late report is
    dropped, the task is never completed twice."""
    url = pg.database()
    side = tmp_path / "side.txt"
    a = Node(tmp_path, url, "a")
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "b", admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    a.apply({"name": "long", "tasks": [{
        "name": "work", "command": append_cmd(side, 5), "retries": 2,
        "retryBackoff": {"initial": "100ms", "jitter": False}}]})
    ex = a.trigger("long")["id"]
    a.wait_exec(ex, until=lambda d: d["tasks"][0]["status"] == "running", timeout=10)
    a.pause()
    try:
        d = b.wait_exec(ex, until=lambda d: any(x["status"] == "lost" for x in
                                                d["tasks"][0]["attempts"]), timeout=20)
    finally:
        a.resume()
    d = b.wait_exec(ex, timeout=30)
    assert d["status"] == "succeeded", d
    attempts = [(x["number"], x["status"]) for x in d["tasks"][0]["attempts"]]
    assert attempts == [(1, "lost"), (2, "succeeded")], attempts
    assert side_effects(side) == [(ex, "work", 2)], "the paused node's attempt completed"
    text = a.wait_log("another node took it over", timeout=10)
    h = a.get("/v1/health").json["components"]["node"]
    assert h["executionsLost"] >= 1, h
    assert pid_alive(a.proc.pid)
    # The paused node's view of the execution is dropped; the store has b's result.
    assert a.execution(ex)["status"] == "succeeded"
    for n in (a, b):
        assert n.stop() == 0
        n.assert_log_clean()
    assert "ERROR" not in text.split("another node took it over")[0].split("\n")[-1]


def test_database_restart_loses_nothing(pg, nodes, tmp_path):
    url = pg.database()
    side = tmp_path / "side.txt"
    n1 = Node(tmp_path, url, "r1", lease="30s")
    nodes.append(n1)
    n1.start()
    n2 = Node(tmp_path, url, "r2", lease="30s", admin_key=n1.admin_key)
    nodes.append(n2)
    n2.start()
    for d in shapes(side, sleep=0.3):
        n1.apply(d)
    ids = [(n1, n2)[i % 2].trigger(("chain", "diamond", "fan")[i % 3])["id"] for i in range(30)]
    time.sleep(1.0)
    pg.ctl("stop")
    try:
        time.sleep(1.5)
        r = n1.get("/v1/health", check=True)
        assert r.status == 503, r
        assert r.json["status"] == "degraded", r.json
        db = r.json["components"]["database"]
        assert db["reachable"] is False and db["status"] == "down", db
        r = n2.post("/v1/workflows/chain/executions")
        assert r.status == 503, r
        # the readiness probe says so too, without a key and without details
        r = n1.get("/v1/health/ready", key=None)
        assert r.status == 503 and r.json == {"status": "unavailable"}, r
        assert n1.get("/v1/health/live", key=None).status == 200
    finally:
        pg.ctl("start")
    statuses = wait_all_final(n1, set(ids), timeout=180)
    assert set(statuses.values()) == {"succeeded"}, collections.Counter(statuses.values())
    check_exactly_once(n1, ids, side)
    both = n1.log() + n2.log()
    assert "ERROR [Database] Connection lost" in both, both[-3000:]
    assert "INFO [Database] Connection restored after" in both
    h = n1.get("/v1/health").json
    assert h["components"]["database"]["status"] == "ok", h
    assert n1.get("/v1/health/ready", key=None).json == {"status": "ok"}
    for n in (n1, n2):
        assert n.stop() == 0
        n.assert_log_clean()


def test_pool_exhausted_is_a_clear_503(pg, nodes, tmp_path):
    url = pg.database()
    n = Node(tmp_path, url, "p1", env={"ORCH_DB_POOL_SIZE": "1", "ORCH_DB_POOL_TIMEOUT": "1s"})
    nodes.append(n)
    n.start()
    assert n.get("/v1/executions").status == 200
    # Hold the pool's one connection: its request waits on a lock we take, and keep
    # until we say so (psql reads its statements from a pipe).
    import subprocess
    locker = subprocess.Popen(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, text=True)
    dbname = url.rsplit("/", 1)[1]
    try:
        locker.stdin.write("BEGIN; LOCK TABLE api_keys IN ACCESS EXCLUSIVE MODE;\n")
        locker.stdin.flush()
        wait_for(lambda: pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                 "c.oid = l.relation WHERE c.relname = 'api_keys' AND "
                                 "l.mode = 'AccessExclusiveLock' AND l.granted", url=url) == "1",
                 timeout=20, what="psql to hold its lock")
        slow = {}
        t = threading.Thread(target=lambda: slow.setdefault("r", n.get("/v1/executions")))
        t.start()
        # The request holds the pool's connection once that connection waits on the lock.
        wait_for(lambda: pg.psql("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                                 f"'{dbname}' AND wait_event_type = 'Lock'") == "1",
                 timeout=20, what="the request to wait on the lock")
        r = n.get("/v1/workflows")
        assert r.status == 503, r
        msg = r.error()["message"]
        assert "connection pool is exhausted (size 1, waited 1" in msg, msg
        locker.stdin.write("COMMIT;\n")
        locker.stdin.close()
        t.join(timeout=20)
        assert slow["r"].status == 200, slow
    finally:
        if not locker.stdin.closed:
            locker.stdin.close()
        locker.wait(timeout=10)
    n.wait_log("ERROR [Database] Connection pool exhausted (size 1, waited 1", timeout=5)
    pool = n.get("/v1/health").json["components"]["database"]["pool"]
    assert pool["kind"] == "pool" and pool["size"] == 1 and pool["exhausted"] >= 1, pool
    assert n.stop() == 0
    n.assert_log_clean()


def test_nodes_db_commands_and_bad_settings(pg, nodes, tmp_path):
    url = pg.database()
    n = Node(tmp_path, url, "solo", lease="3s")
    nodes.append(n)
    n.start()
    items = n.get("/v1/nodes").json["items"]
    me = [x for x in items if x["id"] == "solo"][0]
    assert me["state"] == "alive" and me["self"] is True and me["role"] == "server", me
    res = n.orch("db", "status", "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["backend"] == "postgres" and st["schemaVersion"] == st["latest"] >= 5, st
    assert "solo" in [x["id"] for x in st["nodes"]]
    assert "secret" not in res.stdout
    res = n.orch("db", "migrate")
    assert res.returncode == 0 and "schema version" in res.stdout, res
    # A second live node with the same name is refused.
    twin = Node(tmp_path, url, "solo", admin_key=n.admin_key)
    with pytest.raises(AssertionError, match="is in use by a running node"):
        twin.start(timeout=10)
    # orch run on PostgreSQL: a node of its own, visible to the server.
    wfile = tmp_path / "one.json"
    wfile.write_text(json.dumps({"name": "one", "tasks": [
        {"name": "hello", "command": ["sh", "-c", "echo hi from pg"]}]}))
    res = n.orch("run", wfile, "--json")
    assert res.returncode == 0, res.stderr
    ex = json.loads(res.stdout)["id"]
    assert n.execution(ex)["status"] == "succeeded"
    res = n.orch("logs", ex)
    assert "hi from pg" in res.stdout, res
    # A worker needs a database; a dead database is a clear error.
    res = n.orch("worker", env={"DATABASE_URL": ""})
    assert res.returncode == 2 and "DATABASE_URL" in res.stderr, res
    res = n.orch("db", "status", env={"DATABASE_URL": "postgresql://u:hunter2@127.0.0.1:9/x"})
    assert res.returncode == 70 and "cannot open the PostgreSQL store" in res.stderr, res
    assert "hunter2" not in res.stderr
    assert n.stop() == 0
    res = n.orch("db", "status", "--json")
    solo = [x for x in json.loads(res.stdout)["nodes"] if x["id"] == "solo"][0]
    assert solo["stopped"] is True, solo
    n.assert_log_clean()


def test_idle_cluster_is_quiet(pg, nodes, tmp_path):
    """No tight polling: an idle node issues a few statements per heartbeat."""
    url = pg.database()
    dbname = url.rsplit("/", 1)[1]
    a = Node(tmp_path, url, "i1", lease="3s")
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "i2", lease="3s", admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    time.sleep(2)
    q = f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{dbname}'"

    def cpu_ticks(pid):
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    t0, before = time.monotonic(), int(pg.psql(q))
    cpu0 = [cpu_ticks(n.proc.pid) for n in (a, b)]
    time.sleep(6)
    after, secs = int(pg.psql(q)), time.monotonic() - t0
    cpu1 = [cpu_ticks(n.proc.pid) for n in (a, b)]
    rate = (after - before) / secs
    # Two nodes, a heartbeat a second each (lease 3s): three statements each.
    assert rate < 8, f"{rate:.1f} transactions/s at idle"
    # And no busy loop: an idle node sleeps in epoll.
    hz = os.sysconf("SC_CLK_TCK")
    for n, c0, c1 in zip((a, b), cpu0, cpu1):
        share = (c1 - c0) / hz / secs
        assert share < 0.05, f"node {n.name} used {share:.0%} of a CPU at idle"
    for n in (a, b):
        assert n.stop() == 0
        n.assert_log_clean()
    for m in SANITIZER_MARKERS:
        assert m not in a.all_logs() + b.all_logs()


def test_cancel_through_another_node(pg, nodes, tmp_path):
    """A cancel sent to a node that does not run the execution is done by its owner."""
    url = pg.database()
    a = Node(tmp_path, url, "c1", lease="3s")
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "c2", lease="3s", admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    long_run = tmp_path / "long"
    long_run.touch()
    a.apply({"name": "slow", "tasks": [
        {"name": "wait", "command": ["sh", "-c", f'if [ -e "{long_run}" ]; then sleep 30; '
                                                 'else sleep 3; fi']},
        {"name": "after", "dependsOn": ["wait"], "command": ["true"]}]})
    ex = a.trigger("slow")["id"]
    a.wait_exec(ex, until=lambda d: d["tasks"][0]["status"] == "running", timeout=10)
    t0 = time.monotonic()
    r = b.post(f"/v1/executions/{ex}/cancel")
    assert r.status == 200, r
    assert r.json["status"] == "cancelled", r.json
    assert time.monotonic() - t0 < 5
    d = b.execution(ex)
    assert [t["status"] for t in d["tasks"]] == ["cancelled", "cancelled"], d
    assert "cancelled (asked through another node)" in a.log()
    assert "cancel asked of the node that runs it" in b.log()
    # A second cancel is a conflict, from either node.
    for n in (a, b):
        assert n.post(f"/v1/executions/{ex}/cancel").status == 409
    # Unknown executions are 404 on every node.
    assert b.post("/v1/executions/ex_0000000000000000/cancel").status == 404
    # The request ended with the run it was asked of: a retry (3 s, several heartbeats
    # of its owner) is not cancelled by it again.
    long_run.unlink()
    assert a.post(f"/v1/executions/{ex}/retry").status in (200, 202)
    d = a.wait_exec(ex, timeout=30)
    assert d["status"] == "succeeded", d
    for n in (a, b):
        assert n.stop() == 0
        n.assert_log_clean()


def test_cancel_through_a_paused_owner_is_202(pg, nodes, tmp_path):
    """The owner cannot act (paused, well within its lease): the node asked answers 202
    after its 5 s wait, and the owner, resumed, cancels the execution."""
    url = pg.database()
    a = Node(tmp_path, url, "d1", lease="60s")
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "d2", lease="60s", admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    a.apply({"name": "slow", "tasks": [{"name": "wait", "command": ["sleep", "30"]}]})
    ex = a.trigger("slow")["id"]
    a.wait_exec(ex, until=lambda d: d["tasks"][0]["status"] == "running", timeout=10)
    a.pause()
    try:
        t0 = time.monotonic()
        r = b.post(f"/v1/executions/{ex}/cancel")
        took = time.monotonic() - t0
        assert r.status == 202, r
        assert r.json["id"] == ex and r.json["status"] == "running", r.json
        assert took >= 4.9, f"answered 202 after {took:.1f}s, before its 5 s wait"
    finally:
        a.resume()
    d = b.wait_exec(ex, timeout=20)
    assert d["status"] == "cancelled", d
    assert d["tasks"][0]["status"] == "cancelled", d
    assert "cancelled (asked through another node)" in a.wait_log("asked through another node")
    for n in (a, b):
        assert n.stop() == 0
        n.assert_log_clean()


def test_idle_node_wakes_on_notify(pg, nodes, tmp_path):
    """LISTEN/NOTIFY: an execution handed over by a node with no free slot is claimed and
    run by an idle node at once, not at its next heartbeat (20 s here)."""
    url = pg.database()
    a = Node(tmp_path, url, "l1", lease="60s", workers=1)
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "l2", lease="60s", workers=1, admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    a.apply({"name": "hold", "tasks": [{"name": "wait", "command": ["sleep", "30"]}]})
    a.apply({"name": "quick", "tasks": [{"name": "hi", "command": ["echo", "hi"]}]})
    held = a.trigger("hold")["id"]
    a.wait_exec(held, until=lambda d: d["tasks"][0]["status"] == "running" and
                d["tasks"][0]["attempts"][0]["node"].endswith(f":{a.proc.pid}"), timeout=10)
    t0 = time.monotonic()
    ex = a.trigger("quick")["id"]
    d = a.wait_exec(ex, timeout=30)
    took = time.monotonic() - t0
    assert d["status"] == "succeeded", d
    assert d["tasks"][0]["attempts"][0]["node"].endswith(f":{b.proc.pid}"), d
    assert "queued for any node (no free slot here)" in a.log()
    assert took < 5, f"the idle node took {took:.1f}s to run handed-over work (heartbeat 20 s)"
    assert a.post(f"/v1/executions/{held}/cancel").status == 200
    for n in (a, b):
        assert n.stop() == 0
        n.assert_log_clean()


def fan_workflow(name, side, n, sleep, retries=2):
    work = [{"name": f"w{i}", "dependsOn": ["root"], "retries": retries,
             "retryBackoff": {"initial": "100ms", "jitter": False},
             "command": f"sleep {sleep}; echo \"$ORCH_EXECUTION_ID $ORCH_TASK $ORCH_ATTEMPT\" "
                        f">> {side}; echo '{{\"n\": {i}}}' > \"$ORCH_OUTPUT\""}
            for i in range(n)]
    return {"name": name, "tasks": [{"name": "root", "type": "noop"}] + work +
            [{"name": "join", "type": "noop", "dependsOn": [w["name"] for w in work]}]}


def test_one_fanout_spreads_over_nodes(pg, nodes, tmp_path):
    """The tasks of one execution run on every node with free slots: its owner offers
    what it has no slot for, the others claim and run them and report back."""
    url = pg.database()
    side = tmp_path / "side.txt"
    a = Node(tmp_path, url, "f1", lease="3s")
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "f2", role="worker", lease="3s", admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    time.sleep(1.5)  # a's heartbeat learns that b has slots
    a.apply(fan_workflow("fan8", side, 8, 0.6))
    ex = a.trigger("fan8")["id"]
    d = a.wait_exec(ex, timeout=30)
    assert d["status"] == "succeeded", d
    work = [t for t in d["tasks"] if t["name"].startswith("w")]
    ran_on = {t["attempts"][-1]["node"] for t in work}
    assert len(ran_on) == 2, f"all tasks ran on {ran_on}"
    assert {t["output"]["n"] for t in work} == set(range(8))
    check_exactly_once(a, [ex], side)
    assert "offered to the other nodes" in a.log()
    assert "runs here for node 'f1'" in b.log()

    # The worker dies while it runs tasks of the owner's: they are lost and run again,
    # without using their retries (none here).
    side.unlink()
    a.apply(fan_workflow("fan8z", side, 8, 0.6, retries=0))
    ex = a.trigger("fan8z")["id"]
    a.wait_exec(ex, until=lambda d: any(x["node"] and x["node"].endswith(f":{b.proc.pid}")
                                        for t in d["tasks"] for x in t["attempts"]), timeout=20)
    b.kill()
    d = a.wait_exec(ex, timeout=40)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    lost = [x for t in d["tasks"] for x in t["attempts"] if x["status"] == "lost"]
    assert lost and all(x["error"].startswith("lost: the node running it (f2)") for x in lost)
    check_exactly_once(a, [ex], side)
    assert a.stop() == 0
    a.assert_log_clean()


def test_owner_dies_while_others_run_its_tasks(pg, nodes, tmp_path):
    """The node that takes over an execution adopts the tasks other nodes run for it."""
    url = pg.database()
    side = tmp_path / "side.txt"
    a = Node(tmp_path, url, "o1", lease="2s")
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "o2", lease="2s", admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    time.sleep(1)
    a.apply(fan_workflow("fan6", side, 6, 2))
    ex = a.trigger("fan6")["id"]
    b.wait_log("runs here for node 'o1'", timeout=20)
    a.kill()
    d = b.wait_exec(ex, timeout=60)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    assert "runs on another node: taken over" in b.log()
    adopted = [t for t in d["tasks"] if t["name"].startswith("w") and
               [x["status"] for x in t["attempts"]] == ["succeeded"] and
               t["attempts"][0]["node"].endswith(f":{b.proc.pid}")]
    assert adopted, "no task kept running on the surviving node"
    # Tasks the dead owner ran itself are lost and retried; nothing succeeded twice.
    lines = side_effects(side)
    for t in d["tasks"]:
        ok = [x for x in t["attempts"] if x["status"] == "succeeded"]
        assert len(ok) == 1
    assert len({(e, t, n) for e, t, n in lines}) == len(lines)
    assert b.stop() == 0
    b.assert_log_clean()


def test_paused_runner_gives_up_its_task(pg, nodes, tmp_path):
    """A node paused past its lease while it runs another node's task: the owner records
    the attempt lost, ends the orphan and runs the task again; the runner, resumed, finds
    its run given up; the task succeeds once."""
    url = pg.database()
    side = tmp_path / "side.txt"
    a = Node(tmp_path, url, "p1", lease="2s", workers=1)
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "p2", role="worker", lease="2s", workers=1, admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    time.sleep(1)
    a.apply(fan_workflow("fan2", side, 2, 5))
    ex = a.trigger("fan2")["id"]
    b.wait_log("runs here for node 'p1'", timeout=20)
    b.pause()
    try:
        a.wait_log("was lost with node 'p2'", timeout=20)
    finally:
        b.resume()
    d = a.wait_exec(ex, timeout=60)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    lost = [x for t in d["tasks"] for x in t["attempts"] if x["status"] == "lost"]
    assert len(lost) == 1 and lost[0]["error"].startswith("lost: the node running it (p2)")
    check_exactly_once(a, [ex], side)
    assert len(side_effects(side)) == 2, side_effects(side)
    for n in (a, b):
        assert n.stop() == 0
        n.assert_log_clean()


def test_owner_of_parent_and_children_dies(pg, nodes, tmp_path):
    """A parent fans out over 4 child executions (a workflow task with forEach); its node is
    killed while the children run. The surviving node takes over the parent and the children
    (claimed separately), the parent's tasks wait for their children and end with them: the
    parent succeeds with every child's output, each child task succeeded exactly once, and no
    execution is left unfinished."""
    url = pg.database()
    side = tmp_path / "side.txt"
    a = Node(tmp_path, url, "p1", lease="2s")
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "p2", lease="2s", admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    time.sleep(1)
    a.apply({"name": "kid", "params": {"n": {"type": "number", "required": True}},
             "outputs": {"n": "{{ tasks.work.output.n }}"},
             "tasks": [{"name": "work", "retries": 2,
                        "retryBackoff": {"initial": "100ms", "jitter": False},
                        "command": f"sleep 2; echo \"$ORCH_EXECUTION_ID $ORCH_TASK "
                                   f"$ORCH_ATTEMPT\" >> {side}; "
                                   "echo \"{\\\"n\\\": $ORCH_PARAM_n}\" > \"$ORCH_OUTPUT\""}]})
    a.apply({"name": "mom", "tasks": [
        {"name": "each", "forEach": [0, 1, 2, 3], "type": "workflow", "workflow": "kid",
         "params": {"n": "{{ item }}"}},
        {"name": "sum", "type": "noop", "dependsOn": ["each"]}]})
    # Only node a may take it: b is asked through a, which owns what it creates.
    ex = a.trigger("mom")["id"]
    a.wait_log("child execution", timeout=20)
    time.sleep(0.5)
    a.kill()
    d = b.wait_exec(ex, timeout=90)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    assert [o["n"] for o in [t for t in d["tasks"] if t["name"] == "each"][0]["output"]] == \
        [0, 1, 2, 3]
    kids = [e for e in executions(b) if e["parentId"] == ex]
    final = [e for e in kids if e["status"] == "succeeded"]
    assert len(final) >= 4 and all(e["status"] in FINAL for e in kids), kids
    lines = side_effects(side)
    assert len(set(lines)) == len(lines), lines
    lost = 0
    for k in final:
        kd = b.execution(k["id"])
        ok = [x for x in kd["tasks"][0]["attempts"] if x["status"] == "succeeded"]
        assert len(ok) == 1, kd
        lost += sum(1 for x in kd["tasks"][0]["attempts"] if x["status"] == "lost")
    assert lost >= 1, "the children were not running when their node died"
    assert not [e for e in executions(b) if e["status"] not in FINAL]
    assert b.stop() == 0
    b.assert_log_clean()


def heard_of(owner, other):
    """Has `owner` renewed its heartbeat since `other` registered (so it counts the slots
    of `other` when it decides what to offer)?"""
    nodes_now = {n["id"]: n for n in owner.get("/v1/nodes").json["items"]}
    o, n = nodes_now.get(owner.name), nodes_now.get(other.name)
    return bool(o and n and n["state"] == "alive" and o["lastHeartbeatAt"] and
                o["lastHeartbeatAt"] > n["startedAt"])


def test_worker_runs_many_short_tasks(pg, nodes, tmp_path):
    """A fan-out of 40 tasks that end at once (echo), most of them offered to an `orch
    worker`: every offered task's result reaches its owner (the runner's pid, written with
    the result in the same turn, must not erase it), the execution succeeds, and no offer
    is left behind."""
    url = pg.database()
    a = Node(tmp_path, url, "s1", lease="3s", workers=1)
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, "w1", role="worker", lease="3s", workers=4, admin_key=a.admin_key)
    nodes.append(b)
    b.start()
    wait_for(lambda: heard_of(a, b), timeout=20, what="a heartbeat of s1 that counts w1's slots")
    a.apply({"name": "echoes", "tasks": [
        {"name": "p", "forEach": list(range(40)), "command": ["echo", "{{ item }}"]}]})
    for _ in range(2):
        ex = a.trigger("echoes")["id"]
        d = a.wait_exec(ex, timeout=40)
        assert d["status"] == "succeeded", json.dumps(d, indent=1)[:3000]
        each = [t for t in d["tasks"] if t.get("group") == "p"]
        assert len(each) == 40 and all(t["status"] == "succeeded" for t in each)
        assert all([x["status"] for x in t["attempts"]] == ["succeeded"] for t in each)
        on_worker = [t for t in each if t["attempts"][0]["node"].endswith(f":{b.proc.pid}")]
        assert on_worker, "no task ran on the worker: the test proves nothing"
    assert "runs here for node 's1'" in b.log()
    assert pg.psql("SELECT count(*) FROM task_offers", url=url) == "0"
    for n in (a, b):
        assert n.stop() == 0


def test_backfill_queue_moves_to_the_new_leader(pg, nodes, tmp_path):
    """A backfill's due times are queued in the database: when the node that fires the
    schedules is killed with some still waiting, the next leader runs them, each once, in
    order. A backfill asked of a node that does not lead is run by the leader."""
    url = pg.database()
    marker = tmp_path / "bf.marks"
    n1 = Node(tmp_path, url, "b1")
    nodes.append(n1)
    n1.start()  # the first node: it takes the scheduler lease
    n2 = Node(tmp_path, url, "b2", admin_key=n1.admin_key)
    nodes.append(n2)
    n2.start()
    n1.apply({"name": "bf", "tasks": [{"name": "m", "command":
                                       f'echo "$ORCH_SCHEDULED_FOR" >> {marker}; sleep 1'}],
              "schedules": [{"name": "d", "cron": "0 0 * * *", "catchup": "none"}]})
    end = time.monotonic() + 20
    while not [s for s in n1.get("/v1/schedules").json["items"] if s["workflow"] == "bf"]:
        assert time.monotonic() < end, "the schedule was not registered"
        time.sleep(0.05)
    sid = [s["id"] for s in n1.get("/v1/schedules").json["items"] if s["workflow"] == "bf"][0]
    day = 86400000
    until = int(time.time() * 1000) // day * day - 10 * day
    frm = until - 4 * day
    want = [frm + day * i for i in range(1, 5)]

    def iso_ms(s):
        from datetime import datetime
        return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)

    def fires():
        return {iso_ms(f["scheduledFor"]): f for f in
                n2.get(f"/v1/schedules/{sid}/fires?limit=1000").json["items"]}

    assert n1.get("/v1/health").json["components"]["node"]["schedulerLeader"] is True
    r = n1.post(f"/v1/schedules/{sid}/backfill", {"from": frm, "until": until})
    assert r.status == 202 and r.json["dueTimes"] == 4, r
    f = fires()
    assert sorted(f) == want, f
    assert sorted(t for t in f if f[t]["status"] == "queued") == want[1:], f
    n1.kill()

    def done():
        ex = [e for e in executions(n2) if e["workflow"] == "bf"]
        return len(ex) >= 4 and all(e["status"] in FINAL for e in ex) and ex

    end = time.monotonic() + 90
    while not done():
        assert time.monotonic() < end, f"the queued due times did not run: {fires()}"
        time.sleep(0.1)
    ex = sorted(done(), key=lambda e: iso_ms(e["createdAt"]))
    assert [iso_ms(e["scheduledFor"]) for e in ex] == want, ex
    assert all(v["status"] == "fired" for v in fires().values()), fires()
    assert "queued due times to run" in n2.log(), n2.log()[-3000:]

    # A backfill asked of a node that does not fire the schedules: the leader runs it.
    n1.start()
    assert n2.get("/v1/health").json["components"]["node"]["schedulerLeader"] is True
    t = until - 6 * day
    r = n1.post(f"/v1/schedules/{sid}/backfill", {"from": t - day, "until": t})
    assert r.status == 202 and r.json["dueTimes"] == 1, r
    end = time.monotonic() + 30
    while not [e for e in executions(n2) if e["workflow"] == "bf" and
               iso_ms(e["scheduledFor"]) == t and e["status"] in FINAL]:
        assert time.monotonic() < end, f"the backfill asked of b1 did not run: {fires()}"
        time.sleep(0.1)
    assert fires()[t]["status"] == "fired"
    assert "fired for 2" in n2.log(-1) and "fired for" not in n1.log(-1), n1.log(-1)[-3000:]
    for n in (n1, n2):
        assert n.stop() == 0, n.log()[-3000:]
        n.assert_log_clean()
