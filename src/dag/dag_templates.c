/*
 * dag_templates.c - pass 3 of a definition: the {{ ... }} placeholders of
 * command tasks (template.h) are checked where they are written, so that a
 * reference that can never be filled is a definition error, not a failure at
 * run time:
 *   - params.NAME must be a declared param;
 *   - tasks.NAME must be a task upstream of this one (reachable through
 *     dependsOn), whose output is known once it has succeeded;
 *   - execution.id and scheduledFor are always there;
 *   - item and index only in a task that fans out over a list (forEach).
 * Placeholders may stand in a command's arguments, its shell string and the
 * values of the task's env; in an HTTP task's url, header values, body and
 * username; in the param values a workflow task passes; in `forEach` (which
 * must be one placeholder) and in a task's `when` condition (expr.h), which
 * is parsed here too. The workflow's `outputs` may name any of its tasks.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "dag_internal.h"
#include "expr.h"
#include "template.h"

#include "base/banned.h"

/* upstream[j] = 1 for every task `i` depends on, directly or not. */
static void mark_upstream(const struct workflow *wf, size_t i, unsigned char *upstream,
                          size_t *stack)
{
    size_t n = 0;

    memset(upstream, 0, wf->ntasks);
    stack[n++] = i;
    while (n) {
        const struct dag_task *t = &wf->tasks[stack[--n]];
        for (size_t k = 0; k < t->ndeps; k++) {
            size_t d = t->deps[k];
            if (!upstream[d]) {
                upstream[d] = 1;
                stack[n++] = d;
            }
        }
    }
}

static size_t find_task(const struct workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->ntasks; i++)
        if (wf->tasks[i].name && !strcmp(wf->tasks[i].name, name))
            return i;
    return (size_t)-1;
}

static int has_param(const struct workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->nparams; i++)
        if (!strcmp(wf->params[i].name, name))
            return 1;
    return 0;
}

static int has_output(const struct dag_task *t)
{
    return t->type == TASK_COMMAND || t->type == TASK_HTTP || t->type == TASK_WORKFLOW ||
           t->for_each || t->for_each_json;
}

/* What a placeholder at hand may name. */
struct scope {
    size_t ti;                      /* the task it belongs to; NO_TASK: the workflow's outputs */
    const unsigned char *upstream;  /* tasks upstream of ti */
    int items;                      /* item and index are there */
};

#define NO_TASK ((size_t)-1)

static void check_ref(struct dag__parser *p, const struct dag__path *at,
                      const struct tpl_ref *ref, const struct scope *sc)
{
    const struct workflow *wf = p->wf;
    size_t ti = sc->ti;
    {
        switch (ref->root) {
        case TPL_PARAMS:
            if (!has_param(wf, ref->name))
                dag__problem(p, at, 0, 0,
                             "{{ %.*s%s }}: the workflow declares no param '%.*s%s'",
                             DAG__Q(ref->path), DAG__Q(ref->name));
            break;
        case TPL_TASKS: {
            size_t j = find_task(wf, ref->name);
            if (j == (size_t)-1)
                dag__problem(p, at, 0, 0, "{{ %.*s%s }}: there is no task '%.*s%s'",
                             DAG__Q(ref->path), DAG__Q(ref->name));
            else if (ti != NO_TASK && (j == ti || !sc->upstream[j]))
                dag__problem(p, at, 0, 0,
                             "{{ %.*s%s }}: task '%.*s%s' is not upstream of '%.*s%s' (add it "
                             "to dependsOn, directly or through another task)",
                             DAG__Q(ref->path), DAG__Q(ref->name), DAG__Q(wf->tasks[ti].name));
            else if (!has_output(&wf->tasks[j]))
                dag__problem(p, at, 0, 0,
                             "{{ %.*s%s }}: task '%.*s%s' has no output (command, http and "
                             "workflow tasks have one, and tasks with forEach)",
                             DAG__Q(ref->path), DAG__Q(ref->name));
            break;
        }
        case TPL_EXECUTION:
            if (strcmp(ref->path, "execution.id") != 0)
                dag__problem(p, at, 0, 0, "{{ %.*s%s }}: an execution has 'execution.id' only",
                             DAG__Q(ref->path));
            break;
        case TPL_SCHEDULED_FOR:
            break;
        case TPL_ITEM:
        case TPL_INDEX:
            if (!sc->items)
                dag__problem(p, at, 0, 0, "{{ %.*s%s }}: 'item' and 'index' exist only in a "
                             "task that fans out over a list (forEach), not in its forEach, "
                             "when or the workflow's outputs",
                             DAG__Q(ref->path));
            break;
        }
    }
}

