"""
The server side of the web UI, on SQLite and on PostgreSQL: the pages compiled into the
binary and their headers, sign-in sessions (cookie flags, CSRF, scopes, revocation,
sign-out, the key never logged), `waitingOn`, executions per hour, the workflow graph's
layout, and conditional GETs.

The pages themselves are tested in a real Chromium by the UI's own tests.
"""
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from apiutil import Server, sh, spec, wf
from conftest import ORCH, REPO
from pgutil import Node, Postgres

CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


# --------------------------------------------------------------------------- servers

@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request):
    if request.param == "sqlite":
        yield None
        return
    pg = Postgres().start()
    yield pg
    pg.destroy()


@pytest.fixture
def make(backend, tmp_path):
    """make(workers=4, env=None, extra=()) -> a started server on the backend."""
    started = []

    def _make(workers=4, env=None, extra=()):
        d = tmp_path / f"s{len(started)}"
        d.mkdir()
        if backend is None:
            s = Server(d, workers=workers, env=env)
        else:
            s = Node(d, backend.database(), f"n{len(started)}", workers=workers, env=env,
                     lease="30s")
        started.append(s)
        return s.start(extra=extra)

    yield _make
    for s in started:
        try:
            code = s.stop()
            assert code in (0, None), f"server exited {code}:\n{s.log()[-3000:]}"
            s.assert_log_clean()
        finally:
            s.cleanup()


@pytest.fixture
def srv(make):
    return make()


def wait_for(fn, what, timeout=60):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def new_key(s, name, scope, expires=None):
    body = {"name": name, "scopes": [scope]}
    if expires:
        body["expiresIn"] = expires
    r = s.post("/v1/keys", body)
    assert r.status == 201, r
    return r.json


# --------------------------------------------------------------------------- the pages

def ui_get(s, path, headers=None):
    return s.request("GET", path, headers={**HTML, **(headers or {})}, key=None, check=False)


def assert_ui_headers(r):
    assert r.headers["Content-Security-Policy"] == CSP, r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_index_and_history_routes(srv):
    r = ui_get(srv, "/")
    assert r.status == 200, r
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    assert_ui_headers(r)
    assert r.headers["Cache-Control"] == "no-cache"
    assert r.body.lstrip().lower().startswith(b"<!doctype html")
    etag = r.headers["ETag"]
    assert re.fullmatch(r'"[0-9a-f]{20}"', etag), etag
    for path in ("/workflows/x", "/executions/ex_0000000000000000", "/login", "/a/b/c"):
        h = ui_get(srv, path)
        assert h.status == 200 and h.body == r.body, (path, h)
        assert_ui_headers(h)
    # revalidation: 304 without a body while unchanged
    n = ui_get(srv, "/", {"If-None-Match": etag})
    assert n.status == 304 and n.body == b"", n
    assert n.headers["ETag"] == etag
    assert ui_get(srv, "/", {"If-None-Match": '"0000"'}).status == 200
    # the same file under /assets/, whatever the Accept
    a = srv.request("GET", "/assets/index.html", key=None, check=False)
    assert a.status == 200 and a.body == r.body and a.headers["ETag"] == etag
    assert_ui_headers(a)


def test_every_ui_file_is_served_with_its_type(srv):
    ui = REPO / "ui"
    files = sorted(p for p in ui.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        if ui.is_dir() else []
    types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css",
             ".svg": "image/svg+xml", ".png": "image/png", ".json": "application/json"}
    for p in files:
        rel = p.relative_to(ui).as_posix()
        r = srv.request("GET", "/assets/" + rel, key=None, check=False)
        assert r.status == 200, (rel, r)
        assert r.body == p.read_bytes(), rel
        want = types.get(p.suffix)
        if want:
            assert r.headers["Content-Type"].split(";")[0] == want, (rel, r.headers)
        assert_ui_headers(r)
        assert r.headers["ETag"]


