/*
 * expr.c - boolean expressions for task conditions: lexer, recursive-descent
 * parser and evaluator.
 *
 * The parser keeps one token of lookahead. "and" and "or" chains become one
 * node with n operands rather than a left-leaning tree, so the depth of the
 * tree (and of the recursion that parses, evaluates and frees it) grows only
 * with parentheses and "not", which EXPR_MAX_DEPTH bounds. Evaluation
 * returns borrowed values: literals belong to the tree, ref values to the
 * context, and the results of comparisons are jansson's static true/false.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "expr.h"
#include "template.h"

#include "base/banned.h"

/* Deeper values than jansson's parser accepts are not compared. */
#define EQUAL_MAX_DEPTH JSON_PARSER_MAX_DEPTH

enum tok_kind { T_END, T_LPAREN, T_RPAREN, T_CMP, T_AND, T_OR, T_NOT, T_VALUE, T_REF };
enum cmp_op { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE };
enum node_kind { N_LIT, N_REF, N_NOT, N_AND, N_OR, N_CMP };

static const char *const cmp_names[] = {"==", "!=", "<", "<=", ">", ">="};

struct token {
    enum tok_kind kind;
    size_t off, len;    /* its text */
    enum cmp_op op;     /* T_CMP */
    json_t *value;      /* T_VALUE: owned until an operand takes it */
    struct tpl_ref ref; /* T_REF: owned until an operand takes it */
};

struct node {
    enum node_kind kind;
    enum cmp_op op; /* N_CMP */
    json_t *value;  /* N_LIT */
    size_t ref;     /* N_REF: index in expr->refs */
    struct node **kids;
    size_t nkids;
};

struct expr {
    struct node *root;
    struct tpl_ref *refs;
    size_t nrefs, arefs;
};

struct parser {
    const char *text;
    size_t pos; /* where the lexer goes on */
    int depth;
    struct token tok;
    struct expr *e;
    struct err *err;
};

/* A short piece of message text, returned by value so it can be used inline. */
struct note {
    char s[160];
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t skip_digits(const char *s, size_t j)
{
    while (is_digit(s[j]))
        j++;
    return j;
}

static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || is_digit(c);
}

static void drop_token(struct token *t)
{
    json_decref(t->value);
    t->value = NULL;
    tpl_ref_release(&t->ref);
}

static int lex_number(struct parser *p, size_t i, struct token *t)
{
    const char *s = p->text;
    size_t j = i + (s[i] == '-'), k;
    int integral = 1, bad = 0;
    char *copy, *end;
    long long ll;
    double d;

    if (!is_digit(s[j]))
        return err_set(p->err, ERR_INVALID, "unexpected '-' at %s (write negative numbers as -2)",
                       tpl_where(s, i).s);
    j = skip_digits(s, j);
    if (s[j] == '.') {
        k = skip_digits(s, j + 1);
        bad |= k == j + 1;
        j = k;
        integral = 0;
    }
    if (s[j] == 'e' || s[j] == 'E') {
        j += 1 + (s[j + 1] == '+' || s[j + 1] == '-');
        k = skip_digits(s, j);
        bad |= k == j;
        j = k;
        integral = 0;
    }
    if (bad || is_word_char(s[j]) || s[j] == '.')
        return err_set(p->err, ERR_INVALID, "bad number at %s", tpl_where(s, i).s);
    copy = xstrndup(s + i, j - i);
    errno = 0;
    ll = integral ? strtoll(copy, &end, 10) : 0;
    if (integral && errno != ERANGE) {
        t->value = json_integer(ll);
    } else {
        d = strtod(copy, &end);
        t->value = isfinite(d) ? json_real(d) : NULL;
    }
    free(copy);
    if (!t->value)
        return err_set(p->err, ERR_INVALID, "number out of range at %s", tpl_where(s, i).s);
    t->kind = T_VALUE;
    t->len = j - i;
    return 0;
}

