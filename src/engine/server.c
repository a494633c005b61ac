/*
 * server.c - the engine in a server: commands from other threads, a graceful
 * stop, figures for health, retention.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "commit.h"
#include "engine_internal.h"
#include "kind.h"
#include "proc.h"
#include "recovery.h"
#include "redisbus.h"
#include "remote.h"
#include "render.h"
#include "sched/cron.h"
#include "sched/tz.h"

#include "base/banned.h"

/* ------------------------------------------------------------------ server mode */

void engine__wake(struct engine *eng)
{
    uint64_t one = 1;
    ssize_t w = write(eng->wakefd, &one, sizeof(one));
    (void)w;
}

void engine_set_persistent(struct engine *eng, int on)
{
    eng->persistent = on;
}

void engine_set_tick(struct engine *eng, int64_t interval_ms, void (*fn)(void *arg), void *arg)
{
    eng->tick_fn = interval_ms > 0 ? fn : NULL;
    eng->tick_arg = arg;
    eng->tick_ms = interval_ms;
    eng->next_tick = 0;
}

void engine_request_stop(struct engine *eng, int64_t grace_ms)
{
    eng->stop_grace_ms = grace_ms < 0 ? 0 : grace_ms;
    if (eng->stop_requested)
        eng->stop_again = 1; /* the loop shortens the grace it started */
    eng->stop_requested = 1;
    engine__wake(eng);
}

/* Queue `c`, wake the loop and wait for the answer (any thread but the loop's). */
int engine__post(struct engine *eng, struct cmd *c)
{
    int wake;

    pthread_mutex_lock(&eng->mu);
    if (eng->stopping || eng->stop_requested) {
        pthread_mutex_unlock(&eng->mu);
        c->rc = err_set(&c->err, ERR_BUSY, "the server is shutting down");
        return c->rc;
    }
    wake = eng->cmds == NULL; /* else the first queued has woken the loop */
    c->next = eng->cmds;
    eng->cmds = c;
    pthread_mutex_unlock(&eng->mu);
    if (wake)
        engine__wake(eng);
    pthread_mutex_lock(&eng->mu);
    while (!c->done)
        pthread_cond_wait(&eng->cv, &eng->mu);
    pthread_mutex_unlock(&eng->mu);
    return c->rc;
}

/*
 * A submission whose poster does not wait: the HTTP thread suspends its
 * connection and goes on serving others, so one engine turn takes every
 * submission that arrived while the previous one committed (group commit),
 * not one per HTTP thread.
 */
struct engine_submission {
    struct cmd c;
    char *name, *params, *idem;
};

struct engine_submission *engine_submit_async(struct engine *eng, const char *name,
                                              const char *params_json, const char *idempotency_key,
                                              void (*done)(void *arg), void *arg)
{
    struct engine_submission *s = xcalloc(1, sizeof(*s));
    int wake;

    s->name = xstrdup(name);
    s->params = params_json ? xstrdup(params_json) : NULL;
    s->idem = idempotency_key && *idempotency_key ? xstrdup(idempotency_key) : NULL;
    s->c.type = CMD_SUBMIT;
    s->c.name = s->name;
    s->c.params = s->params;
    s->c.idem = s->idem;
    s->c.done_fn = done;
    s->c.done_arg = arg;
    pthread_mutex_lock(&eng->mu);
    if (eng->stopping || eng->stop_requested) {
        pthread_mutex_unlock(&eng->mu);
        s->c.rc = err_set(&s->c.err, ERR_BUSY, "the server is shutting down");
        done(arg);
        return s;
    }
    wake = eng->cmds == NULL; /* else the first queued has woken the loop */
    s->c.next = eng->cmds;
    eng->cmds = &s->c;
    pthread_mutex_unlock(&eng->mu);
    if (wake)
        engine__wake(eng);
    return s;
}

int engine_submission_result(const struct engine_submission *s, char out_id[ID_MAX],
                             int *out_existing, struct err *err)
{
    if (s->c.rc) {
        if (err)
            *err = s->c.err;
        return s->c.rc;
    }
    memcpy(out_id, s->c.out_id, ID_MAX);
    if (out_existing)
        *out_existing = s->c.existing;
    return 0;
}

