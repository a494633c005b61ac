"""
Redis on the API side of orch nodes (ORCH_REDIS_URL): start-up with a wrong password, an
unreachable Redis and a bad URL (rediss:// is in test_redis_tls.py); the auth-failure limit
shared by the nodes of one PostgreSQL; the limiter's fallback when Redis stops mid-run; Redis
in /v1/health, /metrics and `orch doctor`; live logs followed from Redis on any node. Every
process is real: a private PostgreSQL (tests/pg) and a private redis-server (redisutil.py).
"""
import json
import time

import pytest

from apiutil import free_port, unknown_key
from conftest import EXIT_USAGE, SANITIZER_MARKERS, wait_for
from pgutil import Node, Postgres
from redisutil import Redis

PASSWORD = "pw-e2e-hunter2"


@pytest.fixture(scope="module")
def pg():
    p = Postgres().start()
    yield p
    p.destroy()


@pytest.fixture
def redis():
    r = Redis(password=PASSWORD).start()
    yield r
    r.destroy()


@pytest.fixture
def nodes():
    started = []
    yield started
    for n in started:
        n.cleanup()


def node(nodes, tmp_path, pg_url, name, redis_url, **kw):
    env = dict(kw.pop("env", {}))
    if redis_url is not None:
        env["ORCH_REDIS_URL"] = redis_url
    n = Node(tmp_path, pg_url, name, env=env, **kw)
    nodes.append(n)
    return n


def no_secret(text):
    assert PASSWORD not in text, "the Redis password was shown"
    for m in SANITIZER_MARKERS:
        assert m not in text, text


# ------------------------------------------------------------------ start-up

def test_start_with_redis_logs_the_url_without_the_password(pg, redis, nodes, tmp_path):
    n = node(nodes, tmp_path, pg.database(), "n1", redis.url()).start()
    wait_for(lambda: "[Redis] Using redis://:***@127.0.0.1:%d (Redis 7" % redis.port in n.log(),
             what="the Redis line")
    no_secret(n.log())


def test_wrong_password_at_start_names_the_url_and_starts(pg, redis, nodes, tmp_path):
    n = node(nodes, tmp_path, pg.database(), "n1", redis.url(password="not-" + PASSWORD))
    n.start()
    want = f"WARN [Redis] redis://:***@127.0.0.1:{redis.port} refused the password; " \
           "running on PostgreSQL alone until Redis answers"
    wait_for(lambda: want in n.log(), what="the wrong-password warning")
    assert "not-" + PASSWORD not in n.log()
    no_secret(n.log())
    # The node serves all the same.
    assert n.get("/v1/health").status in (200, 503)
    r = n.post("/v1/workflows", {"name": "w", "tasks": [{"name": "t", "command": "true"}]})
    assert r.status in (200, 201), r


def test_unreachable_redis_at_start_names_the_url_and_starts(pg, nodes, tmp_path):
    port = free_port()
    n = node(nodes, tmp_path, pg.database(), "n1", f"redis://:{PASSWORD}@127.0.0.1:{port}/2")
    n.start()
    want = f"WARN [Redis] cannot reach redis://:***@127.0.0.1:{port}/2: Connection refused; " \
           "running on PostgreSQL alone until Redis answers"
    wait_for(lambda: want in n.log(), what="the unreachable warning")
    no_secret(n.log())
    r = n.post("/v1/workflows", {"name": "w", "tasks": [{"name": "t", "command": "true"}]})
    assert r.status in (200, 201), r


@pytest.mark.parametrize("url,want", [
    ("redis://:" + PASSWORD + "@h:99999", "invalid Redis URL (--redis-url or $ORCH_REDIS_URL): "
     "the port must be a number from 1 to 65535"),
    ("http://" + PASSWORD, "a Redis URL starts with redis://, rediss:// or unix://"),
])
def test_bad_url_or_tls_stops_the_start_with_a_clear_message(pg, nodes, tmp_path, url, want):
    n = node(nodes, tmp_path, pg.database(), "n1", url)
    n.admin_key = "unused"
    res = n.orch("server", "--listen", f"127.0.0.1:{free_port()}", timeout=60)
    assert res.returncode == EXIT_USAGE, res
    assert want in res.stderr, res.stderr
    no_secret(res.stderr)


