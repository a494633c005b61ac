/*
 * waiting.c - why a task run has not started: "waitingOn" of the API's task
 * runs and of `orch executions show`.
 *
 * Computed from what the store says of the execution (its task runs, their
 * statuses, back-off instants and child executions), its workflow definition
 * (dependencies, the execution's `concurrency`, a forEach task's
 * `maxParallel`) and a few figures the caller gathers (the engine's worker
 * slots, the owner node's lease): no engine state is read here. The first
 * reason that holds, in the order the engine would meet them, is given.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "view.h"

#include "base/banned.h"

/* The task run of workflow task `idx` in d (top-level runs are ordered by idx), or NULL. */
static const struct task_run_row *run_of(const struct exec_detail *d, size_t idx)
{
    if (idx < d->ntasks && d->tasks[idx].idx == (int)idx && !d->tasks[idx].instance)
        return &d->tasks[idx];
    for (size_t i = 0; i < d->ntasks; i++)
        if (d->tasks[i].idx == (int)idx && !d->tasks[i].instance)
            return &d->tasks[i];
    return NULL;
}

/* Instances of forEach task `group` in `status`: from the counts when the
 * detail has them, else from its runs. */
static long long in_group(const struct exec_detail *d, int group, enum task_status status)
{
    long long n = 0;

    if (d->ncounts) {
        for (size_t i = 0; i < d->ncounts; i++)
            if (d->counts[i].group_idx == group && d->counts[i].status == status)
                n += d->counts[i].n;
        return n;
    }
    for (size_t i = 0; i < d->ntasks; i++)
        if (d->tasks[i].instance && d->tasks[i].group_idx == group && d->tasks[i].status == status)
            n++;
    return n;
}

/* Task runs of the execution running now (instances included; a forEach
 * task's own run, which only waits for its instances, is not counted). */
static long long running_in_exec(const struct exec_detail *d, const struct workflow *wf)
{
    long long n = 0;

    for (size_t i = 0; i < d->ntasks; i++) {
        const struct task_run_row *t = &d->tasks[i];
        if (t->status != TASK_RUNNING || t->instance)
            continue;
        if (wf && (size_t)t->idx < wf->ntasks &&
            (wf->tasks[t->idx].for_each || wf->tasks[t->idx].for_each_json))
            continue;
        n++;
    }
    if (d->ncounts) {
        for (size_t i = 0; i < d->ncounts; i++)
            if (d->counts[i].status == TASK_RUNNING)
                n += d->counts[i].n;
    } else {
        for (size_t i = 0; i < d->ntasks; i++)
            if (d->tasks[i].instance && d->tasks[i].status == TASK_RUNNING)
                n++;
    }
    return n;
}

static json_t *reason(const char *why, const char *message)
{
    json_t *o = json_object();
    json_object_set_new(o, "reason", json_string(why));
    json_object_set_new(o, "message", view_text(message, strlen(message)));
    return o;
}

/* The owner node's state, when the caller knows it (cluster only). */
static json_t *owner_reason(const struct exec_detail *d, const struct view_wait *w)
{
    char msg[400], when[40];

    if (w->owner_state == VIEW_OWNER_NONE) {
        json_t *o = reason("node", "waiting for a node to claim the execution");
        return o;
    }
    if (w->owner_state == VIEW_OWNER_EXPIRED) {
        json_t *t = view_instant(w->owner_heartbeat_at), *o;
        snprintf(when, sizeof(when), "%s", json_string_value(t) ? json_string_value(t) : "?");
        json_decref(t);
        snprintf(msg, sizeof(msg),
                 "waiting for its node's lease: node %.128s has not renewed it since %s; "
                 "another node takes the execution over when it expires",
                 d->exec.owner ? d->exec.owner : "?", when);
        o = reason("lease", msg);
        json_object_set_new(o, "node", view_text(d->exec.owner ? d->exec.owner : "",
                                                 d->exec.owner ? strlen(d->exec.owner) : 0));
        json_object_set_new(o, "heartbeatAt", view_instant(w->owner_heartbeat_at));
        return o;
    }
    return NULL;
}

