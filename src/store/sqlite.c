/*
 * sqlite.c - the embedded store backend (libsqlite3).
 *
 * One sqlite3 connection per struct store, opened NOMUTEX: the store is used
 * from one thread at a time (store.h), so SQLite's own mutexes would only
 * cost time. Every statement is a fixed SQL text with bound parameters,
 * prepared on first use with SQLITE_PREPARE_PERSISTENT, kept in s->stmts[]
 * and reset after each use, so a loop turn that writes thousands of rows
 * parses no SQL at all. Result rows are decoded by rows.c through the
 * readers of struct sq_row; migrations, the list merge and the reads of an
 * execution's detail are driven by shared.c.
 *
 * Error text: "<what failed>: <sqlite's message>", e.g.
 * "cannot insert execution 'ex_...': UNIQUE constraint failed: executions.id".
 */
#include "store_backend.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include "base/banned.h"

/* How long a writer waits for another connection's write lock. */
#define SQLITE_BUSY_MS 5000

enum stmt_id {
    ST_BEGIN,
    ST_BEGIN_READ,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_HAS_VERSION_TABLE,
    ST_VERSION,
    ST_VERSION_INSERT,
    ST_WF_NEWEST,
    ST_WF_GET,
    ST_WF_INSERT,
    ST_EXEC_INSERT,
    ST_EXEC_UPDATE,
    ST_EXEC_GET,
    ST_TASK_INSERT,
    ST_TASK_UPDATE,
    ST_TASK_ATTEMPT,
    ST_TASKS_OF_EXEC,
    ST_ATTEMPT_INSERT,
    ST_ATTEMPT_UPDATE,
    ST_ATTEMPTS_OF_EXEC,
    ST_LOG_APPEND,
    ST_LOG_TRIM,
    ST_LOGS_ALL,
    ST_LOGS_TASK,
    ST_LOGS_FOLLOW,
    ST_UNFINISHED,
    ST_LIST_ANY,
    ST_LIST_WF,
    ST_LIST_STATUS,
    ST_LIST_WF_STATUS,
    ST_LIST_PARENT,
    ST_LIST_ANY_RANGE,
    ST_LIST_WF_RANGE,
    ST_LIST_STATUS_RANGE,
    ST_LIST_WF_STATUS_RANGE,
    ST_HOURLY,
    ST_PING,
    ST_WF_LIST,
    ST_WF_DELETE,
    ST_IDEM_GET,
    ST_IDEM_PUT,
    ST_KEY_INSERT,
    ST_KEY_BY_PREFIX,
    ST_KEYS_LIST,
    ST_KEY_REVOKE_ID,
    ST_KEY_REVOKE_NAME,
    ST_KEY_TOUCH,
    ST_SESSION_INSERT,
    ST_SESSION_GET,
    ST_SESSION_TOUCH,
    ST_SESSION_DELETE,
    ST_SESSIONS_PURGE,
    ST_PURGE_WF,
    ST_PURGE_ALL,
    ST_PURGE_EXCEPT_1, /* room for 1 name to keep, then 2, 4, ...: built by purge_except_sql() */
    ST_PURGE_EXCEPT_2,
    ST_PURGE_EXCEPT_4,
    ST_PURGE_EXCEPT_8,
    ST_PURGE_EXCEPT_16,
    ST_PURGE_EXCEPT_32,
    ST_PURGE_EXCEPT_64,
    ST_COUNTS_QUEUED,
    ST_COUNTS_RUNNING,
    ST_SCHED_LIST,
    ST_SCHED_GET,
    ST_SCHED_UPSERT,
    ST_SCHED_OF_WF,
    ST_SCHED_DELETE,
    ST_SCHED_PAUSE,
    ST_SCHED_STATE,
    ST_FIRES_DELETE,
    ST_FIRE_INSERT,
    ST_FIRE_EXISTS,
    ST_FIRES_LIST,
    ST_FIRE_GET,
    ST_FIRES_QUEUED,
    ST_TASKS_PAGE,
    ST_ATTEMPTS_RANGE,
    ST_GROUP_COUNTS,
    ST_CANCEL_REQUEST,
    ST_CANCEL_REQUESTS,
    ST_COUNT
};

_Static_assert(1 << (ST_PURGE_EXCEPT_64 - ST_PURGE_EXCEPT_1) == STORE_PURGE_EXCEPT_MAX,
               "one purge variant per power of two up to STORE_PURGE_EXCEPT_MAX");

/*
 * The list queries share their parameters: ?1 id upper bound (exclusive),
 * ?2 created_at lower bound, ?3 created_at upper bound (exclusive), ?4 limit,
 * ?5 workflow, ?6 status. One status per query: with "status = ?" the
 * (status, id) index yields rows already in id order, so LIMIT stops the
 * scan after `limit` rows; "status IN (...)" would read every matching row
 * and sort them (see docs/internals/store.md).
 *
 * Two plans, one statement each, chosen by store__list_by_range:
 * - LIST_TAIL walks an index in id order from the newest and tests
 *   created_at on each row. The unary "+" keeps SQLite 3.40 (no ANALYZE
 *   statistics) from taking executions_created_at for the range, which it
 *   does even for the unbounded one bound here when nothing was given (the
 *   newest 50 of a million then took 1.3 s instead of 0.1 ms);
 * - LIST_RANGE reads the executions created in [?2, ?3) through
 *   executions_created_at (INDEXED BY: not the (status, id) index, which
 *   the planner prefers for "status = ?") and keeps the newest `limit` by id
 *   (a sorter bounded by the LIMIT).
 */
#define LIST_TAIL " AND id < ?1 AND +created_at >= ?2 AND +created_at < ?3 ORDER BY id DESC LIMIT ?4"
#define LIST_RANGE                                                                                 \
    "SELECT " EXEC_COLS " FROM executions INDEXED BY executions_created_at"                        \
    " WHERE created_at >= ?2 AND created_at < ?3 AND id < ?1"
#define LIST_RANGE_TAIL " ORDER BY id DESC LIMIT ?4"

/*
 * The purge deletes the ids picked by a subquery that walks the
 * executions_finished_at index (or executions_workflow_finished_at) oldest
 * first and stops after the batch; the rows below an execution go by ON
 * DELETE CASCADE. Parameters: ?1 finished_at upper bound (exclusive), ?2 the
 * batch, ?3 and ?4 "queued" and "running" (never taken, whatever their
 * finished_at says), then ?5 the workflow, or ?5.. the workflows to keep.
 *
 * "status NOT IN (unfinished)" rather than "status IN (finished)": with the
 * latter, SQLite 3.40 (no ANALYZE statistics) prefers four equality lookups
 * in the (status, id) index, reads every finished execution and sorts them;
 * a NOT IN cannot use an index, so the finished_at range is the plan
 * (test_purge_counts_query_plans checks it).
 */
#define PURGE_HEAD                                                                                 \
    "DELETE FROM executions WHERE id IN (SELECT id FROM executions"                                \
    " WHERE finished_at < ?1 AND status NOT IN (?3, ?4)"
