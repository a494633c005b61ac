/*
 * engine.h - the execution engine: one event-loop thread that owns the state
 * of the executions it advances.
 *
 * Each turn of the loop gathers events (child exits, output, timers,
 * commands), computes every transition they cause in memory, writes them all
 * in one store transaction, and only then acts (spawns processes, signals,
 * reports). A crash at any point loses nothing that was reported: what was
 * committed is resumed by engine_resume(), what was not had no effect yet.
 *
 * Every attempt carries its number as a fencing token: a report from an
 * attempt that was already given up (timed out, cancelled, lost) is dropped
 * and logged, never applied.
 *
 * Thread affinity: every function runs on the engine's thread, except
 * engine_request_stop() and engine_request_cancel_all(), which are also
 * async-signal-safe.
 */
#ifndef ORCH_ENGINE_ENGINE_H
#define ORCH_ENGINE_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/id.h"
#include "dag/dag.h"
#include "store/store.h"

struct engine;
struct redis_target;

struct engine_config {
    int workers;             /* process slots (command tasks running at once); >= 1 */
    size_t output_cap;       /* bytes of output kept per attempt and stream (the tail) */
    int64_t kill_grace_ms;   /* SIGTERM -> SIGKILL grace for timeouts and cancels */
    const char *node;        /* this node's name (host:pid) recorded in attempts; borrowed */
    /*
     * Optional ownership hooks: claim(arg, id) is called before the engine
     * takes an execution (new or resumed) and must return 0 if this process
     * may run it, or a negative code (e.g. ERR_BUSY: another live process owns
     * it); release(arg, id) is called when the engine lets it go.
     */
    int (*claim)(void *arg, const char *exec_id);
    void (*release)(void *arg, const char *exec_id);
    void *owner_arg;
    /* Retention (server mode): finished executions older than this are deleted
     * in small batches in the background; 0 keeps them forever. A workflow's
     * own `retention` wins. Default 30 days. */
    int64_t retention_ms;
    int64_t purge_interval_ms; /* how often to look for old executions (default 60 s) */
    /* Task outputs: a command task may write a JSON object to the file named
     * by $ORCH_OUTPUT (in output_dir); at most task_output_cap bytes. */
    size_t task_output_cap;    /* default 256 KiB */
    /* default $TMPDIR (or /tmp) + "/orch-outputs-UID"; borrowed. Created 0700; an existing
     * one must be a directory of ours (of the task user's, with one) closed to others. */
    const char *output_dir;
    /* Run command tasks as this user (orch must run as root): task_user set,
     * its uid and primary gid. */
    int task_user;
    uid_t task_uid;
    gid_t task_gid;
    /* Where HTTP tasks may connect (netpolicy.h): ORCH_HTTP_ALLOW and
     * ORCH_HTTP_DENY, comma-separated networks; NULL for none. Borrowed. */
    const char *http_allow;
    const char *http_deny;
    /* An attempt lost with its node (orch died, a runner went away) is not the
     * task's failure: it runs again without using its retries, up to this many
     * times per task (then lost attempts count as failures). Default 3. A
     * request that is not idempotent is never sent again. */
    int max_lost_attempts;
    /*
     * Notifications (notify.h). The server-wide default webhook of workflows
     * without "notify" (ORCH_NOTIFY_URL; NULL: none) and the events it is
     * sent on (ORCH_NOTIFY_ON: a mask of DAG_NOTIFY_*; 0: failed and
     * timed_out); attempts before one is given up (ORCH_NOTIFY_ATTEMPTS,
     * default 8) and the delay before the first retry, doubled for each next
     * one (ORCH_NOTIFY_BACKOFF, default 1 s); the base of the links to
     * executions in notifications (ORCH_PUBLIC_URL, else the listen address;
     * NULL: none). Strings borrowed.
     */
    const char *notify_url;
    unsigned notify_on;
    int notify_attempts;
    int64_t notify_backoff_ms;
    const char *public_url;
    /* Redis beside PostgreSQL (ORCH_REDIS_URL, --redis-url; base/redis.h): the
     * fast path for wake-ups, dispatch and live logs; NULL: none. Borrowed. */
    const struct redis_target *redis;
};

