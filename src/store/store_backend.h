/*
 * store_backend.h - the table a store backend fills in (internal to src/store).
 *
 * store.c validates arguments, picks the backend from the location and then
 * dispatches every public store_* call through st->be, or to the logic that
 * is the same on every backend (shared.c: migrations, version checks, the
 * transactions a call opens, the list merge, an execution's detail), which
 * is built on the backend's primitives below; rows.c decodes every row type
 * for both. A backend allocates
 * its own connection object whose first member is `struct store` (so a
 * `struct store *` can be converted to it), and frees it in close().
 *
 * Each operation has the contract of the public function of the same name in
 * store.h, with the arguments already checked by store.c: pointers are not
 * NULL, ids are NUL-terminated and non-empty, a filter's limit is in range.
 */
#ifndef ORCH_STORE_STORE_BACKEND_H
#define ORCH_STORE_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct store {
    const struct store_backend *be;
    /* The database as messages name it, owned by the backend: "'orch.db'"
     * (SQLite), "database 'orch' on host:5432" (PostgreSQL, never the password). */
    const char *where_msg;
};

/* What count_min counts: queued task runs (oldest: ready since), running
 * executions (oldest: started at). */
enum store__count {
    STORE__COUNT_QUEUED,
    STORE__COUNT_RUNNING,
};

/* The SQL dialect of a backend: which text of a step's extra it runs. */
enum store__dialect {
    STORE__SQLITE,
    STORE__POSTGRES,
};

struct store_backend {
    const char *name;
    enum store__dialect dialect;
    /* `target` is what follows the backend selection: a file path for SQLite. */
    int (*open)(const char *target, unsigned flags, struct store **out, struct err *err);
    void (*close)(struct store *st);
    int (*schema_version)(struct store *st, int *out, struct err *err);

    int (*begin)(struct store *st, struct err *err);
    int (*commit)(struct store *st, struct err *err);
    void (*rollback)(struct store *st);

    /*
     * Workflows (store__workflow_put/_get): read version `version` (0: the
     * newest) into out->version, ->definition (a heap string) and
     * ->created_at, *out_deleted whether it is marked deleted (always 0 for
     * a version asked by number), *out_found 0 and nothing read when there
     * is none; insert one version.
     */
    int (*workflow_read)(struct store *st, const char *name, int version, struct workflow_row *out,
                         int *out_deleted, int *out_found, struct err *err);
    int (*workflow_insert)(struct store *st, const char *name, int version, const char *definition,
                           int64_t now, struct err *err);

    int (*execution_insert)(struct store *st, const struct exec_row *row, struct err *err);
    int (*execution_update)(struct store *st, const struct exec_row *row, struct err *err);
    int (*task_run_insert)(struct store *st, const char *exec_id, const struct task_run_row *row,
                           struct err *err);
    int (*task_run_update)(struct store *st, const char *exec_id, const struct task_run_row *row,
                           int expected_attempt, struct err *err);
    int (*attempt_insert)(struct store *st, const char *exec_id, const struct attempt_row *row,
                          struct err *err);
    int (*attempt_update)(struct store *st, const char *exec_id, const struct attempt_row *row,
                          struct err *err);
    int (*log_append)(struct store *st, const char *exec_id, const struct log_chunk *chunk,
                      struct err *err);
    int (*log_trim)(struct store *st, const char *exec_id, int task_idx, int attempt, int below_seq,
                    int stream, struct err *err);

    /*
     * Primitives of the shared logic (shared.c). Schema: run a script of
     * statements without parameters ("<what>: <database message>" on
     * failure); say whether the schema_version table exists; record a step;
     * take the lock that serialises migrations across processes inside the
     * open transaction (NULL: the write transaction is the lock).
     */
    int (*exec_script)(struct store *st, const char *sql, const char *what, struct err *err);
    int (*version_table_exists)(struct store *st, int *out, struct err *err);
    int (*version_record)(struct store *st, int version, int64_t now, struct err *err);
    int (*migrate_lock)(struct store *st, struct err *err);
    /* Start the read-only transaction of a snapshot (ended by rollback()),
     * and say whether a transaction is open on the connection. */
    int (*begin_read)(struct store *st, struct err *err);
    int (*in_transaction)(struct store *st);
    /* One page of the list for one status (NULL: any), appended to `list`
     * (`*alloc` its capacity); a row is counted even if decoding it failed.
     * `by_range` (only with since and until, without parent): read the
     * executions_created_at range and sort it, rather than walk the ids
     * from the newest (store__list_by_range chose it). */
    int (*list_query)(struct store *st, const struct exec_filter *filter, const char *status,
                      int by_range, struct exec_list *list, size_t *alloc, struct err *err);

