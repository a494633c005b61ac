/*
 * dag_problem.c - recording validation problems: JSON paths, safe message
 * text, and "did you mean" suggestions.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag.h"
#include "dag_internal.h"

#include "base/banned.h"

size_t dag__qlen(const char *s)
{
    size_t n = strnlen(s, DAG__QUOTE_MAX + 1);

    if (n <= DAG__QUOTE_MAX)
        return n;
    n = DAG__QUOTE_MAX;
    /* s[n] is the first byte left out: never cut a UTF-8 sequence in two. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

const char *dag__qell(const char *s)
{
    return strnlen(s, DAG__QUOTE_MAX + 1) > DAG__QUOTE_MAX ? "..." : "";
}

static int is_ident_key(const char *key)
{
    const unsigned char *s = (const unsigned char *)key;
    size_t i;

    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (i = 1; s[i]; i++) {
        if (i > DAG__QUOTE_MAX)
            return 0;
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    }
    return 1;
}

/* "$", then ".key", "[3]" or ["odd key"] for each segment from the root down. */
static void path_render(struct strbuf *sb, const struct dag__path *at)
{
    if (!at) {
        strbuf_addch(sb, '$');
        return;
    }
    path_render(sb, at->up);
    if (!at->key)
        strbuf_addf(sb, "[%zu]", at->index);
    else
        dag__path_add_key(sb, at->key);
}

void dag__path_add_key(struct strbuf *sb, const char *key)
{
    if (is_ident_key(key)) {
        strbuf_addch(sb, '.');
        strbuf_adds(sb, key);
    } else {
        char *cut = xstrndup(key, dag__qlen(key));
        strbuf_addch(sb, '[');
        strbuf_add_json_str(sb, cut);
        strbuf_adds(sb, dag__qell(key));
        strbuf_addch(sb, ']');
        free(cut);
    }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4;
    else
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL terminator */
            return 0;
    }
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

/* A heap copy of `s` fit for a terminal or a JSON string. */
static char *clean_text(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    struct strbuf sb = STRBUF_INIT;

    while (*u) {
        size_t n = utf8_len(u);
        if (n == 0) {
            strbuf_addch(&sb, '?');
            u++;
        } else if (n == 1 && (*u < 0x20 || *u == 0x7F)) {
            if (*u == '\n')
                strbuf_adds(&sb, "\\n");
            else if (*u == '\t')
                strbuf_adds(&sb, "\\t");
            else if (*u == '\r')
                strbuf_adds(&sb, "\\r");
            else
                strbuf_addf(&sb, "\\x%02x", *u);
            u++;
        } else {
            strbuf_add(&sb, u, n);
            u += n;
        }
    }
    return strbuf_detach(&sb, NULL);
}

int dag__problems_full(const struct dag__parser *p)
{
    return p->probs->n >= DAG_MAX_PROBLEMS;
}

void dag__problem(struct dag__parser *p, const struct dag__path *at, int line, int column,
                  const char *fmt, ...)
{
    struct dag_problems *probs = p->probs;
    struct strbuf msg = STRBUF_INIT;
    struct strbuf path = STRBUF_INIT;
    struct dag_problem *it;
    va_list ap;

    p->nproblems++;
    if (dag__problems_full(p)) {
        probs->dropped++;
        return;
    }
    va_start(ap, fmt);
    strbuf_vaddf(&msg, fmt, ap);
    va_end(ap);
    path_render(&path, at);

    XGROW(probs->items, probs->alloc, probs->n + 1);
    it = &probs->items[probs->n++];
    it->path = clean_text(path.buf);
    it->message = clean_text(msg.buf);
    it->line = line > 0 ? line : 0;
    it->column = column > 0 ? column : 0;

    strbuf_release(&path);
    strbuf_release(&msg);
}

/*
 * Optimal string alignment distance between a[0..la) and b[0..lb) (both at
 * most DAG__SUGGEST_MAX_LEN), or limit + 1 as soon as it must exceed
 * `limit`: the minimum of a row never decreases from one row to the next.
 */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb, size_t limit)
{
    size_t rows[3][DAG__SUGGEST_MAX_LEN + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    size_t i, j;

    for (j = 0; j <= lb; j++)
        prev[j] = j;
    for (i = 1; i <= la; i++) {
        size_t rowmin;
        cur[0] = i;
        rowmin = i;
        for (j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t d = prev[j - 1] + cost;
            if (prev[j] + 1 < d)
                d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
            if (d < rowmin)
                rowmin = d;
        }
        if (rowmin > limit)
            return limit + 1;
        {
            size_t *tmp = prev2;
            prev2 = prev;
            prev = cur;
            cur = tmp;
        }
    }
    return prev[lb] <= limit ? prev[lb] : limit + 1;
}

const char *dag__suggest(struct dag__parser *p, const char *word, const char *const *cands,
                         size_t n, const char *exclude)
{
    size_t lw = strnlen(word, DAG__SUGGEST_MAX_LEN + 1);
    const char *best = NULL;
    size_t bestd = 0;
    size_t i;

    if (lw > DAG__SUGGEST_MAX_LEN)
        return NULL;
    for (i = 0; i < n; i++) {
        const char *c = cands[i];
        size_t lc, limit, d, cost;

        if (!c || c == exclude)
            continue;
        lc = strnlen(c, DAG__SUGGEST_MAX_LEN + 1);
        if (lc > DAG__SUGGEST_MAX_LEN)
            continue;
        /* Close relative to the length: a third of the longer name, at most 3 edits. */
        limit = (lw > lc ? lw : lc) / 3;
        if (limit > 3)
            limit = 3;
        if (best && bestd - 1 < limit)
            limit = bestd - 1; /* only a strictly nearer name can win */
        if (limit == 0)
            continue;
        if ((lw > lc ? lw - lc : lc - lw) > limit)
            continue;
        cost = (lw ? lw : 1) * (lc ? lc : 1);
        if (cost > p->suggest_budget)
            break;
        p->suggest_budget -= cost;
        d = edit_distance(word, lw, c, lc, limit);
        if (d == 0 || d > limit)
            continue;
        best = c;
        bestd = d;
        if (d == 1)
            break;
    }
    return best;
}

const char *dag_suggest(const char *word, const char *const *cands, size_t n)
{
    struct dag__parser p;
    memset(&p, 0, sizeof(p));
    p.suggest_budget = DAG__SUGGEST_BUDGET;
    return dag__suggest(&p, word, cands, n, NULL);
}
