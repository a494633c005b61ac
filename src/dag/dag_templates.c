/*
 * dag_templates.c - pass 3 of a definition: the {{ ... }} placeholders of
 * command tasks (template.h) are checked where they are written, so that a
 * reference that can never be filled is a definition error, not a failure at
 * run time:
 *   - params.NAME must be a declared param;
 *   - tasks.NAME must be a task upstream of this one (reachable through
 *     dependsOn), whose output is known once it has succeeded;
 *   - execution.id and scheduledFor are always there;
 *   - item and index need a fan-out over a list (not part of the format yet).
 * Placeholders may stand in a command's arguments, its shell string and the
 * values of the task's env, and in a task's `when` condition (expr.h), which
 * is parsed here too.
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

static void check_ref(struct dag__parser *p, const struct dag__path *at,
                      const struct tpl_ref *ref, size_t ti, const unsigned char *upstream)
{
    const struct workflow *wf = p->wf;
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
            else if (j == ti || !upstream[j])
                dag__problem(p, at, 0, 0,
                             "{{ %.*s%s }}: task '%.*s%s' is not upstream of '%.*s%s' (add it "
                             "to dependsOn, directly or through another task)",
                             DAG__Q(ref->path), DAG__Q(ref->name), DAG__Q(wf->tasks[ti].name));
            else if (wf->tasks[j].type != TASK_COMMAND)
                dag__problem(p, at, 0, 0,
                             "{{ %.*s%s }}: task '%.*s%s' has no output (only command tasks "
                             "have one)",
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
            dag__problem(p, at, 0, 0, "{{ %.*s%s }}: 'item' and 'index' exist only in a "
                         "task that fans out over a list",
                         DAG__Q(ref->path));
            break;
        }
    }
}

static void check_one(struct dag__parser *p, const struct dag__path *at, const char *text,
                      size_t ti, const unsigned char *upstream)
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
        check_ref(p, at, tpl_ref_at(t, r), ti, upstream);
    tpl_free(t);
}

static void check_when(struct dag__parser *p, const struct dag__path *at, const char *text,
                       size_t ti, const unsigned char *upstream)
{
    struct expr *e = NULL;
    struct err err = ERR_INIT;

    if (expr_parse(text, &e, &err) != 0) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return;
    }
    for (size_t r = 0; r < expr_nrefs(e); r++)
        check_ref(p, at, expr_ref_at(e, r), ti, upstream);
    expr_free(e);
}

void dag__check_templates(struct dag__parser *p)
{
    struct workflow *wf = p->wf;
    unsigned char *upstream = xcalloc(wf->ntasks ? wf->ntasks : 1, 1);
    size_t *stack = xcalloc(wf->ntasks ? wf->ntasks : 1, sizeof(*stack));

    for (size_t i = 0; i < wf->ntasks; i++) {
        const struct dag_task *t = &wf->tasks[i];
        struct dag__path tasks = {NULL, "tasks", 0};
        struct dag__path task = {&tasks, NULL, i};
        struct dag__path cmd = {&task, "command", 0};
        struct dag__path env = {&task, "env", 0};

        struct dag__path when = {&task, "when", 0};

        if (t->when) {
            mark_upstream(wf, i, upstream, stack);
            check_when(p, &when, t->when, i, upstream);
        }
        if (t->type != TASK_COMMAND)
            continue;
        mark_upstream(wf, i, upstream, stack);
        if (t->shell)
            check_one(p, &cmd, t->shell, i, upstream);
        for (size_t k = 0; t->argv && k < t->argc; k++) {
            struct dag__path at = {&cmd, NULL, k};
            if (k == 0 && t->argv[k] && strstr(t->argv[k], "{{"))
                dag__problem(p, &at, 0, 0, "the program name 'command[0]' cannot be a "
                             "template (pass values as arguments)");
            else
                check_one(p, &at, t->argv[k], i, upstream);
        }
        for (size_t k = 0; k < t->nenv; k++) {
            struct dag__path at = {&env, t->env[k].key, 0};
            check_one(p, &at, t->env[k].value, i, upstream);
        }
    }
    free(stack);
    free(upstream);
}
