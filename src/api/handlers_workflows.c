/*
 * handlers_workflows.c - /v1/workflows: versioned workflow definitions.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "base/clock.h"
#include "base/strbuf.h"
#include "dag/dag.h"
#include "engine/engine.h"
#include "view/view.h"

#include "base/banned.h"

struct store *api__workflow_read_store(struct api_request *req, const char *name)
{
    if (!dag_valid_workflow_name(name)) {
        api__reply_error(req, 404, NULL, "no workflow '%s'", name);
        return NULL;
    }
    return api__read_store(req);
}

static const char *const no_args[] = {NULL};

/* 422 with every problem of a definition and its JSON path. */
static void reply_problems(struct api_request *req, const struct dag_problems *probs)
{
    json_t *details = json_array();

    for (size_t i = 0; i < probs->n; i++) {
        json_t *d = json_object();
        const char *path = probs->items[i].path ? probs->items[i].path : "$";
        const char *msg = probs->items[i].message ? probs->items[i].message : "invalid";
        json_object_set_new(d, "path", api__json_string(path, strlen(path)));
        json_object_set_new(d, "message", api__json_string(msg, strlen(msg)));
        if (probs->items[i].line && strcmp(path, "$")) {
            json_object_set_new(d, "line", json_integer(probs->items[i].line));
            json_object_set_new(d, "column", json_integer(probs->items[i].column));
        }
        json_array_append_new(details, d);
    }
    if (probs->dropped) {
        json_t *d = json_object();
        char msg[64];
        snprintf(msg, sizeof(msg), "... and %zu more problems", probs->dropped);
        json_object_set_new(d, "path", json_string("$"));
        json_object_set_new(d, "message", json_string(msg));
        json_array_append_new(details, d);
    }
    api__reply_error(req, 422, details, "invalid workflow definition: %zu problem%s",
                     probs->n + probs->dropped, probs->n + probs->dropped == 1 ? "" : "s");
}