/* Defaults: workers = online CPUs, output_cap 1 MiB, grace 10 s, node host:pid,
 * task outputs up to 256 KiB, 3 lost attempts re-run outside the retries. */
void engine_config_init(struct engine_config *cfg);

enum engine_event_type {
    ENGINE_EV_TASK_STARTED,
    ENGINE_EV_TASK_FINISHED, /* a task run reached a final status, or an attempt failed and will be retried */
    ENGINE_EV_EXEC_FINISHED,
};

struct engine_event {
    enum engine_event_type type;
    const char *exec_id;
    const char *task; /* NULL for exec events */
    enum task_status task_status;
    enum exec_status exec_status;
    int attempt;
    int will_retry; /* TASK_FINISHED of an attempt that will be retried */
    int64_t duration_ms;
    const char *error; /* or NULL */
    /* progress of the execution */
    size_t tasks_total;
    size_t tasks_done;
    size_t tasks_running;
};

typedef void (*engine_observer_fn)(void *arg, const struct engine_event *ev);

/* Create an engine writing to `st` (borrowed; must outlive the engine). */
int engine_new(struct store *st, const struct engine_config *cfg, struct engine **out,
               struct err *err);
void engine_free(struct engine *eng);

void engine_set_observer(struct engine *eng, engine_observer_fn fn, void *arg);

/*
 * HTTP tasks must not call the server's own API: deny connections to its
 * listener, "ADDR:PORT" or "[V6ADDR]:PORT" (numeric; a wildcard address
 * stands for every address of the host). Call before engine_run.
 */
int engine_http_deny_listener(struct engine *eng, const char *hostport, struct err *err);

/*
 * Create an execution of the workflow `definition` (JSON text, recorded as a
 * workflow version if it changed) with `params_json` (a JSON object text whose
 * keys are declared params; defaults are filled in; "{}" or NULL for none).
 * The execution is committed as running before this returns; its tasks start
 * on the next engine_run turn. ERR_INVALID for a bad definition or params.
 */
int engine_submit(struct engine *eng, const char *definition, const char *params_json,
                  char out_id[ID_MAX], struct err *err);

/*
 * Take over an unfinished execution from the store (after a crash): tasks that
 * finished are kept, attempts that were running are recorded as lost (their
 * orphaned process groups killed) and retried per their policy. Returns
 * ERR_NOT_FOUND if there is no such execution, ERR_CONFLICT if it has finished.
 */
int engine_resume(struct engine *eng, const char *exec_id, struct err *err);

/*
 * Retry a finished execution that did not succeed in this engine (as
 * engine_post_retry() does in a server): what did not succeed runs again on
 * the next engine_run turn. ERR_NOT_FOUND, ERR_CONFLICT (still running, or
 * succeeded), ERR_BUSY (another local process owns it).
 */
int engine_retry(struct engine *eng, const char *exec_id, struct err *err);

/* Cancel an execution: running tasks are terminated, pending ones cancelled. */
int engine_cancel(struct engine *eng, const char *exec_id, struct err *err);

/*
 * Run the loop until no execution is active (all finished) or a stop is
 * requested. Returns 0, or a negative code on a store failure that could not
 * be recovered.
 */
int engine_run(struct engine *eng, struct err *err);

/* Number of executions the engine is advancing. */
size_t engine_active(const struct engine *eng);

/* Ask the loop to cancel every execution and return once they have ended
 * (async-signal-safe: for SIGINT/SIGTERM in `orch run`). */
void engine_request_cancel_all(struct engine *eng);

/* ------------------------------------------------------------------ server mode
 *
 * In a server, engine_run() runs on the engine's own thread until
 * engine_request_stop(); other threads (HTTP handlers) talk to it only through
 * the engine_post_* calls below, which queue a command, wake the loop through
 * an eventfd, and block until the command's transaction has committed (or
 * failed). They never touch engine state directly.
 */

/* Keep running when idle (server mode) instead of returning once every
 * execution has ended. Call before engine_run(). */
void engine_set_persistent(struct engine *eng, int on);

/* Call fn(arg) from the loop's thread at least every `interval_ms` while
 * engine_run() turns (a liveness signal, e.g. the service manager's
 * watchdog: it stops when the loop is stuck). Call before engine_run(). */
void engine_set_tick(struct engine *eng, int64_t interval_ms, void (*fn)(void *arg), void *arg);

