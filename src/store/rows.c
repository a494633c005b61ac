/*
 * rows.c - one decoder per row type, shared by the backends.
 *
 * A backend runs its own statement and hands each result row to a decoder
 * through a struct store__row (store_backend.h): four readers over its
 * result (NULL test, integer, text, binary). The mapping of columns to
 * members, the "not set" values (NULL is 0, or -1 for an exit code) and the
 * checks of stored names and ids are written here once, so the backends
 * cannot drift apart in how they read what they both wrote.
 *
 * Messages name the database as the row's `where` says (SQLite: the file in
 * quotes; PostgreSQL: "database 'x' on host:port").
 */
#include "store_backend.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

#include "base/banned.h"

int64_t store__col_opt(const struct store__row *r, int col, int64_t none)
{
    if (r->is_null(r, col))
        return none;
    return r->i64(r, col);
}

int store__col_int(const struct store__row *r, int col, int none)
{
    int64_t v = store__col_opt(r, col, none);
    if (v < INT_MIN || v > INT_MAX)
        return none;
    return (int)v;
}

char *store__col_str(const struct store__row *r, int col)
{
    size_t len = 0;
    const char *t = r->text(r, col, &len);

    if (!t)
        return NULL;
    return xstrndup(t, len);
}

int store__col_id(const struct store__row *r, int col, char out[ID_MAX])
{
    size_t len = 0;
    const char *t = r->text(r, col, &len);

    out[0] = '\0';
    if (!t)
        return 0;
    if (len >= ID_MAX)
        return -1;
    memcpy(out, t, len);
    out[len] = '\0';
    return 0;
}

/* The text of a status column for a message ("NULL" when it is one). */
static const char *col_name(const struct store__row *r, int col)
{
    size_t len;
    const char *t = r->text(r, col, &len);
    return t ? t : "NULL";
}

const char *store__stream_name(enum log_stream stream)
{
    return stream == LOG_STREAM_STDERR ? "stderr" : "stdout";
}

int store__decode_exec(const struct store__row *r, struct exec_row *row, struct err *err)
{
    const char *status;

    memset(row, 0, sizeof(*row));
    if (r->is_null(r, 0) || store__col_id(r, 0, row->id) != 0)
        return err_set(err, ERR_STORE, "bad execution id in %s", r->where);
    status = col_name(r, 3);
    if (exec_status_parse(status, &row->status) != 0)
        return err_set(err, ERR_STORE, "unknown status '%s' of execution '%s' in %s", status,
                       row->id, r->where);
    row->workflow = store__col_str(r, 1);
    row->workflow_version = store__col_int(r, 2, 0);
    row->params = store__col_str(r, 4);
    if (!row->params)
        row->params = xstrdup("{}");
    row->created_at = store__col_opt(r, 5, 0);
    row->started_at = store__col_opt(r, 6, 0);
    row->finished_at = store__col_opt(r, 7, 0);
    row->error = store__col_str(r, 8);
    row->schedule_id = store__col_str(r, 9);
    row->scheduled_for = store__col_opt(r, 10, 0);
    row->owner = store__col_str(r, 11);
    row->parent_id = store__col_str(r, 12);
    row->parent_task_idx = store__col_int(r, 13, 0);
    row->depth = store__col_int(r, 14, 0);
    row->retried_at = store__col_opt(r, 15, 0);
    return 0;
}

int store__decode_task_run(const struct store__row *r, const char *exec_id, struct task_run_row *t,
                           struct err *err)
{
    const char *status = col_name(r, 2);

    memset(t, 0, sizeof(*t));
    t->idx = store__col_int(r, 0, 0);
    if (task_status_parse(status, &t->status) != 0)
        return err_set(err, ERR_STORE, "unknown status '%s' of task %d of %s in %s", status, t->idx,
                       exec_id, r->where);
    t->name = store__col_str(r, 1);
    t->attempt = store__col_int(r, 3, 0);
    t->available_at = store__col_opt(r, 4, 0);
    t->started_at = store__col_opt(r, 5, 0);
    t->finished_at = store__col_opt(r, 6, 0);
    t->error = store__col_str(r, 7);
    t->output = store__col_str(r, 8);
    t->instance = !r->is_null(r, 9);
    t->group_idx = t->instance ? store__col_int(r, 9, -1) : -1;
    t->item_index = store__col_int(r, 10, 0);
    t->item = store__col_str(r, 11);
    t->child_id = store__col_str(r, 12);
    t->queued_at = store__col_opt(r, 13, 0);
    return 0;
}

int store__decode_attempt(const struct store__row *r, const char *exec_id, struct attempt_row *a,
                          struct err *err)
{
    const char *status = col_name(r, 2);

