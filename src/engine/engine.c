/*
 * engine.c - the event loop and the execution state machine.
 *
 * One turn of engine_run():
 *   1. gather events: child exits (pidfd), output (pipes), timers, requests;
 *   2. compute the transitions in memory (advance/dispatch): a finished task
 *      records its attempt, its dependents whose last dependency finished
 *      become queued (or upstream_failed / skipped by runIf), noop tasks
 *      complete on the spot, and an execution whose tasks are all final ends;
 *   3. write every change of the turn in ONE transaction and commit;
 *   4. only then act: start the processes of the attempts begun in step 2,
 *      send signals, report to the observer.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "dag/expr.h"
#include "dag/template.h"
#include "cluster.h"
#include "commit.h"
#include "engine_internal.h"
#include "fanout.h"
#include "httptask.h"
#include "kind.h"
#include "netpolicy.h"
#include "proc.h"
#include "recovery.h"
#include "remote.h"
#include "render.h"
#include "sched/cron.h"
#include "sched/tz.h"
#include "scheduler.h"
#include "subflow.h"

#include "base/banned.h"

/* ------------------------------------------------------------------ small helpers */

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

void engine_config_init(struct engine_config *cfg)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = n > 0 ? (int)n : 1;
    cfg->output_cap = 1024 * 1024;
    cfg->kill_grace_ms = 10000;
    cfg->node = NULL;
    cfg->claim = NULL;
    cfg->release = NULL;
    cfg->owner_arg = NULL;
    cfg->retention_ms = 30LL * 86400 * 1000;
    cfg->purge_interval_ms = 60000;
    cfg->task_output_cap = 256 * 1024;
    cfg->output_dir = NULL;
    cfg->http_allow = NULL;
    cfg->http_deny = NULL;
    cfg->max_lost_attempts = 3;
    cfg->task_user = 0;
    cfg->task_uid = 0;
    cfg->task_gid = 0;
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

static void exec_list_remove(struct exec_queue *l, struct exec *ex, int list)
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

static void exec_list_append(struct exec_queue *l, struct exec *ex, int list)
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

static struct exec *exec_list_pop(struct exec_queue *l, int list)
{
    struct exec *ex = l->head;
    if (ex)
        exec_list_remove(l, ex, list);
    return ex;
}

void engine__exec_visit(struct engine *eng, struct exec *ex)
{
    if (ex->visit.on == EXEC_LIST_VISIT)
        return;
    if (ex->visit.on == EXEC_LIST_SLOT_WAIT)
        exec_list_remove(&eng->slot_wait, ex, EXEC_LIST_SLOT_WAIT);
    exec_list_append(&eng->visit, ex, EXEC_LIST_VISIT);
}

void engine__exec_done(struct engine *eng, struct exec *ex)
{
    if (!ex->done.on)
        exec_list_append(&eng->done, ex, EXEC_LIST_DONE);
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
        exec_list_remove(&eng->visit, ex, EXEC_LIST_VISIT);
    else if (ex->visit.on == EXEC_LIST_SLOT_WAIT)
        exec_list_remove(&eng->slot_wait, ex, EXEC_LIST_SLOT_WAIT);
    if (ex->done.on)
        exec_list_remove(&eng->done, ex, EXEC_LIST_DONE);
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

/* Put a queued task on the ready list; with maxQueued, watch how long it waits. */
static void ready_push(struct engine *eng, struct exec *ex, size_t idx)
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
        engine__group_step(eng, ex, r->group, st); /* an instance: its group decides */
    } else {
        engine__group_close(eng, ex, idx, st); /* a group ending early: its waiting items too */
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
    ready_push(eng, ex, idx);
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
            engine__group_close(eng, ex, c, d); /* a retried group's items */
            log_debug(COMP_TASK, "Task '%s' %s", engine__task_name(ex, c), task_status_name(d));
            XGROW(stack, alloc, n + 1);
            stack[n++] = c;
        }
    }
    free(stack);
}

static int64_t backoff_delay(const struct dag_task *t, int attempt)
{
    double d = (double)t->backoff.initial_ms * pow(t->backoff.factor, attempt - 1);
    if (d > (double)t->backoff.max_ms)
        d = (double)t->backoff.max_ms;
    if (t->backoff.jitter) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
            r = (uint32_t)clock_mono_ns();
        d *= 0.8 + 0.4 * ((double)r / 4294967295.0);
    }
    return d < 0 ? 0 : (int64_t)d;
}

/*
 * The current attempt of task `idx` ended with `ast`. Record it; retry or
 * finalize the task. `fail_status` is the task status if no retry is left.
 */
