"""The project's own reference for cron next-fire times: a plain matcher.

It walks local wall-clock minutes of the schedule's zone in order, keeps those whose
fields match, and maps each to UTC instants with Python's zoneinfo, following the rule
set of docs/internals/scheduler.md:

- a field is unrestricted only when it is exactly "*"; when day-of-month and day-of-week
  are both restricted a day matches when either does;
- a *cadence* schedule (minute or hour field starting with "*") fires at every real
  instant whose wall time matches: nothing in a gap, both passes of an overlap;
- a *fixed-time* schedule maps each matching wall time to one instant: the only one, the
  earlier one of an overlap, or for a wall time inside a gap of at most 3 hours the first
  instant after the gap (several of them coalesce into that one); a longer gap drops it;
- next(t) is the smallest fire instant strictly after t.

Nothing here comes from cron.c: it is written from the rules, so it can disagree with
the C code. It is slow (Python, a zoneinfo conversion per matching minute near the
start) but fast enough for a few thousand cases on two processes.
"""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DOWS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MAX_DAYS = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
GAP_LIMIT = 3 * 3600
# An instant is within [wall - 15h, wall + 15h] of its wall time in every zone there is.
SLACK = timedelta(hours=15)
UTC = timezone.utc


class NeverFires(ValueError):
    pass


def _value(tok, names, base):
    if tok[:1].isalpha():
        return names.index(tok.lower()) + base
    return int(tok)


def _field(text, lo, hi, names=None, base=0):
    out = set()
    for item in text.split(","):
        step = 1
        has_step = "/" in item
        if has_step:
            item, s = item.split("/")
            step = int(s)
        if item == "*":
            a, b = lo, hi
        elif "-" in item:
            a, b = (_value(x, names, base) for x in item.split("-"))
        else:
            a = _value(item, names, base)
            b = hi if has_step else a
        if a > b or a < lo or b > hi or step < 1:
            raise ValueError(f"bad field {text!r}")
        out.update(range(a, b + 1, step))
    return out


def parse(expr, check=True):
    expr = MACROS.get(expr.strip().lower(), expr)
    f = expr.split()
    if len(f) != 5:
        raise ValueError("5 fields expected")
    dows = _field(f[4], 0, 7, DOWS, 0)
    if 7 in dows:
        dows.discard(7)
        dows.add(0)
    spec = {
        "minutes": sorted(_field(f[0], 0, 59)),
        "hours": sorted(_field(f[1], 0, 23)),
        "doms": _field(f[2], 1, 31),
        "months": _field(f[3], 1, 12, MONTHS, 1),
        "dows": dows,
        "dom_star": f[2] == "*",
        "dow_star": f[4] == "*",
        "cadence": f[0].startswith("*") or f[1].startswith("*"),
    }
    if check and (spec["dow_star"] or spec["dom_star"]):
        if not spec["dom_star"] and not any(d <= MAX_DAYS[m] for d in spec["doms"]
                                            for m in spec["months"]):
            raise NeverFires("never fires")
    return spec


def is_cadence(expr):
    return parse(expr, check=False)["cadence"]


def _day_matches(spec, d):
    if d.month not in spec["months"]:
        return False
    dom_ok = d.day in spec["doms"]
    dow_ok = (d.weekday() + 1) % 7 in spec["dows"]
    if spec["dom_star"] and spec["dow_star"]:
        return True
    if spec["dom_star"]:
        return dow_ok
    if spec["dow_star"]:
        return dom_ok
    return dom_ok or dow_ok


def _wall(t, zone):
    return datetime.fromtimestamp(t, zone).replace(tzinfo=None)


def _offset(t, zone):
    return datetime.fromtimestamp(t, zone).utcoffset()


def _instants(w, zone, cadence):
    """UTC seconds at which wall time w fires."""
    ta = int(w.replace(tzinfo=zone, fold=0).timestamp())
    tb = int(w.replace(tzinfo=zone, fold=1).timestamp())
    real = sorted({t for t in (ta, tb) if _wall(t, zone) == w})
    if cadence:
        return real
    if real:
        return real[:1]
    lo, hi = min(ta, tb), max(ta, tb)  # w is in a gap: the transition lies in (lo, hi]
    if hi - lo > GAP_LIMIT:
        return []
    before = _offset(lo, zone)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(mid, zone) == before:
            lo = mid
        else:
            hi = mid
    return [hi]


def rule_next(expr, zone_name, start, n=5, max_years=30):
    """The next n fire instants (aware UTC datetimes) strictly after start."""
    spec = parse(expr)
    zone = ZoneInfo(zone_name)
    s = int(start.timestamp())
    s_naive = datetime.fromtimestamp(s, UTC).replace(tzinfo=None)
    found = set()
    day = (s_naive - SLACK).date()
    end = day + timedelta(days=366 * max_years)
    while day <= end:
        if _day_matches(spec, day):
            for h in spec["hours"]:
                if datetime(day.year, day.month, day.day, h, 59) + SLACK < s_naive:
                    continue
                for m in spec["minutes"]:
                    w = datetime(day.year, day.month, day.day, h, m)
                    if len(found) >= n:
                        last = sorted(found)[n - 1]
                        if w - SLACK > datetime.fromtimestamp(last, UTC).replace(tzinfo=None):
                            return [datetime.fromtimestamp(t, UTC) for t in sorted(found)[:n]]
                    for t in _instants(w, zone, spec["cadence"]):
                        if t > s:
                            found.add(t)
        day += timedelta(days=1)
    if len(found) >= n or found:
        return [datetime.fromtimestamp(t, UTC) for t in sorted(found)[:n]]
    raise NeverFires("never fires")
