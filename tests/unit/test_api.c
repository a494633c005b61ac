/* Unit tests for the pure parts of src/api: router, query parsers, error
 * mapping and shape, UTF-8 repair, listen addresses, the rate limiter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "api/api_internal.h"
#include "api/doctor.h"
#include "base/id.h"

static void test_router(void **state)
{
    struct api_path_params p;
    char allow[64];
    const struct api_route *r;
    (void)state;

    r = api__route_match(api__routes, api__nroutes, "GET", "/v1/health", &p, allow, sizeof(allow));
    assert_non_null(r);
    assert_ptr_equal(r->handler, api__health);
    assert_int_equal(r->scope, KEY_SCOPE_READ);
    assert_int_equal(p.n, 0);

    r = api__route_match(api__routes, api__nroutes, "GET", "/v1/health/scheduler", &p, allow,
                         sizeof(allow));
    assert_non_null(r);
    assert_int_equal(r->scope, 0); /* no key needed */

    /* The probes: no key either. */
    r = api__route_match(api__routes, api__nroutes, "GET", "/v1/health/live", &p, allow,
                         sizeof(allow));
    assert_non_null(r);
    assert_ptr_equal(r->handler, api__health_live);
    assert_int_equal(r->scope, 0);
    r = api__route_match(api__routes, api__nroutes, "GET", "/v1/health/ready", &p, allow,
                         sizeof(allow));
    assert_non_null(r);
    assert_ptr_equal(r->handler, api__health_ready);
    assert_int_equal(r->scope, 0);

    r = api__route_match(api__routes, api__nroutes, "POST", "/v1/workflows/nightly/executions", &p,
                         allow, sizeof(allow));
    assert_non_null(r);
    assert_ptr_equal(r->handler, api__executions_submit);
    assert_int_equal(r->scope, KEY_SCOPE_WRITE);
    assert_int_equal(p.n, 1);
    assert_string_equal(p.values[0], "nightly");

    r = api__route_match(api__routes, api__nroutes, "POST", "/v1/executions/ex_1/cancel", &p, allow,
                         sizeof(allow));
    assert_non_null(r);
    assert_ptr_equal(r->handler, api__executions_cancel);
    assert_string_equal(p.values[0], "ex_1");

    r = api__route_match(api__routes, api__nroutes, "GET", "/v1/executions/ex_1/logs", &p, allow,
                         sizeof(allow));
    assert_ptr_equal(r->handler, api__executions_logs);

    r = api__route_match(api__routes, api__nroutes, "DELETE", "/v1/keys/key_1", &p, allow,
                         sizeof(allow));
    assert_non_null(r);
    assert_int_equal(r->scope, KEY_SCOPE_ADMIN);

    /* Known path, wrong method: 405 with the allowed ones. */
    r = api__route_match(api__routes, api__nroutes, "PUT", "/v1/workflows/x", &p, allow,
                         sizeof(allow));
    assert_null(r);
    assert_string_equal(allow, "GET, HEAD, DELETE");
    r = api__route_match(api__routes, api__nroutes, "DELETE", "/v1/executions", &p, allow,
                         sizeof(allow));
    assert_null(r);
    assert_string_equal(allow, "GET, HEAD");

    /* Unknown paths: 404. */
    static const char *const unknown[] = {
        "/",
        "/v1",
        "/v1/",
        "/v1/health/",
        "/v1/workflows/",
        "/v1/workflows//executions",
        "/v1/executions/ex_1/logs/more",
        "/v2/health",
        "/v1/healthz",
        "//v1/health",
    };
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        r = api__route_match(api__routes, api__nroutes, "GET", unknown[i], &p, allow,
                             sizeof(allow));
        if (r || allow[0])
            fail_msg("'%s' should be unknown", unknown[i]);
    }

    /* A segment too long for a placeholder does not match. */
    {
        char path[API_PARAM_MAX + 32];
        memset(path, 'a', sizeof(path) - 1);
        path[sizeof(path) - 1] = '\0';
        memcpy(path, "/v1/workflows/", 14);
        r = api__route_match(api__routes, api__nroutes, "GET", path, &p, allow, sizeof(allow));
        assert_null(r);
    }
}

