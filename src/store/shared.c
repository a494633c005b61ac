/*
 * shared.c - the store logic that sits above the backends: the migration
 * driver and the schema-version checks, the transactions a call opens when
 * its caller has none, and the list of executions with its status mask (one
 * query per status, merged here).
 *
 * Each is written once over the backend's primitives (store_backend.h:
 * exec_script, version_table_exists, version_record, migrate_lock,
 * begin_read, in_transaction, list_query, and begin/commit/rollback), so SQLite and
 * PostgreSQL migrate, refuse and merge the same way.
 */
#include "store_backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"

#include "base/banned.h"

static const char *where(struct store *st)
{
    return st->where_msg ? st->where_msg : st->be->name;
}

int store__read_begin(struct store *st, int *began, struct err *err)
{
    int rc;

    *began = 0;
    if (st->be->in_transaction(st))
        return 0;
    rc = st->be->begin_read(st, err);
    if (rc == 0)
        *began = 1;
    return rc;
}

void store__read_end(struct store *st, int began)
{
    /* Ending a read-only transaction cannot lose anything: roll it back. */
    if (began)
        st->be->rollback(st);
}

int store__write_begin(struct store *st, int *began, struct err *err)
{
    int rc;

    *began = 0;
    if (st->be->in_transaction(st))
        return 0;
    rc = st->be->begin(st, err);
    if (rc == 0)
        *began = 1;
    return rc;
}

int store__write_end(struct store *st, int began, int rc, struct err *err)
{
    if (!began)
        return rc;
    if (rc == 0)
        rc = st->be->commit(st, err);
    if (rc != 0)
        st->be->rollback(st);
    return rc;
}

static int version_check(int version, struct err *err)
{
    if (version > store__migration_count)
        return err_set(err, ERR_INVALID,
                       "database schema version %d is newer than this orch (%d); upgrade orch",
                       version, store__migration_count);
    return 0;
}

/* The backend's own part of step `version`, or NULL. */
static const char *migration_extra(const struct store_backend *be, int version)
{
    for (int i = 0; i < store__migration_extra_count; i++) {
        const struct store__migration_extra *x = &store__migration_extras[i];
        if (x->version == version)
            return be->dialect == STORE__POSTGRES ? x->postgres : x->sqlite;
    }
    return NULL;
}

/*
 * Apply the missing steps in one write transaction: all or nothing. Two
 * processes opening at once serialise on the backend's lock (SQLite's
 * BEGIN IMMEDIATE, PostgreSQL's advisory lock), and the second finds the
 * schema current.
 */
