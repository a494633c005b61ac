/*
 * Unit tests for src/engine: the timer heap, and the engine itself driven
 * in-process on a real SQLite store with real processes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "store/store.h"

struct fixture {
    char dir[64];
    struct store *st;
    struct engine *eng;
    int events[3];
};

static void observe(void *arg, const struct engine_event *ev)
{
    struct fixture *f = arg;
    f->events[ev->type]++;
}

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct engine_config cfg;
    struct err err = ERR_INIT;

    snprintf(f->dir, sizeof(f->dir), "/tmp/orch-test-engine.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(store_open(f->dir, STORE_CREATE, &f->st, &err), 0);
    engine_config_init(&cfg);
    cfg.workers = 2;
    cfg.kill_grace_ms = 200;
    assert_int_equal(engine_new(f->st, &cfg, &f->eng, &err), 0);
    engine_set_observer(f->eng, observe, f);
    log_set_level(LOG_ERROR);
    *state = f;
    return 0;
}

/*
 * The same on a manual clock that auto-advances (base/clock.h): whenever the
 * engine would wait for a deadline with no process of its own running, its
 * time jumps there, so back-offs, sleeps and timeouts cost no real time.
 */
static int setup_manual(void **state)
{
    clock_use_manual(clock_now_fresh_ms(), clock_mono_fresh_ms());
    clock_set_auto(CLOCK_AUTO_FOREVER);
    return setup(state);
}

/*
 * For the scheduler: a manual clock that stands still until clock_run_for(),
 * starting half a second past a whole second, so no due time of an every-1s
 * schedule falls on the bound a test gives its time.
 */
static int setup_sched(void **state)
{
    clock_use_manual(clock_now_fresh_ms() / 1000 * 1000 + 500, clock_mono_fresh_ms());
    return setup(state);
}

/*
 * Let the engine's time run `ms` further (call it before the engine's thread
 * starts): it jumps from deadline to deadline but never past this bound, where
 * it waits on the real clock for a command or a stop. Returns the bound.
 */
static int64_t clock_run_for(int64_t ms)
{
    int64_t until = clock_mono_fresh_ms() + ms;
    clock_set_auto(until);
    return until;
}

