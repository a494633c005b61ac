"""
Crash recovery end to end: `orch run` is killed with SIGKILL in the middle of a task and
`orch resume` finishes the execution: finished tasks are not re-run, the running attempt is
recorded as lost and retried, its processes die with orch (or, should they outlive it, the
resume kills their orphaned process group), nothing stays running.
Also: resume with nothing to do, of a finished execution, and of one whose owner is alive.
"""
import os
import re
import signal
import time
from datetime import datetime, timezone

from conftest import (EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, exec_id_from_summary, pid_alive,
                      read_pids, task_by_name, wait_for)

LOST = "lost: the orch process running it died"


def epoch_ms(iso):
    dt = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000)


def chain_workflow(orch):
    """a -> b -> c; b sleeps 30 s only while the marker file exists."""
    return orch.workflow({"name": "recover-chain", "tasks": [
        {"name": "a", "command": 'echo a >> "$E2E_TMP/counter"'},
        {"name": "b", "dependsOn": ["a"], "retries": 1,
         "retryBackoff": {"initial": "100ms", "jitter": False},
         "command": 'echo b-start >> "$E2E_TMP/counter"; echo $$ > "$E2E_TMP/bpid"; '
                    'if [ -e "$E2E_TMP/marker" ]; then exec sleep 30; fi'},
        {"name": "c", "dependsOn": ["b"], "command": 'echo c >> "$E2E_TMP/counter"'},
    ]})


def only_execution(orch):
    res, j = orch.run_json("executions", "list")
    assert res.returncode == 0, res.stderr
    assert len(j["items"]) == 1, j
    return j["items"][0]["id"]


def start_and_crash(orch, wf, pid_file, task):
    """Start `orch run`, wait until `task` runs with its pid committed, then kill -9 orch."""
    p = orch.spawn("run", wf)
    pid = wait_for(lambda: (read_pids(pid_file) or [None])[0], timeout=20,
                   what=f"task {task} to write its pid")
    exec_id = wait_for(lambda: _exec_id_or_none(orch), timeout=10, what="the execution")

    def pid_committed():
        at = task_by_name(orch.show(exec_id), task)["attempts"]
        return at and at[-1]["pid"] == pid
    wait_for(pid_committed, timeout=10, what="the task's pid in the store")
    os.kill(p.pid, signal.SIGKILL)  # orch alone: it runs in its own session
    assert p.wait(timeout=10) == -signal.SIGKILL
    return exec_id, pid


def _exec_id_or_none(orch):
    res, j = orch.run_json("executions", "list")
    return j["items"][0]["id"] if res.returncode == 0 and j["items"] else None


