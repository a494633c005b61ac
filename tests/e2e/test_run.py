"""
`orch run` end to end: the real binary runs real processes on a fresh data directory.
Covers the summary and logs, the JSON view, the demo workflow, task timeouts and retries,
fencing of late reports, parallelism limits, the task environment, output capture and
clean-up of task processes.
"""
import json
import os
import re
import time
from datetime import datetime, timezone

from conftest import (EXIT_FAILED, EXIT_INVALID, EXIT_OK, EXIT_USAGE, LOG_LINE, REPO, exec_id_from_summary, pid_alive,
                      read_pids, task_by_name)

ID_RE = re.compile(r"^ex_[0-9a-hjkmnp-tv-z]{16}$")  # prefix + 16 Crockford base32 chars
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DUR = r"\d+(?:ms|\.\d{3}s)"


def ms(iso):
    """ISO 8601 instant (ms precision, UTC) -> epoch milliseconds."""
    assert ISO_RE.match(iso), iso
    dt = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000)


def all_attempts(detail):
    return [(t["name"], a) for t in detail["tasks"] for a in t["attempts"]]


def assert_nothing_running(detail):
    """No task and no attempt of a finished execution is left `running` (or queued/pending)."""
    assert detail["status"] not in ("running", "queued"), detail["status"]
    for t in detail["tasks"]:
        assert t["status"] not in ("running", "queued", "pending"), (t["name"], t["status"])
    stuck = [(n, a["number"], a["status"]) for n, a in all_attempts(detail)
             if a["status"] == "running"]
    assert not stuck, f"attempts left 'running' in a finished execution: {stuck}"


# --------------------------------------------------------------------------- hello / summary

def test_hello_summary_and_log_lines(orch):
    res = orch.run("run", REPO / "examples" / "hello.yaml")
    assert res.returncode == EXIT_OK, res.stderr
    out = res.stdout.splitlines()
    assert re.match(r"^TASK\s+STATUS\s+ATTEMPTS\s+DURATION\s+ERROR$", out[0]), out[0]
    for name in "abcd":
        assert any(re.match(rf"^{name}\s+succeeded\s+1\s+{DUR}\s*$", line) for line in out), \
            f"no summary row for task {name}:\n{res.stdout}"
    exec_id = exec_id_from_summary(res.stdout)
    assert ID_RE.match(exec_id)
    assert re.search(rf"^Execution {exec_id} succeeded in {DUR} \(4 succeeded\)$", res.stdout,
                     re.M), res.stdout

    # Every stderr line is a log line; the task results are there in the documented format.
    lines = [line for line in res.stderr.splitlines() if line]
    assert lines
    for line in lines:
        assert LOG_LINE.match(line), f"not a log line: {line!r}"
    for name in "ab":
        pat = (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z INFO \[TaskExecutor\] "
               rf"Task '{name}' succeeded in {DUR} \(attempt 1\)$")
        assert any(re.match(pat, line) for line in lines), \
            f"no success line for '{name}':\n{res.stderr}"
    # The sleep task 'c' took its 200ms.
    m = re.search(r"Task 'c' succeeded in (\d+)ms \(attempt 1\)", res.stderr)
    assert m and 195 <= int(m.group(1)) < 1000, res.stderr
    assert re.search(rf"INFO \[Engine\] Execution {exec_id} of 'hello' succeeded in", res.stderr)


def test_hello_json(orch):
    res, j = orch.run_json("run", REPO / "examples" / "hello.yaml")
    assert res.returncode == EXIT_OK, res.stderr
    assert ID_RE.match(j["id"]), j["id"]
    assert j["workflow"] == "hello"
    assert j["status"] == "succeeded"
    assert j["error"] is None
    assert [t["name"] for t in j["tasks"]] == ["a", "b", "c", "d"]
    for t in j["tasks"]:
        assert t["status"] == "succeeded", t
        assert len(t["attempts"]) == 1, t
        at = t["attempts"][0]
        assert at["number"] == 1
        assert at["status"] == "succeeded"
        for k in ("startedAt", "finishedAt"):
            assert ISO_RE.match(at[k]), (t["name"], k, at[k])
        assert ms(at["finishedAt"]) >= ms(at["startedAt"])
    for name in ("a", "b"):
        at = task_by_name(j, name)["attempts"][0]
        assert at["exitCode"] == 0, at
        assert at["signal"] is None
        assert isinstance(at["pid"], int) and at["pid"] > 0
    # Dependencies were respected: b and c started after a finished, d after b and c.
    a, b, c, d = (task_by_name(j, n)["attempts"][0] for n in "abcd")
    assert ms(b["startedAt"]) >= ms(a["finishedAt"])
    assert ms(c["startedAt"]) >= ms(a["finishedAt"])
    assert ms(c["finishedAt"]) - ms(c["startedAt"]) >= 195
    assert ms(d["startedAt"]) >= max(ms(b["finishedAt"]), ms(c["finishedAt"]))
    # `executions show --json` shows the very same execution.
    assert orch.show(j["id"]) == j
    # and `orch logs` has the output of the commands.
    logs = orch.run("logs", j["id"])
    assert logs.returncode == 0
    assert logs.stdout == ("==> a (attempt 1) <==\nhello from a\n"
                           "==> b (attempt 1) <==\nhello from b\n"), logs.stdout


# --------------------------------------------------------------------------- the demo