/* Wait until the engine's time reached `until`: all that was due is done. */
static void clock_wait_for(int64_t until)
{
    int64_t t0 = clock_mono_ns();
    while (clock_mono_fresh_ms() < until) {
        if (clock_mono_ns() - t0 > 60LL * 1000000000)
            fail_msg("the engine's clock did not reach its bound");
        usleep(1000);
    }
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    engine_free(f->eng);
    clock_use_real();
    store_free(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Submit `def`, run to completion, return the stored execution. */
static struct exec_detail *run_def(struct fixture *f, const char *def)
{
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    char id[ID_MAX];

    assert_int_equal(engine_submit(f->eng, def, NULL, id, &err), 0);
    assert_int_equal(engine_run(f->eng, &err), 0);
    assert_int_equal(engine_active(f->eng), 0);
    assert_int_equal(store_execution_get(f->st, id, &d, &err), 0);
    return d;
}

static const struct task_run_row *task(const struct exec_detail *d, const char *name)
{
    for (size_t i = 0; i < d->ntasks; i++)
        if (!strcmp(d->tasks[i].name, name))
            return &d->tasks[i];
    fail_msg("no task %s", name);
    return NULL;
}

static void test_timer_heap(void **state)
{
    struct timer_heap h = {NULL, 0, 0};
    struct timer t, out;
    int64_t last = -1;
    (void)state;

    memset(&t, 0, sizeof(t));
    for (int i = 0; i < 1000; i++) {
        t.at = (i * 7919) % 1009;
        t.idx = (size_t)i;
        t.ex = (struct exec *)(uintptr_t)(i % 3 == 0 ? 1 : 2);
        engine__timer_add(&h, &t);
    }
    engine__timer_purge(&h, (struct exec *)(uintptr_t)1, NULL);
    assert_int_equal(h.n, 666);
    while (h.n) {
        engine__timer_pop(&h, &out);
        assert_true(out.at >= last);
        assert_true(out.idx % 3 != 0);
        last = out.at;
    }
    assert_null(engine__timer_peek(&h));
    engine__timer_release(&h);
}

/* Forgetting an execution's timers costs O(1): its generation is dead, its
 * timers are skipped, and they all go once the dead pass half the heap. */
static void test_timers_forget_exec(void **state)
{
    struct engine *eng = xcalloc(1, sizeof(*eng));
    struct exec a, b, many;
    struct timer t;
    uint64_t old;
    (void)state;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&many, 0, sizeof(many));
    a.gen = engine__exec_gen_next();
    b.gen = engine__exec_gen_next();
    assert_true(a.gen != 0 && b.gen != a.gen);
    memset(&t, 0, sizeof(t));
    for (int i = 0; i < 3; i++) {
        t.at = 10 * (i + 1);
        t.ex = &a;
        t.gen = a.gen;
        engine__timer_add(&eng->timers, &t);
    }
    t.at = 15;
    t.ex = &b;
    t.gen = b.gen;
    engine__timer_add(&eng->timers, &t);

    old = a.gen;
    engine__timers_forget_exec(eng, &a);
    assert_true(engine__timer_gen_dead(eng, old));
    assert_false(engine__timer_gen_dead(eng, a.gen)); /* armed from now on: live */
    assert_false(engine__timer_gen_dead(eng, b.gen));
    assert_int_equal(eng->timers.n, 4); /* not walked */

    /* Many forgotten executions with a timer each: the heap is compacted, the
     * set emptied, and only b's timer is left. */
    for (int i = 0; i < 200; i++) {
        many.gen = engine__exec_gen_next();
        t.at = 1000 + i;
        t.ex = &many;
        t.gen = many.gen;
        engine__timer_add(&eng->timers, &t);
        engine__timers_forget_exec(eng, &many);
    }
    assert_true(eng->ndead_gens < 64);
    assert_true(eng->timers.n <= 1 + eng->ndead_gens);
    assert_int_equal(engine__timer_peek(&eng->timers)->gen, b.gen);
    assert_false(engine__timer_gen_dead(eng, b.gen));

    /* With no timer waiting, nothing is recorded. */
    while (eng->timers.n)
        engine__timer_pop(&eng->timers, &t);
    old = b.gen;
    engine__timers_forget_exec(eng, &b);
    assert_true(b.gen != old);
    engine__timer_release(&eng->timers);
    free(eng->dead_gens);
    free(eng);
}

/* The loop's one deadline, and the wait it makes on a manual clock. */
static void test_next_deadline_and_wait(void **state)
{
    struct fixture *f = *state;
    struct engine *eng = f->eng;
    struct timer t;
    int64_t now;

    clock_set_auto(0); /* the clock stands still */
    now = clock_mono_ms();
    assert_int_equal(engine__next_deadline(eng, 0), INT64_MAX);
    assert_int_equal(engine__wait_ms(eng, INT64_MAX), -1);

    /* The timer heap: a timer fires once the clock is past it. */
    memset(&t, 0, sizeof(t));
    t.kind = TIMER_PID_WRITE;
    t.at = now + 5000;
    engine__timer_add(&eng->timers, &t);
    assert_int_equal(engine__next_deadline(eng, 0), now + 5001);
    assert_int_equal(engine__wait_ms(eng, now + 5001), 5001);
    assert_int_equal(engine__wait_ms(eng, now + 3600 * 1000), 60000); /* woken at least so often */
    assert_int_equal(engine__wait_ms(eng, now - 10), 0);

    /* The periodic deadlines, each where it is kept. */
    eng->persistent = 1;
    eng->cfg.purge_interval_ms = 60000;
    eng->next_purge = now + 4000;
    assert_int_equal(engine__next_deadline(eng, 0), now + 4000);
    assert_int_equal(engine__next_deadline(eng, clock_now_ms() + 3000), now + 3000);
    eng->tick_fn = free; /* never called here */
    eng->next_tick = now + 2000;
    assert_int_equal(engine__next_deadline(eng, 0), now + 2000);
    eng->stopping = 1;
    eng->stop_deadline = now + 500;
    assert_int_equal(engine__next_deadline(eng, clock_now_ms() + 100), now + 500);
    eng->work_now = 1;
    assert_true(engine__next_deadline(eng, 0) <= now);
    eng->work_now = 0;

    /* Auto-advance: nothing to wait on but the deadline, the clock jumps there. */
    clock_set_auto(CLOCK_AUTO_FOREVER);
    assert_int_equal(engine__wait_ms(eng, now + 500), 0);
    assert_int_equal(clock_mono_ms(), now + 500);
    /* Never past the bound a test sets: then it waits for the rest. */
    clock_set_auto(now + 700);
    assert_int_equal(engine__wait_ms(eng, now + 1000), 300);
    assert_int_equal(clock_mono_ms(), now + 700);
    /* Waiting on the outside world (here, other nodes), it does not jump. */
    clock_set_auto(CLOCK_AUTO_FOREVER);
    eng->cluster = 1;
    assert_int_equal(engine__wait_ms(eng, now + 3600 * 1000), 60000);
    engine__wait_end(eng);
    clock_turn_end();
    assert_true(clock_mono_ms() < now + 3600 * 1000);
    eng->cluster = 0;
    eng->tick_fn = NULL;
    eng->stopping = 0;
    eng->persistent = 0;
}

static void test_noop_chain_one_turn(void **state)
{
    struct fixture *f = *state;
    struct exec_detail *d;
    char buf[16384];
    int n = snprintf(buf, sizeof(buf), "{\"name\":\"chain\",\"tasks\":[{\"name\":\"t0\",\"type\":\"noop\"}");
    for (int i = 1; i < 100; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      ",{\"name\":\"t%d\",\"type\":\"noop\",\"dependsOn\":[\"t%d\"]}", i, i - 1);
    snprintf(buf + n, sizeof(buf) - (size_t)n, "]}");
    d = run_def(f, buf);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    assert_int_equal(d->ntasks, 100);
    assert_int_equal(d->nattempts, 100);
    for (size_t i = 0; i < d->ntasks; i++) {
        assert_int_equal(d->tasks[i].status, TASK_SUCCEEDED);
        assert_int_equal(d->tasks[i].attempt, 1);
    }
    assert_int_equal(f->events[ENGINE_EV_EXEC_FINISHED], 1);
    assert_int_equal(f->events[ENGINE_EV_TASK_FINISHED], 100);
    exec_detail_free(d);
}

/* An observer that moves the (manual) clock on by 1 ms at every event. */
static void observe_and_tick(void *arg, const struct engine_event *ev)
{
    observe(arg, ev);
    clock_advance(1);
}

/*
 * A turn reads the time once: a chain of 200 noops completes in the first
 * turn, so every task and attempt of it carries the same start and end, even
 * though the clock moves on at each of its events.
 */
static void test_one_time_per_turn(void **state)
{
    struct fixture *f = *state;
    struct exec_detail *d;
    char buf[32768];
    int64_t t0;
    int n = snprintf(buf, sizeof(buf),
                     "{\"name\":\"turn\",\"tasks\":[{\"name\":\"t0\",\"type\":\"noop\"}");
    for (int i = 1; i < 200; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      ",{\"name\":\"t%d\",\"type\":\"noop\",\"dependsOn\":[\"t%d\"]}", i, i - 1);
    snprintf(buf + n, sizeof(buf) - (size_t)n, "]}");
    clock_set_auto(0);
    engine_set_observer(f->eng, observe_and_tick, f);
    t0 = clock_now_ms();
    d = run_def(f, buf);
    assert_true(clock_now_ms() >= t0 + 200); /* the clock did move */
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    assert_int_equal(d->nattempts, 200);
    for (size_t i = 0; i < d->ntasks; i++) {
        assert_int_equal(d->tasks[i].started_at, d->tasks[0].started_at);
        assert_int_equal(d->tasks[i].finished_at, d->tasks[0].started_at);
    }
    for (size_t i = 0; i < d->nattempts; i++) {
        assert_int_equal(d->attempts[i].started_at, d->tasks[0].started_at);
        assert_int_equal(d->attempts[i].finished_at, d->tasks[0].started_at);
    }
    assert_int_equal(d->exec.finished_at, d->tasks[0].started_at);
    exec_detail_free(d);
}

static void test_run_if_and_upstream_failed(void **state)
{
    struct fixture *f = *state;
    struct exec_detail *d = run_def(
        f, "{\"name\":\"w\",\"tasks\":["
           "{\"name\":\"ok\",\"command\":[\"true\"]},"
           "{\"name\":\"bad\",\"command\":\"echo boom >&2; exit 3\"},"
           "{\"name\":\"after-bad\",\"dependsOn\":[\"bad\"],\"command\":[\"true\"]},"
           "{\"name\":\"after-after\",\"dependsOn\":[\"after-bad\"],\"type\":\"noop\"},"
           "{\"name\":\"alert\",\"dependsOn\":[\"ok\",\"bad\"],\"runIf\":\"anyFailed\",\"type\":\"noop\"},"
           "{\"name\":\"no-alert\",\"dependsOn\":[\"ok\"],\"runIf\":\"anyFailed\",\"type\":\"noop\"},"
           "{\"name\":\"cleanup\",\"dependsOn\":[\"after-after\"],\"runIf\":\"allDone\",\"command\":[\"true\"]}"
           "]}");
    assert_int_equal(d->exec.status, EXEC_FAILED);
    assert_int_equal(task(d, "ok")->status, TASK_SUCCEEDED);
    assert_int_equal(task(d, "bad")->status, TASK_FAILED);
    assert_non_null(strstr(task(d, "bad")->error, "exit status 3: boom"));
    assert_int_equal(task(d, "after-bad")->status, TASK_UPSTREAM_FAILED);
    assert_int_equal(task(d, "after-after")->status, TASK_UPSTREAM_FAILED);
    assert_int_equal(task(d, "alert")->status, TASK_SUCCEEDED);
    assert_int_equal(task(d, "no-alert")->status, TASK_SKIPPED);
    assert_int_equal(task(d, "cleanup")->status, TASK_SUCCEEDED);
    exec_detail_free(d);
}

static void test_retries_and_attempts(void **state)
{
    struct fixture *f = *state;
    struct exec_detail *d = run_def(
        f, "{\"name\":\"r\",\"tasks\":[{\"name\":\"flaky\",\"retries\":2,"
           "\"retryBackoff\":{\"initial\":\"10ms\",\"jitter\":false},"
           "\"command\":\"test $ORCH_ATTEMPT -ge 3\"}]}");
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    assert_int_equal(d->nattempts, 3);
    assert_int_equal(d->attempts[0].status, ATTEMPT_FAILED);
    assert_int_equal(d->attempts[0].exit_code, 1);
    assert_int_equal(d->attempts[1].status, ATTEMPT_FAILED);
    assert_int_equal(d->attempts[2].status, ATTEMPT_SUCCEEDED);
    assert_int_equal(d->attempts[2].exit_code, 0);
    assert_true(d->attempts[1].started_at - d->attempts[0].finished_at >= 10);
    assert_true(d->attempts[2].started_at - d->attempts[1].finished_at >= 20);
    assert_true(d->attempts[0].pid > 0);
    exec_detail_free(d);
}

/* Attempt `number` of task run `idx` in `d`, or a failure. */
static const struct attempt_row *attempt_of(const struct exec_detail *d, int idx, int number)
{
    for (size_t i = 0; i < d->nattempts; i++)
        if (d->attempts[i].task_idx == idx && d->attempts[i].number == number)
            return &d->attempts[i];
    fail_msg("no attempt %d of task %d", number, idx);
    return NULL;
}

/*
 * When each attempt became queued (ready to run) as opposed to when it
 * started: with 2 worker slots, the third root command is queued from the
 * start with the others but starts only once a slot is free; a dependent is
 * queued when its dependency ends; a retry is queued at the end of its
 * back-off (the manual clock makes these exact).
 */
static void test_queued_at(void **state)
{
    struct fixture *f = *state;
    const struct attempt_row *a, *b, *c, *after, *r1, *r2, *r3;
    struct exec_detail *d = run_def(
        f, "{\"name\":\"q\",\"tasks\":["
           "{\"name\":\"a\",\"command\":[\"sleep\",\"0.05\"]},"
           "{\"name\":\"b\",\"command\":[\"sleep\",\"0.05\"]},"
           "{\"name\":\"c\",\"command\":[\"true\"]},"
           "{\"name\":\"after\",\"dependsOn\":[\"a\"],\"type\":\"noop\"}]}");
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    a = attempt_of(d, 0, 1);
    b = attempt_of(d, 1, 1);
    c = attempt_of(d, 2, 1);
    after = attempt_of(d, 3, 1);
    assert_true(a->queued_at > 0);
    assert_true(a->queued_at <= a->started_at);
    assert_int_equal(b->queued_at, a->queued_at);
    /* c waited for a slot: queued with the others, started after one ended. */
    assert_int_equal(c->queued_at, a->queued_at);
    assert_true(c->started_at > c->queued_at);
    assert_true(c->started_at >= (a->finished_at < b->finished_at ? a->finished_at
                                                                    : b->finished_at));
    assert_int_equal(task(d, "c")->queued_at, c->queued_at);
    /* after is ready when a ends. */
    assert_int_equal(after->queued_at, a->finished_at);
    assert_true(after->started_at >= after->queued_at);
    assert_int_equal(task(d, "after")->queued_at, after->queued_at);
    exec_detail_free(d);

    d = run_def(f, "{\"name\":\"r\",\"tasks\":[{\"name\":\"flaky\",\"retries\":2,"
                   "\"retryBackoff\":{\"initial\":\"10ms\",\"jitter\":false},"
                   "\"command\":\"test $ORCH_ATTEMPT -ge 3\"}]}");
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    r1 = attempt_of(d, 0, 1);
    r2 = attempt_of(d, 0, 2);
    r3 = attempt_of(d, 0, 3);
    assert_true(r1->queued_at > 0 && r1->queued_at <= r1->started_at);
    /* Back-offs of 10 and 20 ms: each retry is queued when its back-off ends. */
    assert_int_equal(r2->queued_at, r1->finished_at + 10);
    assert_int_equal(r3->queued_at, r2->finished_at + 20);
    assert_true(r2->started_at >= r2->queued_at);
    assert_true(r3->started_at >= r3->queued_at);
    assert_int_equal(task(d, "flaky")->queued_at, r3->queued_at);
    exec_detail_free(d);
}

static void test_task_timeout(void **state)
{
    struct fixture *f = *state;
    struct exec_detail *d = run_def(
        f, "{\"name\":\"t\",\"tasks\":[{\"name\":\"slow\",\"timeout\":\"100ms\","
           "\"command\":[\"sleep\",\"10\"]}]}");
    assert_int_equal(d->exec.status, EXEC_FAILED);
    assert_int_equal(task(d, "slow")->status, TASK_TIMED_OUT);
    assert_int_equal(d->attempts[0].status, ATTEMPT_TIMED_OUT);
    assert_non_null(strstr(d->attempts[0].error, "timed out after 100ms"));
    /* The process is gone (reaped). */
    assert_int_not_equal(kill(d->attempts[0].pid, 0), 0);
    exec_detail_free(d);
}

static void test_exec_timeout(void **state)
{
    struct fixture *f = *state;
    struct exec_detail *d = run_def(
        f, "{\"name\":\"et\",\"timeout\":\"150ms\",\"tasks\":["
           "{\"name\":\"slow\",\"command\":[\"sleep\",\"10\"]},"
           "{\"name\":\"next\",\"dependsOn\":[\"slow\"],\"type\":\"noop\"}]}");
    assert_int_equal(d->exec.status, EXEC_TIMED_OUT);
    assert_int_equal(task(d, "slow")->status, TASK_TIMED_OUT);
    assert_int_equal(task(d, "next")->status, TASK_CANCELLED);
    exec_detail_free(d);
}

static void test_sleep_and_concurrency(void **state)
{
    struct fixture *f = *state;
    int64_t t0 = clock_mono_ms();
    struct exec_detail *d = run_def(
        f, "{\"name\":\"s\",\"concurrency\":1,\"tasks\":["
           "{\"name\":\"a\",\"type\":\"sleep\",\"duration\":\"100ms\"},"
           "{\"name\":\"b\",\"type\":\"sleep\",\"duration\":\"100ms\"}]}");
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    /* Serialized by the workflow's concurrency: at least 200 ms. */
    assert_true(clock_mono_ms() - t0 >= 200);
    exec_detail_free(d);
}

static void test_bad_params(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    char id[ID_MAX];
    const char *def = "{\"name\":\"p\",\"params\":{\"n\":{\"type\":\"number\",\"required\":true}},"
                      "\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}";

    assert_int_equal(engine_submit(f->eng, def, "{}", id, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "missing required param 'n'"));
    assert_int_equal(engine_submit(f->eng, def, "{\"n\":\"x\"}", id, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "must be a number"));
    assert_int_equal(engine_submit(f->eng, def, "{\"zz\":1}", id, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "unknown param 'zz'"));
    assert_int_equal(engine_submit(f->eng, def, "[1]", id, &err), ERR_INVALID);
    assert_int_equal(engine_submit(f->eng, "{", NULL, id, &err), ERR_INVALID);
    assert_int_equal(engine_active(f->eng), 0);
}

static void test_cancel_all(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    char id[ID_MAX];

    assert_int_equal(engine_submit(f->eng,
                                   "{\"name\":\"c\",\"tasks\":[{\"name\":\"s\",\"command\":[\"sleep\",\"10\"]},"
                                   "{\"name\":\"n\",\"dependsOn\":[\"s\"],\"type\":\"noop\"}]}",
                                   NULL, id, &err),
                     0);
    engine_request_cancel_all(f->eng);
    assert_int_equal(engine_run(f->eng, &err), 0);
    assert_int_equal(store_execution_get(f->st, id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_CANCELLED);
    assert_int_equal(task(d, "s")->status, TASK_CANCELLED);
    assert_int_equal(task(d, "n")->status, TASK_CANCELLED);
    exec_detail_free(d);
}

/* ------------------------------------------------------------------ server mode */

static void *loop_thread(void *arg)
{
    struct fixture *f = arg;
    struct err err = ERR_INIT;
    (void)engine_run(f->eng, &err);
    return NULL;
}

/* Poll the store until execution `id` is final (or 10 s). */
static struct exec_detail *wait_final(struct fixture *f, const char *id)
{
    struct err err = ERR_INIT;
    struct store *rd = NULL;
    struct exec_detail *d = NULL;

    assert_int_equal(store_open(f->dir, STORE_READONLY, &rd, &err), 0);
    for (int i = 0; i < 1000; i++) {
        d = NULL;
        if (store_execution_get(rd, id, &d, &err) == 0 && exec_status_is_final(d->exec.status))
            break;
        exec_detail_free(d);
        d = NULL;
        usleep(10000);
    }
    store_free(rd);
    assert_non_null(d);
    return d;
}

static void put_workflow(struct fixture *f, const char *def)
{
    struct err err = ERR_INIT;
    struct store *w = NULL;
    int version = 0;
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;

    assert_int_equal(dag_parse(def, strlen(def), &wf, &probs), 0);
    assert_int_equal(store_open(f->dir, 0, &w, &err), 0);
    assert_int_equal(store_workflow_put(w, wf->name, def, clock_now_ms(), &version, &err), 0);
    store_free(w);
    workflow_free(wf);
}

static void test_server_commands(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    char id1[ID_MAX], id2[ID_MAX], id3[ID_MAX], marker[128];
    int existing = -1;
    pthread_t th;
    struct exec_detail *d;
    char def[512];

    snprintf(marker, sizeof(marker), "%s/fail-marker", f->dir);
    assert_int_equal(system("true"), 0);
    {
        FILE *fp = fopen(marker, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    put_workflow(f, "{\"name\":\"ok\",\"params\":{\"n\":{\"type\":\"number\",\"default\":1}},"
                    "\"tasks\":[{\"name\":\"a\",\"command\":[\"true\"]}]}");
    snprintf(def, sizeof(def),
             "{\"name\":\"flaky\",\"tasks\":[{\"name\":\"first\",\"command\":[\"true\"]},"
             "{\"name\":\"second\",\"dependsOn\":[\"first\"],\"command\":[\"sh\",\"-c\","
             "\"test ! -e %s\"]},{\"name\":\"third\",\"dependsOn\":[\"second\"],\"type\":\"noop\"}]}",
             marker);
    put_workflow(f, def);

    engine_set_persistent(f->eng, 1);
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);

    /* Idempotent submission. */
    assert_int_equal(engine_post_submit(f->eng, "ok", "{\"n\":2}", "key-1", id1, &existing, &err), 0);
    assert_int_equal(existing, 0);
    assert_int_equal(engine_post_submit(f->eng, "ok", "{\"n\":2}", "key-1", id2, &existing, &err), 0);
    assert_int_equal(existing, 1);
    assert_string_equal(id1, id2);
    assert_int_equal(engine_post_submit(f->eng, "nope", NULL, NULL, id3, NULL, &err), ERR_NOT_FOUND);
    assert_int_equal(engine_post_submit(f->eng, "ok", "{\"n\":\"x\"}", NULL, id3, NULL, &err),
                     ERR_INVALID);
    d = wait_final(f, id1);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    exec_detail_free(d);
    assert_int_equal(engine_post_submit(f->eng, "ok", "{\"n\":2}", "key-1", id2, &existing, &err),
                     0);
    assert_int_equal(existing, 1);
    assert_string_equal(id1, id2);
    /* The same key with other params (n defaults to 1) is refused. */
    assert_int_equal(engine_post_submit(f->eng, "ok", NULL, "key-1", id2, &existing, &err),
                     ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "other params"));
    assert_int_equal(engine_post_retry(f->eng, id1, &err), ERR_CONFLICT);
    assert_int_equal(engine_post_cancel(f->eng, id1, NULL, &err), ERR_CONFLICT);
    assert_int_equal(engine_post_cancel(f->eng, "ex_nope", NULL, &err), ERR_NOT_FOUND);

    /* Retry re-runs only what did not succeed. */
    assert_int_equal(engine_post_submit(f->eng, "flaky", NULL, NULL, id3, NULL, &err), 0);
    d = wait_final(f, id3);
    assert_int_equal(d->exec.status, EXEC_FAILED);
    assert_int_equal(task(d, "second")->status, TASK_FAILED);
    assert_int_equal(task(d, "third")->status, TASK_UPSTREAM_FAILED);
    exec_detail_free(d);
    assert_int_equal(unlink(marker), 0);
    for (int i = 0; i < 100; i++) {
        int rc = engine_post_retry(f->eng, id3, &err);
        if (rc != ERR_BUSY) {
            if (rc)
                fail_msg("retry: %s", err.msg);
            break;
        }
        if (i == 99)
            fail_msg("retry still busy: %s", err.msg);
        usleep(10000);
    }
    d = wait_final(f, id3);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    assert_int_equal(task(d, "first")->attempt, 1); /* kept, not re-run */
    assert_int_equal(task(d, "second")->attempt, 2);
    assert_int_equal(task(d, "third")->status, TASK_SUCCEEDED);
    exec_detail_free(d);

    engine_request_stop(f->eng, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    /* Refused once stopped. */
    assert_int_equal(engine_post_submit(f->eng, "ok", NULL, NULL, id2, NULL, &err), ERR_BUSY);
}

/* engine_submit_async: the done callbacks of a batch of submissions. */
struct async_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

static void async_done(void *arg)
{
    struct async_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Wait until `n` callbacks came (or 10 s: a failure). */
static void async_wait_for(struct async_wait *w, int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 10;
    pthread_mutex_lock(&w->mu);
    while (w->done < n)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
            break;
    pthread_mutex_unlock(&w->mu);
    assert_int_equal(w->done, n);
}

static int claims_made;

static int claim_refused(void *arg, const char *exec_id)
{
    (void)arg;
    (void)exec_id;
    claims_made++;
    return ERR_IO;
}

/*
 * Submissions that do not wait: each is answered once the commit that holds
 * it is done (the execution is in the store then), errors as the waiting
 * call gives them; once stopped, the callback comes before the call returns.
 * A new execution is claimed at its commit, and only if still running: one
 * that cannot be claimed is recorded failed.
 */
static void test_async_submissions(void **state)
{
    struct fixture *f = *state;
    struct async_wait w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct engine_submission *subs[12];
    struct engine_config cfg;
    struct err err = ERR_INIT;
    struct exec_detail *d;
    char ids[10][ID_MAX], id[ID_MAX];
    int existing = -1;
    pthread_t th;

    put_workflow(f, "{\"name\":\"nothing\",\"params\":{\"n\":{\"type\":\"number\",\"default\":1}},"
                    "\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    put_workflow(f, "{\"name\":\"long\",\"tasks\":[{\"name\":\"s\",\"command\":\"sleep 5\"}]}");
    engine_set_persistent(f->eng, 1);
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);
    for (int i = 0; i < 10; i++)
        subs[i] = engine_submit_async(f->eng, "nothing", "{\"n\":2}", NULL, async_done, &w);
    subs[10] = engine_submit_async(f->eng, "nope", NULL, NULL, async_done, &w);
    subs[11] = engine_submit_async(f->eng, "nothing", "{\"n\":\"x\"}", NULL, async_done, &w);
    async_wait_for(&w, 12);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(engine_submission_result(subs[i], ids[i], &existing, &err), 0);
        assert_int_equal(existing, 0);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
        /* Committed before the answer. */
        assert_int_equal(store_execution_get(f->st, ids[i], &d, &err), 0);
        assert_string_equal(d->exec.params, "{\"n\":2}");
        exec_detail_free(d);
    }
    assert_int_equal(engine_submission_result(subs[10], id, NULL, &err), ERR_NOT_FOUND);
    assert_int_equal(engine_submission_result(subs[11], id, NULL, &err), ERR_INVALID);
    for (int i = 0; i < 12; i++)
        engine_submission_free(subs[i]);
    engine_request_stop(f->eng, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    subs[0] = engine_submit_async(f->eng, "nothing", NULL, NULL, async_done, &w);
    assert_int_equal(w.done, 13); /* called before the return */
    assert_int_equal(engine_submission_result(subs[0], id, NULL, &err), ERR_BUSY);
    engine_submission_free(subs[0]);
    engine_submission_free(NULL);

    /* Claims: none for an execution that ends in its first turn; a refused
     * one fails the execution, with why. */
    engine_free(f->eng);
    engine_config_init(&cfg);
    cfg.workers = 2;
    cfg.kill_grace_ms = 200;
    cfg.claim = claim_refused;
    assert_int_equal(engine_new(f->st, &cfg, &f->eng, &err), 0);
    engine_set_persistent(f->eng, 1);
    claims_made = 0;
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);
    assert_int_equal(engine_post_submit(f->eng, "nothing", NULL, NULL, id, NULL, &err), 0);
    assert_int_equal(claims_made, 0);
    assert_int_equal(engine_post_submit(f->eng, "long", NULL, NULL, id, NULL, &err), 0);
    assert_int_equal(claims_made, 1);
    d = wait_final(f, id);
    assert_int_equal(d->exec.status, EXEC_FAILED);
    assert_non_null(strstr(d->exec.error, "cannot claim execution"));
    exec_detail_free(d);
    engine_request_stop(f->eng, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
}

static void test_stop_interrupts_and_resumes(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct engine_config cfg;
    char id[ID_MAX];
    pthread_t th;
    struct exec_detail *d;

    put_workflow(f, "{\"name\":\"long\",\"tasks\":[{\"name\":\"s\",\"command\":\"sleep 1\"},"
                    "{\"name\":\"after\",\"dependsOn\":[\"s\"],\"type\":\"noop\"}]}");
    engine_set_persistent(f->eng, 1);
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);
    assert_int_equal(engine_post_submit(f->eng, "long", NULL, NULL, id, NULL, &err), 0);
    usleep(200000);
    engine_request_stop(f->eng, 100);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(store_execution_get(f->st, id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_RUNNING);
    assert_int_equal(task(d, "s")->status, TASK_QUEUED);
    assert_int_equal(d->attempts[0].status, ATTEMPT_CANCELLED);
    assert_non_null(strstr(d->attempts[0].error, "interrupted"));
    assert_int_not_equal(kill(d->attempts[0].pid, 0), 0);
    exec_detail_free(d);

    /* A new engine picks it up and finishes it. */
    engine_free(f->eng);
    engine_config_init(&cfg);
    cfg.workers = 2;
    assert_int_equal(engine_new(f->st, &cfg, &f->eng, &err), 0);
    assert_int_equal(engine_resume(f->eng, id, &err), 0);
    assert_int_equal(engine_run(f->eng, &err), 0);
    assert_int_equal(store_execution_get(f->st, id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    assert_int_equal(task(d, "s")->attempt, 2);
    assert_int_equal(task(d, "after")->status, TASK_SUCCEEDED);
    exec_detail_free(d);
}

static void test_stuck_policies(void **state)
{
    struct fixture *f = *state;
    struct exec_detail *d;

    /* maxRunning with stuckPolicy fail: the execution fails, its task is cancelled. */
    d = run_def(f, "{\"name\":\"mr\",\"maxRunning\":\"150ms\",\"stuckPolicy\":\"fail\","
                   "\"tasks\":[{\"name\":\"s\",\"command\":[\"sleep\",\"5\"]}]}");
    assert_int_equal(d->exec.status, EXEC_FAILED);
    assert_non_null(strstr(d->exec.error, "stuck: running for more than 150ms"));
    assert_int_equal(task(d, "s")->status, TASK_CANCELLED);
    exec_detail_free(d);

    /* maxQueued with stuckPolicy fail: a task waiting for the only slot fails. */
    {
        struct engine_config cfg;
        struct err err = ERR_INIT;
        engine_free(f->eng);
        engine_config_init(&cfg);
        cfg.workers = 1;
        cfg.kill_grace_ms = 200;
        assert_int_equal(engine_new(f->st, &cfg, &f->eng, &err), 0);
    }
    d = run_def(f, "{\"name\":\"mq\",\"maxQueued\":\"100ms\",\"stuckPolicy\":\"fail\","
                   "\"tasks\":[{\"name\":\"hog\",\"command\":[\"sleep\",\"0.5\"]},"
                   "{\"name\":\"waits\",\"command\":[\"true\"]}]}");
    assert_int_equal(d->exec.status, EXEC_FAILED);
    assert_int_equal(task(d, "hog")->status, TASK_SUCCEEDED);
    assert_int_equal(task(d, "waits")->status, TASK_FAILED);
    assert_non_null(strstr(task(d, "waits")->error, "stuck: queued for more than 100ms"));
    exec_detail_free(d);

    /* stuckPolicy warn (the default) only logs: a WARN line, and the run goes on. */
    {
        char logpath[300], *text;
        FILE *lf;
        long len;
        int fd;
        snprintf(logpath, sizeof(logpath), "%s/stuck.log", f->dir);
        fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        log_set_fd(fd);
        log_set_level(LOG_WARN);
        d = run_def(f, "{\"name\":\"mw\",\"maxRunning\":\"50ms\","
                       "\"tasks\":[{\"name\":\"s\",\"type\":\"sleep\",\"duration\":\"150ms\"}]}");
        assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
        exec_detail_free(d);
        d = run_def(f, "{\"name\":\"qw\",\"maxQueued\":\"50ms\","
                       "\"tasks\":[{\"name\":\"hog\",\"command\":[\"sleep\",\"0.3\"]},"
                       "{\"name\":\"waits\",\"command\":[\"true\"]}]}");
        assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
        assert_int_equal(task(d, "waits")->status, TASK_SUCCEEDED);
        exec_detail_free(d);
        log_set_level(LOG_ERROR);
        log_set_fd(2);
        close(fd);
        lf = fopen(logpath, "r");
        assert_non_null(lf);
        fseek(lf, 0, SEEK_END);
        len = ftell(lf);
        rewind(lf);
        text = xcalloc((size_t)len + 1, 1);
        assert_int_equal(fread(text, 1, (size_t)len, lf), (size_t)len);
        fclose(lf);
        assert_non_null(strstr(text, "WARN"));
        assert_non_null(strstr(text, "of 'mw' has been running for more than 50ms (maxRunning, "
                                     "stuckPolicy=warn)"));
        assert_non_null(strstr(text, "Task 'waits' of execution "));
        assert_non_null(strstr(text, "has been queued for more than 50ms (maxQueued, "
                                     "stuckPolicy=warn)"));
        free(text);
    }
}

static void test_retention_purge(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct engine_config cfg;
    char id[ID_MAX], keep[ID_MAX];
    pthread_t th;
    struct exec_detail *d = NULL;
    int gone = 0;

    engine_free(f->eng);
    engine_config_init(&cfg);
    cfg.workers = 1;
    cfg.retention_ms = 1;        /* everything finished is old */
    cfg.purge_interval_ms = 50;
    assert_int_equal(engine_new(f->st, &cfg, &f->eng, &err), 0);
    put_workflow(f, "{\"name\":\"short\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    /* A workflow's own retention wins over the server's. */
    put_workflow(f, "{\"name\":\"kept\",\"retention\":\"1h\","
                    "\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    engine_set_persistent(f->eng, 1);
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);
    assert_int_equal(engine_post_submit(f->eng, "short", NULL, NULL, id, NULL, &err), 0);
    assert_int_equal(engine_post_submit(f->eng, "kept", NULL, NULL, keep, NULL, &err), 0);
    for (int i = 0; i < 300 && !gone; i++) {
        struct store *rd = NULL;
        usleep(20000);
        assert_int_equal(store_open(f->dir, STORE_READONLY, &rd, &err), 0);
        gone = store_execution_get(rd, id, &d, &err) == ERR_NOT_FOUND;
        exec_detail_free(d);
        d = NULL;
        store_free(rd);
    }
    engine_request_stop(f->eng, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(gone);
    assert_int_equal(store_execution_get(f->st, keep, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    exec_detail_free(d);
}

/* Is execution `id` still in the store? */
static int exec_kept(struct fixture *f, const char *id)
{
    struct err err = ERR_INIT;
    struct exec_detail *d = NULL;
    int rc = store_execution_get(f->st, id, &d, &err);
    exec_detail_free(d);
    assert_true(rc == 0 || rc == ERR_NOT_FOUND);
    return rc == 0;
}

static void run_stored(struct fixture *f, const char *def, char *id)
{
    struct err err = ERR_INIT;
    put_workflow(f, def);
    assert_int_equal(engine_submit(f->eng, def, NULL, id, &err), 0);
    assert_int_equal(engine_run(f->eng, &err), 0);
    assert_int_equal(engine_active(f->eng), 0);
}

/*
 * The server-wide retention (ORCH_RETENTION) purges the executions of the
 * workflows without one of their own, however many workflows have one (the
 * store leaves out at most 64 names at once), and 0 keeps them forever.
 */
static void test_retention_server_wide(void **state)
{
    struct fixture *f = *state;
    char plain[ID_MAX], longer[ID_MAX], shorter[ID_MAX], def[256];

    /* 70 workflows keep their executions longer than the server does. */
    for (int i = 0; i < 70; i++) {
        snprintf(def, sizeof(def), "{\"name\":\"own%02d\",\"retention\":\"%dh\","
                 "\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}", i, 1 + i);
        put_workflow(f, def);
    }
    run_stored(f, "{\"name\":\"plain\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}",
               plain);
    run_stored(f, "{\"name\":\"own00\",\"retention\":\"1h\","
                  "\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}", longer);
    run_stored(f, "{\"name\":\"own69\",\"retention\":\"70h\","
                  "\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}", shorter);
    clock_advance(20);

    /* 0 keeps everything. */
    f->eng->cfg.retention_ms = 0;
    engine__purge_old(f->eng);
    assert_true(exec_kept(f, plain));
    assert_true(exec_kept(f, longer));
    assert_true(exec_kept(f, shorter));

    /* 10ms: the plain workflow's execution goes, those kept longer stay. */
    f->eng->cfg.retention_ms = 10;
    engine__purge_old(f->eng);
    assert_false(exec_kept(f, plain));
    assert_true(exec_kept(f, longer));
    assert_true(exec_kept(f, shorter));

    /* The server keeps executions longer than 30 of them do: still none of
     * theirs goes before their own retention. */
    f->eng->cfg.retention_ms = 40LL * 3600 * 1000;
    engine__purge_old(f->eng);
    assert_true(exec_kept(f, longer));
    assert_true(exec_kept(f, shorter));
}

static void test_scheduler_fires_once_per_due_time(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    pthread_t th;
    struct exec_list list = {NULL, 0};
    struct exec_filter flt;
    struct schedule_row *rows = NULL;
    size_t nrows = 0;
    struct engine_stats stats;
    int64_t until;

    put_workflow(f, "{\"name\":\"tick\",\"schedules\":[{\"every\":\"1s\",\"overlap\":\"allow\"}],"
                    "\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    engine_set_persistent(f->eng, 1);
    engine_enable_scheduler(f->eng);
    until = clock_run_for(3300);
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);
    clock_wait_for(until);
    engine_get_stats(f->eng, &stats);
    engine_request_stop(f->eng, 0);
    assert_int_equal(pthread_join(th, NULL), 0);

    assert_int_equal(stats.sched_running, 1);
    assert_int_equal(stats.sched_active, 1);
    assert_true(stats.sched_fires >= 2);
    assert_true(stats.sched_last_lag_ms >= 0 && stats.sched_last_lag_ms < 1000);
    memset(&flt, 0, sizeof(flt));
    flt.workflow = "tick";
    flt.limit = 100;
    assert_int_equal(store_executions_list(f->st, &flt, &list, &err), 0);
    assert_true(list.n >= 2 && list.n <= 4);
    for (size_t i = 0; i < list.n; i++) {
        assert_non_null(list.items[i].schedule_id);
        assert_true(list.items[i].scheduled_for > 0);
        assert_int_equal(list.items[i].scheduled_for % 1000, 0);
        /* Newest first, one execution per due time. */
        if (i)
            assert_true(list.items[i].scheduled_for < list.items[i - 1].scheduled_for);
    }
    assert_int_equal(store_schedules_list(f->st, &rows, &nrows, &err), 0);
    assert_int_equal(nrows, 1);
    assert_string_equal(rows[0].name, "schedule-0");
    assert_true(rows[0].next_fire_at > rows[0].last_fire_at);
    /* A fire of an already recorded due time is refused by the store. */
    {
        struct fire_row fr;
        memset(&fr, 0, sizeof(fr));
        fr.schedule_id = rows[0].id;
        fr.scheduled_for = list.items[0].scheduled_for;
        fr.status = FIRE_FIRED;
        fr.created_at = clock_now_ms();
        assert_int_equal(store_begin(f->st, &err), 0);
        assert_int_equal(store_fire_insert(f->st, &fr, &err), ERR_CONFLICT);
        store_rollback(f->st);
    }
    schedule_rows_free(rows, nrows);
    exec_list_release(&list);
}

static void test_api_schedule_with_templated_params(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    pthread_t th;
    struct exec_list list = {NULL, 0};
    struct exec_filter flt;
    struct schedule_row row;
    int64_t until;

    put_workflow(f, "{\"name\":\"daily\",\"params\":{\"day\":\"none\"},"
                    "\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    memset(&row, 0, sizeof(row));
    memcpy(row.id, "sch_api0000000000001", 21);
    row.workflow = (char *)"daily";
    row.name = (char *)"from-api";
    row.spec_hash = (char *)"";
    row.created_at = row.updated_at = clock_now_ms();
    row.from_api = 1;
    row.spec = (char *)"{\"every\":\"1s\",\"params\":{\"day\":\"d={{ scheduledFor }}\"}}";
    assert_int_equal(store_schedule_upsert(f->st, &row, &err), 0);
    engine_set_persistent(f->eng, 1);
    engine_enable_scheduler(f->eng);
    until = clock_run_for(2300);
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);
    clock_wait_for(until);
    engine_request_stop(f->eng, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    memset(&flt, 0, sizeof(flt));
    flt.workflow = "daily";
    flt.limit = 10;
    assert_int_equal(store_executions_list(f->st, &flt, &list, &err), 0);
    assert_true(list.n >= 1);
    assert_string_equal(list.items[0].schedule_id, "sch_api0000000000001");
    /* "d=2026-11-29T05:00:01+00:00": the due time in the schedule's zone (UTC). */
    assert_non_null(strstr(list.items[0].params, "\"day\":\"d=20"));
    assert_non_null(strstr(list.items[0].params, "+00:00\""));
    exec_list_release(&list);
}

/* Run a workflow with an every-1s schedule whose task sleeps 2.2 s for `ms`
 * of the engine's time, then return its executions (newest first). */
static void run_overlap(struct fixture *f, const char *policy, int ms, struct exec_list *out)
{
    struct err err = ERR_INIT;
    pthread_t th;
    struct exec_filter flt;
    char def[512];
    int64_t until;

    snprintf(def, sizeof(def),
             "{\"name\":\"overlap\",\"schedules\":[{\"every\":\"1s\",\"overlap\":\"%s\"}],"
             "\"tasks\":[{\"name\":\"s\",\"type\":\"sleep\",\"duration\":\"2.2s\"}]}",
             policy);
    put_workflow(f, def);
    engine_set_persistent(f->eng, 1);
    engine_enable_scheduler(f->eng);
    until = clock_run_for(ms);
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);
    clock_wait_for(until);
    engine_request_stop(f->eng, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    memset(&flt, 0, sizeof(flt));
    flt.limit = 100;
    assert_int_equal(store_executions_list(f->st, &flt, out, &err), 0);
}

static size_t count_status(const struct exec_list *l, enum exec_status st)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += l->items[i].status == st;
    return n;
}

static void test_overlap_policies(void **state)
{
    struct fixture *f = *state;
    struct exec_list l = {NULL, 0};
    struct schedule_row *rows = NULL;
    size_t nrows = 0;
    struct fire_row *fires = NULL;
    size_t nfires = 0;
    struct err err = ERR_INIT;

    /* skip: one run at a time, the due times in between recorded as skipped. */
    run_overlap(f, "skip", 4600, &l);
    assert_true(l.n >= 1 && l.n <= 2);
    assert_int_equal(store_schedules_list(f->st, &rows, &nrows, &err), 0);
    assert_int_equal(store_fires_list(f->st, rows[0].id, 100, &fires, &nfires, &err), 0);
    {
        size_t skipped = 0;
        for (size_t i = 0; i < nfires; i++)
            if (fires[i].status == FIRE_SKIPPED) {
                skipped++;
                assert_non_null(strstr(fires[i].reason, "still running (overlap=skip)"));
            }
        assert_true(skipped >= 2);
    }
    fire_rows_free(fires, nfires);
    schedule_rows_free(rows, nrows);
    exec_list_release(&l);
}

static void test_overlap_allow_and_cancel(void **state)
{
    struct fixture *f = *state;
    struct exec_list l = {NULL, 0};

    /* allow: a run per second, side by side. */
    run_overlap(f, "allow", 3500, &l);
    assert_true(l.n >= 3);
    exec_list_release(&l);
}

static void test_overlap_cancel_previous(void **state)
{
    struct fixture *f = *state;
    struct exec_list l = {NULL, 0};

    /* cancelPrevious: each fire cancels the run before it. */
    run_overlap(f, "cancelPrevious", 3500, &l);
    assert_true(l.n >= 3);
    assert_true(count_status(&l, EXEC_CANCELLED) >= 2);
    for (size_t i = 0; i < l.n; i++)
        if (l.items[i].status == EXEC_CANCELLED)
            assert_non_null(strstr(l.items[i].error, "overlap=cancelPrevious"));
    exec_list_release(&l);
}

static void test_overlap_buffer_one(void **state)
{
    struct fixture *f = *state;
    struct exec_list l = {NULL, 0};

    /* bufferOne: while a run lasts, one later due time waits and starts right after it;
     * the others are dropped. In 5.6 s: the first run, then the buffered one. */
    run_overlap(f, "bufferOne", 5600, &l);
    assert_true(l.n >= 2 && l.n <= 3);
    /* The buffered run started when the first ended, not at its due time. */
    {
        const struct exec_row *first = &l.items[l.n - 1], *second = &l.items[l.n - 2];
        assert_true(second->created_at >= first->finished_at);
        assert_true(second->scheduled_for < second->created_at - 500);
    }
    exec_list_release(&l);
}

static void test_overlap_buffer_all(void **state)
{
    struct fixture *f = *state;
    struct exec_list l = {NULL, 0};

    /* bufferAll: every due time runs, one after the other, in order. */
    run_overlap(f, "bufferAll", 5600, &l);
    assert_true(l.n >= 2);
    for (size_t i = l.n - 1; i > 0; i--) {
        const struct exec_row *older = &l.items[i], *newer = &l.items[i - 1];
        assert_true(newer->scheduled_for > older->scheduled_for);
        if (older->finished_at)
            assert_true(newer->created_at >= older->finished_at);
    }
    exec_list_release(&l);
}

/*
 * The recovery kills the process group of a lost attempt only if the pid still
 * names the process it started (same start time): a pid reused by an unrelated
 * process must survive.
 */
static void test_orphan_kill_checks_start_time(void **state)
{
    char *argv[] = {(char *)"sleep", (char *)"30", NULL};
    char *envp[] = {(char *)"PATH=/usr/bin:/bin", NULL};
    struct child c = CHILD_INIT;
    struct err err = ERR_INIT;
    (void)state;

    c.argv = argv;
    c.envp = envp;
    assert_int_equal(child_start(&c, &err), 0);
    assert_true(c.proc_start > 0);
    /* A recorded attempt whose pid is now this unrelated, live process. */
    assert_int_equal(child_kill_orphan_group(c.pid, c.proc_start + 1), 0);
    assert_int_equal(child_kill_orphan_group(c.pid, c.proc_start - 1), 0);
    usleep(50 * 1000);
    assert_int_equal(child_reap(&c), 0);
    assert_int_equal(kill(c.pid, 0), 0);
    /* The attempt's own process (same start time) is killed. */
    assert_int_equal(child_kill_orphan_group(c.pid, c.proc_start), 1);
    for (int i = 0; i < 2000 && child_reap(&c) == 0; i++)
        usleep(1000);
    assert_int_equal(c.exited, 1);
    assert_int_equal(c.signal, SIGKILL);
    child_release(&c);
}

/* ------------------------------------------------------------------ the state machine */

/* The table of legal moves (transition.c), as docs/internals/engine.md shows it. */
static void test_transition_table(void **state)
{
    (void)state;
    assert_true(engine__run_move_ok(TASK_PENDING, TASK_QUEUED));
    assert_true(engine__run_move_ok(TASK_PENDING, TASK_UPSTREAM_FAILED));
    assert_true(engine__run_move_ok(TASK_QUEUED, TASK_RUNNING));
    assert_true(engine__run_move_ok(TASK_RUNNING, TASK_QUEUED)); /* a retry */
    assert_true(engine__run_move_ok(TASK_RUNNING, TASK_SUCCEEDED));
    assert_false(engine__run_move_ok(TASK_PENDING, TASK_RUNNING));
    assert_false(engine__run_move_ok(TASK_RUNNING, TASK_PENDING));
    assert_false(engine__run_move_ok(TASK_RUNNING, TASK_RUNNING));
    for (int to = 0; to < TASK_STATUS_COUNT; to++) {
        assert_false(engine__run_move_ok(TASK_SUCCEEDED, (enum task_status)to));
        assert_false(engine__run_move_ok(TASK_CANCELLED, (enum task_status)to));
    }
    assert_false(engine__run_move_ok(TASK_STATUS_COUNT, TASK_QUEUED));
    assert_true(engine__exec_move_ok(EXEC_QUEUED, EXEC_RUNNING));
    assert_true(engine__exec_move_ok(EXEC_RUNNING, EXEC_TIMED_OUT));
    assert_false(engine__exec_move_ok(EXEC_SUCCEEDED, EXEC_RUNNING));
    assert_false(engine__exec_move_ok(EXEC_RUNNING, EXEC_QUEUED));
}

static const char *const SLEEPY =
    "{\"name\":\"sleepy\",\"tasks\":[{\"name\":\"nap\",\"type\":\"sleep\",\"duration\":\"10ms\"},"
    "{\"name\":\"after\",\"type\":\"noop\",\"dependsOn\":[\"nap\"]}]}";

/* An illegal move stops the program with a message naming the task and the
 * two statuses (a death test: it runs in a child). */
static void test_illegal_transition_aborts(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    char id[ID_MAX], out[1024];
    int fds[2], status = 0;
    size_t n = 0;
    ssize_t k;
    pid_t pid;

    assert_int_equal(engine_submit(f->eng, SLEEPY, NULL, id, &err), 0);
    assert_non_null(f->eng->execs);
    assert_int_equal(f->eng->execs->runs[1].status, TASK_PENDING);
    assert_int_equal(pipe(fds), 0);
    fflush(stderr);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        /* "after" waits for "nap": it cannot start. */
        engine__run_move(f->eng, f->eng->execs, 1, TASK_RUNNING);
        _exit(0);
    }
    close(fds[1]);
    while (n < sizeof(out) - 1 && (k = read(fds[0], out + n, sizeof(out) - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = 0;
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    assert_non_null(strstr(out, "BUG [Engine] illegal transition of task 'after' from pending "
                                "to running"));
    /* The parent's engine is untouched and runs the execution to its end. */
    assert_int_equal(engine_run(f->eng, &err), 0);
    assert_int_equal(engine_active(f->eng), 0);
}

/* The invariant check finds a counter that does not match the runs, a run
 * in the ready queue that is not queued, and a dirty run not listed. */
static void test_invariant_check(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    char id[ID_MAX], msg[512];
    struct exec *ex;

    assert_int_equal(engine_submit(f->eng, SLEEPY, NULL, id, &err), 0);
    ex = f->eng->execs;
    assert_non_null(ex);
    assert_int_equal(engine__check(f->eng, 1, msg, sizeof(msg)), 0);

    ex->nfinal++;
    assert_int_equal(engine__check(f->eng, 1, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "counts 1 final runs, has 0"));
    ex->nfinal--;

    ex->nrunning++;
    assert_int_equal(engine__check(f->eng, 1, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "counts 1 running runs, has 0"));
    ex->nrunning--;

    ex->runs[1].queued_in_ready = 1;
    assert_int_equal(engine__check(f->eng, 1, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "task 'after'"));
    assert_non_null(strstr(msg, "in the ready queue but pending"));
    ex->runs[1].queued_in_ready = 0;

    ex->runs[1].dirty = 1;
    assert_int_equal(engine__check(f->eng, 1, msg, sizeof(msg)), -1);
    assert_non_null(strstr(msg, "lists 0 dirty runs, has 1"));
    ex->runs[1].dirty = 0;

    assert_int_equal(engine__check(f->eng, 1, msg, sizeof(msg)), 0);
    assert_int_equal(engine_run(f->eng, &err), 0);
    assert_int_equal(engine_active(f->eng), 0);
}

/* ------------------------------------------------------------------ a busy database */

struct locker {
    struct engine *eng;
    struct store *st2;
    int saw_held;
};

/* Waits until the engine holds its commit (the loop goes on meanwhile),
 * then lets the database go. */
static void *release_when_held(void *arg)
{
    struct locker *l = arg;
    for (int i = 0; i < 60000 && !__atomic_load_n(&l->eng->commit_held, __ATOMIC_ACQUIRE); i++)
        usleep(1000);
    l->saw_held = __atomic_load_n(&l->eng->commit_held, __ATOMIC_ACQUIRE);
    store_rollback(l->st2);
    return NULL;
}

/* A commit that finds the database locked is held and tried again from a
 * timer of the loop, not waited for on the loop thread; once the lock goes,
 * the held writes are committed and the execution ends as usual. */
static void test_busy_commit_is_held(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct locker l;
    struct exec_detail *d = NULL;
    pthread_t th;
    char id[ID_MAX];

    memset(&l, 0, sizeof(l));
    l.eng = f->eng;
    assert_int_equal(engine_submit(f->eng,
                                   "{\"name\":\"b\",\"tasks\":[{\"name\":\"n\",\"type\":\"noop\"}]}",
                                   NULL, id, &err),
                     0);
    assert_int_equal(store_open(f->dir, 0, &l.st2, &err), 0);
    assert_int_equal(store_begin(l.st2, &err), 0); /* the write lock */
    assert_int_equal(pthread_create(&th, NULL, release_when_held, &l), 0);
    assert_int_equal(engine_run(f->eng, &err), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(l.saw_held, 1);
    assert_int_equal(f->eng->commit_held, 0);
    assert_int_equal(store_execution_get(f->st, id, &d, &err), 0);
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    exec_detail_free(d);
    store_free(l.st2);
}

/* ------------------------------------------------------------------ commit hooks */

struct hook_probe {
    int pending, commits, again, committed, failed, fail_rc;
};

static struct hook_probe probe;

static int probe_pending(const struct engine *eng, void *arg)
{
    (void)eng;
    return ((struct hook_probe *)arg)->pending;
}

static int probe_commit(struct engine *eng, void *arg, struct err *err)
{
    struct hook_probe *p = arg;
    (void)eng;
    p->commits++;
    if (p->again > 0) {
        p->again--;
        return ENGINE_HOOK_AGAIN;
    }
    if (p->fail_rc)
        return err_set(err, p->fail_rc, "the probe refuses");
    return 0;
}

static void probe_committed(struct engine *eng, void *arg)
{
    struct hook_probe *p = arg;
    (void)eng;
    p->committed++;
    p->pending = 0;
}

static int probe_failed(struct engine *eng, void *arg, int rc)
{
    struct hook_probe *p = arg;
    (void)eng;
    p->failed++;
    assert_int_equal(rc, p->fail_rc);
    return 0;
}

static const struct engine_hook probe_hook = {
    .phase = HOOK_LAST,
    .pending = probe_pending,
    .commit = probe_commit,
    .committed = probe_committed,
    .failed = probe_failed,
};

/* A hook with something pending makes the turn commit; its commit runs in
 * the transaction (AGAIN: rolled back and started over), then `committed`
 * once; a failing hook fails the commit and hears of it. */
static void test_commit_hooks(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    char id[ID_MAX];

    memset(&probe, 0, sizeof(probe));
    engine__hook_add(f->eng, &probe_hook, &probe);
    engine__hook_add(f->eng, &probe_hook, &probe); /* once */
    probe.pending = 1;
    probe.again = 1;
    assert_int_equal(engine_run(f->eng, &err), 0); /* nothing but the hook */
    assert_int_equal(probe.commits, 2);
    assert_int_equal(probe.committed, 1);
    assert_int_equal(probe.failed, 0);

    memset(&probe, 0, sizeof(probe));
    probe.fail_rc = ERR_STORE;
    assert_int_equal(engine_submit(f->eng, "{\"name\":\"h\",\"tasks\":[{\"name\":\"n\",\"type\":\"noop\"}]}",
                                   NULL, id, &err),
                     ERR_STORE);
    assert_non_null(strstr(err.msg, "the probe refuses"));
    assert_int_equal(probe.commits, 1);
    assert_int_equal(probe.committed, 0);
    assert_int_equal(probe.failed, 1);
    probe.fail_rc = 0;
}

/* What each commit of a run holds: ends (processes reaped this turn) and starts
 * (processes to spawn once it is committed). */
struct slot_probe {
    int commits, with_end, end_and_start;
};

static int slot_probe_pending(const struct engine *eng, void *arg)
{
    (void)eng;
    (void)arg;
    return 0;
}

static int slot_probe_commit(struct engine *eng, void *arg, struct err *err)
{
    struct slot_probe *p = arg;
    (void)err;
    p->commits++;
    if (eng->nreaped > 0) {
        p->with_end++;
        if (eng->nspawn > 0)
            p->end_and_start++;
    }
    return 0;
}

static const struct engine_hook slot_probe_hook = {
    .phase = HOOK_LAST,
    .pending = slot_probe_pending,
    .commit = slot_probe_commit,
};

/* One worker slot, three commands: the slot of a process that exited is free
 * in the turn that reaps it, so the next command's start is committed with
 * the end of the one before (not in a commit, and a sync, of its own). */
static void test_end_and_next_start_share_a_commit(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct engine_config cfg;
    struct slot_probe sp;
    struct exec_detail *d;

    engine_free(f->eng);
    engine_config_init(&cfg);
    cfg.workers = 1;
    cfg.kill_grace_ms = 200;
    assert_int_equal(engine_new(f->st, &cfg, &f->eng, &err), 0);
    memset(&sp, 0, sizeof(sp));
    engine__hook_add(f->eng, &slot_probe_hook, &sp);
    d = run_def(f, "{\"name\":\"one-slot\",\"tasks\":["
                   "{\"name\":\"a\",\"command\":[\"true\"]},"
                   "{\"name\":\"b\",\"command\":[\"true\"]},"
                   "{\"name\":\"c\",\"command\":[\"true\"]}]}");
    assert_int_equal(d->exec.status, EXEC_SUCCEEDED);
    for (const char *n = "abc"; *n; n++) {
        char name[2] = {*n, 0};
        assert_int_equal(task(d, name)->status, TASK_SUCCEEDED);
    }
    exec_detail_free(d);
    assert_int_equal(sp.with_end, 3);       /* each end in one commit */
    assert_int_equal(sp.end_and_start, 2);  /* a's and b's with the next start */
    assert_int_equal(f->eng->nreaped, 0);   /* every reaped process freed */
}

/* A loopback port nobody listens on (bound, read, closed). */
static int closed_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    assert_true(fd >= 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/*
 * Notifications (notify.c) on the manual clock: a receiver that refuses the
 * connection fails each attempt at once; the next is due after the back-off,
 * doubled each time (1 s, 2 s, 4 s), and after the last attempt the row is
 * given up with the error. The clock jumps from deadline to deadline, so the
 * schedule costs no real time, and what the row records is exact.
 */
static void test_notify_retry_schedule(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct engine_config cfg;
    struct notify_row *rows = NULL;
    struct store *rd = NULL;
    size_t n = 0;
    char id[ID_MAX], def[512];
    pthread_t th;

    engine_free(f->eng);
    engine_config_init(&cfg);
    cfg.workers = 2;
    cfg.notify_attempts = 4;
    cfg.notify_backoff_ms = 1000;
    assert_int_equal(engine_new(f->st, &cfg, &f->eng, &err), 0);
    snprintf(def, sizeof(def),
             "{\"name\":\"told\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}],"
             "\"notify\":[{\"on\":[\"succeeded\"],\"webhook\":{\"url\":"
             "\"http://127.0.0.1:%d/hook\"}}]}",
             closed_port());
    put_workflow(f, def);
    engine_set_persistent(f->eng, 1);
    clock_run_for(60000);
    assert_int_equal(pthread_create(&th, NULL, loop_thread, f), 0);
    assert_int_equal(engine_post_submit(f->eng, "told", NULL, NULL, id, NULL, &err), 0);
    assert_int_equal(store_open(f->dir, STORE_READONLY, &rd, &err), 0);
    for (int i = 0;; i++) {
        assert_int_equal(store_notify_list(rd, id, &rows, &n, &err), 0);
        if (n == 1 && rows[0].status == NOTIFY_FAILED)
            break;
        notify_rows_free(rows, n);
        rows = NULL;
        if (i == 30000)
            fail_msg("the notification of %s was not given up", id);
        usleep(1000);
    }
    store_free(rd);
    engine_request_stop(f->eng, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(rows[0].attempts, 4);
    assert_string_equal(rows[0].event, "succeeded");
    assert_non_null(rows[0].last_error);
    assert_int_equal(rows[0].response_code, 0);
    /* Attempt 4 was due 1 + 2 + 4 s after the first (plus the instants the
     * attempts took), and ran when due. */
    assert_true(rows[0].next_at - rows[0].created_at >= 7000);
    assert_true(rows[0].updated_at >= rows[0].next_at);
    assert_non_null(strstr(rows[0].body, "\"status\":\"succeeded\""));
    notify_rows_free(rows, n);
}

/* The engine's counters for /metrics: what ran, by workflow, type and status;
 * a workflow's label quoted as the text format wants. */
static void test_metrics_count_what_ran(void **state)
{
    struct fixture *f = *state;
    struct exec_detail *d;
    struct strbuf out = STRBUF_INIT;

    d = run_def(f, "{\"name\":\"m-bad\",\"tasks\":[{\"name\":\"a\",\"command\":[\"false\"]},"
                   "{\"name\":\"b\",\"type\":\"noop\",\"dependsOn\":[\"a\"]}]}");
    assert_int_equal(d->exec.status, EXEC_FAILED);
    exec_detail_free(d);
    d = run_def(f, "{\"name\":\"m-good\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    exec_detail_free(d);
    d = run_def(f, "{\"name\":\"m-good\",\"tasks\":[{\"name\":\"a\",\"type\":\"noop\"}]}");
    exec_detail_free(d);
    assert_int_equal(engine_metrics_write(f->eng, &out), 0);
    assert_non_null(strstr(out.buf, "\norch_executions_started_total{workflow=\"m-bad\"} 1\n"));
    assert_non_null(strstr(out.buf, "\norch_executions_started_total{workflow=\"m-good\"} 2\n"));
    assert_non_null(strstr(out.buf, "\norch_executions_finished_total{workflow=\"m-bad\","
                                    "status=\"failed\"} 1\n"));
    assert_non_null(strstr(out.buf, "\norch_executions_finished_total{workflow=\"m-bad\","
                                    "status=\"succeeded\"} 0\n"));
    assert_non_null(strstr(out.buf, "\norch_executions_finished_total{workflow=\"m-good\","
                                    "status=\"succeeded\"} 2\n"));
    assert_non_null(strstr(out.buf, "\norch_task_attempts_total{type=\"command\","
                                    "status=\"failed\"} 1\n"));
    assert_non_null(strstr(out.buf, "\norch_task_attempts_total{type=\"noop\","
                                    "status=\"succeeded\"} 2\n"));
    assert_non_null(strstr(out.buf, "\norch_execution_duration_seconds_count{status=\"failed\"} 1\n"));
    assert_non_null(strstr(out.buf, "\norch_task_duration_seconds_count{type=\"command\"} 1\n"));
    assert_null(strstr(out.buf, "_other"));
    assert_null(strstr(out.buf, "ex_"));
    assert_non_null(strstr(out.buf, "# TYPE orch_store_commit_duration_seconds histogram\n"));
    assert_null(strstr(out.buf, "\norch_store_commit_duration_seconds_count 0\n"));
    assert_non_null(strstr(out.buf, "\norch_worker_slots 2\n"));
    strbuf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timer_heap),
        cmocka_unit_test(test_timers_forget_exec),
        cmocka_unit_test(test_transition_table),
        cmocka_unit_test_setup_teardown(test_illegal_transition_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invariant_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_commit_is_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_and_next_start_share_a_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notify_retry_schedule, setup_sched, teardown),
        cmocka_unit_test(test_orphan_kill_checks_start_time),
        cmocka_unit_test_setup_teardown(test_next_deadline_and_wait, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_noop_chain_one_turn, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_one_time_per_turn, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_run_if_and_upstream_failed, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_retries_and_attempts, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_queued_at, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_task_timeout, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_exec_timeout, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_sleep_and_concurrency, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_bad_params, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_all, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_server_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_submissions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_interrupts_and_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_policies, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_retention_purge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_server_wide, setup_manual, teardown),
        cmocka_unit_test_setup_teardown(test_scheduler_fires_once_per_due_time, setup_sched,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_api_schedule_with_templated_params, setup_sched,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_overlap_policies, setup_sched, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_allow_and_cancel, setup_sched, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_cancel_previous, setup_sched, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_buffer_one, setup_sched, teardown),
        cmocka_unit_test_setup_teardown(test_overlap_buffer_all, setup_sched, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_count_what_ran, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
