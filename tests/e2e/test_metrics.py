"""
GET /metrics: the Prometheus text exposition format 0.0.4.

A server is made to cause known events (3 failed executions and 2 succeeded, 2
authentication failures with different reasons); then `promtool check metrics` accepts its
output, and a real Prometheus (started here on a free loopback port, with a configuration
written here, scraping every second) scrapes it in both authentication modes (a read key in
its `authorization` section, and --metrics-auth none on a --metrics-listen port) and its
query API returns exactly those values. Also: --metrics-auth key refuses a scrape without a
key (401 with the reason), the --metrics-listen port serves /metrics alone, no label carries
an id or a key, and `orch worker --metrics-listen` serves it on PostgreSQL.
"""
import json
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from apiutil import WWW_AUTH, Server, free_port, sh, unknown_key, wf
from conftest import wait_for

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"

# A sample line: name{labels} value
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
# Anything of the shape of an id orch makes (ex_, tr_, key_, req_, sch_ ...) or a key.
ID_LIKE = re.compile(r'\b[a-z]{2,5}_[0-9A-Za-z]{12,}|sk_')


def scrape(url, key=None, path="/metrics"):
    """(status, content type, body text) of GET url+path."""
    h = {"Authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(url + path, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def samples(text):
    """{(name, frozenset of (label, value))): float} of an exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())))


def promtool_check(text):
    assert Path(PROMTOOL).exists(), "promtool missing: scripts/install-deps.sh test installs it"
    res = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, f"promtool check metrics: {res.stdout}{res.stderr}"


def run_flows(server, fails=3, oks=2):
    """`fails` failed and `oks` succeeded executions, waited for."""
    server.apply(wf("m-fail", [sh("a", "false")]))
    server.apply(wf("m-ok", [sh("a", "true"), {"name": "b", "type": "noop",
                                                "dependsOn": ["a"]}]))
    ids = [server.trigger("m-fail")["id"] for _ in range(fails)]
    ids += [server.trigger("m-ok")["id"] for _ in range(oks)]
    for i in ids:
        server.wait_exec(i)
    return ids


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    """A server (--metrics-auth key, the default, and a --metrics-listen port) after the
    known events: 3 failed and 2 succeeded executions, 2 refused requests (no
    Authorization header; two spaces after Bearer)."""
    s = Server(tmp_path_factory.mktemp("metrics"))
    s.metrics_port = free_port()
    try:
        s.start(extra=["--metrics-listen", f"127.0.0.1:{s.metrics_port}"])
        s.ids = run_flows(s)
        assert s.get("/v1/health", key=None).status == 401
        r = s.get("/v1/health", key=None, headers={"Authorization": f"Bearer  {s.admin_key}"})
        assert r.status == 401
        yield s
        assert s.stop() == 0
        s.assert_log_clean()
    finally:
        s.cleanup()


@pytest.fixture(scope="module")
def open_server(tmp_path_factory):
    """A server whose /metrics needs no key, on its own port: 1 failed, 1 succeeded."""
    s = Server(tmp_path_factory.mktemp("metrics-none"))
    s.metrics_port = free_port()
    try:
        s.start(extra=["--metrics-listen", f"127.0.0.1:{s.metrics_port}", "--metrics-auth",
                       "none"])
        run_flows(s, fails=1, oks=1)
        yield s
        assert s.stop() == 0
        s.assert_log_clean()
    finally:
        s.cleanup()


def test_metrics_text_is_valid_and_counts_the_events(busy):
    status, ctype, text = scrape(busy.url, busy.admin_key)
    assert status == 200, text
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    promtool_check(text)
    assert value(text, "orch_executions_finished_total", workflow="m-fail", status="failed") == 3
    assert value(text, "orch_executions_finished_total", workflow="m-ok",
                 status="succeeded") == 2
    assert value(text, "orch_executions_finished_total", workflow="m-ok", status="failed") == 0
    assert value(text, "orch_executions_started_total", workflow="m-fail") == 3
    assert value(text, "orch_task_attempts_total", type="command", status="failed") == 3
    assert value(text, "orch_task_attempts_total", type="command", status="succeeded") == 2
    assert value(text, "orch_task_attempts_total", type="noop", status="succeeded") == 2
    assert value(text, "orch_execution_duration_seconds_count", status="failed") == 3
    assert value(text, "orch_task_duration_seconds_count", type="command") == 5
    assert value(text, "orch_auth_failures_total", reason="missing") == 1
    assert value(text, "orch_auth_failures_total", reason="malformed") == 1
    assert value(text, "orch_auth_failures_total", reason="unknown") == 0
    # HTTP requests by route template, never by path.
    assert value(text, "orch_http_requests_total", method="POST",
                 route="/v1/workflows/{name}/executions", code="201") == 5
    assert value(text, "orch_http_requests_total", method="GET", route="/v1/health",
                 code="401") == 2
    assert "/v1/executions/ex_" not in text
    assert value(text, "orch_worker_slots") == busy.workers
    assert value(text, "orch_store_commit_duration_seconds_count") > 0
    assert value(text, "orch_engine_running") == 1
    assert value(text, "process_resident_memory_bytes") > 0
    assert value(text, "process_open_fds") > 0
    assert value(text, "process_cpu_seconds_total") > 0
    for name in ("orch_queue_depth", "orch_queue_oldest_age_seconds", "orch_tasks_running",
                 "orch_worker_slots_busy", "orch_scheduler_fires_total",
                 "orch_scheduler_skips_total", "orch_scheduler_fire_lag_seconds_count",
                 "orch_db_pool_size", "orch_db_pool_in_use", "orch_db_pool_waiting",
                 "orch_db_pool_exhausted_total", "orch_executions_taken_over_total",
                 "orch_scheduler_leader", "orch_node_last_heartbeat_timestamp_seconds",
                 "orch_database_up", "orch_disk_full", "orch_executions_claimed_total",
                 "orch_executions_lost_total", "orch_node_cluster"):
        assert value(text, name) is not None, f"{name} missing"


def test_no_label_carries_an_id_or_a_key(busy):
    _, _, text = scrape(busy.url, busy.admin_key)
    for (name, labels), _ in samples(text).items():
        for label, v in labels:
            assert not ID_LIKE.search(v), f"{name}: label {label}={v!r} looks like an id or key"
    for i in busy.ids:
        assert i not in text
    assert busy.admin_key not in text and busy.admin["prefix"] not in text


def test_metrics_listen_port_serves_metrics_alone(busy):
    url = f"http://127.0.0.1:{busy.metrics_port}"
    status, _, text = scrape(url, busy.admin_key)
    assert status == 200
    assert value(text, "orch_executions_finished_total", workflow="m-fail", status="failed") == 3
    status, _, body = scrape(url, busy.admin_key, path="/v1/health")
    assert status == 404, body
    assert json.loads(body)["error"]["code"] == "not_found"


def test_metrics_auth_key_refuses_a_scrape_without_a_key(tmp_path):
    s = Server(tmp_path)
    s.metrics_port = free_port()
    try:
        s.start(extra=["--metrics-listen", f"127.0.0.1:{s.metrics_port}"])
        for url in (s.url, f"http://127.0.0.1:{s.metrics_port}"):
            status, headers, body = scrape(url)
            assert status == 401, body
            err = json.loads(body)["error"]
            assert err["code"] == "invalid_token" and "Authorization" in err["message"], err
            assert WWW_AUTH.match(headers["WWW-Authenticate"]), headers
            status, _, body = scrape(url, unknown_key())
            assert status == 401 and "unknown" in json.loads(body)["error"]["message"], body
        # A key of the read scope is enough.
        reader = s.keys_create("scraper", "read")["key"]
        status, _, text = scrape(f"http://127.0.0.1:{s.metrics_port}", reader)
        assert status == 200 and "orch_info{" in text
        status, _, text = scrape(s.url, reader)
        assert value(text, "orch_auth_failures_total", reason="missing") == 2
        assert value(text, "orch_auth_failures_total", reason="unknown") == 2
        assert s.stop() == 0
        s.assert_log_clean()
    finally:
        s.cleanup()


def test_metrics_auth_none_needs_no_key(open_server):
    for url in (open_server.url, f"http://127.0.0.1:{open_server.metrics_port}"):
        status, _, text = scrape(url)
        assert status == 200, text
        promtool_check(text)
    # The rest of the API still needs its key.
    assert open_server.get("/v1/health", key=None).status == 401


def test_bad_metrics_settings_are_refused(tmp_path):
    s = Server(tmp_path)
    res = s.orch("server", "--data-dir", tmp_path / "d", "--metrics-auth", "maybe")
    assert res.returncode == 2, res
    assert "invalid --metrics-auth 'maybe' (use none, or key" in res.stderr
    res = s.orch("server", "--data-dir", tmp_path / "d", "--listen", f"127.0.0.1:{free_port()}",
                 "--metrics-listen", "127.0.0.1:notaport")
    assert res.returncode == 2, res
    assert "--metrics-listen" in res.stderr


# --------------------------------------------------------------------------- Prometheus

class Prometheus:
    def __init__(self, tmp, jobs):
        assert Path(PROMETHEUS).exists(), \
            "prometheus missing: scripts/install-deps.sh test installs it"
        self.dir = Path(tmp)
        self.port = free_port()
        lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s",
                 "scrape_configs:"]
        for name, target, key in jobs:
            lines += [f"  - job_name: {name}", f"    static_configs:",
                      f"      - targets: ['{target}']"]
            if key:
                lines += ["    authorization:", "      type: Bearer",
                          f"      credentials: {key}"]
        (self.dir / "prometheus.yml").write_text("\n".join(lines) + "\n")
        self.log = open(self.dir / "prometheus.log", "w+b")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
            start_new_session=True, cwd=self.dir)

    def query(self, q):
        """The result vector of an instant query: [(labels, value)]."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?" +
               urllib.parse.urlencode({"query": q}))
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                d = json.loads(r.read())
        except OSError:
            return None
        assert d["status"] == "success", d
        return [(x["metric"], float(x["value"][1])) for x in d["data"]["result"]]

    def wait_value(self, q, want, timeout=60):
        last = []

        def ok():
            last[:] = [self.query(q)]
            return last[0] is not None and len(last[0]) == 1 and last[0][0][1] == want
        try:
            wait_for(ok, timeout=timeout, interval=0.2, what=f"{q} == {want}")
        except AssertionError:
            self.log.flush()
            raise AssertionError(f"{q}: {last} (want {want})\n"
                                 f"{Path(self.log.name).read_text()[-3000:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def test_prometheus_scrapes_the_values_caused(busy, open_server, tmp_path):
    reader = busy.keys_create("prometheus", "read")["key"]
    prom = Prometheus(tmp_path, [
        ("orch-key", f"127.0.0.1:{busy.port}", reader),
        ("orch-key-port", f"127.0.0.1:{busy.metrics_port}", reader),
        ("orch-none", f"127.0.0.1:{open_server.metrics_port}", None),
    ])
    try:
        for job in ("orch-key", "orch-key-port", "orch-none"):
            prom.wait_value(f'up{{job="{job}"}}', 1)
        prom.wait_value('orch_executions_finished_total{job="orch-key",status="failed",'
                        'workflow="m-fail"}', 3)
        prom.wait_value('orch_executions_finished_total{job="orch-key",status="succeeded",'
                        'workflow="m-ok"}', 2)
        prom.wait_value('sum(orch_executions_finished_total{job="orch-key"})', 5)
        prom.wait_value('orch_executions_finished_total{job="orch-key-port",status="failed",'
                        'workflow="m-fail"}', 3)
        prom.wait_value('orch_task_attempts_total{job="orch-key",type="command",'
                        'status="failed"}', 3)
        prom.wait_value('orch_auth_failures_total{job="orch-key",reason="missing"}', 1)
        prom.wait_value('orch_auth_failures_total{job="orch-key",reason="malformed"}', 1)
        prom.wait_value('orch_executions_finished_total{job="orch-none",status="failed",'
                        'workflow="m-fail"}', 1)
        prom.wait_value('orch_executions_finished_total{job="orch-none",status="succeeded",'
                        'workflow="m-ok"}', 1)
        # Histograms aggregate: every execution's duration is in one bucket or another.
        prom.wait_value('sum(orch_execution_duration_seconds_count{job="orch-key"})', 5)
    finally:
        prom.stop()
    # Prometheus's scrapes were authenticated: no failure was added.
    _, _, text = scrape(busy.url, busy.admin_key)
    assert value(text, "orch_auth_failures_total", reason="missing") == 1


# --------------------------------------------------------------------------- orch worker

def test_worker_serves_metrics_on_postgresql(tmp_path):
    from pgutil import Node, Postgres
    pg = Postgres().start()
    w = None
    try:
        url = pg.database()
        port = free_port()
        w = Node(tmp_path, url, "mw1", role="worker")
        w.start(extra=["--metrics-listen", f"127.0.0.1:{port}"])
        murl = f"http://127.0.0.1:{port}"
        status, headers, body = scrape(murl)
        assert status == 401, body
        assert "Authorization" in json.loads(body)["error"]["message"]
        reader = w.keys_create("scraper", "read")["key"]
        status, _, text = scrape(murl, reader)
        assert status == 200, text
        promtool_check(text)
        assert value(text, "orch_node_cluster") == 1
        assert value(text, "orch_engine_running") == 1
        assert value(text, "orch_worker_slots") == w.workers
        assert value(text, "orch_node_lease_seconds") == 2  # Node's --lease 2s
        wait_for(lambda: value(scrape(murl, reader)[2],
                               "orch_node_last_heartbeat_timestamp_seconds") > 0,
                 what="a heartbeat")
        status, _, body = scrape(murl, reader, path="/v1/executions")
        assert status == 404
        assert w.stop() == 0
        w.assert_log_clean()
    finally:
        if w:
            w.cleanup()
        pg.destroy()


def test_openapi_documents_the_route():
    import yaml
    from conftest import REPO
    doc = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
    op = doc["x-outside-v1"]["/metrics"]["get"]
    assert set(op["responses"]) >= {"200", "401"}
    assert "text/plain; version=0.0.4; charset=utf-8" in op["responses"]["200"]["content"]
    assert '{"GET", "/metrics", KEY_SCOPE_READ, api__metrics}' in \
        (REPO / "src" / "api" / "router.c").read_text()
