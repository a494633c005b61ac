/*
 * redisbus.c - Redis beside PostgreSQL: the engine's own client (issue 17).
 *
 * hiredis 0.14's async API, driven from the engine's epoll loop through a
 * small adapter (its read/write hooks set the descriptor's epoll events; the
 * loop calls back on readiness): no thread of its own. Two connections: one
 * for commands (XADD, XREADGROUP, XACK, XAUTOCLAIM, PUBLISH, PING) and one
 * subscribed to ENGINE_REDIS_WAKE (a subscribed connection takes no other
 * command).
 *
 * PostgreSQL stays the source of truth; Redis only carries the chatter:
 *   - Wake-ups (work queued, cancels, schedules, offers and their results,
 *     node joins) are PUBLISHed once the turn that causes them has committed,
 *     instead of a NOTIFY inside it. A publication whose answer was lost with
 *     the connection is NOTIFYed with the next commit.
 *   - Offers: the owner commits the offer row, then XADDs it to
 *     ENGINE_REDIS_OFFERS. A node with free slots reads the stream through
 *     the consumer group (each entry goes to one node), claims that many
 *     offers in PostgreSQL (FOR UPDATE SKIP LOCKED: the fence stays there),
 *     and XACKs the entries once the claim is committed. Entries read by a
 *     node that died are taken over by XAUTOCLAIM after
 *     RB_AUTOCLAIM_IDLE_MS. An XADD that was lost (Redis down, flushed) costs
 *     only time: the offer is in PostgreSQL, where the heartbeat finds it.
 *   - Live logs: a task's output is XADDed (capped, MAXLEN ~) to its
 *     attempt's stream (redis_log_key()) as it is read, with the offset of
 *     its bytes, and an end entry once the store has all of it (the turn
 *     after the exit committed); the store keeps the durable copy as before.
 *
 * Failure: a connection that fails, or a command unanswered for
 * RB_TIMEOUT_MS (a paused server keeps its sockets open), closes both; the
 * node says so once (WARN [Redis]), goes back to the PostgreSQL paths at
 * once (NOTIFY, the claims it had before, a look at PostgreSQL for what a
 * lost message may have said) and reconnects with back-off. Nothing is lost:
 * everything Redis carried was committed to PostgreSQL first.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/redis.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "engine_internal.h"
#include "redisbus.h"
#include "remote.h"

#include "base/banned.h"

#define COMP_REDIS           "Redis"
#define RB_TIMEOUT_MS        1500   /* a command unanswered this long: the server is gone */
#define RB_PING_MS           1000   /* an idle connection is checked this often */
#define RB_BACKOFF_MIN_MS    100    /* reconnect after, doubling ... */
#define RB_BACKOFF_MAX_MS    2000   /* ... up to */
#define RB_AUTOCLAIM_MS      2000   /* look for entries of dead consumers this often */
#define RB_AUTOCLAIM_IDLE_MS 5000   /* an entry read and not acknowledged this long is taken over */
#define RB_OFFERS_MAXLEN     100000 /* entries kept in the offers stream (MAXLEN ~) */
#define RB_LOG_MAXLEN        10000  /* entries kept in a task's log stream (MAXLEN ~) */
#define RB_LOG_TTL_RUNNING   86400  /* seconds a log stream lives while its task runs */
#define RB_LOG_TTL_ENDED     3600   /* ... and after its end entry */
#define RB_MSG_MAX           512    /* a wake-up: "<channel> <payload>" */

struct redis_state;

/* One connection. Invariants: ac != NULL while open; fd is its descriptor
 * and `events` what epoll watches of it (0: not in the set); `waiting`
 * counts the answers awaited, `progress` when the last came (or the first
 * was asked). */
struct rconn {
    struct redis_state *rs;
    redisAsyncContext *ac;
    const char *name;
    int fd;
    uint32_t events;
    int want_read, want_write;
    struct watch w;
    int waiting;
    int64_t progress;       /* monotonic ms */
    int ready;              /* handshake answered */
    struct redis_cmd hs[2]; /* AUTH, SELECT (base/redis.h): alive until answered */
};

struct strv {
    char **v;
    size_t n, alloc;
};

