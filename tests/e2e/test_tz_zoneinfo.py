"""Differential test of our TZif reader (src/sched/tz.c) against Python's zoneinfo.

For every zone and link named in /usr/share/zoneinfo/tzdata.zi, from 1970 to 2100:
  * the transitions our reader reports must be exactly those Python finds by
    sampling every zone once a day and bisecting every change it sees, and
    our offset function must agree with Python's at every daily sample;
  * at every transition T (either side's), the UTC offsets at T-1 and T agree;
  * local -> UTC: at the edges and the middle of every gap and overlap, and
    just outside them, the set of instants with that wall time agrees
    (Python: both folds with a round-trip check), and inside gaps the gap end
    and length agree.

Both sides read the same files (Debian's tzdata), so this tests the readers, not
the data. The probe (tests/tools/sched_probe.c) answers all queries of all zones in
one process; its path comes from ORCH_SCHED_PROBE, set by tests/sched.cmake.
Run under /usr/bin/python3 (Debian's zoneinfo).
"""
import multiprocessing
import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

PROBE = os.environ.get("ORCH_SCHED_PROBE")
ZONEINFO = "/usr/share/zoneinfo"
TZDATA_ZI = os.path.join(ZONEINFO, "tzdata.zi")
START = 0                 # 1970-01-01T00:00Z
END = 4102444800          # 2100-01-01T00:00Z
STEP = 86400              # sampling step for finding Python's transitions
EPOCH = datetime(1970, 1, 1)

if not PROBE or not os.access(PROBE, os.X_OK):
    pytest.skip("ORCH_SCHED_PROBE is not set to the sched_probe binary (see tests/sched.cmake)",
                allow_module_level=True)
if not os.path.exists(TZDATA_ZI):
    pytest.skip("tzdata is not installed", allow_module_level=True)


def zone_names():
    names = set()
    with open(TZDATA_ZI) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "Z":
                names.add(parts[1])
            elif len(parts) >= 3 and parts[0] == "L":
                names.add(parts[2])
    return sorted(names)


def run_probe(lines):
    out = subprocess.run([PROBE], input="\n".join(lines) + "\n", capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert len(out) >= len(lines), "probe answered fewer lines than asked"
    return out[:len(lines)]


def py_offset(z, t):
    return int(datetime.fromtimestamp(t, z).utcoffset().total_seconds())


def py_instants(z, wall):
    """All instants whose wall time in z is `wall` (seconds), via both folds."""
    naive = EPOCH + timedelta(seconds=wall)
    out = set()
    for fold in (0, 1):
        u = int(naive.replace(tzinfo=z, fold=fold).timestamp())
        if datetime.fromtimestamp(u, z).replace(tzinfo=None) == naive:
            out.add(u)
    return sorted(out)


def py_zone_scan(args):
    """Python's side for one zone: transitions in (START, END] and sample mismatches."""
    name, probe_start_off, probe_trans = args
    z = ZoneInfo(name)
    # Probe's offset function, piecewise constant.
    bounds = [t for t, _, _ in probe_trans]
    offs = [a for _, _, a in probe_trans]
    mismatches = []
    found = []
    idx = 0
    cur = probe_start_off
    prev_t, prev_o = START, py_offset(z, START)
    if prev_o != probe_start_off:
        mismatches.append(("offset at start", START, prev_o, probe_start_off))
    samples = 1
    t = START
    while t < END:
        t = min(t + STEP, END)
        o = py_offset(z, t)
        samples += 1
        while idx < len(bounds) and bounds[idx] <= t:
            cur = offs[idx]
            idx += 1
        if o != cur:
            mismatches.append(("offset at sample", t, o, cur))
        # Find every change in (prev_t, t]: bisect to the first one, then go on from it.
        lo, lo_o = prev_t, prev_o
        while lo_o != o:
            a, b = lo, t
            while b - a > 1:
                mid = (a + b) // 2
                if py_offset(z, mid) == lo_o:
                    a = mid
                else:
                    b = mid
            after = py_offset(z, b)
            found.append((b, lo_o, after))
            lo, lo_o = b, after
        prev_t, prev_o = t, o
    return name, found, mismatches, samples


def test_tz_against_zoneinfo(capsys):
    t0 = time.monotonic()
    names = zone_names()
    assert len(names) > 500

    # Phase 1: our transitions and start offset for every zone.
    q = []
    for n in names:
        q += [f"z {n}", f"o {START}", f"t {START} {END}"]
    ans = run_probe(q)
    probe = {}
    for i, n in enumerate(names):
        ok, off, tr = ans[3 * i:3 * i + 3]
        assert ok == "ok", f"{n}: {ok}"
        trans = []
        for item in tr.split():
            t, b, a = item.split(":")
            trans.append((int(t), int(b), int(a)))
        probe[n] = (int(off), trans)

    # Phase 2: Python's transitions by daily sampling + bisection (2 processes).
    with multiprocessing.Pool(2) as pool:
        scans = pool.map(py_zone_scan, [(n, probe[n][0], probe[n][1]) for n in names],
                         chunksize=8)
    failures = []
    checks = 0
    samples = 0
    union = {}
    for name, found, mism, ns in scans:
        samples += ns
        checks += ns
        for m in mism[:5]:
            failures.append(f"{name}: {m}")
        ours = probe[name][1]
        checks += 1
        if ours != found:
            only_ours = sorted(set(ours) - set(found))[:5]
            only_py = sorted(set(found) - set(ours))[:5]
            failures.append(f"{name}: transitions differ: only ours {only_ours}, "
                            f"only zoneinfo {only_py}")
        union[name] = sorted(set(t for t, _, _ in ours) | set(t for t, _, _ in found))

    # Phase 3: offsets at T-1 and T, local -> UTC and gap ends around every transition.
    q = []
    expect = []
    for name in names:
        z = ZoneInfo(name)
        q.append(f"z {name}")
        expect.append((name, "zone", None, "ok"))
        for t in union[name]:
            ob, oa = py_offset(z, t - 1), py_offset(z, t)
            q += [f"o {t - 1}", f"o {t}"]
            expect += [(name, "o", t - 1, str(ob)), (name, "o", t, str(oa))]
            lo, hi = t + min(ob, oa), t + max(ob, oa)
            for wall in sorted({lo - 1, lo, (lo + hi) // 2, hi - 1, hi}):
                inst = py_instants(z, wall)
                q.append(f"l {wall}")
                expect.append((name, "l", wall, " ".join(map(str, [len(inst)] + inst))))
                if not inst:
                    q.append(f"g {wall}")
                    expect.append((name, "g", wall, f"{t} {oa - ob}"))
    ans = run_probe(q)
    for (name, kind, arg, want), got in zip(expect, ans):
        checks += 1
        if got != want:
            failures.append(f"{name}: {kind} {arg}: ours {got!r}, zoneinfo {want!r}")

    elapsed = time.monotonic() - t0
    ntrans = sum(len(v) for v in union.values())
    with capsys.disabled():
        print(f"\ntz vs zoneinfo: {len(names)} zones, {ntrans} transitions 1970-2100, "
              f"{samples} daily samples, {checks} checks, {len(failures)} failures, "
              f"{elapsed:.1f}s")
    assert not failures, "\n".join(failures[:50])
