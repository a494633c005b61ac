#include "view.h"

#include <string.h>

#include "base/clock.h"
#include "base/strbuf.h"
#include "dag/dag.h"

#include "base/banned.h"

json_t *view_instant(int64_t ms)
{
    char buf[CLOCK_ISO_MAX];
    if (!ms)
        return json_null();
    return json_string(clock_iso8601(ms, buf));
}

json_t *view_text(const char *s, size_t len)
{
    struct strbuf sb = STRBUF_INIT;
    json_t *j;
    strbuf_add_utf8(&sb, s, len);
    j = json_stringn(sb.buf, sb.len);
    strbuf_release(&sb);
    return j ? j : json_string("");
}

static json_t *str_or_null(const char *s)
{
    return s ? view_text(s, strlen(s)) : json_null();
}

static json_t *duration(int64_t start, int64_t end)
{
    if (!start || !end || end < start)
        return json_null();
    return json_integer(end - start);
}

json_t *view_exec_summary(const struct exec_row *row)
{
    json_t *params = NULL;
    json_t *o = json_object();

    if (row->params)
        params = json_loads(row->params, 0, NULL);
    json_object_set_new(o, "id", json_string(row->id));
    json_object_set_new(o, "workflow", json_string(row->workflow ? row->workflow : ""));
    json_object_set_new(o, "workflowVersion", json_integer(row->workflow_version));
    json_object_set_new(o, "status", json_string(exec_status_name(row->status)));
    json_object_set_new(o, "params", params ? params : json_object());
    json_object_set_new(o, "createdAt", view_instant(row->created_at));
    json_object_set_new(o, "startedAt", view_instant(row->started_at));
    json_object_set_new(o, "finishedAt", view_instant(row->finished_at));
    json_object_set_new(o, "durationMs", duration(row->started_at, row->finished_at));
    json_object_set_new(o, "retriedAt", view_instant(row->retried_at));
    json_object_set_new(o, "error", str_or_null(row->error));
    json_object_set_new(o, "scheduleId", str_or_null(row->schedule_id));
    json_object_set_new(o, "scheduledFor", view_instant(row->scheduled_for));
    json_object_set_new(o, "parentId", str_or_null(row->parent_id));
    return o;
}

static json_t *view_attempt(const struct attempt_row *a)
{
    json_t *o = json_object();
    json_object_set_new(o, "number", json_integer(a->number));
    json_object_set_new(o, "status", json_string(attempt_status_name(a->status)));
    json_object_set_new(o, "queuedAt", view_instant(a->queued_at));
    json_object_set_new(o, "startedAt", view_instant(a->started_at));
    json_object_set_new(o, "finishedAt", view_instant(a->finished_at));
    json_object_set_new(o, "durationMs", duration(a->started_at, a->finished_at));
    json_object_set_new(o, "exitCode", a->exit_code >= 0 ? json_integer(a->exit_code) : json_null());
    json_object_set_new(o, "signal", a->signal ? json_integer(a->signal) : json_null());
    json_object_set_new(o, "error", str_or_null(a->error));
    json_object_set_new(o, "node", str_or_null(a->node));
    json_object_set_new(o, "pid", a->pid ? json_integer(a->pid) : json_null());
    return o;
}

