"""
The command line without surprises: an unknown option gets a "did you mean", --help lists
only the options a command uses, an unknown --tz gets the validator's suggestion, counts
read "1 task", execution ids may be a unique prefix or `latest` (locally and with a
server), `orch logs ID GROUP` prints the output of a fan-out's instances, the live
progress line of `orch run` ticks on a terminal, `orch schedules list|show|pause|resume|
backfill|delete` work with a server, a 401 without a key says how to give one, and an
`orch worker` logs its shutdown as the engine, not as the API.
"""
import json
import os
import pty
import re
import signal
import subprocess
import time

import pytest

from apiutil import ORCH, fresh_server, sh, wf  # noqa: F401
from conftest import (EXIT_CANCELLED, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, SANITIZER_MARKERS, base_env,
                      pid_alive, wait_for)

EXIT_AUTH = 7  # the server refused the key (src/cli/cli.h)


def write(path, definition):
    path.write_text(json.dumps(definition))
    return path


def run_wf(orch, tmp, definition):
    """orch run a definition; returns its execution id."""
    p = write(tmp / f"{definition['name']}.json", definition)
    res = orch.run("run", p, "--json")
    assert res.returncode == EXIT_OK, res.stderr
    return json.loads(res.stdout)["id"]


FAN = {"name": "fan", "tasks": [
    {"name": "f", "forEach": ["a", "b", "c"], "command": ["sh", "-c", "echo item-$1", "sh", "{{ item }}"]},
]}


# --------------------------------------------------------------------------- options and help

@pytest.mark.parametrize("args,typo,fix", [
    (["run", "wf.json", "--workrs", "2"], "--workrs", "--workers"),
    (["executions", "list", "--limt", "5"], "--limt", "--limit"),
    (["logs", "ex_0000000000000000", "--folow"], "--folow", "--follow"),
    (["schedules", "next", "* * * * *", "--tzz", "UTC"], "--tzz", "--tz"),
])
def test_unknown_option_did_you_mean(orch, args, typo, fix):
    res = orch.run(*args, data_dir=False)
    assert res.returncode == EXIT_USAGE, res
    assert f"unknown option '{typo}'" in res.stderr
    assert f"(did you mean '{fix}'?)" in res.stderr, res.stderr


def test_unknown_option_without_a_near_one(orch):
    res = orch.run("run", "wf.json", "--zzzzzzzz", data_dir=False)
    assert res.returncode == EXIT_USAGE
    assert "did you mean" not in res.stderr and "see 'orch run --help'" in res.stderr


@pytest.mark.parametrize("words,absent", [
    (["validate"], ["--data-dir", "--database-url", "--log-level"]),
    (["schedules", "next"], ["--data-dir", "--database-url", "--log-level"]),
    (["schedules", "validate"], ["--data-dir", "--database-url", "--log-level"]),
    (["trigger"], ["--data-dir", "--database-url", "--log-level"]),
    (["workflows", "list"], ["--data-dir", "--database-url"]),
    (["schedules", "list"], ["--data-dir", "--database-url", "--log-level"]),
    (["executions", "list"], ["--log-level"]),
])
def test_help_lists_only_the_options_used(orch, words, absent):
    res = orch.run(*words, "--help", data_dir=False)
    assert res.returncode == EXIT_OK, res.stderr
    for o in absent:
        assert not re.search(rf"^  {o}\b", res.stdout, re.M), (o, res.stdout)
    assert re.search(r"^  --help\b", res.stdout, re.M)


def test_help_keeps_the_options_used(orch):
    res = orch.run("run", "--help", data_dir=False)
    for o in ("--data-dir", "--database-url", "--log-level", "--workers"):
        assert re.search(rf"^  {o}\b", res.stdout, re.M), (o, res.stdout)
    # a global option a command does not use is still accepted (scripts pass it everywhere)
    res = orch.run("schedules", "validate", "0 2 * * *", "--data-dir", "/nonexistent",
                   data_dir=False)
    assert res.returncode == EXIT_OK, res.stderr


