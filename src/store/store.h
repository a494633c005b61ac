/*
 * store.h - the durable store: one narrow interface, backends behind it
 * (embedded SQLite; PostgreSQL through libpq, chosen by the URL scheme).
 *
 * Threading: a struct store is one connection; use it from one thread at a
 * time. The engine owns a writer store; readers (CLI, API threads) open their
 * own. Writes happen between store_begin() and store_commit(): the engine
 * groups every transition of one loop turn into one transaction.
 *
 * Errors: functions return 0 or a negative ERR_* code and fill `err` (if not
 * NULL) on failure. ERR_CONFLICT from an update means a fencing check failed
 * (the row's attempt number is not the one the caller holds): nothing was
 * changed and the caller must drop its stale report.
 *
 * Ownership: strings in rows passed in are borrowed. Rows and lists returned
 * are owned by the caller and freed with the matching *_free function.
 * Instants are UTC milliseconds since the epoch; 0 means "not set".
 */
#ifndef ORCH_STORE_STORE_H
#define ORCH_STORE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/id.h"

enum exec_status {
    EXEC_QUEUED = 0,
    EXEC_RUNNING,
    EXEC_SUCCEEDED,
    EXEC_FAILED,
    EXEC_CANCELLED,
    EXEC_TIMED_OUT,
    EXEC_STATUS_COUNT
};

enum task_status {
    TASK_PENDING = 0, /* waiting on dependencies */
    TASK_QUEUED,      /* ready, waiting for a worker slot (or for available_at) */
    TASK_RUNNING,
    TASK_SUCCEEDED,
    TASK_FAILED,
    TASK_UPSTREAM_FAILED,
    TASK_SKIPPED,
    TASK_CANCELLED,
    TASK_TIMED_OUT,
    TASK_STATUS_COUNT
};

enum attempt_status {
    ATTEMPT_RUNNING = 0,
    ATTEMPT_SUCCEEDED,
    ATTEMPT_FAILED,
    ATTEMPT_TIMED_OUT,
    ATTEMPT_CANCELLED,
    ATTEMPT_LOST, /* its owner died; found at recovery */
    ATTEMPT_STATUS_COUNT
};

const char *exec_status_name(enum exec_status s);
const char *task_status_name(enum task_status s);
const char *attempt_status_name(enum attempt_status s);
/* Parse a status name; returns 0 or ERR_INVALID. */
int exec_status_parse(const char *s, enum exec_status *out);
int task_status_parse(const char *s, enum task_status *out);
int attempt_status_parse(const char *s, enum attempt_status *out);
int exec_status_is_final(enum exec_status s);
int task_status_is_final(enum task_status s);

struct exec_row {
    char id[ID_MAX];
    char *workflow;
    int workflow_version;
    enum exec_status status;
    char *params; /* JSON object text, never NULL in rows read back */
    int64_t created_at;
    int64_t started_at; /* the first start (kept by a retry) */
    int64_t finished_at;
    char *error; /* or NULL */
    char *schedule_id;     /* the schedule that fired it, or NULL */
    int64_t scheduled_for; /* its due time (ms), 0 if not scheduled */
    char *owner;           /* the node advancing it, or NULL (written on insert only) */
    char *parent_id;       /* a child execution: the execution that started it, or NULL */
    int parent_task_idx;   /* ... and its workflow task (written on insert only) */
    int depth;             /* 0 for a top execution, parent's + 1 for a child */
    int64_t retried_at;    /* when its newest retry started, 0 if never retried */
};

struct task_run_row {
    int idx;    /* the task's index in the workflow definition */
    char *name; /* the task's name */
    enum task_status status;
    int attempt;          /* number of the current/last attempt, 0 before the first */
    int64_t available_at; /* QUEUED: not before this instant (retry back-off) */
    int64_t started_at;   /* first attempt's start */
    int64_t finished_at;
    char *error;  /* or NULL */
    char *output; /* the task's output, JSON text, or NULL */
    /* A fan-out instance (instance = 1): one item of the forEach task
     * group_idx, at idx >= the workflow's task count (inserted only). */
    int instance;
    int group_idx;
    int item_index;
    char *item;     /* the item, JSON text */
    char *child_id; /* a workflow task: the child execution of its attempt, or NULL */
    int64_t queued_at; /* when its current (or next) attempt became queued: ready to run,
                          its dependencies final and its back-off over; 0 if not known */
};

struct attempt_row {
    int task_idx;
    int number; /* 1-based; the fencing token */
    enum attempt_status status;
    char *node; /* who ran it (host:pid), or NULL */
    int pid;
    int pgid;
    int64_t proc_start; /* the process's start time (clock ticks since boot), to avoid PID reuse */
    int64_t started_at;
    int64_t finished_at;
    int exit_code; /* -1 if none */
    int signal;    /* 0 if none */
    char *error;   /* or NULL */
    int64_t queued_at; /* when it became queued (before started_at); 0 if not known.
                          Written with the insert only */
};