/*
 * Graceful stop (thread-safe and async-signal-safe): stop taking commands and
 * starting tasks; running tasks may finish for up to `grace_ms`, then their
 * process groups are terminated and their attempts recorded as lost so that
 * the next start resumes them; engine_run() then returns. Asked again while
 * stopping, a shorter grace ends the one running (0: at once).
 */
void engine_request_stop(struct engine *eng, int64_t grace_ms);

/*
 * Create an execution of the newest version of workflow `name` with
 * `params_json` (object text or NULL). With a non-NULL `idempotency_key`, a
 * second submission with the same key returns the first execution's id and
 * sets *out_existing to 1. Errors: ERR_NOT_FOUND (no such workflow),
 * ERR_INVALID (params), ERR_BUSY (stopping), ERR_STORE.
 */
int engine_post_submit(struct engine *eng, const char *name, const char *params_json,
                       const char *idempotency_key, char out_id[ID_MAX], int *out_existing,
                       struct err *err);
/*
 * engine_post_submit without waiting: queue the submission and return.
 * `done(arg)` is called once it is answered (after the commit that holds
 * the new execution, or at once when refused): on the engine's thread, or
 * on the caller's before this returns when the engine is stopping. Then
 * engine_submission_result() gives what engine_post_submit would have
 * returned. Returns the submission (never NULL; free it with
 * engine_submission_free() after done was called). Copies its arguments.
 */
struct engine_submission;
struct engine_submission *engine_submit_async(struct engine *eng, const char *name,
                                              const char *params_json, const char *idempotency_key,
                                              void (*done)(void *arg), void *arg);
int engine_submission_result(const struct engine_submission *s, char out_id[ID_MAX],
                             int *out_existing, struct err *err);
/* The row of the execution a submission created, as the commit that holds it
 * wrote it (owned by `s`), or NULL (an error, an execution that existed, or
 * one the engine no longer holds: read it from the store). */
const struct exec_row *engine_submission_row(const struct engine_submission *s);
void engine_submission_free(struct engine_submission *s);
/* Cancel an execution. ERR_NOT_FOUND, or ERR_CONFLICT if it has already ended.
 * With several nodes, an execution another live node runs is cancelled by
 * that node: *out_asked (may be NULL) is then 1, the cancel asked but not yet
 * done when this returns. */
int engine_post_cancel(struct engine *eng, const char *exec_id, int *out_asked,
                       struct err *err);
/*
 * Retry a finished execution that did not succeed: its failed, timed_out,
 * cancelled and upstream_failed tasks (and their skipped dependents) run again,
 * what succeeded is kept; attempt numbers keep counting up. ERR_NOT_FOUND, or
 * ERR_CONFLICT if it is still running or it succeeded.
 */
int engine_post_retry(struct engine *eng, const char *exec_id, struct err *err);

