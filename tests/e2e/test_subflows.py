"""
Workflow tasks (sub-workflows) end to end: a task of type "workflow" runs the newest
registered version of another workflow as a child execution (its own id, `parentId` on the
child, `childExecutionId` on the parent's task run). Covers a forEach over children whose
declared outputs become the task's output list (read downstream), typed params, outputs by
task name when the child declares none, a failing child with retries (one child per
attempt), params the child refuses (no retry), cancelling the parent and a task timeout
(both reach the child and its process), registration errors through the API (unknown
workflow, a recursive chain, a workflow naming itself), kill -9 of the server while a child
runs, and `orch run` on the command line. Also: the depth limit of 10, the newest child
version and a deleted child, kill -9 of `orch run` then `orch resume` of the parent alone,
`orch server --register` (children registered before the parents that run them, whatever
the file names), and after a restart the restored task's logged duration and its "timeout".
"""
import json
import os
import re
import signal
import time

import pytest

from apiutil import server, sh, stopped_server, wf  # noqa: F401  (pytest fixtures)
from conftest import EXIT_INVALID, EXIT_OK, pid_alive, read_pids, task_by_name, wait_for

PY = "/usr/bin/python3"
EX_ID = r"ex_[0-9a-z]{16}"
FINAL = ("succeeded", "failed", "cancelled", "timed_out")


def py_output(code):
    """A command running Python code `code` (json, os, sys imported); argv[1:] follow."""
    return [PY, "-c", "import json, os, sys\n" + code]


def workflow_task(name, callee, **kw):
    t = {"name": name, "type": "workflow", "workflow": callee}
    t.update(kw)
    return t


def executions_of(server, workflow):
    """Every execution of `workflow` (summaries), oldest first."""
    r = server.get(f"/v1/executions?workflow={workflow}&limit=1000")
    assert r.status == 200, r
    assert r.json["nextCursor"] is None, r.json
    return list(reversed(r.json["items"]))


def instances(detail, group):
    got = [t for t in detail["tasks"] if t.get("group") == group]
    got.sort(key=lambda t: t["index"])
    assert [t["name"] for t in got] == [f"{group}[{i}]" for i in range(len(got))], \
        [t["name"] for t in got]
    return got


def assert_nothing_running(detail):
    """No task, instance or attempt of a finished execution is left running/queued/pending."""
    assert detail["status"] in FINAL, detail["status"]
    for t in detail["tasks"]:
        assert t["status"] not in ("running", "queued", "pending"), (t["name"], t["status"])
        for a in t["attempts"]:
            assert a["status"] != "running", (t["name"], a)


def register(server, definition):
    r = server.post("/v1/workflows", definition)
    assert r.status in (200, 201), r
    return r.json


# --------------------------------------------------------------------------- 1) forEach

def test_foreach_children_outputs_typed_params_and_links(server):
    """A parent fans a workflow task out over 3 files: each instance runs one child with
    {"file": item, "n": index}; "n" reaches the child as a JSON number (the child declares it
    a number and its task sees 0/1/2, not "0"). Each child's declared outputs are its
    instance's output, the group's output is their list in item order, and a downstream task
    reads that list. Every child names the parent (parentId), each instance names its child
    (childExecutionId), and the parent itself has no parent."""
    files = ["a.csv", "bb.csv", "ccc.csv"]
    register(server, wf("s1-child", [
        {"name": "work", "command": py_output(
            "n = json.loads(os.environ['ORCH_PARAM_n'])\n"
            "json.dump({'rows': len(sys.argv[1]) * 10 + n, 'ntype': type(n).__name__,"
            " 'argn': sys.argv[2]}, open(os.environ['ORCH_OUTPUT'], 'w'))")
            + ["{{ params.file }}", "{{ params.n }}"]},
    ], params={"file": {"type": "string", "required": True},
               "n": {"type": "number", "required": True}},
        outputs={"file": "{{ params.file }}", "rows": "{{ tasks.work.output.rows }}",
                 "ntype": "{{ tasks.work.output.ntype }}", "n": "{{ params.n }}"}))
    register(server, wf("s1-parent", [
        workflow_task("load", "s1-child", forEach=files,
                      params={"file": "{{ item }}", "n": "{{ index }}"}),
        {"name": "sum", "dependsOn": ["load"], "command": py_output(
            "outs = json.loads(sys.argv[1])\n"
            "json.dump({'total': sum(o['rows'] for o in outs),"
            " 'files': [o['file'] for o in outs]}, open(os.environ['ORCH_OUTPUT'], 'w'))")
            + ["{{ tasks.load.output }}"]},
    ]))
    e = server.trigger("s1-parent")
    d = server.wait_exec(e["id"], timeout=60)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    assert d["parentId"] is None
    assert d["outputs"] is None  # the parent declares no outputs
    assert_nothing_running(d)

    want = [{"file": f, "rows": len(f) * 10 + i, "ntype": "int", "n": i}
            for i, f in enumerate(files)]
    insts = instances(d, "load")
    assert len(insts) == 3
    child_ids = []
    for i, inst in enumerate(insts):
        assert (inst["status"], inst["item"], inst["index"]) == ("succeeded", files[i], i), inst
        cid = inst["childExecutionId"]
        assert cid and re.fullmatch(EX_ID, cid), inst
        child_ids.append(cid)
        assert inst["output"] == want[i], inst["output"]
        assert [a["status"] for a in inst["attempts"]] == ["succeeded"], inst["attempts"]
    assert len(set(child_ids)) == 3, child_ids
    assert task_by_name(d, "load")["output"] == want
    assert task_by_name(d, "sum")["output"] == {"total": sum(w["rows"] for w in want),
                                                 "files": files}

    for i, cid in enumerate(child_ids):
        c = server.execution(cid)
        assert c["parentId"] == e["id"], c
        assert (c["workflow"], c["status"]) == ("s1-child", "succeeded"), c
        # typed: the number param is the number i, not the text "i" (nor a boolean)
        assert c["params"] == {"file": files[i], "n": i}, c["params"]
        assert type(c["params"]["n"]) is int, c["params"]
        work = task_by_name(c, "work")
        assert work["output"] == {"rows": len(files[i]) * 10 + i, "ntype": "int",
                                  "argn": str(i)}, work
        # The child's own detail shows its workflow's outputs, as its parent received them.
        assert c["outputs"] == want[i], c["outputs"]
    # Exactly these three children exist, and the list shows their parent.
    listed = executions_of(server, "s1-child")
    assert sorted(x["id"] for x in listed) == sorted(child_ids)
    assert all(x["parentId"] == e["id"] for x in listed), listed
    assert [x["parentId"] for x in executions_of(server, "s1-parent")] == [None]
    # The children of the parent, through the list filter (with a status filter too).
    r = server.get(f"/v1/executions?parentId={e['id']}")
    assert r.status == 200, r
    assert sorted(x["id"] for x in r.json["items"]) == sorted(child_ids)
    r = server.get(f"/v1/executions?parentId={e['id']}&status=failed")
    assert r.status == 200 and r.json["items"] == [], r
    r = server.get("/v1/executions?parentId=nope")
    assert r.status == 400 and "invalid 'parentId'" in r.json["error"]["message"], r


