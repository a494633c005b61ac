#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "cluster.h"
#include "engine_internal.h"
#include "httptask.h"
#include "notify.h"
#include "scheduler.h"
#include "subflow.h"

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

/* The earliest timer is one of a forgotten execution: drop it. */
static void dead_drop_top(struct engine *eng)
{
    const struct timer *top;
    while ((top = engine__timer_peek(&eng->timers)) && top->gen &&
           engine__timer_gen_dead(eng, top->gen)) {
        struct timer t;
        engine__timer_pop(&eng->timers, &t);
    }
}

/* ------------------------------------------------------------------ the loop's deadline */

/* The epoll timeout is at most this long (a deadline further off is met by
 * waking again). */
#define WAIT_MAX_MS 60000

static void sooner(int64_t *at, int64_t t)
{
    if (t < *at)
        *at = t;
}

int64_t engine__next_deadline(struct engine *eng, int64_t next_due)
{
    /* Relative answers of the subsystems count from the turn's time; the
     * next due time of a schedule and libcurl's timer from now. */
    int64_t turn = clock_mono_ms(), fresh = clock_mono_fresh_ms();
    int64_t at = INT64_MAX, d;
    const struct timer *top;

    if (eng->work_now)
        return turn;
    dead_drop_top(eng);
    if ((top = engine__timer_peek(&eng->timers)))
        sooner(&at, top->at + 1); /* a timer fires once the clock is past `at` */
    if (eng->persistent && !eng->stopping && eng->cfg.purge_interval_ms > 0)
        sooner(&at, eng->next_purge);
    if (next_due && !eng->stopping)
        sooner(&at, fresh + (next_due - clock_now_fresh_ms()));
    if ((d = engine__node_timeout(eng)) >= 0)
        sooner(&at, turn + d);
    if ((d = engine__cancel_poll(eng, 0)) >= 0)
        sooner(&at, turn + d);
    if ((d = engine__http_timeout(eng)) >= 0)
        sooner(&at, fresh + d);
    if ((d = engine__notify_timeout(eng)) >= 0)
        sooner(&at, fresh + d);
    if (engine__subflow_poll_at(eng))
        sooner(&at, engine__subflow_poll_at(eng));
    /* Only a node that fires the schedules re-reads them: on the others
     * next_sched_sync stays in the past, and must not make the wait zero. */
    if (engine__sched_on(eng) && !eng->stopping && !eng->db_down && engine__sched_may_fire(eng))
        sooner(&at, engine__sched_next_sync(eng));
    if (eng->disk_full)
        sooner(&at, eng->db_retry_at);
    if (eng->tick_fn)
        sooner(&at, eng->next_tick);
    if (eng->stopping && !eng->interrupted)
        sooner(&at, eng->stop_deadline);
    return at;
}

/* Can something of the outside world end the wait: a process (ours, or one
 * run for another node), an HTTP request, a notification of another node? */
static int waits_on_world(const struct engine *eng)
{
    for (const struct proc *p = eng->procs; p; p = p->next)
        if (!p->reaped)
            return 1;
    return eng->nspawn > 0 || engine__http_active(eng) > 0 || engine__notify_active(eng) > 0 ||
           eng->cluster;
}

int engine__wait_ms(struct engine *eng, int64_t deadline)
{
    int64_t now = clock_mono_fresh_ms(), until = clock_auto_until(), d;

    eng->wait_real_ns = 0;
    if (deadline <= now)
        return 0;
    if (until && !waits_on_world(eng)) {
        /* Nothing can happen before the deadline but a command from another
         * thread: skip the wait, up to the bound the test set. */
        int64_t to = deadline < until ? deadline : until;
        if (to != INT64_MAX)
            clock_advance_to(to);
        now = clock_mono_fresh_ms();
        if (deadline <= now)
            return 0;
    } else if (until) {
        eng->wait_real_ns = clock_mono_ns();
    }
    if (deadline == INT64_MAX)
        return -1;
    d = deadline - now;
    return d > WAIT_MAX_MS ? WAIT_MAX_MS : (int)d;
}

void engine__wait_end(struct engine *eng)
{
    if (eng->wait_real_ns) {
        int64_t took = (clock_mono_ns() - eng->wait_real_ns) / 1000000;
        int64_t until = clock_auto_until(), room = until - clock_mono_fresh_ms();
        if (until)
            clock_advance(took < room ? took : room);
        eng->wait_real_ns = 0;
    }
    clock_turn_begin();
}