def test_unknown_asset_and_api_paths(srv):
    r = srv.request("GET", "/assets/nope.js", key=None, check=False)
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r
    assert_ui_headers(r)
    assert r.headers["Content-Type"].startswith("application/json")
    # /v1 stays the API's, HTML or not
    r = ui_get(srv, "/v1/nope")
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r
    r = ui_get(srv, "/v1/executions")
    assert r.status == 401, r
    # a client that does not ask for HTML gets the API's 404 outside /v1
    r = srv.request("GET", "/", key=None, check=False)
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r
    # the pages answer GET only
    r = srv.request("POST", "/", headers=HTML, key=None, check=False)
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r


@pytest.mark.parametrize("how", ["flag", "env"])
def test_no_ui(make, how):
    s = make(extra=["--no-ui"]) if how == "flag" else make(env={"ORCH_UI": "off"})
    for path in ("/", "/assets/index.html", "/executions/x"):
        r = ui_get(s, path)
        assert r.status == 404 and r.json["error"]["code"] == "not_found", (path, r)
        assert "Content-Security-Policy" not in r.headers
    assert "Web UI" not in s.log()
    assert s.get("/v1/health").status == 200


def test_ui_url_in_the_log_and_bad_setting(srv, tmp_path):
    assert f"Web UI: {srv.url}/" in srv.log()
    res = subprocess.run([str(ORCH), "server", "--data-dir", str(tmp_path / "d"), "--listen",
                          "127.0.0.1:0"], env={"ORCH_UI": "maybe", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "invalid ORCH_UI 'maybe'" in res.stderr, res


# --------------------------------------------------------------------------- sessions

def sign_in(s, key):
    r = s.post("/v1/session", {"key": key}, key=None)
    assert r.status == 201, r
    cookie = r.headers["Set-Cookie"]
    m = re.match(r"orch_session=([A-Za-z0-9_-]{43}); ", cookie)
    assert m, cookie
    return m.group(1), r.json, cookie


def as_session(s, method, path, token, csrf=None, body=None):
    h = {"Cookie": f"orch_session={token}"}
    if csrf is not None:
        h["X-CSRF-Token"] = csrf
    r = s.request(method, path, body=body, headers=h, key=None, check=False)
    if r.status == 403 and r.json["error"]["code"] == "csrf":
        # (the helper's check expects the code of the status, "forbidden")
        spec().validate(r.json, "Error", f"{method} {path}")
    else:
        spec().check(method, path, r)
    return r


def test_sign_in_cookie_flags_and_session(srv):
    token, sess, cookie = sign_in(srv, srv.admin_key)
    flags = [f.strip() for f in cookie.split(";")[1:]]
    assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags, cookie
    assert "Secure" not in flags  # plain HTTP
    max_age = int(next(f for f in flags if f.startswith("Max-Age="))[8:])
    assert 3600 <= max_age <= 12 * 3600, cookie
    assert set(sess["scopes"]) == {"read", "write", "admin"}
    assert sess["keyName"].startswith("admin") and sess["keyId"].startswith("key_")
    assert sess["keyPrefix"] == srv.admin_key[:12]
    assert len(sess["csrfToken"]) == 43 and sess["csrfToken"] != token
    # the key is not in the answer
    assert srv.admin_key not in json.dumps(sess)
    g = as_session(srv, "GET", "/v1/session", token)
    assert g.status == 200 and g.json["csrfToken"] == sess["csrfToken"], g
    # reads work with the cookie alone
    assert as_session(srv, "GET", "/v1/executions", token).status == 200
    # a made-up cookie is not a session
    bad = as_session(srv, "GET", "/v1/executions", "A" * 43)
    assert bad.status == 401 and "sign in again" in bad.error()["message"], bad
    assert as_session(srv, "GET", "/v1/session", "x").status == 401
    assert srv.get("/v1/session", key=None).status == 401


def test_cookie_is_secure_over_https(tmp_path):
    from test_tls_config import TlsServer, make_cert
    s = TlsServer(tmp_path / "tls", *make_cert(tmp_path, "server"))
    (tmp_path / "tls").mkdir()
    try:
        s.start()
        body = json.dumps({"key": s.admin_key}).encode()
        r = s.request("POST", "/v1/session", raw=body,
                      headers={"Content-Type": "application/json"})
        assert r.status == 201, r
        flags = [f.strip() for f in r.headers["Set-Cookie"].split(";")]
        assert "Secure" in flags and "HttpOnly" in flags and "SameSite=Strict" in flags, flags
        assert s.stop() == 0
        s.assert_log_clean()
    finally:
        s.cleanup()


def test_sign_in_refusals(srv):
    for body in ({}, {"key": 1}, {"key": srv.admin_key, "more": 1}, ["x"]):
        r = srv.post("/v1/session", body, key=None)
        assert r.status == 400, (body, r)
    r = srv.request("POST", "/v1/session", raw=b'{"key": "' + srv.admin_key.encode() + b'"',
                    key=None)
    assert r.status == 400 and srv.admin_key not in r.body.decode(), r
    r = srv.post("/v1/session", {"key": "sk_" + "x" * 43}, key=None)
    assert r.status == 401 and "unknown" in r.error()["message"], r
    r = srv.post("/v1/session", {"key": "nope"}, key=None)
    assert r.status == 401, r


def test_csrf_needed_for_cookie_state_changes(srv):
    token, sess, _ = sign_in(srv, srv.admin_key)
    body = wf("csrf", [sh("a", "true")])
    r = as_session(srv, "POST", "/v1/workflows", token, body=body)
    assert r.status == 403 and r.error()["code"] == "csrf", r
    assert "missing CSRF token" in r.error()["message"]
    r = as_session(srv, "POST", "/v1/workflows", token, csrf="y" * 43, body=body)
    assert r.status == 403 and r.error()["code"] == "csrf", r
    assert "wrong CSRF token" in r.error()["message"]
    r = as_session(srv, "POST", "/v1/workflows", token, csrf=sess["csrfToken"][:-1], body=body)
    assert r.status == 403 and r.error()["code"] == "csrf", r
    assert srv.get("/v1/workflows/csrf").status == 404  # nothing was done
    r = as_session(srv, "POST", "/v1/workflows", token, csrf=sess["csrfToken"], body=body)
    assert r.status == 201, r
    r = as_session(srv, "POST", "/v1/workflows/csrf/executions", token,
                   csrf=sess["csrfToken"], body={})
    assert r.status == 201, r
    # another session's CSRF token is not this one's
    token2, sess2, _ = sign_in(srv, srv.admin_key)
    r = as_session(srv, "DELETE", "/v1/workflows/csrf", token, csrf=sess2["csrfToken"])
    assert r.status == 403 and r.error()["code"] == "csrf", r
    # a Bearer key needs no CSRF token (a browser cannot send one by itself)
    assert srv.delete("/v1/workflows/csrf").status == 204


def test_read_only_session_cannot_cancel(srv):
    ro = new_key(srv, "viewer", "read")
    srv.apply(wf("slow", [sh("a", "sleep 30")]))
    ex = srv.trigger("slow")["id"]
    token, sess, _ = sign_in(srv, ro["key"])
    assert sess["scopes"] == ["read"]
    r = as_session(srv, "POST", f"/v1/executions/{ex}/cancel", token, csrf=sess["csrfToken"])
    assert r.status == 403 and r.error()["code"] == "forbidden", r
    assert "'write' scope" in r.error()["message"]
    assert as_session(srv, "GET", f"/v1/executions/{ex}", token).status == 200
    assert srv.post(f"/v1/executions/{ex}/cancel").status in (200, 202)


def test_revoked_key_ends_its_session(srv):
    k = new_key(srv, "temp", "write")
    token, sess, _ = sign_in(srv, k["key"])
    assert as_session(srv, "GET", "/v1/executions", token).status == 200
    assert srv.delete(f"/v1/keys/{k['id']}").status == 204
    r = as_session(srv, "GET", "/v1/executions", token)
    assert r.status == 401 and "revoked" in r.error()["message"], r
    # ended for good: the session is gone, not just refused
    r = as_session(srv, "GET", "/v1/session", token)
    assert r.status == 401 and "sign in again" in r.error()["message"], r
    # and a revoked key cannot sign in
    r = srv.post("/v1/session", {"key": k["key"]}, key=None)
    assert r.status == 401 and "revoked" in r.error()["message"], r


def test_expired_key_ends_its_session(make):
    s = make()
    k = new_key(s, "short", "read", expires="2s")
    token, sess, cookie = sign_in(s, k["key"])
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    assert max_age <= 2, cookie
    wait_for(lambda: as_session(s, "GET", "/v1/executions", token).status == 401,
             "the session of an expired key to end")


def test_sign_out(srv):
    token, sess, _ = sign_in(srv, srv.admin_key)
    r = as_session(srv, "DELETE", "/v1/session", token)
    assert r.status == 403 and r.error()["code"] == "csrf", r
    r = as_session(srv, "DELETE", "/v1/session", token, csrf=sess["csrfToken"])
    assert r.status == 204, r
    assert re.match(r"orch_session=; .*Max-Age=0", r.headers["Set-Cookie"]), r.headers
    assert as_session(srv, "GET", "/v1/session", token).status == 401
    assert as_session(srv, "GET", "/v1/executions", token).status == 401
    assert as_session(srv, "DELETE", "/v1/session", token, csrf=sess["csrfToken"]).status == 401


def test_key_never_in_the_log(srv):
    k = new_key(srv, "secretive", "admin")
    token, sess, _ = sign_in(srv, k["key"])
    as_session(srv, "GET", "/v1/executions", token)
    srv.post("/v1/session", {"key": k["key"][:-1] + "A"}, key=None)  # wrong key, real prefix
    srv.request("POST", "/v1/session", raw=b'{"key": "' + k["key"].encode() + b'" x', key=None)
    as_session(srv, "DELETE", "/v1/session", token, csrf=sess["csrfToken"])
    log = srv.log()
    assert "Session started for API key " + k["key"][:12] in log
    for secret in (k["key"], k["key"][12:], token, sess["csrfToken"]):
        assert secret not in log, secret


# --------------------------------------------------------------------------- waitingOn

def task_of(detail, name):
    for t in detail["tasks"]:
        if t["name"] == name:
            return t
    raise AssertionError(f"no task {name} in {[t['name'] for t in detail['tasks']]}")


def waiting(s, ex, name):
    """waitingOn of task `name` once it has one (and the same in /tasks)."""
    def get():
        w = task_of(s.get(f"/v1/executions/{ex}").json, name)["waitingOn"]
        return w
    w = wait_for(get, f"waitingOn of {name}")
    items = s.get(f"/v1/executions/{ex}/tasks?limit=1000").json["items"]
    assert any(t["name"] == name and t["waitingOn"] and
               t["waitingOn"]["reason"] == w["reason"] for t in items), items
    return w


def cancel(s, ex):
    assert s.post(f"/v1/executions/{ex}/cancel").status in (200, 202)


def test_waiting_on_dependency(srv):
    srv.apply(wf("w-dep", [sh("extract", "sleep 60"), sh("load", "true", dependsOn=["extract"])]))
    ex = srv.trigger("w-dep")["id"]
    wait_for(lambda: task_of(srv.execution(ex), "extract")["status"] == "running", "extract")
    w = waiting(srv, ex, "load")
    assert w["reason"] == "dependency" and w["dependencies"] == ["extract"], w
    assert w["message"] == "waiting for dependency extract"
    assert task_of(srv.execution(ex), "extract")["waitingOn"] is None
    cancel(srv, ex)
    d = wait_for(lambda: (lambda e: e["status"] == "cancelled" and e)(srv.execution(ex)),
                 "the cancel")
    assert all(t["waitingOn"] is None for t in d["tasks"]), d


def test_waiting_on_slot(make):
    s = make(workers=1)
    s.apply(wf("w-slot", [sh("a", "sleep 60"), sh("b", "sleep 60")]))
    ex = s.trigger("w-slot")["id"]
    wait_for(lambda: any(t["status"] == "running" for t in s.execution(ex)["tasks"]), "a start")
    queued = [t["name"] for t in s.execution(ex)["tasks"] if t["status"] == "queued"]
    assert len(queued) == 1, s.execution(ex)
    w = waiting(s, ex, queued[0])
    assert w["reason"] == "slot" and w["busy"] == 1 and w["slots"] == 1, w
    assert w["message"] == "waiting for a worker slot (1 of 1 busy)"
    cancel(s, ex)


def test_waiting_on_concurrency(srv):
    srv.apply(wf("w-conc", [sh("a", "sleep 60"), sh("b", "sleep 60")], concurrency=1))
    ex = srv.trigger("w-conc")["id"]
    wait_for(lambda: any(t["status"] == "running" for t in srv.execution(ex)["tasks"]), "start")
    other = next(t["name"] for t in srv.execution(ex)["tasks"] if t["status"] != "running")
    w = waiting(srv, ex, other)
    assert w["reason"] == "concurrency" and w["running"] == 1 and w["concurrency"] == 1, w
    cancel(srv, ex)


def test_waiting_on_max_parallel(srv):
    srv.apply(wf("w-maxp", [sh("each", "sleep 60", forEach=[1, 2, 3], maxParallel=1)]))
    ex = srv.trigger("w-maxp")["id"]

    def waiting_instance():
        for t in srv.execution(ex)["tasks"]:
            if t["group"] == "each" and t["waitingOn"]:
                return t
        return None
    t = wait_for(waiting_instance, "an instance waiting")
    w = t["waitingOn"]
    assert w["reason"] == "maxParallel" and w["maxParallel"] == 1 and w["running"] >= 1, t
    cancel(srv, ex)


def test_waiting_on_backoff(srv):
    srv.apply(wf("w-back", [sh("flaky", "exit 3", retries=2,
                               retryBackoff={"initial": "1h", "max": "2h",
                                                         "jitter": False})]))
    ex = srv.trigger("w-back")["id"]
    w = waiting(srv, ex, "flaky")
    assert w["reason"] == "backoff", w
    until = w["until"]
    assert until > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3000)), w
    assert "attempt 1 failed" in w["message"]
    cancel(srv, ex)