# --------------------------------------------------------------------------- 2) no outputs

def test_child_without_outputs_gives_its_task_outputs_by_name(server):
    """A child that declares no "outputs" gives the parent's task an object of its tasks'
    outputs by name: a task's $ORCH_OUTPUT object, another's {"exitCode", "stdout"}."""
    register(server, wf("s2-child", [
        sh("a", 'printf \'{"x": 1, "who": "%s"}\' {{ params.who }} > "$ORCH_OUTPUT"'),
        sh("b", "echo hello {{ params.who }}", dependsOn=["a"]),
    ], params={"who": {"type": "string", "default": "nobody"}}))
    register(server, wf("s2-parent", [
        workflow_task("call", "s2-child", params={"who": "world"}),
        {"name": "after", "dependsOn": ["call"], "command": py_output(
            "json.dump({'got': sys.argv[1]}, open(os.environ['ORCH_OUTPUT'], 'w'))")
            + ["{{ tasks.call.output.a.who }}|{{ tasks.call.output.b.stdout }}"]},
    ]))
    e = server.trigger("s2-parent")
    d = server.wait_exec(e["id"], timeout=60)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    call = task_by_name(d, "call")
    assert call["output"] == {"a": {"x": 1, "who": "world"},
                              "b": {"exitCode": 0, "stdout": "hello world"}}, call["output"]
    assert task_by_name(d, "after")["output"] == {"got": "world|hello world"}
    c = server.execution(call["childExecutionId"])
    assert c["parentId"] == e["id"] and c["status"] == "succeeded"
    assert c["params"] == {"who": "world"}


# --------------------------------------------------------------------------- 3) failing child

def test_failing_child_fails_the_task_and_each_retry_starts_a_new_child(server):
    """A child whose task exits 3 fails; the parent's workflow task fails with "child
    execution ex_... failed: ..." naming that child, is retried once (retries: 1) with a new
    child, fails again; two children exist, both failed, both naming the parent; the task's
    childExecutionId is the second (current attempt's) child; downstream is upstream_failed."""
    register(server, wf("s3-child", [
        sh("boom", 'echo "$ORCH_EXECUTION_ID" >> "$E2E_TMP/s3-ran"; echo broken >&2; exit 3'),
    ]))
    register(server, wf("s3-parent", [
        workflow_task("call", "s3-child", retries=1,
                      retryBackoff={"initial": "100ms", "jitter": False}),
        sh("after", ["true"], dependsOn=["call"]),
    ]))
    e = server.trigger("s3-parent")
    d = server.wait_exec(e["id"], timeout=60)
    assert d["status"] == "failed", json.dumps(d, indent=1)
    assert_nothing_running(d)
    call = task_by_name(d, "call")
    assert call["status"] == "failed" and call["attempt"] == 2, call
    assert [a["status"] for a in call["attempts"]] == ["failed", "failed"], call["attempts"]
    named = []
    for a in call["attempts"]:
        m = re.match(rf"^child execution ({EX_ID}) failed: .+", a["error"] or "")
        assert m, a
        named.append(m.group(1))
    assert named[0] != named[1], named
    assert call["childExecutionId"] == named[1]
    assert re.match(rf"^child execution {named[1]} failed", call["error"] or ""), call
    assert task_by_name(d, "after")["status"] == "upstream_failed"

    children = executions_of(server, "s3-child")
    assert [c["id"] for c in children] == named, (children, named)
    for c in children:
        assert (c["status"], c["parentId"]) == ("failed", e["id"]), c
        boom = task_by_name(server.execution(c["id"]), "boom")
        assert boom["status"] == "failed" and boom["attempts"][0]["exitCode"] == 3, boom
    ran = (server.tmp / "s3-ran").read_text().split()
    assert ran == named, ran


