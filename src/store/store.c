/*
 * store.c - backend selection, argument checks and dispatch, status names,
 * and the release functions of rows and lists.
 *
 * Backends trust what arrives here: every public function checks its
 * arguments once, so SQLite and PostgreSQL report bad input the same way.
 */
#include "store_backend.h"

#include <ctype.h>
#include <limits.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/clock.h"
#include "base/xalloc.h"

#include "base/banned.h"

#define STORE_DB_FILE  "orch.db"
#define STORE_LIST_MAX 1000 /* largest page of store_executions_list() */
#define STORE_DIR_MODE 0700 /* data directories hold task output: owner only */
#define STORE_PATH_MAX 4096

/* --- status names --- */

/* These names are what the database stores: never rename one. */
static const char *const exec_status_names[EXEC_STATUS_COUNT] = {
    [EXEC_QUEUED] = "queued", [EXEC_RUNNING] = "running",     [EXEC_SUCCEEDED] = "succeeded",
    [EXEC_FAILED] = "failed", [EXEC_CANCELLED] = "cancelled", [EXEC_TIMED_OUT] = "timed_out",
};

static const char *const task_status_names[TASK_STATUS_COUNT] = {
    [TASK_PENDING] = "pending",     [TASK_QUEUED] = "queued",
    [TASK_RUNNING] = "running",     [TASK_SUCCEEDED] = "succeeded",
    [TASK_FAILED] = "failed",       [TASK_UPSTREAM_FAILED] = "upstream_failed",
    [TASK_SKIPPED] = "skipped",     [TASK_CANCELLED] = "cancelled",
    [TASK_TIMED_OUT] = "timed_out",
};

static const char *const attempt_status_names[ATTEMPT_STATUS_COUNT] = {
    [ATTEMPT_RUNNING] = "running",     [ATTEMPT_SUCCEEDED] = "succeeded",
    [ATTEMPT_FAILED] = "failed",       [ATTEMPT_TIMED_OUT] = "timed_out",
    [ATTEMPT_CANCELLED] = "cancelled", [ATTEMPT_LOST] = "lost",
};

/* These too are stored: never rename one. */
static const char *const fire_status_names[] = {
    [FIRE_FIRED] = "fired",
    [FIRE_SKIPPED] = "skipped",
    [FIRE_QUEUED] = "queued",
};

#define FIRE_STATUS_COUNT ((int)(sizeof(fire_status_names) / sizeof(fire_status_names[0])))

