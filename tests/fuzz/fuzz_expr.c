/*
 * fuzz_expr.c - libFuzzer target for templates (dag/template.h) and
 * condition expressions (dag/expr.h).
 *
 * The input (text, so the seed corpus stays readable) is parsed both as a
 * template and as an expression; what parses is rendered, raw and
 * shell-quoted, or evaluated against a fixed context. Checked: a failure has
 * a code and a message and leaves the output NULL; each ref has a path that
 * is the text at its column; parsing is deterministic; a condition gives 0
 * or 1. The input is also used as a value: its shell-quoted form must read
 * back as exactly that value, and its URL-encoded form must hold only
 * unreserved characters and %XX escapes that decode back to it (a value
 * "." or ".." wholly escaped). Everything is freed, so LeakSanitizer sees any
 * leak on any path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dag/expr.h"
#include "dag/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ctx_text[] =
    "{\"params\": {\"region\": \"eu-west\", \"count\": 3, \"ratio\": 0.5, \"flag\": true,"
    "  \"q\": \"it's $(x) `y`\", \"obj\": {\"a\": [1, 2.5, {\"b\": null}], \"c\": \"d\"}},"
    " \"tasks\": {\"extract\": {\"output\": {\"files\": [{\"path\": \"/a\"}, {\"path\": \"/b\"}],"
    "   \"count\": 2}}, \"t\": {\"output\": [[1, 2], [3]]}},"
    " \"execution\": {\"id\": \"e1\"}, \"scheduledFor\": \"2024-01-01T00:00:00Z\","
    " \"item\": {\"id\": 7, \"tags\": [\"a\", \"b\"]}, \"index\": 0}";

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_failure(int rc, const struct err *err)
{
    check(rc < 0 && err->code == rc && err->msg[0] != '\0');
}

static void check_ref(const struct tpl_ref *r, const char *text)
{
    size_t len = strlen(text);

    check(r->path != NULL && r->path[0] != '\0');
    check(r->column >= 1 && r->column <= len);
    check(!strncmp(text + r->column - 1, r->path, strlen(r->path)));
    check(!strncmp(r->path, tpl_root_name(r->root), strlen(tpl_root_name(r->root))));
    check((r->name != NULL) == (r->root == TPL_PARAMS || r->root == TPL_TASKS));
}

static void fuzz_template(const char *text, const json_t *ctx)
{
    struct err err = ERR_INIT;
    struct tpl *t = NULL, *again = NULL;
    char *out = NULL;
    json_t *v = NULL;
    int rc;

    rc = tpl_parse(text, &t, &err);
    check((rc == 0) == (tpl_parse(text, &again, NULL) == 0));
    if (rc) {
        check(t == NULL && again == NULL);
        check_failure(rc, &err);
        return;
    }
    check(tpl_nrefs(t) == tpl_nrefs(again));
    tpl_free(again);
    for (size_t i = 0; i < tpl_nrefs(t); i++)
        check_ref(tpl_ref_at(t, i), text);
    for (int q = TPL_RAW; q <= TPL_URL; q++) {
        rc = tpl_render(t, ctx, (enum tpl_quote)q, &out, &err);
        if (rc)
            check(out == NULL);
        else
            check(out != NULL);
        free(out);
    }
    rc = tpl_eval_json(t, ctx, &v, &err);
    check((rc == 0) == (v != NULL));
    json_decref(v);
    tpl_free(t);
}

static void fuzz_expr(const char *text, const json_t *ctx)
{
    struct err err = ERR_INIT;
    struct expr *e = NULL;
    int rc, b = -1;

    rc = expr_parse(text, &e, &err);
    if (rc) {
        check(e == NULL);
        check_failure(rc, &err);
        return;
    }
    for (size_t i = 0; i < expr_nrefs(e); i++)
        check_ref(expr_ref_at(e, i), text);
    rc = expr_eval(e, ctx, &b, &err);
    if (rc) {
        check(b == 0);
        check_failure(rc, &err);
    } else {
        check(b == 0 || b == 1);
    }
    expr_free(e);
}

/* Undo POSIX sh single quoting ('...' words joined by \'); abort on anything else. */
static void check_unquotes_to(const char *quoted, const char *value, size_t len)
{
    size_t i = 0, k = 0;

    while (quoted[i]) {
        if (quoted[i] == '\\' && quoted[i + 1] == '\'') {
            check(k < len && value[k++] == '\'');
            i += 2;
            continue;
        }
        check(quoted[i++] == '\'');
        while (quoted[i] && quoted[i] != '\'')
            check(k < len && value[k++] == quoted[i++]);
        check(quoted[i++] == '\'');
    }
    check(k == len);
}

/*
 * Render the input as the value of params.v in "x={{ params.v }}" with
 * `quote`. A value holding a NUL byte must be refused; any other must render
 * (or be too big). Returns the rendered text (free()), or NULL when there is
 * nothing more to check.
 */
static char *render_value(const uint8_t *data, size_t size, enum tpl_quote quote)
{
    struct err err = ERR_INIT;
    struct tpl *t = NULL;
    json_t *c =
        json_pack("{s:{s:o}}", "params", "v", json_stringn_nocheck((const char *)data, size));
    char *out = NULL;
    int rc;

    check(c != NULL);
    check(tpl_parse("x={{ params.v }}", &t, &err) == 0);
    rc = tpl_render(t, c, quote, &out, &err);
    tpl_free(t);
    json_decref(c);
    if (memchr(data, '\0', size)) {
        check(rc == ERR_INVALID && out == NULL);
        return NULL;
    }
    if (rc) {
        check(rc == ERR_TOO_BIG && out == NULL);
        return NULL;
    }
    check(!strncmp(out, "x=", 2));
    return out;
}

static void fuzz_shell_value(const uint8_t *data, size_t size)
{
    char *out = render_value(data, size, TPL_SHELL);
    if (out)
        check_unquotes_to(out + 2, (const char *)data, size);
    free(out);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void fuzz_url_value(const uint8_t *data, size_t size)
{
    char *out = render_value(data, size, TPL_URL);
    size_t k = 0;

    if (!out)
        return;
    for (const char *p = out + 2; *p; k++) {
        if (*p == '%') {
            check(hexval(p[1]) >= 0 && hexval(p[2]) >= 0);
            check(k < size && data[k] == (uint8_t)(hexval(p[1]) * 16 + hexval(p[2])));
            p += 3;
        } else {
            check((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= '0' && *p <= '9') || strchr("-._~", *p));
            check(!(size == 1 && *p == '.') && !(size == 2 && *p == '.' && p[1] == '.'));
            check(k < size && data[k] == (uint8_t)*p);
            p++;
        }
    }
    check(k == size);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *ctx;
    char *text;

    if (!ctx) {
        ctx = json_loads(ctx_text, 0, NULL);
        check(ctx != NULL);
    }
    text = malloc(size + 1);
    check(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    fuzz_template(text, ctx);
    fuzz_expr(text, ctx);
    fuzz_shell_value(data, size);
    fuzz_url_value(data, size);
    free(text);
    return 0;
}
