/*
 * Unit tests for src/dag/template.c and src/dag/expr.c: placeholder syntax,
 * rendering (raw and shell-quoted), JSON evaluation, condition expressions,
 * every error message, and the limits on hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <jansson.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "dag/expr.h"
#include "dag/template.h"

static const char ctx_json[] =
    "{\"params\": {\"region\": \"eu-west\", \"count\": 3, \"ratio\": 0.1, \"two\": 2.0,"
    "  \"flag\": true, \"off\": false, \"empty\": \"\", \"nothing\": null,"
    "  \"obj\": {\"a\": [1, 2, {\"b\": \"deep\"}]},"
    "  \"o1\": {\"x\": 1, \"y\": [1, \"a\", null, true]},"
    "  \"o2\": {\"y\": [1.0, \"a\", null, true], \"x\": 1.0},"
    "  \"o3\": {\"x\": 1, \"y\": [1, \"a\", null, false]},"
    "  \"o4\": {\"x\": 1}, \"o5\": {\"z\": 1}, \"a1\": [1, 2], \"a2\": [2, 1],"
    "  \"nul\": \"a\\u0000b\", \"utf8\": \"h\\u00e9llo\"},"
    " \"tasks\": {\"extract\": {\"output\": {\"files\": [{\"path\": \"/tmp/a.csv\", \"size\": 10},"
    "    {\"path\": \"/tmp/b.csv\", \"size\": 20}], \"count\": 2, \"name\": \"ex\"}},"
    "  \"noout\": {}},"
    " \"execution\": {\"id\": \"exec-123\"},"
    " \"scheduledFor\": \"2024-01-01T00:00:00Z\","
    " \"item\": {\"id\": 7, \"tags\": [\"a\", \"b\"]},"
    " \"index\": 4}";

static json_t *ctx;

static int setup(void **state)
{
    json_error_t jerr;

    (void)state;
    ctx = json_loads(ctx_json, JSON_ALLOW_NUL, &jerr);
    if (!ctx)
        print_error("context: %s\n", jerr.text);
    return ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    json_decref(ctx);
    return 0;
}

/* ---- helpers ---- */

static void check_render_in(const json_t *c, const char *text, enum tpl_quote q, const char *want)
{
    struct err err = ERR_INIT;
    struct tpl *t = NULL;
    char *out = (char *)&err;

    if (tpl_parse(text, &t, &err))
        fail_msg("tpl_parse(%s): %s", text, err.msg);
    if (tpl_render(t, c, q, &out, &err))
        fail_msg("tpl_render(%s): %s", text, err.msg);
    assert_string_equal(out, want);
    assert_int_equal(err.code, 0);
    free(out);
    tpl_free(t);
}

static void check_render(const char *text, enum tpl_quote q, const char *want)
{
    check_render_in(ctx, text, q, want);
}

static void check_tpl_error(const char *text, const char *want)
{
    struct err err = ERR_INIT;
    struct tpl *t = (struct tpl *)&err;

    assert_int_equal(tpl_parse(text, &t, &err), ERR_INVALID);
    assert_null(t);
    assert_int_equal(err.code, ERR_INVALID);
    assert_string_equal(err.msg, want);
}

static void check_render_error_in(const json_t *c, const char *text, int code, const char *want)
{
    struct err err = ERR_INIT;
    struct tpl *t = NULL;
    char *out = (char *)&err;

    if (tpl_parse(text, &t, &err))
        fail_msg("tpl_parse(%s): %s", text, err.msg);
    assert_int_equal(tpl_render(t, c, TPL_RAW, &out, &err), code);
    assert_null(out);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, want);
    tpl_free(t);
}

static void check_render_error(const char *text, int code, const char *want)
{
    check_render_error_in(ctx, text, code, want);
}

static int eval_in(const json_t *c, const char *text)
{
    struct err err = ERR_INIT;
    struct expr *e = NULL;
    int b = -1;

    if (expr_parse(text, &e, &err))
        fail_msg("expr_parse(%s): %s", text, err.msg);
    if (expr_eval(e, c, &b, &err))
        fail_msg("expr_eval(%s): %s", text, err.msg);
    assert_true(b == 0 || b == 1);
    expr_free(e);
    return b;
}

#define assert_expr_true(text)  assert_int_equal(eval_in(ctx, (text)), 1)
#define assert_expr_false(text) assert_int_equal(eval_in(ctx, (text)), 0)

static void check_parse_error(const char *text, int code, const char *want)
{
    struct err err = ERR_INIT;
    struct expr *e = (struct expr *)&err;

    assert_int_equal(expr_parse(text, &e, &err), code);
    assert_null(e);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, want);
}

static void check_eval_error_in(const json_t *c, const char *text, int code, const char *want)
{
    struct err err = ERR_INIT;
    struct expr *e = NULL;
    int b = -1;

    if (expr_parse(text, &e, &err))
        fail_msg("expr_parse(%s): %s", text, err.msg);
    assert_int_equal(expr_eval(e, c, &b, &err), code);
    assert_int_equal(b, 0);
    assert_int_equal(err.code, code);
    assert_string_equal(err.msg, want);
    expr_free(e);
}

static void check_eval_error(const char *text, int code, const char *want)
{
    check_eval_error_in(ctx, text, code, want);
}

static char *repeat(const char *s, size_t n, const char *tail)
{
    size_t len = strlen(s);
    char *out = xmalloc(len * n + strlen(tail) + 1);

    for (size_t i = 0; i < n; i++)
        memcpy(out + i * len, s, len);
    memcpy(out + len * n, tail, strlen(tail) + 1);
    return out;
}

/* ---- templates: syntax ---- */

static void test_tpl_plain_text(void **state)
{
    struct tpl *t;

    (void)state;
    check_render("", TPL_RAW, "");
    check_render("echo hello", TPL_RAW, "echo hello");
    check_render("echo hello", TPL_SHELL, "echo hello");
    check_render("a { b } c }} d {x{", TPL_RAW, "a { b } c }} d {x{");
    assert_int_equal(tpl_parse("no refs", &t, NULL), 0);
    assert_int_equal(tpl_nrefs(t), 0);
    tpl_free(t);
}

static void test_tpl_whitespace(void **state)
{
    (void)state;
    check_render("{{params.region}}", TPL_RAW, "eu-west");
    check_render("{{ params.region }}", TPL_RAW, "eu-west");
    check_render("{{\tparams.region\t}}", TPL_RAW, "eu-west");
    check_render("{{   params.region}}", TPL_RAW, "eu-west");
    check_render("{{\n  params.region\r\n}}", TPL_RAW, "eu-west");
    check_render(" {{params.region}} ", TPL_RAW, " eu-west ");
}

static void test_tpl_all_roots(void **state)
{
    (void)state;
    check_render("{{ params.count }}", TPL_RAW, "3");
    check_render("{{ tasks.extract.output.name }}", TPL_RAW, "ex");
    check_render("{{ execution.id }}", TPL_RAW, "exec-123");
    check_render("{{ scheduledFor }}", TPL_RAW, "2024-01-01T00:00:00Z");
    check_render("{{ item }}", TPL_RAW, "{\"id\":7,\"tags\":[\"a\",\"b\"]}");
    check_render("{{ item.id }}", TPL_RAW, "7");
    check_render("{{ index }}", TPL_RAW, "4");
}

