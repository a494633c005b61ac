/*
 * remote.c - command tasks that run on another node (PostgreSQL scale-out).
 *
 * The owner of an execution keeps deciding everything about it; only the
 * process may run elsewhere. When the owner has a ready command task and no
 * free slot while other nodes have slots, it begins the attempt as usual
 * (running, attempt n, its attempt row) but offers it instead of spawning
 * it: a row in task_offers with what to run (argv or shell, the task's own
 * environment, the directory), inserted and notified (orch_offer) with the
 * turn's commit. A node with a free slot claims offers (FOR UPDATE SKIP
 * LOCKED; the owner too, when a slot of its own frees up: then it simply runs
 * the attempt itself), runs the process like its own, writes its output
 * chunks, reports its pid and then its result into the offer, and notifies
 * the owner (orch_result). The owner applies the result to the attempt
 * exactly as for a local process, and deletes the offer, in its fenced turn.
 *
 * Failures: a runner that dies is seen by the owner at its heartbeat (the
 * runner's lease passed): the attempt is lost and retried per policy. An
 * owner that dies: the node that takes the execution over adopts its offers
 * (they keep running where they are). A timeout or cancel on the owner marks
 * the offer cancelled; the runner, told (orch_offer_cancel, or at its
 * heartbeat), ends the process; its late result is then stale and dropped.
 */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "engine_internal.h"
#include "proc.h"
#include "redisbus.h"
#include "remote.h"

#include "base/banned.h"

#define COMP_NODE "Cluster"

/* The state of tasks offered to and run for other nodes (remote.c's), behind eng->remote. */
struct remote_state {
    int64_t peer_slots; /* worker slots of the other live nodes (heartbeat) */
    int want_offers;    /* offers may wait to be claimed */
    int want_results;   /* results of our offers may wait */
    int want_rcancel;   /* an owner may have given up a process we run */
    int notify_offers;
    struct roff_op *roff; /* offer writes made with the turn's commit */
    size_t nroff, roff_alloc;
    char **result_to; /* owners to tell that a result is in */
    size_t nresult_to, result_alloc;
    char **cancel_to;
    size_t ncancel_to, cancel_alloc;
};

struct remote_state *engine__remote_new(void)
{
    return xcalloc(1, sizeof(struct remote_state));
}

void engine__remote_want(struct engine *eng, enum remote_want what)
{
    switch (what) {
    case REMOTE_WANT_OFFERS:
        eng->remote->want_offers = 1;
        break;
    case REMOTE_WANT_RESULTS:
        eng->remote->want_results = 1;
        break;
    case REMOTE_WANT_RCANCEL:
        eng->remote->want_rcancel = 1;
        break;
    }
}

void engine__remote_set_peer_slots(struct engine *eng, int64_t slots)
{
    eng->remote->peer_slots = slots;
}

/* ------------------------------------------------------------------ pending writes */

static void op_add(struct engine *eng, enum roff_kind kind, const struct offer_row *o)
{
    struct roff_op *op;

    XGROW(eng->remote->roff, eng->remote->roff_alloc, eng->remote->nroff + 1);
    op = &eng->remote->roff[eng->remote->nroff++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->row = *o;
    op->row.owner = o->owner ? xstrdup(o->owner) : NULL;
    op->row.runner_node = o->runner_node ? xstrdup(o->runner_node) : NULL;
    op->row.spec = o->spec ? xstrdup(o->spec) : NULL;
    op->row.runner = o->runner ? xstrdup(o->runner) : NULL;
    op->row.status = o->status ? xstrdup(o->status) : NULL;
    op->row.error = o->error ? xstrdup(o->error) : NULL;
    op->row.output = o->output ? xstrdup(o->output) : NULL;
}

static void ops_clear(struct engine *eng)
{
    for (size_t i = 0; i < eng->remote->nroff; i++) {
        struct offer_row *o = &eng->remote->roff[i].row;
        free(o->owner);
        free(o->runner_node);
        free(o->spec);
        free(o->runner);
        free(o->status);
        free(o->error);
        free(o->output);
    }
    eng->remote->nroff = 0;
}

static void key_of(struct offer_row *o, const char *exec_id, size_t idx, int attempt)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->exec_id, sizeof(o->exec_id), "%s", exec_id);
    o->task_idx = (int)idx;
    o->attempt = attempt;
    o->exit_code = -1;
}

