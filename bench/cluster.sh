#!/bin/sh
# bench/cluster.sh: orch on PostgreSQL with 1, 2 and 3 nodes (see cluster.py).
exec /usr/bin/python3 "$(dirname "$0")/cluster.py" "$@"
