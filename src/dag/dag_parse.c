/*
 * dag_parse.c - pass 1: the JSON definition into a struct workflow, checking
 * every field's name, type and value.
 *
 * Choices the format leaves open, made here:
 *   - A param value that is an object is a spec when it has at least one of
 *     the keys "type", "default", "required", "description" (and then other
 *     keys are unknown fields); any other object is a shorthand default of
 *     type object.
 *   - A spec with a default and no "type" takes the default's type; a spec
 *     with neither is a string.
 *   - Integer fields also accept a JSON number with an integral value (3.0).
 *   - A duration given as a JSON number is formatted and handed to
 *     clock_parse_duration(), so both forms share one set of rules and limits.
 */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag.h"
#include "dag_internal.h"
#include "sched/cron.h"
#include "sched/tz.h"

#include "base/banned.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const workflow_fields[] = {
    "name", "description", "params", "tasks", "timeout", "concurrency", "env",
    "retention", "maxQueued", "maxRunning", "stuckPolicy", "schedules", "outputs",
    "notify",
};
static const char *const notify_fields[] = {"on", "webhook"};
static const char *const webhook_fields[] = {"url", "urlEnv", "method", "headers", "auth", "body"};
static const char *const task_fields[] = {
    "name",       "dependsOn", "type",    "command",      "duration", "env",
    "workingDir", "timeout",   "retries", "retryBackoff", "runIf",    "when",
    "method",     "url",       "headers", "body",         "expectStatus", "followRedirects",
    "auth",       "idempotent", "workflow", "params",     "forEach",  "maxParallel",
};
static const char *const auth_fields[] = {"username", "usernameEnv", "passwordEnv", "bearerEnv",
                                          "header",   "query",       "valueEnv"};
static const char *const backoff_fields[] = {"initial", "factor", "max", "jitter"};
static const char *const param_fields[] = {"type", "default", "required", "description"};
static const char *const schedule_fields[] = {
    "name",    "cron",       "every",   "timezone", "params",
    "enabled", "dst",        "catchup", "maxCatchup", "overlap",
};
static const char *const dst_fields[] = {"skipped", "repeated"};

/* Indexed by enum task_type, enum run_if and enum param_type. */
static const char *const task_type_names[] = {"command", "noop", "sleep", "http", "workflow"};
static const char *const run_if_names[] = {"allSucceeded", "allDone", "anyFailed"};
static const char *const stuck_policy_names[] = {"warn", "fail"};
static const char *const param_type_names[] = {"string", "number", "boolean", "object"};
static const char *const param_type_articles[] = {"a string", "a number", "a boolean", "an object"};
/* Indexed by enum cron_dst_skipped, cron_dst_repeated, dag_catchup and dag_overlap. */
static const char *const dst_skipped_names[] = {"shift", "skip"};
static const char *const dst_repeated_names[] = {"first", "last", "both"};
static const char *const catchup_names[] = {"none", "latest", "all"};
static const char *const overlap_names[] = {"skip", "bufferOne", "bufferAll", "cancelPrevious",
                                            "allow"};

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static char *dump_json(const json_t *v)
{
    json_free_t jfree;
    char *text, *copy;

    text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        BUG("cannot encode a parsed JSON value (out of memory?)");
    json_get_alloc_funcs(NULL, &jfree);
    copy = xstrdup(text);
    jfree(text);
    return copy;
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [A-Za-z0-9][A-Za-z0-9._-]{0,127} */
static int valid_task_name(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        int ok = is_alpha(s[i]) || is_digit(s[i]);
        if (i > 0)
            ok = ok || s[i] == '.' || s[i] == '_' || s[i] == '-';
        if (!ok || i >= 128)
            return 0;
    }
    return i > 0;
}

/* [A-Za-z_][A-Za-z0-9_]{0,max_len-1}, max_len 0 = unbounded */
static int valid_identifier(const char *s, size_t max_len)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        int ok = is_alpha(s[i]) || s[i] == '_' || (i > 0 && is_digit(s[i]));
        if (!ok || (max_len && i >= max_len))
            return 0;
    }
    return i > 0;
}

static int lookup_name(const char *s, const char *const *names, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (!strcmp(s, names[i]))
            return (int)i;
    }
    return -1;
}

/* What a path ends with, for messages: "retries", "dependsOn[2]". */
static void subject_of(const struct dag__path *at, char *buf, size_t size)
{
    if (!at)
        snprintf(buf, size, "$");
    else if (at->key)
        snprintf(buf, size, "%.*s%s", DAG__Q(at->key));
    else if (at->up && at->up->key)
        snprintf(buf, size, "%.*s%s[%zu]", DAG__Q(at->up->key), at->index);
    else
        snprintf(buf, size, "[%zu]", at->index);
}

/* "'retries' must be an integer, got string" */
static void type_problem(struct dag__parser *p, const struct dag__path *at, const char *want,
                         const json_t *v)
{
    char subj[DAG__QUOTE_MAX + 32];

    subject_of(at, subj, sizeof(subj));
    dag__problem(p, at, 0, 0, "'%s' must be %s, got %s", subj, want, json_kind(v));
}

static void unknown_field(struct dag__parser *p, const struct dag__path *at, const char *key,
                          const char *const *fields, size_t nfields)
{
    const char *sug = NULL;

    if (!dag__problems_full(p))
        sug = dag__suggest(p, key, fields, nfields, NULL);
    if (sug)
        dag__problem(p, at, 0, 0, "unknown field '%.*s%s' (did you mean '%s'?)", DAG__Q(key), sug);
    else
        dag__problem(p, at, 0, 0, "unknown field '%.*s%s'", DAG__Q(key));
}

/* "invalid runIf 'x' (allowed: allSucceeded, allDone, anyFailed)" */
static void bad_enum(struct dag__parser *p, const struct dag__path *at, const char *what,
                     const char *value, const char *const *names, size_t n)
{
    struct strbuf allowed = STRBUF_INIT;
    size_t i;

    for (i = 0; i < n; i++) {
        if (i)
            strbuf_adds(&allowed, ", ");
        strbuf_adds(&allowed, names[i]);
    }
    dag__problem(p, at, 0, 0, "invalid %s '%.*s%s' (allowed: %s)", what, DAG__Q(value),
                 allowed.buf);
    strbuf_release(&allowed);
}

static const char *get_string(struct dag__parser *p, const struct dag__path *at, const json_t *v)
{
    if (!json_is_string(v)) {
        type_problem(p, at, "a string", v);
        return NULL;
    }
    return json_string_value(v);
}

/* A string field whose value, if valid, is copied into *out. */
static void get_nonempty_string(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                                char **out)
{
    const char *s = get_string(p, at, v);

    if (!s)
        return;
    if (!*s) {
        char subj[DAG__QUOTE_MAX + 32];
        subject_of(at, subj, sizeof(subj));
        dag__problem(p, at, 0, 0, "'%s' must not be empty", subj);
        return;
    }
    *out = xstrdup(s);
}

/* An integer, or a number with an integral value small enough to be exact. */
static int get_int(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                   long long *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        /* Range check before the cast: an out-of-range conversion is undefined. */
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
            *out = (long long)d;
            return 0;
        }
    }
    type_problem(p, at, "an integer", v);
    return -1;
}

static int get_int_range(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                         long long lo, long long hi, int *out)
{
    char subj[DAG__QUOTE_MAX + 32];
    long long x;

    if (get_int(p, at, v, &x) < 0)
        return -1;
    if (x < lo || x > hi) {
        subject_of(at, subj, sizeof(subj));
        if (hi == INT_MAX && x < lo)
            dag__problem(p, at, 0, 0, "'%s' must be at least %lld, got %lld", subj, lo, x);
        else
            dag__problem(p, at, 0, 0, "'%s' must be between %lld and %lld, got %lld", subj, lo, hi,
                         x);
        return -1;
    }
    *out = (int)x;
    return 0;
}

