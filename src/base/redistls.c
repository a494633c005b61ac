/*
 * redistls.c - rediss:// through a local TLS tunnel (OpenSSL).
 *
 * hiredis 0.14 (Debian 12) has no TLS. For a rediss:// target, orch listens
 * on a private unix socket (in a 0700 directory of its own); hiredis connects
 * there and speaks plain RESP, and one pump thread per process (epoll, all
 * tunnels) connects each accepted connection to the real server over TLS,
 * verifies the server's certificate and name, and copies bytes both ways.
 *
 * When the TCP connection or the TLS handshake fails, the pump answers the
 * local side with one RESP error, REDIS_TUNNEL_ERR "<why>", then closes it:
 * so the client of that very connection gets the reason as its first reply
 * (redis_tunnel_error() recognises it).
 *
 * Settings, read when a tunnel is made: ORCH_REDIS_TLS_CA_CERT (a PEM file of
 * CA certificates; default the system's store), ORCH_REDIS_TLS_CERT and
 * ORCH_REDIS_TLS_KEY (a client certificate, when the server asks for one),
 * ORCH_REDIS_TLS_INSECURE=1 (no verification at all: tests and trusted
 * networks only).
 *
 * Threads: redis_tunnel_path is thread-safe; the pump thread is started by
 * the first tunnel and lives as long as the process. Nothing here logs.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/redis.h"
#include "base/xalloc.h"

#include "base/banned.h"

#define TUN_BUF 16384

enum kind { K_LISTEN, K_LOCAL, K_REMOTE };

struct tunnel;

struct watch {
    enum kind kind;
    void *ptr;
};

struct tconn {
    struct tunnel *tun;
    struct watch wl, wr;
    int lfd, rfd;
    struct addrinfo *ai, *ai_next; /* the server's addresses; the next to try */
    SSL *ssl;
    int state; /* 0 TCP connecting, 1 handshake, 2 open, 3 failed: draining the client */
    int ssl_want_in, ssl_want_out;
    int local_eof;
    int got;  /* the server has sent something */
    int dead; /* closed, freed after the current batch of events */
    struct tconn *next_dead;
    char up[TUN_BUF]; /* local -> server */
    size_t up_n;
    char down[TUN_BUF]; /* server -> local */
    size_t down_off, down_n;
};

struct tunnel {
    struct tunnel *next;
    char *key; /* host:port */
    char *host;
    int port;
    char *shown;
    SSL_CTX *ctx;
    int insecure;
    int lfd;
    struct watch w;
    char dir[64];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static pthread_mutex_t tun_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tunnel *tunnels;
static int tun_epfd = -1;
static struct tconn *graveyard; /* the pump thread's only */

/* Close `fd` (if open) and set it to -1. Out of the epoll set first: a
 * fork()ed child may still hold the description, and epoll would go on
 * reporting it. */
static void unwatch_close(int *fd)
{
    if (*fd >= 0) {
        epoll_ctl(tun_epfd, EPOLL_CTL_DEL, *fd, NULL);
        close(*fd);
    }
    *fd = -1;
}

/* End `c`'s side towards the server: its TLS session, socket and addresses. */
static void tconn_close_remote(struct tconn *c)
{
    if (c->ssl)
        SSL_free(c->ssl);
    c->ssl = NULL;
    unwatch_close(&c->rfd);
    if (c->ai)
        freeaddrinfo(c->ai);
    c->ai = c->ai_next = NULL;
}

/* Close `c`; its memory goes when the current batch of events is done (the
 * batch may still name it). */
static void tconn_free(struct tconn *c)
{
    tconn_close_remote(c);
    unwatch_close(&c->lfd);
    c->dead = 1;
    c->next_dead = graveyard;
    graveyard = c;
}

/* The first OpenSSL error's reason, or `dflt`. */
static const char *ssl_reason(const char *dflt)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return r ? r : dflt;
}

/* Tell the local side why, then close: its client reads this as the reply to
 * its first command. */
