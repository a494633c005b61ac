/*
 * kind_simple.c - the task kinds that need nothing outside the engine: noop
 * (succeeds in the turn it begins, no process, no slot) and sleep (a timer).
 */
#include "base/log.h"
#include "engine_internal.h"
#include "kind.h"
#include "recovery.h"

#include "base/banned.h"

/* ------------------------------------------------------------------ noop */

/* Nothing to do: the engine records the attempt and the task succeeded
 * (kind.instant). */
static void noop_begin(struct engine *eng, struct exec *ex, size_t idx, int offer)
{
    (void)eng;
    (void)offer;
    log_debug(COMP_TASK, "Task '%s' succeeded (noop)", engine__task_name(ex, idx));
}

/* A noop is never left running in the store (it ends in the commit of its
 * start); should one be, it is lost like any other attempt. */
static void noop_restore(struct engine *eng, struct exec *ex, size_t idx,
                         const struct attempt_row *last, int64_t now)
{
    (void)now;
    engine__attempt_restored(eng, ex, idx, last, 0);
    engine__attempt_lost(eng, ex, idx, last, 1, NULL);
}

const struct task_kind engine__kind_noop = {
    .name = "noop",
    .queue = KIND_QUEUE_FREE,
    .instant = 1,
    .begin = noop_begin,
    .restore = noop_restore,
};

/* ------------------------------------------------------------------ sleep */

static void sleep_begin(struct engine *eng, struct exec *ex, size_t idx, int offer)
{
    (void)offer;
    engine__attempt_timer(eng, TIMER_KIND_WAKE, ex, idx, engine__task(ex, idx)->sleep_ms);
    log_info(COMP_TASK, "Task '%s' started (sleep, attempt %d)", engine__task_name(ex, idx),
             ex->runs[idx].attempt);
}

/* A sleep continues where it was: nothing was lost but time. */
static void sleep_restore(struct engine *eng, struct exec *ex, size_t idx,
                          const struct attempt_row *last, int64_t now)
{
    engine__attempt_restored(eng, ex, idx, last, 0);
    if (last) {
        engine__attempt_timer(eng, TIMER_KIND_WAKE, ex, idx,
                              last->started_at + engine__task(ex, idx)->sleep_ms - now);
        return;
    }
    engine__attempt_lost(eng, ex, idx, last, 1, NULL);
}

/* Its timer is running (TIMER_KIND_WAKE). */
static int sleep_waits(const struct exec *ex, size_t idx)
{
    (void)ex;
    (void)idx;
    return 1;
}

/* The duration is over: the attempt succeeded. */
static void sleep_wake(struct engine *eng, struct exec *ex, size_t idx)
{
    engine__attempt_end(eng, ex, idx, ATTEMPT_SUCCEEDED, 0, 0, NULL, 0, 0, 0, 1);
}

const struct task_kind engine__kind_sleep = {
    .name = "sleep",
    .queue = KIND_QUEUE_WAIT,
    .begin = sleep_begin,
    .restore = sleep_restore,
    .waits = sleep_waits,
    .wake = sleep_wake,
};
