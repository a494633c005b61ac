/*
 * Unit tests for src/engine/httpcall: real requests to a small HTTP/1.1
 * server of our own on 127.0.0.1, driven by an epoll loop like the engine's.
 *
 * The server is a thread that accepts on an ephemeral loopback port and a
 * thread per connection (keep-alive, Content-Length framing). It counts the
 * connections it accepts, which is how the reuse test sees libcurl's pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "engine/httpcall.h"
#include "engine/netpolicy.h"

/* ------------------------------------------------------------------ the server */

#define REQ_MAX  (256 * 1024)
#define BIG_SIZE (1024 * 1024)

struct server {
    int lfd;
    int port;
    pthread_t acceptor;
    atomic_int stop;
    atomic_int accepts;
    pthread_mutex_t mu;
    pthread_t *threads;
    size_t nthreads, alloc;
};

static struct server srv;

struct conn {
    int fd;
    size_t len;
    char buf[REQ_MAX];
};

struct req {
    char method[16];
    char target[512];
    const char *head; /* the header lines, CRLF-separated */
    size_t head_len;
    const char *body;
    size_t body_len;
    size_t consumed;
    int close;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is readable; 0 when the server is stopping. */
static int wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    while (!atomic_load(&srv.stop)) {
        int n = poll(&p, 1, 50);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 0;
    }
    return 0;
}

/* Sleep ms, or less if the server is stopping. */
static void server_sleep(int ms)
{
    int64_t end = now_ms() + ms;
    while (!atomic_load(&srv.stop) && now_ms() < end) {
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
}

static int read_more(struct conn *c)
{
    ssize_t n;

    if (c->len == sizeof(c->buf) || !wait_readable(c->fd))
        return -1;
    n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

static const char *find_header(const struct req *r, const char *name)
{
    size_t nl = strlen(name);
    const char *p = r->head, *end = r->head + r->head_len;

    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && !strncasecmp(p, name, nl)) {
            p += nl + 1;
            while (*p == ' ')
                p++;
            return p;
        }
        p = eol + 2;
    }
    return NULL;
}

static int read_request(struct conn *c, struct req *r)
{
    char *end;
    const char *cl;
    size_t head_len, clen = 0;

    memset(r, 0, sizeof(*r));
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (read_more(c))
            return -1;
    head_len = (size_t)(end - c->buf) + 4;
    if (sscanf(c->buf, "%15s %511s", r->method, r->target) != 2)
        return -1;
    r->head = (const char *)memmem(c->buf, head_len, "\r\n", 2) + 2;
    r->head_len = (size_t)(end + 2 - r->head);
    cl = find_header(r, "Content-Length");
    if (cl)
        clen = strtoul(cl, NULL, 10);
    if (head_len + clen > sizeof(c->buf))
        return -1;
    while (c->len < head_len + clen)
        if (read_more(c))
            return -1;
    r->body = c->buf + head_len;
    r->body_len = clen;
    r->consumed = head_len + clen;
    cl = find_header(r, "Connection");
    r->close = cl && !strncasecmp(cl, "close", 5);
    return 0;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void respond(int fd, const struct req *r, int status, const char *extra, const char *body,
                    size_t body_len)
{
    char head[1024];
    int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status,
                     body_len, extra ? extra : "");
    send_all(fd, head, (size_t)n);
    if (strcmp(r->method, "HEAD"))
        send_all(fd, body, body_len);
}

static const char *query(const char *target, const char *key)
{
    const char *q = strchr(target, '?');
    size_t kl = strlen(key);

    while (q) {
        q++;
        if (!strncmp(q, key, kl) && q[kl] == '=')
            return q + kl + 1;
        q = strchr(q, '&');
    }
    return NULL;
}

/* Serve one request; -1 to close the connection. */
static int serve(struct conn *c, const struct req *r)
{
    const char *t = r->target, *v;
    char extra[600];

    if (!strcmp(t, "/ok")) {
        static const char body[] = "{\"ok\":true}";
        respond(c->fd, r, 200,
                "Content-Type: application/json\r\nX-Custom: yes\r\n"
                "X-Multi: a\r\nX-Multi: b\r\nX-Fold: one\r\n  two\r\n",
                body, strlen(body));
    } else if (!strncmp(t, "/status/", 8)) {
        int st = (int)strtol(t + 8, NULL, 10);
        respond(c->fd, r, st, "Content-Type: text/plain\r\n", "status", 6);
    } else if (!strncmp(t, "/slow", 5)) {
        v = query(t, "ms");
        server_sleep(v ? (int)strtol(v, NULL, 10) : 100);
        respond(c->fd, r, 200, NULL, "slow", 4);
    } else if (!strcmp(t, "/hang-headers")) {
        /* Never answer; wait for the client to go away. */
        char tmp[256];
        while (wait_readable(c->fd) && recv(c->fd, tmp, sizeof(tmp), 0) > 0)
            ;
        return -1;
    } else if (!strncmp(t, "/redirect?", 10)) {
        v = query(t, "to");
        snprintf(extra, sizeof(extra), "Location: %s\r\nX-Hop: first\r\n", v ? v : "/ok");
        respond(c->fd, r, 302, extra, "", 0);
    } else if (!strcmp(t, "/many-headers")) {
        /* 300 KiB of header lines, more than httpcall keeps */
        char line[64];
        send_all(c->fd, "HTTP/1.1 200 X\r\n", 16);
        for (int i = 0; i < 6000; i++) {
            int n = snprintf(line, sizeof(line), "X-H%d: %040d\r\n", i, i);
            send_all(c->fd, line, (size_t)n);
        }
        send_all(c->fd, "Content-Length: 0\r\n\r\n", 21);
    } else if (!strcmp(t, "/loop")) {
        respond(c->fd, r, 302, "Location: /loop\r\n", "", 0);
    } else if (!strcmp(t, "/redirect-file")) {
        respond(c->fd, r, 302, "Location: file:///etc/passwd\r\n", "", 0);
    } else if (!strcmp(t, "/big")) {
        char *body = malloc(BIG_SIZE);
        memset(body, 'b', BIG_SIZE);
        respond(c->fd, r, 200, "Content-Type: application/octet-stream\r\n", body, BIG_SIZE);
        free(body);
    } else if (!strcmp(t, "/echo")) {
        size_t n = r->head_len + r->body_len + 64;
        char *body = malloc(n);
        int k = snprintf(body, n, "method=%s\n%.*s\n", r->method, (int)r->head_len, r->head);
        memcpy(body + k, r->body, r->body_len);
        respond(c->fd, r, 200, "Content-Type: text/plain\r\n", body, (size_t)k + r->body_len);
        free(body);
    } else {
        respond(c->fd, r, 404, NULL, "not found", 9);
    }
    return r->close ? -1 : 0;
}

