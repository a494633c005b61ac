/*
 * dag_graph.c - pass 2: task names and dependencies as a graph.
 *
 * Edges point from a task to the tasks it depends on (u -> v when v is in
 * u's dependsOn), and cycle messages follow them: "cycle: a -> b -> a" means
 * a depends on b and b on a.
 *
 * Everything here is O((n + e) log n) in tasks and edges and iterative, so a
 * 100000-task chain neither takes quadratic time nor overflows the stack.
 * Names are found by binary search in a sorted copy rather than a hash
 * table, so no input can force collisions.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag.h"
#include "dag_internal.h"

#include "base/banned.h"

#define NONE SIZE_MAX

/* A cycle longer than this is shown as its first and last tasks around "...". */
#define CYCLE_SHOW_MAX 16

struct name_ent {
    const char *name;
    size_t idx;
};

static int cmp_name_ent(const void *a, const void *b)
{
    const struct name_ent *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c)
        return c;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The first task (lowest index) called `name`, or NONE. */
static size_t find_name(const struct name_ent *sorted, size_t m, const char *name)
{
    size_t lo = 0, hi = m;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(sorted[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m && !strcmp(sorted[lo].name, name))
        return sorted[lo].idx;
    return NONE;
}

static const char *task_label(const struct workflow *wf, size_t i)
{
    return wf->tasks[i].name ? wf->tasks[i].name : "?";
}

static void report_duplicates(struct dag__parser *p, const struct name_ent *sorted, size_t m)
{
    struct workflow *wf = p->wf;
    size_t *first = xmalloc(wf->ntasks * sizeof(*first));
    size_t i, run = 0;

    for (i = 0; i < wf->ntasks; i++)
        first[i] = NONE;
    for (i = 1; i < m; i++) {
        if (strcmp(sorted[i].name, sorted[run].name))
            run = i;
        else
            first[sorted[i].idx] = sorted[run].idx;
    }
    /* Reported in document order, not in the sorted order they were found in. */
    for (i = 0; i < wf->ntasks; i++) {
        struct dag__path tasks = {NULL, "tasks", 0};
        struct dag__path task = {&tasks, NULL, i};
        struct dag__path name = {&task, "name", 0};
        if (first[i] != NONE)
            dag__problem(p, &name, 0, 0, "duplicate task name '%.*s%s' (also $.tasks[%zu])",
                         DAG__Q(wf->tasks[i].name), first[i]);
    }
    free(first);
}

static void unknown_dep(struct dag__parser *p, const struct dag__path *at, const char *name,
                        const char *const *cands, size_t n, const char *self)
{
    const char *sug = NULL;

    if (!dag__problems_full(p))
        sug = dag__suggest(p, name, cands, n, self);
    if (sug)
        dag__problem(p, at, 0, 0, "unknown task '%.*s%s' in dependsOn (did you mean '%s'?)",
                     DAG__Q(name), sug);
    else
        dag__problem(p, at, 0, 0, "unknown task '%.*s%s' in dependsOn", DAG__Q(name));
}

/* Turn each task's dependsOn names into wf->tasks[].deps, reporting bad entries. */
static void resolve_deps(struct dag__parser *p, const struct name_ent *sorted, size_t m)
{
    struct workflow *wf = p->wf;
    size_t n = wf->ntasks;
    const char **cands = xmalloc(n * sizeof(*cands));
    size_t *seen_by = xmalloc(n * sizeof(*seen_by)); /* last task whose list named it */
    size_t i, k;

    for (i = 0; i < n; i++) {
        cands[i] = wf->tasks[i].name;
        seen_by[i] = NONE;
    }
    for (i = 0; i < n; i++) {
        struct dag_task *t = &wf->tasks[i];
        struct dag__task_refs *r = &p->refs[i];
        struct dag__path tasks = {NULL, "tasks", 0};
        struct dag__path task = {&tasks, NULL, i};
        struct dag__path deps = {&task, "dependsOn", 0};

        t->deps = xmalloc(r->n * sizeof(*t->deps));
        for (k = 0; k < r->n; k++) {
            struct dag__path at = {&deps, NULL, r->refs[k].pos};
            const char *name = r->refs[k].name;
            size_t j = find_name(sorted, m, name);

            if (j == NONE) {
                unknown_dep(p, &at, name, cands, n, t->name);
                r->lost = 1;
            } else if (j == i)
                dag__problem(p, &at, 0, 0, "task '%.*s%s' depends on itself", DAG__Q(name));
            else if (seen_by[j] == i)
                dag__problem(p, &at, 0, 0, "duplicate dependency '%.*s%s' in dependsOn",
                             DAG__Q(name));
            else {
                seen_by[j] = i;
                t->deps[t->ndeps++] = j;
            }
        }
    }
    free(seen_by);
    free(cands);
}

static void fill_children(struct workflow *wf)
{
    size_t n = wf->ntasks;
    size_t i, k;

    for (i = 0; i < n; i++) {
        for (k = 0; k < wf->tasks[i].ndeps; k++)
            wf->tasks[wf->tasks[i].deps[k]].nchildren++;
    }
    for (i = 0; i < n; i++) {
        wf->tasks[i].children = xmalloc(wf->tasks[i].nchildren * sizeof(size_t));
        wf->tasks[i].nchildren = 0;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < wf->tasks[i].ndeps; k++) {
            struct dag_task *d = &wf->tasks[wf->tasks[i].deps[k]];
            d->children[d->nchildren++] = i;
        }
    }
}

