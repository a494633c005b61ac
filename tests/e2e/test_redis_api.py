"""
Redis on the API side of orch nodes (ORCH_REDIS_URL): start-up with a wrong password, an
unreachable Redis, a bad URL and rediss://; the auth-failure limit shared by the nodes of
one PostgreSQL; the limiter's fallback when Redis stops mid-run; Redis in /v1/health,
/metrics and `orch doctor`; live logs followed from Redis on any node. Every process is
real: a private PostgreSQL (tests/pg) and a private redis-server (redisutil.py).
"""
import json
import time

import pytest

from apiutil import free_port
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
    ("rediss://:" + PASSWORD + "@127.0.0.1:6380",
     "rediss://:***@127.0.0.1:6380: TLS (rediss://) is not supported"),
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