/* Inside the turn's transaction: the offers' writes and the runners' reports. */
static int remote_commit(struct engine *eng, void *arg, struct err *err)
{
    int rc = 0;

    (void)arg;
    if (!eng->cluster)
        return 0;

    for (size_t i = 0; i < eng->remote->nroff && rc == 0; i++) {
        struct roff_op *op = &eng->remote->roff[i];
        switch (op->kind) {
        case ROFF_PUT:
            rc = store_offer_put(eng->st, &op->row, err);
            if (rc == 0) /* into the Redis stream too, once committed */
                engine__redis_offer(eng, op->row.exec_id, op->row.task_idx, op->row.attempt);
            break;
        case ROFF_DELETE:
            rc = store_offer_delete(eng->st, op->row.exec_id, op->row.task_idx,
                                    op->row.attempt, err);
            break;
        case ROFF_CANCEL:
            rc = store_offer_cancel(eng->st, op->row.exec_id, op->row.task_idx,
                                    op->row.attempt, err);
            break;
        case ROFF_REPORT: rc = store_offer_report(eng->st, &op->row, err); break;
        }
    }
    /* Pids of processes run for others, started last turn (one that has
     * ended already is in its report). */
    for (struct proc *p = eng->procs; p && rc == 0; p = p->next) {
        struct offer_row o;
        if (p->ex || !p->pid_dirty || p->stale || p->reaped)
            continue;
        key_of(&o, p->exec_id, p->idx, p->attempt);
        o.runner_node = eng->node_id;
        o.runner = eng->node;
        o.pid = p->ch.pid;
        o.proc_start = p->ch.proc_start;
        rc = store_offer_report(eng->st, &o, err);
    }
    if (rc == 0 && eng->remote->notify_offers)
        rc = engine__redis_notify(eng, "orch_offer", eng->node_id, err);
    for (size_t i = 0; i < eng->remote->nresult_to && rc == 0; i++)
        rc = engine__redis_notify(eng, "orch_result", eng->remote->result_to[i], err);
    for (size_t i = 0; i < eng->remote->ncancel_to && rc == 0; i++)
        rc = engine__redis_notify(eng, "orch_offer_cancel", eng->remote->cancel_to[i], err);
    return rc;
}

static void strv_clear(char **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    *n = 0;
}

static void remote_committed(struct engine *eng, void *arg)
{
    (void)arg;
    ops_clear(eng);
    eng->remote->notify_offers = 0;
    strv_clear(eng->remote->result_to, &eng->remote->nresult_to);
    strv_clear(eng->remote->cancel_to, &eng->remote->ncancel_to);
}

static int remote_pending(const struct engine *eng, void *arg)
{
    (void)arg;
    if (eng->remote->nroff || eng->remote->notify_offers || eng->remote->nresult_to ||
        eng->remote->ncancel_to)
        return 1;
    for (const struct proc *p = eng->procs; p; p = p->next)
        if (!p->ex && p->pid_dirty)
            return 1;
    return 0;
}

/* Written after the attempts and output, before the NOTIFYs (cluster.c). */
static const struct engine_hook remote_hook = {
    .phase = HOOK_LAST,
    .pending = remote_pending,
    .commit = remote_commit,
    .committed = remote_committed,
};

void engine__remote_hooks(struct engine *eng)
{
    engine__hook_add(eng, &remote_hook, NULL);
}

static void add_target(char ***v, size_t *n, size_t *alloc, const char *node)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i], node))
            return;
    XGROW(*v, *alloc, *n + 1);
    (*v)[(*n)++] = xstrdup(node);
}

/* ------------------------------------------------------------------ owner side */

int engine__remote_offer_ok(const struct engine *eng)
{
    return eng->cluster && engine__node_claims_work(eng) && !eng->stopping && !eng->db_down &&
           (int64_t)eng->nremote < eng->remote->peer_slots;
}

void engine__remote_offer(struct engine *eng, struct exec *ex, size_t idx, json_t *spec)
{
    struct offer_row o;
    char *text = json_dumps(spec, JSON_COMPACT);

    key_of(&o, ex->id, idx, ex->runs[idx].attempt);
    o.owner = eng->node_id;
    o.spec = text;
    o.offered_at = clock_now_ms();
    op_add(eng, ROFF_PUT, &o);
    free(text);
    eng->remote->notify_offers = 1;
    log_info(COMP_TASK, "Task '%s' offered to the other nodes (attempt %d)",
             engine__task_name(ex, idx), ex->runs[idx].attempt);
}

