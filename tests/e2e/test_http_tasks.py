"""
HTTP tasks (`"type": "http"`) end to end: the real binary sends real requests to a real
HTTP/1.1 keep-alive server that each test starts on 127.0.0.1 (port 0) in a thread and that
records every request (method, path, query, headers, body, the client's address and port).

Covers the output of a succeeded request ({"status", "headers" lowercased, "body" parsed when
JSON}), placeholders in the url, query, headers and bodies (a JSON body string that is exactly
one placeholder inserts the value itself), Content-Type of JSON bodies, bearer and basic
credentials from the environment that never reach a log, the JSON view or the store,
response bodies of every kind and methods, expectStatus (codes and classes), redirects (and
their loops, file:// targets and credentials kept from other hosts), timeouts (timed_out, of
the task and of the execution), connection refused, retries only for idempotent requests
(with the "not retried" note otherwise), a missing credential variable, forEach over 20 POSTs
with maxParallel and connection reuse, cancel through `orch server` and by SIGINT (the request
is abandoned), kill -9 and `orch resume` (a lost POST is not sent again), requests refused
when filled in (non-http url, header injection), definition errors of `orch validate`, and
bodies larger than ORCH_MAX_TASK_OUTPUT (truncated to the cap minus 16 KiB, or failing when
even the truncated body does not fit in the output).
"""
import base64
import json
import os
import re
import select
import signal
import socket
import sqlite3
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apiutil import fresh_server, stopped_server  # noqa: F401  (pytest fixtures)
from conftest import (EXIT_CANCELLED, EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_TIMED_OUT,
                      EXIT_USAGE, task_by_name, wait_for)

PY = "/usr/bin/python3"
NOT_RETRIED = ' [not retried: {} is not idempotent; set "idempotent": true if it is safe to repeat]'


# --------------------------------------------------------------------------- the HTTP server

class Recorder:
    """What the test server saw, shared by its handler threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []       # dicts, in arrival order
        self.flaky = {}          # key -> requests seen
        self.inflight = {}       # path -> requests being answered now
        self.max_inflight = {}   # path -> most at once
        self.abandoned = []      # (path, monotonic time) of /slow requests the client gave up

    def add(self, rec):
        with self.lock:
            self.requests.append(rec)

    def of(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"] == path]

    def paths(self):
        with self.lock:
            return [r["path"] for r in self.requests]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length
    server_version = "e2e-http"

    def log_message(self, *a):  # quiet
        pass

    # ---- helpers
    def reply(self, status, body=b"", ctype="text/plain; charset=utf-8", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, obj, headers=None):
        self.reply(status, json.dumps(obj), "application/json", headers)

    def peer_gone(self):
        """Has the client closed (or reset) the connection?"""
        r, _, _ = select.select([self.connection], [], [], 0)
        if not r:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # ---- every method
    def handle_one(self):
        rec_ = self.server.recorder
        parsed = urllib.parse.urlsplit(self.path)
        path, query = parsed.path, urllib.parse.parse_qs(parsed.query)
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        headers = {}
        for k, v in self.headers.items():
            headers.setdefault(k.lower(), []).append(v)
        rec = {"method": self.command, "path": path, "query": parsed.query, "qs": query,
               "headers": headers, "body": body, "client": self.client_address,
               "t": time.monotonic()}
        rec_.add(rec)
        with rec_.lock:
            rec_.inflight[path] = rec_.inflight.get(path, 0) + 1
            rec_.max_inflight[path] = max(rec_.max_inflight.get(path, 0), rec_.inflight[path])
        try:
            self.route(rec_, path, query, headers, body, parsed.query)
        finally:
            with rec_.lock:
                rec_.inflight[path] -= 1

    def route(self, rec_, path, query, headers, body, rawq):
        q1 = {k: v[0] for k, v in query.items()}
        if path == "/json":
            self.reply_json(200, {"files": ["a.csv", "b c.csv"], "n": 2, "nested": {"ok": True}},
                            {"X-Custom-Thing": "Mixed Case Value"})
        elif path == "/echo":
            if "ms" in q1:
                time.sleep(int(q1["ms"]) / 1000)
            text = body.decode("utf-8", "replace")
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            # Credentials stay on the server side: the echo never returns them.
            shown = {k: v for k, v in headers.items() if k != "authorization"}
            self.reply_json(200, {"method": self.command, "path": path, "query": rawq,
                                  "headers": shown, "text": text, "json": parsed})
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self.reply(code, f"status {code} body\nsecond line")
        elif path == "/slow":
            # ?key=K&once=1: only the first request for K is slow.
            key = q1.get("key")
            if key is not None:
                with rec_.lock:
                    rec_.flaky[key] = seen = rec_.flaky.get(key, 0) + 1
                if seen > 1 and q1.get("once"):
                    self.reply(200, f"fast {key} #{seen}")
                    return
            end = time.monotonic() + int(q1.get("ms", "1000")) / 1000
            while time.monotonic() < end:
                if self.peer_gone():
                    with rec_.lock:
                        rec_.abandoned.append((path, time.monotonic()))
                    self.close_connection = True
                    return
                time.sleep(0.02)
            self.reply(200, "finally")
        elif path == "/redirect":
            self.reply(int(q1.get("code", "302")), b"", headers={"Location": q1.get("to", "/json")})
        elif path == "/flaky":
            key, fails = q1.get("key", ""), int(q1.get("fails", "1"))
            with rec_.lock:
                rec_.flaky[key] = seen = rec_.flaky.get(key, 0) + 1
            if seen <= fails:
                self.reply(503, f"flaky {key} #{seen}")
            else:
                self.reply_json(200, {"key": key, "attempt": seen})
        elif path == "/raw":
            # Any status, content type, headers (h=Name:Value, repeatable) and body bytes.
            raw = urllib.parse.parse_qs(rawq, encoding="latin-1")
            hdrs = [h.split(":", 1) for h in raw.get("h", [])]
            body_ = raw.get("body", [""])[0].encode("latin-1")
            self.send_response(int(raw.get("code", ["200"])[0]))
            if "ctype" in raw:
                self.send_header("Content-Type", raw["ctype"][0])
            for k, v in hdrs:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body_)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body_)
        elif path == "/loop":
            self.reply(302, b"", headers={"Location": "/loop"})
        elif path == "/bighdr":
            n = int(q1.get("n", "1"))
            self.reply(200, "big headers", headers={f"X-Big-{i}": "v" * 1000 for i in range(n)})
        elif path == "/text":
            self.reply(200, "hello text\nline 2\n")
        elif path == "/big":
            n = int(q1.get("n", "100000"))
            unit = q1.get("ch", "x").encode()
            data = (q1.get("prefix", "").encode() + unit * n)[:n]
            ctype = "application/json" if q1.get("type") == "json" else "text/plain"
            self.reply(200, data, ctype)
        else:
            self.reply(404, "no such path")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_one


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs of many parallel requests (1 s retry)

    def handle_error(self, request, client_address):
        # A client that gave up (timeout, cancel) is part of the tests, not an error.
        import sys
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class RecordingServer:
    def __init__(self):
        self.recorder = Recorder()
        self.httpd = _Httpd(("127.0.0.1", 0), Handler)
        self.httpd.recorder = self.recorder
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def srv():
    s = RecordingServer()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def closed_port():
    """A loopback port bound but not listening, held for the test: connecting is refused."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def http(name, url, **kw):
    t = {"name": name, "type": "http", "url": url}
    t.update(kw)
    return t


def write_output(obj):
    """A command task writing `obj` as its output."""
    return [PY, "-c", "import json, os; open(os.environ['ORCH_OUTPUT'], 'w')"
                      f".write(json.dumps({obj!r}))"]


def run_json(orch, wf, *args, env=None, timeout=60):
    res = orch.run("run", wf, "--json", *args, env=env, timeout=timeout)
    try:
        d = json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"orch run --json printed no JSON (exit {res.returncode}):\n"
                             f"{res.stdout}\n{res.stderr}")
    return res, d


def attempts(task):
    return [(a["number"], a["status"]) for a in task["attempts"]]


