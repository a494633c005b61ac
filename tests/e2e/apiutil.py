"""
Helpers and fixtures for the HTTP API tests: a real `orch server` on a free loopback port,
requests with urllib, and the check of every answer against docs/openapi.yaml.

A test module imports the fixtures it uses (`from apiutil import server, fresh_server`);
pytest finds fixtures in the module's namespace.

- `server` (one per test module): a data directory with an admin key made offline with
  `orch keys create --name admin --scope admin --data-dir D --json`, then
  `orch server --listen 127.0.0.1:PORT --data-dir D` in its own process group, ready once
  /v1/health/scheduler answers. At the end: SIGTERM, wait, and the process group is killed
  only if it hangs; the server must have exited 0 with no sanitizer report.
- `fresh_server` (one per test): the same, for tests that hurt a server (rate limiting,
  shutdown).

Every answer that `Server.request` gets is checked against the OpenAPI document (`Spec`):
the status must be documented for the operation, the declared headers must be there
(X-Request-Id always, WWW-Authenticate on 401, Retry-After on 429, Allow on 405), and the
body must validate against the documented schema (Draft 2020-12, $refs resolved in the
document).
"""
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from conftest import ORCH, REPO, SANITIZER_MARKERS, base_env, pid_alive

SPEC_PATH = REPO / "docs" / "openapi.yaml"
SPEC_URI = "urn:orch:openapi"

FINAL = ("succeeded", "failed", "cancelled", "timed_out")

# Exit code of the CLI for a key the server refused (401, 403, 429).
EXIT_AUTH = 7

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
REQ_ID = re.compile(r"^req_[0-9A-Za-z_-]+$")
WWW_AUTH = re.compile(r'^Bearer error="invalid_token", error_description="(.*)"$')


# --------------------------------------------------------------------------- the spec

def _make_validator(doc, ref):
    """A Draft 2020-12 validator of `ref` (a "#/components/..." pointer) inside `doc`."""
    schema = {"$ref": SPEC_URI + ref}
    try:  # jsonschema >= 4.18
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012
        registry = Registry().with_resource(SPEC_URI,
                                            Resource(contents=doc, specification=DRAFT202012))
        return Draft202012Validator(schema, registry=registry)
    except ImportError:  # Debian 12's jsonschema 4.10
        from jsonschema import RefResolver
        resolver = RefResolver(base_uri=SPEC_URI, referrer=doc, store={SPEC_URI: doc})
        return Draft202012Validator(schema, resolver=resolver)


def json_pointer(doc, ref):
    """The object at a local reference "#/a/b" in doc (KeyError if there is none)."""
    assert ref.startswith("#/"), f"not a local reference: {ref}"
    node = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node[part]
    return node