    /*
     * The parts of an execution's detail, read into `d` inside the snapshot
     * store__execution_get/_page opened: its row (ERR_NOT_FOUND if none);
     * its task runs, all or (with `q`) a page; their attempts, all or those
     * of the page's task runs already in d->tasks; the counts per forEach
     * group and status. Rows are counted in `d` even if decoding one failed.
     */
    int (*exec_read)(struct store *st, const char *id, struct exec_detail *d, struct err *err);
    int (*tasks_read)(struct store *st, const char *id, const struct task_page *q,
                      struct exec_detail *d, struct err *err);
    int (*attempts_read)(struct store *st, const char *id, const struct task_page *q,
                         struct exec_detail *d, struct err *err);
    int (*group_counts)(struct store *st, const char *id, struct exec_detail *d, struct err *err);
    /* Optional: all of the above at once, in its own snapshot unless one is
     * open (PostgreSQL: one round trip instead of six); NULL: the four. */
    int (*detail_read)(struct store *st, const char *id, const struct task_page *q,
                       struct exec_detail *d, struct err *err);
    int (*executions_unfinished)(struct store *st, char ***out_ids, size_t *out_n, struct err *err);
    int (*logs_get)(struct store *st, const char *exec_id, int task_idx, int attempt, int after_seq,
                    struct log_list *out, struct err *err);

    /* Notifications (store.h: store_notify_*). */
    int (*notify_insert)(struct store *st, const struct notify_row *row, struct err *err);
    int (*notify_claim)(struct store *st, const char *node, int64_t now, int64_t lease_ms,
                        int take_own, int limit, struct notify_row **out, size_t *out_n,
                        struct err *err);
    int (*notify_settle)(struct store *st, const struct notify_row *row, const char *node,
                         struct err *err);
    int (*notify_next)(struct store *st, int64_t *out, struct err *err);
    int (*notify_list)(struct store *st, const char *exec_id, struct notify_row **out,
                       size_t *out_n, struct err *err);

    /* Server additions. */
    int (*ping)(struct store *st, struct err *err);
    int (*workflows_list)(struct store *st, struct workflow_row **out, size_t *out_n,
                          struct err *err);
    int (*workflow_delete)(struct store *st, const char *name, int64_t now, struct err *err);
    int (*idempotency_get)(struct store *st, const char *workflow, const char *key,
                           char out_exec_id[ID_MAX], struct err *err);
    int (*idempotency_put)(struct store *st, const char *workflow, const char *key,
                           const char *exec_id, int64_t now, struct err *err);
    int (*key_insert)(struct store *st, const struct key_row *row, struct err *err);
    int (*key_get_by_prefix)(struct store *st, const char *prefix, struct key_row *out,
                             struct err *err);
    int (*keys_list)(struct store *st, struct key_row **out, size_t *out_n, struct err *err);
    /* `looks_like_id`: id_or_name has the "key_" prefix, so try it as an id first. */
    int (*key_revoke)(struct store *st, const char *id_or_name, int looks_like_id, int64_t now,
                      struct err *err);
    int (*key_touch)(struct store *st, const char *id, int64_t now, struct err *err);
    int (*session_insert)(struct store *st, const struct session_row *row, struct err *err);
    int (*session_get)(struct store *st, const unsigned char *token_hash, struct session_row *out,
                       struct err *err);
    int (*session_touch)(struct store *st, const unsigned char *token_hash, int64_t now,
                         struct err *err);
    int (*session_delete)(struct store *st, const unsigned char *token_hash, struct err *err);
    int (*sessions_purge)(struct store *st, int64_t now, int *out_deleted, struct err *err);
    /* `except` is NULL when nexcept is 0, and never given with `workflow`. */
    int (*executions_purge)(struct store *st, const char *workflow, const char *const *except,
                            size_t nexcept, int64_t before, int batch, int *out_deleted,
                            struct err *err);
    /* One count and the oldest instant of it (0 when none): store__counts_get. */
    int (*count_min)(struct store *st, enum store__count which, int64_t *out_count,
                     int64_t *out_min, struct err *err);

