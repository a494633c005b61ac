/*
 * session.c - sign-in sessions of the web pages: POST/GET/DELETE /v1/session
 * and the checks of a request authenticated by its session cookie.
 *
 * POST /v1/session takes an API key (in the body, never in a URL), checks it
 * like a Bearer key and starts a session: a random token (32 bytes from
 * libsodium, base64url) goes to the browser in an HttpOnly, SameSite=Strict
 * cookie (Secure over TLS). The session is a row of the store's `sessions`
 * table, so it outlives a restart of the server and every node on the same
 * database knows it (a load balancer may send each request anywhere). The row
 * holds only hashes: of the token (keyed BLAKE2b, the lookup key) and of the
 * session's CSRF token, with the key's id and prefix, and when the session
 * started, ends and was last seen. Neither the key nor a token is kept; a
 * copy of the table lets nobody act as a signed-in browser.
 *
 * The CSRF token is derived from the cookie's token (keyed BLAKE2b), so that
 * GET /v1/session can give it again after a reload of the page; it says
 * nothing of the token itself.
 *
 * Every request with the cookie reads the session and then looks its key up
 * again (by prefix, the id must match): a key revoked or expired since ends
 * its sessions at once, and the scopes are the key's current ones. No copy
 * is cached in memory: with the read by primary key a cookie request costs
 * the server the same CPU time as when sessions were in memory (measured by
 * bench/ui-session.sh), and a cache would have to learn of sign-outs on
 * other nodes. A cookie-authenticated request
 * that is not GET or HEAD must carry the session's CSRF token in
 * X-CSRF-Token (403 "csrf" otherwise). Hashes are compared in constant time.
 *
 * Ended sessions are deleted when they are next presented, and the rest by
 * a purge (expired, or of a revoked key) that a sign-in runs at most once a
 * API_SESSION_PURGE_MS on each node.
 */
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "view/view.h"

#include "base/banned.h"

#define TOKEN_BYTES 32

_Static_assert(API_SESSION_TOKEN_LEN + 1 <= API_SESSION_TOKEN_MAX, "a token fits its buffers");

/* The keys of the two BLAKE2b uses (zero-padded): one never stands in for the other. */
static const unsigned char hash_key[crypto_generichash_KEYBYTES] = "orch session hash";
static const unsigned char csrf_key[crypto_generichash_KEYBYTES] = "orch session csrf";

struct api_sessions {
    int64_t ttl_ms;
    _Atomic int64_t purged_at; /* clock_mono_ms() of this node's last purge */
};

struct api_sessions *api__sessions_new(int64_t ttl_ms)
{
    struct api_sessions *ss = xcalloc(1, sizeof(*ss));

    ss->ttl_ms = ttl_ms;
    atomic_init(&ss->purged_at, 0);
    return ss;
}

void api__sessions_free(struct api_sessions *ss)
{
    free(ss);
}

/* ------------------------------------------------------------------ parsers */

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int api__cookie_find(const char *header, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = header;

    if (outlen)
        out[0] = '\0';
    if (!p)
        return 0;
    while (*p) {
        const char *pair, *end, *eq, *ne, *v, *ve;

        while (is_space(*p) || *p == ';')
            p++;
        pair = p;
        end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        p = end;
        eq = memchr(pair, '=', (size_t)(end - pair));
        if (!eq)
            continue; /* not a name=value pair: skipped, like a browser's */
        for (ne = eq; ne > pair && is_space(ne[-1]); ne--)
            ;
        if ((size_t)(ne - pair) != nlen || memcmp(pair, name, nlen) != 0)
            continue;
        for (v = eq + 1; v < end && is_space(*v); v++)
            ;
        for (ve = end; ve > v && is_space(ve[-1]); ve--)
            ;
        if (ve - v >= 2 && *v == '"' && ve[-1] == '"') {
            v++;
            ve--;
        }
        if (outlen && (size_t)(ve - v) < outlen) {
            memcpy(out, v, (size_t)(ve - v));
            out[ve - v] = '\0';
        }
        return 1;
    }
    return 0;
}

