/*
 * exec.h - what the loop (engine.c) and the attempt's end (attempt.c) use of
 * exec.c beside the functions every subsystem calls (engine_internal.h): the
 * engine's lists of executions, the ready FIFOs, an execution's end.
 */
#ifndef ORCH_ENGINE_EXEC_H
#define ORCH_ENGINE_EXEC_H

#include <stddef.h>

struct engine;
struct exec;
struct exec_queue;

/* The queue `l` of executions, through their link `list` (EXEC_LIST_*). */
void engine__exec_list_remove(struct exec_queue *l, struct exec *ex, int list);
void engine__exec_list_append(struct exec_queue *l, struct exec *ex, int list);
struct exec *engine__exec_list_pop(struct exec_queue *l, int list);
/* Put queued run `idx` on its ready FIFO (once); with maxQueued, arm its timer. */
void engine__ready_push(struct engine *eng, struct exec *ex, size_t idx);
/* All its runs are final: the execution ends (once), is logged and reported,
 * and a child tells its parent's task (eng->child_ops). */
void engine__exec_check_done(struct engine *eng, struct exec *ex);

#endif
