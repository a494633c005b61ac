"""
The CLI as a REST client of `orch server` (--server URL / ORCH_SERVER, --api-key KEY /
ORCH_API_KEY): workflows apply|list|show|delete, trigger (--param, --idempotency-key,
--wait), executions list|show, logs (and --follow), cancel, retry and health print the same
tables as the local mode and the server's JSON with --json; HTTP errors print the server's
message and map to exit codes (401/403 -> 7, 404 -> 6, 422 -> 3, 409 -> 1, connection
refused -> 70). Without a server the commands keep working on the local data directory,
and the server-only ones say that a server is needed.
"""
import json
import re
import subprocess
import time

import pytest

from apiutil import (EXIT_AUTH, ORCH, free_port, server, sh, spec, unknown_key,  # noqa: F401
                     wf)
from conftest import (EXIT_FAILED, EXIT_INTERNAL, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK,
                      EXIT_USAGE, SANITIZER_MARKERS, base_env)


def run(server, *args, key="admin", url="server", env=None, timeout=60):
    """orch with ORCH_SERVER/ORCH_API_KEY set (url=None / key=None leave them out)."""
    e = base_env({"E2E_TMP": str(server.tmp)})
    if url == "server":
        url = server.url
    if url:
        e["ORCH_SERVER"] = url
    if key == "admin":
        key = server.admin_key
    if key:
        e["ORCH_API_KEY"] = key
    e.update(env or {})
    res = subprocess.run([str(ORCH)] + [str(a) for a in args], capture_output=True, text=True,
                         errors="replace", timeout=timeout, env=e, cwd=server.tmp,
                         stdin=subprocess.DEVNULL)
    assert res.returncode >= 0, f"orch died by signal {-res.returncode}: {res.stderr}"
    for m in SANITIZER_MARKERS:
        assert m not in res.stderr, res.stderr
    return res


def local(server, *args):
    """The same command on the server's data directory, without a server."""
    return run(server, *args, "--data-dir", server.data_dir, url=None, key=None)


def write(tmp, name, definition):
    p = tmp / name
    p.write_text(json.dumps(definition, indent=2))
    return p


def exec_id(stdout):
    m = re.search(r"^Execution (ex_[0-9a-z]{16}) ", stdout, re.M)
    assert m, stdout
    return m.group(1)


# --------------------------------------------------------------------------- workflows

def test_workflows_apply_list_show_delete(server, tmp_path):
    f = write(tmp_path, "cl.json", wf("cl-hello", [sh("a", ["echo", "hi"]),
                                                   sh("b", ["echo", "there"], dependsOn=["a"])],
                                      description="client test"))
    res = run(server, "workflows", "apply", f)
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout == "Workflow 'cl-hello' version 1 recorded (2 tasks)\n"
    res = run(server, "workflows", "apply", f)
    assert res.returncode == EXIT_OK and "unchanged" in res.stdout, res
    res = run(server, "workflows", "apply", f, "--json")
    spec().validate(json.loads(res.stdout), "Workflow")

    res = run(server, "workflows", "list")
    assert res.returncode == EXIT_OK
    assert res.stdout.splitlines()[0].split() == ["NAME", "VERSION", "TASKS", "CREATED",
                                                  "DESCRIPTION"]
    row = next(l for l in res.stdout.splitlines() if l.startswith("cl-hello "))
    assert row.split()[1:3] == ["1", "2"] and row.endswith("client test")
    res = run(server, "workflows", "list", "--json")
    assert json.loads(res.stdout) == server.get("/v1/workflows").json

    res = run(server, "workflows", "show", "cl-hello")
    assert res.returncode == EXIT_OK
    assert res.stdout.startswith("Workflow     cl-hello\nVersion      1\n"), res.stdout
    assert json.loads(res.stdout[res.stdout.index("\n{") + 1:]) == json.loads(f.read_text())
    res = run(server, "workflows", "show", "cl-hello", "--json", "--version", "1")
    assert json.loads(res.stdout) == server.get("/v1/workflows/cl-hello").json

    res = run(server, "workflows", "delete", "cl-hello")
    assert res.returncode == EXIT_OK and "deleted" in res.stdout
    res = run(server, "workflows", "show", "cl-hello")
    assert res.returncode == EXIT_NOT_FOUND and res.stderr.startswith("orch: "), res
    res = run(server, "workflows", "delete", "cl-hello")
    assert res.returncode == EXIT_NOT_FOUND


