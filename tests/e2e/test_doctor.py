"""
test_doctor.py - `orch doctor`, GET /v1/doctor and `orch doctor --bundle`.

One test per symptom of the troubleshooting guide that doctor covers: the fault is
injected for real (PostgreSQL stopped, a wrong password, a missing database, a
definition or schedule made invalid directly in the store because registration refuses
it, a malformed Authorization header sent several times, an expired key, no scheduler,
a server in another time zone, slow statements, a task failing with the same cause),
and the doctor line must name the cause and the fix. Runs on SQLite and on a private
PostgreSQL started with pg_stat_statements preloaded.
"""
import json
import re
import sqlite3
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from apiutil import Server, sh, wf
from conftest import ORCH, base_env, wait_for
from pgutil import Postgres

HOUR_MS = 3600 * 1000


# --------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def pg():
    p = Postgres().start()
    try:
        p.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        p.ctl("restart")
        yield p
    finally:
        p.destroy()


class Store:
    """A store of one backend for doctor to look at, with direct writes (what registration
    would refuse)."""

    def __init__(self, tmp, backend, pg=None):
        self.tmp = Path(tmp)
        self.backend = backend
        self.pg = pg
        self.data_dir = self.tmp / "data"
        self.url = pg.database() if backend == "postgres" else None

    def env(self, extra=None):
        e = base_env({"E2E_TMP": str(self.tmp)})
        if self.url:
            e["DATABASE_URL"] = self.url
        else:
            e["ORCH_DATA_DIR"] = str(self.data_dir)
        e.update(extra or {})
        return e

    def orch(self, *args, env=None, timeout=120):
        return subprocess.run([str(ORCH)] + [str(a) for a in args], capture_output=True,
                              text=True, errors="replace", timeout=timeout,
                              env=self.env(env), cwd=self.tmp, stdin=subprocess.DEVNULL)

    def apply(self, definition):
        f = self.tmp / f"{definition['name']}.json"
        f.write_text(json.dumps(definition))
        res = self.orch("workflows", "apply", f)
        assert res.returncode == 0, res.stderr
        return f

    def sql(self, statement, params=()):
        if self.url:
            for p in params:  # the tests' own values: quoted literals
                statement = statement.replace("?", "'" + str(p).replace("'", "''") + "'", 1)
            return self.pg.psql(statement, url=self.url)
        con = sqlite3.connect(self.data_dir / "orch.db")
        try:
            rows = con.execute(statement, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def doctor(self, *args, env=None):
        res = self.orch("doctor", "--json", *args, env=env)
        assert res.stdout.strip(), f"no report ({res.returncode}): {res.stderr}"
        rep = json.loads(res.stdout)
        assert "ERROR: AddressSanitizer" not in res.stderr and "runtime error" not in res.stderr
        return res, rep


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    p = request.getfixturevalue("pg") if request.param == "postgres" else None
    s = Store(tmp_path, request.param, p)
    # A first command creates (and migrates) the store.
    res = s.orch("keys", "create", "--name", "setup", "--scope", "read")
    assert res.returncode == 0, res.stderr
    return s


def lines(rep, name):
    return [c for c in rep["checks"] if c["name"] == name]


def line(rep, name):
    found = lines(rep, name)
    assert len(found) == 1, f"one '{name}' line expected: {json.dumps(rep['checks'], indent=1)}"
    return found[0]


def check_shape(rep):
    assert set(rep) == {"status", "mode", "version", "checkedAt", "counts", "checks"}
    assert rep["status"] in ("ok", "warn", "fail")
    assert sum(rep["counts"].values()) == len(rep["checks"]) > 0
    worst = "fail" if rep["counts"]["fail"] else "warn" if rep["counts"]["warn"] else "ok"
    assert rep["status"] == worst
    for c in rep["checks"]:
        assert set(c) == {"name", "level", "found", "fix"}, c
        assert c["level"] in ("ok", "warn", "fail") and c["name"] and c["found"], c
        assert "\n" not in c["found"], c
        if c["level"] != "ok":
            assert c["fix"], f"a problem without a fix: {c}"


# --------------------------------------------------------------------------- shape and exit

def test_healthy_store_report_shape_and_text(store):
    store.apply(wf("etl", [sh("a", "true"), sh("b", "true", dependsOn=["a"])]))
    res, rep = store.doctor()
    check_shape(rep)
    assert rep["mode"] == "local"
    assert res.returncode == (1 if rep["status"] == "fail" else 0)
    db = line(rep, "database")
    assert db["level"] == "ok" and "SELECT 1" in db["found"], db
    assert line(rep, "workflows")["level"] == "ok"
    assert "1 workflow" in line(rep, "workflows")["found"]
    assert line(rep, "redis") == {"name": "redis", "level": "ok",
                                  "found": "not configured (ORCH_REDIS_URL unset: the nodes "
                                           "use PostgreSQL alone)",
                                  "fix": None}
    for name in ("cpu", "memory", "disk", "files", "keys", "stuck.orphans", "stuck.queued",
                 "stuck.failing", "clock"):
        assert lines(rep, name), f"no '{name}' line"
    # The text form: one line per check, then the counts.
    text = store.orch("doctor")
    out = text.stdout.splitlines()
    assert len([ln for ln in out if ln[:4].strip() in ("ok", "warn", "fail")]) == \
        len(rep["checks"]), text.stdout
    assert any(ln.startswith("ok") and "redis" in ln for ln in out)
    assert text.returncode == res.returncode


def test_no_data_directory_fails_with_the_fix(tmp_path):
    s = Store(tmp_path, "sqlite")
    res, rep = s.doctor(env={"ORCH_DATA_DIR": str(tmp_path / "nope")})
    assert res.returncode == 1
    check_shape(rep)
    db = line(rep, "database")
    assert db["level"] == "fail" and "no data directory" in db["found"]
    assert "--data-dir" in db["fix"]
    text = s.orch("doctor", env={"ORCH_DATA_DIR": str(tmp_path / "nope")})
    assert text.returncode == 1
    assert any(ln.startswith("fail") and "database" in ln and "fix: " in ln
               for ln in text.stdout.splitlines()), text.stdout


def test_bad_usage(tmp_path):
    s = Store(tmp_path, "sqlite")
    assert s.orch("doctor", "extra").returncode == 2
    assert s.orch("doctor", "--nope").returncode == 2
    assert s.orch("doctor", "--bundle", "").returncode == 2


# --------------------------------------------------------------------------- the database

def test_pg_unreachable(pg, tmp_path):
    s = Store(tmp_path, "postgres", pg)
    pg.ctl("stop")
    try:
        res, rep = s.doctor()
    finally:
        pg.ctl("start")
    assert res.returncode == 1
    db = line(rep, "database")
    assert db["level"] == "fail" and "unreachable" in db["found"], db
    assert "Connection refused" in db["found"]
    assert "is PostgreSQL running" in db["fix"] and "pg_isready" in db["fix"]


def test_pg_wrong_credentials(pg, tmp_path):
    hba = pg.dir / "data" / "pg_hba.conf"
    old = hba.read_text()
    pg.psql("CREATE ROLE doctor_user LOGIN PASSWORD 'right-password'")
    hba.write_text("host all doctor_user 127.0.0.1/32 scram-sha-256\n" + old)
    pg.psql("SELECT pg_reload_conf()")
    try:
        s = Store(tmp_path, "postgres", pg)
        port = pg.url.rsplit(":", 1)[1].split("/")[0]
        bad = f"postgresql://doctor_user:wrong-password@127.0.0.1:{port}/postgres"
        res, rep = s.doctor(env={"DATABASE_URL": bad})
    finally:
        hba.write_text(old)
        pg.psql("SELECT pg_reload_conf()")
    assert res.returncode == 1
    db = line(rep, "database")
    assert db["level"] == "fail" and "wrong credentials" in db["found"], db
    assert "password authentication failed" in db["found"]
    assert "user and password in DATABASE_URL" in db["fix"]
    assert "wrong-password" not in res.stdout + res.stderr


def test_pg_missing_database(pg, tmp_path):
    s = Store(tmp_path, "postgres", pg)
    url = pg.url.rsplit("/", 1)[0] + "/no_such_db"
    res, rep = s.doctor(env={"DATABASE_URL": url})
    assert res.returncode == 1
    db = line(rep, "database")
    assert db["level"] == "fail" and "database missing" in db["found"], db
    assert '"no_such_db" does not exist' in db["found"]
    assert "createdb" in db["fix"]


def test_pg_tls_required_by_the_client(pg, tmp_path):
    s = Store(tmp_path, "postgres", pg)
    res, rep = s.doctor(env={"DATABASE_URL": pg.url + "?sslmode=require"})
    assert res.returncode == 1
    db = line(rep, "database")
    assert db["level"] == "fail" and "TLS problem" in db["found"], db
    assert "sslmode" in db["fix"]


# --------------------------------------------------------------------------- definitions

def test_circular_dependency_stored_directly(store):
    store.apply(wf("loop", [sh("a", "true"), sh("b", "true", dependsOn=["a"])]))
    cyclic = wf("loop", [sh("a", "true", dependsOn=["b"]), sh("b", "true", dependsOn=["a"])])
    store.sql("UPDATE workflows SET definition = ? WHERE name = ?",
              (json.dumps(cyclic), "loop"))
    res, rep = store.doctor()
    assert res.returncode == 1
    w = line(rep, "workflow loop")
    assert w["level"] == "fail" and "cycle" in w["found"] and "a -> b -> a" in w["found"], w
    assert "orch validate" in w["fix"]


def test_missing_child_workflow_stored_directly(store):
    store.apply(wf("child", [sh("x", "true")]))
    store.apply(wf("parent", [{"name": "sub", "type": "workflow", "workflow": "child"}]))
    store.sql("UPDATE workflows SET deleted_at = 1 WHERE name = ?", ("child",))
    res, rep = store.doctor()
    assert res.returncode == 1
    w = line(rep, "workflow parent")
    assert w["level"] == "fail" and "child" in w["found"], w


# --------------------------------------------------------------------------- keys

def test_expired_and_expiring_keys(store):
    store.orch("keys", "create", "--name", "ci-old", "--scope", "read")
    store.orch("keys", "create", "--name", "ci-soon", "--scope", "read", "--expires", "2d")
    now = int(time.time() * 1000)
    store.sql("UPDATE api_keys SET expires_at = ? WHERE name = ?", (now - HOUR_MS, "ci-old"))
    res, rep = store.doctor()
    old = line(rep, "key ci-old")
    assert old["level"] == "warn" and "expired at" in old["found"], old
    assert "orch keys create" in old["fix"]
    soon = line(rep, "key ci-soon")
    assert soon["level"] == "warn" and "expires in" in soon["found"], soon
    assert not lines(rep, "key setup")
    # Neither is a failure: the exit status follows the failures only.
    assert res.returncode == (1 if rep["counts"]["fail"] else 0)


# --------------------------------------------------------------------------- schedules

def test_bad_cron_stored_directly(store):
    good = wf("nightly", [sh("a", "true")],
              schedules=[{"name": "daily", "cron": "0 2 * * *", "timezone": "UTC"}])
    store.apply(good)
    bad = dict(good, schedules=[{"name": "daily", "cron": "61 2 * * *", "timezone": "UTC"}])
    store.sql("UPDATE workflows SET definition = ? WHERE name = ?", (json.dumps(bad), "nightly"))
    res, rep = store.doctor()
    assert res.returncode == 1
    s = line(rep, "schedule nightly/daily")
    assert s["level"] == "fail" and "bad cron expression '61 2 * * *'" in s["found"], s
    assert "minute" in s["found"] and "orch schedules validate" in s["fix"]


def test_unknown_time_zone_stored_directly(store):
    good = wf("tzwf", [sh("a", "true")],
              schedules=[{"name": "d", "cron": "0 2 * * *", "timezone": "Europe/Berlin"}])
    store.apply(good)
    bad = dict(good, schedules=[{"name": "d", "cron": "0 2 * * *", "timezone": "Europe/Berln"}])
    store.sql("UPDATE workflows SET definition = ? WHERE name = ?", (json.dumps(bad), "tzwf"))
    res, rep = store.doctor()
    s = line(rep, "schedule tzwf/d")
    assert s["level"] == "fail" and "not known to this machine's tzdata" in s["found"], s
    assert "Europe/Berlin" in s["found"]  # the suggestion


def test_scheduler_not_running(store):
    store.apply(wf("sched", [sh("a", "true")],
                   schedules=[{"name": "often", "cron": "* * * * *"}]))
    res, rep = store.doctor()
    assert res.returncode == 1
    sc = [c for c in lines(rep, "scheduler") if c["level"] == "fail"]
    assert sc and "no orch server is running" in sc[0]["found"], rep["checks"]
    assert "orch server" in sc[0]["fix"]
    nxt = line(rep, "schedule sched/often")
    assert nxt["level"] == "ok" and "next fire" in nxt["found"]


def test_missed_fires_named_when_no_server(store):
    store.apply(wf("late", [sh("a", "true")], schedules=[{"name": "m", "cron": "* * * * *"}]))
    now = int(time.time() * 1000)
    store.sql("INSERT INTO schedules (id, workflow, name, spec_hash, paused, next_fire_at, "
              "last_fire_at, created_at, updated_at, from_api) "
              "VALUES ('sch_0000000000000001', 'late', 'm', 'x', 0, ?, 0, ?, ?, 0)",
              (now - 10 * 60 * 1000, now, now))
    res, rep = store.doctor()
    sc = [c for c in lines(rep, "scheduler") if c["level"] == "fail"]
    assert sc and "late/m was due at" in sc[0]["found"] and "overdue" in sc[0]["found"], sc


# --------------------------------------------------------------------------- stuck work

def test_task_failing_repeatedly_with_connection_timeout(store):
    f = store.tmp / "flaky.json"
    f.write_text(json.dumps(wf("data-pipeline", [sh(
        "data-transform-123", "echo 'Connection timeout to 10.1.2.3:5432' >&2; exit 1",
        retries=3, retryBackoff={"initial": "10ms", "factor": 1, "jitter": False})])))
    res = store.orch("run", f)
    assert res.returncode == 1, res.stderr
    res, rep = store.doctor()
    c = line(rep, "stuck.failing data-pipeline/data-transform-123")
    assert c["level"] == "warn", c
    assert c["found"] == ("data-transform-123 failed 4 times in the last hour: "
                          "Connection timeout to 10.1.2.3:5432 (exit status 1)"), c
    assert "orch logs ex_" in c["fix"]


def test_orphaned_running_execution(store):
    f = store.tmp / "one.json"
    f.write_text(json.dumps(wf("one", [sh("a", "true")])))
    assert store.orch("run", f).returncode == 0
    ex = store.sql("SELECT id FROM executions")
    ex_id = ex[0][0] if isinstance(ex, list) else ex.splitlines()[0]
    store.sql("UPDATE executions SET status = 'running', owner_node = 'gone-node:1' "
              "WHERE id = ?", (ex_id,))
    res, rep = store.doctor()
    c = line(rep, "stuck.orphans")
    assert c["level"] == "fail" and ex_id in c["found"] and "gone-node:1" in c["found"], c
    assert res.returncode == 1


# --------------------------------------------------------------------------- PostgreSQL

def test_pg_slow_statements_and_how_to_enable(pg, tmp_path):
    s = Store(tmp_path, "postgres", pg)
    assert s.orch("keys", "create", "--name", "x", "--scope", "read").returncode == 0
    _, rep = s.doctor()
    st = line(rep, "postgres.statements")
    assert st["level"] == "ok" and "not installed" in st["found"], st
    assert "shared_preload_libraries = 'pg_stat_statements'" in st["fix"]
    assert "CREATE EXTENSION pg_stat_statements" in st["fix"]
    pg.psql("CREATE EXTENSION pg_stat_statements", url=s.url)
    for _ in range(2):
        pg.psql("SELECT pg_sleep(0.25)", url=s.url)
    _, rep = s.doctor()
    st = line(rep, "postgres.statements")
    assert st["level"] == "warn" and "pg_sleep" in st["found"], st
    assert "EXPLAIN" in st["fix"]
    for name in ("postgres.sessions", "postgres.bloat", "clock"):
        assert line(rep, name)["level"] == "ok", line(rep, name)
    assert "of the database's" in line(rep, "clock")["found"]


# --------------------------------------------------------------------------- the server

@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, workers=2, env={"TZ": "Europe/Berlin"})
    yield srv
    srv.cleanup()