#define PURGE_TAIL       " ORDER BY finished_at LIMIT ?2)"
#define PURGE_FIRST_NAME 5

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_HAS_VERSION_TABLE] = "SELECT count(*) FROM sqlite_master"
                             " WHERE type = 'table' AND name = 'schema_version'",
    [ST_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_version",
    [ST_VERSION_INSERT] = "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
    [ST_WF_NEWEST] = "SELECT version, definition, deleted_at, created_at FROM workflows"
                     " WHERE name = ?1 ORDER BY version DESC LIMIT 1",
    [ST_WF_GET] = "SELECT version, definition, NULL, created_at FROM workflows"
                  " WHERE name = ?1 AND version = ?2",
    [ST_WF_INSERT] = "INSERT INTO workflows (name, version, definition, created_at)"
                     " VALUES (?1, ?2, ?3, ?4)",
    [ST_EXEC_INSERT] = "INSERT INTO executions (" EXEC_COLS ")"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,"
                       " ?16)",
    [ST_EXEC_UPDATE] = "UPDATE executions SET status = ?2, started_at = ?3, finished_at = ?4,"
                       " error = ?5, schedule_id = ?6, scheduled_for = ?7, retried_at = ?8,"
                       /* a cancel request ends with the run it was asked of (a
                        * retry must not find it) */
                       " cancel_requested_at = CASE WHEN ?2 IN ('queued', 'running')"
                       " THEN cancel_requested_at END"
                       " WHERE id = ?1",
    [ST_EXEC_GET] = "SELECT " EXEC_COLS " FROM executions WHERE id = ?1",
    [ST_TASK_INSERT] = "INSERT INTO task_runs (execution_id, idx, name, status, attempt,"
                       " available_at, started_at, finished_at, error, output, group_idx,"
                       " item_index, item, child_id, queued_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                       " ?15)",
    [ST_TASK_UPDATE] = "UPDATE task_runs SET status = ?3, attempt = ?4, available_at = ?5,"
                       " started_at = ?6, finished_at = ?7, error = ?8, output = ?10,"
                       " child_id = ?11, queued_at = ?12"
                       " WHERE execution_id = ?1 AND idx = ?2 AND attempt = ?9",
    [ST_TASK_ATTEMPT] = "SELECT attempt FROM task_runs WHERE execution_id = ?1 AND idx = ?2",
    [ST_TASKS_OF_EXEC] = "SELECT idx, name, status, attempt, available_at, started_at,"
                         " finished_at, error, output, group_idx, item_index, item, child_id,"
                         " queued_at FROM task_runs WHERE execution_id = ?1"
                         " ORDER BY idx",
    [ST_ATTEMPT_INSERT] = "INSERT INTO attempts (execution_id, task_idx, number, status, node,"
                          " pid, pgid, proc_start, started_at, finished_at, exit_code, signal,"
                          " error, queued_at)"
                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [ST_ATTEMPT_UPDATE] = "UPDATE attempts SET status = ?4, pid = ?5, pgid = ?6,"
                          " proc_start = ?7, finished_at = ?8, exit_code = ?9, signal = ?10,"
                          " error = ?11, node = coalesce(?12, node)"
                          " WHERE execution_id = ?1 AND task_idx = ?2 AND number = ?3",
    [ST_ATTEMPTS_OF_EXEC] = "SELECT task_idx, number, status, node, pid, pgid, proc_start,"
                            " started_at, finished_at, exit_code, signal, error, queued_at"
                            " FROM attempts WHERE execution_id = ?1 ORDER BY task_idx, number",
    [ST_LOG_APPEND] = "INSERT INTO logs (execution_id, task_idx, attempt, seq, stream, ts, data)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_LOG_TRIM] = "DELETE FROM logs WHERE execution_id = ?1 AND task_idx = ?2"
                    " AND attempt = ?3 AND seq < ?4 AND (?5 IS NULL OR stream = ?5)",
    [ST_LOGS_ALL] = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
                    " WHERE execution_id = ?1 ORDER BY task_idx, attempt, seq",
    [ST_LOGS_TASK] = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
                     " WHERE execution_id = ?1 AND task_idx = ?2 ORDER BY attempt, seq",
    [ST_LOGS_FOLLOW] = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
                       " WHERE execution_id = ?1 AND task_idx = ?2 AND attempt = ?3"
                       " AND seq > ?4 ORDER BY seq",
    [ST_UNFINISHED] = "SELECT id FROM executions WHERE status IN (?1, ?2) ORDER BY id",
    [ST_LIST_ANY] = "SELECT " EXEC_COLS " FROM executions WHERE 1 = 1" LIST_TAIL,
    [ST_LIST_WF] = "SELECT " EXEC_COLS " FROM executions WHERE workflow = ?5" LIST_TAIL,
    [ST_LIST_STATUS] = "SELECT " EXEC_COLS " FROM executions WHERE status = ?6" LIST_TAIL,
    [ST_LIST_WF_STATUS] = "SELECT " EXEC_COLS " FROM executions"
                          " WHERE workflow = ?5 AND status = ?6" LIST_TAIL,
    [ST_LIST_ANY_RANGE] = LIST_RANGE LIST_RANGE_TAIL,
    [ST_LIST_WF_RANGE] = LIST_RANGE " AND workflow = ?5" LIST_RANGE_TAIL,
    [ST_LIST_STATUS_RANGE] = LIST_RANGE " AND status = ?6" LIST_RANGE_TAIL,
    [ST_LIST_WF_STATUS_RANGE] = LIST_RANGE " AND workflow = ?5 AND status = ?6" LIST_RANGE_TAIL,
    /* A range of the primary key (hour, status). */
    [ST_HOURLY] = "SELECT hour, status, n FROM executions_hourly WHERE hour >= ?1 AND hour <= ?2"
                  " AND n <> 0 ORDER BY hour, status LIMIT ?3",
    /* The children of one execution (index executions_parent). */
    [ST_LIST_PARENT] = "SELECT " EXEC_COLS " FROM executions WHERE parent_id = ?7"
                       " AND (?5 IS NULL OR workflow = ?5) AND (?6 IS NULL OR status = ?6)"
                       LIST_TAIL,
    /* Not "SELECT 1", which SQLite answers without reading the file. */
    [ST_PING] = "SELECT count(*) FROM schema_version",
    /* A delete marks every version, so "newest version not deleted" is this. */
    [ST_WF_LIST] = "SELECT w.name, w.version, w.definition, w.created_at FROM workflows w"
                   " WHERE w.deleted_at IS NULL AND w.version ="
                   " (SELECT max(v.version) FROM workflows v WHERE v.name = w.name)"
                   " ORDER BY w.name",
    [ST_WF_DELETE] = "UPDATE workflows SET deleted_at = ?2 WHERE name = ?1 AND deleted_at IS NULL",
    [ST_IDEM_GET] = "SELECT execution_id FROM idempotency_keys WHERE workflow = ?1 AND key = ?2",
    [ST_IDEM_PUT] = "INSERT INTO idempotency_keys (workflow, key, execution_id, created_at)"
                    " VALUES (?1, ?2, ?3, ?4)",
    [ST_KEY_INSERT] =
        "INSERT INTO api_keys (" KEY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_KEY_BY_PREFIX] = "SELECT " KEY_COLS " FROM api_keys WHERE prefix = ?1",
    [ST_KEYS_LIST] = "SELECT " KEY_COLS " FROM api_keys ORDER BY created_at DESC, id DESC",
    /*
     * A revoked key keeps its first revocation time, and still counts as a
     * match (an UPDATE counts the rows it matched, changed or not), so
     * revoking twice is not "no such key".
     */
    [ST_KEY_REVOKE_ID] = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2) WHERE id = ?1",
    [ST_KEY_REVOKE_NAME] = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?2)"
                           " WHERE name = ?1",
    /* Never backwards: API threads on their own connections may touch out of order. */
    [ST_KEY_TOUCH] = "UPDATE api_keys SET last_used_at ="
                     " CASE WHEN last_used_at > ?2 THEN last_used_at ELSE ?2 END WHERE id = ?1",
    [ST_SESSION_INSERT] =
        "INSERT INTO sessions (" SESSION_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_SESSION_GET] = "SELECT " SESSION_COLS " FROM sessions WHERE token_hash = ?1",
    [ST_SESSION_TOUCH] = "UPDATE sessions SET last_seen_at ="
                         " CASE WHEN last_seen_at > ?2 THEN last_seen_at ELSE ?2 END"
                         " WHERE token_hash = ?1",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE token_hash = ?1",
    [ST_SESSIONS_PURGE] = "DELETE FROM sessions WHERE expires_at <= ?1"
                          " OR key_id IN (SELECT id FROM api_keys WHERE revoked_at IS NOT NULL)",
    [ST_PURGE_WF] = PURGE_HEAD " AND workflow = ?5" PURGE_TAIL,
    [ST_PURGE_ALL] = PURGE_HEAD PURGE_TAIL,
    /*
     * 'queued' is written out, not bound: only a literal lets the planner
     * match the partial index task_runs_queued (WHERE status = 'queued').
     * The LEFT JOIN keeps task_runs the outer loop (SQLite does not reorder
     * it), so the plan can never become a walk over every execution; every
     * task run has its execution anyway.
     */
    [ST_COUNTS_QUEUED] =
        "SELECT count(*), min(coalesce(t.available_at, e.started_at, e.created_at))"
        " FROM task_runs t LEFT JOIN executions e ON e.id = t.execution_id"
        " WHERE t.status = 'queued'",
    [ST_COUNTS_RUNNING] = "SELECT count(*), min(started_at) FROM executions WHERE status = ?1",
    [ST_TASKS_PAGE] = "SELECT idx, name, status, attempt, available_at, started_at,"
                      " finished_at, error, output, group_idx, item_index, item, child_id,"
                      " queued_at FROM task_runs WHERE execution_id = ?1 AND idx > ?2"
                      " AND (?3 < 0 OR group_idx = ?3) AND (?4 = 0 OR group_idx IS NULL)"
                      " AND (?5 IS NULL OR status = ?5) ORDER BY idx LIMIT ?6",
    [ST_ATTEMPTS_RANGE] = "SELECT task_idx, number, status, node, pid, pgid, proc_start,"
                          " started_at, finished_at, exit_code, signal, error, queued_at"
                          " FROM attempts WHERE execution_id = ?1 AND task_idx BETWEEN ?2 AND ?3"
                          " ORDER BY task_idx, number",
    [ST_GROUP_COUNTS] = "SELECT group_idx, status, count(*) FROM task_runs"
                        " WHERE execution_id = ?1 AND group_idx IS NOT NULL"
                        " GROUP BY group_idx, status ORDER BY group_idx, status",
    /*
     * Cancels asked by another orch process on this data directory, read by
     * the owner's engine (see engine__cancel_poll): a search of the
     * executions_status_id index for the unfinished ones only, however long
     * the history.
     */
    [ST_CANCEL_REQUEST] = "UPDATE executions SET cancel_requested_at = ?2 WHERE id = ?1"
                          " AND status IN ('queued', 'running')",
    [ST_CANCEL_REQUESTS] = "SELECT id FROM executions WHERE status IN ('queued', 'running')"
                           " AND cancel_requested_at IS NOT NULL",
    /* The UNIQUE (workflow, name) index yields this order. */
    [ST_SCHED_LIST] = "SELECT " SCHED_COLS " FROM schedules ORDER BY workflow, name",
    [ST_SCHED_GET] = "SELECT " SCHED_COLS " FROM schedules WHERE id = ?1",
    /*
     * "excluded" is the row that was proposed, in SQLite and PostgreSQL
     * alike; the row in place keeps its id and created_at.
     */
    [ST_SCHED_UPSERT] = "INSERT INTO schedules (" SCHED_COLS ")"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                        " ON CONFLICT (workflow, name) DO UPDATE SET"
                        " from_api = excluded.from_api, spec = excluded.spec,"
                        " spec_hash = excluded.spec_hash, paused = excluded.paused,"
                        " next_fire_at = excluded.next_fire_at,"
                        " last_fire_at = excluded.last_fire_at, updated_at = excluded.updated_at",
    [ST_SCHED_OF_WF] = "SELECT id, name FROM schedules WHERE workflow = ?1 AND from_api = 0",
    [ST_SCHED_DELETE] = "DELETE FROM schedules WHERE id = ?1",
    [ST_SCHED_PAUSE] = "UPDATE schedules SET paused = ?2, updated_at = ?3 WHERE id = ?1",
    [ST_SCHED_STATE] = "UPDATE schedules SET spec_hash = ?2, next_fire_at = ?3,"
                       " last_fire_at = ?4, updated_at = ?5 WHERE id = ?1",
    [ST_FIRES_DELETE] = "DELETE FROM schedule_fires WHERE schedule_id = ?1",
    [ST_FIRE_INSERT] = "INSERT INTO schedule_fires (" FIRE_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                       " ON CONFLICT (schedule_id, scheduled_for) DO UPDATE SET" FIRE_REPLACE,
    [ST_FIRE_EXISTS] = "SELECT count(*) FROM schedule_fires"
                       " WHERE schedule_id = ?1 AND scheduled_for = ?2",
    /* A descending walk of the primary key (schedule_id, scheduled_for). */
    [ST_FIRES_LIST] = "SELECT " FIRE_COLS " FROM schedule_fires WHERE schedule_id = ?1"
                      " ORDER BY scheduled_for DESC LIMIT ?2",
    [ST_FIRE_GET] = "SELECT " FIRE_COLS " FROM schedule_fires"
                    " WHERE schedule_id = ?1 AND scheduled_for = ?2",
    /* The partial index schedule_fires_queued, in order. */
    [ST_FIRES_QUEUED] = "SELECT scheduled_for FROM schedule_fires WHERE schedule_id = ?1"
                        " AND status = 'queued' ORDER BY scheduled_for LIMIT ?2",
};

struct sqlite_store {
    struct store base; /* first: a struct store * converts to this */
    sqlite3 *db;
    char *path;
    char *qpath; /* 'path', for messages (base.where_msg) */
    unsigned flags;
    sqlite3_stmt *stmts[ST_COUNT];
};

static struct sqlite_store *sq(struct store *st)
{
    return (struct sqlite_store *)st;
}

/*
 * Fill `err` from the connection's last error: "<what>: <sqlite message>".
 * Call it right after the failing call: the code is read from the connection
 * (`rc` is used only when there is none), which also covers failures of
 * several binds whose result codes were OR-ed together. Returns the ERR_* code.
 */
static int sq_fail(struct sqlite_store *s, int rc, struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int sq_fail(struct sqlite_store *s, int rc, struct err *err, const char *fmt, ...)
{
    char what[ERR_MSG_MAX];
    const char *msg = s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    va_list ap;

    if (s->db)
        rc = sqlite3_extended_errcode(s->db);
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return err_set(err, ERR_BUSY, "%s: %s (another connection held it for more than %d ms)",
                       what, msg, SQLITE_BUSY_MS);
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
            return err_set(err, ERR_CONFLICT, "%s: %s", what, msg);
        break;
    case SQLITE_TOOBIG:
        return err_set(err, ERR_TOO_BIG, "%s: %s", what, msg);
    case SQLITE_FULL:
        return err_set(err, ERR_FULL, "disk full: %s: no space left (%s: %s)", s->path, what, msg);
    case SQLITE_IOERR:
        if (s->db && (sqlite3_system_errno(s->db) == ENOSPC ||
                      sqlite3_system_errno(s->db) == EDQUOT))
            return err_set(err, ERR_FULL, "disk full: %s: no space left (%s: %s)", s->path, what,
                           msg);
        break;
    }
    return err_set(err, ERR_STORE, "%s: %s", what, msg);
}

/*
 * The purge that keeps the workflows bound to ?5 .. ?(4 + cap): the text is
 * made of placeholders only, never of names.
 */
static char *purge_except_sql(int cap)
{
    struct strbuf sb = STRBUF_INIT;

    strbuf_adds(&sb, PURGE_HEAD " AND workflow NOT IN (");
    for (int i = 0; i < cap; i++)
        strbuf_addf(&sb, "%s?%d", i ? ", " : "", PURGE_FIRST_NAME + i);
    strbuf_adds(&sb, ")" PURGE_TAIL);
    return strbuf_detach(&sb, NULL);
}

/* The cached statement `id`, prepared on first use. */
static int sq_stmt(struct sqlite_store *s, enum stmt_id id, sqlite3_stmt **out, struct err *err)
{
    char *built = NULL;
    const char *sql = stmt_sql[id];
    int rc;

    *out = s->stmts[id];
    if (*out)
        return 0;
    if (!sql && id >= ST_PURGE_EXCEPT_1 && id <= ST_PURGE_EXCEPT_64)
        sql = built = purge_except_sql(1 << (id - ST_PURGE_EXCEPT_1));
    if (!sql)
        BUG("no SQL for statement %d", (int)id);
    rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[id], NULL);
    free(built);
    if (rc != SQLITE_OK) {
        s->stmts[id] = NULL;
        return sq_fail(s, rc, err, "cannot prepare statement %d of '%s'", (int)id, s->path);
    }
    *out = s->stmts[id];
    return 0;
}

/* Make a statement ready for its next use; borrowed bound strings are dropped. */
static void sq_done(sqlite3_stmt *stmt)
{
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
}

/* Step a statement that returns no rows; SQLITE_OK when it ran to the end. */
static int sq_step_done(sqlite3_stmt *stmt)
{
    int rc = sqlite3_step(stmt);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Run a cached statement without parameters or rows (BEGIN, COMMIT, ...). */
static int sq_run(struct sqlite_store *s, enum stmt_id id, const char *what, struct err *err)
{
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, id, &stmt, err);

    if (rc)
        return rc;
    rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot %s in '%s'", what, s->path);
    sq_done(stmt);
    return rc;
}

/*
 * Bind helpers. Strings are bound SQLITE_STATIC: they are the caller's and
 * stay valid until sq_done() clears the bindings before the function returns.
 * Each returns a SQLite result code; callers OR them together (SQLITE_OK is
 * 0) and read the reason from the connection.
 */
static int bind_text(sqlite3_stmt *stmt, int i, const char *s)
{
    if (!s)
        return sqlite3_bind_null(stmt, i);
    return sqlite3_bind_text(stmt, i, s, -1, SQLITE_STATIC);
}

static int bind_i64(sqlite3_stmt *stmt, int i, int64_t v)
{
    return sqlite3_bind_int64(stmt, i, v);
}

/* Bind NULL when `v` is the "not set" value `none`. */
static int bind_opt(sqlite3_stmt *stmt, int i, int64_t v, int64_t none)
{
    if (v == none)
        return sqlite3_bind_null(stmt, i);
    return sqlite3_bind_int64(stmt, i, v);
}

static int bind_fail(struct sqlite_store *s, struct err *err, const char *what, const char *id)
{
    return sq_fail(s, sqlite3_errcode(s->db), err, "cannot bind %s of '%s'", what, id);
}

/*
 * The row readers of the shared decoders (rows.c) over the current row of a
 * stepped statement.
 */
struct sq_row {
    struct store__row base;
    sqlite3_stmt *stmt;
};

