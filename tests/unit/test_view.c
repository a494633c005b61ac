/* Unit tests for src/view: the layered graph layout (layout.c) and waitingOn (waiting.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dag/dag.h"
#include "view/view.h"

/* No two nodes overlap, every edge goes down at least one layer and its
 * points go down from the source's bottom to the target's top. */
static void check_layout(const struct layout_input *in, const struct layout *l)
{
    assert_int_equal(l->n, in->n);
    assert_int_equal(l->nedges, in->nedges);
    for (size_t i = 0; i < l->n; i++) {
        const struct layout_node *a = &l->nodes[i];
        assert_true(a->x >= 0 && a->y >= 0);
        assert_true(a->x + a->w <= l->width && a->y + a->h <= l->height);
        for (size_t j = i + 1; j < l->n; j++) {
            const struct layout_node *b = &l->nodes[j];
            int apart = a->x + a->w <= b->x || b->x + b->w <= a->x || a->y + a->h <= b->y ||
                        b->y + b->h <= a->y;
            if (!apart)
                fail_msg("nodes %zu and %zu overlap", i, j);
        }
    }
    for (size_t e = 0; e < l->nedges; e++) {
        const struct layout_edge *le = &l->edges[e];
        const struct layout_node *s = &l->nodes[le->from], *t = &l->nodes[le->to];
        assert_true(t->layer > s->layer);
        assert_true(le->npoints >= 2);
        assert_true(le->points[0][1] == s->y + s->h);
        assert_true(le->points[le->npoints - 1][1] == t->y);
        for (size_t k = 1; k < le->npoints; k++)
            assert_true(le->points[k][1] >= le->points[k - 1][1]);
    }
}

static void test_layers_and_bends(void **state)
{
    /* a -> b -> d, a -> c -> d, a -> d (spans two layers: one bend) */
    struct layout_edge_in edges[] = {{0, 1}, {1, 3}, {0, 2}, {2, 3}, {0, 3}};
    struct layout_input in = {4, NULL, edges, 5};
    struct layout l;
    struct err err = ERR_INIT;
    (void)state;

    assert_int_equal(view_layout(&in, &l, &err), 0);
    assert_int_equal(l.nodes[0].layer, 0);
    assert_int_equal(l.nodes[1].layer, 1);
    assert_int_equal(l.nodes[2].layer, 1);
    assert_int_equal(l.nodes[3].layer, 2);
    assert_int_equal(l.edges[4].npoints, 3);
    assert_int_equal(l.dummies, 1);
    check_layout(&in, &l);
    view_layout_release(&l);
}

static void test_crossings_reduced(void **state)
{
    /* Two parents in order (0, 1), children listed crosswise: 0 -> 3, 1 -> 2.
     * In input order the edges cross; the sweeps untangle them. */
    struct layout_edge_in edges[] = {{0, 3}, {1, 2}, {0, 5}, {1, 4}};
    struct layout_input in = {6, NULL, edges, 4};
    struct layout l;
    struct err err = ERR_INIT;
    (void)state;

    assert_int_equal(view_layout(&in, &l, &err), 0);
    check_layout(&in, &l);
    assert_int_equal(view_layout_crossings(&l), 0);
    view_layout_release(&l);
}

static void test_errors(void **state)
{
    struct layout_edge_in cycle[] = {{0, 1}, {1, 2}, {2, 0}};
    struct layout_edge_in loop[] = {{1, 1}};
    struct layout_edge_in outside[] = {{0, 7}};
    struct layout_input in = {3, NULL, cycle, 3};
    struct layout l;
    struct err err = ERR_INIT;
    (void)state;

    assert_int_equal(view_layout(&in, &l, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "cycle"));
    assert_null(l.nodes);
    in.edges = loop;
    in.nedges = 1;
    assert_int_equal(view_layout(&in, &l, &err), ERR_INVALID);
    in.edges = outside;
    assert_int_equal(view_layout(&in, &l, &err), ERR_INVALID);
    /* empty graph */
    in.n = 0;
    in.nedges = 0;
    assert_int_equal(view_layout(&in, &l, &err), 0);
    assert_int_equal(l.n, 0);
    view_layout_release(&l);
}