def test_workflows_delete_of_a_called_workflow_needs_force(server):
    server.apply(wf("cl-child", [sh("a", ["true"])]))
    server.apply(wf("cl-caller", [{"name": "c", "type": "workflow", "workflow": "cl-child"}]))
    res = run(server, "workflows", "delete", "cl-child")
    assert res.returncode == EXIT_FAILED, res
    assert "called as a sub-workflow by 'cl-caller'" in res.stderr, res.stderr
    res = run(server, "workflows", "delete", "cl-child", "--force")
    assert res.returncode == EXIT_OK and "deleted" in res.stdout, res
    assert run(server, "workflows", "delete", "cl-caller").returncode == EXIT_OK


def test_apply_invalid_prints_every_problem(server, tmp_path):
    bad = wf("cl-bad", [sh("a", ["true"]), sh("b", ["true"], dependsOn=["nope"]),
                        {"name": "c", "command": ["true"], "retries": "x"}])
    res = run(server, "workflows", "apply", write(tmp_path, "bad.json", bad))
    assert res.returncode == EXIT_INVALID, res
    assert "  $.tasks[1].dependsOn[0]: " in res.stderr
    assert "  $.tasks[2].retries: " in res.stderr
    res = run(server, "workflows", "apply", tmp_path / "missing.json")
    assert res.returncode == EXIT_NOT_FOUND


# --------------------------------------------------------------------------- executions

@pytest.fixture(scope="module")
def runs(server, tmp_path_factory):
    """A succeeded and a failed execution of 'cl-greet', triggered with the CLI."""
    tmp = tmp_path_factory.mktemp("cl")
    marker = tmp / "marker"
    marker.write_text("x")
    server.apply(wf("cl-greet", [
        sh("hello", "echo \"hello $ORCH_PARAM_who\"; echo 'to stderr' >&2"),
        sh("check", f"[ ! -e '{marker}' ] || {{ echo 'marker' >&2; exit 4; }}",
           dependsOn=["hello"]),
    ], params={"who": {"type": "string", "required": True}}))
    ok = run(server, "trigger", "cl-greet", "--param", "who=bob", "--wait")
    marker_ok = ok  # the marker exists: 'check' fails
    assert marker_ok.returncode == EXIT_FAILED, (ok.stdout, ok.stderr)
    failed = exec_id(ok.stdout)
    marker.unlink()
    res = run(server, "trigger", "cl-greet", "--param", "who=ann", "--wait")
    assert res.returncode == EXIT_OK, (res.stdout, res.stderr)
    succeeded = exec_id(res.stdout)
    return {"ok": succeeded, "failed": failed, "marker": marker, "trigger_out": res.stdout}


def test_trigger_wait_prints_the_run_summary(server, runs):
    out = runs["trigger_out"]
    assert re.search(r"^TASK\s+STATUS\s+ATTEMPTS\s+DURATION\s+ERROR$", out, re.M), out
    assert re.search(rf"^Execution {runs['ok']} succeeded in \S+ \(2 succeeded\)$", out, re.M)


def test_trigger_without_wait_and_idempotency(server):
    res = run(server, "trigger", "cl-greet", "--param", "who=x", "--idempotency-key", "k-1")
    assert res.returncode == EXIT_OK, res
    first = exec_id(res.stdout)
    res = run(server, "trigger", "cl-greet", "--param", "who=x", "--idempotency-key", "k-1",
              "--json")
    assert res.returncode == EXIT_OK
    j = json.loads(res.stdout)
    spec().validate(j, "ExecutionSummary")
    assert j["id"] == first
    server.wait_exec(first)


def test_trigger_errors(server):
    res = run(server, "trigger", "cl-greet")  # 'who' is required
    assert res.returncode == EXIT_INVALID, res
    assert res.stderr.startswith("orch: ")
    res = run(server, "trigger", "no-such-workflow")
    assert res.returncode == EXIT_NOT_FOUND, res
    res = run(server, "trigger", "cl-greet", "--param", "novalue")
    assert res.returncode == EXIT_USAGE


