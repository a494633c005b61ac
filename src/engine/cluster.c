/*
 * cluster.c - the engine as a node: heartbeats, and on PostgreSQL the rest of
 * scale-out: fencing, claims, hand-offs, wake-ups, the scheduler lease, and
 * surviving a lost database connection. engine.h says what each does; the
 * reasons are in docs/internals/cluster.md.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "commit.h"
#include "engine_internal.h"
#include "httptask.h"
#include "recovery.h"
#include "redisbus.h"
#include "remote.h"
#include "scheduler.h"
#include "subflow.h"

#include "base/banned.h"

#define COMP_DB "Database"
#define COMP_NODE "Cluster"
#define CH_WORK "orch_work"
#define CH_CANCEL "orch_cancel"
#define CH_SCHEDULES "orch_schedules"
#define LEASE_SCHEDULER "scheduler"
#define CLAIM_BATCH 64
#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 5000

/*
 * The node's state, behind eng->node_st. Invariants: node_on once
 * engine_set_node() named the node; claim_work only in a cluster; db_fd is
 * the watched connection's descriptor or -1; leader_until is meaningful only
 * while leader is set.
 */
struct node_state {
    int node_on;
    int64_t lease_ms, heartbeat_ms;
    int64_t next_heartbeat;   /* monotonic ms */
    int64_t next_cancel_poll; /* monotonic ms: local cancel requests (SQLite) */
    int claim_work;           /* this node claims executions and offers */
    int want_claim;           /* a notification or a heartbeat said there is work */
    int claim_own;            /* at start: take what we owned under this name */
    int claim_expired;        /* look for executions of dead nodes (once settled) */
    int leader;               /* holds the scheduler lease */
    int64_t leader_until;     /* monotonic ms: our lease is surely good until then */
    int64_t connected_since;  /* monotonic ms */
    int db_fd;
    struct watch w_db;
    int notify_work; /* NOTIFY the other nodes with this turn's commit */
    int notify_schedules;
};

struct node_state *engine__node_new(void)
{
    struct node_state *ns = xcalloc(1, sizeof(*ns));
    ns->db_fd = -1;
    return ns;
}

void engine__node_free(struct engine *eng)
{
    free(eng->node_st);
    eng->node_st = NULL;
}

int engine__node_on(const struct engine *eng)
{
    return eng->node_st->node_on;
}

int64_t engine__node_lease_ms(const struct engine *eng)
{
    return eng->node_st->lease_ms;
}

int engine__node_claims_work(const struct engine *eng)
{
    return eng->node_st->claim_work;
}

void engine__node_notify(struct engine *eng, enum node_notify what)
{
    if (what == NODE_NOTIFY_SCHEDULES)
        eng->node_st->notify_schedules = 1;
    else
        eng->node_st->notify_work = 1;
}

void engine__node_want_claim(struct engine *eng)
{
    eng->node_st->want_claim = 1;
}

static void db_watch(struct engine *eng)
{
    struct epoll_event ev;

    if (eng->node_st->db_fd >= 0)
        epoll_ctl(eng->epfd, EPOLL_CTL_DEL, eng->node_st->db_fd, NULL);
    eng->node_st->db_fd = store_listen_fd(eng->st);
    if (eng->node_st->db_fd < 0)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    eng->node_st->w_db.kind = WATCH_DB;
    ev.data.ptr = &eng->node_st->w_db;
    if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, eng->node_st->db_fd, &ev) != 0 && errno != EEXIST)
        log_warn(COMP_NODE, "cannot watch the database connection: %s", strerror(errno));
}

