/*
 * template.c - "{{ ref }}" placeholders: parser, ref lookup and rendering.
 *
 * The parser is a single left-to-right pass with no recursion; the text is
 * copied once and literal parts are (offset, length) slices of the copy.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "template.h"

#include "base/banned.h"

#define MAX_INDEX_DIGITS 9

struct tpl_seg {
    char *field;  /* a .field step, or NULL for an [index] step */
    size_t index; /* the [index] step when field is NULL */
};

/* A literal slice of tpl->text, or (ref >= 0) the ref tpl->refs[ref]. */
struct tpl_part {
    size_t off;
    size_t len;
    long ref;
};

struct tpl {
    char *text;
    struct tpl_part *parts;
    size_t nparts, aparts;
    struct tpl_ref *refs;
    size_t nrefs, arefs;
};

static const char *const root_names[] = {"params",       "tasks", "execution",
                                         "scheduledFor", "item",  "index"};
#define NROOTS (sizeof(root_names) / sizeof(root_names[0]))

const char *tpl_root_name(enum tpl_root root)
{
    return (size_t)root < NROOTS ? root_names[root] : "?";
}

struct tpl_pos tpl_where(const char *text, size_t off)
{
    struct tpl_pos n;
    size_t line = 1, start = 0;

    for (size_t i = 0; i < off; i++) {
        if (text[i] == '\n') {
            line++;
            start = i + 1;
        }
    }
    if (line == 1)
        snprintf(n.s, sizeof(n.s), "column %zu", off + 1);
    else
        snprintf(n.s, sizeof(n.s), "line %zu, column %zu", line, off - start + 1);
    return n;
}

/* "'x'" for a printable ASCII character, "byte 0xNN" otherwise (any short text fits a tpl_pos). */
static struct tpl_pos show_char(unsigned char c)
{
    struct tpl_pos n;

    if (c > 0x20 && c < 0x7f)
        snprintf(n.s, sizeof(n.s), "'%c'", c);
    else
        snprintf(n.s, sizeof(n.s), "byte 0x%02x", c);
    return n;
}

static int is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '-';
}

/* Length of the name [A-Za-z_][A-Za-z0-9_-]* at `s`, 0 if none. */
static size_t name_len(const char *s)
{
    size_t n = 0;

    if (!is_name_start(s[0]))
        return 0;
    while (is_name_char(s[n]))
        n++;
    return n;
}

static size_t skip_blanks(const char *text, size_t p)
{
    while (text[p] == ' ' || text[p] == '\t' || text[p] == '\n' || text[p] == '\r')
        p++;
    return p;
}

static int is_closing(const char *text, size_t p)
{
    return text[p] == '}' && text[p + 1] == '}';
}

static void add_seg(struct tpl_ref *ref, char *field, size_t index)
{
    struct tpl_seg *s;

    ref->segs = xreallocarray(ref->segs, ref->nsegs + 1, sizeof(*ref->segs));
    s = &ref->segs[ref->nsegs++];
    s->field = field;
    s->index = index;
}

/* The ".field" and "[N]" steps after a ref's fixed part, from text[*p]. */
static int parse_steps(const char *text, size_t *p, struct tpl_ref *ref, struct err *err)
{
    for (;;) {
        size_t q = *p, n, digits = 0, index = 0;

        if (text[q] == '.') {
            n = name_len(text + q + 1);
            if (!n)
                return err_set(err, ERR_INVALID, "expected a name after '.' at %s",
                               tpl_where(text, q + 1).s);
            add_seg(ref, xstrndup(text + q + 1, n), 0);
            *p = q + 1 + n;
        } else if (text[q] == '[') {
            while (text[q + 1 + digits] >= '0' && text[q + 1 + digits] <= '9') {
                if (digits < MAX_INDEX_DIGITS)
                    index = index * 10 + (size_t)(text[q + 1 + digits] - '0');
                digits++;
            }
            if (!digits)
                return err_set(err, ERR_INVALID, "bad index at %s: expected a number after '['",
                               tpl_where(text, q).s);
            if (digits > MAX_INDEX_DIGITS)
                return err_set(err, ERR_INVALID, "bad index at %s: more than %d digits",
                               tpl_where(text, q).s, MAX_INDEX_DIGITS);
            if (text[q + 1 + digits] != ']')
                return err_set(err, ERR_INVALID, "bad index at %s: expected ']' after the number",
                               tpl_where(text, q).s);
            add_seg(ref, NULL, index);
            *p = q + 2 + digits;
        } else {
            return 0;
        }
    }
}

