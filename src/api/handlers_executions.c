/*
 * handlers_executions.c - /v1/workflows/{name}/executions and /v1/executions:
 * submit, list, show, cancel, retry, logs (and following them).
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_internal.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "engine/engine.h"
#include "view/view.h"

#include "base/banned.h"

#ifndef API_FOLLOW_PASS_MAX
#define API_FOLLOW_PASS_MAX (1024 * 1024) /* bytes gathered per poll of a followed log */
#endif

#ifndef API_DEFAULT_MAX_FOLLOWERS
#define API_DEFAULT_MAX_FOLLOWERS 256 /* log streams open at once ($ORCH_MAX_FOLLOWERS) */
#endif

#ifndef API_DETAIL_INSTANCES_MAX
#define API_DETAIL_INSTANCES_MAX 1000 /* fan-out instances listed in an execution's detail */
#endif
#define API_TASKS_PAGE_DEFAULT 100
#define API_TASKS_PAGE_MAX     1000

static const char *const no_args[] = {NULL};

/*
 * Free a detail read from the store. A large one (a fan-out) leaves many
 * small blocks free in this thread's malloc heap, which malloc keeps: give
 * them back to the system (one thread at a time).
 */
static void detail_free(struct exec_detail *d)
{
    static atomic_int trimming;
    int big = d && d->ntasks > API_DETAIL_INSTANCES_MAX;

    exec_detail_free(d);
    if (big && !atomic_exchange(&trimming, 1)) {
        malloc_trim(0);
        atomic_store(&trimming, 0);
    }
}

/* Reply with the summary of execution `id` as stored now. */
static void reply_summary(struct api_request *req, int status, const char *id)
{
    struct exec_detail *d = NULL;
    struct err err = ERR_INIT;
    struct task_page none = {-1, -1, 1, NULL, 1}; /* the row; not every task run */
    struct store *rd = api__read_store(req);

    if (!rd)
        return;
    if (store_execution_page(rd, id, &none, &d, &err)) {
        api__reply_err(req, &err);
        return;
    }
    api__reply_json(req, status, view_exec_summary(&d->exec));
    detail_free(d);
}

/* The {id} of the path, or NULL after replying 404. */
static const char *exec_id_param(struct api_request *req)
{
    const char *id = req->params.values[0];
    if (!api__valid_exec_id(id)) {
        api__reply_error(req, 404, NULL, "no execution '%.64s'", id);
        return NULL;
    }
    return id;
}

/*
 * The params of a submission: the body is optional; if given it must be an
 * object whose only field is "params" (an object or null). *out is the
 * params' JSON text or NULL (free()). Returns 0, or -1 after replying.
 */
