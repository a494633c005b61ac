/*
 * http.c - the libmicrohttpd side of the API: the daemon, the two-phase
 * access handler with bounded body accumulation, authentication, replies,
 * streamed replies, per-thread store connections and the access log.
 *
 * Two-phase handler: MHD calls the access handler once when the headers are
 * in (*con_cls == NULL), then once per piece of body, then once more with no
 * data. A response queued on the first call makes MHD 0.9.75 close the
 * connection (keep-alive is lost, throughput drops five-fold), so every
 * answer is queued on a later call, except 413 for a declared Content-Length
 * over the limit: there the connection must close anyway, as the body is
 * not read. Everything that needs only the headers (route, authentication,
 * rate limit) is decided on the first call, so a refused request's body is
 * discarded as it arrives instead of being buffered.
 *
 * Streams (log follow): a content reader with nothing to send suspends its
 * connection and puts it on a list; a waker thread resumes every listed
 * connection each API_STREAM_POLL_MS, and the reader polls again. So a
 * follower holds no thread while it waits.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <dlfcn.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "api_internal.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/id.h"
#include "base/log.h"
#include "base/xalloc.h"

#include "base/banned.h"

/*
 * libmicrohttpd is loaded when the server starts, not linked: through GnuTLS
 * it pulls a dozen libraries into every orch command, about 3.5 ms of
 * start-up each (measured with hyperfine: an empty program 2.1 ms, linked
 * with -lmicrohttpd 5.6 ms), while only `orch server` needs it.
 */
static struct {
    void *lib;
    enum MHD_Result (*add_response_header)(struct MHD_Response *r, const char *h,
                                           const char *c);
    struct MHD_Response *(*create_response_from_buffer)(size_t size, void *buf,
                                                         enum MHD_ResponseMemoryMode mode);
    struct MHD_Response *(*create_response_from_callback)(uint64_t size, size_t block,
                                                          MHD_ContentReaderCallback crc,
                                                          void *crc_cls,
                                                          MHD_ContentReaderFreeCallback crfc);
    void (*destroy_response)(struct MHD_Response *r);
    const union MHD_ConnectionInfo *(*get_connection_info)(struct MHD_Connection *c,
                                                           enum MHD_ConnectionInfoType t, ...);
    int (*get_connection_values)(struct MHD_Connection *c, enum MHD_ValueKind k,
                                 MHD_KeyValueIterator it, void *cls);
    int (*get_connection_values_n)(struct MHD_Connection *c, enum MHD_ValueKind k,
                                   MHD_KeyValueIteratorN it, void *cls);
    const union MHD_DaemonInfo *(*get_daemon_info)(struct MHD_Daemon *d,
                                                   enum MHD_DaemonInfoType t, ...);
    const char *(*lookup_connection_value)(struct MHD_Connection *c, enum MHD_ValueKind k,
                                           const char *key);
    enum MHD_Result (*queue_response)(struct MHD_Connection *c, unsigned int status,
                                      struct MHD_Response *r);
    MHD_socket (*quiesce_daemon)(struct MHD_Daemon *d);
    void (*resume_connection)(struct MHD_Connection *c);
    struct MHD_Daemon *(*start_daemon)(unsigned int flags, uint16_t port,
                                       MHD_AcceptPolicyCallback apc, void *apc_cls,
                                       MHD_AccessHandlerCallback dh, void *dh_cls, ...);
    void (*stop_daemon)(struct MHD_Daemon *d);
    void (*suspend_connection)(struct MHD_Connection *c);
    enum MHD_Result (*is_feature_supported)(enum MHD_FEATURE f);
} mhd;

static pthread_mutex_t mhd_lock = PTHREAD_MUTEX_INITIALIZER;

static int mhd_load(struct err *err)
{
    void *lib;
    int rc = 0;

    pthread_mutex_lock(&mhd_lock);
    if (mhd.lib)
        goto out;
    lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        rc = err_set(err, ERR_INTERNAL, "cannot load libmicrohttpd (install libmicrohttpd12): %s",
                     dlerror());
        goto out;
    }
#define LOAD(field, name)                                                                          \
    do {                                                                                           \
        *(void **)&mhd.field = dlsym(lib, name);                                                   \
        if (!mhd.field) {                                                                          \
            dlclose(lib);                                                                          \
            rc = err_set(err, ERR_INTERNAL, "libmicrohttpd lacks %s", name);                       \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)
    LOAD(add_response_header, "MHD_add_response_header");
    LOAD(create_response_from_buffer, "MHD_create_response_from_buffer");
    LOAD(create_response_from_callback, "MHD_create_response_from_callback");
    LOAD(destroy_response, "MHD_destroy_response");
    LOAD(get_connection_info, "MHD_get_connection_info");
    LOAD(get_connection_values, "MHD_get_connection_values");
    LOAD(get_connection_values_n, "MHD_get_connection_values_n");
    LOAD(get_daemon_info, "MHD_get_daemon_info");
    LOAD(lookup_connection_value, "MHD_lookup_connection_value");
    LOAD(queue_response, "MHD_queue_response");
    LOAD(quiesce_daemon, "MHD_quiesce_daemon");
    LOAD(resume_connection, "MHD_resume_connection");
    LOAD(start_daemon, "MHD_start_daemon");
    LOAD(stop_daemon, "MHD_stop_daemon");
    LOAD(suspend_connection, "MHD_suspend_connection");
    LOAD(is_feature_supported, "MHD_is_feature_supported");
#undef LOAD
    mhd.lib = lib;
out:
    pthread_mutex_unlock(&mhd_lock);
    return rc;
}

#ifndef API_STREAM_POLL_MS
#define API_STREAM_POLL_MS 200 /* how often a sleeping stream polls the store */
#endif
#ifndef API_CONN_MEMORY
/* MHD's per-connection buffer: request line + headers. Well above the limits
 * below, so that a request over them gets our JSON answer, not MHD's HTML. */
#define API_CONN_MEMORY (64 * 1024)
#endif
#ifndef API_MAX_URL
#define API_MAX_URL (8 * 1024) /* longest request target (path and query): 414 beyond */
#endif
#ifndef API_MAX_HEAD
#define API_MAX_HEAD (16 * 1024) /* request line and headers: 431 beyond */
#endif
#ifndef API_MAX_CONNECTIONS
#define API_MAX_CONNECTIONS 1000
#endif
#define KEY_TOUCH_MS 60000 /* lastUsedAt is written at most this often per key */

/* PostgreSQL: the store connections the HTTP threads share. */
struct store_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct store **idle;
    size_t nidle, idle_alloc;
    int size, open, in_use, waiting;
    int64_t timeout_ms;
    uint64_t exhausted;
    struct api_hour_count exhausted_recent; /* of them, by minute */
};

#define KEY_CACHE_SLOTS 64
#define KEY_STALE_MS (5 * 60 * 1000)

struct key_cache_entry {
    unsigned char hash[KEY_HASH_LEN];
    struct key_row row; /* id, prefix, scopes, expires_at (no name) */
    int64_t verified_at;
    int used;
};

struct api_server {
    char *listen;
    struct key_cache_entry kc[KEY_CACHE_SLOTS];
    pthread_mutex_t kc_mu;
    char *data_dir;
    char *location; /* what the HTTP threads open */
    char *node;
    int64_t lease_ms;
    int pooled;     /* PostgreSQL: connections come from `pool` */
    struct store_pool pool;
    struct engine *engine;
    int ui; /* serve the web pages */
    int metrics_only;      /* serve GET /metrics alone (--metrics-listen) */
    int metrics_auth_none; /* GET /metrics needs no key */
    struct api_server *metrics_of; /* whose pool a metrics-only server shows (or NULL) */
    struct api_sessions *sessions;
    size_t max_body;
    int threads;
    struct MHD_Daemon *mhd;
    char url[128];
    struct api_ratelimit *rl;
    struct api_redis *redis; /* ORCH_REDIS_URL, or NULL */
    struct api_authfails *authfails; /* refused keys of the last hour (orch doctor) */
    int64_t started_ms;
    pthread_key_t tls;
    atomic_int stores_open;
    atomic_int in_flight;
    atomic_int stopping;

    pthread_mutex_t quiesce_lock;
    int quiesced;
    MHD_socket quiesced_fd;

    /* sleeping streams */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake_cond;
    struct MHD_Connection **sleeping;
    size_t nsleeping, sleeping_alloc;
    int waker_quit;
    int waker_started;
    pthread_t waker;

    char last_mhd_error[256];
    char first_tls_error[256]; /* MHD's first message about TLS (GnuTLS's reason) */

    /* open connections (see "connections" below) */
    pthread_mutex_t conn_lock;
    struct conn *conns;
    struct api_cidrs trusted;
    int conns_per_address;
    int64_t head_timeout_ms;
    int64_t idle_timeout_ms;

    /* HTTPS: the PEM texts handed to MHD (kept until it stops; the key is
     * wiped on free) */
    char *tls_cert_pem;
    char *tls_key_pem;
    size_t tls_key_len;
};

/*
 * An open connection (see "connections" below). The list links are guarded by the
 * server's conn_lock.
 */
