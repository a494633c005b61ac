/*
 * Unit tests for src/store with the SQLite backend: open and migrations,
 * workflows, executions, task runs, attempts, fencing, transactions, lists,
 * logs, readers beside a writer, the server additions (workflow list and
 * delete, idempotency keys, API keys, purge, counts, migration of an older
 * database), schedules and their fires, and the error paths.
 *
 * Each test gets a fresh directory under /tmp (removed afterwards) and a
 * writer store opened on "<dir>/data".
 *
 * With ORCH_TEST_PG set (a libpq URL or key=value string of a server where
 * we may create databases), the same tests run a second time on PostgreSQL:
 * each test gets a fresh database (created through ORCH_TEST_PG, dropped at
 * teardown) and f->data is its location. Tests of SQLite-only behaviour
 * (files, WAL readers, query plans, the busy writer, hand-made old files)
 * are skipped there, with the reason printed. tests/pg/run-with-pg.sh
 * starts a private server for this (the unit.test_store.pg CTest entry).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/xalloc.h"
#include "store/store.h"
#include "store/store_backend.h"

#include "base/banned.h"

struct fixture {
    char dir[64];      /* the temp directory */
    char data[1024];   /* the data directory inside it, or the PostgreSQL location */
    char pgdb[64];     /* PostgreSQL: the test's database, else "" */
    char dbpath[1100]; /* data/orch.db */
    struct store *st;  /* writer, open */
};

/* ORCH_TEST_PG, and whether this pass runs on PostgreSQL. */
static const char *g_pg_base;
static int g_pg;
/* The current test's PostgreSQL location, for raw_sql() and raw_int(). */
static const char *g_pg_loc;

#define SKIP_ON_PG(reason)                                                                         \
    do {                                                                                           \
        if (g_pg) {                                                                                \
            printf("[  SKIPPED ] %s on PostgreSQL: %s\n", __func__, reason);                       \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* The part of an error message to look for: SQLite's or PostgreSQL's wording. */
#define DB_MSG(sqlite_text, pg_text) (g_pg ? (pg_text) : (sqlite_text))

/* Run SQL on the maintenance database of ORCH_TEST_PG; 0 or -1 (printed). */
static int pg_admin(const char *sql)
{
    PGconn *c = PQconnectdb(g_pg_base);
    int rc = -1;

    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "ORCH_TEST_PG: %s", PQerrorMessage(c));
    } else {
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) == PGRES_COMMAND_OK)
            rc = 0;
        else
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
        PQclear(res);
    }
    PQfinish(c);
    return rc;
}

/* ORCH_TEST_PG with its dbname replaced by `db`, as a key=value string. */
static int pg_location(const char *db, char *out, size_t size)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(g_pg_base, &errmsg);
    size_t len;

    if (!opts) {
        fprintf(stderr, "ORCH_TEST_PG: %s\n", errmsg ? errmsg : "cannot parse");
        PQfreemem(errmsg);
        return -1;
    }
    len = (size_t)snprintf(out, size, "dbname=%s", db);
    for (PQconninfoOption *o = opts; o->keyword && len < size; o++) {
        if (!o->val || !strcmp(o->keyword, "dbname"))
            continue;
        len += (size_t)snprintf(out + len, size - len, " %s='", o->keyword);
        for (const char *v = o->val; *v && len < size; v++) {
            if (*v == '\'' || *v == '\\')
                len += (size_t)snprintf(out + len, size - len, "\\");
            len += (size_t)snprintf(out + len, size - len, "%c", *v);
        }
        len += (size_t)snprintf(out + len, size - len, "'");
    }
    PQconninfoFree(opts);
    return len < size ? 0 : -1;
}

static int setup(void **state)
{
    static int seq;
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct err err = ERR_INIT;

    snprintf(f->dir, sizeof(f->dir), "/tmp/orch-test-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
    snprintf(f->dbpath, sizeof(f->dbpath), "%s/orch.db", f->data);
    if (g_pg) {
        char sql[128];

        snprintf(f->pgdb, sizeof(f->pgdb), "orch_test_%ld_%d", (long)getpid(), ++seq);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->pgdb);
        if (pg_admin(sql) != 0 || pg_location(f->pgdb, f->data, sizeof(f->data)) != 0) {
            rmdir(f->dir);
            free(f);
            return -1;
        }
        g_pg_loc = f->data;
    }
    if (store_open(f->data, STORE_CREATE, &f->st, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    store_free(f->st);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (f->pgdb[0]) {
        char sql[128];

        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->pgdb);
        pg_admin(sql);
        g_pg_loc = NULL;
    }
    free(f);
    return 0;
}

/* Run one SQL statement on the database file behind the store's back. */
static void raw_sql(const char *dbpath, const char *sql)
{
    sqlite3 *db = NULL;

    if (g_pg) {
        /* Like the SQLite connection here (foreign_keys off), skip the
         * foreign key checks (triggers) to write corrupt rows. */
        PGconn *c = PQconnectdb(g_pg_loc);
        PGresult *res = PQexec(c, "SET session_replication_role = replica");
        PQclear(res);
        res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
        return;
    }
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void make_exec(struct exec_row *row, const char *workflow, enum exec_status status,
                      int64_t created_at)
{
    memset(row, 0, sizeof(*row));
    id_new("ex_", row->id);
    row->workflow = (char *)workflow;
    row->workflow_version = 1;
    row->status = status;
    row->params = (char *)"{}";
    row->created_at = created_at;
}

static void insert_exec(struct store *st, const struct exec_row *row)
{
    struct err err = ERR_INIT;
    if (store_execution_insert(st, row, &err) != 0)
        fail_msg("insert %s: %s", row->id, err.msg);
}

/* --- open, migrations --- */

static void test_open_creates_and_migrates(void **state)
{
    struct fixture *f = *state;
    struct stat sb;
    int version = -1;

    SKIP_ON_PG("checks the data directory and the SQLite file");

    assert_int_equal(stat(f->data, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(f->dbpath, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_string_equal(store_backend_name(f->st), g_pg ? "postgres" : "sqlite");
    assert_int_equal(store_schema_version(f->st, &version, NULL), 0);
    assert_int_equal(version, store__migration_count);
    assert_true(version >= 1);
}

static void test_open_nested_and_sqlite_prefix(void **state)
{
    struct fixture *f = *state;
    struct store *st = NULL;
    struct err err = ERR_INIT;
    char loc[256];
    int version = 0;

    SKIP_ON_PG("sqlite: locations and nested data directories");

    snprintf(loc, sizeof(loc), "%s/a/b/c", f->dir);
    assert_int_equal(store_open(loc, STORE_CREATE, &st, &err), 0);
    store_free(st);

    snprintf(loc, sizeof(loc), "sqlite:%s/file.db", f->dir);
    assert_int_equal(store_open(loc, STORE_CREATE, &st, &err), 0);
    assert_int_equal(store_schema_version(st, &version, &err), 0);
    assert_int_equal(version, store__migration_count);
    store_free(st);
    /* Reopen without STORE_CREATE. */
    assert_int_equal(store_open(loc, 0, &st, &err), 0);
    store_free(st);
}

static void test_reopen_idempotent(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    char *def = NULL;
    int version = 0;

    assert_int_equal(store_workflow_put(f->st, "wf", "{\"a\":1}", 1, &version, &err), 0);
    for (int i = 0; i < 3; i++) {
        store_free(f->st);
        f->st = NULL;
        assert_int_equal(store_open(f->data, STORE_CREATE, &f->st, &err), 0);
        assert_int_equal(store_schema_version(f->st, &version, &err), 0);
        assert_int_equal(version, store__migration_count);
    }
    assert_int_equal(store_workflow_get(f->st, "wf", 0, &def, &version, &err), 0);
    assert_string_equal(def, "{\"a\":1}");
    assert_int_equal(version, 1);
    free(def);
}

static void test_future_schema_refused(void **state)
{
    struct fixture *f = *state;
    struct store *st = (struct store *)f; /* must be reset to NULL */
    struct err err = ERR_INIT;
    char msg[128];

    raw_sql(f->dbpath, "INSERT INTO schema_version (version, applied_at) VALUES (99, 0)");
    assert_int_equal(store_open(f->data, 0, &st, &err), ERR_INVALID);
    assert_null(st);
    snprintf(msg, sizeof(msg),
             "database schema version 99 is newer than this orch (%d); upgrade orch",
             store__migration_count);
    assert_string_equal(err.msg, msg);
    /* A reader refuses it too. */
    err.msg[0] = '\0';
    assert_int_equal(store_open(f->data, STORE_READONLY, &st, &err), ERR_INVALID);
    assert_string_equal(err.msg, msg);
}

static void test_readonly_needs_migrated_db(void **state)
{
    struct fixture *f = *state;
    struct store *st = NULL;
    struct err err = ERR_INIT;
    char loc[256];
    char path[200];

    SKIP_ON_PG("builds a SQLite file by hand");

    /* An empty SQLite file: a reader cannot migrate it. */
    snprintf(path, sizeof(path), "%s/empty.db", f->dir);
    {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x INTEGER)", NULL, NULL, NULL), 0);
        sqlite3_close(db);
    }
    snprintf(loc, sizeof(loc), "sqlite:%s", path);
    assert_int_equal(store_open(loc, STORE_READONLY, &st, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "older than this orch"));
    /* A writer migrates it, then a reader is fine. */
    assert_int_equal(store_open(loc, 0, &st, &err), 0);
    store_free(st);
    assert_int_equal(store_open(loc, STORE_READONLY, &st, &err), 0);
    store_free(st);
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    struct store *st = NULL;
    struct err err = ERR_INIT;
    char path[256];
    char loc[300];
    FILE *fp;

    SKIP_ON_PG("file system errors of data directories");

    /* A data directory path that is a file. */
    snprintf(path, sizeof(path), "%s/plainfile", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("not a database\n", fp);
    fclose(fp);
    assert_int_equal(store_open(path, STORE_CREATE, &st, &err), ERR_INVALID);
    assert_null(st);
    assert_non_null(strstr(err.msg, "not a directory"));
    assert_int_equal(store_open(path, 0, &st, &err), ERR_INVALID);

    /* Under a file: the directory cannot be created. */
    snprintf(loc, sizeof(loc), "%s/sub/data", path);
    assert_int_equal(store_open(loc, STORE_CREATE, &st, &err), ERR_IO);
    assert_non_null(strstr(err.msg, "cannot create directory"));

    /* A file that is not a SQLite database. */
    snprintf(loc, sizeof(loc), "sqlite:%s", path);
    assert_int_equal(store_open(loc, 0, &st, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "file is not a database"));

    /* Missing, without STORE_CREATE. */
    snprintf(loc, sizeof(loc), "%s/missing", f->dir);
    assert_int_equal(store_open(loc, 0, &st, &err), ERR_NOT_FOUND);
    snprintf(loc, sizeof(loc), "sqlite:%s/missing.db", f->dir);
    assert_int_equal(store_open(loc, 0, &st, &err), ERR_NOT_FOUND);
    assert_int_equal(store_open(loc, STORE_READONLY, &st, &err), ERR_NOT_FOUND);
    /* A directory where a file is expected. */
    snprintf(loc, sizeof(loc), "sqlite:%s", f->dir);
    assert_int_equal(store_open(loc, STORE_CREATE, &st, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "cannot open database"));

    /* Unwritable: /proc refuses new directories even to root. */
    assert_int_equal(store_open("/proc/orch-test-no-such/data", STORE_CREATE, &st, &err), ERR_IO);
    if (geteuid() != 0) {
        snprintf(path, sizeof(path), "%s/ro", f->dir);
        assert_int_equal(mkdir(path, 0500), 0);
        snprintf(loc, sizeof(loc), "%s/ro/data", f->dir);
        assert_int_equal(store_open(loc, STORE_CREATE, &st, &err), ERR_IO);
        assert_non_null(strstr(err.msg, "Permission denied"));
        snprintf(loc, sizeof(loc), "sqlite:%s/ro/x.db", f->dir);
        assert_int_equal(store_open(loc, STORE_CREATE, &st, &err), ERR_STORE);
        chmod(path, 0700);
    }

    /* Bad locations and flags. */
    assert_int_equal(store_open("", 0, &st, &err), ERR_INVALID);
    assert_int_equal(store_open("sqlite:", 0, &st, &err), ERR_INVALID);
    assert_int_equal(store_open(f->data, STORE_CREATE | STORE_READONLY, &st, &err), ERR_INVALID);
    assert_int_equal(store_open(f->data, 1u << 7, &st, &err), ERR_INVALID);
    assert_null(st);
}

/* PostgreSQL locations go to libpq; a server that is not there is ERR_STORE. */
static void test_open_postgres_unreachable(void **state)
{
    static const char *const locs[] = {
        "postgres://orch@127.0.0.1:1/orch",
        "postgresql://127.0.0.1:1/orch",
        "host=127.0.0.1 port=1 dbname=orch",
        "  dbname = orch host=/nonexistent-orch-test-dir",
    };
    struct store *st = NULL;
    struct err err = ERR_INIT;
    (void)state;

    for (size_t i = 0; i < sizeof(locs) / sizeof(locs[0]); i++) {
        assert_int_equal(store_open(locs[i], STORE_CREATE, &st, &err), ERR_STORE);
        assert_null(st);
        assert_non_null(strstr(err.msg, "cannot connect to PostgreSQL: "));
    }
}

static void test_sync_env(void **state)
{
    struct fixture *f = *state;
    struct store *st = NULL;
    struct err err = ERR_INIT;

    const char *dur = NULL;

    SKIP_ON_PG("ORCH_SQLITE_SYNC is a SQLite setting");

    /* The default syncs every commit: durable to a power loss. */
    unsetenv("ORCH_SQLITE_SYNC");
    assert_int_equal(store_open(f->data, 0, &st, &err), 0);
    assert_int_equal(store_durability(st, &dur, &err), 0);
    assert_string_equal(dur, "synchronous=full");
    store_free(st);
    st = NULL;
    setenv("ORCH_SQLITE_SYNC", "", 1);
    assert_int_equal(store_open(f->data, 0, &st, &err), 0);
    assert_int_equal(store_durability(st, &dur, &err), 0);
    assert_string_equal(dur, "synchronous=full");
    store_free(st);
    st = NULL;
    setenv("ORCH_SQLITE_SYNC", "full", 1);
    assert_int_equal(store_open(f->data, 0, &st, &err), 0);
    assert_int_equal(store_durability(st, &dur, &err), 0);
    assert_string_equal(dur, "synchronous=full");
    store_free(st);
    st = NULL;
    /* The opt-in: durable to a crash of the process only. */
    setenv("ORCH_SQLITE_SYNC", "normal", 1);
    assert_int_equal(store_open(f->data, 0, &st, &err), 0);
    assert_int_equal(store_durability(st, &dur, &err), 0);
    assert_string_equal(dur, "synchronous=normal");
    store_free(st);
    st = NULL;
    setenv("ORCH_SQLITE_SYNC", "sometimes", 1);
    assert_int_equal(store_open(f->data, 0, &st, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "ORCH_SQLITE_SYNC"));
    assert_null(st);
    unsetenv("ORCH_SQLITE_SYNC");
}

/* --- status names --- */

static void test_status_names(void **state)
{
    enum exec_status es;
    enum task_status ts;
    enum attempt_status as;
    (void)state;

    for (int i = 0; i < EXEC_STATUS_COUNT; i++) {
        assert_int_equal(exec_status_parse(exec_status_name((enum exec_status)i), &es), 0);
        assert_int_equal((int)es, i);
    }
    for (int i = 0; i < TASK_STATUS_COUNT; i++) {
        assert_int_equal(task_status_parse(task_status_name((enum task_status)i), &ts), 0);
        assert_int_equal((int)ts, i);
    }
    for (int i = 0; i < ATTEMPT_STATUS_COUNT; i++) {
        assert_int_equal(attempt_status_parse(attempt_status_name((enum attempt_status)i), &as), 0);
        assert_int_equal((int)as, i);
    }
    assert_string_equal(exec_status_name(EXEC_TIMED_OUT), "timed_out");
    assert_string_equal(task_status_name(TASK_UPSTREAM_FAILED), "upstream_failed");
    assert_string_equal(attempt_status_name(ATTEMPT_LOST), "lost");
    assert_int_equal(exec_status_parse("Running", &es), ERR_INVALID);
    assert_int_equal(task_status_parse(NULL, &ts), ERR_INVALID);
    assert_string_equal(exec_status_name((enum exec_status)42), "invalid");
    assert_true(exec_status_is_final(EXEC_CANCELLED));
    assert_false(exec_status_is_final(EXEC_RUNNING));
    assert_true(task_status_is_final(TASK_SKIPPED));
    assert_false(task_status_is_final(TASK_QUEUED));
}

/* --- workflows --- */

static void test_workflow_versions(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    char *def = (char *)f; /* must be reset to NULL on failure */
    int v = 0;

    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":1}", 100, &v, &err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":1}", 101, &v, &err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":2}", 102, &v, &err), 0);
    assert_int_equal(v, 2);
    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":2}", 103, &v, &err), 0);
    assert_int_equal(v, 2);
    /* Back to the first text: still a new version (only the newest is compared). */
    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":1}", 104, &v, &err), 0);
    assert_int_equal(v, 3);
    assert_int_equal(store_workflow_put(f->st, "other", "{}", 105, &v, &err), 0);
    assert_int_equal(v, 1);

    assert_int_equal(store_workflow_get(f->st, "etl", 0, &def, &v, &err), 0);
    assert_int_equal(v, 3);
    assert_string_equal(def, "{\"v\":1}");
    free(def);
    assert_int_equal(store_workflow_get(f->st, "etl", 2, &def, &v, &err), 0);
    assert_int_equal(v, 2);
    assert_string_equal(def, "{\"v\":2}");
    free(def);

    def = (char *)f;
    assert_int_equal(store_workflow_get(f->st, "etl", 9, &def, &v, &err), ERR_NOT_FOUND);
    assert_null(def);
    assert_string_equal(err.msg, "no version 9 of workflow 'etl'");
    assert_int_equal(store_workflow_get(f->st, "nope", 0, &def, &v, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no workflow 'nope'");
    assert_int_equal(store_workflow_get(f->st, "etl", -1, &def, &v, &err), ERR_INVALID);
    assert_int_equal(store_workflow_put(f->st, "", "{}", 1, &v, &err), ERR_INVALID);
    assert_int_equal(store_workflow_put(f->st, "x", NULL, 1, &v, &err), ERR_INVALID);

    /* Inside the caller's transaction, and rolled back with it. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":4}", 106, &v, &err), 0);
    assert_int_equal(v, 4);
    store_rollback(f->st);
    assert_int_equal(store_workflow_get(f->st, "etl", 0, &def, &v, &err), 0);
    assert_int_equal(v, 3);
    free(def);
}

/* --- executions, task runs, attempts --- */

static void test_execution_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row row;

    make_exec(&row, "nightly", EXEC_QUEUED, 1700000000123);
    row.workflow_version = 7;
    row.params = (char *)"{\"day\":\"2026-11-29\",\"n\":3}";
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &row);
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_execution_get(f->st, row.id, &d, &err), 0);
    assert_string_equal(d->exec.id, row.id);
    assert_string_equal(d->exec.workflow, "nightly");
    assert_int_equal(d->exec.workflow_version, 7);
    assert_int_equal(d->exec.status, EXEC_QUEUED);
    assert_string_equal(d->exec.params, row.params);
    assert_int_equal(d->exec.created_at, 1700000000123);
    assert_int_equal(d->exec.started_at, 0);
    assert_int_equal(d->exec.finished_at, 0);
    assert_null(d->exec.error);
    assert_null(d->exec.schedule_id);
    assert_int_equal(d->exec.scheduled_for, 0);
    assert_int_equal(d->ntasks, 0);
    assert_int_equal(d->nattempts, 0);
    exec_detail_free(d);

    row.status = EXEC_FAILED;
    row.started_at = 1700000000200;
    row.finished_at = 1700000000900;
    row.error = (char *)"task 'load' failed: exit status 2";
    assert_int_equal(store_execution_update(f->st, &row, &err), 0);
    assert_int_equal(store_execution_get(f->st, row.id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_FAILED);
    assert_int_equal(d->exec.started_at, 1700000000200);
    assert_int_equal(d->exec.finished_at, 1700000000900);
    assert_string_equal(d->exec.error, row.error);
    assert_string_equal(d->exec.workflow, "nightly");
    exec_detail_free(d);

    /* NULL params are stored as "{}". */
    make_exec(&row, "nightly", EXEC_QUEUED, 1);
    row.params = NULL;
    insert_exec(f->st, &row);
    assert_int_equal(store_execution_get(f->st, row.id, &d, &err), 0);
    assert_string_equal(d->exec.params, "{}");
    exec_detail_free(d);

    /* Errors: duplicate, missing, invalid. */
    assert_int_equal(store_execution_insert(f->st, &row, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "cannot insert execution 'ex_"));
    assert_non_null(strstr(err.msg, DB_MSG("UNIQUE constraint failed", "duplicate key value")));
    d = (struct exec_detail *)f;
    assert_int_equal(store_execution_get(f->st, "ex_missing", &d, &err), ERR_NOT_FOUND);
    assert_null(d);
    assert_string_equal(err.msg, "no execution 'ex_missing'");
    memcpy(row.id, "ex_missing", sizeof("ex_missing"));
    assert_int_equal(store_execution_update(f->st, &row, &err), ERR_NOT_FOUND);
    row.status = (enum exec_status)17;
    assert_int_equal(store_execution_insert(f->st, &row, &err), ERR_INVALID);
    row.status = EXEC_QUEUED;
    row.workflow = NULL;
    assert_int_equal(store_execution_insert(f->st, &row, &err), ERR_INVALID);
    row.id[0] = '\0';
    assert_int_equal(store_execution_insert(f->st, &row, &err), ERR_INVALID);
    assert_int_equal(store_execution_get(f->st, "", &d, &err), ERR_INVALID);
}

/* Fan-out instances (group, item, index) and child executions (parent, depth,
 * child_id) are written and read back; a task run without them reads back
 * as no instance and no child. */
