/*
 * httpcall.c - HTTP task requests on libcurl's multi interface.
 *
 * One multi handle per struct httpcalls, driven by curl_multi_socket_action:
 * the socket callback keeps libcurl's sockets in a private epoll descriptor
 * (the one descriptor the engine watches), the timer callback records when
 * libcurl next wants CURL_SOCKET_TIMEOUT. Each request is an easy handle of
 * its own, made at start and cleaned up when it ends; the connections live
 * in the multi handle's pool, so they outlive the easy handles and are
 * reused by the next request to the same host.
 *
 * The module logs nothing: the caller reports failures, with the method and
 * URL it knows, and nothing here can leak a credential into a log.
 */
#include "httpcall.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/curl_api.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "netpolicy.h"

#include "base/banned.h"

/* Connect timeout when neither timeout is given. */
#ifndef HTTPCALL_CONNECT_TIMEOUT_MS
#define HTTPCALL_CONNECT_TIMEOUT_MS 10000
#endif
/* Redirects followed at most (the error message says the same number). */
#ifndef HTTPCALL_MAX_REDIRS
#define HTTPCALL_MAX_REDIRS 10
#endif
/* Bytes of header lines kept per response; more fails the request. */
#ifndef HTTPCALL_MAX_HEADER_BYTES
#define HTTPCALL_MAX_HEADER_BYTES (256 * 1024)
#endif
/* Connections per host and in all; transfers beyond wait in libcurl's queue,
 * where their timeout already runs: callers keep fewer in flight. */
#ifndef HTTPCALL_MAX_HOST_CONNECTIONS
#define HTTPCALL_MAX_HOST_CONNECTIONS 0 /* no limit of its own: the caller bounds requests */
#endif
#ifndef HTTPCALL_MAX_TOTAL_CONNECTIONS
#define HTTPCALL_MAX_TOTAL_CONNECTIONS 256
#endif
/* Idle connections kept open for reuse. */
#ifndef HTTPCALL_MAX_IDLE_CONNECTIONS
#define HTTPCALL_MAX_IDLE_CONNECTIONS 64
#endif
/* Longest method accepted ("PROPPATCH" and the like fit easily). */
#define METHOD_MAX 32
/* epoll events taken per epoll_wait in httpcalls_run. */
#define EVENTS_PER_WAIT 64

/* One request in flight. */
struct call {
    struct httpcalls *hc;
    struct call *prev, *next;
    CURL *easy;
    void *tag;
    struct curl_slist *hdrs;
    char *body;                 /* copy of the request body (libcurl does not copy it), or NULL */
    int64_t timeout_ms;         /* whole request, 0 = none */
    int64_t connect_timeout_ms; /* what libcurl applies to connecting */
    /* response */
    struct strbuf resp; /* at most max_body bytes */
    size_t max_body;
    int truncated;
    json_t *headers; /* of the current (last) response */
    size_t header_bytes;
    int headers_too_big;
    char *last_name;   /* name of the last header, for folded lines */
    unsigned connects; /* PREREQFUNCTION calls: connections made or reused */
    const struct netpolicy *policy;
    char refused[256]; /* the policy's message for the last connection it refused */
    char errbuf[CURL_ERROR_SIZE];
};

struct httpcalls {
    CURLM *multi;
    int epfd;
    int64_t deadline_ns; /* when libcurl wants CURL_SOCKET_TIMEOUT; -1 none */
    struct call *calls;
    size_t active;
};

/* ------------------------------------------------------------------ libcurl */

static const struct curl_api *cu; /* while a struct httpcalls is alive */

/* libcurl times its transfers on the system's clock, so its timer is kept on
 * that clock too, never on a test's manual clock (base/clock.h). */
static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------ multi callbacks */

/* CURLMOPT_SOCKETFUNCTION: mirror libcurl's interest in `s` in the epoll set. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct httpcalls *hc = userp;
    struct epoll_event ev;
    (void)easy;
    (void)socketp;

    if (what == CURL_POLL_REMOVE) {
        /* The socket may be closed already, which removed it: ignore ENOENT/EBADF. */
        epoll_ctl(hc->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    ev.data.fd = s;
    if (epoll_ctl(hc->epfd, EPOLL_CTL_MOD, s, &ev) == 0)
        return 0;
    if (errno == ENOENT && epoll_ctl(hc->epfd, EPOLL_CTL_ADD, s, &ev) == 0)
        return 0;
    return -1; /* libcurl fails the transfers on this socket */
}

