"""
The HTTP API end to end against a real `orch server`: every endpoint with its exact status
codes and shapes (each answer is checked against docs/openapi.yaml by apiutil), the verbatim
curl lines of the issue, workflows and their versions, executions with params and
Idempotency-Key, list filters and cursor pagination, cancel, retry, logs and follow mode,
request ids in the server's log, keep-alive, 413/404/405/409/422, and a graceful shutdown
that loses nothing.
"""
import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

from apiutil import (ISO_MS, keepalive_pair, raw_exchange, server, sh, spec,  # noqa: F401
                     stopped_server, wf)
from conftest import ORCH, base_env, pid_alive, wait_for


def q(s):
    return urllib.parse.quote(s, safe="")


def by_name(detail, name):
    for t in detail["tasks"]:
        if t["name"] == name:
            return t
    raise AssertionError(f"no task '{name}' in {json.dumps(detail, indent=1)}")


@pytest.fixture(scope="module")
def quick(server):
    """A fast workflow: a shell task and a noop after it."""
    server.apply(wf("quick", [sh("a", ["echo", "hello from a"]),
                              {"name": "b", "dependsOn": ["a"], "type": "noop"}],
                    description="two quick tasks"))
    return "quick"


@pytest.fixture(scope="module")
def failed_exec(server):
    server.apply(wf("always-fails", [sh("boom", "echo 'going down' >&2; exit 3")]))
    e = server.trigger("always-fails")
    d = server.wait_exec(e["id"])
    assert d["status"] == "failed", d
    return d


# --------------------------------------------------------------------------- verbatim curl

def curl(server, line, key=None):
    """Run a curl line of the issue verbatim but for the port; return its stdout as JSON."""
    line = line.replace("127.0.0.1:8080", f"127.0.0.1:{server.port}")
    env = {k: v for k, v in base_env().items() if "proxy" not in k.lower()}
    if key:
        env["KEY"] = key
    res = subprocess.run(["sh", "-c", line], capture_output=True, text=True, env=env,
                         timeout=30)
    assert res.returncode == 0, f"{line}: curl exited {res.returncode}: {res.stderr}"
    try:
        return json.loads(res.stdout)
    except ValueError:
        raise AssertionError(f"{line}: not JSON: {res.stdout!r}")


def test_verbatim_curl_lines(server, failed_exec):
    key = server.admin_key
    h = curl(server, 'curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/v1/health', key)
    spec().validate(h, "Health", "curl /v1/health")

    page = curl(server, 'curl -H "Authorization: Bearer $KEY" '
                        '"http://127.0.0.1:8080/v1/executions?status=failed&limit=10"', key)
    spec().validate(page, "ExecutionList", "curl /v1/executions?status=failed&limit=10")
    assert page["items"] and all(i["status"] == "failed" for i in page["items"])
    assert len(page["items"]) <= 10
    assert failed_exec["id"] in [i["id"] for i in page["items"]]

    line = ('curl -H "Authorization: Bearer $KEY" '
            'http://127.0.0.1:8080/v1/executions/{executionId}').replace(
        "{executionId}", failed_exec["id"])
    d = curl(server, line, key)
    spec().validate(d, "ExecutionDetail", "curl /v1/executions/{executionId}")
    assert d["id"] == failed_exec["id"] and d["tasks"][0]["attempts"]

    s = curl(server, "curl http://127.0.0.1:8080/v1/health/scheduler")
    spec().validate(s, "SchedulerHealth", "curl /v1/health/scheduler")


# --------------------------------------------------------------------------- health

def test_health(server):
    r = server.get("/v1/health")
    h = r.json
    assert r.status == (503 if h["status"] == "down" else 200), r
    c = h["components"]
    assert c["database"]["reachable"] is True and c["database"]["status"] == "ok"
    assert c["workers"]["total"] == server.workers
    assert c["memory"]["rssBytes"] > 1 << 20
    assert os.path.realpath(c["disk"]["path"]) == os.path.realpath(server.data_dir)
    assert 0 < c["disk"]["freeBytes"] and 0 <= c["disk"]["freePercent"] <= 100
    assert h["uptimeSeconds"] >= 0
    res = server.orch("version")
    assert res.stdout.strip() == f"orch {h['version']}"


def test_scheduler_health_needs_no_key(server):
    r = server.get("/v1/health/scheduler", key=None)
    assert r.status == (503 if r.json["status"] == "down" else 200), r
    assert r.json["running"] is (r.json["status"] != "down")
    assert "WWW-Authenticate" not in r.headers


# --------------------------------------------------------------------------- workflows

