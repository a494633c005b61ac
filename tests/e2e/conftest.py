"""
Shared fixtures for the end-to-end tests: they start the real `orch` binary.

The binary comes from $ORCH_BIN (set by CTest), else $ORCH_SRC/build/src/cli/orch,
else <repo>/build/src/cli/orch. A missing binary is an error of every test, never a
skip. Each test gets its own data directory under tmp_path; every process a test
starts is recorded and killed (by its own process group or pid) when the test ends.
"""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(os.environ.get("ORCH_SRC") or Path(__file__).resolve().parents[2])

# Sanitizer reports and crashes that must never appear on orch's stderr.
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:",
                     "UndefinedBehaviorSanitizer", "Segmentation fault", "core dumped")

LOG_LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (ERROR|WARN|INFO|DEBUG) \[[A-Za-z]+\] .+$")

# Exit codes of orch (src/cli/cli.h).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3
EXIT_TIMED_OUT, EXIT_CANCELLED, EXIT_NOT_FOUND, EXIT_INTERNAL = 4, 5, 6, 70


def orch_binary():
    b = os.environ.get("ORCH_BIN")
    if b:
        return Path(b)
    return REPO / "build" / "src" / "cli" / "orch"


ORCH = orch_binary()


@pytest.fixture(scope="session")
def orch_bin():
    """The orch binary; its absence fails every test that needs it (never a skip)."""
    if not (ORCH.is_file() and os.access(ORCH, os.X_OK)):
        pytest.fail(f"orch binary not found or not executable at '{ORCH}': build it "
                    f"and set ORCH_BIN (or ORCH_SRC with a build in $ORCH_SRC/build)",
                    pytrace=False)
    return ORCH


def base_env(extra=None):
    """orch's environment: ours without any ORCH_ setting that could change its behaviour."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCH_")}
    env["ORCH_NO_PROGRESS"] = "1"
    env.setdefault("LC_ALL", "C.UTF-8")
    # Leaks are errors; a sanitizer report must reach stderr for the checks below.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if extra:
        env.update(extra)
    return env


def assert_clean(res):
    """orch ended by itself (no signal) and reported no sanitizer error or crash."""
    err = res.stderr if isinstance(res.stderr, str) else res.stderr.decode("utf-8", "replace")
    assert res.returncode >= 0, f"orch died by signal {-res.returncode}; stderr:\n{err}"
    for m in SANITIZER_MARKERS:
        assert m not in err, f"'{m}' on orch's stderr:\n{err}"


def pid_alive(pid):
    """Is `pid` a running (not zombie) process?"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3]
    return state not in (b"Z", b"X")


def wait_for(pred, timeout=10.0, interval=0.05, what="condition"):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_pids(path):
    p = Path(path)
    if not p.exists():
        return []
    return [int(x) for x in p.read_text().split() if x.strip().isdigit()]


class Orch:
    """Runs the orch binary on one data directory; remembers what it started."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.data_dir = tmp_path / "data"
        self.procs = []        # Popen objects started with start_new_session=True
        self.task_pid_files = []  # files where tasks wrote their pids
        self._n = 0

    # ---- workflow files
    def workflow(self, definition, name=None):
        """Write a workflow definition (dict or raw str/bytes) to a new file; return its path."""
        self._n += 1
        path = self.tmp / (name or f"wf{self._n}.json")
        if isinstance(definition, (dict, list)):
            path.write_text(json.dumps(definition, indent=2))
        elif isinstance(definition, bytes):
            path.write_bytes(definition)
        else:
            path.write_text(definition)
        return path

    def args(self, args, data_dir=True):
        a = [str(ORCH)] + [str(x) for x in args]
        if data_dir:
            a += ["--data-dir", str(self.data_dir)]
        return a

    # ---- running
    def env(self, extra=None):
        # E2E_TMP reaches the tasks: their commands use it, and clean-up recognises them by it.
        e = {"E2E_TMP": str(self.tmp)}
        e.update(extra or {})
        return base_env(e)

    def run(self, *args, timeout=60, env=None, data_dir=True, check_clean=True, text=True,
            cwd=None):
        try:
            res = subprocess.run(self.args(args, data_dir), capture_output=True, text=text,
                                 errors="replace" if text else None, timeout=timeout,
                                 env=self.env(env), cwd=cwd or self.tmp,
                                 stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:  # orch was killed by subprocess.run
            def txt(b):
                return (b or b"").decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
            raise AssertionError(
                f"orch {' '.join(map(str, args))} did not finish within {timeout}s (killed)"
                f"\n--- stdout:\n{txt(e.stdout)}\n--- stderr:\n{txt(e.stderr)}") from None
        if check_clean:
            assert_clean(res)
        return res

    def run_json(self, *args, **kw):
        res = self.run(*args, "--json", **kw)
        try:
            return res, json.loads(res.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"not JSON ({e}): stdout:\n{res.stdout}\nstderr:\n{res.stderr}")

    def spawn(self, *args, env=None, data_dir=True):
        """Start orch in its own session (so it alone can be signalled); stdout/stderr to files."""
        self._n += 1
        out = open(self.tmp / f"spawn{self._n}.out", "w+b")
        err = open(self.tmp / f"spawn{self._n}.err", "w+b")
        p = subprocess.Popen(self.args(args, data_dir), stdout=out, stderr=err,
                             stdin=subprocess.DEVNULL, env=self.env(env), cwd=self.tmp,
                             start_new_session=True)
        p.out_file, p.err_file = out, err
        self.procs.append(p)
        return p

    @staticmethod
    def finish(p, timeout=60):
        """Wait for a spawned orch; return a CompletedProcess with its output."""
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
            p.err_file.seek(0)
            raise AssertionError(f"orch {' '.join(map(str, p.args[1:]))} did not finish within "
                                 f"{timeout}s (killed); stderr:\n"
                                 + p.err_file.read().decode("utf-8", "replace")) from None
        p.out_file.seek(0)
        p.err_file.seek(0)
        res = subprocess.CompletedProcess(p.args, rc,
                                          p.out_file.read().decode("utf-8", "replace"),
                                          p.err_file.read().decode("utf-8", "replace"))
        return res

    def show(self, exec_id):
        res, j = self.run_json("executions", "show", exec_id)
        assert res.returncode == 0, res.stderr
        return j

    def track_pids(self, path):
        self.task_pid_files.append(Path(path))
        return Path(path)

    def cleanup(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)  # its own session: orch only
                except ProcessLookupError:
                    pass
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            for f in (p.out_file, p.err_file):
                f.close()
        # Processes of tasks our orch started that are still there after a failure.
        for f in self.task_pid_files:
            for pid in read_pids(f):
                if pid_alive(pid) and _is_ours(pid, self.tmp):
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass


def _is_ours(pid, tmp):
    """Was `pid` started by a task of this test (its environment names our files)?"""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return b"ORCH_EXECUTION_ID=" in env and str(tmp).encode() in env


@pytest.fixture
def orch(tmp_path, orch_bin):
    o = Orch(tmp_path)
    try:
        yield o
    finally:
        o.cleanup()


def exec_id_from_summary(stdout):
    m = re.search(r"^Execution (ex_[0-9a-z]{16}) ", stdout, re.M)
    assert m, f"no 'Execution ID ...' line in:\n{stdout}"
    return m.group(1)


def task_by_name(detail, name):
    for t in detail["tasks"]:
        if t["name"] == name:
            return t
    raise AssertionError(f"no task '{name}' in {json.dumps(detail, indent=1)}")


def cmd_task(name, command, **kw):
    t = {"name": name, "command": command}
    t.update(kw)
    return t
