"""
Three orch nodes on one PostgreSQL server with Redis beside it (issue 17): offers go
through the Redis stream and its consumer group, wake-ups over pub/sub, and each
task's output into its live log stream. Then Redis fails in every way we can make it
fail mid-run - killed and restarted, flushed, paused past the client's timeouts - and
a node is killed: every task succeeds exactly once in the store (side effects counted
as in test_cluster.py), nothing stays running, and the nodes fall back to PostgreSQL
and come back to Redis. Every process is real: PostgreSQL (tests/pg), redis-server
(redisutil.py) and the orch nodes.
"""
import collections
import json
import time

import pytest

from pgutil import Node, Postgres
from redisutil import Redis
from test_cluster import check_exactly_once, executions, fan_workflow, wait_all_final
from test_redis_api import Follower

STREAM = "orch:dispatch"
GROUP = "orch-nodes"
FALLBACK = "this node goes on with PostgreSQL alone"
BACK = "answers again after"


@pytest.fixture(scope="module")
def pg():
    p = Postgres().start()
    yield p
    p.destroy()


@pytest.fixture
def redis():
    r = Redis().start()
    yield r
    r.destroy()


@pytest.fixture
def nodes():
    started = []
    yield started
    for n in started:
        n.cleanup()


def three_nodes(tmp_path, url, redis, nodes, prefix):
    """Two servers and a worker, each with 2 slots and Redis."""
    env = {"ORCH_REDIS_URL": redis.url()}
    a = Node(tmp_path, url, prefix + "1", lease="2s", env=env)
    nodes.append(a)
    a.start()
    b = Node(tmp_path, url, prefix + "2", lease="2s", env=env, admin_key=a.admin_key)
    c = Node(tmp_path, url, prefix + "3", role="worker", lease="2s", env=env,
             admin_key=a.admin_key)
    nodes += [b, c]
    b.start()
    c.start()
    for n in (a, b, c):
        n.wait_log("[Redis] Using", timeout=10)
    # a's heartbeat (lease / 3) learns the others' slots: it offers only to them.
    time.sleep(1.5)
    return a, b, c


def group_info(redis):
    """The dispatch stream's consumer group as a dict (XINFO GROUPS), or None."""
    try:
        groups = redis.command("XINFO", "GROUPS", STREAM)
    except Exception:  # the stream does not exist (flushed)
        return None
    for g in groups:
        d = dict(zip(g[::2], g[1::2]))
        if d.get("name") == GROUP:
            return d
    return None


def ran_on(detail):
    """The processes (host:pid) the work tasks' last attempts ran in."""
    return {t["attempts"][-1]["node"] for t in detail["tasks"] if t["name"].startswith("w")}


def none_running(node, ids):
    left = [e for e in executions(node) if e["id"] in ids and e["status"] in ("queued", "running")]
    assert not left, left


def stop_clean(*ns):
    for n in ns:
        assert n.stop() == 0, n.log()[-3000:]
        n.assert_log_clean()


def start_fans(a, side, name, count, width, sleep):
    a.apply(fan_workflow(name, side, width, sleep, retries=3))
    return [a.trigger(name)["id"] for _ in range(count)]


def test_fanout_spreads_over_three_nodes_through_redis(pg, redis, nodes, tmp_path):
    url = pg.database()
    side = tmp_path / "side.txt"
    a, b, c = three_nodes(tmp_path, url, redis, nodes, "r")
    a.apply(fan_workflow("fan12", side, 12, 0.6))
    ex = a.trigger("fan12")["id"]
    d = a.wait_exec(ex, timeout=60)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    # Spread over the three nodes; every output came back to the owner.
    assert len(ran_on(d)) == 3, ran_on(d)
    assert {t["output"]["n"] for t in d["tasks"] if t["name"].startswith("w")} == set(range(12))
    check_exactly_once(a, [ex], side)
    # The offers went through the stream: entries were delivered, and all acknowledged.
    g = group_info(redis)
    assert g and g["entries-read"] >= 1 and g["pending"] == 0, g
    consumers = {dict(zip(x[::2], x[1::2]))["name"]
                 for x in redis.command("XINFO", "CONSUMERS", STREAM, GROUP)}
    assert {"r2", "r3"} & consumers, consumers
    assert "runs here for node 'r1'" in b.log() + c.log()
    stop_clean(a, b, c)