# --------------------------------------------------------------------------- 4) bad params

def test_params_the_child_refuses_fail_the_task_without_retry(server):
    """Params are checked against the child's declared params: a string for a number param
    ("param 'n' must be a number") and a missing required param ("missing required param
    'n'") each fail the workflow task at its first attempt despite retries: 2, and no child
    execution is started."""
    register(server, wf("s4-child", [sh("use", "echo n={{ params.n }}")],
                        params={"n": {"type": "number", "required": True}}))
    register(server, wf("s4-wrong-type", [
        workflow_task("call", "s4-child", retries=2,
                      retryBackoff={"initial": "100ms", "jitter": False},
                      params={"n": "{{ params.s }}"}),
        sh("after", ["true"], dependsOn=["call"]),
    ], params={"s": {"type": "string", "default": "abc"}}))
    register(server, wf("s4-missing", [
        workflow_task("call", "s4-child", retries=2,
                      retryBackoff={"initial": "100ms", "jitter": False}, params={}),
    ]))
    for name, message in (("s4-wrong-type", "param 'n' must be a number"),
                          ("s4-missing", "missing required param 'n'")):
        e = server.trigger(name)
        d = server.wait_exec(e["id"], timeout=60)
        assert d["status"] == "failed", json.dumps(d, indent=1)
        assert_nothing_running(d)
        call = task_by_name(d, "call")
        assert call["status"] == "failed", call
        assert len(call["attempts"]) == 1 and call["attempt"] == 1, call["attempts"]
        assert call["attempts"][0]["status"] == "failed"
        assert message in (call["attempts"][0]["error"] or ""), call["attempts"][0]
        assert message in (call["error"] or ""), call
        assert call["childExecutionId"] is None, call
        assert call["availableAt"] is None, call
        if name == "s4-wrong-type":
            assert task_by_name(d, "after")["status"] == "upstream_failed"
    # Give a (wrong) retry time to show up, then: no child was ever started.
    time.sleep(0.5)
    assert executions_of(server, "s4-child") == []


# --------------------------------------------------------------------------- 5) cancel

def test_cancelling_the_parent_cancels_the_child_and_its_process(server):
    """The parent's workflow task runs a child whose task sleeps 30 s; cancelling the parent
    through the API ends both as cancelled within a few seconds, and the child's sleeping
    process is gone."""
    pid_file = server.tmp / "s5.pid"
    register(server, wf("s5-child", [
        sh("nap", 'echo $$ > "$E2E_TMP/s5.pid"; exec sleep 30'),
    ]))
    register(server, wf("s5-parent", [
        workflow_task("call", "s5-child"),
        sh("after", ["true"], dependsOn=["call"]),
    ]))
    e = server.trigger("s5-parent")
    pid = wait_for(lambda: (read_pids(pid_file) or [None])[0], timeout=20,
                   what="the child's task to write its pid")
    assert pid_alive(pid)
    cid = task_by_name(server.execution(e["id"]), "call")["childExecutionId"]
    assert cid and re.fullmatch(EX_ID, cid)
    c = server.wait_exec(cid, until=lambda c: task_by_name(c, "nap")["status"] == "running")
    assert c["status"] == "running" and c["parentId"] == e["id"]

    t0 = time.monotonic()
    r = server.post(f"/v1/executions/{e['id']}/cancel")
    assert r.status == 200, r
    d = server.wait_exec(e["id"], timeout=5)
    c = server.wait_exec(cid, timeout=5)
    wait_for(lambda: not pid_alive(pid), timeout=5, what="the child's sleep to be killed")
    took = time.monotonic() - t0
    assert took < 5, took
    assert d["status"] == "cancelled", json.dumps(d, indent=1)
    assert c["status"] == "cancelled", json.dumps(c, indent=1)
    assert task_by_name(d, "call")["status"] == "cancelled"
    assert task_by_name(d, "after")["status"] == "cancelled"
    assert task_by_name(c, "nap")["status"] == "cancelled"
    assert c["error"] == "cancelled: its parent execution ended", c["error"]
    assert_nothing_running(d)
    assert_nothing_running(c)
    assert [x["id"] for x in executions_of(server, "s5-child")] == [cid]


# --------------------------------------------------------------------------- 6) timeout