struct redis_state {
    struct engine *eng;
    struct redis_target t; /* deep copy */
    struct rconn cmd, sub;
    int up;        /* both connections ready */
    int ever_up;   /* connected once: orch server said the first failure already */
    int said_down; /* the WARN of this outage is logged */
    int closing;   /* we free the contexts: their callbacks are no failure */
    int broken;    /* a connection failed: close both (why) */
    char why[200];
    int64_t retry_at, backoff, down_since_mono;
    int64_t next_ping, next_autoclaim;
    int64_t ping_sent_ns;
    struct strv pubq;     /* "<channel> <payload>" PUBLISHed once the turn commits */
    struct strv offq;     /* "<exec> <idx> <attempt>" XADDed once the turn commits */
    struct strv fallback; /* wake-ups lost with a connection: NOTIFYed with the next commit */
    int fallback_offer;   /* an XADD was lost: NOTIFY orch_offer */
    struct strv held;     /* entry ids read from the offers stream, not yet claimed */
    struct strv ends;     /* "<key> <status>": end entries of live logs, after the next commit */
    int reading;          /* an XREADGROUP is under way */
    int read_count;
    unsigned offers_gen; /* bumped by each offer wake-up */
    unsigned read_gen;   /* offers_gen when the read was asked */
    int offers_waiting;  /* entries may wait in the stream */
};

static void strv_push(struct strv *s, char *owned)
{
    XGROW(s->v, s->alloc, s->n + 1);
    s->v[s->n++] = owned;
}

static void strv_clear(struct strv *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    s->n = 0;
}