/* The owner gives up a remote attempt (timeout, cancel): tell its runner. */
void engine__remote_cancel(struct engine *eng, struct exec *ex, size_t idx)
{
    struct offer_row o;
    struct trun *r = &ex->runs[idx];

    if (!r->remote)
        return;
    engine__run_remote(eng, ex, idx, 0);
    key_of(&o, ex->id, idx, r->attempt);
    op_add(eng, ROFF_CANCEL, &o);
    /* Whoever runs it looks at its cancelled offers when told. */
    add_target(&eng->remote->cancel_to, &eng->remote->ncancel_to, &eng->remote->cancel_alloc, "*");
}

/* Results and dead runners of our offers. */
static void collect_results(struct engine *eng)
{
    struct offer_row *rows = NULL;
    size_t n = 0;
    struct err err = ERR_INIT;

    if (store_offers_owned(eng->st, eng->node_id, engine__node_lease_ms(eng), &rows, &n, &err)) {
        if (!store_connected(eng->st))
            engine__db_lost(eng, &err);
        else
            log_warn(COMP_NODE, "Cannot read the results of offered tasks: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        struct offer_row *o = &rows[i];
        struct exec *ex = engine__exec_find(eng, o->exec_id);
        struct trun *r = ex && o->task_idx >= 0 && (size_t)o->task_idx < ex->nruns
                             ? &ex->runs[o->task_idx]
                             : NULL;
        struct offer_row del;
        key_of(&del, o->exec_id, (size_t)o->task_idx, o->attempt);
        if (o->runner_gone && !o->finished_at) {
            /* Its runner stopped renewing its lease: should it come back, the
             * cancel mark makes it end the process; the row goes once it has
             * reported. */
            op_add(eng, ROFF_CANCEL, &del);
            add_target(&eng->remote->cancel_to, &eng->remote->ncancel_to,
                       &eng->remote->cancel_alloc, "*");
        } else {
            op_add(eng, ROFF_DELETE, &del);
        }
        if (!r || !r->remote || r->attempt != o->attempt || r->status != TASK_RUNNING) {
            log_debug(COMP_TASK, "Dropped the late result of an offered attempt %d of %s",
                      o->attempt, o->exec_id);
            continue;
        }
        engine__run_remote(eng, ex, (size_t)o->task_idx, 0);
        engine__remote_result(eng, ex, (size_t)o->task_idx, o);
    }
    offer_rows_free(rows, n);
}

/* ------------------------------------------------------------------ runner side */

/* Claim up to `slots` offers and start them; how many were claimed, -1 on error. */
static int run_offers(struct engine *eng, int slots)
{
    struct offer_row *rows = NULL;
    size_t n = 0;
    struct err err = ERR_INIT;

    if (store_offers_claim(eng->st, eng->node_id, slots, &rows, &n, &err)) {
        if (!store_connected(eng->st))
            engine__db_lost(eng, &err);
        else
            log_warn(COMP_NODE, "Cannot claim offered tasks: %s", err.msg);
        return -1;
    }
    if ((int)n < slots)
        eng->remote->want_offers = 0; /* none left */
    for (size_t i = 0; i < n; i++) {
        struct offer_row *o = &rows[i];
        if (o->owner && !strcmp(o->owner, eng->node_id)) {
            /* Our own: run it here, like any attempt of ours. */
            struct exec *ex = engine__exec_find(eng, o->exec_id);
            struct offer_row del;
            key_of(&del, o->exec_id, (size_t)o->task_idx, o->attempt);
            op_add(eng, ROFF_DELETE, &del);
            if (ex && o->task_idx >= 0 && (size_t)o->task_idx < ex->nruns &&
                ex->runs[o->task_idx].remote && ex->runs[o->task_idx].attempt == o->attempt) {
                engine__run_remote(eng, ex, (size_t)o->task_idx, 0);
                engine__remote_run_local(eng, ex, (size_t)o->task_idx);
            }
            continue;
        }
        engine__remote_run_for(eng, o);
        {
            json_t *spec = json_loads(o->spec ? o->spec : "{}", 0, NULL);
            const char *task = json_string_value(json_object_get(spec, "task"));
            log_info(COMP_TASK, "Task '%s' of %s runs here for node '%s' (attempt %d)",
                     task ? task : "?", o->exec_id, o->owner ? o->owner : "?", o->attempt);
            json_decref(spec);
        }
    }
    offer_rows_free(rows, n);
    return (int)n;
}

int engine__remote_claim(struct engine *eng, int limit)
{
    if (!eng->cluster || !engine__node_claims_work(eng) || eng->db_down || eng->stopping ||
        limit <= 0)
        return 0;
    return run_offers(eng, limit);
}

/* The owner asked to stop some of the processes we run for it. */
static void cancel_runs(struct engine *eng)
{
    struct offer_row *rows = NULL;
    size_t n = 0;
    struct err err = ERR_INIT;

    if (store_offers_cancelled(eng->st, eng->node_id, &rows, &n, &err)) {
        if (!store_connected(eng->st))
            engine__db_lost(eng, &err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        for (struct proc *p = eng->procs; p; p = p->next) {
            if (p->ex || p->rcancel || p->idx != (size_t)rows[i].task_idx ||
                p->attempt != rows[i].attempt || strcmp(p->exec_id, rows[i].exec_id))
                continue;
            p->rcancel = 1;
            log_info(COMP_TASK, "Task %zu of %s: its owner gave it up; ending it", p->idx,
                     p->exec_id);
            if (p->ch.pid)
                engine__proc_terminate(eng, p);
            else
                p->stale = 1;
        }
    }
    offer_rows_free(rows, n);
}

/* Queue the result of a process run for another node (after it exited). */
void engine__remote_report(struct engine *eng, struct proc *p, const char *status, int code,
                           int sig, const char *error, const char *output)
{
    struct offer_row o;

    key_of(&o, p->exec_id, p->idx, p->attempt);
    o.runner_node = eng->node_id;
    o.runner = eng->node;
    o.pid = p->ch.pid;
    o.proc_start = p->ch.proc_start;
    o.finished_at = clock_now_ms();
    o.status = (char *)status;
    o.exit_code = code;
    o.signal = sig;
    o.error = (char *)error;
    o.output = (char *)output;
    op_add(eng, ROFF_REPORT, &o);
    if (p->owner)
        add_target(&eng->remote->result_to, &eng->remote->nresult_to, &eng->remote->result_alloc,
                   p->owner);
    eng->work_now = 1;
}

/* ------------------------------------------------------------------ the turn */

static int runs_for_others(const struct engine *eng)
{
    for (const struct proc *p = eng->procs; p; p = p->next)
        if (!p->ex)
            return 1;
    return 0;
}

void engine__remote_tick(struct engine *eng, int heartbeat)
{
    int slots;

    if (!eng->cluster || !engine__node_claims_work(eng) || eng->db_down)
        return;
    /* At a heartbeat, look only when there is something to look for: an idle
     * node issues no query here. */
    if (eng->remote->want_results || (heartbeat && eng->nremote))
        collect_results(eng);
    eng->remote->want_results = 0;
    if (eng->remote->want_rcancel || (heartbeat && runs_for_others(eng)))
        cancel_runs(eng);
    eng->remote->want_rcancel = 0;
    if (eng->stopping || eng->db_down)
        return;
    slots = engine__free_slots(eng);
    if (eng->remote->want_offers && slots > 0)
        run_offers(eng, slots);
}

int engine__remote_wants_turn(const struct engine *eng)
{
    return eng->cluster && engine__node_claims_work(eng) && !eng->stopping &&
           (eng->remote->want_results || eng->remote->want_rcancel ||
            (eng->remote->want_offers && engine__free_slots(eng) > 0));
}

void engine__remote_free(struct engine *eng)
{
    if (!eng->remote)
        return;
    ops_clear(eng);
    free(eng->remote->roff);
    strv_clear(eng->remote->result_to, &eng->remote->nresult_to);
    strv_clear(eng->remote->cancel_to, &eng->remote->ncancel_to);
    free(eng->remote->result_to);
    free(eng->remote->cancel_to);
    free(eng->remote);
    eng->remote = NULL;
}
