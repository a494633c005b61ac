#!/usr/bin/env bash
# bench/fanout.sh: the cost of fan-out over lists (`forEach`), timed on whole `orch run`
# processes (start-up, store, engine, summary) with hyperfine, else /usr/bin/time.
#
#   1. forEach over N `noop` items, N in $NS (100 1000 10000): milliseconds per instance,
#      raw (median / N) and net of a forEach over an empty list (same process, same store,
#      no instances): (median - empty) / N, which should not grow with N.
#   2. The same work in two shapes and against make: $NTRUE (1000) commands running
#      `true` (argv form, no shell) on $WORKERS (2) worker slots, as one forEach task, as
#      $NTRUE independent tasks of one workflow, and as `make -j$WORKERS` with $NTRUE
#      phony targets whose recipe is `true`.
#
# Every orch run starts on a fresh copy of a migrated, empty data directory (hyperfine
# --prepare), so the history of earlier runs does not weigh on later ones; each timed run
# must succeed (exit 0). Prints a Markdown table of medians.
#
# Environment: ORCH_BIN (default build/src/cli/orch of this checkout; use a Release
# build), NS ("100 1000 10000"), NTRUE (1000), WORKERS (2), RUNS_NOOP (10, after one
# warm-up run), RUNS_TRUE (5; the untimed check run is their warm-up), BENCH_TIMER
# (hyperfine or usr-bin-time; default hyperfine if present), KEEP=1 keeps the scratch
# directory. About a minute on an idle 2-core VM. Needs make, and jq or /usr/bin/python3
# to read hyperfine's JSON.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
ORCH_BIN=${ORCH_BIN:-$repo/build/src/cli/orch}
NS=${NS:-"100 1000 10000"}
NTRUE=${NTRUE:-1000}
WORKERS=${WORKERS:-2}
RUNS_NOOP=${RUNS_NOOP:-10}
RUNS_TRUE=${RUNS_TRUE:-5}