def raw_get(url, auth):
    req = urllib.request.Request(url + "/v1/workflows", headers={"Authorization": auth})
    try:
        urllib.request.urlopen(req, timeout=10)
    except urllib.error.HTTPError as e:
        return e.code
    return 200


def test_server_doctor_auth_groups_zone_and_scheduler(server, tmp_path):
    defn = wf("ny", [sh("a", "true")],
              schedules=[{"name": "morning", "cron": "0 9 * * *",
                          "timezone": "America/New_York"}])
    (tmp_path / "ny.json").write_text(json.dumps(defn))
    server.start()
    r = server.request("POST", "/v1/workflows", body=defn)
    assert r.status in (200, 201), r
    # Two spaces after Bearer, several times.
    for _ in range(4):
        assert raw_get(server.url, "Bearer  " + server.admin_key) == 401
    read = server.keys_create("reader", "read")["key"]
    assert server.request("GET", "/v1/doctor", key=read).status == 403
    r = server.request("GET", "/v1/doctor")
    assert r.status == 200, r
    rep = r.json
    check_shape(rep)
    assert rep["mode"] == "server"
    auth = line(rep, "auth 127.0.0.1 malformed")
    assert auth["level"] == "warn", auth
    assert auth["found"].startswith("4 requests from 127.0.0.1 refused in the last hour: "
                                    "malformed Authorization header: more than one space "
                                    "after 'Bearer'"), auth
    assert "exactly 'Authorization: Bearer <key>'" in auth["fix"]
    assert server.admin_key not in r.text and server.admin_key[3:20] not in r.text
    sch = wait_for(lambda: [c for c in lines(server.request("GET", "/v1/doctor").json,
                                             "scheduler") if c["level"] == "ok"],
                   timeout=30, what="the scheduler running")
    assert "running" in sch[0]["found"], sch
    zone = line(rep, "schedule ny/morning")
    assert zone["level"] == "ok", zone
    assert "differs from this machine's (Europe/Berlin)" in zone["found"], zone
    assert "timezone" in zone["fix"]
    assert line(rep, "database.pool")["level"] == "ok"
    assert "open files of a limit" in line(rep, "files")["found"]
    # The CLI prints the server's report; its exit status follows the failures.
    res = subprocess.run([str(ORCH), "doctor", "--server", server.url, "--api-key",
                          server.admin_key, "--json"], capture_output=True, text=True,
                         timeout=60, env=base_env())
    cli = json.loads(res.stdout)
    assert cli["mode"] == "server" and res.returncode == (1 if cli["counts"]["fail"] else 0)
    res = subprocess.run([str(ORCH), "doctor", "--server", server.url, "--api-key", read],
                         capture_output=True, text=True, timeout=60, env=base_env())
    assert res.returncode == 7, res
    server.stop()


