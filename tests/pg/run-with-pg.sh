#!/bin/sh
# run-with-pg.sh COMMAND...: run COMMAND with ORCH_TEST_PG set to the URL of a
# private PostgreSQL server started for it (start-pg.sh), stopped afterwards.
# Fails (does not skip) when PostgreSQL is missing: install-deps.sh installs it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/orch-pg-XXXXXX)
trap '"$here/stop-pg.sh" "$dir" || true' EXIT INT TERM
url=$("$here/start-pg.sh" "$dir")
ORCH_TEST_PG="$url" "$@"
