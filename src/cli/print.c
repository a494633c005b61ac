/*
 * print.c - how the CLI shows results, local or remote: one printer per kind
 * of result, each reading the API's JSON (a page of executions, an
 * ExecutionDetail). A local command builds that JSON from the store with the
 * functions the server uses (view_exec_list(), cli_exec_json()), a remote one
 * gets it from the server, and both print it here: `orch executions show`,
 * `orch executions list` and the summary of `orch run` read the same with
 * --server and without.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cli.h"
#include "store/store.h"

#include "base/banned.h"

void cli_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", s ? s : "null");
    free(s);
}

const char *cli_jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

long long cli_jint(const json_t *o, const char *key, long long dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

/* "1.204s" from a "durationMs" member, or "-" when it is null. */
static const char *fmt_duration_of(const json_t *o, const char *key, char *buf, size_t len)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) {
        snprintf(buf, len, "-");
        return buf;
    }
    return clock_fmt_duration((int64_t)json_integer_value(v), buf, len);
}

/* ", this retry 4ms" when `d` was retried and has finished (finishedAt - retriedAt), else "". */
static const char *retry_took(const json_t *d, char *buf, size_t len)
{
    int64_t r = 0, f = 0;
    char dur[32];

    buf[0] = '\0';
    if (json_is_string(json_object_get(d, "retriedAt")) &&
        json_is_string(json_object_get(d, "finishedAt")) &&
        clock_parse_iso8601(cli_jstr(d, "retriedAt"), &r) == 0 &&
        clock_parse_iso8601(cli_jstr(d, "finishedAt"), &f) == 0 && f >= r)
        snprintf(buf, len, ", this retry %s", clock_fmt_duration(f - r, dur, sizeof(dur)));
    return buf;
}

/* ------------------------------------------------------------------ executions list */

void cli_print_exec_list(const json_t *page, int ids_only)
{
    json_t *items = json_object_get(page, "items");
    json_t *next = json_object_get(page, "nextCursor");

    if (ids_only) {
        for (size_t i = 0; i < json_array_size(items); i++)
            printf("%s\n", cli_jstr(json_array_get(items, i), "id"));
        return;
    }
    if (!json_array_size(items)) {
        printf("No executions.\n");
        return;
    }
    printf("%-19s  %-24s  %-10s  %-24s  %-9s  %s\n", "ID", "WORKFLOW", "STATUS", "CREATED",
           "DURATION", "ERROR");
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        char dur[32];
        printf("%-19s  %-24.24s  %-10s  %-24s  %-9s  %s\n", cli_jstr(it, "id"),
               cli_jstr(it, "workflow"), cli_jstr(it, "status"), cli_jstr(it, "createdAt"),
               fmt_duration_of(it, "durationMs", dur, sizeof(dur)), cli_jstr(it, "error"));
    }
    if (json_is_string(next))
        printf("(more: --cursor %s)\n", json_string_value(next));
}

/* ------------------------------------------------------------------ executions show */

/* The row of one attempt of `task` (shown as `name`) in the table of `executions show`. */
static void print_attempt_row(const char *name, const json_t *task, const json_t *at)
{
    char res[32], dur[32];
    json_t *sig = json_object_get(at, "signal"), *ex = json_object_get(at, "exitCode");
    long long number = cli_jint(at, "number", 0);

    if (json_is_integer(sig) && json_integer_value(sig))
        snprintf(res, sizeof(res), "signal %lld", (long long)json_integer_value(sig));
    else if (json_is_integer(ex))
        snprintf(res, sizeof(res), "exit %lld", (long long)json_integer_value(ex));
    else
        snprintf(res, sizeof(res), "%s", cli_jstr(at, "status"));
    printf("%-24.24s  %-15s  %-7lld  %-16s  %-9s  %s\n", name,
           number == cli_jint(task, "attempt", -1) ? cli_jstr(task, "status")
                                                   : cli_jstr(at, "status"),
           number, res, fmt_duration_of(at, "durationMs", dur, sizeof(dur)), cli_jstr(at, "error"));
}

/* At most this many attempts are listed under "Queued before running". */
#define QUEUED_ROWS_MAX 20

/*
 * The attempts that waited between becoming queued (queuedAt: ready, their
 * dependencies final and back-off over) and starting (startedAt), in the
 * order of the tasks: a worker slot, the workflow's concurrency or
 * maxParallel, or a node held them.
 */
