/*
 * commit.c - the turn's commit: what changed this turn, found through the
 * dirty lists (the executions on eng->dirty, of each its dirty runs), the
 * pids of processes started, the pending attempt rows and the output read,
 * written in ONE transaction with the subsystems' hooks around them. A busy
 * database holds the writes and a timer tries again; a full disk holds them
 * and pauses the engine until space is freed. Nothing here is acted on before
 * it is committed: the loop (engine.c) acts after a successful commit.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/xalloc.h"
#include "commit.h"
#include "engine_internal.h"
#include "proc.h"

#include "base/banned.h"

/* ------------------------------------------------------------------ pending attempt rows */

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

void engine__pending_attempts_clear(struct engine *eng)
{
    for (size_t i = 0; i < eng->npatt; i++) {
        free(eng->patt[i].row.error);
        free(eng->patt[i].row.node);
    }
    eng->npatt = 0;
}

/* Forget the pending attempt writes of `ex` (it is freed without them written). */
void engine__pending_attempts_drop(struct engine *eng, const struct exec *ex)
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

/* ------------------------------------------------------------------ commit */

void engine__exec_row(const struct engine *eng, const struct exec *ex, struct exec_row *row)
{
    memset(row, 0, sizeof(*row));
    memcpy(row->id, ex->id, sizeof(row->id));
    row->workflow = ex->wf->name;
    row->workflow_version = ex->version;
    row->status = ex->status;
    row->params = ex->params;
    row->created_at = ex->created_at;
    row->started_at = ex->started_at;
    row->finished_at = ex->finished_at;
    row->error = ex->error;
    row->schedule_id = ex->schedule_id;
    row->scheduled_for = ex->scheduled_for;
    row->retried_at = ex->retried_at;
    row->parent_id = ex->parent_id;
    row->parent_task_idx = ex->parent_task_idx;
    row->depth = ex->depth;
    if (engine__exec_handoff(ex)) {
        /* For whichever node claims it first. */
        row->status = EXEC_QUEUED;
        row->started_at = 0;
    } else {
        row->owner = eng->node_id;
    }
}

static void proc_flush_logs(struct engine *eng, struct proc *p, int *failed, struct err *err);
static void proc_flush_undo(struct proc *p);

/*
 * Claim (cfg.claim) the new executions this commit inserts that are still
 * running: before the commit, so that no other process can see one
 * unclaimed. One that cannot be claimed (its lock directory is unwritable)
 * is recorded failed, with why.
 */
static void claim_new(struct engine *eng)
{
    for (size_t k = 0; k < eng->ndirty; k++) {
        struct exec *ex = eng->dirty[k];
        char why[ERR_MSG_MAX];
        int rc;

        if (!ex->unclaimed || engine__exec_lost(ex) || !engine__exec_unstored(ex) ||
            exec_status_is_final(ex->status))
            continue;
        rc = eng->cfg.claim(eng->cfg.owner_arg, ex->id);
        if (rc == 0) {
            ex->unclaimed = 0;
            continue;
        }
        snprintf(why, sizeof(why), "cannot claim execution '%s': %s", ex->id, err_str(rc));
        log_error(COMP, "%s", why);
        engine__exec_abort(eng, ex, EXEC_FAILED, why);
    }
}

