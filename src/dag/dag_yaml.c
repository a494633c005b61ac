/*
 * dag_yaml.c - YAML definitions: libyaml's event parser builds the same
 * jansson document a JSON definition is, with a side table of where each
 * value was written; and the way back, JSON to YAML, for showing a stored
 * definition.
 *
 * The document API of libyaml is not used: it builds the whole node graph
 * first, outside our limits. Here the limits apply while events are pulled:
 * nesting depth (libyaml's scanner is quadratic in flow depth), the number
 * of nodes with every alias counted as the full subtree it stands for (the
 * "billion laughs"), and the number of anchors.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yaml.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag.h"
#include "dag_internal.h"

#include "base/banned.h"

#define MAX_ANCHORS 1000

#define TAG_PREFIX "tag:yaml.org,2002:"

struct anchor {
    char *name;
    json_t *value; /* NULL while the anchored node is still open */
    size_t nodes;  /* nodes of its subtree */
    size_t bytes;  /* text of its subtree */
};

struct frame {
    json_t *node;  /* the open mapping or sequence */
    char *path;    /* its JSON path, when positions are recorded */
    char *key;     /* mapping: the key waiting for its value, or NULL */
    size_t index;  /* sequence: index of the next element */
    long anchor;   /* index in anchors of the anchor it defines, or -1 */
    size_t nodes0; /* node count when it started */
    size_t bytes0; /* byte count when it started */
};

struct conv {
    struct dag_yaml_map *map;
    struct frame stack[DAG_YAML_MAX_DEPTH + 1];
    size_t depth;
    struct anchor *anchors;
    size_t nanchors, anchors_alloc;
    size_t nodes;
    size_t bytes; /* text of every scalar and key, aliases counted in full */
    json_t *root;
    char err[512];
    yaml_mark_t err_mark;
};

void dag_yaml_map_release(struct dag_yaml_map *map)
{
    if (!map)
        return;
    for (size_t i = 0; i < map->n; i++)
        free(map->items[i].path);
    free(map->items);
    map->items = NULL;
    map->n = map->alloc = 0;
}

static int fail(struct conv *c, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct conv *c, yaml_mark_t mark, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    c->err_mark = mark;
    return -1;
}

/* The path of the next value inside the top frame (heap), or NULL when no map is kept. */
static char *child_path(struct conv *c)
{
    struct strbuf sb = STRBUF_INIT;
    struct frame *f;

    if (!c->map)
        return NULL;
    if (!c->depth)
        return xstrdup("$");
    f = &c->stack[c->depth - 1];
    strbuf_adds(&sb, f->path);
    if (json_is_object(f->node))
        dag__path_add_key(&sb, f->key ? f->key : "");
    else
        strbuf_addf(&sb, "[%zu]", f->index);
    return strbuf_detach(&sb, NULL);
}

static void record(struct conv *c, const char *path, yaml_mark_t mark)
{
    struct dag_yaml_pos *p;

    if (!c->map || !path)
        return;
    XGROW(c->map->items, c->map->alloc, c->map->n + 1);
    p = &c->map->items[c->map->n++];
    p->path = xstrdup(path);
    p->line = (int)mark.line + 1;
    p->column = (int)mark.column + 1;
}

/* Count n more values of `bytes` bytes of text: the expanded document is bounded. */
static int count_nodes(struct conv *c, size_t n, size_t bytes, yaml_mark_t mark)
{
    if (n > DAG_YAML_MAX_NODES || c->nodes + n > DAG_YAML_MAX_NODES)
        return fail(c, mark,
                    "the document expands to more than %d values (aliases counted in full); "
                    "refused as an alias bomb",
                    DAG_YAML_MAX_NODES);
    if (bytes > DAG_MAX_BYTES || c->bytes + bytes > DAG_MAX_BYTES)
        return fail(c, mark,
                    "the document expands to more than %zu bytes (aliases counted in full); "
                    "refused as an alias bomb",
                    (size_t)DAG_MAX_BYTES);
    c->nodes += n;
    c->bytes += bytes;
    return 0;
}

/* Put a finished value (a new reference, stolen) where it belongs. */
static int place(struct conv *c, json_t *v, yaml_mark_t mark)
{
    struct frame *f;

    if (!c->depth) {
        c->root = v;
        return 0;
    }
    f = &c->stack[c->depth - 1];
    if (json_is_object(f->node)) {
        json_object_set_new(f->node, f->key, v);
        free(f->key);
        f->key = NULL;
    } else {
        json_array_append_new(f->node, v);
        f->index++;
    }
    (void)mark;
    return 0;
}

