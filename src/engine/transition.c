/*
 * transition.c - the one writer of task-run and execution status: the table
 * of legal moves, the counters, the per-turn dirty lists, and the invariant
 * check run after each turn in debug and sanitizer builds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "engine_internal.h"
#include "kind.h"
#include "transition.h"
#include "base/banned.h"

#define P TASK_PENDING
#define Q TASK_QUEUED
#define R TASK_RUNNING
#define BIT(s) (1u << (s))

/*
 * Legal moves of a task run, by status left: the statuses it may enter.
 * pending:  its dependencies are final (queued, or skipped / upstream_failed),
 *           or its execution or group ends first (cancelled, skipped,
 *           upstream_failed: a group's waiting items end with the group).
 * queued:   an attempt starts (running); its condition is false (skipped) or
 *           cannot be evaluated, its list cannot be made, it waited longer
 *           than maxQueued (failed); it ends with its execution or group.
 * running:  the attempt ends: succeeded, failed, timed_out, cancelled, or
 *           queued again (a retry, an interrupted attempt); a running item
 *           never ends with its group (its own end comes).
 * A final status is left only by a retry of the execution, which takes the
 * execution up again from the store (engine__run_load).
 */
static const unsigned run_moves[TASK_STATUS_COUNT] = {
    [TASK_PENDING] = BIT(TASK_QUEUED) | BIT(TASK_SKIPPED) | BIT(TASK_UPSTREAM_FAILED) |
                     BIT(TASK_CANCELLED),
    [TASK_QUEUED] = BIT(TASK_RUNNING) | BIT(TASK_SKIPPED) | BIT(TASK_FAILED) |
                    BIT(TASK_UPSTREAM_FAILED) | BIT(TASK_CANCELLED),
    [TASK_RUNNING] = BIT(TASK_QUEUED) | BIT(TASK_SUCCEEDED) | BIT(TASK_FAILED) |
                     BIT(TASK_TIMED_OUT) | BIT(TASK_CANCELLED),
};

/*
 * Legal moves of an execution: made (queued in memory) it starts running;
 * running it ends, by its tasks (succeeded, failed) or early (cancelled,
 * timed_out; failed by maxRunning). A retry takes it up again from the store.
 */
static const unsigned exec_moves[EXEC_STATUS_COUNT] = {
    [EXEC_QUEUED] = BIT(EXEC_RUNNING),
    [EXEC_RUNNING] = BIT(EXEC_SUCCEEDED) | BIT(EXEC_FAILED) | BIT(EXEC_CANCELLED) |
                     BIT(EXEC_TIMED_OUT),
};

static const unsigned life_moves[] = {
    [EXEC_LIFE_NEW] = BIT(EXEC_LIFE_STORED) | BIT(EXEC_LIFE_HANDOFF) | BIT(EXEC_LIFE_LOST),
    [EXEC_LIFE_HANDOFF] = BIT(EXEC_LIFE_HANDED_OFF) | BIT(EXEC_LIFE_NEW) | BIT(EXEC_LIFE_LOST),
    [EXEC_LIFE_STORED] = BIT(EXEC_LIFE_LOST),
    [EXEC_LIFE_HANDED_OFF] = BIT(EXEC_LIFE_LOST),
    [EXEC_LIFE_LOST] = 0,
};

static const char *const life_names[] = {"new", "handoff", "stored", "handed_off", "lost"};

#undef P
#undef Q
#undef R

int engine__run_move_ok(enum task_status from, enum task_status to)
{
    if ((unsigned)from >= TASK_STATUS_COUNT || (unsigned)to >= TASK_STATUS_COUNT)
        return 0;
    return (run_moves[from] & BIT(to)) != 0;
}

int engine__exec_move_ok(enum exec_status from, enum exec_status to)
{
    if ((unsigned)from >= EXEC_STATUS_COUNT || (unsigned)to >= EXEC_STATUS_COUNT)
        return 0;
    return (exec_moves[from] & BIT(to)) != 0;
}

_Noreturn static void illegal(const char *what, const char *name, const char *exec_id,
                              const char *from, const char *to)
{
    fprintf(stderr, "BUG [Engine] illegal transition of %s '%s' from %s to %s (execution %s)\n",
            what, name, from, to, exec_id);
    fflush(stderr);
    abort();
}

/* A group (forEach) is running while its items are: it takes no slot. */
static int is_group(const struct exec *ex, size_t idx)
{
    return idx < ex->wf->ntasks && engine__is_group(&ex->wf->tasks[idx]);
}

static int holds_slot(const struct exec *ex, size_t idx, enum task_status st)
{
    return st == TASK_RUNNING && !is_group(ex, idx);
}

