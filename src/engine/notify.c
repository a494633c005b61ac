/*
 * notify.c - notifications through an outbox (notify.h).
 *
 * Written: the commit hook looks at the executions the turn writes (the
 * dirty list); one that reached a final status it has not notified yet gets
 * one outbox row per matching rule of its workflow (or of the server-wide
 * default, ORCH_NOTIFY_URL, for a workflow without "notify"), in the same
 * transaction as its status. A rolled-back commit writes them again with the
 * next one; a committed one marks the execution (ex->notified), so a row is
 * written once per end. A retried execution is a new end.
 *
 * Sent: after the commit, on servers and workers (not `orch run`, whose rows
 * the next server on the store sends). The loop claims due rows (SKIP LOCKED
 * on PostgreSQL: one node sends a row), sends each with its Idempotency-Key
 * (the row's id) and records the attempt, fenced by the claim. A node that
 * dies while sending leaves its rows 'sending' until their lease ends, then
 * another node (or it, restarted) sends them again: at least once, and the
 * receiver can drop a repeat by the key. The lease is the node lease
 * (ORCH_LEASE); a request times out at half of it, so it has ended before
 * anyone may take its row over.
 *
 * Nothing here logs a credential: they are read from the environment just
 * before a request, handed to libcurl (which logs nothing) and never stored;
 * URLs are logged as scheme and host only (a webhook URL may be a secret).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "base/clock.h"
#include "base/id.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "engine_internal.h"
#include "httpcall.h"
#include "notify.h"

#include "base/banned.h"

#define COMP_NOTIFY          "Notifications"
#define NOTIFY_MAX_INFLIGHT  16    /* requests in libcurl's hands at once */
#define NOTIFY_IDLE_LOOK_MS  30000 /* with nothing known due, look at least this often */
#define NOTIFY_RETRY_LOOK_MS 5000  /* after the store failed */
#define NOTIFY_MAX_RESPONSE  4096  /* bytes of a response body read */

/* ex->notified */
#define NOTIFIED_END   1 /* its end's rows are committed */
#define NOTIFIED_STUCK 2 /* its "stuck" rows are written (or on their way) */

struct notify_send {
    struct notify_row row; /* as claimed; strings owned */
    struct notify_send *next;
};

struct notify_state {
    struct dag_notify fallback; /* the server-wide default rule (hook.url set: it exists) */
    /* The commit under way: executions whose end it wrote; "stuck" rows to write. */
    struct exec **wrote;
    size_t nwrote, wrote_alloc;
    int rows_wrote; /* ... and some of them had rules: rows were written */
    struct notify_row *stuck;
    size_t nstuck, stuck_alloc;
    /* Delivery. */
    struct httpcalls *hc;
    struct watch w;
    struct notify_send *inflight;
    size_t ninflight;
    int64_t next_look; /* wall ms: look at the outbox then (0: at once) */
    int looked;        /* the first look (which takes over our own rows) is done */
};

static struct notify_state *state(struct engine *eng)
{
    if (!eng->notify) {
        struct notify_state *ns = xcalloc(1, sizeof(*ns));
        ns->w.kind = WATCH_HTTP;
        if (eng->cfg.notify_url && *eng->cfg.notify_url) {
            ns->fallback.on =
                eng->cfg.notify_on ? eng->cfg.notify_on : DAG_NOTIFY_FAILED | DAG_NOTIFY_TIMED_OUT;
            ns->fallback.hook.method = xstrdup("POST");
            ns->fallback.hook.url = xstrdup(eng->cfg.notify_url);
        }
        eng->notify = ns;
    }
    return eng->notify;
}

int64_t engine__notify_backoff(int attempts, int64_t base_ms)
{
    int64_t d = base_ms > 0 ? base_ms : 1;

    for (int i = 1; i < attempts && d < NOTIFY_BACKOFF_MAX_MS; i++)
        d *= 2;
    return d > NOTIFY_BACKOFF_MAX_MS ? NOTIFY_BACKOFF_MAX_MS : d;
}

