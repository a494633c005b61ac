"""
When each attempt became queued, beside when it started running: `queuedAt` on every
attempt and task run of GET /v1/executions/{id} and /tasks, on SQLite and on PostgreSQL
(every answer is checked against docs/openapi.yaml by apiutil).

- With one worker slot, the second of two ready tasks is queued from the start with the
  first, and starts only once the first ended; a kill -9 of the server while it waits,
  and a restart, keep its queuedAt (the attempt it gets after the restart carries it).
- A retry is queued at the end of its back-off: the back-off is finishedAt to queuedAt.
- `orch executions show` lists the attempts that waited, with how long.
- PostgreSQL: an attempt offered to another node and run there carries its queuedAt too.
"""
import json
from datetime import datetime, timezone

import pytest

from apiutil import Server, sh, wf
from conftest import wait_for
from pgutil import Node, Postgres

GATE = 'while [ ! -f "$E2E_TMP/go-$ORCH_EXECUTION_ID" ]; do sleep 0.05; done'
WAIT = 90  # seconds; conditions are waited on, a loaded machine is slow


def ms(iso):
    dt = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return round(dt.timestamp() * 1000)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def srv(request, tmp_path_factory):
    """One server with a single worker slot, on SQLite or on PostgreSQL."""
    tmp = tmp_path_factory.mktemp("queued-" + request.param)
    pg = None
    if request.param == "sqlite":
        s = Server(tmp, workers=1)
    else:
        pg = Postgres().start()
        s = Node(tmp, pg.database(), "q1", workers=1)
    try:
        s.start()
        yield s
        code = s.stop()
        assert code == 0, f"orch server exited with {code}:\n{s.log()[-3000:]}"
        s.assert_log_clean()
    finally:
        s.cleanup()
        if pg:
            pg.destroy()


def tasks_of(s, ex):
    """The task runs by name, from the execution and from /tasks (which must agree)."""
    d = s.execution(ex)
    r = s.get(f"/v1/executions/{ex}/tasks")
    assert r.status == 200, r
    listed = {t["name"]: t for t in r.json["items"]}
    for t in d["tasks"]:
        assert listed[t["name"]]["queuedAt"] == t["queuedAt"], (t, listed[t["name"]])
        assert [a["queuedAt"] for a in listed[t["name"]]["attempts"]] == \
            [a["queuedAt"] for a in t["attempts"]]
    return d, {t["name"]: t for t in d["tasks"]}


def test_waiting_for_the_slot_kept_across_kill_9(srv):
    srv.apply(wf("q-slot", [sh("one", GATE), sh("two", GATE)]))
    ex = srv.trigger("q-slot")["id"]

    def split():
        _, t = tasks_of(srv, ex)
        run = [x for x in t.values() if x["status"] == "running" and x["attempts"]]
        wait = [x for x in t.values() if x["status"] == "queued"]
        return (run[0], wait[0]) if run and wait else None
    running, waiting = wait_for(split, timeout=WAIT, what="one task running, one queued")
    # Both were ready at once; the waiting one has no attempt yet.
    assert waiting["queuedAt"] is not None and waiting["attempts"] == [], waiting
    assert waiting["startedAt"] is None
    first = running["attempts"][0]
    assert first["queuedAt"] is not None and running["queuedAt"] == first["queuedAt"], running
    assert ms(first["queuedAt"]) <= ms(first["startedAt"])
    assert ms(waiting["queuedAt"]) <= ms(first["startedAt"])
    queued_before = waiting["queuedAt"]

    # kill -9 while it waits; the restarted server takes the execution up again.
    srv.kill()
    (srv.tmp / f"go-{ex}").write_text("")
    srv.start()
    d = srv.wait_exec(ex, timeout=WAIT)
    assert d["status"] == "succeeded", json.dumps(d, indent=1)
    d, t = tasks_of(srv, ex)
    w = t[waiting["name"]]
    assert [a["number"] for a in w["attempts"]] == [1], w
    att = w["attempts"][0]
    assert att["queuedAt"] == queued_before, (att, queued_before)  # kept across the crash
    assert w["queuedAt"] == queued_before
    assert ms(att["startedAt"]) > ms(att["queuedAt"])
    # The attempt the crash interrupted is lost; its rerun was queued at the restart.
    r = t[running["name"]]
    assert r["attempts"][0]["status"] == "lost", r
    assert ms(r["attempts"][-1]["queuedAt"]) >= ms(first["startedAt"])
    # One slot: every attempt started after the one before it ended, and waited from its
    # queuedAt to its startedAt.
    atts = sorted((a for x in t.values() for a in x["attempts"]), key=lambda a: a["startedAt"])
    for a in atts:
        assert a["queuedAt"] is not None and ms(a["queuedAt"]) <= ms(a["startedAt"]), a
    for prev, nxt in zip(atts, atts[1:]):
        assert ms(nxt["startedAt"]) >= ms(prev["finishedAt"]), (prev, nxt)

    # `orch executions show` says how long the attempts waited.
    env = {"ORCH_SERVER": srv.url, "ORCH_API_KEY": srv.admin_key}
    res = srv.orch("executions", "show", ex, env=env)
    assert res.returncode == 0, res.stderr
    assert "\nQueued before running\n" in res.stdout, res.stdout
    assert f"  {w['name']} #1: " in res.stdout and f"(queued at {queued_before})" in res.stdout, \
        res.stdout