def test_demo_workflow(orch):
    res = orch.run("run", REPO / "examples" / "demo.yaml", "--param", "region=eu")
    assert res.returncode == EXIT_FAILED, res.stderr
    exec_id = exec_id_from_summary(res.stdout)
    assert re.search(r"^report-legacy\s+failed\s+1\s+\S+\s+exit status 2: legacy report: "
                     r"schema mismatch in column \"total\"$", res.stdout, re.M), res.stdout
    assert re.search(r"^publish-report\s+upstream_failed\s+0\s+-\s+upstream task failed$",
                     res.stdout, re.M), res.stdout
    assert re.search(rf"^Execution {exec_id} failed in {DUR} \(9 succeeded, 1 failed, "
                     r"1 upstream_failed\)$", res.stdout, re.M), res.stdout
    assert re.search(r"WARN \[TaskExecutor\] Task 'fetch-rates' attempt 1\b.*failed.*: exit "
                     r"status 1: rates API answered 503; retrying in \d+ms", res.stderr), res.stderr
    assert re.search(r"ERROR \[TaskExecutor\] Task 'report-legacy' failed: exit status 2: "
                     r"legacy report: schema mismatch", res.stderr), res.stderr

    j = orch.show(exec_id)
    assert j["status"] == "failed"
    assert j["params"] == {"region": "eu"}
    assert j["error"] == "one or more tasks failed"
    st = {t["name"]: t["status"] for t in j["tasks"]}
    assert st == {
        "prepare": "succeeded", "extract-orders": "succeeded", "extract-customers": "succeeded",
        "fetch-rates": "succeeded", "transform": "succeeded", "load": "succeeded",
        "report-legacy": "failed", "publish-report": "upstream_failed",
        "alert-on-failure": "succeeded", "cleanup": "succeeded", "done": "succeeded",
    }
    legacy = task_by_name(j, "report-legacy")
    assert len(legacy["attempts"]) == 1
    assert legacy["attempts"][0]["status"] == "failed"
    assert legacy["attempts"][0]["exitCode"] == 2
    assert legacy["attempts"][0]["error"] == \
        'exit status 2: legacy report: schema mismatch in column "total"'
    assert legacy["error"] == legacy["attempts"][0]["error"]
    assert task_by_name(j, "publish-report")["attempts"] == []

    rates = task_by_name(j, "fetch-rates")
    assert rates["attempt"] == 2
    assert [(a["number"], a["status"], a["exitCode"]) for a in rates["attempts"]] == \
        [(1, "failed", 1), (2, "succeeded", 0)]
    assert rates["attempts"][0]["error"] == "exit status 1: rates API answered 503"
    # back-off 500ms with +-20% jitter
    gap = ms(rates["attempts"][1]["startedAt"]) - ms(rates["attempts"][0]["finishedAt"])
    assert gap >= 395, gap
    # runIf: the alert (anyFailed) and the cleanup (allDone) ran after their dependencies.
    alert = task_by_name(j, "alert-on-failure")["attempts"]
    cleanup = task_by_name(j, "cleanup")["attempts"]
    assert [a["status"] for a in alert] == ["succeeded"]
    assert [a["status"] for a in cleanup] == ["succeeded"]
    assert ms(alert[0]["startedAt"]) >= ms(legacy["attempts"][0]["finishedAt"])
    assert_nothing_running(j)

    logs = orch.run("logs", exec_id)
    assert logs.returncode == 0, logs.stderr
    for text in ("==> prepare (attempt 1) <==\npreparing region eu\n",  # ORCH_PARAM_region
                 "extracting orders", "extracting customers",
                 "joined 1200 orders and 310 customers", "loaded into the warehouse",
                 "legacy report: schema mismatch in column \"total\"",
                 "ALERT: a demo-etl task failed", "cleaned up"):
        assert text in logs.stdout, f"{text!r} not in logs:\n{logs.stdout}"
    assert "published" not in logs.stdout

    fr = orch.run("logs", exec_id, "fetch-rates")
    assert fr.returncode == 0
    assert fr.stdout == ("==> fetch-rates (attempt 1) <==\nrates API answered 503\n"
                         "==> fetch-rates (attempt 2) <==\nrates fetched\n"), fr.stdout
    one = orch.run("logs", exec_id, "fetch-rates", "--attempt", "2")
    assert one.returncode == 0
    assert one.stdout == "rates fetched\n", one.stdout


# --------------------------------------------------------------------------- timeouts, retries

def test_task_timeout_with_retry_kills_processes(orch):
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "task-timeout", "tasks": [
        {"name": "slow", "command": 'echo $$ >> "$E2E_TMP/pids"; exec sleep 30',
         "timeout": "500ms", "retries": 1,
         "retryBackoff": {"initial": "100ms", "jitter": False}},
        {"name": "after", "dependsOn": ["slow"], "command": ["true"]},
    ]})
    t0 = time.monotonic()
    res, j = orch.run_json("run", wf, "--kill-grace", "1s", timeout=60)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_FAILED, res.stderr
    assert took < 10, f"run took {took:.1f}s: the 30s sleeps were not cut short"
    slow = task_by_name(j, "slow")
    assert slow["status"] == "timed_out"
    assert slow["error"] == "timed out after 500ms"
    assert [(a["number"], a["status"]) for a in slow["attempts"]] == \
        [(1, "timed_out"), (2, "timed_out")]
    for a in slow["attempts"]:
        assert a["error"] == "timed out after 500ms"
        assert 480 <= ms(a["finishedAt"]) - ms(a["startedAt"]) < 3000, a
    gap = ms(slow["attempts"][1]["startedAt"]) - ms(slow["attempts"][0]["finishedAt"])
    assert gap >= 95, gap
    assert task_by_name(j, "after")["status"] == "upstream_failed"
    assert j["status"] == "failed"
    assert re.search(r"WARN \[TaskExecutor\] Task 'slow' attempt 1\b.*failed.*: timed out after "
                     r"500ms; retrying in 100ms", res.stderr), res.stderr
    written = read_pids(pids)
    assert len(written) == 2, written
    assert [a["pid"] for a in slow["attempts"]] == written
    for pid in written:
        assert not pid_alive(pid), f"the sleep of a timed-out attempt (pid {pid}) still runs"
    assert_nothing_running(j)