struct conn {
    struct conn *prev, *next;
    int fd;
    int exempt; /* from a trusted proxy: not counted against its address */
    unsigned char key[API_ADDR_KEY_LEN];
    /* Written by the connection's HTTP thread without the lock (atomics: two
     * threads answering requests do not wait on each other), cleared by the
     * waker once passed. */
    _Atomic int64_t deadline_ms; /* clock_mono_ms() by which the head must be in; 0: none */
    atomic_int kept;             /* answered a request; waiting for the next */
};

/* The store connections of one HTTP thread (thread-specific data). */
struct thread_stores {
    struct api_server *srv;
    struct store *rd;
    struct store *wr;
    struct api_request *snap; /* whose read snapshot is open on rd (see "snapshots") */
};

void api_config_init(struct api_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = API_DEFAULT_LISTEN;
    cfg->timeout_s = API_DEFAULT_TIMEOUT_S;
    cfg->max_body = API_DEFAULT_MAX_BODY;
    cfg->auth_fail_limit = API_DEFAULT_AUTH_FAIL_LIMIT;
    cfg->auth_fail_window_ms = API_DEFAULT_AUTH_FAIL_WINDOW_MS;
    cfg->conns_per_address = API_DEFAULT_CONNS_PER_ADDRESS;
    cfg->head_timeout_ms = API_DEFAULT_HEAD_TIMEOUT_MS;
}

/* ------------------------------------------------------------------ accessors */

struct engine *api__engine(struct api_request *req)
{
    return req->srv->engine;
}

const char *api__data_dir(struct api_request *req)
{
    return req->srv->data_dir;
}

const char *api__store_location(struct api_request *req)
{
    return req->srv->location;
}

const char *api__node(struct api_request *req)
{
    return req->srv->node;
}

int64_t api__lease_ms(struct api_request *req)
{
    return req->srv->lease_ms;
}

struct api_ratelimit *api__ratelimit(struct api_request *req)
{
    return req->srv->rl;
}

struct api_redis *api__redis(struct api_request *req)
{
    if (!req->srv->redis && req->srv->metrics_of)
        return req->srv->metrics_of->redis; /* a --metrics-listen port shows the API's */
    return req->srv->redis;
}

struct api_authfails *api__authfails(struct api_request *req)
{
    return req->srv->authfails;
}

int64_t api__uptime_ms(struct api_request *req)
{
    return clock_mono_ms() - req->srv->started_ms;
}

void api__pool_stats(struct api_request *req, struct api_pool_stats *out)
{
    struct api_server *srv = req->srv->metrics_of ? req->srv->metrics_of : req->srv;

    memset(out, 0, sizeof(*out));
    if (!srv->pooled) {
        out->kind = "per-thread";
        out->open = out->size = atomic_load(&srv->stores_open);
        out->in_use = atomic_load(&srv->in_flight);
        return;
    }
    out->kind = "pool";
    pthread_mutex_lock(&srv->pool.mu);
    out->size = srv->pool.size;
    out->open = srv->pool.open;
    out->in_use = srv->pool.in_use;
    out->waiting = srv->pool.waiting;
    out->exhausted = srv->pool.exhausted;
    out->exhausted_hour = api__hour_count_sum(&srv->pool.exhausted_recent, clock_mono_ms());
    out->timeout_ms = srv->pool.timeout_ms;
    pthread_mutex_unlock(&srv->pool.mu);
}

int api__stopping(struct api_request *req)
{
    return atomic_load(&req->srv->stopping);
}

struct api_sessions *api__sessions(struct api_request *req)
{
    return req->srv->sessions;
}

int api__tls(struct api_request *req)
{
    return req->srv->tls_key_pem != NULL;
}

int api__cookie(struct api_request *req, const char *name, char *out, size_t outlen)
{
    /* Parsed here (session.c), not by MHD: one parser, fuzzed, whatever the MHD version. */
    return api__cookie_find(api__header(req, "Cookie"), name, out, outlen);
}

void api__reply_csrf(struct api_request *req, const char *msg)
{
    json_t *e = api__error_json(403, msg, NULL);
    json_object_set_new(json_object_get(e, "error"), "code", json_string("csrf"));
    api__reply_json(req, 403, e);
}

const char *api__header(struct api_request *req, const char *name)
{
    return mhd.lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *api__query(struct api_request *req, const char *name)
{
    const char *v = mhd.lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
    return v;
}

struct query_check {
    const char *const *allowed;
    const char *seen[16];
    size_t nseen;
    const char *bad;
    int twice;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct query_check *qc = cls;
    const char *const *a;
    (void)kind;
    (void)value;

    for (a = qc->allowed; *a; a++)
        if (!strcmp(*a, key))
            break;
    if (!*a) {
        qc->bad = key;
        return MHD_NO;
    }
    for (size_t i = 0; i < qc->nseen; i++) {
        if (!strcmp(qc->seen[i], key)) {
            qc->bad = key;
            qc->twice = 1;
            return MHD_NO;
        }
    }
    if (qc->nseen < sizeof(qc->seen) / sizeof(qc->seen[0]))
        qc->seen[qc->nseen++] = *a;
    return MHD_YES;
}

int api__query_check(struct api_request *req, const char *const *allowed)
{
    struct query_check qc;
    char names[256];
    size_t used = 0;

    memset(&qc, 0, sizeof(qc));
    qc.allowed = allowed;
    mhd.get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_iter, &qc);
    if (!qc.bad)
        return 0;
    if (qc.twice) {
        api__reply_error(req, 400, NULL, "query parameter '%.64s' given more than once", qc.bad);
        return -1;
    }
    names[0] = '\0';
    for (const char *const *a = allowed; *a && used < sizeof(names); a++) {
        int w = snprintf(names + used, sizeof(names) - used, "%s%s", used ? ", " : "", *a);
        if (w > 0)
            used += (size_t)w;
    }
    if (allowed[0])
        api__reply_error(req, 400, NULL, "unknown query parameter '%.64s' (known: %s)", qc.bad,
                         names);
    else
        api__reply_error(req, 400, NULL, "unknown query parameter '%.64s' (none are taken here)",
                         qc.bad);
    return -1;
}

/* ------------------------------------------------------------------ per-thread stores */

static void thread_stores_free(void *p)
{
    struct thread_stores *ts = p;
    int n = (ts->rd != NULL) + (ts->wr != NULL);

    store_free(ts->rd);
    store_free(ts->wr);
    atomic_fetch_sub(&ts->srv->stores_open, n);
    free(ts);
}

static struct thread_stores *thread_stores(struct api_server *srv)
{
    struct thread_stores *ts = pthread_getspecific(srv->tls);
    if (!ts) {
        ts = xcalloc(1, sizeof(*ts));
        ts->srv = srv;
        pthread_setspecific(srv->tls, ts);
    }
    return ts;
}

/* ------------------------------------------------------------------ the pool (PostgreSQL) */

static void pool_init(struct store_pool *p, int size, int64_t timeout_ms)
{
    memset(p, 0, sizeof(*p));
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->size = size > 0 ? size : API_DEFAULT_POOL_SIZE;
    p->timeout_ms = timeout_ms > 0 ? timeout_ms : API_DEFAULT_POOL_TIMEOUT_MS;
}

