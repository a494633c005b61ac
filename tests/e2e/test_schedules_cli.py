"""
End-to-end tests of `orch schedules next|validate` and of "schedules" in
`orch validate`: the worked cases of research/cron.md section 5, every error
path, and the --json shapes. Offline commands: no server, no data directory.
"""
import json
from datetime import datetime, timedelta, timezone

import pytest

from conftest import EXIT_INVALID, EXIT_OK, EXIT_USAGE

# research/cron.md section 5: expression, zone, start (UTC, exclusive), and the
# expected next three fires as (UTC instant, local UTC offset), copied from the table.
CASES = [
    ("30 2 * * *", "America/New_York", "2026-03-07T12:00Z",
     [("2026-03-08T07:00", "-04:00"), ("2026-03-09T06:30", "-04:00"), ("2026-03-10T06:30", "-04:00")]),
    ("30 1 * * *", "America/New_York", "2026-10-31T12:00Z",
     [("2026-11-01T05:30", "-04:00"), ("2026-11-02T06:30", "-05:00"), ("2026-11-03T06:30", "-05:00")]),
    ("30 * * * *", "America/New_York", "2026-11-01T04:00Z",
     [("2026-11-01T04:30", "-04:00"), ("2026-11-01T05:30", "-04:00"), ("2026-11-01T06:30", "-05:00")]),
    ("*/20 * * * *", "America/New_York", "2026-03-08T06:30Z",
     [("2026-03-08T06:40", "-05:00"), ("2026-03-08T07:00", "-04:00"), ("2026-03-08T07:20", "-04:00")]),
    ("*/15 1 * * *", "America/New_York", "2026-11-01T05:20Z",
     [("2026-11-01T05:30", "-04:00"), ("2026-11-01T05:45", "-04:00"), ("2026-11-01T06:00", "-05:00")]),
    ("0 */2 * * *", "America/New_York", "2026-11-01T03:30Z",
     [("2026-11-01T04:00", "-04:00"), ("2026-11-01T07:00", "-05:00"), ("2026-11-01T09:00", "-05:00")]),
    ("30 1 * * *", "Europe/London", "2026-03-28T12:00Z",
     [("2026-03-29T01:00", "+01:00"), ("2026-03-30T00:30", "+01:00"), ("2026-03-31T00:30", "+01:00")]),
    ("*/10 * * * *", "Europe/London", "2026-10-25T00:45Z",
     [("2026-10-25T00:50", "+01:00"), ("2026-10-25T01:00", "+00:00"), ("2026-10-25T01:10", "+00:00")]),
    ("0 12 * * 0", "Europe/Berlin", "2022-03-24T11:00Z",
     [("2022-03-27T10:00", "+02:00"), ("2022-04-03T10:00", "+02:00"), ("2022-04-10T10:00", "+02:00")]),
    ("5 4 * * 7", "Europe/Paris", "2026-10-24T00:00Z",
     [("2026-10-25T03:05", "+01:00"), ("2026-11-01T03:05", "+01:00"), ("2026-11-08T03:05", "+01:00")]),
    ("0 0 * * *", "America/Havana", "2026-03-07T12:00Z",
     [("2026-03-08T05:00", "-04:00"), ("2026-03-09T04:00", "-04:00"), ("2026-03-10T04:00", "-04:00")]),
    ("0 * * * *", "Australia/Lord_Howe", "2019-10-05T15:13Z",
     [("2019-10-05T16:00", "+11:00"), ("2019-10-05T17:00", "+11:00"), ("2019-10-05T18:00", "+11:00")]),
    ("15 2 * * *", "Australia/Lord_Howe", "2019-10-05T12:00Z",
     [("2019-10-05T15:30", "+11:00"), ("2019-10-06T15:15", "+11:00"), ("2019-10-07T15:15", "+11:00")]),
    ("30 2 * * 0", "Australia/Sydney", "2026-04-04T00:00Z",
     [("2026-04-04T15:30", "+11:00"), ("2026-04-11T16:30", "+10:00"), ("2026-04-18T16:30", "+10:00")]),
    ("0 12 * * *", "Pacific/Apia", "2011-12-29T00:00Z",
     [("2011-12-29T22:00", "-10:00"), ("2011-12-30T22:00", "+14:00"), ("2011-12-31T22:00", "+14:00")]),
    ("0 9 * * 1-5", "Asia/Kolkata", "2026-01-02T00:00Z",
     [("2026-01-02T03:30", "+05:30"), ("2026-01-05T03:30", "+05:30"), ("2026-01-06T03:30", "+05:30")]),
    ("0 0 1 * MON", "UTC", "2024-01-01T00:00Z",
     [("2024-01-08T00:00", "+00:00"), ("2024-01-15T00:00", "+00:00"), ("2024-01-22T00:00", "+00:00")]),
    ("0 0 */2 * MON", "UTC", "2024-01-01T00:00Z",
     [("2024-01-03T00:00", "+00:00"), ("2024-01-05T00:00", "+00:00"), ("2024-01-07T00:00", "+00:00")]),
    ("0 0 1-7 * */7", "UTC", "2024-01-01T00:00Z",
     [("2024-01-02T00:00", "+00:00"), ("2024-01-03T00:00", "+00:00"), ("2024-01-04T00:00", "+00:00")]),
    ("0 0 29 2 *", "UTC", "2025-01-01T00:00Z",
     [("2028-02-29T00:00", "+00:00"), ("2032-02-29T00:00", "+00:00"), ("2036-02-29T00:00", "+00:00")]),
    ("0 0 31 * *", "UTC", "2026-01-31T00:00Z",
     [("2026-03-31T00:00", "+00:00"), ("2026-05-31T00:00", "+00:00"), ("2026-07-31T00:00", "+00:00")]),
    ("59 23 31 12 *", "UTC", "2026-12-31T23:59Z",
     [("2027-12-31T23:59", "+00:00"), ("2028-12-31T23:59", "+00:00"), ("2029-12-31T23:59", "+00:00")]),
]