static void test_tpl_fields_and_indexes(void **state)
{
    (void)state;
    check_render("{{ tasks.extract.output.files[0].path }}", TPL_RAW, "/tmp/a.csv");
    check_render("{{ tasks.extract.output.files[1].size }}", TPL_RAW, "20");
    check_render("{{ params.obj.a[2].b }}", TPL_RAW, "deep");
    check_render("{{ params.obj.a[0] }}", TPL_RAW, "1");
    check_render("{{ item.tags[1] }}", TPL_RAW, "b");
    check_render("{{ tasks.extract.output }}", TPL_RAW,
                 "{\"files\":[{\"path\":\"/tmp/a.csv\",\"size\":10},{\"path\":\"/tmp/b.csv\","
                 "\"size\":20}],\"count\":2,\"name\":\"ex\"}");
}

static void test_tpl_nested_indexes_and_names(void **state)
{
    json_t *c = json_pack("{s:{s:[[i,i],[i,{s:s}]], s:s, s:s}}", "params", "m", 1, 2, 3, "_k-1",
                          "v", "my-param", "dash", "_under", "score");

    (void)state;
    check_render_in(c, "{{ params.m[1][0] }}", TPL_RAW, "3");
    check_render_in(c, "{{ params.m[1][1]._k-1 }}", TPL_RAW, "v");
    check_render_in(c, "{{ params.my-param }}", TPL_RAW, "dash");
    check_render_in(c, "{{ params._under }}", TPL_RAW, "score");
    check_render_in(c, "{{ params.m[000000001][0] }}", TPL_RAW, "3");
    json_decref(c);
}

static void test_tpl_value_kinds(void **state)
{
    (void)state;
    check_render("{{ params.region }}", TPL_RAW, "eu-west");
    check_render("{{ params.count }}", TPL_RAW, "3");
    check_render("{{ params.ratio }}", TPL_RAW, "0.1");
    check_render("{{ params.two }}", TPL_RAW, "2.0");
    check_render("{{ params.flag }}/{{ params.off }}", TPL_RAW, "true/false");
    check_render("{{ params.nothing }}", TPL_RAW, "null");
    check_render("[{{ params.empty }}]", TPL_RAW, "[]");
    check_render("{{ params.obj }}", TPL_RAW, "{\"a\":[1,2,{\"b\":\"deep\"}]}");
    check_render("{{ params.a1 }}", TPL_RAW, "[1,2]");
    check_render("{{ params.utf8 }}", TPL_RAW, "h\xc3\xa9llo");
}

static void test_tpl_reals(void **state)
{
    json_t *c = json_pack("{s:{s:f,s:f,s:f,s:f,s:f}}", "params", "a", 1e300, "b", -0.5, "c",
                          0.30000000000000004, "d", 123456789.0, "e", -0.0);

    (void)state;
    check_render_in(c, "{{ params.a }}", TPL_RAW, "1e+300");
    check_render_in(c, "{{ params.b }}", TPL_RAW, "-0.5");
    check_render_in(c, "{{ params.c }}", TPL_RAW, "0.30000000000000004");
    check_render_in(c, "{{ params.d }}", TPL_RAW, "123456789.0");
    check_render_in(c, "{{ params.e }}", TPL_RAW, "-0.0");
    json_decref(c);
}

static void test_tpl_literal_braces(void **state)
{
    (void)state;
    check_render("{{ '{{' }}", TPL_RAW, "{{");
    check_render("{{'{{'}} x {{ '}}' }}", TPL_RAW, "{{ x }}");
    check_render("{{ '{{' }} params.region }}", TPL_RAW, "{{ params.region }}");
    check_render("{{ '' }}", TPL_RAW, "");
    /* Author text, not a value: not quoted in shell mode. */
    check_render("echo {{ '{{' }}{{ params.count }}", TPL_SHELL, "echo {{'3'");
}

static void test_tpl_multiple(void **state)
{
    (void)state;
    check_render("cp {{ tasks.extract.output.files[0].path }} /out/{{params.region}}/"
                 "{{ execution.id }}-{{ index }}.csv",
                 TPL_RAW, "cp /tmp/a.csv /out/eu-west/exec-123-4.csv");
    check_render("{{params.count}}{{params.count}}", TPL_RAW, "33");
}

static void test_tpl_refs_list(void **state)
{
    struct err err = ERR_INIT;
    struct tpl *t;
    const struct tpl_ref *r;

    (void)state;
    assert_int_equal(tpl_parse("cp {{ tasks.extract.output.files[0].path }} {{params.region}}/"
                               "{{ execution.id }}-{{ scheduledFor }}-{{ item.tags[1] }}-"
                               "{{ index }}{{ '{{' }}",
                               &t, &err),
                     0);
    assert_int_equal(tpl_nrefs(t), 6);
    r = tpl_ref_at(t, 0);
    assert_int_equal(r->root, TPL_TASKS);
    assert_string_equal(r->name, "extract");
    assert_string_equal(r->path, "tasks.extract.output.files[0].path");
    assert_int_equal(r->column, 7);
    r = tpl_ref_at(t, 1);
    assert_int_equal(r->root, TPL_PARAMS);
    assert_string_equal(r->name, "region");
    assert_string_equal(r->path, "params.region");
    assert_int_equal(r->column, 47);
    r = tpl_ref_at(t, 2);
    assert_int_equal(r->root, TPL_EXECUTION);
    assert_null(r->name);
    assert_string_equal(r->path, "execution.id");
    assert_int_equal(tpl_ref_at(t, 3)->root, TPL_SCHEDULED_FOR);
    assert_null(tpl_ref_at(t, 3)->name);
    assert_int_equal(tpl_ref_at(t, 4)->root, TPL_ITEM);
    assert_string_equal(tpl_ref_at(t, 4)->path, "item.tags[1]");
    assert_int_equal(tpl_ref_at(t, 5)->root, TPL_INDEX);
    assert_string_equal(tpl_ref_at(t, 5)->path, "index");
    tpl_free(t);
    tpl_free(NULL);
    assert_string_equal(tpl_root_name(TPL_SCHEDULED_FOR), "scheduledFor");
    assert_string_equal(tpl_root_name(TPL_PARAMS), "params");
}

static void test_tpl_ref_parse(void **state)
{
    struct err err = ERR_INIT;
    struct tpl_ref ref;
    size_t pos = 2;

    (void)state;
    assert_int_equal(tpl_ref_parse("x {{ params.a[3] }} y", &pos, &ref, &err), 0);
    assert_int_equal(pos, 19);
    assert_int_equal(ref.root, TPL_PARAMS);
    assert_string_equal(ref.name, "a");
    assert_string_equal(ref.path, "params.a[3]");
    assert_int_equal(ref.column, 6);
    tpl_ref_release(&ref);
    assert_null(ref.path);
    /* The quoted literal belongs to templates only. */
    pos = 0;
    assert_int_equal(tpl_ref_parse("{{ '{{' }}", &pos, &ref, &err), ERR_INVALID);
    assert_string_equal(err.msg,
                        "expected a ref at column 4, found ''' (refs look like params.NAME)");
    assert_null(ref.path);
    assert_int_equal(pos, 0);
}

/* ---- templates: syntax errors ---- */