def test_retries_exhausted_with_backoff(orch):
    wf = orch.workflow({"name": "always-fails", "tasks": [
        {"name": "flaky", "retries": 2,
         "retryBackoff": {"initial": "200ms", "factor": 2, "jitter": False},
         "command": 'echo "try $ORCH_ATTEMPT"; echo "boom $ORCH_ATTEMPT" >&2; exit 3'},
    ]})
    res, j = orch.run_json("run", wf)
    assert res.returncode == EXIT_FAILED, res.stderr
    t = task_by_name(j, "flaky")
    assert t["status"] == "failed"
    assert t["attempt"] == 3
    assert [(a["number"], a["status"], a["exitCode"]) for a in t["attempts"]] == \
        [(1, "failed", 3), (2, "failed", 3), (3, "failed", 3)]
    assert [a["error"] for a in t["attempts"]] == \
        [f"exit status 3: boom {n}" for n in (1, 2, 3)]
    assert t["error"] == "exit status 3: boom 3"
    a1, a2, a3 = t["attempts"]
    # back-off: 200ms, then 400ms (factor 2), no jitter; start times differ at least as much
    assert ms(a2["startedAt"]) - ms(a1["finishedAt"]) >= 198
    assert ms(a3["startedAt"]) - ms(a2["finishedAt"]) >= 398
    assert ms(a2["startedAt"]) - ms(a1["startedAt"]) >= 200
    assert ms(a3["startedAt"]) - ms(a2["startedAt"]) >= 400
    assert "retrying in 200ms" in res.stderr and "retrying in 400ms" in res.stderr, res.stderr
    assert re.search(r"ERROR \[TaskExecutor\] Task 'flaky' failed: exit status 3: boom 3",
                     res.stderr), res.stderr
    logs = orch.run("logs", j["id"], "flaky")
    for n in (1, 2, 3):
        assert f"==> flaky (attempt {n}) <==" in logs.stdout
        assert f"try {n}\n" in logs.stdout and f"boom {n}\n" in logs.stdout


# --------------------------------------------------------------------------- fencing

def test_upstream_failed_is_transitive(orch):
    """a -> b -> c: a fails, so b and c are both upstream_failed (never run); an
    independent task still runs."""
    marks = orch.tmp / "ran"
    wf = orch.workflow({"name": "chain-fail", "tasks": [
        {"name": "a", "command": ["false"]},
        {"name": "b", "dependsOn": ["a"], "command": f'echo b >> "{marks}"'},
        {"name": "c", "dependsOn": ["b"], "command": f'echo c >> "{marks}"'},
        {"name": "side", "command": ["true"]},
    ]})
    res, j = orch.run_json("run", wf, timeout=60)
    assert res.returncode == EXIT_FAILED, res.stderr
    assert j["status"] == "failed"
    assert task_by_name(j, "a")["status"] == "failed"
    for name in ("b", "c"):
        t = task_by_name(j, name)
        assert t["status"] == "upstream_failed", t
        assert t["attempts"] == [], t
    assert task_by_name(j, "side")["status"] == "succeeded"
    assert not marks.exists(), marks.read_text()
    # The text summary says so too.
    res = orch.run("run", wf, timeout=60)
    assert res.returncode == EXIT_FAILED, res.stderr
    for name in ("b", "c"):
        assert re.search(rf"^{name}\s+upstream_failed\s+0\s+-\s+upstream task failed$",
                         res.stdout, re.M), res.stdout
    assert_nothing_running(j)


def test_fencing_drops_late_report_of_timed_out_attempt(orch):
    pids = orch.track_pids(orch.tmp / "pids")
    # Attempt 1 ignores SIGTERM and lives until SIGKILL (1s after its 300ms timeout); attempt 2
    # starts while it still lives, notes that, and succeeds at once.
    cmd = ('echo $$ >> "$E2E_TMP/pids"; '
           'if [ "$ORCH_ATTEMPT" = 1 ]; then trap "" TERM; sleep 3; exit 7; fi; '
           'if kill -0 "$(head -n1 "$E2E_TMP/pids")" 2>/dev/null; then echo first-alive; fi; '
           'echo second')
    wf = orch.workflow({"name": "fencing", "tasks": [
        {"name": "f", "command": cmd, "timeout": "300ms", "retries": 1,
         "retryBackoff": {"initial": "100ms", "jitter": False}},
    ]})
    t0 = time.monotonic()
    res, j = orch.run_json("run", wf, "--kill-grace", "1s")
    took = time.monotonic() - t0
    assert res.returncode == EXIT_OK, res.stderr
    assert took < 2.9, f"took {took:.1f}s: attempt 1 was not killed after the grace period"
    t = task_by_name(j, "f")
    assert t["status"] == "succeeded"
    assert t["attempt"] == 2
    assert t["error"] is None
    a1, a2 = t["attempts"]
    assert (a1["number"], a1["status"], a1["exitCode"], a1["error"]) == \
        (1, "timed_out", None, "timed out after 300ms")
    assert (a2["number"], a2["status"], a2["exitCode"], a2["error"]) == (2, "succeeded", 0, None)
    assert j["status"] == "succeeded"
    logs = orch.run("logs", j["id"], "f", "--attempt", "2")
    assert logs.stdout == "first-alive\nsecond\n", \
        f"attempt 2 should have started while attempt 1 still ran:\n{logs.stdout}"
    assert "did not stop within 1000ms of SIGTERM: sending SIGKILL" in res.stderr, res.stderr
    assert re.search(r"Task 'f': dropped late report of attempt 1 \(current attempt 2, "
                     r"succeeded\)", res.stderr), res.stderr
    for pid in read_pids(pids):
        assert not pid_alive(pid)
    # The store agrees after the fact: attempt 1 stayed timed_out.
    assert orch.show(j["id"]) == j


def test_fencing_both_attempts_ignore_sigterm(orch):
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "fencing2", "tasks": [
        {"name": "f", "command": 'trap "" TERM; echo $$ >> "$E2E_TMP/pids"; sleep 3',
         "timeout": "300ms", "retries": 1,
         "retryBackoff": {"initial": "100ms", "jitter": False}},
    ]})
    res, j = orch.run_json("run", wf, "--kill-grace", "1s")
    assert res.returncode == EXIT_FAILED, res.stderr
    t = task_by_name(j, "f")
    assert t["status"] == "timed_out"
    assert [(a["number"], a["status"]) for a in t["attempts"]] == \
        [(1, "timed_out"), (2, "timed_out")]
    a1, a2 = t["attempts"]
    # attempt 2 began while attempt 1 was still in its SIGTERM grace period
    assert ms(a2["startedAt"]) < ms(a1["finishedAt"]) + 1000
    assert res.stderr.count("dropped late report of attempt") == 2, res.stderr
    assert "dropped late report of attempt 1" in res.stderr
    written = read_pids(pids)
    assert len(written) == 2
    for pid in written:
        assert not pid_alive(pid)
    assert orch.show(j["id"]) == j


# --------------------------------------------------------------------------- parallelism

def interval_cmd(name_file="times", sleep="0.4"):
    return ('s=$(date +%s%N); sleep ' + sleep + '; e=$(date +%s%N); '
            'echo "$ORCH_TASK $s $e" >> "$E2E_TMP/' + name_file + '"')