static int submission_params(struct api_request *req, char **out)
{
    json_error_t jerr;
    json_t *doc, *p;
    const char *key;
    json_t *val;

    *out = NULL;
    if (req->body.len == 0)
        return 0;
    doc = json_loadb(req->body.buf, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        api__reply_error(req, 400, NULL,
                         "the request body is not valid JSON: line %d column %d: %s", jerr.line,
                         jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        api__reply_error(req, 400, NULL,
                         "the request body must be a JSON object such as {\"params\": {...}}");
        return -1;
    }
    json_object_foreach(doc, key, val)
    {
        if (strcmp(key, "params") != 0) {
            char k[80];
            snprintf(k, sizeof(k), "%.64s", key);
            json_decref(doc);
            api__reply_error(req, 400, NULL,
                             "unknown field '%s' in the request body (only 'params' is taken)", k);
            return -1;
        }
    }
    p = json_object_get(doc, "params");
    if (p && !json_is_null(p)) {
        if (!json_is_object(p)) {
            json_t *details = json_pack("[{s:s, s:s}]", "path", "$.params", "message",
                                        "'params' must be an object");
            json_decref(doc);
            api__reply_error(req, 422, details, "invalid params: 'params' must be an object");
            return -1;
        }
        *out = json_dumps(p, JSON_COMPACT);
    }
    json_decref(doc);
    return 0;
}

static void submission_free(void *s)
{
    engine_submission_free(s);
}

/* The engine answered the submission (engine thread): wake its request. */
static void submission_done(void *arg)
{
    api__resume(arg);
}

static void reply_location(struct api_request *req, const char *id)
{
    char loc[64];
    snprintf(loc, sizeof(loc), "/v1/executions/%s", id);
    api__reply_header(req, "Location", loc);
}

/* The answer to a submission, once it is committed (or refused). */
static void submit_finish(struct api_request *req)
{
    struct engine_submission *s = req->pending;
    const struct exec_row *row;
    struct err err = ERR_INIT;
    char id[ID_MAX];
    int existing = 0, rc;

    rc = engine_submission_result(s, id, &existing, &err);
    req->pending = NULL;
    row = rc ? NULL : engine_submission_row(s);
    if (row) /* new: answered from the row its commit wrote, without reading it back */
        api__reply_json(req, 201, view_exec_summary(row));
    engine_submission_free(s);
    if (row) {
        reply_location(req, id);
        return;
    }
    if (rc == ERR_INVALID) {
        json_t *details = json_array();
        json_t *d = json_object();
        json_object_set_new(d, "path", json_string("$.params"));
        json_object_set_new(d, "message", api__json_string(err.msg, strlen(err.msg)));
        json_array_append_new(details, d);
        api__reply_error(req, 422, details, "invalid params: %s", err.msg);
        return;
    }
    if (rc) {
        api__reply_err(req, &err);
        return;
    }
    reply_summary(req, existing ? 200 : 201, id);
    if (req->status == 201)
        reply_location(req, id);
}

/*
 * The submission goes to the engine without holding this thread: the
 * connection waits, suspended, for the commit that holds the execution, and
 * the thread serves other requests meanwhile. So one engine turn commits
 * every submission that came in during the previous one.
 */
void api__executions_submit(struct api_request *req)
{
    const char *name = req->params.values[0];
    const char *idem = api__header(req, "Idempotency-Key");
    char *params = NULL;

    if (api__query_check(req, no_args))
        return;
    if (idem && !api__valid_idempotency_key(idem)) {
        api__reply_error(req, 400, NULL,
                         "invalid Idempotency-Key: use 1 to %d printable ASCII characters",
                         API_IDEMPOTENCY_MAX);
        return;
    }
    if (!dag_valid_workflow_name(name)) {
        api__reply_error(req, 404, NULL, "no workflow '%s'", name);
        return;
    }
    if (submission_params(req, &params))
        return;
    api__defer(req, submit_finish);
    req->pending_free = submission_free;
    req->pending = engine_submit_async(api__engine(req), name, params, idem, submission_done, req);
    free(params);
}

/* Drop the rows of `list` after the first `keep`. */
static void list_truncate(struct exec_list *list, size_t keep)
{
    while (list->n > keep)
        exec_row_release(&list->items[--list->n]);
}

void api__executions_list(struct api_request *req)
{
    static const char *const args[] = {"status", "workflow", "since",    "until",
                                       "limit",  "cursor",   "parentId", NULL};
    struct exec_filter f;
    struct exec_list list = {NULL, 0};
    struct err err = ERR_INIT;
    struct store *rd;
    const char *v;
    int limit = API_LIST_DEFAULT, more = 0;

    if (api__query_check(req, args))
        return;
    memset(&f, 0, sizeof(f));
    v = api__query(req, "status");
    if (v) {
        char bad[40];
        if (api__parse_status_list(v, &f.status_mask, bad, sizeof(bad))) {
            api__reply_error(req, 400, NULL,
                             "invalid 'status': unknown status '%s' (use queued, running, "
                             "succeeded, failed, cancelled or timed_out, comma-separated)",
                             bad);
            return;
        }
    }
    v = api__query(req, "workflow");
    if (v) {
        if (!*v || strlen(v) > 128) {
            api__reply_error(req, 400, NULL, "invalid 'workflow': expected a workflow name");
            return;
        }
        f.workflow = v;
    }
    v = api__query(req, "parentId");
    if (v) {
        if (!api__valid_exec_id(v)) {
            api__reply_error(req, 400, NULL, "invalid 'parentId': expected an execution id");
            return;
        }
        f.parent_id = v;
    }
    v = api__query(req, "since");
    if (v && (api__parse_instant(v, &f.since) || f.since < 0)) {
        api__reply_error(req, 400, NULL,
                         "invalid 'since': expected an ISO 8601 instant such as "
                         "2026-11-29T10:00:00Z");
        return;
    }
    v = api__query(req, "until");
    if (v && (api__parse_instant(v, &f.until) || f.until < 0)) {
        api__reply_error(req, 400, NULL,
                         "invalid 'until': expected an ISO 8601 instant such as "
                         "2026-11-29T10:00:00Z");
        return;
    }
    v = api__query(req, "limit");
    if (v && api__parse_limit(v, &limit)) {
        api__reply_error(req, 400, NULL, "invalid 'limit': expected an integer from 1 to %d",
                         API_LIST_MAX);
        return;
    }
    v = api__query(req, "cursor");
    if (v) {
        if (!api__valid_exec_id(v)) {
            api__reply_error(req, 400, NULL,
                             "invalid 'cursor': expected the nextCursor of a previous page");
            return;
        }
        f.before_id = v;
    }
    rd = api__read_store(req);
    if (!rd)
        return;
    /* One row more than asked tells whether there is a next page. */
    f.limit = limit < API_LIST_MAX ? limit + 1 : API_LIST_MAX;
    if (store_executions_list(rd, &f, &list, &err)) {
        api__reply_err(req, &err);
        return;
    }
    if (list.n > (size_t)limit) {
        more = 1;
        list_truncate(&list, (size_t)limit);
    } else if (list.n == (size_t)limit && f.limit == limit) {
        /* limit is the maximum page: ask for one row past it. */
        struct exec_list probe = {NULL, 0};
        struct exec_filter g = f;
        g.before_id = list.items[list.n - 1].id;
        g.limit = 1;
        if (store_executions_list(rd, &g, &probe, &err)) {
            exec_list_release(&list);
            api__reply_err(req, &err);
            return;
        }
        more = probe.n > 0;
        exec_list_release(&probe);
    }
    {
        /* Written straight to text: this is the hottest call of the API. */
        struct strbuf sb = STRBUF_INIT;
        char *text;
        size_t len;
        view_exec_list_write(&sb, &list, list.n, more && list.n ? list.items[list.n - 1].id : NULL);
        exec_list_release(&list);
        text = strbuf_detach(&sb, &len);
        api__reply_json_text(req, 200, text, len);
    }
}

void api__executions_get(struct api_request *req)
{
    struct exec_detail *d = NULL;
    struct err err = ERR_INIT;
    struct task_page top = {-1, -1, 1, NULL, 0};
    struct store *rd;
    const char *id;
    long long instances = 0;
    json_t *j;

    if (api__query_check(req, no_args))
        return;
    id = exec_id_param(req);
    if (!id)
        return;
    rd = api__read_store(req);
    if (!rd)
        return;
    /* The workflow's tasks and the count of fan-out instances first: a large
     * fan-out is summarised (its instances are paged by
     * GET /v1/executions/{id}/tasks), so one answer stays small and cheap. */
    if (store_execution_page(rd, id, &top, &d, &err)) {
        api__reply_err(req, &err);
        return;
    }
    for (size_t i = 0; i < d->ncounts; i++)
        instances += d->counts[i].n;
    if (instances > 0 && instances <= API_DETAIL_INSTANCES_MAX) {
        detail_free(d);
        d = NULL;
        if (store_execution_get(rd, id, &d, &err)) {
            api__reply_err(req, &err);
            return;
        }
    }
    j = instances > API_DETAIL_INSTANCES_MAX ? view_exec_detail_grouped(d) : view_exec_detail(d);
    api__add_waiting(req, rd, d, json_object_get(j, "tasks"), d->ntasks,
                     instances > API_DETAIL_INSTANCES_MAX);
    {
        /* The workflow's outputs, once it succeeded (null if it declares none, or if one
         * cannot be filled in: the detail still answers). */
        char *outputs = NULL;
        struct err oerr = ERR_INIT;
        if (engine_exec_outputs(rd, d, &outputs, &oerr) == 0)
            view_exec_set_outputs(j, outputs);
        free(outputs);
        api__reply_json(req, 200, j);
    }
    detail_free(d);
}

/*
 * GET /v1/executions/{id}/tasks?group=&status=&limit=&cursor=: the task runs
 * of an execution in order (with group, the instances of that forEach task),
 * a page at a time, read a page at a time (keyset on the task run's index:
 * the cursor is the index of the last one listed).
 */
void api__executions_tasks(struct api_request *req)
{
    static const char *const args[] = {"group", "status", "limit", "cursor", NULL};
    struct exec_detail *d = NULL, *top = NULL;
    struct err err = ERR_INIT;
    struct task_page q = {-1, -1, 0, NULL, API_TASKS_PAGE_DEFAULT};
    struct task_page top_q = {-1, -1, 1, NULL, 0};
    struct store *rd;
    const char *id, *group, *v;
    enum task_status status;
    int cursor = -1;
    size_t n;
    json_t *items, *o;

    if (api__query_check(req, args))
        return;
    id = exec_id_param(req);
    if (!id)
        return;
    group = api__query(req, "group");
    v = api__query(req, "status");
    if (v) {
        if (task_status_parse(v, &status)) {
            api__reply_error(req, 400, NULL, "invalid 'status': '%.64s' is not a task status", v);
            return;
        }
        q.status = task_status_name(status);
    }
    v = api__query(req, "limit");
    if (v && (api__parse_uint(v, API_TASKS_PAGE_MAX, &q.limit) || q.limit < 1)) {
        api__reply_error(req, 400, NULL, "invalid 'limit': expected 1 to %d", API_TASKS_PAGE_MAX);
        return;
    }
    v = api__query(req, "cursor");
    if (v && api__parse_uint(v, 1 << 30, &cursor)) {
        api__reply_error(req, 400, NULL, "invalid 'cursor'");
        return;
    }
    rd = api__read_store(req);
    if (!rd)
        return;
    /* The workflow's tasks: the names of the instances' groups. */
    if (store_execution_page(rd, id, &top_q, &top, &err)) {
        api__reply_err(req, &err);
        return;
    }
    if (group) {
        for (size_t i = 0; i < top->ntasks; i++)
            if (top->tasks[i].name && !strcmp(top->tasks[i].name, group))
                q.group_idx = top->tasks[i].idx;
        if (q.group_idx < 0) {
            api__reply_error(req, 404, NULL, "execution %s has no task '%.128s'", id, group);
            detail_free(top);
            return;
        }
    }
    q.after_idx = cursor;
    q.limit++; /* one more: is there another page? */
    if (store_execution_page(rd, id, &q, &d, &err)) {
        api__reply_err(req, &err);
        detail_free(top);
        return;
    }
    n = d->ntasks < (size_t)q.limit - 1 ? d->ntasks : (size_t)q.limit - 1;
    items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, view_task_run(d, i, top));
    api__add_waiting(req, rd, d, items, n, 0);
    o = json_object();
    json_object_set_new(o, "items", items);
    if (d->ntasks > n) {
        char next[24];
        snprintf(next, sizeof(next), "%d", d->tasks[n - 1].idx);
        json_object_set_new(o, "nextCursor", json_string(next));
    } else {
        json_object_set_new(o, "nextCursor", json_null());
    }
    detail_free(d);
    detail_free(top);
    api__reply_json(req, 200, o);
}

