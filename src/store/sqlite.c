/*
 * sqlite.c - the embedded store backend (libsqlite3).
 *
 * One sqlite3 connection per struct store, opened NOMUTEX: the store is used
 * from one thread at a time (store.h), so SQLite's own mutexes would only
 * cost time. Every statement is a fixed SQL text with bound parameters,
 * prepared on first use with SQLITE_PREPARE_PERSISTENT, kept in s->stmts[]
 * and reset after each use, so a loop turn that writes thousands of rows
 * parses no SQL at all.
 *
 * Error text: "<what failed>: <sqlite's message>", e.g.
 * "cannot insert execution 'ex_...': UNIQUE constraint failed: executions.id".
 */
#include "store_backend.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "base/clock.h"
#include "base/log.h"
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
    ST_COUNT
};

#define EXEC_COLS                                                                                  \
    "id, workflow, workflow_version, status, params, created_at, started_at, finished_at, error"

/*
 * The list queries share their parameters: ?1 id upper bound (exclusive),
 * ?2 created_at lower bound, ?3 created_at upper bound (exclusive), ?4 limit,
 * ?5 workflow, ?6 status. One status per query: with "status = ?" the
 * (status, id) index yields rows already in id order, so LIMIT stops the
 * scan after `limit` rows; "status IN (...)" would read every matching row
 * and sort them (see docs/internals/store.md).
 */
#define LIST_TAIL " AND id < ?1 AND created_at >= ?2 AND created_at < ?3 ORDER BY id DESC LIMIT ?4"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_BEGIN_READ] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_HAS_VERSION_TABLE] = "SELECT count(*) FROM sqlite_master"
                             " WHERE type = 'table' AND name = 'schema_version'",
    [ST_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_version",
    [ST_VERSION_INSERT] = "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
    [ST_WF_NEWEST] = "SELECT version, definition FROM workflows WHERE name = ?1"
                     " ORDER BY version DESC LIMIT 1",
    [ST_WF_GET] = "SELECT version, definition FROM workflows WHERE name = ?1 AND version = ?2",
    [ST_WF_INSERT] = "INSERT INTO workflows (name, version, definition, created_at)"
                     " VALUES (?1, ?2, ?3, ?4)",
    [ST_EXEC_INSERT] = "INSERT INTO executions (" EXEC_COLS ")"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_EXEC_UPDATE] = "UPDATE executions SET status = ?2, started_at = ?3, finished_at = ?4,"
                       " error = ?5 WHERE id = ?1",
    [ST_EXEC_GET] = "SELECT " EXEC_COLS " FROM executions WHERE id = ?1",
    [ST_TASK_INSERT] = "INSERT INTO task_runs (execution_id, idx, name, status, attempt,"
                       " available_at, started_at, finished_at, error)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_TASK_UPDATE] = "UPDATE task_runs SET status = ?3, attempt = ?4, available_at = ?5,"
                       " started_at = ?6, finished_at = ?7, error = ?8"
                       " WHERE execution_id = ?1 AND idx = ?2 AND attempt = ?9",
    [ST_TASK_ATTEMPT] = "SELECT attempt FROM task_runs WHERE execution_id = ?1 AND idx = ?2",
    [ST_TASKS_OF_EXEC] = "SELECT idx, name, status, attempt, available_at, started_at,"
                         " finished_at, error FROM task_runs WHERE execution_id = ?1"
                         " ORDER BY idx",
    [ST_ATTEMPT_INSERT] = "INSERT INTO attempts (execution_id, task_idx, number, status, node,"
                          " pid, pgid, proc_start, started_at, finished_at, exit_code, signal,"
                          " error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_ATTEMPT_UPDATE] = "UPDATE attempts SET status = ?4, pid = ?5, pgid = ?6,"
                          " proc_start = ?7, finished_at = ?8, exit_code = ?9, signal = ?10,"
                          " error = ?11 WHERE execution_id = ?1 AND task_idx = ?2 AND number = ?3",
    [ST_ATTEMPTS_OF_EXEC] = "SELECT task_idx, number, status, node, pid, pgid, proc_start,"
                            " started_at, finished_at, exit_code, signal, error FROM attempts"
                            " WHERE execution_id = ?1 ORDER BY task_idx, number",
    [ST_LOG_APPEND] = "INSERT INTO logs (execution_id, task_idx, attempt, seq, stream, ts, data)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_LOG_TRIM] = "DELETE FROM logs WHERE execution_id = ?1 AND task_idx = ?2"
                    " AND attempt = ?3 AND seq < ?4",
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
};

