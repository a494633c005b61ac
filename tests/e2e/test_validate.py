"""
`orch validate` (and the same checks in `orch run`) end to end: every problem with its JSON
path, the --json shape, and hostile files (too big, invalid UTF-8, deep nesting, NUL bytes,
empty, a directory) that must give a clean error and never a crash.
"""
import re

import pytest

from conftest import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, REPO

DATA = REPO / "tests" / "data" / "workflows"


def cmd(name, **kw):
    t = {"name": name, "command": ["true"]}
    t.update(kw)
    return t


def problems_of(stderr, path):
    """The problem lines of `orch validate` stderr, without the two-space indent."""
    lines = stderr.splitlines()
    assert lines, "no output on stderr"
    assert lines[0].startswith(f"{path}: "), lines[0]
    return [line[2:] for line in lines[1:]]


# --------------------------------------------------------------------------- valid

@pytest.mark.parametrize("name,wf,ntasks", [("hello.yaml", "hello", 4),
                                            ("demo.yaml", "demo-etl", 11),
                                            ("data-flow.yaml", "data-flow", 4),
                                            ("etl.yaml", "etl", 4),
                                            ("etl-load.yaml", "etl-load", 2),
                                            ("daily-report.yaml", "daily-report", 5)])
def test_valid_examples(orch, name, wf, ntasks):
    path = REPO / "examples" / name
    res = orch.run("validate", path, data_dir=False)
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout == f"{path}: workflow '{wf}' is valid ({ntasks} tasks)\n"
    assert res.stderr == ""
    res, j = orch.run_json("validate", path, data_dir=False)
    assert res.returncode == EXIT_OK
    assert j == {"valid": True, "workflow": wf, "tasks": ntasks, "problems": []}


def test_every_example_is_listed():
    listed = {p[0] for p in test_valid_examples.pytestmark[0].args[1]}
    assert {p.name for p in (REPO / "examples").iterdir()} == listed


def test_validate_touches_no_data_directory(orch):
    res = orch.run("validate", REPO / "examples" / "hello.yaml")
    assert res.returncode == EXIT_OK
    assert not orch.data_dir.exists()


# --------------------------------------------------------------------------- invalid