/* Fan-out instances of one forEach task in one status (store_execution_page). */
struct group_count {
    int group_idx;
    enum task_status status;
    long long n;
};

struct exec_detail {
    struct exec_row exec;
    struct task_run_row *tasks; /* ordered by idx */
    size_t ntasks;
    struct attempt_row *attempts; /* ordered by (task_idx, number) */
    size_t nattempts;
    struct group_count *counts; /* store_execution_page only: instances by group and status */
    size_t ncounts;
};

/* Which task runs of an execution store_execution_page reads. */
struct task_page {
    int after_idx;      /* task runs with idx > this (-1: from the first) */
    int group_idx;      /* -1: any; else only the instances of that forEach task */
    int top_only;       /* only the workflow's tasks, no fan-out instances */
    const char *status; /* a task status name, or NULL for any */
    int limit;          /* at most this many; 0: no limit */
};

struct exec_filter {
    unsigned status_mask; /* bit (1 << enum exec_status); 0 = any */
    const char *workflow; /* or NULL */
    const char *parent_id; /* or NULL; else only the children of this execution */
    int64_t since;        /* created_at >= since, 0 = unbounded */
    int64_t until;        /* created_at < until, 0 = unbounded */
    const char *before_id; /* keyset cursor: only ids < this, or NULL */
    int limit;             /* 1..1000 */
};

struct exec_list {
    struct exec_row *items; /* newest first (descending id) */
    size_t n;
};

enum log_stream {
    LOG_STREAM_STDOUT = 1,
    LOG_STREAM_STDERR = 2,
};

struct log_chunk {
    int task_idx;
    int attempt;
    int seq;
    enum log_stream stream;
    int64_t ts;
    char *data;
    size_t len;
};

struct log_list {
    struct log_chunk *items; /* ordered by (task_idx, attempt, seq) */
    size_t n;
};

struct store;

enum store_open_flags {
    STORE_CREATE = (1 << 0),   /* create the database and its directory if missing */
    STORE_READONLY = (1 << 1), /* a reader connection: no writes, no migration */
};

/*
 * Open the store at `location`: a data directory path (the SQLite file
 * "orch.db" in it), "sqlite:PATH" (a file), or later "postgres://...".
 * Runs the schema migrations unless STORE_READONLY.
 */
int store_open(const char *location, unsigned flags, struct store **out, struct err *err);
void store_free(struct store *st);
/* Does `location` name a PostgreSQL database (postgres://, postgresql://, or
 * a libpq key=value string)? Else it is a data directory or sqlite:FILE. */
int store_location_is_postgres(const char *location);

/* Name of the backend ("sqlite"). */
const char *store_backend_name(const struct store *st);
/* The schema version this orch brings (the number of migration steps). */
int store_schema_latest(void);
/* The schema version the database is at. */
int store_schema_version(struct store *st, int *out, struct err *err);

/* Write transaction (BEGIN IMMEDIATE on SQLite). */
int store_begin(struct store *st, struct err *err);
int store_commit(struct store *st, struct err *err);
/* Roll back the open transaction, if any. Never fails. */
void store_rollback(struct store *st);
/* Open a read snapshot when no transaction is open (*began: this call opened
 * it; end it with store_rollback). The calls that read inside it share it. */
int store_read_begin(struct store *st, int *began, struct err *err);

/* --- workflow definitions (versioned) --- */

/*
 * Record `definition` (JSON text) as the newest version of workflow `name`.
 * If the newest version has byte-identical text, no version is added and that
 * version is returned. *out_version is the version in effect.
 */
int store_workflow_put(struct store *st, const char *name, const char *definition, int64_t now,
                       int *out_version, struct err *err);
/* Get version `version` (0 = newest) of `name`: ERR_NOT_FOUND if none.
 * *out_definition is owned by the caller (free()). */
int store_workflow_get(struct store *st, const char *name, int version, char **out_definition,
                       int *out_version, struct err *err);
/* The same, also giving when that version was recorded (*out_created_at, ms). */
int store_workflow_get_at(struct store *st, const char *name, int version, char **out_definition,
                          int *out_version, int64_t *out_created_at, struct err *err);

/* --- executions, task runs, attempts (inside a write transaction) --- */

int store_execution_insert(struct store *st, const struct exec_row *row, struct err *err);
/* Update status, started_at, finished_at, error, schedule_id and scheduled_for
 * of execution `row->id`. */
int store_execution_update(struct store *st, const struct exec_row *row, struct err *err);

int store_task_run_insert(struct store *st, const char *exec_id, const struct task_run_row *row,
                          struct err *err);
/*
 * Update the task run (exec_id, row->idx): status, attempt, available_at,
 * queued_at, started_at, finished_at, error. Fenced: applied only if the stored attempt
 * equals `expected_attempt`; otherwise nothing changes and ERR_CONFLICT is
 * returned.
 */