static int name_index(const char *const *names, int count, const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < count; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

const char *exec_status_name(enum exec_status s)
{
    if ((unsigned)s >= EXEC_STATUS_COUNT)
        return "invalid";
    return exec_status_names[s];
}

const char *task_status_name(enum task_status s)
{
    if ((unsigned)s >= TASK_STATUS_COUNT)
        return "invalid";
    return task_status_names[s];
}

const char *attempt_status_name(enum attempt_status s)
{
    if ((unsigned)s >= ATTEMPT_STATUS_COUNT)
        return "invalid";
    return attempt_status_names[s];
}

int exec_status_parse(const char *s, enum exec_status *out)
{
    int i = name_index(exec_status_names, EXEC_STATUS_COUNT, s);
    if (i < 0)
        return ERR_INVALID;
    *out = (enum exec_status)i;
    return 0;
}

int task_status_parse(const char *s, enum task_status *out)
{
    int i = name_index(task_status_names, TASK_STATUS_COUNT, s);
    if (i < 0)
        return ERR_INVALID;
    *out = (enum task_status)i;
    return 0;
}

int attempt_status_parse(const char *s, enum attempt_status *out)
{
    int i = name_index(attempt_status_names, ATTEMPT_STATUS_COUNT, s);
    if (i < 0)
        return ERR_INVALID;
    *out = (enum attempt_status)i;
    return 0;
}

const char *store__fire_status_name(enum fire_status s)
{
    if ((unsigned)s >= (unsigned)FIRE_STATUS_COUNT)
        return "invalid";
    return fire_status_names[s];
}

int store__fire_status_parse(const char *s, enum fire_status *out)
{
    int i = name_index(fire_status_names, FIRE_STATUS_COUNT, s);
    if (i < 0)
        return ERR_INVALID;
    *out = (enum fire_status)i;
    return 0;
}

int exec_status_is_final(enum exec_status s)
{
    return s == EXEC_SUCCEEDED || s == EXEC_FAILED || s == EXEC_CANCELLED || s == EXEC_TIMED_OUT;
}

int task_status_is_final(enum task_status s)
{
    return s == TASK_SUCCEEDED || s == TASK_FAILED || s == TASK_UPSTREAM_FAILED ||
           s == TASK_SKIPPED || s == TASK_CANCELLED || s == TASK_TIMED_OUT;
}

/* --- release functions --- */

void exec_row_release(struct exec_row *row)
{
    if (!row)
        return;
    free(row->workflow);
    free(row->params);
    free(row->error);
    free(row->schedule_id);
    free(row->owner);
    free(row->parent_id);
    row->parent_id = NULL;
    row->owner = NULL;
    row->workflow = NULL;
    row->params = NULL;
    row->error = NULL;
    row->schedule_id = NULL;
}

void store__task_run_row_release(struct task_run_row *row)
{
    free(row->name);
    free(row->error);
    free(row->output);
    free(row->item);
    free(row->child_id);
    row->name = NULL;
    row->error = NULL;
    row->output = NULL;
    row->item = NULL;
    row->child_id = NULL;
}

void store__attempt_row_release(struct attempt_row *row)
{
    free(row->node);
    free(row->error);
    row->node = NULL;
    row->error = NULL;
}

void store__log_chunk_release(struct log_chunk *chunk)
{
    free(chunk->data);
    chunk->data = NULL;
    chunk->len = 0;
}

void exec_detail_free(struct exec_detail *d)
{
    if (!d)
        return;
    exec_row_release(&d->exec);
    for (size_t i = 0; i < d->ntasks; i++)
        store__task_run_row_release(&d->tasks[i]);
    for (size_t i = 0; i < d->nattempts; i++)
        store__attempt_row_release(&d->attempts[i]);
    free(d->tasks);
    free(d->attempts);
    free(d->counts);
    free(d);
}

void exec_list_release(struct exec_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        exec_row_release(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

void log_list_release(struct log_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++)
        store__log_chunk_release(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

/* --- backend selection --- */

/*
 * A libpq connection string ("host=db dbname=orch") starts with one of
 * libpq's keywords followed by '='. Requiring a known keyword keeps a data
 * directory that merely contains '=' from being taken for one.
 */
static int is_pg_conninfo(const char *s)
{
    static const char *const keywords[] = {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "connect_timeout",
        "options",
        "application_name",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "service",
        "target_session_attrs",
        "client_encoding",
        "keepalives",
        "gssencmode",
        "channel_binding",
    };
    size_t n = 0;

    while (isspace((unsigned char)*s))
        s++;
    while (islower((unsigned char)s[n]) || s[n] == '_')
        n++;
    if (!n)
        return 0;
    {
        const char *p = s + n;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '=')
            return 0;
    }
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
        if (strlen(keywords[i]) == n && !strncmp(keywords[i], s, n))
            return 1;
    return 0;
}

static int is_postgres(const char *location)
{
    return !strncmp(location, "postgres://", 11) || !strncmp(location, "postgresql://", 13) ||
           is_pg_conninfo(location);
}

/* mkdir -p with STORE_DIR_MODE for every directory it creates. */
static int make_dirs(const char *dir, struct err *err)
{
    char path[STORE_PATH_MAX];
    size_t len = strlen(dir);
    struct stat sb;

    if (len >= sizeof(path))
        return err_set(err, ERR_INVALID, "data directory path is too long (%zu bytes)", len);
    memcpy(path, dir, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        if (path[i - 1] == '/')
            continue;
        path[i] = '\0';
        if (mkdir(path, STORE_DIR_MODE) != 0 && errno != EEXIST) {
            int e = errno;
            return err_set(err, ERR_IO, "cannot create directory '%s': %s", path, strerror(e));
        }
        path[i] = dir[i];
    }
    if (stat(dir, &sb) != 0) {
        int e = errno;
        return err_set(err, ERR_IO, "cannot use data directory '%s': %s", dir, strerror(e));
    }
    if (!S_ISDIR(sb.st_mode))
        return err_set(err, ERR_INVALID, "cannot use '%s' as a data directory: not a directory",
                       dir);
    return 0;
}

static int check_dir(const char *dir, struct err *err)
{
    struct stat sb;

    if (stat(dir, &sb) != 0) {
        int e = errno;
        if (e == ENOENT)
            return err_set(err, ERR_NOT_FOUND, "no data directory '%s'", dir);
        return err_set(err, ERR_IO, "cannot use data directory '%s': %s", dir, strerror(e));
    }
    if (!S_ISDIR(sb.st_mode))
        return err_set(err, ERR_INVALID, "cannot use '%s' as a data directory: not a directory",
                       dir);
    return 0;
}

int store_location_is_postgres(const char *location)
{
    return location && is_postgres(location);
}

int store_open(const char *location, unsigned flags, struct store **out, struct err *err)
{
    char *path = NULL;
    int rc;

    *out = NULL;
    if (!location || !*location)
        return err_set(err, ERR_INVALID, "no store location given");
    if (flags & ~(unsigned)(STORE_CREATE | STORE_READONLY))
        return err_set(err, ERR_INVALID, "unknown store open flags 0x%x", flags);
    if ((flags & STORE_CREATE) && (flags & STORE_READONLY))
        return err_set(err, ERR_INVALID, "cannot create a store opened read-only");
    /* The whole location goes to libpq: a URL or a key=value string. The
     * database must exist; STORE_CREATE creates the schema, not the database. */
    if (is_postgres(location))
        return store__postgres_backend.open(location, flags, out, err);

    if (!strncmp(location, "sqlite:", 7)) {
        if (!location[7])
            return err_set(err, ERR_INVALID, "no file name after 'sqlite:'");
        path = xstrdup(location + 7);
    } else {
        rc = (flags & STORE_CREATE) ? make_dirs(location, err) : check_dir(location, err);
        if (rc)
            goto out;
        path = xasprintf("%s/%s", location, STORE_DB_FILE);
    }
    rc = store__sqlite_backend.open(path, flags, out, err);
out:
    free(path);
    return rc;
}

void store_free(struct store *st)
{
    if (!st)
        return;
    st->be->close(st);
}

const char *store_backend_name(const struct store *st)
{
    return st->be->name;
}

int store_schema_latest(void)
{
    return store__migration_count;
}

int store_schema_version(struct store *st, int *out, struct err *err)
{
    return st->be->schema_version(st, out, err);
}

int store_begin(struct store *st, struct err *err)
{
    return st->be->begin(st, err);
}

int store_commit(struct store *st, struct err *err)
{
    return st->be->commit(st, err);
}

void store_rollback(struct store *st)
{
    st->be->rollback(st);
}

int store_read_begin(struct store *st, int *began, struct err *err)
{
    return store__read_begin(st, began, err);
}

/* --- argument checks --- */

static int check_str(const char *what, const char *s, struct err *err)
{
    if (!s || !*s)
        return err_set(err, ERR_INVALID, "no %s given", what);
    return 0;
}

static int check_exec_id(const char *id, struct err *err)
{
    if (!id || !*id)
        return err_set(err, ERR_INVALID, "no execution id given");
    if (strnlen(id, ID_MAX) >= ID_MAX)
        return err_set(err, ERR_INVALID, "execution id '%.40s...' is too long", id);
    return 0;
}

static int check_exec_row(const struct exec_row *row, struct err *err)
{
    int rc = check_exec_id(row->id, err);
    if (rc)
        return rc;
    if ((unsigned)row->status >= EXEC_STATUS_COUNT)
        return err_set(err, ERR_INVALID, "invalid status %d for execution '%s'", (int)row->status,
                       row->id);
    return 0;
}

static int check_task_run_row(const char *exec_id, const struct task_run_row *row, struct err *err)
{
    if (row->idx < 0)
        return err_set(err, ERR_INVALID, "invalid task index %d for %s", row->idx, exec_id);
    if ((unsigned)row->status >= TASK_STATUS_COUNT)
        return err_set(err, ERR_INVALID, "invalid status %d for task %d of %s", (int)row->status,
                       row->idx, exec_id);
    if (row->attempt < 0)
        return err_set(err, ERR_INVALID, "invalid attempt %d for task %d of %s", row->attempt,
                       row->idx, exec_id);
    return 0;
}

static int check_attempt_row(const char *exec_id, const struct attempt_row *row, struct err *err)
{
    if (row->task_idx < 0 || row->number < 1)
        return err_set(err, ERR_INVALID, "invalid attempt %d of task %d of %s", row->number,
                       row->task_idx, exec_id);
    if ((unsigned)row->status >= ATTEMPT_STATUS_COUNT)
        return err_set(err, ERR_INVALID, "invalid status %d for attempt %d of task %d of %s",
                       (int)row->status, row->number, row->task_idx, exec_id);
    return 0;
}

/* --- workflows --- */

int store_workflow_put(struct store *st, const char *name, const char *definition, int64_t now,
                       int *out_version, struct err *err)
{
    int rc = check_str("workflow name", name, err);
    if (rc)
        return rc;
    if (!definition)
        return err_set(err, ERR_INVALID, "no definition given for workflow '%s'", name);
    return store__workflow_put(st, name, definition, now, out_version, err);
}

int store_workflow_get(struct store *st, const char *name, int version, char **out_definition,
                       int *out_version, struct err *err)
{
    return store_workflow_get_at(st, name, version, out_definition, out_version, NULL, err);
}

int store_workflow_get_at(struct store *st, const char *name, int version, char **out_definition,
                          int *out_version, int64_t *out_created_at, struct err *err)
{
    int rc;

    *out_definition = NULL;
    rc = check_str("workflow name", name, err);
    if (rc)
        return rc;
    if (version < 0)
        return err_set(err, ERR_INVALID, "invalid version %d of workflow '%s'", version, name);
    return store__workflow_get(st, name, version, out_definition, out_version, out_created_at, err);
}

/* --- executions, task runs, attempts, logs --- */

int store_execution_insert(struct store *st, const struct exec_row *row, struct err *err)
{
    int rc = check_exec_row(row, err);
    if (rc)
        return rc;
    rc = check_str("workflow name", row->workflow, err);
    if (rc)
        return rc;
    return st->be->execution_insert(st, row, err);
}

int store_execution_update(struct store *st, const struct exec_row *row, struct err *err)
{
    int rc = check_exec_row(row, err);
    if (rc)
        return rc;
    return st->be->execution_update(st, row, err);
}

int store_task_run_insert(struct store *st, const char *exec_id, const struct task_run_row *row,
                          struct err *err)
{
    int rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    rc = check_task_run_row(exec_id, row, err);
    if (rc)
        return rc;
    if (!row->name || !*row->name)
        return err_set(err, ERR_INVALID, "no name for task %d of %s", row->idx, exec_id);
    return st->be->task_run_insert(st, exec_id, row, err);
}

int store_task_run_update(struct store *st, const char *exec_id, const struct task_run_row *row,
                          int expected_attempt, struct err *err)
{
    int rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    rc = check_task_run_row(exec_id, row, err);
    if (rc)
        return rc;
    return st->be->task_run_update(st, exec_id, row, expected_attempt, err);
}

int store_attempt_insert(struct store *st, const char *exec_id, const struct attempt_row *row,
                         struct err *err)
{
    int rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    rc = check_attempt_row(exec_id, row, err);
    if (rc)
        return rc;
    return st->be->attempt_insert(st, exec_id, row, err);
}

int store_attempt_update(struct store *st, const char *exec_id, const struct attempt_row *row,
                         struct err *err)
{
    int rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    rc = check_attempt_row(exec_id, row, err);
    if (rc)
        return rc;
    return st->be->attempt_update(st, exec_id, row, err);
}

int store_log_append(struct store *st, const char *exec_id, const struct log_chunk *chunk,
                     struct err *err)
{
    int rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    if (chunk->task_idx < 0 || chunk->attempt < 1 || chunk->seq < 0)
        return err_set(err, ERR_INVALID, "invalid log chunk %d of attempt %d of task %d of %s",
                       chunk->seq, chunk->attempt, chunk->task_idx, exec_id);
    if (chunk->stream != LOG_STREAM_STDOUT && chunk->stream != LOG_STREAM_STDERR)
        return err_set(err, ERR_INVALID, "invalid log stream %d for task %d of %s",
                       (int)chunk->stream, chunk->task_idx, exec_id);
    if (!chunk->data && chunk->len)
        return err_set(err, ERR_INVALID, "no data in log chunk of task %d of %s", chunk->task_idx,
                       exec_id);
    return st->be->log_append(st, exec_id, chunk, err);
}

int store_log_trim(struct store *st, const char *exec_id, int task_idx, int attempt, int below_seq,
                   int stream, struct err *err)
{
    int rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    return st->be->log_trim(st, exec_id, task_idx, attempt, below_seq, stream, err);
}

/* --- reads --- */

int store_execution_get(struct store *st, const char *id, struct exec_detail **out, struct err *err)
{
    int rc;

    *out = NULL;
    rc = check_exec_id(id, err);
    if (rc)
        return rc;
    return store__execution_detail(st, id, NULL, out, err);
}

int store_execution_page(struct store *st, const char *id, const struct task_page *q,
                         struct exec_detail **out, struct err *err)
{
    int rc;

    *out = NULL;
    rc = check_exec_id(id, err);
    if (rc)
        return rc;
    return store__execution_detail(st, id, q, out, err);
}

int store_executions_list(struct store *st, const struct exec_filter *filter, struct exec_list *out,
                          struct err *err)
{
    out->items = NULL;
    out->n = 0;
    if (filter->limit < 1 || filter->limit > STORE_LIST_MAX)
        return err_set(err, ERR_INVALID, "invalid page size %d (want 1 to %d)", filter->limit,
                       STORE_LIST_MAX);
    if (filter->status_mask >> EXEC_STATUS_COUNT)
        return err_set(err, ERR_INVALID, "invalid status mask 0x%x", filter->status_mask);
    return store__executions_list(st, filter, out, err);
}

int store_executions_unfinished(struct store *st, char ***out_ids, size_t *out_n, struct err *err)
{
    *out_ids = NULL;
    *out_n = 0;
    return st->be->executions_unfinished(st, out_ids, out_n, err);
}

int store_logs_get(struct store *st, const char *exec_id, int task_idx, struct log_list *out,
                   struct err *err)
{
    int rc;

    out->items = NULL;
    out->n = 0;
    rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    return st->be->logs_get(st, exec_id, task_idx < 0 ? -1 : task_idx, -1, -1, out, err);
}

int store_logs_follow(struct store *st, const char *exec_id, int task_idx, int attempt,
                      int after_seq, struct log_list *out, struct err *err)
{
    int rc;

    out->items = NULL;
    out->n = 0;
    rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    if (task_idx < 0 || attempt < 1)
        return err_set(err, ERR_INVALID, "invalid attempt %d of task %d of %s", attempt, task_idx,
                       exec_id);
    return st->be->logs_get(st, exec_id, task_idx, attempt, after_seq, out, err);
}

/* --- server additions --- */

/*
 * Idempotency keys come from a request header: bounded here so that one
 * client cannot store a megabyte per execution (Stripe's limit, too).
 */
#define STORE_IDEMPOTENCY_KEY_MAX 255
#define KEY_ID_PREFIX             "key_"

int store_ping(struct store *st, struct err *err)
{
    return st->be->ping(st, err);
}

void workflow_rows_free(struct workflow_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].name);
        free(rows[i].definition);
    }
    free(rows);
}