static void test_tpl_err_unclosed(void **state)
{
    (void)state;
    check_tpl_error("echo {{ params.x", "unclosed '{{' at column 6");
    check_tpl_error("{{", "unclosed '{{' at column 1");
    check_tpl_error("{{ params.a }} {{ params.b }", "unclosed '{{' at column 16");
    check_tpl_error("a\nbc {{ x", "unclosed '{{' at line 2, column 4");
}

static void test_tpl_err_empty(void **state)
{
    (void)state;
    check_tpl_error("{{}}", "empty placeholder at column 1");
    check_tpl_error("ab {{  \t }}", "empty placeholder at column 4");
}

static void test_tpl_err_unknown_root(void **state)
{
    (void)state;
    check_tpl_error("{{ param.x }}", "unknown root 'param' at column 4 (known: params, tasks, "
                                     "execution, scheduledFor, item, index)");
    check_tpl_error("x {{Params.x}}", "unknown root 'Params' at column 5 (known: params, tasks, "
                                      "execution, scheduledFor, item, index)");
    check_tpl_error("line one\nx {{ nope }}", "unknown root 'nope' at line 2, column 6 (known: "
                                              "params, tasks, execution, scheduledFor, item, "
                                              "index)");
    check_tpl_error("{{ 1 }}",
                    "expected a ref at column 4, found '1' (refs look like params.NAME)");
    check_tpl_error("{{ .x }}",
                    "expected a ref at column 4, found '.' (refs look like params.NAME)");
}

static void test_tpl_err_shapes(void **state)
{
    (void)state;
    check_tpl_error("{{ params }}", "expected '.NAME' after 'params' at column 10");
    check_tpl_error("{{ params. }}", "expected '.NAME' after 'params' at column 10");
    check_tpl_error("{{ params.1x }}", "expected '.NAME' after 'params' at column 10");
    check_tpl_error("{{ params[0] }}", "expected '.NAME' after 'params' at column 10");
    check_tpl_error("{{ tasks }}", "expected '.NAME' after 'tasks' at column 9");
    check_tpl_error("{{ tasks.a }}", "expected '.output' after 'tasks.a' at column 11");
    check_tpl_error("{{ tasks.a.result }}", "expected '.output' after 'tasks.a' at column 11");
    check_tpl_error("{{ tasks.a.outputs }}", "expected '.output' after 'tasks.a' at column 11");
    check_tpl_error("{{ execution }}", "expected '.id' after 'execution' at column 13");
    check_tpl_error("{{ execution.name }}", "expected '.id' after 'execution' at column 13");
    check_tpl_error("{{ execution.id.x }}", "'execution.id' takes no field or index at column 16");
    check_tpl_error("{{ index.x }}", "'index' takes no field or index at column 9");
    check_tpl_error("{{ scheduledFor[0] }}", "'scheduledFor' takes no field or index at column 16");
    check_tpl_error("{{ params.a. }}", "expected a name after '.' at column 13");
    check_tpl_error("{{ item.-x }}", "expected a name after '.' at column 9");
}

static void test_tpl_err_bad_index(void **state)
{
    (void)state;
    check_tpl_error("{{ params.a[x] }}", "bad index at column 12: expected a number after '['");
    check_tpl_error("{{ params.a[] }}", "bad index at column 12: expected a number after '['");
    check_tpl_error("{{ params.a[-1] }}", "bad index at column 12: expected a number after '['");
    check_tpl_error("{{ params.a[1 }}", "bad index at column 12: expected ']' after the number");
    check_tpl_error("{{ params.a[1.5] }}", "bad index at column 12: expected ']' after the number");
    check_tpl_error("{{ params.a[1234567890] }}", "bad index at column 12: more than 9 digits");
    check_tpl_error("{{ item[99999999999999999999999] }}",
                    "bad index at column 8: more than 9 digits");
}

static void test_tpl_err_unexpected(void **state)
{
    (void)state;
    check_tpl_error("{{ params.a b }}", "unexpected 'b' at column 13 in placeholder");
    check_tpl_error("{{ params.a } }}", "unexpected '}' at column 13 in placeholder");
    check_tpl_error("{{ params.a|upper }}", "unexpected '|' at column 12 in placeholder");
    check_tpl_error("{{ params.a\x01 }}", "unexpected byte 0x01 at column 12 in placeholder");
    check_tpl_error("{{ params.a {{ params.b }}", "unexpected '{' at column 13 in placeholder");
    check_tpl_error("{{{ params.a }}}",
                    "expected a ref at column 3, found '{' (refs look like params.NAME)");
    check_tpl_error("{{ 'abc }}", "unterminated string at column 4");
    check_tpl_error("{{ 'a' b }}", "unexpected 'b' at column 8 in placeholder");
}

static void test_tpl_too_long(void **state)
{
    struct err err = ERR_INIT;
    struct tpl *t = (struct tpl *)&err;
    char *text = xmalloc(TPL_MAX_BYTES + 2);

    (void)state;
    memset(text, 'a', TPL_MAX_BYTES + 1);
    text[TPL_MAX_BYTES + 1] = '\0';
    assert_int_equal(tpl_parse(text, &t, &err), ERR_TOO_BIG);
    assert_null(t);
    assert_string_equal(err.msg, "template longer than 1048576 bytes");
    text[TPL_MAX_BYTES] = '\0';
    assert_int_equal(tpl_parse(text, &t, &err), 0);
    tpl_free(t);
    free(text);
}

/* ---- templates: rendering errors ---- */

static void test_render_missing_values(void **state)
{
    (void)state;
    check_render_error("{{ params.missing }}", ERR_NOT_FOUND, "params.missing: no param 'missing'");
    check_render_error("{{ tasks.nope.output }}", ERR_NOT_FOUND,
                       "tasks.nope.output: no output for task 'nope'");
    check_render_error("{{ tasks.noout.output.x }}", ERR_NOT_FOUND,
                       "tasks.noout.output.x: no output for task 'noout'");
    check_render_error("x {{ tasks.extract.output.path }}", ERR_NOT_FOUND,
                       "tasks.extract.output.path: no field 'path'");
    check_render_error("{{ tasks.extract.output.files[5] }}", ERR_NOT_FOUND,
                       "tasks.extract.output.files[5]: index 5 out of range (array has 2 items)");
    check_render_error("{{ item.nope }}", ERR_NOT_FOUND, "item.nope: no field 'nope'");
    check_render_error("{{ params.obj.a[2].c }}", ERR_NOT_FOUND, "params.obj.a[2].c: no field 'c'");
}

static void test_render_wrong_shapes(void **state)
{
    (void)state;
    check_render_error("{{ tasks.extract.output.files.path }}", ERR_INVALID,
                       "tasks.extract.output.files.path: cannot take field 'path' of an array");
    check_render_error("{{ params.region[0] }}", ERR_INVALID,
                       "params.region[0]: cannot take [0] of a string");
    check_render_error("{{ tasks.extract.output.files[0].path.x }}", ERR_INVALID,
                       "tasks.extract.output.files[0].path.x: cannot take field 'x' of a string");
    check_render_error("{{ params.count.x }}", ERR_INVALID,
                       "params.count.x: cannot take field 'x' of a number");
    check_render_error("{{ params.nothing[0] }}", ERR_INVALID,
                       "params.nothing[0]: cannot take [0] of null");
    check_render_error("{{ params.obj[0] }}", ERR_INVALID,
                       "params.obj[0]: cannot take [0] of an object");
    check_render_error("{{ params.flag.x }}", ERR_INVALID,
                       "params.flag.x: cannot take field 'x' of a boolean");
}

