/*
 * fanout.c - tasks with forEach: one instance of the task per item of a list.
 *
 * A forEach task is a group. When its dependencies are done (and its `when`
 * holds), its list is evaluated once: a literal array, or the one placeholder
 * of its forEach ("{{ tasks.list.output.files }}"). Each item becomes a run
 * of its own, appended to the execution's runs (idx >= the workflow's task
 * count), inserted in the store with the same turn that starts the group, and
 * named "task[i]". An instance is an ordinary run of the group's definition
 * (attempts, retries, timeouts, offers to other nodes, logs), with {{ item }}
 * and {{ index }} in its placeholders and ORCH_ITEM/ORCH_ITEM_INDEX in its
 * environment.
 *
 * At most maxParallel instances are queued or running at once: the others
 * wait as pending and are made ready, in order, as earlier ones finish. The
 * group is running (without taking a slot) until every instance is final;
 * then it succeeds with the list of the instances' outputs as its output, or
 * fails if any instance did not succeed. Dependents wait for the group.
 *
 * Cost: O(1) per instance event; the output list is built once, at the end.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "engine_internal.h"
#include "fanout.h"
#include "render.h"

#include "base/banned.h"

/* The group's output may hold this many times the cap of one task's output. */
#define GROUP_OUTPUT_FACTOR 64

static int status_is_bad(enum task_status s)
{
    return s == TASK_FAILED || s == TASK_UPSTREAM_FAILED || s == TASK_TIMED_OUT ||
           s == TASK_CANCELLED;
}

/* Make instances ready, in order, while fewer than maxParallel are active. */
static void group_fill(struct engine *eng, struct exec *ex, size_t g)
{
    const struct dag_task *t = &ex->wf->tasks[g];
    size_t limit = t->max_parallel > 0 ? (size_t)t->max_parallel : (size_t)-1;

    for (;;) {
        struct trun *gr = &ex->runs[g];
        size_t k;
        if (gr->inst_next >= gr->ninst || gr->inst_active >= limit)
            break;
        k = gr->first + gr->inst_next++;
        if (ex->runs[k].status != TASK_PENDING)
            continue;
        gr->inst_active++;
        engine__task_make_ready(eng, ex, k);
    }
}