int store_task_run_update(struct store *st, const char *exec_id, const struct task_run_row *row,
                          int expected_attempt, struct err *err);

int store_attempt_insert(struct store *st, const char *exec_id, const struct attempt_row *row,
                         struct err *err);
/* Update status, pid, pgid, proc_start, finished_at, exit_code, signal, error
 * (and node, when given) of
 * attempt (exec_id, task_idx, number). ERR_NOT_FOUND if it does not exist. */
int store_attempt_update(struct store *st, const char *exec_id, const struct attempt_row *row,
                         struct err *err);

/* Append a chunk of task output. */
int store_log_append(struct store *st, const char *exec_id, const struct log_chunk *chunk,
                     struct err *err);
/* Delete the chunks of one attempt with seq < `below_seq` (to keep only the tail),
 * of one stream (LOG_STREAM_STDOUT or LOG_STREAM_STDERR) or of both (0). */
int store_log_trim(struct store *st, const char *exec_id, int task_idx, int attempt,
                   int below_seq, int stream, struct err *err);

/* --- reads (no transaction needed) --- */

int store_execution_get(struct store *st, const char *id, struct exec_detail **out,
                        struct err *err);
void exec_detail_free(struct exec_detail *d);
/* The execution, the task runs `q` selects (in idx order) with their attempts,
 * and the count of its fan-out instances by group and status (d->counts):
 * for a large fan-out, without reading every instance. */
int store_execution_page(struct store *st, const char *id, const struct task_page *q,
                         struct exec_detail **out, struct err *err);

int store_executions_list(struct store *st, const struct exec_filter *filter,
                          struct exec_list *out, struct err *err);
void exec_list_release(struct exec_list *list);

/* Ids of executions whose status is queued or running, oldest first.
 * *out_ids is an array of `*out_n` heap strings; free each and the array. */
int store_executions_unfinished(struct store *st, char ***out_ids, size_t *out_n,
                                struct err *err);

/* Log chunks of an execution, optionally of one task (task_idx >= 0) only,
 * ordered by (task_idx, attempt, seq). */
int store_logs_get(struct store *st, const char *exec_id, int task_idx, struct log_list *out,
                   struct err *err);
/*
 * Log chunks of one attempt (exec_id, task_idx, attempt) with seq > after_seq,
 * ordered by seq: to follow a running task's output, start with after_seq -1
 * and then pass the last seq received. No chunks is not an error (n = 0).
 */
int store_logs_follow(struct store *st, const char *exec_id, int task_idx, int attempt,
                      int after_seq, struct log_list *out, struct err *err);
/* Free the chunks of a list (each chunk's data is NUL-terminated after `len`
 * bytes, for convenience) and reset it to empty. */
void log_list_release(struct log_list *list);

/* Free the members of a row (not the row itself). */
void exec_row_release(struct exec_row *row);

/* ------------------------------------------------------------------ server additions */

/* Is the database reachable? A trivial query (SELECT 1); for health checks. */
int store_ping(struct store *st, struct err *err);

struct workflow_row {
    char *name;
    int version;        /* newest version */
    char *definition;   /* JSON text of that version */
    int64_t created_at; /* when that version was recorded */
};

/* The newest version of every workflow not deleted, ordered by name.
 * Free with workflow_rows_free(rows, n). */
int store_workflows_list(struct store *st, struct workflow_row **out, size_t *out_n,
                         struct err *err);
void workflow_rows_free(struct workflow_row *rows, size_t n);
/* Delete workflow `name`: it disappears from lists and store_workflow_get
 * (version 0) returns ERR_NOT_FOUND; the versions stay readable by number for
 * the executions that ran them. A later store_workflow_put starts a new
 * version after the old ones. ERR_NOT_FOUND if there is no such workflow. */
int store_workflow_delete(struct store *st, const char *name, int64_t now, struct err *err);

/* --- idempotency keys for execution submissions --- */

/* The execution recorded for (workflow, key), or ERR_NOT_FOUND. */
int store_idempotency_get(struct store *st, const char *workflow, const char *key,
                          char out_exec_id[ID_MAX], struct err *err);
/* Record (workflow, key) -> exec_id in the current transaction; ERR_CONFLICT if
 * the pair exists already. */
int store_idempotency_put(struct store *st, const char *workflow, const char *key,
                          const char *exec_id, int64_t now, struct err *err);

/* --- notifications: the outbox (written with the status change they tell of) ---
 *
 * A row is inserted inside the engine's commit; a node claims due rows
 * (pending with next_at <= now, or sending past lease_until: their node
 * died or stalled) with FOR UPDATE SKIP LOCKED on PostgreSQL, sends them
 * after that commit, and settles each attempt, applied only while it still
 * holds the row. Instants are the claiming node's clock (ms).
 */
enum notify_status { NOTIFY_PENDING = 0, NOTIFY_SENDING, NOTIFY_DELIVERED, NOTIFY_FAILED };
const char *notify_status_name(enum notify_status s);