def test_workflow_versions_list_get_delete(server):
    d1 = wf("versioned", [sh("a", ["true"])], description="first")
    r = server.post("/v1/workflows", d1)
    assert r.status == 201, r
    w = r.json
    assert (w["name"], w["version"], w["tasks"], w["description"]) == ("versioned", 1, 1, "first")
    assert w["definition"] == d1
    assert ISO_MS.match(w["createdAt"])

    r = server.post("/v1/workflows", d1)  # identical: nothing new
    assert r.status == 200 and r.json["version"] == 1, r

    d2 = wf("versioned", [sh("a", ["true"]), sh("b", ["true"], dependsOn=["a"])])
    r = server.post("/v1/workflows", d2)
    assert r.status == 201 and r.json["version"] == 2 and r.json["tasks"] == 2, r
    assert r.json["description"] is None

    items = server.get("/v1/workflows").json["items"]
    names = [i["name"] for i in items]
    assert names == sorted(names)
    mine = [i for i in items if i["name"] == "versioned"]
    assert len(mine) == 1 and mine[0]["version"] == 2 and mine[0]["tasks"] == 2

    g = server.get("/v1/workflows/versioned")
    assert g.status == 200 and g.json["version"] == 2 and g.json["definition"] == d2
    g1 = server.get("/v1/workflows/versioned?version=1")
    assert g1.status == 200 and g1.json["version"] == 1 and g1.json["definition"] == d1
    assert server.get("/v1/workflows/versioned?version=9").status == 404
    assert server.get("/v1/workflows/versioned?version=abc").status == 400
    assert server.get("/v1/workflows/no-such-workflow").status == 404

    ex = server.trigger("versioned")
    assert ex["workflowVersion"] == 2
    server.wait_exec(ex["id"])

    r = server.delete("/v1/workflows/versioned")
    assert r.status == 204 and r.body == b"", r
    assert server.get("/v1/workflows/versioned").status == 404
    assert "versioned" not in [i["name"] for i in server.get("/v1/workflows").json["items"]]
    assert server.delete("/v1/workflows/versioned").status == 404
    r = server.post("/v1/workflows/versioned/executions")
    assert r.status == 404, r
    # Its executions stay readable.
    assert server.execution(ex["id"])["workflowVersion"] == 2
    # A new definition continues the numbering.
    r = server.post("/v1/workflows", d1)
    assert r.status == 201 and r.json["version"] == 3, r


BAD = {
    "name": "bad",
    "tasks": [
        {"name": "extract", "command": ["true"]},
        {"name": "transform", "dependsOn": ["extrct"], "command": ["true"]},
        {"name": "load", "dependsOn": ["transform"], "retries": "3", "command": ["true"]},
        {"name": "report", "tiemout": "5m", "command": ["true"]},
        {"name": "check", "dependsOn": ["check2"], "command": ["true"]},
        {"name": "check2", "dependsOn": ["check"], "command": ["true"]},
    ],
}


def test_workflow_validation_422_lists_every_problem_with_its_path(server, tmp_path):
    r = server.post("/v1/workflows", BAD)
    assert r.status == 422, r
    details = r.json["error"]["details"]
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(BAD))
    res = server.orch("validate", f, "--json")
    assert res.returncode == 3, res.stderr
    problems = json.loads(res.stdout)["problems"]
    assert len(problems) >= 4
    # The server's validator is the CLI's: the same problems with the same paths.
    assert sorted((p["path"], p["message"]) for p in details) == \
        sorted((p["path"], p["message"]) for p in problems)
    paths = {p["path"] for p in details}
    assert "$.tasks[1].dependsOn[0]" in paths and "$.tasks[2].retries" in paths
    assert "$.tasks[3].tiemout" in paths
    assert server.get("/v1/workflows/bad").status == 404


@pytest.mark.parametrize("body", [b"{\"name\": \"x\", \"tasks\": [", b"[1, 2]", b"\"text\"",
                                  b"", b"\xff\xfe not utf-8"])
def test_workflow_body_not_a_definition(server, body):
    r = server.request("POST", "/v1/workflows", raw=body)
    assert r.status in (400, 422), r
    if r.status == 422:
        assert r.json["error"]["details"]


def test_payload_too_large_413(server):
    size = 5 * 1024 * 1024
    body = b"{\"name\": \"big\", \"description\": \"" + b"x" * (size - 40) + b"\", \"tasks\": []}"
    head = (f"POST /v1/workflows HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: Bearer {server.admin_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}")
    status, headers, rest = raw_exchange(server.port, head, body)
    assert status == 413, (status, headers, rest[:300])
    assert headers.get("x-request-id", "").startswith("req_")
    err = json.loads(rest.decode())
    spec().validate(err, "Error", "413")
    assert err["error"]["code"] == "payload_too_large"
    # The server is fine afterwards.
    assert server.get("/v1/workflows").status == 200