# --------------------------------------------------------------------------- 1) GET

def test_get_success_output_and_templates(orch, srv):
    """A GET whose url, query and header values are filled from a param and an upstream
    command task's output; its output is {"status", "headers" (lowercased names), "body"
    (parsed JSON)} without bodyTruncated, and a downstream command reads
    {{ tasks.fetch.output.body.files[0] }}; a text/plain body stays a string."""
    wf = orch.workflow({"name": "http-get", "params": {"day": "2026-03-01"}, "tasks": [
        {"name": "prep", "command": write_output({"sub": "reports", "token": "tk-42"})},
        http("fetch", srv.url("/json?day={{ params.day }}&sub={{ tasks.prep.output.sub }}"),
             dependsOn=["prep"],
             headers={"X-Day": "day={{ params.day }}", "X-From": "{{ tasks.prep.output.token }}",
                      "X-Plain": "constant"}),
        {"name": "use", "dependsOn": ["fetch"],
         "command": ["printf", "%s|%s|%s", "{{ tasks.fetch.output.body.files[0] }}",
                     "{{ tasks.fetch.output.status }}",
                     "{{ tasks.fetch.output.headers.x-custom-thing }}"]},
        http("text", srv.url("/text")),
    ]})
    res, d = run_json(orch, wf, "--param", "day=2026-04-02")
    assert res.returncode == EXIT_OK, res.stderr
    assert d["status"] == "succeeded", d
    fetch = task_by_name(d, "fetch")
    assert attempts(fetch) == [(1, "succeeded")]
    out = fetch["output"]
    assert out["status"] == 200
    assert out["body"] == {"files": ["a.csv", "b c.csv"], "n": 2, "nested": {"ok": True}}
    assert "bodyTruncated" not in out, out
    assert set(out) == {"status", "headers", "body"}, out
    assert out["headers"]["content-type"] == "application/json", out["headers"]
    assert out["headers"]["x-custom-thing"] == "Mixed Case Value", out["headers"]
    assert all(k == k.lower() for k in out["headers"]), out["headers"]

    got = srv.recorder.of("/json")
    assert len(got) == 1, srv.recorder.paths()
    r = got[0]
    assert r["method"] == "GET"
    assert r["qs"] == {"day": ["2026-04-02"], "sub": ["reports"]}, r["query"]
    assert r["headers"]["x-day"] == ["day=2026-04-02"]
    assert r["headers"]["x-from"] == ["tk-42"]
    assert r["headers"]["x-plain"] == ["constant"]
    assert r["headers"]["user-agent"][0].startswith("orch/"), r["headers"]
    assert r["body"] == b""

    use = task_by_name(d, "use")
    assert use["output"]["stdout"] == "a.csv|200|Mixed Case Value", use["output"]

    text = task_by_name(d, "text")["output"]
    assert text["status"] == 200
    assert text["body"] == "hello text\nline 2\n"
    assert text["headers"]["content-type"].startswith("text/plain")
    # The JSON view of the store is the same.
    assert task_by_name(orch.show(d["id"]), "fetch")["output"] == out


def raw_url(srv, code=200, ctype=None, body=None, headers=()):
    q = [("code", str(code))]
    if ctype is not None:
        q.append(("ctype", ctype))
    if body is not None:
        q.append(("body", body))
    q += [("h", h) for h in headers]
    return srv.url("/raw?" + urllib.parse.urlencode(q, encoding="latin-1"))


def test_response_bodies_and_methods(orch, srv):
    """The body is parsed when the content type is application/json (with parameters) or
    +json, whatever JSON value it holds; JSON that does not parse, an empty JSON answer and
    other types stay strings; bytes that are not UTF-8 become U+FFFD; a repeated header is
    joined with ", "; HEAD has an empty body; DELETE, PATCH and OPTIONS are sent as such."""
    wf = orch.workflow({"name": "http-bodies", "tasks": [
        http("json-charset", raw_url(srv, ctype="application/json; charset=utf-8",
                                     body='{"a": [1, 2.5, null]}')),
        http("problem", raw_url(srv, 422, "application/problem+json", '{"title": "bad"}'),
             expectStatus=[422]),
        http("scalar", raw_url(srv, ctype="application/json", body="42")),
        http("bad-json", raw_url(srv, ctype="application/json", body="{not json")),
        http("empty", raw_url(srv, 204, "application/json")),
        http("latin1", raw_url(srv, ctype="text/plain", body="caf\xe9 ok")),
        http("html", raw_url(srv, ctype="text/html", body='{"looks": "like json"}')),
        http("multi", raw_url(srv, headers=["X-Multi:one", "X-Multi:two"], body="")),
        http("head", srv.url("/json"), method="HEAD"),
        http("delete", srv.url("/echo?m=delete"), method="DELETE"),
        http("patch", srv.url("/echo?m=patch"), method="PATCH", body={"p": 1}),
        http("options", srv.url("/echo?m=options"), method="options"),
    ]})
    res, d = run_json(orch, wf)
    assert res.returncode == EXIT_OK, res.stderr
    out = {t["name"]: t["output"] for t in d["tasks"]}
    assert out["json-charset"]["body"] == {"a": [1, 2.5, None]}
    assert out["problem"]["body"] == {"title": "bad"} and out["problem"]["status"] == 422
    assert out["scalar"]["body"] == 42
    assert out["bad-json"]["body"] == "{not json"
    assert out["empty"]["body"] == "" and out["empty"]["status"] == 204
    assert out["latin1"]["body"] == "caf\ufffd ok"
    assert out["html"]["body"] == '{"looks": "like json"}'
    assert out["multi"]["headers"]["x-multi"] == "one, two", out["multi"]["headers"]
    assert out["head"]["status"] == 200 and out["head"]["body"] == ""
    assert out["head"]["headers"]["content-type"] == "application/json"
    assert out["delete"]["body"]["method"] == "DELETE"
    assert out["patch"]["body"]["method"] == "PATCH"
    assert out["patch"]["body"]["json"] == {"p": 1}
    assert out["options"]["body"]["method"] == "OPTIONS"
    assert [r["method"] for r in srv.recorder.of("/json")] == ["HEAD"]


def test_empty_header_values_are_sent(orch, srv):
    """A header of the definition with an empty value, or whose placeholder fills in an empty
    string, is sent with an empty value (HTTP allows it), not dropped."""
    wf = orch.workflow({"name": "http-empty-header", "params": {"e": ""}, "tasks": [
        http("h", srv.url("/echo"), headers={"X-Empty": "", "X-Tpl": "{{ params.e }}",
                                             "X-Set": "v"}),
    ]})
    res, d = run_json(orch, wf)
    assert res.returncode == EXIT_OK, res.stderr
    (r,) = srv.recorder.of("/echo")
    assert r["headers"]["x-set"] == ["v"]
    assert r["headers"].get("x-empty") == [""], r["headers"]
    assert r["headers"].get("x-tpl") == [""], r["headers"]


# --------------------------------------------------------------------------- 2) POST, auth

