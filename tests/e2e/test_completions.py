"""
Shell completions of dist/completions/ (bash, zsh, fish): commands, subcommands, each
command's options (from its --help), option values, and workflow names and execution ids
from the local store (--data-dir) or from a server (--server, --api-key), through
`orch workflows list --names` and `orch executions list --ids`.
"""
import json
import subprocess

import pytest

from apiutil import Server, sh, wf
from conftest import ORCH, REPO, base_env, exec_id_from_summary

COMP = REPO / "dist" / "completions"


def env():
    e = base_env()
    e["PATH"] = f"{ORCH.parent}:{e.get('PATH', '/usr/bin:/bin')}"
    e["HOME"] = "/nonexistent"  # no user configuration of any shell
    return e


def bash(words, cword=None, cwd=None):
    """COMPREPLY of _orch for COMP_WORDS=words (the last one completed, or word `cword`)."""
    cword = len(words) - 1 if cword is None else cword
    script = (f"source {COMP / 'orch.bash'}; COMP_WORDS=(\"$@\"); COMP_CWORD={cword}; _orch; "
              "printf '%s\\n' \"${COMPREPLY[@]}\"")
    res = subprocess.run(["bash", "--norc", "-c", script, "bash", *words], capture_output=True,
                         text=True, env=env(), cwd=cwd, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "orch" not in res.stderr, res.stderr
    return [w for w in res.stdout.split("\n") if w]


def zsh(words, current=None, cwd=None):
    """What _orch adds (compadd and _files stubbed) for words, completing word `current`."""
    current = len(words) if current is None else current
    stubs = ("compadd() { local -a out; while (( $# )); do case $1 in -a) shift; "
             "out+=(${(P)1});; --) ;; *) out+=($1);; esac; shift; done; "
             "print -rl -- $out; }\n"
             "_files() { print -r -- FILES; }\n"
             "_call_program() { shift; eval \"$@\"; }\n"
             f"source {COMP / '_orch'} </dev/null >/dev/null 2>&1\n"
             f"words=(\"$@\"); CURRENT={current}; _orch\n")
    res = subprocess.run(["zsh", "-f", "-c", stubs, "zsh", *words], capture_output=True,
                         text=True, env=env(), cwd=cwd, timeout=60)
    assert res.returncode in (0, 1), res.stderr
    return [w for w in res.stdout.split("\n") if w]


def fish(line, cwd=None):
    res = subprocess.run(["fish", "-N", "-c",
                          f"source {COMP / 'orch.fish'}; complete -C {json.dumps(line)}"],
                         capture_output=True, text=True, env=env(), cwd=cwd, timeout=60)
    assert res.returncode == 0, res.stderr
    return [w.split("\t")[0] for w in res.stdout.split("\n") if w]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A data directory with workflows 'hello' and 'etl-load' and one execution."""
    tmp = tmp_path_factory.mktemp("comp")
    data = tmp / "data"
    (tmp / "hello.json").write_text(json.dumps(wf("hello", [sh("a", ["true"])])))
    e = base_env()
    res = subprocess.run([str(ORCH), "run", str(tmp / "hello.json"), "--data-dir", str(data)],
                         capture_output=True, text=True, env=e, timeout=60)
    assert res.returncode == 0, res.stderr
    ex = exec_id_from_summary(res.stdout)
    res = subprocess.run([str(ORCH), "workflows", "apply", str(REPO / "examples" / "etl-load.yaml"),
                          "--data-dir", str(data)], capture_output=True, text=True, env=e,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    return tmp, data, ex


def test_listing_flags(store):
    tmp, data, ex = store
    e = base_env()
    res = subprocess.run([str(ORCH), "workflows", "list", "--names", "--data-dir", str(data)],
                         capture_output=True, text=True, env=e, timeout=60)
    assert res.returncode == 0 and res.stdout.split() == ["etl-load", "hello"], res
    res = subprocess.run([str(ORCH), "executions", "list", "--ids", "--data-dir", str(data)],
                         capture_output=True, text=True, env=e, timeout=60)
    assert res.returncode == 0 and res.stdout.split() == [ex], res
    # Without --names, listing workflows still needs a server.
    res = subprocess.run([str(ORCH), "workflows", "list", "--data-dir", str(data)],
                         capture_output=True, text=True, env=e, timeout=60)
    assert res.returncode == 2 and "needs a server" in res.stderr, res


def test_bash_commands_and_options(store):
    tmp, data, ex = store
    assert "executions" in bash(["orch", ""]) and "server" in bash(["orch", ""])
    assert bash(["orch", "ex"]) == ["executions"]
    assert bash(["orch", "executions", ""]) == ["list", "show"]
    assert bash(["orch", "keys", ""]) == ["create", "list", "revoke"]
    # The options that `orch executions list --help` lists (it leaves out --log-level).
    assert bash(["orch", "executions", "list", "--l"]) == ["--limit"]
    assert bash(["orch", "executions", "list", "--c"]) == ["--cursor", "--cacert", "--config"]
    assert bash(["orch", "schedules", "p"]) == ["pause"]
    assert bash(["orch", "config", ""]) == ["show"]
    assert "init" in bash(["orch", ""])
    assert bash(["orch", "run", "--params-file", "hel"], cwd=tmp) == ["hello.json"]
    assert "--ids" in bash(["orch", "executions", "list", "--"])
    assert "--register" in bash(["orch", "server", "--"])
    assert bash(["orch", "executions", "list", "--status", "f"]) == ["failed"]
    assert bash(["orch", "keys", "create", "--scope", ""]) == ["read", "write", "admin"]
    # An option's value is not completed as an option or an argument.
    assert bash(["orch", "executions", "list", "--limit", ""]) == []
    # Definition files for run / validate / workflows apply.
    assert bash(["orch", "run", "hel"], cwd=tmp) == ["hello.json"]


def test_bash_names_and_ids_from_the_store(store):
    tmp, data, ex = store
    d = str(data)
    assert bash(["orch", "trigger", "--data-dir", d, ""]) == ["etl-load", "hello"]
    assert bash(["orch", "workflows", "show", "h", "--data-dir", d], cword=3) == ["hello"]
    assert bash(["orch", "executions", "list", "--workflow", "e", "--data-dir", d],
                cword=4) == ["etl-load"]
    assert bash(["orch", "logs", "--data-dir", d, ""]) == [ex]
    assert bash(["orch", "executions", "show", "--data-dir", d, "ex_"]) == [ex]
    # logs ID TASK: the second argument is not an execution id.
    assert bash(["orch", "logs", "--data-dir", d, ex, ""]) == []


def test_bash_names_and_ids_from_a_server(tmp_path):
    srv = Server(tmp_path)
    try:
        srv.start()
        srv.apply(wf("remote-one", [sh("a", ["true"])]))
        ex = srv.trigger("remote-one")["id"]
        where = ["--server", srv.url, "--api-key", srv.admin_key]
        assert bash(["orch", "trigger", *where, ""]) == ["remote-one"]
        assert bash(["orch", "cancel", *where, ""]) == [ex]
        assert srv.stop() == 0
    finally:
        srv.cleanup()


def test_zsh(store):
    tmp, data, ex = store
    d = str(data)
    assert "executions" in zsh(["orch", ""])
    assert zsh(["orch", "executions", ""]) == ["list", "show"]
    assert zsh(["orch", "schedules", ""]) == ["next", "validate", "list", "show", "pause",
                                             "resume", "delete", "backfill"]
    assert "--ids" in zsh(["orch", "executions", "list", "--"])
    assert zsh(["orch", "trigger", "--data-dir", d, ""]) == ["etl-load", "hello"]
    assert zsh(["orch", "logs", "--data-dir", d, ""]) == [ex]
    assert zsh(["orch", "executions", "list", "--limit", ""]) == []
    assert zsh(["orch", "run", ""]) == ["FILES"]


def test_fish(store):
    tmp, data, ex = store
    d = str(data)
    assert "executions" in fish("orch ")
    assert fish("orch executions ") == ["list", "show"]
    assert fish("orch executions list --l") == ["--limit"]
    assert fish("orch config ") == ["show"]
    assert fish(f"orch trigger --data-dir {d} ") == ["etl-load", "hello"]
    assert fish(f"orch workflows show --data-dir {d} ") == ["etl-load", "hello"]
    assert fish(f"orch logs --data-dir {d} ") == [ex]
    assert fish("orch run hel", cwd=tmp) == ["hello.json"]
