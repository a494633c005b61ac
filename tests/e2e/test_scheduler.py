"""
The scheduler end to end against a real `orch server`: schedules written in workflow
definitions fire once per due time (executions carry scheduleId and scheduledFor, the task
sees ORCH_SCHEDULED_FOR), the fires list, pause and resume, overlap skip, a kill -9 and
restart that fires no due time twice (catchup latest: one catch-up fire; none: none),
backfill of a cron schedule (twice: no duplicates), a backfill and a catch-up that run every
due time they name, one after another, whatever the overlap policy, preview and next, the scheduler's
health, and schedules as a resource: created with POST /v1/schedules (they fire), changed
with PATCH, deleted with DELETE (they stop), while a definition's schedules can only be
paused. Every answer is checked against docs/openapi.yaml by apiutil.
"""
import json
import re
import time
from datetime import datetime, timezone

import pytest

from apiutil import server, sh, stopped_server, wf  # noqa: F401


def iso_ms(s):
    """Milliseconds since the epoch of an ISO 8601 instant ("...Z" or with an offset)."""
    return int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000)


def now_ms():
    return int(time.time() * 1000)


def align(frac):
    """Sleep until the wall clock's fraction of a second is `frac` (between fires)."""
    t = time.time()
    time.sleep((frac - (t % 1.0)) % 1.0)


def schedule_of(srv, workflow, name=None):
    r = srv.get("/v1/schedules")
    assert r.status == 200, r
    for s in r.json["items"]:
        if s["workflow"] == workflow and (name is None or s["name"] == name):
            return s
    raise AssertionError(f"no schedule of '{workflow}' in {json.dumps(r.json, indent=1)}")