/* The ref starting at text[*p] (not blank); on success *p is just past it. */
static int parse_ref_body(const char *text, size_t *p, struct tpl_ref *ref, struct err *err)
{
    /* The field that must follow tasks.NAME and execution. */
    static const char *const fixed_word[] = {NULL, "output", "id", NULL, NULL, NULL};
    size_t start = *p, q = *p, n = name_len(text + q), k;

    if (!n)
        return err_set(err, ERR_INVALID,
                       "expected a ref at %s, found %s (refs look like params.NAME)",
                       tpl_where(text, q).s, show_char((unsigned char)text[q]).s);
    for (k = 0; k < NROOTS; k++) {
        if (strlen(root_names[k]) == n && !strncmp(text + q, root_names[k], n))
            break;
    }
    if (k == NROOTS)
        return err_set(err, ERR_INVALID,
                       "unknown root '%.*s' at %s (known: params, tasks, execution, "
                       "scheduledFor, item, index)",
                       (int)(n < 64 ? n : 64), text + q, tpl_where(text, q).s);
    ref->root = (enum tpl_root)k;
    q += n;
    if (ref->root == TPL_PARAMS || ref->root == TPL_TASKS) {
        n = text[q] == '.' ? name_len(text + q + 1) : 0;
        if (!n)
            return err_set(err, ERR_INVALID, "expected '.NAME' after '%s' at %s", root_names[k],
                           tpl_where(text, q).s);
        ref->name = xstrndup(text + q + 1, n);
        add_seg(ref, xstrdup(ref->name), 0);
        q += 1 + n;
    }
    if (fixed_word[k]) {
        n = strlen(fixed_word[k]);
        if (text[q] != '.' || strncmp(text + q + 1, fixed_word[k], n) ||
            is_name_char(text[q + 1 + n]))
            return err_set(err, ERR_INVALID, "expected '.%s' after '%.*s' at %s", fixed_word[k],
                           (int)(q - start), text + start, tpl_where(text, q).s);
        add_seg(ref, xstrdup(fixed_word[k]), 0);
        q += 1 + n;
    }
    if (ref->root == TPL_PARAMS || ref->root == TPL_TASKS || ref->root == TPL_ITEM) {
        *p = q;
        if (parse_steps(text, p, ref, err))
            return ERR_INVALID;
        q = *p;
    } else if (text[q] == '.' || text[q] == '[') {
        return err_set(err, ERR_INVALID, "'%.*s' takes no field or index at %s", (int)(q - start),
                       text + start, tpl_where(text, q).s);
    }
    ref->path = xstrndup(text + start, q - start);
    ref->column = start + 1;
    *p = q;
    return 0;
}

/*
 * The placeholder at text[*pos] ("{{"). With `lit` non-NULL the quoted form
 * is accepted: then lit[0], lit[1] are set to the offset and length of the
 * literal (and `ref` is untouched); otherwise lit[0] is SIZE_MAX.
 */
static int parse_placeholder(const char *text, size_t *pos, struct tpl_ref *ref, size_t *lit,
                             struct err *err)
{
    size_t at = *pos, p;

