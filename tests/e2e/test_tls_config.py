"""
Serving in production: HTTPS (`orch server --tls-cert/--tls-key`, the CLI verifying the
server with `--cacert`), the config file (`--config`, ORCH_CONFIG; precedence flag >
environment > file > default; `orch config show`), the probes /v1/health/live and
/v1/health/ready without a key, and the Authorization scheme in any case.

The certificates are made here with openssl: a self-signed one for 127.0.0.1/localhost
(its own CA), and an unrelated one.
"""
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from apiutil import Resp, Server, server  # noqa: F401
from conftest import ORCH, base_env


def make_cert(dirpath, name, cn="localhost"):
    cert, key = dirpath / f"{name}.pem", dirpath / f"{name}.key"
    res = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-subj", f"/CN={cn}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-days", "1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return cert, key


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("certs")
    return {"good": make_cert(d, "server"), "other": make_cert(d, "other", cn="other")}


class TlsServer(Server):
    """An orch server on HTTPS; requests verify it with its own certificate as the CA."""

    def __init__(self, tmp, cert, key, **kw):
        super().__init__(tmp, **kw)
        self.cert, self.key = cert, key
        self.ctx = ssl.create_default_context(cafile=str(cert))
        self.opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=self.ctx))

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def start(self, timeout=30, extra=()):
        return super().start(timeout, extra=["--tls-cert", str(self.cert), "--tls-key",
                                             str(self.key)] + list(extra))

    def request(self, method, path, body=None, headers=None, key=None, check=False, timeout=30,
                raw=None):
        h = dict(headers or {})
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url + path, data=raw, headers=h, method=method)
        try:
            with self.opener.open(req, timeout=timeout) as r:
                return Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.headers, e.read())


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, certs):
    s = TlsServer(tmp_path_factory.mktemp("tls"), *certs["good"])
    try:
        s.start()
        yield s
        assert s.stop() == 0, s.log()[-3000:]
        s.assert_log_clean()
    finally:
        s.cleanup()


