"""
Authentication and authorisation of the HTTP API end to end: each 401 case (missing
header, another scheme, two spaces, unknown, revoked and expired keys) with its
WWW-Authenticate header and a message that tells which case it is, 403 for a key without
the scope, 429 with Retry-After after more than 20 failures in a minute (per address and
key, never for a valid key, the address taken from X-Forwarded-For behind a trusted proxy),
the /v1/keys endpoints, and keys never written to the server's log.

The module's server sees fewer than 20 failures in all; the rate-limit test has its own.
"""
import datetime
import re
import time

import pytest

from apiutil import WWW_AUTH, Server, fresh_server, server, unknown_key, wf, sh  # noqa: F401

SECRETS = []  # every key these tests used: none may appear in a log


def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def assert_401(r, hint):
    """A 401 with the WWW-Authenticate header and a message matching `hint` (a regex)."""
    assert r.status == 401, r
    err = r.json["error"]
    assert err["code"] == "invalid_token"
    m = WWW_AUTH.match(r.headers.get("WWW-Authenticate", ""))
    assert m, f"WWW-Authenticate: {r.headers.get('WWW-Authenticate')!r}"
    desc = m.group(1)
    assert desc, "empty error_description"
    assert re.search(hint, err["message"], re.I), f"message {err['message']!r} lacks /{hint}/"
    assert re.search(hint, desc, re.I), f"error_description {desc!r} lacks /{hint}/"
    return err["message"]


def get_with_header(server, value, path="/v1/workflows"):
    headers = {} if value is None else {"Authorization": value}
    return server.request("GET", path, headers=headers, key=None)


# --------------------------------------------------------------------------- 401 cases

def test_missing_header(server):
    assert_401(get_with_header(server, None), r"missing")


def test_wrong_scheme(server):
    assert_401(get_with_header(server, "Basic YWRtaW46c2VjcmV0"), r"scheme.*Bearer|Bearer.*scheme")


def test_two_spaces_after_bearer(server):
    r = get_with_header(server, "Bearer  " + server.admin_key)
    assert_401(r, r"space")


def test_unknown_key(server):
    k = unknown_key()
    SECRETS.append(k)
    assert_401(get_with_header(server, "Bearer " + k), r"unknown")


def test_revoked_key_via_cli(server):
    k = server.keys_create("to-revoke", "read")
    SECRETS.append(k["key"])
    assert server.get("/v1/workflows", key=k["key"]).status == 200
    res = server.orch("keys", "revoke", k["id"], "--data-dir", server.data_dir)
    assert res.returncode == 0, res.stderr
    msg = assert_401(server.get("/v1/workflows", key=k["key"]), r"revoked")
    assert k["prefix"] in msg or "revoked" in msg


def test_first_use_shows_in_that_get(server):
    """A GET reads its key and its answer in one snapshot, which the key's first use (a
    write of lastUsedAt) must end: the answer of the key's very first request shows it."""
    k = server.keys_create("first-use", "admin")
    SECRETS.append(k["key"])
    r = server.get("/v1/keys", key=k["key"])
    assert r.status == 200
    mine = [i for i in r.json["items"] if i["id"] == k["id"]]
    assert len(mine) == 1 and mine[0]["lastUsedAt"], mine


def test_access_line(server):
    """One line per request, in the log's format, written by hand (no printf)."""
    r = server.get("/v1/workflows", headers={"X-Request-Id": "req_access-line-check-1"})
    assert r.status == 200
    text = server.wait_log("request_id=req_access-line-check-1")
    line = [x for x in text.splitlines() if "request_id=req_access-line-check-1" in x]
    assert len(line) == 1, line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO \[API\] GET /v1/workflows 200 "
                        r"\d+\.\dms request_id=req_access-line-check-1 key=sk_\S+", line[0]), line[0]
    r = server.get("/v1/workflows", key=None, headers={"X-Request-Id": "req_access-line-check-2"})
    assert r.status == 401
    text = server.wait_log("request_id=req_access-line-check-2")
    line = [x for x in text.splitlines() if "request_id=req_access-line-check-2" in x]
    assert len(line) == 1, line
    assert re.fullmatch(r"\S+ INFO \[API\] GET /v1/workflows 401 \d+\.\dms "
                        r"request_id=req_access-line-check-2 auth=\w+", line[0]), line[0]


