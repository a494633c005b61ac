/*
 * deadline.c - the loop's one deadline (engine__next_deadline: the timer heap
 * and the subsystems' own times) and the wait for it, with a manual clock
 * too. Above the core: only the loop (engine.c) calls it.
 */
#include <stdint.h>

#include "base/clock.h"
#include "cluster.h"
#include "engine_internal.h"
#include "httptask.h"
#include "notify.h"
#include "redisbus.h"
#include "scheduler.h"
#include "subflow.h"

#include "base/banned.h"

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
    if ((top = engine__timer_first_live(eng)))
        sooner(&at, top->at + 1); /* a timer fires once the clock is past `at` */
    if (eng->persistent && !eng->stopping && eng->cfg.purge_interval_ms > 0)
        sooner(&at, eng->next_purge);
    if (next_due && !eng->stopping)
        sooner(&at, fresh + (next_due - clock_now_fresh_ms()));
    if ((d = engine__node_timeout(eng)) >= 0)
        sooner(&at, turn + d);
    sooner(&at, engine__redis_next(eng));
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
    sooner(&at, engine__monitor_next(eng));
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
