/*
 * exec.c - the life of an execution and of its task runs, below the loop:
 * made (engine__exec_create, or rebuilt by recovery.c), linked on the
 * engine's lists, its runs made ready, finalized and their ends propagated
 * to their dependents, ended early (engine__exec_abort) or once all its runs
 * are final, and freed.
 *
 * Part of the engine's core (docs/internals/engine.md, "Files, and who calls
 * whom"): every subsystem calls it by name; it reaches a subsystem only
 * through the tables the subsystem gives (the kind table, eng->group_ops,
 * eng->child_ops, eng->node_ops), never by a subsystem's function's name.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "commit.h"
#include "engine_internal.h"
#include "exec.h"
#include "kind.h"
#include "render.h"

#include "base/banned.h"

static void notify(struct engine *eng, const struct engine_event *ev)
{
    if (eng->observer)
        eng->observer(eng->observer_arg, ev);
}

void engine__set_str(char **dst, const char *src)
{
    free(*dst);
    *dst = src ? xstrdup(src) : NULL;
}

static void exec_progress(const struct exec *ex, struct engine_event *ev)
{
    ev->exec_id = ex->id;
    ev->tasks_total = ex->nruns;
    ev->tasks_done = ex->nfinal;
    ev->tasks_running = ex->nrunning;
}

/* ------------------------------------------------------------------ executions */

static void exec_free(struct exec *ex)
{
    if (!ex)
        return;
    for (size_t i = 0; ex->runs && i < ex->nruns; i++) {
        free(ex->runs[i].error);
        free(ex->runs[i].output);
        free(ex->runs[i].item);
        free(ex->runs[i].name);
    }
    free(ex->runs);
    free(ex->drun);
    free(ex->parent_id);
    json_decref(ex->ctx);
    for (int q = 0; q < 3; q++)
        free(ex->ready[q].v);
    free(ex->params);
    free(ex->error);
    free(ex->idem_key);
    free(ex->schedule_id);
    free(ex->schedule_name);
    free(ex->scheduled_for_text);
    engine__strv_free(ex->base_env);
    workflow_free(ex->wf);
    free(ex);
}

/* ------------------------------------------------------------------ lists of executions */

static struct exec_link *exec_link_of(struct exec *ex, int list)
{
    return list == EXEC_LIST_DONE ? &ex->done : &ex->visit;
}

void engine__exec_list_remove(struct exec_queue *l, struct exec *ex, int list)
{
    struct exec_link *k = exec_link_of(ex, list);
    if (k->prev)
        exec_link_of(k->prev, list)->next = k->next;
    else
        l->head = k->next;
    if (k->next)
        exec_link_of(k->next, list)->prev = k->prev;
    else
        l->tail = k->prev;
    k->prev = k->next = NULL;
    k->on = 0;
}

void engine__exec_list_append(struct exec_queue *l, struct exec *ex, int list)
{
    struct exec_link *k = exec_link_of(ex, list);
    k->prev = l->tail;
    k->next = NULL;
    if (l->tail)
        exec_link_of(l->tail, list)->next = ex;
    else
        l->head = ex;
    l->tail = ex;
    k->on = list;
}

struct exec *engine__exec_list_pop(struct exec_queue *l, int list)
{
    struct exec *ex = l->head;
    if (ex)
        engine__exec_list_remove(l, ex, list);
    return ex;
}

void engine__exec_visit(struct engine *eng, struct exec *ex)
{
    if (ex->visit.on == EXEC_LIST_VISIT)
        return;
    if (ex->visit.on == EXEC_LIST_SLOT_WAIT)
        engine__exec_list_remove(&eng->slot_wait, ex, EXEC_LIST_SLOT_WAIT);
    engine__exec_list_append(&eng->visit, ex, EXEC_LIST_VISIT);
}

void engine__exec_done(struct engine *eng, struct exec *ex)
{
    if (!ex->done.on)
        engine__exec_list_append(&eng->done, ex, EXEC_LIST_DONE);
}

/* A new execution on eng->execs: dispatch looks at it in this turn. */
static void exec_link_in(struct engine *eng, struct exec *ex)
{
    ex->prev = NULL;
    ex->next = eng->execs;
    if (eng->execs)
        eng->execs->prev = ex;
    eng->execs = ex;
    eng->nexecs++;
    engine__exec_visit(eng, ex);
}

