/*
 * dag.h - workflow definitions: the JSON format users write, parsed and
 * validated into an immutable struct workflow.
 *
 * Pure: no I/O, no global state; safe to call from any thread. All problems
 * in a definition are reported at once, each with the JSON path of the
 * offending value ("$.tasks[2].dependsOn[0]") and one clear message.
 */
#ifndef ORCH_DAG_DAG_H
#define ORCH_DAG_DAG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

/* Limits on untrusted definitions. */
#ifndef DAG_MAX_BYTES
#define DAG_MAX_BYTES (4u * 1024 * 1024) /* a definition larger than this is rejected */
#endif
#ifndef DAG_MAX_TASKS
#define DAG_MAX_TASKS 100000
#endif
#ifndef DAG_MAX_PROBLEMS
#define DAG_MAX_PROBLEMS 100 /* report at most this many problems, then "... and N more" */
#endif

enum task_type {
    TASK_COMMAND = 0, /* default */
    TASK_NOOP,
    TASK_SLEEP,
};

enum run_if {
    RUN_IF_ALL_SUCCEEDED = 0, /* default: every dependency succeeded */
    RUN_IF_ALL_DONE,          /* every dependency finished, whatever its result */
    RUN_IF_ANY_FAILED,        /* every dependency finished and at least one failed */
};

struct dag_kv {
    char *key;
    char *value;
};

struct dag_backoff {
    int64_t initial_ms; /* default 1000 */
    double factor;      /* default 2.0 */
    int64_t max_ms;     /* default 300000 */
    int jitter;         /* 1 (default): +-20% random jitter; 0: none */
};

enum param_type {
    PARAM_STRING = 0,
    PARAM_NUMBER,
    PARAM_BOOLEAN,
    PARAM_OBJECT,
};

struct dag_param {
    char *name;
    enum param_type type;
    int required;        /* 1 if no default and the caller must give it */
    char *default_json;  /* the default as JSON text, or NULL */
    char *description;   /* or NULL */
};

struct dag_task {
    char *name;
    enum task_type type;
    size_t *deps; /* indices into workflow->tasks, in the order written */
    size_t ndeps;
    size_t *children; /* reverse edges: tasks that depend on this one */
    size_t nchildren;
    /* TASK_COMMAND: exactly one of argv (NULL-terminated, run without a shell)
     * and shell (run with /bin/sh -c) is set. */
    char **argv;
    size_t argc;
    char *shell;
    struct dag_kv *env;
    size_t nenv;
    char *working_dir;  /* or NULL */
    int64_t timeout_ms; /* 0 = none */
    int retries;        /* extra attempts after the first, 0..100 */
    struct dag_backoff backoff;
    enum run_if run_if;
    int64_t sleep_ms; /* TASK_SLEEP: the duration */
};

struct workflow {
    char *name;
    char *description; /* or NULL */
    struct dag_param *params;
    size_t nparams;
    struct dag_task *tasks;
    size_t ntasks;
    size_t *topo;       /* task indices in a topological order (ntasks entries) */
    int64_t timeout_ms; /* 0 = none */
    int concurrency;    /* max tasks of one execution running at once; 0 = unlimited */
    struct dag_kv *env;
    size_t nenv;
    int64_t retention_ms;   /* keep finished executions this long; 0 = the server default */
    int64_t max_queued_ms;  /* a task queued longer than this is stuck; 0 = never */
    int64_t max_running_ms; /* an execution running longer than this is stuck; 0 = never */
    int stuck_fail;         /* stuckPolicy: 0 "warn" (log only), 1 "fail" */
};

struct dag_problem {
    char *path;    /* "$.tasks[1].dependsOn[0]" */
    char *message; /* "unknown task 'trasform' (did you mean 'transform'?)" */
    int line;      /* 1-based line in the source, 0 if unknown */
    int column;    /* 1-based column, 0 if unknown */
};

struct dag_problems {
    struct dag_problem *items;
    size_t n;
    size_t alloc;
    size_t dropped; /* problems beyond DAG_MAX_PROBLEMS, not stored */
};

#define DAG_PROBLEMS_INIT {NULL, 0, 0, 0}

void dag_problems_release(struct dag_problems *probs);

/*
 * Parse and validate a definition of `len` bytes (need not be NUL-terminated).
 * On success returns 0 and *out is a new workflow (free with workflow_free).
 * On failure returns ERR_INVALID (or ERR_TOO_BIG), *out is NULL and every
 * problem found is appended to `probs`. Never crashes on any input.
 */
int dag_parse(const char *json, size_t len, struct workflow **out, struct dag_problems *probs);

/* Index of the task called `name`, or -1. */
long dag_find_task(const struct workflow *wf, const char *name);

void workflow_free(struct workflow *wf);

const char *dag_task_type_name(enum task_type t);
const char *dag_run_if_name(enum run_if r);

/* Is `name` a valid workflow name ([a-z0-9][a-z0-9._-]{0,127})? */
int dag_valid_workflow_name(const char *name);

#endif
