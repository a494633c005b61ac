/*
 * cli.h - shared pieces of the command-line tool: options, settings, exit codes.
 */
#ifndef ORCH_CLI_CLI_H
#define ORCH_CLI_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

/* Exit codes (documented in the README). */
enum cli_exit {
    EXIT_OK = 0,
    EXIT_FAILED = 1,    /* the execution failed */
    EXIT_USAGE = 2,     /* bad command line */
    EXIT_INVALID = 3,   /* invalid workflow definition or params */
    EXIT_TIMED_OUT = 4, /* the execution timed out */
    EXIT_CANCELLED = 5, /* the execution was cancelled (e.g. Ctrl-C) */
    EXIT_NOT_FOUND = 6, /* no such execution / file */
    EXIT_AUTH = 7,      /* the server refused the API key (HTTP 401, 403 or 429) */
    EXIT_INTERRUPTED = 8, /* `orch resume` stopped by a signal: executions left to resume */
    EXIT_INTERNAL = 70, /* store, I/O or internal error */
};

/* Map an error code to an exit code (the one place that does it). */
int cli_exit_for_err(int code);
/* Map a final execution status to an exit code. */
int cli_exit_for_status(enum exec_status st);
/* Map the HTTP status of a server's answer to an exit code (cmd_client.c):
 * 2xx 0, 400 2, 401/403/429 7, 404 6, 409 1, 413/422 3, others 70. */
int cli_exit_for_http(long status);

/* One option of a command. */
struct cli_opt {
    const char *name;  /* "param" for --param */
    const char *arg;   /* argument name for help ("K=V"), or NULL for a flag */
    const char *help;
    int repeat;        /* may be given more than once */
};

struct cli_cmd {
    const char *name;  /* "run" or "executions list" */
    const char *args;  /* positional usage: "FILE" */
    const char *summary;
    const struct cli_opt *opts; /* terminated by {NULL} */
};

#define CLI_MAX_VALUES 64

/* Parsed command line of one command. */
struct cli_args {
    const struct cli_cmd *cmd;
    const char *pos[16];
    int npos;
    struct {
        const struct cli_opt *opt;
        const char *value; /* NULL for flags */
    } vals[CLI_MAX_VALUES];
    int nvals;
};

/*
 * Parse argv (after the command words) against cmd's options plus the global
 * ones (--data-dir, --log-level, --json where declared, --help). Prints help
 * and returns 1 for --help; prints an error and returns -1 for bad usage;
 * returns 0 otherwise.
 */
int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *out);
void cli_usage(const struct cli_cmd *cmd, int to_stderr);
/* Last value of option `name`, or NULL. */
const char *cli_get(const struct cli_args *a, const char *name);
int cli_flag(const struct cli_args *a, const char *name);

/*
 * The options of a command that can talk to a server, to put in its option
 * table. With a server (--server or $ORCH_SERVER) the command is a REST
 * client of it; without, it works on the local data directory.
 */
#define CLI_SERVER_OPTS                                                                            \
    {"server", "URL", "talk to the orch server at URL (default $ORCH_SERVER)", 0},                 \
    {"api-key", "KEY", "API key for the server (default $ORCH_API_KEY)", 0},                       \
    {"cacert", "FILE", "CA certificate to verify an https server with (default $ORCH_CACERT)", 0}

/* The server URL: --server, else $ORCH_SERVER, else NULL (local mode). */
const char *cli_server(const struct cli_args *a);

/* The data directory: --data-dir, else $ORCH_DATA_DIR, else "./.orch". */
const char *cli_data_dir(const struct cli_args *a);
/* Apply --log-level / $ORCH_LOG_LEVEL. Returns 0 or -1 (message printed). */
int cli_apply_log_level(const struct cli_args *a);

/* The PostgreSQL location: --database-url, else $DATABASE_URL, else NULL. */
const char *cli_database_url(const struct cli_args *a);
/* The Redis URL: --redis-url, else $ORCH_REDIS_URL, else $REDIS_URL; NULL if none.
 * It may hold a password: never print it (parse it and print its `shown`). */
const char *cli_redis_url(const struct cli_args *a);
/* Where the store is: the database URL if any, else the data directory. */
const char *cli_store_location(const struct cli_args *a);

/* Open the store (PostgreSQL with a database URL, else the data directory's
 * SQLite); prints the error. `writer` opens for writing (and migrates). */
