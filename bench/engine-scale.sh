#!/usr/bin/env bash
# bench/engine-scale.sh: does the engine's cost per task stay flat as the work grows?
# Two orch binaries side by side in one run: "base" (a build before a change) and "new".
#
#   1. forEach over N noop items, N in $NS_NOOP (1000 10000 100000): whole `orch run`
#      processes on a fresh copy of a migrated store, hyperfine medians; ms per item.
#   2. forEach over N commands running `true` (argv form), N in $NS_TRUE (1000 10000
#      50000), --workers $WORKERS (8), and `make -j$WORKERS` on N phony targets running
#      `true` as the reference; ms per task.
#   3. Memory per finished noop task run: `/usr/bin/time -v`'s maximum RSS of the
#      largest and the smallest noop forEach, (RSS delta) / (item delta).
#   4. Live executions (bench/engine-scale.py, `orch server`, 2 worker slots): the
#      completion rate of $SHORT two-noop executions with K = $WAITING (0 1000 10000)
#      other executions waiting for a slot, and the rate at which those K drain.
#   5. Spawn cost and open files: a forEach over $NFD_TRUE (500) `true` commands (2 workers)
#      run by an `orch run` that holds N extra descriptors, N in $FDS (0 8000): a holder
#      process (bench/engine-scale.py hold-fds) opens them at 100 and up (as a server's
#      connections come after its start: the low numbers stay free) and execs orch.
#      `/usr/bin/time`'s wall and CPU (user + system, the tasks included), medians of
#      $RUNS_FDS (3).
#   6. The peer-harness workloads ($PEER_WORKLOADS: chain-100 fanout-1000 shell-chain-100
#      layered-10x100, written by bench/gen.py) with bench/orch-bench (engine mode,
#      medians of $REPS) on SQLite and, unless PG=0, on a private PostgreSQL 15 (fsync
#      on) started and removed here.
#
# Binaries: ORCH_NEW (default build-rel/src/cli/orch of this checkout) and ORCH_BASE;
# without ORCH_BASE, BASE_REV (a commit) is checked out in a temporary git worktree and
# built there (Release). Use Release builds for both.
#
# Environment: ORCH_NEW, ORCH_BASE, BASE_REV, NS_NOOP, NS_TRUE, WORKERS, WAITING, SHORT
# (500), DRAIN_S (60), RUNS_NOOP (3), RUNS_TRUE (1), FDS, NFD_TRUE, RUNS_FDS, REPS (5),
# PEER_WORKLOADS, PG (1), SKIP="noop true mem live fds peers" (sections to leave out),
# KEEP=1 (keep the scratch directory). The
# defaults take about 25 minutes on a 2-core VM (most of it the 50,000 `true` rows and
# the 10,000-execution drain); smaller sizes for a quick look:
#   NS_NOOP="1000 10000" NS_TRUE="1000 5000" WAITING="0 1000" bench/engine-scale.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
ORCH_NEW=${ORCH_NEW:-$repo/build-rel/src/cli/orch}
NS_NOOP=${NS_NOOP:-"1000 10000 100000"}
NS_TRUE=${NS_TRUE:-"1000 10000 50000"}
WORKERS=${WORKERS:-8}
WAITING=${WAITING:-"0 1000 10000"}
RUNS_NOOP=${RUNS_NOOP:-3}
RUNS_TRUE=${RUNS_TRUE:-1}
REPS=${REPS:-5}
FDS=${FDS:-"0 8000"}
NFD_TRUE=${NFD_TRUE:-500}
RUNS_FDS=${RUNS_FDS:-3}
PEER_WORKLOADS=${PEER_WORKLOADS:-"chain-100 fanout-1000 shell-chain-100 layered-10x100"}
PG=${PG:-1}
SKIP=${SKIP:-}

