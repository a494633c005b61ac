/*
 * session.c - sign-in sessions of the web pages: POST/GET/DELETE /v1/session
 * and the checks of a request authenticated by its session cookie.
 *
 * POST /v1/session takes an API key (in the body, never in a URL), checks it
 * like a Bearer key and starts a session: a random token (32 bytes from
 * libsodium, base64url) goes to the browser in an HttpOnly, SameSite=Strict
 * cookie (Secure over TLS); the server keeps only its BLAKE2b hash, with the
 * key's id and prefix, a CSRF token and an expiry, in a fixed table in the
 * server's memory (a restart signs everyone out; with several nodes a browser
 * must keep to one). The key itself is not kept.
 *
 * Every request with the cookie looks its key up again (by prefix, the id must
 * match): a key revoked or expired since ends its sessions at once, and the
 * scopes are the key's current ones. A cookie-authenticated request that is
 * not GET or HEAD must carry the session's CSRF token in X-CSRF-Token (403
 * "csrf" otherwise). Tokens and hashes are compared in constant time.
 */
#include <pthread.h>
#include <sodium.h>
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
#define TOKEN_LEN   43 /* base64url, no padding, of TOKEN_BYTES */
#define HASH_LEN    32

struct session {
    unsigned char hash[HASH_LEN]; /* of the cookie's token */
    char csrf[TOKEN_LEN + 1];
    char key_id[ID_MAX];
    char prefix[KEY_PREFIX_MAX];
    int64_t expires_at;
    int used;
};

struct api_sessions {
    pthread_mutex_t mu;
    size_t max;
    int64_t ttl_ms;
    struct session *s;
};

struct api_sessions *api__sessions_new(size_t max, int64_t ttl_ms)
{
    struct api_sessions *ss = xcalloc(1, sizeof(*ss));

    pthread_mutex_init(&ss->mu, NULL);
    ss->max = max ? max : 1;
    ss->ttl_ms = ttl_ms;
    ss->s = xcalloc(ss->max, sizeof(*ss->s));
    return ss;
}

void api__sessions_free(struct api_sessions *ss)
{
    if (!ss)
        return;
    sodium_memzero(ss->s, ss->max * sizeof(*ss->s));
    free(ss->s);
    pthread_mutex_destroy(&ss->mu);
    free(ss);
}