struct notify_row {
    char id[ID_MAX];      /* "nt_...": also its Idempotency-Key */
    char exec_id[ID_MAX];
    char *workflow;
    char *event;          /* "failed", "timed_out", "succeeded", "cancelled", "stuck" */
    char *request;        /* JSON: method, url or urlEnv, headers, auth (variable names only) */
    char *body;
    enum notify_status status;
    int attempts;         /* attempts made */
    int64_t next_at;      /* pending: when it is due */
    char *claimed_by;     /* sending: the node */
    int64_t lease_until;  /* sending: another node may take it over after this; 0 none */
    char *last_error;     /* or NULL */
    int response_code;    /* of the last attempt; 0 none */
    int64_t created_at, updated_at;
};
void notify_rows_free(struct notify_row *rows, size_t n);

/* Insert one row (inside the caller's transaction). */
int store_notify_insert(struct store *st, const struct notify_row *row, struct err *err);
/*
 * Claim up to `limit` rows for `node` at `now`: pending ones due, sending
 * ones whose lease expired, and with `take_own` 1 also the sending ones
 * `node` holds (a restart under the same name), with 2 every sending one
 * (the only node of the store). They become sending, claimed by `node`
 * until now + lease_ms. Free *out with notify_rows_free().
 */
int store_notify_claim(struct store *st, const char *node, int64_t now, int64_t lease_ms,
                       int take_own, int limit, struct notify_row **out, size_t *out_n,
                       struct err *err);
/* Record an attempt's outcome: row->status (pending, delivered or failed),
 * attempts, next_at, last_error, response_code, updated_at, by row->id.
 * ERR_CONFLICT if `node` no longer holds the row (another node took it over). */
int store_notify_settle(struct store *st, const struct notify_row *row, const char *node,
                        struct err *err);
/* When the earliest unsettled row is due (or its lease ends): *out, 0 if none. */
int store_notify_next(struct store *st, int64_t *out, struct err *err);
/* The notifications of an execution, oldest first. */
int store_notify_list(struct store *st, const char *exec_id, struct notify_row **out,
                      size_t *out_n, struct err *err);

/* --- API keys (only a hash is stored) --- */

enum key_scope {
    KEY_SCOPE_READ = (1 << 0),
    KEY_SCOPE_WRITE = (1 << 1),
    KEY_SCOPE_ADMIN = (1 << 2),
};

#define KEY_HASH_LEN 32
#define KEY_PREFIX_MAX 24

struct key_row {
    char id[ID_MAX];                   /* "key_..." */
    char *name;
    char prefix[KEY_PREFIX_MAX];       /* the first characters of the key, shown to users */
    unsigned char hash[KEY_HASH_LEN];  /* keyed hash of the whole key */
    unsigned scopes;                   /* enum key_scope bits */
    int64_t created_at;
    int64_t expires_at;   /* 0 = never */
    int64_t last_used_at; /* 0 = never */
    int64_t revoked_at;   /* 0 = not revoked */
};

int store_key_insert(struct store *st, const struct key_row *row, struct err *err);
/* The key whose prefix is `prefix` (prefixes are unique), or ERR_NOT_FOUND.
 * Fills *out; free its members with key_row_release. */
int store_key_get_by_prefix(struct store *st, const char *prefix, struct key_row *out,
                            struct err *err);
/* Every key, newest first (revoked ones included). Free with key_rows_free. */
int store_keys_list(struct store *st, struct key_row **out, size_t *out_n, struct err *err);
/* Revoke by id or by name; ERR_NOT_FOUND if none. */
int store_key_revoke(struct store *st, const char *id_or_name, int64_t now, struct err *err);
/* Set last_used_at (at most a write per key and minute is enough). */
int store_key_touch(struct store *st, const char *id, int64_t now, struct err *err);
void key_row_release(struct key_row *row);
void key_rows_free(struct key_row *rows, size_t n);

/* --- web UI sign-in sessions (only hashes of their tokens are stored) --- */

#define SESSION_HASH_LEN 32

struct session_row {
    unsigned char token_hash[SESSION_HASH_LEN]; /* of the cookie's token: the lookup key */
    unsigned char csrf_hash[SESSION_HASH_LEN];  /* of the session's CSRF token */
    char key_id[ID_MAX];                        /* the API key it was started with */
    char key_prefix[KEY_PREFIX_MAX];            /* that key's prefix (finds it again) */
    int64_t created_at;
    int64_t expires_at;
    int64_t last_seen_at;
};

/* Record a new session; ERR_CONFLICT if its token hash is taken. */
int store_session_insert(struct store *st, const struct session_row *row, struct err *err);
/* The session of `token_hash` into *out (ended ones too: the caller checks
 * expires_at and the key), or ERR_NOT_FOUND. */
int store_session_get(struct store *st, const unsigned char token_hash[SESSION_HASH_LEN],
                      struct session_row *out, struct err *err);
