/*
 * api_internal.h - shared between the api module's files; never included
 * from outside src/api/.
 */
#ifndef ORCH_API_API_INTERNAL_H
#define ORCH_API_API_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "api.h"
#include "auth/auth.h"
#include "base/err.h"
#include "base/strbuf.h"
#include "store/store.h"

struct MHD_Connection;
struct MHD_Response;
struct api_request;

/* ------------------------------------------------------------------ limits */

#define API_MAX_PARAMS      2   /* {placeholders} in one route */
#define API_PARAM_MAX       256 /* longest path segment a placeholder takes */
#define API_REQUEST_ID_MAX  64  /* longest X-Request-Id we echo */
#define API_IDEMPOTENCY_MAX 255 /* longest Idempotency-Key */
#define API_LIST_DEFAULT    20
#define API_LIST_MAX        1000

/* ------------------------------------------------------------------ router (router.c) */

typedef void (*api_handler_fn)(struct api_request *req);

struct api_route {
    const char *method;  /* "GET" */
    const char *pattern; /* "/v1/executions/{id}/cancel" */
    unsigned scope;      /* enum key_scope bit needed; 0 = no authentication */
    api_handler_fn handler;
};

struct api_path_params {
    size_t n;
    char values[API_MAX_PARAMS][API_PARAM_MAX];
};

/* The routes of /v1 and their number. */
extern const struct api_route api__routes[];
extern const size_t api__nroutes;

/* Do the answers of this route carry an ETag (If-None-Match: 304)? */
int api__route_has_etag(const struct api_route *r);

/*
 * Find the route for (method, path) in `routes`. Returns it with the values
 * of its placeholders in *params, or NULL: then `allow` (of `allowlen`
 * bytes) holds the methods the path accepts ("GET, DELETE": answer 405), or
 * "" if no route has that path (answer 404). Pure.
 */
const struct api_route *api__route_match(const struct api_route *routes, size_t n,
                                         const char *method, const char *path,
                                         struct api_path_params *params, char *allow,
                                         size_t allowlen);

/* ------------------------------------------------------------------ errors (errors.c) */

/* The HTTP status for an ERR_* code: the one place this mapping is made. */
int api__status_for_err(int code);
/* The error code string of the JSON error shape for a status ("not_found"). */
const char *api__code_for_status(int status);
/* {"error": {"code", "message", "details"}}; takes ownership of `details`
 * (an array, or NULL for []). `message` need not be valid UTF-8. */
json_t *api__error_json(int status, const char *message, json_t *details);

/* ------------------------------------------------------------------ pure helpers (query.c) */

/* Parse a page size "1".."1000"; 0 or ERR_INVALID. */
int api__parse_limit(const char *s, int *out);
/* Parse "failed" or "queued,running" into a mask of (1 << enum exec_status).
 * On ERR_INVALID, `bad` (of `badlen` bytes) holds the offending name. */
int api__parse_status_list(const char *s, unsigned *out_mask, char *bad, size_t badlen);
/* Parse an instant: RFC 3339 / ISO 8601 ("2026-11-29T10:00:00Z", a date) or
 * milliseconds since the epoch. */
int api__parse_instant(const char *s, int64_t *out_ms);
/* Parse a non-negative decimal int up to `max`. */
int api__parse_uint(const char *s, int max, int *out);
/* Does an If-None-Match value (a list of entity tags, or "*") name `etag`
 * (quoted)? Weak comparison: W/"x" matches "x". */
int api__etag_matches(const char *if_none_match, const char *etag);

/* gzip.c: compressed answers. API_GZIP_MIN: the smallest JSON answer worth
 * compressing. api__accepts_gzip(): does an Accept-Encoding value accept
 * gzip (its own q, else that of "*")? api__gzip(): in -> a gzip member at
 * level (1-9) in *out (free()), or -1 when it is not smaller or zlib fails.
 * api__etag_gz(): the ETag of the compressed bytes ("x" -> "x-gz"). */
