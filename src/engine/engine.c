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
#include "engine_internal.h"
#include "kind.h"
#include "netpolicy.h"
#include "render.h"
#include "sched/cron.h"
#include "sched/tz.h"

#include "base/banned.h"

#define READ_CHUNK 65536
#define READ_BUDGET (256 * 1024) /* bytes read from one pipe per turn, for fairness */
#define PID_WRITE_DELAY_MS 20    /* a started process's pid is committed within this */

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

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGPIPE: return "SIGPIPE";
    case SIGHUP: return "SIGHUP";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGQUIT: return "SIGQUIT";
    }
    return "signal";
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

static struct exec *exec_alloc(struct workflow *wf, const char *params)
{
    struct exec *ex = xcalloc(1, sizeof(*ex));
    json_t *pj = json_loads(params, 0, NULL);

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
    if (ex->wf->max_queued_ms > 0) {
        timer_for_run(eng, TIMER_MAX_QUEUED, ex, idx, r->attempt, ex->wf->max_queued_ms);
    }
}

static int task_is_bad(enum task_status s)
{
    return s == TASK_FAILED || s == TASK_UPSTREAM_FAILED || s == TASK_TIMED_OUT ||
           s == TASK_CANCELLED;
}

void engine__add_pending_attempt(struct engine *eng, struct exec *ex, int insert,
                                const struct attempt_row *row)
{
    struct pending_attempt *pa;
    XGROW(eng->patt, eng->patt_alloc, eng->npatt + 1);
    pa = &eng->patt[eng->npatt++];
    pa->ex = ex;
    pa->insert = insert;
    pa->row = *row;
    pa->row.error = row->error ? xstrdup(row->error) : NULL;
    pa->row.node = row->node ? xstrdup(row->node) : NULL;
}

static void pending_attempts_clear(struct engine *eng)
{
    for (size_t i = 0; i < eng->npatt; i++) {
        free(eng->patt[i].row.error);
        free(eng->patt[i].row.node);
    }
    eng->npatt = 0;
}

/* Forget the pending attempt writes of `ex` (it is freed without them written). */
static void pending_attempts_drop(struct engine *eng, const struct exec *ex)
{
    size_t k = 0;
    for (size_t i = 0; i < eng->npatt; i++) {
        struct pending_attempt *pa = &eng->patt[i];
        if (pa->ex == ex) {
            free(pa->row.error);
            free(pa->row.node);
        } else {
            eng->patt[k++] = *pa;
        }
    }
    eng->npatt = k;
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
    if (row.number > 0)
        engine__add_pending_attempt(eng, ex, 0, &row);

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
        k->begin(eng, ex, idx, offer);
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

/* Terminate the group of a live process: SIGTERM now (after commit), SIGKILL after grace. */
void engine__proc_terminate(struct engine *eng, struct proc *p)
{
    struct timer tm;
    p->stale = 1;
    if (p->term_sent || !p->ch.pid)
        return;
    child_signal_group(&p->ch, SIGTERM);
    p->term_sent = 1;
    memset(&tm, 0, sizeof(tm));
    tm.at = clock_mono_ms() + eng->cfg.kill_grace_ms;
    tm.kind = TIMER_KILL;
    tm.proc = p;
    engine__timer_add(&eng->timers, &tm);
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

static int dispatch(struct engine *eng)
{
    int progress = 0;
    int again = 1;

    if (eng->stopping)
        return 0; /* a stopping server starts nothing new */

    while (again) {
        again = 0;
        for (struct exec *ex = eng->execs; ex; ex = ex->next) {
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
                            again = 1;
                            continue;
                        }
                    }
                    if (idx < ex->wf->ntasks && engine__is_group(t)) {
                        /* Its instances are made now (the runs may move). */
                        f->head++;
                        r->queued_in_ready = 0;
                        engine__group_start(eng, ex, idx);
                        progress = 1;
                        again = 1;
                        continue;
                    }
                    if (k->queue == KIND_QUEUE_SLOT && eng->nprocs >= (size_t)eng->cfg.workers) {
                        /* No slot here: another node may run it. */
                        if (!engine__remote_offer_ok(eng))
                            break;
                        offer = 1;
                    }
                    f->head++;
                    r->queued_in_ready = 0;
                    attempt_begin(eng, ex, idx, offer);
                    progress = 1;
                    if (k->instant)
                        again = 1;
                }
            }
            exec_check_done(eng, ex);
        }
    }
    return progress;
}

/* ------------------------------------------------------------------ commit */

static void proc_flush_logs(struct engine *eng, struct proc *p, int *failed, struct err *err);
static void proc_flush_undo(struct proc *p);