def read_intervals(path):
    out = {}
    for line in path.read_text().splitlines():
        name, s, e = line.split()
        out[name] = (int(s), int(e))
    return out


def overlapping(iv):
    spans = sorted(iv.values())
    return any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))


def three_tasks(name, **extra):
    d = {"name": name, "tasks": [{"name": n, "command": interval_cmd()} for n in "xyz"]}
    d.update(extra)
    return d


def test_workers_1_serializes(orch):
    wf = orch.workflow(three_tasks("serial"))
    res = orch.run("run", wf, "--workers", "1", timeout=10)
    assert res.returncode == EXIT_OK, res.stderr
    iv = read_intervals(orch.tmp / "times")
    assert sorted(iv) == ["x", "y", "z"]
    assert not overlapping(iv), iv


def test_workers_3_run_in_parallel(orch):
    wf = orch.workflow(three_tasks("parallel"))
    res = orch.run("run", wf, "--workers", "3", timeout=30)
    assert res.returncode == EXIT_OK, res.stderr
    iv = read_intervals(orch.tmp / "times")
    assert sorted(iv) == ["x", "y", "z"]
    # all three ran at the same time: every start before every end
    assert max(s for s, _ in iv.values()) < min(e for _, e in iv.values()), iv


def test_workers_from_environment(orch):
    wf = orch.workflow(three_tasks("serial-env"))
    res = orch.run("run", wf, env={"ORCH_WORKERS": "1"}, timeout=10)
    assert res.returncode == EXIT_OK, res.stderr
    assert not overlapping(read_intervals(orch.tmp / "times"))


def test_workflow_concurrency_1_serializes(orch):
    wf = orch.workflow(three_tasks("conc", concurrency=1))
    res = orch.run("run", wf, "--workers", "4", timeout=30)
    assert res.returncode == EXIT_OK, res.stderr
    iv = read_intervals(orch.tmp / "times")
    assert sorted(iv) == ["x", "y", "z"]
    assert not overlapping(iv), iv


def test_noop_and_sleep_joins(orch):
    wf = orch.workflow({"name": "joins", "tasks": [
        {"name": "x", "command": interval_cmd(sleep="0.2")},
        {"name": "y", "command": interval_cmd(sleep="0.3")},
        {"name": "join", "type": "noop", "dependsOn": ["x", "y"]},
        {"name": "pause", "type": "sleep", "duration": "300ms", "dependsOn": ["join"]},
        {"name": "final", "command": 'echo "final $(date +%s%N) 0" >> "$E2E_TMP/times"',
         "dependsOn": ["pause"]},
    ]})
    res, j = orch.run_json("run", wf, "--workers", "2", timeout=30)
    assert res.returncode == EXIT_OK, res.stderr
    iv = read_intervals(orch.tmp / "times")
    last_end = max(iv["x"][1], iv["y"][1])
    # the final task started at least the 300ms of the sleep after both branches ended
    assert iv["final"][0] - last_end >= 290 * 10**6, (iv, last_end)
    join = task_by_name(j, "join")
    assert join["status"] == "succeeded"
    assert [a["status"] for a in join["attempts"]] == ["succeeded"]
    assert join["attempts"][0]["pid"] is None  # a noop runs no process
    pause = task_by_name(j, "pause")
    assert pause["status"] == "succeeded"
    assert pause["attempts"][0]["pid"] is None
    assert ms(pause["attempts"][0]["finishedAt"]) - ms(pause["attempts"][0]["startedAt"]) >= 295
    assert_nothing_running(j)


def test_sleep_task_needs_no_worker_slot(orch):
    # "noop and sleep tasks use no process slot": a sleep task is not held back behind a
    # command that waits for the only worker slot.
    wf = orch.workflow({"name": "slots", "tasks": [
        {"name": "busy", "command": "sleep 0.6"},
        {"name": "blocked", "command": ["true"]},
        {"name": "nap", "type": "sleep", "duration": "100ms"},
        {"name": "join", "type": "noop", "dependsOn": ["nap"]},
    ]})
    res, j = orch.run_json("run", wf, "--workers", "1", timeout=10)
    assert res.returncode == EXIT_OK, res.stderr
    busy = task_by_name(j, "busy")["attempts"][0]
    nap = task_by_name(j, "nap")["attempts"][0]
    join = task_by_name(j, "join")["attempts"][0]
    assert ms(nap["startedAt"]) < ms(busy["finishedAt"]), (nap, busy)
    assert ms(join["finishedAt"]) < ms(busy["finishedAt"]), (join, busy)


def test_quick_tasks_attempts_are_recorded(orch):
    # 40 independent near-instant tasks, a slot for each: every attempt must end recorded with
    # its result; none may stay 'running' in a finished execution.
    tasks = [{"name": f"t{i}", "command": "true" if i % 2 else ["true"]} for i in range(40)]
    wf = orch.workflow({"name": "quick", "tasks": tasks})
    for _ in range(3):
        res, j = orch.run_json("run", wf, "--workers", "64", timeout=30)
        assert res.returncode == EXIT_OK, res.stderr
        assert j["status"] == "succeeded"
        assert_nothing_running(j)
        bad = [(n, a["status"], a["exitCode"]) for n, a in all_attempts(j)
               if (a["status"], a["exitCode"]) != ("succeeded", 0)]
        assert not bad, bad


def test_slots_freed_by_exits_are_reused(orch):
    # 12 near-instant tasks and 2 worker slots: a slot freed by an exit must be reused even
    # when both running tasks exit at once.
    tasks = [{"name": f"t{i}", "command": ["true"]} for i in range(12)]
    wf = orch.workflow({"name": "quick-slots", "tasks": tasks})
    for _ in range(3):
        res, j = orch.run_json("run", wf, "--workers", "2", timeout=10)
        assert res.returncode == EXIT_OK, res.stderr
        assert j["status"] == "succeeded"


# --------------------------------------------------------------------------- environment

