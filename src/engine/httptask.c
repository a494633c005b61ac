/*
 * httptask.c - HTTP tasks: one request per attempt, on the engine's loop.
 *
 * An attempt of an HTTP task is recorded (running) with the turn's commit;
 * only then is its request sent (commit, then act), through the libcurl
 * multi handle of httpcall.c, whose descriptor the loop watches. No thread
 * per request; connections are kept alive across tasks.
 *
 * The url, header values, string body, the strings of a JSON body and the
 * basic-auth user are filled in from the execution (params, upstream
 * outputs, item and index) when the request is sent. A string of a JSON body
 * that is exactly one placeholder takes the referenced value itself (a list
 * stays a list). Credentials come from the environment (auth.passwordEnv,
 * auth.bearerEnv: orch's own environment and the workflow's env), never from
 * the definition, and appear in no log, error or output.
 *
 * The answer: a status the task expects (expectStatus, default 2xx) makes
 * the attempt succeed with {"status", "headers", "body"} as the task's
 * output (the body parsed when it is JSON, else a string; at most the
 * output cap). A connection failure, a timeout or another status fails the
 * attempt with a message naming the method and URL (without credentials or
 * query string). Failed attempts are retried per the task's policy, but
 * only for idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) unless the
 * task says "idempotent": true: a POST that may have reached the server is
 * not sent twice behind the user's back. An attempt lost in a crash follows
 * the same rule.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag/template.h"
#include "cluster.h"
#include "engine_internal.h"
#include "httpcall.h"
#include "httptask.h"
#include "kind.h"
#include "recovery.h"
#include "render.h"

#include "base/banned.h"

#define HTTP_DEFAULT_TIMEOUT_MS 60000 /* a task without "timeout" */
#define HTTP_CONNECT_TIMEOUT_MS 10000
#define HTTP_OUTPUT_SLACK 16384 /* room for status and headers beside the body */
#define HTTP_MAX_INFLIGHT 256   /* requests in flight at once (the rest wait their turn) */

/* What a request in flight carries back to the loop. */
struct hreq {
    struct hreq *prev, *next; /* in flight, for freeing */
    char exec_id[ID_MAX];
    size_t idx;
    int attempt;
    char what[300]; /* "POST http://host/path" for messages */
};

/* runs[].http of an attempt whose request waits for the commit. */
static char pending_mark;

/* A request to send once its attempt is committed. */
struct hsend {
    char exec_id[ID_MAX];
    size_t idx;
    int attempt;
};

struct http_state {
    struct httpcalls *hc;
    struct hreq *reqs; /* in flight */
    struct watch w;
    struct hsend *pending;
    size_t npending, alloc;
};

