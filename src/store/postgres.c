/*
 * postgres.c - the PostgreSQL store backend (libpq).
 *
 * One PGconn per struct store, like one sqlite3 connection per store in
 * sqlite.c: the engine and every API thread open their own. Every statement
 * is fixed SQL text with $n placeholders run through PQexecParams; values are
 * sent as text, except log data and key hashes, which go as binary BYTEA
 * (paramFormats 1). Results come back as text; BYTEA columns are decoded
 * with PQunescapeBytea. The statements live in one table, pg_sql[], as
 * sqlite.c keeps its own; result rows are decoded by rows.c through the
 * readers of struct pq_row; migrations, the list merge and the reads of an
 * execution's detail are driven by shared.c.
 *
 * Transactions: store_begin is a plain BEGIN (read committed: the engine is
 * the only writer of its rows, and fencing is in the WHERE of the update).
 * Reads of several statements run in a REPEATABLE READ READ ONLY transaction
 * when the caller has none open, so they see one snapshot.
 *
 * On PostgreSQL a failing statement aborts the whole transaction, where
 * SQLite undoes only that statement. To keep "the transaction stays usable"
 * for the conflicts the callers expect, fires and idempotency keys are
 * inserted with ON CONFLICT DO NOTHING and a row count, and the inserts that
 * may hit a unique key otherwise (executions, API keys, schedule upserts) run
 * under a SAVEPOINT when a transaction is open. Other failures inside a
 * transaction leave it aborted: store_commit then fails (and rolls back).
 *
 * Errors: unique violation (23505) is ERR_CONFLICT, serialization failure
 * and deadlock (40001, 40P01) ERR_BUSY, string too long (22001) and
 * program limit (54000) ERR_TOO_BIG, everything else ERR_STORE with
 * PostgreSQL's primary message (or PQerrorMessage for a lost connection).
 */
#include "store_backend.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include "base/banned.h"

/* Key of the transaction-level advisory lock that serialises migrations ("orch" + 1). */
#define PG_MIGRATE_LOCK 0x6f72636801LL

/*
 * $1 id upper bound or NULL, $2/$3 created_at range, $4 limit, $5 workflow, $6 status.
 * LIST_TAIL leaves the plan to the planner, which walks the primary key from
 * the newest id unless its statistics say the range holds few rows (it
 * cannot know that the ids follow created_at, so a narrow range far from the
 * newest looks cheap to walk to it: 441 ms at 1M). LIST_RANGE_TAIL is the
 * plan store__list_by_range chose for such a range: the ORDER BY on an
 * expression (the same order) leaves no index that yields it, so the
 * planner reads the range through executions_created_at and keeps the
 * newest `limit`.
 */
#define LIST_TAIL                                                                                  \
    " AND ($1::text IS NULL OR id < $1::text) AND created_at >= $2 AND created_at < $3"            \
    " ORDER BY id DESC LIMIT $4"
#define LIST_RANGE_TAIL                                                                            \
    " AND ($1::text IS NULL OR id < $1::text) AND created_at >= $2 AND created_at < $3"            \
    " ORDER BY id || '' DESC LIMIT $4"
#define PURGE_HEAD                                                                                 \
    "DELETE FROM executions WHERE id IN (SELECT id FROM executions"                                \
    " WHERE finished_at < $1 AND status NOT IN ($3, $4)"
#define PURGE_TAIL       " ORDER BY finished_at LIMIT $2)"
#define PURGE_FIRST_NAME 5

#define PG_MAXP (PURGE_FIRST_NAME + STORE_PURGE_EXCEPT_MAX)

/* What a statement sent in a pipeline must have done. */
enum pq_want {
    WANT_OK = 0,        /* succeeded */
    WANT_PREPARED,      /* a statement prepared (its cache entry goes if not) */
    /* The next three fail on the server with a division by zero (22012), so
     * that the transaction is aborted before the COMMIT that follows them in
     * the pipeline: */
    WANT_ROW_CONFLICT,  /* changed no row: ERR_CONFLICT (a stale attempt) */
    WANT_ROW_NOT_FOUND, /* changed no row: ERR_NOT_FOUND */
    WANT_FENCE,         /* an execution is not ours: ERR_FENCED */
};

/* A pipelined UPDATE that must change a row: 1 / (rows changed). */
#define MUST_CHANGE(update) "WITH u AS (" update " RETURNING 1) SELECT 1 / (SELECT count(*) FROM u)"

/*
 * Every statement of this backend, as sqlite.c keeps its own: fixed text with
 * $n placeholders, values always bound. The pipelined writes are prepared
 * once per connection (pq_prepare, keyed by the text's address in this
 * table); the rest go through PQexecParams. Only LISTEN, whose channel is an
 * identifier (checked by channel_ok), is built at the call.
 */
enum pg_stmt {
    PS_SAVEPOINT,
    PS_SAVEPOINT_RELEASE,
    PS_SAVEPOINT_ROLLBACK,
    PS_BEGIN,
    PS_ROLLBACK,
    PS_COMMIT,
    PS_BEGIN_READ,
    PS_VERSION,
    PS_MIGRATE_LOCK,
    PS_VERSION_INSERT,
    PS_HAS_VERSION_TABLE,
    PS_SET_QUIET,
    PS_SET_READONLY,
    PS_WF_NEWEST,
    PS_WF_GET,
    PS_WF_INSERT,
    PS_EXEC_INSERT,
    PS_EXEC_UPDATE_PIPED,
    PS_EXEC_UPDATE,
    PS_TASK_INSERT,
    PS_TASK_UPDATE_PIPED,
    PS_TASK_UPDATE,
    PS_TASK_ATTEMPT,
    PS_ATTEMPT_INSERT,
    PS_ATTEMPT_UPDATE_PIPED,
    PS_ATTEMPT_UPDATE,
    PS_LOG_APPEND,
    PS_LOG_TRIM,
    PS_LOGS_FOLLOW,
    PS_LOGS_TASK,
    PS_LOGS_ALL,
    PS_EXEC_GET,
    PS_TASKS_OF_EXEC,
    PS_ATTEMPTS_OF_EXEC,
    PS_TASKS_PAGE,
    PS_ATTEMPTS_RANGE,
    PS_GROUP_COUNTS,
    PS_ATTEMPTS_OF_PAGE,
    PS_LIST_PARENT,
    PS_LIST_WF_STATUS,
    PS_LIST_WF,
    PS_LIST_STATUS,
    PS_LIST_ANY,
    PS_LIST_WF_STATUS_RANGE,
    PS_LIST_WF_RANGE,
    PS_LIST_STATUS_RANGE,
    PS_LIST_ANY_RANGE,
    PS_LIST_NEWEST,
    PS_LIST_NEWEST_BEFORE,
    PS_HOURLY,
    PS_HOURLY_FOLD,
    PS_UNFINISHED,
    PS_PING,
    PS_WF_LIST,
    PS_WF_DELETE,
    PS_IDEM_GET,
    PS_IDEM_PUT,
    PS_KEY_INSERT,
    PS_KEY_BY_PREFIX,
    PS_KEYS_LIST,
    PS_KEY_REVOKE_ID,
    PS_KEY_REVOKE_NAME,
    PS_KEY_TOUCH,
    PS_SESSION_INSERT,
    PS_SESSION_GET,
    PS_SESSION_TOUCH,
    PS_SESSION_DELETE,
    PS_SESSIONS_PURGE,
    PS_PURGE_WF,
    PS_PURGE_ALL,
    PS_PURGE_EXCEPT_1, /* room for 1 name to keep, then 2, 4, ...: built by purge_except_sql() */
    PS_PURGE_EXCEPT_2,
    PS_PURGE_EXCEPT_4,
    PS_PURGE_EXCEPT_8,
    PS_PURGE_EXCEPT_16,
    PS_PURGE_EXCEPT_32,
    PS_PURGE_EXCEPT_64,
    PS_COUNTS_QUEUED,
    PS_COUNTS_RUNNING,
    PS_SCHED_LIST,
    PS_SCHED_GET,
    PS_SCHED_UPSERT,
    PS_SCHED_OF_WF,
    PS_FIRES_DELETE,
    PS_SCHED_DELETE,
    PS_SCHED_STATE,
    PS_SCHED_PAUSE,
    PS_FIRE_INSERT,
    PS_FIRE_EXISTS,
    PS_FIRE_GET,
    PS_FIRES_QUEUED,
    PS_FIRES_LIST,
    PS_NODE_REGISTER,
    PS_OFFERS_FORGET,
    PS_NODES_FORGET,
    PS_NODE_STOP,
    PS_NODES_LIST,
    PS_EXEC_CLAIM,
    PS_EXEC_CLAIM_ONE,
    PS_EXEC_OWNER,
    PS_FENCE_CHECK,
    PS_FENCE_LOST,
    PS_CANCEL_REQUEST,
    PS_CANCEL_REQUESTS,
    PS_NOTIFY,
    PS_LEASE_ACQUIRE,
    PS_LEASE_RELEASE,
    PS_NODE_HEARTBEAT,
    PS_OFFER_PUT,
    PS_OFFER_DELETE,
    PS_OFFER_CANCEL,
    PS_OFFERS_CLAIM,
    PS_OFFER_REPORT_PID,
    PS_OFFER_REPORT,
    PS_OFFERS_OWNED,
    PS_OFFERS_CANCELLED,
    PS_OFFERS_ADOPT,
    PS_COUNT
};

_Static_assert(1 << (PS_PURGE_EXCEPT_64 - PS_PURGE_EXCEPT_1) == STORE_PURGE_EXCEPT_MAX,
               "one purge variant per power of two up to STORE_PURGE_EXCEPT_MAX");

#define EXEC_UPDATE_SQL                                                                            \
    "UPDATE executions SET status = $2, started_at = $3, finished_at = $4,"                        \
    " error = $5, schedule_id = $6, scheduled_for = $7, retried_at = $8,"                          \
    " cancel_requested_at = CASE WHEN $2 IN ('queued', 'running')"                                 \
    " THEN cancel_requested_at END WHERE id = $1"
#define TASK_UPDATE_SQL                                                                            \
    "UPDATE task_runs SET status = $3, attempt = $4, available_at = $5,"                           \
    " started_at = $6, finished_at = $7, error = $8, output = $10, child_id = $11,"                \
    " queued_at = $12 WHERE execution_id = $1 AND idx = $2 AND attempt = $9"
#define ATTEMPT_UPDATE_SQL                                                                         \
    "UPDATE attempts SET status = $4, pid = $5, pgid = $6,"                                        \
    " proc_start = $7, finished_at = $8, exit_code = $9, signal = $10,"                            \
    " error = $11, node = coalesce($12, node)"                                                     \
    " WHERE execution_id = $1 AND task_idx = $2 AND number = $3"
/* The database's clock in ms: one clock for every node's lease. */
#define PG_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
/* An execution whose owner has no live lease: $LEASE is the lease parameter. */
#define PG_OWNER_GONE(lease)                                                                       \
    "(n.id IS NULL OR n.stopped_at IS NOT NULL OR n.heartbeat_at < " PG_NOW_MS " - " lease ")"
#define PG_UNFINISHED "e.status IN ('queued', 'running')"
#define OFFER_COLS                                                                                 \
    "o.execution_id, o.task_idx, o.attempt, o.owner_node, o.runner_node, o.spec, o.offered_at,"    \
    " o.runner, o.pid, o.proc_start, o.finished_at, o.status, o.exit_code, o.signal, o.error,"     \
    " o.output, o.cancel_requested"