def test_post_bodies_headers_and_credentials_stay_secret(orch, srv):
    """A JSON body: a string that is exactly one placeholder inserts the value (a list stays
    a list, nested too), a string with text around a placeholder is text; Content-Type is
    application/json by default and the task's own Content-Type header wins (sent once). A
    string body is a text template. Bearer auth (bearerEnv) and basic auth (usernameEnv from
    the workflow's env, passwordEnv from orch's) arrive at the server, and neither secret
    appears in orch's stdout/stderr (even at debug level), `executions show --json`, the logs
    or any file of the data directory."""
    token, password = "tok-SECRET-3f9a7c1d", "pw-SECRET-b2e8d4"
    files = ["a.csv", "b c.csv", {"k": [1, 2]}]
    wf = orch.workflow({"name": "http-post", "params": {"day": "2026-03-01"},
                        "env": {"API_USER": "alice"}, "tasks": [
        {"name": "list", "command": write_output({"files": files, "who": "bob", "n": 3})},
        http("post-json", srv.url("/echo?kind=json"), method="POST", dependsOn=["list"],
             body={"files": "{{ tasks.list.output.files }}", "n": "{{ tasks.list.output.n }}",
                   "note": "for {{ params.day }} by {{ tasks.list.output.who }}",
                   "nested": [{"f": "{{ tasks.list.output.files }}"}, "{{ params.day }}"],
                   "fixed": 5, "plain": "no placeholder"},
             auth={"bearerEnv": "TOKEN"}),
        http("post-text", srv.url("/echo?kind=text"), method="post", dependsOn=["list"],
             body="text for {{ params.day }} by {{ tasks.list.output.who }}",
             headers={"Content-Type": "text/plain; charset=utf-8"},
             auth={"usernameEnv": "API_USER", "passwordEnv": "API_PASS"}),
        http("post-custom", srv.url("/echo?kind=custom"), method="PUT",
             body={"x": 1}, headers={"content-type": "application/vnd.orch-test+json"},
             auth={"username": "carol", "passwordEnv": "API_PASS"}),
    ]})
    env = {"TOKEN": token, "API_PASS": password}
    res = orch.run("run", wf, "--json", "--log-level", "debug", env=env)
    assert res.returncode == EXIT_OK, res.stderr
    d = json.loads(res.stdout)

    (pj,) = [r for r in srv.recorder.of("/echo") if r["query"] == "kind=json"]
    assert pj["method"] == "POST"
    assert json.loads(pj["body"]) == {
        "files": files, "n": 3, "note": "for 2026-03-01 by bob",
        "nested": [{"f": files}, "2026-03-01"], "fixed": 5, "plain": "no placeholder"}
    assert pj["headers"]["content-type"] == ["application/json"], pj["headers"]
    assert pj["headers"]["authorization"] == [f"Bearer {token}"]
    assert "expect" not in pj["headers"]
    # The output: the echo parsed as JSON.
    echo = task_by_name(d, "post-json")["output"]["body"]
    assert echo["json"]["files"] == files and echo["method"] == "POST"

    (pt,) = [r for r in srv.recorder.of("/echo") if r["query"] == "kind=text"]
    assert pt["method"] == "POST"
    assert pt["body"] == b"text for 2026-03-01 by bob"
    assert pt["headers"]["content-type"] == ["text/plain; charset=utf-8"], pt["headers"]
    basic = base64.b64encode(f"alice:{password}".encode()).decode()
    assert pt["headers"]["authorization"] == [f"Basic {basic}"]

    (pc,) = [r for r in srv.recorder.of("/echo") if r["query"] == "kind=custom"]
    assert pc["method"] == "PUT"
    assert json.loads(pc["body"]) == {"x": 1}
    assert pc["headers"]["content-type"] == ["application/vnd.orch-test+json"], pc["headers"]
    basic = base64.b64encode(f"carol:{password}".encode()).decode()
    assert pc["headers"]["authorization"] == [f"Basic {basic}"]
    # "+json" is JSON: the echo is parsed.
    assert task_by_name(d, "post-custom")["output"]["body"]["json"] == {"x": 1}

    # The secrets are nowhere orch writes.
    show = orch.run("executions", "show", d["id"], "--json")
    logs = orch.run("logs", d["id"])
    for where, text in (("stdout", res.stdout), ("stderr", res.stderr),
                        ("executions show --json", show.stdout), ("logs", logs.stdout)):
        for secret in (token, password):
            assert secret not in text, f"secret {secret!r} in {where}:\n{text}"
    for f in orch.data_dir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            for secret in (token, password):
                assert secret.encode() not in data, f"secret {secret!r} in {f}"


# --------------------------------------------------------------------------- 3) expectStatus

def test_expect_status(orch, srv):
    """expectStatus [404] makes a 404 succeed (with its status and text body); a 500 fails the
    default 2xx with the exact message (body start, control characters as spaces); a "4xx"
    class accepts 418; a 503 outside ["4xx", 200] fails naming both; a GET with no retries is
    tried once."""
    wf = orch.workflow({"name": "http-expect", "tasks": [
        http("s404", srv.url("/status/404"), expectStatus=[404]),
        http("s500", srv.url("/status/500")),
        http("s418", srv.url("/status/418"), expectStatus="4xx"),
        http("s503", srv.url("/status/503"), expectStatus=["4xx", 200]),
        http("s201", srv.url("/status/201"), expectStatus=201),
    ]})
    res, d = run_json(orch, wf)
    assert res.returncode == EXIT_FAILED, res.stderr
    t404 = task_by_name(d, "s404")
    assert t404["status"] == "succeeded", t404
    assert t404["output"]["status"] == 404
    assert t404["output"]["body"] == "status 404 body\nsecond line"
    t500 = task_by_name(d, "s500")
    assert t500["status"] == "failed"
    assert attempts(t500) == [(1, "failed")]
    assert t500["error"] == (f"Unexpected status 500, expected 2xx (GET http://127.0.0.1:"
                             f"{srv.port}/status/500): status 500 body second line"), t500["error"]
    assert t500["output"] is None
    t418 = task_by_name(d, "s418")
    assert t418["status"] == "succeeded" and t418["output"]["status"] == 418
    t503 = task_by_name(d, "s503")
    assert t503["status"] == "failed"
    assert t503["error"].startswith(f"Unexpected status 503, expected 4xx, 200 (GET "
                                    f"http://127.0.0.1:{srv.port}/status/503)"), t503["error"]
    assert task_by_name(d, "s201")["status"] == "succeeded"
    assert len(srv.recorder.of("/status/500")) == 1
    assert "Unexpected status 500, expected 2xx" in res.stderr


# --------------------------------------------------------------------------- 4) redirects

def test_redirects(orch, srv):
    """By default a 302 is followed (the output is the final 200 and its JSON; the server saw
    /redirect then /json); with followRedirects false the 302 itself is the answer: accepted
    with expectStatus [302] (its location header in the output), an error otherwise. A
    redirect loop stops after 10 redirects."""
    wf = orch.workflow({"name": "http-redirect", "tasks": [
        http("follow", srv.url("/redirect")),
        http("nofollow", srv.url("/redirect"), followRedirects=False, expectStatus=[302],
             dependsOn=["follow"]),
        http("nofollow-2xx", srv.url("/redirect"), followRedirects=False,
             dependsOn=["nofollow"]),
        http("loop", srv.url("/loop"), dependsOn=["nofollow-2xx"], runIf="allDone"),
    ]})
    res, d = run_json(orch, wf)
    assert res.returncode == EXIT_FAILED, res.stderr
    follow = task_by_name(d, "follow")
    assert follow["status"] == "succeeded", follow
    assert follow["output"]["status"] == 200
    assert follow["output"]["body"]["files"] == ["a.csv", "b c.csv"]
    assert "location" not in follow["output"]["headers"], follow["output"]["headers"]
    assert srv.recorder.paths()[:2] == ["/redirect", "/json"], srv.recorder.paths()
    nf = task_by_name(d, "nofollow")
    assert nf["status"] == "succeeded", nf
    assert nf["output"]["status"] == 302
    assert nf["output"]["headers"]["location"] == "/json"
    assert nf["output"]["body"] == ""
    n2 = task_by_name(d, "nofollow-2xx")
    assert n2["status"] == "failed"
    assert n2["error"] == (f"Unexpected status 302, expected 2xx (GET http://127.0.0.1:"
                           f"{srv.port}/redirect)"), n2["error"]
    loop = task_by_name(d, "loop")
    assert loop["status"] == "failed"
    assert loop["error"] == (f"Too many redirects (more than 10) (GET http://127.0.0.1:"
                             f"{srv.port}/loop)"), loop["error"]
    assert srv.recorder.paths() == ["/redirect", "/json", "/redirect", "/redirect"] + ["/loop"] * 11


# --------------------------------------------------------------------------- 5) timeout