int engine_set_node(struct engine *eng, const struct engine_node *nd, struct err *err)
{
    static const char *const channels[] = {CH_WORK,      CH_CANCEL,     CH_SCHEDULES,
                                           "orch_offer", "orch_result", "orch_offer_cancel",
                                           "orch_nodes"};

    if (!nd->id || !*nd->id)
        return err_set(err, ERR_INVALID, "a node needs a name");
    free(eng->node_id);
    eng->node_id = xstrdup(nd->id);
    eng->node_st->node_on = 1;
    eng->node_st->lease_ms = nd->lease_ms > 0 ? nd->lease_ms : ENGINE_DEFAULT_LEASE_MS;
    eng->node_st->heartbeat_ms = eng->node_st->lease_ms / 3 > 50 ? eng->node_st->lease_ms / 3 : 50;
    eng->node_st->next_heartbeat = clock_mono_ms() + eng->node_st->heartbeat_ms;
    eng->node_st->connected_since = clock_mono_ms();
    eng->cluster = nd->cluster;
    eng->node_st->claim_work = nd->cluster && nd->claim_work;
    if (!eng->cluster)
        return 0;
    pthread_mutex_lock(&eng->mu);
    eng->stats.cluster = 1;
    pthread_mutex_unlock(&eng->mu);
    for (size_t i = 0; i < sizeof(channels) / sizeof(channels[0]); i++) {
        int rc = store_listen(eng->st, channels[i], err);
        if (rc)
            return rc;
    }
    db_watch(eng);
    engine__redis_start(eng, eng->cfg.redis); /* the fast path beside it, if set */
    /* The others learn our slots at once (they may offer us tasks). */
    store_notify(eng->st, "orch_nodes", eng->node_id, err);
    /* Look for work at once: what we owned under this name before a restart,
     * what is queued, what dead nodes left. */
    eng->node_st->claim_own = eng->node_st->claim_work;
    eng->node_st->want_claim = eng->node_st->claim_expired = eng->node_st->claim_work;
    eng->node_st->next_heartbeat = clock_mono_ms();
    return 0;
}

void engine_node_stop(struct engine *eng)
{
    struct err err = ERR_INIT;

    if (!eng->node_st->node_on || eng->db_down)
        return;
    if (eng->cluster && eng->node_st->leader)
        store_lease_release(eng->st, LEASE_SCHEDULER, eng->node_id, &err);
    if (store_node_stop(eng->st, eng->node_id, &err))
        log_warn(COMP_NODE, "Cannot record the stop of node '%s': %s", eng->node_id, err.msg);
    else if (eng->cluster) {
        store_notify(eng->st, CH_WORK, eng->node_id, &err); /* take what was left over */
        store_notify(eng->st, "orch_nodes", eng->node_id, &err);
    }
}

struct exec *engine__exec_find(struct engine *eng, const char *id)
{
    for (struct exec *ex = eng->execs; ex; ex = ex->next)
        if (!engine__exec_lost(ex) && !strcmp(ex->id, id))
            return ex;
    return NULL;
}

/* Ready command tasks that wait for a slot, over every execution. */
static size_t backlog(const struct engine *eng)
{
    size_t n = 0;
    for (const struct exec *ex = eng->execs; ex; ex = ex->next) {
        const struct fifo *f = &ex->ready[0];
        if (!engine__exec_lost(ex) && !engine__exec_handoff(ex))
            n += f->n - f->head;
    }
    return n;
}

/* Free slots after the backlog: how many executions (or offered tasks) this
 * node may take on. */
int engine__free_slots(const struct engine *eng)
{
    int64_t f;

    if (eng->pressure)
        return 0; /* back-pressure (monitor.c): take nothing on */
    f = (int64_t)eng->cfg.workers - (int64_t)eng->nprocs - (int64_t)backlog(eng);
    return f > 0 ? (int)f : 0;
}

int engine__node_busy(const struct engine *eng)
{
    return eng->node_st->claim_work && !eng->stopping && engine__free_slots(eng) == 0;
}

static void node_handoff(struct engine *eng)
{
    engine__node_notify(eng, NODE_NOTIFY_WORK);
    engine__node_want_claim(eng); /* ours too, once a slot is free */
}

const struct node_ops engine__node_ops = {
    .busy = engine__node_busy,
    .handoff = node_handoff,
};

/* ------------------------------------------------------------------ losing an execution */