def test_redis_url_flag_wins_and_config_show_masks_it(pg, redis, nodes, tmp_path):
    n = node(nodes, tmp_path, pg.database(), "n1", "redis://127.0.0.1:1",
             env={"REDIS_URL": "redis://127.0.0.1:2"})
    shown = {s["name"]: s for s in json.loads(n.orch("config", "show", "--json").stdout)
             ["settings"]}
    assert shown["ORCH_REDIS_URL"]["value"] == "redis://127.0.0.1:1", shown["ORCH_REDIS_URL"]
    n.extra_env["ORCH_REDIS_URL"] = f"redis://:{PASSWORD}@x:1"
    shown = {s["name"]: s for s in json.loads(n.orch("config", "show", "--json").stdout)
             ["settings"]}
    assert shown["ORCH_REDIS_URL"]["value"] == "redis://:***@x:1"
    n.extra_env["ORCH_REDIS_URL"] = "redis://127.0.0.1:1"
    n.start(extra=["--redis-url", redis.url()])
    wait_for(lambda: "[Redis] Using redis://:***@127.0.0.1:%d" % redis.port in n.log(),
             what="the flag's Redis")
    no_secret(n.log())


# ------------------------------------------------------------------ the shared auth-failure limit

LIMIT = 6


def fail_once(n, key):
    r = n.get("/v1/workflows", key=key, check=False)
    assert r.status in (401, 429), r
    return r.status


def test_auth_failures_spread_over_three_nodes_trip_the_one_limit(pg, redis, nodes, tmp_path):
    url = pg.database()
    env = {"ORCH_AUTH_FAIL_LIMIT": str(LIMIT), "ORCH_AUTH_FAIL_WINDOW": "10m"}
    ns = [node(nodes, tmp_path, url, f"n{i}", redis.url(), env=env).start() for i in range(3)]
    key = unknown_key()
    # Two failures on each node: LIMIT in all, each node seeing only a third of them.
    statuses = [fail_once(ns[i % 3], key) for i in range(LIMIT)]
    assert statuses == [401] * LIMIT, statuses
    # The next one is refused on every node, though none has seen LIMIT failures itself.
    for n in ns:
        r = n.get("/v1/workflows", key=key, check=False)
        assert r.status == 429, r
        assert 0 < int(r.headers["Retry-After"]) <= 600
    # The count lives in Redis: one key per (address, key prefix), expiring with the window.
    keys = redis.command("KEYS", "orch:authfail:*")
    assert len(keys) == 1, keys
    assert 0 < redis.command("PTTL", keys[0]) <= 600000
    # A valid key is never refused.
    assert ns[0].get("/v1/workflows").status == 200
    for n in ns:
        no_secret(n.log())


def test_without_redis_each_node_counts_alone(pg, nodes, tmp_path):
    # What Redis changes: the same spread of failures trips nothing without it.
    url = pg.database()
    env = {"ORCH_AUTH_FAIL_LIMIT": str(LIMIT), "ORCH_AUTH_FAIL_WINDOW": "10m"}
    ns = [node(nodes, tmp_path, url, f"n{i}", None, env=env).start() for i in range(3)]
    key = unknown_key()
    statuses = [fail_once(ns[i % 3], key) for i in range(LIMIT + 3)]
    assert statuses == [401] * (LIMIT + 3), statuses


def test_limiter_falls_back_to_the_node_when_redis_stops_mid_run(pg, redis, nodes, tmp_path):
    url = pg.database()
    env = {"ORCH_AUTH_FAIL_LIMIT": str(LIMIT), "ORCH_AUTH_FAIL_WINDOW": "10m"}
    a, b = [node(nodes, tmp_path, url, f"n{i}", redis.url(), env=env).start() for i in range(2)]
    key = unknown_key()
    assert [fail_once(b, key) for _ in range(2)] == [401, 401]
    assert fail_once(a, key) == 401
    redis.kill()
    # Node a goes on alone with what it saw (1 failure): LIMIT - 1 more are 401, then 429;
    # never a 500, and the API keeps answering valid keys.
    statuses = [fail_once(a, key) for _ in range(LIMIT + 1)]
    assert statuses[:LIMIT - 1] == [401] * (LIMIT - 1), statuses
    assert statuses[LIMIT - 1:] == [429, 429], statuses
    assert a.get("/v1/workflows").status == 200
    want = f"WARN [Redis] cannot reach redis://:***@127.0.0.1:{redis.port}"
    lost = f"WARN [Redis] lost the connection to redis://:***@127.0.0.1:{redis.port}"
    # Said once by the API, not per request (the engine says its own, once too).
    api_lines = [ln for ln in a.log().splitlines() if "the API uses this node's own" in ln]
    assert len(api_lines) == 1 and (want in api_lines[0] or lost in api_lines[0]), a.log()
    # Redis back (empty: no persistence): the shared count starts again from there.
    redis.start()
    wait_for(lambda: fail_once(b, unknown_key()) and "the API uses it again" in b.log(),
             what="node b's API back on Redis")
    for n in (a, b):
        no_secret(n.log())
    m = a.get("/metrics", check=False).text
    assert "orch_redis_fallbacks_total" in m


