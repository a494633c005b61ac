/*
 * Unit tests for src/store with the SQLite backend: open and migrations,
 * workflows, executions, task runs, attempts, fencing, transactions, lists,
 * logs, readers beside a writer, and the error paths.
 *
 * Each test gets a fresh directory under /tmp (removed afterwards) and a
 * writer store opened on "<dir>/data".
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
#include <unistd.h>

#include <sqlite3.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/id.h"
#include "base/xalloc.h"
#include "store/store.h"
#include "store/store_backend.h"

#include "base/banned.h"

struct fixture {
    char dir[64];     /* the temp directory */
    char data[128];   /* the data directory location inside it */
    char dbpath[160]; /* data/orch.db */
    struct store *st; /* writer, open */
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct err err = ERR_INIT;

    snprintf(f->dir, sizeof(f->dir), "/tmp/orch-test-store-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->data, sizeof(f->data), "%s/data", f->dir);
    snprintf(f->dbpath, sizeof(f->dbpath), "%s/orch.db", f->data);
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
    free(f);
    return 0;
}

/* Run one SQL statement on the database file behind the store's back. */
static void raw_sql(const char *dbpath, const char *sql)
{
    sqlite3 *db = NULL;

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

    assert_int_equal(stat(f->data, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(f->dbpath, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_string_equal(store_backend_name(f->st), "sqlite");
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

static void test_open_postgres_not_built(void **state)
{
    static const char *const locs[] = {
        "postgres://orch@db/orch",
        "postgresql://localhost/orch",
        "host=db dbname=orch",
        "  dbname = orch",
    };
    struct store *st = NULL;
    struct err err = ERR_INIT;
    (void)state;

    for (size_t i = 0; i < sizeof(locs) / sizeof(locs[0]); i++) {
        assert_int_equal(store_open(locs[i], STORE_CREATE, &st, &err), ERR_INVALID);
        assert_null(st);
        assert_string_equal(err.msg, "PostgreSQL support is not built yet");
    }
}

static void test_sync_env(void **state)
{
    struct fixture *f = *state;
    struct store *st = NULL;
    struct err err = ERR_INIT;

    setenv("ORCH_SQLITE_SYNC", "full", 1);
    assert_int_equal(store_open(f->data, 0, &st, &err), 0);
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
    assert_non_null(strstr(err.msg, "UNIQUE constraint failed"));
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

static void test_tasks_attempts_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row ex;
    struct task_run_row t0 = {0, (char *)"extract", TASK_QUEUED, 0, 0, 0, 0, NULL};
    struct task_run_row t1 = {1, (char *)"load", TASK_PENDING, 0, 0, 0, 0, NULL};
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
    assert_non_null(strstr(err.msg, "FOREIGN KEY constraint failed"));
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

static void test_fencing(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    struct exec_row ex;
    struct task_run_row t = {3, (char *)"build", TASK_RUNNING, 2, 0, 50, 0, NULL};
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
    struct task_run_row t = {0, (char *)"t", TASK_QUEUED, 0, 0, 0, 0, NULL};

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
    struct task_run_row t = {0, (char *)"t0", TASK_RUNNING, 1, 0, 0, 0, NULL};
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
    assert_int_equal(store_log_trim(f->st, ex.id, 0, 1, 2, &err), 0);
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
        assert_non_null(strstr(err.msg, "FOREIGN KEY"));
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
    assert_non_null(strstr(err.msg, "readonly"));
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
    struct task_run_row t = {0, (char *)"t", TASK_RUNNING, 1, 0, 0, 0, (char *)"e"};
    struct attempt_row a = {0, 1, ATTEMPT_RUNNING, (char *)"n", 1, 1, 1, 1, 0, -1, 0, NULL};
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
        struct task_run_row t = {i, names[i], TASK_QUEUED, 0, 0, 0, 0, NULL};
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
                                NULL};
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
                                 0, 1700000000000, 1700000000500,  NULL};
        struct attempt_row a = {i,        1,    ATTEMPT_SUCCEEDED, NULL,          1000 + i,
                                1000 + i, 5555, 1700000000000,     1700000000500, 0,
                                0,        NULL};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_and_migrates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_nested_and_sqlite_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_needs_migrated_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test(test_open_postgres_not_built),
        cmocka_unit_test_setup_teardown(test_sync_env, setup, teardown),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test_setup_teardown(test_workflow_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_execution_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_attempts_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_discards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_paging, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_query_plans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unfinished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readonly_beside_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_timing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