def test_executions_list_same_as_local(server, runs):
    for args in (["--status", "failed", "--limit", "10"], ["--workflow", "cl-greet"],
                 ["--limit", "1"], ["--status", "succeeded,failed", "--limit", "3"],
                 ["--workflow", "cl-greet", "--since", "2000-01-01T00:00:00Z"],
                 ["--until", "2000-01-01"]):
        remote = run(server, "executions", "list", *args)
        loc = local(server, "executions", "list", *args)
        assert remote.returncode == loc.returncode == EXIT_OK, (remote.stderr, loc.stderr)
        rj = json.loads(run(server, "executions", "list", *args, "--json").stdout)
        lj = json.loads(local(server, "executions", "list", *args, "--json").stdout)
        # The server gives a cursor only when more executions follow; the local mode also
        # on a last page that is exactly full. Apart from that, the same.
        if rj["nextCursor"] is None and lj["nextCursor"] is not None:
            lj["nextCursor"] = None
            loc.stdout = re.sub(r"^\(more: --cursor ex_\w+\)\n", "", loc.stdout, flags=re.M)
        assert remote.stdout == loc.stdout
        assert rj == lj
    res = run(server, "executions", "list", "--status", "failed", "--limit", "10")
    assert runs["failed"] in res.stdout and runs["ok"] not in res.stdout
    res = run(server, "executions", "list", "--status", "bogus")
    assert res.returncode == EXIT_USAGE


def test_executions_list_pages_with_cursor(server, runs):
    res = run(server, "executions", "list", "--workflow", "cl-greet", "--limit", "1")
    m = re.search(r"^\(more: --cursor (ex_\w+)\)$", res.stdout, re.M)
    assert m, res.stdout
    res2 = run(server, "executions", "list", "--workflow", "cl-greet", "--limit", "1",
               "--cursor", m.group(1))
    assert res2.returncode == EXIT_OK and m.group(1) not in res2.stdout.split("(more")[0]


def test_executions_show_same_as_local(server, runs):
    for which in ("ok", "failed"):
        remote = run(server, "executions", "show", runs[which])
        loc = local(server, "executions", "show", runs[which])
        assert remote.returncode == loc.returncode == EXIT_OK
        assert remote.stdout == loc.stdout
        rj = json.loads(run(server, "executions", "show", runs[which], "--json").stdout)
        assert rj == json.loads(local(server, "executions", "show", runs[which], "--json").stdout)
        assert rj == server.execution(runs[which])
    res = run(server, "executions", "show", "ex_0000000000000000")
    assert res.returncode == EXIT_NOT_FOUND and res.stderr.startswith("orch: ")


def test_executions_show_fanout_child_and_outputs_same_as_local(server):
    """Local and remote results go through one printer: a fan-out's instances indented under
    their group with the succeeded ones past ten summed up, a workflow task's child
    execution, the child's parent and the workflow's outputs read the same both ways."""
    server.apply(wf("cl-kid", [{"name": "a", "type": "noop"}],
                    params={"x": {"type": "string", "required": True}},
                    outputs={"v": "{{ params.x }}"}))
    server.apply(wf("cl-fan", [
        sh("many", ["true"], forEach=list(range(12))),
        {"name": "call", "type": "workflow", "workflow": "cl-kid", "params": {"x": "hi"}},
    ], outputs={"got": "{{ tasks.call.output.v }}"}))
    res = run(server, "trigger", "cl-fan", "--wait")
    assert res.returncode == EXIT_OK, (res.stdout, res.stderr)
    parent = exec_id(res.stdout)
    d = server.execution(parent)
    (call,) = [t for t in d["tasks"] if t["name"] == "call"]
    child = call["childExecutionId"]
    assert child, call
    remote = run(server, "executions", "show", parent)
    loc = local(server, "executions", "show", parent)
    assert remote.returncode == loc.returncode == EXIT_OK, (remote.stderr, loc.stderr)
    assert remote.stdout == loc.stdout
    out = remote.stdout
    assert re.search(r"^  many\[0\]\s+succeeded\s+1\s+exit 0\s", out, re.M), out
    assert re.search(r"^  \.\.\. 2 more succeeded$", out, re.M), out
    assert re.search(rf"^\s+child execution {child}$", out, re.M), out
    assert re.search(r'^Workflow outputs: \{"got":"hi"\}$', out, re.M), out
    remote = run(server, "executions", "show", child)
    loc = local(server, "executions", "show", child)
    assert remote.returncode == loc.returncode == EXIT_OK, (remote.stderr, loc.stderr)
    assert remote.stdout == loc.stdout
    assert re.search(rf"^Parent     {parent}$", remote.stdout, re.M), remote.stdout


