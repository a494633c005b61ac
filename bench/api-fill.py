#!/usr/bin/python3
"""
api-fill.py DB N [WORKFLOW]: add N finished executions of WORKFLOW (default bench-history)
to the orch store DB (a data directory's orch.db, already created and migrated by orch
itself, e.g. by `orch keys create`), quickly, for the API benchmark.

Rows follow src/store/schema.c (executions, task_runs, attempts, workflows): one task run
and one attempt per execution, 10% failed and 90% succeeded, created one per millisecond
ending now (so the newest are the most recent), ids in orch's format ("ex_" + 16 Crockford
base32 characters of 48 bits of milliseconds and 32 more bits), so that sorting by id sorts
by creation time as orch's own ids do. Prints the id of an execution in the middle.
Run it only while no server uses the database.
"""
import json
import os
import sqlite3
import sys
import time

B32 = "0123456789abcdefghjkmnpqrstvwxyz"


def make_id(prefix, ms, seq):
    v = ((ms & 0xFFFFFFFFFFFF) << 32) | (seq & 0xFFFFFFFF)
    out = []
    for _ in range(16):
        out.append(B32[v & 31])
        v >>= 5
    return prefix + "".join(reversed(out))


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: api-fill.py DB N [WORKFLOW]")
    db, n = sys.argv[1], int(sys.argv[2])
    workflow = sys.argv[3] if len(sys.argv) > 3 else "bench-history"
    if not os.path.exists(db):
        sys.exit(f"api-fill.py: no database at '{db}' (let orch create it first)")
    con = sqlite3.connect(db, isolation_level=None)
    have = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    for t in ("executions", "task_runs", "attempts", "workflows"):
        if t not in have:
            sys.exit(f"api-fill.py: '{db}' has no table '{t}': not an orch store?")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    now = int(time.time() * 1000)
    definition = json.dumps({"name": workflow, "tasks": [{"name": "work", "command": ["true"]}]})
    cols = [r[1] for r in con.execute("PRAGMA table_info(workflows)")]
    if not con.execute("SELECT 1 FROM workflows WHERE name=?", (workflow,)).fetchone():
        if "deleted_at" in cols:
            con.execute("INSERT INTO workflows (name, version, definition, created_at, deleted_at)"
                        " VALUES (?, 1, ?, ?, NULL)", (workflow, definition, now - n - 1000))
        else:
            con.execute("INSERT INTO workflows (name, version, definition, created_at)"
                        " VALUES (?, 1, ?, ?)", (workflow, definition, now - n - 1000))
    start = now - n - 1000  # one execution per millisecond, the last a second ago
    node = "bench-host:1"
    batch = 20000
    middle = None
    for base in range(0, n, batch):
        ex, tr, at = [], [], []
        for i in range(base, min(n, base + batch)):
            created = start + i
            eid = make_id("ex_", created, i)
            failed = i % 10 == 7
            status = "failed" if failed else "succeeded"
            err = "task 'work' failed: exit status 1" if failed else None
            ex.append((eid, workflow, 1, status, "{}", created, created + 1, created + 40, err))
            tr.append((eid, 0, "work", status, 1, None, created + 1, created + 40,
                       "exit status 1" if failed else None))
            at.append((eid, 0, 1, status, node, 100000 + i % 50000, 100000 + i % 50000, 0,
                       created + 1, created + 40, 1 if failed else 0, 0,
                       "exit status 1" if failed else None))
            if i == n // 2:
                middle = eid
        con.executemany("INSERT INTO executions (id, workflow, workflow_version, status, params,"
                        " created_at, started_at, finished_at, error)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", ex)
        con.executemany("INSERT INTO task_runs (execution_id, idx, name, status, attempt,"
                        " available_at, started_at, finished_at, error)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", tr)
        con.executemany("INSERT INTO attempts (execution_id, task_idx, number, status, node,"
                        " pid, pgid, proc_start, started_at, finished_at, exit_code, signal,"
                        " error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", at)
    con.execute("COMMIT")
    con.close()
    print(middle or "")


if __name__ == "__main__":
    main()