static void test_instances_and_children(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row parent, child;
    struct task_run_row g = {0, (char *)"each", TASK_RUNNING, 0, 0, 100, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    struct task_run_row i0 = {1, (char *)"each[0]", TASK_QUEUED, 0, 0, 0, 0, NULL, NULL, 1, 0, 0, (char *)"{\"path\":\"a\"}", NULL, 0};
    struct task_run_row i1 = {2, (char *)"each[1]", TASK_PENDING, 0, 0, 0, 0, NULL, NULL, 1, 0, 1, (char *)"\"b\"", NULL, 0};
    struct task_run_row c0 = {0, (char *)"t", TASK_QUEUED, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    struct exec_list list = {NULL, 0};
    struct exec_filter flt;

    make_exec(&parent, "fan", EXEC_RUNNING, 10);
    make_exec(&child, "kid", EXEC_RUNNING, 11);
    child.parent_id = parent.id;
    child.parent_task_idx = 2;
    child.depth = 1;
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &parent);
    insert_exec(f->st, &child);
    assert_int_equal(store_task_run_insert(f->st, parent.id, &g, &err), 0);
    assert_int_equal(store_task_run_insert(f->st, parent.id, &i0, &err), 0);
    assert_int_equal(store_task_run_insert(f->st, parent.id, &i1, &err), 0);
    assert_int_equal(store_task_run_insert(f->st, child.id, &c0, &err), 0);
    /* The instance's attempt starts a child: its id is kept with the run. */
    i1.status = TASK_RUNNING;
    i1.attempt = 1;
    i1.child_id = child.id;
    i1.item = NULL; /* an update leaves the item as inserted */
    assert_int_equal(store_task_run_update(f->st, parent.id, &i1, 0, &err), 0);
    g.output = (char *)"[{\"x\":1},null]"; /* a group's output is a list */
    assert_int_equal(store_task_run_update(f->st, parent.id, &g, 0, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_execution_get(f->st, parent.id, &d, &err), 0);
    assert_int_equal(d->ntasks, 3);
    assert_null(d->exec.parent_id);
    assert_int_equal(d->exec.depth, 0);
    assert_false(d->tasks[0].instance);
    assert_int_equal(d->tasks[0].group_idx, -1);
    assert_null(d->tasks[0].child_id);
    assert_string_equal(d->tasks[0].output, "[{\"x\":1},null]");
    assert_true(d->tasks[1].instance);
    assert_int_equal(d->tasks[1].group_idx, 0);
    assert_int_equal(d->tasks[1].item_index, 0);
    assert_string_equal(d->tasks[1].item, "{\"path\":\"a\"}");
    assert_true(d->tasks[2].instance);
    assert_int_equal(d->tasks[2].item_index, 1);
    assert_string_equal(d->tasks[2].item, "\"b\"");
    assert_string_equal(d->tasks[2].name, "each[1]");
    assert_string_equal(d->tasks[2].child_id, child.id);
    exec_detail_free(d);
    d = NULL;

    /* A page: the workflow's tasks only, with the instances counted. */
    {
        struct task_page q = {-1, -1, 1, NULL, 0};
        assert_int_equal(store_execution_page(f->st, parent.id, &q, &d, &err), 0);
        assert_string_equal(d->exec.id, parent.id);
        assert_int_equal(d->ntasks, 1);
        assert_string_equal(d->tasks[0].name, "each");
        assert_int_equal(d->ncounts, 2);
        assert_int_equal(d->counts[0].group_idx, 0);
        assert_int_equal(d->counts[0].status, TASK_QUEUED);
        assert_int_equal(d->counts[0].n, 1);
        assert_int_equal(d->counts[1].status, TASK_RUNNING);
        assert_int_equal(d->counts[1].n, 1);
        exec_detail_free(d);
        /* One group's instances, one at a time after a cursor. */
        q.top_only = 0;
        q.group_idx = 0;
        q.limit = 1;
        assert_int_equal(store_execution_page(f->st, parent.id, &q, &d, &err), 0);
        assert_int_equal(d->ntasks, 1);
        assert_int_equal(d->tasks[0].idx, 1);
        exec_detail_free(d);
        q.after_idx = 1;
        assert_int_equal(store_execution_page(f->st, parent.id, &q, &d, &err), 0);
        assert_int_equal(d->ntasks, 1);
        assert_int_equal(d->tasks[0].idx, 2);
        assert_string_equal(d->tasks[0].child_id, child.id);
        exec_detail_free(d);
        q.after_idx = 2;
        assert_int_equal(store_execution_page(f->st, parent.id, &q, &d, &err), 0);
        assert_int_equal(d->ntasks, 0);
        exec_detail_free(d);
        /* By status, any task run. */
        q.after_idx = -1;
        q.group_idx = -1;
        q.limit = 0;
        q.status = "running";
        assert_int_equal(store_execution_page(f->st, parent.id, &q, &d, &err), 0);
        assert_int_equal(d->ntasks, 2);
        assert_int_equal(d->tasks[0].idx, 0);
        assert_int_equal(d->tasks[1].idx, 2);
        exec_detail_free(d);
        assert_int_equal(store_execution_page(f->st, "ex_missing", &q, &d, &err), ERR_NOT_FOUND);
        d = NULL;
    }

    assert_int_equal(store_execution_get(f->st, child.id, &d, &err), 0);
    assert_string_equal(d->exec.parent_id, parent.id);
    assert_int_equal(d->exec.parent_task_idx, 2);
    assert_int_equal(d->exec.depth, 1);
    exec_detail_free(d);

    /* Lists carry the parent too. */
    memset(&flt, 0, sizeof(flt));
    flt.workflow = "kid";
    flt.limit = 10;
    assert_int_equal(store_executions_list(f->st, &flt, &list, &err), 0);
    assert_int_equal(list.n, 1);
    assert_string_equal(list.items[0].parent_id, parent.id);
    exec_list_release(&list);

    /* The children of one execution, with or without other filters. */
    memset(&flt, 0, sizeof(flt));
    flt.parent_id = parent.id;
    flt.limit = 10;
    assert_int_equal(store_executions_list(f->st, &flt, &list, &err), 0);
    assert_int_equal(list.n, 1);
    assert_string_equal(list.items[0].id, child.id);
    exec_list_release(&list);
    flt.status_mask = 1u << EXEC_FAILED;
    assert_int_equal(store_executions_list(f->st, &flt, &list, &err), 0);
    assert_int_equal(list.n, 0);
    exec_list_release(&list);
    flt.status_mask = 0;
    flt.workflow = "kid";
    assert_int_equal(store_executions_list(f->st, &flt, &list, &err), 0);
    assert_int_equal(list.n, 1);
    exec_list_release(&list);
    flt.parent_id = child.id; /* no children of its own */
    assert_int_equal(store_executions_list(f->st, &flt, &list, &err), 0);
    assert_int_equal(list.n, 0);
    exec_list_release(&list);
}

static void test_tasks_attempts_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row ex;
    struct task_run_row t0 = {0, (char *)"extract", TASK_QUEUED, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    struct task_run_row t1 = {1, (char *)"load", TASK_PENDING, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    struct attempt_row a1 = {0};
    struct attempt_row a2 = {0};

    make_exec(&ex, "etl", EXEC_RUNNING, 10);
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &ex);
    /* Inserted out of order: read back ordered by idx. */
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t1, &err), 0);
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t0, &err), 0);

    /* Attempt 1 of task 0 starts, fails; attempt 2 succeeds. */
    a1.task_idx = 0;
    a1.number = 1;
    a1.status = ATTEMPT_RUNNING;
    a1.node = (char *)"host-a:4242";
    a1.pid = 31337;
    a1.pgid = 31337;
    a1.proc_start = 123456789012;
    a1.started_at = 1000;
    a1.exit_code = -1;
    assert_int_equal(store_attempt_insert(f->st, ex.id, &a1, &err), 0);
    t0.status = TASK_RUNNING;
    t0.attempt = 1;
    t0.started_at = 1000;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t0, 0, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_begin(f->st, &err), 0);
    a1.status = ATTEMPT_FAILED;
    a1.finished_at = 2000;
    a1.exit_code = 2;
    a1.error = (char *)"exit status 2";
    assert_int_equal(store_attempt_update(f->st, ex.id, &a1, &err), 0);
    t0.status = TASK_QUEUED;
    t0.available_at = 5000;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t0, 1, &err), 0);
    a2.task_idx = 0;
    a2.number = 2;
    a2.status = ATTEMPT_TIMED_OUT;
    a2.started_at = 5000;
    a2.finished_at = 9000;
    a2.exit_code = -1;
    a2.signal = 9;
    a2.error = (char *)"timed out after 4s";
    assert_int_equal(store_attempt_insert(f->st, ex.id, &a2, &err), 0);
    t0.status = TASK_TIMED_OUT;
    t0.attempt = 2;
    t0.finished_at = 9000;
    t0.error = (char *)"timed out";
    assert_int_equal(store_task_run_update(f->st, ex.id, &t0, 1, &err), 0);
    t1.status = TASK_UPSTREAM_FAILED;
    t1.finished_at = 9000;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t1, 0, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
    assert_int_equal(d->ntasks, 2);
    assert_int_equal(d->tasks[0].idx, 0);
    assert_string_equal(d->tasks[0].name, "extract");
    assert_int_equal(d->tasks[0].status, TASK_TIMED_OUT);
    assert_int_equal(d->tasks[0].attempt, 2);
    assert_int_equal(d->tasks[0].available_at, 5000);
    assert_int_equal(d->tasks[0].started_at, 1000);
    assert_int_equal(d->tasks[0].finished_at, 9000);
    assert_string_equal(d->tasks[0].error, "timed out");
    assert_int_equal(d->tasks[1].idx, 1);
    assert_string_equal(d->tasks[1].name, "load");
    assert_int_equal(d->tasks[1].status, TASK_UPSTREAM_FAILED);
    assert_int_equal(d->tasks[1].attempt, 0);
    assert_int_equal(d->tasks[1].available_at, 0);
    assert_int_equal(d->tasks[1].started_at, 0);
    assert_null(d->tasks[1].error);

    assert_int_equal(d->nattempts, 2);
    assert_int_equal(d->attempts[0].task_idx, 0);
    assert_int_equal(d->attempts[0].number, 1);
    assert_int_equal(d->attempts[0].status, ATTEMPT_FAILED);
    assert_string_equal(d->attempts[0].node, "host-a:4242");
    assert_int_equal(d->attempts[0].pid, 31337);
    assert_int_equal(d->attempts[0].pgid, 31337);
    assert_int_equal(d->attempts[0].proc_start, 123456789012);
    assert_int_equal(d->attempts[0].started_at, 1000);
    assert_int_equal(d->attempts[0].finished_at, 2000);
    assert_int_equal(d->attempts[0].exit_code, 2);
    assert_int_equal(d->attempts[0].signal, 0);
    assert_string_equal(d->attempts[0].error, "exit status 2");
    assert_int_equal(d->attempts[1].number, 2);
    assert_int_equal(d->attempts[1].status, ATTEMPT_TIMED_OUT);
    assert_null(d->attempts[1].node);
    assert_int_equal(d->attempts[1].pid, 0);
    assert_int_equal(d->attempts[1].proc_start, 0);
    assert_int_equal(d->attempts[1].exit_code, -1);
    assert_int_equal(d->attempts[1].signal, 9);
    assert_string_equal(d->attempts[1].error, "timed out after 4s");
    exec_detail_free(d);

    /* Errors: duplicate task, attempt of a missing task, missing attempt, bad rows. */
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t1, &err), ERR_CONFLICT);
    a2.task_idx = 7;
    assert_int_equal(store_attempt_insert(f->st, ex.id, &a2, &err), ERR_STORE);
    assert_non_null(
        strstr(err.msg, DB_MSG("FOREIGN KEY constraint failed", "foreign key constraint")));
    assert_int_equal(store_attempt_update(f->st, ex.id, &a2, &err), ERR_NOT_FOUND);
    assert_non_null(strstr(err.msg, "no attempt 2 of task 7 in ex_"));
    a2.number = 0;
    assert_int_equal(store_attempt_insert(f->st, ex.id, &a2, &err), ERR_INVALID);
    assert_int_equal(store_task_run_insert(f->st, "ex_none", &t1, &err), ERR_STORE);
    t1.name = NULL;
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t1, &err), ERR_INVALID);
    t1.idx = -1;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t1, 0, &err), ERR_INVALID);
}

/*
 * When attempts became queued: written with each attempt's insert (never by
 * its update), and with the task run's insert and update; NULL (0) when not
 * given. Read back by both reads of an execution.
 */
static void test_queued_at_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row ex;
    struct task_run_row t0, t1;
    struct attempt_row a1, a2;
    struct task_page q = {-1, -1, 0, NULL, 0};

    make_exec(&ex, "wait", EXEC_RUNNING, 10);
    memset(&t0, 0, sizeof(t0));
    t0.name = (char *)"slotted";
    t0.status = TASK_QUEUED;
    t0.queued_at = 700;
    memset(&t1, 0, sizeof(t1));
    t1.idx = 1;
    t1.name = (char *)"later";
    t1.status = TASK_PENDING;
    memset(&a1, 0, sizeof(a1));
    a1.number = 1;
    a1.status = ATTEMPT_RUNNING;
    a1.queued_at = 700;
    a1.started_at = 900;
    a1.exit_code = -1;
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &ex);
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t0, &err), 0);
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t1, &err), 0);
    assert_int_equal(store_attempt_insert(f->st, ex.id, &a1, &err), 0);
    t0.status = TASK_RUNNING;
    t0.attempt = 1;
    t0.started_at = 900;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t0, 0, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);

    /* It fails; the retry is queued at its back-off's end (1500) and starts at 1600. */
    assert_int_equal(store_begin(f->st, &err), 0);
    a1.status = ATTEMPT_FAILED;
    a1.finished_at = 1000;
    a1.queued_at = 0; /* an update leaves it as inserted */
    assert_int_equal(store_attempt_update(f->st, ex.id, &a1, &err), 0);
    memset(&a2, 0, sizeof(a2));
    a2.number = 2;
    a2.status = ATTEMPT_RUNNING;
    a2.queued_at = 1500;
    a2.started_at = 1600;
    a2.exit_code = -1;
    assert_int_equal(store_attempt_insert(f->st, ex.id, &a2, &err), 0);
    t0.attempt = 2;
    t0.queued_at = 1500;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t0, 1, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);

    for (int page = 0; page < 2; page++) {
        if (page)
            assert_int_equal(store_execution_page(f->st, ex.id, &q, &d, &err), 0);
        else
            assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
        assert_int_equal(d->ntasks, 2);
        assert_int_equal(d->tasks[0].queued_at, 1500);
        assert_int_equal(d->tasks[0].started_at, 900);
        assert_int_equal(d->tasks[1].queued_at, 0);
        assert_int_equal(d->nattempts, 2);
        assert_int_equal(d->attempts[0].queued_at, 700);
        assert_int_equal(d->attempts[0].started_at, 900);
        assert_int_equal(d->attempts[0].finished_at, 1000);
        assert_int_equal(d->attempts[1].queued_at, 1500);
        assert_int_equal(d->attempts[1].started_at, 1600);
        exec_detail_free(d);
        d = NULL;
    }

    /* Not given: NULL, read back as 0. */
    assert_int_equal(store_begin(f->st, &err), 0);
    t0.queued_at = 0;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t0, 2, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
    assert_int_equal(d->tasks[0].queued_at, 0);
    assert_int_equal(d->attempts[1].queued_at, 1500);
    exec_detail_free(d);
}

static void test_fencing(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row ex;
    struct task_run_row t = {3, (char *)"build", TASK_RUNNING, 2, 0, 50, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    struct task_run_row late = t;
    char msg[200];

    make_exec(&ex, "ci", EXEC_RUNNING, 10);
    insert_exec(f->st, &ex);
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t, &err), 0);

    /* A late report from attempt 1 is refused and changes nothing. */
    late.status = TASK_SUCCEEDED;
    late.finished_at = 99;
    late.error = (char *)"late";
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_task_run_update(f->st, ex.id, &late, 1, &err), ERR_CONFLICT);
    snprintf(msg, sizeof(msg),
             "stale attempt 1 for task 'build' (3) of %s: the current attempt is 2", ex.id);
    assert_string_equal(err.msg, msg);
    /* A conflict does not spoil the transaction. */
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
    assert_int_equal(d->tasks[0].status, TASK_RUNNING);
    assert_int_equal(d->tasks[0].attempt, 2);
    assert_int_equal(d->tasks[0].finished_at, 0);
    assert_null(d->tasks[0].error);
    exec_detail_free(d);

    /* Attempt 2 holds the token: applied, and may start attempt 3. */
    t.status = TASK_RUNNING;
    t.attempt = 3;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t, 2, &err), 0);
    /* Now attempt 2 is stale too. */
    assert_int_equal(store_task_run_update(f->st, ex.id, &late, 2, &err), ERR_CONFLICT);
    t.status = TASK_SUCCEEDED;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t, 3, &err), 0);
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
    assert_int_equal(d->tasks[0].status, TASK_SUCCEEDED);
    assert_int_equal(d->tasks[0].attempt, 3);
    exec_detail_free(d);

    /* A missing task run is not a stale attempt. */
    t.idx = 4;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t, 3, &err), ERR_NOT_FOUND);
}

static void test_rollback_discards(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row a;
    struct exec_row b;
    struct task_run_row t = {0, (char *)"t", TASK_QUEUED, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};

    make_exec(&a, "wf", EXEC_QUEUED, 1);
    make_exec(&b, "wf", EXEC_QUEUED, 2);
    insert_exec(f->st, &a);
    assert_int_equal(store_task_run_insert(f->st, a.id, &t, &err), 0);

    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &b);
    a.status = EXEC_RUNNING;
    assert_int_equal(store_execution_update(f->st, &a, &err), 0);
    t.status = TASK_RUNNING;
    t.attempt = 1;
    assert_int_equal(store_task_run_update(f->st, a.id, &t, 0, &err), 0);
    /* A second begin inside the transaction is refused. */
    assert_int_equal(store_begin(f->st, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "within a transaction"));
    store_rollback(f->st);
    store_rollback(f->st); /* no transaction: harmless */

    assert_int_equal(store_execution_get(f->st, b.id, &d, &err), ERR_NOT_FOUND);
    assert_int_equal(store_execution_get(f->st, a.id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_QUEUED);
    assert_int_equal(d->tasks[0].status, TASK_QUEUED);
    assert_int_equal(d->tasks[0].attempt, 0);
    exec_detail_free(d);
    /* Commit without a transaction is an error. */
    assert_int_equal(store_commit(f->st, &err), ERR_STORE);
}

/* --- lists --- */

#define NLIST 250

/* Ids of the executions fill_list() made, oldest first. */
static char list_ids[NLIST][ID_MAX];

static enum exec_status list_status(int i)
{
    static const enum exec_status s[] = {EXEC_FAILED, EXEC_SUCCEEDED, EXEC_RUNNING, EXEC_QUEUED};
    return s[i % 4];
}

static void fill_list(struct store *st, char ids[][ID_MAX])
{
    struct err err = ERR_INIT;
    struct exec_row row;

    assert_int_equal(store_begin(st, &err), 0);
    for (int i = 0; i < NLIST; i++) {
        make_exec(&row, i % 2 ? "b" : "a", list_status(i), 1000 + i);
        insert_exec(st, &row);
        memcpy(ids[i], row.id, ID_MAX);
    }
    assert_int_equal(store_commit(st, &err), 0);
}

/* The index of `id` in ids[], or fail. */
static int list_index(char ids[][ID_MAX], const char *id)
{
    for (int i = 0; i < NLIST; i++)
        if (!strcmp(ids[i], id))
            return i;
    fail_msg("unknown id %s", id);
    return -1;
}

/*
 * Page through `filter` with `page` rows per page; check the pages are newest
 * first with no duplicate or gap, that every row matches `want`, and that
 * every expected row came. Returns the number of rows.
 */
static int page_all(struct store *st, struct exec_filter filter, char ids[][ID_MAX],
                    int (*want)(int i, const struct exec_filter *f), int page)
{
    struct err err = ERR_INIT;
    char cursor[ID_MAX] = "";
    char seen[NLIST] = {0};
    int total = 0;
    int expect = 0;
    int last = NLIST;

    filter.limit = page;
    for (;;) {
        struct exec_list list = {NULL, 0};
        filter.before_id = cursor[0] ? cursor : NULL;
        if (store_executions_list(st, &filter, &list, &err) != 0)
            fail_msg("list: %s", err.msg);
        assert_true(list.n <= (size_t)page);
        for (size_t k = 0; k < list.n; k++) {
            int i = list_index(ids, list.items[k].id);
            assert_true(i < last); /* strictly newest first, across pages */
            last = i;
            assert_false(seen[i]);
            seen[i] = 1;
            assert_true(want(i, &filter));
            assert_int_equal(list.items[k].status, list_status(i));
            assert_int_equal(list.items[k].created_at, 1000 + i);
            assert_string_equal(list.items[k].workflow, i % 2 ? "b" : "a");
            assert_string_equal(list.items[k].params, "{}");
        }
        size_t got = list.n;
        total += (int)got;
        if (got)
            memcpy(cursor, list.items[got - 1].id, ID_MAX);
        exec_list_release(&list);
        assert_null(list.items);
        assert_int_equal(list.n, 0);
        if (got < (size_t)page)
            break;
    }
    for (int i = 0; i < NLIST; i++)
        if (want(i, &filter)) {
            assert_true(seen[i]); /* no gap */
            expect++;
        }
    assert_int_equal(total, expect);
    return total;
}

static int want_all(int i, const struct exec_filter *f)
{
    (void)i;
    (void)f;
    return 1;
}

static int want_filter(int i, const struct exec_filter *f)
{
    int64_t created = 1000 + i;
    if (f->status_mask && !(f->status_mask & (1u << list_status(i))))
        return 0;
    if (f->workflow && strcmp(f->workflow, i % 2 ? "b" : "a") != 0)
        return 0;
    if (f->since && created < f->since)
        return 0;
    if (f->until && created >= f->until)
        return 0;
    return 1;
}

static void test_list_paging(void **state)
{
    struct fixture *f = *state;
    char(*ids)[ID_MAX] = list_ids;
    struct exec_filter filter = {0};
    struct exec_list list = {NULL, 0};
    struct err err = ERR_INIT;

    fill_list(f->st, ids);
    /* 250 in pages of 100: 100, 100, 50. */
    assert_int_equal(page_all(f->st, filter, ids, want_all, 100), NLIST);
    filter.limit = 100;
    assert_int_equal(store_executions_list(f->st, &filter, &list, &err), 0);
    assert_int_equal(list.n, 100);
    assert_string_equal(list.items[0].id, ids[NLIST - 1]);
    assert_string_equal(list.items[99].id, ids[NLIST - 100]);
    exec_list_release(&list);
    /* Every status explicitly is the same as no filter. */
    filter.status_mask = (1u << EXEC_STATUS_COUNT) - 1;
    assert_int_equal(page_all(f->st, filter, ids, want_all, 100), NLIST);
}

static void test_list_filters(void **state)
{
    struct fixture *f = *state;
    char(*ids)[ID_MAX] = list_ids;
    struct exec_filter filter = {0};
    struct exec_list list = {NULL, 0};
    struct err err = ERR_INIT;

    fill_list(f->st, ids);
    /* Two statuses: merged from two index scans, newest first. */
    filter.status_mask = (1u << EXEC_FAILED) | (1u << EXEC_SUCCEEDED);
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 100), 126);
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 7), 126);
    /* One status. */
    filter.status_mask = 1u << EXEC_QUEUED;
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 50), 62);
    /* A status nobody has. */
    filter.status_mask = 1u << EXEC_CANCELLED;
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 50), 0);
    /* Workflow. */
    filter.status_mask = 0;
    filter.workflow = "a";
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 100), 125);
    filter.workflow = "zzz";
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 100), 0);
    /* Workflow and status: i even and i % 4 == 0. */
    filter.workflow = "a";
    filter.status_mask = 1u << EXEC_FAILED;
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 10), 63);
    /* Workflow and two statuses: "b" is only succeeded/queued. */
    filter.workflow = "b";
    filter.status_mask = (1u << EXEC_FAILED) | (1u << EXEC_QUEUED);
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 10), 62);
    /* since / until. */
    filter.workflow = NULL;
    filter.status_mask = 0;
    filter.since = 1100;
    filter.until = 1200;
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 30), 100);
    filter.since = 0;
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 100), 200);
    filter.until = 0;
    filter.since = 1240;
    filter.status_mask = (1u << EXEC_RUNNING) | (1u << EXEC_QUEUED);
    assert_int_equal(page_all(f->st, filter, ids, want_filter, 100), 4);

    /* Bad filters. */
    filter.limit = 0;
    assert_int_equal(store_executions_list(f->st, &filter, &list, &err), ERR_INVALID);
    filter.limit = 1001;
    assert_int_equal(store_executions_list(f->st, &filter, &list, &err), ERR_INVALID);
    filter.limit = 10;
    filter.status_mask = 1u << EXEC_STATUS_COUNT;
    assert_int_equal(store_executions_list(f->st, &filter, &list, &err), ERR_INVALID);
    assert_null(list.items);
    assert_int_equal(list.n, 0);
}

static void check_plan(struct store *st, const struct exec_filter *filter, const char *want)
{
    struct err err = ERR_INIT;
    char *plan = NULL;

    assert_int_equal(store__sqlite_explain_list(st, filter, &plan, &err), 0);
    print_message("list plan (mask 0x%x, workflow %s): %s", filter->status_mask,
                  filter->workflow ? filter->workflow : "-", plan);
    if (!strstr(plan, want))
        fail_msg("plan '%s' does not use '%s'", plan, want);
    /* Rows come in index order: no sorting of every match. */
    assert_null(strstr(plan, "TEMP B-TREE"));
    assert_null(strstr(plan, "SCAN"));
    free(plan);
}

static void test_list_query_plans(void **state)
{
    struct fixture *f = *state;
    struct exec_filter filter = {0};

    SKIP_ON_PG("SQLite EXPLAIN QUERY PLAN");

    filter.limit = 100;
    filter.since = 5;
    check_plan(f->st, &filter, "USING INDEX sqlite_autoindex_executions_1 (id<?)");
    filter.status_mask = (1u << EXEC_FAILED) | (1u << EXEC_RUNNING);
    check_plan(f->st, &filter, "USING INDEX executions_status_id (status=? AND id<?)");
    filter.workflow = "etl";
    check_plan(f->st, &filter,
               "USING INDEX executions_workflow_status_id (workflow=? AND status=? AND id<?)");
    filter.status_mask = 0;
    check_plan(f->st, &filter, "USING INDEX executions_workflow_id (workflow=? AND id<?)");
}