die() { echo "engine-scale.sh: $*" >&2; exit 2; }
skip() { case " $SKIP " in *" $1 "*) return 0 ;; esac; return 1; }
command -v hyperfine >/dev/null 2>&1 || die "hyperfine is missing"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing"
command -v make >/dev/null 2>&1 || die "'make' is missing"
abs() { case $1 in /*) echo "$1" ;; *) echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")" ;; esac; }

work=$(mktemp -d "${TMPDIR:-/tmp}/orch-engine-scale.XXXXXX")
pgdir=
cleanup() {
  if [ -n "$pgdir" ]; then /usr/bin/python3 "$here/engine-scale.py" pg-stop "$pgdir" || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

if [ -z "${ORCH_BASE:-}" ]; then
  [ -n "${BASE_REV:-}" ] || die "set ORCH_BASE (a binary) or BASE_REV (a commit to build)"
  git -C "$repo" worktree add --detach "$work/base-src" "$BASE_REV" >/dev/null 2>&1 ||
    die "cannot check out $BASE_REV"
  cmake -S "$work/base-src" -B "$work/base-src/build-rel" -DCMAKE_BUILD_TYPE=Release >/dev/null
  nice cmake --build "$work/base-src/build-rel" --target orch -j2 >/dev/null
  ORCH_BASE=$work/base-src/build-rel/src/cli/orch
fi
ORCH_BASE=$(abs "$ORCH_BASE")
ORCH_NEW=$(abs "$ORCH_NEW")
[ -x "$ORCH_BASE" ] || die "no orch binary at '$ORCH_BASE'"
[ -x "$ORCH_NEW" ] || die "no orch binary at '$ORCH_NEW'"
export ORCH_NO_PROGRESS=1
unset ORCH_DATA_DIR ORCH_WORKERS DATABASE_URL 2>/dev/null || true
echo "engine-scale.sh: $(nproc) CPUs; base $ORCH_BASE, new $ORCH_NEW" >&2

items() { seq -s, 0 $(($1 - 1)); }
for n in $NS_NOOP; do
  printf '{"name": "fan-noop", "tasks": [{"name": "each", "type": "noop", "forEach": [%s]}]}\n' \
    "$(items "$n")" > "$work/noop-$n.json"
done
for n in $NS_TRUE; do
  printf '{"name": "fan-true", "tasks": [{"name": "each", "command": ["true"], "forEach": [%s]}]}\n' \
    "$(items "$n")" > "$work/true-$n.json"
  {
    printf '.PHONY: all'; for ((i = 0; i < n; i++)); do printf ' t%d' $i; done; printf '\nall:'
    for ((i = 0; i < n; i++)); do printf ' t%d' $i; done; printf '\n'
    for ((i = 0; i < n; i++)); do printf 't%d:\n\ttrue\n' $i; done
  } > "$work/make-$n.mk"
done
for b in base new; do
  bin=ORCH_${b^^}
  "${!bin}" db migrate --data-dir "$work/store-$b" >/dev/null
  printf '#!/bin/sh\nrm -rf "%s/data" && cp -a "%s/store-%s" "%s/data"\n' "$work" "$work" "$b" "$work" \
    > "$work/reset-$b"
  chmod +x "$work/reset-$b"
done

# hf NAME RUNS PREPARE COMMAND...: hyperfine median seconds (every run must succeed)
hf() {
  local name=$1 runs=$2 prep=$3
  shift 3
  local args=(-N --style none --runs "$runs" --export-json "$work/$name.json")
  [ "$prep" = - ] || args+=(--prepare "$prep")
  hyperfine "${args[@]}" "$(printf '%q ' "$@")" >"$work/$name.hf" 2>&1 ||
    { cat "$work/$name.hf" >&2; die "$name failed"; }
  /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["median"])' \
    "$work/$name.json"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A R
out=$work/table.md
: > "$out"

if ! skip noop; then
  for n in $NS_NOOP; do
    for b in base new; do
      bin=ORCH_${b^^}
      R[noop-$b-$n]=$(hf "noop-$b-$n" "$RUNS_NOOP" "$work/reset-$b" "${!bin}" run "$work/noop-$n.json" \
        --data-dir "$work/data" --log-level error)
      echo "  forEach $n noop, $b: ${R[noop-$b-$n]} s" >&2
    done
  done
fi
if ! skip true; then
  for n in $NS_TRUE; do
    for b in base new; do
      bin=ORCH_${b^^}
      R[true-$b-$n]=$(hf "true-$b-$n" "$RUNS_TRUE" "$work/reset-$b" "${!bin}" run "$work/true-$n.json" \
        --data-dir "$work/data" --workers "$WORKERS" --log-level error)
      echo "  forEach $n true, $b: ${R[true-$b-$n]} s" >&2
    done
    R[true-make-$n]=$(hf "true-make-$n" "$RUNS_TRUE" - make -s -j"$WORKERS" -f "$work/make-$n.mk")
    echo "  make -j$WORKERS $n true: ${R[true-make-$n]} s" >&2
  done
fi
if ! skip mem; then
  nlo=$(echo $NS_NOOP | awk '{print $1}')
  nhi=$(echo $NS_NOOP | awk '{print $NF}')
  for b in base new; do
    bin=ORCH_${b^^}
    for n in $nlo $nhi; do
      "$work/reset-$b"
      /usr/bin/time -v -o "$work/mem-$b-$n" "${!bin}" run "$work/noop-$n.json" --data-dir "$work/data" \
        --log-level error >/dev/null || die "forEach $n noop ($b) failed"
      R[mem-$b-$n]=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/mem-$b-$n")
    done
    echo "  max RSS $b: ${R[mem-$b-$nlo]} KiB ($nlo), ${R[mem-$b-$nhi]} KiB ($nhi)" >&2
  done
fi
if ! skip live; then
  for b in base new; do
    bin=ORCH_${b^^}
    nice /usr/bin/python3 "$here/engine-scale.py" "${!bin}" $WAITING > "$work/live-$b" ||
      die "engine-scale.py ($b) failed"
    while read -r k s d sub; do
      R[live-$b-$k]="$s $d"
      echo "  live, $b, $k waiting: short $s/s, drain $d/s (submitted in $sub s)" >&2
    done < "$work/live-$b"
  done
fi
if ! skip fds; then
  printf '{"name": "fan-true", "tasks": [{"name": "each", "command": ["true"], "forEach": [%s]}]}\n' \
    "$(items "$NFD_TRUE")" > "$work/fds-true.json"
  for n in $FDS; do
    for b in base new; do
      bin=ORCH_${b^^}
      : > "$work/fds-$b-$n"
      for ((i = 0; i < RUNS_FDS; i++)); do
        "$work/reset-$b"
        /usr/bin/time -f "%e %U %S" -a -o "$work/fds-$b-$n" /usr/bin/python3 "$here/engine-scale.py" \
          hold-fds "$n" "${!bin}" run "$work/fds-true.json" --data-dir "$work/data" --workers 2 \
          --log-level error >/dev/null || die "forEach $NFD_TRUE true with $n descriptors ($b) failed"
      done
      R[fds-$b-$n]="$(awk '{ print $1 }' "$work/fds-$b-$n" | median) $(awk '{ print $2 + $3 }' "$work/fds-$b-$n" | median)"
      echo "  forEach $NFD_TRUE true holding $n descriptors, $b: wall and CPU ${R[fds-$b-$n]} s" >&2
    done
  done
fi
if ! skip peers; then
  stores=sqlite
  if [ "$PG" = 1 ]; then
    read -r pgurl pgdir < <(/usr/bin/python3 "$here/engine-scale.py" pg-start) || die "PostgreSQL did not start"
    stores="sqlite postgres"
  fi
  for st in $stores; do
    for w in $PEER_WORKLOADS; do
      for b in base new; do
        bin=ORCH_${b^^}
        url=
        if [ "$st" = postgres ]; then
          db="bench_${b}_${w//-/_}"
          url=$(/usr/bin/python3 "$here/engine-scale.py" pg-db "$pgurl" "$db")
        fi
        : > "$work/peer-$st-$b-$w"
        for ((i = 0; i < REPS; i++)); do
          ORCH_BIN=${!bin} BENCH_TMP=$work/peer-$b ORCH_BENCH_STORE=$st PG_URL=$url \
            "$here/orch-bench" "$w" >> "$work/peer-$st-$b-$w" || die "orch-bench $w ($b, $st) failed"
        done
        R[peer-$st-$b-$w]=$(sort -n "$work/peer-$st-$b-$w" | awk '{ v[NR] = $1 } END {
          print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
        echo "  $w on $st, $b: ${R[peer-$st-$b-$w]} s" >&2
      done
    done
  done
fi

# ---- the table
{
  echo "| workload | size | base s | new s | base ms/task | new ms/task | new/base |"
  echo "| --- | --- | --- | --- | --- | --- | --- |"
  for n in $NS_NOOP; do
    [ -n "${R[noop-new-$n]:-}" ] || continue
    awk -v n="$n" -v a="${R[noop-base-$n]}" -v b="${R[noop-new-$n]}" 'BEGIN {
      printf "| forEach noop | %d | %.3f | %.3f | %.4f | %.4f | %.2f |\n", n, a, b, a*1000/n, b*1000/n, b/a }'
  done
  for n in $NS_TRUE; do
    [ -n "${R[true-new-$n]:-}" ] || continue
    awk -v n="$n" -v a="${R[true-base-$n]}" -v b="${R[true-new-$n]}" -v m="${R[true-make-$n]}" -v w="$WORKERS" 'BEGIN {
      printf "| forEach `true`, %d workers | %d | %.3f | %.3f | %.4f | %.4f | %.2f |\n", w, n, a, b, a*1000/n, b*1000/n, b/a
      printf "| make -j%d, `true` | %d | %.3f | %.3f | %.4f | %.4f | - |\n", w, n, m, m, m*1000/n, m*1000/n }'
  done
  for w in $PEER_WORKLOADS; do
    for st in sqlite postgres; do
      [ -n "${R[peer-$st-new-$w]:-}" ] || continue
      awk -v w="$w" -v st="$st" -v a="${R[peer-$st-base-$w]}" -v b="${R[peer-$st-new-$w]}" 'BEGIN {
        n = w ~ /^fanout/ || w ~ /^layered/ ? 1000 : 100
        printf "| %s (%s, engine mode) | %d | %.4f | %.4f | %.4f | %.4f | %.2f |\n", w, st, n, a, b, a*1000/n, b*1000/n, b/a }'
    done
  done
  if [ -n "${R[mem-new-${nhi:-x}]:-}" ]; then
    echo
    echo "| memory | base | new |"
    echo "| --- | --- | --- |"
    awk -v lo="$nlo" -v hi="$nhi" -v a1="${R[mem-base-$nlo]}" -v a2="${R[mem-base-$nhi]}" \
        -v b1="${R[mem-new-$nlo]}" -v b2="${R[mem-new-$nhi]}" 'BEGIN {
      printf "| max RSS, forEach %d noop | %.1f MiB | %.1f MiB |\n", lo, a1/1024, b1/1024
      printf "| max RSS, forEach %d noop | %.1f MiB | %.1f MiB |\n", hi, a2/1024, b2/1024
      printf "| bytes per finished noop run ((RSS delta) / %d) | %.0f | %.0f |\n", hi-lo, (a2-a1)*1024/(hi-lo), (b2-b1)*1024/(hi-lo) }'
  fi
  if [ -n "${R[fds-new-0]:-}" ]; then
    echo
    echo "| forEach $NFD_TRUE \`true\`, orch holding | base wall s | new wall s | base CPU s | new CPU s | base CPU ms/task | new CPU ms/task |"
    echo "| --- | --- | --- | --- | --- | --- | --- |"
    for n in $FDS; do
      read -r aw ac <<< "${R[fds-base-$n]}"
      read -r bw bc <<< "${R[fds-new-$n]}"
      awk -v n="$n" -v aw="$aw" -v ac="$ac" -v bw="$bw" -v bc="$bc" -v t="$NFD_TRUE" 'BEGIN {
        printf "| %d descriptors | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", n, aw, bw, ac, bc, ac*1000/t, bc*1000/t }'
    done
  fi
  if [ -n "${R[live-new-0]:-}" ]; then
    echo
    echo "| live executions (2 slots) | waiting | base | new |"
    echo "| --- | --- | --- | --- |"
    for k in $WAITING; do
      read -r as ad <<< "${R[live-base-$k]}"
      read -r bs bd <<< "${R[live-new-$k]}"
      echo "| short executions completed/s | $k | $as | $bs |"
      [ "$k" = 0 ] || echo "| waiting executions drained/s | $k | $ad | $bd |"
    done
  fi
} > "$out"
cat "$out"