def test_expired_key(server):
    k = server.keys_create("short-lived", "read", expires="1s")
    SECRETS.append(k["key"])
    assert k["expiresAt"]
    time.sleep(1.5)
    msg = assert_401(server.get("/v1/workflows", key=k["key"]), r"expired")
    # It says when: the instant of expiry, to the second.
    assert k["expiresAt"][:19] in msg, f"{msg!r} does not say when ({k['expiresAt']})"


# --------------------------------------------------------------------------- scopes

@pytest.fixture(scope="module")
def keys(server):
    out = {}
    for scope in ("read", "write"):
        k = server.keys_create(f"{scope}-key", scope)
        SECRETS.append(k["key"])
        out[scope] = k["key"]
    out["admin"] = server.admin_key
    return out


def test_read_key_cannot_write(server, keys):
    assert server.get("/v1/workflows", key=keys["read"]).status == 200
    assert server.get("/v1/executions?status=failed&limit=10", key=keys["read"]).status == 200
    assert server.get("/v1/health", key=keys["read"]).status in (200, 503)
    r = server.post("/v1/workflows", wf("by-reader", [sh("a", ["true"])]), key=keys["read"])
    assert r.status == 403, r
    assert r.json["error"]["code"] == "forbidden"
    assert "write" in r.json["error"]["message"]
    assert "WWW-Authenticate" not in r.headers or "insufficient_scope" in r.headers[
        "WWW-Authenticate"]
    assert server.get("/v1/workflows/by-reader").status == 404
    r = server.post("/v1/workflows/by-reader/executions", key=keys["read"])
    assert r.status == 403, r
    assert server.get("/v1/keys", key=keys["read"]).status == 403


def test_write_key_cannot_manage_keys(server, keys):
    r = server.post("/v1/workflows", wf("by-writer", [sh("a", ["true"])]), key=keys["write"])
    assert r.status == 201, r
    assert server.get("/v1/workflows/by-writer", key=keys["write"]).status == 200
    r = server.post("/v1/keys", {"name": "sneaky", "scopes": ["admin"]}, key=keys["write"])
    assert r.status == 403, r
    assert "admin" in r.json["error"]["message"]
    assert server.get("/v1/keys", key=keys["write"]).status == 403
    assert server.delete("/v1/workflows/by-writer", key=keys["write"]).status == 204


# --------------------------------------------------------------------------- /v1/keys

def test_keys_endpoints(server):
    before = datetime.datetime.now(datetime.timezone.utc)
    r = server.post("/v1/keys", {"name": "ci", "scopes": ["write"], "expiresIn": "30d"})
    assert r.status == 201, r
    k = r.json
    SECRETS.append(k["key"])
    assert k["name"] == "ci" and "write" in k["scopes"] and "admin" not in k["scopes"]
    assert k["key"].startswith(k["prefix"]) and len(k["prefix"]) < len(k["key"])
    exp = parse_iso(k["expiresAt"]) - before
    assert datetime.timedelta(days=29, hours=23) < exp < datetime.timedelta(days=30, minutes=5)
    assert k["revokedAt"] is None

    listed = server.get("/v1/keys").json["items"]
    mine = [i for i in listed if i["id"] == k["id"]]
    assert len(mine) == 1 and "key" not in mine[0] and mine[0]["prefix"] == k["prefix"]
    created = [i["createdAt"] for i in listed]
    assert created == sorted(created, reverse=True)
    assert not any(i["prefix"] == i.get("key") for i in listed)

    # The new key works, with its scope.
    assert server.post("/v1/workflows", wf("by-ci", [sh("a", ["true"])]),
                       key=k["key"]).status == 201
    # A second live key of the same name is a conflict.
    assert server.post("/v1/keys", {"name": "ci"}).status == 409

    r = server.delete(f"/v1/keys/{k['id']}")
    assert r.status == 204 and r.body == b"", r
    assert_401(server.get("/v1/workflows", key=k["key"]), r"revoked")
    after = [i for i in server.get("/v1/keys").json["items"] if i["id"] == k["id"]]
    assert after and after[0]["revokedAt"] is not None
    assert server.delete("/v1/keys/key_0000000000000000").status == 404


def test_keys_defaults(server):
    r = server.post("/v1/keys", {"name": "reader-default"})
    assert r.status == 201, r
    SECRETS.append(r.json["key"])
    assert r.json["scopes"] == ["read"] and r.json["expiresAt"] is None


