/*
 * notify.h - notifications (notify.c): the webhooks of a workflow's "notify"
 * rules (or of the server-wide default), through an outbox.
 *
 * A commit hook (HOOK_AFTER_RUNS) writes one outbox row per rule that
 * matches an execution's end, in the transaction that records the end (and
 * one for "stuck" when maxRunning or maxQueued is passed); after the commit
 * the loop claims due rows, sends them through its own libcurl multi handle
 * (httpcall.h) without blocking, and records each attempt: delivered (2xx),
 * pending again after an exponential back-off, or failed once the attempts
 * are used up. Credentials are read from the sender's environment when it
 * sends: the outbox holds the names of their variables only. Its state is
 * behind eng->notify. Loop thread only.
 */
#ifndef ORCH_ENGINE_NOTIFY_H
#define ORCH_ENGINE_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct engine;
struct exec;

/* Register the commit hook (engine_new). */
void engine__notify_hooks(struct engine *eng);
/* `ex` has been running longer than maxRunning, or one of its tasks queued
 * longer than maxQueued: its "stuck" rules are written with the next commit
 * (once per execution). */
void engine__notify_stuck(struct engine *eng, struct exec *ex, const char *why);
/* After a commit (server and worker only): claim and send what is due. */
void engine__notify_act(struct engine *eng);
/* Drive the requests in flight (after the wait). */
void engine__notify_run(struct engine *eng);
/* Requests in flight. */
size_t engine__notify_active(const struct engine *eng);
/* Milliseconds until the loop must turn for notifications (-1: none). */
int64_t engine__notify_timeout(const struct engine *eng);
void engine__notify_free(struct engine *eng);

/* The delay before attempt `attempts` + 1 after `attempts` failed ones:
 * base_ms * 2^(attempts - 1), at most NOTIFY_BACKOFF_MAX_MS. */
#define NOTIFY_BACKOFF_MAX_MS (3600 * 1000)
int64_t engine__notify_backoff(int attempts, int64_t base_ms);

#endif