static void exec_list(struct engine *eng, struct exec *ex)
{
    if (ex->dirty_slot)
        return;
    XGROW(eng->dirty, eng->dirty_alloc, eng->ndirty + 1);
    eng->dirty[eng->ndirty++] = ex;
    ex->dirty_slot = eng->ndirty;
}

void engine__run_touch(struct engine *eng, struct exec *ex, size_t idx)
{
    struct trun *r = &ex->runs[idx];
    if (!r->dirty) {
        r->dirty = 1;
        XGROW(ex->drun, ex->drun_alloc, ex->ndrun + 1);
        ex->drun[ex->ndrun++] = idx;
    }
    exec_list(eng, ex);
}

void engine__run_move(struct engine *eng, struct exec *ex, size_t idx, enum task_status to)
{
    struct trun *r = &ex->runs[idx];
    enum task_status from = r->status;

    if (!engine__run_move_ok(from, to))
        illegal("task", engine__task_name(ex, idx), ex->id, task_status_name(from),
                task_status_name(to));
    if (holds_slot(ex, idx, from))
        ex->nrunning--;
    if (holds_slot(ex, idx, to))
        ex->nrunning++;
    if (task_status_is_final(to))
        ex->nfinal++;
    if (from == TASK_QUEUED)
        r->queued_in_ready = 0; /* its FIFO entry, if any, is skipped */
    if (to == TASK_QUEUED)
        r->queued_at = clock_now_ms(); /* a retry moves it on to its back-off's end */
    r->status = to;
    engine__run_touch(eng, ex, idx);
    if (task_status_is_final(to) || from == TASK_RUNNING)
        engine__exec_visit(eng, ex); /* its end may start others, or end the execution */
}

void engine__run_load(struct exec *ex, size_t idx, enum task_status st)
{
    struct trun *r = &ex->runs[idx];
    if (holds_slot(ex, idx, r->status))
        ex->nrunning--;
    if (task_status_is_final(r->status))
        ex->nfinal--;
    if (holds_slot(ex, idx, st))
        ex->nrunning++;
    if (task_status_is_final(st))
        ex->nfinal++;
    r->status = st;
}

void engine__run_remote(struct engine *eng, struct exec *ex, size_t idx, int on)
{
    struct trun *r = &ex->runs[idx];
    if (!r->remote == !on)
        return;
    r->remote = on != 0;
    if (on)
        eng->nremote++;
    else
        eng->nremote--;
}

void engine__exec_touch(struct engine *eng, struct exec *ex)
{
    ex->dirty = 1;
    exec_list(eng, ex);
    eng->exec_changes++;
}

void engine__exec_move(struct engine *eng, struct exec *ex, enum exec_status to)
{
    if (!engine__exec_move_ok(ex->status, to))
        illegal("execution", ex->id, ex->id, exec_status_name(ex->status), exec_status_name(to));
    ex->status = to;
    engine__exec_touch(eng, ex);
}

void engine__exec_life(struct engine *eng, struct exec *ex, enum exec_life to)
{
    if (!(life_moves[ex->life] & BIT(to)))
        illegal("the life of execution", ex->id, ex->id, life_names[ex->life], life_names[to]);
    ex->life = to;
    if (to == EXEC_LIFE_NEW || to == EXEC_LIFE_HANDOFF)
        exec_list(eng, ex); /* inserted by the next commit */
}

void engine__dirty_forget(struct engine *eng, struct exec *ex)
{
    size_t k = ex->dirty_slot;
    if (!k)
        return;
    eng->dirty[k - 1] = eng->dirty[eng->ndirty - 1];
    eng->dirty[k - 1]->dirty_slot = k;
    eng->ndirty--;
    ex->dirty_slot = 0;
}

void engine__dirty_clear(struct engine *eng)
{
    for (size_t k = 0; k < eng->ndirty; k++) {
        struct exec *ex = eng->dirty[k];
        if (ex->tasks_new) {
            for (size_t i = 0; i < ex->nruns; i++) {
                ex->runs[i].dirty = 0;
                ex->runs[i].is_new = 0;
                ex->runs[i].db_attempt = ex->runs[i].attempt;
            }
        } else {
            for (size_t j = 0; j < ex->ndrun; j++) {
                struct trun *r = &ex->runs[ex->drun[j]];
                r->dirty = 0;
                r->is_new = 0;
                r->db_attempt = r->attempt;
            }
        }
        ex->ndrun = 0;
        ex->dirty = 0;
        ex->tasks_new = 0;
        ex->dirty_slot = 0;
    }
    eng->ndirty = 0;
}

/* ------------------------------------------------------------------ invariants */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(msg, len, __VA_ARGS__);                                                           \
        return -1;                                                                                 \
    } while (0)

/* Runs of an execution above this are counted in full only by a full check
 * (each turn checks the runs it touched). */