static void test_unfinished(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row rows[6];
    char **ids = NULL;
    size_t n = 99;

    assert_int_equal(store_executions_unfinished(f->st, &ids, &n, &err), 0);
    assert_int_equal(n, 0);
    free(ids);
    for (int i = 0; i < 6; i++) {
        make_exec(&rows[i], "wf", (enum exec_status)i, i);
        insert_exec(f->st, &rows[i]);
    }
    /* Oldest first, whatever the status order. */
    rows[0].status = EXEC_RUNNING;
    assert_int_equal(store_execution_update(f->st, &rows[0], &err), 0);
    rows[1].status = EXEC_QUEUED;
    assert_int_equal(store_execution_update(f->st, &rows[1], &err), 0);
    rows[4].status = EXEC_QUEUED;
    assert_int_equal(store_execution_update(f->st, &rows[4], &err), 0);
    assert_int_equal(store_executions_unfinished(f->st, &ids, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(ids[0], rows[0].id);
    assert_string_equal(ids[1], rows[1].id);
    assert_string_equal(ids[2], rows[4].id);
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* --- logs --- */

static void append_log(struct store *st, const char *exec_id, int task, int attempt, int seq,
                       enum log_stream stream, const char *data, size_t len)
{
    struct err err = ERR_INIT;
    struct log_chunk c = {task, attempt, seq, stream, 1000 + seq, (char *)data, len};
    if (store_log_append(st, exec_id, &c, &err) != 0)
        fail_msg("append: %s", err.msg);
}

static void test_logs(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row ex;
    struct task_run_row t = {0, (char *)"t0", TASK_RUNNING, 1, 0, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    struct attempt_row a = {0};
    struct log_list list = {NULL, 0};
    struct log_chunk bad = {0, 1, 0, (enum log_stream)3, 0, NULL, 0};
    static const char bin[] = {'a', '\0', 'b', '\xff', '\n'};

    make_exec(&ex, "wf", EXEC_RUNNING, 1);
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &ex);
    for (int task = 0; task < 2; task++) {
        t.idx = task;
        assert_int_equal(store_task_run_insert(f->st, ex.id, &t, &err), 0);
        for (int n = 1; n <= 2; n++) {
            a.task_idx = task;
            a.number = n;
            a.exit_code = -1;
            assert_int_equal(store_attempt_insert(f->st, ex.id, &a, &err), 0);
        }
    }
    /* Appended out of order; binary data and empty chunks survive. */
    append_log(f->st, ex.id, 1, 1, 0, LOG_STREAM_STDOUT, "t1a1s0", 6);
    append_log(f->st, ex.id, 0, 2, 0, LOG_STREAM_STDERR, "t0a2s0", 6);
    append_log(f->st, ex.id, 0, 1, 1, LOG_STREAM_STDOUT, bin, sizeof(bin));
    append_log(f->st, ex.id, 0, 1, 0, LOG_STREAM_STDOUT, "t0a1s0", 6);
    append_log(f->st, ex.id, 0, 1, 2, LOG_STREAM_STDERR, NULL, 0);
    append_log(f->st, ex.id, 0, 1, 3, LOG_STREAM_STDOUT, "t0a1s3", 6);
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_logs_get(f->st, ex.id, -1, &list, &err), 0);
    assert_int_equal(list.n, 6);
    assert_int_equal(list.items[0].task_idx, 0);
    assert_int_equal(list.items[0].attempt, 1);
    assert_int_equal(list.items[0].seq, 0);
    assert_string_equal(list.items[0].data, "t0a1s0");
    assert_int_equal(list.items[0].ts, 1000);
    assert_int_equal(list.items[1].seq, 1);
    assert_int_equal(list.items[1].len, sizeof(bin));
    assert_memory_equal(list.items[1].data, bin, sizeof(bin));
    assert_int_equal(list.items[1].data[sizeof(bin)], '\0');
    assert_int_equal(list.items[2].seq, 2);
    assert_int_equal(list.items[2].stream, LOG_STREAM_STDERR);
    assert_int_equal(list.items[2].len, 0);
    assert_string_equal(list.items[2].data, "");
    assert_int_equal(list.items[3].seq, 3);
    assert_int_equal(list.items[4].attempt, 2);
    assert_int_equal(list.items[4].stream, LOG_STREAM_STDERR);
    assert_int_equal(list.items[5].task_idx, 1);
    log_list_release(&list);
    assert_null(list.items);
    assert_int_equal(list.n, 0);

    /* One task only. */
    assert_int_equal(store_logs_get(f->st, ex.id, 1, &list, &err), 0);
    assert_int_equal(list.n, 1);
    assert_string_equal(list.items[0].data, "t1a1s0");
    log_list_release(&list);
    /* Follow one attempt after seq 1. */
    assert_int_equal(store_logs_follow(f->st, ex.id, 0, 1, 1, &list, &err), 0);
    assert_int_equal(list.n, 2);
    assert_int_equal(list.items[0].seq, 2);
    assert_int_equal(list.items[1].seq, 3);
    log_list_release(&list);
    assert_int_equal(store_logs_follow(f->st, ex.id, 0, 1, 3, &list, &err), 0);
    assert_int_equal(list.n, 0);
    log_list_release(&list);

    /* Trim attempt 1 of task 0 to the chunks from seq 2 on. */
    assert_int_equal(store_log_trim(f->st, ex.id, 0, 1, 2, 0, &err), 0);
    assert_int_equal(store_logs_get(f->st, ex.id, 0, &list, &err), 0);
    assert_int_equal(list.n, 3);
    assert_int_equal(list.items[0].seq, 2);
    assert_int_equal(list.items[1].seq, 3);
    assert_int_equal(list.items[2].attempt, 2);
    log_list_release(&list);
    /* Other execution: nothing. */
    assert_int_equal(store_logs_get(f->st, "ex_other", -1, &list, &err), 0);
    assert_int_equal(list.n, 0);
    log_list_release(&list);

    /* Errors: duplicate seq, missing attempt, bad stream, bad follow. */
    {
        struct log_chunk dup = {0, 1, 3, LOG_STREAM_STDOUT, 0, (char *)"x", 1};
        assert_int_equal(store_log_append(f->st, ex.id, &dup, &err), ERR_CONFLICT);
        dup.attempt = 9;
        assert_int_equal(store_log_append(f->st, ex.id, &dup, &err), ERR_STORE);
        assert_non_null(strstr(err.msg, DB_MSG("FOREIGN KEY", "foreign key constraint")));
    }
    assert_int_equal(store_log_append(f->st, ex.id, &bad, &err), ERR_INVALID);
    bad.stream = LOG_STREAM_STDOUT;
    bad.len = 4;
    assert_int_equal(store_log_append(f->st, ex.id, &bad, &err), ERR_INVALID);
    assert_int_equal(store_logs_follow(f->st, ex.id, 0, 0, -1, &list, &err), ERR_INVALID);
}

/* --- readers beside the writer --- */

static void test_readonly_beside_writer(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *ro = NULL;
    struct exec_detail *d = NULL;
    struct exec_list list = {NULL, 0};
    struct exec_filter filter = {0};
    struct exec_row a;
    struct exec_row b;
    int v = 0;

    make_exec(&a, "wf", EXEC_QUEUED, 1);
    make_exec(&b, "wf", EXEC_QUEUED, 2);
    insert_exec(f->st, &a);
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &b);
    a.status = EXEC_RUNNING;
    assert_int_equal(store_execution_update(f->st, &a, &err), 0);

    /* The writer holds its transaction open: a reader opens and reads. */
    assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
    assert_int_equal(store_execution_get(ro, a.id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_QUEUED);
    exec_detail_free(d);
    assert_int_equal(store_execution_get(ro, b.id, &d, &err), ERR_NOT_FOUND);
    filter.limit = 10;
    assert_int_equal(store_executions_list(ro, &filter, &list, &err), 0);
    assert_int_equal(list.n, 1);
    exec_list_release(&list);

    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_execution_get(ro, b.id, &d, &err), 0);
    exec_detail_free(d);
    assert_int_equal(store_execution_get(ro, a.id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_RUNNING);
    exec_detail_free(d);

    /* A reader cannot write. */
    assert_int_equal(store_workflow_put(ro, "wf", "{}", 1, &v, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, DB_MSG("readonly", "read-only")));
    b.status = EXEC_FAILED;
    assert_int_equal(store_execution_update(ro, &b, &err), ERR_STORE);
    store_free(ro);
}

static void test_busy_writer(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *w2 = NULL;
    int64_t t0;

    SKIP_ON_PG("SQLite's single-writer lock and busy timeout");

    assert_int_equal(store_open(f->data, 0, &w2, &err), 0);
    assert_int_equal(store_begin(f->st, &err), 0);
    t0 = clock_mono_ms();
    assert_int_equal(store_begin(w2, &err), ERR_BUSY);
    assert_true(clock_mono_ms() - t0 >= 4000); /* waited for the busy timeout */
    assert_non_null(strstr(err.msg, "database is locked"));
    store_rollback(f->st);
    assert_int_equal(store_begin(w2, &err), 0);
    assert_int_equal(store_commit(w2, &err), 0);
    store_free(w2);
}

/* --- corrupt rows: read errors release what was built --- */

static void test_corrupt_rows(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = (struct exec_detail *)f;
    struct exec_list list = {NULL, 0};
    struct log_list logs = {NULL, 0};
    struct exec_filter filter = {0};
    struct exec_row ex;
    struct exec_row ok;
    struct task_run_row t = {0, (char *)"t", TASK_RUNNING, 1, 0, 0, 0, (char *)"e", NULL, 0, 0, 0, NULL, NULL, 0};
    struct attempt_row a = {0, 1, ATTEMPT_RUNNING, (char *)"n", 1, 1, 1, 1, 0, -1, 0, NULL, 0};
    char sql[256];

    make_exec(&ok, "wf", EXEC_SUCCEEDED, 1);
    insert_exec(f->st, &ok);
    make_exec(&ex, "wf", EXEC_RUNNING, 2);
    insert_exec(f->st, &ex);
    for (int i = 0; i < 3; i++) {
        t.idx = i;
        a.task_idx = i;
        assert_int_equal(store_task_run_insert(f->st, ex.id, &t, &err), 0);
        assert_int_equal(store_attempt_insert(f->st, ex.id, &a, &err), 0);
    }
    append_log(f->st, ex.id, 0, 1, 0, LOG_STREAM_STDOUT, "hello", 5);
    append_log(f->st, ex.id, 0, 1, 1, LOG_STREAM_STDOUT, "hello", 5);

    snprintf(sql, sizeof(sql), "UPDATE attempts SET status = 'odd' WHERE task_idx = 2");
    raw_sql(f->dbpath, sql);
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), ERR_STORE);
    assert_null(d);
    assert_non_null(strstr(err.msg, "unknown status 'odd'"));
    raw_sql(f->dbpath, "UPDATE task_runs SET status = 'weird' WHERE idx = 1");
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "unknown status 'weird'"));
    raw_sql(f->dbpath, "UPDATE executions SET status = 'strange' WHERE created_at = 2");
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), ERR_STORE);
    filter.limit = 10;
    assert_int_equal(store_executions_list(f->st, &filter, &list, &err), ERR_STORE);
    assert_null(list.items);
    raw_sql(f->dbpath, "UPDATE logs SET stream = 'stdin' WHERE seq = 1");
    assert_int_equal(store_logs_get(f->st, ex.id, -1, &logs, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "unknown log stream 'stdin'"));
    assert_null(logs.items);
}

/* --- speed of one engine loop turn --- */

#define NBATCH 1000

static void test_batch_timing(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row ex;
    char names[NBATCH][16];
    int64_t t0;
    int64_t t1;
    int64_t t2;

    for (int i = 0; i < NBATCH; i++)
        snprintf(names[i], sizeof(names[i]), "task-%d", i);
    make_exec(&ex, "big", EXEC_RUNNING, clock_now_ms());

    /* Turn 1: the execution starts; every task is queued and started. */
    t0 = clock_mono_ns();
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &ex);
    for (int i = 0; i < NBATCH; i++) {
        struct task_run_row t = {i, names[i], TASK_QUEUED, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
        struct attempt_row a = {i,
                                1,
                                ATTEMPT_RUNNING,
                                (char *)"host:1",
                                1000 + i,
                                1000 + i,
                                5555,
                                1700000000000,
                                0,
                                -1,
                                0,
                                NULL,
                                0};
        assert_int_equal(store_task_run_insert(f->st, ex.id, &t, &err), 0);
        assert_int_equal(store_attempt_insert(f->st, ex.id, &a, &err), 0);
        t.status = TASK_RUNNING;
        t.attempt = 1;
        t.started_at = 1700000000000;
        assert_int_equal(store_task_run_update(f->st, ex.id, &t, 0, &err), 0);
    }
    assert_int_equal(store_commit(f->st, &err), 0);
    t1 = clock_mono_ns();

    /* Turn 2: every attempt finishes, every task succeeds, the execution too. */
    assert_int_equal(store_begin(f->st, &err), 0);
    for (int i = 0; i < NBATCH; i++) {
        struct task_run_row t = {i, names[i],      TASK_SUCCEEDED, 1,
                                 0, 1700000000000, 1700000000500,  NULL, NULL, 0, 0, 0, NULL, NULL, 0};
        struct attempt_row a = {i,        1,    ATTEMPT_SUCCEEDED, NULL,          1000 + i,
                                1000 + i, 5555, 1700000000000,     1700000000500, 0,
                                0,        NULL, 0};
        assert_int_equal(store_attempt_update(f->st, ex.id, &a, &err), 0);
        assert_int_equal(store_task_run_update(f->st, ex.id, &t, 1, &err), 0);
    }
    ex.status = EXEC_SUCCEEDED;
    ex.finished_at = clock_now_ms();
    assert_int_equal(store_execution_update(f->st, &ex, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    t2 = clock_mono_ns();

    print_message("batch of %d tasks: turn 1 (1 exec + %d task inserts + %d attempt inserts + "
                  "%d fenced updates, 1 commit) %.2f ms; turn 2 (%d attempt updates + %d fenced "
                  "updates + 1 exec update, 1 commit) %.2f ms\n",
                  NBATCH, NBATCH, NBATCH, NBATCH, (double)(t1 - t0) / 1e6, NBATCH, NBATCH,
                  (double)(t2 - t1) / 1e6);

    t0 = clock_mono_ns();
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
    t1 = clock_mono_ns();
    print_message("execution_get with %d tasks and %d attempts: %.2f ms\n", NBATCH, NBATCH,
                  (double)(t1 - t0) / 1e6);
    assert_int_equal(d->ntasks, NBATCH);
    assert_int_equal(d->nattempts, NBATCH);
    for (int i = 0; i < NBATCH; i++) {
        assert_int_equal(d->tasks[i].idx, i);
        assert_int_equal(d->tasks[i].status, TASK_SUCCEEDED);
        assert_int_equal(d->attempts[i].exit_code, 0);
    }
    exec_detail_free(d);
}

/* --- server additions: helpers --- */

/* The single integer a query returns, read behind the store's back. */
static int64_t raw_int(const char *dbpath, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    int64_t v = -1;

    if (g_pg) {
        PGconn *c = PQconnectdb(g_pg_loc);
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        PQfinish(c);
        return v;
    }
    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

/* Rows in each table below (and with) an execution. */
struct table_counts {
    int64_t executions, task_runs, attempts, logs, idempotency_keys;
};

static struct table_counts count_tables(const char *dbpath)
{
    struct table_counts c;
    c.executions = raw_int(dbpath, "SELECT count(*) FROM executions");
    c.task_runs = raw_int(dbpath, "SELECT count(*) FROM task_runs");
    c.attempts = raw_int(dbpath, "SELECT count(*) FROM attempts");
    c.logs = raw_int(dbpath, "SELECT count(*) FROM logs");
    c.idempotency_keys = raw_int(dbpath, "SELECT count(*) FROM idempotency_keys");
    return c;
}

static void assert_tables(const char *dbpath, int64_t executions)
{
    struct table_counts c = count_tables(dbpath);
    /* Each execution from make_tree(): 2 task runs, 2 attempts, 4 chunks, 1 key. */
    assert_int_equal(c.executions, executions);
    assert_int_equal(c.task_runs, 2 * executions);
    assert_int_equal(c.attempts, 2 * executions);
    assert_int_equal(c.logs, 4 * executions);
    assert_int_equal(c.idempotency_keys, executions);
}

/*
 * An execution with everything below it: 2 task runs, an attempt of each
 * with 2 log chunks, and the idempotency key "key-<id>".
 */
static void make_tree(struct store *st, struct exec_row *row, const char *workflow,
                      enum exec_status status, int64_t finished_at)
{
    struct err err = ERR_INIT;
    char key[64];

    make_exec(row, workflow, status, 1000);
    row->started_at = 1000;
    row->finished_at = finished_at;
    snprintf(key, sizeof(key), "key-%s", row->id);
    if (store_begin(st, &err) != 0)
        fail_msg("begin: %s", err.msg);
    insert_exec(st, row);
    for (int i = 0; i < 2; i++) {
        struct task_run_row t = {i, (char *)"t", TASK_SUCCEEDED, 1, 0, 1000, 1100, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
        struct attempt_row a = {i, 1, ATTEMPT_SUCCEEDED, NULL, 0, 0, 0, 1000, 1100, 0, 0, NULL, 0};
        struct log_chunk c = {i, 1, 0, LOG_STREAM_STDOUT, 1000, (char *)"out", 3};
        assert_int_equal(store_task_run_insert(st, row->id, &t, &err), 0);
        assert_int_equal(store_attempt_insert(st, row->id, &a, &err), 0);
        assert_int_equal(store_log_append(st, row->id, &c, &err), 0);
        c.seq = 1;
        assert_int_equal(store_log_append(st, row->id, &c, &err), 0);
    }
    if (store_idempotency_put(st, workflow, key, row->id, 1000, &err) != 0)
        fail_msg("idempotency put: %s", err.msg);
    if (store_commit(st, &err) != 0)
        fail_msg("commit: %s", err.msg);
}

static int exec_exists(struct store *st, const char *id)
{
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    int rc = store_execution_get(st, id, &d, &err);

    if (rc != 0 && rc != ERR_NOT_FOUND)
        fail_msg("get %s: %s", id, err.msg);
    exec_detail_free(d);
    return rc == 0;
}

/* --- ping --- */

/* store_diag: the fixed queries of orch doctor on both backends. */
static void test_diag(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store_diag_rows rows = STORE_DIAG_ROWS_INIT;
    struct exec_row ex;
    struct task_run_row t0 = {0, (char *)"extract", TASK_QUEUED, 0, 0, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    int64_t since = 0, hb = 1000000;

    make_exec(&ex, "etl", EXEC_RUNNING, 10);
    ex.started_at = 10;
    ex.owner = (char *)"gone-node:1";
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &ex);
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t0, &err), 0);
    for (int n = 1; n <= 3; n++) {
        struct attempt_row a = {0};
        a.task_idx = 0;
        a.number = n;
        a.status = ATTEMPT_FAILED;
        a.started_at = 100 * n;
        a.finished_at = 100 * n + 50;
        a.exit_code = 1;
        a.error = (char *)"exit status 1: Connection timeout to 10.1.2.3:5432";
        assert_int_equal(store_attempt_insert(f->st, ex.id, &a, &err), 0);
    }
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_diag(f->st, STORE_DIAG_FAILURES, &since, 1, &rows, &err), 0);
    assert_int_equal(rows.nrows, 1);
    assert_int_equal(rows.ncols, 6);
    assert_string_equal(store_diag_cell(&rows, 0, 0), "etl");
    assert_string_equal(store_diag_cell(&rows, 0, 1), "extract");
    assert_string_equal(store_diag_cell(&rows, 0, 2),
                        "exit status 1: Connection timeout to 10.1.2.3:5432");
    assert_string_equal(store_diag_cell(&rows, 0, 3), "3");
    assert_string_equal(store_diag_cell(&rows, 0, 4), ex.id);
    assert_string_equal(store_diag_cell(&rows, 0, 5), "0");
    assert_null(store_diag_cell(&rows, 1, 0));
    assert_null(store_diag_cell(&rows, 0, 6));
    store_diag_rows_release(&rows);
    /* Nothing since a later instant. */
    since = 1000;
    assert_int_equal(store_diag(f->st, STORE_DIAG_FAILURES, &since, 1, &rows, &err), 0);
    assert_int_equal(rows.nrows, 0);
    store_diag_rows_release(&rows);

    /* Its owner is no node at all: an orphan. */
    assert_int_equal(store_diag(f->st, STORE_DIAG_ORPHANS, &hb, 1, &rows, &err), 0);
    assert_int_equal(rows.nrows, 1);
    assert_string_equal(store_diag_cell(&rows, 0, 0), ex.id);
    assert_string_equal(store_diag_cell(&rows, 0, 2), "gone-node:1");
    assert_null(store_diag_cell(&rows, 0, 3));
    store_diag_rows_release(&rows);

    assert_int_equal(store_diag(f->st, STORE_DIAG_QUEUED, NULL, 0, &rows, &err), 0);
    assert_int_equal(rows.nrows, 1);
    assert_string_equal(store_diag_cell(&rows, 0, 0), "etl");
    assert_string_equal(store_diag_cell(&rows, 0, 1), "1");
    assert_string_equal(store_diag_cell(&rows, 0, 2), "10");
    store_diag_rows_release(&rows);

    /* PostgreSQL's own figures. */
    if (g_pg) {
        assert_int_equal(store_diag(f->st, STORE_DIAG_CLOCK, NULL, 0, &rows, &err), 0);
        assert_int_equal(rows.nrows, 1);
        assert_true(strtoll(store_diag_cell(&rows, 0, 0), NULL, 10) > 1700000000000LL);
        store_diag_rows_release(&rows);
        assert_int_equal(store_diag(f->st, STORE_DIAG_PG_EXTENSION, NULL, 0, &rows, &err), 0);
        assert_int_equal(rows.ncols, 3);
        store_diag_rows_release(&rows);
        assert_int_equal(store_diag(f->st, STORE_DIAG_PG_BLOAT, NULL, 0, &rows, &err), 0);
        assert_int_equal(rows.ncols, 5);
        store_diag_rows_release(&rows);
        since = 60000;
        assert_int_equal(store_diag(f->st, STORE_DIAG_PG_SESSIONS, &since, 1, &rows, &err), 0);
        assert_int_equal(rows.ncols, 5);
        store_diag_rows_release(&rows);
    } else {
        assert_int_equal(store_diag(f->st, STORE_DIAG_CLOCK, NULL, 0, &rows, &err), ERR_INVALID);
        assert_int_equal(store_diag(f->st, STORE_DIAG_PG_STATEMENTS, NULL, 0, &rows, &err),
                         ERR_INVALID);
        assert_int_equal(rows.nrows, 0);
    }
    assert_int_equal(store_diag(f->st, STORE_DIAG_COUNT, NULL, 0, &rows, &err), ERR_INVALID);
    assert_int_equal(store_diag(f->st, STORE_DIAG_FAILURES, NULL, 1, &rows, &err), ERR_INVALID);
    store_diag_rows_release(&rows);
}

static void test_ping(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *ro = NULL;

    assert_int_equal(store_ping(f->st, &err), 0);
    assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
    assert_int_equal(store_ping(ro, &err), 0);
    /* Inside a transaction too. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_ping(f->st, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    store_free(ro);

    /* It reads the database file: a broken one fails. */
    raw_sql(f->dbpath, "ALTER TABLE schema_version RENAME TO schema_gone");
    assert_int_equal(store_ping(f->st, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, DB_MSG("no such table: schema_version",
                                           "relation \"schema_version\" does not exist")));
}

/* --- workflows: list, delete --- */

static void test_workflows_list(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct workflow_row *rows = (struct workflow_row *)f; /* must be reset */
    size_t n = 99;
    int v = 0;

    assert_int_equal(store_workflows_list(f->st, &rows, &n, &err), 0);
    assert_null(rows);
    assert_int_equal(n, 0);
    assert_int_equal(store_workflow_put(f->st, "b", "{\"b\":1}", 10, &v, &err), 0);
    assert_int_equal(store_workflow_put(f->st, "c", "{\"c\":1}", 11, &v, &err), 0);
    assert_int_equal(store_workflow_put(f->st, "a", "{\"a\":1}", 12, &v, &err), 0);
    assert_int_equal(store_workflow_put(f->st, "b", "{\"b\":2}", 13, &v, &err), 0);
    assert_int_equal(store_workflows_list(f->st, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].name, "a");
    assert_int_equal(rows[0].version, 1);
    assert_string_equal(rows[0].definition, "{\"a\":1}");
    assert_int_equal(rows[0].created_at, 12);
    assert_string_equal(rows[1].name, "b");
    assert_int_equal(rows[1].version, 2);
    assert_string_equal(rows[1].definition, "{\"b\":2}");
    assert_int_equal(rows[1].created_at, 13);
    assert_string_equal(rows[2].name, "c");
    assert_int_equal(rows[2].version, 1);
    workflow_rows_free(rows, n);
    workflow_rows_free(NULL, 0);

    /* A corrupt table: the error is reported and nothing is returned. */
    raw_sql(f->dbpath, "ALTER TABLE workflows RENAME TO workflows_gone");
    rows = (struct workflow_row *)f;
    assert_int_equal(store_workflows_list(f->st, &rows, &n, &err), ERR_STORE);
    assert_null(rows);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.msg, DB_MSG("no such table", "does not exist")));
}

static void test_workflow_delete(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *ro = NULL;
    struct workflow_row *rows = NULL;
    char *def = NULL;
    size_t n = 0;
    int v = 0;

    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":1}", 100, &v, &err), 0);
    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":2}", 101, &v, &err), 0);
    assert_int_equal(store_workflow_put(f->st, "other", "{}", 102, &v, &err), 0);

    assert_int_equal(store_workflow_delete(f->st, "etl", 200, &err), 0);
    def = (char *)f;
    assert_int_equal(store_workflow_get(f->st, "etl", 0, &def, &v, &err), ERR_NOT_FOUND);
    assert_null(def);
    assert_string_equal(err.msg, "no workflow 'etl'");
    /* The versions stay readable by number, for the executions that ran them. */
    assert_int_equal(store_workflow_get(f->st, "etl", 1, &def, &v, &err), 0);
    assert_string_equal(def, "{\"v\":1}");
    free(def);
    assert_int_equal(store_workflow_get(f->st, "etl", 2, &def, &v, &err), 0);
    assert_int_equal(v, 2);
    assert_string_equal(def, "{\"v\":2}");
    free(def);
    assert_int_equal(store_workflows_list(f->st, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].name, "other");
    workflow_rows_free(rows, n);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM workflows WHERE deleted_at = 200"),
                     2);

    /* Deleting again, or what never was: not found. */
    assert_int_equal(store_workflow_delete(f->st, "etl", 201, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no workflow 'etl'");
    assert_int_equal(store_workflow_delete(f->st, "nope", 201, &err), ERR_NOT_FOUND);
    assert_int_equal(store_workflow_delete(f->st, "", 201, &err), ERR_INVALID);
    assert_int_equal(store_workflow_delete(f->st, NULL, 201, &err), ERR_INVALID);

    /* Put again, even the same text as the last version: numbering continues. */
    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":2}", 300, &v, &err), 0);
    assert_int_equal(v, 3);
    assert_int_equal(store_workflow_put(f->st, "etl", "{\"v\":2}", 301, &v, &err), 0);
    assert_int_equal(v, 3);
    assert_int_equal(store_workflow_get(f->st, "etl", 0, &def, &v, &err), 0);
    assert_int_equal(v, 3);
    free(def);
    assert_int_equal(store_workflows_list(f->st, &rows, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].name, "etl");
    assert_int_equal(rows[0].version, 3);
    assert_int_equal(rows[0].created_at, 300);
    workflow_rows_free(rows, n);

    /* Rolled back with the caller's transaction. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_workflow_delete(f->st, "etl", 350, &err), 0);
    assert_int_equal(store_workflow_get(f->st, "etl", 0, &def, &v, &err), ERR_NOT_FOUND);
    store_rollback(f->st);
    assert_int_equal(store_workflow_get(f->st, "etl", 0, &def, &v, &err), 0);
    free(def);

    /* A second delete marks the new version only; the old keep their time. */
    assert_int_equal(store_workflow_delete(f->st, "etl", 400, &err), 0);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM workflows WHERE deleted_at = 200"),
                     2);
    assert_int_equal(
        raw_int(f->dbpath, "SELECT deleted_at FROM workflows WHERE name = 'etl' AND version = 3"),
        400);

    /* A reader cannot delete. */
    assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
    assert_int_equal(store_workflow_delete(ro, "other", 500, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "cannot delete workflow 'other'"));
    assert_non_null(strstr(err.msg, DB_MSG("readonly", "read-only")));
    store_free(ro);
}