def test_timeout(orch, srv):
    """A response slower than the task's timeout ends the attempt as timed_out with "Timeout
    after 500ms (no complete response)" and the method and URL (query as "?..."); the run does
    not wait for the slow server. A timed-out GET is retried; a timed-out POST is not (with
    the note). The workflow's own timeout ends a request in flight too (exit 4)."""
    bo = {"initial": "50ms", "jitter": False}
    wf = orch.workflow({"name": "http-timeout", "tasks": [
        http("slow", srv.url("/slow?ms=3000"), timeout="500ms"),
        http("slow-get", srv.url("/slow?ms=3000&key=g&once=1"), timeout="500ms", retries=1,
             retryBackoff=bo),
        http("slow-post", srv.url("/slow?ms=3000&key=p&once=1"), method="POST", body="x",
             timeout="500ms", retries=1, retryBackoff=bo),
    ]})
    t0 = time.monotonic()
    res, d = run_json(orch, wf)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_FAILED, res.stderr
    slow = task_by_name(d, "slow")
    assert slow["status"] == "timed_out", slow
    assert attempts(slow) == [(1, "timed_out")]
    assert slow["error"] == (f"Timeout after 500ms (no complete response) (GET "
                             f"http://127.0.0.1:{srv.port}/slow?...)"), slow["error"]
    assert d["status"] == "failed", d["status"]
    sg = task_by_name(d, "slow-get")
    assert attempts(sg) == [(1, "timed_out"), (2, "succeeded")], sg["attempts"]
    assert sg["output"]["body"] == "fast g #2"
    sp = task_by_name(d, "slow-post")
    assert sp["status"] == "timed_out"
    assert attempts(sp) == [(1, "timed_out")], sp["attempts"]
    assert sp["error"] == (f"Timeout after 500ms (no complete response) (POST "
                           f"http://127.0.0.1:{srv.port}/slow?...)" + NOT_RETRIED.format("POST"))
    assert srv.recorder.flaky == {"g": 2, "p": 1}
    # The attempts ended at their timeout, long before the server's 3 s answer.
    for t in (slow, sp):
        ms = t["attempts"][0]["durationMs"]
        assert 450 <= ms < 2500, f"{t['name']}: attempt took {ms}ms with a 500ms timeout"
    assert took < 20, f"the run took {took:.1f}s"

    wf = orch.workflow({"name": "http-exec-timeout", "timeout": "700ms", "tasks": [
        http("wait", srv.url("/slow?ms=5000")),
        {"name": "after", "type": "noop", "dependsOn": ["wait"]},
    ]})
    t0 = time.monotonic()
    res, d = run_json(orch, wf)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_TIMED_OUT, res.stderr
    assert d["status"] == "timed_out"
    assert task_by_name(d, "wait")["status"] == "timed_out"
    assert task_by_name(d, "wait")["error"] == "execution timed out after 700ms"
    assert task_by_name(d, "after")["status"] == "cancelled"
    ms = task_by_name(d, "wait")["attempts"][0]["durationMs"]
    assert ms < 3500, f"the request lasted {ms}ms with a 700ms execution timeout"
    assert took < 20, f"the run took {took:.1f}s"


# --------------------------------------------------------------------------- 6) refused, retries

def test_connection_refused_and_retries(orch, srv, closed_port):
    """Connection refused names the method and URL without the query or user:password@; a GET
    is retried on it; a POST is not retried (one attempt, with the "not retried" note) unless
    "idempotent": true; a GET and a PUT are retried on a 503; a GET marked "idempotent": false
    is not."""
    bo = {"initial": "50ms", "jitter": False}
    # Credentials are never written in a definition: these urls come from params.
    wf = orch.workflow({"name": "http-retries", "params": {"u1": {"type": "string"},
                                                         "u2": {"type": "string"}}, "tasks": [
        http("refused-get", "{{ params.u1 }}"),
        http("refused-get-retried", f"http://127.0.0.1:{closed_port}/hook", retries=2,
             retryBackoff=bo),
        http("refused-post", "{{ params.u2 }}", method="POST",
             body={"a": 1}, retries=2, retryBackoff=bo),
        http("flaky-get", srv.url("/flaky?key=g&fails=2"), retries=2, retryBackoff=bo),
        http("flaky-put", srv.url("/flaky?key=u&fails=1"), method="PUT", retries=1,
             retryBackoff=bo),
        http("flaky-post-idem", srv.url("/flaky?key=p&fails=1"), method="POST",
             idempotent=True, body="x", retries=2, retryBackoff=bo),
        http("flaky-post", srv.url("/flaky?key=q&fails=1"), method="POST", body="x",
             retries=2, retryBackoff=bo),
        http("flaky-get-not-idem", srv.url("/flaky?key=n&fails=1"), idempotent=False,
             retries=2, retryBackoff=bo),
    ]})
    res, d = run_json(orch, wf, "--param", f"u1=http://127.0.0.1:{closed_port}/hook?token=abc",
                      "--param", f"u2=http://user:hunter2@127.0.0.1:{closed_port}/hook")
    assert res.returncode == EXIT_FAILED, res.stderr
    p = closed_port

    rg = task_by_name(d, "refused-get")
    assert rg["status"] == "failed"
    assert rg["error"] == f"Connection refused (GET http://127.0.0.1:{p}/hook?...)", rg["error"]

    rr = task_by_name(d, "refused-get-retried")
    assert attempts(rr) == [(1, "failed"), (2, "failed"), (3, "failed")], rr["attempts"]
    assert {a["error"] for a in rr["attempts"]} == \
        {f"Connection refused (GET http://127.0.0.1:{p}/hook)"}

    rp = task_by_name(d, "refused-post")
    assert rp["status"] == "failed"
    assert attempts(rp) == [(1, "failed")], rp["attempts"]
    assert rp["error"] == (f"Connection refused (POST http://127.0.0.1:{p}/hook)"
                           + NOT_RETRIED.format("POST")), rp["error"]
    # Nowhere but in the params it was given in.
    shown = dict(d, params=None)
    assert "hunter2" not in json.dumps(shown) + res.stderr

    fg = task_by_name(d, "flaky-get")
    assert fg["status"] == "succeeded", fg
    assert attempts(fg) == [(1, "failed"), (2, "failed"), (3, "succeeded")]
    assert fg["attempts"][0]["error"] == (f"Unexpected status 503, expected 2xx (GET "
                                          f"http://127.0.0.1:{srv.port}/flaky?...): flaky g #1")
    assert fg["output"]["body"] == {"key": "g", "attempt": 3}

    fu = task_by_name(d, "flaky-put")
    assert attempts(fu) == [(1, "failed"), (2, "succeeded")], fu["attempts"]

    fpi = task_by_name(d, "flaky-post-idem")
    assert attempts(fpi) == [(1, "failed"), (2, "succeeded")], fpi["attempts"]
    assert "not retried" not in fpi["attempts"][0]["error"]

    fp = task_by_name(d, "flaky-post")
    assert fp["status"] == "failed"
    assert attempts(fp) == [(1, "failed")], fp["attempts"]
    assert fp["error"] == (f"Unexpected status 503, expected 2xx (POST http://127.0.0.1:"
                           f"{srv.port}/flaky?...): flaky q #1" + NOT_RETRIED.format("POST"))

    fn = task_by_name(d, "flaky-get-not-idem")
    assert attempts(fn) == [(1, "failed")], fn["attempts"]

    seen = srv.recorder.flaky
    assert seen == {"g": 3, "u": 2, "p": 2, "q": 1, "n": 1}, seen
    assert {r["method"] for r in srv.recorder.of("/flaky") if r["qs"]["key"] == ["p"]} == {"POST"}


# --------------------------------------------------------------------------- 7) missing secret

def test_missing_credential_variables_send_nothing(orch, srv, monkeypatch):
    """A bearer variable that is not set (or empty) or a password variable that is not set
    fails the task with a message naming the variable, without retries and without sending
    anything."""
    for v in ("TOKEN", "EMPTY_TOKEN", "MISSING_PASS"):
        monkeypatch.delenv(v, raising=False)
    wf = orch.workflow({"name": "http-nocred", "tasks": [
        http("bearer", srv.url("/echo?t=1"), auth={"bearerEnv": "TOKEN"}, retries=2),
        http("empty", srv.url("/echo?t=2"), auth={"bearerEnv": "EMPTY_TOKEN"}),
        http("basic", srv.url("/echo?t=3"), auth={"username": "u", "passwordEnv": "MISSING_PASS"}),
    ]})
    res, d = run_json(orch, wf, env={"EMPTY_TOKEN": ""})
    assert res.returncode == EXIT_FAILED, res.stderr
    b = task_by_name(d, "bearer")
    assert b["status"] == "failed"
    assert b["error"] == "its bearer token variable TOKEN is not set", b["error"]
    assert attempts(b) == [(1, "failed")]
    assert task_by_name(d, "empty")["error"] == "its bearer token variable EMPTY_TOKEN is not set"
    assert task_by_name(d, "basic")["error"] == "its password variable MISSING_PASS is not set"
    assert srv.recorder.requests == [], srv.recorder.paths()


