/*
 * redisbus.h - Redis beside PostgreSQL (redisbus.c): the engine's own async
 * hiredis client in its epoll loop, for wake-ups (pub/sub), offers (a stream
 * with a consumer group) and live logs. PostgreSQL stays the source of truth:
 * whatever goes through Redis is committed there first, and every path has
 * its PostgreSQL fallback. Its state is struct redis_state, private to it,
 * behind eng->redis (NULL without a Redis URL). Loop thread only.
 */
#ifndef ORCH_ENGINE_REDISBUS_H
#define ORCH_ENGINE_REDISBUS_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct engine;
struct proc;
struct watch;

struct redis_target;
/* A node of a cluster with engine_config.redis: connect (from the loop; `t`
 * is copied). Nothing to fail: an unreachable Redis is a fallback. */
void engine__redis_start(struct engine *eng, const struct redis_target *t);
void engine__redis_free(struct engine *eng);
/* Its commit hooks (hooks.h): a try starts with nothing queued; the
 * publications of a committed turn go out after it; those lost with a
 * connection are NOTIFYed with the next commit. */
void engine__redis_hooks(struct engine *eng);
/*
 * Inside the turn's transaction, in place of store_notify(): with Redis up,
 * the wake-up is PUBLISHed on ENGINE_REDIS_WAKE once the turn commits (commit,
 * then act); else it is NOTIFYed on PostgreSQL in the transaction, as before.
 */
int engine__redis_notify(struct engine *eng, const char *channel, const char *payload,
                         struct err *err);
/* The same outside a transaction (what it tells of is committed): sent now. */
int engine__redis_notify_now(struct engine *eng, const char *channel, const char *payload,
                             struct err *err);
/* Inside the turn's transaction: offer (exec, idx, attempt) is XADDed to the
 * offers stream once committed. 1: it will be (Redis up), 0: it will not. */
int engine__redis_offer(struct engine *eng, const char *exec_id, int idx, int attempt);
/* A descriptor of the client is ready (the loop's epoll, WATCH_REDIS). */
void engine__redis_event(struct engine *eng, struct watch *w, uint32_t events);
/* Each turn: reconnect, timeouts, offers read and to claim, XAUTOCLAIM. */
void engine__redis_tick(struct engine *eng);
/* The monotonic ms by which the client needs a turn; INT64_MAX: none. */
int64_t engine__redis_next(const struct engine *eng);
/* Live logs: output read from a task's pipe (stream 0 stdout, 1 stderr),
 * appended to its attempt's stream (redis_log_key()) at once, and its end,
 * once the next commit has written the rest of its output. */
void engine__redis_log(struct engine *eng, struct proc *p, int stream, const char *data,
                       size_t len);
void engine__redis_log_end(struct engine *eng, const struct proc *p, const char *status);

#endif
