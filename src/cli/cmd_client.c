/*
 * cmd_client.c - the CLI as a REST client of `orch server`.
 *
 * With --server URL (or $ORCH_SERVER) and --api-key KEY (or $ORCH_API_KEY),
 * `executions list|show` and `logs` ask the server (cmd_show.c calls the
 * cli_remote_* functions below), and these commands exist only as a client:
 * `workflows apply|list|show|delete`, `trigger`, `cancel`, `retry`.
 * `health` asks the server, or reports the local store without one.
 *
 * Results are printed by the printers of print.c, which the local mode
 * (cmd_show.c, cmd_run.c) uses too, from the server's JSON; --json prints
 * the server's JSON as it came.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "base/clock.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cli.h"
#include "client/client.h"
#include "dag/dag.h"

#include "base/banned.h"

/* Interval between two polls of `--wait`. */
#define WAIT_POLL_MS 200

/* ------------------------------------------------------------------ shared */

const char *cli_server(const struct cli_args *a)
{
    const char *s = cli_get(a, "server");
    if (s && *s)
        return s;
    s = getenv("ORCH_SERVER");
    if (s && *s)
        return s;
    return NULL;
}

static const char *cli_api_key(const struct cli_args *a)
{
    const char *k = cli_get(a, "api-key");
    if (k && *k)
        return k;
    k = getenv("ORCH_API_KEY");
    return k && *k ? k : NULL;
}

int cli_exit_for_http(long status)
{
    if (status >= 200 && status < 300)
        return EXIT_OK;
    switch (status) {
    case 400:
        return EXIT_USAGE;
    case 401:
    case 403:
    case 429:
        return EXIT_AUTH;
    case 404:
        return EXIT_NOT_FOUND;
    case 409:
        return EXIT_FAILED;
    case 413:
    case 422:
        return EXIT_INVALID;
    }
    return EXIT_INTERNAL;
}

static int needs_server(const char *cmd)
{
    cli_error("'orch %s' needs a server: pass --server URL or set ORCH_SERVER (and ORCH_API_KEY)",
              cmd);
    return EXIT_USAGE;
}

/* No API key was given (a 401 then says how to give one). */
static int g_no_key;

/* Make the client of the server the command line names; prints the error. */
static struct client *open_client(const struct cli_args *a, int *out_exit)
{
    struct client_config cfg;
    struct client *c = NULL;
    struct err err = ERR_INIT;

    memset(&cfg, 0, sizeof(cfg));
    cfg.base_url = cli_server(a);
    cfg.api_key = cli_api_key(a);
    cfg.cacert = cli_get(a, "cacert");
    if (!cfg.cacert || !*cfg.cacert)
        cfg.cacert = getenv("ORCH_CACERT");
    g_no_key = !cfg.api_key;
    if (client_new(&cfg, &c, &err)) {
        cli_error("%s", err.msg);
        *out_exit = EXIT_USAGE;
        return NULL;
    }
    return c;
}

/* Print the error of an answer that is not 2xx: the server's message, then
 * for a 422 every problem with its path. Returns the exit code. */
static int report_http_error(const struct client_response *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    json_t *details = e ? json_object_get(e, "details") : NULL;

    cli_error("%s", client_error_message(r));
    if (r->status == 401 && g_no_key)
        fprintf(stderr, "  no API key was given: pass --api-key KEY or set ORCH_API_KEY\n");
    if (r->status == 429 && r->retry_after[0])
        fprintf(stderr, "  retry after %s s\n", r->retry_after);
    for (size_t i = 0; i < json_array_size(details); i++) {
        json_t *d = json_array_get(details, i);
        const char *path = json_string_value(json_object_get(d, "path"));
        const char *msg = json_string_value(json_object_get(d, "message"));
        if (path && msg)
            cli_print_problem(path, msg, (int)json_integer_value(json_object_get(d, "line")),
                              (int)json_integer_value(json_object_get(d, "column")));
        else if (msg)
            fprintf(stderr, "  %s\n", msg);
    }
    return cli_exit_for_http(r->status);
}

/*
 * One request; prints what went wrong. Returns EXIT_OK with *r filled for a
 * 2xx answer, else an exit code (*r is released by the caller either way).
 */
static int call(struct client *c, const char *method, const char *path, const char *body,
                size_t body_len, const char *const *headers, struct client_response *r)
{
    struct err err = ERR_INIT;

    if (client_request(c, method, path, body, body_len, headers, r, &err)) {
        /* Cannot connect, no answer in time, an answer over the cap. */
        cli_error("%s", err.msg);
        return EXIT_INTERNAL;
    }
    if (r->status < 200 || r->status >= 300)
        return report_http_error(r);
    return EXIT_OK;
}

/* A 2xx answer whose body must be a JSON object. */
static int need_object(const struct client_response *r)
{
    if (json_is_object(r->json))
        return 0;
    cli_error("the server's answer is not a JSON object (HTTP %ld)", r->status);
    return -1;
}

static const char *jstr_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

static double jnum(const json_t *o, const char *key, double dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : dflt;
}

/* Append "&name=value" (or "?name=value" first) with the value escaped. */
static void add_query(struct strbuf *sb, const char *name, const char *value)
{
    char *v;
    if (!value)
        return;
    v = client_escape(value);
    strbuf_addf(sb, "%c%s=%s", strchr(sb->buf, '?') ? '&' : '?', name, v);
    free(v);
}

static int exec_status_of(const json_t *exec, enum exec_status *out)
{
    return exec_status_parse(cli_jstr(exec, "status"), out);
}

/* ------------------------------------------------------------------ executions */

