/*
 * subflow.c - workflow tasks: a task that runs another registered workflow
 * as a child execution.
 *
 * Each attempt of a workflow task creates one child execution of the newest
 * version of the named workflow, with the task's params (placeholders
 * filled in; a string that is one placeholder keeps the value's type),
 * inserted with the same turn that records the attempt. The child is an
 * ordinary execution (its own tasks, logs and API entry) that names its
 * parent (parentId) and is one level deeper. It runs on the same node.
 *
 * When the child ends, the attempt ends with it: succeeded, with the
 * child's outputs as the task's output (the workflow's "outputs", filled in
 * from the child's tasks; without them, the outputs of its tasks by name);
 * or failed, with the child's error, and then retried per the task's policy
 * with a new child. Cancelling the parent (or its timeout, or the task's
 * own) cancels the child. A parent whose child runs on another node (after a
 * failover) learns the child's end from the store at its heartbeats.
 *
 * Recursion: a workflow naming itself is a definition error (dag_parse); a
 * chain through other workflows is found when a workflow is registered
 * (engine_check_subflows); a depth limit stops anything that slips through
 * (definitions changed later).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "engine_internal.h"
#include "kind.h"
#include "recovery.h"
#include "render.h"
#include "subflow.h"

#include "base/banned.h"

#define MAX_DEPTH 10      /* child executions nested deeper than this fail */
#define CHECK_MAX_DEPTH 32 /* registration: how deep the chain check looks */
#define SUBFLOW_POLL_MS 2000 /* how often a task whose child runs elsewhere looks at it */

/* The state of workflow tasks (subflow.c's), behind eng->subflow. */
struct subflow_state {
    int check;       /* a workflow task waits for a child not here: look */
    int64_t poll_at; /* monotonic ms of the next look, 0 = none */
    /* Acted on after the turn's commit: children that ended (their parent's
     * task ends with them), children on other nodes to cancel. */
    char (*child_ends)[ID_MAX];
    size_t nchild_ends, child_ends_alloc;
    char (*child_cancels)[ID_MAX];
    size_t nchild_cancels, child_cancels_alloc;
};

struct subflow_state *engine__subflow_new(void)
{
    return xcalloc(1, sizeof(struct subflow_state));
}

void engine__subflow_want_check(struct engine *eng)
{
    eng->subflow->check = 1;
}

int engine__subflow_poll_due(const struct engine *eng)
{
    return eng->subflow->check ||
           (eng->subflow->poll_at && clock_mono_ms() >= eng->subflow->poll_at);
}

int64_t engine__subflow_poll_at(const struct engine *eng)
{
    return eng->subflow->poll_at;
}

/* The outputs of a finished child: its workflow's "outputs" filled in, or
 * the outputs of its tasks by name. New text, or NULL with err. */
static char *child_outputs(const struct workflow *wf, const json_t *ctx, struct err *err)
{
    json_t *out;
    char *text;

    if (wf->outputs_json) {
        json_t *spec = json_loads(wf->outputs_json, 0, NULL);
        const char *key;
        json_t *v;
        out = json_object();
        json_object_foreach(spec, key, v)
        {
            json_t *val = NULL;
            if (engine__eval_template(json_string_value(v), ctx, &val, err) != 0) {
                json_decref(spec);
                json_decref(out);
                return NULL;
            }
            json_object_set_new(out, key, val);
        }
        json_decref(spec);
    } else {
        out = json_object();
        json_t *tasks = json_object_get(ctx, "tasks");
        const char *key;
        json_t *v;
        json_object_foreach(tasks, key, v)
            json_object_set(out, key, json_object_get(v, "output"));
    }
    text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    return text;
}

/* The placeholders' context of a finished execution read from the store. */
static json_t *detail_ctx(const struct exec_detail *d, size_t ntasks)
{
    json_t *ctx = json_object(), *tasks = json_object(), *exo = json_object();
    json_t *params = json_loads(d->exec.params ? d->exec.params : "{}", 0, NULL);

    json_object_set_new(ctx, "params", params ? params : json_object());
    for (size_t i = 0; i < d->ntasks && i < ntasks; i++) {
        const struct task_run_row *t = &d->tasks[i];
        json_t *out = t->output ? json_loads(t->output, JSON_DECODE_ANY, NULL) : NULL;
        json_t *to;
        if (!out)
            continue;
        to = json_object();
        json_object_set_new(to, "output", out);
        json_object_set_new(tasks, t->name, to);
    }
    json_object_set_new(ctx, "tasks", tasks);
    json_object_set_new(exo, "id", json_string(d->exec.id));
    json_object_set_new(ctx, "execution", exo);
    json_object_set_new(ctx, "scheduledFor", json_null());
    return ctx;
}

