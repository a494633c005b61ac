#!/usr/bin/python3
"""Write a benchmark workload as an orch workflow (JSON) or a Makefile.

Workloads (the same as ../shared/peers/):
  chain-100        100 noop tasks, each depending on the previous one
  fanout-1000      1000 independent noop tasks
  shell-chain-100  100 chained tasks that each run `true` (argv, no shell)
  layered-10x100   task (k,j) depends on (k-1,j) and (k-1,(j+1) mod 100)
  fanout-shell-200 200 independent tasks that each run `true`

usage: gen.py WORKLOAD {json|make} OUTPUT
"""
import json
import sys


def dag(workload):
    """List of (name, deps, runs_true)."""
    if workload in ("chain-100", "shell-chain-100"):
        sh = workload.startswith("shell")
        return [(f"c{i}", [f"c{i-1}"] if i else [], sh) for i in range(100)]
    if workload == "fanout-1000":
        return [(f"f{i}", [], False) for i in range(1000)]
    if workload == "fanout-shell-200":
        return [(f"s{i}", [], True) for i in range(200)]
    if workload == "layered-10x100":
        return [(f"l{k}_{j}", [f"l{k-1}_{j}", f"l{k-1}_{(j+1) % 100}"] if k else [], False)
                for k in range(10) for j in range(100)]
    raise SystemExit(f"unknown workload {workload!r}")


def as_json(tasks, name):
    out = []
    for n, deps, sh in tasks:
        t = {"name": n}
        if deps:
            t["dependsOn"] = deps
        if sh:
            t["command"] = ["true"]
        else:
            t["type"] = "noop"
        out.append(t)
    return json.dumps({"name": name, "tasks": out})


def as_make(tasks):
    deps = {n: d for n, d, _ in tasks}
    sinks = set(deps) - {x for d in deps.values() for x in d}
    lines = [".PHONY: all " + " ".join(deps), "all: " + " ".join(sorted(sinks))]
    for n, d, s in tasks:
        lines.append(f"{n}: {' '.join(d)}")
        if s:
            lines.append("\ttrue")
    return "\n".join(lines) + "\n"


def main():
    workload, fmt, path = sys.argv[1:4]
    tasks = dag(workload)
    text = as_json(tasks, "bench-" + workload) if fmt == "json" else as_make(tasks)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
