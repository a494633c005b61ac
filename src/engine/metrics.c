/*
 * metrics.c - the engine's counters and histograms for /metrics, and their
 * text (engine_metrics_write, engine.h).
 *
 * Updated where the events happen, on the loop's thread, by relaxed atomic
 * adds (base/metrics.h): no lock on the loop's path. A scrape (an HTTP
 * thread) reads them as they are, and the gauges from engine_get_stats()
 * (one short hold of eng->mu, as /v1/health does): it never waits for the
 * loop's turn.
 *
 * The workflow label is bounded by the workflows this engine has seen run,
 * at most ENGINE_METRICS_MAX_WORKFLOWS; later ones are counted under
 * workflow="_other". The table of workflows is written by the loop's thread
 * only: a new slot is filled, then published by a release store of the
 * count, which readers load with acquire; slots are never removed or
 * reused (a deleted workflow keeps its counters until the process ends, as
 * a counter must). The name -> slot index is the loop thread's alone, and
 * an execution keeps its slot (ex->metrics_wf), so a finish costs no lookup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/metrics.h"
#include "base/xalloc.h"
#include "engine_internal.h"

#include "base/banned.h"

#ifndef ENGINE_METRICS_MAX_WORKFLOWS
#define ENGINE_METRICS_MAX_WORKFLOWS 1000
#endif
#define INDEX_SLOTS 2048 /* a power of 2 above twice the maximum */
#define NTYPES      (TASK_WORKFLOW + 1)

struct wf_metrics {
    char *name;
    struct metrics_counter started;
    struct metrics_counter finished[EXEC_STATUS_COUNT];
};

struct engine_metrics {
    /* by workflow (see the top) */
    struct wf_metrics *wfs[ENGINE_METRICS_MAX_WORKFLOWS];
    atomic_size_t nwfs;
    struct wf_metrics other;
    int index[INDEX_SLOTS]; /* 1 + slot, 0 empty: the loop thread's only */
    /* executions and tasks */
    struct metrics_hist exec_duration[EXEC_STATUS_COUNT];
    struct metrics_counter attempts[NTYPES][ATTEMPT_STATUS_COUNT];
    struct metrics_hist task_duration[NTYPES];
    /* the store, the scheduler, the node */
    struct metrics_hist commit;
    struct metrics_counter commit_failures;
    struct metrics_counter sched_fires;
    struct metrics_counter sched_skips;
    struct metrics_hist sched_lag;
    struct metrics_counter taken_over;
};

struct engine_metrics *engine__metrics_new(void)
{
    struct engine_metrics *m = xcalloc(1, sizeof(*m));
    m->other.name = xstrdup("_other");
    return m;
}

void engine__metrics_free(struct engine_metrics *m)
{
    size_t n;

    if (!m)
        return;
    n = atomic_load(&m->nwfs);
    for (size_t i = 0; i < n; i++) {
        free(m->wfs[i]->name);
        free(m->wfs[i]);
    }
    free(m->other.name);
    free(m);
}

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The counters of workflow `name`: its slot, made on first sight. */
static struct wf_metrics *wf_slot(struct engine_metrics *m, const char *name)
{
    size_t n = atomic_load_explicit(&m->nwfs, memory_order_relaxed);
    uint32_t i = name_hash(name) & (INDEX_SLOTS - 1);
    struct wf_metrics *w;

    for (; m->index[i]; i = (i + 1) & (INDEX_SLOTS - 1))
        if (!strcmp(m->wfs[m->index[i] - 1]->name, name))
            return m->wfs[m->index[i] - 1];
    if (n >= ENGINE_METRICS_MAX_WORKFLOWS)
        return &m->other;
    w = xcalloc(1, sizeof(*w));
    w->name = xstrdup(name);
    m->wfs[n] = w;
    m->index[i] = (int)n + 1;
    atomic_store_explicit(&m->nwfs, n + 1, memory_order_release);
    return w;
}