void engine__exec_lose(struct engine *eng, struct exec *ex, const char *why)
{
    if (engine__exec_lost(ex))
        return;
    engine__exec_life(eng, ex, EXEC_LIFE_LOST);
    engine__exec_done(eng, ex); /* dropped once its processes are gone */
    log_warn(COMP_NODE, "Execution %s: %s; this node drops it and ends its processes", ex->id,
             why);
    engine__http_cancel_exec(eng, ex); /* its requests too: the new owner decides */
    for (struct proc *p = eng->procs; p; p = p->next) {
        if (p->ex != ex)
            continue;
        if (!p->reaped && !p->stale)
            child_signal_group(&p->ch, SIGKILL);
        p->stale = 1;
        p->pid_dirty = 0;
        strbuf_reset(&p->pend[0]);
        strbuf_reset(&p->pend[1]);
    }
    for (size_t i = 0; i < eng->nspawn; i++)
        if (eng->to_spawn[i]->ex == ex)
            eng->to_spawn[i]->stale = 1;
    engine__pending_attempts_drop(eng, ex);
    engine__sched_fires_drop(eng, ex->id);
    for (size_t i = 0; i < ex->nruns; i++)
        engine__run_remote(eng, ex, i, 0); /* its offers are the new owner's now */
    engine__timers_forget_exec(eng, ex);
    pthread_mutex_lock(&eng->mu);
    eng->stats.executions_lost++;
    pthread_mutex_unlock(&eng->mu);
}

/* ------------------------------------------------------------------ fencing */

/* Mark (ex->writes) the executions this turn writes anything of: one pass
 * over the pending attempts and the processes, then one over the runs. */
static void mark_writes(struct engine *eng)
{
    for (struct exec *ex = eng->execs; ex; ex = ex->next)
        ex->writes = ex->dirty_slot != 0; /* on the dirty list */
    for (size_t i = 0; i < eng->npatt; i++)
        eng->patt[i].ex->writes = 1;
    for (const struct proc *p = eng->procs; p; p = p->next)
        if (p->ex && (p->pend[0].len || p->pend[1].len || p->pid_dirty))
            p->ex->writes = 1;
}

/*
 * Inside the turn's transaction, before any write: lock the rows of the
 * executions this turn writes and drop those another node has taken.
 * *out_lost: how many were dropped (the caller rolls back and starts over).
 */
static int fence(struct engine *eng, int all, int *out_lost, struct err *err)
{
    char **ids = NULL, **lost = NULL;
    size_t n = 0, alloc = 0, nlost = 0;
    int rc;

    *out_lost = 0;
    if (!eng->cluster)
        return 0;
    if (!all)
        mark_writes(eng);
    for (struct exec *ex = eng->execs; ex; ex = ex->next) {
        if (engine__exec_lost(ex) || engine__exec_unstored(ex) || (!all && !ex->writes))
            continue;
        XGROW(ids, alloc, n + 1);
        ids[n++] = ex->id;
    }
    rc = store_executions_fence(eng->st, eng->node_id, ids, n, &lost, &nlost, err);
    free(ids);
    if (rc)
        return rc;
    for (size_t i = 0; i < nlost; i++) {
        struct exec *ex = engine__exec_find(eng, lost[i]);
        if (ex)
            engine__exec_lose(eng, ex, "another node took it over (this node's lease expired)");
        free(lost[i]);
    }
    free(lost);
    *out_lost = (int)nlost;
    return 0;
}

/* First in the turn's transaction: start over without what is not ours any more. */
static int fence_commit(struct engine *eng, void *arg, struct err *err)
{
    int nlost = 0, rc;

    (void)arg;
    if (!eng->cluster)
        return 0;
    rc = fence(eng, 0, &nlost, err);
    if (rc)
        return rc;
    return nlost ? ENGINE_HOOK_AGAIN : 0;
}

/* The pipelined fence found an execution another node took: ask which,
 * outside the transaction, drop them, and have the commit write the rest. */
static int fence_failed(struct engine *eng, void *arg, int rc)
{
    int nlost = 0;
    struct err ferr = ERR_INIT;

    (void)arg;
    return rc == ERR_FENCED && fence(eng, 0, &nlost, &ferr) == 0;
}

static int notify_pending(const struct engine *eng, void *arg)
{
    (void)arg;
    return eng->node_st->notify_work || eng->node_st->notify_schedules;
}