def test_waiting_on_child(srv):
    srv.apply(wf("w-kid", [sh("nap", "sleep 60")]))
    srv.apply(wf("w-parent", [{"name": "call", "type": "workflow", "workflow": "w-kid"}]))
    ex = srv.trigger("w-parent")["id"]
    w = waiting(srv, ex, "call")
    assert w["reason"] == "child" and w["childId"].startswith("ex_"), w
    assert w["childId"] == task_of(srv.execution(ex), "call")["childExecutionId"]
    cancel(srv, ex)


def test_waiting_on_in_executions_show(srv):
    srv.apply(wf("w-show", [sh("first", "sleep 60"), sh("second", "true", dependsOn=["first"])]))
    ex = srv.trigger("w-show")["id"]
    waiting(srv, ex, "second")
    env = {"ORCH_SERVER": srv.url, "ORCH_API_KEY": srv.admin_key}
    res = srv.orch("executions", "show", ex, env=env)
    assert res.returncode == 0, res.stderr
    assert "\nWaiting\n  second: waiting for dependency first\n" in res.stdout, res.stdout
    if isinstance(srv, Node):
        local = srv.orch("executions", "show", ex, "--json")
    else:
        local = srv.orch("executions", "show", ex, "--json", "--data-dir", srv.data_dir)
    assert local.returncode == 0, local.stderr
    w = task_of(json.loads(local.stdout), "second")["waitingOn"]
    assert w["reason"] == "dependency" and w["dependencies"] == ["first"], w
    cancel(srv, ex)