/* A duration string ("90s", "1h30m") or a non-negative number of seconds. */
static int get_duration(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                        int64_t *out_ms)
{
    struct err err = ERR_INIT;
    char num[64];
    const char *s;

    if (json_is_string(v)) {
        s = json_string_value(v);
    } else if (json_is_integer(v)) {
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        snprintf(num, sizeof(num), "%.17g", json_real_value(v));
        s = num;
    } else {
        type_problem(p, at, "a duration (a string like \"90s\" or a number of seconds)", v);
        return -1;
    }
    if (clock_parse_duration(s, out_ms, &err) < 0) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return -1;
    }
    return 0;
}

static void get_timeout(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                        int64_t *out_ms)
{
    int64_t ms;

    if (get_duration(p, at, v, &ms) < 0)
        return;
    if (ms <= 0) {
        dag__problem(p, at, 0, 0, "'timeout' must be greater than zero");
        return;
    }
    *out_ms = ms;
}

/* A duration that must be > 0 (retention, maxQueued, maxRunning). */
static void get_positive_duration(struct dag__parser *p, const struct dag__path *at,
                                  const json_t *v, const char *name, int64_t *out_ms)
{
    int64_t ms;

    if (get_duration(p, at, v, &ms) < 0)
        return;
    if (ms <= 0) {
        dag__problem(p, at, 0, 0, "'%s' must be greater than zero", name);
        return;
    }
    *out_ms = ms;
}

/* An object of environment variables: valid names, string values. */
static int valid_header_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s == ':' || *s >= 127)
            return 0;
    return 1;
}

enum kv_kind { KV_ENV, KV_HEADERS, KV_OUTPUTS };

/* An object of strings: environment variables, HTTP headers or outputs. */
static void parse_kv(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                     struct dag_kv **out, size_t *out_n, enum kv_kind kind)
{
    const char *key;
    json_t *val;

    if (!json_is_object(v)) {
        type_problem(p, at, "an object of strings", v);
        return;
    }
    /* Published at once, filled as we go: workflow_free() frees a partial list. */
    *out = xcalloc(json_object_size(v), sizeof(**out));
    json_object_foreach((json_t *)v, key, val)
    {
        struct dag__path f = {at, key, 0};
        int headers = kind == KV_HEADERS;
        int name_ok = headers ? valid_header_name(key) : valid_identifier(key, 0);

        if (!name_ok && headers)
            dag__problem(p, &f, 0, 0, "invalid header name '%.*s%s'", DAG__Q(key));
        else if (!name_ok && kind == KV_OUTPUTS)
            dag__problem(p, &f, 0, 0, "invalid output name '%.*s%s' (must match "
                         "[A-Za-z_][A-Za-z0-9_]*)", DAG__Q(key));
        else if (!name_ok)
            dag__problem(p, &f, 0, 0,
                         "invalid environment variable name '%.*s%s' "
                         "(must match [A-Za-z_][A-Za-z0-9_]*)",
                         DAG__Q(key));
        if (!json_is_string(val)) {
            type_problem(p, &f, "a string", val);
            continue;
        }
        if (headers && strpbrk(json_string_value(val), "\r\n")) {
            dag__problem(p, &f, 0, 0, "a header value must not contain a line break");
            continue;
        }
        if (!name_ok)
            continue;
        (*out)[*out_n].key = xstrdup(key);
        (*out)[*out_n].value = xstrdup(json_string_value(val));
        (*out_n)++;
    }
}

static void parse_depends_on(struct dag__parser *p, const struct dag__path *at, size_t ti,
                             const json_t *v)
{
    struct dag__task_refs *r = &p->refs[ti];
    size_t i;
    json_t *e;

    if (!json_is_array(v)) {
        type_problem(p, at, "an array of task names", v);
        r->lost = 1;
        return;
    }
    r->refs = xcalloc(json_array_size(v), sizeof(*r->refs));
    json_array_foreach((json_t *)v, i, e)
    {
        struct dag__path f = {at, NULL, i};
        if (!json_is_string(e)) {
            type_problem(p, &f, "a string", e);
            r->lost = 1;
            continue;
        }
        r->refs[r->n].name = json_string_value(e);
        r->refs[r->n].pos = i;
        r->n++;
    }
}

static void parse_command(struct dag__parser *p, const struct dag__path *at, struct dag_task *t,
                          const json_t *v)
{
    size_t i, n;
    json_t *arg;

    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (s[strspn(s, " \t\r\n")] == '\0')
            dag__problem(p, at, 0, 0, "'command' must not be empty");
        else
            t->shell = xstrdup(s);
        return;
    }
    if (!json_is_array(v)) {
        type_problem(p, at, "a string or an array of strings", v);
        return;
    }
    n = json_array_size(v);
    if (n == 0) {
        dag__problem(p, at, 0, 0, "'command' must not be empty");
        return;
    }
    t->argv = xcalloc(n + 1, sizeof(*t->argv));
    t->argc = n;
    json_array_foreach((json_t *)v, i, arg)
    {
        struct dag__path f = {at, NULL, i};
        if (!json_is_string(arg)) {
            type_problem(p, &f, "a string", arg);
            continue;
        }
        if (i == 0 && !*json_string_value(arg)) {
            dag__problem(p, &f, 0, 0, "the program name 'command[0]' must not be empty");
            continue;
        }
        t->argv[i] = xstrdup(json_string_value(arg));
    }
}

static void parse_backoff(struct dag__parser *p, const struct dag__path *at, struct dag_task *t,
                          const json_t *v)
{
    struct dag_backoff *b = &t->backoff;
    int durations_ok = 1;
    const char *key;
    json_t *val;

    if (!json_is_object(v)) {
        type_problem(p, at, "an object", v);
        return;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        struct dag__path f = {at, key, 0};

        if (!strcmp(key, "initial")) {
            if (get_duration(p, &f, val, &b->initial_ms) < 0)
                durations_ok = 0;
        } else if (!strcmp(key, "max")) {
            if (get_duration(p, &f, val, &b->max_ms) < 0)
                durations_ok = 0;
        } else if (!strcmp(key, "factor")) {
            double d;
            if (!json_is_number(val)) {
                type_problem(p, &f, "a number", val);
                continue;
            }
            d = json_number_value(val);
            if (d < 1 || d > 100)
                dag__problem(p, &f, 0, 0, "'factor' must be between 1 and 100, got %g", d);
            else
                b->factor = d;
        } else if (!strcmp(key, "jitter")) {
            if (!json_is_boolean(val))
                type_problem(p, &f, "a boolean", val);
            else
                b->jitter = json_is_true(val);
        } else {
            unknown_field(p, &f, key, backoff_fields, COUNT(backoff_fields));
        }
    }
    if (durations_ok && b->initial_ms > b->max_ms) {
        struct dag__path f = {at, "initial", 0};
        char a[32], m[32];
        dag__problem(p, &f, 0, 0, "'initial' (%s) must not be greater than 'max' (%s)",
                     clock_fmt_duration(b->initial_ms, a, sizeof(a)),
                     clock_fmt_duration(b->max_ms, m, sizeof(m)));
    }
}

/* Returns 0 if `s` named an enum value (stored in *out), -1 after a problem. */
static int get_enum(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                    const char *what, const char *const *names, size_t n, int *out)
{
    const char *s = get_string(p, at, v);
    int k;

    if (!s)
        return -1;
    k = lookup_name(s, names, n);
    if (k < 0) {
        bad_enum(p, at, what, s, names, n);
        return -1;
    }
    *out = k;
    return 0;
}

static void task_defaults(struct dag_task *t)
{
    t->type = TASK_COMMAND;
    t->run_if = RUN_IF_ALL_SUCCEEDED;
    t->backoff.initial_ms = 1000;
    t->backoff.factor = 2.0;
    t->backoff.max_ms = 300000;
    t->backoff.jitter = 1;
}

/* Fields of one task type only, kept until the type is known. */
struct kind_fields {
    const json_t *command, *duration;
    const json_t *method, *url, *headers, *body, *expect, *follow, *auth, *idempotent;
    const json_t *workflow, *params;
};

static int valid_method(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_alpha(s[i]))
            return 0;
    return 1;
}

