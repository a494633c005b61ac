/*
 * view.h - JSON views of stored objects, with the field names of the API
 * (camelCase): the CLI's --json output and the HTTP API share them.
 *
 * Every function returns a new jansson reference owned by the caller
 * (json_decref it). Instants are ISO 8601 UTC strings, or null when unset.
 */
#ifndef ORCH_VIEW_VIEW_H
#define ORCH_VIEW_VIEW_H

#include <jansson.h>

#include "base/strbuf.h"
#include "dag/dag.h"
#include "store/store.h"

/* {"id", "workflow", "workflowVersion", "status", "params", "createdAt",
 *  "startedAt", "finishedAt", "durationMs", "error", "scheduleId", "scheduledFor"}
 * (scheduleId and scheduledFor are null unless a schedule fired it) */
json_t *view_exec_summary(const struct exec_row *row);
/* The summary plus "tasks": [{"name", "status", "attempts": [...], ...}] */
json_t *view_exec_detail(const struct exec_detail *d);
/* One task run of a detail (d->tasks[i]), as in "tasks" above; its group's
 * name is looked up in `names` (the workflow's tasks), or in d if NULL. */
json_t *view_task_run(const struct exec_detail *d, size_t i, const struct exec_detail *names);
/* The detail of a large fan-out, read by store_execution_page without the
 * instances: "tasks" the workflow's tasks, each forEach task with
 * "instances": {"total", "byStatus"} (from d->counts) and a null "output",
 * and "instancesOmitted" (they are listed by GET /v1/executions/{id}/tasks). */
json_t *view_exec_detail_grouped(const struct exec_detail *d);
/* Set "outputs" of a detail (null until set): the workflow's outputs, JSON text or NULL. */
void view_exec_set_outputs(json_t *detail, const char *outputs_json);
/* {"items": [...summaries], "nextCursor": "ex_..." or null}: the first `limit`
 * rows; nextCursor is set when the list holds more than `limit` rows (fetch
 * limit + 1 to know). */
json_t *view_exec_list(const struct exec_list *list, int limit);
/*
 * The same list written straight into `sb` as compact JSON, without building a
 * jansson tree: the API's hot path (GET /v1/executions). `next_cursor` is the
 * id to give as nextCursor, or NULL. Returns 0 or ERR_TOO_BIG (sb's maximum).
 */
int view_exec_list_write(struct strbuf *sb, const struct exec_list *list, size_t n,
                         const char *next_cursor);

/* A JSON string of `len` bytes of text from outside, made valid UTF-8 (every
 * invalid sequence and NUL becomes U+FFFD); never NULL. */
json_t *view_text(const char *s, size_t len);

/* Null or an ISO 8601 string for an instant in ms (0 = null). */
json_t *view_instant(int64_t ms);

/* {"id", "name", "prefix", "scopes": ["read", ...], "createdAt", "expiresAt",
 *  "lastUsedAt", "revokedAt"}: an API key without its secret. */
json_t *view_key(const struct key_row *row);
/* {"name", "version", "createdAt", "description", "tasks": N} of a workflow
 * version from its definition text, plus "definition": {...} (the parsed
 * text, its literal credentials redacted: dag_redact_definition) if
 * `with_definition`. `created_at` 0 gives null. */
json_t *view_workflow(const char *name, int version, int64_t created_at, const char *definition,
                      int with_definition);

/* ------------------------------------------------------------------ waitingOn (waiting.c) */

enum view_owner_state {
    VIEW_OWNER_UNKNOWN = 0, /* not known, or one node only: not a reason */
    VIEW_OWNER_ALIVE,
    VIEW_OWNER_NONE,    /* cluster: no node has claimed the execution yet */
    VIEW_OWNER_EXPIRED, /* cluster: its node's lease has run out */
};

/* What waitingOn needs beside the execution; all borrowed. */
struct view_wait {
    const struct workflow *wf; /* the execution's workflow version, or NULL if unknown */
    int64_t now;
    int slots_busy, slots_total; /* the engine's worker slots; total 0: unknown */
    enum view_owner_state owner_state;
    int64_t owner_heartbeat_at;  /* VIEW_OWNER_EXPIRED: its last heartbeat */
    /* Back-pressure on the node that runs the execution (engine/monitor.h):
     * what holds it, in words, or NULL when there is none. */
    const char *pressure;
};

/*
 * Why task run d->tasks[i] waits, or NULL when it does not: {"reason":
 * "dependency"|"slot"|"concurrency"|"maxParallel"|"backoff"|"child"|"lease"|"node"|
 * "pressure",
 * "message": "waiting for dependency extract", ...details} ("dependencies",
 * "until", "busy" and "slots", "running" with "concurrency" or "maxParallel",
 * "childId", "node" and "heartbeatAt"). Pending and queued runs wait; so does a
 * running workflow task, on its child execution.
 */
json_t *view_waiting_on(const struct exec_detail *d, size_t i, const struct view_wait *w);
/* Set "waitingOn" on the task objects of `tasks` (the views of d's first n
 * runs in order, without the fan-out instances if `skip_instances`). */
void view_set_waiting(json_t *tasks, const struct exec_detail *d, size_t n, int skip_instances,
                      const struct view_wait *w);
/* Could any run of d wait (worth reading the definition for)? */
int view_exec_waits(const struct exec_detail *d);
/* The parsed workflow version d ran, read from `st`, or NULL when it is gone
 * (pruned) or does not parse: the reasons that need it are then left out. */
struct workflow *view_exec_workflow(struct store *st, const struct exec_detail *d);

/* ------------------------------------------------------------------ graph layout (layout.c) */

struct layout_size {
    double w, h;
};
struct layout_edge_in {
    size_t from, to; /* node indices */
};
/* A DAG to draw: n nodes (sizes: NULL for 120x36 each) and its edges. */
struct layout_input {
    size_t n;
    const struct layout_size *sizes;
    const struct layout_edge_in *edges;
    size_t nedges;
};
struct layout_node {
    double x, y, w, h; /* top-left corner and size */
    int layer;         /* 0 for the sources; every edge goes to a higher layer */
};
struct layout_edge {
    size_t from, to;
    size_t npoints;
    double (*points)[2]; /* the source's bottom centre, bends, the target's top centre */
};
/* A layout; members are read-only, free with view_layout_release. */
struct layout {
    size_t n;
    struct layout_node *nodes; /* in input order */
    size_t nedges;
    struct layout_edge *edges; /* in input order */
    double width, height;
    size_t dummies; /* bend points added for edges spanning layers (0: drawn straight) */
};

/*
 * Lay out a DAG in layers (longest path), with fewer crossings (barycenter
 * sweeps) and coordinates where no two nodes overlap. Returns 0, or
 * ERR_INVALID (a cycle, an edge naming no node or a loop) with *out empty.
 */
int view_layout(const struct layout_input *in, struct layout *out, struct err *err);
void view_layout_release(struct layout *l);
/* How many pairs of edge segments cross between two layers (for tests). */
size_t view_layout_crossings(const struct layout *l);

/*
 * The graph of a workflow, laid out: {"width", "height", "nodes": [{"name",
 * "kind", "x", "y", "w", "h", "layer", "group", "dependsOn"}], "edges": [{"from", "to",
 * "points"}]}; a forEach task is one node ("group": true). With the detail
 * `d` of one of its executions (read by store_execution_page: top-level runs
 * and the instances' counts), each node gets "status", and "counts"
 * {"total", "<status>": n} of a group's instances. NULL on a layout error.
 */
json_t *view_workflow_graph(const struct workflow *wf, const struct exec_detail *d,
                            struct err *err);

#endif