def test_schedules_unknown_zone_did_you_mean(orch):
    for cmd in ("next", "validate"):
        res = orch.run("schedules", cmd, "0 2 * * *", "--tz", "Europe/Berln", data_dir=False)
        assert res.returncode == EXIT_INVALID
        assert "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)" in res.stderr
    res, doc = orch.run_json("schedules", "validate", "0 2 * * *", "--tz", "America/New_Yrok",
                             data_dir=False)
    assert doc["valid"] is False and "did you mean 'America/New_York'?" in doc["error"], doc


def test_one_task_is_singular(orch, tmp_path):
    p = write(tmp_path / "one.json", {"name": "one", "tasks": [{"name": "t", "command": ["true"]}]})
    res = orch.run("validate", p, data_dir=False)
    assert res.stdout == f"{p}: workflow 'one' is valid (1 task)\n", res.stdout
    res = orch.run("run", p)
    assert res.returncode == EXIT_OK
    assert re.search(r"Execution ex_\w+ of 'one' \(version 1\) started: 1 task$", res.stderr,
                     re.M), res.stderr


# --------------------------------------------------------------------------- execution ids

def test_id_prefix_and_latest_locally(orch, tmp_path):
    a1 = run_wf(orch, tmp_path, {"name": "wa", "tasks": [{"name": "t", "command": ["echo", "A1"]}]})
    b1 = run_wf(orch, tmp_path, {"name": "wb", "tasks": [{"name": "t", "command": ["echo", "B1"]}]})
    a2 = run_wf(orch, tmp_path, {"name": "wa", "tasks": [{"name": "t", "command": ["echo", "A2"]}]})

    res, d = orch.run_json("executions", "show", "latest")
    assert res.returncode == EXIT_OK and d["id"] == a2, res.stderr
    res, d = orch.run_json("executions", "show", "latest", "--workflow", "wb")
    assert d["id"] == b1
    res = orch.run("logs", "latest", "--workflow", "wa")
    assert res.returncode == EXIT_OK and "A2" in res.stdout and "A1" not in res.stdout

    # the shortest unique prefix of each id works; a shared one lists the candidates
    for x in (a1, b1, a2):
        others = [o for o in (a1, b1, a2) if o != x]
        n = next(n for n in range(4, 20) if all(not o.startswith(x[:n]) for o in others))
        res, d = orch.run_json("executions", "show", x[:n])
        assert res.returncode == EXIT_OK and d["id"] == x, (x[:n], res.stderr)
        res = orch.run("logs", x[:n])
        assert res.returncode == EXIT_OK and res.stdout, res.stderr
    common = os.path.commonprefix([a1, b1, a2])
    res = orch.run("executions", "show", common)
    assert res.returncode == EXIT_USAGE, res
    assert f"the prefix '{common}' is ambiguous" in res.stderr
    for x in (a1, b1, a2):
        assert x in res.stderr
    res = orch.run("executions", "show", "ex_zzzz")
    assert res.returncode == EXIT_NOT_FOUND and "no execution id starts with 'ex_zzzz'" in res.stderr
    res = orch.run("executions", "show", "latest", "--workflow", "nope")
    assert res.returncode == EXIT_NOT_FOUND and "no executions of workflow 'nope'" in res.stderr
    res = orch.run("executions", "show", a1, "--workflow", "wa")
    assert res.returncode == EXIT_USAGE


def test_logs_of_a_fanout_group_locally(orch, tmp_path):
    run_wf(orch, tmp_path, FAN)
    res = orch.run("logs", "latest", "f")
    assert res.returncode == EXIT_OK, res.stderr
    for i, item in enumerate("abc"):
        assert f"==> f[{i}] (attempt 1) <==\nitem-{item}\n" in res.stdout, res.stdout
    res = orch.run("logs", "latest", "f", "--json")
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert sorted(x["task"] for x in lines) == ["f[0]", "f[1]", "f[2]"], lines
    res = orch.run("logs", "latest", "f[1]", "--attempt", "1")
    assert res.stdout == "item-b\n", res.stdout


