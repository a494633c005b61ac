"""
The web pages' sign-in sessions kept in the store, on SQLite and on PostgreSQL: a session
outlives a restart of the server; two servers on one PostgreSQL (behind a load balancer)
both know a session made on either, and a sign-out on one ends it on both; only hashes of
the cookie's token and of the CSRF token are stored (the values are in no file of the
SQLite database, no row of the PostgreSQL table and no log); a revoked key's session and
a signed-out one are deleted, not only refused.

The session behaviour seen by a browser (cookie flags, CSRF, scopes) is tested by
test_ui_server.py and, in Chromium, by test_ui.py.
"""
import base64
import hashlib
import sqlite3

import pytest

from apiutil import Server, sh, wf
from pgutil import Node, Postgres
from test_ui_server import as_session, new_key, sign_in

# The keys of session.c's two BLAKE2b uses (zero-padded to 32 bytes).
HASH_KEY = b"orch session hash".ljust(32, b"\0")
CSRF_KEY = b"orch session csrf".ljust(32, b"\0")


def session_hash(token):
    return hashlib.blake2b(token.encode(), digest_size=32, key=HASH_KEY).digest()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request):
    if request.param == "sqlite":
        yield None
        return
    pg = Postgres().start()
    yield pg
    pg.destroy()


@pytest.fixture
def servers(tmp_path):
    started = []

    def track(s):
        started.append(s)
        return s

    yield track
    for s in started:
        try:
            code = s.stop()
            assert code in (0, None), f"server exited {code}:\n{s.log()[-3000:]}"
            s.assert_log_clean()
        finally:
            s.cleanup()


def make_server(backend, servers, tmp_path, name="a", url=None, admin_key=None):
    d = tmp_path / name
    d.mkdir()
    if backend is None:
        return servers(Server(d))
    return servers(Node(d, url or backend.database(), name, lease="30s", admin_key=admin_key))


def session_rows(backend, s):
    """Every row of the sessions table as a dict of bytes/str/int values."""
    cols = ["token_hash", "csrf_hash", "key_id", "key_prefix", "created_at", "expires_at",
            "last_seen_at"]
    if backend is None:
        db = sqlite3.connect(f"file:{s.data_dir / 'orch.db'}?mode=ro", uri=True)
        try:
            return [dict(zip(cols, r)) for r in db.execute(f"SELECT {', '.join(cols)} "
                                                           "FROM sessions")]
        finally:
            db.close()
    out = backend.psql("SELECT encode(token_hash, 'hex') || '|' || encode(csrf_hash, 'hex')"
                       " || '|' || key_id || '|' || key_prefix || '|' || created_at || '|'"
                       " || expires_at || '|' || last_seen_at FROM sessions", url=s.db_url)
    rows = []
    for line in filter(None, out.splitlines()):
        v = line.split("|")
        rows.append({"token_hash": bytes.fromhex(v[0]), "csrf_hash": bytes.fromhex(v[1]),
                     "key_id": v[2], "key_prefix": v[3], "created_at": int(v[4]),
                     "expires_at": int(v[5]), "last_seen_at": int(v[6])})
    return rows


