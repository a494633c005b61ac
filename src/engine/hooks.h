/*
 * hooks.h - what a subsystem writes with the turn's commit, and does after it.
 *
 * The commit (engine.c) writes the executions, task runs, attempts and output
 * of the turn; a subsystem with rows of its own (the scheduler's fires and
 * schedule states, the offers of remote tasks, the cluster's fence and
 * notifications) registers a hook instead of being called by name. In the
 * transaction the hooks run by phase, then in the order they were added:
 *   HOOK_FIRST       before anything is written (the cluster's fence)
 *   HOOK_AFTER_RUNS  after the executions and task runs (schedule fires refer
 *                    to the executions they created)
 *   HOOK_LAST        after attempts and output (offers, then NOTIFYs)
 * Loop thread only.
 */
#ifndef ORCH_ENGINE_HOOKS_H
#define ORCH_ENGINE_HOOKS_H

#include "base/err.h"

struct engine;

enum engine_hook_phase { HOOK_FIRST, HOOK_AFTER_RUNS, HOOK_LAST };

/* Returned by a hook's commit: roll back and start the transaction over (the
 * fence dropped executions another node took). */
#define ENGINE_HOOK_AGAIN 1

struct engine_hook {
    enum engine_hook_phase phase;
    /* Something to write: the turn commits even if nothing else changed. */
    int (*pending)(const struct engine *eng, void *arg);
    /* Its writes, inside the transaction: 0, ENGINE_HOOK_AGAIN, or an error. */
    int (*commit)(struct engine *eng, void *arg, struct err *err);
    /* The transaction committed: what it wrote is no longer pending. */
    void (*committed)(struct engine *eng, void *arg);
    /* The transaction failed with `rc` and was rolled back (its writes stay
     * pending): 1 asks for the commit to be tried again now. */
    int (*failed)(struct engine *eng, void *arg, int rc);
};

/* Add hook `h` (borrowed: static), called with `arg` (the subsystem's state). */
void engine__hook_add(struct engine *eng, const struct engine_hook *h, void *arg);
int engine__hooks_pending(const struct engine *eng);
/* The hooks of `phase`: 0, ENGINE_HOOK_AGAIN or the first error. */
int engine__hooks_commit(struct engine *eng, enum engine_hook_phase phase, struct err *err);
void engine__hooks_committed(struct engine *eng);
/* 1 if a hook asks to try again. */
int engine__hooks_failed(struct engine *eng, int rc);

/* The hooks of the subsystems (each in its own file). */
void engine__cluster_hooks(struct engine *eng);
void engine__remote_hooks(struct engine *eng);
void engine__sched_hooks(struct engine *eng);

#endif