static void test_large_dag(void **state)
{
    /* 1,000 nodes of varied sizes, each with up to 3 parents among the 60 before it:
     * long edges too, so bends are added. */
    enum { N = 1000 };
    struct layout_size *sizes = calloc(N, sizeof(*sizes));
    struct layout_edge_in *edges = calloc(3 * N, sizeof(*edges));
    struct layout_input in;
    struct layout l;
    struct err err = ERR_INIT;
    size_t ne = 0;
    unsigned seed = 7;
    (void)state;

    for (size_t v = 0; v < N; v++) {
        sizes[v].w = 96 + (double)(v % 7) * 20;
        sizes[v].h = v % 5 ? 36 : 52;
        for (int k = 0; k < 3 && v > 0; k++) {
            size_t back;
            seed = seed * 1103515245u + 12345u;
            back = 1 + (seed >> 8) % (v < 60 ? v : 60);
            if (k && edges[ne - 1].from == v - back)
                continue;
            edges[ne].from = v - back;
            edges[ne].to = v;
            ne++;
        }
    }
    in.n = N;
    in.sizes = sizes;
    in.edges = edges;
    in.nedges = ne;
    assert_int_equal(view_layout(&in, &l, &err), 0);
    check_layout(&in, &l);
    assert_true(l.dummies > 0);
    view_layout_release(&l);
    free(sizes);
    free(edges);
}

/* ------------------------------------------------------------------ waitingOn */

static struct workflow *parse(const char *json)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    if (dag_parse(json, strlen(json), &wf, &probs))
        fail_msg("cannot parse: %s", probs.n ? probs.items[0].message : "?");
    dag_problems_release(&probs);
    return wf;
}

static const char *reason_of(const json_t *w)
{
    return json_string_value(json_object_get(w, "reason"));
}

