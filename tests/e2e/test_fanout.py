"""
Fan-out over lists (`forEach`) end to end: the real binary runs one instance of a task per
item of a literal list or of a list an upstream task (or a param) produced. Covers {{ item }}
and {{ index }} in argv, shell and env, ORCH_ITEM/ORCH_ITEM_INDEX, the group's output (the
list of its instances' outputs, in order) read downstream, `maxParallel`, a failing instance
with retries, lists that are not lists and empty lists, kill -9 and `orch resume` in the
middle of a fan-out, retry of a failed execution through a server, 10,000 items, and the
definition errors of `orch validate`.
"""
import json
import os
import re
import signal
import time
from collections import Counter

import pytest

from apiutil import fresh_server  # noqa: F401  (a pytest fixture)
from conftest import (EXIT_FAILED, EXIT_INVALID, EXIT_OK, exec_id_from_summary, pid_alive,
                      read_pids, task_by_name, wait_for)

PY = "/usr/bin/python3"


def compact(v):
    """A JSON value as orch inserts a non-string one: compact JSON text."""
    return v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))


def py_output(code):
    """A command running Python code `code`, with sys.argv[1:] the remaining arguments."""
    return [PY, "-c", "import json, os, sys\n" + code]


def instances(detail, group):
    """The instances of `group` in the detail, in index order, checked to be named group[i]."""
    got = [t for t in detail["tasks"] if t.get("group") == group]
    got.sort(key=lambda t: t["index"])
    assert [t["name"] for t in got] == [f"{group}[{i}]" for i in range(len(got))], \
        [t["name"] for t in got]
    return got


def statuses(detail):
    return {t["name"]: t["status"] for t in detail["tasks"]}


def assert_nothing_running(detail):
    """No task, instance or attempt of a finished execution is left running/queued/pending."""
    assert detail["status"] not in ("running", "queued"), detail["status"]
    for t in detail["tasks"]:
        assert t["status"] not in ("running", "queued", "pending"), (t["name"], t["status"])
        for a in t["attempts"]:
            assert a["status"] != "running", (t["name"], a)


def max_overlap(path):
    """The most intervals ("S <ns> i" ... "E <ns> i" lines) open at one time in `path`;
    also the set of indexes that both started and ended."""
    events, started, ended = [], set(), set()
    for line in path.read_text().splitlines():
        kind, ns, idx = line.split()
        events.append((int(ns), 0 if kind == "E" else 1, idx))  # an end first at a tie
        (started if kind == "S" else ended).add(idx)
    cur = best = 0
    for _, kind, _ in sorted(events):
        cur += 1 if kind == 1 else -1
        best = max(best, cur)
    return best, started & ended


# --------------------------------------------------------------------------- a) lists, output