static int env_name_ok(const char *s)
{
    if (!*s || is_digit(*s))
        return 0;
    for (; *s; s++)
        if (!is_alpha(*s) && !is_digit(*s) && *s != '_')
            return 0;
    return 1;
}

/* "expectStatus": 200, "2xx", or a list of them. */
static void parse_expect(struct dag__parser *p, const struct dag__path *at, struct dag_http *h,
                         const json_t *v)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;

    if (json_is_array(v) && n == 0) {
        dag__problem(p, at, 0, 0, "'expectStatus' must not be empty");
        return;
    }
    h->expect = xcalloc(n, sizeof(*h->expect));
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        struct dag__path f = {at, NULL, i};
        const struct dag__path *fa = json_is_array(v) ? &f : at;
        struct dag_status_range r = {0, 0};
        if (json_is_integer(e)) {
            r.lo = r.hi = (int)(json_integer_value(e) < 0 || json_integer_value(e) > 999
                                    ? 0
                                    : json_integer_value(e));
        } else if (json_is_string(e)) {
            const char *s = json_string_value(e);
            if (strlen(s) == 3 && s[0] >= '1' && s[0] <= '5' && (s[1] == 'x' || s[1] == 'X') &&
                (s[2] == 'x' || s[2] == 'X')) {
                r.lo = (s[0] - '0') * 100;
                r.hi = r.lo + 99;
            } else if (strlen(s) == 3 && is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2])) {
                r.lo = r.hi = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
            }
        } else {
            type_problem(p, fa, "a status (200), a class (\"2xx\") or a list of them", e);
            continue;
        }
        if (r.lo < 100 || r.hi > 599) {
            char num[32] = "";
            if (json_is_integer(e))
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(e));
            dag__problem(p, fa, 0, 0, "invalid status '%.*s%s' (a status from 100 to 599, or a "
                         "class from \"1xx\" to \"5xx\")",
                         DAG__Q(json_is_string(e) ? json_string_value(e) : num));
            continue;
        }
        h->expect[h->nexpect++] = r;
    }
}

static void parse_auth(struct dag__parser *p, const struct dag__path *at, struct dag_http *h,
                       const json_t *v)
{
    const char *key;
    json_t *val;
    size_t before = p->probs->n + p->probs->dropped;

    if (!json_is_object(v)) {
        type_problem(p, at, "an object", v);
        return;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        struct dag__path f = {at, key, 0};
        char **dst = !strcmp(key, "username")      ? &h->username
                     : !strcmp(key, "usernameEnv") ? &h->username_env
                     : !strcmp(key, "passwordEnv") ? &h->password_env
                     : !strcmp(key, "bearerEnv")   ? &h->bearer_env
                     : !strcmp(key, "header")      ? &h->auth_header
                     : !strcmp(key, "query")       ? &h->auth_query
                     : !strcmp(key, "valueEnv")    ? &h->value_env
                                                   : NULL;
        if (!dst) {
            unknown_field(p, &f, key, auth_fields, COUNT(auth_fields));
            continue;
        }
        get_nonempty_string(p, &f, val, dst);
        if (*dst && dst == &h->auth_header && !valid_header_name(*dst))
            dag__problem(p, &f, 0, 0, "invalid header name '%.*s%s'", DAG__Q(*dst));
        else if (*dst && dst != &h->username && dst != &h->auth_header &&
                 dst != &h->auth_query && !env_name_ok(*dst))
            dag__problem(p, &f, 0, 0, "'%s' must name an environment variable "
                         "([A-Za-z_][A-Za-z0-9_]*), got '%.*s%s'", key, DAG__Q(*dst));
    }
    if (p->probs->n + p->probs->dropped != before)
        return; /* a field was wrong: what else is missing would only repeat it */
    if (h->bearer_env && (h->username || h->username_env || h->password_env) &&
        !h->auth_header && !h->auth_query && !h->value_env)
        dag__problem(p, at, 0, 0, "'auth' is either basic ('username' or 'usernameEnv', and "
                     "'passwordEnv') or bearer ('bearerEnv'), not both");
    else if ((!!h->bearer_env + !!(h->username || h->username_env || h->password_env) +
              !!(h->auth_header || h->auth_query || h->value_env)) > 1 ||
             (h->auth_header && h->auth_query))
        dag__problem(p, at, 0, 0, "'auth' is one of basic ('username' or 'usernameEnv', and "
                     "'passwordEnv'), bearer ('bearerEnv'), a header ('header' and 'valueEnv') "
                     "or a query parameter ('query' and 'valueEnv')");
    else if ((h->auth_header || h->auth_query) && !h->value_env)
        dag__problem(p, at, 0, 0, "'auth' with '%s' needs 'valueEnv' (the variable holding "
                     "its value; a credential is never written in a definition)",
                     h->auth_header ? "header" : "query");
    else if (h->value_env && !h->auth_header && !h->auth_query)
        dag__problem(p, at, 0, 0, "'valueEnv' goes with 'header' or 'query' (where the "
                     "value is sent)");
    else if ((h->username || h->username_env) && !h->password_env)
        dag__problem(p, at, 0, 0, "basic 'auth' needs 'passwordEnv' (the variable holding the "
                     "password; a password is never written in a definition)");
    else if (h->password_env && !h->username && !h->username_env)
        dag__problem(p, at, 0, 0, "basic 'auth' needs 'username' or 'usernameEnv'");
    else if (h->username && h->username_env)
        dag__problem(p, at, 0, 0, "give 'username' or 'usernameEnv', not both");
}

/* The fields of an HTTP request: an http task's, or a webhook's (`url_for`
 * says what needs the url, NULL: it is not needed). */
static void parse_http(struct dag__parser *p, const struct dag__path *at, struct dag_http *h,
                       const struct kind_fields *k, const char *url_for)
{
    h->follow_redirects = 1;
    if (k->method) {
        struct dag__path f = {at, "method", 0};
        const char *m = get_string(p, &f, k->method);
        if (m && !valid_method(m))
            dag__problem(p, &f, 0, 0, "invalid method '%.*s%s' (an HTTP method such as GET "
                         "or POST)", DAG__Q(m));
        else if (m) {
            h->method = xstrdup(m);
            for (char *c = h->method; *c; c++)
                if (*c >= 'a' && *c <= 'z')
                    *c = (char)(*c - 'a' + 'A');
        }
    }
    if (!h->method)
        h->method = xstrdup("GET");
    if (k->url) {
        struct dag__path f = {at, "url", 0};
        get_nonempty_string(p, &f, k->url, &h->url);
        if (h->url && strncasecmp(h->url, "http://", 7) != 0 &&
            strncasecmp(h->url, "https://", 8) != 0 && strncmp(h->url, "{{", 2) != 0) {
            dag__problem(p, &f, 0, 0, "'url' must start with http:// or https://, got "
                         "'%.*s%s'", DAG__Q(h->url));
        } else if (h->url && strncmp(h->url, "{{", 2) != 0) {
            /* The host is written out: a value must not choose where the request
             * (and its credentials) goes. */
            const char *host = strstr(h->url, "://") + 3;
            size_t hlen = strcspn(host, "/?#");
            const char *tpl = strstr(host, "{{");
            if (tpl && (size_t)(tpl - host) < hlen)
                dag__problem(p, &f, 0, 0, "a placeholder in the host of 'url' could send the "
                             "request (and its credentials) elsewhere: put it in the path or "
                             "the query, or make the whole url one placeholder");
        }
    } else if (url_for) {
        dag__problem(p, at, 0, 0, "missing 'url' (required for %s)", url_for);
    }
    if (k->headers) {
        struct dag__path f = {at, "headers", 0};
        parse_kv(p, &f, k->headers, &h->headers, &h->nheaders, KV_HEADERS);
    }
    if (k->body) {
        struct dag__path f = {at, "body", 0};
        if (json_is_string(k->body))
            h->body = xstrdup(json_string_value(k->body));
        else if (json_is_object(k->body) || json_is_array(k->body))
            h->body_json = dump_json(k->body);
        else
            type_problem(p, &f, "a string or a JSON object or array", k->body);
    }
    if (k->expect) {
        struct dag__path f = {at, "expectStatus", 0};
        parse_expect(p, &f, h, k->expect);
    }
    if (!h->nexpect) {
        free(h->expect);
        h->expect = xcalloc(1, sizeof(*h->expect));
        h->expect[0].lo = 200;
        h->expect[0].hi = 299;
        h->nexpect = 1;
    }
    if (k->follow) {
        struct dag__path f = {at, "followRedirects", 0};
        if (!json_is_boolean(k->follow))
            type_problem(p, &f, "a boolean", k->follow);
        else
            h->follow_redirects = json_is_true(k->follow);
    }
    if (k->auth) {
        struct dag__path f = {at, "auth", 0};
        parse_auth(p, &f, h, k->auth);
    }
    if (h->auth_header) {
        /* libcurl would send the header to wherever a redirect points. */
        if (h->follow_redirects && k->follow) {
            struct dag__path f = {at, "followRedirects", 0};
            dag__problem(p, &f, 0, 0, "a task with 'auth.header' does not follow redirects "
                         "(its header would go to wherever a redirect points)");
        }
        h->follow_redirects = 0;
    }
    h->idempotent = !strcmp(h->method, "GET") || !strcmp(h->method, "HEAD") ||
                    !strcmp(h->method, "PUT") || !strcmp(h->method, "DELETE") ||
                    !strcmp(h->method, "OPTIONS");
    if (k->idempotent) {
        struct dag__path f = {at, "idempotent", 0};
        if (!json_is_boolean(k->idempotent))
            type_problem(p, &f, "a boolean", k->idempotent);
        else
            h->idempotent = json_is_true(k->idempotent);
    }
}

