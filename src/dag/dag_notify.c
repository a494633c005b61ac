/*
 * dag_notify.c - the events a notification rule names, and the bodies of
 * notifications rendered from their templates (dag.h).
 *
 * A notification template is not a task template (template.h): it sees the
 * execution as it ended, not the outputs of tasks, so it has its own small
 * set of names, all checked when the definition is parsed. Pure: no I/O, no
 * global state.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag.h"

#include "base/banned.h"

/* Bounds on what one body carries, whatever the execution holds. */
#define NOTIFY_MAX_FAILED 20   /* failed tasks listed */
#define NOTIFY_MAX_ERROR  1000 /* bytes of each error text */

static const char *const event_names[DAG_NOTIFY_EVENTS] = {"failed", "timed_out", "succeeded",
                                                           "cancelled", "stuck"};

const char *dag_notify_event_name(unsigned bit)
{
    for (unsigned i = 0; i < DAG_NOTIFY_EVENTS; i++)
        if (bit == 1u << i)
            return event_names[i];
    return "unknown";
}

unsigned dag_notify_event(const char *name)
{
    for (unsigned i = 0; i < DAG_NOTIFY_EVENTS; i++)
        if (!strcmp(name, event_names[i]))
            return 1u << i;
    return 0;
}

enum var { V_EXEC_ID, V_WORKFLOW, V_STATUS, V_EVENT, V_ERROR, V_LINK, V_FAILED, V_COUNT };
static const char *const var_names[V_COUNT] = {"execution.id", "workflow", "status",     "event",
                                               "error",        "link",     "failedTasks"};

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * The placeholder starting at s[0] ("{{"): its variable in *out_var (-1 if
 * the name is unknown; the name in *name, *nlen), and its length; 0 if it is
 * not closed.
 */
static size_t placeholder(const char *s, int *out_var, const char **name, size_t *nlen)
{
    size_t i = 2, start;
    const char *close;

    while (is_blank(s[i]))
        i++;
    start = i;
    while (s[i] && !is_blank(s[i]) && s[i] != '}')
        i++;
    *name = s + start;
    *nlen = i - start;
    while (is_blank(s[i]))
        i++;
    close = s + i;
    if (close[0] != '}' || close[1] != '}')
        return 0;
    *out_var = -1;
    for (int v = 0; v < V_COUNT; v++)
        if (strlen(var_names[v]) == *nlen && !strncmp(var_names[v], *name, *nlen))
            *out_var = v;
    return i + 2;
}

int dag_notify_check(const char *tpl, char *msg, size_t len)
{
    for (const char *s = strstr(tpl, "{{"); s; s = strstr(s, "{{")) {
        int var;
        const char *name;
        size_t nlen, n = placeholder(s, &var, &name, &nlen);
        if (!n) {
            snprintf(msg, len,
                     "unclosed placeholder at column %zu (a placeholder is "
                     "{{ NAME }})",
                     (size_t)(s - tpl) + 1);
            return -1;
        }
        if (var < 0) {
            snprintf(msg, len,
                     "unknown placeholder '%.*s' at column %zu (one of execution.id, "
                     "workflow, status, event, error, link, failedTasks)",
                     (int)(nlen > 60 ? 60 : nlen), name, (size_t)(s - tpl) + 1);
            return -1;
        }
        s += n;
    }
    return 0;
}

static size_t nfailed(const struct dag_notify_vars *v)
{
    return v->nfailed > NOTIFY_MAX_FAILED ? NOTIFY_MAX_FAILED : v->nfailed;
}

/* An error text as a body carries it: at most NOTIFY_MAX_ERROR bytes. */
static json_t *error_json(const char *e)
{
    size_t n;

    if (!e)
        return json_null();
    n = strlen(e);
    if (n > NOTIFY_MAX_ERROR)
        n = NOTIFY_MAX_ERROR;
    /* Cut at a character boundary: jansson refuses invalid UTF-8. */
    while (n > 0 && n < strlen(e) && ((unsigned char)e[n] & 0xC0) == 0x80)
        n--;
    {
        json_t *j = json_stringn(e, n);
        return j ? j : json_string("(error text not UTF-8)");
    }
}

static json_t *failed_json(const struct dag_notify_vars *v)
{
    json_t *a = json_array();

    for (size_t i = 0; i < nfailed(v); i++) {
        json_t *o = json_object();
        json_object_set_new(o, "task", json_string(v->failed_tasks[i]));
        json_object_set_new(o, "error", error_json(v->failed_errors ? v->failed_errors[i] : NULL));
        json_array_append_new(a, o);
    }
    return a;
}

