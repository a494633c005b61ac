/*
 * health.c - GET /v1/health (every component with its figures) and
 * GET /v1/health/scheduler, and the probes GET /v1/health/live and
 * GET /v1/health/ready.
 *
 * Overall status: "down" (503) when the engine is not running; "degraded"
 * with 503 when the database is unreachable (from the API's connections or
 * the engine's: the node reconnects with back-off and holds its state
 * changes meanwhile); "degraded" (200) when memory or disk is short, the
 * resource monitor's back-pressure holds new task processes ("pressure",
 * with what holds it and the fix) or the queue is stuck; otherwise "ok". The scheduler has its own check
 * (GET /v1/health/scheduler, for monitors of scheduled work) and is reported
 * as a component without changing the overall status.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_internal.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/resource.h"
#include "engine/engine.h"
#include "engine/monitor.h"
#include "view/view.h"

#include "base/banned.h"

#ifndef HEALTH_MEMORY_DEGRADED_PCT
#define HEALTH_MEMORY_DEGRADED_PCT 85.0 /* system or cgroup memory use above this */
#endif
#ifndef HEALTH_DISK_DEGRADED_PCT
#define HEALTH_DISK_DEGRADED_PCT 5.0 /* free space of the data directory below this */
#endif
#ifndef HEALTH_QUEUE_DEGRADED_MS
#define HEALTH_QUEUE_DEGRADED_MS (5 * 60 * 1000) /* a task queued this long: workers stuck? */
#endif
#ifndef HEALTH_FDS_DEGRADED_PCT
#define HEALTH_FDS_DEGRADED_PCT 80.0 /* open file descriptors above this share of the limit */
#endif

#ifndef HEALTH_SCHEDULER_STALE_MS
#define HEALTH_SCHEDULER_STALE_MS 60000 /* a scheduler whose last tick is older is down */
#endif

static json_t *round1(double v)
{
    return json_real((double)(long long)(v * 10.0 + 0.5) / 10.0);
}

/* Component statuses, in order of severity. */
enum health { HEALTH_OK = 0, HEALTH_DEGRADED, HEALTH_DOWN };

static const char *const health_names[] = {"ok", "degraded", "down"};

static enum health worse(enum health a, enum health b)
{
    return a > b ? a : b;
}

/*
 * The scheduler's figures: {"status", "running", "lastTickAt", "lastFireAt",
 * "lastFireLagMs", "activeSchedules", "nextDue", "fires", "message"}: the
 * message says why it is down (not running, or its last tick is older than a
 * minute), null when it is running.
 */
static json_t *scheduler_json(const struct engine_stats *es, enum health *status)
{
    json_t *o = json_object();
    int64_t now = clock_now_ms();
    int running = es->running && es->sched_running;
    const char *msg = NULL;
    char buf[96];

    if (es->cluster && es->running && !es->sched_leader) {
        /* Another node holds the scheduler lease; this one stands by and
         * takes over if that node stops renewing it. */
        running = 0;
    } else if (!running) {
        msg = "the scheduler is not running";
    } else if (now - es->sched_last_tick_at > HEALTH_SCHEDULER_STALE_MS) {
        snprintf(buf, sizeof(buf), "the scheduler's last tick was %lld s ago",
                 (long long)((now - es->sched_last_tick_at) / 1000));
        msg = buf;
    }
    *status = msg ? HEALTH_DOWN : HEALTH_OK;
    json_object_set_new(o, "status", json_string(health_names[*status]));
    json_object_set_new(o, "running", json_boolean(running));
    json_object_set_new(o, "role", json_string(!es->cluster ? "single"
                                               : es->sched_leader ? "leader" : "standby"));
    json_object_set_new(o, "lastTickAt", view_instant(es->sched_last_tick_at));
    json_object_set_new(o, "lastFireAt", view_instant(es->sched_last_fire_at));
    json_object_set_new(o, "lastFireLagMs",
                        es->sched_last_fire_at ? json_integer(es->sched_last_lag_ms) : json_null());
    json_object_set_new(o, "activeSchedules", json_integer((json_int_t)es->sched_active));
    if (es->sched_next_due_at) {
        json_t *nd = json_object();
        json_object_set_new(nd, "schedule",
                            view_text(es->sched_next_due, strnlen(es->sched_next_due,
                                                                  sizeof(es->sched_next_due))));
        json_object_set_new(nd, "at", view_instant(es->sched_next_due_at));
        json_object_set_new(o, "nextDue", nd);
    } else {
        json_object_set_new(o, "nextDue", json_null());
    }
    json_object_set_new(o, "fires", json_integer((json_int_t)es->sched_fires));
    json_object_set_new(o, "message", msg ? json_string(msg) : json_null());
    return o;
}