const struct exec_row *engine_submission_row(const struct engine_submission *s)
{
    return !s->c.rc && !s->c.existing && s->c.row.id[0] ? &s->c.row : NULL;
}

void engine_submission_free(struct engine_submission *s)
{
    if (!s)
        return;
    free(s->c.row.workflow);
    free(s->c.row.params);
    free(s->c.row.error);
    free(s->c.row.schedule_id);
    free(s->c.row.parent_id);
    free(s->name);
    free(s->params);
    free(s->idem);
    free(s);
}

/* Call the done_fn of the asynchronous commands of `list` (linked by next),
 * with mu not held. */
static void cmds_done_run(struct cmd *list)
{
    while (list) {
        struct cmd *c = list;
        void (*fn)(void *) = c->done_fn;
        void *arg = c->done_arg;
        list = c->next;
        fn(arg); /* c may be freed from here on */
    }
}

int engine_post_submit(struct engine *eng, const char *name, const char *params_json,
                       const char *idempotency_key, char out_id[ID_MAX], int *out_existing,
                       struct err *err)
{
    struct cmd c;
    memset(&c, 0, sizeof(c));
    c.type = CMD_SUBMIT;
    c.name = name;
    c.params = params_json;
    c.idem = idempotency_key && *idempotency_key ? idempotency_key : NULL;
    engine__post(eng, &c);
    if (c.rc) {
        if (err)
            *err = c.err;
        return c.rc;
    }
    memcpy(out_id, c.out_id, ID_MAX);
    if (out_existing)
        *out_existing = c.existing;
    return 0;
}

int engine_post_cancel(struct engine *eng, const char *exec_id, int *out_asked, struct err *err)
{
    struct cmd c;
    memset(&c, 0, sizeof(c));
    c.type = CMD_CANCEL;
    c.exec_id = exec_id;
    engine__post(eng, &c);
    if (c.rc && err)
        *err = c.err;
    if (out_asked)
        *out_asked = c.rc == 0 && c.existing;
    return c.rc;
}

int engine_post_retry(struct engine *eng, const char *exec_id, struct err *err)
{
    struct cmd c;
    memset(&c, 0, sizeof(c));
    c.type = CMD_RETRY;
    c.exec_id = exec_id;
    engine__post(eng, &c);
    if (c.rc && err)
        *err = c.err;
    return c.rc;
}

void engine_get_stats(struct engine *eng, struct engine_stats *out)
{
    pthread_mutex_lock(&eng->mu);
    *out = eng->stats;
    pthread_mutex_unlock(&eng->mu);
}

void engine_publish_stats(struct engine *eng)
{
    engine__stats_update(eng);
}

/* Answer `c` now (an error, or a result with nothing to commit). */
void engine__reply_now(struct engine *eng, struct cmd *c)
{
    if (c->done_fn) {
        c->next = NULL;
        cmds_done_run(c);
        return;
    }
    pthread_mutex_lock(&eng->mu);
    c->done = 1;
    pthread_cond_broadcast(&eng->cv);
    pthread_mutex_unlock(&eng->mu);
}

/* Answer `c` once this turn has committed. */
void engine__reply_after_commit(struct engine *eng, struct cmd *c)
{
    XGROW(eng->replies, eng->replies_alloc, eng->nreplies + 1);
    eng->replies[eng->nreplies++] = c;
}

static char *strdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* The row of c's new execution as this turn's commit wrote it, copied for the
 * poster's answer. */
static void row_keep(const struct engine *eng, struct cmd *c)
{
    struct exec_row r;

    engine__exec_row(eng, c->ex, &r);
    r.workflow = xstrdup(r.workflow);
    r.params = xstrdup(r.params ? r.params : "{}");
    r.error = strdup_or_null(r.error);
    r.schedule_id = strdup_or_null(r.schedule_id);
    r.parent_id = strdup_or_null(r.parent_id);
    r.owner = NULL;
    c->row = r;
}

