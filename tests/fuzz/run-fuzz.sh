#!/bin/sh
# run-fuzz.sh BINARY CORPUS WORKDIR: fuzz for a bounded time (FUZZ_SECONDS, default 30)
# starting from the seed corpus; new inputs go to WORKDIR, never into the source tree.
set -e
bin="$1"; corpus="$2"; work="$3"
mkdir -p "$work"
exec "$bin" -max_total_time="${FUZZ_SECONDS:-30}" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work" "$corpus"
