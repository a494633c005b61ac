/* Unit tests for src/dag: parsing, validation, graph checks of workflow definitions. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/err.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag/dag.h"

/*
 * Definitions are written with single quotes to keep them readable in C;
 * J() turns them into double quotes. None of the inputs needs a literal '.
 */
static char *J(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++) {
        if (*p == '\'')
            *p = '"';
    }
    return out;
}

static void dump_problems(const struct dag_problems *pr)
{
    for (size_t i = 0; i < pr->n; i++)
        print_message("  problem %zu: %s: %s\n", i, pr->items[i].path, pr->items[i].message);
}

/* The index of a problem at `path` whose message contains `needle`, or -1. */
static long find_problem(const struct dag_problems *pr, const char *path, const char *needle)
{
    for (size_t i = 0; i < pr->n; i++) {
        if (!strcmp(pr->items[i].path, path) && strstr(pr->items[i].message, needle))
            return (long)i;
    }
    return -1;
}

/* Parse `quoted` (single-quoted JSON) expecting failure; problems go to *pr. */
static void parse_bad(const char *quoted, struct dag_problems *pr)
{
    struct workflow *wf = (struct workflow *)pr; /* any non-NULL value: must be reset */
    char *json = J(quoted);
    int rc = dag_parse(json, strlen(json), &wf, pr);

    free(json);
    if (rc != ERR_INVALID)
        dump_problems(pr);
    assert_int_equal(rc, ERR_INVALID);
    assert_null(wf);
    assert_true(pr->n > 0);
    /* Invariants of every problem: a path from the root and a lowercase message. */
    for (size_t i = 0; i < pr->n; i++) {
        const char *m = pr->items[i].message;
        assert_int_equal(pr->items[i].path[0], '$');
        assert_true(m[0] != '\0');
        assert_false(m[0] >= 'A' && m[0] <= 'Z');
        assert_true(m[strlen(m) - 1] != '.');
    }
}

/* Expect a problem at `path` whose message contains `needle`. */
static void expect_problem(const char *quoted, const char *path, const char *needle)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;

    parse_bad(quoted, &pr);
    if (find_problem(&pr, path, needle) < 0) {
        print_message("wanted %s: ...%s...\n", path, needle);
        dump_problems(&pr);
        fail();
    }
    dag_problems_release(&pr);
}

/* Expect exactly one problem, at `path`, with exactly `message`. */
static void expect_only(const char *quoted, const char *path, const char *message)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;

    parse_bad(quoted, &pr);
    if (pr.n != 1)
        dump_problems(&pr);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, path);
    assert_string_equal(pr.items[0].message, message);
    dag_problems_release(&pr);
}

static struct workflow *parse_ok(const char *quoted)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    char *json = J(quoted);
    int rc = dag_parse(json, strlen(json), &wf, &pr);

    free(json);
    if (rc != 0)
        dump_problems(&pr);
    assert_int_equal(rc, 0);
    assert_non_null(wf);
    assert_int_equal(pr.n, 0);
    dag_problems_release(&pr);
    return wf;
}

/* Structural invariants every parsed workflow must satisfy. */
static void check_invariants(const struct workflow *wf)
{
    size_t n = wf->ntasks;
    size_t *pos = xmalloc(n * sizeof(*pos));
    size_t nedges = 0, nchildren = 0;

    for (size_t i = 0; i < n; i++)
        pos[i] = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        assert_true(wf->topo[i] < n);
        assert_int_equal(pos[wf->topo[i]], SIZE_MAX);
        pos[wf->topo[i]] = i;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dag_task *t = &wf->tasks[i];
        assert_non_null(t->name);
        assert_int_equal(dag_find_task(wf, t->name), (long)i);
        for (size_t k = 0; k < t->ndeps; k++) {
            assert_true(t->deps[k] < n);
            assert_true(pos[t->deps[k]] < pos[i]); /* dependencies come first */
        }
        nedges += t->ndeps;
        nchildren += t->nchildren;
        if (t->type == TASK_COMMAND) {
            assert_true((t->argv != NULL) != (t->shell != NULL));
            if (t->argv) {
                assert_null(t->argv[t->argc]);
                for (size_t k = 0; k < t->argc; k++)
                    assert_non_null(t->argv[k]);
            }
        } else {
            assert_null(t->argv);
            assert_null(t->shell);
        }
    }
    assert_int_equal(nedges, nchildren);
    free(pos);
}

/* ---- valid definitions ---- */

static const char full_example[] =
    "{'name': 'etl.daily-v2',"
    " 'description': 'daily load',"
    " 'params': {"
    "   'date': {'type': 'string', 'required': true, 'description': 'day to load'},"
    "   'limit': 100,"
    "   'dry_run': {'type': 'boolean', 'default': false},"
    "   'opts': {'a': [1, 2], 'b': 'x'},"
    "   'label': 'hello',"
    "   'ratio': {'default': 0.5}"
    " },"
    " 'timeout': '2h',"
    " 'concurrency': 4,"
    " 'env': {'REGION': 'eu', 'MODE': 'full'},"
    " 'tasks': ["
    "   {'name': 'extract', 'command': ['curl', '-o', 'out.json', 'http://x'],"
    "    'env': {'TOKEN': 'abc'}, 'workingDir': '/tmp', 'timeout': 90, 'retries': 3,"
    "    'retryBackoff': {'initial': '2s', 'factor': 1.5, 'max': '1m', 'jitter': false}},"
    "   {'name': 'transform', 'dependsOn': ['extract'], 'command': 'jq . out.json > t.json',"
    "    'timeout': '10m', 'runIf': 'allSucceeded'},"
    "   {'name': 'wait', 'type': 'sleep', 'duration': '250ms', 'dependsOn': ['extract']},"
    "   {'name': 'load', 'type': 'command', 'dependsOn': ['transform', 'wait'],"
    "    'command': ['load', '--date', 'today']},"
    "   {'name': 'notify', 'type': 'noop', 'dependsOn': ['load'], 'runIf': 'allDone'},"
    "   {'name': 'cleanup', 'type': 'noop', 'dependsOn': ['load', 'notify'],"
    "    'runIf': 'anyFailed'}"
    " ]}";

static void test_valid_full(void **state)
{
    struct workflow *wf;
    const struct dag_task *t;
    (void)state;

    wf = parse_ok(full_example);
    check_invariants(wf);
    assert_string_equal(wf->name, "etl.daily-v2");
    assert_string_equal(wf->description, "daily load");
    assert_int_equal(wf->timeout_ms, 7200000);
    assert_int_equal(wf->concurrency, 4);
    assert_int_equal(wf->nenv, 2);
    assert_string_equal(wf->env[0].key, "REGION");
    assert_string_equal(wf->env[0].value, "eu");
    assert_string_equal(wf->env[1].key, "MODE");
    assert_string_equal(wf->env[1].value, "full");

    assert_int_equal(wf->nparams, 6);
    assert_string_equal(wf->params[0].name, "date");
    assert_int_equal(wf->params[0].type, PARAM_STRING);
    assert_int_equal(wf->params[0].required, 1);
    assert_null(wf->params[0].default_json);
    assert_string_equal(wf->params[0].description, "day to load");
    assert_string_equal(wf->params[1].name, "limit");
    assert_int_equal(wf->params[1].type, PARAM_NUMBER);
    assert_int_equal(wf->params[1].required, 0);
    assert_string_equal(wf->params[1].default_json, "100");
    assert_int_equal(wf->params[2].type, PARAM_BOOLEAN);
    assert_string_equal(wf->params[2].default_json, "false");
    assert_int_equal(wf->params[3].type, PARAM_OBJECT);
    assert_string_equal(wf->params[3].default_json, "{\"a\":[1,2],\"b\":\"x\"}");
    assert_int_equal(wf->params[4].type, PARAM_STRING);
    assert_string_equal(wf->params[4].default_json, "\"hello\"");
    assert_string_equal(wf->params[5].name, "ratio");
    assert_int_equal(wf->params[5].type, PARAM_NUMBER); /* taken from the default */
    assert_string_equal(wf->params[5].default_json, "0.5");

    assert_int_equal(wf->ntasks, 6);
    t = &wf->tasks[0];
    assert_string_equal(t->name, "extract");
    assert_int_equal(t->type, TASK_COMMAND);
    assert_int_equal(t->argc, 4);
    assert_string_equal(t->argv[0], "curl");
    assert_string_equal(t->argv[3], "http://x");
    assert_null(t->argv[4]);
    assert_null(t->shell);
    assert_int_equal(t->nenv, 1);
    assert_string_equal(t->env[0].key, "TOKEN");
    assert_string_equal(t->env[0].value, "abc");
    assert_string_equal(t->working_dir, "/tmp");
    assert_int_equal(t->timeout_ms, 90000);
    assert_int_equal(t->retries, 3);
    assert_int_equal(t->backoff.initial_ms, 2000);
    assert_true(t->backoff.factor == 1.5);
    assert_int_equal(t->backoff.max_ms, 60000);
    assert_int_equal(t->backoff.jitter, 0);
    assert_int_equal(t->ndeps, 0);
    assert_int_equal(t->nchildren, 2);
    assert_int_equal(t->children[0], 1);
    assert_int_equal(t->children[1], 2);

    t = &wf->tasks[1];
    assert_string_equal(t->shell, "jq . out.json > t.json");
    assert_null(t->argv);
    assert_int_equal(t->argc, 0);
    assert_int_equal(t->timeout_ms, 600000);
    assert_int_equal(t->run_if, RUN_IF_ALL_SUCCEEDED);
    assert_int_equal(t->ndeps, 1);
    assert_int_equal(t->deps[0], 0);

    t = &wf->tasks[2];
    assert_int_equal(t->type, TASK_SLEEP);
    assert_int_equal(t->sleep_ms, 250);

    t = &wf->tasks[3];
    assert_int_equal(t->ndeps, 2);
    assert_int_equal(t->deps[0], 1); /* in the order written */
    assert_int_equal(t->deps[1], 2);
    assert_int_equal(t->nchildren, 2);

    t = &wf->tasks[4];
    assert_int_equal(t->type, TASK_NOOP);
    assert_int_equal(t->run_if, RUN_IF_ALL_DONE);
    t = &wf->tasks[5];
    assert_int_equal(t->run_if, RUN_IF_ANY_FAILED);
    assert_int_equal(t->ndeps, 2);

    /* Kahn's order, ties by document order. */
    {
        const size_t want[] = {0, 1, 2, 3, 4, 5};
        for (size_t i = 0; i < 6; i++)
            assert_int_equal(wf->topo[i], want[i]);
    }
    workflow_free(wf);
}

static void test_defaults(void **state)
{
    struct workflow *wf;
    const struct dag_task *t;
    (void)state;

    wf = parse_ok("{'name': 'w', 'tasks': [{'name': 'a', 'command': ['true']}]}");
    check_invariants(wf);
    assert_null(wf->description);
    assert_int_equal(wf->nparams, 0);
    assert_int_equal(wf->timeout_ms, 0);
    assert_int_equal(wf->concurrency, 0);
    assert_int_equal(wf->nenv, 0);
    t = &wf->tasks[0];
    assert_int_equal(t->type, TASK_COMMAND);
    assert_int_equal(t->argc, 1);
    assert_null(t->working_dir);
    assert_int_equal(t->timeout_ms, 0);
    assert_int_equal(t->retries, 0);
    assert_int_equal(t->backoff.initial_ms, 1000);
    assert_true(t->backoff.factor == 2.0);
    assert_int_equal(t->backoff.max_ms, 300000);
    assert_int_equal(t->backoff.jitter, 1);
    assert_int_equal(t->run_if, RUN_IF_ALL_SUCCEEDED);
    assert_int_equal(t->ndeps, 0);
    assert_int_equal(t->nchildren, 0);
    assert_int_equal(wf->topo[0], 0);
    workflow_free(wf);
    workflow_free(NULL);
}

static void test_topo_diamond(void **state)
{
    struct workflow *wf;
    (void)state;

    /* Written out of order: dependencies may come after their dependents. */
    wf = parse_ok("{'name': 'd', 'tasks': ["
                  " {'name': 'join', 'type': 'noop', 'dependsOn': ['left', 'right']},"
                  " {'name': 'left', 'type': 'noop', 'dependsOn': ['root']},"
                  " {'name': 'right', 'type': 'noop', 'dependsOn': ['root']},"
                  " {'name': 'root', 'type': 'noop'}]}");
    check_invariants(wf);
    assert_int_equal(wf->topo[0], 3);
    assert_int_equal(wf->topo[3], 0);
    assert_int_equal(wf->tasks[3].nchildren, 2);
    assert_int_equal(wf->tasks[3].children[0], 1);
    assert_int_equal(wf->tasks[3].children[1], 2);
    workflow_free(wf);
}

static void test_durations(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok("{'name': 'w', 'timeout': 1.5, 'tasks': ["
                  " {'name': 'a', 'type': 'sleep', 'duration': 0},"
                  " {'name': 'b', 'type': 'sleep', 'duration': '1h30m', 'timeout': '250ms'},"
                  " {'name': 'c', 'type': 'sleep', 'duration': 2, 'timeout': 3.0},"
                  " {'name': 'd', 'type': 'sleep', 'duration': '90s',"
                  "  'retryBackoff': {'initial': 0.5, 'max': 10}}]}");
    assert_int_equal(wf->timeout_ms, 1500);
    assert_int_equal(wf->tasks[0].sleep_ms, 0);
    assert_int_equal(wf->tasks[1].sleep_ms, 5400000);
    assert_int_equal(wf->tasks[1].timeout_ms, 250);
    assert_int_equal(wf->tasks[2].sleep_ms, 2000);
    assert_int_equal(wf->tasks[2].timeout_ms, 3000);
    assert_int_equal(wf->tasks[3].sleep_ms, 90000);
    assert_int_equal(wf->tasks[3].backoff.initial_ms, 500);
    assert_int_equal(wf->tasks[3].backoff.max_ms, 10000);
    workflow_free(wf);
}

static void test_bad_durations(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'sleep', 'duration': '10x'}]}",
                "$.tasks[0].duration",
                "invalid duration '10x': missing or unknown unit (use ms, s, m, h, d)");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'sleep', 'duration': -1}]}",
                   "$.tasks[0].duration", "duration '-1' is negative");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'sleep', 'duration': 'abc'}]}",
                   "$.tasks[0].duration", "invalid duration 'abc'");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'sleep', 'duration': true}]}",
                   "$.tasks[0].duration", "'duration' must be a duration");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'sleep', 'duration': 1e300}]}",
                   "$.tasks[0].duration", "too long");
    /* Timeouts must be positive. */
    expect_only("{'name': 'w', 'timeout': 0, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.timeout", "'timeout' must be greater than zero");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'timeout': '0s'}]}",
                "$.tasks[0].timeout", "'timeout' must be greater than zero");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'timeout': -5}]}",
                   "$.tasks[0].timeout", "negative");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                   " 'retryBackoff': {'max': '5q'}}]}",
                   "$.tasks[0].retryBackoff.max", "invalid duration '5q'");
}

static void test_params(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok("{'name': 'w', 'params': {"
                  " 's': 'x', 'n': 1.25, 'i': -3, 't': true, 'o': {},"
                  " 'spec_s': {'type': 'string'},"
                  " 'spec_n': {'type': 'number', 'default': 7, 'required': false},"
                  " 'spec_o': {'type': 'object', 'default': {'k': null}},"
                  " 'spec_r': {'type': 'number', 'required': true},"
                  " 'only_desc': {'description': 'hello'},"
                  " '_x9': {'default': 'v'}"
                  "}, 'tasks': [{'name': 'a', 'type': 'noop'}]}");
    assert_int_equal(wf->nparams, 11);
    assert_int_equal(wf->params[0].type, PARAM_STRING);
    assert_string_equal(wf->params[0].default_json, "\"x\"");
    assert_int_equal(wf->params[1].type, PARAM_NUMBER);
    assert_string_equal(wf->params[1].default_json, "1.25");
    assert_int_equal(wf->params[2].type, PARAM_NUMBER);
    assert_string_equal(wf->params[2].default_json, "-3");
    assert_int_equal(wf->params[3].type, PARAM_BOOLEAN);
    assert_string_equal(wf->params[3].default_json, "true");
    assert_int_equal(wf->params[4].type, PARAM_OBJECT);
    assert_string_equal(wf->params[4].default_json, "{}");
    assert_int_equal(wf->params[5].type, PARAM_STRING);
    assert_null(wf->params[5].default_json);
    assert_int_equal(wf->params[5].required, 0);
    assert_int_equal(wf->params[6].type, PARAM_NUMBER);
    assert_string_equal(wf->params[6].default_json, "7");
    assert_int_equal(wf->params[7].type, PARAM_OBJECT);
    assert_string_equal(wf->params[7].default_json, "{\"k\":null}");
    assert_int_equal(wf->params[8].required, 1);
    assert_null(wf->params[8].default_json);
    assert_int_equal(wf->params[9].type, PARAM_STRING);
    assert_string_equal(wf->params[9].description, "hello");
    assert_string_equal(wf->params[10].name, "_x9");
    assert_string_equal(wf->params[10].default_json, "\"v\"");
    workflow_free(wf);
}