die() { echo "fanout.sh: $*" >&2; exit 2; }
[ -x "$ORCH_BIN" ] || die "no orch binary at '$ORCH_BIN' (build one, or set ORCH_BIN)"
case $ORCH_BIN in /*) ;; *) ORCH_BIN=$(cd "$(dirname "$ORCH_BIN")" && pwd)/$(basename "$ORCH_BIN") ;; esac
command -v make >/dev/null 2>&1 || die "'make' is missing"
timer=${BENCH_TIMER:-}
if [ -z "$timer" ]; then
  if command -v hyperfine >/dev/null 2>&1; then timer=hyperfine
  elif [ -x /usr/bin/time ]; then timer=usr-bin-time
  else die "neither hyperfine nor /usr/bin/time is there"
  fi
fi
case $timer in
  hyperfine) command -v hyperfine >/dev/null 2>&1 || die "hyperfine is missing" ;;
  usr-bin-time) [ -x /usr/bin/time ] || die "/usr/bin/time is missing" ;;
  *) die "BENCH_TIMER must be hyperfine or usr-bin-time" ;;
esac
json=none
if command -v jq >/dev/null 2>&1; then json=jq
elif [ -x /usr/bin/python3 ]; then json=py
else [ "$timer" = usr-bin-time ] || die "reading hyperfine's JSON needs jq or /usr/bin/python3"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/orch-fanout.XXXXXX")
cleanup() { if [ "${KEEP:-0}" = 1 ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi; }
trap cleanup EXIT INT TERM

export ORCH_NO_PROGRESS=1
unset ORCH_DATA_DIR ORCH_WORKERS DATABASE_URL 2>/dev/null || true

# ---- inputs: workflows, a Makefile, an empty migrated store and the reset script
items() { seq -s, 0 $(($1 - 1)); } # "0,1,...,N-1" (empty for 0)
for n in 0 $NS; do
  printf '{"name": "fan-noop-%s", "tasks": [{"name": "each", "type": "noop", "forEach": [%s]}]}\n' \
    "$n" "$( [ "$n" -gt 0 ] && items "$n" )" > "$work/noop-$n.json"
done
printf '{"name": "fan-true", "tasks": [{"name": "each", "command": ["true"], "forEach": [%s]}]}\n' \
  "$(items "$NTRUE")" > "$work/foreach-true.json"
{
  printf '{"name": "tasks-true", "tasks": ['
  for ((i = 0; i < NTRUE; i++)); do
    [ $i -gt 0 ] && printf ', '
    printf '{"name": "t%d", "command": ["true"]}' $i
  done
  printf ']}\n'
} > "$work/tasks-true.json"
{
  printf 'all:'
  for ((i = 0; i < NTRUE; i++)); do printf ' t%d' $i; done
  printf '\n.PHONY: all'
  for ((i = 0; i < NTRUE; i++)); do printf ' t%d' $i; done
  printf '\n'
  for ((i = 0; i < NTRUE; i++)); do printf 't%d:\n\ttrue\n' $i; done
} > "$work/Makefile"
"$ORCH_BIN" db migrate --data-dir "$work/base" >/dev/null
cat > "$work/reset" <<EOF
#!/bin/sh
rm -rf '$work/data' && cp -a '$work/base' '$work/data'
EOF
chmod +x "$work/reset"
# Each workload once, untimed: it must succeed.
for f in "$work"/noop-*.json "$work/foreach-true.json" "$work/tasks-true.json"; do
  "$work/reset"
  "$ORCH_BIN" run "$f" --data-dir "$work/data" --workers "$WORKERS" >/dev/null 2>"$work/check.err" ||
    { cat "$work/check.err" >&2; die "orch run $(basename "$f") failed"; }
done
make -s -j"$WORKERS" -f "$work/Makefile" >/dev/null || die "make failed"

# ---- timing: measure NAME WARMUP RUNS PREPARE(or -) COMMAND... -> "median min max" seconds
measure() {
  local name=$1 warmup=$2 runs=$3 prep=$4
  shift 4
  local cmd
  cmd=$(printf '%q ' "$@")
  if [ "$timer" = hyperfine ]; then
    local args=(-N --style none --warmup "$warmup" --runs "$runs" --export-json "$work/res-$name.json")
    [ "$prep" = - ] || args+=(--prepare "$prep")
    hyperfine "${args[@]}" "$cmd" >"$work/res-$name.hf" 2>&1 || { cat "$work/res-$name.hf" >&2; die "$name: hyperfine failed"; }
    if [ "$json" = jq ]; then
      jq -r '.results[0] | "\(.median) \(.min) \(.max)"' "$work/res-$name.json"
    else
      /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]
print(r["median"], r["min"], r["max"])' "$work/res-$name.json"
    fi
  else
    local i
    : > "$work/res-$name.times"
    for ((i = 0; i < warmup; i++)); do
      [ "$prep" = - ] || $prep
      "$@" >/dev/null 2>&1
    done
    for ((i = 0; i < runs; i++)); do
      [ "$prep" = - ] || $prep
      /usr/bin/time -f %e -a -o "$work/res-$name.times" "$@" >/dev/null 2>&1 ||
        die "$name: run $i failed"
    done
    sort -n "$work/res-$name.times" | awk '{ v[NR] = $1 } END {
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      print m, v[1], v[NR] }'
  fi
}

# orch_cmd FILE: ocmd = the `orch run` command line of a workflow file
orch_cmd() { ocmd=("$ORCH_BIN" run "$1" --data-dir "$work/data" --workers "$WORKERS"); }

echo "fanout.sh: $timer, $(nproc) CPUs, orch $("$ORCH_BIN" version | awk '{print $2}'), \
workers $WORKERS, $RUNS_NOOP runs (noop) / $RUNS_TRUE runs (true)" >&2

declare -A med mn mx
# run NAME KEY WARMUP RUNS PREPARE COMMAND...: measure, and keep the figures under KEY
run() {
  local name=$1 key=$2
  shift 2
  measure "$name" "$@" > "$work/res-$name.txt" # in this shell: a failure stops the script
  read -r "med[$key]" "mn[$key]" "mx[$key]" < "$work/res-$name.txt"
  echo "  $name: median ${med[$key]} s" >&2
}
for n in 0 $NS; do
  orch_cmd "$work/noop-$n.json"
  run "noop-$n" "noop$n" 1 "$RUNS_NOOP" "$work/reset" "${ocmd[@]}"
done
# (the untimed check above was their warm-up)
orch_cmd "$work/foreach-true.json"
run foreach-true fe 0 "$RUNS_TRUE" "$work/reset" "${ocmd[@]}"
orch_cmd "$work/tasks-true.json"
run tasks-true tk 0 "$RUNS_TRUE" "$work/reset" "${ocmd[@]}"
run make-true mk 0 "$RUNS_TRUE" - make -s -j"$WORKERS" -f "$work/Makefile"

# ---- the table
awk -v ns="$NS" -v ntrue="$NTRUE" -v w="$WORKERS" \
    -v b="${med[noop0]}" -v bmin="${mn[noop0]}" -v bmax="${mx[noop0]}" \
    -v noop="$(for n in $NS; do printf '%s:%s:%s:%s ' "$n" "${med[noop$n]}" "${mn[noop$n]}" "${mx[noop$n]}"; done)" \
    -v fe="${med[fe]}:${mn[fe]}:${mx[fe]}" -v tk="${med[tk]}:${mn[tk]}:${mx[tk]}" \
    -v mk="${med[mk]}:${mn[mk]}:${mx[mk]}" 'BEGIN {
  print "| workload | median s | min s | max s | ms per item | net ms per item | x make |"
  print "| --- | --- | --- | --- | --- | --- | --- |"
  printf "| forEach over 0 items (noop) | %.4f | %.4f | %.4f | - | - | - |\n", b, bmin, bmax
  split(noop, rows, " ")
  for (i = 1; i in rows; i++) {
    split(rows[i], f, ":")
    printf "| forEach over %d noop items | %.4f | %.4f | %.4f | %.4f | %.4f | - |\n",
      f[1], f[2], f[3], f[4], f[2] * 1000 / f[1], (f[2] - b) * 1000 / f[1]
  }
  split(mk, m, ":")
  split(fe, f, ":")
  printf "| forEach over %d `true` (%d workers) | %.4f | %.4f | %.4f | %.3f | %.3f | %.2f |\n",
    ntrue, w, f[1], f[2], f[3], f[1] * 1000 / ntrue, (f[1] - b) * 1000 / ntrue, f[1] / m[1]
  split(tk, f, ":")
  printf "| %d independent `true` tasks (%d workers) | %.4f | %.4f | %.4f | %.3f | %.3f | %.2f |\n",
    ntrue, w, f[1], f[2], f[3], f[1] * 1000 / ntrue, (f[1] - b) * 1000 / ntrue, f[1] / m[1]
  printf "| make -j%d, %d targets running `true` | %.4f | %.4f | %.4f | %.3f | - | 1.00 |\n",
    w, ntrue, m[1], m[2], m[3], m[1] * 1000 / ntrue
}'