# --------------------------------------------------------------------------- 8) forEach

def test_for_each_posts_with_keep_alive(orch, srv):
    """forEach over 20 items POSTing {{ item }} and {{ index }} to /echo with maxParallel 5:
    all 20 requests arrive once each with the right item, at most 5 at once, over fewer TCP
    connections than requests (keep-alive reuse); the group's output lists the instances'
    outputs in order. A second group fans out over a list in an upstream HTTP task's JSON
    body."""
    items = [{"id": i, "name": f"item {i}", "tags": ["t"] * (i % 3)} for i in range(20)]
    wf = orch.workflow({"name": "http-fan", "tasks": [
        http("post", srv.url("/echo?i={{ index }}&ms=100"), method="POST", forEach=items,
             maxParallel=5, body={"item": "{{ item }}", "index": "{{ index }}",
                                  "label": "n={{ item.name }}"}),
        {"name": "after", "dependsOn": ["post"],
         "command": ["printf", "%s", "{{ tasks.post.output[7].body.json.item.name }}"]},
        http("list", srv.url("/json"), dependsOn=["post"]),
        http("each", srv.url("/echo?from=list"), method="POST", dependsOn=["list"],
             forEach="{{ tasks.list.output.body.files }}",
             body={"file": "{{ item }}", "i": "{{ index }}"}),
    ]})
    res, d = run_json(orch, wf, timeout=120)
    assert res.returncode == EXIT_OK, res.stderr
    got = [r for r in srv.recorder.of("/echo") if r["query"] != "from=list"]
    assert len(got) == 20, [r["query"] for r in got]
    bodies = sorted((json.loads(r["body"]) for r in got), key=lambda b: b["index"])
    assert bodies == [{"item": it, "index": i, "label": f"n=item {i}"}
                      for i, it in enumerate(items)]
    for r in got:
        b = json.loads(r["body"])
        assert r["qs"]["i"] == [str(b["index"])]
        assert r["method"] == "POST"
    assert 2 <= srv.recorder.max_inflight["/echo"] <= 5, srv.recorder.max_inflight
    ports = {r["client"] for r in got}
    assert len(ports) <= 6, f"{len(ports)} connections for 20 requests: no keep-alive reuse"
    group = task_by_name(d, "post")
    assert group["status"] == "succeeded"
    assert [o["body"]["json"]["index"] for o in group["output"]] == list(range(20))
    assert task_by_name(d, "after")["output"]["stdout"] == "item 7"
    each = sorted((json.loads(r["body"]) for r in srv.recorder.of("/echo")
                   if r["query"] == "from=list"), key=lambda b: b["i"])
    assert each == [{"file": "a.csv", "i": 0}, {"file": "b c.csv", "i": 1}]
    assert [o["body"]["json"]["file"] for o in task_by_name(d, "each")["output"]] == \
        ["a.csv", "b c.csv"]


def test_for_each_without_max_parallel_and_a_timeout(orch, srv):
    """48 instances to one host without maxParallel, each with a 2.5 s timeout, against a
    server that answers every request in 1 s and accepts connections at once: each request
    takes 1 s, so every instance succeeds; none fails with a connection timeout."""
    wf = orch.workflow({"name": "http-fan-timeout", "tasks": [
        http("get", srv.url("/slow?ms=1000&i={{ index }}"), forEach=list(range(48)),
             timeout="2500ms"),
    ]})
    res, d = run_json(orch, wf, timeout=120)
    inst = [t for t in d["tasks"] if t.get("group") == "get"]
    assert len(inst) == 48
    bad = [(t["name"], t["status"], t["error"]) for t in inst if t["status"] != "succeeded"]
    assert not bad, f"{len(bad)} of 48 instances did not succeed, e.g. {bad[:3]}"
    assert res.returncode == EXIT_OK, res.stderr


# --------------------------------------------------------------------------- 9) cancel

def test_cancel_abandons_the_request(fresh_server, srv):  # noqa: F811
    """Through `orch server`: an execution whose HTTP task waits on a 10 s response is
    cancelled with the API; it ends cancelled within a couple of seconds, the task cancelled,
    its dependent never runs, and the server sees the client close the connection."""
    s = fresh_server
    s.apply({"name": "http-cancel", "tasks": [
        http("wait", srv.url("/slow?ms=10000")),
        {"name": "after", "dependsOn": ["wait"], "type": "noop"},
    ]})
    e = s.trigger("http-cancel")
    wait_for(lambda: srv.recorder.of("/slow"), timeout=20, what="the request to arrive")
    t0 = time.monotonic()
    r = s.post(f"/v1/executions/{e['id']}/cancel")
    assert r.status == 200, r
    d = s.wait_exec(e["id"], timeout=10)
    took = time.monotonic() - t0
    assert d["status"] == "cancelled", d
    assert took < 5, f"cancel took {took:.1f}s (the server answers after 10s)"
    w = task_by_name(d, "wait")
    assert w["status"] == "cancelled", w
    assert [a["status"] for a in w["attempts"]] == ["cancelled"], w["attempts"]
    assert task_by_name(d, "after")["status"] == "cancelled"
    wait_for(lambda: srv.recorder.abandoned, timeout=5,
             what="the server to see the request abandoned")
    assert srv.recorder.abandoned[0][1] - t0 < 5
    assert len(srv.recorder.of("/slow")) == 1


def test_sigint_during_a_request_cancels_it(orch, srv):
    """Ctrl-C (SIGINT) of `orch run` while an HTTP task waits on a 10 s response: orch exits
    5 at once, the task is cancelled and the server sees the connection closed."""
    wf = orch.workflow({"name": "http-sigint", "tasks": [
        http("wait", srv.url("/slow?ms=10000"), method="POST", body={"a": 1}),
    ]})
    p = orch.spawn("run", wf)
    wait_for(lambda: srv.recorder.of("/slow"), timeout=20, what="the request to arrive")
    t0 = time.monotonic()
    os.kill(p.pid, signal.SIGINT)
    res = orch.finish(p, timeout=20)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_CANCELLED, res.stderr
    assert took < 5, f"orch took {took:.1f}s to stop (the server answers after 10s)"
    assert re.search(r"^wait\s+cancelled\b", res.stdout, re.M), res.stdout
    wait_for(lambda: srv.recorder.abandoned, timeout=5,
             what="the server to see the request abandoned")
    assert len(srv.recorder.of("/slow")) == 1


def test_crash_recovery_repeats_only_idempotent_requests(orch, srv):
    """orch is killed (SIGKILL) while a GET and a POST wait for their answers; `orch resume`
    records both attempts as lost and sends the GET again (it succeeds), but not the POST,
    which may have reached the server: it fails after one attempt, and the server saw it
    once."""
    wf = orch.workflow({"name": "http-crash", "tasks": [
        http("get", srv.url("/slow?ms=30000&key=g&once=1"), retries=2,
             retryBackoff={"initial": "50ms", "jitter": False}),
        http("post", srv.url("/slow?ms=30000&key=p&once=1"), method="POST", body={"a": 1},
             retries=2, retryBackoff={"initial": "50ms", "jitter": False}),
    ]})
    p = orch.spawn("run", wf)
    wait_for(lambda: len(srv.recorder.of("/slow")) == 2, timeout=20,
             what="both requests to arrive")
    os.killpg(p.pid, signal.SIGKILL)  # its own session: orch alone
    p.wait(timeout=10)
    res = orch.run("resume", timeout=60)
    assert res.returncode == EXIT_FAILED, res.stdout + res.stderr
    listing = orch.run_json("executions", "list")[1]
    d = orch.show(listing["items"][0]["id"])
    get, post = task_by_name(d, "get"), task_by_name(d, "post")
    assert attempts(get) == [(1, "lost"), (2, "succeeded")], get["attempts"]
    assert get["output"]["body"] == "fast g #2"
    assert attempts(post) == [(1, "lost")], post["attempts"]
    assert post["status"] == "failed"
    assert post["attempts"][0]["error"].startswith("lost: the orch process running it died"), \
        post["attempts"][0]["error"]
    assert srv.recorder.flaky == {"g": 2, "p": 1}, srv.recorder.flaky
    assert [r["method"] for r in srv.recorder.of("/slow")].count("POST") == 1


