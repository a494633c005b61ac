/*
 * dag.c - the small public helpers of the dag module: freeing, lookups and
 * names. Parsing is in dag_parse.c, graph checks in dag_graph.c.
 */
#include "dag.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "dag_internal.h"

#include "base/banned.h"

static void kv_free(struct dag_kv *kv, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

static void task_release(struct dag_task *t)
{
    size_t i;

    free(t->name);
    free(t->deps);
    free(t->children);
    if (t->argv) {
        for (i = 0; i < t->argc; i++)
            free(t->argv[i]);
        free(t->argv);
    }
    free(t->shell);
    kv_free(t->env, t->nenv);
    free(t->working_dir);
    free(t->when);
    dag__http_release(&t->http);
    free(t->subflow.workflow);
    free(t->subflow.params_json);
    free(t->for_each);
    free(t->for_each_json);
}

void dag__http_release(struct dag_http *h)
{
    free(h->method);
    free(h->url);
    kv_free(h->headers, h->nheaders);
    free(h->body);
    free(h->body_json);
    free(h->expect);
    free(h->username);
    free(h->username_env);
    free(h->password_env);
    free(h->bearer_env);
    free(h->auth_header);
    free(h->auth_query);
    free(h->value_env);
}

static void schedule_release(struct dag_schedule *s)
{
    free(s->name);
    free(s->cron_text);
    free(s->every_text);
    free(s->timezone);
    free(s->params_json);
}

struct workflow *workflow_ref(struct workflow *wf)
{
    wf->refs++;
    return wf;
}

void workflow_free(struct workflow *wf)
{
    size_t i;

    if (!wf)
        return;
    if (wf->refs > 0) {
        wf->refs--;
        return;
    }
    free(wf->name);
    free(wf->description);
    free(wf->outputs_json);
    for (i = 0; i < wf->nparams; i++) {
        free(wf->params[i].name);
        free(wf->params[i].default_json);
        free(wf->params[i].description);
    }
    free(wf->params);
    for (i = 0; i < wf->ntasks; i++)
        task_release(&wf->tasks[i]);
    free(wf->tasks);
    free(wf->topo);
    kv_free(wf->env, wf->nenv);
    for (i = 0; i < wf->nschedules; i++)
        schedule_release(&wf->schedules[i]);
    free(wf->schedules);
    for (i = 0; i < wf->nnotify; i++) {
        dag__http_release(&wf->notify[i].hook);
        free(wf->notify[i].url_env);
    }
    free(wf->notify);
    free(wf);
}

void dag_problems_release(struct dag_problems *probs)
{
    size_t i;

    if (!probs)
        return;
    for (i = 0; i < probs->n; i++) {
        free(probs->items[i].path);
        free(probs->items[i].message);
    }
    free(probs->items);
    probs->items = NULL;
    probs->n = 0;
    probs->alloc = 0;
    probs->dropped = 0;
}

long dag_find_task(const struct workflow *wf, const char *name)
{
    size_t i;

    if (!wf || !name)
        return -1;
    for (i = 0; i < wf->ntasks; i++) {
        if (wf->tasks[i].name && !strcmp(wf->tasks[i].name, name))
            return (long)i;
    }
    return -1;
}

const char *dag_task_type_name(enum task_type t)
{
    switch (t) {
    case TASK_COMMAND:
        return "command";
    case TASK_NOOP:
        return "noop";
    case TASK_SLEEP:
        return "sleep";
    case TASK_HTTP:
        return "http";
    case TASK_WORKFLOW:
        return "workflow";
    }
    return "unknown";
}

const char *dag_catchup_name(enum dag_catchup c)
{
    switch (c) {
    case DAG_CATCHUP_NONE:
        return "none";
    case DAG_CATCHUP_LATEST:
        return "latest";
    case DAG_CATCHUP_ALL:
        return "all";
    }
    return "unknown";
}

const char *dag_overlap_name(enum dag_overlap o)
{
    switch (o) {
    case DAG_OVERLAP_SKIP:
        return "skip";
    case DAG_OVERLAP_BUFFER_ONE:
        return "bufferOne";
    case DAG_OVERLAP_BUFFER_ALL:
        return "bufferAll";
    case DAG_OVERLAP_CANCEL_PREVIOUS:
        return "cancelPrevious";
    case DAG_OVERLAP_ALLOW:
        return "allow";
    }
    return "unknown";
}

const char *dag_run_if_name(enum run_if r)
{
    switch (r) {
    case RUN_IF_ALL_SUCCEEDED:
        return "allSucceeded";
    case RUN_IF_ALL_DONE:
        return "allDone";
    case RUN_IF_ANY_FAILED:
        return "anyFailed";
    }
    return "unknown";
}

int dag_valid_workflow_name(const char *name)
{
    size_t i;

    if (!name)
        return 0;
    /* ASCII ranges, not <ctype.h>: the answer must not depend on the locale. */
    for (i = 0; name[i]; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (i > 0)
            ok = ok || c == '.' || c == '_' || c == '-';
        if (!ok || i >= 128)
            return 0;
    }
    return i > 0;
}

static void add_problem(struct dag_problems *pr, const char *path, const char *msg)
{
    if (pr->n >= DAG_MAX_PROBLEMS) {
        pr->dropped++;
        return;
    }
    XGROW(pr->items, pr->alloc, pr->n + 1);
    memset(&pr->items[pr->n], 0, sizeof(pr->items[pr->n]));
    pr->items[pr->n].path = xstrdup(path);
    pr->items[pr->n].message = xstrdup(msg);
    pr->n++;
}

/*
 * The schedule is validated inside its workflow: a copy of the definition
 * whose "schedules" holds only `spec`. Paths "$.schedules[0]..." of the
 * problems become "$...": relative to the schedule object.
 */
int dag_parse_schedule(const char *definition, const char *spec, struct workflow **out,
                       struct dag_problems *probs)
{
    struct dag_problems local = DAG_PROBLEMS_INIT;
    struct dag_problems *pr = probs ? probs : &local;
    json_error_t jerr;
    json_t *def = NULL, *sp = NULL, *arr;
    char *text = NULL;
    size_t first = pr->n;
    int rc;

    *out = NULL;
    sp = json_loads(spec ? spec : "", JSON_REJECT_DUPLICATES, &jerr);
    if (!sp || !json_is_object(sp)) {
        add_problem(pr, "$", sp ? "a schedule must be a JSON object" : jerr.text);
        rc = ERR_INVALID;
        goto out;
    }
    def = json_loads(definition ? definition : "", 0, &jerr);
    if (!def || !json_is_object(def)) {
        add_problem(pr, "$", "the workflow's definition does not parse");
        rc = ERR_INVALID;
        goto out;
    }
    arr = json_array();
    json_array_append(arr, sp);
    json_object_set_new(def, "schedules", arr);
    text = json_dumps(def, JSON_COMPACT);
    if (!text) {
        rc = ERR_INVALID;
        goto out;
    }
    rc = dag_parse(text, strlen(text), out, pr);
    for (size_t i = first; i < pr->n; i++) {
        char *p = pr->items[i].path;
        if (p && !strncmp(p, "$.schedules[0]", 14)) {
            char *np = xasprintf("$%s", p + 14);
            free(p);
            pr->items[i].path = np;
        }
    }
out:
    free(text);
    json_decref(def);
    json_decref(sp);
    dag_problems_release(&local);
    return rc;
}

char *dag_schedule_hash(const struct dag_schedule *s)
{
    return xasprintf("%s|%lld|%s|%d|%d|%d|%s", s->is_cron ? s->cron_text : "",
                     (long long)(s->is_cron ? 0 : s->every_ms), s->timezone ? s->timezone : "UTC",
                     (int)s->dst.skipped, (int)s->dst.repeated, s->enabled,
                     s->params_json ? s->params_json : "");
}