int store_workflows_list(struct store *st, struct workflow_row **out, size_t *out_n,
                         struct err *err)
{
    *out = NULL;
    *out_n = 0;
    return st->be->workflows_list(st, out, out_n, err);
}

int store_workflow_delete(struct store *st, const char *name, int64_t now, struct err *err)
{
    int rc = check_str("workflow name", name, err);
    if (rc)
        return rc;
    return st->be->workflow_delete(st, name, now, err);
}

static int check_idempotency_key(const char *workflow, const char *key, struct err *err)
{
    size_t len;
    int rc = check_str("workflow name", workflow, err);

    if (rc)
        return rc;
    rc = check_str("idempotency key", key, err);
    if (rc)
        return rc;
    len = strnlen(key, STORE_IDEMPOTENCY_KEY_MAX + 1);
    if (len > STORE_IDEMPOTENCY_KEY_MAX)
        return err_set(err, ERR_INVALID,
                       "idempotency key '%.40s...' is too long (at most %d bytes)", key,
                       STORE_IDEMPOTENCY_KEY_MAX);
    return 0;
}

int store_idempotency_get(struct store *st, const char *workflow, const char *key,
                          char out_exec_id[ID_MAX], struct err *err)
{
    int rc;

    out_exec_id[0] = '\0';
    rc = check_idempotency_key(workflow, key, err);
    if (rc)
        return rc;
    return st->be->idempotency_get(st, workflow, key, out_exec_id, err);
}

