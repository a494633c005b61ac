/* Unit tests for src/auth: key format, hashing, verification, Bearer parsing, scopes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "base/clock.h"
#include "base/xalloc.h"
#include "store/store.h"

struct fixture {
    char dir[64];
    struct store *st;
};

static int setup(void **state)
{
    struct fixture *f = xcalloc(1, sizeof(*f));
    struct err err = ERR_INIT;

    snprintf(f->dir, sizeof(f->dir), "/tmp/orch-test-auth-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    if (store_open(f->dir, STORE_CREATE, &f->st, &err)) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    if (auth_init(&err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];

    store_free(f->st);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static int is_key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static void test_key_format(void **state)
{
    char a[AUTH_KEY_BUF], b[AUTH_KEY_BUF];
    (void)state;

    auth_key_generate(a);
    assert_int_equal(strlen(a), AUTH_KEY_LEN);
    assert_memory_equal(a, "sk_", 3);
    for (size_t i = 3; i < strlen(a); i++)
        assert_true(is_key_char((unsigned char)a[i]));
    /* 32 random bytes: two keys never collide, nor do their prefixes in practice. */
    for (int i = 0; i < 1000; i++) {
        auth_key_generate(b);
        assert_int_equal(strlen(b), AUTH_KEY_LEN);
        assert_string_not_equal(a, b);
        assert_true(memcmp(a, b, AUTH_PREFIX_LEN) != 0);
    }
    /* Every generated key parses as a Bearer token. */
    {
        char hdr[AUTH_KEY_BUF + 8], msg[AUTH_MSG_MAX];
        const char *key;
        size_t len;
        snprintf(hdr, sizeof(hdr), "Bearer %s", b);
        assert_int_equal(auth_parse_bearer(hdr, &key, &len, msg), AUTH_OK);
        assert_int_equal(len, AUTH_KEY_LEN);
        assert_memory_equal(key, b, len);
    }
}

static void test_hash_and_prefix(void **state)
{
    unsigned char h1[KEY_HASH_LEN], h2[KEY_HASH_LEN];
    char prefix[KEY_PREFIX_MAX];
    /* SHA-256("abc") */
    static const unsigned char abc[KEY_HASH_LEN] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                                    0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                                    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                                    0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    (void)state;

    auth_key_hash("abc", 3, h1);
    assert_memory_equal(h1, abc, KEY_HASH_LEN);
    auth_key_hash("sk_abcdefgh", 11, h1);
    auth_key_hash("sk_abcdefgi", 11, h2);
    assert_true(memcmp(h1, h2, KEY_HASH_LEN) != 0);
    auth_key_prefix("sk_abcdefghijklmnop", 19, prefix);
    assert_string_equal(prefix, "sk_abcdefghi");
    assert_int_equal(strlen(prefix), AUTH_PREFIX_LEN);
    auth_key_prefix("sk_ab", 5, prefix);
    assert_string_equal(prefix, "sk_ab");
}

struct bearer_case {
    const char *header;
    enum auth_result want;
    const char *msg_has; /* a word the message must contain */
};