def test_literal_and_placeholder_lists_and_group_output(orch):
    """Items come from an upstream task's output, a literal list and an object param; each
    instance sees its item and index in argv, shell words and env (ORCH_ITEM is a string item
    as is, else JSON); the group's output is the list of its instances' outputs in order, and a
    downstream task reads one element of it and the whole list."""
    files = ["alpha", "b c", "it's $(touch pwned) `id`", {"k": [1, 2]}, 7]
    lit = [{"n": "x", "v": 1}, {"n": "y y", "v": 2}, {"n": "z", "v": 3}]
    wf = orch.workflow({"name": "fan-a", "params": {
        "cfg": {"type": "object", "default": {"names": ["d1", "d2"]}}},
        "tasks": [
        {"name": "list", "command": py_output(
            f"json.dump({{'files': {files!r}}}, open(os.environ['ORCH_OUTPUT'], 'w'))")},
        {"name": "each", "dependsOn": ["list"], "forEach": "{{ tasks.list.output.files }}",
         "env": {"ITEM_ENV": "<{{ item }}>"},
         "command": py_output(
             "json.dump({'x': sys.argv[1] + '#' + sys.argv[2], 'item': os.environ['ORCH_ITEM'],"
             " 'index': os.environ['ORCH_ITEM_INDEX'], 'env': os.environ['ITEM_ENV']},"
             " open(os.environ['ORCH_OUTPUT'], 'w'))") + ["{{ item }}", "{{ index }}"]},
        {"name": "lit", "forEach": lit,
         "command": "printf '%s|%s|%s|%s' {{ item.n }} {{ index }} \"$ORCH_ITEM\" "
                    "\"$ORCH_ITEM_INDEX\""},
        {"name": "par", "forEach": "{{ params.cfg.names }}", "command": ["echo", "{{ item }}"]},
        {"name": "down", "dependsOn": ["each", "lit"], "env": {"ALL_LIT": "{{ tasks.lit.output }}"},
         "command": py_output(
             "json.dump({'one': sys.argv[1], 'all': json.loads(sys.argv[2]),"
             " 'lit': json.loads(os.environ['ALL_LIT'])}, open(os.environ['ORCH_OUTPUT'], 'w'))")
         + ["{{ tasks.each.output[2].x }}", "{{ tasks.each.output }}"]},
    ]})
    res, j = orch.run_json("run", wf, "--param", 'cfg={"names": ["p", "q", "r"]}')
    assert res.returncode == EXIT_OK, res.stderr
    assert j["status"] == "succeeded"
    assert not (orch.tmp / "pwned").exists(), "an item was run as shell code"

    # The upstream placeholder list: one instance per item, with group/index/item.
    each = instances(j, "each")
    assert len(each) == len(files)
    want = []
    for i, (inst, item) in enumerate(zip(each, files)):
        assert (inst["group"], inst["index"], inst["item"], inst["status"]) == \
            ("each", i, item, "succeeded"), inst
        assert [a["status"] for a in inst["attempts"]] == ["succeeded"], inst
        want.append({"x": f"{compact(item)}#{i}", "item": compact(item), "index": str(i),
                     "env": f"<{compact(item)}>"})
        assert inst["output"] == want[-1], inst["output"]
    g = task_by_name(j, "each")
    assert g["status"] == "succeeded" and g["output"] == want
    assert (g["group"], g["index"], g["item"]) == (None, None, None), g
    assert g["output"] == [t["output"] for t in each]

    # The literal list; {{ item.n }} is a field of the item, ORCH_ITEM an object's JSON.
    li = instances(j, "lit")
    assert [(t["index"], t["item"]) for t in li] == list(enumerate(lit))
    outs = [t["output"] for t in li]
    assert [o["exitCode"] for o in outs] == [0, 0, 0]
    for i, (o, item) in enumerate(zip(outs, lit)):
        n, idx, env_item, env_idx = o["stdout"].split("|")
        assert (n, idx, env_idx) == (item["n"], str(i), str(i)), o
        assert json.loads(env_item) == item, o
    assert task_by_name(j, "lit")["output"] == outs

    # A list in an object param, given with --param.
    assert [t["item"] for t in instances(j, "par")] == ["p", "q", "r"]
    assert task_by_name(j, "par")["output"] == \
        [{"exitCode": 0, "stdout": s} for s in ("p", "q", "r")]

    # Downstream: one element of the list, and both whole lists.
    down = task_by_name(j, "down")
    assert down["status"] == "succeeded"
    assert down["output"] == {"one": f"{compact(files[2])}#2", "all": want, "lit": outs}
    # it waited for every instance of both groups
    last = max(a["finishedAt"] for t in each + li for a in t["attempts"])
    assert down["attempts"][0]["startedAt"] >= last

    # The run is recorded: `executions show` gives the same; logs are per instance.
    assert orch.show(j["id"]) == j
    logs = orch.run("logs", j["id"], "par[1]")
    assert logs.returncode == 0 and logs.stdout == "==> par[1] (attempt 1) <==\nq\n", logs
    assert re.search(r"Task 'each' fans out over 5 items", res.stderr), res.stderr
    assert_nothing_running(j)


# --------------------------------------------------------------------------- b) maxParallel

