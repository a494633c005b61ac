#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cli.h"
#include "dag/dag.h"
#include "engine/engine.h"
#include "view/view.h"

#include "base/banned.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("orch: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_exit_for_err(int code)
{
    switch (code) {
    case 0: return EXIT_OK;
    case ERR_INVALID:
    case ERR_TOO_BIG: return EXIT_INVALID;
    case ERR_NOT_FOUND: return EXIT_NOT_FOUND;
    case ERR_CONFLICT:
    case ERR_BUSY: return EXIT_FAILED;
    }
    return EXIT_INTERNAL;
}

int cli_exit_for_status(enum exec_status st)
{
    switch (st) {
    case EXEC_SUCCEEDED: return EXIT_OK;
    case EXEC_TIMED_OUT: return EXIT_TIMED_OUT;
    case EXEC_CANCELLED: return EXIT_CANCELLED;
    case EXEC_FAILED: return EXIT_FAILED;
    default: return EXIT_INTERNAL;
    }
}

static const struct cli_opt global_opts[] = {
    {"data-dir", "DIR", "data directory (default $ORCH_DATA_DIR or ./.orch)", 0},
    {"database-url", "URL",
     "PostgreSQL instead of the data directory's SQLite: postgres://user:pass@host:port/db or a "
     "key=value string (default $DATABASE_URL, unless --data-dir is given)",
     0},
    {"log-level", "LEVEL", "error, warn, info or debug (default $ORCH_LOG_LEVEL or info)", 0},
    {"config", "FILE", "settings file (default $ORCH_CONFIG, else /etc/orch/orch.conf if present)",
     0},
    {"help", NULL, "show this help", 0},
    {NULL, NULL, NULL, 0},
};

/*
 * The global options a command does not use are left out of its --help (and
 * of its "did you mean"); they are still accepted, as global options, so that
 * scripts may pass them to every command.
 */
#define NO_STORE 1u /* no --data-dir, --database-url */
#define NO_LOG 2u   /* no --log-level */
static const struct {
    const char *cmd;
    unsigned flags;
} unused_globals[] = {
    {"validate", NO_STORE | NO_LOG},
    {"schedules next", NO_STORE | NO_LOG},
    {"schedules validate", NO_STORE | NO_LOG},
    {"executions list", NO_LOG},
    {"executions show", NO_LOG},
    {"logs", NO_LOG},
    {"trigger", NO_STORE | NO_LOG},
    {"workflows list", NO_STORE | NO_LOG},
    {"workflows show", NO_STORE | NO_LOG},
    {"workflows delete", NO_STORE | NO_LOG},
};

/* Is global option `o` one that `cmd` does not use (left out of its help)? */
static int unused_global(const struct cli_cmd *cmd, const struct cli_opt *o)
{
    unsigned flags = 0;
    for (size_t i = 0; i < sizeof(unused_globals) / sizeof(unused_globals[0]); i++)
        if (!strcmp(cmd->name, unused_globals[i].cmd))
            flags = unused_globals[i].flags;
    if (!strncmp(cmd->name, "schedules ", 10) && strcmp(cmd->name, "schedules next") &&
        strcmp(cmd->name, "schedules validate"))
        flags = NO_STORE | NO_LOG; /* the server's schedules */
    if ((flags & NO_STORE) && (!strcmp(o->name, "data-dir") || !strcmp(o->name, "database-url")))
        return 1;
    return (flags & NO_LOG) && !strcmp(o->name, "log-level");
}

void cli_usage(const struct cli_cmd *cmd, int to_stderr)
{
    FILE *f = to_stderr ? stderr : stdout;
    fprintf(f, "usage: orch %s [options]%s%s\n\n%s\n\noptions:\n", cmd->name,
            cmd->args ? " " : "", cmd->args ? cmd->args : "", cmd->summary);
    for (int pass = 0; pass < 2; pass++) {
        const struct cli_opt *o = pass == 0 ? cmd->opts : global_opts;
        for (; o && o->name; o++) {
            if (pass == 1 && unused_global(cmd, o))
                continue;
            char left[64];
            snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
            fprintf(f, "  %-22s %s\n", left, o->help);
        }
    }
}

