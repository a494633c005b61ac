#!/bin/sh
# ctl-pg.sh DIR stop|start|restart: stop or start again the cluster start-pg.sh
# started in DIR, on the same port (tests of a database that goes away).
set -eu
dir="${1:?usage: ctl-pg.sh DIR stop|start|restart}"
what="${2:?usage: ctl-pg.sh DIR stop|start|restart}"
if [ -z "${PGBIN:-}" ]; then
  PGBIN=/usr/lib/postgresql/15/bin
  [ -x "$PGBIN/pg_ctl" ] || PGBIN=$(pg_config --bindir 2>/dev/null || echo /nonexistent)
fi
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$what" in
  stop) as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null ;;
  start|restart)
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -m fast -w -t 60 \
      -o "$(cat "$dir/opts")" "$what" >/dev/null ;;
  *) echo "ctl-pg.sh: unknown action '$what'" >&2; exit 2 ;;
esac