static void print_queued(const json_t *tasks)
{
    size_t shown = 0, more = 0;

    for (size_t i = 0; i < json_array_size(tasks); i++) {
        const json_t *t = json_array_get(tasks, i);
        const json_t *atts = json_object_get(t, "attempts");
        for (size_t k = 0; k < json_array_size(atts); k++) {
            const json_t *at = json_array_get(atts, k);
            int64_t q = 0, s = 0;
            char dur[32];
            if (!json_is_string(json_object_get(at, "queuedAt")) ||
                !json_is_string(json_object_get(at, "startedAt")) ||
                clock_parse_iso8601(cli_jstr(at, "queuedAt"), &q) != 0 ||
                clock_parse_iso8601(cli_jstr(at, "startedAt"), &s) != 0 || s <= q)
                continue;
            if (shown == QUEUED_ROWS_MAX) {
                more++;
                continue;
            }
            if (!shown++)
                printf("\nQueued before running\n");
            printf("  %s #%lld: %s (queued at %s)\n", cli_jstr(t, "name"),
                   cli_jint(at, "number", 0), clock_fmt_duration(s - q, dur, sizeof(dur)),
                   cli_jstr(at, "queuedAt"));
        }
    }
    if (more)
        printf("  ... %zu more\n", more);
}

void cli_print_exec_detail(const json_t *d)
{
    char dur[32];
    char *params = json_dumps(json_object_get(d, "params"), JSON_COMPACT | JSON_SORT_KEYS);
    json_t *tasks = json_object_get(d, "tasks");
    struct cli_row *rows;
    size_t nrows;

    printf("Execution  %s\nWorkflow   %s (version %lld)\nStatus     %s\nCreated    %s\n"
           "Duration   %s\nParams     %s\n",
           cli_jstr(d, "id"), cli_jstr(d, "workflow"), cli_jint(d, "workflowVersion", 0),
           cli_jstr(d, "status"), cli_jstr(d, "createdAt"),
           fmt_duration_of(d, "durationMs", dur, sizeof(dur)), params ? params : "{}");
    free(params);
    if (json_is_string(json_object_get(d, "retriedAt"))) {
        char took[64];
        printf("Retried    %s%s\n", cli_jstr(d, "retriedAt"), retry_took(d, took, sizeof(took)));
    }
    if (json_is_string(json_object_get(d, "error")))
        printf("Error      %s\n", cli_jstr(d, "error"));
    if (json_is_string(json_object_get(d, "parentId")))
        printf("Parent     %s\n", cli_jstr(d, "parentId"));
    printf("\n%-24s  %-15s  %-7s  %-16s  %-9s  %s\n", "TASK", "STATUS", "ATTEMPT", "RESULT",
           "DURATION", "ERROR");
    rows = cli_task_order_json(tasks, &nrows);
    for (size_t r = 0; r < nrows; r++) {
        json_t *t = json_array_get(tasks, rows[r].idx);
        json_t *atts = json_object_get(t, "attempts");
        char name[64];
        if (rows[r].hidden) {
            printf("  ... %zu more succeeded\n", rows[r].hidden);
            continue;
        }
        snprintf(name, sizeof(name), "%s%s", rows[r].instance ? "  " : "", cli_jstr(t, "name"));
        for (size_t k = 0; k < json_array_size(atts); k++)
            print_attempt_row(name, t, json_array_get(atts, k));
        if (!json_array_size(atts))
            printf("%-24.24s  %-15s  %-7s  %-16s  %-9s  %s\n", name, cli_jstr(t, "status"), "-",
                   "-", "-", cli_jstr(t, "error"));
        if (json_is_string(json_object_get(t, "childExecutionId")))
            printf("%-24s  child execution %s\n", "", cli_jstr(t, "childExecutionId"));
    }
    free(rows);
    if (json_is_integer(json_object_get(d, "instancesOmitted")))
        printf("(%lld fan-out instances not shown: GET /v1/executions/%s/tasks?group=NAME)\n",
               cli_jint(d, "instancesOmitted", 0), cli_jstr(d, "id"));
    print_queued(tasks);
    cli_print_waiting(tasks);
    cli_print_outputs(tasks);
    if (json_is_object(json_object_get(d, "outputs"))) {
        char *text = json_dumps(json_object_get(d, "outputs"), JSON_COMPACT);
        printf("\nWorkflow outputs: %s\n", text ? text : "{}");
        free(text);
    }
}

void cli_print_outputs(const json_t *tasks)
{
    size_t nrows;
    struct cli_row *rows = cli_task_order_json(tasks, &nrows);
    int header = 0;

    for (size_t r = 0; r < nrows; r++) {
        const json_t *t = json_array_get(tasks, rows[r].idx);
        const json_t *out = json_object_get(t, "output");
        const json_t *name = json_object_get(t, "name");
        char *text;
        if (rows[r].hidden) {
            if (header)
                printf("  ... %zu more\n", rows[r].hidden);
            continue;
        }
        if (!json_is_object(out) && !json_is_array(out))
            continue;
        text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS);
        if (!header) {
            printf("\n%-24s  %s\n", "TASK", "OUTPUT");
            header = 1;
        }
        if (text && strlen(text) > 200)
            printf("%s%-*.*s  %.197s...\n", rows[r].instance ? "  " : "",
                   rows[r].instance ? 22 : 24, rows[r].instance ? 22 : 24, json_string_value(name),
                   text);
        else
            printf("%s%-*.*s  %s\n", rows[r].instance ? "  " : "", rows[r].instance ? 22 : 24,
                   rows[r].instance ? 22 : 24, json_string_value(name), text ? text : "{}");
        free(text);
    }
    free(rows);
}