static int lex_string(struct parser *p, size_t i, struct token *t)
{
    static const char escapes[] = "\\\\''\"\"n\nt\tr\r"; /* pairs: escape letter, byte */
    const char *s = p->text;
    struct strbuf sb = STRBUF_INIT;
    size_t j = i + 1;
    int ret = 0;

    while (s[j] != s[i] && !ret) {
        const char *e;

        if (!s[j] || (s[j] == '\\' && !s[j + 1])) {
            ret = err_set(p->err, ERR_INVALID, "unterminated string at %s", tpl_where(s, i).s);
        } else if (s[j] != '\\') {
            strbuf_addch(&sb, s[j++]);
        } else {
            for (e = escapes; *e && *e != s[j + 1]; e += 2)
                ;
            if (!*e)
                ret = err_set(p->err, ERR_INVALID,
                              "unknown escape '\\%c' at %s (known: \\\\ \\' "
                              "\\\" \\n \\t \\r)",
                              s[j + 1], tpl_where(s, j).s);
            else
                strbuf_addch(&sb, e[1]);
            j += 2;
        }
    }
    if (!ret) {
        t->value = json_stringn(sb.buf, sb.len);
        if (!t->value)
            ret =
                err_set(p->err, ERR_INVALID, "string is not valid UTF-8 at %s", tpl_where(s, i).s);
    }
    strbuf_release(&sb);
    t->kind = T_VALUE;
    t->len = j + 1 - i;
    return ret;
}

/* A keyword, or an error for any other bare word. */
static int lex_word(struct parser *p, size_t i, struct token *t)
{
    static const char *const words[] = {"and", "or", "not", "true", "false", "null"};
    static const enum tok_kind kinds[] = {T_AND, T_OR, T_NOT, T_VALUE, T_VALUE, T_VALUE};
    size_t n = 0, k;

    while (is_word_char(p->text[i + n]) || p->text[i + n] == '-')
        n++;
    for (k = 0; k < sizeof(words) / sizeof(words[0]); k++) {
        if (strlen(words[k]) == n && !strncmp(p->text + i, words[k], n))
            break;
    }
    if (k == sizeof(words) / sizeof(words[0]))
        return err_set(p->err, ERR_INVALID,
                       "unknown word '%.*s' at %s (refs are written {{ params.NAME }}, "
                       "strings in quotes)",
                       (int)(n < 40 ? n : 40), p->text + i, tpl_where(p->text, i).s);
    t->kind = kinds[k];
    t->len = n;
    if (k >= 3)
        t->value = k == 3 ? json_true() : k == 4 ? json_false() : json_null();
    return 0;
}

static int lex_other(struct parser *p, size_t i, struct token *t)
{
    static const char *const ops[] = {"==", "!=", "<=", ">=", "<", ">"};
    static const enum cmp_op op_codes[] = {CMP_EQ, CMP_NE, CMP_LE, CMP_GE, CMP_LT, CMP_GT};
    static const char *const hints[][2] = {{"&&", "and"}, {"||", "or"}, {"!", "not"},
                                           {"=", "=="},   {"&", "and"}, {"|", "or"}};
    const char *s = p->text + i;
    unsigned char c = (unsigned char)*s;

    for (size_t k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
        if (!strncmp(s, ops[k], strlen(ops[k]))) {
            t->kind = T_CMP;
            t->op = op_codes[k];
            t->len = strlen(ops[k]);
            return 0;
        }
    }
    for (size_t k = 0; k < sizeof(hints) / sizeof(hints[0]); k++) {
        if (!strncmp(s, hints[k][0], strlen(hints[k][0])))
            return err_set(p->err, ERR_INVALID, "unexpected '%s' at %s (use '%s')", hints[k][0],
                           tpl_where(p->text, i).s, hints[k][1]);
    }
    if (c > 0x20 && c < 0x7f)
        return err_set(p->err, ERR_INVALID, "unexpected '%c' at %s", c, tpl_where(p->text, i).s);
    return err_set(p->err, ERR_INVALID, "unexpected byte 0x%02x at %s", c, tpl_where(p->text, i).s);
}

