"""
The command line end to end: exit codes (0 ok, 1 failed, 2 usage, 3 invalid, 4 timed out,
5 cancelled, 6 not found), --help and usage errors of every command, params, and
`orch executions list` with its filters and pagination.
"""
import json
import re
import signal
import time

import pytest

from conftest import (EXIT_CANCELLED, EXIT_FAILED, EXIT_INTERNAL, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK,
                      EXIT_TIMED_OUT, EXIT_USAGE, REPO, exec_id_from_summary, pid_alive,
                      read_pids, task_by_name, wait_for)

HELLO = REPO / "examples" / "hello.yaml"

# Every command line (the command words) and a valid set of positional arguments.
COMMANDS = [
    (["run"], ["wf.json"]),
    (["validate"], ["wf.json"]),
    (["resume"], []),
    (["executions", "list"], []),
    (["executions", "show"], ["ex_0000000000000000"]),
    (["logs"], ["ex_0000000000000000"]),
    (["db", "migrate"], []),
    (["db", "status"], []),
]


def cmd_name(words):
    return " ".join(words)


# --------------------------------------------------------------------------- help and usage

@pytest.mark.parametrize("words", [[]] + [w for w, _ in COMMANDS], ids=lambda w: cmd_name(w) or "orch")
def test_help(orch, words):
    res = orch.run(*words, "--help", data_dir=False)
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout.startswith("usage: orch"), res.stdout
    if words:
        assert res.stdout.startswith(f"usage: orch {cmd_name(words)}"), res.stdout
        # validate reads no data directory: its help does not offer one (test_cli_ux.py)
        assert ("--data-dir DIR" in res.stdout) == (words != ["validate"]), res.stdout
        assert "--help" in res.stdout
    assert res.stderr == ""


def test_help_of_executions_and_top_level(orch):
    res = orch.run("executions", "--help", data_dir=False)
    assert res.returncode == EXIT_OK
    assert "orch executions list" in res.stdout and "orch executions show" in res.stdout
    for args in (["-h"], ["help"]):
        res = orch.run(*args, data_dir=False)
        assert res.returncode == EXIT_OK
        for c in ("run FILE", "validate FILE", "resume [ID]", "executions list", "logs ID"):
            assert c in res.stdout


@pytest.mark.parametrize("words,pos", COMMANDS, ids=[cmd_name(w) for w, _ in COMMANDS])
def test_unknown_option_is_usage_error(orch, words, pos):
    orch.workflow({"name": "w", "tasks": [{"name": "a", "command": ["true"]}]}, name="wf.json")
    res = orch.run(*words, *pos, "--bogus")
    assert res.returncode == EXIT_USAGE, (res.stdout, res.stderr)
    assert f"orch: unknown option '--bogus' for 'orch {cmd_name(words)}'" in res.stderr
    assert res.stdout == ""


def test_usage_errors(orch):
    wf = orch.workflow({"name": "w", "tasks": [{"name": "a", "command": ["true"]}]})
    cases = [
        ([], None),  # no command at all
        (["frobnicate"], "unknown command 'frobnicate'"),
        (["run"], "'orch run' needs exactly one workflow file"),
        (["run", wf, wf], "'orch run' needs exactly one workflow file"),
        (["validate"], "'orch validate' needs exactly one workflow file"),
        (["resume", "ex_1", "ex_2"], "'orch resume' takes at most one execution id"),
        (["executions"], "'orch executions' needs a subcommand: list or show"),
        (["executions", "purge"], "'orch executions' needs a subcommand: list or show"),
        (["executions", "show"], "'orch executions show' needs one execution id"),
        (["executions", "list", "extra"], "'orch executions list' takes no arguments"),
        (["logs"], "'orch logs' needs an execution id"),
        (["run", "--data-dir", orch.data_dir, wf, "--workers"], "option '--workers' needs a value"),
        (["run", wf, "--workers", "0"], "invalid worker count '0'"),
        (["run", wf, "--workers", "many"], "invalid worker count 'many'"),
        (["run", wf, "--max-output", "10"], "invalid output cap '10'"),
        (["run", wf, "--kill-grace", "soon"], "invalid kill grace"),
        (["run", wf, "--param", "novalue"], "invalid --param 'novalue'"),
        (["run", wf, "--param", "=x"], "invalid --param '=x'"),
        (["run", wf, "--json=yes"], "option '--json' takes no value"),
        (["run", wf, "--log-level", "loud"], "invalid log level 'loud'"),
        (["run", wf, "-x"], "unknown option '-x'"),
        (["executions", "list", "--limit", "0"], "invalid limit '0'"),
        (["executions", "list", "--limit", "1001"], "invalid limit '1001'"),
        (["logs", "ex_0000000000000000", "--attempt", "0"], "invalid attempt '0'"),
    ]
    for args, msg in cases:
        res = orch.run(*args, data_dir=bool(args) and "--data-dir" not in args)
        assert res.returncode == EXIT_USAGE, (args, res.returncode, res.stderr)
        if msg:
            assert msg in res.stderr, (args, res.stderr)
        else:
            assert res.stderr.startswith("usage: orch COMMAND"), res.stderr
    # none of these ran anything
    assert not (orch.data_dir / "locks").exists() or not any((orch.data_dir / "locks").iterdir())