# ------------------------------------------------------------------ health and metrics

def test_health_shows_redis_and_degrades_without_it(pg, redis, nodes, tmp_path):
    n = node(nodes, tmp_path, pg.database(), "n1", redis.url(db=3)).start()
    # The dispatch stream (in the node's database 3) and its group are the node's engine's
    # own: it creates them and reads and acknowledges what comes in. The health must show
    # what Redis itself says of them: two entries added, one of them read by another
    # consumer and not acknowledged.
    wait_for(lambda: redis.command("EXISTS", "orch:dispatch", db=3) == 1, timeout=30,
             what="the engine's dispatch stream")
    before = redis.command("XLEN", "orch:dispatch", db=3)
    redis.command("XADD", "orch:dispatch", "*", "offer", "a", db=3)
    redis.command("XADD", "orch:dispatch", "*", "offer", "b", db=3)
    redis.command("XREADGROUP", "GROUP", "orch-nodes", "test", "COUNT", "1", "STREAMS",
                  "orch:dispatch", ">", db=3)

    def agrees():
        h = n.get("/v1/health").json["components"]["redis"]
        length = redis.command("XLEN", "orch:dispatch", db=3)
        pending = int(redis.command("XPENDING", "orch:dispatch", "orch-nodes", db=3)[0])
        want = {"stream": "orch:dispatch", "group": "orch-nodes", "length": length,
                "pending": pending}
        return h if h["dispatch"] == want else None

    h = wait_for(agrees, timeout=30, what="health's dispatch figures equal Redis's")
    assert h["dispatch"]["length"] == before + 2, h
    assert h["configured"] is True and h["status"] == "ok", h
    assert h["url"] == f"redis://:***@127.0.0.1:{redis.port}/3"
    assert h["reachable"] is True and h["latencyMs"] >= 0 and h["version"].startswith("7.")
    assert h["usedMemoryBytes"] > 0 and h["opsPerSec"] >= 0
    assert h["message"] is None
    m = n.get("/metrics", check=False).text
    assert 'orch_redis_up{side="api"} 1' in m, m
    assert "\norch_redis_ping_seconds " in m
    redis.kill()
    r = n.get("/v1/health")
    assert r.status == 200, r  # degraded, not down: PostgreSQL stands in
    h = r.json["components"]["redis"]
    assert h["status"] == "degraded" and r.json["status"] == "degraded", r.json
    assert h["reachable"] is False and h["latencyMs"] is None
    assert h["message"].startswith(f"cannot reach redis://:***@127.0.0.1:{redis.port}/3: "), h
    m = n.get("/metrics", check=False).text
    assert 'orch_redis_up{side="api"} 0' in m
    assert "\norch_redis_ping_seconds " not in m
    no_secret(json.dumps(r.json) + m + n.log())


def test_health_without_redis_says_not_configured(pg, nodes, tmp_path):
    n = node(nodes, tmp_path, pg.database(), "n1", None).start()
    h = n.get("/v1/health").json["components"]["redis"]
    assert h["status"] == "ok" and h["configured"] is False and h["url"] is None, h
    assert h["reachable"] is False and h["message"] is None and h["engine"]["connected"] is False
    assert "orch_redis_" not in n.get("/metrics", check=False).text


# ------------------------------------------------------------------ orch doctor

def doctor(n, *args, env=None):
    res = n.orch("doctor", "--json", *args, env=env)
    assert res.stdout.strip(), res.stderr
    no_secret(res.stdout + res.stderr)
    return res, json.loads(res.stdout)


def redis_lines(rep):
    return [c for c in rep["checks"] if c["name"].startswith("redis")]