static const char *const pg_sql[PS_COUNT] = {
    [PS_SAVEPOINT] = "SAVEPOINT orch_stmt",
    [PS_SAVEPOINT_RELEASE] = "RELEASE SAVEPOINT orch_stmt",
    [PS_SAVEPOINT_ROLLBACK] = "ROLLBACK TO SAVEPOINT orch_stmt",
    [PS_BEGIN] = "BEGIN",
    [PS_ROLLBACK] = "ROLLBACK",
    [PS_COMMIT] = "COMMIT",
    [PS_BEGIN_READ] = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    [PS_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_version",
    [PS_MIGRATE_LOCK] = "SELECT pg_advisory_xact_lock($1::bigint)",
    [PS_VERSION_INSERT] = "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
    [PS_HAS_VERSION_TABLE] = "SELECT to_regclass('schema_version') IS NOT NULL",
    [PS_SET_QUIET] = "SET client_min_messages = warning",
    [PS_SET_READONLY] = "SET default_transaction_read_only = on",
    [PS_WF_NEWEST] = "SELECT version, definition, deleted_at, created_at FROM workflows"
                     " WHERE name = $1 ORDER BY version DESC LIMIT 1",
    [PS_WF_GET] = "SELECT version, definition, NULL, created_at FROM workflows"
                  " WHERE name = $1 AND version = $2",
    [PS_WF_INSERT] = "INSERT INTO workflows (name, version, definition, created_at)"
                     " VALUES ($1, $2, $3, $4)",
    [PS_EXEC_INSERT] = "INSERT INTO executions (" EXEC_COLS ")"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
                       " $15, $16)",
    [PS_EXEC_UPDATE_PIPED] = MUST_CHANGE(EXEC_UPDATE_SQL),
    [PS_EXEC_UPDATE] = EXEC_UPDATE_SQL,
    [PS_TASK_INSERT] = "INSERT INTO task_runs (execution_id, idx, name, status, attempt,"
                       " available_at, started_at, finished_at, error, output, group_idx, "
                       "item_index, item, child_id, queued_at)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
                       " $15)",
    [PS_TASK_UPDATE_PIPED] = MUST_CHANGE(TASK_UPDATE_SQL),
    [PS_TASK_UPDATE] = TASK_UPDATE_SQL,
    [PS_TASK_ATTEMPT] = "SELECT attempt FROM task_runs WHERE execution_id = $1 AND idx = $2",
    [PS_ATTEMPT_INSERT] = "INSERT INTO attempts (execution_id, task_idx, number, status, node,"
                          " pid, pgid, proc_start, started_at, finished_at, exit_code, signal,"
                          " error, queued_at)"
                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    [PS_ATTEMPT_UPDATE_PIPED] = MUST_CHANGE(ATTEMPT_UPDATE_SQL),
    [PS_ATTEMPT_UPDATE] = ATTEMPT_UPDATE_SQL,
    [PS_LOG_APPEND] = "INSERT INTO logs (execution_id, task_idx, attempt, seq, stream, ts, data)"
                      " VALUES ($1, $2, $3, $4, $5, $6, $7::bytea)",
    [PS_LOG_TRIM] = "DELETE FROM logs WHERE execution_id = $1 AND task_idx = $2"
                    " AND attempt = $3 AND seq < $4 AND ($5::text IS NULL OR stream = $5::text)",
    [PS_LOGS_FOLLOW] = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
                       " WHERE execution_id = $1 AND task_idx = $2 AND attempt = $3"
                       " AND seq > $4 ORDER BY seq",
    [PS_LOGS_TASK] = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
                     " WHERE execution_id = $1 AND task_idx = $2 ORDER BY attempt, seq",
    [PS_LOGS_ALL] = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
                    " WHERE execution_id = $1 ORDER BY task_idx, attempt, seq",
    [PS_EXEC_GET] = "SELECT " EXEC_COLS " FROM executions WHERE id = $1",
    [PS_TASKS_OF_EXEC] = "SELECT idx, name, status, attempt, available_at, started_at,"
                         " finished_at, error, output, group_idx, item_index, item, child_id,"
                         " queued_at FROM task_runs WHERE execution_id = $1"
                         " ORDER BY idx",
    [PS_ATTEMPTS_OF_EXEC] = "SELECT task_idx, number, status, node, pid, pgid, proc_start,"
                            " started_at, finished_at, exit_code, signal, error, queued_at"
                            " FROM attempts WHERE execution_id = $1 ORDER BY task_idx, number",
    [PS_TASKS_PAGE] = "SELECT idx, name, status, attempt, available_at, started_at,"
                      " finished_at, error, output, group_idx, item_index, item, child_id,"
                      " queued_at FROM task_runs WHERE execution_id = $1 AND idx > $2::int"
                      " AND ($3::int < 0 OR group_idx = $3::int)"
                      " AND ($4::int = 0 OR group_idx IS NULL)"
                      " AND ($5::text IS NULL OR status = $5) ORDER BY idx LIMIT $6::bigint",
    [PS_ATTEMPTS_RANGE] = "SELECT task_idx, number, status, node, pid, pgid, proc_start,"
                          " started_at, finished_at, exit_code, signal, error, queued_at"
                          " FROM attempts"
                          " WHERE execution_id = $1 AND task_idx BETWEEN $2::int AND $3::int"
                          " ORDER BY task_idx, number",
    [PS_GROUP_COUNTS] = "SELECT group_idx, status, count(*) FROM task_runs"
                        " WHERE execution_id = $1 AND group_idx IS NOT NULL"
                        " GROUP BY group_idx, status ORDER BY group_idx, status",
    /* The attempts of PS_TASKS_PAGE's task runs (the idx range between its
     * first and last), with the same parameters: sent with it. */
    [PS_ATTEMPTS_OF_PAGE] = "WITH page AS (SELECT idx FROM task_runs WHERE execution_id = $1"
                            " AND idx > $2::int AND ($3::int < 0 OR group_idx = $3::int)"
                            " AND ($4::int = 0 OR group_idx IS NULL)"
                            " AND ($5::text IS NULL OR status = $5) ORDER BY idx LIMIT $6::bigint)"
                            " SELECT task_idx, number, status, node, pid, pgid, proc_start,"
                            " started_at, finished_at, exit_code, signal, error, queued_at"
                            " FROM attempts WHERE execution_id = $1"
                            " AND task_idx BETWEEN (SELECT min(idx) FROM page)"
                            " AND (SELECT max(idx) FROM page) ORDER BY task_idx, number",
    [PS_LIST_PARENT] =
        "SELECT " EXEC_COLS " FROM executions WHERE parent_id = $7"
        " AND ($5::text IS NULL OR workflow = $5) AND ($6::text IS NULL OR status = $6)" LIST_TAIL,
    [PS_LIST_WF_STATUS] = "SELECT " EXEC_COLS " FROM executions WHERE workflow = $5 AND status = $6"
                          " AND $5::text IS NOT NULL AND $6::text IS NOT NULL" LIST_TAIL,
    [PS_LIST_WF] = "SELECT " EXEC_COLS " FROM executions WHERE workflow = $5"
                   " AND $6::text IS NULL" LIST_TAIL,
    [PS_LIST_STATUS] = "SELECT " EXEC_COLS " FROM executions WHERE status = $6"
                       " AND $5::text IS NULL" LIST_TAIL,
    [PS_LIST_ANY] = "SELECT " EXEC_COLS " FROM executions WHERE $5::text IS NULL"
                    " AND $6::text IS NULL" LIST_TAIL,
    [PS_LIST_WF_STATUS_RANGE] = "SELECT " EXEC_COLS " FROM executions WHERE workflow = $5"
                                " AND status = $6 AND $5::text IS NOT NULL"
                                " AND $6::text IS NOT NULL" LIST_RANGE_TAIL,
    [PS_LIST_WF_RANGE] = "SELECT " EXEC_COLS " FROM executions WHERE workflow = $5"
                         " AND $6::text IS NULL" LIST_RANGE_TAIL,
    [PS_LIST_STATUS_RANGE] = "SELECT " EXEC_COLS " FROM executions WHERE status = $6"
                             " AND $5::text IS NULL" LIST_RANGE_TAIL,
    [PS_LIST_ANY_RANGE] = "SELECT " EXEC_COLS " FROM executions WHERE $5::text IS NULL"
                          " AND $6::text IS NULL" LIST_RANGE_TAIL,
    /* A range of the primary key (hour, status). */
    /* The list without filters, from the newest or after a cursor: the plan
     * (the primary key, backwards) does not depend on the values, so these
     * are prepared like the rest. */
    [PS_LIST_NEWEST] = "SELECT " EXEC_COLS " FROM executions ORDER BY id DESC LIMIT $1",
    [PS_LIST_NEWEST_BEFORE] = "SELECT " EXEC_COLS " FROM executions WHERE id < $1"
                              " ORDER BY id DESC LIMIT $2",
    /* The counts and the changes not yet added to them (schema version 16). */
    [PS_HOURLY] = "SELECT hour, status, sum(n) FROM ("
                  "SELECT hour, status, n FROM executions_hourly WHERE hour >= $1 AND hour <= $2"
                  " UNION ALL SELECT hour, status, n FROM executions_hourly_delta"
                  " WHERE hour >= $1 AND hour <= $2) c"
                  " GROUP BY hour, status HAVING sum(n) <> 0 ORDER BY hour, status LIMIT $3",
    /* Move the changes into the counts: one update per counter row. */
    [PS_HOURLY_FOLD] =
        "WITH l AS (SELECT pg_try_advisory_xact_lock(" STORE__HOURLY_LOCK ") AS got),"
        " d AS (DELETE FROM executions_hourly_delta WHERE (SELECT got FROM l)"
        " RETURNING hour, status, n)"
        " INSERT INTO executions_hourly (hour, status, n)"
        " SELECT hour, status, sum(n) FROM d GROUP BY hour, status"
        " ORDER BY hour, status"
        " ON CONFLICT (hour, status) DO UPDATE SET n = executions_hourly.n + EXCLUDED.n",
    [PS_UNFINISHED] = "SELECT id FROM executions WHERE status IN ($1, $2) ORDER BY id",
    [PS_PING] = "SELECT count(*) FROM schema_version",
    [PS_WF_LIST] = "SELECT w.name, w.version, w.definition, w.created_at FROM workflows w"
                   " WHERE w.deleted_at IS NULL AND w.version ="
                   " (SELECT max(v.version) FROM workflows v WHERE v.name = w.name)"
                   " ORDER BY w.name",
    [PS_WF_DELETE] = "UPDATE workflows SET deleted_at = $2 WHERE name = $1"
                     " AND deleted_at IS NULL",
    [PS_IDEM_GET] = "SELECT execution_id FROM idempotency_keys WHERE workflow = $1 AND key = $2",
    [PS_IDEM_PUT] = "INSERT INTO idempotency_keys (workflow, key, execution_id, created_at)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (workflow, key) DO NOTHING",
    [PS_KEY_INSERT] = "INSERT INTO api_keys (" KEY_COLS ")"
                      " VALUES ($1, $2, $3, $4::bytea, $5, $6, $7, $8, $9)",
    [PS_KEY_BY_PREFIX] = "SELECT " KEY_COLS " FROM api_keys WHERE prefix = $1",
    [PS_KEYS_LIST] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created_at DESC, id DESC",
    [PS_KEY_REVOKE_ID] = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
    [PS_KEY_REVOKE_NAME] = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2)"
                           " WHERE name = $1",
    [PS_KEY_TOUCH] = "UPDATE api_keys SET last_used_at ="
                     " CASE WHEN last_used_at > $2 THEN last_used_at ELSE $2 END"
                     " WHERE id = $1",
    [PS_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLS ")"
                          " VALUES ($1::bytea, $2::bytea, $3, $4, $5, $6, $7)",
    [PS_SESSION_GET] = "SELECT " SESSION_COLS " FROM sessions WHERE token_hash = $1::bytea",
    [PS_SESSION_TOUCH] = "UPDATE sessions SET last_seen_at ="
                         " CASE WHEN last_seen_at > $2 THEN last_seen_at ELSE $2 END"
                         " WHERE token_hash = $1::bytea",
    [PS_SESSION_DELETE] = "DELETE FROM sessions WHERE token_hash = $1::bytea",
    [PS_SESSIONS_PURGE] = "DELETE FROM sessions WHERE expires_at <= $1"
                          " OR key_id IN (SELECT id FROM api_keys WHERE revoked_at IS NOT NULL)",
    [PS_PURGE_WF] = PURGE_HEAD " AND workflow = $5" PURGE_TAIL,
    [PS_PURGE_ALL] = PURGE_HEAD PURGE_TAIL,
    [PS_COUNTS_QUEUED] =
        "SELECT count(*), min(coalesce(t.available_at, e.started_at, e.created_at))"
        " FROM task_runs t LEFT JOIN executions e ON e.id = t.execution_id"
        " WHERE t.status = 'queued'",
    [PS_COUNTS_RUNNING] = "SELECT count(*), min(started_at) FROM executions WHERE status = $1",
    [PS_SCHED_LIST] = "SELECT " SCHED_COLS " FROM schedules ORDER BY workflow, name",
    [PS_SCHED_GET] = "SELECT " SCHED_COLS " FROM schedules WHERE id = $1",
    [PS_SCHED_UPSERT] = "INSERT INTO schedules (" SCHED_COLS ")"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                        " ON CONFLICT (workflow, name) DO UPDATE SET"
                        " from_api = excluded.from_api, spec = excluded.spec,"
                        " spec_hash = excluded.spec_hash, paused = excluded.paused,"
                        " next_fire_at = excluded.next_fire_at,"
                        " last_fire_at = excluded.last_fire_at,"
                        " updated_at = excluded.updated_at",
    [PS_SCHED_OF_WF] = "SELECT id, name FROM schedules WHERE workflow = $1 AND from_api = 0",
    [PS_FIRES_DELETE] = "DELETE FROM schedule_fires WHERE schedule_id = $1",
    [PS_SCHED_DELETE] = "DELETE FROM schedules WHERE id = $1",
    [PS_SCHED_STATE] = "UPDATE schedules SET spec_hash = $2, next_fire_at = $3,"
                       " last_fire_at = $4, updated_at = $5 WHERE id = $1",
    [PS_SCHED_PAUSE] = "UPDATE schedules SET paused = $2, updated_at = $3 WHERE id = $1",
    [PS_FIRE_INSERT] = "INSERT INTO schedule_fires (" FIRE_COLS ") VALUES ($1, $2, $3, $4, $5, $6)"
                       " ON CONFLICT (schedule_id, scheduled_for) DO UPDATE SET" FIRE_REPLACE,
    [PS_FIRE_EXISTS] = "SELECT count(*) FROM schedule_fires WHERE schedule_id = $1"
                       " AND scheduled_for = $2",
    [PS_FIRE_GET] = "SELECT " FIRE_COLS " FROM schedule_fires WHERE schedule_id = $1"
                    " AND scheduled_for = $2",
    [PS_FIRES_QUEUED] = "SELECT scheduled_for FROM schedule_fires WHERE schedule_id = $1"
                        " AND status = 'queued' ORDER BY scheduled_for LIMIT $2",
    [PS_FIRES_LIST] = "SELECT " FIRE_COLS " FROM schedule_fires WHERE schedule_id = $1"
                      " ORDER BY scheduled_for DESC LIMIT $2",
    [PS_NODE_REGISTER] =
        "INSERT INTO nodes (id, host, pid, role, version, started_at, heartbeat_at, slots,"
        " clock_offset_ms)"
        " VALUES ($1, $2, $3, $4, $5, " PG_NOW_MS ", " PG_NOW_MS ", $7, $8::bigint - " PG_NOW_MS ")"
        " ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,"
        " role = EXCLUDED.role, version = EXCLUDED.version, slots = EXCLUDED.slots,"
        " started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at,"
        " clock_offset_ms = EXCLUDED.clock_offset_ms, stopped_at = NULL"
        " WHERE $6 <= 0 OR nodes.stopped_at IS NOT NULL"
        " OR nodes.heartbeat_at < " PG_NOW_MS " - $6",
    [PS_OFFERS_FORGET] =
        "DELETE FROM task_offers o WHERE o.cancel_requested = 1"
        " AND o.finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM nodes n"
        " WHERE n.id = o.runner_node AND n.heartbeat_at >= " PG_NOW_MS " - 86400000)",
    [PS_NODES_FORGET] = "DELETE FROM nodes n WHERE n.heartbeat_at < " PG_NOW_MS " - 86400000"
                        " AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.owner_node = n.id"
                        " AND " PG_UNFINISHED ")",
    [PS_NODE_STOP] = "UPDATE nodes SET stopped_at = " PG_NOW_MS " WHERE id = $1",
    [PS_NODES_LIST] = "SELECT n.id, n.host, n.pid, n.role, n.version, n.started_at, n.heartbeat_at,"
                      " n.stopped_at, (SELECT count(*) FROM executions e WHERE e.owner_node = n.id"
                      " AND " PG_UNFINISHED "), " PG_NOW_MS ", n.slots, n.clock_offset_ms"
                      " FROM nodes n ORDER BY n.heartbeat_at DESC, n.id LIMIT 1000",
    [PS_EXEC_CLAIM] = "UPDATE executions SET owner_node = $1 WHERE id IN ("
                      " SELECT e.id FROM executions e LEFT JOIN nodes n ON n.id = e.owner_node"
                      " WHERE " PG_UNFINISHED " AND (($3::boolean AND e.owner_node IS NULL)"
                      " OR ($4::boolean AND e.owner_node <> $1 AND " PG_OWNER_GONE(
                          "$5") ")"
                                " OR ($6::boolean AND e.owner_node = $1))"
                                " ORDER BY e.created_at, e.id LIMIT $2 FOR UPDATE OF e SKIP LOCKED)"
                                " RETURNING id",
    [PS_EXEC_CLAIM_ONE] = "UPDATE executions e SET owner_node = $2 WHERE e.id = $1"
                          " AND (e.owner_node IS NULL OR e.owner_node = $2 OR NOT " PG_UNFINISHED
                          " OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = e.owner_node"
                          " AND n.stopped_at IS NULL AND n.heartbeat_at >= " PG_NOW_MS " - $3))",
    [PS_EXEC_OWNER] = "SELECT owner_node FROM executions WHERE id = $1",
    [PS_FENCE_CHECK] = "SELECT 1 / (CASE WHEN owner_node IS DISTINCT FROM $2 THEN 0 ELSE 1 END)"
                       " FROM executions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
    [PS_FENCE_LOST] = "SELECT id FROM (SELECT id, owner_node FROM executions"
                      " WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE) x"
                      " WHERE owner_node IS DISTINCT FROM $2",
    [PS_CANCEL_REQUEST] = "UPDATE executions SET cancel_requested_at = $2 WHERE id = $1"
                          " AND status IN ('queued', 'running')",
    [PS_CANCEL_REQUESTS] =
        "SELECT e.id FROM executions e WHERE e.owner_node = $1 AND " PG_UNFINISHED
        " AND e.cancel_requested_at IS NOT NULL",
    [PS_NOTIFY] = "SELECT pg_notify($1, $2)",
    [PS_LEASE_ACQUIRE] =
        "INSERT INTO leases (name, node, expires_at) VALUES ($1, $2, " PG_NOW_MS " + $3)"
        " ON CONFLICT (name) DO UPDATE SET node = EXCLUDED.node,"
        " expires_at = EXCLUDED.expires_at"
        " WHERE leases.node = EXCLUDED.node OR leases.expires_at < " PG_NOW_MS " RETURNING node",
    [PS_LEASE_RELEASE] = "UPDATE leases SET expires_at = 0 WHERE name = $1 AND node = $2",
    [PS_NODE_HEARTBEAT] =
        "UPDATE nodes SET heartbeat_at = " PG_NOW_MS ", clock_offset_ms = $3::bigint - " PG_NOW_MS
        " WHERE id = $1"
        " RETURNING (SELECT count(*) FROM executions e"
        " LEFT JOIN nodes n ON n.id = e.owner_node"
        " WHERE " PG_UNFINISHED " AND (e.owner_node IS NULL OR " PG_OWNER_GONE(
            "$2") ")),"
                  " (SELECT count(*) FROM task_offers WHERE runner_node IS NULL),"
                  " (SELECT coalesce(sum(slots), 0) FROM nodes WHERE id <> $1"
                  " AND stopped_at IS NULL AND heartbeat_at >= " PG_NOW_MS " - $2)",
    [PS_OFFER_PUT] = "INSERT INTO task_offers (execution_id, task_idx, attempt, owner_node, spec,"
                     " offered_at) VALUES ($1, $2, $3, $4, $5, $6)",
    [PS_OFFER_DELETE] = "DELETE FROM task_offers WHERE execution_id = $1 AND task_idx = $2"
                        " AND attempt = $3",
    [PS_OFFER_CANCEL] = "UPDATE task_offers SET cancel_requested = 1 WHERE execution_id = $1"
                        " AND task_idx = $2 AND attempt = $3",
    [PS_OFFERS_CLAIM] = "UPDATE task_offers o SET runner_node = $1, claimed_at = " PG_NOW_MS
                        " WHERE (o.execution_id, o.task_idx, o.attempt) IN ("
                        " SELECT execution_id, task_idx, attempt FROM task_offers"
                        " WHERE runner_node IS NULL ORDER BY offered_at"
                        " LIMIT $2 FOR UPDATE SKIP LOCKED)"
                        " RETURNING " OFFER_COLS,
    [PS_OFFER_REPORT_PID] = "UPDATE task_offers SET runner = $5, pid = $6, proc_start = $7"
                            " WHERE execution_id = $1 AND task_idx = $2 AND attempt = $3"
                            " AND runner_node = $4 AND finished_at IS NULL",
    [PS_OFFER_REPORT] =
        "UPDATE task_offers SET runner = $5, pid = $6, proc_start = $7,"
        " finished_at = $8, status = $9, exit_code = $10, signal = $11, error = $12,"
        " output = $13 WHERE execution_id = $1 AND task_idx = $2 AND attempt = $3"
        " AND runner_node = $4",
    [PS_OFFERS_OWNED] = "SELECT " OFFER_COLS ", (o.finished_at IS NULL AND NOT EXISTS ("
                        "SELECT 1 FROM nodes n WHERE n.id = o.runner_node"
                        " AND n.stopped_at IS NULL AND n.heartbeat_at >= " PG_NOW_MS
                        " - $2)) FROM task_offers o WHERE o.owner_node = $1"
                        " AND o.runner_node IS NOT NULL AND (o.finished_at IS NOT NULL"
                        " OR (o.cancel_requested = 0 AND NOT EXISTS (SELECT 1 FROM nodes n"
                        " WHERE n.id = o.runner_node AND n.stopped_at IS NULL"
                        " AND n.heartbeat_at >= " PG_NOW_MS " - $2)))",
    [PS_OFFERS_CANCELLED] = "SELECT " OFFER_COLS " FROM task_offers o WHERE o.runner_node = $1"
                            " AND o.cancel_requested = 1 AND o.finished_at IS NULL",
    [PS_OFFERS_ADOPT] = "UPDATE task_offers o SET owner_node = $2 WHERE o.execution_id = $1"
                        " RETURNING " OFFER_COLS,
};

struct pq_pending {
    enum pq_want want;
    size_t prep;    /* WANT_PREPARED: its entry in the cache */
    char what[200]; /* for the message */
};

/* A statement prepared on this connection, known by its SQL text's address
 * (pipelined writes use fixed SQL text only). */
struct pq_prep {
    const char *sql;
    char name[16];
};
#define PG_PREP_MAX 128

struct pg_store {
    struct store base; /* first: a struct store * converts to this */
    PGconn *conn;
    unsigned flags;
    char *where; /* "database 'x' on host:port", for messages (never the password) */
    char **listens; /* channels to LISTEN again after a reconnect */
    size_t nlistens, listens_alloc;
    /* Pipelining (store_set_pipelining): the writes of a transaction are sent
     * without waiting, their results checked at the next statement that
     * needs an answer, or at COMMIT: a turn of the engine is one round trip. */
    int pipelining;
    int in_wtx;                  /* a write transaction opened by pg_begin */
    int piped;                   /* in libpq's pipeline mode, results pending */
    struct pq_pending *pend;     /* one per statement sent, in order */
    size_t npend, pend_alloc;
    int pipe_failed;             /* pipe_err holds why the last drain failed */
    int exec_written;            /* this write transaction sent an execution's row */
    struct err pipe_err;
    struct pq_prep prep[PG_PREP_MAX]; /* prepared on this connection */
    size_t nprep;
    /* PS_PURGE_EXCEPT_1 .. _64, built on first use (pq_purge_sql) */
    char *purge_sql[PS_PURGE_EXCEPT_64 - PS_PURGE_EXCEPT_1 + 1];
};

static struct pg_store *pg(struct store *st)
{
    return (struct pg_store *)st;
}

/* --- parameters --- */

struct params {
    int n;
    const char *v[PG_MAXP];
    int len[PG_MAXP];
    int fmt[PG_MAXP];
    char num[PG_MAXP][24];
};

static void p_add(struct params *p, const char *v, int len, int fmt)
{
    if (p->n >= PG_MAXP)
        BUG("too many parameters");
    p->v[p->n] = v;
    p->len[p->n] = len;
    p->fmt[p->n] = fmt;
    p->n++;
}

static void p_text(struct params *p, const char *s)
{
    p_add(p, s, 0, 0);
}

static void p_i64(struct params *p, int64_t v)
{
    if (p->n >= PG_MAXP)
        BUG("too many parameters");
    snprintf(p->num[p->n], sizeof(p->num[p->n]), "%lld", (long long)v);
    p_add(p, p->num[p->n], 0, 0);
}

/* NULL when `v` is the "not set" value `none`. */
static void p_opt(struct params *p, int64_t v, int64_t none)
{
    if (v == none)
        p_text(p, NULL);
    else
        p_i64(p, v);
}

/* Binary BYTEA; an empty value is an empty byte string, not NULL. */
static void p_bin(struct params *p, const void *data, size_t len)
{
    p_add(p, len ? (const char *)data : "", (int)len, 1);
}

/* --- running statements --- */

static void pg_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg; /* "relation already exists, skipping" and the like */
}