struct engine_stats {
    int running;             /* 1 while engine_run() is looping */
    int workers_total;       /* process slots */
    int workers_busy;        /* live task processes */
    size_t executions_active;
    size_t tasks_queued;     /* ready tasks waiting for a slot or their back-off */
    int64_t oldest_queued_ms;   /* age of the oldest queued task, 0 if none */
    int64_t longest_running_ms; /* age of the longest-running execution, 0 if none */
    int64_t last_turn_at;    /* wall-clock ms of the last loop turn */
    uint64_t turns;          /* loop turns so far */
    uint64_t exec_changes;   /* execution rows this node changed and committed since start */
    /* The scheduler (engine_enable_scheduler). */
    int sched_running;            /* 1 once it has looked at its schedules */
    int64_t sched_last_tick_at;   /* wall-clock ms */
    int64_t sched_last_fire_at;   /* wall-clock ms of the last fire, 0 if none */
    int64_t sched_last_lag_ms;    /* how late the last fire was after its due time */
    uint64_t sched_fires;         /* fires since start */
    size_t sched_active;          /* enabled, unpaused schedules */
    int64_t sched_next_due_at;    /* wall-clock ms of the next due time, 0 if none */
    char sched_next_due[160];     /* that schedule, as "workflow/name" */
    int cluster;                  /* one of several nodes on PostgreSQL */
    int sched_leader;             /* cluster: this node holds the scheduler lease */
    /* The database, as the loop sees it. */
    int db_ok;                    /* 0 while the connection is lost */
    int64_t db_down_since;        /* wall-clock ms, 0 when up */
    int64_t db_last_error_at;     /* wall-clock ms of the last failure */
    char db_error[200];           /* its message */
    int disk_full;                /* commits fail for lack of space: writes are held */
    int64_t disk_full_since;      /* wall-clock ms, 0 when not full */
    char disk_error[200];         /* "disk full: <path>: no space left (...)" */
    int64_t last_heartbeat_at;    /* wall-clock ms */
    uint64_t executions_claimed;  /* taken from the queue or from dead nodes */
    uint64_t executions_lost;     /* taken by another node (fenced) */
    size_t tasks_running;         /* task runs running here (any type but forEach groups) */
    /* Redis (engine_config.redis), as the loop sees it; all 0 without one. Messages
     * never hold the password (base/redis.h: the target's `shown`). */
    int redis_configured;         /* the node has a Redis URL */
    int redis_ok;                 /* connected, past AUTH/SELECT: the fast path is in use */
    int64_t redis_degraded_since; /* wall-clock ms since the PostgreSQL paths stand in, 0 when
                                     redis_ok (or not configured) */
    char redis_error[200];        /* the last failure ("cannot reach redis://...: ...") */
    uint64_t redis_fallbacks;     /* times the node went from Redis to the PostgreSQL paths */
    uint64_t redis_reconnects;    /* times it came back to Redis */
    char redis_dispatch_stream[64]; /* the offers' stream key, "" if none */
    char redis_dispatch_group[64];  /* its consumer group */
    /* ... and what went through it (redisbus.c). */
    int64_t redis_latency_us;     /* the round trip of the last PING */
    uint64_t redis_published;     /* wake-ups PUBLISHed instead of NOTIFYed */
    uint64_t redis_offers_added;  /* offers XADDed to the dispatch stream */
    uint64_t redis_offers_read;   /* entries read from it (XREADGROUP, XAUTOCLAIM) */
    uint64_t redis_log_entries;   /* output entries XADDed to the tasks' live log streams */
};

/*
 * Server mode: fire the schedules of the workflow definitions in the store.
 * Each due time fires once: the fire is recorded with a unique (schedule, due
 * time) in the same transaction as the execution it creates. Call before
 * engine_run(); engine_schedules_changed() (thread-safe, async-signal-safe)
 * makes the loop re-read the definitions (after one is created, changed or
 * deleted, or a schedule is paused); it also re-reads them every 30 s.
 */
void engine_enable_scheduler(struct engine *eng);
void engine_schedules_changed(struct engine *eng);
/*
 * Create the executions of every due time of schedule `schedule_id` in
 * (from_ms, until_ms], each recorded with its scheduledFor, the schedule's
 * overlap policy applied; due times already fired are not fired again. At
 * most 1000 due times (ERR_INVALID beyond). *out_count: how many due times.
 * ERR_NOT_FOUND, ERR_CONFLICT (no scheduler), ERR_BUSY (stopping).
 */
int engine_post_backfill(struct engine *eng, const char *schedule_id, int64_t from_ms,
                         int64_t until_ms, int *out_count, struct err *err);

/* ------------------------------------------------------------------ nodes
 *
 * A server's engine is a node: it renews its row in `nodes` once per
 * heartbeat interval (lease / 3), one statement however much it runs. On
 * PostgreSQL (`cluster`), several nodes share the database:
 * - executions are owned by one node at a time (executions.owner_node); every
 *   commit first locks the rows of the executions it touches and checks they
 *   are still ours (a fence): a node paused past its lease finds its
 *   executions taken, drops them and kills their processes, and its late
 *   reports are never written;
 * - a node claims, with FOR UPDATE SKIP LOCKED, the executions queued for any
 *   node (while it has free slots) and those whose owner's lease has expired
 *   (their running attempts are recorded as lost and retried per policy);
 * - a busy node hands new executions to the others (queued, unowned), and
 *   offers the ready command tasks it has no slot for (remote.c), waking them
 *   with NOTIFY; idle nodes sleep in LISTEN, so an idle cluster issues a few
 *   statements per node and heartbeat;
 * - one node at a time fires the schedules: the holder of the "scheduler"
 *   lease, renewed with the heartbeat; the unique (schedule, due time) key
 *   keeps a due time from firing twice should two nodes ever believe they
 *   lead.
 * A lost database connection is survived: the loop keeps reaping and
 * capturing output, holds what it has not committed, reconnects with
 * back-off, and writes it all once the database is back.
 */