static void attempt_end(struct engine *eng, struct exec *ex, size_t idx, enum attempt_status ast,
                        int exit_code, int sig, const char *error, int pid, int pgid,
                        int64_t proc_start, int allow_retry)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct trun *r = &ex->runs[idx];
    int64_t now = clock_now_ms();
    struct attempt_row row;
    struct engine_event ev;
    int retry, rerun_lost = 0;
    char dur[32];
    int64_t took = now - r->attempt_started_at;

    memset(&row, 0, sizeof(row));
    row.task_idx = (int)idx;
    row.number = r->attempt;
    row.status = ast;
    /* A lost attempt keeps the node it ran on; a remote one gets its runner. */
    row.node = eng->attempt_node ? (char *)eng->attempt_node
               : ast == ATTEMPT_LOST ? NULL
                                     : eng->node;
    row.pid = pid;
    row.pgid = pgid;
    row.proc_start = proc_start;
    row.started_at = r->attempt_started_at;
    row.finished_at = now;
    row.exit_code = exit_code;
    row.signal = sig;
    row.error = (char *)error;
    if (row.number > 0) {
        engine__add_pending_attempt(eng, ex, 0, &row);
        engine__metrics_attempt(eng, ex, idx, ast, took);
    }

    clock_fmt_duration(took, dur, sizeof(dur));
    memset(&ev, 0, sizeof(ev));
    ev.type = ENGINE_EV_TASK_FINISHED;
    ev.task = engine__task_name(ex, idx);
    ev.attempt = r->attempt;
    ev.duration_ms = took;
    ev.error = error;

    if (ast == ATTEMPT_SUCCEEDED) {
        if (engine__kind(t)->instant)
            log_debug(COMP_TASK, "Task '%s' succeeded (%s)", engine__task_name(ex, idx),
                      engine__kind(t)->name);
        else
            log_info(COMP_TASK, "Task '%s' succeeded in %s (attempt %d)", engine__task_name(ex, idx), dur,
                     r->attempt);
        task_finalize(eng, ex, idx, TASK_SUCCEEDED, NULL);
        ev.task_status = TASK_SUCCEEDED;
        exec_progress(ex, &ev);
        notify(eng, &ev);
        return;
    }
    if (ast == ATTEMPT_LOST && allow_retry && ex->status == EXEC_RUNNING &&
        r->lost_runs < eng->cfg.max_lost_attempts) {
        /* Lost with its node, not failed: run again outside the retry budget
         * (a bounded number of times: a task that kills its node ends). */
        r->lost_runs++;
        rerun_lost = 1;
    } else if (ast == ATTEMPT_FAILED || ast == ATTEMPT_TIMED_OUT || ast == ATTEMPT_LOST) {
        r->failures++;
    }
    retry = rerun_lost || (allow_retry && r->failures <= t->retries && ex->status == EXEC_RUNNING);
    if (retry) {
        int64_t delay = rerun_lost ? 0 : backoff_delay(t, r->attempt);
        char dbuf[32];
        clock_fmt_duration(delay, dbuf, sizeof(dbuf));
        if (rerun_lost)
            log_warn(COMP_TASK, "Task '%s' attempt %d %s; running it again (lost run %d of %d "
                     "that use no retry)", engine__task_name(ex, idx), r->attempt,
                     error ? error : "lost", r->lost_runs, eng->cfg.max_lost_attempts);
        else
            log_warn(COMP_TASK, "Task '%s' attempt %d failed (%d of %d tries): %s; retrying in %s",
                     engine__task_name(ex, idx), r->attempt, r->failures, t->retries + 1,
                     error ? error : "failed", dbuf);
        engine__run_move(eng, ex, idx, TASK_QUEUED);
        r->available_at = now + delay;
        engine__set_str(&r->error, error);
        if (delay <= 0)
            ready_push(eng, ex, idx);
        else
            timer_for_run(eng, TIMER_RETRY, ex, idx, r->attempt, delay);
        ev.task_status = TASK_QUEUED;
        ev.will_retry = 1;
        exec_progress(ex, &ev);
        notify(eng, &ev);
        return;
    }
    {
        enum task_status fs = ast == ATTEMPT_TIMED_OUT   ? TASK_TIMED_OUT
                              : ast == ATTEMPT_CANCELLED ? TASK_CANCELLED
                                                         : TASK_FAILED;
        if (ast == ATTEMPT_CANCELLED)
            log_info(COMP_TASK, "Task '%s' cancelled (attempt %d)", engine__task_name(ex, idx), r->attempt);
        else
            log_error(COMP_TASK, "Task '%s' failed: %s", engine__task_name(ex, idx), error ? error : "failed");
        task_finalize(eng, ex, idx, fs, error);
        ev.task_status = fs;
        exec_progress(ex, &ev);
        notify(eng, &ev);
    }
}

void engine__attempt_fail(struct engine *eng, struct exec *ex, size_t idx,
                          enum attempt_status ast, const char *error, int allow_retry)
{
    attempt_end(eng, ex, idx, ast, -1, 0, error, 0, 0, 0, allow_retry);
}

void engine__attempt_succeed(struct engine *eng, struct exec *ex, size_t idx, char *output)
{
    struct trun *r = &ex->runs[idx];
    free(r->output);
    r->output = output;
    attempt_end(eng, ex, idx, ATTEMPT_SUCCEEDED, -1, 0, NULL, 0, 0, 0, 1);
}

void engine__attempt_end(struct engine *eng, struct exec *ex, size_t idx,
                         enum attempt_status ast, int exit_code, int sig, const char *error,
                         int pid, int pgid, int64_t proc_start, int allow_retry)
{
    attempt_end(eng, ex, idx, ast, exit_code, sig, error, pid, pgid, proc_start, allow_retry);
}

void engine__attempt_timer(struct engine *eng, int timer_kind, struct exec *ex, size_t idx,
                           int64_t delay_ms)
{
    timer_for_run(eng, (enum timer_kind)timer_kind, ex, idx, ex->runs[idx].attempt, delay_ms);
}