int cli_open_store(const struct cli_args *a, int writer, struct store **out);

/* What cli_register_workflow() recorded. */
struct cli_registered {
    char name[130];
    int version;
    int changed; /* a new version was added */
    size_t ntasks;
};

/* Check the definition in file `path` (its workflow tasks too) and record it
 * as the newest version of its workflow in `st`. Returns an exit status;
 * problems are printed. (register.c) */
int cli_register_workflow(struct store *st, const char *path, struct cli_registered *out);
/* The same for a file, or for every *.json of a directory (in name order,
 * but each after the workflows its workflow tasks run); stops at the first
 * failure. */
int cli_register_path(struct store *st, const char *path);
/* The same, on a reload (SIGHUP): a file that fails is reported and keeps
 * its previous version, and the other files are registered all the same;
 * returns the first failure's status. */
int cli_reload_path(struct store *st, const char *path);

/*
 * Read a workflow definition file, JSON or YAML (dag_is_yaml()), and give
 * its JSON text (*out_len bytes): what is checked and stored. A YAML file's
 * value positions go to *map (released by the caller) for
 * cli_print_problems(); a YAML syntax problem is printed. Caller frees.
 */
struct dag_yaml_map;
struct dag_problems;
char *cli_read_definition(const char *path, size_t *out_len, int *out_exit,
                          struct dag_yaml_map *map);
/* "error: invalid workflow 'PATH':" and one line per problem, with the line
 * and column of a YAML file's value when `map` knows it. */
void cli_print_problems(const char *path, struct dag_problems *probs,
                        const struct dag_yaml_map *map);
/* One problem line: "  PATH (line L, column C): MESSAGE" (no position when unknown). */
void cli_print_problem(const char *path, const char *message, int line, int column);

/* Read a whole file (at most `max` bytes); prints the error. Caller frees. */
char *cli_read_file(const char *path, size_t max, size_t *out_len, int *out_exit);

/*
 * The params object of --params-file FILE (a JSON or YAML object) and every
 * --param K=V over it. V follows the type `wf` declares for K: a string
 * param takes the text as it is; other params take V as JSON when it parses,
 * else as a string. V "null" is never the text "null": it leaves an optional
 * param to its default and is refused for a required one. `wf` may be NULL
 * (types unknown). NULL with *out_exit set on a bad one. The caller
 * json_decref()s it.
 */
struct json_t;
struct workflow;
struct json_t *cli_params_json(const struct cli_args *a, const struct workflow *wf,
                               int *out_exit);

/*
 * Results, local or remote, are printed by one printer each (print.c), from
 * the API's JSON: a local command builds it from the store with the view
 * functions the server uses (view_exec_list(), cli_exec_json()).
 */
/* `j` as indented JSON and a newline (what --json prints). */
void cli_print_json(const struct json_t *j);
/* Member `key` of object `o`: its text, "" if it is not a string. */
const char *cli_jstr(const struct json_t *o, const char *key);
/* Member `key` of object `o`: its value, `dflt` if it is not an integer. */
long long cli_jint(const struct json_t *o, const char *key, long long dflt);
/* A page of executions ({"items", "nextCursor"}): the table of `executions
 * list`, "No executions." when empty, or only the ids (ids_only). */
void cli_print_exec_list(const struct json_t *page, int ids_only);
/* An ExecutionDetail: the text of `executions show`. */
void cli_print_exec_detail(const struct json_t *d);
/* The OUTPUT table of an execution's tasks (the "tasks" array of its JSON
 * view): one line per task with an output, long ones cut. */
void cli_print_outputs(const struct json_t *tasks);
/* "Waiting" and a line per task run that has a waitingOn (nothing if none). */
void cli_print_waiting(const struct json_t *tasks);

/*
 * The rows of a task table in display order: each fan-out's instances right
 * after their group (the forEach task), at most CLI_SHOWN_OK succeeded
 * instances of a group (the others summed up in one line: an entry with
 * `hidden` > 0, idx the group). refs[i] says of row i which row is its group
 * (-1: none) and whether it succeeded. `out` must have room for twice the
 * rows; returns the number of entries. O(rows).
 */