static void *conn_main(void *arg)
{
    struct conn *c = arg;
    struct req r;

    while (read_request(c, &r) == 0 && serve(c, &r) == 0) {
        memmove(c->buf, c->buf + r.consumed, c->len - r.consumed);
        c->len -= r.consumed;
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *acceptor_main(void *arg)
{
    (void)arg;
    while (wait_readable(srv.lfd)) {
        int fd = accept4(srv.lfd, NULL, NULL, SOCK_CLOEXEC);
        struct conn *c;
        if (fd < 0)
            continue;
        atomic_fetch_add(&srv.accepts, 1);
        c = calloc(1, sizeof(*c));
        c->fd = fd;
        pthread_mutex_lock(&srv.mu);
        XGROW(srv.threads, srv.alloc, srv.nthreads + 1);
        if (pthread_create(&srv.threads[srv.nthreads], NULL, conn_main, c) == 0) {
            srv.nthreads++;
        } else {
            close(fd);
            free(c);
        }
        pthread_mutex_unlock(&srv.mu);
    }
    return NULL;
}

/* A TCP socket bound to 127.0.0.1 on an ephemeral port; *port receives the port. */
static int loopback_socket(int *port)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static int server_start(void **state)
{
    (void)state;
    memset(&srv, 0, sizeof(srv));
    pthread_mutex_init(&srv.mu, NULL);
    srv.lfd = loopback_socket(&srv.port);
    if (listen(srv.lfd, 128))
        return -1;
    return pthread_create(&srv.acceptor, NULL, acceptor_main, NULL) ? -1 : 0;
}

static int server_stop(void **state)
{
    (void)state;
    atomic_store(&srv.stop, 1);
    pthread_join(srv.acceptor, NULL);
    for (size_t i = 0; i < srv.nthreads; i++)
        pthread_join(srv.threads[i], NULL);
    free(srv.threads);
    close(srv.lfd);
    pthread_mutex_destroy(&srv.mu);
    return 0;
}

/* ------------------------------------------------------------------ the client loop */

struct outcome {
    int done; /* times done() was called for this tag */
    int ok;
    long status;
    int timed_out;
    char error[256];
    char *body;
    size_t body_len;
    int truncated;
    json_t *headers;
    char *content_type;
    int64_t elapsed_ms;
};

struct loop {
    struct httpcalls *hc;
    int ep; /* the engine's epoll: holds httpcalls_fd */
    int finished;
};

static void outcome_release(struct outcome *o)
{
    free(o->body);
    free(o->content_type);
    json_decref(o->headers);
    memset(o, 0, sizeof(*o));
}

static void on_done(void *tag, struct httpcall_result *res, void *arg)
{
    struct outcome *o = tag;
    struct loop *l = arg;

    o->done++;
    o->ok = res->ok;
    o->status = res->status;
    o->timed_out = res->timed_out;
    memcpy(o->error, res->error, sizeof(o->error));
    assert_non_null(res->body);
    assert_non_null(res->headers);
    assert_int_equal(res->body[res->body_len], '\0');
    free(o->body);
    o->body = xmalloc(res->body_len + 1); /* may hold NUL bytes */
    memcpy(o->body, res->body, res->body_len + 1);
    o->body_len = res->body_len;
    o->truncated = res->body_truncated;
    json_decref(o->headers);
    o->headers = json_incref(res->headers); /* res itself is released after done() */
    free(o->content_type);
    o->content_type = res->content_type ? xstrdup(res->content_type) : NULL;
    o->elapsed_ms = res->elapsed_ms;
    l->finished++;
}

static void loop_init(struct loop *l)
{
    struct err err = ERR_INIT;
    struct epoll_event ev = {.events = EPOLLIN};

    memset(l, 0, sizeof(*l));
    assert_int_equal(httpcalls_new(&l->hc, &err), 0);
    l->ep = epoll_create1(EPOLL_CLOEXEC);
    assert_true(l->ep >= 0);
    ev.data.fd = httpcalls_fd(l->hc);
    assert_int_equal(epoll_ctl(l->ep, EPOLL_CTL_ADD, httpcalls_fd(l->hc), &ev), 0);
}

static void loop_release(struct loop *l)
{
    httpcalls_free(l->hc);
    close(l->ep);
}

/*
 * Run the loop as the engine does until `want` requests have finished, or
 * for `ms` at most (then also when none is expected).
 */
static void loop_run(struct loop *l, int want, int64_t ms)
{
    int64_t end = now_ms() + ms;

    while (l->finished < want || want < 0) {
        int64_t left = end - now_ms(), t = httpcalls_timeout(l->hc);
        struct epoll_event ev;

        if (left <= 0)
            break;
        if (t < 0 || t > left)
            t = left;
        epoll_wait(l->ep, &ev, 1, (int)t);
        httpcalls_run(l->hc, on_done, l);
    }
}

static void start(struct loop *l, const struct httpcall_spec *spec, struct outcome *o)
{
    struct err err = ERR_INIT;
    int rc = httpcalls_start(l->hc, spec, o, &err);
    if (rc)
        fail_msg("httpcalls_start: %s", err.msg);
}

static char *url(const char *path)
{
    return xasprintf("http://127.0.0.1:%d%s", srv.port, path);
}

static struct httpcall_spec get_spec(const char *u)
{
    struct httpcall_spec s;
    memset(&s, 0, sizeof(s));
    s.method = "GET";
    s.url = u;
    s.timeout_ms = 10000;
    s.max_body = 1 << 20;
    return s;
}

/* One request from start to finish. */
static void call_one(const struct httpcall_spec *spec, struct outcome *o)
{
    struct loop l;
    loop_init(&l);
    start(&l, spec, o);
    loop_run(&l, 1, 15000);
    assert_int_equal(o->done, 1);
    assert_int_equal(httpcalls_active(l.hc), 0);
    loop_release(&l);
}

static const char *hdr(const struct outcome *o, const char *name)
{
    return json_string_value(json_object_get(o->headers, name));
}

/* ------------------------------------------------------------------ tests */

static void test_get_ok(void **state)
{
    char *u = url("/ok");
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    call_one(&s, &o);
    assert_true(o.ok);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "{\"ok\":true}");
    assert_int_equal(o.body_len, 11);
    assert_false(o.truncated);
    assert_string_equal(hdr(&o, "x-custom"), "yes");
    assert_string_equal(hdr(&o, "x-multi"), "a, b");
    assert_string_equal(hdr(&o, "content-length"), "11");
    assert_string_equal(hdr(&o, "x-fold"), "one two");
    assert_string_equal(o.content_type, "application/json");
    assert_string_equal(o.error, "");
    assert_true(o.elapsed_ms >= 0 && o.elapsed_ms < 5000);
    outcome_release(&o);

    /* HEAD: headers, no body */
    s.method = "HEAD";
    call_one(&s, &o);
    assert_true(o.ok);
    assert_int_equal(o.status, 200);
    assert_int_equal(o.body_len, 0);
    assert_string_equal(o.body, "");
    assert_string_equal(hdr(&o, "x-custom"), "yes");
    outcome_release(&o);
    free(u);
}

static void test_post_echo_auth(void **state)
{
    char *u = url("/echo");
    static const char body[] = "{\"a\":1,\"b\":\"two\"}";
    const char *headers[] = {"X-Test: 42", "Content-Type: application/json", NULL};
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    s.method = "POST";
    s.headers = headers;
    s.body = body;
    s.body_len = strlen(body);
    s.username = "user";
    s.password = "pass";
    call_one(&s, &o);
    assert_true(o.ok);
    assert_int_equal(o.status, 200);
    assert_non_null(strstr(o.body, "method=POST\n"));
    assert_non_null(strstr(o.body, "X-Test: 42\r\n"));
    assert_non_null(strstr(o.body, "Content-Type: application/json\r\n"));
    assert_non_null(strstr(o.body, "Authorization: Basic dXNlcjpwYXNz\r\n")); /* user:pass */
    assert_non_null(strstr(o.body, "User-Agent: orch/" ORCH_VERSION "\r\n"));
    assert_non_null(strstr(o.body, "Content-Length: 17\r\n"));
    assert_null(strstr(o.body, "Expect:"));
    assert_int_equal(strcmp(o.body + o.body_len - strlen(body), body), 0);
    outcome_release(&o);

    /* PUT with a bearer token and a body with a NUL byte in it */
    s.method = "PUT";
    s.username = s.password = NULL;
    s.bearer = "tok-123";
    s.headers = NULL;
    s.body = "x\0y";
    s.body_len = 3;
    call_one(&s, &o);
    assert_true(o.ok);
    assert_non_null(strstr(o.body, "method=PUT\n"));
    assert_non_null(strstr(o.body, "Authorization: Bearer tok-123\r\n"));
    assert_non_null(strstr(o.body, "Content-Length: 3\r\n"));
    assert_memory_equal(o.body + o.body_len - 3, "x\0y", 3);
    outcome_release(&o);

    /* DELETE without a body; a POST without a body says Content-Length: 0 */
    s.method = "DELETE";
    s.bearer = NULL;
    s.body = NULL;
    s.body_len = 0;
    call_one(&s, &o);
    assert_true(o.ok);
    assert_non_null(strstr(o.body, "method=DELETE\n"));
    assert_null(strstr(o.body, "Authorization:"));
    outcome_release(&o);
    s.method = "POST";
    call_one(&s, &o);
    assert_non_null(strstr(o.body, "method=POST\n"));
    assert_non_null(strstr(o.body, "Content-Length: 0\r\n"));
    outcome_release(&o);
    free(u);
}

static void test_status_codes(void **state)
{
    static const long codes[] = {404, 500, 204};
    (void)state;

    for (size_t i = 0; i < 3; i++) {
        char path[32];
        char *u;
        struct httpcall_spec s;
        struct outcome o = {0};

        snprintf(path, sizeof(path), "/status/%ld", codes[i]);
        u = url(path);
        s = get_spec(u);
        call_one(&s, &o);
        assert_true(o.ok);
        assert_int_equal(o.status, codes[i]);
        assert_false(o.timed_out);
        outcome_release(&o);
        free(u);
    }
}

static void test_timeout(void **state)
{
    char *u = url("/slow?ms=3000");
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    int64_t t0 = now_ms();
    (void)state;

    s.timeout_ms = 300;
    call_one(&s, &o);
    assert_false(o.ok);
    assert_true(o.timed_out);
    assert_string_equal(o.error, "Timeout after 300ms (no complete response)");
    assert_true(now_ms() - t0 < 2000);
    outcome_release(&o);
    free(u);

    u = url("/hang-headers");
    s = get_spec(u);
    s.timeout_ms = 1500;
    call_one(&s, &o);
    assert_false(o.ok);
    assert_true(o.timed_out);
    assert_string_equal(o.error, "Timeout after 1.5s (no complete response)");
    assert_true(o.elapsed_ms >= 1400);
    outcome_release(&o);
    free(u);
}

/* A timeout on a reused connection is a response timeout, not a connect one. */
static void test_timeout_reused_connection(void **state)
{
    char *u1 = url("/ok"), *u2 = url("/slow?ms=3000");
    struct httpcall_spec s1 = get_spec(u1), s2 = get_spec(u2);
    struct outcome o1 = {0}, o2 = {0};
    struct loop l;
    int accepts;
    (void)state;

    loop_init(&l);
    start(&l, &s1, &o1);
    loop_run(&l, 1, 5000);
    assert_true(o1.ok);
    accepts = atomic_load(&srv.accepts);
    s2.timeout_ms = 250;
    start(&l, &s2, &o2);
    loop_run(&l, 2, 5000);
    assert_int_equal(atomic_load(&srv.accepts), accepts); /* it was reused */
    assert_false(o2.ok);
    assert_true(o2.timed_out);
    assert_string_equal(o2.error, "Timeout after 250ms (no complete response)");
    loop_release(&l);
    outcome_release(&o1);
    outcome_release(&o2);
    free(u1);
    free(u2);
}

static void test_connect_refused(void **state)
{
    int port;
    int fd = loopback_socket(&port); /* bound, never listening: the port is refused */
    char *u = xasprintf("http://127.0.0.1:%d/x", port);
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    call_one(&s, &o);
    assert_false(o.ok);
    assert_false(o.timed_out);
    assert_string_equal(o.error, "Connection refused");
    outcome_release(&o);
    free(u);
    close(fd);
}

/*
 * A listener whose accept queue is full drops new SYNs, so a connection to
 * it stays in progress until the connect timeout: listen(fd, 0), never
 * accept, and fill the queue with connections of our own first.
 */
static void test_connect_timeout(void **state)
{
    int port, lfd = loopback_socket(&port), fillers[16], nfill = 0, full = 0;
    struct sockaddr_in a;
    char *u = xasprintf("http://127.0.0.1:%d/x", port);
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    assert_int_equal(listen(lfd, 0), 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    while (nfill < 16 && !full) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        fillers[nfill++] = fd;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
            continue;
        assert_int_equal(errno, EINPROGRESS);
        full = poll(&p, 1, 300) == 0; /* not connected in 300 ms: the queue is full */
    }
    if (!full) {
        for (int i = 0; i < nfill; i++)
            close(fillers[i]);
        close(lfd);
        free(u);
        skip();
    }
    s.connect_timeout_ms = 400;
    call_one(&s, &o);
    assert_false(o.ok);
    assert_true(o.timed_out);
    assert_string_equal(o.error, "Connection timeout after 400ms");
    outcome_release(&o);

    /* Without a connect timeout the whole-request timeout applies. */
    s.connect_timeout_ms = 0;
    s.timeout_ms = 1200;
    call_one(&s, &o);
    assert_true(o.timed_out);
    assert_string_equal(o.error, "Connection timeout after 1.2s");
    outcome_release(&o);

    /* The first hop of a redirect connected, the second cannot. */
    free(u);
    {
        char *path = xasprintf("/redirect?to=http://127.0.0.1:%d/x", port);
        u = url(path);
        free(path);
    }
    s = get_spec(u);
    s.follow_redirects = 1;
    s.connect_timeout_ms = 300;
    call_one(&s, &o);
    assert_true(o.timed_out);
    assert_string_equal(o.error, "Connection timeout after 300ms");
    outcome_release(&o);

    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    close(lfd);
    free(u);
}

static void test_redirects(void **state)
{
    char *u = url("/redirect?to=/ok");
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    s.follow_redirects = 1;
    call_one(&s, &o);
    assert_true(o.ok);
    assert_int_equal(o.status, 200);
    assert_string_equal(o.body, "{\"ok\":true}");
    assert_string_equal(hdr(&o, "x-custom"), "yes");
    assert_null(hdr(&o, "location")); /* headers of the last response only */
    assert_null(hdr(&o, "x-hop"));
    outcome_release(&o);

    s.follow_redirects = 0;
    call_one(&s, &o);
    assert_true(o.ok);
    assert_int_equal(o.status, 302);
    assert_string_equal(hdr(&o, "location"), "/ok");
    assert_string_equal(hdr(&o, "x-hop"), "first");
    outcome_release(&o);
    free(u);
}

/* Credentials go to the host they were given for, not to another after a redirect. */
static void test_redirect_keeps_credentials(void **state)
{
    char *path = xasprintf("/redirect?to=http://localhost:%d/echo", srv.port);
    char *u = url(path), *direct = url("/redirect?to=/echo");
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    s.follow_redirects = 1;
    s.username = "user";
    s.password = "pass";
    call_one(&s, &o);
    assert_true(o.ok);
    assert_non_null(strstr(o.body, "method=GET\n"));
    assert_non_null(strstr(o.body, "Host: localhost:"));
    assert_null(strstr(o.body, "Authorization:"));
    outcome_release(&o);

    s.url = direct; /* same host: sent again */
    s.username = NULL;
    s.bearer = "tok";
    call_one(&s, &o);
    assert_true(o.ok);
    assert_non_null(strstr(o.body, "Authorization: Bearer tok\r\n"));
    outcome_release(&o);
    free(direct);
    free(u);
    free(path);
}

static void test_headers_too_large(void **state)
{
    char *u = url("/many-headers");
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    call_one(&s, &o);
    assert_false(o.ok);
    assert_false(o.timed_out);
    assert_string_equal(o.error, "Response headers too large (more than 262144 bytes)");
    outcome_release(&o);
    free(u);
}

static void test_redirect_loop(void **state)
{
    char *u = url("/loop");
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    s.follow_redirects = 1;
    call_one(&s, &o);
    assert_false(o.ok);
    assert_false(o.timed_out);
    assert_string_equal(o.error, "Too many redirects (more than 10)");
    outcome_release(&o);
    free(u);
}

static void test_redirect_file_refused(void **state)
{
    char *u = url("/redirect-file");
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    s.follow_redirects = 1;
    call_one(&s, &o);
    assert_false(o.ok);
    assert_false(o.timed_out);
    assert_int_equal(strncmp(o.error, "Protocol not allowed: ", 22), 0);
    assert_non_null(strstr(o.error, "file"));
    assert_null(strstr(o.error, "root:")); /* nothing of /etc/passwd */
    outcome_release(&o);
    free(u);
}

static void test_big_body_truncated(void **state)
{
    char *u = url("/big");
    struct httpcall_spec s = get_spec(u);
    struct outcome o1 = {0}, o2 = {0};
    struct loop l;
    int accepts;
    (void)state;

    loop_init(&l);
    accepts = atomic_load(&srv.accepts);
    s.max_body = 1000;
    start(&l, &s, &o1);
    loop_run(&l, 1, 10000);
    assert_true(o1.ok);
    assert_int_equal(o1.status, 200);
    assert_int_equal(o1.body_len, 1000);
    assert_true(o1.truncated);
    assert_int_equal(strspn(o1.body, "b"), 1000);

    /* Read to the end, so the same connection serves the next request. */
    s.max_body = 2 * BIG_SIZE;
    start(&l, &s, &o2);
    loop_run(&l, 2, 10000);
    assert_true(o2.ok);
    assert_int_equal(o2.body_len, BIG_SIZE);
    assert_false(o2.truncated);
    assert_int_equal(atomic_load(&srv.accepts) - accepts, 1);
    loop_release(&l);
    outcome_release(&o1);
    outcome_release(&o2);
    free(u);
}

static void test_concurrent(void **state)
{
    enum { N = 50 };
    char *u = url("/slow?ms=200");
    struct httpcall_spec s = get_spec(u);
    struct outcome *o = calloc(N, sizeof(*o));
    struct loop l;
    int64_t t0, took;
    (void)state;

    loop_init(&l);
    t0 = now_ms();
    for (int i = 0; i < N; i++)
        start(&l, &s, &o[i]);
    assert_int_equal(httpcalls_active(l.hc), N);
    loop_run(&l, N, 10000);
    took = now_ms() - t0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(o[i].done, 1);
        assert_true(o[i].ok);
        assert_string_equal(o[i].body, "slow");
        outcome_release(&o[i]);
    }
    /* 16 connections to the host at a time: 4 rounds of 200 ms, not 50. */
    assert_true(took < 3000);
    assert_int_equal(httpcalls_active(l.hc), 0);
    loop_release(&l);
    free(o);
    free(u);
}