static void parse_subflow(struct dag__parser *p, const struct dag__path *at, struct dag_task *t,
                          const struct kind_fields *k)
{
    if (k->workflow) {
        struct dag__path f = {at, "workflow", 0};
        const char *s = get_string(p, &f, k->workflow);
        if (s && !dag_valid_workflow_name(s))
            dag__problem(p, &f, 0, 0, "invalid workflow name '%.*s%s'", DAG__Q(s));
        else if (s)
            t->subflow.workflow = xstrdup(s);
    } else {
        dag__problem(p, at, 0, 0, "missing 'workflow' (required for type 'workflow')");
    }
    if (k->params) {
        struct dag__path f = {at, "params", 0};
        if (!json_is_object(k->params))
            type_problem(p, &f, "an object", k->params);
        else
            t->subflow.params_json = dump_json(k->params);
    }
}

/* A field of another task type: say which type it belongs to. */
static void not_for_type(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                         const char *field, const struct dag_task *t)
{
    struct dag__path f = {at, field, 0};
    if (v)
        dag__problem(p, &f, 0, 0, "'%s' is not allowed for type '%s'", field,
                     dag_task_type_name(t->type));
}

/* Fields that need the task's type, checked once all fields were read. */
static void check_task_kind(struct dag__parser *p, const struct dag__path *at, struct dag_task *t,
                            int type_ok, const struct kind_fields *k)
{
    struct dag__path fc = {at, "command", 0};
    struct dag__path fd = {at, "duration", 0};
    const json_t *command = k->command, *duration = k->duration;

    if (type_ok && t->type == TASK_HTTP) {
        parse_http(p, at, &t->http, k, "type 'http'");
    } else if (type_ok) {
        not_for_type(p, at, k->method, "method", t);
        not_for_type(p, at, k->url, "url", t);
        not_for_type(p, at, k->headers, "headers", t);
        not_for_type(p, at, k->body, "body", t);
        not_for_type(p, at, k->expect, "expectStatus", t);
        not_for_type(p, at, k->follow, "followRedirects", t);
        not_for_type(p, at, k->auth, "auth", t);
        not_for_type(p, at, k->idempotent, "idempotent", t);
    }
    if (type_ok && t->type == TASK_WORKFLOW) {
        parse_subflow(p, at, t, k);
    } else if (type_ok) {
        not_for_type(p, at, k->workflow, "workflow", t);
        not_for_type(p, at, k->params, "params", t);
    }

    if (command) {
        if (type_ok && t->type != TASK_COMMAND)
            dag__problem(p, &fc, 0, 0, "'command' is not allowed for type '%s'",
                         dag_task_type_name(t->type));
        else
            parse_command(p, &fc, t, command);
    } else if (type_ok && t->type == TASK_COMMAND) {
        dag__problem(p, at, 0, 0, "missing 'command' (required for type 'command')");
    }
    if (duration) {
        if (type_ok && t->type != TASK_SLEEP)
            dag__problem(p, &fd, 0, 0, "'duration' is not allowed for type '%s'",
                         dag_task_type_name(t->type));
        else
            get_duration(p, &fd, duration, &t->sleep_ms);
    } else if (type_ok && t->type == TASK_SLEEP) {
        dag__problem(p, at, 0, 0, "missing 'duration' (required for type 'sleep')");
    }
}

static void parse_task(struct dag__parser *p, const struct dag__path *at, size_t ti,
                       const json_t *obj)
{
    struct dag_task *t = &p->wf->tasks[ti];
    struct kind_fields kf = {0};
    const json_t *for_each = NULL;
    int seen_name = 0, type_ok = 1;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v)
    {
        struct dag__path f = {at, key, 0};
        int k;

        if (!strcmp(key, "name")) {
            const char *s = get_string(p, &f, v);
            seen_name = 1;
            if (!s)
                continue;
            /* Kept even if invalid, so dependencies on it are not also reported. */
            t->name = xstrdup(s);
            if (!valid_task_name(s))
                dag__problem(p, &f, 0, 0,
                             "invalid task name '%.*s%s' (must match "
                             "[A-Za-z0-9][A-Za-z0-9._-]{0,127})",
                             DAG__Q(s));
        } else if (!strcmp(key, "dependsOn")) {
            parse_depends_on(p, &f, ti, v);
        } else if (!strcmp(key, "type")) {
            if (get_enum(p, &f, v, "type", task_type_names, COUNT(task_type_names), &k) < 0)
                type_ok = 0;
            else
                t->type = (enum task_type)k;
        } else if (!strcmp(key, "command")) {
            kf.command = v;
        } else if (!strcmp(key, "duration")) {
            kf.duration = v;
        } else if (!strcmp(key, "method")) {
            kf.method = v;
        } else if (!strcmp(key, "url")) {
            kf.url = v;
        } else if (!strcmp(key, "headers")) {
            kf.headers = v;
        } else if (!strcmp(key, "body")) {
            kf.body = v;
        } else if (!strcmp(key, "expectStatus")) {
            kf.expect = v;
        } else if (!strcmp(key, "followRedirects")) {
            kf.follow = v;
        } else if (!strcmp(key, "auth")) {
            kf.auth = v;
        } else if (!strcmp(key, "idempotent")) {
            kf.idempotent = v;
        } else if (!strcmp(key, "workflow")) {
            kf.workflow = v;
        } else if (!strcmp(key, "params")) {
            kf.params = v;
        } else if (!strcmp(key, "forEach")) {
            for_each = v;
        } else if (!strcmp(key, "maxParallel")) {
            get_int_range(p, &f, v, 1, 100000, &t->max_parallel);
        } else if (!strcmp(key, "env")) {
            parse_kv(p, &f, v, &t->env, &t->nenv, KV_ENV);
        } else if (!strcmp(key, "workingDir")) {
            get_nonempty_string(p, &f, v, &t->working_dir);
        } else if (!strcmp(key, "timeout")) {
            get_timeout(p, &f, v, &t->timeout_ms);
        } else if (!strcmp(key, "retries")) {
            get_int_range(p, &f, v, 0, 100, &t->retries);
        } else if (!strcmp(key, "retryBackoff")) {
            parse_backoff(p, &f, t, v);
        } else if (!strcmp(key, "runIf")) {
            if (get_enum(p, &f, v, "runIf", run_if_names, COUNT(run_if_names), &k) == 0)
                t->run_if = (enum run_if)k;
        } else if (!strcmp(key, "when")) {
            /* Checked with the templates, once the graph is known. */
            get_nonempty_string(p, &f, v, &t->when);
        } else {
            unknown_field(p, &f, key, task_fields, COUNT(task_fields));
        }
    }
    if (!seen_name)
        dag__problem(p, at, 0, 0, "missing required field 'name'");
    check_task_kind(p, at, t, type_ok, &kf);
    if (for_each) {
        struct dag__path f = {at, "forEach", 0};
        if (json_is_array(for_each)) {
            if (json_array_size(for_each) > DAG_MAX_ITEMS)
                dag__problem(p, &f, 0, 0, "'forEach' has %zu items, more than the limit of %d",
                             json_array_size(for_each), DAG_MAX_ITEMS);
            else
                t->for_each_json = dump_json(for_each);
        } else if (json_is_string(for_each)) {
            /* Checked with the templates: one placeholder naming a list. */
            get_nonempty_string(p, &f, for_each, &t->for_each);
        } else {
            type_problem(p, &f, "a list, or a placeholder naming one (\"{{ tasks.list.output."
                         "files }}\")", for_each);
        }
    } else if (t->max_parallel) {
        struct dag__path f = {at, "maxParallel", 0};
        dag__problem(p, &f, 0, 0, "'maxParallel' needs 'forEach'");
    }
}

