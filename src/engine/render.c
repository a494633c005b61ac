/*
 * render.c - what a task sees of its execution: the environment of its
 * process, its command and env with their {{ ... }} placeholders filled in,
 * its `when`, the spec another node runs it from, and the params of a new
 * execution checked against the workflow's declarations.
 *
 * Pure functions of an execution's state (struct exec, read only; the one
 * thing written is the cache of the parsed context, ex->ctx): no store, no
 * loop, no status. Loop thread only (ex->ctx).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "dag/expr.h"
#include "dag/template.h"
#include "engine_internal.h"
#include "render.h"

#include "base/banned.h"

extern char **environ;

/* ------------------------------------------------------------------ environment */

static int env_key_eq(const char *entry, const char *key, size_t klen)
{
    return !strncmp(entry, key, klen) && entry[klen] == '=';
}

/* Put `entry` ("key=value", its key klen bytes; taken) in a NULL-terminated
 * heap vector, replacing an existing key. */
static void env_put(char ***envp, size_t *n, size_t *alloc, char *entry, size_t klen)
{
    const char *key = entry;
    for (size_t i = 0; i < *n; i++) {
        if (env_key_eq((*envp)[i], key, klen)) {
            free((*envp)[i]);
            (*envp)[i] = entry;
            return;
        }
    }
    XGROW(*envp, *alloc, *n + 2);
    (*envp)[(*n)++] = entry;
    (*envp)[*n] = NULL;
}

/* Set key=value in a NULL-terminated heap vector, replacing an existing key. */
static void env_set(char ***envp, size_t *n, size_t *alloc, const char *key, const char *value)
{
    env_put(envp, n, alloc, xasprintf("%s=%s", key, value), strlen(key));
}

/* Variables of orch's own environment that never reach tasks: our settings and
 * secrets (API keys, database and Redis URLs). */
static int env_is_private(const char *entry)
{
    return !strncmp(entry, "ORCH_", 5) || !strncmp(entry, "DATABASE_URL=", 13) ||
           !strncmp(entry, "REDIS_URL=", 10);
}

void engine__strv_free(char **v)
{
    if (!v)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* orch's own environment without its private variables: the start of every
 * task's (a process run for another node's execution too). */
static void inherited_env(char ***envp, size_t *n, size_t *alloc)
{
    XGROW(*envp, *alloc, 1);
    (*envp)[0] = NULL;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || env_is_private(*e))
            continue;
        env_put(envp, n, alloc, xstrdup(*e), (size_t)(eq - *e)); /* one copy, no printf */
    }
}

char **engine__base_env(const struct workflow *wf, json_t *params)
{
    char **envp = NULL;
    size_t n = 0, alloc = 0;
    const char *key;
    json_t *val;

    inherited_env(&envp, &n, &alloc);
    for (size_t i = 0; i < wf->nenv; i++)
        env_set(&envp, &n, &alloc, wf->env[i].key, wf->env[i].value);
    json_object_foreach(params, key, val) {
        char *name = xasprintf("ORCH_PARAM_%s", key);
        if (json_is_string(val)) {
            env_set(&envp, &n, &alloc, name, json_string_value(val));
        } else {
            char *s = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
            env_set(&envp, &n, &alloc, name, s ? s : "");
            free(s);
        }
        free(name);
    }
    return envp;
}

void engine__rendered_release(struct rendered *rd, const struct dag_task *t)
{
    if (rd->argv)
        engine__strv_free(rd->argv);
    free(rd->shell);
    for (size_t i = 0; rd->env && i < t->nenv; i++)
        free(rd->env[i]);
    free(rd->env);
    memset(rd, 0, sizeof(*rd));
}

/*
 * A task's environment under construction: the vector, whose entries are
 * borrowed from the execution's base environment or made here, and the list
 * of those made here (the owner of their memory).
 */
struct env_build {
    char **v;
    size_t n, alloc;
    char **own;
    size_t nown, own_alloc;
};