static void test_bad_params(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'params': {'date': {'type': 'date'}}, "
                "'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params.date.type",
                "invalid param type 'date' (allowed: string, number, boolean, object)");
    expect_only("{'name': 'w', 'params': {'n': {'type': 'number', 'default': 'x'}}, "
                "'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params.n.default", "'default' must be a number (the param's type), got string");
    expect_only("{'name': 'w', 'params': {'n': {'default': 1, 'required': true}}, "
                "'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params.n.required", "param 'n' has a default and cannot be required");
    expect_only("{'name': 'w', 'params': {'9x': 1}, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params[\"9x\"]",
                "invalid param name '9x' (must match [A-Za-z_][A-Za-z0-9_]{0,63})");
    expect_problem("{'name': 'w', 'params': {'a b': 1}, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                   "$.params[\"a b\"]", "invalid param name 'a b'");
    expect_only("{'name': 'w', 'params': {'l': [1]}, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params.l",
                "param 'l' must be a spec object or a default value (string, number, boolean or "
                "object), got array");
    expect_only("{'name': 'w', 'params': {'z': null}, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params.z",
                "param 'z' must be a spec object or a default value (string, number, boolean or "
                "object), got null");
    expect_only("{'name': 'w', 'params': {'z': {'default': null}}, "
                "'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params.z.default",
                "'default' must be a string, number, boolean or object, got null");
    expect_only("{'name': 'w', 'params': {'z': {'type': 'string', 'required': 'yes'}}, "
                "'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params.z.required", "'required' must be a boolean, got string");
    expect_only("{'name': 'w', 'params': {'z': {'type': 'string', 'defualt': 'x'}}, "
                "'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.params.z.defualt", "unknown field 'defualt' (did you mean 'default'?)");
    expect_only("{'name': 'w', 'params': [], 'tasks': [{'name': 'a', 'type': 'noop'}]}", "$.params",
                "'params' must be an object, got array");
    /* 64 characters is the longest param name. */
    {
        struct workflow *wf =
            parse_ok("{'name': 'w', 'params': {'"
                     "p123456789012345678901234567890123456789012345678901234567890123': 1},"
                     " 'tasks': [{'name': 'a', 'type': 'noop'}]}");
        workflow_free(wf);
        expect_problem("{'name': 'w', 'params': {'"
                       "p1234567890123456789012345678901234567890123456789012345678901234': 1},"
                       " 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                       "$.params.p1234567890123456789012345678901234567890123456789012345678901234",
                       "invalid param name");
    }
}

/* ---- JSON-level failures ---- */

static void test_json_syntax_error(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    const char *json = "{\"name\": \"w\",\n  \"tasks\": [],\n  \"timeout\": 5,, \"x\": 1}";
    (void)state;

    assert_int_equal(dag_parse(json, strlen(json), &wf, &pr), ERR_INVALID);
    assert_null(wf);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, "$");
    assert_int_equal(pr.items[0].line, 3);
    assert_int_equal(pr.items[0].column, 16);
    assert_string_equal(pr.items[0].message,
                        "invalid JSON at line 3 column 16: string or '}' expected near ','");
    dag_problems_release(&pr);

    expect_only("{'name': 'w' 'tasks': []}", "$",
                "invalid JSON at line 1 column 20: '}' expected near '\"tasks\"'");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop'}]} trailing", "$",
                   "invalid JSON at line 1");
    expect_problem("", "$", "invalid JSON at line 1 column 0: unexpected token near end of file");
    expect_problem("{'retries': 1e999}", "$", "real number overflow");
    expect_problem("{'retries': 99999999999999999999}", "$", "too big integer");
}

static void test_json_duplicate_keys(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'name': 'v', 'tasks': []}", "$",
                "invalid JSON at line 1 column 20: duplicate object key near '\"name\"'");
}

static void test_json_invalid_utf8_and_nul(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    const char bad_utf8[] = "{\"name\": \"w\xff\xfe\", \"tasks\": []}";
    const char nul_in_string[] = "{\"name\": \"w\0x\", \"tasks\": []}";
    const char nul_after[] =
        "{\"name\": \"w\", \"tasks\": [{\"name\": \"a\", \"type\": \"noop\"}]}\0";
    const char escaped_nul[] = "{\"name\": \"w\\u0000\", \"tasks\": []}";
    (void)state;

    assert_int_equal(dag_parse(bad_utf8, sizeof(bad_utf8) - 1, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, "$");
    assert_non_null(strstr(pr.items[0].message, "unable to decode byte 0xff"));
    dag_problems_release(&pr);

    assert_int_equal(dag_parse(nul_in_string, sizeof(nul_in_string) - 1, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 1);
    assert_non_null(strstr(pr.items[0].message, "control character 0x0"));
    dag_problems_release(&pr);

    /* The length given is the length parsed: a NUL inside it is not an end. */
    assert_int_equal(dag_parse(nul_after, sizeof(nul_after) - 1, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 1);
    assert_non_null(strstr(pr.items[0].message, "invalid JSON"));
    dag_problems_release(&pr);
    assert_int_equal(dag_parse(nul_after, sizeof(nul_after) - 2, &wf, &pr), 0);
    workflow_free(wf);

    assert_int_equal(dag_parse(escaped_nul, sizeof(escaped_nul) - 1, &wf, &pr), ERR_INVALID);
    assert_non_null(strstr(pr.items[0].message, "\\u0000 is not allowed"));
    dag_problems_release(&pr);

    /* NULL input of length 0 is empty input. */
    assert_int_equal(dag_parse(NULL, 0, &wf, &pr), ERR_INVALID);
    assert_null(wf);
    assert_int_equal(pr.n, 1);
    dag_problems_release(&pr);
}

static void test_json_deep_nesting(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    size_t n = 200000;
    char *json = xmalloc(2 * n + 64);
    size_t len;
    (void)state;

    memset(json, '[', n);
    memset(json + n, ']', n);
    assert_int_equal(dag_parse(json, 2 * n, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, "$");
    assert_non_null(strstr(pr.items[0].message, "maximum parsing depth"));
    dag_problems_release(&pr);

    /* Deep but within jansson's limit, inside a param default: dumped back without trouble. */
    len = (size_t)snprintf(json, 64, "{\"name\":\"w\",\"params\":{\"p\":");
    for (size_t i = 0; i < 1000; i++)
        memcpy(json + len + 5 * i, "{\"a\":", 5);
    len += 5000;
    memset(json + len, '1', 1);
    len += 1;
    memset(json + len, '}', 1000);
    len += 1000;
    len += (size_t)snprintf(json + len, 64, "},\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    assert_int_equal(dag_parse(json, len, &wf, &pr), 0);
    assert_int_equal(wf->params[0].type, PARAM_OBJECT);
    assert_int_equal(strlen(wf->params[0].default_json), 6001);
    workflow_free(wf);
    free(json);
}

static void test_too_big(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = (struct workflow *)&pr;
    size_t len = DAG_MAX_BYTES + 1;
    char *json = xmalloc(len);
    char want[128];
    (void)state;

    memset(json, ' ', len);
    json[0] = '{';
    json[len - 1] = '}';
    assert_int_equal(dag_parse(json, len, &wf, &pr), ERR_TOO_BIG);
    assert_null(wf);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, "$");
    snprintf(want, sizeof(want), "definition is %zu bytes, larger than the limit of 4 MiB", len);
    assert_string_equal(pr.items[0].message, want);
    dag_problems_release(&pr);

    /* Exactly the limit is parsed (and here is merely incomplete). */
    assert_int_equal(dag_parse(json, len - 1, &wf, &pr), ERR_INVALID);
    assert_non_null(strstr(pr.items[0].message, "invalid JSON"));
    dag_problems_release(&pr);
    free(json);
}

static void test_not_object(void **state)
{
    (void)state;
    expect_only("[]", "$", "definition must be a JSON object, got array");
    expect_only("'x'", "$", "definition must be a JSON object, got string");
    expect_only("42", "$", "definition must be a JSON object, got integer");
    expect_only("null", "$", "definition must be a JSON object, got null");
}

/* ---- workflow-level fields ---- */

static void test_missing_name(void **state)
{
    (void)state;
    expect_only("{'tasks': [{'name': 'a', 'type': 'noop'}]}", "$", "missing required field 'name'");
    expect_only("{'name': 'w'}", "$", "missing required field 'tasks'");
}

static void test_bad_workflow_name(void **state)
{
    char name[140];
    char json[256];
    struct workflow *wf;
    (void)state;

    expect_only("{'name': 'My Flow', 'tasks': [{'name': 'a', 'type': 'noop'}]}", "$.name",
                "invalid workflow name 'My Flow' (must match [a-z0-9][a-z0-9._-]{0,127}: "
                "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit, "
                "at most 128 characters)");
    expect_problem("{'name': '', 'tasks': [{'name': 'a', 'type': 'noop'}]}", "$.name",
                   "invalid workflow name ''");
    expect_problem("{'name': '-x', 'tasks': [{'name': 'a', 'type': 'noop'}]}", "$.name",
                   "[a-z0-9][a-z0-9._-]{0,127}");
    expect_only("{'name': 7, 'tasks': [{'name': 'a', 'type': 'noop'}]}", "$.name",
                "'name' must be a string, got integer");

    memset(name, 'a', 128);
    name[128] = '\0';
    assert_true(dag_valid_workflow_name(name));
    snprintf(json, sizeof(json), "{'name': '%s', 'tasks': [{'name': 'a', 'type': 'noop'}]}", name);
    wf = parse_ok(json);
    workflow_free(wf);
    name[128] = 'a';
    name[129] = '\0';
    assert_false(dag_valid_workflow_name(name));
    assert_true(dag_valid_workflow_name("0.a_b-c"));
    assert_false(dag_valid_workflow_name("a/b"));
    assert_false(dag_valid_workflow_name("A"));
    assert_false(dag_valid_workflow_name(""));
    assert_false(dag_valid_workflow_name(NULL));
}

static void test_concurrency(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok("{'name': 'w', 'concurrency': 2.0, 'tasks': [{'name': 'a', 'type': 'noop'}]}");
    assert_int_equal(wf->concurrency, 2);
    workflow_free(wf);
    expect_only("{'name': 'w', 'concurrency': 0, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.concurrency", "'concurrency' must be at least 1, got 0");
    expect_only("{'name': 'w', 'concurrency': 1.5, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.concurrency", "'concurrency' must be an integer, got number");
    expect_problem("{'name': 'w', 'concurrency': 99999999999, "
                   "'tasks': [{'name': 'a', 'type': 'noop'}]}",
                   "$.concurrency", "'concurrency' must be between 1 and 2147483647");
}

static void test_env(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'env': {'1X': 'v'}, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.env[\"1X\"]",
                "invalid environment variable name '1X' (must match [A-Za-z_][A-Za-z0-9_]*)");
    expect_only("{'name': 'w', 'env': {'A': 1}, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.env.A", "'A' must be a string, got integer");
    expect_only("{'name': 'w', 'env': ['A'], 'tasks': [{'name': 'a', 'type': 'noop'}]}", "$.env",
                "'env' must be an object of strings, got array");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'env': {'A-B': 'x'}}]}",
                   "$.tasks[0].env[\"A-B\"]", "invalid environment variable name 'A-B'");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'env': {'': 'x'}}]}",
                   "$.tasks[0].env[\"\"]", "invalid environment variable name ''");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'env': {'X': null}}]}",
                   "$.tasks[0].env.X", "'X' must be a string, got null");
}

/* ---- typo protection and types ---- */

static void test_unknown_fields(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'b', 'type': 'noop'},"
                " {'name': 'a', 'type': 'noop', 'dependson': ['b']}]}",
                "$.tasks[1].dependson", "unknown field 'dependson' (did you mean 'dependsOn'?)");
    expect_only("{'name': 'w', 'taks': [], 'tasks': [{'name': 'a', 'type': 'noop'}]}", "$.taks",
                "unknown field 'taks' (did you mean 'tasks'?)");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'timout': 5}]}",
                "$.tasks[0].timout", "unknown field 'timout' (did you mean 'timeout'?)");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'runif': 'allDone'}]}",
                "$.tasks[0].runif", "unknown field 'runif' (did you mean 'runIf'?)");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                " 'retryBackoff': {'factr': 2}}]}",
                "$.tasks[0].retryBackoff.factr", "unknown field 'factr' (did you mean 'factor'?)");
    /* Transposed letters count as one edit. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'rteries': 1}]}",
                "$.tasks[0].rteries", "unknown field 'rteries' (did you mean 'retries'?)");
    /* Nothing close: no suggestion. */
    expect_only("{'name': 'w', 'owner': 'me', 'tasks': [{'name': 'a', 'type': 'noop'}]}", "$.owner",
                "unknown field 'owner'");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'x': 1}]}", "$.tasks[0].x",
                "unknown field 'x'");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'retries': '3'}]}",
                "$.tasks[0].retries", "'retries' must be an integer, got string");
    expect_only("{'name': 'w', 'tasks': {'name': 'a'}}", "$.tasks",
                "'tasks' must be an array of tasks, got object");
    expect_only("{'name': 'w', 'tasks': ['a']}", "$.tasks[0]",
                "task must be an object, got string");
    expect_only("{'name': 'w', 'tasks': [{'name': 1, 'type': 'noop'}]}", "$.tasks[0].name",
                "'name' must be a string, got integer");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'dependsOn': 'b'}]}",
                "$.tasks[0].dependsOn", "'dependsOn' must be an array of task names, got string");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'dependsOn': [1]}]}",
                "$.tasks[0].dependsOn[0]", "'dependsOn[0]' must be a string, got integer");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': 5}]}", "$.tasks[0].command",
                "'command' must be a string or an array of strings, got integer");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': ['ls', false]}]}",
                "$.tasks[0].command[1]", "'command[1]' must be a string, got boolean");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'workingDir': []}]}",
                "$.tasks[0].workingDir", "'workingDir' must be a string, got array");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'workingDir': ''}]}",
                "$.tasks[0].workingDir", "'workingDir' must not be empty");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'retryBackoff': 1}]}",
                "$.tasks[0].retryBackoff", "'retryBackoff' must be an object, got integer");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                " 'retryBackoff': {'jitter': 'no'}}]}",
                "$.tasks[0].retryBackoff.jitter", "'jitter' must be a boolean, got string");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 1}]}", "$.tasks[0].type",
                "'type' must be a string, got integer");
    expect_only("{'name': 'w', 'description': {}, 'tasks': [{'name': 'a', 'type': 'noop'}]}",
                "$.description", "'description' must be a string, got object");
}

static void test_retries_range(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'retries': 100},"
                  " {'name': 'b', 'type': 'noop', 'retries': 0}]}");
    assert_int_equal(wf->tasks[0].retries, 100);
    workflow_free(wf);
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'retries': 101}]}",
                "$.tasks[0].retries", "'retries' must be between 0 and 100, got 101");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'retries': -1}]}",
                "$.tasks[0].retries", "'retries' must be between 0 and 100, got -1");
}

static void test_bad_enums(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'shell', 'command': 'ls'}]}",
                "$.tasks[0].type", "invalid type 'shell' (allowed: command, noop, sleep, http, workflow)");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'runIf': 'always'}]}",
                "$.tasks[0].runIf",
                "invalid runIf 'always' (allowed: allSucceeded, allDone, anyFailed)");
}

static void test_type_rules(void **state)
{
    struct workflow *wf;
    (void)state;

    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'command': 'ls'}]}",
                "$.tasks[0].command", "'command' is not allowed for type 'noop'");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'sleep', 'duration': 1,"
                " 'command': ['ls']}]}",
                "$.tasks[0].command", "'command' is not allowed for type 'sleep'");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'ls', 'duration': 1}]}",
                "$.tasks[0].duration", "'duration' is not allowed for type 'command'");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'sleep'}]}", "$.tasks[0]",
                "missing 'duration' (required for type 'sleep')");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a'}]}", "$.tasks[0]",
                "missing 'command' (required for type 'command')");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'command', 'command': []}]}",
                "$.tasks[0].command", "'command' must not be empty");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': ' \\n '}]}", "$.tasks[0].command",
                "'command' must not be empty");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': ['', 'x']}]}",
                "$.tasks[0].command[0]", "the program name 'command[0]' must not be empty");
    /* Later arguments may be empty. */
    wf = parse_ok("{'name': 'w', 'tasks': [{'name': 'a', 'command': ['printf', '']}]}");
    assert_int_equal(wf->tasks[0].argc, 2);
    assert_string_equal(wf->tasks[0].argv[1], "");
    workflow_free(wf);
}

