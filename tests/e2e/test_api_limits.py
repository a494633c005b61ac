"""
The HTTP edge against slow and odd clients, on a real `orch server`:

- one address holding a thousand half-sent requests leaves room for others (connections
  per address, ORCH_HTTP_CONNECTIONS_PER_ADDRESS);
- a request head sent a line every so often is ended at the head deadline
  (ORCH_HTTP_HEAD_TIMEOUT) with a JSON 408, while a kept-alive idle connection is not;
- a key followed by a NUL byte is refused; the public scheduler health names nothing;
- HEAD is GET without the body; heads over our limits get the JSON error shape.

Every socket a test opens is bounded in number and closed in `finally`.
"""
import http.client
import json
import resource
import socket
import time

import pytest

from apiutil import Server, spec, wf, sh

HOLD = 1000  # sockets one address opens: as many as the server's connection limit


def serve(tmp, env):
    s = Server(tmp, env=env)
    s.start()
    return s


def stop(s):
    try:
        code = s.stop()
        assert code == 0, f"orch server exited with {code} on SIGTERM:\n{s.log()[-3000:]}"
        s.assert_log_clean()
    finally:
        s.cleanup()


def connect(server, src="127.0.0.1", timeout=3):
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout,
                                    source_address=(src, 0))


def exchange(server, data, src="127.0.0.1", timeout=5):
    """Send raw bytes, read until the server closes; returns (status, headers, body)."""
    s = connect(server, src, timeout)
    try:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    finally:
        s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines[0].startswith("HTTP/") else None
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return status, headers, body


def health(server, src, key, timeout=3):
    """GET /v1/health from the address `src` on a new connection: (status, seconds)."""
    t0 = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout,
                                   source_address=(src, 0))
    try:
        c.request("GET", "/v1/health", headers={"Authorization": f"Bearer {key}"})
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        c.close()


def alive(sock):
    """Has the server not closed `sock` (no EOF, no reset)?"""
    sock.setblocking(False)
    try:
        return sock.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


# --------------------------------------------------------------------------- connections

def test_one_address_cannot_hold_every_connection(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < HOLD + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low for {HOLD} sockets")
    if soft != resource.RLIM_INFINITY and soft < HOLD + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (HOLD + 200, hard))
    s = serve(tmp_path, {"ORCH_HTTP_THREADS": "2"})
    held = []
    try:
        for _ in range(HOLD):
            try:
                c = connect(s, timeout=2)
                c.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # and never the rest
                held.append(c)
            except OSError:
                break  # refused or reset at once: fine
        # Another address is answered at once.
        status, took = health(s, "127.0.0.2", s.admin_key)
        assert status == 200 and took < 2, (status, took)
        # Only the address's share of connections is held; the rest were closed.
        time.sleep(0.3)
        kept = sum(alive(c) for c in held)
        assert kept <= 64 + 4, f"{kept} of {len(held)} half-sent requests still held"
    finally:
        for c in held:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        stop(s)


def test_head_deadline_ends_slow_heads(tmp_path):
    limit = 16
    s = serve(tmp_path, {"ORCH_HTTP_HEAD_TIMEOUT": "2s",
                         "ORCH_HTTP_CONNECTIONS_PER_ADDRESS": str(limit)})
    slow, extra = [], None
    # The server answers before its engine's first turn (503 until then): wait for that.
    end = time.monotonic() + 30
    while health(s, "127.0.0.1", s.admin_key)[0] != 200:
        assert time.monotonic() < end, "the server's health did not become 200"
        time.sleep(0.05)
    kept = http.client.HTTPConnection("127.0.0.1", s.port, timeout=5,
                                      source_address=("127.0.0.1", 0))
    try:
        # A kept-alive connection that answered a request, then idles past the deadline.
        kept.request("GET", "/v1/health", headers={"Authorization": f"Bearer {s.admin_key}"})
        r = kept.getresponse()
        r.read()
        assert r.status == 200
        # The address's other connections send a header line every 0.25 s, forever.
        t0 = time.monotonic()
        for _ in range(limit - 1):
            c = connect(s)
            c.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            slow.append(c)
        time.sleep(0.3)
        # The address is at its limit: one more connection is closed unanswered.
        extra = connect(s)
        try:
            extra.sendall(b"GET /v1/health/scheduler HTTP/1.1\r\nHost: x\r\n\r\n")
            got = extra.recv(100)
        except OSError:
            got = b""
        assert got == b"", f"a connection over the address's limit was answered: {got!r}"
        answers = {id(c): b"" for c in slow}
        open_ = list(slow)
        n = 0
        while open_ and time.monotonic() - t0 < 10:
            n += 1
            for c in list(open_):
                try:
                    c.sendall(b"X-Slow-%d: 1\r\n" % n)
                except OSError:
                    pass
                c.settimeout(0.01)
                try:
                    b = c.recv(4096)
                    if not b:
                        open_.remove(c)
                    answers[id(c)] += b
                except socket.timeout:
                    pass
                except OSError:
                    open_.remove(c)
            time.sleep(0.25)
        took = time.monotonic() - t0
        assert not open_, f"{len(open_)} slow heads still open after {took:.1f}s"
        assert 1.5 < took < 8, took
        for c in slow:
            a = answers[id(c)]
            assert a.startswith(b"HTTP/1.1 408 "), a[:200]
            body = json.loads(a.partition(b"\r\n\r\n")[2])
            spec().validate(body, "Error", "408 answer")
            assert body["error"]["code"] == "request_timeout"
        # The address is served again.
        status, took = health(s, "127.0.0.1", s.admin_key)
        assert status == 200 and took < 2, (status, took)
        # The kept-alive connection idled past the head deadline and still works.
        kept.request("GET", "/v1/health", headers={"Authorization": f"Bearer {s.admin_key}"})
        r = kept.getresponse()
        r.read()
        assert r.status == 200
    finally:
        kept.close()
        for c in slow + ([extra] if extra else []):
            c.close()
        stop(s)