static struct wf_metrics *exec_wf(struct engine *eng, struct exec *ex)
{
    if (!ex->metrics_wf)
        ex->metrics_wf = wf_slot(eng->metrics, ex->wf->name);
    return ex->metrics_wf;
}

void engine__metrics_exec_started(struct engine *eng, struct exec *ex)
{
    metrics_counter_add(&exec_wf(eng, ex)->started, 1);
}

void engine__metrics_exec_finished(struct engine *eng, struct exec *ex)
{
    int64_t since = ex->retried_at ? ex->retried_at : ex->started_at;

    if ((unsigned)ex->status >= EXEC_STATUS_COUNT)
        return;
    metrics_counter_add(&exec_wf(eng, ex)->finished[ex->status], 1);
    metrics_hist_observe_ms(&eng->metrics->exec_duration[ex->status], ex->finished_at - since);
}

void engine__metrics_attempt(struct engine *eng, const struct exec *ex, size_t idx,
                             enum attempt_status ast, int64_t took_ms)
{
    unsigned type = (unsigned)engine__task(ex, idx)->type;

    if (type >= NTYPES || (unsigned)ast >= ATTEMPT_STATUS_COUNT)
        return;
    metrics_counter_add(&eng->metrics->attempts[type][ast], 1);
    metrics_hist_observe_ms(&eng->metrics->task_duration[type], took_ms);
}

void engine__metrics_commit(struct engine *eng, int64_t ns, int ok)
{
    if (ok)
        metrics_hist_observe_ns(&eng->metrics->commit, ns);
    else
        metrics_counter_add(&eng->metrics->commit_failures, 1);
}

void engine__metrics_sched_fire(struct engine *eng, int64_t lag_ms)
{
    metrics_counter_add(&eng->metrics->sched_fires, 1);
    metrics_hist_observe_ms(&eng->metrics->sched_lag, lag_ms);
}

void engine__metrics_sched_skip(struct engine *eng)
{
    metrics_counter_add(&eng->metrics->sched_skips, 1);
}

void engine__metrics_taken_over(struct engine *eng, size_t n)
{
    metrics_counter_add(&eng->metrics->taken_over, n);
}

/* ------------------------------------------------------------------ the text */

static const enum exec_status final_exec[] = {EXEC_SUCCEEDED, EXEC_FAILED, EXEC_CANCELLED,
                                              EXEC_TIMED_OUT};
static const enum attempt_status final_attempt[] = {
    ATTEMPT_SUCCEEDED, ATTEMPT_FAILED, ATTEMPT_TIMED_OUT, ATTEMPT_CANCELLED, ATTEMPT_LOST};
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *type_name(unsigned t)
{
    switch (t) {
    case TASK_COMMAND:
        return "command";
    case TASK_NOOP:
        return "noop";
    case TASK_SLEEP:
        return "sleep";
    case TASK_HTTP:
        return "http";
    default:
        return "workflow";
    }
}

/* One label set into `lb` (reset first). */
static int labels1(struct strbuf *lb, const char *n1, const char *v1)
{
    strbuf_reset(lb);
    return metrics_label(lb, 1, n1, v1);
}

static int labels2(struct strbuf *lb, const char *n1, const char *v1, const char *n2,
                   const char *v2)
{
    int rc = labels1(lb, n1, v1);
    return rc ? rc : metrics_label(lb, 0, n2, v2);
}