    if (text[at] != '{' || text[at + 1] != '{')
        BUG("tpl_ref_parse() called on something else than '{{'");
    memset(ref, 0, sizeof(*ref));
    if (!strstr(text + at + 2, "}}"))
        return err_set(err, ERR_INVALID, "unclosed '{{' at %s", tpl_where(text, at).s);
    p = skip_blanks(text, at + 2);
    if (is_closing(text, p))
        return err_set(err, ERR_INVALID, "empty placeholder at %s", tpl_where(text, at).s);
    if (lit)
        lit[0] = SIZE_MAX;
    if (lit && text[p] == '\'') {
        const char *end = strchr(text + p + 1, '\'');
        if (!end)
            return err_set(err, ERR_INVALID, "unterminated string at %s", tpl_where(text, p).s);
        lit[0] = p + 1;
        lit[1] = (size_t)(end - text) - (p + 1);
        p = (size_t)(end - text) + 1;
    } else if (parse_ref_body(text, &p, ref, err)) {
        tpl_ref_release(ref);
        return ERR_INVALID;
    }
    p = skip_blanks(text, p);
    if (!is_closing(text, p)) {
        tpl_ref_release(ref);
        return err_set(err, ERR_INVALID, "unexpected %s at %s in placeholder",
                       show_char((unsigned char)text[p]).s, tpl_where(text, p).s);
    }
    *pos = p + 2;
    return 0;
}

int tpl_ref_parse(const char *text, size_t *pos, struct tpl_ref *out, struct err *err)
{
    return parse_placeholder(text, pos, out, NULL, err);
}

void tpl_ref_release(struct tpl_ref *ref)
{
    if (!ref)
        return;
    for (size_t i = 0; i < ref->nsegs; i++)
        free(ref->segs[i].field);
    free(ref->segs);
    free(ref->name);
    free(ref->path);
    memset(ref, 0, sizeof(*ref));
}

static void add_part(struct tpl *t, size_t off, size_t len, long ref)
{
    if (ref < 0 && !len)
        return;
    XGROW(t->parts, t->aparts, t->nparts + 1);
    t->parts[t->nparts].off = off;
    t->parts[t->nparts].len = len;
    t->parts[t->nparts].ref = ref;
    t->nparts++;
}

int tpl_parse(const char *text, struct tpl **out, struct err *err)
{
    struct tpl *t;
    size_t p = 0, lit_start = 0, lit[2];
    struct tpl_ref ref;
    int ret = 0;

    *out = NULL;
    if (strnlen(text, TPL_MAX_BYTES + 1) > TPL_MAX_BYTES)
        return err_set(err, ERR_TOO_BIG, "template longer than %u bytes", TPL_MAX_BYTES);
    t = xcalloc(1, sizeof(*t));
    t->text = xstrdup(text);
    while (text[p]) {
        if (text[p] != '{' || text[p + 1] != '{') {
            p++;
            continue;
        }
        add_part(t, lit_start, p - lit_start, -1);
        ret = parse_placeholder(text, &p, &ref, lit, err);
        if (ret)
            goto out;
        if (lit[0] != SIZE_MAX) {
            add_part(t, lit[0], lit[1], -1);
        } else {
            XGROW(t->refs, t->arefs, t->nrefs + 1);
            t->refs[t->nrefs] = ref;
            add_part(t, 0, 0, (long)t->nrefs++);
        }
        lit_start = p;
    }
    add_part(t, lit_start, p - lit_start, -1);
out:
    if (ret) {
        tpl_free(t);
        return ret;
    }
    *out = t;
    return 0;
}

void tpl_free(struct tpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nrefs; i++)
        tpl_ref_release(&t->refs[i]);
    free(t->refs);
    free(t->parts);
    free(t->text);
    free(t);
}

size_t tpl_nrefs(const struct tpl *t)
{
    return t->nrefs;
}

const struct tpl_ref *tpl_ref_at(const struct tpl *t, size_t i)
{
    if (i >= t->nrefs)
        BUG("tpl_ref_at(%zu) of %zu refs", i, t->nrefs);
    return &t->refs[i];
}