/* --- idempotency keys --- */

static void notify_make(struct notify_row *n, const char *id, const char *exec_id, int64_t next_at)
{
    memset(n, 0, sizeof(*n));
    snprintf(n->id, sizeof(n->id), "%s", id);
    snprintf(n->exec_id, sizeof(n->exec_id), "%s", exec_id);
    n->workflow = (char *)"etl";
    n->event = (char *)"failed";
    n->request = (char *)"{\"url\":\"http://127.0.0.1:9/\",\"auth\":{\"bearerEnv\":\"T\"}}";
    n->body = (char *)"{}";
    n->status = NOTIFY_PENDING;
    n->next_at = next_at;
    n->created_at = n->updated_at = 1;
}

/* The outbox: claims take due rows once (a claimed row is another node's until its
 * lease ends), an attempt is recorded only by the node holding the row. */
static void test_notify_outbox(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row a;
    struct notify_row r1, r2, *rows = NULL, set;
    size_t n = 0;
    int64_t next = 0;

    make_exec(&a, "etl", EXEC_FAILED, 1);
    notify_make(&r1, "nt_1", a.id, 100);
    notify_make(&r2, "nt_2", a.id, 500);
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &a);
    assert_int_equal(store_notify_insert(f->st, &r1, &err), 0);
    assert_int_equal(store_notify_insert(f->st, &r2, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_notify_next(f->st, &next, &err), 0);
    assert_int_equal(next, 100);

    /* Due at 100: node a takes nt_1; b finds nothing (claimed, lease until 150). */
    assert_int_equal(store_notify_claim(f->st, "a", 100, 50, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, "nt_1");
    assert_int_equal(rows[0].status, NOTIFY_SENDING);
    assert_string_equal(rows[0].claimed_by, "a");
    assert_int_equal(rows[0].lease_until, 150);
    assert_string_equal(rows[0].request, r1.request);
    notify_rows_free(rows, n);
    assert_int_equal(store_notify_claim(f->st, "b", 120, 50, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 0);
    free(rows);
    /* b does not hold it: its outcome is refused. */
    set = r1;
    set.status = NOTIFY_PENDING;
    set.attempts = 1;
    set.next_at = 300;
    set.last_error = (char *)"HTTP 500";
    set.response_code = 500;
    set.updated_at = 130;
    assert_int_equal(store_notify_settle(f->st, &set, "b", &err), ERR_CONFLICT);
    assert_int_equal(store_notify_settle(f->st, &set, "a", &err), 0);
    assert_int_equal(store_notify_next(f->st, &next, &err), 0);
    assert_int_equal(next, 300);
    assert_int_equal(store_notify_claim(f->st, "b", 299, 50, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 0);
    free(rows);

    /* b takes it at 300; a takes it over once b's lease ended (b died). */
    assert_int_equal(store_notify_claim(f->st, "b", 300, 50, 0, 1, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(rows[0].attempts, 1);
    notify_rows_free(rows, n);
    assert_int_equal(store_notify_next(f->st, &next, &err), 0);
    assert_int_equal(next, 350); /* its lease */
    assert_int_equal(store_notify_claim(f->st, "a", 349, 50, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 0);
    free(rows);
    assert_int_equal(store_notify_claim(f->st, "a", 350, 50, 0, 1, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].claimed_by, "a");
    notify_rows_free(rows, n);
    set.status = NOTIFY_DELIVERED;
    set.attempts = 2;
    set.last_error = NULL;
    set.response_code = 200;
    set.updated_at = 360;
    assert_int_equal(store_notify_settle(f->st, &set, "b", &err), ERR_CONFLICT);
    assert_int_equal(store_notify_settle(f->st, &set, "a", &err), 0);

    /* A restart takes back its own row at once (1: by name; 2: any). */
    assert_int_equal(store_notify_claim(f->st, "a", 500, 1000, 0, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    notify_rows_free(rows, n);
    assert_int_equal(store_notify_claim(f->st, "b", 600, 1000, 1, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 0);
    free(rows);
    assert_int_equal(store_notify_claim(f->st, "a", 600, 1000, 1, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    notify_rows_free(rows, n);
    assert_int_equal(store_notify_claim(f->st, "c", 700, 1000, 2, 10, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].claimed_by, "c");
    notify_rows_free(rows, n);
    set = r2;
    set.status = NOTIFY_FAILED;
    set.attempts = 8;
    set.last_error = (char *)"Connection refused";
    set.updated_at = 710;
    assert_int_equal(store_notify_settle(f->st, &set, "c", &err), 0);
    assert_int_equal(store_notify_next(f->st, &next, &err), 0);
    assert_int_equal(next, 0); /* nothing left to send */

    assert_int_equal(store_notify_list(f->st, a.id, &rows, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].id, "nt_1");
    assert_int_equal(rows[0].status, NOTIFY_DELIVERED);
    assert_int_equal(rows[0].attempts, 2);
    assert_int_equal(rows[0].response_code, 200);
    assert_null(rows[0].last_error);
    assert_null(rows[0].claimed_by);
    assert_int_equal(rows[1].status, NOTIFY_FAILED);
    assert_string_equal(rows[1].last_error, "Connection refused");
    notify_rows_free(rows, n);
    assert_int_equal(store_notify_list(f->st, "ex_none", &rows, &n, &err), 0);
    assert_int_equal(n, 0);

    /* The execution must exist; bad arguments are refused. */
    notify_make(&r1, "nt_3", "ex_none", 1);
    assert_int_equal(store_notify_insert(f->st, &r1, &err), ERR_STORE);
    assert_int_equal(store_notify_claim(f->st, "", 1, 1, 0, 1, &rows, &n, &err), ERR_INVALID);
    set.status = NOTIFY_SENDING;
    assert_int_equal(store_notify_settle(f->st, &set, "c", &err), ERR_INVALID);
}

static void test_idempotency(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *ro = NULL;
    struct exec_row a;
    struct exec_row b;
    char id[ID_MAX] = "garbage";
    char longkey[300];

    make_exec(&a, "etl", EXEC_QUEUED, 1);
    make_exec(&b, "etl", EXEC_QUEUED, 2);
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &a);
    assert_int_equal(store_idempotency_put(f->st, "etl", "req-1", a.id, 10, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    insert_exec(f->st, &b);

    assert_int_equal(store_idempotency_get(f->st, "etl", "req-1", id, &err), 0);
    assert_string_equal(id, a.id);
    /* The pair is taken: conflict, and the first execution stays recorded. */
    assert_int_equal(store_idempotency_put(f->st, "etl", "req-1", b.id, 11, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "cannot record idempotency key 'req-1' of 'etl'"));
    assert_int_equal(store_idempotency_get(f->st, "etl", "req-1", id, &err), 0);
    assert_string_equal(id, a.id);
    /* Keys are per workflow. */
    assert_int_equal(store_idempotency_put(f->st, "other", "req-1", b.id, 12, &err), 0);
    assert_int_equal(store_idempotency_get(f->st, "other", "req-1", id, &err), 0);
    assert_string_equal(id, b.id);
    /* Missing. */
    assert_int_equal(store_idempotency_get(f->st, "etl", "req-2", id, &err), ERR_NOT_FOUND);
    assert_string_equal(id, "");
    assert_string_equal(err.msg, "no execution for idempotency key 'req-2' of 'etl'");
    /* The execution must exist (insert it first, in the same transaction). */
    assert_int_equal(store_idempotency_put(f->st, "etl", "req-3", "ex_none", 13, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, DB_MSG("FOREIGN KEY", "foreign key constraint")));
    /* Rolled back with the caller's transaction. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_idempotency_put(f->st, "etl", "req-4", b.id, 14, &err), 0);
    store_rollback(f->st);
    assert_int_equal(store_idempotency_get(f->st, "etl", "req-4", id, &err), ERR_NOT_FOUND);

    /* Bad arguments; 255 bytes is the longest key. */
    memset(longkey, 'k', sizeof(longkey));
    longkey[255] = '\0';
    assert_int_equal(store_idempotency_put(f->st, "etl", longkey, b.id, 15, &err), 0);
    assert_int_equal(store_idempotency_get(f->st, "etl", longkey, id, &err), 0);
    assert_string_equal(id, b.id);
    longkey[255] = 'k';
    longkey[256] = '\0';
    assert_int_equal(store_idempotency_put(f->st, "etl", longkey, b.id, 15, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "is too long"));
    assert_int_equal(store_idempotency_get(f->st, "etl", longkey, id, &err), ERR_INVALID);
    assert_int_equal(store_idempotency_get(f->st, "", "k", id, &err), ERR_INVALID);
    assert_int_equal(store_idempotency_get(f->st, "etl", NULL, id, &err), ERR_INVALID);
    assert_int_equal(store_idempotency_put(f->st, NULL, "k", b.id, 1, &err), ERR_INVALID);
    assert_int_equal(store_idempotency_put(f->st, "etl", "", b.id, 1, &err), ERR_INVALID);
    assert_int_equal(store_idempotency_put(f->st, "etl", "k", "", 1, &err), ERR_INVALID);

    /* A reader reads but cannot record. */
    assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
    assert_int_equal(store_idempotency_get(ro, "etl", "req-1", id, &err), 0);
    assert_string_equal(id, a.id);
    assert_int_equal(store_idempotency_put(ro, "etl", "req-5", a.id, 1, &err), ERR_STORE);
    store_free(ro);

    /* A corrupt row. */
    raw_sql(f->dbpath, "UPDATE idempotency_keys SET execution_id = "
                       "'ex_0123456789012345678901234567890123456789' WHERE key = 'req-1'");
    assert_int_equal(store_idempotency_get(f->st, "etl", "req-1", id, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "bad execution id"));
    assert_string_equal(id, "");
}

/* --- API keys --- */

static void make_key(struct key_row *k, const char *name, const char *prefix, int64_t created_at,
                     unsigned scopes)
{
    memset(k, 0, sizeof(*k));
    id_new("key_", k->id);
    k->name = (char *)name;
    snprintf(k->prefix, sizeof(k->prefix), "%s", prefix);
    for (int i = 0; i < KEY_HASH_LEN; i++)
        k->hash[i] = (unsigned char)(prefix[5] + i * 7); /* binary, NULs included */
    k->hash[3] = 0;
    k->scopes = scopes;
    k->created_at = created_at;
}

static void insert_key(struct store *st, const struct key_row *k)
{
    struct err err = ERR_INIT;
    if (store_key_insert(st, k, &err) != 0)
        fail_msg("insert key %s: %s", k->id, err.msg);
}

static void get_key(struct store *st, const char *prefix, struct key_row *out)
{
    struct err err = ERR_INIT;
    if (store_key_get_by_prefix(st, prefix, out, &err) != 0)
        fail_msg("get key %s: %s", prefix, err.msg);
}

static void test_keys(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct key_row k1;
    struct key_row k2;
    struct key_row k3;
    struct key_row bad;
    struct key_row got;
    struct key_row *rows = NULL;
    size_t n = 0;

    make_key(&k1, "ci", "orch_ab12", 100, KEY_SCOPE_READ);
    make_key(&k2, "deploy", "orch_cd34", 200, KEY_SCOPE_READ | KEY_SCOPE_WRITE);
    k2.expires_at = 5000;
    make_key(&k3, "ci", "orch_ef56", 300, KEY_SCOPE_ADMIN);
    insert_key(f->st, &k1);
    insert_key(f->st, &k2);
    insert_key(f->st, &k3);

    get_key(f->st, "orch_cd34", &got);
    assert_string_equal(got.id, k2.id);
    assert_string_equal(got.name, "deploy");
    assert_string_equal(got.prefix, "orch_cd34");
    assert_memory_equal(got.hash, k2.hash, KEY_HASH_LEN);
    assert_int_equal(got.scopes, KEY_SCOPE_READ | KEY_SCOPE_WRITE);
    assert_int_equal(got.created_at, 200);
    assert_int_equal(got.expires_at, 5000);
    assert_int_equal(got.last_used_at, 0);
    assert_int_equal(got.revoked_at, 0);
    key_row_release(&got);
    assert_null(got.name);
    key_row_release(NULL);

    got.name = (char *)f; /* must be reset */
    assert_int_equal(store_key_get_by_prefix(f->st, "orch_zz99", &got, &err), ERR_NOT_FOUND);
    assert_null(got.name);
    assert_string_equal(err.msg, "no key with prefix 'orch_zz99'");

    /* Newest first. */
    assert_int_equal(store_keys_list(f->st, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, k3.id);
    assert_string_equal(rows[1].id, k2.id);
    assert_string_equal(rows[2].id, k1.id);
    assert_string_equal(rows[2].name, "ci");
    assert_memory_equal(rows[2].hash, k1.hash, KEY_HASH_LEN);
    key_rows_free(rows, n);
    key_rows_free(NULL, 0);

    /* Prefixes and ids are unique. */
    make_key(&bad, "other", "orch_ab12", 400, KEY_SCOPE_READ);
    assert_int_equal(store_key_insert(f->st, &bad, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.msg, DB_MSG("api_keys.prefix", "api_keys_prefix_key")));
    memcpy(bad.id, k1.id, ID_MAX);
    snprintf(bad.prefix, sizeof(bad.prefix), "orch_gh78");
    assert_int_equal(store_key_insert(f->st, &bad, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.msg, DB_MSG("api_keys.id", "api_keys_pkey")));

    /* Touch: set, never backwards. */
    assert_int_equal(store_key_touch(f->st, k1.id, 500, &err), 0);
    assert_int_equal(store_key_touch(f->st, k1.id, 400, &err), 0);
    get_key(f->st, "orch_ab12", &got);
    assert_int_equal(got.last_used_at, 500);
    key_row_release(&got);
    assert_int_equal(store_key_touch(f->st, k1.id, 600, &err), 0);
    get_key(f->st, "orch_ab12", &got);
    assert_int_equal(got.last_used_at, 600);
    key_row_release(&got);
    assert_int_equal(store_key_touch(f->st, "key_missing", 700, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no key 'key_missing'");

    /* Revoke by id; again keeps the first time. */
    assert_int_equal(store_key_revoke(f->st, k2.id, 1000, &err), 0);
    assert_int_equal(store_key_revoke(f->st, k2.id, 2000, &err), 0);
    get_key(f->st, "orch_cd34", &got);
    assert_int_equal(got.revoked_at, 1000);
    key_row_release(&got);
    /* By name: every key of that name; one revoked already keeps its time. */
    assert_int_equal(store_key_revoke(f->st, k1.id, 2500, &err), 0);
    assert_int_equal(store_key_revoke(f->st, "ci", 3000, &err), 0);
    get_key(f->st, "orch_ab12", &got);
    assert_int_equal(got.revoked_at, 2500);
    key_row_release(&got);
    get_key(f->st, "orch_ef56", &got);
    assert_int_equal(got.revoked_at, 3000);
    key_row_release(&got);
    /* A name that looks like an id. */
    make_key(&bad, "key_named", "orch_ij90", 500, KEY_SCOPE_READ);
    insert_key(f->st, &bad);
    assert_int_equal(store_key_revoke(f->st, "key_named", 3100, &err), 0);
    get_key(f->st, "orch_ij90", &got);
    assert_int_equal(got.revoked_at, 3100);
    key_row_release(&got);
    /* Nothing of that id or name. */
    assert_int_equal(store_key_revoke(f->st, "nobody", 4000, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no key 'nobody'");
    assert_int_equal(store_key_revoke(f->st, "key_0000000000000000", 4000, &err), ERR_NOT_FOUND);
    /* Revoked keys are still listed. */
    assert_int_equal(store_keys_list(f->st, &rows, &n, &err), 0);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_true(rows[i].revoked_at > 0);
    key_rows_free(rows, n);

    /* Bad arguments. */
    make_key(&bad, "x", "orch_kl12", 1, KEY_SCOPE_READ);
    memcpy(bad.id, "api_123", sizeof("api_123"));
    assert_int_equal(store_key_insert(f->st, &bad, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "does not start with 'key_'"));
    id_new("key_", bad.id);
    bad.scopes = 1u << 3;
    assert_int_equal(store_key_insert(f->st, &bad, &err), ERR_INVALID);
    bad.scopes = KEY_SCOPE_READ;
    bad.name = (char *)"";
    assert_int_equal(store_key_insert(f->st, &bad, &err), ERR_INVALID);
    bad.name = (char *)"x";
    bad.prefix[0] = '\0';
    assert_int_equal(store_key_insert(f->st, &bad, &err), ERR_INVALID);
    memset(bad.prefix, 'p', sizeof(bad.prefix)); /* no terminator */
    assert_int_equal(store_key_insert(f->st, &bad, &err), ERR_INVALID);
    bad.id[0] = '\0';
    assert_int_equal(store_key_insert(f->st, &bad, &err), ERR_INVALID);
    /* A prefix no key can have, cut from what a client sent, is just not found. */
    assert_int_equal(store_key_get_by_prefix(f->st, "", &got, &err), ERR_NOT_FOUND);
    assert_int_equal(store_key_get_by_prefix(f->st, "orch_0123456789012345678901", &got, &err),
                     ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no key with prefix 'orch_0123456789012345678'");
    assert_null(got.name);
    assert_int_equal(store_key_get_by_prefix(f->st, NULL, &got, &err), ERR_INVALID);
    assert_int_equal(store_key_revoke(f->st, "", 1, &err), ERR_INVALID);
    assert_int_equal(store_key_revoke(f->st, NULL, 1, &err), ERR_INVALID);
    assert_int_equal(store_key_touch(f->st, "", 1, &err), ERR_INVALID);
    assert_int_equal(store_key_touch(f->st, "key_0123456789012345678901234567890", 1, &err),
                     ERR_INVALID);

    /* A reader reads but cannot write. */
    {
        struct store *ro = NULL;
        assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
        get_key(ro, "orch_ab12", &got);
        key_row_release(&got);
        make_key(&bad, "ro", "orch_mn34", 1, KEY_SCOPE_READ);
        assert_int_equal(store_key_insert(ro, &bad, &err), ERR_STORE);
        assert_int_equal(store_key_revoke(ro, "ci", 1, &err), ERR_STORE);
        assert_int_equal(store_key_touch(ro, k1.id, 1, &err), ERR_STORE);
        store_free(ro);
    }

    /* Corrupt rows. */
    raw_sql(f->dbpath, g_pg ? "UPDATE api_keys SET hash = '\\x00'::bytea WHERE prefix = 'orch_cd34'"
                            : "UPDATE api_keys SET hash = x'00' WHERE prefix = 'orch_cd34'");
    assert_int_equal(store_key_get_by_prefix(f->st, "orch_cd34", &got, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "bad hash of key"));
    assert_null(got.name);
    assert_string_equal(got.id, "");
    rows = (struct key_row *)f;
    assert_int_equal(store_keys_list(f->st, &rows, &n, &err), ERR_STORE);
    assert_null(rows);
    assert_int_equal(n, 0);
    raw_sql(f->dbpath, g_pg ? "UPDATE api_keys SET hash = decode(repeat('00', 32), 'hex'),"
                              " prefix = 'orch_0123456789012345678901' WHERE prefix = 'orch_cd34'"
                            : "UPDATE api_keys SET hash = zeroblob(32),"
                              " prefix = 'orch_0123456789012345678901' WHERE prefix = 'orch_cd34'");
    assert_int_equal(store_keys_list(f->st, &rows, &n, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "bad prefix of key"));
}

/* --- web UI sessions --- */

static void make_session(struct session_row *s, const struct key_row *k, unsigned char seed,
                         int64_t created_at, int64_t expires_at)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < SESSION_HASH_LEN; i++) {
        s->token_hash[i] = (unsigned char)(seed + i * 5); /* binary, NULs included */
        s->csrf_hash[i] = (unsigned char)(seed * 3 + i);
    }
    s->token_hash[7] = 0;
    snprintf(s->key_id, sizeof(s->key_id), "%s", k->id);
    snprintf(s->key_prefix, sizeof(s->key_prefix), "%s", k->prefix);
    s->created_at = s->last_seen_at = created_at;
    s->expires_at = expires_at;
}

static void test_sessions(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct key_row k1, k2;
    struct session_row a, b, c, bad, got;
    unsigned char none[SESSION_HASH_LEN];
    int n = -1;

    make_key(&k1, "ui", "orch_se01", 100, KEY_SCOPE_READ);
    make_key(&k2, "ui2", "orch_se02", 100, KEY_SCOPE_WRITE);
    insert_key(f->st, &k1);
    insert_key(f->st, &k2);
    make_session(&a, &k1, 0x11, 1000, 5000);
    make_session(&b, &k1, 0x22, 1000, 9000);
    make_session(&c, &k2, 0x33, 1000, 9000);
    assert_int_equal(store_session_insert(f->st, &a, &err), 0);
    assert_int_equal(store_session_insert(f->st, &b, &err), 0);
    assert_int_equal(store_session_insert(f->st, &c, &err), 0);

    /* Read back, every column. */
    assert_int_equal(store_session_get(f->st, a.token_hash, &got, &err), 0);
    assert_memory_equal(got.token_hash, a.token_hash, SESSION_HASH_LEN);
    assert_memory_equal(got.csrf_hash, a.csrf_hash, SESSION_HASH_LEN);
    assert_string_equal(got.key_id, k1.id);
    assert_string_equal(got.key_prefix, "orch_se01");
    assert_int_equal(got.created_at, 1000);
    assert_int_equal(got.expires_at, 5000);
    assert_int_equal(got.last_seen_at, 1000);

    /* A token hash is taken once; an unknown one is not found. */
    assert_int_equal(store_session_insert(f->st, &a, &err), ERR_CONFLICT);
    memset(none, 0x44, sizeof(none));
    memset(&got, 'x', sizeof(got));
    assert_int_equal(store_session_get(f->st, none, &got, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no such session");
    assert_string_equal(got.key_id, "");

    /* Touch: set, never backwards. */
    assert_int_equal(store_session_touch(f->st, a.token_hash, 2000, &err), 0);
    assert_int_equal(store_session_touch(f->st, a.token_hash, 1500, &err), 0);
    assert_int_equal(store_session_get(f->st, a.token_hash, &got, &err), 0);
    assert_int_equal(got.last_seen_at, 2000);
    assert_int_equal(store_session_touch(f->st, none, 2000, &err), ERR_NOT_FOUND);

    /* Sign-out. */
    assert_int_equal(store_session_delete(f->st, b.token_hash, &err), 0);
    assert_int_equal(store_session_get(f->st, b.token_hash, &got, &err), ERR_NOT_FOUND);
    assert_int_equal(store_session_delete(f->st, b.token_hash, &err), ERR_NOT_FOUND);

    /* Purge: the ended ones, and those of a revoked key. */
    assert_int_equal(store_sessions_purge(f->st, 4999, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(store_session_get(f->st, a.token_hash, &got, &err), 0);
    assert_int_equal(store_key_revoke(f->st, k2.id, 3000, &err), 0);
    make_session(&b, &k1, 0x55, 1000, 9000);
    assert_int_equal(store_session_insert(f->st, &b, &err), 0);
    assert_int_equal(store_sessions_purge(f->st, 5000, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(store_session_get(f->st, a.token_hash, &got, &err), ERR_NOT_FOUND);
    assert_int_equal(store_session_get(f->st, c.token_hash, &got, &err), ERR_NOT_FOUND);
    assert_int_equal(store_session_get(f->st, b.token_hash, &got, &err), 0);

    /* Bad rows. */
    make_session(&bad, &k1, 0x66, 1000, 1000);
    assert_int_equal(store_session_insert(f->st, &bad, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "ends before it starts"));
    make_session(&bad, &k1, 0x66, 1000, 2000);
    bad.key_id[0] = '\0';
    assert_int_equal(store_session_insert(f->st, &bad, &err), ERR_INVALID);
    make_session(&bad, &k1, 0x66, 1000, 2000);
    bad.key_prefix[0] = '\0';
    assert_int_equal(store_session_insert(f->st, &bad, &err), ERR_INVALID);
    memset(bad.key_prefix, 'p', sizeof(bad.key_prefix)); /* no terminator */
    assert_int_equal(store_session_insert(f->st, &bad, &err), ERR_INVALID);

    /* A reader reads but cannot write. */
    {
        struct store *ro = NULL;
        assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
        assert_int_equal(store_session_get(ro, b.token_hash, &got, &err), 0);
        assert_string_equal(got.key_id, k1.id);
        make_session(&bad, &k1, 0x77, 1000, 2000);
        assert_int_equal(store_session_insert(ro, &bad, &err), ERR_STORE);
        assert_int_equal(store_session_touch(ro, b.token_hash, 3000, &err), ERR_STORE);
        assert_int_equal(store_session_delete(ro, b.token_hash, &err), ERR_STORE);
        assert_int_equal(store_sessions_purge(ro, 1, &n, &err), ERR_STORE);
        assert_int_equal(n, 0);
        store_free(ro);
    }

    /* Corrupt rows. */
    raw_sql(f->dbpath, g_pg ? "UPDATE sessions SET csrf_hash = '\\x00'::bytea"
                            : "UPDATE sessions SET csrf_hash = x'00'");
    memset(&got, 'x', sizeof(got));
    assert_int_equal(store_session_get(f->st, b.token_hash, &got, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "bad hash of a session"));
    assert_string_equal(got.key_id, "");
    raw_sql(f->dbpath, "UPDATE sessions SET csrf_hash = token_hash, key_prefix = ''");
    assert_int_equal(store_session_get(f->st, b.token_hash, &got, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "bad key prefix of a session"));
}

/* --- purge --- */

static void test_purge(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row e[9];
    char id[ID_MAX];
    char key[64];
    int deleted = -1;

    /* Inserted out of finished_at order: the purge goes by finished_at, not id. */
    make_tree(f->st, &e[4], "a", EXEC_SUCCEEDED, 500);
    make_tree(f->st, &e[1], "b", EXEC_FAILED, 200);
    make_tree(f->st, &e[3], "c", EXEC_TIMED_OUT, 400);
    make_tree(f->st, &e[0], "a", EXEC_SUCCEEDED, 100);
    make_tree(f->st, &e[2], "a", EXEC_CANCELLED, 300);
    /* Unfinished, even with a finished_at: never purged. */
    make_tree(f->st, &e[5], "a", EXEC_RUNNING, 150);
    make_tree(f->st, &e[6], "b", EXEC_QUEUED, 0);
    make_tree(f->st, &e[7], "a", EXEC_SUCCEEDED, 900); /* after `before` */
    make_tree(f->st, &e[8], "b", EXEC_SUCCEEDED, 350);
    assert_tables(f->dbpath, 9);

    /* Oldest finished first, `batch` at most. */
    assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, 600, 2, &deleted, &err), 0);
    assert_int_equal(deleted, 2);
    assert_false(exec_exists(f->st, e[0].id));
    assert_false(exec_exists(f->st, e[1].id));
    assert_true(exec_exists(f->st, e[2].id));
    assert_true(exec_exists(f->st, e[5].id));
    assert_tables(f->dbpath, 7);
    /* The idempotency key went with its execution. */
    snprintf(key, sizeof(key), "key-%s", e[0].id);
    assert_int_equal(store_idempotency_get(f->st, "a", key, id, &err), ERR_NOT_FOUND);
    snprintf(key, sizeof(key), "key-%s", e[5].id);
    assert_int_equal(store_idempotency_get(f->st, "a", key, id, &err), 0);

    /* One workflow only. */
    assert_int_equal(store_executions_purge(f->st, "c", NULL, 0, 600, 10, &deleted, &err), 0);
    assert_int_equal(deleted, 1);
    assert_false(exec_exists(f->st, e[3].id));
    assert_int_equal(store_executions_purge(f->st, "c", NULL, 0, 600, 10, &deleted, &err), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(store_executions_purge(f->st, "zzz", NULL, 0, 600, 10, &deleted, &err), 0);
    assert_int_equal(deleted, 0);

    /* Every workflow but "a": only e8 ("b", 350); e6 is queued. */
    {
        const char *const keep[] = {"a"};
        assert_int_equal(store_executions_purge(f->st, NULL, keep, 1, 600, 10, &deleted, &err), 0);
        assert_int_equal(deleted, 1);
        assert_false(exec_exists(f->st, e[8].id));
        assert_true(exec_exists(f->st, e[6].id));
        assert_true(exec_exists(f->st, e[2].id));
    }
    assert_tables(f->dbpath, 5);

    /* Inside the caller's transaction, and rolled back with it. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, 600, 10, &deleted, &err), 0);
    assert_int_equal(deleted, 2); /* e2, e4 */
    assert_tables(f->dbpath, 5);  /* not committed yet */
    store_rollback(f->st);
    assert_true(exec_exists(f->st, e[2].id));
    assert_tables(f->dbpath, 5);

    /* Everything finished, whatever the bound: the unfinished stay, with their rows. */
    assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, INT64_MAX, 100, &deleted, &err),
                     0);
    assert_int_equal(deleted, 3); /* e2, e4, e7 */
    assert_tables(f->dbpath, 2);
    assert_true(exec_exists(f->st, e[5].id));
    assert_true(exec_exists(f->st, e[6].id));
    assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, INT64_MAX, 100, &deleted, &err),
                     0);
    assert_int_equal(deleted, 0);
}

static void test_purge_batches(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row row;
    int deleted = 0;
    int total = 0;

    /* 25 executions finished at 1..25 in a shuffled order. */
    assert_int_equal(store_begin(f->st, &err), 0);
    for (int i = 0; i < 25; i++) {
        make_exec(&row, i % 3 ? "x" : "y", EXEC_SUCCEEDED, 1);
        row.finished_at = (i * 7) % 25 + 1;
        insert_exec(f->st, &row);
    }
    assert_int_equal(store_commit(f->st, &err), 0);
    for (int round = 0; round < 4; round++) {
        assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, 100, 10, &deleted, &err), 0);
        assert_int_equal(deleted, round < 2 ? 10 : round == 2 ? 5 : 0);
        total += deleted;
        /* Exactly the `total` oldest are gone. */
        assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM executions"), 25 - total);
        if (total < 25)
            assert_int_equal(raw_int(f->dbpath, "SELECT min(finished_at) FROM executions"),
                             total + 1);
    }

    /* Bad arguments. */
    {
        const char *const keep[] = {"a", NULL};
        const char *const empty[] = {""};
        const char *many[STORE_PURGE_EXCEPT_MAX + 1];
        struct store *ro = NULL;

        for (int i = 0; i <= STORE_PURGE_EXCEPT_MAX; i++)
            many[i] = "w";
        deleted = -1;
        assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, 100, 0, &deleted, &err),
                         ERR_INVALID);
        assert_int_equal(deleted, 0);
        assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, 100, -5, &deleted, &err),
                         ERR_INVALID);
        assert_int_equal(store_executions_purge(f->st, "", NULL, 0, 100, 1, &deleted, &err),
                         ERR_INVALID);
        assert_int_equal(store_executions_purge(f->st, "x", keep, 1, 100, 1, &deleted, &err),
                         ERR_INVALID);
        assert_int_equal(store_executions_purge(f->st, NULL, NULL, 1, 100, 1, &deleted, &err),
                         ERR_INVALID);
        assert_int_equal(store_executions_purge(f->st, NULL, keep, 2, 100, 1, &deleted, &err),
                         ERR_INVALID);
        assert_int_equal(store_executions_purge(f->st, NULL, empty, 1, 100, 1, &deleted, &err),
                         ERR_INVALID);
        assert_int_equal(store_executions_purge(f->st, NULL, many, STORE_PURGE_EXCEPT_MAX + 1, 100,
                                                1, &deleted, &err),
                         ERR_INVALID);
        assert_non_null(strstr(err.msg, "at most 64"));
        assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
        assert_int_equal(store_executions_purge(ro, NULL, NULL, 0, 100, 1, &deleted, &err),
                         ERR_STORE);
        store_free(ro);
    }
}

/*
 * The except list at every length from 1 to 64 (7 statement variants, the
 * shorter lists padded): the names are bound values, quotes and all.
 */
static void test_purge_except_lists(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row row;
    char names[10][8];
    const char *keep[STORE_PURGE_EXCEPT_MAX];
    int deleted = 0;

    assert_int_equal(store_begin(f->st, &err), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof(names[i]), "w%d", i);
        make_exec(&row, names[i], EXEC_FAILED, 1);
        row.finished_at = 10 + i;
        insert_exec(f->st, &row);
    }
    assert_int_equal(store_commit(f->st, &err), 0);
    for (int i = 0; i < STORE_PURGE_EXCEPT_MAX; i++)
        keep[i] = i < 10 ? names[i] : "w'); DELETE FROM executions; --";
    for (size_t n = 1; n <= STORE_PURGE_EXCEPT_MAX; n++) {
        int64_t want = n < 10 ? 10 - (int64_t)n : 0;
        assert_int_equal(store_begin(f->st, &err), 0);
        assert_int_equal(store_executions_purge(f->st, NULL, keep, n, 100, 50, &deleted, &err), 0);
        if (deleted != want)
            fail_msg("keeping %zu names: %d deleted, want %lld", n, deleted, (long long)want);
        store_rollback(f->st);
    }
    /* The last name of a short list pads it: it must still count. */
    keep[0] = "w9";
    keep[1] = "w8";
    keep[2] = "w7";
    assert_int_equal(store_executions_purge(f->st, NULL, keep, 3, 100, 50, &deleted, &err), 0);
    assert_int_equal(deleted, 7);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM executions"), 3);
}

/* --- counts --- */

static void add_task(struct store *st, const char *exec_id, int idx, enum task_status status,
                     int64_t available_at)
{
    struct err err = ERR_INIT;
    struct task_run_row t = {idx, (char *)"t", status, 0, available_at, 0, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    if (store_task_run_insert(st, exec_id, &t, &err) != 0)
        fail_msg("task: %s", err.msg);
}

static void test_counts(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store_counts c;
    struct store *ro = NULL;
    struct exec_row e1;
    struct exec_row e2;
    struct exec_row e3;
    struct exec_row e4;

    memset(&c, 0xff, sizeof(c));
    assert_int_equal(store_counts_get(f->st, &c, &err), 0);
    assert_int_equal(c.tasks_queued, 0);
    assert_int_equal(c.oldest_queued_since, 0);
    assert_int_equal(c.executions_running, 0);
    assert_int_equal(c.oldest_running_started, 0);

    make_exec(&e1, "a", EXEC_RUNNING, 900);
    e1.started_at = 1000;
    make_exec(&e2, "a", EXEC_RUNNING, 700);
    e2.started_at = 800;
    make_exec(&e3, "a", EXEC_QUEUED, 300); /* not started: since its creation */
    make_exec(&e4, "a", EXEC_SUCCEEDED, 100);
    e4.started_at = 150;
    e4.finished_at = 200;
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &e1);
    insert_exec(f->st, &e2);
    insert_exec(f->st, &e3);
    insert_exec(f->st, &e4);
    add_task(f->st, e1.id, 0, TASK_QUEUED, 0);    /* since 1000, the execution's start */
    add_task(f->st, e1.id, 1, TASK_QUEUED, 5000); /* a retry waiting */
    add_task(f->st, e1.id, 2, TASK_RUNNING, 0);
    add_task(f->st, e1.id, 3, TASK_SUCCEEDED, 0);
    add_task(f->st, e2.id, 0, TASK_QUEUED, 1200);
    add_task(f->st, e2.id, 1, TASK_PENDING, 0);
    add_task(f->st, e4.id, 0, TASK_SUCCEEDED, 0);
    /* Inside the transaction: its own writes count. */
    assert_int_equal(store_counts_get(f->st, &c, &err), 0);
    assert_int_equal(c.tasks_queued, 3);
    assert_int_equal(c.oldest_queued_since, 1000);
    assert_int_equal(c.executions_running, 2);
    assert_int_equal(c.oldest_running_started, 800);
    add_task(f->st, e3.id, 0, TASK_QUEUED, 0);
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
    assert_int_equal(store_counts_get(ro, &c, &err), 0);
    assert_int_equal(c.tasks_queued, 4);
    assert_int_equal(c.oldest_queued_since, 300);
    assert_int_equal(c.executions_running, 2);
    assert_int_equal(c.oldest_running_started, 800);
    store_free(ro);

    /* A task leaving the queue leaves the count (and the partial index). */
    {
        struct task_run_row t = {0, (char *)"t", TASK_RUNNING, 1, 0, 1300, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
        assert_int_equal(store_task_run_update(f->st, e3.id, &t, 0, &err), 0);
        assert_int_equal(store_task_run_update(f->st, e1.id, &t, 0, &err), 0);
    }
    assert_int_equal(store_counts_get(f->st, &c, &err), 0);
    assert_int_equal(c.tasks_queued, 2);
    assert_int_equal(c.oldest_queued_since, 1200);

    /* A failing query: reported, *out zeroed. */
    raw_sql(f->dbpath, "ALTER TABLE task_runs RENAME TO task_runs_gone");
    memset(&c, 0xff, sizeof(c));
    assert_int_equal(store_counts_get(f->st, &c, &err), ERR_STORE);
    assert_int_equal(c.tasks_queued, 0);
    assert_int_equal(c.oldest_running_started, 0);
}

/* --- query plans of the purge and the counts --- */

static char *plan_of(struct store *st, int which, int by_workflow, size_t nexcept)
{
    struct err err = ERR_INIT;
    char *plan = NULL;
    int rc = which ? store__sqlite_explain_counts(st, &plan, &err)
                   : store__sqlite_explain_purge(st, by_workflow, nexcept, &plan, &err);
    if (rc != 0)
        fail_msg("explain: %s", err.msg);
    /* No sort of every match. */
    if (strstr(plan, "TEMP B-TREE"))
        print_message("plan sorts:\n%s", plan);
    assert_null(strstr(plan, "TEMP B-TREE"));
    return plan;
}

static void test_purge_counts_query_plans(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    static const size_t nexcepts[] = {0, 1, 3, 64};
    char *plan;

    SKIP_ON_PG("SQLite EXPLAIN QUERY PLAN");

    for (size_t i = 0; i < sizeof(nexcepts) / sizeof(nexcepts[0]); i++) {
        plan = plan_of(f->st, 0, 0, nexcepts[i]);
        print_message("purge plan (%zu kept):\n%s", nexcepts[i], plan);
        assert_non_null(strstr(plan, "SEARCH executions USING INDEX executions_finished_at"
                                     " (finished_at<?)"));
        assert_non_null(strstr(plan, "sqlite_autoindex_executions_1 (id=?)"));
        assert_null(strstr(plan, "SCAN"));
        free(plan);
    }
    plan = plan_of(f->st, 0, 1, 0);
    print_message("purge plan (one workflow):\n%s", plan);
    assert_non_null(strstr(plan, "USING INDEX executions_workflow_finished_at"
                                 " (workflow=? AND finished_at<?)"));
    assert_null(strstr(plan, "SCAN"));
    free(plan);

    plan = plan_of(f->st, 1, 0, 0);
    print_message("counts plan:\n%s", plan);
    /* The one scan is of the partial index: queued task runs only. */
    assert_non_null(strstr(plan, "SCAN t USING COVERING INDEX task_runs_queued"));
    assert_non_null(strstr(plan, "SEARCH e USING INDEX sqlite_autoindex_executions_1 (id=?)"));
    assert_non_null(strstr(plan, "SEARCH executions USING INDEX executions_status_id (status=?)"));
    assert_null(strstr(plan, "SCAN e\n"));
    assert_null(strstr(plan, "SCAN executions"));
    free(plan);

    assert_int_equal(store__sqlite_explain_purge(f->st, 0, 65, &plan, &err), ERR_INVALID);
    assert_null(plan);
}

/* --- schedules --- */

/* The EXPLAIN QUERY PLAN details of `sql`, run behind the store's back, one per line. */
static char *raw_plan(const char *dbpath, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    char *eqp = xasprintf("EXPLAIN QUERY PLAN %s", sql);
    char *plan = xstrdup("");

    assert_int_equal(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(db, eqp, -1, &stmt, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    while (sqlite3_step(stmt) == SQLITE_ROW) {
        char *next = xasprintf("%s%s\n", plan, (const char *)sqlite3_column_text(stmt, 3));
        free(plan);
        plan = next;
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    free(eqp);
    return plan;
}

static void test_execution_schedule_fields(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_list list = {NULL, 0};
    struct exec_filter filter = {0};
    struct exec_row fired;
    struct exec_row manual;
    char sql[160];
    char *plan;

    make_exec(&fired, "nightly", EXEC_QUEUED, 10);
    fired.schedule_id = (char *)"sch_0123456789abcdef";
    fired.scheduled_for = 1700000000000;
    make_exec(&manual, "nightly", EXEC_QUEUED, 11);
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &fired);
    insert_exec(f->st, &manual);
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_execution_get(f->st, fired.id, &d, &err), 0);
    assert_string_equal(d->exec.schedule_id, "sch_0123456789abcdef");
    assert_int_equal(d->exec.scheduled_for, 1700000000000);
    exec_detail_free(d);
    assert_int_equal(store_execution_get(f->st, manual.id, &d, &err), 0);
    assert_null(d->exec.schedule_id);
    assert_int_equal(d->exec.scheduled_for, 0);
    exec_detail_free(d);
    /* Unset is stored as NULL, not as "" or 0. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM executions WHERE schedule_id IS NULL AND scheduled_for IS NULL"
             " AND id = '%s'",
             manual.id);
    assert_int_equal(raw_int(f->dbpath, sql), 1);

    /* Lists carry them too (newest first: manual, then fired). */
    filter.limit = 10;
    assert_int_equal(store_executions_list(f->st, &filter, &list, &err), 0);
    assert_int_equal(list.n, 2);
    assert_string_equal(list.items[0].id, manual.id);
    assert_null(list.items[0].schedule_id);
    assert_int_equal(list.items[0].scheduled_for, 0);
    assert_string_equal(list.items[1].schedule_id, "sch_0123456789abcdef");
    assert_int_equal(list.items[1].scheduled_for, 1700000000000);
    exec_list_release(&list);
    /* By status, through the per-status queries. */
    filter.status_mask = (1u << EXEC_QUEUED) | (1u << EXEC_RUNNING);
    assert_int_equal(store_executions_list(f->st, &filter, &list, &err), 0);
    assert_int_equal(list.n, 2);
    assert_string_equal(list.items[1].schedule_id, "sch_0123456789abcdef");
    exec_list_release(&list);

    /* An update writes them as given. */
    fired.status = EXEC_SUCCEEDED;
    fired.finished_at = 20;
    fired.scheduled_for = 1700000060000;
    assert_int_equal(store_execution_update(f->st, &fired, &err), 0);
    assert_int_equal(store_execution_get(f->st, fired.id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    assert_string_equal(d->exec.schedule_id, "sch_0123456789abcdef");
    assert_int_equal(d->exec.scheduled_for, 1700000060000);
    exec_detail_free(d);
    fired.schedule_id = NULL;
    fired.scheduled_for = 0;
    assert_int_equal(store_execution_update(f->st, &fired, &err), 0);
    assert_int_equal(store_execution_get(f->st, fired.id, &d, &err), 0);
    assert_null(d->exec.schedule_id);
    assert_int_equal(d->exec.scheduled_for, 0);
    exec_detail_free(d);

    /* exec_row_release frees schedule_id (ASan checks) and clears it. */
    assert_int_equal(store_execution_get(f->st, manual.id, &d, &err), 0);
    d->exec.schedule_id = xstrdup("sch_x");
    exec_row_release(&d->exec);
    assert_null(d->exec.schedule_id);
    exec_detail_free(d);

    /* "Is an execution of this schedule still queued or running": an index lookup (SQLite). */
    if (g_pg)
        return;
    plan = raw_plan(f->dbpath, "SELECT count(*) FROM executions"
                               " WHERE schedule_id = 'sch_1' AND status IN ('queued', 'running')");
    assert_non_null(strstr(plan, "executions_schedule_id_status (schedule_id=? AND status=?)"));
    free(plan);
}

static void make_sched(struct schedule_row *r, const char *id, const char *workflow,
                       const char *name, int64_t now)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->workflow = (char *)workflow;
    r->name = (char *)name;
    r->spec_hash = (char *)"hash-1";
    r->next_fire_at = now + 60000;
    r->created_at = now;
    r->updated_at = now;
}

static void upsert_sched(struct store *st, const struct schedule_row *r)
{
    struct err err = ERR_INIT;
    if (store_schedule_upsert(st, r, &err) != 0)
        fail_msg("upsert schedule %s: %s", r->id, err.msg);
}

static void insert_fire(struct store *st, const char *schedule_id, int64_t scheduled_for)
{
    struct err err = ERR_INIT;
    struct fire_row fr = {(char *)schedule_id, scheduled_for, FIRE_SKIPPED, "", NULL, 1};
    if (store_fire_insert(st, &fr, &err) != 0)
        fail_msg("insert fire %s %lld: %s", schedule_id, (long long)scheduled_for, err.msg);
}

/* API-created schedules keep their spec; pruning a definition leaves them alone. */
static void test_schedules_from_api(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct schedule_row def = {"sch_def1", (char *)"wf", (char *)"nightly", (char *)"h", 0, 0, 0,
                               1, 1, 0, NULL};
    struct schedule_row api = {"sch_api1", (char *)"wf", (char *)"api-1", (char *)"", 0, 0, 0,
                               2, 2, 1, (char *)"{\"every\":\"5s\"}"};
    struct schedule_row got;

    assert_int_equal(store_schedule_upsert(f->st, &def, &err), 0);
    assert_int_equal(store_schedule_upsert(f->st, &api, &err), 0);
    assert_int_equal(store_schedule_get(f->st, "sch_api1", &got, &err), 0);
    assert_int_equal(got.from_api, 1);
    assert_string_equal(got.spec, "{\"every\":\"5s\"}");
    schedule_row_release(&got);
    assert_int_equal(store_schedule_get(f->st, "sch_def1", &got, &err), 0);
    assert_int_equal(got.from_api, 0);
    assert_null(got.spec);
    schedule_row_release(&got);
    /* The definition lost its schedules: only its own rows go. */
    assert_int_equal(store_schedules_prune(f->st, "wf", NULL, 0, &err), 0);
    assert_int_equal(store_schedule_get(f->st, "sch_def1", &got, &err), ERR_NOT_FOUND);
    assert_int_equal(store_schedule_get(f->st, "sch_api1", &got, &err), 0);
    schedule_row_release(&got);
    assert_int_equal(store_schedule_delete(f->st, "sch_api1", &err), 0);
    assert_int_equal(store_schedule_delete(f->st, "sch_api1", &err), ERR_NOT_FOUND);
    assert_int_equal(store_schedule_get(f->st, "sch_api1", &got, &err), ERR_NOT_FOUND);
}

static void test_schedules(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *ro = NULL;
    struct schedule_row a;
    struct schedule_row b;
    struct schedule_row c;
    struct schedule_row got;
    struct schedule_row *rows = (struct schedule_row *)f;
    size_t n = 99;

    /* Empty. */
    assert_int_equal(store_schedules_list(f->st, &rows, &n, &err), 0);
    assert_null(rows);
    assert_int_equal(n, 0);

    /* Inserted out of order; listed by (workflow, name). */
    make_sched(&a, "sch_a", "etl", "nightly", 1000);
    make_sched(&b, "sch_b", "etl", "hourly", 1001);
    make_sched(&c, "sch_c", "backup", "weekly", 1002);
    c.paused = 1;
    c.next_fire_at = 0;
    c.last_fire_at = 900;
    assert_int_equal(store_begin(f->st, &err), 0);
    upsert_sched(f->st, &a);
    upsert_sched(f->st, &b);
    upsert_sched(f->st, &c);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_schedules_list(f->st, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, "sch_c");
    assert_string_equal(rows[0].workflow, "backup");
    assert_string_equal(rows[1].name, "hourly");
    assert_string_equal(rows[2].name, "nightly");
    assert_int_equal(rows[0].paused, 1);
    assert_int_equal(rows[0].next_fire_at, 0);
    assert_int_equal(rows[0].last_fire_at, 900);
    assert_int_equal(rows[2].paused, 0);
    assert_int_equal(rows[2].next_fire_at, 61000);
    assert_int_equal(rows[2].last_fire_at, 0);
    schedule_rows_free(rows, n);
    /* 0 is stored as NULL. */
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules WHERE id = 'sch_c'"
                                        " AND next_fire_at IS NULL"),
                     1);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules WHERE id = 'sch_a'"
                                        " AND last_fire_at IS NULL"),
                     1);

    /* Get. */
    assert_int_equal(store_schedule_get(f->st, "sch_a", &got, &err), 0);
    assert_string_equal(got.id, "sch_a");
    assert_string_equal(got.workflow, "etl");
    assert_string_equal(got.name, "nightly");
    assert_string_equal(got.spec_hash, "hash-1");
    assert_int_equal(got.created_at, 1000);
    assert_int_equal(got.updated_at, 1000);
    schedule_row_release(&got);
    assert_null(got.workflow);
    assert_int_equal(store_schedule_get(f->st, "sch_none", &got, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no schedule 'sch_none'");
    assert_null(got.workflow);

    /* Upsert of an existing (workflow, name): the state changes, id and created_at stay. */
    make_sched(&a, "sch_other", "etl", "nightly", 5000);
    a.spec_hash = (char *)"hash-2";
    a.paused = 1;
    a.next_fire_at = 0;
    a.last_fire_at = 4000;
    upsert_sched(f->st, &a);
    assert_int_equal(store_schedule_get(f->st, "sch_a", &got, &err), 0);
    assert_string_equal(got.spec_hash, "hash-2");
    assert_int_equal(got.paused, 1);
    assert_int_equal(got.next_fire_at, 0);
    assert_int_equal(got.last_fire_at, 4000);
    assert_int_equal(got.created_at, 1000);
    assert_int_equal(got.updated_at, 5000);
    schedule_row_release(&got);
    assert_int_equal(store_schedule_get(f->st, "sch_other", &got, &err), ERR_NOT_FOUND);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules"), 3);
    /* A taken id with another (workflow, name) is a conflict. */
    make_sched(&a, "sch_b", "etl", "daily", 5000);
    assert_int_equal(store_schedule_upsert(f->st, &a, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "cannot record schedule 'daily' of 'etl' as 'sch_b'"));
    assert_non_null(strstr(err.msg, DB_MSG("schedules.id", "schedules_pkey")));

    /* Pause and resume. */
    assert_int_equal(store_schedule_set_paused(f->st, "sch_b", 1, 6000, &err), 0);
    assert_int_equal(store_schedule_get(f->st, "sch_b", &got, &err), 0);
    assert_int_equal(got.paused, 1);
    assert_int_equal(got.updated_at, 6000);
    assert_int_equal(got.next_fire_at, 61001); /* untouched */
    schedule_row_release(&got);
    /* The same value again is not "no such schedule". */
    assert_int_equal(store_schedule_set_paused(f->st, "sch_b", 1, 6500, &err), 0);
    assert_int_equal(store_schedule_set_paused(f->st, "sch_b", 0, 7000, &err), 0);
    assert_int_equal(store_schedule_get(f->st, "sch_b", &got, &err), 0);
    assert_int_equal(got.paused, 0);
    assert_int_equal(got.updated_at, 7000);
    schedule_row_release(&got);
    assert_int_equal(store_schedule_set_paused(f->st, "sch_none", 1, 1, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "no schedule 'sch_none'");

    /* Rolled back with the caller's transaction. */
    assert_int_equal(store_begin(f->st, &err), 0);
    make_sched(&a, "sch_d", "etl", "daily", 8000);
    upsert_sched(f->st, &a);
    assert_int_equal(store_schedule_set_paused(f->st, "sch_b", 1, 8000, &err), 0);
    store_rollback(f->st);
    assert_int_equal(store_schedule_get(f->st, "sch_d", &got, &err), ERR_NOT_FOUND);
    assert_int_equal(store_schedule_get(f->st, "sch_b", &got, &err), 0);
    assert_int_equal(got.paused, 0);
    schedule_row_release(&got);

    /* Bad arguments. */
    make_sched(&a, "sch_e", "etl", "e", 1);
    a.paused = 2;
    assert_int_equal(store_schedule_upsert(f->st, &a, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "invalid paused value 2"));
    a.paused = 0;
    a.spec_hash = NULL;
    assert_int_equal(store_schedule_upsert(f->st, &a, &err), ERR_INVALID);
    a.spec_hash = (char *)"h";
    a.name = NULL;
    assert_int_equal(store_schedule_upsert(f->st, &a, &err), ERR_INVALID);
    a.name = (char *)"e";
    a.workflow = (char *)"";
    assert_int_equal(store_schedule_upsert(f->st, &a, &err), ERR_INVALID);
    a.workflow = (char *)"etl";
    a.id[0] = '\0';
    assert_int_equal(store_schedule_upsert(f->st, &a, &err), ERR_INVALID);
    memset(a.id, 's', sizeof(a.id)); /* no terminator */
    assert_int_equal(store_schedule_upsert(f->st, &a, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "is too long"));
    assert_int_equal(store_schedule_get(f->st, "", &got, &err), ERR_INVALID);
    assert_int_equal(store_schedule_get(f->st, NULL, &got, &err), ERR_INVALID);
    assert_int_equal(store_schedule_set_paused(f->st, "sch_b", -1, 1, &err), ERR_INVALID);
    assert_int_equal(store_schedule_set_paused(f->st, "", 1, 1, &err), ERR_INVALID);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules"), 3);

    /* A reader reads but cannot write. */
    assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
    assert_int_equal(store_schedules_list(ro, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    schedule_rows_free(rows, n);
    assert_int_equal(store_schedule_set_paused(ro, "sch_b", 1, 1, &err), ERR_STORE);
    store_free(ro);

    /* A corrupt row. */
    raw_sql(f->dbpath, "UPDATE schedules SET id = 'sch_0123456789012345678901234567890123456789'"
                       " WHERE id = 'sch_c'");
    assert_int_equal(store_schedules_list(f->st, &rows, &n, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "bad schedule id"));
    assert_null(rows);
    assert_int_equal(n, 0);
    schedule_rows_free(NULL, 0);
    schedule_row_release(NULL);
}

static void test_schedules_prune(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct schedule_row r;
    struct schedule_row *rows = NULL;
    const char **many;
    size_t n = 0;

    make_sched(&r, "sch_a1", "a", "one", 1);
    upsert_sched(f->st, &r);
    make_sched(&r, "sch_a2", "a", "two", 1);
    upsert_sched(f->st, &r);
    make_sched(&r, "sch_a3", "a", "three", 1);
    upsert_sched(f->st, &r);
    make_sched(&r, "sch_b1", "b", "one", 1);
    upsert_sched(f->st, &r);
    for (int i = 1; i <= 3; i++) {
        insert_fire(f->st, "sch_a1", i * 1000);
        insert_fire(f->st, "sch_a2", i * 1000);
        insert_fire(f->st, "sch_b1", i * 1000);
    }

    /* Keep "one" and "three" of "a" (and a name with no row): "two" goes, with its fires. */
    {
        const char *const keep[] = {"three", "gone-already", "one"};
        assert_int_equal(store_schedules_prune(f->st, "a", keep, 3, &err), 0);
    }
    assert_int_equal(store_schedules_list(f->st, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].id, "sch_a1");
    assert_string_equal(rows[1].id, "sch_a3");
    assert_string_equal(rows[2].id, "sch_b1");
    schedule_rows_free(rows, n);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedule_fires"
                                        " WHERE schedule_id = 'sch_a2'"),
                     0);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedule_fires"), 6);
    /* Again: nothing to do. */
    {
        const char *const keep[] = {"one", "three"};
        assert_int_equal(store_schedules_prune(f->st, "a", keep, 2, &err), 0);
    }
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules"), 3);
    /* A workflow with no schedules. */
    assert_int_equal(store_schedules_prune(f->st, "zzz", NULL, 0, &err), 0);

    /* Inside the caller's transaction, and rolled back with it. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_schedules_prune(f->st, "a", NULL, 0, &err), 0);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules"), 3); /* not committed */
    store_rollback(f->st);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules"), 3);

    /* No names: every schedule of the workflow, and its fires; "b" stays. */
    assert_int_equal(store_schedules_prune(f->st, "a", NULL, 0, &err), 0);
    assert_int_equal(store_schedules_list(f->st, &rows, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].id, "sch_b1");
    schedule_rows_free(rows, n);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedule_fires"), 3);

    /* The most names there may be, all bound (one of them quoted to prove it). */
    many = xcalloc(STORE_SCHEDULES_PRUNE_MAX + 1, sizeof(*many));
    for (int i = 0; i < STORE_SCHEDULES_PRUNE_MAX; i++)
        many[i] = "x";
    many[STORE_SCHEDULES_PRUNE_MAX - 1] = "one";
    many[0] = "it's";
    assert_int_equal(store_schedules_prune(f->st, "b", many, STORE_SCHEDULES_PRUNE_MAX, &err), 0);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules"), 1);
    many[STORE_SCHEDULES_PRUNE_MAX] = "y";
    assert_int_equal(store_schedules_prune(f->st, "b", many, STORE_SCHEDULES_PRUNE_MAX + 1, &err),
                     ERR_INVALID);
    assert_non_null(strstr(err.msg, "too many schedule names"));
    many[1] = "";
    assert_int_equal(store_schedules_prune(f->st, "b", many, 2, &err), ERR_INVALID);
    many[1] = NULL;
    assert_int_equal(store_schedules_prune(f->st, "b", many, 2, &err), ERR_INVALID);
    free(many);
    assert_int_equal(store_schedules_prune(f->st, "b", NULL, 1, &err), ERR_INVALID);
    assert_int_equal(store_schedules_prune(f->st, "", NULL, 0, &err), ERR_INVALID);
    assert_int_equal(store_schedules_prune(f->st, NULL, NULL, 0, &err), ERR_INVALID);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedules"), 1);
}

/* Due times queued by a backfill or a catch-up: a queued row fires once, a
 * skipped one is queued again once, a fired one is never queued. */
static void test_fires_queued(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct fire_row fr = {(char *)"sch_q", 3000, FIRE_QUEUED, "", (char *)"backfill", 10};
    struct fire_row got;
    int64_t *v = NULL;
    size_t n = 0;

    assert_int_equal(store_fire_get(f->st, "sch_q", 3000, &got, &err), ERR_NOT_FOUND);
    /* Queued out of order; listed oldest first. */
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    fr.scheduled_for = 1000;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    fr.scheduled_for = 2000;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    /* Queued again: nothing changes. */
    fr.created_at = 11;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    assert_int_equal(store_fires_queued(f->st, "sch_q", 100, &v, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0], 1000);
    assert_int_equal(v[1], 2000);
    assert_int_equal(v[2], 3000);
    free(v);
    assert_int_equal(store_fire_get(f->st, "sch_q", 2000, &got, &err), 0);
    assert_int_equal(got.status, FIRE_QUEUED);
    assert_string_equal(got.reason, "backfill");
    assert_int_equal(got.created_at, 10);
    fire_row_release(&got);

    /* The fire of a queued due time turns the row fired, once. */
    fr.scheduled_for = 1000;
    fr.status = FIRE_FIRED;
    memcpy(fr.execution_id, "exe_0123456789abcdef", 21);
    fr.created_at = 20;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_CONFLICT);
    assert_int_equal(store_fire_get(f->st, "sch_q", 1000, &got, &err), 0);
    assert_int_equal(got.status, FIRE_FIRED);
    assert_string_equal(got.execution_id, "exe_0123456789abcdef");
    assert_int_equal(got.created_at, 20);
    fire_row_release(&got);
    /* A fired due time is not queued again. */
    fr.status = FIRE_QUEUED;
    fr.execution_id[0] = '\0';
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    assert_int_equal(store_fire_get(f->st, "sch_q", 1000, &got, &err), 0);
    assert_int_equal(got.status, FIRE_FIRED);
    fire_row_release(&got);
    /* A queued due time that could not fire is recorded as skipped. */
    fr.scheduled_for = 2000;
    fr.status = FIRE_SKIPPED;
    fr.reason = (char *)"no such workflow";
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    /* A skipped due time is queued again (inside a transaction too), then fires. */
    fr.status = FIRE_QUEUED;
    fr.reason = (char *)"backfill";
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_fires_queued(f->st, "sch_q", 100, &v, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0], 2000);
    assert_int_equal(v[1], 3000);
    free(v);
    assert_int_equal(store_fires_queued(f->st, "sch_q", 1, &v, &n, &err), 0);
    assert_int_equal(n, 1);
    free(v);
    assert_int_equal(store_fires_queued(f->st, "sch_none", 10, &v, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(v);
    /* A live skip of a due time fired before is still a conflict. */
    fr.scheduled_for = 1000;
    fr.status = FIRE_SKIPPED;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_CONFLICT);
    assert_int_equal(store_fires_queued(f->st, "", 10, &v, &n, &err), ERR_INVALID);
    /* The partial index serves the queue's read (SQLite's plan). */
    if (!g_pg) {
        char *plan = raw_plan(f->dbpath, "SELECT scheduled_for FROM schedule_fires WHERE"
                                         " schedule_id = 'x' AND status = 'queued'"
                                         " ORDER BY scheduled_for LIMIT 5");
        assert_non_null(strstr(plan, "schedule_fires_queued"));
        assert_null(strstr(plan, "TEMP B-TREE"));
        free(plan);
    }
}

static void test_fires(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *ro = NULL;
    struct exec_row ex;
    struct fire_row fr = {(char *)"sch_1", 1000, FIRE_FIRED, "", NULL, 1001};
    struct fire_row *rows = (struct fire_row *)f;
    size_t n = 99;
    int exists = -1;
    int deleted = 0;
    char *plan;

    /* None yet. */
    assert_int_equal(store_fire_exists(f->st, "sch_1", 1000, &exists, &err), 0);
    assert_int_equal(exists, 0);
    assert_int_equal(store_fires_list(f->st, "sch_1", 10, &rows, &n, &err), 0);
    assert_null(rows);
    assert_int_equal(n, 0);

    /* A fire and its execution in one transaction, as the engine records them. */
    make_exec(&ex, "etl", EXEC_SUCCEEDED, 1000);
    ex.finished_at = 1500;
    ex.schedule_id = (char *)"sch_1";
    ex.scheduled_for = 1000;
    memcpy(fr.execution_id, ex.id, ID_MAX);
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &ex);
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    /* The same due time again: a conflict, and the transaction goes on. */
    fr.created_at = 1002;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_CONFLICT);
    assert_string_equal(err.msg,
                        "cannot record the fire of schedule 'sch_1' due at 1000: it was recorded "
                        "before");
    fr.scheduled_for = 2000;
    fr.status = FIRE_SKIPPED;
    fr.execution_id[0] = '\0';
    fr.reason = (char *)"overlap: an execution is still running";
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    /* Outside a transaction too. */
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_CONFLICT);
    fr.scheduled_for = 3000;
    fr.reason = NULL;
    fr.created_at = 3001;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    /* Another schedule, the same due time. */
    fr.schedule_id = (char *)"sch_2";
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);

    assert_int_equal(store_fire_exists(f->st, "sch_1", 1000, &exists, &err), 0);
    assert_int_equal(exists, 1);
    assert_int_equal(store_fire_exists(f->st, "sch_1", 1001, &exists, &err), 0);
    assert_int_equal(exists, 0);
    assert_int_equal(store_fire_exists(f->st, "sch_3", 1000, &exists, &err), 0);
    assert_int_equal(exists, 0);

    /* Newest first; the first conflicting insert changed nothing. */
    assert_int_equal(store_fires_list(f->st, "sch_1", 10, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(rows[0].scheduled_for, 3000);
    assert_int_equal(rows[0].status, FIRE_SKIPPED);
    assert_string_equal(rows[0].execution_id, "");
    assert_null(rows[0].reason);
    assert_int_equal(rows[0].created_at, 3001);
    assert_int_equal(rows[1].scheduled_for, 2000);
    assert_string_equal(rows[1].reason, "overlap: an execution is still running");
    assert_string_equal(rows[2].schedule_id, "sch_1");
    assert_int_equal(rows[2].scheduled_for, 1000);
    assert_int_equal(rows[2].status, FIRE_FIRED);
    assert_string_equal(rows[2].execution_id, ex.id);
    assert_int_equal(rows[2].created_at, 1001);
    fire_rows_free(rows, n);
    assert_int_equal(store_fires_list(f->st, "sch_1", 2, &rows, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(rows[1].scheduled_for, 2000);
    fire_rows_free(rows, n);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM schedule_fires"
                                        " WHERE scheduled_for = 2000 AND execution_id IS NULL"
                                        " AND status = 'skipped'"),
                     1);

    /* Rolled back with the caller's transaction. */
    assert_int_equal(store_begin(f->st, &err), 0);
    fr.scheduled_for = 4000;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    store_rollback(f->st);
    assert_int_equal(store_fire_exists(f->st, "sch_2", 4000, &exists, &err), 0);
    assert_int_equal(exists, 0);

    /* Retention deletes the execution; the fire stays, so the due time never fires again. */
    assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, INT64_MAX, 10, &deleted, &err),
                     0);
    assert_int_equal(deleted, 1);
    assert_false(exec_exists(f->st, ex.id));
    assert_int_equal(store_fire_exists(f->st, "sch_1", 1000, &exists, &err), 0);
    assert_int_equal(exists, 1);
    fr.schedule_id = (char *)"sch_1";
    fr.scheduled_for = 1000;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_CONFLICT);

    /* The list walks the primary key, newest first, without a sort (SQLite's plan). */
    if (!g_pg) {
        plan = raw_plan(f->dbpath, "SELECT * FROM schedule_fires WHERE schedule_id = 'x'"
                                   " ORDER BY scheduled_for DESC LIMIT 5");
        assert_non_null(strstr(plan, "sqlite_autoindex_schedule_fires_1 (schedule_id=?)"));
        assert_null(strstr(plan, "TEMP B-TREE"));
        free(plan);
    }

    /* Bad arguments. */
    fr.scheduled_for = 5000;
    fr.status = (enum fire_status)7;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "invalid status 7 for a fire of schedule 'sch_1'"));
    fr.status = FIRE_SKIPPED;
    fr.scheduled_for = 0;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_INVALID);
    fr.scheduled_for = 5000;
    memset(fr.execution_id, 'e', sizeof(fr.execution_id)); /* no terminator */
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_INVALID);
    fr.execution_id[0] = '\0';
    fr.schedule_id = (char *)"";
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_INVALID);
    fr.schedule_id = NULL;
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_INVALID);
    exists = -1;
    assert_int_equal(store_fire_exists(f->st, "", 1, &exists, &err), ERR_INVALID);
    assert_int_equal(exists, 0);
    rows = (struct fire_row *)f;
    n = 99;
    assert_int_equal(store_fires_list(f->st, "sch_1", 0, &rows, &n, &err), ERR_INVALID);
    assert_null(rows);
    assert_int_equal(n, 0);
    assert_int_equal(store_fires_list(f->st, "sch_1", 1001, &rows, &n, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "invalid page size 1001"));
    assert_int_equal(store_fires_list(f->st, NULL, 10, &rows, &n, &err), ERR_INVALID);
    assert_int_equal(store_fires_list(f->st, "sch_1", 1000, &rows, &n, &err), 0);
    assert_int_equal(n, 3);
    fire_rows_free(rows, n);

    /* A reader reads but cannot record. */
    assert_int_equal(store_open(f->data, STORE_READONLY, &ro, &err), 0);
    assert_int_equal(store_fire_exists(ro, "sch_1", 2000, &exists, &err), 0);
    assert_int_equal(exists, 1);
    fr.schedule_id = (char *)"sch_1";
    assert_int_equal(store_fire_insert(ro, &fr, &err), ERR_STORE);
    store_free(ro);

    /* Corrupt rows. */
    raw_sql(f->dbpath, "UPDATE schedule_fires SET status = 'odd' WHERE scheduled_for = 2000");
    assert_int_equal(store_fires_list(f->st, "sch_1", 10, &rows, &n, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "unknown status 'odd'"));
    assert_null(rows);
    raw_sql(f->dbpath, "UPDATE schedule_fires SET status = 'fired', execution_id ="
                       " 'ex_0123456789012345678901234567890123456789' WHERE scheduled_for = 2000");
    assert_int_equal(store_fires_list(f->st, "sch_1", 10, &rows, &n, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "bad execution id"));
    fire_rows_free(NULL, 0);
}