# --------------------------------------------------------------------------- progress line

def test_progress_line_ticks_on_a_terminal(orch, tmp_path):
    """On a terminal the line's clock moves while a task runs without events (before, it
    stood at the time of the last event until the next one)."""
    p = write(tmp_path / "slow.json", {"name": "slow", "tasks": [{"name": "s", "command": ["sleep", "1.5"]}]})
    master, slave = pty.openpty()
    env = orch.env()
    env.pop("ORCH_NO_PROGRESS", None)
    proc = subprocess.Popen(orch.args(["run", p]), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env, cwd=tmp_path)
    os.close(slave)
    buf = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        buf += chunk
    os.close(master)
    proc.communicate(timeout=30)
    assert proc.returncode == EXIT_OK
    text = buf.decode("utf-8", "replace")
    for m in SANITIZER_MARKERS:
        assert m not in text
    shown = set(re.findall(r"\[0/1\] 1 running: s  ([0-9.]+m?s)", text))
    # the task ran 1.5 s: a tick every 200 ms draws many distinct times
    assert len(shown) >= 4, (shown, text[-2000:])


# --------------------------------------------------------------------------- with a server

def client(server, *args, key="admin", timeout=60):
    e = base_env({"E2E_TMP": str(server.tmp), "ORCH_SERVER": server.url})
    if key == "admin":
        e["ORCH_API_KEY"] = server.admin_key
    res = subprocess.run([str(ORCH)] + [str(a) for a in args], capture_output=True, text=True,
                         errors="replace", timeout=timeout, env=e, cwd=server.tmp,
                         stdin=subprocess.DEVNULL)
    assert res.returncode >= 0, res.stderr
    for m in SANITIZER_MARKERS:
        assert m not in res.stderr, res.stderr
    return res


def test_ids_and_group_logs_with_a_server(fresh_server):
    srv = fresh_server
    srv.apply(wf("ca", [sh("t", ["echo", "CA"])]))
    srv.apply(wf("cb", [sh("t", ["echo", "CB"])]))
    srv.apply(FAN)
    ids = []
    for name in ("ca", "cb", "fan", "ca"):
        ids.append(srv.trigger(name)["id"])
        srv.wait_exec(ids[-1])
    res = client(srv, "executions", "show", "latest", "--json")
    assert res.returncode == EXIT_OK and json.loads(res.stdout)["id"] == ids[3], res.stderr
    res = client(srv, "logs", "latest", "--workflow", "cb")
    assert res.returncode == EXIT_OK and "CB" in res.stdout, res.stderr
    res = client(srv, "logs", "latest", "f", "--workflow", "fan")
    assert res.returncode == EXIT_OK, res.stderr
    for i, item in enumerate("abc"):
        assert f"==> f[{i}] (attempt 1) <==\nitem-{item}\n" in res.stdout, res.stdout
    for x in ids:
        others = [o for o in ids if o != x]
        n = next(n for n in range(4, 20) if all(not o.startswith(x[:n]) for o in others))
        res = client(srv, "executions", "show", x[:n], "--json")
        assert res.returncode == EXIT_OK and json.loads(res.stdout)["id"] == x, (x[:n], res.stderr)
    common = os.path.commonprefix(ids)
    res = client(srv, "executions", "show", common)
    assert res.returncode == EXIT_USAGE and f"the prefix '{common}' is ambiguous" in res.stderr
    res = client(srv, "cancel", "ex_zzzz")
    assert res.returncode == EXIT_NOT_FOUND and "no execution id starts with" in res.stderr
    res = client(srv, "retry", "latest", "--workflow", "cb")
    assert res.returncode == 1 and "succeeded" in res.stderr, res  # 409: it succeeded


