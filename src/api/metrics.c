/*
 * metrics.c - GET /metrics: the Prometheus text exposition format 0.0.4, and
 * the HTTP side's counters (requests, their latency, authentication
 * failures).
 *
 * The HTTP counters are the process's (every server of it counts into
 * them: the API and a --metrics-listen port alike). They are updated by the
 * HTTP threads when a request completes, by relaxed atomic adds into fixed
 * tables (base/metrics.h): no lock. Their labels are bounded by
 * construction: the route is the template of the route table (never the
 * path), "ui" for the web pages and "unmatched" for a path no route has;
 * the status is one of a fixed list of codes or "other"; an authentication
 * failure's reason is one of a fixed list. No label ever carries an id or a
 * key.
 *
 * A scrape reads the counters as they are, the engine's (engine_metrics_write,
 * which never waits for the loop's turn), the pool's figures (its mutex,
 * briefly) and /proc/self: its cost does not grow with the executions
 * stored, only with the workflows seen (bench/README.md has the figures).
 */
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "base/metrics.h"
#include "base/xalloc.h"
#include "engine/engine.h"

#include "base/banned.h"

#define MAX_ROUTES        64               /* room in the tables for the route table's entries */
#define ROUTE_UI          MAX_ROUTES       /* the web pages */
#define ROUTE_NONE        (MAX_ROUTES + 1) /* no route (404, 405) */
#define NROUTE_SLOTS      (MAX_ROUTES + 2)
#define METRICS_MAX_BYTES (16u * 1024 * 1024)

static const int codes[] = {200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 408, 409,
                            410, 412, 413, 414, 415, 422, 429, 431, 500, 502, 503, 504};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

static const char *const auth_reasons[] = {
    "missing", "bad_scheme", "malformed",    "unknown",       "revoked",
    "expired", "forbidden",  "rate_limited", "session_ended", "csrf",
};
#define NREASONS (sizeof(auth_reasons) / sizeof(auth_reasons[0]))

static struct {
    struct metrics_counter requests[NROUTE_SLOTS][NCODES + 1]; /* last: other codes */
    struct metrics_hist latency[NROUTE_SLOTS];
    struct metrics_counter auth_failures[NREASONS];
} http_metrics;

static size_t route_slot(const struct api_request *req)
{
    if (req->ui)
        return ROUTE_UI;
    if (!req->route)
        return ROUTE_NONE;
    {
        size_t i = (size_t)(req->route - api__routes);
        return i < api__nroutes && i < MAX_ROUTES ? i : ROUTE_NONE;
    }
}

static size_t code_slot(int status)
{
    for (size_t i = 0; i < NCODES; i++)
        if (codes[i] == status)
            return i;
    return NCODES;
}

void api__metrics_request_done(const struct api_request *req, int64_t ns)
{
    size_t r = route_slot(req);

    metrics_counter_add(&http_metrics.requests[r][code_slot(req->status)], 1);
    metrics_hist_observe_ns(&http_metrics.latency[r], ns);
}

void api__metrics_auth_refused(const struct api_request *req)
{
    if (req->auth_outcome && (req->status == 401 || req->status == 403 || req->status == 429))
        for (size_t i = 0; i < NREASONS; i++)
            if (!strcmp(req->auth_outcome, auth_reasons[i])) {
                metrics_counter_add(&http_metrics.auth_failures[i], 1);
                break;
            }
}

/* The route and method labels of slot `r` into `lb` (reset first). */
static int route_labels(struct strbuf *lb, size_t r)
{
    const char *method = "GET", *route = "ui";
    int rc;

    if (r == ROUTE_NONE) {
        method = "other";
        route = "unmatched";
    } else if (r < MAX_ROUTES) {
        method = api__routes[r].method;
        route = api__routes[r].pattern;
    }
    strbuf_reset(lb);
    rc = metrics_label(lb, 1, "method", method);
    return rc ? rc : metrics_label(lb, 0, "route", route);
}

static uint64_t route_total(size_t r)
{
    uint64_t n = 0;
    for (size_t c = 0; c <= NCODES; c++)
        n += metrics_counter_get(&http_metrics.requests[r][c]);
    return n;
}

static int write_http(struct strbuf *out, struct strbuf *lb)
{
    int rc = metrics_family(out, "orch_http_requests_total", "counter",
                            "HTTP requests answered, by route template, method and status code.");
    char code[16];

    for (size_t r = 0; !rc && r < NROUTE_SLOTS; r++) {
        if (r < MAX_ROUTES && r >= api__nroutes)
            continue;
        for (size_t c = 0; !rc && c <= NCODES; c++) {
            uint64_t n = metrics_counter_get(&http_metrics.requests[r][c]);
            if (!n)
                continue;
            rc = route_labels(lb, r);
            if (c < NCODES)
                snprintf(code, sizeof(code), "%d", codes[c]);
            else
                snprintf(code, sizeof(code), "other");
            if (!rc)
                rc = metrics_label(lb, 0, "code", code);
            if (!rc)
                rc = metrics_sample_u64(out, "orch_http_requests_total", lb->buf, n);
        }
    }
    if (!rc)
        rc = metrics_family(out, "orch_http_request_duration_seconds", "histogram",
                            "Time from a request's head to its answer, by route template.");
    for (size_t r = 0; !rc && r < NROUTE_SLOTS; r++) {
        if ((r < MAX_ROUTES && r >= api__nroutes) || !route_total(r))
            continue;
        rc = route_labels(lb, r);
        if (!rc)
            rc = metrics_hist_write(out, "orch_http_request_duration_seconds", lb->buf,
                                    &http_metrics.latency[r]);
    }
    if (!rc)
        rc = metrics_family(out, "orch_auth_failures_total", "counter",
                            "Requests refused by authentication, by reason.");
    for (size_t i = 0; !rc && i < NREASONS; i++) {
        strbuf_reset(lb);
        rc = metrics_label(lb, 1, "reason", auth_reasons[i]);
        if (!rc)
            rc = metrics_sample_u64(out, "orch_auth_failures_total", lb->buf,
                                    metrics_counter_get(&http_metrics.auth_failures[i]));
    }
    return rc;
}