int cli_remote_resolve_exec(const struct cli_args *a, const char *ref, const char *workflow,
                            char *out)
{
    static const char b32_max = 'z'; /* the last id character (src/base/id.c) */
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    struct strbuf path = STRBUF_INIT;
    json_t *items;
    const char *ids[6];
    size_t plen = strlen(ref), n = 0;
    int latest = !strcmp(ref, "latest"), code;
    char cursor[CLI_EXEC_ID_LEN + 1];

    if (!cli_exec_ref_is_short(ref)) {
        snprintf(out, ID_MAX, "%s", ref);
        return EXIT_OK;
    }
    if (!latest && ref[3 + strspn(ref + 3, "0123456789abcdefghjkmnpqrstvwxyz")]) {
        cli_error("no execution id starts with '%s'", ref);
        return EXIT_NOT_FOUND;
    }
    c = open_client(a, &code);
    if (!c)
        return code;
    if (latest) {
        strbuf_addf(&path, "/v1/executions?limit=1");
        add_query(&path, "workflow", workflow);
    } else {
        /* Ids sort by their characters: those with the prefix are the newest
         * ones below the prefix padded with the last id character; that id
         * itself is asked for on its own. */
        memset(cursor, b32_max, sizeof(cursor));
        memcpy(cursor, ref, plen);
        cursor[CLI_EXEC_ID_LEN] = '\0';
        strbuf_addf(&path, "/v1/executions?limit=5");
        add_query(&path, "cursor", cursor);
    }
    code = call(c, "GET", path.buf, NULL, 0, NULL, &r);
    if (!code && need_object(&r))
        code = EXIT_INTERNAL;
    if (code)
        goto out;
    items = json_object_get(r.json, "items");
    if (!latest) {
        struct client_response one = CLIENT_RESPONSE_INIT;
        char *p = xasprintf("/v1/executions/%s", cursor);
        struct err err = ERR_INIT;
        if (client_request(c, "GET", p, NULL, 0, NULL, &one, &err) == 0 && one.status == 200 &&
            json_is_object(one.json))
            json_array_insert(items, 0, json_object_get(one.json, "id"));
        client_response_release(&one);
        free(p);
    }
    for (size_t i = 0; i < json_array_size(items) && n < 6; i++) {
        json_t *it = json_array_get(items, i);
        const char *id = json_is_string(it) ? json_string_value(it) : cli_jstr(it, "id");
        if (latest || !strncmp(id, ref, plen))
            ids[n++] = id;
    }
    if (n == 1) {
        snprintf(out, ID_MAX, "%s", ids[0]);
        code = EXIT_OK;
    } else if (n == 0) {
        if (latest && workflow)
            cli_error("no executions of workflow '%s'", workflow);
        else if (latest)
            cli_error("no executions yet");
        else
            cli_error("no execution id starts with '%s'", ref);
        code = EXIT_NOT_FOUND;
    } else {
        fprintf(stderr, "orch: the prefix '%s' is ambiguous; it matches:\n", ref);
        for (size_t i = 0; i < n && i < 5; i++)
            fprintf(stderr, "  %s\n", ids[i]);
        if (n > 5)
            fprintf(stderr, "  ...\n");
        code = EXIT_USAGE;
    }
out:
    client_response_release(&r);
    strbuf_release(&path);
    client_free(c);
    return code;
}

int cli_remote_executions_list(const struct cli_args *a, int limit)
{
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    struct strbuf path = STRBUF_INIT;
    int code;

    c = open_client(a, &code);
    if (!c)
        return code;
    strbuf_addf(&path, "/v1/executions?limit=%d", limit);
    add_query(&path, "status", cli_get(a, "status"));
    add_query(&path, "workflow", cli_get(a, "workflow"));
    add_query(&path, "parentId", cli_get(a, "parent"));
    add_query(&path, "since", cli_get(a, "since"));
    add_query(&path, "until", cli_get(a, "until"));
    add_query(&path, "cursor", cli_get(a, "cursor"));
    code = call(c, "GET", path.buf, NULL, 0, NULL, &r);
    if (code)
        goto out;
    if (need_object(&r)) {
        code = EXIT_INTERNAL;
        goto out;
    }
    if (cli_flag(a, "json")) {
        cli_print_json(r.json);
        goto out;
    }
    cli_print_exec_list(r.json, cli_flag(a, "ids"));
out:
    client_response_release(&r);
    strbuf_release(&path);
    client_free(c);
    return code;
}

static int get_execution(struct client *c, const char *id, struct client_response *r)
{
    char *eid = client_escape(id);
    char *path = xasprintf("/v1/executions/%s", eid);
    int code = call(c, "GET", path, NULL, 0, NULL, r);
    free(path);
    free(eid);
    if (!code && need_object(r))
        code = EXIT_INTERNAL;
    return code;
}

int cli_remote_executions_show(const struct cli_args *a)
{
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    int code;

    c = open_client(a, &code);
    if (!c)
        return code;
    code = get_execution(c, a->pos[0], &r);
    if (!code) {
        if (cli_flag(a, "json"))
            cli_print_json(r.json);
        else
            cli_print_exec_detail(r.json);
    }
    client_response_release(&r);
    client_free(c);
    return code;
}

/* ------------------------------------------------------------------ logs */

/* Printing state of `logs`, shared by the whole answer and the stream. */
struct log_printer {
    int json;
    int headers; /* print "==> task (attempt N) <==" when the pair changes */
    char task[256];
    long long attempt;
    int at_line_start; /* the last chunk printed ended with '\n' (or none yet) */
    int any;
    int bad;
    const char *group; /* only the instances ("GROUP[N]") of this fan-out task */
};

/* Is `task` an instance of fan-out task `group` ("group[N]")? */
static int instance_of(const char *task, const char *group)
{
    size_t n = strlen(group), d;
    if (strncmp(task, group, n) || task[n] != '[')
        return 0;
    d = strspn(task + n + 1, "0123456789");
    return d > 0 && !strcmp(task + n + 1 + d, "]");
}

/* Is task `name` of the execution (its JSON) a fan-out group with instances? */
static int is_group(const json_t *exec, const char *name)
{
    const json_t *tasks = json_object_get(exec, "tasks");
    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const char *g = json_string_value(json_object_get(json_array_get(tasks, i), "group"));
        if (g && !strcmp(g, name))
            return 1;
    }
    return 0;
}

static void log_print_item(struct log_printer *p, const json_t *it)
{
    const char *task = cli_jstr(it, "task");
    long long attempt = cli_jint(it, "attempt", 0);
    json_t *data = json_object_get(it, "data");
    const char *s = json_string_value(data);
    size_t len = json_string_length(data);

    if (!json_is_object(it)) {
        p->bad = 1;
        return;
    }
    if (p->group && !instance_of(task, p->group))
        return;
    if (p->json) {
        char *line = json_dumps(it, JSON_COMPACT);
        printf("%s\n", line ? line : "null");
        free(line);
        return;
    }
    if (!p->any || strcmp(task, p->task) || attempt != p->attempt) {
        if (!p->at_line_start)
            putchar('\n');
        if (p->headers)
            printf("==> %s (attempt %lld) <==\n", task, attempt);
        snprintf(p->task, sizeof(p->task), "%s", task);
        p->attempt = attempt;
        p->at_line_start = 1;
    }
    p->any = 1;
    if (s && len) {
        fwrite(s, 1, len, stdout);
        p->at_line_start = s[len - 1] == '\n';
    }
}

static void log_finish(struct log_printer *p)
{
    if (!p->json && !p->at_line_start)
        putchar('\n');
    fflush(stdout);
}

static int on_log_line(void *arg, const char *line, size_t len)
{
    struct log_printer *p = arg;
    json_t *it;

    if (!len)
        return 0;
    it = json_loadb(line, len, 0, NULL);
    if (!it) {
        p->bad = 1;
        return 0;
    }
    log_print_item(p, it);
    json_decref(it);
    /* Follow mode is for people watching: show each chunk as it comes. */
    if (fflush(stdout) == EOF)
        return -1;
    return 0;
}