def test_version(orch):
    for args in (["version"], ["--version"]):
        res = orch.run(*args, data_dir=False)
        assert res.returncode == EXIT_OK
        assert re.match(r"^orch \S+\n$", res.stdout), res.stdout


def test_version_rejects_unknown_option(orch):
    # "Every command ... rejects unknown options" (README), `version` included.
    res = orch.run("version", "--bogus", data_dir=False)
    assert res.returncode == EXIT_USAGE, res.stdout
    assert "unknown option '--bogus'" in res.stderr


# --------------------------------------------------------------------------- exit codes 0, 1, 3

def test_exit_ok_and_failed(orch):
    ok = orch.workflow({"name": "ok", "tasks": [{"name": "a", "command": ["true"]}]})
    bad = orch.workflow({"name": "bad", "tasks": [{"name": "a", "command": ["false"]}]})
    r1 = orch.run("run", ok)
    assert r1.returncode == EXIT_OK, r1.stderr
    r2 = orch.run("run", bad)
    assert r2.returncode == EXIT_FAILED, r2.stderr
    assert re.search(r"^a\s+failed\s+1\s+\S+\s+exit status 1$", r2.stdout, re.M), r2.stdout


def test_retention_and_sqlite_sync_settings(orch):
    """ORCH_RETENTION takes a duration (0 keeps finished executions forever) and
    ORCH_SQLITE_SYNC `full` or `normal`; anything else stops orch before it runs."""
    ok = orch.workflow({"name": "ok", "tasks": [{"name": "a", "command": ["true"]}]})
    for v in ("0", "90d", "12h", "500ms"):
        r = orch.run("run", ok, env={"ORCH_RETENTION": v})
        assert r.returncode == EXIT_OK, (v, r.stderr)
    for v in ("soon", "10 parsecs", "-1d"):
        r = orch.run("run", ok, env={"ORCH_RETENTION": v}, check_clean=False)
        assert r.returncode == EXIT_USAGE, (v, r.returncode, r.stderr)
        assert "invalid ORCH_RETENTION" in r.stderr, r.stderr
        r = orch.run("server", "--listen", "127.0.0.1:1", env={"ORCH_RETENTION": v},
                     check_clean=False, timeout=20)
        assert r.returncode == EXIT_USAGE, (v, r.returncode, r.stderr)
        assert "invalid ORCH_RETENTION" in r.stderr, r.stderr
    for v in ("full", "normal"):
        r = orch.run("run", ok, env={"ORCH_SQLITE_SYNC": v})
        assert r.returncode == EXIT_OK, (v, r.stderr)
    r = orch.run("run", ok, env={"ORCH_SQLITE_SYNC": "sometimes"}, check_clean=False)
    assert r.returncode != EXIT_OK and "invalid ORCH_SQLITE_SYNC 'sometimes'" in r.stderr, \
        (r.returncode, r.stderr)


def test_run_invalid_definition(orch):
    wf = orch.workflow({"name": "bad", "tasks": [
        {"name": "a", "command": ["true"], "dependsOn": ["b"]},
        {"name": "b", "command": ["true"], "dependsOn": ["a"]},
    ]})
    res = orch.run("run", wf)
    assert res.returncode == EXIT_INVALID, res.stderr
    assert f"orch: invalid workflow '{wf}':" in res.stderr
    assert "  $.tasks[0].dependsOn: cycle: a -> b -> a" in res.stderr
    assert res.stdout == ""