/* ------------------------------------------------------------------ run summary */

void cli_run_view_release(struct cli_run_view *v)
{
    free(v->tasks);
    free(v->rows);
    free(v->outputs);
    memset(v, 0, sizeof(*v));
}

void cli_run_view_from_json(const json_t *d, struct cli_run_view *out)
{
    json_t *tasks = json_object_get(d, "tasks");
    size_t n = json_array_size(tasks);
    int64_t r = 0, f = 0;

    memset(out, 0, sizeof(*out));
    out->id = cli_jstr(d, "id");
    out->status = cli_jstr(d, "status");
    out->duration_ms = cli_jint(d, "durationMs", 0);
    out->retry_ms = -1;
    if (json_is_string(json_object_get(d, "retriedAt")) &&
        json_is_string(json_object_get(d, "finishedAt")) &&
        clock_parse_iso8601(cli_jstr(d, "retriedAt"), &r) == 0 &&
        clock_parse_iso8601(cli_jstr(d, "finishedAt"), &f) == 0 && f >= r)
        out->retry_ms = f - r;
    out->tasks = xcalloc(n ? n : 1, sizeof(*out->tasks));
    out->ntasks = n;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(tasks, i);
        /* A summarised fan-out: its instances counted by status. */
        json_t *by = json_object_get(json_object_get(t, "instances"), "byStatus");
        enum task_status st;
        out->tasks[i].name = cli_jstr(t, "name");
        out->tasks[i].status = cli_jstr(t, "status");
        out->tasks[i].attempt = cli_jint(t, "attempt", 0);
        out->tasks[i].duration_ms = cli_jint(t, "durationMs", -1);
        out->tasks[i].error = cli_jstr(t, "error");
        out->tasks[i].instance = json_is_string(json_object_get(t, "group"));
        if (task_status_parse(out->tasks[i].status, &st) == 0)
            out->counts[st]++;
        for (int k = 0; k < TASK_STATUS_COUNT; k++)
            out->counts[k] += (size_t)json_integer_value(
                json_object_get(by, task_status_name((enum task_status)k)));
    }
    out->rows = cli_task_order_json(tasks, &out->nrows);
    if (json_is_object(json_object_get(d, "outputs")))
        out->outputs = json_dumps(json_object_get(d, "outputs"), JSON_COMPACT);
}

void cli_print_run_summary(const struct cli_run_view *v)
{
    struct strbuf sb = STRBUF_INIT;
    size_t w = 4;
    char dur[32];

    for (size_t i = 0; i < v->ntasks; i++) {
        size_t l = strlen(v->tasks[i].name) + (v->tasks[i].instance ? 2 : 0);
        if (l > w)
            w = l;
    }
    if (w > 40)
        w = 40;
    printf("%-*s  %-15s  %-8s  %-9s  %s\n", (int)w, "TASK", "STATUS", "ATTEMPTS", "DURATION",
           "ERROR");
    for (size_t k = 0; k < v->nrows; k++) {
        const struct cli_run_task *t = &v->tasks[v->rows[k].idx];
        char name[64];
        if (v->rows[k].hidden) {
            printf("  ... %zu more succeeded\n", v->rows[k].hidden);
            continue;
        }
        snprintf(name, sizeof(name), "%s%s", v->rows[k].instance ? "  " : "", t->name);
        if (t->duration_ms >= 0)
            clock_fmt_duration(t->duration_ms, dur, sizeof(dur));
        else
            snprintf(dur, sizeof(dur), "-");
        printf("%-*.*s  %-15s  %-8lld  %-9s  %s\n", (int)w, (int)w, name, t->status, t->attempt,
               dur, t->error);
    }
    for (int s = 0; s < TASK_STATUS_COUNT; s++)
        if (v->counts[s])
            strbuf_addf(&sb, "%s%zu %s", sb.len ? ", " : "", v->counts[s],
                        task_status_name((enum task_status)s));
    clock_fmt_duration(v->duration_ms, dur, sizeof(dur));
    {
        char took[64] = "", t[32];
        if (v->retry_ms >= 0)
            snprintf(took, sizeof(took), ", this retry %s",
                     clock_fmt_duration(v->retry_ms, t, sizeof(t)));
        printf("\nExecution %s %s in %s%s (%s)\n", v->id, v->status, dur, took, sb.buf);
    }
    strbuf_release(&sb);
    if (v->outputs)
        printf("Outputs: %s\n", v->outputs);
}