static sqlite3_stmt *row_stmt(const struct store__row *r)
{
    return ((const struct sq_row *)r)->stmt;
}

static int row_is_null(const struct store__row *r, int col)
{
    return sqlite3_column_type(row_stmt(r), col) == SQLITE_NULL;
}

static int64_t row_i64(const struct store__row *r, int col)
{
    return sqlite3_column_int64(row_stmt(r), col);
}

static const char *row_text(const struct store__row *r, int col, size_t *out_len)
{
    const unsigned char *t = sqlite3_column_text(row_stmt(r), col);

    *out_len = t ? (size_t)sqlite3_column_bytes(row_stmt(r), col) : 0;
    return (const char *)t;
}

static unsigned char *row_blob(const struct store__row *r, int col, size_t *out_len)
{
    /* Read the blob before its length: the order sqlite3_column_bytes() documents. */
    const void *data = sqlite3_column_blob(row_stmt(r), col);
    int len = sqlite3_column_bytes(row_stmt(r), col);
    unsigned char *copy = xmalloc((size_t)len + 1);

    if (len > 0)
        memcpy(copy, data, (size_t)len);
    copy[len] = '\0';
    *out_len = (size_t)len;
    return copy;
}

/* The current row of `stmt` as the decoders read it (valid in its full expression). */
#define SQ_ROW(s, stmt)                                                                            \
    (&(struct sq_row){{row_is_null, row_i64, row_text, row_blob, (s)->base.where_msg}, (stmt)}.base)

static char *col_str(struct sqlite_store *s, sqlite3_stmt *stmt, int i)
{
    return store__col_str(SQ_ROW(s, stmt), i);
}

/* --- transactions --- */

static int sqlite_begin(struct store *st, struct err *err)
{
    return sq_run(sq(st), ST_BEGIN, "begin a write transaction", err);
}

static int sqlite_commit(struct store *st, struct err *err)
{
    return sq_run(sq(st), ST_COMMIT, "commit", err);
}

static void sqlite_rollback(struct store *st)
{
    struct sqlite_store *s = sq(st);

    /* Some failures (disk full, I/O) end the transaction already. */
    if (sqlite3_get_autocommit(s->db))
        return;
    if (sq_run(s, ST_ROLLBACK, "roll back", NULL) != 0)
        log_error("store", "cannot roll back in '%s': %s", s->path, sqlite3_errmsg(s->db));
}

/*
 * Start a read snapshot if no transaction is open, so the several queries of
 * one read see the same committed state. *began says whether to end it.
 */
static int sqlite_begin_read(struct store *st, struct err *err)
{
    return sq_run(sq(st), ST_BEGIN_READ, "begin a read", err);
}

static int sqlite_in_transaction(struct store *st)
{
    return !sqlite3_get_autocommit(sq(st)->db);
}

/* --- schema --- */

static int sq_read_version(struct sqlite_store *s, int *out, struct err *err)
{
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_VERSION, &stmt, err);

    if (rc)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int(stmt, 0);
        rc = 0;
    } else {
        rc = sq_fail(s, rc, err, "cannot read the schema version of '%s'", s->path);
    }
    sq_done(stmt);
    return rc;
}

static int sqlite_schema_version(struct store *st, int *out, struct err *err)
{
    return sq_read_version(sq(st), out, err);
}

static int sqlite_exec_script(struct store *st, const char *sql, const char *what, struct err *err)
{
    struct sqlite_store *s = sq(st);

    /* DDL without parameters: sqlite3_exec() prepares each statement of the script. */
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, sqlite3_errcode(s->db), err, "%s", what);
    return 0;
}

static int sqlite_version_record(struct store *st, int version, int64_t now, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_VERSION_INSERT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_i64(stmt, 1, version) | bind_i64(stmt, 2, now);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot record schema version %d in '%s'", version, s->path);
    sq_done(stmt);
    return rc;
}

static int sqlite_version_table_exists(struct store *st, int *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_HAS_VERSION_TABLE, &stmt, err);

    if (rc)
        return rc;
    rc = sqlite3_step(stmt);
    *out = rc == SQLITE_ROW && sqlite3_column_int(stmt, 0) > 0;
    if (rc != SQLITE_ROW)
        rc = sq_fail(s, rc, err, "cannot read the schema of '%s'", s->path);
    else
        rc = 0;
    sq_done(stmt);
    return rc;
}

/* --- open and close --- */

static void sqlite_close(struct store *st)
{
    struct sqlite_store *s = sq(st);

    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    /* Closing rolls back an open transaction. */
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        log_error("store", "cannot close '%s': %s", s->path, sqlite3_errmsg(s->db));
    free(s->path);
    free(s->qpath);
    free(s);
}

/*
 * ORCH_SQLITE_SYNC: `full` (the default) syncs the WAL at every commit, so a
 * commit survives a power loss or a kernel panic; `normal` syncs only at
 * checkpoints, so a commit survives a crash of the process but the last ones
 * may be lost to a power loss.
 */
static int sq_sync_pragma(const char **out, struct err *err)
{
    const char *v = getenv("ORCH_SQLITE_SYNC");

    if (!v || !*v || !strcmp(v, "full")) {
        *out = "PRAGMA synchronous = FULL";
        return 0;
    }
    if (!strcmp(v, "normal")) {
        *out = "PRAGMA synchronous = NORMAL";
        return 0;
    }
    return err_set(err, ERR_INVALID, "invalid ORCH_SQLITE_SYNC '%s' (want 'normal' or 'full')", v);
}

static int sq_set_wal(struct sqlite_store *s, struct err *err)
{
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &stmt, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(stmt, 0);
        /* Not fatal: the store works, only readers wait for the writer. */
        if (!mode || strcmp(mode, "wal") != 0)
            log_warn("store", "cannot use WAL mode for '%s' (journal mode is %s)", s->path,
                     mode ? mode : "unknown");
        rc = 0;
    } else {
        rc = sq_fail(s, rc, err, "cannot open database '%s'", s->path);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* Connection settings; the pragmas take no values from outside. */
static int sq_configure(struct sqlite_store *s, struct err *err)
{
    const char *sync = NULL;
    int rc;

    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, SQLITE_BUSY_MS);
    if (sqlite3_exec(s->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, sqlite3_errcode(s->db), err, "cannot open database '%s'", s->path);
    if (s->flags & STORE_READONLY)
        return 0;
    rc = sq_sync_pragma(&sync, err);
    if (rc)
        return rc;
    rc = sq_set_wal(s, err);
    if (rc)
        return rc;
    if (sqlite3_exec(s->db, sync, NULL, NULL, NULL) != SQLITE_OK)
        return sq_fail(s, sqlite3_errcode(s->db), err, "cannot open database '%s'", s->path);
    /*
     * No checkpoint when the last connection closes: a short-lived `orch run`
     * would otherwise pay three fsyncs at exit. The WAL is checkpointed by the
     * automatic checkpoint (every 1000 pages) instead, and kept between runs.
     */
    sqlite3_db_config(s->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    return 0;
}

/*
 * The database holds task output and key hashes: its files are the owner's
 * only. Create it 0600 before SQLite does (which would use 0644; its -wal and
 * -shm files take the database's mode), and close an older one's mode.
 *
 * Never open and close an existing database file here: closing any
 * descriptor of a file drops every POSIX lock this process holds on it, so
 * the other connections of the process (the engine's, the HTTP threads')
 * would lose their locks (read snapshots, the writer's lock) behind SQLite's
 * back. Only a file that does not exist yet is created (O_EXCL); then no
 * connection of ours can hold a lock on it.
 */
static void sq_private_files(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char name[PATH_MAX + 16];
    struct stat sb;

    if (lstat(path, &sb) != 0 && errno == ENOENT) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(name, sizeof(name), "%s%s", path, suffixes[i]);
        if (lstat(name, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_uid == geteuid() &&
            (sb.st_mode & 077))
            chmod(name, sb.st_mode & 0700);
    }
}

/* SQL orch_now_ms(): the wall-clock milliseconds of base/clock.h, so node
 * heartbeats and stops are stamped by the same clock as everything else (a
 * test's manual clock included). Not deterministic: never in the schema. */
static void sq_now_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    sqlite3_result_int64(ctx, clock_now_ms());
}

static int sq_register_now(struct sqlite_store *s, struct err *err)
{
    int rc = sqlite3_create_function_v2(s->db, "orch_now_ms", 0, SQLITE_UTF8, NULL, sq_now_fn, NULL,
                                        NULL, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, rc, err, "cannot register orch_now_ms() on '%s'", s->path);
    return 0;
}

/*
 * A statement inside a transaction keeps the pages it changes in a statement
 * journal, so that it alone can be undone. SQLite moves that journal to a
 * temporary file once it passes 64 KiB, and the engine's group commit (many
 * submissions in one transaction) passed it at every turn: a file created,
 * written page by page and unlinked per commit, most of the commit's system
 * calls. It lives for one transaction: keep it in memory.
 */
static void sq_configure_library(void)
{
    sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, -1);
}

static int sqlite_open(const char *path, unsigned flags, struct store **out, struct err *err)
{
    static pthread_once_t library_once = PTHREAD_ONCE_INIT;
    struct sqlite_store *s;
    int oflags = SQLITE_OPEN_NOMUTEX;
    struct stat sb;
    int rc;

    *out = NULL;
    pthread_once(&library_once, sq_configure_library);
    if (!(flags & STORE_CREATE) && stat(path, &sb) != 0) {
        int e = errno;
        if (e == ENOENT)
            return err_set(err, ERR_NOT_FOUND, "no database at '%s'", path);
        return err_set(err, ERR_IO, "cannot open database '%s': %s", path, strerror(e));
    }
    if (flags & STORE_READONLY)
        oflags |= SQLITE_OPEN_READONLY;
    else
        oflags |= SQLITE_OPEN_READWRITE | ((flags & STORE_CREATE) ? SQLITE_OPEN_CREATE : 0);

    if (!(flags & STORE_READONLY))
        sq_private_files(path);
    s = xcalloc(1, sizeof(*s));
    s->base.be = &store__sqlite_backend;
    s->path = xstrdup(path);
    s->qpath = xasprintf("'%s'", path);
    s->base.where_msg = s->qpath;
    s->flags = flags;
    rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        /* The handle exists even on failure (unless out of memory) and holds the message. */
        rc = sq_fail(s, rc, err, "cannot open database '%s'", path);
        goto out;
    }
    rc = sq_configure(s, err);
    if (rc == 0)
        rc = sq_register_now(s, err);
out:
    return store__open_finish(&s->base, flags, rc, out, err);
}

/* --- workflows --- */

static int sqlite_workflow_read(struct store *st, const char *name, int version,
                                struct workflow_row *out, int *out_deleted, int *out_found,
                                struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc;

    rc = sq_stmt(s, version ? ST_WF_GET : ST_WF_NEWEST, &stmt, err);
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, name);
    if (rc == SQLITE_OK && version)
        rc = bind_i64(stmt, 2, version);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out_found = 1;
        out->version = sqlite3_column_int(stmt, 0);
        out->definition = col_str(s, stmt, 1);
        *out_deleted = sqlite3_column_type(stmt, 2) != SQLITE_NULL;
        out->created_at = sqlite3_column_int64(stmt, 3);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = sq_fail(s, rc, err, "cannot read workflow '%s'", name);
    }
    sq_done(stmt);
    return rc;
}

static int sqlite_workflow_insert(struct store *st, const char *name, int version,
                                  const char *definition, int64_t now, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_WF_INSERT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, name) | bind_i64(stmt, 2, version) | bind_text(stmt, 3, definition) |
         bind_i64(stmt, 4, now);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot insert version %d of workflow '%s'", version, name);
    sq_done(stmt);
    return rc;
}

/* --- executions --- */

static int sqlite_execution_insert(struct store *st, const struct exec_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_EXEC_INSERT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->id) | bind_text(stmt, 2, row->workflow) |
         bind_i64(stmt, 3, row->workflow_version) |
         bind_text(stmt, 4, exec_status_name(row->status)) |
         bind_text(stmt, 5, row->params ? row->params : "{}") | bind_i64(stmt, 6, row->created_at) |
         bind_opt(stmt, 7, row->started_at, 0) | bind_opt(stmt, 8, row->finished_at, 0) |
         bind_text(stmt, 9, row->error) | bind_text(stmt, 10, row->schedule_id) |
         bind_opt(stmt, 11, row->scheduled_for, 0) | bind_text(stmt, 12, row->owner) |
         bind_text(stmt, 13, row->parent_id) |
         (row->parent_id ? bind_i64(stmt, 14, row->parent_task_idx)
                         : sqlite3_bind_null(stmt, 14)) |
         bind_i64(stmt, 15, row->depth) | bind_opt(stmt, 16, row->retried_at, 0);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot insert execution '%s'", row->id);
    sq_done(stmt);
    return rc;
}