/* The current attempt of workflow task `idx` of `ex` ends with its child. */
static void apply(struct engine *eng, struct exec *ex, size_t idx, const char *child_id,
                  enum exec_status st, const char *child_error, char *outputs,
                  const char *out_error)
{
    struct trun *r = &ex->runs[idx];
    char msg[600];

    if (r->status != TASK_RUNNING || strcmp(r->child_id, child_id) != 0) {
        free(outputs);
        return;
    }
    eng->work_now = 1;
    if (st == EXEC_SUCCEEDED && outputs) {
        engine__attempt_succeed(eng, ex, idx, outputs);
        return;
    }
    free(outputs);
    if (st == EXEC_SUCCEEDED)
        snprintf(msg, sizeof(msg), "child execution %s succeeded, but its outputs cannot be "
                 "filled in: %.400s", child_id, out_error ? out_error : "?");
    else
        snprintf(msg, sizeof(msg), "child execution %s %s%s%.400s", child_id,
                 exec_status_name(st), child_error ? ": " : "", child_error ? child_error : "");
    engine__attempt_fail(eng, ex, idx,
                         st == EXEC_TIMED_OUT ? ATTEMPT_TIMED_OUT : ATTEMPT_FAILED, msg,
                         st != EXEC_SUCCEEDED);
}

/* A child ended in this turn: its parent's task ends with it once the child's
 * final state is committed (a node fenced out of the child must not end the
 * parent on a result the store never got). */
void engine__subflow_child_done(struct engine *eng, struct exec *child)
{
    if (!child->parent_id)
        return;
    XGROW(eng->subflow->child_ends, eng->subflow->child_ends_alloc, eng->subflow->nchild_ends + 1);
    memcpy(eng->subflow->child_ends[eng->subflow->nchild_ends++], child->id, ID_MAX);
}

const struct child_ops engine__child_ops = {
    .done = engine__subflow_child_done,
};

static void child_end_apply(struct engine *eng, struct exec *child)
{
    struct exec *parent;
    struct err err = ERR_INIT;
    char *outputs = NULL;

    if (!child->parent_id)
        return;
    parent = engine__exec_find(eng, child->parent_id);
    if (!parent || engine__exec_lost(parent) || child->parent_task_idx < 0 ||
        (size_t)child->parent_task_idx >= parent->nruns)
        return; /* elsewhere: it reads the result from the store */
    if (child->status == EXEC_SUCCEEDED) {
        json_t *ctx = engine__render_ctx(child, (size_t)-1);
        outputs = child_outputs(child->wf, ctx, &err);
        json_decref(ctx);
    }
    apply(eng, parent, (size_t)child->parent_task_idx, child->id, child->status, child->error,
          outputs, err.msg);
}

/* Ask the child to stop: here, or (after the commit) through the store when
 * it runs on another node. */
static void cancel_child(struct engine *eng, const char *child_id, const char *why)
{
    struct exec *child = engine__exec_find(eng, child_id);

    if (child) {
        engine__exec_abort(eng, child, EXEC_CANCELLED, why);
        return;
    }
    XGROW(eng->subflow->child_cancels, eng->subflow->child_cancels_alloc,
          eng->subflow->nchild_cancels + 1);
    memcpy(eng->subflow->child_cancels[eng->subflow->nchild_cancels++], child_id, ID_MAX);
}

void engine__subflow_act(struct engine *eng)
{
    for (size_t i = 0; i < eng->subflow->nchild_ends; i++) {
        struct exec *child = engine__exec_find(eng, eng->subflow->child_ends[i]);
        if (child && exec_status_is_final(child->status))
            child_end_apply(eng, child);
    }
    eng->subflow->nchild_ends = 0;
    for (size_t i = 0; i < eng->subflow->nchild_cancels; i++) {
        struct err err = ERR_INIT;
        const char *id = eng->subflow->child_cancels[i];
        if (store_execution_request_cancel(eng->st, id, clock_now_ms(), &err) != 0 &&
            err.code != ERR_NOT_FOUND && err.code != ERR_CONFLICT)
            log_warn(COMP_TASK, "Cannot cancel child execution %s: %s", id, err.msg);
        else
            engine__node_notify(eng, NODE_NOTIFY_WORK);
    }
    eng->subflow->nchild_cancels = 0;
}