static void test_query_parsers(void **state)
{
    int n = 0;
    unsigned mask = 0;
    char bad[40];
    int64_t ms = 0;
    (void)state;

    assert_int_equal(api__parse_limit("1", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(api__parse_limit("1000", &n), 0);
    assert_int_equal(n, 1000);
    assert_int_equal(api__parse_limit("0", &n), ERR_INVALID);
    assert_int_equal(api__parse_limit("1001", &n), ERR_INVALID);
    assert_int_equal(api__parse_limit("-5", &n), ERR_INVALID);
    assert_int_equal(api__parse_limit("10x", &n), ERR_INVALID);
    assert_int_equal(api__parse_limit("", &n), ERR_INVALID);
    assert_int_equal(api__parse_limit(NULL, &n), ERR_INVALID);
    assert_int_equal(api__parse_limit("99999999999999999999", &n), ERR_INVALID);

    assert_int_equal(api__parse_status_list("failed", &mask, bad, sizeof(bad)), 0);
    assert_int_equal(mask, 1u << EXEC_FAILED);
    assert_int_equal(api__parse_status_list("queued,running,timed_out", &mask, bad, sizeof(bad)),
                     0);
    assert_int_equal(mask, (1u << EXEC_QUEUED) | (1u << EXEC_RUNNING) | (1u << EXEC_TIMED_OUT));
    assert_int_equal(api__parse_status_list("failed,bogus", &mask, bad, sizeof(bad)), ERR_INVALID);
    assert_string_equal(bad, "bogus");
    assert_int_equal(api__parse_status_list("failed,", &mask, bad, sizeof(bad)), ERR_INVALID);
    assert_int_equal(api__parse_status_list("", &mask, bad, sizeof(bad)), ERR_INVALID);

    assert_int_equal(api__parse_instant("2026-11-29T10:00:00Z", &ms), 0);
    assert_int_equal(ms, 1795946400000LL);
    assert_int_equal(api__parse_instant("2026-11-29", &ms), 0);
    assert_int_equal(ms, 1795910400000LL);
    assert_int_equal(api__parse_instant("1795946400000", &ms), 0);
    assert_int_equal(ms, 1795946400000LL);
    assert_int_equal(api__parse_instant("yesterday", &ms), ERR_INVALID);
    assert_int_equal(api__parse_instant("", &ms), ERR_INVALID);

    assert_int_equal(api__parse_bool("true", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(api__parse_bool("0", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(api__parse_bool("yes", &n), ERR_INVALID);

    assert_true(api__valid_request_id("req_abc-1.2"));
    assert_false(api__valid_request_id(""));
    assert_false(api__valid_request_id("a b"));
    assert_false(api__valid_request_id("x\r\nInjected: 1"));
    {
        char id[80];
        memset(id, 'a', 64);
        id[64] = '\0';
        assert_true(api__valid_request_id(id));
        id[64] = 'a';
        id[65] = '\0';
        assert_false(api__valid_request_id(id));
    }
    assert_true(api__valid_idempotency_key("order-42/retry:1"));
    assert_false(api__valid_idempotency_key(""));
    assert_false(api__valid_idempotency_key("with space"));

    {
        char id[ID_MAX];
        id_new("ex_", id);
        assert_true(api__valid_exec_id(id));
        id[0] = 'k';
        assert_false(api__valid_exec_id(id));
        assert_false(api__valid_exec_id("ex_short"));
        assert_false(api__valid_exec_id("ex_../../etc/passwd"));
    }
}

static void test_errors(void **state)
{
    json_t *e, *inner;
    (void)state;

    assert_int_equal(api__status_for_err(ERR_INVALID), 422);
    assert_int_equal(api__status_for_err(ERR_NOT_FOUND), 404);
    assert_int_equal(api__status_for_err(ERR_CONFLICT), 409);
    assert_int_equal(api__status_for_err(ERR_TOO_BIG), 413);
    assert_int_equal(api__status_for_err(ERR_BUSY), 503);
    assert_int_equal(api__status_for_err(ERR_STORE), 503);
    assert_int_equal(api__status_for_err(ERR_IO), 500);
    assert_int_equal(api__status_for_err(ERR_INTERNAL), 500);
    assert_int_equal(api__status_for_err(-999), 500);

    static const struct {
        int status;
        const char *code;
    } codes[] = {
        {400, "bad_request"},       {401, "invalid_token"},      {403, "forbidden"},
        {404, "not_found"},         {405, "method_not_allowed"}, {409, "conflict"},
        {413, "payload_too_large"}, {422, "validation_failed"},  {429, "rate_limited"},
        {500, "internal"},          {503, "unavailable"},
    };
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        assert_string_equal(api__code_for_status(codes[i].status), codes[i].code);

    e = api__error_json(404, "no workflow 'x'", NULL);
    inner = json_object_get(e, "error");
    assert_non_null(inner);
    assert_int_equal(json_object_size(e), 1);
    assert_int_equal(json_object_size(inner), 3);
    assert_string_equal(json_string_value(json_object_get(inner, "code")), "not_found");
    assert_string_equal(json_string_value(json_object_get(inner, "message")), "no workflow 'x'");
    assert_true(json_is_array(json_object_get(inner, "details")));
    assert_int_equal(json_array_size(json_object_get(inner, "details")), 0);
    json_decref(e);

    /* A message with invalid UTF-8 (echoed user input) still gives a string. */
    e = api__error_json(404, "no workflow '\xff\xfe'", json_pack("[{s:s}]", "path", "$"));
    inner = json_object_get(e, "error");
    assert_string_equal(json_string_value(json_object_get(inner, "message")),
                        "no workflow '\xef\xbf\xbd\xef\xbf\xbd'");
    assert_int_equal(json_array_size(json_object_get(inner, "details")), 1);
    json_decref(e);
}

static void test_utf8_repair(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"caf\xc3\xa9", 5, "caf\xc3\xa9"},
        {"\xe2\x82\xac", 3, "\xe2\x82\xac"},
        {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80"},
        {"a\xffz", 3, "a\xef\xbf\xbdz"},
        {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* overlong '/' */
        {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* surrogate */
        {"\xe2\x82", 2, "\xef\xbf\xbd\xef\xbf\xbd"},                 /* cut short */
        {"\xf4\x90\x80\x80", 4,
         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* > U+10FFFF */
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = api__json_string(cases[i].in, cases[i].len);
        char *dump;
        assert_non_null(j);
        assert_string_equal(json_string_value(j), cases[i].out);
        dump = json_dumps(j, JSON_ENCODE_ANY);
        assert_non_null(dump); /* encodable: valid UTF-8 */
        free(dump);
        json_decref(j);
    }
    /* NUL bytes are kept (as \u0000), length and all. */
    {
        json_t *j = api__json_string("a\0b", 3);
        assert_int_equal(json_string_length(j), 3);
        json_decref(j);
    }
}

static void test_listen(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    struct err err = ERR_INIT;
    char host[INET6_ADDRSTRLEN];
    (void)state;

    assert_int_equal(api_parse_listen("127.0.0.1:8080", &ss, &len, &err), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 8080);
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
    assert_string_equal(host, "127.0.0.1");

    assert_int_equal(api_parse_listen("[::1]:9090", &ss, &len, &err), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 9090);

    assert_int_equal(api_parse_listen("8081", &ss, &len, &err), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
    assert_string_equal(host, "127.0.0.1");

    assert_int_equal(api_parse_listen(":0", &ss, &len, &err), 0);
    inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof(host));
    assert_string_equal(host, "0.0.0.0");

    assert_int_equal(api_parse_listen("", &ss, &len, &err), ERR_INVALID);
    assert_int_equal(api_parse_listen("127.0.0.1", &ss, &len, &err), ERR_INVALID);
    assert_int_equal(api_parse_listen("127.0.0.1:", &ss, &len, &err), ERR_INVALID);
    assert_int_equal(api_parse_listen("127.0.0.1:65536", &ss, &len, &err), ERR_INVALID);
    assert_int_equal(api_parse_listen("127.0.0.1:http", &ss, &len, &err), ERR_INVALID);
    assert_int_equal(api_parse_listen("::1:8080", &ss, &len, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "[addr]:port"));
    assert_int_equal(api_parse_listen("[::1]8080", &ss, &len, &err), ERR_INVALID);
    assert_int_equal(api_parse_listen("[]:8080", &ss, &len, &err), ERR_INVALID);
}

static void test_ratelimit_window(void **state)
{
    struct api_ratelimit *rl = api__ratelimit_new(3, 60000, 64);
    int64_t t0 = 1000000;
    (void)state;

    /* Under the limit: allowed. */
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_AAAAAAAAA", t0), 0);
    api__ratelimit_fail(rl, "10.0.0.1", "sk_AAAAAAAAA", t0);
    api__ratelimit_fail(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 1000);
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 2000), 0);
    api__ratelimit_fail(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 2000);
    /* At the limit: refused until the window (opened at the first failure) ends. */
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 2000), 58000);
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 59999), 1);
    /* Other clients are not affected, nor other keys of the same client. */
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_BBBBBBBBB", t0 + 2000), 0);
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "", t0 + 2000), 0);
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.2", "sk_AAAAAAAAA", t0 + 2000), 0);
    assert_int_equal(api__ratelimit_check(rl, "::1", "sk_AAAAAAAAA", t0 + 2000), 0);
    /* The window ends: allowed again, and a new window starts with the next failure. */
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 60000), 0);
    api__ratelimit_fail(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 61000);
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 61000), 0);
    api__ratelimit_fail(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 62000);
    api__ratelimit_fail(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 63000);
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_AAAAAAAAA", t0 + 63000), 58000);
    api__ratelimit_free(rl);
}

