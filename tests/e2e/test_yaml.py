"""YAML definitions everywhere a definition is read (orch validate/run, workflows apply,
--register DIR, POST /v1/workflows with Content-Type application/yaml), errors with the
line and column, `workflows show --yaml`, --param typing and --params-file, `orch init`,
and `orch server --register DIR --watch`."""
import json
import time

import pytest

from apiutil import server, stopped_server  # noqa: F401
from conftest import EXIT_INVALID, EXIT_OK, base_env, exec_id_from_summary, orch  # noqa: F401

HELLO = """\
# a comment before everything
name: y-hello   # and after a value
params:
  who: {type: string, default: world}
tasks:
  - name: greet
    command: |
      echo "one"
      echo hello {{ params.who }}
  - name: after
    dependsOn: [greet]
    command: [echo, done]
"""

BAD = """\
name: y-bad
tasks:
  - name: a
    command: echo a
  - name: b
    dependsOn:
      - trasform
    command: echo b
"""


def test_validate_and_run_yaml(orch):
    f = orch.workflow(HELLO, name="hello.yaml")
    res = orch.run("validate", f)
    assert res.returncode == EXIT_OK, res.stderr
    assert "workflow 'y-hello' is valid (2 tasks)" in res.stdout
    res = orch.run("run", f, "--param", "who=20261201")
    assert res.returncode == EXIT_OK, res.stderr
    eid = exec_id_from_summary(res.stdout)
    logs = orch.run("logs", eid, "greet")
    assert "one\nhello 20261201\n" in logs.stdout, logs.stdout


def test_yaml_problems_name_file_line_column(orch):
    f = orch.workflow(BAD, name="bad.yaml")
    res = orch.run("validate", f)
    assert res.returncode == EXIT_INVALID
    assert f"{f}: 1 problem" in res.stderr
    assert "  $.tasks[1].dependsOn[0] (line 7, column 9): unknown task 'trasform'" in res.stderr
    res, j = orch.run_json("validate", f)
    assert j["problems"][0]["line"] == 7 and j["problems"][0]["column"] == 9
    res = orch.run("run", f)
    assert res.returncode == EXIT_INVALID
    assert f"orch: invalid workflow '{f}':" in res.stderr
    assert "(line 7, column 9)" in res.stderr
    # A syntax error: where the parser stopped.
    f2 = orch.workflow("name: x\ntasks: [a,\n", name="syntax.yaml")
    res = orch.run("validate", f2)
    assert res.returncode == EXIT_INVALID
    assert "$: invalid YAML at line 3 column 1: " in res.stderr, res.stderr


def test_alias_bomb_refused(orch):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    f = orch.workflow("\n".join(lines) + "\n", name="bomb.yaml")
    t0 = time.monotonic()
    res = orch.run("validate", f)
    assert time.monotonic() - t0 < 10
    assert res.returncode == EXIT_INVALID
    assert "refused as an alias bomb" in res.stderr, res.stderr


def test_params_file_and_typing(orch):
    f = orch.workflow({"name": "y-params", "params": {
        "day": {"type": "string", "required": True},
        "n": {"type": "number", "default": 5},
        "tag": {"type": "string", "default": "dflt"}},
        "tasks": [{"name": "t", "command":
                   'echo "$ORCH_PARAM_day|$ORCH_PARAM_n|$ORCH_PARAM_tag"'}]})
    pf = orch.workflow("day: '2026-12-01'\nn: 7\n", name="params.yaml")
    res = orch.run("run", f, "--params-file", pf)
    assert res.returncode == EXIT_OK, res.stderr
    assert orch.show(exec_id_from_summary(res.stdout))["params"] == \
        {"day": "2026-12-01", "n": 7, "tag": "dflt"}
    # --param wins over the file; a string param takes any text; null leaves the default.
    res = orch.run("run", f, "--params-file", pf, "--param", "day=20261201", "--param",
                   "tag=null", "--param", "n=8")
    assert res.returncode == EXIT_OK, res.stderr
    assert orch.show(exec_id_from_summary(res.stdout))["params"] == \
        {"day": "20261201", "n": 8, "tag": "dflt"}
    # null is never the text "null" for a required param.
    res = orch.run("run", f, "--param", "day=null")
    assert res.returncode == EXIT_INVALID
    assert "'day' is a required param and null is not a value" in res.stderr
    pj = orch.workflow({"day": "null"}, name="p.json")
    res = orch.run("run", f, "--params-file", pj)
    assert res.returncode == EXIT_OK, res.stderr
    assert orch.show(exec_id_from_summary(res.stdout))["params"]["day"] == "null"
    bad = orch.workflow("[1, 2]\n", name="list.yaml")
    res = orch.run("run", f, "--params-file", bad)
    assert res.returncode == EXIT_INVALID
    assert "must hold an object" in res.stderr


def test_init(orch):
    d = orch.tmp / "proj"
    res = orch.run("init", d)
    assert res.returncode == EXIT_OK, res.stderr
    hello = d / "workflows" / "hello.yaml"
    conf = d / "orch.conf"
    assert hello.read_text().startswith("# hello.yaml")
    for line in conf.read_text().splitlines():
        assert line == "" or line.startswith("#"), line  # every setting commented out
    assert "# ORCH_LISTEN = 127.0.0.1:8080" in conf.read_text()
    res = orch.run("validate", hello)
    assert res.returncode == EXIT_OK, res.stderr
    res = orch.run("run", hello, "--param", "who=you")
    assert res.returncode == EXIT_OK, res.stderr
    # Never overwrites.
    hello.write_text("# mine\n")
    res = orch.run("init", d)
    assert res.returncode == EXIT_OK
    assert hello.read_text() == "# mine\n"
    assert "exists: left as it is" in res.stdout


