#!/bin/sh
# stop-pg.sh DIR: stop the cluster start-pg.sh started in DIR and remove DIR.
set -eu
dir="${1:?usage: stop-pg.sh DIR}"
if [ -z "${PGBIN:-}" ]; then
  PGBIN=/usr/lib/postgresql/15/bin
  [ -x "$PGBIN/pg_ctl" ] || PGBIN=$(pg_config --bindir 2>/dev/null || echo /nonexistent)
fi
if [ -f "$dir/data/postmaster.pid" ]; then
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  else
    "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
fi
rm -rf "$dir"
