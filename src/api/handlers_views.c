/*
 * handlers_views.c - what the web pages draw, for any client: the laid-out
 * graph of a workflow (GET /v1/workflows/{name}/graph), its versions
 * (GET /v1/workflows/{name}/versions), executions per hour
 * (GET /v1/stats/executions), and waitingOn of task runs (api__add_waiting,
 * used by the execution handlers).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "base/clock.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "engine/engine.h"
#include "engine/monitor.h"
#include "view/view.h"

#include "base/banned.h"

#define HOUR_MS         3600000LL
#define STATS_HOURS_MAX (24 * 7)
#define VERSIONS_MAX    1000 /* newest versions listed */

/* Parse version `version` (0 = newest) of `name` from `st`; NULL after replying. */
static struct workflow *load_workflow(struct api_request *req, struct store *st, const char *name,
                                      int version, int *out_version)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct err err = ERR_INIT;
    struct workflow *wf = NULL;
    char *def = NULL;

    if (store_workflow_get(st, name, version, &def, out_version, &err)) {
        api__reply_err(req, &err);
        return NULL;
    }
    if (dag_parse(def, strlen(def), &wf, &probs)) {
        api__reply_error(req, 500, NULL, "the stored definition of %s version %d does not parse",
                         name, *out_version);
        wf = NULL;
    }
    dag_problems_release(&probs);
    free(def);
    return wf;
}

/* ------------------------------------------------------------------ waitingOn */

void api__add_waiting(struct api_request *req, struct store *rd, const struct exec_detail *d,
                      json_t *tasks, size_t n, int skip_instances)
{
    struct engine_stats es;
    struct engine_monitor_state ms;
    struct view_wait w;
    struct workflow *wf;
    struct err err = ERR_INIT;

    if (!tasks || !view_exec_waits(d))
        return;
    memset(&w, 0, sizeof(w));
    w.now = clock_now_ms();
    /* The definition gives the dependencies, concurrency and maxParallel. */
    w.wf = wf = view_exec_workflow(rd, d);
    engine_get_stats(api__engine(req), &es);
    w.slots_busy = es.workers_busy;
    w.slots_total = es.workers_total;
    engine_monitor_get(api__engine(req), &ms);
    if (ms.pressure && (!es.cluster || (d->exec.owner && api__node(req) &&
                                        !strcmp(d->exec.owner, api__node(req)))))
        w.pressure = ms.reason;
    if (es.cluster) {
        struct node_row *nodes = NULL;
        size_t nn = 0;
        w.owner_state = d->exec.owner && d->exec.owner[0] ? VIEW_OWNER_UNKNOWN : VIEW_OWNER_NONE;
        if (w.owner_state == VIEW_OWNER_UNKNOWN &&
            store_nodes_list(rd, &nodes, &nn, &err) == 0) {
            for (size_t i = 0; i < nn; i++) {
                if (strcmp(nodes[i].id, d->exec.owner))
                    continue;
                w.owner_heartbeat_at = nodes[i].heartbeat_at;
                w.owner_state = nodes[i].stopped_at ||
                                        nodes[i].db_now - nodes[i].heartbeat_at >
                                            api__lease_ms(req)
                                    ? VIEW_OWNER_EXPIRED
                                    : VIEW_OWNER_ALIVE;
            }
            node_rows_free(nodes, nn);
        }
    }
    view_set_waiting(tasks, d, n, skip_instances, &w);
    workflow_free(wf);
}

/* ------------------------------------------------------------------ graph */

/* GET /v1/workflows/{name}/graph?version=&execution= */
void api__workflows_graph(struct api_request *req)
{
    static const char *const args[] = {"version", "execution", NULL};
    const char *name = req->params.values[0];
    const char *v = api__query(req, "version"), *exec_id = api__query(req, "execution");
    struct task_page top = {-1, -1, 1, NULL, 0};
    struct exec_detail *d = NULL;
    struct err err = ERR_INIT;
    struct workflow *wf;
    struct store *rd;
    int want = 0, version = 0;
    json_t *g;

    if (api__query_check(req, args))
        return;
    if (v && (api__parse_uint(v, 1 << 30, &want) || want < 1)) {
        api__reply_error(req, 400, NULL, "invalid 'version': expected a positive integer");
        return;
    }
    if (exec_id && !api__valid_exec_id(exec_id)) {
        api__reply_error(req, 400, NULL, "invalid 'execution': expected an execution id (ex_...)");
        return;
    }
    rd = api__workflow_read_store(req, name);
    if (!rd)
        return;
    if (exec_id) {
        if (store_execution_page(rd, exec_id, &top, &d, &err)) {
            api__reply_err(req, &err);
            return;
        }
        if (strcmp(d->exec.workflow, name)) {
            api__reply_error(req, 404, NULL, "execution %s is not one of workflow '%s'", exec_id,
                             name);
            exec_detail_free(d);
            return;
        }
        if (want && want != d->exec.workflow_version) {
            api__reply_error(req, 400, NULL,
                             "execution %s ran version %d of '%s', not version %d", exec_id,
                             d->exec.workflow_version, name, want);
            exec_detail_free(d);
            return;
        }
        want = d->exec.workflow_version; /* the version it ran */
    }
    wf = load_workflow(req, rd, name, want, &version);
    if (!wf) {
        exec_detail_free(d);
        return;
    }
    g = view_workflow_graph(wf, d, &err);
    if (!g) {
        api__reply_error(req, 500, NULL, "cannot lay out workflow '%s': %s", name, err.msg);
    } else {
        json_object_set_new(g, "version", json_integer(version));
        if (d)
            json_object_set_new(g, "execution", json_string(d->exec.id));
        api__reply_json(req, 200, g);
    }
    workflow_free(wf);
    exec_detail_free(d);
}

