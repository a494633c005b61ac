"""
`make install` (PREFIX, DESTDIR) and `make uninstall` into a temporary root; the systemd
units (hardened, Type=notify, reload by SIGHUP; `systemd-analyze verify` accepts them); and
`make deb`: the package's files, control fields (Depends from the linked libraries plus the
dlopen()ed ones), conffiles and maintainer scripts, checked with dpkg-deb. Installing the
package on a new Debian 12 is scripts/test-deb.sh (minutes: not part of make test).
"""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ORCH, REPO, base_env


def make(*args, env=None):
    e = base_env(env)
    res = subprocess.run(["make", "-s", "-C", str(REPO), *args, f"ORCH={ORCH}"],
                         capture_output=True, text=True, env=e, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert res.returncode == 0, f"make {' '.join(args)}: {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res


def files_under(root):
    out = set()
    for d, _, fs in os.walk(root):
        for f in fs:
            out.add("/" + os.path.relpath(os.path.join(d, f), root))
    return out


USR_FILES = {"/usr/bin/orch", "/usr/share/man/man1/orch.1", "/usr/share/man/man5/orch-workflow.5",
             "/usr/share/bash-completion/completions/orch",
             "/usr/share/zsh/vendor-completions/_orch",
             "/usr/share/fish/vendor_completions.d/orch.fish",
             "/lib/systemd/system/orch-server.service", "/lib/systemd/system/orch-worker.service"}


def unit_settings(text):
    s = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            s.setdefault(m.group(1), []).append(m.group(2))
    return s


def test_make_install_prefix_usr(tmp_path):
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", "PREFIX=/usr")
    assert files_under(root) == USR_FILES
    assert os.access(root / "usr/bin/orch", os.X_OK)
    assert (root / "usr/share/man/man1/orch.1").stat().st_mode & 0o777 == 0o644
    res = subprocess.run([str(root / "usr/bin/orch"), "version"], capture_output=True,
                         text=True, env=base_env(), timeout=30)
    assert res.returncode == 0 and res.stdout.startswith("orch "), res
    for unit, verb in (("orch-server", "server"), ("orch-worker", "worker")):
        s = unit_settings((root / f"lib/systemd/system/{unit}.service").read_text())
        assert s["ExecStart"] == [f"/usr/bin/orch {verb} $ORCH_{verb.upper()}_OPTS"], s
        assert s["Type"] == ["notify"]
        assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
        for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                          ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                          ("StateDirectory", "orch"), ("User", "orch"), ("KillMode", "mixed")):
            assert s.get(key) == [want], (unit, key, s.get(key))
        assert "WatchdogSec" in s and "EnvironmentFile" in s
        # The data directory comes from /etc/orch/orch.conf, which an Environment= would
        # override (environment > file).
        assert not any("ORCH_DATA_DIR" in e for e in s.get("Environment", [])), s["Environment"]
    make("uninstall", f"DESTDIR={root}", "PREFIX=/usr")
    assert files_under(root) == set()


def test_make_install_prefix_usr_local(tmp_path):
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", "PREFIX=/usr/local")
    want = {f.replace("/usr/", "/usr/local/") if f.startswith("/usr/")
            else "/usr/local" + f for f in USR_FILES}
    assert files_under(root) == want
    unit = (root / "usr/local/lib/systemd/system/orch-server.service").read_text()
    assert "ExecStart=/usr/local/bin/orch server $ORCH_SERVER_OPTS" in unit