static void parse_tasks(struct dag__parser *p, const struct dag__path *at, const json_t *v)
{
    struct workflow *wf = p->wf;
    size_t i, n;
    json_t *e;

    if (!json_is_array(v)) {
        type_problem(p, at, "an array of tasks", v);
        return;
    }
    n = json_array_size(v);
    if (n == 0) {
        dag__problem(p, at, 0, 0, "workflow has no tasks");
        return;
    }
    if (n > DAG_MAX_TASKS) {
        dag__problem(p, at, 0, 0, "workflow has %zu tasks, more than the limit of %lu", n,
                     (unsigned long)DAG_MAX_TASKS);
        return;
    }
    wf->tasks = xcalloc(n, sizeof(*wf->tasks));
    wf->ntasks = n;
    p->refs = xcalloc(n, sizeof(*p->refs));
    p->nrefs = n;
    for (i = 0; i < n; i++)
        task_defaults(&wf->tasks[i]);
    json_array_foreach((json_t *)v, i, e)
    {
        struct dag__path f = {at, NULL, i};
        if (!json_is_object(e))
            dag__problem(p, &f, 0, 0, "task must be an object, got %s", json_kind(e));
        else
            parse_task(p, &f, i, e);
    }
}

static int infer_param_type(const json_t *v, enum param_type *out)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        *out = PARAM_STRING;
        return 0;
    case JSON_INTEGER:
    case JSON_REAL:
        *out = PARAM_NUMBER;
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        *out = PARAM_BOOLEAN;
        return 0;
    case JSON_OBJECT:
        *out = PARAM_OBJECT;
        return 0;
    case JSON_ARRAY:
    case JSON_NULL:
        break;
    }
    return -1;
}

static int is_param_spec(const json_t *v)
{
    size_t i;

    if (!json_is_object(v))
        return 0;
    for (i = 0; i < COUNT(param_fields); i++) {
        if (json_object_get(v, param_fields[i]))
            return 1;
    }
    return 0;
}

/* Compact JSON text of a value, as a heap string from our allocator. */

static void parse_param_spec(struct dag__parser *p, const struct dag__path *at,
                             struct dag_param *pm, const json_t *spec)
{
    const json_t *def = NULL;
    int type_given = 0, type_ok = 1, required = 0;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)spec, key, v)
    {
        struct dag__path f = {at, key, 0};
        int k;

        if (!strcmp(key, "type")) {
            type_given = 1;
            if (get_enum(p, &f, v, "param type", param_type_names, COUNT(param_type_names), &k) < 0)
                type_ok = 0;
            else
                pm->type = (enum param_type)k;
        } else if (!strcmp(key, "default")) {
            def = v;
        } else if (!strcmp(key, "required")) {
            if (!json_is_boolean(v))
                type_problem(p, &f, "a boolean", v);
            else
                required = json_is_true(v);
        } else if (!strcmp(key, "description")) {
            const char *s = get_string(p, &f, v);
            if (s)
                pm->description = xstrdup(s);
        } else {
            unknown_field(p, &f, key, param_fields, COUNT(param_fields));
        }
    }
    if (!def) {
        pm->required = required;
        return;
    }
    {
        struct dag__path f = {at, "default", 0};
        enum param_type dt;

        if (infer_param_type(def, &dt) < 0) {
            dag__problem(p, &f, 0, 0,
                         "'default' must be a string, number, boolean or object, got %s",
                         json_kind(def));
        } else if (type_given && type_ok && dt != pm->type) {
            dag__problem(p, &f, 0, 0, "'default' must be %s (the param's type), got %s",
                         param_type_articles[pm->type], json_kind(def));
        } else if (type_ok) {
            pm->type = dt;
            pm->default_json = dump_json(def);
        }
    }
    if (required) {
        struct dag__path f = {at, "required", 0};
        dag__problem(p, &f, 0, 0, "param '%.*s%s' has a default and cannot be required",
                     DAG__Q(pm->name));
    }
}

static void parse_params(struct dag__parser *p, const struct dag__path *at, const json_t *v)
{
    struct workflow *wf = p->wf;
    const char *key;
    json_t *val;

    if (!json_is_object(v)) {
        type_problem(p, at, "an object", v);
        p->params_broken = 1;
        return;
    }
    wf->params = xcalloc(json_object_size(v), sizeof(*wf->params));
    json_object_foreach((json_t *)v, key, val)
    {
        struct dag__path f = {at, key, 0};
        struct dag_param *pm = &wf->params[wf->nparams++];

        pm->name = xstrdup(key);
        pm->type = PARAM_STRING;
        if (!valid_identifier(key, 64))
            dag__problem(p, &f, 0, 0,
                         "invalid param name '%.*s%s' (must match [A-Za-z_][A-Za-z0-9_]{0,63})",
                         DAG__Q(key));
        if (is_param_spec(val)) {
            parse_param_spec(p, &f, pm, val);
        } else if (infer_param_type(val, &pm->type) < 0) {
            dag__problem(p, &f, 0, 0,
                         "param '%.*s%s' must be a spec object or a default value "
                         "(string, number, boolean or object), got %s",
                         DAG__Q(key), json_kind(val));
        } else {
            pm->default_json = dump_json(val);
        }
    }
}

/* ---- schedules ---- */

/* [a-z0-9][a-z0-9._-]{0,63} */
static int valid_schedule_name(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || is_digit(c);
        if (i > 0)
            ok = ok || c == '.' || c == '_' || c == '-';
        if (!ok || i >= 64)
            return 0;
    }
    return i > 0;
}

/*
 * The zone names listed in tzdata.zi (zones "Z NAME ..." and links
 * "L TARGET NAME"), for "did you mean". Read only when a zone is unknown,
 * so the happy path does no I/O beyond tz_load(). Returns the names as
 * pointers into *out_text (both freed by the caller), or NULL when the
 * file cannot be read.
 */
static const char **zone_names(char **out_text, size_t *out_n)
{
    const char *dir = getenv("ORCH_TZDIR");
    const size_t max = 1024 * 1024; /* tzdata.zi is about 110 KiB */
    const char **names = NULL;
    size_t len = 0, n = 0, alloc = 0, got;
    char path[4096];
    char *text, *line;
    FILE *f;

    *out_text = NULL;
    *out_n = 0;
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    snprintf(path, sizeof(path), "%s/tzdata.zi", dir);
    f = fopen(path, "rbe");
    if (!f)
        return NULL;
    text = xmalloc(max + 1);
    while (len < max && (got = fread(text + len, 1, max - len, f)) > 0)
        len += got;
    fclose(f);
    text[len] = '\0';
    for (line = text; line && *line;) {
        char *end = strchr(line, '\n');
        char *name = NULL;

        if (end)
            *end = '\0';
        if (line[0] == 'Z' && line[1] == ' ') {
            name = line + 2;
        } else if (line[0] == 'L' && line[1] == ' ') {
            name = strchr(line + 2, ' ');
            name = name ? name + 1 : NULL;
        }
        if (name) {
            name[strcspn(name, " \t\r")] = '\0';
            if (*name) {
                XGROW(names, alloc, n + 1);
                names[n++] = name;
            }
        }
        line = end ? end + 1 : NULL;
    }
    *out_text = text;
    *out_n = n;
    return names;
}