def run_client(srv, *args):
    import subprocess
    from conftest import ORCH
    e = base_env({"ORCH_SERVER": srv.url, "ORCH_API_KEY": srv.admin_key})
    return subprocess.run([str(ORCH)] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=60, env=e, cwd=srv.tmp, stdin=subprocess.DEVNULL)


def test_api_yaml_and_show(server, tmp_path):  # noqa: F811
    r = server.post("/v1/workflows", raw=HELLO.encode(),
                    headers={"Content-Type": "application/yaml"})
    assert r.status == 201, r
    assert r.json["name"] == "y-hello"
    g = server.get("/v1/workflows/y-hello")
    assert g.json["definition"]["tasks"][0]["command"] == 'echo "one"\necho hello {{ params.who }}\n'
    # Problems name the YAML line and column; a syntax error is a 400.
    r = server.post("/v1/workflows", raw=BAD.encode(),
                    headers={"Content-Type": "application/yaml; charset=utf-8"})
    assert r.status == 422, r
    d = r.json["error"]["details"][0]
    assert (d["path"], d["line"], d["column"]) == ("$.tasks[1].dependsOn[0]", 7, 9), d
    r = server.post("/v1/workflows", raw=b"name: [\n", headers={"Content-Type": "application/yaml"})
    assert r.status == 400, r
    assert "not valid YAML" in r.json["error"]["message"], r.json
    # The CLI: apply a YAML file, show it in either form.
    f = tmp_path / "second.yaml"
    f.write_text(HELLO.replace("y-hello", "y-second"))
    res = run_client(server, "workflows", "apply", f)
    assert res.returncode == 0, res.stderr
    b = tmp_path / "bad.yaml"
    b.write_text(BAD)
    res = run_client(server, "workflows", "apply", b)
    assert res.returncode == EXIT_INVALID
    assert "$.tasks[1].dependsOn[0] (line 7, column 9): unknown task" in res.stderr, res.stderr
    res = run_client(server, "workflows", "show", "y-second", "--yaml")
    assert res.returncode == 0, res.stderr
    assert "command: |\n" in res.stdout and "name: y-second\n" in res.stdout, res.stdout
    again = tmp_path / "again.yaml"
    again.write_text(res.stdout)
    res = run_client(server, "workflows", "apply", again)
    assert res.returncode == 0 and "unchanged" in res.stdout, (res.stdout, res.stderr)
    res = run_client(server, "workflows", "show", "y-second", "--json")
    assert json.loads(res.stdout)["definition"]["name"] == "y-second"
    # trigger --param follows the declared type on the server too.
    res = run_client(server, "trigger", "y-second", "--param", "who=20261201", "--json")
    assert res.returncode == 0, res.stderr
    assert server.execution(json.loads(res.stdout)["id"])["params"] == {"who": "20261201"}


def test_register_dir_and_watch(stopped_server, tmp_path):  # noqa: F811
    d = tmp_path / "defs"
    d.mkdir()
    (d / "w.yaml").write_text("name: y-watch\ntasks:\n  - name: v1\n    command: echo 1\n")
    (d / "j.json").write_text(json.dumps({"name": "y-json", "tasks": [
        {"name": "a", "command": "true"}]}))
    srv = stopped_server
    srv.start(extra=["--register", str(d), "--watch"])
    assert srv.get("/v1/workflows/y-json").status == 200

    def tasks():
        return [t["name"] for t in srv.get("/v1/workflows/y-watch").json["definition"]["tasks"]]
    assert tasks() == ["v1"]
    srv.wait_log(f"Watching {d} for changed definitions")
    # A change (written in place) is a new version.
    (d / "w.yaml").write_text("name: y-watch\ntasks:\n  - name: v2\n    command: echo 2\n")
    srv.wait_log("Reloaded workflow 'y-watch' version 2")
    assert tasks() == ["v2"]
    # A broken file keeps the previous version, and the log says where.
    (d / "w.yaml").write_text("name: y-watch\ntasks:\n  - name: v3\n    command: echo 3\n"
                              "    dependsOn: [nope]\n")
    srv.wait_log(f"Not reloading {d}/w.yaml: line 5, column 17: $.tasks[0].dependsOn[0]: "
                 "unknown task 'nope'")
    assert tasks() == ["v2"]
    # One saved as editors do (written aside, renamed into place) is picked up too.
    (d / ".w.yaml.tmp").write_text("name: y-watch\ntasks:\n  - name: v4\n    command: echo 4\n")
    (d / ".w.yaml.tmp").rename(d / "w.yaml")
    srv.wait_log("Reloaded workflow 'y-watch' version 3")
    assert tasks() == ["v4"]
    e = srv.trigger("y-watch")
    assert srv.wait_exec(e["id"])["status"] == "succeeded"
    assert srv.stop() == 0
    srv.assert_log_clean()
