/*
 * cmd_show.c - the read-only commands: validate, executions list/show, logs.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/xalloc.h"
#include "cli.h"
#include "dag/dag.h"
#include "view/view.h"

#include "base/banned.h"

/* ------------------------------------------------------------------ validate */

static const struct cli_opt validate_opts[] = {
    {"json", NULL, "print {\"valid\": bool, \"problems\": [...]} on stdout", 0},
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd validate_cmd = {
    "validate", "FILE",
    "Check a workflow definition (JSON or YAML) and print every problem with its JSON path\n"
    "(and, for YAML, its line and column).\n"
    "Exit status: 0 valid, 3 invalid, 6 file not found.",
    validate_opts,
};

int cmd_validate(int argc, char **argv)
{
    struct cli_args a;
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct dag_yaml_map pos = DAG_YAML_MAP_INIT;
    struct workflow *wf = NULL;
    char *def;
    size_t len;
    int code, rc;

    rc = cli_parse(&validate_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos != 1) {
        cli_error("'orch validate' needs exactly one workflow file");
        return EXIT_USAGE;
    }
    def = cli_read_definition(a.pos[0], &len, &code, &pos);
    if (!def)
        return code;
    rc = dag_parse(def, len, &wf, &probs);
    dag_yaml_locate(&pos, &probs);
    dag_yaml_map_release(&pos);
    if (cli_flag(&a, "json")) {
        json_t *o = json_object(), *arr = json_array();
        for (size_t i = 0; i < probs.n; i++) {
            json_t *p = json_object();
            json_object_set_new(p, "path", json_string(probs.items[i].path));
            json_object_set_new(p, "message", json_string(probs.items[i].message));
            if (probs.items[i].line) {
                json_object_set_new(p, "line", json_integer(probs.items[i].line));
                json_object_set_new(p, "column", json_integer(probs.items[i].column));
            }
            json_array_append_new(arr, p);
        }
        json_object_set_new(o, "valid", json_boolean(rc == 0));
        if (wf) {
            json_object_set_new(o, "workflow", json_string(wf->name));
            json_object_set_new(o, "tasks", json_integer((json_int_t)wf->ntasks));
        }
        json_object_set_new(o, "problems", arr);
        if (probs.dropped)
            json_object_set_new(o, "moreProblems", json_integer((json_int_t)probs.dropped));
        cli_print_json(o);
        json_decref(o);
    } else if (rc == 0) {
        printf("%s: workflow '%s' is valid (%zu task%s)\n", a.pos[0], wf->name, wf->ntasks,
               wf->ntasks == 1 ? "" : "s");
    } else {
        fprintf(stderr, "%s: %zu problem%s\n", a.pos[0], probs.n + probs.dropped,
                probs.n + probs.dropped == 1 ? "" : "s");
        for (size_t i = 0; i < probs.n; i++)
            cli_print_problem(probs.items[i].path, probs.items[i].message, probs.items[i].line,
                              probs.items[i].column);
        if (probs.dropped)
            fprintf(stderr, "  ... and %zu more\n", probs.dropped);
    }
    workflow_free(wf);
    dag_problems_release(&probs);
    free(def);
    return rc ? EXIT_INVALID : EXIT_OK;
}

/* ------------------------------------------------------------------ executions */

/*
 * Replace a->pos[0] (an id, a unique prefix of one, or "latest") by the full
 * id in `buf` (ID_MAX); with a store, from it, else from the server. Returns
 * an exit code (0 resolved; the error is printed).
 */
static int resolve_pos(struct cli_args *a, struct store *st, char *buf)
{
    const char *wf = cli_get(a, "workflow");
    int rc;

    if (wf && strcmp(a->pos[0], "latest")) {
        cli_error("--workflow goes with the id 'latest' only");
        return EXIT_USAGE;
    }
    rc = st ? cli_resolve_exec(st, a->pos[0], wf, buf)
            : cli_remote_resolve_exec(a, a->pos[0], wf, buf);
    if (rc == 0)
        a->pos[0] = buf;
    return rc;
}

static const struct cli_opt list_opts[] = {
    {"status", "S[,S]", "only these statuses (queued, running, succeeded, failed, cancelled, timed_out)", 0},
    {"workflow", "NAME", "only executions of this workflow", 0},
    {"parent", "ID", "only the child executions of execution ID (its workflow tasks')", 0},
    {"limit", "N", "at most N executions (default 20, max 1000)", 0},
    {"cursor", "ID", "continue after this execution id (the previous page's nextCursor)", 0},
    {"since", "TIME", "only executions created at or after TIME (2026-11-29T10:00:00Z)", 0},
    {"until", "TIME", "only executions created before TIME", 0},
    {"json", NULL, "print JSON", 0},
    {"ids", NULL, "print only the execution ids, one per line (for scripts and shell completion)",
     0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd list_cmd = {
    "executions list", NULL, "List executions, newest first.", list_opts,
};

static const struct cli_opt show_opts[] = {
    {"json", NULL, "print JSON", 0},
    CLI_LATEST_OPT,
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd show_cmd = {
    "executions show", "ID",
    "Show one execution with its tasks and every attempt. ID may be a unique prefix of\n"
    "an id, or 'latest' (the newest execution, of --workflow NAME if given).",
    show_opts,
};

static int parse_status_list(const char *s, unsigned *mask)
{
    char *copy = xstrdup(s), *save = NULL;
    int rc = 0;
    *mask = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        enum exec_status st;
        if (exec_status_parse(tok, &st)) {
            cli_error("unknown status '%s' (use queued, running, succeeded, failed, cancelled, "
                      "timed_out)",
                      tok);
            rc = -1;
            break;
        }
        *mask |= 1u << st;
    }
    free(copy);
    return rc;
}

static int executions_list(int argc, char **argv)
{
    struct cli_args a;
    struct exec_filter f;
    struct exec_list list = {NULL, 0};
    struct store *st = NULL;
    struct err err = ERR_INIT;
    const char *v;
    int rc, want, more = 0, extra = 0;

    rc = cli_parse(&list_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch executions list' takes no arguments");
        return EXIT_USAGE;
    }
    memset(&f, 0, sizeof(f));
    f.limit = 20;
    if ((v = cli_get(&a, "status")) && parse_status_list(v, &f.status_mask))
        return EXIT_USAGE;
    f.workflow = cli_get(&a, "workflow");
    f.parent_id = cli_get(&a, "parent");
    f.before_id = cli_get(&a, "cursor");
    if ((v = cli_get(&a, "limit"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1 || n > 1000) {
            cli_error("invalid limit '%s' (use 1..1000)", v);
            return EXIT_USAGE;
        }
        f.limit = (int)n;
    }
    if (((v = cli_get(&a, "since")) && clock_parse_iso8601(v, &f.since)) ||
        ((v = cli_get(&a, "until")) && clock_parse_iso8601(v, &f.until))) {
        cli_error("invalid time '%s' (use 2026-11-29T10:00:00Z or 2026-11-29)", v);
        return EXIT_USAGE;
    }
    if (cli_server(&a))
        return cli_remote_executions_list(&a, f.limit);
    if ((rc = cli_open_store(&a, 0, &st)) != 0)
        return cli_exit_for_err(rc);
    /* One row more than asked tells whether there is a next page. */
    want = f.limit;
    if (want < 1000)
        f.limit = want + 1;
    rc = store_executions_list(st, &f, &list, &err);
    if (rc == 0 && want == 1000 && list.n == 1000) {
        struct exec_list probe = {NULL, 0};
        struct exec_filter g = f;
        g.before_id = list.items[list.n - 1].id;
        g.limit = 1;
        rc = store_executions_list(st, &g, &probe, &err);
        more = probe.n > 0;
        exec_list_release(&probe);
    }
    if (rc) {
        cli_error("%s", err.msg);
        exec_list_release(&list);
        store_free(st);
        return EXIT_INTERNAL;
    }
    if (list.n > (size_t)want) {
        more = 1;
        list.n = (size_t)want; /* the extra row is freed with the list below */
        extra = 1;
    }
    {
        json_t *j = view_exec_list(&list, want);
        if (more && list.n)
            json_object_set_new(j, "nextCursor", json_string(list.items[list.n - 1].id));
        if (cli_flag(&a, "json"))
            cli_print_json(j);
        else
            cli_print_exec_list(j, cli_flag(&a, "ids"));
        json_decref(j);
    }
    list.n += (size_t)extra;
    exec_list_release(&list);
    store_free(st);
    return EXIT_OK;
}

static int executions_show(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct exec_detail *d = NULL;
    struct err err = ERR_INIT;
    char idbuf[ID_MAX];
    int rc;

    rc = cli_parse(&show_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos != 1) {
        cli_error("'orch executions show' needs one execution id");
        return EXIT_USAGE;
    }
    if (cli_server(&a)) {
        rc = resolve_pos(&a, NULL, idbuf);
        return rc ? rc : cli_remote_executions_show(&a);
    }
    if ((rc = cli_open_store(&a, 0, &st)) != 0)
        return cli_exit_for_err(rc);
    if ((rc = resolve_pos(&a, st, idbuf)) != 0) {
        store_free(st);
        return rc;
    }
    rc = store_execution_get(st, a.pos[0], &d, &err);
    if (rc) {
        cli_error("%s", err.msg);
        store_free(st);
        return cli_exit_for_err(rc);
    }
    {
        json_t *j = cli_exec_json(st, d);
        if (cli_flag(&a, "json"))
            cli_print_json(j);
        else
            cli_print_exec_detail(j);
        json_decref(j);
    }
    exec_detail_free(d);
    store_free(st);
    return EXIT_OK;
}

int cmd_executions(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "list"))
        return executions_list(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "show"))
        return executions_show(argc - 1, argv + 1);
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: orch executions list [options]\n"
               "       orch executions show ID [--json]\n");
        return EXIT_OK;
    }
    cli_error("'orch executions' needs a subcommand: list or show");
    return EXIT_USAGE;
}