/* Start a new attempt of task `idx` (in memory; its kind's work starts after
 * the commit). */
static void attempt_begin(struct engine *eng, struct exec *ex, size_t idx, int offer)
{
    const struct task_kind *k = engine__kind(engine__task(ex, idx));
    struct trun *r = &ex->runs[idx];
    int64_t now = clock_now_ms();
    struct attempt_row row;
    struct engine_event ev;

    r->attempt++;
    engine__run_move(eng, ex, idx, TASK_RUNNING);
    r->attempt_started_at = now;
    if (!r->started_at)
        r->started_at = now;
    r->available_at = 0;

    memset(&row, 0, sizeof(row));
    row.task_idx = (int)idx;
    row.number = r->attempt;
    row.status = ATTEMPT_RUNNING;
    row.node = offer ? NULL : eng->node; /* an offer: the runner's, once known */
    row.started_at = now;
    row.exit_code = -1;

    if (k->instant) {
        /* Completes inside this turn: one insert with the final status. */
        row.status = ATTEMPT_SUCCEEDED;
        row.finished_at = now;
        engine__add_pending_attempt(eng, ex, 1, &row);
        engine__metrics_attempt(eng, ex, idx, ATTEMPT_SUCCEEDED, 0);
        k->begin(eng, ex, idx, offer);
        task_finalize(eng, ex, idx, TASK_SUCCEEDED, NULL);
        memset(&ev, 0, sizeof(ev));
        ev.type = ENGINE_EV_TASK_FINISHED;
        ev.task = engine__task_name(ex, idx);
        ev.task_status = TASK_SUCCEEDED;
        ev.attempt = r->attempt;
        exec_progress(ex, &ev);
        notify(eng, &ev);
        return;
    }
    engine__add_pending_attempt(eng, ex, 1, &row);
    memset(&ev, 0, sizeof(ev));
    ev.type = ENGINE_EV_TASK_STARTED;
    ev.task = engine__task_name(ex, idx);
    ev.task_status = TASK_RUNNING;
    ev.attempt = r->attempt;
    exec_progress(ex, &ev);
    notify(eng, &ev);
    k->begin(eng, ex, idx, offer);
}

static void exec_check_done(struct engine *eng, struct exec *ex)
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
    engine__subflow_child_done(eng, ex); /* a child: its parent's task ends with it */
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
                attempt_end(eng, ex, i, ast, -1, 0, reason, 0, 0, 0, 0);
        } else {
            r->queued_in_ready = 0;
            task_finalize(eng, ex, i, TASK_CANCELLED, reason);
        }
    }
    exec_check_done(eng, ex);
}

/* ------------------------------------------------------------------ dispatch */

/*
 * Start what is ready. Only the executions on eng->visit are looked at (a run
 * of theirs became ready or ended since), then, while a process slot is free
 * (or another node may take a command), those on eng->slot_wait in the order
 * they began to wait; an execution whose next command finds no slot goes
 * (back) to the end of eng->slot_wait. So a turn costs what happened in it,
 * not the number of live executions.
 */
static int dispatch(struct engine *eng)
{
    int progress = 0;

    if (eng->stopping)
        return 0; /* a stopping server starts nothing new */

    for (;;) {
        struct exec *ex = exec_list_pop(&eng->visit, EXEC_LIST_VISIT);
        int no_slot = 0;
        if (!ex && eng->slot_wait.head &&
            (eng->nprocs < (size_t)eng->cfg.workers || engine__remote_offer_ok(eng)))
            ex = exec_list_pop(&eng->slot_wait, EXEC_LIST_SLOT_WAIT);
        if (!ex)
            break;
        {
            int limit = ex->wf->concurrency;
            if (ex->status != EXEC_RUNNING || engine__exec_lost(ex) || engine__exec_handoff(ex))
                continue;
            /* Noops first (they may make more tasks ready), then sleeps, then commands. */
            for (int q = 2; q >= 0; q--) {
                struct fifo *f = &ex->ready[q];
                while (f->head < f->n) {
                    size_t idx = f->v[f->head];
                    const struct dag_task *t = engine__task(ex, idx);
                    const struct task_kind *k = engine__kind(t);
                    struct trun *r = &ex->runs[idx];
                    if (!r->queued_in_ready || r->status != TASK_QUEUED) {
                        f->head++;
                        eng->nready--;
                        r->queued_in_ready = 0;
                        continue;
                    }
                    if (limit > 0 && ex->nrunning >= (size_t)limit && q != 2)
                        break;
                    int offer = 0;
                    if (t->when && r->attempt == 0) {
                        /* Its condition, once, when it is about to start. */
                        char msg[512];
                        int w = engine__when_holds(ex, idx, msg, sizeof(msg));
                        if (w <= 0) {
                            f->head++;
                            eng->nready--;
                            r->queued_in_ready = 0;
                            if (w == 0) {
                                log_info(COMP_TASK, "Task '%s' skipped: its condition is false",
                                         engine__task_name(ex, idx));
                                task_finalize(eng, ex, idx, TASK_SKIPPED,
                                              "skipped: its condition is false");
                            } else {
                                log_error(COMP_TASK, "Task '%s' failed: %s", engine__task_name(ex, idx), msg);
                                task_finalize(eng, ex, idx, TASK_FAILED, msg);
                            }
                            progress = 1;
                            continue;
                        }
                    }
                    if (idx < ex->wf->ntasks && engine__is_group(t)) {
                        /* Its instances are made now (the runs may move). */
                        f->head++;
                        eng->nready--;
                        r->queued_in_ready = 0;
                        engine__group_start(eng, ex, idx);
                        progress = 1;
                        continue;
                    }
                    if (k->queue == KIND_QUEUE_SLOT && eng->nprocs >= (size_t)eng->cfg.workers) {
                        /* No slot here: another node may run it. */
                        if (!engine__remote_offer_ok(eng)) {
                            no_slot = 1;
                            break;
                        }
                        offer = 1;
                    }
                    f->head++;
                    eng->nready--;
                    r->queued_in_ready = 0;
                    attempt_begin(eng, ex, idx, offer);
                    progress = 1;
                }
            }
            exec_check_done(eng, ex);
            if (no_slot && !ex->visit.on)
                exec_list_append(&eng->slot_wait, ex, EXEC_LIST_SLOT_WAIT);
        }
    }
    return progress;
}

