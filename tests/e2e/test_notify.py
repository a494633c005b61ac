"""
Notifications (issue 14, section 4): a workflow's `notify` webhooks and the server-wide
default, sent through the outbox, on SQLite and on PostgreSQL.

The receiver is a real HTTP server on a loopback port, in this process: it records every
request (time, path, headers, body) and answers from a script (a status per request, or
holding the request until the test lets it go).
"""
import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apiutil import Server, sh, wf
from conftest import wait_for
from pgutil import Node, Postgres

SECRET = "tok-5ecret-Zq9x7W"  # the credential of the webhooks: never logged or returned


class Receiver:
    """Records requests; answers with the next status of `script` (then 200), or holds a
    request while `hold` is set."""

    def __init__(self):
        self.requests = []
        self.script = {}  # path -> list of statuses still to answer
        self.hold = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rec.lock:
                    rec.requests.append({"t": time.monotonic(), "path": self.path,
                                         "headers": {k.lower(): v for k, v in
                                                     self.headers.items()},
                                         "body": body.decode("utf-8", "replace")})
                    statuses = rec.script.get(self.path.split("?")[0], [])
                    status = statuses.pop(0) if statuses else 200
                if rec.hold.is_set():
                    rec.release.wait(60)
                    return  # the connection closes without an answer
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_PUT = do_POST

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def on(self, path):
        with self.lock:
            return [r for r in self.requests if r["path"].split("?")[0] == path]

    def wait(self, path, n, timeout=60):
        wait_for(lambda: len(self.on(path)) >= n, timeout=timeout,
                 what=f"{n} request(s) to {path}")
        return self.on(path)

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def pg():
    p = Postgres().start()
    yield p
    p.destroy()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


@pytest.fixture
def started():
    servers = []
    yield servers
    for s in servers:
        s.cleanup()


def make_server(backend, request, tmp_path, started, env, name="n1", url=None):
    """One server on SQLite, or one node on a PostgreSQL database (`url`, new if None)."""
    e = {"NOTIFY_TOKEN": SECRET, "ORCH_NOTIFY_BACKOFF": "300ms", **env}
    if backend == "sqlite":
        s = Server(tmp_path, env=e)
    else:
        db = url or request.getfixturevalue("pg").database()
        s = Node(tmp_path, db, name, lease="4s", env=e)
    started.append(s)
    return s.start()


def hook(receiver, path, on=("failed",), **kw):
    h = {"url": receiver.url(path), "headers": {"X-Team": "data"},
         "auth": {"bearerEnv": "NOTIFY_TOKEN"}}
    h.update(kw)
    return {"on": list(on), "webhook": h}


def notifications(s, ex):
    r = s.get(f"/v1/executions/{ex}/notifications")
    assert r.status == 200, r
    return r.json["items"]


def wait_settled(s, ex, n=1, timeout=60):
    wait_for(lambda: len(notifications(s, ex)) == n and
             all(x["status"] in ("delivered", "failed") for x in notifications(s, ex)),
             timeout=timeout, what=f"the notifications of {ex} settled")
    return notifications(s, ex)


def outbox_rows(s):
    """Every column of every row of the outbox, as text."""
    if isinstance(s, Node):
        return Postgres.psql(None, "SELECT n::text FROM notifications n", url=s.db_url)
    db = sqlite3.connect(f"file:{s.data_dir / 'orch.db'}?mode=ro", uri=True)
    try:
        return repr(db.execute("SELECT * FROM notifications").fetchall())
    finally:
        db.close()


def assert_no_secret(s, ex):
    """The credential is in no log, no API answer about the execution, no outbox row
    (which holds the name of its variable)."""
    assert SECRET not in s.all_logs()
    for path in (f"/v1/executions/{ex}", f"/v1/executions/{ex}/notifications"):
        assert SECRET not in s.get(path).text
    rows = outbox_rows(s)
    assert ex in rows and "NOTIFY_TOKEN" in rows and SECRET not in rows