static void test_connection_reuse(void **state)
{
    char *u = url("/ok");
    struct httpcall_spec s = get_spec(u);
    struct loop l;
    int accepts;
    (void)state;

    loop_init(&l);
    accepts = atomic_load(&srv.accepts);
    for (int i = 0; i < 20; i++) {
        struct outcome o = {0};
        start(&l, &s, &o);
        loop_run(&l, i + 1, 5000);
        assert_int_equal(o.done, 1);
        assert_true(o.ok);
        outcome_release(&o);
    }
    assert_true(atomic_load(&srv.accepts) - accepts <= 2);
    loop_release(&l);
    free(u);
}

static void test_cancel(void **state)
{
    char *u1 = url("/slow?ms=300"), *u2 = url("/ok");
    struct httpcall_spec s1 = get_spec(u1), s2 = get_spec(u2);
    struct outcome a = {0}, b = {0}, c = {0};
    struct loop l;
    (void)state;

    loop_init(&l);
    start(&l, &s1, &a);
    start(&l, &s2, &b);
    start(&l, &s1, &c);
    loop_run(&l, -1, 50); /* under way */
    httpcalls_cancel(l.hc, &a);
    httpcalls_cancel(l.hc, &c);
    httpcalls_cancel(l.hc, &c); /* twice is harmless */
    httpcalls_cancel(l.hc, &l); /* unknown tag */
    loop_run(&l, 1, 5000);
    assert_int_equal(b.done, 1);
    loop_run(&l, -1, 600); /* past the time a and c would have answered */
    assert_int_equal(a.done, 0);
    assert_int_equal(c.done, 0);
    assert_int_equal(l.finished, 1);
    assert_int_equal(httpcalls_active(l.hc), 0);
    loop_release(&l);
    outcome_release(&b);
    free(u1);
    free(u2);
}

