"""
A full disk under `orch server`: the data directory is a small tmpfs, filled up with a
filler file while an execution runs. The engine pauses instead of stopping: its state
changes wait in memory and are committed once space is freed; new executions get 503
with "disk full: <path>: no space left"; reads and /v1/health keep answering (health says
the disk is full, with its path); nothing acknowledged is lost. A restart while the disk
is still full takes the unfinished executions up without any garbage or sanitizer report,
and goes on by itself once space is freed.

Needs root (a tmpfs is mounted); skipped with the reason otherwise.
"""
import errno
import os
import subprocess
import time

import pytest

from apiutil import Server, sh, wf
from conftest import wait_for

TMPFS_SIZE = "3m"


def mount_tmpfs(path):
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs as the data directory needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")


def umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(path):
    """Write a filler file until the file system has no byte left."""
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            buf = b"\0" * chunk
            while True:
                try:
                    os.write(fd, buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    assert os.statvfs(path).f_bavail == 0


def free(path):
    os.unlink(path / "filler")


def held_workflow(s):
    """'hold' runs until released (release-<id>, or no 'hold' file), writing output
    meanwhile; 'after' follows."""
    s.apply(wf("df", [
        sh("hold", 'while [ -e "$E2E_TMP/hold" ] && [ ! -e "$E2E_TMP/release-$ORCH_EXECUTION_ID" ]; '
                   'do echo tick; sleep 0.05; done; echo held-done', retries=2),
        sh("after", "echo after", dependsOn=["hold"]),
    ]))


def task(d, name):
    return next(t for t in d["tasks"] if t["name"] == name)


def post_until_full(s, limit=2000):
    """POST executions until one is refused; return the accepted ids and the refusal."""
    accepted = []
    for _ in range(limit):
        r = s.post("/v1/workflows/quick/executions", None)
        if r.status != 201:
            return accepted, r
        accepted.append(r.json["id"])
    raise AssertionError(f"{limit} executions accepted on a full disk")


def test_disk_full_pauses_and_resumes(tmp_path):
    s = Server(tmp_path, grace="1s")
    data = s.data_dir
    mount_tmpfs(data)
    try:
        s.start()
        held_workflow(s)
        s.apply(wf("quick", [sh("q", "echo quick")]))

        # An execution running when the disk fills: its 'hold' task waits for its marker.
        (tmp_path / "hold").touch()
        first = s.trigger("df")["id"]
        s.wait_exec(first, until=lambda d: task(d, "hold")["status"] == "running")

        fill(data)
        t0 = time.monotonic()
        accepted, refused = post_until_full(s)
        # Refused with a clear message naming where.
        assert refused.status == 503, refused
        err = refused.json["error"]
        assert err["code"] == "unavailable", err
        assert "disk full: " in err["message"] and str(data) in err["message"], err
        assert "no space left" in err["message"], err
        assert s.proc.poll() is None, f"the server exited:\n{s.log()[-3000:]}"

        # Writes keep being refused; reads and health answer.
        r = s.post("/v1/workflows/quick/executions", None)
        assert r.status == 503 and "disk full" in r.json["error"]["message"], r
        h = s.get("/v1/health")
        assert h.status == 200, h
        assert h.json["status"] == "degraded", h.json
        disk = h.json["components"]["disk"]
        assert disk["full"] is True and disk["status"] == "degraded", disk
        assert disk["path"] == str(data), disk
        assert f"disk full: {data}: no space left" in disk["message"], disk
        assert s.get("/v1/executions").status == 200
        assert s.execution(first)["status"] == "running"
        text = s.wait_log("ERROR [Database] Disk full: ")
        assert text.count("ERROR [Database] Disk full: ") == 1, text[-3000:]
        line = next(x for x in text.splitlines() if "ERROR [Database] Disk full: " in x)
        assert str(data) in line, line

        # The running task ends while the disk is full: held, not lost.
        (tmp_path / f"release-{first}").touch()
        time.sleep(0.3)
        assert s.proc.poll() is None, f"the server exited:\n{s.log()[-3000:]}"
        assert "The engine stopped" not in s.log()

        free(data)
        d = s.wait_exec(first, timeout=20)
        assert d["status"] == "succeeded", d
        assert [a["status"] for a in task(d, "hold")["attempts"]] == ["succeeded"], d
        assert [a["status"] for a in task(d, "after")["attempts"]] == ["succeeded"], d
        for x in accepted:  # acknowledged: all there, all done
            assert s.wait_exec(x, timeout=20)["status"] == "succeeded"
        s.wait_log("INFO [Database] Disk space available again")
        took = time.monotonic() - t0
        assert took < 30, took
        # (its figures of the disk are sampled at most once a second)
        wait_for(lambda: s.get("/v1/health").json["components"]["disk"]["full"] is False,
                 timeout=5, what="health to say the disk is no longer full")
        assert s.post("/v1/workflows/quick/executions", None).status == 201

        # Restart while the disk is full, with two executions running: they are taken up
        # again (no garbage, no sanitizer report), and finish once space is freed.
        ids = [s.trigger("df")["id"] for _ in range(2)]
        for x in ids:
            s.wait_exec(x, until=lambda d: task(d, "hold")["status"] == "running")
        fill(data)
        code = s.stop()
        assert code == 0, f"exit {code}:\n{s.log()[-3000:]}"
        (tmp_path / "hold").unlink()
        s.start()
        h = s.get("/v1/health")
        assert h.status == 200 and h.json["components"]["disk"]["full"] is True, h.json
        r = s.post("/v1/workflows/quick/executions", None)
        assert r.status == 503 and "disk full" in r.json["error"]["message"], r
        log = s.log()
        assert "not resumed" not in log, log[-3000:]
        assert "The engine stopped" not in log, log[-3000:]
        free(data)
        for x in ids:
            d = s.wait_exec(x, timeout=20)
            assert d["status"] == "succeeded", d
            assert task(d, "after")["status"] == "succeeded", d
        code = s.stop()
        assert code == 0, f"exit {code}:\n{s.log()[-3000:]}"
        s.assert_log_clean()
        for text in (s.log(i) for i in range(len(s.logs))):
            assert "\\2" not in text and "\ufffd" not in text, text[-3000:]
    finally:
        s.cleanup()
        umount(data)


def stdout_of(s, exec_id, name):
    r = s.get(f"/v1/executions/{exec_id}/logs?task={name}")
    assert r.status == 200, r
    return "".join(i["data"] for i in r.json["items"] if i["stream"] == "stdout")


def test_disk_full_keeps_the_output_tail(tmp_path):
    """Output read while the disk is full is written once it is freed, and the tail kept
    (--max-output) is still at least the cap: the failed commits' flushes are forgotten,
    not counted as written."""
    cap = 1024
    s = Server(tmp_path, grace="1s")
    data = s.data_dir
    mount_tmpfs(data)
    try:
        s.start(extra=("--max-output", str(cap)))
        s.apply(wf("chatty", [sh(
            "talk", "head -c 1100 /dev/zero | tr '\\0' x; echo; "
                    'while [ ! -e "$E2E_TMP/release" ]; do echo tick123; sleep 0.02; done; '
                    "echo end")]))
        exec_id = s.trigger("chatty")["id"]
        wait_for(lambda: "tick123" in stdout_of(s, exec_id, "talk"), timeout=20,
                 what="the first output in the store")

        fill(data)
        s.wait_log("ERROR [Database] Disk full: ", timeout=10)
        # A few commits are tried and fail meanwhile (100, 200, 400, 800 ms apart).
        time.sleep(1.6)
        (tmp_path / "release").touch()
        free(data)
        d = s.wait_exec(exec_id, timeout=20)
        assert d["status"] == "succeeded", d
        out = stdout_of(s, exec_id, "talk")
        assert out.endswith("tick123\nend\n"), out[-200:]
        assert len(out) >= cap, f"{len(out)} bytes of output kept, fewer than the cap ({cap})"
        code = s.stop()
        assert code == 0, f"exit {code}:\n{s.log()[-3000:]}"
        s.assert_log_clean()
    finally:
        s.cleanup()
        umount(data)