static void req_unlink(struct http_state *hs, struct hreq *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        hs->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static struct http_state *state(struct engine *eng)
{
    if (!eng->http) {
        struct http_state *hs = xcalloc(1, sizeof(*hs));
        hs->w.kind = WATCH_HTTP;
        eng->http = hs;
    }
    return eng->http;
}

/* The value of `key` in a NULL-terminated "K=V" array, or NULL. */
static const char *env_value(char **envp, const char *key)
{
    size_t n = strlen(key);
    for (char **e = envp; e && *e; e++)
        if (!strncmp(*e, key, n) && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* "POST http://host:8080/path?..." without user:password@ and the query. */
static void describe(const char *method, const char *url, char *out, size_t outlen)
{
    const char *scheme_end = strstr(url, "://");
    const char *host = scheme_end ? scheme_end + 3 : url;
    const char *path = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(path - host));
    const char *query = strpbrk(path, "?#");
    int scheme_len = scheme_end ? (int)(scheme_end - url) + 3 : 0;

    if (at)
        host = at + 1;
    snprintf(out, outlen, "%s %.*s%.*s%.*s%s", method, scheme_len, url, (int)(path - host), host,
             query ? (int)(query - path) : (int)strlen(path), path, query ? "?..." : "");
}

static int render_text(const char *text, const json_t *ctx, enum tpl_quote q, char **out,
                       struct err *err)
{
    struct tpl *t = NULL;
    int rc;

    if (!text || !strstr(text, "{{")) {
        *out = text ? xstrdup(text) : NULL;
        return 0;
    }
    rc = tpl_parse(text, &t, err);
    if (rc == 0)
        rc = tpl_render(t, ctx, q, out, err);
    tpl_free(t);
    return rc;
}

/* Values inserted into a URL are percent-encoded, unless the URL starts with
 * a placeholder: then the value is (the start of) the URL itself. */
static enum tpl_quote url_quote(const char *url)
{
    return strncmp(url, "{{", 2) == 0 ? TPL_RAW : TPL_URL;
}

/* The pieces of one request, filled in. */
struct built {
    char *url, *body, *user;
    char **headers; /* "Name: value", NULL-terminated */
    size_t nheaders;
};

static void built_release(struct built *b)
{
    free(b->url);
    free(b->body);
    free(b->user);
    for (size_t i = 0; i < b->nheaders; i++)
        free(b->headers[i]);
    free(b->headers);
    memset(b, 0, sizeof(*b));
}

static int has_header(const struct dag_http *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (!strcasecmp(h->headers[i].key, name))
            return 1;
    return 0;
}

/* Fill in the request of run `idx`. Returns 0, or -1 with msg. */
static int build(const struct exec *ex, size_t idx, struct built *b, char *msg, size_t msglen)
{
    const struct dag_http *h = &engine__task(ex, idx)->http;
    json_t *ctx = engine__render_ctx(ex, idx);
    struct err err = ERR_INIT;
    int rc;

    memset(b, 0, sizeof(*b));
    b->headers = xcalloc(h->nheaders + 3, sizeof(*b->headers)); /* + type, auth, NULL */
    rc = render_text(h->url, ctx, url_quote(h->url), &b->url, &err);
    for (size_t i = 0; rc == 0 && i < h->nheaders; i++) {
        char *v = NULL;
        rc = render_text(h->headers[i].value, ctx, TPL_RAW, &v, &err);
        if (rc == 0 && strpbrk(v, "\r\n"))
            rc = err_set(&err, ERR_INVALID, "header '%s' would hold a line break",
                         h->headers[i].key);
        if (rc == 0)
            b->headers[b->nheaders++] = xasprintf("%s: %s", h->headers[i].key, v);
        free(v);
    }
    if (rc == 0 && h->body) {
        rc = render_text(h->body, ctx, TPL_RAW, &b->body, &err);
        if (rc == 0 && !has_header(h, "Content-Type"))
            b->headers[b->nheaders++] = xstrdup("Content-Type: text/plain; charset=utf-8");
    }
    if (rc == 0 && h->body_json) {
        json_t *body = json_loads(h->body_json, JSON_DECODE_ANY, NULL);
        rc = engine__render_json(body, ctx, &err);
        if (rc == 0)
            b->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(body);
        if (rc == 0 && !has_header(h, "Content-Type"))
            b->headers[b->nheaders++] = xstrdup("Content-Type: application/json");
    }
    if (rc == 0 && h->username)
        rc = render_text(h->username, ctx, TPL_RAW, &b->user, &err);
    json_decref(ctx);
    if (rc == 0 && strncasecmp(b->url, "http://", 7) != 0 && strncasecmp(b->url, "https://", 8) != 0)
        rc = err_set(&err, ERR_INVALID, "its url must start with http:// or https://");
    if (rc) {
        snprintf(msg, msglen, "cannot fill in its request: %.400s", err.msg);
        built_release(b);
        return -1;
    }
    return 0;
}

/* auth.header / auth.query: the value from the environment, added to the request. */
static int credential_value(const struct exec *ex, const struct dag_http *h, struct built *b,
                            char *msg, size_t msglen)
{
    const char *v = env_value(ex->base_env, h->value_env);
    struct strbuf sb = STRBUF_INIT;
    size_t frag;

    if (!v || !*v) {
        snprintf(msg, msglen, "its auth variable %s is not set", h->value_env);
        return -1;
    }
    if (h->auth_header) {
        if (strpbrk(v, "\r\n")) {
            snprintf(msg, msglen, "its auth variable %s holds a line break", h->value_env);
            return -1;
        }
        b->headers[b->nheaders++] = xasprintf("%s: %s", h->auth_header, v);
        return 0;
    }
    /* The query parameter goes before any #fragment. */
    frag = strcspn(b->url, "#");
    strbuf_add(&sb, b->url, frag);
    strbuf_addch(&sb, memchr(b->url, '?', frag) ? '&' : '?');
    strbuf_add_urlencoded(&sb, h->auth_query);
    strbuf_addch(&sb, '=');
    strbuf_add_urlencoded(&sb, v);
    strbuf_adds(&sb, b->url + frag);
    free(b->url);
    b->url = strbuf_detach(&sb, NULL);
    return 0;
}

/* The credentials of the task from the environment: 0, or -1 with msg. */
static int credentials(const struct exec *ex, const struct dag_http *h, struct built *b,
                       const char **user, const char **pass, const char **bearer, char *msg,
                       size_t msglen)
{
    *user = *pass = *bearer = NULL;
    if (h->value_env && credential_value(ex, h, b, msg, msglen) != 0)
        return -1;
    if (h->bearer_env) {
        *bearer = env_value(ex->base_env, h->bearer_env);
        if (!*bearer || !**bearer) {
            snprintf(msg, msglen, "its bearer token variable %s is not set", h->bearer_env);
            return -1;
        }
    }
    if (h->password_env) {
        *pass = env_value(ex->base_env, h->password_env);
        *user = h->username_env ? env_value(ex->base_env, h->username_env) : b->user;
        if (!*pass) {
            snprintf(msg, msglen, "its password variable %s is not set", h->password_env);
            return -1;
        }
        if (!*user) {
            snprintf(msg, msglen, "its user variable %s is not set",
                     h->username_env ? h->username_env : "?");
            return -1;
        }
    }
    return 0;
}

static int64_t request_timeout(const struct dag_task *t)
{
    return t->timeout_ms > 0 ? t->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
}

static void http_done(void *tag, struct httpcall_result *res, void *arg);

/* The request is sent once the attempt is committed (engine__http_send_pending). */
static void http_begin(struct engine *eng, struct exec *ex, size_t idx, int offer)
{
    struct http_state *hs = state(eng);
    struct hsend *s;

    (void)offer;

    XGROW(hs->pending, hs->alloc, hs->npending + 1);
    s = &hs->pending[hs->npending++];
    memcpy(s->exec_id, ex->id, ID_MAX);
    s->idx = idx;
    s->attempt = ex->runs[idx].attempt;
    ex->runs[idx].http = &pending_mark; /* the request's tag once sent */
}

static int ensure_client(struct engine *eng, char *msg, size_t msglen)
{
    struct http_state *hs = state(eng);
    struct err err = ERR_INIT;
    struct epoll_event ev;

    if (hs->hc)
        return 0;
    if (httpcalls_new(&hs->hc, &err) != 0) {
        snprintf(msg, msglen, "cannot make HTTP requests: %.300s", err.msg);
        return -1;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = &hs->w;
    if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, httpcalls_fd(hs->hc), &ev))
        log_error(COMP, "epoll_ctl: %s", strerror(errno));
    return 0;
}

/* Send one committed attempt's request. */
static void send_one(struct engine *eng, const struct hsend *s)
{
    struct http_state *hs = state(eng);
    struct exec *ex = engine__exec_find(eng, s->exec_id);
    const struct dag_task *t;
    struct trun *r;
    struct built b;
    struct httpcall_spec spec;
    struct hreq *q;
    struct err err = ERR_INIT;
    const char *user, *pass, *bearer;
    char msg[600];

    if (!ex || engine__exec_lost(ex) || s->idx >= ex->nruns)
        return;
    r = &ex->runs[s->idx];
    if (r->status != TASK_RUNNING || r->attempt != s->attempt)
        return; /* given up meanwhile (cancel) */
    r->http = NULL;
    t = engine__task(ex, s->idx);
    if (ensure_client(eng, msg, sizeof(msg)) != 0 || build(ex, s->idx, &b, msg, sizeof(msg)) != 0) {
        /* A placeholder that cannot be filled will not be filled by a retry. */
        engine__attempt_fail(eng, ex, s->idx, ATTEMPT_FAILED, msg, 0);
        return;
    }
    if (credentials(ex, &t->http, &b, &user, &pass, &bearer, msg, sizeof(msg)) != 0) {
        built_release(&b);
        engine__attempt_fail(eng, ex, s->idx, ATTEMPT_FAILED, msg, 0);
        return;
    }
    q = xcalloc(1, sizeof(*q));
    memcpy(q->exec_id, ex->id, ID_MAX);
    q->idx = s->idx;
    q->attempt = s->attempt;
    describe(t->http.method, b.url, q->what, sizeof(q->what));
    memset(&spec, 0, sizeof(spec));
    spec.method = t->http.method;
    spec.url = b.url;
    spec.headers = (const char *const *)b.headers;
    spec.body = b.body;
    spec.body_len = b.body ? strlen(b.body) : 0;
    spec.timeout_ms = request_timeout(t);
    spec.connect_timeout_ms = HTTP_CONNECT_TIMEOUT_MS < spec.timeout_ms ? HTTP_CONNECT_TIMEOUT_MS
                                                                        : spec.timeout_ms;
    spec.follow_redirects = t->http.follow_redirects;
    spec.username = user;
    spec.password = pass;
    spec.bearer = bearer;
    spec.policy = eng->netpol;
    spec.max_body = eng->cfg.task_output_cap > HTTP_OUTPUT_SLACK * 2
                        ? eng->cfg.task_output_cap - HTTP_OUTPUT_SLACK
                        : eng->cfg.task_output_cap / 2;
    if (httpcalls_start(hs->hc, &spec, q, &err) != 0) {
        snprintf(msg, sizeof(msg), "%.250s (%.299s)", err.msg, q->what);
        free(q);
        built_release(&b);
        engine__attempt_fail(eng, ex, s->idx, ATTEMPT_FAILED, msg, 0);
        return;
    }
    r->http = q;
    q->next = hs->reqs;
    if (hs->reqs)
        hs->reqs->prev = q;
    hs->reqs = q;
    log_info(COMP_TASK, "Task '%s' started (%s, attempt %d)", engine__task_name(ex, s->idx),
             q->what, r->attempt);
    built_release(&b);
}

void engine__http_send_pending(struct engine *eng)
{
    struct http_state *hs = eng->http;
    size_t n, i;

    if (!hs || !hs->npending)
        return;
    /* send_one may fail an attempt, which may queue more: take the list first.
     * At most HTTP_MAX_INFLIGHT requests are in libcurl's hands, all of them
     * on a connection: a request waiting for one there would be timed from
     * when it was handed over. The others wait here, in order. */
    n = hs->npending;
    for (i = 0; i < n; i++) {
        struct hsend s = hs->pending[i];
        if (hs->hc && httpcalls_active(hs->hc) >= HTTP_MAX_INFLIGHT)
            break;
        send_one(eng, &s);
    }
    n = i;
    memmove(hs->pending, hs->pending + n, (hs->npending - n) * sizeof(*hs->pending));
    hs->npending -= n;
    if (n)
        eng->work_now = 1; /* what failed to send ends its attempt in the next turn;
                             * the rest wait for a request to finish (http_done) */
}

/* Every request of `ex` is given up (the execution was taken by another node). */
static void http_cancel(struct engine *eng, struct exec *ex, size_t idx);

void engine__http_cancel_exec(struct engine *eng, struct exec *ex)
{
    for (size_t i = 0; i < ex->nruns; i++)
        if (ex->runs[i].http)
            http_cancel(eng, ex, i);
}

/* Is the request of run `idx` in libcurl's hands (it may have reached its server)? */
static int http_sent(const struct exec *ex, size_t idx)
{
    const void *h = ex->runs[idx].http;
    return h && h != &pending_mark;
}

/* The request of run `idx` is given up (cancel, timeout of the execution, shutdown). */
static void http_cancel(struct engine *eng, struct exec *ex, size_t idx)
{
    struct http_state *hs = eng->http;
    struct trun *r = &ex->runs[idx];

    if (!r->http || !hs)
        return;
    /* Not sent yet: send_one finds the attempt given up. Sent: abort it. */
    if (r->http != &pending_mark) {
        if (hs->hc)
            httpcalls_cancel(hs->hc, r->http);
        req_unlink(hs, r->http);
        free(r->http);
    }
    r->http = NULL;
}

static int expected(const struct dag_http *h, long status)
{
    for (size_t i = 0; i < h->nexpect; i++)
        if (status >= h->expect[i].lo && status <= h->expect[i].hi)
            return 1;
    return 0;
}

static void expect_text(const struct dag_http *h, char *out, size_t outlen)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < h->nexpect && len + 16 < outlen; i++) {
        const struct dag_status_range *e = &h->expect[i];
        if (e->hi == e->lo + 99 && e->lo % 100 == 0)
            len += (size_t)snprintf(out + len, outlen - len, "%s%dxx", i ? ", " : "",
                                    e->lo / 100);
        else
            len += (size_t)snprintf(out + len, outlen - len, "%s%d", i ? ", " : "", e->lo);
    }
}

