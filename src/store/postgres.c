/*
 * postgres.c - the PostgreSQL store backend (libpq).
 *
 * One PGconn per struct store, like one sqlite3 connection per store in
 * sqlite.c: the engine and every API thread open their own. Every statement
 * is fixed SQL text with $n placeholders run through PQexecParams; values are
 * sent as text, except log data and key hashes, which go as binary BYTEA
 * (paramFormats 1). Results come back as text; BYTEA columns are decoded
 * with PQunescapeBytea.
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

#define EXEC_COLS                                                                                  \
    "id, workflow, workflow_version, status, params, created_at, started_at, finished_at, error,"  \
    " schedule_id, scheduled_for, owner_node, parent_id, parent_task_idx, depth, retried_at"
/* $1 id upper bound or NULL, $2/$3 created_at range, $4 limit, $5 workflow, $6 status. */
#define LIST_TAIL                                                                                  \
    " AND ($1::text IS NULL OR id < $1::text) AND created_at >= $2 AND created_at < $3"            \
    " ORDER BY id DESC LIMIT $4"
#define KEY_COLS "id, name, prefix, hash, scopes, created_at, expires_at, last_used_at, revoked_at"
#define SCHED_COLS                                                                                 \
    "id, workflow, name, spec_hash, paused, next_fire_at, last_fire_at, created_at, updated_at,"   \
    " from_api, spec"
#define FIRE_COLS "schedule_id, scheduled_for, status, execution_id, reason, created_at"
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
#define PG_PREP_MAX 32

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
    struct err pipe_err;
    struct pq_prep prep[PG_PREP_MAX]; /* prepared on this connection */
    size_t nprep;
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

static PGresult *pq_exec(struct pg_store *s, const char *sql, const struct params *p)
{
    /* A statement whose answer is needed now: first the pipelined ones. */
    if (s->piped && pq_drain(s, &s->pipe_err)) {
        s->pipe_failed = 1;
        return NULL;
    }
    if (!p || p->n == 0)
        return PQexecParams(s->conn, sql, 0, NULL, NULL, NULL, NULL, 0);
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
        res = PQexec(s->conn, "SAVEPOINT orch_stmt");
        if (!pq_ok(res))
            return res;
        PQclear(res);
    }
    res = pq_exec(s, sql, p);
    if (guard) {
        PGresult *end = PQexec(s->conn, pq_ok(res) ? "RELEASE SAVEPOINT orch_stmt"
                                                   : "ROLLBACK TO SAVEPOINT orch_stmt");
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
        rc = pq_send(s, "BEGIN", NULL, WANT_OK, err, "cannot begin a write transaction");
        if (rc == 1)
            return 0;
        s->in_wtx = 0;
        if (rc < 0)
            return rc;
    }
    rc = pq_run(s, "BEGIN", NULL, NULL, err, "cannot begin a write transaction");
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
    if (!pq_in_tx(s) || PQstatus(s->conn) != CONNECTION_OK)
        return;
    res = PQexec(s->conn, "ROLLBACK");
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
    if (s->piped) {
        /* COMMIT goes with the rest: one round trip for the whole turn. */
        int rc = pq_send(s, "COMMIT", NULL, WANT_OK, err, "cannot commit");
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
    return pq_run(s, "COMMIT", NULL, NULL, err, "cannot commit");
}

static int pq_read_begin(struct pg_store *s, int *began, struct err *err)
{
    int rc;

    *began = 0;
    if (pq_in_tx(s))
        return 0;
    rc = pq_run(s, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, NULL, err,
                "cannot begin a read");
    if (rc == 0)
        *began = 1;
    return rc;
}

static void pq_read_end(struct pg_store *s, int began)
{
    if (began)
        pg_rollback(&s->base);
}

static int pq_write_begin(struct pg_store *s, int *began, struct err *err)
{
    int rc;

    *began = 0;
    if (pq_in_tx(s))
        return 0;
    rc = pg_begin(&s->base, err);
    if (rc == 0)
        *began = 1;
    return rc;
}

static int pq_write_end(struct pg_store *s, int began, int rc, struct err *err)
{
    if (!began)
        return rc;
    if (rc == 0)
        rc = pg_commit(&s->base, err);
    if (rc != 0)
        pg_rollback(&s->base);
    return rc;
}

/* --- schema --- */