static void test_backoff_rules(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                " 'retryBackoff': {'factor': 0.5}}]}",
                "$.tasks[0].retryBackoff.factor", "'factor' must be between 1 and 100, got 0.5");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                " 'retryBackoff': {'factor': 101}}]}",
                "$.tasks[0].retryBackoff.factor", "'factor' must be between 1 and 100, got 101");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                " 'retryBackoff': {'factor': '2'}}]}",
                "$.tasks[0].retryBackoff.factor", "'factor' must be a number, got string");
    /* initial above the default max of 5m. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                " 'retryBackoff': {'initial': '10m'}}]}",
                "$.tasks[0].retryBackoff.initial",
                "'initial' (10m00s) must not be greater than 'max' (5m00s)");
    expect_problem("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                   " 'retryBackoff': {'initial': 5, 'max': 2}}]}",
                   "$.tasks[0].retryBackoff.initial", "must not be greater than 'max'");
    /* A bad duration is reported once, without a comparison against it. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop',"
                " 'retryBackoff': {'initial': 'x', 'max': '1s'}}]}",
                "$.tasks[0].retryBackoff.initial",
                "invalid duration 'x' (use e.g. \"90s\", \"10m\", \"1h30m\")");
}

/* ---- names and the graph ---- */

static void test_no_tasks(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': []}", "$.tasks", "workflow has no tasks");
}

static void test_too_many_tasks(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct strbuf sb = STRBUF_INIT;
    char want[128];
    (void)state;

    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[");
    for (size_t i = 0; i <= DAG_MAX_TASKS; i++)
        strbuf_adds(&sb, i ? ",{}" : "{}");
    strbuf_adds(&sb, "]}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, "$.tasks");
    snprintf(want, sizeof(want), "workflow has %lu tasks, more than the limit of %lu",
             (unsigned long)DAG_MAX_TASKS + 1, (unsigned long)DAG_MAX_TASKS);
    assert_string_equal(pr.items[0].message, want);
    dag_problems_release(&pr);
    strbuf_release(&sb);
}

static void test_task_names(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'type': 'noop'}]}", "$.tasks[0]",
                "missing required field 'name'");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a b', 'type': 'noop'}]}", "$.tasks[0].name",
                "invalid task name 'a b' (must match [A-Za-z0-9][A-Za-z0-9._-]{0,127})");
    expect_problem("{'name': 'w', 'tasks': [{'name': '', 'type': 'noop'}]}", "$.tasks[0].name",
                   "invalid task name ''");
    expect_problem("{'name': 'w', 'tasks': [{'name': '.a', 'type': 'noop'}]}", "$.tasks[0].name",
                   "invalid task name '.a'");
    /* An invalid name is still a name: depending on it is not also an unknown task. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'a b', 'type': 'noop'},"
                " {'name': 'c', 'type': 'noop', 'dependsOn': ['a b']}]}",
                "$.tasks[0].name",
                "invalid task name 'a b' (must match [A-Za-z0-9][A-Za-z0-9._-]{0,127})");
}

static void test_duplicate_task_names(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    (void)state;

    expect_only("{'name': 'w', 'tasks': [{'name': 'extract', 'type': 'noop'},"
                " {'name': 'load', 'type': 'noop'}, {'name': 'extract', 'type': 'noop'}]}",
                "$.tasks[2].name", "duplicate task name 'extract' (also $.tasks[0])");
    /* A third copy also points at the first; reported in document order. */
    parse_bad("{'name': 'w', 'tasks': [{'name': 'b', 'type': 'noop'}, {'name': 'a', 'type': "
              "'noop'}, {'name': 'b', 'type': 'noop'}, {'name': 'a', 'type': 'noop'},"
              " {'name': 'b', 'type': 'noop'}]}",
              &pr);
    assert_int_equal(pr.n, 3);
    assert_string_equal(pr.items[0].path, "$.tasks[2].name");
    assert_string_equal(pr.items[0].message, "duplicate task name 'b' (also $.tasks[0])");
    assert_string_equal(pr.items[1].path, "$.tasks[3].name");
    assert_string_equal(pr.items[1].message, "duplicate task name 'a' (also $.tasks[1])");
    assert_string_equal(pr.items[2].path, "$.tasks[4].name");
    assert_string_equal(pr.items[2].message, "duplicate task name 'b' (also $.tasks[0])");
    dag_problems_release(&pr);
}

static void test_self_dependency(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'b', 'type': 'noop'},"
                " {'name': 'a', 'type': 'noop', 'dependsOn': ['b', 'a']}]}",
                "$.tasks[1].dependsOn[1]", "task 'a' depends on itself");
}

static void test_duplicate_dependency(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'b', 'type': 'noop'},"
                " {'name': 'c', 'type': 'noop'},"
                " {'name': 'a', 'type': 'noop', 'dependsOn': ['b', 'c', 'b']}]}",
                "$.tasks[2].dependsOn[2]", "duplicate dependency 'b' in dependsOn");
}

static void test_unknown_dependency(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'extract', 'type': 'noop'},"
                " {'name': 'transform', 'type': 'noop', 'dependsOn': ['extract']},"
                " {'name': 'load', 'type': 'noop', 'dependsOn': ['extract', 'trasform']}]}",
                "$.tasks[2].dependsOn[1]",
                "unknown task 'trasform' in dependsOn (did you mean 'transform'?)");
    /* Too far from every name: no suggestion. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'extract', 'type': 'noop'},"
                " {'name': 'load', 'type': 'noop', 'dependsOn': ['publish']}]}",
                "$.tasks[1].dependsOn[0]", "unknown task 'publish' in dependsOn");
    /* A task is never suggested as its own dependency. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'build', 'type': 'noop', "
                "'dependsOn': ['buidl']}]}",
                "$.tasks[0].dependsOn[0]", "unknown task 'buidl' in dependsOn");
    /* The nearest of several candidates wins. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'alpha', 'type': 'noop'},"
                " {'name': 'alpine', 'type': 'noop'},"
                " {'name': 'x', 'type': 'noop', 'dependsOn': ['alpin']}]}",
                "$.tasks[2].dependsOn[0]",
                "unknown task 'alpin' in dependsOn (did you mean 'alpine'?)");
}

static void test_cycle_three(void **state)
{
    (void)state;
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop', 'dependsOn': ['b']},"
                " {'name': 'b', 'type': 'noop', 'dependsOn': ['c']},"
                " {'name': 'c', 'type': 'noop', 'dependsOn': ['a']}]}",
                "$.tasks[0].dependsOn", "cycle: a -> b -> c -> a");
    /* The cycle starts at its first task in the document. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'start', 'type': 'noop'},"
                " {'name': 'y', 'type': 'noop', 'dependsOn': ['start', 'x']},"
                " {'name': 'x', 'type': 'noop', 'dependsOn': ['y']}]}",
                "$.tasks[1].dependsOn", "cycle: y -> x -> y");
}

static void test_two_cycles(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    (void)state;

    parse_bad("{'name': 'w', 'tasks': ["
              " {'name': 'ok', 'type': 'noop'},"
              " {'name': 'p', 'type': 'noop', 'dependsOn': ['q', 'ok']},"
              " {'name': 'q', 'type': 'noop', 'dependsOn': ['p']},"
              " {'name': 'after', 'type': 'noop', 'dependsOn': ['p', 'z']},"
              " {'name': 'x', 'type': 'noop', 'dependsOn': ['z']},"
              " {'name': 'y', 'type': 'noop', 'dependsOn': ['x']},"
              " {'name': 'z', 'type': 'noop', 'dependsOn': ['y', 'x']}]}",
              &pr);
    if (pr.n != 2)
        dump_problems(&pr);
    assert_int_equal(pr.n, 2);
    assert_string_equal(pr.items[0].path, "$.tasks[1].dependsOn");
    assert_string_equal(pr.items[0].message, "cycle: p -> q -> p");
    assert_string_equal(pr.items[1].path, "$.tasks[4].dependsOn");
    /* One report per strongly connected component {x, y, z}, though it has two cycles. */
    assert_string_equal(pr.items[1].message, "cycle: x -> z -> x");
    dag_problems_release(&pr);
}

static void test_long_cycle(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct strbuf sb = STRBUF_INIT;
    size_t n = 50000;
    (void)state;

    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[");
    for (size_t i = 0; i < n; i++)
        strbuf_addf(&sb, "%s{\"name\":\"t%zu\",\"type\":\"noop\",\"dependsOn\":[\"t%zu\"]}",
                    i ? "," : "", i, (i + 1) % n);
    strbuf_adds(&sb, "]}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, "$.tasks[0].dependsOn");
    assert_string_equal(pr.items[0].message,
                        "cycle: t0 -> t1 -> t2 -> t3 -> t4 -> t5 -> t6 -> t7 -> ... (49984 more) "
                        "-> t49992 -> t49993 -> t49994 -> t49995 -> t49996 -> t49997 -> t49998 "
                        "-> t49999 -> t0");
    dag_problems_release(&pr);
    strbuf_release(&sb);
}

/* ---- several problems, limits, text safety ---- */

static void test_many_problems_at_once(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    (void)state;

    parse_bad("{'name': 'Bad Name', 'timeout': 'soon', 'tasks': ["
              " {'name': 'a', 'command': 'ls', 'retries': 500, 'runIf': 'sometimes'},"
              " {'name': 'a', 'type': 'noop', 'dependsOn': ['zzz']},"
              " {'name': 'c', 'type': 'sleep', 'duraton': 5}]}",
              &pr);
    assert_true(find_problem(&pr, "$.name", "invalid workflow name 'Bad Name'") >= 0);
    assert_true(find_problem(&pr, "$.timeout", "invalid duration 'soon'") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].retries", "between 0 and 100, got 500") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].runIf", "invalid runIf 'sometimes'") >= 0);
    assert_true(find_problem(&pr, "$.tasks[1].name", "duplicate task name 'a'") >= 0);
    assert_true(find_problem(&pr, "$.tasks[1].dependsOn[0]", "unknown task 'zzz'") >= 0);
    assert_true(find_problem(&pr, "$.tasks[2].duraton",
                             "unknown field 'duraton' (did you mean 'duration'?)") >= 0);
    assert_true(find_problem(&pr, "$.tasks[2]", "missing 'duration'") >= 0);
    assert_int_equal(pr.n, 8);
    assert_int_equal(pr.dropped, 0);
    dag_problems_release(&pr);
}

static void test_problem_limit(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct strbuf sb = STRBUF_INIT;
    size_t n = 5000;
    (void)state;

    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[");
    for (size_t i = 0; i < n; i++)
        strbuf_addf(&sb, "%s{\"name\":\"task%zu\",\"type\":\"noop\",\"dependsOn\":[\"tsak%zu\"]}",
                    i ? "," : "", i, (i + 1) % n);
    strbuf_adds(&sb, "]}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, DAG_MAX_PROBLEMS);
    assert_int_equal(pr.dropped, n - DAG_MAX_PROBLEMS);
    assert_string_equal(pr.items[0].message,
                        "unknown task 'tsak1' in dependsOn (did you mean 'task1'?)");
    dag_problems_release(&pr);
    assert_int_equal(pr.n, 0);
    assert_int_equal(pr.dropped, 0);
    assert_null(pr.items);

    /* Without a problem list the result is the same, and nothing leaks. */
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, NULL), ERR_INVALID);
    assert_null(wf);
    strbuf_release(&sb);

    /* A cycle found after the list is full is counted too. */
    strbuf_adds(&sb,
                "{\"name\":\"w\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\","
                "\"dependsOn\":[\"b\"]},{\"name\":\"b\",\"type\":\"noop\",\"dependsOn\":[\"a\"]}]");
    for (size_t i = 0; i < DAG_MAX_PROBLEMS + 1; i++)
        strbuf_addf(&sb, ",\"extra%zu\":1", i);
    strbuf_adds(&sb, "}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, DAG_MAX_PROBLEMS);
    assert_int_equal(pr.dropped, 2);
    dag_problems_release(&pr);
    strbuf_release(&sb);
}

static void test_problems_appended(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    (void)state;

    assert_int_equal(dag_parse("[]", 2, &wf, &pr), ERR_INVALID);
    assert_int_equal(dag_parse("{", 1, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 2);
    dag_problems_release(&pr);
}

static void test_text_safety(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct strbuf sb = STRBUF_INIT;
    const char *m;
    (void)state;

    /* Control characters are escaped in messages. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'a\\u001b[31m\\n', 'type': 'noop'}]}",
                "$.tasks[0].name",
                "invalid task name 'a\\x1b[31m\\n' (must match "
                "[A-Za-z0-9][A-Za-z0-9._-]{0,127})");

    /* A huge unknown key is cut at a character boundary in the message and the path. */
    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}],\"");
    for (size_t i = 0; i < 100000; i++)
        strbuf_adds(&sb, "\xc3\xa9"); /* e with an acute accent, two bytes */
    strbuf_adds(&sb, "\":1}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 1);
    m = pr.items[0].message;
    assert_true(strlen(m) < 300);
    assert_non_null(strstr(m, "\xc3\xa9...'"));
    assert_true(strlen(pr.items[0].path) < 300);
    assert_memory_equal(pr.items[0].path, "$[\"\xc3\xa9", 5);
    assert_non_null(strstr(pr.items[0].path, "\"...]"));
    dag_problems_release(&pr);
    strbuf_release(&sb);

    /* The cut never splits a character, whatever its offset. */
    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}],\"x");
    for (size_t i = 0; i < 1000; i++)
        strbuf_adds(&sb, "\xc3\xa9");
    strbuf_adds(&sb, "\":1}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    m = pr.items[0].message;
    assert_memory_equal(m, "unknown field 'x\xc3\xa9", 18);
    assert_non_null(strstr(m, "\xc3\xa9...'"));
    assert_null(strchr(m, '?'));
    dag_problems_release(&pr);
    strbuf_release(&sb);

    /* A long identifier is not written as .key in a path. */
    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}],\"");
    for (size_t i = 0; i < 200; i++)
        strbuf_addch(&sb, 'k');
    strbuf_adds(&sb, "\":1}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_memory_equal(pr.items[0].path, "$[\"kkk", 6);
    assert_non_null(strstr(pr.items[0].path, "k\"...]"));
    dag_problems_release(&pr);
    strbuf_release(&sb);

    /* Multi-byte characters pass through; tabs and carriage returns are escaped. */
    expect_only("{'name': 'w', 'tasks': [{'name': '\xe6\x97\xa5\xf0\x9f\x98\x80\\t\\r',"
                " 'type': 'noop'}]}",
                "$.tasks[0].name",
                "invalid task name '\xe6\x97\xa5\xf0\x9f\x98\x80\\t\\r' (must match "
                "[A-Za-z0-9][A-Za-z0-9._-]{0,127})");

    /*
     * A message from clock_parse_duration() is cut at ERR_MSG_MAX bytes,
     * possibly inside a character: the broken tail is replaced.
     */
    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[{\"name\":\"a\",\"type\":\"sleep\","
                     "\"duration\":\"");
    for (size_t i = 0; i < 600; i++)
        strbuf_adds(&sb, "\xc3\xa9");
    strbuf_adds(&sb, "\"}]}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    m = pr.items[0].message;
    assert_string_equal(pr.items[0].path, "$.tasks[0].duration");
    assert_memory_equal(m, "invalid duration '\xc3\xa9", 20);
    assert_int_equal(m[strlen(m) - 1], '?');
    dag_problems_release(&pr);
    strbuf_release(&sb);
}

/* Suggestions stop once their work budget is spent; problems are still all reported. */
static void test_suggestion_budget(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct strbuf sb = STRBUF_INIT;
    size_t n = 4000;
    (void)state;

    /* Names of 100 digits: each comparison costs 100 * 100 cells. */
    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[");
    for (size_t i = 0; i < n; i++)
        strbuf_addf(&sb, "{\"name\":\"%0100zu\",\"type\":\"noop\"},", i);
    /* A name longer than DAG__SUGGEST_MAX_LEN is never offered. */
    strbuf_adds(&sb, "{\"name\":\"");
    for (size_t i = 0; i < 200; i++)
        strbuf_addch(&sb, 'q');
    strbuf_adds(&sb, "\",\"type\":\"noop\"},");
    strbuf_adds(&sb, "{\"name\":\"last\",\"type\":\"noop\",\"dependsOn\":[");
    /* Far from every name: compared with all of them, the budget runs out. */
    strbuf_addf(&sb, "\"abcdefghij%090d\",", 0);
    /* Next to a name, but no budget left for the search. */
    strbuf_addf(&sb, "\"%099dx\"]}]}", 0);
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 3);
    assert_non_null(strstr(pr.items[0].message, "invalid task name 'qqq"));
    assert_null(strstr(pr.items[1].message, "did you mean"));
    assert_string_equal(pr.items[2].path, "$.tasks[4001].dependsOn[1]");
    assert_null(strstr(pr.items[2].message, "did you mean"));
    dag_problems_release(&pr);
    strbuf_release(&sb);

    /* With the budget intact the same typo is found. */
    strbuf_adds(&sb, "{\"name\":\"w\",\"tasks\":[");
    for (size_t i = 0; i < 10; i++)
        strbuf_addf(&sb, "{\"name\":\"%0100zu\",\"type\":\"noop\"},", i);
    strbuf_addf(&sb, "{\"name\":\"last\",\"type\":\"noop\",\"dependsOn\":[\"%099dx\"]}]}", 0);
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, 1);
    assert_non_null(strstr(pr.items[0].message, "(did you mean '0000"));
    dag_problems_release(&pr);
    strbuf_release(&sb);
}

/* ---- scale ---- */

/* Compact task names: base 36, so that long chains fit in DAG_MAX_BYTES. */
static void add_name(struct strbuf *sb, size_t i)
{
    char tmp[16];
    size_t n = 0;

    do {
        tmp[n++] = "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36];
        i /= 36;
    } while (i);
    while (n)
        strbuf_addch(sb, tmp[--n]);
}

/* A chain of n tasks, each depending on the previous one (or the next one if backwards). */
static void build_chain(struct strbuf *sb, size_t n, int backwards, const char *kind)
{
    strbuf_adds(sb, "{\"name\":\"chain\",\"tasks\":[");
    for (size_t i = 0; i < n; i++) {
        int has_dep = backwards ? i + 1 < n : i > 0;
        strbuf_adds(sb, i ? ",{\"name\":\"" : "{\"name\":\"");
        add_name(sb, i);
        strbuf_addf(sb, "\"%s", kind);
        if (has_dep) {
            strbuf_adds(sb, ",\"dependsOn\":[\"");
            add_name(sb, backwards ? i + 1 : i - 1);
            strbuf_adds(sb, "\"]");
        }
        strbuf_addch(sb, '}');
    }
    strbuf_adds(sb, "]}");
}

static void test_big_chain(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct strbuf sb = STRBUF_INIT;
    size_t n = 80000;
    (void)state;

    /*
     * A valid task with a dependency takes about 50 bytes of JSON here
     * ({"name":"1s0","type":"noop","dependsOn":["1rz"]},), so a valid chain
     * of DAG_MAX_TASKS (100000) tasks cannot fit in DAG_MAX_BYTES (4 MiB);
     * 80000 does.
     */
    build_chain(&sb, n, 0, ",\"type\":\"noop\"");
    assert_true(sb.len <= DAG_MAX_BYTES);
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), 0);
    assert_int_equal(wf->ntasks, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(wf->topo[i], i);
    assert_int_equal(wf->tasks[n - 1].deps[0], n - 2);
    assert_int_equal(wf->tasks[0].children[0], 1);
    assert_int_equal(dag_find_task(wf, "1s0"), 36 * 36 + 28 * 36);
    assert_int_equal(dag_find_task(wf, "zzzz"), -1);
    workflow_free(wf);
    strbuf_release(&sb);

    /* The same chain written backwards (each task depends on the next one). */
    build_chain(&sb, n, 1, ",\"type\":\"noop\"");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), 0);
    assert_int_equal(wf->topo[0], n - 1);
    assert_int_equal(wf->topo[n - 1], 0);
    workflow_free(wf);
    strbuf_release(&sb);

    /*
     * DAG_MAX_TASKS tasks in one chain, without their commands (to fit): the
     * whole graph pass runs (a 100000-deep search), the only problems are
     * the missing commands.
     */
    build_chain(&sb, DAG_MAX_TASKS, 0, "");
    assert_true(sb.len <= DAG_MAX_BYTES);
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.n, DAG_MAX_PROBLEMS);
    assert_int_equal(pr.dropped, DAG_MAX_TASKS - DAG_MAX_PROBLEMS);
    for (size_t i = 0; i < pr.n; i++)
        assert_string_equal(pr.items[i].message, "missing 'command' (required for type 'command')");
    dag_problems_release(&pr);
    strbuf_release(&sb);

    /* And backwards: the depth-first search starts at the far end. */
    build_chain(&sb, DAG_MAX_TASKS, 1, "");
    assert_true(sb.len <= DAG_MAX_BYTES);
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), ERR_INVALID);
    assert_int_equal(pr.dropped, DAG_MAX_TASKS - DAG_MAX_PROBLEMS);
    dag_problems_release(&pr);
    strbuf_release(&sb);
}