/* ------------------------------------------------------------------ epoll */

void engine__watch_add(struct engine *eng, int fd, struct watch *w)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = w;
    if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, fd, &ev))
        log_error(COMP, "epoll_ctl: %s", strerror(errno));
}

void engine__watch_del(struct engine *eng, int fd)
{
    if (fd >= 0)
        epoll_ctl(eng->epfd, EPOLL_CTL_DEL, fd, NULL);
}

/* ------------------------------------------------------------------ timers */

static void timer_fire(struct engine *eng, const struct timer *tm)
{
    struct exec *ex = tm->ex;
    char msg[160], dur[32];

    switch (tm->kind) {
    case TIMER_KILL:
        if (tm->proc && !tm->proc->reaped) {
            log_warn(COMP_TASK, "Task '%s' did not stop within %lldms of SIGTERM: sending SIGKILL",
                     tm->proc->ex ? engine__task_name(tm->proc->ex, tm->proc->idx) : "(remote)",
                     (long long)eng->cfg.kill_grace_ms);
            child_signal_group(&tm->proc->ch, SIGKILL);
        }
        return;
    case TIMER_TASK_TIMEOUT: {
        struct trun *r = &ex->runs[tm->idx];
        struct proc *p = tm->proc;
        if (r->status != TASK_RUNNING || r->attempt != tm->attempt || r->proc != p)
            return;
        clock_fmt_duration(engine__task(ex, tm->idx)->timeout_ms, dur, sizeof(dur));
        snprintf(msg, sizeof(msg), "timed out after %s", dur);
        if (engine__kind(engine__task(ex, tm->idx))->timeout)
            engine__kind(engine__task(ex, tm->idx))->timeout(eng, ex, tm->idx, msg);
        return;
    }
    case TIMER_RETRY: {
        struct trun *r = &ex->runs[tm->idx];
        if (r->status == TASK_QUEUED && r->attempt == tm->attempt)
            ready_push(eng, ex, tm->idx);
        return;
    }
    case TIMER_KIND_WAKE: {
        struct trun *r = &ex->runs[tm->idx];
        const struct task_kind *k = engine__kind(engine__task(ex, tm->idx));
        if (r->status == TASK_RUNNING && r->attempt == tm->attempt && k->wake)
            k->wake(eng, ex, tm->idx);
        return;
    }
    case TIMER_EXEC_DEADLINE:
        clock_fmt_duration(ex->wf->timeout_ms, dur, sizeof(dur));
        snprintf(msg, sizeof(msg), "execution timed out after %s", dur);
        log_error(COMP, "Execution %s of '%s' timed out after %s", ex->id, ex->wf->name, dur);
        engine__exec_abort(eng, ex, EXEC_TIMED_OUT, msg);
        return;
    case TIMER_MAX_RUNNING:
        if (ex->status != EXEC_RUNNING)
            return;
        clock_fmt_duration(ex->wf->max_running_ms, dur, sizeof(dur));
        if (!ex->wf->stuck_fail) {
            log_warn(COMP, "Execution %s of '%s' has been running for more than %s (maxRunning, "
                     "stuckPolicy=warn)", ex->id, ex->wf->name, dur);
            return;
        }
        snprintf(msg, sizeof(msg), "stuck: running for more than %s (maxRunning)", dur);
        log_error(COMP, "Execution %s of '%s' failed: %s", ex->id, ex->wf->name, msg);
        engine__exec_abort(eng, ex, EXEC_FAILED, msg);
        return;
    case TIMER_MAX_QUEUED: {
        struct trun *r = &ex->runs[tm->idx];
        const char *name = engine__task_name(ex, tm->idx);
        if (ex->status != EXEC_RUNNING || r->status != TASK_QUEUED || r->attempt != tm->attempt)
            return;
        clock_fmt_duration(ex->wf->max_queued_ms, dur, sizeof(dur));
        if (!ex->wf->stuck_fail) {
            log_warn(COMP, "Task '%s' of execution %s has been queued for more than %s "
                     "(maxQueued, stuckPolicy=warn)", name, ex->id, dur);
            return;
        }
        snprintf(msg, sizeof(msg), "stuck: queued for more than %s (maxQueued)", dur);
        log_error(COMP_TASK, "Task '%s' failed: %s", name, msg);
        r->queued_in_ready = 0;
        task_finalize(eng, ex, tm->idx, TASK_FAILED, msg);
        return;
    }
    case TIMER_PID_WRITE:
        return; /* firing is enough: the turn that follows commits the pid */
    case TIMER_COMMIT_RETRY:
        return; /* firing is enough: the turn that follows tries the commit again */
    }
}

