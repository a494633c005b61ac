/*
 * test_render.c - the engine's pieces that need no loop: the table of task
 * kinds (kind.c) and what a task sees of its execution (render.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/xalloc.h"
#include "dag/dag.h"
#include "engine/engine_internal.h"
#include "engine/kind.h"
#include "engine/render.h"

static struct workflow *parse(const char *json)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    int rc = dag_parse(json, strlen(json), &wf, &probs);
    if (rc && probs.n)
        fail_msg("%s: %s", probs.items[0].path, probs.items[0].message);
    assert_int_equal(rc, 0);
    dag_problems_release(&probs);
    return wf;
}

/* An execution as the engine makes one, without the engine. */
static struct exec *exec_of(struct workflow *wf, const char *params)
{
    struct exec *ex = xcalloc(1, sizeof(*ex));
    json_t *pj = json_loads(params, 0, NULL);

    snprintf(ex->id, sizeof(ex->id), "ex_TEST");
    ex->wf = wf;
    ex->params = xstrdup(params);
    ex->nruns = ex->runs_alloc = wf->ntasks;
    ex->runs = xcalloc(wf->ntasks, sizeof(*ex->runs));
    for (size_t i = 0; i < wf->ntasks; i++)
        ex->runs[i].group = (size_t)-1;
    ex->base_env = engine__base_env(wf, pj);
    json_decref(pj);
    return ex;
}

static void exec_release(struct exec *ex)
{
    for (size_t i = 0; i < ex->nruns; i++) {
        free(ex->runs[i].output);
        free(ex->runs[i].error);
    }
    free(ex->runs);
    json_decref(ex->ctx);
    free(ex->params);
    engine__strv_free(ex->base_env);
    workflow_free(ex->wf);
    free(ex);
}