int store_idempotency_put(struct store *st, const char *workflow, const char *key,
                          const char *exec_id, int64_t now, struct err *err)
{
    int rc = check_idempotency_key(workflow, key, err);
    if (rc)
        return rc;
    rc = check_exec_id(exec_id, err);
    if (rc)
        return rc;
    return st->be->idempotency_put(st, workflow, key, exec_id, now, err);
}

/* --- notifications --- */

static const char *const notify_status_names[] = {"pending", "sending", "delivered", "failed"};

const char *notify_status_name(enum notify_status s)
{
    return (unsigned)s < 4 ? notify_status_names[s] : "unknown";
}

void notify_rows_free(struct notify_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].workflow);
        free(rows[i].event);
        free(rows[i].request);
        free(rows[i].body);
        free(rows[i].claimed_by);
        free(rows[i].last_error);
    }
    free(rows);
}

int store_notify_insert(struct store *st, const struct notify_row *row, struct err *err)
{
    int rc = check_exec_id(row->exec_id, err);
    if (rc)
        return rc;
    if (!row->id[0] || !row->workflow || !row->event || !row->request || !row->body)
        return err_set(err, ERR_INVALID, "incomplete notification row");
    return st->be->notify_insert(st, row, err);
}

int store_notify_claim(struct store *st, const char *node, int64_t now, int64_t lease_ms,
                       int take_own, int limit, struct notify_row **out, size_t *out_n,
                       struct err *err)
{
    *out = NULL;
    *out_n = 0;
    if (!node || !*node || limit < 1 || lease_ms < 1)
        return err_set(err, ERR_INVALID, "bad notification claim");
    return st->be->notify_claim(st, node, now, lease_ms, take_own, limit, out, out_n, err);
}

