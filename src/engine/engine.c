/*
 * engine.c - the event loop: dispatch, the timers' firing, an engine's life,
 * submit and cancel. It sits above the core (exec.c, attempt.c,
 * transition.c, commit.c, timer.c, hooks.c, kind.c, watch.c) and the
 * subsystems, and calls both; neither calls it (docs/internals/engine.md).
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
#include "exec.h"
#include "fanout.h"
#include "httptask.h"
#include "notify.h"
#include "kind.h"
#include "netpolicy.h"
#include "proc.h"
#include "recovery.h"
#include "redisbus.h"
#include "remote.h"
#include "render.h"
#include "sched/cron.h"
#include "sched/tz.h"
#include "scheduler.h"
#include "subflow.h"

#include "base/banned.h"

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
    cfg->notify_url = NULL;
    cfg->notify_on = 0;
    cfg->notify_attempts = 8;
    cfg->notify_backoff_ms = 1000;
    cfg->public_url = NULL;
    cfg->task_user = 0;
    cfg->task_uid = 0;
    cfg->task_gid = 0;
    cfg->redis = NULL;
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
    if (r->queued_at > now)
        r->queued_at = now; /* the wall clock stepped back during a back-off */

    memset(&row, 0, sizeof(row));
    row.task_idx = (int)idx;
    row.number = r->attempt;
    row.status = ATTEMPT_RUNNING;
    row.node = offer ? NULL : eng->node; /* an offer: the runner's, once known */
    row.queued_at = r->queued_at;
    row.started_at = now;
    row.exit_code = -1;

    if (k->instant) {
        /* Completes inside this turn: one insert with the final status. */
        row.status = ATTEMPT_SUCCEEDED;
        row.finished_at = now;
        engine__add_pending_attempt(eng, ex, 1, &row);
        engine__metrics_attempt(eng, ex, idx, ATTEMPT_SUCCEEDED, 0);
        k->begin(eng, ex, idx, offer);
        engine__task_finalize(eng, ex, idx, TASK_SUCCEEDED, NULL);
        memset(&ev, 0, sizeof(ev));
        ev.type = ENGINE_EV_TASK_FINISHED;
        ev.task = engine__task_name(ex, idx);
        ev.task_status = TASK_SUCCEEDED;
        ev.attempt = r->attempt;
        engine__task_event(eng, ex, &ev);
        return;
    }
    engine__add_pending_attempt(eng, ex, 1, &row);
    memset(&ev, 0, sizeof(ev));
    ev.type = ENGINE_EV_TASK_STARTED;
    ev.task = engine__task_name(ex, idx);
    ev.task_status = TASK_RUNNING;
    ev.attempt = r->attempt;
    engine__task_event(eng, ex, &ev);
    k->begin(eng, ex, idx, offer);
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
        struct exec *ex = engine__exec_list_pop(&eng->visit, EXEC_LIST_VISIT);
        int no_slot = 0;
        if (!ex && eng->slot_wait.head &&
            ((engine__slots_busy(eng) < (size_t)eng->cfg.workers && !eng->pressure) ||
             engine__remote_offer_ok(eng)))
            ex = engine__exec_list_pop(&eng->slot_wait, EXEC_LIST_SLOT_WAIT);
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
                                engine__task_finalize(eng, ex, idx, TASK_SKIPPED,
                                              "skipped: its condition is false");
                            } else {
                                log_error(COMP_TASK, "Task '%s' failed: %s", engine__task_name(ex, idx), msg);
                                engine__task_finalize(eng, ex, idx, TASK_FAILED, msg);
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
                    if (k->queue == KIND_QUEUE_SLOT &&
                        (engine__slots_busy(eng) >= (size_t)eng->cfg.workers || eng->pressure)) {
                        /* No slot here (or back-pressure: no new process
                         * on this node): another node may run it. */
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
            engine__exec_check_done(eng, ex);
            if (no_slot && !ex->visit.on)
                engine__exec_list_append(&eng->slot_wait, ex, EXEC_LIST_SLOT_WAIT);
        }
    }
    return progress;
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
            engine__ready_push(eng, ex, tm->idx);
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
        snprintf(msg, sizeof(msg), "stuck: running for more than %s (maxRunning)", dur);
        engine__notify_stuck(eng, ex, msg);
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
        snprintf(msg, sizeof(msg), "stuck: task '%s' queued for more than %s (maxQueued)", name,
                 dur);
        engine__notify_stuck(eng, ex, msg);
        if (!ex->wf->stuck_fail) {
            log_warn(COMP, "Task '%s' of execution %s has been queued for more than %s "
                     "(maxQueued, stuckPolicy=warn)", name, ex->id, dur);
            return;
        }
        snprintf(msg, sizeof(msg), "stuck: queued for more than %s (maxQueued)", dur);
        log_error(COMP_TASK, "Task '%s' failed: %s", name, msg);
        r->queued_in_ready = 0;
        engine__task_finalize(eng, ex, tm->idx, TASK_FAILED, msg);
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
    if (eng->cfg.notify_attempts < 1)
        eng->cfg.notify_attempts = 8;
    if (eng->cfg.notify_backoff_ms < 1)
        eng->cfg.notify_backoff_ms = 1000;
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
    /* What the core calls of them (engine_internal.h: it names no function
     * of theirs). */
    eng->group_ops = &engine__group_ops;
    eng->child_ops = &engine__child_ops;
    eng->node_ops = &engine__node_ops;
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
    engine__notify_hooks(eng); /* with the execution rows they refer to */
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
    engine__redis_free(eng); /* before the store: its lost wake-ups need no NOTIFY */
    engine__http_free(eng);
    engine__notify_free(eng);
    netpolicy_free(eng->netpol);
    engine__procs_free(eng); /* never leaves processes running behind us */
    while (eng->execs) {
        struct exec *ex = eng->execs;
        eng->execs = ex->next;
        engine__dirty_forget(eng, ex);
        engine__exec_free(ex);
    }
    engine__pending_attempts_clear(eng);
    for (size_t i = 0; i < ENGINE_WF_CACHE; i++)
        engine__wf_cache_drop(&eng->wf_cache[i]);
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
    engine__monitor_free(eng);
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

/* Undo exec_create after a failed commit. */
static void exec_unlink_new(struct engine *eng, struct exec *ex)
{
    engine__exec_unlink(eng, ex);
    engine__timers_forget_exec(eng, ex);
    engine__pending_attempts_drop(eng, ex);
    if (eng->cfg.release && !ex->unclaimed)
        eng->cfg.release(eng->cfg.owner_arg, ex->id);
    engine__dirty_forget(eng, ex);
    engine__exec_free(ex);
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
                engine__exec_list_remove(&eng->done, ex, EXEC_LIST_DONE); /* runs on here */
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
        engine__exec_unlink(eng, ex);
        engine__timers_forget_exec(eng, ex);
        if (eng->cfg.release && !ex->unclaimed)
            eng->cfg.release(eng->cfg.owner_arg, ex->id);
        big = big || ex->nruns >= EXEC_TRIM_RUNS;
        engine__dirty_forget(eng, ex);
        engine__exec_free(ex);
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
        engine__monitor_turn(eng); /* before the claims: back-pressure holds them */
        engine__node_tick(eng);
        engine__redis_tick(eng); /* Redis: reconnect, offers read from its stream */
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
            engine__notify_act(eng);
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
            case WATCH_REDIS:
                engine__redis_event(eng, w, evs[i].events);
                break;
            }
        }
        timers_run(eng);
        if (engine__http_active(eng))
            engine__http_run(eng);
        if (engine__notify_active(eng))
            engine__notify_run(eng);
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
