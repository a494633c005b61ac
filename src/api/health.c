/*
 * health.c - GET /v1/health (every component with its figures) and
 * GET /v1/health/scheduler, and the probes GET /v1/health/live and
 * GET /v1/health/ready.
 *
 * Overall status: "down" (503) when the engine is not running; "degraded"
 * with 503 when the database is unreachable (from the API's connections or
 * the engine's: the node reconnects with back-off and holds its state
 * changes meanwhile); "degraded" (200) when memory or disk is short or the
 * queue is stuck; otherwise "ok". The scheduler has its own check
 * (GET /v1/health/scheduler, for monitors of scheduled work) and is reported
 * as a component without changing the overall status.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "api_internal.h"
#include "base/clock.h"
#include "base/log.h"
#include "engine/engine.h"
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
#define HEALTH_WARN_EVERY_MS 60000

#ifndef HEALTH_SCHEDULER_STALE_MS
#define HEALTH_SCHEDULER_STALE_MS 60000 /* a scheduler whose last tick is older is down */
#endif

static atomic_llong last_memory_warn;

/* A number from the first line of `path`, or -1 ("max" and errors give -1). */
static long long read_number(const char *path)
{
    FILE *f = fopen(path, "re");
    char line[64];
    long long v = -1;
    char *end;

    if (!f)
        return -1;
    if (fgets(line, sizeof(line), f)) {
        v = strtoll(line, &end, 10);
        if (end == line)
            v = -1;
    }
    fclose(f);
    return v;
}

static long long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long long size = 0, resident = 0;
    long page = sysconf(_SC_PAGESIZE);

    if (!f)
        return -1;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (page > 0 ? page : 4096);
}

/* System memory in use, percent (MemTotal - MemAvailable), or -1. */
static double system_used_pct(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[128];
    long long total = -1, avail = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        long long v;
        if (sscanf(line, "MemTotal: %lld kB", &v) == 1)
            total = v;
        else if (sscanf(line, "MemAvailable: %lld kB", &v) == 1)
            avail = v;
    }
    fclose(f);
    if (total <= 0 || avail < 0)
        return -1;
    return 100.0 * (double)(total - avail) / (double)total;
}

/* Memory of our cgroup (v2) against its limit, percent, or -1 without a limit. */
static double cgroup_used_pct(void)
{
    long long cur = read_number("/sys/fs/cgroup/memory.current");
    long long max = read_number("/sys/fs/cgroup/memory.max");
    if (cur < 0 || max <= 0)
        return -1;
    return 100.0 * (double)cur / (double)max;
}

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
    long long rss;
    double sys_pct, cg_pct;
    int disk_ok;
    long long free_bytes;
    double free_pct;
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
        struct statvfs vfs;
        char *abs = realpath(dir, NULL);

        last_sample.at = now;
        last_sample.rss = rss_bytes();
        last_sample.sys_pct = system_used_pct();
        last_sample.cg_pct = cgroup_used_pct();
        last_sample.disk_ok = statvfs(dir, &vfs) == 0 && vfs.f_blocks > 0;
        if (last_sample.disk_ok) {
            last_sample.free_bytes = (long long)vfs.f_bavail * (long long)vfs.f_frsize;
            last_sample.free_pct = 100.0 * (double)vfs.f_bavail / (double)vfs.f_blocks;
        }
        snprintf(last_sample.dir, sizeof(last_sample.dir), "%s", dir);
        snprintf(last_sample.path, sizeof(last_sample.path), "%s", abs ? abs : dir);
        free(abs);
    }
    *out = last_sample;
    pthread_mutex_unlock(&sample_lock);
}

static json_t *memory_json(const struct sample *sm, enum health *status)
{
    json_t *o = json_object();
    double top = sm->sys_pct > sm->cg_pct ? sm->sys_pct : sm->cg_pct;

    *status = top > HEALTH_MEMORY_DEGRADED_PCT ? HEALTH_DEGRADED : HEALTH_OK;
    if (top > HEALTH_MEMORY_DEGRADED_PCT) {
        long long now = clock_now_ms();
        long long last = atomic_load(&last_memory_warn);
        if (now - last >= HEALTH_WARN_EVERY_MS &&
            atomic_compare_exchange_strong(&last_memory_warn, &last, now))
            log_warn("Health", "High memory usage detected: %.0f%%", top);
    }
    json_object_set_new(o, "status", json_string(health_names[*status]));
    json_object_set_new(o, "rssBytes", sm->rss >= 0 ? json_integer(sm->rss) : json_null());
    json_object_set_new(o, "systemUsedPercent",
                        sm->sys_pct >= 0 ? round1(sm->sys_pct) : json_null());
    json_object_set_new(o, "cgroupUsedPercent", sm->cg_pct >= 0 ? round1(sm->cg_pct) : json_null());
    return o;
}