def test_keys_expires_in_number_is_seconds(server):
    """A number is a number of seconds for expiresIn, as for every duration of the API."""
    before = datetime.datetime.now(datetime.timezone.utc)
    r = server.post("/v1/keys", {"name": "secs", "expiresIn": 3600})
    assert r.status == 201, r
    SECRETS.append(r.json["key"])
    exp = parse_iso(r.json["expiresAt"]) - before
    assert datetime.timedelta(minutes=59) < exp < datetime.timedelta(minutes=65), exp
    assert server.post("/v1/keys", {"name": "neg", "expiresIn": 0}).status == 422


@pytest.mark.parametrize("body", [{"name": ""}, {"scopes": ["read"]},
                                  {"name": "x", "scopes": ["root"]}, {"name": "x", "scopes": []},
                                  {"name": "x", "expiresIn": "soon"}, {"name": 5}])
def test_keys_create_rejects_bad_bodies(server, body):
    r = server.post("/v1/keys", body)
    assert r.status in (400, 422), r


# --------------------------------------------------------------------------- logs

def test_keys_never_in_the_log(server):
    log = server.all_logs()
    for k in SECRETS + [server.admin_key]:
        assert k not in log, "a key appears in the server's log"
        assert k[12:] not in log, "the secret part of a key appears in the server's log"


# --------------------------------------------------------------------------- 429

def test_rate_limit_after_20_failures(fresh_server):
    s = fresh_server
    statuses, last = [], None
    for i in range(24):
        r = s.get("/v1/workflows", key=unknown_key())
        statuses.append(r.status)
        last = r
    assert statuses[:20] == [401] * 20, statuses
    assert 429 in statuses[20:22], statuses
    assert statuses[22:] == [429] * 2, statuses
    assert last.json["error"]["code"] == "rate_limited"
    ra = last.headers["Retry-After"]
    assert ra.isdigit() and 1 <= int(ra) <= 60, ra
    # A missing header from the same address is still refused (401: it is no key to limit).
    assert_401(get_with_header(s, None), r"missing")
    # The public probe still answers.
    assert s.get("/v1/health/scheduler", key=None).status in (200, 503)


def test_failures_never_lock_out_a_valid_key(fresh_server):
    s = fresh_server
    # A client behind the same address (a NAT, or this host) sends bad keys...
    statuses = [s.get("/v1/workflows", key=unknown_key()).status for _ in range(22)]
    assert statuses[-1] == 429, statuses
    # ...the valid key from that address is served all the same, every time.
    for _ in range(3):
        assert s.get("/v1/workflows").status == 200
    # An HTTP task sending user:pass (Basic) or a malformed header is not counted.
    for _ in range(25):
        assert_401(get_with_header(s, "Basic dXNlcjpwYXNz", path="/v1/health"), r"scheme")
    assert_401(get_with_header(s, "Bearer not-a-key"), r"malformed")
    # A revoked key is counted on its own: its failures do not make an unknown key 429...
    k = s.keys_create("gone", "read")
    SECRETS.append(k["key"])
    assert s.orch("keys", "revoke", k["id"], "--data-dir", s.data_dir).returncode == 0
    revoked = [s.get("/v1/workflows", key=k["key"]).status for _ in range(21)]
    assert revoked[:20] == [401] * 20 and revoked[20] == 429, revoked
    # ...and the valid key still works.
    assert s.get("/v1/keys").status == 200


@pytest.fixture
def proxied_server(tmp_path):
    s = Server(tmp_path, env={"ORCH_TRUSTED_PROXIES": "127.0.0.1/32, ::1"})
    try:
        s.start()
        yield s
        assert s.stop() == 0
        s.assert_log_clean()
    finally:
        s.cleanup()


def test_trusted_proxy_names_the_client(proxied_server):
    s = proxied_server

    def get(forwarded):
        return s.get("/v1/workflows", key=unknown_key(),
                     headers={"X-Forwarded-For": forwarded})

    # The right-most address that is not a trusted proxy is the client: whatever the
    # client itself put on the left does not change it.
    statuses = [get(f"10.{i}.0.1, 203.0.113.7, 127.0.0.1").status for i in range(21)]
    assert statuses[:20] == [401] * 20 and statuses[20] == 429, statuses
    assert "203.0.113.7" in get("203.0.113.7").json["error"]["message"]
    # Another client behind the same proxy is not limited.
    r = get("203.0.113.8")
    assert r.status == 401, r
    # Without the header the proxy's own address is the client.
    assert s.get("/v1/workflows", key=unknown_key()).status == 401
    assert "invalid trusted proxies" in s.orch(
        "server", "--listen", "127.0.0.1:0", "--data-dir", s.tmp / "other",
        env={"ORCH_TRUSTED_PROXIES": "10.0.0.0/33"}).stderr
