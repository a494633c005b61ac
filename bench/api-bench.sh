#!/bin/sh
# bench/api-bench.sh: throughput and latency of the HTTP API with wrk on loopback.
#
# For each store size in $SIZES (default "10000 1000000"): a fresh data directory, an
# admin key made offline, N finished executions written straight into orch.db by
# bench/api-fill.py (before the server starts), then `orch server` on a free loopback port
# and three bounded wrk runs:
#   list  GET  /v1/executions?status=failed&limit=10 (and again on one connection)
#   get   GET  /v1/executions/{id}          (an execution in the middle of the history)
#   post  POST /v1/workflows/bench-noop/executions   (one noop task: executions created/s)
# plus the server's idle RSS (VmRSS from /proc) after start-up and after the load.
# Prints the figures side by side per size, with the issue's targets.
#
# Environment: ORCH_BIN (default: builds build-bench/ in Release), SIZES, DURATION (10s),
# THREADS (2), CONNS (50), WORKERS (server workers, 4), KEEP=1 keeps the data directories.
# Needs: wrk, curl, /usr/bin/python3 (scripts/install-deps.sh bench).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
SIZES=${SIZES:-"10000 1000000"}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50}
WORKERS=${WORKERS:-4}
PY=/usr/bin/python3

for tool in wrk curl "$PY"; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "api-bench: '$tool' is missing (scripts/install-deps.sh bench)" >&2; exit 2; }
done

if [ -z "${ORCH_BIN:-}" ]; then
  # An optimised build without sanitizers: the figures are about the server, not ASan.
  cmake -S "$repo" -B "$repo/build-bench" -DCMAKE_BUILD_TYPE=Release -DWERROR=OFF >/dev/null
  cmake --build "$repo/build-bench" -j"$(nproc)" --target orch >/dev/null
  ORCH_BIN="$repo/build-bench/src/cli/orch"
fi
[ -x "$ORCH_BIN" ] || { echo "api-bench: no orch binary at '$ORCH_BIN'" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/orch-api-bench.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  [ "${KEEP:-0}" = 1 ] && echo "api-bench: data kept in $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

rss_kib() {
  awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0
}

# run_wrk NAME URL SCRIPT [THREADS CONNS]: one bounded wrk run; output in $out/NAME.txt.
# (sh has no local variables: these names must not clash with the caller's.)
run_wrk() {
  w_name=$1 w_url=$2 w_script=$3 w_t=${4:-$THREADS} w_c=${5:-$CONNS}
  w_secs=$(echo "$DURATION" | sed 's/s$//')
  timeout $((w_secs + 60)) wrk -t"$w_t" -c"$w_c" -d"$DURATION" --latency --timeout 5s \
    -s "$w_script" "$w_url" >"$out/$w_name.txt" 2>&1 || {
      echo "api-bench: wrk $w_name failed:" >&2; cat "$out/$w_name.txt" >&2; exit 1; }
}

# figures FILE: "req/s p50 p90 p99 errors" of a wrk output.
figures() {
  awk '
    /Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = $2 } /^ +90%/ { p90 = $2 } /^ +99%/ { p99 = $2 }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /Socket errors:/ { sock = $0; sub(/.*Socket errors: /, "", sock) }
    END { printf "%s %s %s %s %s\n", rps, p50, p90, p99, (bad ? bad : 0) (sock ? "+sock" : "") }
  ' "$1"
}

