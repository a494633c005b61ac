"""
rediss:// (TLS to Redis): orch's local TLS tunnel against redis-server's own TLS port, with
certificates this test makes with the openssl command (a CA, a server certificate for
127.0.0.1 and localhost). The test CA works end to end (health, the engine's connection, the
auth-failure limit shared by two nodes); a certificate of another CA, or for another name, is
refused with a clear message and the node runs on PostgreSQL alone; a client certificate is
sent when the server asks for one; the password never appears in the log.
"""
import subprocess

import pytest

from apiutil import free_port, unknown_key
from conftest import SANITIZER_MARKERS, wait_for
from pgutil import Node, Postgres
from redisutil import Redis

PASSWORD = "pw-tls-hunter2"
LIMIT = 4


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt", "-days", "2",
            "-subj", f"/CN={name}", cwd=d)
    return d / f"{name}.crt"


def make_cert(d, ca, name, san, client=False):
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\n" +
                                   ("extendedKeyUsage=clientAuth\n" if client else ""))
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext",
            cwd=d)
    return d / f"{name}.crt", d / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    p = {"dir": d, "ca": make_ca(d, "ca"), "other_ca": make_ca(d, "other-ca")}
    p["server"] = make_cert(d, "ca", "server", "DNS:localhost,IP:127.0.0.1")
    p["elsewhere"] = make_cert(d, "ca", "elsewhere", "DNS:redis.elsewhere.example")
    p["client"] = make_cert(d, "ca", "client", "DNS:orch-client", client=True)
    return p


@pytest.fixture(scope="module")
def pg():
    p = Postgres().start()
    yield p
    p.destroy()


def tls_redis(pki, cert="server", clients="no"):
    """A redis-server with a TLS port (orch's) beside its plain one (the test's own client)."""
    port = free_port()
    crt, key = pki[cert]
    r = Redis(password=PASSWORD, extra=[
        "--tls-port", str(port), "--tls-cert-file", str(crt), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(pki["ca"]), "--tls-auth-clients", clients]).start()
    r.tls_port = port
    return r


@pytest.fixture
def started():
    things = []
    yield things
    for t in things:
        if isinstance(t, Redis):
            t.destroy()
        else:
            t.cleanup()


def node(started, tmp_path, pg_url, name, url, **env):
    n = Node(tmp_path, pg_url, name, env={"ORCH_REDIS_URL": url, **env})
    started.append(n)
    return n


def no_secret(text):
    assert PASSWORD not in text, "the Redis password was shown"
    for m in SANITIZER_MARKERS:
        assert m not in text, text


def tls_url(r, host="127.0.0.1"):
    return f"rediss://:{PASSWORD}@{host}:{r.tls_port}"


def fail_once(n, key):
    r = n.get("/v1/workflows", key=key, check=False)
    assert r.status in (401, 429), r
    return r.status


def runs_a_workflow(n):
    r = n.post("/v1/workflows", {"name": "w", "tasks": [{"name": "t", "command": "true"}]})
    assert r.status in (200, 201), r


def test_rediss_with_the_test_ca_works_end_to_end(pg, pki, started, tmp_path):
    r = tls_redis(pki)
    started.append(r)
    url = pg.database()
    env = {"ORCH_REDIS_TLS_CA_CERT": str(pki["ca"]), "ORCH_AUTH_FAIL_LIMIT": str(LIMIT),
           "ORCH_AUTH_FAIL_WINDOW": "10m"}
    a = node(started, tmp_path, url, "t1", tls_url(r), **env).start()
    b = node(started, tmp_path, url, "t2", tls_url(r, "localhost"), **env).start()
    a.wait_log(f"[Redis] Using rediss://:***@127.0.0.1:{r.tls_port} (Redis 7", timeout=10)
    b.wait_log(f"[Redis] Using rediss://:***@localhost:{r.tls_port} (Redis 7", timeout=10)
    # The API's and the engine's connections both go through the tunnel.
    h = a.get("/v1/health").json["components"]["redis"]
    assert h["status"] == "ok" and h["reachable"] is True and h["version"].startswith("7."), h
    assert h["url"] == f"rediss://:***@127.0.0.1:{r.tls_port}"
    wait_for(lambda: a.get("/v1/health").json["components"]["redis"]["engine"]["connected"],
             what="the engine connected over TLS")
    # The auth-failure limit, shared by the two nodes through Redis over TLS.
    key = unknown_key()
    assert [fail_once((a, b)[i % 2], key) for i in range(LIMIT)] == [401] * LIMIT
    for n in (a, b):
        assert fail_once(n, key) == 429
    assert len(r.command("KEYS", "orch:authfail:*")) == 1
    # The engine's consumer group exists: its commands reached the server.
    assert r.command("EXISTS", "orch:dispatch") == 1
    for n in (a, b):
        no_secret(n.log())