static void test_render_absent_roots(void **state)
{
    json_t *c = json_pack("{s:s, s:{}, s:[]}", "params", "not an object", "execution", "tasks");

    (void)state;
    check_render_error_in(c, "{{ params.x }}", ERR_NOT_FOUND, "params.x: no param 'x'");
    check_render_error_in(c, "{{ tasks.t.output }}", ERR_NOT_FOUND,
                          "tasks.t.output: no output for task 't'");
    check_render_error_in(c, "{{ execution.id }}", ERR_NOT_FOUND, "execution.id: not set");
    check_render_error_in(c, "{{ scheduledFor }}", ERR_NOT_FOUND, "scheduledFor: not set");
    check_render_error_in(c, "{{ item.id }}", ERR_NOT_FOUND, "item.id: not set");
    check_render_error_in(c, "{{ index }}", ERR_NOT_FOUND, "index: not set");
    check_render_error_in(NULL, "{{ params.region }}", ERR_NOT_FOUND,
                          "params.region: no param 'region'");
    /* A template without refs needs no context at all. */
    check_render_in(NULL, "plain", TPL_RAW, "plain");
    json_decref(c);
}

static void test_render_nul_value(void **state)
{
    struct err err = ERR_INIT;
    struct tpl *t;
    json_t *v = (json_t *)&err;

    (void)state;
    check_render_error("{{ params.nul }}", ERR_INVALID, "params.nul: value contains a NUL byte");
    /* As a JSON value it is fine: nothing is truncated. */
    assert_int_equal(tpl_parse("{{ params.nul }}", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), 0);
    assert_int_equal(json_string_length(v), 3);
    json_decref(v);
    tpl_free(t);
}

static void test_render_too_big(void **state)
{
    struct err err = ERR_INIT;
    char *big = xmalloc(600001), *out = (char *)&err;
    json_t *c;
    struct tpl *t;

    (void)state;
    memset(big, 'a', 600000);
    big[600000] = '\0';
    c = json_pack("{s:{s:s}}", "params", "big", big);
    memset(big, '\'', 300000);
    json_object_set_new(json_object_get(c, "params"), "quotes", json_stringn(big, 300000));
    assert_int_equal(tpl_parse("{{ params.big }}{{ params.big }}", &t, &err), 0);
    assert_int_equal(tpl_render(t, c, TPL_RAW, &out, &err), ERR_TOO_BIG);
    assert_null(out);
    assert_string_equal(err.msg, "rendered text longer than 1048576 bytes");
    tpl_free(t);
    /* 300000 quotes fit raw but not shell-quoted (each becomes 4 bytes). */
    assert_int_equal(tpl_parse("{{ params.quotes }}", &t, &err), 0);
    assert_int_equal(tpl_render(t, c, TPL_RAW, &out, &err), 0);
    assert_int_equal(strlen(out), 300000);
    free(out);
    assert_int_equal(tpl_render(t, c, TPL_SHELL, &out, &err), ERR_TOO_BIG);
    assert_null(out);
    tpl_free(t);
    /* An object's JSON text is bounded too, and so is the literal text. */
    json_object_set_new(
        json_object_get(c, "params"), "obj",
        json_pack("{s:O}", "k", json_object_get(json_object_get(c, "params"), "big")));
    assert_int_equal(tpl_parse("{{ params.obj }}{{ params.obj }}", &t, &err), 0);
    assert_int_equal(tpl_render(t, c, TPL_RAW, &out, &err), ERR_TOO_BIG);
    assert_null(out);
    assert_string_equal(err.msg, "rendered text longer than 1048576 bytes");
    tpl_free(t);
    memset(big, 'b', 600000);
    memcpy(big, "{{ params.big }}", 16);
    assert_int_equal(tpl_parse(big, &t, &err), 0);
    assert_int_equal(tpl_render(t, c, TPL_RAW, &out, &err), ERR_TOO_BIG);
    assert_null(out);
    assert_string_equal(err.msg, "rendered text longer than 1048576 bytes");
    tpl_free(t);
    json_decref(c);
    free(big);
}

/* ---- templates: shell quoting ---- */

static void test_shell_quoting_values(void **state)
{
    (void)state;
    check_render("echo {{ params.region }}", TPL_SHELL, "echo 'eu-west'");
    check_render("echo {{ params.count }} {{ params.flag }}", TPL_SHELL, "echo '3' 'true'");
    check_render("echo {{ params.empty }}", TPL_SHELL, "echo ''");
    check_render("echo {{ params.nothing }}", TPL_SHELL, "echo 'null'");
    check_render("echo {{ params.obj }}", TPL_SHELL, "echo '{\"a\":[1,2,{\"b\":\"deep\"}]}'");
}

static void test_shell_quoting_hostile(void **state)
{
    static const struct {
        const char *value, *quoted;
    } cases[] = {
        {"it's", "'it'\\''s'"}, {"'", "''\\'''"},
        {"''", "''\\'''\\'''"}, {"$(rm -rf /)", "'$(rm -rf /)'"},
        {"`id`", "'`id`'"},     {"a; echo x", "'a; echo x'"},
        {"a\nb", "'a\nb'"},     {"'; echo INJECTED; '", "''\\''; echo INJECTED; '\\'''"},
        {"\\'", "'\\'\\'''"},
    };
    struct err err = ERR_INIT;
    struct tpl *t;

    (void)state;
    assert_int_equal(tpl_parse("{{ params.v }}", &t, &err), 0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *c = json_pack("{s:{s:s}}", "params", "v", cases[i].value);
        char *out;

        assert_int_equal(tpl_render(t, c, TPL_SHELL, &out, &err), 0);
        assert_string_equal(out, cases[i].quoted);
        free(out);
        json_decref(c);
    }
    tpl_free(t);
}

/* Run each hostile value through /bin/sh: printf must print it back unchanged. */
static void test_shell_quoting_through_sh(void **state)
{
    static const char *const values[] = {
        "it's",
        "'",
        "''",
        "'''",
        "$(echo INJECTED)",
        "`echo INJECTED`",
        "a; echo INJECTED",
        "a && echo INJECTED",
        "a | cat",
        "a\nb\n",
        "\"double\" \\back\\",
        "$HOME ${PATH} *",
        "'; echo INJECTED; '",
        "\\'",
        "-n",
        "",
        "  spaced  ",
        "h\xc3\xa9llo",
        "#comment",
        "a\\",
        "\t",
        "${IFS}",
        "!",
        "~",
    };
    struct err err = ERR_INIT;
    struct tpl *t;

    (void)state;
    assert_int_equal(tpl_parse("printf '%s' {{ params.v }}", &t, &err), 0);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        json_t *c = json_pack("{s:{s:s}}", "params", "v", values[i]);
        char got[256], *cmd;
        size_t n;
        FILE *f;

        assert_int_equal(tpl_render(t, c, TPL_SHELL, &cmd, &err), 0);
        f = popen(cmd, "r");
        assert_non_null(f);
        n = fread(got, 1, sizeof(got) - 1, f);
        got[n] = '\0';
        assert_int_equal(pclose(f), 0);
        assert_string_equal(got, values[i]);
        free(cmd);
        json_decref(c);
    }
    tpl_free(t);
}

/* ---- templates: JSON evaluation ---- */