def test_logs_same_as_local(server, runs):
    for args in ([runs["ok"]], [runs["ok"], "hello"], [runs["failed"], "check"],
                 [runs["ok"], "--attempt", "1"]):
        remote = run(server, "logs", *args)
        loc = local(server, "logs", *args)
        assert remote.returncode == loc.returncode == EXIT_OK, (remote.stderr, loc.stderr)
        assert remote.stdout == loc.stdout
    rj = [json.loads(l) for l in run(server, "logs", runs["ok"], "--json").stdout.splitlines()]
    lj = [json.loads(l) for l in local(server, "logs", runs["ok"], "--json").stdout.splitlines()]
    assert [{k: v for k, v in x.items() if k != "seq"} for x in rj] == lj
    assert "hello ann\n" in run(server, "logs", runs["ok"], "hello").stdout
    res = run(server, "logs", runs["ok"], "nope")
    assert res.returncode == EXIT_NOT_FOUND


def test_logs_follow(server):
    server.apply(wf("cl-ticker", [sh("tick", "for i in 1 2 3; do echo tick$i; sleep 0.3; done")]))
    e = server.trigger("cl-ticker")
    t0 = time.monotonic()
    res = run(server, "logs", e["id"], "--follow")
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout == "==> tick (attempt 1) <==\ntick1\ntick2\ntick3\n", res.stdout
    assert time.monotonic() - t0 >= 0.5
    assert server.execution(e["id"])["status"] == "succeeded"
    res = run(server, "logs", e["id"], "--follow", "--json")
    lines = [json.loads(l) for l in res.stdout.splitlines()]
    for it in lines:
        spec().validate(it, "LogItem")
    assert "".join(i["data"] for i in lines) == "tick1\ntick2\ntick3\n"


def test_cancel_and_retry(server, runs):
    server.apply(wf("cl-sleeper", [sh("nap", "sleep 30")]))
    e = server.trigger("cl-sleeper")
    server.wait_exec(e["id"], until=lambda d: d["tasks"][0]["status"] == "running")
    res = run(server, "retry", e["id"])
    assert res.returncode == EXIT_FAILED and res.stderr.startswith("orch: "), res
    res = run(server, "cancel", e["id"])
    assert res.returncode == EXIT_OK, res.stderr
    assert f"Execution {e['id']} cancel requested" in res.stdout
    assert server.wait_exec(e["id"], timeout=20)["status"] == "cancelled"
    res = run(server, "cancel", e["id"])
    assert res.returncode == EXIT_FAILED, res
    res = run(server, "cancel", "ex_0000000000000000")
    assert res.returncode == EXIT_NOT_FOUND

    # The failed run of cl-greet: its marker is gone, so a retry succeeds.
    res = run(server, "retry", runs["failed"], "--wait")
    assert res.returncode == EXIT_OK, (res.stdout, res.stderr)
    assert re.search(rf"^Execution {runs['failed']} succeeded in ", res.stdout, re.M)
    d = server.execution(runs["failed"])
    hello = next(t for t in d["tasks"] if t["name"] == "hello")
    check = next(t for t in d["tasks"] if t["name"] == "check")
    assert len(hello["attempts"]) == 1 and [a["number"] for a in check["attempts"]] == [1, 2]
    res = run(server, "retry", runs["failed"])
    assert res.returncode == EXIT_FAILED


def test_health(server):
    res = run(server, "health")
    assert res.returncode == EXIT_OK, res
    for comp in ("database", "scheduler", "workers", "queue", "executions", "memory", "disk"):
        assert re.search(rf"^{comp}\s", res.stdout, re.M), res.stdout
    res = run(server, "health", "--json")
    spec().validate(json.loads(res.stdout), "Health")


# --------------------------------------------------------------------------- errors

def test_auth_errors_exit_7(server):
    res = run(server, "executions", "list", key=unknown_key())
    assert res.returncode == EXIT_AUTH, res
    assert re.search(r"^orch: .*unknown", res.stderr, re.I), res.stderr
    res = run(server, "workflows", "list", key=None)
    assert res.returncode == EXIT_AUTH and re.search(r"missing", res.stderr, re.I), res
    k = server.keys_create("cl-reader", "read")
    res = run(server, "trigger", "cl-greet", "--param", "who=z", key=k["key"])
    assert res.returncode == EXIT_AUTH and "write" in res.stderr, res
    res = run(server, "executions", "list", key=k["key"])
    assert res.returncode == EXIT_OK