def test_405_with_allow(server):
    r = server.request("PUT", "/v1/workflows", body={})
    assert r.status == 405, r
    assert {m.strip() for m in r.headers["Allow"].split(",")} >= {"GET", "POST"}
    r = server.request("DELETE", "/v1/executions")
    assert r.status == 405 and "GET" in r.headers["Allow"], r
    r = server.request("GET", "/v1/executions/ex_0000000000000000/cancel")
    assert r.status == 405 and "POST" in r.headers["Allow"], r


def test_404_shapes(server):
    for method, path in (("GET", "/v1/nope"), ("GET", "/v1/executions/ex_0000000000000000"),
                         ("GET", "/v1/executions/not-an-id"),
                         ("POST", "/v1/executions/ex_0000000000000000/cancel"),
                         ("POST", "/v1/executions/ex_0000000000000000/retry"),
                         ("GET", "/v1/executions/ex_0000000000000000/logs"),
                         ("POST", "/v1/workflows/nope/executions"),
                         ("DELETE", "/v1/keys/key_0000000000000000")):
        r = server.request(method, path)
        assert r.status == 404, f"{method} {path}: {r}"
        assert r.json["error"]["message"]


# --------------------------------------------------------------------------- executions

def test_trigger_with_params(server):
    server.apply(wf("greet", [sh("hello", "echo \"hello $ORCH_PARAM_who x$ORCH_PARAM_n\"")],
                    params={"who": {"type": "string", "required": True},
                            "n": {"type": "number", "default": 1}}))
    e = server.trigger("greet", {"who": "bob", "n": 3})
    assert e["workflow"] == "greet" and e["workflowVersion"] == 1
    assert e["status"] in ("queued", "running", "succeeded")
    assert e["params"]["who"] == "bob"
    d = server.wait_exec(e["id"])
    assert d["status"] == "succeeded", d
    logs = server.get(f"/v1/executions/{e['id']}/logs").json["items"]
    assert "".join(i["data"] for i in logs) == "hello bob x3\n"

    for body in ({"params": {}}, {"params": {"who": 5}}, {"params": {"who": "x", "n": "many"}}):
        r = server.post("/v1/workflows/greet/executions", body)
        assert r.status == 422, (body, r)
        assert all(p["path"].startswith("$") for p in r.json["error"]["details"])
    for raw in (b"{not json", b"[]", b"{\"params\": 5}"):
        r = server.request("POST", "/v1/workflows/greet/executions", raw=raw)
        assert r.status in (400, 422), (raw, r)
    r = server.post("/v1/workflows/no-such-workflow/executions", {"params": {}})
    assert r.status == 404, r


def test_submission_runs_the_newest_version(server):
    """The engine keeps parsed definitions: a new version is still the one submitted next,
    and the 201 names it (built from the row its commit wrote)."""
    r = server.post("/v1/workflows", wf("kept", [sh("a", ["true"])]))
    assert r.status == 201, r
    e1 = server.trigger("kept")
    assert e1["workflowVersion"] == 1 and e1["workflow"] == "kept" and e1["params"] == {}
    e2 = server.trigger("kept")
    assert e2["workflowVersion"] == 1 and e2["id"] != e1["id"]
    r = server.post("/v1/workflows", wf("kept", [sh("a", ["true"]),
                                                 sh("b", ["true"], dependsOn=["a"])]))
    assert r.status == 201 and r.json["version"] == 2, r
    e3 = server.trigger("kept")
    assert e3["workflowVersion"] == 2, e3
    d = server.wait_exec(e3["id"])
    assert d["status"] == "succeeded" and [t["name"] for t in d["tasks"]] == ["a", "b"], d
    for e in (e1, e2):
        d = server.wait_exec(e["id"])
        assert d["status"] == "succeeded" and [t["name"] for t in d["tasks"]] == ["a"], d