static void row_release(struct notify_row *r)
{
    free(r->workflow);
    free(r->event);
    free(r->request);
    free(r->body);
    free(r->claimed_by);
    free(r->last_error);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ writing */

static unsigned end_event(enum exec_status st)
{
    switch (st) {
    case EXEC_FAILED:
        return DAG_NOTIFY_FAILED;
    case EXEC_TIMED_OUT:
        return DAG_NOTIFY_TIMED_OUT;
    case EXEC_SUCCEEDED:
        return DAG_NOTIFY_SUCCEEDED;
    case EXEC_CANCELLED:
        return DAG_NOTIFY_CANCELLED;
    default:
        return 0;
    }
}

static void set_opt(json_t *o, const char *key, const char *v)
{
    if (v)
        json_object_set_new(o, key, json_string(v));
}

/* How to send a rule's webhook: no credential in it, only variable names. */
static char *request_json(const struct dag_notify *n)
{
    const struct dag_http *h = &n->hook;
    json_t *o = json_object(), *hdrs = json_array(), *auth = json_object();
    json_free_t jfree;
    char *text, *copy;

    set_opt(o, "method", h->method ? h->method : "POST");
    set_opt(o, "url", h->url);
    set_opt(o, "urlEnv", n->url_env);
    for (size_t i = 0; i < h->nheaders; i++)
        json_array_append_new(hdrs, json_pack("[ss]", h->headers[i].key, h->headers[i].value));
    json_object_set_new(o, "headers", hdrs);
    set_opt(auth, "username", h->username);
    set_opt(auth, "usernameEnv", h->username_env);
    set_opt(auth, "passwordEnv", h->password_env);
    set_opt(auth, "bearerEnv", h->bearer_env);
    set_opt(auth, "header", h->auth_header);
    set_opt(auth, "query", h->auth_query);
    set_opt(auth, "valueEnv", h->value_env);
    json_object_set_new(o, "auth", auth);
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!text)
        BUG("cannot encode a notification request");
    json_get_alloc_funcs(NULL, &jfree);
    copy = xstrdup(text);
    jfree(text);
    return copy;
}

/* One outbox row for rule `n` about `event` of `ex`. */
static void make_row(struct engine *eng, const struct exec *ex, const struct dag_notify *n,
                     unsigned event, const char *why, struct notify_row *row)
{
    struct dag_notify_vars v;
    const char **names = NULL, **errors = NULL;
    char *link = NULL;
    size_t nf = 0;
    int64_t now = clock_now_ms();

    for (size_t i = 0; i < ex->nruns; i++)
        if (ex->runs[i].status == TASK_FAILED || ex->runs[i].status == TASK_TIMED_OUT)
            nf++;
    if (nf) {
        names = xcalloc(nf, sizeof(*names));
        errors = xcalloc(nf, sizeof(*errors));
        nf = 0;
        for (size_t i = 0; i < ex->nruns; i++) {
            const struct trun *r = &ex->runs[i];
            if (r->status != TASK_FAILED && r->status != TASK_TIMED_OUT)
                continue;
            names[nf] = engine__task_name(ex, i);
            errors[nf++] = r->error;
        }
    }
    if (eng->cfg.public_url && *eng->cfg.public_url) {
        size_t len = strlen(eng->cfg.public_url);
        while (len > 0 && eng->cfg.public_url[len - 1] == '/')
            len--;
        link = xasprintf("%.*s/executions/%s", (int)len, eng->cfg.public_url, ex->id);
    }
    memset(&v, 0, sizeof(v));
    v.exec_id = ex->id;
    v.workflow = ex->wf->name;
    v.status = exec_status_name(ex->status);
    v.event = dag_notify_event_name(event);
    v.error = why ? why : ex->error;
    v.link = link;
    v.failed_tasks = names;
    v.failed_errors = errors;
    v.nfailed = nf;

    memset(row, 0, sizeof(*row));
    id_new("nt_", row->id);
    memcpy(row->exec_id, ex->id, ID_MAX);
    row->workflow = xstrdup(ex->wf->name);
    row->event = xstrdup(v.event);
    row->request = request_json(n);
    row->body = dag_notify_body(n, &v);
    row->status = NOTIFY_PENDING;
    row->next_at = now;
    row->created_at = row->updated_at = now;
    free(names);
    free(errors);
    free(link);
}