    /* Schedules. `names` is NULL when nnames is 0. */
    int (*schedules_list)(struct store *st, struct schedule_row **out, size_t *out_n,
                          struct err *err);
    int (*schedule_get)(struct store *st, const char *id, struct schedule_row *out,
                        struct err *err);
    int (*schedule_upsert)(struct store *st, const struct schedule_row *row, struct err *err);
    int (*schedules_prune)(struct store *st, const char *workflow, const char *const *names,
                           size_t nnames, struct err *err);
    int (*schedule_delete)(struct store *st, const char *id, struct err *err);
    int (*schedule_update_state)(struct store *st, const struct schedule_row *row,
                                 struct err *err);
    int (*schedule_set_paused)(struct store *st, const char *id, int paused, int64_t now,
                               struct err *err);
    int (*fire_insert)(struct store *st, const struct fire_row *row, struct err *err);
    int (*fire_exists)(struct store *st, const char *schedule_id, int64_t scheduled_for, int *out,
                       struct err *err);
    int (*fires_list)(struct store *st, const char *schedule_id, int limit, struct fire_row **out,
                      size_t *out_n, struct err *err);
    int (*fire_get)(struct store *st, const char *schedule_id, int64_t scheduled_for,
                    struct fire_row *out, struct err *err);
    int (*fires_queued)(struct store *st, const char *schedule_id, int limit, int64_t **out,
                        size_t *out_n, struct err *err);

    /* Nodes (both backends). */
    /* own_clock_ms: this process's wall clock as the statement is sent; the
     * row keeps its offset from the database's clock (nodes.clock_offset_ms). */
    int (*node_register)(struct store *st, const struct node_row *row, int64_t lease_ms,
                         int64_t own_clock_ms, struct err *err);
    int (*node_heartbeat)(struct store *st, const char *id, int64_t lease_ms,
                          int64_t own_clock_ms, struct node_beat *out, struct err *err);
    int (*node_stop)(struct store *st, const char *id, struct err *err);
    int (*nodes_list)(struct store *st, struct node_row **out, size_t *out_n, struct err *err);
    /* The rows of executions_hourly with from_hour <= hour <= to_hour (hour
     * numbers: created_at / 3600000) and n <> 0, by hour and status, at most
     * `limit`; `hour` of each is its start in ms; rows of a status no orch
     * writes are left out (but count toward the limit). */
    int (*hourly_read)(struct store *st, int64_t from_hour, int64_t to_hour, int limit,
                       struct exec_hour_count **out, size_t *out_n, struct err *err);
    /* Scale-out: NULL on a backend of one node (SQLite). */
    int (*executions_claim)(struct store *st, const char *node, int limit, int64_t lease_ms,
                            unsigned which, char ***out_ids, size_t *out_n, struct err *err);
    int (*execution_claim_one)(struct store *st, const char *id, const char *node,
                               int64_t lease_ms, struct err *err);
    int (*executions_fence)(struct store *st, const char *node, char *const *ids, size_t n,
                            char ***out_lost, size_t *out_nlost, struct err *err);
    int (*execution_request_cancel)(struct store *st, const char *id, int64_t now,
                                    struct err *err);
    int (*cancel_requests)(struct store *st, const char *node, char ***out_ids, size_t *out_n,
                           struct err *err);
    int (*listen)(struct store *st, const char *channel, struct err *err);
    int (*notify)(struct store *st, const char *channel, const char *payload, struct err *err);
    int (*listen_fd)(struct store *st);
    int (*notifications)(struct store *st,
                         void (*fn)(void *arg, const char *channel, const char *payload),
                         void *arg, struct err *err);
    int (*lease_acquire)(struct store *st, const char *name, const char *node, int64_t lease_ms,
                         int *out_held, struct err *err);
    int (*lease_release)(struct store *st, const char *name, const char *node, struct err *err);
    /* Connection state: NULL means always connected (an embedded database). */
    int (*connected)(struct store *st);
    int (*reconnect)(struct store *st, struct err *err);
    const char *(*where)(struct store *st);
    /* NULL: the backend's own default, nothing to report. */
    int (*durability)(struct store *st, const char **out, struct err *err);
    void (*set_pipelining)(struct store *st, int on); /* NULL: nothing to batch */
    int (*offer_put)(struct store *st, const struct offer_row *o, struct err *err);
    int (*offer_delete)(struct store *st, const char *exec_id, int task_idx, int attempt,
                        struct err *err);
    int (*offer_cancel)(struct store *st, const char *exec_id, int task_idx, int attempt,
                        struct err *err);
    int (*offers_claim)(struct store *st, const char *runner, int limit, struct offer_row **out,
                        size_t *out_n, struct err *err);
    int (*offer_report)(struct store *st, const struct offer_row *o, struct err *err);
    int (*offers_owned)(struct store *st, const char *owner, int64_t lease_ms,
                        struct offer_row **out, size_t *out_n, struct err *err);
    int (*offers_cancelled)(struct store *st, const char *runner, struct offer_row **out,
                            size_t *out_n, struct err *err);
    int (*offers_adopt)(struct store *st, const char *exec_id, const char *owner,
                        struct offer_row **out, size_t *out_n, struct err *err);
    /* Diagnostics (store_diag): `which` is in range, nparams at most 4; a
     * query the backend has no SQL for is ERR_INVALID. */
    int (*diag)(struct store *st, enum store_diag which, const int64_t *params, size_t nparams,
                struct store_diag_rows *out, struct err *err);
};