#define API_GZIP_MIN 1024
int api__accepts_gzip(const char *accept_encoding);
int api__gzip(const void *in, size_t len, int level, char **out, size_t *outlen);
void api__etag_gz(const char *etag, char *out, size_t size);
/* Parse "true"/"false"/"1"/"0"; 0 or ERR_INVALID. */
int api__parse_bool(const char *s, int *out);
/* Is `s` an acceptable client X-Request-Id (1..64 of [A-Za-z0-9._-])? */
int api__valid_request_id(const char *s);
/* Is `s` an acceptable Idempotency-Key (1..255 printable ASCII)? */
int api__valid_idempotency_key(const char *s);
/* Is `s` an execution id we could have made ("ex_" + 16 base32)? */
int api__valid_exec_id(const char *s);
/* A JSON string of `len` bytes of `s`, invalid UTF-8 replaced by U+FFFD. */
json_t *api__json_string(const char *s, size_t len);

/* ------------------------------------------------------------------ Redis (apiredis.c) */

#include "base/redis.h"

#ifndef API_REDIS_TIMEOUT_MS
#define API_REDIS_TIMEOUT_MS 500 /* connect and each command of an HTTP thread */
#endif
#ifndef API_REDIS_RETRY_MS
#define API_REDIS_RETRY_MS 1000 /* after a failure, Redis counts as down this long */
#endif

struct api_redis;

/* The HTTP threads' Redis (a copy of `t`), or NULL when `t` is NULL. */
struct api_redis *api__redis_new(const struct redis_target *t);
/* After the HTTP threads have ended. NULL is fine. */
void api__redis_free(struct api_redis *r);
/* The calling thread's connection (made if needed), or NULL: no Redis, or it is down (the
 * caller uses its fallback; counted). Borrowed: do not free. */
redisContext *api__redis_get(struct api_redis *r);
/* A command on `c` (from api__redis_get) got no reply or an unexpected one: `c` is closed,
 * Redis counts as down for API_REDIS_RETRY_MS, said once in the log. */
void api__redis_failed(struct api_redis *r, redisContext *c);
/* The URL without its password, or NULL. */
const char *api__redis_shown(const struct api_redis *r);

struct api_redis_stats {
    int configured;
    int down;                /* the last try failed, not yet answered again */
    unsigned long long fallbacks; /* times a caller did without Redis */
    unsigned long long failures;  /* connections or commands that failed */
    char last_error[ERR_MSG_MAX];
};
void api__redis_stats(struct api_redis *r, struct api_redis_stats *out);
/* The server's (NULL without Redis). */
struct api_redis *api__redis(struct api_request *req);

/* What one look at Redis found (health, doctor). -1: not known. */
struct api_redis_probe {
    int reachable;
    double latency_ms; /* PING */
    char version[32];
    long long used_memory; /* bytes (INFO used_memory) */
    long long ops_per_sec; /* INFO instantaneous_ops_per_sec */
    long long stream_len;  /* XLEN of the dispatch stream */
    long long pending;     /* XPENDING of its group (0: no group yet) */
    char error[ERR_MSG_MAX]; /* when not reachable: why (the URL without its password) */
};
/*
 * Look at Redis now: PING (timed), INFO, and XLEN / XPENDING of `stream` and
 * `group` when given. Through `r`'s connection of this thread when `r` is
 * given (a fresh one if it is down), else a connection of its own to `t`.
 * 0, or -1 with out->error.
 */
int api__redis_probe_target(const struct redis_target *t, struct api_redis *r,
                            const char *stream, const char *group, struct api_redis_probe *out);

/* ------------------------------------------------------------------ rate limiting (ratelimit.c) */

struct api_ratelimit;

/*
 * Allow `limit` failures per (client, key prefix) within `window_ms` (limit
 * 0: never limit); the table keeps at most `slots` pairs (rounded to a power
 * of 2). `prefix` is the prefix of the key presented (never the key).
 */
struct api_ratelimit *api__ratelimit_new(int limit, int64_t window_ms, size_t slots);
void api__ratelimit_free(struct api_ratelimit *rl);
/* 0 if the pair is under its limit, else how many ms until it is. Thread-safe. */
int64_t api__ratelimit_check(struct api_ratelimit *rl, const char *client, const char *prefix,
                             int64_t now_ms);