static int pq_read_version(struct pg_store *s, int *out, struct err *err)
{
    PGresult *res = pq_exec(s, "SELECT coalesce(max(version), 0) FROM schema_version", NULL);

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

static int pq_version_check(int version, struct err *err)
{
    if (version > store__migration_count)
        return err_set(err, ERR_INVALID,
                       "database schema version %d is newer than this orch (%d); upgrade orch",
                       version, store__migration_count);
    return 0;
}

/*
 * Apply the missing steps in one transaction, under a transaction-level
 * advisory lock: two nodes starting at once take turns, and the second
 * finds the schema up to date.
 */
static int pq_migrate(struct pg_store *s, struct err *err)
{
    static const char bootstrap[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                    " version INTEGER NOT NULL PRIMARY KEY,"
                                    " applied_at BIGINT NOT NULL)";
    struct params p = {0};
    int version = 0;
    int rc;

    rc = pg_begin(&s->base, err);
    if (rc)
        return rc;
    p_i64(&p, PG_MIGRATE_LOCK);
    rc = pq_run(s, "SELECT pg_advisory_xact_lock($1::bigint)", &p, NULL, err,
                "cannot lock the schema");
    if (rc == 0)
        rc = pq_run(s, bootstrap, NULL, NULL, err, "cannot create the schema table");
    if (rc == 0)
        rc = pq_read_version(s, &version, err);
    if (rc == 0)
        rc = pq_version_check(version, err);
    for (int v = version; rc == 0 && v < store__migration_count; v++) {
        /* A script of several statements without parameters: the simple protocol. */
        PGresult *res = PQexec(s->conn, store__migrations[v]);
        if (!pq_ok(res)) {
            rc = pq_fail(s, res, err, "cannot migrate %s to schema version %d", s->where, v + 1);
            break;
        }
        PQclear(res);
        memset(&p, 0, sizeof(p));
        p_i64(&p, v + 1);
        p_i64(&p, clock_now_ms());
        rc = pq_run(s, "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)", &p, NULL,
                    err, "cannot record the schema version");
        if (rc == 0 && version > 0)
            log_info("store", "migrated %s to schema version %d", s->where, v + 1);
    }
    if (rc == 0)
        rc = pg_commit(&s->base, err);
    if (rc)
        pg_rollback(&s->base);
    return rc;
}

static int pq_check_readonly_version(struct pg_store *s, struct err *err)
{
    PGresult *res = pq_exec(s, "SELECT to_regclass('schema_version') IS NOT NULL", NULL);
    int version = 0;
    int has_table;
    int rc;

    if (!pq_ok(res) || PQntuples(res) != 1)
        return pq_fail(s, res, err, "cannot read the schema of %s", s->where);
    has_table = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (has_table) {
        rc = pq_read_version(s, &version, err);
        if (rc)
            return rc;
    }
    rc = pq_version_check(version, err);
    if (rc)
        return rc;
    if (version < store__migration_count)
        return err_set(err, ERR_INVALID,
                       "database %s is at schema version %d, older than this orch (%d); "
                       "open it read-write once to migrate it",
                       s->where, version, store__migration_count);
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
        rc = err_set(err, ERR_STORE, "cannot connect to PostgreSQL: %s", msg);
        goto out;
    }
    s->where = xasprintf("database '%s' on %s:%s", PQdb(s->conn), PQhost(s->conn), PQport(s->conn));
    PQsetNoticeProcessor(s->conn, pg_notice, NULL);
    rc = pq_run(s, "SET client_min_messages = warning", NULL, NULL, err, "cannot configure");
    if (rc == 0 && (flags & STORE_READONLY))
        rc = pq_run(s, "SET default_transaction_read_only = on", NULL, NULL, err,
                    "cannot configure");
    if (rc)
        goto out;
    if (flags & STORE_READONLY)
        rc = pq_check_readonly_version(s, err);
    else
        rc = pq_migrate(s, err);
out:
    if (rc) {
        pg_close(&s->base);
        return rc;
    }
    *out = &s->base;
    return 0;
}

/* --- workflows --- */

#define WF_NEWEST_SQL                                                                              \
    "SELECT version, definition, deleted_at, created_at FROM workflows"                            \
    " WHERE name = $1 ORDER BY version DESC LIMIT 1"

static int pg_workflow_put(struct store *st, const char *name, const char *definition, int64_t now,
                           int *out_version, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int version = 0;
    int same = 0;
    int began;
    int rc;

    rc = pq_write_begin(s, &began, err);
    if (rc)
        return rc;
    p_text(&p, name);
    res = pq_exec(s, WF_NEWEST_SQL, &p);
    if (!pq_ok(res)) {
        rc = pq_fail(s, res, err, "cannot read workflow '%s'", name);
        goto out;
    }
    if (PQntuples(res) == 1) {
        version = g_int(res, 0, 0, 0);
        same = !PQgetisnull(res, 0, 1) && !strcmp(PQgetvalue(res, 0, 1), definition) &&
               PQgetisnull(res, 0, 2);
    }
    PQclear(res);
    if (same)
        goto out;
    version++;
    memset(&p, 0, sizeof(p));
    p_text(&p, name);
    p_i64(&p, version);
    p_text(&p, definition);
    p_i64(&p, now);
    res = pq_exec(s,
                  "INSERT INTO workflows (name, version, definition, created_at)"
                  " VALUES ($1, $2, $3, $4)",
                  &p);
    if (!pq_ok(res))
        rc = pq_fail(s, res, err, "cannot insert version %d of workflow '%s'", version, name);
    else
        PQclear(res);
out:
    rc = pq_write_end(s, began, rc, err);
    if (rc == 0)
        *out_version = version;
    return rc;
}

static int pg_workflow_get(struct store *st, const char *name, int version, char **out_definition,
                           int *out_version, int64_t *out_created_at, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;
    int found;

    p_text(&p, name);
    if (version)
        p_i64(&p, version);
    res = pq_exec(s,
                  version ? "SELECT version, definition, NULL, created_at FROM workflows"
                            " WHERE name = $1 AND version = $2"
                          : WF_NEWEST_SQL,
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read workflow '%s'", name);
    /* The newest version of a deleted workflow is deleted too: not found. */
    found = PQntuples(res) == 1 && (version || PQgetisnull(res, 0, 2));
    if (found) {
        *out_version = g_int(res, 0, 0, 0);
        *out_definition = g_str(res, 0, 1);
        if (out_created_at)
            *out_created_at = g_opt(res, 0, 3, 0);
    }
    PQclear(res);
    if (found)
        return 0;
    if (version)
        return err_set(err, ERR_NOT_FOUND, "no version %d of workflow '%s'", version, name);
    return err_set(err, ERR_NOT_FOUND, "no workflow '%s'", name);
}

/* --- executions, task runs, attempts --- */

static int pg_execution_insert(struct store *st, const struct exec_row *row, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

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
    res = pq_exec_guarded(s,
                          "INSERT INTO executions (" EXEC_COLS ")"
                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,"
                          " $15, $16)",
                          &p);
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
#define EXEC_UPDATE_SQL                                                                            \
    "UPDATE executions SET status = $2, started_at = $3, finished_at = $4,"                        \
    " error = $5, schedule_id = $6, scheduled_for = $7, retried_at = $8,"                         \
    " cancel_requested_at = CASE WHEN $2 IN ('queued', 'running')"                                 \
    " THEN cancel_requested_at END WHERE id = $1"
    rc = pq_send(s, MUST_CHANGE(EXEC_UPDATE_SQL), &p, WANT_ROW_NOT_FOUND, err,
                 "cannot update execution '%s'",
                 row->id);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = pq_run(s, EXEC_UPDATE_SQL, &p, &changed, err, "cannot update execution");
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
#define TASK_INSERT_SQL                                                                            \
    "INSERT INTO task_runs (execution_id, idx, name, status, attempt,"                             \
    " available_at, started_at, finished_at, error, output, group_idx, item_index, item, child_id)" \
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    rc = pq_send(s, TASK_INSERT_SQL, &p, WANT_OK, err, "cannot insert task '%s' of %s", row->name,
                 exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, TASK_INSERT_SQL, &p);
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
    rc = pq_send(s,
                 MUST_CHANGE("UPDATE task_runs SET status = $3, attempt = $4, available_at = $5,"
                             " started_at = $6, finished_at = $7, error = $8, output = $10,"
                             " child_id = $11"
                             " WHERE execution_id = $1 AND idx = $2 AND attempt = $9"),
                 &p, WANT_ROW_CONFLICT, err, "cannot update task '%s' (%d, attempt %d) of %s",
                 name, row->idx, expected_attempt, exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s,
                  "UPDATE task_runs SET status = $3, attempt = $4, available_at = $5,"
                  " started_at = $6, finished_at = $7, error = $8, output = $10, child_id = $11"
                  " WHERE execution_id = $1 AND idx = $2 AND attempt = $9",
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot update task '%s' of %s", name, exec_id);
    changed = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (changed)
        return 0;
    /* Nothing changed: say whether the row is missing or holds another attempt. */
    p.n = 2;
    res = pq_exec(s, "SELECT attempt FROM task_runs WHERE execution_id = $1 AND idx = $2", &p);
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
#define ATTEMPT_INSERT_SQL                                                                         \
    "INSERT INTO attempts (execution_id, task_idx, number, status, node,"                          \
    " pid, pgid, proc_start, started_at, finished_at, exit_code, signal,"                          \
    " error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    rc = pq_send(s, ATTEMPT_INSERT_SQL, &p, WANT_OK, err,
                 "cannot insert attempt %d of task %d of %s", row->number, row->task_idx, exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, ATTEMPT_INSERT_SQL, &p);
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
#define ATTEMPT_UPDATE_SQL                                                                         \
    "UPDATE attempts SET status = $4, pid = $5, pgid = $6,"                                        \
    " proc_start = $7, finished_at = $8, exit_code = $9, signal = $10,"                            \
    " error = $11, node = coalesce($12, node)"                                                     \
    " WHERE execution_id = $1 AND task_idx = $2 AND number = $3"
    rc = pq_send(s, MUST_CHANGE(ATTEMPT_UPDATE_SQL), &p, WANT_ROW_NOT_FOUND, err,
                 "cannot update attempt %d of task %d of %s", row->number, row->task_idx, exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, ATTEMPT_UPDATE_SQL, &p);
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

static const char *stream_name(enum log_stream stream)
{
    return stream == LOG_STREAM_STDERR ? "stderr" : "stdout";
}

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
    p_text(&p, stream_name(chunk->stream));
    p_i64(&p, chunk->ts);
    p_bin(&p, chunk->data, chunk->len);
#define LOG_INSERT_SQL                                                                             \
    "INSERT INTO logs (execution_id, task_idx, attempt, seq, stream, ts, data)"                    \
    " VALUES ($1, $2, $3, $4, $5, $6, $7::bytea)"
    rc = pq_send(s, LOG_INSERT_SQL, &p, WANT_OK, err,
                 "cannot append log chunk %d of attempt %d of task %d of %s", chunk->seq,
                 chunk->attempt, chunk->task_idx, exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    res = pq_exec(s, LOG_INSERT_SQL, &p);
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
#define LOG_TRIM_SQL                                                                               \
    "DELETE FROM logs WHERE execution_id = $1 AND task_idx = $2"                                   \
    " AND attempt = $3 AND seq < $4 AND ($5::text IS NULL OR stream = $5::text)"
    rc = pq_send(s, LOG_TRIM_SQL, &p, WANT_OK, err, "cannot trim a log of %s", exec_id);
    if (rc)
        return rc < 0 ? rc : 0;
    return pq_run(s, LOG_TRIM_SQL, &p, NULL, err, "cannot trim a log");
}

static int pq_read_chunk(struct pg_store *s, const PGresult *r, int i, const char *exec_id,
                         struct log_chunk *c, struct err *err)
{
    const char *stream = PQgetvalue(r, i, 3);
    unsigned char *data;
    size_t len = 0;

    c->task_idx = g_int(r, i, 0, 0);
    c->attempt = g_int(r, i, 1, 0);
    c->seq = g_int(r, i, 2, 0);
    if (!strcmp(stream, "stdout"))
        c->stream = LOG_STREAM_STDOUT;
    else if (!strcmp(stream, "stderr"))
        c->stream = LOG_STREAM_STDERR;
    else
        return err_set(err, ERR_STORE, "unknown log stream '%s' in %s for %s", stream, s->where,
                       exec_id);
    c->ts = g_opt(r, i, 4, 0);
    data = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 5), &len);
    if (!data)
        return err_set(err, ERR_STORE, "cannot decode log chunk %d of %s in %s", c->seq, exec_id,
                       s->where);
    c->data = xmalloc(len + 1);
    if (len > 0)
        memcpy(c->data, data, len);
    c->data[len] = '\0';
    c->len = len;
    PQfreemem(data);
    return 0;
}

static int pg_logs_get(struct store *st, const char *exec_id, int task_idx, int attempt,
                       int after_seq, struct log_list *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct log_list list = {NULL, 0};
    struct params p = {0};
    const char *sql;
    PGresult *res;
    int rc = 0;
    int n;

    p_text(&p, exec_id);
    if (attempt > 0) {
        p_i64(&p, task_idx);
        p_i64(&p, attempt);
        p_i64(&p, after_seq);
        sql = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
              " WHERE execution_id = $1 AND task_idx = $2 AND attempt = $3"
              " AND seq > $4 ORDER BY seq";
    } else if (task_idx >= 0) {
        p_i64(&p, task_idx);
        sql = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
              " WHERE execution_id = $1 AND task_idx = $2 ORDER BY attempt, seq";
    } else {
        sql = "SELECT task_idx, attempt, seq, stream, ts, data FROM logs"
              " WHERE execution_id = $1 ORDER BY task_idx, attempt, seq";
    }
    res = pq_exec(s, sql, &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the logs of %s", exec_id);
    n = PQntuples(res);
    if (n > 0)
        list.items = xcalloc((size_t)n, sizeof(*list.items));
    for (int i = 0; i < n && rc == 0; i++) {
        rc = pq_read_chunk(s, res, i, exec_id, &list.items[i], err);
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

static int pq_read_exec(struct pg_store *s, const PGresult *r, int i, struct exec_row *row,
                        struct err *err)
{
    const char *status = PQgetvalue(r, i, 3);

    memset(row, 0, sizeof(*row));
    if (PQgetisnull(r, i, 0) || g_id(r, i, 0, row->id) != 0)
        return err_set(err, ERR_STORE, "bad execution id in %s", s->where);
    if (exec_status_parse(status, &row->status) != 0)
        return err_set(err, ERR_STORE, "unknown status '%s' of execution '%s' in %s", status,
                       row->id, s->where);
    row->workflow = g_str(r, i, 1);
    row->workflow_version = g_int(r, i, 2, 0);
    row->params = g_str(r, i, 4);
    if (!row->params)
        row->params = xstrdup("{}");
    row->created_at = g_opt(r, i, 5, 0);
    row->started_at = g_opt(r, i, 6, 0);
    row->finished_at = g_opt(r, i, 7, 0);
    row->error = g_str(r, i, 8);
    row->schedule_id = g_str(r, i, 9);
    row->scheduled_for = g_opt(r, i, 10, 0);
    row->owner = g_str(r, i, 11);
    row->parent_id = g_str(r, i, 12);
    row->parent_task_idx = g_int(r, i, 13, 0);
    row->depth = g_int(r, i, 14, 0);
    row->retried_at = g_opt(r, i, 15, 0);
    return 0;
}

static int pq_get_exec(struct pg_store *s, const char *id, struct exec_detail *d, struct err *err)
{
    struct params p = {0};
    PGresult *res;
    int rc;

    p_text(&p, id);
    res = pq_exec(s, "SELECT " EXEC_COLS " FROM executions WHERE id = $1", &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read execution '%s'", id);
    if (PQntuples(res) == 1)
        rc = pq_read_exec(s, res, 0, &d->exec, err);
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
        struct task_run_row *t = &d->tasks[i];
        const char *status = PQgetvalue(res, i, 2);

        d->ntasks++;
        t->idx = g_int(res, i, 0, 0);
        t->name = g_str(res, i, 1);
        if (task_status_parse(status, &t->status) != 0) {
            rc = err_set(err, ERR_STORE, "unknown status '%s' of task %d of %s in %s", status,
                         t->idx, id, s->where);
            break;
        }
        t->attempt = g_int(res, i, 3, 0);
        t->available_at = g_opt(res, i, 4, 0);
        t->started_at = g_opt(res, i, 5, 0);
        t->finished_at = g_opt(res, i, 6, 0);
        t->error = g_str(res, i, 7);
        t->output = g_str(res, i, 8);
        t->instance = !PQgetisnull(res, i, 9);
        t->group_idx = g_int(res, i, 9, -1);
        t->item_index = g_int(res, i, 10, 0);
        t->item = g_str(res, i, 11);
        t->child_id = g_str(res, i, 12);
    }
    PQclear(res);
    return rc;
}

static int pq_get_tasks(struct pg_store *s, const char *id, struct exec_detail *d, struct err *err)
{
    struct params p = {0};
    PGresult *res;

    p_text(&p, id);
    res = pq_exec(s,
                  "SELECT idx, name, status, attempt, available_at, started_at,"
                  " finished_at, error, output, group_idx, item_index, item, child_id"
                  " FROM task_runs WHERE execution_id = $1"
                  " ORDER BY idx",
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the tasks of '%s'", id);
    return pq_tasks_from(s, res, id, d, err);
}

/* The attempt rows of a query's result into d->attempts. */
static int pq_attempts_from(struct pg_store *s, PGresult *res, const char *id,
                            struct exec_detail *d, struct err *err)
{
    int rc = 0;
    int n;

    n = PQntuples(res);
    if (n > 0)
        d->attempts = xcalloc((size_t)n, sizeof(*d->attempts));
    for (int i = 0; i < n && rc == 0; i++) {
        struct attempt_row *a = &d->attempts[i];
        const char *status = PQgetvalue(res, i, 2);

        d->nattempts++;
        a->task_idx = g_int(res, i, 0, 0);
        a->number = g_int(res, i, 1, 0);
        if (attempt_status_parse(status, &a->status) != 0) {
            rc = err_set(err, ERR_STORE, "unknown status '%s' of attempt %d of task %d of %s in %s",
                         status, a->number, a->task_idx, id, s->where);
            break;
        }
        a->node = g_str(res, i, 3);
        a->pid = g_int(res, i, 4, 0);
        a->pgid = g_int(res, i, 5, 0);
        a->proc_start = g_opt(res, i, 6, 0);
        a->started_at = g_opt(res, i, 7, 0);
        a->finished_at = g_opt(res, i, 8, 0);
        a->exit_code = g_int(res, i, 9, -1);
        a->signal = g_int(res, i, 10, 0);
        a->error = g_str(res, i, 11);
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
    res = pq_exec(s,
                  "SELECT task_idx, number, status, node, pid, pgid, proc_start,"
                  " started_at, finished_at, exit_code, signal, error FROM attempts"
                  " WHERE execution_id = $1 ORDER BY task_idx, number",
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the attempts of '%s'", id);
    return pq_attempts_from(s, res, id, d, err);
}

static int pg_execution_page(struct store *st, const char *id, const struct task_page *q,
                             struct exec_detail **out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct exec_detail *d;
    struct params p = {0};
    PGresult *res;
    int began;
    int rc;

    rc = pq_read_begin(s, &began, err);
    if (rc)
        return rc;
    d = xcalloc(1, sizeof(*d));
    rc = pq_get_exec(s, id, d, err);
    if (rc == 0) {
        p_text(&p, id);
        p_i64(&p, q->after_idx);
        p_i64(&p, q->group_idx);
        p_i64(&p, q->top_only);
        p_text(&p, q->status);
        p_opt(&p, q->limit > 0 ? q->limit : 0, 0);
        res = pq_exec(s,
                      "SELECT idx, name, status, attempt, available_at, started_at,"
                      " finished_at, error, output, group_idx, item_index, item, child_id"
                      " FROM task_runs WHERE execution_id = $1 AND idx > $2::int"
                      " AND ($3::int < 0 OR group_idx = $3::int)"
                      " AND ($4::int = 0 OR group_idx IS NULL)"
                      " AND ($5::text IS NULL OR status = $5) ORDER BY idx LIMIT $6::bigint",
                      &p);
        rc = pq_ok(res) ? pq_tasks_from(s, res, id, d, err)
                        : pq_fail(s, res, err, "cannot read the tasks of '%s'", id);
    }
    if (rc == 0 && d->ntasks) {
        memset(&p, 0, sizeof(p));
        p_text(&p, id);
        p_i64(&p, d->tasks[0].idx);
        p_i64(&p, d->tasks[d->ntasks - 1].idx);
        res = pq_exec(s,
                      "SELECT task_idx, number, status, node, pid, pgid, proc_start,"
                      " started_at, finished_at, exit_code, signal, error FROM attempts"
                      " WHERE execution_id = $1 AND task_idx BETWEEN $2::int AND $3::int"
                      " ORDER BY task_idx, number",
                      &p);
        rc = pq_ok(res) ? pq_attempts_from(s, res, id, d, err)
                        : pq_fail(s, res, err, "cannot read the attempts of '%s'", id);
    }
    if (rc == 0) {
        memset(&p, 0, sizeof(p));
        p_text(&p, id);
        res = pq_exec(s,
                      "SELECT group_idx, status, count(*) FROM task_runs"
                      " WHERE execution_id = $1 AND group_idx IS NOT NULL"
                      " GROUP BY group_idx, status ORDER BY group_idx, status",
                      &p);
        if (!pq_ok(res)) {
            rc = pq_fail(s, res, err, "cannot count the tasks of '%s'", id);
        } else {
            int n = PQntuples(res);
            if (n > 0)
                d->counts = xcalloc((size_t)n, sizeof(*d->counts));
            for (int i = 0; i < n && rc == 0; i++) {
                struct group_count *c = &d->counts[i];
                const char *status = PQgetvalue(res, i, 1);
                c->group_idx = g_int(res, i, 0, -1);
                c->n = g_opt(res, i, 2, 0);
                if (task_status_parse(status, &c->status) != 0)
                    rc =
                        err_set(err, ERR_STORE, "unknown task status '%s' in %s", status, s->where);
                else
                    d->ncounts++;
            }
            PQclear(res);
        }
    }
    pq_read_end(s, began);
    if (rc) {
        exec_detail_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

static int pg_execution_get(struct store *st, const char *id, struct exec_detail **out,
                            struct err *err)
{
    struct pg_store *s = pg(st);
    struct exec_detail *d;
    int began;
    int rc;

    rc = pq_read_begin(s, &began, err);
    if (rc)
        return rc;
    d = xcalloc(1, sizeof(*d));
    rc = pq_get_exec(s, id, d, err);
    if (rc == 0)
        rc = pq_get_tasks(s, id, d, err);
    if (rc == 0)
        rc = pq_get_attempts(s, id, d, err);
    pq_read_end(s, began);
    if (rc) {
        exec_detail_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

/* Run one list query (one status, or none) and append its rows to `list`. */
static int pq_list_query(struct pg_store *s, const struct exec_filter *f, const char *status,
                         struct exec_list *list, size_t *alloc, struct err *err)
{
    struct params p = {0};
    const char *sql;
    PGresult *res;
    int rc = 0;
    int n;

    p_text(&p, f->before_id);
    p_i64(&p, f->since ? f->since : INT64_MIN);
    p_i64(&p, f->until ? f->until : INT64_MAX);
    p_i64(&p, f->limit);
    p_text(&p, f->workflow);
    p_text(&p, status);
    if (f->parent_id) {
        p_text(&p, f->parent_id);
        sql = "SELECT " EXEC_COLS " FROM executions WHERE parent_id = $7"
              " AND ($5::text IS NULL OR workflow = $5) AND ($6::text IS NULL OR status = $6)"
              LIST_TAIL;
    } else if (f->workflow && status)
        sql = "SELECT " EXEC_COLS " FROM executions WHERE workflow = $5 AND status = $6"
              " AND $5::text IS NOT NULL AND $6::text IS NOT NULL" LIST_TAIL;
    else if (f->workflow)
        sql = "SELECT " EXEC_COLS " FROM executions WHERE workflow = $5"
              " AND $6::text IS NULL" LIST_TAIL;
    else if (status)
        sql = "SELECT " EXEC_COLS " FROM executions WHERE status = $6"
              " AND $5::text IS NULL" LIST_TAIL;
    else
        sql = "SELECT " EXEC_COLS " FROM executions WHERE $5::text IS NULL"
              " AND $6::text IS NULL" LIST_TAIL;
    res = pq_exec(s, sql, &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list executions in %s", s->where);
    n = PQntuples(res);
    for (int i = 0; i < n && rc == 0; i++) {
        XGROW(list->items, *alloc, list->n + 1);
        rc = pq_read_exec(s, res, i, &list->items[list->n], err);
        list->n++; /* counted even on failure: exec_list_release() releases it */
    }
    PQclear(res);
    return rc;
}

static int exec_row_cmp_desc(const void *a, const void *b)
{
    const struct exec_row *x = a;
    const struct exec_row *y = b;
    return strcmp(y->id, x->id);
}

/*
 * One query per status in the mask, each stopping after `limit` rows, then
 * merged newest first and cut to `limit` (as in sqlite.c; see
 * docs/internals/store.md).
 */
static int pg_executions_list(struct store *st, const struct exec_filter *f, struct exec_list *out,
                              struct err *err)
{
    struct pg_store *s = pg(st);
    struct exec_list list = {NULL, 0};
    unsigned all = (1u << EXEC_STATUS_COUNT) - 1;
    unsigned mask = f->status_mask & all;
    size_t alloc = 0;
    int nstatus = 0;
    int began;
    int rc;

    if (mask == all)
        mask = 0;
    rc = pq_read_begin(s, &began, err);
    if (rc)
        return rc;
    if (!mask)
        rc = pq_list_query(s, f, NULL, &list, &alloc, err);
    for (int i = 0; mask && i < EXEC_STATUS_COUNT && rc == 0; i++) {
        if (!(mask & (1u << i)))
            continue;
        rc = pq_list_query(s, f, exec_status_name((enum exec_status)i), &list, &alloc, err);
        nstatus++;
    }
    pq_read_end(s, began);
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
    res = pq_exec(s, "SELECT id FROM executions WHERE status IN ($1, $2) ORDER BY id", &p);
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
    return pq_run(pg(st), "SELECT count(*) FROM schema_version", NULL, NULL, err, "cannot query");
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

    res = pq_exec(s,
                  "SELECT w.name, w.version, w.definition, w.created_at FROM workflows w"
                  " WHERE w.deleted_at IS NULL AND w.version ="
                  " (SELECT max(v.version) FROM workflows v WHERE v.name = w.name)"
                  " ORDER BY w.name",
                  NULL);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the workflows in %s", s->where);
    n = (size_t)PQntuples(res);
    if (n)
        rows = xcalloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        rows[i].name = g_str(res, (int)i, 0);
        rows[i].version = g_int(res, (int)i, 1, 0);
        rows[i].definition = g_str(res, (int)i, 2);
        rows[i].created_at = g_opt(res, (int)i, 3, 0);
    }
    PQclear(res);
    *out = rows;
    *out_n = n;
    return 0;
}

static int pg_workflow_delete(struct store *st, const char *name, int64_t now, struct err *err)
{
    long changed = 0;
    int rc = pq_update_by(pg(st),
                          "UPDATE workflows SET deleted_at = $2 WHERE name = $1"
                          " AND deleted_at IS NULL",
                          name, now, &changed, "delete workflow", err);

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
    res = pq_exec(s, "SELECT execution_id FROM idempotency_keys WHERE workflow = $1 AND key = $2",
                  &p);
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
    rc = pq_run(s,
                "INSERT INTO idempotency_keys (workflow, key, execution_id, created_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (workflow, key) DO NOTHING",
                &p, &changed, err, "cannot record an idempotency key");
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_CONFLICT,
                     "cannot record idempotency key '%s' of '%s' for %s: UNIQUE constraint "
                     "failed: the key is taken",
                     key, workflow, exec_id);
    return rc;
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
    res = pq_exec_guarded(s,
                          "INSERT INTO api_keys (" KEY_COLS ")"
                          " VALUES ($1, $2, $3, $4::bytea, $5, $6, $7, $8, $9)",
                          &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot insert key '%s' ('%s', prefix '%s')", row->id,
                       row->name, row->prefix);
    PQclear(res);
    return 0;
}

/* Fill `k` from the KEY_COLS of row i; allocates only on success. */
static int pq_read_key(struct pg_store *s, const PGresult *r, int i, struct key_row *k,
                       struct err *err)
{
    unsigned char *hash;
    size_t hashlen = 0;
    size_t prefixlen = (size_t)PQgetlength(r, i, 2);

    memset(k, 0, sizeof(*k));
    if (PQgetisnull(r, i, 0) || g_id(r, i, 0, k->id) != 0)
        return err_set(err, ERR_STORE, "bad key id in %s", s->where);
    if (PQgetisnull(r, i, 2) || prefixlen >= KEY_PREFIX_MAX)
        return err_set(err, ERR_STORE, "bad prefix of key '%s' in %s", k->id, s->where);
    memcpy(k->prefix, PQgetvalue(r, i, 2), prefixlen);
    k->prefix[prefixlen] = '\0';
    hash = PQunescapeBytea((const unsigned char *)PQgetvalue(r, i, 3), &hashlen);
    if (!hash || hashlen != KEY_HASH_LEN) {
        PQfreemem(hash);
        return err_set(err, ERR_STORE, "bad hash of key '%s' in %s (%zu bytes, want %d)", k->id,
                       s->where, hashlen, KEY_HASH_LEN);
    }
    memcpy(k->hash, hash, KEY_HASH_LEN);
    PQfreemem(hash);
    k->scopes = (unsigned)g_opt(r, i, 4, 0);
    k->created_at = g_opt(r, i, 5, 0);
    k->expires_at = g_opt(r, i, 6, 0);
    k->last_used_at = g_opt(r, i, 7, 0);
    k->revoked_at = g_opt(r, i, 8, 0);
    k->name = g_str(r, i, 1);
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
    res = pq_exec(s, "SELECT " KEY_COLS " FROM api_keys WHERE prefix = $1", &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the key with prefix '%s'", prefix);
    if (PQntuples(res) == 1) {
        rc = pq_read_key(s, res, 0, out, err);
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

    res = pq_exec(s, "SELECT " KEY_COLS " FROM api_keys ORDER BY created_at DESC, id DESC", NULL);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the keys in %s", s->where);
    nt = PQntuples(res);
    if (nt > 0)
        rows = xcalloc((size_t)nt, sizeof(*rows));
    for (int i = 0; i < nt && rc == 0; i++) {
        rc = pq_read_key(s, res, i, &rows[n], err);
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
        rc = pq_update_by(s,
                          "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
                          id_or_name, now, &changed, "revoke key", err);
    if (rc == 0 && changed == 0)
        rc = pq_update_by(s,
                          "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2)"
                          " WHERE name = $1",
                          id_or_name, now, &changed, "revoke key", err);
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no key '%s'", id_or_name);
    return rc;
}

static int pg_key_touch(struct store *st, const char *id, int64_t now, struct err *err)
{
    long changed = 0;
    int rc = pq_update_by(pg(st),
                          "UPDATE api_keys SET last_used_at ="
                          " CASE WHEN last_used_at > $2 THEN last_used_at ELSE $2 END"
                          " WHERE id = $1",
                          id, now, &changed, "record the use of key", err);

    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no key '%s'", id);
    return rc;
}

/* --- retention and visibility --- */

static int pg_executions_purge(struct store *st, const char *workflow, const char *const *except,
                               size_t nexcept, int64_t before, int batch, int *out_deleted,
                               struct err *err)
{
    struct pg_store *s = pg(st);
    struct strbuf sb = STRBUF_INIT;
    struct params p = {0};
    long deleted = 0;
    int began;
    int rc;

    /* The names are bound, never spliced: the text holds placeholders only. */
    strbuf_adds(&sb, PURGE_HEAD);
    if (workflow) {
        strbuf_adds(&sb, " AND workflow = $5");
    } else if (nexcept) {
        strbuf_adds(&sb, " AND workflow NOT IN (");
        for (size_t i = 0; i < nexcept; i++)
            strbuf_addf(&sb, "%s$%d", i ? ", " : "", PURGE_FIRST_NAME + (int)i);
        strbuf_adds(&sb, ")");
    }
    strbuf_adds(&sb, PURGE_TAIL);
    p_i64(&p, before);
    p_i64(&p, batch);
    p_text(&p, exec_status_name(EXEC_QUEUED));
    p_text(&p, exec_status_name(EXEC_RUNNING));
    if (workflow)
        p_text(&p, workflow);
    for (size_t i = 0; i < nexcept; i++)
        p_text(&p, except[i]);
    rc = pq_write_begin(s, &began, err);
    if (rc == 0)
        rc = pq_run(s, sb.buf, &p, &deleted, err, "cannot purge executions");
    rc = pq_write_end(s, began, rc, err);
    strbuf_release(&sb);
    if (rc == 0)
        *out_deleted = (int)deleted;
    return rc;
}

static int pq_count_min(struct pg_store *s, const char *sql, const char *status, int64_t *out_count,
                        int64_t *out_min, struct err *err)
{
    struct params p = {0};
    PGresult *res;

    if (status)
        p_text(&p, status);
    res = pq_exec(s, sql, &p);
    if (!pq_ok(res) || PQntuples(res) != 1)
        return pq_fail(s, res, err, "cannot count the work in %s", s->where);
    *out_count = g_opt(res, 0, 0, 0);
    *out_min = g_opt(res, 0, 1, 0);
    PQclear(res);
    return 0;
}

static int pg_counts_get(struct store *st, struct store_counts *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct store_counts c = {0, 0, 0, 0};
    int began;
    int rc;

    rc = pq_read_begin(s, &began, err);
    if (rc)
        return rc;
    /* 'queued' is a literal so the planner can use the partial index task_runs_queued. */
    rc = pq_count_min(s,
                      "SELECT count(*), min(coalesce(t.available_at, e.started_at, e.created_at))"
                      " FROM task_runs t LEFT JOIN executions e ON e.id = t.execution_id"
                      " WHERE t.status = 'queued'",
                      NULL, &c.tasks_queued, &c.oldest_queued_since, err);
    if (rc == 0)
        rc = pq_count_min(s, "SELECT count(*), min(started_at) FROM executions WHERE status = $1",
                          exec_status_name(EXEC_RUNNING), &c.executions_running,
                          &c.oldest_running_started, err);
    pq_read_end(s, began);
    if (rc == 0)
        *out = c;
    return rc;
}

/* --- schedules --- */

static int pq_read_schedule(struct pg_store *s, const PGresult *r, int i, struct schedule_row *row,
                            struct err *err)
{
    memset(row, 0, sizeof(*row));
    if (PQgetisnull(r, i, 0) || g_id(r, i, 0, row->id) != 0)
        return err_set(err, ERR_STORE, "bad schedule id in %s", s->where);
    row->workflow = g_str(r, i, 1);
    row->name = g_str(r, i, 2);
    row->spec_hash = g_str(r, i, 3);
    row->paused = g_opt(r, i, 4, 0) != 0;
    row->next_fire_at = g_opt(r, i, 5, 0);
    row->last_fire_at = g_opt(r, i, 6, 0);
    row->created_at = g_opt(r, i, 7, 0);
    row->updated_at = g_opt(r, i, 8, 0);
    row->from_api = g_opt(r, i, 9, 0) != 0;
    row->spec = g_str(r, i, 10);
    return 0;
}

static int pg_schedules_list(struct store *st, struct schedule_row **out, size_t *out_n,
                             struct err *err)
{
    struct pg_store *s = pg(st);
    struct schedule_row *rows = NULL;
    size_t n = 0;
    PGresult *res;
    int rc = 0;
    int nt;

    res = pq_exec(s, "SELECT " SCHED_COLS " FROM schedules ORDER BY workflow, name", NULL);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the schedules in %s", s->where);
    nt = PQntuples(res);
    if (nt > 0)
        rows = xcalloc((size_t)nt, sizeof(*rows));
    for (int i = 0; i < nt && rc == 0; i++) {
        rc = pq_read_schedule(s, res, i, &rows[n], err);
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
    res = pq_exec(s, "SELECT " SCHED_COLS " FROM schedules WHERE id = $1", &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read schedule '%s'", id);
    if (PQntuples(res) == 1) {
        rc = pq_read_schedule(s, res, 0, out, err);
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
    res = pq_exec_guarded(s,
                          "INSERT INTO schedules (" SCHED_COLS ")"
                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                          " ON CONFLICT (workflow, name) DO UPDATE SET"
                          " from_api = excluded.from_api, spec = excluded.spec,"
                          " spec_hash = excluded.spec_hash, paused = excluded.paused,"
                          " next_fire_at = excluded.next_fire_at,"
                          " last_fire_at = excluded.last_fire_at,"
                          " updated_at = excluded.updated_at",
                          &p);
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

#define SCHED_DELETE_SQL "DELETE FROM schedules WHERE id = $1"
#define FIRES_DELETE_SQL "DELETE FROM schedule_fires WHERE schedule_id = $1"

static int pg_schedules_prune(struct store *st, const char *workflow, const char *const *names,
                              size_t nnames, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res = NULL;
    int began;
    int rc;

    rc = pq_write_begin(s, &began, err);
    if (rc)
        return rc;
    p_text(&p, workflow);
    res = pq_exec(s, "SELECT id, name FROM schedules WHERE workflow = $1 AND from_api = 0", &p);
    if (!pq_ok(res)) {
        rc = pq_fail(s, res, err, "cannot list the schedules of '%s'", workflow);
        res = NULL;
    }
    for (int i = 0; res && i < PQntuples(res) && rc == 0; i++) {
        const char *id = PQgetvalue(res, i, 0);
        if (name_listed(PQgetvalue(res, i, 1), names, nnames))
            continue;
        rc = pq_exec_by(s, FIRES_DELETE_SQL, id, NULL, "delete the fires of schedule", err);
        if (rc == 0)
            rc = pq_exec_by(s, SCHED_DELETE_SQL, id, NULL, "delete schedule", err);
    }
    PQclear(res);
    return pq_write_end(s, began, rc, err);
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
    rc = pq_run(s,
                "UPDATE schedules SET spec_hash = $2, next_fire_at = $3,"
                " last_fire_at = $4, updated_at = $5 WHERE id = $1",
                &p, &changed, err, "cannot record the state of a schedule");
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

    rc = pq_write_begin(s, &began, err);
    if (rc)
        return rc;
    rc = pq_exec_by(s, SCHED_DELETE_SQL, id, &changed, "delete schedule", err);
    if (rc == 0 && changed == 0)
        rc = err_set(err, ERR_NOT_FOUND, "no schedule '%s'", id);
    if (rc == 0)
        rc = pq_exec_by(s, FIRES_DELETE_SQL, id, NULL, "delete the fires of schedule", err);
    return pq_write_end(s, began, rc, err);
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
    res = pq_exec(s, "UPDATE schedules SET paused = $2, updated_at = $3 WHERE id = $1", &p);
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
    res = pq_exec(s,
                  "INSERT INTO schedule_fires (" FIRE_COLS ") VALUES ($1, $2, $3, $4, $5, $6)"
                  " ON CONFLICT (schedule_id, scheduled_for) DO UPDATE SET" FIRE_REPLACE,
                  &p);
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
    res = pq_exec(s,
                  "SELECT count(*) FROM schedule_fires WHERE schedule_id = $1"
                  " AND scheduled_for = $2",
                  &p);
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
    const char *status;
    int rc = 0;

    p_text(&p, schedule_id);
    p_i64(&p, scheduled_for);
    res = pq_exec(s,
                  "SELECT " FIRE_COLS " FROM schedule_fires WHERE schedule_id = $1"
                  " AND scheduled_for = $2",
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot read the fire of schedule '%s' due at %lld",
                       schedule_id, (long long)scheduled_for);
    if (PQntuples(res) != 1) {
        PQclear(res);
        return err_set(err, ERR_NOT_FOUND, "no fire of schedule '%s' due at %lld", schedule_id,
                       (long long)scheduled_for);
    }
    status = PQgetvalue(res, 0, 2);
    out->scheduled_for = g_opt(res, 0, 1, 0);
    if (store__fire_status_parse(status, &out->status) != 0)
        rc = err_set(err, ERR_STORE, "unknown status '%s' of a fire due at %lld in %s", status,
                     (long long)out->scheduled_for, s->where);
    else if (g_id(res, 0, 3, out->execution_id) != 0)
        rc = err_set(err, ERR_STORE, "bad execution id of a fire due at %lld in %s",
                     (long long)out->scheduled_for, s->where);
    if (!rc) {
        out->created_at = g_opt(res, 0, 5, 0);
        out->schedule_id = g_str(res, 0, 0);
        out->reason = g_str(res, 0, 4);
    }
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
    res = pq_exec(s,
                  "SELECT scheduled_for FROM schedule_fires WHERE schedule_id = $1"
                  " AND status = 'queued' ORDER BY scheduled_for LIMIT $2",
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the queued fires of schedule '%s'",
                       schedule_id);
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
    res = pq_exec(s,
                  "SELECT " FIRE_COLS " FROM schedule_fires WHERE schedule_id = $1"
                  " ORDER BY scheduled_for DESC LIMIT $2",
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the fires of schedule '%s'", schedule_id);
    nt = PQntuples(res);
    if (nt > 0)
        rows = xcalloc((size_t)nt, sizeof(*rows));
    for (int i = 0; i < nt && rc == 0; i++) {
        struct fire_row *r = &rows[n++]; /* counted even on failure: fire_rows_free() */
        const char *status = PQgetvalue(res, i, 2);

        r->scheduled_for = g_opt(res, i, 1, 0);
        if (store__fire_status_parse(status, &r->status) != 0) {
            rc = err_set(err, ERR_STORE, "unknown status '%s' of a fire due at %lld in %s", status,
                         (long long)r->scheduled_for, s->where);
            break;
        }
        if (g_id(res, i, 3, r->execution_id) != 0) {
            rc = err_set(err, ERR_STORE, "bad execution id of a fire due at %lld in %s",
                         (long long)r->scheduled_for, s->where);
            break;
        }
        r->created_at = g_opt(res, i, 5, 0);
        r->schedule_id = g_str(res, i, 0);
        r->reason = g_str(res, i, 4);
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

/* The database's clock in ms: one clock for every node's lease. */
#define PG_NOW_MS "(extract(epoch FROM clock_timestamp()) * 1000)::bigint"
/* An execution whose owner has no live lease: $LEASE is the lease parameter. */
#define PG_OWNER_GONE(lease)                                                                       \
    "(n.id IS NULL OR n.stopped_at IS NOT NULL OR n.heartbeat_at < " PG_NOW_MS " - " lease ")"
#define PG_UNFINISHED "e.status IN ('queued', 'running')"

static int pg_node_register(struct store *st, const struct node_row *row, int64_t lease_ms,
                            struct err *err)
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
    rc = pq_run(s,
                "INSERT INTO nodes (id, host, pid, role, version, started_at, heartbeat_at, slots)"
                " VALUES ($1, $2, $3, $4, $5, " PG_NOW_MS ", " PG_NOW_MS ", $7)"
                " ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,"
                " role = EXCLUDED.role, version = EXCLUDED.version, slots = EXCLUDED.slots,"
                " started_at = EXCLUDED.started_at, heartbeat_at = EXCLUDED.heartbeat_at,"
                " stopped_at = NULL"
                " WHERE $6 <= 0 OR nodes.stopped_at IS NOT NULL"
                " OR nodes.heartbeat_at < " PG_NOW_MS " - $6",
                &p, &changed, err, "cannot register the node");
    if (rc)
        return rc;
    if (changed == 0)
        return err_set(err, ERR_BUSY,
                       "node name '%s' is in use by a running node (its heartbeat is recent); "
                       "give this one another --node name",
                       row->id);
    /* Forget offers given up on runners gone for a day, then nodes gone for a
     * day that own nothing. */
    rc = pq_run(s,
                "DELETE FROM task_offers o WHERE o.cancel_requested = 1"
                " AND o.finished_at IS NULL AND NOT EXISTS (SELECT 1 FROM nodes n"
                " WHERE n.id = o.runner_node AND n.heartbeat_at >= " PG_NOW_MS " - 86400000)",
                NULL, NULL, err, "cannot forget old offers");
    if (rc)
        return rc;
    memset(&p, 0, sizeof(p));
    rc = pq_run(s,
                "DELETE FROM nodes n WHERE n.heartbeat_at < " PG_NOW_MS " - 86400000"
                " AND NOT EXISTS (SELECT 1 FROM executions e WHERE e.owner_node = n.id"
                " AND " PG_UNFINISHED ")",
                NULL, NULL, err, "cannot forget old nodes");
    return rc;
}

static int pg_node_stop(struct store *st, const char *id, struct err *err)
{
    struct params p = {0};

    p_text(&p, id);
    return pq_run(pg(st), "UPDATE nodes SET stopped_at = " PG_NOW_MS " WHERE id = $1", &p, NULL,
                  err, "cannot record the node's stop");
}

static int pg_nodes_list(struct store *st, struct node_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct node_row *rows = NULL;
    PGresult *res;
    size_t n;

    res = pq_exec(s,
                  "SELECT n.id, n.host, n.pid, n.role, n.version, n.started_at, n.heartbeat_at,"
                  " n.stopped_at, (SELECT count(*) FROM executions e WHERE e.owner_node = n.id"
                  " AND " PG_UNFINISHED "), " PG_NOW_MS ", n.slots"
                  " FROM nodes n ORDER BY n.heartbeat_at DESC, n.id LIMIT 1000",
                  NULL);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot list the nodes in %s", s->where);
    n = (size_t)PQntuples(res);
    if (n)
        rows = xcalloc(n, sizeof(*rows));
    for (size_t i = 0; i < n; i++) {
        int r = (int)i;
        rows[i].id = g_str(res, r, 0);
        rows[i].host = g_str(res, r, 1);
        rows[i].pid = g_int(res, r, 2, 0);
        rows[i].role = g_str(res, r, 3);
        rows[i].version = g_str(res, r, 4);
        rows[i].started_at = g_opt(res, r, 5, 0);
        rows[i].heartbeat_at = g_opt(res, r, 6, 0);
        rows[i].stopped_at = g_opt(res, r, 7, 0);
        rows[i].executions = g_opt(res, r, 8, 0);
        rows[i].db_now = g_opt(res, r, 9, 0);
        rows[i].slots = g_int(res, r, 10, 0);
    }
    PQclear(res);
    *out = rows;
    *out_n = n;
    return 0;
}

static int pg_executions_hourly(struct store *st, int64_t since, const char *since_id,
                                struct exec_hour_count **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct exec_hour_count *rows = NULL;
    struct params p = {0};
    PGresult *res;
    size_t n, k = 0;

    p_text(&p, since_id);
    p_i64(&p, since);
    res = pq_exec(s,
                  "SELECT created_at / 3600000, status, count(*) FROM executions"
                  " WHERE id >= $1 AND created_at >= $2 GROUP BY 1, 2 ORDER BY 1, 2",
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot count the executions by hour in %s", s->where);
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
    return pq_ids(s,
                  pq_exec(s,
                          "UPDATE executions SET owner_node = $1 WHERE id IN ("
                          " SELECT e.id FROM executions e LEFT JOIN nodes n ON n.id = e.owner_node"
                          " WHERE " PG_UNFINISHED " AND (($3::boolean AND e.owner_node IS NULL)"
                          " OR ($4::boolean AND e.owner_node <> $1 AND " PG_OWNER_GONE("$5") ")"
                          " OR ($6::boolean AND e.owner_node = $1))"
                          " ORDER BY e.created_at, e.id LIMIT $2 FOR UPDATE OF e SKIP LOCKED)"
                          " RETURNING id",
                          &p),
                  out_ids, out_n, err, "cannot claim executions");
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
    rc = pq_run(s,
                "UPDATE executions e SET owner_node = $2 WHERE e.id = $1"
                " AND (e.owner_node IS NULL OR e.owner_node = $2 OR NOT " PG_UNFINISHED
                " OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = e.owner_node"
                " AND n.stopped_at IS NULL AND n.heartbeat_at >= " PG_NOW_MS " - $3))",
                &p, &changed, err, "cannot claim the execution");
    if (rc || changed)
        return rc;
    memset(&p, 0, sizeof(p));
    p_text(&p, id);
    res = pq_exec(s, "SELECT owner_node FROM executions WHERE id = $1", &p);
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
    rc = pq_send(s,
                 "SELECT 1 / (CASE WHEN owner_node IS DISTINCT FROM $2 THEN 0 ELSE 1 END)"
                 " FROM executions WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                 &p, WANT_FENCE, err, "ownership check of %zu execution%s", n,
                 n == 1 ? "" : "s");
    if (rc) {
        strbuf_release(&arr);
        return rc < 0 ? rc : 0;
    }
    /* Lock every row (so a claim by another node waits or skips them), return
     * the ones that are not ours any more. */
    rc = pq_ids(s,
                pq_exec(s,
                        "SELECT id FROM (SELECT id, owner_node FROM executions"
                        " WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE) x"
                        " WHERE owner_node IS DISTINCT FROM $2",
                        &p),
                out_lost, out_nlost, err, "cannot check the ownership of executions");
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
    rc = pq_run(pg(st),
                "UPDATE executions SET cancel_requested_at = $2 WHERE id = $1"
                " AND status IN ('queued', 'running')",
                &p, &changed, err, "cannot request the cancel");
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
    return pq_ids(s,
                  pq_exec(s,
                          "SELECT e.id FROM executions e WHERE e.owner_node = $1 AND " PG_UNFINISHED
                          " AND e.cancel_requested_at IS NOT NULL",
                          &p),
                  out_ids, out_n, err, "cannot read cancel requests");
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
    rc = pq_send(s, "SELECT pg_notify($1, $2)", &p, WANT_OK, err, "cannot notify");
    if (rc)
        return rc < 0 ? rc : 0;
    return pq_run(s, "SELECT pg_notify($1, $2)", &p, NULL, err, "cannot notify");
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
    res = pq_exec(s,
                  "INSERT INTO leases (name, node, expires_at) VALUES ($1, $2, " PG_NOW_MS " + $3)"
                  " ON CONFLICT (name) DO UPDATE SET node = EXCLUDED.node,"
                  " expires_at = EXCLUDED.expires_at"
                  " WHERE leases.node = EXCLUDED.node OR leases.expires_at < " PG_NOW_MS
                  " RETURNING node",
                  &p);
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
    return pq_run(pg(st), "UPDATE leases SET expires_at = 0 WHERE name = $1 AND node = $2", &p,
                  NULL, err, "cannot release a lease");
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
    if (pq_run(s, "SET client_min_messages = warning", NULL, NULL, err, "cannot configure"))
        return err->code;
    if ((s->flags & STORE_READONLY) &&
        pq_run(s, "SET default_transaction_read_only = on", NULL, NULL, err, "cannot configure"))
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
                              struct node_beat *out, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};
    PGresult *res;

    p_text(&p, id);
    p_i64(&p, lease_ms);
    res = pq_exec(s,
                  "UPDATE nodes SET heartbeat_at = " PG_NOW_MS " WHERE id = $1"
                  " RETURNING (SELECT count(*) FROM executions e"
                  " LEFT JOIN nodes n ON n.id = e.owner_node"
                  " WHERE " PG_UNFINISHED " AND (e.owner_node IS NULL OR " PG_OWNER_GONE("$2") ")),"
                  " (SELECT count(*) FROM task_offers WHERE runner_node IS NULL),"
                  " (SELECT coalesce(sum(slots), 0) FROM nodes WHERE id <> $1"
                  " AND stopped_at IS NULL AND heartbeat_at >= " PG_NOW_MS " - $2)",
                  &p);
    if (!pq_ok(res))
        return pq_fail(s, res, err, "cannot renew the heartbeat of node '%s' in %s", id,
                       s->where);
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

#define OFFER_COLS                                                                                 \
    "o.execution_id, o.task_idx, o.attempt, o.owner_node, o.runner_node, o.spec, o.offered_at,"    \
    " o.runner, o.pid, o.proc_start, o.finished_at, o.status, o.exit_code, o.signal, o.error,"     \
    " o.output, o.cancel_requested"

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
    return pq_write(pg(st),
                    "INSERT INTO task_offers (execution_id, task_idx, attempt, owner_node, spec,"
                    " offered_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    &p, err, "cannot offer a task");
}

static int pg_offer_delete(struct store *st, const char *exec_id, int task_idx, int attempt,
                           struct err *err)
{
    struct params p = {0};

    p_offer_key(&p, exec_id, task_idx, attempt);
    return pq_write(pg(st),
                    "DELETE FROM task_offers WHERE execution_id = $1 AND task_idx = $2"
                    " AND attempt = $3",
                    &p, err, "cannot delete an offer");
}

static int pg_offer_cancel(struct store *st, const char *exec_id, int task_idx, int attempt,
                           struct err *err)
{
    struct params p = {0};

    p_offer_key(&p, exec_id, task_idx, attempt);
    return pq_write(pg(st),
                    "UPDATE task_offers SET cancel_requested = 1 WHERE execution_id = $1"
                    " AND task_idx = $2 AND attempt = $3",
                    &p, err, "cannot cancel an offer");
}

static int pg_offers_claim(struct store *st, const char *runner, int limit,
                           struct offer_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, runner);
    p_i64(&p, limit);
    return pq_offers(s,
                     pq_exec(s,
                             "UPDATE task_offers o SET runner_node = $1, claimed_at = " PG_NOW_MS
                             " WHERE (o.execution_id, o.task_idx, o.attempt) IN ("
                             " SELECT execution_id, task_idx, attempt FROM task_offers"
                             " WHERE runner_node IS NULL ORDER BY offered_at"
                             " LIMIT $2 FOR UPDATE SKIP LOCKED)"
                             " RETURNING " OFFER_COLS,
                             &p),
                     0, out, out_n, err, "cannot claim offers");
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
        return pq_write(pg(st),
                        "UPDATE task_offers SET runner = $5, pid = $6, proc_start = $7"
                        " WHERE execution_id = $1 AND task_idx = $2 AND attempt = $3"
                        " AND runner_node = $4 AND finished_at IS NULL",
                        &p, err, "cannot report on an offer");
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
    return pq_write(pg(st),
                    "UPDATE task_offers SET runner = $5, pid = $6, proc_start = $7,"
                    " finished_at = $8, status = $9, exit_code = $10, signal = $11, error = $12,"
                    " output = $13 WHERE execution_id = $1 AND task_idx = $2 AND attempt = $3"
                    " AND runner_node = $4",
                    &p, err, "cannot report on an offer");
}

static int pg_offers_owned(struct store *st, const char *owner, int64_t lease_ms,
                           struct offer_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, owner);
    p_i64(&p, lease_ms);
    return pq_offers(s,
                     pq_exec(s,
                             "SELECT " OFFER_COLS ", (o.finished_at IS NULL AND NOT EXISTS ("
                             "SELECT 1 FROM nodes n WHERE n.id = o.runner_node"
                             " AND n.stopped_at IS NULL AND n.heartbeat_at >= " PG_NOW_MS
                             " - $2)) FROM task_offers o WHERE o.owner_node = $1"
                             " AND o.runner_node IS NOT NULL AND (o.finished_at IS NOT NULL"
                             " OR (o.cancel_requested = 0 AND NOT EXISTS (SELECT 1 FROM nodes n"
                             " WHERE n.id = o.runner_node AND n.stopped_at IS NULL"
                             " AND n.heartbeat_at >= " PG_NOW_MS " - $2)))",
                             &p),
                     1, out, out_n, err, "cannot read the offers of a node");
}

static int pg_offers_cancelled(struct store *st, const char *runner, struct offer_row **out,
                               size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, runner);
    return pq_offers(s,
                     pq_exec(s,
                             "SELECT " OFFER_COLS " FROM task_offers o WHERE o.runner_node = $1"
                             " AND o.cancel_requested = 1 AND o.finished_at IS NULL",
                             &p),
                     0, out, out_n, err, "cannot read cancelled offers");
}

static int pg_offers_adopt(struct store *st, const char *exec_id, const char *owner,
                           struct offer_row **out, size_t *out_n, struct err *err)
{
    struct pg_store *s = pg(st);
    struct params p = {0};

    p_text(&p, exec_id);
    p_text(&p, owner);
    return pq_offers(s,
                     pq_exec(s,
                             "UPDATE task_offers o SET owner_node = $2 WHERE o.execution_id = $1"
                             " RETURNING " OFFER_COLS,
                             &p),
                     0, out, out_n, err, "cannot adopt offers");
}

const struct store_backend store__postgres_backend = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .schema_version = pg_schema_version,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .workflow_put = pg_workflow_put,
    .workflow_get = pg_workflow_get,
    .execution_insert = pg_execution_insert,
    .execution_update = pg_execution_update,
    .task_run_insert = pg_task_run_insert,
    .task_run_update = pg_task_run_update,
    .attempt_insert = pg_attempt_insert,
    .attempt_update = pg_attempt_update,
    .log_append = pg_log_append,
    .log_trim = pg_log_trim,
    .execution_get = pg_execution_get,
    .execution_page = pg_execution_page,
    .executions_list = pg_executions_list,
    .executions_unfinished = pg_executions_unfinished,
    .logs_get = pg_logs_get,
    .ping = pg_ping,
    .workflows_list = pg_workflows_list,
    .workflow_delete = pg_workflow_delete,
    .idempotency_get = pg_idempotency_get,
    .idempotency_put = pg_idempotency_put,
    .key_insert = pg_key_insert,
    .key_get_by_prefix = pg_key_get_by_prefix,
    .keys_list = pg_keys_list,
    .key_revoke = pg_key_revoke,
    .key_touch = pg_key_touch,
    .executions_purge = pg_executions_purge,
    .counts_get = pg_counts_get,
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
    .executions_hourly = pg_executions_hourly,
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
};