void engine__subflow_free(struct engine *eng)
{
    if (!eng->subflow)
        return;
    free(eng->subflow->child_ends);
    free(eng->subflow->child_cancels);
    free(eng->subflow);
    eng->subflow = NULL;
}

static void subflow_end(struct engine *eng, struct exec *ex, size_t idx, const char *why)
{
    char id[ID_MAX];
    memcpy(id, ex->runs[idx].child_id, ID_MAX);
    if (id[0])
        cancel_child(eng, id, why);
}

/* Render the params the task passes: placeholder strings become values. */
static char *child_params(const struct exec *ex, size_t idx, char *msg, size_t msglen)
{
    const struct dag_task *t = engine__task(ex, idx);
    json_t *params, *ctx;
    struct err err = ERR_INIT;
    char *text;

    if (!t->subflow.params_json)
        return xstrdup("{}");
    params = json_loads(t->subflow.params_json, 0, NULL);
    ctx = engine__render_ctx(ex, idx);
    if (engine__render_json(params, ctx, &err) != 0) {
        snprintf(msg, msglen, "cannot fill in its params: %.400s", err.msg);
        json_decref(params);
        json_decref(ctx);
        return NULL;
    }
    json_decref(ctx);
    text = json_dumps(params, JSON_COMPACT);
    json_decref(params);
    return text;
}

static void subflow_begin(struct engine *eng, struct exec *ex, size_t idx)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct trun *r = &ex->runs[idx];
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct exec *child = NULL;
    struct err err = ERR_INIT;
    char msg[600], *def = NULL, *params;
    int version = 0, rc;

    r->child_id[0] = '\0';
    if (ex->depth + 1 > MAX_DEPTH) {
        snprintf(msg, sizeof(msg), "child executions are nested more than %d deep (is workflow "
                 "'%s' calling itself through others?)", MAX_DEPTH, t->subflow.workflow);
        engine__attempt_fail(eng, ex, idx, ATTEMPT_FAILED, msg, 0);
        return;
    }
    params = child_params(ex, idx, msg, sizeof(msg));
    if (!params) {
        engine__attempt_fail(eng, ex, idx, ATTEMPT_FAILED, msg, 0);
        return;
    }
    rc = store_workflow_get(eng->st, t->subflow.workflow, 0, &def, &version, &err);
    if (rc == 0 && dag_parse(def, strlen(def), &wf, &probs) != 0)
        rc = err_set(&err, ERR_INVALID, "its definition no longer parses");
    dag_problems_release(&probs);
    free(def);
    if (rc == 0)
        rc = engine__exec_create(eng, wf, version, params, &child, &err); /* takes wf */
    else
        workflow_free(wf);
    free(params);
    if (rc) {
        snprintf(msg, sizeof(msg), "cannot start workflow '%s': %.400s", t->subflow.workflow,
                 err.msg);
        /* A missing workflow or bad params stay so; a store error may pass. */
        engine__attempt_fail(eng, ex, idx, ATTEMPT_FAILED, msg,
                             rc != ERR_INVALID && rc != ERR_NOT_FOUND);
        return;
    }
    if (child->life == EXEC_LIFE_HANDOFF)
        engine__exec_life(eng, child, EXEC_LIFE_NEW); /* a child runs where its parent does */
    child->parent_id = xstrdup(ex->id);
    child->parent_task_idx = (int)idx;
    child->depth = ex->depth + 1;
    memcpy(r->child_id, child->id, ID_MAX);
    log_info(COMP_TASK, "Task '%s' started: child execution %s of '%s' (attempt %d)",
             engine__task_name(ex, idx), child->id, child->wf->name, r->attempt);
    engine__log_started(child);
}

/* The workflow version execution `d` ran, parsed; NULL with err. With
 * `outputs_only`, also NULL (err unset) when its text has no "outputs" at all:
 * a large definition is not parsed for nothing at each read of an execution. */
static struct workflow *load_workflow(struct store *st, const struct exec_detail *d,
                                      int outputs_only, struct err *err)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    char *def = NULL;
    int version = 0;

    if (store_workflow_get(st, d->exec.workflow, d->exec.workflow_version, &def, &version,
                           err) == 0 &&
        (!outputs_only || strstr(def, "\"outputs\"")) &&
        dag_parse(def, strlen(def), &wf, &probs) != 0)
        err_set(err, ERR_INVALID, "the definition of '%s' version %d no longer parses",
                d->exec.workflow, d->exec.workflow_version);
    dag_problems_release(&probs);
    free(def);
    return wf;
}

