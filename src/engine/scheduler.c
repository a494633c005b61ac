/*
 * scheduler.c - firing the schedules of workflow definitions, exactly once
 * per due time (see docs/internals/engine.md, "Scheduler").
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/date.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "engine_internal.h"
#include "sched/cron.h"
#include "sched/due.h"
#include "sched/tz.h"
#include "scheduler.h"

#include "base/banned.h"

/* ------------------------------------------------------------------ scheduler */

/* The scheduler's state (server mode), behind eng->sched. */
struct sched_state {
    int on;                             /* engine_enable_scheduler() was called */
    int64_t started_at;                 /* wall-clock ms when the scheduler was enabled */
    int64_t prev_tick;                  /* wall-clock ms of the previous tick, 0 before the first */
    volatile sig_atomic_t reload;       /* re-read the schedules (any thread, signal-safe) */
    volatile sig_atomic_t changed_here; /* engine_schedules_changed() ran: tell the other nodes */
    int64_t next_sync;                  /* monotonic ms: re-read definitions now and then */
    struct sched *scheds;
    size_t nscheds, scheds_alloc;
    struct pending_fire *pfires; /* fires written with the turn's commit */
    size_t npfires, pfires_alloc;
};

struct sched_state *engine__sched_new(void)
{
    return xcalloc(1, sizeof(struct sched_state));
}

void engine__sched_free(struct engine *eng)
{
    struct sched_state *s = eng->sched;

    if (!s)
        return;
    engine__scheds_clear(eng);
    free(s->scheds);
    for (size_t i = 0; i < s->npfires; i++) {
        free(s->pfires[i].row.schedule_id);
        free(s->pfires[i].row.reason);
    }
    free(s->pfires);
    free(s);
    eng->sched = NULL;
}

int engine__sched_on(const struct engine *eng)
{
    return eng->sched->on;
}

void engine__sched_reload(struct engine *eng)
{
    eng->sched->reload = 1;
}

void engine__sched_lead(struct engine *eng, int64_t prev_tick)
{
    eng->sched->prev_tick = prev_tick;
    eng->sched->reload = 1;
}

int engine__sched_take_changed(struct engine *eng)
{
    if (!eng->sched->changed_here)
        return 0;
    eng->sched->changed_here = 0;
    return 1;
}

int64_t engine__sched_turn(struct engine *eng)
{
    if (eng->sched->reload || clock_mono_ms() >= eng->sched->next_sync) {
        eng->sched->reload = 0;
        engine__sched_sync(eng);
        eng->sched->next_sync = clock_mono_ms() + SCHED_SYNC_MS;
    }
    return engine__sched_tick(eng);
}

int64_t engine__sched_next_sync(const struct engine *eng)
{
    return eng->sched->next_sync;
}

const struct sched *engine__sched_find(const struct engine *eng, const char *id)
{
    const struct sched *sc = NULL;

    for (size_t i = 0; i < eng->sched->nscheds; i++)
        if (!strcmp(eng->sched->scheds[i].id, id))
            sc = &eng->sched->scheds[i];
    return sc;
}

void engine__sched_fires_drop(struct engine *eng, const char *exec_id)
{
    struct sched_state *s = eng->sched;
    size_t k = 0;

    for (size_t i = 0; i < s->npfires; i++) {
        struct pending_fire *pf = &s->pfires[i];
        if (!strcmp(pf->row.execution_id, exec_id)) {
            free(pf->row.schedule_id);
            free(pf->row.reason);
        } else {
            s->pfires[k++] = *pf;
        }
    }
    s->npfires = k;
}

#define MISFIRE_GRACE_MS 60000 /* a fire later than this is a catch-up, not a late fire */

static void sched_release(struct sched *sc)
{
    free(sc->workflow);
    free(sc->name);
    free(sc->definition);
    free(sc->cron_text);
    free(sc->tzname);
    free(sc->params);
    free(sc->spec_hash);
    free(sc->queue);
    free(sc->api_spec);
    memset(sc, 0, sizeof(*sc));
}

void engine__scheds_clear(struct engine *eng)
{
    for (size_t i = 0; i < eng->sched->nscheds; i++)
        sched_release(&eng->sched->scheds[i]);
    eng->sched->nscheds = 0;
}

/* The first fire time of `sc` strictly after `after_ms` (ms), or 0 if none
 * (never again, or out of sched_next_due()'s range). */