static int write_workflows(struct engine_metrics *m, struct strbuf *out, struct strbuf *lb)
{
    size_t n = atomic_load_explicit(&m->nwfs, memory_order_acquire);
    int other = metrics_counter_get(&m->other.started) != 0;
    int rc;

    for (size_t e = 0; e < EXEC_STATUS_COUNT && !other; e++)
        other = metrics_counter_get(&m->other.finished[e]) != 0;
    rc = metrics_family(out, "orch_executions_started_total", "counter",
                        "Executions created by this node (submitted, fired by a schedule, or a "
                        "workflow task's child), by workflow.");
    for (size_t i = 0; !rc && i < n + (size_t)other; i++) {
        const struct wf_metrics *w = i < n ? m->wfs[i] : &m->other;
        rc = labels1(lb, "workflow", w->name);
        if (!rc)
            rc = metrics_sample_u64(out, "orch_executions_started_total", lb->buf,
                                    metrics_counter_get(&w->started));
    }
    if (!rc)
        rc = metrics_family(out, "orch_executions_finished_total", "counter",
                            "Executions this node saw end, by workflow and final status.");
    for (size_t i = 0; !rc && i < n + (size_t)other; i++) {
        const struct wf_metrics *w = i < n ? m->wfs[i] : &m->other;
        for (size_t k = 0; !rc && k < NELEM(final_exec); k++) {
            rc = labels2(lb, "workflow", w->name, "status", exec_status_name(final_exec[k]));
            if (!rc)
                rc = metrics_sample_u64(out, "orch_executions_finished_total", lb->buf,
                                        metrics_counter_get(&w->finished[final_exec[k]]));
        }
    }
    return rc;
}

static int write_tasks(struct engine_metrics *m, struct strbuf *out, struct strbuf *lb)
{
    int rc = metrics_family(out, "orch_execution_duration_seconds", "histogram",
                            "Time from an execution's start (or its retry's) to its end, by "
                            "final status.");
    for (size_t k = 0; !rc && k < NELEM(final_exec); k++) {
        rc = labels1(lb, "status", exec_status_name(final_exec[k]));
        if (!rc)
            rc = metrics_hist_write(out, "orch_execution_duration_seconds", lb->buf,
                                    &m->exec_duration[final_exec[k]]);
    }
    if (!rc)
        rc = metrics_family(out, "orch_task_attempts_total", "counter",
                            "Task attempts that ended, by task type and attempt status.");
    for (unsigned t = 0; !rc && t < NTYPES; t++)
        for (size_t k = 0; !rc && k < NELEM(final_attempt); k++) {
            rc = labels2(lb, "type", type_name(t), "status", attempt_status_name(final_attempt[k]));
            if (!rc)
                rc = metrics_sample_u64(out, "orch_task_attempts_total", lb->buf,
                                        metrics_counter_get(&m->attempts[t][final_attempt[k]]));
        }
    if (!rc)
        rc = metrics_family(out, "orch_task_duration_seconds", "histogram",
                            "Duration of the task attempts that ended, by task type.");
    for (unsigned t = 0; !rc && t < NTYPES; t++) {
        rc = labels1(lb, "type", type_name(t));
        if (!rc)
            rc = metrics_hist_write(out, "orch_task_duration_seconds", lb->buf,
                                    &m->task_duration[t]);
    }
    return rc;
}

/* A gauge or counter family with one sample. */
static int one(struct strbuf *out, const char *name, const char *type, const char *help, double v)
{
    int rc = metrics_family(out, name, type, help);
    return rc ? rc : metrics_sample_f(out, name, NULL, v);
}