static void test_waiting_on(void **state)
{
    struct workflow *wf = parse(
        "{\"name\": \"w\", \"concurrency\": 2, \"tasks\": ["
        "{\"name\": \"a\", \"command\": \"true\"},"
        "{\"name\": \"b\", \"command\": \"true\", \"dependsOn\": [\"a\"]},"
        "{\"name\": \"c\", \"command\": \"true\"},"
        "{\"name\": \"d\", \"command\": \"true\"},"
        "{\"name\": \"e\", \"forEach\": [1, 2, 3], \"maxParallel\": 1, \"command\": \"true\"}]}");
    struct task_run_row runs[8];
    struct exec_detail d;
    struct view_wait w;
    json_t *j;
    char child[] = "ex_0000000000000001", owner[] = "node-1";
    (void)state;

    memset(&d, 0, sizeof(d));
    memset(runs, 0, sizeof(runs));
    for (int i = 0; i < 5; i++) {
        runs[i].idx = i;
        runs[i].name = wf->tasks[i].name;
    }
    runs[0].status = TASK_RUNNING;
    runs[1].status = TASK_PENDING;
    runs[2].status = TASK_QUEUED;
    runs[3].status = TASK_QUEUED;
    runs[3].available_at = 5000;
    runs[3].attempt = 1;
    runs[4].status = TASK_RUNNING;
    for (int k = 0; k < 3; k++) {
        runs[5 + k].idx = 5 + k;
        runs[5 + k].name = wf->tasks[4].name;
        runs[5 + k].instance = 1;
        runs[5 + k].group_idx = 4;
        runs[5 + k].item_index = k;
        runs[5 + k].status = k == 0 ? TASK_RUNNING : TASK_PENDING;
    }
    d.exec.status = EXEC_RUNNING;
    d.tasks = runs;
    d.ntasks = 8;
    memset(&w, 0, sizeof(w));
    w.wf = wf;
    w.now = 1000;
    w.slots_busy = 3;
    w.slots_total = 4;

    assert_null(view_waiting_on(&d, 0, &w)); /* running, no child */
    j = view_waiting_on(&d, 1, &w);
    assert_string_equal(reason_of(j), "dependency");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        "waiting for dependency a");
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "dependencies"), 0)),
                        "a");
    json_decref(j);
    /* a and one instance of e run (e itself only waits for its instances): 2 of 2 */
    j = view_waiting_on(&d, 2, &w);
    assert_string_equal(reason_of(j), "concurrency");
    assert_int_equal(json_integer_value(json_object_get(j, "running")), 2);
    json_decref(j);
    j = view_waiting_on(&d, 3, &w);
    assert_string_equal(reason_of(j), "backoff");
    assert_string_equal(json_string_value(json_object_get(j, "until")),
                        "1970-01-01T00:00:05.000Z");
    json_decref(j);
    j = view_waiting_on(&d, 6, &w);
    assert_string_equal(reason_of(j), "maxParallel");
    json_decref(j);
    /* below the workflow's concurrency: a worker slot */
    runs[0].status = TASK_SUCCEEDED;
    j = view_waiting_on(&d, 2, &w);
    assert_string_equal(reason_of(j), "slot");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        "waiting for a worker slot (3 of 4 busy)");
    json_decref(j);
    /* b's dependency is done: no longer "dependency" */
    j = view_waiting_on(&d, 1, &w);
    assert_string_equal(reason_of(j), "slot");
    json_decref(j);
    /* a workflow task whose child runs */
    runs[0].status = TASK_RUNNING;
    runs[0].child_id = child;
    j = view_waiting_on(&d, 0, &w);
    assert_string_equal(reason_of(j), "child");
    assert_string_equal(json_string_value(json_object_get(j, "childId")), child);
    json_decref(j);
    /* cluster: the owner's lease, no owner */
    d.exec.owner = owner;
    w.owner_state = VIEW_OWNER_EXPIRED;
    w.owner_heartbeat_at = 500;
    j = view_waiting_on(&d, 2, &w);
    assert_string_equal(reason_of(j), "lease");
    assert_string_equal(json_string_value(json_object_get(j, "node")), "node-1");
    json_decref(j);
    w.owner_state = VIEW_OWNER_NONE;
    j = view_waiting_on(&d, 2, &w);
    assert_string_equal(reason_of(j), "node");
    json_decref(j);
    /* view_set_waiting fills an array of views; a final execution waits for nothing */
    w.owner_state = VIEW_OWNER_UNKNOWN;
    j = json_array();
    for (int i = 0; i < 8; i++)
        json_array_append_new(j, json_object());
    view_set_waiting(j, &d, 8, 0, &w);
    assert_null(json_object_get(json_array_get(j, 4), "waitingOn"));
    assert_string_equal(reason_of(json_object_get(json_array_get(j, 1), "waitingOn")),
                        "dependency");
    assert_string_equal(reason_of(json_object_get(json_array_get(j, 6), "waitingOn")),
                        "maxParallel");
    json_decref(j);
    assert_true(view_exec_waits(&d));
    d.exec.status = EXEC_CANCELLED;
    assert_false(view_exec_waits(&d));
    assert_null(view_waiting_on(&d, 1, &w));
    /* without the definition: no dependency names, still a reason */
    d.exec.status = EXEC_RUNNING;
    w.wf = NULL;
    j = view_waiting_on(&d, 1, &w);
    assert_string_equal(reason_of(j), "slot");
    json_decref(j);
    workflow_free(wf);
}

/* Back-pressure: a queued command task waits on it; a pending one still on its
 * dependency, an HTTP task (no process) on a slot. */