/* Record a failed attempt of the pair. Thread-safe. */
void api__ratelimit_fail(struct api_ratelimit *rl, const char *client, const char *prefix,
                         int64_t now_ms);
/* Count in Redis too (borrowed; NULL: this node alone): every node on the same Redis shares
 * the pairs' counts; while Redis is down, the local table decides. */
void api__ratelimit_set_redis(struct api_ratelimit *rl, struct api_redis *redis);

/* ------------------------------------------------------------------ refused keys (authfails.c) */

struct api_authfails;

struct api_authfails *api__authfails_new(void);
void api__authfails_free(struct api_authfails *af);
/* Record a 401 answered to `client`: `reason` is the short name of what was
 * wrong ("malformed"), `message` what the client was told (never a key).
 * Thread-safe; NULL `af` is a no-op. */
void api__authfails_record(struct api_authfails *af, const char *client, const char *reason,
                           const char *message, int64_t now_ms);
/* The groups (client, message) of the last hour, the largest first:
 * [{"client", "reason", "message", "count", "firstAt", "lastAt"}]. */
json_t *api__authfails_json(struct api_authfails *af, int64_t now_ms);

/* How often something happened in the last hour, by minute: a ring of 60
 * one-minute slots, each with the minute it counts (an older minute's slot
 * is reset when reused), so the sum is always the last 60 minutes whatever
 * the gaps. Times are monotonic milliseconds. Not locked: the caller's lock
 * guards it. Zero-initialised is empty. */
#define API_HOUR_SLOTS 60
struct api_hour_count {
    int64_t minute[API_HOUR_SLOTS]; /* minute number + 1 (0: never used) */
    uint64_t n[API_HOUR_SLOTS];
};
void api__hour_count_add(struct api_hour_count *h, int64_t mono_ms);
/* Events in the 60 minutes up to mono_ms (the current minute included). */
uint64_t api__hour_count_sum(const struct api_hour_count *h, int64_t mono_ms);

/* ------------------------------------------------------------------ clients (clientaddr.c) */

struct api_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int bits;
};

/* A list of networks; members are private. */
struct api_cidrs {
    struct api_cidr *items;
    size_t n, alloc;
};

/* Parse "10.0.0.0/8, ::1, 192.168.1.7" (an address alone is a /32 or /128).
 * Returns 0 or ERR_INVALID with a message (then *out is empty). */
int api__cidrs_parse(const char *list, struct api_cidrs *out, struct err *err);
void api__cidrs_release(struct api_cidrs *c);
/* Is the address (a socket address, or its text) in one of the networks? */
int api__cidrs_match(const struct api_cidrs *c, const struct sockaddr *sa);
int api__cidrs_match_text(const struct api_cidrs *c, const char *addr);

/* Connections are counted per this key: the IPv4 address, or the /64 of an IPv6 one. */
#define API_ADDR_KEY_LEN 9
void api__addr_key(const struct sockaddr *sa, unsigned char out[API_ADDR_KEY_LEN]);

/*
 * The client of a request that came from `peer` (an address as text) with
 * the X-Forwarded-For list `forwarded` (NULL if none; several headers joined
 * with commas): `peer` itself unless it is a trusted proxy; then the
 * right-most address of the list that is not a trusted proxy (or the
 * left-most, if all are; or the nearest valid one when an entry is not an
 * address). Written to `out` (of `outlen` bytes).
 */
void api__client_from_forwarded(const struct api_cidrs *trusted, const char *peer,
                                const char *forwarded, char *out, size_t outlen);

/* ------------------------------------------------------------------ requests (http.c) */

