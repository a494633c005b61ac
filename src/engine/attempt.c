/*
 * attempt.c - the end of a task's attempt (kind.h: engine__attempt_end,
 * _fail, _succeed): its row recorded, then the task retried after its
 * back-off, run again when lost with its node, or finalized.
 *
 * Part of the engine's core (docs/internals/engine.md): the kinds call it;
 * it calls no subsystem by name.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/clock.h"
#include "base/log.h"
#include "commit.h"
#include "engine_internal.h"
#include "exec.h"
#include "kind.h"

#include "base/banned.h"

static int64_t backoff_delay(const struct dag_task *t, int attempt)
{
    double d = (double)t->backoff.initial_ms * pow(t->backoff.factor, attempt - 1);
    if (d > (double)t->backoff.max_ms)
        d = (double)t->backoff.max_ms;
    if (t->backoff.jitter) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
            r = (uint32_t)clock_mono_ns();
        d *= 0.8 + 0.4 * ((double)r / 4294967295.0);
    }
    return d < 0 ? 0 : (int64_t)d;
}

/*
 * The current attempt of task `idx` ended with `ast`. Record it; retry or
 * finalize the task. `fail_status` is the task status if no retry is left.
 */
static void attempt_end(struct engine *eng, struct exec *ex, size_t idx, enum attempt_status ast,
                        int exit_code, int sig, const char *error, int pid, int pgid,
                        int64_t proc_start, int allow_retry)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct trun *r = &ex->runs[idx];
    int64_t now = clock_now_ms();
    struct attempt_row row;
    struct engine_event ev;
    int retry, rerun_lost = 0;
    char dur[32];
    int64_t took = now - r->attempt_started_at;

    memset(&row, 0, sizeof(row));
    row.task_idx = (int)idx;
    row.number = r->attempt;
    row.status = ast;
    /* A lost attempt keeps the node it ran on; a remote one gets its runner. */
    row.node = eng->attempt_node ? (char *)eng->attempt_node
               : ast == ATTEMPT_LOST ? NULL
                                     : eng->node;
    row.pid = pid;
    row.pgid = pgid;
    row.proc_start = proc_start;
    row.started_at = r->attempt_started_at;
    row.finished_at = now;
    row.exit_code = exit_code;
    row.signal = sig;
    row.error = (char *)error;
    if (row.number > 0) {
        engine__add_pending_attempt(eng, ex, 0, &row);
        engine__metrics_attempt(eng, ex, idx, ast, took);
    }

    clock_fmt_duration(took, dur, sizeof(dur));
    memset(&ev, 0, sizeof(ev));
    ev.type = ENGINE_EV_TASK_FINISHED;
    ev.task = engine__task_name(ex, idx);
    ev.attempt = r->attempt;
    ev.duration_ms = took;
    ev.error = error;

    if (ast == ATTEMPT_SUCCEEDED) {
        if (engine__kind(t)->instant)
            log_debug(COMP_TASK, "Task '%s' succeeded (%s)", engine__task_name(ex, idx),
                      engine__kind(t)->name);
        else
            log_info(COMP_TASK, "Task '%s' succeeded in %s (attempt %d)", engine__task_name(ex, idx), dur,
                     r->attempt);
        engine__task_finalize(eng, ex, idx, TASK_SUCCEEDED, NULL);
        ev.task_status = TASK_SUCCEEDED;
        engine__task_event(eng, ex, &ev);
        return;
    }
    if (ast == ATTEMPT_LOST && allow_retry && ex->status == EXEC_RUNNING &&
        r->lost_runs < eng->cfg.max_lost_attempts) {
        /* Lost with its node, not failed: run again outside the retry budget
         * (a bounded number of times: a task that kills its node ends). */
        r->lost_runs++;
        rerun_lost = 1;
    } else if (ast == ATTEMPT_FAILED || ast == ATTEMPT_TIMED_OUT || ast == ATTEMPT_LOST) {
        r->failures++;
    }
    retry = rerun_lost || (allow_retry && r->failures <= t->retries && ex->status == EXEC_RUNNING);
    if (retry) {
        int64_t delay = rerun_lost ? 0 : backoff_delay(t, r->attempt);
        char dbuf[32];
        clock_fmt_duration(delay, dbuf, sizeof(dbuf));
        if (rerun_lost)
            log_warn(COMP_TASK, "Task '%s' attempt %d %s; running it again (lost run %d of %d "
                     "that use no retry)", engine__task_name(ex, idx), r->attempt,
                     error ? error : "lost", r->lost_runs, eng->cfg.max_lost_attempts);
        else
            log_warn(COMP_TASK, "Task '%s' attempt %d failed (%d of %d tries): %s; retrying in %s",
                     engine__task_name(ex, idx), r->attempt, r->failures, t->retries + 1,
                     error ? error : "failed", dbuf);
        engine__run_move(eng, ex, idx, TASK_QUEUED);
        r->available_at = now + delay;
        r->queued_at = r->available_at; /* ready again once its back-off is over */
        engine__set_str(&r->error, error);
        if (delay <= 0)
            engine__ready_push(eng, ex, idx);
        else
            engine__attempt_timer(eng, TIMER_RETRY, ex, idx, delay);
        ev.task_status = TASK_QUEUED;
        ev.will_retry = 1;
        engine__task_event(eng, ex, &ev);
        return;
    }
    {
        enum task_status fs = ast == ATTEMPT_TIMED_OUT   ? TASK_TIMED_OUT
                              : ast == ATTEMPT_CANCELLED ? TASK_CANCELLED
                                                         : TASK_FAILED;
        if (ast == ATTEMPT_CANCELLED)
            log_info(COMP_TASK, "Task '%s' cancelled (attempt %d)", engine__task_name(ex, idx), r->attempt);
        else
            log_error(COMP_TASK, "Task '%s' failed: %s", engine__task_name(ex, idx), error ? error : "failed");
        engine__task_finalize(eng, ex, idx, fs, error);
        ev.task_status = fs;
        engine__task_event(eng, ex, &ev);
    }
}

void engine__attempt_fail(struct engine *eng, struct exec *ex, size_t idx,
                          enum attempt_status ast, const char *error, int allow_retry)
{
    attempt_end(eng, ex, idx, ast, -1, 0, error, 0, 0, 0, allow_retry);
}

void engine__attempt_succeed(struct engine *eng, struct exec *ex, size_t idx, char *output)
{
    struct trun *r = &ex->runs[idx];
    free(r->output);
    r->output = output;
    attempt_end(eng, ex, idx, ATTEMPT_SUCCEEDED, -1, 0, NULL, 0, 0, 0, 1);
}

void engine__attempt_end(struct engine *eng, struct exec *ex, size_t idx,
                         enum attempt_status ast, int exit_code, int sig, const char *error,
                         int pid, int pgid, int64_t proc_start, int allow_retry)
{
    attempt_end(eng, ex, idx, ast, exit_code, sig, error, pid, pgid, proc_start, allow_retry);
}