static int sqlite_execution_update(struct store *st, const struct exec_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_EXEC_UPDATE, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->id) | bind_text(stmt, 2, exec_status_name(row->status)) |
         bind_opt(stmt, 3, row->started_at, 0) | bind_opt(stmt, 4, row->finished_at, 0) |
         bind_text(stmt, 5, row->error) | bind_text(stmt, 6, row->schedule_id) |
         bind_opt(stmt, 7, row->scheduled_for, 0) | bind_opt(stmt, 8, row->retried_at, 0);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot update execution '%s'", row->id);
    else if (sqlite3_changes(s->db) == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no execution '%s'", row->id);
    sq_done(stmt);
    return rc;
}

/* --- task runs and attempts --- */

static int sqlite_task_run_insert(struct store *st, const char *exec_id,
                                  const struct task_run_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_TASK_INSERT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id) | bind_i64(stmt, 2, row->idx) | bind_text(stmt, 3, row->name) |
         bind_text(stmt, 4, task_status_name(row->status)) | bind_i64(stmt, 5, row->attempt) |
         bind_opt(stmt, 6, row->available_at, 0) | bind_opt(stmt, 7, row->started_at, 0) |
         bind_opt(stmt, 8, row->finished_at, 0) | bind_text(stmt, 9, row->error) |
         bind_text(stmt, 10, row->output) |
         (row->instance ? bind_i64(stmt, 11, row->group_idx) | bind_i64(stmt, 12, row->item_index)
                        : sqlite3_bind_null(stmt, 11) | sqlite3_bind_null(stmt, 12)) |
         bind_text(stmt, 13, row->item) | bind_text(stmt, 14, row->child_id) |
         bind_opt(stmt, 15, row->queued_at, 0);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot insert task '%s' of %s", row->name, exec_id);
    sq_done(stmt);
    return rc;
}

/*
 * After a fenced update changed nothing: say whether the row is missing or
 * holds another attempt.
 */
static int sq_task_conflict(struct sqlite_store *s, const char *exec_id,
                            const struct task_run_row *row, int expected, struct err *err)
{
    const char *name = row->name ? row->name : "?";
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_TASK_ATTEMPT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id) | bind_i64(stmt, 2, row->idx);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rc = err_set(err, ERR_CONFLICT,
                     "stale attempt %d for task '%s' (%d) of %s: the current attempt is %d",
                     expected, name, row->idx, exec_id, sqlite3_column_int(stmt, 0));
    else if (rc == SQLITE_DONE)
        rc = err_set(err, ERR_NOT_FOUND, "no task %d ('%s') in %s", row->idx, name, exec_id);
    else
        rc = sq_fail(s, rc, err, "cannot update task '%s' of %s", name, exec_id);
    sq_done(stmt);
    return rc;
}

static int sqlite_task_run_update(struct store *st, const char *exec_id,
                                  const struct task_run_row *row, int expected_attempt,
                                  struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int changed = 0;
    int rc = sq_stmt(s, ST_TASK_UPDATE, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id) | bind_i64(stmt, 2, row->idx) |
         bind_text(stmt, 3, task_status_name(row->status)) | bind_i64(stmt, 4, row->attempt) |
         bind_opt(stmt, 5, row->available_at, 0) | bind_opt(stmt, 6, row->started_at, 0) |
         bind_opt(stmt, 7, row->finished_at, 0) | bind_text(stmt, 8, row->error) |
         bind_i64(stmt, 9, expected_attempt) | bind_text(stmt, 10, row->output) |
         bind_text(stmt, 11, row->child_id) | bind_opt(stmt, 12, row->queued_at, 0);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot update task '%s' of %s", row->name ? row->name : "?",
                     exec_id);
    else
        changed = sqlite3_changes(s->db);
    sq_done(stmt);
    if (rc == 0 && changed == 0)
        rc = sq_task_conflict(s, exec_id, row, expected_attempt, err);
    return rc;
}

static int sqlite_attempt_insert(struct store *st, const char *exec_id,
                                 const struct attempt_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_ATTEMPT_INSERT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id) | bind_i64(stmt, 2, row->task_idx) |
         bind_i64(stmt, 3, row->number) | bind_text(stmt, 4, attempt_status_name(row->status)) |
         bind_text(stmt, 5, row->node) | bind_opt(stmt, 6, row->pid, 0) |
         bind_opt(stmt, 7, row->pgid, 0) | bind_opt(stmt, 8, row->proc_start, 0) |
         bind_opt(stmt, 9, row->started_at, 0) | bind_opt(stmt, 10, row->finished_at, 0) |
         bind_opt(stmt, 11, row->exit_code, -1) | bind_opt(stmt, 12, row->signal, 0) |
         bind_text(stmt, 13, row->error) | bind_opt(stmt, 14, row->queued_at, 0);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot insert attempt %d of task %d of %s", row->number,
                     row->task_idx, exec_id);
    sq_done(stmt);
    return rc;
}

static int sqlite_attempt_update(struct store *st, const char *exec_id,
                                 const struct attempt_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_ATTEMPT_UPDATE, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id) | bind_i64(stmt, 2, row->task_idx) |
         bind_i64(stmt, 3, row->number) | bind_text(stmt, 4, attempt_status_name(row->status)) |
         bind_opt(stmt, 5, row->pid, 0) | bind_opt(stmt, 6, row->pgid, 0) |
         bind_opt(stmt, 7, row->proc_start, 0) | bind_opt(stmt, 8, row->finished_at, 0) |
         bind_opt(stmt, 9, row->exit_code, -1) | bind_opt(stmt, 10, row->signal, 0) |
         bind_text(stmt, 11, row->error) | bind_text(stmt, 12, row->node);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot update attempt %d of task %d of %s", row->number,
                     row->task_idx, exec_id);
    else if (sqlite3_changes(s->db) == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no attempt %d of task %d in %s", row->number,
                     row->task_idx, exec_id);
    sq_done(stmt);
    return rc;
}

/* --- logs --- */

static int sqlite_log_append(struct store *st, const char *exec_id, const struct log_chunk *chunk,
                             struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_LOG_APPEND, &stmt, err);

    if (rc)
        return rc;
    if (chunk->len > INT_MAX) {
        rc = err_set(err, ERR_TOO_BIG, "log chunk of task %d of %s is too big (%zu bytes)",
                     chunk->task_idx, exec_id, chunk->len);
        goto out;
    }
    /* A non-NULL pointer with length 0 binds an empty blob, not NULL. */
    rc = bind_text(stmt, 1, exec_id) | bind_i64(stmt, 2, chunk->task_idx) |
         bind_i64(stmt, 3, chunk->attempt) | bind_i64(stmt, 4, chunk->seq) |
         bind_text(stmt, 5, store__stream_name(chunk->stream)) | bind_i64(stmt, 6, chunk->ts) |
         sqlite3_bind_blob(stmt, 7, chunk->len ? chunk->data : "", (int)chunk->len, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot append log chunk %d of attempt %d of task %d of %s",
                     chunk->seq, chunk->attempt, chunk->task_idx, exec_id);
out:
    sq_done(stmt);
    return rc;
}

static int sqlite_log_trim(struct store *st, const char *exec_id, int task_idx, int attempt,
                           int below_seq, int stream, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_LOG_TRIM, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id) | bind_i64(stmt, 2, task_idx) | bind_i64(stmt, 3, attempt) |
         bind_i64(stmt, 4, below_seq) |
         bind_text(stmt, 5, stream == LOG_STREAM_STDOUT   ? "stdout"
                            : stream == LOG_STREAM_STDERR ? "stderr"
                                                          : NULL);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot trim the log of attempt %d of task %d of %s", attempt,
                     task_idx, exec_id);
    sq_done(stmt);
    return rc;
}

static int sqlite_logs_get(struct store *st, const char *exec_id, int task_idx, int attempt,
                           int after_seq, struct log_list *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    enum stmt_id id = attempt > 0 ? ST_LOGS_FOLLOW : task_idx >= 0 ? ST_LOGS_TASK : ST_LOGS_ALL;
    struct log_list list = {NULL, 0};
    size_t alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, id, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id);
    if (id != ST_LOGS_ALL)
        rc |= bind_i64(stmt, 2, task_idx);
    if (id == ST_LOGS_FOLLOW)
        rc |= bind_i64(stmt, 3, attempt) | bind_i64(stmt, 4, after_seq);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "log query", exec_id);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(list.items, alloc, list.n + 1);
        rc = store__decode_log_chunk(SQ_ROW(s, stmt), exec_id, &list.items[list.n], err);
        if (rc)
            goto out;
        list.n++;
    }
    if (rc != SQLITE_DONE)
        rc = sq_fail(s, rc, err, "cannot read the logs of %s", exec_id);
    else
        rc = 0;
out:
    sq_done(stmt);
    if (rc) {
        log_list_release(&list);
        return rc;
    }
    *out = list;
    return 0;
}

/* --- reads of executions --- */

/* The execution row of `id` into d->exec; ERR_NOT_FOUND if none. */
static int sq_get_exec(struct sqlite_store *s, const char *id, struct exec_detail *d,
                       struct err *err)
{
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_EXEC_GET, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rc = store__decode_exec(SQ_ROW(s, stmt), &d->exec, err);
    else if (rc == SQLITE_DONE)
        rc = err_set(err, ERR_NOT_FOUND, "no execution '%s'", id);
    else
        rc = sq_fail(s, rc, err, "cannot read execution '%s'", id);
    sq_done(stmt);
    return rc;
}

static int sq_get_tasks(struct sqlite_store *s, const char *id, struct exec_detail *d,
                        struct err *err)
{
    sqlite3_stmt *stmt;
    size_t alloc = 0;
    int rc = sq_stmt(s, ST_TASKS_OF_EXEC, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "task query", id);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(d->tasks, alloc, d->ntasks + 1);
        rc = store__decode_task_run(SQ_ROW(s, stmt), id, &d->tasks[d->ntasks], err);
        d->ntasks++; /* counted even on failure: exec_detail_free() releases it */
        if (rc)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot read the tasks of '%s'", id);
out:
    sq_done(stmt);
    return rc;
}

/* Append the attempts of a bound statement's rows to d. */
static int sq_attempt_rows(struct sqlite_store *s, sqlite3_stmt *stmt, const char *id,
                           struct exec_detail *d, struct err *err)
{
    size_t alloc = d->nattempts;
    int rc;

    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(d->attempts, alloc, d->nattempts + 1);
        rc = store__decode_attempt(SQ_ROW(s, stmt), id, &d->attempts[d->nattempts], err);
        d->nattempts++; /* counted even on failure: exec_detail_free() releases it */
        if (rc)
            return rc;
    }
    return rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot read the attempts of '%s'", id);
}

static int sq_get_attempts(struct sqlite_store *s, const char *id, struct exec_detail *d,
                           struct err *err)
{
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_ATTEMPTS_OF_EXEC, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "attempt query", id);
        goto out;
    }
    rc = sq_attempt_rows(s, stmt, id, d, err);
out:
    sq_done(stmt);
    return rc;
}

/* The task runs a page selects (see struct task_page). */
static int sq_page_tasks(struct sqlite_store *s, const char *id, const struct task_page *q,
                         struct exec_detail *d, struct err *err)
{
    sqlite3_stmt *stmt;
    size_t alloc = 0;
    int rc = sq_stmt(s, ST_TASKS_PAGE, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id) | bind_i64(stmt, 2, q->after_idx) |
         bind_i64(stmt, 3, q->group_idx) | bind_i64(stmt, 4, q->top_only) |
         bind_text(stmt, 5, q->status) | bind_i64(stmt, 6, q->limit > 0 ? q->limit : -1);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "task query", id);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(d->tasks, alloc, d->ntasks + 1);
        rc = store__decode_task_run(SQ_ROW(s, stmt), id, &d->tasks[d->ntasks], err);
        d->ntasks++; /* counted even on failure: exec_detail_free() releases it */
        if (rc)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot read the tasks of '%s'", id);
out:
    sq_done(stmt);
    return rc;
}

/* The attempts of the page's task runs (those of the idx range between). */
static int sq_page_attempts(struct sqlite_store *s, const char *id, struct exec_detail *d,
                            struct err *err)
{
    sqlite3_stmt *stmt;
    int rc;

    if (!d->ntasks)
        return 0;
    rc = sq_stmt(s, ST_ATTEMPTS_RANGE, &stmt, err);
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id) | bind_i64(stmt, 2, d->tasks[0].idx) |
         bind_i64(stmt, 3, d->tasks[d->ntasks - 1].idx);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "attempt query", id);
        goto out;
    }
    rc = sq_attempt_rows(s, stmt, id, d, err);
out:
    sq_done(stmt);
    return rc;
}

static int sq_group_counts(struct sqlite_store *s, const char *id, struct exec_detail *d,
                           struct err *err)
{
    sqlite3_stmt *stmt;
    size_t alloc = 0;
    int rc = sq_stmt(s, ST_GROUP_COUNTS, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "task count query", id);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(d->counts, alloc, d->ncounts + 1);
        rc = store__decode_group_count(SQ_ROW(s, stmt), &d->counts[d->ncounts], err);
        if (rc)
            goto out;
        d->ncounts++;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot count the tasks of '%s'", id);
out:
    sq_done(stmt);
    return rc;
}