int engine__commit(struct engine *eng, struct err *err)
{
    int rc, fenced = 0;
    int dirty = eng->npatt > 0 || eng->ndirty > 0;
    int64_t t0;

    for (struct proc *p = eng->procs; p && !dirty; p = p->next)
        if (p->pend[0].len || p->pend[1].len || (p->pid_dirty && engine__proc_pid_due(p)))
            dirty = 1;
    if (!dirty && !engine__hooks_pending(eng))
        return 0;

    if (eng->cfg.claim)
        claim_new(eng);
again:
    t0 = metrics_now_ns();
    rc = store_begin(eng->st, err);
    if (rc) {
        engine__metrics_commit(eng, 0, 0);
        return rc;
    }
    rc = engine__hooks_commit(eng, HOOK_FIRST, err); /* the cluster's fence */
    if (rc)
        goto fail;
    /* What changed this turn: the executions on the dirty list, and of each
     * its dirty runs (all of them when it is new). */
    for (size_t k = 0; k < eng->ndirty; k++) {
        struct exec *ex = eng->dirty[k];
        struct exec_row row;
        size_t nw;
        if (engine__exec_lost(ex))
            continue;
        engine__exec_row(eng, ex, &row);
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
            tr.queued_at = r->queued_at;
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
    rc = engine__hooks_commit(eng, HOOK_AFTER_RUNS, err); /* schedule fires and states */
    if (rc)
        goto fail;
    /* Pids of processes started last turn first: a final update of the same
     * attempt queued this turn (it may have exited already) must come after. */
    for (struct proc *p = eng->procs; p; p = p->next) {
        struct attempt_row row;
        struct trun *r;
        if (!p->ex || !p->pid_dirty || p->stale || engine__exec_lost(p->ex))
            continue; /* processes run for others: remote.c's hook */
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
    rc = engine__hooks_commit(eng, HOOK_LAST, err); /* offers, then notifications */
    if (rc)
        goto fail;
    rc = store_commit(eng->st, err);
    if (rc)
        goto fail;
    engine__metrics_commit(eng, metrics_now_ns() - t0, 1);

    /* Committed: the store now holds this turn's state. */
    engine__hooks_committed(eng);
    engine__pending_attempts_clear(eng);
    for (size_t k = 0; k < eng->ndirty; k++) {
        struct exec *ex = eng->dirty[k];
        if (ex->life == EXEC_LIFE_NEW)
            engine__exec_life(eng, ex, EXEC_LIFE_STORED);
        else if (ex->life == EXEC_LIFE_HANDOFF)
            engine__exec_life(eng, ex, EXEC_LIFE_HANDED_OFF);
    }
    engine__dirty_clear(eng);
    /* Before anyone is answered, what a reader of this turn's rows must see
     * with them: their count changed (the executions per hour), the slots
     * their running tasks hold (waitingOn); api/handlers_views.c. */
    pthread_mutex_lock(&eng->mu);
    eng->stats.exec_changes = eng->exec_changes;
    eng->stats.workers_busy = (int)eng->nprocs; /* the slots of the tasks now running */
    pthread_mutex_unlock(&eng->mu);
    for (struct proc *p = eng->procs; p; p = p->next) {
        p->pid_dirty = 0;
        p->undo = 0;
        strbuf_reset(&p->pend[0]);
        strbuf_reset(&p->pend[1]);
    }
    return 0;
fail:
    engine__metrics_commit(eng, 0, 0);
    store_rollback(eng->st);
    for (struct proc *p = eng->procs; p; p = p->next)
        proc_flush_undo(p);
    if (rc == ENGINE_HOOK_AGAIN)
        goto again; /* a hook changed what is written (the fence dropped executions) */
    /* A hook may repair and ask for another try (the fence: an execution
     * another node took is dropped, the rest written). */
    if (fenced++ < 3 && engine__hooks_failed(eng, rc))
        goto again;
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
 * fire, no heartbeat), and engine__commit_held_retry() tries again with back-off.
 */
void engine__commit_hold(struct engine *eng, const struct err *err)
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
int engine__commit_held_retry(struct engine *eng, struct err *err)
{
    int64_t now = clock_mono_ms(), since;
    int rc;

    if (now < eng->db_retry_at)
        return err_set(err, ERR_FULL, "%s", eng->stats.disk_error);
    rc = engine__commit(eng, err);
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
    engine__monitor_soon(eng); /* its back-pressure for disk space may be over too */
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

/* ------------------------------------------------------------------ a busy database */

#define COMMIT_BUSY_TRIES 50
#define COMMIT_BUSY_RETRY_MS 20

/*
 * Commit the turn; on a busy database hold it instead of waiting on the loop
 * thread: the writes stay pending in memory, nothing of them is acted on,
 * and a timer makes the turn that tries again (at most COMMIT_BUSY_TRIES
 * times, then the error is the loop's, as any other failure). Returns the
 * commit's result, 0 while held (eng->commit_held set).
 */
int engine__commit_or_hold(struct engine *eng, struct err *err)
{
    struct timer tm;
    int64_t now = clock_mono_ms();
    int rc;

    if (eng->commit_held && now < eng->busy_retry_at)
        return 0; /* not yet */
    rc = engine__commit(eng, err);
    if (rc != ERR_BUSY || ++eng->busy_tries >= COMMIT_BUSY_TRIES) {
        eng->commit_held = 0;
        eng->busy_tries = 0;
        return rc;
    }
    if (!eng->commit_held)
        log_debug("Database", "Busy: %s; the commit is held and tried again", err->msg);
    eng->commit_held = 1;
    eng->busy_retry_at = now + COMMIT_BUSY_RETRY_MS;
    memset(&tm, 0, sizeof(tm));
    tm.at = eng->busy_retry_at;
    tm.kind = TIMER_COMMIT_RETRY;
    engine__timer_add(&eng->timers, &tm);
    return 0;
}