def test_live_log_is_in_redis_while_the_task_runs(pg, redis, nodes, tmp_path):
    """A task's output is in its attempt's stream while it runs (it waits for a file the
    test writes only once it has read the first line from Redis), then its end entry."""
    url = pg.database()
    a, b, c = three_nodes(tmp_path, url, redis, nodes, "l")
    go = tmp_path / "go"
    a.apply({"name": "talk", "tasks": [{
        "name": "say",
        "command": f"echo first; echo oops >&2; while [ ! -e {go} ]; do sleep 0.05; done; "
                   f"echo second"}]})
    ex = a.trigger("talk")["id"]
    key = f"orch:log:{ex}:0:1"
    end = time.monotonic() + 30
    entries = []
    while time.monotonic() < end:
        entries = redis.command("XRANGE", key, "-", "+")
        if len(entries) >= 2:
            break
        time.sleep(0.05)
    fields = [dict(zip(e[1][::2], e[1][1::2])) for e in entries]
    assert a.execution(ex)["status"] == "running"  # the task waits for us
    got = {f["s"]: f for f in fields if "s" in f}
    assert got["out"]["d"] == "first\n" and got["out"]["o"] == "0", fields
    assert got["err"]["d"] == "oops\n" and got["err"]["o"] == "0", fields
    assert redis.command("PTTL", key) > 0  # a stream whose end never comes goes too
    go.write_text("")
    d = a.wait_exec(ex, timeout=30)
    assert d["status"] == "succeeded", d
    end = time.monotonic() + 30
    while time.monotonic() < end:
        fields = [dict(zip(e[1][::2], e[1][1::2])) for e in redis.command("XRANGE", key, "-", "+")]
        if fields and "end" in fields[-1]:
            break
        time.sleep(0.05)
    assert fields[-1] == {"end": "succeeded"}, fields
    outs = [f for f in fields if f.get("s") == "out"]
    assert [(f["o"], f["d"]) for f in outs] == [("0", "first\n"), ("6", "second\n")], outs
    # The durable copy is in the store as before.
    logs = a.get(f"/v1/executions/{ex}/logs").text
    assert "first" in logs and "second" in logs
    stop_clean(a, b, c)


def test_logs_follow_live_across_nodes(pg, redis, nodes, tmp_path):
    """`logs?follow=true` on both servers while the task runs on one of the three nodes
    (so at least one follower is on a node that does not run it): the engine's stream
    entries reach both followers while the task runs - it waits for a file the test
    writes only once both have its first line - each line once, then the end."""
    url = pg.database()
    a, b, c = three_nodes(tmp_path, url, redis, nodes, "f")
    go = tmp_path / "go"
    a.apply({"name": "follow", "tasks": [{
        "name": "say",
        "command": f"echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second"}]})
    ex = a.trigger("follow")["id"]
    key = f"orch:log:{ex}:0:1"
    end = time.monotonic() + 30
    while time.monotonic() < end and not redis.command("XRANGE", key, "-", "+"):
        time.sleep(0.05)
    followers = [Follower(a, ex), Follower(b, ex)]
    for f in followers:
        first = f.next()
        assert (first["stream"], first["data"]) == ("stdout", "first\n"), first
    assert a.execution(ex)["status"] == "running"  # the task waits for us
    runner = a.execution(ex)["tasks"][0]["attempts"][-1]["node"]
    go.write_text("")
    for f in followers:
        rest = []
        while (i := f.next()) is not None:
            rest.append(i)
        assert [(i["stream"], i["data"]) for i in rest] == [("stdout", "second\n")], rest
    assert a.wait_exec(ex, timeout=30)["status"] == "succeeded"
    assert runner, a.execution(ex)
    stop_clean(a, b, c)


def test_entries_of_a_dead_consumer_are_taken_over(pg, redis, nodes, tmp_path):
    """An offer entry read by a consumer that never acknowledges it (a node that died
    between its read and its claim) is taken over with XAUTOCLAIM by a live node once
    idle long enough, and acknowledged: nothing stays pending."""
    url = pg.database()
    a, b, c = three_nodes(tmp_path, url, redis, nodes, "x")
    for _ in range(10):  # (a live node reading it first would leave none for the dead one)
        redis.command("XADD", STREAM, "*", "e", "ex_gone", "t", "0", "a", "1", "o", "gone")
        got = redis.command("XREADGROUP", "GROUP", GROUP, "gone-node", "COUNT", "1", "STREAMS",
                            STREAM, ">")
        if got and got[0][1]:
            break
    assert got and got[0][1], got  # the dead consumer holds it now
    pending = redis.command("XPENDING", STREAM, GROUP)
    assert int(pending[0]) >= 1 and ["gone-node", "1"] in pending[3], pending
    end = time.monotonic() + 60
    while time.monotonic() < end and int(redis.command("XPENDING", STREAM, GROUP)[0]) != 0:
        time.sleep(0.1)
    assert int(redis.command("XPENDING", STREAM, GROUP)[0]) == 0, \
        redis.command("XPENDING", STREAM, GROUP)
    assert any("Took over 1 offer entry of a consumer that stopped answering" in n.log()
               for n in (a, b, c))
    stop_clean(a, b, c)


def test_node_killed_mid_fanout(pg, redis, nodes, tmp_path):
    url = pg.database()
    side = tmp_path / "side.txt"
    a, b, c = three_nodes(tmp_path, url, redis, nodes, "k")
    ids = start_fans(a, side, "fank", 3, 8, 0.8)
    # The worker dies while it runs offered tasks (entries it read and acknowledged).
    c.wait_log("runs here for node 'k1'", timeout=30)
    c.kill()
    statuses = wait_all_final(a, set(ids), timeout=120)
    assert set(statuses.values()) == {"succeeded"}, collections.Counter(statuses.values())
    check_exactly_once(a, ids, side)
    none_running(a, set(ids))
    stop_clean(a, b)