/*
 * Tarjan's strongly connected components, with an explicit stack of
 * (task, next edge) frames instead of recursion. On return comp[v] is the
 * component of v when that component has more than one task, NONE
 * otherwise (self-dependencies were rejected and are not edges).
 */
static void find_cycles(const struct workflow *wf, size_t *comp)
{
    size_t n = wf->ntasks;
    size_t *index = xmalloc(n * sizeof(*index));
    size_t *low = xmalloc(n * sizeof(*low));
    size_t *stack = xmalloc(n * sizeof(*stack));
    size_t *frame_v = xmalloc(n * sizeof(*frame_v));
    size_t *frame_e = xmalloc(n * sizeof(*frame_e));
    unsigned char *on_stack = xcalloc(n, 1);
    size_t next_index = 0, sp = 0, fp = 0, ncomp = 0;
    size_t s, i;

    for (i = 0; i < n; i++) {
        index[i] = NONE;
        comp[i] = NONE;
    }
    for (s = 0; s < n; s++) {
        if (index[s] != NONE)
            continue;
        index[s] = low[s] = next_index++;
        stack[sp++] = s;
        on_stack[s] = 1;
        frame_v[fp] = s;
        frame_e[fp++] = 0;
        while (fp) {
            size_t v = frame_v[fp - 1];
            const struct dag_task *t = &wf->tasks[v];

            if (frame_e[fp - 1] < t->ndeps) {
                size_t w = t->deps[frame_e[fp - 1]++];
                if (index[w] == NONE) {
                    index[w] = low[w] = next_index++;
                    stack[sp++] = w;
                    on_stack[w] = 1;
                    frame_v[fp] = w;
                    frame_e[fp++] = 0;
                } else if (on_stack[w] && index[w] < low[v]) {
                    low[v] = index[w];
                }
                continue;
            }
            fp--;
            if (fp && low[v] < low[frame_v[fp - 1]])
                low[frame_v[fp - 1]] = low[v];
            if (low[v] != index[v])
                continue;
            /* v is the root of a component: pop it. */
            {
                size_t w, size = 0, base = sp;
                do {
                    w = stack[--base];
                    size++;
                } while (w != v);
                for (i = base; i < sp; i++) {
                    on_stack[stack[i]] = 0;
                    if (size > 1)
                        comp[stack[i]] = ncomp;
                }
                if (size > 1)
                    ncomp++;
                sp = base;
            }
        }
    }
    free(on_stack);
    free(frame_e);
    free(frame_v);
    free(stack);
    free(low);
    free(index);
}

/*
 * Report one cycle through `start` (the component's first task in document
 * order): the shortest one, found by a breadth-first search that stays in
 * the component. parent[] must be NONE for the component's tasks; queue has
 * room for n entries.
 */
