/*
 * render.h - what a task sees of its execution (render.c): its process's
 * environment, its command and env with placeholders filled in, its `when`,
 * the spec another node runs it from, and the params of a new execution.
 *
 * Nothing here touches the store, the loop or a status: the functions read
 * an execution (the one write is the cache of its parsed placeholder
 * context, ex->ctx, dropped by the engine when a task succeeds). Loop thread
 * only. Returned vectors and JSON values are owned by the caller; messages
 * go to `msg` (or `err`) only on failure.
 */
#ifndef ORCH_ENGINE_RENDER_H
#define ORCH_ENGINE_RENDER_H

#include <stddef.h>

#include <jansson.h>

#include "base/err.h"

struct exec;
struct workflow;
struct dag_task;

/* A task's command and env with their {{ ... }} placeholders filled in. */
struct rendered {
    char **argv; /* NULL-terminated, or NULL: a shell command (or nothing to fill in) */
    char *shell;
    char **env;  /* values, in the order of t->env, or NULL */
};

/* Free a NULL-terminated vector of strings and the strings (NULL is fine). */
void engine__strv_free(char **v);

/* The environment every task of an execution starts from: orch's own without
 * its private variables (ORCH_*, DATABASE_URL, REDIS_URL), the workflow's env,
 * then one ORCH_PARAM_<name> per param. NULL-terminated, new. */
char **engine__base_env(const struct workflow *wf, json_t *params);

/* The environment of attempt `attempt` of run `idx`: the base, the task's env
 * (rendered by `rd` if not NULL), ORCH_EXECUTION_ID, ORCH_WORKFLOW, ORCH_TASK,
 * ORCH_ATTEMPT, an instance's ORCH_ITEM and ORCH_ITEM_INDEX, ORCH_OUTPUT (if
 * `output_path`), a scheduled execution's ORCH_SCHEDULED_FOR and ORCH_SCHEDULE. */
char **engine__task_env(const struct exec *ex, size_t idx, int attempt, const char *output_path,
                        const struct rendered *rd);
/* The same without copying the base: the entries that come unchanged from
 * ex->base_env are borrowed (valid while it is), the others made here and
 * listed in *owned (NULL-terminated, new). The spawn of every command task
 * runs through here. Free the vector with free() and *owned with
 * engine__strv_free(). */
char **engine__task_env_borrowed(const struct exec *ex, size_t idx, int attempt,
                                 const char *output_path, const struct rendered *rd,
                                 char ***owned);

/* Fill in the placeholders of run `idx`'s command and env: 0 (rd filled; with
 * nothing to fill in, all NULL) or -1 with a message. Release with
 * engine__rendered_release(). */
int engine__render_task(const struct exec *ex, size_t idx, struct rendered *rd, char *msg,
                        size_t msglen);
void engine__rendered_release(struct rendered *rd, const struct dag_task *t);

/* What placeholders of run `idx` see (params, outputs of succeeded tasks, the
 * execution's id and due time; an instance's item and index). New reference;
 * `idx` out of range: no item. */
json_t *engine__render_ctx(const struct exec *ex, size_t idx);

/* Run `idx`'s `when`: 1 it holds (or there is none), 0 it does not, -1 it
 * cannot be evaluated (msg says why). */
int engine__when_holds(const struct exec *ex, size_t idx, char *msg, size_t msglen);

/* What another node needs to run command task `idx` (remote.c): the command,
 * its directory, and the environment entries this task adds to or changes in
 * orch's own. New object, or NULL with a message (a placeholder). */
json_t *engine__task_spec(const struct exec *ex, size_t idx, char *msg, size_t msglen);

/* The environment of a process run for another node: ours, then the spec's,
 * then ORCH_OUTPUT (if `output_path`). NULL-terminated, new. */
char **engine__runner_env(const json_t *spec, const char *output_path);

/* `params_json` (or NULL: none) checked against the workflow's declared
 * params, with the defaults filled in: a new object, or NULL with err
 * (ERR_INVALID). */
json_t *engine__resolve_params(const struct workflow *wf, const char *params_json,
                               struct err *err);
/* Do `params_json` (a submission's params, or NULL) resolve against `wf` to the
 * params an execution stored (`stored`: compact, sorted keys)? 1 or 0 (also
 * when they do not resolve). */
int engine__params_same(const struct workflow *wf, const char *stored, const char *params_json);

/* Replace each string of `v` that holds placeholders by its value (a string
 * that is one placeholder takes the value's own type). */
int engine__render_json(json_t *v, const json_t *ctx, struct err *err);
/* One template as a JSON value (tpl_eval_json): *out is new, or NULL with err. */
int engine__eval_template(const char *text, const json_t *ctx, json_t **out, struct err *err);

#endif