static void pool_destroy(struct store_pool *p)
{
    for (size_t i = 0; i < p->nidle; i++)
        store_free(p->idle[i]);
    free(p->idle);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

/*
 * Take a connection: an idle one, a new one while fewer than `size` are
 * open, else wait up to the timeout. Replies 503 on failure.
 */
static struct store *pool_acquire(struct api_request *req)
{
    struct api_server *srv = req->srv;
    struct store_pool *p = &srv->pool;
    struct err err = ERR_INIT;
    struct store *st = NULL;
    struct timespec until;
    int64_t t0 = clock_mono_ms();

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(p->timeout_ms / 1000);
    until.tv_nsec += (long)(p->timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (p->nidle) {
            st = p->idle[--p->nidle];
            p->in_use++;
            break;
        }
        if (p->open < p->size) {
            p->open++;
            p->in_use++;
            break;
        }
        p->waiting++;
        if (pthread_cond_timedwait(&p->cv, &p->mu, &until) == ETIMEDOUT && !p->nidle &&
            p->open >= p->size) {
            char waited[32];
            p->waiting--;
            p->exhausted++;
            api__hour_count_add(&p->exhausted_recent, clock_mono_ms());
            pthread_mutex_unlock(&p->mu);
            clock_fmt_duration(clock_mono_ms() - t0, waited, sizeof(waited));
            log_error("Database", "Connection pool exhausted (size %d, waited %s)", p->size,
                      waited);
            snprintf(req->store_error, sizeof(req->store_error),
                     "the database connection pool is exhausted (size %d, waited %s): try "
                     "again, or raise ORCH_DB_POOL_SIZE",
                     p->size, waited);
            api__reply_error(req, 503, NULL, "%s", req->store_error);
            return NULL;
        }
        p->waiting--;
    }
    pthread_mutex_unlock(&p->mu);
    if (!st) {
        if (store_open(srv->location, 0, &st, &err)) {
            st = NULL;
            log_error("Database", "Cannot open a connection: %s", err.msg);
        }
    } else if (!store_connected(st) && store_reconnect(st, &err)) {
        log_error("Database", "Cannot reconnect: %s", err.msg);
        store_free(st);
        st = NULL;
    }
    if (!st) {
        pthread_mutex_lock(&p->mu);
        p->open--;
        p->in_use--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        snprintf(req->store_error, sizeof(req->store_error), "the database is unavailable: %.200s",
                 err.msg);
        api__reply_error(req, 503, NULL, "%s", req->store_error);
        return NULL;
    }
    return st;
}

static void pool_release(struct api_server *srv, struct store *st)
{
    struct store_pool *p = &srv->pool;

    store_rollback(st); /* never hand on an open transaction */
    pthread_mutex_lock(&p->mu);
    p->in_use--;
    if (store_connected(st)) {
        XGROW(p->idle, p->idle_alloc, p->nidle + 1);
        p->idle[p->nidle++] = st;
        st = NULL;
    } else {
        p->open--; /* a broken one is not kept */
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    store_free(st);
}

void api__store_done(struct api_request *req)
{
    if (req->pooled) {
        pool_release(req->srv, req->pooled);
        req->pooled = NULL;
    }
}

static struct store *open_store(struct api_request *req, int writer)
{
    struct thread_stores *ts;

    if (req->srv->pooled) {
        if (!req->pooled)
            req->pooled = pool_acquire(req);
        return req->pooled;
    }
    ts = thread_stores(req->srv);
    struct store **slot = writer ? &ts->wr : &ts->rd;
    struct err err = ERR_INIT;

    if (*slot)
        return *slot;
    if (store_open(req->srv->location, writer ? 0 : STORE_READONLY, slot, &err)) {
        *slot = NULL;
        log_error("API", "Cannot open the store in '%s': %s", req->srv->location, err.msg);
        api__reply_error(req, 503, NULL, "the database is unavailable: %s", err.msg);
        return NULL;
    }
    atomic_fetch_add(&req->srv->stores_open, 1);
    return *slot;
}

/*
 * Snapshots. A GET's key check and its handler read in one SQLite read
 * transaction of the thread's read connection: one WAL read lock (its
 * fcntl calls on the -shm, under SQLite's per-file mutex that the HTTP
 * threads share) per request instead of one per statement group. Only a
 * request without a body keeps it from the key check to the end of its
 * handler (MHD calls the handler at once then); every other request that
 * starts on the thread ends it, so no request ever reads in another's
 * snapshot longer than that. A request that writes the key's lastUsedAt
 * ends it, so the handler sees the write.
 */
static void snapshot_end_any(struct api_server *srv)
{
    struct thread_stores *ts;

    if (srv->pooled || !(ts = pthread_getspecific(srv->tls)) || !ts->snap)
        return;
    ts->snap = NULL;
    if (ts->rd)
        store_rollback(ts->rd);
}

static void snapshot_end(struct api_request *req)
{
    struct thread_stores *ts;

    if (req->srv->pooled || !(ts = pthread_getspecific(req->srv->tls)) || ts->snap != req)
        return;
    snapshot_end_any(req->srv);
}

static void snapshot_begin(struct api_request *req, struct store *st)
{
    struct thread_stores *ts;
    struct err err = ERR_INIT;
    int began = 0;

    if (req->srv->pooled || (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) ||
        mhd.lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Length") ||
        mhd.lookup_connection_value(req->conn, MHD_HEADER_KIND, "Transfer-Encoding"))
        return;
    ts = thread_stores(req->srv);
    if (ts->rd != st)
        return;
    snapshot_end_any(req->srv);
    if (store_read_begin(st, &began, &err) == 0 && began)
        ts->snap = req; /* (on failure each read opens its own, as without) */
}

struct store *api__read_store(struct api_request *req)
{
    return open_store(req, 0);
}

struct store *api__write_store(struct api_request *req)
{
    return open_store(req, 1);
}

/* ------------------------------------------------------------------ replies */

static void set_response(struct api_request *req, int status, struct MHD_Response *resp)
{
    if (req->response)
        mhd.destroy_response(req->response);
    req->response = resp;
    req->status = status;
}

void api__reply_json(struct api_request *req, int status, json_t *body)
{
    /* 9 significant digits: 0.059, not 0.058999999999999997. */
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;

    json_decref(body);
    if (!text) {
        status = 500;
        text = xstrdup("{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode the "
                       "answer\",\"details\":[]}}");
    }
    api__reply_json_text(req, status, text, strlen(text));
}

static uint64_t etag_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/*
 * The 128-bit digest of an answer that its ETag shows. An ETag only has to
 * change when the answer does, so it needs no cryptographic hash: two lanes
 * of multiply-xorshift steps over 8-byte words (each step a bijection of the
 * lane, so answers of one length that differ in one word never collide)
 * cost about a fifth of BLAKE2b, which took an eighth of a list call's CPU
 * time (bench/README.md).
 */
static void etag_digest(const char *text, size_t len, unsigned char out[16])
{
    uint64_t a = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len, b = 0x2545f4914f6cdd1dULL + (uint64_t)len;
    uint64_t w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, text + i, 8);
        a = (a ^ w) * 0x87c37b91114253d5ULL;
        a ^= a >> 31;
        b = (b + w) * 0x4cf5ad432745937fULL;
        b ^= b >> 29;
    }
    w = 0;
    memcpy(&w, text + i, len - i);
    a = etag_mix(a ^ w);
    b = etag_mix(b + w + 1);
    a = etag_mix(a + b);
    b = etag_mix(b ^ a);
    memcpy(out, &a, 8);
    memcpy(out + 8, &b, 8);
}

void api__reply_json_text(struct api_request *req, int status, char *text, size_t len)
{
    struct MHD_Response *resp;
    char plain[2 + 2 * 16 + 1], etag[sizeof(plain) + 3];
    const char *inm;
    int big = len >= API_GZIP_MIN;
    int gz = big && api__accepts_gzip(api__header(req, "Accept-Encoding"));

    /* Conditional GETs of the pages' polls: an unchanged answer costs a 304. */
    etag[0] = plain[0] = '\0';
    if (status == 200 && req->route && api__route_has_etag(req->route)) {
        unsigned char h[16];
        etag_digest(text, len, h);
        plain[0] = '"';
        sodium_bin2hex(plain + 1, sizeof(plain) - 2, h, sizeof(h));
        plain[sizeof(plain) - 2] = '"';
        plain[sizeof(plain) - 1] = '\0';
        api__etag_gz(plain, etag, sizeof(etag));
        inm = api__header(req, "If-None-Match");
        if (inm && (api__etag_matches(inm, plain) || api__etag_matches(inm, etag))) {
            free(text);
            api__reply_empty(req, 304);
            api__reply_header(req, "ETag", gz ? etag : plain);
            if (big)
                api__reply_header(req, "Vary", "Accept-Encoding");
            return;
        }
        if (!gz)
            memcpy(etag, plain, sizeof(plain));
    }

    /* A final newline, for people reading answers in a terminal. */
    text = xrealloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    if (gz) {
        char *z;
        size_t zlen;
        /* Level 1: most of the gain for a fraction of the time of 6. */
        if (api__gzip(text, len, 1, &z, &zlen) == 0) {
            free(text);
            text = z;
            len = zlen;
        } else {
            gz = 0;
            memcpy(etag, plain, sizeof(plain));
        }
    }
    resp = mhd.create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        BUG("cannot create an HTTP response");
    mhd.add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    if (gz)
        mhd.add_response_header(resp, "Content-Encoding", "gzip");
    if (big)
        mhd.add_response_header(resp, "Vary", "Accept-Encoding");
    if (etag[0])
        mhd.add_response_header(resp, "ETag", etag);
    set_response(req, status, resp);
}

void api__reply_text(struct api_request *req, int status, const char *content_type, char *text,
                     size_t len)
{
    struct MHD_Response *resp =
        mhd.create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        BUG("cannot create an HTTP response");
    mhd.add_response_header(resp, "Content-Type", content_type);
    set_response(req, status, resp);
}

