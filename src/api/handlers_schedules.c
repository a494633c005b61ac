/*
 * handlers_schedules.c - /v1/schedules: the schedules of the workflow
 * definitions, their state (paused, next and last fire), their coming and
 * past fire times, pause/resume and backfill.
 *
 * A definition schedule's spec lives in the newest definition of its
 * workflow; its state (id, paused, next/last fire) in the store's schedule
 * rows, which the engine's scheduler keeps. A Schedule is the two joined by
 * (workflow, name); a row whose spec is gone (the definition changed or was
 * deleted and the scheduler has not pruned it yet) is not shown.
 *
 * An API schedule (POST /v1/schedules) keeps its spec, the schedule object
 * as JSON text, in its row (from_api); it is validated against the newest
 * definition of its workflow with dag_parse_schedule() each time it is read,
 * and is not shown while its workflow is gone or no longer fits it. Only API
 * schedules can be changed (PATCH) or deleted; any schedule can be paused.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "base/clock.h"
#include "base/date.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "engine/engine.h"
#include "sched/cron.h"
#include "sched/due.h"
#include "sched/tz.h"
#include "view/view.h"

#include "base/banned.h"

#define NEXT_DEFAULT 10
#define NEXT_MAX     1000
#define PREVIEW_MAX  1000 /* due times in one preview or backfill window */
#define NAME_MAX_LEN 64   /* an API schedule's name: [a-z0-9][a-z0-9._-]{0,63} */
static const char *const no_args[] = {NULL};

static const char *const skipped_names[] = {"shift", "skip"};
static const char *const repeated_names[] = {"first", "last", "both"};

/* Floor of ms to whole seconds. */
static int64_t ms_to_s(int64_t ms)
{
    return date_floor_div(ms, 1000);
}

/*
 * The first due time of `s` strictly after after_s (UTC seconds):
 * sched_next_due(), as the engine computes it. 0, ERR_NOT_FOUND (never
 * again) or ERR_INVALID (out of range).
 */
static int next_due(const struct dag_schedule *s, const struct tz *tz, int64_t after_s,
                    int64_t *out_s)
{
    struct sched_rule rule = {s->is_cron ? &s->cron : NULL, &s->dst, s->every_ms / 1000};

    return sched_next_due(&rule, tz, after_s, out_s);
}

/* The spec and the zone of one schedule: owned by `wf`. */
struct spec {
    struct workflow *wf;
    const struct dag_schedule *s;
    const struct tz *tz;
};

static void spec_release(struct spec *sp)
{
    workflow_free(sp->wf);
    memset(sp, 0, sizeof(*sp));
}

static const struct dag_schedule *find_schedule(const struct workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->nschedules; i++)
        if (!strcmp(wf->schedules[i].name, name))
            return &wf->schedules[i];
    return NULL;
}

/* Parse `definition` and find the schedule `name` in it. 0 or ERR_NOT_FOUND. */
static int spec_from_definition(const char *definition, const char *name, struct spec *out)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct err err = ERR_INIT;

    memset(out, 0, sizeof(*out));
    if (dag_parse(definition, strlen(definition), &out->wf, &probs)) {
        dag_problems_release(&probs);
        return ERR_NOT_FOUND;
    }
    out->s = find_schedule(out->wf, name);
    if (!out->s || tz_load(out->s->timezone, &out->tz, &err) < 0) {
        spec_release(out);
        return ERR_NOT_FOUND;
    }
    return 0;
}

/* Validate an API schedule's `spec_text` against `definition`. 0, or
 * ERR_INVALID with the problems in *probs (if not NULL). */
static int spec_from_api(const char *definition, const char *spec_text, struct spec *out,
                         struct dag_problems *probs)
{
    struct dag_problems own = DAG_PROBLEMS_INIT;
    struct err err = ERR_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = dag_parse_schedule(definition, spec_text ? spec_text : "{}", &out->wf,
                            probs ? probs : &own);
    dag_problems_release(&own);
    if (rc || !out->wf || out->wf->nschedules < 1) {
        spec_release(out);
        return ERR_INVALID;
    }
    out->s = &out->wf->schedules[0];
    if (tz_load(out->s->timezone ? out->s->timezone : "UTC", &out->tz, &err) < 0) {
        spec_release(out);
        return ERR_INVALID;
    }
    return 0;
}

/* The spec of `row` (either kind) given its workflow's newest definition. 0 or ERR_NOT_FOUND. */
static int spec_from_row(const char *definition, const struct schedule_row *row,
                         struct spec *out)
{
    if (row->from_api)
        return spec_from_api(definition, row->spec, out, NULL) ? ERR_NOT_FOUND : 0;
    return spec_from_definition(definition, row->name, out);
}

