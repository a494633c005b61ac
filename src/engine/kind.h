/*
 * kind.h - task kinds behind one table.
 *
 * What a task does once it starts is its kind's business; the engine's loop,
 * dispatch, cancel, timers, shutdown and recovery reach it only through its
 * entry in this table (engine__kind()), never by testing the task's type.
 * One entry per kind, each in the file of its kind:
 *
 *   command    proc.c         a process here (child.c), or an offer to another node
 *   noop       kind_simple.c  succeeds in the turn it begins
 *   sleep      kind_simple.c  a timer
 *   http       httptask.c     one request through httpcall.c
 *   workflow   subflow.c      a child execution
 *
 * Adding a kind: its type in src/dag (the definition's "type" and what the
 * parser checks), one new file that defines a `const struct task_kind`, its
 * extern below and its line in the table of kind.c. docs/internals/engine.md
 * has the steps.
 *
 * The hooks are called on the loop thread, for the current attempt of run
 * `idx` of `ex` while it is running. They end an attempt only through the
 * attempt functions below and those of recovery.h (which retry or finalize
 * the task per its policy), never by writing a status.
 */
#ifndef ORCH_ENGINE_KIND_H
#define ORCH_ENGINE_KIND_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct engine;
struct exec;
struct dag_task;

/* Which ready FIFO of its execution a queued run waits in (struct exec). */
enum kind_queue {
    KIND_QUEUE_SLOT = 0, /* needs a worker slot of this node (or is offered to another) */
    KIND_QUEUE_WAIT = 1, /* no slot, but counts against the workflow's concurrency */
    KIND_QUEUE_FREE = 2  /* neither: it completes in the turn it begins */
};

struct task_kind {
    const char *name; /* as definitions write it */
    enum kind_queue queue;
    /* Succeeds when it begins: begin() only logs; the engine inserts its
     * attempt final, with no "started" event, and finalizes the task. Dispatch
     * looks at the ready FIFOs again after it (its end may make more tasks
     * ready). */
    int instant;

    /*
     * The attempt was just recorded running (and reported started): start its
     * work. `offer`: no worker slot is free here and another node may run it
     * (KIND_QUEUE_SLOT only). Work that must wait for the commit (a process,
     * a request) is queued and started by the engine's act step.
     */
    void (*begin)(struct engine *eng, struct exec *ex, size_t idx, int offer);
    /*
     * The execution ends early (cancel, its timeout): stop the attempt's work
     * and end the attempt with `ast` and `reason`, without retry. NULL: there
     * is nothing to stop; the attempt just ends.
     */
    void (*cancel)(struct engine *eng, struct exec *ex, size_t idx, enum attempt_status ast,
                   const char *reason);
    /* The task's own timeout fired (TIMER_TASK_TIMEOUT): stop the work and end
     * the attempt as timed out with `msg`. NULL: the kind arms no such timer. */
    void (*timeout)(struct engine *eng, struct exec *ex, size_t idx, const char *msg);
    /*
     * The server stops and its grace is over. 1: the work was stopped and the
     * attempt is to run again at the next start (the engine records it
     * interrupted and queues the task; `ran` gets the pid, pgid and start time
     * of its process, if any). 0: the attempt goes on in the store as it is
     * (or the hook ended it itself). NULL: always 0.
     */
    int (*interrupt)(struct engine *eng, struct exec *ex, size_t idx, struct attempt_row *ran);
    /*
     * The execution is taken up (orch resume, server start, a failover) and
     * the store says this attempt was running (`last`: its attempt row, or
     * NULL). Take it up where it was, or record it lost, with the helpers of
     * recovery.h (engine__attempt_restored, engine__attempt_lost). `now`:
     * wall-clock ms.
     */
    void (*restore)(struct engine *eng, struct exec *ex, size_t idx,
                    const struct attempt_row *last, int64_t now);
    /* Is the running attempt waiting on something of the kind's own (a timer,
     * a child execution), beside a process, request or offer, which the engine
     * sees itself? For the invariant check after each turn. NULL: never. */
    int (*waits)(const struct exec *ex, size_t idx);
    /* The kind's own timer (TIMER_KIND_WAKE, armed with engine__attempt_timer)
     * fired for the current attempt, still running. NULL: the kind arms none. */
    void (*wake)(struct engine *eng, struct exec *ex, size_t idx);
};

extern const struct task_kind engine__kind_command; /* proc.c */
extern const struct task_kind engine__kind_noop;    /* kind_simple.c */
extern const struct task_kind engine__kind_sleep;   /* kind_simple.c */
extern const struct task_kind engine__kind_http;    /* httptask.c */
extern const struct task_kind engine__kind_workflow; /* subflow.c */

/* The kind of task `t` (kind.c). Never NULL for a parsed workflow. */
const struct task_kind *engine__kind(const struct dag_task *t);

/* ------------------------------------------------------------------ what a kind may call
 *
 * Ending an attempt (engine.c). Each records the attempt's end, then retries
 * the task (back-off, a new attempt later) or finalizes it, and reports to
 * the observer; `allow_retry` 0 ends the task whatever its retries.
 */
void engine__attempt_fail(struct engine *eng, struct exec *ex, size_t idx,
                          enum attempt_status ast, const char *error, int allow_retry);
/* Succeeded with `output` (JSON object text, taken; NULL: none). */
void engine__attempt_succeed(struct engine *eng, struct exec *ex, size_t idx, char *output);
/* The same with what a process left: its exit code (-1: none), signal, pid,
 * group and start time (0: none). */
void engine__attempt_end(struct engine *eng, struct exec *ex, size_t idx,
                         enum attempt_status ast, int exit_code, int sig, const char *error,
                         int pid, int pgid, int64_t proc_start, int allow_retry);
/* Arm the kind's timer (TIMER_TASK_TIMEOUT, TIMER_KIND_WAKE) for the current
 * attempt of run `idx`, `delay_ms` from now (negative: at once). */
void engine__attempt_timer(struct engine *eng, int timer_kind, struct exec *ex, size_t idx,
                           int64_t delay_ms);

#endif