void api__reply_static(struct api_request *req, int status, const char *content_type,
                       const char *data, size_t len)
{
    struct MHD_Response *resp =
        mhd.create_response_from_buffer(len, (void *)(uintptr_t)data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        BUG("cannot create an HTTP response");
    mhd.add_response_header(resp, "Content-Type", content_type);
    set_response(req, status, resp);
}

void api__reply_empty(struct api_request *req, int status)
{
    struct MHD_Response *resp = mhd.create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        BUG("cannot create an HTTP response");
    set_response(req, status, resp);
}

void api__reply_error(struct api_request *req, int status, json_t *details, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    api__reply_json(req, status, api__error_json(status, msg, details));
}

void api__reply_err(struct api_request *req, const struct err *err)
{
    int status = api__status_for_err(err->code);
    if (status >= 500)
        log_error("API", "%s %s failed: %s (request_id=%s)", req->method, req->path, err->msg,
                  req->request_id);
    api__reply_json(req, status,
                    api__error_json(status, err->msg[0] ? err->msg : err_str(err->code), NULL));
}

void api__reply_header(struct api_request *req, const char *name, const char *value)
{
    if (req->response)
        mhd.add_response_header(req->response, name, value);
}

/* ------------------------------------------------------------------ connections */

/*
 * Every open connection is on srv->conns, for two limits that libmicrohttpd
 * does not have in the form needed against slow clients:
 *
 * - Connections per client address (an IPv6 /64 counts as one address),
 *   checked when a connection is accepted: over the limit it is closed at
 *   once. MHD's own per-IP limit would also count a trusted proxy, which
 *   carries every client.
 * - A deadline for the request head. MHD's timeout is an idle timer that
 *   every byte resets, so a client sending a header line every few seconds
 *   holds its connection (and, a thousand times over, the server) forever.
 *   A new connection must deliver its request line and headers within
 *   head_timeout_ms. A kept-alive one may wait the idle timeout for its next
 *   request, whose line must arrive within that and whose head must then be
 *   complete within head_timeout_ms. The waker thread ends late connections:
 *   it writes a 408 and shuts the socket down; MHD reads the end of the
 *   stream and closes the connection. The socket stays open until MHD's
 *   NOTIFY_CLOSED, which takes conn_lock: so the waker, scanning under the
 *   lock, never touches a closed (or reused) descriptor.
 *
 * Once the head is in (the handler's first call) there is no deadline: a
 * body or a streamed answer is under the idle timeout only.
 */
static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    struct api_server *srv = cls;
    unsigned char key[API_ADDR_KEY_LEN];
    int n = 0;
    (void)addrlen;

    if (srv->conns_per_address <= 0 || api__cidrs_match(&srv->trusted, addr))
        return MHD_YES;
    api__addr_key(addr, key);
    /* Counted when MHD starts the connection (below), so two accepted at once
     * on two HTTP threads may both pass: the limit holds to within the number
     * of threads. */
    pthread_mutex_lock(&srv->conn_lock);
    for (struct conn *c = srv->conns; c; c = c->next)
        if (!c->exempt && !memcmp(c->key, key, sizeof(key)))
            n++;
    pthread_mutex_unlock(&srv->conn_lock);
    if (n < srv->conns_per_address)
        return MHD_YES;
    if (log_enabled(LOG_DEBUG)) {
        char who[64] = "?";
        if (addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, who,
                      sizeof(who));
        else if (addr->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr, who,
                      sizeof(who));
        log_msg(LOG_DEBUG, "API", "Connection from %s refused: it has %d open (the limit)", who, n);
    }
    return MHD_NO;
}

static void notify_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    struct api_server *srv = cls;
    struct conn *c = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci;

        c = xcalloc(1, sizeof(*c));
        ci = mhd.get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = ci ? (int)ci->connect_fd : -1;
        ci = mhd.get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        api__addr_key(ci ? ci->client_addr : NULL, c->key);
        c->exempt = ci && api__cidrs_match(&srv->trusted, ci->client_addr);
        atomic_init(&c->deadline_ms, clock_mono_ms() + srv->head_timeout_ms);
        pthread_mutex_lock(&srv->conn_lock);
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        pthread_mutex_unlock(&srv->conn_lock);
        *socket_context = c;
        return;
    }
    if (!c)
        return;
    pthread_mutex_lock(&srv->conn_lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&srv->conn_lock);
    free(c);
    *socket_context = NULL;
}

static struct conn *conn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci =
        mhd.get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Set the head deadline of `mc`: `ms` from now, or none (0). */
static void conn_deadline(struct api_server *srv, struct MHD_Connection *mc, int64_t ms, int kept)
{
    struct conn *c = conn_of(mc);

    if (!c)
        return;
    (void)srv;
    atomic_store(&c->deadline_ms, ms ? clock_mono_ms() + ms : 0);
    atomic_store(&c->kept, kept);
}

/* MHD's URI log callback: a request line is in. On a kept-alive connection,
 * its head now has head_timeout_ms; a new connection keeps its deadline. */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct api_server *srv = cls;
    struct conn *c = conn_of(mc);
    (void)uri;

    if (c) {
        int64_t head = clock_mono_ms() + srv->head_timeout_ms;
        int64_t d = atomic_load(&c->deadline_ms);
        if (atomic_load(&c->kept) && (!d || head < d))
            atomic_store(&c->deadline_ms, head);
        atomic_store(&c->kept, 0);
    }
    return NULL; /* *con_cls stays NULL until the handler's first call */
}

/* End the connections whose head is late (the waker thread, every few 100 ms). */
static void reap_late_heads(struct api_server *srv)
{
    char body[256], msg[1024];
    int64_t now = clock_mono_ms();
    int n, blen, reaped = 0;

    blen = snprintf(body, sizeof(body),
                    "{\"error\":{\"code\":\"request_timeout\",\"message\":\"the request "
                    "line and headers did not arrive within %lld ms\",\"details\":[]}}\n",
                    (long long)srv->head_timeout_ms);
    n = snprintf(msg, sizeof(msg),
                 "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                 "Content-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n"
                 "Cache-Control: no-store\r\n\r\n%s",
                 blen, body);
    pthread_mutex_lock(&srv->conn_lock);
    for (struct conn *c = srv->conns; c; c = c->next) {
        int64_t d = atomic_load(&c->deadline_ms);
        if (!d || now < d || c->fd < 0 || !atomic_compare_exchange_strong(&c->deadline_ms, &d, 0))
            continue;
        /* MHD writes nothing while it reads a head: the answer cannot mix
         * with one of its own. Not a word for a connection that never began
         * a request (kept-alive and silent: it just closes). */
        /* (on HTTPS it would be plaintext in TLS) */
        if (!atomic_load(&c->kept) && !srv->tls_key_pem)
            (void)send(c->fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
        shutdown(c->fd, SHUT_RDWR);
        reaped++;
    }
    pthread_mutex_unlock(&srv->conn_lock);
    if (reaped)
        log_info("API", "Closed %d connection%s whose request head was not in within %lld ms",
                 reaped, reaped == 1 ? "" : "s", (long long)srv->head_timeout_ms);
}

/* ------------------------------------------------------------------ streams */

struct stream {
    struct api_server *srv;
    struct MHD_Connection *conn;
    api_stream_fn next;
    void (*free_fn)(void *);
    void *arg;
    struct strbuf out;
    size_t off;
    int ended;
};

/*
 * Suspend `conn` until the waker resumes it. Returns 0 (and does not
 * suspend) when the server is stopping: suspended connections must all be
 * resumed before MHD_stop_daemon, so none may be added after the waker quit.
 */
static int stream_sleep(struct api_server *srv, struct MHD_Connection *conn)
{
    int slept = 0;

    pthread_mutex_lock(&srv->wake_lock);
    if (!srv->waker_quit && !atomic_load(&srv->stopping)) {
        mhd.suspend_connection(conn);
        XGROW(srv->sleeping, srv->sleeping_alloc, srv->nsleeping + 1);
        srv->sleeping[srv->nsleeping++] = conn;
        slept = 1;
    }
    pthread_mutex_unlock(&srv->wake_lock);
    return slept;
}

/*
 * Whether the client of a stream went away. A stream with nothing to send
 * writes nothing, so its connection would never see the peer's close (and a
 * suspended connection has no idle timeout): its socket, store connection
 * and memory would stay until the execution ends. A peek at the socket sees
 * the close (0) or a reset.
 */
static int stream_peer_gone(struct stream *s)
{
    const union MHD_ConnectionInfo *ci =
        mhd.get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char b;
    ssize_t n;

    if (!ci)
        return 0;
    n = recv(ci->connect_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct stream *s = cls;
    (void)pos;

    for (;;) {
        if (s->off < s->out.len) {
            size_t n = s->out.len - s->off;
            if (n > max)
                n = max;
            memcpy(buf, s->out.buf + s->off, n);
            s->off += n;
            if (s->off == s->out.len) {
                strbuf_reset(&s->out);
                s->off = 0;
            }
            return (ssize_t)n;
        }
        if (s->ended || atomic_load(&s->srv->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (stream_peer_gone(s))
            return MHD_CONTENT_READER_END_WITH_ERROR;
        switch (s->next(s->arg, &s->out)) {
        case 0:
            s->ended = 1;
            break;
        case 1:
            break;
        default:
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (s->out.len)
            continue;
        if (s->ended)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (!stream_sleep(s->srv, s->conn))
            return MHD_CONTENT_READER_END_OF_STREAM;
        return 0;
    }
}

static void stream_free(void *cls)
{
    struct stream *s = cls;
    if (s->free_fn)
        s->free_fn(s->arg);
    strbuf_release(&s->out);
    free(s);
}

void api__reply_stream(struct api_request *req, int status, const char *content_type,
                       api_stream_fn next, void (*free_fn)(void *), void *arg)
{
    struct stream *s = xcalloc(1, sizeof(*s));
    struct MHD_Response *resp;

    s->srv = req->srv;
    s->conn = req->conn;
    s->next = next;
    s->free_fn = free_fn;
    s->arg = arg;
    strbuf_init(&s->out, 0);
    resp =
        mhd.create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_read, s, stream_free);
    if (!resp)
        BUG("cannot create an HTTP response");
    mhd.add_response_header(resp, "Content-Type", content_type);
    set_response(req, status, resp);
}

static void *waker_main(void *arg)
{
    struct api_server *srv = arg;

    pthread_mutex_lock(&srv->wake_lock);
    for (;;) {
        struct timespec ts;
        int quit = srv->waker_quit;

        for (size_t i = 0; i < srv->nsleeping; i++)
            mhd.resume_connection(srv->sleeping[i]);
        srv->nsleeping = 0;
        if (quit)
            break;
        reap_late_heads(srv);
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)API_STREAM_POLL_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->wake_cond, &srv->wake_lock, &ts);
    }
    pthread_mutex_unlock(&srv->wake_lock);
    return NULL;
}

/* ------------------------------------------------------------------ requests */

/* Copy `s` for a log line: printable ASCII only, at most `max` bytes. */
static void log_safe(char *out, size_t outlen, const char *s, size_t max)
{
    size_t n = 0;
    for (; *s && n + 1 < outlen && n < max; s++)
        out[n++] = (*s < 0x20 || *s == 0x7f || (unsigned char)*s >= 0x80) ? '?' : *s;
    out[n] = '\0';
}

static enum MHD_Result join_forwarded(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    struct strbuf *sb = cls;
    (void)kind;

    if (strcasecmp(key, "X-Forwarded-For"))
        return MHD_YES;
    if ((sb->len && strbuf_add(sb, ",", 1)) || strbuf_add(sb, value, strlen(value)))
        return MHD_NO; /* over the bound: what we have is enough, or garbage */
    return MHD_YES;
}

/* The client behind a trusted proxy, from X-Forwarded-For (every such header, in order). */
static void forwarded_client(struct api_server *srv, struct MHD_Connection *conn, char *out,
                             size_t outlen)
{
    struct strbuf sb;
    char peer[64];

    if (!srv->trusted.n || !api__cidrs_match_text(&srv->trusted, out))
        return;
    snprintf(peer, sizeof(peer), "%s", out);
    strbuf_init(&sb, 4096);
    mhd.get_connection_values(conn, MHD_HEADER_KIND, join_forwarded, &sb);
    api__client_from_forwarded(&srv->trusted, peer, sb.len ? sb.buf : NULL, out, outlen);
    strbuf_release(&sb);
}

static void client_address(struct MHD_Connection *conn, char *out, size_t outlen)
{
    const union MHD_ConnectionInfo *ci =
        mhd.get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    snprintf(out, outlen, "unknown");
    if (!sa)
        return;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)outlen);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)outlen);
}

