/* Unit tests for src/dag/dag_yaml.c: YAML definitions to JSON, positions, limits, and back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>

#include "base/err.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag/dag.h"

/* Convert `yaml`; expect success and return the document. */
static json_t *load_ok(const char *yaml)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    json_t *v = NULL;
    int rc = dag_yaml_load(yaml, strlen(yaml), &v, NULL, &pr);

    for (size_t i = 0; i < pr.n; i++)
        print_message("  problem: %s: %s\n", pr.items[i].path, pr.items[i].message);
    assert_int_equal(rc, 0);
    assert_non_null(v);
    dag_problems_release(&pr);
    return v;
}

/* Convert `yaml`; expect failure with a message containing `needle` at `line` (0: any). */
static void load_bad(const char *yaml, const char *needle, int line)
{
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    json_t *v = NULL;
    int rc = dag_yaml_load(yaml, strlen(yaml), &v, NULL, &pr);

    assert_int_equal(rc, ERR_INVALID);
    assert_null(v);
    assert_int_equal(pr.n, 1);
    if (!strstr(pr.items[0].message, needle) || (line && pr.items[0].line != line))
        print_message("  got line %d: %s\n", pr.items[0].line, pr.items[0].message);
    assert_non_null(strstr(pr.items[0].message, needle));
    assert_non_null(strstr(pr.items[0].message, "invalid YAML at line "));
    if (line)
        assert_int_equal(pr.items[0].line, line);
    assert_string_equal(pr.items[0].path, "$");
    dag_problems_release(&pr);
}