static const struct cli_opt *find_opt(const struct cli_cmd *cmd, const char *name, size_t len)
{
    for (int pass = 0; pass < 2; pass++) {
        const struct cli_opt *o = pass == 0 ? cmd->opts : global_opts;
        for (; o && o->name; o++)
            if (strlen(o->name) == len && !strncmp(o->name, name, len))
                return o;
    }
    return NULL;
}

/* The option of `cmd` nearest to the unknown --NAME, for "did you mean". */
static const char *suggest_opt(const struct cli_cmd *cmd, const char *name, size_t len)
{
    const char *cands[64];
    size_t n = 0;
    char word[130];

    if (len >= sizeof(word))
        return NULL;
    memcpy(word, name, len);
    word[len] = '\0';
    for (int pass = 0; pass < 2; pass++) {
        const struct cli_opt *o = pass == 0 ? cmd->opts : global_opts;
        for (; o && o->name && n < sizeof(cands) / sizeof(cands[0]); o++)
            if (!(pass == 1 && unused_global(cmd, o)))
                cands[n++] = o->name;
    }
    return dag_suggest(word, cands, n);
}

int cli_parse(const struct cli_cmd *cmd, int argc, char **argv, struct cli_args *out)
{
    int only_pos = 0;

    memset(out, 0, sizeof(*out));
    out->cmd = cmd;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!only_pos && !strcmp(a, "--")) {
            only_pos = 1;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] == '-' && a[2]) {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const struct cli_opt *o = find_opt(cmd, name, len);
            const char *val = NULL;
            if (!o) {
                const char *sug = suggest_opt(cmd, name, len);
                if (sug)
                    cli_error("unknown option '--%.*s' for 'orch %s' (did you mean '--%s'?)",
                              (int)len, name, cmd->name, sug);
                else
                    cli_error("unknown option '--%.*s' for 'orch %s' (see 'orch %s --help')",
                              (int)len, name, cmd->name, cmd->name);
                return -1;
            }
            if (!strcmp(o->name, "help")) {
                cli_usage(cmd, 0);
                return 1;
            }
            if (o->arg) {
                if (eq) {
                    val = eq + 1;
                } else if (i + 1 < argc) {
                    val = argv[++i];
                } else {
                    cli_error("option '--%s' needs a value (%s)", o->name, o->arg);
                    return -1;
                }
            } else if (eq) {
                cli_error("option '--%s' takes no value", o->name);
                return -1;
            }
            if (!o->repeat) {
                for (int k = 0; k < out->nvals; k++)
                    if (out->vals[k].opt == o && o->arg) {
                        cli_error("option '--%s' given twice", o->name);
                        return -1;
                    }
            }
            if (out->nvals >= CLI_MAX_VALUES) {
                cli_error("too many options");
                return -1;
            }
            out->vals[out->nvals].opt = o;
            out->vals[out->nvals].value = val;
            out->nvals++;
            continue;
        }
        if (!only_pos && a[0] == '-' && a[1] != '\0') {
            if (!strcmp(a, "-h")) {
                cli_usage(cmd, 0);
                return 1;
            }
            cli_error("unknown option '%s' for 'orch %s' (see 'orch %s --help')", a, cmd->name,
                      cmd->name);
            return -1;
        }
        if (out->npos >= (int)(sizeof(out->pos) / sizeof(out->pos[0]))) {
            cli_error("too many arguments");
            return -1;
        }
        out->pos[out->npos++] = a;
    }
    /* The config file, now that --config is known (config.c). */
    if (cli_config_load(cli_get(out, "config")))
        return -1;
    return 0;
}

const char *cli_get(const struct cli_args *a, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < a->nvals; i++)
        if (!strcmp(a->vals[i].opt->name, name))
            v = a->vals[i].value;
    return v;
}

int cli_flag(const struct cli_args *a, const char *name)
{
    for (int i = 0; i < a->nvals; i++)
        if (!strcmp(a->vals[i].opt->name, name))
            return 1;
    return 0;
}

const char *cli_data_dir(const struct cli_args *a)
{
    const char *d = cli_get(a, "data-dir");
    if (d && *d)
        return d;
    d = getenv("ORCH_DATA_DIR");
    if (d && *d)
        return d;
    return "./.orch";
}