static int commit_turn(struct engine *eng, struct err *err)
{
    int rc, fenced = 0;
    int dirty = eng->npatt > 0 || eng->npfires > 0;

    for (size_t i = 0; i < eng->nscheds && !dirty; i++)
        if (eng->scheds[i].dirty)
            dirty = 1;
    if (eng->ndirty)
        dirty = 1;
    for (struct proc *p = eng->procs; p && !dirty; p = p->next)
        if (p->pend[0].len || p->pend[1].len || p->pid_dirty)
            dirty = 1;
    if (!dirty && !eng->notify_work && !eng->notify_schedules && !engine__remote_dirty(eng))
        return 0;

again:
    rc = store_begin(eng->st, err);
    if (rc)
        return rc;
    if (eng->cluster) {
        int nlost = 0;
        rc = engine__fence(eng, &nlost, err);
        if (rc)
            goto fail;
        if (nlost) {
            /* Start over without what is not ours any more. */
            store_rollback(eng->st);
            goto again;
        }
    }
    /* What changed this turn: the executions on the dirty list, and of each
     * its dirty runs (all of them when it is new). */
    for (size_t k = 0; k < eng->ndirty; k++) {
        struct exec *ex = eng->dirty[k];
        struct exec_row row;
        size_t nw;
        if (engine__exec_lost(ex))
            continue;
        memset(&row, 0, sizeof(row));
        memcpy(row.id, ex->id, sizeof(row.id));
        row.workflow = ex->wf->name;
        row.workflow_version = ex->version;
        row.status = ex->status;
        row.params = ex->params;
        row.created_at = ex->created_at;
        row.started_at = ex->started_at;
        row.finished_at = ex->finished_at;
        row.error = ex->error;
        row.schedule_id = ex->schedule_id;
        row.scheduled_for = ex->scheduled_for;
        row.retried_at = ex->retried_at;
        row.parent_id = ex->parent_id;
        row.parent_task_idx = ex->parent_task_idx;
        row.depth = ex->depth;
        if (engine__exec_handoff(ex)) {
            /* For whichever node claims it first. */
            row.status = EXEC_QUEUED;
            row.started_at = 0;
        } else {
            row.owner = eng->node_id;
        }
        if (engine__exec_unstored(ex)) {
            rc = store_execution_insert(eng->st, &row, err);
            if (!rc && ex->idem_key)
                rc = store_idempotency_put(eng->st, ex->wf->name, ex->idem_key, ex->id,
                                           ex->created_at, err);
        } else if (ex->dirty) {
            rc = store_execution_update(eng->st, &row, err);
        }
        if (rc)
            goto fail;
        nw = ex->tasks_new ? ex->nruns : ex->ndrun;
        for (size_t j = 0; j < nw; j++) {
            size_t i = ex->tasks_new ? j : ex->drun[j];
            struct trun *r = &ex->runs[i];
            struct task_run_row tr;
            memset(&tr, 0, sizeof(tr));
            tr.idx = (int)i;
            tr.name = (char *)engine__task_name(ex, i);
            if (i >= ex->wf->ntasks) {
                tr.instance = 1;
                tr.group_idx = (int)r->group;
                tr.item_index = r->item_index;
                tr.item = r->item;
            }
            tr.child_id = r->child_id[0] ? r->child_id : NULL;
            tr.status = r->status;
            tr.attempt = r->attempt;
            tr.available_at = r->available_at;
            tr.started_at = r->started_at;
            tr.finished_at = r->finished_at;
            tr.error = r->error;
            tr.output = r->output;
            if (ex->tasks_new || r->is_new)
                rc = store_task_run_insert(eng->st, ex->id, &tr, err);
            else
                rc = store_task_run_update(eng->st, ex->id, &tr, r->db_attempt, err);
            if (rc)
                goto fail;
        }
    }
    /* Fires of schedules and their state, with the executions they created. */
    for (size_t i = 0; i < eng->npfires; i++) {
        rc = store_fire_insert(eng->st, &eng->pfires[i].row, err);
        if (rc)
            goto fail;
    }
    for (size_t i = 0; i < eng->nscheds; i++) {
        struct sched *sc = &eng->scheds[i];
        struct schedule_row sr;
        if (!sc->dirty)
            continue;
        memset(&sr, 0, sizeof(sr));
        memcpy(sr.id, sc->id, ID_MAX);
        sr.workflow = sc->workflow;
        sr.name = sc->name;
        sr.spec_hash = sc->spec_hash;
        sr.paused = sc->paused;
        sr.next_fire_at = sc->next_fire_at;
        sr.last_fire_at = sc->last_fire_at;
        sr.created_at = sr.updated_at = clock_now_ms();
        sr.from_api = sc->from_api;
        sr.spec = sc->api_spec;
        if (sc->is_new) {
            rc = store_schedule_upsert(eng->st, &sr, err);
        } else {
            /* Only our part: the API may have changed the spec or paused it. */
            rc = store_schedule_update_state(eng->st, &sr, err);
            if (rc == ERR_NOT_FOUND) {
                sc->gone = 1; /* deleted through the API meanwhile */
                eng->sched_reload = 1;
                rc = 0;
            }
        }
        if (rc)
            goto fail;
    }
    /* Pids of processes started last turn first: a final update of the same
     * attempt queued this turn (it may have exited already) must come after. */
    for (struct proc *p = eng->procs; p; p = p->next) {
        struct attempt_row row;
        struct trun *r;
        if (!p->ex || !p->pid_dirty || p->stale || engine__exec_lost(p->ex))
            continue; /* processes run for others: in engine__remote_commit */
        r = &p->ex->runs[p->idx];
        memset(&row, 0, sizeof(row));
        row.task_idx = (int)p->idx;
        row.number = p->attempt;
        row.status = ATTEMPT_RUNNING;
        row.node = eng->node;
        row.pid = p->ch.pid;
        row.pgid = p->ch.pid;
        row.proc_start = p->ch.proc_start;
        row.started_at = r->attempt_started_at;
        row.exit_code = -1;
        rc = store_attempt_update(eng->st, p->ex->id, &row, err);
        if (rc)
            goto fail;
    }
    for (size_t i = 0; i < eng->npatt; i++) {
        struct pending_attempt *pa = &eng->patt[i];
        if (pa->insert)
            rc = store_attempt_insert(eng->st, pa->ex->id, &pa->row, err);
        else
            rc = store_attempt_update(eng->st, pa->ex->id, &pa->row, err);
        if (rc)
            goto fail;
    }
    for (struct proc *p = eng->procs; p; p = p->next) {
        int failed = 0;
        if (p->ex && engine__exec_lost(p->ex))
            continue;
        proc_flush_logs(eng, p, &failed, err);
        if (failed) {
            rc = ERR_STORE;
            goto fail;
        }
    }
    if (eng->cluster && (rc = engine__remote_commit(eng, err)) != 0)
        goto fail;
    if (eng->notify_work && (rc = store_notify(eng->st, "orch_work", eng->node_id, err)) != 0)
        goto fail;
    if (eng->notify_schedules &&
        (rc = store_notify(eng->st, "orch_schedules", eng->node_id, err)) != 0)
        goto fail;
    rc = store_commit(eng->st, err);
    if (rc)
        goto fail;

    /* Committed: the store now holds this turn's state. */
    eng->notify_work = eng->notify_schedules = 0;
    engine__remote_committed(eng);
    pending_attempts_clear(eng);
    for (size_t i = 0; i < eng->npfires; i++) {
        free(eng->pfires[i].row.schedule_id);
        free(eng->pfires[i].row.reason);
    }
    eng->npfires = 0;
    for (size_t i = 0; i < eng->nscheds; i++) {
        eng->scheds[i].dirty = 0;
        eng->scheds[i].is_new = 0;
    }
    for (size_t k = 0; k < eng->ndirty; k++) {
        struct exec *ex = eng->dirty[k];
        if (ex->life == EXEC_LIFE_NEW)
            engine__exec_life(eng, ex, EXEC_LIFE_STORED);
        else if (ex->life == EXEC_LIFE_HANDOFF)
            engine__exec_life(eng, ex, EXEC_LIFE_HANDED_OFF);
    }
    engine__dirty_clear(eng);
    for (struct proc *p = eng->procs; p; p = p->next) {
        p->pid_dirty = 0;
        p->undo = 0;
        strbuf_reset(&p->pend[0]);
        strbuf_reset(&p->pend[1]);
    }
    return 0;
fail:
    store_rollback(eng->st);
    for (struct proc *p = eng->procs; p; p = p->next)
        proc_flush_undo(p);
    if (rc == ERR_FENCED && fenced++ < 3) {
        /* The pipelined fence found an execution another node took: ask
         * which, outside the transaction, drop them and write the rest. */
        int nlost = 0;
        struct err ferr = ERR_INIT;
        if (engine__fence(eng, &nlost, &ferr) == 0)
            goto again;
    }
    return rc;
}

/* ------------------------------------------------------------------ a full disk */

#define FULL_BACKOFF_MIN_MS 100
#define FULL_BACKOFF_MAX_MS 2000

/* "disk full: <path>: no space left (...)" without its first words. */
static const char *full_what(const char *msg)
{
    return !strncmp(msg, "disk full: ", 11) ? msg + 11 : msg;
}

/*
 * A commit failed for lack of space: nothing of it was written, and nothing
 * it holds was acted on yet. The turn's writes stay pending in memory (dirty
 * runs, pending attempts, fires, log output); while the disk is full the
 * engine acts on nothing more (db_down: no spawn, no command, no schedule
 * fire, no heartbeat), and commit_held_retry() tries again with back-off.
 */
static void commit_hold(struct engine *eng, const struct err *err)
{
    pthread_mutex_lock(&eng->mu);
    eng->stats.disk_full = 1;
    if (!eng->stats.disk_full_since)
        eng->stats.disk_full_since = clock_now_ms();
    snprintf(eng->stats.disk_error, sizeof(eng->stats.disk_error), "%.199s", err->msg);
    pthread_mutex_unlock(&eng->mu);
    if (eng->disk_full)
        return;
    eng->disk_full = 1;
    eng->db_down = 1;
    eng->db_backoff = FULL_BACKOFF_MIN_MS;
    eng->db_retry_at = clock_mono_ms() + eng->db_backoff;
    log_error("Database", "Disk full: %s; the engine pauses: its state changes are held in memory "
              "and committed once space is freed (new executions are refused meanwhile)",
              full_what(err->msg));
}

/* Returns 0 (committed), ERR_FULL (still held: not tried yet, or still no
 * space) or the code of another failure. */
static int commit_held_retry(struct engine *eng, struct err *err)
{
    int64_t now = clock_mono_ms(), since;
    int rc;

    if (now < eng->db_retry_at)
        return err_set(err, ERR_FULL, "%s", eng->stats.disk_error);
    rc = commit_turn(eng, err);
    if (rc == ERR_FULL) {
        eng->db_backoff = eng->db_backoff * 2 > FULL_BACKOFF_MAX_MS ? FULL_BACKOFF_MAX_MS
                                                                    : eng->db_backoff * 2;
        eng->db_retry_at = now + eng->db_backoff;
        log_debug("Database", "Still no space: %s (next try in %lldms)", full_what(err->msg),
                  (long long)eng->db_backoff);
        return rc;
    }
    /* Space again (or another failure, which the loop handles as before). */
    pthread_mutex_lock(&eng->mu);
    since = eng->stats.disk_full_since;
    eng->stats.disk_full = 0;
    eng->stats.disk_full_since = 0;
    eng->stats.disk_error[0] = 0;
    pthread_mutex_unlock(&eng->mu);
    eng->disk_full = 0;
    eng->db_down = 0;
    eng->work_now = 1;
    if (rc == 0)
        log_info("Database", "Disk space available again: the held state changes are committed "
                 "(paused %lldms); the engine continues", (long long)(clock_now_ms() - since));
    return rc;
}

/* The commit under way failed: the output flushed into it was not written;
 * forget it was (it is flushed again, whole, with the next commit). */