/* POST /v1/executions/{id}/cancel and /retry: one engine command, then the summary. */
static void execution_command(struct api_request *req,
                              int (*post)(struct engine *, const char *, struct err *))
{
    struct err err = ERR_INIT;
    const char *id;

    if (api__query_check(req, no_args))
        return;
    id = exec_id_param(req);
    if (!id)
        return;
    if (post(api__engine(req), id, &err)) {
        api__reply_err(req, &err);
        return;
    }
    reply_summary(req, 200, id);
}

/* Cancel; with several nodes the one that runs it does, and the answer waits
 * for that (202 if it takes longer than CANCEL_WAIT_MS). */
#define CANCEL_WAIT_MS 5000

void api__executions_cancel(struct api_request *req)
{
    struct err err = ERR_INIT;
    const char *id;
    int asked = 0;

    if (api__query_check(req, no_args))
        return;
    id = exec_id_param(req);
    if (!id)
        return;
    if (engine_post_cancel(api__engine(req), id, &asked, &err)) {
        api__reply_err(req, &err);
        return;
    }
    if (asked) {
        int64_t until = clock_mono_ms() + CANCEL_WAIT_MS;
        for (;;) {
            struct exec_detail *d = NULL;
            struct store *rd = api__read_store(req);
            int final;
            if (!rd)
                return;
            if (store_execution_get(rd, id, &d, &err)) {
                api__reply_err(req, &err);
                return;
            }
            final = exec_status_is_final(d->exec.status);
            exec_detail_free(d);
            if (final)
                break;
            if (clock_mono_ms() >= until) {
                reply_summary(req, 202, id);
                return;
            }
            api__store_done(req); /* not held while waiting */
            usleep(20000);
        }
    }
    reply_summary(req, 200, id);
}