/* The rules that apply to `ex`: its workflow's, or the default. */
static const struct dag_notify *rules(struct engine *eng, const struct exec *ex, size_t *n)
{
    struct notify_state *ns = state(eng);

    if (ex->wf->nnotify) {
        *n = ex->wf->nnotify;
        return ex->wf->notify;
    }
    *n = ns->fallback.hook.url ? 1 : 0;
    return &ns->fallback;
}

static int insert(struct engine *eng, struct notify_row *row, struct err *err)
{
    int rc = store_notify_insert(eng->st, row, err);
    if (rc == 0)
        log_debug(COMP_NOTIFY, "Notification %s (%s) of execution %s written", row->id, row->event,
                  row->exec_id);
    return rc;
}

static int notify_pending(const struct engine *eng, void *arg)
{
    (void)arg;
    return eng->notify && eng->notify->nstuck > 0;
}

static int notify_commit(struct engine *eng, void *arg, struct err *err)
{
    struct notify_state *ns = state(eng);
    int rc;

    (void)arg;
    ns->nwrote = 0; /* this transaction's (it may be the second try) */
    ns->rows_wrote = 0;
    for (size_t k = 0; k < eng->ndirty; k++) {
        struct exec *ex = eng->dirty[k];
        const struct dag_notify *rs;
        size_t nr;
        unsigned event = end_event(ex->status);
        if (!event || (ex->notified & NOTIFIED_END) || engine__exec_lost(ex) ||
            engine__exec_handoff(ex))
            continue;
        rs = rules(eng, ex, &nr);
        for (size_t i = 0; i < nr; i++) {
            struct notify_row row;
            if (!(rs[i].on & event))
                continue;
            make_row(eng, ex, &rs[i], event, NULL, &row);
            rc = insert(eng, &row, err);
            row_release(&row);
            if (rc)
                return rc;
            ns->rows_wrote = 1;
        }
        XGROW(ns->wrote, ns->wrote_alloc, ns->nwrote + 1);
        ns->wrote[ns->nwrote++] = ex;
    }
    for (size_t i = 0; i < ns->nstuck; i++) {
        rc = insert(eng, &ns->stuck[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

static void notify_committed(struct engine *eng, void *arg)
{
    struct notify_state *ns = eng->notify;

    (void)arg;
    if (!ns)
        return;
    if (ns->rows_wrote || ns->nstuck)
        ns->next_look = 0; /* new rows: send them now (an end without rules wrote none) */
    ns->rows_wrote = 0;
    for (size_t i = 0; i < ns->nwrote; i++)
        ns->wrote[i]->notified |= NOTIFIED_END;
    ns->nwrote = 0;
    for (size_t i = 0; i < ns->nstuck; i++)
        row_release(&ns->stuck[i]);
    ns->nstuck = 0;
}

static int notify_failed(struct engine *eng, void *arg, int rc)
{
    (void)arg;
    (void)rc;
    if (eng->notify)
        eng->notify->nwrote = 0; /* written again by the next try */
    return 0;
}

static const struct engine_hook notify_hook = {
    HOOK_AFTER_RUNS, notify_pending, notify_commit, notify_committed, notify_failed,
};

void engine__notify_hooks(struct engine *eng)
{
    engine__hook_add(eng, &notify_hook, NULL);
}

void engine__notify_stuck(struct engine *eng, struct exec *ex, const char *why)
{
    struct notify_state *ns = state(eng);
    const struct dag_notify *rs;
    size_t nr;

    if ((ex->notified & NOTIFIED_STUCK) || engine__exec_lost(ex) || engine__exec_handoff(ex))
        return;
    ex->notified |= NOTIFIED_STUCK;
    rs = rules(eng, ex, &nr);
    for (size_t i = 0; i < nr; i++) {
        if (!(rs[i].on & DAG_NOTIFY_STUCK))
            continue;
        XGROW(ns->stuck, ns->stuck_alloc, ns->nstuck + 1);
        make_row(eng, ex, &rs[i], DAG_NOTIFY_STUCK, why, &ns->stuck[ns->nstuck++]);
    }
    if (ns->nstuck)
        eng->work_now = 1;
}

/* ------------------------------------------------------------------ sending */

static int64_t lease_ms(const struct engine *eng)
{
    int64_t l = eng->node_st ? engine__node_lease_ms(eng) : 0;
    return l > 0 ? l : ENGINE_DEFAULT_LEASE_MS;
}

/* "https://host:port" of a URL: what a log may say of it. */
static void url_origin(const char *url, char *out, size_t len)
{
    const char *s = strstr(url, "://");
    const char *host = s ? s + 3 : url;
    size_t hl = strcspn(host, "/?#");
    const char *at = memchr(host, '@', hl);

    if (at) {
        hl -= (size_t)(at + 1 - host);
        host = at + 1;
    }
    snprintf(out, len, "%.*s%.*s", s ? (int)(s - url) + 3 : 0, url, (int)hl, host);
}

static const char *env_of(const json_t *auth, const char *key)
{
    const char *name = json_string_value(json_object_get(auth, key));
    return name ? getenv(name) : NULL;
}

/* The request of a claimed row, credentials from the environment: 0, or -1
 * with msg (a variable not set; its name only). */
struct built {
    char *url;
    char **headers; /* NULL-terminated "Name: value" lines */
    size_t nheaders;
    const char *method, *user, *pass, *bearer;
    json_t *req;
};

static void built_release(struct built *b)
{
    for (size_t i = 0; i < b->nheaders; i++) {
        /* A header may hold a credential: wipe it before it goes back to malloc. */
        volatile char *p = b->headers[i];
        while (*p)
            *p++ = 0;
        free(b->headers[i]);
    }
    free(b->headers);
    free(b->url);
    json_decref(b->req);
}

static int build(const struct notify_row *row, struct built *b, char *msg, size_t len)
{
    const json_t *hdrs, *auth, *h;
    const char *url, *v;
    size_t i;
    int has_type = 0;

    memset(b, 0, sizeof(*b));
    b->req = json_loads(row->request, 0, NULL);
    if (!json_is_object(b->req)) {
        snprintf(msg, len, "its stored request is not valid");
        return -1;
    }
    b->method = json_string_value(json_object_get(b->req, "method"));
    if (!b->method)
        b->method = "POST";
    url = json_string_value(json_object_get(b->req, "url"));
    if (!url && (v = json_string_value(json_object_get(b->req, "urlEnv")))) {
        url = getenv(v);
        if (!url || !*url) {
            snprintf(msg, len, "its url variable %.100s is not set", v);
            return -1;
        }
    }
    if (!url) {
        snprintf(msg, len, "it has no url");
        return -1;
    }
    b->url = xstrdup(url);
    hdrs = json_object_get(b->req, "headers");
    auth = json_object_get(b->req, "auth");
    b->headers = xcalloc(json_array_size(hdrs) + 4, sizeof(*b->headers));
    json_array_foreach(hdrs, i, h)
    {
        const char *k = json_string_value(json_array_get(h, 0));
        const char *hv = json_string_value(json_array_get(h, 1));
        if (!k || !hv)
            continue;
        if (!strcasecmp(k, "Content-Type"))
            has_type = 1;
        b->headers[b->nheaders++] = xasprintf("%s: %s", k, hv);
    }
    if (!has_type)
        b->headers[b->nheaders++] = xstrdup("Content-Type: application/json");
    b->headers[b->nheaders++] = xasprintf("Idempotency-Key: %s", row->id);
    if (json_object_get(auth, "bearerEnv")) {
        b->bearer = env_of(auth, "bearerEnv");
        if (!b->bearer || !*b->bearer) {
            snprintf(msg, len, "its bearer token variable %.100s is not set",
                     json_string_value(json_object_get(auth, "bearerEnv")));
            return -1;
        }
    }
    if (json_object_get(auth, "passwordEnv")) {
        b->pass = env_of(auth, "passwordEnv");
        b->user = json_object_get(auth, "usernameEnv")
                      ? env_of(auth, "usernameEnv")
                      : json_string_value(json_object_get(auth, "username"));
        if (!b->pass || !b->user) {
            snprintf(
                msg, len, "its %s variable %.100s is not set", !b->pass ? "password" : "user",
                json_string_value(json_object_get(auth, !b->pass ? "passwordEnv" : "usernameEnv")));
            return -1;
        }
    }
    if (json_object_get(auth, "valueEnv")) {
        const char *name = json_string_value(json_object_get(auth, "valueEnv"));
        const char *hn = json_string_value(json_object_get(auth, "header"));
        const char *qn = json_string_value(json_object_get(auth, "query"));
        v = env_of(auth, "valueEnv");
        if (!v || !*v) {
            snprintf(msg, len, "its auth variable %.100s is not set", name ? name : "?");
            return -1;
        }
        if (hn) {
            if (strpbrk(v, "\r\n")) {
                snprintf(msg, len, "its auth variable %.100s holds a line break", name);
                return -1;
            }
            b->headers[b->nheaders++] = xasprintf("%s: %s", hn, v);
        } else if (qn) {
            struct strbuf sb = STRBUF_INIT;
            size_t frag = strcspn(b->url, "#");
            strbuf_add(&sb, b->url, frag);
            strbuf_addch(&sb, memchr(b->url, '?', frag) ? '&' : '?');
            strbuf_add_urlencoded(&sb, qn);
            strbuf_addch(&sb, '=');
            strbuf_add_urlencoded(&sb, v);
            strbuf_adds(&sb, b->url + frag);
            free(b->url);
            b->url = strbuf_detach(&sb, NULL);
        }
    }
    return 0;
}

static void done(void *tag, struct httpcall_result *res, void *arg);

/* The outcome of attempt row->attempts + 1: recorded, fenced by our claim. */
static void settle(struct engine *eng, struct notify_row *row, int ok, long code, const char *error)
{
    struct err err = ERR_INIT;
    char origin[200];
    int64_t now = clock_now_ms();
    int rc;

    row->attempts++;
    row->response_code = (int)code;
    free(row->last_error);
    row->last_error = error ? xstrdup(error) : NULL;
    row->updated_at = now;
    if (ok) {
        row->status = NOTIFY_DELIVERED;
    } else if (row->attempts >= eng->cfg.notify_attempts) {
        row->status = NOTIFY_FAILED;
    } else {
        row->status = NOTIFY_PENDING;
        row->next_at = now + engine__notify_backoff(row->attempts, eng->cfg.notify_backoff_ms);
    }
    rc = store_notify_settle(eng->st, row, row->claimed_by, &err);
    if (rc)
        log_warn(COMP_NOTIFY,
                 "Notification %s of execution %s: cannot record attempt %d: %s "
                 "(it is sent again once its claim expires)",
                 row->id, row->exec_id, row->attempts, err.msg);
    {
        struct built b;
        char msg[200];
        origin[0] = '\0';
        if (build(row, &b, msg, sizeof(msg)) == 0)
            url_origin(b.url, origin, sizeof(origin));
        built_release(&b);
    }
    if (ok)
        log_info(COMP_NOTIFY,
                 "Notification %s (%s of execution %s) delivered to %s (HTTP %ld, "
                 "attempt %d)",
                 row->id, row->event, row->exec_id, origin, code, row->attempts);
    else if (row->status == NOTIFY_FAILED)
        log_error(COMP_NOTIFY,
                  "Notification %s (%s of execution %s) to %s given up after %d "
                  "attempts: %s",
                  row->id, row->event, row->exec_id, origin, row->attempts, error ? error : "?");
    else
        log_warn(COMP_NOTIFY,
                 "Notification %s (%s of execution %s) to %s failed (attempt %d of "
                 "%d): %s; next attempt in %lldms",
                 row->id, row->event, row->exec_id, origin, row->attempts, eng->cfg.notify_attempts,
                 error ? error : "?", (long long)(row->next_at - now));
}

static int ensure_client(struct engine *eng, struct err *err)
{
    struct notify_state *ns = state(eng);
    struct epoll_event ev;

    if (ns->hc)
        return 0;
    if (httpcalls_new(&ns->hc, err) != 0)
        return -1;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = &ns->w;
    if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, httpcalls_fd(ns->hc), &ev))
        log_error(COMP_NOTIFY, "epoll_ctl: %s", strerror(errno));
    return 0;
}

/* Send one claimed row (taken: freed here or when its request ends). */
static void send_one(struct engine *eng, struct notify_send *s)
{
    struct notify_state *ns = state(eng);
    struct httpcall_spec spec;
    struct built b;
    struct err err = ERR_INIT;
    char msg[300];

    if (build(&s->row, &b, msg, sizeof(msg)) != 0) {
        built_release(&b);
        settle(eng, &s->row, 0, 0, msg);
        row_release(&s->row);
        free(s);
        return;
    }
    memset(&spec, 0, sizeof(spec));
    spec.method = b.method;
    spec.url = b.url;
    spec.headers = (const char *const *)b.headers;
    spec.body = s->row.body;
    spec.body_len = strlen(s->row.body);
    spec.timeout_ms = lease_ms(eng) / 2;
    spec.follow_redirects = 0; /* a credential would follow it */
    spec.username = b.user;
    spec.password = b.pass;
    spec.bearer = b.bearer;
    spec.max_body = NOTIFY_MAX_RESPONSE;
    spec.policy = eng->netpol;
    if (httpcalls_start(ns->hc, &spec, s, &err) != 0) {
        built_release(&b);
        settle(eng, &s->row, 0, 0, err.msg);
        row_release(&s->row);
        free(s);
        return;
    }
    built_release(&b);
    s->next = ns->inflight;
    ns->inflight = s;
    ns->ninflight++;
}

static void done(void *tag, struct httpcall_result *res, void *arg)
{
    struct engine *eng = arg;
    struct notify_state *ns = eng->notify;
    struct notify_send *s = tag, **pp;
    char error[300];

    for (pp = &ns->inflight; *pp && *pp != s; pp = &(*pp)->next)
        ;
    if (*pp) {
        *pp = s->next;
        ns->ninflight--;
    }
    if (!res->ok)
        snprintf(error, sizeof(error), "%s", res->error);
    else if (res->status < 200 || res->status > 299)
        snprintf(error, sizeof(error), "HTTP %ld", res->status);
    settle(eng, &s->row, res->ok && res->status >= 200 && res->status <= 299,
           res->ok ? res->status : 0,
           res->ok && res->status >= 200 && res->status <= 299 ? NULL : error);
    row_release(&s->row);
    free(s);
    ns->next_look = 0; /* a slot is free; and when is the next one due? */
}

static const char *node_name(const struct engine *eng)
{
    return eng->node_id ? eng->node_id : eng->node;
}

void engine__notify_act(struct engine *eng)
{
    struct notify_state *ns;
    struct notify_row *rows = NULL;
    struct err err = ERR_INIT;
    size_t n = 0;
    int64_t now = clock_now_ms(), next = 0, idle;
    int limit;

    if (!eng->persistent || eng->stopping)
        return; /* `orch run`: the next server sends its rows */
    ns = state(eng);
    if (ns->next_look > now)
        return;
    limit = NOTIFY_MAX_INFLIGHT - (int)ns->ninflight;
    if (limit <= 0) {
        ns->next_look = INT64_MAX; /* until a request ends */
        return;
    }
    if (ensure_client(eng, &err) != 0) {
        log_error(COMP_NOTIFY, "Cannot send notifications: %s", err.msg);
        ns->next_look = now + NOTIFY_IDLE_LOOK_MS;
        return;
    }
    /* The first look takes over what this node was sending when it stopped
     * (a restart under the same name; on SQLite, the only node: all of it). */
    if (store_notify_claim(eng->st, node_name(eng), now, lease_ms(eng),
                           ns->looked     ? 0
                           : eng->cluster ? 1
                                          : 2,
                           limit, &rows, &n, &err) ||
        store_notify_next(eng->st, &next, &err)) {
        log_warn(COMP_NOTIFY, "Cannot read the outbox: %s (tried again in %dms)", err.msg,
                 NOTIFY_RETRY_LOOK_MS);
        ns->next_look = now + NOTIFY_RETRY_LOOK_MS;
        notify_rows_free(rows, n);
        return;
    }
    ns->looked = 1;
    for (size_t i = 0; i < n; i++) {
        struct notify_send *s = xcalloc(1, sizeof(*s));
        s->row = rows[i];
        send_one(eng, s);
    }
    free(rows); /* the rows' strings were taken */
    /* Rows another node leaves behind when it dies are due at their lease's
     * end (store_notify_next); rows written by others (`orch run`, a node that
     * died before claiming) are found within NOTIFY_IDLE_LOOK_MS. */
    idle = NOTIFY_IDLE_LOOK_MS;
    if ((int)n == limit)
        ns->next_look = ns->ninflight < NOTIFY_MAX_INFLIGHT ? 0 : INT64_MAX;
    else if (next > now && next - now < idle)
        ns->next_look = next;
    else if (next > 0 && next <= now && !ns->ninflight)
        ns->next_look = now + 100; /* claimed by another node meanwhile: soon again */
    else
        ns->next_look = now + idle;
}

void engine__notify_run(struct engine *eng)
{
    if (eng->notify && eng->notify->hc && eng->notify->ninflight)
        httpcalls_run(eng->notify->hc, done, eng);
}

size_t engine__notify_active(const struct engine *eng)
{
    return eng->notify ? eng->notify->ninflight : 0;
}

int64_t engine__notify_timeout(const struct engine *eng)
{
    const struct notify_state *ns = eng->notify;
    int64_t t = -1, d;

    if (!eng->persistent || eng->stopping)
        return -1;
    if (!ns)
        return -1; /* the first look is made by the first turn (engine__notify_act) */
    if (ns->hc && ns->ninflight && (d = httpcalls_timeout(ns->hc)) >= 0)
        t = d;
    if (ns->next_look != INT64_MAX && !eng->db_down && !eng->commit_held) {
        d = ns->next_look - clock_now_ms();
        if (d < 0)
            d = 0;
        if (t < 0 || d < t)
            t = d;
    }
    return t;
}

void engine__notify_free(struct engine *eng)
{
    struct notify_state *ns = eng->notify;

    if (!ns)
        return;
    if (ns->hc)
        httpcalls_free(ns->hc);
    while (ns->inflight) {
        struct notify_send *s = ns->inflight;
        ns->inflight = s->next;
        row_release(&s->row);
        free(s);
    }
    for (size_t i = 0; i < ns->nstuck; i++)
        row_release(&ns->stuck[i]);
    free(ns->stuck);
    free(ns->wrote);
    free(ns->fallback.hook.method);
    free(ns->fallback.hook.url);
    free(ns);
    eng->notify = NULL;
}