def test_failed_execution_sends_one(backend, request, tmp_path, started, receiver):
    s = make_server(backend, request, tmp_path, started, {})
    s.apply(wf("nightly", [sh("extract", "true"),
                           sh("load", "echo disk full >&2; exit 3", dependsOn=["extract"])],
               notify=[hook(receiver, "/hook")]))
    ex = s.trigger("nightly")["id"]
    assert s.wait_exec(ex)["status"] == "failed"
    items = wait_settled(s, ex)
    (reqs,) = [receiver.on("/hook")]
    assert len(reqs) == 1, reqs
    n = items[0]
    assert n["status"] == "delivered" and n["attempts"] == 1 and n["responseCode"] == 200, n
    assert n["event"] == "failed" and n["url"] == receiver.url("/hook") and n["lastError"] is None
    req = reqs[0]
    assert req["headers"]["idempotency-key"] == n["id"]
    assert req["headers"]["x-team"] == "data"
    assert req["headers"]["authorization"] == f"Bearer {SECRET}"
    assert req["headers"]["content-type"] == "application/json"
    body = json.loads(req["body"])
    assert body["executionId"] == ex and body["workflow"] == "nightly"
    assert body["status"] == "failed" and body["event"] == "failed"
    assert [t["task"] for t in body["failedTasks"]] == ["load"]
    assert "disk full" in body["failedTasks"][0]["error"], body
    assert body["link"] == f"{s.url}/executions/{ex}"  # the listen address
    # A success of the same workflow: its rule does not match, no row was written with it.
    s.apply(wf("nightly", [sh("extract", "true")], notify=[hook(receiver, "/hook")]))
    ok = s.trigger("nightly")["id"]
    assert s.wait_exec(ok)["status"] == "succeeded"
    assert notifications(s, ok) == []
    assert len(receiver.on("/hook")) == 1
    assert_no_secret(s, ex)
    assert "delivered to http://127.0.0.1:" in s.all_logs()
    assert s.stop() == 0
    s.assert_log_clean()


def test_retries_with_backoff_then_gives_up(backend, request, tmp_path, started, receiver):
    s = make_server(backend, request, tmp_path, started, {"ORCH_NOTIFY_ATTEMPTS": "3"})
    receiver.script["/flaky"] = [500, 500]
    receiver.script["/down"] = [503] * 10
    s.apply(wf("flaky", [sh("a", "exit 1")], notify=[hook(receiver, "/flaky")]))
    s.apply(wf("down", [sh("a", "exit 1")], notify=[hook(receiver, "/down")]))
    ex = s.trigger("flaky")["id"]
    ex2 = s.trigger("down")["id"]
    reqs = receiver.wait("/flaky", 3)
    (n,) = wait_settled(s, ex)
    assert n["status"] == "delivered" and n["attempts"] == 3 and n["responseCode"] == 200, n
    # One notification, three attempts with the same key, the gaps growing: at least the
    # back-off (300ms), then twice it.
    assert {r["headers"]["idempotency-key"] for r in reqs} == {n["id"]}
    gaps = [reqs[1]["t"] - reqs[0]["t"], reqs[2]["t"] - reqs[1]["t"]]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6, gaps
    assert "failed (attempt 1 of 3): HTTP 500" in s.all_logs()
    # Given up after ORCH_NOTIFY_ATTEMPTS, with the last error and status.
    (n2,) = wait_settled(s, ex2)
    assert n2["status"] == "failed" and n2["attempts"] == 3, n2
    assert n2["lastError"] == "HTTP 503" and n2["responseCode"] == 503, n2
    assert len(receiver.on("/down")) == 3
    assert "given up after 3 attempts: HTTP 503" in s.all_logs()
    assert_no_secret(s, ex)
    assert s.stop() == 0
    s.assert_log_clean()


def test_kill9_before_delivery_then_delivered(backend, request, tmp_path, started, receiver):
    """The server dies after the commit, with the request in flight: the notification is
    neither lost nor doubled beyond at-least-once (the same Idempotency-Key)."""
    s = make_server(backend, request, tmp_path, started, {})
    s.apply(wf("crash", [sh("a", "exit 1")], notify=[hook(receiver, "/held")]))
    receiver.hold.set()
    ex = s.trigger("crash")["id"]
    receiver.wait("/held", 1)
    s.kill()
    receiver.hold.clear()
    receiver.release.set()
    if backend == "sqlite":
        survivor = s
        s.start()  # the same data directory
    else:
        (tmp_path / "b").mkdir()  # another node takes the row over once its lease ends
        survivor = make_server(backend, request, tmp_path / "b", started, {}, name="n2",
                               url=s.db_url)
    (n,) = wait_settled(survivor, ex)
    reqs = receiver.on("/held")
    assert n["status"] == "delivered" and n["responseCode"] == 200, n
    assert len(reqs) == 2 and {r["headers"]["idempotency-key"] for r in reqs} == {n["id"]}
    assert json.loads(reqs[0]["body"]) == json.loads(reqs[1]["body"])
    assert survivor.stop() == 0
    survivor.assert_log_clean()


def test_one_node_sends_each(pg, request, tmp_path, started, receiver):
    """Two nodes on one database: each notification is sent by one of them, once."""
    a = make_server("postgres", request, tmp_path, started, {}, name="a")
    (tmp_path / "b").mkdir()
    b = make_server("postgres", request, tmp_path / "b", started, {}, name="b", url=a.db_url)
    a.apply(wf("many", [sh("x", "exit 1")], notify=[hook(receiver, "/many")]))
    ids = [(a if i % 2 else b).trigger("many")["id"] for i in range(8)]
    for ex in ids:
        (n,) = wait_settled(a, ex)
        assert n["status"] == "delivered" and n["attempts"] == 1, n
    reqs = receiver.on("/many")
    assert sorted(json.loads(r["body"])["executionId"] for r in reqs) == sorted(ids)
    assert a.stop() == 0 and b.stop() == 0


