/*
 * dag.c - the small public helpers of the dag module: freeing, lookups and
 * names. Parsing is in dag_parse.c, graph checks in dag_graph.c.
 */
#include "dag.h"

#include <stdlib.h>
#include <string.h>

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
}

static void schedule_release(struct dag_schedule *s)
{
    free(s->name);
    free(s->cron_text);
    free(s->timezone);
    free(s->params_json);
}

void workflow_free(struct workflow *wf)
{
    size_t i;

    if (!wf)
        return;
    free(wf->name);
    free(wf->description);
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
