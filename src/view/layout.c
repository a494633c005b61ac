/*
 * layout.c - a layered drawing of a DAG (Sugiyama's scheme, kept small), and
 * the workflow graph of the API built on it.
 *
 * 1. Layers: each node one layer below its deepest parent (longest path
 *    from the sources), so every edge goes down.
 * 2. An edge spanning several layers gets a dummy node in each layer it
 *    crosses (so its bends can be ordered like nodes), unless that would add
 *    more than LAYOUT_MAX_DUMMIES dummies: then long edges are drawn
 *    straight.
 * 3. Crossing reduction: LAYOUT_SWEEPS sweeps down and up, each sorting a
 *    layer by the barycenter of its neighbours' positions in the layer just
 *    placed (stable; a node without such neighbours keeps its place).
 * 4. Coordinates: layer by layer, each node where the mean of its parents'
 *    centres wants it, then pushed right as little as needed to keep the
 *    gap to its left neighbour; the drawing is shifted to start at the
 *    margin. Nodes of a layer never overlap, and layers are apart.
 * 5. Edges: from the bottom centre of the source through its dummies'
 *    centres to the top centre of the target.
 *
 * O((V + D) log(V + D) * sweeps + E) with D dummies: 1,000 tasks lay out in
 * milliseconds (bench/ measures it).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "view.h"

#include "base/banned.h"

#define LAYOUT_MAX_DUMMIES 20000
#define LAYOUT_SWEEPS      4
#define GAP_X              32.0
#define GAP_Y              56.0
#define MARGIN             16.0
#define DUMMY_W            8.0

/* Working graph: real nodes 0..n-1, then dummies. */
struct work {
    size_t n, total, cap;
    int *layer;
    double *w, *h, *x, *y, *key;
    size_t *pos;                 /* position of a node within its layer */
    size_t **up, **down;         /* neighbours in the layer above / below */
    size_t *nup, *ndown, *aup, *adown;
    size_t **layers;             /* node ids per layer, in order */
    size_t *nlayer, *alayer;
    int nlayers;
    /* each real edge's chain of nodes: from, dummies..., to */
    size_t **chain;
    size_t *nchain;
};

static void add_adj(size_t ***adj, size_t **n, size_t **a, size_t v, size_t u)
{
    XGROW((*adj)[v], (*a)[v], (*n)[v] + 1);
    (*adj)[v][(*n)[v]++] = u;
}

/* Room for `cap` nodes (allocated once: a node per dummy would otherwise
 * reallocate every array each time). */
static void reserve(struct work *g, size_t cap)
{
    g->cap = cap ? cap : 1;
    g->layer = xrealloc(g->layer, g->cap * sizeof(*g->layer));
    g->w = xrealloc(g->w, g->cap * sizeof(*g->w));
    g->h = xrealloc(g->h, g->cap * sizeof(*g->h));
    g->up = xrealloc(g->up, g->cap * sizeof(*g->up));
    g->down = xrealloc(g->down, g->cap * sizeof(*g->down));
    g->nup = xrealloc(g->nup, g->cap * sizeof(*g->nup));
    g->ndown = xrealloc(g->ndown, g->cap * sizeof(*g->ndown));
    g->aup = xrealloc(g->aup, g->cap * sizeof(*g->aup));
    g->adown = xrealloc(g->adown, g->cap * sizeof(*g->adown));
}

static size_t new_node(struct work *g, int layer, double w, double h)
{
    size_t v = g->total++;

    if (v >= g->cap)
        BUG("layout: more nodes than reserved");
    g->layer[v] = layer;
    g->w[v] = w;
    g->h[v] = h;
    g->up[v] = g->down[v] = NULL;
    g->nup[v] = g->ndown[v] = g->aup[v] = g->adown[v] = 0;
    return v;
}

static void link_nodes(struct work *g, size_t from, size_t to)
{
    add_adj(&g->down, &g->ndown, &g->adown, from, to);
    add_adj(&g->up, &g->nup, &g->aup, to, from);
}