/* "a string", "an object"... for messages. */
static const char *kind(const json_t *v)
{
    static const char *const kinds[] = {"an object", "an array",  "a string",  "a number",
                                        "a number",  "a boolean", "a boolean", "null"};

    return kinds[json_typeof(v)];
}

/* The error for a value that is absent, `seg` being the failed step (SIZE_MAX: the root). */
static int missing(const struct tpl_ref *ref, size_t seg, struct err *err)
{
    if (ref->root == TPL_PARAMS && (seg == SIZE_MAX || seg < 1))
        return err_set(err, ERR_NOT_FOUND, "%s: no param '%s'", ref->path, ref->name);
    if (ref->root == TPL_TASKS && (seg == SIZE_MAX || seg < 2))
        return err_set(err, ERR_NOT_FOUND, "%s: no output for task '%s'", ref->path, ref->name);
    if (seg == SIZE_MAX || ref->root == TPL_EXECUTION)
        return err_set(err, ERR_NOT_FOUND, "%s: not set", ref->path);
    return err_set(err, ERR_NOT_FOUND, "%s: no field '%s'", ref->path, ref->segs[seg].field);
}

int tpl_ref_lookup(const struct tpl_ref *ref, const json_t *ctx, json_t **out, struct err *err)
{
    json_t *cur = json_object_get(ctx, tpl_root_name(ref->root));
    /* Steps that are part of the ref's fixed shape (params.NAME, tasks.NAME.output). */
    size_t fixed = ref->root == TPL_TASKS ? 2 : ref->root == TPL_ITEM ? 0 : 1;

    *out = NULL;
    if (!cur)
        return missing(ref, SIZE_MAX, err);
    for (size_t i = 0; i < ref->nsegs; i++) {
        const struct tpl_seg *s = &ref->segs[i];

        if (s->field && !json_is_object(cur)) {
            if (i < fixed)
                return missing(ref, i, err);
            return err_set(err, ERR_INVALID, "%s: cannot take field '%s' of %s", ref->path,
                           s->field, kind(cur));
        }
        if (s->field) {
            cur = json_object_get(cur, s->field);
            if (!cur)
                return missing(ref, i, err);
            continue;
        }
        if (!json_is_array(cur))
            return err_set(err, ERR_INVALID, "%s: cannot take [%zu] of %s", ref->path, s->index,
                           kind(cur));
        if (s->index >= json_array_size(cur))
            return err_set(err, ERR_NOT_FOUND, "%s: index %zu out of range (array has %zu items)",
                           ref->path, s->index, json_array_size(cur));
        cur = json_array_get(cur, s->index);
    }
    *out = cur;
    return 0;
}

/* Where rendered bytes go: the buffer, with shell quoting of ' or URL
 * encoding when asked. */
struct sink {
    struct strbuf *sb;
    int shell;
    int rc;
    int url;
};

static int url_safe(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

static int sink_add(struct sink *k, const char *s, size_t n)
{
    if (k->url) {
        /* One path segment or query value: "." and ".." are encoded too, so
         * that no value can climb the path ("../admin"). */
        static const char hex[] = "0123456789ABCDEF";
        int dots = (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (url_safe(c) && !dots ? strbuf_addch(k->sb, c) : strbuf_add(k->sb, esc, 3))
                return ERR_TOO_BIG;
        }
        return 0;
    }
    for (;;) {
        const char *q = k->shell ? memchr(s, '\'', n) : NULL;
        size_t run = q ? (size_t)(q - s) : n;

        if (!q)
            return strbuf_add(k->sb, s, n);
        if (strbuf_add(k->sb, s, run) || strbuf_add(k->sb, "'\\''", 4))
            return ERR_TOO_BIG;
        s += run + 1;
        n -= run + 1;
    }
}

static int sink_dump(const char *buf, size_t size, void *data)
{
    struct sink *k = data;

    k->rc = sink_add(k, buf, size);
    return k->rc ? -1 : 0;
}

/*
 * A real as the shortest text that reads back as the same double, with ".0"
 * when it would look like an integer (jansson prints 0.1 as 0.10000000000000001).
 * NEEDSWORK: reals inside objects and arrays still use jansson's 17 digits.
 */
static void format_real(double d, char *buf, size_t size)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (!strpbrk(buf, ".eEn"))
        snprintf(buf + strlen(buf), size - strlen(buf), ".0");
}