def test_idempotency_key_returns_the_same_execution(server, quick):
    h = {"Idempotency-Key": "order-4711"}
    r1 = server.post(f"/v1/workflows/{quick}/executions", None, headers=h)
    assert r1.status == 201, r1
    r2 = server.post(f"/v1/workflows/{quick}/executions", None, headers=h)
    assert r2.status == 200, r2
    assert r2.json["id"] == r1.json["id"]
    r3 = server.post(f"/v1/workflows/{quick}/executions", None,
                     headers={"Idempotency-Key": "order-4712"})
    assert r3.status == 201 and r3.json["id"] != r1.json["id"], r3
    server.apply(wf("quick-twin", [sh("a", ["true"])]))
    r4 = server.post("/v1/workflows/quick-twin/executions", None, headers=h)
    assert r4.status == 201 and r4.json["id"] not in (r1.json["id"], r3.json["id"]), r4
    # A replay after the end still answers the same execution.
    server.wait_exec(r1.json["id"])
    r5 = server.post(f"/v1/workflows/{quick}/executions", None, headers=h)
    assert r5.status == 200 and r5.json["id"] == r1.json["id"], r5
    for x in (r1, r3, r4):
        server.wait_exec(x.json["id"])


def test_idempotency_key_reused_with_other_params_is_409(server):
    server.apply(wf("idem-params", [sh("a", ["true"])],
                    params={"day": {"type": "string", "default": "mon"},
                            "n": {"type": "number", "default": 1}}))
    url = "/v1/workflows/idem-params/executions"
    h = {"Idempotency-Key": "idem-params-1"}
    r1 = server.post(url, {"params": {"day": "tue", "n": 2}}, headers=h)
    assert r1.status == 201, r1
    # The same params (in another order) answer the same execution...
    r2 = server.post(url, {"params": {"n": 2, "day": "tue"}}, headers=h)
    assert r2.status == 200 and r2.json["id"] == r1.json["id"], r2
    # ... other params get 409 with a clear message, before and after the end.
    for body in ({"params": {"day": "wed", "n": 2}}, {"params": {"day": "tue"}}, None,
                 {"params": {"day": 5}}):
        r = server.post(url, body, headers=h)
        assert r.status == 409, (body, r)
        msg = r.error()["message"]
        assert "Idempotency-Key 'idem-params-1'" in msg and r1.json["id"] in msg, msg
        assert "other params" in msg, msg
    server.wait_exec(r1.json["id"])
    r = server.post(url, {"params": {"day": "wed", "n": 2}}, headers=h)
    assert r.status == 409, r
    r = server.post(url, {"params": {"day": "tue", "n": 2}}, headers=h)
    assert r.status == 200 and r.json["id"] == r1.json["id"], r
    # Defaults count as given: {} and the defaults written out are the same params.
    h2 = {"Idempotency-Key": "idem-params-2"}
    r = server.post(url, None, headers=h2)
    assert r.status == 201, r
    r2 = server.post(url, {"params": {"day": "mon", "n": 1}}, headers=h2)
    assert r2.status == 200 and r2.json["id"] == r.json["id"], r2
    server.wait_exec(r.json["id"])


@pytest.fixture(scope="module")
def pager(server):
    """25 finished executions of 'pager', every fifth failed."""
    server.apply(wf("pager", [sh("step", "exit $ORCH_PARAM_code")],
                    params={"code": {"type": "number", "default": 0}}))
    ids = []
    for i in range(25):
        ids.append(server.trigger("pager", {"code": 3 if i % 5 == 0 else 0})["id"])
    for i in ids:
        server.wait_exec(i)
    return ids


def all_pages(server, query, limit):
    seen, cursor, pages = [], None, 0
    while True:
        path = f"/v1/executions?{query}&limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        r = server.get(path)
        assert r.status == 200, r
        items = r.json["items"]
        assert len(items) <= limit
        seen += items
        pages += 1
        cursor = r.json["nextCursor"]
        # A cursor exactly when more items follow: a full page, then its last id.
        if cursor is not None:
            assert len(items) == limit and cursor == items[-1]["id"], r.json
        else:
            assert len(items) < limit or not server.get(
                f"/v1/executions?{query}&limit=1&cursor={items[-1]['id']}").json["items"], r.json
        if cursor is None:
            return seen, pages
        assert pages < 100


def test_list_pagination_no_duplicates_newest_first(server, pager):
    r = server.get("/v1/executions?workflow=pager")
    assert len(r.json["items"]) == 20  # the default limit
    assert r.json["nextCursor"] == r.json["items"][-1]["id"]
    items, pages = all_pages(server, "workflow=pager", 7)
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids)) == 25 and set(ids) == set(pager)
    assert pages == 4
    assert ids == sorted(ids, reverse=True)
    assert ids == list(reversed(pager))  # newest first = reverse creation order
    created = [i["createdAt"] for i in items]
    assert created == sorted(created, reverse=True)
    # A page size that divides the count: the last page is full and has no cursor.
    items5, pages5 = all_pages(server, "workflow=pager", 5)
    assert [i["id"] for i in items5] == ids and pages5 == 5
    items25, pages25 = all_pages(server, "workflow=pager", 25)
    assert [i["id"] for i in items25] == ids and pages25 == 1


