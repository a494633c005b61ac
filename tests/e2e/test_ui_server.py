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