static int pq_drain(struct pg_store *s, struct err *err);

/*
 * The name `sql` (a statement of pg_sql[]) is prepared under on this
 * connection, preparing it now the first time; NULL to send it unprepared
 * (not one of pg_sql[], or the cache is full). *out_failed is the answer of
 * a prepare that failed: the same error its execution would have given.
 * The API's reads run many times on each pooled connection: PostgreSQL then
 * parses and plans each once per connection instead of once per call.
 */
static const char *pq_prepare_now(struct pg_store *s, const char *sql, const struct params *p,
                                  PGresult **out_failed)
{
    struct pq_prep *e = NULL;
    PGresult *res;
    int fixed = 0;

    *out_failed = NULL;
    for (size_t i = 0; i < s->nprep; i++)
        if (s->prep[i].sql == sql)
            return s->prep[i].name;
    /* The lists' plans depend on their values (LIST_TAIL above): a generic
     * plan reads the whole created_at range and sorts it. Planned each call. */
    for (int i = 0; i < PS_COUNT && !fixed; i++)
        fixed = pg_sql[i] == sql && (i < PS_LIST_PARENT || i > PS_LIST_ANY_RANGE);
    if (!fixed)
        return NULL;
    for (size_t i = 0; i < s->nprep; i++)
        if (!s->prep[i].sql)
            e = &s->prep[i];
    if (!e) {
        if (s->nprep >= PG_PREP_MAX)
            return NULL;
        e = &s->prep[s->nprep];
        snprintf(e->name, sizeof(e->name), "orch_%zu", s->nprep);
        s->nprep++;
    }
    res = PQprepare(s->conn, e->name, sql, p->n, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        *out_failed = res;
        return NULL;
    }
    PQclear(res);
    e->sql = sql;
    return e->name;
}

static PGresult *pq_exec(struct pg_store *s, const char *sql, const struct params *p)
{
    PGresult *failed;
    const char *name;

    /* A statement whose answer is needed now: first the pipelined ones. */
    if (s->piped && pq_drain(s, &s->pipe_err)) {
        s->pipe_failed = 1;
        return NULL;
    }
    if (!p || p->n == 0)
        return PQexecParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
    name = pq_prepare_now(s, sql, p, &failed);
    if (failed)
        return failed;
    if (name)
        return PQexecPrepared(s->conn, name, p->n, p->v, p->len, p->fmt, 0);
    return PQexecParams(s->conn, sql, p->n, NULL, p->v, p->len, p->fmt, 0);
}

static int pq_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
}

/* Copy `msg` without its trailing newlines into `out`. */
static void trim_msg(const char *msg, char *out, size_t size)
{
    size_t n;

    snprintf(out, size, "%s", msg ? msg : "unknown error");
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
}

/*
 * Fill `err` from a failed result (cleared here): "<what>: <message>", the
 * code from the SQLSTATE. Returns the ERR_* code.
 */