static void test_eval_json(void **state)
{
    struct err err = ERR_INIT;
    struct tpl *t;
    json_t *v;

    (void)state;
    assert_int_equal(tpl_parse("{{ tasks.extract.output.files }}", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), 0);
    assert_true(json_is_array(v));
    assert_ptr_equal(
        v, json_object_get(
               json_object_get(json_object_get(json_object_get(ctx, "tasks"), "extract"), "output"),
               "files"));
    json_decref(v);
    tpl_free(t);

    assert_int_equal(tpl_parse("{{index}}", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), 0);
    assert_true(json_is_integer(v) && json_integer_value(v) == 4);
    json_decref(v);
    tpl_free(t);

    /* Text around the placeholder (even a space): a string. */
    assert_int_equal(tpl_parse(" {{ params.count }}", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), 0);
    assert_string_equal(json_string_value(v), " 3");
    json_decref(v);
    tpl_free(t);

    assert_int_equal(tpl_parse("{{ '{{' }}", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), 0);
    assert_string_equal(json_string_value(v), "{{");
    json_decref(v);
    tpl_free(t);

    assert_int_equal(tpl_parse("", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), 0);
    assert_string_equal(json_string_value(v), "");
    json_decref(v);
    tpl_free(t);
}

static void test_eval_json_errors(void **state)
{
    struct err err = ERR_INIT;
    struct tpl *t;
    json_t *v = (json_t *)&err;

    (void)state;
    assert_int_equal(tpl_parse("{{ params.missing }}", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), ERR_NOT_FOUND);
    assert_null(v);
    assert_string_equal(err.msg, "params.missing: no param 'missing'");
    tpl_free(t);

    assert_int_equal(tpl_parse("\xff{{ params.region }}", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), ERR_INVALID);
    assert_null(v);
    assert_string_equal(err.msg, "rendered text is not valid UTF-8");
    tpl_free(t);

    assert_int_equal(tpl_parse("a {{ params.missing }}", &t, &err), 0);
    assert_int_equal(tpl_eval_json(t, ctx, &v, &err), ERR_NOT_FOUND);
    assert_null(v);
    tpl_free(t);
}

/* ---- expressions ---- */

static void test_expr_literals(void **state)
{
    (void)state;
    assert_expr_true("true");
    assert_expr_false("false");
    assert_expr_true("1 == 1");
    assert_expr_true("-2.5 < 0");
    assert_expr_true("1e3 == 1000");
    assert_expr_true("1E-1 == 0.1");
    assert_expr_true("2.5e+1 == 25");
    assert_expr_true("'a' == \"a\"");
    assert_expr_true("null == null");
    assert_expr_true("2.50 == 2.5");
    assert_expr_true("-0 == 0");
    assert_expr_true("007 == 7");
    assert_expr_true("  \n\ttrue\r\n ");
}

static void test_expr_string_escapes(void **state)
{
    (void)state;
    assert_expr_true("'it\\'s' == \"it's\"");
    assert_expr_true("\"a\\\"b\" == 'a\"b'");
    assert_expr_true("'\\\\' == \"\\\\\"");
    assert_expr_true("'\\n' != 'n'");
    assert_expr_true("'a\\tb' != 'a b'");
    assert_expr_true("'' == \"\"");
}

static void test_expr_escape_values(void **state)
{
    json_t *c = json_pack("{s:{s:s,s:s,s:s,s:s}}", "params", "tab", "a\tb", "nl", "x\ny", "cr",
                          "\r", "bs", "\\");

    (void)state;
    assert_int_equal(eval_in(c, "'a\\tb' == {{ params.tab }}"), 1);
    assert_int_equal(eval_in(c, "\"x\\ny\" == {{ params.nl }}"), 1);
    assert_int_equal(eval_in(c, "'\\r' == {{ params.cr }}"), 1);
    assert_int_equal(eval_in(c, "'\\\\' == {{ params.bs }}"), 1);
    assert_int_equal(eval_in(c, "'{{ params.bs }}' != {{ params.bs }}"), 1);
    json_decref(c);
}

static void test_expr_number_comparisons(void **state)
{
    (void)state;
    assert_expr_true("1 < 2");
    assert_expr_false("2 < 1");
    assert_expr_true("2 <= 2");
    assert_expr_true("3 > 2.5");
    assert_expr_true("3 >= 3.0");
    assert_expr_true("3 != 4");
    assert_expr_true("-2.5 < -2");
    assert_expr_true("-2 > -2.5");
    assert_expr_true("1 == 1.0");
    assert_expr_true("0.0 == -0.0");
    assert_expr_true("{{ params.count }} == 3.0");
    assert_expr_true("{{ params.ratio }} < 0.2");
    assert_expr_true("{{ params.two }} == 2");
    /* Exact, not through doubles: 2^53 + 1 is not 2^53. */
    assert_expr_false("9007199254740993 == 9007199254740992.0");
    assert_expr_true("9007199254740993 > 9007199254740992.0");
    assert_expr_true("9007199254740992.0 < 9007199254740993");
    /* Past long long: a real. */
    assert_expr_true("9223372036854775807 < 9223372036854775808");
    assert_expr_true("-9223372036854775808 == -9223372036854775808.0");
    assert_expr_true("-9223372036854775808 > -1e19");
    assert_expr_true("9223372036854775807 < 1e19");
}

static void test_expr_string_comparisons(void **state)
{
    (void)state;
    assert_expr_true("'a' < 'b'");
    assert_expr_true("'B' < 'a'");
    assert_expr_true("'ab' > 'a'");
    assert_expr_true("'' < 'a'");
    assert_expr_true("'a' <= 'a' and 'a' >= 'a'");
    assert_expr_true("'z' < '\xc3\xa9'");
    assert_expr_true("'10' < '9'");
    assert_expr_true("{{ params.region }} == 'eu-west'");
    assert_expr_true("{{ params.region }} >= 'eu'");
    assert_expr_true("{{ params.utf8 }} == 'h\xc3\xa9llo'");
    assert_expr_false("{{ params.nul }} == 'a'");
    assert_expr_true("{{ params.nul }} > 'a'");
}

static void test_expr_deep_equality(void **state)
{
    (void)state;
    assert_expr_true("{{ params.o1 }} == {{ params.o2 }}");
    assert_expr_true("{{ params.o1 }} != {{ params.o3 }}");
    assert_expr_false("{{ params.o1 }} == {{ params.o4 }}");
    assert_expr_false("{{ params.o4 }} == {{ params.o5 }}");
    assert_expr_true("{{ params.a1 }} != {{ params.a2 }}");
    assert_expr_true("{{ params.a1 }} == {{ params.a1 }}");
    assert_expr_false("{{ params.a1 }} == {{ params.obj.a }}");
    assert_expr_true("{{ item.tags }} == {{ item.tags }}");
    assert_expr_true("1 != '1'");
    assert_expr_true("null != false");
    assert_expr_true("true != 1");
    assert_expr_true("0 != false");
    assert_expr_true("'' != null");
    assert_expr_true("{{ params.nothing }} == null");
    assert_expr_true("{{ params.a1 }} != 1");
    assert_expr_true("true == true and false == false and true != false");
}