void api__executions_retry(struct api_request *req)
{
    execution_command(req, engine_post_retry);
}

/* ------------------------------------------------------------------ logs */

static const char *task_name(const struct exec_detail *d, int idx)
{
    for (size_t i = 0; i < d->ntasks; i++)
        if (d->tasks[i].idx == idx)
            return d->tasks[i].name ? d->tasks[i].name : "";
    return "";
}

static json_t *log_item(const char *task, const struct log_chunk *c)
{
    char ts[CLOCK_ISO_MAX];
    json_t *o = json_object();

    json_object_set_new(o, "task", api__json_string(task, strlen(task)));
    json_object_set_new(o, "attempt", json_integer(c->attempt));
    json_object_set_new(o, "stream",
                        json_string(c->stream == LOG_STREAM_STDERR ? "stderr" : "stdout"));
    json_object_set_new(o, "seq", json_integer(c->seq));
    json_object_set_new(o, "ts", json_string(clock_iso8601(c->ts, ts)));
    json_object_set_new(o, "data", api__json_string(c->data, c->len));
    return o;
}

/* One log item as a line of NDJSON appended to `out`. */
static void add_line(struct strbuf *out, const char *task, const struct log_chunk *c)
{
    json_t *o = log_item(task, c);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (s) {
        strbuf_adds(out, s);
        strbuf_addch(out, '\n');
        free(s);
    }
}