# Rows whose first fire is a fixed time shifted out of a DST gap: the note orch adds.
SHIFTED = {
    ("30 2 * * *", "America/New_York"): "(shifted: 02:30 does not exist on 2026-03-08)",
    ("30 1 * * *", "Europe/London"): "(shifted: 01:30 does not exist on 2026-03-29)",
    ("0 0 * * *", "America/Havana"): "(shifted: 00:00 does not exist on 2026-03-08)",
    ("15 2 * * *", "Australia/Lord_Howe"): "(shifted: 02:15 does not exist on 2019-10-06)",
}


def local_iso(utc_minute, offset):
    """'2026-03-08T07:00' UTC with offset '-04:00' -> '2026-03-08T03:00:00-04:00'."""
    sign = -1 if offset[0] == "-" else 1
    h, m = int(offset[1:3]), int(offset[4:6])
    delta = timedelta(hours=h, minutes=m) * sign
    t = datetime.strptime(utc_minute, "%Y-%m-%dT%H:%M").replace(tzinfo=timezone.utc)
    local = t.astimezone(timezone(delta))
    return local.strftime("%Y-%m-%dT%H:%M:%S") + offset


def iso_from(start):
    """The table's '2026-03-07T12:00Z' as an RFC 3339 instant."""
    return start[:-1] + ":00Z"


def test_case_count():
    assert len(CASES) == 22


@pytest.mark.parametrize("expr,zone,start,expected", CASES,
                         ids=[f"{c[0]}|{c[1]}|{c[2]}" for c in CASES])
def test_next_worked_cases(orch, expr, zone, start, expected):
    res = orch.run("schedules", "next", expr, "--tz", zone, "--from", iso_from(start),
                   "--count", "3")
    assert res.returncode == EXIT_OK, res.stderr
    lines = res.stdout.splitlines()
    assert [ln.split("  ")[0] for ln in lines] == [local_iso(u, o) for u, o in expected]
    note = SHIFTED.get((expr, zone))
    if note:
        assert lines[0].endswith("  " + note), lines[0]
        assert all("shifted" not in ln for ln in lines[1:])
    else:
        assert all("shifted" not in ln for ln in lines), lines