/* ------------------------------------------------------------------ versions */

/* GET /v1/workflows/{name}/versions: newest first. */
void api__workflows_versions(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    const char *name = req->params.values[0];
    struct err err = ERR_INIT;
    struct store *rd;
    char *def = NULL;
    int newest = 0;
    int64_t created = 0;
    json_t *list, *o;

    if (api__query_check(req, no_args))
        return;
    rd = api__workflow_read_store(req, name);
    if (!rd)
        return;
    if (store_workflow_get_at(rd, name, 0, &def, &newest, &created, &err)) {
        api__reply_err(req, &err);
        return;
    }
    free(def);
    list = json_array();
    for (int v = newest; v >= 1 && newest - v < VERSIONS_MAX; v--) {
        json_t *e;
        int got = 0;
        def = NULL;
        created = 0;
        if (store_workflow_get_at(rd, name, v, &def, &got, &created, &err)) {
            if (err.code == ERR_NOT_FOUND) {
                err = (struct err)ERR_INIT;
                continue;
            }
            json_decref(list);
            api__reply_err(req, &err);
            return;
        }
        free(def);
        e = json_object();
        json_object_set_new(e, "version", json_integer(got));
        json_object_set_new(e, "createdAt", view_instant(created));
        json_array_append_new(list, e);
    }
    o = json_object();
    json_object_set_new(o, "workflow", json_string(name));
    json_object_set_new(o, "versions", list);
    api__reply_json(req, 200, o);
}

/* ------------------------------------------------------------------ stats */

/* GET /v1/stats/executions?hours=24: executions created per hour and status. */
void api__stats_executions(struct api_request *req)
{
    static const char *const args[] = {"hours", NULL};
    const char *v = api__query(req, "hours");
    struct exec_hour_count *rows = NULL;
    struct err err = ERR_INIT;
    struct store *rd;
    size_t nrows = 0, r = 0;
    int hours = 24;
    int64_t first;
    json_t *list, *o;

    if (api__query_check(req, args))
        return;
    if (v && (api__parse_uint(v, STATS_HOURS_MAX, &hours) || hours < 1)) {
        api__reply_error(req, 400, NULL, "invalid 'hours': expected 1 to %d", STATS_HOURS_MAX);
        return;
    }
    rd = api__read_store(req);
    if (!rd)
        return;
    first = (clock_now_ms() / HOUR_MS - (hours - 1)) * HOUR_MS;
    /* A read of the counts the store keeps per hour and status (at most
     * hours x 6 rows): nothing to cache, and every node reads the same. */
    if (store_executions_hourly(rd, first, &rows, &nrows, &err)) {
        api__reply_err(req, &err);
        return;
    }
    list = json_array();
    for (int h = 0; h < hours; h++) {
        int64_t start = first + (int64_t)h * HOUR_MS;
        json_t *e = json_object(), *counts = json_object();
        int64_t total = 0;
        for (int s = 0; s < EXEC_STATUS_COUNT; s++)
            json_object_set_new(counts, exec_status_name((enum exec_status)s), json_integer(0));
        for (; r < nrows && rows[r].hour < start + HOUR_MS; r++) {
            if (rows[r].hour < start)
                continue;
            json_object_set_new(counts, exec_status_name(rows[r].status),
                                json_integer((json_int_t)rows[r].n));
            total += rows[r].n;
        }
        json_object_set_new(e, "start", view_instant(start));
        json_object_set_new(e, "total", json_integer((json_int_t)total));
        json_object_set_new(e, "counts", counts);
        json_array_append_new(list, e);
    }
    free(rows);
    o = json_object();
    json_object_set_new(o, "hours", list);
    api__reply_json(req, 200, o);
}