def test_connection_refused_exit_70(server):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for args in (["executions", "list"], ["health"], ["trigger", "x"], ["logs", "ex_1"]):
        res = run(server, *args, url=url)
        assert res.returncode == EXIT_INTERNAL, (args, res)
        assert res.stderr == f"orch: cannot connect to {url}: Connection refused\n", res.stderr


def test_server_flag_wins_over_environment(server):
    dead = f"http://127.0.0.1:{free_port()}"
    res = run(server, "executions", "list", "--server", server.url, url=dead)
    assert res.returncode == EXIT_OK, res
    res = run(server, "executions", "list", "--server", server.url, "--api-key",
              server.admin_key, url=dead, key=None)
    assert res.returncode == EXIT_OK, res
    res = run(server, "executions", "list", "--server", "ftp://x")
    assert res.returncode == EXIT_USAGE and "invalid server URL" in res.stderr


# --------------------------------------------------------------------------- no server

@pytest.mark.parametrize("args", [["workflows", "list"],
                                  ["workflows", "show", "x"], ["workflows", "delete", "x"],
                                  ["trigger", "x"]])
def test_server_only_commands_need_a_server(server, args):
    res = run(server, *args, url=None)  # ORCH_API_KEY alone does not make a client
    assert res.returncode == EXIT_USAGE, res
    assert "needs a server" in res.stderr and "--server URL" in res.stderr
    assert res.stdout == ""


def test_workflows_apply_without_a_server(server, tmp_path):
    """Without a server, `workflows apply` records the definition in the local store (so
    that workflow tasks of `orch run` find it); a missing file and a definition naming an
    unregistered workflow are clear errors, and nothing is recorded for them."""
    data = tmp_path / "local"
    child = tmp_path / "child.json"
    child.write_text(json.dumps({"name": "cl-child", "tasks": [{"name": "a", "type": "noop"}]}))
    parent = tmp_path / "parent.json"
    parent.write_text(json.dumps({"name": "cl-parent", "tasks": [
        {"name": "c", "type": "workflow", "workflow": "cl-child"}]}))
    res = run(server, "workflows", "apply", str(tmp_path / "nope.json"), "--data-dir", str(data),
              url=None)
    assert res.returncode != EXIT_OK and "nope.json" in res.stderr
    res = run(server, "workflows", "apply", str(parent), "--data-dir", str(data), url=None)
    assert res.returncode == 3, res
    assert "$.tasks[0].workflow: unknown workflow 'cl-child' (register it first)" in res.stderr
    res = run(server, "workflows", "apply", str(child), "--data-dir", str(data), url=None)
    assert res.returncode == EXIT_OK and "'cl-child' version 1 recorded" in res.stdout, res
    res = run(server, "workflows", "apply", str(child), "--data-dir", str(data), url=None)
    assert res.returncode == EXIT_OK and "unchanged" in res.stdout, res
    res = run(server, "workflows", "apply", str(parent), "--data-dir", str(data), "--json",
              url=None)
    assert res.returncode == EXIT_OK, res
    assert json.loads(res.stdout) == {"name": "cl-parent", "version": 1, "tasks": 1,
                                      "changed": True}


def test_local_fallback(server, runs):
    res = local(server, "executions", "list", "--workflow", "cl-greet")
    assert res.returncode == EXIT_OK and runs["ok"] in res.stdout
    res = local(server, "health")
    assert res.returncode == EXIT_OK, res
    assert "local data directory" in res.stdout and re.search(r"^database\s+ok", res.stdout,
                                                              re.M)
    j = json.loads(local(server, "health", "--json").stdout)
    assert j["status"] == "ok" and j["mode"] == "local"
    res = run(server, "health", "--data-dir", server.tmp / "nowhere", url=None)
    assert res.returncode == EXIT_FAILED and "no data directory" in res.stderr


@pytest.mark.parametrize("words", [["workflows", "apply"], ["workflows", "list"],
                                   ["workflows", "show"], ["workflows", "delete"], ["trigger"],
                                   ["cancel"], ["retry"], ["health"]])
def test_help(server, words):
    res = run(server, *words, "--help", url=None, key=None)
    assert res.returncode == EXIT_OK and res.stdout.startswith(f"usage: orch {' '.join(words)}")
    assert "--server URL" in res.stdout and "--api-key KEY" in res.stdout
