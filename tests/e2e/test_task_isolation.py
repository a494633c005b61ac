"""
What a task cannot reach: orch's own environment (secrets such as DATABASE_URL's password), and
the task output files of the data directory (private, verified, never through a symlink). With
--task-user, tasks run as that user (here `nobody`).
"""
import json
import os
import pwd
import shutil
import stat
import subprocess
import tempfile

import pytest

from conftest import (EXIT_FAILED, EXIT_INTERNAL, EXIT_OK, exec_id_from_summary, orch_binary,
                      task_by_name)

SECRET = "s3cret-pw-1b9f"
PEEK = ('cat /proc/$PPID/environ; echo; cat /proc/$PPID/cmdline; echo; '
        'cat /proc/$PPID/task/*/environ; echo "[$DATABASE_URL][$ORCH_TEST_TOKEN]"; true')


def _secret_env():
    return {"DATABASE_URL": f"postgres://orch:{SECRET}@127.0.0.1:1/orch",
            "ORCH_TEST_TOKEN": SECRET}


def test_task_cannot_read_orch_environment(orch):
    wf = orch.workflow({"name": "peek", "tasks": [{"name": "peek", "command": PEEK}]})
    # --data-dir wins over DATABASE_URL: SQLite, with the URL in orch's environment.
    res = orch.run("run", wf, env=_secret_env())
    assert res.returncode == EXIT_OK, res.stderr
    logs = orch.run("logs", exec_id_from_summary(res.stdout), "peek")
    assert logs.returncode == 0, logs.stderr
    assert "[][]" in logs.stdout, logs.stdout  # not inherited either
    assert SECRET not in logs.stdout, logs.stdout


def test_data_directory_files_are_private(orch):
    wf = orch.workflow({"name": "out", "tasks": [
        {"name": "o", "command": 'printf \'{"v": 1}\' > "$ORCH_OUTPUT"; echo "$ORCH_OUTPUT"'}]})
    res = orch.run("run", wf)
    assert res.returncode == EXIT_OK, res.stderr
    logs = orch.run("logs", exec_id_from_summary(res.stdout), "o").stdout
    assert str(orch.data_dir / "outputs") + "/" in logs, logs
    st = os.lstat(orch.data_dir / "outputs")
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) == 0o700
    names = [n for n in os.listdir(orch.data_dir) if n.startswith("orch.db")]
    assert "orch.db" in names and "orch.db-wal" in names, names
    for n in names:
        assert stat.S_IMODE(os.stat(orch.data_dir / n).st_mode) == 0o600, n


@pytest.mark.parametrize("how", ["world-writable", "someone-elses", "symlink"])
def test_output_directory_of_others_is_refused(orch, how):
    outputs = orch.data_dir / "outputs"
    orch.data_dir.mkdir(mode=0o700)
    if how == "symlink":
        elsewhere = orch.tmp / "elsewhere"
        elsewhere.mkdir(mode=0o700)
        outputs.symlink_to(elsewhere)
    else:
        outputs.mkdir()
        os.chmod(outputs, 0o777 if how == "world-writable" else 0o700)
        if how == "someone-elses":
            os.chown(outputs, pwd.getpwnam("nobody").pw_uid, -1)
    wf = orch.workflow({"name": "o", "tasks": [{"name": "o", "command": ["true"]}]})
    res = orch.run("run", wf)
    assert res.returncode == EXIT_INTERNAL, res.stderr
    assert "cannot use the task output directory" in res.stderr, res.stderr


def test_output_file_is_not_read_through_a_symlink(orch):
    forged = orch.tmp / "forged.json"
    forged.write_text('{"forged": true}')
    wf = orch.workflow({"name": "o", "tasks": [
        {"name": "o", "command": f'ln -s {forged} "$ORCH_OUTPUT"'}]})
    res = orch.run("run", wf)
    assert res.returncode == EXIT_FAILED, res.stderr
    t = task_by_name(orch.show(exec_id_from_summary(res.stdout)), "o")
    assert "symbolic link" in t["attempts"][0]["error"], t


@pytest.fixture
def shared_dir():
    """A data directory `nobody` can reach (pytest's tmp is root's only); removed after."""
    d = tempfile.mkdtemp(prefix="orch-e2e-task-user-", dir="/tmp")
    os.chmod(d, 0o711)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_task_user_runs_tasks_as_nobody(orch, shared_dir):
    nobody = pwd.getpwnam("nobody")
    data = os.path.join(shared_dir, "data")
    wf = orch.workflow({"name": "as-nobody", "tasks": [
        {"name": "who", "command": PEEK + '; id -u; printf \'{"uid": %s}\' "$(id -u)" > "$ORCH_OUTPUT"'},
        {"name": "then", "dependsOn": ["who"], "command": ["true"]}]})
    res = orch.run("run", wf, "--task-user", "nobody", "--data-dir", data, data_dir=False,
                   env=_secret_env())
    assert res.returncode == EXIT_OK, res.stderr
    exec_id = exec_id_from_summary(res.stdout)
    logs = orch.run("logs", exec_id, "who", "--data-dir", data, data_dir=False)
    assert logs.returncode == 0, logs.stderr
    assert SECRET not in logs.stdout, logs.stdout
    assert "Permission denied" in logs.stdout, logs.stdout
    assert f"\n{nobody.pw_uid}\n" in logs.stdout, logs.stdout
    show = orch.run("executions", "show", exec_id, "--json", "--data-dir", data, data_dir=False)
    t = task_by_name(json.loads(show.stdout), "who")
    assert t["output"] == {"uid": nobody.pw_uid}, t
    st = os.lstat(os.path.join(data, "outputs"))
    assert st.st_uid == nobody.pw_uid and stat.S_IMODE(st.st_mode) == 0o700
    for n in os.listdir(data):
        if n.startswith("orch.db"):
            assert stat.S_IMODE(os.stat(os.path.join(data, n)).st_mode) == 0o600, n