static void test_fan_out_join(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct strbuf sb = STRBUF_INIT;
    size_t n = 1000;
    (void)state;

    strbuf_adds(&sb, "{\"name\":\"fan\",\"tasks\":[{\"name\":\"root\",\"type\":\"noop\"}");
    for (size_t i = 0; i < n; i++)
        strbuf_addf(&sb, ",{\"name\":\"w%zu\",\"type\":\"noop\",\"dependsOn\":[\"root\"]}", i);
    strbuf_adds(&sb, ",{\"name\":\"join\",\"type\":\"noop\",\"dependsOn\":[");
    for (size_t i = 0; i < n; i++)
        strbuf_addf(&sb, "%s\"w%zu\"", i ? "," : "", i);
    strbuf_adds(&sb, "]}]}");
    assert_int_equal(dag_parse(sb.buf, sb.len, &wf, &pr), 0);
    check_invariants(wf);
    assert_int_equal(wf->ntasks, n + 2);
    assert_int_equal(wf->tasks[0].nchildren, n);
    assert_int_equal(wf->tasks[n + 1].ndeps, n);
    assert_int_equal(wf->tasks[n + 1].deps[n - 1], n);
    assert_int_equal(wf->topo[0], 0);
    assert_int_equal(wf->topo[n + 1], n + 1);
    workflow_free(wf);
    strbuf_release(&sb);
}

/* ---- random graphs against a brute-force reference ---- */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

#define RG_N 9

/* Check that a "cycle: a -> b -> ... -> a" message follows real edges. */
static void check_cycle_message(const char *msg, int adj[RG_N][RG_N], int reach[RG_N][RG_N],
                                int *first)
{
    const char *p = msg + strlen("cycle: ");
    int prev = -1, start = -1;

    assert_memory_equal(msg, "cycle: ", 7);
    for (;;) {
        int v;
        assert_int_equal(p[0], 't');
        v = p[1] - '0';
        assert_true(v >= 0 && v < RG_N);
        if (prev < 0) {
            start = v;
            *first = v;
        } else {
            assert_true(adj[prev][v]);
            assert_true(reach[v][start] && reach[start][v]); /* same component */
        }
        prev = v;
        p += 2;
        if (!*p)
            break;
        assert_memory_equal(p, " -> ", 4);
        p += 4;
    }
    assert_int_equal(prev, start);
}

static void test_random_graphs(void **state)
{
    uint64_t seed = 0x9E3779B97F4A7C15u;
    int nacyclic = 0, nmulti = 0;
    (void)state;

    for (int round = 0; round < 3000; round++) {
        int adj[RG_N][RG_N] = {{0}}, reach[RG_N][RG_N];
        struct dag_problems pr = DAG_PROBLEMS_INIT;
        struct workflow *wf = NULL;
        struct strbuf sb = STRBUF_INIT;
        int density = (int)(rng_next(&seed) % 30) + 1;
        int nscc = 0, cyclic = 0, rc;

        for (int u = 0; u < RG_N; u++) {
            for (int v = 0; v < RG_N; v++)
                adj[u][v] = u != v && (int)(rng_next(&seed) % 100) < density;
        }
        memcpy(reach, adj, sizeof(reach));
        for (int k = 0; k < RG_N; k++) {
            for (int u = 0; u < RG_N; u++) {
                for (int v = 0; v < RG_N; v++)
                    reach[u][v] = reach[u][v] || (reach[u][k] && reach[k][v]);
            }
        }
        /* Count components of more than one task: each has a lowest member u with u->u. */
        for (int u = 0; u < RG_N; u++) {
            int lowest = reach[u][u];
            for (int w = 0; w < u && lowest; w++)
                lowest = !(reach[u][w] && reach[w][u]);
            nscc += lowest;
            cyclic = cyclic || reach[u][u];
        }

        strbuf_adds(&sb, "{\"name\":\"r\",\"tasks\":[");
        for (int u = 0; u < RG_N; u++) {
            int k = 0;
            strbuf_addf(&sb, "%s{\"name\":\"t%d\",\"type\":\"noop\",\"dependsOn\":[", u ? "," : "",
                        u);
            for (int v = 0; v < RG_N; v++) {
                if (adj[u][v])
                    strbuf_addf(&sb, "%s\"t%d\"", k++ ? "," : "", v);
            }
            strbuf_adds(&sb, "]}");
        }
        strbuf_adds(&sb, "]}");
        rc = dag_parse(sb.buf, sb.len, &wf, &pr);
        nacyclic += !cyclic;
        nmulti += nscc > 1;
        if (!cyclic) {
            assert_int_equal(rc, 0);
            check_invariants(wf);
        } else {
            int last_first = -1;
            assert_int_equal(rc, ERR_INVALID);
            assert_int_equal(pr.n, nscc);
            for (size_t i = 0; i < pr.n; i++) {
                int first;
                char path[64];
                check_cycle_message(pr.items[i].message, adj, reach, &first);
                /* Reported from the component's first task, in document order. */
                for (int w = 0; w < first; w++)
                    assert_false(reach[first][w] && reach[w][first]);
                assert_true(first > last_first);
                last_first = first;
                snprintf(path, sizeof(path), "$.tasks[%d].dependsOn", first);
                assert_string_equal(pr.items[i].path, path);
            }
        }
        workflow_free(wf);
        dag_problems_release(&pr);
        strbuf_release(&sb);
    }
    /* The mix covers both outcomes and several cycles at once. */
    assert_true(nacyclic > 300);
    assert_true(nmulti > 100);
}

/* ---- small helpers ---- */

static void test_names_and_lookup(void **state)
{
    struct workflow *wf;
    (void)state;

    assert_string_equal(dag_task_type_name(TASK_COMMAND), "command");
    assert_string_equal(dag_task_type_name(TASK_NOOP), "noop");
    assert_string_equal(dag_task_type_name(TASK_SLEEP), "sleep");
    assert_string_equal(dag_run_if_name(RUN_IF_ALL_SUCCEEDED), "allSucceeded");
    assert_string_equal(dag_run_if_name(RUN_IF_ALL_DONE), "allDone");
    assert_string_equal(dag_run_if_name(RUN_IF_ANY_FAILED), "anyFailed");

    wf = parse_ok("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop'},"
                  " {'name': 'B.2', 'type': 'noop'}]}");
    assert_int_equal(dag_find_task(wf, "a"), 0);
    assert_int_equal(dag_find_task(wf, "B.2"), 1);
    assert_int_equal(dag_find_task(wf, "b.2"), -1);
    assert_int_equal(dag_find_task(wf, ""), -1);
    assert_int_equal(dag_find_task(wf, NULL), -1);
    assert_int_equal(dag_find_task(NULL, "a"), -1);
    workflow_free(wf);
    assert_string_equal(dag_task_type_name((enum task_type)42), "unknown");
    assert_string_equal(dag_run_if_name((enum run_if)42), "unknown");
    dag_problems_release(NULL);
}

/* Every tests/data/workflows/ok-*.json parses; every bad-*.json is rejected. */
static void test_data_files(void **state)
{
    const char *root = getenv("ORCH_TEST_DATA");
    char dir[4096];
    struct dirent *de;
    DIR *d;
    int nok = 0, nbad = 0;
    (void)state;

    if (!root)
        skip();
    snprintf(dir, sizeof(dir), "%s/workflows", root);
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        struct dag_problems pr = DAG_PROBLEMS_INIT;
        struct workflow *wf = NULL;
        char path[8192];
        size_t len = 0, n;
        char *buf;
        FILE *f;
        int ok = !strncmp(de->d_name, "ok-", 3);
        int rc;

        if (!ok && strncmp(de->d_name, "bad-", 4))
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "rb");
        assert_non_null(f);
        buf = xmalloc(DAG_MAX_BYTES + 1);
        while ((n = fread(buf + len, 1, DAG_MAX_BYTES + 1 - len, f)) > 0)
            len += n;
        fclose(f);
        rc = dag_parse(buf, len, &wf, &pr);
        if ((rc == 0) != ok) {
            print_message("%s: unexpected result %d\n", de->d_name, rc);
            dump_problems(&pr);
            fail();
        }
        if (ok) {
            check_invariants(wf);
            nok++;
        } else {
            nbad++;
        }
        workflow_free(wf);
        dag_problems_release(&pr);
        free(buf);
    }
    closedir(d);
    assert_true(nok >= 2);
    assert_true(nbad >= 2);
}

/* ---- schedules ---- */

/* A workflow with one noop task and the given schedules (the array's contents). */
#define WS(scheds) "{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop'}], 'schedules': [" scheds "]}"
/* The same with params: date (required string), limit (number, default 10). */
#define WSP(scheds)                                                                                \
    "{'name': 'w', 'params': {'date': {'type': 'string', 'required': true}, 'limit': 10},"         \
    " 'tasks': [{'name': 'a', 'type': 'noop'}], 'schedules': [" scheds "]}"

/* The spec hash: the same for the same rule, different when what decides the due times or
 * the params changes, and a missing zone hashes as UTC (the scheduler's default). */