/* Set last_seen_at (never backwards); ERR_NOT_FOUND if the session is gone. */
int store_session_touch(struct store *st, const unsigned char token_hash[SESSION_HASH_LEN],
                        int64_t now, struct err *err);
/* End a session (sign-out); ERR_NOT_FOUND if it was not there. */
int store_session_delete(struct store *st, const unsigned char token_hash[SESSION_HASH_LEN],
                         struct err *err);
/* Delete the sessions that have ended by `now` or whose key is revoked;
 * *out_deleted is how many. */
int store_sessions_purge(struct store *st, int64_t now, int *out_deleted, struct err *err);

/* --- retention and visibility --- */

/*
 * Delete up to `batch` finished executions (with their task runs, attempts,
 * logs and idempotency keys) whose finished_at is before `before`, oldest
 * first, in one transaction. With `workflow` set, only that workflow's;
 * otherwise those of every workflow except the `nexcept` names in `except`
 * (the workflows that have a retention of their own). *out_deleted is how
 * many went. Uses an index on finished_at.
 */
int store_executions_purge(struct store *st, const char *workflow, const char *const *except,
                           size_t nexcept, int64_t before, int batch, int *out_deleted,
                           struct err *err);
/* The most names `except` may hold (more is ERR_INVALID). */
#define STORE_PURGE_EXCEPT_MAX 64

struct store_counts {
    int64_t tasks_queued;        /* task runs in status queued */
    int64_t oldest_queued_since; /* min over queued task runs of when they became
                                    ready (their available_at, or the execution's
                                    started_at), 0 if none */
    int64_t executions_running;
    int64_t oldest_running_started; /* min started_at of running executions, 0 if none */
};

int store_counts_get(struct store *st, struct store_counts *out, struct err *err);

/* Executions created in one hour with one status (store_executions_hourly). */
struct exec_hour_count {
    int64_t hour;           /* the hour's start, ms (a multiple of 3600000) */
    enum exec_status status;
    int64_t n;
};
/* The executions created in the hour that holds `since` (ms) and after,
 * counted by hour of creation and status, ordered by hour (hours and
 * statuses without executions left out). A read of the counts kept as
 * executions are created, change status and are deleted: at most hours x
 * statuses rows. Free *out with free(). */
int store_executions_hourly(struct store *st, int64_t since, struct exec_hour_count **out,
                            size_t *out_n, struct err *err);

/* ------------------------------------------------------------------ schedules
 *
 * The state of each schedule of a workflow definition, keyed by (workflow,
 * name); its spec lives in the definition. Fires are recorded with a unique
 * (schedule_id, scheduled_for), so a due time fires at most once, across
 * restarts (and, later, nodes).
 */

struct schedule_row {
    char id[ID_MAX];       /* "sch_..." */
    char *workflow;
    char *name;
    char *spec_hash;       /* identifies the spec the state was computed for */
    int paused;
    int64_t next_fire_at;  /* ms, 0 = none (disabled or never fires) */
    int64_t last_fire_at;  /* scheduled_for of the last fire, 0 = never */
    int64_t created_at;
    int64_t updated_at;
    int from_api;          /* 1: created through the API (spec below); 0: from the definition */
    char *spec;            /* from_api: the schedule object as JSON text; else NULL */
};

/* Every schedule state row, ordered by (workflow, name). Free with schedule_rows_free. */
int store_schedules_list(struct store *st, struct schedule_row **out, size_t *out_n,
                         struct err *err);
/* One row by id, or ERR_NOT_FOUND. Free its members with schedule_row_release. */
int store_schedule_get(struct store *st, const char *id, struct schedule_row *out,
                       struct err *err);
/* Insert or update (by (workflow, name)) from_api, spec, spec_hash, paused,
 * next_fire_at, last_fire_at, updated_at; a new row keeps row->id and created_at. */
int store_schedule_upsert(struct store *st, const struct schedule_row *row, struct err *err);
/* Delete the state rows of `workflow` that come from its definition (not
 * from_api) and whose name is not among `names` (a schedule removed from the
 * definition); all of them when nnames is 0. */
int store_schedules_prune(struct store *st, const char *workflow, const char *const *names,
                          size_t nnames, struct err *err);
/* The most names store_schedules_prune() takes (more is ERR_INVALID). */
#define STORE_SCHEDULES_PRUNE_MAX 1000
/* Update only the engine's part of a row (spec_hash, next_fire_at,
 * last_fire_at, updated_at) by id, so a concurrent API change of the spec or
 * of paused is never written over; ERR_NOT_FOUND if the row is gone. */
int store_schedule_update_state(struct store *st, const struct schedule_row *row,
                                struct err *err);
/* Delete a schedule's state row and its fires; ERR_NOT_FOUND if no such id. */
int store_schedule_delete(struct store *st, const char *id, struct err *err);
/* Set paused (0/1) and updated_at; ERR_NOT_FOUND if no such id. */
int store_schedule_set_paused(struct store *st, const char *id, int paused, int64_t now,
                              struct err *err);
