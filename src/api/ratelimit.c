/*
 * ratelimit.c - failed authentications per client address and presented key
 * prefix, in fixed windows.
 *
 * A pair's window opens at its first failure and lasts `window_ms`; once it
 * holds `limit` failures, further failures of the pair get 429 instead of 401
 * until the window ends. The caller checks the key first: a valid key is
 * never refused, and a client presenting one broken key does not slow down
 * another key from the same address (a proxy, a NAT).
 * The table is a small open-addressed array probed a few slots from the
 * address's hash: an expired entry counts as free, and when all the probed
 * slots are live the one whose window opened first is replaced. So memory is
 * bounded whatever the number of addresses, and a flood of new addresses can
 * at worst make the limiter forget some clients early, never grow.
 *
 * With Redis (ORCH_REDIS_URL) the nodes share the counts: a pair's count is
 * the key "orch:authfail:<address>\n<prefix>", whose window opens with its
 * first failure (INCR, then PEXPIRE ... NX: the expiry is set once, so the
 * window is fixed as here), in one round trip. The local table is kept as
 * well, so that when Redis fails the node goes on with what it saw itself.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "base/xalloc.h"

#include "base/banned.h"

#define PROBES 8

struct slot {
    char client[64 + 1 + 24]; /* address '\n' key prefix */
    int64_t window_start;     /* 0 = free */
    int failures;
};

struct api_ratelimit {
    struct api_redis *redis; /* or NULL */
    pthread_mutex_t lock;
    int limit;
    int64_t window_ms;
    size_t mask;
    struct slot *slots;
};

struct api_ratelimit *api__ratelimit_new(int limit, int64_t window_ms, size_t slots)
{
    struct api_ratelimit *rl = xcalloc(1, sizeof(*rl));
    size_t n = 16;

    while (n < slots && n < ((size_t)1 << 20))
        n <<= 1;
    pthread_mutex_init(&rl->lock, NULL);
    rl->limit = limit;
    rl->window_ms = window_ms > 0 ? window_ms : 1;
    rl->mask = n - 1;
    rl->slots = xcalloc(n, sizeof(*rl->slots));
    return rl;
}

void api__ratelimit_free(struct api_ratelimit *rl)
{
    if (!rl)
        return;
    pthread_mutex_destroy(&rl->lock);
    free(rl->slots);
    free(rl);
}

static size_t hash(const char *s)
{
    /* FNV-1a */
    size_t h = (size_t)14695981039346656037ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= (size_t)1099511628211ULL;
    }
    return h;
}

static int live(const struct api_ratelimit *rl, const struct slot *s, int64_t now)
{
    return s->window_start && now - s->window_start < rl->window_ms;
}

/* The live slot of `client`, or NULL. Called with the lock held. */
static struct slot *find(struct api_ratelimit *rl, const char *client, int64_t now)
{
    size_t h = hash(client);
    for (size_t i = 0; i < PROBES; i++) {
        struct slot *s = &rl->slots[(h + i) & rl->mask];
        if (live(rl, s, now) && !strcmp(s->client, client))
            return s;
    }
    return NULL;
}

static void pair(char *out, size_t outlen, const char *client, const char *prefix)
{
    snprintf(out, outlen, "%s\n%s", client, prefix ? prefix : "");
}

void api__ratelimit_set_redis(struct api_ratelimit *rl, struct api_redis *redis)
{
    rl->redis = redis;
}

#define REDIS_KEY_PREFIX "orch:authfail:"

/*
 * The pair's shared count and the ms left in its window, from Redis, after
 * adding `add` (0 or 1) failures: 0, or -1 when Redis is not there (then the
 * caller uses the local table).
 */
static int redis_count(struct api_ratelimit *rl, const char *client, int add, long long *count,
                       long long *ttl_ms)
{
    char key[sizeof(REDIS_KEY_PREFIX) + sizeof(((struct slot *)0)->client)];
    char window[24];
    redisContext *c = api__redis_get(rl->redis);
    redisReply *r[3] = {NULL, NULL, NULL};
    int n = 0, ok = 1;

    if (!c)
        return -1;
    snprintf(key, sizeof(key), REDIS_KEY_PREFIX "%s", client);
    snprintf(window, sizeof(window), "%lld", (long long)rl->window_ms);
    if (add) {
        redisAppendCommand(c, "INCR %b", key, strlen(key));
        redisAppendCommand(c, "PEXPIRE %b %s NX", key, strlen(key), window);
        n = 2;
    } else {
        redisAppendCommand(c, "GET %b", key, strlen(key));
        n = 1;
    }
    redisAppendCommand(c, "PTTL %b", key, strlen(key));
    n++;
    for (int i = 0; i < n; i++) {
        void *reply = NULL;
        if (redisGetReply(c, &reply) != REDIS_OK || !reply) {
            ok = 0;
            break;
        }
        r[i] = reply;
        if (r[i]->type == REDIS_REPLY_ERROR)
            ok = 0;
    }
    if (ok) {
        const redisReply *cnt = r[0], *ttl = r[n - 1];
        if (cnt->type == REDIS_REPLY_INTEGER)
            *count = cnt->integer;
        else if (cnt->type == REDIS_REPLY_STRING)
            *count = strtoll(cnt->str, NULL, 10);
        else
            *count = 0; /* nil: no failures in a window */
        *ttl_ms = ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -1;
        if (*ttl_ms < 0)
            *ttl_ms = *count ? rl->window_ms : 0; /* no expiry yet (a race with INCR) */
    }
    for (int i = 0; i < 3; i++)
        if (r[i])
            freeReplyObject(r[i]);
    if (!ok) {
        api__redis_failed(rl->redis, c);
        return -1;
    }
    return 0;
}

int64_t api__ratelimit_check(struct api_ratelimit *rl, const char *who, const char *prefix,
                             int64_t now_ms)
{
    char client[sizeof(((struct slot *)0)->client)];
    struct slot *s;
    int64_t wait = 0;
    long long count, ttl;

    if (rl->limit <= 0)
        return 0;
    pair(client, sizeof(client), who, prefix);
    if (rl->redis && redis_count(rl, client, 0, &count, &ttl) == 0)
        return count >= rl->limit && ttl > 0 ? ttl : 0;
    pthread_mutex_lock(&rl->lock);
    s = find(rl, client, now_ms);
    if (s && s->failures >= rl->limit)
        wait = s->window_start + rl->window_ms - now_ms;
    pthread_mutex_unlock(&rl->lock);
    return wait > 0 ? wait : 0;
}

void api__ratelimit_fail(struct api_ratelimit *rl, const char *who, const char *prefix,
                         int64_t now_ms)
{
    char client[sizeof(((struct slot *)0)->client)];
    struct slot *s;

    if (rl->limit <= 0)
        return;
    pair(client, sizeof(client), who, prefix);
    if (rl->redis) {
        long long count, ttl;
        (void)redis_count(rl, client, 1, &count, &ttl);
    }
    pthread_mutex_lock(&rl->lock);
    s = find(rl, client, now_ms);
    if (!s) {
        size_t h = hash(client);
        for (size_t i = 0; i < PROBES; i++) {
            struct slot *c = &rl->slots[(h + i) & rl->mask];
            if (!live(rl, c, now_ms)) {
                s = c;
                break;
            }
            if (!s || c->window_start < s->window_start)
                s = c;
        }
        snprintf(s->client, sizeof(s->client), "%s", client);
        s->window_start = now_ms ? now_ms : 1;
        s->failures = 0;
    }
    s->failures++;
    pthread_mutex_unlock(&rl->lock);
}