def test_schedules_commands_with_a_server(fresh_server):
    srv = fresh_server
    srv.apply(wf("sw", [sh("t", ["true"])], schedules=[{"name": "nightly", "cron": "30 2 * * *"}]))
    r = srv.post("/v1/schedules", {"workflow": "sw", "name": "api", "cron": "0 3 * * *"})
    assert r.status == 201, r
    api_id = r.json["id"]
    res = client(srv, "schedules", "list")
    assert res.returncode == EXIT_OK, res.stderr
    assert "nightly" in res.stdout and "30 2 * * *" in res.stdout and api_id in res.stdout
    res = client(srv, "schedules", "list", "--workflow", "nope", "--json")
    assert json.loads(res.stdout)["items"] == []
    res = client(srv, "schedules", "show", api_id)
    assert res.returncode == EXIT_OK and "State      active" in res.stdout, res.stdout
    res = client(srv, "schedules", "pause", api_id)
    assert res.returncode == EXIT_OK and f"Schedule {api_id} paused" in res.stdout, res.stderr
    assert srv.get(f"/v1/schedules/{api_id}").json["paused"] is True
    res = client(srv, "schedules", "resume", api_id)
    assert res.returncode == EXIT_OK and srv.get(f"/v1/schedules/{api_id}").json["paused"] is False
    res = client(srv, "schedules", "backfill", api_id, "--from", "2026-01-01T00:00:00Z",
                 "--until", "2026-01-03T00:00:00Z")
    assert res.returncode == EXIT_OK, res.stderr
    assert "backfilled: 2 due times" in res.stdout, res.stdout
    res = client(srv, "schedules", "backfill", api_id)
    assert res.returncode == EXIT_USAGE and "--from" in res.stderr
    res = client(srv, "schedules", "delete", api_id)
    assert res.returncode == EXIT_OK and srv.get(f"/v1/schedules/{api_id}").status == 404
    res = client(srv, "schedules", "show", api_id)
    assert res.returncode == EXIT_NOT_FOUND
    e = base_env()
    res = subprocess.run([str(ORCH), "schedules", "list"], capture_output=True, text=True, env=e,
                         stdin=subprocess.DEVNULL, cwd=srv.tmp)
    assert res.returncode == EXIT_USAGE and "needs a server" in res.stderr


def test_a_401_without_a_key_says_how_to_give_one(fresh_server):
    res = client(fresh_server, "health", key=None)
    assert res.returncode == EXIT_AUTH, res
    assert "--api-key KEY or set ORCH_API_KEY" in res.stderr, res.stderr
    res = client(fresh_server, "health", "--api-key", "sk_wrong")
    assert res.returncode == EXIT_AUTH and "ORCH_API_KEY" not in res.stderr


# --------------------------------------------------------------------------- local control

def running_exec(orch):
    """The id of the newest execution once its first task has started, else None."""
    res = orch.run("executions", "show", "latest", "--json")
    if res.returncode != EXIT_OK:
        return None  # no data directory or no execution yet
    d = json.loads(res.stdout)
    if d["status"] != "running":
        return None
    return d["id"] if any(t["status"] == "running" for t in d["tasks"]) else None


def long_wf(tmp_path):
    """A first task that records its pid and sleeps, then one that must never run."""
    return {"name": "long", "tasks": [
        {"name": "s", "command": ["sh", "-c", f"echo $$ > {tmp_path}/pid.tmp; mv {tmp_path}/pid.tmp {tmp_path}/pid; exec sleep 60"]},
        {"name": "t", "dependsOn": ["s"], "command": ["true"]}]}


def task_pid(tmp_path):
    wait_for(lambda: (tmp_path / "pid").exists(), timeout=30, what="the task's pid")
    return int((tmp_path / "pid").read_text())


