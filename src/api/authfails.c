/*
 * authfails.c - the refused authentications of the last hour, grouped by
 * client address and by what was wrong, for `orch doctor` ("12 requests with
 * more than one space after 'Bearer' from 10.0.0.5").
 *
 * The reason kept is the message the client got: it names what was wrong
 * (never the key; at most its public prefix). The table is a fixed array of
 * AUTHFAILS_GROUPS groups: a new group takes a free slot, else one idle for
 * an hour, else the one idle longest, so memory stays bounded whatever
 * clients send. A group's count starts again after an hour without a
 * failure.
 *
 * Also the per-minute counts of the last hour (api__hour_count_*), as the
 * connection pool counts the requests that waited out its timeout.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "base/xalloc.h"
#include "view/view.h"

#include "base/banned.h"

#define AUTHFAILS_GROUPS    64
#define AUTHFAILS_WINDOW_MS (60LL * 60 * 1000)

struct group {
    char client[64];
    char reason[24];
    char message[AUTH_MSG_MAX];
    long long count;
    int64_t first_at, last_at; /* 0 = free */
};

struct api_authfails {
    pthread_mutex_t lock;
    struct group groups[AUTHFAILS_GROUPS];
};

struct api_authfails *api__authfails_new(void)
{
    struct api_authfails *af = xcalloc(1, sizeof(*af));
    pthread_mutex_init(&af->lock, NULL);
    return af;
}

void api__authfails_free(struct api_authfails *af)
{
    if (!af)
        return;
    pthread_mutex_destroy(&af->lock);
    free(af);
}

void api__authfails_record(struct api_authfails *af, const char *client, const char *reason,
                           const char *message, int64_t now_ms)
{
    struct group *g = NULL, *victim = NULL;

    if (!af)
        return;
    pthread_mutex_lock(&af->lock);
    for (size_t i = 0; i < AUTHFAILS_GROUPS; i++) {
        struct group *c = &af->groups[i];
        if (c->last_at && !strcmp(c->client, client) && !strcmp(c->message, message)) {
            g = c;
            break;
        }
        if (!victim || c->last_at < victim->last_at)
            victim = c;
    }
    if (g && now_ms - g->last_at >= AUTHFAILS_WINDOW_MS) {
        g->count = 0;
        g->first_at = now_ms;
    }
    if (!g) {
        g = victim;
        memset(g, 0, sizeof(*g));
        snprintf(g->client, sizeof(g->client), "%s", client);
        snprintf(g->reason, sizeof(g->reason), "%s", reason ? reason : "");
        snprintf(g->message, sizeof(g->message), "%s", message);
        g->first_at = now_ms;
    }
    g->count++;
    g->last_at = now_ms ? now_ms : 1;
    pthread_mutex_unlock(&af->lock);
}

static int by_count_desc(const void *a, const void *b)
{
    const struct group *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->client, y->client);
}

json_t *api__authfails_json(struct api_authfails *af, int64_t now_ms)
{
    struct group copy[AUTHFAILS_GROUPS];
    size_t n = 0;
    json_t *arr = json_array();

    if (!af)
        return arr;
    pthread_mutex_lock(&af->lock);
    for (size_t i = 0; i < AUTHFAILS_GROUPS; i++)
        if (af->groups[i].last_at && now_ms - af->groups[i].last_at < AUTHFAILS_WINDOW_MS)
            copy[n++] = af->groups[i];
    pthread_mutex_unlock(&af->lock);
    qsort(copy, n, sizeof(copy[0]), by_count_desc);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "client", api__json_string(copy[i].client, strlen(copy[i].client)));
        json_object_set_new(o, "reason", json_string(copy[i].reason));
        json_object_set_new(o, "message",
                            api__json_string(copy[i].message, strlen(copy[i].message)));
        json_object_set_new(o, "count", json_integer(copy[i].count));
        json_object_set_new(o, "firstAt", view_instant(copy[i].first_at));
        json_object_set_new(o, "lastAt", view_instant(copy[i].last_at));
        json_array_append_new(arr, o);
    }
    return arr;
}

void api__hour_count_add(struct api_hour_count *h, int64_t mono_ms)
{
    int64_t minute = mono_ms / 60000 + 1;
    size_t slot = (size_t)(minute % API_HOUR_SLOTS);

    if (h->minute[slot] != minute) {
        h->minute[slot] = minute;
        h->n[slot] = 0;
    }
    h->n[slot]++;
}

uint64_t api__hour_count_sum(const struct api_hour_count *h, int64_t mono_ms)
{
    int64_t minute = mono_ms / 60000 + 1;
    uint64_t sum = 0;

    for (size_t i = 0; i < API_HOUR_SLOTS; i++)
        if (h->minute[i] && h->minute[i] > minute - API_HOUR_SLOTS && h->minute[i] <= minute)
            sum += h->n[i];
    return sum;
}
