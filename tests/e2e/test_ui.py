"""
The web UI in a real headless Chromium (Debian's chromium and chromium-driver, driven by
python3-selenium) against a real `orch server`, on SQLite and on PostgreSQL.

Covered: sign-in with a key (a session cookie, the key kept nowhere); running a workflow
from the form built from its params (an error next to a missing required field); its graph
turning green live; a failing execution's error, Gantt (attempts and back-off) and log;
cancel and retry with confirmation; following a log live; a read-only key seeing no action
button (and the server refusing the action anyway); a state-changing request without the
CSRF token refused; `<script>` in data shown as text (no alert, no new script element); no
console error on any page (the browser's log is read after every test); a screenshot of
every page under the build folder (ORCH_BUILD, else the binary's build directory, in
ui-shots/); and, when tests/ui/node_modules holds the pinned axe-core (the test installs it
with `npm ci` when npm can), no serious or critical accessibility violation on any page.

Chromium, chromedriver or selenium missing: every test is skipped with the reason
(scripts/install-deps.sh test installs them).
"""
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from apiutil import Server, FINAL
from conftest import ORCH, REPO, wait_for

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    HAVE_SELENIUM = True
except ImportError:  # pragma: no cover - the skip below says why
    HAVE_SELENIUM = False

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None)

_missing = [n for n, ok in (("python3-selenium", HAVE_SELENIUM), ("chromium", CHROMIUM),
                            ("chromium-driver (chromedriver)", CHROMEDRIVER)) if not ok]
pytestmark = pytest.mark.skipif(bool(_missing), reason="the browser tests need " + ", ".join(
    _missing) + " (scripts/install-deps.sh test installs them)")

UI_TOOLS = REPO / "tests" / "ui"
AXE = UI_TOOLS / "node_modules" / "axe-core" / "axe.min.js"

WAIT = 40  # seconds; a loaded machine with ASan builds is slow, tests wait on conditions


def shots_dir(backend):
    base = os.environ.get("ORCH_BUILD")
    root = Path(base) if base else ORCH.resolve().parents[2]
    d = root / "ui-shots" / backend
    d.mkdir(parents=True, exist_ok=True)
    return d


# --------------------------------------------------------------------------- workflows

GATE = 'while [ ! -f "$E2E_TMP/go-$ORCH_EXECUTION_ID" ]; do sleep 0.05; done'

WF_RUN = {
    "name": "ui-run",
    "description": "run from the form of the web UI",
    "params": {
        "region": {"type": "string", "required": True, "description": "region code"},
        "batch": {"type": "number", "default": 10},
        "dry": {"type": "boolean", "default": False},
    },
    "tasks": [
        {"name": "prepare", "command": "echo preparing $ORCH_PARAM_region $ORCH_PARAM_batch"},
        {"name": "gate", "dependsOn": ["prepare"], "command": GATE + "; echo through"},
        {"name": "fan", "dependsOn": ["prepare"], "forEach": ["a", "b", "c"],
         "command": ["echo", "{{ item }}"]},
        {"name": "done", "dependsOn": ["gate", "fan"], "type": "noop"},
    ],
}

WF_FAIL = {
    "name": "ui-fail",
    "tasks": [
        {"name": "ok", "command": "echo fine"},
        {"name": "broken", "dependsOn": ["ok"], "retries": 1,
         "retryBackoff": {"initial": "300ms", "factor": 1, "jitter": False},
         "command": "echo 'broken on attempt '$ORCH_ATTEMPT' <script>alert(1)</script>' >&2; exit 3"},
    ],
}

WF_SLOW = {"name": "ui-slow", "tasks": [{"name": "wait", "command": GATE}]}

WF_RETRY = {"name": "ui-retry",
            "tasks": [{"name": "flaky", "command": 'test -f "$E2E_TMP/fixed"'}]}

WF_FOLLOW = {"name": "ui-follow", "tasks": [
    {"name": "talk", "command": "echo first line; " + GATE + "; echo second line"}]}

WF_SCHED = {
    "name": "ui-sched",
    "description": "a nightly schedule in Berlin",
    "schedules": [{"name": "nightly", "cron": "30 2 * * *", "timezone": "Europe/Berlin"}],
    "tasks": [{"name": "hello", "command": "echo hello from version 1"}],
}

WF_MANY = {"name": "ui-many", "tasks": [{"name": "nothing", "type": "noop"}]}

WF_CHILD = {"name": "ui-child", "tasks": [
    {"name": "c1", "command": "echo child one"},
    {"name": "c2", "dependsOn": ["c1"], "command": "echo child two"}]}
WF_PARENT = {"name": "ui-parent", "tasks": [
    {"name": "prep", "command": "echo prep"},
    {"name": "call", "dependsOn": ["prep"], "type": "workflow", "workflow": "ui-child"}]}

WF_CONC = {"name": "ui-conc", "concurrency": 1, "tasks": [
    {"name": "first", "command": GATE},
    {"name": "second", "command": "echo second"}]}

WF_GROUP = {"name": "ui-group", "tasks": [
    {"name": "items", "forEach": [f"i{i:02d}" for i in range(30)],
     "command": ["test", "{{ item }}", "!=", "i07"]},
    {"name": "after", "dependsOn": ["items"], "type": "noop"}]}

