/*
 * timer.c - the timer heap on the monotonic clock, and the timers of freed
 * executions forgotten by generation. Part of the engine's core
 * (docs/internals/engine.md): it calls nothing above it. The loop's one
 * deadline over it and the subsystems' own times is deadline.c's.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "engine_internal.h"

#include "base/banned.h"

static void sift_up(struct timer_heap *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        struct timer tmp;
        if (h->items[p].at <= h->items[i].at)
            break;
        tmp = h->items[p];
        h->items[p] = h->items[i];
        h->items[i] = tmp;
        i = p;
    }
}

static void sift_down(struct timer_heap *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        struct timer tmp;
        if (l < h->n && h->items[l].at < h->items[m].at)
            m = l;
        if (r < h->n && h->items[r].at < h->items[m].at)
            m = r;
        if (m == i)
            break;
        tmp = h->items[m];
        h->items[m] = h->items[i];
        h->items[i] = tmp;
        i = m;
    }
}

void engine__timer_add(struct timer_heap *h, const struct timer *t)
{
    XGROW(h->items, h->alloc, h->n + 1);
    h->items[h->n] = *t;
    sift_up(h, h->n);
    h->n++;
}

const struct timer *engine__timer_peek(const struct timer_heap *h)
{
    return h->n ? &h->items[0] : NULL;
}

void engine__timer_pop(struct timer_heap *h, struct timer *out)
{
    *out = h->items[0];
    h->n--;
    if (h->n) {
        h->items[0] = h->items[h->n];
        sift_down(h, 0);
    }
}

void engine__timer_purge(struct timer_heap *h, const struct exec *ex, const struct proc *proc)
{
    size_t w = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct timer *t = &h->items[i];
        if ((ex && t->ex == ex) || (proc && t->proc == proc))
            continue;
        h->items[w++] = *t;
    }
    if (w == h->n)
        return;
    h->n = w;
    /* Rebuild the heap property bottom-up. */
    for (size_t i = h->n / 2 + 1; i-- > 0;)
        sift_down(h, i);
}

void engine__timer_release(struct timer_heap *h)
{
    free(h->items);
    memset(h, 0, sizeof(*h));
}

/* ------------------------------------------------------------------ forgotten timers */

uint64_t engine__exec_gen_next(void)
{
    static uint64_t last;
    return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

static size_t dead_slot(const uint64_t *set, size_t cap, uint64_t gen)
{
    size_t i = (size_t)(gen * 0x9E3779B97F4A7C15ull) & (cap - 1);
    while (set[i] && set[i] != gen)
        i = (i + 1) & (cap - 1);
    return i;
}

int engine__timer_gen_dead(const struct engine *eng, uint64_t gen)
{
    if (!eng->ndead_gens)
        return 0;
    return eng->dead_gens[dead_slot(eng->dead_gens, eng->dead_gens_cap, gen)] == gen;
}

/* Drop every timer of a dead generation (one walk) and empty the set. */
static void dead_compact(struct engine *eng)
{
    struct timer_heap *h = &eng->timers;
    size_t w = 0;
    for (size_t i = 0; i < h->n; i++) {
        const struct timer *t = &h->items[i];
        if (t->gen && engine__timer_gen_dead(eng, t->gen))
            continue;
        h->items[w++] = *t;
    }
    if (w != h->n) {
        h->n = w;
        for (size_t i = h->n / 2 + 1; i-- > 0;)
            sift_down(h, i);
    }
    memset(eng->dead_gens, 0, eng->dead_gens_cap * sizeof(*eng->dead_gens));
    eng->ndead_gens = 0;
}

void engine__timers_forget_exec(struct engine *eng, struct exec *ex)
{
    uint64_t gen = ex->gen;

    ex->gen = engine__exec_gen_next(); /* timers armed from now on are live */
    if (!eng->timers.n)
        return; /* none of its timers can be waiting */
    if (2 * (eng->ndead_gens + 1) > eng->dead_gens_cap) {
        /* Grow (load at most 1/2): reinsert what is there. */
        size_t cap = eng->dead_gens_cap ? 2 * eng->dead_gens_cap : 64;
        uint64_t *set = xcalloc(cap, sizeof(*set));
        for (size_t i = 0; i < eng->dead_gens_cap; i++)
            if (eng->dead_gens[i])
                set[dead_slot(set, cap, eng->dead_gens[i])] = eng->dead_gens[i];
        free(eng->dead_gens);
        eng->dead_gens = set;
        eng->dead_gens_cap = cap;
    }
    eng->dead_gens[dead_slot(eng->dead_gens, eng->dead_gens_cap, gen)] = gen;
    eng->ndead_gens++;
    /* The walk costs the heap's size, at most twice the executions
     * forgotten since the last one: O(1) each, and at most half the heap is
     * ever dead timers. */
    if (eng->ndead_gens >= 64 && 2 * eng->ndead_gens > eng->timers.n)
        dead_compact(eng);
}

/* The earliest timer, once those of forgotten executions on top are dropped. */
const struct timer *engine__timer_first_live(struct engine *eng)
{
    const struct timer *top;
    while ((top = engine__timer_peek(&eng->timers)) && top->gen &&
           engine__timer_gen_dead(eng, top->gen)) {
        struct timer t;
        engine__timer_pop(&eng->timers, &t);
    }
    return top;
}
