#!/bin/sh
# bench/run.sh [WORKLOAD...]: orch vs make -j2 on the peer workloads (see run.py).
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