int engine_exec_outputs(struct store *st, const struct exec_detail *d, char **out,
                        struct err *err)
{
    struct workflow *wf;
    int rc = 0;

    *out = NULL;
    if (d->exec.status != EXEC_SUCCEEDED)
        return 0;
    wf = load_workflow(st, d, 1, err);
    if (!wf)
        return err->code;
    if (wf->outputs_json) {
        json_t *ctx = detail_ctx(d, wf->ntasks);
        *out = child_outputs(wf, ctx, err);
        json_decref(ctx);
        if (!*out)
            rc = err->code ? err->code : ERR_INVALID;
    }
    workflow_free(wf);
    return rc;
}

/* Read the child of run `idx` from the store; apply its end if it ended.
 * Returns 1 if it has not ended. */
static int check_stored(struct engine *eng, struct exec *ex, size_t idx)
{
    struct trun *r = &ex->runs[idx];
    struct exec_detail *d = NULL;
    struct err err = ERR_INIT, oerr = ERR_INIT;
    char *outputs = NULL;
    char id[ID_MAX];

    memcpy(id, r->child_id, ID_MAX);
    if (store_execution_get(eng->st, id, &d, &err) != 0) {
        if (err.code == ERR_NOT_FOUND)
            apply(eng, ex, idx, id, EXEC_FAILED, "it is gone (deleted)", NULL, NULL);
        return 0;
    }
    if (!exec_status_is_final(d->exec.status)) {
        exec_detail_free(d);
        return 1;
    }
    if (d->exec.status == EXEC_SUCCEEDED) {
        struct workflow *wf = load_workflow(eng->st, d, 0, &oerr);
        if (wf) {
            json_t *ctx = detail_ctx(d, wf->ntasks);
            outputs = child_outputs(wf, ctx, &oerr);
            json_decref(ctx);
            workflow_free(wf);
        }
    }
    apply(eng, ex, idx, id, d->exec.status, d->exec.error, outputs, oerr.msg);
    exec_detail_free(d);
    return 0;
}

static void subflow_restore(struct engine *eng, struct exec *ex, size_t idx)
{
    struct trun *r = &ex->runs[idx];
    if (!r->child_id[0]) {
        /* Crashed before its child was recorded: nothing ran. */
        engine__attempt_fail(eng, ex, idx, ATTEMPT_LOST, "lost: its child execution was never "
                             "started", 1);
        return;
    }
    if (!engine__exec_find(eng, r->child_id))
        check_stored(eng, ex, idx);
}

/* ------------------------------------------------------------------ the workflow kind */

/* The child execution is inserted with this turn; the task's timeout runs
 * from now. */
static void workflow_begin(struct engine *eng, struct exec *ex, size_t idx, int offer)
{
    const struct dag_task *t = engine__task(ex, idx);
    (void)offer;

    subflow_begin(eng, ex, idx);
    eng->work_now = 1;
    if (t->timeout_ms > 0 && ex->runs[idx].status == TASK_RUNNING)
        engine__attempt_timer(eng, TIMER_TASK_TIMEOUT, ex, idx, t->timeout_ms);
}

/* The parent ends: its attempt first, then the child is cancelled. */
static void workflow_cancel(struct engine *eng, struct exec *ex, size_t idx,
                            enum attempt_status ast, const char *reason)
{
    engine__attempt_fail(eng, ex, idx, ast, reason, 0);
    subflow_end(eng, ex, idx, "cancelled: its parent execution ended");
}

static void workflow_timeout(struct engine *eng, struct exec *ex, size_t idx, const char *msg)
{
    engine__attempt_fail(eng, ex, idx, ATTEMPT_TIMED_OUT, msg, 1);
    subflow_end(eng, ex, idx, "cancelled: its parent task timed out");
}

/* Its child execution goes on: the task waits for it, with what is left of
 * its timeout. */
static void workflow_restore(struct engine *eng, struct exec *ex, size_t idx,
                             const struct attempt_row *last, int64_t now)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct trun *r = &ex->runs[idx];

    r->attempt_started_at = last && last->started_at ? last->started_at : r->started_at;
    if (t->timeout_ms > 0)
        engine__attempt_timer(eng, TIMER_TASK_TIMEOUT, ex, idx,
                              r->attempt_started_at + t->timeout_ms - now);
    subflow_restore(eng, ex, idx);
    engine__subflow_want_check(eng);
}

/* Its child execution runs. */
static int workflow_waits(const struct exec *ex, size_t idx)
{
    return ex->runs[idx].child_id[0] != '\0';
}