void schedule_row_release(struct schedule_row *row);
void schedule_rows_free(struct schedule_row *rows, size_t n);

enum fire_status {
    FIRE_FIRED = 0,   /* an execution was created */
    FIRE_SKIPPED,     /* skipped by the overlap or catch-up policy (reason says why) */
    FIRE_QUEUED,      /* named by a backfill or a catch-up, waiting to fire (reason says
                       * which); fired later in due-time order */
};

struct fire_row {
    char *schedule_id;
    int64_t scheduled_for;
    enum fire_status status;
    char execution_id[ID_MAX]; /* FIRE_FIRED: the execution; else "" */
    char *reason;              /* or NULL */
    int64_t created_at;
};

/* Record a fire (inside a write transaction), keyed by (schedule_id,
 * scheduled_for):
 * - FIRE_FIRED or FIRE_SKIPPED: a new row, or a FIRE_QUEUED one turned into
 *   this one; ERR_CONFLICT if the due time was fired or skipped before (or
 *   by another node): the caller must not create an execution;
 * - FIRE_QUEUED: a new row, or a FIRE_SKIPPED one queued again (once: it is
 *   fired next); a due time already fired or queued is left as it is (0). */
int store_fire_insert(struct store *st, const struct fire_row *row, struct err *err);
/* The fire of (schedule_id, scheduled_for), or ERR_NOT_FOUND. Free its
 * members with fire_row_release. */
int store_fire_get(struct store *st, const char *schedule_id, int64_t scheduled_for,
                   struct fire_row *out, struct err *err);
void fire_row_release(struct fire_row *row);
/* The due times of a schedule still FIRE_QUEUED, oldest first (at most
 * `limit`). Free *out with free(). */
int store_fires_queued(struct store *st, const char *schedule_id, int limit, int64_t **out,
                       size_t *out_n, struct err *err);
/* Was (schedule_id, scheduled_for) recorded? *out 1 or 0. */
int store_fire_exists(struct store *st, const char *schedule_id, int64_t scheduled_for,
                      int *out, struct err *err);
/* The newest `limit` fires of a schedule, newest first. Free with fire_rows_free. */
int store_fires_list(struct store *st, const char *schedule_id, int limit,
                     struct fire_row **out, size_t *out_n, struct err *err);
void fire_rows_free(struct fire_row *rows, size_t n);

/* ------------------------------------------------------------------ nodes and scale-out
 *
 * Several orch nodes share one PostgreSQL database. Each registers a row in
 * `nodes` and renews its heartbeat in one statement per interval: that one
 * timestamp is the lease of every execution the node owns. A node whose
 * heartbeat is older than the lease (or that stopped) owns nothing any more:
 * the next claim takes its unfinished executions. Instants of nodes are the
 * database's clock; registration and each heartbeat also record how far the
 * node's own clock is from it (clock_offset_ms), for orch doctor.
 *
 * On SQLite (one node per data directory) the node calls work, so that
 * /v1/nodes shows the one node; claims, fences, leases, offers and
 * notifications are PostgreSQL's only (ERR_INVALID elsewhere; a notify is a
 * no-op: there is nobody else to wake).
 */

struct node_row {
    char *id;   /* the node's name: --node, or host:pid */
    char *host;
    int pid;
    int slots;  /* its worker slots */
    char *role; /* "server" or "worker" */
    char *version;
    int64_t started_at;
    int64_t heartbeat_at;
    int64_t stopped_at;  /* 0 while running */
    int64_t executions;  /* unfinished executions it owns (in lists) */
    int64_t db_now;      /* the database's clock when read (in lists) */
    /* The node's clock minus the database's at its last heartbeat (or its
     * registration), in ms: positive when the node's clock is ahead.
     * clock_known 0: not recorded (a node of an older orch). */
    int64_t clock_offset_ms;
    int clock_known;
};

/* Register (or re-register) node `row->id`, heartbeat now. ERR_BUSY if a node
 * of that id has not stopped and beat within `lease_ms` (a second live
 * process with the same name); `lease_ms` <= 0 takes the name regardless
 * (its process is known to be gone). */
int store_node_register(struct store *st, const struct node_row *row, int64_t lease_ms,
                        struct err *err);
/* What a heartbeat also tells (PostgreSQL; zero elsewhere): executions that
 * nobody owns or whose owner's lease has expired (work to claim), offered
 * tasks nobody has claimed, and the worker slots of the other live nodes. */
struct node_beat {
    int64_t claimable;
    int64_t open_offers;
    int64_t peer_slots;
};
/* Renew the heartbeat of node `id`: one statement, which also fills *out
 * (may be NULL). ERR_NOT_FOUND if the row is gone. */
int store_node_heartbeat(struct store *st, const char *id, int64_t lease_ms,
                         struct node_beat *out, struct err *err);