static int is_json_type(const char *ct)
{
    const char *semi;
    size_t n;
    if (!ct)
        return 0;
    semi = strchr(ct, ';');
    n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n && ct[n - 1] == ' ')
        n--;
    return (n == 16 && !strncasecmp(ct, "application/json", 16)) ||
           (n > 5 && !strncasecmp(ct + n - 5, "+json", 5));
}

/* The task's output: {"status", "headers", "body"(, "bodyTruncated")}. */
static char *make_output(const struct httpcall_result *res)
{
    json_t *o = json_object(), *body = NULL;
    struct strbuf sb = STRBUF_INIT;
    char *text;

    json_object_set_new(o, "status", json_integer(res->status));
    json_object_set(o, "headers", res->headers);
    if (!res->body_truncated && is_json_type(res->content_type) && res->body_len)
        body = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, NULL);
    if (!body) {
        strbuf_add_utf8(&sb, res->body, res->body_len);
        body = json_stringn(sb.buf ? sb.buf : "", sb.len);
        strbuf_release(&sb);
    }
    json_object_set_new(o, "body", body);
    if (res->body_truncated)
        json_object_set_new(o, "bodyTruncated", json_true());
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* A failure that the task's retries will not repeat: say why. */
static void not_retried(const struct dag_task *t, char *msg, size_t msglen)
{
    size_t n = strlen(msg);
    if (t->http.idempotent || t->retries == 0 || n + 1 >= msglen)
        return;
    snprintf(msg + n, msglen - n, " [not retried: %s is not idempotent; set \"idempotent\": "
             "true if it is safe to repeat]", t->http.method);
}

