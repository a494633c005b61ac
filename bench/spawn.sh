#!/usr/bin/env bash
# bench/spawn.sh: the cost of a command task against make's, side by side in one run.
#
# For each N in $NS (1000 30000): one workflow with N independent tasks running `true`
# (argv form, no shell; `forEach` over N items, or N tasks with SHAPE=tasks) run by
# `orch run --workers $WORKERS` on a fresh copy of a migrated SQLite store, and
# `make -j$WORKERS` on N phony targets whose recipe is `true`. Each round runs every
# binary (ORCH_BASE if set, ORCH_NEW) and make one after the other, $ROUNDS rounds
# (default 5, also at 30,000: ROUNDS_BIG), and the table gives medians of:
#   - wall seconds and ms per task;
#   - CPU seconds (user + system of the whole tree, the `true` processes included,
#     /usr/bin/time), and the CPU of the orchestrator's own process alone (perf stat
#     --no-inherit task-clock; for make, make alone), per task;
#   - x make: wall median / make's wall median.
# Then, unless STRACE=0, `strace -c -f` of one run at N=1000 of each: system calls per
# task (everything the orchestrator and its children do before exec, plus the children
# after exec, which are the same `true`), and the ten most frequent.
# The load average is printed before and after (the machine is shared: compare rows of
# one run only).
# Then, unless CHAIN=0, `shell-chain-100` (100 chained `true` tasks, bench/gen.py): each
# binary with ORCH_SQLITE_SYNC=full and =normal on a warm store, and make -j2, alternating,
# $CHAIN_ROUNDS rounds (7): medians of the whole process's wall time and of orch's
# submit-to-complete (`orch run --timing`, what bench/orch-bench reports), with the
# fdatasync latency of the store's disk measured before and after (4 KiB overwrites).
# With PROFILE=1 (needs strace), where one chained task's wall time goes
# (bench/chain-phases.py: wake-up, end handling, commit writes, sync, spawn, the
# child's set-up, the task's own run) for the last binary (full, normal) and make.
#
#   bench/spawn.sh                                             # build-rel/src/cli/orch
#   ORCH_BASE=/tmp/orch-base NS="1000" ROUNDS=7 bench/spawn.sh
#
# Environment: ORCH_NEW (default build-rel/src/cli/orch), ORCH_BASE (optional), NS,
# WORKERS (8), ROUNDS, ROUNDS_BIG (rounds for N >= 10000, 5), SHAPE (foreach|tasks),
# STRACE (1), CHAIN (1), CHAIN_ROUNDS (7), PROFILE (0), KEEP=1. NS="" runs the chain only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
ORCH_NEW=${ORCH_NEW:-$repo/build-rel/src/cli/orch}
NS=${NS-"1000 30000"}
WORKERS=${WORKERS:-8}
ROUNDS=${ROUNDS:-5}
ROUNDS_BIG=${ROUNDS_BIG:-5}
SHAPE=${SHAPE:-foreach}
STRACE=${STRACE:-1}
CHAIN=${CHAIN:-1}
CHAIN_ROUNDS=${CHAIN_ROUNDS:-7}
PROFILE=${PROFILE:-0}
die() { echo "spawn.sh: $*" >&2; exit 2; }
[ -x /usr/bin/time ] || die "/usr/bin/time is missing"
command -v make >/dev/null || die "make is missing"
command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
work=$(mktemp -d "${TMPDIR:-/tmp}/orch-spawn.XXXXXX")
trap '[ "${KEEP:-0}" = 1 ] && echo "kept: $work" >&2 || rm -rf "$work"' EXIT
export ORCH_NO_PROGRESS=1
unset ORCH_DATA_DIR ORCH_WORKERS DATABASE_URL 2>/dev/null || true