def test_local_cancel_with_and_without_a_live_owner(orch, tmp_path):
    p = write(tmp_path / "long.json", long_wf(tmp_path))
    proc = orch.spawn("run", p)
    ex = wait_for(lambda: running_exec(orch), timeout=30, what="the task to start")
    pid = task_pid(tmp_path)
    # a live `orch run` owns it: the cancel is handed to it through the store
    res = orch.run("cancel", ex[:12])
    assert res.returncode == EXIT_OK, res
    assert f"Execution {ex} cancelled by the orch process that runs it" in res.stdout, res.stdout
    d = orch.show(ex)
    assert d["status"] == "cancelled", d
    assert [t["status"] for t in d["tasks"]] == ["cancelled", "cancelled"], d["tasks"]
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the task process to end")
    assert orch.finish(proc, timeout=30).returncode == EXIT_CANCELLED
    # a retry is not cancelled again by the request that ended the first run
    (tmp_path / "pid").unlink()
    retry = orch.spawn("retry", ex)
    pid = task_pid(tmp_path)
    wait_for(lambda: orch.show(ex)["status"] == "running", timeout=30, what="the retry to run")
    time.sleep(1.5)  # three polls of the owner (nothing to wait on: it must not happen)
    assert retry.poll() is None and pid_alive(pid)
    assert orch.show(ex)["status"] == "running"
    # the owner dies (its task process is left behind): the cancel is applied here
    os.kill(retry.pid, signal.SIGKILL)
    retry.wait(timeout=10)
    res = orch.run("cancel", "latest")
    assert res.returncode == EXIT_OK, res.stderr
    assert f"Execution {ex} cancelled (no live process owned it)" in res.stdout, res.stdout
    d = orch.show(ex)
    assert d["status"] == "cancelled", d
    assert [t["status"] for t in d["tasks"]] == ["cancelled", "cancelled"], d["tasks"]
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the orphaned task to end")
    res = orch.run("cancel", ex)
    assert res.returncode == 1 and "has already" in res.stderr, res


def test_local_cancel_recorded_when_the_owner_is_slow(orch, tmp_path):
    p = write(tmp_path / "long.json", long_wf(tmp_path))
    proc = orch.spawn("run", p)
    ex = wait_for(lambda: running_exec(orch), timeout=30, what="the task to start")
    pid = task_pid(tmp_path)
    os.kill(proc.pid, signal.SIGSTOP)  # alive (it holds its lock) but reads nothing
    try:
        started = time.monotonic()
        res = orch.run("cancel", ex)
        waited = time.monotonic() - started
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert res.returncode == EXIT_OK, res
    assert (f"Cancel of execution {ex} recorded: the orch process that runs it will cancel it"
            in res.stdout), res.stdout
    assert waited >= 5, waited
    # the owner reads the request once it runs again
    assert orch.finish(proc, timeout=30).returncode == EXIT_CANCELLED
    assert orch.show(ex)["status"] == "cancelled"
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the task process to end")


def test_local_cancel_through_a_live_server(orch, fresh_server, tmp_path):
    srv = fresh_server  # on the same data directory as `orch`
    srv.apply(long_wf(tmp_path))
    ex = srv.trigger("long")["id"]
    pid = task_pid(tmp_path)
    res = orch.run("cancel", ex)
    assert res.returncode == EXIT_OK, res
    assert f"Execution {ex} cancelled by the orch process that runs it" in res.stdout, res.stdout
    d = srv.wait_exec(ex, timeout=10)
    assert d["status"] == "cancelled", d
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the task process to end")
    assert "cancelled (asked through another orch process)" in srv.log()
    # what has finished has no owner: a retry runs here while the server lives on
    (tmp_path / "pid").unlink()
    retry = orch.spawn("retry", ex)
    pid = task_pid(tmp_path)
    res = orch.run("retry", ex)
    assert res.returncode == 1 and "is still being run by another orch process" in res.stderr, res
    res = orch.run("cancel", ex, "--json")
    assert res.returncode == EXIT_OK, res
    assert json.loads(res.stdout) == {"id": ex, "status": "cancelled"}
    assert orch.finish(retry, timeout=30).returncode == EXIT_CANCELLED
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the retried task to end")