static void test_cidrs(void **state)
{
    struct api_cidrs c;
    struct err err = ERR_INIT;
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    unsigned char k1[API_ADDR_KEY_LEN], k2[API_ADDR_KEY_LEN];
    (void)state;

    assert_int_equal(api__cidrs_parse("10.0.0.0/8, 192.168.1.7 ,::1,fd00::/16", &c, &err), 0);
    assert_int_equal(c.n, 4);
    assert_true(api__cidrs_match_text(&c, "10.200.3.4"));
    assert_false(api__cidrs_match_text(&c, "11.0.0.1"));
    assert_true(api__cidrs_match_text(&c, "192.168.1.7"));
    assert_false(api__cidrs_match_text(&c, "192.168.1.8"));
    assert_true(api__cidrs_match_text(&c, "::1"));
    assert_true(api__cidrs_match_text(&c, "::ffff:10.1.1.1")); /* IPv4-mapped */
    assert_true(api__cidrs_match_text(&c, "fd00:1::2"));
    assert_false(api__cidrs_match_text(&c, "fd01::2"));
    assert_false(api__cidrs_match_text(&c, "not an address"));
    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    inet_pton(AF_INET, "10.9.9.9", &a4.sin_addr);
    assert_true(api__cidrs_match(&c, (struct sockaddr *)&a4));
    api__cidrs_release(&c);

    assert_int_equal(api__cidrs_parse("", &c, &err), 0);
    assert_int_equal(c.n, 0);
    assert_false(api__cidrs_match_text(&c, "10.0.0.1"));
    assert_int_equal(api__cidrs_parse("10.0.0.0/33", &c, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "10.0.0.0/33"));
    assert_int_equal(api__cidrs_parse("10.0.0.1,,10.0.0.2", &c, &err), ERR_INVALID);
    assert_int_equal(api__cidrs_parse("example.com", &c, &err), ERR_INVALID);
    assert_int_equal(api__cidrs_parse("10.0.0.0/", &c, &err), ERR_INVALID);

    /* Connections are counted per IPv4 address and per IPv6 /64. */
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8:1:2::1", &a6.sin6_addr);
    api__addr_key((struct sockaddr *)&a6, k1);
    inet_pton(AF_INET6, "2001:db8:1:2:ffff::9", &a6.sin6_addr);
    api__addr_key((struct sockaddr *)&a6, k2);
    assert_memory_equal(k1, k2, API_ADDR_KEY_LEN);
    inet_pton(AF_INET6, "2001:db8:1:3::1", &a6.sin6_addr);
    api__addr_key((struct sockaddr *)&a6, k2);
    assert_memory_not_equal(k1, k2, API_ADDR_KEY_LEN);
    api__addr_key((struct sockaddr *)&a4, k1);
    inet_pton(AF_INET6, "::ffff:10.9.9.9", &a6.sin6_addr);
    api__addr_key((struct sockaddr *)&a6, k2);
    assert_memory_equal(k1, k2, API_ADDR_KEY_LEN);
}