int store__migrate(struct store *st, struct err *err)
{
    static const char bootstrap[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                    " version INTEGER NOT NULL PRIMARY KEY,"
                                    " applied_at BIGINT NOT NULL)";
    const struct store_backend *be = st->be;
    char what[ERR_MSG_MAX];
    int version = 0;
    int rc;

    rc = be->begin(st, err);
    if (rc)
        return rc;
    if (be->migrate_lock)
        rc = be->migrate_lock(st, err);
    if (rc == 0) {
        snprintf(what, sizeof(what), "cannot create the schema table of %s", where(st));
        rc = be->exec_script(st, bootstrap, what, err);
    }
    if (rc == 0)
        rc = be->schema_version(st, &version, err);
    if (rc == 0)
        rc = version_check(version, err);
    for (int v = version; rc == 0 && v < store__migration_count; v++) {
        const char *extra = migration_extra(be, v + 1);
        snprintf(what, sizeof(what), "cannot migrate %s to schema version %d", where(st), v + 1);
        if (extra)
            rc = be->exec_script(st, extra, what, err);
        if (rc == 0)
            rc = be->exec_script(st, store__migrations[v], what, err);
        if (rc == 0)
            rc = be->version_record(st, v + 1, clock_now_ms(), err);
        if (rc == 0 && version > 0)
            log_info("store", "migrated %s to schema version %d", where(st), v + 1);
    }
    if (rc == 0)
        rc = be->commit(st, err);
    if (rc)
        be->rollback(st);
    return rc;
}

/* A reader cannot migrate: the database must be at this binary's version. */
int store__check_readonly_version(struct store *st, struct err *err)
{
    int version = 0;
    int has_table = 0;
    int rc = st->be->version_table_exists(st, &has_table, err);

    if (rc)
        return rc;
    if (has_table) {
        rc = st->be->schema_version(st, &version, err);
        if (rc)
            return rc;
    }
    rc = version_check(version, err);
    if (rc)
        return rc;
    if (version < store__migration_count)
        return err_set(err, ERR_INVALID,
                       "database %s is at schema version %d, older than this orch (%d); "
                       "open it read-write once to migrate it",
                       where(st), version, store__migration_count);
    return 0;
}

int store__open_finish(struct store *st, unsigned flags, int rc, struct store **out,
                       struct err *err)
{
    if (rc == 0)
        rc = (flags & STORE_READONLY) ? store__check_readonly_version(st, err)
                                      : store__migrate(st, err);
    if (rc) {
        st->be->close(st);
        return rc;
    }
    *out = st;
    return 0;
}

static int exec_row_cmp_desc(const void *a, const void *b)
{
    const struct exec_row *x = a;
    const struct exec_row *y = b;
    return strcmp(y->id, x->id);
}

unsigned store__list_status_mask(const struct exec_filter *f)
{
    unsigned all = (1u << EXEC_STATUS_COUNT) - 1;
    unsigned mask = f->status_mask & all;
    return mask == all ? 0 : mask;
}

#define HOUR_MS 3600000LL
/* The most rows of executions_hourly one estimate reads: 4096 is about four
 * weeks of hours with executions of all six statuses. */
#define ESTIMATE_ROWS 4096

static int64_t hour_of(int64_t ms)
{
    /* Floor, for instants before 1970 too. */
    return ms / HOUR_MS - (ms % HOUR_MS < 0);
}

/*
 * The executions created in [from, to), estimated from executions_hourly:
 * an hour the bounds cut counts in proportion to the part inside. Reads at
 * most ESTIMATE_ROWS rows; *out_capped says it stopped there (the estimate
 * is then a lower bound).
 */
static int created_estimate(struct store *st, int64_t from, int64_t to, double *out,
                            int *out_capped, struct err *err)
{
    struct exec_hour_count *rows = NULL;
    size_t n = 0;
    double est = 0;
    int rc;

    *out = 0;
    *out_capped = 0;
    if (to <= from)
        return 0;
    rc = st->be->hourly_read(st, hour_of(from), hour_of(to - 1), ESTIMATE_ROWS, &rows, &n, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        int64_t end = rows[i].hour > INT64_MAX - HOUR_MS ? INT64_MAX : rows[i].hour + HOUR_MS;
        int64_t lo = rows[i].hour > from ? rows[i].hour : from;
        int64_t hi = end < to ? end : to;
        if (hi > lo)
            est += (double)rows[i].n * (double)(hi - lo) / (double)HOUR_MS;
    }
    *out_capped = n >= ESTIMATE_ROWS;
    free(rows);
    *out = est;
    return 0;
}

int store__list_by_range(struct store *st, const struct exec_filter *f, int *out, struct err *err)
{
    double inside = 0, after = 0;
    int capped_in = 0, capped_after = 0;
    int rc;

    *out = 0;
    if (!f->since || !f->until || f->parent_id)
        return 0;
    rc = created_estimate(st, f->since, f->until, &inside, &capped_in, err);
    if (rc == 0 && !capped_in)
        rc = created_estimate(st, f->until, INT64_MAX, &after, &capped_after, err);
    /* A range of more hours than one estimate reads is wide: walk the ids.
     * Otherwise the range's reads against the walk's (a capped `after` is
     * only a lower bound of the walk's, so it wins no less). */
    if (rc == 0 && !capped_in)
        *out = inside <= after;
    return rc;
}

/*
 * One query per status in the mask, each using the (status, id) or
 * (workflow, status, id) index and stopping after `limit` rows; the pages are
 * then merged newest first and cut to `limit`. At most 6 x limit rows are
 * read, however many executions match; all in one read snapshot. A bounded
 * time range may read the executions_created_at range instead
 * (store__list_by_range): then each query reads the executions created in
 * the range and keeps the newest `limit` by id.
 */
int store__executions_list(struct store *st, const struct exec_filter *f, struct exec_list *out,
                           struct err *err)
{
    struct exec_list list = {NULL, 0};
    unsigned mask = store__list_status_mask(f);
    int nstatus = 0;
    int by_range = 0;
    size_t alloc = 0;
    int began = 0;
    int rc = 0;

    /* One statement sees one snapshot by itself: a transaction only when
     * several statements read (statuses, or the range's estimates first).
     * On PostgreSQL that is one round trip per list instead of three. */
    if ((mask & (mask - 1)) || (f->since && f->until && !f->parent_id))
        rc = store__read_begin(st, &began, err);
    if (rc)
        return rc;
    rc = store__list_by_range(st, f, &by_range, err);
    if (rc == 0 && !mask)
        rc = st->be->list_query(st, f, NULL, by_range, &list, &alloc, err);
    for (int i = 0; mask && i < EXEC_STATUS_COUNT && rc == 0; i++) {
        if (!(mask & (1u << i)))
            continue;
        rc = st->be->list_query(st, f, exec_status_name((enum exec_status)i), by_range, &list,
                                &alloc, err);
        nstatus++;
    }
    store__read_end(st, began);
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

/*
 * The execution, then its task runs and their attempts (with a page: the
 * page's task runs, their attempts and the counts per group), in one read
 * snapshot.
 */
int store__execution_detail(struct store *st, const char *id, const struct task_page *q,
                            struct exec_detail **out, struct err *err)
{
    const struct store_backend *be = st->be;
    struct exec_detail *d;
    int began;
    int rc;

    if (be->detail_read) {
        d = xcalloc(1, sizeof(*d));
        rc = be->detail_read(st, id, q, d, err);
        if (rc) {
            exec_detail_free(d);
            return rc;
        }
        *out = d;
        return 0;
    }
    rc = store__read_begin(st, &began, err);
    if (rc)
        return rc;
    d = xcalloc(1, sizeof(*d));
    rc = be->exec_read(st, id, d, err);
    if (rc == 0)
        rc = be->tasks_read(st, id, q, d, err);
    if (rc == 0)
        rc = be->attempts_read(st, id, q, d, err);
    if (rc == 0 && q)
        rc = be->group_counts(st, id, d, err);
    store__read_end(st, began);
    if (rc) {
        exec_detail_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

int store__workflow_get(struct store *st, const char *name, int version, char **out_definition,
                        int *out_version, int64_t *out_created_at, struct err *err)
{
    struct workflow_row w = {NULL, 0, NULL, 0};
    int deleted = 0;
    int found = 0;
    int rc = st->be->workflow_read(st, name, version, &w, &deleted, &found, err);

    if (rc)
        return rc;
    /* The newest version of a deleted workflow is deleted too: not found. */
    if (found && !version && deleted) {
        free(w.definition);
        found = 0;
    }
    if (!found) {
        if (version)
            return err_set(err, ERR_NOT_FOUND, "no version %d of workflow '%s'", version, name);
        return err_set(err, ERR_NOT_FOUND, "no workflow '%s'", name);
    }
    *out_version = w.version;
    *out_definition = w.definition;
    if (out_created_at)
        *out_created_at = w.created_at;
    return 0;
}

/* Atomic on its own: in the caller's transaction, or in one of its own. */
int store__workflow_put(struct store *st, const char *name, const char *definition, int64_t now,
                        int *out_version, struct err *err)
{
    struct workflow_row w = {NULL, 0, NULL, 0};
    int deleted = 0;
    int found = 0;
    int same;
    int began;
    int rc;

    rc = store__write_begin(st, &began, err);
    if (rc)
        return rc;
    rc = st->be->workflow_read(st, name, 0, &w, &deleted, &found, err);
    /* After a delete the same text comes back as a new version. */
    same = found && !deleted && w.definition && !strcmp(w.definition, definition);
    free(w.definition);
    if (!found)
        w.version = 0;
    if (rc == 0 && !same) {
        w.version++;
        rc = st->be->workflow_insert(st, name, w.version, definition, now, err);
    }
    rc = store__write_end(st, began, rc, err);
    if (rc == 0)
        *out_version = w.version;
    return rc;
}

int store__counts_get(struct store *st, struct store_counts *out, struct err *err)
{
    struct store_counts c = {0, 0, 0, 0};
    int began;
    int rc;

    rc = store__read_begin(st, &began, err);
    if (rc)
        return rc;
    rc = st->be->count_min(st, STORE__COUNT_QUEUED, &c.tasks_queued, &c.oldest_queued_since, err);
    if (rc == 0)
        rc = st->be->count_min(st, STORE__COUNT_RUNNING, &c.executions_running,
                               &c.oldest_running_started, err);
    store__read_end(st, began);
    if (rc == 0)
        *out = c;
    return rc;
}