# --------------------------------------------------------------------------- the bundle

SECRETS = {
    "api key": None,  # the server's admin key, filled in below
    "password in a URL": "urlpw-Zq81x",
    "HTTP task credential": "literal-bearer-Xk29",
    "env value marked secret": "tok-plain-value-42",
    "password in the log": "logpw-hunter2",
    "password in task output": "outpw-7s7s7s",
    "password in DATABASE_URL": "dburlpw-55x",
}


def test_bundle_holds_no_secret(tmp_path):
    s = Store(tmp_path, "sqlite")
    key = json.loads(s.orch("keys", "create", "--name", "admin", "--scope", "admin",
                            "--json").stdout)["key"]
    secrets = dict(SECRETS, **{"api key": key})
    f = s.tmp / "creds.json"
    f.write_text(json.dumps(wf("creds", [sh("leak", "echo password=outpw-7s7s7s; exit 3")])))
    assert s.orch("workflows", "apply", f).returncode == 0
    # What registration refuses, planted directly: a literal credential header, a password
    # in a URL and a secret-named env value.
    planted = wf("creds", [
        {"name": "call", "type": "http", "url": "http://user:urlpw-Zq81x@127.0.0.1:9/x",
         "headers": {"Authorization": "Bearer literal-bearer-Xk29"}},
        sh("leak", "echo password=outpw-7s7s7s; exit 3"),
    ], env={"API_TOKEN": "tok-plain-value-42", "DB_URL": "postgres://u:urlpw-Zq81x@h/db"})
    run = s.orch("run", f)
    assert run.returncode == 1
    s.sql("UPDATE workflows SET definition = ? WHERE name = ?", (json.dumps(planted), "creds"))
    log = s.tmp / "orch.log"
    log.write_text(f"INFO [API] key {key} used\nERROR [Database] postgres://orch:logpw-hunter2"
                   f"@db/orch refused\nauth Bearer {key}\n")
    out = s.tmp / "support.tar.gz"
    # DATABASE_URL with a password in the environment (--data-dir keeps the store SQLite).
    res = s.orch("doctor", "--bundle", out, "--log", log, "--data-dir", s.data_dir,
                 env={"ORCH_API_KEY": key, "PGPASSWORD": "urlpw-Zq81x", "TMPDIR": str(s.tmp),
                      "DATABASE_URL": "postgresql://orch:dburlpw-55x@127.0.0.1:1/orch"})
    assert res.returncode in (0, 1), res.stderr
    assert "support bundle written to" in res.stderr
    dest = s.tmp / "unpacked"
    with tarfile.open(out) as t:
        t.extractall(dest)
    root = dest / "orch-bundle"
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    for need in ("README.txt", "doctor.json", "versions.txt", "environment.txt",
                 "settings.json", "workflows/creds.json", "executions-failed.json",
                 "logs/orch.log"):
        assert need in files, f"{need} missing from {sorted(files)}"
    assert any(f.startswith("logs/ex_") for f in files), files
    text = "".join((root / f).read_text(errors="replace") for f in files)
    for what, secret in secrets.items():
        assert secret not in text, f"{what} in the bundle"
    assert "ORCH_API_KEY=[redacted]" in (root / "environment.txt").read_text()
    assert "DATABASE_URL=postgresql://orch:[redacted]@127.0.0.1:1/orch" in \
        (root / "environment.txt").read_text()
    assert "[redacted]" in (root / "workflows" / "creds.json").read_text()
    assert "orch " in (root / "versions.txt").read_text()
    assert json.loads((root / "doctor.json").read_text())["checks"]
    assert "failed" in (root / "executions-failed.json").read_text()
    # Nothing left behind in the temporary directory.
    assert not list(Path(s.tmp).glob("orch-bundle-*"))