static void test_bearer_parsing(void **state)
{
    char buf[512];
    const struct bearer_case cases[] = {
        {NULL, AUTH_MISSING, "missing"},
        {"", AUTH_MALFORMED, "empty"},
        {"Basic dXNlcjpwYXNz", AUTH_BAD_SCHEME, "'Basic'"},
        {"Token sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_BAD_SCHEME, "'Token'"},
        /* The scheme is case-insensitive (RFC 7235); the one space is not negotiable. */
        {"bearer sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_OK, NULL},
        {"BEARER sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_OK, NULL},
        {"bEaReR sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_OK, NULL},
        {"bearer  sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_MALFORMED, "more than one"},
        {"bearer\tsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_MALFORMED, "one space"},
        {"bearersk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_BAD_SCHEME, "Bearer"},
        {"sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_BAD_SCHEME, "scheme"},
        {"Bearersk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_BAD_SCHEME, "Bearer"},
        {"Bearer", AUTH_MALFORMED, "no API key"},
        {"Bearer ", AUTH_MALFORMED, "no API key"},
        {"Bearer  sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_MALFORMED, "more than one"},
        {"Bearer \tsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_MALFORMED,
         "more than one"},
        {"Bearer\tsk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_MALFORMED, "one space"},
        {"Bearer sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA ", AUTH_MALFORMED, "whitespace"},
        {"Bearer sk_AAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAAA", AUTH_MALFORMED, "whitespace"},
        {"Bearer sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+/", AUTH_MALFORMED, "character"},
        {"Bearer pk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_MALFORMED, "sk_"},
        {"Bearer sk_short", AUTH_MALFORMED, "too short"},
        {"Bearer sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_MALFORMED, "too short"},
        {"Bearer sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_OK, NULL}, /* sk_ + 32 */
        {"Bearer sk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", AUTH_OK, NULL},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char msg[AUTH_MSG_MAX];
        const char *key = (const char *)1;
        size_t len = 99;
        enum auth_result r = auth_parse_bearer(cases[i].header, &key, &len, msg);
        if (r != cases[i].want)
            fail_msg("case %zu '%s': got %s, want %s (%s)", i,
                     cases[i].header ? cases[i].header : "(null)", auth_result_name(r),
                     auth_result_name(cases[i].want), msg);
        if (r == AUTH_OK) {
            assert_non_null(key);
            assert_int_equal(len, strlen(cases[i].header) - 7);
        } else {
            assert_null(key);
            assert_int_equal(len, 0);
            assert_non_null(strstr(msg, cases[i].msg_has));
            /* A message never quotes the key it refused. */
            assert_null(strstr(msg, "AAAAAAAAAAAA"));
        }
    }
    /* Longer than any key: malformed without being read to the end. */
    memset(buf, 'A', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    memcpy(buf, "Bearer sk_", 10);
    {
        char msg[AUTH_MSG_MAX];
        const char *key;
        size_t len;
        assert_int_equal(auth_parse_bearer(buf, &key, &len, msg), AUTH_MALFORMED);
        assert_non_null(strstr(msg, "too long"));
    }
}

static void test_verify(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct key_row row, got;
    enum auth_result r;
    char key[AUTH_KEY_BUF], other[AUTH_KEY_BUF], msg[AUTH_MSG_MAX];
    int64_t now = clock_now_ms();

    assert_int_equal(auth_key_create(f->st, "ci", KEY_SCOPE_WRITE, 0, now, key, &row, &err), 0);
    assert_string_equal(row.name, "ci");
    assert_memory_equal(row.id, "key_", 4);
    assert_memory_equal(row.prefix, key, AUTH_PREFIX_LEN);
    assert_int_equal(row.scopes, KEY_SCOPE_WRITE | KEY_SCOPE_READ);

    /* The right key. */
    assert_int_equal(auth_verify(f->st, key, strlen(key), now, &got, &r, msg, &err), 0);
    assert_int_equal(r, AUTH_OK);
    assert_string_equal(got.id, row.id);
    key_row_release(&got);

    /* Same prefix, different rest: unknown, never "revoked" or "expired". */
    snprintf(other, sizeof(other), "%s", key);
    other[AUTH_KEY_LEN - 1] = other[AUTH_KEY_LEN - 1] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_verify(f->st, other, strlen(other), now, &got, &r, msg, &err), 0);
    assert_int_equal(r, AUTH_UNKNOWN);
    assert_non_null(strstr(msg, "unknown"));
    /* A key with an unknown prefix. */
    auth_key_generate(other);
    assert_int_equal(auth_verify(f->st, other, strlen(other), now, &got, &r, msg, &err), 0);
    assert_int_equal(r, AUTH_UNKNOWN);
    /* The right key without its last character. */
    assert_int_equal(auth_verify(f->st, key, strlen(key) - 1, now, &got, &r, msg, &err), 0);
    assert_int_equal(r, AUTH_UNKNOWN);

    /* Revoked: said only to the holder of the key, with when. */
    assert_int_equal(store_key_revoke(f->st, "ci", now + 5, &err), 0);
    assert_int_equal(auth_verify(f->st, key, strlen(key), now + 10, &got, &r, msg, &err), 0);
    assert_int_equal(r, AUTH_REVOKED);
    assert_non_null(strstr(msg, "revoked at"));
    assert_non_null(strstr(msg, row.prefix));
    assert_int_equal(auth_verify(f->st, other, strlen(other), now + 10, &got, &r, msg, &err), 0);
    assert_int_equal(r, AUTH_UNKNOWN);
    key_row_release(&row);

    /* Expired: at and after expires_at, not before. */
    assert_int_equal(
        auth_key_create(f->st, "temp", KEY_SCOPE_READ, now + 1000, now, key, &row, &err), 0);
    assert_int_equal(auth_verify(f->st, key, strlen(key), now + 999, &got, &r, msg, &err), 0);
    assert_int_equal(r, AUTH_OK);
    key_row_release(&got);
    assert_int_equal(auth_verify(f->st, key, strlen(key), now + 1000, &got, &r, msg, &err), 0);
    assert_int_equal(r, AUTH_EXPIRED);
    assert_non_null(strstr(msg, "expired at"));
    key_row_release(&row);
}

static void test_create_errors(void **state)
{
    struct fixture *f = *state;
    struct err err = ERR_INIT;
    struct key_row row;
    char key[AUTH_KEY_BUF];
    int64_t now = clock_now_ms();
    char long_name[AUTH_NAME_MAX + 2];

    assert_int_equal(auth_key_create(f->st, "", KEY_SCOPE_READ, 0, now, key, &row, &err),
                     ERR_INVALID);
    assert_int_equal(auth_key_create(f->st, "   ", KEY_SCOPE_READ, 0, now, key, &row, &err),
                     ERR_INVALID);
    assert_int_equal(auth_key_create(f->st, "a\nb", KEY_SCOPE_READ, 0, now, key, &row, &err),
                     ERR_INVALID);
    memset(long_name, 'n', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(auth_key_create(f->st, long_name, KEY_SCOPE_READ, 0, now, key, &row, &err),
                     ERR_INVALID);
    assert_int_equal(auth_key_create(f->st, "noscope", 0, 0, now, key, &row, &err), ERR_INVALID);
    assert_int_equal(auth_key_create(f->st, "past", KEY_SCOPE_READ, now - 1, now, key, &row, &err),
                     ERR_INVALID);
    assert_string_equal(key, "");

    assert_int_equal(auth_key_create(f->st, "dup", KEY_SCOPE_ADMIN, 0, now, key, &row, &err), 0);
    assert_int_equal(row.scopes, KEY_SCOPE_ADMIN | KEY_SCOPE_WRITE | KEY_SCOPE_READ);
    key_row_release(&row);
    assert_int_equal(auth_key_create(f->st, "dup", KEY_SCOPE_READ, 0, now, key, &row, &err),
                     ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "dup"));
    /* Once revoked, the name is free again. */
    assert_int_equal(store_key_revoke(f->st, "dup", now, &err), 0);
    assert_int_equal(auth_key_create(f->st, "dup", KEY_SCOPE_READ, 0, now, key, &row, &err), 0);
    key_row_release(&row);
}

static void test_scopes(void **state)
{
    unsigned s = 0;
    struct err err = ERR_INIT;
    char buf[32];
    (void)state;

    assert_int_equal(auth_scope_closure(KEY_SCOPE_ADMIN),
                     KEY_SCOPE_ADMIN | KEY_SCOPE_WRITE | KEY_SCOPE_READ);
    assert_int_equal(auth_scope_closure(KEY_SCOPE_WRITE), KEY_SCOPE_WRITE | KEY_SCOPE_READ);
    assert_int_equal(auth_scope_closure(KEY_SCOPE_READ), KEY_SCOPE_READ);

    assert_true(auth_scope_allows(KEY_SCOPE_READ, KEY_SCOPE_READ));
    assert_false(auth_scope_allows(KEY_SCOPE_READ, KEY_SCOPE_WRITE));
    assert_false(auth_scope_allows(KEY_SCOPE_READ, KEY_SCOPE_ADMIN));
    assert_true(auth_scope_allows(KEY_SCOPE_WRITE, KEY_SCOPE_READ));
    assert_true(auth_scope_allows(KEY_SCOPE_WRITE, KEY_SCOPE_WRITE));
    assert_false(auth_scope_allows(KEY_SCOPE_WRITE, KEY_SCOPE_ADMIN));
    assert_true(auth_scope_allows(KEY_SCOPE_ADMIN, KEY_SCOPE_READ));
    assert_true(auth_scope_allows(KEY_SCOPE_ADMIN, KEY_SCOPE_WRITE));
    assert_true(auth_scope_allows(KEY_SCOPE_ADMIN, KEY_SCOPE_ADMIN));
    assert_false(auth_scope_allows(0, KEY_SCOPE_READ));
    assert_true(auth_scope_allows(0, 0));

    assert_int_equal(auth_scope_parse("write", &s), 0);
    assert_int_equal(s, KEY_SCOPE_WRITE);
    assert_int_equal(auth_scope_parse("Write", &s), ERR_INVALID);
    assert_int_equal(auth_scopes_parse_list("read,admin", &s, &err), 0);
    assert_int_equal(s, KEY_SCOPE_READ | KEY_SCOPE_ADMIN);
    assert_int_equal(auth_scopes_parse_list("read,,admin", &s, &err), ERR_INVALID);
    assert_int_equal(auth_scopes_parse_list("root", &s, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "root"));
    assert_int_equal(auth_scopes_parse_list("", &s, &err), ERR_INVALID);

    auth_scopes_format(KEY_SCOPE_ADMIN | KEY_SCOPE_READ, buf, sizeof(buf));
    assert_string_equal(buf, "read,admin");
    auth_scopes_format(0, buf, sizeof(buf));
    assert_string_equal(buf, "");
    assert_string_equal(auth_scope_top(KEY_SCOPE_READ | KEY_SCOPE_WRITE), "write");
    assert_string_equal(auth_scope_top(0), "none");
    assert_string_equal(auth_scope_name(KEY_SCOPE_ADMIN), "admin");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_format),
        cmocka_unit_test(test_hash_and_prefix),
        cmocka_unit_test(test_bearer_parsing),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_errors, setup, teardown),
        cmocka_unit_test(test_scopes),
    };
    struct err err = ERR_INIT;
    if (auth_init(&err))
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