def test_requests_that_cannot_be_made_safely(orch, srv):
    """Checked when the request is filled in: a url placeholder giving a non-http(s) URL and
    a header value with a line break from an upstream output fail the task without sending
    anything; a redirect to file:// is refused; credentials are not sent on to another host
    after a redirect (127.0.0.1 -> localhost) but are after one on the same host."""
    wf = orch.workflow({"name": "http-unsafe", "params": {"u": "file:///etc/passwd"}, "tasks": [
        {"name": "evil", "command": write_output({"h": "x\r\nX-Injected: 1"})},
        http("file-url", "{{ params.u }}"),
        http("inject", srv.url("/echo?t=inject"), dependsOn=["evil"],
             headers={"X-H": "{{ tasks.evil.output.h }}"}),
        http("to-file", srv.url("/redirect?to=file:///etc/passwd")),
        http("other-host", srv.url(f"/redirect?to=http://localhost:{srv.port}/echo%3Fvia=lh"),
             auth={"bearerEnv": "TOKEN"}),
        http("same-host", srv.url("/redirect?to=/echo%3Fvia=same"), auth={"bearerEnv": "TOKEN"},
             dependsOn=["other-host"]),
    ]})
    res, d = run_json(orch, wf, env={"TOKEN": "tok-redirect-secret"})
    assert res.returncode == EXIT_FAILED, res.stderr
    assert task_by_name(d, "file-url")["error"] == \
        "cannot fill in its request: its url must start with http:// or https://"
    assert task_by_name(d, "inject")["error"] == \
        "cannot fill in its request: header 'X-H' would hold a line break"
    assert not [r for r in srv.recorder.of("/echo") if r["query"] == "t=inject"]
    assert task_by_name(d, "to-file")["error"] == (
        f"Protocol not allowed: file (only http and https) (GET http://127.0.0.1:{srv.port}"
        "/redirect?...)")
    lh = [r for r in srv.recorder.of("/echo") if r["query"] == "via=lh"]
    assert len(lh) == 1 and lh[0]["headers"]["host"] == [f"localhost:{srv.port}"]
    assert "authorization" not in lh[0]["headers"], lh[0]["headers"]
    assert task_by_name(d, "other-host")["status"] == "succeeded"
    same = [r for r in srv.recorder.of("/echo") if r["query"] == "via=same"]
    assert len(same) == 1 and same[0]["headers"]["authorization"] == ["Bearer tok-redirect-secret"]


# --------------------------------------------------------------------------- 10) validation

def test_definition_errors(orch, srv):
    """`orch validate --json` reports each bad HTTP task field at its JSON path (field errors
    first; placeholders are checked once the fields are valid: in the url, headers, text and
    JSON bodies and the user name); `orch run` refuses the definition (exit 3) and sends no
    request."""
    bad = orch.workflow({"name": "http-bad", "params": {"day": "x"}, "tasks": [
        http("ftp", "ftp://127.0.0.1/x"),
        http("method", srv.url("/json"), method="GE T"),
        http("header", srv.url("/json"), headers={"X-A": "one\r\nX-Injected: two"}),
        http("nopass", srv.url("/json"), auth={"username": "u"}),
        http("nouser", srv.url("/json"), auth={"passwordEnv": "P"}),
        http("both", srv.url("/json"), auth={"bearerEnv": "T", "usernameEnv": "U",
                                             "passwordEnv": "P"}),
        http("status", srv.url("/json"), expectStatus=["6xx"]),
        {"name": "nourl", "type": "http"},
        {"name": "cmd", "command": ["true"], "url": srv.url("/json")},
        http("badenv", srv.url("/json"), auth={"bearerEnv": "NOT-A-VAR"}),
        http("badhdr", srv.url("/json"), headers={"Bad Name": "v"}),
    ]}, name="bad.json")
    res, j = orch.run_json("validate", bad, data_dir=False)
    assert res.returncode == EXIT_INVALID, res.stdout + res.stderr
    probs = {(p["path"], p["message"]) for p in j["problems"]}
    want = {
        ("$.tasks[0].url", "'url' must start with http:// or https://, got 'ftp://127.0.0.1/x'"),
        ("$.tasks[1].method", "invalid method 'GE T' (an HTTP method such as GET or POST)"),
        ('$.tasks[2].headers["X-A"]', "a header value must not contain a line break"),
        ("$.tasks[3].auth", "basic 'auth' needs 'passwordEnv' (the variable holding the "
                            "password; a password is never written in a definition)"),
        ("$.tasks[4].auth", "basic 'auth' needs 'username' or 'usernameEnv'"),
        ("$.tasks[5].auth", "'auth' is either basic ('username' or 'usernameEnv', and "
                            "'passwordEnv') or bearer ('bearerEnv'), not both"),
        ("$.tasks[6].expectStatus[0]", "invalid status '6xx' (a status from 100 to 599, or a "
                                       "class from \"1xx\" to \"5xx\")"),
        ("$.tasks[7]", "missing 'url' (required for type 'http')"),
        ("$.tasks[8].url", "'url' is not allowed for type 'command'"),
        ("$.tasks[9].auth.bearerEnv", "'bearerEnv' must name an environment variable "
                                      "([A-Za-z_][A-Za-z0-9_]*), got 'NOT-A-VAR'"),
        ('$.tasks[10].headers["Bad Name"]', "invalid header name 'Bad Name'"),
    }
    missing = want - probs
    assert not missing, f"problems not reported: {sorted(missing)}\nall: {sorted(probs)}"
    assert len(j["problems"]) == len(want), sorted(probs)

    tpl = orch.workflow({"name": "http-bad-tpl", "params": {"day": "x"}, "tasks": [
        http("a", srv.url("/json?d={{ params.nope }}"),
             headers={"X-A": "{{ params.hdr }}"}, body={"k": ["{{ tasks.b.output.x }}"]},
             auth={"username": "{{ params.who }}", "passwordEnv": "P"}),
        http("b", srv.url("/json"), method="POST", body="day {{ params.dya }} {{ item }}"),
    ]}, name="bad-tpl.json")
    res, j = orch.run_json("validate", tpl, data_dir=False)
    assert res.returncode == EXIT_INVALID, res.stdout + res.stderr
    probs = {(p["path"], p["message"]) for p in j["problems"]}
    want = {
        ("$.tasks[0].url", "{{ params.nope }}: the workflow declares no param 'nope'"),
        ('$.tasks[0].headers["X-A"]', "{{ params.hdr }}: the workflow declares no param 'hdr'"),
        ("$.tasks[0].body.k[0]", "{{ tasks.b.output.x }}: task 'b' is not upstream of 'a' "
                                 "(add it to dependsOn, directly or through another task)"),
        ("$.tasks[0].auth.username", "{{ params.who }}: the workflow declares no param 'who'"),
        ("$.tasks[1].body", "{{ params.dya }}: the workflow declares no param 'dya'"),
        ("$.tasks[1].body", "{{ item }}: 'item' and 'index' exist only in a task that fans out "
                            "over a list (forEach), not in its forEach, when or the workflow's "
                            "outputs"),
    }
    missing = want - probs
    assert not missing, f"problems not reported: {sorted(missing)}\nall: {sorted(probs)}"

    for wf in (bad, tpl):
        res = orch.run("run", wf)
        assert res.returncode == EXIT_INVALID, res.stderr
    assert srv.recorder.requests == []