static json_t *schedule_json(const struct schedule_row *row, const struct dag_schedule *s)
{
    json_t *o = json_object(), *dst = json_object();
    json_t *params = s->params_json ? json_loads(s->params_json, 0, NULL) : NULL;

    json_object_set_new(o, "id", json_string(row->id));
    json_object_set_new(o, "workflow", json_string(row->workflow));
    json_object_set_new(o, "name", view_text(row->name, strlen(row->name)));
    json_object_set_new(o, "source", json_string(row->from_api ? "api" : "definition"));
    json_object_set_new(o, "cron", s->is_cron && s->cron_text
                                       ? view_text(s->cron_text, strlen(s->cron_text))
                                       : json_null());
    /* As written: the string ("3s"), or the number of seconds it was given as. */
    json_object_set_new(o, "every",
                        s->is_cron      ? json_null()
                        : s->every_text ? view_text(s->every_text, strlen(s->every_text))
                                        : json_integer(s->every_ms / 1000));
    json_object_set_new(o, "timezone", json_string(s->timezone ? s->timezone : "UTC"));
    json_object_set_new(o, "enabled", json_boolean(s->enabled));
    json_object_set_new(o, "paused", json_boolean(row->paused));
    json_object_set_new(dst, "skipped", json_string(skipped_names[s->dst.skipped == CRON_SKIPPED_SKIP]));
    json_object_set_new(dst, "repeated",
                        json_string(repeated_names[s->dst.repeated == CRON_REPEATED_LAST   ? 1
                                                   : s->dst.repeated == CRON_REPEATED_BOTH ? 2
                                                                                            : 0]));
    json_object_set_new(o, "dst", dst);
    json_object_set_new(o, "catchup", json_string(dag_catchup_name(s->catchup)));
    json_object_set_new(o, "maxCatchup", json_integer(s->max_catchup));
    json_object_set_new(o, "overlap", json_string(dag_overlap_name(s->overlap)));
    json_object_set_new(o, "params", json_is_object(params) ? params : json_null());
    if (params && !json_is_object(params))
        json_decref(params);
    json_object_set_new(o, "nextFireAt", view_instant(row->next_fire_at));
    json_object_set_new(o, "lastFireAt", view_instant(row->last_fire_at));
    return o;
}