def test_api_cancel_of_an_execution_an_orch_run_owns(orch, fresh_server, tmp_path):
    srv = fresh_server  # on the same data directory as `orch run`
    proc = orch.spawn("run", write(tmp_path / "long.json", long_wf(tmp_path)))
    ex = wait_for(lambda: running_exec(orch), timeout=30, what="the task to start")
    pid = task_pid(tmp_path)
    r = srv.post(f"/v1/executions/{ex}/cancel")
    assert r.status in (200, 202), r
    assert srv.wait_exec(ex, timeout=10)["status"] == "cancelled"
    assert orch.finish(proc, timeout=30).returncode == EXIT_CANCELLED
    wait_for(lambda: not pid_alive(pid), timeout=10, what="the task process to end")


def test_local_retry_runs_the_failed_tasks_here(orch, tmp_path):
    flag = tmp_path / "fixed"
    p = write(tmp_path / "flaky.json", {"name": "flaky", "tasks": [
        {"name": "a", "command": ["sh", "-c", "echo a >> $E2E_TMP/runs"]},
        {"name": "b", "dependsOn": ["a"], "command": ["sh", "-c", f"test -e {flag}"]},
        {"name": "c", "dependsOn": ["b"], "command": ["echo", "after"]}]})
    res = orch.run("run", p)
    assert res.returncode == 1
    res = orch.run("retry", "latest", "--workflow", "flaky")
    assert res.returncode == 1, res  # b fails again
    flag.write_text("")
    res = orch.run("retry", "latest", "--json")
    assert res.returncode == EXIT_OK, res.stderr
    d = json.loads(res.stdout)
    assert d["status"] == "succeeded" and [t["status"] for t in d["tasks"]] == ["succeeded"] * 3
    assert (tmp_path / "runs").read_text() == "a\n"  # what succeeded is kept
    res = orch.run("retry", d["id"])
    assert res.returncode == 1 and "nothing to retry" in res.stderr


def test_local_logs_follow(orch, tmp_path):
    gate = tmp_path / "gate"
    p = write(tmp_path / "talk.json", {"name": "talk", "tasks": [
        {"name": "a", "command": ["sh", "-c", f"echo one; while [ ! -e {gate} ]; do sleep 0.05; done; echo two"]},
        {"name": "b", "dependsOn": ["a"], "command": ["echo", "three"]}]})
    run = orch.spawn("run", p)
    ex = wait_for(lambda: running_exec(orch), timeout=30, what="the task to start")
    follow = orch.spawn("logs", ex, "--follow")
    # the first line arrives while the task still runs
    wait_for(lambda: b"one" in (follow.out_file.seek(0) or follow.out_file.read()), timeout=20,
             what="the first line")
    assert follow.poll() is None
    gate.write_text("")
    res = orch.finish(follow, timeout=30)
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout == ("==> a (attempt 1) <==\none\ntwo\n==> b (attempt 1) <==\nthree\n"), res.stdout
    assert orch.finish(run).returncode == EXIT_OK
    assert orch.show(ex)["status"] == "succeeded"


# --------------------------------------------------------------------------- orch worker

def test_worker_logs_its_shutdown_as_the_engine(tmp_path):
    from pgutil import Node, Postgres
    pg = Postgres().start()
    node = None
    try:
        url = pg.database()
        node = Node(tmp_path, url, "w1", role="worker")
        res = node.orch("db", "migrate")
        assert res.returncode == EXIT_OK, res.stderr
        node.start()
        assert node.stop(signal.SIGTERM) == EXIT_OK
        log = node.log()
        assert re.search(r"INFO \[Engine\] Received SIGTERM: shutting down", log), log
        assert "[API]" not in log, log
    finally:
        if node:
            node.cleanup()
        pg.destroy()