static void tconn_fail(struct tconn *c, const char *fmt, const char *a, const char *b)
{
    struct epoll_event e;
    char msg[512], line[600];
    int n;

    snprintf(msg, sizeof(msg), fmt, c->tun->shown, a, b ? b : "");
    for (char *p = msg; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    n = snprintf(line, sizeof(line), "-%s%s\r\n", REDIS_TUNNEL_ERR, msg);
    if (n <= 0 || send(c->lfd, line, (size_t)n, MSG_NOSIGNAL) < 0 ||
        shutdown(c->lfd, SHUT_WR) < 0) {
        tconn_free(c); /* the client has gone: nothing to tell */
        return;
    }
    /* Then drain what the client still sends until it closes: closing at
     * once would make its next write fail with EPIPE (SIGPIPE in a process
     * that does not ignore it), before it read the reason. */
    tconn_close_remote(c);
    c->state = 3;
    e = (struct epoll_event){.events = EPOLLIN, .data.ptr = &c->wl};
    if (epoll_ctl(tun_epfd, EPOLL_CTL_MOD, c->lfd, &e) < 0 &&
        epoll_ctl(tun_epfd, EPOLL_CTL_ADD, c->lfd, &e) < 0)
        tconn_free(c);
}

static void set_events(int fd, struct watch *w, uint32_t ev)
{
    struct epoll_event e = {.events = ev, .data.ptr = w};

    epoll_ctl(tun_epfd, EPOLL_CTL_MOD, fd, &e);
}

static void tls_fail(struct tconn *c)
{
    long v = SSL_get_verify_result(c->ssl);

    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
        tconn_fail(c,
                   "%s: the server's certificate was refused: %s (it is not for %s: put a name "
                   "or address it is for in the URL)",
                   X509_verify_cert_error_string(v), c->tun->host);
    else if (v != X509_V_OK)
        tconn_fail(c,
                   "%s: the server's certificate was refused: %s (set ORCH_REDIS_TLS_CA_CERT to "
                   "the CA file that signed it)%s",
                   X509_verify_cert_error_string(v), NULL);
    else
        tconn_fail(c, "%s: the TLS handshake failed: %s%s", ssl_reason("connection closed"), NULL);
}

/* The TLS session ended (or failed) after the handshake. */
static void server_gone(struct tconn *c)
{
    if (c->got) {
        tconn_free(c); /* the server closed: so does the local side */
        return;
    }
    /* Before a first byte: with TLS 1.3 a server refuses the client's
     * certificate (or its absence) after the handshake, and this is where it
     * shows. */
    tconn_fail(c,
               "%s: the server ended the TLS session before answering: %s (does it want a "
               "client certificate? ORCH_REDIS_TLS_CERT and ORCH_REDIS_TLS_KEY)%s",
               ssl_reason("connection closed"), NULL);
}

/* After an SSL_connect(), SSL_read() or SSL_write() of `c` that returned
 * r <= 0: note what it waits for; else the session ended: `fail` it (then
 * `c` was freed or failed) and -1. */
static int ssl_blocked(struct tconn *c, int r, void (*fail)(struct tconn *c))
{
    r = SSL_get_error(c->ssl, r);
    if (r == SSL_ERROR_WANT_READ)
        c->ssl_want_in = 1;
    else if (r == SSL_ERROR_WANT_WRITE)
        c->ssl_want_out = 1;
    else {
        fail(c);
        return -1;
    }
    return 0;
}

/* Connect `c` to the next of the server's addresses (a name such as
 * localhost may give ::1 before 127.0.0.1, and the server listen on one of
 * them only): 0 once one is connecting, else the last errno. */
static int tconn_connect_next(struct tconn *c)
{
    int e = ECONNREFUSED;

    unwatch_close(&c->rfd);
    while (c->ai_next) {
        struct addrinfo *a = c->ai_next;
        struct epoll_event ev;

        c->ai_next = a->ai_next;
        c->rfd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->rfd < 0) {
            e = errno;
            continue;
        }
        setsockopt(c->rfd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
        if (connect(c->rfd, a->ai_addr, a->ai_addrlen) < 0 && errno != EINPROGRESS) {
            e = errno;
            close(c->rfd);
            c->rfd = -1;
            continue;
        }
        ev = (struct epoll_event){.events = EPOLLOUT, .data.ptr = &c->wr};
        epoll_ctl(tun_epfd, EPOLL_CTL_ADD, c->rfd, &ev);
        return 0;
    }
    return e;
}

/* Move what can be moved; 0, or -1 when `c` was freed. */
static int tconn_pump(struct tconn *c)
{
    int progress = 1, r;
    ssize_t n;

    if (c->state == 3) {
        n = read(c->lfd, c->up, sizeof(c->up));
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            tconn_free(c);
        return -1;
    }
    if (c->state == 0) {
        int e = 0;
        socklen_t len = sizeof(e);

        if (getsockopt(c->rfd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
            e = errno;
        if (e == EINPROGRESS || e == EALREADY)
            return 0;
        if (e && c->ai_next && tconn_connect_next(c) == 0)
            return 0; /* the next address is connecting */
        if (e) {
            tconn_fail(c, "cannot reach %s: %s%s", strerror(e), NULL);
            return -1;
        }
        if (!SSL_set_fd(c->ssl, c->rfd)) {
            tconn_fail(c, "%s: cannot start TLS: %s%s", ssl_reason("out of memory"), NULL);
            return -1;
        }
        c->state = 1;
    }
    while (progress) {
        progress = 0;
        c->ssl_want_in = c->ssl_want_out = 0;
        if (c->state == 1) {
            r = SSL_connect(c->ssl);
            if (r == 1) {
                c->state = 2;
                progress = 1;
                continue;
            }
            if (ssl_blocked(c, r, tls_fail))
                return -1;
        }
        /* local -> buffer */
        if (!c->local_eof && c->up_n < sizeof(c->up)) {
            n = read(c->lfd, c->up + c->up_n, sizeof(c->up) - c->up_n);
            if (n > 0) {
                c->up_n += (size_t)n;
                progress = 1;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                c->local_eof = 1;
            }
        }
        if (c->local_eof) {
            tconn_free(c); /* the client is done: nothing more to send it */
            return -1;
        }
        if (c->state != 2)
            break;
        /* buffer -> server */
        if (c->up_n) {
            r = SSL_write(c->ssl, c->up, (int)c->up_n);
            if (r > 0) {
                memmove(c->up, c->up + r, c->up_n - (size_t)r);
                c->up_n -= (size_t)r;
                progress = 1;
            } else {
                if (ssl_blocked(c, r, server_gone))
                    return -1;
            }
        }
        /* server -> buffer */
        if (c->down_n == 0) {
            c->down_off = 0;
            r = SSL_read(c->ssl, c->down, (int)sizeof(c->down));
            if (r > 0) {
                c->down_n = (size_t)r;
                c->got = 1;
                progress = 1;
            } else {
                if (ssl_blocked(c, r, server_gone))
                    return -1;
            }
        }
        /* buffer -> local */
        if (c->down_n) {
            n = send(c->lfd, c->down + c->down_off, c->down_n, MSG_NOSIGNAL);
            if (n > 0) {
                c->down_off += (size_t)n;
                c->down_n -= (size_t)n;
                progress = 1;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                tconn_free(c);
                return -1;
            }
        }
    }
    set_events(c->lfd, &c->wl,
               (c->up_n < sizeof(c->up) ? EPOLLIN : 0) | (c->down_n ? EPOLLOUT : 0));
    set_events(c->rfd, &c->wr,
               c->state == 0 ? EPOLLOUT
                             : (c->ssl_want_in ? EPOLLIN : 0) | (c->ssl_want_out ? EPOLLOUT : 0));
    return 0;
}

static void tunnel_accept(struct tunnel *t)
{
    struct addrinfo hints, *ai = NULL;
    struct epoll_event e;
    struct tconn *c;
    char port[16];
    int fd, rc;

    fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    c = xcalloc(1, sizeof(*c));
    c->tun = t;
    c->lfd = fd;
    c->rfd = -1;
    c->wl = (struct watch){K_LOCAL, c};
    c->wr = (struct watch){K_REMOTE, c};
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", t->port);
    rc = getaddrinfo(t->host, port, &hints, &ai);
    if (rc) {
        tconn_fail(c, "cannot reach %s: %s%s", gai_strerror(rc), NULL);
        return;
    }
    c->ai = c->ai_next = ai;
    c->ssl = SSL_new(t->ctx);
    if (!c->ssl) {
        tconn_fail(c, "%s: cannot start TLS: %s%s", ssl_reason("out of memory"), NULL);
        return;
    }
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!t->insecure) {
        unsigned char ip[16];
        int isip = inet_pton(AF_INET, t->host, ip) == 1 || inet_pton(AF_INET6, t->host, ip) == 1;
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);

        if (isip ? !X509_VERIFY_PARAM_set1_ip_asc(vp, t->host) : !SSL_set1_host(c->ssl, t->host)) {
            tconn_fail(c, "%s: cannot set the name to verify: %s%s", ssl_reason("bad name"), NULL);
            return;
        }
        if (!isip)
            SSL_set_tlsext_host_name(c->ssl, t->host);
        SSL_set_verify(c->ssl, SSL_VERIFY_PEER, NULL);
    }
    rc = tconn_connect_next(c);
    if (rc) {
        tconn_fail(c, "cannot reach %s: %s%s", strerror(rc), NULL);
        return;
    }
    e = (struct epoll_event){.events = EPOLLIN, .data.ptr = &c->wl};
    epoll_ctl(tun_epfd, EPOLL_CTL_ADD, c->lfd, &e);
}

static void *pump(void *arg)
{
    struct epoll_event ev[32];

    (void)arg;
    for (;;) {
        int n = epoll_wait(tun_epfd, ev, 32, -1);

        if (n < 0 && errno != EINTR)
            return NULL;
        for (int i = 0; i < n; i++) {
            struct watch *w = ev[i].data.ptr;

            if (w->kind == K_LISTEN)
                tunnel_accept(w->ptr);
            else if (!((struct tconn *)w->ptr)->dead)
                tconn_pump(w->ptr);
        }
        while (graveyard) {
            struct tconn *c = graveyard;

            graveyard = c->next_dead;
            free(c);
        }
    }
}

static void tunnels_cleanup(void)
{
    for (struct tunnel *t = tunnels; t; t = t->next) {
        unlink(t->path);
        rmdir(t->dir);
    }
}

static int setting_on(const char *name)
{
    const char *v = getenv(name);

    return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"));
}

static const char *setting(const char *name)
{
    const char *v = getenv(name);

    return v && *v ? v : NULL;
}

static SSL_CTX *make_ctx(const struct redis_target *rt, int *insecure, struct err *err)
{
    const char *ca = setting("ORCH_REDIS_TLS_CA_CERT"), *cert = setting("ORCH_REDIS_TLS_CERT"),
               *key = setting("ORCH_REDIS_TLS_KEY");
    const char *iv = getenv("ORCH_REDIS_TLS_INSECURE");
    SSL_CTX *ctx;

    if (iv && *iv && !setting_on("ORCH_REDIS_TLS_INSECURE") && strcmp(iv, "0") &&
        strcmp(iv, "false") && strcmp(iv, "no") && strcmp(iv, "off")) {
        err_set(err, ERR_INVALID, "ORCH_REDIS_TLS_INSECURE: expected 1 or 0, not \"%.40s\"", iv);
        return NULL;
    }
    *insecure = setting_on("ORCH_REDIS_TLS_INSECURE");
    if (!cert != !key) {
        err_set(err, ERR_INVALID, "%s: ORCH_REDIS_TLS_CERT and ORCH_REDIS_TLS_KEY go together",
                rt->shown);
        return NULL;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        err_set(err, ERR_NOMEM, "%s: cannot start TLS: %s", rt->shown, ssl_reason("out of memory"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (ca ? SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1
           : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        err_set(err, ERR_INVALID, "%s: cannot load the CA certificates%s%.200s: %s", rt->shown,
                ca ? " of ORCH_REDIS_TLS_CA_CERT " : "", ca ? ca : "", ssl_reason("bad file"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (cert && (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
                 SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
                 SSL_CTX_check_private_key(ctx) != 1)) {
        err_set(err, ERR_INVALID,
                "%s: cannot load the client certificate (ORCH_REDIS_TLS_CERT %.200s, "
                "ORCH_REDIS_TLS_KEY): %s",
                rt->shown, cert, ssl_reason("bad file"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static struct tunnel *tunnel_new(const struct redis_target *rt, const char *key, struct err *err)
{
    struct sockaddr_un sa;
    struct epoll_event e;
    struct tunnel *t;
    const char *tmp = getenv("TMPDIR");
    int insecure = 0;
    SSL_CTX *ctx = make_ctx(rt, &insecure, err);

    if (!ctx)
        return NULL;
    t = xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    t->insecure = insecure;
    t->lfd = -1;
    if (!tmp || !*tmp || strlen(tmp) > 40)
        tmp = "/tmp";
    snprintf(t->dir, sizeof(t->dir), "%s/orch-redis-XXXXXX", tmp);
    if (!mkdtemp(t->dir)) { /* mkdtemp makes it 0700 */
        err_set(err, ERR_IO, "%s: cannot make the TLS tunnel's directory in %s: %s", rt->shown, tmp,
                strerror(errno));
        goto fail;
    }
    snprintf(t->path, sizeof(t->path), "%s/s", t->dir);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->path);
    t->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(t->lfd, 64) < 0) {
        err_set(err, ERR_IO, "%s: cannot open the TLS tunnel's socket: %s", rt->shown,
                strerror(errno));
        rmdir(t->dir);
        goto fail;
    }
    t->key = xstrdup(key);
    t->host = xstrdup(rt->host);
    t->port = rt->port;
    t->shown = xstrdup(rt->shown);
    t->w = (struct watch){K_LISTEN, t};
    e = (struct epoll_event){.events = EPOLLIN, .data.ptr = &t->w};
    if (epoll_ctl(tun_epfd, EPOLL_CTL_ADD, t->lfd, &e) < 0) {
        err_set(err, ERR_IO, "%s: cannot watch the TLS tunnel's socket: %s", rt->shown,
                strerror(errno));
        unlink(t->path);
        rmdir(t->dir);
        free(t->key);
        free(t->host);
        free(t->shown);
        goto fail;
    }
    return t;
fail:
    if (t->lfd >= 0)
        close(t->lfd);
    SSL_CTX_free(ctx);
    free(t);
    return NULL;
}

const char *redis_tunnel_path(const struct redis_target *rt, struct err *err)
{
    static int started;
    struct tunnel *t;
    char key[512];
    pthread_t th;
    sigset_t all, old;
    const char *path = NULL;
    int rc;

    if (!rt->tls || !rt->host) {
        err_set(err, ERR_INVALID, "%s: not a rediss:// URL", rt->shown);
        return NULL;
    }
    snprintf(key, sizeof(key), "%s\n%d", rt->host, rt->port);
    pthread_mutex_lock(&tun_lock);
    for (t = tunnels; t; t = t->next)
        if (!strcmp(t->key, key)) {
            path = t->path;
            goto out;
        }
    if (!started) {
        tun_epfd = epoll_create1(EPOLL_CLOEXEC);
        if (tun_epfd < 0) {
            err_set(err, ERR_IO, "%s: cannot start the TLS tunnel: %s", rt->shown, strerror(errno));
            goto out;
        }
        /* The thread starts with every signal blocked: the process's
         * handlers run elsewhere, and a SIGPIPE from a peer gone (a write to
         * a closed socket, also inside OpenSSL) stays pending there instead
         * of killing the process. */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        rc = pthread_create(&th, NULL, pump, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (rc != 0) {
            err_set(err, ERR_IO, "%s: cannot start the TLS tunnel's thread", rt->shown);
            close(tun_epfd);
            tun_epfd = -1;
            goto out;
        }
        pthread_detach(th);
        atexit(tunnels_cleanup);
        started = 1;
    }
    t = tunnel_new(rt, key, err);
    if (t) {
        t->next = tunnels;
        tunnels = t;
        path = t->path;
    }
out:
    pthread_mutex_unlock(&tun_lock);
    return path;
}

const char *redis_tunnel_error(const char *reply_str)
{
    size_t n = strlen(REDIS_TUNNEL_ERR);

    return reply_str && !strncmp(reply_str, REDIS_TUNNEL_ERR, n) ? reply_str + n : NULL;
}
