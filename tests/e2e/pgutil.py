"""
pgutil.py - a private PostgreSQL server for end-to-end tests, and orch nodes on it.

Postgres starts a real server (tests/pg/start-pg.sh: initdb in a temp dir, a free
loopback port) that a test may stop, start and restart on the same port. Each test
gets a database of its own (Postgres.database()). PostgreSQL missing is an error,
never a skip: scripts/install-deps.sh test installs it.

Node is one `orch server` or `orch worker` on such a database, with a name and a
lease; it speaks HTTP like apiutil.Server (whose request checks validate every
answer against docs/openapi.yaml).
"""
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from apiutil import Server, free_port
from conftest import ORCH, REPO, base_env

PG_SCRIPTS = REPO / "tests" / "pg"


class Postgres:
    def __init__(self):
        # Not under pytest's private tmp: the server runs as the postgres user when we
        # are root, and must reach its directory (start-pg.sh hands it over).
        self.dir = Path(tempfile.mkdtemp(prefix="orch-e2e-pg-"))
        self.url = None
        self._n = 0

    def start(self):
        res = subprocess.run([str(PG_SCRIPTS / "start-pg.sh"), str(self.dir)],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"cannot start PostgreSQL: {res.stderr}"
        self.url = res.stdout.strip()
        return self

    def ctl(self, action):
        res = subprocess.run([str(PG_SCRIPTS / "ctl-pg.sh"), str(self.dir), action],
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"pg_ctl {action} failed: {res.stderr}"

    def destroy(self):
        subprocess.run([str(PG_SCRIPTS / "stop-pg.sh"), str(self.dir)], capture_output=True,
                       timeout=120)

    def psql(self, sql, url=None):
        res = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d",
                              url or self.url, "-c", sql],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, f"psql failed on {sql!r}: {res.stderr}"
        return res.stdout.strip()

    def database(self):
        """A new empty database; returns its URL."""
        self._n += 1
        name = f"t{os.getpid()}_{self._n}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name


class Node(Server):
    """One orch node (server or worker) on a PostgreSQL database."""

    def __init__(self, tmp, url, name, role="server", lease="2s", workers=2, env=None,
                 admin_key=None):
        super().__init__(Path(tmp), workers=workers, grace="10s")
        self.db_url = url
        self.name = name
        self.role = role
        self.lease = lease
        self.extra_env = dict(env or {})
        self.admin_key = admin_key
        self.err_path = None

    def node_env(self):
        e = base_env({"E2E_TMP": str(self.tmp), "DATABASE_URL": self.db_url,
                      "ORCH_DB_POOL_SIZE": "4"})
        e.update(self.extra_env)
        return e

    def orch(self, *args, timeout=60, env=None):
        e = self.node_env()
        e.update(env or {})
        return subprocess.run([str(ORCH)] + [str(a) for a in args], capture_output=True,
                              text=True, errors="replace", timeout=timeout, env=e, cwd=self.tmp,
                              stdin=subprocess.DEVNULL)

    def keys_create(self, name, scope="admin", expires=None):
        res = self.orch("keys", "create", "--name", name, "--scope", scope, "--json")
        assert res.returncode == 0, f"orch keys create failed ({res.returncode}): {res.stderr}"
        return json.loads(res.stdout)

    def start(self, timeout=30, extra=()):
        if self.admin_key is None:
            self.admin_key = self.keys_create("admin-" + self.name)["key"]
        if self.port is None and self.role == "server":
            self.port = free_port()
        self._n += 1
        err = open(self.tmp / f"{self.name}-{self._n}.err", "w+b")
        out = open(self.tmp / f"{self.name}-{self._n}.out", "w+b")
        self.logs.append(err)
        args = [str(ORCH), self.role, "--node", self.name, "--lease", self.lease, "--workers",
                str(self.workers), "--shutdown-grace", self.grace]
        if self.role == "server":
            args += ["--listen", f"127.0.0.1:{self.port}"]
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                     env=self.node_env(), cwd=self.tmp, start_new_session=True)
        self.proc.out_file = out
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"orch {self.role} {self.name} exited with "
                                     f"{self.proc.returncode} at start-up:\n{self.log()}")
            if self.role == "worker":
                if "worker '" + self.name + "'" in self.log():
                    return self
            else:
                try:
                    r = self.request("GET", "/v1/health/scheduler", key=None, check=False,
                                     timeout=2)
                    if r.status in (200, 503):
                        return self
                except OSError:
                    pass
            if time.monotonic() > end:
                raise AssertionError(f"node {self.name} did not start within {timeout}s:\n"
                                     f"{self.log()}")
            time.sleep(0.05)

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)


def side_effects(path):
    """Lines 'EXEC TASK ATTEMPT' the tasks appended, as a list of tuples."""
    if not Path(path).exists():
        return []
    out = []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append((parts[0], parts[1], int(parts[2])))
    return out


def append_cmd(path, sleep):
    """A task command that works for `sleep` seconds, then records its run."""
    return (f"sleep {sleep}; echo \"$ORCH_EXECUTION_ID $ORCH_TASK $ORCH_ATTEMPT\" >> {path}")