int store_notify_settle(struct store *st, const struct notify_row *row, const char *node,
                        struct err *err)
{
    if (!node || !*node || !row->id[0] || row->status == NOTIFY_SENDING)
        return err_set(err, ERR_INVALID, "bad notification outcome");
    return st->be->notify_settle(st, row, node, err);
}

int store_notify_next(struct store *st, int64_t *out, struct err *err)
{
    *out = 0;
    return st->be->notify_next(st, out, err);
}

int store_notify_list(struct store *st, const char *exec_id, struct notify_row **out,
                      size_t *out_n, struct err *err)
{
    int rc = check_exec_id(exec_id, err);

    *out = NULL;
    *out_n = 0;
    if (rc)
        return rc;
    return st->be->notify_list(st, exec_id, out, out_n, err);
}

/* --- API keys --- */

void key_row_release(struct key_row *row)
{
    if (!row)
        return;
    free(row->name);
    row->name = NULL;
}

void key_rows_free(struct key_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        key_row_release(&rows[i]);
    free(rows);
}

static int check_key_id(const char *id, struct err *err)
{
    if (!id || !*id)
        return err_set(err, ERR_INVALID, "no key id given");
    if (strnlen(id, ID_MAX) >= ID_MAX)
        return err_set(err, ERR_INVALID, "key id '%.40s...' is too long", id);
    return 0;
}

static int check_key_prefix(const char *prefix, size_t max, struct err *err)
{
    if (!prefix || !*prefix)
        return err_set(err, ERR_INVALID, "no key prefix given");
    if (strnlen(prefix, max) >= max)
        return err_set(err, ERR_INVALID, "key prefix '%.*s...' is too long (at most %d bytes)",
                       (int)(max - 1), prefix, KEY_PREFIX_MAX - 1);
    return 0;
}

static int check_key_row(const struct key_row *row, struct err *err)
{
    const unsigned all = KEY_SCOPE_READ | KEY_SCOPE_WRITE | KEY_SCOPE_ADMIN;
    int rc = check_key_id(row->id, err);

    if (rc)
        return rc;
    if (strncmp(row->id, KEY_ID_PREFIX, strlen(KEY_ID_PREFIX)) != 0)
        return err_set(err, ERR_INVALID, "key id '%s' does not start with '%s'", row->id,
                       KEY_ID_PREFIX);
    if (!row->name || !*row->name)
        return err_set(err, ERR_INVALID, "no name for key '%s'", row->id);
    /* row->prefix is an array: its terminator must be inside it. */
    rc = check_key_prefix(row->prefix, sizeof(row->prefix), err);
    if (rc)
        return rc;
    if (row->scopes & ~all)
        return err_set(err, ERR_INVALID, "invalid scopes 0x%x for key '%s'", row->scopes, row->id);
    return 0;
}

int store_key_insert(struct store *st, const struct key_row *row, struct err *err)
{
    int rc = check_key_row(row, err);
    if (rc)
        return rc;
    return st->be->key_insert(st, row, err);
}

int store_key_get_by_prefix(struct store *st, const char *prefix, struct key_row *out,
                            struct err *err)
{
    int rc;

    memset(out, 0, sizeof(*out));
    if (!prefix)
        return err_set(err, ERR_INVALID, "no key prefix given");
    /*
     * The prefix is cut from whatever a client presented: one that no key
     * can have (insert refuses it) is simply not found, like any other.
     */
    rc = check_key_prefix(prefix, KEY_PREFIX_MAX, NULL);
    if (rc)
        return err_set(err, ERR_NOT_FOUND, "no key with prefix '%.*s'", KEY_PREFIX_MAX, prefix);
    return st->be->key_get_by_prefix(st, prefix, out, err);
}

int store_keys_list(struct store *st, struct key_row **out, size_t *out_n, struct err *err)
{
    *out = NULL;
    *out_n = 0;
    return st->be->keys_list(st, out, out_n, err);
}

int store_key_revoke(struct store *st, const char *id_or_name, int64_t now, struct err *err)
{
    int looks_like_id;
    int rc = check_str("key id or name", id_or_name, err);

    if (rc)
        return rc;
    looks_like_id = !strncmp(id_or_name, KEY_ID_PREFIX, strlen(KEY_ID_PREFIX)) &&
                    strnlen(id_or_name, ID_MAX) < ID_MAX;
    return st->be->key_revoke(st, id_or_name, looks_like_id, now, err);
}

int store_key_touch(struct store *st, const char *id, int64_t now, struct err *err)
{
    int rc = check_key_id(id, err);
    if (rc)
        return rc;
    return st->be->key_touch(st, id, now, err);
}

/* --- web UI sessions --- */

static int check_session_row(const struct session_row *row, struct err *err)
{
    int rc = check_key_id(row->key_id, err);

    if (rc)
        return rc;
    rc = check_key_prefix(row->key_prefix, sizeof(row->key_prefix), err);
    if (rc)
        return rc;
    if (row->expires_at <= row->created_at)
        return err_set(err, ERR_INVALID, "a session of key '%s' that ends before it starts",
                       row->key_id);
    return 0;
}

int store_session_insert(struct store *st, const struct session_row *row, struct err *err)
{
    int rc = check_session_row(row, err);
    if (rc)
        return rc;
    return st->be->session_insert(st, row, err);
}

int store_session_get(struct store *st, const unsigned char token_hash[SESSION_HASH_LEN],
                      struct session_row *out, struct err *err)
{
    memset(out, 0, sizeof(*out));
    return st->be->session_get(st, token_hash, out, err);
}

int store_session_touch(struct store *st, const unsigned char token_hash[SESSION_HASH_LEN],
                        int64_t now, struct err *err)
{
    return st->be->session_touch(st, token_hash, now, err);
}

int store_session_delete(struct store *st, const unsigned char token_hash[SESSION_HASH_LEN],
                         struct err *err)
{
    return st->be->session_delete(st, token_hash, err);
}