/* Mark node `id` stopped: what it still owns may be claimed at once. */
int store_node_stop(struct store *st, const char *id, struct err *err);
/* Every node, newest heartbeat first. Free with node_rows_free. */
int store_nodes_list(struct store *st, struct node_row **out, size_t *out_n, struct err *err);
void node_rows_free(struct node_row *rows, size_t n);

/*
 * Claim up to `limit` unfinished executions for node `node`, as `which` says,
 * oldest first, skipping rows another transaction holds (FOR UPDATE SKIP
 * LOCKED): one UPDATE ... RETURNING. Ids out (free each and the array).
 */
enum store_claim_which {
    STORE_CLAIM_UNOWNED = 1 << 0, /* queued for any node */
    STORE_CLAIM_EXPIRED = 1 << 1, /* owned by a node whose lease has expired */
    STORE_CLAIM_OWN = 1 << 2,     /* owned by `node` itself (a restart under the same name) */
};
int store_executions_claim(struct store *st, const char *node, int limit, int64_t lease_ms,
                           unsigned which, char ***out_ids, size_t *out_n, struct err *err);
/*
 * Claim one execution for `node` (any status): it succeeds if nobody owns it,
 * `node` does, its owner's lease has expired, or it has finished. ERR_BUSY
 * with the owner's name otherwise; ERR_NOT_FOUND if there is no such row.
 */
int store_execution_claim_one(struct store *st, const char *id, const char *node,
                              int64_t lease_ms, struct err *err);
/*
 * Fencing, inside a write transaction: lock the rows of executions `ids`
 * (FOR UPDATE) and return in *out_lost (free each and the array) those not
 * owned by `node` any more. A node that was paused past its lease finds here
 * that its executions were taken, before it writes anything.
 */
int store_executions_fence(struct store *st, const char *node, char *const *ids, size_t n,
                           char ***out_lost, size_t *out_nlost, struct err *err);
/* Ask the owner of an unfinished execution to cancel it (cancel_requested_at). */
int store_execution_request_cancel(struct store *st, const char *id, int64_t now,
                                   struct err *err);
/* Executions owned by `node` that were asked to cancel (ids out). */
int store_cancel_requests(struct store *st, const char *node, char ***out_ids, size_t *out_n,
                          struct err *err);

/*
 * Task offers (PostgreSQL): a command task its owner runs on another node.
 * The owner inserts the offer (and deletes it once it has applied the
 * result); a runner claims offers (FOR UPDATE SKIP LOCKED), reports its pid
 * and its result (only while it is the offer's runner).
 */
struct offer_row {
    char exec_id[ID_MAX];
    int task_idx;
    int attempt;
    char *owner;       /* node id */
    char *runner_node; /* node id of the runner, or NULL while unclaimed */
    char *spec;        /* JSON: what to run (see engine/remote.c) */
    int64_t offered_at;
    char *runner;      /* the runner's host:pid, for the attempt */
    int pid;
    int64_t proc_start;
    int64_t finished_at; /* 0 while running */
    char *status;        /* "succeeded", "failed", "lost" (a report) */
    int exit_code;       /* -1 if none */
    int signal;
    char *error;
    char *output;
    int cancel_requested;
    int runner_gone;     /* store_offers_owned: the runner's lease has expired */
};
void offer_rows_free(struct offer_row *rows, size_t n);
int store_offer_put(struct store *st, const struct offer_row *o, struct err *err);
int store_offer_delete(struct store *st, const char *exec_id, int task_idx, int attempt,
                       struct err *err);
int store_offer_cancel(struct store *st, const char *exec_id, int task_idx, int attempt,
                       struct err *err);
/* Claim up to `limit` unclaimed offers for node `runner`, oldest first. */
int store_offers_claim(struct store *st, const char *runner, int limit, struct offer_row **out,
                       size_t *out_n, struct err *err);
/* A runner's report: pid and proc_start while running (finished_at 0: then
 * only if no result is there yet), or the result (finished_at set). Applied
 * only while `o->runner_node` holds the offer. */
int store_offer_report(struct store *st, const struct offer_row *o, struct err *err);
/* An owner's offers that need it: finished, or whose runner's lease expired. */
int store_offers_owned(struct store *st, const char *owner, int64_t lease_ms,
                       struct offer_row **out, size_t *out_n, struct err *err);
/* A runner's offers whose owner asked to cancel them and that still run. */
int store_offers_cancelled(struct store *st, const char *runner, struct offer_row **out,
                           size_t *out_n, struct err *err);
/* Make `owner` the owner of every offer of execution `exec_id` (a takeover). */
int store_offers_adopt(struct store *st, const char *exec_id, const char *owner,
                       struct offer_row **out, size_t *out_n, struct err *err);

/* LISTEN/NOTIFY. store_notify sends within the open transaction, if any (then
 * at its commit). store_listen_fd: the socket to poll for notifications (-1
 * if none); store_notifications drains them, calling fn for each. */