@pytest.mark.parametrize("case", ["other_ca", "other_name"])
def test_a_certificate_it_cannot_trust_is_refused_and_the_node_starts(pg, pki, started, tmp_path,
                                                                     case):
    r = tls_redis(pki, cert="elsewhere" if case == "other_name" else "server")
    started.append(r)
    ca = pki["other_ca"] if case == "other_ca" else pki["ca"]
    n = node(started, tmp_path, pg.database(), "t1", tls_url(r),
             ORCH_REDIS_TLS_CA_CERT=str(ca)).start()
    # (The server may send its CA along: then OpenSSL names it a self-signed one.)
    whys = (("unable to get local issuer certificate", "self-signed certificate in certificate "
             "chain") if case == "other_ca" else ("IP address mismatch",))
    want = (f"WARN [Redis] rediss://:***@127.0.0.1:{r.tls_port}: the server's certificate was "
            "refused: ")
    text = n.wait_log(want, timeout=10)
    line = next(ln for ln in text.splitlines() if want in ln)
    hint = ("(set ORCH_REDIS_TLS_CA_CERT to the CA file that signed it)" if case == "other_ca"
            else "(it is not for 127.0.0.1: put a name or address it is for in the URL)")
    assert any(f"{want}{why} {hint}; running on PostgreSQL alone until Redis answers" in line
               for why in whys), line
    h = n.get("/v1/health")
    assert h.status == 200 and h.json["components"]["redis"]["status"] == "degraded", h.json
    assert any(why in h.json["components"]["redis"]["message"] for why in whys), h.json
    runs_a_workflow(n)
    assert r.command("EXISTS", "orch:dispatch") == 0  # nothing got through
    no_secret(n.log() + h.text)


def test_unreachable_rediss_names_the_url_and_starts(pg, pki, started, tmp_path):
    port = free_port()
    n = node(started, tmp_path, pg.database(), "t1", f"rediss://:{PASSWORD}@127.0.0.1:{port}",
             ORCH_REDIS_TLS_CA_CERT=str(pki["ca"])).start()
    n.wait_log(f"WARN [Redis] cannot reach rediss://:***@127.0.0.1:{port}: Connection refused; "
               "running on PostgreSQL alone until Redis answers", timeout=10)
    runs_a_workflow(n)
    no_secret(n.log())


def test_client_certificate_when_the_server_asks_for_one(pg, pki, started, tmp_path):
    r = tls_redis(pki, clients="yes")
    started.append(r)
    url = pg.database()
    crt, key = pki["client"]
    without = node(started, tmp_path, url, "t1", tls_url(r),
                   ORCH_REDIS_TLS_CA_CERT=str(pki["ca"])).start()
    without.wait_log(f"WARN [Redis] rediss://:***@127.0.0.1:{r.tls_port}: the server ended the "
                     "TLS session before answering: ", timeout=10)
    assert "(does it want a client certificate? ORCH_REDIS_TLS_CERT and ORCH_REDIS_TLS_KEY); " \
        "running on PostgreSQL alone" in without.log(), without.log()
    n = node(started, tmp_path, url, "t2", tls_url(r), ORCH_REDIS_TLS_CA_CERT=str(pki["ca"]),
             ORCH_REDIS_TLS_CERT=str(crt), ORCH_REDIS_TLS_KEY=str(key)).start()
    n.wait_log(f"[Redis] Using rediss://:***@127.0.0.1:{r.tls_port} (Redis 7", timeout=10)
    no_secret(n.log() + without.log())


def test_bad_tls_settings_are_named(pg, pki, started, tmp_path):
    r = tls_redis(pki)
    started.append(r)
    n = node(started, tmp_path, pg.database(), "t1", tls_url(r),
             ORCH_REDIS_TLS_CA_CERT=str(tmp_path / "missing.pem")).start()
    n.wait_log(f"WARN [Redis] rediss://:***@127.0.0.1:{r.tls_port}: cannot load the CA "
               f"certificates of ORCH_REDIS_TLS_CA_CERT {tmp_path / 'missing.pem'}", timeout=10)
    runs_a_workflow(n)
    no_secret(n.log())


def test_insecure_opt_out_skips_the_verification(pg, pki, started, tmp_path):
    r = tls_redis(pki)
    started.append(r)
    n = node(started, tmp_path, pg.database(), "t1", tls_url(r),
             ORCH_REDIS_TLS_CA_CERT=str(pki["other_ca"]), ORCH_REDIS_TLS_INSECURE="1").start()
    n.wait_log(f"[Redis] Using rediss://:***@127.0.0.1:{r.tls_port} (Redis 7", timeout=10)
    no_secret(n.log())