/* The first attempt of task index `idx` (attempts are ordered by (task_idx, number)). */
static size_t first_attempt(const struct exec_detail *d, int idx)
{
    size_t lo = 0, hi = d->nattempts;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (d->attempts[mid].task_idx < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The name of task run `idx` in `names` (ordered by idx), or NULL. */
static const char *task_name_of(const struct exec_detail *names, int idx)
{
    size_t lo = 0, hi = names->ntasks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (names->tasks[mid].idx < idx)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < names->ntasks && names->tasks[lo].idx == idx ? names->tasks[lo].name : NULL;
}

json_t *view_task_run(const struct exec_detail *d, size_t i, const struct exec_detail *names)
{
    const struct task_run_row *t = &d->tasks[i];
    json_t *to = json_object();
    json_t *atts = json_array();

    json_object_set_new(to, "name", json_string(t->name ? t->name : ""));
    json_object_set_new(to, "status", json_string(task_status_name(t->status)));
    json_object_set_new(to, "attempt", json_integer(t->attempt));
    json_object_set_new(to, "queuedAt", view_instant(t->queued_at));
    json_object_set_new(to, "startedAt", view_instant(t->started_at));
    json_object_set_new(to, "finishedAt", view_instant(t->finished_at));
    json_object_set_new(to, "durationMs", duration(t->started_at, t->finished_at));
    json_object_set_new(to, "availableAt", view_instant(t->available_at));
    json_object_set_new(to, "error", str_or_null(t->error));
    {
        /* JSON text stored by the engine: an object, or a fan-out's list. */
        json_t *out = t->output ? json_loads(t->output, JSON_DECODE_ANY, NULL) : NULL;
        json_object_set_new(to, "output", out ? out : json_null());
    }
    {
        /* One item of a fan-out: its group (the forEach task), item and index. */
        const char *group = t->instance ? task_name_of(names ? names : d, t->group_idx) : NULL;
        json_t *item = t->instance && t->item ? json_loads(t->item, JSON_DECODE_ANY, NULL) : NULL;
        json_object_set_new(to, "group", str_or_null(group));
        json_object_set_new(to, "index", t->instance ? json_integer(t->item_index) : json_null());
        json_object_set_new(to, "item", item ? item : json_null());
    }
    json_object_set_new(to, "childExecutionId", str_or_null(t->child_id));
    json_object_set_new(to, "waitingOn", json_null()); /* view_set_waiting() */
    for (size_t j = first_attempt(d, t->idx); j < d->nattempts && d->attempts[j].task_idx == t->idx;
         j++)
        json_array_append_new(atts, view_attempt(&d->attempts[j]));
    json_object_set_new(to, "attempts", atts);
    return to;
}

json_t *view_exec_detail(const struct exec_detail *d)
{
    json_t *o = view_exec_summary(&d->exec);
    json_t *tasks = json_array();

    for (size_t i = 0; i < d->ntasks; i++)
        json_array_append_new(tasks, view_task_run(d, i, NULL));
    json_object_set_new(o, "tasks", tasks);
    json_object_set_new(o, "outputs", json_null()); /* view_exec_set_outputs() */
    return o;
}

json_t *view_exec_detail_grouped(const struct exec_detail *d)
{
    json_t *o = view_exec_summary(&d->exec);
    json_t *tasks = json_array();
    long long omitted = 0;

    for (size_t i = 0; i < d->ntasks; i++) {
        const struct task_run_row *t = &d->tasks[i];
        json_t *to, *by;
        long long total = 0;

        if (t->instance)
            continue;
        to = view_task_run(d, i, NULL);
        by = json_object();
        for (size_t c = 0; c < d->ncounts; c++) {
            if (d->counts[c].group_idx != t->idx)
                continue;
            total += d->counts[c].n;
            json_object_set_new(by, task_status_name(d->counts[c].status),
                                json_integer((json_int_t)d->counts[c].n));
        }
        if (total) {
            json_t *g = json_object();
            json_object_set_new(g, "total", json_integer((json_int_t)total));
            json_object_set_new(g, "byStatus", by);
            json_object_set_new(to, "instances", g);
            /* The list of every instance's output: listed with the instances. */
            json_object_set_new(to, "output", json_null());
            omitted += total;
        } else {
            json_decref(by);
        }
        json_array_append_new(tasks, to);
    }
    json_object_set_new(o, "tasks", tasks);
    json_object_set_new(o, "instancesOmitted", json_integer((json_int_t)omitted));
    json_object_set_new(o, "outputs", json_null()); /* view_exec_set_outputs() */
    return o;
}

void view_exec_set_outputs(json_t *detail, const char *outputs_json)
{
    json_t *v = outputs_json ? json_loads(outputs_json, 0, NULL) : NULL;
    json_object_set_new(detail, "outputs", v ? v : json_null());
}

json_t *view_exec_list(const struct exec_list *list, int limit)
{
    json_t *o = json_object();
    json_t *items = json_array();
    size_t n = list->n < (size_t)limit ? list->n : (size_t)limit;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, view_exec_summary(&list->items[i]));
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "nextCursor",
                        list->n > (size_t)limit && n ? json_string(list->items[n - 1].id)
                                                     : json_null());
    return o;
}

json_t *view_key(const struct key_row *row)
{
    static const unsigned order[] = {KEY_SCOPE_READ, KEY_SCOPE_WRITE, KEY_SCOPE_ADMIN};
    static const char *const names[] = {"read", "write", "admin"};
    json_t *o = json_object();
    json_t *scopes = json_array();

    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        if (row->scopes & order[i])
            json_array_append_new(scopes, json_string(names[i]));
    json_object_set_new(o, "id", json_string(row->id));
    json_object_set_new(o, "name", str_or_null(row->name));
    json_object_set_new(o, "prefix", json_string(row->prefix));
    json_object_set_new(o, "scopes", scopes);
    json_object_set_new(o, "createdAt", view_instant(row->created_at));
    json_object_set_new(o, "expiresAt", view_instant(row->expires_at));
    json_object_set_new(o, "lastUsedAt", view_instant(row->last_used_at));
    json_object_set_new(o, "revokedAt", view_instant(row->revoked_at));
    return o;
}