/* --- migration from the previous schema version --- */

static void test_migrate_previous_version(void **state)
{
    static const char bootstrap[] = "CREATE TABLE schema_version ("
                                    " version INTEGER NOT NULL PRIMARY KEY,"
                                    " applied_at BIGINT NOT NULL)";
    static const char data[] =
        "INSERT INTO workflows (name, version, definition, created_at)"
        "  VALUES ('etl', 1, '{\"v\":1}', 100);"
        "INSERT INTO workflows (name, version, definition, created_at)"
        "  VALUES ('etl', 2, '{\"v\":2}', 200);"
        "INSERT INTO executions (id, workflow, workflow_version, status, params, created_at,"
        "  started_at, finished_at, error)"
        "  VALUES ('ex_old1', 'etl', 2, 'succeeded', '{}', 300, 310, 320, NULL);"
        "INSERT INTO executions (id, workflow, workflow_version, status, params, created_at,"
        "  started_at, finished_at, error)"
        "  VALUES ('ex_old2', 'etl', 2, 'running', '{}', 400, 410, NULL, NULL);"
        "INSERT INTO task_runs (execution_id, idx, name, status, attempt, available_at,"
        "  started_at, finished_at, error)"
        "  VALUES ('ex_old1', 0, 'extract', 'succeeded', 1, NULL, 310, 320, NULL);"
        "INSERT INTO task_runs (execution_id, idx, name, status, attempt, available_at,"
        "  started_at, finished_at, error)"
        "  VALUES ('ex_old2', 0, 'extract', 'queued', 0, 450, NULL, NULL, NULL);"
        "INSERT INTO attempts (execution_id, task_idx, number, status, node, pid, pgid,"
        "  proc_start, started_at, finished_at, exit_code, signal, error)"
        "  VALUES ('ex_old1', 0, 1, 'succeeded', 'h:1', 7, 7, 99, 310, 320, 0, NULL, NULL);"
        "INSERT INTO logs VALUES ('ex_old1', 0, 1, 0, 'stdout', 315, 'hello');"
        "INSERT INTO idempotency_keys VALUES ('etl', 'old-key', 'ex_old1', 300);";
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *st = NULL;
    struct exec_detail *d = NULL;
    struct log_list logs = {NULL, 0};
    struct store_counts c;
    char path[200];
    char loc[220];
    char *def = NULL;
    char id[ID_MAX];
    int version = 0;
    int deleted = 0;
    sqlite3 *db = NULL;

    SKIP_ON_PG("builds an old SQLite file by hand");

    /* A database as the previous orch left it: every step but the last. */
    snprintf(path, sizeof(path), "%s/old.db", f->dir);
    snprintf(loc, sizeof(loc), "sqlite:%s", path);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, bootstrap, NULL, NULL, NULL), SQLITE_OK);
    for (int v = 0; v < store__migration_count - 1; v++) {
        char sql[128];
        assert_int_equal(sqlite3_exec(db, store__migrations[v], NULL, NULL, NULL), SQLITE_OK);
        snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d, 1)", v + 1);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    if (sqlite3_exec(db, data, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("old data: %s", sqlite3_errmsg(db));
    sqlite3_close(db);

    /* A reader refuses it; a writer migrates it. */
    assert_int_equal(store_open(loc, STORE_READONLY, &st, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "older than this orch"));
    assert_int_equal(store_open(loc, 0, &st, &err), 0);
    assert_int_equal(store_schema_version(st, &version, &err), 0);
    assert_int_equal(version, store__migration_count);

    /* The old data reads as before. */
    assert_int_equal(store_workflow_get(st, "etl", 0, &def, &version, &err), 0);
    assert_int_equal(version, 2);
    assert_string_equal(def, "{\"v\":2}");
    free(def);
    assert_int_equal(store_execution_get(st, "ex_old1", &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    assert_int_equal(d->exec.finished_at, 320);
    assert_int_equal(d->ntasks, 1);
    assert_string_equal(d->tasks[0].name, "extract");
    assert_int_equal(d->nattempts, 1);
    assert_string_equal(d->attempts[0].node, "h:1");
    /* Executions from before schedules have none. */
    assert_null(d->exec.schedule_id);
    assert_int_equal(d->exec.scheduled_for, 0);
    exec_detail_free(d);
    assert_int_equal(store_logs_get(st, "ex_old1", -1, &logs, &err), 0);
    assert_int_equal(logs.n, 1);
    assert_string_equal(logs.items[0].data, "hello");
    log_list_release(&logs);

    assert_int_equal(store_idempotency_get(st, "etl", "old-key", id, &err), 0);
    assert_string_equal(id, "ex_old1");

    /* And the new operations work on it. */
    assert_int_equal(store_counts_get(st, &c, &err), 0);
    assert_int_equal(c.tasks_queued, 1);
    assert_int_equal(c.oldest_queued_since, 450);
    assert_int_equal(c.executions_running, 1);
    assert_int_equal(c.oldest_running_started, 410);
    assert_int_equal(store_idempotency_put(st, "etl", "k", "ex_old1", 500, &err), 0);
    assert_int_equal(store_workflow_delete(st, "etl", 600, &err), 0);
    assert_int_equal(store_workflow_put(st, "etl", "{\"v\":2}", 700, &version, &err), 0);
    assert_int_equal(version, 3);
    assert_int_equal(store_executions_purge(st, NULL, NULL, 0, 1000, 10, &deleted, &err), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(store_idempotency_get(st, "etl", "k", id, &err), ERR_NOT_FOUND);
    /* The schedule operations, and an old execution marked as fired by one. */
    {
        struct schedule_row sr = {
            "sch_m1", (char *)"etl", (char *)"hourly", (char *)"h1", 0, 5000, 0, 800, 800, 0, NULL};
        struct schedule_row got;
        struct fire_row fr = {(char *)"sch_m1", 4000, FIRE_FIRED, "ex_old2", NULL, 800};
        struct exec_row ex;
        int exists = 0;

        assert_int_equal(store_schedule_upsert(st, &sr, &err), 0);
        assert_int_equal(store_schedule_get(st, "sch_m1", &got, &err), 0);
        assert_string_equal(got.name, "hourly");
        assert_int_equal(got.next_fire_at, 5000);
        schedule_row_release(&got);
        assert_int_equal(store_fire_insert(st, &fr, &err), 0);
        assert_int_equal(store_fire_exists(st, "sch_m1", 4000, &exists, &err), 0);
        assert_int_equal(exists, 1);
        assert_int_equal(store_fire_insert(st, &fr, &err), ERR_CONFLICT);
        make_exec(&ex, "etl", EXEC_RUNNING, 400);
        memcpy(ex.id, "ex_old2", sizeof("ex_old2"));
        ex.workflow_version = 2;
        ex.started_at = 410;
        ex.schedule_id = (char *)"sch_m1";
        ex.scheduled_for = 4000;
        assert_int_equal(store_execution_update(st, &ex, &err), 0);
        assert_int_equal(store_execution_get(st, "ex_old2", &d, &err), 0);
        assert_string_equal(d->exec.schedule_id, "sch_m1");
        assert_int_equal(d->exec.scheduled_for, 4000);
        exec_detail_free(d);
    }
    store_free(st);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM logs"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM attempts"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM task_runs"), 1);
    /* Opening again changes nothing. */
    assert_int_equal(store_open(loc, 0, &st, &err), 0);
    assert_int_equal(store_workflow_get(st, "etl", 1, &def, &version, &err), 0);
    assert_string_equal(def, "{\"v\":1}");
    free(def);
    store_free(st);
}

/* --- conflicts inside a transaction (both backends) --- */

/*
 * The conflicts the callers expect (a taken idempotency key, a second fire,
 * a duplicate execution, key or schedule id) leave the transaction usable:
 * SQLite undoes the statement only; the PostgreSQL backend uses ON CONFLICT
 * DO NOTHING or a savepoint so the transaction is not aborted.
 */
static void test_conflicts_keep_transaction(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row a;
    struct exec_row b;
    struct key_row k;
    struct schedule_row sa;
    struct schedule_row sb;
    struct fire_row fr;
    char id[ID_MAX];
    int version = 0;

    make_exec(&a, "etl", EXEC_QUEUED, 1);
    make_exec(&b, "etl", EXEC_QUEUED, 2);
    make_key(&k, "ci", "orch_ab12", 100, KEY_SCOPE_READ);
    make_sched(&sa, "sch_a", "etl", "hourly", 10);
    make_sched(&sb, "sch_a", "etl", "daily", 10); /* the same id, another name */
    memset(&fr, 0, sizeof(fr));
    fr.schedule_id = (char *)"sch_a";
    fr.scheduled_for = 1000;
    fr.created_at = 1001;
    memcpy(fr.execution_id, a.id, ID_MAX);

    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &a);
    assert_int_equal(store_execution_insert(f->st, &a, &err), ERR_CONFLICT);
    assert_int_equal(store_idempotency_put(f->st, "etl", "req-1", a.id, 10, &err), 0);
    assert_int_equal(store_idempotency_put(f->st, "etl", "req-1", a.id, 11, &err), ERR_CONFLICT);
    assert_int_equal(store_key_insert(f->st, &k, &err), 0);
    assert_int_equal(store_key_insert(f->st, &k, &err), ERR_CONFLICT);
    assert_int_equal(store_schedule_upsert(f->st, &sa, &err), 0);
    assert_int_equal(store_schedule_upsert(f->st, &sb, &err), ERR_CONFLICT);
    assert_int_equal(store_fire_insert(f->st, &fr, &err), 0);
    assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_CONFLICT);
    /* The transaction goes on and commits everything that succeeded. */
    insert_exec(f->st, &b);
    assert_int_equal(store_workflow_put(f->st, "etl", "{}", 5, &version, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);

    assert_int_equal(store_execution_get(f->st, b.id, &d, &err), 0);
    exec_detail_free(d);
    assert_int_equal(store_idempotency_get(f->st, "etl", "req-1", id, &err), 0);
    assert_string_equal(id, a.id);
    assert_int_equal(store_schedule_get(f->st, "sch_a", &sa, &err), 0);
    assert_string_equal(sa.name, "hourly");
    schedule_row_release(&sa);
    assert_int_equal(store_key_get_by_prefix(f->st, "orch_ab12", &k, &err), 0);
    key_row_release(&k);
}

/*
 * Other failures inside a transaction: SQLite undoes the statement and the
 * transaction goes on; on PostgreSQL the transaction is aborted, so the
 * commit fails (ERR_STORE) and rolls everything back.
 */
static void test_failure_inside_transaction(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row a;
    struct log_chunk c = {0, 1, 0, LOG_STREAM_STDOUT, 5, (char *)"x", 1};

    make_exec(&a, "etl", EXEC_QUEUED, 1);
    assert_int_equal(store_begin(f->st, &err), 0);
    insert_exec(f->st, &a);
    /* No such attempt: a foreign key failure. */
    assert_int_equal(store_log_append(f->st, a.id, &c, &err), ERR_STORE);
    if (!g_pg) {
        assert_int_equal(store_commit(f->st, &err), 0);
        assert_int_equal(store_execution_get(f->st, a.id, &d, &err), 0);
        exec_detail_free(d);
        return;
    }
    assert_int_equal(store_commit(f->st, &err), ERR_STORE);
    assert_non_null(strstr(err.msg, "aborted by an earlier error"));
    assert_int_equal(store_execution_get(f->st, a.id, &d, &err), ERR_NOT_FOUND);
    /* The store is usable again. */
    insert_exec(f->st, &a);
}

/*
 * Several writers opening one fresh PostgreSQL database at once: the
 * advisory lock makes them migrate in turn, and every open succeeds.
 */

/* --- nodes and scale-out --- */

static void register_node(struct store *st, const char *id, int64_t lease_ms, int expect)
{
    struct node_row n;
    struct err err = ERR_INIT;
    memset(&n, 0, sizeof(n));
    n.id = (char *)id;
    n.host = (char *)"h1";
    n.pid = 42;
    n.role = (char *)"server";
    n.version = (char *)"0.0.0";
    n.slots = 4;
    assert_int_equal(store_node_register(st, &n, lease_ms, &err), expect);
}

static const struct node_row *find_node(const struct node_row *rows, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].id, id))
            return &rows[i];
    return NULL;
}