/* Content-Type application/yaml (also application/x-yaml, text/yaml), any parameters. */
static int is_yaml_type(const char *ct)
{
    static const char *const types[] = {"application/yaml", "application/x-yaml", "text/yaml",
                                        "text/x-yaml", NULL};
    if (!ct)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    for (size_t i = 0; types[i]; i++) {
        size_t n = strlen(types[i]);
        if (!strncasecmp(ct, types[i], n) &&
            (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t'))
            return 1;
    }
    return 0;
}

void api__workflows_put(struct api_request *req)
{
    struct dag_yaml_map pos = DAG_YAML_MAP_INIT;
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    char *converted = NULL;
    const char *def;
    size_t deflen;
    struct workflow *wf = NULL;
    struct err err = ERR_INIT;
    json_error_t jerr;
    json_t *doc;
    struct store *wr;
    char *old = NULL;
    int prev = 0, version = 0, rc;
    int64_t now = clock_now_ms(), created_at, prev_created = 0;

    if (api__query_check(req, no_args))
        return;
    if (req->body.len == 0) {
        api__reply_error(req, 400, NULL,
                         "the request body must be a workflow definition (JSON object)");
        return;
    }
    if (memchr(req->body.buf, '\0', req->body.len)) {
        api__reply_error(req, 400, NULL, "the request body contains a NUL byte");
        return;
    }
    def = req->body.buf;
    deflen = req->body.len;
    if (is_yaml_type(api__header(req, "Content-Type"))) {
        /* YAML is converted to the JSON document that is stored and served. */
        char *json;
        if (dag_yaml_to_json(req->body.buf, req->body.len, &json, &pos, &probs)) {
            const char *msg = probs.n ? probs.items[0].message : "invalid YAML";
            api__reply_error(req, 400, NULL, "the request body is not valid YAML: %s",
                             strncmp(msg, "invalid YAML at ", 16) ? msg : msg + 16);
            dag_problems_release(&probs);
            return;
        }
        converted = json;
        def = json;
        deflen = strlen(json);
    } else {
        doc = json_loadb(req->body.buf, req->body.len, JSON_DECODE_ANY, &jerr);
        if (!doc) {
            api__reply_error(req, 400, NULL,
                             "the request body is not valid JSON: line %d column %d: %s",
                             jerr.line, jerr.column, jerr.text);
            return;
        }
        json_decref(doc);
    }
    if (dag_parse(def, deflen, &wf, &probs)) {
        free(converted);
        dag_yaml_locate(&pos, &probs);
        reply_problems(req, &probs);
        dag_problems_release(&probs);
        dag_yaml_map_release(&pos);
        return;
    }
    wr = api__write_store(req);
    if (!wr)
        goto out;
    /* Workflow tasks: the workflows they run exist, and none leads back here. */
    if (engine_check_subflows(wr, wf, &probs) != 0) {
        dag_yaml_locate(&pos, &probs);
        reply_problems(req, &probs);
        dag_problems_release(&probs);
        goto out;
    }
    /* In one transaction, so that "was a version added" is exact. */
    rc = store_begin(wr, &err);
    if (rc == 0) {
        rc = store_workflow_get_at(wr, wf->name, 0, &old, &prev, &prev_created, &err);
        if (rc == ERR_NOT_FOUND) {
            prev = 0;
            rc = 0;
        }
    }
    if (rc == 0)
        rc = store_workflow_put(wr, wf->name, def, now, &version, &err);
    if (rc == 0)
        rc = store_commit(wr, &err);
    if (rc) {
        store_rollback(wr);
        api__reply_err(req, &err);
        goto out;
    }
    if (version != prev)
        engine_schedules_changed(api__engine(req)); /* its schedules may differ */
    created_at = version != prev ? now : prev_created;
    api__reply_json(req, version != prev ? 201 : 200,
                    view_workflow(wf->name, version, created_at, def, 1));
    if (version != prev) {
        char loc[200];
        snprintf(loc, sizeof(loc), "/v1/workflows/%s", wf->name);
        api__reply_header(req, "Location", loc);
    }
out:
    free(converted);
    dag_yaml_map_release(&pos);
    free(old);
    workflow_free(wf);
}

void api__workflows_list(struct api_request *req)
{
    struct workflow_row *rows = NULL;
    struct err err = ERR_INIT;
    struct store *rd;
    json_t *items, *o;
    size_t n = 0;

    if (api__query_check(req, no_args))
        return;
    rd = api__read_store(req);
    if (!rd)
        return;
    if (store_workflows_list(rd, &rows, &n, &err)) {
        api__reply_err(req, &err);
        return;
    }
    items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, view_workflow(rows[i].name, rows[i].version,
                                                   rows[i].created_at, rows[i].definition, 0));
    workflow_rows_free(rows, n);
    o = json_object();
    json_object_set_new(o, "items", items);
    api__reply_json(req, 200, o);
}

void api__workflows_get(struct api_request *req)
{
    static const char *const args[] = {"version", NULL};
    const char *name = req->params.values[0];
    const char *v = NULL;
    struct err err = ERR_INIT;
    struct store *rd;
    char *def = NULL;
    int want = 0, version = 0;
    int64_t created_at = 0;

    if (api__query_check(req, args))
        return;
    v = api__query(req, "version");
    if (v && (api__parse_uint(v, 1 << 30, &want) || want < 1)) {
        api__reply_error(req, 400, NULL, "invalid 'version': expected a positive integer");
        return;
    }
    rd = api__workflow_read_store(req, name);
    if (!rd)
        return;
    if (store_workflow_get_at(rd, name, want, &def, &version, &created_at, &err)) {
        api__reply_err(req, &err);
        return;
    }
    api__reply_json(req, 200, view_workflow(name, version, created_at, def, 1));
    free(def);
}

#define CALLERS_SHOWN 10 /* callers named in the message; details has them all */

/*
 * The workflows whose newest version has a workflow task calling `name`, as
 * details [{"workflow", "task"}] (one per task). Returns 0, or -1 after
 * replying on a store error.
 */
static int find_callers(struct api_request *req, struct store *st, const char *name, json_t **out)
{
    struct workflow_row *wfs = NULL;
    struct err err = ERR_INIT;
    size_t n = 0;

    *out = json_array();
    if (store_workflows_list(st, &wfs, &n, &err)) {
        json_decref(*out);
        *out = NULL;
        api__reply_err(req, &err);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        struct dag_problems probs = DAG_PROBLEMS_INIT;
        struct workflow *wf = NULL;
        /* Only a definition naming it can call it: parse those only. */
        if (!strcmp(wfs[i].name, name) || !strstr(wfs[i].definition, name))
            continue;
        if (dag_parse(wfs[i].definition, strlen(wfs[i].definition), &wf, &probs) == 0) {
            for (size_t t = 0; t < wf->ntasks; t++) {
                const char *callee = wf->tasks[t].subflow.workflow;
                if (wf->tasks[t].type == TASK_WORKFLOW && callee && !strcmp(callee, name))
                    json_array_append_new(*out, json_pack("{s:s, s:s}", "workflow", wfs[i].name,
                                                          "task", wf->tasks[t].name));
            }
        }
        dag_problems_release(&probs);
        workflow_free(wf);
    }
    workflow_rows_free(wfs, n);
    return 0;
}

/* 409: `name` is called by the workflows of `callers` (not empty; taken). */
static void reply_callers(struct api_request *req, const char *name, json_t *callers)
{
    struct strbuf sb = STRBUF_INIT;
    const char *prev = NULL;
    size_t shown = 0, total = 0, i;
    json_t *c;

    json_array_foreach(callers, i, c)
    {
        const char *w = json_string_value(json_object_get(c, "workflow"));
        if (prev && !strcmp(prev, w))
            continue; /* one workflow, several tasks: named once */
        prev = w;
        total++;
        if (shown < CALLERS_SHOWN) {
            strbuf_addf(&sb, "%s'%s'", shown ? ", " : "", w);
            shown++;
        }
    }
    if (total > shown)
        strbuf_addf(&sb, " and %zu more", total - shown);
    api__reply_error(req, 409, callers,
                     "workflow '%s' is called as a sub-workflow by %s (delete or change %s "
                     "first, or add ?force=true to delete it anyway)",
                     name, sb.buf ? sb.buf : "", total == 1 ? "it" : "them");
    strbuf_release(&sb);
}

void api__workflows_delete(struct api_request *req)
{
    static const char *const args[] = {"force", NULL};
    const char *name = req->params.values[0];
    struct err err = ERR_INIT;
    struct store *wr;
    const char *v;
    int force = 0;

    if (api__query_check(req, args))
        return;
    v = api__query(req, "force");
    if (v && api__parse_bool(v, &force)) {
        api__reply_error(req, 400, NULL, "invalid 'force': expected true or false");
        return;
    }
    if (!dag_valid_workflow_name(name)) {
        api__reply_error(req, 404, NULL, "no workflow '%s'", name);
        return;
    }
    wr = api__write_store(req);
    if (!wr)
        return;
    if (!force) {
        json_t *callers = NULL;
        char *def = NULL;
        int version = 0, rc = store_workflow_get(wr, name, 0, &def, &version, &err);
        free(def);
        if (rc == ERR_NOT_FOUND) {
            api__reply_error(req, 404, NULL, "no workflow '%s'", name);
            return;
        }
        if (rc) {
            api__reply_err(req, &err);
            return;
        }
        if (find_callers(req, wr, name, &callers))
            return;
        if (json_array_size(callers)) {
            reply_callers(req, name, callers);
            return;
        }
        json_decref(callers);
    }
    if (store_workflow_delete(wr, name, clock_now_ms(), &err)) {
        api__reply_err(req, &err);
        return;
    }
    engine_schedules_changed(api__engine(req)); /* its schedules stop */
    api__reply_empty(req, 204);
}