/* The commit of this turn succeeded (rc == 0) or failed: answer the waiters. */
void engine__replies_flush(struct engine *eng, int rc, const struct err *err)
{
    struct cmd *async = NULL, **tail = &async;
    int waiters = 0;

    if (!eng->nreplies)
        return;
    for (size_t i = 0; i < eng->nreplies; i++) {
        struct cmd *c = eng->replies[i];
        if (rc && !c->rc) {
            c->rc = rc;
            c->err = *err;
        }
        if (c->ex && !c->rc && !engine__exec_lost(c->ex))
            row_keep(eng, c);
        c->ex = NULL;
        if (c->done_fn) {
            c->next = NULL;
            *tail = c;
            tail = &c->next;
        } else {
            waiters = 1;
        }
    }
    if (waiters) {
        pthread_mutex_lock(&eng->mu);
        for (size_t i = 0; i < eng->nreplies; i++)
            if (!eng->replies[i]->done_fn)
                eng->replies[i]->done = 1;
        pthread_cond_broadcast(&eng->cv);
        pthread_mutex_unlock(&eng->mu);
    }
    eng->nreplies = 0;
    cmds_done_run(async);
}

void engine__replies_drop_new(struct engine *eng, const char *why)
{
    for (size_t i = 0; i < eng->nreplies; i++) {
        struct cmd *c = eng->replies[i];
        struct exec *ex;
        if (c->type != CMD_SUBMIT || c->rc || c->existing)
            continue;
        ex = engine__exec_find(eng, c->out_id);
        if (ex && engine__exec_unstored(ex))
            engine__exec_lose(eng, ex, why);
    }
}

/* The submission's Idempotency-Key names an execution started with other params. */
static void idem_conflict(struct cmd *c)
{
    c->rc = err_set(&c->err, ERR_CONFLICT,
                    "Idempotency-Key '%.64s' was already used for execution %s of '%s' with "
                    "other params (use a new key for new params)",
                    c->idem, c->out_id, c->name);
}

/*
 * c->out_id is the execution the store has for c's Idempotency-Key: 0 if it
 * was started with the same params (resolved against the version it ran,
 * defaults included), else ERR_CONFLICT (or a store error) in c->err.
 */
static int idem_check_stored(struct engine *eng, struct cmd *c)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct exec_detail *d = NULL;
    struct workflow *wf = NULL;
    char *def = NULL;
    int version = 0, rc, same;

    rc = store_execution_get(eng->st, c->out_id, &d, &c->err);
    if (rc)
        return rc;
    rc = store_workflow_get(eng->st, c->name, d->exec.workflow_version, &def, &version, &c->err);
    if (rc == ERR_NOT_FOUND) {
        /* The version is gone: the params as given, without defaults. */
        json_t *p = c->params ? json_loads(c->params, 0, NULL) : json_object();
        char *text = p ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        same = text && !strcmp(text, d->exec.params);
        free(text);
        json_decref(p);
        exec_detail_free(d);
        memset(&c->err, 0, sizeof(c->err));
        if (!same)
            idem_conflict(c);
        return same ? 0 : c->rc;
    }
    if (rc) {
        exec_detail_free(d);
        return rc;
    }
    same = dag_parse(def, strlen(def), &wf, &probs) == 0 &&
           engine__params_same(wf, d->exec.params, c->params);
    dag_problems_release(&probs);
    workflow_free(wf);
    free(def);
    exec_detail_free(d);
    if (!same)
        idem_conflict(c);
    return same ? 0 : c->rc;
}

/*
 * The workflow of definition `def` (version `version` of `name`), parsed: the
 * cached one when the same text was parsed before, else parsed now and kept.
 * Returns 0 with *out owned by the caller (workflow_free), or dag_parse's
 * error.
 */
static int wf_parse_cached(struct engine *eng, const char *name, int version, const char *def,
                           struct workflow **out)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct wf_cached *slot;
    int rc;

    for (size_t i = 0; i < ENGINE_WF_CACHE; i++) {
        struct wf_cached *w = &eng->wf_cache[i];
        if (w->wf && w->version == version && !strcmp(w->name, name) && !strcmp(w->def, def)) {
            *out = workflow_ref(w->wf);
            return 0;
        }
    }
    rc = dag_parse(def, strlen(def), out, &probs);
    dag_problems_release(&probs);
    if (rc)
        return rc;
    slot = &eng->wf_cache[eng->wf_cache_next++ % ENGINE_WF_CACHE];
    engine__wf_cache_drop(slot);
    slot->name = xstrdup(name);
    slot->def = xstrdup(def);
    slot->version = version;
    slot->wf = workflow_ref(*out);
    return 0;
}