static json_t *database_json(struct api_request *req, const struct engine_stats *es,
                             enum health *status)
{
    json_t *o = json_object(), *pool = json_object();
    struct store *rd = api__read_store(req);
    struct err err = ERR_INIT;
    int64_t t0 = clock_mono_ns();
    int ok = rd && store_ping(rd, &err) == 0;
    double ms = (double)(clock_mono_ns() - t0) / 1e6;
    struct api_pool_stats ps;

    /* api__read_store replied 503 if it failed; this answer replaces it. */
    api__pool_stats(req, &ps);
    /* The engine's own connection counts too: while it reconnects, state
     * changes wait in memory. */
    if (!es->db_ok)
        ok = 0;
    *status = ok ? HEALTH_OK : HEALTH_DOWN;
    json_object_set_new(o, "status", json_string(health_names[*status]));
    json_object_set_new(o, "backend",
                        json_string(store_location_is_postgres(api__store_location(req))
                                        ? "postgres"
                                        : "sqlite"));
    json_object_set_new(o, "reachable", json_boolean(ok));
    json_object_set_new(o, "latencyMs",
                        ok ? json_real((double)(long long)(ms * 1000.0 + 0.5) / 1000.0)
                           : json_null());
    json_object_set_new(o, "reconnecting", json_boolean(!es->db_ok));
    json_object_set_new(o, "downSince",
                        es->db_down_since ? view_instant(es->db_down_since) : json_null());
    json_object_set_new(o, "lastError",
                        !ok ? json_string(es->db_ok ? err.msg : es->db_error) : json_null());
    json_object_set_new(pool, "kind", json_string(ps.kind));
    json_object_set_new(pool, "inUse", json_integer(ps.in_use));
    json_object_set_new(pool, "size", json_integer(ps.size));
    json_object_set_new(pool, "open", json_integer(ps.open));
    json_object_set_new(pool, "waiting", json_integer(ps.waiting));
    json_object_set_new(pool, "exhausted", json_integer((json_int_t)ps.exhausted));
    json_object_set_new(pool, "timeoutMs", json_integer(ps.timeout_ms));
    json_object_set_new(o, "pool", pool);
    if (!ok && rd)
        log_warn("Health", "Database check failed: %s", es->db_ok ? err.msg : es->db_error);
    return o;
}

static json_t *node_json(struct api_request *req, const struct engine_stats *es)
{
    json_t *o = json_object();
    const char *id = api__node(req);

    json_object_set_new(o, "id", id ? json_string(id) : json_null());
    json_object_set_new(o, "lastHeartbeatAt", es->last_heartbeat_at
                                                  ? view_instant(es->last_heartbeat_at)
                                                  : json_null());
    json_object_set_new(o, "leaseMs", json_integer(api__lease_ms(req)));
    json_object_set_new(o, "schedulerLeader", json_boolean(es->sched_leader));
    json_object_set_new(o, "executionsClaimed", json_integer((json_int_t)es->executions_claimed));
    json_object_set_new(o, "executionsLost", json_integer((json_int_t)es->executions_lost));
    return o;
}

/*
 * Memory and disk figures cost a dozen file opens; health checks may come
 * often (load balancers, benchmarks), so a sample serves for up to
 * HEALTH_SAMPLE_MS.
 */
#ifndef HEALTH_SAMPLE_MS
#define HEALTH_SAMPLE_MS 1000
#endif

