/*
 * cluster.h - the node in a cluster (cluster.c): heartbeat and lease, claims of
 * executions, the fence of the commit, the database's connection and its
 * notifications. Loop thread only.
 */
#ifndef ORCH_ENGINE_CLUSTER_H
#define ORCH_ENGINE_CLUSTER_H

#include <stdint.h>

#include "base/err.h"

struct engine;
struct exec;
struct node_ops;

/* cluster.c's state (struct node_state, private to it), behind eng->node_st. */
struct node_state *engine__node_new(void);
void engine__node_free(struct engine *eng);
/* The node was named (engine_set_node). */
int engine__node_on(const struct engine *eng);
int64_t engine__node_lease_ms(const struct engine *eng);
/* This node claims executions and offers (a cluster's worker). */
int engine__node_claims_work(const struct engine *eng);
/* Tell the other nodes with this turn's commit: there is work (queued
 * executions, cancels of children), or the schedules changed. */
enum node_notify { NODE_NOTIFY_WORK, NODE_NOTIFY_SCHEDULES };
void engine__node_notify(struct engine *eng, enum node_notify what);
/* Look for executions to claim (ours too, once a slot is free). */
void engine__node_want_claim(struct engine *eng);
void engine__exec_lose(struct engine *eng, struct exec *ex, const char *why);
struct exec *engine__exec_find(struct engine *eng, const char *id);
int engine__node_busy(const struct engine *eng);
/* What the core calls of the node (engine_internal.h, struct node_ops). */
extern const struct node_ops engine__node_ops;
void engine__node_tick(struct engine *eng);
int64_t engine__cancel_poll(struct engine *eng, int act);
int engine__sched_may_fire(struct engine *eng);
int engine__conflict_recover(struct engine *eng);
void engine__db_lost(struct engine *eng, const struct err *err);
void engine__db_retry(struct engine *eng);
void engine__db_event(struct engine *eng);
/* A wake-up that came another way (Redis pub/sub): as if NOTIFYed on `channel`. */
void engine__node_wake(struct engine *eng, const char *channel, const char *payload);
int64_t engine__node_timeout(const struct engine *eng);
int engine__free_slots(const struct engine *eng);

#endif