static void http_done(void *tag, struct httpcall_result *res, void *arg)
{
    struct engine *eng = arg;
    struct hreq *q = tag;
    struct exec *ex = engine__exec_find(eng, q->exec_id);

    req_unlink(eng->http, q);
    const struct dag_task *t;
    struct trun *r;
    char msg[1200];
    if (!ex || q->idx >= ex->nruns || ex->runs[q->idx].http != q) {
        free(q);
        return;
    }
    r = &ex->runs[q->idx];
    r->http = NULL;
    t = engine__task(ex, q->idx);
    eng->work_now = 1;
    if (r->status != TASK_RUNNING || r->attempt != q->attempt) {
        free(q);
        return;
    }
    if (!res->ok) {
        snprintf(msg, sizeof(msg), "%s (%s)", res->error, q->what);
        not_retried(t, msg, sizeof(msg));
        engine__attempt_fail(eng, ex, q->idx,
                             res->timed_out && t->timeout_ms > 0 ? ATTEMPT_TIMED_OUT
                                                                 : ATTEMPT_FAILED,
                             msg, t->http.idempotent);
    } else if (!expected(&t->http, res->status)) {
        char want[100];
        struct strbuf snippet = STRBUF_INIT;
        size_t n = res->body_len < 160 ? res->body_len : 160;
        expect_text(&t->http, want, sizeof(want));
        /* The start of the body, valid UTF-8 (a cut character is replaced), on one line. */
        strbuf_add_utf8(&snippet, res->body, n);
        for (size_t k = 0; k < snippet.len; k++)
            if ((unsigned char)snippet.buf[k] < 0x20)
                snippet.buf[k] = ' ';
        snprintf(msg, sizeof(msg), "Unexpected status %ld, expected %s (%s)%s%.300s",
                 res->status, want, q->what, n ? ": " : "", n ? snippet.buf : "");
        strbuf_release(&snippet);
        not_retried(t, msg, sizeof(msg));
        engine__attempt_fail(eng, ex, q->idx, ATTEMPT_FAILED, msg, t->http.idempotent);
    } else {
        char *out = make_output(res);
        if (!out || strlen(out) > eng->cfg.task_output_cap) {
            snprintf(msg, sizeof(msg), "its response is larger than the output limit of %zu "
                     "bytes (ORCH_MAX_TASK_OUTPUT) (%s)", eng->cfg.task_output_cap, q->what);
            free(out);
            engine__attempt_fail(eng, ex, q->idx, ATTEMPT_FAILED, msg, 0);
        } else {
            engine__attempt_succeed(eng, ex, q->idx, out);
        }
    }
    free(q);
}

