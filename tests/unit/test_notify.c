/* Unit tests for notifications: the body templates (src/dag/dag_notify.c), the
 * "notify" rules of a definition, and the retry schedule (src/engine/notify.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/xalloc.h"
#include "dag/dag.h"
#include "engine/notify.h"

static const char *const failed_names[] = {"load", "report"};
static const char *const failed_errors[] = {"exit code 2: \"disk\" full", NULL};

static struct dag_notify_vars vars(void)
{
    struct dag_notify_vars v;
    memset(&v, 0, sizeof(v));
    v.exec_id = "ex_01ABC";
    v.workflow = "nightly";
    v.status = "failed";
    v.event = "failed";
    v.error = "task 'load' failed";
    v.link = "http://orch.example:8080/executions/ex_01ABC";
    v.failed_tasks = failed_names;
    v.failed_errors = failed_errors;
    v.nfailed = 2;
    return v;
}

/* Parse `def` (single quotes for double); NULL on failure with the problems in *probs. */
static struct workflow *parse(const char *def, struct dag_problems *probs)
{
    char *j = xstrdup(def);
    struct workflow *wf = NULL;
    for (char *p = j; *p; p++)
        if (*p == '\'')
            *p = '"';
    dag_parse(j, strlen(j), &wf, probs);
    free(j);
    return wf;
}

static int has_problem(const struct dag_problems *probs, const char *path, const char *text)
{
    for (size_t i = 0; i < probs->n; i++)
        if (!strcmp(probs->items[i].path, path) && strstr(probs->items[i].message, text))
            return 1;
    return 0;
}

static void test_default_body(void **state)
{
    struct dag_notify_vars v = vars();
    char *body = dag_notify_body(NULL, &v);
    json_t *j = json_loads(body, 0, NULL);
    (void)state;

    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "executionId")), "ex_01ABC");
    assert_string_equal(json_string_value(json_object_get(j, "workflow")), "nightly");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "link")), v.link);
    assert_int_equal(json_array_size(json_object_get(j, "failedTasks")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "failedTasks"), 0), "error")),
                        "exit code 2: \"disk\" full");
    assert_true(json_is_null(
        json_object_get(json_array_get(json_object_get(j, "failedTasks"), 1), "error")));
    json_decref(j);
    free(body);
}

/* A Slack-style body: {"text": "..."} with the values inside the string, escaped. */
static void test_slack_body(void **state)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf =
        parse("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'true'}], 'notify': [{'on': "
              "['failed'], 'webhook': {'url': 'https://hooks.example/T/B', 'body': {'text': "
              "'{{ workflow }} {{status}}: {{ failedTasks }} <{{ link }}|{{ execution.id }}>'}}}]}",
              &probs);
    struct dag_notify_vars v = vars();
    char *body;
    json_t *j;
    (void)state;

    assert_non_null(wf);
    assert_int_equal(wf->nnotify, 1);
    assert_int_equal(wf->notify[0].on, DAG_NOTIFY_FAILED);
    assert_string_equal(wf->notify[0].hook.method, "POST");
    body = dag_notify_body(&wf->notify[0], &v);
    j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_object_size(j), 1);
    assert_string_equal(json_string_value(json_object_get(j, "text")),
                        "nightly failed: load: exit code 2: \"disk\" full; report "
                        "<http://orch.example:8080/executions/ex_01ABC|ex_01ABC>");
    json_decref(j);
    free(body);
    workflow_free(wf);
    dag_problems_release(&probs);
}

/* A JSON string that is only {{ failedTasks }} becomes the list itself. */
static void test_json_failed_list(void **state)
{
    struct dag_notify n;
    struct dag_notify_vars v = vars();
    char tpl[] = "{\"tasks\":\"{{ failedTasks }}\",\"n\":[1,\"{{event}}\"]}";
    char *body;
    (void)state;

    memset(&n, 0, sizeof(n));
    n.hook.body_json = tpl;
    body = dag_notify_body(&n, &v);
    assert_string_equal(body,
                        "{\"tasks\":[{\"task\":\"load\",\"error\":\"exit code 2: \\\"disk\\\" "
                        "full\"},{\"task\":\"report\",\"error\":null}],\"n\":[1,\"failed\"]}");
    free(body);
}

static void test_text_body(void **state)
{
    struct dag_notify n;
    struct dag_notify_vars v = vars();
    char tpl1[] = "{{ workflow }} {{ '{{' }} {{error}}", tpl2[] = "failed: {{ failedTasks }}";
    char *body;
    (void)state;

    memset(&n, 0, sizeof(n));
    n.hook.body = tpl1;
    body = dag_notify_body(&n, &v);
    /* An unknown placeholder (refused by dag_parse) stays literal. */
    assert_string_equal(body, "nightly {{ '{{' }} task 'load' failed");
    free(body);
    v.nfailed = 0;
    n.hook.body = tpl2;
    body = dag_notify_body(&n, &v);
    assert_string_equal(body, "failed: none");
    free(body);
}