struct follow_att {
    int task_idx;
    int number;
    int last_seq;
    int drained; /* finished, and read after it finished */
    /* With Redis (live logs across nodes): bytes sent so far of stdout and
     * stderr, what the store's chunks read so far cover, the last entry read
     * from the attempt's Redis stream, and the items sent (their seq). */
    long long sent[2], stored[2];
    char last_id[48];
    int items;
};

/*
 * Each log stream holds a socket and its own store connection (three file
 * descriptors on SQLite) until the execution ends or the client leaves, so
 * their number is bounded: $ORCH_MAX_FOLLOWERS (checked by `orch server`),
 * API_DEFAULT_MAX_FOLLOWERS without it; beyond it, 503.
 */
static atomic_int followers;
static int max_followers = API_DEFAULT_MAX_FOLLOWERS;
static pthread_once_t max_followers_once = PTHREAD_ONCE_INIT;

static void max_followers_init(void)
{
    const char *v = getenv("ORCH_MAX_FOLLOWERS");
    char *end;
    long n;

    if (!v || !*v)
        return;
    n = strtol(v, &end, 10);
    if (!*end && n >= 1 && n <= 1000000)
        max_followers = (int)n;
}

/*
 * The streams' store connections: a stream borrows one for each poll and
 * gives it back, so connections (and their descriptors) follow the polls
 * running at once, not the streams open. A few stay open for the next polls;
 * closing them often would not give their descriptors back anyway (SQLite
 * keeps the descriptor of a closed connection while others hold locks on the
 * file).
 */
#define FOLLOW_IDLE_MAX 4

static pthread_mutex_t follow_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *location;
    struct store *st;
} follow_idle[FOLLOW_IDLE_MAX];
static int follow_nidle;