# --------------------------------------------------------------------------- the pool

def test_pg_connection_pool_exhausted(pg, tmp_path):
    """One pooled connection held by a request stuck behind a lock: the next request waits
    out the pool's timeout (503), and doctor names the pool and the setting to raise."""
    import threading

    from pgutil import Node

    url = pg.database()
    node = Node(tmp_path, url, "doc1", env={"ORCH_DB_POOL_SIZE": "1",
                                            "ORCH_DB_POOL_TIMEOUT": "300ms",
                                            "ORCH_HTTP_THREADS": "4"})
    holder = None
    try:
        node.start()
        holder = subprocess.Popen(["psql", "-X", "-q", "-d", url], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  text=True)
        holder.stdin.write("BEGIN; LOCK TABLE executions IN ACCESS EXCLUSIVE MODE;\n")
        holder.stdin.flush()
        wait_for(lambda: pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                                 "c.oid = l.relation WHERE c.relname = 'executions' AND "
                                 "l.mode = 'AccessExclusiveLock' AND l.granted",
                                 url=url) == "1", timeout=30, what="the lock")
        stuck = {}
        t = threading.Thread(target=lambda: stuck.setdefault(
            "r", node.request("GET", "/v1/executions", check=False, timeout=120)))
        t.start()
        wait_for(lambda: pg.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                                 "wait_event_type = 'Lock' AND application_name = 'orch' "
                                 "AND query LIKE '%executions%'", url=url) != "0",
                 timeout=30, what="a request waiting on the lock")
        r = node.request("GET", "/v1/workflows", check=False)
        assert r.status == 503 and "pool is exhausted" in r.text, r
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(timeout=30)
        holder = None
        t.join(timeout=120)
        assert stuck["r"].status == 200, stuck
        rep = node.request("GET", "/v1/doctor").json
        pool = line(rep, "database.pool")
        assert pool["level"] == "warn", pool
        # At least the request refused above (others may have waited out the lock too).
        m = re.search(r"; (\d+) requests? waited the whole 300 ms for one", pool["found"])
        assert m and int(m.group(1)) >= 1, pool
        assert "ORCH_DB_POOL_SIZE" in pool["fix"]
    finally:
        if holder is not None:
            holder.kill()
            holder.wait(timeout=30)
        node.cleanup()