def parse_env_file(path):
    env = {}
    for line in path.read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def test_task_environment(orch):
    wf = orch.workflow({"name": "env-wf", "env": {"WF_ONLY": "wf", "BOTH": "from-workflow"},
                        "params": {"color": {"type": "string", "default": "blue"},
                                   "n": {"type": "number", "default": 3}},
                        "tasks": [
        {"name": "with-env", "env": {"BOTH": "from-task", "TASK_ONLY": "t"},
         "command": 'env > "$E2E_TMP/env1.txt"'},
        {"name": "plain", "command": ["sh", "-c", 'env > "$E2E_TMP/env2.txt"']},
    ]})
    secrets = {"ORCH_SECRET_TEST": "s3cr3t-orch", "DATABASE_URL": "postgres://u:pw@h/db",
               "REDIS_URL": "redis://h:6379", "E2E_VISIBLE": "visible"}
    res = orch.run("run", wf, "--param", "color=red", env=secrets)
    assert res.returncode == EXIT_OK, res.stderr
    exec_id = exec_id_from_summary(res.stdout)
    e1 = parse_env_file(orch.tmp / "env1.txt")
    e2 = parse_env_file(orch.tmp / "env2.txt")
    for e, task in ((e1, "with-env"), (e2, "plain")):
        assert e["ORCH_EXECUTION_ID"] == exec_id
        assert e["ORCH_WORKFLOW"] == "env-wf"
        assert e["ORCH_TASK"] == task
        assert e["ORCH_ATTEMPT"] == "1"
        assert e["ORCH_PARAM_color"] == "red"
        assert e["ORCH_PARAM_n"] == "3"
        assert e["WF_ONLY"] == "wf"
        assert e["E2E_VISIBLE"] == "visible"  # orch's ordinary environment is inherited
        # orch's own settings and secrets never reach a task
        orch_vars = {k for k in e if k.startswith("ORCH_")}
        assert orch_vars == {"ORCH_EXECUTION_ID", "ORCH_WORKFLOW", "ORCH_TASK", "ORCH_ATTEMPT",
                             "ORCH_PARAM_color", "ORCH_PARAM_n", "ORCH_OUTPUT"}, orch_vars
        assert e["ORCH_OUTPUT"].endswith(f"/{exec_id}-{0 if task == 'with-env' else 1}-1.json")
        for k in ("DATABASE_URL", "REDIS_URL"):
            assert k not in e, f"{k} leaked into task {task}"
        assert not any("s3cr3t-orch" in v or "pw@h" in v for v in e.values())
    assert e1["BOTH"] == "from-task" and e1["TASK_ONLY"] == "t"
    assert e2["BOTH"] == "from-workflow" and "TASK_ONLY" not in e2


def test_working_dir(orch):
    wd = orch.tmp / "work dir"
    wd.mkdir()
    wf = orch.workflow({"name": "wd", "tasks": [
        {"name": "here", "workingDir": str(wd), "command": "pwd > pwd.txt"},
        {"name": "argv", "workingDir": str(wd), "command": ["touch", "made-by-argv"]},
    ]})
    res = orch.run("run", wf)
    assert res.returncode == EXIT_OK, res.stderr
    assert os.path.realpath((wd / "pwd.txt").read_text().strip()) == os.path.realpath(wd)
    assert (wd / "made-by-argv").exists()


def test_missing_working_dir_fails_the_attempt(orch):
    wf = orch.workflow({"name": "wd-missing", "tasks": [
        {"name": "nowhere", "workingDir": str(orch.tmp / "no-such-dir"), "command": ["true"]},
    ]})
    res, j = orch.run_json("run", wf)
    assert res.returncode == EXIT_FAILED, res.stderr
    t = task_by_name(j, "nowhere")
    assert t["status"] == "failed"
    assert "cannot run 'true'" in t["error"] and "no-such-dir" in t["error"], t["error"]


def test_argv_without_shell_and_string_with_shell(orch):
    wf = orch.workflow({"name": "shells", "tasks": [
        {"name": "argv", "command": ["printf", "%s|", "$HOME", "a b", "*", "`id`"]},
        {"name": "shell", "command": "printf '%s|' \"$HOME\" $((6*7))"},
    ]})
    res = orch.run("run", wf, env={"HOME": "/home/e2e-test"})
    assert res.returncode == EXIT_OK, res.stderr
    exec_id = exec_id_from_summary(res.stdout)
    argv = orch.run("logs", exec_id, "argv", "--attempt", "1")
    assert argv.stdout == "$HOME|a b|*|`id`|\n", argv.stdout
    shell = orch.run("logs", exec_id, "shell", "--attempt", "1")
    assert shell.stdout == "/home/e2e-test|42|\n", shell.stdout


def test_missing_program_fails_attempt(orch):
    wf = orch.workflow({"name": "noprog", "tasks": [
        {"name": "ghost", "command": ["e2e-no-such-program-4711", "--x"]},
        {"name": "dependent", "dependsOn": ["ghost"], "command": ["true"]},
    ]})
    res, j = orch.run_json("run", wf)
    assert res.returncode == EXIT_FAILED, res.stderr
    t = task_by_name(j, "ghost")
    assert t["status"] == "failed"
    assert len(t["attempts"]) == 1
    err = t["attempts"][0]["error"]
    assert "cannot run" in err and "e2e-no-such-program-4711" in err, err
    assert "No such file or directory" in err, err
    assert task_by_name(j, "dependent")["status"] == "upstream_failed"
    assert "Task 'ghost' failed: cannot run" in res.stderr


# --------------------------------------------------------------------------- output capture

def log_streams(orch, exec_id, task):
    """The captured output of `task` by stream, from `orch logs --json`."""
    lj = orch.run("logs", exec_id, task, "--json")
    assert lj.returncode == 0, lj.stderr
    data = {"stdout": "", "stderr": ""}
    for line in lj.stdout.splitlines():
        o = json.loads(line)
        assert o["task"] == task and o["attempt"] == 1
        assert ISO_RE.match(o["ts"])
        data[o["stream"]] += o["data"]
    return data