void engine__wf_cache_drop(struct wf_cached *w)
{
    free(w->name);
    free(w->def);
    workflow_free(w->wf);
    memset(w, 0, sizeof(*w));
}

static void cmd_submit(struct engine *eng, struct cmd *c)
{
    struct workflow *wf = NULL;
    struct exec *ex = NULL;
    char *def = NULL;
    int version = 0;

    if (c->idem) {
        /* Same key in this very turn, or committed before. */
        for (struct exec *e = eng->execs; e; e = e->next) {
            if (e->idem_key && !engine__exec_lost(e) && !strcmp(e->idem_key, c->idem) &&
                !strcmp(e->wf->name, c->name)) {
                memcpy(c->out_id, e->id, ID_MAX);
                if (!engine__params_same(e->wf, e->params, c->params)) {
                    idem_conflict(c);
                    engine__reply_now(eng, c);
                    return;
                }
                c->existing = 1;
                engine__reply_after_commit(eng, c);
                return;
            }
        }
        c->rc = store_idempotency_get(eng->st, c->name, c->idem, c->out_id, &c->err);
        if (c->rc == 0) {
            c->rc = idem_check_stored(eng, c);
            if (c->rc == 0)
                c->existing = 1;
            engine__reply_now(eng, c);
            return;
        }
        if (c->rc != ERR_NOT_FOUND) {
            engine__reply_now(eng, c);
            return;
        }
        c->rc = 0;
    }
    c->rc = store_workflow_get(eng->st, c->name, 0, &def, &version, &c->err);
    if (c->rc) {
        if (c->rc == ERR_NOT_FOUND)
            err_set(&c->err, ERR_NOT_FOUND, "no workflow '%s'", c->name);
        engine__reply_now(eng, c);
        return;
    }
    c->rc = wf_parse_cached(eng, c->name, version, def, &wf);
    free(def);
    if (c->rc) {
        c->rc = err_set(&c->err, ERR_INTERNAL, "stored definition of '%s' version %d no longer parses",
                        c->name, version);
        engine__reply_now(eng, c);
        return;
    }
    c->rc = engine__exec_create(eng, wf, version, c->params, &ex, &c->err);
    if (c->rc) {
        engine__reply_now(eng, c);
        return;
    }
    if (c->idem)
        ex->idem_key = xstrdup(c->idem);
    engine__log_started(ex);
    memcpy(c->out_id, ex->id, ID_MAX);
    if (c->done_fn)
        c->ex = ex;
    eng->work_now = 1;
    engine__reply_after_commit(eng, c);
}

/*
 * Cancel an execution this node does not run: take it if nobody runs it (it
 * is queued, or its node died) and cancel it here; else ask its node, through
 * the store and a notification (c->existing = 1: asked, not yet done).
 */
static void cancel_elsewhere(struct engine *eng, struct cmd *c)
{
    struct exec *ex;
    int rc = engine__exec_take(eng, c->exec_id, 0, &c->err);

    if (rc == 0 && (ex = engine__exec_find(eng, c->exec_id)) != NULL) {
        log_info(COMP, "Execution %s cancelled", ex->id);
        engine__exec_abort(eng, ex, EXEC_CANCELLED, "cancelled");
        eng->work_now = 1;
        engine__reply_after_commit(eng, c);
        return;
    }
    if (rc != ERR_BUSY) {
        c->rc = rc;
        engine__reply_now(eng, c);
        return;
    }
    memset(&c->err, 0, sizeof(c->err));
    c->rc = store_execution_request_cancel(eng->st, c->exec_id, clock_now_ms(), &c->err);
    if (c->rc == 0)
        c->rc = engine__redis_notify_now(eng, "orch_cancel", c->exec_id, &c->err);
    if (c->rc == 0) {
        c->existing = 1;
        log_info(COMP, "Execution %s: cancel asked of the node that runs it", c->exec_id);
    }
    engine__reply_now(eng, c);
}

