/*
 * fanout.h - fan-out groups (fanout.c): the instances of a forEach task, started,
 * stepped and closed as its items end. Loop thread only.
 */
#ifndef ORCH_ENGINE_FANOUT_H
#define ORCH_ENGINE_FANOUT_H

#include <stddef.h>

#include "store/store.h"

struct engine;
struct exec;
struct group_ops;

void engine__group_start(struct engine *eng, struct exec *ex, size_t g);
void engine__group_step(struct engine *eng, struct exec *ex, size_t g, enum task_status st);
void engine__groups_restore(struct exec *ex);
void engine__group_resume(struct engine *eng, struct exec *ex, size_t g);
/* A group that ends without completing (skipped, upstream failed, cancelled):
 * its items that have not started end with it. */
void engine__group_close(struct engine *eng, struct exec *ex, size_t g, enum task_status st);
/* What the core calls of the groups (engine_internal.h, struct group_ops). */
extern const struct group_ops engine__group_ops;

#endif