# --------------------------------------------------------------------------- stats

def test_stats_per_hour(srv):
    srv.apply(wf("st-ok", [sh("a", "true")]))
    srv.apply(wf("st-bad", [sh("a", "exit 1")]))
    ids = [srv.trigger("st-ok")["id"] for _ in range(3)] + [srv.trigger("st-bad")["id"]]
    for ex in ids:
        wait_for(lambda: srv.execution(ex)["status"] in ("succeeded", "failed"), ex)
    r = srv.get("/v1/stats/executions")
    assert r.status == 200, r
    hours = r.json["hours"]
    assert len(hours) == 24
    starts = [h["start"] for h in hours]
    assert starts == sorted(starts) and all(s.endswith(":00:00.000Z") for s in starts)
    last = hours[-1]
    now = time.strftime("%Y-%m-%dT%H", time.gmtime())
    if last["start"].startswith(now):  # (not across an hour's end)
        assert last["counts"]["succeeded"] >= 3 and last["counts"]["failed"] >= 1, last
    assert sum(h["total"] for h in hours) >= 4
    assert sum(h["counts"]["succeeded"] for h in hours) == 3
    assert sum(h["counts"]["failed"] for h in hours) == 1
    assert all(h["total"] == sum(h["counts"].values()) for h in hours)
    assert len(srv.get("/v1/stats/executions?hours=1").json["hours"]) == 1
    for bad in ("0", "169", "x"):
        assert srv.get(f"/v1/stats/executions?hours={bad}").status == 400