/* Is `id` a schedule id we could have made? */
static int valid_schedule_id(const char *id)
{
    size_t n = strlen(id);
    if (n < 5 || n >= ID_MAX || strncmp(id, "sch_", 4) != 0)
        return 0;
    for (size_t i = 4; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return 1;
}

/*
 * Load schedule {id} of the path from `st`: its row and its spec. Returns 0,
 * or -1 after replying (404 for an unknown id or a schedule whose spec is gone).
 */
static int load_schedule(struct api_request *req, struct store *st, struct schedule_row *row,
                         struct spec *sp)
{
    const char *id = req->params.values[0];
    struct err err = ERR_INIT;
    char *def = NULL;
    int version = 0, rc;

    memset(row, 0, sizeof(*row));
    memset(sp, 0, sizeof(*sp));
    if (!valid_schedule_id(id)) {
        api__reply_error(req, 404, NULL, "no schedule '%.64s'", id);
        return -1;
    }
    rc = store_schedule_get(st, id, row, &err);
    if (rc == ERR_NOT_FOUND) {
        api__reply_error(req, 404, NULL, "no schedule '%s'", id);
        return -1;
    }
    if (rc) {
        api__reply_err(req, &err);
        return -1;
    }
    rc = store_workflow_get(st, row->workflow, 0, &def, &version, &err);
    if (rc == 0)
        rc = spec_from_row(def, row, sp);
    free(def);
    if (rc == ERR_NOT_FOUND) {
        if (row->from_api)
            api__reply_error(req, 404, NULL,
                             "no schedule '%s' (its workflow is gone or its spec no longer "
                             "fits the workflow's definition)",
                             id);
        else
            api__reply_error(req, 404, NULL,
                             "no schedule '%s' (its workflow no longer defines it)", id);
        schedule_row_release(row);
        return -1;
    }
    if (rc) {
        api__reply_err(req, &err);
        schedule_row_release(row);
        return -1;
    }
    return 0;
}

void api__schedules_list(struct api_request *req)
{
    struct schedule_row *rows = NULL;
    struct workflow_row *wfs = NULL;
    struct err err = ERR_INIT;
    struct store *rd;
    size_t n = 0, nwf = 0, w = 0;
    json_t *items, *o;

    if (api__query_check(req, no_args))
        return;
    rd = api__read_store(req);
    if (!rd)
        return;
    if (store_schedules_list(rd, &rows, &n, &err) ||
        store_workflows_list(rd, &wfs, &nwf, &err)) {
        schedule_rows_free(rows, n);
        api__reply_err(req, &err);
        return;
    }
    items = json_array();
    /* Both lists are ordered by workflow name: walk them together, parsing
     * each definition once. */
    for (size_t i = 0; i < n;) {
        struct dag_problems probs = DAG_PROBLEMS_INIT;
        struct workflow *wf = NULL;
        size_t j = i;

        while (j < n && !strcmp(rows[j].workflow, rows[i].workflow))
            j++;
        while (w < nwf && strcmp(wfs[w].name, rows[i].workflow) < 0)
            w++;
        if (w < nwf && !strcmp(wfs[w].name, rows[i].workflow)) {
            int parsed = -1; /* the definition, parsed on first need */
            for (size_t k = i; k < j; k++) {
                const struct dag_schedule *s = NULL;
                struct spec sp;
                if (rows[k].from_api) {
                    if (spec_from_api(wfs[w].definition, rows[k].spec, &sp, NULL) == 0) {
                        json_array_append_new(items, schedule_json(&rows[k], sp.s));
                        spec_release(&sp);
                    }
                    continue;
                }
                if (parsed < 0)
                    parsed = dag_parse(wfs[w].definition, strlen(wfs[w].definition), &wf,
                                       &probs) == 0;
                if (parsed)
                    s = find_schedule(wf, rows[k].name);
                if (s)
                    json_array_append_new(items, schedule_json(&rows[k], s));
            }
        }
        dag_problems_release(&probs);
        workflow_free(wf);
        i = j;
    }
    schedule_rows_free(rows, n);
    workflow_rows_free(wfs, nwf);
    o = json_object();
    json_object_set_new(o, "items", items);
    api__reply_json(req, 200, o);
}

void api__schedules_get(struct api_request *req)
{
    struct schedule_row row;
    struct spec sp;
    struct store *rd;

    if (api__query_check(req, no_args))
        return;
    rd = api__read_store(req);
    if (!rd || load_schedule(req, rd, &row, &sp))
        return;
    api__reply_json(req, 200, schedule_json(&row, sp.s));
    schedule_row_release(&row);
    spec_release(&sp);
}

void api__schedules_next(struct api_request *req)
{
    static const char *const args[] = {"count", NULL};
    struct schedule_row row;
    struct spec sp;
    struct store *rd;
    const char *v;
    int count = NEXT_DEFAULT;
    int64_t t;
    json_t *times, *o;

    if (api__query_check(req, args))
        return;
    v = api__query(req, "count");
    if (v && (api__parse_uint(v, NEXT_MAX, &count) || count < 1)) {
        api__reply_error(req, 400, NULL, "invalid 'count': expected an integer from 1 to %d",
                         NEXT_MAX);
        return;
    }
    rd = api__read_store(req);
    if (!rd || load_schedule(req, rd, &row, &sp))
        return;
    times = json_array();
    t = ms_to_s(clock_now_ms());
    for (int i = 0; i < count; i++) {
        char when[CRON_INSTANT_MAX];
        if (next_due(sp.s, sp.tz, t, &t) || cron_format_instant(t, sp.tz, when))
            break; /* never fires again (or beyond the representable range) */
        json_array_append_new(times, json_string(when));
    }
    o = json_object();
    json_object_set_new(o, "times", times);
    api__reply_json(req, 200, o);
    schedule_row_release(&row);
    spec_release(&sp);
}

/*
 * The due times of `s` in (from_ms, until_ms], in UTC seconds, into
 * out[0..*out_n-1] (out has room for PREVIEW_MAX). Returns 0, or ERR_TOO_BIG
 * if there are more than PREVIEW_MAX, ERR_INVALID out of range.
 */
static int due_times(const struct dag_schedule *s, const struct tz *tz, int64_t from_ms,
                     int64_t until_ms, int64_t *out, size_t *out_n)
{
    int64_t t = ms_to_s(from_ms);
    size_t n = 0;

    for (;;) {
        int rc = next_due(s, tz, t, &t);
        if (rc == ERR_NOT_FOUND)
            break;
        if (rc)
            return rc;
        if (t * 1000 > until_ms)
            break; /* t > floor(from_ms / 1000), so t * 1000 > from_ms */
        if (n == PREVIEW_MAX)
            return ERR_TOO_BIG;
        out[n++] = t;
    }
    *out_n = n;
    return 0;
}

/* Parse the window (from, until]: 0, or -1 after replying 400. */
static int check_window(struct api_request *req, const char *from, const char *until,
                        int64_t *from_ms, int64_t *until_ms)
{
    /* cron_next() accepts about +-34,000 years; keep well inside. */
    const int64_t lim = (int64_t)10000 * 366 * 86400 * 1000;

    if (!from || !until) {
        api__reply_error(req, 400, NULL, "'from' and 'until' are required");
        return -1;
    }
    if (api__parse_instant(from, from_ms) || *from_ms < -lim || *from_ms > lim) {
        api__reply_error(req, 400, NULL, "invalid 'from': expected an ISO 8601 instant");
        return -1;
    }
    if (api__parse_instant(until, until_ms) || *until_ms < -lim || *until_ms > lim) {
        api__reply_error(req, 400, NULL, "invalid 'until': expected an ISO 8601 instant");
        return -1;
    }
    if (*until_ms <= *from_ms) {
        api__reply_error(req, 400, NULL, "'until' must be after 'from'");
        return -1;
    }
    return 0;
}

/* Reply 400/422 for a due_times() failure. */
static void reply_window_err(struct api_request *req, int rc)
{
    if (rc == ERR_TOO_BIG)
        api__reply_error(req, 400, NULL,
                         "the window holds more than %d due times: make it shorter",
                         PREVIEW_MAX);
    else
        api__reply_error(req, 400, NULL, "the window is out of range");
}

/*
 * The due times of `sp` in the window (seconds, at most PREVIEW_MAX), in
 * *out_times (free() it). Replies 400 and returns -1 when the window is too
 * long or out of range: the preview and the backfill answer alike.
 */
static int window_due_times(struct api_request *req, const struct spec *sp, int64_t from_ms,
                            int64_t until_ms, int64_t **out_times, size_t *out_n)
{
    int64_t *times = xmalloc(PREVIEW_MAX * sizeof(*times));
    int rc = due_times(sp->s, sp->tz, from_ms, until_ms, times, out_n);

    if (rc) {
        reply_window_err(req, rc);
        free(times);
        *out_times = NULL;
        return -1;
    }
    *out_times = times;
    return 0;
}

void api__schedules_preview(struct api_request *req)
{
    static const char *const args[] = {"from", "until", NULL};
    struct schedule_row row;
    struct spec sp;
    struct store *rd;
    int64_t from_ms, until_ms;
    int64_t *times = NULL;
    size_t n = 0;
    json_t *fires, *o;

    if (api__query_check(req, args))
        return;
    if (check_window(req, api__query(req, "from"), api__query(req, "until"), &from_ms, &until_ms))
        return;
    rd = api__read_store(req);
    if (!rd || load_schedule(req, rd, &row, &sp))
        return;
    if (window_due_times(req, &sp, from_ms, until_ms, &times, &n))
        goto out;
    fires = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *f = json_object();
        char local[CRON_INSTANT_MAX];
        json_object_set_new(f, "scheduledFor", view_instant(times[i] * 1000));
        json_object_set_new(f, "localTime", cron_format_instant(times[i], sp.tz, local) == 0
                                                ? json_string(local)
                                                : json_null());
        json_array_append_new(fires, f);
    }
    o = json_object();
    json_object_set_new(o, "fires", fires);
    api__reply_json(req, 200, o);
out:
    free(times);
    schedule_row_release(&row);
    spec_release(&sp);
}