#define CHECK_RUNS_MAX 2000

static int check_run(const struct exec *ex, size_t i, char *msg, size_t len)
{
    const struct trun *r = &ex->runs[i];
    const struct task_kind *k = engine__kind(engine__task(ex, i));
    const char *name = engine__task_name(ex, i);

    if (r->queued_in_ready && r->status != TASK_QUEUED)
        FAIL("task '%s' of %s is in the ready queue but %s", name, ex->id,
             task_status_name(r->status));
    if (r->status == TASK_RUNNING && !is_group(ex, i) && !r->proc && !r->http && !r->remote &&
        !(k->waits && k->waits(ex, i)))
        FAIL("task '%s' of %s is running with no process, request, child or offer", name,
             ex->id);
    if (r->remote && r->status != TASK_RUNNING)
        FAIL("task '%s' of %s is offered to another node but %s", name, ex->id,
             task_status_name(r->status));
    if (r->proc && r->status != TASK_RUNNING)
        FAIL("task '%s' of %s holds a process but is %s", name, ex->id,
             task_status_name(r->status));
    return 0;
}

static int check_exec(const struct engine *eng, const struct exec *ex, int full, char *msg,
                      size_t len)
{
    size_t ndirty = 0;

    if (ex->life == EXEC_LIFE_LOST || ex->life == EXEC_LIFE_HANDED_OFF)
        return 0; /* not advanced here any more */
    if (ex->nfinal > ex->nruns || ex->nrunning > ex->nruns)
        FAIL("execution %s counts %zu final and %zu running of %zu runs", ex->id, ex->nfinal,
             ex->nrunning, ex->nruns);
    if ((ex->dirty || ex->ndrun || engine__exec_unstored(ex)) &&
        (!ex->dirty_slot || ex->dirty_slot > eng->ndirty || eng->dirty[ex->dirty_slot - 1] != ex))
        FAIL("execution %s has changes to write but is not on the dirty list", ex->id);
    for (size_t j = 0; j < ex->ndrun; j++) {
        if (ex->drun[j] >= ex->nruns || !ex->runs[ex->drun[j]].dirty)
            FAIL("execution %s lists run %zu as dirty, which is not", ex->id, ex->drun[j]);
        if (check_run(ex, ex->drun[j], msg, len))
            return -1;
    }
    if (full || ex->nruns <= CHECK_RUNS_MAX) {
        size_t nfinal = 0, nrunning = 0;
        for (size_t i = 0; i < ex->nruns; i++) {
            const struct trun *r = &ex->runs[i];
            nfinal += task_status_is_final(r->status);
            nrunning += holds_slot(ex, i, r->status);
            ndirty += r->dirty != 0;
            if (check_run(ex, i, msg, len))
                return -1;
        }
        if (nfinal != ex->nfinal)
            FAIL("execution %s counts %zu final runs, has %zu", ex->id, ex->nfinal, nfinal);
        if (nrunning != ex->nrunning)
            FAIL("execution %s counts %zu running runs, has %zu", ex->id, ex->nrunning,
                 nrunning);
        if (ndirty != ex->ndrun)
            FAIL("execution %s lists %zu dirty runs, has %zu", ex->id, ex->ndrun, ndirty);
        if (exec_status_is_final(ex->status) && nfinal != ex->nruns)
            FAIL("execution %s is %s with %zu of %zu runs final", ex->id,
                 exec_status_name(ex->status), nfinal, ex->nruns);
    }
    return 0;
}

int engine__check(const struct engine *eng, int full, char *msg, size_t len)
{
    for (size_t k = 0; k < eng->ndirty; k++) {
        const struct exec *ex = eng->dirty[k];
        if (ex->dirty_slot != k + 1)
            FAIL("execution %s is listed dirty at %zu, says %zu", ex->id, k + 1, ex->dirty_slot);
        if (check_exec(eng, ex, full, msg, len))
            return -1;
    }
    if (full) {
        size_t nremote = 0;
        for (const struct exec *ex = eng->execs; ex; ex = ex->next) {
            if (check_exec(eng, ex, 1, msg, len))
                return -1;
            for (size_t i = 0; i < ex->nruns; i++)
                nremote += ex->runs[i].remote != 0;
        }
        if (nremote != eng->nremote)
            FAIL("%zu attempts counted as offered to other nodes, %zu are", eng->nremote,
                 nremote);
    }
    return 0;
}

void engine__check_turn(const struct engine *eng, int full)
{
#ifdef ORCH_ENGINE_CHECKS
    char msg[512];
    if (engine__check(eng, full, msg, sizeof(msg))) {
        fprintf(stderr, "BUG [Engine] invariant broken: %s\n", msg);
        fflush(stderr);
        abort();
    }
#else
    (void)eng;
    (void)full;
#endif
}