PARAMS_WF = {"name": "params", "params": {
    "region": {"type": "string", "required": True},
    "n": {"type": "number", "default": 1},
    "flag": {"type": "boolean", "default": False},
    "opts": {"type": "object", "default": {}},
}, "tasks": [{"name": "show", "command":
              'echo "$ORCH_PARAM_region|$ORCH_PARAM_n|$ORCH_PARAM_flag|$ORCH_PARAM_opts"'}]}


@pytest.mark.parametrize("params,msg", [
    (["region=eu", "bogus=1"], "unknown param 'bogus'"),
    (["region=eu", "n=abc"], "param 'n' must be a number"),
    (["region=eu", "flag=3"], "param 'flag' must be a boolean"),
    (["region=eu", "opts=[1]"], "param 'opts' must be an object"),
    (["n=2"], "missing required param 'region'"),
    ([], "missing required param 'region'"),
], ids=["unknown", "number", "boolean", "object", "missing", "none"])
def test_invalid_params(orch, params, msg):
    wf = orch.workflow(PARAMS_WF)
    args = []
    for p in params:
        args += ["--param", p]
    res = orch.run("run", wf, *args)
    assert res.returncode == EXIT_INVALID, (res.returncode, res.stderr)
    assert msg in res.stderr, res.stderr
    assert res.stdout == ""
    # no execution was created
    res, j = orch.run_json("executions", "list")
    assert res.returncode == 0
    assert j["items"] == []


def test_valid_params_reach_tasks(orch):
    wf = orch.workflow(PARAMS_WF)
    res = orch.run("run", wf, "--param", "region=eu-west", "--param", "n=2.5",
                   "--param", "flag=true", "--param", 'opts={"a": [1, "x"]}')
    assert res.returncode == EXIT_OK, res.stderr
    exec_id = exec_id_from_summary(res.stdout)
    logs = orch.run("logs", exec_id, "show", "--attempt", "1")
    assert logs.stdout == 'eu-west|2.5|true|{"a":[1,"x"]}\n', logs.stdout
    j = orch.show(exec_id)
    assert j["params"] == {"region": "eu-west", "n": 2.5, "flag": True, "opts": {"a": [1, "x"]}}


# --------------------------------------------------------------------------- 4: timed out

def test_execution_timeout(orch):
    pid_file = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "slowpoke", "timeout": "1s", "tasks": [
        {"name": "sleeper", "command": 'echo $$ >> "$E2E_TMP/pids"; exec sleep 30'},
        {"name": "after", "dependsOn": ["sleeper"], "command": ["true"]},
        {"name": "nap", "type": "sleep", "duration": "10s"},
        {"name": "waiting", "command": ["true"]},   # queued: the only worker slot is taken
    ]})
    t0 = time.monotonic()
    res, j = orch.run_json("run", wf, "--workers", "1", timeout=60)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_TIMED_OUT, res.stderr
    assert took < 8, f"took {took:.1f}s"
    assert j["status"] == "timed_out"
    assert j["error"] == "execution timed out after 1.000s"
    sleeper = task_by_name(j, "sleeper")
    assert sleeper["status"] == "timed_out"
    assert [(a["number"], a["status"]) for a in sleeper["attempts"]] == [(1, "timed_out")]
    assert task_by_name(j, "nap")["status"] == "timed_out"
    # tasks that had not started are cancelled, whatever their position in the DAG
    for name in ("after", "waiting"):
        t = task_by_name(j, name)
        assert t["status"] == "cancelled", (name, t["status"])
        assert t["attempts"] == []
    assert re.search(r"ERROR \[Engine\] Execution ex_\w+ of 'slowpoke' timed out after 1.000s",
                     res.stderr), res.stderr
    pids = read_pids(pid_file)
    assert len(pids) == 1
    assert not pid_alive(pids[0]), "the sleeping task process survived the timeout"


# --------------------------------------------------------------------------- 5: cancelled

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_cancels_run(orch, sig):
    pid_file = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "cancel-me", "tasks": [
        {"name": "sleeper",
         "command": 'echo $$ >> "$E2E_TMP/pids"; sleep 30 & echo $! >> "$E2E_TMP/pids"; wait'},
        {"name": "after", "dependsOn": ["sleeper"], "command": ["true"]},
        {"name": "later", "dependsOn": ["after"], "command": ["true"]},
    ]})
    p = orch.spawn("run", wf, "--json")
    wait_for(lambda: len(read_pids(pid_file)) == 2, timeout=15, what="the task to start")
    time.sleep(0.2)
    t0 = time.monotonic()
    p.send_signal(sig)
    res = orch.finish(p, timeout=30)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_CANCELLED, res.stderr
    assert took < 8, f"cancel took {took:.1f}s"
    j = json.loads(res.stdout)
    assert j["status"] == "cancelled"
    assert j["error"] == "cancelled by signal"
    s = task_by_name(j, "sleeper")
    assert s["status"] == "cancelled"
    assert [(a["number"], a["status"]) for a in s["attempts"]] == [(1, "cancelled")]
    for name in ("after", "later"):
        t = task_by_name(j, name)
        assert t["status"] == "cancelled", (name, t["status"])
        assert t["attempts"] == []
    for pid in read_pids(pid_file):
        assert not pid_alive(pid), f"process {pid} of the cancelled task survived"
    assert orch.show(j["id"]) == j


