#!/bin/sh
# test-deb.sh: build the Debian package and install, use, remove and purge it, on a
# throw-away Debian 12 (it installs packages and creates a system user), e.g.
#   ../shared/fresh-machine/run.sh scripts/test-deb.sh   (from the checkout; commit first)
# Also `make install` / `make uninstall` for real. Takes minutes: not part of `make test`
# (tests/e2e/test_packaging.py checks the package's contents there).
set -eu
[ "${CI:-}" = true ] || [ "${ORCH_TEST_DEB:-}" = 1 ] || {
  echo "test-deb.sh: run it on a throw-away Debian 12 (CI=true, or ORCH_TEST_DEB=1)" >&2
  exit 2
}
[ "$(id -u)" = 0 ] || { echo "test-deb.sh: needs root" >&2; exit 2; }
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
PORT=${PORT:-18080}
step() { echo "==> $*"; }
fail() { echo "test-deb.sh: FAILED: $*" >&2; exit 1; }

step "build and package"
make -s build >/dev/null
deb=$(make -s deb | tail -n 1)
[ -f "$deb" ] || fail "make deb made no package"
dpkg-deb -I "$deb" | sed -n 's/^ \(Depends\|Version\|Installed-Size\):/  \1:/p'

step "make install / uninstall (PREFIX=/usr/local)"
make -s install PREFIX=/usr/local
/usr/local/bin/orch version
for f in /usr/local/share/man/man1/orch.1 /usr/local/share/man/man5/orch-workflow.5 \
         /usr/local/share/bash-completion/completions/orch /usr/local/lib/systemd/system/orch-server.service; do
  [ -f "$f" ] || fail "make install did not install $f"
done
grep -q '^ExecStart=/usr/local/bin/orch server' /usr/local/lib/systemd/system/orch-server.service ||
  fail "ExecStart of the installed unit"
make -s uninstall PREFIX=/usr/local
[ ! -e /usr/local/bin/orch ] || fail "make uninstall left /usr/local/bin/orch"

step "remove the build dependencies: the package must bring what it needs"
apt-get purge -y -q --auto-remove build-essential cmake pkgconf libjansson-dev libsqlite3-dev \
  libcurl4-openssl-dev libmicrohttpd-dev libsodium-dev libpq-dev >/dev/null
! dpkg-query -W -f='${Status}\n' libmicrohttpd12 2>/dev/null | grep -q "install ok installed" ||
  echo "  (libmicrohttpd12 stayed installed)"

step "install: apt-get install ./$(basename "$deb")"
apt-get install -y -q "./$deb" >/dev/null
command -v orch >/dev/null || fail "no orch on PATH"
orch version
if ldd /usr/bin/orch | grep -q "not found"; then ldd /usr/bin/orch; fail "missing libraries"; fi
getent passwd orch >/dev/null || fail "no orch user"
uid=$(id -u orch)
[ "$uid" -lt 1000 ] || fail "orch is not a system user (uid $uid)"
[ "$(getent passwd orch | cut -d: -f6)" = /var/lib/orch ] || fail "home of orch"
[ "$(stat -c '%U:%G %a' /var/lib/orch)" = "orch:orch 750" ] || fail "/var/lib/orch: $(stat -c '%U:%G %a' /var/lib/orch)"
[ -f /lib/systemd/system/orch-server.service ] || fail "no orch-server.service"
[ -L /etc/systemd/system/multi-user.target.wants/orch-server.service ] ||
  fail "orch-server.service is not enabled"
[ ! -e /etc/systemd/system/multi-user.target.wants/orch-worker.service ] ||
  fail "orch-worker.service should not be enabled"
[ -f /etc/default/orch ] && [ -d /etc/orch/workflows ] || fail "/etc/default/orch, /etc/orch/workflows"
[ "$(stat -c '%U:%G %a' /etc/orch/orch.conf)" = "root:orch 640" ] ||
  fail "/etc/orch/orch.conf: $(stat -c '%U:%G %a' /etc/orch/orch.conf 2>&1)"