XSS = "<script>alert('xss')</script>"
WF_XSS = {
    "name": "ui-xss",
    "description": "description " + XSS,
    "params": {"note": {"type": "string", "default": "<img src=x onerror=alert('p')>"}},
    "tasks": [
        {"name": "say", "command": ["echo", "log " + XSS]},
        {"name": "each", "forEach": ["item " + XSS], "command": ["echo", "{{ item }}"]},
    ],
}


# --------------------------------------------------------------------------- fixtures

def _pg_server(tmp):
    from pgutil import Node, Postgres
    pg = Postgres().start()
    node = Node(tmp, pg.database(), "ui1", workers=4)
    node.start()
    return pg, node


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(request, tmp_path_factory):
    """A server with the test workflows, on SQLite or PostgreSQL."""
    tmp = tmp_path_factory.mktemp("ui-" + request.param)
    pg = None
    if request.param == "sqlite":
        srv = Server(tmp, workers=4)
        srv.start()
    else:
        pg, srv = _pg_server(tmp)
    try:
        for wf in (WF_RUN, WF_FAIL, WF_SLOW, WF_RETRY, WF_FOLLOW, WF_XSS, WF_SCHED, WF_MANY, WF_CHILD, WF_PARENT, WF_CONC, WF_GROUP):
            srv.apply(wf)
        srv.name = request.param
        srv.shots = shots_dir(request.param)
        yield srv
        code = srv.stop()
        assert code == 0, f"orch server exited with {code}:\n{srv.log()[-3000:]}"
        srv.assert_log_clean()
    finally:
        srv.cleanup()
        if pg:
            pg.destroy()


@pytest.fixture(scope="module")
def browser(backend):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,800", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--force-color-profile=srgb",
              "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(WAIT)
    drv.set_script_timeout(WAIT)
    b = Browser(drv, backend)
    try:
        yield b
    finally:
        drv.quit()


@pytest.fixture(autouse=True)
def no_console_errors(request):
    """After every test: the browser logged no error (read and emptied)."""
    yield
    if "browser" in request.fixturenames:
        b = request.getfixturevalue("browser")
        b.assert_no_console_errors()


# --------------------------------------------------------------------------- helpers

class Browser:
    def __init__(self, drv, srv):
        self.d = drv
        self.srv = srv
        self.signed_in_as = None

    # ---- navigation and waiting
    def go(self, path, h1=None):
        self.d.get(self.srv.url + path)
        if h1:
            self.wait_text("h1", h1)

    def wait(self, cond, what, timeout=WAIT):
        def ok(_):
            try:
                return cond()
            except StaleElementReferenceException:
                return False
        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(ok)
        except Exception as e:  # TimeoutException: say what we waited for, and show the page
            raise AssertionError(f"waited {timeout}s for {what}; page {self.d.current_url}:\n"
                                 f"{self.text('main')[:3000]}\nlog: {self.console()}") from e

    def css(self, sel):
        return self.d.find_elements(By.CSS_SELECTOR, sel)

    def one(self, sel):
        return self.wait(lambda: (self.css(sel) or [None])[0], f"element {sel}")

    def text(self, sel="main"):
        els = self.css(sel)
        return els[0].get_attribute("textContent") if els else ""

    def wait_text(self, sel, needle, timeout=WAIT):
        return self.wait(lambda: needle in self.text(sel), f"'{needle}' in {sel}", timeout)

    def shot(self, name, full=False):
        """A screenshot of the window (1280x800), or with `full` of the page up to 1600 px."""
        path = str(self.srv.shots / f"{name}.png")
        if not full:
            self.d.save_screenshot(path)
            return
        height = self.d.execute_script("return document.documentElement.scrollHeight")
        self.d.set_window_size(1280, min(1600, max(800, height + 140)))
        try:
            self.d.save_screenshot(path)
            # and a small copy (60%, at most 1100 px of the page) for the documentation
            clip = {"x": 0, "y": 0, "width": 1280, "height": min(height, 1100), "scale": 0.6}
            png = self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "clip": clip})
            (self.srv.shots / f"{name}-small.png").write_bytes(base64.b64decode(png["data"]))
        finally:
            self.d.set_window_size(1280, 800)

    # ---- session
    def sign_in(self, key, expect_nav=True):
        # leave the current page first (an execution page polls), so no poll of it runs
        # between the cookies' removal and the sign-in page and ends in a 401
        self.d.get("about:blank")
        self.d.execute_cdp_cmd("Network.clearBrowserCookies", {})
        self.go("/login")
        field = self.one("#key")
        field.clear()
        field.send_keys(key)
        self.one("#signin").click()
        if expect_nav:
            self.wait(lambda: self.css("#signout"), "the signed-in header")
        self.signed_in_as = key

    def ensure_admin(self):
        if self.signed_in_as != self.srv.admin_key:
            self.sign_in(self.srv.admin_key)

    # ---- the browser's log
    def console(self):
        return self.d.get_log("browser")

    def assert_no_console_errors(self, allow=()):
        bad = []
        for e in self.console():
            if e.get("level") != "SEVERE":
                continue
            msg = e.get("message", "")
            # The page asks GET /v1/session at start; signed out, the answer is 401 (the
            # browser logs that as a failed load, not a script error).
            if e.get("source") == "network" and "/v1/session" in msg and " 401 " in msg:
                continue
            if any(a in msg for a in allow):
                continue
            bad.append(e)
        assert not bad, "errors in the browser's console:\n" + "\n".join(
            f"{e.get('source')}: {e.get('message')}" for e in bad)

    def assert_no_alert(self):
        try:
            a = self.d.switch_to.alert
        except NoAlertPresentException:
            return
        raise AssertionError(f"an alert is open: {a.text!r}")

    def node_statuses(self):
        return self.d.execute_script(
            "return [...document.querySelectorAll('#graph g.node')].map("
            "n => [n.dataset.task, n.dataset.status]);")

    def confirm(self):
        self.one("dialog[open] button[data-confirm='ok']").click()