/* ------------------------------------------------------------------ logs */

/* Interval between two reads of the store by `logs --follow` without a server. */
#define FOLLOW_POLL_MS 200

/* What `logs --follow` has read of one attempt. */
struct followed {
    int task_idx, attempt, last_seq, drained;
};

/* Print one chunk of `logs` (text or a JSON line). */
static void print_chunk(const struct exec_detail *d, const struct log_chunk *c, int json,
                        int headers, int *last_task, int *last_attempt, int *at_line_start)
{
    const char *name = "?";
    for (size_t k = 0; k < d->ntasks; k++)
        if (d->tasks[k].idx == c->task_idx)
            name = d->tasks[k].name;
    if (json) {
        json_t *o = json_object();
        char *s;
        json_object_set_new(o, "task", json_string(name));
        json_object_set_new(o, "attempt", json_integer(c->attempt));
        json_object_set_new(o, "stream",
                            json_string(c->stream == LOG_STREAM_STDERR ? "stderr" : "stdout"));
        json_object_set_new(o, "ts", view_instant(c->ts));
        json_object_set_new(o, "data", view_text(c->data, c->len));
        s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    if (c->task_idx != *last_task || c->attempt != *last_attempt) {
        if (!*at_line_start)
            putchar('\n');
        if (headers)
            printf("==> %s (attempt %d) <==\n", name, c->attempt);
        *last_task = c->task_idx;
        *last_attempt = c->attempt;
        *at_line_start = 1;
    }
    if (c->len) {
        fwrite(c->data, 1, c->len, stdout);
        *at_line_start = c->data[c->len - 1] == '\n';
    }
}

/*
 * `logs --follow` on the store: read the new chunks of every attempt (of
 * task `task_idx`, or of the instances of group `group_idx`, or all) until
 * the execution has ended and every attempt's output has been read.
 */
static int follow_local(struct store *st, const char *id, int task_idx, int group_idx,
                        int attempt, int json, int headers)
{
    struct followed *fs = NULL;
    size_t nfs = 0, alloc = 0;
    int last_task = -1, last_attempt = -1, at_line_start = 1, code = EXIT_OK;

    for (;;) {
        struct exec_detail *d = NULL;
        struct err err = ERR_INIT;
        int final;

        if (store_execution_get(st, id, &d, &err)) {
            cli_error("%s", err.msg);
            code = EXIT_INTERNAL;
            break;
        }
        /* Seen final before its output is read: that read is the last. */
        final = exec_status_is_final(d->exec.status);
        for (size_t i = 0; i < d->nattempts; i++) {
            const struct attempt_row *at = &d->attempts[i];
            struct followed *f = NULL;
            struct log_list logs = {NULL, 0};
            int wanted = task_idx < 0 || at->task_idx == task_idx;

            if (group_idx >= 0) {
                wanted = 0;
                for (size_t k = 0; k < d->ntasks; k++)
                    if (d->tasks[k].idx == at->task_idx && d->tasks[k].instance &&
                        d->tasks[k].group_idx == group_idx)
                        wanted = 1;
            }
            if (!wanted || (attempt && at->number != attempt))
                continue;
            for (size_t k = 0; k < nfs && !f; k++)
                if (fs[k].task_idx == at->task_idx && fs[k].attempt == at->number)
                    f = &fs[k];
            if (!f) {
                XGROW(fs, alloc, nfs + 1);
                f = &fs[nfs++];
                f->task_idx = at->task_idx;
                f->attempt = at->number;
                f->last_seq = -1;
                f->drained = 0;
            }
            if (f->drained)
                continue;
            if (at->status != ATTEMPT_RUNNING)
                f->drained = 1; /* finished before this read: nothing comes after it */
            if (store_logs_follow(st, id, at->task_idx, at->number, f->last_seq, &logs, &err)) {
                cli_error("%s", err.msg);
                code = EXIT_INTERNAL;
                break;
            }
            for (size_t k = 0; k < logs.n; k++) {
                print_chunk(d, &logs.items[k], json, headers, &last_task, &last_attempt,
                            &at_line_start);
                f->last_seq = logs.items[k].seq;
            }
            log_list_release(&logs);
        }
        exec_detail_free(d);
        if (fflush(stdout) == EOF || code || final)
            break;
        {
            struct timespec ts = {0, FOLLOW_POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (!json && !at_line_start)
        putchar('\n');
    free(fs);
    return code;
}

static const struct cli_opt logs_opts[] = {
    {"attempt", "N", "only this attempt (default: every attempt)", 0},
    {"json", NULL, "print JSON lines: {task, attempt, stream, ts, data}", 0},
    {"follow", NULL, "print the output as it comes, until the execution ends", 0},
    CLI_LATEST_OPT,
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd logs_cmd = {
    "logs", "ID [TASK]",
    "Print the captured output (stdout and stderr) of an execution's tasks. ID may be a\n"
    "unique prefix of an id, or 'latest' (the newest execution, of --workflow NAME if given).",
    logs_opts,
};

int cmd_logs(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct exec_detail *d = NULL;
    struct log_list logs = {NULL, 0};
    struct err err = ERR_INIT;
    int task_idx = -1, group_idx = -1, attempt = 0, rc, code = EXIT_OK, json;
    const char *v;
    char idbuf[ID_MAX];

    rc = cli_parse(&logs_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos < 1 || a.npos > 2) {
        cli_error("'orch logs' needs an execution id and optionally a task name");
        return EXIT_USAGE;
    }
    if ((v = cli_get(&a, "attempt"))) {
        char *end;
        long n = strtol(v, &end, 10);
        if (*end || n < 1) {
            cli_error("invalid attempt '%s'", v);
            return EXIT_USAGE;
        }
        attempt = (int)n;
    }
    if (cli_server(&a)) {
        rc = resolve_pos(&a, NULL, idbuf);
        return rc ? rc : cli_remote_logs(&a);
    }
    json = cli_flag(&a, "json");
    if ((rc = cli_open_store(&a, 0, &st)) != 0)
        return cli_exit_for_err(rc);
    if ((code = resolve_pos(&a, st, idbuf)) != 0)
        goto out;
    rc = store_execution_get(st, a.pos[0], &d, &err);
    if (rc) {
        cli_error("%s", err.msg);
        code = cli_exit_for_err(rc);
        goto out;
    }
    if (a.npos == 2) {
        for (size_t i = 0; i < d->ntasks; i++)
            if (!strcmp(d->tasks[i].name, a.pos[1]))
                task_idx = d->tasks[i].idx;
        if (task_idx < 0) {
            cli_error("execution '%s' has no task '%s'", a.pos[0], a.pos[1]);
            code = EXIT_NOT_FOUND;
            goto out;
        }
        /* A fan-out (forEach) task runs nothing itself: its output is that of
         * its instances, each printed under its own header. */
        for (size_t i = 0; i < d->ntasks && group_idx < 0; i++)
            if (d->tasks[i].instance && d->tasks[i].group_idx == task_idx)
                group_idx = task_idx;
    }
    if (cli_flag(&a, "follow")) {
        code = follow_local(st, a.pos[0], group_idx >= 0 ? -1 : task_idx, group_idx, attempt,
                            json, task_idx < 0 || attempt == 0 || group_idx >= 0);
        goto out;
    }
    rc = store_logs_get(st, a.pos[0], group_idx >= 0 ? -1 : task_idx, &logs, &err);
    if (rc) {
        cli_error("%s", err.msg);
        code = EXIT_INTERNAL;
        goto out;
    }
    {
        int last_task = -1, last_attempt = -1;
        for (size_t i = 0; i < logs.n; i++) {
            const struct log_chunk *c = &logs.items[i];
            const char *name = "?";
            int in_group = group_idx < 0;
            if (attempt && c->attempt != attempt)
                continue;
            for (size_t k = 0; k < d->ntasks; k++)
                if (d->tasks[k].idx == c->task_idx) {
                    name = d->tasks[k].name;
                    in_group = in_group ||
                               (d->tasks[k].instance && d->tasks[k].group_idx == group_idx);
                }
            if (!in_group)
                continue;
            if (json) {
                json_t *o = json_object();
                char *s;
                json_object_set_new(o, "task", json_string(name));
                json_object_set_new(o, "attempt", json_integer(c->attempt));
                json_object_set_new(o, "stream", json_string(c->stream == LOG_STREAM_STDERR
                                                                  ? "stderr"
                                                                  : "stdout"));
                json_object_set_new(o, "ts", view_instant(c->ts));
                json_object_set_new(o, "data", view_text(c->data, c->len));
                s = json_dumps(o, JSON_COMPACT);
                printf("%s\n", s);
                free(s);
                json_decref(o);
                continue;
            }
            if (c->task_idx != last_task || c->attempt != last_attempt) {
                if (task_idx < 0 || attempt == 0 || group_idx >= 0)
                    printf("==> %s (attempt %d) <==\n", name, c->attempt);
                last_task = c->task_idx;
                last_attempt = c->attempt;
            }
            fwrite(c->data, 1, c->len, stdout);
            if (c->len && c->data[c->len - 1] != '\n' &&
                (i + 1 == logs.n || logs.items[i + 1].task_idx != c->task_idx ||
                 logs.items[i + 1].attempt != c->attempt))
                putchar('\n');
        }
    }
out:
    log_list_release(&logs);
    exec_detail_free(d);
    store_free(st);
    return code;
}