/*
 * One result row, read through the backend's own result (a stepped
 * sqlite3_stmt, a row of a PGresult). The decoders below are written once
 * over these readers, so every row type is decoded the same way on every
 * backend. Columns are 0-based.
 */
struct store__row {
    int (*is_null)(const struct store__row *r, int col);
    int64_t (*i64)(const struct store__row *r, int col); /* NULL reads as 0 */
    /* The text of a column, NULL for SQL NULL; borrowed until the next row. */
    const char *(*text)(const struct store__row *r, int col, size_t *out_len);
    /* A binary column as a heap copy with a NUL after its `*out_len` bytes
     * (the caller frees it); NULL if the stored value cannot be decoded. */
    unsigned char *(*blob)(const struct store__row *r, int col, size_t *out_len);
    const char *where; /* the database in messages: "'orch.db'", "database 'x' on h:5432" */
};

/* Column readers on top of a row: NULL becomes `none` (or a NULL string). */
int64_t store__col_opt(const struct store__row *r, int col, int64_t none);
int store__col_int(const struct store__row *r, int col, int none);
char *store__col_str(const struct store__row *r, int col);
/* Copy a text column into an id array ("" for NULL); -1 if it does not fit. */
int store__col_id(const struct store__row *r, int col, char out[ID_MAX]);

/*
 * The decoders, one per row type, each reading the columns its backends'
 * statements select, in this order (ERR_STORE on a value no orch writes):
 *   exec      id, workflow, workflow_version, status, params, created_at,
 *             started_at, finished_at, error, schedule_id, scheduled_for,
 *             owner_node, parent_id, parent_task_idx, depth, retried_at
 *   task run  idx, name, status, attempt, available_at, started_at,
 *             finished_at, error, output, group_idx, item_index, item, child_id,
 *             queued_at
 *   attempt   task_idx, number, status, node, pid, pgid, proc_start,
 *             started_at, finished_at, exit_code, signal, error, queued_at
 *   log chunk task_idx, attempt, seq, stream, ts, data
 *   key       id, name, prefix, hash, scopes, created_at, expires_at,
 *             last_used_at, revoked_at (allocates only on success)
 *   session   token_hash, csrf_hash, key_id, key_prefix, created_at,
 *             expires_at, last_seen_at
 *   schedule  id, workflow, name, spec_hash, paused, next_fire_at,
 *             last_fire_at, created_at, updated_at, from_api, spec
 *   fire      schedule_id, scheduled_for, status, execution_id, reason, created_at
 *   group     group_idx, status, count
 *   workflow  name, version, definition, created_at
 *   node      id, host, pid, role, version, started_at, heartbeat_at,
 *             stopped_at, executions, db_now
 * On failure a row may hold members already read: release it as usual.
 */