/* CURLMOPT_TIMERFUNCTION: remember when libcurl wants CURL_SOCKET_TIMEOUT. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct httpcalls *hc = userp;
    (void)multi;

    hc->deadline_ns = timeout_ms < 0 ? -1 : mono_ns() + (int64_t)timeout_ms * 1000000;
    return 0;
}

/* ------------------------------------------------------------------ easy callbacks */

/* Append `len` bytes as valid UTF-8 (json_string accepts nothing else). */
static void add_text(struct strbuf *sb, const char *s, size_t len)
{
    if (strbuf_add_utf8(sb, s, len))
        BUG("unbounded strbuf refused data");
}

/* Add "name: value" to the headers object, joining a repeated name with ", ". */
static void header_put(struct call *c, const char *name, const char *value, size_t vlen,
                       const char *joiner)
{
    struct strbuf v = STRBUF_INIT;
    json_t *old = json_object_get(c->headers, name);

    if (old) {
        strbuf_adds(&v, json_string_value(old));
        if (vlen)
            strbuf_adds(&v, joiner);
    }
    add_text(&v, value, vlen);
    json_object_set_new(c->headers, name, json_string(v.buf));
    strbuf_release(&v);
}

static size_t on_header(char *data, size_t size, size_t nitems, void *arg)
{
    struct call *c = arg;
    size_t len = size * nitems, n = len, nl, vs, ve;
    struct strbuf name = STRBUF_INIT;

    /* A status line starts the headers of a new response (a redirect, a 1xx). */
    if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
        json_object_clear(c->headers);
        c->header_bytes = 0;
        free(c->last_name);
        c->last_name = NULL;
        return len;
    }
    c->header_bytes += len;
    if (c->header_bytes > HTTPCALL_MAX_HEADER_BYTES) {
        c->headers_too_big = 1;
        return 0; /* aborts the transfer */
    }
    while (n && (data[n - 1] == '\r' || data[n - 1] == '\n'))
        n--;
    if (!n)
        return len; /* the blank line ending the headers */
    if (data[0] == ' ' || data[0] == '\t') {
        /* obsolete line folding: continues the previous value */
        size_t i = 0;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
            i++;
        if (c->last_name)
            header_put(c, c->last_name, data + i, n - i, " ");
        return len;
    }
    for (nl = 0; nl < n && data[nl] != ':'; nl++)
        ;
    if (nl == n || nl == 0)
        return len; /* not a header line: ignore */
    /* Names are tokens; other bytes become valid UTF-8 (ASCII case only is folded). */
    add_text(&name, data, nl);
    for (size_t i = 0; i < name.len; i++)
        if (name.buf[i] >= 'A' && name.buf[i] <= 'Z')
            name.buf[i] = (char)(name.buf[i] - 'A' + 'a');
    vs = nl + 1;
    ve = n;
    while (vs < ve && (data[vs] == ' ' || data[vs] == '\t'))
        vs++;
    while (ve > vs && (data[ve - 1] == ' ' || data[ve - 1] == '\t'))
        ve--;
    header_put(c, name.buf, data + vs, ve - vs, ", ");
    free(c->last_name);
    c->last_name = strbuf_detach(&name, NULL);
    return len;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct call *c = arg;
    size_t len = size * nmemb;
    size_t room = c->max_body - c->resp.len;

    /* Keep what fits; read the rest to the end so the connection stays usable. */
    if (len > room) {
        c->truncated = 1;
        strbuf_add(&c->resp, data, room);
    } else {
        strbuf_add(&c->resp, data, len);
    }
    return len;
}

/* CURLOPT_PREREQFUNCTION: a connection was made or reused, the request goes out. */
/* Every connection libcurl opens: the policy decides before the socket exists. */
static curl_socket_t on_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct call *c = arg;

    if (purpose == CURLSOCKTYPE_IPCXN && c->policy &&
        netpolicy_check(c->policy, &a->addr, c->refused, sizeof(c->refused)) != 0)
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static int on_prereq(void *arg, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    struct call *c = arg;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    c->connects++;
    return CURL_PREREQFUNC_OK;
}

