"""
A short soak (bench/soak.py for 60 s) of a real `orch server` with tasks running: a steady
rate of submissions (each runs a `true` command), lists, gets and log reads.

What is checked is not speed: every answer must be the expected 2xx, the server must exit 0
on SIGTERM with nothing in its log at warn level or above and no sanitizer report, and after
the first 15 s its RSS and its count of open descriptors must not grow beyond the bounds
below. (The 10-minute run at 1,000 requests per second, and its latency figures, are in
bench/README.md.)

The rate: 1,000 per second for a Release build; 150 per second for a sanitizer build,
which sustains that with no error on a loaded 2-core machine (ASan and UBSan make each
request several times dearer, and the client shares the cores). ORCH_SOAK_RATE overrides
it. Under ASan the quarantine of freed memory is capped at 16 MiB for this test: with the
default (256 MiB) it fills for minutes and the RSS grows by design.
"""
import json
import os
import subprocess
import sys

from apiutil import Server
from conftest import ORCH, REPO, base_env

DURATION = 60
WARMUP = 15
# The bounds, after the warm-up: RSS may move with the store's page cache and the
# allocator's arenas, but not by more than this; descriptors may differ by the few that
# come and go with running tasks and connections.
MAX_RSS_GROWTH_KIB = 24 * 1024
MAX_FD_GROWTH = 24


def sanitized():
    with open(ORCH, "rb") as f:
        return b"__asan_init" in f.read()


def test_soak_60s_no_errors_no_growth(tmp_path):
    asan = sanitized()
    rate = float(os.environ.get("ORCH_SOAK_RATE") or (150 if asan else 1000))
    env = {}
    if asan:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:quarantine_size_mb=16"
    s = Server(tmp_path, workers=4, env=env)
    try:
        s.start(extra=("--log-level", "warn"))
        out = tmp_path / "soak.json"
        res = subprocess.run(
            [sys.executable, str(REPO / "bench" / "soak.py"), "--url", s.url, "--pid",
             str(s.proc.pid), "--rate", str(rate), "--duration", str(DURATION), "--warmup",
             str(WARMUP), "--sample", "1", "--threads", "8", "--json", str(out),
             "--max-rss-growth-kib", str(MAX_RSS_GROWTH_KIB), "--max-fd-growth",
             str(MAX_FD_GROWTH)],
            capture_output=True, text=True, timeout=DURATION + 240,
            env=base_env({"ORCH_API_KEY": s.admin_key}))
        assert out.exists(), f"soak.py wrote no report ({res.returncode}):\n{res.stdout}\n{res.stderr}"
        rep = json.loads(out.read_text())
        report = res.stdout[-4000:]
        assert rep["requests"] >= rate * DURATION * 0.99, report
        assert rep["submitted"] > 0 and all(rep["mix"]), report
        assert rep["errors"] == 0, report
        g = rep["growth"]
        assert g is not None and len(rep["samples"]) >= DURATION - WARMUP, report
        assert g["rss_growth_kib"] <= MAX_RSS_GROWTH_KIB, report
        assert g["fd_growth"] <= MAX_FD_GROWTH, report
        assert res.returncode == 0, report + res.stderr
        code = s.stop(timeout=120)
        assert code == 0, f"orch server exited with {code}:\n{s.log()[-3000:]}"
        s.assert_log_clean()
        log = s.log()
        assert not log.strip(), f"the server logged at warn level or above:\n{log[-3000:]}"
    finally:
        s.cleanup()