/* done() may start the next request and cancel others. */
struct chain {
    struct loop *l;
    struct httpcall_spec *spec;
    struct outcome first, second, victim;
};

static void chain_done(void *tag, struct httpcall_result *res, void *arg)
{
    struct chain *ch = arg;

    on_done(tag, res, ch->l);
    if (tag == &ch->first) {
        httpcalls_cancel(ch->l->hc, &ch->victim);
        start(ch->l, ch->spec, &ch->second);
    }
}

static void test_done_starts_and_cancels(void **state)
{
    char *u = url("/ok"), *slow = url("/slow?ms=200");
    struct httpcall_spec s = get_spec(u), sv = get_spec(slow);
    struct loop l;
    struct chain ch;
    int64_t end;
    (void)state;

    memset(&ch, 0, sizeof(ch));
    loop_init(&l);
    ch.l = &l;
    ch.spec = &s;
    start(&l, &s, &ch.first);
    start(&l, &sv, &ch.victim);
    end = now_ms() + 5000;
    while (now_ms() < end && (l.finished < 2 || now_ms() < end - 4500)) {
        struct epoll_event ev;
        int64_t t = httpcalls_timeout(l.hc);
        epoll_wait(l.ep, &ev, 1, t < 0 || t > 50 ? 50 : (int)t);
        httpcalls_run(l.hc, chain_done, &ch);
    }
    assert_int_equal(ch.first.done, 1);
    assert_int_equal(ch.second.done, 1);
    assert_true(ch.second.ok);
    assert_int_equal(ch.victim.done, 0);
    assert_int_equal(httpcalls_active(l.hc), 0);
    loop_release(&l);
    outcome_release(&ch.first);
    outcome_release(&ch.second);
    free(u);
    free(slow);
}