@pytest.mark.parametrize("expr,zone,start,expected", CASES[:3], ids=["gap", "overlap", "cadence"])
def test_next_json(orch, expr, zone, start, expected):
    res, doc = orch.run_json("schedules", "next", expr, "--tz", zone, "--from", iso_from(start),
                             "--count", "3")
    assert res.returncode == EXIT_OK, res.stderr
    assert doc["expression"] == expr
    assert doc["timezone"] == zone
    assert doc["times"] == [local_iso(u, o) for u, o in expected]
    assert doc["kind"] in ("cadence", "fixed-time")


def test_next_default_count_and_from(orch):
    res = orch.run("schedules", "next", "*/5 * * * *")
    assert res.returncode == EXIT_OK, res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == 10
    times = [datetime.fromisoformat(x) for x in lines]
    now = datetime.now(timezone.utc)
    assert times[0] > now - timedelta(seconds=5)
    assert times[0] <= now + timedelta(minutes=5, seconds=5)
    assert all(b - a == timedelta(minutes=5) for a, b in zip(times, times[1:]))


def test_next_from_forms(orch):
    # An offset, a local date in --tz, a local date-time in --tz: all the same start.
    base = ["schedules", "next", "0 * * * *", "--tz", "Europe/Berlin", "--count", "2"]
    outs = []
    for f in ("2026-06-01T00:00:00+02:00", "2026-05-31T22:00:00Z", "2026-06-01",
              "2026-06-01T00:00", "2026-06-01T00:00:00.999+02:00"):
        res = orch.run(*base, "--from", f)
        assert res.returncode == EXIT_OK, (f, res.stderr)
        outs.append(res.stdout)
    assert outs[0] == "2026-06-01T01:00:00+02:00\n2026-06-01T02:00:00+02:00\n"
    assert all(o == outs[0] for o in outs)


def test_next_count_max(orch):
    res = orch.run("schedules", "next", "* * * * *", "--from", "2026-01-01T00:00:00Z",
                   "--count", "1000")
    assert res.returncode == EXIT_OK
    lines = res.stdout.splitlines()
    assert len(lines) == 1000
    assert lines[-1] == "2026-01-01T16:40:00+00:00"


def test_next_dst_options(orch):
    args = ["schedules", "next", "30 2 * * *", "--tz", "America/New_York",
            "--from", "2026-03-07T12:00:00Z", "--count", "2"]
    res = orch.run(*args, "--dst-skipped", "skip")
    assert res.returncode == EXIT_OK, res.stderr
    assert res.stdout == "2026-03-09T02:30:00-04:00\n2026-03-10T02:30:00-04:00\n"
    args = ["schedules", "next", "30 1 * * *", "--tz", "America/New_York",
            "--from", "2026-10-31T12:00:00Z", "--count", "2"]
    res = orch.run(*args, "--dst-repeated", "both")
    assert res.stdout == "2026-11-01T01:30:00-04:00\n2026-11-01T01:30:00-05:00\n"
    res = orch.run(*args, "--dst-repeated", "last")
    assert res.stdout == "2026-11-01T01:30:00-05:00\n2026-11-02T01:30:00-05:00\n"
    for opt, val in (("--dst-skipped", "later"), ("--dst-repeated", "twice")):
        res = orch.run(*args, opt, val)
        assert res.returncode == EXIT_USAGE
        assert "allowed" in res.stderr