    memset(a, 0, sizeof(*a));
    a->task_idx = store__col_int(r, 0, 0);
    a->number = store__col_int(r, 1, 0);
    if (attempt_status_parse(status, &a->status) != 0)
        return err_set(err, ERR_STORE, "unknown status '%s' of attempt %d of task %d of %s in %s",
                       status, a->number, a->task_idx, exec_id, r->where);
    a->node = store__col_str(r, 3);
    a->pid = store__col_int(r, 4, 0);
    a->pgid = store__col_int(r, 5, 0);
    a->proc_start = store__col_opt(r, 6, 0);
    a->started_at = store__col_opt(r, 7, 0);
    a->finished_at = store__col_opt(r, 8, 0);
    a->exit_code = store__col_int(r, 9, -1);
    a->signal = store__col_int(r, 10, 0);
    a->error = store__col_str(r, 11);
    a->queued_at = store__col_opt(r, 12, 0);
    return 0;
}

int store__decode_log_chunk(const struct store__row *r, const char *exec_id, struct log_chunk *c,
                            struct err *err)
{
    const char *stream = col_name(r, 3);
    size_t len = 0;

    memset(c, 0, sizeof(*c));
    c->task_idx = store__col_int(r, 0, 0);
    c->attempt = store__col_int(r, 1, 0);
    c->seq = store__col_int(r, 2, 0);
    if (!strcmp(stream, "stdout"))
        c->stream = LOG_STREAM_STDOUT;
    else if (!strcmp(stream, "stderr"))
        c->stream = LOG_STREAM_STDERR;
    else
        return err_set(err, ERR_STORE, "unknown log stream '%s' in %s for %s", stream, r->where,
                       exec_id);
    c->ts = store__col_opt(r, 4, 0);
    c->data = (char *)r->blob(r, 5, &len);
    if (!c->data)
        return err_set(err, ERR_STORE, "cannot decode log chunk %d of %s in %s", c->seq, exec_id,
                       r->where);
    c->len = len;
    return 0;
}

int store__decode_key(const struct store__row *r, struct key_row *k, struct err *err)
{
    size_t prefixlen = 0;
    const char *prefix;
    unsigned char *hash;
    size_t hashlen = 0;

    memset(k, 0, sizeof(*k));
    if (r->is_null(r, 0) || store__col_id(r, 0, k->id) != 0)
        return err_set(err, ERR_STORE, "bad key id in %s", r->where);
    prefix = r->text(r, 2, &prefixlen);
    if (!prefix || prefixlen >= KEY_PREFIX_MAX)
        return err_set(err, ERR_STORE, "bad prefix of key '%s' in %s", k->id, r->where);
    memcpy(k->prefix, prefix, prefixlen);
    k->prefix[prefixlen] = '\0';
    hash = r->is_null(r, 3) ? NULL : r->blob(r, 3, &hashlen);
    if (!hash || hashlen != KEY_HASH_LEN) {
        free(hash);
        return err_set(err, ERR_STORE, "bad hash of key '%s' in %s (%zu bytes, want %d)", k->id,
                       r->where, hashlen, KEY_HASH_LEN);
    }
    memcpy(k->hash, hash, KEY_HASH_LEN);
    free(hash);
    k->scopes = (unsigned)store__col_opt(r, 4, 0);
    k->created_at = store__col_opt(r, 5, 0);
    k->expires_at = store__col_opt(r, 6, 0);
    k->last_used_at = store__col_opt(r, 7, 0);
    k->revoked_at = store__col_opt(r, 8, 0);
    k->name = store__col_str(r, 1);
    return 0;
}

/* A hash column of exactly SESSION_HASH_LEN bytes into `out`; -1 otherwise. */
static int col_hash(const struct store__row *r, int col, unsigned char out[SESSION_HASH_LEN])
{
    size_t len = 0;
    unsigned char *b = r->is_null(r, col) ? NULL : r->blob(r, col, &len);
    int ok = b && len == SESSION_HASH_LEN;

    if (ok)
        memcpy(out, b, SESSION_HASH_LEN);
    free(b);
    return ok ? 0 : -1;
}

int store__decode_session(const struct store__row *r, struct session_row *s, struct err *err)
{
    size_t prefixlen = 0;
    const char *prefix;

    memset(s, 0, sizeof(*s));
    if (col_hash(r, 0, s->token_hash) || col_hash(r, 1, s->csrf_hash))
        return err_set(err, ERR_STORE, "bad hash of a session in %s", r->where);
    if (r->is_null(r, 2) || store__col_id(r, 2, s->key_id) != 0 || !s->key_id[0])
        return err_set(err, ERR_STORE, "bad key id of a session in %s", r->where);
    prefix = r->text(r, 3, &prefixlen);
    if (!prefix || !prefixlen || prefixlen >= KEY_PREFIX_MAX)
        return err_set(err, ERR_STORE, "bad key prefix of a session of key '%s' in %s", s->key_id,
                       r->where);
    memcpy(s->key_prefix, prefix, prefixlen);
    s->key_prefix[prefixlen] = '\0';
    s->created_at = store__col_opt(r, 4, 0);
    s->expires_at = store__col_opt(r, 5, 0);
    s->last_seen_at = store__col_opt(r, 6, 0);
    return 0;
}