def test_doctor_redis_unreachable(pg, nodes, tmp_path):
    """The guide's symptom 'Redis unreachable' (issue 14, section 5): named with its fix."""
    port = free_port()
    n = node(nodes, tmp_path, pg.database(), "n1", f"redis://:{PASSWORD}@127.0.0.1:{port}")
    n.orch("db", "migrate")
    res, rep = doctor(n)
    [line] = redis_lines(rep)
    assert line["level"] == "warn", line
    assert line["found"] == (f"Redis unreachable: cannot reach redis://:***@127.0.0.1:{port}: "
                             "Connection refused"), line
    assert line["fix"].startswith("start Redis or correct ORCH_REDIS_URL (check with redis-cli "
                                  "-u URL ping); meanwhile the nodes run on PostgreSQL alone")
    # The text form says it too, at warn.
    text = n.orch("doctor").stdout
    assert any(ln.startswith("warn") and "Redis unreachable" in ln for ln in text.splitlines())


def test_doctor_redis_reachable_wrong_password_and_bad_url(pg, redis, nodes, tmp_path):
    n = node(nodes, tmp_path, pg.database(), "n1", redis.url())
    n.orch("db", "migrate")
    _, rep = doctor(n)
    [line] = redis_lines(rep)
    assert line["level"] == "ok" and line["fix"] is None, line
    assert line["found"].startswith(f"redis://:***@127.0.0.1:{redis.port} answers PING in "), line
    assert "(Redis 7." in line["found"] and "ops/s; dispatch stream 0 entries, 0 pending" in \
        line["found"], line
    _, rep = doctor(n, env={"ORCH_REDIS_URL": redis.url(password="not-" + PASSWORD)})
    [line] = redis_lines(rep)
    assert line["level"] == "warn"
    assert line["found"] == f"Redis unreachable: redis://:***@127.0.0.1:{redis.port} refused " \
                            "the password", line
    assert "password" in line["fix"] and "not-" + PASSWORD not in json.dumps(rep)
    res, rep = doctor(n, env={"ORCH_REDIS_URL": f"redis://:{PASSWORD}@h:0"})
    [line] = redis_lines(rep)
    assert line["level"] == "fail" and res.returncode != 0
    assert line["found"] == "invalid ORCH_REDIS_URL: the port must be a number from 1 to 65535"


def test_server_doctor_names_redis_down_mid_run(pg, redis, nodes, tmp_path):
    n = node(nodes, tmp_path, pg.database(), "n1", redis.url()).start()
    # The engine connects on its own after the start (until then the doctor has a second
    # line, redis.engine, saying it works without Redis).
    wait_for(lambda: n.get("/v1/health").json["components"]["redis"]["engine"]["connected"],
             timeout=30, what="the engine's Redis connection")
    rep = n.get("/v1/doctor").json
    [line] = redis_lines(rep)
    assert line["level"] == "ok", line
    redis.kill()
    rep = n.get("/v1/doctor").json
    # The API's own line; the engine's (redis.engine) follows once it has noticed.
    [line] = [c for c in redis_lines(rep) if c["name"] == "redis"]
    assert line["level"] == "warn" and line["found"].startswith(
        f"Redis unreachable: cannot reach redis://:***@127.0.0.1:{redis.port}"), line
    no_secret(json.dumps(rep) + n.log())


# ------------------------------------------------------------------ live logs from Redis

class Follower:
    """GET .../logs?follow=true read line by line on a thread."""

    def __init__(self, n, exec_id):
        import queue
        import threading
        import urllib.request
        self.items = queue.Queue()
        req = urllib.request.Request(f"{n.url}/v1/executions/{exec_id}/logs?follow=true",
                                     headers={"Authorization": f"Bearer {n.admin_key}"})
        self.resp = urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            req, timeout=60)

        def run():
            for line in self.resp:
                if line.strip():
                    self.items.put(json.loads(line))
            self.items.put(None)
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def next(self, timeout=30):
        return self.items.get(timeout=timeout)