static void test_schedule_hash(void **state)
{
    static const char *const variants[] = {
        WSP("{'cron': '30 2 * * *', 'timezone': 'UTC', 'params': {'date': 'a'}}"),
        WSP("{'cron': '31 2 * * *', 'timezone': 'UTC', 'params': {'date': 'a'}}"),
        WSP("{'cron': '30 2 * * *', 'timezone': 'Europe/Berlin', 'params': {'date': 'a'}}"),
        WSP("{'cron': '30 2 * * *', 'timezone': 'UTC', 'params': {'date': 'b'}}"),
        WSP("{'cron': '30 2 * * *', 'timezone': 'UTC', 'params': {'date': 'a'}, 'enabled': false}"),
        WSP("{'cron': '30 2 * * *', 'timezone': 'UTC', 'params': {'date': 'a'},"
            " 'dst': {'skipped': 'skip'}}"),
        WSP("{'cron': '30 2 * * *', 'timezone': 'UTC', 'params': {'date': 'a'},"
            " 'dst': {'repeated': 'both'}}"),
        WSP("{'every': '90s', 'timezone': 'UTC', 'params': {'date': 'a'}}"),
        WSP("{'every': '91s', 'timezone': 'UTC', 'params': {'date': 'a'}}"),
    };
    enum { N = sizeof(variants) / sizeof(variants[0]) };
    char *h[N];
    struct workflow *wf;
    struct dag_schedule s;
    char *a, *b;
    (void)state;

    for (size_t i = 0; i < N; i++) {
        wf = parse_ok(variants[i]);
        h[i] = dag_schedule_hash(&wf->schedules[0]);
        workflow_free(wf);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            if (!strcmp(h[i], h[j]))
                fail_msg("variants %zu and %zu hash the same: %s", i, j, h[i]);
    /* The same spec again: the same hash; the schedule's name plays no part. */
    wf = parse_ok(WSP("{'name': 'other', 'cron': '30 2 * * *', 'params': {'date': 'a'}}"));
    a = dag_schedule_hash(&wf->schedules[0]);
    assert_string_equal(a, h[0]);
    /* No zone at all hashes as UTC. */
    s = wf->schedules[0];
    s.timezone = NULL;
    b = dag_schedule_hash(&s);
    assert_string_equal(b, h[0]);
    free(a);
    free(b);
    workflow_free(wf);
    for (size_t i = 0; i < N; i++)
        free(h[i]);
}

static void test_schedule_defaults(void **state)
{
    struct workflow *wf;
    const struct dag_schedule *s;
    (void)state;

    wf = parse_ok(WS("{'cron': '0 2 * * *'}, {'cron': '*/15 * * * *'}"));
    assert_int_equal(wf->nschedules, 2);
    s = &wf->schedules[0];
    assert_string_equal(s->name, "schedule-0");
    assert_int_equal(s->is_cron, 1);
    assert_string_equal(s->cron_text, "0 2 * * *");
    assert_int_equal(s->cron.cadence, 0);
    assert_true(s->cron.hours == (1u << 2));
    assert_int_equal(s->every_ms, 0);
    assert_string_equal(s->timezone, "UTC");
    assert_null(s->params_json);
    assert_int_equal(s->enabled, 1);
    assert_int_equal(s->dst.skipped, CRON_SKIPPED_SHIFT);
    assert_int_equal(s->dst.repeated, CRON_REPEATED_FIRST);
    assert_int_equal(s->catchup, DAG_CATCHUP_LATEST);
    assert_int_equal(s->max_catchup, 100);
    assert_int_equal(s->overlap, DAG_OVERLAP_SKIP);
    assert_string_equal(wf->schedules[1].name, "schedule-1");
    assert_int_equal(wf->schedules[1].cron.cadence, 1);
    workflow_free(wf);

    /* No "schedules", or an empty array: none. */
    wf = parse_ok("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop'}], 'schedules': []}");
    assert_int_equal(wf->nschedules, 0);
    assert_null(wf->schedules);
    workflow_free(wf);
}

static void test_schedule_all_fields(void **state)
{
    struct workflow *wf;
    const struct dag_schedule *s;
    (void)state;

    /* "schedules" before "params" in the text: params are still known. */
    wf = parse_ok("{'name': 'w', 'schedules': [{'name': 'nightly.eu', 'cron': '@daily',"
                  " 'timezone': 'Europe/Berlin', 'params': {'date': 'today', 'limit': 5},"
                  " 'enabled': false, 'dst': {'skipped': 'skip', 'repeated': 'both'},"
                  " 'catchup': 'all', 'maxCatchup': 10000, 'overlap': 'cancelPrevious'}],"
                  " 'params': {'date': {'type': 'string', 'required': true}, 'limit': 10},"
                  " 'tasks': [{'name': 'a', 'type': 'noop'}]}");
    s = &wf->schedules[0];
    assert_string_equal(s->name, "nightly.eu");
    assert_string_equal(s->cron_text, "@daily");
    assert_string_equal(s->timezone, "Europe/Berlin");
    assert_string_equal(s->params_json, "{\"date\":\"today\",\"limit\":5}");
    assert_int_equal(s->enabled, 0);
    assert_int_equal(s->dst.skipped, CRON_SKIPPED_SKIP);
    assert_int_equal(s->dst.repeated, CRON_REPEATED_BOTH);
    assert_int_equal(s->catchup, DAG_CATCHUP_ALL);
    assert_int_equal(s->max_catchup, 10000);
    assert_int_equal(s->overlap, DAG_OVERLAP_CANCEL_PREVIOUS);
    assert_string_equal(dag_catchup_name(s->catchup), "all");
    assert_string_equal(dag_overlap_name(s->overlap), "cancelPrevious");
    workflow_free(wf);

    /* Every enum value is accepted. */
    wf = parse_ok(WS("{'cron': '0 * * * *', 'overlap': 'bufferOne', 'catchup': 'none',"
                     " 'dst': {'repeated': 'last', 'skipped': 'shift'}},"
                     "{'cron': '0 * * * *', 'overlap': 'bufferAll', 'catchup': 'latest'},"
                     "{'cron': '0 * * * *', 'overlap': 'allow', 'dst': {'repeated': 'first'}}"));
    assert_int_equal(wf->schedules[0].overlap, DAG_OVERLAP_BUFFER_ONE);
    assert_int_equal(wf->schedules[0].catchup, DAG_CATCHUP_NONE);
    assert_int_equal(wf->schedules[0].dst.repeated, CRON_REPEATED_LAST);
    assert_int_equal(wf->schedules[1].overlap, DAG_OVERLAP_BUFFER_ALL);
    assert_int_equal(wf->schedules[2].overlap, DAG_OVERLAP_ALLOW);
    workflow_free(wf);
}

static void test_schedule_every(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok(WS("{'every': '30s'}, {'every': 90}, {'every': '1h30m', 'timezone': 'UTC'}"));
    assert_int_equal(wf->schedules[0].is_cron, 0);
    assert_null(wf->schedules[0].cron_text);
    assert_int_equal(wf->schedules[0].every_ms, 30000);
    assert_int_equal(wf->schedules[1].every_ms, 90000);
    assert_int_equal(wf->schedules[2].every_ms, 5400000);
    workflow_free(wf);

    expect_only(WS("{'every': '0s'}"), "$.schedules[0].every", "'every' must be at least 1s");
    expect_only(WS("{'every': '500ms'}"), "$.schedules[0].every", "'every' must be at least 1s");
    expect_only(WS("{'every': '1500ms'}"), "$.schedules[0].every",
                "'every' must be a whole number of seconds");
    expect_problem(WS("{'every': 'soon'}"), "$.schedules[0].every", "");
    expect_problem(WS("{'every': true}"), "$.schedules[0].every", "must be a duration");
}

static void test_schedule_cron_or_every(void **state)
{
    (void)state;
    expect_only(WS("{'cron': '0 2 * * *', 'every': '30s'}"), "$.schedules[0].every",
                "'cron' and 'every' cannot both be given (use one)");
    expect_only(WS("{'timezone': 'UTC'}"), "$.schedules[0]",
                "missing 'cron' or 'every' (exactly one is required)");
    expect_only(WS("{'cron': 5}"), "$.schedules[0].cron", "'cron' must be a string, got integer");
}

static void test_schedule_bad_cron(void **state)
{
    (void)state;
    /* The message is cron_parse()'s, at the field's path. */
    expect_only(WS("{'cron': '0 2 * * 8'}"), "$.schedules[0].cron",
                "day-of-week: 8 is out of range 0-7");
    expect_only(WS("{'cron': '0 0 30 2 *'}"), "$.schedules[0].cron",
                "never fires: day-of-month 30 does not occur in month 2");
    expect_only(WS("{'cron': '0 0 2 * * *'}"), "$.schedules[0].cron",
                "expected 5 fields, got 6 (seconds are not supported; use an 'every' schedule)");
    expect_problem(WS("{'cron': '@reboot'}"), "$.schedules[0].cron", "@reboot is not supported");
}

static void test_schedule_timezone(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    (void)state;

    expect_only(WS("{'cron': '0 2 * * *'}, {'cron': '0 2 * * *', 'timezone': 'Europe/Berln'}"),
                "$.schedules[1].timezone",
                "unknown time zone 'Europe/Berln' (did you mean 'Europe/Berlin'?)");
    expect_only(WS("{'cron': '0 2 * * *', 'timezone': 'Mars/Olympus_Mons'}"),
                "$.schedules[0].timezone", "unknown time zone 'Mars/Olympus_Mons'");
    /* A name tz_load() refuses outright keeps its message. */
    parse_bad(WS("{'cron': '0 2 * * *', 'timezone': '../etc/passwd'}"), &pr);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, "$.schedules[0].timezone");
    assert_non_null(strstr(pr.items[0].message, "invalid time zone name"));
    dag_problems_release(&pr);
    expect_only(WS("{'every': '1m', 'timezone': 3}"), "$.schedules[0].timezone",
                "'timezone' must be a string, got integer");
}

static void test_schedule_unknown_fields(void **state)
{
    (void)state;
    expect_only(WS("{'cronn': '0 2 * * *', 'every': '1m'}"), "$.schedules[0].cronn",
                "unknown field 'cronn' (did you mean 'cron'?)");
    expect_only(WS("{'every': '1m', 'timeZone': 'UTC'}"), "$.schedules[0].timeZone",
                "unknown field 'timeZone' (did you mean 'timezone'?)");
    expect_only(WS("{'every': '1m', 'dst': {'skiped': 'skip'}}"), "$.schedules[0].dst.skiped",
                "unknown field 'skiped' (did you mean 'skipped'?)");
    expect_only(WS("{'every': '1m', 'zzz': 1}"), "$.schedules[0].zzz", "unknown field 'zzz'");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop'}], 'schedule': []}",
                "$.schedule", "unknown field 'schedule' (did you mean 'schedules'?)");
}

static void test_schedule_enums(void **state)
{
    (void)state;
    expect_only(WS("{'every': '1m', 'catchup': 'some'}"), "$.schedules[0].catchup",
                "invalid catchup 'some' (allowed: none, latest, all)");
    expect_only(WS("{'every': '1m', 'overlap': 'queue'}"), "$.schedules[0].overlap",
                "invalid overlap 'queue' (allowed: skip, bufferOne, bufferAll, cancelPrevious, "
                "allow)");
    expect_only(WS("{'every': '1m', 'dst': {'skipped': 'later'}}"),
                "$.schedules[0].dst.skipped", "invalid dst.skipped 'later' (allowed: shift, skip)");
    expect_only(WS("{'every': '1m', 'dst': {'repeated': 'twice'}}"),
                "$.schedules[0].dst.repeated",
                "invalid dst.repeated 'twice' (allowed: first, last, both)");
    expect_only(WS("{'every': '1m', 'dst': 'skip'}"), "$.schedules[0].dst",
                "'dst' must be an object, got string");
    expect_only(WS("{'every': '1m', 'enabled': 'yes'}"), "$.schedules[0].enabled",
                "'enabled' must be a boolean, got string");
}

static void test_schedule_max_catchup(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok(WS("{'every': '1m', 'maxCatchup': 1}"));
    assert_int_equal(wf->schedules[0].max_catchup, 1);
    workflow_free(wf);
    expect_only(WS("{'every': '1m', 'maxCatchup': 0}"), "$.schedules[0].maxCatchup",
                "'maxCatchup' must be between 1 and 10000, got 0");
    expect_only(WS("{'every': '1m', 'maxCatchup': 10001}"), "$.schedules[0].maxCatchup",
                "'maxCatchup' must be between 1 and 10000, got 10001");
    expect_only(WS("{'every': '1m', 'maxCatchup': '5'}"), "$.schedules[0].maxCatchup",
                "'maxCatchup' must be an integer, got string");
}

static void test_schedule_names(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok(WS("{'name': 'a', 'every': '1m'}, {'every': '1m'}, {'name': 'b-2.x_y', "
                     "'every': '1m'}"));
    assert_string_equal(wf->schedules[0].name, "a");
    assert_string_equal(wf->schedules[1].name, "schedule-1");
    assert_string_equal(wf->schedules[2].name, "b-2.x_y");
    workflow_free(wf);

    expect_only(WS("{'name': 'Nightly', 'every': '1m'}"), "$.schedules[0].name",
                "invalid schedule name 'Nightly' (must match [a-z0-9][a-z0-9._-]{0,63})");
    expect_only(WS("{'name': '-x', 'every': '1m'}"), "$.schedules[0].name",
                "invalid schedule name '-x' (must match [a-z0-9][a-z0-9._-]{0,63})");
    expect_only(WS("{'name': "
                   "'a1234567890123456789012345678901234567890123456789012345678901234', "
                   "'every': '1m'}"),
                "$.schedules[0].name",
                "invalid schedule name "
                "'a1234567890123456789012345678901234567890123456789012345678901234' "
                "(must match [a-z0-9][a-z0-9._-]{0,63})");
    expect_only(WS("{'name': 'n', 'every': '1m'}, {'name': 'n', 'every': '2m'}"),
                "$.schedules[1].name",
                "duplicate schedule name 'n' (also the name of schedules[0])");
    /* Default names count too. */
    expect_only(WS("{'every': '1m'}, {'name': 'schedule-0', 'every': '2m'}"),
                "$.schedules[1].name",
                "duplicate schedule name 'schedule-0' (also the name of schedules[0])");
    expect_only(WS("{'name': 'schedule-1', 'every': '1m'}, {'every': '2m'}"), "$.schedules[1]",
                "duplicate schedule name 'schedule-1' (also the name of schedules[0])");
}

static void test_schedule_params(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok(WSP("{'every': '1m', 'params': {'date': 'x'}}"));
    assert_string_equal(wf->schedules[0].params_json, "{\"date\":\"x\"}");
    workflow_free(wf);

    expect_only(WSP("{'every': '1m', 'params': {'date': 'x', 'dat': 'y'}}"),
                "$.schedules[0].params.dat", "unknown param 'dat' (did you mean 'date'?)");
    expect_only(WSP("{'every': '1m', 'params': {'date': 'x', 'region': 'eu'}}"),
                "$.schedules[0].params.region",
                "unknown param 'region' (not declared in the workflow's 'params')");
    expect_only(WS("{'every': '1m', 'params': {'region': 'eu'}}"),
                "$.schedules[0].params.region",
                "unknown param 'region' (the workflow declares no params)");
    expect_only(WSP("{'every': '1m', 'params': {'date': 'x', 'limit': 'many'}}"),
                "$.schedules[0].params.limit", "param 'limit' must be a number, got string");
    expect_only(WSP("{'every': '1m', 'params': {'limit': 3}}"), "$.schedules[0].params",
                "missing required param 'date' (the workflow requires it and a schedule has no "
                "caller to give it)");
    expect_only(WSP("{'every': '1m'}"), "$.schedules[0]",
                "missing required param 'date' (the workflow requires it and a schedule has no "
                "caller to give it)");
    expect_only(WSP("{'every': '1m', 'params': ['date']}"), "$.schedules[0].params",
                "'params' must be an object, got array");
    /* A broken "params" of the workflow is reported once, not again for each schedule. */
    expect_only("{'name': 'w', 'params': [1], 'tasks': [{'name': 'a', 'type': 'noop'}],"
                " 'schedules': [{'every': '1m', 'params': {'x': 1}}]}",
                "$.params", "'params' must be an object, got array");
}

static void test_schedule_shapes(void **state)
{
    struct workflow *wf = NULL;
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct strbuf sb = STRBUF_INIT;
    int rc;
    (void)state;

    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop'}], 'schedules': {}}",
                "$.schedules", "'schedules' must be an array of schedules, got object");
    expect_only(WS("'0 2 * * *'"), "$.schedules[0]", "schedule must be an object, got string");
    /* Several problems in one schedule are all reported. */
    parse_bad(WS("{'cron': '61 * * * *', 'timezone': 'Nowhere/X', 'overlap': 'x', 'y': 1}"), &pr);
    assert_int_equal(pr.n, 4);
    dag_problems_release(&pr);

    /* More than DAG_MAX_SCHEDULES: one problem, nothing allocated per schedule. */
    strbuf_adds(&sb, "{\"name\": \"w\", \"tasks\": [{\"name\": \"a\", \"type\": \"noop\"}], "
                     "\"schedules\": [");
    for (int i = 0; i <= DAG_MAX_SCHEDULES; i++)
        strbuf_adds(&sb, i ? ", {}" : "{}");
    strbuf_adds(&sb, "]}");
    rc = dag_parse(sb.buf, sb.len, &wf, &pr);
    assert_int_equal(rc, ERR_INVALID);
    assert_null(wf);
    assert_int_equal(pr.n, 1);
    assert_string_equal(pr.items[0].path, "$.schedules");
    assert_non_null(strstr(pr.items[0].message, "more than the limit of"));
    dag_problems_release(&pr);
    strbuf_release(&sb);
}

/* ---- http and workflow tasks, fan-out, outputs ---- */

/* A workflow called 'w' with the given tasks (the array's contents). */
#define WT(tasks) "{'name': 'w', 'tasks': [" tasks "]}"

/* The message of a misplaced {{ item }} or {{ index }}, after "{{ REF }}: ". */
#define ITEMS_ONLY                                                                                 \
    "'item' and 'index' exist only in a task that fans out over a list (forEach), not in its "     \
    "forEach, when or the workflow's outputs"

#define NO_OUTPUT                                                                                  \
    "has no output (command, http and workflow tasks have one, and tasks with forEach)"

