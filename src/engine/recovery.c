/*
 * recovery.c - taking an execution up from the store: `orch resume` after a
 * crash, a retry of a finished execution, a server start, a node taking over
 * the executions of a dead one (cluster.c) or a child left by a restart
 * (subflow.c).
 *
 * The execution is rebuilt from its rows (runs, attempts, offers), its
 * counters and retry budget recomputed, and each run put back where it was:
 * queued and pending runs through the state machine (engine__run_resume), a
 * running attempt through its kind's restore hook (kind.h), which takes it
 * up or records it lost with the helpers below. The result is committed at
 * once: an execution is ours only once the store says so. Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "commit.h"
#include "engine_internal.h"
#include "fanout.h"
#include "kind.h"
#include "recovery.h"
#include "remote.h"
#include "scheduler.h"

#include "base/banned.h"

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
    const struct sched *sc = engine__sched_find(eng, schedule_id);

    ex->schedule_id = xstrdup(schedule_id);
    ex->scheduled_for = scheduled_for;
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
             r->attempt,
             eng->cluster ? "its node died or lost its lease" : "its orch process died");
    if (eng->cluster && last && last->node)
        snprintf(why, sizeof(why), "lost: its node (%.120s) died or stopped renewing its lease",
                 last->node);
    else
        snprintf(why, sizeof(why), "lost: the orch process running it died");
    if (note)
        snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s", note);
    engine__attempt_end(eng, ex, idx, ATTEMPT_LOST, -1, 0, why, last ? last->pid : 0,
                        last ? last->pgid : 0, last ? last->proc_start : 0, allow_retry);
}

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
    /* Claimed, resumed or retried: its row changes (the stats' count, server.c). */
    eng->exec_changes++;
    if (eng->cluster) {
        rc = store_execution_claim_one(eng->st, exec_id, eng->node_id, engine__node_lease_ms(eng),
                                       err);
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
    ex = engine__exec_alloc(wf, d->exec.params ? d->exec.params : "{}");
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
        r->queued_at = tr->queued_at;
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
            r->queued_at = 0; /* set again when it is made ready */
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
    engine__exec_link_in(eng, ex);
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
                engine__remote_want(eng, REMOTE_WANT_RESULTS);
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
        if (r->status == TASK_QUEUED || (r->status == TASK_PENDING && r->remaining == 0)) {
            engine__run_resume(eng, ex, i, now);
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
        engine__exec_start_deadline(eng, ex, elapsed > 0 ? elapsed : 0);
    }
    if (retry)
        log_info(COMP, "Execution %s of '%s' retried: %zu of %zu task%s kept", ex->id,
                 ex->wf->name, ex->nfinal, ex->nruns, ex->nruns == 1 ? "" : "s");
    else
        log_info(COMP, "Execution %s of '%s' resumed: %zu of %zu task%s already final", ex->id,
                 ex->wf->name, ex->nfinal, ex->nruns, ex->nruns == 1 ? "" : "s");
    rc = engine__commit(eng, err);
    if (rc == ERR_FULL && !retry) {
        /* Taken as it is in the store: what changed waits in memory with the
         * rest of the turn's writes, until there is space to commit it. */
        engine__commit_hold(eng, err);
        rc = 0;
    }
    if (rc) {
        /* Not taken: nothing may point at it any more (its pending attempt
         * writes are part of the failed commit, kept for the next one). */
        engine__exec_unlink(eng, ex);
        engine__timers_forget_exec(eng, ex);
        engine__pending_attempts_drop(eng, ex);
        for (size_t i = 0; i < ex->nruns; i++)
            engine__run_remote(eng, ex, i, 0);
        engine__dirty_forget(eng, ex);
        engine__exec_free(ex);
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