struct sample {
    int64_t at; /* monotonic ms, 0 = never */
    struct resource_memory mem;
    struct resource_disk disk;
    char dir[1024];  /* the data directory it was taken for */
    char path[1024]; /* its absolute path */
};

static pthread_mutex_t sample_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sample last_sample;

static void take_sample(const char *dir, struct sample *out)
{
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&sample_lock);
    if (!last_sample.at || now - last_sample.at >= HEALTH_SAMPLE_MS ||
        strcmp(last_sample.dir, dir) != 0) {
        char *abs = realpath(dir, NULL);

        last_sample.at = now;
        resource_memory(&last_sample.mem);
        resource_disk(dir, &last_sample.disk);
        snprintf(last_sample.dir, sizeof(last_sample.dir), "%s", dir);
        snprintf(last_sample.path, sizeof(last_sample.path), "%s", abs ? abs : dir);
        free(abs);
    }
    *out = last_sample;
    pthread_mutex_unlock(&sample_lock);
}

/* The resource monitor logs the crossings of its thresholds (engine's
 * monitor.c); health only reports the figures. */
static json_t *memory_json(const struct sample *sm, enum health *status)
{
    json_t *o = json_object();
    const struct resource_memory *m = &sm->mem;

    *status = m->used_pct > HEALTH_MEMORY_DEGRADED_PCT ? HEALTH_DEGRADED : HEALTH_OK;
    json_object_set_new(o, "status", json_string(health_names[*status]));
    json_object_set_new(o, "rssBytes", m->rss >= 0 ? json_integer(m->rss) : json_null());
    json_object_set_new(o, "systemUsedPercent",
                        m->sys_pct >= 0 ? round1(m->sys_pct) : json_null());
    json_object_set_new(o, "cgroupUsedPercent", m->cg_pct >= 0 ? round1(m->cg_pct) : json_null());
    return o;
}

static json_t *disk_json(const struct sample *sm, const struct engine_stats *es,
                         enum health *status)
{
    json_t *o = json_object();
    /* Full: a commit found no space (the engine holds its writes), or none
     * is left. */
    const struct resource_disk *dk = &sm->disk;
    int full = es->disk_full || (dk->ok && dk->free_bytes == 0);

    if (!dk->ok) {
        *status = HEALTH_DEGRADED;
        json_object_set_new(o, "status", json_string(health_names[*status]));
        json_object_set_new(o, "freeBytes", json_null());
        json_object_set_new(o, "freePercent", json_null());
    } else {
        *status = dk->free_pct < HEALTH_DISK_DEGRADED_PCT ? HEALTH_DEGRADED : HEALTH_OK;
        json_object_set_new(o, "status", json_string(health_names[*status]));
        json_object_set_new(o, "freeBytes", json_integer((json_int_t)dk->free_bytes));
        json_object_set_new(o, "freePercent", round1(dk->free_pct));
    }
    if (full)
        *status = HEALTH_DEGRADED;
    json_object_set_new(o, "path", json_string(sm->path));
    json_object_set_new(o, "full", json_boolean(full));
    if (full) {
        char msg[1400];
        snprintf(msg, sizeof(msg), "disk full: %s: no space left%s%s", sm->path,
                 es->disk_full ? "; the engine is paused and retries its commits: " : "",
                 es->disk_full ? es->disk_error : "");
        json_object_set_new(o, "status", json_string(health_names[*status]));
        json_object_set_new(o, "message", json_string(msg));
        snprintf(msg, sizeof(msg),
                 "free space on the file system of %s (old files, logs, ORCH_RETENTION): the "
                 "engine commits what it holds and continues by itself",
                 sm->path);
        json_object_set_new(o, "fix", json_string(msg));
        json_object_set_new(o, "fullSince", es->disk_full_since
                                                ? view_instant(es->disk_full_since)
                                                : json_null());
    } else {
        json_object_set_new(o, "message", json_null());
        json_object_set_new(o, "fix", json_null());
        json_object_set_new(o, "fullSince", json_null());
    }
    return o;
}

/*
 * Open file descriptors against the soft limit (RLIMIT_NOFILE): connections,
 * log streams, store connections and running tasks all hold some, and at the
 * limit nothing new can be opened (no execution, no connection). Counted in
 * /proc/self/fd, at most once per HEALTH_SAMPLE_MS.
 */