static int write_gauges(const struct engine_stats *es, struct strbuf *out)
{
    int rc = 0;

#define ONE(name, type, help, v)                                                                   \
    do {                                                                                           \
        if (!rc)                                                                                   \
            rc = one(out, name, type, help, (double)(v));                                          \
    } while (0)
    ONE("orch_engine_running", "gauge", "1 while the engine's loop runs.", es->running);
    ONE("orch_engine_turns_total", "counter", "Turns of the engine's loop.", es->turns);
    ONE("orch_executions_running", "gauge", "Executions this node is advancing.",
        es->executions_active);
    ONE("orch_queue_depth", "gauge", "Tasks ready to run and waiting for a worker slot.",
        es->tasks_queued);
    ONE("orch_queue_oldest_age_seconds", "gauge",
        "How long the oldest task waiting for a slot has waited (0: none waits).",
        (double)es->oldest_queued_ms / 1000.0);
    ONE("orch_tasks_running", "gauge", "Tasks running on this node (any type).", es->tasks_running);
    ONE("orch_worker_slots", "gauge", "Worker slots (command tasks that may run at once).",
        es->workers_total);
    ONE("orch_worker_slots_busy", "gauge", "Worker slots in use by a task process.",
        es->workers_busy);
    ONE("orch_scheduler_running", "gauge", "1 once the scheduler has looked at its schedules.",
        es->sched_running);
    ONE("orch_scheduler_leader", "gauge",
        "1 while this node fires the schedules (always 1 for a single node).",
        es->cluster ? es->sched_leader : es->sched_running);
    ONE("orch_scheduler_schedules", "gauge", "Enabled, unpaused schedules.", es->sched_active);
    ONE("orch_database_up", "gauge", "0 while the engine's database connection is lost.",
        es->db_ok);
    ONE("orch_disk_full", "gauge", "1 while commits fail for lack of disk space.", es->disk_full);
    ONE("orch_node_cluster", "gauge", "1 for a node of several on PostgreSQL.", es->cluster);
    ONE("orch_node_last_heartbeat_timestamp_seconds", "gauge",
        "When this node last renewed its lease (0: not yet).",
        (double)es->last_heartbeat_at / 1000.0);
    ONE("orch_executions_claimed_total", "counter",
        "Executions this node claimed: queued for any node, or taken over from dead nodes.",
        es->executions_claimed);
    ONE("orch_executions_lost_total", "counter",
        "Executions another node took from this one (its lease had expired).", es->executions_lost);
#undef ONE
    return rc;
}

int engine_metrics_write(struct engine *eng, struct strbuf *out)
{
    struct engine_metrics *m = eng->metrics;
    struct engine_stats es;
    struct strbuf lb = STRBUF_INIT;
    int rc;

    engine_get_stats(eng, &es);
    rc = write_workflows(m, out, &lb);
    if (!rc)
        rc = write_tasks(m, out, &lb);
    if (!rc)
        rc = write_gauges(&es, out);
    if (!rc)
        rc = metrics_family(out, "orch_executions_taken_over_total", "counter",
                            "Executions taken over from nodes whose lease expired.");
    if (!rc)
        rc = metrics_sample_u64(out, "orch_executions_taken_over_total", NULL,
                                metrics_counter_get(&m->taken_over));
    if (!rc)
        rc = metrics_family(out, "orch_scheduler_fires_total", "counter",
                            "Executions the scheduler fired.");
    if (!rc)
        rc = metrics_sample_u64(out, "orch_scheduler_fires_total", NULL,
                                metrics_counter_get(&m->sched_fires));
    if (!rc)
        rc = metrics_family(out, "orch_scheduler_skips_total", "counter",
                            "Due times the scheduler skipped (the overlap policy).");
    if (!rc)
        rc = metrics_sample_u64(out, "orch_scheduler_skips_total", NULL,
                                metrics_counter_get(&m->sched_skips));
    if (!rc)
        rc = metrics_family(out, "orch_scheduler_fire_lag_seconds", "histogram",
                            "How late a fire was after its due time.");
    if (!rc)
        rc = metrics_hist_write(out, "orch_scheduler_fire_lag_seconds", NULL, &m->sched_lag);
    if (!rc)
        rc = metrics_family(out, "orch_store_commit_duration_seconds", "histogram",
                            "The engine's write transactions, from begin to commit.");
    if (!rc)
        rc = metrics_hist_write(out, "orch_store_commit_duration_seconds", NULL, &m->commit);
    if (!rc)
        rc = metrics_family(out, "orch_store_commit_failures_total", "counter",
                            "The engine's write transactions that failed.");
    if (!rc)
        rc = metrics_sample_u64(out, "orch_store_commit_failures_total", NULL,
                                metrics_counter_get(&m->commit_failures));
    strbuf_release(&lb);
    return rc;
}