#define CLI_SHOWN_OK 10
struct cli_row {
    size_t idx;
    size_t hidden; /* > 0: "... N more succeeded" of group idx */
    int instance;  /* a fan-out instance (print it indented) */
};
struct cli_task_ref {
    long group; /* the row of its group, or -1 */
    int succeeded;
};
size_t cli_task_order(const struct cli_task_ref *refs, size_t n, struct cli_row *out);
/* The same for the `tasks` of an ExecutionDetail (JSON): a new array of n
 * entries (free it), *out_n the number. */
struct cli_row *cli_task_order_json(const struct json_t *tasks, size_t *out_n);
struct exec_detail;
struct cli_row *cli_task_order_detail(const struct exec_detail *d, size_t *out_n);

/*
 * What the summary of a run (`orch run`, `trigger --wait`) shows: built from
 * the store's rows by the local mode (without a JSON document per task, so a
 * 100,000-task run prints its summary in O(tasks) small structs) or from an
 * ExecutionDetail by cli_run_view_from_json(), and printed by
 * cli_print_run_summary(). Strings are borrowed from the source (outputs is
 * owned); release with cli_run_view_release().
 */
struct cli_run_task {
    const char *name;
    const char *status;
    long long attempt;
    int64_t duration_ms; /* -1: not started or not finished */
    const char *error;   /* "" if none */
    int instance;        /* a fan-out instance */
};
struct cli_run_view {
    const char *id;
    const char *status;
    int64_t duration_ms; /* 0 if it did not run */
    int64_t retry_ms;    /* finished - retried, -1 if not retried or not finished */
    struct cli_run_task *tasks;
    size_t ntasks;
    struct cli_row *rows; /* display order: cli_task_order() */
    size_t nrows;
    size_t counts[TASK_STATUS_COUNT]; /* tasks (and summarised instances) by status */
    char *outputs;                    /* compact JSON of the workflow's outputs, or NULL */
};
void cli_run_view_from_json(const struct json_t *d, struct cli_run_view *out);
void cli_print_run_summary(const struct cli_run_view *v);
void cli_run_view_release(struct cli_run_view *v);

/* An execution as the API shows it (view_exec_detail), with its workflow's
 * outputs filled in from `st` once it succeeded. */
struct store;
struct json_t *cli_exec_json(struct store *st, const struct exec_detail *d);

/*
 * An execution named on the command line: a full id, a unique prefix of one
 * ("ex_01jx"), or "latest" (the newest execution, of workflow `workflow` when
 * not NULL). The id is written to out[ID_MAX]. Returns an exit code (0 found;
 * EXIT_NOT_FOUND none; EXIT_USAGE an ambiguous prefix, its candidates printed).
 * cli_resolve_exec() works on the store; cli_remote_resolve_exec() (cmd_client.c)
 * asks the server.
 */
#define CLI_EXEC_ID_LEN 19 /* "ex_" and 16 characters */
int cli_exec_ref_is_short(const char *ref);
int cli_resolve_exec(struct store *st, const char *ref, const char *workflow, char *out);
int cli_remote_resolve_exec(const struct cli_args *a, const char *ref, const char *workflow,
                            char *out);
/* The option of commands that take an execution id. */
#define CLI_LATEST_OPT                                                                             \
    {"workflow", "NAME", "with the id 'latest': the newest execution of this workflow", 0}

/* Print an error line "orch: ..." to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Nodes (node.c). Fill `nd` from --node/$ORCH_NODE (default host:pid) and
 * --lease/$ORCH_LEASE; `idbuf` holds the name. Returns 0 or -1 (printed). */
struct engine_node;
int cli_node_settings(const struct cli_args *a, struct engine_node *nd, char *idbuf,
                      size_t idlen);
/* Register node `nd` with `role` and its worker `slots` in the store; a name
 * held by a dead process of this host is taken over. Prints the error. */
int cli_node_register(struct store *st, const struct engine_node *nd, const char *role,
                      int slots);

/*
 * Read the config file (config.c): `flag_path` (--config), else $ORCH_CONFIG,
 * else /etc/orch/orch.conf if it exists. Its settings that the environment
 * does not set go into the environment. Once per process (cli_parse calls
 * it); returns 0, or -1 with the problem printed.
 */
int cli_config_load(const char *flag_path);
/*
 * Read the config file loaded at the start again (SIGHUP), without touching
 * the environment: cli_setting() then answers with its new values. Returns 0
 * (also when no file was read), or -1 with the problem printed (the values
 * read before stay).
 */