/* Set key=value: replace the entry of that key, or append one. */
static void build_set(struct env_build *b, const char *key, const char *value)
{
    size_t klen = strlen(key);
    char *entry = xasprintf("%s=%s", key, value);

    XGROW(b->own, b->own_alloc, b->nown + 2);
    b->own[b->nown++] = entry;
    b->own[b->nown] = NULL;
    for (size_t i = 0; i < b->n; i++) {
        if (b->v[i][0] == key[0] && env_key_eq(b->v[i], key, klen)) {
            b->v[i] = entry;
            return;
        }
    }
    XGROW(b->v, b->alloc, b->n + 2);
    b->v[b->n++] = entry;
    b->v[b->n] = NULL;
}

char **engine__task_env_borrowed(const struct exec *ex, size_t idx, int attempt,
                                 const char *output_path, const struct rendered *rd,
                                 char ***owned)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct env_build b;
    char num[16];

    memset(&b, 0, sizeof(b));
    for (char **e = ex->base_env; *e; e++)
        b.n++;
    b.alloc = b.n + t->nenv + 12;
    b.v = xcalloc(b.alloc, sizeof(*b.v));
    memcpy(b.v, ex->base_env, b.n * sizeof(*b.v)); /* borrowed */
    for (size_t i = 0; i < t->nenv; i++)
        build_set(&b, t->env[i].key, rd && rd->env ? rd->env[i] : t->env[i].value);
    snprintf(num, sizeof(num), "%d", attempt);
    build_set(&b, "ORCH_EXECUTION_ID", ex->id);
    build_set(&b, "ORCH_WORKFLOW", ex->wf->name);
    build_set(&b, "ORCH_TASK", engine__task_name(ex, idx));
    if (idx >= ex->wf->ntasks) {
        /* A fan-out instance: its item (a string as is, else JSON) and index. */
        const struct trun *r = &ex->runs[idx];
        json_t *item = r->item ? json_loads(r->item, JSON_DECODE_ANY, NULL) : NULL;
        char inum[16];
        snprintf(inum, sizeof(inum), "%d", r->item_index);
        build_set(&b, "ORCH_ITEM_INDEX", inum);
        build_set(&b, "ORCH_ITEM",
                  json_is_string(item) ? json_string_value(item) : r->item ? r->item : "null");
        json_decref(item);
    }
    build_set(&b, "ORCH_ATTEMPT", num);
    if (output_path)
        build_set(&b, "ORCH_OUTPUT", output_path);
    if (ex->scheduled_for_text) {
        build_set(&b, "ORCH_SCHEDULED_FOR", ex->scheduled_for_text);
        build_set(&b, "ORCH_SCHEDULE", ex->schedule_name ? ex->schedule_name : "");
    }
    *owned = b.own;
    return b.v;
}

char **engine__task_env(const struct exec *ex, size_t idx, int attempt, const char *output_path,
                        const struct rendered *rd)
{
    char **owned = NULL;
    char **v = engine__task_env_borrowed(ex, idx, attempt, output_path, rd, &owned);

    for (size_t i = 0; v[i]; i++)
        v[i] = xstrdup(v[i]);
    engine__strv_free(owned);
    return v;
}

/* ------------------------------------------------------------------ placeholders */

/*
 * The part of the context shared by all runs of `ex`, kept parsed in
 * ex->ctx until a task of the workflow succeeds (task_finalize drops it):
 * the instances of a fan-out over a large upstream output would otherwise
 * parse that output once each.
 */