def test_task_timeout_times_out_the_task_and_cancels_the_child(server):
    """A workflow task with timeout "1s" whose child sleeps 30 s: the task ends timed_out
    after about a second, its child is cancelled and the child's process is gone."""
    pid_file = server.tmp / "s6.pid"
    register(server, wf("s6-child", [
        sh("nap", 'echo $$ > "$E2E_TMP/s6.pid"; exec sleep 30'),
    ]))
    register(server, wf("s6-parent", [
        workflow_task("call", "s6-child", timeout="1s"),
        sh("after", ["true"], dependsOn=["call"]),
    ]))
    t0 = time.monotonic()
    e = server.trigger("s6-parent")
    pid = wait_for(lambda: (read_pids(pid_file) or [None])[0], timeout=20,
                   what="the child's task to write its pid")
    d = server.wait_exec(e["id"], timeout=15)
    took = time.monotonic() - t0
    assert 0.9 < took < 10, took
    assert d["status"] in ("failed", "timed_out"), json.dumps(d, indent=1)
    assert_nothing_running(d)
    call = task_by_name(d, "call")
    assert call["status"] == "timed_out", call
    assert [a["status"] for a in call["attempts"]] == ["timed_out"], call["attempts"]
    assert re.match(r"^timed out after 1(\.0+)?s$", call["attempts"][0]["error"] or ""), call
    assert task_by_name(d, "after")["status"] == "upstream_failed"
    cid = call["childExecutionId"]
    assert cid and re.fullmatch(EX_ID, cid), call
    c = server.wait_exec(cid, timeout=5)
    assert c["status"] == "cancelled", json.dumps(c, indent=1)
    assert c["parentId"] == e["id"]
    assert c["error"] == "cancelled: its parent task timed out", c["error"]
    assert task_by_name(c, "nap")["status"] == "cancelled"
    assert_nothing_running(c)
    wait_for(lambda: not pid_alive(pid), timeout=5, what="the child's sleep to be killed")


# --------------------------------------------------------------------------- 7) registration

def problems(resp):
    assert resp.status == 422, resp
    return [(p["path"], p["message"]) for p in resp.json["error"]["details"]]


def test_registration_refuses_unknown_recursive_and_self_calling_workflows(server, tmp_path):
    """Registering through the API: a workflow task naming an unregistered workflow is a 422
    at $.tasks[0].workflow ("unknown workflow 'x' (register it first)"); with b registered
    (a noop) and a calling b, updating b to call a is refused with the chain
    ("workflow 'b' would run itself: b -> a -> b (recursion)") and b stays at version 1; a
    workflow naming itself is a definition error ("cannot run itself"), also for
    `orch validate`. Nothing refused is recorded."""
    r = server.post("/v1/workflows", wf("s7-orphan", [workflow_task("call", "s7-nope")]))
    assert problems(r) == [("$.tasks[0].workflow",
                            "unknown workflow 's7-nope' (register it first)")]
    assert server.get("/v1/workflows/s7-orphan").status == 404

    b1 = register(server, wf("s7-b", [{"name": "nothing", "type": "noop"}]))
    assert b1["version"] == 1
    a1 = register(server, wf("s7-a", [workflow_task("call-b", "s7-b")]))
    assert a1["version"] == 1
    r = server.post("/v1/workflows", wf("s7-b", [workflow_task("call-a", "s7-a")]))
    assert problems(r) == [("$.tasks[0].workflow",
                            "workflow 's7-b' would run itself: s7-b -> s7-a -> s7-b "
                            "(recursion)")]
    g = server.get("/v1/workflows/s7-b")
    assert g.status == 200 and g.json["version"] == 1, g
    # A longer chain: c -> a -> b; b calling c closes it.
    register(server, wf("s7-c", [workflow_task("call-a", "s7-a")]))
    r = server.post("/v1/workflows", wf("s7-b", [{"name": "first", "type": "noop"},
                                                  workflow_task("call-c", "s7-c")]))
    assert problems(r) == [("$.tasks[1].workflow",
                            "workflow 's7-b' would run itself: s7-b -> s7-c -> s7-a -> s7-b "
                            "(recursion)")]
    assert server.get("/v1/workflows/s7-b").json["version"] == 1

    selfish = wf("s7-self", [workflow_task("me", "s7-self")])
    r = server.post("/v1/workflows", selfish)
    assert problems(r) == [("$.tasks[0].workflow",
                            "workflow 's7-self' cannot run itself (recursion)")]
    assert server.get("/v1/workflows/s7-self").status == 404
    f = tmp_path / "self.json"
    f.write_text(json.dumps(selfish))
    res = server.orch("validate", f, "--json")
    assert res.returncode == EXIT_INVALID, (res.stdout, res.stderr)
    assert [(p["path"], p["message"]) for p in json.loads(res.stdout)["problems"]] == \
        [("$.tasks[0].workflow", "workflow 's7-self' cannot run itself (recursion)")]


# --------------------------------------------------------------------------- 8) kill -9