def orch(*args, env=None, cwd=None, timeout=60):
    e = base_env()
    e.update(env or {})
    return subprocess.run([str(ORCH)] + [str(a) for a in args], capture_output=True, text=True,
                          errors="replace", timeout=timeout, env=e, cwd=cwd,
                          stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------- TLS

def test_https_with_the_ca(tls_server, certs):
    s = tls_server
    assert f"listening on https://127.0.0.1:{s.port}" in s.log()
    r = s.request("GET", "/v1/health", key=s.admin_key)
    assert r.status == 200 and r.json["status"] in ("ok", "degraded"), r
    # curl, as a user would
    res = subprocess.run(["curl", "-sS", "--cacert", str(certs["good"][0]), "-H",
                          f"Authorization: Bearer {s.admin_key}", f"{s.url}/v1/workflows"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and json.loads(res.stdout)["items"] == [], res
    # the CLI client: --cacert, or ORCH_CACERT
    res = orch("health", "--server", s.url, "--api-key", s.admin_key, "--cacert",
               certs["good"][0])
    assert res.returncode == 0, res.stderr
    res = orch("workflows", "list", "--server", s.url, "--api-key", s.admin_key,
               env={"ORCH_CACERT": str(certs["good"][0])})
    assert res.returncode == 0, res.stderr


def test_cli_refuses_an_unverified_server(tls_server, certs):
    s = tls_server
    for extra in ([], ["--cacert", certs["other"][0]]):
        res = orch("health", "--server", s.url, "--api-key", s.admin_key, *extra)
        assert res.returncode != 0, res
        assert "cannot verify the TLS certificate of " + s.url in res.stderr, res.stderr
        assert "--cacert" in res.stderr, res.stderr
    # with the CA, but the server named by another name than its certificate's
    res = orch("health", "--server", f"https://127.0.0.2:{s.port}", "--api-key", s.admin_key,
               "--cacert", certs["good"][0])
    assert res.returncode != 0
    # a CA file that is not there
    res = orch("health", "--server", s.url, "--api-key", s.admin_key, "--cacert",
               "/nonexistent/ca.pem")
    assert res.returncode != 0 and "/nonexistent/ca.pem" in res.stderr, res.stderr


def test_plain_http_to_the_tls_port_fails_cleanly(tls_server):
    s = tls_server
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"GET /v1/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        try:
            while True:
                b = c.recv(4096)
                if not b:
                    break
                got += b
        except ConnectionResetError:
            pass
    assert not got.startswith(b"HTTP/1.1 200"), got
    assert time.monotonic() - t0 < 8
    res = orch("health", "--server", f"http://127.0.0.1:{s.port}", "--api-key", s.admin_key)
    assert res.returncode != 0
    assert "https://" in res.stderr, res.stderr
    # and the server goes on serving HTTPS
    assert s.request("GET", "/v1/health/live").status == 200


def test_bad_tls_files_fail_at_start(tmp_path, certs):
    good_cert, good_key = certs["good"]
    other_cert, other_key = certs["other"]
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    data = tmp_path / "data"
    cases = [
        (["--tls-cert", good_cert], "both a certificate and its key"),
        (["--tls-cert", good_cert, "--tls-key", tmp_path / "missing.key"],
         "cannot read the TLS key"),
        (["--tls-cert", good_cert, "--tls-key", junk], "not a PEM file"),
        (["--tls-cert", good_key, "--tls-key", good_key], "TLS certificate"),
        (["--tls-cert", good_cert, "--tls-key", other_key], "cannot use the TLS certificate"),
    ]
    for args, want in cases:
        res = orch("server", "--listen", "127.0.0.1:0", "--data-dir", data, *args, timeout=30)
        assert res.returncode == 2, (args, res.returncode, res.stderr)
        assert want in res.stderr, (args, res.stderr)
        assert "AddressSanitizer" not in res.stderr and "runtime error" not in res.stderr


# --------------------------------------------------------------------------- probes

def test_probes_need_no_key_and_say_nothing_more(server):
    for path in ("/v1/health/live", "/v1/health/ready"):
        r = server.get(path, key=None)
        assert r.status == 200, r
        assert r.json == {"status": "ok"}, r.json
        assert server.request("HEAD", path, key=None, check=False).status == 200
    # the details stay behind a key
    assert server.get("/v1/health", key=None).status == 401
    r = server.get("/v1/health")
    assert r.status == 200 and "components" in r.json


# --------------------------------------------------------------------------- Authorization

def test_bearer_scheme_in_any_case(server):
    for scheme in ("bearer", "BEARER", "Bearer", "bEaReR"):
        r = server.get("/v1/workflows", key=None,
                       headers={"Authorization": f"{scheme} {server.admin_key}"})
        assert r.status == 200, (scheme, r)
    for value, why in ((f"bearer  {server.admin_key}", "more than one space"),
                       (f"bearer\t{server.admin_key}", "exactly one space")):
        r = server.get("/v1/workflows", key=None, headers={"Authorization": value})
        assert r.status == 401, r
        assert why in r.json["error"]["message"], r.json


# --------------------------------------------------------------------------- config file

def write_conf(path, text):
    path.write_text(text)
    return path


def show(*args, env=None):
    res = orch("config", "show", "--json", *args, env=env)
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    return doc, {s["name"]: s for s in doc["settings"]}


def test_config_show_precedence_and_masking(tmp_path):
    conf = write_conf(tmp_path / "orch.conf", """
# orch settings
ORCH_LISTEN = 127.0.0.1:9999
ORCH_DATA_DIR = "/srv/orch data"
ORCH_WORKERS=3
DATABASE_URL = postgres://orch:s3cret-pw@db.example:5432/orch
ORCH_API_KEY = sk_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG
""")
    doc, s = show("--config", conf)
    assert doc["configFile"] == str(conf)
    assert s["ORCH_LISTEN"]["value"] == "127.0.0.1:9999" and s["ORCH_LISTEN"]["source"] == "file"
    assert s["ORCH_DATA_DIR"]["value"] == "/srv/orch data"
    assert s["ORCH_WORKERS"]["source"] == "file"
    assert s["ORCH_KILL_GRACE"]["source"] == "default" and s["ORCH_KILL_GRACE"]["value"] is None
    assert s["DATABASE_URL"]["value"] == "postgres://orch:****@db.example:5432/orch"
    assert s["ORCH_API_KEY"]["value"] == "sk_abcdefghi****"
    res = orch("config", "show", "--config", conf)
    assert "s3cret-pw" not in res.stdout and "jklmnop" not in res.stdout, res.stdout
    assert "127.0.0.1:9999" in res.stdout and "file" in res.stdout
    # secrets in a file every user can read: a warning (none once it is private)
    conf.chmod(0o644)
    assert "every user can read it" in orch("config", "show", "--config", conf).stderr
    conf.chmod(0o600)
    assert "warning" not in orch("config", "show", "--config", conf).stderr
    # the environment over the file, a flag over the environment; ORCH_CONFIG names the file
    env = {"ORCH_CONFIG": str(conf), "ORCH_LISTEN": "127.0.0.1:7777",
           "ORCH_DATA_DIR": "/from/env"}
    doc, s = show(env=env)
    assert doc["configFile"] == str(conf)
    assert s["ORCH_LISTEN"]["value"] == "127.0.0.1:7777" and s["ORCH_LISTEN"]["source"] == "env"
    assert s["ORCH_WORKERS"]["source"] == "file"
    doc, s = show("--data-dir", "/from/flag", env=env)
    assert s["ORCH_DATA_DIR"]["value"] == "/from/flag" and s["ORCH_DATA_DIR"]["source"] == "flag"
    # key=value database strings have their password masked too
    conf2 = write_conf(tmp_path / "kv.conf", "DATABASE_URL = host=db password=hunter2 dbname=o\n")
    _, s = show("--config", conf2)
    assert s["DATABASE_URL"]["value"] == "host=db password=**** dbname=o"


def test_config_file_errors(tmp_path):
    cases = [
        ("ORCH_LISTN = 1.2.3.4:80\n", "bad.conf:1: unknown setting 'ORCH_LISTN' (did you mean "
                                      "'ORCH_LISTEN'?)"),
        ("# ok\n\nORCH_WORKERS = 2\nORCH_WORKERS = 3\n", "bad.conf:4: ORCH_WORKERS is set twice"),
        ("ORCH_WORKERS 2\n", "bad.conf:1: expected 'KEY = value'"),
        ("ORCH_CONFIG = /x\n", "ORCH_CONFIG cannot be set"),
    ]
    for text, want in cases:
        conf = write_conf(tmp_path / "bad.conf", text)
        for args in (["config", "show", "--config", conf], ["validate", "--config", conf, "x"]):
            res = orch(*args)
            assert res.returncode == 2, (text, args, res)
            assert want in res.stderr, (text, res.stderr)
    res = orch("config", "show", env={"ORCH_CONFIG": str(tmp_path / "nope.conf")})
    assert res.returncode == 2 and "nope.conf" in res.stderr, res.stderr


def test_server_and_client_from_config_files(tmp_path, certs):
    """A server whose listen address, data directory and TLS files come from its config
    file; a client whose server, key and CA come from another."""
    cert, key = certs["good"]
    s = TlsServer(tmp_path, cert, key)
    s.port = s.port or __import__("apiutil").free_port()
    conf = write_conf(tmp_path / "server.conf", f"""
ORCH_LISTEN = 127.0.0.1:{s.port}
ORCH_TLS_CERT = {cert}
ORCH_TLS_KEY = {key}
ORCH_SHUTDOWN_GRACE = 5s
""")
    s.env["ORCH_CONFIG"] = str(conf)
    try:
        # no --tls-* flags: they come from the file
        Server.start(s)
        assert f"listening on https://127.0.0.1:{s.port}" in s.log()
        client_conf = write_conf(tmp_path / "client.conf", f"""
ORCH_SERVER = {s.url}
ORCH_API_KEY = {s.admin_key}
ORCH_CACERT = {cert}
""")
        res = orch("workflows", "list", "--config", client_conf)
        assert res.returncode == 0, res.stderr
        # the environment over the file: another CA, and the client refuses
        res = orch("workflows", "list", "--config", client_conf,
                   env={"ORCH_CACERT": str(certs["other"][0])})
        assert res.returncode != 0 and "cannot verify" in res.stderr, res.stderr
        assert s.stop() == 0
        s.assert_log_clean()
    finally:
        s.cleanup()