static json_t *base_ctx(struct exec *ex)
{
    json_t *ctx, *tasks, *exo, *params;

    if (ex->ctx)
        return ex->ctx;
    ctx = json_object();
    tasks = json_object();
    exo = json_object();
    params = json_loads(ex->params ? ex->params : "{}", 0, NULL);
    json_object_set_new(ctx, "params", params ? params : json_object());
    for (size_t i = 0; i < ex->wf->ntasks; i++) {
        json_t *out = ex->runs[i].output && ex->runs[i].status == TASK_SUCCEEDED
                          ? json_loads(ex->runs[i].output, JSON_DECODE_ANY, NULL)
                          : NULL;
        json_t *to;
        if (!out)
            continue;
        to = json_object();
        json_object_set_new(to, "output", out);
        json_object_set_new(tasks, engine__task_name(ex, i), to);
    }
    json_object_set_new(ctx, "tasks", tasks);
    json_object_set_new(exo, "id", json_string(ex->id));
    json_object_set_new(ctx, "execution", exo);
    json_object_set_new(ctx, "scheduledFor",
                        ex->scheduled_for_text ? json_string(ex->scheduled_for_text)
                                               : json_null());
    ex->ctx = ctx;
    return ctx;
}

json_t *engine__render_ctx(const struct exec *cex, size_t idx)
{
    struct exec *ex = (struct exec *)cex; /* only its cache changes */
    json_t *ctx = json_copy(base_ctx(ex)); /* shallow: shares the parsed values */

    if (idx >= ex->wf->ntasks && idx < ex->nruns) {
        /* A fan-out instance: its item and index. */
        const struct trun *r = &ex->runs[idx];
        json_t *item = r->item ? json_loads(r->item, JSON_DECODE_ANY, NULL) : NULL;
        json_object_set_new(ctx, "item", item ? item : json_null());
        json_object_set_new(ctx, "index", json_integer(r->item_index));
    }
    return ctx;
}

static int render_one(const char *text, const json_t **ctx, json_t **owned,
                      const struct exec *ex, size_t idx, enum tpl_quote q, char **out, char *msg,
                      size_t msglen)
{
    struct tpl *t = NULL;
    struct err err = ERR_INIT;
    int rc;

    if (!strstr(text, "{{")) {
        *out = xstrdup(text);
        return 0;
    }
    if (!*ctx) {
        *owned = engine__render_ctx(ex, idx);
        *ctx = *owned;
    }
    rc = tpl_parse(text, &t, &err);
    if (rc == 0)
        rc = tpl_render(t, *ctx, q, out, &err);
    tpl_free(t);
    if (rc)
        snprintf(msg, msglen, "cannot fill in its command: %.400s", err.msg);
    return rc;
}

/* Task `idx`'s `when`: 1 it holds (or there is none), 0 it does not, -1 it
 * cannot be evaluated (msg says why). */
int engine__when_holds(const struct exec *ex, size_t idx, char *msg, size_t msglen)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct expr *e = NULL;
    struct err err = ERR_INIT;
    int holds = 0, rc;

    if (!t->when)
        return 1;
    rc = expr_parse(t->when, &e, &err);
    if (rc == 0) {
        json_t *ctx = engine__render_ctx(ex, idx);
        rc = expr_eval(e, ctx, &holds, &err);
        json_decref(ctx);
    }
    expr_free(e);
    if (rc) {
        snprintf(msg, msglen, "cannot evaluate its condition: %.400s", err.msg);
        return -1;
    }
    return holds ? 1 : 0;
}

/*
 * Fill in the placeholders of task `idx`: argv elements as they are, each
 * value in a shell command single-quoted (it stays one word, whatever it
 * holds), env values as they are. Returns 0 (rd filled; nothing to do leaves
 * it empty) or -1 with a message.
 */