int cli_remote_logs(const struct cli_args *a)
{
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    struct strbuf path = STRBUF_INIT;
    struct log_printer p;
    struct err err = ERR_INIT;
    char *eid;
    int code = EXIT_OK;

    memset(&p, 0, sizeof(p));
    p.json = cli_flag(a, "json");
    p.headers = a->npos < 2 || !cli_get(a, "attempt");
    p.at_line_start = 1;
    c = open_client(a, &code);
    if (!c)
        return code;
    if (a->npos == 2) {
        /* A fan-out (forEach) task runs nothing itself: print the output of
         * its instances, each under its own header. */
        code = get_execution(c, a->pos[0], &r);
        if (code)
            goto out;
        if (is_group(r.json, a->pos[1])) {
            p.group = a->pos[1];
            p.headers = 1;
        }
        client_response_release(&r);
    }
    eid = client_escape(a->pos[0]);
    strbuf_addf(&path, "/v1/executions/%s/logs", eid);
    free(eid);
    add_query(&path, "task", a->npos == 2 && !p.group ? a->pos[1] : NULL);
    add_query(&path, "attempt", cli_get(a, "attempt"));
    if (cli_flag(a, "follow")) {
        add_query(&path, "follow", "true");
        if (client_stream(c, path.buf, on_log_line, &p, &r, &err)) {
            log_finish(&p);
            cli_error("%s", err.msg);
            code = EXIT_INTERNAL;
            goto out;
        }
        if (r.status < 200 || r.status >= 300) {
            code = report_http_error(&r);
            goto out;
        }
    } else {
        json_t *items;
        code = call(c, "GET", path.buf, NULL, 0, NULL, &r);
        if (code)
            goto out;
        if (need_object(&r)) {
            code = EXIT_INTERNAL;
            goto out;
        }
        items = json_object_get(r.json, "items");
        for (size_t i = 0; i < json_array_size(items); i++)
            log_print_item(&p, json_array_get(items, i));
    }
    log_finish(&p);
    if (p.bad) {
        cli_error("the server sent log items that are not JSON objects");
        code = EXIT_INTERNAL;
    }
out:
    client_response_release(&r);
    strbuf_release(&path);
    client_free(c);
    return code;
}

/* ------------------------------------------------------------------ --wait */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

/* Poll execution `id` until it ends; print its summary (or JSON). Returns
 * the exit code of its final status. */
static int wait_for_end(struct client *c, const char *id, int json)
{
    struct client_response r = CLIENT_RESPONSE_INIT;
    enum exec_status st;
    int code;

    for (;;) {
        code = get_execution(c, id, &r);
        if (code)
            break;
        if (exec_status_of(r.json, &st)) {
            cli_error("the server sent an unknown status '%s'", cli_jstr(r.json, "status"));
            code = EXIT_INTERNAL;
            break;
        }
        if (exec_status_is_final(st)) {
            if (json) {
                cli_print_json(r.json);
            } else {
                struct cli_run_view v;
                cli_run_view_from_json(r.json, &v);
                cli_print_run_summary(&v);
                cli_run_view_release(&v);
            }
            code = cli_exit_for_status(st);
            break;
        }
        client_response_release(&r);
        sleep_ms(WAIT_POLL_MS);
    }
    client_response_release(&r);
    return code;
}

/* ------------------------------------------------------------------ workflows */

