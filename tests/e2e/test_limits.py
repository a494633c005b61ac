"""
Resource limits of a server: open file descriptors do not grow with queued executions
(one lock per process, not one per execution), the soft limit is raised to the hard one at
start and /v1/health reports descriptors in use; log streams (follow=true) are bounded and
give back their socket and store connection when the client leaves.
"""
import os
import resource
import socket
import subprocess
import time

import apiutil
from apiutil import Server, sh
from conftest import base_env, wait_for


class _LimitedSubprocess:
    """`subprocess` for apiutil with the server started under RLIMIT_NOFILE (soft, hard)."""

    def __init__(self, soft, hard):
        self.limits = (soft, hard)

    def __getattr__(self, name):
        return getattr(subprocess, name)

    def Popen(self, *a, **kw):
        kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, self.limits)
        return subprocess.Popen(*a, **kw)


def start_server(tmp_path, monkeypatch, nofile=None, env=None, workers=4):
    if nofile:
        monkeypatch.setattr(apiutil, "subprocess", _LimitedSubprocess(*nofile))
    if env:
        monkeypatch.setattr(apiutil, "base_env", lambda extra=None: base_env({**env,
                                                                             **(extra or {})}))
    s = Server(tmp_path, workers=workers)
    s.start()
    return s


def stop_clean(s):
    try:
        assert s.stop() == 0, s.log()[-3000:]
        s.assert_log_clean()
    finally:
        s.cleanup()


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_queued_executions_do_not_hold_descriptors(tmp_path, monkeypatch):
    """400 executions queued behind 2 workers on a server whose descriptor limit is 256
    (soft and hard): each is claimed, none needs a descriptor, all run, health is ok."""
    go = tmp_path / "go"
    s = start_server(tmp_path, monkeypatch, nofile=(256, 256), workers=2)
    try:
        h = s.get("/v1/health").json
        assert h["components"]["fds"]["limit"] == 256, h["components"]["fds"]
        s.apply({"name": "wait-go", "tasks": [
            sh("t", f"while [ ! -e '{go}' ]; do sleep 0.05; done")]})
        ids = [s.trigger("wait-go")["id"] for _ in range(400)]
        fds = s.get("/v1/health").json["components"]["fds"]
        assert fds["open"] < 128, fds
        go.touch()
        wait_for(lambda: s.get("/v1/executions?status=running,queued&limit=1").json["items"]
                 == [], timeout=240, interval=0.5, what="every execution finished")
        for i in (ids[0], ids[199], ids[-1]):
            assert s.execution(i)["status"] == "succeeded"
        h = s.get("/v1/health").json
        assert h["status"] == "ok", h
        assert h["components"]["fds"]["status"] == "ok", h
        assert "cannot claim" not in s.log() and "Too many open files" not in s.log()
        # Nothing per execution is left behind in the lock directory.
        left = os.listdir(s.data_dir / "locks")
        assert len(left) == 1 and left[0].startswith("proc_"), left
    finally:
        stop_clean(s)
    assert not os.listdir(s.data_dir / "locks")


def test_soft_descriptor_limit_raised_to_hard(tmp_path, monkeypatch):
    s = start_server(tmp_path, monkeypatch, nofile=(256, 2048))
    try:
        fds = s.get("/v1/health").json["components"]["fds"]
        assert fds["limit"] == 2048 and fds["status"] == "ok", fds
        assert 0 < fds["open"] < 2048 and fds["usedPercent"] < 80, fds
    finally:
        stop_clean(s)


def _follow(s, ex):
    c = socket.create_connection(("127.0.0.1", s.port))
    c.sendall(f"GET /v1/executions/{ex}/logs?follow=true HTTP/1.1\r\nHost: x\r\n"
              f"Authorization: Bearer {s.admin_key}\r\n\r\n".encode())
    return c