/* SQLite stamps node rows with orch's clock (base/clock.h), a manual one too. */
static void test_nodes_use_the_clock(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct node_row *rows = NULL;
    const struct node_row *r;
    size_t n = 0;
    const int64_t t = 1800000000000LL;

    SKIP_ON_PG("PostgreSQL stamps node rows with the database's clock, shared by all nodes");
    clock_use_manual(t, 1000);
    register_node(f->st, "a", 30000, 0);
    clock_advance(1500);
    assert_int_equal(store_node_heartbeat(f->st, "a", 30000, NULL, &err), 0);
    clock_advance(500);
    assert_int_equal(store_nodes_list(f->st, &rows, &n, &err), 0);
    clock_use_real();
    r = find_node(rows, n, "a");
    assert_non_null(r);
    assert_int_equal(r->started_at, t);
    assert_int_equal(r->heartbeat_at, t + 1500);
    assert_int_equal(r->db_now, t + 2000);
    node_rows_free(rows, n);
}

static void test_nodes(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct node_row *rows = NULL;
    const struct node_row *r;
    size_t n = 0;
    struct node_beat beat = {-1, -1, -1};

    register_node(f->st, "a", 30000, 0);
    /* A second live node of the same name is refused; a lease of 0 takes it. */
    register_node(f->st, "a", 30000, ERR_BUSY);
    register_node(f->st, "a", 0, 0);
    assert_int_equal(store_node_heartbeat(f->st, "a", 30000, &beat, &err), 0);
    assert_int_equal(beat.claimable, 0);
    assert_int_equal(store_node_heartbeat(f->st, "nobody", 30000, NULL, &err), ERR_NOT_FOUND);
    assert_int_equal(store_nodes_list(f->st, &rows, &n, &err), 0);
    r = find_node(rows, n, "a");
    assert_non_null(r);
    assert_string_equal(r->host, "h1");
    assert_string_equal(r->role, "server");
    assert_int_equal(r->pid, 42);
    assert_int_equal(r->stopped_at, 0);
    assert_true(r->heartbeat_at > 0 && r->db_now >= r->heartbeat_at);
    assert_true(r->db_now - r->heartbeat_at < 10000);
    node_rows_free(rows, n);
    /* Stopped: its name is free again. */
    assert_int_equal(store_node_stop(f->st, "a", &err), 0);
    assert_int_equal(store_nodes_list(f->st, &rows, &n, &err), 0);
    r = find_node(rows, n, "a");
    assert_true(r && r->stopped_at > 0);
    node_rows_free(rows, n);
    register_node(f->st, "a", 30000, 0);
    if (!g_pg) {
        /* One node per data directory: the cluster calls say so. */
        char **ids = NULL;
        size_t nids = 0;
        int held = 0;
        assert_int_equal(store_executions_claim(f->st, "a", 5, 30000, STORE_CLAIM_UNOWNED, &ids,
                                                &nids, &err),
                         ERR_INVALID);
        assert_non_null(strstr(err.msg, "serves one node"));
        assert_int_equal(store_lease_acquire(f->st, "scheduler", "a", 1000, &held, &err),
                         ERR_INVALID);
        assert_int_equal(store_listen_fd(f->st), -1);
        assert_int_equal(store_notify(f->st, "orch_work", "x", &err), 0);
    }
}