static void test_expr_deep_equality_limit(void **state)
{
    json_t *deep = json_array(), *c;

    (void)state;
    for (int i = 0; i < JSON_PARSER_MAX_DEPTH + 50; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, deep);
        deep = outer;
    }
    c = json_pack("{s:{s:o}}", "params", "deep", deep);
    check_eval_error_in(c, "{{ params.deep }} == {{ params.deep }}", ERR_INVALID,
                        "'==': values nested too deeply to compare");
    /* Different at the top: no need to go deep. */
    assert_int_equal(eval_in(c, "{{ params.deep }} != 1"), 1);
    json_decref(c);
}

static void test_expr_refs(void **state)
{
    (void)state;
    assert_expr_true("{{ tasks.extract.output.count }} == 2");
    assert_expr_true("{{ params.flag }}");
    assert_expr_false("{{ params.off }}");
    assert_expr_true("{{ item.tags[0] }} == 'a'");
    assert_expr_true("{{index}} > 3");
    assert_expr_true("{{ execution.id }} == 'exec-123'");
    assert_expr_true("{{ scheduledFor }} < '2025'");
    assert_expr_true("{{ tasks.extract.output.files[1].path }} == '/tmp/b.csv'");
    assert_expr_true("{{params.count}}=={{params.count}}");
}

static void test_expr_refs_list(void **state)
{
    struct err err = ERR_INIT;
    struct expr *e;
    const struct tpl_ref *r;

    (void)state;
    assert_int_equal(expr_parse("{{ params.flag }} and {{ tasks.extract.output.count }} > 1 "
                                "or {{ item.id }} == {{ index }}",
                                &e, &err),
                     0);
    assert_int_equal(expr_nrefs(e), 4);
    r = expr_ref_at(e, 0);
    assert_int_equal(r->root, TPL_PARAMS);
    assert_string_equal(r->name, "flag");
    assert_int_equal(r->column, 4);
    r = expr_ref_at(e, 1);
    assert_int_equal(r->root, TPL_TASKS);
    assert_string_equal(r->name, "extract");
    assert_string_equal(r->path, "tasks.extract.output.count");
    assert_int_equal(r->column, 26);
    assert_int_equal(expr_ref_at(e, 2)->root, TPL_ITEM);
    assert_null(expr_ref_at(e, 2)->name);
    assert_int_equal(expr_ref_at(e, 3)->root, TPL_INDEX);
    expr_free(e);
    expr_free(NULL);

    assert_int_equal(expr_parse("1 == 1", &e, &err), 0);
    assert_int_equal(expr_nrefs(e), 0);
    expr_free(e);
}

static void test_expr_precedence(void **state)
{
    (void)state;
    /* and binds tighter than or. */
    assert_expr_true("true or false and false");
    assert_expr_false("(true or false) and false");
    assert_expr_true("false and false or true");
    assert_expr_false("false and (false or true)");
    /* Comparisons bind tighter than and/or. */
    assert_expr_false("false and true == false");
    assert_expr_true("1 == 1 and 2 == 2");
    assert_expr_true("1 == 2 or 'a' < 'b'");
    /* not binds tighter than comparisons: (not false) == false. */
    assert_expr_false("not false == false");
    assert_expr_true("not (false == true)");
    assert_expr_true("not false and true");
    check_eval_error("not 1 == 2", ERR_INVALID, "'not' needs a boolean, got number 1");
    assert_expr_true("((((true))))");
    assert_expr_true("(1 < 2) == (3 < 4)");
}

static void test_expr_not(void **state)
{
    (void)state;
    assert_expr_false("not true");
    assert_expr_true("not false");
    assert_expr_true("not not true");
    assert_expr_true("not (1 == 2)");
    assert_expr_true("not {{ params.off }}");
    assert_expr_true("not(false)");
}

static void test_expr_short_circuit(void **state)
{
    (void)state;
    /* The right operand is never evaluated, so its errors do not happen. */
    assert_expr_false("false and {{ params.missing }} == 1");
    assert_expr_false("false and 'x'");
    assert_expr_false("false and 1 < 'a'");
    assert_expr_true("true or {{ tasks.nope.output }}");
    assert_expr_true("true or 'x'");
    assert_expr_true("false or true or {{ params.missing }}");
    assert_expr_false("true and false and {{ params.missing }}");
    /* When needed, it is evaluated. */
    check_eval_error("true and {{ params.missing }} == 1", ERR_NOT_FOUND,
                     "params.missing: no param 'missing'");
    check_eval_error("false or 'x'", ERR_INVALID, "'or' needs booleans, got string \"x\"");
    check_eval_error("true and true and 3", ERR_INVALID, "'and' needs booleans, got number 3");
}

static void test_expr_long_chains(void **state)
{
    char *text;

    (void)state;
    /* An and/or chain is one node: no recursion per operand. */
    text = repeat("true and ", 400, "true");
    assert_int_equal(eval_in(ctx, text), 1);
    free(text);
    text = repeat("false or ", 400, "true");
    assert_int_equal(eval_in(ctx, text), 1);
    free(text);
    text = repeat("true and ", 400, "false");
    assert_int_equal(eval_in(ctx, text), 0);
    free(text);
    text = repeat("1 == 1 and ", 300, "2 > 1 or false");
    assert_int_equal(eval_in(ctx, text), 1);
    free(text);
}

static void test_expr_type_errors(void **state)
{
    (void)state;
    check_eval_error("'x' and true", ERR_INVALID, "'and' needs booleans, got string \"x\"");
    check_eval_error("true and 3", ERR_INVALID, "'and' needs booleans, got number 3");
    check_eval_error("null or true", ERR_INVALID, "'or' needs booleans, got null");
    check_eval_error("not 'x'", ERR_INVALID, "'not' needs a boolean, got string \"x\"");
    check_eval_error("not {{ params.count }}", ERR_INVALID,
                     "'not' needs a boolean, got number 3 from params.count");
    check_eval_error("{{ params.region }} and true", ERR_INVALID,
                     "'and' needs booleans, got string \"eu-west\" from params.region");
}

static void test_expr_compare_errors(void **state)
{
    (void)state;
    check_eval_error("1 < 'a'", ERR_INVALID,
                     "'<' needs two numbers or two strings, got number 1 and string \"a\"");
    check_eval_error("true >= false", ERR_INVALID,
                     "'>=' needs two numbers or two strings, got boolean true and boolean false");
    check_eval_error("null > 1", ERR_INVALID,
                     "'>' needs two numbers or two strings, got null and number 1");
    check_eval_error("0.1 <= 'a'", ERR_INVALID,
                     "'<=' needs two numbers or two strings, got number 0.1 and string \"a\"");
    check_eval_error("{{ params.obj }} < 1", ERR_INVALID,
                     "'<' needs two numbers or two strings, got object "
                     "{\"a\":[1,2,{\"b\":\"deep\"}]} from params.obj and number 1");
    check_eval_error("{{ params.a1 }} < {{ params.a2 }}", ERR_INVALID,
                     "'<' needs two numbers or two strings, got array [1,2] from params.a1 and "
                     "array [2,1] from params.a2");
}