def test_follow_streams_give_back_descriptors(tmp_path, monkeypatch):
    """200 log streams of a running execution, closed by their clients: the server's
    descriptors come back near where they were (sockets and store connections). All from
    one address, so without the per-address connection limit (64 by default)."""
    s = start_server(tmp_path, monkeypatch, env={"ORCH_HTTP_CONNECTIONS_PER_ADDRESS": "0"})
    socks = []
    try:
        pid = s.proc.pid
        s.apply({"name": "slow", "tasks": [sh("t", "echo hi; sleep 60")]})
        ex = s.trigger("slow")["id"]
        s.wait_exec(ex, until=("running",))
        # One stream first, so that lazily opened things are there for the baseline.
        c = _follow(s, ex)
        assert c.recv(12).startswith(b"HTTP/1.1 200")
        c.close()
        time.sleep(0.5)
        base = nfds(pid)
        for _ in range(200):
            socks.append(_follow(s, ex))
        for c in socks:
            c.settimeout(20)
            assert c.recv(12).startswith(b"HTTP/1.1 200")
        wait_for(lambda: nfds(pid) >= base + 200, timeout=20, what="the streams open")
        for c in socks:
            c.close()
        socks = []
        wait_for(lambda: nfds(pid) <= base + 10, timeout=20,
                 what=f"descriptors back near {base}")
        assert s.get("/v1/health").json["status"] == "ok"
        s.post(f"/v1/executions/{ex}/cancel")
    finally:
        for c in socks:
            c.close()
        stop_clean(s)


def test_follow_streams_bounded(tmp_path, monkeypatch):
    """Beyond ORCH_MAX_FOLLOWERS streams, 503 with a message; a closed stream frees its
    place."""
    s = start_server(tmp_path, monkeypatch, env={"ORCH_MAX_FOLLOWERS": "3"})
    socks = []
    try:
        s.apply({"name": "slow", "tasks": [sh("t", "sleep 60")]})
        ex = s.trigger("slow")["id"]
        for _ in range(3):
            socks.append(_follow(s, ex))
            socks[-1].settimeout(20)
            assert socks[-1].recv(12).startswith(b"HTTP/1.1 200")
        r = s.get(f"/v1/executions/{ex}/logs?follow=true")
        assert r.status == 503, r
        assert "ORCH_MAX_FOLLOWERS" in r.error()["message"], r.json
        socks.pop().close()

        def one_more():
            c = _follow(s, ex)
            c.settimeout(20)
            ok = c.recv(12).startswith(b"HTTP/1.1 200")
            socks.append(c)
            return ok
        wait_for(one_more, timeout=20, what="a place for one more stream")
        s.post(f"/v1/executions/{ex}/cancel")
    finally:
        for c in socks:
            c.close()
        stop_clean(s)