static void timers_run(struct engine *eng)
{
    int64_t now = clock_mono_ms();
    const struct timer *top;
    /* Strictly after: `at` and `now` are truncated milliseconds, so this never
     * fires a timer early (a back-off of 10 ms waits at least 10 ms). */
    while ((top = engine__timer_peek(&eng->timers)) && top->at < now) {
        struct timer t;
        engine__timer_pop(&eng->timers, &t);
        if (t.gen && engine__timer_gen_dead(eng, t.gen))
            continue; /* its execution is gone */
        timer_fire(eng, &t);
    }
}

/* ------------------------------------------------------------------ lifecycle */

/*
 * The directory of the tasks' $ORCH_OUTPUT files: created 0700, or, if it
 * exists, used only if it is a real directory (not a symlink) of ours that
 * no one else may read or write: another local user must not read or forge a
 * task's output. With a task user, it is that user's (the tasks write in it).
 */
static int output_dir_prepare(const char *dir, const struct engine_config *cfg, struct err *err)
{
    uid_t owner = cfg->task_user ? cfg->task_uid : geteuid();
    struct stat sb;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return err_set(err, ERR_IO, "cannot create the task output directory '%s': %s", dir,
                       strerror(errno));
    if (lstat(dir, &sb) != 0)
        return err_set(err, ERR_IO, "cannot use the task output directory '%s': %s", dir,
                       strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return err_set(err, ERR_INVALID, "cannot use the task output directory '%s': not a "
                       "directory", dir);
    if (cfg->task_user && sb.st_uid != owner && sb.st_uid == geteuid() &&
        chown(dir, cfg->task_uid, cfg->task_gid) == 0)
        sb.st_uid = owner;
    if (sb.st_uid != owner)
        return err_set(err, ERR_INVALID, "cannot use the task output directory '%s': it "
                       "belongs to uid %d, not %d (remove it, or pick another data directory)",
                       dir, (int)sb.st_uid, (int)owner);
    if (sb.st_mode & 077)
        return err_set(err, ERR_INVALID, "cannot use the task output directory '%s': its mode "
                       "%03o lets others in (chmod 700 it)", dir, (unsigned)(sb.st_mode & 0777));
    if (cfg->task_user) {
        /* The task user must reach it: its parent (the data directory) is made
         * searchable, not readable, by others. */
        char *parent = xstrdup(dir), *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            if (stat(parent, &sb) == 0 && sb.st_uid == geteuid() && (sb.st_mode & 0011) != 0011)
                chmod(parent, (sb.st_mode & 07777) | 0011);
        }
        free(parent);
    }
    return 0;
}

int engine_new(struct store *st, const struct engine_config *cfg, struct engine **out,
               struct err *err)
{
    struct engine *eng;
    struct netpolicy *np = NULL;
    char host[64] = "localhost";
    int rc;

    *out = NULL;
    rc = netpolicy_new(cfg ? cfg->http_allow : NULL, cfg ? cfg->http_deny : NULL, &np, err);
    if (rc)
        return rc;
    eng = xcalloc(1, sizeof(*eng));
    eng->netpol = np;
    eng->st = st;
    if (cfg)
        eng->cfg = *cfg;
    else
        engine_config_init(&eng->cfg);
    if (eng->cfg.workers < 1)
        eng->cfg.workers = 1;
    if (!eng->cfg.output_cap)
        eng->cfg.output_cap = 1024 * 1024;
    if (eng->cfg.kill_grace_ms < 0)
        eng->cfg.kill_grace_ms = 0;
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    if (eng->cfg.node)
        snprintf(eng->node, sizeof(eng->node), "%s", eng->cfg.node);
    else
        snprintf(eng->node, sizeof(eng->node), "%s:%d", host, (int)getpid());
    eng->cfg.node = eng->node;
    child_reserve_fds(); /* now, while few files are open */
    eng->epfd = epoll_create1(EPOLL_CLOEXEC);
    eng->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (eng->epfd < 0 || eng->wakefd < 0) {
        int e = errno;
        if (eng->epfd >= 0)
            close(eng->epfd);
        if (eng->wakefd >= 0)
            close(eng->wakefd);
        netpolicy_free(eng->netpol);
        free(eng);
        return err_set(err, ERR_IO, "cannot create event loop: %s", strerror(e));
    }
    eng->w_wake.kind = WATCH_WAKE;
    engine__watch_add(eng, eng->wakefd, &eng->w_wake);
    pthread_mutex_init(&eng->mu, NULL);
    pthread_cond_init(&eng->cv, NULL);
    eng->stats.workers_total = eng->cfg.workers;
    eng->stats.db_ok = 1;
    if (eng->cfg.output_dir && *eng->cfg.output_dir) {
        eng->output_dir = xstrdup(eng->cfg.output_dir);
    } else {
        const char *tmp = getenv("TMPDIR");
        eng->output_dir = xasprintf("%s/orch-outputs-%d", tmp && *tmp ? tmp : "/tmp",
                                    (int)getuid());
    }
    if (output_dir_prepare(eng->output_dir, &eng->cfg, err)) {
        int code = err->code;
        close(eng->epfd);
        close(eng->wakefd);
        pthread_mutex_destroy(&eng->mu);
        pthread_cond_destroy(&eng->cv);
        netpolicy_free(eng->netpol);
        free(eng->output_dir);
        free(eng);
        return code;
    }
    /* The subsystems' own state (scheduler.c, subflow.c, remote.c, cluster.c). */
    eng->sched = engine__sched_new();
    eng->metrics = engine__metrics_new();
    eng->subflow = engine__subflow_new();
    eng->remote = engine__remote_new();
    eng->node_st = engine__node_new();
    /* Orphans of the tasks' trees (setsid, double fork) come back to us. */
    if (child_become_subreaper())
        log_warn(COMP, "Cannot become a child subreaper: %s", strerror(errno));
    if (!eng->cfg.task_output_cap)
        eng->cfg.task_output_cap = 256 * 1024;
    /* On PostgreSQL a turn's writes go in one round trip (store.h). */
    store_set_pipelining(st, 1);
    /* What the subsystems write with each turn (hooks.h); within a phase in
     * this order: the offers before the notifications. */
    engine__sched_hooks(eng);
    engine__remote_hooks(eng);
    engine__cluster_hooks(eng);
    *out = eng;
    return 0;
}

