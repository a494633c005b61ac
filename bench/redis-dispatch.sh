#!/bin/sh
# bench/redis-dispatch.sh: 3 nodes with and without Redis, in one run (see redis-dispatch.py).
exec /usr/bin/python3 "$(dirname "$0")/redis-dispatch.py" "$@"