static json_t *disk_json(const struct sample *sm, const struct engine_stats *es,
                         enum health *status)
{
    json_t *o = json_object();
    /* Full: a commit found no space (the engine holds its writes), or none
     * is left. */
    int full = es->disk_full || (sm->disk_ok && sm->free_bytes == 0);

    if (!sm->disk_ok) {
        *status = HEALTH_DEGRADED;
        json_object_set_new(o, "status", json_string(health_names[*status]));
        json_object_set_new(o, "freeBytes", json_null());
        json_object_set_new(o, "freePercent", json_null());
    } else {
        *status = sm->free_pct < HEALTH_DISK_DEGRADED_PCT ? HEALTH_DEGRADED : HEALTH_OK;
        json_object_set_new(o, "status", json_string(health_names[*status]));
        json_object_set_new(o, "freeBytes", json_integer((json_int_t)sm->free_bytes));
        json_object_set_new(o, "freePercent", round1(sm->free_pct));
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
        json_object_set_new(o, "fullSince", es->disk_full_since
                                                ? view_instant(es->disk_full_since)
                                                : json_null());
    } else {
        json_object_set_new(o, "message", json_null());
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
static long long fds_open = -1, fds_limit = -1;
static atomic_llong last_fds_warn;

static void fds_sample(long long *open_out, long long *limit_out)
{
    int64_t now = clock_mono_ms();

    pthread_mutex_lock(&fds_lock);
    if (!fds_at || now - fds_at >= HEALTH_SAMPLE_MS) {
        DIR *d = opendir("/proc/self/fd");
        struct rlimit rl;

        fds_at = now;
        fds_open = -1;
        if (d) {
            long long n = 0;
            struct dirent *de;
            while ((de = readdir(d)) != NULL)
                if (de->d_name[0] != '.')
                    n++;
            closedir(d);
            fds_open = n > 0 ? n - 1 : 0; /* not the directory's own */
        }
        fds_limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                        ? (long long)rl.rlim_cur
                        : -1;
    }
    *open_out = fds_open;
    *limit_out = fds_limit;
    pthread_mutex_unlock(&fds_lock);
}

static json_t *fds_json(enum health *status)
{
    json_t *o = json_object();
    long long open_n, limit;
    double pct = -1;

    fds_sample(&open_n, &limit);
    if (open_n >= 0 && limit > 0)
        pct = 100.0 * (double)open_n / (double)limit;
    *status = pct > HEALTH_FDS_DEGRADED_PCT ? HEALTH_DEGRADED : HEALTH_OK;
    if (*status != HEALTH_OK) {
        long long now = clock_now_ms();
        long long last = atomic_load(&last_fds_warn);
        if (now - last >= HEALTH_WARN_EVERY_MS &&
            atomic_compare_exchange_strong(&last_fds_warn, &last, now))
            log_warn("Health", "Open file descriptors near the limit: %lld of %lld", open_n, limit);
    }
    json_object_set_new(o, "status", json_string(health_names[*status]));
    json_object_set_new(o, "open", open_n >= 0 ? json_integer(open_n) : json_null());
    json_object_set_new(o, "limit", limit > 0 ? json_integer(limit) : json_null());
    json_object_set_new(o, "usedPercent", pct >= 0 ? round1(pct) : json_null());
    return o;
}

void api__health(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    struct engine_stats es;
    enum health st_db, st_mem, st_disk, st_workers, st_queue, st_sched, overall;
    enum health st_fds;
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

    /* The database away is "degraded", not "down": the node lives on, holds
     * its state changes and reconnects; 503 all the same, so that a load
     * balancer sends requests elsewhere meanwhile. */
    overall = worse(worse(worse(st_db == HEALTH_DOWN ? HEALTH_DEGRADED : st_db, st_workers),
                          worse(st_queue, st_mem)),
                    st_disk);
    overall = worse(overall, st_fds);
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
    *out_system_pct = system_used_pct();
    *out_cgroup_pct = cgroup_used_pct();
}

void api__fds_used(long long *out_open, long long *out_limit)
{
    fds_sample(out_open, out_limit);
}
