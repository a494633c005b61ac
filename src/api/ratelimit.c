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

int64_t api__ratelimit_check(struct api_ratelimit *rl, const char *who, const char *prefix,
                             int64_t now_ms)
{
    char client[sizeof(((struct slot *)0)->client)];
    struct slot *s;
    int64_t wait = 0;

    if (rl->limit <= 0)
        return 0;
    pair(client, sizeof(client), who, prefix);
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
