#!/bin/sh
# start-pg.sh [DIR]: start a private PostgreSQL cluster for tests and print its URL.
#
# initdb's a cluster in DIR (default: a new temp dir), starts it on a free
# loopback port with its socket in DIR/sock (trust auth, superuser
# "postgres"), and prints "postgresql://postgres@127.0.0.1:PORT/postgres" on
# stdout. Stop it with tests/pg/stop-pg.sh DIR. Run as root, the server runs
# as the "postgres" user (runuser). PGBIN overrides the binaries' directory
# (default: /usr/lib/postgresql/15/bin, then pg_config --bindir).
# Exits non-zero if PostgreSQL is not installed: install-deps.sh test installs it.
set -eu

dir="${1:-}"
if [ -z "$dir" ]; then
  dir=$(mktemp -d /tmp/orch-pg-XXXXXX)
else
  mkdir -p "$dir"
fi

if [ -z "${PGBIN:-}" ]; then
  PGBIN=/usr/lib/postgresql/15/bin
  [ -x "$PGBIN/initdb" ] || PGBIN=$(pg_config --bindir 2>/dev/null || echo /nonexistent)
fi
if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then
  echo "start-pg.sh: no PostgreSQL server binaries (initdb, pg_ctl) in $PGBIN;" \
       "install postgresql-15 (scripts/install-deps.sh test)" >&2
  exit 1
fi

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

mkdir -p "$dir/data" "$dir/sock"
: >"$dir/pg.log"
if [ "$(id -u)" = 0 ]; then chown postgres "$dir" "$dir/data" "$dir/sock" "$dir/pg.log"; fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + $$ % 20000))
}

as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
  echo "start-pg.sh: initdb failed:" >&2; cat "$dir/initdb.log" >&2; exit 1; }

# A port may be taken between free_port and the start: try a few.
tries=0
while :; do
  port=$(free_port)
  opts="-p $port -c listen_addresses=127.0.0.1 -k $dir/sock -c fsync=off -c max_connections=100"
  if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t 60 -o "$opts" \
      start >/dev/null 2>&1; then
    break
  fi
  tries=$((tries + 1))
  if [ "$tries" -ge 5 ]; then
    echo "start-pg.sh: cannot start PostgreSQL; its log:" >&2; tail -n 20 "$dir/pg.log" >&2; exit 1
  fi
done
echo "$port" >"$dir/port"
echo "$opts" >"$dir/opts"   # for ctl-pg.sh (a restart on the same port)
echo "postgresql://postgres@127.0.0.1:$port/postgres"