/* Replace the current token by the next one. */
static int lex(struct parser *p)
{
    const char *s = p->text;
    struct token *t = &p->tok;
    size_t i;
    int ret;

    drop_token(t);
    while (s[p->pos] == ' ' || s[p->pos] == '\t' || s[p->pos] == '\n' || s[p->pos] == '\r')
        p->pos++;
    i = p->pos;
    t->off = i;
    t->len = 1;
    if (!s[i]) {
        t->kind = T_END;
        t->len = 0;
        return 0;
    }
    if (s[i] == '(' || s[i] == ')') {
        t->kind = s[i] == '(' ? T_LPAREN : T_RPAREN;
        ret = 0;
    } else if (s[i] == '\'' || s[i] == '"') {
        ret = lex_string(p, i, t);
    } else if (s[i] == '-' || is_digit(s[i])) {
        ret = lex_number(p, i, t);
    } else if (s[i] == '{' && s[i + 1] == '{') {
        size_t end = i;
        ret = tpl_ref_parse(s, &end, &t->ref, p->err);
        t->kind = T_REF;
        t->len = end - i;
    } else if ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_') {
        ret = lex_word(p, i, t);
    } else {
        ret = lex_other(p, i, t);
    }
    p->pos = i + t->len;
    return ret;
}

static struct node *new_node(enum node_kind kind)
{
    struct node *n = xcalloc(1, sizeof(*n));

    n->kind = kind;
    return n;
}

static void add_kid(struct node *n, struct node *kid)
{
    n->kids = xreallocarray(n->kids, n->nkids + 1, sizeof(*n->kids));
    n->kids[n->nkids++] = kid;
}

static void node_free(struct node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    json_decref(n->value);
    free(n);
}

/* The current token's text for a message, at most 32 bytes of it. */
static struct note token_text(const struct parser *p)
{
    struct note n;
    int len = (int)(p->tok.len < 32 ? p->tok.len : 32);

    snprintf(n.s, sizeof(n.s), "'%.*s%s'", len, p->text + p->tok.off, p->tok.len > 32 ? "..." : "");
    return n;
}

/*
 * The parse_* functions follow one rule: on success *out is the new subtree;
 * on failure they have freed what they built and *out is untouched.
 */
static int parse_bool(struct parser *p, enum tok_kind op, struct node **out);

/* A "(" or "not" (the current token) goes one level deeper. */
static int deeper(struct parser *p)
{
    if (++p->depth > EXPR_MAX_DEPTH)
        return err_set(p->err, ERR_INVALID, "expression nested deeper than %d levels at %s",
                       EXPR_MAX_DEPTH, tpl_where(p->text, p->tok.off).s);
    return 0;
}

static int parse_operand(struct parser *p, struct node **out)
{
    struct token *t = &p->tok;
    struct node *n = NULL;
    size_t open = t->off;
    int ret = 0;

    if (t->kind == T_VALUE) {
        n = new_node(N_LIT);
        n->value = t->value;
        t->value = NULL;
    } else if (t->kind == T_REF) {
        XGROW(p->e->refs, p->e->arefs, p->e->nrefs + 1);
        p->e->refs[p->e->nrefs] = t->ref;
        memset(&t->ref, 0, sizeof(t->ref));
        n = new_node(N_REF);
        n->ref = p->e->nrefs++;
    } else if (t->kind == T_LPAREN) {
        ret = deeper(p);
        if (!ret)
            ret = lex(p);
        if (!ret)
            ret = parse_bool(p, T_OR, &n);
        if (!ret && t->kind != T_RPAREN)
            ret = err_set(p->err, ERR_INVALID, "expected ')' at %s to close '(' at %s",
                          tpl_where(p->text, t->off).s, tpl_where(p->text, open).s);
        p->depth--;
    } else if (t->kind == T_END) {
        return err_set(p->err, ERR_INVALID, "expected an operand at %s",
                       tpl_where(p->text, t->off).s);
    } else {
        return err_set(p->err, ERR_INVALID, "expected an operand at %s, found %s",
                       tpl_where(p->text, t->off).s, token_text(p).s);
    }
    if (!ret)
        ret = lex(p);
    if (ret) {
        node_free(n);
        return ret;
    }
    *out = n;
    return 0;
}