static void test_check(void **state)
{
    char msg[256];
    (void)state;

    assert_int_equal(
        dag_notify_check("{{ execution.id }} {{workflow}} plain { } }}", msg, sizeof(msg)), 0);
    assert_int_equal(dag_notify_check("x {{ params.a }}", msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "unknown placeholder 'params.a' at column 3"));
    assert_int_equal(dag_notify_check("{{ status", msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "unclosed placeholder at column 1"));
}

/* Every problem of the rules is named at once, each with its path. */
static void test_rule_problems(void **state)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf =
        parse("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'true'}], 'notify': ["
              "{'on': ['failed', 'exploded'], 'webhook': {'headers': {'X-A': 'b'}}},"
              "{'on': [], 'webhook': {'url': 'ftp://x', 'bodyy': 1}},"
              "{'webhook': {'url': 'http://x/', 'headers': {'Authorization': 'Bearer abc'},"
              " 'body': '{{ nope }}'}},"
              "{'on': 'stuck', 'webhook': {'url': 'http://x/', 'urlEnv': 'HOOK'}},"
              "{'on': 'succeeded'}, 3]}",
              &probs);
    (void)state;

    assert_null(wf);
    assert_true(has_problem(&probs, "$.notify[0].on[1]", "unknown event 'exploded'"));
    assert_true(has_problem(&probs, "$.notify[0].webhook", "missing 'url'"));
    assert_true(has_problem(&probs, "$.notify[1].on", "must not be empty"));
    assert_true(has_problem(&probs, "$.notify[1].webhook.url", "must start with http://"));
    assert_true(has_problem(&probs, "$.notify[1].webhook.bodyy", "unknown field"));
    assert_true(has_problem(&probs, "$.notify[2]", "missing 'on'"));
    assert_true(
        has_problem(&probs, "$.notify[2].webhook.headers.Authorization", "carries a credential"));
    assert_true(has_problem(&probs, "$.notify[2].webhook.body", "unknown placeholder 'nope'"));
    assert_true(has_problem(&probs, "$.notify[3].webhook.urlEnv", "not both"));
    assert_true(has_problem(&probs, "$.notify[4]", "missing 'webhook'"));
    assert_true(has_problem(&probs, "$.notify[5]", "must be an object"));
    dag_problems_release(&probs);
}

static void test_rule_auth_env(void **state)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf =
        parse("{'name': 'w', 'tasks': [{'name': 'a', 'command': 'true'}], 'notify': ["
              "{'on': ['failed', 'timed_out', 'stuck'], 'webhook': {'urlEnv': 'HOOK_URL',"
              " 'method': 'put', 'headers': {'X-Team': 'data'}, 'auth': {'bearerEnv': 'TOK'}}}]}",
              &probs);
    (void)state;

    assert_non_null(wf);
    assert_int_equal(wf->notify[0].on, DAG_NOTIFY_FAILED | DAG_NOTIFY_TIMED_OUT | DAG_NOTIFY_STUCK);
    assert_string_equal(wf->notify[0].url_env, "HOOK_URL");
    assert_null(wf->notify[0].hook.url);
    assert_string_equal(wf->notify[0].hook.method, "PUT");
    assert_string_equal(wf->notify[0].hook.bearer_env, "TOK");
    assert_int_equal(wf->notify[0].hook.nheaders, 1);
    workflow_free(wf);
    dag_problems_release(&probs);
}

static void test_event_names(void **state)
{
    (void)state;
    assert_int_equal(dag_notify_event("timed_out"), DAG_NOTIFY_TIMED_OUT);
    assert_int_equal(dag_notify_event("Failed"), 0);
    assert_string_equal(dag_notify_event_name(DAG_NOTIFY_STUCK), "stuck");
    assert_string_equal(dag_notify_event_name(0), "unknown");
}

/* base, 2 base, 4 base, ... capped at an hour. */
static void test_backoff(void **state)
{
    (void)state;
    assert_int_equal(engine__notify_backoff(1, 1000), 1000);
    assert_int_equal(engine__notify_backoff(2, 1000), 2000);
    assert_int_equal(engine__notify_backoff(3, 1000), 4000);
    assert_int_equal(engine__notify_backoff(8, 1000), 128000);
    assert_int_equal(engine__notify_backoff(40, 1000), NOTIFY_BACKOFF_MAX_MS);
    assert_int_equal(engine__notify_backoff(100, 3600 * 1000), NOTIFY_BACKOFF_MAX_MS);
    assert_int_equal(engine__notify_backoff(0, 250), 250);
    for (int i = 1; i < 30; i++)
        assert_true(engine__notify_backoff(i + 1, 300) >= engine__notify_backoff(i, 300));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_body),
        cmocka_unit_test(test_slack_body),
        cmocka_unit_test(test_json_failed_list),
        cmocka_unit_test(test_text_body),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_rule_problems),
        cmocka_unit_test(test_rule_auth_env),
        cmocka_unit_test(test_event_names),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