void engine__http_run(struct engine *eng)
{
    struct http_state *hs = eng->http;
    if (hs && hs->hc)
        httpcalls_run(hs->hc, http_done, eng);
}

int64_t engine__http_timeout(const struct engine *eng)
{
    const struct http_state *hs = eng->http;
    return hs && hs->hc && httpcalls_active(hs->hc) ? httpcalls_timeout(hs->hc) : -1;
}

size_t engine__http_active(const struct engine *eng)
{
    const struct http_state *hs = eng->http;
    return hs && hs->hc ? httpcalls_active(hs->hc) : 0;
}

void engine__http_free(struct engine *eng)
{
    struct http_state *hs = eng->http;
    if (!hs)
        return;
    if (hs->hc)
        httpcalls_free(hs->hc); /* ends the transfers without calling back */
    while (hs->reqs) {
        struct hreq *q = hs->reqs;
        hs->reqs = q->next;
        free(q);
    }
    for (struct exec *ex = eng->execs; ex; ex = ex->next)
        for (size_t i = 0; i < ex->nruns; i++)
            ex->runs[i].http = NULL;
    free(hs->pending);
    free(hs);
    eng->http = NULL;
}

/* ------------------------------------------------------------------ the http kind */

/* The execution ends early: the request is aborted (or never sent). */
static void http_kind_cancel(struct engine *eng, struct exec *ex, size_t idx,
                             enum attempt_status ast, const char *reason)
{
    http_cancel(eng, ex, idx);
    engine__attempt_fail(eng, ex, idx, ast, reason, 0);
}