static void check_one(struct dag__parser *p, const struct dag__path *at, const char *text,
                      const struct scope *sc)
{
    struct tpl *t = NULL;
    struct err err = ERR_INIT;

    if (!text || !strstr(text, "{{"))
        return;
    if (tpl_parse(text, &t, &err) != 0) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return;
    }
    for (size_t r = 0; r < tpl_nrefs(t); r++)
        check_ref(p, at, tpl_ref_at(t, r), sc);
    tpl_free(t);
}

static void check_when(struct dag__parser *p, const struct dag__path *at, const char *text,
                       const struct scope *sc)
{
    struct expr *e = NULL;
    struct err err = ERR_INIT;

    if (expr_parse(text, &e, &err) != 0) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return;
    }
    for (size_t r = 0; r < expr_nrefs(e); r++)
        check_ref(p, at, expr_ref_at(e, r), sc);
    expr_free(e);
}

/* The strings of a JSON body or of params, each a template. */
static void check_json_strings(struct dag__parser *p, const struct dag__path *at,
                               const json_t *v, const struct scope *sc, int depth)
{
    const char *key;
    json_t *e;
    size_t i;

    if (depth > 64)
        return;
    if (json_is_string(v)) {
        check_one(p, at, json_string_value(v), sc);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, e)
        {
            struct dag__path f = {at, key, 0};
            check_json_strings(p, &f, e, sc, depth + 1);
        }
    } else if (json_is_array(v)) {
        json_array_foreach((json_t *)v, i, e)
        {
            struct dag__path f = {at, NULL, i};
            check_json_strings(p, &f, e, sc, depth + 1);
        }
    }
}

static void check_json_text(struct dag__parser *p, const struct dag__path *at, const char *text,
                            const struct scope *sc)
{
    json_t *v;

    if (!text || !strstr(text, "{{"))
        return;
    v = json_loads(text, JSON_DECODE_ANY, NULL);
    check_json_strings(p, at, v, sc, 0);
    json_decref(v);
}

/* forEach: exactly one placeholder, which must name a list when it runs. */
static void check_for_each(struct dag__parser *p, const struct dag__path *at, const char *text,
                           const struct scope *sc)
{
    struct tpl *t = NULL;
    struct err err = ERR_INIT;
    size_t n = strlen(text);

    if (tpl_parse(text, &t, &err) != 0) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return;
    }
    if (tpl_nrefs(t) != 1 || strncmp(text, "{{", 2) != 0 || n < 4 ||
        strcmp(text + n - 2, "}}") != 0)
        dag__problem(p, at, 0, 0, "'forEach' must be a list, or one placeholder that names a "
                     "list (\"{{ tasks.list.output.files }}\"), got '%.*s%s'", DAG__Q(text));
    else
        check_ref(p, at, tpl_ref_at(t, 0), sc);
    tpl_free(t);
}