/* The primitives of store__execution_get and _page (shared.c). */
static int sqlite_exec_read(struct store *st, const char *id, struct exec_detail *d,
                            struct err *err)
{
    return sq_get_exec(sq(st), id, d, err);
}

static int sqlite_tasks_read(struct store *st, const char *id, const struct task_page *q,
                             struct exec_detail *d, struct err *err)
{
    return q ? sq_page_tasks(sq(st), id, q, d, err) : sq_get_tasks(sq(st), id, d, err);
}

static int sqlite_attempts_read(struct store *st, const char *id, const struct task_page *q,
                                struct exec_detail *d, struct err *err)
{
    return q ? sq_page_attempts(sq(st), id, d, err) : sq_get_attempts(sq(st), id, d, err);
}

static int sqlite_group_counts(struct store *st, const char *id, struct exec_detail *d,
                               struct err *err)
{
    return sq_group_counts(sq(st), id, d, err);
}

/* The list statement for a filter, whether it takes a status, and the plan. */
static enum stmt_id list_stmt_id(const struct exec_filter *f, int by_status, int by_range)
{
    if (f->parent_id)
        return ST_LIST_PARENT;
    if (by_range && f->workflow)
        return by_status ? ST_LIST_WF_STATUS_RANGE : ST_LIST_WF_RANGE;
    if (by_range)
        return by_status ? ST_LIST_STATUS_RANGE : ST_LIST_ANY_RANGE;
    if (f->workflow)
        return by_status ? ST_LIST_WF_STATUS : ST_LIST_WF;
    return by_status ? ST_LIST_STATUS : ST_LIST_ANY;
}

/*
 * Bind the list parameters (see LIST_TAIL). With no cursor the id bound is a
 * blob: SQLite orders every TEXT value before every BLOB, so "id < X''" holds
 * for all ids and the index range still starts at the newest row.
 */
static int list_bind(sqlite3_stmt *stmt, const struct exec_filter *f, const char *status)
{
    int rc;

    if (f->before_id)
        rc = bind_text(stmt, 1, f->before_id);
    else
        rc = sqlite3_bind_zeroblob(stmt, 1, 0);
    rc |= bind_i64(stmt, 2, f->since ? f->since : INT64_MIN) |
          bind_i64(stmt, 3, f->until ? f->until : INT64_MAX) | bind_i64(stmt, 4, f->limit);
    if (f->workflow)
        rc |= bind_text(stmt, 5, f->workflow);
    if (status)
        rc |= bind_text(stmt, 6, status);
    if (f->parent_id)
        rc |= bind_text(stmt, 7, f->parent_id);
    return rc;
}

/* Run one list query and append its rows to `list` (the list_query primitive). */
static int sqlite_list_query(struct store *st, const struct exec_filter *f, const char *status,
                             int by_range, struct exec_list *list, size_t *alloc, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, list_stmt_id(f, status != NULL, by_range), &stmt, err);

    if (rc)
        return rc;
    if (list_bind(stmt, f, status) != SQLITE_OK) {
        rc = bind_fail(s, err, "execution list query", s->path);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(list->items, *alloc, list->n + 1);
        rc = store__decode_exec(SQ_ROW(s, stmt), &list->items[list->n], err);
        list->n++; /* counted even on failure: exec_list_release() releases it */
        if (rc)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot list executions in '%s'", s->path);
out:
    sq_done(stmt);
    return rc;
}

static int sqlite_executions_unfinished(struct store *st, char ***out_ids, size_t *out_n,
                                        struct err *err)
{
    struct sqlite_store *s = sq(st);
    char **ids = NULL;
    size_t n = 0;
    size_t alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_UNFINISHED, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_status_name(EXEC_QUEUED)) |
         bind_text(stmt, 2, exec_status_name(EXEC_RUNNING));
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "unfinished query", s->path);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(ids, alloc, n + 1);
        ids[n++] = col_str(s, stmt, 0);
    }
    rc = rc == SQLITE_DONE
             ? 0
             : sq_fail(s, rc, err, "cannot list unfinished executions in '%s'", s->path);
out:
    sq_done(stmt);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        return rc;
    }
    *out_ids = ids;
    *out_n = n;
    return 0;
}

/*
 * Cancel requests: one SQLite file is shared by the local orch processes on a
 * data directory (`orch run`, `orch resume`, `orch server`), and the one that
 * runs an execution cancels it when it reads the request. There is no node to
 * match: each engine acts only on the executions it runs.
 */
static int sq_update_by(struct sqlite_store *s, enum stmt_id id, const char *key, int64_t now,
                        int *changed, const char *what, struct err *err);

static int sqlite_execution_request_cancel(struct store *st, const char *id, int64_t now,
                                           struct err *err)
{
    int changed = 0;
    int rc = sq_update_by(sq(st), ST_CANCEL_REQUEST, id, now, &changed, "request the cancel of",
                          err);

    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_CONFLICT, "execution '%s' has already ended", id);
    return rc;
}

static int sqlite_cancel_requests(struct store *st, const char *node, char ***out_ids,
                                  size_t *out_n, struct err *err)
{
    struct sqlite_store *s = sq(st);
    char **ids = NULL;
    size_t n = 0, alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_CANCEL_REQUESTS, &stmt, err);

    (void)node;
    if (rc)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(ids, alloc, n + 1);
        ids[n++] = col_str(s, stmt, 0);
    }
    rc = rc == SQLITE_DONE ? 0
                           : sq_fail(s, rc, err, "cannot read cancel requests in '%s'", s->path);
    sq_done(stmt);
    if (rc) {
        for (size_t i = 0; i < n; i++)
            free(ids[i]);
        free(ids);
        return rc;
    }
    *out_ids = ids;
    *out_n = n;
    return 0;
}

/* --- server additions --- */

static int sqlite_ping(struct store *st, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_PING, &stmt, err);

    if (rc)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        rc = 0;
    else
        rc = sq_fail(s, rc, err, "cannot query '%s'", s->path);
    sq_done(stmt);
    return rc;
}

/*
 * Run an UPDATE whose parameters are ?1 a name or id and ?2 an instant;
 * *changed is the number of rows it matched. `what` completes "cannot ...".
 */
static int sq_update_by(struct sqlite_store *s, enum stmt_id id, const char *key, int64_t now,
                        int *changed, const char *what, struct err *err)
{
    sqlite3_stmt *stmt;
    int rc;

    *changed = 0;
    rc = sq_stmt(s, id, &stmt, err);
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, key) | bind_i64(stmt, 2, now);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK) {
        rc = sq_fail(s, rc, err, "cannot %s '%s'", what, key);
    } else {
        *changed = sqlite3_changes(s->db);
        rc = 0;
    }
    sq_done(stmt);
    return rc;
}

static int sqlite_workflows_list(struct store *st, struct workflow_row **out, size_t *out_n,
                                 struct err *err)
{
    struct sqlite_store *s = sq(st);
    struct workflow_row *rows = NULL;
    size_t n = 0;
    size_t alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_WF_LIST, &stmt, err);

    if (rc)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(rows, alloc, n + 1);
        store__decode_workflow(SQ_ROW(s, stmt), &rows[n++]);
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot list the workflows in '%s'", s->path);
    sq_done(stmt);
    if (rc) {
        workflow_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *out_n = n;
    return 0;
}

static int sqlite_workflow_delete(struct store *st, const char *name, int64_t now, struct err *err)
{
    int changed = 0;
    int rc = sq_update_by(sq(st), ST_WF_DELETE, name, now, &changed, "delete workflow", err);

    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no workflow '%s'", name);
    return rc;
}

/* --- idempotency keys --- */

static int sqlite_idempotency_get(struct store *st, const char *workflow, const char *key,
                                  char out_exec_id[ID_MAX], struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_IDEM_GET, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, workflow) | bind_text(stmt, 2, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(stmt, 0);
        size_t len = (size_t)sqlite3_column_bytes(stmt, 0);
        if (id && len > 0 && len < ID_MAX) {
            memcpy(out_exec_id, id, len);
            out_exec_id[len] = '\0';
            rc = 0;
        } else {
            rc =
                err_set(err, ERR_STORE, "bad execution id for idempotency key '%s' of '%s' in '%s'",
                        key, workflow, s->path);
        }
    } else if (rc == SQLITE_DONE) {
        rc = err_set(err, ERR_NOT_FOUND, "no execution for idempotency key '%s' of '%s'", key,
                     workflow);
    } else {
        rc = sq_fail(s, rc, err, "cannot read idempotency key '%s' of '%s'", key, workflow);
    }
    sq_done(stmt);
    return rc;
}

static int sqlite_idempotency_put(struct store *st, const char *workflow, const char *key,
                                  const char *exec_id, int64_t now, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_IDEM_PUT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, workflow) | bind_text(stmt, 2, key) | bind_text(stmt, 3, exec_id) |
         bind_i64(stmt, 4, now);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot record idempotency key '%s' of '%s' for %s", key, workflow,
                     exec_id);
    sq_done(stmt);
    return rc;
}

/* --- notifications (the outbox) --- */

static int sq_prepare(struct sqlite_store *s, const char *sql, sqlite3_stmt **out,
                      struct err *err);

/* Rows of a statement that returns STORE__NOTIFY_COLS, finalized here. */
static int sq_notify_rows(struct sqlite_store *s, sqlite3_stmt *stmt, int rc,
                          struct notify_row **out, size_t *out_n, const char *what,
                          struct err *err)
{
    struct notify_row *rows = NULL;
    size_t n = 0, alloc = 0;

    if (rc == SQLITE_OK)
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
            XGROW(rows, alloc, n + 1);
            if (store__decode_notify(SQ_ROW(s, stmt), &rows[n++], err)) {
                sqlite3_finalize(stmt);
                notify_rows_free(rows, n);
                return ERR_STORE;
            }
        }
    if (rc != SQLITE_DONE) {
        rc = sq_fail(s, rc, err, "cannot %s", what);
        sqlite3_finalize(stmt);
        notify_rows_free(rows, n);
        return rc;
    }
    sqlite3_finalize(stmt);
    *out = rows;
    *out_n = n;
    return 0;
}

static int sqlite_notify_insert(struct store *st, const struct notify_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s,
                        "INSERT INTO notifications (" STORE__NOTIFY_COLS ") VALUES (?1, ?2, ?3,"
                        " ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                        &stmt, err);
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->id) | bind_text(stmt, 2, row->exec_id) |
         bind_text(stmt, 3, row->workflow) | bind_text(stmt, 4, row->event) |
         bind_text(stmt, 5, row->request) | bind_text(stmt, 6, row->body) |
         bind_text(stmt, 7, notify_status_name(row->status)) | bind_i64(stmt, 8, row->attempts) |
         bind_i64(stmt, 9, row->next_at) | bind_text(stmt, 10, row->claimed_by) |
         bind_opt(stmt, 11, row->lease_until, 0) | bind_text(stmt, 12, row->last_error) |
         bind_opt(stmt, 13, row->response_code, 0) | bind_i64(stmt, 14, row->created_at) |
         bind_i64(stmt, 15, row->updated_at);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot record notification %s of %s", row->id, row->exec_id);
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_notify_claim(struct store *st, const char *node, int64_t now, int64_t lease_ms,
                               int take_own, int limit, struct notify_row **out, size_t *out_n,
                               struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s,
                        "UPDATE notifications SET status = 'sending', claimed_by = ?1,"
                        " lease_until = ?2 + ?3, updated_at = ?2 WHERE id IN (SELECT id FROM"
                        " notifications WHERE (status = 'pending' AND next_at <= ?2) OR"
                        " (status = 'sending' AND (lease_until <= ?2 OR ?4 = 2 OR"
                        " (?4 = 1 AND claimed_by = ?1))) ORDER BY next_at, id LIMIT ?5)"
                        " RETURNING " STORE__NOTIFY_COLS,
                        &stmt, err);
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, node) | bind_i64(stmt, 2, now) | bind_i64(stmt, 3, lease_ms) |
         bind_i64(stmt, 4, take_own) | bind_i64(stmt, 5, limit);
    return sq_notify_rows(s, stmt, rc, out, out_n, "claim notifications", err);
}

static int sqlite_notify_settle(struct store *st, const struct notify_row *row, const char *node,
                                struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s,
                        "UPDATE notifications SET status = ?3, attempts = ?4, next_at = ?5,"
                        " last_error = ?6, response_code = ?7, updated_at = ?8,"
                        " claimed_by = NULL, lease_until = NULL"
                        " WHERE id = ?1 AND claimed_by = ?2 AND status = 'sending'",
                        &stmt, err);
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->id) | bind_text(stmt, 2, node) |
         bind_text(stmt, 3, notify_status_name(row->status)) | bind_i64(stmt, 4, row->attempts) |
         bind_i64(stmt, 5, row->next_at) | bind_text(stmt, 6, row->last_error) |
         bind_opt(stmt, 7, row->response_code, 0) | bind_i64(stmt, 8, row->updated_at);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot record the attempt of notification %s", row->id);
    else if (sqlite3_changes(s->db) == 0)
        rc = err_set(err, ERR_CONFLICT, "notification %s is no longer held by node '%s'",
                     row->id, node);
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_notify_next(struct store *st, int64_t *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s,
                        "SELECT min(CASE WHEN status = 'pending' THEN next_at ELSE lease_until"
                        " END) FROM notifications WHERE status IN ('pending', 'sending')",
                        &stmt, err);
    if (rc)
        return rc;
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_type(stmt, 0) == SQLITE_NULL ? 0 : sqlite3_column_int64(stmt, 0);
        rc = 0;
    } else {
        rc = sq_fail(s, rc, err, "cannot read when the next notification is due");
    }
    sqlite3_finalize(stmt);
    return rc;
}