static const struct cli_opt wf_apply_opts[] = {
    {"json", NULL, "print the server's JSON", 0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd wf_apply_cmd = {
    "workflows apply",
    "FILE",
    "Send a workflow definition (JSON or YAML) to the server: a new workflow, or a new\n"
    "version of it (nothing changes if it is identical to the newest version). Without a\n"
    "server, record it in the local store (--data-dir or --database-url), e.g. a workflow\n"
    "that workflow tasks of `orch run` will run.\n"
    "Exit status: 0 done, 3 invalid (every problem is printed with its JSON path).",
    wf_apply_opts,
};

static const struct cli_opt wf_list_opts[] = {
    {"json", NULL, "print the server's JSON", 0},
    {"names", NULL,
     "print only the names, one per line (without a server: the local store's; for scripts "
     "and shell completion)",
     0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd wf_list_cmd = {
    "workflows list",
    NULL,
    "List the server's workflows (newest version of each).",
    wf_list_opts,
};

static const struct cli_opt wf_show_opts[] = {
    {"version", "N", "this version (default the newest)", 0},
    {"json", NULL, "print the server's JSON", 0},
    {"yaml", NULL, "print only the definition, as YAML (to edit and apply again)", 0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd wf_show_cmd = {
    "workflows show",
    "NAME",
    "Show a workflow and its definition (--json: the server's JSON; --yaml: the definition\n"
    "as YAML).",
    wf_show_opts,
};

static const struct cli_opt wf_delete_opts[] = {
    CLI_SERVER_OPTS,
    {"force", NULL, "delete it even if other workflows call it as a sub-workflow", 0},
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd wf_delete_cmd = {
    "workflows delete",
    "NAME",
    "Delete a workflow: it can no longer be triggered; its executions stay readable.",
    wf_delete_opts,
};

/* Parse a command line of a client command; returns -1 to go on, else the exit code. */
static int parse_client(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *a,
                        int npos)
{
    int rc = cli_parse(cmd, argc, argv, a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a->npos != npos) {
        if (npos == 0)
            cli_error("'orch %s' takes no arguments", cmd->name);
        else
            cli_error("'orch %s' needs %s", cmd->name, cmd->args);
        return EXIT_USAGE;
    }
    if (!cli_server(a))
        return needs_server(cmd->name);
    return -1;
}

static char *workflow_path(const char *name, const char *suffix)
{
    char *n = client_escape(name);
    char *p = xasprintf("/v1/workflows/%s%s", n, suffix);
    free(n);
    return p;
}

/* No server: record the definition in the local store. */
static int workflows_apply_local(const struct cli_args *a)
{
    struct cli_registered reg;
    struct store *st = NULL;
    int code;

    if (cli_open_store(a, 1, &st))
        return EXIT_INTERNAL;
    code = cli_register_workflow(st, a->pos[0], &reg);
    store_free(st);
    if (code != EXIT_OK)
        return code;
    if (cli_flag(a, "json"))
        printf("{\"name\":\"%s\",\"version\":%d,\"tasks\":%zu,\"changed\":%s}\n", reg.name,
               reg.version, reg.ntasks, reg.changed ? "true" : "false");
    else if (reg.changed)
        printf("Workflow '%s' version %d recorded (%zu task%s)\n", reg.name, reg.version,
               reg.ntasks, reg.ntasks == 1 ? "" : "s");
    else
        printf("Workflow '%s' unchanged (version %d is identical)\n", reg.name, reg.version);
    return EXIT_OK;
}

static int workflows_apply(int argc, char **argv)
{
    struct cli_args a;
    struct client *c = NULL;
    struct client_response r = CLIENT_RESPONSE_INIT;
    char *def = NULL;
    size_t len;
    int code;

    code = cli_parse(&wf_apply_cmd, argc, argv, &a);
    if (code)
        return code > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos != 1) {
        cli_error("'orch %s' needs %s", wf_apply_cmd.name, wf_apply_cmd.args);
        return EXIT_USAGE;
    }
    if (!cli_server(&a))
        return workflows_apply_local(&a);
    /* The server enforces its own limit (413); this only bounds our memory. */
    def = cli_read_file(a.pos[0], 64u << 20, &len, &code);
    if (!def)
        return code;
    c = open_client(&a, &code);
    if (!c)
        goto out;
    {
        /* A YAML file goes as it is: the server's problems then name its lines. */
        static const char *const yaml_type[] = {"Content-Type: application/yaml", NULL};
        code = call(c, "POST", "/v1/workflows", def, len,
                    dag_is_yaml(a.pos[0], def, len) ? yaml_type : NULL, &r);
    }
    if (code)
        goto out;
    if (need_object(&r)) {
        code = EXIT_INTERNAL;
        goto out;
    }
    if (cli_flag(&a, "json"))
        cli_print_json(r.json);
    else if (r.status == 201)
        printf("Workflow '%s' version %lld recorded (%lld task%s)\n", cli_jstr(r.json, "name"),
               cli_jint(r.json, "version", 0), cli_jint(r.json, "tasks", 0),
               cli_jint(r.json, "tasks", 0) == 1 ? "" : "s");
    else
        printf("Workflow '%s' unchanged (version %lld is identical)\n", cli_jstr(r.json, "name"),
               cli_jint(r.json, "version", 0));
out:
    client_response_release(&r);
    client_free(c);
    free(def);
    return code;
}

/* `workflows list --names` without a server: the local store's workflows. */
static int workflows_names_local(const struct cli_args *a)
{
    struct workflow_row *rows = NULL;
    struct store *st = NULL;
    struct err err = ERR_INIT;
    size_t n = 0;
    int rc;

    if ((rc = cli_open_store(a, 0, &st)) != 0)
        return cli_exit_for_err(rc);
    if (store_workflows_list(st, &rows, &n, &err)) {
        cli_error("%s", err.msg);
        store_free(st);
        return EXIT_INTERNAL;
    }
    for (size_t i = 0; i < n; i++)
        printf("%s\n", rows[i].name);
    workflow_rows_free(rows, n);
    store_free(st);
    return EXIT_OK;
}

static int workflows_list(int argc, char **argv)
{
    struct cli_args a;
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    json_t *items;
    int code;

    code = cli_parse(&wf_list_cmd, argc, argv, &a);
    if (code)
        return code > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch %s' takes no arguments", wf_list_cmd.name);
        return EXIT_USAGE;
    }
    if (!cli_server(&a))
        return cli_flag(&a, "names") ? workflows_names_local(&a) : needs_server(wf_list_cmd.name);
    c = open_client(&a, &code);
    if (!c)
        return code;
    code = call(c, "GET", "/v1/workflows", NULL, 0, NULL, &r);
    if (!code && need_object(&r))
        code = EXIT_INTERNAL;
    if (code)
        goto out;
    if (cli_flag(&a, "json")) {
        cli_print_json(r.json);
        goto out;
    }
    items = json_object_get(r.json, "items");
    if (cli_flag(&a, "names")) {
        for (size_t i = 0; i < json_array_size(items); i++)
            printf("%s\n", cli_jstr(json_array_get(items, i), "name"));
        goto out;
    }
    if (!json_array_size(items)) {
        printf("No workflows.\n");
        goto out;
    }
    printf("%-24s  %-7s  %-5s  %-24s  %s\n", "NAME", "VERSION", "TASKS", "CREATED", "DESCRIPTION");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        printf("%-24s  %-7lld  %-5lld  %-24s  %s\n", cli_jstr(it, "name"),
               cli_jint(it, "version", 0), cli_jint(it, "tasks", 0), cli_jstr(it, "createdAt"),
               cli_jstr(it, "description"));
    }
out:
    client_response_release(&r);
    client_free(c);
    return code;
}

static int workflows_show(int argc, char **argv)
{
    struct cli_args a;
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    const char *v;
    char *path;
    int code;

    code = parse_client(&wf_show_cmd, argc, argv, &a, 1);
    if (code >= 0)
        return code;
    if ((v = cli_get(&a, "version"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1) {
            cli_error("invalid version '%s' (use 1, 2, ...)", v);
            return EXIT_USAGE;
        }
    }
    if (cli_flag(&a, "json") && cli_flag(&a, "yaml")) {
        cli_error("'orch workflows show' takes --json or --yaml, not both");
        return EXIT_USAGE;
    }
    c = open_client(&a, &code);
    if (!c)
        return code;
    if (v) {
        char *suffix = xasprintf("?version=%s", v);
        path = workflow_path(a.pos[0], suffix);
        free(suffix);
    } else {
        path = workflow_path(a.pos[0], "");
    }
    code = call(c, "GET", path, NULL, 0, NULL, &r);
    if (!code && need_object(&r))
        code = EXIT_INTERNAL;
    if (!code) {
        if (cli_flag(&a, "json")) {
            cli_print_json(r.json);
        } else if (cli_flag(&a, "yaml")) {
            char *yaml = dag_json_to_yaml(json_object_get(r.json, "definition"));
            if (yaml)
                fputs(yaml, stdout);
            else
                code = EXIT_INTERNAL;
            free(yaml);
        } else {
            printf("Workflow     %s\nVersion      %lld\nCreated      %s\nTasks        %lld\n",
                   cli_jstr(r.json, "name"), cli_jint(r.json, "version", 0),
                   cli_jstr(r.json, "createdAt"), cli_jint(r.json, "tasks", 0));
            if (json_is_string(json_object_get(r.json, "description")))
                printf("Description  %s\n", cli_jstr(r.json, "description"));
            printf("\n");
            cli_print_json(json_object_get(r.json, "definition"));
        }
    }
    free(path);
    client_response_release(&r);
    client_free(c);
    return code;
}

static int workflows_delete(int argc, char **argv)
{
    struct cli_args a;
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    char *path;
    int code;

    code = parse_client(&wf_delete_cmd, argc, argv, &a, 1);
    if (code >= 0)
        return code;
    c = open_client(&a, &code);
    if (!c)
        return code;
    path = workflow_path(a.pos[0], cli_flag(&a, "force") ? "?force=true" : "");
    code = call(c, "DELETE", path, NULL, 0, NULL, &r);
    if (!code)
        printf("Workflow '%s' deleted\n", a.pos[0]);
    free(path);
    client_response_release(&r);
    client_free(c);
    return code;
}

int cmd_workflows(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "apply"))
        return workflows_apply(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "list"))
        return workflows_list(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "show"))
        return workflows_show(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "delete"))
        return workflows_delete(argc - 1, argv + 1);
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: orch workflows apply FILE [--json]\n"
               "       orch workflows list [--json]\n"
               "       orch workflows show NAME [--version N] [--json]\n"
               "       orch workflows delete NAME [--force]\n"
               "(with --server URL or ORCH_SERVER, and --api-key KEY or ORCH_API_KEY)\n");
        return EXIT_OK;
    }
    cli_error("'orch workflows' needs a subcommand: apply, list, show or delete");
    return EXIT_USAGE;
}