/* ------------------------------------------------------------------ results */

/* "10s", "1.5s", "250ms": a timeout as people write it. */
static void fmt_duration(int64_t ms, char *out, size_t outlen)
{
    if (ms < 1000) {
        snprintf(out, outlen, "%lldms", (long long)ms);
    } else if (ms % 1000 == 0) {
        snprintf(out, outlen, "%llds", (long long)(ms / 1000));
    } else {
        int frac = (int)(ms % 1000), digits = 3;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        snprintf(out, outlen, "%lld.%0*ds", (long long)(ms / 1000), digits, frac);
    }
}

/* The scheme named in libcurl's 'Protocol "file" not supported...' text. */
static void protocol_error(const char *errbuf, char *out, size_t outlen)
{
    const char *q1 = strchr(errbuf, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;

    if (q2 && q2 > q1 + 1)
        snprintf(out, outlen, "Protocol not allowed: %.*s (only http and https)",
                 (int)(q2 - q1 - 1), q1 + 1);
    else
        snprintf(out, outlen, "Protocol not allowed: %.200s",
                 errbuf[0] ? errbuf : "only http and https");
}

static void fill_error(struct call *c, CURLcode cc, struct httpcall_result *res)
{
    static const char resolve_prefix[] = "Could not resolve host: ";
    const char *eb = c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc);
    char d[32];
    long oserr = 0, redirects = 0;

    if (c->refused[0] && cc == CURLE_COULDNT_CONNECT) {
        snprintf(res->error, sizeof(res->error), "%s", c->refused);
        return;
    }
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        cu->easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &oserr);
        if (oserr == ECONNREFUSED)
            snprintf(res->error, sizeof(res->error), "Connection refused");
        else
            snprintf(res->error, sizeof(res->error), "%s", eb);
        break;
    case CURLE_OPERATION_TIMEDOUT:
        res->timed_out = 1;
        /*
         * Every hop of a redirect chain makes (or reuses) one connection and
         * then calls PREREQFUNCTION; the current hop has connected when the
         * calls outnumber the redirects already followed.
         */
        cu->easy_getinfo(c->easy, CURLINFO_REDIRECT_COUNT, &redirects);
        if (c->connects <= (unsigned long)redirects) {
            fmt_duration(c->connect_timeout_ms, d, sizeof(d));
            snprintf(res->error, sizeof(res->error), "Connection timeout after %s", d);
        } else {
            fmt_duration(c->timeout_ms ? c->timeout_ms : res->elapsed_ms, d, sizeof(d));
            snprintf(res->error, sizeof(res->error), "Timeout after %s (no complete response)", d);
        }
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
        if (!strncmp(eb, resolve_prefix, sizeof(resolve_prefix) - 1))
            snprintf(res->error, sizeof(res->error), "Could not resolve host '%s'",
                     eb + sizeof(resolve_prefix) - 1);
        else
            snprintf(res->error, sizeof(res->error), "%s", eb);
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        snprintf(res->error, sizeof(res->error), "Too many redirects (more than %d)",
                 HTTPCALL_MAX_REDIRS);
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        protocol_error(eb, res->error, sizeof(res->error));
        break;
    case CURLE_WRITE_ERROR:
        if (c->headers_too_big) {
            snprintf(res->error, sizeof(res->error),
                     "Response headers too large (more than %d bytes)", HTTPCALL_MAX_HEADER_BYTES);
            break;
        }
        /* fall through */
    default:
        snprintf(res->error, sizeof(res->error), "%s", eb);
        break;
    }
}

static void make_result(struct call *c, CURLcode cc, struct httpcall_result *res)
{
    curl_off_t total_us = 0;
    json_t *ct;

    memset(res, 0, sizeof(*res));
    cu->easy_getinfo(c->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    res->elapsed_ms = (int64_t)total_us / 1000;
    if (cc == CURLE_OK) {
        res->ok = 1;
        cu->easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &res->status);
    } else {
        fill_error(c, cc, res);
    }
    res->headers = c->headers;
    c->headers = NULL;
    ct = json_object_get(res->headers, "content-type");
    if (json_is_string(ct))
        res->content_type = xstrdup(json_string_value(ct));
    res->body_truncated = c->truncated;
    res->body = strbuf_detach(&c->resp, &res->body_len);
}