def test_list_status_filters(server, pager):
    failed, _ = all_pages(server, "workflow=pager&status=failed", 100)
    assert len(failed) == 5 and all(i["status"] == "failed" for i in failed)
    both, _ = all_pages(server, "workflow=pager&status=failed,succeeded", 100)
    assert len(both) == 25
    ok, _ = all_pages(server, "workflow=pager&status=succeeded", 3)
    assert len(ok) == 20 and all(i["status"] == "succeeded" for i in ok)
    assert server.get("/v1/executions?workflow=pager&status=running").json["items"] == []
    everything = server.get("/v1/executions?limit=1000").json
    ids = [i["id"] for i in everything["items"]]
    assert ids == sorted(ids, reverse=True) and set(pager) <= set(ids)
    assert everything["nextCursor"] is None


def test_list_since_until(server, pager):
    items, _ = all_pages(server, "workflow=pager", 100)
    asc = sorted(items, key=lambda i: i["id"])
    since, until = asc[8]["createdAt"], asc[17]["createdAt"]

    def ids(query):
        got, _ = all_pages(server, "workflow=pager&" + query, 6)
        return {i["id"] for i in got}

    assert ids(f"since={q(since)}") == {i["id"] for i in asc if i["createdAt"] >= since}
    assert ids(f"until={q(until)}") == {i["id"] for i in asc if i["createdAt"] < until}
    assert ids(f"since={q(since)}&until={q(until)}") == \
        {i["id"] for i in asc if since <= i["createdAt"] < until}
    assert ids("since=2999-01-01T00:00:00Z") == set()
    assert len(ids("until=2999-01-01T00:00:00Z")) == 25


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "limit=-1",
                                   "status=bogus", "status=failed,bogus", "since=yesterday",
                                   "until=2026-13-45T00:00:00Z", "cursor=not-a-cursor"])
def test_list_bad_parameters_400(server, query):
    r = server.get(f"/v1/executions?{query}")
    assert r.status == 400, r
    assert r.json["error"]["message"]


def test_list_limit_max_1000(server):
    r = server.get("/v1/executions?limit=1000")
    assert r.status == 200


def test_execution_detail(server, quick):
    e = server.trigger(quick)
    d = server.wait_exec(e["id"])
    assert d["status"] == "succeeded" and d["error"] is None
    assert [t["name"] for t in d["tasks"]] == ["a", "b"]
    a = by_name(d, "a")
    assert a["status"] == "succeeded" and a["attempt"] == 1
    assert len(a["attempts"]) == 1
    at = a["attempts"][0]
    assert at["number"] == 1 and at["status"] == "succeeded" and at["exitCode"] == 0
    assert at["signal"] is None and isinstance(at["pid"], int) and at["node"]
    assert at["durationMs"] is not None and at["durationMs"] >= 0
    assert by_name(d, "b")["status"] == "succeeded"
    assert d["startedAt"] <= d["finishedAt"] and d["createdAt"] <= d["startedAt"]
    assert d["durationMs"] >= 0


def test_cancel_a_running_execution(server):
    server.apply(wf("sleeper", [sh("nap", "echo napping; sleep 30"),
                                sh("after", ["echo", "never"], dependsOn=["nap"])]))
    e = server.trigger("sleeper")
    d = server.wait_exec(e["id"], until=lambda d: by_name(d, "nap")["status"] == "running"
                         and by_name(d, "nap")["attempts"]
                         and by_name(d, "nap")["attempts"][0]["pid"], timeout=20)
    pid = by_name(d, "nap")["attempts"][0]["pid"]
    assert pid_alive(pid)
    # Retrying a running execution is a conflict.
    r = server.post(f"/v1/executions/{e['id']}/retry")
    assert r.status == 409, r
    t0 = time.monotonic()
    r = server.post(f"/v1/executions/{e['id']}/cancel")
    assert r.status == 200, r
    assert r.json["id"] == e["id"] and r.json["status"] in ("running", "cancelled")
    d = server.wait_exec(e["id"], timeout=20)
    assert d["status"] == "cancelled", d
    assert time.monotonic() - t0 < 12
    assert by_name(d, "nap")["status"] == "cancelled"
    assert by_name(d, "after")["status"] == "cancelled"
    assert by_name(d, "after")["attempts"] == []
    wait_for(lambda: not pid_alive(pid), timeout=5, what=f"task process {pid} to end")
    r = server.post(f"/v1/executions/{e['id']}/cancel")
    assert r.status == 409, r