static void set_paused(struct api_request *req, int paused)
{
    struct schedule_row row;
    struct spec sp;
    struct err err = ERR_INIT;
    struct store *wr;

    if (api__query_check(req, no_args))
        return;
    if (!valid_schedule_id(req->params.values[0])) {
        api__reply_error(req, 404, NULL, "no schedule '%.64s'", req->params.values[0]);
        return;
    }
    wr = api__write_store(req);
    if (!wr)
        return;
    if (store_schedule_set_paused(wr, req->params.values[0], paused, clock_now_ms(), &err)) {
        api__reply_err(req, &err);
        return;
    }
    engine_schedules_changed(api__engine(req));
    if (load_schedule(req, wr, &row, &sp))
        return;
    api__reply_json(req, 200, schedule_json(&row, sp.s));
    schedule_row_release(&row);
    spec_release(&sp);
}

void api__schedules_pause(struct api_request *req)
{
    set_paused(req, 1);
}

void api__schedules_resume(struct api_request *req)
{
    set_paused(req, 0);
}

/* A body member "from"/"until": an ISO 8601 string or ms since the epoch.
 * Returns its text in buf (or NULL if absent or of another type). */
static const char *instant_member(json_t *doc, const char *key, char *buf, size_t len)
{
    json_t *v = json_object_get(doc, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        snprintf(buf, len, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return NULL;
}

void api__schedules_backfill(struct api_request *req)
{
    struct schedule_row row;
    struct spec sp;
    struct err err = ERR_INIT;
    struct store *rd;
    json_error_t jerr;
    json_t *doc, *o;
    const char *key;
    json_t *val;
    char fbuf[32], ubuf[32];
    int64_t from_ms, until_ms, *times = NULL;
    size_t n = 0;
    int count = 0, rc;

    if (api__query_check(req, no_args))
        return;
    doc = req->body.len ? json_loadb(req->body.buf, req->body.len, JSON_REJECT_DUPLICATES, &jerr)
                        : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        api__reply_error(req, 400, NULL,
                         "the request body must be a JSON object {\"from\": ..., \"until\": ...}");
        return;
    }
    json_object_foreach(doc, key, val)
    {
        if (strcmp(key, "from") && strcmp(key, "until")) {
            api__reply_error(req, 400, NULL, "unknown field '%.64s' (expected from, until)", key);
            json_decref(doc);
            return;
        }
    }
    rc = check_window(req, instant_member(doc, "from", fbuf, sizeof(fbuf)),
                      instant_member(doc, "until", ubuf, sizeof(ubuf)), &from_ms, &until_ms);
    json_decref(doc);
    if (rc)
        return;
    rd = api__read_store(req);
    if (!rd || load_schedule(req, rd, &row, &sp))
        return;
    /* Check the size of the window here, so that it answers like the preview. */
    if (window_due_times(req, &sp, from_ms, until_ms, &times, &n))
        goto out;
    if (engine_post_backfill(api__engine(req), row.id, from_ms, until_ms, &count, &err)) {
        api__reply_err(req, &err);
        goto out;
    }
    o = json_object();
    json_object_set_new(o, "scheduleId", json_string(row.id));
    json_object_set_new(o, "dueTimes", json_integer(count));
    api__reply_json(req, 202, o);
out:
    free(times);
    schedule_row_release(&row);
    spec_release(&sp);
}

void api__schedules_fires(struct api_request *req)
{
    static const char *const args[] = {"limit", NULL};
    struct schedule_row row;
    struct spec sp;
    struct fire_row *fires = NULL;
    struct err err = ERR_INIT;
    struct store *rd;
    const char *v;
    int limit = API_LIST_DEFAULT;
    size_t n = 0;
    json_t *items, *o;

    if (api__query_check(req, args))
        return;
    v = api__query(req, "limit");
    if (v && api__parse_limit(v, &limit)) {
        api__reply_error(req, 400, NULL, "invalid 'limit': expected an integer from 1 to %d",
                         API_LIST_MAX);
        return;
    }
    rd = api__read_store(req);
    if (!rd || load_schedule(req, rd, &row, &sp))
        return;
    if (store_fires_list(rd, row.id, limit, &fires, &n, &err)) {
        api__reply_err(req, &err);
        goto out;
    }
    items = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct fire_row *f = &fires[i];
        json_t *fo = json_object();
        json_object_set_new(fo, "scheduledFor", view_instant(f->scheduled_for));
        json_object_set_new(fo, "status",
                            json_string(f->status == FIRE_FIRED     ? "fired"
                                        : f->status == FIRE_QUEUED ? "queued"
                                                                   : "skipped"));
        json_object_set_new(fo, "executionId",
                            f->execution_id[0] ? json_string(f->execution_id) : json_null());
        json_object_set_new(fo, "reason",
                            f->reason ? view_text(f->reason, strlen(f->reason)) : json_null());
        json_object_set_new(fo, "createdAt", view_instant(f->created_at));
        json_array_append_new(items, fo);
    }
    fire_rows_free(fires, n);
    o = json_object();
    json_object_set_new(o, "items", items);
    api__reply_json(req, 200, o);
out:
    schedule_row_release(&row);
    spec_release(&sp);
}