[ -f /usr/share/man/man1/orch.1.gz ] && [ -f /usr/share/bash-completion/completions/orch ] ||
  fail "man page, completion"

step "run the server as the unit does (user orch, the data directory of /etc/orch/orch.conf, --register /etc/orch/workflows)"
cat > /etc/orch/workflows/hello.json <<'JSON'
{"name": "hello", "tasks": [{"name": "hi", "command": ["echo", "hello"]}]}
JSON
as_orch() { (cd /var/lib/orch && exec setpriv --reuid=orch --regid=orch --init-groups \
  env HOME=/var/lib/orch "$@"); }
# (setpriv and env exec: $! is the server's pid, which the signals below must reach)
top=$(pwd)
cd /var/lib/orch
setpriv --reuid=orch --regid=orch --init-groups env HOME=/var/lib/orch \
  orch server --listen "127.0.0.1:$PORT" --register /etc/orch/workflows >/tmp/orch-server.log 2>&1 &
pid=$!
cd "$top"
KEY=$(as_orch orch keys create --name test --scope admin 2>/dev/null)
export ORCH_SERVER="http://127.0.0.1:$PORT" ORCH_API_KEY="$KEY"
ok=0
for _ in $(seq 1 100); do
  if orch health >/dev/null 2>&1; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
[ $ok = 1 ] || { cat /tmp/orch-server.log; fail "the server did not answer (libmicrohttpd, libcurl)"; }
[ "$(orch workflows list --names)" = hello ] || fail "hello not registered"
orch trigger hello --wait >/dev/null || fail "orch trigger hello --wait"
step "reload (SIGHUP, as systemctl reload does)"
cat > /etc/orch/workflows/second.json <<'JSON'
{"name": "second", "tasks": [{"name": "t", "command": "true"}]}
JSON
kill -HUP "$pid"
for _ in $(seq 1 50); do
  orch workflows list --names | grep -qx second && break
  sleep 0.2
done
orch workflows list --names | grep -qx second || fail "SIGHUP did not register second.json"
kill -TERM "$pid"
wait "$pid" || fail "the server exited with $?"
unset ORCH_SERVER ORCH_API_KEY
[ -s /var/lib/orch/orch.db ] || fail "no store in /var/lib/orch"

step "install again over itself (upgrade path)"
dpkg -i "$deb" >/dev/null

step "dpkg -r orch"
dpkg -r orch >/dev/null
[ ! -e /usr/bin/orch ] || fail "remove left /usr/bin/orch"
[ ! -e /lib/systemd/system/orch-server.service ] || fail "remove left the unit"
[ -f /etc/default/orch ] && [ -f /etc/orch/orch.conf ] || fail "remove took a conffile"
[ -d /var/lib/orch ] || fail "remove took /var/lib/orch (only purge does)"

step "dpkg --purge orch"
dpkg --purge orch >/dev/null
[ ! -e /etc/default/orch ] || fail "purge left /etc/default/orch"
[ ! -e /etc/orch/orch.conf ] || fail "purge left /etc/orch/orch.conf"
[ ! -e /var/lib/orch ] || fail "purge left /var/lib/orch"
if ls /etc/systemd/system/*orch* /etc/systemd/system/*/*orch* 2>/dev/null | grep -q .; then
  ls -l /etc/systemd/system/*orch* /etc/systemd/system/*/*orch* 2>/dev/null
  fail "purge left unit links"
fi
[ ! -e /etc/orch/workflows/hello.json ] || echo "  (the definitions put in /etc/orch/workflows stay: they are the admin's)"

step "install after purge (the orch user exists already), purge again"
dpkg -i "$deb" >/dev/null
[ -d /var/lib/orch ] || fail "reinstall: no /var/lib/orch"
dpkg --purge orch >/dev/null

echo "test-deb.sh: OK"