int cli_apply_log_level(const struct cli_args *a)
{
    const char *lv = cli_get(a, "log-level");
    enum log_level level;
    if (!lv)
        lv = getenv("ORCH_LOG_LEVEL");
    if (!lv || !*lv)
        return 0;
    if (log_parse_level(lv, &level)) {
        cli_error("invalid log level '%s' (use error, warn, info or debug)", lv);
        return -1;
    }
    log_set_level(level);
    return 0;
}

/* The params object of --params-file FILE (JSON or YAML), or an empty one. */
static json_t *params_file(const struct cli_args *a, int *out_exit)
{
    const char *path = cli_get(a, "params-file");
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    json_t *o = NULL;
    json_error_t jerr;
    size_t len;
    char *text;

    if (!path)
        return json_object();
    text = cli_read_file(path, DAG_MAX_BYTES, &len, out_exit);
    if (!text)
        return NULL;
    if (dag_is_yaml(path, text, len)) {
        if (dag_yaml_load(text, len, &o, NULL, &probs)) {
            cli_error("invalid params file '%s': %s", path,
                      probs.n ? probs.items[0].message : "invalid YAML");
            dag_problems_release(&probs);
        }
    } else {
        o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!o)
            cli_error("invalid params file '%s': invalid JSON at line %d column %d: %s", path,
                      jerr.line, jerr.column, jerr.text);
    }
    free(text);
    if (o && !json_is_object(o)) {
        cli_error("invalid params file '%s': it must hold an object of param name: value", path);
        json_decref(o);
        o = NULL;
    }
    if (!o)
        *out_exit = EXIT_INVALID;
    return o;
}

json_t *cli_params_json(const struct cli_args *a, const struct workflow *wf, int *out_exit)
{
    json_t *o = params_file(a, out_exit);

    if (!o)
        return NULL;
    for (int i = 0; i < a->nvals; i++) {
        const struct dag_param *decl = NULL;
        const char *kv, *eq;
        json_t *v;
        char *key;
        if (strcmp(a->vals[i].opt->name, "param"))
            continue;
        kv = a->vals[i].value;
        eq = strchr(kv, '=');
        if (!eq || eq == kv) {
            cli_error("invalid --param '%s' (use --param name=value)", kv);
            json_decref(o);
            *out_exit = EXIT_USAGE;
            return NULL;
        }
        key = xstrndup(kv, (size_t)(eq - kv));
        for (size_t k = 0; wf && k < wf->nparams; k++)
            if (!strcmp(wf->params[k].name, key))
                decl = &wf->params[k];
        if (!strcmp(eq + 1, "null")) {
            /* Never the text "null": no value, so an optional param keeps its default. */
            if (decl && decl->required) {
                cli_error("--param %s=null: '%s' is a required param and null is not a value "
                          "(for the text \"null\" use --params-file)",
                          key, key);
                free(key);
                json_decref(o);
                *out_exit = EXIT_INVALID;
                return NULL;
            }
            json_object_del(o, key);
            if (!decl)
                json_object_set_new(o, key, json_null()); /* the server says what is wrong */
            free(key);
            continue;
        }
        if (decl && decl->type == PARAM_STRING) {
            v = json_string(eq + 1); /* a string param takes any text as it is */
        } else {
            v = json_loads(eq + 1, JSON_DECODE_ANY, NULL);
            if (!v)
                v = json_string(eq + 1);
        }
        if (!v) {
            cli_error("--param %s: the value is not valid UTF-8", key);
            free(key);
            json_decref(o);
            *out_exit = EXIT_USAGE;
            return NULL;
        }
        json_object_set_new(o, key, v);
        free(key);
    }
    return o;
}

/* Flags before the environment: --database-url, --data-dir, $DATABASE_URL. */
const char *cli_database_url(const struct cli_args *a)
{
    const char *u = cli_get(a, "database-url");
    if (u && *u)
        return u;
    u = cli_get(a, "data-dir");
    if (u && *u)
        return NULL;
    u = getenv("DATABASE_URL");
    return u && *u ? u : NULL;
}

