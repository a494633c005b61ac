/*
 * fuzz_session - libFuzzer target for what the web pages' sessions parse
 * from a browser (src/api/session.c): the Cookie header, the session token
 * it carries, the X-CSRF-Token header and the sign-in body {"key": "..."}.
 *
 * The whole input is used as each of these in turn (as text, NUL-terminated
 * at the first NUL; the body gets every byte). Properties checked: a cookie
 * value found lies inside the header, holds no ';' and fits its buffer; a
 * valid token is 43 base64url characters; a CSRF token is accepted only for
 * its own hash, and the CSRF token derived from any token is itself a valid
 * token accepted for its hash; a key taken from a body is an API key's form.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_cookie(const char *header, const char *name, size_t outlen)
{
    char out[API_SESSION_TOKEN_MAX];
    size_t n;

    memset(out, 'X', sizeof(out));
    if (!api__cookie_find(header, name, out, outlen)) {
        assert(out[0] == '\0');
        return;
    }
    n = strlen(out);
    assert(n < outlen);
    assert(!strchr(out, ';'));
    assert(n == 0 || strstr(header, out));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char known[] = "Qm9vdHN0cmFwIGEgc2Vzc2lvbiB0b2tlbiBoZXJlISE";
    unsigned char h[SESSION_HASH_LEN], kh[SESSION_HASH_LEN];
    char csrf[API_SESSION_TOKEN_MAX], key[AUTH_KEY_MAX_LEN + 1];
    char *s = malloc(size + 1);
    size_t len = 0;
    int rc;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    /* Cookie header: the session cookie, a one-letter name, a buffer too small. */
    check_cookie(s, API_SESSION_COOKIE, API_SESSION_TOKEN_MAX);
    check_cookie(s, "a", API_SESSION_TOKEN_MAX);
    check_cookie(s, API_SESSION_COOKIE, 8);

    /* A token's form. */
    if (api__session_token_valid(s)) {
        assert(strlen(s) == API_SESSION_TOKEN_LEN);
        assert(strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
               API_SESSION_TOKEN_LEN);
    }

    /* X-CSRF-Token: only the token of the hash passes. */
    assert(api__session_token_valid(known));
    api__session_hash(known, strlen(known), kh);
    assert(api__csrf_check(s, kh) == !strcmp(s, known));
    assert(!api__csrf_check(NULL, kh));
    api__session_hash(s, strlen(s), h);
    assert(api__csrf_check(s, h) == api__session_token_valid(s));

    /* The CSRF token derived from whatever token. */
    api__session_csrf(s, csrf);
    assert(api__session_token_valid(csrf));
    api__session_hash(csrf, strlen(csrf), h);
    assert(api__csrf_check(csrf, h));
    assert(api__csrf_equal(csrf, csrf) && !api__csrf_equal(s, "") && !api__csrf_equal(NULL, csrf));

    /* The sign-in body, every byte of it. */
    rc = api__session_body_key((const char *)data, size, key, &len);
    assert(rc == 0 || rc == 400 || rc == 401);
    if (rc == 0) {
        assert(len == strlen(key));
        assert(len >= AUTH_KEY_MIN_LEN && len <= AUTH_KEY_MAX_LEN);
        assert(!strncmp(key, AUTH_KEY_PREFIX, strlen(AUTH_KEY_PREFIX)));
    } else {
        assert(len == 0 && key[0] == '\0');
    }
    free(s);
    return 0;
}