static void test_invalid(void **state)
{
    static const char *const bad_urls[] = {
        "ftp://127.0.0.1/x", "file:///etc/passwd", "127.0.0.1/x", "",
        "http://",           "https:///x",         "http://a b/", "gopher://x",
    };
    static const char *const bad_methods[] = {
        "", "get", "G ET", "GET\r\n", "P0ST", "AVERYLONGMETHODNAMETHATGOESONANDONANDON"};
    const char *bad_hdr1[] = {"X-A: 1\r\nX-B: 2", NULL};
    const char *bad_hdr2[] = {"no colon", NULL};
    const char *bad_hdr3[] = {": empty name", NULL};
    const char *const *bad_hdrs[] = {bad_hdr1, bad_hdr2, bad_hdr3};
    struct loop l;
    struct outcome o = {0};
    char *good = url("/ok");
    (void)state;

    loop_init(&l);
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        struct httpcall_spec s = get_spec(bad_urls[i]);
        struct err err = ERR_INIT;
        assert_int_equal(httpcalls_start(l.hc, &s, &o, &err), ERR_INVALID);
        assert_int_equal(err.code, ERR_INVALID);
        assert_true(strlen(err.msg) > 0);
    }
    for (size_t i = 0; i < sizeof(bad_methods) / sizeof(bad_methods[0]); i++) {
        struct httpcall_spec s = get_spec(good);
        struct err err = ERR_INIT;
        s.method = bad_methods[i];
        assert_int_equal(httpcalls_start(l.hc, &s, &o, &err), ERR_INVALID);
        assert_non_null(strstr(err.msg, "method"));
    }
    for (size_t i = 0; i < 3; i++) {
        struct httpcall_spec s = get_spec(good);
        struct err err = ERR_INIT;
        s.headers = bad_hdrs[i];
        assert_int_equal(httpcalls_start(l.hc, &s, &o, &err), ERR_INVALID);
        assert_non_null(strstr(err.msg, "header"));
    }
    {
        /* upper-case scheme is fine */
        char *up = xasprintf("HTTP://127.0.0.1:%d/ok", srv.port);
        struct httpcall_spec s = get_spec(up);
        s.method = "PATCH";
        start(&l, &s, &o);
        loop_run(&l, 1, 5000);
        assert_true(o.ok);
        free(up);
    }
    assert_int_equal(httpcalls_active(l.hc), 0);
    loop_release(&l);
    outcome_release(&o);
    free(good);
}

