/*
 * apiredis.c - the HTTP threads' connections to Redis (ORCH_REDIS_URL).
 *
 * Each HTTP thread has its own blocking connection (a redisContext is not
 * thread-safe), made at its first use and kept in a thread-specific slot
 * whose destructor closes it when the thread ends. Commands have a short
 * timeout (API_REDIS_TIMEOUT_MS): a request never waits long on Redis. When
 * a connection or a command fails, the thread drops its connection and Redis
 * counts as down for every thread until API_REDIS_RETRY_MS has passed, so a
 * dead Redis costs one timeout per second at most, not one per request; the
 * callers then use their local fallbacks (the node's own rate-limit table, the
 * store's copy of the logs). Down and back are each logged once, with the
 * URL's shown form (never the password).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"

#include "base/banned.h"

struct api_redis {
    struct redis_target target; /* a copy: the server may outlive the caller's */
    pthread_key_t key;          /* the thread's redisContext */
    atomic_llong retry_at;      /* monotonic ms: down until then (0: up, or never tried) */
    atomic_int down;            /* said "down" and not yet "back" */
    atomic_ullong fallbacks;    /* times a caller had to do without Redis */
    atomic_ullong failures;     /* connections or commands that failed */
    pthread_mutex_t lock;       /* last_error */
    char last_error[ERR_MSG_MAX];
};

static void close_ctx(void *p)
{
    if (p)
        redisFree(p);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

struct api_redis *api__redis_new(const struct redis_target *t)
{
    struct api_redis *r;

    if (!t)
        return NULL;
    r = xcalloc(1, sizeof(*r));
    r->target = *t;
    r->target.host = dup_or_null(t->host);
    r->target.path = dup_or_null(t->path);
    r->target.user = dup_or_null(t->user);
    r->target.password = dup_or_null(t->password);
    r->target.shown = dup_or_null(t->shown);
    if (pthread_key_create(&r->key, close_ctx) != 0)
        BUG("pthread_key_create");
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

void api__redis_free(struct api_redis *r)
{
    if (!r)
        return;
    /* The HTTP threads have ended (their destructors closed theirs); the
     * calling thread's, if it used one, goes now. */
    close_ctx(pthread_getspecific(r->key));
    pthread_setspecific(r->key, NULL);
    pthread_key_delete(r->key);
    pthread_mutex_destroy(&r->lock);
    redis_target_free(&r->target);
    free(r);
}

const char *api__redis_shown(const struct api_redis *r)
{
    return r ? r->target.shown : NULL;
}

static void mark_down(struct api_redis *r, const char *why)
{
    atomic_fetch_add(&r->failures, 1);
    atomic_store(&r->retry_at, (long long)(clock_mono_fresh_ms() + API_REDIS_RETRY_MS));
    pthread_mutex_lock(&r->lock);
    snprintf(r->last_error, sizeof(r->last_error), "%s", why);
    pthread_mutex_unlock(&r->lock);
    if (atomic_exchange(&r->down, 1) == 0)
        log_warn("Redis", "%s; the API uses this node's own limits and the store's logs until "
                 "Redis answers",
                 why);
}

redisContext *api__redis_get(struct api_redis *r)
{
    redisContext *c;
    struct err err = ERR_INIT;
    long long retry;

    if (!r)
        return NULL;
    c = pthread_getspecific(r->key);
    if (c)
        return c;
    retry = atomic_load(&r->retry_at);
    if (retry && clock_mono_fresh_ms() < retry) {
        atomic_fetch_add(&r->fallbacks, 1);
        return NULL;
    }
    c = redis_connect_sync(&r->target, API_REDIS_TIMEOUT_MS, &err);
    if (!c) {
        mark_down(r, err.msg);
        atomic_fetch_add(&r->fallbacks, 1);
        return NULL;
    }
    pthread_setspecific(r->key, c);
    atomic_store(&r->retry_at, 0);
    if (atomic_exchange(&r->down, 0) == 1)
        log_info("Redis", "%s answers again: the API uses it again", r->target.shown);
    return c;
}

void api__redis_failed(struct api_redis *r, redisContext *c)
{
    char why[ERR_MSG_MAX];

    if (!r || !c)
        return;
    if (c->err == REDIS_ERR_IO && strstr(c->errstr, "temporarily unavailable"))
        snprintf(why, sizeof(why), "%s did not answer within %d ms", r->target.shown,
                 API_REDIS_TIMEOUT_MS); /* (hiredis's words for a timeout: EAGAIN) */
    else if (c->err)
        snprintf(why, sizeof(why), "lost the connection to %s: %s", r->target.shown,
                 c->errstr[0] ? c->errstr : "error");
    else
        snprintf(why, sizeof(why), "%s answered with an error", r->target.shown);
    if (pthread_getspecific(r->key) == c)
        pthread_setspecific(r->key, NULL);
    redisFree(c);
    mark_down(r, why);
    atomic_fetch_add(&r->fallbacks, 1);
}

void api__redis_stats(struct api_redis *r, struct api_redis_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (!r)
        return;
    out->configured = 1;
    out->down = atomic_load(&r->down);
    out->fallbacks = atomic_load(&r->fallbacks);
    out->failures = atomic_load(&r->failures);
    pthread_mutex_lock(&r->lock);
    snprintf(out->last_error, sizeof(out->last_error), "%s", r->last_error);
    pthread_mutex_unlock(&r->lock);
}

/* The value of "name:" in INFO's text, as a number; -1 if absent. */
static long long info_num(const char *info, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = info; (p = strstr(p, name)); p += n) {
        if ((p == info || p[-1] == '\n') && p[n] == ':')
            return strtoll(p + n + 1, NULL, 10);
    }
    return -1;
}

static void info_str(const char *info, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *p = info; (p = strstr(p, name)); p += n) {
        if ((p == info || p[-1] == '\n') && p[n] == ':') {
            snprintf(out, outlen, "%.*s", (int)strcspn(p + n + 1, "\r\n"), p + n + 1);
            return;
        }
    }
}

