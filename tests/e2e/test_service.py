"""
`orch server` as a systemd service, without systemd: the notification protocol (sd_notify(3))
seen by a unix datagram socket of the test's own in $NOTIFY_SOCKET (a path, or '@' for the
abstract namespace): READY=1 once the port answers, WATCHDOG=1 at half of $WATCHDOG_USEC,
STOPPING=1 on SIGTERM; tasks do not inherit those variables. And SIGHUP (the units'
ExecReload) registers the definitions of --register DIR again: a changed file becomes a new
version, a file that does not validate is reported and keeps its version, the others are
registered all the same.
"""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from apiutil import Server, free_port, sh, wf
from conftest import ORCH, base_env


class Notify:
    """The service manager's end: a datagram socket that collects the messages."""

    def __init__(self, tmp, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"orch-test-notify-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = str(tmp / "notify.sock")
            self.sock.bind(path)
            self.env = path
        self.msgs = []  # (monotonic time, message)

    def wait(self, pred, timeout=30, what="message"):
        """Read until a message satisfies pred; return it."""
        for _, m in self.msgs:
            if pred(m):
                return m
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout}s; got {self.msgs}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            m = data.decode()
            self.msgs.append((time.monotonic(), m))
            if pred(m):
                return m

    def lines(self):
        return [ln for _, m in self.msgs for ln in m.split("\n")]

    def close(self):
        self.sock.close()


def has(line):
    return lambda m: line in m.split("\n")


@pytest.fixture
def svc(tmp_path):
    made = []

    def make(env=None):
        s = Server(tmp_path, env=env)
        made.append(s)
        return s
    yield make
    for s in made:
        s.cleanup()


def start_raw(srv, extra=()):
    """Start srv without waiting for its port (the test watches the notifications)."""
    srv.admin = srv.keys_create("admin", "admin")
    srv.admin_key = srv.admin["key"]
    srv.port = free_port()
    err = open(srv.tmp / "server-raw.err", "w+b")
    out = open(srv.tmp / "server-raw.out", "w+b")
    srv.logs.append(err)
    args = [str(ORCH), "server", "--listen", f"127.0.0.1:{srv.port}", "--data-dir",
            str(srv.data_dir), "--workers", "2"] + [str(a) for a in extra]
    srv.proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                env=base_env({"E2E_TMP": str(srv.tmp), **srv.env}),
                                cwd=srv.tmp, start_new_session=True)
    srv.proc.out_file = out
    return srv


def port_answers(port):
    with socket.socket() as c:
        c.settimeout(2)
        return c.connect_ex(("127.0.0.1", port)) == 0


def test_ready_watchdog_stopping(tmp_path, svc):
    n = Notify(tmp_path)
    try:
        srv = start_raw(svc({"NOTIFY_SOCKET": n.env, "WATCHDOG_USEC": "400000"}))
        ready = n.wait(has("READY=1"), what="READY=1")
        # Ready means listening: the port answers as soon as READY=1 is there.
        assert port_answers(srv.port), srv.log()
        assert f"STATUS=listening on http://127.0.0.1:{srv.port}" in ready.split("\n"), ready
        assert srv.proc.poll() is None
        # The watchdog: WATCHDOG=1 every 200 ms (half of 400 ms), from the engine's loop.
        t0 = time.monotonic()
        got = 0
        while got < 4:
            n.msgs.clear()
            n.wait(has("WATCHDOG=1"), timeout=5, what="WATCHDOG=1")
            got += 1
        elapsed = time.monotonic() - t0
        assert elapsed < 4, f"4 pings took {elapsed:.2f}s"
        # Tasks do not inherit the service manager's variables.
        srv.apply(wf("envdump", [sh("e", ["sh", "-c", "env > \"$E2E_TMP/task-env.txt\""])]))
        ex = srv.trigger("envdump")
        d = srv.wait_exec(ex["id"])
        assert d["status"] == "succeeded", d
        env = (tmp_path / "task-env.txt").read_text()
        for var in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            assert var + "=" not in env, env
        # SIGTERM: STOPPING=1, then a clean exit.
        n.msgs.clear()
        srv.proc.send_signal(signal.SIGTERM)
        n.wait(has("STOPPING=1"), what="STOPPING=1")
        assert srv.proc.wait(timeout=30) == 0, srv.log()
        srv.assert_log_clean()
    finally:
        n.close()