static void test_client_from_forwarded(void **state)
{
    struct api_cidrs c;
    struct err err = ERR_INIT;
    char out[64];
    (void)state;

    assert_int_equal(api__cidrs_parse("10.0.0.0/8", &c, &err), 0);
    /* An untrusted peer: its own address, whatever it claims. */
    api__client_from_forwarded(&c, "203.0.113.5", "1.2.3.4", out, sizeof(out));
    assert_string_equal(out, "203.0.113.5");
    /* A trusted peer: the right-most address that is not a trusted proxy. */
    api__client_from_forwarded(&c, "10.0.0.1", "1.2.3.4", out, sizeof(out));
    assert_string_equal(out, "1.2.3.4");
    api__client_from_forwarded(&c, "10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.7", out, sizeof(out));
    assert_string_equal(out, "1.2.3.4");
    /* All trusted: the left-most. */
    api__client_from_forwarded(&c, "10.0.0.1", "10.0.0.3,10.0.0.2", out, sizeof(out));
    assert_string_equal(out, "10.0.0.3");
    /* Garbage: the nearest trusted hop. */
    api__client_from_forwarded(&c, "10.0.0.1", "1.2.3.4, junk, 10.0.0.2", out, sizeof(out));
    assert_string_equal(out, "10.0.0.2");
    api__client_from_forwarded(&c, "10.0.0.1", "", out, sizeof(out));
    assert_string_equal(out, "10.0.0.1");
    api__client_from_forwarded(&c, "10.0.0.1", NULL, out, sizeof(out));
    assert_string_equal(out, "10.0.0.1");
    api__client_from_forwarded(&c, "10.0.0.1", "2001:db8::1", out, sizeof(out));
    assert_string_equal(out, "2001:db8::1");
    api__cidrs_release(&c);
}