void httpcall_result_release(struct httpcall_result *r)
{
    if (!r)
        return;
    free(r->body);
    json_decref(r->headers);
    free(r->content_type);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ calls */

static void call_free(struct call *c)
{
    if (c->easy)
        cu->easy_cleanup(c->easy);
    cu->slist_free_all(c->hdrs);
    free(c->body);
    strbuf_release(&c->resp);
    json_decref(c->headers);
    free(c->last_name);
    free(c);
}

/* Take c out of the multi handle and the list, and free it. */
static void call_end(struct call *c)
{
    struct httpcalls *hc = c->hc;

    cu->multi_remove_handle(hc->multi, c->easy);
    if (c->prev)
        c->prev->next = c->next;
    else
        hc->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    hc->active--;
    call_free(c);
}

static int valid_method(const char *m)
{
    size_t n = 0;

    if (!m || !*m)
        return 0;
    for (; m[n]; n++)
        if (m[n] < 'A' || m[n] > 'Z' || n >= METHOD_MAX)
            return 0;
    return 1;
}

/* Length of the "http://" or "https://" prefix of url (any case), or 0. */
static size_t scheme_len(const char *url)
{
    if (!strncasecmp(url, "http://", 7))
        return 7;
    if (!strncasecmp(url, "https://", 8))
        return 8;
    return 0;
}

static int check_spec(const struct httpcall_spec *spec, struct err *err)
{
    size_t sl;

    if (!valid_method(spec->method))
        return err_set(err, ERR_INVALID,
                       "invalid HTTP method '%.*s' (upper-case letters only, like GET)", METHOD_MAX,
                       spec->method ? spec->method : "");
    if (!spec->url)
        return err_set(err, ERR_INVALID, "no URL");
    /* The URL is not quoted in these messages: it may carry credentials. */
    sl = scheme_len(spec->url);
    if (!sl) {
        const char *colon = strstr(spec->url, "://");
        if (colon && colon - spec->url <= 16)
            return err_set(err, ERR_INVALID, "URL scheme '%.*s' not allowed (only http and https)",
                           (int)(colon - spec->url), spec->url);
        return err_set(err, ERR_INVALID, "invalid URL: it must start with http:// or https://");
    }
    if (!spec->url[sl] || spec->url[sl] == '/')
        return err_set(err, ERR_INVALID, "invalid URL: no host after the scheme");
    for (const char *p = spec->url; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return err_set(err, ERR_INVALID,
                           "invalid URL: it contains spaces or control characters");
    for (size_t i = 0; spec->headers && spec->headers[i]; i++) {
        const char *h = spec->headers[i], *colon = strchr(h, ':');
        /* Header values are not quoted either: they often are tokens. */
        if (!colon || colon == h || strpbrk(h, "\r\n"))
            return err_set(err, ERR_INVALID,
                           "invalid request header #%zu (want 'Name: value' on one line)", i + 1);
        for (const char *p = h; p < colon; p++)
            if ((unsigned char)*p <= ' ' || *p == 0x7f)
                return err_set(err, ERR_INVALID, "invalid name in request header #%zu", i + 1);
    }
    if (!spec->body && spec->body_len)
        return err_set(err, ERR_INVALID, "request body length without a body");
    if (spec->timeout_ms < 0 || spec->connect_timeout_ms < 0)
        return err_set(err, ERR_INVALID, "negative timeout");
    return 0;
}

static void setup_easy(struct call *c, const struct httpcall_spec *spec)
{
    CURL *h = c->easy;
    const char *m = spec->method;
    int with_body = spec->body || !strcmp(m, "POST") || !strcmp(m, "PUT") || !strcmp(m, "PATCH");

    cu->easy_setopt(h, CURLOPT_PRIVATE, c);
    cu->easy_setopt(h, CURLOPT_URL, spec->url);
    cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    cu->easy_setopt(h, CURLOPT_USERAGENT, "orch/" ORCH_VERSION);
    cu->easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    cu->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
    cu->easy_setopt(h, CURLOPT_FOLLOWLOCATION, spec->follow_redirects ? 1L : 0L);
    cu->easy_setopt(h, CURLOPT_MAXREDIRS, (long)HTTPCALL_MAX_REDIRS);
    cu->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    cu->easy_setopt(h, CURLOPT_HEADERDATA, c);
    cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    cu->easy_setopt(h, CURLOPT_WRITEDATA, c);
    cu->easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
    cu->easy_setopt(h, CURLOPT_OPENSOCKETDATA, c);
    cu->easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
    cu->easy_setopt(h, CURLOPT_PREREQDATA, c);

    if (!strcmp(m, "HEAD")) {
        cu->easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(m, "GET") && !spec->body) {
        cu->easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        if (with_body) {
            /* POST, PUT and PATCH without a body still say Content-Length: 0. */
            c->body = xmalloc(spec->body_len + 1);
            if (spec->body_len)
                memcpy(c->body, spec->body, spec->body_len);
            c->body[spec->body_len] = '\0';
            cu->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)spec->body_len);
            cu->easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        }
        /* A plain POST is left to libcurl, which turns it into a GET on a 302/303. */
        if (strcmp(m, "POST"))
            cu->easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
    }

    /*
     * libcurl copies these strings, and sends the credentials to the first
     * host only, not after a redirect to another. A bearer token wins over
     * a user name.
     */
    if (spec->bearer) {
        cu->easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
        cu->easy_setopt(h, CURLOPT_XOAUTH2_BEARER, spec->bearer);
    } else if (spec->username) {
        cu->easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        cu->easy_setopt(h, CURLOPT_USERNAME, spec->username);
        cu->easy_setopt(h, CURLOPT_PASSWORD, spec->password ? spec->password : "");
    }

    /* No "Expect: 100-continue" round trip for large bodies. */
    c->hdrs = cu->slist_append(c->hdrs, "Expect:");
    for (size_t i = 0; spec->headers && spec->headers[i]; i++) {
        const char *line = spec->headers[i], *colon = strchr(line, ':');
        const char *v = colon ? colon + 1 + strspn(colon + 1, " \t") : NULL;
        if (v && !*v) {
            /* "Name:" would tell libcurl to drop the header; "Name;" sends it empty. */
            char *e = xasprintf("%.*s;", (int)(colon - line), line);
            c->hdrs = cu->slist_append(c->hdrs, e);
            free(e);
        } else {
            c->hdrs = cu->slist_append(c->hdrs, line);
        }
    }
    if (!c->hdrs)
        BUG("curl_slist_append failed");
    cu->easy_setopt(h, CURLOPT_HTTPHEADER, c->hdrs);
}