def fetch_script(method, path, headers):
    """JS for execute_async_script: a fetch from the page; returns [status, body]."""
    return ("const done = arguments[arguments.length - 1];"
            f"fetch({json.dumps(path)}, {{method: {json.dumps(method)}, "
            f"headers: {json.dumps(headers)}, credentials: 'same-origin'}})"
            ".then(async r => done([r.status, await r.text()]))"
            ".catch(e => done([0, String(e)]));")


def trigger_and_wait(srv, name, until=FINAL, params=None):
    ex = srv.trigger(name, params)
    return srv.wait_exec(ex["id"], until=until, timeout=WAIT)


# --------------------------------------------------------------------------- tests

def test_sign_in_session_cookie_and_sign_out(browser):
    b, srv = browser, browser.srv
    b.go("/executions")  # a deep link while signed out goes to the sign-in page
    b.wait(lambda: "/login" in b.d.current_url, "the sign-in page")
    b.one("#key").send_keys("sk_" + "x" * 43)
    b.one("#signin").click()
    b.wait_text("#login-error", "refused")
    b.assert_no_console_errors(allow=("/v1/session - Failed to load resource",))
    b.shot("login")
    b.one("#key").clear()
    b.one("#key").send_keys(srv.admin_key)
    b.one("#signin").click()
    b.wait_text("h1", "Executions")  # back to the deep link
    assert b.d.current_url.endswith("/executions")
    cookie = b.d.get_cookie("orch_session")
    assert cookie and cookie["httpOnly"] and cookie.get("sameSite") == "Strict", cookie
    assert srv.admin_key not in json.dumps(b.d.get_cookies())
    # the key is kept nowhere the page's scripts or a later visitor can read
    stored = b.d.execute_script(
        "return JSON.stringify([localStorage, sessionStorage, location.href, document.cookie]);")
    assert srv.admin_key not in stored and "sk_" not in stored
    # a reload keeps the session (the page asks GET /v1/session for its CSRF token)
    b.go("/workflows", h1="Workflows")
    # the list has read every workflow's executions (none of those requests is still out when
    # the session ends)
    b.wait(lambda: b.d.execute_script(
        "const r = [...document.querySelectorAll('tr[data-workflow]')];"
        "return r.length > 0 && r.every(x => x.lastElementChild.textContent.trim());"),
        "the workflows' success rates")
    b.one("#signout").click()
    b.wait(lambda: "/login" in b.d.current_url, "the sign-in page after sign-out")
    b.go("/workflows")
    b.wait(lambda: "/login" in b.d.current_url, "signed out for good")
    b.signed_in_as = None


def test_ui_served_with_csp_and_deep_links(browser):
    srv = browser.srv
    r = srv.request("GET", "/executions/ex_0000000000000000", key=None, check=False,
                    headers={"Accept": "text/html"})
    assert r.status == 200 and b'type="module"' in r.body, r
    csp = r.headers.get("Content-Security-Policy", "")
    assert "script-src 'self'" in csp and "default-src 'self'" in csp and "unsafe" not in csp
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    # no inline script or style in the page itself (the CSP would refuse them)
    assert b"<script>" not in r.body and b"style=" not in r.body
    total = len(r.body)
    for f in sorted((REPO / "ui").iterdir()):
        if f.suffix in (".js", ".css", ".svg"):
            a = srv.request("GET", "/assets/" + f.name, key=None, check=False)
            assert a.status == 200 and a.body == f.read_bytes(), f.name
            total += len(a.body)
    # every file of the first load together (all modules are imported at start)
    assert total < 200 * 1024, f"first load {total} bytes"