static void test_ratelimit_disabled_and_bounded(void **state)
{
    struct api_ratelimit *rl = api__ratelimit_new(0, 60000, 16);
    int64_t t0 = 5000;
    char ip[32];
    (void)state;

    for (int i = 0; i < 100; i++)
        api__ratelimit_fail(rl, "10.0.0.1", "sk_AAAAAAAAA", t0);
    assert_int_equal(api__ratelimit_check(rl, "10.0.0.1", "sk_AAAAAAAAA", t0), 0);
    api__ratelimit_free(rl);

    /* Many more clients than slots: memory stays bounded, nothing crashes, and
     * the most recent offender is still limited. */
    rl = api__ratelimit_new(2, 60000, 16);
    for (int i = 0; i < 10000; i++) {
        snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 256, i % 256);
        api__ratelimit_fail(rl, ip, "sk_AAAAAAAAA", t0 + i);
    }
    api__ratelimit_fail(rl, "192.168.0.1", "sk_AAAAAAAAA", t0 + 20000);
    api__ratelimit_fail(rl, "192.168.0.1", "sk_AAAAAAAAA", t0 + 20000);
    assert_true(api__ratelimit_check(rl, "192.168.0.1", "sk_AAAAAAAAA", t0 + 20000) > 0);
    api__ratelimit_free(rl);
}

static void test_ui_and_etags(void **state)
{
    (void)state;
    /* The pages claim /assets/ always, other paths outside /v1 for a browser. */
    assert_true(api__ui_claims("/assets/app.js", NULL));
    assert_true(api__ui_claims("/", "text/html,application/xhtml+xml;q=0.9"));
    assert_true(api__ui_claims("/executions/ex_1", "application/json, text/html"));
    assert_true(api__ui_claims("/login", "TEXT/HTML"));
    assert_false(api__ui_claims("/", NULL));
    assert_false(api__ui_claims("/", "*/*"));
    assert_false(api__ui_claims("/", "text/htmlx"));
    assert_false(api__ui_claims("/", "application/json"));
    assert_false(api__ui_claims("/v1", "text/html"));
    assert_false(api__ui_claims("/v1/executions", "text/html"));
    assert_true(api__ui_claims("/v10", "text/html"));

    assert_true(api__etag_matches("\"abc\"", "\"abc\""));
    assert_true(api__etag_matches("W/\"abc\"", "\"abc\""));
    assert_true(api__etag_matches("\"x\", \"abc\"", "\"abc\""));
    assert_true(api__etag_matches("*", "\"abc\""));
    assert_false(api__etag_matches("\"ab\"", "\"abc\""));
    assert_false(api__etag_matches("\"abcd\"", "\"abc\""));
    assert_false(api__etag_matches("", "\"abc\""));
    assert_false(api__etag_matches("\"abc", "\"abc\""));
    assert_false(api__etag_matches("abc", "\"abc\""));

    assert_true(api__csrf_equal("token", "token"));
    assert_false(api__csrf_equal("toke", "token"));
    assert_false(api__csrf_equal("tokenx", "token"));
    assert_false(api__csrf_equal("tokem", "token"));
    assert_false(api__csrf_equal(NULL, "token"));
    assert_false(api__csrf_equal("", ""));
}