int httpcalls_start(struct httpcalls *hc, const struct httpcall_spec *spec, void *tag,
                    struct err *err)
{
    struct call *c;
    int64_t ct;

    if (check_spec(spec, err))
        return ERR_INVALID;
    c = xcalloc(1, sizeof(*c));
    c->hc = hc;
    c->tag = tag;
    c->max_body = spec->max_body;
    c->policy = spec->policy;
    strbuf_init(&c->resp, 0);
    c->headers = json_object();
    if (!c->headers)
        BUG("json_object failed");
    c->timeout_ms = spec->timeout_ms;
    ct = spec->connect_timeout_ms
             ? spec->connect_timeout_ms
             : (spec->timeout_ms ? spec->timeout_ms : HTTPCALL_CONNECT_TIMEOUT_MS);
    /* libcurl gives up connecting at whichever of the two comes first. */
    if (spec->timeout_ms && spec->timeout_ms < ct)
        ct = spec->timeout_ms;
    c->connect_timeout_ms = ct;
    c->easy = cu->easy_init();
    if (!c->easy) {
        call_free(c);
        return err_set(err, ERR_INTERNAL, "cannot create a libcurl handle");
    }
    setup_easy(c, spec);
    if (cu->multi_add_handle(hc->multi, c->easy) != CURLM_OK) {
        call_free(c);
        return err_set(err, ERR_INTERNAL, "cannot add a transfer to libcurl");
    }
    c->next = hc->calls;
    if (hc->calls)
        hc->calls->prev = c;
    hc->calls = c;
    hc->active++;
    return 0;
}