static void cmd_cancel(struct engine *eng, struct cmd *c)
{
    struct exec *ex = engine__exec_find(eng, c->exec_id);
    struct exec_detail *d = NULL;

    if (ex && !exec_status_is_final(ex->status)) {
        log_info(COMP, "Execution %s cancelled", ex->id);
        engine__exec_abort(eng, ex, EXEC_CANCELLED, "cancelled");
        eng->work_now = 1;
        engine__reply_after_commit(eng, c);
        return;
    }
    c->rc = store_execution_get(eng->st, c->exec_id, &d, &c->err);
    if (c->rc == 0) {
        if (exec_status_is_final(d->exec.status)) {
            c->rc = err_set(&c->err, ERR_CONFLICT, "execution '%s' has already %s", c->exec_id,
                            exec_status_name(d->exec.status));
        } else if (eng->cluster || eng->cfg.claim) {
            /* (cfg.claim: another orch process on this data directory may
             * run it, and reads cancel requests from the store) */
            exec_detail_free(d);
            cancel_elsewhere(eng, c);
            return;
        } else {
            c->rc = err_set(&c->err, ERR_CONFLICT,
                            "execution '%s' is run by another orch process", c->exec_id);
        }
        exec_detail_free(d);
    } else if (c->rc == ERR_NOT_FOUND) {
        err_set(&c->err, ERR_NOT_FOUND, "no execution '%s'", c->exec_id);
    }
    engine__reply_now(eng, c);
}

static void cmd_retry(struct engine *eng, struct cmd *c)
{
    struct exec *ex = engine__exec_find(eng, c->exec_id);
    if (ex && !exec_status_is_final(ex->status)) {
        c->rc = err_set(&c->err, ERR_CONFLICT, "execution '%s' is still running: cancel it first",
                        c->exec_id);
        engine__reply_now(eng, c);
        return;
    }
    if (ex) {
        /* Finished but still in memory this turn: its final state is not yet
         * committed; ask again on the next turn. */
        c->rc = err_set(&c->err, ERR_BUSY, "execution '%s' is finishing; try again", c->exec_id);
        engine__reply_now(eng, c);
        return;
    }
    c->rc = engine__exec_take(eng, c->exec_id, 1, &c->err);
    if (c->rc == ERR_NOT_FOUND)
        err_set(&c->err, ERR_NOT_FOUND, "no execution '%s'", c->exec_id);
    if (c->rc) {
        engine__reply_now(eng, c);
        return;
    }
    engine__reply_after_commit(eng, c);
}


/* Take the queued commands (in arrival order) and apply them to this turn. */
void engine__commands_run(struct engine *eng)
{
    struct cmd *list, *rev = NULL;

    pthread_mutex_lock(&eng->mu);
    list = eng->cmds;
    eng->cmds = NULL;
    pthread_mutex_unlock(&eng->mu);
    while (list) {
        struct cmd *n = list->next;
        list->next = rev;
        rev = list;
        list = n;
    }
    while (rev) {
        struct cmd *c = rev;
        rev = rev->next;
        switch (c->type) {
        case CMD_SUBMIT: cmd_submit(eng, c); break;
        case CMD_CANCEL: cmd_cancel(eng, c); break;
        case CMD_RETRY: cmd_retry(eng, c); break;
        case CMD_BACKFILL: engine__cmd_backfill(eng, c); break;
        }
    }
}

/* Refuse the commands still queued (the loop is ending). */
void engine__commands_refuse(struct engine *eng, const char *why)
{
    engine__commands_refuse_code(eng, ERR_BUSY, why);
}

void engine__commands_refuse_code(struct engine *eng, int code, const char *why)
{
    struct cmd *async = NULL;

    pthread_mutex_lock(&eng->mu);
    while (eng->cmds) {
        struct cmd *c = eng->cmds;
        eng->cmds = c->next;
        c->rc = err_set(&c->err, code, "%s", why);
        if (c->done_fn) {
            c->next = async;
            async = c;
        } else {
            c->done = 1;
        }
    }
    pthread_cond_broadcast(&eng->cv);
    pthread_mutex_unlock(&eng->mu);
    cmds_done_run(async);
}