def test_kill_9_then_resume(orch):
    wf = chain_workflow(orch)
    bpid_file = orch.track_pids(orch.tmp / "bpid")
    (orch.tmp / "marker").touch()
    exec_id, orphan = start_and_crash(orch, wf, bpid_file, "b")

    # What the crash left: the execution and b running, c pending, b's process orphaned.
    j = orch.show(exec_id)
    assert j["status"] == "running"
    assert {t["name"]: t["status"] for t in j["tasks"]} == \
        {"a": "succeeded", "b": "running", "c": "pending"}
    b = task_by_name(j, "b")
    assert [(a["number"], a["status"], a["pid"]) for a in b["attempts"]] == \
        [(1, "running", orphan)]
    # b's process died with orch (PR_SET_PDEATHSIG, the guard): it cannot finish its work
    # unsupervised while its attempt is retried
    wait_for(lambda: not pid_alive(orphan), timeout=10, what="b's sleep to die with orch")
    assert (orch.tmp / "counter").read_text() == "a\nb-start\n"

    # Resume with the same definition; b no longer sleeps on its retry.
    (orch.tmp / "marker").unlink()
    t0 = time.monotonic()
    res = orch.run("resume", timeout=60)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_OK, res.stderr
    assert took < 10, f"resume took {took:.1f}s"
    assert exec_id_from_summary(res.stdout) == exec_id
    assert re.search(rf"^Execution {exec_id} succeeded in ", res.stdout, re.M), res.stdout
    assert "Task 'b' attempt 1 was lost (its orch process died)" in res.stderr
    assert re.search(rf"Execution {exec_id} of 'recover-chain' resumed: 1 of 3 tasks already "
                     r"final", res.stderr), res.stderr

    # a and c ran exactly once, b twice (the lost attempt and its retry).
    assert (orch.tmp / "counter").read_text() == "a\nb-start\nb-start\nc\n"
    assert not pid_alive(orphan), "the orphaned sleep of the lost attempt was not killed"

    j = orch.show(exec_id)
    assert j["status"] == "succeeded"
    assert j["error"] is None
    assert {t["name"]: t["status"] for t in j["tasks"]} == \
        {"a": "succeeded", "b": "succeeded", "c": "succeeded"}
    b = task_by_name(j, "b")
    assert b["attempt"] == 2
    assert [(a["number"], a["status"]) for a in b["attempts"]] == [(1, "lost"), (2, "succeeded")]
    assert b["attempts"][0]["error"] == LOST
    assert b["attempts"][0]["pid"] == orphan
    assert b["attempts"][0]["finishedAt"] is not None
    assert b["attempts"][1]["exitCode"] == 0
    for name in ("a", "c"):
        t = task_by_name(j, name)
        assert [(a["number"], a["status"], a["exitCode"]) for a in t["attempts"]] == \
            [(1, "succeeded", 0)], (name, t["attempts"])
    # nothing is left running: no task, no attempt
    stuck = [(t["name"], a["number"]) for t in j["tasks"] for a in t["attempts"]
             if a["status"] == "running"]
    assert not stuck, f"attempts still 'running' after resume: {stuck}"

    # Nothing more to resume; resuming the finished execution is refused.
    again = orch.run("resume")
    assert again.returncode == EXIT_OK
    assert again.stdout == "No unfinished executions to resume.\n"
    by_id = orch.run("resume", exec_id)
    assert by_id.returncode == EXIT_FAILED
    assert f"execution '{exec_id}' has already succeeded" in by_id.stderr
    assert by_id.stdout == ""
    assert (orch.tmp / "counter").read_text() == "a\nb-start\nb-start\nc\n"