void httpcalls_cancel(struct httpcalls *hc, void *tag)
{
    struct call *c = hc->calls, *next;

    for (; c; c = next) {
        next = c->next;
        if (c->tag == tag)
            call_end(c);
    }
}

/* ------------------------------------------------------------------ the handle */

int httpcalls_new(struct httpcalls **out, struct err *err)
{
    struct httpcalls *hc;

    *out = NULL;
    cu = curl_api_acquire(err);
    if (!cu)
        return ERR_IO;
    hc = xcalloc(1, sizeof(*hc));
    hc->deadline_ns = -1;
    hc->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (hc->epfd < 0) {
        err_set(err, ERR_IO, "cannot create an epoll descriptor: %s", strerror(errno));
        goto fail;
    }
    hc->multi = cu->multi_init();
    if (!hc->multi) {
        err_set(err, ERR_IO, "cannot create a libcurl multi handle");
        goto fail;
    }
    cu->multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    cu->multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
    cu->multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    cu->multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
    cu->multi_setopt(hc->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)HTTPCALL_MAX_HOST_CONNECTIONS);
    cu->multi_setopt(hc->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                     (long)HTTPCALL_MAX_TOTAL_CONNECTIONS);
    cu->multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, (long)HTTPCALL_MAX_IDLE_CONNECTIONS);
    *out = hc;
    return 0;

fail:
    if (hc->epfd >= 0)
        close(hc->epfd);
    free(hc);
    curl_api_release();
    return ERR_IO;
}

void httpcalls_free(struct httpcalls *hc)
{
    if (!hc)
        return;
    while (hc->calls)
        call_end(hc->calls);
    /* Closes the pooled connections (through on_socket, so the epoll set is still open). */
    cu->multi_cleanup(hc->multi);
    close(hc->epfd);
    free(hc);
    curl_api_release();
}

int httpcalls_fd(const struct httpcalls *hc)
{
    return hc->epfd;
}

int64_t httpcalls_timeout(const struct httpcalls *hc)
{
    int64_t left;

    if (hc->deadline_ns < 0)
        return -1;
    left = hc->deadline_ns - mono_ns();
    if (left <= 0)
        return 0;
    /* Round up: waking a little early would only spin the caller's loop. */
    return (left + 999999) / 1000000;
}

size_t httpcalls_active(const struct httpcalls *hc)
{
    return hc->active;
}

void httpcalls_run(struct httpcalls *hc, httpcall_done_fn done, void *arg)
{
    struct epoll_event evs[EVENTS_PER_WAIT];
    int n, running = 0, left = 0;
    CURLMsg *msg;

    n = epoll_wait(hc->epfd, evs, EVENTS_PER_WAIT, 0);
    for (int i = 0; i < n; i++) {
        int flags = 0;
        if (evs[i].events & EPOLLIN)
            flags |= CURL_CSELECT_IN;
        if (evs[i].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            flags |= CURL_CSELECT_ERR;
        cu->multi_socket_action(hc->multi, evs[i].data.fd, flags, &running);
    }
    if (hc->deadline_ns >= 0 && mono_ns() >= hc->deadline_ns) {
        hc->deadline_ns = -1; /* libcurl sets the next one through on_timer */
        cu->multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
    /*
     * One message at a time: done() may cancel a transfer whose message is
     * queued, and curl_multi_remove_handle takes that message out.
     */
    while ((msg = cu->multi_info_read(hc->multi, &left)) != NULL) {
        struct httpcall_result res;
        struct call *c;
        char *priv = NULL;
        void *tag;

        if (msg->msg != CURLMSG_DONE)
            continue;
        cu->easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        if (!priv)
            BUG("libcurl transfer without its call");
        c = (struct call *)(void *)priv;
        make_result(c, msg->data.result, &res);
        tag = c->tag;
        call_end(c);
        if (done)
            done(tag, &res, arg);
        httpcall_result_release(&res);
    }
}