/* Last in the transaction: the other nodes hear of it once it is committed. */
static int notify_commit(struct engine *eng, void *arg, struct err *err)
{
    int rc = 0;

    (void)arg;
    if (eng->node_st->notify_work)
        rc = engine__redis_notify(eng, CH_WORK, eng->node_id, err);
    if (rc == 0 && eng->node_st->notify_schedules)
        rc = engine__redis_notify(eng, CH_SCHEDULES, eng->node_id, err);
    return rc;
}

static void notify_committed(struct engine *eng, void *arg)
{
    (void)arg;
    eng->node_st->notify_work = eng->node_st->notify_schedules = 0;
}

static const struct engine_hook fence_hook = {
    .phase = HOOK_FIRST,
    .commit = fence_commit,
    .failed = fence_failed,
};

static const struct engine_hook notify_hook = {
    .phase = HOOK_LAST,
    .pending = notify_pending,
    .commit = notify_commit,
    .committed = notify_committed,
};

void engine__cluster_hooks(struct engine *eng)
{
    engine__hook_add(eng, &fence_hook, NULL);
    engine__hook_add(eng, &notify_hook, NULL);
}

/*
 * The turn's commit hit a conflict: after a lost connection, the previous try
 * may have committed after all (an answer lost with the connection), or
 * another node fired the same due time. Drop every execution this turn
 * writes; the ones that existed before are read back from the store and
 * taken again (what was committed is kept, the rest is re-run). Returns how
 * many were dropped.
 */
int engine__conflict_recover(struct engine *eng)
{
    char **retake = NULL;
    size_t n = 0, alloc = 0, dropped = 0;

    mark_writes(eng);
    for (struct exec *ex = eng->execs; ex; ex = ex->next) {
        if (engine__exec_lost(ex) || !ex->writes)
            continue;
        if (!engine__exec_unstored(ex)) {
            XGROW(retake, alloc, n + 1);
            retake[n++] = xstrdup(ex->id);
        }
        engine__exec_lose(eng, ex, engine__exec_unstored(ex) ? "its creation conflicts with the store"
                                              : "its state conflicts with the store");
        dropped++;
    }
    for (size_t i = 0; i < n; i++) {
        struct err err = ERR_INIT;
        if (engine__exec_take(eng, retake[i], 0, &err))
            log_warn(COMP_NODE, "Execution %s not taken again: %s", retake[i], err.msg);
        free(retake[i]);
    }
    free(retake);
    return (int)dropped;
}

/* Outside a transaction: drop what was taken while we were away (a pause). */
static void check_ownership(struct engine *eng)
{
    struct err err = ERR_INIT;
    int nlost = 0;

    if (!eng->execs)
        return;
    if (fence(eng, 1, &nlost, &err) && !store_connected(eng->st))
        engine__db_lost(eng, &err);
}

/* ------------------------------------------------------------------ notifications */

static void on_notify(void *arg, const char *channel, const char *payload)
{
    struct engine *eng = arg;

    if (!strcmp(channel, CH_WORK)) {
        if (eng->node_st->claim_work)
            eng->node_st->want_claim = 1;
    } else if (!strcmp(channel, CH_SCHEDULES)) {
        engine__sched_reload(eng);
    } else if (!strcmp(channel, "orch_offer")) {
        if (eng->node_st->claim_work)
            engine__remote_want(eng, REMOTE_WANT_OFFERS);
    } else if (!strcmp(channel, "orch_result")) {
        if (eng->node_id && !strcmp(payload, eng->node_id))
            engine__remote_want(eng, REMOTE_WANT_RESULTS);
    } else if (!strcmp(channel, "orch_offer_cancel")) {
        engine__remote_want(eng, REMOTE_WANT_RCANCEL);
    } else if (!strcmp(channel, "orch_nodes")) {
        /* A node came or went: renew our view of the others' slots now. */
        if (eng->node_id && strcmp(payload, eng->node_id))
            eng->node_st->next_heartbeat = clock_mono_ms();
    } else if (!strcmp(channel, CH_CANCEL)) {
        struct exec *ex = engine__exec_find(eng, payload);
        if (ex && !exec_status_is_final(ex->status)) {
            log_info(COMP, "Execution %s cancelled (asked through %s)", ex->id,
                     eng->cluster ? "another node" : "another orch process");
            engine__exec_abort(eng, ex, EXEC_CANCELLED, "cancelled");
            eng->work_now = 1;
        }
    }
}