/* Check a schedule's "timezone" with tz_load(). */
static void check_zone(struct dag__parser *p, const struct dag__path *at, const char *name)
{
    struct err err = ERR_INIT;
    const struct tz *tz;
    const char **names = NULL;
    const char *sug = NULL;
    char *text = NULL;
    size_t n = 0;
    int rc;

    rc = tz_load(name, &tz, &err);
    if (rc == 0)
        return;
    if (rc != ERR_NOT_FOUND) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return;
    }
    if (!dag__problems_full(p)) {
        names = zone_names(&text, &n);
        sug = dag__suggest(p, name, names, n, NULL);
    }
    if (sug)
        dag__problem(p, at, 0, 0, "unknown time zone '%.*s%s' (did you mean '%s'?)",
                     DAG__Q(name), sug);
    else
        dag__problem(p, at, 0, 0, "unknown time zone '%.*s%s'", DAG__Q(name));
    free(names);
    free(text);
}

int dag_suggest_zone(const char *name, char *out, size_t outlen)
{
    char *text = NULL;
    size_t n = 0;
    const char **names = zone_names(&text, &n);
    const char *sug = names ? dag_suggest(name, names, n) : NULL;
    int rc = -1;

    if (sug && outlen) {
        snprintf(out, outlen, "%s", sug);
        rc = 0;
    }
    free(names);
    free(text);
    return rc;
}

static void parse_dst(struct dag__parser *p, const struct dag__path *at, struct cron_dst *dst,
                      const json_t *v)
{
    const char *key;
    json_t *val;

    if (!json_is_object(v)) {
        type_problem(p, at, "an object", v);
        return;
    }
    json_object_foreach((json_t *)v, key, val)
    {
        struct dag__path f = {at, key, 0};
        int k;

        if (!strcmp(key, "skipped")) {
            if (get_enum(p, &f, val, "dst.skipped", dst_skipped_names, COUNT(dst_skipped_names),
                         &k) == 0)
                dst->skipped = (enum cron_dst_skipped)k;
        } else if (!strcmp(key, "repeated")) {
            if (get_enum(p, &f, val, "dst.repeated", dst_repeated_names,
                         COUNT(dst_repeated_names), &k) == 0)
                dst->repeated = (enum cron_dst_repeated)k;
        } else {
            unknown_field(p, &f, key, dst_fields, COUNT(dst_fields));
        }
    }
}

static const struct dag_param *find_param(const struct workflow *wf, const char *name)
{
    size_t i;

    for (i = 0; i < wf->nparams; i++) {
        if (!strcmp(wf->params[i].name, name))
            return &wf->params[i];
    }
    return NULL;
}

static int param_value_ok(enum param_type t, const json_t *v)
{
    switch (t) {
    case PARAM_STRING:
        return json_is_string(v);
    case PARAM_NUMBER:
        return json_is_number(v);
    case PARAM_BOOLEAN:
        return json_is_boolean(v);
    case PARAM_OBJECT:
        return json_is_object(v);
    }
    return 0;
}

/*
 * A schedule's params: each must be a declared workflow param of the
 * declared type, and every required param must be given (an execution
 * started without it would be refused each time). `decl_ok` is 0 when the
 * workflow's own "params" was broken, which would make every name unknown.
 */
static void parse_schedule_params(struct dag__parser *p, const struct dag__path *at,
                                  const struct dag__path *sched_at, struct dag_schedule *s,
                                  const json_t *v, int decl_ok)
{
    const struct workflow *wf = p->wf;
    const char *key;
    json_t *val;
    size_t i;

    if (v && !json_is_object(v)) {
        type_problem(p, at, "an object", v);
        return;
    }
    if (!decl_ok)
        return;
    if (v) {
        json_object_foreach((json_t *)v, key, val)
        {
            struct dag__path f = {at, key, 0};
            const struct dag_param *pm = find_param(wf, key);

            if (!pm) {
                const char **cands = xcalloc(wf->nparams + 1, sizeof(*cands));
                const char *sug = NULL;
                for (i = 0; i < wf->nparams; i++)
                    cands[i] = wf->params[i].name;
                if (!dag__problems_full(p))
                    sug = dag__suggest(p, key, cands, wf->nparams, NULL);
                if (sug)
                    dag__problem(p, &f, 0, 0, "unknown param '%.*s%s' (did you mean '%s'?)",
                                 DAG__Q(key), sug);
                else if (wf->nparams == 0)
                    dag__problem(p, &f, 0, 0,
                                 "unknown param '%.*s%s' (the workflow declares no params)",
                                 DAG__Q(key));
                else
                    dag__problem(p, &f, 0, 0,
                                 "unknown param '%.*s%s' (not declared in the workflow's "
                                 "'params')",
                                 DAG__Q(key));
                free(cands);
            } else if (!param_value_ok(pm->type, val)) {
                dag__problem(p, &f, 0, 0, "param '%.*s%s' must be %s, got %s", DAG__Q(key),
                             param_type_articles[pm->type], json_kind(val));
            }
        }
        s->params_json = dump_json(v);
    }
    for (i = 0; i < wf->nparams; i++) {
        const struct dag_param *pm = &wf->params[i];
        if (pm->required && !(v && json_object_get(v, pm->name)))
            dag__problem(p, v ? at : sched_at, 0, 0,
                         "missing required param '%.*s%s' (the workflow requires it and a "
                         "schedule has no caller to give it)",
                         DAG__Q(pm->name));
    }
}

/* "cron" or "every", once the schedule's fields were read. */
static void parse_schedule_when(struct dag__parser *p, const struct dag__path *at,
                                struct dag_schedule *s, const json_t *cron, const json_t *every)
{
    struct dag__path fc = {at, "cron", 0};
    struct dag__path fe = {at, "every", 0};
    struct err err = ERR_INIT;

    if (cron && every) {
        dag__problem(p, &fe, 0, 0, "'cron' and 'every' cannot both be given (use one)");
        return;
    }
    if (!cron && !every) {
        dag__problem(p, at, 0, 0, "missing 'cron' or 'every' (exactly one is required)");
        return;
    }
    if (cron) {
        const char *text = get_string(p, &fc, cron);
        if (!text)
            return;
        s->is_cron = 1;
        if (cron_parse(text, &s->cron, &err) < 0) {
            dag__problem(p, &fc, 0, 0, "%s", err.msg);
            return;
        }
        s->cron_text = xstrdup(text);
        return;
    }
    if (get_duration(p, &fe, every, &s->every_ms) < 0)
        return;
    if (s->every_ms < 1000)
        dag__problem(p, &fe, 0, 0, "'every' must be at least 1s");
    else if (s->every_ms % 1000)
        dag__problem(p, &fe, 0, 0, "'every' must be a whole number of seconds");
    else if (json_is_string(every))
        s->every_text = xstrdup(json_string_value(every));
}