static void test_http_valid(void **state)
{
    struct workflow *wf;
    const struct dag_http *h;
    (void)state;

    wf = parse_ok("{'name': 'w', 'params': {'host': 'example.com', 'user': 'bob'}, 'tasks': ["
                  " {'name': 'call', 'type': 'http', 'method': 'post',"
                  "  'url': 'https://api.example.com/{{ params.host }}?id={{ execution.id }}',"
                  "  'headers': {'X-B': 'two', 'Accept': 'application/json',"
                  "   'X-A': '{{ scheduledFor }}'},"
                  "  'body': {'k': [1, 'v', {'p': '{{ params.user }}'}], 'n': null, 'b': true},"
                  "  'expectStatus': [200, '4xx', '201', '5XX'], 'followRedirects': false,"
                  "  'auth': {'username': '{{ params.user }}', 'passwordEnv': 'BOB_PW'}},"
                  " {'name': 'get', 'type': 'http', 'url': 'http://x'}]}");
    check_invariants(wf);
    assert_string_equal(dag_task_type_name(TASK_HTTP), "http");
    assert_int_equal(wf->tasks[0].type, TASK_HTTP);
    h = &wf->tasks[0].http;
    assert_string_equal(h->method, "POST"); /* upper-cased */
    assert_string_equal(h->url, "https://api.example.com/{{ params.host }}?id={{ execution.id }}");
    /* Headers in the order written, names as written. */
    assert_int_equal(h->nheaders, 3);
    assert_string_equal(h->headers[0].key, "X-B");
    assert_string_equal(h->headers[0].value, "two");
    assert_string_equal(h->headers[1].key, "Accept");
    assert_string_equal(h->headers[1].value, "application/json");
    assert_string_equal(h->headers[2].key, "X-A");
    assert_string_equal(h->headers[2].value, "{{ scheduledFor }}");
    /* A JSON body is kept as compact text, in the order written. */
    assert_null(h->body);
    assert_string_equal(h->body_json,
                        "{\"k\":[1,\"v\",{\"p\":\"{{ params.user }}\"}],\"n\":null,\"b\":true}");
    assert_int_equal(h->nexpect, 4);
    assert_int_equal(h->expect[0].lo, 200);
    assert_int_equal(h->expect[0].hi, 200);
    assert_int_equal(h->expect[1].lo, 400);
    assert_int_equal(h->expect[1].hi, 499);
    assert_int_equal(h->expect[2].lo, 201); /* a status as a string */
    assert_int_equal(h->expect[2].hi, 201);
    assert_int_equal(h->expect[3].lo, 500); /* the class in upper case */
    assert_int_equal(h->expect[3].hi, 599);
    assert_int_equal(h->follow_redirects, 0);
    assert_int_equal(h->idempotent, 0); /* POST */
    assert_string_equal(h->username, "{{ params.user }}");
    assert_null(h->username_env);
    assert_string_equal(h->password_env, "BOB_PW");
    assert_null(h->bearer_env);
    assert_null(wf->tasks[0].argv);
    assert_null(wf->tasks[0].shell);
    assert_null(wf->tasks[0].for_each);
    assert_null(wf->tasks[0].for_each_json);
    assert_int_equal(wf->tasks[0].max_parallel, 0);

    /* Defaults. */
    h = &wf->tasks[1].http;
    assert_string_equal(h->method, "GET");
    assert_string_equal(h->url, "http://x");
    assert_int_equal(h->nheaders, 0);
    assert_null(h->body);
    assert_null(h->body_json);
    assert_int_equal(h->nexpect, 1);
    assert_int_equal(h->expect[0].lo, 200);
    assert_int_equal(h->expect[0].hi, 299);
    assert_int_equal(h->follow_redirects, 1);
    assert_int_equal(h->idempotent, 1);
    assert_null(h->username);
    assert_null(h->username_env);
    assert_null(h->password_env);
    assert_null(h->bearer_env);
    workflow_free(wf);
}

static void test_http_fields(void **state)
{
    struct workflow *wf;
    (void)state;

    /* idempotent: by method unless given. */
    wf = parse_ok(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'method': 'put'},"
                     "{'name': 'b', 'type': 'http', 'url': 'http://x', 'method': 'DELETE'},"
                     "{'name': 'c', 'type': 'http', 'url': 'http://x', 'method': 'Get'},"
                     "{'name': 'd', 'type': 'http', 'url': 'http://x', 'method': 'head'},"
                     "{'name': 'e', 'type': 'http', 'url': 'http://x', 'method': 'OPTIONS'},"
                     "{'name': 'f', 'type': 'http', 'url': 'http://x', 'method': 'patch'},"
                     "{'name': 'g', 'type': 'http', 'url': 'http://x', 'method': 'POST'},"
                     "{'name': 'h', 'type': 'http', 'url': 'http://x', 'method': 'post',"
                     " 'idempotent': true},"
                     "{'name': 'i', 'type': 'http', 'url': 'http://x', 'idempotent': false}"));
    assert_string_equal(wf->tasks[0].http.method, "PUT");
    assert_int_equal(wf->tasks[0].http.idempotent, 1);
    assert_string_equal(wf->tasks[1].http.method, "DELETE");
    assert_int_equal(wf->tasks[1].http.idempotent, 1);
    assert_string_equal(wf->tasks[2].http.method, "GET");
    assert_int_equal(wf->tasks[2].http.idempotent, 1);
    assert_string_equal(wf->tasks[3].http.method, "HEAD");
    assert_int_equal(wf->tasks[3].http.idempotent, 1);
    assert_int_equal(wf->tasks[4].http.idempotent, 1);
    assert_string_equal(wf->tasks[5].http.method, "PATCH");
    assert_int_equal(wf->tasks[5].http.idempotent, 0);
    assert_int_equal(wf->tasks[6].http.idempotent, 0);
    assert_int_equal(wf->tasks[7].http.idempotent, 1); /* explicit, on POST */
    assert_string_equal(wf->tasks[8].http.method, "GET");
    assert_int_equal(wf->tasks[8].http.idempotent, 0); /* explicit, on GET */
    workflow_free(wf);

    /* Bodies: a string is kept as is, an array as compact JSON. */
    wf = parse_ok(
        "{'name': 'w', 'params': {'p': 'v'}, 'tasks': ["
        "{'name': 'a', 'type': 'http', 'url': 'HTTPS://x', 'body': 'a={{ params.p }}&b=1'},"
        "{'name': 'b', 'type': 'http', 'url': 'http://x', 'body': [ 'x', 2, [] ]},"
        "{'name': 'c', 'type': 'http', 'url': 'http://x', 'body': ''},"
        "{'name': 'd', 'type': 'http', 'url': 'http://x', 'body': {}}]}");
    assert_string_equal(wf->tasks[0].http.url, "HTTPS://x");
    assert_string_equal(wf->tasks[0].http.body, "a={{ params.p }}&b=1");
    assert_null(wf->tasks[0].http.body_json);
    assert_null(wf->tasks[1].http.body);
    assert_string_equal(wf->tasks[1].http.body_json, "[\"x\",2,[]]");
    assert_string_equal(wf->tasks[2].http.body, "");
    assert_null(wf->tasks[2].http.body_json);
    assert_string_equal(wf->tasks[3].http.body_json, "{}");
    workflow_free(wf);

    /* expectStatus: one status, one class, a list with one entry. */
    wf = parse_ok(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'expectStatus': 404},"
                     "{'name': 'b', 'type': 'http', 'url': 'http://x', 'expectStatus': '4xx'},"
                     "{'name': 'c', 'type': 'http', 'url': 'http://x', 'expectStatus': ['1xx']},"
                     "{'name': 'd', 'type': 'http', 'url': 'http://x', 'expectStatus': 599}"));
    assert_int_equal(wf->tasks[0].http.nexpect, 1);
    assert_int_equal(wf->tasks[0].http.expect[0].lo, 404);
    assert_int_equal(wf->tasks[0].http.expect[0].hi, 404);
    assert_int_equal(wf->tasks[1].http.nexpect, 1);
    assert_int_equal(wf->tasks[1].http.expect[0].lo, 400);
    assert_int_equal(wf->tasks[1].http.expect[0].hi, 499);
    assert_int_equal(wf->tasks[2].http.nexpect, 1);
    assert_int_equal(wf->tasks[2].http.expect[0].lo, 100);
    assert_int_equal(wf->tasks[2].http.expect[0].hi, 199);
    assert_int_equal(wf->tasks[3].http.expect[0].lo, 599);
    workflow_free(wf);

    /* auth: basic with the user from a variable; bearer; empty (none). */
    wf = parse_ok(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                     " 'auth': {'usernameEnv': 'API_USER', 'passwordEnv': '_pw2'}},"
                     "{'name': 'b', 'type': 'http', 'url': 'http://x',"
                     " 'auth': {'bearerEnv': 'TOKEN'}},"
                     "{'name': 'c', 'type': 'http', 'url': 'http://x', 'auth': {}}"));
    assert_null(wf->tasks[0].http.username);
    assert_string_equal(wf->tasks[0].http.username_env, "API_USER");
    assert_string_equal(wf->tasks[0].http.password_env, "_pw2");
    assert_null(wf->tasks[0].http.bearer_env);
    assert_null(wf->tasks[1].http.username);
    assert_null(wf->tasks[1].http.username_env);
    assert_null(wf->tasks[1].http.password_env);
    assert_string_equal(wf->tasks[1].http.bearer_env, "TOKEN");
    assert_null(wf->tasks[2].http.username);
    assert_null(wf->tasks[2].http.password_env);
    assert_null(wf->tasks[2].http.bearer_env);
    workflow_free(wf);

    /* A url may start with a placeholder. */
    wf = parse_ok("{'name': 'w', 'params': {'base': 'http://x'}, 'tasks': ["
                  "{'name': 'a', 'type': 'http', 'url': '{{ params.base }}/ping'}]}");
    assert_string_equal(wf->tasks[0].http.url, "{{ params.base }}/ping");
    workflow_free(wf);
}

/* Placeholders where a shell would run their value as code are refused. */
static void test_shell_injection(void **state)
{
    struct workflow *wf;
    (void)state;
#define PX "{'name': 'w', 'params': {'x': 'a'}, 'tasks': [{'name': 'a', 'command': "
    /* Inside double quotes $(...) in the value would run. */
    expect_problem(PX "'echo \\'{{ params.x }}\\''}]}", "$.tasks[0].command",
                   "{{ params.x }} is inside double quotes, where the shell still runs $(...) "
                   "and backquotes in its value; write the placeholder unquoted");
    expect_problem(PX "'echo \\'{{ params.x }}\\''}]}", "$.tasks[0].command",
                   "\"env\": {\"X\": \"{{ params.x }}\"} and echo \"$X\"");
    expect_problem(PX "'echo \\'a $(ls) b{{params.x}}\\''}]}", "$.tasks[0].command",
                   "{{params.x}} is inside double quotes");
    /* Inside the author's single quotes, which end orch's own. */
    expect_problem(PX "'echo \\u0027{{ params.x }}\\u0027'}]}", "$.tasks[0].command",
                   "{{ params.x }} is inside single quotes, which end orch's own quoting");
    expect_problem(PX "'sh -c \\u0027echo {{ params.x }}\\u0027'}]}", "$.tasks[0].command",
                   "{{ params.x }} is inside single quotes");
    /* A here-document with an unquoted delimiter expands its body. */
    expect_problem(PX "'cat <<EOF\\n{{ params.x }}\\nEOF'}]}", "$.tasks[0].command",
                   "{{ params.x }} is in a here-document");
    /* eval and the script of sh -c run the value as code. */
    expect_problem(PX "'eval {{ params.x }}'}]}", "$.tasks[0].command",
                   "{{ params.x }} is run as shell code by 'eval'");
    expect_problem(PX "'true; bash -ec {{ params.x }} n'}]}", "$.tasks[0].command",
                   "{{ params.x }} is in the script of 'sh -c', which runs it as shell code; "
                   "pass the value as an argument after the script and use \"$1\" there: "
                   "[\"sh\", \"-c\", \"echo \\\"$1\\\"\", \"sh\", \"{{ params.x }}\"]");
    expect_problem(PX "'env A=1 nice -n 5 sh -o pipefail -c {{ params.x }}'}]}",
                   "$.tasks[0].command", "{{ params.x }} is in the script of 'sh -c'");
    /* argv running sh -c: the script is code that nothing quotes. */
    expect_only(PX "['sh', '-c', 'echo {{ params.x }}']}]}", "$.tasks[0].command[2]",
                "{{ params.x }} is in the script of 'sh -c', which runs it as shell code; "
                "pass the value as an argument after the script and use \"$1\" there: "
                "[\"sh\", \"-c\", \"echo \\\"$1\\\"\", \"sh\", \"{{ params.x }}\"], or through "
                "env: \"env\": {\"X\": \"{{ params.x }}\"} and \"$X\" in the script");
    expect_problem(PX "['/usr/bin/env', 'A=1', '/bin/bash', '-e', '-o', 'pipefail', '-c',"
                   " 'touch {{ params.x }}', 'n']}]}",
                   "$.tasks[0].command[7]", "is in the script of 'sh -c'");
    expect_problem(PX "['dash', '-xc', '{{ params.x }}']}]}", "$.tasks[0].command[2]",
                   "is in the script of 'sh -c'");
#undef PX
    /* The safe forms pass. */
    wf = parse_ok("{'name': 'w', 'params': {'x': 'a'}, 'tasks': ["
                  "{'name': 'a', 'command': 'echo {{ params.x }} \\'$HOME\\' \\u0027q\\u0027 "
                  "$(cat {{ params.x }}) `ls {{ params.x }}` \\'$(ls {{ params.x }})\\''},"
                  "{'name': 'b', 'command': ['sh', '-c', 'echo \\'$1\\'', 'sh', '{{ params.x }}']},"
                  "{'name': 'c', 'command': 'sh -c \\u0027echo \\'$1\\'\\u0027 sh {{ params.x }}'},"
                  "{'name': 'd', 'command': 'cat <<\\u0027EOF\\u0027\\n{{ params.x }}\\nEOF\\n"
                  "echo {{ params.x }} # \\'{{ params.x }}\\''},"
                  "{'name': 'e', 'command': ['grep', '-c', '{{ params.x }}']},"
                  "{'name': 'f', 'command': 'echo \\'$X\\'', 'env': {'X': '{{ params.x }}'}},"
                  "{'name': 'g', 'command': 'bash run.sh -c {{ params.x }}; echo sh -c "
                  "{{ params.x }}; cat <<< {{ params.x }}; grep eval {{ params.x }}'}]}");
    workflow_free(wf);
}