static void proc_flush_undo(struct proc *p)
{
    if (!p->undo)
        return;
    p->undo = 0;
    p->seq = p->seq_undo;
    for (int s = 0; s < 2; s++) {
        struct chunk_track *t = &p->trk[s];
        if (!p->trk_undo[s].added)
            continue;
        t->n--;
        t->head = p->trk_undo[s].head;
        t->kept = p->trk_undo[s].kept;
    }
}

static void proc_flush_logs(struct engine *eng, struct proc *p, int *failed, struct err *err)
{
    p->undo = 1;
    p->seq_undo = p->seq;
    p->trk_undo[0].added = p->trk_undo[1].added = 0;
    for (int s = 0; s < 2 && !*failed; s++) {
        struct log_chunk c;
        struct strbuf *sb = &p->pend[s];
        const char *data = sb->buf;
        size_t len = sb->len;
        if (!len)
            continue;
        if (len > eng->cfg.output_cap) {
            data += len - eng->cfg.output_cap;
            len = eng->cfg.output_cap;
        }
        memset(&c, 0, sizeof(c));
        c.task_idx = (int)p->idx;
        c.attempt = p->attempt;
        c.seq = ++p->seq;
        c.stream = s == 0 ? LOG_STREAM_STDOUT : LOG_STREAM_STDERR;
        c.ts = clock_now_ms();
        c.data = (char *)data;
        c.len = len;
        if (store_log_append(eng->st, p->exec_id, &c, err)) {
            *failed = 1;
            return;
        }
        /* Keep only the tail of each stream: drop its oldest chunks beyond the cap. */
        {
            struct chunk_track *t = &p->trk[s];
            int below = 0;
            if (t->n == t->alloc && t->head > 0) {
                memmove(t->chunks, t->chunks + t->head, (t->n - t->head) * sizeof(*t->chunks));
                t->n -= t->head;
                t->head = 0;
            }
            p->trk_undo[s].head = t->head;
            p->trk_undo[s].kept = t->kept;
            p->trk_undo[s].added = 1;
            XGROW(t->chunks, t->alloc, t->n + 1);
            t->chunks[t->n].seq = c.seq;
            t->chunks[t->n].len = len;
            t->n++;
            t->kept += len;
            /* Drop a chunk only while what remains still holds the cap: the tail
             * kept is between the cap and the cap plus one chunk. */
            while (t->head < t->n - 1 && t->kept - t->chunks[t->head].len >= eng->cfg.output_cap) {
                t->kept -= t->chunks[t->head].len;
                below = t->chunks[t->head].seq + 1;
                t->head++;
            }
            if (below && store_log_trim(eng->st, p->exec_id, (int)p->idx, p->attempt, below,
                                        c.stream, err)) {
                *failed = 1;
                return;
            }
        }
    }
}

/* ------------------------------------------------------------------ processes */

static void watch_add(struct engine *eng, int fd, struct watch *w)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = w;
    if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, fd, &ev))
        log_error(COMP, "epoll_ctl: %s", strerror(errno));
}