def overlap_workflow(orch, name, log, **kw):
    t = {"name": "each", "forEach": list(range(8)),
         "command": f'echo "S $(date +%s%N) $ORCH_ITEM_INDEX" >> "{log}"; sleep 0.3; '
                    f'echo "E $(date +%s%N) $ORCH_ITEM_INDEX" >> "{log}"'}
    t.update(kw)
    return orch.workflow({"name": name, "tasks": [t]})


def test_max_parallel_caps_running_instances(orch):
    """maxParallel 2 over 8 items of 0.3 s: never more than 2 overlap, and all 8 ran; without
    it, with 4 worker slots, more than 2 run at once (and never more than 4)."""
    capped = orch.tmp / "capped.log"
    res, j = orch.run_json("run", overlap_workflow(orch, "fan-cap", capped, maxParallel=2),
                           "--workers", "4", timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    best, done = max_overlap(capped)
    assert done == {str(i) for i in range(8)}, capped.read_text()
    assert best == 2, f"{best} instances overlapped with maxParallel 2:\n{capped.read_text()}"
    assert len(instances(j, "each")) == 8
    assert "Task 'each' fans out over 8 items, 2 at a time" in res.stderr, res.stderr
    # Instances are made ready in index order: instance i starts once i-1 others ended.
    ev = sorted((int(ns), kind, int(i)) for kind, ns, i in
                (line.split() for line in capped.read_text().splitlines()))
    ended = 0
    for _, kind, i in ev:
        if kind == "E":
            ended += 1
        else:
            assert ended >= i - 1, f"instance {i} started after only {ended} ended:\n" \
                                   f"{capped.read_text()}"

    free = orch.tmp / "free.log"
    res, j = orch.run_json("run", overlap_workflow(orch, "fan-free", free), "--workers", "4",
                           timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    best, done = max_overlap(free)
    assert done == {str(i) for i in range(8)}
    assert 2 < best <= 4, f"{best} instances overlapped without maxParallel (4 workers):\n" \
                          f"{free.read_text()}"


# --------------------------------------------------------------------------- c) failing instance

def test_failing_instance_with_retries_fails_the_group(orch):
    """Item 3 exits 1 on every attempt: with retries 1 it has 2 failed attempts, the other
    instances succeed once, the group fails with a message naming 'each[3]' and its error,
    and the downstream task is upstream_failed."""
    runs = orch.tmp / "runs"
    wf = orch.workflow({"name": "fan-fail", "tasks": [
        {"name": "each", "forEach": [0, 1, 2, 3, 4, 5], "retries": 1,
         "retryBackoff": {"initial": "10ms", "jitter": False},
         "command": f'echo {{{{ item }}}} >> "{runs}"; '
                    'if [ "$ORCH_ITEM" = 3 ]; then echo "bad item $ORCH_ITEM" >&2; exit 1; fi'},
        {"name": "after", "dependsOn": ["each"], "command": ["echo", "never"]},
    ]})
    res, j = orch.run_json("run", wf)
    assert res.returncode == EXIT_FAILED, res.stderr
    assert j["status"] == "failed"
    g = task_by_name(j, "each")
    assert g["status"] == "failed"
    assert g["error"] == ("1 of 6 instances did not succeed (first: 'each[3]' failed: "
                          "exit status 1: bad item 3)"), g["error"]
    assert g["output"] is None
    bad = task_by_name(j, "each[3]")
    assert bad["status"] == "failed" and bad["error"] == "exit status 1: bad item 3"
    assert [(a["number"], a["status"], a["exitCode"]) for a in bad["attempts"]] == \
        [(1, "failed", 1), (2, "failed", 1)]
    for t in instances(j, "each"):
        if t["index"] != 3:
            assert t["status"] == "succeeded", t
            assert [a["status"] for a in t["attempts"]] == ["succeeded"], t
    after = task_by_name(j, "after")
    assert after["status"] == "upstream_failed" and after["attempts"] == []
    assert Counter(runs.read_text().split()) == {"0": 1, "1": 1, "2": 1, "3": 2, "4": 1, "5": 1}
    assert re.search(r"ERROR \[TaskExecutor\] Task 'each' failed: 1 of 6 instances did not "
                     r"succeed \(first: 'each\[3\]' failed: exit status 1: bad item 3\)",
                     res.stderr), res.stderr
    assert_nothing_running(j)


def test_instance_env_names_task_and_attempt(orch):
    """An instance's environment has ORCH_TASK = its run name ("each[i]") and ORCH_ATTEMPT =
    its attempt number, like any task: 1, then 2 on its retry."""
    seen = orch.tmp / "seen"
    marker = orch.tmp / "failed-once"
    wf = orch.workflow({"name": "fan-env", "tasks": [
        {"name": "each", "forEach": ["a", "b", "c"], "retries": 1,
         "retryBackoff": {"initial": "10ms", "jitter": False},
         "command": f'echo "$ORCH_TASK $ORCH_ITEM_INDEX $ORCH_ATTEMPT" >> "{seen}"; '
                    f'if [ "$ORCH_ITEM" = c ] && [ ! -e "{marker}" ]; then '
                    f'touch "{marker}"; exit 1; fi'},
    ]})
    res, j = orch.run_json("run", wf)
    assert res.returncode == EXIT_OK, res.stderr
    assert [a["number"] for a in task_by_name(j, "each[2]")["attempts"]] == [1, 2]
    lines = sorted(tuple(x.split()) for x in seen.read_text().splitlines())
    assert [(t, i) for t, i, _ in lines] == \
        [("each[0]", "0"), ("each[1]", "1"), ("each[2]", "2"), ("each[2]", "2")], lines
    assert [a for _, _, a in lines] == ["1", "1", "1", "2"], \
        f"ORCH_ATTEMPT of the instances (task, index, attempt): {lines}"


# --------------------------------------------------------------------------- d) not lists, empty

def test_not_a_list_and_empty_lists(orch):
    """A forEach placeholder that evaluates to an object or a string fails the group with a
    'not a list' message and makes no instances; an empty list (literal or from upstream)
    succeeds with output [] and its dependents run."""
    wf = orch.workflow({"name": "fan-d", "params": {"s": "abc"}, "tasks": [
        {"name": "src", "command": py_output(
            "json.dump({'obj': {'a': 1}, 'str': 'a,b', 'none': []},"
            " open(os.environ['ORCH_OUTPUT'], 'w'))")},
        {"name": "obj", "dependsOn": ["src"], "forEach": "{{ tasks.src.output.obj }}",
         "command": ["echo", "{{ item }}"]},
        {"name": "str", "dependsOn": ["src"], "forEach": "{{ tasks.src.output.str }}",
         "command": ["echo", "{{ item }}"]},
        {"name": "pstr", "forEach": "{{ params.s }}", "command": ["echo", "{{ item }}"]},
        {"name": "after-obj", "dependsOn": ["obj"], "command": ["echo", "never"]},
        {"name": "empty", "dependsOn": ["src"], "forEach": "{{ tasks.src.output.none }}",
         "command": ["echo", "{{ item }}"]},
        {"name": "lit-empty", "forEach": [], "maxParallel": 3, "command": ["echo", "{{ item }}"]},
        {"name": "after-empty", "dependsOn": ["empty", "lit-empty"],
         "command": ["echo", "{{ tasks.empty.output }}", "{{ tasks.lit-empty.output }}"]},
    ]})
    res, j = orch.run_json("run", wf)
    assert res.returncode == EXIT_FAILED, res.stderr
    st = statuses(j)
    assert st == {"src": "succeeded", "obj": "failed", "str": "failed", "pstr": "failed",
                  "after-obj": "upstream_failed", "empty": "succeeded",
                  "lit-empty": "succeeded", "after-empty": "succeeded"}, st
    t = {x["name"]: x for x in j["tasks"]}
    assert t["obj"]["error"] == \
        "its forEach {{ tasks.src.output.obj }} is an object, not a list", t["obj"]
    assert t["str"]["error"] == \
        "its forEach {{ tasks.src.output.str }} is a string, not a list", t["str"]
    assert t["pstr"]["error"] == "its forEach {{ params.s }} is a string, not a list"
    for name in ("obj", "str", "pstr"):
        assert t[name]["output"] is None and t[name]["attempts"] == []
    assert not [x["name"] for x in j["tasks"] if x.get("group") is not None], \
        "instances were made for a list that is not a list or is empty"
    assert t["empty"]["output"] == [] and t["lit-empty"]["output"] == []
    assert t["after-empty"]["output"] == {"exitCode": 0, "stdout": "[] []"}
    assert re.search(r"ERROR \[TaskExecutor\] Task 'obj' failed: its forEach "
                     r"\{\{ tasks.src.output.obj \}\} is an object, not a list", res.stderr)
    assert_nothing_running(j)


# --------------------------------------------------------------------------- e) kill -9, resume

def test_kill_9_mid_fanout_then_resume(orch):
    """orch run is killed with SIGKILL while a fan-out of 6 items (maxParallel 2) runs: two
    done, two running (they wait for a gate file), two not started; orch resume finishes
    it: instances that had succeeded are not run again, the ones that were running are
    recorded lost and run again, nothing stays running, and the orphaned processes are
    gone."""
    starts = orch.tmp / "starts"
    pids = orch.track_pids(orch.tmp / "pids")
    gate = orch.tmp / "gate"
    wf = orch.workflow({"name": "fan-crash", "tasks": [
        {"name": "each", "forEach": [f"f{i}" for i in range(6)], "maxParallel": 2,
         "retries": 1, "retryBackoff": {"initial": "10ms", "jitter": False},
         "command": f'echo {{{{ item }}}} >> "{starts}"; echo $$ >> "{pids}"; '
                    f'case {{{{ item }}}} in f0|f1) exit 0;; esac; '
                    f'while [ ! -e "{gate}" ]; do sleep 0.05; done'},
        {"name": "after", "dependsOn": ["each"], "command": ["echo", "{{ tasks.each.output }}"]},
    ]})
    p = orch.spawn("run", wf)

    def exec_id():
        res = orch.run("executions", "list", "--json")  # fails until the data dir exists
        items = json.loads(res.stdout)["items"] if res.returncode == 0 else None
        return items[0]["id"] if items else None
    ex = wait_for(exec_id, timeout=20, what="the execution")

    def mid_fanout():
        d = orch.show(ex)
        st = [t["status"] for t in d["tasks"] if t.get("group") == "each"]
        running = [t for t in d["tasks"] if t.get("group") == "each"
                   and t["status"] == "running" and t["attempts"] and t["attempts"][-1]["pid"]]
        # f0 and f1 done, f2 and f3 waiting at the gate with their pids committed, the
        # rest not started: it stays so until the gate opens
        return st.count("succeeded") == 2 and len(running) == 2 and "pending" in st
    wait_for(mid_fanout, timeout=30, interval=0.05,
             what="2 instances done, 2 running, 2 pending")
    os.kill(p.pid, signal.SIGKILL)  # orch alone: it runs in its own session
    assert p.wait(timeout=10) == -signal.SIGKILL

    before = orch.show(ex)
    assert before["status"] == "running"
    st = {t["name"]: t["status"] for t in before["tasks"] if t.get("group") == "each"}
    done_before = {n for n, s in st.items() if s == "succeeded"}
    running_before = {n for n, s in st.items() if s == "running"}
    assert 2 <= len(done_before) < 6, st
    assert running_before, st
    assert task_by_name(before, "each")["status"] == "running"
    orphans = read_pids(pids)

    gate.touch()
    res = orch.run("resume", timeout=60)
    assert res.returncode == EXIT_OK, res.stderr
    assert exec_id_from_summary(res.stdout) == ex
    j = orch.show(ex)
    assert j["status"] == "succeeded", json.dumps(j, indent=1)[:3000]
    assert_nothing_running(j)
    count = Counter(starts.read_text().split())
    each = instances(j, "each")
    assert [t["item"] for t in each] == [f"f{i}" for i in range(6)]
    for t in each:
        item = t["item"]
        assert t["status"] == "succeeded", t
        if t["name"] in done_before:
            assert count[item] == 1, f"{t['name']} succeeded before the kill but ran again: " \
                                     f"{count}"
            assert t["attempts"] == task_by_name(before, t["name"])["attempts"]
        elif t["name"] in running_before:
            assert [a["status"] for a in t["attempts"]] == ["lost", "succeeded"], t
        else:
            assert count[item] == 1 and len(t["attempts"]) == 1, (t, count)
    assert task_by_name(j, "each")["output"] == [t["output"] for t in each]
    assert task_by_name(j, "after")["status"] == "succeeded"
    for pid in orphans:
        assert not pid_alive(pid), f"process {pid} of an instance outlived the crash and resume"
    assert orch.run("resume").stdout == "No unfinished executions to resume.\n"


# --------------------------------------------------------------------------- f) retry (server)

def test_retry_through_server_reruns_failed_instances_only(fresh_server, tmp_path):
    """An instance fails while a marker file exists; after the marker is removed, a retry of
    the execution (POST /v1/executions/{id}/retry) runs that instance again and no other; the
    group and its dependent then succeed. Then the same with `orch retry --wait`."""
    server = fresh_server
    runs = tmp_path / "runs"
    marker = tmp_path / "marker"

    def definition(name):
        return {"name": name, "tasks": [
            {"name": "each", "forEach": ["a", "b", "c", "d"], "maxParallel": 2,
             "command": f'echo {{{{ item }}}} >> "{runs}.{name}"; '
                        f'if [ "$ORCH_ITEM" = c ] && [ -e "{marker}" ]; then '
                        'echo "marker present" >&2; exit 1; fi; '
                        'printf \'{"got": "%s"}\' "$ORCH_ITEM" > "$ORCH_OUTPUT"'},
            {"name": "after", "dependsOn": ["each"],
             "command": ["echo", "{{ tasks.each.output[2].got }}"]},
        ]}

    for name, how in (("fan-retry-api", "api"), ("fan-retry-cli", "cli")):
        marker.write_text("x")
        server.apply(definition(name))
        e = server.trigger(name)
        d = server.wait_exec(e["id"], timeout=60)
        assert d["status"] == "failed", d
        assert {t["name"]: t["status"] for t in d["tasks"]} == {
            "each": "failed", "after": "upstream_failed", "each[0]": "succeeded",
            "each[1]": "succeeded", "each[2]": "failed", "each[3]": "succeeded"}
        assert task_by_name(d, "each")["error"] == ("1 of 4 instances did not succeed "
                                                    "(first: 'each[2]' failed: exit status 1: "
                                                    "marker present)")
        marker.unlink()
        if how == "api":
            r = server.post(f"/v1/executions/{e['id']}/retry")
            assert r.status == 200, r
            d2 = server.wait_exec(e["id"], timeout=60)
        else:
            res = server.orch("retry", e["id"], "--wait", "--server", server.url,
                              env={"ORCH_API_KEY": server.admin_key}, timeout=60)
            assert res.returncode == EXIT_OK, (res.stdout, res.stderr)
            d2 = server.execution(e["id"])
        assert d2["status"] == "succeeded", d2
        assert Counter((tmp_path / f"runs.{name}").read_text().split()) == \
            {"a": 1, "b": 1, "c": 2, "d": 1}
        for i in (0, 1, 3):
            assert task_by_name(d2, f"each[{i}]")["attempts"] == \
                task_by_name(d, f"each[{i}]")["attempts"], f"each[{i}] was run again"
        c = task_by_name(d2, "each[2]")
        assert [(a["number"], a["status"]) for a in c["attempts"]] == \
            [(1, "failed"), (2, "succeeded")]
        g = task_by_name(d2, "each")
        assert g["status"] == "succeeded" and g["error"] is None
        assert g["output"] == [{"got": x} for x in "abcd"]
        after = task_by_name(d2, "after")
        assert after["status"] == "succeeded"
        assert after["output"] == {"exitCode": 0, "stdout": "c"}
        assert_nothing_running(d2)


# --------------------------------------------------------------------------- g) 10,000 items

def test_ten_thousand_noop_items(orch):
    """10,000 noop instances and a downstream noop: the execution succeeds with 10,002 task
    runs and the group's output is a list of 10,000 entries."""
    n = 10000
    wf = orch.workflow({"name": "fan-big", "tasks": [
        {"name": "each", "type": "noop", "forEach": list(range(n))},
        {"name": "after", "type": "noop", "dependsOn": ["each"]},
    ]})
    t0 = time.monotonic()
    res = orch.run("run", wf, timeout=300)
    took = time.monotonic() - t0
    assert res.returncode == EXIT_OK, res.stderr[-3000:]
    ex = exec_id_from_summary(res.stdout)
    assert re.search(rf"^Execution {ex} succeeded in .* \(10002 succeeded\)$", res.stdout,
                     re.M), res.stdout[-500:]
    j = orch.show(ex)
    assert j["status"] == "succeeded"
    assert len(j["tasks"]) == n + 2
    st = Counter(t["status"] for t in j["tasks"])
    assert st == {"succeeded": n + 2}, st
    g = task_by_name(j, "each")
    assert isinstance(g["output"], list) and len(g["output"]) == n
    inst = [t for t in j["tasks"] if t.get("group") == "each"]
    assert sorted(t["index"] for t in inst) == list(range(n))
    assert all(t["item"] == t["index"] for t in inst)
    assert task_by_name(j, "after")["status"] == "succeeded"
    # A generous bound even for a sanitizer build: the engine's cost per instance is small.
    assert took < 120, f"10,000 noop instances took {took:.1f}s"


# --------------------------------------------------------------------------- h) validation

def validate_problems(orch, definition, name):
    path = orch.workflow(definition, name=name)
    res = orch.run("validate", path, "--json")
    assert res.returncode == EXIT_INVALID, (res.stdout, res.stderr)
    j = json.loads(res.stdout)
    assert j["valid"] is False
    text = orch.run("validate", path)  # the same problems, as text
    assert text.returncode == EXIT_INVALID
    for p in j["problems"]:
        assert f"{p['path']}: {p['message']}" in text.stdout + text.stderr, (p, text)
    return {(p["path"], p["message"]) for p in j["problems"]}


def test_validation_errors(orch):
    """`orch validate` rejects {{ item }}/{{ index }} outside a forEach task (and in a forEach
    task's own forEach and when), a forEach with text around its placeholder or two of them,
    a forEach naming a task not upstream, one that is neither list nor string, or empty, and
    maxParallel without forEach (or out of range), each with its JSON path; a correct
    definition passes."""
    item_msg = ("'item' and 'index' exist only in a task that fans out over a list (forEach), "
                "not in its forEach, when or the workflow's outputs")
    one = ("'forEach' must be a list, or one placeholder that names a list "
           "(\"{{ tasks.list.output.files }}\"), got ")
    probs = validate_problems(orch, {"name": "fan-bad", "tasks": [
        {"name": "list", "command": ["true"]},
        {"name": "plain", "command": ["echo", "{{ item }}"], "env": {"I": "{{ index }}"}},
        {"name": "around", "dependsOn": ["list"], "forEach": "x {{ tasks.list.output.f }}",
         "command": ["echo", "{{ item }}"]},
        {"name": "selfref", "forEach": "{{ item }}", "command": ["true"]},
        {"name": "two", "dependsOn": ["list"],
         "forEach": "{{ tasks.list.output.a }}{{ tasks.list.output.b }}", "command": ["true"]},
        {"name": "trail", "dependsOn": ["list"], "forEach": "{{ tasks.list.output.a }} ",
         "command": ["true"]},
        {"name": "up", "forEach": "{{ tasks.list.output.a }}", "command": ["true"]},
        {"name": "cond", "forEach": [1], "when": "{{ item }} == 1", "command": ["true"]},
        {"name": "fine", "dependsOn": ["list"], "forEach": "{{ tasks.list.output.a }}",
         "command": "echo {{ item.x }} {{ index }}"},
    ]}, "bad-templates.json")
    assert probs == {
        ("$.tasks[1].command[1]", "{{ item }}: " + item_msg),
        ("$.tasks[1].env.I", "{{ index }}: " + item_msg),
        ("$.tasks[2].forEach", one + "'x {{ tasks.list.output.f }}'"),
        ("$.tasks[3].forEach", "{{ item }}: " + item_msg),
        ("$.tasks[4].forEach", one + "'{{ tasks.list.output.a }}{{ tasks.list.output.b }}'"),
        ("$.tasks[5].forEach", one + "'{{ tasks.list.output.a }} '"),
        ("$.tasks[6].forEach", "{{ tasks.list.output.a }}: task 'list' is not upstream of 'up' "
                               "(add it to dependsOn, directly or through another task)"),
        ("$.tasks[7].when", "{{ item }}: " + item_msg),
    }, probs

    probs = validate_problems(orch, {"name": "fan-bad2", "tasks": [
        {"name": "capped", "maxParallel": 2, "command": ["true"]},
        {"name": "number", "forEach": 5, "command": ["true"]},
        {"name": "empty", "forEach": "", "command": ["true"]},
        {"name": "zero", "forEach": [1], "maxParallel": 0, "command": ["true"]},
    ]}, "bad-fields.json")
    paths = {p for p, _ in probs}
    assert paths == {"$.tasks[0].maxParallel", "$.tasks[1].forEach", "$.tasks[2].forEach",
                     "$.tasks[3].maxParallel"}, probs
    assert ("$.tasks[0].maxParallel", "'maxParallel' needs 'forEach'") in probs
    assert ("$.tasks[1].forEach", "'forEach' must be a list, or a placeholder naming one "
            "(\"{{ tasks.list.output.files }}\"), got integer") in probs
    assert ("$.tasks[2].forEach", "'forEach' must not be empty") in probs

    good = orch.workflow({"name": "fan-good", "tasks": [
        {"name": "list", "command": ["true"]},
        {"name": "each", "dependsOn": ["list"], "forEach": "{{ tasks.list.output.files }}",
         "maxParallel": 2, "command": ["echo", "{{ item.path }}", "{{ index }}"],
         "env": {"X": "{{ item }}"}},
        {"name": "lit", "forEach": [1, "a", {"b": 2}], "command": "echo {{ item }}"},
        {"name": "after", "dependsOn": ["each"], "command": ["echo", "{{ tasks.each.output[0] }}"]},
    ]}, name="good.json")
    res = orch.run("validate", good)
    assert res.returncode == EXIT_OK, (res.stdout, res.stderr)


def test_retried_fanout_that_no_longer_runs_ends_its_items(fresh_server, tmp_path):
    """A fan-out that ran (runIf anyFailed after a failed task) fails; once the marker that
    made its upstream fail is there, a retry runs the upstream, which now succeeds, so the
    fan-out is skipped: its items that were reset for the retry end skipped with it, and the
    execution ends (it does not stay running with items pending forever)."""
    server = fresh_server
    marker = tmp_path / "marker"
    server.apply({"name": "fan-skip-retry", "tasks": [
        {"name": "a", "command": ["test", "-e", str(marker)]},
        {"name": "g", "dependsOn": ["a"], "runIf": "anyFailed", "forEach": [1, 2],
         "command": ["test", "-e", str(marker)]}]})
    e = server.trigger("fan-skip-retry")
    d = server.wait_exec(e["id"], timeout=60)
    assert d["status"] == "failed", d
    assert {t["name"]: t["status"] for t in d["tasks"]} == {
        "a": "failed", "g": "failed", "g[0]": "failed", "g[1]": "failed"}
    marker.write_text("x")
    r = server.post(f"/v1/executions/{e['id']}/retry")
    assert r.status == 200, r
    d2 = server.wait_exec(e["id"], timeout=30)
    assert d2["status"] == "succeeded", d2
    assert {t["name"]: t["status"] for t in d2["tasks"]} == {
        "a": "succeeded", "g": "skipped", "g[0]": "skipped", "g[1]": "skipped"}, d2["tasks"]