int engine__render_task(const struct exec *ex, size_t idx, struct rendered *rd, char *msg,
                        size_t msglen)
{
    const struct dag_task *t = engine__task(ex, idx);
    const json_t *ctx = NULL;
    json_t *owned = NULL;
    int any = 0, rc = 0;

    memset(rd, 0, sizeof(*rd));
    if (t->shell)
        any |= strstr(t->shell, "{{") != NULL;
    for (size_t i = 0; t->argv && i < t->argc; i++)
        any |= t->argv[i] && strstr(t->argv[i], "{{") != NULL;
    for (size_t i = 0; i < t->nenv; i++)
        any |= strstr(t->env[i].value, "{{") != NULL;
    if (!any)
        return 0;
    if (t->shell) {
        rc = render_one(t->shell, &ctx, &owned, ex, idx, TPL_SHELL, &rd->shell, msg, msglen);
    } else {
        rd->argv = xcalloc(t->argc + 1, sizeof(*rd->argv));
        for (size_t i = 0; i < t->argc && rc == 0; i++)
            rc = render_one(t->argv[i], &ctx, &owned, ex, idx, TPL_RAW, &rd->argv[i], msg, msglen);
    }
    if (t->nenv)
        rd->env = xcalloc(t->nenv, sizeof(*rd->env));
    for (size_t i = 0; i < t->nenv && rc == 0; i++)
        rc = render_one(t->env[i].value, &ctx, &owned, ex, idx, TPL_RAW, &rd->env[i], msg, msglen);
    json_decref(owned);
    if (rc) {
        engine__rendered_release(rd, t);
        return -1;
    }
    return 0;
}

/*
 * What another node needs to run task `idx` of `ex` (remote.c): the command,
 * its directory, and the environment entries this task adds to or changes in
 * orch's own (the runner starts from its own environment, as here).
 */
json_t *engine__task_spec(const struct exec *ex, size_t idx, char *msg, size_t msglen)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct rendered rd;
    char **full;
    json_t *o, *env;

    if (engine__render_task(ex, idx, &rd, msg, msglen) != 0)
        return NULL;
    full = engine__task_env(ex, idx, ex->runs[idx].attempt, NULL, &rd);
    o = json_object();
    env = json_array();

    for (char **e = full; *e; e++) {
        int inherited = 0;
        for (char **g = environ; g && *g && !inherited; g++)
            if (!strcmp(*e, *g) && !env_is_private(*g))
                inherited = 1;
        if (!inherited)
            json_array_append_new(env, json_string(*e));
    }
    engine__strv_free(full);
    json_object_set_new(o, "task", json_string(engine__task_name(ex, idx)));
    json_object_set_new(o, "workflow", json_string(ex->wf->name));
    if (t->shell) {
        json_object_set_new(o, "shell", json_string(rd.shell ? rd.shell : t->shell));
    } else {
        json_t *argv = json_array();
        char **av = rd.argv ? rd.argv : t->argv;
        for (size_t i = 0; av && av[i]; i++)
            json_array_append_new(argv, json_string(av[i]));
        json_object_set_new(o, "argv", argv);
    }
    engine__rendered_release(&rd, t);
    if (t->working_dir)
        json_object_set_new(o, "dir", json_string(t->working_dir));
    json_object_set_new(o, "env", env);
    return o;
}

/* The environment of a process run for another node: ours, then the spec's. */
char **engine__runner_env(const json_t *spec, const char *output_path)
{
    char **envp = NULL;
    size_t n = 0, alloc = 0;
    const json_t *env = json_object_get(spec, "env");

    inherited_env(&envp, &n, &alloc);
    for (size_t i = 0; i < json_array_size(env); i++) {
        const char *kv = json_string_value(json_array_get(env, i));
        const char *eq = kv ? strchr(kv, '=') : NULL;
        char *k;
        if (!eq || eq == kv)
            continue;
        k = xstrndup(kv, (size_t)(eq - kv));
        env_set(&envp, &n, &alloc, k, eq + 1);
        free(k);
    }
    if (output_path)
        env_set(&envp, &n, &alloc, "ORCH_OUTPUT", output_path);
    return envp;
}

/* ------------------------------------------------------------------ params */

json_t *engine__resolve_params(const struct workflow *wf, const char *params_json,
                               struct err *err)
{
    json_error_t jerr;
    json_t *in = NULL, *out = NULL;
    const char *key;
    json_t *val;

