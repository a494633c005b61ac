/*
 * recovery.h - taking an execution up from the store (recovery.c), and what
 * the kinds' restore hooks (kind.h) use to take up or give up the attempt
 * that was running. Loop thread only.
 */
#ifndef ORCH_ENGINE_RECOVERY_H
#define ORCH_ENGINE_RECOVERY_H

#include <stddef.h>

#include "base/err.h"
#include "store/store.h"

struct engine;
struct exec;

/*
 * Take over execution `exec_id` from the store: resume it (retry == 0: it must
 * be unfinished) or run its unsuccessful tasks again (retry == 1: it must have
 * ended without success). Claims it first (owner lock, or the cluster's
 * claim), commits what it changed, and releases the claim on failure. 0, or
 * ERR_CONFLICT (already here, finished, still running), ERR_NOT_FOUND, a
 * claim's code, ERR_INTERNAL (its rows do not match its definition), a store
 * error; with the disk full a resume is held in memory like the turn's
 * other writes.
 */
int engine__exec_take(struct engine *eng, const char *exec_id, int retry, struct err *err);

/* A restored attempt (kind.restore): what its process left on this machine
 * is killed (by the group its row records; `find_by_env`: when the row has
 * none, by the ORCH_* environment of its processes), and its start time is
 * taken from its row. Call before engine__attempt_lost() or taking it up. */
void engine__attempt_restored(struct engine *eng, struct exec *ex, size_t idx,
                              const struct attempt_row *last, int find_by_env);
/* A restored attempt that did not survive its owner: recorded lost (run again
 * outside the retry budget, up to max_lost_attempts, when `allow_retry`);
 * `note` (or NULL) is added to its error. */
void engine__attempt_lost(struct engine *eng, struct exec *ex, size_t idx,
                          const struct attempt_row *last, int allow_retry, const char *note);
/* Did node name `node` ("host:pid") run on this machine? */
int engine__same_host(const struct engine *eng, const char *node);

#endif
