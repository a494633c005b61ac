#!/bin/sh
# bench/sched-lag.sh: how late the scheduler fires.
#
# A fresh data directory with an admin key made offline, `orch server` on a free loopback
# port with a workflow whose one noop task has an "every": "1s" schedule (registered with
# --register), then about $FIRES fires; the firing lag of each execution is its createdAt
# minus its scheduledFor, read through the API (GET /v1/executions?workflow=...). Prints
# the count and the lag's p50, p99 and max in milliseconds.
#
# Environment: ORCH_BIN (default: builds build-bench/ in Release), FIRES (30), KEEP=1 keeps
# the data directory. Needs: curl, /usr/bin/python3.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
FIRES=${FIRES:-30}
PY=/usr/bin/python3

for tool in curl "$PY"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "sched-lag: '$tool' is missing" >&2; exit 2; }
done
if [ -z "${ORCH_BIN:-}" ]; then
  cmake -S "$repo" -B "$repo/build-bench" -DCMAKE_BUILD_TYPE=Release -DWERROR=OFF >/dev/null
  cmake --build "$repo/build-bench" -j"$(nproc)" --target orch >/dev/null
  ORCH_BIN="$repo/build-bench/src/cli/orch"
fi
[ -x "$ORCH_BIN" ] || { echo "sched-lag: no orch binary at '$ORCH_BIN'" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/orch-sched-lag.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM

data="$work/data"
cat >"$work/tick.json" <<'JSON'
{"name": "bench-tick", "tasks": [{"name": "n", "type": "noop"}],
 "schedules": [{"name": "every-second", "every": "1s", "overlap": "allow"}]}
JSON
ORCH_API_KEY=$("$ORCH_BIN" keys create --name bench --scope admin --data-dir "$data" --json |
  "$PY" -c 'import json,sys; print(json.load(sys.stdin)["key"])')
export ORCH_API_KEY
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$ORCH_BIN" server --listen "127.0.0.1:$port" --data-dir "$data" --register "$work/tick.json" \
  --log-level warn 2>"$work/server.log" &
server_pid=$!
i=0
until curl -sf "$url/v1/health/scheduler" >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 300 ] || { echo "sched-lag: the server did not start:" >&2; cat "$work/server.log" >&2; exit 1; }
  kill -0 "$server_pid" 2>/dev/null || { echo "sched-lag: the server exited:" >&2; cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done

echo "sched-lag: waiting for $FIRES fires of an every-1s schedule ($url)"
sleep $((FIRES + 1))

curl -sf -H "Authorization: Bearer $ORCH_API_KEY" \
  "$url/v1/executions?workflow=bench-tick&limit=1000" >"$work/executions.json"
"$PY" - "$work/executions.json" <<'PYEOF'
import json, sys
from datetime import datetime

def ms(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1000

items = json.load(open(sys.argv[1]))["items"]
lags = sorted(ms(e["createdAt"]) - ms(e["scheduledFor"]) for e in items if e["scheduledFor"])
if not lags:
    sys.exit("sched-lag: no scheduled executions")
due = [e["scheduledFor"] for e in items if e["scheduledFor"]]
def pct(p):
    return lags[min(len(lags) - 1, int(round(p / 100.0 * (len(lags) - 1))))]
print(f"fires        {len(lags)} (distinct due times: {len(set(due))})")
print(f"lag p50      {pct(50):.0f} ms")
print(f"lag p99      {pct(99):.0f} ms")
print(f"lag max      {lags[-1]:.0f} ms")
PYEOF
