/*
 * api.h - the HTTP API server (/v1): libmicrohttpd with a thread pool, JSON
 * everywhere, API-key authentication.
 *
 * Threading: the server's HTTP threads never touch engine state. Reads go
 * straight to the store: on SQLite, on a read connection per HTTP thread
 * (writes that do not involve the engine, such as workflow definitions and
 * keys, on a writer connection per HTTP thread); on PostgreSQL, on a
 * connection taken from a pool of pool_size for the length of the handler,
 * waiting at most pool_timeout_ms for one. Commands (submit, cancel, retry) go through
 * engine_post_*(), which block until the engine has committed them. The
 * engine's loop runs on a thread of the caller's (the main thread of `orch
 * server`).
 *
 * GET /metrics (metrics.c) answers the Prometheus text format 0.0.4: the
 * engine's figures (engine_metrics_write), the process's HTTP requests and
 * authentication failures, the connection pool and process_*. A second
 * server with metrics_only serves it alone on its own address (orch server
 * and orch worker --metrics-listen).
 *
 * Lifecycle: api_server_start() binds and starts serving;
 * api_server_quiesce() stops accepting connections (thread-safe, for a
 * graceful shutdown: open connections are still served);
 * api_server_free() stops everything: open streams end, connections close,
 * the HTTP threads are joined and their store connections closed. Free the
 * server before the engine.
 */
#ifndef ORCH_API_API_H
#define ORCH_API_API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/err.h"

struct engine;
struct api_server;
struct redis_target;

/* Defaults (each overridable through struct api_config). */
#ifndef API_DEFAULT_LISTEN
#define API_DEFAULT_LISTEN "127.0.0.1:8080"
#endif
#ifndef API_DEFAULT_TIMEOUT_S
#define API_DEFAULT_TIMEOUT_S 30 /* an idle connection is closed after this */
#endif
#ifndef API_DEFAULT_MAX_BODY
#define API_DEFAULT_MAX_BODY (4u * 1024 * 1024 + 64 * 1024) /* a definition plus room */
#endif
#ifndef API_DEFAULT_AUTH_FAIL_LIMIT
#define API_DEFAULT_AUTH_FAIL_LIMIT 20 /* failed authentications per client and window */
#endif
#ifndef API_DEFAULT_POOL_SIZE
#define API_DEFAULT_POOL_SIZE 10
#endif
#ifndef API_DEFAULT_POOL_TIMEOUT_MS
#define API_DEFAULT_POOL_TIMEOUT_MS 5000
#endif
#ifndef API_DEFAULT_AUTH_FAIL_WINDOW_MS
#define API_DEFAULT_AUTH_FAIL_WINDOW_MS 60000
#endif
#ifndef API_DEFAULT_CONNS_PER_ADDRESS
#define API_DEFAULT_CONNS_PER_ADDRESS 64 /* open connections per client address (IPv6: /64) */
#endif
#ifndef API_DEFAULT_HEAD_TIMEOUT_MS
#define API_DEFAULT_HEAD_TIMEOUT_MS 10000 /* a request line and headers must arrive in this */
#endif

struct api_config {
    const char *listen;    /* "host:port" or "[v6addr]:port"; borrowed */
    const char *data_dir;  /* the data directory (its disk shows in health); borrowed */
    const char *store_location; /* what the HTTP threads open (a database URL, or NULL:
                                   the data directory); borrowed */
    const char *node;      /* this node's name, for /v1/nodes and health; borrowed */
    int64_t lease_ms;      /* the nodes' lease: older heartbeats show as not alive */
    int pool_size;         /* PostgreSQL: connections shared by the HTTP threads */
    int64_t pool_timeout_ms; /* how long a request waits for one before 503 */
    struct engine *engine; /* borrowed; must outlive the server */
    int threads;           /* HTTP threads; 0 = online CPUs */
    int timeout_s;         /* idle connection timeout */
    size_t max_body;       /* request bodies above this get 413 */
    int auth_fail_limit;   /* failures per client, key and window before 429; 0 = no limit */
    int64_t auth_fail_window_ms;
    int conns_per_address; /* open connections per client address; 0 = no limit */
    int64_t head_timeout_ms; /* from connect (or the start of a request on a kept-alive
                                connection) to the end of its headers */
    const char *trusted_proxies; /* "10.0.0.0/8,::1": peers whose X-Forwarded-For names the
                                    client (NULL: none); borrowed */
    const char *tls_cert;  /* PEM certificate (chain) file: serve HTTPS (with tls_key); NULL:
                              plain HTTP; borrowed */
    const char *tls_key;   /* its PEM private key file; borrowed */
    int no_ui;             /* do not serve the web pages (/ and /assets/): --no-ui */
    int metrics_auth;      /* GET /metrics: API_METRICS_AUTH_KEY (a read key, the default) or
                              API_METRICS_AUTH_NONE */
    int metrics_only;      /* serve GET /metrics and nothing else (a --metrics-listen port) */
    struct api_server *metrics_of; /* metrics_only: the API server of the process, whose
                                      connection pool its metrics show (NULL: none); borrowed */
    const struct redis_target *redis; /* Redis beside the store (shared limits, live logs,
                                         health), or NULL: none; borrowed */
};

enum api_metrics_auth { API_METRICS_AUTH_KEY = 0, API_METRICS_AUTH_NONE = 1 };

/* Fill `cfg` with the defaults above (listen, limits); data_dir and engine NULL. */
void api_config_init(struct api_config *cfg);

/*
 * Bind and start serving. On failure returns ERR_INVALID (bad listen
 * address or trusted proxy list, a TLS certificate or key that cannot be read
 * or used) or ERR_IO (cannot bind) with a message, and *out is NULL.
 */
int api_server_start(const struct api_config *cfg, struct api_server **out, struct err *err);

/* The base URL the server listens on ("http://127.0.0.1:8080", https with
 * TLS), with the real port when port 0 was asked for. */
const char *api_server_url(const struct api_server *srv);

/* Stop accepting new connections; served ones go on. Thread-safe, idempotent. */
void api_server_quiesce(struct api_server *srv);

/* Stop and free the server (NULL is fine). */
void api_server_free(struct api_server *srv);

/*
 * Parse a listen address: "127.0.0.1:8080", "localhost:8080", "[::1]:8080",
 * ":8080" (all IPv4 interfaces) or "8080" (127.0.0.1). Names are resolved
 * through the local resolver (numeric service only). Returns 0 or
 * ERR_INVALID with a message.
 */
int api_parse_listen(const char *s, struct sockaddr_storage *out, socklen_t *out_len,
                     struct err *err);

#endif