static int has_id(char **ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(ids[i], id))
            return 1;
    return 0;
}

static void free_ids(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

static void note(void *arg, const char *channel, const char *payload)
{
    char *out = arg;
    snprintf(out, 128, "%s:%s", channel, payload);
}

static void test_pg_claims_fences_leases(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row e1, e2, e3, e4;
    struct store *other = NULL;
    char **ids = NULL;
    size_t n = 0;
    int held = 0;
    char got[128] = "";
    char sql[256];

    if (!g_pg) {
        printf("[  SKIPPED ] %s on SQLite: a PostgreSQL test\n", __func__);
        skip();
    }
    register_node(f->st, "A", 30000, 0);
    register_node(f->st, "B", 30000, 0);
    register_node(f->st, "dead", 30000, 0);
    raw_sql(f->dbpath, "UPDATE nodes SET heartbeat_at = 0 WHERE id = 'dead'");
    make_exec(&e1, "w", EXEC_QUEUED, 10); /* nobody's */
    make_exec(&e2, "w", EXEC_RUNNING, 20);
    e2.owner = (char *)"dead";
    make_exec(&e3, "w", EXEC_RUNNING, 30);
    e3.owner = (char *)"B";
    make_exec(&e4, "w", EXEC_SUCCEEDED, 5);
    e4.owner = (char *)"dead"; /* finished: never claimed */
    insert_exec(f->st, &e1);
    insert_exec(f->st, &e2);
    insert_exec(f->st, &e3);
    insert_exec(f->st, &e4);
    {
        struct node_beat beat;
        assert_int_equal(store_node_heartbeat(f->st, "A", 30000, &beat, &err), 0);
        assert_int_equal(beat.claimable, 2); /* e1 and e2 */
        assert_int_equal(beat.open_offers, 0);
        assert_int_equal(beat.peer_slots, 4); /* B's; the dead node's do not count */
    }
    assert_int_equal(store_executions_claim(f->st, "A", 10, 30000, STORE_CLAIM_UNOWNED, &ids, &n,
                                            &err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], e1.id);
    free_ids(ids, n);
    assert_int_equal(store_executions_claim(f->st, "A", 10, 30000, STORE_CLAIM_EXPIRED, &ids, &n,
                                            &err),
                     0);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], e2.id);
    free_ids(ids, n);
    /* Nothing left: B is alive, e4 finished. */
    assert_int_equal(store_executions_claim(f->st, "A", 10, 30000,
                                            STORE_CLAIM_UNOWNED | STORE_CLAIM_EXPIRED, &ids, &n,
                                            &err),
                     0);
    assert_int_equal(n, 0);
    free_ids(ids, n);
    assert_int_equal(store_executions_claim(f->st, "A", 10, 30000, STORE_CLAIM_OWN, &ids, &n,
                                            &err),
                     0);
    assert_int_equal(n, 2);
    assert_true(has_id(ids, n, e1.id) && has_id(ids, n, e2.id));
    free_ids(ids, n);
    /* One execution: a live owner keeps it; a finished one may be taken (a retry). */
    assert_int_equal(store_execution_claim_one(f->st, e3.id, "A", 30000, &err), ERR_BUSY);
    assert_non_null(strstr(err.msg, "node 'B'"));
    assert_int_equal(store_execution_claim_one(f->st, e4.id, "A", 30000, &err), 0);
    assert_int_equal(store_execution_claim_one(f->st, "ex_nope", "A", 30000, &err),
                     ERR_NOT_FOUND);
    /* B's lease expires: now A may take e3. */
    raw_sql(f->dbpath, "UPDATE nodes SET heartbeat_at = 0 WHERE id = 'B'");
    assert_int_equal(store_execution_claim_one(f->st, e3.id, "A", 30000, &err), 0);
    /* The fence names what is not ours. */
    snprintf(sql, sizeof(sql), "UPDATE executions SET owner_node = 'B' WHERE id = '%s'", e3.id);
    raw_sql(f->dbpath, sql);
    {
        char *mine[3] = {e1.id, e2.id, e3.id};
        assert_int_equal(store_begin(f->st, &err), 0);
        assert_int_equal(store_executions_fence(f->st, "A", mine, 3, &ids, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ids[0], e3.id);
        free_ids(ids, n);
        store_rollback(f->st);
    }
    /* A task offered by A, claimed and run by B, its result back to A. */
    {
        struct offer_row o, *rows = NULL;
        size_t nrows = 0;
        struct node_beat beat;
        memset(&o, 0, sizeof(o));
        snprintf(o.exec_id, sizeof(o.exec_id), "%s", e1.id);
        o.task_idx = 0;
        o.attempt = 1;
        o.owner = (char *)"A";
        o.spec = (char *)"{\"argv\":[\"true\"]}";
        o.offered_at = 5;
        o.exit_code = -1;
        register_node(f->st, "B", 0, 0); /* alive again */
        assert_int_equal(store_offer_put(f->st, &o, &err), 0);
        assert_int_equal(store_node_heartbeat(f->st, "B", 30000, &beat, &err), 0);
        assert_int_equal(beat.open_offers, 1);
        assert_int_equal(store_offers_claim(f->st, "B", 5, &rows, &nrows, &err), 0);
        assert_int_equal(nrows, 1);
        assert_string_equal(rows[0].owner, "A");
        assert_string_equal(rows[0].spec, o.spec);
        offer_rows_free(rows, nrows);
        /* Claimed once: nothing left for a second claim. */
        assert_int_equal(store_offers_claim(f->st, "A", 5, &rows, &nrows, &err), 0);
        assert_int_equal(nrows, 0);
        /* Still running on a live runner: nothing for the owner yet. */
        assert_int_equal(store_offers_owned(f->st, "A", 30000, &rows, &nrows, &err), 0);
        assert_int_equal(nrows, 0);
        o.runner_node = (char *)"B";
        o.runner = (char *)"h:7";
        o.pid = 7;
        o.finished_at = 9;
        o.status = (char *)"succeeded";
        o.exit_code = 0;
        o.output = (char *)"{\"n\":1}";
        assert_int_equal(store_offer_report(f->st, &o, &err), 0);
        assert_int_equal(store_offers_owned(f->st, "A", 30000, &rows, &nrows, &err), 0);
        assert_int_equal(nrows, 1);
        assert_string_equal(rows[0].status, "succeeded");
        assert_string_equal(rows[0].output, "{\"n\":1}");
        assert_string_equal(rows[0].runner, "h:7");
        assert_false(rows[0].runner_gone);
        offer_rows_free(rows, nrows);
        /* A takeover moves the offer to its new owner; a cancel reaches the runner. */
        assert_int_equal(store_offers_adopt(f->st, e1.id, "C", &rows, &nrows, &err), 0);
        assert_int_equal(nrows, 1);
        offer_rows_free(rows, nrows);
        o.attempt = 2;
        o.owner = (char *)"C";
        o.finished_at = 0;
        assert_int_equal(store_offer_put(f->st, &o, &err), 0);
        assert_int_equal(store_offers_claim(f->st, "B", 5, &rows, &nrows, &err), 0);
        offer_rows_free(rows, nrows);
        assert_int_equal(store_offer_cancel(f->st, e1.id, 0, 2, &err), 0);
        assert_int_equal(store_offers_cancelled(f->st, "B", &rows, &nrows, &err), 0);
        assert_int_equal(nrows, 1);
        assert_int_equal(rows[0].attempt, 2);
        offer_rows_free(rows, nrows);
        assert_int_equal(store_offer_delete(f->st, e1.id, 0, 1, &err), 0);
        assert_int_equal(store_offer_delete(f->st, e1.id, 0, 2, &err), 0);
        assert_int_equal(store_offers_owned(f->st, "C", 30000, &rows, &nrows, &err), 0);
        assert_int_equal(nrows, 0);
    }
    /* Cancel requests reach the owner. */
    assert_int_equal(store_execution_request_cancel(f->st, e1.id, 99, &err), 0);
    assert_int_equal(store_execution_request_cancel(f->st, e4.id, 99, &err), ERR_CONFLICT);
    assert_int_equal(store_cancel_requests(f->st, "A", &ids, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], e1.id);
    free_ids(ids, n);
    /* Leases: one holder at a time; a released one passes at once. */
    assert_int_equal(store_lease_acquire(f->st, "scheduler", "A", 30000, &held, &err), 0);
    assert_true(held);
    assert_int_equal(store_lease_acquire(f->st, "scheduler", "B", 30000, &held, &err), 0);
    assert_false(held);
    assert_int_equal(store_lease_acquire(f->st, "scheduler", "A", 30000, &held, &err), 0);
    assert_true(held);
    assert_int_equal(store_lease_release(f->st, "scheduler", "A", &err), 0);
    assert_int_equal(store_lease_acquire(f->st, "scheduler", "B", 30000, &held, &err), 0);
    assert_true(held);
    /* LISTEN on one connection, NOTIFY on another. */
    assert_int_equal(store_open(f->data, 0, &other, &err), 0);
    assert_int_equal(store_listen(other, "orch_work", &err), 0);
    assert_int_equal(store_listen(other, "bad channel;", &err), ERR_INVALID);
    assert_true(store_listen_fd(other) >= 0);
    assert_int_equal(store_notify(f->st, "orch_work", "n1", &err), 0);
    for (int i = 0; i < 200 && !got[0]; i++) {
        assert_int_equal(store_notifications(other, note, got, &err), 0);
        if (!got[0])
            usleep(5000);
    }
    assert_string_equal(got, "orch_work:n1");
    assert_true(store_connected(other));
    store_free(other);
}

static void test_pg_pipelining(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row ex;
    struct task_run_row t = {0, (char *)"a", TASK_RUNNING, 2, 0, 50, 0, NULL, NULL, 0, 0, 0, NULL, NULL, 0};
    struct task_run_row late = t;
    struct attempt_row at;
    struct log_chunk c;
    char **lost = NULL;
    size_t nlost = 0;
    char *mine[1];

    if (!g_pg) {
        printf("[  SKIPPED ] %s on SQLite: a PostgreSQL test\n", __func__);
        skip();
    }
    make_exec(&ex, "w", EXEC_RUNNING, 10);
    ex.owner = (char *)"A";
    insert_exec(f->st, &ex);
    assert_int_equal(store_task_run_insert(f->st, ex.id, &t, &err), 0);
    store_set_pipelining(f->st, 1);

    /* A turn's writes in one round trip, read back after the commit. */
    memset(&at, 0, sizeof(at));
    at.task_idx = 0;
    at.number = 2;
    at.status = ATTEMPT_SUCCEEDED;
    at.node = (char *)"h:1";
    at.started_at = 50;
    at.finished_at = 60;
    at.exit_code = 0;
    memset(&c, 0, sizeof(c));
    c.task_idx = 0;
    c.attempt = 2;
    c.seq = 1;
    c.stream = LOG_STREAM_STDOUT;
    c.ts = 55;
    c.data = (char *)"out";
    c.len = 3;
    mine[0] = ex.id;
    t.status = TASK_SUCCEEDED;
    t.finished_at = 60;
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_executions_fence(f->st, "A", mine, 1, &lost, &nlost, &err), 0);
    assert_int_equal(nlost, 0);
    assert_int_equal(store_task_run_update(f->st, ex.id, &t, 2, &err), 0);
    assert_int_equal(store_attempt_insert(f->st, ex.id, &at, &err), 0);
    assert_int_equal(store_log_append(f->st, ex.id, &c, &err), 0);
    assert_int_equal(store_notify(f->st, "orch_work", "x", &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
    assert_int_equal(d->tasks[0].status, TASK_SUCCEEDED);
    assert_int_equal(d->nattempts, 1);
    exec_detail_free(d);

    /* A stale attempt is found at the commit: nothing of the turn is kept. */
    late.status = TASK_FAILED;
    late.attempt = 3;
    at.number = 3;
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_attempt_insert(f->st, ex.id, &at, &err), 0);
    assert_int_equal(store_task_run_update(f->st, ex.id, &late, 1, &err), 0);
    assert_int_equal(store_commit(f->st, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "stale attempt"));
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
    assert_int_equal(d->tasks[0].status, TASK_SUCCEEDED);
    assert_int_equal(d->nattempts, 1);
    exec_detail_free(d);

    /* The same error surfaces at a statement that needs its answer. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_task_run_update(f->st, ex.id, &late, 1, &err), 0);
    {
        struct fire_row fr;
        memset(&fr, 0, sizeof(fr));
        fr.schedule_id = (char *)"sch_x";
        fr.scheduled_for = 1000;
        fr.status = FIRE_SKIPPED;
        fr.created_at = 1;
        assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_CONFLICT);
    }
    store_rollback(f->st);

    /* Another node took the execution: the pipelined fence fails the commit. */
    {
        char sql[200];
        snprintf(sql, sizeof(sql), "UPDATE executions SET owner_node = 'B' WHERE id = '%s'",
                 ex.id);
        raw_sql(f->dbpath, sql);
    }
    t.status = TASK_FAILED;
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_executions_fence(f->st, "A", mine, 1, &lost, &nlost, &err), 0);
    assert_int_equal(store_task_run_update(f->st, ex.id, &t, 2, &err), 0);
    assert_int_equal(store_commit(f->st, &err), ERR_FENCED);
    assert_int_equal(store_execution_get(f->st, ex.id, &d, &err), 0);
    assert_int_equal(d->tasks[0].status, TASK_SUCCEEDED);
    exec_detail_free(d);
    /* Outside a transaction the fence says which. */
    assert_int_equal(store_executions_fence(f->st, "A", mine, 1, &lost, &nlost, &err), 0);
    assert_int_equal(nlost, 1);
    free_ids(lost, nlost);
    /* The connection is fine afterwards, prepared statements and all. */
    assert_int_equal(store_begin(f->st, &err), 0);
    t.status = TASK_SUCCEEDED;
    assert_int_equal(store_task_run_update(f->st, ex.id, &t, 2, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    store_set_pipelining(f->st, 0);
}

/*
 * The engine's turn sends its execution inserts with the rest: a duplicate
 * id fails the commit (nothing of the turn kept) instead of the insert. An
 * execution's detail is one batch of reads: a failing one leaves no
 * transaction open.
 */
static void test_pg_pipelined_insert_and_detail(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row a, b;
    struct task_run_row t;
    struct task_page page = {-1, -1, 1, NULL, 1};
    struct attempt_row at;

    if (!g_pg) {
        printf("[  SKIPPED ] %s on SQLite: a PostgreSQL test\n", __func__);
        skip();
    }
    make_exec(&a, "w", EXEC_SUCCEEDED, 10);
    make_exec(&b, "w", EXEC_SUCCEEDED, 11);
    memset(&t, 0, sizeof(t));
    t.name = (char *)"a";
    t.status = TASK_SUCCEEDED;
    t.attempt = 1;
    t.started_at = 50;
    t.finished_at = 60;
    memset(&at, 0, sizeof(at));
    at.task_idx = 0;
    at.number = 1;
    at.status = ATTEMPT_SUCCEEDED;
    at.node = (char *)"h:1";
    at.started_at = 50;
    at.finished_at = 60;
    store_set_pipelining(f->st, 1);

    /* An execution, its task run and its attempt, in one turn. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_execution_insert(f->st, &a, &err), 0);
    assert_int_equal(store_task_run_insert(f->st, a.id, &t, &err), 0);
    assert_int_equal(store_attempt_insert(f->st, a.id, &at, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_execution_get(f->st, a.id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    assert_int_equal(d->ntasks, 1);
    assert_int_equal(d->nattempts, 1);
    exec_detail_free(d);
    assert_int_equal(store_execution_page(f->st, a.id, &page, &d, &err), 0);
    assert_int_equal(d->ntasks, 1);
    assert_int_equal(d->nattempts, 1);
    assert_int_equal(d->ncounts, 0);
    exec_detail_free(d);
    assert_int_equal(store_begin(f->st, &err), 0); /* none was left open */
    store_rollback(f->st);

    /* The same id again: the commit fails, the other insert is not kept. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_execution_insert(f->st, &b, &err), 0);
    assert_int_equal(store_execution_insert(f->st, &a, &err), 0);
    assert_int_equal(store_commit(f->st, &err), ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "cannot insert execution 'ex_"));
    assert_non_null(strstr(err.msg, "duplicate key value"));
    assert_int_equal(store_execution_get(f->st, b.id, &d, &err), ERR_NOT_FOUND);
    /* The connection is fine afterwards. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_execution_insert(f->st, &b, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(store_execution_get(f->st, b.id, &d, &err), 0);
    assert_int_equal(d->ntasks, 0);
    exec_detail_free(d);
    store_set_pipelining(f->st, 0);

    /* A read of the batch fails: its error, and no transaction left open. */
    raw_sql(f->dbpath, "ALTER TABLE attempts RENAME TO attempts_away");
    assert_int_equal(store_execution_get(f->st, a.id, &d, &err), ERR_STORE);
    assert_null(d);
    assert_non_null(strstr(err.msg, "attempts"));
    assert_int_equal(store_execution_page(f->st, a.id, &page, &d, &err), ERR_STORE);
    assert_null(d);
    assert_int_equal(store_begin(f->st, &err), 0); /* none was left open */
    store_rollback(f->st);
    /* Inside the caller's transaction: aborted, its commit says so. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_execution_get(f->st, a.id, &d, &err), ERR_STORE);
    assert_int_equal(store_commit(f->st, &err), ERR_STORE);
    raw_sql(f->dbpath, "ALTER TABLE attempts_away RENAME TO attempts");
    assert_int_equal(store_execution_get(f->st, a.id, &d, &err), 0);
    assert_int_equal(d->nattempts, 1);
    exec_detail_free(d);
}

static void test_pg_concurrent_migration(void **state)
{
    struct fixture *f = *state;
    char db[80];
    char loc[1024];
    char sql[160];
    pid_t pids[4];
    int ok = 0;

    if (!g_pg) {
        printf("[  SKIPPED ] %s on SQLite: a PostgreSQL test\n", __func__);
        skip();
    }
    snprintf(db, sizeof(db), "%s_m", f->pgdb);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
    assert_int_equal(pg_admin(sql), 0);
    assert_int_equal(pg_location(db, loc, sizeof(loc)), 0);
    fflush(NULL);
    for (int i = 0; i < 4; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct store *st = NULL;
            struct err err = ERR_INIT;
            int version = 0;
            int rc = store_open(loc, STORE_CREATE, &st, &err);
            if (rc == 0)
                rc = store_schema_version(st, &version, &err);
            if (rc)
                fprintf(stderr, "child %d: %s\n", i, err.msg);
            store_free(st);
            _exit(rc == 0 && version == store__migration_count ? 0 : 1);
        }
    }
    for (int i = 0; i < 4; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        ok += WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    pg_admin(sql);
    assert_int_equal(ok, 4);
}

/* --- executions per hour (executions_hourly) and time ranges (schema v11) --- */

#define HOUR 3600000LL
/* The step that added executions_hourly and executions_created_at. */
#define V_HOURLY 11

/*
 * store_executions_hourly() against a count of the rows themselves: every
 * (hour, status) it returns has that many executions, it returns every
 * group there is, and nothing else.
 */
static void assert_hourly_recount(struct store *st, const char *dbpath)
{
    struct exec_hour_count *rows = NULL;
    struct err err = ERR_INIT;
    int64_t total = 0;
    char sql[256];
    size_t n = 0;

    if (store_executions_hourly(st, 0, &rows, &n, &err) != 0)
        fail_msg("hourly: %s", err.msg);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].hour % HOUR, 0);
        if (i)
            assert_true(rows[i].hour >= rows[i - 1].hour);
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM executions WHERE created_at / 3600000 = %lld"
                 " AND status = '%s'",
                 (long long)(rows[i].hour / HOUR), exec_status_name(rows[i].status));
        if (raw_int(dbpath, sql) != rows[i].n)
            fail_msg("hour %lld %s: counted %lld, kept %lld", (long long)rows[i].hour,
                     exec_status_name(rows[i].status), (long long)raw_int(dbpath, sql),
                     (long long)rows[i].n);
        assert_true(rows[i].n > 0);
        total += rows[i].n;
    }
    assert_int_equal(total, raw_int(dbpath, "SELECT count(*) FROM executions"));
    assert_int_equal((int64_t)n, raw_int(dbpath, "SELECT count(*) FROM (SELECT 1 FROM executions"
                                                 " GROUP BY created_at / 3600000, status) x"));
    free(rows);
}