def wait_schedule(srv, workflow, timeout=5):
    end = time.monotonic() + timeout
    while True:
        try:
            return schedule_of(srv, workflow)
        except AssertionError:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def wait_until(cond, timeout, what):
    """Poll `cond` until it returns a true value (returned) or `timeout` seconds pass."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def executions(srv, workflow):
    r = srv.get(f"/v1/executions?workflow={workflow}&limit=1000")
    assert r.status == 200, r
    return r.json["items"]


def marker_lines(path):
    try:
        return [l for l in path.read_text().splitlines() if l.strip()]
    except FileNotFoundError:
        return []


def marker_wf(name, marker, **kw):
    """A workflow whose one task appends $ORCH_SCHEDULED_FOR to `marker`."""
    return wf(name, [sh("mark", f'echo "$ORCH_SCHEDULED_FOR $ORCH_SCHEDULE" >> {marker}')], **kw)


def assert_unique(items, what):
    seen = [e["scheduledFor"] for e in items]
    assert len(seen) == len(set(seen)), f"{what}: a due time fired twice: {sorted(seen)}"


# --------------------------------------------------------------------------- firing

def test_every_second_fires_pause_resume(server, tmp_path):
    marker = tmp_path / "tick.marks"
    server.apply(marker_wf("tick", marker, schedules=[{"every": "1s"}]))
    t0 = now_ms()
    s = wait_schedule(server, "tick")
    assert s["every"] == "1s" and s["cron"] is None and s["timezone"] == "UTC"
    assert s["enabled"] is True and s["paused"] is False and s["catchup"] == "latest"
    assert s["overlap"] == "skip" and s["dst"] == {"skipped": "shift", "repeated": "first"}
    # Two reads agree (but for the fire times, which a second may move).
    moving = ("nextFireAt", "lastFireAt")
    r1, r2 = (server.get(f"/v1/schedules/{s['id']}").json for _ in range(2))
    assert {k: v for k, v in r1.items() if k not in moving} == \
        {k: v for k, v in r2.items() if k not in moving}
    ex = wait_until(lambda: len(executions(server, "tick")) >= 3 and executions(server, "tick"),
                    30, "three fires")
    # No more than one per second since the schedule was registered.
    assert len(ex) <= (now_ms() - t0) // 1000 + 2, [e["scheduledFor"] for e in ex]
    assert_unique(ex, "tick")
    for e in ex:
        assert e["scheduleId"] == s["id"]
        sf = iso_ms(e["scheduledFor"])
        assert sf % 1000 == 0 and sf >= t0 - 1000, e
        # Fired at its due time (and not before it), within the scheduler's slack.
        assert 0 <= iso_ms(e["createdAt"]) - sf < 1500, e
    # The detail has them too.
    d = server.execution(ex[0]["id"])
    assert d["scheduleId"] == s["id"] and d["scheduledFor"] == ex[0]["scheduledFor"]
    # The task saw ORCH_SCHEDULED_FOR (ISO 8601 with the zone's offset) and ORCH_SCHEDULE.
    for e in ex:
        server.wait_exec(e["id"])
    lines = marker_lines(marker)
    marks = [l.split()[0] for l in lines]
    assert len(marks) == len(set(marks)), lines
    want = {iso_ms(e["scheduledFor"]) for e in ex}
    assert {iso_ms(m) for m in marks} == want, (lines, want)
    assert all(m.endswith("+00:00") for m in marks), lines
    assert all(len(l.split()) == 2 and l.split()[1] for l in lines), lines

    # The fires list shows them, newest first.
    r = server.get(f"/v1/schedules/{s['id']}/fires?limit=100")
    assert r.status == 200, r
    fired = [f for f in r.json["items"] if f["status"] == "fired"]
    assert {f["executionId"] for f in fired} >= {e["id"] for e in ex}
    sfs = [iso_ms(f["scheduledFor"]) for f in r.json["items"]]
    assert sfs == sorted(sfs, reverse=True)
    assert server.get(f"/v1/schedules/{s['id']}/fires?limit=0").status == 400

    # Pause: no more fires.
    r = server.post(f"/v1/schedules/{s['id']}/pause")
    assert r.status == 200 and r.json["paused"] is True, r
    paused_t = now_ms()
    # No due time after the pause fires (one due before it may still be fired late).
    time.sleep(2.2)
    late = [e["scheduledFor"] for e in executions(server, "tick")
            if iso_ms(e["scheduledFor"]) > paused_t]
    assert not late, f"a paused schedule fired: {late}"
    assert server.get(f"/v1/schedules/{s['id']}").json["paused"] is True
    n = len(executions(server, "tick"))
    # Resume: it fires again.
    r = server.post(f"/v1/schedules/{s['id']}/resume")
    assert r.status == 200 and r.json["paused"] is False, r
    after = wait_until(lambda: len(executions(server, "tick")) > n and executions(server, "tick"),
                       30, "a fire after the resume")
    assert_unique(after, "tick")

    # Health of the scheduler, while it has work.
    r = server.get("/v1/health/scheduler", key=None)
    h = r.json
    assert r.status == 200 and h["status"] == "ok" and h["running"] is True, r
    assert h["activeSchedules"] >= 1 and h["fires"] >= len(after)
    assert now_ms() - iso_ms(h["lastTickAt"]) < 5000
    assert h["lastFireAt"] and h["lastFireLagMs"] >= 0
    assert h["nextDue"] and iso_ms(h["nextDue"]["at"]) > now_ms() - 2000
    assert h["message"] is None
    c = server.get("/v1/health").json["components"]["scheduler"]
    assert c["status"] == "ok" and c["running"] is True and c["activeSchedules"] >= 1

    # Deleting the workflow stops its schedule.
    assert server.delete("/v1/workflows/tick").status == 204
    deleted_t = now_ms()
    time.sleep(1.5)
    late = [e["scheduledFor"] for e in executions(server, "tick")
            if iso_ms(e["scheduledFor"]) > deleted_t]
    assert not late, f"the schedule of a deleted workflow fired: {late}"
    assert server.get(f"/v1/schedules/{s['id']}").status == 404


def test_overlap_skip(server, tmp_path):
    server.apply(wf("slow", [sh("nap", ["sleep", "2.5"])],
                    schedules=[{"name": "often", "every": "1s", "overlap": "skip"}]))
    s = wait_schedule(server, "slow")
    assert s["name"] == "often" and s["overlap"] == "skip"
    def some_skipped():
        f = server.get(f"/v1/schedules/{s['id']}/fires?limit=100").json["items"]
        return len([x for x in f if x["status"] == "skipped"]) >= 2 and f

    wait_until(some_skipped, 30, "two skipped fires")
    assert server.post(f"/v1/schedules/{s['id']}/pause").status == 200
    ex = executions(server, "slow")
    for e in ex:
        server.wait_exec(e["id"])
    fires = server.get(f"/v1/schedules/{s['id']}/fires?limit=100").json["items"]
    skipped = [f for f in fires if f["status"] == "skipped"]
    fired = [f for f in fires if f["status"] == "fired"]
    assert fired and skipped, json.dumps(fires, indent=1)
    assert all("still running" in f["reason"] and f["executionId"] is None
               for f in skipped), json.dumps(fires, indent=1)
    ex = [server.execution(e["id"]) for e in executions(server, "slow")]
    assert {e["id"] for e in ex} == {f["executionId"] for f in fired}, json.dumps(fires, indent=1)
    # Never two at once: each one started after the previous one had ended.
    ex.sort(key=lambda e: iso_ms(e["startedAt"]))
    for a, b in zip(ex, ex[1:]):
        assert iso_ms(b["startedAt"]) >= iso_ms(a["finishedAt"]), (a["id"], b["id"])
    assert_unique(fires, "slow fires")
    server.delete("/v1/workflows/slow")


# --------------------------------------------------------------------------- crash

def test_kill9_restart_no_double_fire_and_catchup(stopped_server, tmp_path):
    srv = stopped_server
    latest, none = tmp_path / "latest.marks", tmp_path / "none.marks"
    srv.start()
    srv.apply(marker_wf("cu-latest", latest, schedules=[{"every": "1s", "catchup": "latest"}]))
    srv.apply(marker_wf("cu-none", none, schedules=[{"every": "1s", "catchup": "none"}]))
    wait_schedule(srv, "cu-latest")
    wait_schedule(srv, "cu-none")
    wait_until(lambda: executions(srv, "cu-latest") and executions(srv, "cu-none"), 30,
               "a fire of each before the kill")
    align(0.4)
    srv.kill()
    kill_t = now_ms()
    time.sleep(3.0)
    restart_t = now_ms()  # at x.4: the newest missed due time is x (or later if the start is slow)
    srv.start()
    started_t = now_ms()  # the scheduler started between restart_t and started_t
    try:
        for name in ("cu-latest", "cu-none"):
            wait_until(lambda: any(iso_ms(e["scheduledFor"]) > started_t + 1000
                                   for e in executions(srv, name)), 30, f"{name} to fire again")
        log = srv.log()
        for name, marker, catchups in (("cu-latest", latest, 1), ("cu-none", none, 0)):
            ex = executions(srv, name)
            for e in ex:
                srv.wait_exec(e["id"])
            assert_unique(ex, name)
            marks = [l.split()[0] for l in marker_lines(marker)]
            assert len(marks) == len(set(marks)), f"{name}: a due time ran twice: {marks}"
            sf = sorted(iso_ms(e["scheduledFor"]) for e in ex)
            # After the kill: the catch-up (latest: the newest missed due time, none: nothing),
            # then every live due time, one per second without a gap.
            after = [t for t in sf if t > kill_t]
            assert after == list(range(after[0], after[-1] + 1, 1000)), (name, kill_t, sf)
            assert after[0] >= restart_t // 1000 * 1000, (name, kill_t, restart_t, sf)
            if catchups:  # the newest missed due time, due before the scheduler started
                assert after[0] <= started_t, (name, restart_t, started_t, sf)
            else:
                assert after[0] > restart_t, (name, restart_t, sf)
            assert re.search(rf"Schedule '[^']+' of '{name}' missed \d+ fire times? while orch was "
                             rf"down \(catchup=\w+\): {catchups} will run", log), log[-3000:]
            # Fired before the kill and after the restart.
            assert any(t < kill_t for t in sf) and any(t > restart_t for t in sf), (name, sf)
    finally:
        srv.post("/v1/schedules/" + schedule_of(srv, "cu-latest")["id"] + "/pause")
        srv.post("/v1/schedules/" + schedule_of(srv, "cu-none")["id"] + "/pause")
        code = srv.stop()
    assert code == 0, srv.log()[-3000:]
    srv.assert_log_clean()


# --------------------------------------------------------------------------- backfill

def test_backfill_cron_window_twice(server):
    server.apply(wf("minutely", [{"name": "n", "type": "noop"}],
                    schedules=[{"name": "m", "cron": "*/1 * * * *", "overlap": "allow",
                                "catchup": "none"}]))
    s = wait_schedule(server, "minutely")
    assert s["cron"] == "*/1 * * * *" and s["every"] is None
    until = now_ms() // 60000 * 60000 - 60000
    frm = until - 10 * 60000
    q = f"from={frm}&until={until}"
    prev = server.get(f"/v1/schedules/{s['id']}/preview?{q}")
    assert prev.status == 200, prev
    want = [frm + 60000 * i for i in range(1, 11)]
    assert [iso_ms(f["scheduledFor"]) for f in prev.json["fires"]] == want
    assert all(f["localTime"].endswith("+00:00") for f in prev.json["fires"])

    r = server.post(f"/v1/schedules/{s['id']}/backfill", {"from": frm, "until": until})
    assert r.status == 202 and r.json == {"scheduleId": s["id"], "dueTimes": 10}, r

    def in_window():
        return [e for e in executions(server, "minutely")
                if frm < iso_ms(e["scheduledFor"]) <= until]

    end = time.monotonic() + 10
    while len(in_window()) < 10 and time.monotonic() < end:
        time.sleep(0.1)
    ex = in_window()
    assert sorted(iso_ms(e["scheduledFor"]) for e in ex) == want
    assert all(e["scheduleId"] == s["id"] for e in ex)
    for e in ex:
        assert server.wait_exec(e["id"])["status"] == "succeeded"

    # Again, with ISO instants: nothing fires twice.
    iso = lambda ms: datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = server.post(f"/v1/schedules/{s['id']}/backfill", {"from": iso(frm), "until": iso(until)})
    assert r.status == 202, r
    time.sleep(0.5)
    ex2 = in_window()
    assert len(ex2) == 10, [e["scheduledFor"] for e in ex2]

    # Bad windows.
    assert server.post(f"/v1/schedules/{s['id']}/backfill", {"from": until, "until": frm}).status == 400
    assert server.post(f"/v1/schedules/{s['id']}/backfill", {"from": "x", "until": until}).status == 400
    assert server.post(f"/v1/schedules/{s['id']}/backfill", {"from": frm}).status == 400
    big = f"from={frm - 2000 * 60000}&until={until}"
    assert server.get(f"/v1/schedules/{s['id']}/preview?{big}").status == 400
    assert server.post(f"/v1/schedules/{s['id']}/backfill",
                       {"from": frm - 2000 * 60000, "until": until}).status == 400
    server.delete("/v1/workflows/minutely")


# --------------------------------------------------------------------------- next, preview, 404

def test_next_matches_the_cli_and_dst_preview(server):
    server.apply(wf("berlin", [{"name": "n", "type": "noop"}],
                    schedules=[{"name": "nightly", "cron": "30 2 * * *",
                                "timezone": "Europe/Berlin", "enabled": False},
                               {"name": "hourly", "every": "1h", "params": {}}]))
    s = wait_schedule(server, "berlin")
    s = schedule_of(server, "berlin", "nightly")
    assert s["enabled"] is False and s["timezone"] == "Europe/Berlin"
    r = server.get(f"/v1/schedules/{s['id']}/next?count=5")
    assert r.status == 200 and len(r.json["times"]) == 5, r
    res = server.orch("schedules", "next", "30 2 * * *", "--tz", "Europe/Berlin", "--count", "5")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == r.json["times"]
    assert len(server.get(f"/v1/schedules/{s['id']}/next").json["times"]) == 10
    assert server.get(f"/v1/schedules/{s['id']}/next?count=1001").status == 400

    # 2026-03-29 02:30 does not exist in Berlin: shifted to 03:00 CEST (the gap's end).
    r = server.get(f"/v1/schedules/{s['id']}/preview?from=2026-03-28T00:00:00Z"
                   f"&until=2026-03-30T12:00:00Z")
    assert r.status == 200, r
    assert [f["localTime"] for f in r.json["fires"]] == [
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    assert [f["scheduledFor"] for f in r.json["fires"]] == [
        "2026-03-28T01:30:00.000Z", "2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]

    h = schedule_of(server, "berlin", "hourly")
    assert h["every"] == "1h" and h["params"] == {}
    times = server.get(f"/v1/schedules/{h['id']}/next?count=2").json["times"]
    t = [iso_ms(x) for x in times]
    assert t[1] - t[0] == 3600000 and t[0] % 3600000 == 0 and 0 < t[0] - now_ms() <= 3600000

    for path in ("/v1/schedules/sch_nosuchschedule0", "/v1/schedules/nope",
                 "/v1/schedules/sch_nosuchschedule0/fires",
                 "/v1/schedules/sch_nosuchschedule0/next"):
        assert server.get(path).status == 404, path
    assert server.post("/v1/schedules/sch_nosuchschedule0/pause").status == 404
    assert server.post("/v1/schedules/sch_nosuchschedule0/backfill",
                       {"from": 0, "until": 1000}).status == 404
    server.delete("/v1/workflows/berlin")


# --------------------------------------------------------------------------- API schedules

def patch(srv, sid, body, **kw):
    return srv.request("PATCH", f"/v1/schedules/{sid}", body=body, **kw)


def fired_by(srv, workflow, sid):
    return [e for e in executions(srv, workflow) if e["scheduleId"] == sid]


def wait_fired(srv, workflow, sid, n, timeout):
    end = time.monotonic() + timeout
    while True:
        got = fired_by(srv, workflow, sid)
        if len(got) >= n or time.monotonic() > end:
            return got
        time.sleep(0.05)


def test_api_schedule_fires_patch_delete(server):
    server.apply(wf("apisched", [{"name": "n", "type": "noop"}]))
    t0 = now_ms()
    r = server.post("/v1/schedules", {"workflow": "apisched", "name": "tick", "every": "1s",
                                      "overlap": "allow"})
    assert r.status == 201, r
    s = r.json
    assert s["source"] == "api" and s["workflow"] == "apisched" and s["name"] == "tick"
    assert s["every"] == "1s" and s["cron"] is None and s["overlap"] == "allow"
    assert s["paused"] is False and s["enabled"] is True and s["lastFireAt"] is None
    assert s["nextFireAt"] and 0 < iso_ms(s["nextFireAt"]) - t0 <= 2000, s
    assert r.headers.get("Location") == f"/v1/schedules/{s['id']}"
    sid = s["id"]
    g = server.get(f"/v1/schedules/{sid}")
    assert g.status == 200 and g.json["source"] == "api" and g.json["every"] == "1s", g
    assert schedule_of(server, "apisched", "tick")["id"] == sid

    # It fires (within about a second, more on a loaded machine).
    ex = wait_fired(server, "apisched", sid, 1, 20.0)
    assert ex, "an API schedule did not fire within 20 s"
    assert all(iso_ms(e["scheduledFor"]) % 1000 == 0 for e in ex)

    # every: 2s -> due times on even seconds only.
    r = patch(server, sid, {"every": "2s"})
    assert r.status == 200 and r.json["every"] == "2s" and r.json["id"] == sid, r
    assert r.json["source"] == "api" and r.json["overlap"] == "allow"  # kept
    t1 = now_ms() + 300  # a fire of the old spec in flight
    later = wait_until(lambda: [e for e in fired_by(server, "apisched", sid)
                                if iso_ms(e["scheduledFor"]) > t1][1:] and
                       [e for e in fired_by(server, "apisched", sid)
                        if iso_ms(e["scheduledFor"]) > t1], 30, "two fires of the new spec")
    assert len(later) <= (now_ms() - t1) // 2000 + 2, [e["scheduledFor"] for e in later]
    assert all(iso_ms(e["scheduledFor"]) % 2000 == 0 for e in later), \
        [e["scheduledFor"] for e in later]
    assert_unique(fired_by(server, "apisched", sid), "apisched")

    # cron instead of every (every: null removes it), in a zone.
    r = patch(server, sid, {"cron": "0 3 * * *", "every": None, "timezone": "Europe/Berlin"})
    assert r.status == 200, r
    c = r.json
    assert c["cron"] == "0 3 * * *" and c["every"] is None and c["timezone"] == "Europe/Berlin"
    times = server.get(f"/v1/schedules/{sid}/next?count=2").json["times"]
    assert all(t[10:19] == "T03:00:00" for t in times), times
    assert c["nextFireAt"] and iso_ms(c["nextFireAt"]) == iso_ms(times[0]), (c, times)

    # Bad changes: nothing changes.
    r = patch(server, sid, {"cron": "61 * * * *"})
    assert r.status == 422 and any(d["path"] == "$.cron" for d in r.error()["details"]), r
    r = patch(server, sid, {"every": "1s"})  # both cron and every
    assert r.status == 422, r
    r = patch(server, sid, {"name": "renamed"})
    assert r.status == 422 and r.error()["details"][0]["path"] == "$.name", r
    assert patch(server, sid, {"paused": "yes"}).status == 422
    assert patch(server, sid, None, raw=b"{").status == 400
    assert server.get(f"/v1/schedules/{sid}").json["cron"] == "0 3 * * *"

    # Pause through PATCH, then back to every 1s and resume.
    r = patch(server, sid, {"paused": True})
    assert r.status == 200 and r.json["paused"] is True, r
    r = patch(server, sid, {"every": "1s", "cron": None, "timezone": None, "paused": False})
    assert r.status == 200 and r.json["every"] == "1s" and r.json["paused"] is False, r
    assert r.json["timezone"] == "UTC"
    n0 = len(fired_by(server, "apisched", sid))
    assert len(wait_fired(server, "apisched", sid, n0 + 1, 20.0)) > n0, "did not fire again"

    # DELETE stops it.
    r = server.delete(f"/v1/schedules/{sid}")
    assert r.status == 204, r
    deleted_t = now_ms()
    time.sleep(1.6)
    late = [e["scheduledFor"] for e in fired_by(server, "apisched", sid)
            if iso_ms(e["scheduledFor"]) > deleted_t]
    assert not late, f"a deleted schedule fired: {late}"
    n = len(fired_by(server, "apisched", sid))
    for path in (f"/v1/schedules/{sid}", f"/v1/schedules/{sid}/fires",
                 f"/v1/schedules/{sid}/next"):
        assert server.get(path).status == 404, path
    assert server.delete(f"/v1/schedules/{sid}").status == 404
    assert patch(server, sid, {"paused": True}).status == 404
    assert all(x["id"] != sid for x in server.get("/v1/schedules").json["items"])
    # Its executions stay.
    assert n >= 1 and server.execution(fired_by(server, "apisched", sid)[0]["id"])
    server.delete("/v1/workflows/apisched")


def test_api_schedule_create_errors(server):
    server.apply(wf("apierr", [{"name": "n", "type": "noop"}],
                    params={"day": {"type": "string"}},
                    schedules=[{"name": "nightly", "cron": "0 4 * * *"}]))
    wait_schedule(server, "apierr")

    r = server.post("/v1/schedules", {"workflow": "no-such-workflow", "every": "1m"})
    assert r.status == 404, r
    r = server.post("/v1/schedules", {"workflow": "apierr", "cron": "not a cron"})
    assert r.status == 422, r
    assert any(d["path"] == "$.cron" for d in r.error()["details"]), r
    r = server.post("/v1/schedules", {"every": "1m"})
    assert r.status == 422 and r.error()["details"][0]["path"] == "$.workflow", r
    r = server.post("/v1/schedules", {"workflow": "apierr", "name": "Bad Name", "every": "1m"})
    assert r.status == 422 and any(d["path"] == "$.name" for d in r.error()["details"]), r
    r = server.post("/v1/schedules", {"workflow": "apierr", "every": "1m", "nope": 1})
    assert r.status == 422, r
    r = server.post("/v1/schedules", {"workflow": "apierr", "every": "1m",
                                      "params": {"nosuch": "x"}})
    assert r.status == 422 and any(d["path"].startswith("$.params")
                                   for d in r.error()["details"]), r
    for raw in (b"{", b"[]", b"", b'{"workflow": "apierr", "workflow": "apierr"}'):
        r = server.request("POST", "/v1/schedules", raw=raw)
        assert r.status == 400, (raw, r)

    # Default name, paused at creation, disabled: no next fire.
    r = server.post("/v1/schedules", {"workflow": "apierr", "every": "1h", "paused": True,
                                      "enabled": False, "params": {"day": "mon"}})
    assert r.status == 201, r
    d = r.json
    assert d["name"].startswith("api-") and d["paused"] is True and d["enabled"] is False, d
    assert d["nextFireAt"] is None and d["params"] == {"day": "mon"}, d

    # 409: the name exists (another API schedule, or one of the definition).
    r = server.post("/v1/schedules", {"workflow": "apierr", "name": "hourly", "every": "1h"})
    assert r.status == 201, r
    r = server.post("/v1/schedules", {"workflow": "apierr", "name": "hourly", "cron": "@daily"})
    assert r.status == 409, r
    r = server.post("/v1/schedules", {"workflow": "apierr", "name": "nightly", "every": "1h"})
    assert r.status == 409, r
    names = sorted(x["name"] for x in server.get("/v1/schedules").json["items"]
                   if x["workflow"] == "apierr")
    assert names == sorted([d["name"], "hourly", "nightly"]), names

    # A read key may not create one.
    ro = server.keys_create("sched-ro", scope="read")["key"]
    r = server.post("/v1/schedules", {"workflow": "apierr", "every": "1h"}, key=ro)
    assert r.status == 403, r
    server.delete("/v1/workflows/apierr")


def test_every_reads_back_as_given(server):
    """`every` reads back in the form it was given: the string as written, or the number
    of seconds (a number given back is never milliseconds, which a POST would read as
    seconds); the round trip GET -> POST keeps the interval."""
    server.apply(wf("everyrt", [{"name": "n", "type": "noop"}],
                    schedules=[{"name": "d-str", "every": "90m", "enabled": False},
                               {"name": "d-num", "every": 3, "enabled": False}]))
    wait_schedule(server, "everyrt")
    by = {s["name"]: s for s in server.get("/v1/schedules").json["items"]
          if s["workflow"] == "everyrt"}
    assert by["d-str"]["every"] == "90m" and by["d-num"]["every"] == 3, by
    for name, every in (("a-str", "3s"), ("a-num", 3), ("a-mix", "1h30m")):
        r = server.post("/v1/schedules", {"workflow": "everyrt", "name": name, "every": every,
                                          "paused": True})
        assert r.status == 201 and r.json["every"] == every, r
        g = server.get(f"/v1/schedules/{r.json['id']}")
        assert g.status == 200 and g.json["every"] == every, g
        # What GET answered, POSTed again, is the same interval.
        r2 = server.post("/v1/schedules", {"workflow": "everyrt", "name": name + "-again",
                                           "every": g.json["every"], "paused": True})
        assert r2.status == 201 and r2.json["every"] == every, r2
        n1 = server.get(f"/v1/schedules/{r.json['id']}/next?count=2").json["times"]
        n2 = server.get(f"/v1/schedules/{r2.json['id']}/next?count=2").json["times"]
        assert n1 == n2, (n1, n2)
    n = server.get(f"/v1/schedules/{by['d-num']['id']}/next?count=2").json["times"]
    assert iso_ms(n[1]) - iso_ms(n[0]) == 3000, n
    server.delete("/v1/workflows/everyrt")


def test_definition_schedule_only_pauses(server):
    server.apply(wf("defsched", [{"name": "n", "type": "noop"}],
                    schedules=[{"name": "daily", "cron": "0 4 * * *"}]))
    s = wait_schedule(server, "defsched")
    assert s["source"] == "definition" and s["name"] == "daily"
    sid = s["id"]
    r = patch(server, sid, {"cron": "0 5 * * *"})
    assert r.status == 409, r
    assert "defined in workflow 'defsched'" in r.error()["message"], r
    assert "change the workflow's definition" in r.error()["message"], r
    assert patch(server, sid, {"paused": True, "every": "1s"}).status == 409
    r = patch(server, sid, {"paused": True})
    assert r.status == 200 and r.json["paused"] is True and r.json["cron"] == "0 4 * * *", r
    assert server.get(f"/v1/schedules/{sid}").json["paused"] is True
    r = patch(server, sid, {"paused": False})
    assert r.status == 200 and r.json["paused"] is False, r
    r = patch(server, sid, {})
    assert r.status == 200 and r.json["source"] == "definition", r
    r = server.delete(f"/v1/schedules/{sid}")
    assert r.status == 409 and "change the workflow's definition" in r.error()["message"], r
    assert server.get(f"/v1/schedules/{sid}").status == 200
    server.delete("/v1/workflows/defsched")


# --------------------------------------------------------------------------- backfill and catch-up queue

def test_backfill_overlap_skip_runs_every_due_time_in_order(server, tmp_path):
    """overlap=skip is for live fires: a backfill queues its due times, each runs once, in order."""
    marker = tmp_path / "daily.marks"
    server.apply(wf("daily", [sh("mark", f'echo "$ORCH_SCHEDULED_FOR" >> {marker}; sleep 0.3')],
                    schedules=[{"name": "d", "cron": "0 0 * * *", "catchup": "none"}]))
    s = wait_schedule(server, "daily")
    assert s["overlap"] == "skip", s
    until = now_ms() // 86400000 * 86400000 - 86400000
    frm = until - 3 * 86400000
    want = [frm + 86400000 * i for i in range(1, 4)]
    r = server.post(f"/v1/schedules/{s['id']}/backfill", {"from": frm, "until": until})
    assert r.status == 202 and r.json["dueTimes"] == 3, r

    def all_done():
        ex = executions(server, "daily")
        return len(ex) == 3 and all(e["status"] == "succeeded" for e in ex) and ex

    ex = wait_until(all_done, 30, "the 3 backfilled due times to run")
    ex.sort(key=lambda e: iso_ms(e["scheduledFor"]))
    assert [iso_ms(e["scheduledFor"]) for e in ex] == want
    # One after another, in due-time order.
    for a, b in zip(ex, ex[1:]):
        assert iso_ms(b["startedAt"]) >= iso_ms(a["finishedAt"]), (a, b)
    assert [iso_ms(l) for l in marker_lines(marker)] == want
    fires = server.get(f"/v1/schedules/{s['id']}/fires?limit=100").json["items"]
    assert sorted(iso_ms(f["scheduledFor"]) for f in fires) == want, fires
    assert all(f["status"] == "fired" for f in fires), json.dumps(fires, indent=1)

    # The same window again: nothing new (the answer comes once the turn is committed).
    r = server.post(f"/v1/schedules/{s['id']}/backfill", {"from": frm, "until": until})
    assert r.status == 202 and r.json["dueTimes"] == 3, r
    assert len(executions(server, "daily")) == 3
    assert len(server.get(f"/v1/schedules/{s['id']}/fires?limit=100").json["items"]) == 3
    server.delete("/v1/workflows/daily")


def test_catchup_all_after_restart_runs_every_missed_due_time(stopped_server):
    srv = stopped_server
    srv.start()
    # Every commit is synced (the default durability), as the first log line says.
    wait_until(lambda: "SQLite synchronous=full)" in srv.log(), 10, "the SQLite durability in the log")
    srv.apply(wf("cu-all", [{"name": "n", "type": "noop"}],
                 schedules=[{"every": "1s", "catchup": "all", "overlap": "skip"}]))
    s = wait_schedule(srv, "cu-all")
    wait_until(lambda: len(executions(srv, "cu-all")) >= 2, 15, "two fires before the stop")
    align(0.4)
    srv.kill()
    kill_t = now_ms()
    time.sleep(3.0)
    restart_t = now_ms()  # at x.4: due times up to x were missed
    srv.start()
    last_missed = restart_t // 1000 * 1000
    try:
        def caught_up():
            sf = sorted(iso_ms(e["scheduledFor"]) for e in executions(srv, "cu-all"))
            return sf if sf and sf[-1] >= last_missed else None

        sf = wait_until(caught_up, 20, "the missed due times to run")
        first = sf[0]
        missed = [t for t in sf if kill_t < t <= last_missed]
        assert len(missed) >= 3, (kill_t, restart_t, sf)
        # Every due time from the first fire to the last missed one ran, once.
        assert [t for t in sf if t <= last_missed] == list(range(first, last_missed + 1, 1000)), sf
        fires = srv.get(f"/v1/schedules/{s['id']}/fires?limit=1000").json["items"]
        skipped = [f for f in fires if f["status"] == "skipped"
                   and iso_ms(f["scheduledFor"]) <= last_missed]
        assert not skipped, json.dumps(skipped, indent=1)
        assert "(catchup=all): %d will run" % len(missed) in srv.log(), srv.log()[-3000:]
        for e in executions(srv, "cu-all"):
            assert srv.wait_exec(e["id"])["status"] == "succeeded"
        assert_unique(executions(srv, "cu-all"), "cu-all")
    finally:
        srv.post(f"/v1/schedules/{s['id']}/pause")
        code = srv.stop()
    assert code == 0, srv.log()[-3000:]
    srv.assert_log_clean()


def fires_of(srv, sid):
    r = srv.get(f"/v1/schedules/{sid}/fires?limit=1000")
    assert r.status == 200, r
    return r.json["items"]


def test_backfill_queue_survives_kill9(stopped_server, tmp_path):
    """A backfill's due times are queued in the store: those still waiting at a kill -9 run
    after the restart, each once, in due-time order."""
    srv = stopped_server
    marker = tmp_path / "bf4.marks"
    srv.start()
    srv.apply(wf("bf4", [sh("mark", f'echo "$ORCH_SCHEDULED_FOR" >> {marker}; sleep 1')],
                 schedules=[{"name": "d", "cron": "0 0 * * *", "catchup": "none"}]))
    s = wait_schedule(srv, "bf4")
    assert s["overlap"] == "skip", s
    until = now_ms() // 86400000 * 86400000 - 86400000
    frm = until - 4 * 86400000
    want = [frm + 86400000 * i for i in range(1, 5)]
    r = srv.post(f"/v1/schedules/{s['id']}/backfill", {"from": frm, "until": until})
    assert r.status == 202 and r.json["dueTimes"] == 4, r
    # Answered after the commit: the first fired, the others wait in the store (one
    # more may have fired meanwhile on a slow machine).
    fires = fires_of(srv, s["id"])
    assert sorted(iso_ms(f["scheduledFor"]) for f in fires) == want, fires
    queued = sorted(iso_ms(f["scheduledFor"]) for f in fires if f["status"] == "queued")
    assert queued == want[4 - len(queued):] and len(queued) >= 2, json.dumps(fires, indent=1)
    assert all(f["reason"] == "backfill" for f in fires), fires
    srv.kill()
    restart_t = now_ms()
    srv.start()
    try:
        def all_done():
            ex = executions(srv, "bf4")
            return len(ex) >= 4 and all(e["status"] not in ("queued", "running")
                                        for e in ex) and ex

        wait_until(all_done, 40, "the 4 backfilled due times to run after the restart")
        ex = sorted(executions(srv, "bf4"), key=lambda e: iso_ms(e["createdAt"]))
        assert_unique(ex, "bf4")
        # Each due time once, created in due-time order; those fired after the restart
        # (at least the ones still queued at the kill but one) ran to the end, one after
        # another.
        assert [iso_ms(e["scheduledFor"]) for e in ex] == want, ex
        after = [e for e in ex if iso_ms(e["createdAt"]) >= restart_t]
        assert len(after) >= len(queued) - 1 >= 1, (restart_t, ex)
        for e in after:
            assert e["status"] == "succeeded", e
        for a, b in zip(after, after[1:]):
            assert iso_ms(b["startedAt"]) >= iso_ms(a["finishedAt"]), (a, b)
        marks = [iso_ms(l) for l in marker_lines(marker)]
        assert marks[-len(after):] == want[-len(after):], marks
        fires = fires_of(srv, s["id"])
        assert all(f["status"] == "fired" for f in fires), json.dumps(fires, indent=1)
        m = re.search(r"(\d+) queued due times? to run", srv.log())
        assert m and int(m.group(1)) >= len(after), srv.log()[-3000:]
        # Nothing is queued twice by a second backfill.
        r = srv.post(f"/v1/schedules/{s['id']}/backfill", {"from": frm, "until": until})
        assert r.status == 202, r
        assert len(executions(srv, "bf4")) == 4
    finally:
        code = srv.stop()
    assert code == 0, srv.log()[-3000:]
    srv.assert_log_clean()


def test_backfill_runs_due_times_a_live_fire_skipped(server, tmp_path):
    """Due times a live fire skipped (overlap=skip) are queued again by a backfill and run."""
    server.apply(wf("skipbf", [sh("s", "sleep 1.3")],
                    schedules=[{"name": "e", "every": "1s", "catchup": "none"}]))
    s = wait_schedule(server, "skipbf")

    def skipped():
        sk = [iso_ms(f["scheduledFor"]) for f in fires_of(server, s["id"])
              if f["status"] == "skipped"]
        return len(sk) >= 2 and sk

    wait_until(skipped, 20, "two skipped live fires")
    assert server.post(f"/v1/schedules/{s['id']}/pause").status == 200
    sk = sorted(skipped())
    frm, until = sk[0] - 1, sk[-1]
    r = server.post(f"/v1/schedules/{s['id']}/backfill", {"from": frm, "until": until})
    assert r.status == 202, r

    def ran():
        ex = executions(server, "skipbf")
        done = {iso_ms(e["scheduledFor"]) for e in ex if e["status"] == "succeeded"}
        return set(sk) <= done and ex

    ex = wait_until(ran, 30, "the skipped due times to run")
    assert_unique(ex, "skipbf")
    fires = {iso_ms(f["scheduledFor"]): f for f in fires_of(server, s["id"])}
    for t in sk:
        assert fires[t]["status"] == "fired" and fires[t]["reason"] == "backfill", fires[t]
    # Once: the window again starts nothing.
    n = len(executions(server, "skipbf"))
    r = server.post(f"/v1/schedules/{s['id']}/backfill", {"from": frm, "until": until})
    assert r.status == 202, r
    assert len(executions(server, "skipbf")) == n
    server.delete("/v1/workflows/skipbf")


def test_cancel_previous_spares_backfilled_runs(server):
    """overlap=cancelPrevious: a live fire cancels live runs, not a backfilled one."""
    server.apply(wf("cpbf", [sh("s", "sleep 2.5")],
                    schedules=[{"name": "c", "every": "1s", "catchup": "none",
                                "overlap": "cancelPrevious"}]))
    s = wait_schedule(server, "cpbf")
    assert server.post(f"/v1/schedules/{s['id']}/pause").status == 200
    t0 = now_ms() // 1000 * 1000 - 60000
    r = server.post(f"/v1/schedules/{s['id']}/backfill", {"from": t0 - 1000, "until": t0})
    assert r.status == 202 and r.json["dueTimes"] == 1, r

    def backfilled():
        for e in executions(server, "cpbf"):
            if iso_ms(e["scheduledFor"]) == t0 and e["status"] == "running":
                return e
        return None

    bf = wait_until(backfilled, 20, "the backfilled run to start")
    assert server.post(f"/v1/schedules/{s['id']}/resume").status == 200
    # Live fires every second of a 2.5 s task: one of them finds a live run still going
    # and cancels it (a slow machine may skip some due times: wait for it, not for a count).
    wait_until(lambda: any(e["status"] == "cancelled" for e in executions(server, "cpbf")
                           if e["id"] != bf["id"]), 30, "a live fire to cancel a live run")
    assert server.post(f"/v1/schedules/{s['id']}/pause").status == 200
    done = server.wait_exec(bf["id"])
    assert done["status"] == "succeeded", done
    live = [e for e in executions(server, "cpbf") if e["id"] != bf["id"]]
    # The live ones did cancel each other (the first live run was started while the
    # backfilled one ran).
    first_live = min(live, key=lambda e: iso_ms(e["createdAt"]))
    assert iso_ms(first_live["createdAt"]) < iso_ms(done["finishedAt"]), (first_live, done)
    assert any(server.wait_exec(e["id"])["status"] == "cancelled" for e in live), live
    server.delete("/v1/workflows/cpbf")