/*
 * The shutdown grace is over: end the attempts still running. They are
 * recorded as cancelled ("interrupted") and their tasks queued again without
 * using their retry budget, so the next start runs them again: nothing lost.
 */
void engine__interrupt_running(struct engine *eng)
{
    /* Processes run for other nodes: ended; their owners retry them. */
    for (struct proc *p = eng->procs; p; p = p->next) {
        if (p->ex || p->reaped || p->stale)
            continue;
        p->rcancel = 1;
        engine__proc_terminate(eng, p);
        engine__remote_report(eng, p, "lost", -1, 0, "the node running it is shutting down",
                              NULL);
    }
    for (struct exec *ex = eng->execs; ex; ex = ex->next) {
        if (engine__exec_lost(ex))
            continue; /* another node's now */
        for (size_t i = 0; i < ex->nruns; i++) {
            struct trun *r = &ex->runs[i];
            const struct task_kind *k = engine__kind(engine__task(ex, i));
            struct attempt_row row;
            if (r->status != TASK_RUNNING || !k->interrupt)
                continue;
            memset(&row, 0, sizeof(row));
            if (!k->interrupt(eng, ex, i, &row))
                continue;
            /* Stopped: recorded interrupted, queued for the next start. */
            row.task_idx = (int)i;
            row.number = r->attempt;
            row.status = ATTEMPT_CANCELLED;
            row.node = eng->node;
            row.started_at = r->attempt_started_at;
            row.finished_at = clock_now_ms();
            row.exit_code = -1;
            row.error = (char *)"interrupted: orch is shutting down; the task runs again at the next start";
            engine__add_pending_attempt(eng, ex, 0, &row);
            engine__run_move(eng, ex, i, TASK_QUEUED);
            r->available_at = 0;
            log_warn(COMP_TASK, "Task '%s' interrupted by shutdown (attempt %d): it runs again at "
                     "the next start", engine__task_name(ex, i), r->attempt);
        }
    }
}

/* The wall-clock ms since which the oldest entry of `ex`'s ready FIFOs has
 * waited, or `oldest` if none is older. Entries of runs that left `queued`
 * stay behind, skipped (engine_internal.h): the first live one of each FIFO
 * is its oldest. */
static int64_t oldest_ready(const struct exec *ex, int64_t oldest)
{
    for (size_t k = 0; k < 3; k++) {
        const struct fifo *f = &ex->ready[k];
        for (size_t j = f->head; j < f->n; j++) {
            const struct trun *r = &ex->runs[f->v[j]];
            if (!r->queued_in_ready || r->status != TASK_QUEUED)
                continue;
            if (r->ready_at && r->ready_at < oldest)
                oldest = r->ready_at;
            break;
        }
    }
    return oldest;
}

void engine__stats_update(struct engine *eng)
{
    size_t active = eng->nexecs, queued = eng->nready; /* kept as they change */
    int64_t now = clock_now_ms(), longest = 0, oldest_q = 0;

    if (active <= 64 || now - eng->longest_at >= 1000) {
        /* The age of the oldest: one walk per second at most (in between, the
         * last one's figure ages with the clock). */
        int64_t since_q = now;
        size_t running = 0;
        for (struct exec *ex = eng->execs; ex; ex = ex->next) {
            int64_t since = ex->retried_at ? ex->retried_at : ex->started_at;
            if (ex->status == EXEC_RUNNING && now - since > longest)
                longest = now - since;
            running += ex->nrunning;
            if (queued)
                since_q = oldest_ready(ex, since_q);
        }
        eng->longest_at = now;
        eng->longest_ms = longest;
        eng->oldest_queued_ms = now - since_q;
        eng->tasks_running = running;
    } else if (eng->longest_ms > 0) {
        longest = eng->longest_ms + (now - eng->longest_at);
    }
    if (queued)
        oldest_q = eng->oldest_queued_ms + (now - eng->longest_at);
    pthread_mutex_lock(&eng->mu);
    eng->stats.running = !eng->stopping;
    eng->stats.workers_total = eng->cfg.workers;
    eng->stats.workers_busy = (int)eng->nprocs;
    eng->stats.executions_active = active;
    eng->stats.tasks_queued = queued;
    eng->stats.longest_running_ms = longest;
    eng->stats.oldest_queued_ms = oldest_q;
    eng->stats.tasks_running = eng->tasks_running;
    eng->stats.last_turn_at = now;
    eng->stats.turns++;
    pthread_mutex_unlock(&eng->mu);
}