int store_sessions_purge(struct store *st, int64_t now, int *out_deleted, struct err *err)
{
    *out_deleted = 0;
    return st->be->sessions_purge(st, now, out_deleted, err);
}

/* --- retention and visibility --- */

int store_executions_purge(struct store *st, const char *workflow, const char *const *except,
                           size_t nexcept, int64_t before, int batch, int *out_deleted,
                           struct err *err)
{
    *out_deleted = 0;
    if (batch < 1)
        return err_set(err, ERR_INVALID, "invalid purge batch size %d", batch);
    if (workflow && !*workflow)
        return err_set(err, ERR_INVALID, "no workflow name given");
    if (workflow && nexcept)
        return err_set(err, ERR_INVALID,
                       "cannot purge workflow '%s' and exclude other workflows at once", workflow);
    if (nexcept > STORE_PURGE_EXCEPT_MAX)
        return err_set(err, ERR_INVALID,
                       "too many workflows to keep out of the purge (%zu, at most %d)", nexcept,
                       STORE_PURGE_EXCEPT_MAX);
    if (nexcept && !except)
        return err_set(err, ERR_INVALID, "no list of workflows to keep out of the purge");
    for (size_t i = 0; i < nexcept; i++)
        if (!except[i] || !*except[i])
            return err_set(err, ERR_INVALID, "no name for workflow %zu to keep out of the purge",
                           i);
    return st->be->executions_purge(st, workflow, nexcept ? except : NULL, nexcept, before, batch,
                                    out_deleted, err);
}

int store_counts_get(struct store *st, struct store_counts *out, struct err *err)
{
    memset(out, 0, sizeof(*out));
    return store__counts_get(st, out, err);
}

/* --- schedules --- */

void schedule_row_release(struct schedule_row *row)
{
    if (!row)
        return;
    free(row->workflow);
    free(row->name);
    free(row->spec_hash);
    free(row->spec);
    row->workflow = NULL;
    row->name = NULL;
    row->spec_hash = NULL;
    row->spec = NULL;
}

void schedule_rows_free(struct schedule_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++)
        schedule_row_release(&rows[i]);
    free(rows);
}

void fire_rows_free(struct fire_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].schedule_id);
        free(rows[i].reason);
    }
    free(rows);
}

static int check_schedule_id(const char *id, struct err *err)
{
    if (!id || !*id)
        return err_set(err, ERR_INVALID, "no schedule id given");
    if (strnlen(id, ID_MAX) >= ID_MAX)
        return err_set(err, ERR_INVALID, "schedule id '%.40s...' is too long", id);
    return 0;
}

static int check_paused(const char *id, int paused, struct err *err)
{
    if (paused != 0 && paused != 1)
        return err_set(err, ERR_INVALID, "invalid paused value %d for schedule '%s' (want 0 or 1)",
                       paused, id);
    return 0;
}

int store_schedules_list(struct store *st, struct schedule_row **out, size_t *out_n,
                         struct err *err)
{
    *out = NULL;
    *out_n = 0;
    return st->be->schedules_list(st, out, out_n, err);
}

int store_schedule_get(struct store *st, const char *id, struct schedule_row *out, struct err *err)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = check_schedule_id(id, err);
    if (rc)
        return rc;
    return st->be->schedule_get(st, id, out, err);
}

int store_schedule_upsert(struct store *st, const struct schedule_row *row, struct err *err)
{
    /* row->id is an array: its terminator must be inside it. */
    int rc = check_schedule_id(row->id, err);

    if (rc)
        return rc;
    rc = check_str("workflow name", row->workflow, err);
    if (rc)
        return rc;
    if (!row->name || !*row->name)
        return err_set(err, ERR_INVALID, "no name for schedule '%s' of '%s'", row->id,
                       row->workflow);
    /* An empty spec hash is allowed: "not computed yet" (a schedule the API just
     * created or changed; the engine computes its next fire and the hash). */
    if (!row->spec_hash)
        return err_set(err, ERR_INVALID, "no spec hash for schedule '%s' of '%s'", row->name,
                       row->workflow);
    rc = check_paused(row->id, row->paused, err);
    if (rc)
        return rc;
    return st->be->schedule_upsert(st, row, err);
}

int store_schedules_prune(struct store *st, const char *workflow, const char *const *names,
                          size_t nnames, struct err *err)
{
    int rc = check_str("workflow name", workflow, err);

    if (rc)
        return rc;
    if (nnames > STORE_SCHEDULES_PRUNE_MAX)
        return err_set(err, ERR_INVALID, "too many schedule names to keep (%zu, at most %d)",
                       nnames, STORE_SCHEDULES_PRUNE_MAX);
    if (nnames && !names)
        return err_set(err, ERR_INVALID, "no list of schedule names to keep");
    for (size_t i = 0; i < nnames; i++)
        if (!names[i] || !*names[i])
            return err_set(err, ERR_INVALID, "no name for schedule %zu to keep of '%s'", i,
                           workflow);
    return st->be->schedules_prune(st, workflow, nnames ? names : NULL, nnames, err);
}

int store_schedule_update_state(struct store *st, const struct schedule_row *row,
                                struct err *err)
{
    int rc = check_schedule_id(row->id, err);

    if (rc)
        return rc;
    if (!row->spec_hash)
        return err_set(err, ERR_INVALID, "no spec hash for schedule '%s'", row->id);
    return st->be->schedule_update_state(st, row, err);
}

int store_schedule_delete(struct store *st, const char *id, struct err *err)
{
    int rc = check_schedule_id(id, err);

    if (rc)
        return rc;
    return st->be->schedule_delete(st, id, err);
}

int store_schedule_set_paused(struct store *st, const char *id, int paused, int64_t now,
                              struct err *err)
{
    int rc = check_schedule_id(id, err);