/* --redis-url, $ORCH_REDIS_URL, then $REDIS_URL (the name the issue and other tools use). */
const char *cli_redis_url(const struct cli_args *a)
{
    const char *u = cli_get(a, "redis-url");
    if (u && *u)
        return u;
    u = getenv("ORCH_REDIS_URL");
    if (u && *u)
        return u;
    u = getenv("REDIS_URL");
    return u && *u ? u : NULL;
}

const char *cli_store_location(const struct cli_args *a)
{
    const char *u = cli_database_url(a);
    return u ? u : cli_data_dir(a);
}

int cli_open_store(const struct cli_args *a, int writer, struct store **out)
{
    struct err err = ERR_INIT;
    const char *dir = cli_data_dir(a);
    const char *url = cli_database_url(a);
    int rc;

    if (url) {
        /* Never echo the URL: it may hold a password. libpq's messages do not. */
        rc = store_open(url, writer ? 0 : STORE_READONLY, out, &err);
        if (rc)
            cli_error("cannot open the PostgreSQL store: %s", err.msg);
        return rc;
    }
    if (!writer) {
        struct stat sb;
        if (stat(dir, &sb) != 0) {
            cli_error("no data directory at '%s' (run a workflow first, or pass --data-dir)",
                      dir);
            return ERR_NOT_FOUND;
        }
    }
    rc = store_open(dir, writer ? STORE_CREATE : STORE_READONLY, out, &err);
    if (rc)
        cli_error("cannot open the store in '%s': %s", dir, err.msg);
    return rc;
}

char *cli_read_file(const char *path, size_t max, size_t *out_len, int *out_exit)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rbe") : stdin;
    char *buf = NULL;
    size_t len = 0, alloc = 0;

    if (!f) {
        cli_error("cannot open '%s': %s", path, strerror(errno));
        *out_exit = errno == ENOENT ? EXIT_NOT_FOUND : EXIT_INVALID;
        return NULL;
    }
    {
        struct stat sb;
        if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
            cli_error("cannot read '%s': Is a directory (a workflow file is needed)", path);
            if (f != stdin)
                fclose(f);
            *out_exit = EXIT_INVALID;
            return NULL;
        }
    }
    for (;;) {
        size_t n;
        if (len + 65536 + 1 > alloc) {
            alloc = alloc ? alloc * 2 : 65536 * 2;
            buf = xrealloc(buf, alloc);
        }
        n = fread(buf + len, 1, alloc - len - 1, f);
        len += n;
        if (len > max) {
            cli_error("'%s' is larger than the limit of %zu bytes", path, max);
            free(buf);
            if (f != stdin)
                fclose(f);
            *out_exit = EXIT_INVALID;
            return NULL;
        }
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        cli_error("cannot read '%s': %s", path, strerror(errno));
        free(buf);
        if (f != stdin)
            fclose(f);
        *out_exit = EXIT_INTERNAL;
        return NULL;
    }
    if (f != stdin)
        fclose(f);
    buf[len] = '\0';
    *out_len = len;
    return buf;
}

size_t cli_task_order(const struct cli_task_ref *refs, size_t n, struct cli_row *out)
{
    size_t *start = xcalloc(n + 1, sizeof(*start)); /* instances of group g: by[start[g]..] */
    size_t *by = xcalloc(n ? n : 1, sizeof(*by));
    size_t k = 0;

    /* Bucket the instances by group, keeping their order (a counting sort). */
    for (size_t i = 0; i < n; i++)
        if (refs[i].group >= 0 && (size_t)refs[i].group < n)
            start[refs[i].group + 1]++;
    for (size_t g = 0; g < n; g++)
        start[g + 1] += start[g];
    {
        size_t *fill = xcalloc(n ? n : 1, sizeof(*fill));
        for (size_t i = 0; i < n; i++)
            if (refs[i].group >= 0 && (size_t)refs[i].group < n) {
                size_t g = (size_t)refs[i].group;
                by[start[g] + fill[g]++] = i;
            }
        free(fill);
    }
    for (size_t g = 0; g < n; g++) {
        size_t shown_ok = 0, hidden = 0;
        if (refs[g].group >= 0 && (size_t)refs[g].group < n)
            continue; /* an instance: printed under its group */
        out[k].idx = g;
        out[k].hidden = 0;
        out[k++].instance = 0;
        for (size_t j = start[g]; j < start[g + 1]; j++) {
            size_t i = by[j];
            if (refs[i].succeeded && shown_ok >= CLI_SHOWN_OK) {
                hidden++;
                continue;
            }
            shown_ok += refs[i].succeeded != 0;
            out[k].idx = i;
            out[k].hidden = 0;
            out[k++].instance = 1;
        }
        if (hidden) {
            out[k].idx = g;
            out[k].hidden = hidden;
            out[k++].instance = 1;
        }
    }
    free(start);
    free(by);
    return k;
}