def test_retry_reruns_failed_tasks_only(server, tmp_path):
    marker = tmp_path / "fail-marker"
    count = tmp_path / "a-runs"
    marker.write_text("x")
    server.apply(wf("flaky", [
        sh("a", f"echo run >> '{count}'"),
        sh("b", f"if [ -e '{marker}' ]; then echo 'marker present' >&2; exit 1; fi; echo fine",
           dependsOn=["a"]),
        sh("c", ["echo", "c done"], dependsOn=["b"]),
        sh("side", ["echo", "independent"]),
    ]))
    e = server.trigger("flaky")
    d = server.wait_exec(e["id"])
    assert d["status"] == "failed", d
    assert [by_name(d, n)["status"] for n in ("a", "b", "c", "side")] == \
        ["succeeded", "failed", "upstream_failed", "succeeded"]
    assert by_name(d, "c")["attempt"] == 0 and by_name(d, "c")["attempts"] == []

    marker.unlink()
    r = server.post(f"/v1/executions/{e['id']}/retry")
    assert r.status == 200, r
    assert r.json["id"] == e["id"] and r.json["status"] in ("queued", "running", "succeeded")
    d2 = server.wait_exec(e["id"])
    assert d2["status"] == "succeeded", d2
    a, b, c = by_name(d2, "a"), by_name(d2, "b"), by_name(d2, "c")
    # What succeeded was kept, not run again.
    assert count.read_text() == "run\n"
    assert a["attempts"] == by_name(d, "a")["attempts"]
    assert by_name(d2, "side")["attempts"] == by_name(d, "side")["attempts"]
    # The failed task's attempt numbers continue.
    assert [(x["number"], x["status"]) for x in b["attempts"]] == [(1, "failed"),
                                                                  (2, "succeeded")]
    assert b["attempt"] == 2 and b["status"] == "succeeded"
    assert c["status"] == "succeeded" and [x["number"] for x in c["attempts"]] == [1]
    assert d2["createdAt"] == d["createdAt"] and d2["error"] is None
    # A succeeded execution cannot be retried.
    r = server.post(f"/v1/executions/{e['id']}/retry")
    assert r.status == 409, r


def test_retry_keeps_the_first_start_and_shows_its_own_times(server, tmp_path):
    """A retried execution keeps startedAt (its first start) and durationMs from it; retriedAt
    is when the retry started, so the retry's own time is finishedAt - retriedAt. The log and
    `orch executions show` give both."""
    from datetime import datetime

    def ms(s):
        return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)
    marker = tmp_path / "fail-marker-2"
    marker.write_text("x")
    server.apply(wf("retimed", [
        sh("slow", ["sleep", "0.3"]),
        sh("b", f"if [ -e '{marker}' ]; then exit 1; fi", dependsOn=["slow"])]))
    e = server.trigger("retimed")
    d = server.wait_exec(e["id"])
    assert d["status"] == "failed" and d["retriedAt"] is None, d
    marker.unlink()
    time.sleep(0.3)  # a gap between the first run and the retry
    assert server.post(f"/v1/executions/{e['id']}/retry").status == 200
    d2 = server.wait_exec(e["id"])
    assert d2["status"] == "succeeded", d2
    assert d2["startedAt"] == d["startedAt"], (d, d2)
    assert d2["retriedAt"] and ms(d2["retriedAt"]) >= ms(d["finishedAt"]), d2
    assert d2["durationMs"] == ms(d2["finishedAt"]) - ms(d2["startedAt"]), d2
    own = ms(d2["finishedAt"]) - ms(d2["retriedAt"])
    assert d2["durationMs"] >= 600 and own < d2["durationMs"], (own, d2)
    (item,) = [x for x in server.get("/v1/executions?workflow=retimed").json["items"]]
    assert item["retriedAt"] == d2["retriedAt"] and item["startedAt"] == d["startedAt"], item
    # The log line follows the commit that the API already shows: wait for it.
    pattern = rf"Execution {e['id']} of 'retimed' succeeded in \S+ \(this retry: \S+\)"
    wait_for(lambda: re.search(pattern, server.all_logs()), timeout=10,
             what="the execution's log line")
    res = subprocess.run([str(ORCH), "executions", "show", e["id"]],
                         capture_output=True, text=True, timeout=30,
                         env=base_env({"ORCH_SERVER": server.url,
                                       "ORCH_API_KEY": server.admin_key}))
    assert res.returncode == 0, res
    assert re.search(rf"^Retried    {re.escape(d2['retriedAt'])}, this retry \S+$",
                     res.stdout, re.M), res.stdout


