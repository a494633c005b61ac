#!/bin/sh
# install-deps.sh [build|test|bench]: install the Debian 12 packages orch needs,
# only those missing (idempotent). Runs apt-get as root (or through sudo).
set -eu
what="${1:-build}"

build="build-essential cmake pkgconf libjansson-dev libsqlite3-dev tzdata libcurl4-openssl-dev libmicrohttpd-dev libsodium-dev libpq-dev libyaml-dev zlib1g-dev libhiredis-dev libssl-dev"
test="$build postgresql-15 clang libclang-rt-14-dev libcmocka-dev python3 python3-pytest python3-croniter procps python3-jsonschema python3-yaml curl openssl"
bench="$build hyperfine time wrk python3 curl"
# the man page and shell completion tests
test="$test groff-base zsh fish"
# the disk-full test mounts a tmpfs; the packaging test checks the units with systemd-analyze
test="$test mount systemd"
# the web UI tests drive a headless Chromium (tests/e2e/test_ui.py)
test="$test chromium chromium-driver python3-selenium"
# /metrics is checked with promtool and scraped by a real Prometheus (tests/e2e/test_metrics.py)
test="$test prometheus"
# a node with a skewed clock runs under libfaketime (tests/e2e/test_doctor.py)
test="$test faketime"
# Redis tests start their own redis-server (tests/e2e/redisutil.py); redis-cli for people
test="$test redis-server redis-tools"

case "$what" in
  build) pkgs="$build" ;;
  test)  pkgs="$test" ;;
  bench) pkgs="$bench" ;;
  *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "installing:$missing" >&2
$SUDO apt-get update -q >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >&2
# Debian starts the redis-server service it installs: the tests never use it (each starts
# its own on a free port), so stop it where systemd runs, and leave none behind elsewhere.
case " $missing " in
  *" redis-server "*)
    if [ -d /run/systemd/system ]; then
      $SUDO systemctl disable --now redis-server >&2 || true
    else
      for f in /run/redis/redis-server.pid /var/run/redis/redis-server.pid; do
        [ -f "$f" ] && $SUDO kill "$(cat "$f")" 2>/dev/null || true
      done
    fi ;;
esac