# Reads every writable mapping of orch through /proc/$PPID/mem and looks for the secret (built
# at run time: the definition, which orch holds too, only has its two halves).
SCAN_MEMORY = r'''/usr/bin/python3 -c '
import sys
needle = ("s3cret-pw" + "-1b9f").encode()
pp, found, err = int(sys.argv[1]), False, None
try:
    with open("/proc/%d/maps" % pp) as maps, open("/proc/%d/mem" % pp, "rb", 0) as mem:
        for line in maps:
            addr, perm = line.split()[:2]
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if "rw" not in perm or hi - lo > 1 << 28:
                continue
            try:
                mem.seek(lo)
                found = found or needle in mem.read(hi - lo)
            except OSError:
                pass
except OSError as e:
    err = e.errno
print("found" if found else "not found", err)
' "$PPID"
'''


def test_task_of_the_same_user_cannot_read_orch_memory(orch, shared_dir):
    """orch and its task as one non-root user: orch is not dumpable, so neither its environ
    nor its memory (where it keeps its copy of the environment) is open to the task."""
    nobody = pwd.getpwnam("nobody")
    data = os.path.join(shared_dir, "data")
    os.mkdir(data, 0o700)
    os.chown(data, nobody.pw_uid, nobody.pw_gid)
    wf = os.path.join(shared_dir, "wf.json")
    with open(wf, "w") as f:
        json.dump({"name": "scan", "tasks": [{"name": "scan", "command": SCAN_MEMORY}]}, f)
    os.chmod(wf, 0o644)
    env = orch.env(_secret_env())
    res = subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
                          "--clear-groups", "--", str(orch_binary()), "run", wf,
                          "--data-dir", data], capture_output=True, text=True, env=env,
                         cwd=shared_dir, timeout=60, stdin=subprocess.DEVNULL)
    assert res.returncode == EXIT_OK, res.stderr
    logs = subprocess.run([str(orch_binary()), "logs", exec_id_from_summary(res.stdout), "scan",
                           "--data-dir", data], capture_output=True, text=True, env=env,
                          timeout=60)
    assert logs.returncode == 0, logs.stderr
    assert "not found 13" in logs.stdout, logs.stdout  # EACCES


def _fds_of(pid):
    """{fd: target} of a process, from /proc (None once it is gone)."""
    try:
        return {int(n): os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_task_inherits_only_its_standard_descriptors(tmp_path):
    """A command task gets fds 0 (/dev/null), 1 and 2 (its output pipes) and nothing else of
    orch's: not the store's files, the HTTP API's sockets (many held open here), the
    epoll/eventfd/pidfd descriptors of the loop, nor the guard's socket."""
    import socket
    from apiutil import Server, sh, wf
    from conftest import wait_for

    s = Server(tmp_path, workers=2)
    s.start()
    held = []
    try:
        # Many connections, each with a request answered and kept alive (a few source
        # addresses: one address may hold only a share of the connections).
        for i in range(240):
            c = socket.create_connection(("127.0.0.1", s.port), timeout=5,
                                         source_address=(f"127.0.0.{2 + i % 6}", 0))
            c.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(65536).startswith(b"HTTP/1.1 "), i
            held.append(c)
        srv_fds = _fds_of(s.proc.pid)
        assert sum(t.startswith("socket:") for t in srv_fds.values()) >= 200, srv_fds
        pidfile = tmp_path / "task.pid"
        s.apply(wf("fds", [sh("t", ["/bin/sh", "-c", f'echo $$ > {pidfile}.tmp && '
                                    f'mv {pidfile}.tmp {pidfile} && exec sleep 60'])]))
        ex = s.trigger("fds")["id"]
        wait_for(lambda: pidfile.exists(), timeout=30, what="the task's pid file")
        pid = int(pidfile.read_text())
        # `exec sleep`: same pid; its descriptors are what orch gave the task.
        wait_for(lambda: (open(f"/proc/{pid}/comm").read().strip() == "sleep"), timeout=30,
                 what="the task to exec sleep")
        fds = _fds_of(pid)
        assert fds is not None and sorted(fds) == [0, 1, 2], fds
        assert fds[0] == "/dev/null", fds
        assert fds[1].startswith("pipe:") and fds[2].startswith("pipe:"), fds
        r = s.post(f"/v1/executions/{ex}/cancel")
        assert r.status in (200, 202), r
        s.wait_exec(ex)
    finally:
        for c in held:
            c.close()
        try:
            code = s.stop()
            assert code == 0, f"orch server exited with {code} on SIGTERM:\n{s.log()[-3000:]}"
        finally:
            s.cleanup()
