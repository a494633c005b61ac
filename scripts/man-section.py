#!/usr/bin/env python3
"""man-section.py [ORCH] "CMD [SUB]"...: print the orch(1) section (roff) of each command
from its --help, to paste into docs/man/orch.1 under COMMANDS when a command is added or its
options change (tests/e2e/test_manpages.py says which). Edit the text after pasting: the
summary is --help's, and the page says more where it helps."""
import re
import subprocess
import sys

COMMON = {"--data-dir", "--database-url", "--log-level", "--help", "--server", "--api-key",
          "--config", "--cacert"}


def esc(t):
    t = t.replace("\\", "\\\\").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", t, flags=re.M)


def section(orch, cmd):
    h = subprocess.run([orch, *cmd.split(), "--help"], capture_output=True, text=True,
                       check=True).stdout
    usage = h.split("\n", 1)[0].removeprefix("usage: ")
    parts = h.split("\n\n", 1)
    body = parts[1].split("\noptions:\n")[0] if len(parts) > 1 else ""
    opts = re.findall(r"^\s+(--[a-z][a-z0-9-]*)(?: ([^\s]+))?\s+(.*)$",
                      h.split("\noptions:\n", 1)[1] if "\noptions:\n" in h else "", re.M)
    args = usage.split("[options]", 1)[1].strip() if "[options]" in usage else ""
    out = [f'.SS "orch {cmd}"', ".B orch " + esc(cmd)]
    words = [f"[\\fI{a[1:-1]}\\fR]" if a.startswith("[") else f"\\fI{a}\\fR" for a in args.split()]
    out.append("[\\fIoptions\\fR]" + (" " + " ".join(words) if words else ""))
    out += [".PP", esc(body.replace("\n", " ").strip())]
    common = []
    for name, arg, text in opts:
        if name in COMMON:
            common.append(name)
            continue
        out += [".TP", ".B " + esc(name) + (f" \\fI{esc(arg)}\\fR" if arg else ""), esc(text)]
    if common:
        out += [".PP", "Common options: " + ", ".join(f"\\fB{esc(c)}\\fR" for c in common) + "."]
    return "\n".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    orch = "build/src/cli/orch"
    if args and "/" in args[0]:
        orch = args.pop(0)
    for c in args:
        print(section(orch, c))