static int parse_unary(struct parser *p, struct node **out)
{
    struct node *kid = NULL;
    int ret;

    if (p->tok.kind != T_NOT)
        return parse_operand(p, out);
    ret = deeper(p);
    if (!ret)
        ret = lex(p);
    if (!ret)
        ret = parse_unary(p, &kid);
    p->depth--;
    if (ret)
        return ret;
    *out = new_node(N_NOT);
    add_kid(*out, kid);
    return 0;
}

static int parse_cmp(struct parser *p, struct node **out)
{
    struct node *n, *kid = NULL;
    int ret = parse_unary(p, &kid);

    if (ret)
        return ret;
    if (p->tok.kind != T_CMP) {
        *out = kid;
        return 0;
    }
    n = new_node(N_CMP);
    n->op = p->tok.op;
    add_kid(n, kid);
    kid = NULL;
    ret = lex(p);
    if (!ret)
        ret = parse_unary(p, &kid);
    if (!ret && p->tok.kind == T_CMP)
        ret = err_set(p->err, ERR_INVALID,
                      "unexpected '%s' at %s (comparisons do not chain; combine them with 'and')",
                      cmp_names[p->tok.op], tpl_where(p->text, p->tok.off).s);
    if (kid)
        add_kid(n, kid);
    if (ret) {
        node_free(n);
        return ret;
    }
    *out = n;
    return 0;
}

/* A chain of operands joined by `op` (T_OR or T_AND): one node with n operands. */
static int parse_bool(struct parser *p, enum tok_kind op, struct node **out)
{
    struct node *n = NULL, *kid = NULL;
    int ret = op == T_OR ? parse_bool(p, T_AND, &kid) : parse_cmp(p, &kid);

    if (ret)
        return ret;
    while (!ret && p->tok.kind == op) {
        if (!n) {
            n = new_node(op == T_OR ? N_OR : N_AND);
            add_kid(n, kid);
        }
        kid = NULL;
        ret = lex(p);
        if (!ret)
            ret = op == T_OR ? parse_bool(p, T_AND, &kid) : parse_cmp(p, &kid);
        if (!ret)
            add_kid(n, kid);
    }
    if (ret) {
        node_free(n);
        return ret;
    }
    *out = n ? n : kid;
    return 0;
}

int expr_parse(const char *text, struct expr **out, struct err *err)
{
    struct parser p = {text, 0, 0, {0}, NULL, err};
    int ret;

    *out = NULL;
    if (strnlen(text, EXPR_MAX_LEN + 1) > EXPR_MAX_LEN)
        return err_set(err, ERR_TOO_BIG, "expression longer than %d bytes", EXPR_MAX_LEN);
    p.e = xcalloc(1, sizeof(*p.e));
    ret = lex(&p);
    if (!ret && p.tok.kind == T_END)
        ret = err_set(err, ERR_INVALID, "empty expression");
    if (!ret)
        ret = parse_bool(&p, T_OR, &p.e->root);
    if (!ret && p.tok.kind != T_END)
        ret = err_set(err, ERR_INVALID, "unexpected %s at %s", token_text(&p).s,
                      tpl_where(text, p.tok.off).s);
    drop_token(&p.tok);
    if (ret) {
        expr_free(p.e);
        return ret;
    }
    *out = p.e;
    return 0;
}