static void test_gzip(void **state)
{
    char *z, big[4096], tag[64];
    size_t zlen;
    (void)state;
    /* Accept-Encoding: gzip by its own weight, else by that of "*". */
    assert_true(api__accepts_gzip("gzip"));
    assert_true(api__accepts_gzip("gzip, deflate, br"));
    assert_true(api__accepts_gzip("br;q=1.0, GZIP;q=0.5"));
    assert_true(api__accepts_gzip("x-gzip"));
    assert_true(api__accepts_gzip("*"));
    assert_true(api__accepts_gzip("deflate, *;q=0.1"));
    assert_true(api__accepts_gzip(" gzip ; q = 0.001 "));
    assert_true(api__accepts_gzip("gzip;q=bogus"));
    assert_false(api__accepts_gzip(NULL));
    assert_false(api__accepts_gzip(""));
    assert_false(api__accepts_gzip("identity"));
    assert_false(api__accepts_gzip("deflate, br"));
    assert_false(api__accepts_gzip("gzip;q=0"));
    assert_false(api__accepts_gzip("gzip;q=0.000, *"));
    assert_false(api__accepts_gzip("gzip; Q=0."));
    assert_false(api__accepts_gzip("*;q=0"));
    assert_false(api__accepts_gzip("gzip;q=0, *;q=1"));
    assert_false(api__accepts_gzip("gzipx, xgzip"));
    assert_false(api__accepts_gzip(",,;;=,"));

    /* Compressed when it is smaller; refused (-1) when it is not. */
    memset(big, 'a', sizeof(big));
    assert_int_equal(api__gzip(big, sizeof(big), 1, &z, &zlen), 0);
    assert_true(zlen < 100 && (unsigned char)z[0] == 0x1f && (unsigned char)z[1] == 0x8b);
    free(z);
    assert_int_equal(api__gzip("ab", 2, 9, &z, &zlen), -1);

    api__etag_gz("\"abc\"", tag, sizeof(tag));
    assert_string_equal(tag, "\"abc-gz\"");
    api__etag_gz("abc", tag, sizeof(tag));
    assert_string_equal(tag, "abc");
}

/* Refused keys grouped by (client, message), the largest group first; a group
 * idle for an hour starts again; the table stays bounded. */
static void test_authfails_groups(void **state)
{
    struct api_authfails *af = api__authfails_new();
    const char *two = "malformed Authorization header: more than one space after 'Bearer' "
                      "(use exactly one)";
    int64_t t0 = 10 * 3600 * 1000LL;
    json_t *g;
    char ip[32];
    (void)state;

    for (int i = 0; i < 12; i++)
        api__authfails_record(af, "10.0.0.5", "malformed", two, t0 + i);
    api__authfails_record(af, "10.0.0.6", "missing", "missing Authorization header", t0);
    api__authfails_record(af, "10.0.0.5", "unknown", "unknown API key", t0);
    g = api__authfails_json(af, t0 + 100);
    assert_int_equal(json_array_size(g), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 0), "client")),
                        "10.0.0.5");
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 0), "message")), two);
    assert_string_equal(json_string_value(json_object_get(json_array_get(g, 0), "reason")),
                        "malformed");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(g, 0), "count")), 12);
    json_decref(g);
    /* An hour later nothing is shown; a new failure counts from 1. */
    g = api__authfails_json(af, t0 + 3600 * 1000LL + 100);
    assert_int_equal(json_array_size(g), 0);
    json_decref(g);
    api__authfails_record(af, "10.0.0.5", "malformed", two, t0 + 3600 * 1000LL + 200);
    g = api__authfails_json(af, t0 + 3600 * 1000LL + 300);
    assert_int_equal(json_array_size(g), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(g, 0), "count")), 1);
    json_decref(g);
    /* A flood of addresses: bounded. */
    for (int i = 0; i < 1000; i++) {
        snprintf(ip, sizeof(ip), "10.1.%d.%d", i / 256, i % 256);
        api__authfails_record(af, ip, "unknown", "unknown API key", t0 + 3600 * 1000LL + 400 + i);
    }
    g = api__authfails_json(af, t0 + 3600 * 1000LL + 2000);
    assert_true(json_array_size(g) <= 64);
    json_decref(g);
    api__authfails_record(NULL, "x", "y", "z", 1); /* a no-op */
    api__authfails_free(af);
    api__authfails_free(NULL);
}

/* The pool's "exhausted in the last hour": per-minute slots, each event
 * counted for 60 minutes and no longer, whatever the gaps between events. */
static void test_hour_count(void **state)
{
    const int64_t min = 60000, t0 = 5 * 3600 * 1000LL + 1234;
    struct api_hour_count h;

    (void)state;
    memset(&h, 0, sizeof(h));
    assert_int_equal(api__hour_count_sum(&h, t0), 0);
    api__hour_count_add(&h, t0);
    api__hour_count_add(&h, t0 + 10);
    api__hour_count_add(&h, t0 + 30 * min);
    assert_int_equal(api__hour_count_sum(&h, t0), 2);
    assert_int_equal(api__hour_count_sum(&h, t0 + 30 * min), 3);
    assert_int_equal(api__hour_count_sum(&h, t0 + 59 * min), 3);
    /* The first minute's two are an hour old. */
    assert_int_equal(api__hour_count_sum(&h, t0 + 60 * min), 1);
    assert_int_equal(api__hour_count_sum(&h, t0 + 89 * min), 1);
    assert_int_equal(api__hour_count_sum(&h, t0 + 90 * min), 0);
    /* A slot reused an hour later starts again from one. */
    api__hour_count_add(&h, t0 + 60 * min);
    assert_int_equal(api__hour_count_sum(&h, t0 + 60 * min), 2);
    assert_int_equal(api__hour_count_sum(&h, t0 + 5 * 60 * min), 0);
    api__hour_count_add(&h, t0 + 5 * 60 * min);
    assert_int_equal(api__hour_count_sum(&h, t0 + 5 * 60 * min), 1);
}