/* Off every list of the engine, before exec_free. */
static void exec_unlink(struct engine *eng, struct exec *ex)
{
    if (ex->prev)
        ex->prev->next = ex->next;
    else if (eng->execs == ex)
        eng->execs = ex->next;
    if (ex->next)
        ex->next->prev = ex->prev;
    ex->next = ex->prev = NULL;
    eng->nexecs--;
    if (ex->visit.on == EXEC_LIST_VISIT)
        engine__exec_list_remove(&eng->visit, ex, EXEC_LIST_VISIT);
    else if (ex->visit.on == EXEC_LIST_SLOT_WAIT)
        engine__exec_list_remove(&eng->slot_wait, ex, EXEC_LIST_SLOT_WAIT);
    if (ex->done.on)
        engine__exec_list_remove(&eng->done, ex, EXEC_LIST_DONE);
    for (int q = 0; q < 3; q++)
        eng->nready -= ex->ready[q].n - ex->ready[q].head;
}

static struct exec *exec_alloc(struct workflow *wf, const char *params)
{
    struct exec *ex = xcalloc(1, sizeof(*ex));
    json_t *pj = json_loads(params, 0, NULL);

    ex->gen = engine__exec_gen_next();
    ex->wf = wf;
    ex->params = xstrdup(params);
    ex->runs_alloc = wf->ntasks ? wf->ntasks : 1;
    ex->runs = xcalloc(ex->runs_alloc, sizeof(*ex->runs));
    ex->nruns = wf->ntasks;
    ex->base_env = engine__base_env(wf, pj);
    json_decref(pj);
    for (size_t i = 0; i < wf->ntasks; i++) {
        ex->runs[i].remaining = (int)wf->tasks[i].ndeps;
        ex->runs[i].group = (size_t)-1;
    }
    return ex;
}

/* Which ready FIFO run `idx` waits in: its kind's (a command needs a process
 * slot); a forEach task before its instances exist needs none. */
static int ready_queue_of(const struct exec *ex, size_t idx)
{
    const struct dag_task *t = engine__task(ex, idx);
    if (idx < ex->wf->ntasks && engine__is_group(t))
        return KIND_QUEUE_FREE;
    return (int)engine__kind(t)->queue;
}

static void ready_push_raw(struct exec *ex, size_t idx)
{
    struct trun *r = &ex->runs[idx];
    struct fifo *f = &ex->ready[ready_queue_of(ex, idx)];
    if (r->queued_in_ready)
        return;
    if (f->head > 0 && f->head == f->n)
        f->head = f->n = 0;
    XGROW(f->v, f->alloc, f->n + 1);
    f->v[f->n++] = idx;
    r->queued_in_ready = 1;
    r->ready_at = clock_now_ms();
}

/* Arm a timer of attempt `attempt` of run `idx` of `ex`, `delay_ms` from now
 * (a negative delay: at once). */
static void timer_for_run(struct engine *eng, enum timer_kind kind, struct exec *ex, size_t idx,
                          int attempt, int64_t delay_ms)
{
    struct timer tm;
    memset(&tm, 0, sizeof(tm));
    tm.at = clock_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    tm.kind = kind;
    tm.ex = ex;
    tm.gen = ex->gen;
    tm.idx = idx;
    tm.attempt = attempt;
    engine__timer_add(&eng->timers, &tm);
}

/* Arm timer `timer_kind` of the current attempt of run `idx` (kind.h). */
void engine__attempt_timer(struct engine *eng, int timer_kind, struct exec *ex, size_t idx,
                           int64_t delay_ms)
{
    timer_for_run(eng, (enum timer_kind)timer_kind, ex, idx, ex->runs[idx].attempt, delay_ms);
}

/* Put a queued task on the ready list; with maxQueued, watch how long it waits. */
void engine__ready_push(struct engine *eng, struct exec *ex, size_t idx)
{
    struct trun *r = &ex->runs[idx];
    if (r->queued_in_ready)
        return;
    ready_push_raw(ex, idx);
    eng->nready++;
    engine__exec_visit(eng, ex);
    if (ex->wf->max_queued_ms > 0) {
        timer_for_run(eng, TIMER_MAX_QUEUED, ex, idx, r->attempt, ex->wf->max_queued_ms);
    }
}

static int task_is_bad(enum task_status s)
{
    return s == TASK_FAILED || s == TASK_UPSTREAM_FAILED || s == TASK_TIMED_OUT ||
           s == TASK_CANCELLED;
}