/* Longest-path layers (Kahn's order); ERR_INVALID on a cycle. */
static int assign_layers(struct work *g, const struct layout_input *in, struct err *err)
{
    size_t *indeg = xcalloc(in->n ? in->n : 1, sizeof(size_t));
    size_t *queue = xcalloc(in->n ? in->n : 1, sizeof(size_t));
    size_t **out = xcalloc(in->n ? in->n : 1, sizeof(size_t *));
    size_t *nout = xcalloc(in->n ? in->n : 1, sizeof(size_t));
    size_t *aout = xcalloc(in->n ? in->n : 1, sizeof(size_t));
    size_t head = 0, tail = 0;
    int rc = 0;

    for (size_t e = 0; e < in->nedges; e++) {
        indeg[in->edges[e].to]++;
        add_adj(&out, &nout, &aout, in->edges[e].from, in->edges[e].to);
    }
    for (size_t v = 0; v < in->n; v++) {
        g->layer[v] = 0;
        if (!indeg[v])
            queue[tail++] = v;
    }
    while (head < tail) {
        size_t v = queue[head++];
        for (size_t k = 0; k < nout[v]; k++) {
            size_t u = out[v][k];
            if (g->layer[u] < g->layer[v] + 1)
                g->layer[u] = g->layer[v] + 1;
            if (--indeg[u] == 0)
                queue[tail++] = u;
        }
    }
    if (tail < in->n)
        rc = err_set(err, ERR_INVALID, "the graph has a cycle");
    for (size_t v = 0; v < in->n; v++)
        free(out[v]);
    free(out);
    free(nout);
    free(aout);
    free(queue);
    free(indeg);
    return rc;
}

static int cmp_key_pos(const void *a, const void *b, void *arg)
{
    const struct work *g = arg;
    size_t u = *(const size_t *)a, v = *(const size_t *)b;

    if (g->key[u] < g->key[v])
        return -1;
    if (g->key[u] > g->key[v])
        return 1;
    return g->pos[u] < g->pos[v] ? -1 : g->pos[u] > g->pos[v];
}

/* Sort layer `l` by the barycenter of each node's neighbours in `adj`. */
static void order_layer(struct work *g, int l, size_t **adj, const size_t *nadj)
{
    size_t *lay = g->layers[l];

    for (size_t i = 0; i < g->nlayer[l]; i++) {
        size_t v = lay[i];
        double sum = 0;
        if (!nadj[v]) {
            g->key[v] = (double)i; /* stays where it is */
            continue;
        }
        for (size_t k = 0; k < nadj[v]; k++)
            sum += (double)g->pos[adj[v][k]];
        /* Scaled to this layer's positions so fixed nodes interleave sensibly. */
        g->key[v] = sum / (double)nadj[v];
    }
    qsort_r(lay, g->nlayer[l], sizeof(*lay), cmp_key_pos, g);
    for (size_t i = 0; i < g->nlayer[l]; i++)
        g->pos[lay[i]] = i;
}

/* One pass of x coordinates, layer by layer down (or up): each node where the
 * mean centre of its neighbours in the layer just placed wants it (else where
 * it is), pushed right as little as keeps the gap to its left neighbour. */
static void place_pass(struct work *g, int down)
{
    for (int li = 0; li < g->nlayers; li++) {
        int l = down ? li : g->nlayers - 1 - li;
        double right = -INFINITY;
        for (size_t i = 0; i < g->nlayer[l]; i++) {
            size_t v = g->layers[l][i];
            size_t **adj = down ? g->up : g->down;
            size_t nadj = down ? g->nup[v] : g->ndown[v];
            double want = g->x[v];
            if (nadj) {
                want = 0;
                for (size_t k = 0; k < nadj; k++)
                    want += g->x[adj[v][k]] + g->w[adj[v][k]] / 2;
                want = want / (double)nadj - g->w[v] / 2;
            }
            if (right != -INFINITY && want < right)
                want = right;
            g->x[v] = want;
            right = want + g->w[v] + GAP_X;
        }
    }
}

static void place(struct work *g)
{
    double y = MARGIN, minx = INFINITY;

    /* Down (children under their parents), up (parents over their children),
     * down again (children follow). */
    place_pass(g, 1);
    place_pass(g, 0);
    place_pass(g, 1);
    for (int l = 0; l < g->nlayers; l++) {
        double maxh = 0;
        for (size_t i = 0; i < g->nlayer[l]; i++)
            if (g->h[g->layers[l][i]] > maxh)
                maxh = g->h[g->layers[l][i]];
        for (size_t i = 0; i < g->nlayer[l]; i++) {
            size_t v = g->layers[l][i];
            g->y[v] = y + (maxh - g->h[v]) / 2;
            if (g->x[v] < minx)
                minx = g->x[v];
        }
        y += maxh + GAP_Y;
    }
    for (size_t v = 0; v < g->total; v++)
        g->x[v] += MARGIN - (minx == INFINITY ? 0 : minx);
}