static int sqlite_notify_list(struct store *st, const char *exec_id, struct notify_row **out,
                              size_t *out_n, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s,
                        "SELECT " STORE__NOTIFY_COLS " FROM notifications WHERE execution_id = ?1"
                        " ORDER BY id",
                        &stmt, err);
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id);
    return sq_notify_rows(s, stmt, rc, out, out_n, "read the notifications", err);
}

/* --- API keys --- */

static int sqlite_key_insert(struct store *st, const struct key_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_KEY_INSERT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->id) | bind_text(stmt, 2, row->name) |
         bind_text(stmt, 3, row->prefix) |
         sqlite3_bind_blob(stmt, 4, row->hash, KEY_HASH_LEN, SQLITE_STATIC) |
         bind_i64(stmt, 5, row->scopes) | bind_i64(stmt, 6, row->created_at) |
         bind_opt(stmt, 7, row->expires_at, 0) | bind_opt(stmt, 8, row->last_used_at, 0) |
         bind_opt(stmt, 9, row->revoked_at, 0);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot insert key '%s' ('%s', prefix '%s')", row->id, row->name,
                     row->prefix);
    sq_done(stmt);
    return rc;
}

static int sqlite_key_get_by_prefix(struct store *st, const char *prefix, struct key_row *out,
                                    struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_KEY_BY_PREFIX, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, prefix);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        rc = store__decode_key(SQ_ROW(s, stmt), out, err);
        if (rc)
            memset(out, 0, sizeof(*out)); /* no half-read row */
    } else if (rc == SQLITE_DONE) {
        rc = err_set(err, ERR_NOT_FOUND, "no key with prefix '%s'", prefix);
    } else {
        rc = sq_fail(s, rc, err, "cannot read the key with prefix '%s'", prefix);
    }
    sq_done(stmt);
    return rc;
}

static int sqlite_keys_list(struct store *st, struct key_row **out, size_t *out_n, struct err *err)
{
    struct sqlite_store *s = sq(st);
    struct key_row *rows = NULL;
    size_t n = 0;
    size_t alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_KEYS_LIST, &stmt, err);

    if (rc)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(rows, alloc, n + 1);
        rc = store__decode_key(SQ_ROW(s, stmt), &rows[n], err);
        if (rc)
            break;
        n++;
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (rc > 0)
        rc = sq_fail(s, rc, err, "cannot list the keys in '%s'", s->path);
    sq_done(stmt);
    if (rc) {
        key_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *out_n = n;
    return 0;
}

/* By id first when it has the form of one; then by name, every key of that name. */
static int sqlite_key_revoke(struct store *st, const char *id_or_name, int looks_like_id,
                             int64_t now, struct err *err)
{
    struct sqlite_store *s = sq(st);
    int changed = 0;
    int rc = 0;

    if (looks_like_id)
        rc = sq_update_by(s, ST_KEY_REVOKE_ID, id_or_name, now, &changed, "revoke key", err);
    if (rc == 0 && changed == 0)
        rc = sq_update_by(s, ST_KEY_REVOKE_NAME, id_or_name, now, &changed, "revoke key", err);
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no key '%s'", id_or_name);
    return rc;
}

static int sqlite_key_touch(struct store *st, const char *id, int64_t now, struct err *err)
{
    int changed = 0;
    int rc = sq_update_by(sq(st), ST_KEY_TOUCH, id, now, &changed, "record the use of key", err);

    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no key '%s'", id);
    return rc;
}

/* --- web UI sessions --- */

static int sqlite_session_insert(struct store *st, const struct session_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SESSION_INSERT, &stmt, err);

    if (rc)
        return rc;
    rc = sqlite3_bind_blob(stmt, 1, row->token_hash, SESSION_HASH_LEN, SQLITE_STATIC) |
         sqlite3_bind_blob(stmt, 2, row->csrf_hash, SESSION_HASH_LEN, SQLITE_STATIC) |
         bind_text(stmt, 3, row->key_id) | bind_text(stmt, 4, row->key_prefix) |
         bind_i64(stmt, 5, row->created_at) | bind_i64(stmt, 6, row->expires_at) |
         bind_i64(stmt, 7, row->last_seen_at);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot record a session of key '%s'", row->key_id);
    sq_done(stmt);
    return rc;
}

static int sqlite_session_get(struct store *st, const unsigned char *token_hash,
                              struct session_row *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SESSION_GET, &stmt, err);

    if (rc)
        return rc;
    rc = sqlite3_bind_blob(stmt, 1, token_hash, SESSION_HASH_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        rc = store__decode_session(SQ_ROW(s, stmt), out, err);
        if (rc)
            memset(out, 0, sizeof(*out));
    } else if (rc == SQLITE_DONE) {
        rc = err_set(err, ERR_NOT_FOUND, "no such session");
    } else {
        rc = sq_fail(s, rc, err, "cannot read a session");
    }
    sq_done(stmt);
    return rc;
}

/* Run session statement `id` on (token_hash[, now]); ERR_NOT_FOUND if it changed no row. */
static int sq_session_by(struct sqlite_store *s, enum stmt_id id, const unsigned char *token_hash,
                         const int64_t *now, const char *what, struct err *err)
{
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, id, &stmt, err);

    if (rc)
        return rc;
    rc = sqlite3_bind_blob(stmt, 1, token_hash, SESSION_HASH_LEN, SQLITE_STATIC);
    if (rc == SQLITE_OK && now)
        rc = bind_i64(stmt, 2, *now);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot %s a session", what);
    else if (sqlite3_changes(s->db) == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no such session");
    sq_done(stmt);
    return rc;
}

static int sqlite_session_touch(struct store *st, const unsigned char *token_hash, int64_t now,
                                struct err *err)
{
    return sq_session_by(sq(st), ST_SESSION_TOUCH, token_hash, &now, "record the use of", err);
}

static int sqlite_session_delete(struct store *st, const unsigned char *token_hash,
                                 struct err *err)
{
    return sq_session_by(sq(st), ST_SESSION_DELETE, token_hash, NULL, "delete", err);
}

static int sqlite_sessions_purge(struct store *st, int64_t now, int *out_deleted, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SESSIONS_PURGE, &stmt, err);

    if (rc)
        return rc;
    rc = bind_i64(stmt, 1, now);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot delete the ended sessions in '%s'", s->path);
    else
        *out_deleted = sqlite3_changes(s->db);
    sq_done(stmt);
    return rc;
}

/* --- retention and visibility --- */

/* The purge statement for the arguments; *cap is how many names it binds. */
static enum stmt_id purge_stmt_id(int by_workflow, size_t nexcept, int *cap)
{
    int id = ST_PURGE_EXCEPT_1;

    *cap = 0;
    if (by_workflow)
        return ST_PURGE_WF;
    if (!nexcept)
        return ST_PURGE_ALL;
    if (nexcept > STORE_PURGE_EXCEPT_MAX)
        BUG("%zu names to keep out of the purge", nexcept);
    for (*cap = 1; (size_t)*cap < nexcept; *cap <<= 1)
        id++;
    return (enum stmt_id)id;
}

/*
 * Bind the purge parameters (see PURGE_HEAD). A list shorter than the
 * statement's room is padded with its last name: "NOT IN (a, b, b, b)" keeps
 * the same rows as "NOT IN (a, b)", and only 7 statements are ever prepared.
 */
static int purge_bind(sqlite3_stmt *stmt, const char *workflow, const char *const *except,
                      size_t nexcept, int cap, int64_t before, int batch)
{
    int rc = bind_i64(stmt, 1, before) | bind_i64(stmt, 2, batch) |
             bind_text(stmt, 3, exec_status_name(EXEC_QUEUED)) |
             bind_text(stmt, 4, exec_status_name(EXEC_RUNNING));

    if (workflow)
        rc |= bind_text(stmt, PURGE_FIRST_NAME, workflow);
    for (int i = 0; i < cap; i++) {
        size_t k = (size_t)i < nexcept ? (size_t)i : nexcept - 1;
        rc |= bind_text(stmt, PURGE_FIRST_NAME + i, except[k]);
    }
    return rc;
}

static int sqlite_executions_purge(struct store *st, const char *workflow,
                                   const char *const *except, size_t nexcept, int64_t before,
                                   int batch, int *out_deleted, struct err *err)
{
    struct sqlite_store *s = sq(st);
    int cap = 0;
    enum stmt_id id = purge_stmt_id(workflow != NULL, nexcept, &cap);
    sqlite3_stmt *stmt;
    int deleted = 0;
    int began;
    int rc;

    rc = store__write_begin(&s->base, &began, err);
    if (rc)
        return rc;
    rc = sq_stmt(s, id, &stmt, err);
    if (rc)
        goto out;
    rc = purge_bind(stmt, workflow, except, nexcept, cap, before, batch);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK) {
        rc = sq_fail(s, rc, err, "cannot purge executions from '%s'", s->path);
    } else {
        /* Rows deleted by the cascade are not counted: these are executions. */
        deleted = sqlite3_changes(s->db);
        rc = 0;
    }
    sq_done(stmt);
out:
    rc = store__write_end(&s->base, began, rc, err);
    if (rc == 0)
        *out_deleted = deleted;
    return rc;
}

/* One row of (count, min): *out_min is 0 when there was nothing to count. */
/* One row of (count, min): *out_min is 0 when there was nothing to count. */
static int sqlite_count_min(struct store *st, enum store__count which, int64_t *out_count,
                            int64_t *out_min, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc =
        sq_stmt(s, which == STORE__COUNT_QUEUED ? ST_COUNTS_QUEUED : ST_COUNTS_RUNNING, &stmt, err);

    if (rc)
        return rc;
    rc = which == STORE__COUNT_RUNNING ? bind_text(stmt, 1, exec_status_name(EXEC_RUNNING))
                                       : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out_count = sqlite3_column_int64(stmt, 0);
        *out_min = store__col_opt(SQ_ROW(s, stmt), 1, 0);
        rc = 0;
    } else {
        rc = sq_fail(s, rc, err, "cannot count the work in '%s'", s->path);
    }
    sq_done(stmt);
    return rc;
}

/* --- schedules --- */

static int sqlite_schedules_list(struct store *st, struct schedule_row **out, size_t *out_n,
                                 struct err *err)
{
    struct sqlite_store *s = sq(st);
    struct schedule_row *rows = NULL;
    size_t n = 0;
    size_t alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SCHED_LIST, &stmt, err);

    if (rc)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(rows, alloc, n + 1);
        rc = store__decode_schedule(SQ_ROW(s, stmt), &rows[n], err);
        n++; /* counted even on failure: schedule_rows_free() releases it */
        if (rc)
            break;
    }
    if (rc == SQLITE_DONE)
        rc = 0;
    else if (rc > 0)
        rc = sq_fail(s, rc, err, "cannot list the schedules in '%s'", s->path);
    sq_done(stmt);
    if (rc) {
        schedule_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *out_n = n;
    return 0;
}

static int sqlite_schedule_get(struct store *st, const char *id, struct schedule_row *out,
                               struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SCHED_GET, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        rc = store__decode_schedule(SQ_ROW(s, stmt), out, err);
        if (rc) {
            schedule_row_release(out); /* no half-read row */
            memset(out, 0, sizeof(*out));
        }
    } else if (rc == SQLITE_DONE) {
        rc = err_set(err, ERR_NOT_FOUND, "no schedule '%s'", id);
    } else {
        rc = sq_fail(s, rc, err, "cannot read schedule '%s'", id);
    }
    sq_done(stmt);
    return rc;
}

static int sqlite_schedule_upsert(struct store *st, const struct schedule_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SCHED_UPSERT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->id) | bind_text(stmt, 2, row->workflow) |
         bind_text(stmt, 3, row->name) | bind_text(stmt, 4, row->spec_hash) |
         bind_i64(stmt, 5, row->paused) | bind_opt(stmt, 6, row->next_fire_at, 0) |
         bind_opt(stmt, 7, row->last_fire_at, 0) | bind_i64(stmt, 8, row->created_at) |
         bind_i64(stmt, 9, row->updated_at) | bind_i64(stmt, 10, row->from_api ? 1 : 0) |
         bind_text(stmt, 11, row->from_api ? row->spec : NULL);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot record schedule '%s' of '%s' as '%s'", row->name,
                     row->workflow, row->id);
    sq_done(stmt);
    return rc;
}