int store__decode_schedule(const struct store__row *r, struct schedule_row *row, struct err *err)
{
    memset(row, 0, sizeof(*row));
    if (r->is_null(r, 0) || store__col_id(r, 0, row->id) != 0)
        return err_set(err, ERR_STORE, "bad schedule id in %s", r->where);
    row->workflow = store__col_str(r, 1);
    row->name = store__col_str(r, 2);
    row->spec_hash = store__col_str(r, 3);
    row->paused = store__col_opt(r, 4, 0) != 0;
    row->next_fire_at = store__col_opt(r, 5, 0);
    row->last_fire_at = store__col_opt(r, 6, 0);
    row->created_at = store__col_opt(r, 7, 0);
    row->updated_at = store__col_opt(r, 8, 0);
    row->from_api = store__col_opt(r, 9, 0) != 0;
    row->spec = store__col_str(r, 10);
    return 0;
}

int store__decode_fire(const struct store__row *r, struct fire_row *f, struct err *err)
{
    const char *status = col_name(r, 2);

    memset(f, 0, sizeof(*f));
    f->scheduled_for = store__col_opt(r, 1, 0);
    if (store__fire_status_parse(status, &f->status) != 0)
        return err_set(err, ERR_STORE, "unknown status '%s' of a fire due at %lld in %s", status,
                       (long long)f->scheduled_for, r->where);
    if (store__col_id(r, 3, f->execution_id) != 0)
        return err_set(err, ERR_STORE, "bad execution id of a fire due at %lld in %s",
                       (long long)f->scheduled_for, r->where);
    f->created_at = store__col_opt(r, 5, 0);
    f->schedule_id = store__col_str(r, 0);
    f->reason = store__col_str(r, 4);
    return 0;
}

int store__decode_group_count(const struct store__row *r, struct group_count *c, struct err *err)
{
    const char *status = col_name(r, 1);

    c->group_idx = store__col_int(r, 0, -1);
    c->n = store__col_opt(r, 2, 0);
    if (task_status_parse(status, &c->status) != 0)
        return err_set(err, ERR_STORE, "unknown task status '%s' in %s", status, r->where);
    return 0;
}

void store__decode_workflow(const struct store__row *r, struct workflow_row *w)
{
    w->name = store__col_str(r, 0);
    w->version = store__col_int(r, 1, 0);
    w->definition = store__col_str(r, 2);
    w->created_at = store__col_opt(r, 3, 0);
}

void store__decode_node(const struct store__row *r, struct node_row *n)
{
    memset(n, 0, sizeof(*n));
    n->id = store__col_str(r, 0);
    n->host = store__col_str(r, 1);
    n->pid = store__col_int(r, 2, 0);
    n->role = store__col_str(r, 3);
    n->version = store__col_str(r, 4);
    n->started_at = store__col_opt(r, 5, 0);
    n->heartbeat_at = store__col_opt(r, 6, 0);
    n->stopped_at = store__col_opt(r, 7, 0);
    n->executions = store__col_opt(r, 8, 0);
    n->db_now = store__col_opt(r, 9, 0);
}

int store__decode_notify(const struct store__row *r, struct notify_row *n, struct err *err)
{
    size_t len = 0;
    const char *status;
    static const char *const names[] = {"pending", "sending", "delivered", "failed"};

    memset(n, 0, sizeof(*n));
    if (store__col_id(r, 0, n->id) || store__col_id(r, 1, n->exec_id))
        return err_set(err, ERR_STORE, "bad notification id in %s", r->where);
    n->workflow = store__col_str(r, 2);
    n->event = store__col_str(r, 3);
    n->request = store__col_str(r, 4);
    n->body = store__col_str(r, 5);
    status = r->text(r, 6, &len);
    n->status = NOTIFY_FAILED;
    for (int i = 0; status && i < 4; i++)
        if (strlen(names[i]) == len && !strncmp(names[i], status, len))
            n->status = (enum notify_status)i;
    n->attempts = store__col_int(r, 7, 0);
    n->next_at = store__col_opt(r, 8, 0);
    n->claimed_by = store__col_str(r, 9);
    n->lease_until = store__col_opt(r, 10, 0);
    n->last_error = store__col_str(r, 11);
    n->response_code = store__col_int(r, 12, 0);
    n->created_at = store__col_opt(r, 13, 0);
    n->updated_at = store__col_opt(r, 14, 0);
    if (!n->workflow || !n->event || !n->request || !n->body)
        return err_set(err, ERR_STORE, "incomplete notification %s in %s", n->id, r->where);
    return 0;
}