    if (params_json && *params_json) {
        in = json_loads(params_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!in || !json_is_object(in)) {
            err_set(err, ERR_INVALID, "params must be a JSON object%s%s", in ? "" : ": ",
                    in ? "" : jerr.text);
            goto out;
        }
    } else {
        in = json_object();
    }
    out = json_object();
    json_object_foreach(in, key, val) {
        const struct dag_param *p = NULL;
        for (size_t i = 0; i < wf->nparams; i++)
            if (!strcmp(wf->params[i].name, key))
                p = &wf->params[i];
        if (!p) {
            err_set(err, ERR_INVALID, "unknown param '%s' (workflow '%s' declares %zu param%s)",
                    key, wf->name, wf->nparams, wf->nparams == 1 ? "" : "s");
            goto fail;
        }
        switch (p->type) {
        case PARAM_STRING:
            if (!json_is_string(val)) {
                err_set(err, ERR_INVALID, "param '%s' must be a string", key);
                goto fail;
            }
            break;
        case PARAM_NUMBER:
            if (!json_is_number(val)) {
                err_set(err, ERR_INVALID, "param '%s' must be a number", key);
                goto fail;
            }
            break;
        case PARAM_BOOLEAN:
            if (!json_is_boolean(val)) {
                err_set(err, ERR_INVALID, "param '%s' must be a boolean", key);
                goto fail;
            }
            break;
        case PARAM_OBJECT:
            if (!json_is_object(val)) {
                err_set(err, ERR_INVALID, "param '%s' must be an object", key);
                goto fail;
            }
            break;
        }
        json_object_set(out, key, val);
    }
    for (size_t i = 0; i < wf->nparams; i++) {
        const struct dag_param *p = &wf->params[i];
        if (json_object_get(out, p->name))
            continue;
        if (p->default_json) {
            json_t *d = json_loads(p->default_json, JSON_DECODE_ANY, NULL);
            if (d)
                json_object_set_new(out, p->name, d);
        } else if (p->required) {
            err_set(err, ERR_INVALID, "missing required param '%s'", p->name);
            goto fail;
        }
    }
    goto out;
fail:
    json_decref(out);
    out = NULL;
out:
    json_decref(in);
    return out;
}

int engine__params_same(const struct workflow *wf, const char *stored, const char *params_json)
{
    struct err err = ERR_INIT;
    json_t *p = engine__resolve_params(wf, params_json, &err);
    char *text = p ? json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    int same = text && stored && !strcmp(text, stored);

    json_decref(p);
    free(text);
    return same;
}

/* ------------------------------------------------------------------ JSON templates */

int engine__eval_template(const char *text, const json_t *ctx, json_t **out, struct err *err)
{
    struct tpl *t = NULL;
    int rc = tpl_parse(text, &t, err);

    *out = NULL;
    if (rc == 0)
        rc = tpl_eval_json(t, ctx, out, err);
    tpl_free(t);
    return rc;
}

static int render_json(json_t *v, const json_t *ctx, struct err *err, int depth);

/* Child `e` of a JSON container, filled in: a new value in *out (NULL: keep
 * `e`, whose own children were filled in place). */
static int render_child(json_t *e, const json_t *ctx, json_t **out, struct err *err, int depth)
{
    *out = NULL;
    if (json_is_string(e) && strstr(json_string_value(e), "{{"))
        return engine__eval_template(json_string_value(e), ctx, out, err);
    return render_json(e, ctx, err, depth + 1);
}

/* Replace each placeholder string of a JSON value by its value, in place. */
static int render_json(json_t *v, const json_t *ctx, struct err *err, int depth)
{
    const char *key;
    json_t *e, *val;
    size_t i;
    void *tmp;
    int rc;

    if (depth > 64)
        return 0;
    json_object_foreach_safe(v, tmp, key, e)
    {
        if ((rc = render_child(e, ctx, &val, err, depth)) != 0)
            return rc;
        if (val)
            json_object_set_new(v, key, val);
    }
    json_array_foreach(v, i, e)
    {
        if ((rc = render_child(e, ctx, &val, err, depth)) != 0)
            return rc;
        if (val)
            json_array_set_new(v, i, val);
    }
    return 0;
}

int engine__render_json(json_t *v, const json_t *ctx, struct err *err)
{
    return render_json(v, ctx, err, 0);
}