def test_kill_9_of_the_server_while_a_child_runs(stopped_server):
    """The server is killed with SIGKILL while the child's task sleeps; restarted on the same
    data directory, the parent waits for its child, which continues: the child's lost attempt
    is re-run (retries: 1) and the child succeeds; the parent's workflow task has one
    attempt, succeeded, with that same child (no second child), downstream runs, and no
    execution is left running."""
    srv = stopped_server
    tmp = srv.tmp
    pids = tmp / "s8.pids"
    srv.start()
    srv.apply(wf("s8-child", [
        # The first attempt (killed with the server) sleeps long enough never to finish.
        sh("work", 'echo $$ >> "$E2E_TMP/s8.pids"; if [ "$ORCH_ATTEMPT" = 1 ]; then sleep 15; '
                   'else sleep 2; fi; echo "$ORCH_ATTEMPT" >> "$E2E_TMP/s8.marker"; '
                   'printf \'{"attempt": %s}\' "$ORCH_ATTEMPT" > "$ORCH_OUTPUT"',
           retries=1, retryBackoff={"initial": "100ms", "jitter": False}),
    ], outputs={"attempt": "{{ tasks.work.output.attempt }}"}))
    srv.apply(wf("s8-parent", [
        workflow_task("call", "s8-child"),
        sh("after", 'echo {{ tasks.call.output.attempt }} > "$E2E_TMP/s8.after"',
           dependsOn=["call"]),
    ]))
    e = srv.trigger("s8-parent")
    orphan = wait_for(lambda: (read_pids(pids) or [None])[0], timeout=20,
                      what="the child's task to write its pid")
    cid = wait_for(lambda: task_by_name(srv.execution(e["id"]), "call")["childExecutionId"],
                   timeout=10, what="the child's id")

    def pid_committed():
        at = task_by_name(srv.execution(cid), "work")["attempts"]
        return at and at[-1]["pid"] == orphan
    wait_for(pid_committed, timeout=10, what="the child's task pid in the store")
    srv.kill()
    assert not (tmp / "s8.marker").exists(), "test setup: the task ended before the kill"

    srv.start()
    d = srv.wait_exec(e["id"], timeout=60)
    c = srv.wait_exec(cid, timeout=30)
    assert d["status"] == "succeeded", json.dumps(d, indent=1) + srv.all_logs()[-3000:]
    assert c["status"] == "succeeded", json.dumps(c, indent=1)
    assert c["parentId"] == e["id"]
    assert_nothing_running(d)
    assert_nothing_running(c)

    call = task_by_name(d, "call")
    assert [a["status"] for a in call["attempts"]] == ["succeeded"], call["attempts"]
    assert call["childExecutionId"] == cid
    assert call["output"] == {"attempt": 2}, call
    work = task_by_name(c, "work")
    assert [(a["number"], a["status"]) for a in work["attempts"]] == \
        [(1, "lost"), (2, "succeeded")], work["attempts"]
    assert work["attempts"][0]["pid"] == orphan
    assert task_by_name(d, "after")["status"] == "succeeded"
    assert (tmp / "s8.after").read_text() == "2\n"
    # Exactly one child, succeeded; nothing of any workflow still running or queued.
    children = executions_of(srv, "s8-child")
    assert [(x["id"], x["status"]) for x in children] == [(cid, "succeeded")]
    r = srv.get("/v1/executions?status=running,queued&limit=1000")
    assert r.status == 200 and r.json["items"] == [], r.json
    # The lost attempt's orphan was killed; only attempt 2 finished its work.
    assert not pid_alive(orphan)
    assert len(read_pids(pids)) == 2
    assert (tmp / "s8.marker").read_text() == "2\n"

    code = srv.stop()
    assert code == 0, srv.log()[-3000:]
    srv.assert_log_clean()


# --------------------------------------------------------------------------- 9) orch run

def test_orch_run_registers_the_child_then_runs_the_parent(orch, tmp_path):
    """`orch run child.json` registers the child (and runs it once); `orch run parent.json`
    then runs it as a child and succeeds with its outputs. In a fresh data directory where the
    child was never registered, `orch run parent.json` exits with the invalid-workflow code
    and "unknown workflow 'x' (register it first)", starting nothing."""
    child = orch.workflow(wf("s9-child", [
        sh("greet", 'printf \'{"msg": "hi %s"}\' {{ params.who }} > "$ORCH_OUTPUT"'),
    ], params={"who": {"type": "string", "default": "nobody"}},
        outputs={"greeting": "{{ tasks.greet.output.msg }}"}), "child.json")
    parent = orch.workflow(wf("s9-parent", [
        workflow_task("call", "s9-child", params={"who": "{{ params.name }}"}),
        sh("after", "echo got {{ tasks.call.output.greeting }}", dependsOn=["call"]),
    ], params={"name": {"type": "string", "default": "bob"}}), "parent.json")

    # Fresh data directory: the child is unknown.
    fresh = tmp_path / "fresh-data"
    res = orch.run("run", parent, "--data-dir", fresh, data_dir=False)
    assert res.returncode == EXIT_INVALID, (res.stdout, res.stderr)
    assert "unknown workflow 's9-child' (register it first)" in res.stderr, res.stderr
    assert "$.tasks[0].workflow" in res.stderr, res.stderr
    res = orch.run("executions", "list", "--json", "--data-dir", fresh, data_dir=False)
    if res.returncode == EXIT_OK:
        assert json.loads(res.stdout)["items"] == [], res.stdout

    res, j = orch.run_json("run", child)
    assert res.returncode == EXIT_OK, res.stderr
    assert j["status"] == "succeeded" and j["parentId"] is None
    res, j = orch.run_json("run", parent, "--param", "name=alice")
    assert res.returncode == EXIT_OK, res.stderr
    assert j["status"] == "succeeded", j
    call = task_by_name(j, "call")
    assert call["output"] == {"greeting": "hi alice"}, call
    assert task_by_name(j, "after")["output"] == {"exitCode": 0, "stdout": "got hi alice"}
    cid = call["childExecutionId"]
    assert cid and re.fullmatch(EX_ID, cid), call
    c = orch.show(cid)
    assert (c["workflow"], c["status"], c["parentId"]) == ("s9-child", "succeeded", j["id"]), c
    assert c["params"] == {"who": "alice"}
    res, lst = orch.run_json("executions", "list")
    assert res.returncode == EXIT_OK
    assert sorted(x["workflow"] for x in lst["items"]) == ["s9-child", "s9-child", "s9-parent"]