static double cpu_seconds(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

/* Plain scalars follow the YAML 1.2 core schema; quoted ones stay strings. */
static void test_scalars(void **state)
{
    static const struct {
        const char *yaml; /* the value as written */
        const char *json; /* what it becomes */
    } cases[] = {
        {"true", "true"},
        {"False", "false"},
        {"null", "null"},
        {"~", "null"},
        {"", "null"},
        {"12", "12"},
        {"-7", "-7"},
        {"+3", "3"},
        {"0o17", "15"},
        {"0x1f", "31"},
        {"1.5", "1.5"},
        {"2e3", "2000.0"},
        {".5", "0.5"},
        {"yes", "\"yes\""},
        {"no", "\"no\""},
        {"on", "\"on\""},
        {"off", "\"off\""},
        {"NO", "\"NO\""},
        {"0755", "\"0755\""},
        {"1:30", "\"1:30\""},
        {"2024-01-01", "\"2024-01-01\""},
        {".inf", "\".inf\""},
        {"'true'", "\"true\""},
        {"\"12\"", "\"12\""},
        {"!!str 12", "\"12\""},
        {"!!int 12", "12"},
        {"20261201", "20261201"},
        {"hello world", "\"hello world\""},
        {"99999999999999999999", "1e20"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *doc = xasprintf("v: %s\n", cases[i].yaml);
        json_t *v = load_ok(doc);
        char *got = json_dumps(json_object_get(v, "v"), JSON_ENCODE_ANY | JSON_COMPACT);
        if (strcmp(got, cases[i].json))
            print_message("  %s -> %s (want %s)\n", cases[i].yaml, got, cases[i].json);
        assert_string_equal(got, cases[i].json);
        free(got);
        free(doc);
        json_decref(v);
    }
}

/* A definition with comments, a literal block and flow collections. */
static void test_definition(void **state)
{
    const char *yaml = "# the hello workflow\n"
                       "name: hello   # trailing comment\n"
                       "tasks:\n"
                       "  - name: a\n"
                       "    command: |\n"
                       "      echo one\n"
                       "      echo two\n"
                       "  - {name: b, dependsOn: [a], command: [echo, b]}\n";
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    char *json = NULL;

    (void)state;
    assert_int_equal(dag_yaml_to_json(yaml, strlen(yaml), &json, NULL, &pr), 0);
    assert_string_equal(json, "{\"name\":\"hello\",\"tasks\":[{\"name\":\"a\",\"command\":"
                              "\"echo one\\necho two\\n\"},{\"name\":\"b\",\"dependsOn\":[\"a\"],"
                              "\"command\":[\"echo\",\"b\"]}]}");
    assert_int_equal(dag_parse(json, strlen(json), &wf, &pr), 0);
    assert_int_equal(wf->ntasks, 2);
    assert_string_equal(wf->tasks[0].shell, "echo one\necho two\n");
    workflow_free(wf);
    free(json);
    dag_problems_release(&pr);
}

/* Validation problems get the line and column of the value along their path. */
static void test_positions(void **state)
{
    const char *yaml = "name: pos\n"
                       "tasks:\n"
                       "  - name: a\n"
                       "    command: echo a\n"
                       "  - name: b\n"
                       "    dependsOn:\n"
                       "      - trasform\n"
                       "    command: echo b\n"
                       "    retries: many\n"
                       "    \"odd key\": 1\n";
    struct dag_yaml_map map = DAG_YAML_MAP_INIT;
    struct dag_problems pr = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    char *json = NULL;
    int seen = 0;

    (void)state;
    assert_int_equal(dag_yaml_to_json(yaml, strlen(yaml), &json, &map, &pr), 0);
    assert_int_equal(dag_parse(json, strlen(json), &wf, &pr), ERR_INVALID);
    dag_yaml_locate(&map, &pr);
    for (size_t i = 0; i < pr.n; i++) {
        print_message("  %s (%d:%d): %s\n", pr.items[i].path, pr.items[i].line, pr.items[i].column,
                      pr.items[i].message);
        if (!strcmp(pr.items[i].path, "$.tasks[1].dependsOn[0]")) {
            assert_int_equal(pr.items[i].line, 7);
            assert_int_equal(pr.items[i].column, 9);
            seen |= 1;
        } else if (!strcmp(pr.items[i].path, "$.tasks[1].retries")) {
            assert_int_equal(pr.items[i].line, 9);
            assert_int_equal(pr.items[i].column, 14);
            seen |= 2;
        } else if (!strcmp(pr.items[i].path, "$.tasks[1][\"odd key\"]")) {
            assert_int_equal(pr.items[i].line, 10);
            assert_int_equal(pr.items[i].column, 16);
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    free(json);
    dag_yaml_map_release(&map);
    dag_problems_release(&pr);

    /* Syntax errors: the line and column where the parser stopped. */
    load_bad("name: x\ntasks: [a,\n", "did not find expected node content", 3);
    load_bad("name: x\n  bad: indent\n", "mapping values are not allowed", 2);
    load_bad("a:\n\tb: 1\n", "tab", 2);
}

static void test_refusals(void **state)
{
    (void)state;
    load_bad("a: 1\nb: 2\na: 3\n", "duplicate key 'a'", 3);
    load_bad("base: &b {x: 1}\nc:\n  <<: *b\n", "merge keys (<<) are not supported", 3);
    load_bad("a: &a [1, *a]\n", "a cycle", 1);
    load_bad("a: *nope\n", "unknown alias '*nope'", 1);
    load_bad("a: !!binary aGk=\n", "unsupported tag", 1);
    load_bad("a: !custom x\n", "unsupported tag", 1);
    load_bad("a: !!int twelve\n", "is not a valid int", 1);
    load_bad("a: 1\n---\nb: 2\n", "only one document", 2);
    load_bad("# nothing\n", "the document is empty", 0);
    load_bad("? [a, b]\n: 1\n", "a key must be a plain value", 1);
    load_bad("a: \"x\\0y\"\n", "NUL", 1);
}

/* Anchors and aliases work, within the limits. */
static void test_aliases(void **state)
{
    json_t *v = load_ok("defaults: &d {retries: 2, timeout: 10s}\n"
                        "one: *d\n"
                        "two: *d\n"
                        "word: &w hello\n"
                        "again: *w\n");
    char *got = json_dumps(v, JSON_COMPACT);

    (void)state;
    assert_string_equal(got,
                        "{\"defaults\":{\"retries\":2,\"timeout\":\"10s\"},\"one\":{\"retries\":2,"
                        "\"timeout\":\"10s\"},\"two\":{\"retries\":2,\"timeout\":\"10s\"},"
                        "\"word\":\"hello\",\"again\":\"hello\"}");
    free(got);
    json_decref(v);
}

/* The "billion laughs": 9 levels of 10 aliases each is refused quickly. */
static void test_alias_bomb(void **state)
{
    struct strbuf sb = STRBUF_INIT;
    double t0 = cpu_seconds();

    (void)state;
    strbuf_adds(&sb, "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (int i = 1; i <= 9; i++) {
        strbuf_addf(&sb, "a%d: &a%d [", i, i);
        for (int j = 0; j < 10; j++)
            strbuf_addf(&sb, "%s*a%d", j ? ", " : "", i - 1);
        strbuf_adds(&sb, "]\n");
    }
    load_bad(sb.buf, "refused as an alias bomb", 0);
    assert_true(cpu_seconds() - t0 < 1.0);
    strbuf_release(&sb);

    /* A few values, but large ones: the expanded text is bounded too. */
    strbuf_init(&sb, 0);
    strbuf_adds(&sb, "big: &b \"");
    for (int i = 0; i < 100000; i++)
        strbuf_addch(&sb, 'x');
    strbuf_adds(&sb, "\"\nmany: [");
    for (int i = 0; i < 100; i++)
        strbuf_adds(&sb, i ? ", *b" : "*b");
    strbuf_adds(&sb, "]\n");
    t0 = cpu_seconds();
    load_bad(sb.buf, "more than 4194304 bytes (aliases counted in full)", 2);
    assert_true(cpu_seconds() - t0 < 1.0);
    strbuf_release(&sb);

    /* Many anchors are refused too (aliases are looked up among them). */
    strbuf_init(&sb, 0);
    for (int i = 0; i < 1001; i++)
        strbuf_addf(&sb, "k%d: &x%d v\n", i, i);
    load_bad(sb.buf, "more than 1000 anchors", 1001);
    strbuf_release(&sb);
}

/* Deep nesting stops at DAG_YAML_MAX_DEPTH, before libyaml's scanner goes quadratic. */
static void test_depth(void **state)
{
    size_t n = 200000;
    char *deep = xmalloc(2 * n + 1);
    double t0;
    json_t *v;
    struct strbuf sb = STRBUF_INIT;

    (void)state;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    t0 = cpu_seconds();
    load_bad(deep, "nested deeper than 64 levels", 1);
    assert_true(cpu_seconds() - t0 < 1.0);
    free(deep);

    for (int i = 0; i < DAG_YAML_MAX_DEPTH; i++)
        strbuf_addch(&sb, '[');
    for (int i = 0; i < DAG_YAML_MAX_DEPTH; i++)
        strbuf_addch(&sb, ']');
    v = load_ok(sb.buf);
    json_decref(v);
    strbuf_release(&sb);
}

/* JSON to YAML and back gives the same document. */
static void test_to_yaml(void **state)
{
    static const char *const docs[] = {
        "{\"name\":\"x\",\"tasks\":[{\"name\":\"a\",\"command\":\"echo one\\necho two\\n\"}]}",
        "{\"s\":[\"yes\",\"no\",\"on\",\"Off\",\"12\",\"1.5\",\"true\",\"null\",\"\",\"~\","
        "\"a: b\",\"- x\",\"#c\",\"caf\\u00e9\",\" lead\",\"trail \",\"*x\",\"&y\",\"<<\"],"
        "\"n\":[1,-2,1.5,true,false,null],\"e\":{},\"a\":[],\"m\":\"no trailing newline\\nhere\","
        "\"k y\":{\"\":1,\"123\":2}}",
    };
    (void)state;
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *in = json_loads(docs[i], 0, NULL), *back;
        char *yaml = dag_json_to_yaml(in);
        assert_non_null(yaml);
        print_message("%s", yaml);
        back = load_ok(yaml);
        assert_true(json_equal(in, back));
        json_decref(in);
        json_decref(back);
        free(yaml);
    }
    {
        json_t *in = json_loads(docs[0], 0, NULL);
        char *yaml = dag_json_to_yaml(in);
        assert_non_null(strstr(yaml, "command: |"));
        free(yaml);
        json_decref(in);
    }
}

static void test_is_yaml(void **state)
{
    (void)state;
    assert_true(dag_is_yaml("a.yaml", "{}", 2));
    assert_true(dag_is_yaml("a.yml", "{}", 2));
    assert_false(dag_is_yaml("a.json", "name: x", 7));
    assert_false(dag_is_yaml("-", "  \n{\"a\":1}", 9));
    assert_true(dag_is_yaml("-", "name: x", 7));
    assert_true(dag_is_yaml(NULL, "# c\n{}", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),   cmocka_unit_test(test_definition),
        cmocka_unit_test(test_positions), cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_aliases),   cmocka_unit_test(test_alias_bomb),
        cmocka_unit_test(test_depth),     cmocka_unit_test(test_to_yaml),
        cmocka_unit_test(test_is_yaml),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
