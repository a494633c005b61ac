"""
The resource monitor of `orch server` and its back-pressure, against the machine's real
figures: memory (thresholds set below what the machine uses, then raised again through the
config file and SIGHUP), the data directory's free space (a small tmpfs filled with a file),
and open file descriptors (the server's RLIMIT_NOFILE lowered and raised with prlimit).

Each crossing of a threshold logs one line, and going back under it one more, however many
samples are taken meanwhile. Under back-pressure a new execution is accepted (201) and its
command task stays queued, with waitingOn "pressure" saying why; /v1/health says it too,
with the fix; once the pressure is over the task runs.
"""
import errno
import os
import resource
import signal
import subprocess
from pathlib import Path

import pytest

import apiutil
from apiutil import Server, sh, wf
from conftest import wait_for

FAST = "100ms"  # ORCH_MONITOR_INTERVAL of these tests


def write_config(path, **settings):
    path.write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))


def config_server(tmp_path, **settings):
    """A server whose monitor settings come from a config file (re-read on SIGHUP)."""
    conf = tmp_path / "orch.conf"
    write_config(conf, ORCH_MONITOR_INTERVAL=FAST, **settings)
    return Server(tmp_path, env={"ORCH_CONFIG": str(conf)}), conf


def reload(s, conf, **settings):
    """New settings in the config file, then SIGHUP; returns once the monitor took them."""
    before = s.log().count("Resource monitor thresholds set")
    write_config(conf, ORCH_MONITOR_INTERVAL=FAST, **settings)
    os.kill(s.proc.pid, signal.SIGHUP)
    wait_for(lambda: s.log().count("Resource monitor thresholds set") > before, timeout=10,
             what="the monitor to take the new thresholds")


def samples(s, n):
    """Wait until the monitor has taken n more samples (its sampledAt moved n times)."""
    seen = set()

    def moved():
        seen.add(s.get("/v1/health").json["components"]["pressure"]["sampledAt"])
        return len(seen) > n

    wait_for(moved, timeout=30, what=f"{n} samples of the monitor")


def pressure(s):
    h = s.get("/v1/health")
    assert h.status == 200, h
    return h.json, h.json["components"]["pressure"]


def waiting(s, exec_id, name):
    t = next(t for t in s.execution(exec_id)["tasks"] if t["name"] == name)
    return t


def stop_clean(s):
    try:
        code = s.stop()
        assert code == 0, f"exit {code}:\n{s.log()[-3000:]}"
        s.assert_log_clean()
    finally:
        s.cleanup()


def test_memory_warning_logged_once_per_crossing(tmp_path):
    s, conf = config_server(tmp_path, ORCH_MEMORY_WARN="0.5%", ORCH_MEMORY_HIGH_WATER="100%")
    s.start()
    try:
        s.wait_log("WARN [Scheduler] High memory usage detected: ", timeout=10)
        samples(s, 5)
        log = s.log()
        assert log.count("High memory usage detected") == 1, log[-3000:]
        assert "Back-pressure" not in log, log[-3000:]
        h, bp = pressure(s)
        assert bp["active"] is False and bp["status"] == "ok", bp

        # A bad value in the file: reported, the thresholds in force are kept.
        write_config(conf, ORCH_MEMORY_WARN="lots")
        os.kill(s.proc.pid, signal.SIGHUP)
        s.wait_log("Reload: invalid ORCH_MEMORY_WARN 'lots'")
        samples(s, 2)
        assert "Memory usage back to normal" not in s.log()

        reload(s, conf, ORCH_MEMORY_WARN="100%", ORCH_MEMORY_HIGH_WATER="100%")
        s.wait_log("INFO [Scheduler] Memory usage back to normal: ")
        samples(s, 5)
        log = s.log()
        assert log.count("High memory usage detected") == 1, log[-3000:]
        assert log.count("Memory usage back to normal") == 1, log[-3000:]
    finally:
        stop_clean(s)


def test_memory_back_pressure_holds_new_tasks_and_resumes(tmp_path):
    s, conf = config_server(tmp_path, ORCH_MEMORY_HIGH_WATER="0.5%")
    s.start()
    try:
        s.apply(wf("bp", [sh("work", "echo done"), {"name": "mark", "type": "noop"}]))
        s.wait_log("WARN [Scheduler] Back-pressure on: memory usage ", timeout=10)
        r = s.post("/v1/workflows/bp/executions", None)
        assert r.status == 201, r  # accepted all the same
        ex = r.json["id"]
        # The noop completes (no process); the command waits for the pressure to end.
        d = s.wait_exec(ex, until=lambda d: waiting(s, ex, "work").get("waitingOn"))
        assert d["status"] == "running", d
        t = waiting(s, ex, "work")
        assert t["status"] == "queued" and t["attempts"] == [], t
        why = t["waitingOn"]
        assert why["reason"] == "pressure", why
        assert "memory usage" in why["message"] and "ORCH_MEMORY_HIGH_WATER" in why["message"], why
        assert waiting(s, ex, "mark")["status"] == "succeeded"
        samples(s, 3)
        assert waiting(s, ex, "work")["status"] == "queued"

        h, bp = pressure(s)
        assert h["status"] == "degraded", h
        assert bp["active"] is True and bp["status"] == "degraded", bp
        assert bp["reasons"] == ["memory"], bp
        assert "above the high-water mark" in bp["message"], bp
        assert bp["fix"] and "memory" in bp["fix"], bp
        assert bp["since"], bp
        res = s.orch("health", env={"ORCH_SERVER": s.url, "ORCH_API_KEY": s.admin_key})
        assert "back-pressure: memory usage" in res.stdout, res.stdout + res.stderr

        reload(s, conf, ORCH_MEMORY_HIGH_WATER="100%")
        s.wait_log("INFO [Scheduler] Back-pressure over: starting the queued tasks again")
        d = s.wait_exec(ex)
        assert d["status"] == "succeeded", d
        h, bp = pressure(s)
        assert bp["active"] is False and bp["message"] is None and bp["since"] is None, bp
        assert s.log().count("Back-pressure on:") == 1, s.log()[-3000:]
    finally:
        stop_clean(s)