static void test_timeout_reporting(void **state)
{
    struct loop l;
    char *u = url("/slow?ms=100");
    struct httpcall_spec s = get_spec(u);
    struct outcome o = {0};
    (void)state;

    loop_init(&l);
    assert_int_equal(httpcalls_timeout(l.hc), -1); /* nothing to do */
    assert_int_equal(httpcalls_active(l.hc), 0);
    start(&l, &s, &o);
    assert_int_equal(httpcalls_active(l.hc), 1);
    assert_true(httpcalls_timeout(l.hc) >= 0); /* libcurl wants to begin */
    assert_true(httpcalls_timeout(l.hc) <= 10000);
    loop_run(&l, 1, 5000);
    assert_true(o.ok);
    loop_release(&l);
    outcome_release(&o);
    free(u);
}

/* httpcalls_free with transfers under way frees everything (ASan's leak check). */
static struct sockaddr_storage sa_of(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return ss;
}

/* 1: allowed, 0: refused (why filled). */
static int allowed(const struct netpolicy *np, const char *ip, int port, char *why, size_t n)
{
    struct sockaddr_storage ss = sa_of(ip, port);
    why[0] = '\0';
    return netpolicy_check(np, (struct sockaddr *)&ss, why, n) == 0;
}

/* Where HTTP requests may connect: the rules, and the check on every connection. */
static void test_network_policy(void **state)
{
    struct netpolicy *np = NULL;
    struct err err = ERR_INIT;
    char why[256];
    int port;
    int fd = loopback_socket(&port);
    char *u, *u2, *target;
    struct httpcall_spec s;
    struct outcome o = {0};
    int accepts;
    (void)state;

    /* Defaults: link-local denied (also IPv4-mapped), loopback and the rest allowed. */
    assert_int_equal(netpolicy_new(NULL, "", &np, &err), 0);
    assert_false(allowed(np, "169.254.169.254", 80, why, sizeof(why)));
    assert_string_equal(why, "refused to connect to 169.254.169.254:80: a link-local address "
                             "(169.254.0.0/16) (to allow it: ORCH_HTTP_ALLOW=169.254.169.254)");
    assert_false(allowed(np, "::ffff:169.254.1.2", 443, why, sizeof(why)));
    assert_string_equal(why, "refused to connect to 169.254.1.2:443: a link-local address "
                             "(169.254.0.0/16) (to allow it: ORCH_HTTP_ALLOW=169.254.1.2)");
    assert_false(allowed(np, "fe80::1", 80, why, sizeof(why)));
    assert_string_equal(why, "refused to connect to [fe80::1]:80: a link-local address "
                             "(fe80::/10) (to allow it: ORCH_HTTP_ALLOW=fe80::1)");
    assert_true(allowed(np, "febf:ffff::1", 80, why, sizeof(why)) == 0);
    assert_true(allowed(np, "fec0::1", 80, why, sizeof(why)));
    assert_true(allowed(np, "169.255.0.1", 80, why, sizeof(why)));
    assert_true(allowed(np, "127.0.0.1", 8080, why, sizeof(why)));
    assert_true(allowed(np, "::1", 8080, why, sizeof(why)));
    assert_true(allowed(np, "10.1.2.3", 80, why, sizeof(why)));
    /* The own listener: that address and port only; a wildcard: every local address. */
    assert_int_equal(netpolicy_deny_listener(np, "127.0.0.1:8080", &err), 0);
    assert_false(allowed(np, "127.0.0.1", 8080, why, sizeof(why)));
    assert_string_equal(why, "refused to connect to 127.0.0.1:8080: orch's own API "
                             "(127.0.0.1:8080) (to allow it: ORCH_HTTP_ALLOW=127.0.0.1:8080)");
    assert_true(allowed(np, "127.0.0.1", 8081, why, sizeof(why)));
    assert_true(allowed(np, "127.0.0.2", 8080, why, sizeof(why)));
    assert_int_equal(netpolicy_deny_listener(np, "0.0.0.0:9090", &err), 0);
    assert_false(allowed(np, "127.0.0.2", 9090, why, sizeof(why)));
    assert_false(allowed(np, "::1", 9090, why, sizeof(why)));
    assert_false(allowed(np, "::ffff:127.0.0.1", 9090, why, sizeof(why)));
    assert_true(allowed(np, "127.0.0.2", 9091, why, sizeof(why)));
    assert_int_equal(netpolicy_deny_listener(np, "[::]:7070", &err), 0);
    assert_false(allowed(np, "::1", 7070, why, sizeof(why)));
    assert_string_equal(why, "refused to connect to [::1]:7070: orch's own API ([::1]:7070) (to "
                             "allow it: ORCH_HTTP_ALLOW=[::1]:7070)");
    assert_int_not_equal(netpolicy_deny_listener(np, "127.0.0.1", &err), 0);
    netpolicy_free(np);

    /* Deny lists; an allow entry wins over any deny. */
    assert_int_equal(netpolicy_new(" 169.254.169.254 ,[::1]:8080", "10.0.0.0/8, 192.168.1.77/16,"
                                   "fd00::/8,[fe80::]/10:81", &np, &err), 0);
    assert_true(allowed(np, "169.254.169.254", 80, why, sizeof(why)));
    assert_false(allowed(np, "169.254.169.253", 80, why, sizeof(why)));
    assert_false(allowed(np, "10.200.0.1", 80, why, sizeof(why)));
    assert_string_equal(why, "refused to connect to 10.200.0.1:80: denied by ORCH_HTTP_DENY "
                             "(10.0.0.0/8) (to allow it: ORCH_HTTP_ALLOW=10.200.0.1)");
    assert_false(allowed(np, "192.168.3.3", 80, why, sizeof(why)));
    assert_false(allowed(np, "fd12::1", 80, why, sizeof(why)));
    assert_true(allowed(np, "11.0.0.1", 80, why, sizeof(why)));
    assert_int_equal(netpolicy_deny_listener(np, "[::1]:8080", &err), 0);
    assert_true(allowed(np, "::1", 8080, why, sizeof(why)));
    netpolicy_free(np);

    /* Bad entries name the setting. */
    {
        static const char *const bad[] = {"localhost", "10.0.0.0/33", "1.2.3.4:0", "1.2.3.4:x",
                                          "[::1", "::1/129", "1.2.3", "1.2.3.4/8/8", "[::1]:70000"};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            char want[64];
            memset(&err, 0, sizeof(err));
            assert_int_equal(netpolicy_new(bad[i], NULL, &np, &err), ERR_INVALID);
            assert_null(np);
            snprintf(want, sizeof(want), "invalid ORCH_HTTP_ALLOW entry '%s'", bad[i]);
            if (!strstr(err.msg, want))
                fail_msg("%s: %s", bad[i], err.msg);
        }
        memset(&err, 0, sizeof(err));
        assert_int_equal(netpolicy_new(NULL, "1.2.3.4,nope", &np, &err), ERR_INVALID);
        assert_non_null(strstr(err.msg, "invalid ORCH_HTTP_DENY entry 'nope'"));
    }

    /* A refused connection is never made: the request fails with the policy's message. */
    u = url("/ok");
    s = get_spec(u);
    accepts = atomic_load(&srv.accepts);
    target = xasprintf("127.0.0.1:%d", srv.port);
    memset(&err, 0, sizeof(err));
    assert_int_equal(netpolicy_new(NULL, target, &np, &err), 0);
    s.policy = np;
    call_one(&s, &o);
    assert_false(o.ok);
    assert_false(o.timed_out);
    {
        char *want = xasprintf("refused to connect to %s: denied by ORCH_HTTP_DENY (%s) (to "
                               "allow it: ORCH_HTTP_ALLOW=127.0.0.1)", target, target);
        assert_string_equal(o.error, want);
        free(want);
    }
    assert_int_equal(atomic_load(&srv.accepts), accepts);
    outcome_release(&o);
    netpolicy_free(np);
    free(target);

    /* ... also when a redirect points there. */
    target = xasprintf("127.0.0.1:%d", port);
    memset(&err, 0, sizeof(err));
    assert_int_equal(netpolicy_new(NULL, target, &np, &err), 0);
    u2 = xasprintf("http://127.0.0.1:%d/redirect?to=http://%s/x", srv.port, target);
    s = get_spec(u2);
    s.follow_redirects = 1;
    s.policy = np;
    call_one(&s, &o);
    assert_false(o.ok);
    assert_non_null(strstr(o.error, "refused to connect to"));
    assert_non_null(strstr(o.error, target));
    outcome_release(&o);
    /* Without the policy the same redirect meets the closed port. */
    s.policy = NULL;
    call_one(&s, &o);
    assert_string_equal(o.error, "Connection refused");
    outcome_release(&o);
    netpolicy_free(np);
    free(target);
    free(u2);
    free(u);
    close(fd);
}