static void parse_schedule(struct dag__parser *p, const struct dag__path *at, size_t si,
                           const json_t *obj, int decl_ok)
{
    struct dag_schedule *s = &p->wf->schedules[si];
    const json_t *cron = NULL, *every = NULL, *params = NULL;
    const char *key;
    json_t *v;
    int k;

    json_object_foreach((json_t *)obj, key, v)
    {
        struct dag__path f = {at, key, 0};

        if (!strcmp(key, "name")) {
            const char *name = get_string(p, &f, v);
            if (!name)
                continue;
            if (!valid_schedule_name(name)) {
                dag__problem(p, &f, 0, 0,
                             "invalid schedule name '%.*s%s' (must match "
                             "[a-z0-9][a-z0-9._-]{0,63})",
                             DAG__Q(name));
                continue;
            }
            s->name = xstrdup(name);
        } else if (!strcmp(key, "cron")) {
            cron = v;
        } else if (!strcmp(key, "every")) {
            every = v;
        } else if (!strcmp(key, "timezone")) {
            const char *zone = get_string(p, &f, v);
            if (!zone)
                continue;
            check_zone(p, &f, zone);
            s->timezone = xstrdup(zone);
        } else if (!strcmp(key, "params")) {
            params = v;
        } else if (!strcmp(key, "enabled")) {
            if (!json_is_boolean(v))
                type_problem(p, &f, "a boolean", v);
            else
                s->enabled = json_is_true(v);
        } else if (!strcmp(key, "dst")) {
            parse_dst(p, &f, &s->dst, v);
        } else if (!strcmp(key, "catchup")) {
            if (get_enum(p, &f, v, "catchup", catchup_names, COUNT(catchup_names), &k) == 0)
                s->catchup = (enum dag_catchup)k;
        } else if (!strcmp(key, "maxCatchup")) {
            get_int_range(p, &f, v, 1, 10000, &s->max_catchup);
        } else if (!strcmp(key, "overlap")) {
            if (get_enum(p, &f, v, "overlap", overlap_names, COUNT(overlap_names), &k) == 0)
                s->overlap = (enum dag_overlap)k;
        } else {
            unknown_field(p, &f, key, schedule_fields, COUNT(schedule_fields));
        }
    }
    parse_schedule_when(p, at, s, cron, every);
    {
        struct dag__path f = {at, "params", 0};
        parse_schedule_params(p, &f, at, s, params, decl_ok);
    }
}

/* Names must be unique, default names ("schedule-N") included. */
static void check_schedule_names(struct dag__parser *p, const struct dag__path *at,
                                 const json_t *arr)
{
    struct workflow *wf = p->wf;
    size_t i, j;

    for (i = 1; i < wf->nschedules; i++) {
        for (j = 0; j < i; j++) {
            if (strcmp(wf->schedules[i].name, wf->schedules[j].name))
                continue;
            {
                struct dag__path fi = {at, NULL, i};
                struct dag__path fn = {&fi, "name", 0};
                const json_t *e = json_array_get(arr, i);
                int given = json_is_object(e) && json_object_get(e, "name");
                dag__problem(p, given ? &fn : &fi, 0, 0,
                             "duplicate schedule name '%s' (also the name of schedules[%zu])",
                             wf->schedules[i].name, j);
            }
            break;
        }
    }
}

static void parse_schedules(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                            int decl_ok)
{
    struct workflow *wf = p->wf;
    size_t i, n;
    json_t *e;

    if (!json_is_array(v)) {
        type_problem(p, at, "an array of schedules", v);
        return;
    }
    n = json_array_size(v);
    if (n > DAG_MAX_SCHEDULES) {
        dag__problem(p, at, 0, 0, "workflow has %zu schedules, more than the limit of %lu", n,
                     (unsigned long)DAG_MAX_SCHEDULES);
        return;
    }
    if (n == 0)
        return;
    wf->schedules = xcalloc(n, sizeof(*wf->schedules));
    wf->nschedules = n;
    for (i = 0; i < n; i++) {
        struct dag_schedule *s = &wf->schedules[i];
        s->enabled = 1;
        s->catchup = DAG_CATCHUP_LATEST;
        s->max_catchup = 100;
        s->overlap = DAG_OVERLAP_SKIP;
        s->dst.skipped = CRON_SKIPPED_SHIFT;
        s->dst.repeated = CRON_REPEATED_FIRST;
    }
    json_array_foreach((json_t *)v, i, e)
    {
        struct dag__path f = {at, NULL, i};
        struct dag_schedule *s = &wf->schedules[i];

        if (!json_is_object(e))
            dag__problem(p, &f, 0, 0, "schedule must be an object, got %s", json_kind(e));
        else
            parse_schedule(p, &f, i, e, decl_ok);
        if (!s->name) {
            char def[32];
            snprintf(def, sizeof(def), "schedule-%zu", i);
            s->name = xstrdup(def);
        }
        if (!s->timezone)
            s->timezone = xstrdup("UTC");
    }
    check_schedule_names(p, at, v);
}

/* "on": an event name or a list of them. */
static void parse_notify_on(struct dag__parser *p, const struct dag__path *at, const json_t *v,
                            unsigned *on)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;

    if (!json_is_array(v) && !json_is_string(v)) {
        type_problem(p, at, "an event or a list of events", v);
        return;
    }
    if (n == 0) {
        dag__problem(p, at, 0, 0, "'on' must not be empty (any of failed, timed_out, "
                     "succeeded, cancelled, stuck)");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        struct dag__path f = {at, NULL, i};
        const struct dag__path *fa = json_is_array(v) ? &f : at;
        const char *s = get_string(p, fa, e);
        unsigned bit = s ? dag_notify_event(s) : 0;
        if (s && !bit)
            dag__problem(p, fa, 0, 0, "unknown event '%.*s%s' (one of failed, timed_out, "
                         "succeeded, cancelled, stuck)", DAG__Q(s));
        *on |= bit;
    }
}

/* A template of a webhook's body: a string, or the strings of a JSON value. */
static void check_notify_body(struct dag__parser *p, const struct dag__path *at, const json_t *v)
{
    char msg[256];

    if (json_is_string(v)) {
        if (dag_notify_check(json_string_value(v), msg, sizeof(msg)))
            dag__problem(p, at, 0, 0, "%s", msg);
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            struct dag__path f = {at, NULL, i};
            check_notify_body(p, &f, json_array_get(v, i));
        }
    } else if (json_is_object(v)) {
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val)
        {
            struct dag__path f = {at, key, 0};
            check_notify_body(p, &f, val);
        }
    }
}

static void parse_webhook(struct dag__parser *p, const struct dag__path *at, struct dag_notify *n,
                          const json_t *v)
{
    struct kind_fields k;
    const json_t *url_env = NULL;
    const char *key;
    json_t *val;

    if (!json_is_object(v)) {
        type_problem(p, at, "an object", v);
        return;
    }
    memset(&k, 0, sizeof(k));
    json_object_foreach((json_t *)v, key, val)
    {
        struct dag__path f = {at, key, 0};
        if (!strcmp(key, "url"))
            k.url = val;
        else if (!strcmp(key, "urlEnv"))
            url_env = val;
        else if (!strcmp(key, "method"))
            k.method = val;
        else if (!strcmp(key, "headers"))
            k.headers = val;
        else if (!strcmp(key, "auth"))
            k.auth = val;
        else if (!strcmp(key, "body"))
            k.body = val;
        else
            unknown_field(p, &f, key, webhook_fields, COUNT(webhook_fields));
    }
    if (!k.method)
        n->hook.method = xstrdup("POST");
    parse_http(p, at, &n->hook, &k, url_env ? NULL : "a webhook, or 'urlEnv'");
    if (url_env) {
        struct dag__path f = {at, "urlEnv", 0};
        get_nonempty_string(p, &f, url_env, &n->url_env);
        if (k.url)
            dag__problem(p, &f, 0, 0, "give 'url' or 'urlEnv', not both");
        else if (n->url_env && !env_name_ok(n->url_env))
            dag__problem(p, &f, 0, 0, "'urlEnv' must name an environment variable "
                         "([A-Za-z_][A-Za-z0-9_]*), got '%.*s%s'", DAG__Q(n->url_env));
    }
    /* A webhook is sent as written: its url and headers take no placeholders. */
    if (n->hook.url && strstr(n->hook.url, "{{")) {
        struct dag__path f = {at, "url", 0};
        dag__problem(p, &f, 0, 0, "a webhook's url takes no placeholders (its body does)");
    }
    for (size_t i = 0; i < n->hook.nheaders; i++) {
        struct dag__path hdr = {at, "headers", 0};
        struct dag__path f = {&hdr, n->hook.headers[i].key, 0};
        if (strstr(n->hook.headers[i].value, "{{"))
            dag__problem(p, &f, 0, 0, "a webhook's headers take no placeholders (its body does)");
    }
    if (k.body) {
        struct dag__path f = {at, "body", 0};
        check_notify_body(p, &f, k.body);
    }
}