def test_abstract_socket_no_watchdog(tmp_path, svc):
    n = Notify(tmp_path, abstract=True)
    try:
        srv = start_raw(svc({"NOTIFY_SOCKET": n.env}))
        n.wait(has("READY=1"), what="READY=1 on an abstract socket")
        assert port_answers(srv.port)
        srv.proc.send_signal(signal.SIGTERM)
        n.wait(has("STOPPING=1"), what="STOPPING=1")
        assert srv.proc.wait(timeout=30) == 0, srv.log()
        # Without WATCHDOG_USEC, no pings.
        assert "WATCHDOG=1" not in n.lines(), n.msgs
        srv.assert_log_clean()
    finally:
        n.close()


def test_without_notify_socket_nothing_changes(tmp_path, svc):
    srv = svc().start()
    assert srv.get("/v1/health").status == 200
    assert srv.stop() == 0
    srv.assert_log_clean()


def definition(name, echo):
    return json.dumps(wf(name, [sh("t", ["echo", echo])]), indent=1)


def test_sighup_registers_the_definitions_again(tmp_path, svc):
    d = tmp_path / "defs"
    d.mkdir()
    (d / "a.json").write_text(definition("alpha", "one"))
    n = Notify(tmp_path)
    try:
        srv = svc({"NOTIFY_SOCKET": n.env}).start(extra=["--register", d])
        n.wait(has("READY=1"), what="READY=1")
        assert srv.get("/v1/workflows/alpha").json["version"] == 1

        def hup():
            n.msgs.clear()
            srv.proc.send_signal(signal.SIGHUP)
            n.wait(has("RELOADING=1"), what="RELOADING=1")
            n.wait(has("READY=1"), what="READY=1 after the reload")

        # A changed file becomes a new version; a bad file (b) is reported and the files
        # after it (c) are registered all the same.
        (d / "a.json").write_text(definition("alpha", "two"))
        (d / "b.json").write_text('{"name": "beta", "tasks": [{"name": "x"}]}')
        (d / "c.json").write_text(definition("gamma", "three"))
        hup()
        assert srv.proc.poll() is None, srv.log()
        a = srv.get("/v1/workflows/alpha").json
        assert a["version"] == 2, a
        assert "two" in json.dumps(a["definition"]), a
        assert srv.get("/v1/workflows/gamma").json["version"] == 1
        assert srv.get("/v1/workflows/beta", check=False).status == 404
        log = srv.log()
        assert "invalid workflow" in log and "b.json" in log, log
        # A file broken later keeps its previous version.
        (d / "a.json").write_text('{"name": "alpha", "tasks": [')
        hup()
        assert srv.proc.poll() is None, srv.log()
        a = srv.get("/v1/workflows/alpha").json
        assert a["version"] == 2 and "two" in json.dumps(a["definition"]), a
        # Unchanged files add no version.
        (d / "a.json").write_text(definition("alpha", "two"))
        hup()
        assert srv.get("/v1/workflows/alpha").json["version"] == 2
        assert srv.get("/v1/workflows/gamma").json["version"] == 1
        assert srv.stop() == 0
        srv.assert_log_clean()
    finally:
        n.close()


def test_sighup_without_register_keeps_running(tmp_path, svc):
    srv = svc().start()
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log("Received SIGHUP")
    assert srv.get("/v1/health").status == 200
    assert srv.stop() == 0
    srv.assert_log_clean()


def test_worker_notifies_and_survives_sighup(tmp_path):
    """orch-worker.service is Type=notify too: READY=1, a reload that keeps it running,
    STOPPING=1 (on a PostgreSQL of the test's own)."""
    from pgutil import Node, Postgres
    pg = Postgres().start()
    n = Notify(tmp_path)
    node = None
    try:
        node = Node(tmp_path, pg.database(), "w1", role="worker",
                    env={"NOTIFY_SOCKET": n.env}).start()
        m = n.wait(has("READY=1"), what="READY=1")
        assert "STATUS=running" in m.split("\n"), m
        n.msgs.clear()
        node.proc.send_signal(signal.SIGHUP)
        n.wait(has("RELOADING=1"), what="RELOADING=1")
        n.wait(has("READY=1"), what="READY=1 after the reload")
        assert node.proc.poll() is None, node.log()
        node.proc.send_signal(signal.SIGTERM)
        n.wait(has("STOPPING=1"), what="STOPPING=1")
        assert node.proc.wait(timeout=30) == 0, node.log()
        node.assert_log_clean()
    finally:
        n.close()
        if node:
            node.cleanup()
        pg.destroy()