static void test_free_in_flight(void **state)
{
    char *u1 = url("/slow?ms=2000"), *u2 = url("/hang-headers"), *u3 = url("/echo");
    struct httpcall_spec s1 = get_spec(u1), s2 = get_spec(u2), s3 = get_spec(u3);
    struct outcome o[6];
    struct loop l, other;
    (void)state;

    memset(o, 0, sizeof(o));
    loop_init(&l);
    loop_init(&other); /* two at once share the loaded libcurl */
    s3.method = "POST";
    s3.body = "payload";
    s3.body_len = 7;
    s3.bearer = "secret";
    start(&l, &s1, &o[0]);
    start(&l, &s1, &o[1]);
    start(&l, &s2, &o[2]);
    start(&l, &s2, &o[3]);
    start(&other, &s3, &o[4]);
    loop_run(&l, -1, 150);
    assert_int_equal(httpcalls_active(l.hc), 4);
    loop_release(&l);
    loop_run(&other, 1, 5000);
    assert_true(o[4].ok);
    start(&other, &s1, &o[5]);
    loop_release(&other); /* never run at all */
    for (int i = 0; i < 6; i++)
        assert_int_equal(o[i].done, i == 4);
    outcome_release(&o[4]);
    httpcalls_free(NULL);
    free(u1);
    free(u2);
    free(u3);
}

int main(void)
{
    /* Straight to 127.0.0.1, whatever the environment says. */
    static const char *const proxies[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy",
                                          "ALL_PROXY"};
    for (size_t i = 0; i < sizeof(proxies) / sizeof(proxies[0]); i++)
        unsetenv(proxies[i]);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_ok),
        cmocka_unit_test(test_post_echo_auth),
        cmocka_unit_test(test_status_codes),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_timeout_reused_connection),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_redirect_keeps_credentials),
        cmocka_unit_test(test_headers_too_large),
        cmocka_unit_test(test_redirect_loop),
        cmocka_unit_test(test_redirect_file_refused),
        cmocka_unit_test(test_big_body_truncated),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_connection_reuse),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_done_starts_and_cancels),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_timeout_reporting),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_network_policy),
    };
    return cmocka_run_group_tests(tests, server_start, server_stop);
}