static void test_waiting_on_pressure(void **state)
{
    struct workflow *wf = parse(
        "{\"name\": \"w\", \"tasks\": ["
        "{\"name\": \"a\", \"command\": \"true\"},"
        "{\"name\": \"b\", \"command\": \"true\", \"dependsOn\": [\"a\"]},"
        "{\"name\": \"h\", \"type\": \"http\", \"url\": \"http://x/\"}]}");
    struct task_run_row runs[3];
    struct exec_detail d;
    struct view_wait w;
    json_t *j;
    (void)state;

    assert_non_null(wf);
    memset(&d, 0, sizeof(d));
    memset(runs, 0, sizeof(runs));
    for (int i = 0; i < 3; i++) {
        runs[i].idx = i;
        runs[i].name = wf->tasks[i].name;
        runs[i].status = TASK_QUEUED;
    }
    runs[1].status = TASK_PENDING;
    d.exec.status = EXEC_RUNNING;
    d.tasks = runs;
    d.ntasks = 3;
    memset(&w, 0, sizeof(w));
    w.wf = wf;
    w.now = 1000;
    w.slots_total = 4;
    w.pressure = "memory usage 93% is above the high-water mark 90%";

    j = view_waiting_on(&d, 0, &w);
    assert_string_equal(reason_of(j), "pressure");
    assert_string_equal(json_string_value(json_object_get(j, "message")),
                        "waiting for the node's back-pressure to end: memory usage 93% is above "
                        "the high-water mark 90%");
    json_decref(j);
    j = view_waiting_on(&d, 1, &w);
    assert_string_equal(reason_of(j), "dependency");
    json_decref(j);
    j = view_waiting_on(&d, 2, &w);
    assert_string_equal(reason_of(j), "slot");
    json_decref(j);
    /* without the definition the task's type is unknown: the node's state is told */
    w.wf = NULL;
    j = view_waiting_on(&d, 0, &w);
    assert_string_equal(reason_of(j), "pressure");
    json_decref(j);
    /* none: a worker slot */
    w.wf = wf;
    w.pressure = NULL;
    j = view_waiting_on(&d, 0, &w);
    assert_string_equal(reason_of(j), "slot");
    json_decref(j);
    workflow_free(wf);
}

static void test_workflow_graph(void **state)
{
    struct workflow *wf = parse(
        "{\"name\": \"g\", \"tasks\": ["
        "{\"name\": \"extract\", \"command\": \"true\"},"
        "{\"name\": \"fan\", \"forEach\": [1, 2], \"command\": \"true\", \"dependsOn\": "
        "[\"extract\"]}]}");
    struct err err = ERR_INIT;
    json_t *g = view_workflow_graph(wf, NULL, &err), *n;
    (void)state;

    assert_non_null(g);
    assert_int_equal(json_array_size(json_object_get(g, "nodes")), 2);
    n = json_array_get(json_object_get(g, "nodes"), 1);
    assert_true(json_is_true(json_object_get(n, "group")));
    assert_int_equal(json_integer_value(json_object_get(n, "layer")), 1);
    assert_null(json_object_get(n, "status"));
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(g, "edges"), 0), "from")),
        "extract");
    json_decref(g);
    workflow_free(wf);
}

/* queuedAt of a task run and of each attempt: ISO 8601, or null when not recorded. */
static void test_queued_at_shown(void **state)
{
    struct task_run_row run;
    struct attempt_row atts[2];
    struct exec_detail d;
    json_t *j, *a;
    (void)state;

    memset(&run, 0, sizeof(run));
    memset(atts, 0, sizeof(atts));
    memset(&d, 0, sizeof(d));
    run.name = (char *)"load";
    run.status = TASK_QUEUED;
    run.attempt = 2;
    run.queued_at = 1700000002000; /* the back-off's end */
    atts[0].number = 1;
    atts[0].status = ATTEMPT_FAILED;
    atts[0].queued_at = 1700000000000;
    atts[0].started_at = 1700000000250;
    atts[0].finished_at = 1700000001000;
    atts[0].exit_code = 1;
    atts[1].number = 2;
    atts[1].status = ATTEMPT_RUNNING;
    atts[1].started_at = 1700000002000;
    atts[1].exit_code = -1;
    d.tasks = &run;
    d.ntasks = 1;
    d.attempts = atts;
    d.nattempts = 2;
    j = view_task_run(&d, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "queuedAt")),
                        "2023-11-14T22:13:22.000Z");
    a = json_object_get(j, "attempts");
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "queuedAt")),
                        "2023-11-14T22:13:20.000Z");
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "startedAt")),
                        "2023-11-14T22:13:20.250Z");
    assert_true(json_is_null(json_object_get(json_array_get(a, 1), "queuedAt")));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers_and_bends),  cmocka_unit_test(test_crossings_reduced),
        cmocka_unit_test(test_errors),            cmocka_unit_test(test_large_dag),
        cmocka_unit_test(test_waiting_on),
        cmocka_unit_test(test_waiting_on_pressure),        cmocka_unit_test(test_workflow_graph),
        cmocka_unit_test(test_queued_at_shown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