static pthread_mutex_t fds_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t fds_at;
static struct resource_fds fds_last = {-1, -1, -1};

static json_t *fds_json(enum health *status)
{
    json_t *o = json_object();
    struct resource_fds f;
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&fds_lock);
    if (!fds_at || now - fds_at >= HEALTH_SAMPLE_MS) {
        fds_at = now;
        resource_fds(&fds_last);
    }
    f = fds_last;
    pthread_mutex_unlock(&fds_lock);
    *status = f.used_pct > HEALTH_FDS_DEGRADED_PCT ? HEALTH_DEGRADED : HEALTH_OK;
    json_object_set_new(o, "status", json_string(health_names[*status]));
    json_object_set_new(o, "open", f.open >= 0 ? json_integer(f.open) : json_null());
    json_object_set_new(o, "limit", f.limit > 0 ? json_integer(f.limit) : json_null());
    json_object_set_new(o, "usedPercent", f.used_pct >= 0 ? round1(f.used_pct) : json_null());
    return o;
}

/*
 * Back-pressure of the resource monitor (engine/monitor.h): "degraded" while
 * it holds new task processes and claims, with what holds it and the fix.
 */
static json_t *pressure_json(struct api_request *req, enum health *status)
{
    static const struct {
        unsigned bit;
        const char *name;
    } kinds[] = {{MONITOR_MEMORY, "memory"}, {MONITOR_DISK, "disk"}, {MONITOR_FDS, "fds"}};
    struct engine_monitor_state ms;
    json_t *o = json_object(), *why = json_array();

    engine_monitor_get(api__engine(req), &ms);
    *status = ms.pressure ? HEALTH_DEGRADED : HEALTH_OK;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (ms.pressure & kinds[i].bit)
            json_array_append_new(why, json_string(kinds[i].name));
    json_object_set_new(o, "status", json_string(health_names[*status]));
    json_object_set_new(o, "active", json_boolean(ms.pressure != 0));
    json_object_set_new(o, "reasons", why);
    json_object_set_new(o, "since", ms.pressure ? view_instant(ms.pressure_since) : json_null());
    json_object_set_new(o, "message",
                        ms.pressure ? view_text(ms.reason, strlen(ms.reason)) : json_null());
    json_object_set_new(o, "fix", ms.pressure ? view_text(ms.fix, strlen(ms.fix)) : json_null());
    json_object_set_new(o, "sampledAt",
                        ms.sampled_at ? view_instant(ms.sampled_at) : json_null());
    return o;
}

#define DEFAULT_DISPATCH_STREAM "orch:dispatch"
#define DEFAULT_DISPATCH_GROUP  "orch-nodes"

/*
 * Redis (ORCH_REDIS_URL): {"status", "configured", "url", "reachable",
 * "latencyMs", "version", "usedMemoryBytes", "opsPerSec", "engine":
 * {"connected", "degradedSince", "fallbacks", "reconnects", "lastError"},
 * "api": {"fallbacks", "lastError"}, "dispatch": {"stream", "group", "length",
 * "pending"}, "message"}. Without a URL: status ok, configured false, the rest
 * null, false or 0.
 * `degraded` when this node cannot reach it (the API's look now, or the
 * engine's connection): the node goes on on PostgreSQL alone, so 200.
 */
static json_t *redis_json(struct api_request *req, const struct engine_stats *es,
                          enum health *status)
{
    struct api_redis *r = api__redis(req);
    struct api_redis_probe p;
    struct api_redis_stats as;
    const char *stream, *group;
    json_t *o = json_object(), *e, *a, *d;