def test_server_default_and_slack_body(tmp_path, started, receiver):
    s = Server(tmp_path, env={"ORCH_NOTIFY_URL": receiver.url("/default"),
                              "ORCH_NOTIFY_ON": "failed,succeeded",
                              "ORCH_PUBLIC_URL": "https://orch.example.com/"})
    started.append(s)
    s.start()
    # No notify of its own: the server-wide default, with the default body.
    s.apply(wf("plain", [sh("a", "exit 4")]))
    ex = s.trigger("plain")["id"]
    (req,) = receiver.wait("/default", 1)
    body = json.loads(req["body"])
    assert body["executionId"] == ex and body["status"] == "failed"
    assert body["link"] == f"https://orch.example.com/executions/{ex}"
    (n,) = wait_settled(s, ex)
    assert n["url"] == receiver.url("/default") and n["status"] == "delivered"
    # Its own rules replace the default; a Slack-style body is a template, no code.
    slack = {"on": ["failed"], "webhook": {"url": receiver.url("/slack"), "body": {
        "text": ":red_circle: {{ workflow }} {{ status }}: {{ failedTasks }} "
                "<{{ link }}|{{ execution.id }}>"}}}
    s.apply(wf("own", [sh("a", "echo 'bad \"quote\"' >&2; exit 2")], notify=[slack]))
    ex2 = s.trigger("own")["id"]
    (req,) = receiver.wait("/slack", 1)
    body = json.loads(req["body"])
    assert list(body) == ["text"]
    assert body["text"].startswith(f":red_circle: own failed: a: ")
    assert 'bad "quote"' in body["text"]
    assert body["text"].endswith(f"<https://orch.example.com/executions/{ex2}|{ex2}>")
    wait_settled(s, ex2)
    assert len(receiver.on("/default")) == 1
    assert s.stop() == 0
    s.assert_log_clean()


def test_stuck_and_url_from_env(tmp_path, started, receiver):
    """`stuck` (past maxRunning, stuckPolicy warn) sends while the execution runs on; the
    url may come from the environment (a webhook URL can itself be a secret)."""
    s = Server(tmp_path, env={"HOOK_URL": receiver.url("/stuck")})
    started.append(s)
    s.start()
    s.apply(wf("slow", [sh("a", "sleep 30")], maxRunning="1s",
               notify=[{"on": ["stuck", "cancelled"], "webhook": {"urlEnv": "HOOK_URL"}}]))
    ex = s.trigger("slow")["id"]
    (req,) = receiver.wait("/stuck", 1)
    body = json.loads(req["body"])
    assert body["event"] == "stuck" and body["status"] == "running", body
    assert "maxRunning" in body["error"]
    assert s.post(f"/v1/executions/{ex}/cancel").status in (200, 202)
    receiver.wait("/stuck", 2)
    items = wait_settled(s, ex, n=2)
    assert [x["event"] for x in items] == ["stuck", "cancelled"]
    assert all(x["url"] is None and x["urlEnv"] == "HOOK_URL" for x in items)
    assert receiver.url("/stuck") not in s.get(f"/v1/executions/{ex}/notifications").text
    assert s.stop() == 0
    s.assert_log_clean()


def test_definition_errors_named_at_once(tmp_path, started):
    s = Server(tmp_path)
    started.append(s)
    s.start()
    r = s.post("/v1/workflows", wf("bad", [sh("a", "true")], notify=[
        {"on": ["failed", "exploded"], "webhook": {"headers": {"X": "y"}}},
        {"on": "succeeded", "webhook": {"url": "http://x/", "body": "{{ nope }}",
                                        "headers": {"Authorization": "Bearer abc"}}},
        {"webhook": {"url": "http://x/"}}]))
    assert r.status == 422 and r.json["error"]["code"] == "validation_failed", r
    got = {(p["path"], p["message"].split(" (")[0]) for p in r.json["error"]["details"]}
    paths = {p for p, _ in got}
    assert "$.notify[0].on[1]" in paths and "$.notify[0].webhook" in paths, got
    assert "$.notify[1].webhook.body" in paths, got
    assert "$.notify[1].webhook.headers.Authorization" in paths, got
    assert "$.notify[2]" in paths, got
    text = r.text
    assert "unknown event 'exploded'" in text and "missing 'url'" in text
    assert "unknown placeholder 'nope'" in text and "missing 'on'" in text
    assert "Bearer abc" not in s.all_logs()
    assert s.stop() == 0
