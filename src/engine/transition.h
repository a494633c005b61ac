/*
 * transition.h - the one writer of task-run and execution status.
 *
 * Every change of a run's or an execution's status goes through
 * engine__run_move() / engine__exec_move(). Each checks the move against the
 * table of legal transitions (docs/internals/engine.md shows the same table),
 * keeps the counters (ex->nfinal, ex->nrunning) and puts what changed on the
 * per-turn dirty lists the commit writes from. An illegal move is a bug in the
 * engine: it is logged (`BUG [Engine] illegal transition of task 'x' from
 * running to pending`) and the program aborts.
 *
 * Invariants (engine__check(), run after each turn in debug and sanitizer
 * builds):
 *   - ex->nfinal is the number of final runs; ex->nrunning the number of
 *     running runs that are not forEach groups (a group takes no slot);
 *   - a run in its execution's ready FIFO (queued_in_ready) is queued;
 *   - a running run that is not a group has a process, an HTTP request, a
 *     child execution, an offer to another node, or is a sleep (its timer);
 *   - a run is dirty exactly when it is listed in ex->drun; an execution is
 *     listed in eng->dirty exactly when it is dirty, has dirty runs or is new;
 *   - a final execution (that is not lost or handed off) has all runs final;
 *   - a run offered to another node (remote) is running, and eng->nremote
 *     counts those runs.
 * Loop thread only.
 */
#ifndef ORCH_ENGINE_TRANSITION_H
#define ORCH_ENGINE_TRANSITION_H

#include <stddef.h>

#include "store/store.h"

struct engine;
struct exec;

/*
 * Where an execution is in its life on this node. The states are exclusive;
 * the moves (engine__exec_life, transition.c) are:
 *   NEW -> STORED, HANDOFF -> HANDED_OFF    by the commit that inserts it
 *   NEW <-> HANDOFF                         at creation (no slot here; a child runs
 *                                           where its parent does)
 *   any but LOST -> LOST                    another node took it, or its creation
 *                                           was not committed
 */
enum exec_life {
    EXEC_LIFE_NEW = 0,    /* made here, not yet inserted: the next commit inserts it, ours */
    EXEC_LIFE_HANDOFF,    /* made for any node: the next commit inserts it queued and unowned */
    EXEC_LIFE_STORED,     /* in the store and ours: its changes are written with each turn */
    EXEC_LIFE_HANDED_OFF, /* inserted for any node: dropped from memory, nothing more written */
    EXEC_LIFE_LOST        /* taken by another node (or never committed): nothing written */
};

/* Is `from` -> `to` a legal move of a task run / an execution? 1 or 0. */
int engine__run_move_ok(enum task_status from, enum task_status to);
int engine__exec_move_ok(enum exec_status from, enum exec_status to);

/* Move run `idx` of `ex` to `to`: checked, counted, marked dirty. Leaving
 * `queued` takes it out of the ready FIFO (its entry is skipped); entering
 * it records the time (the run's queued_at, its next attempt's queued time). */
void engine__run_move(struct engine *eng, struct exec *ex, size_t idx, enum task_status to);
/* Run `idx` changed otherwise (attempt, error, ...): its row is written. */
void engine__run_touch(struct engine *eng, struct exec *ex, size_t idx);
/* Set the status of run `idx` as the store holds it (an execution taken up,
 * before it advances): counted, not checked, not written. */
void engine__run_load(struct exec *ex, size_t idx, enum task_status st);
/* The current attempt of run `idx` is (on) or is no longer (off) offered to,
 * or run by, another node: keeps eng->nremote. */
void engine__run_remote(struct engine *eng, struct exec *ex, size_t idx, int on);

void engine__exec_move(struct engine *eng, struct exec *ex, enum exec_status to);
/* The execution's row changed otherwise (its end time, error, ...). */
void engine__exec_touch(struct engine *eng, struct exec *ex);
/* Move the execution's life (enum exec_life, engine_internal.h): checked. */
void engine__exec_life(struct engine *eng, struct exec *ex, enum exec_life to);

/* Before `ex` is freed: off the dirty list. */
void engine__dirty_forget(struct engine *eng, struct exec *ex);
/* After a successful commit: the dirty lists are empty again. */
void engine__dirty_clear(struct engine *eng);

/* Check the invariants above over the executions on the dirty list (`full`:
 * over every execution). 0, or -1 with the first violation in msg. */
int engine__check(const struct engine *eng, int full, char *msg, size_t len);
/* The same, aborting on a violation; compiled to nothing in release builds. */
void engine__check_turn(const struct engine *eng, int full);

#endif