json_t *view_workflow(const char *name, int version, int64_t created_at, const char *definition,
                      int with_definition)
{
    json_t *o = json_object();
    json_t *def = definition ? json_loads(definition, JSON_DECODE_ANY, NULL) : NULL;
    json_t *desc = def ? json_object_get(def, "description") : NULL;
    json_t *tasks = def ? json_object_get(def, "tasks") : NULL;

    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "version", json_integer(version));
    json_object_set_new(o, "createdAt", view_instant(created_at));
    json_object_set_new(o, "description", json_is_string(desc) ? json_incref(desc) : json_null());
    json_object_set_new(o, "tasks",
                        json_integer(json_is_array(tasks) ? (json_int_t)json_array_size(tasks) : 0));
    if (with_definition && def)
        dag_redact_definition(def); /* one stored before credentials were refused */
    if (with_definition)
        json_object_set_new(o, "definition", def ? json_incref(def) : json_null());
    json_decref(def);
    return o;
}

/* ------------------------------------------------------------------ direct writers */

static void w_str(struct strbuf *sb, const char *s)
{
    struct strbuf clean = STRBUF_INIT;
    size_t n = 0;

    if (!s) {
        strbuf_adds(sb, "null");
        return;
    }
    /* Printable ASCII without '"' or '\\' (ids, names, statuses) is its own
     * JSON text: copy it without the two passes below. */
    while (s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"' && s[n] != '\\')
        n++;
    if (!s[n]) {
        strbuf_addch(sb, '"');
        strbuf_add(sb, s, n);
        strbuf_addch(sb, '"');
        return;
    }
    strbuf_add_utf8(&clean, s, strlen(s));
    strbuf_add_json_str(sb, clean.buf);
    strbuf_release(&clean);
}

static void w_instant(struct strbuf *sb, int64_t ms)
{
    char buf[CLOCK_ISO_MAX];
    if (!ms) {
        strbuf_adds(sb, "null");
        return;
    }
    strbuf_addch(sb, '"');
    strbuf_adds(sb, clock_iso8601(ms, buf));
    strbuf_addch(sb, '"');
}

/* A decimal integer, without printf (a list writes two per row). */
static void w_i64(struct strbuf *sb, long long v)
{
    char d[24];
    int n = 0;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        d[sizeof(d) - 1 - n++] = '-';
    strbuf_add(sb, d + sizeof(d) - n, (size_t)n);
}

static void w_summary(struct strbuf *sb, const struct exec_row *r)
{
    strbuf_adds(sb, "{\"id\":");
    w_str(sb, r->id);
    strbuf_adds(sb, ",\"workflow\":");
    w_str(sb, r->workflow ? r->workflow : "");
    strbuf_adds(sb, ",\"workflowVersion\":");
    w_i64(sb, r->workflow_version);
    strbuf_adds(sb, ",\"status\":\"");
    strbuf_adds(sb, exec_status_name(r->status));
    strbuf_adds(sb, "\",\"params\":");
    /* The params are stored as compact JSON written by us: copy them as they are. */
    if (r->params && r->params[0] == '{')
        strbuf_adds(sb, r->params);
    else
        strbuf_adds(sb, "{}");
    strbuf_adds(sb, ",\"createdAt\":");
    w_instant(sb, r->created_at);
    strbuf_adds(sb, ",\"startedAt\":");
    w_instant(sb, r->started_at);
    strbuf_adds(sb, ",\"finishedAt\":");
    w_instant(sb, r->finished_at);
    strbuf_adds(sb, ",\"durationMs\":");
    if (r->started_at && r->finished_at && r->finished_at >= r->started_at)
        w_i64(sb, (long long)(r->finished_at - r->started_at));
    else
        strbuf_adds(sb, "null");
    strbuf_adds(sb, ",\"retriedAt\":");
    w_instant(sb, r->retried_at);
    strbuf_adds(sb, ",\"error\":");
    w_str(sb, r->error);
    strbuf_adds(sb, ",\"scheduleId\":");
    w_str(sb, r->schedule_id);
    strbuf_adds(sb, ",\"scheduledFor\":");
    w_instant(sb, r->scheduled_for);
    strbuf_adds(sb, ",\"parentId\":");
    w_str(sb, r->parent_id);
    strbuf_addch(sb, '}');
}

int view_exec_list_write(struct strbuf *sb, const struct exec_list *list, size_t n,
                         const char *next_cursor)
{
    size_t before = sb->len;
    if (n > list->n)
        n = list->n;
    strbuf_adds(sb, "{\"items\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            strbuf_addch(sb, ',');
        w_summary(sb, &list->items[i]);
    }
    strbuf_adds(sb, "],\"nextCursor\":");
    w_str(sb, next_cursor);
    strbuf_addch(sb, '}');
    return sb->max && sb->len == before ? ERR_TOO_BIG : 0;
}