def test_stats_per_hour_counted_again_after_a_change(srv):
    """The counts are reused while nothing changed on this node: an execution that
    ends (or starts) since the last answer is counted in the next one at once."""
    srv.apply(wf("st2-ok", [sh("a", "true")]))
    srv.apply(wf("st2-slow", [sh("a", "sleep 1")]))

    def total(status):
        return sum(h["counts"][status] for h in srv.get("/v1/stats/executions").json["hours"])

    base_ok, base_running = total("succeeded"), total("running")
    first = srv.trigger("st2-ok")["id"]
    wait_for(lambda: srv.execution(first)["status"] == "succeeded", first)
    assert total("succeeded") == base_ok + 1
    assert total("succeeded") == base_ok + 1  # (answered again from the same count)
    slow = srv.trigger("st2-slow")["id"]
    wait_for(lambda: srv.execution(slow)["status"] == "running", slow)
    assert total("running") == base_running + 1
    wait_for(lambda: srv.execution(slow)["status"] == "succeeded", slow)
    assert total("running") == base_running and total("succeeded") == base_ok + 2


# --------------------------------------------------------------------------- graph

def check_layout(g):
    nodes = {n["name"]: n for n in g["nodes"]}
    for e in g["edges"]:
        a, b = nodes[e["from"]], nodes[e["to"]]
        assert b["layer"] > a["layer"], e
        assert b["y"] >= a["y"] + a["h"], e
        p = e["points"]
        # (whole pixels: each number rounded on its own)
        assert abs(p[0][0] - (a["x"] + a["w"] / 2)) <= 1 and abs(p[0][1] - (a["y"] + a["h"])) <= 1, \
            (p[0], a)
        assert abs(p[-1][0] - (b["x"] + b["w"] / 2)) <= 1 and abs(p[-1][1] - b["y"]) <= 1, (p[-1], b)
        ys = [q[1] for q in p]
        assert ys == sorted(ys), p
    boxes = sorted(((n["x"], n["y"], n["x"] + n["w"], n["y"] + n["h"]) for n in g["nodes"]))
    by_layer = {}
    for n in g["nodes"]:
        by_layer.setdefault(n["layer"], []).append(n)
    for layer, ns in by_layer.items():
        ns.sort(key=lambda n: n["x"])
        for u, v in zip(ns, ns[1:]):
            assert u["x"] + u["w"] <= v["x"], (u, v)
    for x0, y0, x1, y1 in boxes:
        assert x0 >= 0 and y0 >= 0 and x1 <= g["width"] and y1 <= g["height"]
    # no two boxes overlap at all (layers are apart, nodes in a layer too)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if b[0] >= a[2]:
                break
            assert b[1] >= a[3] or a[1] >= b[3], (a, b)