INVALID = {
    "cycle": (
        {"name": "w", "tasks": [cmd("a", dependsOn=["c"]), cmd("b", dependsOn=["a"]),
                                cmd("c", dependsOn=["b"])]},
        ["$.tasks[0].dependsOn: cycle: a -> c -> b -> a"]),
    "cycle-noop": (
        {"name": "w", "tasks": [{"name": "a", "type": "noop", "dependsOn": ["b"]},
                                {"name": "b", "type": "noop", "dependsOn": ["c"]},
                                {"name": "c", "type": "noop", "dependsOn": ["a"]}]},
        ["$.tasks[0].dependsOn: cycle: a -> b -> c -> a"]),
    "unknown-dependency": (
        {"name": "w", "tasks": [cmd("transform"), cmd("load", dependsOn=["trasform"])]},
        ["$.tasks[1].dependsOn[0]: unknown task 'trasform' in dependsOn "
         "(did you mean 'transform'?)"]),
    "duplicate-name": (
        {"name": "w", "tasks": [cmd("a"), cmd("b"), cmd("a")]},
        ["$.tasks[2].name: duplicate task name 'a' (also $.tasks[0])"]),
    "self-dependency": (
        {"name": "w", "tasks": [cmd("a", dependsOn=["a"])]},
        ["$.tasks[0].dependsOn[0]: task 'a' depends on itself"]),
    "unknown-task-field": (
        {"name": "w", "tasks": [cmd("a", timout="1s")]},
        ["$.tasks[0].timout: unknown field 'timout' (did you mean 'timeout'?)"]),
    "unknown-workflow-field": (
        {"name": "w", "concurency": 2, "tasks": [cmd("a")]},
        ["$.concurency: unknown field 'concurency' (did you mean 'concurrency'?)"]),
    "dependson-typo": (
        {"name": "w", "tasks": [cmd("a"), cmd("b", dependson=["a"])]},
        ["$.tasks[1].dependson: unknown field 'dependson' (did you mean 'dependsOn'?)"]),
    "wrong-type": (
        {"name": "w", "tasks": [cmd("a", retries="3")]},
        ["$.tasks[0].retries: 'retries' must be an integer, got string"]),
    "wrong-type-command": (
        {"name": "w", "tasks": [{"name": "a", "command": 42}]},
        ["$.tasks[0].command: 'command' must be a string or an array of strings, got integer"]),
    "tasks-not-array": (
        {"name": "w", "tasks": "abc"},
        ["$.tasks: 'tasks' must be an array of tasks, got string"]),
    "empty-tasks": (
        {"name": "w", "tasks": []},
        ["$.tasks: workflow has no tasks"]),
    "bad-duration": (
        {"name": "w", "tasks": [cmd("a", timeout="5 parsecs")]},
        ["$.tasks[0].timeout: invalid duration '5 parsecs': missing or unknown unit "
         "(use ms, s, m, h, d)"]),
    "missing-name": (
        {"tasks": [cmd("a")]},
        ["$: missing required field 'name'"]),
    "bad-runif": (
        {"name": "w", "tasks": [cmd("a", runIf="always")]},
        ["$.tasks[0].runIf: invalid runIf 'always' (allowed: allSucceeded, allDone, anyFailed)"]),
    "several": (
        {"name": "w", "tasks": [
            cmd("a", dependsOn=["b"]), cmd("b", dependsOn=["a"]),
            cmd("c", dependsOn=["x"]), cmd("c", retries=-1), cmd("d", tiemout="1s")]},
        ["$.tasks[3].retries: 'retries' must be between 0 and 100, got -1",
         "$.tasks[4].tiemout: unknown field 'tiemout' (did you mean 'timeout'?)",
         "$.tasks[3].name: duplicate task name 'c' (also $.tasks[2])",
         "$.tasks[2].dependsOn[0]: unknown task 'x' in dependsOn",
         "$.tasks[0].dependsOn: cycle: a -> b -> a"]),
    # Structural and template problems are reported together, in one run.
    "structure-and-templates": (
        {"name": "w", "concurency": 2, "params": {"day": "mon"}, "tasks": [
            cmd("a", retries="3"),
            cmd("b", dependsOn=["a"], tiemout="1s", command=["echo", "{{ params.dya }}"]),
            cmd("c", command=["{{ params.day }}"]),
            cmd("d", command=["echo", "{{ tasks.c.output }}"], timeout="5 parsecs")]},
        ["$.concurency: unknown field 'concurency' (did you mean 'concurrency'?)",
         "$.tasks[0].retries: 'retries' must be an integer, got string",
         "$.tasks[1].tiemout: unknown field 'tiemout' (did you mean 'timeout'?)",
         "$.tasks[3].timeout: invalid duration '5 parsecs': missing or unknown unit "
         "(use ms, s, m, h, d)",
         "$.tasks[1].command[1]: {{ params.dya }}: the workflow declares no param 'dya'",
         "$.tasks[2].command[0]: the program name 'command[0]' cannot be a template "
         "(pass values as arguments)",
         "$.tasks[3].command[1]: {{ tasks.c.output }}: task 'c' is not upstream of 'd' "
         "(add it to dependsOn, directly or through another task)"]),
    # ... but not what a problem made unknowable: no cascade of template messages.
    "templates-no-cascade": (
        {"name": "w", "params": "oops", "tasks": [
            cmd("extract"), cmd("b", dependsOn=["extrct"]),
            cmd("c", dependsOn=["b"],
                command=["echo", "{{ tasks.extract.output }}", "{{ params.x }}"]),
            {"name": 5, "command": ["true"]},
            cmd("e", command=["echo", "{{ tasks.nosuch.output }}"])]},
        ["$.params: 'params' must be an object, got string",
         "$.tasks[1].dependsOn[0]: unknown task 'extrct' in dependsOn "
         "(did you mean 'extract'?)",
         "$.tasks[3].name: 'name' must be a string, got integer"]),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_definition(orch, case):
    definition, expected = INVALID[case]
    path = orch.workflow(definition)
    res = orch.run("validate", path, data_dir=False)
    assert res.returncode == EXIT_INVALID, (res.stdout, res.stderr)
    assert res.stdout == ""
    n = len(expected)
    assert res.stderr.splitlines()[0] == f"{path}: {n} problem{'s' if n != 1 else ''}"
    assert sorted(problems_of(res.stderr, path)) == sorted(expected), res.stderr

    res, j = orch.run_json("validate", path, data_dir=False)
    assert res.returncode == EXIT_INVALID
    assert j["valid"] is False
    assert "workflow" not in j
    assert all(set(p) >= {"path", "message"} for p in j["problems"])
    assert sorted(f"{p['path']}: {p['message']}" for p in j["problems"]) == sorted(expected)

    # `orch run` refuses the same definition with the same problems, and runs nothing.
    res = orch.run("run", path)
    assert res.returncode == EXIT_INVALID, res.stderr
    assert f"orch: invalid workflow '{path}':" in res.stderr
    for e in expected:
        assert f"  {e}\n" in res.stderr


def test_invalid_json_has_line_and_column(orch):
    path = orch.workflow('{\n  "name": "w",\n  "tasks": [ {"name": "a", "command": "x"}, ]\n}\n')
    res, j = orch.run_json("validate", path, data_dir=False)
    assert res.returncode == EXIT_INVALID
    assert j["valid"] is False
    [p] = j["problems"]
    assert p["path"] == "$"
    assert p["message"].startswith("invalid JSON at line 3 column ")
    assert p["line"] == 3 and p["column"] > 0


# --------------------------------------------------------------------------- hostile files

def write(tmp, name, data):
    p = tmp / name
    p.write_bytes(data)
    return p


HOSTILE = {
    "too-big": (lambda: b'{"name": "w", "x": "' + b"a" * (5 * 1024 * 1024) + b'"}',
                "larger than the limit"),
    "invalid-utf8": (lambda: b'{"name": "w\xff\xfe", "tasks": [{"name": "a", "command": "x\xc0"}]}',
                     "unable to decode byte 0xff"),
    "deep-nesting": (lambda: b"[" * 100000, "maximum parsing depth"),
    "deep-objects": (lambda: b'{"a":' * 100000, "maximum parsing depth"),
    "nul-in-string": (lambda: b'{"name": "w", "tasks": [{"name": "a", "command": "tr\x00ue"}]}',
                      "invalid JSON"),
    "nul-after-document": (lambda: b'{"name": "w", "tasks": [{"name": "a", "command": "x"}]}\x00',
                           "invalid JSON"),
    "escaped-nul": (lambda: b'{"name": "w", "tasks": [{"name": "a", "command": "tr\\u0000ue"}]}',
                    "invalid JSON"),
    "empty": (lambda: b"", "invalid JSON"),
    "whitespace": (lambda: b"  \n\t\n", "invalid JSON"),
    "not-an-object": (lambda: b"[1, 2, 3]", "definition must be a JSON object, got array"),
    "bom": (lambda: b'\xef\xbb\xbf{"name": "w", "tasks": [{"name": "a", "command": ["true"]}]}',
            None),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file(orch, case):
    make, msg = HOSTILE[case]
    path = write(orch.tmp, f"{case}.json", make())
    accepted = False
    for command in ("validate", "run"):
        res = orch.run(command, path, timeout=60)  # assert_clean: no crash, no sanitizer report
        if case == "bom" and res.returncode == EXIT_OK:
            accepted = True  # accepting a UTF-8 byte order mark is fine too
            continue
        assert res.returncode == EXIT_INVALID, (command, res.returncode, res.stderr[-2000:])
        if msg:
            assert msg in res.stderr, (command, res.stderr[-2000:])
        assert len(res.stderr) < 10000, "the error should be short, not an echo of the input"
    if orch.data_dir.exists() and not accepted:
        res, j = orch.run_json("executions", "list")
        assert j["items"] == [], "an invalid definition created an execution"


def test_size_limit_boundary(orch):
    limit = 4 * 1024 * 1024
    body = b'{"name": "w", "tasks": [{"name": "a", "command": "x"}]}'
    at_limit = write(orch.tmp, "at-limit.json", body + b" " * (limit - len(body)))
    over = write(orch.tmp, "over.json", body + b" " * (limit + 1 - len(body)))
    far_over = write(orch.tmp, "far-over.json", body + b" " * (5 * limit))
    res = orch.run("validate", at_limit, data_dir=False)
    assert res.returncode == EXIT_OK, res.stderr[-500:]
    for path in (over, far_over):
        for command in ("validate", "run"):
            res = orch.run(command, path)
            assert res.returncode == EXIT_INVALID, (command, path, res.stderr)
            assert "larger than the limit" in res.stderr
            # the limit is stated as it is: 4 MiB = 4194304 bytes
            stated = re.findall(r"limit of (\d+ bytes|\d+ MiB)", res.stderr)
            assert stated and all(s in ("4194304 bytes", "4 MiB") for s in stated), \
                (command, path.name, res.stderr)


def test_directory_instead_of_file(orch):
    d = orch.tmp / "a-directory.json"
    d.mkdir()
    for command in ("validate", "run"):
        res = orch.run(command, d)
        assert f"'{d}'" in res.stderr and "Is a directory" in res.stderr, res.stderr
        assert res.returncode == EXIT_INVALID, (command, res.returncode, res.stderr)


def test_missing_file(orch):
    missing = orch.tmp / "nope.json"
    for command in ("validate", "run"):
        res = orch.run(command, missing)
        assert res.returncode == EXIT_NOT_FOUND, res.stderr
        assert f"orch: cannot open '{missing}': No such file or directory" in res.stderr


def test_many_problems_are_capped(orch):
    tasks = [cmd(f"t{i}", dependsOn=[f"missing{i}"]) for i in range(150)]
    path = orch.workflow({"name": "w", "tasks": tasks})
    res = orch.run("validate", path, data_dir=False)
    assert res.returncode == EXIT_INVALID
    assert res.stderr.splitlines()[0] == f"{path}: 150 problems"
    assert res.stderr.rstrip().endswith("... and 50 more")
    res, j = orch.run_json("validate", path, data_dir=False)
    assert len(j["problems"]) == 100 and j["moreProblems"] == 50


# --------------------------------------------------------------------------- shared test data

SHARED = sorted(DATA.glob("*.json")) if DATA.is_dir() else []


@pytest.mark.skipif(not SHARED, reason=f"no shared workflow files in {DATA}")
@pytest.mark.parametrize("path", SHARED, ids=[p.name for p in SHARED])
def test_shared_workflow_files(orch, path):
    res = orch.run("validate", path, data_dir=False)
    if path.name.startswith("ok-"):
        assert res.returncode == EXIT_OK, res.stderr
        assert res.stdout.startswith(f"{path}: workflow '") and " is valid (" in res.stdout
    elif path.name.startswith("bad-"):
        assert res.returncode == EXIT_INVALID, res.stdout
        probs = problems_of(res.stderr, path)
        assert probs and all(p.startswith("$") and ": " in p for p in probs), res.stderr
        res, j = orch.run_json("validate", path, data_dir=False)
        assert j["valid"] is False and len(j["problems"]) == len(probs)
    else:
        pytest.fail(f"{path.name}: shared workflow files are named ok-*.json or bad-*.json")