# --------------------------------------------------------------------------- logs

def test_logs(server):
    server.apply(wf("talker", [sh("a", "echo out1; echo err1 >&2; echo out2"),
                               sh("b", ["echo", "from-b"], dependsOn=["a"])]))
    e = server.trigger("talker")
    assert server.wait_exec(e["id"])["status"] == "succeeded"
    base = f"/v1/executions/{e['id']}/logs"
    items = server.get(base).json["items"]
    assert {(i["task"], i["attempt"]) for i in items} == {("a", 1), ("b", 1)}

    def text(items, task, stream):
        return "".join(i["data"] for i in items if i["task"] == task and i["stream"] == stream)

    assert text(items, "a", "stdout") == "out1\nout2\n"
    assert text(items, "a", "stderr") == "err1\n"
    assert text(items, "b", "stdout") == "from-b\n"
    order = [(i["task"], i["attempt"]) for i in items]
    assert order == sorted(order, key=lambda x: (["a", "b"].index(x[0]), x[1]))
    only_b = server.get(base + "?task=b").json["items"]
    assert only_b and all(i["task"] == "b" for i in only_b)
    assert server.get(base + "?task=b&attempt=1").json["items"] == only_b
    assert server.get(base + "?task=b&attempt=2").json["items"] == []
    assert server.get(base + "?task=nope").status == 404
    assert server.get(base + "?attempt=0").status == 400
    assert server.get(base + "?attempt=x").status == 400


def test_logs_follow_streams_until_the_end(server):
    server.apply(wf("ticker", [sh("tick", "for i in 1 2 3 4; do echo tick$i; sleep 0.3; done"),
                               sh("tock", ["echo", "tock"], dependsOn=["tick"])]))
    e = server.trigger("ticker")
    req = urllib.request.Request(
        f"{server.url}/v1/executions/{e['id']}/logs?follow=true",
        headers={"Authorization": f"Bearer {server.admin_key}"})
    got, t0 = [], time.monotonic()
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].split(";")[0] == "application/x-ndjson"
        assert r.headers["X-Request-Id"].startswith("req_")
        for line in r:
            if line.strip():
                got.append((time.monotonic() - t0, json.loads(line)))
    end = time.monotonic() - t0
    for _, item in got:
        spec().validate(item, "LogItem", "follow line")
    assert "".join(i["data"] for _, i in got if i["task"] == "tick") == \
        "tick1\ntick2\ntick3\ntick4\n"
    assert [i["data"] for _, i in got if i["task"] == "tock"] == ["tock\n"]
    # Streamed as it came, not all at the end.
    assert got[0][0] < end - 0.5, [t for t, _ in got]
    # The stream ended because the execution did.
    assert server.execution(e["id"])["status"] == "succeeded"
    # Following a finished execution gives everything and ends at once.
    r = server.get(f"/v1/executions/{e['id']}/logs?follow=true&task=tock", timeout=10)
    assert r.status == 200 and [json.loads(x)["data"] for x in r.text.splitlines()] == ["tock\n"]


# --------------------------------------------------------------------------- plumbing

def test_request_ids_unique_and_in_the_server_log(server):
    seen = set()
    for method, path, key in (("GET", "/v1/workflows", server.admin_key),
                              ("GET", "/v1/executions/ex_0000000000000000", server.admin_key),
                              ("GET", "/v1/health/scheduler", None),
                              ("POST", "/v1/workflows/nope/executions", server.admin_key)):
        r = server.request(method, path, key=key)
        rid = r.headers["X-Request-Id"]
        assert rid not in seen
        seen.add(rid)
        log = server.wait_log(rid)
        line = next(l for l in log.splitlines() if rid in l)
        assert path.split("?")[0] in line, line
        assert str(r.status) in line, line


def test_keep_alive(server):
    r1, r2, same = keepalive_pair(server.port, server.admin_key)
    assert r1[0] == r2[0] and r1[0] in (200, 503)
    assert same, "the second request did not reuse the connection"
    assert r1[1]["X-Request-Id"] != r2[1]["X-Request-Id"]


def test_key_never_in_the_log(server):
    log = server.all_logs()
    key = server.admin_key
    assert key not in log
    assert key[len(server.admin["prefix"]):] not in log  # nothing past the public prefix
    assert server.admin["prefix"] in log  # requests are logged with the key's prefix