def test_retry_queued_at_the_end_of_its_back_off(srv):
    srv.apply(wf("q-retry", [sh("flaky", "exit 3", retries=1,
                                retryBackoff={"initial": "300ms", "factor": 1,
                                              "jitter": False})]))
    ex = srv.trigger("q-retry")["id"]
    d = srv.wait_exec(ex, timeout=WAIT)
    assert d["status"] == "failed", d
    _, t = tasks_of(srv, ex)
    a1, a2 = t["flaky"]["attempts"]
    assert ms(a1["queuedAt"]) <= ms(a1["startedAt"])
    assert ms(a2["queuedAt"]) == ms(a1["finishedAt"]) + 300, (a1, a2)
    assert ms(a2["startedAt"]) >= ms(a2["queuedAt"])
    assert t["flaky"]["queuedAt"] == a2["queuedAt"]


def test_offered_attempt_on_another_node(srv):
    """PostgreSQL: a ready task the owner has no slot for is offered to another node; its
    attempt, run there, carries the queuedAt the owner recorded."""
    if not isinstance(srv, Node):
        pytest.skip("tasks are offered to other nodes on PostgreSQL only")
    other = Node(srv.tmp, srv.db_url, "q2", workers=1, admin_key=srv.admin_key)
    try:
        other.start()
        wait_for(lambda: any(n["id"] == "q2" and n["state"] == "alive"
                             for n in srv.get("/v1/nodes").json["items"]),
                 timeout=WAIT, what="node q2 alive")
        srv.apply(wf("q-offer", [sh("left", GATE), sh("right", GATE)]))
        ex = srv.trigger("q-offer")["id"]
        other.wait_log("runs here for node 'q1'", timeout=WAIT)
        (srv.tmp / f"go-{ex}").write_text("")
        d = srv.wait_exec(ex, timeout=WAIT)
        assert d["status"] == "succeeded", json.dumps(d, indent=1)
        _, t = tasks_of(srv, ex)
        there = [x for x in t.values()
                 if (x["attempts"][-1]["node"] or "").endswith(f":{other.proc.pid}")]
        assert there, t
        a = there[0]["attempts"][-1]
        assert a["queuedAt"] is not None and ms(a["queuedAt"]) <= ms(a["startedAt"]), a
        assert there[0]["queuedAt"] == a["queuedAt"]
        assert other.stop() == 0, other.log()[-3000:]
        other.assert_log_clean()
    finally:
        other.cleanup()