int engine_http_deny_listener(struct engine *eng, const char *hostport, struct err *err)
{
    return netpolicy_deny_listener(eng->netpol, hostport, err);
}

void engine_free(struct engine *eng)
{
    if (!eng)
        return;
    engine__http_free(eng);
    netpolicy_free(eng->netpol);
    engine__procs_free(eng); /* never leaves processes running behind us */
    while (eng->execs) {
        struct exec *ex = eng->execs;
        eng->execs = ex->next;
        engine__dirty_forget(eng, ex);
        exec_free(ex);
    }
    engine__pending_attempts_clear(eng);
    free(eng->hooks);
    free(eng->dirty);
    free(eng->patt);
    free(eng->to_spawn);
    engine__timer_release(&eng->timers);
    free(eng->dead_gens);
    free(eng->replies);
    engine__sched_free(eng);
    engine__subflow_free(eng);
    pthread_mutex_destroy(&eng->mu);
    pthread_cond_destroy(&eng->cv);
    close(eng->epfd);
    close(eng->wakefd);
    engine__remote_free(eng);
    engine__node_free(eng);
    engine__metrics_free(eng->metrics);
    free(eng->node_id);
    free(eng->output_dir);
    free(eng);
}

void engine_set_observer(struct engine *eng, engine_observer_fn fn, void *arg)
{
    eng->observer = fn;
    eng->observer_arg = arg;
}

size_t engine_active(const struct engine *eng)
{
    return eng->nexecs;
}