/* libpq's and SQLite's messages, each told apart with its fix. */
static void test_doctor_db_cause(void **state)
{
    static const struct {
        const char *msg, *cause, *fix_part;
    } cases[] = {
        {"cannot connect to PostgreSQL: connection to server at \"127.0.0.1\", port 5432 failed: "
         "FATAL:  password authentication failed for user \"orch\"",
         "wrong credentials", "user and password in DATABASE_URL"},
        {"cannot connect to PostgreSQL: ... FATAL:  database \"orch\" does not exist",
         "database missing", "createdb"},
        {"cannot connect to PostgreSQL: ... FATAL:  role \"x\" does not exist",
         "wrong credentials", "CREATE ROLE"},
        {"cannot connect to PostgreSQL: connection to server at \"127.0.0.1\", port 1 failed: "
         "Connection refused\n\tIs the server running on that host and accepting TCP/IP "
         "connections?",
         "unreachable", "pg_isready"},
        {"cannot connect to PostgreSQL: server does not support SSL, but SSL was required",
         "TLS problem", "sslmode"},
        {"cannot connect to PostgreSQL: ... certificate verify failed", "TLS problem",
         "sslrootcert"},
        {"cannot connect to PostgreSQL: ... timeout expired", "unreachable", "firewalls"},
        {"cannot connect to PostgreSQL: could not translate host name \"dbx\" to address",
         "unreachable", "resolve"},
        {"cannot connect to PostgreSQL: FATAL:  sorry, too many clients already",
         "connection slots exhausted", "max_connections"},
        {"cannot connect to PostgreSQL: no pg_hba.conf entry for host \"10.0.0.5\"",
         "refused by pg_hba.conf", "pg_hba.conf"},
        {"no data directory at './.orch' (pass --data-dir DIR)", "no data directory",
         "--data-dir"},
        {"something else entirely", "database error", "psql"},
    };
    const char *cause, *fix;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        doctor_db_cause(cases[i].msg, &cause, &fix);
        assert_string_equal(cause, cases[i].cause);
        assert_non_null(strstr(fix, cases[i].fix_part));
    }
    doctor_db_cause(NULL, &cause, &fix);
    assert_string_equal(cause, "database error");
}

static void test_doctor_route_is_admin(void **state)
{
    struct api_path_params p;
    char allow[64];
    const struct api_route *r;
    (void)state;

    r = api__route_match(api__routes, api__nroutes, "GET", "/v1/doctor", &p, allow,
                         sizeof(allow));
    assert_non_null(r);
    assert_ptr_equal(r->handler, api__doctor);
    assert_int_equal(r->scope, KEY_SCOPE_ADMIN);
}