static void report_cycle(struct dag__parser *p, const size_t *comp, size_t start, size_t *parent,
                         size_t *queue)
{
    const struct workflow *wf = p->wf;
    struct dag__path tasks = {NULL, "tasks", 0};
    struct dag__path task = {&tasks, NULL, start};
    struct dag__path deps = {&task, "dependsOn", 0};
    struct strbuf msg = STRBUF_INIT;
    size_t head = 0, tail = 0, end = NONE, len, i, v;

    parent[start] = start;
    queue[tail++] = start;
    while (head < tail && end == NONE) {
        const struct dag_task *t;
        v = queue[head++];
        t = &wf->tasks[v];
        for (i = 0; i < t->ndeps; i++) {
            size_t w = t->deps[i];
            if (comp[w] != comp[start])
                continue;
            if (w == start) {
                end = v;
                break;
            }
            if (parent[w] == NONE) {
                parent[w] = v;
                queue[tail++] = w;
            }
        }
    }
    if (end == NONE)
        BUG("no cycle through a task of a strongly connected component");
    /* The path start .. end, reversed from the parent links into queue[]. */
    len = 0;
    for (v = end; v != start; v = parent[v])
        queue[len++] = v;
    queue[len++] = start;

    strbuf_adds(&msg, "cycle: ");
    for (i = 0; i < len; i++) {
        if (len > CYCLE_SHOW_MAX && i >= CYCLE_SHOW_MAX / 2 && i < len - CYCLE_SHOW_MAX / 2) {
            if (i == CYCLE_SHOW_MAX / 2)
                strbuf_addf(&msg, "... (%zu more) -> ", len - CYCLE_SHOW_MAX);
            continue;
        }
        strbuf_addf(&msg, "%.*s%s -> ", DAG__Q(task_label(wf, queue[len - 1 - i])));
    }
    strbuf_addf(&msg, "%.*s%s", DAG__Q(task_label(wf, start)));
    dag__problem(p, &deps, 0, 0, "%s", msg.buf);
    strbuf_release(&msg);
}

static void report_cycles(struct dag__parser *p, const size_t *comp)
{
    size_t n = p->wf->ntasks;
    size_t *parent = xmalloc(n * sizeof(*parent));
    size_t *queue = xmalloc(n * sizeof(*queue));
    unsigned char *reported = NULL;
    size_t i, ncomp = 0;

    for (i = 0; i < n; i++) {
        parent[i] = NONE;
        if (comp[i] != NONE && comp[i] + 1 > ncomp)
            ncomp = comp[i] + 1;
    }
    reported = xcalloc(ncomp, 1);
    for (i = 0; i < n; i++) {
        if (comp[i] == NONE || reported[comp[i]])
            continue;
        reported[comp[i]] = 1;
        if (!dag__problems_full(p))
            report_cycle(p, comp, i, parent, queue);
        else
            dag__problem(p, NULL, 0, 0, "cycle"); /* full: only counted in `dropped` */
    }
    free(reported);
    free(queue);
    free(parent);
}

/* Kahn's algorithm; ties broken by document order of the tasks that became ready. */
static void topo_sort(struct workflow *wf)
{
    size_t n = wf->ntasks;
    size_t *pending = xmalloc(n * sizeof(*pending));
    size_t head = 0, tail = 0, i, k;

    wf->topo = xmalloc(n * sizeof(*wf->topo));
    for (i = 0; i < n; i++) {
        pending[i] = wf->tasks[i].ndeps;
        if (!pending[i])
            wf->topo[tail++] = i;
    }
    while (head < tail) {
        const struct dag_task *t = &wf->tasks[wf->topo[head++]];
        for (k = 0; k < t->nchildren; k++) {
            size_t c = t->children[k];
            if (--pending[c] == 0)
                wf->topo[tail++] = c;
        }
    }
    if (tail != n)
        BUG("topological sort of a graph without cycles left %zu tasks", n - tail);
    free(pending);
}

void dag__check_graph(struct dag__parser *p)
{
    struct workflow *wf = p->wf;
    size_t n = wf->ntasks;
    struct name_ent *sorted = xmalloc(n * sizeof(*sorted));
    size_t *comp = xmalloc(n * sizeof(*comp));
    size_t i, m = 0;
    int cyclic = 0;

    for (i = 0; i < n; i++) {
        if (wf->tasks[i].name) {
            sorted[m].name = wf->tasks[i].name;
            sorted[m].idx = i;
            m++;
        }
    }
    qsort(sorted, m, sizeof(*sorted), cmp_name_ent);
    report_duplicates(p, sorted, m);
    resolve_deps(p, sorted, m);
    fill_children(wf);
    find_cycles(wf, comp);
    for (i = 0; i < n && !cyclic; i++)
        cyclic = comp[i] != NONE;
    if (cyclic)
        report_cycles(p, comp);
    else if (!p->nproblems)
        topo_sort(wf);
    free(comp);
    free(sorted);
}