def test_graph_layout(srv):
    tasks = [sh("extract", "true"), sh("clean", "true", dependsOn=["extract"]),
             sh("enrich", "true", dependsOn=["extract"]),
             sh("load", "true", dependsOn=["clean", "enrich", "extract"]),
             sh("each", "true", dependsOn=["clean"], forEach=[1, 2, 3]),
             sh("report", "true", dependsOn=["load", "each"])]
    srv.apply(wf("graph", tasks))
    r = srv.get("/v1/workflows/graph/graph")
    assert r.status == 200, r
    g = r.json
    assert g["version"] == 1 and len(g["nodes"]) == 6 and len(g["edges"]) == 8
    check_layout(g)
    layers = {n["name"]: n["layer"] for n in g["nodes"]}
    assert layers == {"extract": 0, "clean": 1, "enrich": 1, "load": 2, "each": 2, "report": 3}
    each = next(n for n in g["nodes"] if n["name"] == "each")
    assert each["group"] is True and "status" not in each
    long_edge = next(e for e in g["edges"] if e["from"] == "extract" and e["to"] == "load")
    assert len(long_edge["points"]) == 3  # a bend in the layer it crosses
    # with an execution: statuses and the group's counts
    ex = srv.trigger("graph")["id"]
    wait_for(lambda: srv.execution(ex)["status"] == "succeeded", "the execution")
    g2 = srv.get(f"/v1/workflows/graph/graph?execution={ex}").json
    assert g2["execution"] == ex
    assert all(n["status"] == "succeeded" for n in g2["nodes"]), g2["nodes"]
    each = next(n for n in g2["nodes"] if n["name"] == "each")
    assert each["counts"] == {"total": 3, "succeeded": 3}, each
    assert srv.get("/v1/workflows/nope/graph").status == 404
    assert srv.get("/v1/workflows/graph/graph?version=7").status == 404
    assert srv.get("/v1/workflows/graph/graph?execution=nope").status == 400
    assert srv.get("/v1/workflows/graph/graph?execution=ex_0000000000000000").status == 404
    srv.apply(wf("other", [sh("a", "true")]))
    assert srv.get(f"/v1/workflows/other/graph?execution={ex}").status == 404