def test_run_from_form_and_graph_turns_green_live(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    b.go("/workflows/ui-run", h1="ui-run")
    b.one("#run-form")
    # the form comes from the params: a required string, a number with its default, a boolean
    assert b.one("#param-batch").get_attribute("value") == "10"
    assert b.one("#param-region").get_attribute("aria-required") == "true"
    b.one("#run-submit").click()
    b.wait_text("#param-region-err", "required")
    assert b.one("#param-region").get_attribute("aria-invalid") == "true"
    b.one("#param-batch").clear()
    b.one("#param-batch").send_keys("many")
    b.one("#run-submit").click()
    b.wait_text("#param-batch-err", "number")
    b.shot("workflow-form-errors")
    b.one("#param-batch").clear()
    b.one("#param-batch").send_keys("7")
    b.one("#param-region").send_keys("eu")
    b.one("#run-submit").click()
    b.wait(lambda: "/executions/ex_" in b.d.current_url, "the new execution's page")
    ex_id = b.d.current_url.rsplit("/", 1)[1]
    detail = srv.execution(ex_id)
    assert detail["params"] == {"region": "eu", "batch": 7, "dry": False}, detail["params"]
    # live: the gate runs (shown without a reload), then everything turns green
    b.wait(lambda: dict(b.node_statuses()).get("gate") == "running", "gate running in the graph")
    assert dict(b.node_statuses()).get("done") not in ("succeeded",)
    b.wait_text("#why", "done")  # the noop waits for its dependencies, and says so
    b.shot("execution-running")
    (srv.tmp / f"go-{ex_id}").write_text("")
    b.wait(lambda: b.node_statuses() and all(st == "succeeded" for _, st in b.node_statuses()),
           "every node of the graph green")
    names = {n for n, _ in b.node_statuses()}
    assert {"prepare", "gate", "fan", "done"} <= names, names
    # the fan-out is one node with its counts; selecting it lists its instances
    assert "3/3" in b.text("#graph g.node[data-task='fan']")
    b.one("#graph g.node[data-task='fan']").click()
    b.wait(lambda: len(b.css("#group-instances tr[data-task]")) == 3, "the 3 instances listed")
    assert "fan[0]" in b.text("#group-instances")
    b.wait(lambda: b.one("#exec-status").get_attribute("data-status") == "succeeded",
           "the execution's status")
    assert "preparing eu 7" in json.dumps(srv.get(f"/v1/executions/{ex_id}/logs").json)
    b.shot("execution-succeeded")


def test_failing_execution_error_gantt_and_log(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    d = trigger_and_wait(srv, "ui-fail")
    assert d["status"] == "failed"
    b.go(f"/executions/{d['id']}", h1=d["id"])
    b.wait_text("#exec-error", "failed")
    b.wait_text("#failed-tasks", "broken")
    assert "exit status 3: broken on attempt 2 <script>" in b.text("#failed-tasks")
    row = b.one("#tasks tr[data-task='broken']")
    assert row.get_attribute("data-status") == "failed"
    rtext = row.get_attribute("textContent")
    assert "exit code 3" in rtext and "#1" in rtext and "#2" in rtext, rtext
    # the Gantt: both attempts on one axis, the back-off between them
    b.wait(lambda: len(b.css("#gantt rect.seg[data-attempt]")) >= 3, "attempt bars in the Gantt")
    bars = b.d.execute_script(
        "return [...document.querySelectorAll('#gantt g.row')].map(g => [g.dataset.task,"
        " [...g.querySelectorAll('rect.seg')].map(r => r.getAttribute('class'))]);")
    broken = dict(bars)["broken"]
    assert broken.count("seg st-failed") == 2 and "seg backoff" in broken, bars
    # the back-off ends when attempt 2 became queued (its queuedAt): exactly the 300 ms
    backoff = b.d.execute_script(
        "return document.querySelector(\"#gantt g.row[data-task='broken'] rect.seg.backoff\")"
        ".querySelector('title').textContent;")
    assert backoff == "broken: back-off 300 ms", backoff
    # the log: the failing task's stderr, as text
    b.wait_text("#log", "broken on attempt 1 <script>alert(1)</script>")
    b.wait_text("#log", "broken on attempt 2")
    assert b.d.execute_script("return document.querySelectorAll('script').length") == 1
    b.assert_no_alert()
    # the keyboard: a node of the graph takes the focus, Enter shows its log
    node = b.one("#graph g.node[data-task='ok']")
    b.d.execute_script("arguments[0].focus();", node)
    node.send_keys("\ue007")  # Enter
    b.wait(lambda: b.one("#log-task").get_attribute("value") == "ok", "the log of 'ok'")
    b.wait_text("#log", "fine")
    # the failure is on the overview too, with its error line
    b.go("/", h1="Overview")
    b.wait_text("#h-fails + div", "broken")
    b.shot("overview")


def test_fanout_group_expands_in_place(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    d = trigger_and_wait(srv, "ui-group")
    assert d["status"] == "failed"
    b.go(f"/executions/{d['id']}", h1=d["id"])
    node_sel = "#graph g.node[data-task='items']"
    node = b.one(node_sel)
    assert node.get_attribute("aria-expanded") == "false"
    assert not b.css("#graph g.instances")
    below = b.one("#graph g.node[data-task='after']").get_attribute("transform")
    # the keyboard: Enter on the focused group opens it in place, under its node
    b.d.execute_script("arguments[0].focus();", node)
    node.send_keys("\ue007")  # Enter
    cells_sel = "#graph g.instances[data-group='items'] g.inst"
    b.wait(lambda: len(b.css(cells_sel)) == 24, "24 instance cells under the group")
    cells = b.d.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(c =>"
        " [c.dataset.task, c.dataset.status, c.getAttribute('aria-label'), c.textContent]);", cells_sel)
    status = {c[0]: c[1] for c in cells}
    assert status["items[7]"] == "failed", cells
    assert all(st == "succeeded" for name, st in status.items() if name != "items[7]"), cells
    for name, st, label, text in cells:  # in words (label, title) as well as colour and symbol
        assert label == f"{name}: {'failed' if st == 'failed' else 'succeeded'}", label
        assert f"{name}: " in text, text
    assert "6 more" in b.text("#graph g.instances[data-group='items']")
    assert b.one(node_sel).get_attribute("aria-expanded") == "true"
    # the focus stays on the group; the nodes below moved down to make room
    assert b.d.execute_script("return document.activeElement.dataset.task") == "items"
    assert b.one("#graph g.node[data-task='after']").get_attribute("transform") != below
    b.shot("execution-group-expanded")
    # Space collapses it, the layout is back as it was
    node = b.one(node_sel)
    b.d.execute_script("arguments[0].focus();", node)
    node.send_keys(" ")
    b.wait(lambda: not b.css("#graph g.instances"), "the group collapsed")
    assert b.one(node_sel).get_attribute("aria-expanded") == "false"
    assert b.one("#graph g.node[data-task='after']").get_attribute("transform") == below
    # the mouse: a click opens it, another closes it
    b.one(node_sel).click()
    b.wait(lambda: len(b.css(cells_sel)) == 24, "the group opened by a click")
    b.one(node_sel).click()
    b.wait(lambda: not b.css("#graph g.instances"), "the group closed by a click")


def test_executions_filters_pages_and_live_refresh(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    ids = [srv.trigger("ui-many")["id"] for _ in range(26)]
    for i in ids:
        srv.wait_exec(i, timeout=WAIT)
    b.go("/executions?workflow=ui-many", h1="Executions")
    def rows(attr="id"):  # read at once: the live refresh replaces the rows
        return b.d.execute_script(
            "return [...document.querySelectorAll('table.executions tbody tr')]"
            ".map(r => r.dataset[arguments[0]]);", attr)
    b.wait(lambda: len(rows()) == 25, "a page of 25")
    assert rows() == list(reversed(ids))[:25]  # newest first
    b.one("#older").click()
    b.wait(lambda: rows() == [ids[0]], "the last page")
    assert "cursor=" in b.d.current_url
    b.d.find_element(By.XPATH, "//button[contains(., 'Newer')]").click()
    b.wait(lambda: len(rows()) == 25, "back to the first page")
    # the first page follows new executions by itself
    new = srv.trigger("ui-many")["id"]
    b.wait(lambda: rows() and rows()[0] == new, "the new execution listed without a reload")
    # filters: the form writes them into the URL (a deep link)
    sel = b.one("#f-status")
    b.d.execute_script("arguments[0].value = 'failed,timed_out';", sel)
    b.one("#f-workflow").clear()
    b.one("form.filters button[type=submit]").click()
    b.wait(lambda: "status=failed%2Ctimed_out" in b.d.current_url, "the filter in the URL")
    b.wait(lambda: b.css("table.executions tbody tr") or "No execution matches" in b.text(),
           "the filtered list")
    statuses = set(rows("status"))
    assert statuses <= {"failed", "timed_out"}, statuses
    b.shot("executions-filtered")


def test_child_execution_nested_in_the_timeline_and_linked(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    d = trigger_and_wait(srv, "ui-parent")
    assert d["status"] == "succeeded", d
    child = [t for t in d["tasks"] if t["name"] == "call"][0]["childExecutionId"]
    b.go(f"/executions/{d['id']}", h1=d["id"])
    b.wait(lambda: len(b.css("#gantt g.row")) == 5, "parent and child rows in the timeline")
    labels = b.d.execute_script(
        "return [...document.querySelectorAll('#gantt g.row text.label')].map(t => t.textContent);")
    assert labels[0:2] == ["prep", "call"] and labels[2].startswith("\u21b3 ui-child"), labels
    assert labels[3:] == ["c1", "c2"], labels
    b.wait(lambda: b.css(f"#children a[href='/executions/{child}']"), "the child listed")
    b.shot("execution-parent", full=True)
    b.one(f"#children a[href='/executions/{child}']").click()
    b.wait_text("h1", child)
    b.one(f"main a[href='/executions/{d['id']}']").click()  # its parent
    b.wait_text("h1", d["id"])


def test_why_is_it_waiting(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    ex = srv.trigger("ui-conc")
    b.go(f"/executions/{ex['id']}", h1=ex["id"])
    # one task runs, the other waits for the workflow's concurrency (said in words)
    b.wait(lambda: "concurrency" in b.text("#why"), "the reason in 'Why is it waiting?'")
    waiting = b.text("#why")
    assert "1 of 1" in waiting, waiting
    b.shot("execution-waiting")
    (srv.tmp / f"go-{ex['id']}").write_text("")
    b.wait(lambda: b.one("#exec-status").get_attribute("data-status") == "succeeded", "the end")
    b.wait(lambda: not b.one("#why").is_displayed(), "nothing waits any more")
    # the timeline: the time 'second' was queued (its queuedAt to its startedAt) is a hatched
    # segment, with its words in a title, ending where its attempt's bar starts
    sel = "#gantt g.row[data-task='second'] rect.seg.queued[data-for-attempt='1']"
    b.wait(lambda: b.css(sel), "the queued time of 'second' in the timeline")
    title, end, start, fill = b.d.execute_script(
        "const q = document.querySelector(arguments[0]);"
        "const a = q.parentNode.querySelector(\"rect.seg[data-attempt='1']\");"
        "return [q.querySelector('title').textContent,"
        " +q.getAttribute('x') + +q.getAttribute('width'), +a.getAttribute('x'),"
        " getComputedStyle(q).fill];", sel)
    assert title.startswith("second: attempt 1: queued "), title
    assert abs(end - start) < 1.5, (end, start)
    assert "url(" in fill and "gantt-queued-hatch" in fill, fill


def test_health_not_ok_says_what_to_do(browser):
    """A component that is not ok is shown in colour and words with its fix (the overview's
    own rendering, fed a health document with a full disk and busy workers)."""
    b = browser
    b.ensure_admin()
    b.go("/", h1="Overview")
    health = {"status": "degraded", "version": "x", "uptimeSeconds": 1, "components": {
        "disk": {"status": "down", "freeBytes": 0, "freePercent": 0, "path": "/var/lib/orch",
                 "full": True, "message": "disk full: /var/lib/orch: no space left",
                 "fullSince": None},
        "workers": {"status": "degraded", "busy": 4, "total": 4},
        "queue": {"status": "ok", "depth": 0, "oldestQueuedAgeMs": 0}}}
    got = b.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('/assets/overview.js').then(m => { const ul = m.healthList(arguments[0]);"
        " done([...ul.children].map(li => [li.dataset.component, li.className,"
        " li.textContent])); }).catch(e => done(String(e)));", health)
    by = {c: (cls, text) for c, cls, text in got}
    assert by["disk"][0] == "st-down" and "\u2717 down" in by["disk"][1], by
    assert "Fix: disk full: /var/lib/orch: no space left. Free space in /var/lib/orch" in by["disk"][1]
    assert by["workers"][0] == "st-degraded" and "4 of 4 busy" in by["workers"][1]
    assert "Fix: Every slot is busy" in by["workers"][1] and "--workers" in by["workers"][1]
    assert "Fix" not in by["queue"][1]


def test_cancel_with_confirmation(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    ex = srv.trigger("ui-slow")
    srv.wait_exec(ex["id"], until=lambda d: d["tasks"][0]["status"] == "running", timeout=WAIT)
    b.go(f"/executions/{ex['id']}", h1=ex["id"])
    b.one("#cancel").click()
    b.one("dialog[open]")
    b.shot("cancel-confirm")
    # declining changes nothing
    b.one("dialog[open] button.secondary").click()
    assert srv.execution(ex["id"])["status"] == "running"
    b.one("#cancel").click()
    b.confirm()
    b.wait(lambda: b.one("#exec-status").get_attribute("data-status") == "cancelled",
           "the execution cancelled")
    assert srv.execution(ex["id"])["status"] == "cancelled"
    b.wait(lambda: b.css("#retry"), "a Retry button on the cancelled execution")
    assert not b.css("#cancel")


def test_retry_with_confirmation(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    d = trigger_and_wait(srv, "ui-retry")
    assert d["status"] == "failed"
    b.go(f"/executions/{d['id']}", h1=d["id"])
    (srv.tmp / "fixed").write_text("")
    b.one("#retry").click()
    b.confirm()
    b.wait(lambda: b.one("#exec-status").get_attribute("data-status") == "succeeded",
           "the retried execution succeeded")
    assert srv.execution(d["id"])["retriedAt"]
    row = b.one("#tasks tr[data-task='flaky']").get_attribute("textContent")
    assert "#1" in row and "#2" in row, row


def test_follow_log_live(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    ex = srv.trigger("ui-follow")
    b.go(f"/executions/{ex['id']}", h1=ex["id"])
    b.wait(lambda: "talk" in [o.get_attribute("value") for o in b.css("#log-task option")],
           "the task in the log's list")
    b.d.execute_script("const s = document.getElementById('log-task'); s.value = 'talk';"
                       "s.dispatchEvent(new Event('change'));")
    b.one("#log-follow").click()
    b.wait_text("#log", "first line")
    assert "second line" not in b.text("#log")
    (srv.tmp / f"go-{ex['id']}").write_text("")
    b.wait_text("#log", "second line")
    b.wait_text("#log-status", "complete")
    b.shot("execution-log-follow")


def test_schedules_pause_resume_backfill_and_version_diff(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    v2 = dict(WF_SCHED, tasks=[{"name": "hello", "command": "echo hello from version 2"}])
    srv.apply(v2)
    sch = [x for x in srv.get("/v1/schedules").json["items"] if x["workflow"] == "ui-sched"][0]
    b.go("/workflows/ui-sched", h1="ui-sched")
    card = f"div[data-schedule='{sch['id']}']"
    b.wait_text(card, "Europe/Berlin")
    b.one(card + " details summary").click()
    b.wait(lambda: len(b.css(card + " ol.fires li")) == 10, "the next 10 fires")
    first = b.text(card + " ol.fires li")
    assert "T02:30:00+01:00" in first and "Europe/Berlin" in first, first
    # versions: the diff of v1 and v2 shows the changed line
    b.wait_text("main", "lines differ between v1 and v2")
    diff = b.text("pre.diff")
    assert "- " in diff and "hello from version 1" in diff and "+ " in diff, diff
    b.shot("workflow-schedules-versions", full=True)
    # pause, then resume
    b.d.find_element(By.XPATH, f"//div[@data-schedule='{sch['id']}']//button[text()='Pause']").click()
    b.wait(lambda: srv.get(f"/v1/schedules/{sch['id']}").json["paused"], "the schedule paused")
    b.wait_text(card + " h3", "paused")
    b.d.find_element(By.XPATH, f"//div[@data-schedule='{sch['id']}']//button[text()='Resume']").click()
    b.wait(lambda: not srv.get(f"/v1/schedules/{sch['id']}").json["paused"], "resumed")
    b.wait_text(card + " h3", "active")
    # backfill two nights (UTC window); an empty form says what is missing
    b.one(card + " form.backfill button").click()
    b.wait_text(card + " form.backfill", "Give both ends")
    b.d.execute_script(
        "document.getElementById(arguments[0]).value = '2026-11-01T00:00';"
        "document.getElementById(arguments[1]).value = '2026-11-03T00:00';",
        f"bf-from-{sch['id']}", f"bf-until-{sch['id']}")
    b.one(card + " form.backfill button").click()
    b.wait_text(card + " form.backfill", "2 due times queued")
    wait_for(lambda: len(srv.get("/v1/executions?workflow=ui-sched").json["items"]) == 2,
             timeout=WAIT, what="the two backfilled executions")


def test_csrf_token_required(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    d = trigger_and_wait(srv, "ui-fail")
    b.go(f"/executions/{d['id']}", h1=d["id"])
    path = f"/v1/executions/{d['id']}/retry"
    for headers in ({}, {"X-CSRF-Token": "wrong"}):
        status, body = b.d.execute_async_script(fetch_script("POST", path, headers))
        assert status == 403, (status, body)
        assert json.loads(body)["error"]["code"] == "csrf", body
    # refused, so nothing happened
    assert srv.execution(d["id"])["retriedAt"] is None
    b.assert_no_console_errors(allow=(path + " - Failed to load resource",))
    # the token of the session makes the same request pass
    status, body = b.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/v1/session').then(r => r.json()).then(s => fetch(" + json.dumps(path) + ","
        " {method: 'POST', headers: {'X-CSRF-Token': s.csrfToken}}))"
        ".then(async r => done([r.status, await r.text()]));")
    assert status == 200, (status, body)
    srv.wait_exec(d["id"], timeout=WAIT)


def test_read_only_key_sees_no_buttons(browser):
    b, srv = browser, browser.srv
    r = srv.post("/v1/keys", {"name": "viewer", "scopes": ["read"]})
    assert r.status == 201, r
    failed = trigger_and_wait(srv, "ui-fail")
    b.sign_in(r.json["key"])
    assert "read-only" in b.text("#who")
    assert not any("API keys" in a.text for a in b.css("#nav a"))
    b.go("/workflows/ui-run", h1="ui-run")
    b.wait_text("main", "Definition")
    b.wait(lambda: "Versions" in b.text("main") and "Schedules" in b.text("main"), "the page")
    assert not b.css("#run-form") and not b.css("main button:not(.secondary)")
    b.go(f"/executions/{failed['id']}", h1=failed["id"])
    b.wait_text("#exec-status", "failed")
    b.wait(lambda: b.css("#tasks table"), "the task table")
    assert not b.css("#retry") and not b.css("#cancel")
    assert b.css("#actions") and not b.css("#actions button")
    b.shot("execution-read-only")
    # the server refuses the action anyway, with the session's own token
    status, body = b.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/v1/session').then(r => r.json()).then(s => fetch('/v1/executions/"
        + failed["id"] + "/retry', {method: 'POST', headers: {'X-CSRF-Token': s.csrfToken}}))"
        ".then(async r => done([r.status, await r.text()]));")
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden", (status, body)
    b.assert_no_console_errors(allow=("/retry - Failed to load resource",))
    b.go("/keys", h1="API keys")
    assert not b.css("#key-form")
    b.one("#signout").click()
    b.wait(lambda: "/login" in b.d.current_url, "signed out")
    b.signed_in_as = None


def test_revoked_key_ends_the_session(browser):
    b, srv = browser, browser.srv
    r = srv.post("/v1/keys", {"name": "short-lived", "scopes": ["write"]})
    assert r.status == 201, r
    b.sign_in(r.json["key"])
    b.go("/executions", h1="Executions")
    assert srv.delete(f"/v1/keys/{r.json['id']}").status == 204
    # the next poll is refused: the page goes to the sign-in page, back here after it
    b.wait(lambda: "/login" in b.d.current_url, "the sign-in page", timeout=WAIT)
    assert "next=%2Fexecutions" in b.d.current_url
    b.assert_no_console_errors(allow=(" 401 (Unauthorized)",))
    b.signed_in_as = None
    b.sign_in(srv.admin_key)


def test_script_in_data_is_shown_as_text(browser):
    b, srv = browser, browser.srv
    # a task name cannot hold markup: the definition is refused, naming it
    bad = {"name": "ui-bad", "tasks": [{"name": "x<script>", "command": "true"}]}
    r = srv.post("/v1/workflows", bad)
    assert r.status == 422, r
    b.ensure_admin()
    d = trigger_and_wait(srv, "ui-xss", params={"note": "param " + XSS})
    assert d["status"] == "succeeded", d
    b.go("/workflows", h1="Workflows")
    b.wait_text("main", "description " + XSS)
    b.go("/workflows/ui-xss", h1="ui-xss")
    b.wait_text("main", "<img src=x onerror=alert('p')>")
    b.go(f"/executions/{d['id']}", h1=d["id"])
    b.wait_text("#log", "log " + XSS)
    b.wait_text("main", "param " + XSS)
    b.wait_text("#tasks", "item " + XSS)
    b.shot("execution-escaped")
    for path in ("/workflows", "/workflows/ui-xss", f"/executions/{d['id']}"):
        if path != f"/executions/{d['id']}":
            b.go(path, h1="ui-xss" if "ui-xss" in path else "Workflows")
            b.wait_text("main", XSS)
        assert b.d.execute_script("return document.querySelectorAll('script').length") == 1
        assert b.d.execute_script("return document.querySelectorAll('main img').length") == 0
        b.assert_no_alert()


def test_api_keys_created_once_and_revoked(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    b.go("/keys", h1="API keys")
    b.one("#key-form button[type=submit]").click()
    b.wait_text("#key-form", "Give the key a name")
    b.one("#key-name").send_keys("ci-bot")
    b.d.execute_script("document.getElementById('key-scope').value = 'write';")
    b.one("#key-expires").send_keys("30d")
    b.one("#key-form button[type=submit]").click()
    key = b.wait(lambda: b.css("#new-key") and b.one("#new-key").get_attribute("value"),
                 "the new key shown")
    assert key.startswith("sk_")
    made = [k for k in srv.get("/v1/keys").json["items"] if k["name"] == "ci-bot"]
    assert len(made) == 1 and "write" in made[0]["scopes"] and "admin" not in made[0]["scopes"]
    assert made[0]["expiresAt"], made
    b.wait(lambda: b.css(f"tr[data-key='{made[0]['id']}']"), "the key listed")
    assert key not in b.text(f"tr[data-key='{made[0]['id']}']")
    b.shot("keys-created")
    b.go("/keys", h1="API keys")  # shown once: not after a reload
    b.wait(lambda: b.css(f"tr[data-key='{made[0]['id']}']"), "the list")
    assert key not in b.d.page_source
    b.d.find_element(By.XPATH, f"//tr[@data-key='{made[0]['id']}']//button[text()='Revoke']").click()
    b.confirm()
    b.wait_text(f"tr[data-key='{made[0]['id']}']", "revoked")
    assert [k for k in srv.get("/v1/keys").json["items"] if k["id"] == made[0]["id"]][0]["revokedAt"]
    assert srv.get("/v1/workflows", key=key, check=False).status == 401


PAGES = [("overview", "/", "Overview"), ("workflows", "/workflows", "Workflows"),
         ("workflow", "/workflows/ui-run", "ui-run"), ("executions", "/executions", "Executions"),
         ("cluster", "/cluster", "Cluster"), ("keys", "/keys", "API keys")]


def _axe(b):
    """Serious or critical axe-core violations of the page shown."""
    b.d.execute_script(AXE.read_text())
    res = b.d.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']}).then(r => done(r.violations.map("
        "v => [v.id, v.impact, v.help, v.nodes.slice(0, 3).map(n => n.target.join(' '))])))"
        ".catch(e => done([['axe', 'critical', String(e), []]]));")
    return [v for v in res if v[1] in ("serious", "critical")]


def _ensure_axe():
    """axe-core pinned in tests/ui/package-lock.json: installed with `npm ci` if absent."""
    if AXE.exists():
        return True
    npm = shutil.which("npm")
    if npm:
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(UI_TOOLS)],
                       capture_output=True, timeout=300, cwd=UI_TOOLS)
    return AXE.exists()


def test_every_page_screenshot_no_console_error_accessible(browser):
    b, srv = browser, browser.srv
    b.ensure_admin()
    trigger_and_wait(srv, "ui-fail")
    failed = srv.get("/v1/executions?workflow=ui-fail&limit=1").json["items"][0]
    pages = PAGES + [("execution", f"/executions/{failed['id']}", failed["id"])]
    have_axe = _ensure_axe()
    problems = {}
    for name, path, h1 in pages:
        b.go(path, h1=h1)
        b.wait(lambda: "Loading" not in b.text("main"), f"{path} loaded")
        if name == "execution":
            b.wait(lambda: b.css("#gantt svg") and b.css("#graph svg"), "the drawings")
        b.shot(name, full=True)
        b.assert_no_console_errors()
        if have_axe:
            v = _axe(b)
            if v:
                problems[path] = v
    assert not problems, "accessibility violations (serious/critical):\n" + json.dumps(
        problems, indent=1)
    # dark mode follows the system
    b.d.execute_cdp_cmd("Emulation.setEmulatedMedia",
                        {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    try:
        for name, path, h1 in (("overview-dark", "/", "Overview"),
                               ("execution-dark", f"/executions/{failed['id']}", failed["id"])):
            b.go(path, h1=h1)
            b.wait(lambda: "Loading" not in b.text("main"), f"{path} loaded")
            bg = b.d.execute_script("return getComputedStyle(document.body).backgroundColor")
            assert bg not in ("rgb(255, 255, 255)", "rgba(0, 0, 0, 0)"), bg
            b.shot(name, full=True)
            if have_axe:
                v = _axe(b)
                if v:
                    problems[path + " (dark)"] = v
    finally:
        b.d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    assert not problems, "accessibility violations in dark mode:\n" + json.dumps(problems, indent=1)
    b.go("/no/such/page", h1="Not found")
    b.go("/login")  # signed in: straight on to the overview
    b.wait_text("h1", "Overview")
    if not have_axe:
        pytest.skip("axe-core is not installed in tests/ui/node_modules (npm ci failed); "
                    "the pages were checked without it")