static void random_token(char out[TOKEN_LEN + 1])
{
    unsigned char b[TOKEN_BYTES];

    randombytes_buf(b, sizeof(b));
    sodium_bin2base64(out, TOKEN_LEN + 1, b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(b, sizeof(b));
}

static void token_hash(const char *token, size_t len, unsigned char out[HASH_LEN])
{
    crypto_generichash(out, HASH_LEN, (const unsigned char *)token, len, NULL, 0);
}

/* The slot of the session of `token`, or -1; under the lock. Every slot is
 * compared (in constant time) so the time says nothing of where it is. */
static long find_locked(struct api_sessions *ss, const unsigned char h[HASH_LEN], int64_t now)
{
    long found = -1;

    for (size_t i = 0; i < ss->max; i++) {
        struct session *s = &ss->s[i];
        if (s->used && s->expires_at <= now) {
            sodium_memzero(s, sizeof(*s)); /* expired: its slot is free */
            continue;
        }
        if (s->used && sodium_memcmp(s->hash, h, HASH_LEN) == 0)
            found = (long)i;
    }
    return found;
}

int64_t api__session_start(struct api_sessions *ss, const struct key_row *key, int64_t now,
                           char token[API_SESSION_TOKEN_MAX], char csrf[API_SESSION_TOKEN_MAX])
{
    struct session *slot;
    unsigned char h[HASH_LEN];
    int64_t expires = now + ss->ttl_ms;

    if (key->expires_at && key->expires_at < expires)
        expires = key->expires_at;
    random_token(token);
    random_token(csrf);
    token_hash(token, strlen(token), h);
    pthread_mutex_lock(&ss->mu);
    (void)find_locked(ss, h, now); /* frees the expired slots */
    slot = &ss->s[0];
    for (size_t i = 0; i < ss->max; i++) {
        struct session *s = &ss->s[i];
        if (!s->used) {
            slot = s;
            break;
        }
        if (s->expires_at < slot->expires_at)
            slot = s; /* full: the session nearest its end gives way */
    }
    memset(slot, 0, sizeof(*slot));
    memcpy(slot->hash, h, HASH_LEN);
    snprintf(slot->csrf, sizeof(slot->csrf), "%s", csrf);
    snprintf(slot->key_id, sizeof(slot->key_id), "%s", key->id);
    snprintf(slot->prefix, sizeof(slot->prefix), "%s", key->prefix);
    slot->expires_at = expires;
    slot->used = 1;
    pthread_mutex_unlock(&ss->mu);
    sodium_memzero(h, sizeof(h));
    return expires;
}

/* Copy the session of `token` (NUL-terminated) into *out; 0, or -1 if none. */
static int session_get(struct api_sessions *ss, const char *token, int64_t now,
                       struct session *out)
{
    unsigned char h[HASH_LEN];
    long i;

    if (strlen(token) != TOKEN_LEN)
        return -1;
    token_hash(token, TOKEN_LEN, h);
    pthread_mutex_lock(&ss->mu);
    i = find_locked(ss, h, now);
    if (i >= 0)
        *out = ss->s[i];
    pthread_mutex_unlock(&ss->mu);
    return i >= 0 ? 0 : -1;
}

static void session_end(struct api_sessions *ss, const char *token)
{
    unsigned char h[HASH_LEN];

    if (strlen(token) != TOKEN_LEN)
        return;
    token_hash(token, TOKEN_LEN, h);
    pthread_mutex_lock(&ss->mu);
    for (size_t i = 0; i < ss->max; i++)
        if (ss->s[i].used && sodium_memcmp(ss->s[i].hash, h, HASH_LEN) == 0)
            sodium_memzero(&ss->s[i], sizeof(ss->s[i]));
    pthread_mutex_unlock(&ss->mu);
}

int api__csrf_equal(const char *given, const char *expected)
{
    size_t n = strlen(expected);

    if (!given || strlen(given) != n || n == 0)
        return 0;
    return sodium_memcmp(given, expected, n) == 0;
}

/* ------------------------------------------------------------------ checks */

int api__session_authenticate(struct api_request *req, const char *token, int need_csrf,
                              char *csrf_out, int64_t *expires_out, char *msg, size_t msglen)
{
    struct api_sessions *ss = api__sessions(req);
    int64_t now = clock_now_ms();
    struct session s;
    struct key_row row;
    struct err err = ERR_INIT;
    struct store *st;
    int rc;

    if (session_get(ss, token, now, &s)) {
        snprintf(msg, msglen, "not signed in: the session has ended (signed out, expired, or "
                              "the server restarted); sign in again");
        return 401;
    }
    st = api__read_store(req);
    if (!st) {
        snprintf(msg, msglen, "cannot check the session's API key: %s",
                 req->store_error[0] ? req->store_error : "the database is unavailable");
        return 503;
    }
    memset(&row, 0, sizeof(row));
    rc = store_key_get_by_prefix(st, s.prefix, &row, &err);
    if (rc && rc != ERR_NOT_FOUND) {
        snprintf(msg, msglen, "cannot check the session's API key: %s", err.msg);
        return 503;
    }
    if (rc || strcmp(row.id, s.key_id) || row.revoked_at ||
        (row.expires_at && row.expires_at <= now)) {
        snprintf(msg, msglen, "the API key of this session (%s...) was %s: sign in again",
                 s.prefix,
                 rc || strcmp(row.id, s.key_id) ? "deleted"
                 : row.revoked_at               ? "revoked"
                                                : "expired");
        key_row_release(&row);
        session_end(ss, token);
        return 401;
    }
    if (need_csrf && !api__csrf_equal(api__header(req, "X-CSRF-Token"), s.csrf)) {
        snprintf(msg, msglen, "%s: a request signed in by the session cookie must carry the "
                              "session's CSRF token in the X-CSRF-Token header",
                 api__header(req, "X-CSRF-Token") ? "wrong CSRF token" : "missing CSRF token");
        req->key = row;
        req->has_key = 1;
        return 403;
    }
    if (csrf_out)
        snprintf(csrf_out, API_SESSION_TOKEN_MAX, "%s", s.csrf);
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

static const char *cookie_token(struct api_request *req)
{
    return api__cookie(req, API_SESSION_COOKIE);
}

/* POST /v1/session {"key": "sk_..."} */
void api__session_create(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    char token[API_SESSION_TOKEN_MAX], csrf[API_SESSION_TOKEN_MAX], msg[AUTH_MSG_MAX];
    char prefix[KEY_PREFIX_MAX] = "";
    enum auth_result result;
    struct key_row row;
    struct err err = ERR_INIT;
    struct store *st;
    json_t *doc, *v;
    const char *key;
    size_t len;
    int64_t now = clock_now_ms(), expires, wait;

    if (api__query_check(req, no_args))
        return;
    /* Never quote the body back: it holds a key. */
    doc = req->body.len ? json_loadb(req->body.buf, req->body.len, JSON_REJECT_DUPLICATES, NULL)
                        : NULL;
    v = json_is_object(doc) ? json_object_get(doc, "key") : NULL;
    if (!json_is_string(v) || json_object_size(doc) != 1) {
        json_decref(doc);
        api__reply_error(req, 400, NULL,
                         "the request body must be the JSON object {\"key\": \"sk_...\"}");
        return;
    }
    key = json_string_value(v);
    len = json_string_length(v);
    if (len < AUTH_KEY_MIN_LEN || len > AUTH_KEY_MAX_LEN ||
        strncmp(key, AUTH_KEY_PREFIX, strlen(AUTH_KEY_PREFIX)) || strlen(key) != len) {
        json_decref(doc);
        req->auth_outcome = "malformed";
        reply_401(req, "not an API key: a key is 'sk_' and 43 characters");
        return;
    }
    auth_key_prefix(key, len, prefix);
    wait = api__ratelimit_check(api__ratelimit(req), req->client, prefix, now);
    if (wait > 0) {
        char num[32];
        json_decref(doc);
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
        json_decref(doc);
        return;
    }
    memset(&row, 0, sizeof(row));
    if (auth_verify(st, key, len, now, &row, &result, msg, &err)) {
        json_decref(doc);
        api__reply_err(req, &err);
        return;
    }
    json_decref(doc); /* (jansson's copy of the key: freed, as the body's is with the request) */
    if (result != AUTH_OK) {
        api__ratelimit_fail(api__ratelimit(req), req->client,
                            result == AUTH_UNKNOWN ? "" : prefix, now);
        req->auth_outcome = auth_result_name(result);
        reply_401(req, msg);
        return;
    }
    expires = api__session_start(api__sessions(req), &row, now, token, csrf);
    req->key = row;
    req->has_key = 1;
    req->auth_outcome = "session_started";
    api__reply_json(req, 201, session_json(&row, csrf, expires));
    set_cookie(req, token, (expires - now + 999) / 1000);
    sodium_memzero(token, sizeof(token));
    log_info("API", "Session started for API key %s... from %s", row.prefix, req->client);
}

/* GET /v1/session */
void api__session_get(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    const char *token = cookie_token(req);
    char csrf[API_SESSION_TOKEN_MAX], msg[512];
    int64_t expires;
    int status;

    if (api__query_check(req, no_args))
        return;
    if (!token) {
        reply_401(req, "not signed in (no session cookie)");
        return;
    }
    status = api__session_authenticate(req, token, 0, csrf, &expires, msg, sizeof(msg));
    if (status == 401) {
        reply_401(req, msg);
        set_cookie(req, "", 0);
        return;
    }
    if (status) {
        api__reply_error(req, status, NULL, "%s", msg);
        return;
    }
    api__reply_json(req, 200, session_json(&req->key, csrf, expires));
}

/* DELETE /v1/session (with X-CSRF-Token) */
void api__session_delete(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    const char *token = cookie_token(req);
    char msg[512];
    int status;

    if (api__query_check(req, no_args))
        return;
    if (!token) {
        reply_401(req, "not signed in (no session cookie)");
        return;
    }
    status = api__session_authenticate(req, token, 1, NULL, NULL, msg, sizeof(msg));
    if (status == 403) {
        api__reply_csrf(req, msg);
        return;
    }
    if (status == 401) {
        reply_401(req, msg);
        set_cookie(req, "", 0);
        return;
    }
    if (status) {
        api__reply_error(req, status, NULL, "%s", msg);
        return;
    }
    session_end(api__sessions(req), token);
    api__reply_empty(req, 204);
    set_cookie(req, "", 0);
    log_info("API", "Session ended for API key %s... (signed out)", req->key.prefix);
}