struct sqlite_store {
    struct store base; /* first: a struct store * converts to this */
    sqlite3 *db;
    char *path;
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
    }
    return err_set(err, ERR_STORE, "%s: %s", what, msg);
}

/* The cached statement `id`, prepared on first use. */
static int sq_stmt(struct sqlite_store *s, enum stmt_id id, sqlite3_stmt **out, struct err *err)
{
    int rc;

    *out = s->stmts[id];
    if (*out)
        return 0;
    rc =
        sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[id], NULL);
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

/* Column readers: NULL becomes `none` (or a NULL string). */
static int64_t col_opt(sqlite3_stmt *stmt, int i, int64_t none)
{
    if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
        return none;
    return sqlite3_column_int64(stmt, i);
}

static int col_int(sqlite3_stmt *stmt, int i, int none)
{
    int64_t v = col_opt(stmt, i, none);
    if (v < INT_MIN || v > INT_MAX)
        return none;
    return (int)v;
}

static char *col_str(sqlite3_stmt *stmt, int i)
{
    const unsigned char *t = sqlite3_column_text(stmt, i);
    if (!t)
        return NULL;
    return xstrndup((const char *)t, (size_t)sqlite3_column_bytes(stmt, i));
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
static int sq_read_begin(struct sqlite_store *s, int *began, struct err *err)
{
    int rc;

    *began = 0;
    if (!sqlite3_get_autocommit(s->db))
        return 0;
    rc = sq_run(s, ST_BEGIN_READ, "begin a read", err);
    if (rc == 0)
        *began = 1;
    return rc;
}

static void sq_read_end(struct sqlite_store *s, int began)
{
    /* Ending a read-only transaction cannot lose anything: ROLLBACK it. */
    if (began)
        sqlite_rollback(&s->base);
}

/*
 * For writes that must be atomic on their own (workflow_put): open a write
 * transaction unless the caller has one. *began says whether to commit it.
 */
static int sq_write_begin(struct sqlite_store *s, int *began, struct err *err)
{
    int rc;

    *began = 0;
    if (!sqlite3_get_autocommit(s->db))
        return 0;
    rc = sqlite_begin(&s->base, err);
    if (rc == 0)
        *began = 1;
    return rc;
}

static int sq_write_end(struct sqlite_store *s, int began, int rc, struct err *err)
{
    if (!began)
        return rc;
    if (rc == 0)
        rc = sqlite_commit(&s->base, err);
    if (rc != 0)
        sqlite_rollback(&s->base);
    return rc;
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

static int sq_version_check(int version, struct err *err)
{
    if (version > store__migration_count)
        return err_set(err, ERR_INVALID,
                       "database schema version %d is newer than this orch (%d); upgrade orch",
                       version, store__migration_count);
    return 0;
}

/* Apply the missing migration steps in one write transaction. */
static int sq_migrate(struct sqlite_store *s, struct err *err)
{
    static const char bootstrap[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                    " version INTEGER NOT NULL PRIMARY KEY,"
                                    " applied_at BIGINT NOT NULL)";
    sqlite3_stmt *stmt;
    int version = 0;
    int rc;

    rc = sqlite_begin(&s->base, err);
    if (rc)
        return rc;
    /* DDL without parameters: sqlite3_exec() prepares each statement of the script. */
    if (sqlite3_exec(s->db, bootstrap, NULL, NULL, NULL) != SQLITE_OK) {
        rc = sq_fail(s, sqlite3_errcode(s->db), err, "cannot create the schema table of '%s'",
                     s->path);
        goto out;
    }
    rc = sq_read_version(s, &version, err);
    if (rc)
        goto out;
    rc = sq_version_check(version, err);
    if (rc)
        goto out;
    for (int v = version; v < store__migration_count; v++) {
        if (sqlite3_exec(s->db, store__migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
            rc = sq_fail(s, sqlite3_errcode(s->db), err, "cannot migrate '%s' to schema version %d",
                         s->path, v + 1);
            goto out;
        }
        rc = sq_stmt(s, ST_VERSION_INSERT, &stmt, err);
        if (rc)
            goto out;
        rc = bind_i64(stmt, 1, v + 1) | bind_i64(stmt, 2, clock_now_ms());
        if (rc == SQLITE_OK)
            rc = sq_step_done(stmt);
        if (rc != SQLITE_OK)
            rc = sq_fail(s, rc, err, "cannot record schema version %d in '%s'", v + 1, s->path);
        sq_done(stmt);
        if (rc)
            goto out;
        if (version > 0)
            log_info("store", "migrated '%s' to schema version %d", s->path, v + 1);
    }
    rc = sqlite_commit(&s->base, err);
out:
    if (rc)
        sqlite_rollback(&s->base);
    return rc;
}

/* A reader cannot migrate: the database must be at this binary's version. */
static int sq_check_readonly_version(struct sqlite_store *s, struct err *err)
{
    sqlite3_stmt *stmt;
    int version = 0;
    int has_table;
    int rc = sq_stmt(s, ST_HAS_VERSION_TABLE, &stmt, err);

    if (rc)
        return rc;
    rc = sqlite3_step(stmt);
    has_table = rc == SQLITE_ROW && sqlite3_column_int(stmt, 0) > 0;
    if (rc != SQLITE_ROW)
        rc = sq_fail(s, rc, err, "cannot read the schema of '%s'", s->path);
    else
        rc = 0;
    sq_done(stmt);
    if (rc)
        return rc;
    if (has_table) {
        rc = sq_read_version(s, &version, err);
        if (rc)
            return rc;
    }
    rc = sq_version_check(version, err);
    if (rc)
        return rc;
    if (version < store__migration_count)
        return err_set(err, ERR_INVALID,
                       "database '%s' is at schema version %d, older than this orch (%d); "
                       "open it read-write once to migrate it",
                       s->path, version, store__migration_count);
    return 0;
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
    free(s);
}

/* ORCH_SQLITE_SYNC=full: also durable to power loss (an fsync per commit). */
static int sq_sync_pragma(const char **out, struct err *err)
{
    const char *v = getenv("ORCH_SQLITE_SYNC");

    if (!v || !*v || !strcmp(v, "normal")) {
        *out = "PRAGMA synchronous = NORMAL";
        return 0;
    }
    if (!strcmp(v, "full")) {
        *out = "PRAGMA synchronous = FULL";
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

static int sqlite_open(const char *path, unsigned flags, struct store **out, struct err *err)
{
    struct sqlite_store *s;
    int oflags = SQLITE_OPEN_NOMUTEX;
    struct stat sb;
    int rc;

    *out = NULL;
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

    s = xcalloc(1, sizeof(*s));
    s->base.be = &store__sqlite_backend;
    s->path = xstrdup(path);
    s->flags = flags;
    rc = sqlite3_open_v2(path, &s->db, oflags, NULL);
    if (rc != SQLITE_OK) {
        /* The handle exists even on failure (unless out of memory) and holds the message. */
        rc = sq_fail(s, rc, err, "cannot open database '%s'", path);
        goto out;
    }
    rc = sq_configure(s, err);
    if (rc)
        goto out;
    if (flags & STORE_READONLY)
        rc = sq_check_readonly_version(s, err);
    else
        rc = sq_migrate(s, err);
out:
    if (rc) {
        sqlite_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* --- workflows --- */

static int sqlite_workflow_put(struct store *st, const char *name, const char *definition,
                               int64_t now, int *out_version, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int version = 0;
    int same = 0;
    int began;
    int rc;

    rc = sq_write_begin(s, &began, err);
    if (rc)
        return rc;
    rc = sq_stmt(s, ST_WF_NEWEST, &stmt, err);
    if (rc)
        goto out;
    rc = bind_text(stmt, 1, name);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(stmt, 1);
        version = sqlite3_column_int(stmt, 0);
        same = text && !strcmp(text, definition);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = 0;
    } else {
        rc = sq_fail(s, rc, err, "cannot read workflow '%s'", name);
    }
    sq_done(stmt);
    if (rc || same)
        goto out;

    version++;
    rc = sq_stmt(s, ST_WF_INSERT, &stmt, err);
    if (rc)
        goto out;
    rc = bind_text(stmt, 1, name) | bind_i64(stmt, 2, version) | bind_text(stmt, 3, definition) |
         bind_i64(stmt, 4, now);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot insert version %d of workflow '%s'", version, name);
    sq_done(stmt);
out:
    rc = sq_write_end(s, began, rc, err);
    if (rc == 0)
        *out_version = version;
    return rc;
}

static int sqlite_workflow_get(struct store *st, const char *name, int version,
                               char **out_definition, int *out_version, struct err *err)
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
        *out_version = sqlite3_column_int(stmt, 0);
        *out_definition = col_str(stmt, 1);
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        if (version)
            rc = err_set(err, ERR_NOT_FOUND, "no version %d of workflow '%s'", version, name);
        else
            rc = err_set(err, ERR_NOT_FOUND, "no workflow '%s'", name);
    } else {
        rc = sq_fail(s, rc, err, "cannot read workflow '%s'", name);
    }
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
         bind_text(stmt, 9, row->error);
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
         bind_text(stmt, 5, row->error);
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
         bind_opt(stmt, 8, row->finished_at, 0) | bind_text(stmt, 9, row->error);
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
         bind_i64(stmt, 9, expected_attempt);
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
         bind_text(stmt, 13, row->error);
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
         bind_text(stmt, 11, row->error);
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

static const char *stream_name(enum log_stream stream)
{
    return stream == LOG_STREAM_STDERR ? "stderr" : "stdout";
}

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
         bind_text(stmt, 5, stream_name(chunk->stream)) | bind_i64(stmt, 6, chunk->ts) |
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
                           int below_seq, struct err *err)
{
    struct sqlite_store *s = sq(st);
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, ST_LOG_TRIM, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, exec_id) | bind_i64(stmt, 2, task_idx) | bind_i64(stmt, 3, attempt) |
         bind_i64(stmt, 4, below_seq);
    if (rc == SQLITE_OK)
        rc = sq_step_done(stmt);
    if (rc != SQLITE_OK)
        rc = sq_fail(s, rc, err, "cannot trim the log of attempt %d of task %d of %s", attempt,
                     task_idx, exec_id);
    sq_done(stmt);
    return rc;
}

static int sq_read_chunk(struct sqlite_store *s, sqlite3_stmt *stmt, const char *exec_id,
                         struct log_chunk *c, struct err *err)
{
    const char *stream = (const char *)sqlite3_column_text(stmt, 3);
    const void *data;
    int len;

    c->task_idx = sqlite3_column_int(stmt, 0);
    c->attempt = sqlite3_column_int(stmt, 1);
    c->seq = sqlite3_column_int(stmt, 2);
    if (stream && !strcmp(stream, "stdout"))
        c->stream = LOG_STREAM_STDOUT;
    else if (stream && !strcmp(stream, "stderr"))
        c->stream = LOG_STREAM_STDERR;
    else
        return err_set(err, ERR_STORE, "unknown log stream '%s' in '%s' for %s",
                       stream ? stream : "NULL", s->path, exec_id);
    c->ts = sqlite3_column_int64(stmt, 4);
    /* Read the blob before its length: the order sqlite3_column_bytes() documents. */
    data = sqlite3_column_blob(stmt, 5);
    len = sqlite3_column_bytes(stmt, 5);
    c->data = xmalloc((size_t)len + 1);
    if (len > 0)
        memcpy(c->data, data, (size_t)len);
    c->data[len] = '\0';
    c->len = (size_t)len;
    return 0;
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
        rc = sq_read_chunk(s, stmt, exec_id, &list.items[list.n], err);
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

/* Fill `row` from the EXEC_COLS of the current result row. */
static int sq_read_exec(struct sqlite_store *s, sqlite3_stmt *stmt, struct exec_row *row,
                        struct err *err)
{
    const char *id = (const char *)sqlite3_column_text(stmt, 0);
    const char *status = (const char *)sqlite3_column_text(stmt, 3);
    size_t idlen = (size_t)sqlite3_column_bytes(stmt, 0);

    memset(row, 0, sizeof(*row));
    if (!id || idlen >= ID_MAX)
        return err_set(err, ERR_STORE, "bad execution id in '%s'", s->path);
    memcpy(row->id, id, idlen);
    row->id[idlen] = '\0';
    if (exec_status_parse(status, &row->status) != 0)
        return err_set(err, ERR_STORE, "unknown status '%s' of execution '%s' in '%s'",
                       status ? status : "NULL", row->id, s->path);
    row->workflow = col_str(stmt, 1);
    row->workflow_version = sqlite3_column_int(stmt, 2);
    row->params = col_str(stmt, 4);
    if (!row->params)
        row->params = xstrdup("{}");
    row->created_at = sqlite3_column_int64(stmt, 5);
    row->started_at = col_opt(stmt, 6, 0);
    row->finished_at = col_opt(stmt, 7, 0);
    row->error = col_str(stmt, 8);
    return 0;
}

static int sq_read_task(struct sqlite_store *s, sqlite3_stmt *stmt, const char *exec_id,
                        struct task_run_row *t, struct err *err)
{
    const char *status = (const char *)sqlite3_column_text(stmt, 2);

    memset(t, 0, sizeof(*t));
    t->idx = sqlite3_column_int(stmt, 0);
    if (task_status_parse(status, &t->status) != 0)
        return err_set(err, ERR_STORE, "unknown status '%s' of task %d of %s in '%s'",
                       status ? status : "NULL", t->idx, exec_id, s->path);
    t->name = col_str(stmt, 1);
    t->attempt = sqlite3_column_int(stmt, 3);
    t->available_at = col_opt(stmt, 4, 0);
    t->started_at = col_opt(stmt, 5, 0);
    t->finished_at = col_opt(stmt, 6, 0);
    t->error = col_str(stmt, 7);
    return 0;
}

static int sq_read_attempt(struct sqlite_store *s, sqlite3_stmt *stmt, const char *exec_id,
                           struct attempt_row *a, struct err *err)
{
    const char *status = (const char *)sqlite3_column_text(stmt, 2);

    memset(a, 0, sizeof(*a));
    a->task_idx = sqlite3_column_int(stmt, 0);
    a->number = sqlite3_column_int(stmt, 1);
    if (attempt_status_parse(status, &a->status) != 0)
        return err_set(err, ERR_STORE, "unknown status '%s' of attempt %d of task %d of %s in '%s'",
                       status ? status : "NULL", a->number, a->task_idx, exec_id, s->path);
    a->node = col_str(stmt, 3);
    a->pid = col_int(stmt, 4, 0);
    a->pgid = col_int(stmt, 5, 0);
    a->proc_start = col_opt(stmt, 6, 0);
    a->started_at = col_opt(stmt, 7, 0);
    a->finished_at = col_opt(stmt, 8, 0);
    a->exit_code = col_int(stmt, 9, -1);
    a->signal = col_int(stmt, 10, 0);
    a->error = col_str(stmt, 11);
    return 0;
}

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
        rc = sq_read_exec(s, stmt, &d->exec, err);
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
        rc = sq_read_task(s, stmt, id, &d->tasks[d->ntasks], err);
        d->ntasks++; /* counted even on failure: exec_detail_free() releases it */
        if (rc)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot read the tasks of '%s'", id);
out:
    sq_done(stmt);
    return rc;
}

static int sq_get_attempts(struct sqlite_store *s, const char *id, struct exec_detail *d,
                           struct err *err)
{
    sqlite3_stmt *stmt;
    size_t alloc = 0;
    int rc = sq_stmt(s, ST_ATTEMPTS_OF_EXEC, &stmt, err);

    if (rc)
        return rc;
    rc = bind_text(stmt, 1, id);
    if (rc != SQLITE_OK) {
        rc = bind_fail(s, err, "attempt query", id);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(d->attempts, alloc, d->nattempts + 1);
        rc = sq_read_attempt(s, stmt, id, &d->attempts[d->nattempts], err);
        d->nattempts++; /* counted even on failure: exec_detail_free() releases it */
        if (rc)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot read the attempts of '%s'", id);
out:
    sq_done(stmt);
    return rc;
}

static int sqlite_execution_get(struct store *st, const char *id, struct exec_detail **out,
                                struct err *err)
{
    struct sqlite_store *s = sq(st);
    struct exec_detail *d = NULL;
    int began;
    int rc;

    rc = sq_read_begin(s, &began, err);
    if (rc)
        return rc;
    d = xcalloc(1, sizeof(*d));
    rc = sq_get_exec(s, id, d, err);
    if (rc)
        goto out;
    rc = sq_get_tasks(s, id, d, err);
    if (rc)
        goto out;
    rc = sq_get_attempts(s, id, d, err);
out:
    sq_read_end(s, began);
    if (rc) {
        exec_detail_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* The list statement for a filter, and whether it takes a status. */
static enum stmt_id list_stmt_id(const struct exec_filter *f, int by_status)
{
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
    return rc;
}

/* Run one list query and append its rows to `list`. */
static int sq_list_query(struct sqlite_store *s, const struct exec_filter *f, const char *status,
                         struct exec_list *list, size_t *alloc, struct err *err)
{
    sqlite3_stmt *stmt;
    int rc = sq_stmt(s, list_stmt_id(f, status != NULL), &stmt, err);

    if (rc)
        return rc;
    if (list_bind(stmt, f, status) != SQLITE_OK) {
        rc = bind_fail(s, err, "execution list query", s->path);
        goto out;
    }
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        XGROW(list->items, *alloc, list->n + 1);
        rc = sq_read_exec(s, stmt, &list->items[list->n], err);
        list->n++; /* counted even on failure: exec_list_release() releases it */
        if (rc)
            goto out;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot list executions in '%s'", s->path);
out:
    sq_done(stmt);
    return rc;
}

static int exec_row_cmp_desc(const void *a, const void *b)
{
    const struct exec_row *x = a;
    const struct exec_row *y = b;
    return strcmp(y->id, x->id);
}

static unsigned list_status_mask(const struct exec_filter *f)
{
    unsigned all = (1u << EXEC_STATUS_COUNT) - 1;
    unsigned mask = f->status_mask & all;
    return mask == all ? 0 : mask;
}

/*
 * One query per status in the mask, each using the (status, id) or
 * (workflow, status, id) index and stopping after `limit` rows; the pages are
 * then merged newest first and cut to `limit`. At most 6 x limit rows are
 * read, however many executions match.
 */
static int sqlite_executions_list(struct store *st, const struct exec_filter *f,
                                  struct exec_list *out, struct err *err)
{
    struct sqlite_store *s = sq(st);
    struct exec_list list = {NULL, 0};
    unsigned mask = list_status_mask(f);
    int nstatus = 0;
    size_t alloc = 0;
    int began;
    int rc;

    rc = sq_read_begin(s, &began, err);
    if (rc)
        return rc;
    if (!mask)
        rc = sq_list_query(s, f, NULL, &list, &alloc, err);
    for (int i = 0; mask && i < EXEC_STATUS_COUNT && rc == 0; i++) {
        if (!(mask & (1u << i)))
            continue;
        rc = sq_list_query(s, f, exec_status_name((enum exec_status)i), &list, &alloc, err);
        nstatus++;
    }
    sq_read_end(s, began);
    if (rc) {
        exec_list_release(&list);
        return rc;
    }
    if (nstatus > 1 && list.n > 1) {
        qsort(list.items, list.n, sizeof(*list.items), exec_row_cmp_desc);
        while (list.n > (size_t)f->limit)
            exec_row_release(&list.items[--list.n]);
    }
    *out = list;
    return 0;
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
        ids[n++] = col_str(stmt, 0);
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

/* --- for tests and notes --- */

int store__sqlite_explain_list(struct store *st, const struct exec_filter *filter, char **out_plan,
                               struct err *err)
{
    struct sqlite_store *s;
    unsigned mask = list_status_mask(filter);
    sqlite3_stmt *list_stmt;
    sqlite3_stmt *eqp = NULL;
    char *sql = NULL;
    char *plan = NULL;
    int rc;

    *out_plan = NULL;
    if (st->be != &store__sqlite_backend)
        return err_set(err, ERR_INVALID, "not a SQLite store");
    s = sq(st);
    /* The exact statement the list runs, as prepared and cached. */
    rc = sq_stmt(s, list_stmt_id(filter, mask != 0), &list_stmt, err);
    if (rc)
        return rc;
    sql = xasprintf("EXPLAIN QUERY PLAN %s", sqlite3_sql(list_stmt));
    rc = sqlite3_prepare_v2(s->db, sql, -1, &eqp, NULL);
    if (rc != SQLITE_OK) {
        rc = sq_fail(s, rc, err, "cannot explain the list query");
        goto out;
    }
    plan = xstrdup("");
    while ((rc = sqlite3_step(eqp)) == SQLITE_ROW) {
        char *next = xasprintf("%s%s\n", plan, (const char *)sqlite3_column_text(eqp, 3));
        free(plan);
        plan = next;
    }
    rc = rc == SQLITE_DONE ? 0 : sq_fail(s, rc, err, "cannot explain the list query");
out:
    sqlite3_finalize(eqp);
    free(sql);
    if (rc) {
        free(plan);
        return rc;
    }
    *out_plan = plan;
    return 0;
}

const struct store_backend store__sqlite_backend = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .schema_version = sqlite_schema_version,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .workflow_put = sqlite_workflow_put,
    .workflow_get = sqlite_workflow_get,
    .execution_insert = sqlite_execution_insert,
    .execution_update = sqlite_execution_update,
    .task_run_insert = sqlite_task_run_insert,
    .task_run_update = sqlite_task_run_update,
    .attempt_insert = sqlite_attempt_insert,
    .attempt_update = sqlite_attempt_update,
    .log_append = sqlite_log_append,
    .log_trim = sqlite_log_trim,
    .execution_get = sqlite_execution_get,
    .executions_list = sqlite_executions_list,
    .executions_unfinished = sqlite_executions_unfinished,
    .logs_get = sqlite_logs_get,
};