static int name_listed(const char *name, const char *const *names, size_t nnames)
{
    for (size_t i = 0; i < nnames; i++)
        if (!strcmp(names[i], name))
            return 1;
    return 0;
}

static void free_strs(char **strs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(strs[i]);
    free(strs);
}

/* The ids of `workflow`'s schedules whose name is not in `names` (free with free_strs()). */
static int sq_prune_ids(struct sqlite_store *s, const char *workflow, const char *const *names,
                        size_t nnames, char ***out_ids, size_t *out_n, struct err *err)
{
    char **ids = NULL;
    size_t n = 0;
    size_t alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SCHED_OF_WF, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, workflow);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "schedule query", workflow);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(stmt, 1);
        if (name && name_listed(name, names, nnames))
            continue;
        XGROW(ids, alloc, n + 1);
        ids[n++] = col_str(s, stmt, 0); /* NOT NULL in the schema */
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot list the schedules of '%s'", workflow);
out:
    sq_done(stmt);
    if (rc) {
        free_strs(ids, n);
        return rc;
    }
    *out_ids = ids;
    *out_n = n;
    return 0;
}

/* Run a statement whose only parameter is ?1 `key`; `what` completes "cannot ...". */
static int sq_exec_by(struct sqlite_store *s, enum stmt_id id, const char *key, const char *what,
                      struct err *err)
{
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, id, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, key);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot %s '%s'", what, key);
    sq_done(stmt);
    return rc;
}

/*
 * List the workflow's rows, then delete the ones not kept, each with its
 * fires, row by row: a workflow has a handful of schedules, and the names
 * never go into the SQL text.
 */
static int sqlite_schedules_prune(struct store *st, const char *workflow, const char *const *names,
                                  size_t nnames, struct err *err)
{
    struct sqlite_store *s = sq(st);
    char **ids = NULL;
    size_t n = 0;
    int began;
    int rc;

    rc = store__write_begin(&s->base, &began, err);
    if (rc)
        return rc;
    rc = sq_prune_ids(s, workflow, names, nnames, &ids, &n, err);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = sq_exec_by(s, ST_FIRES_DELETE, ids[i], "delete the fires of schedule", err);
        if (rc == 0)
            rc = sq_exec_by(s, ST_SCHED_DELETE, ids[i], "delete schedule", err);
    }
    free_strs(ids, n);
    return store__write_end(&s->base, began, rc, err);
}

static int sqlite_schedule_update_state(struct store *st, const struct schedule_row *row,
                                        struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SCHED_STATE, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->id) | bind_text(stmt, 2, row->spec_hash) |
         bind_opt(stmt, 3, row->next_fire_at, 0) | bind_opt(stmt, 4, row->last_fire_at, 0) |
         bind_i64(stmt, 5, row->updated_at);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot record the state of schedule '%s'", row->id);
    else if (sqlite3_changes(s->db) == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no schedule '%s'", row->id);
    sq_done(stmt);
    return rc;
}

static int sqlite_schedule_delete(struct store *st, const char *id, struct err *err)
{
    struct sqlite_store *s = sq(st);
    int began;
    int rc;

    rc = store__write_begin(&s->base, &began, err);
    if (rc)
        return rc;
    rc = sq_exec_by(s, ST_SCHED_DELETE, id, "delete schedule", err);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no schedule '%s'", id);
    if (rc == 0)
        rc = sq_exec_by(s, ST_FIRES_DELETE, id, "delete the fires of schedule", err);
    return store__write_end(&s->base, began, rc, err);
}

static int sqlite_schedule_set_paused(struct store *st, const char *id, int paused, int64_t now,
                                      struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_SCHED_PAUSE, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id) | bind_i64(stmt, 2, paused) | bind_i64(stmt, 3, now);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot %s schedule '%s'", paused ? "pause" : "resume", id);
    else if (sqlite3_changes(s->db) == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no schedule '%s'", id);
    sq_done(stmt);
    return rc;
}

static int sqlite_fire_insert(struct store *st, const struct fire_row *row, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_FIRE_INSERT, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->schedule_id) | bind_i64(stmt, 2, row->scheduled_for) |
         bind_text(stmt, 3, store__fire_status_name(row->status)) |
         bind_text(stmt, 4, row->execution_id[0] ? row->execution_id : NULL) |
         bind_text(stmt, 5, row->reason) | bind_i64(stmt, 6, row->created_at);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    /*
     * The primary key is the "at most once" of a due time: a due time fired
     * or skipped before is left as it is (FIRE_REPLACE), and reported as a
     * conflict rather than a constraint name. Only this statement is undone;
     * the caller's transaction stays usable.
     */
    if (rc == SQLITE_OK && sqlite3_changes(s->db) == 0 && row->status != FIRE_QUEUED)
        rc = err_set(err, ERR_CONFLICT,
                     "cannot record the fire of schedule '%s' due at %lld: it was recorded "
                     "before",
                     row->schedule_id, (long long)row->scheduled_for);
    else if (rc != SQLITE_OK && sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_PRIMARYKEY)
        rc = err_set(err, ERR_CONFLICT,
                     "cannot record the fire of schedule '%s' due at %lld: it was recorded "
                     "before",
                     row->schedule_id, (long long)row->scheduled_for);
    else if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot record the fire of schedule '%s' due at %lld",
                     row->schedule_id, (long long)row->scheduled_for);
    sq_done(stmt);
    return rc;
}

static int sqlite_fire_exists(struct store *st, const char *schedule_id, int64_t scheduled_for,
                              int *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_FIRE_EXISTS, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, schedule_id) | bind_i64(stmt, 2, scheduled_for);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(stmt, 0) > 0;
        rc = 0;
    } else {
        rc = sq_fail(s, rc, err, "cannot read the fire of schedule '%s' due at %lld", schedule_id,
                     (long long)scheduled_for);
    }
    sq_done(stmt);
    return rc;
}

static int sqlite_fire_get(struct store *st, const char *schedule_id, int64_t scheduled_for,
                           struct fire_row *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_FIRE_GET, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, schedule_id) | bind_i64(stmt, 2, scheduled_for);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        rc = store__decode_fire(SQ_ROW(s, stmt), out, err);
        if (rc)
            fire_row_release(out);
    } else if (rc == SQLITE_DONE) {
        rc = err_set(err, ERR_NOT_FOUND, "no fire of schedule '%s' due at %lld", schedule_id,
                     (long long)scheduled_for);
    } else {
        rc = sq_fail(s, rc, err, "cannot read the fire of schedule '%s' due at %lld", schedule_id,
                     (long long)scheduled_for);
    }
    sq_done(stmt);
    return rc;
}

static int sqlite_fires_queued(struct store *st, const char *schedule_id, int limit,
                               int64_t **out, size_t *out_n, struct err *err)
{
    struct sqlite_store *s = sq(st);
    int64_t *v = NULL;
    size_t n = 0, alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_FIRES_QUEUED, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, schedule_id) | bind_i64(stmt, 2, limit);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "queued fire query", schedule_id);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(v, alloc, n + 1);
        v[n++] = sqlite3_column_int64(stmt, 0);
    }
    rc = rc == SQLITE_DONE
             ? 0
             : sq_fail(s, rc, err, "cannot list the queued fires of schedule '%s'", schedule_id);
out:
    sq_done(stmt);
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *out_n = n;
    return 0;
}

static int sqlite_fires_list(struct store *st, const char *schedule_id, int limit,
                             struct fire_row **out, size_t *out_n, struct err *err)
{
    struct sqlite_store *s = sq(st);
    struct fire_row *rows = NULL;
    size_t n = 0;
    size_t alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_FIRES_LIST, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, schedule_id) | bind_i64(stmt, 2, limit);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "fire query", schedule_id);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(rows, alloc, n + 1);
        rc = store__decode_fire(SQ_ROW(s, stmt), &rows[n], err);
        n++; /* counted even on failure: fire_rows_free() releases it */
        if (rc)
            goto out;
    }
    rc = rc == SQLITE_DONE
             ? 0
             : sq_fail(s, rc, err, "cannot list the fires of schedule '%s'", schedule_id);
out:
    sq_done(stmt);
    if (rc) {
        fire_rows_free(rows, n);
        return rc;
    }
    *out = rows;
    *out_n = n;
    return 0;
}

/* --- for tests and notes --- */

/* Append the EXPLAIN QUERY PLAN details of cached statement `id` to *plan, one per line. */
static int sq_explain(struct sqlite_store *s, enum stmt_id id, char **plan, struct err *err)
{
    sqlite3_stmt *target;
    sqlite3_stmt *eqp = NULL;
    char *sql = NULL;
    int rc;

    /* The exact statement the store runs, as prepared and cached. */
    rc = sq_stmt(s, id, &target, err);
    if (rc)
        return rc;
    sql = xasprintf("EXPLAIN QUERY PLAN %s", sqlite3_sql(target));
    rc = sqlite3_prepare_v2(s->db, sql, -1, &eqp, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_fail(s, rc, err, "cannot explain statement %d", (int)id);
        goto out;
    }
    while ((rc = sqlite3_step(eqp)) == SQLITE_ROW) {
        char *next = xasprintf("%s%s\n", *plan, (const char *)sqlite3_column_text(eqp, 3));
        free(*plan);
        *plan = next;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot explain statement %d", (int)id);
out:
    sqlite3_finalize(eqp);
    free(sql);
    return rc;
}

/* Explain statements ids[0..n) into one plan; SQLite stores only. */
static int sq_explain_all(struct store *st, const enum stmt_id *ids, size_t n, char **out_plan,
                          struct err *err)
{
    char *plan;
    int rc = 0;

    *out_plan = NULL;
    if (st->be != &store__sqlite_backend)
        return err_set(err, ERR_INVALID, "not a SQLite store");
    plan = xstrdup("");
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = sq_explain(sq(st), ids[i], &plan, err);
    if (rc) {
        free(plan);
        return rc;
    }
    *out_plan = plan;
    return 0;
}

int store__sqlite_explain_list(struct store *st, const struct exec_filter *filter, char **out_plan,
                               struct err *err)
{
    enum stmt_id id;
    int by_range = 0;
    int rc;

    *out_plan = NULL;
    if (st->be != &store__sqlite_backend)
        return err_set(err, ERR_INVALID, "not a SQLite store");
    rc = store__list_by_range(st, filter, &by_range, err);
    if (rc)
        return rc;
    id = list_stmt_id(filter, store__list_status_mask(filter) != 0, by_range);
    return sq_explain_all(st, &id, 1, out_plan, err);
}

int store__sqlite_explain_purge(struct store *st, int by_workflow, size_t nexcept, char **out_plan,
                                struct err *err)
{
    enum stmt_id id;
    int cap;

    *out_plan = NULL;
    if (nexcept > STORE_PURGE_EXCEPT_MAX)
        return err_set(err, ERR_INVALID, "too many workflows to keep out of the purge (%zu)",
                       nexcept);
    id = purge_stmt_id(by_workflow, nexcept, &cap);
    return sq_explain_all(st, &id, 1, out_plan, err);
}

int store__sqlite_explain_counts(struct store *st, char **out_plan, struct err *err)
{
    static const enum stmt_id ids[] = {ST_COUNTS_QUEUED, ST_COUNTS_RUNNING};
    return sq_explain_all(st, ids, sizeof(ids) / sizeof(ids[0]), out_plan, err);
}

/* --- nodes (one per data directory here; the calls keep /v1/nodes alike) --- */

/* The store's clock is orch's (base/clock.h): orch_now_ms(), registered on
 * each connection (sq_register_now). */
#define SQ_NOW_MS "orch_now_ms()"

/* Prepare an occasional statement (not cached). */
static int sq_prepare(struct sqlite_store *s, const char *sql, sqlite3_stmt **out,
                      struct err *err)
{
    int rc = sqlite3_prepare_v2(s->db, sql, -1, out, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, rc, err, "cannot prepare a statement");
    return 0;
}

static int sq_node_update(struct sqlite_store *s, const char *sql, const char *id,
                          const char *what, int *changed, struct err *err);

/*
 * A data directory is on one host, and each process of it registers a node
 * (host:pid unless --node): forget the earlier ones of this host whose
 * process is gone, so /v1/nodes does not gain a "lost" entry per restart. One
 * that still owns an unfinished execution (until `orch resume` takes it) is
 * marked stopped instead.
 */
static int sq_forget_gone_nodes(struct sqlite_store *s, const struct node_row *self,
                                struct err *err)
{
    char **gone = NULL;
    size_t n = 0, alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s, "SELECT id, pid FROM nodes WHERE host = ?1 AND id <> ?2", &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, self->host) | bind_text(stmt, 2, self->id);
    while (rc == SQLITE_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        int pid = sqlite3_column_int(stmt, 1);
        rc = SQLITE_OK;
        if (pid > 0 && pid != self->pid && kill(pid, 0) == 0)
            continue; /* alive (or its pid was taken again: kept, to be safe) */
        if (pid > 0 && pid != self->pid && errno != ESRCH)
            continue; /* alive, another user's */
        XGROW(gone, alloc, n + 1);
        gone[n++] = col_str(s, stmt, 0);
    }
    if (rc == SQLITE_DONE)
        rc = SQLITE_OK;
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot list the earlier nodes of '%s'", self->host);
    for (size_t i = 0; i < n; i++) {
        int changed = 0;
        if (!rc && gone[i])
            rc = sq_node_update(s,
                                "DELETE FROM nodes WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM"
                                " executions e WHERE e.owner_node = nodes.id AND e.status IN"
                                " ('queued', 'running'))",
                                gone[i], "forget an earlier node", &changed, err);
        if (!rc && gone[i] && !changed)
            rc = sq_node_update(s,
                                "UPDATE nodes SET stopped_at = " SQ_NOW_MS
                                " WHERE id = ?1 AND stopped_at IS NULL",
                                gone[i], "record the stop", &changed, err);
        free(gone[i]);
    }
    free(gone);
    return rc;
}