def fail_redis_mid_run(pg, redis, nodes, tmp_path, prefix, fail, recover):
    url = pg.database()
    side = tmp_path / "side.txt"
    a, b, c = three_nodes(tmp_path, url, redis, nodes, prefix)
    ids = start_fans(a, side, "fan" + prefix, 4, 8, 0.5)
    a.wait_log("offered to the other nodes", timeout=30)
    fail()
    # Every node says it once, and goes on with PostgreSQL alone.
    for n in (a, b, c):
        n.wait_log(FALLBACK, timeout=30)
    # Work submitted while Redis is away runs too (NOTIFY, PostgreSQL claims).
    ids += start_fans(a, side, "fan" + prefix, 2, 8, 0.3)
    recover()
    statuses = wait_all_final(a, set(ids), timeout=180)
    assert set(statuses.values()) == {"succeeded"}, collections.Counter(statuses.values())
    check_exactly_once(a, ids, side)
    none_running(a, set(ids))
    for n in (a, b, c):
        n.wait_log(BACK, timeout=30)
        assert n.log().count(FALLBACK) == 1, n.log()[-3000:]
    # Back on Redis: offers go through the stream again.
    before = (group_info(redis) or {}).get("entries-read") or 0
    more = start_fans(a, side, "fan" + prefix, 1, 8, 0.3)
    statuses = wait_all_final(a, set(more), timeout=60)
    assert set(statuses.values()) == {"succeeded"}
    check_exactly_once(a, ids + more, side)
    g = group_info(redis)
    assert g and (g["entries-read"] or 0) > before, g
    stop_clean(a, b, c)
    return a


def test_redis_killed_mid_fanout_then_restarted(pg, redis, nodes, tmp_path):
    fail_redis_mid_run(pg, redis, nodes, tmp_path, "x", redis.kill, redis.start)


def test_redis_paused_past_its_timeouts(pg, redis, nodes, tmp_path):
    fail_redis_mid_run(pg, redis, nodes, tmp_path, "p", redis.pause, redis.resume)


def test_flushall_mid_run(pg, redis, nodes, tmp_path):
    """A flushed Redis costs only speed: the stream and its group are gone (offers
    XADDed before are lost), and are made again."""
    url = pg.database()
    side = tmp_path / "side.txt"
    a, b, c = three_nodes(tmp_path, url, redis, nodes, "f")
    ids = start_fans(a, side, "fanf", 4, 8, 0.5)
    a.wait_log("offered to the other nodes", timeout=30)
    redis.flushall()
    ids += start_fans(a, side, "fanf", 2, 8, 0.3)
    statuses = wait_all_final(a, set(ids), timeout=180)
    assert set(statuses.values()) == {"succeeded"}, collections.Counter(statuses.values())
    check_exactly_once(a, ids, side)
    none_running(a, set(ids))
    g = group_info(redis)
    assert g is not None and g["pending"] == 0, g  # made again after the flush
    for n in (a, b, c):
        assert FALLBACK not in n.log()  # a flush is no outage
    stop_clean(a, b, c)


def test_refused_password_runs_on_postgres_then_joins_redis(pg, nodes, tmp_path):
    """The engine's own connections refused at AUTH: the nodes run on PostgreSQL alone
    (offers NOTIFYed and claimed there); once Redis takes their password, they come back
    to it without a restart. The password is never in their logs."""
    r = Redis(password="right-one").start()
    try:
        url = pg.database()
        side = tmp_path / "side.txt"
        env = {"ORCH_REDIS_URL": r.url(password="s3cret-pw")}
        a = Node(tmp_path, url, "w1", lease="2s", env=env)
        nodes.append(a)
        a.start()
        b = Node(tmp_path, url, "w2", role="worker", lease="2s", env=env, admin_key=a.admin_key)
        nodes.append(b)
        b.start()
        for n in (a, b):
            n.wait_log("refused the password", timeout=10)
        time.sleep(1.5)  # a's heartbeat learns b's slots
        a.apply(fan_workflow("fanpw", side, 6, 0.4))
        ex = a.trigger("fanpw")["id"]
        d = a.wait_exec(ex, timeout=60)
        assert d["status"] == "succeeded", d
        assert len(ran_on(d)) == 2, ran_on(d)  # offered through PostgreSQL
        check_exactly_once(a, [ex], side)
        assert group_info(r) is None  # nothing reached Redis
        r.command("CONFIG", "SET", "requirepass", "s3cret-pw")
        r.password = "s3cret-pw"
        for n in (a, b):
            n.wait_log(BACK, timeout=30)
        ex2 = a.trigger("fanpw")["id"]
        d = a.wait_exec(ex2, timeout=60)
        assert d["status"] == "succeeded", d
        check_exactly_once(a, [ex, ex2], side)
        g = group_info(r)
        assert g and g["entries-read"] >= 1 and g["pending"] == 0, g
        for n in (a, b):
            assert "s3cret-pw" not in n.all_logs()
        stop_clean(a, b)
    finally:
        r.destroy()