/* A task that is not an instance: its name and row. */
struct name_row {
    const char *name;
    size_t row;
};

static int cmp_name_row(const void *a, const void *b)
{
    return strcmp(((const struct name_row *)a)->name, ((const struct name_row *)b)->name);
}

struct cli_row *cli_task_order_json(const json_t *tasks, size_t *out_n)
{
    size_t n = json_array_size(tasks), ndefs = 0;
    struct cli_task_ref *refs = xcalloc(n ? n : 1, sizeof(*refs));
    struct cli_row *rows = xcalloc(2 * n + 1, sizeof(*rows));
    /* name -> row of the tasks that are not instances, sorted for bsearch */
    struct name_row *defs = xcalloc(n ? n : 1, sizeof(*defs));

    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(tasks, i);
        const char *st = json_string_value(json_object_get(t, "status"));
        refs[i].group = -1;
        refs[i].succeeded = st && !strcmp(st, "succeeded");
        if (!json_is_string(json_object_get(t, "group")) &&
            json_is_string(json_object_get(t, "name"))) {
            defs[ndefs].name = json_string_value(json_object_get(t, "name"));
            defs[ndefs++].row = i;
        }
    }
    qsort(defs, ndefs, sizeof(*defs), cmp_name_row);
    for (size_t i = 0; i < n; i++) {
        struct name_row key = {NULL, 0};
        const struct name_row *hit;
        key.name = json_string_value(json_object_get(json_array_get(tasks, i), "group"));
        if (!key.name)
            continue;
        hit = bsearch(&key, defs, ndefs, sizeof(*defs), cmp_name_row);
        refs[i].group = hit ? (long)hit->row : -1;
    }
    *out_n = cli_task_order(refs, n, rows);
    free(defs);
    free(refs);
    return rows;
}

struct cli_row *cli_task_order_detail(const struct exec_detail *d, size_t *out_n)
{
    struct cli_task_ref *refs = xcalloc(d->ntasks ? d->ntasks : 1, sizeof(*refs));
    struct cli_row *rows = xcalloc(2 * d->ntasks + 1, sizeof(*rows));

    /* Rows are ordered by idx, and idx runs 0..n-1: a group's idx is its row. */
    for (size_t i = 0; i < d->ntasks; i++) {
        refs[i].group = d->tasks[i].instance ? d->tasks[i].group_idx : -1;
        refs[i].succeeded = d->tasks[i].status == TASK_SUCCEEDED;
    }
    *out_n = cli_task_order(refs, d->ntasks, rows);
    free(refs);
    return rows;
}

json_t *cli_exec_json(struct store *st, const struct exec_detail *d)
{
    json_t *j = view_exec_detail(d);
    char *outputs = NULL;
    struct err err = ERR_INIT;

    if (engine_exec_outputs(st, d, &outputs, &err) == 0)
        view_exec_set_outputs(j, outputs);
    free(outputs);
    if (view_exec_waits(d)) {
        /* Read from the store alone: the slots of a server are not known here. */
        struct workflow *wf;
        struct view_wait w;

        memset(&w, 0, sizeof(w));
        w.now = clock_now_ms();
        w.wf = wf = view_exec_workflow(st, d);
        view_set_waiting(json_object_get(j, "tasks"), d, d->ntasks, 0, &w);
        workflow_free(wf);
    }
    return j;
}