static void test_expr_long_values_in_messages(void **state)
{
    json_t *c =
        json_pack("{s:{s:s,s:s}}", "params", "long",
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "utf8",
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");

    (void)state;
    check_eval_error_in(c, "{{ params.long }}", ERR_INVALID,
                        "the condition must give a boolean, got string "
                        "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... from params.long");
    /* Cut on a character boundary: 1 quote byte + 19 two-byte characters. */
    check_eval_error_in(c, "{{ params.utf8 }}", ERR_INVALID,
                        "the condition must give a boolean, got string "
                        "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                        "\xc3\xa9\xc3\xa9... from params.utf8");
    json_decref(c);
}

static void test_expr_result_not_boolean(void **state)
{
    (void)state;
    check_eval_error("1", ERR_INVALID, "the condition must give a boolean, got number 1");
    check_eval_error("'yes'", ERR_INVALID, "the condition must give a boolean, got string \"yes\"");
    check_eval_error("null", ERR_INVALID, "the condition must give a boolean, got null");
    check_eval_error("{{ params.region }}", ERR_INVALID,
                     "the condition must give a boolean, got string \"eu-west\" from "
                     "params.region");
    check_eval_error("({{ item.tags }})", ERR_INVALID,
                     "the condition must give a boolean, got array [\"a\",\"b\"] from item.tags");
}

static void test_expr_eval_ref_errors(void **state)
{
    (void)state;
    check_eval_error("{{ tasks.extract.output.path }} == 1", ERR_NOT_FOUND,
                     "tasks.extract.output.path: no field 'path'");
    check_eval_error("1 == {{ tasks.extract.output.files[9] }}", ERR_NOT_FOUND,
                     "tasks.extract.output.files[9]: index 9 out of range (array has 2 items)");
    check_eval_error("{{ params.region.x }} == 1", ERR_INVALID,
                     "params.region.x: cannot take field 'x' of a string");
    check_eval_error_in(NULL, "{{ index }} > 1", ERR_NOT_FOUND, "index: not set");
}

static void test_expr_err_structure(void **state)
{
    (void)state;
    check_parse_error("1 ==", ERR_INVALID, "expected an operand at column 5");
    check_parse_error("1 == and", ERR_INVALID, "expected an operand at column 6, found 'and'");
    check_parse_error("true and", ERR_INVALID, "expected an operand at column 9");
    check_parse_error("not", ERR_INVALID, "expected an operand at column 4");
    check_parse_error("()", ERR_INVALID, "expected an operand at column 2, found ')'");
    check_parse_error("== 1", ERR_INVALID, "expected an operand at column 1, found '=='");
    check_parse_error("true and 1 == 1)", ERR_INVALID, "unexpected ')' at column 16");
    check_parse_error("(true and false))", ERR_INVALID, "unexpected ')' at column 17");
    check_parse_error("true true", ERR_INVALID, "unexpected 'true' at column 6");
    check_parse_error("1 2", ERR_INVALID, "unexpected '2' at column 3");
    check_parse_error("1 -2", ERR_INVALID, "unexpected '-2' at column 3");
    check_parse_error("'a' 'bcd'", ERR_INVALID, "unexpected ''bcd'' at column 5");
    check_parse_error("(1 == 1", ERR_INVALID, "expected ')' at column 8 to close '(' at column 1");
    check_parse_error("((true) or (false)", ERR_INVALID,
                      "expected ')' at column 19 to close '(' at column 1");
    check_parse_error("1 < 2 < 3", ERR_INVALID,
                      "unexpected '<' at column 7 (comparisons do not chain; combine them "
                      "with 'and')");
    check_parse_error("1 == 1 != true", ERR_INVALID,
                      "unexpected '!=' at column 8 (comparisons do not chain; combine them "
                      "with 'and')");
    check_parse_error("", ERR_INVALID, "empty expression");
    check_parse_error(" \n\t ", ERR_INVALID, "empty expression");
    check_parse_error("1 ==\n  )", ERR_INVALID,
                      "expected an operand at line 2, column 3, found ')'");
    check_parse_error("true and\nfalse and\n  1 2", ERR_INVALID,
                      "unexpected '2' at line 3, column 5");
}

static void test_expr_err_tokens(void **state)
{
    (void)state;
    check_parse_error("1 == 'abc", ERR_INVALID, "unterminated string at column 6");
    check_parse_error("\"abc", ERR_INVALID, "unterminated string at column 1");
    check_parse_error("'abc\\", ERR_INVALID, "unterminated string at column 1");
    check_parse_error("'abc\\'", ERR_INVALID, "unterminated string at column 1");
    check_parse_error("'a\\q' == 1", ERR_INVALID,
                      "unknown escape '\\q' at column 3 (known: \\\\ \\' \\\" \\n \\t \\r)");
    check_parse_error("'\xff' == 'x'", ERR_INVALID, "string is not valid UTF-8 at column 1");
    check_parse_error("foo == 1", ERR_INVALID,
                      "unknown word 'foo' at column 1 (refs are written {{ params.NAME }}, "
                      "strings in quotes)");
    check_parse_error("True", ERR_INVALID,
                      "unknown word 'True' at column 1 (refs are written {{ params.NAME }}, "
                      "strings in quotes)");
    check_parse_error("1 == my-var", ERR_INVALID,
                      "unknown word 'my-var' at column 6 (refs are written {{ params.NAME }}, "
                      "strings in quotes)");
    check_parse_error("true && false", ERR_INVALID, "unexpected '&&' at column 6 (use 'and')");
    check_parse_error("true || false", ERR_INVALID, "unexpected '||' at column 6 (use 'or')");
    check_parse_error("!true", ERR_INVALID, "unexpected '!' at column 1 (use 'not')");
    check_parse_error("1 = 1", ERR_INVALID, "unexpected '=' at column 3 (use '==')");
    check_parse_error("1 == @", ERR_INVALID, "unexpected '@' at column 6");
    check_parse_error("1 == \x01", ERR_INVALID, "unexpected byte 0x01 at column 6");
    check_parse_error("1 == \xc3\xa9", ERR_INVALID, "unexpected byte 0xc3 at column 6");
}

static void test_expr_err_numbers(void **state)
{
    (void)state;
    check_parse_error("1. == 1", ERR_INVALID, "bad number at column 1");
    check_parse_error("1 == 1e", ERR_INVALID, "bad number at column 6");
    check_parse_error("1e+ == 1", ERR_INVALID, "bad number at column 1");
    check_parse_error("1x == 1", ERR_INVALID, "bad number at column 1");
    check_parse_error("1.2.3 == 1", ERR_INVALID, "bad number at column 1");
    check_parse_error(".5 == 0.5", ERR_INVALID, "unexpected '.' at column 1");
    check_parse_error("- 1 == 1", ERR_INVALID,
                      "unexpected '-' at column 1 (write negative numbers as -2)");
    check_parse_error("--1 == 1", ERR_INVALID,
                      "unexpected '-' at column 1 (write negative numbers as -2)");
    check_parse_error("1e999 > 0", ERR_INVALID, "number out of range at column 1");
    check_parse_error("1 < -1e400", ERR_INVALID, "number out of range at column 5");
    assert_expr_true("1e-999 == 0");
}

static void test_expr_err_refs(void **state)
{
    (void)state;
    check_parse_error("{{ params.a == 1", ERR_INVALID, "unclosed '{{' at column 1");
    check_parse_error("{{ param.x }} == 1", ERR_INVALID,
                      "unknown root 'param' at column 4 (known: params, tasks, execution, "
                      "scheduledFor, item, index)");
    check_parse_error("1 == {{ }}", ERR_INVALID, "empty placeholder at column 6");
    check_parse_error("1 == {{ '{{' }}", ERR_INVALID,
                      "expected a ref at column 9, found ''' (refs look like params.NAME)");
    check_parse_error("true and\n{{ tasks.x }}", ERR_INVALID,
                      "expected '.output' after 'tasks.x' at line 2, column 11");
    check_parse_error("{{ params.a[x] }}", ERR_INVALID,
                      "bad index at column 12: expected a number after '['");
    check_parse_error("{ params.a }", ERR_INVALID, "unexpected '{' at column 1");
}

static void test_expr_depth_limit(void **state)
{
    char *open = repeat("(", EXPR_MAX_DEPTH, ""), *close = repeat(")", EXPR_MAX_DEPTH, "");
    char *text = xasprintf("%strue%s", open, close);

    (void)state;
    assert_int_equal(eval_in(ctx, text), 1);
    free(text);
    text = xasprintf("(%strue%s)", open, close);
    check_parse_error(text, ERR_INVALID, "expression nested deeper than 64 levels at column 65");
    free(text);
    free(open);
    free(close);

    text = repeat("not ", EXPR_MAX_DEPTH, "true");
    assert_int_equal(eval_in(ctx, text), 1);
    free(text);
    text = repeat("not ", EXPR_MAX_DEPTH + 1, "true");
    check_parse_error(text, ERR_INVALID, "expression nested deeper than 64 levels at column 257");
    free(text);
    /* Both count: 32 of each is fine, one more is not. */
    open = repeat("not (", 32, "false");
    close = repeat(")", 32, "");
    text = xasprintf("%s%s", open, close);
    assert_int_equal(eval_in(ctx, text), 0);
    free(text);
    text = xasprintf("not %s%s", open, close);
    check_parse_error(text, ERR_INVALID, "expression nested deeper than 64 levels at column 164");
    free(text);
    free(open);
    free(close);
    /* Unclosed, very deep: the limit still applies before anything else. */
    text = repeat("(", 3000, "");
    check_parse_error(text, ERR_INVALID, "expression nested deeper than 64 levels at column 65");
    free(text);
}

static void test_expr_length_limit(void **state)
{
    char *text = xmalloc(EXPR_MAX_LEN + 2);
    struct err err = ERR_INIT;
    struct expr *e;

    (void)state;
    memcpy(text, "true", 4);
    memset(text + 4, ' ', EXPR_MAX_LEN - 4);
    text[EXPR_MAX_LEN] = '\0';
    assert_int_equal(eval_in(ctx, text), 1);
    text[EXPR_MAX_LEN] = ' ';
    text[EXPR_MAX_LEN + 1] = '\0';
    check_parse_error(text, ERR_TOO_BIG, "expression longer than 4096 bytes");
    free(text);
    /* A template may be longer, but not inside an expression. */
    text = repeat("1 == 1 and ", 400, "true");
    assert_int_equal(expr_parse(text, &e, &err), ERR_TOO_BIG);
    assert_null(e);
    free(text);
}

static void test_expr_parse_err_null(void **state)
{
    struct expr *e;
    struct tpl *t;

    (void)state;
    /* err may be NULL: the code alone comes back. */
    assert_int_equal(expr_parse("1 ==", &e, NULL), ERR_INVALID);
    assert_null(e);
    assert_int_equal(tpl_parse("{{", &t, NULL), ERR_INVALID);
    assert_null(t);
    assert_int_equal(expr_parse("{{ index }} == 1", &e, NULL), 0);
    {
        int b = 1;
        assert_int_equal(expr_eval(e, NULL, &b, NULL), ERR_NOT_FOUND);
        assert_int_equal(b, 0);
    }
    expr_free(e);
}

static void test_expr_reuse(void **state)
{
    struct err err = ERR_INIT;
    struct expr *e;
    json_t *c1 = json_pack("{s:i}", "index", 1), *c2 = json_pack("{s:i}", "index", 5);
    int b;

    (void)state;
    /* One parsed expression, many contexts (one per fan-out item). */
    assert_int_equal(expr_parse("{{ index }} > 2 and {{ index }} < 10", &e, &err), 0);
    assert_int_equal(expr_eval(e, c1, &b, &err), 0);
    assert_int_equal(b, 0);
    assert_int_equal(expr_eval(e, c2, &b, &err), 0);
    assert_int_equal(b, 1);
    assert_int_equal(expr_eval(e, c1, &b, &err), 0);
    assert_int_equal(b, 0);
    expr_free(e);
    json_decref(c1);
    json_decref(c2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tpl_plain_text),
        cmocka_unit_test(test_tpl_whitespace),
        cmocka_unit_test(test_tpl_all_roots),
        cmocka_unit_test(test_tpl_fields_and_indexes),
        cmocka_unit_test(test_tpl_nested_indexes_and_names),
        cmocka_unit_test(test_tpl_value_kinds),
        cmocka_unit_test(test_tpl_reals),
        cmocka_unit_test(test_tpl_literal_braces),
        cmocka_unit_test(test_tpl_multiple),
        cmocka_unit_test(test_tpl_refs_list),
        cmocka_unit_test(test_tpl_ref_parse),
        cmocka_unit_test(test_tpl_err_unclosed),
        cmocka_unit_test(test_tpl_err_empty),
        cmocka_unit_test(test_tpl_err_unknown_root),
        cmocka_unit_test(test_tpl_err_shapes),
        cmocka_unit_test(test_tpl_err_bad_index),
        cmocka_unit_test(test_tpl_err_unexpected),
        cmocka_unit_test(test_tpl_too_long),
        cmocka_unit_test(test_render_missing_values),
        cmocka_unit_test(test_render_wrong_shapes),
        cmocka_unit_test(test_render_absent_roots),
        cmocka_unit_test(test_render_nul_value),
        cmocka_unit_test(test_render_too_big),
        cmocka_unit_test(test_shell_quoting_values),
        cmocka_unit_test(test_shell_quoting_hostile),
        cmocka_unit_test(test_shell_quoting_through_sh),
        cmocka_unit_test(test_eval_json),
        cmocka_unit_test(test_eval_json_errors),
        cmocka_unit_test(test_expr_literals),
        cmocka_unit_test(test_expr_string_escapes),
        cmocka_unit_test(test_expr_escape_values),
        cmocka_unit_test(test_expr_number_comparisons),
        cmocka_unit_test(test_expr_string_comparisons),
        cmocka_unit_test(test_expr_deep_equality),
        cmocka_unit_test(test_expr_deep_equality_limit),
        cmocka_unit_test(test_expr_refs),
        cmocka_unit_test(test_expr_refs_list),
        cmocka_unit_test(test_expr_precedence),
        cmocka_unit_test(test_expr_not),
        cmocka_unit_test(test_expr_short_circuit),
        cmocka_unit_test(test_expr_long_chains),
        cmocka_unit_test(test_expr_type_errors),
        cmocka_unit_test(test_expr_compare_errors),
        cmocka_unit_test(test_expr_long_values_in_messages),
        cmocka_unit_test(test_expr_result_not_boolean),
        cmocka_unit_test(test_expr_eval_ref_errors),
        cmocka_unit_test(test_expr_err_structure),
        cmocka_unit_test(test_expr_err_tokens),
        cmocka_unit_test(test_expr_err_numbers),
        cmocka_unit_test(test_expr_err_refs),
        cmocka_unit_test(test_expr_depth_limit),
        cmocka_unit_test(test_expr_length_limit),
        cmocka_unit_test(test_expr_parse_err_null),
        cmocka_unit_test(test_expr_reuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