/* Every instance is final: the group succeeds with their outputs, or fails. */
static void group_complete(struct engine *eng, struct exec *ex, size_t g)
{
    struct trun *gr = &ex->runs[g];
    const char *name = ex->wf->tasks[g].name;
    struct engine_event ev;
    char dur[32];

    clock_fmt_duration(clock_now_ms() - gr->started_at, dur, sizeof(dur));
    memset(&ev, 0, sizeof(ev));
    ev.type = ENGINE_EV_TASK_FINISHED;
    ev.task = name;
    if (gr->inst_bad) {
        char msg[600];
        const struct trun *first_bad = NULL;
        size_t fb = 0;
        for (size_t k = gr->first; k < gr->first + gr->ninst && !first_bad; k++)
            if (status_is_bad(ex->runs[k].status)) {
                first_bad = &ex->runs[k];
                fb = k;
            }
        snprintf(msg, sizeof(msg),
                 "%zu of %zu instance%s did not succeed (first: '%s' %s%s%.300s)", gr->inst_bad,
                 gr->ninst, gr->ninst == 1 ? "" : "s", first_bad ? ex->runs[fb].name : "?",
                 first_bad ? task_status_name(first_bad->status) : "failed",
                 first_bad && first_bad->error ? ": " : "",
                 first_bad && first_bad->error ? first_bad->error : "");
        log_error(COMP_TASK, "Task '%s' failed: %s", name, msg);
        engine__task_finalize(eng, ex, g, TASK_FAILED, msg);
        ev.task_status = TASK_FAILED;
        ev.error = ex->runs[g].error;
    } else {
        json_t *list = json_array();
        char *text;
        size_t cap = eng->cfg.task_output_cap * GROUP_OUTPUT_FACTOR;
        for (size_t k = gr->first; k < gr->first + gr->ninst; k++) {
            const char *o = ex->runs[k].output;
            json_t *v = o ? json_loads(o, JSON_DECODE_ANY, NULL) : NULL;
            json_array_append_new(list, v ? v : json_null());
        }
        text = json_dumps(list, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(list);
        if (!text || strlen(text) > cap) {
            char msg[300];
            snprintf(msg, sizeof(msg), "the list of its %zu instances' outputs is larger than "
                     "the limit of %zu bytes (%d times ORCH_MAX_TASK_OUTPUT)",
                     gr->ninst, cap, GROUP_OUTPUT_FACTOR);
            free(text);
            log_error(COMP_TASK, "Task '%s' failed: %s", name, msg);
            engine__task_finalize(eng, ex, g, TASK_FAILED, msg);
            ev.task_status = TASK_FAILED;
            ev.error = ex->runs[g].error;
        } else {
            free(gr->output);
            gr->output = text;
            log_info(COMP_TASK, "Task '%s' succeeded: %zu instance%s in %s", name, gr->ninst,
                     gr->ninst == 1 ? "" : "s", dur);
            engine__task_finalize(eng, ex, g, TASK_SUCCEEDED, NULL);
            ev.task_status = TASK_SUCCEEDED;
        }
    }
    engine__task_event(eng, ex, &ev);
}

void engine__group_step(struct engine *eng, struct exec *ex, size_t g, enum task_status st)
{
    struct trun *gr = &ex->runs[g];

    if (task_status_is_final(gr->status) || !gr->expanded)
        return; /* the group was ended first (cancel, timeout) */
    gr->inst_final++;
    if (gr->inst_active > 0)
        gr->inst_active--;
    if (status_is_bad(st))
        gr->inst_bad++;
    if (gr->inst_final >= gr->ninst)
        group_complete(eng, ex, g);
    else if (ex->status == EXEC_RUNNING)
        group_fill(eng, ex, g);
}

/* The items of group `g`: a new array, or NULL with a message. */
static json_t *group_items(const struct exec *ex, size_t g, char *msg, size_t msglen)
{
    const struct dag_task *t = &ex->wf->tasks[g];
    struct err err = ERR_INIT;
    json_t *items = NULL;

    if (t->for_each_json) {
        items = json_loads(t->for_each_json, JSON_DECODE_ANY, NULL);
    } else {
        json_t *ctx = engine__render_ctx(ex, g);
        int rc = engine__eval_template(t->for_each, ctx, &items, &err);
        json_decref(ctx);
        if (rc) {
            snprintf(msg, msglen, "cannot evaluate its forEach: %.400s", err.msg);
            return NULL;
        }
    }
    if (!json_is_array(items)) {
        snprintf(msg, msglen, "its forEach %.200s is %s, not a list", t->for_each,
                 json_is_object(items)   ? "an object"
                 : json_is_string(items) ? "a string"
                 : json_is_null(items)   ? "null"
                                         : "a scalar");
        json_decref(items);
        return NULL;
    }
    if (json_array_size(items) > DAG_MAX_ITEMS) {
        snprintf(msg, msglen, "its forEach has %zu items, more than the limit of %d",
                 json_array_size(items), DAG_MAX_ITEMS);
        json_decref(items);
        return NULL;
    }
    return items;
}

void engine__group_start(struct engine *eng, struct exec *ex, size_t g)
{
    const struct dag_task *t = &ex->wf->tasks[g];
    struct trun *gr = &ex->runs[g];
    int64_t now = clock_now_ms();
    char msg[600];
    json_t *items;
    size_t n;

    if (gr->expanded) {
        /* Retried: its failed instances were reset to pending. */
        engine__run_move(eng, ex, g, TASK_RUNNING);
        gr->inst_next = 0;
        gr->inst_active = 0;
        group_fill(eng, ex, g);
        if (gr->inst_final >= gr->ninst)
            group_complete(eng, ex, g);
        return;
    }
    items = group_items(ex, g, msg, sizeof(msg));
    if (!items) {
        log_error(COMP_TASK, "Task '%s' failed: %s", t->name, msg);
        engine__task_finalize(eng, ex, g, TASK_FAILED, msg);
        return;
    }
    n = json_array_size(items);
    XGROW(ex->runs, ex->runs_alloc, ex->nruns + n);
    gr = &ex->runs[g]; /* moved */
    gr->expanded = 1;
    gr->first = ex->nruns;
    gr->ninst = n;
    gr->inst_next = gr->inst_final = gr->inst_bad = gr->inst_active = 0;
    engine__run_move(eng, ex, g, TASK_RUNNING);
    gr->started_at = now;
    for (size_t k = 0; k < n; k++) {
        struct trun *r = &ex->runs[ex->nruns + k];
        memset(r, 0, sizeof(*r)); /* pending */
        r->group = g;
        r->item_index = (int)k;
        r->item = json_dumps(json_array_get(items, k), JSON_COMPACT | JSON_ENCODE_ANY);
        r->name = xasprintf("%s[%zu]", t->name, k);
        r->is_new = 1;
    }
    ex->nruns += n;
    for (size_t k = ex->nruns - n; k < ex->nruns; k++)
        engine__run_touch(eng, ex, k); /* inserted by the next commit */
    json_decref(items);
    if (t->max_parallel > 0 && (size_t)t->max_parallel < n)
        log_info(COMP_TASK, "Task '%s' fans out over %zu items, %d at a time", t->name, n,
                 t->max_parallel);
    else
        log_info(COMP_TASK, "Task '%s' fans out over %zu item%s", t->name, n, n == 1 ? "" : "s");
    if (n == 0) {
        group_complete(eng, ex, g);
        return;
    }
    group_fill(eng, ex, g);
}

/*
 * After a restart: rebuild the groups from the instance rows read back
 * (runs[i].group and item set for each instance, in order of idx).
 */
void engine__groups_restore(struct exec *ex)
{
    for (size_t k = ex->wf->ntasks; k < ex->nruns; k++) {
        struct trun *r = &ex->runs[k];
        struct trun *gr;
        if (r->group >= ex->wf->ntasks)
            continue;
        gr = &ex->runs[r->group];
        if (!gr->expanded) {
            gr->expanded = 1;
            gr->first = k;
            gr->ninst = 0;
            gr->inst_next = (size_t)-1;
        }
        gr->ninst++;
        if (task_status_is_final(r->status)) {
            gr->inst_final++;
            if (status_is_bad(r->status))
                gr->inst_bad++;
        } else if (r->status == TASK_PENDING) {
            if (gr->inst_next == (size_t)-1)
                gr->inst_next = k - gr->first;
        } else {
            gr->inst_active++;
        }
    }
    for (size_t g = 0; g < ex->wf->ntasks; g++) {
        struct trun *gr = &ex->runs[g];
        if (gr->expanded && gr->inst_next == (size_t)-1)
            gr->inst_next = gr->ninst;
    }
}

void engine__group_close(struct engine *eng, struct exec *ex, size_t g, enum task_status st)
{
    struct trun *gr = &ex->runs[g];
    int64_t now = clock_now_ms();

    if (g >= ex->wf->ntasks || !gr->expanded)
        return;
    if (st == TASK_SUCCEEDED || st == TASK_FAILED || st == TASK_TIMED_OUT)
        st = TASK_CANCELLED; /* not the group's own verdict: its items never ran */
    for (size_t k = gr->first; k < gr->first + gr->ninst; k++) {
        struct trun *r = &ex->runs[k];
        if (r->status != TASK_PENDING && r->status != TASK_QUEUED)
            continue; /* final, or running: its own end comes */
        engine__run_move(eng, ex, k, st);
        r->finished_at = now;
        engine__set_str(&r->error, st == TASK_SKIPPED ? "skipped: its task was skipped"
                                 : st == TASK_UPSTREAM_FAILED ? "upstream task failed"
                                                              : "cancelled: its task ended");
        gr->inst_final++;
    }
}

const struct group_ops engine__group_ops = {
    .step = engine__group_step,
    .close = engine__group_close,
};

/* After a restart: a running group goes on (or ends, if all its instances did). */
void engine__group_resume(struct engine *eng, struct exec *ex, size_t g)
{
    struct trun *gr = &ex->runs[g];
    if (!gr->expanded || gr->status != TASK_RUNNING)
        return;
    if (gr->inst_final >= gr->ninst)
        group_complete(eng, ex, g);
    else
        group_fill(eng, ex, g);
}