static void add_text(struct strbuf *sb, const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    strbuf_add_utf8(sb, s ? s : "", n > max ? max : n);
}

static void add_var(struct strbuf *sb, int var, const struct dag_notify_vars *v)
{
    switch (var) {
    case V_EXEC_ID:
        add_text(sb, v->exec_id, SIZE_MAX);
        break;
    case V_WORKFLOW:
        add_text(sb, v->workflow, SIZE_MAX);
        break;
    case V_STATUS:
        add_text(sb, v->status, SIZE_MAX);
        break;
    case V_EVENT:
        add_text(sb, v->event, SIZE_MAX);
        break;
    case V_ERROR:
        add_text(sb, v->error, NOTIFY_MAX_ERROR);
        break;
    case V_LINK:
        add_text(sb, v->link, SIZE_MAX);
        break;
    case V_FAILED:
        for (size_t i = 0; i < nfailed(v); i++) {
            const char *e = v->failed_errors ? v->failed_errors[i] : NULL;
            if (i)
                strbuf_adds(sb, "; ");
            add_text(sb, v->failed_tasks[i], SIZE_MAX);
            if (e) {
                strbuf_adds(sb, ": ");
                add_text(sb, e, NOTIFY_MAX_ERROR);
            }
        }
        if (!nfailed(v))
            strbuf_adds(sb, "none");
        break;
    }
}

/* The text template `tpl` with its placeholders filled in (caller frees). */
static char *render_text(const char *tpl, const struct dag_notify_vars *v)
{
    struct strbuf sb = STRBUF_INIT;
    const char *s = tpl;

    for (const char *at = strstr(s, "{{"); at; at = strstr(s, "{{")) {
        int var;
        const char *name;
        size_t nlen, n = placeholder(at, &var, &name, &nlen);
        strbuf_add(&sb, s, (size_t)(at - s));
        if (!n || var < 0) {
            strbuf_add(&sb, at, 2); /* not one of ours: literal (dag_parse refused it) */
            s = at + 2;
            continue;
        }
        add_var(&sb, var, v);
        s = at + n;
    }
    strbuf_adds(&sb, s);
    return strbuf_detach(&sb, NULL);
}

/* Is `s` one placeholder of `var` and nothing else? */
static int only_var(const char *s, int want)
{
    int var;
    const char *name;
    size_t nlen, n;

    if (strncmp(s, "{{", 2))
        return 0;
    n = placeholder(s, &var, &name, &nlen);
    return n && var == want && s[n] == '\0';
}

/* Render the strings of a JSON template in place (new value returned). */
static json_t *render_json(json_t *t, const struct dag_notify_vars *v)
{
    if (json_is_string(t)) {
        char *r;
        json_t *out;
        if (only_var(json_string_value(t), V_FAILED))
            return failed_json(v);
        r = render_text(json_string_value(t), v);
        out = json_string(r);
        free(r);
        return out ? out : json_string("");
    }
    if (json_is_array(t)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(t); i++)
            json_array_append_new(a, render_json(json_array_get(t, i), v));
        return a;
    }
    if (json_is_object(t)) {
        json_t *o = json_object();
        const char *key;
        json_t *val;
        json_object_foreach(t, key, val)
        {
            json_object_set_new(o, key, render_json(val, v));
        }
        return o;
    }
    return json_incref(t);
}

static char *dump(json_t *j)
{
    json_free_t jfree;
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY), *copy;

    if (!text)
        BUG("cannot encode a notification body (out of memory?)");
    json_get_alloc_funcs(NULL, &jfree);
    copy = xstrdup(text);
    jfree(text);
    return copy;
}

static json_t *opt_string(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

char *dag_notify_body(const struct dag_notify *n, const struct dag_notify_vars *v)
{
    json_t *doc;
    char *out;

    if (n && n->hook.body)
        return render_text(n->hook.body, v);
    if (n && n->hook.body_json) {
        json_t *t = json_loads(n->hook.body_json, JSON_DECODE_ANY, NULL);
        if (!t)
            BUG("a parsed notification body is not JSON");
        doc = render_json(t, v);
        json_decref(t);
    } else {
        doc = json_object();
        json_object_set_new(doc, "executionId", opt_string(v->exec_id));
        json_object_set_new(doc, "workflow", opt_string(v->workflow));
        json_object_set_new(doc, "status", opt_string(v->status));
        json_object_set_new(doc, "event", opt_string(v->event));
        json_object_set_new(doc, "error", error_json(v->error));
        json_object_set_new(doc, "failedTasks", failed_json(v));
        json_object_set_new(doc, "link", opt_string(v->link));
    }
    out = dump(doc);
    json_decref(doc);
    return out;
}
