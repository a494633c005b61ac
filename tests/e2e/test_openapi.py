"""
docs/openapi.yaml itself: an OpenAPI 3.1 document whose schemas are valid JSON Schema
2020-12, whose references all resolve, whose operations all document their answers, whose
fixed shapes are strict, and which documents every route of the server (read from the
route table in src/api/router.c, and probed on a running server).
"""
import json
import re

import pytest
from jsonschema import Draft202012Validator

from apiutil import Spec, json_pointer, server  # noqa: F401
from conftest import REPO

SPEC = Spec()
DOC = SPEC.doc
SCHEMAS = DOC["components"]["schemas"]

NAMED = ["Error", "ExecutionSummary", "ExecutionDetail", "TaskRun", "Attempt", "Workflow",
         "WorkflowSummary", "WorkflowDefinition", "Health", "SchedulerHealth", "Key",
         "KeyCreated", "LogItem", "ExecutionList", "WorkflowList", "KeyList", "LogList",
         "ValidationError"]

# Shapes the server builds field by field: every field required, nothing else allowed.
FIXED = ["ExecutionSummary", "ExecutionDetail", "TaskRun", "Attempt", "Workflow",
         "WorkflowSummary", "SchedulerHealth", "Key", "KeyCreated", "LogItem", "ExecutionList",
         "WorkflowList", "KeyList", "LogList", "Health", "Error", "Schedule", "ScheduleList",
         "ScheduleNext", "SchedulePreview", "BackfillAccepted", "FireList",
         "SummarisedExecutionDetail", "FanOutTaskRun", "TaskRunPage"]


def walk(node, path="#"):
    """Every (json pointer, dict) in the document."""
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, f"{path}/{str(k).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}/{i}")