class Spec:
    """docs/openapi.yaml, with schema validation and answer checking."""

    def __init__(self, path=SPEC_PATH):
        self.path = Path(path)
        self.doc = yaml.safe_load(self.path.read_text())
        self._validators = {}
        self._routes = []
        for template in self.doc.get("paths", {}):
            rx = "^" + re.sub(r"\\\{[^/}]+\\\}", "[^/]+", re.escape(template)) + "$"
            self._routes.append((re.compile(rx), template))

    def deref(self, obj):
        """Follow "$ref" of a response, parameter or header object."""
        seen = 0
        while isinstance(obj, dict) and "$ref" in obj:
            obj = json_pointer(self.doc, obj["$ref"])
            seen += 1
            assert seen < 20, "reference loop"
        return obj

    def validator(self, ref):
        if not ref.startswith("#/"):
            ref = "#/components/schemas/" + ref
        v = self._validators.get(ref)
        if v is None:
            v = self._validators[ref] = _make_validator(self.doc, ref)
        return v

    def errors(self, instance, ref):
        """Validation errors of `instance` against a schema (name or "#/..." pointer)."""
        return sorted(self.validator(ref).iter_errors(instance), key=lambda e: list(e.path))

    def validate(self, instance, ref, what="instance"):
        errs = self.errors(instance, ref)
        if errs:
            lines = [f"{what} does not match {ref}:"]
            for e in errs[:10]:
                lines.append(f"  at {'/'.join(map(str, e.path)) or '(root)'}: {e.message}")
            lines.append(json.dumps(instance, indent=1)[:3000])
            raise AssertionError("\n".join(lines))

    def template(self, path):
        """The documented path template a concrete path (query excluded) fits, or None."""
        path = path.split("?", 1)[0]
        for rx, template in self._routes:
            if rx.match(path):
                return template
        return None

    def operations(self):
        """(template, METHOD, operation object) for every documented operation."""
        for template, item in self.doc["paths"].items():
            for method, op in item.items():
                if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                    yield template, method.upper(), op

    def methods(self, template):
        return {m.upper() for m in self.doc["paths"][template]
                if m in ("get", "put", "post", "delete", "patch", "head", "options")}

    def _check_headers(self, declared, headers, what):
        for name, h in (declared or {}).items():
            h = self.deref(h)
            value = headers.get(name)
            if h.get("required"):
                assert value is not None, f"{what}: header {name} missing; headers: {dict(headers)}"
            if value is not None and "schema" in h:
                errs = sorted(Draft202012Validator(h["schema"]).iter_errors(value), key=str)
                assert not errs, f"{what}: header {name}: {value!r}: {errs[0].message}"

    def check(self, method, path, resp):
        """Check an answer (a Resp) against the document; raises AssertionError."""
        what = f"{method} {path} -> {resp.status}"
        rid = resp.headers.get("X-Request-Id")
        assert rid and REQ_ID.match(rid), f"{what}: X-Request-Id missing or malformed: {rid!r}"
        template = self.template(path)
        op = self.doc["paths"][template].get(method.lower()) if template else None
        if resp.status == 405 or op is None:
            # Not a documented operation: an unknown path (404) or a method the path does
            # not have (405 with Allow); either way the one error shape.
            if template is None:
                assert resp.status == 404, f"{what}: an undocumented path must be 404"
            else:
                assert resp.status == 405, f"{what}: a method the path lacks must be 405"
                allow = resp.headers.get("Allow")
                assert allow, f"{what}: 405 without an Allow header"
                listed = {m.strip() for m in allow.split(",") if m.strip()}
                documented = self.methods(template)
                assert documented <= listed <= documented | {"HEAD", "OPTIONS"}, \
                    f"{what}: Allow '{allow}' but the document has {sorted(documented)}"
            self._check_json_type(resp, what)
            self.validate(resp.json, "Error", what)
            expect = {404: "not_found", 405: "method_not_allowed"}.get(resp.status)
            assert resp.json["error"]["code"] == expect, what
            return
        responses = op["responses"]
        declared = responses.get(str(resp.status), responses.get("default"))
        assert declared is not None, \
            f"{what}: status {resp.status} is not documented for {method} {template} " \
            f"(documented: {sorted(responses)}); body: {resp.text[:500]}"
        declared = self.deref(declared)
        self._check_headers(declared.get("headers"), resp.headers, what)
        content = declared.get("content")
        if not content:
            assert resp.body == b"", f"{what}: a body where none is documented: {resp.text[:200]}"
            return
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        assert ctype in content, \
            f"{what}: Content-Type {resp.headers.get('Content-Type')!r}, documented {sorted(content)}"
        schema = content[ctype].get("schema", {})
        ref = schema.get("$ref")
        if ctype == "application/json":
            self._check_json_type(resp, what)
            if ref:
                self.validate(resp.json, ref, what)
            if resp.status >= 400 and ref and ref.endswith(("/Error", "/ValidationError")):
                code = resp.json["error"]["code"]
                assert code == ERROR_CODES[resp.status], \
                    f"{what}: error code '{code}', expected '{ERROR_CODES[resp.status]}'"
        elif ctype == "application/x-ndjson":
            for line in resp.text.splitlines():
                if line.strip():
                    self.validate(json.loads(line), ref, what + " (ndjson line)")

    @staticmethod
    def _check_json_type(resp, what):
        ct = resp.headers.get("Content-Type") or ""
        assert re.match(r"^application/json;\s*charset=utf-8$", ct, re.I), \
            f"{what}: Content-Type {ct!r}, expected 'application/json; charset=utf-8'"
        assert resp.json is not None, f"{what}: body is not JSON: {resp.text[:300]!r}"


ERROR_CODES = {400: "bad_request", 401: "invalid_token", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
               422: "validation_failed", 429: "rate_limited", 500: "internal",
               503: "unavailable"}

_SPEC = None


def spec():
    global _SPEC
    if _SPEC is None:
        _SPEC = Spec()
    return _SPEC


# --------------------------------------------------------------------------- answers

class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # case-insensitive (email.message.Message)
        self.body = body
        self.text = body.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text) if body else None
        except ValueError:
            self.json = None

    def error(self):
        return (self.json or {}).get("error", {})

    def __repr__(self):
        return f"<Resp {self.status} {self.text[:300]!r}>"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))