# --------------------------------------------------------------------------- more

def test_depth_limit_stops_nesting_beyond_ten(server):
    """A chain of 12 workflows (each calls the next; the last is a noop): started one below the
    top, 11 executions nest (depths 0..10) and succeed; started at the top, the execution at
    depth 10 cannot start its child: its task fails with "child executions are nested more
    than 10 deep" at its first attempt (despite retries: 1), and the failure climbs up
    through every parent; no execution of the last workflow is started by that run."""
    n = 12
    register(server, wf(f"s10-d{n - 1}", [{"name": "end", "type": "noop"}]))
    for i in range(n - 2, -1, -1):
        register(server, wf(f"s10-d{i}", [workflow_task(
            "down", f"s10-d{i + 1}", **({"retries": 1} if i == n - 2 else {}))]))

    ok = server.trigger("s10-d1")
    d = server.wait_exec(ok["id"], timeout=60)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    assert len(executions_of(server, f"s10-d{n - 1}")) == 1

    top = server.trigger("s10-d0")
    d = server.wait_exec(top["id"], timeout=60)
    assert d["status"] == "failed", json.dumps(d, indent=1)
    chain, parent = [d], None
    while True:
        cur = chain[-1]
        assert cur["parentId"] == parent, (cur["id"], cur["parentId"], parent)
        assert cur["status"] == "failed", cur
        cid = task_by_name(cur, "down")["childExecutionId"]
        if cid is None:
            break
        parent = cur["id"]
        chain.append(server.execution(cid))
    assert [c["workflow"] for c in chain] == [f"s10-d{i}" for i in range(n - 1)]
    deepest = task_by_name(chain[-1], "down")
    assert deepest["status"] == "failed" and len(deepest["attempts"]) == 1, deepest
    assert "child executions are nested more than 10 deep" in (deepest["error"] or ""), deepest
    for upper, lower in zip(chain, chain[1:]):
        err = task_by_name(upper, "down")["error"] or ""
        assert err.startswith(f"child execution {lower['id']} failed"), (upper["id"], err)
    assert len(executions_of(server, f"s10-d{n - 1}")) == 1  # still only the first run's


def test_newest_child_version_runs_and_a_deleted_child_fails_without_retry(server):
    """The task runs the newest version of the child (registered after the parent); once the
    child workflow is deleted, the task fails at once ("cannot start workflow ...") without
    retries and starts nothing; registering a parent that calls it is then refused."""
    register(server, wf("s11-child", [sh("a", "echo v1")]))
    register(server, wf("s11-parent", [
        workflow_task("call", "s11-child", retries=2,
                      retryBackoff={"initial": "100ms", "jitter": False})]))
    register(server, wf("s11-child", [sh("a", "echo v2")]))
    e = server.trigger("s11-parent")
    d = server.wait_exec(e["id"], timeout=60)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    call = task_by_name(d, "call")
    assert call["output"] == {"a": {"exitCode": 0, "stdout": "v2"}}, call
    assert server.execution(call["childExecutionId"])["workflowVersion"] == 2

    assert server.delete("/v1/workflows/s11-child").status == 409  # s11-parent calls it
    assert server.delete("/v1/workflows/s11-child?force=true").status == 204
    e = server.trigger("s11-parent")
    d = server.wait_exec(e["id"], timeout=60)
    assert d["status"] == "failed", json.dumps(d, indent=1)
    call = task_by_name(d, "call")
    assert len(call["attempts"]) == 1 and call["childExecutionId"] is None, call
    assert (call["error"] or "").startswith("cannot start workflow 's11-child'"), call
    time.sleep(0.5)
    assert len(executions_of(server, "s11-child")) == 1
    r = server.post("/v1/workflows", wf("s11-parent2", [workflow_task("call", "s11-child")]))
    assert problems(r) == [("$.tasks[0].workflow",
                            "unknown workflow 's11-child' (register it first)")]