# --------------------------------------------------------------------------- 6: not found

def test_not_found(orch):
    res = orch.run("run", HELLO)
    assert res.returncode == EXIT_OK
    exec_id = exec_id_from_summary(res.stdout)

    missing = orch.tmp / "missing.json"
    for args in (["run", missing], ["validate", missing]):
        res = orch.run(*args)
        assert res.returncode == EXIT_NOT_FOUND, (args, res.stderr)
        assert f"orch: cannot open '{missing}': No such file or directory" in res.stderr

    unknown = "ex_0000000000000000"
    for args in (["executions", "show", unknown], ["logs", unknown], ["resume", unknown]):
        res = orch.run(*args)
        assert res.returncode == EXIT_NOT_FOUND, (args, res.returncode, res.stderr)
        assert f"no execution '{unknown}'" in res.stderr, res.stderr
        assert res.stdout == ""

    res = orch.run("logs", exec_id, "no-such-task")
    assert res.returncode == EXIT_NOT_FOUND
    assert f"execution '{exec_id}' has no task 'no-such-task'" in res.stderr


@pytest.mark.parametrize("args", [["executions", "list"], ["executions", "show", "ex_0000000000000000"],
                                  ["logs", "ex_0000000000000000"]],
                         ids=["list", "show", "logs"])
def test_no_data_directory(orch, args):
    res = orch.run(*args)
    assert f"no data directory at '{orch.data_dir}'" in res.stderr, res.stderr
    assert res.returncode == EXIT_NOT_FOUND, (res.returncode, res.stderr)
    assert res.stdout == ""
    assert not orch.data_dir.exists(), "a read-only command created the data directory"


# --------------------------------------------------------------------------- executions list

@pytest.fixture
def history(orch):
    """Five executions, oldest first: alpha ok, beta failed, alpha, beta, alpha."""
    alpha = orch.workflow({"name": "alpha", "tasks": [{"name": "a", "command": ["true"]}]})
    beta = orch.workflow({"name": "beta", "tasks": [{"name": "b", "command": ["false"]}]})
    ids = []
    for wf, want in ((alpha, 0), (beta, 1), (alpha, 0), (beta, 1), (alpha, 0)):
        res, j = orch.run_json("run", wf)
        assert res.returncode == want, res.stderr
        ids.append(j["id"])
    return ids


def list_ids(orch, *args):
    res, j = orch.run_json("executions", "list", *args)
    assert res.returncode == 0, res.stderr
    return [i["id"] for i in j["items"]], j


def test_list_newest_first(orch, history):
    newest_first = history[::-1]
    res = orch.run("executions", "list")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert re.match(r"^ID\s+WORKFLOW\s+STATUS\s+CREATED\s+DURATION\s+ERROR$", lines[0])
    rows = [line.split() for line in lines[1:]]
    assert [r[0] for r in rows] == newest_first
    assert [r[1] for r in rows] == ["alpha", "beta", "alpha", "beta", "alpha"]
    assert [r[2] for r in rows] == ["succeeded", "failed", "succeeded", "failed", "succeeded"]
    assert "(more:" not in res.stdout

    ids, j = list_ids(orch)
    assert ids == newest_first
    assert j["nextCursor"] is None
    item = j["items"][0]
    for k in ("id", "workflow", "workflowVersion", "status", "params", "createdAt",
              "startedAt", "finishedAt", "durationMs", "error"):
        assert k in item, k
    assert j["items"][1]["error"] == "one or more tasks failed"