def test_large_fanout_detail_is_summarised_and_paged(tmp_path):
    """A 20,000-instance noop fan-out through a server with 2 HTTP threads: the execution's
    detail is small (instances counted by status), /v1/health answers while 8 GETs of it run,
    and the instances are listed page by page."""
    import json
    import threading
    n = 20000
    s = Server(tmp_path)
    s.start(extra=["--http-threads", "2"])
    try:
        s.apply({"name": "fan", "tasks": [
            {"name": "each", "type": "noop", "forEach": list(range(n))},
            {"name": "after", "type": "noop", "dependsOn": ["each"]}]})
        ex = s.trigger("fan")["id"]
        s.wait_exec(ex, timeout=180)
        r = s.get(f"/v1/executions/{ex}")
        assert r.status == 200 and len(r.body) < 20000, len(r.body)
        d = r.json
        assert d["status"] == "succeeded" and d["instancesOmitted"] == n, d
        assert [t["name"] for t in d["tasks"]] == ["each", "after"]
        each = d["tasks"][0]
        assert each["instances"] == {"total": n, "byStatus": {"succeeded": n}}, each
        assert each["output"] is None

        # 8 GETs at once; health answers meanwhile, quickly.
        errors, stop = [], threading.Event()

        def getter():
            while not stop.is_set():
                try:
                    got = s.get(f"/v1/executions/{ex}", check=False)
                    if got.status != 200:
                        errors.append(got.status)
                except OSError as e:
                    errors.append(repr(e))
        ts = [threading.Thread(target=getter) for _ in range(8)]
        for t in ts:
            t.start()
        try:
            time.sleep(0.5)
            for _ in range(3):
                t0 = time.monotonic()
                h = s.get("/v1/health", timeout=10)
                took = time.monotonic() - t0
                assert h.status == 200 and took < 5, (h, took)
        finally:
            stop.set()
            for t in ts:
                t.join(60)
        assert not errors, errors[:5]

        # Every instance, a page at a time, in order.
        seen, cursor, pages = [], None, 0
        while True:
            q = f"/v1/executions/{ex}/tasks?group=each&limit=1000"
            if cursor:
                q += f"&cursor={cursor}"
            p = s.get(q)
            assert p.status == 200, p
            seen += [t["index"] for t in p.json["items"]]
            assert all(t["group"] == "each" and t["status"] == "succeeded"
                       for t in p.json["items"])
            pages += 1
            cursor = p.json["nextCursor"]
            if cursor is None:
                break
        assert seen == list(range(n)) and pages == n // 1000, (len(seen), pages)
        p = s.get(f"/v1/executions/{ex}/tasks?limit=2")
        assert [t["name"] for t in p.json["items"]] == ["each", "after"], p.json
        assert s.get(f"/v1/executions/{ex}/tasks?status=failed").json == \
            {"items": [], "nextCursor": None}
        assert s.get(f"/v1/executions/{ex}/tasks?group=nope").status == 404
        assert s.get(f"/v1/executions/{ex}/tasks?limit=0").status == 400
        # The client's summary still counts every instance.
        res = s.orch("executions", "show", ex, "--server", s.url,
                     env={"ORCH_API_KEY": s.admin_key})
        assert res.returncode == 0, res.stderr
        assert f"{n} fan-out instances not shown" in res.stdout, res.stdout[-2000:]
    finally:
        stop_clean(s)


def test_health_degraded_near_the_descriptor_limit(tmp_path, monkeypatch):
    """Above 80% of the descriptor limit, /v1/health says degraded (fds component), and ok
    again once the descriptors are given back."""
    s = start_server(tmp_path, monkeypatch, nofile=(48, 48))
    socks = []
    try:
        h = s.get("/v1/health").json
        assert h["status"] == "ok" and h["components"]["fds"]["status"] == "ok", h
        base = h["components"]["fds"]["open"]
        for _ in range(int(48 * 0.8) - base + 3):
            socks.append(socket.create_connection(("127.0.0.1", s.port)))

        def degraded():
            h = s.get("/v1/health").json
            return h["status"] == "degraded" and h["components"]["fds"]["status"] == "degraded"
        wait_for(degraded, timeout=10, what="health degraded")
        for c in socks:
            c.close()
        socks = []
        wait_for(lambda: s.get("/v1/health").json["status"] == "ok", timeout=10,
                 what="health ok again")
    finally:
        for c in socks:
            c.close()
        stop_clean(s)


def test_opening_a_store_connection_keeps_the_others_locks(tmp_path, monkeypatch):
    """A connection opened while others of the process are in use must not drop their POSIX
    locks (closing any descriptor of a file drops all of the process's locks on it): after a
    write from another process, a key created offline is seen by every HTTP thread."""
    import json
    import sqlite3
    s = start_server(tmp_path, monkeypatch, env={"ORCH_HTTP_THREADS": "4"})
    try:
        for _ in range(8):  # each HTTP thread opens its store connection on first use
            assert s.get("/v1/workflows/none", check=False).status == 404
        db = sqlite3.connect(str(s.data_dir / "orch.db"), timeout=10)
        with db:
            db.execute("INSERT INTO workflows (name, version, definition, created_at) "
                       "VALUES ('other', 1, ?, ?)",
                       (json.dumps({"name": "other", "tasks": [{"name": "a", "type": "noop"}]}),
                        int(time.time() * 1000)))
        db.close()
        reader = s.keys_create("reader", "read")["key"]
        for _ in range(8):
            r = s.get("/v1/workflows/other", key=reader, check=False)
            assert r.status == 200, r
    finally:
        stop_clean(s)