/* The column lists of the statements that read rows for the decoders. */
#define EXEC_COLS                                                                                  \
    "id, workflow, workflow_version, status, params, created_at, started_at, finished_at, error,"  \
    " schedule_id, scheduled_for, owner_node, parent_id, parent_task_idx, depth, retried_at"
#define KEY_COLS "id, name, prefix, hash, scopes, created_at, expires_at, last_used_at, revoked_at"
#define SESSION_COLS                                                                               \
    "token_hash, csrf_hash, key_id, key_prefix, created_at, expires_at, last_seen_at"
#define SCHED_COLS                                                                                 \
    "id, workflow, name, spec_hash, paused, next_fire_at, last_fire_at, created_at, updated_at,"   \
    " from_api, spec"
#define FIRE_COLS "schedule_id, scheduled_for, status, execution_id, reason, created_at"

int store__decode_exec(const struct store__row *r, struct exec_row *row, struct err *err);
int store__decode_task_run(const struct store__row *r, const char *exec_id, struct task_run_row *t,
                           struct err *err);
int store__decode_attempt(const struct store__row *r, const char *exec_id, struct attempt_row *a,
                          struct err *err);
int store__decode_log_chunk(const struct store__row *r, const char *exec_id, struct log_chunk *c,
                            struct err *err);
int store__decode_key(const struct store__row *r, struct key_row *k, struct err *err);
int store__decode_session(const struct store__row *r, struct session_row *s, struct err *err);
int store__decode_schedule(const struct store__row *r, struct schedule_row *row, struct err *err);
int store__decode_fire(const struct store__row *r, struct fire_row *f, struct err *err);
int store__decode_group_count(const struct store__row *r, struct group_count *c, struct err *err);
void store__decode_workflow(const struct store__row *r, struct workflow_row *w);
void store__decode_node(const struct store__row *r, struct node_row *n);
/* The columns of STORE__NOTIFY_COLS, in order. */
int store__decode_notify(const struct store__row *r, struct notify_row *n, struct err *err);
#define STORE__NOTIFY_COLS                                                                         \
    "id, execution_id, workflow, event, request, body, status, attempts, next_at, claimed_by,"   \
    " lease_until, last_error, response_code, created_at, updated_at"

/* The stored name of a log stream ("stdout", "stderr"). */
const char *store__stream_name(enum log_stream stream);

/*
 * The logic above the backends (shared.c), built on the backend's
 * primitives: migrate a writer's database to this binary's schema in one
 * transaction, or check a reader's; list executions with a status mask.
 */
int store__migrate(struct store *st, struct err *err);
/*
 * The end of a backend's open: with `rc` 0, migrate a writer's database or
 * check a reader's, then publish `st` in *out; on any failure close `st`
 * (the backend's close()) and return the code.
 */
int store__open_finish(struct store *st, unsigned flags, int rc, struct store **out,
                       struct err *err);
int store__check_readonly_version(struct store *st, struct err *err);
int store__executions_list(struct store *st, const struct exec_filter *filter,
                           struct exec_list *out, struct err *err);
/* Workflows: a new version unless the newest holds the same text (and is not
 * deleted); a version by number, or the newest unless it is deleted. */
int store__workflow_put(struct store *st, const char *name, const char *definition, int64_t now,
                        int *out_version, struct err *err);
int store__workflow_get(struct store *st, const char *name, int version, char **out_definition,
                        int *out_version, int64_t *out_created_at, struct err *err);
/* The queued and running counts, in one read snapshot. */
int store__counts_get(struct store *st, struct store_counts *out, struct err *err);
/* One execution with its task runs and attempts: all (q NULL), or a page. */
int store__execution_detail(struct store *st, const char *id, const struct task_page *q,
                            struct exec_detail **out, struct err *err);