def test_is_openapi_3_1():
    assert DOC["openapi"] == "3.1.0"
    assert DOC["info"]["title"] and DOC["info"]["version"]
    assert set(DOC["paths"]) and all(p.startswith("/v1/") for p in DOC["paths"])
    assert DOC["components"]["securitySchemes"]["bearerAuth"] == {
        **DOC["components"]["securitySchemes"]["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert DOC["security"] == [{"bearerAuth": []}]


@pytest.mark.parametrize("name", NAMED)
def test_named_schemas_exist(name):
    assert name in SCHEMAS, f"components/schemas/{name} missing"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_schema_is_valid_json_schema(name):
    Draft202012Validator.check_schema(SCHEMAS[name])


def test_every_ref_resolves():
    refs = 0
    for where, node in walk(DOC):
        ref = node.get("$ref")
        if isinstance(ref, str):
            refs += 1
            assert ref.startswith("#/"), f"{where}: only local references: {ref}"
            try:
                json_pointer(DOC, ref)
            except (KeyError, IndexError, ValueError):
                pytest.fail(f"{where}: $ref {ref} does not resolve")
    assert refs > 50


def test_every_component_is_used():
    refs = {node["$ref"] for _, node in walk(DOC) if isinstance(node.get("$ref"), str)}
    for kind in ("schemas", "responses", "parameters", "headers"):
        for name in DOC["components"][kind]:
            if (kind, name) == ("responses", "MethodNotAllowed"):
                continue  # 405 answers methods the document does not have: no operation
            assert f"#/components/{kind}/{name}" in refs, \
                f"components/{kind}/{name} is never referenced"


def test_operations_document_their_answers():
    ids = set()
    for template, method, op in SPEC.operations():
        what = f"{method} {template}"
        assert op.get("operationId") and op["operationId"] not in ids, what
        ids.add(op["operationId"])
        assert op.get("summary"), what
        responses = op.get("responses")
        assert responses, f"{what}: no responses"
        assert any(s.startswith("2") for s in responses), f"{what}: no 2xx response"
        public = op.get("security") == []
        needed = {"429", "500"} | (set() if public else {"401", "403"})
        if "{" in template and not public:
            needed.add("404")
        if "requestBody" in op:
            needed |= {"413"}
        missing = needed - set(responses)
        assert not missing, f"{what}: undocumented statuses {sorted(missing)}"
        for status, r in responses.items():
            r = SPEC.deref(r)
            assert r.get("description"), f"{what} {status}: no description"
            hdrs = r.get("headers", {})
            assert "X-Request-Id" in hdrs, f"{what} {status}: X-Request-Id not declared"
            if status == "401":
                assert "WWW-Authenticate" in hdrs, what
            if status == "429":
                assert "Retry-After" in hdrs, what
            if status == "204":
                assert "content" not in r, what
            elif status != "204":
                assert r.get("content"), f"{what} {status}: no content"
        # Every {param} in the template is declared as a path parameter.
        item = DOC["paths"][template]
        params = [SPEC.deref(p) for p in item.get("parameters", []) + op.get("parameters", [])]
        for name in re.findall(r"\{([^}]+)\}", template):
            assert any(p["name"] == name and p["in"] == "path" and p["required"]
                       for p in params), f"{what}: path parameter {name} not declared"


def test_only_scheduler_health_and_probes_are_public():
    public = [(t, m) for t, m, op in SPEC.operations() if op.get("security") == []]
    assert sorted(public) == [("/v1/health/live", "GET"), ("/v1/health/ready", "GET"),
                              ("/v1/health/scheduler", "GET")]


def test_error_statuses_use_the_error_shape():
    for template, method, op in SPEC.operations():
        for status, r in op["responses"].items():
            r = SPEC.deref(r)
            if int(status) < 400 or template.startswith("/v1/health"):
                continue
            ref = r["content"]["application/json"]["schema"]["$ref"]
            expect = "ValidationError" if status == "422" else "Error"
            assert ref == f"#/components/schemas/{expect}", f"{method} {template} {status}"


@pytest.mark.parametrize("name", FIXED)
def test_fixed_shapes_are_strict(name):
    def check(s, where):
        s = SPEC.deref(s)
        if s.get("type") == "object" and "properties" in s:
            assert s.get("additionalProperties") is False, f"{where}: additionalProperties"
            assert set(s.get("required", [])) == set(s["properties"]), \
                f"{where}: required {sorted(s.get('required', []))} vs {sorted(s['properties'])}"
            for k, v in s["properties"].items():
                if k not in ("params", "definition", "details"):
                    check(v, f"{where}.{k}")
        if s.get("type") == "array" and "items" in s:
            check(s["items"], f"{where}[]")
    check(SCHEMAS[name], name)


def test_status_enums_match_the_store():
    """The enums list exactly the names src/store/store.c gives the statuses."""
    src = (REPO / "src" / "store" / "store.c").read_text()
    for prefix, schema in (("EXEC", "ExecutionStatus"), ("TASK", "TaskStatus"),
                           ("ATTEMPT", "AttemptStatus")):
        names = set(re.findall(rf"\[{prefix}_[A-Z_]+\]\s*=\s*\"([a-z_]+)\"", src))
        assert names, f"no {prefix}_ names found in store.c"
        assert set(SCHEMAS[schema]["enum"]) == names, schema


def test_error_codes_match_the_server():
    src = (REPO / "src" / "api" / "errors.c").read_text()
    codes = dict((int(s), c) for s, c in re.findall(r'case (\d{3}):\s*return "([a-z_]+)"', src))
    codes[500] = "internal"
    assert set(SCHEMAS["ErrorCode"]["enum"]) == set(codes.values())


# --------------------------------------------------------------------------- strictness

SUMMARY = {"id": "ex_06h2b9nxchzajemf", "workflow": "w", "workflowVersion": 1,
           "status": "succeeded", "params": {}, "createdAt": "2026-11-29T10:00:00.123Z",
           "startedAt": "2026-11-29T10:00:00.200Z", "finishedAt": None, "durationMs": None,
           "retriedAt": None, "error": None, "scheduleId": None, "scheduledFor": None, "parentId": None}


def test_schemas_accept_good_and_reject_bad_instances():
    SPEC.validate(SUMMARY, "ExecutionSummary")
    for bad in ({**SUMMARY, "extra": 1}, {k: v for k, v in SUMMARY.items() if k != "error"},
                {**SUMMARY, "status": "done"}, {**SUMMARY, "createdAt": "2026-11-29 10:00"},
                {**SUMMARY, "createdAt": None}, {**SUMMARY, "id": "42"},
                {**SUMMARY, "durationMs": "5"}):
        assert SPEC.errors(bad, "ExecutionSummary"), bad
    SPEC.validate({"items": [SUMMARY], "nextCursor": None}, "ExecutionList")
    assert SPEC.errors({"items": [SUMMARY]}, "ExecutionList")
    err = {"error": {"code": "not_found", "message": "no execution 'x'", "details": []}}
    SPEC.validate(err, "Error")
    assert SPEC.errors({"error": {"code": "nope", "message": "m", "details": []}}, "Error")
    assert SPEC.errors({"message": "m"}, "Error")
    ve = {"error": {"code": "validation_failed", "message": "2 problems", "details": [
        {"path": "$.tasks[0].name", "message": "missing"}]}}
    SPEC.validate(ve, "ValidationError")
    assert SPEC.errors({"error": {**ve["error"], "details": [{"message": "x"}]}},
                       "ValidationError")


@pytest.mark.parametrize("example", sorted((REPO / "examples").glob("*.json"))
                         + sorted((REPO / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_workflow_definitions(example):
    if example.suffix == ".yaml":
        import yaml
        SPEC.validate(yaml.safe_load(example.read_text()), "WorkflowDefinition")
    else:
        SPEC.validate(json.loads(example.read_text()), "WorkflowDefinition")


# --------------------------------------------------------------------------- routes

def route_table():
    """(METHOD, pattern) of the server's route table (src/api/router.c)."""
    src = (REPO / "src" / "api" / "router.c").read_text()
    routes = re.findall(r'\{\s*"([A-Z]+)",\s*"(/v1[^"]*)"', src)
    assert routes, "no routes found in src/api/router.c"
    return routes


def shape(template):
    return re.sub(r"\{[^}]+\}", "{}", template)


def test_every_server_route_is_documented():
    documented = {(m, shape(t)) for t, m, _ in SPEC.operations()}
    served = {(m, shape(p)) for m, p in route_table()}
    assert served - documented == set(), "routes the document lacks"
    assert documented - served == set(), "documented operations the server lacks"


def _probe_path(template):
    return (template.replace("{name}", "no-such-workflow")
            .replace("{executionId}", "ex_0000000000000000")
            .replace("{keyId}", "key_0000000000000000")
            .replace("{scheduleId}", "sch_0000000000000000"))


def test_server_answers_every_documented_operation(server):
    """Each documented operation is routed (no 405, and no 404 where nothing is looked up),
    and its answer matches the document (Server.request checks every answer)."""
    for template, method, op in SPEC.operations():
        path = _probe_path(template)
        body = None
        if method == "POST" and template == "/v1/keys":
            body = {"name": "probe-key", "scopes": ["read"]}
        r = server.request(method, path, body=body)
        assert r.status != 405, f"{method} {path}: {r}"
        if "{" not in template:
            assert r.status != 404, f"{method} {path}: {r}"


def test_undocumented_methods_get_405_with_allow(server):
    for template in DOC["paths"]:
        path = _probe_path(template)
        for method in ("PUT", "PATCH", "DELETE", "POST", "GET"):
            if method in SPEC.methods(template):
                continue
            r = server.request(method, path, body={} if method in ("PUT", "PATCH") else None)
            assert r.status == 405, f"{method} {path}: {r}"


def test_unknown_paths_get_404(server):
    for path in ("/v1/nope", "/v1/executions/ex_0000000000000000/nope", "/v2/executions",
                 "/"):
        r = server.request("GET", path)
        assert r.status == 404, f"{path}: {r}"
        assert r.error()["code"] == "not_found"
