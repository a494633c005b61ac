#!/usr/bin/python3
"""Benchmark orch against GNU make -j2 on the same DAGs, in one run.

Each workload runs REPS times (default 5) with orch on a warm embedded
store, durable to a process crash (bench/orch-bench, measured two ways:
submit-to-done as the `orch run` client sees it, and the whole process with
its start-up), and with `make -j2` on the equivalent Makefile (the in-memory,
non-durable reference, whose figure includes its start-up). Prints medians, min, max, per-task ms, tasks/s and
the orch/make ratio. For the full peer table (Celery, RQ, BullMQ,
graphile-worker, pg-boss, snakemake), run the peer harness with
ORCH_BENCH_CMD=$PWD/bench/orch-bench (see bench/README.md).
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS = {"chain-100": 100, "fanout-1000": 1000, "shell-chain-100": 100,
             "layered-10x100": 1000, "fanout-shell-200": 200}


def time_cmd(argv, env=None, cwd=None):
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    return time.perf_counter() - t0


def orch_once(workload, env, mode):
    out = subprocess.run([os.path.join(HERE, "orch-bench"), workload], check=True,
                         capture_output=True, text=True,
                         env=dict(env, ORCH_BENCH_MODE=mode)).stdout
    return float(out.strip().splitlines()[-1])


def main():
    reps = int(os.environ.get("REPS", "5"))
    names = sys.argv[1:] or list(WORKLOADS)
    tmp = tempfile.mkdtemp(prefix="orch-bench.")
    env = dict(os.environ, BENCH_TMP=tmp, BENCH_CONCURRENCY=os.environ.get("BENCH_CONCURRENCY", "2"))
    print(f"# orch bench; {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}; "
          f"{os.cpu_count()} cores; reps={reps}; workers={env['BENCH_CONCURRENCY']}")
    print("system\tworkload\ttasks\tmedian_s\tmin_s\tmax_s\tper_task_ms\ttasks_per_s\tx_make")
    for w in names:
        n = WORKLOADS[w]
        mk = os.path.join(tmp, f"{w}.mk")
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "gen.py"), w, "make", mk], check=True)
        make_t = [time_cmd(["make", "-s", "-j2", "-f", mk], cwd=tmp) for _ in range(reps)]
        orch_once(w, env, "engine")  # warm-up: creates the store
        orch_e = [orch_once(w, env, "engine") for _ in range(reps)]
        orch_p = [orch_once(w, env, "process") for _ in range(reps)]
        mm = statistics.median(make_t)
        for name, ts in (("make-j2", make_t), ("orch-submit-to-done", orch_e),
                         ("orch-whole-process", orch_p)):
            med = statistics.median(ts)
            print(f"{name}\t{w}\t{n}\t{med:.4f}\t{min(ts):.4f}\t{max(ts):.4f}\t"
                  f"{med / n * 1000:.3f}\t{n / med:.0f}\t{med / mm:.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
