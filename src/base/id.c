#include "id.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "clock.h"

static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz";
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static uint32_t last_seq;

static uint64_t rnd_state;
static int rnd_seeded;

/*
 * The random start of a millisecond's sequence (under id_lock): splitmix64
 * over a state seeded once per process from getrandom, so that two
 * processes making ids in the same millisecond start far apart, without a
 * system call for each new millisecond (one per API request before); a
 * forked child seeds its own.
 */
static void reseed_in_child(void)
{
    rnd_seeded = 0; /* a forked child draws its own seed */
}

static uint64_t next_random(void)
{
    static int atfork;
    uint64_t z;

    if (!atfork) {
        atfork = 1;
        pthread_atfork(NULL, NULL, reseed_in_child);
    }
    if (!rnd_seeded) {
        if (getrandom(&rnd_state, sizeof(rnd_state), 0) != sizeof(rnd_state))
            rnd_state = (uint64_t)clock_mono_ns() ^ ((uint64_t)getpid() << 32);
        rnd_seeded = 1;
    }
    z = (rnd_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

char *id_new(const char *prefix, char *out)
{
    uint64_t ms = (uint64_t)clock_now_ms();
    uint32_t seq;
    unsigned __int128 v;
    size_t plen = strlen(prefix);

    if (plen > ID_MAX - 17)
        plen = ID_MAX - 17;
    pthread_mutex_lock(&id_lock);
    if (ms <= last_ms) {
        /* Same millisecond (or the clock stepped back): keep counting up. */
        ms = last_ms;
        seq = last_seq + 1;
        if (seq == 0) {
            ms++;
            seq = 0;
        }
    } else {
        seq = (uint32_t)next_random() & 0x7fffffffu; /* leave room to count up */
    }
    last_ms = ms;
    last_seq = seq;
    pthread_mutex_unlock(&id_lock);

    v = ((unsigned __int128)(ms & 0xffffffffffffULL) << 32) | seq;
    memcpy(out, prefix, plen);
    for (int i = 15; i >= 0; i--) {
        out[plen + (size_t)i] = b32[(unsigned)(v & 31)];
        v >>= 5;
    }
    out[plen + 16] = '\0';
    return out;
}

char *id_at(const char *prefix, int64_t ms, char *out)
{
    unsigned __int128 v = (unsigned __int128)((uint64_t)(ms < 0 ? 0 : ms) & 0xffffffffffffULL) << 32;
    size_t plen = strlen(prefix);

    if (plen > ID_MAX - 17)
        plen = ID_MAX - 17;
    memcpy(out, prefix, plen);
    for (int i = 15; i >= 0; i--) {
        out[plen + (size_t)i] = b32[(unsigned)(v & 31)];
        v >>= 5;
    }
    out[plen + 16] = '\0';
    return out;
}

int64_t id_time_ms(const char *id)
{
    const char *us = strchr(id, '_');
    const char *p = us ? us + 1 : id;
    unsigned __int128 v = 0;

    if (strlen(p) != 16)
        return -1;
    for (int i = 0; i < 16; i++) {
        const char *c = strchr(b32, p[i]);
        if (!c || !p[i])
            return -1;
        v = (v << 5) | (unsigned)(c - b32);
    }
    return (int64_t)(uint64_t)(v >> 32);
}