static struct api_request *request_new(struct api_server *srv, struct MHD_Connection *conn,
                                       const char *url, const char *method)
{
    struct api_request *req = xcalloc(1, sizeof(*req));
    const char *rid;

    req->srv = srv;
    req->conn = conn;
    req->method = method;
    req->path = xstrdup(url);
    req->start_ns = clock_mono_ns();
    snapshot_end_any(srv);
    strbuf_init(&req->body, srv->max_body);
    rid = mhd.lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (rid && api__valid_request_id(rid))
        snprintf(req->request_id, sizeof(req->request_id), "%s", rid);
    else
        id_new("req_", req->request_id);
    client_address(conn, req->client, sizeof(req->client));
    forwarded_client(srv, conn, req->client, sizeof(req->client));
    conn_deadline(srv, conn, 0, 0); /* the head is in */
    atomic_fetch_add(&srv->in_flight, 1);
    return req;
}

static void request_free(struct api_request *req)
{
    if (!req)
        return;
    atomic_fetch_sub(&req->srv->in_flight, 1);
    snapshot_end(req);
    api__store_done(req);
    if (req->pending && req->pending_free)
        req->pending_free(req->pending);
    if (req->response)
        mhd.destroy_response(req->response);
    json_decref(req->early_body);
    if (req->has_key)
        key_row_release(&req->key);
    strbuf_release(&req->body);
    free(req->path);
    free(req);
}