/* "notify": a list of rules {"on": [...], "webhook": {...}}. */
static void parse_notify(struct dag__parser *p, const struct dag__path *at, const json_t *v)
{
    struct workflow *wf = p->wf;

    if (!json_is_array(v)) {
        type_problem(p, at, "a list of rules ({\"on\": [\"failed\"], \"webhook\": {\"url\": "
                     "...}})", v);
        return;
    }
    wf->notify = xcalloc(json_array_size(v) ? json_array_size(v) : 1, sizeof(*wf->notify));
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *r = json_array_get(v, i);
        struct dag__path rule = {at, NULL, i};
        struct dag_notify *n = &wf->notify[wf->nnotify++];
        const json_t *on = NULL, *hook = NULL;
        const char *key;
        json_t *val;
        if (!json_is_object(r)) {
            type_problem(p, &rule, "an object", r);
            continue;
        }
        json_object_foreach((json_t *)r, key, val)
        {
            struct dag__path f = {&rule, key, 0};
            if (!strcmp(key, "on"))
                on = val;
            else if (!strcmp(key, "webhook"))
                hook = val;
            else
                unknown_field(p, &f, key, notify_fields, COUNT(notify_fields));
        }
        if (on) {
            struct dag__path f = {&rule, "on", 0};
            parse_notify_on(p, &f, on, &n->on);
        } else {
            dag__problem(p, &rule, 0, 0, "missing 'on' (any of failed, timed_out, succeeded, "
                         "cancelled, stuck)");
        }
        if (hook) {
            struct dag__path f = {&rule, "webhook", 0};
            parse_webhook(p, &f, n, hook);
        } else {
            dag__problem(p, &rule, 0, 0, "missing 'webhook' ({\"url\": ...})");
        }
    }
}

static void parse_workflow(struct dag__parser *p, const json_t *root)
{
    struct workflow *wf = p->wf;
    int seen_name = 0, seen_tasks = 0;
    const json_t *schedules = NULL, *params = NULL;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)root, key, v)
    {
        struct dag__path f = {NULL, key, 0};

        if (!strcmp(key, "name")) {
            const char *s = get_string(p, &f, v);
            seen_name = 1;
            if (!s)
                continue;
            wf->name = xstrdup(s);
            if (!dag_valid_workflow_name(s))
                dag__problem(p, &f, 0, 0,
                             "invalid workflow name '%.*s%s' (must match "
                             "[a-z0-9][a-z0-9._-]{0,127}: lowercase letters, digits, '.', '_' "
                             "and '-', starting with a letter or digit, at most 128 characters)",
                             DAG__Q(s));
        } else if (!strcmp(key, "description")) {
            const char *s = get_string(p, &f, v);
            if (s)
                wf->description = xstrdup(s);
        } else if (!strcmp(key, "params")) {
            params = v;
            parse_params(p, &f, v);
        } else if (!strcmp(key, "schedules")) {
            schedules = v; /* after the loop: its params refer to the workflow's */
        } else if (!strcmp(key, "tasks")) {
            seen_tasks = 1;
            parse_tasks(p, &f, v);
        } else if (!strcmp(key, "timeout")) {
            get_timeout(p, &f, v, &wf->timeout_ms);
        } else if (!strcmp(key, "concurrency")) {
            get_int_range(p, &f, v, 1, INT_MAX, &wf->concurrency);
        } else if (!strcmp(key, "env")) {
            parse_kv(p, &f, v, &wf->env, &wf->nenv, KV_ENV);
        } else if (!strcmp(key, "retention")) {
            get_positive_duration(p, &f, v, "retention", &wf->retention_ms);
        } else if (!strcmp(key, "maxQueued")) {
            get_positive_duration(p, &f, v, "maxQueued", &wf->max_queued_ms);
        } else if (!strcmp(key, "maxRunning")) {
            get_positive_duration(p, &f, v, "maxRunning", &wf->max_running_ms);
        } else if (!strcmp(key, "outputs")) {
            /* An object of templates: checked with the templates. */
            size_t n = 0;
            struct dag_kv *kv = NULL;
            parse_kv(p, &f, v, &kv, &n, KV_OUTPUTS);
            if (kv && n == json_object_size(v))
                wf->outputs_json = dump_json(v);
            for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
            }
            free(kv);
        } else if (!strcmp(key, "notify")) {
            parse_notify(p, &f, v);
        } else if (!strcmp(key, "stuckPolicy")) {
            int k;
            if (get_enum(p, &f, v, "stuckPolicy", stuck_policy_names,
                         COUNT(stuck_policy_names), &k) == 0)
                wf->stuck_fail = k == 1;
        } else {
            unknown_field(p, &f, key, workflow_fields, COUNT(workflow_fields));
        }
    }
    if (!seen_name)
        dag__problem(p, NULL, 0, 0, "missing required field 'name'");
    if (!seen_tasks)
        dag__problem(p, NULL, 0, 0, "missing required field 'tasks'");
    for (size_t i = 0; wf->name && i < wf->ntasks; i++) {
        /* After the loop: "name" may come after "tasks". */
        const char *callee = wf->tasks[i].subflow.workflow;
        if (callee && !strcmp(callee, wf->name)) {
            struct dag__path tasks = {NULL, "tasks", 0};
            struct dag__path task = {&tasks, NULL, i};
            struct dag__path f = {&task, "workflow", 0};
            dag__problem(p, &f, 0, 0, "workflow '%.*s%s' cannot run itself (recursion)",
                         DAG__Q(callee));
        }
    }
    if (schedules) {
        struct dag__path f = {NULL, "schedules", 0};
        parse_schedules(p, &f, schedules, !params || json_is_object(params));
    }
}

static void too_big(struct dag__parser *p, size_t len)
{
    const size_t mib = 1024 * 1024;

    if (DAG_MAX_BYTES % mib == 0)
        dag__problem(p, NULL, 0, 0, "definition is %zu bytes, larger than the limit of %zu MiB",
                     len, (size_t)DAG_MAX_BYTES / mib);
    else
        dag__problem(p, NULL, 0, 0, "definition is %zu bytes, larger than the limit of %zu bytes",
                     len, (size_t)DAG_MAX_BYTES);
}

int dag_parse(const char *json, size_t len, struct workflow **out, struct dag_problems *probs)
{
    struct dag_problems local = DAG_PROBLEMS_INIT;
    struct dag__parser p;
    json_error_t jerr;
    json_t *root = NULL;
    size_t i;
    int ret;

    if (!out || (!json && len))
        BUG("dag_parse: bad arguments");
    *out = NULL;
    memset(&p, 0, sizeof(p));
    p.probs = probs ? probs : &local;
    p.suggest_budget = DAG__SUGGEST_BUDGET;

    if (len > DAG_MAX_BYTES) {
        too_big(&p, len);
        ret = ERR_TOO_BIG;
        goto out;
    }
    root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        dag__problem(&p, NULL, jerr.line, jerr.column, "invalid JSON at line %d column %d: %s",
                     jerr.line, jerr.column, jerr.text);
        ret = ERR_INVALID;
        goto out;
    }
    if (!json_is_object(root)) {
        dag__problem(&p, NULL, 0, 0, "definition must be a JSON object, got %s", json_kind(root));
        ret = ERR_INVALID;
        goto out;
    }
    p.wf = xcalloc(1, sizeof(*p.wf));
    parse_workflow(&p, root);
    dag__check_credentials(&p);
    if (p.wf->ntasks)
        dag__check_graph(&p);
    /* Also when the passes before found problems, so that one run reports
     * them all; it keeps quiet about what those problems made unknowable. */
    if (p.wf->ntasks)
        dag__check_templates(&p);
    if (p.nproblems) {
        ret = ERR_INVALID;
        goto out;
    }
    *out = p.wf;
    p.wf = NULL;
    ret = 0;
out:
    for (i = 0; i < p.nrefs; i++)
        free(p.refs[i].refs);
    free(p.refs);
    workflow_free(p.wf);
    json_decref(root);
    dag_problems_release(&local);
    return ret;
}