/* Shutdown: a request not sent yet, or an idempotent one, is sent again at the
 * next start; one that may have reached its server otherwise fails. */
static int http_interrupt(struct engine *eng, struct exec *ex, size_t idx, struct attempt_row *ran)
{
    const struct dag_task *t = engine__task(ex, idx);
    (void)ran;

    if (!ex->runs[idx].http)
        return 0;
    if (http_sent(ex, idx) && !t->http.idempotent) {
        /* It may have reached its server: not sent again at the next start. */
        char msg[200];
        http_cancel(eng, ex, idx);
        snprintf(msg, sizeof(msg), "interrupted: orch shut down while the request was "
                 "in flight [not sent again: %s is not idempotent]", t->http.method);
        log_warn(COMP_TASK, "Task '%s' %s", engine__task_name(ex, idx), msg);
        engine__attempt_fail(eng, ex, idx, ATTEMPT_FAILED, msg, 0);
        return 0;
    }
    http_cancel(eng, ex, idx); /* sent again at the next start */
    return 1;
}

/* A request lost in a crash may have reached its server: it is repeated only
 * if it is idempotent. */
static void http_restore(struct engine *eng, struct exec *ex, size_t idx,
                         const struct attempt_row *last, int64_t now)
{
    const struct dag_task *t = engine__task(ex, idx);
    char note[200] = "";
    (void)now;

    engine__attempt_restored(eng, ex, idx, last, 0);
    if (!t->http.idempotent && t->retries > 0)
        snprintf(note, sizeof(note), " [not retried: %s is not idempotent]", t->http.method);
    engine__attempt_lost(eng, ex, idx, last, t->http.idempotent, note[0] ? note : NULL);
}

const struct task_kind engine__kind_http = {
    .name = "http",
    .queue = KIND_QUEUE_WAIT,
    .begin = http_begin,
    .cancel = http_kind_cancel,
    .interrupt = http_interrupt,
    .restore = http_restore,
};