void expr_free(struct expr *e)
{
    if (!e)
        return;
    node_free(e->root);
    for (size_t i = 0; i < e->nrefs; i++)
        tpl_ref_release(&e->refs[i]);
    free(e->refs);
    free(e);
}

size_t expr_nrefs(const struct expr *e)
{
    return e->nrefs;
}

const struct tpl_ref *expr_ref_at(const struct expr *e, size_t i)
{
    if (i >= e->nrefs)
        BUG("expr_ref_at(%zu) of %zu refs", i, e->nrefs);
    return &e->refs[i];
}

/* JSON text of a value cut at a few dozen bytes, for messages. */
struct clip {
    char buf[48];
    size_t len;
    int cut;
};

static int clip_add(const char *s, size_t n, void *data)
{
    struct clip *c = data;
    size_t room = 40 - c->len;

    if (n > room) {
        /* Do not end in the middle of a UTF-8 sequence. */
        while (room > 0 && ((unsigned char)s[room] & 0xc0) == 0x80)
            room--;
        c->cut = 1;
    }
    memcpy(c->buf + c->len, s, n < room ? n : room);
    c->len += n < room ? n : room;
    c->buf[c->len] = '\0';
    return c->cut ? -1 : 0;
}

/* 'string "x"', "number 3", "boolean true", "null", "array [1,2]", then " from PATH" for a ref. */
static struct note describe(const struct expr *e, const struct node *n, const json_t *v)
{
    static const char *const kinds[] = {"object ", "array ",   "string ",  "number ",
                                        "number ", "boolean ", "boolean ", ""};
    struct clip c = {{0}, 0, 0};
    struct note out;

    if (json_is_real(v))
        snprintf(c.buf, sizeof(c.buf), "%.15g", json_real_value(v));
    else
        json_dump_callback(v, clip_add, &c, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(out.s, sizeof(out.s), "%s%s%s%s%s", kinds[json_typeof(v)], c.buf, c.cut ? "..." : "",
             n->kind == N_REF ? " from " : "", n->kind == N_REF ? e->refs[n->ref].path : "");
    return out;
}

/* -1, 0 or 1 as a < b, a == b, a > b for two JSON numbers, exactly. */
static int num_cmp(const json_t *a, const json_t *b)
{
    json_int_t i, t;
    double r;
    int sign = 1;

    if (json_is_integer(a) && json_is_integer(b)) {
        i = json_integer_value(a);
        t = json_integer_value(b);
        return (i > t) - (i < t);
    }
    if (json_is_real(a) && json_is_real(b)) {
        r = json_real_value(a);
        return (r > json_real_value(b)) - (r < json_real_value(b));
    }
    /* An integer and a real: compare without rounding the integer to a double. */
    if (json_is_real(a)) {
        const json_t *tmp = a;
        a = b;
        b = tmp;
        sign = -1;
    }
    i = json_integer_value(a);
    r = json_real_value(b);
    if (r < -9223372036854775808.0)
        return sign;
    if (r >= 9223372036854775808.0)
        return -sign;
    t = (json_int_t)r; /* truncated toward zero, in range */
    if (i != t)
        return i > t ? sign : -sign;
    return (double)t < r ? -sign : (double)t > r ? sign : 0;
}

static int str_cmp(const json_t *a, const json_t *b)
{
    size_t la = json_string_length(a), lb = json_string_length(b);
    int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);

    return c ? (c > 0) - (c < 0) : (la > lb) - (la < lb);
}

/* 1 if equal, 0 if not, -1 if nested deeper than EQUAL_MAX_DEPTH. */
static int equal(const json_t *a, const json_t *b, int depth)
{
    const char *key;
    size_t key_len, i;
    json_t *v;
    int r;

    if (depth > EQUAL_MAX_DEPTH)
        return -1;
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(a, b) == 0;
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return str_cmp(a, b) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (i = 0; i < json_array_size(a); i++) {
            r = equal(json_array_get(a, i), json_array_get(b, i), depth + 1);
            if (r != 1)
                return r;
        }
        return 1;
    case JSON_OBJECT:
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_keylen_foreach((json_t *)a, key, key_len, v)
        {
            const json_t *w = json_object_getn(b, key, key_len);
            r = w ? equal(v, w, depth + 1) : 0;
            if (r != 1)
                return r;
        }
        return 1;
    default:
        return 1; /* true, false, null */
    }
}