/* ------------------------------------------------------------------ create, change, delete */

/* Is `s` (of `len` bytes) an acceptable API schedule name, [a-z0-9][a-z0-9._-]{0,63}? */
static int valid_schedule_name(const char *s, size_t len)
{
    if (len < 1 || len > NAME_MAX_LEN || strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return 0;
    }
    return 1;
}

static void add_problem(json_t *details, const char *path, const char *msg)
{
    json_t *d = json_object();
    json_object_set_new(d, "path", json_string(path));
    json_object_set_new(d, "message", api__json_string(msg, strlen(msg)));
    json_array_append_new(details, d);
}

/* Append the problems of dag_parse_schedule() to `details`. */
static void add_problems(json_t *details, const struct dag_problems *probs)
{
    for (size_t i = 0; i < probs->n; i++) {
        const char *path = probs->items[i].path ? probs->items[i].path : "$";
        const char *msg = probs->items[i].message ? probs->items[i].message : "invalid";
        json_t *d = json_object();
        json_object_set_new(d, "path", api__json_string(path, strlen(path)));
        json_object_set_new(d, "message", api__json_string(msg, strlen(msg)));
        json_array_append_new(details, d);
    }
    if (probs->dropped) {
        char msg[64];
        snprintf(msg, sizeof(msg), "... and %zu more problems", probs->dropped);
        add_problem(details, "$", msg);
    }
}