/* Per-request state; members are read by handlers through the functions below. */
struct api_request {
    struct api_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char *path;
    char request_id[API_REQUEST_ID_MAX + 1];
    char client[64];
    int64_t start_ns;
    const struct api_route *route;
    struct api_path_params params;
    struct strbuf body;
    size_t discarded; /* body bytes dropped after an early answer */
    int has_key;
    struct key_row key;
    int phase;        /* 0 before the first call, 1 reading, 2 answered, 3 deferred */
    int early_status; /* an answer decided before the body arrived */
    json_t *early_body;
    char early_allow[64];
    char early_auth[AUTH_MSG_MAX + 64]; /* WWW-Authenticate value for 401 */
    int64_t retry_after_s;              /* for 429 */
    /* the answer */
    int status;
    struct MHD_Response *response;
    const char *auth_outcome; /* for the log line */
    struct store *pooled;     /* PostgreSQL: the connection taken for this request */
    char store_error[256];    /* why no store connection could be had, if so */
    int ui;                   /* a request for the web pages (ui.c), not for /v1 */
    const char *cache_control; /* Cache-Control of the answer; NULL: no-store */
    int session;              /* authenticated by the session cookie (session.c) */
    /* A deferred answer (api__defer): finish runs once the connection is
     * resumed; pending is the handler's, freed by pending_free if the
     * request ends before finish took it. */
    void (*finish)(struct api_request *req);
    void *pending;
    void (*pending_free)(void *pending);
    atomic_int resumed; /* api__resume was called */
};

/*
 * Answer `req` later, without holding an HTTP thread: its connection is
 * suspended when the handler returns, until api__resume(req) (from any
 * thread, exactly once); then finish(req) runs on an HTTP thread and gives
 * the answer as a handler does. Call it before starting what will resume.
 */
void api__defer(struct api_request *req, void (*finish)(struct api_request *req));
void api__resume(struct api_request *req);

/* The server this request came to. */
struct engine *api__engine(struct api_request *req);
const char *api__data_dir(struct api_request *req);
struct api_ratelimit *api__ratelimit(struct api_request *req);
struct api_authfails *api__authfails(struct api_request *req);
int64_t api__uptime_ms(struct api_request *req);
/* The store location the HTTP threads open (database URL or data directory). */
const char *api__store_location(struct api_request *req);
const char *api__node(struct api_request *req);
int64_t api__lease_ms(struct api_request *req);
/* Figures of the store connections of the HTTP threads. */
struct api_pool_stats {
    const char *kind;  /* "pool" (PostgreSQL) or "per-thread" (SQLite) */
    int size;          /* the pool's size, or the connections open */
    int open;          /* connections open */
    int in_use;        /* taken by requests now */
    int waiting;       /* requests waiting for one */
    uint64_t exhausted; /* requests that waited the whole timeout */
    uint64_t exhausted_hour; /* of them, in the last hour */
    int64_t timeout_ms;
};
void api__pool_stats(struct api_request *req, struct api_pool_stats *out);
/* Give back the pooled connection of `req` early (when the handler is done
 * with the store but not with the request). */
void api__store_done(struct api_request *req);

/* The server's sessions; whether it serves HTTPS. */
struct api_sessions *api__sessions(struct api_request *req);
int api__tls(struct api_request *req);
/* The request's cookie `name` into `out` (api__cookie_find): 1, or 0 if none. */
int api__cookie(struct api_request *req, const char *name, char *out, size_t outlen);
/* The request's header / query argument `name`, or NULL. */
const char *api__header(struct api_request *req, const char *name);
const char *api__query(struct api_request *req, const char *name);
/*
 * Check the query: every argument is one of `allowed` (NULL-terminated) and
 * given at most once. Returns 0, or replies 400 and returns -1.
 */
int api__query_check(struct api_request *req, const char *const *allowed);

/*
 * The calling thread's store connections, opened on first use (read: a
 * STORE_READONLY reader; write: a writer for what does not go through the
 * engine). NULL after replying 503 when the store cannot be opened.
 */
struct store *api__read_store(struct api_request *req);

/* The same for a request about workflow `name`: NULL after a 404 when the name
 * cannot be a workflow's. */
struct store *api__workflow_read_store(struct api_request *req, const char *name);
struct store *api__write_store(struct api_request *req);

/* Replies. Each sets the request's answer; the last one wins. */
/* JSON body (takes ownership of `body`). */
void api__reply_json(struct api_request *req, int status, json_t *body);
/* A body already serialized as JSON (takes ownership of `text`, a heap string). */
void api__reply_json_text(struct api_request *req, int status, char *text, size_t len);
/* A body of `len` bytes of `text` (a heap string: takes ownership). */
void api__reply_text(struct api_request *req, int status, const char *content_type, char *text,
                     size_t len);