def test_next_every(orch):
    res, doc = orch.run_json("schedules", "next", "--every", "30s", "--from",
                             "2026-01-01T00:00:10Z", "--count", "3", "--tz", "Asia/Kolkata")
    assert res.returncode == EXIT_OK, res.stderr
    assert doc == {"expression": None, "every": "30s", "timezone": "Asia/Kolkata",
                   "kind": "interval",
                   "times": ["2026-01-01T05:30:30+05:30", "2026-01-01T05:31:00+05:30",
                             "2026-01-01T05:31:30+05:30"]}
    for bad in ("0s", "500ms", "1500ms", "soon"):
        res = orch.run("schedules", "next", "--every", bad)
        assert res.returncode == EXIT_USAGE, bad
        assert "invalid --every" in res.stderr
    res = orch.run("schedules", "next", "* * * * *", "--every", "1m")
    assert res.returncode == EXIT_USAGE


@pytest.mark.parametrize("expr,message", [
    ("0 2 * * 8", "day-of-week: 8 is out of range 0-7"),
    ("61 * * * *", "minute: 61 is out of range 0-59"),
    ("0 0 30 2 *", "never fires: day-of-month 30 does not occur in month 2"),
    ("0 0 2 * * *", "expected 5 fields, got 6 (seconds are not supported; use an 'every' schedule)"),
    ("@reboot", "@reboot is not supported"),
], ids=["bad-field", "minute", "never-fires", "six-fields", "reboot"])
def test_next_bad_expression(orch, expr, message):
    for cmd in ("next", "validate"):
        res = orch.run("schedules", cmd, expr)
        assert res.returncode == EXIT_INVALID, (cmd, res.stdout, res.stderr)
        assert message in res.stderr
        assert res.stdout == ""


def test_next_unknown_zone(orch):
    for cmd in ("next", "validate"):
        res = orch.run("schedules", cmd, "0 2 * * *", "--tz", "Europe/Berln")
        assert res.returncode == EXIT_INVALID
        assert "unknown time zone 'Europe/Berln'" in res.stderr
    res = orch.run("schedules", "next", "0 2 * * *", "--tz", "../../etc/passwd")
    assert res.returncode == EXIT_INVALID
    assert "invalid time zone name" in res.stderr


@pytest.mark.parametrize("value", ["junk", "2026-13-01", "2026-02-30", "2026-01-01T25:00",
                                   "2026-01-01T10:00:00+99:00", ""])
def test_next_bad_from(orch, value):
    res = orch.run("schedules", "next", "0 2 * * *", "--from", value)
    assert res.returncode == EXIT_USAGE
    assert "invalid --from" in res.stderr


@pytest.mark.parametrize("value", ["0", "1001", "-1", "ten", "5x", ""])
def test_next_bad_count(orch, value):
    res = orch.run("schedules", "next", "0 2 * * *", "--count", value)
    assert res.returncode == EXIT_USAGE
    assert "invalid --count" in res.stderr


def test_usage_errors(orch):
    for args in (["schedules"], ["schedules", "nope"], ["schedules", "next"],
                 ["schedules", "next", "0", "2", "*", "*", "*"], ["schedules", "validate"],
                 ["schedules", "next", "* * * * *", "--bogus"]):
        res = orch.run(*args)
        assert res.returncode == EXIT_USAGE, args
        assert res.stderr.startswith("orch: ")
    res = orch.run("schedules", "next", "--help")
    assert res.returncode == EXIT_OK
    assert "--dst-repeated" in res.stdout
    res = orch.run("--help", data_dir=False)
    assert "schedules next" in res.stdout


def test_validate_expression(orch):
    res = orch.run("schedules", "validate", "30 2 * * *", "--tz", "Europe/Berlin")
    assert res.returncode == EXIT_OK
    assert res.stdout.startswith("valid: '30 2 * * *' in Europe/Berlin is a fixed-time schedule")
    res = orch.run("schedules", "validate", "*/15 1 * * *")
    assert res.returncode == EXIT_OK
    assert "cadence schedule" in res.stdout
    res, doc = orch.run_json("schedules", "validate", "@hourly", "--tz", "UTC")
    assert doc == {"valid": True, "expression": "@hourly", "timezone": "UTC", "kind": "cadence"}
    res, doc = orch.run_json("schedules", "validate", "0 2 * * 8")
    assert res.returncode == EXIT_INVALID
    assert doc["valid"] is False
    assert doc["error"] == "day-of-week: 8 is out of range 0-7"