static int write_pool(struct api_request *req, struct strbuf *out)
{
    struct api_pool_stats ps;
    int rc;

    api__pool_stats(req, &ps);
    rc = metrics_family(out, "orch_db_pool_size", "gauge",
                        "Database connections the HTTP threads may hold (PostgreSQL: the pool's "
                        "size; SQLite: the connections open, one or two per HTTP thread).");
    if (!rc)
        rc = metrics_sample_i64(out, "orch_db_pool_size", NULL, ps.size);
    if (!rc)
        rc = metrics_family(out, "orch_db_pool_in_use", "gauge",
                            "Database connections taken by requests now.");
    if (!rc)
        rc = metrics_sample_i64(out, "orch_db_pool_in_use", NULL, ps.in_use);
    if (!rc)
        rc = metrics_family(out, "orch_db_pool_waiting", "gauge",
                            "Requests waiting for a database connection.");
    if (!rc)
        rc = metrics_sample_i64(out, "orch_db_pool_waiting", NULL, ps.waiting);
    if (!rc)
        rc = metrics_family(out, "orch_db_pool_exhausted_total", "counter",
                            "Requests that waited the whole pool timeout for a connection (503).");
    if (!rc)
        rc = metrics_sample_u64(out, "orch_db_pool_exhausted_total", NULL, ps.exhausted);
    return rc;
}

/* Redis (ORCH_REDIS_URL), only when configured: whether the engine's connection
 * and the API's are up, a PING's time now, and the times each side did without. */
static int write_redis(struct api_request *req, struct strbuf *out)
{
    struct api_redis *r = api__redis(req);
    struct api_redis_stats as;
    struct api_redis_probe p;
    struct engine_stats es;
    int rc;

    if (!r)
        return 0;
    api__redis_stats(r, &as);
    engine_get_stats(api__engine(req), &es);
    api__redis_probe_target(NULL, r, NULL, NULL, &p);
    rc = metrics_family(out, "orch_redis_up", "gauge",
                        "Whether Redis is in use (1) or the node does without it (0), by side: "
                        "the engine's connection, the API's (a PING at the scrape).");
    if (!rc)
        rc = metrics_sample_u64(out, "orch_redis_up", "side=\"engine\"", es.redis_ok ? 1 : 0);
    if (!rc)
        rc = metrics_sample_u64(out, "orch_redis_up", "side=\"api\"", p.reachable ? 1 : 0);
    if (!rc)
        rc = metrics_family(out, "orch_redis_ping_seconds", "gauge",
                            "Time of a PING to Redis at the scrape (absent while unreachable).");
    if (!rc && p.reachable)
        rc = metrics_sample_f(out, "orch_redis_ping_seconds", NULL, p.latency_ms / 1000.0);
    if (!rc)
        rc = metrics_family(out, "orch_redis_fallbacks_total", "counter",
                            "Times the node did without Redis (PostgreSQL paths, its own limits, "
                            "the store's logs), by side.");
    if (!rc)
        rc = metrics_sample_u64(out, "orch_redis_fallbacks_total", "side=\"engine\"",
                                es.redis_fallbacks);
    if (!rc)
        rc = metrics_sample_u64(out, "orch_redis_fallbacks_total", "side=\"api\"",
                                as.fallbacks);
    if (!rc)
        rc = metrics_family(out, "orch_redis_reconnects_total", "counter",
                            "Times the engine came back to Redis after doing without.");
    if (!rc)
        rc = metrics_sample_u64(out, "orch_redis_reconnects_total", NULL, es.redis_reconnects);
    return rc;
}

void api__metrics(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    struct strbuf out, lb = STRBUF_INIT;
    char *text;
    size_t len;
    int rc;

    if (api__query_check(req, no_args))
        return;
    strbuf_init(&out, METRICS_MAX_BYTES);
    rc = metrics_family(&out, "orch_info", "gauge", "The orch version of this process (always 1).");
    if (!rc)
        rc = metrics_label(&lb, 1, "version", ORCH_VERSION);
    if (!rc)
        rc = metrics_sample_u64(&out, "orch_info", lb.buf, 1);
    if (!rc)
        rc = engine_metrics_write(api__engine(req), &out);
    if (!rc)
        rc = write_http(&out, &lb);
    if (!rc)
        rc = write_pool(req, &out);
    if (!rc)
        rc = write_redis(req, &out);
    if (!rc)
        rc = metrics_family(&out, "orch_node_lease_seconds", "gauge",
                            "This node's lease: silent this long, it loses its executions.");
    if (!rc)
        rc = metrics_sample_f(&out, "orch_node_lease_seconds", NULL,
                              (double)api__lease_ms(req) / 1000.0);
    if (!rc)
        rc = metrics_process_write(&out);
    strbuf_release(&lb);
    if (rc) {
        strbuf_release(&out);
        api__reply_error(req, 500, NULL, "the metrics exceed %u bytes", METRICS_MAX_BYTES);
        return;
    }
    text = strbuf_detach(&out, &len);
    api__reply_text(req, 200, METRICS_CONTENT_TYPE, text, len);
}