int cli_config_reread(void);
/* The value of setting `name` (an environment variable name of the table):
 * the environment's when set there, else the config file's as last read
 * (NULL: neither). Borrowed until the next cli_config_reread(). */
const char *cli_setting(const char *name);
/*
 * The resource monitor's thresholds (monitor.c) from ORCH_MONITOR_INTERVAL,
 * ORCH_MEMORY_WARN, ORCH_MEMORY_HIGH_WATER, ORCH_DISK_WARN,
 * ORCH_DISK_HIGH_WATER, ORCH_FDS_WARN and ORCH_FDS_HIGH_WATER (cli_setting)
 * for the data directory `dir` (borrowed). Returns 0, or -1 with err set.
 */
struct engine_monitor_config;
int cli_monitor_settings(const char *dir, struct engine_monitor_config *cfg, struct err *err);

/* `orch cancel ID` and `orch retry ID` on the local data directory
 * (cmd_run.c): `action` "cancel" or "retry"; a->pos[0] the id (or a prefix,
 * or "latest"). Returns an exit code. */
int cli_local_exec_action(const struct cli_args *a, const char *action);

/* Commands. */
int cmd_config(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_resume(int argc, char **argv);
int cmd_validate(int argc, char **argv);
int cmd_executions(int argc, char **argv);
int cmd_logs(int argc, char **argv);
/* Client commands (cmd_client.c): they need a server, except health. */
int cmd_workflows(int argc, char **argv);
int cmd_trigger(int argc, char **argv);
int cmd_cancel(int argc, char **argv);
int cmd_retry(int argc, char **argv);
int cmd_health(int argc, char **argv);
/* Offline schedule tools: schedules next / validate (cmd_schedules.c). */
int cmd_schedules(int argc, char **argv);
/* The server's schedules: schedules list|show|pause|resume|backfill|delete
 * (cmd_client.c); argv[0] is the subcommand. Returns -1 for another word. */
int cli_remote_schedules(int argc, char **argv);
/* Nodes on a shared PostgreSQL database (cmd_server.c, cmd_db.c). */
int cmd_worker(int argc, char **argv);
int cmd_db(int argc, char **argv);
/* The server branch of executions list / executions show / logs, called by
 * cmd_show.c once the command line has been checked. Return an exit code. */
int cli_remote_executions_list(const struct cli_args *a, int limit);
int cli_remote_executions_show(const struct cli_args *a);
int cli_remote_logs(const struct cli_args *a);

/* Server side (cmd_server.c, cmd_keys.c). */
int cmd_server(int argc, char **argv);
int cmd_keys(int argc, char **argv);
int cmd_init(int argc, char **argv); /* cmd_init.c */

/* --watch (watch.c): reload the definitions of the --register paths of `a`
 * when their files change, on a thread of its own; stop it with
 * cli_watch_stop() before `eng` is freed. Returns an exit status. */
struct cli_watch;
struct engine;
int cli_watch_start(const struct cli_args *a, struct engine *eng, struct cli_watch **out);
void cli_watch_stop(struct cli_watch *w);
/* Engine settings from --workers, --max-output, --kill-grace (or their
 * environment variables) on top of the defaults (cmd_run.c); prints the
 * error and returns -1 on a bad value. */
struct engine_config;
int cli_engine_settings(const struct cli_args *a, struct engine_config *cfg);

/* Per-execution ownership through lock files in DATA_DIR/locks (owner.c). */
struct owner;
struct owner *owner_new(const char *data_dir);
void owner_free(struct owner *o);
int owner_claim(void *arg, const char *exec_id);
void owner_release(void *arg, const char *exec_id);

/* ------------------------------------------------------------------ orch doctor (cmd_doctor.c) */

int cmd_doctor(int argc, char **argv);
/* Every setting of config.c's table with its value from the environment (a
 * config file's included), secrets masked as `orch config show` shows them:
 * [{"name", "value", "default", "source"}]. (config.c) */
struct json_t *cli_settings_json(void);
/* The client of the server the command line names (--server, --api-key,
 * --cacert); NULL with *out_exit set and the error printed. (cmd_client.c) */
struct client;
struct client_response;
struct client *cli_client_open(const struct cli_args *a, int *out_exit);
/* One request: EXIT_OK with *r filled for a 2xx answer, else the error is
 * printed and an exit code returned (release *r either way). */
int cli_client_call(struct client *c, const char *method, const char *path,
                    struct client_response *r);

#endif