static int same_location(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

static struct store *follow_store_get(const char *location, struct err *err)
{
    struct store *st = NULL;

    pthread_mutex_lock(&follow_pool_lock);
    for (int i = follow_nidle - 1; i >= 0; i--) {
        if (same_location(follow_idle[i].location, location)) {
            st = follow_idle[i].st;
            free(follow_idle[i].location);
            follow_idle[i] = follow_idle[--follow_nidle];
            break;
        }
    }
    pthread_mutex_unlock(&follow_pool_lock);
    if (!st && store_open(location, STORE_READONLY, &st, err))
        return NULL;
    return st;
}

static void follow_store_put(const char *location, struct store *st)
{
    struct store *drop = NULL;
    char *drop_loc = NULL;

    pthread_mutex_lock(&follow_pool_lock);
    if (follow_nidle == FOLLOW_IDLE_MAX) {
        drop = follow_idle[0].st;
        drop_loc = follow_idle[0].location;
        follow_idle[0] = follow_idle[--follow_nidle];
    }
    follow_idle[follow_nidle].location = location ? xstrdup(location) : NULL;
    follow_idle[follow_nidle].st = st;
    follow_nidle++;
    pthread_mutex_unlock(&follow_pool_lock);
    store_free(drop);
    free(drop_loc);
}

struct follow {
    char *location;   /* of the store: the stream may outlive the request */
    struct store *st; /* borrowed for one poll */
    struct api_redis *redis; /* the server's (outlives its streams), or NULL */
    char exec_id[ID_MAX];
    int task_idx; /* -1: every task */
    int attempt;  /* 0: every attempt */
    struct follow_att *atts;
    size_t natts, alloc;
};

static struct follow_att *follow_att(struct follow *f, int task_idx, int number)
{
    for (size_t i = 0; i < f->natts; i++)
        if (f->atts[i].task_idx == task_idx && f->atts[i].number == number)
            return &f->atts[i];
    XGROW(f->atts, f->alloc, f->natts + 1);
    memset(&f->atts[f->natts], 0, sizeof(f->atts[0]));
    f->atts[f->natts].task_idx = task_idx;
    f->atts[f->natts].number = number;
    f->atts[f->natts].last_seq = -1;
    return &f->atts[f->natts++];
}

/*
 * Live logs with Redis. The engine of the node running an attempt appends its
 * output to the Redis stream of the attempt (base/redis.h: REDIS_LOG_KEY_PREFIX,
 * entries s/o/d and a last `end`), so a follower on any node sees it at once;
 * the store's durable copy comes later, in chunks. Both sources say where
 * their bytes sit in the attempt's stdout or stderr (a Redis entry's `o`; the
 * sum of the store's chunks before), so a follower sends each byte once,
 * whichever source has it first: from Redis while it answers, from the store
 * for what Redis lacks (no Redis writer, a flushed or restarted Redis, an
 * attempt that began before the follower). Items then carry their number
 * within the attempt's stream as `seq`.
 */
static void add_part(struct strbuf *out, const char *task, struct follow_att *fa,
                     enum log_stream stream, long long at, const char *data, size_t len,
                     int64_t ts)
{
    int si = stream == LOG_STREAM_STDERR;
    long long skip = fa->sent[si] - at;
    struct log_chunk c;

    if (skip >= (long long)len)
        return; /* sent already */
    if (skip < 0)
        skip = 0; /* a gap (a capped stream's head): what is here goes on */
    c.task_idx = fa->task_idx;
    c.attempt = fa->number;
    c.seq = fa->items++;
    c.stream = stream;
    c.ts = ts;
    c.data = (char *)data + skip;
    c.len = len - (size_t)skip;
    add_line(out, task, &c);
    fa->sent[si] = at + (long long)len;
}

static const redisReply *field(const redisReply *fields, const char *name)
{
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            !strcmp(fields->element[i]->str, name))
            return fields->element[i + 1];
    return NULL;
}

/* The new entries of the attempt's Redis stream into `out`: 1 when its end
 * entry was read, 0 when not (yet), -1 when Redis is not there. */
static int follow_redis(struct follow *f, struct follow_att *fa, const char *task,
                        struct strbuf *out)
{
    char key[REDIS_LOG_KEY_MAX], start[64];
    const char *argv[6];
    redisContext *c = api__redis_get(f->redis);
    redisReply *rep;
    int ended = 0;

    if (!c)
        return -1;
    redis_log_key(key, f->exec_id, fa->task_idx, fa->number);
    snprintf(start, sizeof(start), "%s%s", fa->last_id[0] ? "(" : "",
             fa->last_id[0] ? fa->last_id : "-");
    argv[0] = "XRANGE";
    argv[1] = key;
    argv[2] = start;
    argv[3] = "+";
    argv[4] = "COUNT";
    argv[5] = "1000";
    rep = redisCommandArgv(c, 6, argv, NULL);
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (rep)
            freeReplyObject(rep);
        api__redis_failed(f->redis, c);
        return -1;
    }
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i], *fields, *s, *o, *d;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        snprintf(fa->last_id, sizeof(fa->last_id), "%s", e->element[0]->str);
        fields = e->element[1];
        if (field(fields, "end")) {
            ended = 1;
            continue;
        }
        s = field(fields, "s");
        o = field(fields, "o");
        d = field(fields, "d");
        if (!s || !o || !d || s->type != REDIS_REPLY_STRING || o->type != REDIS_REPLY_STRING ||
            d->type != REDIS_REPLY_STRING)
            continue; /* not an entry we know: skipped */
        add_part(out, task, fa, strcmp(s->str, "err") ? LOG_STREAM_STDOUT : LOG_STREAM_STDERR,
                 strtoll(o->str, NULL, 10), d->str, d->len, strtoll(fa->last_id, NULL, 10));
    }
    freeReplyObject(rep);
    return ended;
}