/* 422 with `details` (taken; never empty). */
static void reply_invalid(struct api_request *req, json_t *details)
{
    size_t n = json_array_size(details);

    if (n == 0)
        add_problem(details, "$", "invalid schedule");
    n = json_array_size(details);
    api__reply_error(req, 422, details, "invalid schedule: %zu problem%s", n, n == 1 ? "" : "s");
}

/* The request body as a JSON object, or NULL after replying 400. */
static json_t *body_object(struct api_request *req)
{
    json_error_t jerr;
    json_t *doc;

    if (req->body.len == 0) {
        api__reply_error(req, 400, NULL, "the request body must be a JSON object");
        return NULL;
    }
    if (memchr(req->body.buf, '\0', req->body.len)) {
        api__reply_error(req, 400, NULL, "the request body contains a NUL byte");
        return NULL;
    }
    doc = json_loadb(req->body.buf, req->body.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                     &jerr);
    if (!doc) {
        api__reply_error(req, 400, NULL,
                         "the request body is not valid JSON: line %d column %d: %s", jerr.line,
                         jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        api__reply_error(req, 400, NULL, "the request body must be a JSON object");
        return NULL;
    }
    return doc;
}

/* The next fire time (ms) of a schedule written now, as the engine computes it; 0 = none. */
static int64_t first_fire(const struct spec *sp, int64_t now_ms)
{
    int64_t t = 0;

    if (!sp->s->enabled || next_due(sp->s, sp->tz, ms_to_s(now_ms), &t))
        return 0;
    return t * 1000;
}

static void reply_defined_in_workflow(struct api_request *req, const struct schedule_row *row)
{
    api__reply_error(req, 409, NULL,
                     "schedule '%s' is defined in workflow '%s': change the workflow's definition",
                     row->name, row->workflow);
}

void api__schedules_create(struct api_request *req)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct schedule_row row, *rows = NULL;
    struct workflow *full = NULL;
    struct spec sp;
    struct err err = ERR_INIT;
    struct store *wr;
    json_t *doc, *v, *spec = NULL, *details = NULL;
    const char *workflow;
    char *spec_text = NULL, *def = NULL, *hash = NULL;
    char name[NAME_MAX_LEN + 1], id[ID_MAX], loc[ID_MAX + 16];
    size_t nrows = 0;
    int version = 0, paused = 0, in_tx = 0, rc;
    int64_t now = clock_now_ms();

    memset(&sp, 0, sizeof(sp));
    name[0] = '\0';
    if (api__query_check(req, no_args))
        return;
    doc = body_object(req);
    if (!doc)
        return;
    details = json_array();
    v = json_object_get(doc, "workflow");
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        add_problem(details, "$.workflow",
                    v ? "must be the name of a workflow" : "required: the workflow to start");
        reply_invalid(req, details);
        json_decref(doc);
        return;
    }
    workflow = json_string_value(v);
    id_new("sch_", id);
    v = json_object_get(doc, "name");
    if (v && !json_is_null(v)) {
        if (json_is_string(v) && valid_schedule_name(json_string_value(v), json_string_length(v)))
            snprintf(name, sizeof(name), "%s", json_string_value(v));
        else
            add_problem(details, "$.name",
                        "must be 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter "
                        "or a digit");
    }
    if (!name[0])
        snprintf(name, sizeof(name), "api-%s", id + 4);
    v = json_object_get(doc, "paused");
    if (v && !json_is_null(v)) {
        if (json_is_boolean(v))
            paused = json_is_true(v);
        else
            add_problem(details, "$.paused", "must be true or false");
    }
    spec = json_deep_copy(doc);
    json_object_del(spec, "workflow");
    json_object_del(spec, "name");
    json_object_del(spec, "paused");
    spec_text = json_dumps(spec, JSON_COMPACT);
    if (!spec_text) {
        api__reply_error(req, 500, NULL, "cannot serialize the schedule");
        goto out;
    }

    wr = api__write_store(req);
    if (!wr)
        goto out;
    /* One write transaction: "no such (workflow, name) yet" holds at the insert. */
    rc = store_begin(wr, &err);
    if (rc) {
        api__reply_err(req, &err);
        goto out;
    }
    in_tx = 1;
    rc = store_workflow_get(wr, workflow, 0, &def, &version, &err);
    if (rc == ERR_NOT_FOUND) {
        api__reply_error(req, 404, NULL, "no workflow '%s'", workflow);
        goto out;
    }
    if (rc) {
        api__reply_err(req, &err);
        goto out;
    }
    if (spec_from_api(def, spec_text, &sp, &probs) || json_array_size(details)) {
        add_problems(details, &probs);
        reply_invalid(req, details);
        details = NULL;
        goto out;
    }
    /* (workflow, name) must be free: neither in the definition nor another row. */
    if (dag_parse(def, strlen(def), &full, NULL) == 0 && find_schedule(full, name)) {
        api__reply_error(req, 409, NULL,
                         "workflow '%s' already has a schedule '%s' (in its definition)",
                         workflow, name);
        goto out;
    }
    rc = store_schedules_list(wr, &rows, &nrows, &err);
    if (rc) {
        api__reply_err(req, &err);
        goto out;
    }
    for (size_t i = 0; i < nrows; i++)
        if (!strcmp(rows[i].workflow, workflow) && !strcmp(rows[i].name, name)) {
            api__reply_error(req, 409, NULL, "workflow '%s' already has a schedule '%s' (%s)",
                             workflow, name, rows[i].id);
            goto out;
        }
    memset(&row, 0, sizeof(row));
    memcpy(row.id, id, ID_MAX);
    row.workflow = (char *)workflow;
    row.name = name;
    row.from_api = 1;
    row.spec = spec_text;
    hash = dag_schedule_hash(sp.s); /* the state below is the engine's for this spec */
    row.spec_hash = hash;
    row.paused = paused;
    row.next_fire_at = first_fire(&sp, now);
    row.created_at = row.updated_at = now;
    rc = store_schedule_upsert(wr, &row, &err);
    if (rc == 0)
        rc = store_commit(wr, &err);
    if (rc) {
        api__reply_err(req, &err);
        goto out;
    }
    in_tx = 0;
    engine_schedules_changed(api__engine(req));
    snprintf(loc, sizeof(loc), "/v1/schedules/%s", id);
    api__reply_json(req, 201, schedule_json(&row, sp.s));
    api__reply_header(req, "Location", loc);