static void work_free(struct work *g, size_t nedges)
{
    for (size_t v = 0; v < g->total; v++) {
        free(g->up[v]);
        free(g->down[v]);
    }
    for (int l = 0; l < g->nlayers; l++)
        free(g->layers[l]);
    for (size_t e = 0; e < nedges; e++)
        free(g->chain ? g->chain[e] : NULL);
    free(g->chain);
    free(g->nchain);
    free(g->layers);
    free(g->nlayer);
    free(g->alayer);
    free(g->layer);
    free(g->w);
    free(g->h);
    free(g->x);
    free(g->y);
    free(g->key);
    free(g->pos);
    free(g->up);
    free(g->down);
    free(g->nup);
    free(g->ndown);
    free(g->aup);
    free(g->adown);
}

int view_layout(const struct layout_input *in, struct layout *out, struct err *err)
{
    struct work g;
    size_t dummies = 0;
    int maxl = 0, rc;

    memset(out, 0, sizeof(*out));
    memset(&g, 0, sizeof(g));
    for (size_t e = 0; e < in->nedges; e++)
        if (in->edges[e].from >= in->n || in->edges[e].to >= in->n ||
            in->edges[e].from == in->edges[e].to)
            return err_set(err, ERR_INVALID, "edge %zu names no node or loops", e);
    g.n = in->n;
    reserve(&g, in->n);
    for (size_t v = 0; v < in->n; v++)
        new_node(&g, 0, in->sizes ? in->sizes[v].w : 120, in->sizes ? in->sizes[v].h : 36);
    rc = assign_layers(&g, in, err);
    if (rc) {
        work_free(&g, 0);
        return rc;
    }
    for (size_t v = 0; v < in->n; v++)
        if (g.layer[v] > maxl)
            maxl = g.layer[v];
    for (size_t e = 0; e < in->nedges; e++)
        dummies += (size_t)(g.layer[in->edges[e].to] - g.layer[in->edges[e].from] - 1);
    reserve(&g, in->n + (dummies <= LAYOUT_MAX_DUMMIES ? dummies : 0));
    /* Edges, with their dummies (or straight when there would be too many). */
    g.chain = xcalloc(in->nedges ? in->nedges : 1, sizeof(*g.chain));
    g.nchain = xcalloc(in->nedges ? in->nedges : 1, sizeof(*g.nchain));
    for (size_t e = 0; e < in->nedges; e++) {
        size_t from = in->edges[e].from, to = in->edges[e].to, prev = from;
        int span = g.layer[to] - g.layer[from];
        size_t len = dummies <= LAYOUT_MAX_DUMMIES ? (size_t)span + 1 : 2;

        g.chain[e] = xcalloc(len, sizeof(size_t));
        g.chain[e][0] = from;
        g.nchain[e] = 1;
        if (dummies <= LAYOUT_MAX_DUMMIES) {
            for (int l = g.layer[from] + 1; l < g.layer[to]; l++) {
                size_t d = new_node(&g, l, DUMMY_W, 0);
                link_nodes(&g, prev, d);
                g.chain[e][g.nchain[e]++] = d;
                prev = d;
            }
        }
        /* (a straight long edge links its ends: they order against each other) */
        link_nodes(&g, prev, to);
        g.chain[e][g.nchain[e]++] = to;
    }
    /* Layers, first in input order (a depth-first order would start fewer crossings,
     * the sweeps below do most of the work). */
    g.nlayers = in->n ? maxl + 1 : 0;
    g.layers = xcalloc((size_t)g.nlayers + 1, sizeof(*g.layers));
    g.nlayer = xcalloc((size_t)g.nlayers + 1, sizeof(*g.nlayer));
    g.alayer = xcalloc((size_t)g.nlayers + 1, sizeof(*g.alayer));
    g.pos = xcalloc(g.total ? g.total : 1, sizeof(*g.pos));
    g.key = xcalloc(g.total ? g.total : 1, sizeof(*g.key));
    g.x = xcalloc(g.total ? g.total : 1, sizeof(*g.x));
    g.y = xcalloc(g.total ? g.total : 1, sizeof(*g.y));
    for (size_t v = 0; v < g.total; v++) {
        int l = g.layer[v];
        XGROW(g.layers[l], g.alayer[l], g.nlayer[l] + 1);
        g.pos[v] = g.nlayer[l];
        g.layers[l][g.nlayer[l]++] = v;
    }
    /* Only neighbours one layer away count for the barycenters (a straight long
     * edge's ends are further apart: they are left out). */
    for (int s = 0; s < LAYOUT_SWEEPS; s++) {
        for (int l = 1; l < g.nlayers; l++)
            order_layer(&g, l, g.up, g.nup);
        for (int l = g.nlayers - 2; l >= 0; l--)
            order_layer(&g, l, g.down, g.ndown);
    }
    place(&g);

    out->n = in->n;
    out->nodes = xcalloc(in->n ? in->n : 1, sizeof(*out->nodes));
    for (size_t v = 0; v < in->n; v++) {
        out->nodes[v].x = g.x[v];
        out->nodes[v].y = g.y[v];
        out->nodes[v].w = g.w[v];
        out->nodes[v].h = g.h[v];
        out->nodes[v].layer = g.layer[v];
        if (g.x[v] + g.w[v] + MARGIN > out->width)
            out->width = g.x[v] + g.w[v] + MARGIN;
        if (g.y[v] + g.h[v] + MARGIN > out->height)
            out->height = g.y[v] + g.h[v] + MARGIN;
    }
    out->nedges = in->nedges;
    out->edges = xcalloc(in->nedges ? in->nedges : 1, sizeof(*out->edges));
    for (size_t e = 0; e < in->nedges; e++) {
        struct layout_edge *oe = &out->edges[e];
        size_t *c = g.chain[e], m = g.nchain[e];
        oe->from = in->edges[e].from;
        oe->to = in->edges[e].to;
        oe->npoints = m;
        oe->points = xcalloc(m, sizeof(*oe->points));
        oe->points[0][0] = g.x[c[0]] + g.w[c[0]] / 2;
        oe->points[0][1] = g.y[c[0]] + g.h[c[0]];
        for (size_t k = 1; k + 1 < m; k++) {
            oe->points[k][0] = g.x[c[k]] + g.w[c[k]] / 2;
            oe->points[k][1] = g.y[c[k]];
        }
        oe->points[m - 1][0] = g.x[c[m - 1]] + g.w[c[m - 1]] / 2;
        oe->points[m - 1][1] = g.y[c[m - 1]];
    }
    out->dummies = dummies <= LAYOUT_MAX_DUMMIES ? dummies : 0;
    work_free(&g, in->nedges);
    return 0;
}