    *status = HEALTH_OK;
    stream = es->redis_dispatch_stream[0] ? es->redis_dispatch_stream : DEFAULT_DISPATCH_STREAM;
    group = es->redis_dispatch_group[0] ? es->redis_dispatch_group : DEFAULT_DISPATCH_GROUP;
    if (r) {
        api__redis_probe_target(NULL, r, stream, group, &p);
    } else {
        /* Not configured: every member, empty. */
        memset(&p, 0, sizeof(p));
        p.used_memory = p.ops_per_sec = p.stream_len = p.pending = -1;
    }
    api__redis_stats(r, &as);
    if (r && (!p.reachable || (es->redis_configured && !es->redis_ok)))
        *status = HEALTH_DEGRADED;
    json_object_set_new(o, "status", json_string(health_names[*status]));
    json_object_set_new(o, "configured", json_boolean(r != NULL));
    json_object_set_new(o, "url", r ? json_string(api__redis_shown(r)) : json_null());
    json_object_set_new(o, "reachable", json_boolean(p.reachable));
    json_object_set_new(o, "latencyMs", p.reachable ? round1(p.latency_ms) : json_null());
    json_object_set_new(o, "version", p.version[0] ? json_string(p.version) : json_null());
    json_object_set_new(o, "usedMemoryBytes",
                        p.used_memory >= 0 ? json_integer(p.used_memory) : json_null());
    json_object_set_new(o, "opsPerSec",
                        p.ops_per_sec >= 0 ? json_integer(p.ops_per_sec) : json_null());
    e = json_object();
    json_object_set_new(e, "connected", json_boolean(es->redis_ok));
    json_object_set_new(e, "degradedSince", es->redis_degraded_since
                                                ? view_instant(es->redis_degraded_since)
                                                : json_null());
    json_object_set_new(e, "fallbacks", json_integer((json_int_t)es->redis_fallbacks));
    json_object_set_new(e, "reconnects", json_integer((json_int_t)es->redis_reconnects));
    json_object_set_new(e, "lastError", es->redis_error[0]
                                            ? view_text(es->redis_error, strlen(es->redis_error))
                                            : json_null());
    json_object_set_new(o, "engine", e);
    a = json_object();
    json_object_set_new(a, "fallbacks", json_integer((json_int_t)as.fallbacks));
    json_object_set_new(a, "lastError", as.last_error[0]
                                            ? view_text(as.last_error, strlen(as.last_error))
                                            : json_null());
    json_object_set_new(o, "api", a);
    d = json_object();
    json_object_set_new(d, "stream", r ? json_string(stream) : json_null());
    json_object_set_new(d, "group", r ? json_string(group) : json_null());
    json_object_set_new(d, "length", p.stream_len >= 0 ? json_integer(p.stream_len) : json_null());
    json_object_set_new(d, "pending", p.pending >= 0 ? json_integer(p.pending) : json_null());
    json_object_set_new(o, "dispatch", d);
    json_object_set_new(o, "message", p.reachable || !r ? json_null()
                                                        : view_text(p.error, strlen(p.error)));
    return o;
}

