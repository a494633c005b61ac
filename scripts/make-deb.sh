#!/bin/sh
# make-deb.sh BINARY OUTDIR: build the Debian package of orch with dpkg-deb (no debhelper):
# `make install DESTDIR=<stage> PREFIX=/usr` plus /etc/orch/orch.conf, /etc/default/orch,
# /etc/orch/workflows and the maintainer scripts of dist/debian/ (the orch user, /var/lib/orch,
# the units). Depends comes from
# the libraries the binary links (their Debian packages, found with dpkg -S), plus those it
# dlopen()s (libmicrohttpd12, libcurl4) and adduser. Prints the path of the .deb.
# DEB_COMPRESS: dpkg-deb's compressor (default xz; the tests use gzip, faster).
set -eu
bin=$1
out=$2
top=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^project(orch VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
arch=$(dpkg --print-architecture)
[ -x "$bin" ] || { echo "make-deb: no binary at '$bin' (make build first)" >&2; exit 2; }
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/orch-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"

make -s -C "$top" install-files ORCH="$bin" DESTDIR="$stage" PREFIX=/usr
strip --strip-unneeded -R .comment "$stage/usr/bin/orch" 2>/dev/null || true
gzip -9n "$stage"/usr/share/man/man*/*
install -d "$stage/etc/default" "$stage/etc/orch/workflows" "$stage/DEBIAN" \
  "$stage/usr/share/doc/orch"
install -m 0644 "$top/dist/debian/default" "$stage/etc/default/orch"
# The services' data directory (ORCH_DATA_DIR); postinst makes it 0640 root:orch.
install -m 0644 "$top/dist/orch.conf" "$stage/etc/orch/orch.conf"
install -m 0644 "$top/README.md" "$stage/usr/share/doc/orch/README.md"
for f in postinst prerm postrm; do install -m 0755 "$top/dist/debian/$f" "$stage/DEBIAN/$f"; done
printf '%s\n' /etc/default/orch /etc/orch/orch.conf > "$stage/DEBIAN/conffiles"

# Depends: the package of each library the binary needs (one dpkg -S for them all).
patterns=""
for lib in $(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }'); do
  path=$(ldd "$bin" | awk -v l="$lib" '$1 == l { print $3 }')
  [ -n "$path" ] && patterns="$patterns */$(basename "$(dirname "$path")")/$lib"
done
# shellcheck disable=SC2086
set -f
deps=$(dpkg -S $patterns 2>/dev/null | sed 's/[:,].*//' | sort -u | tr '\n' ' ')
set +f
deps="$deps libmicrohttpd12 libcurl4 adduser"
depends=$(printf '%s\n' $deps | sort -u | paste -sd, - | sed 's/,/, /g')

size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat > "$stage/DEBIAN/control" <<CTRL
Package: orch
Version: $version-1
Architecture: $arch
Maintainer: orch developers <orch@localhost>
Installed-Size: $size
Depends: $depends
Section: admin
Priority: optional
Description: workflow orchestrator: DAGs of tasks, schedules, HTTP API
 orch runs workflows (DAGs of shell, HTTP and sub-workflow tasks) with retries,
 timeouts, fan-out and cron schedules, from the command line or as a server with
 an HTTP API, on SQLite or a shared PostgreSQL database. This package runs it as
 the systemd service orch-server (user orch, data in /var/lib/orch).
CTRL
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
  xargs md5sum > DEBIAN/md5sums)
deb="$out/orch_${version}-1_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESS:-xz}" --build "$stage" "$deb" >/dev/null
echo "$deb"