void view_layout_release(struct layout *l)
{
    for (size_t e = 0; e < l->nedges; e++)
        free(l->edges[e].points);
    free(l->edges);
    free(l->nodes);
    memset(l, 0, sizeof(*l));
}

size_t view_layout_crossings(const struct layout *l)
{
    /* Pairs of edges between the same two adjacent layers whose ends are in
     * opposite orders (the straight segments of each edge's points). */
    size_t n = 0;

    for (size_t a = 0; a < l->nedges; a++)
        for (size_t b = a + 1; b < l->nedges; b++)
            for (size_t i = 0; i + 1 < l->edges[a].npoints; i++)
                for (size_t j = 0; j + 1 < l->edges[b].npoints; j++) {
                    const double(*p)[2] = (const double(*)[2])l->edges[a].points + i;
                    const double(*q)[2] = (const double(*)[2])l->edges[b].points + j;
                    double pa = p[0][0], pb = p[1][0], qa = q[0][0], qb = q[1][0];
                    if (fabs(p[0][1] - q[0][1]) > 1e-6 || fabs(p[1][1] - q[1][1]) > 1e-6)
                        continue;
                    if ((pa - qa) * (pb - qb) < 0)
                        n++;
                }
    return n;
}

/* ------------------------------------------------------------------ the workflow graph */

/* Whole pixels: exact enough to draw, and an integer is far cheaper to write
 * than a real (1,000 tasks have ~10,000 numbers). */
static json_t *num(double v)
{
    return json_integer((json_int_t)llround(v));
}

json_t *view_workflow_graph(const struct workflow *wf, const struct exec_detail *d,
                            struct err *err)
{
    struct layout_size *sizes = xcalloc(wf->ntasks ? wf->ntasks : 1, sizeof(*sizes));
    struct layout_edge_in *edges = NULL;
    size_t nedges = 0, aedges = 0;
    struct layout_input in;
    struct layout l;
    json_t *o, *nodes, *jedges;

