/*
 * dag.h - workflow definitions: the JSON format users write, parsed and
 * validated into an immutable struct workflow.
 *
 * Pure apart from time zones: a schedule's "timezone" is checked with
 * tz_load() (sched/tz.h), which reads the zone file once into a process-wide,
 * thread-safe cache, and an unknown zone makes the parser read the zone list
 * (tzdata.zi) for a suggestion. No other I/O, no global state of our own;
 * safe to call from any thread. All problems in a definition are reported at
 * once, each with the JSON path of the offending value
 * ("$.tasks[2].dependsOn[0]") and one clear message.
 */
#ifndef ORCH_DAG_DAG_H
#define ORCH_DAG_DAG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "sched/cron.h"

/* Limits on untrusted definitions. */
#ifndef DAG_MAX_BYTES
#define DAG_MAX_BYTES (4u * 1024 * 1024) /* a definition larger than this is rejected */
#endif
#ifndef DAG_MAX_TASKS
#define DAG_MAX_TASKS 100000
#endif
#ifndef DAG_MAX_ITEMS
#define DAG_MAX_ITEMS 100000 /* items of one fan-out (forEach) */
#endif
#ifndef DAG_MAX_SCHEDULES
#define DAG_MAX_SCHEDULES 1000 /* schedules of one workflow */
#endif
#ifndef DAG_MAX_PROBLEMS
#define DAG_MAX_PROBLEMS 100 /* report at most this many problems, then "... and N more" */
#endif