/* The parsers of a browser's session (session.c): cookie, token form, CSRF check, body. */
static void test_session_parsers(void **state)
{
    static const char tok[] = "Qm9vdHN0cmFwIGEgc2Vzc2lvbiB0b2tlbiBoZXJlISE";
    char out[API_SESSION_TOKEN_MAX], small[4], key[AUTH_KEY_MAX_LEN + 1];
    char csrf[API_SESSION_TOKEN_MAX], csrf2[API_SESSION_TOKEN_MAX], body[400];
    unsigned char h[SESSION_HASH_LEN];
    size_t len = 99;

    (void)state;
    /* Cookie: the first of the name, spaces and quotes dropped, other names skipped. */
    assert_int_equal(api__cookie_find("orch_session=abc", "orch_session", out, sizeof(out)), 1);
    assert_string_equal(out, "abc");
    assert_int_equal(api__cookie_find("a=1; orch_session = \"x y\" ;b=2", "orch_session", out,
                                      sizeof(out)),
                     1);
    assert_string_equal(out, "x y");
    assert_int_equal(api__cookie_find("orch_session=1;orch_session=2", "orch_session", out,
                                      sizeof(out)),
                     1);
    assert_string_equal(out, "1");
    assert_int_equal(api__cookie_find("xorch_session=1; orch_sessionx=2; orch_session",
                                      "orch_session", out, sizeof(out)),
                     0);
    assert_string_equal(out, "");
    assert_int_equal(api__cookie_find(";;;  ;", "orch_session", out, sizeof(out)), 0);
    assert_int_equal(api__cookie_find("", "orch_session", out, sizeof(out)), 0);
    assert_int_equal(api__cookie_find(NULL, "orch_session", out, sizeof(out)), 0);
    assert_int_equal(api__cookie_find("orch_session=", "orch_session", out, sizeof(out)), 1);
    assert_string_equal(out, "");
    assert_int_equal(api__cookie_find("orch_session=\"", "orch_session", out, sizeof(out)), 1);
    assert_string_equal(out, "\"");
    /* Present but too long for the buffer: found, with no value. */
    assert_int_equal(api__cookie_find("orch_session=abcd", "orch_session", small, sizeof(small)),
                     1);
    assert_string_equal(small, "");
    assert_int_equal(api__cookie_find("orch_session=abc", "orch_session", small, sizeof(small)),
                     1);
    assert_string_equal(small, "abc");

    /* Token form: 43 base64url characters. */
    assert_true(api__session_token_valid(tok));
    assert_false(api__session_token_valid(NULL));
    assert_false(api__session_token_valid(""));
    snprintf(out, sizeof(out), "%.42s", tok);
    assert_false(api__session_token_valid(out));
    snprintf(out, sizeof(out), "%sA", tok);
    assert_false(api__session_token_valid(out));
    snprintf(out, sizeof(out), "%.42s+", tok);
    assert_false(api__session_token_valid(out));

    /* CSRF: derived from the token, the same each time, a token itself, checked by hash. */
    api__session_csrf(tok, csrf);
    api__session_csrf(tok, csrf2);
    assert_string_equal(csrf, csrf2);
    assert_string_not_equal(csrf, tok);
    assert_true(api__session_token_valid(csrf));
    api__session_hash(csrf, strlen(csrf), h);
    assert_true(api__csrf_check(csrf, h));
    assert_false(api__csrf_check(tok, h));
    assert_false(api__csrf_check(NULL, h));
    assert_false(api__csrf_check("", h));
    csrf2[0] = csrf2[0] == 'A' ? 'B' : 'A';
    assert_false(api__csrf_check(csrf2, h));
    api__session_csrf("another token", csrf2);
    assert_string_not_equal(csrf, csrf2);

    /* The sign-in body. */
    snprintf(body, sizeof(body), "{\"key\": \"sk_%s\"}", tok);
    assert_int_equal(api__session_body_key(body, strlen(body), key, &len), 0);
    assert_int_equal(len, 3 + strlen(tok));
    assert_string_equal(key + 3, tok);
    assert_int_equal(api__session_body_key(body, strlen(body) - 1, key, &len), 400);
    assert_int_equal(len, 0);
    assert_string_equal(key, "");
    assert_int_equal(api__session_body_key("", 0, key, &len), 400);
    assert_int_equal(api__session_body_key("{}", 2, key, &len), 400);
    assert_int_equal(api__session_body_key("[\"sk_\"]", 7, key, &len), 400);
    assert_int_equal(api__session_body_key("{\"key\": 1}", 10, key, &len), 400);
    snprintf(body, sizeof(body), "{\"key\": \"sk_%s\", \"more\": 1}", tok);
    assert_int_equal(api__session_body_key(body, strlen(body), key, &len), 400);
    snprintf(body, sizeof(body), "{\"key\": \"sk_%s\", \"key\": \"x\"}", tok);
    assert_int_equal(api__session_body_key(body, strlen(body), key, &len), 400);
    assert_int_equal(api__session_body_key("{\"key\": \"nope\"}", 15, key, &len), 401);
    snprintf(body, sizeof(body), "{\"key\": \"pk_%s\"}", tok);
    assert_int_equal(api__session_body_key(body, strlen(body), key, &len), 401);
    snprintf(body, sizeof(body), "{\"key\": \"sk_%s\\u0000\"}", tok); /* jansson refuses NUL */
    assert_int_equal(api__session_body_key(body, strlen(body), key, &len), 400);
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_router),
        cmocka_unit_test(test_query_parsers),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_utf8_repair),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_ratelimit_window),
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_client_from_forwarded),
        cmocka_unit_test(test_ratelimit_disabled_and_bounded),
        cmocka_unit_test(test_ui_and_etags),
        cmocka_unit_test(test_authfails_groups),
        cmocka_unit_test(test_hour_count),
        cmocka_unit_test(test_doctor_db_cause),
        cmocka_unit_test(test_doctor_route_is_admin),
        cmocka_unit_test(test_session_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