# ---- schedules in workflow definitions, through `orch validate`

def wf(schedules, params=None):
    d = {"name": "w", "tasks": [{"name": "a", "type": "noop"}], "schedules": schedules}
    if params is not None:
        d["params"] = params
    return d


def test_validate_good_schedules(orch):
    path = orch.workflow(wf([
        {"name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin",
         "params": {"date": "today"}, "enabled": True,
         "dst": {"skipped": "shift", "repeated": "first"}, "catchup": "latest",
         "maxCatchup": 100, "overlap": "skip"},
        {"every": "30s", "params": {"date": "x"}, "overlap": "bufferAll", "catchup": "all"},
    ], params={"date": {"type": "string", "required": True}}))
    res = orch.run("validate", path)
    assert res.returncode == EXIT_OK, res.stderr
    res, doc = orch.run_json("validate", path)
    assert doc["valid"] is True and doc["problems"] == []


def test_validate_bad_schedules(orch):
    path = orch.workflow(wf([
        {"cron": "0 2 * * 8"},
        {"cron": "0 2 * * *", "timezone": "Europe/Berln"},
        {"cron": "0 0 30 2 *", "overlap": "queue"},
        {"cron": "* * * * * *", "cathcup": "all"},
        {"every": "30s", "params": {"dat": "x", "date": 1}},
        {"name": "dup", "every": "1m"},
        {"name": "dup", "cron": "0 * * * *", "every": "1m", "dst": {"skipped": "later"}},
        {"maxCatchup": 0},
    ], params={"date": {"type": "string", "required": True}}))
    res, doc = orch.run_json("validate", path)
    assert res.returncode == EXIT_INVALID
    got = {(p["path"], p["message"]) for p in doc["problems"]}
    required = ("missing required param 'date' (the workflow requires it and a schedule has "
                "no caller to give it)")
    want = {
        ("$.schedules[0].cron", "day-of-week: 8 is out of range 0-7"),
        ("$.schedules[1].timezone",
         "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)"),
        ("$.schedules[2].cron", "never fires: day-of-month 30 does not occur in month 2"),
        ("$.schedules[2].overlap",
         "invalid overlap 'queue' (allowed: skip, bufferOne, bufferAll, cancelPrevious, allow)"),
        ("$.schedules[3].cron",
         "expected 5 fields, got 6 (seconds are not supported; use an 'every' schedule)"),
        ("$.schedules[3].cathcup", "unknown field 'cathcup' (did you mean 'catchup'?)"),
        ("$.schedules[4].params.dat", "unknown param 'dat' (did you mean 'date'?)"),
        ("$.schedules[4].params.date", "param 'date' must be a string, got integer"),
        ("$.schedules[6].every", "'cron' and 'every' cannot both be given (use one)"),
        ("$.schedules[6].dst.skipped", "invalid dst.skipped 'later' (allowed: shift, skip)"),
        ("$.schedules[6].name", "duplicate schedule name 'dup' (also the name of schedules[5])"),
        ("$.schedules[7]", "missing 'cron' or 'every' (exactly one is required)"),
        ("$.schedules[7].maxCatchup", "'maxCatchup' must be between 1 and 10000, got 0"),
    }
    for i in (0, 1, 2, 3, 5, 6, 7):
        want.add((f"$.schedules[{i}]", required))
    assert got == want, sorted(got ^ want)
    # The text form: one line per problem, path first.
    res = orch.run("validate", path)
    assert res.returncode == EXIT_INVALID
    assert f"{len(want)} problems" in res.stderr
    assert "  $.schedules[1].timezone: unknown time zone 'Europe/Berln'" in res.stderr


def test_validate_schedules_shape(orch):
    res, doc = orch.run_json("validate", orch.workflow(wf({"cron": "0 2 * * *"})))
    assert res.returncode == EXIT_INVALID
    assert doc["problems"] == [{"path": "$.schedules",
                                "message": "'schedules' must be an array of schedules, got object"}]