def test_deleting_a_called_workflow_is_refused_with_its_callers(server):
    """DELETE of a workflow that the newest version of other workflows calls is a 409 naming
    them (details: one {workflow, task} per calling task); an older version calling it, or a
    definition that only mentions its name, does not count; ?force=true deletes it anyway."""
    register(server, wf("dc-child", [sh("a", ["true"])]))
    register(server, wf("dc-p1", [workflow_task("one", "dc-child"),
                                  workflow_task("two", "dc-child")]))
    register(server, wf("dc-p2", [workflow_task("call", "dc-child")]))
    register(server, wf("dc-old", [workflow_task("call", "dc-child")]))
    register(server, wf("dc-old", [sh("a", ["echo", "dc-child"])]))  # no longer calls it
    r = server.delete("/v1/workflows/dc-child")
    assert r.status == 409, r
    err = r.error()
    assert err["code"] == "conflict", err
    assert err["message"] == ("workflow 'dc-child' is called as a sub-workflow by 'dc-p1', "
                              "'dc-p2' (delete or change them first, or add ?force=true to "
                              "delete it anyway)"), err
    assert err["details"] == [{"workflow": "dc-p1", "task": "one"},
                              {"workflow": "dc-p1", "task": "two"},
                              {"workflow": "dc-p2", "task": "call"}], err
    assert server.get("/v1/workflows/dc-child").status == 200  # still there
    assert server.delete("/v1/workflows/dc-child?force=maybe").status == 400
    assert server.delete("/v1/workflows/no-such-wf").status == 404
    # Once no caller is left, a plain DELETE works.
    assert server.delete("/v1/workflows/dc-p2").status == 204
    r = server.delete("/v1/workflows/dc-child")
    assert r.status == 409 and "by 'dc-p1' (delete or change it first" in r.error()["message"]
    register(server, wf("dc-p1", [sh("a", ["true"])]))
    assert server.delete("/v1/workflows/dc-child").status == 204
    # ?force=true deletes a called one.
    register(server, wf("dc-child2", [sh("a", ["true"])]))
    register(server, wf("dc-p3", [workflow_task("call", "dc-child2")]))
    assert server.delete("/v1/workflows/dc-child2?force=false").status == 409
    assert server.delete("/v1/workflows/dc-child2?force=true").status == 204
    assert server.get("/v1/workflows/dc-child2").status == 404
    for name in ("dc-p1", "dc-p3", "dc-old"):
        assert server.delete(f"/v1/workflows/{name}").status == 204


def crash_orch_run_in_child(orch, timeout=None):
    """`orch run` of a parent whose child sleeps 3 s (a sleep task after a marker task) is
    killed with SIGKILL while the sleep runs. Returns (parent id, child id)."""
    child = orch.workflow(wf("s12-child", [
        sh("mark", 'echo $$ > "$E2E_TMP/s12.pid"'),
        {"name": "nap", "type": "sleep", "duration": "3s", "dependsOn": ["mark"]},
        sh("done", 'echo "{\\"ok\\": true}" > "$ORCH_OUTPUT"', dependsOn=["nap"]),
    ], outputs={"ok": "{{ tasks.done.output.ok }}"}), "child.json")
    call = workflow_task("call", "s12-child")
    if timeout:
        call["timeout"] = timeout
    parent = orch.workflow(wf("s12-parent", [
        call, sh("after", "echo after {{ tasks.call.output.ok }}", dependsOn=["call"]),
    ]), "parent.json")
    assert orch.run("run", child).returncode == EXIT_OK
    (orch.tmp / "s12.pid").unlink()
    p = orch.spawn("run", parent)
    wait_for(lambda: (orch.tmp / "s12.pid").exists(), timeout=20, what="the child's first task")

    def ids():
        res, j = orch.run_json("executions", "list")
        got = {x["workflow"]: x for x in j["items"] if x["parentId"] or
               x["workflow"] == "s12-parent"}
        return got if len(got) == 2 else None
    got = wait_for(ids, timeout=10, what="the parent and its child")
    pid_, cid = got["s12-parent"]["id"], got["s12-child"]["id"]
    assert got["s12-child"]["parentId"] == pid_
    wait_for(lambda: task_by_name(orch.show(cid), "nap")["status"] == "running", timeout=10,
             what="the child's sleep")
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=10) == -signal.SIGKILL
    return pid_, cid


def test_kill_9_of_orch_run_then_resume_of_the_parent(orch):
    """`orch run` is killed while the child sleeps; `orch resume PARENT` (the parent alone)
    takes the child too: the child continues (its sleep is not restarted, no second child),
    the parent's task succeeds with the child's outputs at its one attempt, and nothing is
    left to resume."""
    pid_, cid = crash_orch_run_in_child(orch)
    j = orch.show(pid_)
    assert j["status"] == "running" and task_by_name(j, "call")["status"] == "running"
    assert task_by_name(j, "call")["childExecutionId"] == cid
    t0 = time.monotonic()
    res = orch.run("resume", pid_, timeout=60)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_OK, res.stderr
    assert took < 10, took
    assert re.search(rf"^Execution {pid_} succeeded in ", res.stdout, re.M), res.stdout
    d, c = orch.show(pid_), orch.show(cid)
    assert (d["status"], c["status"]) == ("succeeded", "succeeded"), (d, c)
    assert_nothing_running(d)
    assert_nothing_running(c)
    call = task_by_name(d, "call")
    assert [a["status"] for a in call["attempts"]] == ["succeeded"], call["attempts"]
    assert call["childExecutionId"] == cid and call["output"] == {"ok": True}, call
    assert task_by_name(d, "after")["output"] == {"exitCode": 0, "stdout": "after true"}
    assert [a["status"] for a in task_by_name(c, "nap")["attempts"]] == ["succeeded"]
    res, lst = orch.run_json("executions", "list")
    kids = [x for x in lst["items"] if x["parentId"] == pid_]
    assert [x["id"] for x in kids] == [cid], lst
    assert orch.run("resume").stdout == "No unfinished executions to resume.\n"