static int pq_fail(struct pg_store *s, PGresult *res, struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int pq_fail(struct pg_store *s, PGresult *res, struct err *err, const char *fmt, ...)
{
    char what[ERR_MSG_MAX];
    char msg[ERR_MSG_MAX];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    int code = ERR_STORE;
    va_list ap;

    if (!res && s->pipe_failed) {
        /* The pipelined statements before this one failed: that is the error. */
        s->pipe_failed = 0;
        *err = s->pipe_err;
        return err->code;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (primary)
        trim_msg(primary, msg, sizeof(msg));
    else
        trim_msg(PQerrorMessage(s->conn), msg, sizeof(msg));
    if (state) {
        if (!strcmp(state, "23505"))
            code = ERR_CONFLICT;
        else if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
            code = ERR_BUSY;
        else if (!strcmp(state, "22001") || !strcmp(state, "54000"))
            code = ERR_TOO_BIG;
        else if (!strcmp(state, "53100"))
            code = ERR_FULL; /* disk_full on the server */
    }
    PQclear(res);
    return err_set(err, code, "%s: %s", what, msg);
}

/* Run a statement that returns nothing interesting; fills err on failure. */
static int pq_run(struct pg_store *s, const char *sql, const struct params *p, long *changed,
                  struct err *err, const char *what)
{
    PGresult *res = pq_exec(s, sql, p);

    if (!pq_ok(res))
        return pq_fail(s, res, err, "%s in %s", what, s->where);
    if (changed)
        *changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

static int pq_in_tx(struct pg_store *s)
{
    return PQtransactionStatus(s->conn) != PQTRANS_IDLE;
}

/*
 * Run a statement that may fail on a unique key, so that its failure does
 * not abort the caller's transaction: under a savepoint when one is open.
 * Returns the result, successful or not (the caller checks and clears it).
 */
static PGresult *pq_exec_guarded(struct pg_store *s, const char *sql, const struct params *p)
{
    PGresult *res;
    int guard;

    if (s->piped && pq_drain(s, &s->pipe_err)) {
        s->pipe_failed = 1;
        return NULL;
    }
    guard = PQtransactionStatus(s->conn) == PQTRANS_INTRANS;

    if (guard) {
        res = PQexec(s->conn, pg_sql[PS_SAVEPOINT]);
        if (!pq_ok(res))
            return res;
        PQclear(res);
    }
    res = pq_exec(s, sql, p);
    if (guard) {
        PGresult *end =
            PQexec(s->conn, pg_sql[pq_ok(res) ? PS_SAVEPOINT_RELEASE : PS_SAVEPOINT_ROLLBACK]);
        if (!pq_ok(end) && pq_ok(res)) {
            PQclear(res);
            return end;
        }
        PQclear(end);
    }
    return res;
}

/* --- pipelining --- */

/*
 * The name of `sql` prepared on this connection, preparing it (pipelined) the
 * first time; NULL to send it unprepared (the cache is full, or it failed).
 * Parsing and planning once per connection instead of once per statement.
 */
static const char *pq_prepare(struct pg_store *s, const char *sql, const struct params *p)
{
    struct pq_prep *e = NULL;
    struct pq_pending *pp;

    for (size_t i = 0; i < s->nprep; i++)
        if (s->prep[i].sql == sql)
            return s->prep[i].name;
    for (size_t i = 0; i < s->nprep; i++)
        if (!s->prep[i].sql)
            e = &s->prep[i]; /* a slot freed by a failed prepare */
    if (!e) {
        if (s->nprep >= PG_PREP_MAX)
            return NULL;
        e = &s->prep[s->nprep];
        snprintf(e->name, sizeof(e->name), "orch_%zu", s->nprep);
        s->nprep++;
    }
    if (!PQsendPrepare(s->conn, e->name, sql, p ? p->n : 0, NULL))
        return NULL;
    e->sql = sql;
    XGROW(s->pend, s->pend_alloc, s->npend + 1);
    pp = &s->pend[s->npend++];
    pp->want = WANT_PREPARED;
    pp->prep = (size_t)(e - s->prep);
    snprintf(pp->what, sizeof(pp->what), "cannot prepare a statement");
    return e->name;
}

/*
 * Send a statement of the open write transaction without waiting for its
 * answer (pipelining on); returns 1 if sent, 0 if the caller must run it now,
 * or a negative code if it could not be sent.
 */
static int pq_send(struct pg_store *s, const char *sql, const struct params *p, enum pq_want want,
                   struct err *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int pq_send(struct pg_store *s, const char *sql, const struct params *p, enum pq_want want,
                   struct err *err, const char *fmt, ...)
{
    struct pq_pending *pp;
    const char *name;
    va_list ap;

    if (!s->pipelining || !s->in_wtx)
        return 0;
    if (!s->piped) {
        if (!PQenterPipelineMode(s->conn))
            return 0; /* results pending: cannot happen between statements */
        s->piped = 1;
    }
    name = pq_prepare(s, sql, p);
    if (!(name ? PQsendQueryPrepared(s->conn, name, p ? p->n : 0, p ? p->v : NULL,
                                     p ? p->len : NULL, p ? p->fmt : NULL, 0)
               : PQsendQueryParams(s->conn, sql, p ? p->n : 0, NULL, p ? p->v : NULL,
                                   p ? p->len : NULL, p ? p->fmt : NULL, 0))) {
        char msg[ERR_MSG_MAX];
        trim_msg(PQerrorMessage(s->conn), msg, sizeof(msg));
        return err_set(err, ERR_STORE, "cannot send a statement to %s: %s", s->where, msg);
    }
    XGROW(s->pend, s->pend_alloc, s->npend + 1);
    pp = &s->pend[s->npend++];
    pp->want = want;
    va_start(ap, fmt);
    vsnprintf(pp->what, sizeof(pp->what), fmt, ap);
    va_end(ap);
    return 1;
}

/*
 * Collect the answers of the statements sent since the last drain, in
 * order, and leave pipeline mode. The first failure is the error (the
 * server skipped what followed it: the transaction is aborted).
 */
static int pq_drain(struct pg_store *s, struct err *err)
{
    int rc = 0;
    PGresult *res;

    if (!s->piped)
        return 0;
    if (!PQpipelineSync(s->conn))
        rc = err_set(err, ERR_STORE, "cannot flush statements to %s: %s", s->where,
                     PQerrorMessage(s->conn));
    for (size_t i = 0; i < s->npend; i++) {
        const struct pq_pending *pp = &s->pend[i];
        ExecStatusType st;
        if (rc) {
            /* After the first failure the server skipped the rest: a
             * statement prepared there was not. */
            if (pp->want == WANT_PREPARED)
                s->prep[pp->prep].sql = NULL;
            continue;
        }
        res = PQgetResult(s->conn);
        if (!res) {
            rc = err_set(err, ERR_STORE, "%s in %s: %s", pp->what, s->where,
                         "no answer (the connection was lost)");
            if (pp->want == WANT_PREPARED)
                s->prep[pp->prep].sql = NULL;
            continue;
        }
        st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && pp->want == WANT_PREPARED)
            s->prep[pp->prep].sql = NULL;
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            PQclear(res);
        } else {
            const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            int dz = state && !strcmp(state, "22012") && pp->want >= WANT_ROW_CONFLICT;
            if (dz) {
                /* Our division by zero: the check the statement carries failed. */
                PQclear(res);
                if (pp->want == WANT_FENCE)
                    rc = err_set(err, ERR_FENCED, "%s: another node owns it now", pp->what);
                else if (pp->want == WANT_ROW_CONFLICT)
                    rc = err_set(err, ERR_CONFLICT, "%s: stale attempt (the store holds another)",
                                 pp->what);
                else
                    rc = err_set(err, ERR_NOT_FOUND, "%s: no such row", pp->what);
            } else {
                rc = pq_fail(s, res, err, "%s in %s", pp->what, s->where);
            }
        }
        /* The end of this statement's results. */
        while ((res = PQgetResult(s->conn)) != NULL)
            PQclear(res);
    }
    /* Whatever is left (skipped statements, the sync): read it all. */
    for (int guard = 0; guard < 100000; guard++) {
        res = PQgetResult(s->conn);
        if (!res) {
            if (PQstatus(s->conn) != CONNECTION_OK)
                break;
            continue; /* between two statements' results */
        }
        if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        PQclear(res);
    }
    PQexitPipelineMode(s->conn);
    s->piped = 0;
    s->npend = 0;
    if (rc == 0 && PQstatus(s->conn) != CONNECTION_OK)
        rc = err_set(err, ERR_STORE, "lost the connection to %s", s->where);
    return rc;
}

/* Column readers: NULL becomes `none` (or a NULL string). */
static int64_t g_opt(const PGresult *r, int row, int col, int64_t none)
{
    if (PQgetisnull(r, row, col))
        return none;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static int g_int(const PGresult *r, int row, int col, int none)
{
    int64_t v = g_opt(r, row, col, none);
    if (v < INT_MIN || v > INT_MAX)
        return none;
    return (int)v;
}

static char *g_str(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return xstrndup(PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

/* Copy a text column into an id array ("" for NULL); -1 if it does not fit. */
static int g_id(const PGresult *r, int row, int col, char out[ID_MAX])
{
    size_t len = (size_t)PQgetlength(r, row, col);

    out[0] = '\0';
    if (PQgetisnull(r, row, col))
        return 0;
    if (len >= ID_MAX)
        return -1;
    memcpy(out, PQgetvalue(r, row, col), len);
    out[len] = '\0';
    return 0;
}

/*
 * The row readers of the shared decoders (rows.c) over row `i` of a result:
 * text values, BYTEA decoded with PQunescapeBytea.
 */
struct pq_row {
    struct store__row base;
    const PGresult *res;
    int i;
};

static const struct pq_row *pq_row_of(const struct store__row *r)
{
    return (const struct pq_row *)r;
}

static int row_is_null(const struct store__row *r, int col)
{
    return PQgetisnull(pq_row_of(r)->res, pq_row_of(r)->i, col);
}

static int64_t row_i64(const struct store__row *r, int col)
{
    return strtoll(PQgetvalue(pq_row_of(r)->res, pq_row_of(r)->i, col), NULL, 10);
}

static const char *row_text(const struct store__row *r, int col, size_t *out_len)
{
    const struct pq_row *q = pq_row_of(r);

    *out_len = 0;
    if (PQgetisnull(q->res, q->i, col))
        return NULL;
    *out_len = (size_t)PQgetlength(q->res, q->i, col);
    return PQgetvalue(q->res, q->i, col);
}

static unsigned char *row_blob(const struct store__row *r, int col, size_t *out_len)
{
    const struct pq_row *q = pq_row_of(r);
    size_t len = 0;
    unsigned char *data =
        PQunescapeBytea((const unsigned char *)PQgetvalue(q->res, q->i, col), &len);
    unsigned char *copy;

    *out_len = len;
    if (!data)
        return NULL;
    copy = xmalloc(len + 1);
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    PQfreemem(data);
    return copy;
}

/* Row `i` of `res` as the decoders read it (valid in its full expression). */
#define PQ_ROW(s, res, i)                                                                          \
    (&(struct pq_row){{row_is_null, row_i64, row_text, row_blob, (s)->where}, (res), (i)}.base)

/* --- transactions --- */

static int pg_begin(struct store *st, struct err *err)
{
    struct pg_store *s = pg(st);

    int rc;

    /* PostgreSQL only warns about a nested BEGIN; refuse it as SQLite does. */
    if (pq_in_tx(s))
        return err_set(err, ERR_STORE,
                       "cannot begin a write transaction in %s: cannot start a transaction "
                       "within a transaction",
                       s->where);
    if (s->pipelining) {
        s->in_wtx = 1;
        rc = pq_send(s, pg_sql[PS_BEGIN], NULL, WANT_OK, err, "cannot begin a write transaction");
        if (rc == 1)
            return 0;
        s->in_wtx = 0;
        if (rc < 0)
            return rc;
    }
    rc = pq_run(s, pg_sql[PS_BEGIN], NULL, NULL, err, "cannot begin a write transaction");
    if (rc == 0 && s->pipelining)
        s->in_wtx = 1;
    return rc;
}

static void pg_rollback(struct store *st)
{
    struct pg_store *s = pg(st);
    PGresult *res;

    if (s->piped) {
        struct err ignored = ERR_INIT;
        pq_drain(s, &ignored);
    }
    s->in_wtx = 0;
    s->pipe_failed = 0;
    s->exec_written = 0;
    if (!pq_in_tx(s) || PQstatus(s->conn) != CONNECTION_OK)
        return;
    res = PQexec(s->conn, pg_sql[PS_ROLLBACK]);
    if (!pq_ok(res))
        log_error("store", "cannot roll back in %s: %s", s->where, PQerrorMessage(s->conn));
    PQclear(res);
}

static int pg_commit(struct store *st, struct err *err)
{
    struct pg_store *s = pg(st);

    /* PostgreSQL only warns about a COMMIT outside a transaction. */
    if (!pq_in_tx(s))
        return err_set(err, ERR_STORE, "cannot commit in %s: no transaction is active", s->where);
    if (s->exec_written && s->in_wtx) {
        /* A turn that wrote executions first adds the changes of the counts
         * per hour appended so far (by the commits before it: its own
         * triggers run at its COMMIT) into executions_hourly, in the same
         * round trip as the COMMIT. */
        int rc = pq_send(s, pg_sql[PS_HOURLY_FOLD], NULL, WANT_OK, err,
                         "cannot add up the executions per hour");
        s->exec_written = 0;
        if (rc < 0) {
            s->in_wtx = 0;
            pg_rollback(st);
            return rc;
        }
    }
    if (s->piped) {
        /* COMMIT goes with the rest: one round trip for the whole turn. */
        int rc = pq_send(s, pg_sql[PS_COMMIT], NULL, WANT_OK, err, "cannot commit");
        if (rc == 1)
            rc = pq_drain(s, err);
        s->in_wtx = 0;
        if (rc) {
            pg_rollback(st);
            return rc;
        }
        return 0;
    }
    s->in_wtx = 0;
    /* COMMIT of an aborted transaction "succeeds" as a ROLLBACK: say it failed. */
    if (PQtransactionStatus(s->conn) == PQTRANS_INERROR) {
        pg_rollback(st);
        return err_set(err, ERR_STORE,
                       "cannot commit in %s: the transaction was aborted by an earlier error",
                       s->where);
    }
    return pq_run(s, pg_sql[PS_COMMIT], NULL, NULL, err, "cannot commit");
}

static int pg_begin_read(struct store *st, struct err *err)
{
    return pq_run(pg(st), pg_sql[PS_BEGIN_READ], NULL, NULL, err, "cannot begin a read");
}

static int pg_in_transaction(struct store *st)
{
    return pq_in_tx(pg(st));
}

/* --- schema --- */

static int pq_read_version(struct pg_store *s, int *out, struct err *err)
{
    PGresult *res = pq_exec(s, pg_sql[PS_VERSION], NULL);

    if (!pq_ok(res) || PQntuples(res) != 1)
        return pq_fail(s, res, err, "cannot read the schema version of %s", s->where);
    *out = g_int(res, 0, 0, 0);
    PQclear(res);
    return 0;
}

static int pg_schema_version(struct store *st, int *out, struct err *err)
{
    return pq_read_version(pg(st), out, err);
}

/* A script of several statements without parameters: the simple protocol. */
static int pg_exec_script(struct store *st, const char *sql, const char *what, struct err *err)
{
    struct pg_store *s = pg(st);
    PGresult *res = PQexec(s->conn, sql);

    if (!pq_ok(res))
        return pq_fail(s, res, err, "%s", what);
    PQclear(res);
    return 0;
}

/*
 * Migrations take turns under a transaction-level advisory lock: two nodes
 * starting at once, and the second finds the schema up to date.
 */
static int pg_migrate_lock(struct store *st, struct err *err)
{
    struct params p = {0};

    p_i64(&p, PG_MIGRATE_LOCK);
    return pq_run(pg(st), pg_sql[PS_MIGRATE_LOCK], &p, NULL, err, "cannot lock the schema");
}

static int pg_version_record(struct store *st, int version, int64_t now, struct err *err)
{
    struct params p = {0};

    p_i64(&p, version);
    p_i64(&p, now);
    return pq_run(pg(st), pg_sql[PS_VERSION_INSERT], &p, NULL, err,
                  "cannot record the schema version");
}

static int pg_version_table_exists(struct store *st, int *out, struct err *err)
{
    struct pg_store *s = pg(st);
    PGresult *res = pq_exec(s, pg_sql[PS_HAS_VERSION_TABLE], NULL);

    if (!pq_ok(res) || PQntuples(res) != 1)
        return pq_fail(s, res, err, "cannot read the schema of %s", s->where);
    *out = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

/* --- open and close --- */

static void pg_close(struct store *st)
{
    struct pg_store *s = pg(st);

    /* Closing the connection rolls back an open transaction. */
    PQfinish(s->conn);
    for (size_t i = 0; i < s->nlistens; i++)
        free(s->listens[i]);
    free(s->listens);
    for (size_t i = 0; i < sizeof(s->purge_sql) / sizeof(s->purge_sql[0]); i++)
        free(s->purge_sql[i]);
    free(s->pend);
    free(s->where);
    free(s);
}

static int pg_open(const char *target, unsigned flags, struct store **out, struct err *err)
{
    struct pg_store *s = xcalloc(1, sizeof(*s));
    int rc = 0;

    *out = NULL;
    s->base.be = &store__postgres_backend;
    s->flags = flags;
    {
        /*
         * Defaults the location may override (its own values come later and
         * win): a bounded connect, so that a reconnect never blocks the
         * engine's loop for minutes on an unreachable host, and TCP
         * keepalives that notice a dead peer in about 25 s instead of hours.
         */
        static const char *const keys[] = {"connect_timeout", "keepalives_idle",
                                           "keepalives_interval", "keepalives_count",
                                           "application_name", "dbname", NULL};
        const char *vals[] = {"5", "10", "5", "3", "orch", target, NULL};
        s->conn = PQconnectdbParams(keys, vals, 1);
    }
    if (!s->conn || PQstatus(s->conn) != CONNECTION_OK) {
        char msg[ERR_MSG_MAX];
        trim_msg(s->conn ? PQerrorMessage(s->conn) : "out of memory", msg, sizeof(msg));
        s->where = xstrdup("PostgreSQL");
        s->base.where_msg = s->where;
        rc = err_set(err, ERR_STORE, "cannot connect to PostgreSQL: %s", msg);
        goto out;
    }
    s->where = xasprintf("database '%s' on %s:%s", PQdb(s->conn), PQhost(s->conn), PQport(s->conn));
    s->base.where_msg = s->where;
    PQsetNoticeProcessor(s->conn, pg_notice, NULL);
    rc = pq_run(s, pg_sql[PS_SET_QUIET], NULL, NULL, err, "cannot configure");
    if (rc == 0 && (flags & STORE_READONLY))
        rc = pq_run(s, pg_sql[PS_SET_READONLY], NULL, NULL, err, "cannot configure");
out:
    return store__open_finish(&s->base, flags, rc, out, err);
}

/* --- workflows --- */

static int pg_workflow_read(struct store *st, const char *name, int version,
                            struct workflow_row *out, int *out_deleted, int *out_found,
                            struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, name);
    if (version)
        p_i64(&p, version);
    res = pq_exec(s, pg_sql[version ? PS_WF_GET : PS_WF_NEWEST], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read workflow '%s'", name);
    if (PQntuples(res) == 1) {
        *out_found = 1;
        out->version = g_int(res, 0, 0, 0);
        out->definition = g_str(res, 0, 1);
        *out_deleted = !PQgetisnull(res, 0, 2);
        out->created_at = g_opt(res, 0, 3, 0);
    }
    PQclear(res);
    return 0;
}

static int pg_workflow_insert(struct store *st, const char *name, int version,
                              const char *definition, int64_t now, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, name);
    p_i64(&p, version);
    p_text(&p, definition);
    p_i64(&p, now);
    res = pq_exec(s, pg_sql[PS_WF_INSERT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot insert version %d of workflow '%s'", version, name);
    PQclear(res);
    return 0;
}

/* --- executions, task runs, attempts --- */

static int pg_execution_insert(struct store *st, const struct exec_row *row, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, row->id);
    p_text(&p, row->workflow);
    p_i64(&p, row->workflow_version);
    p_text(&p, exec_status_name(row->status));
    p_text(&p, row->params ? row->params : "{}");
    p_i64(&p, row->created_at);
    p_opt(&p, row->started_at, 0);
    p_opt(&p, row->finished_at, 0);
    p_text(&p, row->error);
    p_text(&p, row->schedule_id);
    p_opt(&p, row->scheduled_for, 0);
    p_text(&p, row->owner);
    p_text(&p, row->parent_id);
    p_opt(&p, row->parent_id ? row->parent_task_idx : -1, -1);
    p_i64(&p, row->depth);
    p_opt(&p, row->retried_at, 0);
    /* The engine's turn: sent with the rest. A duplicate id then aborts the
     * transaction and fails its commit (ERR_CONFLICT), where the engine rolls
     * the whole turn back anyway; a savepoint would cost three round trips. */
    rc = pq_send(s, pg_sql[PS_EXEC_INSERT], &p, WANT_OK, err, "cannot insert execution '%s'",
                 row->id);
    if (rc) {
        s->exec_written = 1;
        return rc < 0 ? rc : 0;
    }
    res = pq_exec_guarded(s, pg_sql[PS_EXEC_INSERT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot insert execution '%s'", row->id);
    PQclear(res);
    return 0;
}

static int pg_execution_update(struct store *st, const struct exec_row *row, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    long changed = 0;
    int rc;

    p_text(&p, row->id);
    p_text(&p, exec_status_name(row->status));
    p_opt(&p, row->started_at, 0);
    p_opt(&p, row->finished_at, 0);
    p_text(&p, row->error);
    p_text(&p, row->schedule_id);
    p_opt(&p, row->scheduled_for, 0);
    p_opt(&p, row->retried_at, 0);
    rc = pq_send(s, pg_sql[PS_EXEC_UPDATE_PIPED], &p, WANT_ROW_NOT_FOUND, err,
                 "cannot update execution '%s'", row->id);
    if (rc) {
        s->exec_written = 1;
        return rc < 0 ? rc : 0;
    }
    rc = pq_run(s, pg_sql[PS_EXEC_UPDATE], &p, &changed, err, "cannot update execution");
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no execution '%s'", row->id);
    return rc;
}

static int pg_task_run_insert(struct store *st, const char *exec_id, const struct task_run_row *row,
                              struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, exec_id);
    p_i64(&p, row->idx);
    p_text(&p, row->name);
    p_text(&p, task_status_name(row->status));
    p_i64(&p, row->attempt);
    p_opt(&p, row->available_at, 0);
    p_opt(&p, row->started_at, 0);
    p_opt(&p, row->finished_at, 0);
    p_text(&p, row->error);
    p_text(&p, row->output);
    p_opt(&p, row->instance ? row->group_idx : -1, -1);
    p_opt(&p, row->instance ? row->item_index : -1, -1);
    p_text(&p, row->item);
    p_text(&p, row->child_id);
    p_opt(&p, row->queued_at, 0);
    rc = pq_send(s, pg_sql[PS_TASK_INSERT], &p, WANT_OK, err, "cannot insert task '%s' of %s",
                 row->name, exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, pg_sql[PS_TASK_INSERT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot insert task '%s' of %s", row->name, exec_id);
    PQclear(res);
    return 0;
}

static int pg_task_run_update(struct store *st, const char *exec_id, const struct task_run_row *row,
                              int expected_attempt, struct err *err)
{
    struct pg_store *s = pg(st);
    const char *name = row->name ? row->name : "?";
    struct params p = {0};
    PGresult *res;
    long changed = 0;
    int rc;

    p_text(&p, exec_id);
    p_i64(&p, row->idx);
    p_text(&p, task_status_name(row->status));
    p_i64(&p, row->attempt);
    p_opt(&p, row->available_at, 0);
    p_opt(&p, row->started_at, 0);
    p_opt(&p, row->finished_at, 0);
    p_text(&p, row->error);
    p_i64(&p, expected_attempt);
    p_text(&p, row->output);
    p_text(&p, row->child_id);
    p_opt(&p, row->queued_at, 0);
    rc = pq_send(s, pg_sql[PS_TASK_UPDATE_PIPED], &p, WANT_ROW_CONFLICT, err,
                 "cannot update task '%s' (%d, attempt %d) of %s", name, row->idx, expected_attempt,
                 exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, pg_sql[PS_TASK_UPDATE], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot update task '%s' of %s", name, exec_id);
    changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (changed)
        return 0;
    /* Nothing changed: say whether the row is missing or holds another attempt. */
    p.n = 2;
    res = pq_exec(s, pg_sql[PS_TASK_ATTEMPT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot update task '%s' of %s", name, exec_id);
    if (PQntuples(res) == 1)
        rc = err_set(err, ERR_CONFLICT,
                     "stale attempt %d for task '%s' (%d) of %s: the current attempt is %d",
                     expected_attempt, name, row->idx, exec_id, g_int(res, 0, 0, 0));
    else
        rc = err_set(err, ERR_NOT_FOUND, "no task %d ('%s') in %s", row->idx, name, exec_id);
    PQclear(res);
    return rc;
}

static int pg_attempt_insert(struct store *st, const char *exec_id, const struct attempt_row *row,
                             struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, exec_id);
    p_i64(&p, row->task_idx);
    p_i64(&p, row->number);
    p_text(&p, attempt_status_name(row->status));
    p_text(&p, row->node);
    p_opt(&p, row->pid, 0);
    p_opt(&p, row->pgid, 0);
    p_opt(&p, row->proc_start, 0);
    p_opt(&p, row->started_at, 0);
    p_opt(&p, row->finished_at, 0);
    p_opt(&p, row->exit_code, -1);
    p_opt(&p, row->signal, 0);
    p_text(&p, row->error);
    p_opt(&p, row->queued_at, 0);
    rc = pq_send(s, pg_sql[PS_ATTEMPT_INSERT], &p, WANT_OK, err,
                 "cannot insert attempt %d of task %d of %s", row->number, row->task_idx, exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, pg_sql[PS_ATTEMPT_INSERT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot insert attempt %d of task %d of %s", row->number,
                       row->task_idx, exec_id);
    PQclear(res);
    return 0;
}

static int pg_attempt_update(struct store *st, const char *exec_id, const struct attempt_row *row,
                             struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    long changed;
    int rc;

    p_text(&p, exec_id);
    p_i64(&p, row->task_idx);
    p_i64(&p, row->number);
    p_text(&p, attempt_status_name(row->status));
    p_opt(&p, row->pid, 0);
    p_opt(&p, row->pgid, 0);
    p_opt(&p, row->proc_start, 0);
    p_opt(&p, row->finished_at, 0);
    p_opt(&p, row->exit_code, -1);
    p_opt(&p, row->signal, 0);
    p_text(&p, row->error);
    p_text(&p, row->node);
    rc = pq_send(s, pg_sql[PS_ATTEMPT_UPDATE_PIPED], &p, WANT_ROW_NOT_FOUND, err,
                 "cannot update attempt %d of task %d of %s", row->number, row->task_idx, exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, pg_sql[PS_ATTEMPT_UPDATE], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot update attempt %d of task %d of %s", row->number,
                       row->task_idx, exec_id);
    changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (changed == 0)
        return err_set(err, ERR_NOT_FOUND, "no attempt %d of task %d in %s", row->number,
                       row->task_idx, exec_id);
    return 0;
}

/* --- logs --- */

static int pg_log_append(struct store *st, const char *exec_id, const struct log_chunk *chunk,
                         struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    if (chunk->len > INT_MAX)
        return err_set(err, ERR_TOO_BIG, "log chunk of task %d of %s is too big (%zu bytes)",
                       chunk->task_idx, exec_id, chunk->len);
    p_text(&p, exec_id);
    p_i64(&p, chunk->task_idx);
    p_i64(&p, chunk->attempt);
    p_i64(&p, chunk->seq);
    p_text(&p, store__stream_name(chunk->stream));
    p_i64(&p, chunk->ts);
    p_bin(&p, chunk->data, chunk->len);
    rc = pq_send(s, pg_sql[PS_LOG_APPEND], &p, WANT_OK, err,
                 "cannot append log chunk %d of attempt %d of task %d of %s", chunk->seq,
                 chunk->attempt, chunk->task_idx, exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, pg_sql[PS_LOG_APPEND], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot append log chunk %d of attempt %d of task %d of %s",
                       chunk->seq, chunk->attempt, chunk->task_idx, exec_id);
    PQclear(res);
    return 0;
}

static int pg_log_trim(struct store *st, const char *exec_id, int task_idx, int attempt,
                       int below_seq, int stream, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    int rc;

    p_text(&p, exec_id);
    p_i64(&p, task_idx);
    p_i64(&p, attempt);
    p_i64(&p, below_seq);
    p_text(&p, stream == LOG_STREAM_STDOUT   ? "stdout"
               : stream == LOG_STREAM_STDERR ? "stderr"
                                             : NULL);
    rc = pq_send(s, pg_sql[PS_LOG_TRIM], &p, WANT_OK, err, "cannot trim a log of %s", exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    return pq_run(s, pg_sql[PS_LOG_TRIM], &p, NULL, err, "cannot trim a log");
}

static int pg_logs_get(struct store *st, const char *exec_id, int task_idx, int attempt,
                       int after_seq, struct log_list *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct log_list list = {NULL, 0};
    struct params p = {0};
    enum pg_stmt id;
    PGresult *res;
    int rc = 0;
    int n;

    p_text(&p, exec_id);
    if (attempt > 0) {
        p_i64(&p, task_idx);
        p_i64(&p, attempt);
        p_i64(&p, after_seq);
        id = PS_LOGS_FOLLOW;
    } else if (task_idx >= 0) {
        p_i64(&p, task_idx);
        id = PS_LOGS_TASK;
    } else {
        id = PS_LOGS_ALL;
    }
    res = pq_exec(s, pg_sql[id], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the logs of %s", exec_id);
    n = PQntuples(res);
    if (n > 0)
        list.items = xcalloc((size_t)n, sizeof(*list.items));
    for (int i = 0; i < n && rc == 0; i++) {
        rc = store__decode_log_chunk(PQ_ROW(s, res, i), exec_id, &list.items[i], err);
        if (rc == 0)
            list.n++;
    }
    PQclear(res);
    if (rc) {
        log_list_release(&list);
        return rc;
    }
    *out = list;
    return 0;
}

/* --- reads of executions --- */

static int pq_get_exec(struct pg_store *s, const char *id, struct exec_detail *d, struct err *err)
{
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, id);
    res = pq_exec(s, pg_sql[PS_EXEC_GET], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read execution '%s'", id);
    if (PQntuples(res) == 1)
        rc = store__decode_exec(PQ_ROW(s, res, 0), &d->exec, err);
    else
        rc = err_set(err, ERR_NOT_FOUND, "no execution '%s'", id);
    PQclear(res);
    return rc;
}

/* The task run rows of a query's result into d->tasks. */
static int pq_tasks_from(struct pg_store *s, PGresult *res, const char *id, struct exec_detail *d,
                         struct err *err)
{
    int rc = 0;
    int n = PQntuples(res);

    if (n > 0)
        d->tasks = xcalloc((size_t)n, sizeof(*d->tasks));
    for (int i = 0; i < n && rc == 0; i++) {
        d->ntasks++; /* counted even on failure: exec_detail_free() releases it */
        rc = store__decode_task_run(PQ_ROW(s, res, i), id, &d->tasks[i], err);
    }
    PQclear(res);
    return rc;
}

static int pq_get_tasks(struct pg_store *s, const char *id, struct exec_detail *d, struct err *err)
{
    struct params p = {0};
    PGresult *res;

    p_text(&p, id);
    res = pq_exec(s, pg_sql[PS_TASKS_OF_EXEC], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the tasks of '%s'", id);
    return pq_tasks_from(s, res, id, d, err);
}

/* The attempt rows of a query's result into d->attempts. */
static int pq_attempts_from(struct pg_store *s, PGresult *res, const char *id,
                            struct exec_detail *d, struct err *err)
{
    int rc = 0;
    int n = PQntuples(res);

    if (n > 0)
        d->attempts = xcalloc((size_t)n, sizeof(*d->attempts));
    for (int i = 0; i < n && rc == 0; i++) {
        d->nattempts++; /* counted even on failure: exec_detail_free() releases it */
        rc = store__decode_attempt(PQ_ROW(s, res, i), id, &d->attempts[i], err);
    }
    PQclear(res);
    return rc;
}

static int pq_get_attempts(struct pg_store *s, const char *id, struct exec_detail *d,
                           struct err *err)
{
    struct params p = {0};
    PGresult *res;

    p_text(&p, id);
    res = pq_exec(s, pg_sql[PS_ATTEMPTS_OF_EXEC], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the attempts of '%s'", id);
    return pq_attempts_from(s, res, id, d, err);
}

/* The primitives of store__execution_get and _page (shared.c). */
static int pg_exec_read(struct store *st, const char *id, struct exec_detail *d, struct err *err)
{
    return pq_get_exec(pg(st), id, d, err);
}

static int pg_tasks_read(struct store *st, const char *id, const struct task_page *q,
                         struct exec_detail *d, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    if (!q)
        return pq_get_tasks(s, id, d, err);
    p_text(&p, id);
    p_i64(&p, q->after_idx);
    p_i64(&p, q->group_idx);
    p_i64(&p, q->top_only);
    p_text(&p, q->status);
    p_opt(&p, q->limit > 0 ? q->limit : 0, 0);
    res = pq_exec(s, pg_sql[PS_TASKS_PAGE], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the tasks of '%s'", id);
    return pq_tasks_from(s, res, id, d, err);
}

/* With a page: the attempts of its task runs (those of the idx range between). */
static int pg_attempts_read(struct store *st, const char *id, const struct task_page *q,
                            struct exec_detail *d, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    if (!q)
        return pq_get_attempts(s, id, d, err);
    if (!d->ntasks)
        return 0;
    p_text(&p, id);
    p_i64(&p, d->tasks[0].idx);
    p_i64(&p, d->tasks[d->ntasks - 1].idx);
    res = pq_exec(s, pg_sql[PS_ATTEMPTS_RANGE], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the attempts of '%s'", id);
    return pq_attempts_from(s, res, id, d, err);
}

/* The counts per group of a query's result into d->counts (cleared here). */
static int pq_counts_from(struct pg_store *s, PGresult *res, struct exec_detail *d, struct err *err)
{
    int rc = 0;
    int n = PQntuples(res);

    if (n > 0)
        d->counts = xcalloc((size_t)n, sizeof(*d->counts));
    for (int i = 0; i < n && rc == 0; i++) {
        rc = store__decode_group_count(PQ_ROW(s, res, i), &d->counts[i], err);
        if (rc == 0)
            d->ncounts++;
    }
    PQclear(res);
    return rc;
}

static int pg_group_counts(struct store *st, const char *id, struct exec_detail *d, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, id);
    res = pq_exec(s, pg_sql[PS_GROUP_COUNTS], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot count the tasks of '%s'", id);
    return pq_counts_from(s, res, d, err);
}

/*
 * Run `n` reads in one round trip, in one snapshot: in pipeline mode, inside
 * a REPEATABLE READ READ ONLY transaction begun and ended in the same
 * pipeline when none is open. res[i] is the result of sql[i] (NULL for those
 * the server skipped after a failure); the caller clears them. Fills err and
 * returns its code when a statement failed.
 */
static int pq_read_batch(struct pg_store *s, size_t n, const char *const *sql,
                         const struct params *const *p, PGresult **res, struct err *err)
{
    const char *names[8];
    int began, rc = 0;
    PGresult *r;

    if (n > sizeof(names) / sizeof(names[0]))
        BUG("too many statements in a batch");
    if (s->piped && pq_drain(s, err))
        return err->code;
    for (size_t i = 0; i < n; i++) {
        res[i] = NULL;
        names[i] = pq_prepare_now(s, sql[i], p[i], &r);
        if (r)
            return pq_fail(s, r, err, "cannot read in %s", s->where);
    }
    began = !pq_in_tx(s);
    if (!PQenterPipelineMode(s->conn))
        return err_set(err, ERR_STORE, "cannot read in %s: %s", s->where, PQerrorMessage(s->conn));
    if (began && !PQsendQueryParams(s->conn, pg_sql[PS_BEGIN_READ], 0, NULL, NULL, NULL, NULL, 0))
        rc = -1;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (!(names[i] ? PQsendQueryPrepared(s->conn, names[i], p[i]->n, p[i]->v, p[i]->len,
                                             p[i]->fmt, 0)
                       : PQsendQueryParams(s->conn, sql[i], p[i]->n, NULL, p[i]->v, p[i]->len,
                                           p[i]->fmt, 0)))
            rc = -1;
    if (rc == 0 && began &&
        !PQsendQueryParams(s->conn, pg_sql[PS_ROLLBACK], 0, NULL, NULL, NULL, NULL, 0))
        rc = -1;
    if (rc == 0 && !PQpipelineSync(s->conn))
        rc = -1;
    if (rc) {
        rc = err_set(err, ERR_STORE, "cannot send a read to %s: %s", s->where,
                     PQerrorMessage(s->conn));
        if (PQstatus(s->conn) == CONNECTION_OK)
            PQpipelineSync(s->conn); /* end what was sent, read below */
    }
    /* The answers in order: BEGIN's, the reads', ROLLBACK's, then the sync. */
    for (size_t k = 0; k < n + 2 * (size_t)began && rc == 0; k++) {
        size_t i = k - (size_t)began;
        ExecStatusType st;
        r = PQgetResult(s->conn);
        if (!r) {
            rc = err_set(err, ERR_STORE, "cannot read in %s: no answer (%s)", s->where,
                         PQerrorMessage(s->conn));
            break;
        }
        st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            rc = pq_fail(s, r, err, "cannot read in %s", s->where);
        } else if (k >= (size_t)began && i < n) {
            res[i] = r;
        } else {
            PQclear(r);
        }
        while ((r = PQgetResult(s->conn)) != NULL) /* the end of this statement's results */
            PQclear(r);
    }
    /* The rest (skipped after a failure), up to the sync. */
    for (int guard = 0; guard < 100000; guard++) {
        r = PQgetResult(s->conn);
        if (!r) {
            if (PQstatus(s->conn) != CONNECTION_OK)
                break;
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        PQclear(r);
    }
    PQexitPipelineMode(s->conn);
    if (rc == 0 && PQstatus(s->conn) != CONNECTION_OK)
        rc = err_set(err, ERR_STORE, "lost the connection to %s", s->where);
    if (rc) {
        for (size_t i = 0; i < n; i++) {
            PQclear(res[i]);
            res[i] = NULL;
        }
        /* A failure skipped our ROLLBACK: end the aborted transaction. */
        if (began && pq_in_tx(s) && PQstatus(s->conn) == CONNECTION_OK)
            PQclear(PQexec(s->conn, pg_sql[PS_ROLLBACK]));
    }
    return rc;
}

/*
 * An execution's detail in one round trip (the primitives above take one
 * each, plus the snapshot's BEGIN and ROLLBACK): its row, its task runs and
 * their attempts (all, or those of the page `q` and the counts per group).
 */
static int pg_detail_read(struct store *st, const char *id, const struct task_page *q,
                          struct exec_detail *d, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params pid = {0}, page = {0};
    const char *sql[4];
    const struct params *ps[4];
    PGresult *res[4];
    size_t n = 0;
    int rc;

    p_text(&pid, id);
    if (q) {
        p_text(&page, id);
        p_i64(&page, q->after_idx);
        p_i64(&page, q->group_idx);
        p_i64(&page, q->top_only);
        p_text(&page, q->status);
        p_opt(&page, q->limit > 0 ? q->limit : 0, 0);
    }
    sql[n] = pg_sql[PS_EXEC_GET];
    ps[n++] = &pid;
    sql[n] = pg_sql[q ? PS_TASKS_PAGE : PS_TASKS_OF_EXEC];
    ps[n++] = q ? &page : &pid;
    sql[n] = pg_sql[q ? PS_ATTEMPTS_OF_PAGE : PS_ATTEMPTS_OF_EXEC];
    ps[n++] = q ? &page : &pid;
    if (q) {
        sql[n] = pg_sql[PS_GROUP_COUNTS];
        ps[n++] = &pid;
    }
    rc = pq_read_batch(s, n, sql, ps, res, err);
    if (rc)
        return rc;
    if (PQntuples(res[0]) == 1)
        rc = store__decode_exec(PQ_ROW(s, res[0], 0), &d->exec, err);
    else
        rc = err_set(err, ERR_NOT_FOUND, "no execution '%s'", id);
    PQclear(res[0]);
    /* The decoders clear their result, failed or not. */
    if (rc == 0)
        rc = pq_tasks_from(s, res[1], id, d, err);
    else
        PQclear(res[1]);
    if (rc == 0)
        rc = pq_attempts_from(s, res[2], id, d, err);
    else
        PQclear(res[2]);
    if (n > 3) {
        if (rc == 0)
            rc = pq_counts_from(s, res[3], d, err);
        else
            PQclear(res[3]);
    }
    return rc;
}

/* Run one list query (one status, or none) and append its rows to `list`. */
static int pg_list_query(struct store *st, const struct exec_filter *f, const char *status,
                         int by_range, struct exec_list *list, size_t *alloc, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    enum pg_stmt id;
    PGresult *res;
    int rc = 0;
    int n;

    if (!f->parent_id && !f->workflow && !status && !f->since && !f->until) {
        /* The pages of the whole list, the API's default view. */
        if (f->before_id)
            p_text(&p, f->before_id);
        p_i64(&p, f->limit);
        res = pq_exec(s, pg_sql[f->before_id ? PS_LIST_NEWEST_BEFORE : PS_LIST_NEWEST], &p);
        goto rows;
    }
    p_text(&p, f->before_id);
    p_i64(&p, f->since ? f->since : INT64_MIN);
    p_i64(&p, f->until ? f->until : INT64_MAX);
    p_i64(&p, f->limit);
    p_text(&p, f->workflow);
    p_text(&p, status);
    if (f->parent_id) {
        p_text(&p, f->parent_id);
        id = PS_LIST_PARENT;
    } else if (f->workflow && status)
        id = by_range ? PS_LIST_WF_STATUS_RANGE : PS_LIST_WF_STATUS;
    else if (f->workflow)
        id = by_range ? PS_LIST_WF_RANGE : PS_LIST_WF;
    else if (status)
        id = by_range ? PS_LIST_STATUS_RANGE : PS_LIST_STATUS;
    else
        id = by_range ? PS_LIST_ANY_RANGE : PS_LIST_ANY;
    res = pq_exec(s, pg_sql[id], &p);
rows:
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list executions in %s", s->where);
    n = PQntuples(res);
    for (int i = 0; i < n && rc == 0; i++) {
        XGROW(list->items, *alloc, list->n + 1);
        rc = store__decode_exec(PQ_ROW(s, res, i), &list->items[list->n], err);
        list->n++; /* counted even on failure: exec_list_release() releases it */
    }
    PQclear(res);
    return rc;
}

static int pg_executions_unfinished(struct store *st, char ***out_ids, size_t *out_n,
                                    struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    char **ids = NULL;
    size_t n;

    p_text(&p, exec_status_name(EXEC_QUEUED));
    p_text(&p, exec_status_name(EXEC_RUNNING));
    res = pq_exec(s, pg_sql[PS_UNFINISHED], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list unfinished executions in %s", s->where);
    n = (size_t)PQntuples(res);
    if (n)
        ids = xcalloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = g_str(res, (int)i, 0);
    PQclear(res);
    *out_ids = ids;
    *out_n = n;
    return 0;
}

/* --- server additions --- */

static int pg_ping(struct store *st, struct err *err)
{
    return pq_run(pg(st), pg_sql[PS_PING], NULL, NULL, err, "cannot query");
}

/* An UPDATE whose parameters are $1 a name or id and $2 an instant; *changed: rows matched. */
static int pq_update_by(struct pg_store *s, const char *sql, const char *key, int64_t now,
                        long *changed, const char *what, struct err *err)
{
    struct params p = {0};
    PGresult *res;

    *changed = 0;
    p_text(&p, key);
    p_i64(&p, now);
    res = pq_exec(s, sql, &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot %s '%s'", what, key);
    *changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

static int pg_workflows_list(struct store *st, struct workflow_row **out, size_t *out_n,
                             struct err *err)
{
    struct pg_store *s = pg(st);
    struct workflow_row *rows = NULL;
    PGresult *res;
    size_t n;

    res = pq_exec(s, pg_sql[PS_WF_LIST], NULL);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the workflows in %s", s->where);
    n = (size_t)PQntuples(res);
    if (n)
        rows = xcalloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        store__decode_workflow(PQ_ROW(s, res, (int)i), &rows[i]);
    }
    PQclear(res);
    *out = rows;
    *out_n = n;
    return 0;
}

static int pg_workflow_delete(struct store *st, const char *name, int64_t now, struct err *err)
{
    long changed = 0;
    int rc =
        pq_update_by(pg(st), pg_sql[PS_WF_DELETE], name, now, &changed, "delete workflow", err);

    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no workflow '%s'", name);
    return rc;
}

/* --- idempotency keys --- */

static int pg_idempotency_get(struct store *st, const char *workflow, const char *key,
                              char out_exec_id[ID_MAX], struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, workflow);
    p_text(&p, key);
    res = pq_exec(s, pg_sql[PS_IDEM_GET], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read idempotency key '%s' of '%s'", key, workflow);
    if (PQntuples(res) != 1)
        rc = err_set(err, ERR_NOT_FOUND, "no execution for idempotency key '%s' of '%s'", key,
                     workflow);
    else if (g_id(res, 0, 0, out_exec_id) != 0 || !out_exec_id[0])
        rc = err_set(err, ERR_STORE, "bad execution id for idempotency key '%s' of '%s' in %s", key,
                     workflow, s->where);
    else
        rc = 0;
    PQclear(res);
    return rc;
}

/* ON CONFLICT DO NOTHING: a taken key is ERR_CONFLICT and the transaction stays usable. */
static int pg_idempotency_put(struct store *st, const char *workflow, const char *key,
                              const char *exec_id, int64_t now, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    long changed = 0;
    int rc;

    p_text(&p, workflow);
    p_text(&p, key);
    p_text(&p, exec_id);
    p_i64(&p, now);
    rc = pq_run(s, pg_sql[PS_IDEM_PUT], &p, &changed, err, "cannot record an idempotency key");
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_CONFLICT,
                     "cannot record idempotency key '%s' of '%s' for %s: UNIQUE constraint "
                     "failed: the key is taken",
                     key, workflow, exec_id);
    return rc;
}

/* --- notifications (the outbox) --- */

static int pq_notify_rows(struct pg_store *s, PGresult *res, struct notify_row **out,
                          size_t *out_n, const char *what, struct err *err)
{
    struct notify_row *rows = NULL;
    size_t n;

    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot %s in %s", what, s->where);
    n = (size_t)PQntuples(res);
    if (n)
        rows = xcalloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++)
        if (store__decode_notify(PQ_ROW(s, res, (int)i), &rows[i], err)) {
            PQclear(res);
            notify_rows_free(rows, n);
            return ERR_STORE;
        }
    PQclear(res);
    *out = rows;
    *out_n = n;
    return 0;
}

static int pg_notify_insert(struct store *st, const struct notify_row *row, struct err *err)
{
    struct params p = {0};

    p_text(&p, row->id);
    p_text(&p, row->exec_id);
    p_text(&p, row->workflow);
    p_text(&p, row->event);
    p_text(&p, row->request);
    p_text(&p, row->body);
    p_text(&p, notify_status_name(row->status));
    p_i64(&p, row->attempts);
    p_i64(&p, row->next_at);
    p_text(&p, row->claimed_by);
    p_opt(&p, row->lease_until, 0);
    p_text(&p, row->last_error);
    p_opt(&p, row->response_code, 0);
    p_i64(&p, row->created_at);
    p_i64(&p, row->updated_at);
    return pq_run(pg(st),
                  "INSERT INTO notifications (" STORE__NOTIFY_COLS ") VALUES ($1, $2, $3, $4,"
                  " $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                  &p, NULL, err, "cannot record a notification");
}

/* SKIP LOCKED: two nodes claiming at once take different rows. */
static int pg_notify_claim(struct store *st, const char *node, int64_t now, int64_t lease_ms,
                           int take_own, int limit, struct notify_row **out, size_t *out_n,
                           struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, node);
    p_i64(&p, now);
    p_i64(&p, lease_ms);
    p_i64(&p, take_own);
    p_i64(&p, limit);
    return pq_notify_rows(
        s,
        pq_exec(s,
                "UPDATE notifications SET status = 'sending', claimed_by = $1,"
                " lease_until = $2::bigint + $3::bigint, updated_at = $2::bigint WHERE id IN"
                " (SELECT id FROM notifications WHERE (status = 'pending' AND next_at <= $2::bigint)"
                " OR (status = 'sending' AND (lease_until <= $2::bigint OR $4::int = 2 OR"
                " ($4::int = 1 AND claimed_by = $1))) ORDER BY next_at, id LIMIT $5::int"
                " FOR UPDATE SKIP LOCKED) RETURNING " STORE__NOTIFY_COLS,
                &p),
        out, out_n, "claim notifications", err);
}

static int pg_notify_settle(struct store *st, const struct notify_row *row, const char *node,
                            struct err *err)
{
    struct params p = {0};
    long changed = 0;
    int rc;

    p_text(&p, row->id);
    p_text(&p, node);
    p_text(&p, notify_status_name(row->status));
    p_i64(&p, row->attempts);
    p_i64(&p, row->next_at);
    p_text(&p, row->last_error);
    p_opt(&p, row->response_code, 0);
    p_i64(&p, row->updated_at);
    rc = pq_run(pg(st),
                "UPDATE notifications SET status = $3, attempts = $4, next_at = $5,"
                " last_error = $6, response_code = $7, updated_at = $8, claimed_by = NULL,"
                " lease_until = NULL WHERE id = $1 AND claimed_by = $2 AND status = 'sending'",
                &p, &changed, err, "cannot record the attempt of a notification");
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_CONFLICT, "notification %s is no longer held by node '%s'",
                     row->id, node);
    return rc;
}

static int pg_notify_next(struct store *st, int64_t *out, struct err *err)
{
    struct pg_store *s = pg(st);
    PGresult *res = pq_exec(s,
                            "SELECT min(CASE WHEN status = 'pending' THEN next_at ELSE"
                            " lease_until END) FROM notifications"
                            " WHERE status IN ('pending', 'sending')",
                            NULL);

    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read when the next notification is due in %s",
                       s->where);
    *out = PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)
               ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
               : 0;
    PQclear(res);
    return 0;
}

static int pg_notify_list(struct store *st, const char *exec_id, struct notify_row **out,
                          size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, exec_id);
    return pq_notify_rows(s,
                          pq_exec(s,
                                  "SELECT " STORE__NOTIFY_COLS " FROM notifications"
                                  " WHERE execution_id = $1 ORDER BY id",
                                  &p),
                          out, out_n, "read the notifications", err);
}

/* --- API keys --- */

static int pg_key_insert(struct store *st, const struct key_row *row, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, row->id);
    p_text(&p, row->name);
    p_text(&p, row->prefix);
    p_bin(&p, row->hash, KEY_HASH_LEN);
    p_i64(&p, row->scopes);
    p_i64(&p, row->created_at);
    p_opt(&p, row->expires_at, 0);
    p_opt(&p, row->last_used_at, 0);
    p_opt(&p, row->revoked_at, 0);
    res = pq_exec_guarded(s, pg_sql[PS_KEY_INSERT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot insert key '%s' ('%s', prefix '%s')", row->id,
                       row->name, row->prefix);
    PQclear(res);
    return 0;
}

static int pg_key_get_by_prefix(struct store *st, const char *prefix, struct key_row *out,
                                struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, prefix);
    res = pq_exec(s, pg_sql[PS_KEY_BY_PREFIX], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the key with prefix '%s'", prefix);
    if (PQntuples(res) == 1) {
        rc = store__decode_key(PQ_ROW(s, res, 0), out, err);
        if (rc)
            memset(out, 0, sizeof(*out));
    } else {
        rc = err_set(err, ERR_NOT_FOUND, "no key with prefix '%s'", prefix);
    }
    PQclear(res);
    return rc;
}

static int pg_keys_list(struct store *st, struct key_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct key_row *rows = NULL;
    size_t n = 0;
    PGresult *res;
    int rc = 0;
    int nt;

    res = pq_exec(s, pg_sql[PS_KEYS_LIST], NULL);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the keys in %s", s->where);
    nt = PQntuples(res);
    if (nt > 0)
        rows = xcalloc((size_t)nt, sizeof(*rows));
    for (int i = 0; i < nt && rc == 0; i++) {
        rc = store__decode_key(PQ_ROW(s, res, i), &rows[n], err);
        if (rc == 0)
            n++;
    }
    PQclear(res);
    if (rc) {
        key_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *out_n = n;
    return 0;
}

static int pg_key_revoke(struct store *st, const char *id_or_name, int looks_like_id, int64_t now,
                         struct err *err)
{
    struct pg_store *s = pg(st);
    long changed = 0;
    int rc = 0;

    if (looks_like_id)
        rc =
            pq_update_by(s, pg_sql[PS_KEY_REVOKE_ID], id_or_name, now, &changed, "revoke key", err);
    if (rc == 0 && changed == 0)
        rc = pq_update_by(s, pg_sql[PS_KEY_REVOKE_NAME], id_or_name, now, &changed, "revoke key",
                          err);
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no key '%s'", id_or_name);
    return rc;
}

static int pg_key_touch(struct store *st, const char *id, int64_t now, struct err *err)
{
    long changed = 0;
    int rc =
        pq_update_by(pg(st), pg_sql[PS_KEY_TOUCH], id, now, &changed, "record the use of key", err);

    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no key '%s'", id);
    return rc;
}

/* --- web UI sessions --- */

static int pg_session_insert(struct store *st, const struct session_row *row, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_bin(&p, row->token_hash, SESSION_HASH_LEN);
    p_bin(&p, row->csrf_hash, SESSION_HASH_LEN);
    p_text(&p, row->key_id);
    p_text(&p, row->key_prefix);
    p_i64(&p, row->created_at);
    p_i64(&p, row->expires_at);
    p_i64(&p, row->last_seen_at);
    res = pq_exec_guarded(s, pg_sql[PS_SESSION_INSERT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot record a session of key '%s'", row->key_id);
    PQclear(res);
    return 0;
}

static int pg_session_get(struct store *st, const unsigned char *token_hash,
                          struct session_row *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    p_bin(&p, token_hash, SESSION_HASH_LEN);
    res = pq_exec(s, pg_sql[PS_SESSION_GET], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read a session");
    if (PQntuples(res) == 1) {
        rc = store__decode_session(PQ_ROW(s, res, 0), out, err);
        if (rc)
            memset(out, 0, sizeof(*out));
    } else {
        rc = err_set(err, ERR_NOT_FOUND, "no such session");
    }
    PQclear(res);
    return rc;
}

/* Run session statement `sql` on (token_hash[, now]); ERR_NOT_FOUND if it changed no row. */
static int pq_session_by(struct pg_store *s, const char *sql, const unsigned char *token_hash,
                         const int64_t *now, const char *what, struct err *err)
{
    struct params p = {0};
    long changed = 0;
    int rc;

    p_bin(&p, token_hash, SESSION_HASH_LEN);
    if (now)
        p_i64(&p, *now);
    rc = pq_run(s, sql, &p, &changed, err, what);
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no such session");
    return rc;
}

static int pg_session_touch(struct store *st, const unsigned char *token_hash, int64_t now,
                            struct err *err)
{
    return pq_session_by(pg(st), pg_sql[PS_SESSION_TOUCH], token_hash, &now,
                         "cannot record the use of a session", err);
}

static int pg_session_delete(struct store *st, const unsigned char *token_hash, struct err *err)
{
    return pq_session_by(pg(st), pg_sql[PS_SESSION_DELETE], token_hash, NULL,
                         "cannot delete a session", err);
}

static int pg_sessions_purge(struct store *st, int64_t now, int *out_deleted, struct err *err)
{
    struct params p = {0};
    long changed = 0;
    int rc;

    p_i64(&p, now);
    rc = pq_run(pg(st), pg_sql[PS_SESSIONS_PURGE], &p, &changed, err,
                "cannot delete the ended sessions");
    if (rc == 0)
        *out_deleted = (int)changed;
    return rc;
}

/* --- retention and visibility --- */

/*
 * The purge that keeps the workflows bound to $5 .. $(4 + cap), cap the
 * power of two that holds `n` names: built once per connection from
 * placeholders only, never from names.
 */
static const char *pq_purge_sql(struct pg_store *s, size_t n, size_t *out_cap)
{
    int k = 0;
    struct strbuf sb = STRBUF_INIT;

    while (((size_t)1 << k) < n)
        k++;
    *out_cap = (size_t)1 << k;
    if (!s->purge_sql[k]) {
        strbuf_adds(&sb, PURGE_HEAD " AND workflow NOT IN (");
        for (size_t i = 0; i < *out_cap; i++)
            strbuf_addf(&sb, "%s$%d", i ? ", " : "", PURGE_FIRST_NAME + (int)i);
        strbuf_adds(&sb, ")" PURGE_TAIL);
        s->purge_sql[k] = strbuf_detach(&sb, NULL);
    }
    return s->purge_sql[k];
}

static int pg_executions_purge(struct store *st, const char *workflow, const char *const *except,
                               size_t nexcept, int64_t before, int batch, int *out_deleted,
                               struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    const char *sql;
    long deleted = 0;
    size_t cap = 0;
    int began;
    int rc;

    /* The names are bound, never spliced: the text holds placeholders only;
     * a list is padded to the next size by repeating its last name. */
    sql = workflow   ? pg_sql[PS_PURGE_WF]
          : !nexcept ? pg_sql[PS_PURGE_ALL]
                     : pq_purge_sql(s, nexcept, &cap);
    p_i64(&p, before);
    p_i64(&p, batch);
    p_text(&p, exec_status_name(EXEC_QUEUED));
    p_text(&p, exec_status_name(EXEC_RUNNING));
    if (workflow)
        p_text(&p, workflow);
    for (size_t i = 0; nexcept && i < cap; i++)
        p_text(&p, except[i < nexcept ? i : nexcept - 1]);
    rc = store__write_begin(&s->base, &began, err);
    if (rc == 0)
        rc = pq_run(s, sql, &p, &deleted, err, "cannot purge executions");
    rc = store__write_end(&s->base, began, rc, err);
    if (rc == 0)
        *out_deleted = (int)deleted;
    return rc;
}

static int pg_count_min(struct store *st, enum store__count which, int64_t *out_count,
                        int64_t *out_min, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    /* 'queued' is a literal so the planner can use the partial index task_runs_queued. */
    if (which == STORE__COUNT_RUNNING)
        p_text(&p, exec_status_name(EXEC_RUNNING));
    res =
        pq_exec(s, pg_sql[which == STORE__COUNT_QUEUED ? PS_COUNTS_QUEUED : PS_COUNTS_RUNNING], &p);
    if (!pq_ok(res) || PQntuples(res) != 1)
        return pq_fail(s, res, err, "cannot count the work in %s", s->where);
    *out_count = g_opt(res, 0, 0, 0);
    *out_min = g_opt(res, 0, 1, 0);
    PQclear(res);
    return 0;
}

/* --- schedules --- */

static int pg_schedules_list(struct store *st, struct schedule_row **out, size_t *out_n,
                             struct err *err)
{
    struct pg_store *s = pg(st);
    struct schedule_row *rows = NULL;
    size_t n = 0;
    PGresult *res;
    int rc = 0;
    int nt;

    res = pq_exec(s, pg_sql[PS_SCHED_LIST], NULL);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the schedules in %s", s->where);
    nt = PQntuples(res);
    if (nt > 0)
        rows = xcalloc((size_t)nt, sizeof(*rows));
    for (int i = 0; i < nt && rc == 0; i++) {
        rc = store__decode_schedule(PQ_ROW(s, res, i), &rows[n], err);
        n++; /* counted even on failure: schedule_rows_free() releases it */
    }
    PQclear(res);
    if (rc) {
        schedule_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *out_n = n;
    return 0;
}

static int pg_schedule_get(struct store *st, const char *id, struct schedule_row *out,
                           struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, id);
    res = pq_exec(s, pg_sql[PS_SCHED_GET], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read schedule '%s'", id);
    if (PQntuples(res) == 1) {
        rc = store__decode_schedule(PQ_ROW(s, res, 0), out, err);
        if (rc) {
            schedule_row_release(out); /* no half-read row */
            memset(out, 0, sizeof(*out));
        }
    } else {
        rc = err_set(err, ERR_NOT_FOUND, "no schedule '%s'", id);
    }
    PQclear(res);
    return rc;
}

static int pg_schedule_upsert(struct store *st, const struct schedule_row *row, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, row->id);
    p_text(&p, row->workflow);
    p_text(&p, row->name);
    p_text(&p, row->spec_hash);
    p_i64(&p, row->paused);
    p_opt(&p, row->next_fire_at, 0);
    p_opt(&p, row->last_fire_at, 0);
    p_i64(&p, row->created_at);
    p_i64(&p, row->updated_at);
    p_i64(&p, row->from_api ? 1 : 0);
    p_text(&p, row->from_api ? row->spec : NULL);
    res = pq_exec_guarded(s, pg_sql[PS_SCHED_UPSERT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot record schedule '%s' of '%s' as '%s'", row->name,
                       row->workflow, row->id);
    PQclear(res);
    return 0;
}

static int name_listed(const char *name, const char *const *names, size_t nnames)
{
    for (size_t i = 0; i < nnames; i++)
        if (!strcmp(names[i], name))
            return 1;
    return 0;
}

/* Run a statement whose only parameter is $1 `key`; *changed: rows affected. */
static int pq_exec_by(struct pg_store *s, const char *sql, const char *key, long *changed,
                      const char *what, struct err *err)
{
    struct params p = {0};
    PGresult *res;

    p_text(&p, key);
    res = pq_exec(s, sql, &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot %s '%s'", what, key);
    if (changed)
        *changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

static int pg_schedules_prune(struct store *st, const char *workflow, const char *const *names,
                              size_t nnames, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res = NULL;
    int began;
    int rc;

    rc = store__write_begin(&s->base, &began, err);
    if (rc)
        return rc;
    p_text(&p, workflow);
    res = pq_exec(s, pg_sql[PS_SCHED_OF_WF], &p);
    if (!pq_ok(res)) {
        rc = pq_fail(s, res, err, "cannot list the schedules of '%s'", workflow);
        res = NULL;
    }
    for (int i = 0; res && i < PQntuples(res) && rc == 0; i++) {
        const char *id = PQgetvalue(res, i, 0);
        if (name_listed(PQgetvalue(res, i, 1), names, nnames))
            continue;
        rc = pq_exec_by(s, pg_sql[PS_FIRES_DELETE], id, NULL, "delete the fires of schedule", err);
        if (rc == 0)
            rc = pq_exec_by(s, pg_sql[PS_SCHED_DELETE], id, NULL, "delete schedule", err);
    }
    PQclear(res);
    return store__write_end(&s->base, began, rc, err);
}

static int pg_schedule_update_state(struct store *st, const struct schedule_row *row,
                                    struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    long changed = 0;
    int rc;

    p_text(&p, row->id);
    p_text(&p, row->spec_hash);
    p_opt(&p, row->next_fire_at, 0);
    p_opt(&p, row->last_fire_at, 0);
    p_i64(&p, row->updated_at);
    rc = pq_run(s, pg_sql[PS_SCHED_STATE], &p, &changed, err,
                "cannot record the state of a schedule");
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no schedule '%s'", row->id);
    return rc;
}

static int pg_schedule_delete(struct store *st, const char *id, struct err *err)
{
    struct pg_store *s = pg(st);
    long changed = 0;
    int began;
    int rc;

    rc = store__write_begin(&s->base, &began, err);
    if (rc)
        return rc;
    rc = pq_exec_by(s, pg_sql[PS_SCHED_DELETE], id, &changed, "delete schedule", err);
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no schedule '%s'", id);
    if (rc == 0)
        rc = pq_exec_by(s, pg_sql[PS_FIRES_DELETE], id, NULL, "delete the fires of schedule", err);
    return store__write_end(&s->base, began, rc, err);
}

static int pg_schedule_set_paused(struct store *st, const char *id, int paused, int64_t now,
                                  struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    long changed;

    p_text(&p, id);
    p_i64(&p, paused);
    p_i64(&p, now);
    res = pq_exec(s, pg_sql[PS_SCHED_PAUSE], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot %s schedule '%s'", paused ? "pause" : "resume", id);
    changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (changed == 0)
        return err_set(err, ERR_NOT_FOUND, "no schedule '%s'", id);
    return 0;
}

/*
 * The primary key is the "at most once" of a due time. ON CONFLICT (with
 * FIRE_REPLACE: a queued due time fires, a skipped one is queued again) and
 * the row count report a second fire without aborting the caller's
 * transaction (a plain failing INSERT would, on PostgreSQL).
 */
static int pg_fire_insert(struct store *st, const struct fire_row *row, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    long changed;

    p_text(&p, row->schedule_id);
    p_i64(&p, row->scheduled_for);
    p_text(&p, store__fire_status_name(row->status));
    p_text(&p, row->execution_id[0] ? row->execution_id : NULL);
    p_text(&p, row->reason);
    p_i64(&p, row->created_at);
    res = pq_exec(s, pg_sql[PS_FIRE_INSERT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot record the fire of schedule '%s' due at %lld",
                       row->schedule_id, (long long)row->scheduled_for);
    changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (changed == 0 && row->status != FIRE_QUEUED)
        return err_set(err, ERR_CONFLICT,
                       "cannot record the fire of schedule '%s' due at %lld: it was recorded "
                       "before",
                       row->schedule_id, (long long)row->scheduled_for);
    return 0;
}

static int pg_fire_exists(struct store *st, const char *schedule_id, int64_t scheduled_for,
                          int *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, schedule_id);
    p_i64(&p, scheduled_for);
    res = pq_exec(s, pg_sql[PS_FIRE_EXISTS], &p);
    if (!pq_ok(res) || PQntuples(res) != 1)
        return pq_fail(s, res, err, "cannot read the fire of schedule '%s' due at %lld",
                       schedule_id, (long long)scheduled_for);
    *out = g_opt(res, 0, 0, 0) > 0;
    PQclear(res);
    return 0;
}

static int pg_fire_get(struct store *st, const char *schedule_id, int64_t scheduled_for,
                       struct fire_row *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, schedule_id);
    p_i64(&p, scheduled_for);
    res = pq_exec(s, pg_sql[PS_FIRE_GET], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the fire of schedule '%s' due at %lld",
                       schedule_id, (long long)scheduled_for);
    if (PQntuples(res) != 1) {
        PQclear(res);
        return err_set(err, ERR_NOT_FOUND, "no fire of schedule '%s' due at %lld", schedule_id,
                       (long long)scheduled_for);
    }
    rc = store__decode_fire(PQ_ROW(s, res, 0), out, err);
    if (rc)
        fire_row_release(out);
    PQclear(res);
    return rc;
}

static int pg_fires_queued(struct store *st, const char *schedule_id, int limit, int64_t **out,
                           size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int nt;

    p_text(&p, schedule_id);
    p_i64(&p, limit);
    res = pq_exec(s, pg_sql[PS_FIRES_QUEUED], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the queued fires of schedule '%s'", schedule_id);
    nt = PQntuples(res);
    if (nt > 0) {
        *out = xcalloc((size_t)nt, sizeof(**out));
        for (int i = 0; i < nt; i++)
            (*out)[i] = g_opt(res, i, 0, 0);
    }
    *out_n = (size_t)nt;
    PQclear(res);
    return 0;
}

static int pg_fires_list(struct store *st, const char *schedule_id, int limit,
                         struct fire_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct fire_row *rows = NULL;
    struct params p = {0};
    size_t n = 0;
    PGresult *res;
    int rc = 0;
    int nt;

    p_text(&p, schedule_id);
    p_i64(&p, limit);
    res = pq_exec(s, pg_sql[PS_FIRES_LIST], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the fires of schedule '%s'", schedule_id);
    nt = PQntuples(res);
    if (nt > 0)
        rows = xcalloc((size_t)nt, sizeof(*rows));
    for (int i = 0; i < nt && rc == 0; i++) {
        /* counted even on failure: fire_rows_free() releases it */
        rc = store__decode_fire(PQ_ROW(s, res, i), &rows[n++], err);
    }
    PQclear(res);
    if (rc) {
        fire_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *out_n = n;
    return 0;
}

/* --- nodes and scale-out --- */

static int pg_node_register(struct store *st, const struct node_row *row, int64_t lease_ms,
                            int64_t own_clock_ms, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    long changed = 0;
    int rc;

    p_text(&p, row->id);
    p_text(&p, row->host);
    p_i64(&p, row->pid);
    p_text(&p, row->role);
    p_text(&p, row->version);
    p_i64(&p, lease_ms);
    p_i64(&p, row->slots);
    p_i64(&p, own_clock_ms);
    rc = pq_run(s, pg_sql[PS_NODE_REGISTER], &p, &changed, err, "cannot register the node");
    if (rc)
        return rc;
    if (changed == 0)
        return err_set(err, ERR_BUSY,
                       "node name '%s' is in use by a running node (its heartbeat is recent); "
                       "give this one another --node name",
                       row->id);
    /* Forget offers given up on runners gone for a day, then nodes gone for a
     * day that own nothing. */
    rc = pq_run(s, pg_sql[PS_OFFERS_FORGET], NULL, NULL, err, "cannot forget old offers");
    if (rc)
        return rc;
    memset(&p, 0, sizeof(p));
    rc = pq_run(s, pg_sql[PS_NODES_FORGET], NULL, NULL, err, "cannot forget old nodes");
    return rc;
}

static int pg_node_stop(struct store *st, const char *id, struct err *err)
{
    struct params p = {0};

    p_text(&p, id);
    return pq_run(pg(st), pg_sql[PS_NODE_STOP], &p, NULL, err, "cannot record the node's stop");
}

static int pg_nodes_list(struct store *st, struct node_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct node_row *rows = NULL;
    PGresult *res;
    size_t n;

    res = pq_exec(s, pg_sql[PS_NODES_LIST], NULL);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the nodes in %s", s->where);
    n = (size_t)PQntuples(res);
    if (n)
        rows = xcalloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        store__decode_node(PQ_ROW(s, res, r), &rows[i]);
        rows[i].slots = g_int(res, r, 10, 0);
        rows[i].clock_known = !PQgetisnull(res, r, 11);
        rows[i].clock_offset_ms = g_opt(res, r, 11, 0);
    }
    PQclear(res);
    *out = rows;
    *out_n = n;
    return 0;
}

static int pg_hourly_read(struct store *st, int64_t from_hour, int64_t to_hour, int limit,
                          struct exec_hour_count **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct exec_hour_count *rows = NULL;
    struct params p = {0};
    PGresult *res;
    size_t n, k = 0;

    p_i64(&p, from_hour);
    p_i64(&p, to_hour);
    p_i64(&p, limit);
    res = pq_exec(s, pg_sql[PS_HOURLY], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the executions per hour in %s", s->where);
    n = (size_t)PQntuples(res);
    if (n)
        rows = xcalloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        enum exec_status es;
        if (PQgetisnull(res, (int)i, 1) || exec_status_parse(PQgetvalue(res, (int)i, 1), &es))
            continue;
        rows[k].hour = g_opt(res, (int)i, 0, 0) * 3600000;
        rows[k].status = es;
        rows[k].n = g_opt(res, (int)i, 2, 0);
        k++;
    }
    PQclear(res);
    *out = rows;
    *out_n = k;
    return 0;
}

static int pq_ids(struct pg_store *s, PGresult *res, char ***out_ids, size_t *out_n,
                  struct err *err, const char *what)
{
    char **ids = NULL;
    size_t n;

    if (!pq_ok(res))
        return pq_fail(s, res, err, "%s in %s", what, s->where);
    n = (size_t)PQntuples(res);
    if (n)
        ids = xcalloc(n, sizeof(*ids));
    for (size_t i = 0; i < n; i++)
        ids[i] = g_str(res, (int)i, 0);
    PQclear(res);
    *out_ids = ids;
    *out_n = n;
    return 0;
}

static int pg_executions_claim(struct store *st, const char *node, int limit, int64_t lease_ms,
                               unsigned which, char ***out_ids, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, node);
    p_i64(&p, limit);
    p_text(&p, (which & STORE_CLAIM_UNOWNED) ? "t" : "f");
    p_text(&p, (which & STORE_CLAIM_EXPIRED) ? "t" : "f");
    p_i64(&p, lease_ms);
    p_text(&p, (which & STORE_CLAIM_OWN) ? "t" : "f");
    return pq_ids(s, pq_exec(s, pg_sql[PS_EXEC_CLAIM], &p), out_ids, out_n, err,
                  "cannot claim executions");
}

static int pg_execution_claim_one(struct store *st, const char *id, const char *node,
                                  int64_t lease_ms, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    long changed = 0;
    int rc;

    p_text(&p, id);
    p_text(&p, node);
    p_i64(&p, lease_ms);
    rc = pq_run(s, pg_sql[PS_EXEC_CLAIM_ONE], &p, &changed, err, "cannot claim the execution");
    if (rc || changed)
        return rc;
    memset(&p, 0, sizeof(p));
    p_text(&p, id);
    res = pq_exec(s, pg_sql[PS_EXEC_OWNER], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read execution '%s' in %s", id, s->where);
    if (PQntuples(res) == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no execution '%s'", id);
    else
        rc = err_set(err, ERR_BUSY, "execution '%s' is being run by node '%s'", id,
                     PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

/* A text[] literal of ids (they are [a-z0-9_], so no quoting is needed). */
static int ids_array(char *const *ids, size_t n, struct strbuf *sb)
{
    strbuf_addch(sb, '{');
    for (size_t i = 0; i < n; i++) {
        for (const char *c = ids[i]; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
                return -1;
        if (i)
            strbuf_addch(sb, ',');
        strbuf_adds(sb, ids[i]);
    }
    strbuf_addch(sb, '}');
    return 0;
}

static int pg_executions_fence(struct store *st, const char *node, char *const *ids, size_t n,
                               char ***out_lost, size_t *out_nlost, struct err *err)
{
    struct pg_store *s = pg(st);
    struct strbuf arr = STRBUF_INIT;
    struct params p = {0};
    int rc;

    *out_lost = NULL;
    *out_nlost = 0;
    if (n == 0)
        return 0;
    if (ids_array(ids, n, &arr)) {
        strbuf_release(&arr);
        return err_set(err, ERR_INVALID, "bad execution id in a fence");
    }
    p_text(&p, arr.buf);
    p_text(&p, node);
    /* Pipelined: lock the rows and fail (division by zero, 22012) if one is
     * not ours; the drain turns that into ERR_FENCED, and the caller asks
     * again outside the transaction which ones. The divisor depends on a
     * column, so the planner cannot fold it. */
    rc = pq_send(s, pg_sql[PS_FENCE_CHECK], &p, WANT_FENCE, err,
                 "ownership check of %zu execution%s", n, n == 1 ? "" : "s");
    if (rc) {
        strbuf_release(&arr);
        return rc < 0 ? rc : 0;
    }
    /* Lock every row (so a claim by another node waits or skips them), return
     * the ones that are not ours any more. */
    rc = pq_ids(s, pq_exec(s, pg_sql[PS_FENCE_LOST], &p), out_lost, out_nlost, err,
                "cannot check the ownership of executions");
    strbuf_release(&arr);
    return rc;
}

static int pg_execution_request_cancel(struct store *st, const char *id, int64_t now,
                                       struct err *err)
{
    struct params p = {0};
    long changed = 0;
    int rc;

    p_text(&p, id);
    p_i64(&p, now);
    rc = pq_run(pg(st), pg_sql[PS_CANCEL_REQUEST], &p, &changed, err, "cannot request the cancel");
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_CONFLICT, "execution '%s' has already ended", id);
    return rc;
}

static int pg_cancel_requests(struct store *st, const char *node, char ***out_ids, size_t *out_n,
                              struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, node);
    return pq_ids(s, pq_exec(s, pg_sql[PS_CANCEL_REQUESTS], &p), out_ids, out_n, err,
                  "cannot read cancel requests");
}

/* Channel names are identifiers (LISTEN takes no parameter): ours only. */
static int channel_ok(const char *c)
{
    if (!*c || strlen(c) > 48)
        return 0;
    for (; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || *c == '_'))
            return 0;
    return 1;
}

static int pq_listen_all(struct pg_store *s, struct err *err)
{
    for (size_t i = 0; i < s->nlistens; i++) {
        char sql[80];
        int rc;
        snprintf(sql, sizeof(sql), "LISTEN %s", s->listens[i]);
        rc = pq_run(s, sql, NULL, NULL, err, "cannot listen");
        if (rc)
            return rc;
    }
    return 0;
}

static int pg_listen(struct store *st, const char *channel, struct err *err)
{
    struct pg_store *s = pg(st);
    char sql[80];

    if (!channel_ok(channel))
        return err_set(err, ERR_INVALID, "bad channel name '%s'", channel);
    for (size_t i = 0; i < s->nlistens; i++)
        if (!strcmp(s->listens[i], channel))
            return 0;
    snprintf(sql, sizeof(sql), "LISTEN %s", channel);
    if (pq_run(s, sql, NULL, NULL, err, "cannot listen"))
        return err->code;
    XGROW(s->listens, s->listens_alloc, s->nlistens + 1);
    s->listens[s->nlistens++] = xstrdup(channel);
    return 0;
}

static int pg_notify(struct store *st, const char *channel, const char *payload, struct err *err)
{
    struct params p = {0};

    struct pg_store *s = pg(st);
    int rc;

    p_text(&p, channel);
    p_text(&p, payload ? payload : "");
    rc = pq_send(s, pg_sql[PS_NOTIFY], &p, WANT_OK, err, "cannot notify");
    if (rc)
        return rc < 0 ? rc : 0;
    return pq_run(s, pg_sql[PS_NOTIFY], &p, NULL, err, "cannot notify");
}

static int pg_listen_fd(struct store *st)
{
    struct pg_store *s = pg(st);
    return PQstatus(s->conn) == CONNECTION_OK ? PQsocket(s->conn) : -1;
}

static int pg_notifications(struct store *st,
                            void (*fn)(void *arg, const char *channel, const char *payload),
                            void *arg, struct err *err)
{
    struct pg_store *s = pg(st);
    PGnotify *nt;

    if (!PQconsumeInput(s->conn)) {
        char msg[ERR_MSG_MAX];
        trim_msg(PQerrorMessage(s->conn), msg, sizeof(msg));
        return err_set(err, ERR_STORE, "lost the connection to %s: %s", s->where, msg);
    }
    while ((nt = PQnotifies(s->conn)) != NULL) {
        fn(arg, nt->relname, nt->extra ? nt->extra : "");
        PQfreemem(nt);
    }
    return 0;
}

static int pg_lease_acquire(struct store *st, const char *name, const char *node,
                            int64_t lease_ms, int *out_held, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, name);
    p_text(&p, node);
    p_i64(&p, lease_ms);
    res = pq_exec(s, pg_sql[PS_LEASE_ACQUIRE], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot take the lease '%s' in %s", name, s->where);
    *out_held = PQntuples(res) == 1;
    PQclear(res);
    return 0;
}

static int pg_lease_release(struct store *st, const char *name, const char *node,
                            struct err *err)
{
    struct params p = {0};

    p_text(&p, name);
    p_text(&p, node);
    return pq_run(pg(st), pg_sql[PS_LEASE_RELEASE], &p, NULL, err, "cannot release a lease");
}

static int pg_connected(struct store *st)
{
    struct pg_store *s = pg(st);

    if (PQstatus(s->conn) != CONNECTION_OK)
        return 0;
    /* An idle connection the server closed (a restart, an administrator)
     * still says OK until it is read: read what is there (one non-blocking
     * recv), which notices the end. */
    if (PQtransactionStatus(s->conn) == PQTRANS_IDLE && !PQconsumeInput(s->conn))
        return 0;
    return PQstatus(s->conn) == CONNECTION_OK;
}

static int pg_reconnect(struct store *st, struct err *err)
{
    struct pg_store *s = pg(st);
    char msg[ERR_MSG_MAX];

    PQreset(s->conn);
    /* A new session: nothing prepared, nothing pending. */
    s->nprep = 0;
    s->piped = 0;
    s->npend = 0;
    s->in_wtx = 0;
    s->pipe_failed = 0;
    if (PQstatus(s->conn) != CONNECTION_OK) {
        trim_msg(PQerrorMessage(s->conn), msg, sizeof(msg));
        return err_set(err, ERR_STORE, "cannot connect to %s: %s", s->where, msg);
    }
    if (pq_run(s, pg_sql[PS_SET_QUIET], NULL, NULL, err, "cannot configure"))
        return err->code;
    if ((s->flags & STORE_READONLY) &&
        pq_run(s, pg_sql[PS_SET_READONLY], NULL, NULL, err, "cannot configure"))
        return err->code;
    return pq_listen_all(s, err);
}

static void pg_set_pipelining(struct store *st, int on)
{
    pg(st)->pipelining = on;
}

static const char *pg_where(struct store *st)
{
    return pg(st)->where;
}

/* --- task offers --- */

static int pg_node_heartbeat(struct store *st, const char *id, int64_t lease_ms,
                              int64_t own_clock_ms, struct node_beat *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, id);
    p_i64(&p, lease_ms);
    p_i64(&p, own_clock_ms);
    res = pq_exec(s, pg_sql[PS_NODE_HEARTBEAT], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot renew the heartbeat of node '%s' in %s", id, s->where);
    if (PQntuples(res) != 1) {
        PQclear(res);
        return err_set(err, ERR_NOT_FOUND, "node '%s' is not registered in %s", id, s->where);
    }
    out->claimable = g_opt(res, 0, 0, 0);
    out->open_offers = g_opt(res, 0, 1, 0);
    out->peer_slots = g_opt(res, 0, 2, 0);
    PQclear(res);
    return 0;
}

/* Rows of OFFER_COLS (plus, with `gone_col`, a boolean column at the end). */
static int pq_offers(struct pg_store *s, PGresult *res, int gone_col, struct offer_row **out,
                     size_t *out_n, struct err *err, const char *what)
{
    struct offer_row *rows = NULL;
    size_t n;

    if (!pq_ok(res))
        return pq_fail(s, res, err, "%s in %s", what, s->where);
    n = (size_t)PQntuples(res);
    if (n)
        rows = xcalloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        struct offer_row *o = &rows[i];
        int r = (int)i;
        if (g_id(res, r, 0, o->exec_id) != 0) {
            offer_rows_free(rows, n);
            PQclear(res);
            return err_set(err, ERR_STORE, "bad execution id in an offer in %s", s->where);
        }
        o->task_idx = g_int(res, r, 1, 0);
        o->attempt = g_int(res, r, 2, 0);
        o->owner = g_str(res, r, 3);
        o->runner_node = g_str(res, r, 4);
        o->spec = g_str(res, r, 5);
        o->offered_at = g_opt(res, r, 6, 0);
        o->runner = g_str(res, r, 7);
        o->pid = g_int(res, r, 8, 0);
        o->proc_start = g_opt(res, r, 9, 0);
        o->finished_at = g_opt(res, r, 10, 0);
        o->status = g_str(res, r, 11);
        o->exit_code = g_int(res, r, 12, -1);
        o->signal = g_int(res, r, 13, 0);
        o->error = g_str(res, r, 14);
        o->output = g_str(res, r, 15);
        o->cancel_requested = g_int(res, r, 16, 0);
        if (gone_col)
            o->runner_gone = PQgetvalue(res, r, 17)[0] == 't';
    }
    PQclear(res);
    *out = rows;
    *out_n = n;
    return 0;
}

static void p_offer_key(struct params *p, const char *exec_id, int task_idx, int attempt)
{
    p_text(p, exec_id);
    p_i64(p, task_idx);
    p_i64(p, attempt);
}

/* A write of the engine's turn: pipelined when it can be, else run now. */
static int pq_write(struct pg_store *s, const char *sql, const struct params *p, struct err *err,
                    const char *what)
{
    int rc = pq_send(s, sql, p, WANT_OK, err, "%s", what);
    if (rc)
        return rc < 0 ? rc : 0;
    return pq_run(s, sql, p, NULL, err, what);
}

static int pg_offer_put(struct store *st, const struct offer_row *o, struct err *err)
{
    struct params p = {0};

    p_offer_key(&p, o->exec_id, o->task_idx, o->attempt);
    p_text(&p, o->owner);
    p_text(&p, o->spec);
    p_i64(&p, o->offered_at);
    return pq_write(pg(st), pg_sql[PS_OFFER_PUT], &p, err, "cannot offer a task");
}

static int pg_offer_delete(struct store *st, const char *exec_id, int task_idx, int attempt,
                           struct err *err)
{
    struct params p = {0};

    p_offer_key(&p, exec_id, task_idx, attempt);
    return pq_write(pg(st), pg_sql[PS_OFFER_DELETE], &p, err, "cannot delete an offer");
}

static int pg_offer_cancel(struct store *st, const char *exec_id, int task_idx, int attempt,
                           struct err *err)
{
    struct params p = {0};

    p_offer_key(&p, exec_id, task_idx, attempt);
    return pq_write(pg(st), pg_sql[PS_OFFER_CANCEL], &p, err, "cannot cancel an offer");
}

static int pg_offers_claim(struct store *st, const char *runner, int limit,
                           struct offer_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, runner);
    p_i64(&p, limit);
    return pq_offers(s, pq_exec(s, pg_sql[PS_OFFERS_CLAIM], &p), 0, out, out_n, err,
                     "cannot claim offers");
}

static int pg_offer_report(struct store *st, const struct offer_row *o, struct err *err)
{
    struct params p = {0};

    p_offer_key(&p, o->exec_id, o->task_idx, o->attempt);
    p_text(&p, o->runner_node);
    if (!o->finished_at) {
        /* The pid of a process still running: never over a result already
         * written (a short task's pid and result go in the same turn). */
        p_text(&p, o->runner);
        p_opt(&p, o->pid, 0);
        p_opt(&p, o->proc_start, 0);
        return pq_write(pg(st), pg_sql[PS_OFFER_REPORT_PID], &p, err, "cannot report on an offer");
    }
    p_text(&p, o->runner);
    p_opt(&p, o->pid, 0);
    p_opt(&p, o->proc_start, 0);
    p_opt(&p, o->finished_at, 0);
    p_text(&p, o->status);
    p_opt(&p, o->exit_code, -1);
    p_opt(&p, o->signal, 0);
    p_text(&p, o->error);
    p_text(&p, o->output);
    return pq_write(pg(st), pg_sql[PS_OFFER_REPORT], &p, err, "cannot report on an offer");
}

static int pg_offers_owned(struct store *st, const char *owner, int64_t lease_ms,
                           struct offer_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, owner);
    p_i64(&p, lease_ms);
    return pq_offers(s, pq_exec(s, pg_sql[PS_OFFERS_OWNED], &p), 1, out, out_n, err,
                     "cannot read the offers of a node");
}

static int pg_offers_cancelled(struct store *st, const char *runner, struct offer_row **out,
                               size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, runner);
    return pq_offers(s, pq_exec(s, pg_sql[PS_OFFERS_CANCELLED], &p), 0, out, out_n, err,
                     "cannot read cancelled offers");
}

static int pg_offers_adopt(struct store *st, const char *exec_id, const char *owner,
                           struct offer_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, exec_id);
    p_text(&p, owner);
    return pq_offers(s, pq_exec(s, pg_sql[PS_OFFERS_ADOPT], &p), 0, out, out_n, err,
                     "cannot adopt offers");
}

/* --- diagnostics (store_diag) --- */

static const char *const pg_diag_sql[STORE_DIAG_COUNT] = {
    [STORE_DIAG_FAILURES] =
        "SELECT e.workflow, t.name, a.error, COUNT(*), MAX(a.execution_id), a.task_idx"
        " FROM attempts a JOIN task_runs t ON t.execution_id = a.execution_id AND t.idx = a.task_idx"
        " JOIN executions e ON e.id = a.execution_id"
        " WHERE a.status IN ('failed', 'timed_out') AND a.finished_at >= $1"
        " GROUP BY e.workflow, t.name, a.error, a.task_idx ORDER BY COUNT(*) DESC LIMIT 20",
    [STORE_DIAG_ORPHANS] =
        "SELECT e.id, e.workflow, e.owner_node, n.heartbeat_at FROM executions e"
        " LEFT JOIN nodes n ON n.id = e.owner_node"
        " WHERE e.status = 'running' AND e.owner_node IS NOT NULL"
        " AND (n.id IS NULL OR n.stopped_at IS NOT NULL OR n.heartbeat_at < $1)"
        " ORDER BY e.id LIMIT 20",
    [STORE_DIAG_QUEUED] =
        "SELECT e.workflow, COUNT(*), MIN(COALESCE(t.available_at, e.started_at, e.created_at))"
        " FROM task_runs t JOIN executions e ON e.id = t.execution_id"
        " WHERE t.status = 'queued' GROUP BY e.workflow ORDER BY e.workflow",
    [STORE_DIAG_CLOCK] = "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint",
    [STORE_DIAG_PG_EXTENSION] =
        "SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'),"
        " (SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_stat_statements'),"
        " current_setting('shared_preload_libraries')",
    [STORE_DIAG_PG_STATEMENTS] =
        "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 200), calls,"
        " round(mean_exec_time::numeric, 1), round(total_exec_time::numeric, 1)"
        " FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY mean_exec_time DESC LIMIT 5",
    [STORE_DIAG_PG_SESSIONS] =
        "SELECT pid, state,"
        " (EXTRACT(EPOCH FROM clock_timestamp() - COALESCE(xact_start, query_start)) * 1000)::bigint,"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 200), application_name"
        " FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND backend_type = 'client backend'"
        " AND ((state = 'active' AND query_start < clock_timestamp() - $1::bigint * interval '1 ms')"
        " OR (state LIKE 'idle in transaction%'"
        " AND state_change < clock_timestamp() - $1::bigint * interval '1 ms'))"
        " ORDER BY 3 DESC LIMIT 10",
    [STORE_DIAG_PG_BLOAT] =
        "SELECT relname, n_dead_tup, n_live_tup, pg_total_relation_size(relid),"
        " to_char(GREATEST(last_vacuum, last_autovacuum) AT TIME ZONE 'UTC',"
        " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
        " FROM pg_stat_user_tables WHERE schemaname = current_schema()"
        " ORDER BY n_dead_tup DESC, relname LIMIT 5",
    /* What the rows need: reltuples rows of the average width pg_stats has
     * (each column's, MAXALIGNed), plus per row a heap tuple header and a
     * line pointer (28 bytes) in pages of block_size less their header, or
     * for a btree index an index tuple header and a line pointer (12 bytes)
     * in leaf pages filled to 90%, plus its metapage. */
    [STORE_DIAG_PG_SPACE] =
        "WITH bs AS (SELECT current_setting('block_size')::numeric AS b),"
        " t AS (SELECT c.relname, c.reltuples, pg_relation_size(c.oid) AS bytes,"
        "  (SELECT sum(s.avg_width) FROM pg_stats s WHERE s.schemaname = n.nspname"
        "   AND s.tablename = c.relname) AS width"
        "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "  WHERE n.nspname = current_schema() AND c.relkind = 'r'),"
        " i AS (SELECT ic.relname, tc.relname AS tbl, ic.reltuples,"
        "  pg_relation_size(ic.oid) AS bytes,"
        "  (SELECT sum(s.avg_width) FROM pg_attribute a JOIN pg_stats s"
        "   ON s.schemaname = n.nspname AND s.tablename = tc.relname AND s.attname = a.attname"
        "   WHERE a.attrelid = tc.oid AND a.attnum = ANY (x.indkey)) AS width"
        "  FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid"
        "  JOIN pg_class tc ON tc.oid = x.indrelid"
        "  JOIN pg_namespace n ON n.oid = tc.relnamespace JOIN pg_am am ON am.oid = ic.relam"
        "  WHERE n.nspname = current_schema() AND am.amname = 'btree')"
        " SELECT kind, name, tbl, bytes, need, rows FROM ("
        "  SELECT 'table' AS kind, relname AS name, NULL AS tbl, bytes,"
        "   (ceil(reltuples / GREATEST(1, floor((bs.b - 24) / (28 + ceil(width / 8.0) * 8))))"
        "    * bs.b)::bigint AS need, reltuples::bigint AS rows"
        "   FROM t, bs WHERE reltuples >= 0 AND width IS NOT NULL"
        "  UNION ALL"
        "  SELECT 'index', relname, tbl, bytes,"
        "   ((ceil(reltuples / GREATEST(1, floor((bs.b - 40) * 0.9 / (12 + ceil(width / 8.0) * 8))))"
        "    + 1) * bs.b)::bigint, reltuples::bigint"
        "   FROM i, bs WHERE reltuples >= 0 AND width IS NOT NULL) z"
        " ORDER BY bytes - need DESC, name LIMIT 5",
};

static int pg_diag(struct store *st, enum store_diag which, const int64_t *params, size_t nparams,
                   struct store_diag_rows *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    size_t n, nc;

    for (size_t i = 0; i < nparams; i++)
        p_i64(&p, params[i]);
    res = pq_exec(s, pg_diag_sql[which], &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot run a diagnostic query in %s", s->where);
    n = (size_t)PQntuples(res);
    nc = (size_t)PQnfields(res);
    out->ncols = nc;
    if (n && nc)
        out->cells = xcalloc(n * nc, sizeof(*out->cells));
    for (size_t r = 0; r < n && nc; r++)
        for (size_t c = 0; c < nc; c++)
            out->cells[r * nc + c] = g_str(res, (int)r, (int)c);
    out->nrows = nc ? n : 0;
    PQclear(res);
    return 0;
}

const struct store_backend store__postgres_backend = {
    .name = "postgres",
    .dialect = STORE__POSTGRES,
    .open = pg_open,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .workflow_read = pg_workflow_read,
    .workflow_insert = pg_workflow_insert,
    .execution_insert = pg_execution_insert,
    .execution_update = pg_execution_update,
    .task_run_insert = pg_task_run_insert,
    .task_run_update = pg_task_run_update,
    .attempt_insert = pg_attempt_insert,
    .attempt_update = pg_attempt_update,
    .log_append = pg_log_append,
    .log_trim = pg_log_trim,
    .exec_script = pg_exec_script,
    .version_table_exists = pg_version_table_exists,
    .version_record = pg_version_record,
    .migrate_lock = pg_migrate_lock,
    .begin_read = pg_begin_read,
    .in_transaction = pg_in_transaction,
    .list_query = pg_list_query,
    .exec_read = pg_exec_read,
    .tasks_read = pg_tasks_read,
    .attempts_read = pg_attempts_read,
    .group_counts = pg_group_counts,
    .detail_read = pg_detail_read,
    .executions_unfinished = pg_executions_unfinished,
    .logs_get = pg_logs_get,
    .ping = pg_ping,
    .workflows_list = pg_workflows_list,
    .workflow_delete = pg_workflow_delete,
    .idempotency_get = pg_idempotency_get,
    .idempotency_put = pg_idempotency_put,
    .notify_insert = pg_notify_insert,
    .notify_claim = pg_notify_claim,
    .notify_settle = pg_notify_settle,
    .notify_next = pg_notify_next,
    .notify_list = pg_notify_list,
    .key_insert = pg_key_insert,
    .key_get_by_prefix = pg_key_get_by_prefix,
    .keys_list = pg_keys_list,
    .key_revoke = pg_key_revoke,
    .key_touch = pg_key_touch,
    .session_insert = pg_session_insert,
    .session_get = pg_session_get,
    .session_touch = pg_session_touch,
    .session_delete = pg_session_delete,
    .sessions_purge = pg_sessions_purge,
    .executions_purge = pg_executions_purge,
    .count_min = pg_count_min,
    .schedules_list = pg_schedules_list,
    .schedule_get = pg_schedule_get,
    .schedule_upsert = pg_schedule_upsert,
    .schedules_prune = pg_schedules_prune,
    .schedule_update_state = pg_schedule_update_state,
    .schedule_delete = pg_schedule_delete,
    .schedule_set_paused = pg_schedule_set_paused,
    .fire_insert = pg_fire_insert,
    .fire_exists = pg_fire_exists,
    .fires_list = pg_fires_list,
    .fire_get = pg_fire_get,
    .fires_queued = pg_fires_queued,
    .node_register = pg_node_register,
    .node_heartbeat = pg_node_heartbeat,
    .node_stop = pg_node_stop,
    .nodes_list = pg_nodes_list,
    .hourly_read = pg_hourly_read,
    .executions_claim = pg_executions_claim,
    .execution_claim_one = pg_execution_claim_one,
    .executions_fence = pg_executions_fence,
    .execution_request_cancel = pg_execution_request_cancel,
    .cancel_requests = pg_cancel_requests,
    .listen = pg_listen,
    .notify = pg_notify,
    .listen_fd = pg_listen_fd,
    .notifications = pg_notifications,
    .lease_acquire = pg_lease_acquire,
    .lease_release = pg_lease_release,
    .connected = pg_connected,
    .reconnect = pg_reconnect,
    .where = pg_where,
    .set_pipelining = pg_set_pipelining,
    .offer_put = pg_offer_put,
    .offer_delete = pg_offer_delete,
    .offer_cancel = pg_offer_cancel,
    .offers_claim = pg_offers_claim,
    .offer_report = pg_offer_report,
    .offers_owned = pg_offers_owned,
    .offers_cancelled = pg_offers_cancelled,
    .offers_adopt = pg_offers_adopt,
    .diag = pg_diag,
};