def test_list_filters(orch, history):
    ok = [history[4], history[2], history[0]]
    failed = [history[3], history[1]]
    assert list_ids(orch, "--status", "failed")[0] == failed
    assert list_ids(orch, "--status", "succeeded")[0] == ok
    assert list_ids(orch, "--status", "failed,succeeded")[0] == history[::-1]
    assert list_ids(orch, "--status", "running")[0] == []
    assert list_ids(orch, "--workflow", "alpha")[0] == ok
    assert list_ids(orch, "--workflow", "beta", "--status", "succeeded")[0] == []
    assert list_ids(orch, "--workflow", "nope")[0] == []
    res = orch.run("executions", "list", "--status", "running")
    assert res.returncode == 0 and res.stdout == "No executions.\n"


def test_list_pagination(orch, history):
    newest_first = history[::-1]
    # plain output: follow the printed cursor
    seen, cursor, pages = [], None, 0
    while True:
        args = ["--limit", "2"] + (["--cursor", cursor] if cursor else [])
        res = orch.run("executions", "list", *args)
        assert res.returncode == 0, res.stderr
        pages += 1
        if res.stdout == "No executions.\n":
            break
        lines = res.stdout.splitlines()
        rows = [line.split()[0] for line in lines[1:] if line.startswith("ex_")]
        assert 1 <= len(rows) <= 2
        seen += rows
        m = re.search(r"^\(more: --cursor (ex_\w+)\)$", res.stdout, re.M)
        if not m:
            break
        assert m.group(1) == rows[-1]
        cursor = m.group(1)
        assert pages < 10
    assert seen == newest_first, (seen, newest_first)
    assert len(set(seen)) == len(seen)

    # JSON: follow nextCursor
    seen, cursor = [], None
    for _ in range(10):
        args = ["--limit", "2"] + (["--cursor", cursor] if cursor else [])
        ids, j = list_ids(orch, *args)
        seen += ids
        cursor = j["nextCursor"]
        if cursor is None:
            break
        assert cursor == ids[-1]
    assert seen == newest_first
    # filters and paging together
    seen, cursor = [], None
    for _ in range(10):
        args = ["--limit", "1", "--workflow", "alpha"] + (["--cursor", cursor] if cursor else [])
        ids, j = list_ids(orch, *args)
        seen += ids
        cursor = j["nextCursor"]
        if cursor is None:
            break
    assert seen == [history[4], history[2], history[0]]


def test_list_unknown_status(orch, history):
    for bad in ("bogus", "failed,bogus", "done"):
        res = orch.run("executions", "list", "--status", bad)
        assert res.returncode == EXIT_USAGE, (bad, res.stderr)
        assert "unknown status '" in res.stderr
        assert res.stdout == ""


def test_show_plain(orch, history):
    res = orch.run("executions", "show", history[1])
    assert res.returncode == 0
    assert f"Execution  {history[1]}\n" in res.stdout
    assert "Workflow   beta (version 1)\n" in res.stdout
    assert "Status     failed\n" in res.stdout
    assert "Error      one or more tasks failed\n" in res.stdout
    assert re.search(r"^b\s+failed\s+1\s+exit 1\s+\S+\s+exit status 1$", res.stdout, re.M), \
        res.stdout


def test_db_commands_on_the_data_directory(orch):
    res = orch.run("db", "status")
    assert res.returncode == EXIT_INTERNAL and "no data directory" in res.stderr, res
    res = orch.run("db", "migrate")
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout.startswith("sqlite store at ") and "schema version" in res.stdout
    res = orch.run("db", "status", "--json")
    assert res.returncode == EXIT_OK, res.stderr
    st = json.loads(res.stdout)
    assert st["backend"] == "sqlite" and st["schemaVersion"] == st["latest"] >= 5, st
    assert st["nodes"] == []
    res = orch.run("db", data_dir=False)
    assert res.returncode == EXIT_USAGE and "usage: orch db" in res.stderr, res
    for args, text in ((["db"], "needs a command before its options"),
                       (["db", "vacuum"], "unknown command 'db vacuum'"),
                       (["db", "status", "extra"], "takes no arguments")):
        res = orch.run(*args)
        assert res.returncode == EXIT_USAGE and text in res.stderr, (args, res)


def test_worker_needs_a_database(orch):
    res = orch.run("worker", env={"DATABASE_URL": ""})
    assert res.returncode == EXIT_USAGE, res
    assert "'orch worker' joins the nodes of a PostgreSQL store" in res.stderr
    # --data-dir wins over DATABASE_URL from the environment
    res = orch.run("db", "migrate", env={"DATABASE_URL": "postgresql://x@127.0.0.1:9/none"})
    assert res.returncode == EXIT_OK and "sqlite store" in res.stdout, res
