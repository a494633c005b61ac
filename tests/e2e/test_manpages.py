"""
The man pages stay in sync with the program: docs/man/orch.1 has a section (.SS "orch CMD")
for every command that `orch --help` and `orch GROUP --help` name, and each section lists
exactly the options that `orch CMD --help` lists (as .TP items, or in its "Common options:"
line); docs/man/orch-workflow.5 names every field the validator knows. Both pages format
without warnings.
"""
import re
import subprocess

import pytest

from conftest import ORCH, REPO, base_env

MAN1 = REPO / "docs" / "man" / "orch.1"
MAN5 = REPO / "docs" / "man" / "orch-workflow.5"

# An option as --help lists it: indented, at the start of its line (one per line).
HELP_OPT = re.compile(r"^\s+(--[a-z][a-z0-9-]*)", re.M)


def orch_help(*words):
    res = subprocess.run([str(ORCH), *words, "--help"], capture_output=True, text=True,
                         env=base_env(), timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"orch {' '.join(words)} --help: {res.returncode} {res.stderr}"
    return res.stdout


def commands_of_help():
    """Every command: the first word of each command line of `orch --help`, and the
    subcommands that `orch GROUP --help` names ("orch keys create ...", "orch db a|b")."""
    top = orch_help()
    words = []
    for m in re.finditer(r"^  ([a-z]+)(?=[ |]|$)", top, re.M):
        if m.group(1) not in words:
            words.append(m.group(1))
    cmds = []
    for w in words:
        h = orch_help(w)
        subs = []
        for m in re.finditer(rf"\borch {w} ([a-z][a-z-]*(?:\|[a-z][a-z-]*)*)", h):
            for s in m.group(1).split("|"):
                if s not in subs:
                    subs.append(s)
        cmds += [f"{w} {s}" for s in subs] if subs else [w]
    return cmds


def roff_text(s):
    return s.replace("\\-", "-").replace("\\&", "")


def man_sections():
    """{"executions list": (item options, common options)} of orch.1's COMMANDS."""
    text = MAN1.read_text()
    body = text.split("\n.SH COMMANDS\n", 1)[1].split("\n.SH ", 1)[0]
    out = {}
    for part in re.split(r'^\.SS "orch ', body, flags=re.M)[1:]:
        name, rest = part.split('"', 1)
        rest = roff_text(rest)
        items = re.findall(r"^\.TP\n\.B (--[a-z][a-z0-9-]*)", rest, re.M)
        common = []
        m = re.search(r"^Common options: (.*)$", rest, re.M)
        if m:
            common = re.findall(r"(--[a-z][a-z0-9-]*)", m.group(1))
        assert not set(items) & set(common), f"orch {name}: options listed twice"
        out[name] = (items, common)
    return out


def test_every_command_has_a_section():
    cmds = commands_of_help()
    assert "run" in cmds and "executions list" in cmds and "keys revoke" in cmds, cmds
    sections = man_sections()
    missing = [c for c in cmds if c not in sections]
    assert not missing, (f"commands without a section in docs/man/orch.1: {missing} "
                         f"(scripts/man-section.py prints one to start from)")
    extra = [s for s in sections if s not in cmds]
    assert not extra, f"sections of docs/man/orch.1 for no command: {extra}"


@pytest.mark.parametrize("cmd", sorted(man_sections()))
def test_options_match_help(cmd):
    listed = HELP_OPT.findall(orch_help(*cmd.split()))
    items, common = man_sections()[cmd]
    in_man = items + common
    missing = [o for o in listed if o not in in_man]
    assert not missing, f"orch {cmd}: options of --help missing from orch.1: {missing}"  # noqa
    gone = [o for o in in_man if o not in listed]
    assert not gone, f"orch {cmd}: options in orch.1 that --help does not list: {gone}"


def test_common_options_are_described():
    text = roff_text(MAN1.read_text())
    section = text.split("\n.SH COMMON OPTIONS\n", 1)[1].split("\n.SH ", 1)[0]
    described = set(re.findall(r"^\.B (--[a-z][a-z0-9-]*)", section, re.M))
    for _, common in man_sections().values():
        assert set(common) <= described, set(common) - described


def test_workflow_fields_in_orch_workflow_5():
    text = roff_text(MAN5.read_text())
    fields = ["name", "description", "params", "tasks", "timeout", "concurrency", "env",
              "retention", "maxQueued", "maxRunning", "stuckPolicy", "schedules", "outputs",
              "dependsOn", "type", "command", "duration", "workingDir", "retries",
              "retryBackoff", "runIf", "when", "forEach", "maxParallel", "url", "method",
              "headers", "body", "expectStatus", "followRedirects", "auth", "idempotent",
              "workflow", "cron", "every", "timezone", "enabled", "dst", "catchup",
              "maxCatchup", "overlap"]
    for f in fields:
        assert re.search(rf"^\.B (.*, )?{f}\b", text, re.M), f"field '{f}' not in orch-workflow.5"


@pytest.mark.parametrize("page", [MAN1, MAN5])
def test_pages_format_without_warnings(page):
    res = subprocess.run(["groff", "-ww", "-man", "-z", str(page)], capture_output=True,
                         text=True, timeout=60, env=base_env())
    assert res.returncode == 0 and not res.stderr.strip(), res.stderr