def test_resume_by_id_after_crash(orch):
    wf = chain_workflow(orch)
    bpid_file = orch.track_pids(orch.tmp / "bpid")
    (orch.tmp / "marker").touch()
    exec_id, orphan = start_and_crash(orch, wf, bpid_file, "b")
    (orch.tmp / "marker").unlink()
    res, j = orch.run_json("resume", exec_id, timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    assert j["id"] == exec_id and j["status"] == "succeeded"
    assert [a["status"] for a in task_by_name(j, "b")["attempts"]] == ["lost", "succeeded"]
    assert not pid_alive(orphan)
    assert (orch.tmp / "counter").read_text() == "a\nb-start\nb-start\nc\n"


def test_lost_attempt_runs_again_without_using_retries(orch):
    """An attempt lost because orch died is not the task's failure: a task with the
    default `retries: 0` runs again and the execution succeeds."""
    wf = orch.workflow({"name": "no-retry", "tasks": [
        {"name": "long", "command": 'echo $$ > "$E2E_TMP/pid"; '
                                    'if [ -e "$E2E_TMP/marker" ]; then exec sleep 30; fi'},
        {"name": "next", "dependsOn": ["long"], "command": ["true"]},
    ]})
    (orch.tmp / "marker").touch()
    pid_file = orch.track_pids(orch.tmp / "pid")
    exec_id, orphan = start_and_crash(orch, wf, pid_file, "long")
    (orch.tmp / "marker").unlink()
    res = orch.run("resume", timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    assert "Task 'long' attempt 1 lost: the orch process running it died; running it again " \
           "(lost run 1 of 3 that use no retry)" in res.stderr, res.stderr
    j = orch.show(exec_id)
    assert j["status"] == "succeeded", j
    t = task_by_name(j, "long")
    assert t["status"] == "succeeded"
    assert [(a["number"], a["status"], a["error"]) for a in t["attempts"]] == \
        [(1, "lost", LOST), (2, "succeeded", None)]
    assert task_by_name(j, "next")["status"] == "succeeded"
    assert not pid_alive(orphan)


def test_task_that_kills_its_node_ends(orch):
    """A task that kills orch each time it runs: its lost attempts run again outside its
    retries only up to ORCH_MAX_LOST_ATTEMPTS (1 here), then count as failures: with
    `retries: 0` the task fails, and nothing loops."""
    killer = orch.tmp / "orchpid"
    wf = orch.workflow({"name": "killer", "tasks": [
        {"name": "boom", "command": f'while [ ! -s "{killer}" ]; do sleep 0.02; done; '
                                    f'kill -9 "$(cat "{killer}")"; sleep 30'},
        {"name": "next", "dependsOn": ["boom"], "command": ["true"]},
    ]})
    env = {"ORCH_MAX_LOST_ATTEMPTS": "1"}
    for args in (("run", wf), ("resume",)):
        p = orch.spawn(*args, env=env)
        (orch.tmp / "orchpid.tmp").write_text(str(p.pid))
        os.replace(orch.tmp / "orchpid.tmp", killer)
        assert p.wait(timeout=60) == -signal.SIGKILL, orch.finish(p).stderr
        killer.unlink()
    exec_id = only_execution(orch)
    res = orch.run("resume", timeout=60, env=env)
    assert res.returncode == EXIT_FAILED, res.stderr
    j = orch.show(exec_id)
    assert j["status"] == "failed"
    t = task_by_name(j, "boom")
    assert t["status"] == "failed"
    assert [(a["number"], a["status"], a["error"]) for a in t["attempts"]] == \
        [(1, "lost", LOST), (2, "lost", LOST)]
    assert task_by_name(j, "next")["status"] == "upstream_failed"
    assert "Task 'boom' failed: " + LOST in res.stderr
    bad = orch.run("resume", env={"ORCH_MAX_LOST_ATTEMPTS": "-1"})
    assert bad.returncode == 2 and "invalid ORCH_MAX_LOST_ATTEMPTS" in bad.stderr


def test_sleep_task_continues_after_crash(orch):
    wf = orch.workflow({"name": "nap-crash", "tasks": [
        {"name": "mark", "command": 'echo $$ > "$E2E_TMP/pid"'},
        {"name": "nap", "type": "sleep", "duration": "3s", "dependsOn": ["mark"]},
        {"name": "after", "dependsOn": ["nap"], "command": ["true"]},
    ]})
    p = orch.spawn("run", wf)
    wait_for(lambda: (orch.tmp / "pid").exists(), timeout=20, what="the first task")
    exec_id = wait_for(lambda: _exec_id_or_none(orch), timeout=10, what="the execution")
    wait_for(lambda: task_by_name(orch.show(exec_id), "nap")["status"] == "running",
             timeout=10, what="the sleep task to start")
    time.sleep(1.0)
    os.kill(p.pid, signal.SIGKILL)
    killed_at = time.time()
    p.wait(timeout=10)
    started = epoch_ms(task_by_name(orch.show(exec_id), "nap")["attempts"][0]["startedAt"])
    left = 3.0 - (killed_at - started / 1000)  # what was left of the 3 s when orch died
    assert left < 2.05
    t0 = time.monotonic()
    res = orch.run("resume", timeout=60)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_OK, res.stderr
    # the sleep continued with what was left; it did not start over
    assert took < max(left, 0) + 1.5, f"resume took {took:.2f}s with {left:.2f}s left"
    j = orch.show(exec_id)
    assert j["status"] == "succeeded"
    nap = task_by_name(j, "nap")
    assert [(a["number"], a["status"]) for a in nap["attempts"]] == [(1, "succeeded")]
    a = nap["attempts"][0]
    # and it did not end early either: 3 s in all, across the crash
    assert epoch_ms(a["finishedAt"]) - epoch_ms(a["startedAt"]) >= 2990, a


def test_resume_with_nothing_to_do(orch):
    res = orch.run("resume")
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout == "No unfinished executions to resume.\n"
    wf = orch.workflow({"name": "done", "tasks": [{"name": "a", "command": ["true"]}]})
    assert orch.run("run", wf).returncode == EXIT_OK
    res = orch.run("resume")
    assert res.returncode == EXIT_OK
    assert res.stdout == "No unfinished executions to resume.\n"
    res = orch.run("resume", "--json")
    assert res.returncode == EXIT_OK
    assert "No unfinished" not in res.stdout  # --json keeps stdout for JSON only


def test_resume_of_finished_execution(orch):
    ok = orch.workflow({"name": "fin", "tasks": [{"name": "a", "command": ["true"]}]})
    bad = orch.workflow({"name": "fin2", "tasks": [{"name": "a", "command": ["false"]}]})
    r1, j1 = orch.run_json("run", ok)
    r2, j2 = orch.run_json("run", bad)
    assert (r1.returncode, r2.returncode) == (EXIT_OK, EXIT_FAILED)
    for j, word in ((j1, "succeeded"), (j2, "failed")):
        res = orch.run("resume", j["id"])
        assert res.returncode == EXIT_FAILED, res.stderr
        assert f"orch: execution '{j['id']}' has already {word}" in res.stderr
        assert orch.show(j["id"]) == j  # untouched


def test_resume_leaves_executions_of_a_live_owner_alone(orch):
    pid_file = orch.track_pids(orch.tmp / "pid")
    wf = orch.workflow({"name": "owned", "tasks": [
        {"name": "long", "command": 'echo $$ > "$E2E_TMP/pid"; exec sleep 30'},
        {"name": "next", "dependsOn": ["long"], "command": ["true"]},
    ]})
    p = orch.spawn("run", wf)
    pid = wait_for(lambda: (read_pids(pid_file) or [None])[0], timeout=20, what="the task")
    exec_id = wait_for(lambda: _exec_id_or_none(orch), timeout=10, what="the execution")

    res = orch.run("resume", timeout=30)
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout == "No unfinished executions to resume.\n"
    assert re.search(rf"Execution {exec_id} not resumed: execution '{exec_id}' is being run by "
                     r"another orch process", res.stderr), res.stderr

    res = orch.run("resume", exec_id, timeout=30)
    assert res.returncode == EXIT_FAILED, res.stderr
    assert f"orch: execution '{exec_id}' is being run by another orch process" in res.stderr

    # The owner was not disturbed: its task still runs as attempt 1.
    assert p.poll() is None
    assert pid_alive(pid)
    j = orch.show(exec_id)
    assert j["status"] == "running"
    long_ = task_by_name(j, "long")
    assert [(a["number"], a["status"]) for a in long_["attempts"]] == [(1, "running")]

    # and it still finishes its execution (cancelled by SIGTERM here).
    p.send_signal(signal.SIGTERM)
    res = orch.finish(p, timeout=30)
    assert res.returncode == EXIT_CANCELLED, res.stderr
    j = orch.show(exec_id)
    assert j["status"] == "cancelled"
    assert not pid_alive(pid)
    # once the owner is gone there is nothing to resume
    assert orch.run("resume").stdout == "No unfinished executions to resume.\n"


def test_sigterm_to_resume_interrupts_and_cancels_nothing(orch):
    """SIGTERM to `orch resume` stops it as a server's graceful shutdown does: the running
    tasks are interrupted once the grace is over, nothing is cancelled, and every
    execution is left for the next resume, which finishes them."""
    (orch.tmp / "marker").touch()
    crashed = []
    for k in ("one", "two"):
        wf = orch.workflow({"name": f"stoppable-{k}", "tasks": [
            {"name": "long", "retries": 2, "retryBackoff": {"initial": "10ms", "jitter": False},
             "command": f'echo $$ >> "$E2E_TMP/pid-{k}"; '
                        'if [ -e "$E2E_TMP/marker" ]; then exec sleep 30; fi'},
            {"name": "next", "dependsOn": ["long"], "command": ["true"]},
        ]})
        pid_file = orch.track_pids(orch.tmp / f"pid-{k}")
        p = orch.spawn("run", wf)
        pid = wait_for(lambda: (read_pids(pid_file) or [None])[0], timeout=20, what="the task")
        ex = wait_for(lambda: _exec_id_or_none(orch), timeout=10, what="the execution")
        wait_for(lambda: task_by_name(orch.show(ex), "long")["attempts"][-1]["pid"] == pid,
                 timeout=10, what="the task's pid in the store")
        os.kill(p.pid, signal.SIGKILL)
        assert p.wait(timeout=10) == -signal.SIGKILL
        crashed.append((ex, pid_file))

    p = orch.spawn("resume", env={"ORCH_SHUTDOWN_GRACE": "1s"})
    for ex, pid_file in crashed:  # the lost attempts run again, and sleep
        wait_for(lambda: len(read_pids(pid_file)) == 2 and pid_alive(read_pids(pid_file)[1]),
                 timeout=20, what="the second attempt")
    os.kill(p.pid, signal.SIGTERM)
    res = orch.finish(p, timeout=30)
    assert res.returncode == 8, (res.returncode, res.stderr[-3000:])
    for m in ("AddressSanitizer", "runtime error:"):
        assert m not in res.stderr
    for ex, pid_file in crashed:
        assert re.search(rf"^Execution {ex} interrupted \(0 of 2 tasks final\): 'orch resume' "
                         r"continues it$", res.stdout, re.M), res.stdout
        j = orch.show(ex)
        assert j["status"] == "running", j
        t = task_by_name(j, "long")
        assert t["status"] == "queued", t
        assert [a["status"] for a in t["attempts"]] == ["lost", "cancelled"], t["attempts"]
        assert t["attempts"][1]["error"].startswith("interrupted: orch is shutting down")
        assert task_by_name(j, "next")["status"] == "pending"
        assert not pid_alive(read_pids(pid_file)[1])
    assert "cancelled by signal" not in res.stderr

    (orch.tmp / "marker").unlink()
    res = orch.run("resume", timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    for ex, _ in crashed:
        j = orch.show(ex)
        assert j["status"] == "succeeded", j
        assert [a["status"] for a in task_by_name(j, "long")["attempts"]] == \
            ["lost", "cancelled", "succeeded"]
    bad = orch.run("resume", "--shutdown-grace", "soon")
    assert bad.returncode == 2 and "invalid shutdown grace" in bad.stderr, bad.stderr


def _guard_of(pid):
    """The guard process of orch `pid` (its child named orch-guard)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        kids = [int(x) for x in f.read().split()]
    for k in kids:
        try:
            with open(f"/proc/{k}/comm") as f:
                if f.read().strip() == "orch-guard":
                    return k
        except OSError:
            pass
    return None


def test_resume_kills_the_group_that_outlived_orch(orch):
    """Should a task's background process outlive orch (its guard was killed too), the
    resume kills the orphaned process group of the lost attempt."""
    wf = orch.workflow({"name": "outlive", "tasks": [
        {"name": "b", "command": 'echo $$ > "$E2E_TMP/bpid"; sleep 30 & '
                                 'echo $! >> "$E2E_TMP/spid"; wait'},
    ]})
    bpid_file = orch.track_pids(orch.tmp / "bpid")
    spid_file = orch.track_pids(orch.tmp / "spid")
    p = orch.spawn("run", wf)
    leader = wait_for(lambda: (read_pids(bpid_file) or [None])[0], timeout=20, what="b's pid")
    sleeper = wait_for(lambda: (read_pids(spid_file) or [None])[0], timeout=20,
                       what="b's background pid")
    exec_id = wait_for(lambda: _exec_id_or_none(orch), timeout=10, what="the execution")
    wait_for(lambda: task_by_name(orch.show(exec_id), "b")["attempts"][-1]["pid"] == leader,
             timeout=10, what="b's pid in the store")
    guard = wait_for(lambda: _guard_of(p.pid), timeout=10, what="orch's guard")
    os.kill(guard, signal.SIGKILL)
    os.kill(p.pid, signal.SIGKILL)
    p.wait(timeout=10)
    wait_for(lambda: not pid_alive(leader), timeout=10, what="b's shell to die with orch")
    assert pid_alive(sleeper), "test setup: the background sleep should have outlived orch"
    # No lost attempt that uses no retry: the resume ends the task at once (failed) instead
    # of running it again for 30 s.
    res = orch.run("resume", timeout=60, env={"ORCH_MAX_LOST_ATTEMPTS": "0"})
    assert res.returncode == EXIT_FAILED, res.stderr
    assert f"Task 'b': killed orphaned process group {leader} of attempt 1" in res.stderr, \
        res.stderr
    wait_for(lambda: not pid_alive(sleeper), timeout=10, what="the orphaned group to be killed")
