#!/usr/bin/python3
"""Where a chained command task's wall time goes, from an strace of the run.

    strace -f --seccomp-bpf -ttt -T -o TRACE \
        -e trace=epoll_wait,wait4,pwrite64,fdatasync,fsync,clone,clone3,vfork,execve,exit_group CMD
    bench/chain-phases.py TRACE [orch|make]

Only the listed calls stop the traced processes (seccomp-bpf), so the tracing adds
a few tens of microseconds per task, not a few milliseconds. For each task after
the first (the previous task's `exit_group` to this task's `exit_group`), prints the
medians of the phases, in ms:

  wake    the previous task's exit to the orchestrator's return from its wait
          (epoll_wait for orch, wait4 for make)
  end     that return to the first pwrite64 of the commit (orch: reading the
          end, the next task's start, the statements), or to the clone (make)
  write   the commit's writes, to the start of its sync (orch only)
  sync    fdatasync/fsync calls in between (orch only; 0 with ORCH_SQLITE_SYNC=normal)
  spawn   the end of the commit to the clone (orch: the spawn's preparation)
  clone   the clone to the new process's execve (the child's own set-up)
  run     the execve to the task's exit_group (the `true` process itself)
"""
import re
import statistics
import sys

LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")


def parse(path):
    """Events (time, pid, name, kind) with kind 'call' (entry) or 'ret' (return)."""
    ev = []
    for raw in open(path):
        m = LINE.match(raw)
        if not m:
            continue
        pid, t, rest = int(m.group(1)), float(m.group(2)), m.group(3)
        dur = re.search(r"<(\d+\.\d+)>\s*$", rest)
        if rest.startswith("<..."):
            name = rest.split()[1]
            ev.append((t, pid, name, "ret"))
            continue
        if rest.startswith("+++") or rest.startswith("---"):
            continue
        name = rest.split("(", 1)[0]
        ev.append((t, pid, name, "call"))
        if "<unfinished" not in rest and dur:
            ev.append((t + float(dur.group(1)), pid, name, "ret"))
    ev.sort()
    return ev


def main():
    path = sys.argv[1]
    who = sys.argv[2] if len(sys.argv) > 2 else "orch"
    ev = parse(path)
    main_pid = ev[0][1]
    exits = [e for e in ev if e[2] == "exit_group" and e[1] != main_pid and e[3] == "call"]
    phases = {k: [] for k in ("wake", "end", "write", "sync", "spawn", "clone", "run", "total")}
    for prev, cur in zip(exits, exits[1:]):
        t0, t1 = prev[0], cur[0]
        seg = [e for e in ev if t0 <= e[0] <= t1]
        wait = "epoll_wait" if who == "orch" else "wait4"
        try:
            woke = next(e[0] for e in seg if e[1] == main_pid and e[2] == wait and e[3] == "ret")
            clone = next(e[0] for e in seg if e[1] == main_pid and e[2] in ("clone", "clone3", "vfork")
                         and e[3] == "call" and e[0] >= woke)
            exe = next(e[0] for e in seg if e[2] == "execve" and e[3] == "call" and e[0] >= clone
                       and e[1] != main_pid)
        except StopIteration:
            continue
        if who == "orch":
            writes = [e for e in seg if e[1] == main_pid and e[2] == "pwrite64" and woke <= e[0] <= clone]
            syncs = [e for e in seg if e[1] == main_pid and e[2] in ("fdatasync", "fsync")
                     and woke <= e[0] <= clone]
            if not writes:
                continue
            w0 = writes[0][0]
            s_call = [e[0] for e in syncs if e[3] == "call"]
            s_ret = [e[0] for e in syncs if e[3] == "ret"]
            sync = sum(r - c for c, r in zip(s_call, s_ret))
            c_end = max([e[0] for e in writes if e[3] == "ret"] + s_ret)
            phases["end"].append(w0 - woke)
            phases["write"].append(c_end - w0 - sync)
            phases["sync"].append(sync)
            phases["spawn"].append(clone - c_end)
        else:
            phases["end"].append(clone - woke)
        phases["wake"].append(woke - t0)
        phases["clone"].append(exe - clone)
        phases["run"].append(t1 - exe)
        phases["total"].append(t1 - t0)
    n = len(phases["total"])
    print(f"{who}: {n} tasks; medians in ms (the phases' medians need not add up to the total's)")
    for k, v in phases.items():
        if v:
            print(f"  {k:6s} {statistics.median(v) * 1000:8.3f}   mean {statistics.mean(v) * 1000:8.3f}")


if __name__ == "__main__":
    main()
