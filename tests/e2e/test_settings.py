"""Every setting orch reads from its environment is known to the config file (`orch config
show` lists it, so a config file may set it) and documented in the README.

The settings are found in the sources: each "ORCH_..." string literal, less the variables
orch gives its tasks (they are outputs, not settings)."""
import json
import re
import subprocess

from conftest import ORCH, REPO

# What a task finds in its environment, set by orch (README: command tasks).
TASK_VARIABLES = {
    "ORCH_ATTEMPT", "ORCH_EXECUTION_ID", "ORCH_ITEM", "ORCH_ITEM_INDEX", "ORCH_OUTPUT",
    "ORCH_PARAM_", "ORCH_SCHEDULE", "ORCH_SCHEDULED_FOR", "ORCH_TASK", "ORCH_WORKFLOW",
}


def settings_in_sources():
    found = set()
    for path in (REPO / "src").rglob("*.c"):
        found.update(re.findall(r'"(ORCH_[A-Z_]+)', path.read_text(errors="replace")))
    found -= TASK_VARIABLES
    found.discard("ORCH_CONFIG")  # names the file itself
    found.add("DATABASE_URL")
    return found


def test_every_setting_is_known_to_config_show_and_the_readme():
    wanted = settings_in_sources()
    assert len(wanted) > 20, sorted(wanted)  # the scan found them
    res = subprocess.run([str(ORCH), "config", "show", "--json"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    known = {s["name"] for s in json.loads(res.stdout)["settings"]}
    assert not wanted - known, f"settings missing from src/cli/config.c: {sorted(wanted - known)}"
    readme = (REPO / "README.md").read_text()
    undocumented = sorted(n for n in wanted if f"`{n}" not in readme)
    assert not undocumented, f"settings missing from the README: {undocumented}"