static void propagate(struct engine *eng, struct exec *ex, size_t idx);

/* Move task `idx` to a final status. */
static void task_finalize(struct engine *eng, struct exec *ex, size_t idx, enum task_status st,
                          const char *error)
{
    struct trun *r = &ex->runs[idx];
    if (task_status_is_final(r->status))
        return;
    engine__run_move(eng, ex, idx, st);
    r->finished_at = clock_now_ms();
    engine__set_str(&r->error, error);
    if (idx < ex->wf->ntasks && st == TASK_SUCCEEDED && ex->ctx) {
        json_decref(ex->ctx); /* its output is new to the placeholders */
        ex->ctx = NULL;
    }
    if (idx >= ex->wf->ntasks) {
        eng->group_ops->step(eng, ex, r->group, st); /* an instance: its group decides */
    } else {
        eng->group_ops->close(eng, ex, idx, st); /* a group ending early: its waiting items too */
        propagate(eng, ex, idx);
    }
}

void engine__task_finalize(struct engine *eng, struct exec *ex, size_t idx, enum task_status st,
                           const char *error)
{
    task_finalize(eng, ex, idx, st, error);
}

void engine__task_event(struct engine *eng, struct exec *ex, struct engine_event *ev)
{
    exec_progress(ex, ev);
    notify(eng, ev);
}

/* Decide what becomes of task `c` now that all its dependencies are final. */
static enum task_status decide_run_if(const struct exec *ex, size_t c)
{
    const struct dag_task *t = engine__task(ex, c);
    int any_bad = 0, all_ok = 1, any_skipped = 0;

    for (size_t i = 0; i < t->ndeps; i++) {
        enum task_status s = ex->runs[t->deps[i]].status;
        if (task_is_bad(s))
            any_bad = 1;
        if (s != TASK_SUCCEEDED)
            all_ok = 0;
        if (s == TASK_SKIPPED)
            any_skipped = 1;
    }
    switch (t->run_if) {
    case RUN_IF_ALL_DONE:
        return TASK_QUEUED;
    case RUN_IF_ANY_FAILED:
        return any_bad ? TASK_QUEUED : TASK_SKIPPED;
    case RUN_IF_ALL_SUCCEEDED:
        break;
    }
    if (all_ok)
        return TASK_QUEUED;
    if (any_bad)
        return TASK_UPSTREAM_FAILED;
    /* Some were skipped, the rest succeeded: a task that depends only on
     * skipped tasks is skipped too; one with a dependency that ran, runs. */
    for (size_t i = 0; i < t->ndeps; i++)
        if (ex->runs[t->deps[i]].status == TASK_SUCCEEDED)
            return any_skipped ? TASK_QUEUED : TASK_SKIPPED;
    return TASK_SKIPPED;
}

static void task_make_ready(struct engine *eng, struct exec *ex, size_t idx)
{
    struct trun *r = &ex->runs[idx];
    engine__run_move(eng, ex, idx, TASK_QUEUED);
    r->available_at = 0;
    engine__ready_push(eng, ex, idx);
}

void engine__task_make_ready(struct engine *eng, struct exec *ex, size_t idx)
{
    task_make_ready(eng, ex, idx);
}

/* Task `idx` became final: update its dependents. Iterative, so a 100000-task
 * chain of skipped or upstream_failed tasks cannot overflow the stack. */
static void propagate(struct engine *eng, struct exec *ex, size_t idx)
{
    size_t *stack = NULL, n = 0, alloc = 0;

    XGROW(stack, alloc, 1);
    stack[n++] = idx;
    while (n) {
        size_t cur = stack[--n];
        const struct dag_task *t = engine__task(ex, cur);
        for (size_t i = 0; i < t->nchildren; i++) {
            size_t c = t->children[i];
            struct trun *cr = &ex->runs[c];
            enum task_status d;
            if (cr->status != TASK_PENDING || --cr->remaining > 0)
                continue;
            /* An aborted execution (cancel, timeout) starts nothing new. */
            d = ex->status == EXEC_RUNNING ? decide_run_if(ex, c) : TASK_CANCELLED;
            if (d == TASK_QUEUED) {
                task_make_ready(eng, ex, c);
                continue;
            }
            engine__run_move(eng, ex, c, d);
            cr->finished_at = clock_now_ms();
            if (d == TASK_UPSTREAM_FAILED)
                engine__set_str(&cr->error, "upstream task failed");
            else if (d == TASK_CANCELLED)
                engine__set_str(&cr->error, ex->error ? ex->error : "cancelled");
            eng->group_ops->close(eng, ex, c, d); /* a retried group's items */
            log_debug(COMP_TASK, "Task '%s' %s", engine__task_name(ex, c), task_status_name(d));
            XGROW(stack, alloc, n + 1);
            stack[n++] = c;
        }
    }
    free(stack);
}