static int64_t sched_next_time(const struct sched *sc, int64_t after_ms)
{
    struct sched_rule rule = {sc->spec.is_cron ? &sc->spec.cron : NULL, &sc->spec.dst,
                              sc->spec.every_ms / 1000};
    int64_t out_s = 0;

    if (sched_next_due(&rule, sc->tz, date_floor_div(after_ms, 1000), &out_s) != 0)
        return 0;
    return out_s * 1000;
}


static int queue_insert(struct sched *sc, int64_t t);

/* Most due times of one schedule read back from the store's queue at a time. */
#define SCHED_QUEUED_LOAD_MAX 100000

/* Add the due times the store holds as queued for `sc` (a backfill or a
 * catch-up accepted before a restart, or by another node) to its queue. */
static void sched_load_queued(struct engine *eng, struct sched *sc)
{
    int64_t *v = NULL;
    size_t n = 0, added = 0;
    struct err err = ERR_INIT;

    if (store_fires_queued(eng->st, sc->id, SCHED_QUEUED_LOAD_MAX, &v, &n, &err)) {
        log_error(COMP_SCHED, "cannot read the queued due times of '%s': %s", sc->name, err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++)
        added += (size_t)queue_insert(sc, v[i]);
    if (added)
        log_info(COMP_SCHED, "Schedule '%s' of '%s': %zu queued due time%s to run", sc->name,
                 sc->workflow, added, added == 1 ? "" : "s");
    free(v);
}

/* Add the schedule `ds` (named `name`) of workflow row `wr` with its stored
 * state `st` (or NULL: a new one) to the engine's list. */
static void sched_add(struct engine *eng, const struct workflow_row *wr,
                      const struct dag_schedule *ds, const char *name,
                      const struct schedule_row *st, struct sched *old, size_t nold, int64_t now)
{
    struct sched *sc, *prev = NULL;
    struct err terr = ERR_INIT;

    for (size_t i = 0; i < nold; i++)
        if (!strcmp(old[i].workflow, wr->name) && !strcmp(old[i].name, name))
            prev = &old[i];
    XGROW(eng->sched->scheds, eng->sched->scheds_alloc, eng->sched->nscheds + 1);
    sc = &eng->sched->scheds[eng->sched->nscheds];
    memset(sc, 0, sizeof(*sc));
    sc->workflow = xstrdup(wr->name);
    sc->name = xstrdup(name);
    sc->definition = xstrdup(wr->definition);
    sc->version = wr->version;
    sc->spec = *ds;
    sc->cron_text = ds->cron_text ? xstrdup(ds->cron_text) : NULL;
    sc->tzname = xstrdup(ds->timezone ? ds->timezone : "UTC");
    sc->params = ds->params_json ? xstrdup(ds->params_json) : NULL;
    sc->spec.name = sc->name;
    sc->spec.cron_text = sc->cron_text;
    sc->spec.every_text = NULL; /* owned by ds; only the API echoes it */
    sc->spec.timezone = sc->tzname;
    sc->spec.params_json = sc->params;
    if (st && st->from_api) {
        sc->from_api = 1;
        sc->api_spec = st->spec ? xstrdup(st->spec) : NULL;
    }
    if (tz_load(sc->tzname, &sc->tz, &terr) != 0) {
        log_error(COMP_SCHED, "Schedule '%s' of '%s': %s", sc->name, sc->workflow, terr.msg);
        sched_release(sc);
        return;
    }
    sc->spec_hash = dag_schedule_hash(&sc->spec);
    if (prev) {
        /* Overlap buffers survive a reload. */
        sc->buffered = prev->buffered;
        sc->queue = prev->queue;
        sc->nqueue = prev->nqueue;
        sc->queue_alloc = prev->queue_alloc;
        prev->queue = NULL;
        prev->nqueue = prev->queue_alloc = 0;
    }
    if (st) {
        memcpy(sc->id, st->id, ID_MAX);
        sc->paused = st->paused;
        sc->last_fire_at = st->last_fire_at;
        if (!strcmp(st->spec_hash, sc->spec_hash)) {
            sc->next_fire_at = st->next_fire_at;
        } else {
            sc->next_fire_at = sc->spec.enabled ? sched_next_time(sc, now) : 0;
            sc->dirty = 1;
            log_info(COMP_SCHED, "Schedule '%s' of '%s' %s: next fire computed", sc->name,
                     sc->workflow, st->spec_hash[0] ? "changed" : "registered");
        }
    } else {
        id_new("sch_", sc->id);
        sc->next_fire_at = sc->spec.enabled ? sched_next_time(sc, now) : 0;
        sc->dirty = 1;
        sc->is_new = 1;
        log_info(COMP_SCHED, "Schedule '%s' of '%s' (%s, %s) registered", sc->name, sc->workflow,
                 sc->cron_text ? sc->cron_text : "every", sc->tzname);
    }
    if (st)
        sched_load_queued(eng, sc);
    eng->sched->nscheds++;
}

/*
 * Read the workflows' schedules and their stored state. A new schedule starts
 * from now (no catch-up for times before it existed); a changed one (other
 * expression, zone, params) is recomputed from now; an unchanged one keeps
 * its next fire time, so times missed while orch was down are caught up by
 * the schedule's catch-up policy. State rows of removed schedules are pruned.
 */
void engine__sched_sync(struct engine *eng)
{
    struct workflow_row *rows = NULL;
    struct schedule_row *states = NULL;
    size_t nrows = 0, nstates = 0;
    struct err err = ERR_INIT;
    int64_t now = clock_now_ms();
    struct sched *old = eng->sched->scheds;
    size_t nold = eng->sched->nscheds;

    if (store_workflows_list(eng->st, &rows, &nrows, &err) ||
        store_schedules_list(eng->st, &states, &nstates, &err)) {
        log_error(COMP_SCHED, "cannot read schedules: %s", err.msg);
        workflow_rows_free(rows, nrows);
        return;
    }
    eng->sched->scheds = NULL;
    eng->sched->nscheds = eng->sched->scheds_alloc = 0;
    for (size_t w = 0; w < nrows; w++) {
        struct workflow *wf = NULL;
        const char **names;
        size_t nnames = 0;
        if (dag_parse(rows[w].definition, strlen(rows[w].definition), &wf, NULL) != 0)
            continue;
        names = xcalloc(wf->nschedules ? wf->nschedules : 1, sizeof(*names));
        for (size_t k = 0; k < wf->nschedules; k++) {
            const struct schedule_row *st = NULL;
            int taken = 0;
            names[nnames++] = wf->schedules[k].name;
            for (size_t i = 0; i < nstates; i++) {
                if (strcmp(states[i].workflow, wf->name) ||
                    strcmp(states[i].name, wf->schedules[k].name))
                    continue;
                if (states[i].from_api)
                    taken = 1;
                else
                    st = &states[i];
            }
            if (taken) {
                log_error(COMP_SCHED, "Schedule '%s' of the definition of '%s' is not fired: a "
                          "schedule created through the API has that name",
                          wf->schedules[k].name, wf->name);
                continue;
            }
            sched_add(eng, &rows[w], &wf->schedules[k], wf->schedules[k].name, st, old, nold,
                      now);
        }
        /* Schedules created through the API for this workflow. */
        for (size_t i = 0; i < nstates; i++) {
            struct workflow *swf = NULL;
            if (!states[i].from_api || strcmp(states[i].workflow, wf->name))
                continue;
            if (dag_parse_schedule(rows[w].definition, states[i].spec, &swf, NULL) != 0) {
                log_error(COMP_SCHED, "Schedule '%s' of '%s' no longer fits its workflow: it "
                          "does not fire", states[i].name, wf->name);
                workflow_free(swf);
                continue;
            }
            sched_add(eng, &rows[w], &swf->schedules[0], states[i].name, &states[i], old, nold,
                      now);
            workflow_free(swf);
        }
        /* State of schedules gone from the definition. */
        if (store_schedules_prune(eng->st, wf->name, names, nnames, &err))
            log_error(COMP_SCHED, "cannot prune schedules of '%s': %s", wf->name, err.msg);
        free(names);
        workflow_free(wf);
    }
    for (size_t i = 0; i < nold; i++)
        sched_release(&old[i]);
    free(old);
    schedule_rows_free(states, nstates);
    workflow_rows_free(rows, nrows);
}

/* Executions of schedule `id` that are still running (in memory). */
static struct exec *sched_running(struct engine *eng, const char *id, size_t *count)
{
    struct exec *first = NULL;
    *count = 0;
    for (struct exec *ex = eng->execs; ex; ex = ex->next) {
        if (ex->schedule_id && !strcmp(ex->schedule_id, id) &&
            !exec_status_is_final(ex->status)) {
            if (!first)
                first = ex;
            (*count)++;
        }
    }
    return first;
}

static void add_pending_fire(struct engine *eng, const struct sched *sc, int64_t t,
                             enum fire_status st, const char *exec_id, const char *reason)
{
    struct pending_fire *pf;
    XGROW(eng->sched->pfires, eng->sched->pfires_alloc, eng->sched->npfires + 1);
    pf = &eng->sched->pfires[eng->sched->npfires++];
    memset(pf, 0, sizeof(*pf));
    pf->row.schedule_id = xstrdup(sc->id);
    pf->row.scheduled_for = t;
    pf->row.status = st;
    if (exec_id)
        memcpy(pf->row.execution_id, exec_id, ID_MAX);
    pf->row.reason = reason ? xstrdup(reason) : NULL;
    pf->row.created_at = clock_now_ms();
}

/*
 * What is recorded of due time `t` of `sc`: this turn's newest pending fire
 * of it, else the store's row. Returns 0 (nothing), 1 (*status, and *reason
 * if asked: a heap copy or NULL, and exec_id if asked) or -1 (cannot tell).
 */
static int fire_state(struct engine *eng, const struct sched *sc, int64_t t,
                      enum fire_status *status, char **reason, char *exec_id)
{
    struct fire_row row;
    struct err err = ERR_INIT;
    int rc;

    if (reason)
        *reason = NULL;
    for (size_t i = eng->sched->npfires; i-- > 0;) {
        const struct fire_row *pr = &eng->sched->pfires[i].row;
        if (strcmp(pr->schedule_id, sc->id) || pr->scheduled_for != t)
            continue;
        *status = pr->status;
        if (reason && pr->reason)
            *reason = xstrdup(pr->reason);
        if (exec_id)
            memcpy(exec_id, pr->execution_id, ID_MAX);
        return 1;
    }
    rc = store_fire_get(eng->st, sc->id, t, &row, &err);
    if (rc == ERR_NOT_FOUND)
        return 0;
    if (rc) {
        log_error(COMP_SCHED, "cannot check fire of '%s': %s", sc->name, err.msg);
        return -1;
    }
    *status = row.status;
    if (reason && row.reason)
        *reason = xstrdup(row.reason);
    if (exec_id)
        memcpy(exec_id, row.execution_id, ID_MAX);
    fire_row_release(&row);
    return 1;
}

/* Was due time `t` of `sc` fired or skipped (or is it waiting in the
 * store's queue)? When in doubt, yes: never fire twice. */
static int fire_recorded(struct engine *eng, const struct sched *sc, int64_t t)
{
    enum fire_status status;
    return fire_state(eng, sc, t, &status, NULL, NULL) != 0;
}

/* Reasons of the due times queued by a backfill or a catch-up; their fires
 * keep them, which tells their runs from those of live fires. */
#define FIRE_REASON_BACKFILL "backfill"
#define FIRE_REASON_CATCHUP "catch-up"

/* Is `ex` (of `sc`) the run of a backfilled or caught-up due time? */
static int sched_queued_run(struct engine *eng, const struct sched *sc, const struct exec *ex)
{
    enum fire_status status;
    char *reason = NULL, id[ID_MAX] = "";
    int yes = fire_state(eng, sc, ex->scheduled_for, &status, &reason, id) == 1 &&
              status == FIRE_FIRED && reason && !strcmp(id, ex->id) &&
              (!strcmp(reason, FIRE_REASON_BACKFILL) || !strcmp(reason, FIRE_REASON_CATCHUP));
    free(reason);
    return yes;
}

/*
 * The schedule's params with "{{ scheduledFor }}" (also without the spaces)
 * in string values replaced by the due time `when`. A new heap string (or
 * NULL without params); the caller frees it.
 */
static char *params_for_fire(const char *params, const char *when)
{
    json_t *o, *v;
    const char *key;
    char *out;

    if (!params)
        return NULL;
    if (!strstr(params, "scheduledFor"))
        return xstrdup(params);
    o = json_loads(params, 0, NULL);
    if (!o)
        return xstrdup(params);
    json_object_foreach(o, key, v) {
        static const char *const marks[] = {"{{ scheduledFor }}", "{{scheduledFor}}"};
        struct strbuf sb = STRBUF_INIT;
        const char *s;
        if (!json_is_string(v))
            continue;
        s = json_string_value(v);
        while (*s) {
            size_t mlen = 0;
            for (int m = 0; m < 2 && !mlen; m++)
                if (!strncmp(s, marks[m], strlen(marks[m])))
                    mlen = strlen(marks[m]);
            if (mlen) {
                strbuf_adds(&sb, when);
                s += mlen;
            } else {
                strbuf_addch(&sb, *s++);
            }
        }
        json_object_set_new(o, key, json_string(sb.buf));
        strbuf_release(&sb);
    }
    out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return out ? out : xstrdup(params);
}

/* Create the execution for due time `t` of `sc` (in this turn). */
static void sched_fire_now(struct engine *eng, struct sched *sc, int64_t t)
{
    struct workflow *wf = NULL;
    struct exec *ex = NULL;
    struct err err = ERR_INIT;
    char when[64];
    enum fire_status status;
    char *why = NULL; /* a queued due time: why it was queued */
    int known;

    known = fire_state(eng, sc, t, &status, &why, NULL);
    if (known < 0 || (known && status != FIRE_QUEUED)) {
        free(why); /* fired or skipped already, or cannot tell: never twice */
        return;
    }
    if (dag_parse(sc->definition, strlen(sc->definition), &wf, NULL) != 0) {
        log_error(COMP_SCHED, "Schedule '%s': the definition of '%s' no longer parses", sc->name,
                  sc->workflow);
        free(why);
        return;
    }
    if (cron_format_instant(t / 1000, sc->tz, when) != 0)
        snprintf(when, sizeof(when), "%lld", (long long)(t / 1000));
    {
        char *params = params_for_fire(sc->params, when);
        int rc = engine__exec_create(eng, wf, sc->version, params, &ex, &err);
        free(params);
        if (rc != 0) {
            log_error(COMP_SCHED, "Schedule '%s' of '%s' could not fire: %s", sc->name,
                      sc->workflow, err.msg);
            add_pending_fire(eng, sc, t, FIRE_SKIPPED, NULL, err.msg);
            free(why);
            return;
        }
    }
    ex->schedule_id = xstrdup(sc->id);
    ex->schedule_name = xstrdup(sc->name);
    ex->scheduled_for = t;
    ex->scheduled_for_text = xstrdup(when);
    /* With the execution's insert: a queued row turns fired (keeping why). */
    add_pending_fire(eng, sc, t, FIRE_FIRED, ex->id, why);
    free(why);
    {
        int64_t lag = clock_now_ms() - t;
        pthread_mutex_lock(&eng->mu);
        eng->stats.sched_last_lag_ms = lag;
        eng->stats.sched_last_fire_at = clock_now_ms();
        eng->stats.sched_fires++;
        pthread_mutex_unlock(&eng->mu);
        engine__metrics_sched_fire(eng, lag);
        log_info(COMP_SCHED, "Schedule '%s' of '%s' fired for %s: execution %s (lag %lldms)",
                 sc->name, sc->workflow, when, ex->id, (long long)lag);
        if (lag > 1000 && lag < MISFIRE_GRACE_MS)
            log_warn(COMP_SCHED, "Firing lag %.1fs exceeds 1s (schedule '%s')", (double)lag / 1000,
                     sc->name);
    }
    eng->work_now = 1;
}

/* Apply the overlap policy to due time `t`, then fire (or not). */
static void sched_due(struct engine *eng, struct sched *sc, int64_t t)
{
    size_t running = 0;
    struct exec *prev = sched_running(eng, sc->id, &running);
    char when[64], reason[256];

    if (!running || sc->spec.overlap == DAG_OVERLAP_ALLOW) {
        sched_fire_now(eng, sc, t);
        return;
    }
    if (cron_format_instant(t / 1000, sc->tz, when) != 0)
        snprintf(when, sizeof(when), "%lld", (long long)(t / 1000));
    switch (sc->spec.overlap) {
    case DAG_OVERLAP_SKIP:
        snprintf(reason, sizeof(reason), "previous execution %s still running (overlap=skip)",
                 prev->id);
        log_info(COMP_SCHED, "Schedule '%s' skipped %s: %s", sc->name, when, reason);
        engine__metrics_sched_skip(eng);
        if (!fire_recorded(eng, sc, t))
            add_pending_fire(eng, sc, t, FIRE_SKIPPED, NULL, reason);
        return;
    case DAG_OVERLAP_BUFFER_ONE:
        if (sc->buffered)
            log_info(COMP_SCHED, "Schedule '%s' dropped %s: one run is already waiting "
                     "(overlap=bufferOne)", sc->name, when);
        else
            sc->buffered = t;
        return;
    case DAG_OVERLAP_BUFFER_ALL:
        XGROW(sc->queue, sc->queue_alloc, sc->nqueue + 1);
        sc->queue[sc->nqueue++] = t;
        log_info(COMP_SCHED, "Schedule '%s' queued %s behind %s (overlap=bufferAll)", sc->name,
                 when, prev->id);
        return;
    case DAG_OVERLAP_CANCEL_PREVIOUS:
        snprintf(reason, sizeof(reason), "cancelled: schedule '%s' fired again for %s "
                 "(overlap=cancelPrevious)", sc->name, when);
        /* Only runs of live fires: those of a backfill or a catch-up are
         * left to finish (the new run starts beside them). */
        for (struct exec *ex = eng->execs; ex; ex = ex->next)
            if (ex->schedule_id && !strcmp(ex->schedule_id, sc->id) &&
                !exec_status_is_final(ex->status) && !sched_queued_run(eng, sc, ex))
                engine__exec_abort(eng, ex, EXEC_CANCELLED, reason);
        sched_fire_now(eng, sc, t);
        return;
    case DAG_OVERLAP_ALLOW:
        break;
    }
    sched_fire_now(eng, sc, t);
}

/* Put `t` in `sc`'s queue (oldest first) unless it is there: 1 if added. */
static int queue_insert(struct sched *sc, int64_t t)
{
    size_t at;

    for (at = 0; at < sc->nqueue && sc->queue[at] <= t; at++)
        if (sc->queue[at] == t)
            return 0;
    XGROW(sc->queue, sc->queue_alloc, sc->nqueue + 1);
    memmove(sc->queue + at + 1, sc->queue + at, (sc->nqueue - at) * sizeof(*sc->queue));
    sc->queue[at] = t;
    sc->nqueue++;
    return 1;
}

/*
 * Queue due time `t` of a backfill or a catch-up (`why`): it runs once the
 * runs of the schedule before it have ended, in due-time order, whatever
 * the overlap policy says of live fires (it is not skipped, dropped or
 * cancelled); with overlap=allow it does not wait. The queue is in the
 * store: a 'queued' fire row, written with this turn (before a backfill is
 * answered), read back at start or by the node that takes the scheduler
 * over. A due time fired before, or already queued, is not queued again; one
 * recorded as skipped (by a live fire, or by older versions) is, once.
 */
static void sched_enqueue(struct engine *eng, struct sched *sc, int64_t t, const char *why)
{
    enum fire_status status;
    int known;

    if (sc->buffered == t)
        return;
    known = fire_state(eng, sc, t, &status, NULL, NULL);
    if (known < 0 || (known && status == FIRE_FIRED))
        return;
    if (!known || status == FIRE_SKIPPED)
        add_pending_fire(eng, sc, t, FIRE_QUEUED, NULL, why);
    queue_insert(sc, t);
}

/* Start the earliest waiting due time of `sc` once none of its runs is going
 * (with overlap=allow, all of them at once). */
static void sched_drain(struct engine *eng, struct sched *sc)
{
    size_t running = 0;

    while ((sc->buffered || sc->nqueue) &&
           (sc->spec.overlap == DAG_OVERLAP_ALLOW ||
            (sched_running(eng, sc->id, &running), !running))) {
        int64_t t;
        if (sc->buffered && (!sc->nqueue || sc->buffered <= sc->queue[0])) {
            t = sc->buffered;
            sc->buffered = 0;
        } else {
            t = sc->queue[0];
            memmove(sc->queue, sc->queue + 1, (sc->nqueue - 1) * sizeof(*sc->queue));
            sc->nqueue--;
        }
        sched_fire_now(eng, sc, t); /* a time already fired starts nothing: the next one */
    }
}

/* While due times wait for a run to end, the scheduler looks again this often. */
#define SCHED_QUEUE_POLL_MS 100

/* Late due times fired in one turn at most (a per-second schedule whose
 * leader was lost for this long fires the newest 1000 of them). */
#define SCHED_LATE_MAX 1000

/* Fire what is due. Returns the wall-clock ms of the next due time (0: none). */
int64_t engine__sched_tick(struct engine *eng)
{
    int64_t now = clock_now_ms(), soonest = 0;
    /* Due times after the previous tick became due while we were watching;
     * before the first tick, the process start stands for it. */
    int64_t prev_tick = eng->sched->prev_tick ? eng->sched->prev_tick : eng->sched->started_at;
    const struct sched *soonest_sc = NULL;
    size_t active = 0;
    int waiting = 0;

    for (size_t i = 0; i < eng->sched->nscheds; i++) {
        struct sched *sc = &eng->sched->scheds[i];

        if (sc->gone)
            continue;
        /* Buffered and queued fires start once the previous run has ended
         * (those of a backfill even while the schedule is paused or off). */
        sched_drain(eng, sc);
        if (sc->buffered || sc->nqueue)
            waiting = 1;
        if (!sc->spec.enabled || sc->paused)
            continue;
        active++;
        if (sc->next_fire_at && sc->next_fire_at <= now) {
            /* The due times up to now. Those after the previous tick are
             * late (a busy turn, a failover between nodes): they all fire.
             * Those before it were missed (orch down, the schedule paused):
             * the catch-up policy decides, from the newest. */
            size_t cap = sc->spec.catchup == DAG_CATCHUP_ALL   ? (size_t)sc->spec.max_catchup
                         : sc->spec.catchup == DAG_CATCHUP_NONE ? 0
                                                                : 1;
            int64_t *ring = xcalloc(cap ? cap : 1, sizeof(*ring));
            int64_t *late = NULL;
            size_t nring = 0, head = 0, missed = 0, nlate = 0, late_alloc = 0;
            int64_t t = sc->next_fire_at, last = 0;
            while (t && t <= now) {
                if (t <= prev_tick) {
                    missed++;
                    if (cap && nring < cap) {
                        ring[(head + nring) % cap] = t;
                        nring++;
                    } else if (cap) {
                        ring[head] = t;
                        head = (head + 1) % cap;
                    }
                } else if (nlate < SCHED_LATE_MAX) {
                    XGROW(late, late_alloc, nlate + 1);
                    late[nlate++] = t;
                }
                last = t;
                t = sched_next_time(sc, t);
                if (missed > 1000000)
                    break; /* a per-second schedule down for 11 days: enough */
            }
            if (missed)
                log_warn(COMP_SCHED, "Schedule '%s' of '%s' missed %zu fire time%s while orch was "
                         "down (catchup=%s): %zu will run", sc->name, sc->workflow, missed,
                         missed == 1 ? "" : "s", dag_catchup_name(sc->spec.catchup), nring);
            /* Oldest first: the missed ones kept (queued: each runs, one
             * after another, whatever the overlap policy), then the late
             * ones (the overlap policy applies, as to a live fire). */
            for (size_t k = 0; k < nring; k++)
                sched_enqueue(eng, sc, ring[(head + k) % cap], FIRE_REASON_CATCHUP);
            sched_drain(eng, sc);
            for (size_t k = 0; k < nlate; k++)
                sched_due(eng, sc, late[k]);
            free(ring);
            free(late);
            sc->last_fire_at = last;
            sc->next_fire_at = sched_next_time(sc, now);
            sc->dirty = 1;
        }
        if (sc->next_fire_at && (!soonest || sc->next_fire_at < soonest)) {
            soonest = sc->next_fire_at;
            soonest_sc = sc;
        }
        if (sc->buffered || sc->nqueue)
            waiting = 1;
    }
    eng->sched->prev_tick = now;
    pthread_mutex_lock(&eng->mu);
    eng->stats.sched_running = 1;
    eng->stats.sched_last_tick_at = now;
    eng->stats.sched_active = active;
    eng->stats.sched_next_due_at = soonest;
    if (soonest_sc)
        snprintf(eng->stats.sched_next_due, sizeof(eng->stats.sched_next_due), "%.60s/%.60s",
                 soonest_sc->workflow, soonest_sc->name);
    else
        eng->stats.sched_next_due[0] = '\0';
    pthread_mutex_unlock(&eng->mu);
    if (waiting && (!soonest || soonest > now + SCHED_QUEUE_POLL_MS))
        return now + SCHED_QUEUE_POLL_MS;
    return soonest;
}

#define BACKFILL_MAX 1000

/* Every due time of a schedule in (from, until], queued in order: each runs
 * once, whatever the overlap policy for live fires (see sched_enqueue). */
void engine__cmd_backfill(struct engine *eng, struct cmd *c)
{
    struct sched *sc = NULL;
    int64_t t;

    if (!eng->sched->on) {
        c->rc = err_set(&c->err, ERR_CONFLICT, "the scheduler is not running");
        engine__reply_now(eng, c);
        return;
    }
    if (eng->sched->reload) {
        eng->sched->reload = 0;
        engine__sched_sync(eng);
    }
    for (size_t i = 0; i < eng->sched->nscheds; i++)
        if (!strcmp(eng->sched->scheds[i].id, c->exec_id))
            sc = &eng->sched->scheds[i];
    if (!sc) {
        c->rc = err_set(&c->err, ERR_NOT_FOUND, "no schedule '%s'", c->exec_id);
        engine__reply_now(eng, c);
        return;
    }
    for (t = sched_next_time(sc, c->from); t && t <= c->until; t = sched_next_time(sc, t)) {
        if (c->count == BACKFILL_MAX) {
            c->rc = err_set(&c->err, ERR_INVALID,
                            "the window holds more than %d due times: backfill a smaller one",
                            BACKFILL_MAX);
            engine__reply_now(eng, c);
            return;
        }
        c->count++;
    }
    c->count = 0;
    for (t = sched_next_time(sc, c->from); t && t <= c->until; t = sched_next_time(sc, t)) {
        sched_enqueue(eng, sc, t, FIRE_REASON_BACKFILL);
        c->count++;
    }
    /* Another node may hold the scheduler: it reads the queue when told. */
    if (engine__sched_may_fire(eng))
        sched_drain(eng, sc);
    else
        engine__node_notify(eng, NODE_NOTIFY_SCHEDULES);
    log_info(COMP_SCHED, "Schedule '%s' of '%s': backfill of %d due time%s", sc->name,
             sc->workflow, c->count, c->count == 1 ? "" : "s");
    engine__reply_after_commit(eng, c);
}

int engine_post_backfill(struct engine *eng, const char *schedule_id, int64_t from_ms,
                         int64_t until_ms, int *out_count, struct err *err)
{
    struct cmd c;
    memset(&c, 0, sizeof(c));
    c.type = CMD_BACKFILL;
    c.exec_id = schedule_id;
    c.from = from_ms;
    c.until = until_ms;
    engine__post(eng, &c);
    if (c.rc) {
        if (err)
            *err = c.err;
        return c.rc;
    }
    if (out_count)
        *out_count = c.count;
    return 0;
}

/* ------------------------------------------------------------------ commit hook */

static int sched_pending(const struct engine *eng, void *arg)
{
    (void)arg;
    if (eng->sched->npfires)
        return 1;
    for (size_t i = 0; i < eng->sched->nscheds; i++)
        if (eng->sched->scheds[i].dirty)
            return 1;
    return 0;
}

/* Fires of schedules and their state, with the executions they created. */
static int sched_commit(struct engine *eng, void *arg, struct err *err)
{
    int rc;

    (void)arg;
    for (size_t i = 0; i < eng->sched->npfires; i++) {
        rc = store_fire_insert(eng->st, &eng->sched->pfires[i].row, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < eng->sched->nscheds; i++) {
        struct sched *sc = &eng->sched->scheds[i];
        struct schedule_row sr;
        if (!sc->dirty)
            continue;
        memset(&sr, 0, sizeof(sr));
        memcpy(sr.id, sc->id, ID_MAX);
        sr.workflow = sc->workflow;
        sr.name = sc->name;
        sr.spec_hash = sc->spec_hash;
        sr.paused = sc->paused;
        sr.next_fire_at = sc->next_fire_at;
        sr.last_fire_at = sc->last_fire_at;
        sr.created_at = sr.updated_at = clock_now_ms();
        sr.from_api = sc->from_api;
        sr.spec = sc->api_spec;
        if (sc->is_new) {
            rc = store_schedule_upsert(eng->st, &sr, err);
        } else {
            /* Only our part: the API may have changed the spec or paused it. */
            rc = store_schedule_update_state(eng->st, &sr, err);
            if (rc == ERR_NOT_FOUND) {
                sc->gone = 1; /* deleted through the API meanwhile */
                eng->sched->reload = 1;
                rc = 0;
            }
        }
        if (rc)
            return rc;
    }
    return 0;
}

static void sched_committed(struct engine *eng, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < eng->sched->npfires; i++) {
        free(eng->sched->pfires[i].row.schedule_id);
        free(eng->sched->pfires[i].row.reason);
    }
    eng->sched->npfires = 0;
    for (size_t i = 0; i < eng->sched->nscheds; i++) {
        eng->sched->scheds[i].dirty = 0;
        eng->sched->scheds[i].is_new = 0;
    }
}

/* After the executions (a fire names the execution it created). */
static const struct engine_hook sched_hook = {
    .phase = HOOK_AFTER_RUNS,
    .pending = sched_pending,
    .commit = sched_commit,
    .committed = sched_committed,
};

void engine__sched_hooks(struct engine *eng)
{
    engine__hook_add(eng, &sched_hook, NULL);
}

void engine_enable_scheduler(struct engine *eng)
{
    eng->sched->on = 1;
    eng->sched->started_at = clock_now_ms();
    eng->sched->reload = 1;
}

void engine_schedules_changed(struct engine *eng)
{
    eng->sched->reload = 1;
    eng->sched->changed_here = 1; /* the other nodes are told (cluster) */
    engine__wake(eng);
}