json_t *view_waiting_on(const struct exec_detail *d, size_t i, const struct view_wait *w)
{
    const struct task_run_row *t = &d->tasks[i];
    const struct workflow *wf = w->wf;
    const struct dag_task *task = NULL;
    char msg[512];
    json_t *o;

    if (exec_status_is_final(d->exec.status))
        return NULL;
    if (wf && (size_t)(t->instance ? t->group_idx : t->idx) < wf->ntasks)
        task = &wf->tasks[t->instance ? t->group_idx : t->idx];

    if (t->status == TASK_RUNNING && t->child_id && t->child_id[0]) {
        snprintf(msg, sizeof(msg), "waiting for its child execution %.64s", t->child_id);
        o = reason("child", msg);
        json_object_set_new(o, "childId", json_string(t->child_id));
        return o;
    }
    if (t->status != TASK_PENDING && t->status != TASK_QUEUED)
        return NULL;

    if (t->status == TASK_PENDING && task && !t->instance) {
        json_t *deps = json_array();
        struct strbuf sb;
        size_t n = 0;

        strbuf_init(&sb, 4096);
        for (size_t k = 0; k < task->ndeps; k++) {
            const struct task_run_row *r = run_of(d, task->deps[k]);
            const char *name = wf->tasks[task->deps[k]].name;
            if (r && task_status_is_final(r->status))
                continue;
            json_array_append_new(deps, view_text(name, strlen(name)));
            if (n < 5)
                strbuf_addf(&sb, "%s%s", n ? ", " : "", name);
            n++;
        }
        if (n) {
            if (n > 5)
                strbuf_addf(&sb, " and %zu more", n - 5);
            snprintf(msg, sizeof(msg), "waiting for %s %s", n == 1 ? "dependency" : "dependencies",
                     sb.buf ? sb.buf : "");
            strbuf_release(&sb);
            o = reason("dependency", msg);
            json_object_set_new(o, "dependencies", deps);
            return o;
        }
        strbuf_release(&sb);
        json_decref(deps);
    }

    o = owner_reason(d, w);
    if (o)
        return o;

    if (t->status == TASK_QUEUED && t->available_at > w->now) {
        json_t *until = view_instant(t->available_at);
        snprintf(msg, sizeof(msg), "waiting for its retry back-off until %s (attempt %d failed)",
                 json_string_value(until), t->attempt);
        o = reason("backoff", msg);
        json_object_set_new(o, "until", until);
        return o;
    }
    if (t->instance && task && task->max_parallel > 0) {
        /* maxParallel caps the instances queued or running: a pending one waits
         * while they are at the cap, a queued one while the running ones are. */
        long long running = in_group(d, t->group_idx, TASK_RUNNING);
        long long busy = running + (t->status == TASK_PENDING
                                        ? in_group(d, t->group_idx, TASK_QUEUED)
                                        : 0);
        if (busy >= task->max_parallel) {
            snprintf(msg, sizeof(msg),
                     "waiting for maxParallel of %s: %lld of %d instances queued or running",
                     task->name, busy, task->max_parallel);
            o = reason("maxParallel", msg);
            json_object_set_new(o, "running", json_integer(busy));
            json_object_set_new(o, "maxParallel", json_integer(task->max_parallel));
            return o;
        }
    }
    if (wf && wf->concurrency > 0) {
        long long running = running_in_exec(d, wf);
        if (running >= wf->concurrency) {
            snprintf(msg, sizeof(msg),
                     "waiting for the workflow's concurrency: %lld of %d tasks of this execution "
                     "running",
                     running, wf->concurrency);
            o = reason("concurrency", msg);
            json_object_set_new(o, "running", json_integer(running));
            json_object_set_new(o, "concurrency", json_integer(wf->concurrency));
            return o;
        }
    }
    if (w->pressure && t->status == TASK_QUEUED && (!task || task->type == TASK_COMMAND)) {
        /* Its node starts no new process until the resources are back. */
        snprintf(msg, sizeof(msg), "waiting for the node's back-pressure to end: %.400s",
                 w->pressure);
        return reason("pressure", msg);
    }
    if (w->slots_total > 0) {
        snprintf(msg, sizeof(msg), "waiting for a worker slot (%d of %d busy)", w->slots_busy,
                 w->slots_total);
        o = reason("slot", msg);
        json_object_set_new(o, "busy", json_integer(w->slots_busy));
        json_object_set_new(o, "slots", json_integer(w->slots_total));
        return o;
    }
    return reason("slot", "waiting for a worker slot");
}

void view_set_waiting(json_t *tasks, const struct exec_detail *d, size_t n, int skip_instances,
                      const struct view_wait *w)
{
    size_t k = 0;

    /* The array lists d's first n runs in order (a grouped detail leaves the instances out). */
    for (size_t i = 0; i < d->ntasks && i < n && k < json_array_size(tasks); i++) {
        json_t *why;

        if (skip_instances && d->tasks[i].instance)
            continue;
        why = view_waiting_on(d, i, w);
        if (why)
            json_object_set_new(json_array_get(tasks, k), "waitingOn", why);
        k++;
    }
}

int view_exec_waits(const struct exec_detail *d)
{
    if (exec_status_is_final(d->exec.status))
        return 0;
    for (size_t i = 0; i < d->ntasks; i++)
        if (d->tasks[i].status == TASK_PENDING || d->tasks[i].status == TASK_QUEUED ||
            (d->tasks[i].status == TASK_RUNNING && d->tasks[i].child_id &&
             d->tasks[i].child_id[0]))
            return 1;
    for (size_t i = 0; i < d->ncounts; i++)
        if (d->counts[i].status == TASK_PENDING || d->counts[i].status == TASK_QUEUED)
            return 1;
    return 0;
}

struct workflow *view_exec_workflow(struct store *st, const struct exec_detail *d)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct err err = ERR_INIT;
    char *def = NULL;
    int version = 0;

    if (store_workflow_get(st, d->exec.workflow, d->exec.workflow_version, &def, &version,
                           &err) == 0 &&
        dag_parse(def, strlen(def), &wf, &probs) != 0)
        wf = NULL;
    dag_problems_release(&probs);
    free(def);
    return wf;
}
