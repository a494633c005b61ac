/*
 * remote.h - task offers to other nodes (remote.c): a command attempt offered to
 * a worker node, its result and cancel; its state is struct remote_state,
 * private to it, behind eng->remote. Loop thread only.
 */
#ifndef ORCH_ENGINE_REMOTE_H
#define ORCH_ENGINE_REMOTE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct engine;
struct exec;
struct proc;
struct remote_state;

int engine__remote_offer_ok(const struct engine *eng);
void engine__remote_offer(struct engine *eng, struct exec *ex, size_t idx, json_t *spec);
void engine__remote_cancel(struct engine *eng, struct exec *ex, size_t idx);
void engine__remote_report(struct engine *eng, struct proc *p, const char *status, int code,
                           int sig, const char *error, const char *output);
void engine__remote_tick(struct engine *eng, int heartbeat);
int engine__remote_wants_turn(const struct engine *eng);
/* Claim up to `limit` offers now (entries read from the Redis stream) and
 * start them: how many were claimed, -1 on a store error. */
int engine__remote_claim(struct engine *eng, int limit);
void engine__remote_free(struct engine *eng);
/* remote.c's state (struct remote_state, private to it), behind eng->remote. */
struct remote_state *engine__remote_new(void);
/* What a notification or a heartbeat says may wait: look on the next turn. */
enum remote_want { REMOTE_WANT_OFFERS, REMOTE_WANT_RESULTS, REMOTE_WANT_RCANCEL };
void engine__remote_want(struct engine *eng, enum remote_want what);
/* The worker slots of the other live nodes, from a heartbeat. */
void engine__remote_set_peer_slots(struct engine *eng, int64_t slots);

#endif