void engine_request_cancel_all(struct engine *eng)
{
    uint64_t one = 1;
    ssize_t w;
    eng->cancel_all = 1;
    w = write(eng->wakefd, &one, sizeof(one));
    (void)w;
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
    int rc;

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
    if (eng->cfg.claim && (rc = eng->cfg.claim(eng->cfg.owner_arg, ex->id)) != 0) {
        err_set(err, rc, "cannot claim execution '%s'", ex->id);
        exec_free(ex);
        return rc;
    }
    ex->version = version;
    engine__exec_move(eng, ex, EXEC_RUNNING); /* listed: the next commit inserts it */
    ex->created_at = ex->started_at = clock_now_ms();
    ex->tasks_new = 1;
    if (engine__node_busy(eng)) {
        /* No free slot here: queue it for any node and wake them. */
        engine__exec_life(eng, ex, EXEC_LIFE_HANDOFF);
        engine__node_notify(eng, NODE_NOTIFY_WORK);
        engine__node_want_claim(eng); /* ours too, once a slot is free */
    }
    for (size_t i = 0; i < wf->ntasks; i++) {
        if (wf->tasks[i].ndeps == 0) {
            engine__run_move(eng, ex, i, TASK_QUEUED);
            ready_push(eng, ex, i);
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

/* Undo exec_create after a failed commit. */
static void exec_unlink_new(struct engine *eng, struct exec *ex)
{
    exec_unlink(eng, ex);
    engine__timers_forget_exec(eng, ex);
    engine__pending_attempts_drop(eng, ex);
    if (eng->cfg.release)
        eng->cfg.release(eng->cfg.owner_arg, ex->id);
    engine__dirty_forget(eng, ex);
    exec_free(ex);
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

int engine_submit(struct engine *eng, const char *definition, const char *params_json,
                  char out_id[ID_MAX], struct err *err)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct exec *ex = NULL;
    int version = 0, rc;

    rc = dag_parse(definition, strlen(definition), &wf, &probs);
    if (rc) {
        if (probs.n)
            err_set(err, rc, "invalid workflow: %s: %s", probs.items[0].path,
                    probs.items[0].message);
        else
            err_set(err, rc, "invalid workflow");
        dag_problems_release(&probs);
        return rc;
    }
    if (engine_check_subflows(eng->st, wf, &probs) != 0) {
        err_set(err, ERR_INVALID, "invalid workflow: %s: %s", probs.items[0].path,
                probs.items[0].message);
        dag_problems_release(&probs);
        workflow_free(wf);
        return ERR_INVALID;
    }
    {
        /* Check the params before recording a version. */
        json_t *pj = engine__resolve_params(wf, params_json, err);
        if (!pj) {
            workflow_free(wf);
            return ERR_INVALID;
        }
        json_decref(pj);
    }
    rc = store_workflow_put(eng->st, wf->name, definition, clock_now_ms(), &version, err);
    if (rc) {
        workflow_free(wf);
        return rc;
    }
    rc = engine__exec_create(eng, wf, version, params_json, &ex, err);
    if (rc)
        return rc;
    /* Commit the new execution with its task runs before anything runs. */
    rc = engine__commit(eng, err);
    if (rc) {
        exec_unlink_new(eng, ex);
        return rc;
    }
    engine__log_started(ex);
    memcpy(out_id, ex->id, ID_MAX);
    eng->work_now = 1;
    return 0;
}

int engine_cancel(struct engine *eng, const char *exec_id, struct err *err)
{
    for (struct exec *ex = eng->execs; ex; ex = ex->next) {
        if (!strcmp(ex->id, exec_id)) {
            log_info(COMP, "Execution %s cancelled", ex->id);
            engine__exec_abort(eng, ex, EXEC_CANCELLED, "cancelled");
            eng->work_now = 1;
            return 0;
        }
    }
    return err_set(err, ERR_NOT_FOUND, "no active execution '%s'", exec_id);
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
            ready_push(eng, ex, idx);
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
        engine__group_close(eng, ex, idx, dd);
        propagate(eng, ex, idx);
    }
}

/* Drop finished executions from memory (after their final state is committed). */
#ifndef EXEC_TRIM_RUNS
#define EXEC_TRIM_RUNS 1000 /* task runs of an execution whose end returns memory to the system */
#endif

static void execs_collect(struct engine *eng)
{
    struct exec *next;
    int big = 0;
    /* Only those on eng->done: final (exec_check_done), lost or handed off. */
    for (struct exec *ex = eng->done.head; ex; ex = next) {
        int busy = 0;
        int gone = engine__exec_lost(ex) || ex->life == EXEC_LIFE_HANDED_OFF;
        next = ex->done.next;
        if (!gone &&
            (!exec_status_is_final(ex->status) || ex->dirty || !ex->finished_reported)) {
            if (!exec_status_is_final(ex->status) && !engine__exec_lost(ex) &&
                !engine__exec_handoff(ex))
                exec_list_remove(&eng->done, ex, EXEC_LIST_DONE); /* runs on here */
            continue;
        }
        for (struct proc *p = eng->procs; p; p = p->next)
            if (p->ex == ex)
                busy = 1;
        for (size_t i = 0; i < eng->nspawn; i++)
            if (eng->to_spawn[i]->ex == ex)
                busy = 1;
        if (busy)
            continue;
        exec_unlink(eng, ex);
        engine__timers_forget_exec(eng, ex);
        if (eng->cfg.release)
            eng->cfg.release(eng->cfg.owner_arg, ex->id);
        big = big || ex->nruns >= EXEC_TRIM_RUNS;
        engine__dirty_forget(eng, ex);
        exec_free(ex);
    }
    /* A large fan-out leaves many small blocks free in malloc's heaps, which
     * it keeps: give them back to the system. */
    if (big)
        malloc_trim(0);
}

int engine_run(struct engine *eng, struct err *err)
{
    struct epoll_event evs[64];
    struct err cerr = ERR_INIT;
    int rc = 0;

    if (!err)
        err = &cerr;
    clock_turn_begin(); /* each turn reads the time once (engine__wait_end) */
    if (eng->persistent)
        eng->next_purge = clock_mono_ms() + (eng->cfg.purge_interval_ms < 5000
                                                 ? eng->cfg.purge_interval_ms
                                                 : 5000);
    for (;;) {
        int timeout, n;
        int64_t next_due = 0;

        if (eng->cancel_all && !eng->cancel_all_done) {
            eng->cancel_all_done = 1;
            for (struct exec *ex = eng->execs; ex; ex = ex->next)
                engine__exec_abort(eng, ex, EXEC_CANCELLED, "cancelled by signal");
        }
        if (eng->stop_requested && !eng->stopping) {
            pthread_mutex_lock(&eng->mu);
            eng->stopping = 1;
            pthread_mutex_unlock(&eng->mu);
            eng->stop_deadline = clock_mono_ms() + eng->stop_grace_ms;
            log_info(COMP, "Stopping: %zu task process%s running, grace %lldms", eng->nprocs,
                     eng->nprocs == 1 ? "" : "es", (long long)eng->stop_grace_ms);
        }
        if (eng->stop_again) {
            /* Asked again (a second signal): a shorter grace ends the one running. */
            int64_t at = clock_mono_ms() + eng->stop_grace_ms;
            eng->stop_again = 0;
            if (eng->stopping && at < eng->stop_deadline)
                eng->stop_deadline = at;
        }
        if (eng->stopping && !eng->interrupted && clock_mono_ms() >= eng->stop_deadline) {
            eng->interrupted = 1;
            engine__interrupt_running(eng);
        }

        /* 1a. workflow tasks whose child is not here (after a restart) */
        if (engine__subflow_poll_due(eng) && !eng->db_down)
            engine__subflow_poll(eng);
        /* 1a. the node: reconnect, heartbeat, claims */
        if (eng->db_down && !eng->disk_full)
            engine__db_retry(eng);
        engine__node_tick(eng);
        engine__cancel_poll(eng, 1);
        /* 1b. commands from other threads (server mode) */
        if (!eng->stopping) {
            if (eng->disk_full)
                engine__commands_refuse_code(eng, ERR_FULL, eng->stats.disk_error);
            else if (eng->db_down)
                engine__commands_refuse(eng, "the database is unavailable (reconnecting)");
            else
                engine__commands_run(eng);
        }
        if (engine__sched_take_changed(eng) && eng->cluster)
            engine__node_notify(eng, NODE_NOTIFY_SCHEDULES); /* the leader may be another node */
        /* 1c. schedules that are due */
        if (engine__sched_on(eng) && !eng->stopping && !eng->db_down && engine__sched_may_fire(eng))
            next_due = engine__sched_turn(eng);
        /* 2. transitions */
        dispatch(eng);
        engine__check_turn(eng, 0); /* debug and sanitizer builds: what this turn touched */
        /* 3. commit (held while the database is away or its disk full) */
        if (eng->disk_full)
            rc = engine__commit_held_retry(eng, err);
        else
            rc = eng->db_down ? 0 : engine__commit_or_hold(eng, err);
        if (rc == ERR_FULL) {
            /* Nothing written (this turn, or since the disk is full): the
             * commands of this turn are told so, and the executions their
             * submits made are dropped. */
            engine__replies_drop_new(eng, "not recorded: the disk is full");
            engine__replies_flush(eng, rc, err);
            engine__commit_hold(eng, err);
            rc = 0;
        } else if (rc && engine__node_on(eng) && !store_connected(eng->st)) {
            engine__replies_flush(eng, rc, err);
            engine__db_lost(eng, err);
            rc = 0;
        } else if (rc == ERR_CONFLICT && eng->cluster && engine__conflict_recover(eng) > 0) {
            engine__replies_flush(eng, rc, err);
            rc = engine__commit_or_hold(eng, err);
        } else if (!eng->commit_held) {
            engine__replies_flush(eng, rc, err); /* held: answered once committed */
        }
        if (rc) {
            log_error("Database", "cannot commit state: %s", err->msg);
            break;
        }
        /* 4. act, once what it acts on is committed */
        if (!eng->db_down && !eng->commit_held) {
            engine__spawn_pending(eng);
            engine__http_send_pending(eng);
            engine__subflow_act(eng);
            engine__procs_collect(eng);
            execs_collect(eng);
            /* Notifications read along with this turn's results wait in
             * the client library, where the socket's readiness says nothing. */
            engine__db_event(eng);
        }
        engine__stats_update(eng);
        if (eng->tick_fn && clock_mono_ms() >= eng->next_tick) {
            eng->tick_fn(eng->tick_arg);
            eng->next_tick = clock_mono_ms() + eng->tick_ms;
        }
        if (eng->stopping) {
            /* Done once no task process or request is left (finished, or
             * interrupted and reaped). */
            if ((!eng->procs || (eng->disk_full && engine__procs_all_reaped(eng))) &&
                !engine__http_active(eng) && !eng->commit_held)
                break; /* with the disk full, their ends are not written: redone */
        } else if (!eng->persistent && !eng->execs && !eng->procs && !eng->commit_held) {
            break;
        }
        if (eng->persistent && !eng->stopping && eng->cfg.purge_interval_ms > 0 &&
            clock_mono_ms() >= eng->next_purge) {
            engine__purge_old(eng);
            eng->next_purge = clock_mono_ms() + eng->cfg.purge_interval_ms;
        }

        timeout = engine__wait_ms(eng, engine__next_deadline(eng, next_due));
        eng->work_now = 0;
        /* 1. gather events */
        n = epoll_wait(eng->epfd, evs, 64, timeout);
        engine__wait_end(eng); /* a new turn: its time */
        if (n < 0 && errno != EINTR) {
            rc = err_set(err, ERR_IO, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            struct watch *w = evs[i].data.ptr;
            switch (w->kind) {
            case WATCH_WAKE: {
                uint64_t v;
                ssize_t r = read(eng->wakefd, &v, sizeof(v));
                (void)r;
                break;
            }
            case WATCH_OUT:
                engine__proc_read(eng, w->proc, 0);
                break;
            case WATCH_ERR:
                engine__proc_read(eng, w->proc, 1);
                break;
            case WATCH_PIDFD:
                engine__proc_exited(eng, w->proc);
                break;
            case WATCH_DB:
                engine__db_event(eng);
                break;
            case WATCH_HTTP:
                break; /* below */
            }
        }
        timers_run(eng);
        if (engine__http_active(eng))
            engine__http_run(eng);
    }
    engine__check_turn(eng, 1);
    clock_turn_end();
    pthread_mutex_lock(&eng->mu);
    eng->stats.running = 0;
    pthread_mutex_unlock(&eng->mu);
    if (eng->disk_full)
        log_error("Database", "Stopped with the disk full: the state changes held since were not "
                  "written (the next start takes the executions up from what was committed)");
    /* Once stopped (server mode), commands are refused: answer the queued ones. */
    if (eng->stopping)
        engine__commands_refuse(eng, "the server is shutting down");
    return rc;
}