# --------------------------------------------------------------------------- small ones

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = serve(tmp_path_factory.mktemp("limits"), {})
    try:
        yield s
    finally:
        stop(s)


def test_key_followed_by_nul_is_refused(server):
    key = server.admin_key.encode()
    base = b"GET /v1/workflows HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    status, headers, body = exchange(server, base + b"Authorization: Bearer " + key +
                                     b"\x00junk\r\n\r\n")
    assert status == 401, (status, body)
    assert json.loads(body)["error"]["code"] == "invalid_token"
    assert "NUL" in json.loads(body)["error"]["message"]
    status, _, body = exchange(server, base + b"Authorization: Bearer " + key + b"\x00\r\n\r\n")
    assert status == 401, (status, body)
    # The same key without the NUL, with CR LF or bare LF line ends, is accepted.
    status, _, body = exchange(server, base + b"Authorization: Bearer " + key + b"\r\n\r\n")
    assert status == 200, (status, body)
    status, _, body = exchange(server, base.replace(b"\r\n", b"\n") + b"Authorization: Bearer " +
                               key + b"\nX-After: 1\n\n")
    assert status == 200, (status, body)


def test_public_scheduler_health_names_no_schedule(server):
    server.apply(wf("secret-payroll", [sh("a", "true")],
                    schedules=[{"name": "hidden-nightly", "cron": "0 3 * * *"}]))
    end = time.monotonic() + 10
    while True:  # the scheduler picks the schedule up on its next tick
        r = server.get("/v1/health/scheduler", key=None)
        if r.json["nextDue"] or time.monotonic() > end:
            break
        time.sleep(0.05)
    assert r.status == 200, r
    assert "secret-payroll" not in r.text and "hidden-nightly" not in r.text, r.text
    assert r.json["nextDue"] and set(r.json["nextDue"]) == {"at"}, r.json
    # With a key, /v1/health says which schedule is next.
    c = server.get("/v1/health").json["components"]["scheduler"]
    assert "secret-payroll" in c["nextDue"]["schedule"] or \
        "hidden-nightly" in c["nextDue"]["schedule"], c
    assert server.delete("/v1/workflows/secret-payroll").status == 204


def test_head_is_get_without_a_body(server):
    g = server.get("/v1/health")
    h = server.request("HEAD", "/v1/health", check=False)
    assert h.status == g.status == 200, h
    assert h.body == b""
    assert h.headers["Content-Type"] == g.headers["Content-Type"]
    assert h.headers["X-Request-Id"]
    h = server.request("HEAD", "/v1/workflows", key=None, check=False)
    assert h.status == 401 and h.body == b"" and h.headers["WWW-Authenticate"], h
    h = server.request("HEAD", "/v1/executions/ex_0000000000000000/cancel", check=False)
    assert h.status == 405 and h.headers["Allow"] == "POST", h
    r = server.request("PUT", "/v1/health")
    assert r.status == 405 and r.headers["Allow"] == "GET, HEAD", r


def test_heads_over_the_limits_get_json(server):
    status, headers, body = exchange(server, b"GET /v1/" + b"a" * 9000 +
                                     b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 414, (status, body[:200])
    assert headers["content-type"].startswith("application/json")
    e = json.loads(body)
    spec().validate(e, "Error", "414 answer")
    assert e["error"]["code"] == "uri_too_long"
    status, headers, body = exchange(server, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n" +
                                     b"".join(b"X-Pad-%d: %s\r\n" % (i, b"p" * 1000)
                                              for i in range(20)) +
                                     b"Connection: close\r\n\r\n")
    assert status == 431, (status, body[:200])
    e = json.loads(body)
    spec().validate(e, "Error", "431 answer")
    assert e["error"]["code"] == "headers_too_large"
    # Still served.
    assert server.get("/v1/health").status == 200
