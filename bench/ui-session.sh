#!/bin/bash
# bench/ui-session.sh ORCH_BIN [LABEL]: the cost of a request signed in by the web UI's session
# cookie, beside the same request with a Bearer key: GET /v1/executions?limit=1 sent by wrk on
# two keep-alive connections for 6 s, three rounds of each; prints requests/s and the server
# process's CPU time per request (utime + stime from /proc, so a loaded machine changes it less
# than the wall time). A fresh data directory (SQLite) and `orch server` on a free port.
set -e
ORCH=$1; LABEL=${2:-orch}
W=$(mktemp -d /tmp/orch-ui-session.XXXX)
KEY=$($ORCH keys create --name b --scope admin --data-dir $W/data --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["key"])')
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
$ORCH server --listen 127.0.0.1:$PORT --data-dir $W/data --workers 2 2>$W/err >/dev/null &
PID=$!
for i in $(seq 100); do curl -sf http://127.0.0.1:$PORT/v1/health/live >/dev/null && break; sleep 0.1; done
T=$(curl -si -X POST -H 'Content-Type: application/json' -d "{\"key\":\"$KEY\"}" http://127.0.0.1:$PORT/v1/session | sed -n 's/^Set-Cookie: orch_session=\([^;]*\);.*/\1/p')
U="http://127.0.0.1:$PORT/v1/executions?limit=1"
cpu() { awk '{print $14+$15}' /proc/$PID/stat; }
run() { # header -> "req/s us-of-server-CPU-per-request"
  c0=$(cpu); out=$(wrk -t1 -c2 -d6s -H "$1" "$U"); c1=$(cpu)
  n=$(echo "$out" | awk '/requests in/ {print $1}'); r=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  echo "$r req/s, $(( (c1 - c0) * 1000000 / $(getconf CLK_TCK) / n )) us CPU/request"
}
for round in 1 2 3; do
  echo "$LABEL round $round: cookie $(run "Cookie: orch_session=$T"); bearer $(run "Authorization: Bearer $KEY")"
done
kill $PID; wait $PID || true
rm -rf $W