def test_output_cap_keeps_the_tail(orch):
    cap = 65536
    wf = orch.workflow({"name": "big-output", "tasks": [
        {"name": "big", "command": "echo FIRST-OUT; seq 1 450000; echo LAST-OUT"},  # ~3 MB
    ]})
    res = orch.run("run", wf, "--max-output", str(cap), timeout=120)
    assert res.returncode == EXIT_OK, res.stderr
    exec_id = exec_id_from_summary(res.stdout)
    d = log_streams(orch, exec_id, "big")["stdout"]
    # the tail: at least the cap (the output was far larger), at most the cap plus one chunk
    # (a chunk is at most the cap)
    assert cap <= len(d) <= 2 * cap, len(d)
    assert d.endswith("449999\n450000\nLAST-OUT\n"), d[-50:]
    assert "FIRST-OUT" not in d, "the head of the output was kept, not the tail"

    plain = orch.run("logs", exec_id, "big")
    assert plain.returncode == 0
    assert plain.stdout.startswith("==> big (attempt 1) <==\n")
    assert cap <= len(plain.stdout) <= 2 * cap + 100
    assert plain.stdout.endswith("450000\nLAST-OUT\n")
    assert "FIRST-OUT" not in plain.stdout


def test_output_cap_is_per_stream(orch):
    # The cap applies to each stream: a big stderr after a big stdout keeps both tails.
    cap = 65536
    wf = orch.workflow({"name": "big-both", "tasks": [
        {"name": "big", "command": "echo FIRST-OUT; seq 1 300000; echo LAST-OUT; "
                                   "echo FIRST-ERR >&2; seq 1 100000 >&2; echo LAST-ERR >&2"},
    ]})
    res = orch.run("run", wf, "--max-output", str(cap), timeout=120)
    assert res.returncode == EXIT_OK, res.stderr
    exec_id = exec_id_from_summary(res.stdout)
    data = log_streams(orch, exec_id, "big")
    for stream, first, last in (("stdout", "FIRST-OUT", "LAST-OUT"),
                                ("stderr", "FIRST-ERR", "LAST-ERR")):
        d = data[stream]
        assert cap <= len(d) <= 2 * cap, (stream, len(d))
        assert d.endswith(f"{last}\n"), (stream, d[-50:])
        assert first not in d, f"the head of {stream} was kept, not the tail"


def test_stdout_and_stderr_both_captured(orch):
    wf = orch.workflow({"name": "streams", "tasks": [
        {"name": "both", "command": "echo to-out; echo to-err >&2"},
    ]})
    res = orch.run("run", wf)
    assert res.returncode == EXIT_OK
    exec_id = exec_id_from_summary(res.stdout)
    lj = orch.run("logs", exec_id, "--json")
    got = sorted((json.loads(x)["stream"], json.loads(x)["data"]) for x in lj.stdout.splitlines())
    assert got == [("stderr", "to-err\n"), ("stdout", "to-out\n")], got


def test_binary_output_does_not_break_logs(orch):
    wf = orch.workflow({"name": "binary", "tasks": [
        {"name": "bin", "command": r"printf 'ok\377\376\000bin\300\n'; printf 'e\200rr\n' >&2"},
    ]})
    res = orch.run("run", wf)
    assert res.returncode == EXIT_OK, res.stderr
    exec_id = exec_id_from_summary(res.stdout)
    raw = orch.run("logs", exec_id, text=False)
    assert raw.returncode == 0, raw.stderr
    assert b"ok\xff\xfe\x00bin\xc0\n" in raw.stdout, raw.stdout
    assert b"e\x80rr\n" in raw.stdout

    lj = orch.run("logs", exec_id, "--json", text=False)
    assert lj.returncode == 0, lj.stderr
    lines = lj.stdout.decode("utf-8").splitlines()  # --json output must be valid UTF-8
    assert len(lines) == 2, lines
    objs = [json.loads(x) for x in lines]
    assert sorted(o["stream"] for o in objs) == ["stderr", "stdout"]
    out = next(o["data"] for o in objs if o["stream"] == "stdout")
    assert out.startswith("ok") and "bin" in out, out
    err = next(o["data"] for o in objs if o["stream"] == "stderr")
    assert err.startswith("e") and err.endswith("rr\n"), err


def test_invalid_utf8_error_message_in_json(orch):
    wf = orch.workflow({"name": "binary-error", "tasks": [
        {"name": "bad", "command": r"printf 'bad \377 byte\n' >&2; exit 3"},
    ]})
    res = orch.run("run", wf, "--json", text=False)
    assert res.returncode == EXIT_FAILED
    j = json.loads(res.stdout.decode("utf-8"))
    t = task_by_name(j, "bad")
    a = t["attempts"][0]
    assert a["exitCode"] == 3
    # the error is kept (the invalid byte replaced or escaped), not dropped from the JSON
    assert "error" in a and isinstance(a["error"], str), a
    assert a["error"].startswith("exit status 3: bad ") and a["error"].endswith(" byte"), a
    assert isinstance(t.get("error"), str) and t["error"].startswith("exit status 3"), t


# --------------------------------------------------------------------------- process clean-up

def test_background_child_is_killed_when_leader_exits(orch):
    bg = orch.track_pids(orch.tmp / "bgpid")
    wf = orch.workflow({"name": "bg", "tasks": [
        {"name": "spawner", "command": 'sleep 30 & echo $! > "$E2E_TMP/bgpid"; echo started; exit 0'},
        {"name": "next", "dependsOn": ["spawner"], "command": ["echo", "next"]},
    ]})
    t0 = time.monotonic()
    p = orch.spawn("run", wf)
    res = orch.finish(p, timeout=60)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_OK, res.stderr
    assert took < 10, f"took {took:.1f}s: orch waited for the background child"
    pids = read_pids(bg)
    assert len(pids) == 1
    assert not pid_alive(pids[0]), "the task's background child outlived it"
    exec_id = exec_id_from_summary(res.stdout)
    assert "started" in orch.run("logs", exec_id, "spawner").stdout


def test_no_processes_left_after_run(orch):
    pids = orch.track_pids(orch.tmp / "pids")
    wf = orch.workflow({"name": "tree", "tasks": [
        {"name": f"t{i}", "command": 'sh -c \'sleep 30 & echo $! >> "$E2E_TMP/pids"; wait\' & '
                                     'echo $! >> "$E2E_TMP/pids"; sleep 0.2; exit 0'}
        for i in range(3)
    ]})
    p = orch.spawn("run", wf, "--workers", "4")
    res = orch.finish(p, timeout=30)
    assert res.returncode == EXIT_OK, res.stderr
    written = read_pids(pids)
    assert len(written) == 6, written
    for pid in written:
        assert not pid_alive(pid), f"process {pid} started by a task outlived the run"