static void watch_del(struct engine *eng, int fd)
{
    if (fd >= 0)
        epoll_ctl(eng->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void proc_unlink_free(struct engine *eng, struct proc *p)
{
    struct proc **pp = &eng->procs;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    engine__timer_purge(&eng->timers, NULL, p);
    watch_del(eng, p->ch.pidfd);
    watch_del(eng, p->ch.out_fd);
    watch_del(eng, p->ch.err_fd);
    child_release(&p->ch);
    strbuf_release(&p->pend[0]);
    strbuf_release(&p->pend[1]);
    free(p->trk[0].chunks);
    free(p->trk[1].chunks);
    if (p->output_path)
        unlink(p->output_path);
    free(p->output_path);
    json_decref(p->spec);
    free(p->owner);
    free(p);
    eng->nprocs--;
}

/* Keep the last `cap` bytes of a stream in buf[*len]. */
static void tail_add(char *buf, size_t *blen, size_t cap, const char *data, size_t len)
{
    if (len >= cap) {
        memcpy(buf, data + len - cap, cap);
        *blen = cap;
        return;
    }
    if (*blen + len > cap) {
        size_t drop = *blen + len - cap;
        memmove(buf, buf + drop, *blen - drop);
        *blen -= drop;
    }
    memcpy(buf + *blen, data, len);
    *blen += len;
}

/* Read what is available from one pipe (bounded per turn). */
static void proc_read(struct engine *eng, struct proc *p, int stream)
{
    int *fdp = stream == 0 ? &p->ch.out_fd : &p->ch.err_fd;
    char buf[READ_CHUNK];
    size_t budget = READ_BUDGET;

    while (*fdp >= 0 && budget > 0) {
        ssize_t n = read(*fdp, buf, sizeof(buf));
        if (n > 0) {
            struct strbuf *sb = &p->pend[stream];
            budget -= (size_t)n < budget ? (size_t)n : budget;
            /* Bound what waits for the commit: keep the newest output_cap bytes. */
            if (sb->len + (size_t)n > 2 * eng->cfg.output_cap && sb->len > 0) {
                size_t keep = eng->cfg.output_cap;
                if (keep > sb->len)
                    keep = sb->len;
                memmove(sb->buf, sb->buf + sb->len - keep, keep);
                sb->len = keep;
                sb->buf[keep] = '\0';
            }
            strbuf_add(sb, buf, (size_t)n);
            if (stream == 1)
                tail_add(p->err_tail, &p->err_tail_len, ERR_TAIL, buf, (size_t)n);
            else
                tail_add(p->out_tail, &p->out_tail_len, OUT_TAIL, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or error: stop watching this pipe. */
        watch_del(eng, *fdp);
        close(*fdp);
        *fdp = -1;
        return;
    }
}

static void last_line(const struct proc *p, char *out, size_t outlen)
{
    size_t end = p->err_tail_len, start;
    while (end > 0 && (p->err_tail[end - 1] == '\n' || p->err_tail[end - 1] == '\r' ||
                       p->err_tail[end - 1] == ' '))
        end--;
    start = end;
    while (start > 0 && p->err_tail[start - 1] != '\n')
        start--;
    if (end - start >= outlen)
        start = end - (outlen - 1);
    memcpy(out, p->err_tail + start, end - start);
    out[end - start] = '\0';
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
}

/* The process of `p` exited: collect output, apply the result (if not stale). */
/*
 * The output of a command attempt that exited 0: the JSON object it wrote to
 * $ORCH_OUTPUT, or {"exitCode": 0, "stdout": the tail of its stdout}. Returns
 * 0 with *out (compact JSON text), or -1 with a message for the attempt's
 * failure (not an object, too big).
 */
static int task_output(struct engine *eng, struct proc *p, char **out, char *msg, size_t msglen)
{
    size_t cap = eng->cfg.task_output_cap;
    json_t *o = NULL;
    FILE *f = NULL;

    *out = NULL;
    if (p->output_path) {
        /* Never through a symlink, never a FIFO or device; a regular file
         * written by the task's user (ours, or the task user). */
        int fd = open(p->output_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat sb;
        if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
                        (sb.st_uid != geteuid() &&
                         !(eng->cfg.task_user && sb.st_uid == eng->cfg.task_uid)))) {
            close(fd);
            snprintf(msg, msglen, "its output ($ORCH_OUTPUT) is not a regular file of its user");
            return -1;
        }
        if (fd >= 0 && !(f = fdopen(fd, "rb")))
            close(fd);
        if (fd < 0 && errno == ELOOP) {
            snprintf(msg, msglen, "its output ($ORCH_OUTPUT) is a symbolic link");
            return -1;
        }
    }
    if (f) {
        struct stat sb;
        /* As much as the file holds (no more than the cap and one byte). */
        size_t want = fstat(fileno(f), &sb) == 0 && (uint64_t)sb.st_size <= cap
                          ? (size_t)sb.st_size + 1
                          : cap + 1;
        char *buf = xmalloc(want + 1);
        size_t n = fread(buf, 1, want, f);
        json_error_t jerr;
        fclose(f);
        if (n > cap) {
            free(buf);
            snprintf(msg, msglen,
                     "its output ($ORCH_OUTPUT) is larger than the limit of %zu bytes "
                     "(ORCH_MAX_TASK_OUTPUT)",
                     cap);
            return -1;
        }
        o = n ? json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr) : NULL;
        free(buf);
        if (!o || !json_is_object(o)) {
            if (!n)
                snprintf(msg, msglen, "its output ($ORCH_OUTPUT) is empty: write a JSON object");
            else if (!o)
                snprintf(msg, msglen, "its output ($ORCH_OUTPUT) is not valid JSON: line %d "
                         "column %d: %s", jerr.line, jerr.column, jerr.text);
            else
                snprintf(msg, msglen, "its output ($ORCH_OUTPUT) must be a JSON object, not %s",
                         json_is_array(o) ? "an array" : json_is_string(o) ? "a string"
                                                       : "a scalar");
            json_decref(o);
            return -1;
        }
    } else {
        /* No file: the exit code and the tail of stdout (valid UTF-8, without
         * its last newlines). */
        struct strbuf sb = STRBUF_INIT;
        size_t len = p->out_tail_len;
        while (len > 0 && (p->out_tail[len - 1] == '\n' || p->out_tail[len - 1] == '\r'))
            len--;
        strbuf_add_utf8(&sb, p->out_tail, len);
        o = json_object();
        json_object_set_new(o, "exitCode", json_integer(0));
        json_object_set_new(o, "stdout", json_stringn(sb.buf, sb.len));
        strbuf_release(&sb);
    }
    *out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!*out || strlen(*out) > cap) {
        free(*out);
        *out = NULL;
        snprintf(msg, msglen, "its output is larger than the limit of %zu bytes "
                 "(ORCH_MAX_TASK_OUTPUT)", cap);
        return -1;
    }
    return 0;
}

/* child_sweep_orphans: does this orphan belong to a task process still running
 * here? Its $ORCH_OUTPUT names the attempt; without one, any running task may
 * own it. */
static int orphan_keep(void *arg, const char *env, size_t len)
{
    struct engine *eng = arg;
    const char *out = NULL;
    size_t outlen = 0;

    for (size_t off = 0; off < len;) {
        size_t l = strnlen(env + off, len - off);
        if (l > 11 && !memcmp(env + off, "ORCH_OUTPUT=", 12)) {
            out = env + off + 12;
            outlen = l - 12;
        }
        off += l + 1;
    }
    for (const struct proc *q = eng->procs; q; q = q->next) {
        if (q->reaped || !q->ch.pid)
            continue;
        if (!out || (q->output_path && strlen(q->output_path) == outlen &&
                     !memcmp(q->output_path, out, outlen)))
            return 1;
    }
    return 0;
}

/* End what a finished task left behind outside its process group (setsid,
 * double fork: reparented to us, the subreaper) and reap exited orphans. */
static void sweep_orphans(struct engine *eng, int keep_running)
{
    pid_t *live = NULL;
    size_t n = 0, alloc = 0;
    int killed;

    for (const struct proc *q = eng->procs; q; q = q->next) {
        if (q->reaped || !q->ch.pid)
            continue;
        XGROW(live, alloc, n + 1);
        live[n++] = q->ch.pid;
    }
    killed = child_sweep_orphans(live, n, keep_running ? orphan_keep : NULL, eng);
    if (killed)
        log_info(COMP_TASK, "Killed %d process%s left behind by finished tasks", killed,
                 killed == 1 ? "" : "es");
    free(live);
}

static void proc_exited(struct engine *eng, struct proc *p)
{
    struct exec *ex = p->ex;
    struct trun *r;
    char msg[512], line[200];
    int code, sig;

    if (child_reap(&p->ch) != 1)
        return;
    p->reaped = 1;
    proc_read(eng, p, 0);
    proc_read(eng, p, 1);
    /* The leader is gone: end what is left of its group (background children),
     * and what left the group. */
    child_signal_group(&p->ch, SIGKILL);
    sweep_orphans(eng, 1);
    watch_del(eng, p->ch.pidfd);
    code = p->ch.exit_code;
    sig = p->ch.signal;
    if (!ex) {
        /* Run for another node: report to its owner. */
        char *out = NULL;
        if (p->rcancel) {
            engine__remote_report(eng, p, "cancelled", code, sig, "cancelled by its owner", NULL);
        } else if (code == 0 && !sig) {
            if (task_output(eng, p, &out, msg, sizeof(msg)) != 0)
                engine__remote_report(eng, p, "failed", 0, 0, msg, NULL);
            else
                engine__remote_report(eng, p, "succeeded", 0, 0, NULL, out);
            free(out);
        } else {
            last_line(p, line, sizeof(line));
            if (sig)
                snprintf(msg, sizeof(msg), "killed by signal %d (%s)%s%s", sig,
                         signal_name(sig), line[0] ? ": " : "", line);
            else
                snprintf(msg, sizeof(msg), "exit status %d%s%s", code, line[0] ? ": " : "",
                         line);
            engine__remote_report(eng, p, "failed", code, sig, msg, NULL);
        }
        return;
    }
    r = &ex->runs[p->idx];
    if (p->stale || r->proc != p || r->attempt != p->attempt || r->status != TASK_RUNNING) {
        /* Fencing: this attempt was already given up; its report is dropped. */
        log_info(COMP_TASK, "Task '%s': dropped late report of attempt %d (current attempt %d, %s)",
                  engine__task_name(ex, p->idx), p->attempt, r->attempt, task_status_name(r->status));
        return;
    }
    r->proc = NULL;
    if (code == 0) {
        char *out = NULL;
        if (task_output(eng, p, &out, msg, sizeof(msg)) != 0) {
            attempt_end(eng, ex, p->idx, ATTEMPT_FAILED, 0, 0, msg, p->ch.pid, p->ch.pid,
                        p->ch.proc_start, 1);
            return;
        }
        free(r->output);
        r->output = out;
        attempt_end(eng, ex, p->idx, ATTEMPT_SUCCEEDED, 0, 0, NULL, p->ch.pid, p->ch.pid,
                    p->ch.proc_start, 1);
        return;
    }
    last_line(p, line, sizeof(line));
    if (sig)
        snprintf(msg, sizeof(msg), "killed by signal %d (%s)%s%s", sig, signal_name(sig),
                 line[0] ? ": " : "", line);
    else
        snprintf(msg, sizeof(msg), "exit status %d%s%s", code, line[0] ? ": " : "", line);
    attempt_end(eng, ex, p->idx, ATTEMPT_FAILED, code, sig, msg, p->ch.pid, p->ch.pid,
                p->ch.proc_start, 1);
}

/* Start the processes of the attempts begun this turn (after the commit). */
static void spawn_pending(struct engine *eng)
{
    for (size_t i = 0; i < eng->nspawn; i++) {
        struct proc *p = eng->to_spawn[i];
        struct exec *ex = p->ex;
        const struct dag_task *t = ex ? engine__task(ex, p->idx) : NULL;
        struct trun *r = ex ? &ex->runs[p->idx] : NULL;
        char **envp;
        char *sh_argv[4];
        struct err err = ERR_INIT;
        int rc;

        char **rargv = NULL;
        const char *name;
        struct rendered rd;

        memset(&rd, 0, sizeof(rd));

        p->next = eng->procs;
        eng->procs = p;
        if (p->stale) {
            /* Cancelled before it could start. */
            p->reaped = 1;
            if (!ex)
                engine__remote_report(eng, p, "cancelled", -1, 0, "cancelled before it started",
                                      NULL);
            continue;
        }
        free(p->output_path);
        p->output_path = xasprintf("%s/%s-%zu-%d.json", eng->output_dir, p->exec_id, p->idx,
                                   p->attempt);
        unlink(p->output_path); /* a leftover of a crash */
        if (ex) {
            char msg[512];
            if (engine__render_task(ex, p->idx, &rd, msg, sizeof(msg)) != 0) {
                p->reaped = 1;
                r->proc = NULL;
                attempt_end(eng, ex, p->idx, ATTEMPT_FAILED, -1, 0, msg, 0, 0, 0, 0);
                eng->work_now = 1;
                continue;
            }
            envp = engine__task_env(ex, p->idx, p->attempt, p->output_path, &rd);
            if (t->shell) {
                sh_argv[0] = (char *)"/bin/sh";
                sh_argv[1] = (char *)"-c";
                sh_argv[2] = rd.shell ? rd.shell : t->shell;
                sh_argv[3] = NULL;
                p->ch.argv = sh_argv;
            } else {
                p->ch.argv = rd.argv ? rd.argv : t->argv;
            }
            p->ch.dir = t->working_dir;
            name = engine__task_name(ex, p->idx);
        } else {
            /* Run for another node: what its offer says. */
            const json_t *argv = json_object_get(p->spec, "argv");
            const char *shell = json_string_value(json_object_get(p->spec, "shell"));
            envp = engine__runner_env(p->spec, p->output_path);
            if (shell) {
                sh_argv[0] = (char *)"/bin/sh";
                sh_argv[1] = (char *)"-c";
                sh_argv[2] = (char *)shell;
                sh_argv[3] = NULL;
                p->ch.argv = sh_argv;
            } else {
                rargv = xcalloc(json_array_size(argv) + 1, sizeof(*rargv));
                for (size_t k = 0; k < json_array_size(argv); k++)
                    rargv[k] = (char *)json_string_value(json_array_get(argv, k));
                p->ch.argv = rargv;
            }
            p->ch.dir = json_string_value(json_object_get(p->spec, "dir"));
            name = json_string_value(json_object_get(p->spec, "task"));
            if (!name)
                name = "?";
        }
        p->ch.envp = envp;
        p->ch.drop_ids = eng->cfg.task_user;
        p->ch.uid = eng->cfg.task_uid;
        p->ch.gid = eng->cfg.task_gid;
        rc = (p->ch.argv && p->ch.argv[0]) ? child_start(&p->ch, &err)
                                           : err_set(&err, ERR_INVALID, "nothing to run");
        engine__strv_free(envp);
        free(rargv);
        if (ex)
            engine__rendered_release(&rd, t);
        p->ch.argv = NULL;
        p->ch.envp = NULL;
        if (rc) {
            p->reaped = 1;
            if (!ex) {
                engine__remote_report(eng, p, "failed", -1, 0, err.msg, NULL);
                continue;
            }
            r->proc = NULL;
            attempt_end(eng, ex, p->idx, ATTEMPT_FAILED, -1, 0, err.msg, 0, 0, 0, 1);
            eng->work_now = 1;
            continue;
        }
        p->started_mono = clock_mono_ms();
        p->pid_dirty = 1;
        p->w_pid.kind = WATCH_PIDFD;
        p->w_pid.proc = p;
        p->w_out.kind = WATCH_OUT;
        p->w_out.proc = p;
        p->w_err.kind = WATCH_ERR;
        p->w_err.proc = p;
        watch_add(eng, p->ch.pidfd, &p->w_pid);
        watch_add(eng, p->ch.out_fd, &p->w_out);
        watch_add(eng, p->ch.err_fd, &p->w_err);
        log_info(COMP_TASK, "Task '%s' started (attempt %d, pid %d)", name, p->attempt,
                 (int)p->ch.pid);
        if (ex && t->timeout_ms > 0) {
            struct timer tm;
            memset(&tm, 0, sizeof(tm));
            tm.at = p->started_mono + t->timeout_ms;
            tm.kind = TIMER_TASK_TIMEOUT;
            tm.ex = ex;
            tm.proc = p;
            tm.idx = p->idx;
            tm.attempt = p->attempt;
            engine__timer_add(&eng->timers, &tm);
        }
        /*
         * The pid is written with the next turn's commit. Most short tasks end
         * before that, so their pid goes in with their result; a longer one
         * gets a turn within PID_WRITE_DELAY_MS. Should orch die before, the
         * recovery finds the orphan by its ORCH_* environment instead.
         */
        {
            struct timer tm;
            memset(&tm, 0, sizeof(tm));
            tm.at = clock_mono_ms() + PID_WRITE_DELAY_MS;
            tm.kind = TIMER_PID_WRITE;
            tm.proc = p;
            engine__timer_add(&eng->timers, &tm);
        }
    }
    eng->nspawn = 0;
}

/* Free processes that are fully done (reaped and pipes drained or closed). */
static void procs_collect(struct engine *eng)
{
    struct proc *p = eng->procs, *next;
    for (; p; p = next) {
        next = p->next;
        if (p->reaped && !p->pend[0].len && !p->pend[1].len && !p->pid_dirty) {
            proc_unlink_free(eng, p);
            /* A slot is free: queued tasks may start without waiting for an event. */
            eng->work_now = 1;
        }
    }
}

/* Every process has ended (those held for a commit included). */
static int procs_all_reaped(const struct engine *eng)
{
    for (const struct proc *p = eng->procs; p; p = p->next)
        if (!p->reaped)
            return 0;
    return 1;
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
    case TIMER_SLEEP_DONE: {
        struct trun *r = &ex->runs[tm->idx];
        if (r->status == TASK_RUNNING && r->attempt == tm->attempt)
            attempt_end(eng, ex, tm->idx, ATTEMPT_SUCCEEDED, 0, 0, NULL, 0, 0, 0, 1);
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
    watch_add(eng, eng->wakefd, &eng->w_wake);
    pthread_mutex_init(&eng->mu, NULL);
    pthread_cond_init(&eng->cv, NULL);
    eng->stats.workers_total = eng->cfg.workers;
    eng->stats.db_ok = 1;
    eng->db_fd = -1;
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
    /* Orphans of the tasks' trees (setsid, double fork) come back to us. */
    if (child_become_subreaper())
        log_warn(COMP, "Cannot become a child subreaper: %s", strerror(errno));
    if (!eng->cfg.task_output_cap)
        eng->cfg.task_output_cap = 256 * 1024;
    /* On PostgreSQL a turn's writes go in one round trip (store.h). */
    store_set_pipelining(st, 1);
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
    engine__subflow_free(eng);
    /* Never leave processes running behind us. */
    while (eng->procs) {
        struct proc *p = eng->procs;
        if (!p->reaped && p->ch.pid) {
            child_signal_group(&p->ch, SIGKILL);
            while (child_reap(&p->ch) == 0)
                usleep(1000);
        }
        p->reaped = 1;
        proc_unlink_free(eng, p);
    }
    sweep_orphans(eng, 0);
    for (size_t i = 0; i < eng->nspawn; i++) {
        struct proc *p = eng->to_spawn[i];
        strbuf_release(&p->pend[0]);
        strbuf_release(&p->pend[1]);
        json_decref(p->spec);
        free(p->owner);
        free(p);
    }
    while (eng->execs) {
        struct exec *ex = eng->execs;
        eng->execs = ex->next;
        engine__dirty_forget(eng, ex);
        exec_free(ex);
    }
    pending_attempts_clear(eng);
    free(eng->dirty);
    free(eng->patt);
    free(eng->to_spawn);
    engine__timer_release(&eng->timers);
    free(eng->replies);
    engine__scheds_clear(eng);
    free(eng->scheds);
    for (size_t i = 0; i < eng->npfires; i++) {
        free(eng->pfires[i].row.schedule_id);
        free(eng->pfires[i].row.reason);
    }
    free(eng->pfires);
    pthread_mutex_destroy(&eng->mu);
    pthread_cond_destroy(&eng->cv);
    close(eng->epfd);
    close(eng->wakefd);
    engine__remote_free(eng);
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
    size_t n = 0;
    for (const struct exec *ex = eng->execs; ex; ex = ex->next)
        n++;
    return n;
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
        eng->notify_work = 1;
        eng->want_claim = 1; /* ours too, once a slot is free */
    }
    for (size_t i = 0; i < wf->ntasks; i++) {
        if (wf->tasks[i].ndeps == 0) {
            engine__run_move(eng, ex, i, TASK_QUEUED);
            ready_push(eng, ex, i);
        }
    }
    ex->next = eng->execs;
    eng->execs = ex;
    exec_start_deadline(eng, ex, 0);
    *out = ex;
    return 0;
}

/* Undo exec_create after a failed commit. */
static void exec_unlink_new(struct engine *eng, struct exec *ex)
{
    struct exec **pp = &eng->execs;
    while (*pp && *pp != ex)
        pp = &(*pp)->next;
    if (*pp)
        *pp = ex->next;
    engine__timer_purge(&eng->timers, ex, NULL);
    pending_attempts_drop(eng, ex);
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
    rc = commit_turn(eng, err);
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

/* Rebuild an execution from the store and take it over (crash recovery). */

int engine_resume(struct engine *eng, const char *exec_id, struct err *err)
{
    return engine__exec_take(eng, exec_id, 0, err);
}

int engine_retry(struct engine *eng, const char *exec_id, struct err *err)
{
    return engine__exec_take(eng, exec_id, 1, err);
}

/* An execution a schedule fired, taken from the store: keep what it was
 * fired for (its tasks get ORCH_SCHEDULE and ORCH_SCHEDULED_FOR again, in the
 * schedule's zone when this node knows the schedule, else in UTC). */
static void exec_restore_schedule(struct engine *eng, struct exec *ex, const char *schedule_id,
                                  int64_t scheduled_for)
{
    char when[64];
    const struct sched *sc = NULL;

    ex->schedule_id = xstrdup(schedule_id);
    ex->scheduled_for = scheduled_for;
    for (size_t i = 0; i < eng->nscheds; i++)
        if (!strcmp(eng->scheds[i].id, schedule_id))
            sc = &eng->scheds[i];
    if (sc) {
        ex->schedule_name = xstrdup(sc->name);
        if (cron_format_instant(scheduled_for / 1000, sc->tz, when) != 0)
            clock_iso8601(scheduled_for, when);
    } else {
        struct schedule_row row;
        struct err err = ERR_INIT;
        memset(&row, 0, sizeof(row));
        if (store_schedule_get(eng->st, schedule_id, &row, &err) == 0)
            ex->schedule_name = row.name ? xstrdup(row.name) : NULL;
        schedule_row_release(&row);
        clock_iso8601(scheduled_for, when);
    }
    ex->scheduled_for_text = xstrdup(when);
}


/* The result of an attempt another node ran (remote.c found it current). */
void engine__remote_result(struct engine *eng, struct exec *ex, size_t idx,
                           const struct offer_row *o)
{
    struct trun *r = &ex->runs[idx];
    char why[240];

    eng->attempt_node = o->runner;
    if (o->runner_gone || !o->finished_at || (o->status && !strcmp(o->status, "lost"))) {
        snprintf(why, sizeof(why), "lost: the node running it (%.120s) died or stopped",
                 o->runner_node ? o->runner_node : "?");
        log_warn(COMP_TASK, "Task '%s' attempt %d was lost with node '%s'",
                 engine__task_name(ex, idx), r->attempt, o->runner_node ? o->runner_node : "?");
        /* Its process may live on, orphaned, on this machine: end it first. */
        if (o->runner && o->pid > 0 && engine__same_host(eng, o->runner) &&
            child_kill_orphan_group(o->pid, o->proc_start))
            log_warn(COMP_TASK, "Task '%s': killed orphaned process group %d of attempt %d",
                     engine__task_name(ex, idx), o->pid, r->attempt);
        attempt_end(eng, ex, idx, ATTEMPT_LOST, -1, 0, why, o->pid, o->pid, o->proc_start, 1);
    } else if (o->status && !strcmp(o->status, "succeeded")) {
        free(r->output);
        r->output = o->output ? xstrdup(o->output) : NULL;
        attempt_end(eng, ex, idx, ATTEMPT_SUCCEEDED, 0, 0, NULL, o->pid, o->pid, o->proc_start,
                    1);
    } else {
        attempt_end(eng, ex, idx, ATTEMPT_FAILED, o->exit_code, o->signal,
                    o->error ? o->error : "failed", o->pid, o->pid, o->proc_start, 1);
    }
    eng->attempt_node = NULL;
    eng->work_now = 1;
}

/* Did node name `node` ("host:pid") run on this machine? */
int engine__same_host(const struct engine *eng, const char *node)
{
    const char *a = strrchr(node, ':'), *b = strrchr(eng->node, ':');
    size_t la = a ? (size_t)(a - node) : strlen(node);
    size_t lb = b ? (size_t)(b - eng->node) : strlen(eng->node);
    return la == lb && !memcmp(node, eng->node, la);
}

void engine__attempt_restored(struct engine *eng, struct exec *ex, size_t idx,
                              const struct attempt_row *last, int find_by_env)
{
    struct trun *r = &ex->runs[idx];

    if (last && last->node && !engine__same_host(eng, last->node)) {
        /* Not a process of this machine: its node stopped renewing its
         * lease; a node that comes back ends what it no longer owns. */
        log_warn(COMP_TASK, "Task '%s' attempt %d ran on '%s': its process cannot be "
                 "ended from here", engine__task_name(ex, idx), r->attempt, last->node);
    } else if (last && last->pgid > 0 && child_kill_orphan_group(last->pgid, last->proc_start)) {
        log_warn(COMP_TASK, "Task '%s': killed orphaned process group %d of attempt %d",
                 engine__task_name(ex, idx), last->pgid, r->attempt);
    } else if (find_by_env && (!last || last->pgid <= 0)) {
        /* Its pid was not committed yet: find it by its environment. */
        int k = child_kill_by_env(ex->id, engine__task_name(ex, idx), r->attempt);
        if (k > 0)
            log_warn(COMP_TASK, "Task '%s': killed %d orphaned process group%s of attempt %d",
                     engine__task_name(ex, idx), k, k == 1 ? "" : "s", r->attempt);
    }
    r->attempt_started_at = last ? last->started_at : r->started_at;
}

void engine__attempt_lost(struct engine *eng, struct exec *ex, size_t idx,
                          const struct attempt_row *last, int allow_retry, const char *note)
{
    struct trun *r = &ex->runs[idx];
    char why[200];

    log_warn(COMP_TASK, "Task '%s' attempt %d was lost (%s)", engine__task_name(ex, idx),
             r->attempt, eng->cluster ? "its node died or lost its lease" : "its orch process died");
    if (eng->cluster && last && last->node)
        snprintf(why, sizeof(why), "lost: its node (%.120s) died or stopped renewing its lease",
                 last->node);
    else
        snprintf(why, sizeof(why), "lost: the orch process running it died");
    if (note)
        snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s", note);
    attempt_end(eng, ex, idx, ATTEMPT_LOST, -1, 0, why, last ? last->pid : 0,
                last ? last->pgid : 0, last ? last->proc_start : 0, allow_retry);
}

/*
 * Take over execution `exec_id` from the store: resume it (retry == 0: it must
 * be unfinished) or run its unsuccessful tasks again (retry == 1: it must have
 * ended without success).
 */
/* The stored row of attempt `number` of run `idx`, or NULL. */
static const struct attempt_row *current_attempt(const struct exec_detail *d, size_t idx,
                                                 int number)
{
    for (size_t k = 0; k < d->nattempts; k++)
        if (d->attempts[k].task_idx == (int)idx && d->attempts[k].number == number)
            return &d->attempts[k];
    return NULL;
}

int engine__exec_take(struct engine *eng, const char *exec_id, int retry, struct err *err)
{
    struct exec_detail *d = NULL;
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct exec *ex = NULL;
    char *def = NULL;
    int version = 0, rc;
    int64_t now = clock_now_ms();

    if (engine__exec_find(eng, exec_id))
        return err_set(err, ERR_CONFLICT, "execution '%s' is already active", exec_id);
    if (eng->cluster) {
        rc = store_execution_claim_one(eng->st, exec_id, eng->node_id, eng->lease_ms, err);
        if (rc)
            return rc;
    } else if (eng->cfg.claim && (rc = eng->cfg.claim(eng->cfg.owner_arg, exec_id)) != 0) {
        return err_set(err, rc, "execution '%s' is being run by another orch process", exec_id);
    }
    rc = store_execution_get(eng->st, exec_id, &d, err);
    if (rc)
        goto out;
    if (!retry && exec_status_is_final(d->exec.status)) {
        rc = err_set(err, ERR_CONFLICT, "execution '%s' has already %s", exec_id,
                     exec_status_name(d->exec.status));
        goto out;
    }
    if (retry && !exec_status_is_final(d->exec.status)) {
        rc = err_set(err, ERR_CONFLICT, "execution '%s' is still %s: cancel it first", exec_id,
                     exec_status_name(d->exec.status));
        goto out;
    }
    if (retry && d->exec.status == EXEC_SUCCEEDED) {
        rc = err_set(err, ERR_CONFLICT, "execution '%s' succeeded: nothing to retry", exec_id);
        goto out;
    }
    rc = store_workflow_get(eng->st, d->exec.workflow, d->exec.workflow_version, &def, &version,
                            err);
    if (rc)
        goto out;
    rc = dag_parse(def, strlen(def), &wf, &probs);
    if (rc) {
        rc = err_set(err, ERR_INTERNAL, "stored definition of '%s' version %d no longer parses",
                     d->exec.workflow, version);
        goto out;
    }
    if (d->ntasks < wf->ntasks || (d->ntasks && d->tasks[d->ntasks - 1].idx != (int)d->ntasks - 1)) {
        rc = err_set(err, ERR_INTERNAL, "execution '%s' has %zu task runs, its workflow %zu",
                     exec_id, d->ntasks, wf->ntasks);
        goto out;
    }
    ex = exec_alloc(wf, d->exec.params ? d->exec.params : "{}");
    wf = NULL;
    memcpy(ex->id, d->exec.id, ID_MAX);
    ex->version = version;
    engine__exec_life(eng, ex, EXEC_LIFE_STORED);
    engine__exec_move(eng, ex, EXEC_RUNNING); /* its row is written as running */
    ex->created_at = d->exec.created_at;
    ex->started_at = d->exec.started_at ? d->exec.started_at : now;
    ex->retried_at = retry ? now : d->exec.retried_at;
    if (d->exec.parent_id) {
        ex->parent_id = xstrdup(d->exec.parent_id);
        ex->parent_task_idx = d->exec.parent_task_idx;
        ex->depth = d->exec.depth;
    }
    /* Fan-out instances beyond the workflow's tasks. */
    XGROW(ex->runs, ex->runs_alloc, d->ntasks);
    for (size_t i = ex->nruns; i < d->ntasks; i++) {
        const struct task_run_row *tr = &d->tasks[i];
        struct trun *r = &ex->runs[i];
        memset(r, 0, sizeof(*r));
        r->group = tr->instance && tr->group_idx >= 0 && (size_t)tr->group_idx < ex->wf->ntasks &&
                           engine__is_group(&ex->wf->tasks[tr->group_idx])
                       ? (size_t)tr->group_idx
                       : 0;
        r->item_index = tr->item_index;
        r->item = xstrdup(tr->item ? tr->item : "null");
        r->name = xstrdup(tr->name ? tr->name : "?");
    }
    ex->nruns = d->ntasks;
    if (d->exec.schedule_id)
        exec_restore_schedule(eng, ex, d->exec.schedule_id, d->exec.scheduled_for);
    for (size_t i = 0; i < d->ntasks; i++) {
        const struct task_run_row *tr = &d->tasks[i];
        struct trun *r;
        if (tr->idx < 0 || (size_t)tr->idx >= ex->nruns)
            continue;
        r = &ex->runs[tr->idx];
        engine__run_load(ex, (size_t)tr->idx, tr->status);
        r->attempt = r->db_attempt = tr->attempt;
        r->available_at = tr->available_at;
        r->started_at = tr->started_at;
        r->finished_at = tr->finished_at;
        r->error = tr->error ? xstrdup(tr->error) : NULL;
        r->output = tr->output && !retry ? xstrdup(tr->output) : NULL;
        if (tr->child_id)
            snprintf(r->child_id, sizeof(r->child_id), "%s", tr->child_id);
        if (retry && r->status == TASK_SUCCEEDED && tr->output)
            r->output = xstrdup(tr->output); /* kept with the task */
        if (retry && r->status != TASK_SUCCEEDED) {
            /* Run it again; attempt numbers keep counting (fencing), the retry
             * budget starts afresh. */
            engine__run_load(ex, (size_t)tr->idx, TASK_PENDING);
            engine__run_touch(eng, ex, (size_t)tr->idx);
            r->finished_at = 0;
            r->available_at = 0;
            engine__set_str(&r->error, NULL);
        }
    }
    /* The retry budget used so far: failed, timed out and lost attempts,
     * but for the lost ones run again outside it. */
    for (size_t k = 0; !retry && k < d->nattempts; k++) {
        const struct attempt_row *a = &d->attempts[k];
        struct trun *ar;
        if (a->task_idx < 0 || (size_t)a->task_idx >= ex->nruns)
            continue;
        ar = &ex->runs[a->task_idx];
        if (a->status == ATTEMPT_LOST && ar->lost_runs < eng->cfg.max_lost_attempts)
            ar->lost_runs++;
        else if (a->status == ATTEMPT_FAILED || a->status == ATTEMPT_TIMED_OUT ||
                 a->status == ATTEMPT_LOST)
            ar->failures++;
    }
    /* Dependency counters from the final statuses. */
    for (size_t i = 0; i < ex->wf->ntasks; i++) {
        const struct dag_task *t = engine__task(ex, i);
        int rem = 0;
        for (size_t k = 0; k < t->ndeps; k++)
            if (!task_status_is_final(ex->runs[t->deps[k]].status))
                rem++;
        ex->runs[i].remaining = rem;
    }
    engine__groups_restore(ex);
    ex->next = eng->execs;
    eng->execs = ex;
    if (eng->cluster && !retry) {
        /* Attempts its previous owner offered to other nodes go on where they
         * are: take over the offers instead of calling them lost. */
        struct offer_row *offers = NULL;
        size_t noffers = 0;
        struct err oerr = ERR_INIT;
        if (store_offers_adopt(eng->st, ex->id, eng->node_id, &offers, &noffers, &oerr) == 0) {
            for (size_t k = 0; k < noffers; k++) {
                const struct offer_row *o = &offers[k];
                struct trun *r;
                if (o->task_idx < 0 || (size_t)o->task_idx >= ex->nruns)
                    continue;
                r = &ex->runs[o->task_idx];
                if (r->status != TASK_RUNNING || r->attempt != o->attempt)
                    continue;
                engine__run_remote(eng, ex, (size_t)o->task_idx, 1);
                r->attempt_started_at = o->offered_at;
                log_info(COMP_TASK, "Task '%s' attempt %d runs on another node: taken over",
                         engine__task_name(ex, o->task_idx), o->attempt);
            }
            if (noffers)
                eng->want_results = 1;
            offer_rows_free(offers, noffers);
        } else {
            log_warn(COMP, "Execution %s: cannot take over its offered tasks: %s", ex->id,
                     oerr.msg);
        }
    }
    for (size_t i = 0; i < ex->nruns; i++) {
        struct trun *r = &ex->runs[i];
        const struct dag_task *t = engine__task(ex, i);
        if (r->remote)
            continue;
        if (r->expanded && r->status == TASK_RUNNING)
            continue; /* a group: engine__group_resume below */
        if (i >= ex->wf->ntasks && r->status == TASK_PENDING)
            continue; /* an instance its group makes ready */
        if (r->status == TASK_QUEUED) {
            if (r->available_at > now) {
                timer_for_run(eng, TIMER_RETRY, ex, i, r->attempt, r->available_at - now);
            } else {
                ready_push(eng, ex, i);
            }
        } else if (r->status == TASK_PENDING && r->remaining == 0) {
            enum task_status dd = decide_run_if(ex, i);
            if (dd == TASK_QUEUED) {
                task_make_ready(eng, ex, i);
            } else {
                engine__run_move(eng, ex, i, dd);
                r->finished_at = now;
                engine__group_close(eng, ex, i, dd);
                propagate(eng, ex, i);
            }
        } else if (r->status == TASK_RUNNING) {
            /* Running when its owner stopped: its kind takes it up or records
             * it lost. */
            engine__kind(t)->restore(eng, ex, i, current_attempt(d, i, r->attempt), now);
        }
    }
    for (size_t g = 0; g < ex->wf->ntasks; g++)
        engine__group_resume(eng, ex, g);
    {
        /* The timeout counts from this run's start: a retry has its own. */
        int64_t elapsed = now - (ex->retried_at ? ex->retried_at : ex->started_at);
        exec_start_deadline(eng, ex, elapsed > 0 ? elapsed : 0);
    }
    if (retry)
        log_info(COMP, "Execution %s of '%s' retried: %zu of %zu task%s kept", ex->id,
                 ex->wf->name, ex->nfinal, ex->nruns, ex->nruns == 1 ? "" : "s");
    else
        log_info(COMP, "Execution %s of '%s' resumed: %zu of %zu task%s already final", ex->id,
                 ex->wf->name, ex->nfinal, ex->nruns, ex->nruns == 1 ? "" : "s");
    rc = commit_turn(eng, err);
    if (rc == ERR_FULL && !retry) {
        /* Taken as it is in the store: what changed waits in memory with the
         * rest of the turn's writes, until there is space to commit it. */
        commit_hold(eng, err);
        rc = 0;
    }
    if (rc) {
        /* Not taken: nothing may point at it any more (its pending attempt
         * writes are part of the failed commit, kept for the next one). */
        eng->execs = ex->next;
        engine__timer_purge(&eng->timers, ex, NULL);
        pending_attempts_drop(eng, ex);
        for (size_t i = 0; i < ex->nruns; i++)
            engine__run_remote(eng, ex, i, 0);
        engine__dirty_forget(eng, ex);
        exec_free(ex);
        ex = NULL;
        goto out;
    }
    eng->work_now = 1;
out:
    if (rc && !ex && eng->cfg.release)
        eng->cfg.release(eng->cfg.owner_arg, exec_id);
    if (wf)
        workflow_free(wf);
    dag_problems_release(&probs);
    free(def);
    exec_detail_free(d);
    return rc;
}

/* Drop finished executions from memory (after their final state is committed). */
#ifndef EXEC_TRIM_RUNS
#define EXEC_TRIM_RUNS 1000 /* task runs of an execution whose end returns memory to the system */
#endif

static void execs_collect(struct engine *eng)
{
    struct exec **pp = &eng->execs;
    int big = 0;
    while (*pp) {
        struct exec *ex = *pp;
        int busy = 0;
        int gone = engine__exec_lost(ex) || ex->life == EXEC_LIFE_HANDED_OFF;
        if (!gone &&
            (!exec_status_is_final(ex->status) || ex->dirty || !ex->finished_reported)) {
            pp = &ex->next;
            continue;
        }
        for (struct proc *p = eng->procs; p; p = p->next)
            if (p->ex == ex)
                busy = 1;
        for (size_t i = 0; i < eng->nspawn; i++)
            if (eng->to_spawn[i]->ex == ex)
                busy = 1;
        if (busy) {
            pp = &ex->next;
            continue;
        }
        *pp = ex->next;
        engine__timer_purge(&eng->timers, ex, NULL);
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

static int commit_with_retry(struct engine *eng, struct err *err)
{
    int rc = 0;
    for (int tries = 0; tries < 50; tries++) {
        rc = commit_turn(eng, err);
        if (rc != ERR_BUSY)
            return rc;
        usleep(20000);
    }
    return rc;
}

int engine_run(struct engine *eng, struct err *err)
{
    struct epoll_event evs[64];
    struct err cerr = ERR_INIT;
    int rc = 0;

    if (!err)
        err = &cerr;
    if (eng->persistent)
        eng->next_purge = clock_mono_ms() + (eng->cfg.purge_interval_ms < 5000
                                                 ? eng->cfg.purge_interval_ms
                                                 : 5000);
    for (;;) {
        int timeout = -1, n;
        const struct timer *top;
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
        if ((eng->subflow_check ||
             (eng->subflow_poll_at && clock_mono_ms() >= eng->subflow_poll_at)) &&
            !eng->db_down) {
            eng->subflow_check = 0;
            engine__subflow_poll(eng);
        }
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
        if (eng->sched_changed_here) {
            eng->sched_changed_here = 0;
            if (eng->cluster)
                eng->notify_schedules = 1; /* the leader may be another node */
        }
        /* 1c. schedules that are due */
        if (eng->scheduler_on && !eng->stopping && !eng->db_down && engine__sched_may_fire(eng)) {
            if (eng->sched_reload || clock_mono_ms() >= eng->next_sched_sync) {
                eng->sched_reload = 0;
                engine__sched_sync(eng);
                eng->next_sched_sync = clock_mono_ms() + SCHED_SYNC_MS;
            }
            next_due = engine__sched_tick(eng);
        }
        /* 2. transitions */
        dispatch(eng);
        engine__check_turn(eng, 0); /* debug and sanitizer builds: what this turn touched */
        /* 3. commit (held while the database is away or its disk full) */
        if (eng->disk_full)
            rc = commit_held_retry(eng, err);
        else
            rc = eng->db_down ? 0 : commit_with_retry(eng, err);
        if (rc == ERR_FULL) {
            /* Nothing written (this turn, or since the disk is full): the
             * commands of this turn are told so, and the executions their
             * submits made are dropped. */
            engine__replies_drop_new(eng, "not recorded: the disk is full");
            engine__replies_flush(eng, rc, err);
            commit_hold(eng, err);
            rc = 0;
        } else if (rc && eng->node_on && !store_connected(eng->st)) {
            engine__replies_flush(eng, rc, err);
            engine__db_lost(eng, err);
            rc = 0;
        } else if (rc == ERR_CONFLICT && eng->cluster && engine__conflict_recover(eng) > 0) {
            engine__replies_flush(eng, rc, err);
            rc = commit_with_retry(eng, err);
        } else {
            engine__replies_flush(eng, rc, err);
        }
        if (rc) {
            log_error("Database", "cannot commit state: %s", err->msg);
            break;
        }
        /* 4. act, once what it acts on is committed */
        if (!eng->db_down) {
            spawn_pending(eng);
            engine__http_send_pending(eng);
            engine__subflow_act(eng);
            procs_collect(eng);
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
            if ((!eng->procs || (eng->disk_full && procs_all_reaped(eng))) &&
                !engine__http_active(eng))
                break; /* with the disk full, their ends are not written: redone */
        } else if (!eng->persistent && !eng->execs && !eng->procs) {
            break;
        }
        if (eng->persistent && !eng->stopping && eng->cfg.purge_interval_ms > 0 &&
            clock_mono_ms() >= eng->next_purge) {
            engine__purge_old(eng);
            eng->next_purge = clock_mono_ms() + eng->cfg.purge_interval_ms;
        }

        if (eng->work_now) {
            timeout = 0;
            eng->work_now = 0;
        } else if ((top = engine__timer_peek(&eng->timers))) {
            int64_t d = top->at - clock_mono_ms() + 1;
            timeout = d < 0 ? 0 : d > 60000 ? 60000 : (int)d;
        }
        if (eng->persistent && !eng->stopping && eng->cfg.purge_interval_ms > 0) {
            int64_t d = eng->next_purge - clock_mono_ms();
            if (d < 0)
                d = 0;
            if (timeout < 0 || d < timeout)
                timeout = d > 60000 ? 60000 : (int)d;
        }
        if (next_due && !eng->stopping) {
            int64_t d = next_due - clock_now_ms();
            if (d < 0)
                d = 0;
            if (timeout < 0 || d < timeout)
                timeout = d > 60000 ? 60000 : (int)d;
        }
        {
            int64_t d = engine__node_timeout(eng);
            if (d >= 0 && (timeout < 0 || d < timeout))
                timeout = d > 60000 ? 60000 : (int)d;
            d = engine__cancel_poll(eng, 0);
            if (d >= 0 && (timeout < 0 || d < timeout))
                timeout = d > 60000 ? 60000 : (int)d;
            d = engine__http_timeout(eng);
            if (d >= 0 && (timeout < 0 || d < timeout))
                timeout = d > 60000 ? 60000 : (int)d;
            if (eng->subflow_poll_at) {
                d = eng->subflow_poll_at - clock_mono_ms();
                if (d < 0)
                    d = 0;
                if (timeout < 0 || d < timeout)
                    timeout = d > 60000 ? 60000 : (int)d;
            }
        }
        if (eng->scheduler_on && !eng->stopping && !eng->db_down && engine__sched_may_fire(eng)) {
            /* Only a node that fires the schedules re-reads them: on the
             * others next_sched_sync stays in the past, and must not make
             * the wait zero. */
            int64_t d = eng->next_sched_sync - clock_mono_ms();
            if (d < 0)
                d = 0;
            if (timeout < 0 || d < timeout)
                timeout = (int)d;
        }
        if (eng->disk_full) {
            int64_t d = eng->db_retry_at - clock_mono_ms();
            if (d < 0)
                d = 0;
            if (timeout < 0 || d < timeout)
                timeout = (int)d;
        }
        if (eng->tick_fn) {
            int64_t d = eng->next_tick - clock_mono_ms();
            if (d < 0)
                d = 0;
            if (timeout < 0 || d < timeout)
                timeout = (int)d;
        }
        if (eng->stopping && !eng->interrupted) {
            int64_t d = eng->stop_deadline - clock_mono_ms();
            if (d < 0)
                d = 0;
            if (timeout < 0 || d < timeout)
                timeout = (int)d;
        }
        /* 1. gather events */
        n = epoll_wait(eng->epfd, evs, 64, timeout);
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
                proc_read(eng, w->proc, 0);
                break;
            case WATCH_ERR:
                proc_read(eng, w->proc, 1);
                break;
            case WATCH_PIDFD:
                proc_exited(eng, w->proc);
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