# --------------------------------------------------------------------------- the pool, by the hour

def hold_executions_lock(pg, url):
    """A psql session that holds an ACCESS EXCLUSIVE lock on executions until told to
    commit (returns the process)."""
    holder = subprocess.Popen(["psql", "-X", "-q", "-d", url], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    holder.stdin.write("BEGIN; LOCK TABLE executions IN ACCESS EXCLUSIVE MODE;\n")
    holder.stdin.flush()
    wait_for(lambda: pg.psql("SELECT count(*) FROM pg_locks l JOIN pg_class c ON "
                             "c.oid = l.relation WHERE c.relname = 'executions' AND "
                             "l.mode = 'AccessExclusiveLock' AND l.granted",
                             url=url) == "1", timeout=30, what="the lock")
    return holder


def test_pg_pool_exhausted_by_concurrent_requests_counted_by_the_hour(pg, tmp_path):
    """The one pooled connection held by a request stuck behind a lock, six requests at
    once wait out the pool's timeout: six 503s, and doctor's line counts exactly the waits
    that ran out, in the last hour, with the setting to raise."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from pgutil import Node

    url = pg.database()
    node = Node(tmp_path, url, "pool-hour", env={"ORCH_DB_POOL_SIZE": "1",
                                                 "ORCH_DB_POOL_TIMEOUT": "300ms",
                                                 "ORCH_HTTP_THREADS": "10"})
    holder = None
    try:
        node.start()
        holder = hold_executions_lock(pg, url)
        stuck = {}
        t = threading.Thread(target=lambda: stuck.setdefault(
            "r", node.request("GET", "/v1/executions", check=False, timeout=120)))
        t.start()
        wait_for(lambda: pg.psql("SELECT count(*) FROM pg_stat_activity WHERE "
                                 "wait_event_type = 'Lock' AND application_name = 'orch' "
                                 "AND query LIKE '%executions%'", url=url) != "0",
                 timeout=30, what="a request waiting on the lock")
        with ThreadPoolExecutor(6) as ex:
            answers = list(ex.map(lambda _: node.request("GET", "/v1/workflows", check=False),
                                  range(6)))
        assert [r.status for r in answers] == [503] * 6, answers
        assert all("pool is exhausted" in r.text and "ORCH_DB_POOL_SIZE" in r.text
                   for r in answers), answers
        holder.stdin.write("COMMIT;\n")
        holder.stdin.close()
        holder.wait(timeout=30)
        holder = None
        t.join(timeout=120)
        assert stuck["r"].status == 200, stuck
        rep = node.request("GET", "/v1/doctor").json
        pool = line(rep, "database.pool")
        assert pool["level"] == "warn", pool
        # Each wait that ran out is counted (and logged): a request may wait twice, for its
        # key's check (answered from the recent-keys cache) and for its handler.
        waits = node.log().count("ERROR [Database] Connection pool exhausted (size 1")
        assert waits >= 6
        assert re.search(rf"^pool: \d of 1 in use, 0 waiting; {waits} requests waited the whole "
                         rf"300 ms for one in the last hour \({waits} since the server started\)$",
                         pool["found"]), pool
        assert "raise ORCH_DB_POOL_SIZE" in pool["fix"] and "max_connections" in pool["fix"]
        # The CLI prints the same line.
        res = subprocess.run([str(ORCH), "doctor", "--server", node.url, "--api-key",
                              node.admin_key], capture_output=True, text=True, timeout=60,
                             env=base_env())
        printed = [ln for ln in res.stdout.splitlines() if "database.pool" in ln]
        assert printed and printed[0].startswith("warn") and "in the last hour" in printed[0] \
            and "fix: requests wait for a database connection" in printed[0], res.stdout
    finally:
        if holder is not None:
            holder.kill()
            holder.wait(timeout=30)
        node.cleanup()


# --------------------------------------------------------------------------- bloat

def test_pg_table_and_index_bloat_estimated_with_the_fix(pg, tmp_path):
    """Bloat made for real: 300,000 rows in sessions (autovacuum off for it), 90% deleted
    and the statistics refreshed. The table and its index are named with the fix; after
    REINDEX CONCURRENTLY the index line is gone, after VACUUM FULL the table's."""
    s = Store(tmp_path, "postgres", pg)
    assert s.orch("keys", "create", "--name", "x", "--scope", "read").returncode == 0
    _, rep = s.doctor()
    assert line(rep, "postgres.bloat.size")["level"] == "ok", line(rep, "postgres.bloat.size")
    s.sql("ALTER TABLE sessions SET (autovacuum_enabled = off)")
    s.sql("INSERT INTO sessions SELECT decode(md5(g::text), 'hex'), "
          "decode(md5(g::text || 'c'), 'hex'), 'key_' || lpad(g::text, 20, '0'), "
          "'sk_abcdefghi', g, g, g FROM generate_series(1, 300000) g")
    s.sql("DELETE FROM sessions WHERE created_at % 10 <> 0")
    s.sql("ANALYZE sessions")
    _, rep = s.doctor()
    t = line(rep, "postgres.bloat.table sessions")
    assert t["level"] == "warn", t
    assert re.match(r"^table sessions takes [\d.]+ MiB where its 30000 rows need about "
                    r"[\d.]+ MiB: [\d.]+ MiB \((8\d|9\d)%\) is bloat \(estimated from the "
                    r"planner's statistics\)$", t["found"]), t
    assert "VACUUM FULL sessions" in t["fix"] and "pg_repack" in t["fix"], t
    i = line(rep, "postgres.bloat.index sessions_key_id")
    assert i["level"] == "warn", i
    assert i["found"].startswith("index sessions_key_id of table sessions takes "), i
    assert "where its 30000 entries need about" in i["found"], i
    assert "REINDEX INDEX CONCURRENTLY sessions_key_id" in i["fix"], i
    assert not lines(rep, "postgres.bloat.size")
    # The fixes, as the lines say.
    s.sql("REINDEX INDEX CONCURRENTLY sessions_key_id")
    _, rep = s.doctor()
    assert not lines(rep, "postgres.bloat.index sessions_key_id"), rep["checks"]
    assert line(rep, "postgres.bloat.table sessions")["level"] == "warn"
    s.sql("VACUUM FULL sessions")
    s.sql("ANALYZE sessions")
    _, rep = s.doctor()
    assert not [c for c in rep["checks"] if c["name"].startswith("postgres.bloat.table") or
                c["name"].startswith("postgres.bloat.index")], rep["checks"]
    assert line(rep, "postgres.bloat.size")["level"] == "ok"


# --------------------------------------------------------------------------- sessions

def test_pg_long_and_idle_in_transaction_sessions(pg, tmp_path):
    """A psql session left idle in a transaction and a pg_sleep(600) that runs: once both
    are older than doctor's minute, its line names each with its pid and the fix; ended
    with pg_terminate_backend as the fix says, the line is ok again."""
    s = Store(tmp_path, "postgres", pg)
    assert s.orch("keys", "create", "--name", "x", "--scope", "read").returncode == 0
    idle = subprocess.Popen(["psql", "-X", "-q", "-d", s.url], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    sleeper = subprocess.Popen(["psql", "-X", "-q", "-d", s.url, "-c", "SELECT pg_sleep(600)"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        idle.stdin.write("BEGIN; SELECT count(*) FROM api_keys;\n")
        idle.stdin.flush()
        old = ("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
               "state_change < now() - interval '62 seconds' AND {} ORDER BY pid")
        idle_pid = wait_for(lambda: pg.psql(old.format("state = 'idle in transaction'"),
                                            url=s.url), timeout=180, interval=1,
                            what="the idle transaction to be over a minute old")
        sleep_pid = wait_for(lambda: pg.psql(old.format("query LIKE '%pg_sleep(600)%' AND "
                                                        "state = 'active' AND pid <> "
                                                        "pg_backend_pid()"), url=s.url),
                             timeout=180, interval=1, what="the long query")
        _, rep = s.doctor()
        ses = line(rep, "postgres.sessions")
        assert ses["level"] == "warn", ses
        assert ses["found"].startswith("2 long sessions: "), ses
        assert re.search(rf"pid {sleep_pid} active for \d+m\d\ds \(psql\): SELECT "
                         r"pg_sleep\(600\)", ses["found"]), ses
        assert re.search(rf"pid {idle_pid} idle in transaction for \d+m\d\ds \(psql\): "
                         r"SELECT count\(\*\) FROM api_keys", ses["found"]), ses
        assert "pg_terminate_backend(PID)" in ses["fix"]
        assert "idle_in_transaction_session_timeout" in ses["fix"]
        pg.psql(f"SELECT pg_terminate_backend({idle_pid}), pg_terminate_backend({sleep_pid})",
                url=s.url)
        _, rep = s.doctor()
        assert line(rep, "postgres.sessions")["level"] == "ok", line(rep, "postgres.sessions")
    finally:
        for p in (idle, sleeper):
            p.kill()
            p.wait(timeout=30)


# --------------------------------------------------------------------------- clocks

FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def test_pg_each_node_clock_against_the_database(pg, tmp_path):
    """Two nodes on one database, one run under libfaketime five minutes ahead: its
    heartbeat records its offset, and doctor (local, and either node's /v1/doctor) names
    that node with the fix; the other node is not named. Stopped, it is no longer
    compared."""
    assert FAKETIME_LIB.exists(), "faketime is a test dependency: scripts/install-deps.sh test"
    from pgutil import Node

    s = Store(tmp_path, "postgres", pg)
    url = s.url
    good = Node(tmp_path, url, "clock-good")
    skewed = Node(tmp_path, url, "clock-skewed", env={
        "LD_PRELOAD": str(FAKETIME_LIB), "FAKETIME": "+300", "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        # (libfaketime comes before the sanitizer's runtime and keeps memory of its own)
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0:verify_asan_link_order=0"})
    try:
        good.start()
        skewed.start()
        _, rep = s.doctor()
        assert line(rep, "clock")["level"] == "ok", line(rep, "clock")
        c = line(rep, "clock.node clock-skewed")
        assert c["level"] == "fail", c
        m = re.match(r"^node clock-skewed's clock \([^,]+, pid (\d+)\) is (\d+) ms ahead of the "
                     r"database's \(at its heartbeat of \S+\)$", c["found"])
        assert m and int(m.group(1)) == skewed.proc.pid, c
        assert 290000 <= int(m.group(2)) <= 310000, c
        assert "chrony" in c["fix"] and "NTP" in c["fix"]
        assert not lines(rep, "clock.node clock-good") and not lines(rep, "clock.nodes")
        # The servers' own reports: the skewed one also finds its own clock ahead.
        for node in (good, skewed):
            r = node.request("GET", "/v1/doctor")
            assert r.status == 200, r
            assert line(r.json, "clock.node clock-skewed")["level"] == "fail"
        own = line(skewed.request("GET", "/v1/doctor").json, "clock")
        assert own["level"] == "fail" and "ms ahead of the database's" in own["found"], own
        assert skewed.stop() == 0
        _, rep = s.doctor()
        ok = line(rep, "clock.nodes")
        assert ok["level"] == "ok", ok
        assert re.match(r"^1 live node, every clock within \d+ ms of the database's at its last "
                        r"heartbeat$", ok["found"]), ok
        assert good.stop() == 0
        good.assert_log_clean()
    finally:
        skewed.cleanup()
        good.cleanup()


# --------------------------------------------------------------------------- machine symptoms

def test_memory_pressure_named_by_doctor(store):
    """The memory thresholds of the resource monitor apply to doctor too: set under what
    the machine uses, the memory line warns (ORCH_MEMORY_WARN) or fails
    (ORCH_MEMORY_HIGH_WATER) with the fix."""
    res, rep = store.doctor(env={"ORCH_MEMORY_WARN": "0.5%", "ORCH_MEMORY_HIGH_WATER": "100%"})
    m = line(rep, "memory")
    assert m["level"] == "warn", m
    assert re.match(r"^(system|cgroup) memory [\d.]+% used \(system \d+%.*\), above the warning "
                    r"threshold 0\.5% \(ORCH_MEMORY_WARN\)$", m["found"]), m
    assert "top -o %MEM" in m["fix"]
    res, rep = store.doctor(env={"ORCH_MEMORY_HIGH_WATER": "0.5%"})
    m = line(rep, "memory")
    assert m["level"] == "fail" and res.returncode == 1, m
    assert "above the high-water mark 0.5% (ORCH_MEMORY_HIGH_WATER: a server holds new tasks)" \
        in m["found"], m


def backend_server(backend, tmp_path, pg, env=None):
    """A server on SQLite (apiutil.Server) or a node on a new PostgreSQL database."""
    if backend == "sqlite":
        return Server(tmp_path, env=env)
    from pgutil import Node
    return Node(tmp_path, pg.database(), "doc-" + backend, env=env)


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    return request.param


def test_server_back_pressure_in_doctor(backend, tmp_path, request):
    pg_ = request.getfixturevalue("pg") if backend == "postgres" else None
    srv = backend_server(backend, tmp_path, pg_, env={"ORCH_MONITOR_INTERVAL": "100ms",
                                                      "ORCH_MEMORY_HIGH_WATER": "0.5%"})
    try:
        srv.start()
        srv.wait_log("WARN [Scheduler] Back-pressure on: memory usage ", timeout=15)
        rep = srv.request("GET", "/v1/doctor").json
        p = line(rep, "pressure")
        assert p["level"] == "warn", p
        assert re.match(r"^back-pressure since \S+: memory usage .*; new task processes wait and "
                        r"no execution is claimed$", p["found"]), p
        assert "memory" in p["fix"], p
        assert line(rep, "memory")["level"] == "fail"
        assert srv.stop() == 0
        srv.assert_log_clean()
    finally:
        srv.cleanup()


def test_disk_full_named_by_doctor(backend, tmp_path, request):
    """The data directory on a small tmpfs, filled: `orch doctor` fails its disk line with
    the fix, on either store (on PostgreSQL the data directory is where tasks' outputs
    go)."""
    from test_pressure import fill, free_bytes, mount_tmpfs, umount

    pg_ = request.getfixturevalue("pg") if backend == "postgres" else None
    s = Store(tmp_path, backend, pg_)
    mount_tmpfs(s.data_dir, "8m")
    env = {"ORCH_DATA_DIR": str(s.data_dir)}  # (with DATABASE_URL: where outputs go)
    try:
        res = s.orch("keys", "create", "--name", "setup", "--scope", "read", env=env)
        assert res.returncode == 0, res.stderr
        fill(s.data_dir)
        assert free_bytes(s.data_dir) == 0
        res, rep = s.doctor(env=env)
        assert res.returncode == 1
        d = line(rep, "disk")
        assert d["level"] == "fail", d
        assert re.match(rf"^data directory {re.escape(str(s.data_dir))}: 0 B free \(0\.0%\), "
                        r"[\d.]+% of inodes free$", d["found"]), d
        assert "free space there" in d["fix"] and "ORCH_RETENTION" in d["fix"], d
    finally:
        umount(s.data_dir)


def test_disk_full_commits_in_the_servers_doctor(tmp_path):
    """SQLite's commits failing for lack of space: the server's doctor says so (disk.full)
    with the fix, and the line is gone once space is freed."""
    from test_pressure import fill, mount_tmpfs, umount

    srv = Server(tmp_path, env={"ORCH_DISK_HIGH_WATER": "0", "ORCH_MONITOR_INTERVAL": "100ms"})
    mount_tmpfs(srv.data_dir, "16m")
    try:
        srv.start()
        srv.apply(wf("d", [sh("t", "true")]))
        fill(srv.data_dir)
        for _ in range(2000):
            r = srv.post("/v1/workflows/d/executions", None)
            if r.status != 201:
                break
        assert r.status == 503 and "disk full" in r.text, r
        srv.wait_log("ERROR [Database] Disk full: ")
        rep = srv.request("GET", "/v1/doctor").json
        d = line(rep, "disk.full")
        assert d["level"] == "fail", d
        assert re.match(r"^the server's commits fail for lack of space since \S+: disk full: .*; "
                        r"state changes are held$", d["found"]), d
        assert "free space on the disk of the data directory" in d["fix"]
        assert line(rep, "disk")["level"] == "fail"
        (srv.data_dir / "filler").unlink()
        wait_for(lambda: not lines(srv.request("GET", "/v1/doctor").json, "disk.full"),
                 timeout=30, what="the disk.full line to go")
        assert srv.stop() == 0
        srv.assert_log_clean()
    finally:
        srv.cleanup()
        umount(srv.data_dir)


# --------------------------------------------------------------------------- requests and zones

def test_two_spaces_after_bearer_on_either_store(backend, tmp_path, request):
    pg_ = request.getfixturevalue("pg") if backend == "postgres" else None
    srv = backend_server(backend, tmp_path, pg_)
    try:
        srv.start()
        for _ in range(3):
            assert raw_get(srv.url, "Bearer  " + srv.admin_key) == 401
        rep = srv.request("GET", "/v1/doctor").json
        auth = line(rep, "auth 127.0.0.1 malformed")
        assert auth["level"] == "warn", auth
        assert auth["found"].startswith("3 requests from 127.0.0.1 refused in the last hour: "
                                        "malformed Authorization header: more than one space "
                                        "after 'Bearer'"), auth
        assert "exactly 'Authorization: Bearer <key>'" in auth["fix"]
        assert srv.admin_key not in json.dumps(rep)
        assert srv.stop() == 0
    finally:
        srv.cleanup()


def test_schedule_zone_differs_from_the_machines(store):
    store.apply(wf("ny", [sh("a", "true")],
                   schedules=[{"name": "morning", "cron": "0 9 * * *",
                               "timezone": "America/New_York"},
                              {"name": "local", "cron": "0 9 * * *",
                               "timezone": "Europe/Berlin"}]))
    _, rep = store.doctor(env={"TZ": "Europe/Berlin"})
    zone = line(rep, "schedule ny/morning")
    assert zone["level"] == "ok", zone
    assert re.match(r"^cron '0 9 \* \* \*' in America/New_York, next fire .+ \(\S+\); note: "
                    r"its zone America/New_York differs from this machine's \(Europe/Berlin\): "
                    r"it fires by America/New_York's clock$", zone["found"]), zone
    assert "set its 'timezone' to the zone its time is meant in" in zone["fix"]
    same = line(rep, "schedule ny/local")
    assert "differs" not in same["found"] and same["fix"] is None, same


# Redis unreachable: tests/e2e/test_redis_api.py::test_doctor_redis_unreachable (and its
# wrong-password and bad-URL neighbours) start their own redis-server.


# --------------------------------------------------------------------------- start-up

def test_health_answers_200_the_moment_the_port_opens(backend, tmp_path, request):
    """A client that finds the port open never gets the 503 of an engine not yet turning:
    the server publishes its engine's state before it listens. Many starts, each probed
    the moment its port accepts a connection."""
    import socket

    pg_ = request.getfixturevalue("pg") if backend == "postgres" else None
    srv = backend_server(backend, tmp_path, pg_)
    srv.admin_key = srv.keys_create("admin", "admin")["key"]
    srv.port = __import__("apiutil").free_port()
    env = base_env({"E2E_TMP": str(tmp_path)})
    args = [str(ORCH), "server", "--listen", f"127.0.0.1:{srv.port}", "--workers", "2"]
    if backend == "postgres":
        env["DATABASE_URL"] = srv.db_url
        args += ["--node", "probe", "--lease", "2s"]
    else:
        args += ["--data-dir", str(srv.data_dir)]
    for i in range(8):
        errf = tmp_path / f"probe{i}.err"
        with open(errf, "wb") as err:
            p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err,
                                 stdin=subprocess.DEVNULL, env=env, cwd=tmp_path,
                                 start_new_session=True)
        try:
            def port_open():
                assert p.poll() is None, errf.read_text()
                try:
                    socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
                    return True
                except OSError:
                    return False
            wait_for(port_open, timeout=60, interval=0.005, what="the port")
            r = srv.request("GET", "/v1/health")
            assert r.status == 200, (i, r)
            assert r.json["components"]["workers"]["status"] == "ok", r.json
            assert srv.request("GET", "/v1/health/ready", key=None).status == 200
        finally:
            if p.poll() is None:
                p.terminate()
            assert p.wait(timeout=60) == 0, errf.read_text()[-3000:]
        log = errf.read_text()
        for m in ("ERROR: AddressSanitizer", "runtime error", "LeakSanitizer"):
            assert m not in log, log[-3000:]
