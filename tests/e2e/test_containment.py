"""
Containment of a task's processes: they die with the orch process that runs them (killed with
SIGKILL: PR_SET_PDEATHSIG on the first process, the guard for the rest of its process group),
and what a task left behind outside its process group (setsid, double fork: reparented to orch,
a child subreaper) is killed when the task ends, times out or is cancelled.
"""
import os
import signal

from conftest import EXIT_FAILED, EXIT_OK, pid_alive, read_pids, wait_for

ESCAPE = ('setsid sleep 333 & echo $! >> "$E2E_TMP/pids"; '
          '(setsid sh -c \'sleep 334 & echo $! >> "$E2E_TMP/pids"; wait\' &) ; '
          '(sh -c \'sleep 335 & echo $! >> "$E2E_TMP/pids"\' &) ; ')


def _wait_pids(path, n):
    return wait_for(lambda: len(read_pids(path)) >= n and read_pids(path), timeout=20,
                    what=f"{n} pids in {path}")


def test_setsid_and_double_fork_die_when_the_task_ends(orch):
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "escape", "tasks": [
        {"name": "a", "command": ESCAPE + 'while [ $(wc -l < "$E2E_TMP/pids") -lt 3 ]; '
                                          'do sleep 0.05; done; echo done'},
        {"name": "b", "dependsOn": ["a"], "command": ["true"]},
    ]})
    res = orch.run("run", wf, timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    written = read_pids(pids)
    assert len(written) == 3, written
    for pid in written:
        wait_for(lambda: not pid_alive(pid), timeout=5,
                 what=f"process {pid} that left the task's group to be killed")


def test_escaped_processes_die_when_the_task_times_out(orch):
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "escape-timeout", "tasks": [
        {"name": "a", "timeout": "1s", "command": ESCAPE + 'exec sleep 30'},
    ]})
    res = orch.run("run", wf, "--kill-grace", "200ms", timeout=60)
    assert res.returncode == EXIT_FAILED, res.stderr
    assert "timed out after 1" in res.stderr
    written = _wait_pids(pids, 3)
    for pid in written:
        wait_for(lambda: not pid_alive(pid), timeout=5,
                 what=f"process {pid} of the timed-out task to be killed")


def test_task_processes_die_with_a_killed_orch(orch):
    """kill -9 of orch: the task's shell and its background process die at once, so neither
    does its side effect while the attempt is given up (and re-run on resume)."""
    pids = orch.track_pids(orch.tmp / "pids")
    effect = orch.tmp / "effect"
    wf = orch.workflow({"name": "die-with-orch", "tasks": [
        {"name": "a", "command": 'echo $$ >> "$E2E_TMP/pids"; '
                                 '(sleep 30; echo bg >> "$E2E_TMP/effect") & '
                                 'echo $! >> "$E2E_TMP/pids"; sleep 30; echo fg >> "$E2E_TMP/effect"'},
    ]})
    p = orch.spawn("run", wf)
    written = _wait_pids(pids, 2)
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=10) == -signal.SIGKILL
    for pid in written:
        wait_for(lambda: not pid_alive(pid), timeout=10,
                 what=f"task process {pid} to die with orch")
    assert not effect.exists()