void engine__exec_check_done(struct engine *eng, struct exec *ex)
{
    struct engine_event ev;
    int bad = 0;
    char dur[96];

    if (exec_status_is_final(ex->status) && ex->finished_reported)
        return;
    if (ex->nfinal < ex->nruns)
        return;
    if (!exec_status_is_final(ex->status)) {
        for (size_t i = 0; i < ex->nruns; i++)
            if (task_is_bad(ex->runs[i].status))
                bad = 1;
        engine__exec_move(eng, ex, bad ? EXEC_FAILED : EXEC_SUCCEEDED);
        if (bad && !ex->error)
            ex->error = xstrdup("one or more tasks failed");
    }
    ex->finished_at = clock_now_ms();
    engine__exec_touch(eng, ex);
    ex->finished_reported = 1;
    engine__metrics_exec_finished(eng, ex);
    engine__exec_done(eng, ex);
    clock_fmt_duration(ex->finished_at - ex->started_at, dur, sizeof(dur));
    if (ex->retried_at) {
        /* Since the first start, and the retry's own time. */
        char own[32];
        size_t l = strlen(dur);
        clock_fmt_duration(ex->finished_at - ex->retried_at, own, sizeof(own));
        snprintf(dur + l, sizeof(dur) - l, " (this retry: %s)", own);
    }
    if (ex->status == EXEC_SUCCEEDED)
        log_info(COMP, "Execution %s of '%s' succeeded in %s", ex->id, ex->wf->name, dur);
    else
        log_warn(COMP, "Execution %s of '%s' %s in %s%s%s", ex->id, ex->wf->name,
                 exec_status_name(ex->status), dur, ex->error ? ": " : "",
                 ex->error ? ex->error : "");
    eng->child_ops->done(eng, ex); /* a child: its parent's task ends with it */
    memset(&ev, 0, sizeof(ev));
    ev.type = ENGINE_EV_EXEC_FINISHED;
    ev.exec_status = ex->status;
    ev.duration_ms = ex->finished_at - ex->started_at;
    ev.error = ex->error;
    exec_progress(ex, &ev);
    notify(eng, &ev);
}

/* End the execution early (cancel or timeout): running tasks get `run_status`,
 * the others are cancelled. */
void engine__exec_abort(struct engine *eng, struct exec *ex, enum exec_status st,
                       const char *reason)
{
    enum attempt_status ast = st == EXEC_TIMED_OUT ? ATTEMPT_TIMED_OUT : ATTEMPT_CANCELLED;

    if (exec_status_is_final(ex->status))
        return;
    engine__exec_move(eng, ex, st);
    engine__set_str(&ex->error, reason);
    for (size_t i = 0; i < ex->nruns; i++) {
        struct trun *r = &ex->runs[i];
        if (task_status_is_final(r->status))
            continue;
        if (r->status == TASK_RUNNING && r->expanded) {
            /* A group: it ends now; its instances follow in this loop. */
            task_finalize(eng, ex, i, st == EXEC_TIMED_OUT ? TASK_TIMED_OUT : TASK_CANCELLED,
                          reason);
            continue;
        }
        if (r->status == TASK_RUNNING) {
            const struct task_kind *k = engine__kind(engine__task(ex, i));
            if (k->cancel)
                k->cancel(eng, ex, i, ast, reason);
            else
                engine__attempt_end(eng, ex, i, ast, -1, 0, reason, 0, 0, 0, 0);
        } else {
            r->queued_in_ready = 0;
            task_finalize(eng, ex, i, TASK_CANCELLED, reason);
        }
    }
    engine__exec_check_done(eng, ex);
}

static void exec_start_deadline(struct engine *eng, struct exec *ex, int64_t elapsed_ms)
{
    struct timer tm;
    memset(&tm, 0, sizeof(tm));
    tm.ex = ex;
    tm.gen = ex->gen;
    if (ex->wf->timeout_ms > 0) {
        tm.at = clock_mono_ms() + ex->wf->timeout_ms - elapsed_ms;
        tm.kind = TIMER_EXEC_DEADLINE;
        engine__timer_add(&eng->timers, &tm);
    }
    if (ex->wf->max_running_ms > 0) {
        tm.at = clock_mono_ms() + ex->wf->max_running_ms - elapsed_ms;
        tm.kind = TIMER_MAX_RUNNING;
        engine__timer_add(&eng->timers, &tm);
    }
}