def test_task_outputs(orch):
    """A command task's output: the JSON object written to $ORCH_OUTPUT, else its exit code
    and the tail of its stdout; a bad output fails the attempt (and is retried)."""
    wf = orch.workflow({"name": "outputs", "tasks": [
        {"name": "obj", "command": 'printf \'{"path": "/d/x.csv", "rows": 3, "tags": ["a"]}\' '
                                   '> "$ORCH_OUTPUT"'},
        {"name": "plain", "command": ["sh", "-c", "echo one; printf 'two\\n\\n'"]},
        {"name": "binary", "command": ["sh", "-c", "printf 'ok \\377\\n'"]},
        {"name": "array", "command": 'echo "[1, 2]" > "$ORCH_OUTPUT"'},
        {"name": "broken", "command": 'echo "{\\"a\\": " > "$ORCH_OUTPUT"', "retries": 1,
         "retryBackoff": {"initial": "10ms"}},
        {"name": "empty", "command": ': > "$ORCH_OUTPUT"'},
        {"name": "huge", "command": ["/usr/bin/python3", "-c",
                                     "import json, os; open(os.environ['ORCH_OUTPUT'], 'w')"
                                     ".write(json.dumps({'s': 'x' * 300000}))"]},
        {"name": "later", "type": "noop", "dependsOn": ["obj"]},
    ]})
    res = orch.run("run", wf, "--json")
    assert res.returncode == EXIT_FAILED, res.stderr
    d = json.loads(res.stdout)
    t = {x["name"]: x for x in d["tasks"]}
    assert t["obj"]["output"] == {"path": "/d/x.csv", "rows": 3, "tags": ["a"]}
    assert t["plain"]["output"] == {"exitCode": 0, "stdout": "one\ntwo"}
    assert t["binary"]["output"] == {"exitCode": 0, "stdout": "ok \ufffd"}
    assert t["later"]["output"] is None
    assert t["array"]["status"] == "failed" and t["array"]["output"] is None
    assert "must be a JSON object, not an array" in t["array"]["error"]
    assert [a["status"] for a in t["broken"]["attempts"]] == ["failed", "failed"]
    assert "is not valid JSON: line 2 column 0: unexpected token" in t["broken"]["error"]
    assert "is empty: write a JSON object" in t["empty"]["error"]
    assert "larger than the limit of 262144 bytes (ORCH_MAX_TASK_OUTPUT)" in t["huge"]["error"]
    # The cap is configurable; outputs are stored and shown by executions show.
    res = orch.run("run", wf, "--json", env={"ORCH_MAX_TASK_OUTPUT": "1048576"})
    d = json.loads(res.stdout)
    t = {x["name"]: x for x in d["tasks"]}
    assert t["huge"]["status"] == "succeeded" and len(t["huge"]["output"]["s"]) == 300000
    shown = orch.run("executions", "show", d["id"])
    assert '{"path":"/d/x.csv","rows":3,"tags":["a"]}' in shown.stdout
    _, again = orch.run_json("executions", "show", d["id"])
    assert {x["name"]: x["output"] for x in again["tasks"]}["obj"]["rows"] == 3
    res = orch.run("run", wf, env={"ORCH_MAX_TASK_OUTPUT": "12"})
    assert res.returncode == EXIT_USAGE and "invalid ORCH_MAX_TASK_OUTPUT" in res.stderr


def test_templates_in_commands(orch):
    """{{ params.x }}, {{ tasks.t.output.f }}, {{ execution.id }} fill in arguments, shell
    commands (each value one single-quoted word) and env; bad references are definition
    errors; a missing output field fails the task without retries."""
    hostile = "it's $(touch pwned) `id`; rm -rf x"
    wf = orch.workflow({"name": "tpl", "params": {"day": {"type": "string", "default": "2026-11-29"},
                                                  "n": 3},
                        "tasks": [
        {"name": "extract", "command": ["/usr/bin/python3", "-c",
                                        "import json, os; open(os.environ['ORCH_OUTPUT'], 'w')"
                                        f".write(json.dumps({{'path': {hostile!r}, 'rows': 7}}))"]},
        {"name": "argv", "dependsOn": ["extract"],
         "command": ["printf", "%s|%s|%s|%s", "{{ params.day }}", "{{ tasks.extract.output.path }}",
                     "{{ execution.id }}", "{{ params.n }}"]},
        {"name": "shell", "dependsOn": ["extract"],
         "command": "printf '%s|' {{ tasks.extract.output.path }} {{tasks.extract.output.rows}}"},
        {"name": "env", "dependsOn": ["argv"], "env": {"WHERE": "{{ tasks.extract.output.path }}!"},
         "command": ["sh", "-c", "printf %s \"$WHERE\""]},
        {"name": "missing", "dependsOn": ["extract"], "retries": 3,
         "command": ["echo", "{{ tasks.extract.output.nope }}"]},
    ]})
    res = orch.run("run", wf, "--json", "--param", "day=2026-12-01")
    assert res.returncode == EXIT_FAILED, res.stderr
    d = json.loads(res.stdout)
    t = {x["name"]: x for x in d["tasks"]}
    assert t["argv"]["output"]["stdout"] == f"2026-12-01|{hostile}|{d['id']}|3"
    assert t["shell"]["output"]["stdout"] == f"{hostile}|7|"
    assert t["env"]["output"]["stdout"] == f"{hostile}!"
    assert not (orch.tmp / "pwned").exists()
    assert t["missing"]["status"] == "failed" and len(t["missing"]["attempts"]) == 1
    assert t["missing"]["error"] == ("cannot fill in its command: tasks.extract.output.nope: "
                                     "no field 'nope'")
    bad = orch.workflow({"name": "bad", "params": {"day": "x"}, "tasks": [
        {"name": "a", "command": ["echo", "{{ params.dya }}"]},
        {"name": "b", "command": ["echo", "{{ tasks.c.output.x }}"]},
        {"name": "c", "dependsOn": ["a"], "command": "echo {{ params.day"},
        {"name": "d", "type": "noop"},
        {"name": "e", "dependsOn": ["d"], "command": ["{{ params.day }}", "{{ tasks.d.output }}"],
         "env": {"X": "{{ item }}"}},
    ]}, name="bad.json")
    res = orch.run("validate", bad, "--json")
    assert res.returncode == EXIT_INVALID
    probs = {(p["path"], p["message"]) for p in json.loads(res.stdout)["problems"]}
    assert ("$.tasks[0].command[1]", "{{ params.dya }}: the workflow declares no param 'dya'") in probs
    assert ("$.tasks[1].command[1]", "{{ tasks.c.output.x }}: task 'c' is not upstream of 'b' "
            "(add it to dependsOn, directly or through another task)") in probs
    assert any(p == "$.tasks[2].command" and "unclosed '{{'" in m for p, m in probs), probs
    assert ("$.tasks[4].command[0]", "the program name 'command[0]' cannot be a template "
            "(pass values as arguments)") in probs
    assert ("$.tasks[4].command[1]", "{{ tasks.d.output }}: task 'd' has no output (command, "
            "http and workflow tasks have one, and tasks with forEach)") in probs
    assert ("$.tasks[4].env.X", "{{ item }}: 'item' and 'index' exist only in a task that "
            "fans out over a list (forEach), not in its forEach, when or the workflow's "
            "outputs") in probs