/* Credentials are never written in a definition; stored ones are redacted when shown. */
static void test_credentials(void **state)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf;
    json_t *def;
    char *dump;
    (void)state;
    /* Every literal credential is named at once, each at its path. */
    parse_bad("{'name': 'w', 'params': {'tok': 'dflt', 'free': {'type': 'string'}}, 'tasks': ["
              "{'name': 'a', 'type': 'http', 'url': 'http://u:hunter2@h/x?a=1&token=abc&api_key=k',"
              " 'headers': {'Authorization': 'Bearer abc', 'X-Api-Key': 'k1', 'Cookie': 's=1',"
              "  'X-Auth-Token': 'Bearer abc{{ params.free }}', 'Proxy-Authorization': "
              "  '{{ \\u0027lit\\u0027 }}', 'X-Session': '{{ params.tok }}'}}]}", &pr);
    if (pr.n != 9)
        dump_problems(&pr);
    assert_int_equal(pr.n, 9);
    assert_true(find_problem(&pr, "$.tasks[0].headers.Authorization",
                             "header 'Authorization' carries a credential, which must not be "
                             "written in a definition (every read key can see it): use 'auth' "
                             "with the name of an environment variable (\"bearerEnv\", basic "
                             "with \"passwordEnv\", or \"header\"/\"query\" with \"valueEnv\"), "
                             "or a placeholder filled in at run time (\"Bearer {{ "
                             "tasks.login.output.token }}\")") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].headers[\"X-Api-Key\"]", "carries a credential") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].headers.Cookie", "carries a credential") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].headers[\"X-Auth-Token\"]", "carries a credential") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].headers[\"Proxy-Authorization\"]",
                             "carries a credential") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].headers[\"X-Session\"]",
                             "{{ params.tok }} in a credential header names a param with a "
                             "default, which is written in the definition") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].url",
                             "the url holds credentials (user-info before '@'), which must not "
                             "be written in a definition (every read key can see it): use "
                             "'auth' ({\"usernameEnv\": \"USER\", \"passwordEnv\": "
                             "\"PASSWORD\"})") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].url", "query parameter 'token' looks like a "
                             "credential") >= 0);
    assert_true(find_problem(&pr, "$.tasks[0].url", "query parameter 'api_key' looks like a "
                             "credential") >= 0);
    dag_problems_release(&pr);
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://h/x?sig=abc'}"),
                "$.tasks[0].url",
                "query parameter 'sig' looks like a credential, which must not be written in a "
                "definition (every read key can see it): use 'auth' with the name of an "
                "environment variable (\"bearerEnv\", basic with \"passwordEnv\", or "
                "\"header\"/\"query\" with \"valueEnv\"), or a placeholder filled in at run "
                "time (sig={{ params.name }}, a param given when the execution starts)");
    /* auth with a header or a query parameter. */
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'auth': {'header': 'X-K'}}"),
                "$.tasks[0].auth", "'auth' with 'header' needs 'valueEnv' (the variable "
                "holding its value; a credential is never written in a definition)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'valueEnv': 'K', 'bearerEnv': 'T'}}"),
                "$.tasks[0].auth", "'auth' is one of basic ('username' or 'usernameEnv', and "
                "'passwordEnv'), bearer ('bearerEnv'), a header ('header' and 'valueEnv') or a "
                "query parameter ('query' and 'valueEnv')");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'auth': {'valueEnv': 'K'}}"),
                "$.tasks[0].auth", "'valueEnv' goes with 'header' or 'query' (where the value "
                "is sent)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'followRedirects': true,"
                   " 'auth': {'header': 'X-K', 'valueEnv': 'K'}}"),
                "$.tasks[0].followRedirects", "a task with 'auth.header' does not follow "
                "redirects (its header would go to wherever a redirect points)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'header': 'X K', 'valueEnv': 'K'}}"),
                "$.tasks[0].auth.header", "invalid header name 'X K'");
    /* What is allowed: placeholders filled in at run time, auth from the environment,
     * names that carry no credential. */
    wf = parse_ok("{'name': 'w', 'params': {'t': {'type': 'string'}, 'day': 'x'}, 'tasks': ["
                  "{'name': 'login', 'command': ['true']},"
                  "{'name': 'a', 'type': 'http', 'dependsOn': ['login'],"
                  " 'url': 'http://h/x?key=g&day={{ params.day }}&token={{ params.t }}#f',"
                  " 'headers': {'Authorization': 'Bearer {{ tasks.login.output.token }}',"
                  "  'X-Api-Key': '{{ params.t }}', 'X-Run': 'r1', 'Accept': 'a/b'}},"
                  "{'name': 'b', 'type': 'http', 'url': 'http://h/', 'auth': {'header': "
                  "'X-Api-Key', 'valueEnv': 'API_KEY'}},"
                  "{'name': 'c', 'type': 'http', 'url': '{{ params.t }}?a=b', 'auth': {'query': "
                  "'api_key', 'valueEnv': 'API_KEY'}}]}");
    assert_string_equal(wf->tasks[2].http.auth_header, "X-Api-Key");
    assert_string_equal(wf->tasks[2].http.value_env, "API_KEY");
    assert_int_equal(wf->tasks[2].http.follow_redirects, 0);
    assert_string_equal(wf->tasks[3].http.auth_query, "api_key");
    assert_int_equal(wf->tasks[3].http.follow_redirects, 1);
    workflow_free(wf);
    assert_true(dag_header_is_credential("authorization"));
    assert_true(dag_header_is_credential("X-Amz-Security-Token"));
    assert_false(dag_header_is_credential("Content-Type"));
    assert_true(dag_query_key_is_secret("access_key", 10));
    assert_true(dag_query_key_is_secret("X-Amz-Signature", 15));
    assert_false(dag_query_key_is_secret("key", 3));
    assert_false(dag_query_key_is_secret("monkey", 6));

    /* A definition stored before: its literal credentials are redacted. */
    def = json_loads("{\"name\": \"w\", \"tasks\": [{\"name\": \"a\", \"type\": \"http\", "
                     "\"url\": \"http://u:p@h/x?a=1&token=abc&t={{ params.t }}&access_token=zz#f\", "
                     "\"headers\": {\"Authorization\": \"Bearer abc\", \"X-Run\": \"r\", "
                     "\"X-Api-Key\": \"{{ params.t }}\"}}, {\"name\": \"b\", \"command\": "
                     "\"curl -H 'Authorization: x'\", \"headers\": {\"Cookie\": \"c\"}}]}",
                     0, NULL);
    assert_non_null(def);
    assert_int_equal(dag_redact_definition(def), 4);
    dump = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(dump,
                        "{\"name\":\"w\",\"tasks\":[{\"headers\":{\"Authorization\":\"[redacted]\","
                        "\"X-Api-Key\":\"{{ params.t }}\",\"X-Run\":\"r\"},\"name\":\"a\","
                        "\"type\":\"http\",\"url\":\"http://[redacted]@h/x?a=1&token=[redacted]"
                        "&t={{ params.t }}&access_token=[redacted]#f\"},{\"command\":\"curl -H "
                        "'Authorization: x'\",\"headers\":{\"Cookie\":\"c\"},\"name\":\"b\"}]}");
    free(dump);
    json_decref(def);
}

static void test_http_errors(void **state)
{
    (void)state;
    /* url */
    expect_only(WT("{'name': 'a', 'type': 'http'}"), "$.tasks[0]",
                "missing 'url' (required for type 'http')");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'ftp://x/f'}"), "$.tasks[0].url",
                "'url' must start with http:// or https://, got 'ftp://x/f'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'example.com'}"), "$.tasks[0].url",
                "'url' must start with http:// or https://, got 'example.com'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': ''}"), "$.tasks[0].url",
                "'url' must not be empty");
    /* A placeholder in the host (also its port or user) could send the credentials elsewhere. */
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://{{ execution.id }}.x/v1'}"),
                "$.tasks[0].url",
                "a placeholder in the host of 'url' could send the request (and its "
                "credentials) elsewhere: put it in the path or the query, or make the whole "
                "url one placeholder");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'https://x:{{ execution.id }}'}"),
                "$.tasks[0].url",
                "a placeholder in the host of 'url' could send the request (and its "
                "credentials) elsewhere: put it in the path or the query, or make the whole "
                "url one placeholder");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': ['http://x']}"), "$.tasks[0].url",
                "'url' must be a string, got array");
    /* method */
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'method': 'GE T'}"),
                "$.tasks[0].method", "invalid method 'GE T' (an HTTP method such as GET or POST)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'method': ''}"),
                "$.tasks[0].method", "invalid method '' (an HTTP method such as GET or POST)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'method': 'GET\\r\\n'}"),
                "$.tasks[0].method",
                "invalid method 'GET\\r\\n' (an HTTP method such as GET or POST)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'method': 1}"),
                "$.tasks[0].method", "'method' must be a string, got integer");
    /* headers */
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'headers': {'Accept': 'x', 'Bad Name': 'v'}}"),
                "$.tasks[0].headers[\"Bad Name\"]", "invalid header name 'Bad Name'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'headers': {'X:Y': 'v'}}"),
                "$.tasks[0].headers[\"X:Y\"]", "invalid header name 'X:Y'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'headers': {'': 'v'}}"),
                "$.tasks[0].headers[\"\"]", "invalid header name ''");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'headers': {'X-A': 'a\\nInjected: 1'}}"),
                "$.tasks[0].headers[\"X-A\"]", "a header value must not contain a line break");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'headers': {'X-A': 'a\\r'}}"),
                "$.tasks[0].headers[\"X-A\"]", "a header value must not contain a line break");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'headers': {'Accept': 1}}"),
                "$.tasks[0].headers.Accept", "'Accept' must be a string, got integer");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'headers': ['Accept']}"),
                "$.tasks[0].headers", "'headers' must be an object of strings, got array");
    /* expectStatus */
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'expectStatus': '9xx'}"),
                "$.tasks[0].expectStatus",
                "invalid status '9xx' (a status from 100 to 599, or a class from \"1xx\" to "
                "\"5xx\")");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'expectStatus': [200, 'abc']}"),
                "$.tasks[0].expectStatus[1]",
                "invalid status 'abc' (a status from 100 to 599, or a class from \"1xx\" to "
                "\"5xx\")");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'expectStatus': '600'}"),
                "$.tasks[0].expectStatus",
                "invalid status '600' (a status from 100 to 599, or a class from \"1xx\" to "
                "\"5xx\")");
    expect_problem(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'expectStatus': 99}"),
                   "$.tasks[0].expectStatus", "(a status from 100 to 599, or a class from");
    expect_problem(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                      " 'expectStatus': ['2xx', 600]}"),
                   "$.tasks[0].expectStatus[1]", "(a status from 100 to 599, or a class from");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'expectStatus': []}"),
                "$.tasks[0].expectStatus", "'expectStatus' must not be empty");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'expectStatus': true}"),
                "$.tasks[0].expectStatus",
                "'expectStatus' must be a status (200), a class (\"2xx\") or a list of them, "
                "got boolean");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'expectStatus': [200, [201]]}"),
                "$.tasks[0].expectStatus[1]",
                "'expectStatus[1]' must be a status (200), a class (\"2xx\") or a list of them, "
                "got array");
    /* auth */
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'auth': {'username': 'u'}}"),
                "$.tasks[0].auth",
                "basic 'auth' needs 'passwordEnv' (the variable holding the password; a "
                "password is never written in a definition)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'usernameEnv': 'U'}}"),
                "$.tasks[0].auth",
                "basic 'auth' needs 'passwordEnv' (the variable holding the password; a "
                "password is never written in a definition)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'passwordEnv': 'P'}}"),
                "$.tasks[0].auth", "basic 'auth' needs 'username' or 'usernameEnv'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'username': 'u', 'usernameEnv': 'U', 'passwordEnv': 'P'}}"),
                "$.tasks[0].auth", "give 'username' or 'usernameEnv', not both");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'bearerEnv': 'T', 'username': 'u', 'passwordEnv': 'P'}}"),
                "$.tasks[0].auth",
                "'auth' is either basic ('username' or 'usernameEnv', and 'passwordEnv') or "
                "bearer ('bearerEnv'), not both");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'bearerEnv': 'T', 'passwordEnv': 'P'}}"),
                "$.tasks[0].auth",
                "'auth' is either basic ('username' or 'usernameEnv', and 'passwordEnv') or "
                "bearer ('bearerEnv'), not both");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'bearerEnv': '1TOKEN'}}"),
                "$.tasks[0].auth.bearerEnv",
                "'bearerEnv' must name an environment variable ([A-Za-z_][A-Za-z0-9_]*), got "
                "'1TOKEN'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'username': 'u', 'passwordEnv': 'MY-PW'}}"),
                "$.tasks[0].auth.passwordEnv",
                "'passwordEnv' must name an environment variable ([A-Za-z_][A-Za-z0-9_]*), got "
                "'MY-PW'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'usernameEnv': 'A B', 'passwordEnv': 'P'}}"),
                "$.tasks[0].auth.usernameEnv",
                "'usernameEnv' must name an environment variable ([A-Za-z_][A-Za-z0-9_]*), got "
                "'A B'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'bearerEnv': ''}}"),
                "$.tasks[0].auth.bearerEnv", "'bearerEnv' must not be empty");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'bearerEnv': 'T', 'token': 'x'}}"),
                "$.tasks[0].auth.token", "unknown field 'token'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'bearerenv': 'T'}}"),
                "$.tasks[0].auth.bearerenv",
                "unknown field 'bearerenv' (did you mean 'bearerEnv'?)");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'auth': 'bearer'}"),
                "$.tasks[0].auth", "'auth' must be an object, got string");
    /* other fields */
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'body': 5}"),
                "$.tasks[0].body",
                "'body' must be a string or a JSON object or array, got integer");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'followRedirects': 'no'}"),
                "$.tasks[0].followRedirects", "'followRedirects' must be a boolean, got string");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'idempotent': 1}"),
                "$.tasks[0].idempotent", "'idempotent' must be a boolean, got integer");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'idempotant': true}"),
                "$.tasks[0].idempotant", "unknown field 'idempotant' (did you mean 'idempotent'?)");
}

/* Fields of one task type are refused on the others. */
static void test_fields_of_other_types(void **state)
{
    (void)state;
    expect_only(WT("{'name': 'a', 'command': 'ls', 'url': 'http://x'}"), "$.tasks[0].url",
                "'url' is not allowed for type 'command'");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'method': 'GET'}"), "$.tasks[0].method",
                "'method' is not allowed for type 'noop'");
    expect_only(WT("{'name': 'a', 'type': 'sleep', 'duration': 1, 'headers': {}}"),
                "$.tasks[0].headers", "'headers' is not allowed for type 'sleep'");
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 'child', 'body': 'x'}"),
                "$.tasks[0].body", "'body' is not allowed for type 'workflow'");
    expect_only(WT("{'name': 'a', 'command': 'ls', 'expectStatus': 200}"),
                "$.tasks[0].expectStatus", "'expectStatus' is not allowed for type 'command'");
    expect_only(WT("{'name': 'a', 'command': 'ls', 'followRedirects': true}"),
                "$.tasks[0].followRedirects",
                "'followRedirects' is not allowed for type 'command'");
    expect_only(WT("{'name': 'a', 'command': 'ls', 'auth': {}}"), "$.tasks[0].auth",
                "'auth' is not allowed for type 'command'");
    expect_only(WT("{'name': 'a', 'command': 'ls', 'idempotent': true}"), "$.tasks[0].idempotent",
                "'idempotent' is not allowed for type 'command'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'workflow': 'child'}"),
                "$.tasks[0].workflow", "'workflow' is not allowed for type 'http'");
    expect_only(WT("{'name': 'a', 'command': 'ls', 'params': {}}"), "$.tasks[0].params",
                "'params' is not allowed for type 'command'");
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'command': 'ls'}"),
                "$.tasks[0].command", "'command' is not allowed for type 'http'");
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 'child', 'duration': 1}"),
                "$.tasks[0].duration", "'duration' is not allowed for type 'workflow'");
}

static void test_subflow(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok("{'name': 'parent', 'params': {'d': 'today'}, 'tasks': ["
                  " {'name': 'child', 'type': 'workflow', 'workflow': 'etl.daily-v2',"
                  "  'params': {'date': '{{ params.d }}', 'n': 3, 'o': {'l': ['{{ params.d }}']}}},"
                  " {'name': 'bare', 'type': 'workflow', 'workflow': 'other'}]}");
    check_invariants(wf);
    assert_string_equal(dag_task_type_name(TASK_WORKFLOW), "workflow");
    assert_int_equal(wf->tasks[0].type, TASK_WORKFLOW);
    assert_string_equal(wf->tasks[0].subflow.workflow, "etl.daily-v2");
    assert_string_equal(wf->tasks[0].subflow.params_json,
                        "{\"date\":\"{{ params.d }}\",\"n\":3,\"o\":{\"l\":[\"{{ params.d }}\"]}}");
    assert_string_equal(wf->tasks[1].subflow.workflow, "other");
    assert_null(wf->tasks[1].subflow.params_json);
    workflow_free(wf);

    expect_only(WT("{'name': 'a', 'type': 'workflow'}"), "$.tasks[0]",
                "missing 'workflow' (required for type 'workflow')");
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 'Child Flow'}"),
                "$.tasks[0].workflow", "invalid workflow name 'Child Flow'");
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': ''}"), "$.tasks[0].workflow",
                "invalid workflow name ''");
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 7}"), "$.tasks[0].workflow",
                "'workflow' must be a string, got integer");
    expect_only(WT("{'name': 'a', 'type': 'noop'}, {'name': 'b', 'type': 'workflow',"
                   " 'workflow': 'w'}"),
                "$.tasks[1].workflow", "workflow 'w' cannot run itself (recursion)");
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 'child', 'params': ['x']}"),
                "$.tasks[0].params", "'params' must be an object, got array");
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 'child', 'params': 'x=1'}"),
                "$.tasks[0].params", "'params' must be an object, got string");
    /* Placeholders in params are checked, nested ones too, at their own path. */
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 'child',"
                   " 'params': {'date': '{{ params.d }}'}}"),
                "$.tasks[0].params.date", "{{ params.d }}: the workflow declares no param 'd'");
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 'child',"
                   " 'params': {'o': {'list': [1, '{{ tasks.zz.output }}']}}}"),
                "$.tasks[0].params.o.list[1]", "{{ tasks.zz.output }}: there is no task 'zz'");
}