def test_restored_workflow_task_reports_its_real_duration(orch):
    """After kill -9 of `orch run` and `orch resume`, the log line of the parent's workflow
    task says how long it took (a few seconds), as the stored attempt does."""
    pid_, cid = crash_orch_run_in_child(orch)
    res = orch.run("resume", timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    m = re.search(r"Task 'call' succeeded in (\S+) \(attempt 1\)", res.stderr)
    assert m, res.stderr
    dur = m.group(1)
    assert re.fullmatch(r"\d+(\.\d+)?m?s", dur), f"'call' logged as taking {dur}:\n{res.stderr}"
    assert task_by_name(orch.show(pid_), "call")["attempts"][0]["durationMs"] < 60000


def test_task_timeout_still_holds_after_a_server_restart(stopped_server):
    """A workflow task with timeout "3s" whose child sleeps 12 s; the server is killed with
    SIGKILL a moment after the child starts and restarted: the task still times out (within a
    few seconds of the restart), and its child is cancelled."""
    srv = stopped_server
    srv.start()
    srv.apply(wf("s13-child", [
        sh("mark", 'echo $$ > "$E2E_TMP/s13.pid"'),
        {"name": "nap", "type": "sleep", "duration": "12s", "dependsOn": ["mark"]},
    ]))
    srv.apply(wf("s13-parent", [workflow_task("call", "s13-child", timeout="3s")]))
    e = srv.trigger("s13-parent")
    wait_for(lambda: read_pids(srv.tmp / "s13.pid"), timeout=20, what="the child's first task")
    cid = wait_for(lambda: task_by_name(srv.execution(e["id"]), "call")["childExecutionId"],
                   timeout=10, what="the child's id")
    wait_for(lambda: task_by_name(srv.execution(cid), "nap")["status"] == "running",
             timeout=10, what="the child's sleep")
    srv.kill()
    srv.start()
    t0 = time.monotonic()
    d = srv.wait_exec(e["id"], timeout=30)
    took = time.monotonic() - t0
    call = task_by_name(d, "call")
    assert call["status"] == "timed_out", (took, json.dumps(call, indent=1))
    assert took < 8, took
    c = srv.wait_exec(cid, timeout=5)
    assert c["status"] == "cancelled", json.dumps(c, indent=1)
    code = srv.stop()
    assert code == 0, srv.log()[-3000:]


def test_server_register_loads_children_first_and_refuses_unknown(stopped_server, tmp_path):
    """`orch server --register DIR` registers a directory where the child's file sorts after
    its parent's (children are registered first), and the parent then runs the child through
    the API; a directory holding a
    parent whose child is registered nowhere stops the server at start-up with the
    invalid-workflow exit code and "unknown workflow 'x' (register it first)"."""
    good = tmp_path / "good"
    good.mkdir()
    (good / "z-child.json").write_text(json.dumps(wf("s14-child", [
        sh("hi", 'echo "{\\"x\\": 7}" > "$ORCH_OUTPUT"')],
        outputs={"x": "{{ tasks.hi.output.x }}"})))
    (good / "b-parent.json").write_text(json.dumps(wf("s14-parent", [
        workflow_task("call", "s14-child")])))
    srv = stopped_server
    srv.start(extra=["--register", str(good)])
    e = srv.trigger("s14-parent")
    d = srv.wait_exec(e["id"], timeout=60)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    assert task_by_name(d, "call")["output"] == {"x": 7}
    assert srv.stop() == 0
    srv.assert_log_clean()

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "parent.json").write_text(json.dumps(wf("s14-orphan", [
        workflow_task("call", "s14-nowhere")])))
    res = srv.orch("server", "--listen", "127.0.0.1:0", "--data-dir", srv.data_dir,
                   "--register", bad, timeout=30)
    assert res.returncode == EXIT_INVALID, (res.returncode, res.stderr)
    assert "$.tasks[0].workflow: unknown workflow 's14-nowhere' (register it first)" in \
        res.stderr, res.stderr
    for m in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert m not in res.stderr, res.stderr


def test_resumed_parent_waits_for_a_child_another_process_runs(orch):
    """After kill -9 of `orch run`, the child is resumed by one `orch resume` process and
    the parent by another: the parent cannot take the child (another process holds it), so
    it keeps looking at it in the store, and ends with it instead of waiting forever."""
    pid_, cid = crash_orch_run_in_child(orch)
    kid = orch.spawn("resume", cid)

    def kid_holds_it():
        kid.err_file.seek(0)
        return b"resumed" in kid.err_file.read()
    wait_for(kid_holds_it, timeout=20, what="the child's resume to take it")
    res = orch.run("resume", pid_, timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    assert orch.finish(kid, timeout=30).returncode == EXIT_OK
    d = orch.show(pid_)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    assert task_by_name(d, "call")["output"] == {"ok": True}
    assert orch.show(cid)["status"] == "succeeded"