static int match_int(const char *s, int *base)
{
    const char *p = s;

    if (s[0] == '0' && s[1] == 'o') {
        *base = 8;
        p = s + 2;
        if (!*p)
            return 0;
        for (; *p; p++)
            if (*p < '0' || *p > '7')
                return 0;
        return 1;
    }
    if (s[0] == '0' && s[1] == 'x') {
        *base = 16;
        p = s + 2;
        if (!*p)
            return 0;
        for (; *p; p++)
            if (!isxdigit((unsigned char)*p))
                return 0;
        return 1;
    }
    *base = 10;
    if (*p == '-' || *p == '+')
        p++;
    if (!*p)
        return 0;
    if (p[0] == '0' && p[1])
        return 0; /* 0755, 01: a leading zero keeps the text (not octal, not 755) */
    for (; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    return 1;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int match_float(const char *s)
{
    const char *p = s;
    int digits = 0;

    if (*p == '-' || *p == '+')
        p++;
    if (p[0] == '0' && isdigit((unsigned char)p[1]))
        return 0; /* a leading zero keeps the text */
    while (isdigit((unsigned char)*p)) {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            p++;
            digits++;
        }
    }
    if (!digits)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+')
            p++;
        if (!isdigit((unsigned char)*p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

/* A plain scalar by the YAML 1.2 core schema; NULL when it is a string. */
static json_t *resolve_plain(const char *s)
{
    int base;

    if (!*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL"))
        return json_null();
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        return json_true();
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
        return json_false();
    if (match_int(s, &base)) {
        const char *digits = base == 10 ? s : s + 2;
        char *end;
        long long n;
        errno = 0;
        n = strtoll(digits, &end, base);
        if (errno == 0 && *end == '\0')
            return json_integer(n);
        if (base == 10) {
            double d = strtod(s, NULL);
            if (isfinite(d))
                return json_real(d);
        }
        return NULL;
    }
    if (match_float(s)) {
        double d = strtod(s, NULL);
        if (isfinite(d))
            return json_real(d);
    }
    return NULL;
}

static int on_scalar(struct conv *c, yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const char *tag = (const char *)ev->data.scalar.tag;
    int plain = ev->data.scalar.plain_implicit && !tag;
    struct frame *top = c->depth ? &c->stack[c->depth - 1] : NULL;
    json_t *v = NULL;
    char *path;

    if (memchr(s, '\0', len))
        return fail(c, ev->start_mark, "a value must not contain a NUL character");
    if (count_nodes(c, 1, len + 4, ev->start_mark))
        return -1;
    if (top && json_is_object(top->node) && !top->key) {
        /* A key: always the text as written. */
        if (tag && strcmp(tag, "!") && strcmp(tag, TAG_PREFIX "str"))
            return fail(c, ev->start_mark, "a key must be a string, not tagged '%s'", tag);
        if (ev->data.scalar.plain_implicit && !strcmp(s, "<<"))
            return fail(c, ev->start_mark, "merge keys (<<) are not supported");
        if (json_object_get(top->node, s))
            return fail(c, ev->start_mark, "duplicate key '%.*s%s'", DAG__Q(s));
        if (ev->data.scalar.anchor)
            return fail(c, ev->start_mark, "an anchor on a key is not supported");
        top->key = xstrdup(s);
        return 0;
    }
    if (plain) {
        v = resolve_plain(s);
    } else if (tag && strcmp(tag, "!") && strcmp(tag, TAG_PREFIX "str")) {
        if (!strcmp(tag, TAG_PREFIX "null") || !strcmp(tag, TAG_PREFIX "bool") ||
            !strcmp(tag, TAG_PREFIX "int") || !strcmp(tag, TAG_PREFIX "float")) {
            v = resolve_plain(s);
            if (!v || (!strcmp(tag, TAG_PREFIX "null") && !json_is_null(v)) ||
                (!strcmp(tag, TAG_PREFIX "bool") && !json_is_boolean(v)) ||
                (!strcmp(tag, TAG_PREFIX "int") && !json_is_integer(v)) ||
                (!strcmp(tag, TAG_PREFIX "float") && !json_is_number(v))) {
                json_decref(v);
                return fail(c, ev->start_mark, "'%.*s%s' is not a valid %s", DAG__Q(s),
                            tag + strlen(TAG_PREFIX));
            }
        } else {
            return fail(c, ev->start_mark, "unsupported tag '%.*s%s'", DAG__Q(tag));
        }
    }
    if (!v) {
        v = json_stringn(s, len);
        if (!v)
            return fail(c, ev->start_mark, "a value is not valid UTF-8");
    }
    path = child_path(c);
    record(c, path, ev->start_mark);
    free(path);
    if (ev->data.scalar.anchor) {
        if (c->nanchors >= MAX_ANCHORS) {
            json_decref(v);
            return fail(c, ev->start_mark, "more than %d anchors", MAX_ANCHORS);
        }
        XGROW(c->anchors, c->anchors_alloc, c->nanchors + 1);
        c->anchors[c->nanchors].name = xstrdup((const char *)ev->data.scalar.anchor);
        c->anchors[c->nanchors].value = json_incref(v);
        c->anchors[c->nanchors].nodes = 1;
        c->anchors[c->nanchors].bytes = len + 4;
        c->nanchors++;
    }
    return place(c, v, ev->start_mark);
}

static int on_alias(struct conv *c, yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    struct frame *top = c->depth ? &c->stack[c->depth - 1] : NULL;
    struct anchor *a = NULL;
    char *path;

    for (size_t i = c->nanchors; i-- > 0;) {
        if (!strcmp(c->anchors[i].name, name)) {
            a = &c->anchors[i];
            break;
        }
    }
    if (top && json_is_object(top->node) && !top->key)
        return fail(c, ev->start_mark, "an alias as a key is not supported");
    if (!a)
        return fail(c, ev->start_mark, "unknown alias '*%.*s%s'", DAG__Q(name));
    if (!a->value)
        return fail(c, ev->start_mark,
                    "alias '*%.*s%s' refers to a value that contains it (a cycle)", DAG__Q(name));
    if (count_nodes(c, a->nodes, a->bytes, ev->start_mark))
        return -1;
    path = child_path(c);
    record(c, path, ev->start_mark);
    free(path);
    /* Shared, not copied: the budget above already counts what it expands to. */
    return place(c, json_incref(a->value), ev->start_mark);
}

static int on_start(struct conv *c, yaml_event_t *ev, int is_map)
{
    const char *tag =
        (const char *)(is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag);
    const char *anchor =
        (const char *)(is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor);
    struct frame *top = c->depth ? &c->stack[c->depth - 1] : NULL;
    struct frame *f;

    if (top && json_is_object(top->node) && !top->key)
        return fail(c, ev->start_mark, "a key must be a plain value, not a %s",
                    is_map ? "mapping" : "list");
    if (tag && strcmp(tag, "!") && strcmp(tag, is_map ? TAG_PREFIX "map" : TAG_PREFIX "seq"))
        return fail(c, ev->start_mark, "unsupported tag '%.*s%s'", DAG__Q(tag));
    if (c->depth >= DAG_YAML_MAX_DEPTH)
        return fail(c, ev->start_mark, "nested deeper than %d levels", DAG_YAML_MAX_DEPTH);
    if (count_nodes(c, 1, 4, ev->start_mark))
        return -1;
    f = &c->stack[c->depth];
    memset(f, 0, sizeof(*f));
    f->path = child_path(c);
    record(c, f->path, ev->start_mark);
    f->node = is_map ? json_object() : json_array();
    f->anchor = -1;
    f->nodes0 = c->nodes - 1;
    f->bytes0 = c->bytes - 4;
    if (anchor) {
        if (c->nanchors >= MAX_ANCHORS) {
            json_decref(f->node);
            free(f->path);
            return fail(c, ev->start_mark, "more than %d anchors", MAX_ANCHORS);
        }
        XGROW(c->anchors, c->anchors_alloc, c->nanchors + 1);
        c->anchors[c->nanchors].name = xstrdup(anchor);
        c->anchors[c->nanchors].value = NULL;
        c->anchors[c->nanchors].nodes = 0;
        f->anchor = (long)c->nanchors++;
    }
    c->depth++;
    return 0;
}

static int on_end(struct conv *c, yaml_event_t *ev)
{
    struct frame *f = &c->stack[--c->depth];
    json_t *v = f->node;

    if (f->anchor >= 0) {
        c->anchors[f->anchor].value = json_incref(v);
        c->anchors[f->anchor].nodes = c->nodes - f->nodes0;
        c->anchors[f->anchor].bytes = c->bytes - f->bytes0;
    }
    free(f->path);
    free(f->key);
    f->path = f->key = NULL;
    f->node = NULL;
    return place(c, v, ev->start_mark);
}

static void conv_release(struct conv *c)
{
    while (c->depth > 0) {
        struct frame *f = &c->stack[--c->depth];
        json_decref(f->node);
        free(f->path);
        free(f->key);
    }
    for (size_t i = 0; i < c->nanchors; i++) {
        free(c->anchors[i].name);
        json_decref(c->anchors[i].value);
    }
    free(c->anchors);
    json_decref(c->root);
}

int dag_yaml_load(const char *text, size_t len, json_t **out, struct dag_yaml_map *map,
                  struct dag_problems *probs)
{
    struct dag__parser p;
    struct dag_problems local = DAG_PROBLEMS_INIT;
    struct conv *c;
    yaml_parser_t parser;
    int docs = 0, done = 0, ret = 0;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    p.probs = probs ? probs : &local;
    if (len > DAG_MAX_BYTES) {
        dag__problem(&p, NULL, 0, 0, "definition is %zu bytes, larger than the limit of %zu bytes",
                     len, (size_t)DAG_MAX_BYTES);
        dag_problems_release(&local);
        return ERR_TOO_BIG;
    }
    c = xcalloc(1, sizeof(*c));
    c->map = map;
    if (!yaml_parser_initialize(&parser))
        BUG("yaml_parser_initialize");
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""), len);
    while (!done) {
        yaml_event_t ev;
        int rc = 0;

        if (!yaml_parser_parse(&parser, &ev)) {
            if (parser.context)
                snprintf(c->err, sizeof(c->err), "%s %s", parser.problem ? parser.problem : "error",
                         parser.context);
            else
                snprintf(c->err, sizeof(c->err), "%s", parser.problem ? parser.problem : "error");
            c->err_mark = parser.problem_mark;
            if (text && parser.problem_mark.index < len && text[parser.problem_mark.index] == '\t')
                strncat(c->err, " (a tab: indent with spaces)",
                        sizeof(c->err) - strlen(c->err) - 1);
            ret = -1;
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1)
                rc = fail(c, ev.start_mark, "only one document is allowed");
            break;
        case YAML_SCALAR_EVENT:
            rc = on_scalar(c, &ev);
            break;
        case YAML_ALIAS_EVENT:
            rc = on_alias(c, &ev);
            break;
        case YAML_MAPPING_START_EVENT:
            rc = on_start(c, &ev, 1);
            break;
        case YAML_SEQUENCE_START_EVENT:
            rc = on_start(c, &ev, 0);
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            rc = on_end(c, &ev);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (rc) {
            ret = -1;
            break;
        }
    }
    yaml_parser_delete(&parser);
    if (ret == 0 && !c->root) {
        yaml_mark_t m = {0, 0, 0};
        fail(c, m, "the document is empty");
        ret = -1;
    }
    if (ret) {
        int line = (int)c->err_mark.line + 1, col = (int)c->err_mark.column + 1;
        dag__problem(&p, NULL, line, col, "invalid YAML at line %d column %d: %s", line, col,
                     c->err);
        conv_release(c);
        free(c);
        if (map)
            dag_yaml_map_release(map);
        dag_problems_release(&local);
        return ERR_INVALID;
    }
    *out = c->root;
    c->root = NULL;
    conv_release(c);
    free(c);
    dag_problems_release(&local);
    return 0;
}

int dag_yaml_to_json(const char *text, size_t len, char **out, struct dag_yaml_map *map,
                     struct dag_problems *probs)
{
    json_t *root;
    int rc = dag_yaml_load(text, len, &root, map, probs);

    *out = NULL;
    if (rc)
        return rc;
    *out = json_dumps(root, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(root);
    if (!*out)
        BUG("json_dumps");
    return 0;
}

void dag_yaml_locate(const struct dag_yaml_map *map, struct dag_problems *probs)
{
    if (!map || !probs)
        return;
    for (size_t i = 0; i < probs->n; i++) {
        struct dag_problem *pr = &probs->items[i];
        size_t n;

        if (pr->line || !pr->path)
            continue;
        n = strlen(pr->path);
        while (n > 1) {
            size_t j;
            for (j = 0; j < map->n; j++) {
                if (strlen(map->items[j].path) == n && !memcmp(map->items[j].path, pr->path, n))
                    break;
            }
            if (j < map->n) {
                pr->line = map->items[j].line;
                pr->column = map->items[j].column;
                break;
            }
            /* Up one segment: drop a trailing "[...]" or ".key". */
            if (pr->path[n - 1] == ']') {
                int quoted = n >= 2 && pr->path[n - 2] == '"';
                while (n > 1 && pr->path[n - 1] != '[')
                    n--;
                if (quoted) /* a ["key"] may hold '[': step back to the last '["' */
                    while (n > 1 && !(pr->path[n - 1] == '[' && pr->path[n] == '"'))
                        n--;
                n--;
            } else {
                while (n > 1 && pr->path[n - 1] != '.')
                    n--;
                n--;
            }
        }
    }
}

int dag_is_yaml(const char *name, const char *text, size_t len)
{
    size_t i;

    if (name) {
        size_t n = strlen(name);
        if ((n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")))
            return 1;
        if (n > 5 && !strcmp(name + n - 5, ".json"))
            return 0;
    }
    for (i = 0; i < len && text; i++) {
        if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n')
            continue;
        return text[i] != '{';
    }
    return 0;
}

/* ---- JSON to YAML ---- */

static int emit_out(void *data, unsigned char *buf, size_t size)
{
    strbuf_add(data, buf, size);
    return 1;
}

/* Would the string `s` be read back as something other than that string? */
static int needs_quotes(const char *s)
{
    static const char *const look_alikes[] = {"yes", "no", "on", "off", "y", "n", NULL};
    json_t *v;
    char low[8];
    size_t i;

    if (!*s)
        return 1;
    v = resolve_plain(s);
    if (v) {
        json_decref(v);
        return 1;
    }
    for (i = 0; s[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)tolower((unsigned char)s[i]);
    if (s[i])
        return 0;
    low[i] = '\0';
    for (i = 0; look_alikes[i]; i++)
        if (!strcmp(low, look_alikes[i]))
            return 1;
    return 0;
}

static int emit_scalar(yaml_emitter_t *e, const char *text, yaml_scalar_style_t style, int plain)
{
    yaml_event_t ev;

    yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)(uintptr_t)text, (int)strlen(text),
                                 plain, !plain, style);
    return yaml_emitter_emit(e, &ev);
}

static int emit_string(yaml_emitter_t *e, const char *s)
{
    if (strchr(s, '\n'))
        return emit_scalar(e, s, YAML_LITERAL_SCALAR_STYLE, 0);
    if (needs_quotes(s))
        return emit_scalar(e, s, YAML_DOUBLE_QUOTED_SCALAR_STYLE, 0);
    return emit_scalar(e, s, YAML_ANY_SCALAR_STYLE, 1);
}

static int emit_value(yaml_emitter_t *e, const json_t *v)
{
    yaml_event_t ev;
    char num[64];

    if (!v)
        return emit_scalar(e, "null", YAML_PLAIN_SCALAR_STYLE, 1);
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *m;
        int empty = json_object_size(v) == 0;
        yaml_mapping_start_event_initialize(
            &ev, NULL, NULL, 1, empty ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE);
        if (!yaml_emitter_emit(e, &ev))
            return 0;
        json_object_foreach((json_t *)(uintptr_t)v, k, m)
        {
            if (!emit_string(e, k) || !emit_value(e, m))
                return 0;
        }
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev);
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *m;
        int empty = json_array_size(v) == 0;
        yaml_sequence_start_event_initialize(
            &ev, NULL, NULL, 1, empty ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
        if (!yaml_emitter_emit(e, &ev))
            return 0;
        json_array_foreach(v, i, m)
        {
            if (!emit_value(e, m))
                return 0;
        }
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev);
    }
    case JSON_STRING:
        return emit_string(e, json_string_value(v));
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return emit_scalar(e, num, YAML_PLAIN_SCALAR_STYLE, 1);
    case JSON_REAL: {
        char *t = json_dumps(v, JSON_ENCODE_ANY);
        int ok = emit_scalar(e, t ? t : "0.0", YAML_PLAIN_SCALAR_STYLE, 1);
        free(t);
        return ok;
    }
    case JSON_TRUE:
        return emit_scalar(e, "true", YAML_PLAIN_SCALAR_STYLE, 1);
    case JSON_FALSE:
        return emit_scalar(e, "false", YAML_PLAIN_SCALAR_STYLE, 1);
    default:
        return emit_scalar(e, "null", YAML_PLAIN_SCALAR_STYLE, 1);
    }
}

char *dag_json_to_yaml(const json_t *v)
{
    struct strbuf sb = STRBUF_INIT;
    yaml_emitter_t e;
    yaml_event_t ev;
    int ok;

    if (!yaml_emitter_initialize(&e))
        BUG("yaml_emitter_initialize");
    yaml_emitter_set_output(&e, emit_out, &sb);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_emitter_set_indent(&e, 2);
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    ok = yaml_emitter_emit(&e, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    ok = ok && yaml_emitter_emit(&e, &ev);
    ok = ok && emit_value(&e, v);
    yaml_document_end_event_initialize(&ev, 1);
    ok = ok && yaml_emitter_emit(&e, &ev);
    yaml_stream_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&e, &ev);
    ok = ok && yaml_emitter_flush(&e);
    yaml_emitter_delete(&e);
    if (!ok) {
        strbuf_release(&sb);
        return NULL;
    }
    return strbuf_detach(&sb, NULL);
}