/* A body of static bytes (not copied: they must outlive the answer). */
void api__reply_static(struct api_request *req, int status, const char *content_type,
                       const char *data, size_t len);
/* No body (204). */
void api__reply_empty(struct api_request *req, int status);
/* The error shape with the status and its code; takes ownership of `details`. */
void api__reply_error(struct api_request *req, int status, json_t *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The error shape for an ERR_* code (status from api__status_for_err) with err->msg. */
void api__reply_err(struct api_request *req, const struct err *err);
/* Add a header to the answer already set (Location, ...). */
void api__reply_header(struct api_request *req, const char *name, const char *value);

/*
 * A streamed answer: `next` is called (on the request's HTTP thread) to fill
 * `out` with more bytes; it returns 1 if there may be more later (0 bytes
 * added: the connection sleeps ~200 ms before the next call), 0 at the end
 * (after what it added), -1 on error (the connection is closed).
 * `free_fn(arg)` is called once when the answer is done.
 */
typedef int (*api_stream_fn)(void *arg, struct strbuf *out);
void api__reply_stream(struct api_request *req, int status, const char *content_type,
                       api_stream_fn next, void (*free_fn)(void *), void *arg);
/* Is the server stopping (streams should end)? */
int api__stopping(struct api_request *req);

/* ------------------------------------------------------------------ sessions (session.c) */

#define API_SESSION_COOKIE    "orch_session"
#define API_SESSION_TOKEN_MAX 64                    /* room for a token or CSRF token */
#define API_SESSION_TOKEN_LEN 43                    /* base64url, no padding, of 32 bytes */
#define API_SESSION_TTL_MS    (12LL * 3600 * 1000) /* a session's life (or its key's) */
#define API_SESSION_TOUCH_MS  60000                 /* last_seen_at: at most a write a minute */
#define API_SESSION_PURGE_MS  60000                 /* ended sessions: purged at most so often */

struct api_sessions;

struct api_sessions *api__sessions_new(int64_t ttl_ms);
void api__sessions_free(struct api_sessions *ss);
/*
 * Authenticate `req` by the session of cookie `token`: 0 with req->key set
 * (the key's current row) and req->session; else the status to answer (401:
 * no such session, or it has expired, or its key is revoked, expired or
 * gone, which ends the session; 403: `need_csrf` and X-CSRF-Token is missing
 * or wrong; 503) with `msg`. On 0 the session's CSRF token and expiry go to
 * csrf_out and expires_out when not NULL. Sessions live in the store, so
 * every node on the same database knows them.
 */
int api__session_authenticate(struct api_request *req, const char *token, int need_csrf,
                              char *csrf_out, int64_t *expires_out, char *msg, size_t msglen);

/*
 * The parsers of what a browser sends about its session (pure, fuzzed by
 * tests/fuzz/fuzz_session.c):
 * - api__cookie_find: the value of cookie `name` in a Cookie header value
 *   ("a=1; name=v"; the first of that name; spaces around names and values
 *   and the quotes of a quoted value dropped). Returns 1 with the value in
 *   `out` ("" when it does not fit in `outlen` bytes), 0 if there is none.
 * - api__session_token_valid: is `s` the form of a session or CSRF token
 *   (API_SESSION_TOKEN_LEN base64url characters)?
 * - api__session_body_key: the key of a sign-in body {"key": "sk_..."}: 0
 *   with the key (NUL-terminated) in `key` and its length in *key_len; 400
 *   when the body is not that object; 401 when the string is not an API key.
 *   The key is never quoted in a message.
 * - api__session_hash: the stored hash of a token (keyed BLAKE2b);
 * - api__session_csrf: the CSRF token of session token `token` (derived
 *   from it, so that GET /v1/session can give it again while the store
 *   keeps only its hash);
 * - api__csrf_check: is `given` (NULL: no header) the CSRF token whose
 *   hash is `expected_hash`? Compared in constant time.
 */
int api__cookie_find(const char *header, const char *name, char *out, size_t outlen);
int api__session_token_valid(const char *s);
int api__session_body_key(const char *body, size_t len, char key[AUTH_KEY_MAX_LEN + 1],
                          size_t *key_len);
void api__session_hash(const char *token, size_t len, unsigned char out[SESSION_HASH_LEN]);
void api__session_csrf(const char *token, char out[API_SESSION_TOKEN_MAX]);
int api__csrf_check(const char *given, const unsigned char expected_hash[SESSION_HASH_LEN]);
/* Constant-time equality of a given token (NULL: none) with the expected one. */
int api__csrf_equal(const char *given, const char *expected);
/* 403 with the error code "csrf". */
void api__reply_csrf(struct api_request *req, const char *msg);

/* ------------------------------------------------------------------ web pages (ui.c) */

/* The Content-Security-Policy of the pages. */
extern const char api__ui_csp[];
/* Is a GET of `path` (with the request's Accept value, or NULL) one for the
 * pages: /assets/..., or any path outside /v1 (and /metrics) that a browser
 * loads as HTML? */
int api__ui_claims(const char *path, const char *accept);
/* Answer a request the pages claimed. */
void api__ui_serve(struct api_request *req);

/* ------------------------------------------------------------------ handlers */

/* health.c's figures, for doctor.c: system and cgroup (v2) memory in use,
 * percent (-1: unknown); this process's open descriptors and their limit
 * (-1: unknown). */
void api__memory_used(double *out_system_pct, double *out_cgroup_pct);
void api__fds_used(long long *out_open, long long *out_limit);

void api__health(struct api_request *req);
void api__health_scheduler(struct api_request *req);
void api__health_live(struct api_request *req);
void api__health_ready(struct api_request *req);
void api__nodes_list(struct api_request *req);
void api__workflows_put(struct api_request *req);
void api__workflows_list(struct api_request *req);
void api__workflows_get(struct api_request *req);
void api__workflows_delete(struct api_request *req);
void api__executions_submit(struct api_request *req);
void api__executions_list(struct api_request *req);
void api__executions_get(struct api_request *req);
void api__executions_cancel(struct api_request *req);
void api__executions_retry(struct api_request *req);
void api__executions_logs(struct api_request *req);
void api__executions_tasks(struct api_request *req);
void api__executions_notifications(struct api_request *req);
void api__schedules_list(struct api_request *req);
void api__schedules_get(struct api_request *req);
void api__schedules_create(struct api_request *req);
void api__schedules_patch(struct api_request *req);
void api__schedules_delete(struct api_request *req);
void api__schedules_next(struct api_request *req);
void api__schedules_preview(struct api_request *req);
void api__schedules_fires(struct api_request *req);
void api__schedules_pause(struct api_request *req);
void api__schedules_resume(struct api_request *req);
void api__schedules_backfill(struct api_request *req);
void api__workflows_graph(struct api_request *req);
void api__workflows_versions(struct api_request *req);
void api__stats_executions(struct api_request *req);
/* Set "waitingOn" on the task objects of `tasks` (the views of d's first n
 * runs, without the fan-out instances if `skip_instances`): handlers_views.c. */
void api__add_waiting(struct api_request *req, struct store *rd, const struct exec_detail *d,
                      json_t *tasks, size_t n, int skip_instances);
void api__session_create(struct api_request *req);
void api__session_get(struct api_request *req);
void api__session_delete(struct api_request *req);
void api__keys_create(struct api_request *req);
void api__keys_list(struct api_request *req);
void api__keys_revoke(struct api_request *req);
void api__doctor(struct api_request *req);

/* ------------------------------------------------------------------ metrics (metrics.c) */

/* GET /metrics. */
void api__metrics(struct api_request *req);
/* Count a request answered (its route and status) that
 * took `ns`. Any HTTP thread, no lock. */
void api__metrics_request_done(const struct api_request *req, int64_t ns);
/* A refused request's reason, counted before its answer is queued: a client
 * that scrapes right after its 401 sees it counted. */
void api__metrics_auth_refused(const struct api_request *req);

#endif
