/*
 * commit.h - writing a turn's changes in one transaction (commit.c): the
 * dirty executions and runs, the pids of new processes, the pending attempt
 * rows, the output read, and the subsystems' hooks (hooks.h) around them;
 * holding the writes in memory while the database is busy or its disk full.
 * Called by the loop (engine.c) and by the take-over of an execution
 * (recovery.c); it calls nothing back in them. Loop thread only.
 */
#ifndef ORCH_ENGINE_COMMIT_H
#define ORCH_ENGINE_COMMIT_H

#include "base/err.h"
#include "store/store.h"

struct engine;
struct exec;

/* An attempt row for the next commit to insert (or update), copied. */
void engine__add_pending_attempt(struct engine *eng, struct exec *ex, int insert,
                                const struct attempt_row *row);
/* Forget all pending attempt rows (written, or the engine is freed). */
void engine__pending_attempts_clear(struct engine *eng);
/* Forget the pending attempt rows of `ex` (it is freed without them written). */
void engine__pending_attempts_drop(struct engine *eng, const struct exec *ex);

/* The executions row of `ex` as the commit writes it (strings borrowed from ex
 * and eng). */
void engine__exec_row(const struct engine *eng, const struct exec *ex, struct exec_row *row);
/* Commit the turn's writes now: 0, or the store's error with nothing of
 * them written (they stay pending). */
int engine__commit(struct engine *eng, struct err *err);
/* Commit the turn; a busy database holds the writes (eng->commit_held) and a
 * timer makes the turn that tries again, a bounded number of times. 0 while
 * held. */
int engine__commit_or_hold(struct engine *eng, struct err *err);
/* A commit found the disk full: hold the writes, pause (db_down) and retry
 * with back-off through engine__commit_held_retry(). */
void engine__commit_hold(struct engine *eng, const struct err *err);
/* With the disk full: 0 (committed), ERR_FULL (still held) or another error. */
int engine__commit_held_retry(struct engine *eng, struct err *err);

#endif