def test_logs_follow_live_from_redis_on_any_node_without_doubles(pg, redis, nodes, tmp_path):
    """The reading side of live logs: entries in the attempt's Redis stream reach a follower
    on a node that does not run the task, while it runs; bytes the store also has are sent
    once. (The test writes the entries itself with XADD, in the fields the engine writes.)"""
    url = pg.database()
    a, b = [node(nodes, tmp_path, url, f"n{i}", redis.url()).start() for i in range(2)]
    go = tmp_path / "go"
    a.apply({"name": "live", "tasks": [{"name": "t", "command":
             f"echo A; while [ ! -e {go} ]; do sleep 0.05; done; echo done >&2"}]})
    ex = a.trigger("live")["id"]

    def running_with_output():
        return a.get(f"/v1/executions/{ex}").json["status"] == "running" and \
            a.get(f"/v1/executions/{ex}/logs").json["items"]
    wait_for(running_with_output, timeout=30, what="the task running and its first output")
    # Follow from both nodes (one of them does not run the task).
    fa, fb = Follower(a, ex), Follower(b, ex)
    for f in (fa, fb):
        first = f.next()
        assert (first["stream"], first["data"], first["seq"]) == ("stdout", "A\n", 0), first
    key = f"orch:log:{ex}:0:1"
    # "A\n" (bytes 0..2 of stdout) again, and new bytes: only the new ones are sent.
    redis.command("XADD", key, "*", "s", "out", "o", "0", "d", "A\n")
    redis.command("XADD", key, "*", "s", "out", "o", "2", "d", "from-redis\n")
    redis.command("XADD", key, "*", "s", "err", "o", "0", "d", "E1\n")
    for f in (fa, fb):
        got = [f.next(), f.next()]
        assert [(i["stream"], i["data"]) for i in got] == [("stdout", "from-redis\n"),
                                                           ("stderr", "E1\n")], got
        assert [i["seq"] for i in got] == [1, 2]
    # Still running: those came from Redis, not from the store.
    assert a.get(f"/v1/executions/{ex}").json["status"] == "running"
    go.write_text("")
    # The end: the task's own stderr ("done\n", stored at stderr bytes 0..5) overlaps the
    # "E1\n" Redis gave for bytes 0..3: only the part past what was sent follows.
    for f in (fa, fb):
        rest = []
        while (i := f.next()) is not None:
            rest.append(i)
        assert [(i["stream"], i["data"]) for i in rest] == [("stderr", "e\n")], rest
    redis.command("DEL", key)
    no_secret(a.log() + b.log())


def test_logs_follow_falls_back_to_the_store_when_redis_is_down(pg, redis, nodes, tmp_path):
    url = pg.database()
    n = node(nodes, tmp_path, url, "n1", redis.url()).start()
    n.apply({"name": "t2", "tasks": [{"name": "t", "command":
             "for i in 1 2 3; do echo line$i; sleep 0.2; done"}]})
    redis.kill()
    ex = n.trigger("t2")["id"]
    f = Follower(n, ex)
    got = []
    while (i := f.next()) is not None:
        got.append(i)
    assert "".join(i["data"] for i in got) == "line1\nline2\nline3\n"
    assert [i["seq"] for i in got] == list(range(len(got)))


def test_limiter_goes_on_while_redis_is_paused(pg, redis, nodes, tmp_path):
    """Redis stopped (SIGSTOP) past the API's timeout: requests are answered (401, then 429
    from the node's own table), the node says so once, and comes back when Redis does."""
    env = {"ORCH_AUTH_FAIL_LIMIT": "3", "ORCH_AUTH_FAIL_WINDOW": "10m"}
    n = node(nodes, tmp_path, pg.database(), "n1", redis.url(), env=env).start()
    key = unknown_key()
    assert fail_once(n, key) == 401
    redis.pause()
    try:
        statuses = [fail_once(n, key) for _ in range(4)]
        assert statuses == [401, 401, 429, 429], statuses
        assert n.get("/v1/workflows").status == 200
        want = f"redis://:***@127.0.0.1:{redis.port} did not answer within 500 ms; the API"
        wait_for(lambda: want in n.log(), what="the timeout in the log")
    finally:
        redis.resume()
    wait_for(lambda: fail_once(n, unknown_key()) and "the API uses it again" in n.log(),
             what="back on Redis")
    # The API said it once (the engine, with its own connection, says its own).
    assert len([ln for ln in n.log().splitlines()
                if "WARN [Redis]" in ln and "the API uses this node's own" in ln]) == 1, n.log()


def test_worker_with_a_refused_password_starts(pg, redis, nodes, tmp_path):
    w = node(nodes, tmp_path, pg.database(), "w1", redis.url(password="nope-" + PASSWORD),
             role="worker")
    w.admin_key = "unused"
    w.start()
    want = f"WARN [Redis] redis://:***@127.0.0.1:{redis.port} refused the password; " \
           "running on PostgreSQL alone until Redis answers"
    wait_for(lambda: want in w.log(), what="the worker's warning")
    assert "nope-" + PASSWORD not in w.log()