static int eval(const struct expr *e, const struct node *n, const json_t *ctx, json_t **out,
                struct err *err);

static int eval_cmp(const struct expr *e, const struct node *n, const json_t *ctx, json_t **out,
                    struct err *err)
{
    json_t *a, *b;
    int c, ret = eval(e, n->kids[0], ctx, &a, err);

    if (!ret)
        ret = eval(e, n->kids[1], ctx, &b, err);
    if (ret)
        return ret;
    if (n->op == CMP_EQ || n->op == CMP_NE) {
        c = equal(a, b, 0);
        if (c < 0)
            return err_set(err, ERR_INVALID, "'%s': values nested too deeply to compare",
                           cmp_names[n->op]);
        *out = json_boolean(n->op == CMP_EQ ? c : !c);
        return 0;
    }
    if (json_is_number(a) && json_is_number(b))
        c = num_cmp(a, b);
    else if (json_is_string(a) && json_is_string(b))
        c = str_cmp(a, b);
    else
        return err_set(err, ERR_INVALID, "'%s' needs two numbers or two strings, got %s and %s",
                       cmp_names[n->op], describe(e, n->kids[0], a).s,
                       describe(e, n->kids[1], b).s);
    *out = json_boolean(n->op == CMP_LT   ? c < 0
                        : n->op == CMP_LE ? c <= 0
                        : n->op == CMP_GT ? c > 0
                                          : c >= 0);
    return 0;
}

/* *out is borrowed (see the top of this file). */
static int eval(const struct expr *e, const struct node *n, const json_t *ctx, json_t **out,
                struct err *err)
{
    json_t *v;
    int ret;

    switch (n->kind) {
    case N_LIT:
        *out = n->value;
        return 0;
    case N_REF:
        return tpl_ref_lookup(&e->refs[n->ref], ctx, out, err);
    case N_CMP:
        return eval_cmp(e, n, ctx, out, err);
    case N_NOT:
        ret = eval(e, n->kids[0], ctx, &v, err);
        if (!ret && !json_is_boolean(v))
            ret = err_set(err, ERR_INVALID, "'not' needs a boolean, got %s",
                          describe(e, n->kids[0], v).s);
        if (!ret)
            *out = json_boolean(json_is_false(v));
        return ret;
    case N_AND:
    case N_OR:
        for (size_t i = 0; i < n->nkids; i++) {
            ret = eval(e, n->kids[i], ctx, &v, err);
            if (!ret && !json_is_boolean(v))
                ret = err_set(err, ERR_INVALID, "'%s' needs booleans, got %s",
                              n->kind == N_AND ? "and" : "or", describe(e, n->kids[i], v).s);
            if (ret)
                return ret;
            /* Stop at the first operand that decides: false for and, true for or. */
            if (json_is_true(v) == (n->kind == N_OR)) {
                *out = v;
                return 0;
            }
        }
        *out = json_boolean(n->kind == N_AND);
        return 0;
    }
    BUG("unknown expression node %d", (int)n->kind);
}

int expr_eval(const struct expr *e, const json_t *ctx, int *out_bool, struct err *err)
{
    json_t *v;
    int ret = eval(e, e->root, ctx, &v, err);

    *out_bool = 0;
    if (ret)
        return ret;
    if (!json_is_boolean(v))
        return err_set(err, ERR_INVALID, "the condition must give a boolean, got %s",
                       describe(e, e->root, v).s);
    *out_bool = json_is_true(v);
    return 0;
}