static void test_for_each(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok(WT("{'name': 'lit', 'command': ['echo', '{{ item }}'],"
                     " 'forEach': [1, 'a', {'k': true}, null], 'maxParallel': 4},"
                     "{'name': 'list', 'command': 'ls'},"
                     "{'name': 'each', 'dependsOn': ['list'], 'command': ['echo', '{{ item }}'],"
                     " 'forEach': '{{ tasks.list.output.files }}'},"
                     "{'name': 'spaced', 'dependsOn': ['list'], 'type': 'noop',"
                     " 'forEach': '{{tasks.list.output}}', 'maxParallel': 100000}"));
    check_invariants(wf);
    assert_string_equal(wf->tasks[0].for_each_json, "[1,\"a\",{\"k\":true},null]");
    assert_null(wf->tasks[0].for_each);
    assert_int_equal(wf->tasks[0].max_parallel, 4);
    assert_null(wf->tasks[1].for_each);
    assert_null(wf->tasks[1].for_each_json);
    assert_int_equal(wf->tasks[1].max_parallel, 0);
    assert_string_equal(wf->tasks[2].for_each, "{{ tasks.list.output.files }}");
    assert_null(wf->tasks[2].for_each_json);
    assert_int_equal(wf->tasks[2].max_parallel, 0);
    assert_string_equal(wf->tasks[3].for_each, "{{tasks.list.output}}");
    assert_int_equal(wf->tasks[3].max_parallel, 100000);
    workflow_free(wf);

    /* A param can name the list too. */
    wf = parse_ok("{'name': 'w', 'params': {'o': {'files': 'x'}}, 'tasks': ["
                  "{'name': 'a', 'type': 'noop', 'forEach': '{{ params.o.files }}'}]}");
    assert_string_equal(wf->tasks[0].for_each, "{{ params.o.files }}");
    workflow_free(wf);

    /* Text around the placeholder, two placeholders, none. */
    expect_only(WT("{'name': 'list', 'command': 'ls'}, {'name': 'each', 'type': 'noop',"
                   " 'dependsOn': ['list'], 'forEach': 'files: {{ tasks.list.output }}'}"),
                "$.tasks[1].forEach",
                "'forEach' must be a list, or one placeholder that names a list "
                "(\"{{ tasks.list.output.files }}\"), got 'files: {{ tasks.list.output }}'");
    expect_only(WT("{'name': 'list', 'command': 'ls'}, {'name': 'each', 'type': 'noop',"
                   " 'dependsOn': ['list'], 'forEach': '{{ tasks.list.output }} '}"),
                "$.tasks[1].forEach",
                "'forEach' must be a list, or one placeholder that names a list "
                "(\"{{ tasks.list.output.files }}\"), got '{{ tasks.list.output }} '");
    expect_only(WT("{'name': 'list', 'command': 'ls'}, {'name': 'each', 'type': 'noop',"
                   " 'dependsOn': ['list'],"
                   " 'forEach': '{{ tasks.list.output.a }}{{ tasks.list.output.b }}'}"),
                "$.tasks[1].forEach",
                "'forEach' must be a list, or one placeholder that names a list "
                "(\"{{ tasks.list.output.files }}\"), got "
                "'{{ tasks.list.output.a }}{{ tasks.list.output.b }}'");
    expect_only(WT("{'name': 'each', 'type': 'noop', 'forEach': 'a,b,c'}"), "$.tasks[0].forEach",
                "'forEach' must be a list, or one placeholder that names a list "
                "(\"{{ tasks.list.output.files }}\"), got 'a,b,c'");
    /* The placeholder itself is checked. */
    expect_only(WT("{'name': 'list', 'command': 'ls'},"
                   " {'name': 'each', 'type': 'noop', 'forEach': '{{ tasks.list.output }}'}"),
                "$.tasks[1].forEach",
                "{{ tasks.list.output }}: task 'list' is not upstream of 'each' (add it to "
                "dependsOn, directly or through another task)");
    expect_problem(WT("{'name': 'each', 'type': 'noop', 'forEach': '{{ tasks.list.output '}"),
                   "$.tasks[0].forEach", "unclosed '{{' at column 1");
    /* Wrong JSON types. */
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': 3}"), "$.tasks[0].forEach",
                "'forEach' must be a list, or a placeholder naming one "
                "(\"{{ tasks.list.output.files }}\"), got integer");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': {'a': 1}}"), "$.tasks[0].forEach",
                "'forEach' must be a list, or a placeholder naming one "
                "(\"{{ tasks.list.output.files }}\"), got object");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': null}"), "$.tasks[0].forEach",
                "'forEach' must be a list, or a placeholder naming one "
                "(\"{{ tasks.list.output.files }}\"), got null");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': ''}"), "$.tasks[0].forEach",
                "'forEach' must not be empty");
    /* maxParallel */
    expect_only(WT("{'name': 'a', 'type': 'noop', 'maxParallel': 2}"), "$.tasks[0].maxParallel",
                "'maxParallel' needs 'forEach'");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': [1], 'maxParallel': 0}"),
                "$.tasks[0].maxParallel", "'maxParallel' must be between 1 and 100000, got 0");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': [1], 'maxParallel': 100001}"),
                "$.tasks[0].maxParallel", "'maxParallel' must be between 1 and 100000, got 100001");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': [1], 'maxParallel': -1}"),
                "$.tasks[0].maxParallel", "'maxParallel' must be between 1 and 100000, got -1");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': [1], 'maxParallel': '2'}"),
                "$.tasks[0].maxParallel", "'maxParallel' must be an integer, got string");
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': [1], 'maxparallel': 2}"),
                "$.tasks[0].maxparallel",
                "unknown field 'maxparallel' (did you mean 'maxParallel'?)");
}

static void test_item_and_index(void **state)
{
    struct workflow *wf;
    (void)state;

    /* Accepted in every templated field of a task that fans out. */
    wf = parse_ok(WT("{'name': 'cmd', 'forEach': [1, 2], 'command': ['echo', '{{ item }}',"
                     " 'n={{ index }}'], 'env': {'ITEM': '{{ item.name }}'}},"
                     "{'name': 'sh', 'forEach': [{'a': [1]}], 'command': 'echo {{ item.a[0] }}'},"
                     "{'name': 'web', 'type': 'http', 'forEach': ['http://a', 'http://b'],"
                     " 'url': '{{ item }}', 'headers': {'X-Index': '{{ index }}'},"
                     " 'body': {'n': ['{{ index }}']}, 'auth': {'username': '{{ item }}',"
                     " 'passwordEnv': 'PW'}},"
                     "{'name': 'post', 'type': 'http', 'forEach': [1], 'url': 'http://x',"
                     " 'method': 'POST', 'body': 'i={{ item }}'},"
                     "{'name': 'sub', 'type': 'workflow', 'workflow': 'child', 'forEach': [1],"
                     " 'params': {'x': '{{ item }}', 'i': '{{ index }}'}}"));
    check_invariants(wf);
    workflow_free(wf);

    /* Rejected in a task without forEach, in each templated field. */
    expect_only(WT("{'name': 'a', 'command': ['echo', '{{ item }}']}"), "$.tasks[0].command[1]",
                "{{ item }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'command': 'echo {{ index }}'}"), "$.tasks[0].command",
                "{{ index }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'command': 'ls', 'env': {'I': '{{ item.x }}'}}"),
                "$.tasks[0].env.I", "{{ item.x }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x/{{ item }}'}"), "$.tasks[0].url",
                "{{ item }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'headers': {'X-I': '{{ index }}'}}"),
                "$.tasks[0].headers[\"X-I\"]", "{{ index }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x', 'body': '{{ item }}'}"),
                "$.tasks[0].body", "{{ item }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'body': {'a': [{'b': '{{ item }}'}]}}"),
                "$.tasks[0].body.a[0].b", "{{ item }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'auth': {'username': '{{ index }}', 'passwordEnv': 'P'}}"),
                "$.tasks[0].auth.username", "{{ index }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'type': 'workflow', 'workflow': 'child',"
                   " 'params': {'x': '{{ item }}'}}"),
                "$.tasks[0].params.x", "{{ item }}: " ITEMS_ONLY);
    /* ... and in a fanning-out task's own forEach and when. */
    expect_only(WT("{'name': 'a', 'type': 'noop', 'forEach': '{{ item }}'}"), "$.tasks[0].forEach",
                "{{ item }}: " ITEMS_ONLY);
    expect_only(WT("{'name': 'a', 'command': ['echo', '{{ item }}'], 'forEach': [1, 2],"
                   " 'when': '{{ index }} > 0'}"),
                "$.tasks[0].when", "{{ index }}: " ITEMS_ONLY);
    /* ... and in the workflow's outputs. */
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'ls', 'forEach': [1]}],"
                " 'outputs': {'x': '{{ item }}'}}",
                "$.outputs.x", "{{ item }}: " ITEMS_ONLY);
    /* A downstream task of a fan-out does not fan out itself. */
    expect_only(WT("{'name': 'a', 'command': 'ls', 'forEach': [1]},"
                   " {'name': 'b', 'dependsOn': ['a'], 'command': ['echo', '{{ index }}']}"),
                "$.tasks[1].command[1]", "{{ index }}: " ITEMS_ONLY);
}

/* Which tasks have an output that a placeholder may name. */
static void test_output_refs(void **state)
{
    struct workflow *wf;
    (void)state;

    wf = parse_ok(WT("{'name': 'cmd', 'command': 'ls'},"
                     "{'name': 'web', 'type': 'http', 'url': 'http://x'},"
                     "{'name': 'sub', 'type': 'workflow', 'workflow': 'child'},"
                     "{'name': 'fan', 'type': 'noop', 'forEach': [1, 2]},"
                     "{'name': 'naps', 'type': 'sleep', 'duration': 1, 'forEach': [1]},"
                     "{'name': 'use', 'dependsOn': ['cmd', 'web', 'sub', 'fan', 'naps'],"
                     " 'command': ['echo', '{{ tasks.cmd.output }}', '{{ tasks.web.output.body }}',"
                     "  '{{ tasks.sub.output.result }}', '{{ tasks.fan.output[1] }}',"
                     "  '{{ tasks.naps.output }}']},"
                     "{'name': 'call', 'type': 'http', 'dependsOn': ['use'],"
                     " 'url': 'http://x/{{ tasks.web.output.id }}',"
                     " 'when': '{{ tasks.sub.output.ok }} == true'}"));
    check_invariants(wf);
    workflow_free(wf);

    expect_only(
        WT("{'name': 'n', 'type': 'noop'},"
           " {'name': 'use', 'dependsOn': ['n'], 'command': ['echo', '{{ tasks.n.output }}']}"),
        "$.tasks[1].command[1]", "{{ tasks.n.output }}: task 'n' " NO_OUTPUT);
    expect_only(WT("{'name': 's', 'type': 'sleep', 'duration': 1},"
                   " {'name': 'use', 'dependsOn': ['s'], 'type': 'http',"
                   " 'url': 'http://x/{{ tasks.s.output.x }}'}"),
                "$.tasks[1].url", "{{ tasks.s.output.x }}: task 's' " NO_OUTPUT);
    expect_only(WT("{'name': 'n', 'type': 'noop'},"
                   " {'name': 'use', 'dependsOn': ['n'], 'type': 'noop',"
                   " 'forEach': '{{ tasks.n.output }}'}"),
                "$.tasks[1].forEach", "{{ tasks.n.output }}: task 'n' " NO_OUTPUT);
    /* Not upstream: an http task's own output. */
    expect_only(WT("{'name': 'web', 'type': 'http', 'url': 'http://x',"
                   " 'body': {'v': '{{ tasks.web.output }}'}}"),
                "$.tasks[0].body.v",
                "{{ tasks.web.output }}: task 'web' is not upstream of 'web' (add it to "
                "dependsOn, directly or through another task)");
    /* A placeholder that does not parse: the template parser's message, at the header. */
    expect_only(WT("{'name': 'a', 'type': 'http', 'url': 'http://x',"
                   " 'headers': {'X': '{{ execution.name }}'}}"),
                "$.tasks[0].headers.X", "expected '.id' after 'execution' at column 13");
}

static void test_workflow_outputs(void **state)
{
    struct workflow *wf;
    (void)state;

    /* Outputs may name any task with an output, upstream of nothing. */
    wf = parse_ok("{'name': 'w', 'params': {'p': 1},"
                  " 'outputs': {'first': '{{ tasks.a.output }}',"
                  "  'both': '{{ tasks.b.output.x }} and {{ params.p }}',"
                  "  'fan': '{{ tasks.c.output }}', 'plain': 'text', 'id': '{{ execution.id }}',"
                  "  'when': '{{ scheduledFor }}'},"
                  " 'tasks': [{'name': 'a', 'command': 'ls'},"
                  "  {'name': 'b', 'type': 'http', 'url': 'http://x', 'dependsOn': ['a']},"
                  "  {'name': 'c', 'type': 'noop', 'forEach': [1], 'dependsOn': ['b']}]}");
    assert_string_equal(wf->outputs_json,
                        "{\"first\":\"{{ tasks.a.output }}\","
                        "\"both\":\"{{ tasks.b.output.x }} and {{ params.p }}\","
                        "\"fan\":\"{{ tasks.c.output }}\",\"plain\":\"text\","
                        "\"id\":\"{{ execution.id }}\",\"when\":\"{{ scheduledFor }}\"}");
    workflow_free(wf);

    /* None. */
    wf = parse_ok(WT("{'name': 'a', 'command': 'ls'}"));
    assert_null(wf->outputs_json);
    workflow_free(wf);

    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'ls'}],"
                " 'outputs': {'r': '{{ tasks.zzz.output }}'}}",
                "$.outputs.r", "{{ tasks.zzz.output }}: there is no task 'zzz'");
    expect_only("{'name': 'w', 'params': {'p': 1}, 'tasks': [{'name': 'a', 'command': 'ls'}],"
                " 'outputs': {'r': 'x {{ params.nope }}'}}",
                "$.outputs.r", "{{ params.nope }}: the workflow declares no param 'nope'");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'type': 'noop'}],"
                " 'outputs': {'r': '{{ tasks.a.output }}'}}",
                "$.outputs.r", "{{ tasks.a.output }}: task 'a' " NO_OUTPUT);
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'ls'}], 'outputs': ['r']}",
                "$.outputs", "'outputs' must be an object of strings, got array");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'ls'}], 'outputs': {'r': 1}}",
                "$.outputs.r", "'r' must be a string, got integer");
    expect_only("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'ls'}], 'output': {}}",
                "$.output", "unknown field 'output' (did you mean 'outputs'?)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_topo_diamond),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_bad_durations),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_json_syntax_error),
        cmocka_unit_test(test_json_duplicate_keys),
        cmocka_unit_test(test_json_invalid_utf8_and_nul),
        cmocka_unit_test(test_json_deep_nesting),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_not_object),
        cmocka_unit_test(test_missing_name),
        cmocka_unit_test(test_bad_workflow_name),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_retries_range),
        cmocka_unit_test(test_bad_enums),
        cmocka_unit_test(test_type_rules),
        cmocka_unit_test(test_backoff_rules),
        cmocka_unit_test(test_no_tasks),
        cmocka_unit_test(test_too_many_tasks),
        cmocka_unit_test(test_task_names),
        cmocka_unit_test(test_duplicate_task_names),
        cmocka_unit_test(test_self_dependency),
        cmocka_unit_test(test_duplicate_dependency),
        cmocka_unit_test(test_unknown_dependency),
        cmocka_unit_test(test_cycle_three),
        cmocka_unit_test(test_two_cycles),
        cmocka_unit_test(test_long_cycle),
        cmocka_unit_test(test_many_problems_at_once),
        cmocka_unit_test(test_problem_limit),
        cmocka_unit_test(test_problems_appended),
        cmocka_unit_test(test_text_safety),
        cmocka_unit_test(test_suggestion_budget),
        cmocka_unit_test(test_big_chain),
        cmocka_unit_test(test_fan_out_join),
        cmocka_unit_test(test_random_graphs),
        cmocka_unit_test(test_names_and_lookup),
        cmocka_unit_test(test_data_files),
        cmocka_unit_test(test_schedule_hash),
        cmocka_unit_test(test_schedule_defaults),
        cmocka_unit_test(test_schedule_all_fields),
        cmocka_unit_test(test_schedule_every),
        cmocka_unit_test(test_schedule_cron_or_every),
        cmocka_unit_test(test_schedule_bad_cron),
        cmocka_unit_test(test_schedule_timezone),
        cmocka_unit_test(test_schedule_unknown_fields),
        cmocka_unit_test(test_schedule_enums),
        cmocka_unit_test(test_schedule_max_catchup),
        cmocka_unit_test(test_schedule_names),
        cmocka_unit_test(test_schedule_params),
        cmocka_unit_test(test_schedule_shapes),
        cmocka_unit_test(test_http_valid),
        cmocka_unit_test(test_http_fields),
        cmocka_unit_test(test_http_errors),
        cmocka_unit_test(test_fields_of_other_types),
        cmocka_unit_test(test_subflow),
        cmocka_unit_test(test_for_each),
        cmocka_unit_test(test_item_and_index),
        cmocka_unit_test(test_output_refs),
        cmocka_unit_test(test_shell_injection),
        cmocka_unit_test(test_credentials),
        cmocka_unit_test(test_workflow_outputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