struct engine_node {
    const char *id;   /* the node's row in `nodes` (registered by the caller); borrowed */
    int64_t lease_ms; /* a node silent this long has lost what it owned (default 30 s) */
    int cluster;      /* PostgreSQL: fence, listen, claim, lead the scheduler by lease */
    int claim_work;   /* take queued executions and those of dead nodes (server, worker) */
};

#define ENGINE_DEFAULT_LEASE_MS 30000

/* Call before engine_run(). */
int engine_set_node(struct engine *eng, const struct engine_node *nd, struct err *err);
/* After engine_run() returned: record the node as stopped and give up the
 * scheduler lease, so other nodes take over at once. */
void engine_node_stop(struct engine *eng);

/*
 * Redis beside PostgreSQL (redisbus.c): with engine_config.redis set, a node
 * of a cluster (engine_set_node) connects from the loop. It never fails for
 * an unreachable Redis: it runs on PostgreSQL alone, says a change once
 * (WARN [Redis] ... when it falls back, INFO when it is back) and reconnects
 * with back-off. With Redis up, wake-ups are PUBLISHed on ENGINE_REDIS_WAKE
 * ("<channel> <payload>", the LISTEN/NOTIFY channel and payload) instead of
 * NOTIFYed; offers, committed to PostgreSQL first, are XADDed to
 * ENGINE_REDIS_OFFERS (fields e: execution, t: task index, a: attempt, o:
 * owner) and read through the consumer group ENGINE_REDIS_GROUP (consumer:
 * the node's name); a task's output is XADDed while it runs to its attempt's
 * stream (redis_log_key(): s out|err, o the offset of d in that stream, d the
 * bytes; last, once the store has it all, end: succeeded|failed|cancelled),
 * capped (MAXLEN ~ 10000) and expired an hour after its end.
 */
#define ENGINE_REDIS_WAKE "orch:wake"
#define ENGINE_REDIS_OFFERS "orch:dispatch"
#define ENGINE_REDIS_GROUP "orch-nodes"

/* A consistent snapshot of the engine's figures (thread-safe). */
void engine_get_stats(struct engine *eng, struct engine_stats *out);
/*
 * Publish the engine's figures now, before engine_run() turns: a server
 * calls it just before its API starts listening, so that a client that
 * finds the port open sees the engine running (health 200), never the
 * figures of an engine not started yet. From the thread that then calls
 * engine_run().
 */
void engine_publish_stats(struct engine *eng);

/*
 * Append the engine's metrics to `out` in the Prometheus text format 0.0.4
 * (base/metrics.h): executions started and finished by workflow (at most
 * 1000 workflows, later ones as workflow="_other") and status, task attempts
 * by type and status, duration histograms, queue, slots, scheduler, store
 * commits, node. Thread-safe: it reads counters the loop updates without a
 * lock, and engine_get_stats(); it never waits for the loop's turn. Returns
 * 0 or the strbuf's error (ERR_TOO_BIG).
 */
struct strbuf;
int engine_metrics_write(struct engine *eng, struct strbuf *out);

/*
 * Check the workflow tasks of `wf` against the workflows registered in `st`:
 * each must name one that exists, and no chain of workflow tasks may lead
 * back to `wf` (recursion). Problems ("$.tasks[2].workflow: ...") are added
 * to `probs`; returns ERR_INVALID if any, else 0.
 */
int engine_check_subflows(struct store *st, const struct workflow *wf,
                          struct dag_problems *probs);

/*
 * The outputs of a succeeded execution `d` read from `st`: its workflow's
 * "outputs" filled in from its tasks, as compact JSON text in *out (free()).
 * *out is NULL when it did not succeed or its workflow declares none.
 * Returns 0, or an error (a value missing from its tasks' outputs).
 */
int engine_exec_outputs(struct store *st, const struct exec_detail *d, char **out,
                        struct err *err);

#endif