# --------------------------------------------------------------------------- shutdown

def test_graceful_shutdown_loses_nothing(stopped_server):
    s = stopped_server
    s.grace = "10s"
    s.start()
    s.apply(wf("slow", [sh("first", "sleep 1; echo slept"),
                        sh("second", ["echo", "second"], dependsOn=["first"])]))
    e = s.trigger("slow")
    s.wait_exec(e["id"], until=lambda d: by_name(d, "first")["status"] == "running", timeout=10)
    t0 = time.monotonic()
    code = s.stop(signal.SIGTERM, timeout=15)
    took = time.monotonic() - t0
    assert code == 0, f"exit {code}:\n{s.log()[-3000:]}"
    assert took < 10, f"shutdown took {took:.1f}s with a 1 s task and a 10 s grace"
    s.start()
    d = s.wait_exec(e["id"], timeout=30)
    assert d["status"] == "succeeded", d
    first = by_name(d, "first")
    assert [(a["number"], a["status"]) for a in first["attempts"]] == [(1, "succeeded")], first
    assert by_name(d, "second")["status"] == "succeeded"
    logs = s.get(f"/v1/executions/{e['id']}/logs").json["items"]
    assert "".join(i["data"] for i in logs) == "slept\nsecond\n"
    assert s.stop() == 0
    s.assert_log_clean()


def test_second_signal_ends_the_grace(stopped_server):
    """SIGTERM starts a 60 s grace; a second SIGTERM ends it at once: the running task is
    interrupted (not lost) and runs again at the next start."""
    s = stopped_server
    s.grace = "60s"
    s.start()
    marker = s.tmp / "marker"
    marker.touch()
    s.apply(wf("long", [sh("nap", f'if [ -e "{marker}" ]; then exec sleep 60; fi; echo woke')]))
    e = s.trigger("long")
    s.wait_exec(e["id"], until=lambda d: by_name(d, "nap")["status"] == "running", timeout=10)
    os.kill(s.proc.pid, signal.SIGTERM)
    s.wait_log("Received SIGTERM: shutting down", timeout=10)
    t0 = time.monotonic()
    os.kill(s.proc.pid, signal.SIGTERM)
    s.wait_log("Received SIGTERM again: stopping running tasks now", timeout=10)
    try:
        code = s.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("the second SIGTERM did not end the 60 s grace:\n"
                             + s.log()[-3000:]) from None
    took = time.monotonic() - t0
    assert code == 0, f"exit {code}:\n{s.log()[-3000:]}"
    assert "Task 'nap' interrupted by shutdown (attempt 1)" in s.log()
    marker.unlink()
    s.start()
    d = s.wait_exec(e["id"], timeout=30)
    assert d["status"] == "succeeded", d
    nap = by_name(d, "nap")
    assert [(a["number"], a["status"]) for a in nap["attempts"]] == \
        [(1, "cancelled"), (2, "succeeded")], nap
    assert nap["attempts"][0]["error"].startswith("interrupted: orch is shutting down")
    assert s.stop() == 0
    s.assert_log_clean()
    assert took < 15, f"the server took {took:.1f}s to stop after the second SIGTERM"


def test_nodes_on_the_embedded_store(server):
    """One server on a data directory is one node; its heartbeat shows."""
    r = server.get("/v1/nodes")
    assert r.status == 200, r
    (me,) = [n for n in r.json["items"] if n["self"]]
    assert me["role"] == "server" and me["state"] == "alive", me
    assert me["pid"] == server.proc.pid and me["stoppedAt"] is None
    h = server.get("/v1/health").json["components"]
    assert h["database"]["backend"] == "sqlite" and h["database"]["pool"]["kind"] == "per-thread"
    assert h["node"]["id"] == me["id"] and h["scheduler"]["role"] == "single"
    assert server.get("/v1/nodes?x=1").status == 400


def test_nodes_of_earlier_processes_are_forgotten_on_the_embedded_store(stopped_server):
    """A restart (after kill -9, or SIGTERM) does not leave a "lost" or "stopped" entry of
    the earlier process in /v1/nodes: its process is gone, so the new one forgets it."""
    s = stopped_server
    s.start()
    first = s.proc.pid
    assert s.stop(signal.SIGKILL) == -signal.SIGKILL
    s.start()
    second = s.proc.pid
    assert s.stop() == 0
    s.start()
    items = s.get("/v1/nodes").json["items"]
    assert [(n["pid"], n["state"], n["self"]) for n in items] == \
        [(s.proc.pid, "alive", True)], (first, second, items)
    assert s.stop() == 0