/*
 * Create a new execution of `wf` (takes ownership) at `version` in memory,
 * linked and ready to be inserted by the next commit. Returns 0 and *out, or
 * an error (params, ownership).
 */
int engine__exec_create(struct engine *eng, struct workflow *wf, int version,
                       const char *params_json, struct exec **out, struct err *err)
{
    json_t *params;
    char *params_text;
    struct exec *ex;

    *out = NULL;
    params = engine__resolve_params(wf, params_json, err);
    if (!params) {
        workflow_free(wf);
        return ERR_INVALID;
    }
    params_text = json_dumps(params, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(params);
    ex = exec_alloc(wf, params_text ? params_text : "{}");
    free(params_text);
    id_new("ex_", ex->id);
    /* Claimed by the commit that makes it visible to other processes
     * (commit.c): a noop execution that ends in its first turn never needs
     * the claim, whose symlink(2) was a third of the engine's time under a
     * flood of submissions (bench/README.md). */
    ex->unclaimed = eng->cfg.claim != NULL;
    ex->version = version;
    engine__exec_move(eng, ex, EXEC_RUNNING); /* listed: the next commit inserts it */
    ex->created_at = ex->started_at = clock_now_ms();
    ex->tasks_new = 1;
    if (eng->node_ops->busy(eng)) {
        /* No free slot here: queue it for any node and wake them. */
        engine__exec_life(eng, ex, EXEC_LIFE_HANDOFF);
        eng->node_ops->handoff(eng);
    }
    for (size_t i = 0; i < wf->ntasks; i++) {
        if (wf->tasks[i].ndeps == 0) {
            engine__run_move(eng, ex, i, TASK_QUEUED);
            engine__ready_push(eng, ex, i);
        }
    }
    exec_link_in(eng, ex);
    if (engine__exec_handoff(ex))
        engine__exec_done(eng, ex); /* dropped once inserted */
    exec_start_deadline(eng, ex, 0);
    engine__metrics_exec_started(eng, ex);
    *out = ex;
    return 0;
}


void engine__log_started(const struct exec *ex)
{
    if (engine__exec_handoff(ex))
        log_info(COMP, "Execution %s of '%s' (version %d) queued for any node (no free slot "
                 "here): %zu task%s", ex->id, ex->wf->name, ex->version, ex->wf->ntasks,
                 ex->wf->ntasks == 1 ? "" : "s");
    else
        log_info(COMP, "Execution %s of '%s' (version %d) started: %zu task%s", ex->id,
                 ex->wf->name, ex->version, ex->wf->ntasks, ex->wf->ntasks == 1 ? "" : "s");
}

/* ------------------------------------------------------------------ for recovery.c */

struct exec *engine__exec_alloc(struct workflow *wf, const char *params)
{
    return exec_alloc(wf, params);
}

void engine__exec_free(struct exec *ex)
{
    exec_free(ex);
}

void engine__exec_link_in(struct engine *eng, struct exec *ex)
{
    exec_link_in(eng, ex);
}

void engine__exec_unlink(struct engine *eng, struct exec *ex)
{
    exec_unlink(eng, ex);
}

void engine__exec_start_deadline(struct engine *eng, struct exec *ex, int64_t elapsed_ms)
{
    exec_start_deadline(eng, ex, elapsed_ms);
}

void engine__run_resume(struct engine *eng, struct exec *ex, size_t idx, int64_t now)
{
    struct trun *r = &ex->runs[idx];

    if (r->status == TASK_QUEUED) {
        if (r->available_at > now)
            timer_for_run(eng, TIMER_RETRY, ex, idx, r->attempt, r->available_at - now);
        else
            engine__ready_push(eng, ex, idx);
        return;
    }
    {
        enum task_status dd = decide_run_if(ex, idx);
        if (dd == TASK_QUEUED) {
            task_make_ready(eng, ex, idx);
            return;
        }
        engine__run_move(eng, ex, idx, dd);
        r->finished_at = now;
        eng->group_ops->close(eng, ex, idx, dd);
        propagate(eng, ex, idx);
    }
}