def test_credentials_are_never_written_in_definitions(fresh_server, srv):  # noqa: F811
    """A literal credential in an HTTP task (a credential header, user-info or a secret query
    parameter in the url) is refused with 422, every one at its path; a definition stored
    before that rule is shown to a read key with its credentials redacted."""
    s = fresh_server
    r = s.post("/v1/workflows", {"name": "creds", "tasks": [
        http("a", "http://user:hunter2@127.0.0.1:9/x?day=1&token=tok-secret",
             headers={"Authorization": "Bearer tok-secret", "X-Api-Key": "key-secret",
                      "X-Run": "r1"})]})
    assert r.status == 422, r
    probs = {(d["path"], d["message"].split(",")[0]) for d in r.json["error"]["details"]}
    assert probs == {
        ("$.tasks[0].headers.Authorization", "header 'Authorization' carries a credential"),
        ('$.tasks[0].headers["X-Api-Key"]', "header 'X-Api-Key' carries a credential"),
        ("$.tasks[0].url", "the url holds credentials (user-info before '@')"),
        ("$.tasks[0].url", "query parameter 'token' looks like a credential"),
    }, probs
    assert s.get("/v1/workflows/creds", check=False).status == 404

    # Stored before the rule existed: redacted when shown.
    old = {"name": "old", "tasks": [
        http("a", "http://user:hunter2@127.0.0.1:9/x?day=1&token=tok-secret",
             headers={"Authorization": "Bearer tok-secret", "X-Run": "r1"})]}
    db = sqlite3.connect(str(s.data_dir / "orch.db"), timeout=10)
    with db:
        db.execute("INSERT INTO workflows (name, version, definition, created_at) "
                   "VALUES (?, 1, ?, ?)", ("old", json.dumps(old), int(time.time() * 1000)))
    db.close()
    reader = s.keys_create("reader", "read")["key"]
    r = s.get("/v1/workflows/old", key=reader)
    assert r.status == 200, r
    task = r.json["definition"]["tasks"][0]
    assert task["headers"] == {"Authorization": "[redacted]", "X-Run": "r1"}, task
    assert task["url"] == "http://[redacted]@127.0.0.1:9/x?day=1&token=[redacted]", task
    assert "secret" not in r.body.decode() and "hunter2" not in r.body.decode()


def test_auth_header_and_query_from_the_environment(orch, srv):
    """auth {"header", "valueEnv"} and {"query", "valueEnv"} send a credential kept in the
    environment, percent-encoded in the query; it is in no output, log or message."""
    secret = "k3y/s3cret&x=1"
    wf = orch.workflow({"name": "http-auth-kinds", "tasks": [
        http("h", srv.url("/status/200?kind=h"), auth={"header": "X-Api-Key",
                                                       "valueEnv": "API_KEY"}),
        http("q", srv.url("/status/200?kind=q#frag"), auth={"query": "api_key",
                                                            "valueEnv": "API_KEY"}),
        http("unset", srv.url("/status/200?kind=u"), auth={"query": "api_key",
                                                           "valueEnv": "NOT_SET_HERE"}),
    ]})
    res, d = run_json(orch, wf, env={"API_KEY": secret})
    assert res.returncode == EXIT_FAILED, res.stderr
    (h,) = [r for r in srv.recorder.of("/status/200") if r["query"] == "kind=h"]
    assert h["headers"]["x-api-key"] == [secret], h["headers"]
    (q,) = [r for r in srv.recorder.of("/status/200") if r["query"].startswith("kind=q")]
    assert q["query"] == "kind=q&api_key=" + urllib.parse.quote(secret, safe=""), q
    assert task_by_name(d, "h")["status"] == "succeeded"
    assert task_by_name(d, "q")["status"] == "succeeded"
    u = task_by_name(d, "unset")
    assert u["error"] == "its auth variable NOT_SET_HERE is not set", u
    assert not [r for r in srv.recorder.of("/status/200") if r["query"] == "kind=u"]
    assert "s3cret" not in res.stdout + res.stderr


def test_network_policy_of_the_server(stopped_server, srv):  # noqa: F811
    """Through `orch server`: a task calling the server's own API (/v1/keys), a link-local
    address (169.254.169.254, refused before a socket is made) or a redirect to the own API
    fails with a message naming the address and the setting; other loopback ports stay
    allowed; ORCH_HTTP_ALLOW=<listen address> lets the own API through."""
    s = stopped_server
    s.start()
    own = f"127.0.0.1:{s.port}"
    wf = {"name": "http-policy", "tasks": [
        http("own", f"{s.url}/v1/keys", expectStatus=[401]),
        http("metadata", "http://169.254.169.254/latest/meta-data/", timeout="20s"),
        http("redirect", srv.url(f"/redirect?to={s.url}/v1/health"), expectStatus=[200, 401]),
        http("loopback", srv.url("/json")),
    ]}
    s.apply(wf)
    t0 = time.monotonic()
    d = s.wait_exec(s.trigger("http-policy")["id"])
    assert d["status"] == "failed", d
    refused = (f"refused to connect to {own}: orch's own API ({own}) (to allow it: "
               f"ORCH_HTTP_ALLOW={own})")
    assert task_by_name(d, "own")["error"] == f"{refused} (GET {s.url}/v1/keys)"
    assert task_by_name(d, "metadata")["error"] == (
        "refused to connect to 169.254.169.254:80: a link-local address (169.254.0.0/16) (to "
        "allow it: ORCH_HTTP_ALLOW=169.254.169.254) (GET http://169.254.169.254/latest/"
        "meta-data/)")
    assert task_by_name(d, "metadata")["attempts"][0]["durationMs"] < 5000
    assert task_by_name(d, "redirect")["error"].startswith(refused), task_by_name(d, "redirect")
    assert srv.recorder.paths().count("/redirect") == 1
    assert task_by_name(d, "loopback")["status"] == "succeeded"
    assert time.monotonic() - t0 < 15
    assert s.stop() == 0

    s.env = {"ORCH_HTTP_ALLOW": own}
    s.start()
    d = s.wait_exec(s.trigger("http-policy")["id"])
    assert task_by_name(d, "own")["status"] == "succeeded", task_by_name(d, "own")
    assert task_by_name(d, "own")["output"]["status"] == 401
    assert task_by_name(d, "redirect")["status"] == "succeeded", task_by_name(d, "redirect")
    assert task_by_name(d, "metadata")["status"] == "failed"
    assert s.stop() == 0


def test_network_policy_settings(orch, srv):
    """ORCH_HTTP_DENY refuses a network (no request reaches it), ORCH_HTTP_ALLOW makes an
    exception to it, and a bad entry is a usage error naming the setting."""
    wf = orch.workflow({"name": "http-deny", "tasks": [http("a", srv.url("/json"))]})
    deny = {"ORCH_HTTP_DENY": f"10.0.0.0/8, 127.0.0.1:{srv.port}"}
    res, d = run_json(orch, wf, env=deny)
    assert res.returncode == EXIT_FAILED, res.stderr
    assert task_by_name(d, "a")["error"] == (
        f"refused to connect to 127.0.0.1:{srv.port}: denied by ORCH_HTTP_DENY (127.0.0.1:"
        f"{srv.port}) (to allow it: ORCH_HTTP_ALLOW=127.0.0.1) (GET {srv.url('/json')})")
    assert srv.recorder.requests == []
    res, d = run_json(orch, wf, env=dict(deny, ORCH_HTTP_ALLOW="127.0.0.0/8"))
    assert res.returncode == EXIT_OK, res.stderr
    assert srv.recorder.paths() == ["/json"]
    for bad in ("localhost", "10.0.0.0/33", "1.2.3.4:0", "[::1]:x"):
        res = orch.run("run", wf, env={"ORCH_HTTP_ALLOW": bad})
        assert res.returncode == EXIT_USAGE, (bad, res.stderr)
        assert f"invalid ORCH_HTTP_ALLOW entry '{bad}'" in res.stderr, res.stderr


# --------------------------------------------------------------------------- 11) output cap

CAP = 65536
KEEP = CAP - 16384  # the engine keeps at most the output cap minus 16 KiB of body