static int sqlite_node_register(struct store *st, const struct node_row *row, int64_t lease_ms,
                                int64_t own_clock_ms, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s,
                        "INSERT INTO nodes (id, host, pid, role, version, started_at, heartbeat_at,"
                        " slots, clock_offset_ms) VALUES (?1, ?2, ?3, ?4, ?5, " SQ_NOW_MS ", "
                        SQ_NOW_MS ", ?7, ?8 - " SQ_NOW_MS ")"
                        " ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,"
                        " role = excluded.role, version = excluded.version, slots = excluded.slots,"
                        " started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,"
                        " clock_offset_ms = excluded.clock_offset_ms, stopped_at = NULL WHERE ?6 <= 0 OR nodes.stopped_at IS NOT NULL"
                        " OR nodes.heartbeat_at < " SQ_NOW_MS " - ?6",
                        &stmt, err);
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, row->id) | bind_text(stmt, 2, row->host) |
         bind_i64(stmt, 3, row->pid) | bind_text(stmt, 4, row->role) |
         bind_text(stmt, 5, row->version) | bind_i64(stmt, 6, lease_ms) |
         bind_i64(stmt, 7, row->slots) | bind_i64(stmt, 8, own_clock_ms);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK)
        return sq_fail(s, rc, err, "cannot register node '%s'", row->id);
    if (sqlite3_changes(s->db) == 0)
        return err_set(err, ERR_BUSY, "node name '%s' is in use by a running node", row->id);
    return sq_forget_gone_nodes(s, row, err);
}

/* Run a one-parameter UPDATE of node `id`; *changed: rows changed. */
static int sq_node_update(struct sqlite_store *s, const char *sql, const char *id,
                          const char *what, int *changed, struct err *err)
{
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s, sql, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK)
        return sq_fail(s, rc, err, "cannot %s of node '%s'", what, id);
    *changed = sqlite3_changes(s->db);
    return 0;
}

static int sqlite_node_heartbeat(struct store *st, const char *id, int64_t lease_ms,
                                 int64_t own_clock_ms, struct node_beat *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s,
                        "UPDATE nodes SET heartbeat_at = " SQ_NOW_MS ", clock_offset_ms = ?2 - "
                        SQ_NOW_MS " WHERE id = ?1",
                        &stmt, err);

    (void)lease_ms;
    (void)out; /* one node: it owns everything, nobody else takes offers */
    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id) | bind_i64(stmt, 2, own_clock_ms);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_OK)
        return sq_fail(s, rc, err, "cannot renew the heartbeat of node '%s'", id);
    if (sqlite3_changes(s->db) == 0)
        return err_set(err, ERR_NOT_FOUND, "node '%s' is not registered", id);
    return 0;
}

static int sqlite_node_stop(struct store *st, const char *id, struct err *err)
{
    int changed = 0;
    return sq_node_update(sq(st), "UPDATE nodes SET stopped_at = " SQ_NOW_MS " WHERE id = ?1", id,
                          "record the stop", &changed, err);
}

static int sqlite_nodes_list(struct store *st, struct node_row **out, size_t *out_n,
                             struct err *err)
{
    struct sqlite_store *s = sq(st);
    struct node_row *rows = NULL;
    size_t n = 0, alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_prepare(s,
                        "SELECT n.id, n.host, n.pid, n.role, n.version, n.started_at,"
                        " n.heartbeat_at, n.stopped_at, (SELECT count(*) FROM executions e"
                        " WHERE e.owner_node = n.id AND e.status IN ('queued', 'running')), "
                        SQ_NOW_MS ", n.clock_offset_ms FROM nodes n"
                        " ORDER BY n.heartbeat_at DESC, n.id LIMIT 1000",
                        &stmt, err);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(rows, alloc, n + 1);
        store__decode_node(SQ_ROW(s, stmt), &rows[n]);
        rows[n].clock_known = sqlite3_column_type(stmt, 10) != SQLITE_NULL;
        rows[n++].clock_offset_ms = sqlite3_column_int64(stmt, 10);
    }
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) {
        node_rows_free(rows, n);
        return sq_fail(s, rc, err, "cannot list the nodes");
    }
    *out = rows;
    *out_n = n;
    return 0;
}

static int sqlite_hourly_read(struct store *st, int64_t from_hour, int64_t to_hour, int limit,
                              struct exec_hour_count **out, size_t *out_n, struct err *err)
{
    struct sqlite_store *s = sq(st);
    struct exec_hour_count *rows = NULL;
    size_t n = 0, alloc = 0;
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_HOURLY, &stmt, err);

    if (rc)
        return rc;
    if (bind_i64(stmt, 1, from_hour) | bind_i64(stmt, 2, to_hour) | bind_i64(stmt, 3, limit)) {
        rc = bind_fail(s, err, "executions per hour query", s->path);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(stmt, 1);
        enum exec_status es;
        if (!status || exec_status_parse(status, &es))
            continue;
        XGROW(rows, alloc, n + 1);
        rows[n].hour = sqlite3_column_int64(stmt, 0) * 3600000;
        rows[n].status = es;
        rows[n].n = sqlite3_column_int64(stmt, 2);
        n++;
    }
    if (rc != SQLITE_DONE) {
        free(rows);
        rc = sq_fail(s, rc, err, "cannot read the executions per hour");
        goto out;
    }
    rc = 0;
    *out = rows;
    *out_n = n;
out:
    sq_done(stmt);
    return rc;
}

static const char *sqlite_where(struct store *st)
{
    return sq(st)->path;
}

static int sqlite_durability(struct store *st, const char **out, struct err *err)
{
    static const char *const names[] = {"synchronous=off", "synchronous=normal",
                                        "synchronous=full", "synchronous=extra"};
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA synchronous", -1, &stmt, NULL);

    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        int v = sqlite3_column_int(stmt, 0);
        *out = v >= 0 && v <= 3 ? names[v] : "synchronous=unknown";
        rc = 0;
    } else {
        rc = sq_fail(s, rc, err, "cannot read the synchronous setting of '%s'", s->path);
    }
    sqlite3_finalize(stmt);
    return rc;
}

/* --- diagnostics (store_diag) --- */

/* The SQL shared by both backends is in the same words; SQLite's bind ?N. */
static const char *const sq_diag_sql[STORE_DIAG_COUNT] = {
    [STORE_DIAG_FAILURES] =
        "SELECT e.workflow, t.name, a.error, COUNT(*), MAX(a.execution_id), a.task_idx"
        " FROM attempts a JOIN task_runs t ON t.execution_id = a.execution_id AND t.idx = a.task_idx"
        " JOIN executions e ON e.id = a.execution_id"
        " WHERE a.status IN ('failed', 'timed_out') AND a.finished_at >= ?1"
        " GROUP BY e.workflow, t.name, a.error, a.task_idx ORDER BY COUNT(*) DESC LIMIT 20",
    [STORE_DIAG_ORPHANS] =
        "SELECT e.id, e.workflow, e.owner_node, n.heartbeat_at FROM executions e"
        " LEFT JOIN nodes n ON n.id = e.owner_node"
        " WHERE e.status = 'running' AND e.owner_node IS NOT NULL"
        " AND (n.id IS NULL OR n.stopped_at IS NOT NULL OR n.heartbeat_at < ?1)"
        " ORDER BY e.id LIMIT 20",
    [STORE_DIAG_QUEUED] =
        "SELECT e.workflow, COUNT(*), MIN(COALESCE(t.available_at, e.started_at, e.created_at))"
        " FROM task_runs t JOIN executions e ON e.id = t.execution_id"
        " WHERE t.status = 'queued' GROUP BY e.workflow ORDER BY e.workflow",
};

static int sqlite_diag(struct store *st, enum store_diag which, const int64_t *params,
                       size_t nparams, struct store_diag_rows *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    const char *sql = sq_diag_sql[which];
    sqlite3_stmt *stmt = NULL;
    size_t alloc = 0;
    int rc;

    if (!sql)
        return err_set(err, ERR_INVALID, "this diagnostic needs PostgreSQL");
    rc = sqlite3_prepare_v2(s->db, sql, -1, &stmt, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(s, rc, err, "cannot prepare a diagnostic query on '%s'", s->path);
    for (size_t i = 0; i < nparams; i++)
        sqlite3_bind_int64(stmt, (int)i + 1, params[i]);
    out->ncols = (size_t)sqlite3_column_count(stmt);
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(out->cells, alloc, (out->nrows + 1) * out->ncols);
        for (size_t c = 0; c < out->ncols; c++) {
            const unsigned char *t = sqlite3_column_text(stmt, (int)c);
            out->cells[out->nrows * out->ncols + c] = t ? xstrdup((const char *)t) : NULL;
        }
        out->nrows++;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot run a diagnostic query on '%s'",
                                         s->path);
    sqlite3_finalize(stmt);
    if (rc)
        store_diag_rows_release(out);
    return rc;
}

const struct store_backend store__sqlite_backend = {
    .name = "sqlite",
    .dialect = STORE__SQLITE,
    .open = sqlite_open,
    .close = sqlite_close,
    .schema_version = sqlite_schema_version,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .workflow_read = sqlite_workflow_read,
    .workflow_insert = sqlite_workflow_insert,
    .execution_insert = sqlite_execution_insert,
    .execution_update = sqlite_execution_update,
    .task_run_insert = sqlite_task_run_insert,
    .task_run_update = sqlite_task_run_update,
    .attempt_insert = sqlite_attempt_insert,
    .attempt_update = sqlite_attempt_update,
    .log_append = sqlite_log_append,
    .log_trim = sqlite_log_trim,
    .exec_script = sqlite_exec_script,
    .version_table_exists = sqlite_version_table_exists,
    .version_record = sqlite_version_record,
    .begin_read = sqlite_begin_read,
    .in_transaction = sqlite_in_transaction,
    .list_query = sqlite_list_query,
    .exec_read = sqlite_exec_read,
    .tasks_read = sqlite_tasks_read,
    .attempts_read = sqlite_attempts_read,
    .group_counts = sqlite_group_counts,
    .executions_unfinished = sqlite_executions_unfinished,
    .logs_get = sqlite_logs_get,
    .ping = sqlite_ping,
    .workflows_list = sqlite_workflows_list,
    .workflow_delete = sqlite_workflow_delete,
    .idempotency_get = sqlite_idempotency_get,
    .idempotency_put = sqlite_idempotency_put,
    .notify_insert = sqlite_notify_insert,
    .notify_claim = sqlite_notify_claim,
    .notify_settle = sqlite_notify_settle,
    .notify_next = sqlite_notify_next,
    .notify_list = sqlite_notify_list,
    .key_insert = sqlite_key_insert,
    .key_get_by_prefix = sqlite_key_get_by_prefix,
    .keys_list = sqlite_keys_list,
    .key_revoke = sqlite_key_revoke,
    .key_touch = sqlite_key_touch,
    .session_insert = sqlite_session_insert,
    .session_get = sqlite_session_get,
    .session_touch = sqlite_session_touch,
    .session_delete = sqlite_session_delete,
    .sessions_purge = sqlite_sessions_purge,
    .executions_purge = sqlite_executions_purge,
    .count_min = sqlite_count_min,
    .schedules_list = sqlite_schedules_list,
    .schedule_get = sqlite_schedule_get,
    .schedule_upsert = sqlite_schedule_upsert,
    .schedules_prune = sqlite_schedules_prune,
    .schedule_update_state = sqlite_schedule_update_state,
    .schedule_delete = sqlite_schedule_delete,
    .schedule_set_paused = sqlite_schedule_set_paused,
    .fire_insert = sqlite_fire_insert,
    .fire_exists = sqlite_fire_exists,
    .fires_list = sqlite_fires_list,
    .fire_get = sqlite_fire_get,
    .fires_queued = sqlite_fires_queued,
    .node_register = sqlite_node_register,
    .node_heartbeat = sqlite_node_heartbeat,
    .node_stop = sqlite_node_stop,
    .nodes_list = sqlite_nodes_list,
    .hourly_read = sqlite_hourly_read,
    .execution_request_cancel = sqlite_execution_request_cancel,
    .cancel_requests = sqlite_cancel_requests,
    .where = sqlite_where,
    .durability = sqlite_durability,
    .diag = sqlite_diag,
};