def test_session_survives_a_restart(backend, servers, tmp_path):
    s = make_server(backend, servers, tmp_path).start()
    token, sess, _ = sign_in(s, s.admin_key)
    assert s.stop() == 0
    s.start()
    g = as_session(s, "GET", "/v1/session", token)
    assert g.status == 200 and g.json["csrfToken"] == sess["csrfToken"], g
    assert g.json["keyId"] == sess["keyId"] and g.json["expiresAt"] == sess["expiresAt"], g
    # the CSRF token of before the restart still works, and nothing else does
    body = wf("after-restart", [sh("a", "true")])
    r = as_session(s, "POST", "/v1/workflows", token, csrf="y" * 43, body=body)
    assert r.status == 403 and r.error()["code"] == "csrf", r
    r = as_session(s, "POST", "/v1/workflows", token, csrf=sess["csrfToken"], body=body)
    assert r.status == 201, r


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_two_servers_share_sessions(backend, servers, tmp_path):
    url = backend.database()
    a = make_server(backend, servers, tmp_path, "a", url).start()
    b = make_server(backend, servers, tmp_path, "b", url, admin_key=a.admin_key).start()
    token, sess, _ = sign_in(a, a.admin_key)
    # made on a, known on b: reads, and a write with the session's CSRF token
    g = as_session(b, "GET", "/v1/session", token)
    assert g.status == 200 and g.json["csrfToken"] == sess["csrfToken"], g
    assert as_session(b, "GET", "/v1/executions", token).status == 200
    r = as_session(b, "POST", "/v1/workflows", token, csrf=sess["csrfToken"],
                   body=wf("on-b", [sh("a", "true")]))
    assert r.status == 201, r
    r = as_session(b, "POST", "/v1/workflows", token, body=wf("on-b2", [sh("a", "true")]))
    assert r.status == 403 and r.error()["code"] == "csrf", r
    # a second session, made on b, works on a
    token2, sess2, _ = sign_in(b, a.admin_key)
    assert as_session(a, "GET", "/v1/session", token2).status == 200
    # signed out on b: ended on both, the other session untouched
    r = as_session(b, "DELETE", "/v1/session", token, csrf=sess["csrfToken"])
    assert r.status == 204, r
    for s in (a, b):
        r = as_session(s, "GET", "/v1/session", token)
        assert r.status == 401 and "sign in again" in r.error()["message"], (s.name, r)
        assert as_session(s, "GET", "/v1/executions", token).status == 401
        assert as_session(s, "GET", "/v1/session", token2).status == 200
    # a key revoked on a ends its sessions on b at once
    k = new_key(a, "temp", "read")
    token3, _, _ = sign_in(a, k["key"])
    assert as_session(b, "GET", "/v1/executions", token3).status == 200
    assert a.delete(f"/v1/keys/{k['id']}").status == 204
    r = as_session(b, "GET", "/v1/executions", token3)
    assert r.status == 401 and "revoked" in r.error()["message"], r


def test_only_hashes_are_stored(backend, servers, tmp_path):
    s = make_server(backend, servers, tmp_path).start()
    k = new_key(s, "viewer", "read")
    token, sess, _ = sign_in(s, k["key"])
    csrf = sess["csrfToken"]
    assert as_session(s, "GET", "/v1/executions", token).status == 200
    rows = session_rows(backend, s)
    assert len(rows) == 1, rows
    row = rows[0]
    # the row is the session's: the hashes of its two tokens, its key
    assert row["token_hash"] == session_hash(token), row
    assert row["csrf_hash"] == session_hash(csrf), row
    assert row["key_id"] == k["id"] and row["key_prefix"] == k["key"][:12], row
    assert row["created_at"] <= row["last_seen_at"] < row["expires_at"], row
    # the CSRF token is derived from the cookie's token (so the page can get it again)
    derived = hashlib.blake2b(token.encode(), digest_size=32, key=CSRF_KEY).digest()
    assert base64.urlsafe_b64encode(derived).rstrip(b"=").decode() == csrf
    # neither token, in text or in bytes, is anywhere in the database or the logs
    secrets = [token.encode(), csrf.encode(), base64.urlsafe_b64decode(token + "=")]
    if backend is None:
        files = [p for p in s.data_dir.rglob("*") if p.is_file()]
        assert any(p.name == "orch.db" for p in files), files
        for p in files:
            data = p.read_bytes()
            for secret in secrets:
                assert secret not in data, (p, secret)
    else:
        dump = backend.psql("SELECT s::text FROM sessions s", url=s.db_url)
        assert dump and token not in dump and csrf not in dump, dump
    log = s.all_logs()
    assert "Session started for API key " + k["key"][:12] in log
    for secret in (token, csrf, k["key"]):
        assert secret not in log


def test_ended_sessions_are_deleted(backend, servers, tmp_path):
    s = make_server(backend, servers, tmp_path).start()
    k = new_key(s, "temp", "read")
    token, sess, _ = sign_in(s, s.admin_key)
    token2, _, _ = sign_in(s, k["key"])
    assert len(session_rows(backend, s)) == 2
    # signed out: the row goes
    assert as_session(s, "DELETE", "/v1/session", token, csrf=sess["csrfToken"]).status == 204
    assert [r["key_id"] for r in session_rows(backend, s)] == [k["id"]]
    # a revoked key's session presented again: refused and deleted
    assert s.delete(f"/v1/keys/{k['id']}").status == 204
    assert as_session(s, "GET", "/v1/executions", token2).status == 401
    assert session_rows(backend, s) == []