static void check_task(struct dag__parser *p, const struct dag__path *task, size_t i,
                       const unsigned char *upstream)
{
    const struct dag_task *t = &p->wf->tasks[i];
    struct scope plain = {i, upstream, 0};
    struct scope sc = {i, upstream, t->for_each || t->for_each_json};
    struct dag__path cmd = {task, "command", 0};
    struct dag__path env = {task, "env", 0};

    if (t->when) {
        struct dag__path at = {task, "when", 0};
        check_when(p, &at, t->when, &plain);
    }
    if (t->for_each) {
        struct dag__path at = {task, "forEach", 0};
        check_for_each(p, &at, t->for_each, &plain);
    }
    if (t->shell)
        check_one(p, &cmd, t->shell, &sc);
    for (size_t k = 0; t->argv && k < t->argc; k++) {
        struct dag__path at = {&cmd, NULL, k};
        if (k == 0 && t->argv[k] && strstr(t->argv[k], "{{"))
            dag__problem(p, &at, 0, 0, "the program name 'command[0]' cannot be a "
                         "template (pass values as arguments)");
        else
            check_one(p, &at, t->argv[k], &sc);
    }
    for (size_t k = 0; k < t->nenv; k++) {
        struct dag__path at = {&env, t->env[k].key, 0};
        check_one(p, &at, t->env[k].value, &sc);
    }
    if (t->type == TASK_HTTP) {
        struct dag__path url = {task, "url", 0};
        struct dag__path hdr = {task, "headers", 0};
        struct dag__path body = {task, "body", 0};
        struct dag__path auth = {task, "auth", 0};
        struct dag__path user = {&auth, "username", 0};
        check_one(p, &url, t->http.url, &sc);
        for (size_t k = 0; k < t->http.nheaders; k++) {
            struct dag__path at = {&hdr, t->http.headers[k].key, 0};
            check_one(p, &at, t->http.headers[k].value, &sc);
        }
        check_one(p, &body, t->http.body, &sc);
        check_json_text(p, &body, t->http.body_json, &sc);
        check_one(p, &user, t->http.username, &sc);
    }
    if (t->type == TASK_WORKFLOW) {
        struct dag__path at = {task, "params", 0};
        check_json_text(p, &at, t->subflow.params_json, &sc);
    }
}

static int has_tpl(const char *s)
{
    return s && strstr(s, "{{") != NULL;
}

/* Does task `t` hold a placeholder or a condition? (Finding what is upstream
 * costs O(tasks), so it is done only for those.) */
static int needs_check(const struct dag_task *t)
{
    if (t->when || t->for_each || has_tpl(t->shell) || has_tpl(t->http.url) ||
        has_tpl(t->http.body) || has_tpl(t->http.body_json) || has_tpl(t->http.username) ||
        has_tpl(t->subflow.params_json))
        return 1;
    for (size_t k = 0; t->argv && k < t->argc; k++)
        if (has_tpl(t->argv[k]))
            return 1;
    for (size_t k = 0; k < t->nenv; k++)
        if (has_tpl(t->env[k].value))
            return 1;
    for (size_t k = 0; k < t->http.nheaders; k++)
        if (has_tpl(t->http.headers[k].value))
            return 1;
    return 0;
}

void dag__check_templates(struct dag__parser *p)
{
    struct workflow *wf = p->wf;
    unsigned char *upstream = xcalloc(wf->ntasks ? wf->ntasks : 1, 1);
    size_t *stack = xcalloc(wf->ntasks ? wf->ntasks : 1, sizeof(*stack));

    for (size_t i = 0; i < wf->ntasks; i++) {
        struct dag__path tasks = {NULL, "tasks", 0};
        struct dag__path task = {&tasks, NULL, i};
        if (!needs_check(&wf->tasks[i]))
            continue;
        mark_upstream(wf, i, upstream, stack);
        check_task(p, &task, i, upstream);
    }
    if (wf->outputs_json) {
        struct dag__path at = {NULL, "outputs", 0};
        struct scope sc = {NO_TASK, upstream, 0};
        check_json_text(p, &at, wf->outputs_json, &sc);
    }
    free(stack);
    free(upstream);
}