/* One command's reply on `c`; NULL (and the connection dropped) on failure. */
static redisReply *command(struct api_redis *r, redisContext *c, int argc, const char **argv)
{
    redisReply *rep = redisCommandArgv(c, argc, argv, NULL);
    if (!rep)
        api__redis_failed(r, c);
    return rep;
}

static int probe(const struct redis_target *t, struct api_redis *r, const char *stream,
                 const char *group, struct api_redis_probe *out, int again)
{
    struct err err = ERR_INIT;
    redisContext *c, *own = NULL;
    redisReply *rep;
    int64_t t0;

    memset(out, 0, sizeof(*out));
    out->used_memory = out->ops_per_sec = out->stream_len = out->pending = -1;
    if (r) {
        c = api__redis_get(r);
        if (!c) {
            /* Down: one fresh try, so the probe says why now. */
            c = own = redis_connect_sync(&r->target, API_REDIS_TIMEOUT_MS, &err);
            if (!c) {
                snprintf(out->error, sizeof(out->error), "%s", err.msg);
                return -1;
            }
        }
    } else {
        c = own = redis_connect_sync(t, API_REDIS_TIMEOUT_MS, &err);
        if (!c) {
            snprintf(out->error, sizeof(out->error), "%s", err.msg);
            return -1;
        }
    }
    t0 = clock_mono_ns();
    rep = redisCommand(c, "PING");
    if (!rep || rep->type == REDIS_REPLY_ERROR) {
        snprintf(out->error, sizeof(out->error), "%s did not answer PING: %s",
                 r ? r->target.shown : t->shown, c->errstr[0] ? c->errstr : "error");
        goto fail;
    }
    out->latency_ms = (double)(clock_mono_ns() - t0) / 1e6;
    freeReplyObject(rep);
    out->reachable = 1;
    rep = redisCommand(c, "INFO");
    if (!rep)
        goto fail;
    if (rep->type == REDIS_REPLY_STRING) {
        out->used_memory = info_num(rep->str, "used_memory");
        out->ops_per_sec = info_num(rep->str, "instantaneous_ops_per_sec");
        info_str(rep->str, "redis_version", out->version, sizeof(out->version));
    }
    freeReplyObject(rep);
    if (stream && *stream) {
        const char *xlen[] = {"XLEN", stream};
        rep = own ? redisCommandArgv(c, 2, xlen, NULL) : command(r, c, 2, xlen);
        if (!rep)
            goto lost;
        if (rep->type == REDIS_REPLY_INTEGER)
            out->stream_len = rep->integer;
        freeReplyObject(rep);
        if (group && *group) {
            const char *xp[] = {"XPENDING", stream, group};
            rep = own ? redisCommandArgv(c, 3, xp, NULL) : command(r, c, 3, xp);
            if (!rep)
                goto lost;
            if (rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 &&
                rep->element[0]->type == REDIS_REPLY_INTEGER)
                out->pending = rep->element[0]->integer;
            else if (rep->type == REDIS_REPLY_ERROR)
                out->pending = 0; /* NOGROUP: no consumer group yet, nothing pending */
            freeReplyObject(rep);
        }
    }
    if (own)
        redisFree(own);
    return 0;
fail:
    if (rep)
        freeReplyObject(rep);
    if (!out->error[0])
        snprintf(out->error, sizeof(out->error), "lost the connection to %s: %s",
                 r ? r->target.shown : t->shown, c->errstr[0] ? c->errstr : "error");
    if (own) {
        redisFree(own);
    } else {
        /* The thread's connection had gone stale (Redis restarted or died):
         * a fresh look says which. */
        api__redis_failed(r, c);
        if (again)
            return probe(t, r, stream, group, out, 0);
    }
    out->reachable = 0;
    return -1;
lost:
    /* command() has closed the connection already */
    snprintf(out->error, sizeof(out->error), "lost the connection to %s",
             r ? r->target.shown : t->shown);
    out->reachable = 0;
    return -1;
}

int api__redis_probe_target(const struct redis_target *t, struct api_redis *r,
                            const char *stream, const char *group, struct api_redis_probe *out)
{
    return probe(t, r, stream, group, out, 1);
}