void engine__node_wake(struct engine *eng, const char *channel, const char *payload)
{
    on_notify(eng, channel, payload);
}

void engine__db_event(struct engine *eng)
{
    struct err err = ERR_INIT;

    if (!eng->cluster || eng->db_down)
        return;
    if (store_notifications(eng->st, on_notify, eng, &err))
        engine__db_lost(eng, &err);
}

/* ------------------------------------------------------------------ a lost connection */

void engine__db_lost(struct engine *eng, const struct err *err)
{
    int64_t now = clock_now_ms();

    pthread_mutex_lock(&eng->mu);
    eng->stats.db_ok = 0;
    if (!eng->stats.db_down_since)
        eng->stats.db_down_since = now;
    eng->stats.db_last_error_at = now;
    snprintf(eng->stats.db_error, sizeof(eng->stats.db_error), "%.199s", err->msg);
    pthread_mutex_unlock(&eng->mu);
    if (eng->db_down)
        return;
    eng->db_down = 1;
    eng->db_backoff = DB_BACKOFF_MIN_MS;
    eng->db_retry_at = clock_mono_ms() + eng->db_backoff;
    eng->node_st->leader = 0;
    if (eng->node_st->db_fd >= 0) {
        epoll_ctl(eng->epfd, EPOLL_CTL_DEL, eng->node_st->db_fd, NULL);
        eng->node_st->db_fd = -1;
    }
    log_error(COMP_DB, "Connection lost: %s; reconnecting with back-off (state changes are held "
              "and written once it is back)", err->msg);
}

void engine__db_retry(struct engine *eng)
{
    struct err err = ERR_INIT;
    int64_t now = clock_mono_ms();

    if (!eng->db_down || now < eng->db_retry_at)
        return;
    if (store_reconnect(eng->st, &err)) {
        eng->db_backoff = eng->db_backoff * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS
                                                                  : eng->db_backoff * 2;
        eng->db_retry_at = now + eng->db_backoff;
        log_debug(COMP_DB, "Still no connection: %s (next try in %lldms)", err.msg,
                  (long long)eng->db_backoff);
        pthread_mutex_lock(&eng->mu);
        eng->stats.db_last_error_at = clock_now_ms();
        snprintf(eng->stats.db_error, sizeof(eng->stats.db_error), "%.199s", err.msg);
        pthread_mutex_unlock(&eng->mu);
        return;
    }
    pthread_mutex_lock(&eng->mu);
    log_info(COMP_DB, "Connection restored after %lldms",
             (long long)(clock_now_ms() - eng->stats.db_down_since));
    eng->stats.db_ok = 1;
    eng->stats.db_down_since = 0;
    pthread_mutex_unlock(&eng->mu);
    eng->db_down = 0;
    eng->node_st->connected_since = now;
    eng->node_st->next_heartbeat = now; /* renew our lease first */
    eng->work_now = 1;
    if (eng->cluster) {
        db_watch(eng);
        eng->node_st->want_claim = eng->node_st->claim_work;
        engine__sched_reload(eng);
    }
}

/* ------------------------------------------------------------------ heartbeat, claims */

/* Claim and take up to `limit` executions; returns how many were claimed. */
static size_t claim(struct engine *eng, unsigned which, int limit)
{
    struct err err = ERR_INIT;
    char **ids = NULL;
    size_t n = 0, taken = 0;

    if (store_executions_claim(eng->st, eng->node_id, limit, eng->node_st->lease_ms, which, &ids,
                               &n, &err)) {
        if (!store_connected(eng->st))
            engine__db_lost(eng, &err);
        else
            log_warn(COMP_NODE, "Cannot claim executions: %s", err.msg);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct err e2 = ERR_INIT;
        if (!engine__exec_find(eng, ids[i])) {
            int rc = engine__exec_take(eng, ids[i], 0, &e2);
            if (rc == 0)
                taken++;
            else
                log_warn(COMP_NODE, "Claimed execution %s but cannot run it: %s", ids[i], e2.msg);
        }
        free(ids[i]);
    }
    free(ids);
    if (taken) {
        pthread_mutex_lock(&eng->mu);
        eng->stats.executions_claimed += taken;
        pthread_mutex_unlock(&eng->mu);
        if (which & STORE_CLAIM_EXPIRED)
            engine__metrics_taken_over(eng, taken);
        log_debug(COMP_NODE, "Claimed %zu execution%s", taken, taken == 1 ? "" : "s");
    }
    return n;
}