    if (rc)
        return rc;
    rc = check_paused(id, paused, err);
    if (rc)
        return rc;
    return st->be->schedule_set_paused(st, id, paused, now, err);
}

int store_fire_insert(struct store *st, const struct fire_row *row, struct err *err)
{
    int rc = check_schedule_id(row->schedule_id, err);

    if (rc)
        return rc;
    if (row->scheduled_for <= 0)
        return err_set(err, ERR_INVALID, "invalid due time %lld for a fire of schedule '%s'",
                       (long long)row->scheduled_for, row->schedule_id);
    if ((unsigned)row->status >= (unsigned)FIRE_STATUS_COUNT)
        return err_set(err, ERR_INVALID, "invalid status %d for a fire of schedule '%s'",
                       (int)row->status, row->schedule_id);
    if (strnlen(row->execution_id, ID_MAX) >= ID_MAX)
        return err_set(err, ERR_INVALID, "execution id '%.40s...' is too long", row->execution_id);
    return st->be->fire_insert(st, row, err);
}

int store_fire_exists(struct store *st, const char *schedule_id, int64_t scheduled_for, int *out,
                      struct err *err)
{
    int rc;

    *out = 0;
    rc = check_schedule_id(schedule_id, err);
    if (rc)
        return rc;
    return st->be->fire_exists(st, schedule_id, scheduled_for, out, err);
}

int store_fires_list(struct store *st, const char *schedule_id, int limit, struct fire_row **out,
                     size_t *out_n, struct err *err)
{
    int rc;

    *out = NULL;
    *out_n = 0;
    rc = check_schedule_id(schedule_id, err);
    if (rc)
        return rc;
    if (limit < 1 || limit > STORE_LIST_MAX)
        return err_set(err, ERR_INVALID, "invalid page size %d (want 1 to %d)", limit,
                       STORE_LIST_MAX);
    return st->be->fires_list(st, schedule_id, limit, out, out_n, err);
}

int store_fire_get(struct store *st, const char *schedule_id, int64_t scheduled_for,
                   struct fire_row *out, struct err *err)
{
    int rc;

    memset(out, 0, sizeof(*out));
    rc = check_schedule_id(schedule_id, err);
    if (rc)
        return rc;
    return st->be->fire_get(st, schedule_id, scheduled_for, out, err);
}

void fire_row_release(struct fire_row *row)
{
    free(row->schedule_id);
    free(row->reason);
    memset(row, 0, sizeof(*row));
}

int store_fires_queued(struct store *st, const char *schedule_id, int limit, int64_t **out,
                       size_t *out_n, struct err *err)
{
    int rc;

    *out = NULL;
    *out_n = 0;
    rc = check_schedule_id(schedule_id, err);
    if (rc)
        return rc;
    if (limit < 1 || limit > 1000000)
        return err_set(err, ERR_INVALID, "invalid limit %d of queued fires", limit);
    return st->be->fires_queued(st, schedule_id, limit, out, out_n, err);
}

/* --- nodes and scale-out --- */

void node_rows_free(struct node_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].host);
        free(rows[i].role);
        free(rows[i].version);
    }
    free(rows);
}

int store_node_register(struct store *st, const struct node_row *row, int64_t lease_ms,
                        struct err *err)
{
    return st->be->node_register(st, row, lease_ms, clock_now_fresh_ms(), err);
}

int store_node_heartbeat(struct store *st, const char *id, int64_t lease_ms,
                         struct node_beat *out, struct err *err)
{
    struct node_beat ignored;

    if (!out)
        out = &ignored;
    memset(out, 0, sizeof(*out));
    return st->be->node_heartbeat(st, id, lease_ms, clock_now_fresh_ms(), out, err);
}

int store_node_stop(struct store *st, const char *id, struct err *err)
{
    return st->be->node_stop(st, id, err);
}

int store_nodes_list(struct store *st, struct node_row **out, size_t *out_n, struct err *err)
{
    *out = NULL;
    *out_n = 0;
    return st->be->nodes_list(st, out, out_n, err);
}

int store_executions_hourly(struct store *st, int64_t since, struct exec_hour_count **out,
                            size_t *out_n, struct err *err)
{
    int64_t hour = since / 3600000 - (since % 3600000 < 0);

    *out = NULL;
    *out_n = 0;
    /* A read of executions_hourly (kept by triggers): at most hours x
     * statuses rows, however many executions those hours hold. */
    return st->be->hourly_read(st, hour, INT64_MAX / 3600000, INT_MAX, out, out_n, err);
}

static int one_node(struct store *st, struct err *err)
{
    return err_set(err, ERR_INVALID,
                   "the %s store serves one node: claims, fences, notifications and leases "
                   "need PostgreSQL",
                   st->be->name);
}

int store_executions_claim(struct store *st, const char *node, int limit, int64_t lease_ms,
                           unsigned which, char ***out_ids, size_t *out_n, struct err *err)
{
    *out_ids = NULL;
    *out_n = 0;
    if (!st->be->executions_claim)
        return one_node(st, err);
    if (limit < 1)
        return 0;
    return st->be->executions_claim(st, node, limit, lease_ms, which, out_ids, out_n, err);
}

int store_execution_claim_one(struct store *st, const char *id, const char *node,
                              int64_t lease_ms, struct err *err)
{
    if (!st->be->execution_claim_one)
        return one_node(st, err);
    return st->be->execution_claim_one(st, id, node, lease_ms, err);
}

int store_executions_fence(struct store *st, const char *node, char *const *ids, size_t n,
                           char ***out_lost, size_t *out_nlost, struct err *err)
{
    *out_lost = NULL;
    *out_nlost = 0;
    if (!st->be->executions_fence)
        return one_node(st, err);
    return st->be->executions_fence(st, node, ids, n, out_lost, out_nlost, err);
}