def memory_cgroup_v1():
    """The directory of this process's cgroup v1 memory controller, or None."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "memory" in controllers.split(","):
                d = Path("/sys/fs/cgroup/memory" + path)
                return d if (d / "memory.limit_in_bytes").exists() else None
    return None


def working_set(cg):
    usage = int((cg / "memory.usage_in_bytes").read_text())
    for line in (cg / "memory.stat").read_text().splitlines():
        k, v = line.split()
        if k == "total_inactive_file":
            usage -= int(v)
    return usage


class _InCgroup:
    """`subprocess` for apiutil with the server started inside cgroup `cg` (v1)."""

    def __init__(self, cg):
        self.procs = str(cg / "cgroup.procs")

    def __getattr__(self, name):
        return getattr(subprocess, name)

    def Popen(self, *a, **kw):
        def enter():
            with open(self.procs, "w") as f:
                f.write(str(os.getpid()))
        kw["preexec_fn"] = enter
        return subprocess.Popen(*a, **kw)


def test_memory_of_a_limited_cgroup(tmp_path, monkeypatch):
    """The server started in a cgroup (v1 memory controller, as on this machine; v2's
    memory.max is read the same way) whose limit is then set to three times what it uses:
    the memory use is the cgroup's, and the warning says so; the limit raised, back to
    normal."""
    base = memory_cgroup_v1() if os.geteuid() == 0 else None
    if base is None:
        pytest.skip("needs root and a cgroup v1 memory controller (cgroup v2 has no "
                    "memory controller delegated here)")
    cg = base / f"orch-test-{os.getpid()}"
    try:
        cg.mkdir()
    except OSError as e:
        pytest.skip(f"cannot make a memory cgroup here: {e}")
    # The server starts inside it, so that what it uses is charged to it.
    monkeypatch.setattr(apiutil, "subprocess", _InCgroup(cg))
    s = Server(tmp_path, env={"ORCH_MONITOR_INTERVAL": FAST, "ORCH_MEMORY_WARN": "20%",
                              "ORCH_MEMORY_HIGH_WATER": "100%"})
    try:
        s.start()
        h = s.get("/v1/health").json["components"]["memory"]
        assert h["cgroupUsedPercent"] is None, h  # no limit yet
        assert "High memory usage detected" not in s.log()
        (cg / "memory.limit_in_bytes").write_text(str(3 * working_set(cg)))
        line = s.wait_log("WARN [Scheduler] High memory usage detected: ", timeout=10)
        line = next(x for x in line.splitlines() if "High memory usage detected" in x)
        assert "(of the cgroup's memory limit)" in line, line
        pct = int(line.split("detected: ")[1].split("%")[0])
        assert 20 <= pct <= 60, line
        # (health's own figures are sampled at most once a second)
        def limited():
            m = s.get("/v1/health").json["components"]["memory"]
            return m if m["cgroupUsedPercent"] is not None else None

        m = wait_for(limited, timeout=10, what="health's cgroupUsedPercent")
        assert m["cgroupUsedPercent"] >= 15, m
        (cg / "memory.limit_in_bytes").write_text(str(50 * working_set(cg)))
        s.wait_log("INFO [Scheduler] Memory usage back to normal: ", timeout=10)
        assert s.log().count("High memory usage detected") == 1
        stop_clean(s)
    finally:
        s.cleanup()
        try:
            cg.rmdir()
        except OSError:
            pass


# --------------------------------------------------------------------------- disk

def mount_tmpfs(path, size):
    path.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs as the data directory needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip() or r.returncode}")


def umount(path):
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave=0):
    """Write a filler file until `leave` bytes (about) are left free."""
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for chunk in (1 << 16, 4096, 512, 1):
            buf = b"\0" * chunk
            while free_bytes(path) - chunk >= leave:
                try:
                    os.write(fd, buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)


def test_low_disk_back_pressure_then_full(tmp_path):
    """Under ORCH_DISK_HIGH_WATER free on the data directory: warning and back-pressure,
    new executions queue; with no space at all, a submission gets 503 "disk full" and
    health says so with the fix; freed, everything accepted runs by itself."""
    s = Server(tmp_path, env={"ORCH_MONITOR_INTERVAL": FAST, "ORCH_DISK_HIGH_WATER": "4MiB",
                              "ORCH_DISK_WARN": "80%"})
    data = s.data_dir
    mount_tmpfs(data, "16m")
    try:
        s.start()
        s.apply(wf("d", [sh("t", "echo disk")]))
        assert s.wait_exec(s.trigger("d")["id"])["status"] == "succeeded"
        assert "Back-pressure" not in s.log()

        fill(data, leave=2 << 20)
        s.wait_log("WARN [Scheduler] Back-pressure on: only ", timeout=10)
        log = s.wait_log("WARN [Scheduler] Low disk space detected: ")
        assert str(data) in log
        ex = s.trigger("d")["id"]
        s.wait_exec(ex, until=lambda d: waiting(s, ex, "t").get("waitingOn"))
        why = waiting(s, ex, "t")["waitingOn"]
        assert why["reason"] == "pressure" and "ORCH_DISK_HIGH_WATER" in why["message"], why
        h, bp = pressure(s)
        assert bp["reasons"] == ["disk"] and str(data) in bp["message"], bp
        assert "free space" in bp["fix"], bp

        # No space at all: refused with the reason, nothing accepted is lost.
        fill(data)
        assert free_bytes(data) == 0
        accepted = []
        for _ in range(2000):
            r = s.post("/v1/workflows/d/executions", None)
            if r.status != 201:
                break
            accepted.append(r.json["id"])
        assert r.status == 503, r
        assert r.json["error"]["code"] == "unavailable", r.json
        assert "disk full: " in r.json["error"]["message"], r.json
        s.wait_log("ERROR [Database] Disk full: ")
        disk = s.get("/v1/health").json["components"]["disk"]
        assert disk["full"] is True and disk["fix"] and str(data) in disk["fix"], disk

        os.unlink(data / "filler")
        s.wait_log("INFO [Scheduler] Back-pressure over: ", timeout=10)
        s.wait_log("INFO [Scheduler] Disk space back to normal: ")
        for x in [ex] + accepted:
            assert s.wait_exec(x)["status"] == "succeeded"
        h, bp = pressure(s)
        assert bp["active"] is False, bp
        # (health's own figures of the disk are sampled at most once a second)
        disk = wait_for(lambda: (lambda d: d if d["full"] is False else None)(
            s.get("/v1/health").json["components"]["disk"]), timeout=10,
            what="health to say the disk is no longer full")
        assert disk["fix"] is None, disk
        log = s.log()
        assert log.count("Low disk space detected") == 1, log[-3000:]
        assert log.count("Disk space back to normal") == 1, log[-3000:]
        stop_clean(s)
    finally:
        s.cleanup()
        umount(data)


# --------------------------------------------------------------------------- descriptors

def test_fds_near_the_limit(tmp_path):
    """The server's soft RLIMIT_NOFILE lowered to just above what it has open: warning and
    back-pressure; raised again: both over."""
    s = Server(tmp_path, env={"ORCH_MONITOR_INTERVAL": FAST, "ORCH_FDS_WARN": "75%",
                              "ORCH_FDS_HIGH_WATER": "85%"})
    s.start()
    try:
        pid = s.proc.pid
        samples(s, 2)
        soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        n = len(os.listdir(f"/proc/{pid}/fd"))
        assert n >= 18, n  # so that n - 1 of n + 2 is still at least 85%
        # Two descriptors left to sample with (no request is made meanwhile: the log
        # alone is read).
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (n + 2, hard))
        s.wait_log("WARN [Scheduler] Open file descriptors near the limit: ", timeout=10)
        s.wait_log("WARN [Scheduler] Back-pressure on: ")
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
        s.wait_log("INFO [Scheduler] Open file descriptors back to normal: ", timeout=10)
        s.wait_log("INFO [Scheduler] Back-pressure over: ")
        h, bp = pressure(s)
        assert bp["active"] is False and h["components"]["fds"]["limit"] == soft, h
        log = s.log()
        assert log.count("Open file descriptors near the limit") == 1, log[-3000:]
        assert "Back-pressure for file descriptors over" in log, log[-3000:]
    finally:
        stop_clean(s)


def test_bad_settings_refused(tmp_path):
    s = Server(tmp_path)
    for env, msg in ((("ORCH_MEMORY_HIGH_WATER", "150%"), "invalid ORCH_MEMORY_HIGH_WATER"),
                     (("ORCH_DISK_HIGH_WATER", "5 parsecs"), "invalid ORCH_DISK_HIGH_WATER"),
                     (("ORCH_MONITOR_INTERVAL", "1ms"), "invalid ORCH_MONITOR_INTERVAL")):
        r = s.orch("server", "--data-dir", tmp_path / "data", "--listen", "127.0.0.1:1",
                   env={env[0]: env[1]})
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert msg in r.stderr, r.stderr