def test_shell_injection_refused(orch):
    """A placeholder inside double quotes in a shell string, or in the script of an argv
    running `sh -c`, would run `$(touch pwned)` from a value: the definition is refused with
    the safe form, and nothing runs."""
    for cmd, path in [("echo \"{{ params.x }}\"", "$.tasks[0].command"),
                      (["bash", "-c", "echo {{ params.x }}"], "$.tasks[0].command[2]")]:
        wf = orch.workflow({"name": "inj", "params": {"x": "a"},
                            "tasks": [{"name": "a", "command": cmd}]})
        res = orch.run("run", wf, "--json", "--param", "x=$(touch pwned)")
        assert res.returncode == EXIT_INVALID, (res.stdout, res.stderr)
        assert path in res.stdout + res.stderr, (res.stdout, res.stderr)
        assert "{{ params.x }}" in res.stdout + res.stderr
        assert not (orch.tmp / "pwned").exists()
    # The safe forms run and print the value as it is.
    wf = orch.workflow({"name": "safe", "params": {"x": "a"}, "tasks": [
        {"name": "a", "command": "echo {{ params.x }}"},
        {"name": "b", "command": ["bash", "-c", "echo \"$1\"", "bash", "{{ params.x }}"]},
        {"name": "c", "env": {"X": "{{ params.x }}"}, "command": "echo \"$X\""}]})
    res = orch.run("run", wf, "--json", "--param", "x=$(touch pwned)")
    assert res.returncode == EXIT_OK, res.stderr
    outs = {t["name"]: t["output"]["stdout"] for t in json.loads(res.stdout)["tasks"]}
    assert outs == {"a": "$(touch pwned)", "b": "$(touch pwned)", "c": "$(touch pwned)"}
    assert not (orch.tmp / "pwned").exists()


def test_when_conditions(orch):
    """`when` skips a task when false; what depends only on skipped tasks is skipped, what
    also depends on a task that ran still runs; bad conditions are clear errors."""
    def wf(changed):
        return orch.workflow({"name": "cond", "params": {"mode": "full"}, "tasks": [
            {"name": "check", "command": f"echo '{{\"changed\": {changed}, \"n\": 3}}' > "
                                         "\"$ORCH_OUTPUT\""},
            {"name": "load", "dependsOn": ["check"],
             "when": "{{ tasks.check.output.changed }} == true and {{ params.mode }} != 'off'",
             "command": ["echo", "loading"]},
            {"name": "notify", "dependsOn": ["load"], "command": ["echo", "notified"]},
            {"name": "other", "dependsOn": ["check"], "when": "not ({{ tasks.check.output.n }} < 2)",
             "command": ["echo", "other"]},
            {"name": "report", "dependsOn": ["load", "other"], "command": ["echo", "report"]},
            {"name": "broken", "dependsOn": ["check"], "when": "{{ tasks.check.output.n }} > 'x'",
             "command": ["echo", "never"]},
        ]}, name=f"cond-{changed}.json")
    res = orch.run("run", wf("false"), "--json")
    d = json.loads(res.stdout)
    st = {t["name"]: t["status"] for t in d["tasks"]}
    assert st == {"check": "succeeded", "load": "skipped", "notify": "skipped",
                  "other": "succeeded", "report": "succeeded", "broken": "failed"}, st
    t = {x["name"]: x for x in d["tasks"]}
    assert t["load"]["error"] == "skipped: its condition is false" and not t["load"]["attempts"]
    assert t["broken"]["error"].startswith("cannot evaluate its condition:")
    res = orch.run("run", wf("true"), "--json")
    st = {t["name"]: t["status"] for t in json.loads(res.stdout)["tasks"]}
    assert st["load"] == st["notify"] == st["report"] == "succeeded", st
    res = orch.run("run", wf("true"), "--json", "--param", "mode=off")
    st = {t["name"]: t["status"] for t in json.loads(res.stdout)["tasks"]}
    assert st["load"] == st["notify"] == "skipped" and st["report"] == "succeeded", st
    bad = orch.workflow({"name": "badcond", "tasks": [
        {"name": "a", "command": ["true"], "when": "1 < "},
        {"name": "b", "command": ["true"], "when": "{{ tasks.c.output.x }} == 1"},
        {"name": "c", "command": ["true"]},
    ]}, name="badcond.json")
    res = orch.run("validate", bad, "--json")
    assert res.returncode == EXIT_INVALID
    probs = {(p["path"], p["message"]) for p in json.loads(res.stdout)["problems"]}
    assert any(p == "$.tasks[0].when" and "expected an operand" in m for p, m in probs), probs
    assert ("$.tasks[1].when", "{{ tasks.c.output.x }}: task 'c' is not upstream of 'b' (add it "
            "to dependsOn, directly or through another task)") in probs
    empty = orch.workflow({"name": "emptycond", "tasks": [
        {"name": "a", "command": ["true"], "when": ""}]}, name="emptycond.json")
    res = orch.run("validate", empty, "--json")
    probs = {(p["path"], p["message"]) for p in json.loads(res.stdout)["problems"]}
    assert probs == {("$.tasks[0].when", "'when' must not be empty")}, probs