def test_graph_of_1000_tasks(srv):
    # 1,000 tasks in 20 layers of 50, each depending on three of the layer above.
    tasks = []
    for l in range(20):
        for i in range(50):
            t = sh(f"t{l:02d}_{i:02d}", "true")
            if l:
                t["dependsOn"] = sorted({f"t{l - 1:02d}_{(i * 7 + k * 13) % 50:02d}"
                                         for k in range(3)})
            tasks.append(t)
    srv.apply(wf("big", tasks))
    r = srv.get("/v1/workflows/big/graph")
    assert r.status == 200, r
    g = r.json
    assert len(g["nodes"]) == 1000 and len(g["edges"]) == sum(len(t.get("dependsOn", []))
                                                              for t in tasks)
    assert max(n["layer"] for n in g["nodes"]) == 19
    check_layout(g)


def test_versions(srv):
    srv.apply(wf("ver", [sh("a", "true")]))
    srv.apply(wf("ver", [sh("a", "false")]))
    r = srv.get("/v1/workflows/ver/versions")
    assert r.status == 200, r
    assert [v["version"] for v in r.json["versions"]] == [2, 1]
    assert srv.get("/v1/workflows/ver?version=1").json["definition"]["tasks"][0]["command"] \
        == "true"
    assert srv.get("/v1/workflows/nope/versions").status == 404


# --------------------------------------------------------------------------- ETag

def test_conditional_gets(srv):
    srv.apply(wf("etag", [sh("a", "true")]))
    ex = srv.trigger("etag")["id"]
    wait_for(lambda: srv.execution(ex)["status"] == "succeeded", "the execution")
    for path in ("/v1/executions", f"/v1/executions/{ex}", f"/v1/executions/{ex}/tasks",
                 "/v1/stats/executions", "/v1/workflows/etag/graph",
                 "/v1/workflows/etag/versions"):
        r = srv.get(path)
        assert r.status == 200, r
        tag = r.headers["ETag"]
        n = srv.get(path, headers={"If-None-Match": tag}, check=False)
        assert n.status == 304 and n.body == b"" and n.headers["ETag"] == tag, (path, n)
        n = srv.get(path, headers={"If-None-Match": f'"x", W/{tag}'}, check=False)
        assert n.status == 304, (path, n)
        assert srv.get(path, headers={"If-None-Match": '"00"'}).status == 200
    # a change gives a new tag
    tag = srv.get("/v1/executions").headers["ETag"]
    ex2 = srv.trigger("etag")["id"]
    r = srv.get("/v1/executions", headers={"If-None-Match": tag})
    assert r.status == 200 and r.headers["ETag"] != tag, r
    assert r.json["items"][0]["id"] == ex2
    # health answers with an ETag too
    assert srv.get("/v1/health").headers["ETag"]