int api__session_token_valid(const char *s)
{
    size_t i;

    if (!s)
        return 0;
    for (i = 0; i < API_SESSION_TOKEN_LEN; i++)
        if (!s[i] || !strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                             s[i]))
            return 0;
    return s[i] == '\0';
}

int api__session_body_key(const char *body, size_t len, char key[AUTH_KEY_MAX_LEN + 1],
                          size_t *key_len)
{
    json_t *doc, *v;
    const char *k;
    size_t n;
    int rc = 0;

    key[0] = '\0';
    *key_len = 0;
    /* No error text of jansson's is kept: it may quote the body, which holds a key. */
    doc = len ? json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    v = json_is_object(doc) ? json_object_get(doc, "key") : NULL;
    if (!json_is_string(v) || json_object_size(doc) != 1) {
        json_decref(doc);
        return 400;
    }
    k = json_string_value(v);
    n = json_string_length(v);
    if (n < AUTH_KEY_MIN_LEN || n > AUTH_KEY_MAX_LEN ||
        strncmp(k, AUTH_KEY_PREFIX, strlen(AUTH_KEY_PREFIX)) != 0 || strlen(k) != n) {
        rc = 401;
    } else {
        memcpy(key, k, n + 1);
        *key_len = n;
    }
    json_decref(doc); /* (jansson's copy of the key: freed, as the body's is with the request) */
    return rc;
}

void api__session_hash(const char *token, size_t len, unsigned char out[SESSION_HASH_LEN])
{
    crypto_generichash(out, SESSION_HASH_LEN, (const unsigned char *)token, len, hash_key,
                       sizeof(hash_key));
}