def test_large_bodies_and_the_output_cap(orch, srv):
    """With ORCH_MAX_TASK_OUTPUT=65536 a body is kept up to 49152 bytes: exactly that much is
    whole (no bodyTruncated), one byte more is cut there with bodyTruncated true and the task
    succeeds; a truncated JSON body stays a string; a cut in the middle of a UTF-8 character
    becomes U+FFFD; a body whose JSON escaping outgrows the cap, or headers larger than it,
    fail with the "larger than the output limit" message; over 256 KiB of headers are
    refused."""
    wf = orch.workflow({"name": "http-big", "tasks": [
        http("exact", srv.url(f"/big?n={KEEP}")),
        http("over", srv.url(f"/big?n={KEEP + 1}")),
        http("huge", srv.url("/big?n=1000000")),
        http("json", srv.url("/big?n=200000&type=json&prefix=%5B%22&ch=a")),
        http("utf8", srv.url(f"/big?n={KEEP + 100}&prefix=a&ch=%C3%A9")),
        http("quotes", srv.url("/big?n=200000&ch=%22")),
        http("headers", srv.url("/bighdr?n=100")),
        http("huge-headers", srv.url("/bighdr?n=300")),
    ]})
    res, d = run_json(orch, wf, env={"ORCH_MAX_TASK_OUTPUT": str(CAP)}, timeout=120)
    assert res.returncode == EXIT_FAILED, res.stderr
    exact = task_by_name(d, "exact")
    assert exact["status"] == "succeeded", exact
    assert exact["output"]["body"] == "x" * KEEP
    assert "bodyTruncated" not in exact["output"]
    for name in ("over", "huge"):
        t = task_by_name(d, name)
        assert t["status"] == "succeeded", t.get("error")
        assert t["output"]["bodyTruncated"] is True
        assert t["output"]["body"] == "x" * KEEP, (name, len(t["output"]["body"]))
        assert t["output"]["status"] == 200
    j = task_by_name(d, "json")
    assert j["status"] == "succeeded", j.get("error")
    assert j["output"]["bodyTruncated"] is True
    assert j["output"]["body"] == '["' + "a" * (KEEP - 2)
    u = task_by_name(d, "utf8")
    assert u["status"] == "succeeded", u.get("error")
    assert u["output"]["bodyTruncated"] is True
    assert u["output"]["body"] == "a" + "\u00e9" * ((KEEP - 1) // 2) + "\ufffd"
    q = task_by_name(d, "quotes")
    assert q["status"] == "failed"
    assert q["error"] == (f"its response is larger than the output limit of {CAP} bytes "
                          f"(ORCH_MAX_TASK_OUTPUT) (GET http://127.0.0.1:{srv.port}/big?...)"), \
        q["error"]
    assert attempts(q) == [(1, "failed")]
    # Headers are not cut: 100 KB of them do not fit in the output, 300 KB are refused.
    h = task_by_name(d, "headers")
    assert h["status"] == "failed"
    assert h["error"] == (f"its response is larger than the output limit of {CAP} bytes "
                          f"(ORCH_MAX_TASK_OUTPUT) (GET http://127.0.0.1:{srv.port}/bighdr?...)")
    hh = task_by_name(d, "huge-headers")
    assert hh["status"] == "failed"
    assert hh["error"] == (f"Response headers too large (more than 262144 bytes) (GET "
                           f"http://127.0.0.1:{srv.port}/bighdr?...)"), hh["error"]
    # Every big response was read to its end: the connection served the next request.
    assert len(srv.recorder.of("/big")) == 6


def test_values_in_urls_are_encoded_and_text_bodies_are_plain(orch, srv):
    """Values filled into a URL are percent-encoded, '/' included, and a value that is '..'
    wholly (a value is one segment or query value: it cannot add parameters or segments, or
    climb the path); the URL starting with a placeholder (a whole URL from a param) is used
    as given; a placeholder in the host is refused at definition time; a string body
    without a Content-Type goes out as text/plain."""
    bad = orch.workflow({"name": "http-host", "params": {"t": "x"}, "tasks": [
        http("h", "http://{{ params.t }}.example.invalid/v1")]})
    res = orch.run("validate", bad, "--json")
    assert res.returncode == EXIT_INVALID, res
    assert any(p["path"] == "$.tasks[0].url" and "placeholder in the host" in p["message"]
               for p in json.loads(res.stdout)["problems"]), res.stdout
    wf = orch.workflow({"name": "http-encode",
                        "params": {"q": "a b&admin=1/x", "up": "..",
                                   "base": srv.url("/echo")},
                        "tasks": [
        http("enc", srv.url("/echo?q={{ params.q }}&n={{ execution.id }}")),
        http("climb", srv.url("/echo/{{ params.up }}/{{ params.up }}/x"),
             expectStatus=["2xx", "4xx"]),
        http("whole", "{{ params.base }}?from=param"),
        http("text", srv.url("/echo"), method="POST", body="day {{ params.q }}"),
    ]})
    res, d = run_json(orch, wf)
    assert res.returncode == EXIT_OK, res.stderr
    assert not any(r["path"] == "/x" for r in srv.recorder.requests), "a value climbed the path"
    reqs = srv.recorder.of("/echo")
    enc = [r for r in reqs if r["method"] == "GET" and r["query"].startswith("q=")]
    assert len(enc) == 1, reqs
    assert enc[0]["query"] == f"q=a%20b%26admin%3D1%2Fx&n={d['id']}", enc[0]
    assert any(r["query"] == "from=param" for r in reqs), reqs
    (post,) = [r for r in reqs if r["method"] == "POST"]
    assert post["headers"]["content-type"] == ["text/plain; charset=utf-8"], post["headers"]
    assert post["body"] == b"day a b&admin=1/x"


def test_shutdown_does_not_send_a_post_again(stopped_server, srv):
    """A graceful stop of `orch server` (grace 1 s) while a POST waits on an 8 s response:
    the POST may have reached its server, so after the restart it is not sent again (the
    task fails, saying why), while a GET interrupted the same way is sent again and
    succeeds. The test server sees one POST and two GETs."""
    s = stopped_server
    s.grace = "1s"
    s.start()
    s.apply({"name": "http-stop", "tasks": [
        http("charge", srv.url("/slow?ms=8000&k=post"), method="POST", body="x", retries=2,
             retryBackoff={"initial": "100ms"}),
        http("read", srv.url("/slow?ms=8000&k=get"), retries=2,
             retryBackoff={"initial": "100ms"}),
    ]})
    e = s.trigger("http-stop")
    wait_for(lambda: len(srv.recorder.of("/slow")) == 2, timeout=20,
             what="both requests to arrive")
    assert s.stop() == 0
    s.start()
    d = s.wait_exec(e["id"], timeout=60)
    charge = task_by_name(d, "charge")
    assert charge["status"] == "failed", charge
    assert "not sent again: POST is not idempotent" in charge["error"], charge["error"]
    assert len(charge["attempts"]) == 1, charge["attempts"]
    assert task_by_name(d, "read")["status"] == "succeeded", d
    slow = srv.recorder.of("/slow")
    assert sorted(r["method"] for r in slow) == ["GET", "GET", "POST"], slow
    assert s.stop() == 0


def test_requests_waiting_their_turn_cost_no_cpu(orch, srv):
    """300 requests of one fan-out to a server that answers each after 2 s: 256 are in
    flight, 44 wait their turn. While they wait the engine sleeps (it used to spin through
    empty turns at 100% of a core): orch's CPU time stays a small part of the wall time."""
    import resource
    wf = orch.workflow({"name": "http-queue", "tasks": [
        http("each", srv.url("/slow?ms=2000&i={{ index }}"), forEach=list(range(300)),
             timeout="30s")]})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    res, d = run_json(orch, wf, timeout=120)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert res.returncode == EXIT_OK, res.stderr
    assert len(srv.recorder.of("/slow")) == 300
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert wall >= 4, wall  # two rounds of 2 s: some did wait
    assert cpu < 0.25 * wall, f"orch used {cpu:.2f}s of CPU in {wall:.2f}s"