DEFAULT = object()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unknown_key():
    """A well-formed key that no server has."""
    return "sk_" + secrets.token_urlsafe(32)[:43]


def wf(name, tasks, **kw):
    d = {"name": name, "tasks": tasks}
    d.update(kw)
    return d


def sh(name, command, **kw):
    t = {"name": name, "command": command}
    t.update(kw)
    return t


# --------------------------------------------------------------------------- the server

class Server:
    """One `orch server` process on a data directory (restartable on the same one)."""

    def __init__(self, tmp, workers=4, grace="10s"):
        self.tmp = Path(tmp)
        self.data_dir = self.tmp / "data"
        self.port = None
        self.proc = None
        self.workers = workers
        self.grace = grace
        self.admin_key = None
        self.admin = None
        self.logs = []  # stderr files of every start, in order
        self.env = {}   # more environment for the server (ORCH_ settings)
        self._n = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    # ---- offline commands
    def orch(self, *args, timeout=60, env=None):
        e = base_env({"E2E_TMP": str(self.tmp)})
        e.update(env or {})
        return subprocess.run([str(ORCH)] + [str(a) for a in args], capture_output=True,
                              text=True, errors="replace", timeout=timeout, env=e,
                              cwd=self.tmp, stdin=subprocess.DEVNULL)

    def keys_create(self, name, scope="admin", expires=None):
        args = ["keys", "create", "--name", name, "--scope", scope, "--data-dir", self.data_dir,
                "--json"]
        if expires:
            args += ["--expires", expires]
        res = self.orch(*args)
        assert res.returncode == 0, f"orch keys create failed ({res.returncode}): {res.stderr}"
        try:
            k = json.loads(res.stdout)
        except ValueError:
            raise AssertionError(f"orch keys create --json printed no JSON: {res.stdout!r}")
        assert k.get("key", "").startswith("sk_") and k.get("id", "").startswith("key_"), k
        return k

    # ---- lifecycle
    def start(self, timeout=30, extra=()):
        if self.admin_key is None:
            self.admin = self.keys_create("admin", "admin")
            self.admin_key = self.admin["key"]
        if self.port is None:
            self.port = free_port()
        self._n += 1
        err = open(self.tmp / f"server{self._n}.err", "w+b")
        out = open(self.tmp / f"server{self._n}.out", "w+b")
        self.logs.append(err)
        args = [str(ORCH), "server", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
                str(self.data_dir), "--workers", str(self.workers), "--shutdown-grace",
                self.grace] + list(extra)
        self.proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                     env=base_env({"E2E_TMP": str(self.tmp), **self.env}),
                                     cwd=self.tmp,
                                     start_new_session=True)
        self.proc.out_file = out
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"orch server exited with {self.proc.returncode} at "
                                     f"start-up:\n{self.log()}")
            try:
                r = self.request("GET", "/v1/health/scheduler", key=None, check=False,
                                 timeout=2)
                if r.status in (200, 503):
                    return self
            except OSError:
                pass
            if time.monotonic() > end:
                raise AssertionError(f"orch server did not answer within {timeout}s:\n"
                                     f"{self.log()}")
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal the server, wait for it; kill its group if it hangs. Returns its exit code."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"orch server did not exit within {timeout}s of signal "
                                     f"{sig}:\n{self.log()[-3000:]}")
        self.proc = None
        p.out_file.close()
        return p.returncode

    def kill(self):
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)  # its own session: the server alone
            except ProcessLookupError:
                pass
            p.wait(timeout=10)

    def log(self, which=-1):
        """stderr of the last (or given) run of the server."""
        if not self.logs:
            return ""
        f = self.logs[which]
        f.flush()
        return Path(f.name).read_text(errors="replace")

    def all_logs(self):
        return "".join(self.log(i) for i in range(len(self.logs)))

    def assert_log_clean(self):
        text = self.all_logs()
        for m in SANITIZER_MARKERS:
            assert m not in text, f"'{m}' in the server's stderr:\n{text[-5000:]}"

    def cleanup(self):
        self.kill()
        for f in self.logs:
            f.close()
        kill_task_leftovers(self.tmp)

    # ---- requests
    def request(self, method, path, body=None, headers=None, key=DEFAULT, check=True,
                timeout=30, raw=None):
        """One request with urllib; returns a Resp (any status). With `check`, the answer
        is validated against docs/openapi.yaml."""
        h = dict(headers or {})
        if key is DEFAULT:
            key = self.admin_key
        if key is not None:
            h["Authorization"] = f"Bearer {key}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, headers=h, method=method)
        try:
            with _OPENER.open(req, timeout=timeout) as r:
                resp = Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            resp = Resp(e.code, e.headers, e.read())
        if check:
            spec().check(method, path, resp)
        return resp

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # ---- workflows and executions
    def apply(self, definition, expect=(200, 201)):
        r = self.post("/v1/workflows", definition)
        assert r.status in ((expect,) if isinstance(expect, int) else expect), r
        return r.json

    def trigger(self, name, params=None, headers=None, expect=201):
        body = {"params": params} if params is not None else None
        r = self.post(f"/v1/workflows/{name}/executions", body, headers=headers)
        assert r.status == expect, r
        return r.json

    def execution(self, exec_id):
        r = self.get(f"/v1/executions/{exec_id}")
        assert r.status == 200, r
        return r.json

    def wait_exec(self, exec_id, until=FINAL, timeout=30):
        """Poll an execution until its status is in `until` (or a predicate holds)."""
        end = time.monotonic() + timeout
        while True:
            d = self.execution(exec_id)
            if (d["status"] in until) if not callable(until) else until(d):
                return d
            if time.monotonic() > end:
                raise AssertionError(f"execution {exec_id} still {d['status']} after {timeout}s:"
                                     f"\n{json.dumps(d, indent=1)}")
            time.sleep(0.05)

    def wait_log(self, needle, timeout=5):
        end = time.monotonic() + timeout
        while True:
            text = self.log()
            if needle in text:
                return text
            if time.monotonic() > end:
                raise AssertionError(f"'{needle}' not in the server's log within {timeout}s:\n"
                                     f"{text[-3000:]}")
            time.sleep(0.05)