void cli_print_waiting(const json_t *tasks)
{
    int header = 0;

    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *t = json_array_get(tasks, i);
        const json_t *w = json_object_get(t, "waitingOn");
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *msg = json_string_value(json_object_get(w, "message"));
        if (!msg || !name)
            continue;
        if (!header++)
            printf("\nWaiting\n");
        printf("  %s: %s\n", name, msg);
    }
}

int cli_exec_ref_is_short(const char *ref)
{
    size_t n = strlen(ref);
    return !strcmp(ref, "latest") || (!strncmp(ref, "ex_", 3) && n > 3 && n < CLI_EXEC_ID_LEN);
}

int cli_resolve_exec(struct store *st, const char *ref, const char *workflow, char *out)
{
    struct exec_filter f;
    struct exec_list list = {NULL, 0};
    struct err err = ERR_INIT;
    char before[ID_MAX + 2];
    size_t plen = strlen(ref), n = 0;
    int latest = !strcmp(ref, "latest");

    if (!cli_exec_ref_is_short(ref)) {
        snprintf(out, ID_MAX, "%s", ref);
        return EXIT_OK;
    }
    memset(&f, 0, sizeof(f));
    if (latest) {
        f.workflow = workflow;
        f.limit = 1;
    } else {
        /* Ids sort by their characters: those with the prefix are the newest
         * ones below prefix + '~' (above any id character). */
        snprintf(before, sizeof(before), "%s~", ref);
        f.before_id = before;
        f.limit = 6;
    }
    if (store_executions_list(st, &f, &list, &err)) {
        cli_error("%s", err.msg);
        return EXIT_INTERNAL;
    }
    for (size_t i = 0; i < list.n; i++)
        if (latest || !strncmp(list.items[i].id, ref, plen))
            n++;
    if (n == 1) {
        snprintf(out, ID_MAX, "%s", list.items[0].id);
    } else if (n == 0) {
        if (latest && workflow)
            cli_error("no executions of workflow '%s'", workflow);
        else if (latest)
            cli_error("no executions yet");
        else
            cli_error("no execution id starts with '%s'", ref);
    } else {
        fprintf(stderr, "orch: the prefix '%s' is ambiguous; it matches:\n", ref);
        for (size_t i = 0; i < list.n && i < 5; i++)
            if (!strncmp(list.items[i].id, ref, plen))
                fprintf(stderr, "  %s  %s  %s\n", list.items[i].id, list.items[i].workflow,
                        exec_status_name(list.items[i].status));
        if (n > 5)
            fprintf(stderr, "  ...\n");
    }
    exec_list_release(&list);
    return n == 1 ? EXIT_OK : n == 0 ? EXIT_NOT_FOUND : EXIT_USAGE;
}

char *cli_read_definition(const char *path, size_t *out_len, int *out_exit,
                          struct dag_yaml_map *map)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    char *text, *json;
    size_t len;

    text = cli_read_file(path, DAG_MAX_BYTES, &len, out_exit);
    if (!text || !dag_is_yaml(path, text, len)) {
        *out_len = len;
        return text;
    }
    if (dag_yaml_to_json(text, len, &json, map, &probs)) {
        cli_print_problems(path, &probs, NULL);
        dag_problems_release(&probs);
        free(text);
        *out_exit = EXIT_INVALID;
        return NULL;
    }
    free(text);
    *out_len = strlen(json);
    return json;
}

void cli_print_problem(const char *path, const char *message, int line, int column)
{
    if (line > 0 && path && strcmp(path, "$"))
        fprintf(stderr, "  %s (line %d, column %d): %s\n", path, line, column, message);
    else
        fprintf(stderr, "  %s: %s\n", path ? path : "$", message);
}

void cli_print_problems(const char *path, struct dag_problems *probs,
                        const struct dag_yaml_map *map)
{
    dag_yaml_locate(map, probs);
    cli_error("invalid workflow '%s':", path);
    for (size_t i = 0; i < probs->n; i++)
        cli_print_problem(probs->items[i].path, probs->items[i].message, probs->items[i].line,
                          probs->items[i].column);
    if (probs->dropped)
        fprintf(stderr, "  ... and %zu more\n", probs->dropped);
}