/*
 * Transactions of the calls that need one when the caller has none: a read
 * snapshot for reads of several statements, a write transaction for writes
 * that must be atomic on their own. *began says whether the call opened it;
 * write_end commits it if `rc` is 0 (rolls back otherwise) and returns the
 * result.
 */
int store__read_begin(struct store *st, int *began, struct err *err);
void store__read_end(struct store *st, int began);
int store__write_begin(struct store *st, int *began, struct err *err);
int store__write_end(struct store *st, int began, int rc, struct err *err);
/* The statuses a list queries one by one; 0 for "any" (none, or all of them). */
unsigned store__list_status_mask(const struct exec_filter *filter);

extern const struct store_backend store__sqlite_backend;
extern const struct store_backend store__postgres_backend;

/*
 * The schema, as an ordered list of migration steps: step i (0-based) takes
 * the database from version i to version i + 1, so the binary's schema
 * version is store__migration_count. The SQL is shared by every backend and
 * kept portable (see docs/internals/store.md); each step is a script of one
 * or more statements separated by ';'.
 */
extern const char *const store__migrations[];
extern const int store__migration_count;

/*
 * What a step needs beyond the shared SQL, in each dialect (triggers): run
 * by store__migrate just before the shared script of step `version`, in the
 * same transaction. Most steps have none.
 */
struct store__migration_extra {
    int version;
    const char *sqlite;
    const char *postgres;
};
extern const struct store__migration_extra store__migration_extras[];
extern const int store__migration_extra_count;

/* The key of the transaction-level advisory lock the PostgreSQL triggers of
 * executions_hourly take ("orch" + 2; PG_MIGRATE_LOCK is "orch" + 1). */
#define STORE__HOURLY_LOCK "478660487170"

/*
 * Whether a list with both since and until reads the executions_created_at
 * range (1) or walks the ids from the newest (0): the first reads every
 * execution created in the range, the second every execution newer than
 * the range, until the page is full. Both are estimated from
 * executions_hourly (an hour cut by a bound counts in proportion), and the
 * smaller wins. 0 without both bounds, or with a parent (its own index).
 */
int store__list_by_range(struct store *st, const struct exec_filter *filter, int *out,
                         struct err *err);

/* Release the members of rows built by a backend (not the rows themselves). */
void store__task_run_row_release(struct task_run_row *row);
void store__attempt_row_release(struct attempt_row *row);
void store__log_chunk_release(struct log_chunk *chunk);

/* The stored name of a fire status ("fired", "skipped"), and back (0 or ERR_INVALID). */
/* The conflict clause of a fire's insert (store_fire_insert), both backends:
 * a queued due time becomes fired or skipped; a skipped one is queued again.
 * Otherwise nothing changes (no row counted). */
#define FIRE_REPLACE                                                                               \
    " status = excluded.status, execution_id = excluded.execution_id,"                             \
    " reason = excluded.reason, created_at = excluded.created_at"                                  \
    " WHERE (schedule_fires.status = 'queued' AND excluded.status <> 'queued')"                    \
    " OR (schedule_fires.status = 'skipped' AND excluded.status = 'queued')"

const char *store__fire_status_name(enum fire_status s);
int store__fire_status_parse(const char *s, enum fire_status *out);

/*
 * For tests and notes: the EXPLAIN QUERY PLAN of the statement(s) that
 * store_executions_list() runs for `filter` (on the store as it is: the
 * choice of store__list_by_range included), one "detail" per line, as a heap
 * string the caller frees. SQLite backend only (ERR_INVALID otherwise).
 */
int store__sqlite_explain_list(struct store *st, const struct exec_filter *filter, char **out_plan,
                               struct err *err);
/*
 * The same for the DELETE that store_executions_purge() runs: of one
 * workflow (`by_workflow`), or of all but `nexcept` workflows.
 */
int store__sqlite_explain_purge(struct store *st, int by_workflow, size_t nexcept, char **out_plan,
                                struct err *err);
/* The same for the queries of store_counts_get(), one after the other. */
int store__sqlite_explain_counts(struct store *st, char **out_plan, struct err *err);

#endif