int store_listen(struct store *st, const char *channel, struct err *err);
int store_notify(struct store *st, const char *channel, const char *payload, struct err *err);
int store_listen_fd(struct store *st);
int store_notifications(struct store *st, void (*fn)(void *arg, const char *channel,
                                                     const char *payload),
                        void *arg, struct err *err);

/* Take or renew the named lease `name` for `node` for `lease_ms` (database
 * clock): *out_held 1 if `node` holds it now, 0 if another node does and its
 * lease has not expired. */
int store_lease_acquire(struct store *st, const char *name, const char *node, int64_t lease_ms,
                        int *out_held, struct err *err);
/* Give the lease up at once (a graceful stop), if `node` holds it. */
int store_lease_release(struct store *st, const char *name, const char *node, struct err *err);

/* Is the connection usable? (0 after it was lost.) */
int store_connected(struct store *st);
/* Connect again after a loss (one try). Listens are renewed; statements are
 * prepared again as they are used. */
int store_reconnect(struct store *st, struct err *err);
/*
 * Pipelining (PostgreSQL): inside a write transaction, the writes the engine
 * makes (task runs, attempts, logs, execution updates, notifications, the
 * ownership fence) are sent without waiting for each answer; they are checked
 * at the next statement that needs an answer, or at store_commit. Their
 * errors (a stale attempt: ERR_CONFLICT; an execution another node took:
 * ERR_FENCED) are then reported by that statement or by the commit, and the
 * transaction is rolled back. One round trip per transaction instead of one
 * per statement. Off by default; a no-op on SQLite.
 */
void store_set_pipelining(struct store *st, int on);

/* The location without its password, for messages. */
const char *store_where(struct store *st);

/* What a commit of this connection is durable against, for messages and
 * tests: on SQLite the effective `synchronous` setting ("synchronous=full"
 * unless ORCH_SQLITE_SYNC=normal); NULL on a backend with nothing to say. */
int store_durability(struct store *st, const char **out, struct err *err);

/* ------------------------------------------------------------------ diagnostics
 *
 * Fixed read-only queries for `orch doctor`, each with its own SQL per
 * backend and parameters bound (never text put into SQL). The answer is a
 * table of text cells (NULL for SQL NULL); numbers come as their decimal
 * text. A query a backend has none of (the PG_ ones on SQLite) is
 * ERR_INVALID. Params: the int64 values listed, in order.
 */
enum store_diag {
    /* (since ms): attempts failed or timed out since then, grouped:
     * workflow, task, error, count, newest execution id, task idx. At most 20
     * groups, the largest first. */
    STORE_DIAG_FAILURES = 0,
    /* (heartbeat before ms): running executions whose owner node has
     * stopped, or not beaten since then: id, workflow, owner, heartbeat_at.
     * At most 20. */
    STORE_DIAG_ORPHANS,
    /* (): per workflow, the queued task runs: workflow, count, oldest ready
     * since (ms: available_at, or the execution's start). */
    STORE_DIAG_QUEUED,
    /* (): the database's clock now (ms). PostgreSQL. */
    STORE_DIAG_CLOCK,
    /* (): pg_stat_statements: installed in this database (0/1), available
     * to install (0/1), shared_preload_libraries. PostgreSQL. */
    STORE_DIAG_PG_EXTENSION,
    /* (): the 5 statements of this database slowest by mean time: query,
     * calls, mean ms, total ms. PostgreSQL with pg_stat_statements. */
    STORE_DIAG_PG_STATEMENTS,
    /* (older than ms): sessions of this database active or idle in a
     * transaction for longer: pid, state, age ms, query (200 characters),
     * application_name. PostgreSQL. */
    STORE_DIAG_PG_SESSIONS,
    /* (): orch's tables with the most dead rows: table, dead rows, live
     * rows, bytes with indexes, last (auto)vacuum or NULL. PostgreSQL. */
    STORE_DIAG_PG_BLOAT,
    /* (): the 5 tables and btree indexes of orch's schema with the most
     * space beyond what their rows need, by the planner's statistics (no
     * extension): kind ("table" or "index"), name, its table (indexes),
     * bytes on disk, bytes their rows need (estimate), rows. Relations never
     * analysed are left out. PostgreSQL. */
    STORE_DIAG_PG_SPACE,
    STORE_DIAG_COUNT
};

struct store_diag_rows {
    size_t nrows, ncols;
    char **cells; /* nrows * ncols heap strings, row by row; NULL for SQL NULL */
};

#define STORE_DIAG_ROWS_INIT {0, 0, NULL}

int store_diag(struct store *st, enum store_diag which, const int64_t *params, size_t nparams,
               struct store_diag_rows *out, struct err *err);
/* Cell (row, col), or NULL (SQL NULL, or out of range). */
const char *store_diag_cell(const struct store_diag_rows *r, size_t row, size_t col);
void store_diag_rows_release(struct store_diag_rows *r);

#endif
