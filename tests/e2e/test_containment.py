"""
Containment of a task's processes: they die with the orch process that runs them (killed with
SIGKILL: PR_SET_PDEATHSIG on the first process, the guard for the rest of its process group and
its cgroup), and what a task left behind outside its process group (setsid, double fork) is
killed when the task ends, times out or is cancelled: with a cgroup per task where cgroup v2 is
writable, and with the fallback (orch is a child subreaper) everywhere, tested alone with
ORCH_TASK_CGROUPS=off.
"""
import os
import signal

import pytest

from conftest import EXIT_FAILED, EXIT_OK, exec_id_from_summary, pid_alive, read_pids, wait_for

ESCAPE = ('setsid sleep 333 & echo $! >> "$E2E_TMP/pids"; '
          '(setsid sh -c \'sleep 334 & echo $! >> "$E2E_TMP/pids"; wait\' &) ; '
          '(sh -c \'sleep 335 & echo $! >> "$E2E_TMP/pids"\' &) ; ')


def _cgroups_writable():
    """Can this process create a cgroup v2 under its own (as orch would)?"""
    for mnt in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(f"{mnt}/cgroup.controllers"):
            break
    else:
        return False
    with open("/proc/self/cgroup") as f:
        own = next((ln[3:].strip() for ln in f if ln.startswith("0::")), None)
    if own is None:
        return False
    probe = f"{mnt}{'' if own == '/' else own}/orch-e2e-probe-{os.getpid()}"
    try:
        os.mkdir(probe)
    except OSError:
        return False
    ok = os.access(f"{probe}/cgroup.kill", os.W_OK)
    os.rmdir(probe)
    return ok


CGROUPS = _cgroups_writable()
needs_cgroups = pytest.mark.skipif(not CGROUPS, reason="no writable cgroup v2 here")


@pytest.fixture(params=["cgroups", "fallback"])
def mode_env(request):
    """Both ways of holding a task's processes: a cgroup each (where possible), the fallback."""
    if request.param == "cgroups" and not CGROUPS:
        pytest.skip("no writable cgroup v2 here")
    return {} if request.param == "cgroups" else {"ORCH_TASK_CGROUPS": "off"}


def _wait_pids(path, n):
    return wait_for(lambda: len(read_pids(path)) >= n and read_pids(path), timeout=20,
                    what=f"{n} pids in {path}")


def test_setsid_and_double_fork_die_when_the_task_ends(orch, mode_env):
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "escape", "tasks": [
        {"name": "a", "command": ESCAPE + 'while [ $(wc -l < "$E2E_TMP/pids") -lt 3 ]; '
                                          'do sleep 0.05; done; echo done'},
        {"name": "b", "dependsOn": ["a"], "command": ["true"]},
    ]})
    res = orch.run("run", wf, timeout=60, env=mode_env)
    assert res.returncode == EXIT_OK, res.stderr
    written = read_pids(pids)
    assert len(written) == 3, written
    for pid in written:
        wait_for(lambda: not pid_alive(pid), timeout=5,
                 what=f"process {pid} that left the task's group to be killed")


def test_escaped_processes_die_when_the_task_times_out(orch, mode_env):
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "escape-timeout", "tasks": [
        {"name": "a", "timeout": "1s", "command": ESCAPE + 'exec sleep 30'},
    ]})
    res = orch.run("run", wf, "--kill-grace", "200ms", timeout=60, env=mode_env)
    assert res.returncode == EXIT_FAILED, res.stderr
    assert "timed out after 1" in res.stderr
    written = _wait_pids(pids, 3)
    for pid in written:
        wait_for(lambda: not pid_alive(pid), timeout=5,
                 what=f"process {pid} of the timed-out task to be killed")


def test_task_processes_die_with_a_killed_orch(orch, mode_env):
    """kill -9 of orch: the task's shell and its background process die at once, so neither
    does its side effect while the attempt is given up (and re-run on resume)."""
    pids = orch.track_pids(orch.tmp / "pids")
    effect = orch.tmp / "effect"
    wf = orch.workflow({"name": "die-with-orch", "tasks": [
        {"name": "a", "command": 'echo $$ >> "$E2E_TMP/pids"; '
                                 '(sleep 30; echo bg >> "$E2E_TMP/effect") & '
                                 'echo $! >> "$E2E_TMP/pids"; sleep 30; echo fg >> "$E2E_TMP/effect"'},
    ]})
    p = orch.spawn("run", wf, env=mode_env)
    written = _wait_pids(pids, 2)
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=10) == -signal.SIGKILL
    for pid in written:
        wait_for(lambda: not pid_alive(pid), timeout=10,
                 what=f"task process {pid} to die with orch")
    assert not effect.exists()


@needs_cgroups
def test_escaped_processes_die_with_a_killed_orch(orch):
    """In a cgroup, even what left the task's process group dies with orch (the guard)."""
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "escape-kill", "tasks": [
        {"name": "a", "command": ESCAPE + 'echo $$ >> "$E2E_TMP/pids"; exec sleep 30'}]})
    p = orch.spawn("run", wf)
    written = _wait_pids(pids, 4)
    os.kill(p.pid, signal.SIGKILL)
    assert p.wait(timeout=10) == -signal.SIGKILL
    for pid in written:
        wait_for(lambda: not pid_alive(pid), timeout=10,
                 what=f"process {pid} to die with orch")


@needs_cgroups
def test_escapee_without_its_environment_dies_when_its_task_ends(orch):
    """A process that left the group and cleared its environment cannot be told apart by the
    fallback while another task runs; its task's cgroup holds it."""
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "escape-env", "tasks": [
        {"name": "a", "command": 'env -i setsid sleep 336 & echo $! >> "$E2E_TMP/pids"; '
                                 'sleep 0.2'},
        {"name": "b", "command": 'while [ ! -s "$E2E_TMP/pids" ]; do sleep 0.05; done; '
                                 'p=$(cat "$E2E_TMP/pids"); i=0; '
                                 'while kill -0 $p 2>/dev/null && [ $i -lt 200 ]; do '
                                 'sleep 0.05; i=$((i+1)); done; '
                                 'kill -0 $p 2>/dev/null && echo alive || echo dead'}]})
    res = orch.run("run", wf, "--workers", "2", timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    logs = orch.run("logs", exec_id_from_summary(res.stdout), "b").stdout
    assert "dead" in logs, logs
