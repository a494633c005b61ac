#!/usr/bin/env python3
"""The engine's layers, checked on its objects (ctest: unit.engine_layers).

The engine's core (CORE below) is the layer every subsystem calls: the life
of an execution and of its runs, the attempt's end, the one writer of status,
the turn's commit, the timer heap, the commit hooks, the kind table and the
epoll set. The core reaches a subsystem only through what the subsystem gives
it (the kind table's entries, its commit hooks, its ops table set by
engine_new), never by the name of one of its functions. The loop (engine.c,
deadline.c) sits on top and calls both.

The rules: no core object and other engine object each need a symbol the
other defines (a file that both calls the core and is called back by it by
name); and no other engine object needs a symbol the loop defines (the loop
is on top: it calls down, and is called only from outside the engine). Read from `nm` of the objects (an archive, or objects), or of a saved
listing of nm's output (--symbols, for the test of this check). Fails naming
each such pair and the symbols each side needs of the other. docs/internals/
engine.md ("Files, and who calls whom") states the same rule and the core.

  layers.py [--nm NM] liborch_engine.a | file.o...
  layers.py --symbols listing.txt
"""
import os
import subprocess
import sys

# The core and the loop: keep in step with docs/internals/engine.md.
CORE = {"exec", "attempt", "transition", "commit", "timer", "hooks", "kind", "watch"}
LOOP = {"engine", "deadline"}

# Known exceptions: (core file, other file) pairs that may still call each
# other both ways, each with its reason. Empty: the rule holds everywhere.
ALLOWED = {}


def parse(text):
    """nm's output -> {file: (defined, needed)}; the file is the object's
    name without .o and .c ("exec" for exec.c.o)."""
    objs = {}
    cur = None
    single = None
    for line in text.splitlines():
        line = line.rstrip()
        if not line:
            continue
        if line.endswith(":") and " " not in line:
            name = os.path.basename(line[:-1])
            cur = objs.setdefault(stem(name), (set(), set()))
            continue
        parts = line.split()
        if cur is None:  # nm of one object prints no header
            single = single or (set(), set())
            cur = single
            objs["<object>"] = single
        if len(parts) == 2 and parts[0] in ("U", "w", "v"):
            cur[1].add(parts[1])
        elif len(parts) >= 3 and parts[1].isupper() and parts[1] != "U":
            cur[0].add(parts[2])
    return objs


def stem(name):
    for suffix in (".o", ".obj", ".c"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return name


def check(objs):
    """The problems found, as lines of text (empty: the rule holds)."""
    problems = []
    missing = sorted(CORE - set(objs))
    if missing:
        problems.append("core file(s) not among the objects: %s (renamed? update CORE in "
                        "src/engine/layers.py and docs/internals/engine.md)"
                        % ", ".join(f + ".c" for f in missing))
    seen = set()
    for c in sorted(CORE & set(objs)):
        for f in sorted(set(objs) - CORE):
            c_needs = objs[c][1] & objs[f][0]
            f_needs = objs[f][1] & objs[c][0]
            if not c_needs or not f_needs:
                continue
            if (c, f) in ALLOWED:
                seen.add((c, f))
                continue
            problems.append("%s.c <-> %s.c: the core file %s.c needs %s; %s.c needs %s"
                            % (c, f, c, " ".join(sorted(c_needs)), f, " ".join(sorted(f_needs))))
    for top in sorted(LOOP & set(objs)):
        for f in sorted(set(objs) - LOOP):
            f_needs = objs[f][1] & objs[top][0]
            if f_needs:
                problems.append("%s.c needs %s of the loop (%s.c): the loop is called by no "
                                "file of the engine" % (f, " ".join(sorted(f_needs)), top))
    for pair in sorted(set(ALLOWED) - seen):
        problems.append("%s.c <-> %s.c is allowed in ALLOWED but no longer calls both ways: "
                        "remove the exception" % pair)
    return problems


def main(argv):
    nm = "nm"
    symbols = None
    files = []
    args = list(argv[1:])
    while args:
        a = args.pop(0)
        if a == "--nm" and args:
            nm = args.pop(0) or "nm"
        elif a == "--symbols" and args:
            symbols = args.pop(0)
        elif a.startswith("-"):
            sys.stderr.write(__doc__)
            return 2
        else:
            files.append(a)
    if symbols:
        with open(symbols, encoding="utf-8") as fh:
            text = fh.read()
    elif files:
        try:
            res = subprocess.run([nm] + files, capture_output=True, text=True, check=False)
        except OSError as e:
            sys.stderr.write("engine layers: cannot run '%s': %s\n" % (nm, e))
            return 2
        if res.returncode != 0:
            sys.stderr.write("engine layers: %s failed: %s\n" % (nm, res.stderr.strip()))
            return 2
        text = res.stdout
    else:
        sys.stderr.write(__doc__)
        return 2
    problems = check(parse(text))
    if problems:
        print("engine layers violated (see docs/internals/engine.md, \"Files, and who calls "
              "whom\"):")
        for p in problems:
            print("  " + p)
        return 1
    print("engine layers: no core file and other file call each other both ways")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