static void set_status(struct store *st, struct exec_row *row, enum exec_status status)
{
    struct err err = ERR_INIT;

    row->status = status;
    row->started_at = status == EXEC_QUEUED ? 0 : row->created_at + 1;
    row->finished_at = exec_status_is_final(status) ? row->created_at + 2 : 0;
    if (store_execution_update(st, row, &err) != 0)
        fail_msg("update %s: %s", row->id, err.msg);
}

static void test_hourly_counts(void **state)
{
    static const enum exec_status final[] = {EXEC_SUCCEEDED, EXEC_FAILED, EXEC_CANCELLED,
                                             EXEC_TIMED_OUT};
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row e[12], extra, dup;
    struct exec_hour_count *rows = NULL;
    size_t n = 0;
    int deleted = -1;

    /* Created over three hours, queued. */
    assert_int_equal(store_begin(f->st, &err), 0);
    for (int i = 0; i < 12; i++) {
        make_exec(&e[i], i % 3 ? "a" : "b", EXEC_QUEUED, 5 * HOUR + (i % 3) * HOUR + i * 1000);
        insert_exec(f->st, &e[i]);
    }
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_hourly_recount(f->st, f->dbpath);
    /* Outside a transaction too (PostgreSQL: each statement commits on its own). */
    make_exec(&extra, "a", EXEC_RUNNING, 9 * HOUR - 1);
    insert_exec(f->st, &extra);
    assert_hourly_recount(f->st, f->dbpath);

    /* Running, then each final status, some in one transaction. */
    for (int i = 0; i < 12; i++)
        set_status(f->st, &e[i], EXEC_RUNNING);
    assert_hourly_recount(f->st, f->dbpath);
    assert_int_equal(store_begin(f->st, &err), 0);
    for (int i = 0; i < 12; i++)
        set_status(f->st, &e[i], final[i % 4]);
    /* The same status again changes no count. */
    set_status(f->st, &e[0], final[0]);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_hourly_recount(f->st, f->dbpath);

    /* Retries: failed, queued, running, succeeded; twice in one transaction. */
    set_status(f->st, &e[1], EXEC_QUEUED);
    assert_hourly_recount(f->st, f->dbpath);
    assert_int_equal(store_begin(f->st, &err), 0);
    set_status(f->st, &e[1], EXEC_RUNNING);
    set_status(f->st, &e[1], EXEC_SUCCEEDED);
    set_status(f->st, &e[5], EXEC_QUEUED);
    set_status(f->st, &e[5], EXEC_RUNNING);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_hourly_recount(f->st, f->dbpath);

    /* Rolled back: nothing counted. */
    assert_int_equal(store_begin(f->st, &err), 0);
    make_exec(&dup, "a", EXEC_QUEUED, 5 * HOUR);
    insert_exec(f->st, &dup);
    set_status(f->st, &e[2], EXEC_QUEUED);
    store_rollback(f->st);
    e[2].status = final[2];
    assert_hourly_recount(f->st, f->dbpath);

    /* A conflicting insert inside a transaction (PostgreSQL undoes it to
     * its savepoint) counts nothing; the rest of the transaction does. */
    assert_int_equal(store_begin(f->st, &err), 0);
    dup = e[3];
    assert_int_equal(store_execution_insert(f->st, &dup, &err), ERR_CONFLICT);
    make_exec(&dup, "b", EXEC_QUEUED, 7 * HOUR + 5);
    insert_exec(f->st, &dup);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_hourly_recount(f->st, f->dbpath);

    /* Retention deletes: counted down. finished_at is created_at + 2. */
    assert_int_equal(store_executions_purge(f->st, NULL, NULL, 0, 6 * HOUR + 100000, 3, &deleted,
                                            &err),
                     0);
    assert_int_equal(deleted, 3);
    assert_hourly_recount(f->st, f->dbpath);
    assert_int_equal(store_executions_purge(f->st, "a", NULL, 0, 10 * HOUR, 100, &deleted, &err),
                     0);
    assert_true(deleted > 0);
    assert_hourly_recount(f->st, f->dbpath);

    /* From the hour that holds `since` on; earlier hours left out. */
    assert_int_equal(store_executions_hourly(f->st, 7 * HOUR + 5, &rows, &n, &err), 0);
    assert_true(n > 0);
    assert_int_equal(rows[0].hour, 7 * HOUR);
    for (size_t i = 0; i < n; i++)
        assert_true(rows[i].hour >= 7 * HOUR);
    free(rows);
    assert_int_equal(store_executions_hourly(f->st, 10 * HOUR, &rows, &n, &err), 0);
    assert_int_equal(n, 0);
    free(rows);
}

/* Apply the steps before V_HOURLY to an empty database, as that orch did. */
static const char old_rows_sql[] =
    "INSERT INTO executions (id, workflow, workflow_version, status, params, created_at)"
    "  VALUES ('ex_o1', 'etl', 1, 'succeeded', '{}', 7200000);"
    "INSERT INTO executions (id, workflow, workflow_version, status, params, created_at)"
    "  VALUES ('ex_o2', 'etl', 1, 'succeeded', '{}', 7200001);"
    "INSERT INTO executions (id, workflow, workflow_version, status, params, created_at)"
    "  VALUES ('ex_o3', 'etl', 1, 'failed', '{}', 10799999);"
    "INSERT INTO executions (id, workflow, workflow_version, status, params, created_at)"
    "  VALUES ('ex_o4', 'etl', 1, 'running', '{}', 10800000);"
    "INSERT INTO executions (id, workflow, workflow_version, status, params, created_at)"
    "  VALUES ('ex_o5', 'etl', 1, 'queued', '{}', 90000000);";

static void build_v10_sqlite(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "PRAGMA journal_mode = WAL; CREATE TABLE schema_version ("
                                  " version INTEGER NOT NULL PRIMARY KEY,"
                                  " applied_at BIGINT NOT NULL)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    for (int v = 0; v < V_HOURLY - 1; v++) {
        char sql[128];
        assert_int_equal(sqlite3_exec(db, store__migrations[v], NULL, NULL, NULL), SQLITE_OK);
        snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d, 1)", v + 1);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    }
    if (sqlite3_exec(db, old_rows_sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("old rows: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void pg_run(PGconn *c, const char *sql)
{
    PGresult *res = PQexec(c, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(res);
}

static void build_v10_pg(const char *loc)
{
    PGconn *c = PQconnectdb(loc);

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    pg_run(c, "SET client_min_messages = warning");
    pg_run(c, "CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY,"
              " applied_at BIGINT NOT NULL)");
    for (int v = 0; v < V_HOURLY - 1; v++) {
        char sql[128];
        pg_run(c, store__migrations[v]);
        snprintf(sql, sizeof(sql), "INSERT INTO schema_version VALUES (%d, 1)", v + 1);
        pg_run(c, sql);
    }
    pg_run(c, old_rows_sql);
    PQfinish(c);
}

static void test_migrate_backfills_hourly(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct store *st = NULL;
    struct exec_hour_count *rows = NULL;
    struct exec_row e;
    char path[200] = "", loc[1100] = "", db[80] = "";
    const char *saved_loc = g_pg_loc;
    size_t n = 0;
    int version = 0;

    if (g_pg) {
        char sql[128];
        snprintf(db, sizeof(db), "%s_v10", f->pgdb);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", db);
        assert_int_equal(pg_admin(sql), 0);
        assert_int_equal(pg_location(db, loc, sizeof(loc)), 0);
        build_v10_pg(loc);
        g_pg_loc = loc;
    } else {
        snprintf(path, sizeof(path), "%s/v10.db", f->dir);
        snprintf(loc, sizeof(loc), "sqlite:%s", path);
        build_v10_sqlite(path);
    }
    if (store_open(loc, 0, &st, &err) != 0)
        fail_msg("open: %s", err.msg);
    assert_int_equal(store_schema_version(st, &version, &err), 0);
    assert_int_equal(version, store__migration_count);

    /* The rows already there are counted: hours 2 (two succeeded, one
     * failed), 3 (one running) and 25 (one queued). */
    assert_int_equal(store_executions_hourly(st, 0, &rows, &n, &err), 0);
    assert_int_equal(n, 4);
    assert_int_equal(rows[0].hour, 2 * HOUR);
    assert_int_equal(rows[0].status, EXEC_FAILED);
    assert_int_equal(rows[0].n, 1);
    assert_int_equal(rows[1].hour, 2 * HOUR);
    assert_int_equal(rows[1].status, EXEC_SUCCEEDED);
    assert_int_equal(rows[1].n, 2);
    assert_int_equal(rows[2].hour, 3 * HOUR);
    assert_int_equal(rows[2].status, EXEC_RUNNING);
    assert_int_equal(rows[3].hour, 25 * HOUR);
    assert_int_equal(rows[3].status, EXEC_QUEUED);
    free(rows);
    assert_hourly_recount(st, path);

    /* And the triggers count from there on. */
    make_exec(&e, "etl", EXEC_QUEUED, 3 * HOUR + 7);
    insert_exec(st, &e);
    set_status(st, &e, EXEC_SUCCEEDED);
    assert_hourly_recount(st, path);

    store_free(st);
    if (g_pg) {
        char sql[128];
        g_pg_loc = saved_loc;
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
        pg_admin(sql);
    }
}

/*
 * PostgreSQL: the triggers append the changes of the counts to
 * executions_hourly_delta; the engine's next turn that writes executions adds
 * them into executions_hourly before its COMMIT, unless another transaction
 * holds the counts' lock. The counts read are exact at every step.
 */
static void test_pg_hourly_fold(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_row a, b, c, d;
    PGconn *other;
    PGresult *res;

    if (!g_pg) {
        printf("[  SKIPPED ] %s on SQLite: a PostgreSQL test\n", __func__);
        skip();
    }
    make_exec(&a, "w", EXEC_RUNNING, 2 * HOUR + 1);
    make_exec(&b, "w", EXEC_QUEUED, 2 * HOUR + 2);
    make_exec(&c, "w", EXEC_QUEUED, 3 * HOUR);
    make_exec(&d, "w", EXEC_QUEUED, 3 * HOUR + 1);
    store_set_pipelining(f->st, 1);

    /* The first turn's trigger appends its +1. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_execution_insert(f->st, &a, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM executions_hourly_delta"), 1);
    assert_hourly_recount(f->st, f->dbpath);

    /* The next one adds it up, then appends its own three. */
    assert_int_equal(store_begin(f->st, &err), 0);
    a.status = EXEC_SUCCEEDED;
    a.finished_at = a.created_at + 2;
    assert_int_equal(store_execution_update(f->st, &a, &err), 0);
    assert_int_equal(store_execution_insert(f->st, &b, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM executions_hourly_delta"), 3);
    assert_int_equal(raw_int(f->dbpath, "SELECT n FROM executions_hourly"
                                        " WHERE hour = 2 AND status = 'running'"),
                     1);
    assert_hourly_recount(f->st, f->dbpath);

    /* Another transaction holds the counts' lock: nothing is moved. */
    other = PQconnectdb(g_pg_loc);
    assert_int_equal(PQstatus(other), CONNECTION_OK);
    res = PQexec(other, "BEGIN; SELECT pg_advisory_xact_lock(" STORE__HOURLY_LOCK ")");
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    PQclear(res);
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_execution_insert(f->st, &c, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM executions_hourly_delta"), 4);
    assert_hourly_recount(f->st, f->dbpath);
    res = PQexec(other, "COMMIT");
    PQclear(res);
    PQfinish(other);

    /* Released: the next turn moves all four. */
    assert_int_equal(store_begin(f->st, &err), 0);
    assert_int_equal(store_execution_insert(f->st, &d, &err), 0);
    assert_int_equal(store_commit(f->st, &err), 0);
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM executions_hourly_delta"), 1);
    assert_hourly_recount(f->st, f->dbpath);

    /* A rolled back turn moves nothing and counts nothing. */
    assert_int_equal(store_begin(f->st, &err), 0);
    set_status(f->st, &b, EXEC_RUNNING);
    store_rollback(f->st);
    b.status = EXEC_QUEUED;
    assert_int_equal(raw_int(f->dbpath, "SELECT count(*) FROM executions_hourly_delta"), 1);
    assert_hourly_recount(f->st, f->dbpath);
    store_set_pipelining(f->st, 0);
}

/* --- the time range list --- */

#define NRANGE 400

static struct range_row {
    char id[ID_MAX];
    int64_t created_at;
    enum exec_status status;
    const char *workflow;
} range_rows[NRANGE];

/*
 * Executions whose created_at has nothing to do with their id order, over
 * six hours from RANGE_T0, several at the same instant (the bounds).
 */
#define RANGE_T0 (100 * HOUR)

static void fill_range(struct store *st)
{
    struct err err = ERR_INIT;
    struct exec_row row;

    assert_int_equal(store_begin(st, &err), 0);
    for (int i = 0; i < NRANGE; i++) {
        int64_t c = RANGE_T0 + ((int64_t)(i * 7919) % 360) * 60000;
        make_exec(&row, i % 3 ? "a" : "b", list_status(i), c);
        insert_exec(st, &row);
        memcpy(range_rows[i].id, row.id, ID_MAX);
        range_rows[i].created_at = c;
        range_rows[i].status = row.status;
        range_rows[i].workflow = row.workflow;
    }
    assert_int_equal(store_commit(st, &err), 0);
}

static int range_match(const struct range_row *r, const struct exec_filter *f)
{
    if (f->status_mask && !(f->status_mask & (1u << r->status)))
        return 0;
    if (f->workflow && strcmp(f->workflow, r->workflow) != 0)
        return 0;
    if (f->since && r->created_at < f->since)
        return 0;
    if (f->until && r->created_at >= f->until)
        return 0;
    return 1;
}

/*
 * Page through `filter` with cursors and compare every page with what the
 * list query before schema v11 returned (the same definition, computed
 * here): the matching executions, by id newest first, `page` at a time, each
 * page after its cursor. Returns how many there were.
 */
static int range_pages(struct store *st, struct exec_filter filter, int page)
{
    static int order[NRANGE];
    struct err err = ERR_INIT;
    char cursor[ID_MAX] = "";
    int nexp = 0, at = 0;

    /* The ids are increasing in insertion order: newest first is reverse. */
    for (int i = NRANGE - 1; i >= 0; i--)
        if (range_match(&range_rows[i], &filter))
            order[nexp++] = i;
    filter.limit = page;
    for (;;) {
        struct exec_list list = {NULL, 0};
        size_t want = (size_t)(nexp - at < page ? nexp - at : page);
        filter.before_id = cursor[0] ? cursor : NULL;
        if (store_executions_list(st, &filter, &list, &err) != 0)
            fail_msg("list: %s", err.msg);
        assert_int_equal(list.n, want);
        for (size_t k = 0; k < list.n; k++) {
            const struct range_row *r = &range_rows[order[at + (int)k]];
            assert_string_equal(list.items[k].id, r->id);
            assert_int_equal(list.items[k].created_at, r->created_at);
        }
        at += (int)list.n;
        if (list.n)
            memcpy(cursor, list.items[list.n - 1].id, ID_MAX);
        exec_list_release(&list);
        if (want < (size_t)page)
            break;
    }
    assert_int_equal(at, nexp);
    return nexp;
}

/* Whether the list of `filter` reads the created_at range (the choice). */
static int chosen_range(struct store *st, const struct exec_filter *filter)
{
    struct err err = ERR_INIT;
    int by_range = -1;

    assert_int_equal(store__list_by_range(st, filter, &by_range, &err), 0);
    return by_range;
}

static void test_list_range_matches(void **state)
{
    /* [since, until) in minutes from RANGE_T0 (-1: not given). */
    static const int ranges[][2] = {
        {10, 20}, {0, 1}, {359, 360}, {59, 61}, {100, 101}, {0, 360}, {-1, 30}, {300, -1},
        {30, 30}, {500, 600}, {-100, 5},
    };
    static const int pages[] = {1, 7, 50};
    struct fixture *f = *state;
    struct exec_filter filter = {0};
    int narrow = 0, wide = 0;

    fill_range(f->st);
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        for (int shape = 0; shape < 4; shape++) {
            memset(&filter, 0, sizeof(filter));
            filter.since = ranges[r][0] < 0 ? 0 : RANGE_T0 + ranges[r][0] * 60000LL;
            filter.until = ranges[r][1] < 0 ? 0 : RANGE_T0 + ranges[r][1] * 60000LL;
            if (shape & 1)
                filter.workflow = "a";
            if (shape & 2)
                filter.status_mask = (1u << EXEC_FAILED) | (1u << EXEC_QUEUED);
            if (filter.since && filter.until && chosen_range(f->st, &filter))
                narrow++;
            else if (filter.since && filter.until)
                wide++;
            for (size_t p = 0; p < sizeof(pages) / sizeof(pages[0]); p++)
                range_pages(f->st, filter, pages[p]);
        }
    }
    /* Both plans answered. */
    assert_true(narrow > 0);
    assert_true(wide > 0);
    /* A bound at an instant holds executions: since includes them, until not. */
    memset(&filter, 0, sizeof(filter));
    filter.since = RANGE_T0 + 10 * 60000LL;
    filter.until = RANGE_T0 + 11 * 60000LL;
    assert_true(chosen_range(f->st, &filter));
    assert_true(range_pages(f->st, filter, 3) > 0);
}

/* The plans: the newest first by the primary key, a narrow range by executions_created_at. */
static char *list_plan(struct store *st, const struct exec_filter *filter)
{
    struct err err = ERR_INIT;
    char *plan = NULL;

    assert_int_equal(store__sqlite_explain_list(st, filter, &plan, &err), 0);
    print_message("list plan (mask 0x%x, workflow %s, since %lld, until %lld): %s",
                  filter->status_mask, filter->workflow ? filter->workflow : "-",
                  (long long)filter->since, (long long)filter->until, plan);
    return plan;
}

static void expect_plan(struct store *st, const struct exec_filter *filter, const char *want,
                        int sorted)
{
    char *plan = list_plan(st, filter);

    if (!strstr(plan, want))
        fail_msg("plan '%s' does not use '%s'", plan, want);
    if (sorted)
        assert_non_null(strstr(plan, "TEMP B-TREE FOR ORDER BY"));
    else
        assert_null(strstr(plan, "TEMP B-TREE"));
    assert_null(strstr(plan, "SCAN"));
    free(plan);
}

static void test_list_range_query_plans(void **state)
{
    struct fixture *f = *state;
    struct exec_filter filter = {0};

    SKIP_ON_PG("SQLite EXPLAIN QUERY PLAN");

    fill_range(f->st);
    filter.limit = 50;
    /* Unbounded, since or until alone: the newest first by an index in id order. */
    expect_plan(f->st, &filter, "USING INDEX sqlite_autoindex_executions_1 (id<?)", 0);
    filter.since = RANGE_T0 + 10 * 60000LL;
    expect_plan(f->st, &filter, "USING INDEX sqlite_autoindex_executions_1 (id<?)", 0);
    filter.since = 0;
    filter.until = RANGE_T0 + 10 * 60000LL;
    expect_plan(f->st, &filter, "USING INDEX sqlite_autoindex_executions_1 (id<?)", 0);
    filter.status_mask = 1u << EXEC_FAILED;
    expect_plan(f->st, &filter, "USING INDEX executions_status_id (status=? AND id<?)", 0);
    filter.workflow = "a";
    expect_plan(f->st, &filter,
                "USING INDEX executions_workflow_status_id (workflow=? AND status=? AND id<?)", 0);
    /* A narrow range, with any filter: the range, sorted. */
    filter.since = RANGE_T0 + 10 * 60000LL;
    filter.until = RANGE_T0 + 20 * 60000LL;
    expect_plan(f->st, &filter, "USING INDEX executions_created_at (created_at>? AND created_at<?)",
                1);
    filter.workflow = NULL;
    expect_plan(f->st, &filter, "USING INDEX executions_created_at (created_at>? AND created_at<?)",
                1);
    filter.status_mask = 0;
    expect_plan(f->st, &filter, "USING INDEX executions_created_at (created_at>? AND created_at<?)",
                1);
    /* A wide one (every execution, none newer): the walk from the newest. */
    filter.since = RANGE_T0;
    filter.until = RANGE_T0 + 360 * 60000LL;
    expect_plan(f->st, &filter, "USING INDEX sqlite_autoindex_executions_1 (id<?)", 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_and_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_nested_and_sqlite_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_needs_migrated_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test(test_open_postgres_unreachable),
        cmocka_unit_test_setup_teardown(test_sync_env, setup, teardown),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test_setup_teardown(test_workflow_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execution_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_attempts_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queued_at_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_instances_and_children, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_query_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hourly_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_backfills_hourly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_hourly_fold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_range_matches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_range_query_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfinished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_beside_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_timing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workflows_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workflow_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_outbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_except_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge_counts_query_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_previous_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedules_from_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execution_schedule_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schedules_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fires, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fires_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts_keep_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_inside_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_concurrent_migration, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodes_use_the_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_claims_fences_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_pipelining, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_pipelined_insert_and_detail, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("store_sqlite", tests, NULL, NULL);

    g_pg_base = getenv("ORCH_TEST_PG");
    if (!g_pg_base || !*g_pg_base) {
        printf("ORCH_TEST_PG is not set: the PostgreSQL pass is not run "
               "(tests/pg/run-with-pg.sh, CTest unit.test_store.pg)\n");
        return failed;
    }
    g_pg = 1;
    failed += cmocka_run_group_tests_name("store_postgres", tests, NULL, NULL);
    return failed;
}