void api__health(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    struct engine_stats es;
    enum health st_db, st_mem, st_disk, st_workers, st_queue, st_sched, overall;
    enum health st_fds, st_pressure, st_redis;
    struct sample sm;
    json_t *o, *c, *w, *q, *e;

    if (api__query_check(req, no_args))
        return;
    engine_get_stats(api__engine(req), &es);
    c = json_object();
    json_object_set_new(c, "database", database_json(req, &es, &st_db));
    json_object_set_new(c, "node", node_json(req, &es));
    json_object_set_new(c, "scheduler", scheduler_json(&es, &st_sched));

    st_workers = es.running ? HEALTH_OK : HEALTH_DOWN;
    w = json_object();
    json_object_set_new(w, "status", json_string(health_names[st_workers]));
    json_object_set_new(w, "busy", json_integer(es.workers_busy));
    json_object_set_new(w, "total", json_integer(es.workers_total));
    json_object_set_new(c, "workers", w);

    st_queue = es.oldest_queued_ms > HEALTH_QUEUE_DEGRADED_MS ? HEALTH_DEGRADED : HEALTH_OK;
    q = json_object();
    json_object_set_new(q, "status", json_string(health_names[st_queue]));
    json_object_set_new(q, "depth", json_integer((json_int_t)es.tasks_queued));
    json_object_set_new(q, "oldestQueuedAgeMs", json_integer(es.oldest_queued_ms));
    json_object_set_new(c, "queue", q);

    e = json_object();
    json_object_set_new(e, "running", json_integer((json_int_t)es.executions_active));
    json_object_set_new(e, "longestRunningMs", json_integer(es.longest_running_ms));
    json_object_set_new(c, "executions", e);

    {
        /* On PostgreSQL there may be no data directory: then the disk the
         * tasks run on (the working directory). */
        const char *dir = api__data_dir(req);
        struct stat sb;
        if (stat(dir, &sb) != 0)
            dir = ".";
        take_sample(dir, &sm);
    }
    json_object_set_new(c, "memory", memory_json(&sm, &st_mem));
    json_object_set_new(c, "disk", disk_json(&sm, &es, &st_disk));
    json_object_set_new(c, "fds", fds_json(&st_fds));
    json_object_set_new(c, "pressure", pressure_json(req, &st_pressure));
    json_object_set_new(c, "redis", redis_json(req, &es, &st_redis));

    /* The database away is "degraded", not "down": the node lives on, holds
     * its state changes and reconnects; 503 all the same, so that a load
     * balancer sends requests elsewhere meanwhile. */
    overall = worse(worse(worse(st_db == HEALTH_DOWN ? HEALTH_DEGRADED : st_db, st_workers),
                          worse(st_queue, st_mem)),
                    st_disk);
    overall = worse(worse(overall, st_fds), st_pressure);
    overall = worse(overall, st_redis); /* at worst degraded: PostgreSQL stands in */
    o = json_object();
    json_object_set_new(o, "status", json_string(health_names[overall]));
    json_object_set_new(o, "version", json_string(ORCH_VERSION));
    json_object_set_new(o, "uptimeSeconds", json_integer(api__uptime_ms(req) / 1000));
    json_object_set_new(o, "components", c);
    api__reply_json(req, overall == HEALTH_DOWN || st_db == HEALTH_DOWN ? 503 : 200, o);
}

void api__health_scheduler(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    struct engine_stats es;
    enum health st;
    json_t *o;

    if (api__query_check(req, no_args))
        return;
    engine_get_stats(api__engine(req), &es);
    o = scheduler_json(&es, &st);
    /* Public: state and times only, no schedule or workflow names. */
    json_object_del(json_object_get(o, "nextDue"), "schedule");
    api__reply_json(req, st == HEALTH_OK ? 200 : 503, o);
}

/*
 * Probes for load balancers and Kubernetes, without a key and without
 * details: {"status": ...} only.
 *
 * live: the process serves HTTP (200 as long as it can answer at all).
 * ready: the engine runs and the store answers (the API's connection and the
 * engine's), and the server is not shutting down; else 503 "unavailable".
 */
void api__health_live(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    json_t *o;

    if (api__query_check(req, no_args))
        return;
    o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    api__reply_json(req, 200, o);
}

void api__health_ready(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    struct engine_stats es;
    struct err err = ERR_INIT;
    struct store *rd;
    int ready;
    json_t *o;

    if (api__query_check(req, no_args))
        return;
    engine_get_stats(api__engine(req), &es);
    ready = es.running && es.db_ok && !api__stopping(req);
    if (ready) {
        rd = api__read_store(req); /* (replies 503 on failure; replaced below) */
        ready = rd && store_ping(rd, &err) == 0;
        if (!ready)
            log_warn("Health", "Readiness check: the database is unreachable%s%s",
                     rd ? ": " : "", rd ? err.msg : "");
    }
    o = json_object();
    json_object_set_new(o, "status", json_string(ready ? "ok" : "unavailable"));
    api__reply_json(req, ready ? 200 : 503, o);
}

/* For orch doctor (doctor.c): the same figures, without the sample's cache. */
void api__memory_used(double *out_system_pct, double *out_cgroup_pct)
{
    struct resource_memory m;
    resource_memory(&m);
    *out_system_pct = m.sys_pct;
    *out_cgroup_pct = m.cg_pct;
}

void api__fds_used(long long *out_open, long long *out_limit)
{
    struct resource_fds f;
    resource_fds(&f);
    *out_open = f.open;
    *out_limit = f.limit;
}