bins=()
[ -n "${ORCH_BASE:-}" ] && bins+=("base=$ORCH_BASE")
bins+=("new=$ORCH_NEW")
for b in "${bins[@]}"; do
  bin=${b#*=}
  [ -x "$bin" ] || die "no orch binary at '$bin'"
  "$bin" db migrate --data-dir "$work/store-${b%%=*}" >/dev/null
done

for n in $NS; do
  if [ "$SHAPE" = tasks ]; then
    /usr/bin/python3 -c 'import json,sys; n=int(sys.argv[1]); print(json.dumps({"name": "fan-true", "tasks": [{"name": f"t{i}", "command": ["true"]} for i in range(n)]}))' "$n" > "$work/true-$n.json"
  else
    printf '{"name": "fan-true", "tasks": [{"name": "each", "command": ["true"], "forEach": [%s]}]}\n' \
      "$(seq -s, 0 $((n - 1)))" > "$work/true-$n.json"
  fi
  {
    printf '.PHONY: all'; for ((i = 0; i < n; i++)); do printf ' t%d' $i; done; printf '\nall:'
    for ((i = 0; i < n; i++)); do printf ' t%d' $i; done; printf '\n'
    for ((i = 0; i < n; i++)); do printf 't%d:\n\ttrue\n' $i; done
  } > "$work/make-$n.mk"
done

# one NAME N: run it once; prints "wall cpu own_cpu" (seconds)
one() {
  local name=$1 n=$2 bin
  if [ "$name" = make ]; then
    set -- make -s -j"$WORKERS" -f "$work/make-$n.mk"
  else
    for b in "${bins[@]}"; do [ "${b%%=*}" = "$name" ] && bin=${b#*=}; done
    rm -rf "$work/data" && cp -a "$work/store-$name" "$work/data"
    set -- "$bin" run "$work/true-$n.json" --data-dir "$work/data" --workers "$WORKERS" \
      --log-level error
  fi
  /usr/bin/time -f "%e %U %S" -o "$work/time" \
    perf stat --no-inherit -x, -e task-clock -o "$work/perf" "$@" >/dev/null 2>"$work/err" ||
    { cat "$work/err" >&2; die "$name at $n failed"; }
  local own
  own=$(awk -F, '/task-clock/ {print $1 / 1000}' "$work/perf")
  awk -v own="$own" '{printf "%s %.3f %.4f\n", $1, $2 + $3, own}' "$work/time"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

names=()
for b in "${bins[@]}"; do names+=("${b%%=*}"); done
names+=(make)
echo "spawn.sh: $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
declare -A W C O
for n in $NS; do
  rounds=$ROUNDS
  [ "$n" -ge 10000 ] && rounds=$ROUNDS_BIG
  for ((r = 1; r <= rounds; r++)); do
    for name in "${names[@]}"; do
      read -r w c o < <(one "$name" "$n")
      W[$name-$n]+="$w "; C[$name-$n]+="$c "; O[$name-$n]+="$o "
      echo "  N=$n round $r $name: wall $w s, CPU $c s, own CPU $o s (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
  done
done
[ -n "$NS" ] && echo "load average after the fan-outs: $(cut -d' ' -f1-3 /proc/loadavg)"
[ -n "$NS" ] && echo && echo "| N | who | wall s (median) | ms per task | x make | CPU ms per task (tree) | own CPU ms per task | runs |"
[ -n "$NS" ] && echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for n in $NS; do
  mk=$(echo "${W[make-$n]}" | tr ' ' '\n' | grep . | median)
  for name in "${names[@]}"; do
    w=$(echo "${W[$name-$n]}" | tr ' ' '\n' | grep . | median)
    c=$(echo "${C[$name-$n]}" | tr ' ' '\n' | grep . | median)
    o=$(echo "${O[$name-$n]}" | tr ' ' '\n' | grep . | median)
    awk -v n="$n" -v who="$name" -v w="$w" -v c="$c" -v o="$o" -v mk="$mk" -v all="${W[$name-$n]}" \
      'BEGIN { printf "| %d | %s | %.3f | %.3f | %.2f | %.3f | %.3f | %s|\n", n, who, w, w * 1000 / n, w / mk, c * 1000 / n, o * 1000 / n, all }'
  done
done

if [ -n "$NS" ] && [ "$STRACE" = 1 ] && command -v strace >/dev/null; then
  n=1000
  [ -f "$work/true-$n.json" ] || {
    printf '{"name": "fan-true", "tasks": [{"name": "each", "command": ["true"], "forEach": [%s]}]}\n' \
      "$(seq -s, 0 $((n - 1)))" > "$work/true-$n.json"
    { printf '.PHONY: all\nall:'; for ((i = 0; i < n; i++)); do printf ' t%d' $i; done; printf '\n'
      for ((i = 0; i < n; i++)); do printf 't%d:\n\ttrue\n' $i; done; } > "$work/make-$n.mk"; }
  echo
  echo "System calls per task, \`strace -c -f\`, N=$n, $WORKERS workers (the \`true\` processes' own included):"
  echo
  echo "| who | calls per task | most frequent (calls per task) |"
  echo "| --- | --- | --- |"
  for name in "${names[@]}"; do
    if [ "$name" = make ]; then
      strace -c -f -o "$work/strace-$name" make -s -j"$WORKERS" -f "$work/make-$n.mk" >/dev/null
    else
      for b in "${bins[@]}"; do [ "${b%%=*}" = "$name" ] && bin=${b#*=}; done
      rm -rf "$work/data" && cp -a "$work/store-$name" "$work/data"
      strace -c -f -o "$work/strace-$name" "$bin" run "$work/true-$n.json" --data-dir "$work/data" \
        --workers "$WORKERS" --log-level error >/dev/null
    fi
    awk -v n="$n" -v who="$name" '
      /^-/ || /^%/ || /total/ || NF < 5 { next }
      { c = $4; s = $NF; tot += c; calls[s] = c }
      END {
        top = ""
        for (k = 0; k < 10; k++) { best = ""; bv = -1
          for (s in calls) if (calls[s] > bv) { bv = calls[s]; best = s }
          if (best == "") break
          top = top sprintf("%s %.1f, ", best, bv / n); delete calls[best] }
        printf "| %s | %.1f | %s |\n", who, tot / n, substr(top, 1, length(top) - 2) }' "$work/strace-$name"
  done
fi

# ---------------------------------------------------------------- shell-chain-100
[ "$CHAIN" = 1 ] || exit 0
# fdatasync latency of the disk under $1: 200 overwrites of 4 KiB, each synced (as a
# commit of a WAL that is being reused); prints "median p10 p90" in ms.
sync_probe() {
  /usr/bin/python3 - "$1" <<'PY'
import os, statistics, sys, time
p = os.path.join(sys.argv[1], "sync-probe")
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, b"\0" * (1 << 20)); os.fsync(fd)
ts = []
for i in range(200):
    os.pwrite(fd, b"x" * 4096, (i * 4096) % (1 << 20))
    t = time.perf_counter(); os.fdatasync(fd); ts.append(time.perf_counter() - t)
os.close(fd); os.unlink(p); ts.sort()
print("%.3f %.3f %.3f" % (statistics.median(ts) * 1e3, ts[20] * 1e3, ts[180] * 1e3))
PY
}
/usr/bin/python3 "$here/gen.py" shell-chain-100 json "$work/chain.json"
/usr/bin/python3 "$here/gen.py" shell-chain-100 make "$work/chain.mk"
cnames=()
for b in "${bins[@]}"; do
  for s in full normal; do
    cnames+=("${b%%=*}-$s")
    rm -rf "$work/chain-${b%%=*}-$s"
    ORCH_SQLITE_SYNC=$s "${b#*=}" run "$work/chain.json" --data-dir "$work/chain-${b%%=*}-$s" \
      --workers 2 --log-level error >/dev/null # warm store (not timed)
  done
done
cnames+=(make)
# chain_one NAME: prints "wall submit-to-complete" (seconds; make: wall wall)
chain_one() {
  local name=$1 bin t0 t1 sub
  if [ "$name" = make ]; then
    t0=$(date +%s.%N); (cd "$work" && make -s -j2 -f "$work/chain.mk" >/dev/null); t1=$(date +%s.%N)
    echo "$t0 $t1" | awk '{printf "%.4f %.4f\n", $2 - $1, $2 - $1}'
    return
  fi
  for b in "${bins[@]}"; do [ "${b%%=*}" = "${name%-*}" ] && bin=${b#*=}; done
  t0=$(date +%s.%N)
  sub=$(ORCH_SQLITE_SYNC=${name##*-} "$bin" run "$work/chain.json" --data-dir "$work/chain-$name" \
    --workers 2 --log-level error --timing 2>&1 >/dev/null | awk '/^submit-to-complete/ {print $2}' | tail -n 1)
  t1=$(date +%s.%N)
  echo "$t0 $t1 $sub" | awk '{printf "%.4f %.4f\n", $2 - $1, $3}'
}
probe0=$(sync_probe "$work")
echo
echo "shell-chain-100: load average at start $(cut -d' ' -f1-3 /proc/loadavg); fdatasync on this disk (ms, median p10 p90): $probe0" >&2
declare -A CW CS
for ((r = 1; r <= CHAIN_ROUNDS; r++)); do
  for name in "${cnames[@]}"; do
    read -r w sub < <(chain_one "$name")
    CW[$name]+="$w "; CS[$name]+="$sub "
    echo "  shell-chain-100 round $r $name: wall $w s, submit-to-complete $sub s (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  done
done
probe1=$(sync_probe "$work")
echo
echo "shell-chain-100 (100 chained \`true\`, 2 workers), medians of $CHAIN_ROUNDS rounds, alternating; load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
echo "fdatasync latency of the store's disk, ms (median p10 p90): before $probe0, after $probe1"
echo
echo "| who | whole process s | ms per task | x make | submit-to-complete s | ms per task | x make | the rounds' whole-process s |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
mk=$(echo "${CW[make]}" | tr ' ' '\n' | grep . | median)
for name in "${cnames[@]}"; do
  w=$(echo "${CW[$name]}" | tr ' ' '\n' | grep . | median)
  sub=$(echo "${CS[$name]}" | tr ' ' '\n' | grep . | median)
  awk -v who="$name" -v w="$w" -v s="$sub" -v mk="$mk" -v all="${CW[$name]}" \
    'BEGIN { printf "| %s | %.4f | %.3f | %.2f | %.4f | %.3f | %.2f | %s|\n", who, w, w * 10, w / mk, s, s * 10, s / mk, all }'
done

if [ "$PROFILE" = 1 ] && command -v strace >/dev/null; then
  last=${bins[${#bins[@]} - 1]}
  tr="-e trace=epoll_wait,wait4,pwrite64,fdatasync,fsync,clone,clone3,vfork,execve,exit_group"
  echo
  echo "Where one chained task's time goes (strace --seccomp-bpf of one run each; bench/chain-phases.py):"
  for s in full normal; do
    ORCH_SQLITE_SYNC=$s strace -f --seccomp-bpf -ttt -T -o "$work/ph-$s" $tr "${last#*=}" run "$work/chain.json" \
      --data-dir "$work/chain-${last%%=*}-$s" --workers 2 --log-level error >/dev/null
    echo; echo "${last%%=*} ORCH_SQLITE_SYNC=$s:"; /usr/bin/python3 "$here/chain-phases.py" "$work/ph-$s" orch
  done
  (cd "$work" && strace -f --seccomp-bpf -ttt -T -o "$work/ph-make" $tr make -s -j2 -f "$work/chain.mk" >/dev/null)
  echo; echo "make -j2:"; /usr/bin/python3 "$here/chain-phases.py" "$work/ph-make" make
fi
