/*
 * proc.c - command tasks: the processes of their attempts, and the command
 * kind of the task-kind table (kind.h).
 *
 * An attempt of a command task is a process here (a `struct proc`, started by
 * child.c after the turn's commit) or, when no worker slot is free and the
 * cluster has room, an offer another node runs (remote.c). A `struct proc`
 * also runs an attempt another node offered (p->ex NULL). Loop thread only.
 */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "engine_internal.h"
#include "kind.h"
#include "proc.h"
#include "render.h"

#include "base/banned.h"

/* A process to start after the commit (in to_spawn), taking a slot. */
static struct proc *proc_new(struct engine *eng, struct exec *ex, const char *exec_id, size_t idx,
                             int attempt)
{
    struct proc *p = xcalloc(1, sizeof(*p));
    struct child init = CHILD_INIT;
    p->ch = init;
    p->ex = ex;
    snprintf(p->exec_id, sizeof(p->exec_id), "%s", exec_id);
    p->idx = idx;
    p->attempt = attempt;
    strbuf_init(&p->pend[0], 0);
    strbuf_init(&p->pend[1], 0);
    XGROW(eng->to_spawn, eng->spawn_alloc, eng->nspawn + 1);
    eng->to_spawn[eng->nspawn++] = p;
    eng->nprocs++;
    return p;
}

void engine__remote_run_local(struct engine *eng, struct exec *ex, size_t idx)
{
    struct trun *r = &ex->runs[idx];
    r->proc = proc_new(eng, ex, ex->id, idx, r->attempt);
    log_info(COMP_TASK, "Task '%s' taken back from the offers: runs here (attempt %d)",
             engine__task_name(ex, idx), r->attempt);
}

void engine__remote_run_for(struct engine *eng, const struct offer_row *o)
{
    struct proc *p = proc_new(eng, NULL, o->exec_id, (size_t)o->task_idx, o->attempt);
    p->spec = json_loads(o->spec ? o->spec : "{}", 0, NULL);
    p->owner = o->owner ? xstrdup(o->owner) : NULL;
}

/* ------------------------------------------------------------------ the command kind */

/* The process is started after the commit; with no slot free, it is offered. */
static void command_begin(struct engine *eng, struct exec *ex, size_t idx, int offer)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct trun *r = &ex->runs[idx];

    if (offer) {
        char msg[512];
        json_t *spec = engine__task_spec(ex, idx, msg, sizeof(msg));
        if (!spec) {
            /* A placeholder that cannot be filled will not be filled by a retry. */
            engine__attempt_fail(eng, ex, idx, ATTEMPT_FAILED, msg, 0);
            return;
        }
        engine__run_remote(eng, ex, idx, 1);
        engine__remote_offer(eng, ex, idx, spec);
        json_decref(spec);
        if (t->timeout_ms > 0)
            engine__attempt_timer(eng, TIMER_TASK_TIMEOUT, ex, idx, t->timeout_ms);
        return;
    }
    r->proc = proc_new(eng, ex, ex->id, idx, r->attempt);
}

static void command_cancel(struct engine *eng, struct exec *ex, size_t idx,
                           enum attempt_status ast, const char *reason)
{
    struct trun *r = &ex->runs[idx];
    struct proc *p = r->proc;

    if (!p) {
        /* Offered to, or run by, another node: it is told to stop. */
        engine__remote_cancel(eng, ex, idx);
        engine__attempt_fail(eng, ex, idx, ast, reason, 0);
        return;
    }
    r->proc = NULL;
    if (p->ch.pid)
        engine__proc_terminate(eng, p);
    else
        p->stale = 1; /* not started yet: the spawn is skipped */
    engine__attempt_end(eng, ex, idx, ast, -1, 0, reason, p->ch.pid, p->ch.pid, p->ch.proc_start,
                        0);
}

static void command_timeout(struct engine *eng, struct exec *ex, size_t idx, const char *msg)
{
    struct trun *r = &ex->runs[idx];
    struct proc *p = r->proc;

    if (!p) {
        /* Offered to, or run by, another node: it is told to stop. */
        if (!r->remote)
            return;
        engine__remote_cancel(eng, ex, idx);
        engine__attempt_fail(eng, ex, idx, ATTEMPT_TIMED_OUT, msg, 1);
        return;
    }
    r->proc = NULL;
    engine__proc_terminate(eng, p);
    engine__attempt_end(eng, ex, idx, ATTEMPT_TIMED_OUT, -1, 0, msg, p->ch.pid, p->ch.pid,
                        p->ch.proc_start, 1);
}

/* A process here is terminated and its attempt run again at the next start;
 * an attempt another node runs goes on there. */
static int command_interrupt(struct engine *eng, struct exec *ex, size_t idx,
                             struct attempt_row *ran)
{
    struct trun *r = &ex->runs[idx];
    struct proc *p = r->proc;

    if (!p)
        return 0;
    r->proc = NULL;
    engine__proc_terminate(eng, p);
    ran->pid = ran->pgid = p->ch.pid;
    ran->proc_start = p->ch.proc_start;
    return 1;
}

/* The process died with its owner (or is killed now): the attempt is lost. */
static void command_restore(struct engine *eng, struct exec *ex, size_t idx,
                            const struct attempt_row *last, int64_t now)
{
    (void)now;
    engine__attempt_restored(eng, ex, idx, last, 1);
    engine__attempt_lost(eng, ex, idx, last, 1, NULL);
}

const struct task_kind engine__kind_command = {
    .name = "command",
    .queue = KIND_QUEUE_SLOT,
    .begin = command_begin,
    .cancel = command_cancel,
    .timeout = command_timeout,
    .interrupt = command_interrupt,
    .restore = command_restore,
};