def kill_task_leftovers(tmp):
    """Kill task processes our servers started that are still there (their environment
    carries E2E_TMP=<tmp>): only after a failure, a SIGKILLed server or a hung task."""
    marker = f"E2E_TMP={tmp}".encode() + b"\0"
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if b"ORCH_EXECUTION_ID=" in env and marker in env + b"\0" and pid_alive(pid):
            for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    kill()
                except (ProcessLookupError, PermissionError):
                    pass


def _serve(tmp):
    s = Server(tmp)
    try:
        s.start()
        yield s
        code = s.stop()
        assert code == 0, f"orch server exited with {code} on SIGTERM:\n{s.log()[-3000:]}"
        s.assert_log_clean()
    finally:
        s.cleanup()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    yield from _serve(tmp_path_factory.mktemp("api"))


@pytest.fixture
def fresh_server(tmp_path):
    yield from _serve(tmp_path)


@pytest.fixture
def stopped_server(tmp_path):
    """A Server not started yet (the test starts and stops it), cleaned up at the end."""
    s = Server(tmp_path)
    try:
        yield s
    finally:
        s.cleanup()


def raw_exchange(port, head, body=b"", timeout=10, chunk=65536):
    """Send a request by hand (head: the request line and headers, without the final
    CRLF CRLF) and read the answer, even if the server answers before the body is all
    sent (as it may for a 413). Returns (status, headers dict lowercased, body bytes)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head.encode() + b"\r\n\r\n")
        s.setblocking(False)
        import select
        sent, got = 0, b""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            want_write = sent < len(body)
            r, w, _ = select.select([s], [s] if want_write else [], [], 0.5)
            if r:
                try:
                    data = s.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    data = b""
                if not data:
                    break
                got += data
                if b"\r\n\r\n" in got and _complete(got):
                    break
            if w and want_write:
                try:
                    sent += s.send(body[sent:sent + chunk])
                except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                    sent = len(body)
    finally:
        s.close()
    head_b, _, rest = got.partition(b"\r\n\r\n")
    lines = head_b.decode("latin-1").split("\r\n")
    assert lines and lines[0].startswith("HTTP/1."), f"no HTTP answer: {got[:200]!r}"
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def _complete(got):
    head, _, rest = got.partition(b"\r\n\r\n")
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    return bool(m) and len(rest) >= int(m.group(1))


def keepalive_pair(port, key, path="/v1/health"):
    """Two GETs on one http.client connection; returns (resp1, resp2, same_socket)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        r1 = c.getresponse()
        b1 = r1.read()
        sock1 = c.sock
        c.request("GET", path, headers={"Authorization": f"Bearer {key}"})
        r2 = c.getresponse()
        b2 = r2.read()
        same = sock1 is not None and c.sock is sock1
        return (r1.status, dict(r1.getheaders()), b1), (r2.status, dict(r2.getheaders()), b2), same
    finally:
        c.close()