def test_units_verify(tmp_path):
    """systemd-analyze verify (works without a running systemd) on the units as installed,
    their ExecStart pointed at this build's binary."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (the package systemd)")
    for unit in ("orch-server", "orch-worker"):
        text = (REPO / "dist/systemd" / f"{unit}.service").read_text()
        path = tmp_path / f"{unit}.service"
        path.write_text(text.replace("@BINDIR@/orch", str(ORCH)))
        res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)], capture_output=True,
                             text=True, timeout=60, env=base_env())
        problems = [ln for ln in res.stderr.splitlines()
                    if unit in ln and "User=orch" not in ln]
        assert not problems, res.stderr


def test_make_deb(tmp_path):
    out = tmp_path / "deb"
    res = make("deb", f"DEB_OUT={out}", env={"DEB_COMPRESS": "gzip"})
    deb = res.stdout.strip().splitlines()[-1]
    assert re.search(r"/orch_\d+\.\d+\.\d+-1_[a-z0-9]+\.deb$", deb), deb

    def dpkg_deb(*args):
        r = subprocess.run(["dpkg-deb", *args, deb], capture_output=True, text=True,
                           timeout=60, env=base_env())
        assert r.returncode == 0, r.stderr
        return r.stdout

    listing = dpkg_deb("-c")
    paths = {ln.split()[-1].lstrip(".") for ln in listing.splitlines()}
    for f in ("/usr/bin/orch", "/usr/share/man/man1/orch.1.gz",
              "/usr/share/man/man5/orch-workflow.5.gz",
              "/usr/share/bash-completion/completions/orch",
              "/usr/share/zsh/vendor-completions/_orch",
              "/usr/share/fish/vendor_completions.d/orch.fish",
              "/lib/systemd/system/orch-server.service",
              "/lib/systemd/system/orch-worker.service", "/etc/default/orch",
              "/etc/orch/orch.conf",
              "/etc/orch/workflows/"):
        assert f in paths, f"{f} not in the package:\n{listing}"
    # Owned by root, and the root directory is not left 0700.
    for ln in listing.splitlines():
        assert " root/root " in ln, ln
    assert listing.splitlines()[0].startswith("drwxr-xr-x"), listing.splitlines()[0]

    fields = {}
    for name in ("Package", "Version", "Architecture", "Depends", "Maintainer",
                 "Installed-Size", "Description"):
        fields[name] = dpkg_deb("-f").split(f"{name}: ", 1)[1].split("\n", 1)[0]
    assert fields["Package"] == "orch"
    depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
    for pkg in ("libjansson4", "libsqlite3-0", "libpq5", "libsodium23", "libc6",
                "libmicrohttpd12", "libcurl4", "adduser"):
        assert pkg in depends, fields["Depends"]

    info = dpkg_deb("-I")
    for script in ("postinst", "prerm", "postrm", "conffiles", "md5sums"):
        assert re.search(rf"\s{script}\s", info), info
    ctl = tmp_path / "ctl"
    subprocess.run(["dpkg-deb", "-e", deb, str(ctl)], check=True, timeout=60)
    assert (ctl / "conffiles").read_text().split() == ["/etc/default/orch", "/etc/orch/orch.conf"]
    for script in ("postinst", "prerm", "postrm"):
        r = subprocess.run(["sh", "-n", str(ctl / script)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert os.access(ctl / script, os.X_OK)
    postinst = (ctl / "postinst").read_text()
    assert "adduser --system --group --home /var/lib/orch" in postinst
    assert "deb-systemd-helper" in postinst and "/run/systemd/system" in postinst
    assert "deb-systemd-invoke stop" in (ctl / "prerm").read_text()
    assert "chgrp orch /etc/orch/orch.conf" in postinst and "chmod 0640 /etc/orch/orch.conf" in postinst

    # The packaged orch.conf is a valid config file that sets the services' data directory.
    data = tmp_path / "data"
    subprocess.run(["dpkg-deb", "-x", deb, str(data)], check=True, timeout=60)
    res = subprocess.run([str(ORCH), "config", "show", "--json", "--config",
                          str(data / "etc/orch/orch.conf")], capture_output=True, text=True,
                         timeout=30, env=base_env(), stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    data_dir = [s for s in json.loads(res.stdout)["settings"] if s["name"] == "ORCH_DATA_DIR"]
    assert data_dir and data_dir[0]["value"] == "/var/lib/orch" and data_dir[0]["source"] == "file", \
        res.stdout