out:
    if (in_tx)
        store_rollback(wr);
    json_decref(details);
    dag_problems_release(&probs);
    schedule_rows_free(rows, nrows);
    workflow_free(full);
    spec_release(&sp);
    free(hash);
    free(def);
    free(spec_text);
    json_decref(spec);
    json_decref(doc);
}

void api__schedules_patch(struct api_request *req)
{
    const char *id = req->params.values[0];
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct schedule_row row, upd;
    struct spec sp;
    struct err err = ERR_INIT;
    struct store *wr = NULL;
    json_t *doc, *val, *spec = NULL, *details;
    const char *key;
    char *spec_text = NULL, *def = NULL, *hash = NULL;
    int has_paused = 0, paused = 0, nfields = 0, version = 0, in_tx = 0, changed = 0, rc;
    int64_t now = clock_now_ms();

    memset(&row, 0, sizeof(row));
    memset(&sp, 0, sizeof(sp));
    if (api__query_check(req, no_args))
        return;
    if (!valid_schedule_id(id)) {
        api__reply_error(req, 404, NULL, "no schedule '%.64s'", id);
        return;
    }
    doc = body_object(req);
    if (!doc)
        return;
    details = json_array();
    json_object_foreach(doc, key, val)
    {
        if (!strcmp(key, "paused")) {
            if (json_is_boolean(val)) {
                has_paused = 1;
                paused = json_is_true(val);
            } else {
                add_problem(details, "$.paused", "must be true or false");
            }
            continue;
        }
        nfields++;
        if (!strcmp(key, "workflow") || !strcmp(key, "name")) {
            char path[32];
            snprintf(path, sizeof(path), "$.%s", key);
            add_problem(details, path,
                        "cannot be changed: create a new schedule and delete this one");
        }
    }
    wr = api__write_store(req);
    if (!wr)
        goto out;
    rc = store_begin(wr, &err);
    if (rc) {
        api__reply_err(req, &err);
        goto out;
    }
    in_tx = 1;
    rc = store_schedule_get(wr, id, &row, &err);
    if (rc == ERR_NOT_FOUND) {
        api__reply_error(req, 404, NULL, "no schedule '%s'", id);
        goto out;
    }
    if (rc) {
        api__reply_err(req, &err);
        goto out;
    }
    if (!row.from_api && nfields) {
        reply_defined_in_workflow(req, &row);
        goto out;
    }
    if (json_array_size(details)) {
        reply_invalid(req, details);
        details = NULL;
        goto out;
    }
    if (nfields) {
        /* Merge the fields into the spec: null removes one. */
        spec = row.spec ? json_loads(row.spec, 0, NULL) : NULL;
        if (!json_is_object(spec)) {
            json_decref(spec);
            spec = json_object();
        }
        json_object_foreach(doc, key, val)
        {
            if (!strcmp(key, "paused"))
                continue;
            if (json_is_null(val))
                json_object_del(spec, key);
            else
                json_object_set(spec, key, val);
        }
        spec_text = json_dumps(spec, JSON_COMPACT);
        if (!spec_text) {
            api__reply_error(req, 500, NULL, "cannot serialize the schedule");
            goto out;
        }
        rc = store_workflow_get(wr, row.workflow, 0, &def, &version, &err);
        if (rc == ERR_NOT_FOUND) {
            api__reply_error(req, 404, NULL, "no schedule '%s' (its workflow '%s' is gone)", id,
                             row.workflow);
            goto out;
        }
        if (rc) {
            api__reply_err(req, &err);
            goto out;
        }
        if (spec_from_api(def, spec_text, &sp, &probs)) {
            add_problems(details, &probs);
            reply_invalid(req, details);
            details = NULL;
            goto out;
        }
        upd = row;
        upd.spec = spec_text;
        hash = dag_schedule_hash(sp.s);
        upd.spec_hash = hash;
        if (has_paused)
            upd.paused = paused;
        upd.next_fire_at = first_fire(&sp, now);
        upd.updated_at = now;
        rc = store_schedule_upsert(wr, &upd, &err);
        changed = 1;
    } else if (has_paused) {
        rc = store_schedule_set_paused(wr, id, paused, now, &err);
        changed = 1;
    }
    if (rc == 0)
        rc = store_commit(wr, &err);
    if (rc) {
        api__reply_err(req, &err);
        goto out;
    }
    in_tx = 0;
    if (changed)
        engine_schedules_changed(api__engine(req));
    schedule_row_release(&row);
    spec_release(&sp);
    if (load_schedule(req, wr, &row, &sp))
        goto out;
    api__reply_json(req, 200, schedule_json(&row, sp.s));
out:
    if (in_tx)
        store_rollback(wr);
    json_decref(details);
    dag_problems_release(&probs);
    schedule_row_release(&row);
    spec_release(&sp);
    free(hash);
    free(def);
    free(spec_text);
    json_decref(spec);
    json_decref(doc);
}

void api__schedules_delete(struct api_request *req)
{
    const char *id = req->params.values[0];
    struct schedule_row row;
    struct err err = ERR_INIT;
    struct store *wr;
    int rc;

    if (api__query_check(req, no_args))
        return;
    if (!valid_schedule_id(id)) {
        api__reply_error(req, 404, NULL, "no schedule '%.64s'", id);
        return;
    }
    wr = api__write_store(req);
    if (!wr)
        return;
    rc = store_schedule_get(wr, id, &row, &err);
    if (rc == ERR_NOT_FOUND) {
        api__reply_error(req, 404, NULL, "no schedule '%s'", id);
        return;
    }
    if (rc) {
        api__reply_err(req, &err);
        return;
    }
    if (!row.from_api) {
        reply_defined_in_workflow(req, &row);
        schedule_row_release(&row);
        return;
    }
    schedule_row_release(&row);
    rc = store_schedule_delete(wr, id, &err);
    if (rc == ERR_NOT_FOUND) {
        api__reply_error(req, 404, NULL, "no schedule '%s'", id);
        return;
    }
    if (rc) {
        api__reply_err(req, &err);
        return;
    }
    engine_schedules_changed(api__engine(req));
    api__reply_empty(req, 204);
}