# --------------------------------------------------------------------------- gzip

GZ = {"Accept-Encoding": "gzip, deflate, br"}


def test_gzip_answers(srv):
    import gzip
    # a JSON answer of 1 KiB or more, gzipped for a client that accepts it
    srv.apply(wf("gz", [sh(f"t{i:03d}", "true") for i in range(60)]))
    ex = srv.trigger("gz")["id"]
    wait_for(lambda: srv.execution(ex)["status"] == "succeeded", "the execution")
    path = f"/v1/executions/{ex}"
    plain = srv.get(path)
    assert plain.status == 200 and "Content-Encoding" not in plain.headers, plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"
    z = srv.get(path, headers=GZ, check=False)
    assert z.status == 200 and z.headers["Content-Encoding"] == "gzip", z.headers
    assert z.headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(z.body) == plain.body
    assert len(z.body) * 4 < len(plain.body), (len(z.body), len(plain.body))
    # its own tag; either tag revalidates, and the 304 names the client's representation
    tag, ztag = plain.headers["ETag"], z.headers["ETag"]
    assert ztag == tag[:-1] + '-gz"', (tag, ztag)
    for t in (tag, ztag):
        n = srv.get(path, headers={**GZ, "If-None-Match": t}, check=False)
        assert n.status == 304 and n.body == b"" and n.headers["ETag"] == ztag, n
        n = srv.get(path, headers={"If-None-Match": t}, check=False)
        assert n.status == 304 and n.headers["ETag"] == tag, n
    # refused by weight, or not named: plain
    for ae in ("gzip;q=0", "identity", "br, deflate", "*;q=0"):
        r = srv.get(path, headers={"Accept-Encoding": ae}, check=False)
        assert "Content-Encoding" not in r.headers and r.body == plain.body, (ae, r.headers)
    # a small answer is never compressed and does not vary
    small = srv.get("/v1/workflows/gz/versions", headers=GZ, check=False)
    assert small.status == 200 and len(small.body) < 1024, small
    assert "Content-Encoding" not in small.headers and "Vary" not in small.headers, small.headers
    # an error answer is JSON as usual
    r = srv.get("/v1/executions/ex_0000000000000000", headers=GZ, check=False)
    assert r.status == 404 and r.json["error"]["code"] == "not_found", r


def test_gzip_ui_files(srv):
    import gzip
    ui = REPO / "ui"
    files = sorted(p for p in ui.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        if ui.is_dir() else []
    for p in files:
        rel = p.relative_to(ui).as_posix()
        r = srv.request("GET", "/assets/" + rel, headers=GZ, key=None, check=False)
        assert r.status == 200, (rel, r)
        assert_ui_headers(r)
        if r.headers.get("Content-Encoding") == "gzip":
            assert gzip.decompress(r.body) == p.read_bytes(), rel
            assert len(r.body) < p.stat().st_size
            assert r.headers["ETag"].endswith('-gz"'), r.headers
            n = srv.request("GET", "/assets/" + rel, key=None, check=False,
                            headers={**GZ, "If-None-Match": r.headers["ETag"]})
            assert n.status == 304 and n.headers["ETag"] == r.headers["ETag"], n
        else:
            assert r.body == p.read_bytes(), rel
        if p.stat().st_size >= 1024:
            assert r.headers["Vary"] == "Accept-Encoding", (rel, r.headers)
            # every file of a KiB or more is text here, so gzip makes it smaller
            assert r.headers.get("Content-Encoding") == "gzip", (rel, r.headers)
    # a page load of a browser: the same answer as /assets/index.html
    r = ui_get(srv, "/", GZ)
    a = srv.request("GET", "/assets/index.html", headers=GZ, key=None, check=False)
    assert r.status == 200 and r.body == a.body and r.headers["ETag"] == a.headers["ETag"], r
    body = gzip.decompress(r.body) if r.headers.get("Content-Encoding") == "gzip" else r.body
    assert body.lstrip().lower().startswith(b"<!doctype html")