int store_execution_request_cancel(struct store *st, const char *id, int64_t now,
                                   struct err *err)
{
    if (!st->be->execution_request_cancel)
        return one_node(st, err);
    return st->be->execution_request_cancel(st, id, now, err);
}

int store_cancel_requests(struct store *st, const char *node, char ***out_ids, size_t *out_n,
                          struct err *err)
{
    *out_ids = NULL;
    *out_n = 0;
    if (!st->be->cancel_requests)
        return one_node(st, err);
    return st->be->cancel_requests(st, node, out_ids, out_n, err);
}

int store_listen(struct store *st, const char *channel, struct err *err)
{
    if (!st->be->listen)
        return one_node(st, err);
    return st->be->listen(st, channel, err);
}

int store_notify(struct store *st, const char *channel, const char *payload, struct err *err)
{
    if (!st->be->notify)
        return 0; /* one node: nobody else to wake */
    return st->be->notify(st, channel, payload, err);
}

int store_listen_fd(struct store *st)
{
    return st->be->listen_fd ? st->be->listen_fd(st) : -1;
}

int store_notifications(struct store *st,
                        void (*fn)(void *arg, const char *channel, const char *payload), void *arg,
                        struct err *err)
{
    if (!st->be->notifications)
        return 0;
    return st->be->notifications(st, fn, arg, err);
}

int store_lease_acquire(struct store *st, const char *name, const char *node, int64_t lease_ms,
                        int *out_held, struct err *err)
{
    *out_held = 0;
    if (!st->be->lease_acquire)
        return one_node(st, err);
    return st->be->lease_acquire(st, name, node, lease_ms, out_held, err);
}

int store_lease_release(struct store *st, const char *name, const char *node, struct err *err)
{
    if (!st->be->lease_release)
        return 0;
    return st->be->lease_release(st, name, node, err);
}

int store_connected(struct store *st)
{
    return st->be->connected ? st->be->connected(st) : 1;
}

int store_reconnect(struct store *st, struct err *err)
{
    return st->be->reconnect ? st->be->reconnect(st, err) : 0;
}

void store_set_pipelining(struct store *st, int on)
{
    if (st->be->set_pipelining)
        st->be->set_pipelining(st, on);
}

const char *store_where(struct store *st)
{
    return st->be->where ? st->be->where(st) : st->be->name;
}

int store_durability(struct store *st, const char **out, struct err *err)
{
    *out = NULL;
    return st->be->durability ? st->be->durability(st, out, err) : 0;
}

/* --- task offers --- */

void offer_rows_free(struct offer_row *rows, size_t n)
{
    if (!rows)
        return;
    for (size_t i = 0; i < n; i++) {
        free(rows[i].owner);
        free(rows[i].runner_node);
        free(rows[i].spec);
        free(rows[i].runner);
        free(rows[i].status);
        free(rows[i].error);
        free(rows[i].output);
    }
    free(rows);
}

#define OFFER_CALL(fn, ...)                                                                        \
    do {                                                                                           \
        if (!st->be->fn)                                                                           \
            return one_node(st, err);                                                              \
        return st->be->fn(st, __VA_ARGS__);                                                        \
    } while (0)

int store_offer_put(struct store *st, const struct offer_row *o, struct err *err)
{
    OFFER_CALL(offer_put, o, err);
}

int store_offer_delete(struct store *st, const char *exec_id, int task_idx, int attempt,
                       struct err *err)
{
    OFFER_CALL(offer_delete, exec_id, task_idx, attempt, err);
}

int store_offer_cancel(struct store *st, const char *exec_id, int task_idx, int attempt,
                       struct err *err)
{
    OFFER_CALL(offer_cancel, exec_id, task_idx, attempt, err);
}

int store_offers_claim(struct store *st, const char *runner, int limit, struct offer_row **out,
                       size_t *out_n, struct err *err)
{
    *out = NULL;
    *out_n = 0;
    if (limit < 1)
        return 0;
    OFFER_CALL(offers_claim, runner, limit, out, out_n, err);
}

int store_offer_report(struct store *st, const struct offer_row *o, struct err *err)
{
    OFFER_CALL(offer_report, o, err);
}

int store_offers_owned(struct store *st, const char *owner, int64_t lease_ms,
                       struct offer_row **out, size_t *out_n, struct err *err)
{
    *out = NULL;
    *out_n = 0;
    OFFER_CALL(offers_owned, owner, lease_ms, out, out_n, err);
}

int store_offers_cancelled(struct store *st, const char *runner, struct offer_row **out,
                           size_t *out_n, struct err *err)
{
    *out = NULL;
    *out_n = 0;
    OFFER_CALL(offers_cancelled, runner, out, out_n, err);
}

int store_offers_adopt(struct store *st, const char *exec_id, const char *owner,
                       struct offer_row **out, size_t *out_n, struct err *err)
{
    *out = NULL;
    *out_n = 0;
    OFFER_CALL(offers_adopt, exec_id, owner, out, out_n, err);
}

/* --- diagnostics --- */

int store_diag(struct store *st, enum store_diag which, const int64_t *params, size_t nparams,
               struct store_diag_rows *out, struct err *err)
{
    memset(out, 0, sizeof(*out));
    if ((int)which < 0 || which >= STORE_DIAG_COUNT || nparams > 4 || (nparams && !params))
        return err_set(err, ERR_INVALID, "no such diagnostic query");
    return st->be->diag(st, which, params, nparams, out, err);
}

const char *store_diag_cell(const struct store_diag_rows *r, size_t row, size_t col)
{
    if (!r->cells || row >= r->nrows || col >= r->ncols)
        return NULL;
    return r->cells[row * r->ncols + col];
}

void store_diag_rows_release(struct store_diag_rows *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->cells && i < r->nrows * r->ncols; i++)
        free(r->cells[i]);
    free(r->cells);
    memset(r, 0, sizeof(*r));
}