static const char *env_get(char **envp, const char *key)
{
    size_t n = strlen(key);
    for (char **e = envp; e && *e; e++)
        if (!strncmp(*e, key, n) && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* Every task type has its kind, complete, under its own name. */
static void test_kind_table(void **state)
{
    enum task_type types[] = {TASK_COMMAND, TASK_NOOP, TASK_SLEEP, TASK_HTTP, TASK_WORKFLOW};
    (void)state;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct dag_task t;
        const struct task_kind *k;
        memset(&t, 0, sizeof(t));
        t.type = types[i];
        k = engine__kind(&t);
        assert_non_null(k);
        assert_string_equal(k->name, dag_task_type_name(types[i]));
        assert_non_null(k->begin);
        assert_non_null(k->restore);
        /* Only a kind that completes at once may skip the slot and concurrency. */
        assert_int_equal(k->queue == KIND_QUEUE_FREE, k->instant);
    }
    {
        struct dag_task t;
        memset(&t, 0, sizeof(t));
        t.type = TASK_COMMAND;
        assert_ptr_equal(engine__kind(&t), &engine__kind_command);
        assert_int_equal(engine__kind(&t)->queue, KIND_QUEUE_SLOT);
        t.type = TASK_NOOP;
        assert_ptr_equal(engine__kind(&t), &engine__kind_noop);
    }
}

static void test_resolve_params(void **state)
{
    struct workflow *wf = parse(
        "{\"name\":\"p\",\"params\":{\"who\":{\"type\":\"string\",\"required\":true},"
        "\"n\":{\"type\":\"number\",\"default\":3}},\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    struct err err = ERR_INIT;
    json_t *p;
    char *text;
    (void)state;

    p = engine__resolve_params(wf, "{\"who\":\"bob\"}", &err);
    assert_non_null(p);
    text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"n\":3,\"who\":\"bob\"}");
    assert_int_equal(engine__params_same(wf, text, "{\"who\":\"bob\",\"n\":3}"), 1);
    assert_int_equal(engine__params_same(wf, text, "{\"who\":\"eve\"}"), 0);
    assert_int_equal(engine__params_same(wf, text, "{\"nope\":1}"), 0);
    free(text);
    json_decref(p);

    assert_null(engine__resolve_params(wf, NULL, &err));
    assert_int_equal(err.code, ERR_INVALID);
    assert_non_null(strstr(err.msg, "missing required param 'who'"));
    err = (struct err)ERR_INIT;
    assert_null(engine__resolve_params(wf, "{\"who\":5}", &err));
    assert_non_null(strstr(err.msg, "param 'who' must be a string"));
    err = (struct err)ERR_INIT;
    assert_null(engine__resolve_params(wf, "{\"who\":\"x\",\"other\":1}", &err));
    assert_non_null(strstr(err.msg, "unknown param 'other'"));
    err = (struct err)ERR_INIT;
    assert_null(engine__resolve_params(wf, "[1]", &err));
    assert_non_null(strstr(err.msg, "params must be a JSON object"));
    workflow_free(wf);
}

/* A task's environment: no private variable of orch's, the params, the task's
 * own env rendered, and the ORCH_* of the attempt. */
static void test_task_env_and_render(void **state)
{
    struct workflow *wf = parse(
        "{\"name\":\"r\",\"params\":{\"x\":{\"type\":\"string\",\"default\":\"a b'c\"}},"
        "\"tasks\":[{\"name\":\"t\",\"command\":\"echo {{ params.x }}\","
        "\"env\":{\"WHO\":\"<{{ params.x }}>\"}},"
        "{\"name\":\"u\",\"command\":[\"echo\",\"{{ tasks.t.output.v }}\"],"
        "\"dependsOn\":[\"t\"],\"when\":\"{{ tasks.t.output.v }} == 7\"}]}");
    struct exec *ex;
    struct rendered rd;
    char msg[512], **envp;
    (void)state;

    setenv("ORCH_TEST_SECRET", "s", 1);
    setenv("TEST_RENDER_PLAIN", "p", 1);
    ex = exec_of(wf, "{\"x\":\"a b'c\"}");
    assert_null(env_get(ex->base_env, "ORCH_TEST_SECRET"));
    assert_string_equal(env_get(ex->base_env, "TEST_RENDER_PLAIN"), "p");
    assert_string_equal(env_get(ex->base_env, "ORCH_PARAM_x"), "a b'c");

    assert_int_equal(engine__render_task(ex, 0, &rd, msg, sizeof(msg)), 0);
    assert_string_equal(rd.shell, "echo 'a b'\\''c'"); /* one word, whatever it holds */
    assert_string_equal(rd.env[0], "<a b'c>");
    envp = engine__task_env(ex, 0, 2, "/tmp/out.json", &rd);
    assert_string_equal(env_get(envp, "WHO"), "<a b'c>");
    assert_string_equal(env_get(envp, "ORCH_TASK"), "t");
    assert_string_equal(env_get(envp, "ORCH_ATTEMPT"), "2");
    assert_string_equal(env_get(envp, "ORCH_EXECUTION_ID"), "ex_TEST");
    assert_string_equal(env_get(envp, "ORCH_OUTPUT"), "/tmp/out.json");
    assert_null(env_get(envp, "ORCH_TEST_SECRET"));
    engine__strv_free(envp);
    engine__rendered_release(&rd, engine__task(ex, 0));

    /* The condition and the command read the upstream output once it succeeded. */
    assert_int_equal(engine__when_holds(ex, 1, msg, sizeof(msg)), -1);
    ex->runs[0].status = TASK_SUCCEEDED;
    ex->runs[0].output = xstrdup("{\"v\":7}");
    json_decref(ex->ctx); /* as the engine does when a task succeeds */
    ex->ctx = NULL;
    assert_int_equal(engine__when_holds(ex, 1, msg, sizeof(msg)), 1);
    assert_int_equal(engine__render_task(ex, 1, &rd, msg, sizeof(msg)), 0);
    assert_string_equal(rd.argv[1], "7");
    engine__rendered_release(&rd, engine__task(ex, 1));
    exec_release(ex);
    unsetenv("ORCH_TEST_SECRET");
    unsetenv("TEST_RENDER_PLAIN");
}

/* A value missing at run time fails the render with a message. */
static void test_render_missing_value(void **state)
{
    struct workflow *wf = parse(
        "{\"name\":\"m\",\"tasks\":[{\"name\":\"a\",\"command\":[\"true\"]},"
        "{\"name\":\"b\",\"dependsOn\":[\"a\"],\"command\":[\"echo\",\"{{ tasks.a.output.v }}\"]}]}");
    struct exec *ex = exec_of(wf, "{}");
    struct rendered rd;
    char msg[512];
    (void)state;

    ex->runs[0].status = TASK_SUCCEEDED;
    ex->runs[0].output = xstrdup("{\"w\":1}");
    assert_int_equal(engine__render_task(ex, 1, &rd, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "cannot fill in its command"));
    assert_null(rd.argv);
    exec_release(ex);
}

/* The spec another node runs a task from, and the runner's environment. */
static void test_task_spec_and_runner_env(void **state)
{
    struct workflow *wf = parse(
        "{\"name\":\"s\",\"tasks\":[{\"name\":\"a\",\"command\":[\"echo\",\"hi\"],"
        "\"env\":{\"K\":\"v\"},\"workingDir\":\"/tmp\"}]}");
    struct exec *ex = exec_of(wf, "{}");
    char msg[512], **envp;
    json_t *spec;
    (void)state;

    setenv("ORCH_TEST_SECRET", "s", 1);
    spec = engine__task_spec(ex, 0, msg, sizeof(msg));
    assert_non_null(spec);
    assert_string_equal(json_string_value(json_object_get(spec, "task")), "a");
    assert_string_equal(json_string_value(json_array_get(json_object_get(spec, "argv"), 1)),
                        "hi");
    assert_string_equal(json_string_value(json_object_get(spec, "dir")), "/tmp");
    envp = engine__runner_env(spec, "/tmp/o.json");
    assert_string_equal(env_get(envp, "K"), "v");
    assert_string_equal(env_get(envp, "ORCH_TASK"), "a");
    assert_string_equal(env_get(envp, "ORCH_OUTPUT"), "/tmp/o.json");
    assert_null(env_get(envp, "ORCH_TEST_SECRET"));
    engine__strv_free(envp);
    json_decref(spec);
    exec_release(ex);
    unsetenv("ORCH_TEST_SECRET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_table),
        cmocka_unit_test(test_resolve_params),
        cmocka_unit_test(test_task_env_and_render),
        cmocka_unit_test(test_render_missing_value),
        cmocka_unit_test(test_task_spec_and_runner_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
