/*
 * store_backend.h - the table a store backend fills in (internal to src/store).
 *
 * store.c validates arguments, picks the backend from the location and then
 * dispatches every public store_* call through st->be. A backend allocates
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
};

struct store_backend {
    const char *name;
    /* `target` is what follows the backend selection: a file path for SQLite. */
    int (*open)(const char *target, unsigned flags, struct store **out, struct err *err);
    void (*close)(struct store *st);
    int (*schema_version)(struct store *st, int *out, struct err *err);

    int (*begin)(struct store *st, struct err *err);
    int (*commit)(struct store *st, struct err *err);
    void (*rollback)(struct store *st);

    int (*workflow_put)(struct store *st, const char *name, const char *definition, int64_t now,
                        int *out_version, struct err *err);
    int (*workflow_get)(struct store *st, const char *name, int version, char **out_definition,
                        int *out_version, int64_t *out_created_at, struct err *err);

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

    int (*execution_get)(struct store *st, const char *id, struct exec_detail **out,
                         struct err *err);
    int (*execution_page)(struct store *st, const char *id, const struct task_page *q,
                          struct exec_detail **out, struct err *err);
    int (*executions_list)(struct store *st, const struct exec_filter *filter,
                           struct exec_list *out, struct err *err);
    int (*executions_unfinished)(struct store *st, char ***out_ids, size_t *out_n, struct err *err);
    int (*logs_get)(struct store *st, const char *exec_id, int task_idx, int attempt, int after_seq,
                    struct log_list *out, struct err *err);

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
    /* `except` is NULL when nexcept is 0, and never given with `workflow`. */
    int (*executions_purge)(struct store *st, const char *workflow, const char *const *except,
                            size_t nexcept, int64_t before, int batch, int *out_deleted,
                            struct err *err);
    int (*counts_get)(struct store *st, struct store_counts *out, struct err *err);

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
    int (*node_register)(struct store *st, const struct node_row *row, int64_t lease_ms,
                         struct err *err);
    int (*node_heartbeat)(struct store *st, const char *id, int64_t lease_ms,
                          struct node_beat *out, struct err *err);
    int (*node_stop)(struct store *st, const char *id, struct err *err);
    int (*nodes_list)(struct store *st, struct node_row **out, size_t *out_n, struct err *err);
    int (*executions_hourly)(struct store *st, int64_t since, const char *since_id,
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
};

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
 * store_executions_list() runs for `filter`, one "detail" per line, as a heap
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