/* ------------------------------------------------------------------ trigger, cancel, retry */

static const struct cli_opt trigger_opts[] = {
    {"param", "K=V", "set a workflow param (repeatable; V follows its declared type)", 1},
    {"params-file", "FILE", "the params as a JSON or YAML object (--param wins)", 0},
    {"idempotency-key", "KEY", "a retried trigger with the same key returns the same execution", 0},
    {"wait", NULL, "wait for the execution to end; exit with its status like 'orch run'", 0},
    {"json", NULL, "print the server's JSON", 0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd trigger_cmd = {
    "trigger",
    "NAME",
    "Start an execution of the newest version of a workflow on the server.\n"
    "Exit status: 0 started (with --wait: 0 succeeded, 1 failed, 4 timed out, 5 cancelled),\n"
    "3 invalid params, 6 no such workflow, 7 key refused.",
    trigger_opts,
};

static const struct cli_opt cancel_opts[] = {
    {"json", NULL, "print the server's JSON", 0},
    CLI_LATEST_OPT,
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd cancel_cmd = {
    "cancel",
    "ID",
    "Cancel a queued or running execution on the server. ID may be a unique prefix of\n"
    "an id, or 'latest' (the newest execution, of --workflow NAME if given). Without a\n"
    "server, on the data directory: an execution no live process runs (left by a crash)\n"
    "is cancelled here; one that an 'orch run' or 'orch server' runs is refused.\n"
    "Exit status: 0 done, 1 it has already ended, 6 no such execution.",
    cancel_opts,
};

static const struct cli_opt retry_opts[] = {
    {"wait", NULL, "wait for the execution to end; exit with its status like 'orch run'", 0},
    {"json", NULL, "print the server's JSON", 0},
    CLI_LATEST_OPT,
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd retry_cmd = {
    "retry",
    "ID",
    "Re-run the failed tasks of a finished execution (and what depends on them);\n"
    "tasks that succeeded are kept. ID may be a unique prefix or 'latest' (--workflow).\n"
    "Without a server, on the data directory, the tasks run again in this process (as\n"
    "'orch resume' runs them) and it exits with the execution's status.\n"
    "Exit status: 0 done, 1 it is running or it\n"
    "succeeded, 6 no such execution.",
    retry_opts,
};

/* The newest definition of workflow `name` on the server, for its params'
 * types, or NULL (the trigger itself then says what is wrong). */
static struct workflow *server_workflow(struct client *c, const char *name)
{
    struct client_response r = CLIENT_RESPONSE_INIT;
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    struct err err = ERR_INIT;
    char *path = workflow_path(name, "");

    if (client_request(c, "GET", path, NULL, 0, NULL, &r, &err) == 0 && r.status == 200) {
        char *def = json_dumps(json_object_get(r.json, "definition"), JSON_COMPACT);
        if (def && dag_parse(def, strlen(def), &wf, &probs) != 0)
            wf = NULL;
        free(def);
    }
    dag_problems_release(&probs);
    client_response_release(&r);
    free(path);
    return wf;
}

/* The body {"params": {...}} from --params-file and --param K=V (see cli_params_json). */
static json_t *trigger_body(const struct cli_args *a, const struct workflow *wf, int *out_exit)
{
    json_t *params = cli_params_json(a, wf, out_exit);
    json_t *body;
    if (!params)
        return NULL;
    body = json_object();
    json_object_set_new(body, "params", params);
    return body;
}

int cmd_trigger(int argc, char **argv)
{
    struct cli_args a;
    struct client *c = NULL;
    struct client_response r = CLIENT_RESPONSE_INIT;
    const char *idem, *hdrs[2] = {NULL, NULL};
    char *hdr = NULL, *path = NULL, *text = NULL;
    json_t *body;
    int code;

    code = parse_client(&trigger_cmd, argc, argv, &a, 1);
    if (code >= 0)
        return code;
    c = open_client(&a, &code);
    if (!c)
        return code;
    if (cli_get(&a, "param")) {
        struct workflow *wf = server_workflow(c, a.pos[0]);
        body = trigger_body(&a, wf, &code);
        workflow_free(wf);
    } else {
        body = trigger_body(&a, NULL, &code);
    }
    if (!body) {
        client_free(c);
        return code;
    }
    idem = cli_get(&a, "idempotency-key");
    if (idem) {
        if (!*idem || strpbrk(idem, "\r\n")) {
            cli_error("invalid idempotency key '%s'", idem);
            json_decref(body);
            client_free(c);
            return EXIT_USAGE;
        }
        hdr = xasprintf("Idempotency-Key: %s", idem);
        hdrs[0] = hdr;
    }
    text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    path = workflow_path(a.pos[0], "/executions");
    code = call(c, "POST", path, text, strlen(text), hdrs, &r);
    if (!code && need_object(&r))
        code = EXIT_INTERNAL;
    if (code)
        goto out;
    if (cli_flag(&a, "wait")) {
        if (!cli_flag(&a, "json"))
            printf("Execution %s of '%s' (version %lld) %s%s; waiting for it to end\n",
                   cli_jstr(r.json, "id"), cli_jstr(r.json, "workflow"),
                   cli_jint(r.json, "workflowVersion", 0), cli_jstr(r.json, "status"),
                   r.status == 200 ? " (existing execution for this idempotency key)" : "");
        fflush(stdout);
        code = wait_for_end(c, cli_jstr(r.json, "id"), cli_flag(&a, "json"));
    } else if (cli_flag(&a, "json")) {
        cli_print_json(r.json);
    } else {
        printf("Execution %s of '%s' (version %lld) %s%s\n", cli_jstr(r.json, "id"),
               cli_jstr(r.json, "workflow"), cli_jint(r.json, "workflowVersion", 0),
               cli_jstr(r.json, "status"),
               r.status == 200 ? " (existing execution for this idempotency key)" : "");
    }
out:
    client_response_release(&r);
    client_free(c);
    free(path);
    free(text);
    free(hdr);
    return code;
}

/* POST /v1/executions/ID/<action>; print the result; with `wait`, wait for the end. */
static int exec_action(const struct cli_cmd *cmd, const char *action, int argc, char **argv)
{
    struct cli_args a;
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    char *eid, *path, idbuf[ID_MAX];
    int code;

    code = cli_parse(cmd, argc, argv, &a);
    if (code)
        return code > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos != 1) {
        cli_error("'orch %s' needs %s", cmd->name, cmd->args);
        return EXIT_USAGE;
    }
    if (cli_get(&a, "workflow") && strcmp(a.pos[0], "latest")) {
        cli_error("--workflow goes with the id 'latest' only");
        return EXIT_USAGE;
    }
    if (!cli_server(&a))
        return cli_local_exec_action(&a, action);
    code = cli_remote_resolve_exec(&a, a.pos[0], cli_get(&a, "workflow"), idbuf);
    if (code)
        return code;
    c = open_client(&a, &code);
    if (!c)
        return code;
    eid = client_escape(idbuf);
    path = xasprintf("/v1/executions/%s/%s", eid, action);
    free(eid);
    code = call(c, "POST", path, NULL, 0, NULL, &r);
    if (!code && need_object(&r))
        code = EXIT_INTERNAL;
    if (code)
        goto out;
    if (cli_flag(&a, "wait")) {
        if (!cli_flag(&a, "json"))
            printf("Execution %s %s (%s); waiting for it to end\n", cli_jstr(r.json, "id"),
                   !strcmp(action, "retry") ? "retried" : "cancelled", cli_jstr(r.json, "status"));
        fflush(stdout);
        code = wait_for_end(c, cli_jstr(r.json, "id"), cli_flag(&a, "json"));
    } else if (cli_flag(&a, "json")) {
        cli_print_json(r.json);
    } else if (!strcmp(action, "retry")) {
        printf("Execution %s retried: failed tasks run again (status %s)\n", cli_jstr(r.json, "id"),
               cli_jstr(r.json, "status"));
    } else {
        printf("Execution %s cancel requested (status %s)\n", cli_jstr(r.json, "id"),
               cli_jstr(r.json, "status"));
    }
out:
    free(path);
    client_response_release(&r);
    client_free(c);
    return code;
}

int cmd_cancel(int argc, char **argv)
{
    return exec_action(&cancel_cmd, "cancel", argc, argv);
}

int cmd_retry(int argc, char **argv)
{
    return exec_action(&retry_cmd, "retry", argc, argv);
}

/* ------------------------------------------------------------------ health */

static const struct cli_opt health_opts[] = {
    {"json", NULL, "print JSON (the server's, or the local store's report)", 0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd health_cmd = {
    "health",
    NULL,
    "Report the health of the server (database, scheduler, workers, queue, memory,\n"
    "disk), or without a server that of the local data directory's store.\n"
    "Exit status: 0 ok or degraded, 1 down, 7 key refused, 70 unreachable.",
    health_opts,
};

static void fmt_bytes(double b, char *out, size_t len)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(out, len, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

static void fmt_percent(const json_t *o, const char *key, char *out, size_t len)
{
    json_t *v = json_object_get(o, key);
    if (json_is_number(v))
        snprintf(out, len, "%.0f%%", json_number_value(v));
    else
        snprintf(out, len, "-");
}

static void print_health(const json_t *h)
{
    json_t *comp = json_object_get(h, "components");
    json_t *db = json_object_get(comp, "database"), *sc = json_object_get(comp, "scheduler");
    json_t *wk = json_object_get(comp, "workers"), *q = json_object_get(comp, "queue");
    json_t *ex = json_object_get(comp, "executions"), *mem = json_object_get(comp, "memory");
    json_t *dk = json_object_get(comp, "disk"), *pool = json_object_get(db, "pool");
    char b1[32], b2[32], b3[32], dur[32];

    printf("Status      %s (orch %s, up %.0fs)\n\n", cli_jstr(h, "status"), cli_jstr(h, "version"),
           jnum(h, "uptimeSeconds", 0));
    printf("%-11s %-9s %s\n", "COMPONENT", "STATUS", "DETAILS");
    printf("%-11s %-9s %s, latency %.2f ms, pool %lld/%lld in use\n", "database",
           cli_jstr(db, "status"),
           json_is_true(json_object_get(db, "reachable")) ? "reachable" : "unreachable",
           jnum(db, "latencyMs", 0), cli_jint(pool, "inUse", 0), cli_jint(pool, "size", 0));
    printf("%-11s %-9s %s%s%s\n", "scheduler", cli_jstr(sc, "status"),
           json_is_true(json_object_get(sc, "running")) ? "running" : "not running",
           json_is_string(json_object_get(sc, "message")) ? ": " : "", jstr_or(sc, "message", ""));
    printf("%-11s %-9s %lld/%lld busy\n", "workers", cli_jstr(wk, "status"),
           cli_jint(wk, "busy", 0), cli_jint(wk, "total", 0));
    clock_fmt_duration(cli_jint(q, "oldestQueuedAgeMs", 0), dur, sizeof(dur));
    printf("%-11s %-9s %lld queued, oldest %s\n", "queue", cli_jstr(q, "status"),
           cli_jint(q, "depth", 0), cli_jint(q, "depth", 0) ? dur : "-");
    clock_fmt_duration(cli_jint(ex, "longestRunningMs", 0), dur, sizeof(dur));
    printf("%-11s %-9s %lld running, longest %s\n", "executions", "-", cli_jint(ex, "running", 0),
           cli_jint(ex, "running", 0) ? dur : "-");
    fmt_bytes(jnum(mem, "rssBytes", 0), b1, sizeof(b1));
    fmt_percent(mem, "systemUsedPercent", b2, sizeof(b2));
    fmt_percent(mem, "cgroupUsedPercent", b3, sizeof(b3));
    printf("%-11s %-9s rss %s, system %s used, cgroup %s used\n", "memory", cli_jstr(mem, "status"),
           b1, b2, b3);
    fmt_bytes(jnum(dk, "freeBytes", 0), b1, sizeof(b1));
    printf("%-11s %-9s %s free (%.0f%%) in %s\n", "disk", cli_jstr(dk, "status"), b1,
           jnum(dk, "freePercent", 0), cli_jstr(dk, "path"));
    {
        json_t *bp = json_object_get(comp, "pressure");
        if (json_is_object(bp) && json_is_true(json_object_get(bp, "active")))
            printf("%-11s %-9s back-pressure: %s\n%-21s fix: %s\n", "pressure",
                   cli_jstr(bp, "status"), jstr_or(bp, "message", ""), "",
                   jstr_or(bp, "fix", ""));
        else if (json_is_object(bp))
            printf("%-11s %-9s none\n", "pressure", cli_jstr(bp, "status"));
    }
}

static int health_remote(const struct cli_args *a)
{
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    struct err err = ERR_INIT;
    int code;

    c = open_client(a, &code);
    if (!c)
        return code;
    if (client_request(c, "GET", "/v1/health", NULL, 0, NULL, &r, &err)) {
        cli_error("%s", err.msg);
        code = EXIT_INTERNAL;
        goto out;
    }
    /* 503 carries a health report too (status down), not an error. */
    if ((r.status == 200 || r.status == 503) && json_is_object(r.json) &&
        json_is_object(json_object_get(r.json, "components"))) {
        if (cli_flag(a, "json"))
            cli_print_json(r.json);
        else
            print_health(r.json);
        code = strcmp(cli_jstr(r.json, "status"), "down") ? EXIT_OK : EXIT_FAILED;
        goto out;
    }
    if (r.status >= 200 && r.status < 300) {
        cli_error("the server's health answer is not a health report (HTTP %ld)", r.status);
        code = EXIT_INTERNAL;
    } else {
        code = report_http_error(&r);
    }
out:
    client_response_release(&r);
    client_free(c);
    return code;
}

/* Without a server: can the local store be opened and read? */
static int health_local(const struct cli_args *a)
{
    struct store *st = NULL;
    struct err err = ERR_INIT;
    struct statvfs vfs;
    const char *dir = cli_data_dir(a);
    char **ids = NULL;
    size_t nids = 0;
    int version = 0, db_ok, disk_ok;
    double free_bytes = 0, free_pct = 0;
    int64_t t0;
    double latency;

    if (cli_open_store(a, 0, &st))
        return EXIT_FAILED; /* the message is printed */
    t0 = clock_mono_ns();
    db_ok = store_schema_version(st, &version, &err) == 0 &&
            store_executions_unfinished(st, &ids, &nids, &err) == 0;
    latency = (double)(clock_mono_ns() - t0) / 1e6;
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    disk_ok = statvfs(dir, &vfs) == 0;
    if (disk_ok && vfs.f_blocks) {
        free_bytes = (double)vfs.f_bavail * (double)vfs.f_frsize;
        free_pct = 100.0 * (double)vfs.f_bavail / (double)vfs.f_blocks;
    }
    if (cli_flag(a, "json")) {
        json_t *o = json_object(), *comp = json_object(), *d = json_object(), *k = json_object();
        json_object_set_new(o, "status", json_string(db_ok ? "ok" : "down"));
        json_object_set_new(o, "mode", json_string("local"));
        json_object_set_new(o, "dataDir", json_string(dir));
        json_object_set_new(d, "status", json_string(db_ok ? "ok" : "down"));
        json_object_set_new(d, "backend", json_string(store_backend_name(st)));
        json_object_set_new(d, "schemaVersion", json_integer(version));
        json_object_set_new(d, "latencyMs", json_real(latency));
        json_object_set_new(d, "unfinishedExecutions", json_integer((json_int_t)nids));
        json_object_set_new(comp, "database", d);
        json_object_set_new(k, "status", json_string(disk_ok ? "ok" : "down"));
        json_object_set_new(k, "freeBytes", json_integer((json_int_t)free_bytes));
        json_object_set_new(k, "freePercent", json_real(free_pct));
        json_object_set_new(k, "path", json_string(dir));
        json_object_set_new(comp, "disk", k);
        json_object_set_new(o, "components", comp);
        cli_print_json(o);
        json_decref(o);
    } else {
        char b[32];
        fmt_bytes(free_bytes, b, sizeof(b));
        printf("Status      %s (local data directory %s, no server)\n\n", db_ok ? "ok" : "down",
               dir);
        printf("%-11s %-9s %s\n", "COMPONENT", "STATUS", "DETAILS");
        if (db_ok)
            printf("%-11s %-9s %s, schema version %d, latency %.2f ms, %zu unfinished "
                   "execution%s\n",
                   "database", "ok", store_backend_name(st), version, latency, nids,
                   nids == 1 ? "" : "s");
        else
            printf("%-11s %-9s %s\n", "database", "down", err.msg);
        if (disk_ok)
            printf("%-11s %-9s %s free (%.0f%%) in %s\n", "disk", "ok", b, free_pct, dir);
        else
            printf("%-11s %-9s cannot stat '%s': %s\n", "disk", "down", dir, strerror(errno));
    }
    store_free(st);
    return db_ok ? EXIT_OK : EXIT_FAILED;
}

int cmd_health(int argc, char **argv)
{
    struct cli_args a;
    int rc = cli_parse(&health_cmd, argc, argv, &a);

    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch health' takes no arguments");
        return EXIT_USAGE;
    }
    return cli_server(&a) ? health_remote(&a) : health_local(&a);
}

/* ------------------------------------------------------------------ schedules */

static const struct cli_opt sch_list_opts[] = {
    {"workflow", "NAME", "only the schedules of this workflow", 0},
    {"json", NULL, "print the server's JSON", 0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd sch_list_cmd = {
    "schedules list",
    NULL,
    "List the server's schedules (of workflow definitions and created through the API)\n"
    "with their state and next fire time.",
    sch_list_opts,
};

static const struct cli_opt sch_id_opts[] = {
    {"json", NULL, "print the server's JSON", 0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd sch_show_cmd = {
    "schedules show", "ID", "Show one schedule of the server: its spec and state.", sch_id_opts,
};
static const struct cli_cmd sch_pause_cmd = {
    "schedules pause", "ID",
    "Pause a schedule: it stops firing until resumed (what it missed meanwhile follows\n"
    "its catchup policy).",
    sch_id_opts,
};
static const struct cli_cmd sch_resume_cmd = {
    "schedules resume", "ID", "Resume a paused schedule.", sch_id_opts,
};

static const struct cli_opt sch_delete_opts[] = {
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd sch_delete_cmd = {
    "schedules delete", "ID",
    "Delete a schedule created through the API (a schedule of a workflow definition is\n"
    "removed from the definition instead). The executions it started stay.",
    sch_delete_opts,
};

static const struct cli_opt sch_backfill_opts[] = {
    {"from", "TIME", "start of the window, exclusive (2026-11-29T10:00:00Z)", 0},
    {"until", "TIME", "end of the window, inclusive (2026-11-30T10:00:00Z)", 0},
    {"json", NULL, "print the server's JSON", 0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};
static const struct cli_cmd sch_backfill_cmd = {
    "schedules backfill", "ID",
    "Fire every due time of the window (--from, --until] that was not fired yet\n"
    "(at most 1000); a second backfill of the same window fires nothing.",
    sch_backfill_opts,
};

/* "cron '0 2 * * *'" or "every 30s" of a Schedule. */
static void schedule_spec(const json_t *s, char *out, size_t len)
{
    const json_t *every = json_object_get(s, "every");
    if (json_is_string(json_object_get(s, "cron")))
        snprintf(out, len, "%s", cli_jstr(s, "cron"));
    else if (json_is_string(every))
        snprintf(out, len, "every %s", json_string_value(every));
    else if (json_is_integer(every))
        snprintf(out, len, "every %llds", (long long)json_integer_value(every));
    else
        snprintf(out, len, "-");
}

static const char *schedule_state(const json_t *s)
{
    if (!json_is_true(json_object_get(s, "enabled")))
        return "disabled";
    return json_is_true(json_object_get(s, "paused")) ? "paused" : "active";
}

static char *schedule_path(const char *id, const char *suffix)
{
    char *e = client_escape(id);
    char *p = xasprintf("/v1/schedules/%s%s", e, suffix);
    free(e);
    return p;
}

static int schedules_list_remote(const struct cli_args *a)
{
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    const char *wf = cli_get(a, "workflow");
    json_t *items;
    size_t shown = 0;
    int code;

    c = open_client(a, &code);
    if (!c)
        return code;
    code = call(c, "GET", "/v1/schedules", NULL, 0, NULL, &r);
    if (!code && need_object(&r))
        code = EXIT_INTERNAL;
    if (code)
        goto out;
    items = json_object_get(r.json, "items");
    if (cli_flag(a, "json")) {
        if (wf) {
            json_t *keep = json_array();
            for (size_t i = 0; i < json_array_size(items); i++)
                if (!strcmp(cli_jstr(json_array_get(items, i), "workflow"), wf))
                    json_array_append(keep, json_array_get(items, i));
            json_object_set_new(r.json, "items", keep);
        }
        cli_print_json(r.json);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(items); i++) {
        const json_t *s = json_array_get(items, i);
        char spec[160];
        if (wf && strcmp(cli_jstr(s, "workflow"), wf))
            continue;
        if (!shown++)
            printf("%-24s  %-20s  %-16s  %-20s  %-14s  %-8s  %s\n", "ID", "WORKFLOW", "NAME",
                   "SCHEDULE", "TIMEZONE", "STATE", "NEXT FIRE");
        schedule_spec(s, spec, sizeof(spec));
        printf("%-24s  %-20.20s  %-16.16s  %-20s  %-14s  %-8s  %s\n", cli_jstr(s, "id"),
               cli_jstr(s, "workflow"), cli_jstr(s, "name"), spec, cli_jstr(s, "timezone"),
               schedule_state(s), jstr_or(s, "nextFireAt", "-"));
    }
    if (!shown)
        printf("No schedules.\n");
out:
    client_response_release(&r);
    client_free(c);
    return code;
}

static void print_schedule(const json_t *s)
{
    const json_t *dst = json_object_get(s, "dst");
    char spec[160], *params = NULL;

    schedule_spec(s, spec, sizeof(spec));
    if (json_is_object(json_object_get(s, "params")))
        params = json_dumps(json_object_get(s, "params"), JSON_COMPACT | JSON_SORT_KEYS);
    printf("Schedule   %s\nWorkflow   %s\nName       %s\nSource     %s\nSchedule   %s\n"
           "Timezone   %s\nState      %s\nOverlap    %s\nCatchup    %s (at most %lld)\n"
           "DST        skipped: %s, repeated: %s\nParams     %s\nNext fire  %s\nLast fire  %s\n",
           cli_jstr(s, "id"), cli_jstr(s, "workflow"), cli_jstr(s, "name"), cli_jstr(s, "source"),
           spec, cli_jstr(s, "timezone"), schedule_state(s), cli_jstr(s, "overlap"),
           cli_jstr(s, "catchup"), cli_jint(s, "maxCatchup", 0), cli_jstr(dst, "skipped"),
           cli_jstr(dst, "repeated"), params ? params : "{}", jstr_or(s, "nextFireAt", "-"),
           jstr_or(s, "lastFireAt", "-"));
    free(params);
}

/* show, pause, resume, delete, backfill of schedule a->pos[0]. */
static int schedule_action(const struct cli_args *a, const char *what)
{
    struct client *c;
    struct client_response r = CLIENT_RESPONSE_INIT;
    char *path = NULL, *body = NULL;
    const char *method = "POST";
    int code;

    c = open_client(a, &code);
    if (!c)
        return code;
    if (!strcmp(what, "show")) {
        method = "GET";
        path = schedule_path(a->pos[0], "");
    } else if (!strcmp(what, "delete")) {
        method = "DELETE";
        path = schedule_path(a->pos[0], "");
    } else if (!strcmp(what, "backfill")) {
        json_t *b = json_object();
        json_object_set_new(b, "from", json_string(cli_get(a, "from")));
        json_object_set_new(b, "until", json_string(cli_get(a, "until")));
        body = json_dumps(b, JSON_COMPACT);
        json_decref(b);
        path = schedule_path(a->pos[0], "/backfill");
    } else {
        path = schedule_path(a->pos[0], !strcmp(what, "pause") ? "/pause" : "/resume");
    }
    code = call(c, method, path, body, body ? strlen(body) : 0, NULL, &r);
    if (code)
        goto out;
    if (!strcmp(what, "delete")) {
        printf("Schedule %s deleted\n", a->pos[0]);
        goto out;
    }
    if (need_object(&r)) {
        code = EXIT_INTERNAL;
        goto out;
    }
    if (cli_flag(a, "json"))
        cli_print_json(r.json);
    else if (!strcmp(what, "show"))
        print_schedule(r.json);
    else if (!strcmp(what, "backfill")) {
        long long n = cli_jint(r.json, "dueTimes", 0);
        printf("Schedule %s backfilled: %lld due time%s in (%s, %s]\n", a->pos[0], n,
               n == 1 ? "" : "s", cli_get(a, "from"), cli_get(a, "until"));
    } else
        printf("Schedule %s %s (next fire %s)\n", a->pos[0],
               !strcmp(what, "pause") ? "paused" : "resumed", jstr_or(r.json, "nextFireAt", "-"));
out:
    free(path);
    free(body);
    client_response_release(&r);
    client_free(c);
    return code;
}

int cli_remote_schedules(int argc, char **argv)
{
    static const struct {
        const char *word;
        const struct cli_cmd *cmd;
    } subs[] = {
        {"list", &sch_list_cmd},         {"show", &sch_show_cmd},
        {"pause", &sch_pause_cmd},       {"resume", &sch_resume_cmd},
        {"backfill", &sch_backfill_cmd}, {"delete", &sch_delete_cmd},
    };
    struct cli_args a;
    int code;

    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(argv[0], subs[i].word))
            continue;
        code = parse_client(subs[i].cmd, argc - 1, argv + 1, &a, subs[i].cmd->args ? 1 : 0);
        if (code >= 0)
            return code;
        if (!subs[i].cmd->args)
            return schedules_list_remote(&a);
        if (!strcmp(subs[i].word, "backfill") && (!cli_get(&a, "from") || !cli_get(&a, "until"))) {
            cli_error("'orch schedules backfill' needs --from TIME and --until TIME");
            return EXIT_USAGE;
        }
        return schedule_action(&a, subs[i].word);
    }
    return -1;
}

struct client *cli_client_open(const struct cli_args *a, int *out_exit)
{
    return open_client(a, out_exit);
}

int cli_client_call(struct client *c, const char *method, const char *path,
                    struct client_response *r)
{
    return call(c, method, path, NULL, 0, NULL, r);
}
