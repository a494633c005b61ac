/*
 * engine_internal.h - state shared between the engine's own files. Never
 * included from outside src/engine/.
 */
#ifndef ORCH_ENGINE_INTERNAL_H
#define ORCH_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"
#include "child.h"
#include "engine.h"

struct exec;
struct proc;

/* A min-heap of timers on the monotonic clock (timer.c). */
enum timer_kind {
    TIMER_TASK_TIMEOUT, /* a running attempt exceeded its timeout */
    TIMER_KILL,         /* grace after SIGTERM is over: SIGKILL the group */
    TIMER_RETRY,        /* back-off over: the queued task may start */
    TIMER_SLEEP_DONE,   /* a sleep task's duration is over */
    TIMER_EXEC_DEADLINE, /* the execution's timeout */
    TIMER_MAX_QUEUED,    /* a task has been queued longer than the workflow's maxQueued */
    TIMER_MAX_RUNNING,   /* an execution has run longer than the workflow's maxRunning */
    TIMER_PURGE,         /* retention: delete old finished executions */
    TIMER_PID_WRITE      /* make a turn happen so a new process's pid is committed */
};

struct timer {
    int64_t at; /* CLOCK_MONOTONIC ms */
    enum timer_kind kind;
    struct exec *ex;
    struct proc *proc;
    size_t idx;
    int attempt;
};

struct timer_heap {
    struct timer *items;
    size_t n;
    size_t alloc;
};

void engine__timer_add(struct timer_heap *h, const struct timer *t);
/* The earliest timer, or NULL. */
const struct timer *engine__timer_peek(const struct timer_heap *h);
void engine__timer_pop(struct timer_heap *h, struct timer *out);
/* Remove every timer that refers to `ex` (if not NULL) or `proc` (if not NULL). */
void engine__timer_purge(struct timer_heap *h, const struct exec *ex, const struct proc *proc);
void engine__timer_release(struct timer_heap *h);

#endif