/*
 * One poll: the execution's attempts (a snapshot), then the new chunks of
 * each attempt not drained yet. An attempt whose status in the snapshot is
 * final has written all its output before the snapshot, so the read that
 * follows drains it. The stream ends after a complete pass that started with
 * the execution final.
 */
static int follow_next(void *arg, struct strbuf *out)
{
    struct follow *f = arg;
    struct exec_detail *d = NULL;
    struct err err = ERR_INIT;
    int final, cut = 0;

    f->st = follow_store_get(f->location, &err);
    if (!f->st) {
        log_warn("API", "Log stream of %s ended: %s", f->exec_id, err.msg);
        return -1;
    }
    if (store_execution_get(f->st, f->exec_id, &d, &err)) {
        log_warn("API", "Log stream of %s ended: %s", f->exec_id, err.msg);
        store_free(f->st);
        f->st = NULL;
        return -1;
    }
    final = exec_status_is_final(d->exec.status);
    for (size_t i = 0; i < d->nattempts && !cut; i++) {
        const struct attempt_row *a = &d->attempts[i];
        struct follow_att *fa;
        struct log_list list = {NULL, 0};
        const char *task;

        if ((f->task_idx >= 0 && a->task_idx != f->task_idx) ||
            (f->attempt > 0 && a->number != f->attempt))
            continue;
        fa = follow_att(f, a->task_idx, a->number);
        if (fa->drained)
            continue;
        if (store_logs_follow(f->st, f->exec_id, a->task_idx, a->number, fa->last_seq, &list,
                              &err)) {
            log_warn("API", "Log stream of %s ended: %s", f->exec_id, err.msg);
            exec_detail_free(d);
            store_free(f->st);
            f->st = NULL;
            return -1;
        }
        task = task_name(d, a->task_idx);
        if (f->redis && a->status == ATTEMPT_RUNNING)
            (void)follow_redis(f, fa, task, out); /* -1: the store alone, below */
        for (size_t k = 0; k < list.n; k++) {
            const struct log_chunk *ch = &list.items[k];
            if (f->redis) {
                int si = ch->stream == LOG_STREAM_STDERR;
                add_part(out, task, fa, ch->stream, fa->stored[si], ch->data, ch->len, ch->ts);
                fa->stored[si] += (long long)ch->len;
            } else {
                add_line(out, task, ch);
            }
            fa->last_seq = ch->seq;
        }
        log_list_release(&list);
        if (a->status != ATTEMPT_RUNNING)
            fa->drained = 1;
        if (out->len > API_FOLLOW_PASS_MAX)
            cut = 1;
    }
    exec_detail_free(d);
    follow_store_put(f->location, f->st);
    f->st = NULL;
    return final && !cut ? 0 : 1;
}

static void follow_free(void *arg)
{
    struct follow *f = arg;
    store_free(f->st);
    free(f->location);
    free(f->atts);
    free(f);
    atomic_fetch_sub(&followers, 1);
}