/* Decide an answer now, to be sent once the body has been read (and discarded). */
static void early(struct api_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void early(struct api_request *req, int status, const char *fmt, ...)
{
    char msg[ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    req->early_status = status;
    json_decref(req->early_body);
    req->early_body = api__error_json(status, msg, NULL);
}

/* A header parameter value must not carry quotes or control characters. */
static void quote_safe(char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || *s < 0x20 || *s == 0x7f)
            *s = '\'';
}

static enum MHD_Result count_auth_headers(void *cls, enum MHD_ValueKind kind, const char *key,
                                          const char *value)
{
    int *n = cls;
    (void)kind;
    (void)value;
    if (!strcasecmp(key, "Authorization"))
        (*n)++;
    return MHD_YES;
}

/*
 * Does the Authorization value `v` end where its line ends? libmicrohttpd
 * 0.9.75 takes a header value up to its first NUL byte (strlen), so
 * "Bearer <valid key>\0junk" reads as the valid key, and it has no way to
 * report it. It parses the head in place, in one buffer that starts at the
 * method and is `header_size` bytes long, turning each line end (CR LF or
 * LF) into NULs. So after the value come one or two NULs and then the next
 * header line, or the NULs of the empty line that ends the head; anything
 * else was in the value after a NUL. A value outside the buffer (a folded
 * header, copied by MHD) cannot be checked, and is refused too.
 */
struct key_ptrs {
    const char *p[64];
    size_t n;
};

static enum MHD_Result collect_keys(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct key_ptrs *k = cls;
    (void)kind;
    (void)value;
    if (k->n < sizeof(k->p) / sizeof(k->p[0]))
        k->p[k->n++] = key;
    return MHD_YES;
}

static int auth_value_whole(struct api_request *req, const char *v)
{
    const union MHD_ConnectionInfo *ci =
        mhd.get_connection_info(req->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    const char *head = req->method, *end, *p;
    struct key_ptrs keys;
    size_t zeros = 0;

    if (!ci || !v)
        return 0;
    end = head + ci->header_size;
    if (v < head || v >= end)
        return 0;
    for (p = v + strlen(v); p < end && *p == '\0'; p++)
        zeros++;
    if (p == end)
        return zeros <= 4; /* its line end, then the empty line's */
    if (zeros > 2)
        return 0;
    keys.n = 0;
    mhd.get_connection_values(req->conn, MHD_HEADER_KIND, collect_keys, &keys);
    for (size_t i = 0; i < keys.n; i++)
        if (keys.p[i] == p)
            return 1;
    return 0;
}

/* lastUsedAt: written at most once a minute per key, never failing the request. */
static void touch_key(struct api_request *req, int64_t now)
{
    struct thread_stores *ts;
    struct err err = ERR_INIT;
    struct store *wr;

    if (req->key.last_used_at && now - req->key.last_used_at < KEY_TOUCH_MS)
        return;
    if (req->srv->pooled) {
        wr = req->pooled;
        if (wr && store_key_touch(wr, req->key.id, now, &err))
            log_warn("API", "Cannot record the use of key %s: %s", req->key.prefix, err.msg);
        return;
    }
    ts = thread_stores(req->srv);
    if (!ts->wr) {
        if (store_open(req->srv->location, 0, &ts->wr, &err)) {
            ts->wr = NULL;
            log_warn("API", "Cannot record the use of key %s: %s", req->key.prefix, err.msg);
            return;
        }
        atomic_fetch_add(&req->srv->stores_open, 1);
    }
    wr = ts->wr;
    if (store_key_touch(wr, req->key.id, now, &err))
        log_warn("API", "Cannot record the use of key %s: %s", req->key.prefix, err.msg);
    snapshot_end(req); /* the handler reads after this write */
}

/*
 * Keys verified in the last KEY_STALE_MS, kept to answer read requests (health
 * above all) while the database is unreachable: stale-if-error only, never in
 * place of a lookup that works, so a revocation takes effect at once.
 */
static int key_cache_get(struct api_server *srv, const char *key, size_t len, int64_t now,
                         struct key_row *out)
{
    unsigned char h[KEY_HASH_LEN];
    struct key_cache_entry *e;
    int ok = 0;

    auth_key_hash(key, len, h);
    e = &srv->kc[h[0] % KEY_CACHE_SLOTS];
    pthread_mutex_lock(&srv->kc_mu);
    if (e->used && sodium_memcmp(e->hash, h, KEY_HASH_LEN) == 0 &&
        now - e->verified_at < KEY_STALE_MS && (!e->row.expires_at || e->row.expires_at > now)) {
        memset(out, 0, sizeof(*out));
        memcpy(out->id, e->row.id, sizeof(out->id));
        memcpy(out->prefix, e->row.prefix, sizeof(out->prefix));
        out->scopes = e->row.scopes;
        out->expires_at = e->row.expires_at;
        out->last_used_at = now; /* no touch: there is no database to write to */
        ok = 1;
    }
    pthread_mutex_unlock(&srv->kc_mu);
    return ok;
}

static void key_cache_put(struct api_server *srv, const char *key, size_t len, int64_t now,
                          const struct key_row *row)
{
    unsigned char h[KEY_HASH_LEN];
    struct key_cache_entry *e;

    auth_key_hash(key, len, h);
    e = &srv->kc[h[0] % KEY_CACHE_SLOTS];
    pthread_mutex_lock(&srv->kc_mu);
    memcpy(e->hash, h, KEY_HASH_LEN);
    memset(&e->row, 0, sizeof(e->row));
    memcpy(e->row.id, row->id, sizeof(e->row.id));
    memcpy(e->row.prefix, row->prefix, sizeof(e->row.prefix));
    e->row.scopes = row->scopes;
    e->row.expires_at = row->expires_at;
    e->verified_at = now;
    e->used = 1;
    pthread_mutex_unlock(&srv->kc_mu);
    sodium_memzero(h, sizeof(h));
}

/*
 * A key that was looked up and refused: 401, or 429 once its (address, key)
 * pair has failed too often. Revoked and expired keys are counted under their
 * prefix, unknown ones together per address. Nothing else counts: a missing
 * header, another scheme (an HTTP task's user:pass) or a malformed key can
 * never succeed, and costs no lookup.
 */
static int refuse_rate_limited(struct api_request *req, enum auth_result result, const char *key,
                               size_t len, int64_t now)
{
    struct api_server *srv = req->srv;
    char prefix[KEY_PREFIX_MAX] = "";
    int64_t wait;

    if (result != AUTH_UNKNOWN && result != AUTH_REVOKED && result != AUTH_EXPIRED)
        return 0;
    if (result != AUTH_UNKNOWN)
        auth_key_prefix(key, len, prefix);
    wait = api__ratelimit_check(srv->rl, req->client, prefix, now);
    api__ratelimit_fail(srv->rl, req->client, prefix, now);
    if (wait <= 0)
        return 0;
    req->retry_after_s = (wait + 999) / 1000;
    req->auth_outcome = "rate_limited";
    early(req, 429, "too many failed authentications from %s with this key: try again in %lld s",
          req->client, (long long)req->retry_after_s);
    return 1;
}

/* Refuse (403) a key without the route's scope; 1 if refused. */
static int scope_refused(struct api_request *req)
{
    char have[32];

    if (auth_scope_allows(req->key.scopes, req->route->scope))
        return 0;
    auth_scopes_format(auth_scope_closure(req->key.scopes), have, sizeof(have));
    req->auth_outcome = "forbidden";
    early(req, 403, "this request needs the '%s' scope; API key %s... has: %s",
          auth_scope_name(req->route->scope), req->key.prefix, have[0] ? have : "none");
    return 1;
}

/* A request with the session cookie and no Authorization header (session.c). */
static void authenticate_session(struct api_request *req, int64_t now)
{
    const char *m = strcmp(req->method, "HEAD") ? req->method : "GET";
    char msg[512], token[API_SESSION_TOKEN_MAX];
    int status;

    (void)api__cookie(req, API_SESSION_COOKIE, token, sizeof(token));
    status = api__session_authenticate(req, token, strcmp(m, "GET") != 0, NULL, NULL, msg,
                                       sizeof(msg));

    if (status == 403) {
        req->auth_outcome = "csrf";
        early(req, 403, "%s", msg);
        json_object_set_new(json_object_get(req->early_body, "error"), "code",
                            json_string("csrf"));
        return;
    }
    if (status) {
        req->auth_outcome = status == 401 ? "session_ended" : NULL;
        early(req, status, "%s", msg);
        if (status == 401) {
            quote_safe(msg);
            snprintf(req->early_auth, sizeof(req->early_auth),
                     "Bearer error=\"invalid_token\", error_description=\"%.200s\"", msg);
        }
        return;
    }
    req->auth_outcome = "session";
    if (!scope_refused(req))
        touch_key(req, now);
}

static void authenticate(struct api_request *req)
{
    struct api_server *srv = req->srv;
    int64_t now = clock_now_ms();
    enum auth_result result;
    const char *hdr, *key = NULL;
    char msg[AUTH_MSG_MAX];
    struct err err = ERR_INIT;
    struct store *st;
    char cookie[API_SESSION_TOKEN_MAX];
    size_t len = 0;
    int nhdr = 0, stale = 0;

    mhd.get_connection_values(req->conn, MHD_HEADER_KIND, count_auth_headers, &nhdr);
    hdr = mhd.lookup_connection_value(req->conn, MHD_HEADER_KIND, "Authorization");
    if (nhdr == 0 && api__cookie(req, API_SESSION_COOKIE, cookie, sizeof(cookie))) {
        authenticate_session(req, now);
        return;
    }
    if (nhdr > 1) {
        result = AUTH_MALFORMED;
        snprintf(msg, sizeof(msg), "malformed request: more than one Authorization header");
    } else if (hdr && !auth_value_whole(req, hdr)) {
        result = AUTH_MALFORMED;
        snprintf(msg, sizeof(msg),
                 "malformed Authorization header: it contains a NUL byte (or is folded over "
                 "lines)");
    } else {
        result = auth_parse_bearer(hdr, &key, &len, msg);
    }
    if (result == AUTH_OK) {
        st = api__read_store(req);
        if (st)
            snapshot_begin(req, st);
        if (!st || auth_verify(st, key, len, now, &req->key, &result, msg, &err)) {
            const char *why = !st ? (req->store_error[0] ? req->store_error
                                                         : "the database is unavailable")
                                  : err.msg;
            if (!key_cache_get(srv, key, len, now, &req->key)) {
                log_error("API", "Cannot check an API key: %s", why);
                early(req, 503, "cannot check the API key: %s", why);
                return;
            }
            /* Known good a moment ago: the database is away, not the key. */
            if (req->route->scope != KEY_SCOPE_READ) {
                key_row_release(&req->key);
                memset(&req->key, 0, sizeof(req->key));
                early(req, 503, "the database is unavailable: %s", why);
                return;
            }
            log_warn("API", "API key %s... accepted from the recent-keys cache: %s",
                     req->key.prefix, why);
            result = AUTH_OK;
            stale = 1;
        } else if (result == AUTH_OK) {
            key_cache_put(srv, key, len, now, &req->key);
        }
    }
    if (result != AUTH_OK) {
        api__authfails_record(srv->authfails, req->client, auth_result_name(result), msg, now);
        if (refuse_rate_limited(req, result, key, len, now))
            return;
        req->auth_outcome = auth_result_name(result);
        early(req, 401, "%s", msg);
        quote_safe(msg);
        snprintf(req->early_auth, sizeof(req->early_auth),
                 "Bearer error=\"invalid_token\", error_description=\"%s\"", msg);
        return;
    }
    req->has_key = 1;
    if (!scope_refused(req) && !stale)
        touch_key(req, now);
}

/*
 * Limits on the head below libmicrohttpd's (API_CONN_MEMORY), so that a
 * request over them gets the JSON error shape: MHD's own 414 and 431 are
 * HTML. `version` points into MHD's request buffer just after the target.
 */
static int head_too_big(struct api_request *req, const char *version)
{
    const union MHD_ConnectionInfo *ci =
        mhd.get_connection_info(req->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    const char *target = req->method + strlen(req->method) + 1;

    /* (MHD refuses a request line without a version before we are called.) */
    if (ci && version > target && version < req->method + ci->header_size &&
        (size_t)(version - target) > API_MAX_URL + 1) {
        early(req, 414, "request target too long: over %d bytes", API_MAX_URL);
        return 1;
    }
    if (ci && ci->header_size > API_MAX_HEAD) {
        early(req, 431, "request headers too large: %zu bytes, the limit is %d", ci->header_size,
              API_MAX_HEAD);
        return 1;
    }
    return 0;
}

/* Find the route of a /v1 request (404, 405) and authenticate it. */
static void route_and_authenticate(struct api_request *req, const char *method)
{
    char allow[64];

    req->route = api__route_match(api__routes, api__nroutes, method, req->path, &req->params, allow,
                                  sizeof(allow));
    if (req->srv->metrics_only && (req->route ? req->route->handler != api__metrics
                                              : strcmp(req->path, "/metrics") != 0)) {
        /* The --metrics-listen port: nothing but /metrics. */
        req->route = NULL;
        allow[0] = '\0';
    }
    if (!req->route) {
        char p[128];
        log_safe(p, sizeof(p), req->path, 100);
        if (allow[0]) {
            snprintf(req->early_allow, sizeof(req->early_allow), "%s", allow);
            early(req, 405, "method %.16s is not allowed on %s (allowed: %s)", req->method, p,
                  allow);
        } else {
            early(req, 404, "no such endpoint: %.16s %s", req->method, p);
        }
    } else if (req->route->handler == api__metrics && req->srv->metrics_auth_none) {
        req->auth_outcome = "none"; /* --metrics-auth none */
    } else if (req->route->scope) {
        authenticate(req);
        if (req->early_status)
            snapshot_end(req);
        api__store_done(req); /* not held while the body comes in */
    }
}

/* The first call: everything that needs only the request line and headers. */
static void prepare(struct api_request *req, const char *version)
{
    const char *cl;
    /* HEAD is GET without the body: MHD leaves the body out. */
    const char *method = strcmp(req->method, "HEAD") ? req->method : "GET";

    if (head_too_big(req, version))
        return;
    if (req->srv->ui && !strcmp(method, "GET") &&
        api__ui_claims(req->path, api__header(req, "Accept"))) {
        req->ui = 1; /* the pages need no key: they sign in through /v1/session */
    } else {
        route_and_authenticate(req, method);
    }
    cl = mhd.lookup_connection_value(req->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        unsigned long long n;
        errno = 0;
        n = strtoull(cl, &end, 10);
        if (errno || *end || n > req->srv->max_body)
            early(req, 413, "request body too large: %.20s bytes, the limit is %zu", cl,
                  req->srv->max_body);
    }
}

static enum MHD_Result queue(struct api_request *req)
{
    enum MHD_Result ret;

    if (!req->response)
        api__reply_error(req, 500, NULL, "the handler gave no answer");
    mhd.add_response_header(req->response, "X-Request-Id", req->request_id);
    mhd.add_response_header(req->response, "Cache-Control",
                            req->cache_control ? req->cache_control : "no-store");
    mhd.add_response_header(req->response, "X-Content-Type-Options", "nosniff");
    if (req->ui) {
        mhd.add_response_header(req->response, "Content-Security-Policy", api__ui_csp);
        mhd.add_response_header(req->response, "Referrer-Policy", "no-referrer");
    }
    api__metrics_auth_refused(req);
    ret = mhd.queue_response(req->conn, (unsigned)req->status, req->response);
    mhd.destroy_response(req->response);
    req->response = NULL;
    req->phase = 2;
    return ret;
}

static void answer_early(struct api_request *req)
{
    char num[32];

    if (req->early_body) {
        api__reply_json(req, req->early_status, req->early_body);
        req->early_body = NULL;
    }
    if (req->early_status == 405)
        api__reply_header(req, "Allow", req->early_allow);
    if (req->early_status == 401)
        api__reply_header(req, "WWW-Authenticate", req->early_auth);
    if (req->early_status == 429) {
        snprintf(num, sizeof(num), "%lld", (long long)req->retry_after_s);
        api__reply_header(req, "Retry-After", num);
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct api_server *srv = cls;
    struct api_request *req = *con_cls;

    if (!req) {
        req = request_new(srv, conn, url, method);
        *con_cls = req;
        prepare(req, version);
        req->phase = 1;
        /* The one answer given on the first call: see the comment at the top. */
        if (req->early_status == 413) {
            answer_early(req);
            return queue(req);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        (void)upload_data;
        if (req->early_status) {
            /* Refused already: discard the body, but not forever. */
            req->discarded += n;
            return req->discarded > 4 * srv->max_body ? MHD_NO : MHD_YES;
        }
        if (strbuf_add(&req->body, upload_data, n)) {
            /* A body over the limit without a Content-Length (chunked): MHD
             * takes no answer while the body comes in, so read the rest
             * into nothing and answer 413 when it ends. */
            req->discarded = req->body.len + n;
            strbuf_release(&req->body);
            early(req, 413, "request body too large: the limit is %zu bytes", srv->max_body);
        }
        return MHD_YES;
    }
    if (req->phase == 2)
        return MHD_YES;
    if (req->phase == 3) {
        if (!atomic_load(&req->resumed))
            return MHD_YES;
        /* Resumed after api__defer: the answer now. */
        void (*finish)(struct api_request *) = req->finish;
        req->finish = NULL;
        req->phase = 1;
        finish(req);
        api__store_done(req);
        return queue(req);
    }
    if (req->early_status) {
        snapshot_end(req);
        answer_early(req);
        return queue(req);
    }
    if (req->ui)
        api__ui_serve(req);
    else
        req->route->handler(req);
    snapshot_end(req);
    api__store_done(req);
    if (req->phase == 3)
        return MHD_YES; /* suspended until api__resume */
    return queue(req);
}

void api__defer(struct api_request *req, void (*finish)(struct api_request *req))
{
    req->finish = finish;
    req->phase = 3;
    mhd.suspend_connection(req->conn);
}

void api__resume(struct api_request *req)
{
    struct MHD_Connection *conn = req->conn; /* req may be gone once resumed */

    atomic_store(&req->resumed, 1);
    mhd.resume_connection(conn);
}

/* Append `s` (at most `max` bytes) at *p, below `end`. */
static char *put(char *p, const char *end, const char *s, size_t max)
{
    size_t n = strnlen(s, max);

    if (n > (size_t)(end - p))
        n = (size_t)(end - p);
    memcpy(p, s, n);
    return p + n;
}

/* Append the decimal digits of `v` (at least `min` of them). */
static char *put_u(char *p, const char *end, uint64_t v, int min)
{
    char d[24];
    int n = 0;

    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < min);
    while (n && p < end)
        *p++ = d[--n];
    return p;
}

/*
 * The access line, "GET /v1/executions 200 0.4ms request_id=req_... key=sk_...",
 * written by hand (printf was a tenth of a list request's CPU time) into
 * one buffer that log_text writes with one write(2).
 */
static void access_line(struct api_request *req, int aborted)
{
    char line[640], path[300];
    char *p = line;
    const char *end = line + sizeof(line);
    uint64_t tenths = ((uint64_t)(clock_mono_ns() - req->start_ns) + 50000) / 100000; /* of a ms */

    log_safe(path, sizeof(path), req->path, 256);
    p = put(p, end, req->method, 16);
    p = put(p, end, " ", 1);
    p = put(p, end, path, sizeof(path));
    p = put(p, end, " ", 1);
    p = put_u(p, end, (uint64_t)(unsigned)req->status, 1);
    p = put(p, end, " ", 1);
    p = put_u(p, end, tenths / 10, 1);
    p = put(p, end, ".", 1);
    p = put_u(p, end, tenths % 10, 1);
    p = put(p, end, "ms request_id=", 14);
    p = put(p, end, req->request_id, sizeof(req->request_id));
    if (req->has_key) {
        p = put(p, end, " key=", 5);
        p = put(p, end, req->key.prefix, sizeof(req->key.prefix));
    }
    if (req->auth_outcome) {
        p = put(p, end, " auth=", 6);
        p = put(p, end, req->auth_outcome, 64);
    }
    if (aborted)
        p = put(p, end, " aborted=1", 10);
    log_text(LOG_INFO, "API", line, (size_t)(p - line));
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_server *srv = cls;
    struct api_request *req = *con_cls;

    /* Kept alive: the next request may take the idle timeout to begin. */
    conn_deadline(srv, conn, srv->idle_timeout_ms, 1);
    if (!req)
        return;
    if (req->status)
        api__metrics_request_done(req, clock_mono_ns() - req->start_ns);
    if (req->status && log_enabled(LOG_INFO))
        access_line(req, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
    request_free(req);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct api_server *srv = cls;
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* A client gone mid-request, or a late head ended above, is no trouble
     * of the server's; under a flood of slow clients it would fill the log. */
    if (strstr(msg, "closed by remote side with incomplete request")) {
        log_msg(LOG_DEBUG, "API", "%s", msg);
        return;
    }
    snprintf(srv->last_mhd_error, sizeof(srv->last_mhd_error), "%s", msg);
    if (!srv->mhd && !srv->first_tls_error[0] && (strstr(msg, "TLS") || strstr(msg, "x509")))
        snprintf(srv->first_tls_error, sizeof(srv->first_tls_error), "%s", msg);
    log_warn("API", "%s", msg);
}

/* ------------------------------------------------------------------ lifecycle */

static void format_url(struct api_server *srv, const struct sockaddr_storage *addr, int port)
{
    char host[INET6_ADDRSTRLEN] = "?";
    const char *scheme = srv->tls_key_pem ? "https" : "http";

    if (addr->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr, host,
                  sizeof(host));
        snprintf(srv->url, sizeof(srv->url), "%s://[%s]:%d", scheme, host, port);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)addr)->sin_addr, host,
                  sizeof(host));
        snprintf(srv->url, sizeof(srv->url), "%s://%s:%d", scheme, host, port);
    }
}

#define TLS_PEM_MAX (1024 * 1024)

/* Read a PEM file whole (NUL-terminated, at most TLS_PEM_MAX) that must hold
 * `marker` ("CERTIFICATE", "PRIVATE KEY"). */
static int read_pem(const char *path, const char *what, const char *marker, char **out,
                    size_t *out_len, struct err *err)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t len;

    *out = NULL;
    if (!f)
        return err_set(err, ERR_INVALID, "cannot read the TLS %s '%s': %s", what, path,
                       strerror(errno));
    buf = xmalloc(TLS_PEM_MAX + 1);
    len = fread(buf, 1, TLS_PEM_MAX + 1, f);
    if (ferror(f) || len > TLS_PEM_MAX) {
        int e = errno;
        fclose(f);
        sodium_memzero(buf, TLS_PEM_MAX + 1);
        free(buf);
        return err_set(err, ERR_INVALID, "cannot read the TLS %s '%s': %s", what, path,
                       len > TLS_PEM_MAX ? "larger than 1 MiB" : strerror(e));
    }
    fclose(f);
    buf[len] = '\0';
    if (!strstr(buf, "-----BEGIN") || !strstr(buf, marker)) {
        sodium_memzero(buf, len);
        free(buf);
        return err_set(err, ERR_INVALID,
                       "the TLS %s '%s' is not a PEM file with a %s ('-----BEGIN ...%s-----')",
                       what, path, marker, marker);
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* Load the certificate and key of `cfg` into `srv` (HTTPS), or nothing. */
static int tls_load(struct api_server *srv, const struct api_config *cfg, struct err *err)
{
    size_t n;
    int rc;

    if (!cfg->tls_cert && !cfg->tls_key)
        return 0;
    if (!cfg->tls_cert || !cfg->tls_key)
        return err_set(err, ERR_INVALID, "HTTPS needs both a certificate and its key");
    if (mhd.is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        return err_set(err, ERR_INVALID,
                       "this libmicrohttpd was built without TLS: HTTPS is not available");
    rc = read_pem(cfg->tls_cert, "certificate", "CERTIFICATE", &srv->tls_cert_pem, &n, err);
    if (rc)
        return rc;
    return read_pem(cfg->tls_key, "key", "PRIVATE KEY", &srv->tls_key_pem, &srv->tls_key_len,
                    err);
}

int api_server_start(const struct api_config *cfg, struct api_server **out, struct err *err)
{
    struct api_server *srv;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    unsigned flags;
    uint16_t port;
    const union MHD_DaemonInfo *info;
    struct MHD_OptionItem tls_opts[4] = {{MHD_OPTION_END, 0, NULL}};
    long ncpu;
    int rc;

    *out = NULL;
    if (!cfg->data_dir || !cfg->engine)
        BUG("api_server_start without a data directory or an engine");
    rc = mhd_load(err);
    if (rc)
        return rc;
    rc = api_parse_listen(cfg->listen ? cfg->listen : API_DEFAULT_LISTEN, &addr, &addrlen, err);
    if (rc)
        return rc;

    srv = xcalloc(1, sizeof(*srv));
    srv->listen = xstrdup(cfg->listen ? cfg->listen : API_DEFAULT_LISTEN);
    srv->data_dir = xstrdup(cfg->data_dir);
    srv->location = xstrdup(cfg->store_location ? cfg->store_location : cfg->data_dir);
    srv->node = cfg->node ? xstrdup(cfg->node) : NULL;
    srv->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : 30000;
    srv->pooled = store_location_is_postgres(srv->location);
    pool_init(&srv->pool, cfg->pool_size, cfg->pool_timeout_ms);
    srv->engine = cfg->engine;
    srv->ui = !cfg->no_ui && !cfg->metrics_only;
    srv->metrics_only = cfg->metrics_only;
    srv->metrics_auth_none = cfg->metrics_auth == API_METRICS_AUTH_NONE;
    srv->metrics_of = cfg->metrics_of;
    srv->sessions = api__sessions_new(API_SESSION_TTL_MS);
    srv->max_body = cfg->max_body ? cfg->max_body : API_DEFAULT_MAX_BODY;
    srv->started_ms = clock_mono_ms();
    srv->quiesced_fd = MHD_INVALID_SOCKET;
    srv->rl = api__ratelimit_new(cfg->auth_fail_limit, cfg->auth_fail_window_ms, 4096);
    srv->redis = cfg->metrics_only ? NULL : api__redis_new(cfg->redis);
    api__ratelimit_set_redis(srv->rl, srv->redis);
    srv->authfails = api__authfails_new();
    srv->conns_per_address = cfg->conns_per_address;
    srv->head_timeout_ms =
        cfg->head_timeout_ms > 0 ? cfg->head_timeout_ms : API_DEFAULT_HEAD_TIMEOUT_MS;
    srv->idle_timeout_ms =
        (int64_t)(cfg->timeout_s > 0 ? cfg->timeout_s : API_DEFAULT_TIMEOUT_S) * 1000;
    pthread_mutex_init(&srv->conn_lock, NULL);
    pthread_mutex_init(&srv->quiesce_lock, NULL);
    pthread_mutex_init(&srv->kc_mu, NULL);
    pthread_mutex_init(&srv->wake_lock, NULL);
    pthread_cond_init(&srv->wake_cond, NULL);
    if (pthread_key_create(&srv->tls, thread_stores_free) != 0)
        BUG("pthread_key_create failed");
    if (cfg->trusted_proxies) {
        struct err e = ERR_INIT;
        if (api__cidrs_parse(cfg->trusted_proxies, &srv->trusted, &e)) {
            rc = err_set(err, ERR_INVALID, "invalid trusted proxies: %s", e.msg);
            goto fail;
        }
    }

    ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    srv->threads = cfg->threads > 0 ? cfg->threads : (ncpu > 0 ? (int)ncpu : 1);

    rc = tls_load(srv, cfg, err);
    if (rc)
        goto fail;

    if (pthread_create(&srv->waker, NULL, waker_main, srv) != 0) {
        rc = err_set(err, ERR_IO, "cannot start a thread: %s", strerror(errno));
        goto fail;
    }
    srv->waker_started = 1;

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (srv->tls_key_pem) {
        flags |= MHD_USE_TLS;
        /* TLS 1.2 and 1.3 only. */
        tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert_pem};
        tls_opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key_pem};
        tls_opts[2] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0,
                                              (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"};
        tls_opts[3] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    }
    /* The logger goes first, or MHD may print some messages its own way. */
    port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&addr)->sin6_port
                                            : ((struct sockaddr_in *)(void *)&addr)->sin_port);
    srv->mhd = mhd.start_daemon(
        flags, port, accept_policy, srv, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)(srv->threads > 1 ? srv->threads : 0), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)(cfg->timeout_s > 0 ? cfg->timeout_s : API_DEFAULT_TIMEOUT_S),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONN_MEMORY, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)API_MAX_CONNECTIONS, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, srv, MHD_OPTION_URI_LOG_CALLBACK,
        uri_logged, srv, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (!srv->mhd) {
        if (srv->tls_key_pem && srv->first_tls_error[0])
            rc = err_set(err, ERR_INVALID,
                         "cannot use the TLS certificate '%s' with the key '%s': %s",
                         cfg->tls_cert, cfg->tls_key, srv->first_tls_error);
        else
            rc = err_set(err, ERR_IO, "cannot listen on '%s': %s", srv->listen,
                         srv->last_mhd_error[0] ? srv->last_mhd_error
                                                : "cannot start the server");
        goto fail;
    }
    info = mhd.get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    format_url(srv, &addr, info && info->port ? info->port : port);
    *out = srv;
    return 0;