/* Up to 10 batches of 200 finished executions before `before`: those of
 * `workflow`, or (NULL) of every workflow but the `nexcept` in `except`. */
static int purge_batches(struct engine *eng, const char *workflow, const char *const *except,
                         size_t nexcept, int64_t before)
{
    struct err err = ERR_INIT;
    int total = 0;

    for (int b = 0; b < 10; b++) {
        int del = 0;
        if (store_executions_purge(eng->st, workflow, except, nexcept, before, 200, &del, &err)) {
            log_warn("Database", "retention: %s", err.msg);
            break;
        }
        total += del;
        if (del < 200)
            break;
    }
    return total;
}

struct own_retention {
    const char *name;
    int64_t ms;
};

static int own_longest_first(const void *a, const void *b)
{
    const struct own_retention *x = a, *y = b;
    return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : strcmp(x->name, y->name);
}

/*
 * Retention: delete a few batches of old finished executions. A workflow
 * with a `retention` of its own is purged by it; the others (and those of
 * deleted workflows) by the server's. The server-wide purge must leave out
 * the workflows that keep their executions longer than the server does; the
 * store takes at most STORE_PURGE_EXCEPT_MAX names to leave out, so beyond
 * that the server-wide purge goes only as far back as the longest retention
 * it could not leave out, and the workflows without one of their own are
 * also purged one by one at the server's retention.
 */
void engine__purge_old(struct engine *eng)
{
    struct workflow_row *rows = NULL;
    size_t n = 0, nown = 0, nlong = 0, nplain = 0;
    struct own_retention *own = NULL;
    const char **except = NULL, **plain = NULL;
    int64_t now = clock_now_ms(), keep_ms = eng->cfg.retention_ms;
    struct err err = ERR_INIT;
    int total = 0;

    if (store_workflows_list(eng->st, &rows, &n, &err)) {
        log_warn("Database", "retention: cannot list workflows: %s", err.msg);
        return;
    }
    own = xcalloc(n ? n : 1, sizeof(*own));
    plain = xcalloc(n ? n : 1, sizeof(*plain));
    except = xcalloc(n ? n : 1, sizeof(*except));
    for (size_t i = 0; i < n; i++) {
        struct workflow *wf = NULL;
        if (dag_parse(rows[i].definition, strlen(rows[i].definition), &wf, NULL) != 0) {
            plain[nplain++] = rows[i].name; /* no retention of its own that we can read */
        } else if (wf->retention_ms > 0) {
            own[nown].name = rows[i].name;
            own[nown++].ms = wf->retention_ms;
            total += purge_batches(eng, rows[i].name, NULL, 0, now - wf->retention_ms);
        } else {
            plain[nplain++] = rows[i].name;
        }
        workflow_free(wf);
    }
    if (keep_ms > 0) {
        /* Those that keep executions longer than the server, longest first:
         * a shorter retention of their own already purged what it would. */
        qsort(own, nown, sizeof(*own), own_longest_first);
        while (nlong < nown && own[nlong].ms > keep_ms)
            nlong++;
        for (size_t i = 0; i < nlong && i < STORE_PURGE_EXCEPT_MAX; i++)
            except[i] = own[i].name;
        if (nlong > STORE_PURGE_EXCEPT_MAX) {
            int64_t cut = own[STORE_PURGE_EXCEPT_MAX].ms; /* the longest not left out */
            total += purge_batches(eng, NULL, except, STORE_PURGE_EXCEPT_MAX, now - cut);
            for (size_t i = 0; i < nplain; i++)
                total += purge_batches(eng, plain[i], NULL, 0, now - keep_ms);
        } else {
            total += purge_batches(eng, NULL, except, nlong, now - keep_ms);
        }
    }
    if (total)
        log_info(COMP, "Retention: deleted %d finished executions", total);
    free(own);
    free(plain);
    free(except);
    workflow_rows_free(rows, n);
}