static void strv_release(struct strv *s)
{
    strv_clear(s);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* Drop the first n entries. */
static void strv_shift(struct strv *s, size_t n)
{
    if (n > s->n)
        n = s->n;
    for (size_t i = 0; i < n; i++)
        free(s->v[i]);
    memmove(s->v, s->v + n, (s->n - n) * sizeof(*s->v));
    s->n -= n;
}

static void stats_bump(struct engine *eng, uint64_t *field, uint64_t n)
{
    pthread_mutex_lock(&eng->mu);
    *field += n;
    pthread_mutex_unlock(&eng->mu);
}

/* ------------------------------------------------------------------ the adapter */

static void conn_epoll(struct rconn *c)
{
    struct engine *eng = c->rs->eng;
    uint32_t ev = (c->want_read ? EPOLLIN : 0) | (c->want_write ? EPOLLOUT : 0);
    struct epoll_event e;

    if (c->fd < 0 || ev == c->events)
        return;
    memset(&e, 0, sizeof(e));
    e.events = ev;
    e.data.ptr = &c->w;
    if (!ev) {
        epoll_ctl(eng->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    } else if (epoll_ctl(eng->epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) != 0) {
        log_warn(COMP_REDIS, "cannot watch the connection: %s", strerror(errno));
        return;
    }
    c->events = ev;
}

static void ev_add_read(void *arg)
{
    struct rconn *c = arg;
    c->want_read = 1;
    conn_epoll(c);
}

static void ev_del_read(void *arg)
{
    struct rconn *c = arg;
    c->want_read = 0;
    conn_epoll(c);
}

static void ev_add_write(void *arg)
{
    struct rconn *c = arg;
    c->want_write = 1;
    conn_epoll(c);
}

static void ev_del_write(void *arg)
{
    struct rconn *c = arg;
    c->want_write = 0;
    conn_epoll(c);
}

/* hiredis frees the context: out of the epoll set before its fd is closed. */
static void ev_cleanup(void *arg)
{
    struct rconn *c = arg;
    c->want_read = c->want_write = 0;
    conn_epoll(c);
    c->fd = -1;
    c->events = 0;
    c->ac = NULL;
    c->ready = 0;
    c->waiting = 0;
}

/* ------------------------------------------------------------------ commands */

static void set_broken(struct redis_state *rs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_broken(struct redis_state *rs, const char *fmt, ...)
{
    va_list ap;

    if (rs->closing || rs->broken)
        return;
    rs->broken = 1;
    va_start(ap, fmt);
    vsnprintf(rs->why, sizeof(rs->why), fmt, ap);
    va_end(ap);
    rs->eng->work_now = 1;
}

/* An answer came (or the connection went: r NULL). */
static struct rconn *answered(redisAsyncContext *ac)
{
    struct rconn *c = ac->data;
    if (c->waiting > 0)
        c->waiting--;
    c->progress = clock_mono_ms();
    return c;
}

/* Send a command on `c`; `fn` is called with its answer (NULL: the
 * connection went). -1: not sent (the connection is going): fn is not called. */
static int csend(struct rconn *c, redisCallbackFn *fn, void *priv, const char *fmt, ...)
{
    va_list ap;
    int rc;

    if (!c->ac)
        return -1;
    va_start(ap, fmt);
    rc = redisvAsyncCommand(c->ac, fn, priv, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK)
        return -1;
    if (c->waiting++ == 0)
        c->progress = clock_mono_ms();
    return 0;
}

static int is_error(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str &&
           (!prefix || !strncmp(r->str, prefix, strlen(prefix)));
}

/* An answer that only needs to be an answer. */
static void on_plain(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    (void)reply;
    answered(ac);
}

static void maybe_up(struct redis_state *rs);

/* Handshake steps (AUTH, SELECT): they must succeed. */
static void on_handshake(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = answered(ac);
    struct err err = ERR_INIT;

    if (!reply)
        return;
    if (redis_handshake_check(&c->rs->t, priv, reply, &err))
        set_broken(c->rs, "%s", err.msg);
}

static void on_group(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = answered(ac);
    const redisReply *r = reply;

    (void)priv;
    if (r && r->type == REDIS_REPLY_ERROR && redis_tunnel_error(r->str))
        set_broken(c->rs, "%s", redis_tunnel_error(r->str)); /* the TLS tunnel's reason */
    else if (r && r->type == REDIS_REPLY_ERROR && !is_error(r, "BUSYGROUP"))
        log_warn(COMP_REDIS, "Cannot create the consumer group of %s: %.120s", ENGINE_REDIS_OFFERS,
                 r->str ? r->str : "error");
    else if (r)
        c->rs->offers_waiting = 1; /* entries may have come before the group */
}

static void on_ready_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = answered(ac);
    const redisReply *r = reply;

    (void)priv;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ERROR && redis_tunnel_error(r->str)) {
        set_broken(c->rs, "%s", redis_tunnel_error(r->str));
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_broken(c->rs, "%s answered PING with: %.120s", c->rs->t.shown,
                   r->str ? r->str : "error");
        return;
    }
    c->ready = 1;
    maybe_up(c->rs);
}

static void on_message(struct redis_state *rs, const char *data, size_t len);

/* The subscription: its confirmation, then each message. */
static void on_sub(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = ac->data;
    const redisReply *r = reply;
    const redisReply *kind;

    (void)priv;
    if (!r) {
        answered(ac);
        return;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        answered(ac);
        if (redis_tunnel_error(r->str))
            set_broken(c->rs, "%s", redis_tunnel_error(r->str));
        else
            set_broken(c->rs, "%s refused SUBSCRIBE: %.120s", c->rs->t.shown,
                       r->str ? r->str : "error");
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    kind = r->element[0];
    if (kind->type != REDIS_REPLY_STRING)
        return;
    if (!strcmp(kind->str, "subscribe")) {
        if (!c->ready) {
            answered(ac);
            c->ready = 1;
            maybe_up(c->rs);
        }
    } else if (!strcmp(kind->str, "message") && r->element[2]->type == REDIS_REPLY_STRING) {
        c->progress = clock_mono_ms();
        on_message(c->rs, r->element[2]->str, r->element[2]->len);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;

    if (status != REDIS_OK)
        set_broken(c->rs, "cannot reach %s: %.120s", c->rs->t.shown,
                   ac->errstr[0] ? ac->errstr : "connection failed");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct rconn *c = ac->data;

    (void)status;
    set_broken(c->rs, "connection to %s lost: %.120s", c->rs->t.shown,
               ac->errstr[0] ? ac->errstr : "closed by the server");
}

static int conn_open(struct redis_state *rs, struct rconn *c)
{
    redisAsyncContext *ac;
    const struct redis_target *t = &rs->t;
    const char *path = t->path;
    struct err err = ERR_INIT;
    int nhs;

    /* rediss://: hiredis speaks plain RESP to the local end of a TLS tunnel
     * (src/base/redistls.c; its pump thread is the one thread outside the
     * loop, shared by every tunnel of the process). */
    if (t->tls && !(path = redis_tunnel_path(t, &err))) {
        set_broken(rs, "%s", err.msg);
        return -1;
    }
    ac = path ? redisAsyncConnectUnix(path) : redisAsyncConnect(t->host, t->port);
    if (!ac) {
        set_broken(rs, "cannot reach %s: out of memory", t->shown);
        return -1;
    }
    if (ac->err) {
        set_broken(rs, "cannot reach %s: %.120s", t->shown, ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    c->ac = ac;
    c->fd = ac->c.fd;
    c->events = 0;
    c->want_read = c->want_write = 0;
    c->waiting = 0;
    c->ready = 0;
    c->progress = clock_mono_ms();
    ac->data = c;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* The handshake, sent at once: hiredis writes it once connected (a
     * subscriber needs no SELECT: channels are not per database). */
    nhs = redis_handshake(t, c->hs);
    for (int i = 0; i < nhs; i++) {
        if (c == &rs->sub && !strcmp(c->hs[i].argv[0], "SELECT"))
            continue;
        if (redisAsyncCommandArgv(ac, on_handshake, &c->hs[i], c->hs[i].argc, c->hs[i].argv,
                                  c->hs[i].argvlen) == REDIS_OK &&
            c->waiting++ == 0)
            c->progress = clock_mono_ms();
    }
    if (c == &rs->cmd) {
        csend(c, on_group, NULL, "XGROUP CREATE %s %s 0 MKSTREAM", ENGINE_REDIS_OFFERS,
              ENGINE_REDIS_GROUP);
        csend(c, on_ready_ping, NULL, "PING");
    } else {
        csend(c, on_sub, NULL, "SUBSCRIBE %s", ENGINE_REDIS_WAKE);
    }
    return 0;
}

/* Close both connections (outside hiredis's callbacks). */
static void close_all(struct redis_state *rs)
{
    rs->closing = 1;
    if (rs->cmd.ac)
        redisAsyncFree(rs->cmd.ac);
    if (rs->sub.ac)
        redisAsyncFree(rs->sub.ac);
    rs->closing = 0;
    rs->up = 0;
    rs->reading = 0;
}

/* A lost message may have said there is work: look at PostgreSQL now. */
static void catch_up(struct redis_state *rs)
{
    struct engine *eng = rs->eng;

    engine__node_want_claim(eng);
    engine__remote_want(eng, REMOTE_WANT_OFFERS);
    engine__remote_want(eng, REMOTE_WANT_RESULTS);
    engine__remote_want(eng, REMOTE_WANT_RCANCEL);
    eng->work_now = 1;
}

static void go_down(struct redis_state *rs)
{
    struct engine *eng = rs->eng;
    int64_t now = clock_mono_ms();
    int was_up = rs->up;

    close_all(rs);
    rs->broken = 0;
    if (!rs->said_down) {
        rs->said_down = 1;
        rs->down_since_mono = now;
        /* Before the first connection, orch server has said it (its check at start). */
        log_msg(rs->ever_up ? LOG_WARN : LOG_DEBUG, COMP_REDIS,
                "%s; this node goes on with PostgreSQL alone (LISTEN/NOTIFY, offers claimed "
                "there) and reconnects with back-off",
                rs->why);
        pthread_mutex_lock(&eng->mu);
        eng->stats.redis_ok = 0;
        eng->stats.redis_degraded_since = clock_now_ms();
        if (rs->ever_up)
            eng->stats.redis_fallbacks++;
        pthread_mutex_unlock(&eng->mu);
    } else {
        log_debug(COMP_REDIS, "Still no Redis: %s (next try in %lldms)", rs->why,
                  (long long)rs->backoff);
    }
    pthread_mutex_lock(&eng->mu);
    snprintf(eng->stats.redis_error, sizeof(eng->stats.redis_error), "%s", rs->why);
    pthread_mutex_unlock(&eng->mu);
    if (was_up)
        catch_up(rs);
    rs->retry_at = now + rs->backoff;
    rs->backoff = rs->backoff * 2 > RB_BACKOFF_MAX_MS ? RB_BACKOFF_MAX_MS : rs->backoff * 2;
}

static void connect_now(struct redis_state *rs)
{
    if (conn_open(rs, &rs->cmd) == 0)
        conn_open(rs, &rs->sub);
    if (rs->broken)
        go_down(rs);
}

static void publish(struct redis_state *rs, char *msg);

static void maybe_up(struct redis_state *rs)
{
    struct engine *eng = rs->eng;
    int64_t now = clock_mono_ms();

    if (rs->up || !rs->cmd.ready || !rs->sub.ready)
        return;
    rs->up = 1;
    rs->backoff = RB_BACKOFF_MIN_MS;
    rs->next_ping = now + RB_PING_MS;
    rs->next_autoclaim = now;
    if (rs->said_down)
        log_info(COMP_REDIS,
                 "%s answers again after %lldms: wake-ups, offers and live logs go "
                 "through it again",
                 rs->t.shown, (long long)(now - rs->down_since_mono));
    else
        log_debug(COMP_REDIS, "Connected to %s: wake-ups, offers and live logs go through it",
                  rs->t.shown);
    pthread_mutex_lock(&eng->mu);
    eng->stats.redis_ok = 1;
    eng->stats.redis_degraded_since = 0;
    eng->stats.redis_error[0] = '\0';
    if (rs->said_down)
        eng->stats.redis_reconnects++;
    pthread_mutex_unlock(&eng->mu);
    rs->said_down = 0;
    rs->ever_up = 1;
    /* What was said while we were away is lost: look at PostgreSQL, and tell
     * the others (they renew their view of the nodes). */
    catch_up(rs);
    rs->offers_waiting = 1;
    if (eng->node_id)
        publish(rs, xasprintf("orch_nodes %s", eng->node_id));
}

/* ------------------------------------------------------------------ wake-ups */

static void on_publish(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = answered(ac);

    if (reply) {
        free(priv);
        return;
    }
    /* Lost with the connection: NOTIFY it with the next commit. */
    strv_push(&c->rs->fallback, priv);
    c->rs->eng->work_now = 1;
}

/* Takes `msg` ("<channel> <payload>"). */
static void publish(struct redis_state *rs, char *msg)
{
    if (!rs->up || csend(&rs->cmd, on_publish, msg, "PUBLISH %s %s", ENGINE_REDIS_WAKE, msg)) {
        strv_push(&rs->fallback, msg);
        rs->eng->work_now = 1;
        return;
    }
    stats_bump(rs->eng, &rs->eng->stats.redis_published, 1);
}

static void on_message(struct redis_state *rs, const char *data, size_t len)
{
    struct engine *eng = rs->eng;
    char buf[RB_MSG_MAX];
    char *payload;

    if (len >= sizeof(buf))
        return;
    memcpy(buf, data, len);
    buf[len] = '\0';
    payload = strchr(buf, ' ');
    if (!payload)
        return;
    *payload++ = '\0';
    if (!strcmp(buf, "orch_offer")) {
        /* Read the stream: each entry goes to one node. */
        if (engine__node_claims_work(eng)) {
            rs->offers_gen++;
            rs->offers_waiting = 1;
            eng->work_now = 1;
        }
        return;
    }
    engine__node_wake(eng, buf, payload);
}

int engine__redis_notify_now(struct engine *eng, const char *channel, const char *payload,
                             struct err *err)
{
    struct redis_state *rs = eng->redis;

    if (!rs || !rs->up)
        return store_notify(eng->st, channel, payload, err);
    publish(rs, xasprintf("%s %s", channel, payload ? payload : ""));
    return 0;
}

int engine__redis_notify(struct engine *eng, const char *channel, const char *payload,
                         struct err *err)
{
    struct redis_state *rs = eng->redis;

    if (!rs || !rs->up)
        return store_notify(eng->st, channel, payload, err);
    strv_push(&rs->pubq, xasprintf("%s %s", channel, payload ? payload : ""));
    return 0;
}

/* ------------------------------------------------------------------ offers */

int engine__redis_offer(struct engine *eng, const char *exec_id, int idx, int attempt)
{
    struct redis_state *rs = eng->redis;

    if (!rs || !rs->up)
        return 0;
    strv_push(&rs->offq, xasprintf("%s %d %d", exec_id, idx, attempt));
    return 1;
}

static void on_xadd(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = answered(ac);
    const redisReply *r = reply;

    (void)priv;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        /* Not in the stream: the other nodes hear of it through PostgreSQL. */
        c->rs->fallback_offer = 1;
        c->rs->eng->work_now = 1;
    }
}

static void xadd_offer(struct redis_state *rs, const char *key)
{
    char ex[128];
    int idx, attempt;

    if (sscanf(key, "%127s %d %d", ex, &idx, &attempt) != 3)
        return;
    if (csend(&rs->cmd, on_xadd, NULL, "XADD %s MAXLEN ~ %d * e %s t %d a %d o %s",
              ENGINE_REDIS_OFFERS, RB_OFFERS_MAXLEN, ex, idx, attempt,
              rs->eng->node_id ? rs->eng->node_id : "")) {
        rs->fallback_offer = 1;
        return;
    }
    stats_bump(rs->eng, &rs->eng->stats.redis_offers_added, 1);
}

static void hold(struct redis_state *rs, const redisReply *entries)
{
    if (!entries || entries->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        int dup = 0;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
            e->element[0]->type != REDIS_REPLY_STRING)
            continue;
        for (size_t j = 0; j < rs->held.n && !dup; j++)
            dup = !strcmp(rs->held.v[j], e->element[0]->str);
        if (!dup)
            strv_push(&rs->held, xstrdup(e->element[0]->str));
    }
}

static void on_read(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = answered(ac);
    struct redis_state *rs = c->rs;
    const redisReply *r = reply;
    size_t before = rs->held.n;

    (void)priv;
    rs->reading = 0;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (is_error(r, "NOGROUP")) /* flushed: the group again, then read again */
            csend(c, on_group, NULL, "XGROUP CREATE %s %s 0 MKSTREAM", ENGINE_REDIS_OFFERS,
                  ENGINE_REDIS_GROUP);
        else
            log_debug(COMP_REDIS, "XREADGROUP: %.120s", r->str ? r->str : "error");
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
        hold(rs, r->element[0]->element[1]);
    if (rs->held.n > before) {
        stats_bump(rs->eng, &rs->eng->stats.redis_offers_read, rs->held.n - before);
        rs->eng->work_now = 1;
    }
    if ((int)(rs->held.n - before) < rs->read_count && rs->read_gen == rs->offers_gen)
        rs->offers_waiting = 0; /* none left for us */
}

static void on_autoclaim(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = answered(ac);
    struct redis_state *rs = c->rs;
    const redisReply *r = reply;
    size_t before = rs->held.n;

    (void)priv;
    if (!r)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        if (is_error(r, "NOGROUP"))
            csend(c, on_group, NULL, "XGROUP CREATE %s %s 0 MKSTREAM", ENGINE_REDIS_OFFERS,
                  ENGINE_REDIS_GROUP);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2)
        hold(rs, r->element[1]);
    if (rs->held.n > before) {
        log_info(COMP_REDIS, "Took over %zu offer entr%s of a consumer that stopped answering",
                 rs->held.n - before, rs->held.n - before == 1 ? "y" : "ies");
        rs->eng->work_now = 1;
    }
}

static int free_for_read(const struct redis_state *rs)
{
    return engine__free_slots(rs->eng) - (int)rs->held.n;
}

static void offers_read(struct redis_state *rs)
{
    struct engine *eng = rs->eng;
    int slots;

    if (!rs->up || rs->reading || !rs->offers_waiting || eng->stopping || eng->db_down ||
        !engine__node_claims_work(eng))
        return;
    slots = free_for_read(rs);
    if (slots <= 0)
        return;
    if (csend(&rs->cmd, on_read, NULL, "XREADGROUP GROUP %s %s COUNT %d STREAMS %s >",
              ENGINE_REDIS_GROUP, eng->node_id, slots, ENGINE_REDIS_OFFERS))
        return;
    rs->reading = 1;
    rs->read_count = slots;
    rs->read_gen = rs->offers_gen;
}

/* Acknowledge the first n entries held (their claim is committed). */
static void ack(struct redis_state *rs, size_t n)
{
    if (n > rs->held.n)
        n = rs->held.n;
    if (!n)
        return;
    if (rs->up) {
        const char **argv = xcalloc(n + 3, sizeof(*argv));
        argv[0] = "XACK";
        argv[1] = ENGINE_REDIS_OFFERS;
        argv[2] = ENGINE_REDIS_GROUP;
        for (size_t i = 0; i < n; i++)
            argv[3 + i] = rs->held.v[i];
        if (redisAsyncCommandArgv(rs->cmd.ac, on_plain, NULL, (int)(n + 3), argv, NULL) ==
                REDIS_OK &&
            rs->cmd.waiting++ == 0)
            rs->cmd.progress = clock_mono_ms();
        free(argv);
    }
    strv_shift(&rs->held, n);
}

/* Claim in PostgreSQL as many offers as entries were read (the fence is
 * there), then acknowledge the entries. */
static void claim_held(struct redis_state *rs)
{
    struct engine *eng = rs->eng;
    int slots, n;
    size_t k;

    if (!rs->held.n || eng->db_down || eng->stopping || !engine__node_claims_work(eng))
        return;
    slots = engine__free_slots(eng);
    if (slots <= 0)
        return;
    k = rs->held.n < (size_t)slots ? rs->held.n : (size_t)slots;
    n = engine__remote_claim(eng, (int)k);
    if (n < 0)
        return; /* kept: read again by XAUTOCLAIM, or claimed once the database is back */
    /* Fewer than asked: nothing is left to claim for the others either. */
    ack(rs, (size_t)n < k ? rs->held.n : k);
}

/* ------------------------------------------------------------------ live logs */

void engine__redis_log(struct engine *eng, struct proc *p, int stream, const char *data, size_t len)
{
    struct redis_state *rs = eng->redis;
    char key[REDIS_LOG_KEY_MAX], off[24];

    if (!len)
        return;
    p->rlog_off[stream] += len; /* counted even while Redis is away: o stays true */
    if (!rs || !rs->up)
        return;
    redis_log_key(key, p->exec_id, (int)p->idx, p->attempt);
    snprintf(off, sizeof(off), "%zu", p->rlog_off[stream] - len);
    if (csend(&rs->cmd, on_plain, NULL, "XADD %s MAXLEN ~ %d * s %s o %s d %b", key, RB_LOG_MAXLEN,
              stream ? "err" : "out", off, data, len))
        return;
    if (!p->rlog) { /* a stream whose end never comes (its node killed) goes too */
        p->rlog = 1;
        csend(&rs->cmd, on_plain, NULL, "PEXPIRE %s %lld", key,
              (long long)RB_LOG_TTL_RUNNING * 1000);
    }
    stats_bump(eng, &eng->stats.redis_log_entries, 1);
}

void engine__redis_log_end(struct engine *eng, const struct proc *p, const char *status)
{
    struct redis_state *rs = eng->redis;
    char key[REDIS_LOG_KEY_MAX];

    if (!rs)
        return;
    redis_log_key(key, p->exec_id, (int)p->idx, p->attempt);
    strv_push(&rs->ends, xasprintf("%s %s", key, status)); /* once the store has the rest */
    eng->work_now = 1;
}

static void ends_send(struct redis_state *rs)
{
    for (size_t i = 0; i < rs->ends.n && rs->up; i++) {
        char *sp = strchr(rs->ends.v[i], ' ');
        if (!sp)
            continue;
        *sp = '\0';
        csend(&rs->cmd, on_plain, NULL, "XADD %s MAXLEN ~ %d * end %s", rs->ends.v[i],
              RB_LOG_MAXLEN, sp + 1);
        csend(&rs->cmd, on_plain, NULL, "PEXPIRE %s %lld", rs->ends.v[i],
              (long long)RB_LOG_TTL_ENDED * 1000);
    }
    strv_clear(&rs->ends);
}

/* ------------------------------------------------------------------ the commit */

/* A try of the transaction starts: nothing of an earlier try is queued. */
static int first_commit(struct engine *eng, void *arg, struct err *err)
{
    struct redis_state *rs = arg;

    (void)eng;
    (void)err;
    strv_clear(&rs->pubq);
    strv_clear(&rs->offq);
    return 0;
}

static int last_pending(const struct engine *eng, void *arg)
{
    const struct redis_state *rs = arg;

    (void)eng;
    return rs->fallback.n > 0 || rs->fallback_offer || rs->ends.n > 0;
}

/* What Redis lost goes out on PostgreSQL, with this transaction. */
static int last_commit(struct engine *eng, void *arg, struct err *err)
{
    struct redis_state *rs = arg;
    int rc = 0;

    for (size_t i = 0; i < rs->fallback.n && rc == 0; i++) {
        char *sp = strchr(rs->fallback.v[i], ' ');
        if (!sp)
            continue;
        *sp = '\0';
        rc = store_notify(eng->st, rs->fallback.v[i], sp + 1, err);
        *sp = ' ';
    }
    if (rc == 0 && rs->fallback_offer)
        rc = store_notify(eng->st, "orch_offer", eng->node_id, err);
    return rc;
}

static void last_committed(struct engine *eng, void *arg)
{
    struct redis_state *rs = arg;

    (void)eng;
    strv_clear(&rs->fallback);
    rs->fallback_offer = 0;
    /* Committed: the offers into the stream first, then the wake-ups (a
     * node woken reads the stream after the entries are in it). */
    for (size_t i = 0; i < rs->offq.n; i++)
        xadd_offer(rs, rs->offq.v[i]);
    strv_clear(&rs->offq);
    for (size_t i = 0; i < rs->pubq.n; i++)
        publish(rs, rs->pubq.v[i]); /* takes it */
    rs->pubq.n = 0;
    ends_send(rs); /* the attempts' output is in the store now */
}

static const struct engine_hook redis_first_hook = {
    .phase = HOOK_FIRST,
    .commit = first_commit,
};

static const struct engine_hook redis_last_hook = {
    .phase = HOOK_LAST,
    .pending = last_pending,
    .commit = last_commit,
    .committed = last_committed,
};

void engine__redis_hooks(struct engine *eng)
{
    if (!eng->redis)
        return;
    engine__hook_add(eng, &redis_first_hook, eng->redis);
    engine__hook_add(eng, &redis_last_hook, eng->redis);
}

/* ------------------------------------------------------------------ the loop */

void engine__redis_event(struct engine *eng, struct watch *w, uint32_t events)
{
    struct redis_state *rs = eng->redis;
    struct rconn *c;

    if (!rs)
        return;
    c = w == &rs->cmd.w ? &rs->cmd : w == &rs->sub.w ? &rs->sub : NULL;
    if (!c || !c->ac)
        return;
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        redisAsyncHandleRead(c->ac);
    if (c->ac && (events & (EPOLLOUT | EPOLLERR)))
        redisAsyncHandleWrite(c->ac);
    if (rs->broken)
        go_down(rs);
}

static void on_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    struct rconn *c = answered(ac);
    struct redis_state *rs = c->rs;

    (void)priv;
    if (!reply)
        return;
    pthread_mutex_lock(&rs->eng->mu);
    rs->eng->stats.redis_latency_us = (clock_mono_ns() - rs->ping_sent_ns) / 1000;
    pthread_mutex_unlock(&rs->eng->mu);
}

static void check_timeout(struct redis_state *rs, struct rconn *c, int64_t now)
{
    if (c->ac && c->waiting > 0 && now - c->progress > RB_TIMEOUT_MS)
        set_broken(rs, "%s did not answer the %s connection in %dms", rs->t.shown, c->name,
                   RB_TIMEOUT_MS);
}

void engine__redis_tick(struct engine *eng)
{
    struct redis_state *rs = eng->redis;
    int64_t now;

    if (!rs)
        return;
    now = clock_mono_ms();
    check_timeout(rs, &rs->cmd, now);
    check_timeout(rs, &rs->sub, now);
    if (rs->broken)
        go_down(rs);
    if (!rs->cmd.ac && !rs->sub.ac) {
        if (now >= rs->retry_at && !eng->stopping)
            connect_now(rs);
        return;
    }
    if (!rs->up)
        return;
    claim_held(rs);
    offers_read(rs);
    if (now >= rs->next_autoclaim && engine__node_claims_work(eng) && !eng->stopping) {
        int slots = free_for_read(rs);
        rs->next_autoclaim = now + RB_AUTOCLAIM_MS;
        if (slots > 0)
            csend(&rs->cmd, on_autoclaim, NULL, "XAUTOCLAIM %s %s %s %d 0-0 COUNT %d",
                  ENGINE_REDIS_OFFERS, ENGINE_REDIS_GROUP, eng->node_id, RB_AUTOCLAIM_IDLE_MS,
                  slots);
    }
    if (now >= rs->next_ping) {
        rs->next_ping = now + RB_PING_MS;
        if (rs->cmd.waiting == 0) {
            rs->ping_sent_ns = clock_mono_ns();
            csend(&rs->cmd, on_ping, NULL, "PING");
        }
    }
    if (rs->broken)
        go_down(rs);
}

int64_t engine__redis_next(const struct engine *eng)
{
    const struct redis_state *rs = eng->redis;
    int64_t now = clock_mono_ms(), at = INT64_MAX;

    if (!rs)
        return INT64_MAX;
    if (rs->broken)
        return now;
    if (!rs->cmd.ac && !rs->sub.ac)
        return eng->stopping ? INT64_MAX : rs->retry_at;
    if (rs->cmd.waiting > 0)
        at = rs->cmd.progress + RB_TIMEOUT_MS + 1;
    if (rs->sub.waiting > 0 && rs->sub.progress + RB_TIMEOUT_MS + 1 < at)
        at = rs->sub.progress + RB_TIMEOUT_MS + 1;
    if (!rs->up)
        return at;
    if (rs->next_ping < at)
        at = rs->next_ping;
    if (engine__node_claims_work(eng) && !eng->stopping && !eng->db_down) {
        int slots = engine__free_slots(eng);
        if (rs->next_autoclaim < at)
            at = rs->next_autoclaim;
        if (slots > 0 &&
            (rs->held.n || (rs->offers_waiting && !rs->reading && slots > (int)rs->held.n)))
            at = now;
    }
    return at;
}

/* ------------------------------------------------------------------ life */

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

void engine__redis_start(struct engine *eng, const struct redis_target *t)
{
    struct redis_state *rs;

    if (eng->redis || !t)
        return;
    rs = xcalloc(1, sizeof(*rs));
    rs->eng = eng;
    rs->t.host = dup_or_null(t->host);
    rs->t.port = t->port;
    rs->t.path = dup_or_null(t->path);
    rs->t.user = dup_or_null(t->user);
    rs->t.password = dup_or_null(t->password);
    rs->t.db = t->db;
    rs->t.tls = t->tls;
    rs->t.shown = xstrdup(t->shown ? t->shown : "redis");
    rs->cmd.rs = rs->sub.rs = rs;
    rs->cmd.name = "command";
    rs->sub.name = "subscriber";
    rs->cmd.fd = rs->sub.fd = -1;
    rs->cmd.w.kind = rs->sub.w.kind = WATCH_REDIS;
    rs->backoff = RB_BACKOFF_MIN_MS;
    rs->retry_at = clock_mono_ms();
    eng->redis = rs;
    engine__redis_hooks(eng);
    pthread_mutex_lock(&eng->mu);
    eng->stats.redis_configured = 1;
    eng->stats.redis_ok = 0;
    snprintf(eng->stats.redis_dispatch_stream, sizeof(eng->stats.redis_dispatch_stream), "%s",
             ENGINE_REDIS_OFFERS);
    snprintf(eng->stats.redis_dispatch_group, sizeof(eng->stats.redis_dispatch_group), "%s",
             ENGINE_REDIS_GROUP);
    pthread_mutex_unlock(&eng->mu);
    connect_now(rs); /* the answers come in the loop */
}

void engine__redis_free(struct engine *eng)
{
    struct redis_state *rs = eng->redis;

    if (!rs)
        return;
    close_all(rs);
    strv_release(&rs->pubq);
    strv_release(&rs->offq);
    strv_release(&rs->fallback);
    strv_release(&rs->held);
    strv_release(&rs->ends);
    free(rs->t.host);
    free(rs->t.path);
    free(rs->t.user);
    if (rs->t.password)
        memset(rs->t.password, 0, strlen(rs->t.password));
    free(rs->t.password);
    free(rs->t.shown);
    free(rs);
    eng->redis = NULL;
}