fail:
    api_server_free(srv);
    return rc;
}

const char *api_server_url(const struct api_server *srv)
{
    return srv->url;
}

void api_server_quiesce(struct api_server *srv)
{
    if (!srv)
        return;
    pthread_mutex_lock(&srv->quiesce_lock);
    if (!srv->quiesced && srv->mhd) {
        srv->quiesced_fd = mhd.quiesce_daemon(srv->mhd);
        srv->quiesced = 1;
    }
    pthread_mutex_unlock(&srv->quiesce_lock);
}

void api_server_free(struct api_server *srv)
{
    if (!srv)
        return;
    atomic_store(&srv->stopping, 1);
    /* Resume every sleeping stream (it ends, seeing `stopping`): MHD must
     * not be stopped with suspended connections. */
    if (srv->waker_started) {
        pthread_mutex_lock(&srv->wake_lock);
        srv->waker_quit = 1;
        pthread_cond_signal(&srv->wake_cond);
        pthread_mutex_unlock(&srv->wake_lock);
        pthread_join(srv->waker, NULL);
    }
    if (srv->mhd)
        mhd.stop_daemon(srv->mhd);
    if (srv->quiesced_fd != MHD_INVALID_SOCKET)
        close(srv->quiesced_fd);
    pthread_key_delete(srv->tls);
    pthread_cond_destroy(&srv->wake_cond);
    pthread_mutex_destroy(&srv->wake_lock);
    pthread_mutex_destroy(&srv->quiesce_lock);
    pthread_mutex_destroy(&srv->kc_mu);
    pthread_mutex_destroy(&srv->conn_lock);
    api__cidrs_release(&srv->trusted);
    api__ratelimit_free(srv->rl);
    api__redis_free(srv->redis);
    api__authfails_free(srv->authfails);
    api__sessions_free(srv->sessions);
    free(srv->sleeping);
    free(srv->listen);
    free(srv->data_dir);
    free(srv->location);
    free(srv->node);
    free(srv->tls_cert_pem);
    if (srv->tls_key_pem)
        sodium_memzero(srv->tls_key_pem, srv->tls_key_len);
    free(srv->tls_key_pem);
    pool_destroy(&srv->pool);
    free(srv);
}