/* Append the text of `v`, without the quotes TPL_SHELL puts around it. */
static int add_value_text(struct sink *k, const struct tpl_ref *ref, const json_t *v,
                          struct err *err)
{
    char num[40];

    if (json_is_string(v))
        return sink_add(k, json_string_value(v), json_string_length(v));
    if (json_is_real(v)) {
        format_real(json_real_value(v), num, sizeof(num));
        return sink_add(k, num, strlen(num));
    }
    if (json_dump_callback(v, sink_dump, k, JSON_COMPACT | JSON_ENCODE_ANY))
        return k->rc ? k->rc : err_set(err, ERR_INTERNAL, "%s: cannot encode the value", ref->path);
    return 0;
}

static int insert_value(struct strbuf *sb, const struct tpl_ref *ref, const json_t *v,
                        enum tpl_quote quote, struct err *err)
{
    struct sink k = {sb, quote == TPL_SHELL, 0, quote == TPL_URL};
    int rc = 0;

    if (json_is_string(v) && memchr(json_string_value(v), '\0', json_string_length(v)))
        return err_set(err, ERR_INVALID, "%s: value contains a NUL byte", ref->path);
    if (k.shell)
        rc = strbuf_addch(sb, '\'');
    if (!rc)
        rc = add_value_text(&k, ref, v, err);
    if (!rc && k.shell)
        rc = strbuf_addch(sb, '\'');
    return rc;
}

int tpl_render(const struct tpl *t, const json_t *ctx, enum tpl_quote quote, char **out,
               struct err *err)
{
    struct strbuf sb = STRBUF_INIT;
    int ret = 0;

    *out = NULL;
    strbuf_init(&sb, TPL_MAX_OUTPUT);
    for (size_t i = 0; i < t->nparts && !ret; i++) {
        const struct tpl_part *part = &t->parts[i];
        const struct tpl_ref *ref;
        json_t *v;

        if (part->ref < 0) {
            ret = strbuf_add(&sb, t->text + part->off, part->len);
            continue;
        }
        ref = &t->refs[part->ref];
        ret = tpl_ref_lookup(ref, ctx, &v, err);
        if (!ret)
            ret = insert_value(&sb, ref, v, quote, err);
    }
    /* Only the bounded buffer fails with ERR_TOO_BIG, and it leaves `err` to us. */
    if (ret == ERR_TOO_BIG)
        err_set(err, ERR_TOO_BIG, "rendered text longer than %u bytes", TPL_MAX_OUTPUT);
    if (ret) {
        strbuf_release(&sb);
        return ret;
    }
    *out = strbuf_detach(&sb, NULL);
    return 0;
}

int tpl_eval_json(const struct tpl *t, const json_t *ctx, json_t **out, struct err *err)
{
    char *text;
    json_t *v;
    int ret;

    *out = NULL;
    if (t->nparts == 1 && t->parts[0].ref >= 0) {
        ret = tpl_ref_lookup(&t->refs[t->parts[0].ref], ctx, &v, err);
        if (!ret)
            *out = json_incref(v);
        return ret;
    }
    ret = tpl_render(t, ctx, TPL_RAW, &text, err);
    if (ret)
        return ret;
    *out = json_string(text);
    free(text);
    if (!*out)
        return err_set(err, ERR_INVALID, "rendered text is not valid UTF-8");
    return 0;
}