enum task_type {
    TASK_COMMAND = 0, /* default */
    TASK_NOOP,
    TASK_SLEEP,
    TASK_HTTP,     /* an HTTP request (struct dag_http) */
    TASK_WORKFLOW, /* a child execution of another workflow (struct dag_subflow) */
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

/* An accepted status range of an HTTP task: lo..hi inclusive. */
struct dag_status_range {
    int lo, hi;
};

/* TASK_HTTP. url, header values, body and username may hold {{ }} placeholders. */
struct dag_http {
    char *method;              /* upper case; default "GET" */
    char *url;
    struct dag_kv *headers;    /* in the order written */
    size_t nheaders;
    char *body;                /* a string body, or NULL */
    char *body_json;           /* a JSON body as compact text (its strings may be placeholders), or NULL */
    struct dag_status_range *expect; /* default: one range 200..299 */
    size_t nexpect;
    int follow_redirects;      /* default 1 */
    int idempotent;            /* may be retried: default 1 for GET, HEAD, PUT, DELETE, OPTIONS */
    char *username;            /* basic auth: the user, or NULL */
    char *username_env;        /* ... or the variable holding it */
    char *password_env;        /* basic auth: the variable holding the password */
    char *bearer_env;          /* bearer auth: the variable holding the token */
    char *auth_header;         /* auth in a header: its name ("X-Api-Key"), or NULL */
    char *auth_query;          /* ... or in a query parameter: its name, or NULL */
    char *value_env;           /* ... and the variable holding its value */
};

/* TASK_WORKFLOW. */
struct dag_subflow {
    char *workflow;    /* the registered workflow to run */
    char *params_json; /* compact JSON object (its strings may be placeholders), or NULL */
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
    char *when;       /* a condition (expr.h): false skips the task; NULL: none */
    int64_t sleep_ms; /* TASK_SLEEP: the duration */
    struct dag_http http;      /* TASK_HTTP */
    struct dag_subflow subflow; /* TASK_WORKFLOW */
    /* Fan-out over a list: one instance of the task per item. At most one of
     * for_each (a single placeholder naming a list) and for_each_json (a
     * literal JSON array, compact text) is set. */
    char *for_each;
    char *for_each_json;
    int max_parallel; /* instances running at once; 0 = no limit of its own */
};

/* What a schedule does about fire times missed while the scheduler was down. */
enum dag_catchup {
    DAG_CATCHUP_NONE = 0, /* skip them */
    DAG_CATCHUP_LATEST,   /* fire once, for the latest missed time (default) */
    DAG_CATCHUP_ALL,      /* fire each of them, at most max_catchup */
};

/* What a schedule does when a fire time comes while its previous execution still runs. */
enum dag_overlap {
    DAG_OVERLAP_SKIP = 0,        /* do not start (default) */
    DAG_OVERLAP_BUFFER_ONE,      /* start one when the running one ends */
    DAG_OVERLAP_BUFFER_ALL,      /* queue every one, start them in order */
    DAG_OVERLAP_CANCEL_PREVIOUS, /* cancel the running one, start the new one */
    DAG_OVERLAP_ALLOW,           /* start it anyway */
};

/*
 * One entry of "schedules". Exactly one of a cron expression (is_cron = 1:
 * cron and cron_text) and an interval (is_cron = 0: every_ms) is set. The
 * zone is kept by name only (a loaded struct tz belongs to tz_load()'s
 * cache); it was checked with tz_load() when the definition was parsed.
 */
struct dag_schedule {
    char *name;            /* as given, or "schedule-N" with N its index in the array */
    int is_cron;           /* 1: cron schedule; 0: interval ("every") schedule */
    struct cron_expr cron; /* is_cron: the parsed expression */
    char *cron_text;       /* is_cron: the expression as written; else NULL */
    int64_t every_ms;      /* !is_cron: the interval, a whole number of seconds >= 1s */
    char *every_text;      /* !is_cron: the interval as written if a string ("3s"); NULL
                            * if it was given as a number of seconds */
    char *timezone;        /* IANA zone name, default "UTC" */
    char *params_json;     /* compact JSON object of params for its executions, or NULL */
    int enabled;           /* default 1 */
    struct cron_dst dst;   /* default CRON_DST_INIT (shift, first) */
    enum dag_catchup catchup;
    int max_catchup;       /* 1..10000, default 100 */
    enum dag_overlap overlap;
};

/*
 * A notification rule ("notify"): on which ends of an execution (a mask of
 * DAG_NOTIFY_*) a webhook is called. The webhook is a POST (or `method`) to
 * `hook.url`, or to the URL held by the environment variable `url_env`, with
 * `hook.headers` (literal: no placeholders, no credentials) and credentials
 * from the environment through `hook`'s auth fields (bearer_env, basic with
 * password_env, header with value_env); its body is `hook.body` (a text
 * template) or `hook.body_json` (JSON whose strings are templates), or the
 * default JSON document (dag_notify_body()).
 */
enum dag_notify_on {
    DAG_NOTIFY_FAILED = 1 << 0,
    DAG_NOTIFY_TIMED_OUT = 1 << 1,
    DAG_NOTIFY_SUCCEEDED = 1 << 2,
    DAG_NOTIFY_CANCELLED = 1 << 3,
    DAG_NOTIFY_STUCK = 1 << 4, /* past maxRunning or maxQueued */
};
#define DAG_NOTIFY_EVENTS 5

struct dag_notify {
    unsigned on;
    struct dag_http hook; /* method, url, headers, body, auth; expect etc. unused */
    char *url_env;        /* the variable holding the url, or NULL (then hook.url) */
};

struct workflow {
    char *name;
    /* Compact JSON object of output name -> template, rendered when the
     * execution succeeds (what a parent's workflow task gets), or NULL. */
    char *outputs_json;
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
    struct dag_schedule *schedules; /* in the order written; NULL when none */
    size_t nschedules;
    struct dag_notify *notify; /* "notify" rules in the order written; NULL when none */
    size_t nnotify;
    int refs; /* owners besides the first (workflow_ref); never shared between threads */
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

/*
 * YAML definitions (dag_yaml.c). A definition may be written in YAML; it is
 * converted to the same JSON document (the form that is stored and served)
 * and then parsed by dag_parse(). Plain scalars follow the YAML 1.2 core
 * schema: true/false, null/~/empty, decimal, 0o and 0x integers and decimal
 * floats become JSON booleans, null and numbers; everything else (yes, no,
 * on, off, 0755 and other numbers with a leading zero, .inf, dates) and
 * every quoted or block scalar is a string.
 * Comments are allowed; anchors and aliases work but an alias may not refer
 * to its own anchor, the document may nest at most DAG_YAML_MAX_DEPTH deep
 * and expand to at most DAG_YAML_MAX_NODES nodes, aliases counted in full.
 * Duplicate keys, merge keys (<<), other tags and a second document are
 * refused. Problems carry the line and column (1-based).
 */
#ifndef DAG_YAML_MAX_DEPTH
#define DAG_YAML_MAX_DEPTH 64
#endif
#ifndef DAG_YAML_MAX_NODES
#define DAG_YAML_MAX_NODES 100000
#endif

/* Where each value of a converted YAML document was written: JSON path -> line, column. */
struct dag_yaml_pos {
    char *path; /* "$.tasks[0].command" */
    int line;   /* 1-based */
    int column; /* 1-based */
};
struct dag_yaml_map {
    struct dag_yaml_pos *items;
    size_t n, alloc;
};
#define DAG_YAML_MAP_INIT {NULL, 0, 0}
void dag_yaml_map_release(struct dag_yaml_map *map);

/*
 * Convert the YAML text `text` (`len` bytes) to a JSON document. Returns 0
 * with *out a new reference, or ERR_INVALID (ERR_TOO_BIG beyond
 * DAG_MAX_BYTES) with the problems appended to `probs` (path "$", the
 * message starts "invalid YAML at line L column C: "). When `map` is not
 * NULL the position of every value is recorded in it.
 */
struct json_t;
int dag_yaml_load(const char *text, size_t len, struct json_t **out, struct dag_yaml_map *map,
                  struct dag_problems *probs);

/* The same, giving the compact JSON text (caller frees) a definition is stored as. */
int dag_yaml_to_json(const char *text, size_t len, char **out, struct dag_yaml_map *map,
                     struct dag_problems *probs);

/* Give the problems without a position (line 0) the line and column of the
 * nearest value of `map` along their path (none for "$" itself). */
void dag_yaml_locate(const struct dag_yaml_map *map, struct dag_problems *probs);

/*
 * Is a definition YAML? By the name when it ends in .yaml or .yml (YAML) or
 * .json (JSON); otherwise (name NULL, "-" or another suffix) by the text:
 * JSON when its first character other than white space is '{'.
 */
int dag_is_yaml(const char *name, const char *text, size_t len);

/* The JSON value `v` as a YAML document (block style, keys in order; a
 * multi-line string as a literal block). Caller frees. */
char *dag_json_to_yaml(const struct json_t *v);

/* Index of the task called `name`, or -1. */
long dag_find_task(const struct workflow *wf, const char *name);

/* One more owner of `wf` (it is read-only once parsed): each calls workflow_free. */
struct workflow *workflow_ref(struct workflow *wf);
/* Drop an owner of `wf`; the last one frees it. */
void workflow_free(struct workflow *wf);

/*
 * Validate one schedule object `spec` (the fields of an entry of "schedules",
 * as JSON text) against the workflow `definition` it belongs to (its params):
 * the schedules the API creates. On success *out is the workflow with exactly
 * that one schedule (out->schedules[0]); problems have paths relative to the
 * schedule object ("$.cron", "$.params.day").
 */
int dag_parse_schedule(const char *definition, const char *spec, struct workflow **out,
                       struct dag_problems *probs);

/*
 * A text that identifies what decides `s`'s due times and its executions'
 * params (expression or interval, zone, DST rules, enabled, params): the
 * scheduler keeps it with each schedule's state and recomputes the next due
 * time when it changes. Returns a string the caller frees.
 */
char *dag_schedule_hash(const struct dag_schedule *s);

/*
 * Notifications (dag_notify.c). Names of the events, indexed by bit number:
 * "failed", "timed_out", "succeeded", "cancelled", "stuck". dag_notify_event()
 * gives the bit of a name, or 0.
 */
const char *dag_notify_event_name(unsigned bit);
unsigned dag_notify_event(const char *name);

/*
 * A notification body template holds placeholders "{{ NAME }}" (white space
 * optional) where NAME is one of execution.id, workflow, status, event,
 * error, link, failedTasks; everything else is literal text. Check one:
 * 0, or -1 with a message in `msg` naming the first unknown or unclosed
 * placeholder.
 */
int dag_notify_check(const char *tpl, char *msg, size_t len);

/* What a notification tells of its execution. Borrowed strings, NULL for none. */
struct dag_notify_vars {
    const char *exec_id;
    const char *workflow;
    const char *status; /* the execution's status ("failed"); for "stuck", "running" */
    const char *event;  /* what the notification is about: a DAG_NOTIFY_* name */
    const char *error;  /* the execution's error */
    const char *link;   /* its page in the web UI */
    const char *const *failed_tasks;  /* names of its failed or timed out tasks */
    const char *const *failed_errors; /* their errors (an entry may be NULL) */
    size_t nfailed;
};

/*
 * The body of a notification (a new string, caller frees), from `n`'s
 * template (NULL or no body: the default JSON document {"executionId",
 * "workflow", "status", "event", "error", "failedTasks": [{"task", "error"}],
 * "link"}). In a text template each value is inserted as is (failedTasks as
 * "name: error; ..."); in a JSON template a string that is only
 * {{ failedTasks }} becomes the array, and every other value is inserted
 * into its string (so the result is JSON whatever the values hold).
 * Placeholders were checked by dag_parse(); an unknown one is left as it is.
 */
char *dag_notify_body(const struct dag_notify *n, const struct dag_notify_vars *v);

const char *dag_task_type_name(enum task_type t);
const char *dag_run_if_name(enum run_if r);
/* The names used in definitions: "latest", "bufferOne", ... Never NULL. */
const char *dag_catchup_name(enum dag_catchup c);
const char *dag_overlap_name(enum dag_overlap o);

/*
 * Credentials in definitions (dag_secrets.c). A definition is shown to every
 * key with the read scope, so an HTTP task's credentials are never written
 * in it: a header whose name says it carries one, the url's user-info and a
 * query parameter whose name says it is a secret hold no literal text (they
 * come from `auth` and the environment, or from placeholders filled in at run
 * time), which dag_parse() checks.
 */
/* Does a header called `name` carry a credential (Authorization, Cookie, X-Api-Key, ...)? */
int dag_header_is_credential(const char *name);
/* Is a query parameter called `key` (`len` bytes) a secret (token, api_key, sig, ...)? */
int dag_query_key_is_secret(const char *key, size_t len);
/*
 * Replace the literal credentials of the HTTP tasks of `def` (a definition as
 * JSON, e.g. one stored before these checks existed) by "[redacted]", in
 * place. Returns how many were replaced.
 */
struct json_t;
size_t dag_redact_definition(struct json_t *def);

/* Is `name` a valid workflow name ([a-z0-9][a-z0-9._-]{0,127})? */
int dag_valid_workflow_name(const char *name);

/*
 * "Did you mean": the nearest of `cands[0..n)` to `word` by edit distance
 * when it is a plausible typo of it (as for unknown definition fields), else
 * NULL. NULL entries are skipped.
 */
const char *dag_suggest(const char *word, const char *const *cands, size_t n);
/*
 * For a time zone name that tz_load() does not know: the nearest zone name of
 * tzdata.zi written to `out` (returns 0), or -1 when there is none.
 */
int dag_suggest_zone(const char *name, char *out, size_t outlen);

#endif