static void cancel_requests(struct engine *eng)
{
    struct err err = ERR_INIT;
    char **ids = NULL;
    size_t n = 0;

    if (store_cancel_requests(eng->st, eng->node_id ? eng->node_id : "", &ids, &n, &err)) {
        if (!store_connected(eng->st))
            engine__db_lost(eng, &err);
        else if (!eng->cluster)
            log_debug(COMP_NODE, "Cannot read cancel requests: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        on_notify(eng, CH_CANCEL, ids[i]);
        free(ids[i]);
    }
    free(ids);
}

/*
 * Local processes that share a data directory (SQLite: `orch run`, `orch
 * resume`, `orch server`) own executions through lock files, not node rows,
 * and have no notifications: `orch cancel ID` from another process records
 * the request in the store, and the owner reads it here, every
 * CANCEL_POLL_MS while it runs executions (one indexed query over the
 * unfinished ones), when `act`. Returns the milliseconds until the next poll,
 * -1: none.
 */
#define CANCEL_POLL_MS 500

int64_t engine__cancel_poll(struct engine *eng, int act)
{
    int64_t now;
    int running = 0;

    if (eng->cluster || !eng->cfg.claim || eng->db_down)
        return -1;
    for (const struct exec *ex = eng->execs; ex && !running; ex = ex->next)
        running = !engine__exec_lost(ex) && !exec_status_is_final(ex->status);
    if (!running)
        return -1;
    now = clock_mono_ms();
    if (act && now >= eng->node_st->next_cancel_poll) {
        eng->node_st->next_cancel_poll = now + CANCEL_POLL_MS;
        cancel_requests(eng);
    }
    return eng->node_st->next_cancel_poll > now ? eng->node_st->next_cancel_poll - now : 0;
}

static void lead(struct engine *eng)
{
    struct err err = ERR_INIT;
    int64_t asked = clock_mono_ms();
    int held = 0;

    if (!engine__sched_on(eng) || eng->stopping)
        return;
    if (store_lease_acquire(eng->st, LEASE_SCHEDULER, eng->node_id, eng->node_st->lease_ms, &held,
                            &err)) {
        if (!store_connected(eng->st))
            engine__db_lost(eng, &err);
        else
            log_warn(COMP_NODE, "Cannot renew the scheduler lease: %s", err.msg);
        return;
    }
    if (held && !eng->node_st->leader) {
        log_info(COMP_SCHED, "Node '%s' fires the schedules now (it holds the scheduler lease)",
                 eng->node_id);
        /* Due times since the previous leader's last turn are late, not missed. */
        engine__sched_lead(eng, clock_now_ms() - eng->node_st->lease_ms -
                                    2 * eng->node_st->heartbeat_ms);
    } else if (!held && eng->node_st->leader) {
        log_warn(COMP_SCHED, "Node '%s' no longer holds the scheduler lease: it stops firing",
                 eng->node_id);
    }
    eng->node_st->leader = held;
    /* The lease runs from when we asked; keep a margin of one heartbeat. */
    eng->node_st->leader_until =
        held ? asked + eng->node_st->lease_ms - eng->node_st->heartbeat_ms : 0;
    pthread_mutex_lock(&eng->mu);
    eng->stats.sched_leader = held;
    pthread_mutex_unlock(&eng->mu);
}

int engine__sched_may_fire(struct engine *eng)
{
    if (!eng->cluster)
        return 1;
    /* Fresh: the lease must still hold when the fire is made, late in a turn. */
    return eng->node_st->leader && !eng->db_down &&
           clock_mono_fresh_ms() < eng->node_st->leader_until;
}

void engine__node_tick(struct engine *eng)
{
    int64_t now = clock_mono_ms();

    if (!eng->node_st->node_on || eng->db_down)
        return;
    if (now >= eng->node_st->next_heartbeat) {
        struct err err = ERR_INIT;
        struct node_beat beat;
        int64_t claimable;
        int rc = store_node_heartbeat(eng->st, eng->node_id, eng->node_st->lease_ms, &beat, &err);
        claimable = beat.claimable;
        engine__remote_set_peer_slots(eng, beat.peer_slots);
        if (beat.open_offers > 0 && eng->node_st->claim_work)
            engine__remote_want(eng, REMOTE_WANT_OFFERS);
        eng->node_st->next_heartbeat = now + eng->node_st->heartbeat_ms;
        engine__subflow_want_check(eng); /* children that run on other nodes */
        if (rc) {
            if (!store_connected(eng->st)) {
                engine__db_lost(eng, &err);
                return;
            }
            if (rc == ERR_FULL || (rc == ERR_NOT_FOUND && !eng->cluster))
                /* The disk is full (the commits say so), or was at the start. */
                log_debug(COMP_NODE, "Heartbeat of node '%s' failed: %s", eng->node_id, err.msg);
            else
                log_warn(COMP_NODE, "Heartbeat of node '%s' failed: %s", eng->node_id, err.msg);
        } else {
            pthread_mutex_lock(&eng->mu);
            eng->stats.last_heartbeat_at = clock_now_ms();
            pthread_mutex_unlock(&eng->mu);
        }
        if (eng->cluster) {
            if (claimable > 0 && eng->node_st->claim_work)
                eng->node_st->want_claim = eng->node_st->claim_expired = 1;
            check_ownership(eng);
            if (!eng->db_down)
                cancel_requests(eng);
            if (!eng->db_down)
                lead(eng);
            if (eng->db_down)
                return;
            engine__remote_tick(eng, 1);
        }
    } else {
        engine__remote_tick(eng, 0);
    }
    if (!eng->cluster || !eng->node_st->claim_work || eng->stopping || eng->db_down)
        return;
    if (eng->node_st->claim_own) {
        /* What this node owned under its name before a restart. */
        eng->node_st->claim_own = 0;
        while (!eng->db_down && claim(eng, STORE_CLAIM_OWN, CLAIM_BATCH) >= CLAIM_BATCH)
            ;
    }
    if (eng->node_st->want_claim && !eng->db_down) {
        /* Queued work may be waiting: take what our free slots can run. With
         * none free, keep the flag: a slot freed later asks again. */
        int slots = engine__free_slots(eng);
        if (slots > 0 && claim(eng, STORE_CLAIM_UNOWNED, slots) < (size_t)slots)
            eng->node_st->want_claim = 0; /* the queue is empty */
    }
    /* Right after (re)connecting every heartbeat may look old: take over
     * from other nodes only once a whole lease has passed. */
    if (eng->node_st->claim_expired && !eng->db_down && !eng->pressure &&
        now >= eng->node_st->connected_since + eng->node_st->lease_ms) {
        eng->node_st->claim_expired = 0;
        if (claim(eng, STORE_CLAIM_EXPIRED, CLAIM_BATCH) >= CLAIM_BATCH)
            eng->node_st->claim_expired = 1;
    }
}

/* Milliseconds until the node needs a turn (heartbeat, reconnect), -1: never. */
int64_t engine__node_timeout(const struct engine *eng)
{
    int64_t now = clock_mono_ms(), at;

    if (!eng->node_st->node_on)
        return -1;
    if (eng->db_down)
        at = eng->db_retry_at;
    else if (eng->cluster && eng->node_st->claim_work && !eng->stopping &&
             (eng->node_st->claim_own || (eng->node_st->want_claim && engine__free_slots(eng) > 0)))
        at = now;
    else if (engine__remote_wants_turn(eng))
        at = now;
    else if (eng->cluster && eng->node_st->claim_work && !eng->stopping &&
             eng->node_st->claim_expired &&
             eng->node_st->connected_since + eng->node_st->lease_ms < eng->node_st->next_heartbeat)
        at = eng->node_st->connected_since + eng->node_st->lease_ms;
    else
        at = eng->node_st->next_heartbeat;
    return at > now ? at - now : 0;
}
