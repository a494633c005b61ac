"""
redisutil.py - a private redis-server for end-to-end tests, and a tiny client.

Redis starts Debian's redis-server on a free loopback port (and a unix socket) in a temp
dir, with no persistence unless asked, optionally with a password; a test may stop it
(SIGTERM, by PID), kill -9 it, start it again on the same port, pause it (SIGSTOP) and
resume it (SIGCONT), and FLUSHALL. redis-server missing is an error, never a skip:
scripts/install-deps.sh test installs it. Nothing here uses a system Redis service.

Redis.command() speaks RESP over a socket (python3 has no redis module here): it returns
str/int/list/None, and raises RedisError for an error reply.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from apiutil import free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisError(Exception):
    pass


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class _Reader:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        ln, self.buf = self.buf.split(b"\r\n", 1)
        return ln

    def exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self, raw=False):
        ln = self.line()
        kind, rest = ln[:1], ln[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.exact(n)
            return data if raw else data.decode(errors="replace")
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.reply(raw) for _ in range(n)]
        raise RedisError(f"unexpected reply {ln!r}")


class Redis:
    """One redis-server of a test."""

    def __init__(self, password=None, persist=False, extra=()):
        self.dir = Path(tempfile.mkdtemp(prefix="orch-e2e-redis-"))
        self.password = password
        self.persist = persist
        self.extra = list(extra)
        self.port = None
        self.sock = str(self.dir / "redis.sock")
        self.proc = None
        self.log_path = self.dir / "redis.log"

    # URLs (the password is in them: tests only)
    def url(self, db=None, password=None):
        pw = self.password if password is None else password
        auth = f":{pw}@" if pw else ""
        return f"redis://{auth}127.0.0.1:{self.port}" + (f"/{db}" if db is not None else "")

    def unix_url(self, db=None):
        auth = f":{self.password}@" if self.password else ""
        return f"unix://{auth}{self.sock}" + (f"?db={db}" if db is not None else "")

    def start(self, timeout=30):
        if self.port is None:
            self.port = free_port()
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--unixsocket", self.sock, "--unixsocketperm", "700", "--dir", str(self.dir),
                "--daemonize", "no", "--logfile", str(self.log_path),
                "--save", "", "--appendonly", "yes" if self.persist else "no"]
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}:\n"
                                     f"{self.log()}")
            try:
                if self.command("PING") == "PONG":
                    return self
            except (OSError, RedisError):
                pass
            if time.monotonic() > end:
                raise AssertionError(f"redis-server did not answer within {timeout}s:\n"
                                     f"{self.log()}")
            time.sleep(0.02)

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM (by PID) and wait for the exit."""
        if self.running():
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=timeout)

    def kill(self):
        """kill -9, and reap it."""
        if self.running():
            self.proc.kill()
            self.proc.wait(timeout=30)

    def restart(self):
        """Start again on the same port (after stop or kill)."""
        self.stop()
        return self.start()

    def pause(self):
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    def destroy(self):
        if self.running():
            try:
                self.resume()
            except OSError:
                pass
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def command(self, *args, raw=False, timeout=10, db=None):
        """One command on a fresh connection (to database `db`, else 0); its reply
        (RedisError for an error)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            r = _Reader(s)
            if self.password:
                s.sendall(_encode(["AUTH", self.password]))
                r.reply()
            if db is not None:
                s.sendall(_encode(["SELECT", db]))
                r.reply()
            s.sendall(_encode(list(args)))
            return r.reply(raw)

    def flushall(self):
        return self.command("FLUSHALL")

    def info(self, section=""):
        """INFO as a dict of its 'key:value' lines."""
        text = self.command("INFO", section) if section else self.command("INFO")
        out = {}
        for ln in text.splitlines():
            if ":" in ln and not ln.startswith("#"):
                k, v = ln.split(":", 1)
                out[k] = v
        return out