const struct task_kind engine__kind_workflow = {
    .name = "workflow",
    .queue = KIND_QUEUE_WAIT,
    .begin = workflow_begin,
    .cancel = workflow_cancel,
    .timeout = workflow_timeout,
    .restore = workflow_restore,
    .waits = workflow_waits,
};

void engine__subflow_poll(struct engine *eng)
{
    int waiting = 0;

    eng->subflow->check = 0;

    for (struct exec *ex = eng->execs; ex; ex = ex->next) {
        if (engine__exec_lost(ex) || ex->status != EXEC_RUNNING)
            continue;
        for (size_t i = 0; i < ex->nruns; i++) {
            struct trun *r = &ex->runs[i];
            char id[ID_MAX];
            struct err err = ERR_INIT;
            if (r->status != TASK_RUNNING || !r->child_id[0] ||
                engine__task(ex, i)->type != TASK_WORKFLOW ||
                engine__exec_find(eng, r->child_id))
                continue;
            memcpy(id, r->child_id, ID_MAX);
            /* Unfinished and not here: on one store, this process takes it
             * (orch resume of the parent alone); in a cluster, its owner runs
             * it, or the node that claims it after its owner died. */
            if (!check_stored(eng, ex, i))
                continue;
            if (!eng->cluster && engine__exec_take(eng, id, 0, &err) == 0)
                continue;
            if (!eng->cluster && err.code != ERR_CONFLICT)
                log_warn(COMP_TASK, "Task '%s': cannot resume its child execution %s: %s",
                         engine__task_name(ex, i), id, err.msg);
            waiting = 1; /* another process or node runs it: look again */
        }
    }
    eng->subflow->poll_at = waiting ? clock_mono_ms() + SUBFLOW_POLL_MS : 0;
}

/* ------------------------------------------------------------------ registration */

static void add_problem(struct dag_problems *probs, size_t ti, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_problem(struct dag_problems *probs, size_t ti, const char *fmt, ...)
{
    struct dag_problem *p;
    va_list ap;
    char buf[600];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    XGROW(probs->items, probs->alloc, probs->n + 1);
    p = &probs->items[probs->n++];
    memset(p, 0, sizeof(*p));
    p->path = xasprintf("$.tasks[%zu].workflow", ti);
    p->message = xstrdup(buf);
}

/* Does a chain of workflow tasks from `name` lead to `target`? The chain found is in *path. */
static int leads_to(struct store *st, const char *name, const char *target, int depth,
                    struct strbuf *path, struct err *err)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    char *def = NULL;
    int version, found = 0;

    if (depth > CHECK_MAX_DEPTH)
        return 0;
    if (store_workflow_get(st, name, 0, &def, &version, err) != 0)
        return 0;
    if (dag_parse(def, strlen(def), &wf, &probs) == 0) {
        for (size_t i = 0; i < wf->ntasks && !found; i++) {
            const char *callee = wf->tasks[i].subflow.workflow;
            size_t mark = path->len;
            if (!callee)
                continue;
            strbuf_addf(path, " -> %s", callee);
            if (!strcmp(callee, target) || leads_to(st, callee, target, depth + 1, path, err))
                found = 1;
            else
                path->buf[path->len = mark] = '\0';
        }
    }
    workflow_free(wf);
    dag_problems_release(&probs);
    free(def);
    return found;
}

int engine_check_subflows(struct store *st, const struct workflow *wf,
                          struct dag_problems *probs)
{
    size_t before = probs->n;

    for (size_t i = 0; i < wf->ntasks; i++) {
        const char *callee = wf->tasks[i].subflow.workflow;
        struct err err = ERR_INIT;
        struct strbuf path = STRBUF_INIT;
        char *def = NULL;
        int version;
        if (!callee || !strcmp(callee, wf->name))
            continue; /* the parser reports a workflow that calls itself */
        if (store_workflow_get(st, callee, 0, &def, &version, &err) != 0) {
            if (err.code == ERR_NOT_FOUND)
                add_problem(probs, i, "unknown workflow '%s' (register it first)", callee);
            else
                add_problem(probs, i, "cannot read workflow '%s': %s", callee, err.msg);
            continue;
        }
        free(def);
        strbuf_addf(&path, "%s -> %s", wf->name, callee);
        if (leads_to(st, callee, wf->name, 0, &path, &err))
            add_problem(probs, i, "workflow '%s' would run itself: %s (recursion)", wf->name,
                        path.buf);
        strbuf_release(&path);
    }
    return probs->n > before ? ERR_INVALID : 0;
}