export ORCH_API_KEY
for n in $SIZES; do
  out="$work/n$n"
  mkdir -p "$out"
  data="$out/data"
  echo "== $n executions" >&2

  # The key (which also creates and migrates the store), then the history.
  ORCH_API_KEY=$("$ORCH_BIN" keys create --name bench --scope admin --data-dir "$data" --json |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  t0=$(date +%s)
  mid=$("$PY" "$here/api-fill.py" "$data/orch.db" "$n")
  echo "   filled in $(( $(date +%s) - t0 ))s (middle execution $mid)" >&2

  port=$(free_port)
  url="http://127.0.0.1:$port"
  "$ORCH_BIN" server --listen "127.0.0.1:$port" --data-dir "$data" --workers "$WORKERS" \
    --log-level warn 2>"$out/server.log" &
  server_pid=$!
  i=0
  until curl -s -o /dev/null "$url/v1/health/scheduler"; do
    i=$((i + 1))
    [ $i -lt 300 ] || { echo "api-bench: the server did not start:" >&2; cat "$out/server.log" >&2; exit 1; }
    kill -0 "$server_pid" 2>/dev/null || { echo "api-bench: the server exited:" >&2; cat "$out/server.log" >&2; exit 1; }
    sleep 0.1
  done
  sleep 1
  rss_idle=$(rss_kib "$server_pid")

  # A workflow of one noop task for the POSTs (no process per execution).
  curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ORCH_API_KEY" \
    -H 'Content-Type: application/json' \
    -d '{"name":"bench-noop","tasks":[{"name":"nothing","type":"noop"}]}' \
    "$url/v1/workflows" | grep -q '^20[01]$' || { echo "api-bench: cannot create bench-noop" >&2; exit 1; }
  # Check each call once before timing it.
  for path in "/v1/executions?status=failed&limit=10" "/v1/executions/$mid"; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $ORCH_API_KEY" "$url$path")
    [ "$code" = 200 ] || { echo "api-bench: GET $path answered $code" >&2; exit 1; }
  done

  run_wrk list "$url/v1/executions?status=failed&limit=10" "$here/api-get.lua"
  # One connection: the latency of the call itself, without queueing behind others.
  run_wrk list1 "$url/v1/executions?status=failed&limit=10" "$here/api-get.lua" 1 1
  run_wrk get "$url/v1/executions/$mid" "$here/api-get.lua"
  run_wrk post "$url/v1/workflows/bench-noop/executions" "$here/api-post.lua"
  sleep 2
  rss_after=$(rss_kib "$server_pid")

  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""

  {
    echo "list $(figures "$out/list.txt")"
    echo "list1 $(figures "$out/list1.txt")"
    echo "get $(figures "$out/get.txt")"
    echo "post $(figures "$out/post.txt")"
    echo "rss $rss_idle $rss_after"
  } >"$out/summary"
done

# Side by side.
"$PY" - "$work" $SIZES <<'EOF'
import sys
work, sizes = sys.argv[1], sys.argv[2:]
res = {}
for n in sizes:
    d = {}
    for line in open(f"{work}/n{n}/summary"):
        k, *v = line.split()
        d[k] = v
    res[n] = d

def label(n):
    n = int(n)
    return f"{n // 1000000}M" if n % 1000000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)

cols = [label(n) + " executions" for n in sizes]
print(f"{'':38}" + "".join(f"{c:>22}" for c in cols))
rows = [("list  req/s (target >20000)", "list", 0), ("list  p50", "list", 1),
        ("list  p90", "list", 2), ("list  p99 (target <5ms)", "list", 3),
        ("list  non-2xx", "list", 4),
        ("list, 1 connection: req/s", "list1", 0), ("list, 1 connection: p50", "list1", 1),
        ("list, 1 connection: p99", "list1", 3),
        ("get   req/s", "get", 0), ("get   p50", "get", 1), ("get   p99", "get", 3),
        ("get   non-2xx", "get", 4),
        ("post  executions/s (target >2000)", "post", 0), ("post  p50", "post", 1),
        ("post  p99", "post", 3), ("post  non-2xx", "post", 4)]
for title, k, i in rows:
    print(f"{title:38}" + "".join(f"{res[n][k][i]:>22}" for n in sizes))
for title, i in (("idle RSS after start (target <20MB)", 0), ("idle RSS after the load", 1)):
    print(f"{title:38}" + "".join(f"{int(res[n]['rss'][i]) / 1024:>19.1f} MiB" for n in sizes))
EOF