    for (size_t i = 0; i < wf->ntasks; i++) {
        const struct dag_task *t = &wf->tasks[i];
        size_t len = strlen(t->name);
        /* About 7.5 px a character at the pages' font, within bounds. */
        double w = 32 + 7.5 * (double)(len > 40 ? 40 : len);
        sizes[i].w = w < 96 ? 96 : w;
        sizes[i].h = (t->for_each || t->for_each_json) ? 52 : 36;
        for (size_t k = 0; k < t->ndeps; k++) {
            XGROW(edges, aedges, nedges + 1);
            edges[nedges].from = t->deps[k];
            edges[nedges].to = i;
            nedges++;
        }
    }
    in.n = wf->ntasks;
    in.sizes = sizes;
    in.edges = edges;
    in.nedges = nedges;
    if (view_layout(&in, &l, err)) {
        free(sizes);
        free(edges);
        return NULL;
    }
    o = json_object();
    nodes = json_array();
    jedges = json_array();
    for (size_t i = 0; i < wf->ntasks; i++) {
        const struct dag_task *t = &wf->tasks[i];
        int group = t->for_each || t->for_each_json;
        json_t *n = json_object(), *deps = json_array();

        json_object_set_new(n, "name", view_text(t->name, strlen(t->name)));
        json_object_set_new(n, "kind", json_string(dag_task_type_name(t->type)));
        json_object_set_new(n, "x", num(l.nodes[i].x));
        json_object_set_new(n, "y", num(l.nodes[i].y));
        json_object_set_new(n, "w", num(l.nodes[i].w));
        json_object_set_new(n, "h", num(l.nodes[i].h));
        json_object_set_new(n, "layer", json_integer(l.nodes[i].layer));
        json_object_set_new(n, "group", json_boolean(group));
        for (size_t k = 0; k < t->ndeps; k++)
            json_array_append_new(deps, view_text(wf->tasks[t->deps[k]].name,
                                                  strlen(wf->tasks[t->deps[k]].name)));
        json_object_set_new(n, "dependsOn", deps);
        if (d) {
            const struct task_run_row *r = NULL;
            for (size_t k = 0; k < d->ntasks; k++)
                if (!d->tasks[k].instance && d->tasks[k].idx == (int)i)
                    r = &d->tasks[k];
            json_object_set_new(n, "status", r ? json_string(task_status_name(r->status))
                                               : json_string("pending"));
            if (group) {
                json_t *c = json_object();
                long long total = 0;
                for (size_t k = 0; k < d->ncounts; k++) {
                    if (d->counts[k].group_idx != (int)i)
                        continue;
                    total += d->counts[k].n;
                    json_object_set_new(c, task_status_name(d->counts[k].status),
                                        json_integer((json_int_t)d->counts[k].n));
                }
                json_object_set_new(c, "total", json_integer((json_int_t)total));
                json_object_set_new(n, "counts", c);
            }
        }
        json_array_append_new(nodes, n);
    }
    for (size_t e = 0; e < l.nedges; e++) {
        json_t *je = json_object(), *pts = json_array();
        json_object_set_new(je, "from", view_text(wf->tasks[l.edges[e].from].name,
                                                  strlen(wf->tasks[l.edges[e].from].name)));
        json_object_set_new(je, "to", view_text(wf->tasks[l.edges[e].to].name,
                                                strlen(wf->tasks[l.edges[e].to].name)));
        for (size_t k = 0; k < l.edges[e].npoints; k++) {
            json_t *pt = json_array();
            json_array_append_new(pt, num(l.edges[e].points[k][0]));
            json_array_append_new(pt, num(l.edges[e].points[k][1]));
            json_array_append_new(pts, pt);
        }
        json_object_set_new(je, "points", pts);
        json_array_append_new(jedges, je);
    }
    json_object_set_new(o, "workflow", view_text(wf->name, strlen(wf->name)));
    json_object_set_new(o, "width", num(l.width));
    json_object_set_new(o, "height", num(l.height));
    json_object_set_new(o, "nodes", nodes);
    json_object_set_new(o, "edges", jedges);
    view_layout_release(&l);
    free(sizes);
    free(edges);
    return o;
}