void api__session_csrf(const char *token, char out[API_SESSION_TOKEN_MAX])
{
    unsigned char b[TOKEN_BYTES];

    crypto_generichash(b, sizeof(b), (const unsigned char *)token, strlen(token), csrf_key,
                       sizeof(csrf_key));
    sodium_bin2base64(out, API_SESSION_TOKEN_MAX, b, sizeof(b),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(b, sizeof(b));
}

int api__csrf_check(const char *given, const unsigned char expected_hash[SESSION_HASH_LEN])
{
    unsigned char h[SESSION_HASH_LEN];
    int ok;

    if (!api__session_token_valid(given))
        return 0;
    api__session_hash(given, API_SESSION_TOKEN_LEN, h);
    ok = sodium_memcmp(h, expected_hash, SESSION_HASH_LEN) == 0;
    sodium_memzero(h, sizeof(h));
    return ok;
}

int api__csrf_equal(const char *given, const char *expected)
{
    size_t n = strlen(expected);

    if (!given || strlen(given) != n || n == 0)
        return 0;
    return sodium_memcmp(given, expected, n) == 0;
}

/* ------------------------------------------------------------------ the store */

static void random_token(char out[API_SESSION_TOKEN_MAX])
{
    unsigned char b[TOKEN_BYTES];

    randombytes_buf(b, sizeof(b));
    sodium_bin2base64(out, API_SESSION_TOKEN_MAX, b, sizeof(b),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(b, sizeof(b));
}

/* Delete the sessions that have ended, at most once a API_SESSION_PURGE_MS
 * on this node (a failure is logged: the sign-in goes on). */
static void purge_ended(struct api_request *req, struct store *wr, int64_t now)
{
    struct api_sessions *ss = api__sessions(req);
    int64_t mono = clock_mono_ms(), last = atomic_load(&ss->purged_at);
    struct err err = ERR_INIT;
    int n = 0;

    if (last && mono - last < API_SESSION_PURGE_MS)
        return;
    if (!atomic_compare_exchange_strong(&ss->purged_at, &last, mono))
        return; /* another thread purges now */
    if (store_sessions_purge(wr, now, &n, &err))
        log_warn("API", "Cannot delete the ended sessions: %s", err.msg);
    else if (n)
        log_info("API", "Deleted %d ended session%s", n, n == 1 ? "" : "s");
}

/*
 * Start a session for `key` in the store: its cookie token and CSRF token into
 * the buffers, its end into *expires. 0, or -1 after replying (503).
 */
static int session_start(struct api_request *req, const struct key_row *key, int64_t now,
                         char token[API_SESSION_TOKEN_MAX], char csrf[API_SESSION_TOKEN_MAX],
                         int64_t *expires)
{
    struct session_row row;
    struct err err = ERR_INIT;
    struct store *wr = api__write_store(req);
    int rc;

    if (!wr)
        return -1;
    purge_ended(req, wr, now);
    memset(&row, 0, sizeof(row));
    row.created_at = row.last_seen_at = now;
    row.expires_at = now + api__sessions(req)->ttl_ms;
    if (key->expires_at && key->expires_at < row.expires_at)
        row.expires_at = key->expires_at;
    snprintf(row.key_id, sizeof(row.key_id), "%s", key->id);
    snprintf(row.key_prefix, sizeof(row.key_prefix), "%s", key->prefix);
    random_token(token);
    api__session_csrf(token, csrf);
    api__session_hash(token, strlen(token), row.token_hash);
    api__session_hash(csrf, strlen(csrf), row.csrf_hash);
    rc = store_session_insert(wr, &row, &err);
    if (rc) {
        sodium_memzero(token, API_SESSION_TOKEN_MAX);
        sodium_memzero(csrf, API_SESSION_TOKEN_MAX);
        log_error("API", "Cannot record a session: %s", err.msg);
        api__reply_error(req, 503, NULL, "cannot start the session: %s", err.msg);
        return -1;
    }
    *expires = row.expires_at;
    return 0;
}

/* End the session of hash `h`, presented but ended: gone for good (a failure
 * is logged; the purge takes it later). */
static void session_drop(struct api_request *req, const unsigned char h[SESSION_HASH_LEN])
{
    struct err err = ERR_INIT;
    struct store *wr = api__write_store(req);

    if (wr && store_session_delete(wr, h, &err) && err.code != ERR_NOT_FOUND)
        log_warn("API", "Cannot delete an ended session: %s", err.msg);
}

static void session_touch(struct api_request *req, const struct session_row *s, int64_t now)
{
    struct err err = ERR_INIT;
    struct store *wr;

    if (now - s->last_seen_at < API_SESSION_TOUCH_MS)
        return;
    wr = api__write_store(req);
    if (wr && store_session_touch(wr, s->token_hash, now, &err) && err.code != ERR_NOT_FOUND)
        log_warn("API", "Cannot record the use of a session of key %s...: %s", s->key_prefix,
                 err.msg);
}

/* ------------------------------------------------------------------ checks */

int api__session_authenticate(struct api_request *req, const char *token, int need_csrf,
                              char *csrf_out, int64_t *expires_out, char *msg, size_t msglen)
{
    int64_t now = clock_now_ms();
    unsigned char h[SESSION_HASH_LEN];
    struct session_row s;
    struct key_row row;
    struct err err = ERR_INIT;
    struct store *st;
    int rc;

    if (!api__session_token_valid(token)) {
        snprintf(msg, msglen, "not signed in: the session has ended (signed out or expired); "
                              "sign in again");
        return 401;
    }
    api__session_hash(token, API_SESSION_TOKEN_LEN, h);
    st = api__read_store(req);
    if (!st) {
        snprintf(msg, msglen, "cannot check the session: %s",
                 req->store_error[0] ? req->store_error : "the database is unavailable");
        return 503;
    }
    rc = store_session_get(st, h, &s, &err);
    if (rc && rc != ERR_NOT_FOUND) {
        snprintf(msg, msglen, "cannot check the session: %s", err.msg);
        return 503;
    }
    if (rc || sodium_memcmp(s.token_hash, h, SESSION_HASH_LEN) != 0) {
        snprintf(msg, msglen, "not signed in: the session has ended (signed out or expired); "
                              "sign in again");
        return 401;
    }
    if (s.expires_at <= now) {
        session_drop(req, h);
        snprintf(msg, msglen, "not signed in: the session has expired; sign in again");
        return 401;
    }
    memset(&row, 0, sizeof(row));
    rc = store_key_get_by_prefix(st, s.key_prefix, &row, &err);
    if (rc && rc != ERR_NOT_FOUND) {
        snprintf(msg, msglen, "cannot check the session's API key: %s", err.msg);
        return 503;
    }
    if (rc || strcmp(row.id, s.key_id) || row.revoked_at ||
        (row.expires_at && row.expires_at <= now)) {
        snprintf(msg, msglen, "the API key of this session (%s...) was %s: sign in again",
                 s.key_prefix,
                 rc || strcmp(row.id, s.key_id) ? "deleted"
                 : row.revoked_at               ? "revoked"
                                                : "expired");
        key_row_release(&row);
        session_drop(req, h);
        return 401;
    }
    if (need_csrf && !api__csrf_check(api__header(req, "X-CSRF-Token"), s.csrf_hash)) {
        snprintf(msg, msglen, "%s: a request signed in by the session cookie must carry the "
                              "session's CSRF token in the X-CSRF-Token header",
                 api__header(req, "X-CSRF-Token") ? "wrong CSRF token" : "missing CSRF token");
        req->key = row;
        req->has_key = 1;
        return 403;
    }
    session_touch(req, &s, now);
    if (csrf_out)
        api__session_csrf(token, csrf_out);
    if (expires_out)
        *expires_out = s.expires_at;
    req->key = row;
    req->has_key = 1;
    req->session = 1;
    return 0;
}

/* ------------------------------------------------------------------ handlers */

static json_t *session_json(const struct key_row *key, const char *csrf, int64_t expires)
{
    json_t *o = json_object(), *scopes = json_array();
    unsigned all = auth_scope_closure(key->scopes);
    const unsigned bits[] = {KEY_SCOPE_READ, KEY_SCOPE_WRITE, KEY_SCOPE_ADMIN};

    for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
        if (all & bits[i])
            json_array_append_new(scopes, json_string(auth_scope_name(bits[i])));
    json_object_set_new(o, "csrfToken", json_string(csrf));
    json_object_set_new(o, "keyId", json_string(key->id));
    json_object_set_new(o, "keyName",
                        key->name ? view_text(key->name, strlen(key->name)) : json_string(""));
    json_object_set_new(o, "keyPrefix", json_string(key->prefix));
    json_object_set_new(o, "scopes", scopes);
    json_object_set_new(o, "expiresAt", view_instant(expires));
    return o;
}

static void set_cookie(struct api_request *req, const char *token, int64_t max_age_s)
{
    char v[256];

    snprintf(v, sizeof(v), "%s=%s; HttpOnly; SameSite=Strict; Path=/; Max-Age=%lld%s",
             API_SESSION_COOKIE, token, (long long)max_age_s, api__tls(req) ? "; Secure" : "");
    api__reply_header(req, "Set-Cookie", v);
}

/* 401 with the WWW-Authenticate of the API's other 401s. */
static void reply_401(struct api_request *req, const char *msg)
{
    char v[AUTH_MSG_MAX + 600], q[512];
    size_t i;

    api__reply_error(req, 401, NULL, "%s", msg);
    for (i = 0; msg[i] && i + 1 < sizeof(q); i++)
        q[i] = (msg[i] == '"' || msg[i] == '\\' || (unsigned char)msg[i] < 0x20) ? '\'' : msg[i];
    q[i] = '\0';
    snprintf(v, sizeof(v), "Bearer error=\"invalid_token\", error_description=\"%s\"", q);
    api__reply_header(req, "WWW-Authenticate", v);
}

/*
 * The prologue of GET and DELETE /v1/session: the query, the cookie and the
 * session's checks. 0 with the request authenticated (the CSRF token and
 * the end of the session into csrf/expires when not NULL), or -1 after
 * replying (a 401 also clears the cookie).
 */
static int session_of_request(struct api_request *req, int need_csrf, char *csrf, int64_t *expires)
{
    static const char *const no_args[] = {NULL};
    char token[API_SESSION_TOKEN_MAX], msg[512];
    int status;

    if (api__query_check(req, no_args))
        return -1;
    if (!api__cookie(req, API_SESSION_COOKIE, token, sizeof(token))) {
        reply_401(req, "not signed in (no session cookie)");
        return -1;
    }
    status = api__session_authenticate(req, token, need_csrf, csrf, expires, msg, sizeof(msg));
    sodium_memzero(token, sizeof(token));
    if (status == 0)
        return 0;
    if (status == 403) {
        api__reply_csrf(req, msg);
    } else if (status == 401) {
        reply_401(req, msg);
        set_cookie(req, "", 0);
    } else {
        api__reply_error(req, status, NULL, "%s", msg);
    }
    return -1;
}

/* POST /v1/session {"key": "sk_..."} */
void api__session_create(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    char token[API_SESSION_TOKEN_MAX], csrf[API_SESSION_TOKEN_MAX], msg[AUTH_MSG_MAX];
    char key[AUTH_KEY_MAX_LEN + 1], prefix[KEY_PREFIX_MAX] = "";
    enum auth_result result;
    struct key_row row;
    struct err err = ERR_INIT;
    struct store *st;
    size_t len;
    int64_t now = clock_now_ms(), expires, wait;
    int rc;

    if (api__query_check(req, no_args))
        return;
    /* Never quote the body back: it holds a key. */
    rc = api__session_body_key(req->body.buf, req->body.len, key, &len);
    if (rc == 400) {
        api__reply_error(req, 400, NULL,
                         "the request body must be the JSON object {\"key\": \"sk_...\"}");
        return;
    }
    if (rc) {
        req->auth_outcome = "malformed";
        reply_401(req, "not an API key: a key is 'sk_' and 43 characters");
        return;
    }
    auth_key_prefix(key, len, prefix);
    wait = api__ratelimit_check(api__ratelimit(req), req->client, prefix, now);
    if (wait > 0) {
        char num[32];
        sodium_memzero(key, sizeof(key));
        req->auth_outcome = "rate_limited";
        api__reply_error(req, 429, NULL,
                         "too many failed sign-ins from %s with this key: try again in %lld s",
                         req->client, (long long)((wait + 999) / 1000));
        snprintf(num, sizeof(num), "%lld", (long long)((wait + 999) / 1000));
        api__reply_header(req, "Retry-After", num);
        return;
    }
    st = api__read_store(req);
    if (!st) {
        sodium_memzero(key, sizeof(key));
        return;
    }
    memset(&row, 0, sizeof(row));
    rc = auth_verify(st, key, len, now, &row, &result, msg, &err);
    sodium_memzero(key, sizeof(key));
    if (rc) {
        api__reply_err(req, &err);
        return;
    }
    if (result != AUTH_OK) {
        api__ratelimit_fail(api__ratelimit(req), req->client,
                            result == AUTH_UNKNOWN ? "" : prefix, now);
        req->auth_outcome = auth_result_name(result);
        reply_401(req, msg);
        return;
    }
    req->key = row;
    req->has_key = 1;
    if (session_start(req, &row, now, token, csrf, &expires))
        return;
    req->auth_outcome = "session_started";
    api__reply_json(req, 201, session_json(&row, csrf, expires));
    set_cookie(req, token, (expires - now + 999) / 1000);
    sodium_memzero(token, sizeof(token));
    log_info("API", "Session started for API key %s... from %s", row.prefix, req->client);
}

/* GET /v1/session */
void api__session_get(struct api_request *req)
{
    char csrf[API_SESSION_TOKEN_MAX];
    int64_t expires;

    if (session_of_request(req, 0, csrf, &expires))
        return;
    api__reply_json(req, 200, session_json(&req->key, csrf, expires));
}

/* DELETE /v1/session (with X-CSRF-Token) */
void api__session_delete(struct api_request *req)
{
    char token[API_SESSION_TOKEN_MAX];
    unsigned char h[SESSION_HASH_LEN];
    struct err err = ERR_INIT;
    struct store *wr;

    if (session_of_request(req, 1, NULL, NULL))
        return;
    wr = api__write_store(req);
    if (!wr)
        return;
    (void)api__cookie(req, API_SESSION_COOKIE, token, sizeof(token));
    api__session_hash(token, strlen(token), h);
    sodium_memzero(token, sizeof(token));
    if (store_session_delete(wr, h, &err) && err.code != ERR_NOT_FOUND) {
        log_error("API", "Cannot end a session: %s", err.msg);
        api__reply_error(req, 503, NULL, "cannot end the session: %s", err.msg);
        return;
    }
    api__reply_empty(req, 204);
    set_cookie(req, "", 0);
    log_info("API", "Session ended for API key %s... (signed out)", req->key.prefix);
}