void api__executions_logs(struct api_request *req)
{
    static const char *const args[] = {"task", "attempt", "follow", NULL};
    struct exec_detail *d = NULL;
    struct log_list list = {NULL, 0};
    struct err err = ERR_INIT;
    struct store *rd;
    const char *id, *task, *v;
    int attempt = 0, follow = 0, task_idx = -1;
    json_t *items, *o;

    if (api__query_check(req, args))
        return;
    id = exec_id_param(req);
    if (!id)
        return;
    task = api__query(req, "task");
    v = api__query(req, "attempt");
    if (v && (api__parse_uint(v, 1 << 30, &attempt) || attempt < 1)) {
        api__reply_error(req, 400, NULL, "invalid 'attempt': expected a positive integer");
        return;
    }
    v = api__query(req, "follow");
    if (v && api__parse_bool(v, &follow)) {
        api__reply_error(req, 400, NULL, "invalid 'follow': expected true or false");
        return;
    }
    rd = api__read_store(req);
    if (!rd)
        return;
    if (store_execution_get(rd, id, &d, &err)) {
        api__reply_err(req, &err);
        return;
    }
    if (task) {
        for (size_t i = 0; i < d->ntasks; i++)
            if (d->tasks[i].name && !strcmp(d->tasks[i].name, task))
                task_idx = d->tasks[i].idx;
        if (task_idx < 0) {
            api__reply_error(req, 404, NULL, "execution %s has no task '%.128s'", id, task);
            goto out;
        }
    }
    if (follow) {
        struct follow *f;
        pthread_once(&max_followers_once, max_followers_init);
        if (atomic_fetch_add(&followers, 1) >= max_followers) {
            atomic_fetch_sub(&followers, 1);
            api__reply_error(req, 503, NULL,
                             "too many log streams are open (%d, ORCH_MAX_FOLLOWERS); "
                             "retry later",
                             max_followers);
            api__reply_header(req, "Retry-After", "1");
            goto out;
        }
        f = xcalloc(1, sizeof(*f));
        if (api__store_location(req))
            f->location = xstrdup(api__store_location(req));
        snprintf(f->exec_id, sizeof(f->exec_id), "%.*s", ID_MAX - 1, id);
        f->task_idx = task_idx;
        f->attempt = attempt;
        f->redis = api__redis(req);
        api__reply_stream(req, 200, "application/x-ndjson", follow_next, follow_free, f);
        goto out;
    }
    if (store_logs_get(rd, id, task_idx, &list, &err)) {
        api__reply_err(req, &err);
        goto out;
    }
    items = json_array();
    for (size_t i = 0; i < list.n; i++) {
        if (attempt && list.items[i].attempt != attempt)
            continue;
        json_array_append_new(items,
                              log_item(task_name(d, list.items[i].task_idx), &list.items[i]));
    }
    log_list_release(&list);
    o = json_object();
    json_object_set_new(o, "items", items);
    api__reply_json(req, 200, o);
out:
    detail_free(d);
}

/*
 * GET /v1/executions/{id}/notifications: its outbox rows, oldest first:
 * where each goes (the url, or the name of the variable holding it), what
 * it tells, and how its delivery went. Neither the body nor a credential:
 * credentials are never stored, only the names of their variables.
 */
void api__executions_notifications(struct api_request *req)
{
    static const char *const args[] = {NULL};
    struct exec_detail *d = NULL;
    struct notify_row *rows = NULL;
    struct err err = ERR_INIT;
    struct store *rd;
    const char *id;
    size_t n = 0;
    json_t *items, *o;

    if (api__query_check(req, args))
        return;
    id = exec_id_param(req);
    if (!id)
        return;
    rd = api__read_store(req);
    if (!rd)
        return;
    if (store_execution_get(rd, id, &d, &err) || store_notify_list(rd, id, &rows, &n, &err)) {
        api__reply_err(req, &err);
        goto out;
    }
    items = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct notify_row *r = &rows[i];
        json_t *no = json_object(), *rq = json_loads(r->request, 0, NULL);
        const char *url = json_string_value(json_object_get(rq, "url"));
        const char *url_env = json_string_value(json_object_get(rq, "urlEnv"));
        json_object_set_new(no, "id", json_string(r->id));
        json_object_set_new(no, "event", json_string(r->event));
        json_object_set_new(no, "status", json_string(notify_status_name(r->status)));
        json_object_set_new(no, "attempts", json_integer(r->attempts));
        json_object_set_new(no, "lastError", r->last_error
                                                 ? view_text(r->last_error, strlen(r->last_error))
                                                 : json_null());
        json_object_set_new(no, "responseCode",
                            r->response_code ? json_integer(r->response_code) : json_null());
        json_object_set_new(no, "url", url ? json_string(url) : json_null());
        json_object_set_new(no, "urlEnv", url_env ? json_string(url_env) : json_null());
        json_object_set_new(no, "nextAt", r->status == NOTIFY_PENDING ? view_instant(r->next_at)
                                                                      : json_null());
        json_object_set_new(no, "createdAt", view_instant(r->created_at));
        json_object_set_new(no, "updatedAt", view_instant(r->updated_at));
        json_array_append_new(items, no);
        json_decref(rq);
    }
    o = json_object();
    json_object_set_new(o, "items", items);
    api__reply_json(req, 200, o);
out:
    notify_rows_free(rows, n);
    detail_free(d);
}
