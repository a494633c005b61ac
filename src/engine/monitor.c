/*
 * monitor.c - the resource monitor and back-pressure (see monitor.h).
 *
 * The loop calls engine__monitor_turn() every turn; it samples when its time
 * has come (engine__next_deadline() wakes the loop for it), compares the
 * figures with the thresholds and logs each crossing once. The back-pressure
 * it decides is eng->pressure, read by dispatch() (no new process) and by
 * engine__free_slots() (no claim, no offer taken, new executions handed to
 * other nodes). Other threads read the state through engine_monitor_get(),
 * a copy under the monitor's own lock.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/resource.h"
#include "base/xalloc.h"
#include "cluster.h"
#include "engine_internal.h"
#include "monitor.h"
#include "remote.h"

#include "base/banned.h"

struct monitor_state {
    struct engine_monitor_config cfg; /* cfg.dir points at dir */
    char dir[1024];
    int64_t next_at;    /* monotonic ms of the next sample; 0: on the next turn */
    pthread_mutex_t mu; /* guards pub, pending and reconfigure */
    struct engine_monitor_state pub;
    struct engine_monitor_config pending;
    char pending_dir[1024];
    int reconfigure;
    /* Loop thread only. */
    unsigned warn, pressure;
    int64_t pressure_since;
    uint64_t episodes;
};

void engine_monitor_config_init(struct engine_monitor_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->interval_ms = MONITOR_DEFAULT_INTERVAL_MS;
    cfg->memory_warn_pct = 85;
    cfg->memory_high_pct = 90;
    cfg->disk_warn_pct = 90;
    cfg->disk_min_free = -1;
    cfg->disk_min_free_pct = -1;
    cfg->fds_warn_pct = 80;
    cfg->fds_high_pct = 90;
    cfg->dir = ".";
}

static void config_copy(struct engine_monitor_config *dst, char *dir, size_t cap,
                        const struct engine_monitor_config *src)
{
    *dst = *src;
    snprintf(dir, cap, "%s", src->dir && *src->dir ? src->dir : ".");
    dst->dir = dir;
}

void engine_enable_monitor(struct engine *eng, const struct engine_monitor_config *cfg)
{
    struct monitor_state *m = eng->monitor;

    if (!m) {
        m = xcalloc(1, sizeof(*m));
        pthread_mutex_init(&m->mu, NULL);
        eng->monitor = m;
    }
    config_copy(&m->cfg, m->dir, sizeof(m->dir), cfg);
    m->next_at = 0;
    pthread_mutex_lock(&m->mu);
    m->pub.enabled = 1;
    m->pub.interval_ms = cfg->interval_ms;
    pthread_mutex_unlock(&m->mu);
}

void engine_monitor_configure(struct engine *eng, const struct engine_monitor_config *cfg)
{
    struct monitor_state *m = eng->monitor;

    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    config_copy(&m->pending, m->pending_dir, sizeof(m->pending_dir), cfg);
    m->reconfigure = 1;
    pthread_mutex_unlock(&m->mu);
    engine__wake(eng);
}

void engine_monitor_get(struct engine *eng, struct engine_monitor_state *out)
{
    struct monitor_state *m = eng->monitor;

    if (!m) {
        memset(out, 0, sizeof(*out));
        return;
    }
    pthread_mutex_lock(&m->mu);
    *out = m->pub;
    pthread_mutex_unlock(&m->mu);
}

void engine__monitor_free(struct engine *eng)
{
    struct monitor_state *m = eng->monitor;

    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
    eng->monitor = NULL;
}

int64_t engine__monitor_next(const struct engine *eng)
{
    return eng->monitor ? eng->monitor->next_at : INT64_MAX;
}

void engine__monitor_soon(struct engine *eng)
{
    if (eng->monitor)
        eng->monitor->next_at = 0;
}

/* ------------------------------------------------------------------ a sample */

/* "1.5 GiB", "800 MiB", "12 KiB", "512 B" */
static void fmt_bytes(long long n, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int u = 0;

    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, cap, "%lld B", n);
    else if (v < 10)
        snprintf(buf, cap, "%.1f %s", v, units[u]);
    else
        snprintf(buf, cap, "%.0f %s", v, units[u]);
}

/* The free space under which back-pressure begins, for a file system of `total` bytes. */
static long long disk_mark(const struct engine_monitor_config *c, long long total)
{
    if (c->disk_min_free >= 0)
        return c->disk_min_free;
    if (c->disk_min_free_pct > 0)
        return total > 0 ? (long long)((double)total * c->disk_min_free_pct / 100.0) : 0;
    if (total > 0 && (double)total * MONITOR_DEFAULT_DISK_MIN_FREE_PCT / 100.0 <
                         (double)MONITOR_DEFAULT_DISK_MIN_FREE)
        return (long long)((double)total * MONITOR_DEFAULT_DISK_MIN_FREE_PCT / 100.0);
    return MONITOR_DEFAULT_DISK_MIN_FREE;
}

/*
 * Flip bit `bit` of *set with hysteresis: on when `on`, off when `off`
 * (neither: unchanged). Returns +1 when it went on, -1 off, 0 unchanged.
 */
static int flip(unsigned *set, unsigned bit, int on, int off)
{
    if (!(*set & bit) && on) {
        *set |= bit;
        return 1;
    }
    if ((*set & bit) && off) {
        *set &= ~bit;
        return -1;
    }
    return 0;
}

/* Append "; " (unless first) and `text` to the string in buf[cap], cut to fit. */
static void append(char *buf, size_t cap, const char *text)
{
    size_t n = strlen(buf), t = strlen(text);

    if (n && n + 2 < cap) {
        memcpy(buf + n, "; ", 2);
        n += 2;
    }
    if (n + 1 >= cap)
        return;
    if (t > cap - n - 1)
        t = cap - n - 1;
    memcpy(buf + n, text, t);
    buf[n + t] = '\0';
}

/* The words for what holds back-pressure, and what to do (into pub). */
static void pressure_words(const struct monitor_state *m, const struct resource_memory *mem,
                           const struct resource_disk *dk, const struct resource_fds *fd,
                           long long mark, char *reason, size_t rcap, char *fix, size_t fcap)
{
    char line[400], a[32], b[32];

    reason[0] = fix[0] = '\0';
    if (m->pressure & MONITOR_MEMORY) {
        snprintf(line, sizeof(line),
                 "memory usage %.0f%% is above the high-water mark %g%% "
                 "(ORCH_MEMORY_HIGH_WATER)%s",
                 mem->used_pct, m->cfg.memory_high_pct,
                 mem->cgroup ? " of the cgroup's memory limit" : "");
        append(reason, rcap, line);
        append(fix, fcap,
               mem->cgroup ? "free memory on this node or raise its cgroup's memory "
                             "limit (memory.max)"
                           : "free memory on this node (stop what else runs there) or "
                             "add memory");
    }
    if (m->pressure & MONITOR_DISK) {
        fmt_bytes(dk->free_bytes, a, sizeof(a));
        fmt_bytes(mark, b, sizeof(b));
        snprintf(line, sizeof(line),
                 "only %s free on %.200s, under the high-water mark %s (ORCH_DISK_HIGH_WATER)", a,
                 m->cfg.dir, b);
        append(reason, rcap, line);
        append(fix, fcap,
               "free space on the data directory's file system (old logs, "
               "ORCH_RETENTION) or grow it");
    }
    if (m->pressure & MONITOR_FDS) {
        snprintf(line, sizeof(line),
                 "%lld of %lld file descriptors open (%.0f%%), above the high-water mark %g%% "
                 "(ORCH_FDS_HIGH_WATER)",
                 fd->open, fd->limit, fd->used_pct, m->cfg.fds_high_pct);
        append(reason, rcap, line);
        append(fix, fcap,
               "raise the open files limit (LimitNOFILE= of the service, ulimit -n) "
               "or close idle connections and log streams");
    }
}

static void sample(struct engine *eng, struct monitor_state *m)
{
    const struct engine_monitor_config *c = &m->cfg;
    struct resource_memory mem;
    struct resource_disk dk;
    struct resource_fds fd;
    unsigned before = m->pressure;
    long long mark;
    char a[32], b[32];
    int d;

    resource_memory(&mem);
    resource_disk(c->dir, &dk);
    resource_fds(&fd);
    mark = disk_mark(c, dk.total_bytes);

    if (mem.used_pct >= 0) {
        d = flip(&m->warn, MONITOR_MEMORY, mem.used_pct >= c->memory_warn_pct,
                 mem.used_pct < c->memory_warn_pct - MONITOR_HYSTERESIS_PCT);
        if (d > 0)
            log_warn(COMP_SCHED, "High memory usage detected: %.0f%%%s", mem.used_pct,
                     mem.cgroup ? " (of the cgroup's memory limit)" : "");
        else if (d < 0)
            log_info(COMP_SCHED, "Memory usage back to normal: %.0f%%", mem.used_pct);
        d = flip(&m->pressure, MONITOR_MEMORY,
                 c->memory_high_pct < 100 && mem.used_pct >= c->memory_high_pct,
                 mem.used_pct < c->memory_high_pct - MONITOR_HYSTERESIS_PCT ||
                     c->memory_high_pct >= 100);
        if (d > 0)
            log_warn(COMP_SCHED,
                     "Back-pressure on: memory usage %.0f%% is above the high-water "
                     "mark %g%%",
                     mem.used_pct, c->memory_high_pct);
        else if (d < 0)
            log_info(COMP_SCHED, "Back-pressure for memory over: usage %.0f%%", mem.used_pct);
    }
    if (dk.ok) {
        fmt_bytes(dk.free_bytes, a, sizeof(a));
        d = flip(&m->warn, MONITOR_DISK, dk.used_pct >= c->disk_warn_pct,
                 dk.used_pct < c->disk_warn_pct - MONITOR_HYSTERESIS_PCT);
        if (d > 0)
            log_warn(COMP_SCHED, "Low disk space detected: %.0f%% used on %s (%s free)",
                     dk.used_pct, c->dir, a);
        else if (d < 0)
            log_info(COMP_SCHED, "Disk space back to normal: %.0f%% used on %s (%s free)",
                     dk.used_pct, c->dir, a);
        if (dk.inodes_used_pct >= 0) {
            d = flip(&m->warn, MONITOR_INODES, dk.inodes_used_pct >= c->disk_warn_pct,
                     dk.inodes_used_pct < c->disk_warn_pct - MONITOR_HYSTERESIS_PCT);
            if (d > 0)
                log_warn(COMP_SCHED, "Few free inodes detected: %.0f%% used on %s",
                         dk.inodes_used_pct, c->dir);
            else if (d < 0)
                log_info(COMP_SCHED, "Free inodes back to normal: %.0f%% used on %s",
                         dk.inodes_used_pct, c->dir);
        }
        d = flip(&m->pressure, MONITOR_DISK, mark > 0 && dk.free_bytes < mark,
                 mark <= 0 || dk.free_bytes >= mark + mark / 10);
        fmt_bytes(mark, b, sizeof(b));
        if (d > 0)
            log_warn(COMP_SCHED,
                     "Back-pressure on: only %s free on %s, under the high-water "
                     "mark %s",
                     a, c->dir, b);
        else if (d < 0)
            log_info(COMP_SCHED, "Back-pressure for disk space over: %s free on %s", a, c->dir);
    }
    if (fd.used_pct >= 0) {
        d = flip(&m->warn, MONITOR_FDS, fd.used_pct >= c->fds_warn_pct,
                 fd.used_pct < c->fds_warn_pct - MONITOR_HYSTERESIS_PCT);
        if (d > 0)
            log_warn(COMP_SCHED, "Open file descriptors near the limit: %lld of %lld (%.0f%%)",
                     fd.open, fd.limit, fd.used_pct);
        else if (d < 0)
            log_info(COMP_SCHED, "Open file descriptors back to normal: %lld of %lld (%.0f%%)",
                     fd.open, fd.limit, fd.used_pct);
        d = flip(&m->pressure, MONITOR_FDS, c->fds_high_pct < 100 && fd.used_pct >= c->fds_high_pct,
                 fd.used_pct < c->fds_high_pct - MONITOR_HYSTERESIS_PCT || c->fds_high_pct >= 100);
        if (d > 0)
            log_warn(COMP_SCHED,
                     "Back-pressure on: %lld of %lld file descriptors open (%.0f%%), "
                     "above the high-water mark %g%%",
                     fd.open, fd.limit, fd.used_pct, c->fds_high_pct);
        else if (d < 0)
            log_info(COMP_SCHED, "Back-pressure for file descriptors over: %lld of %lld open",
                     fd.open, fd.limit);
    } else if (m->pressure & MONITOR_FDS) {
        m->pressure &= ~(unsigned)MONITOR_FDS; /* the limit was lifted */
    }

    if (!before && m->pressure) {
        m->pressure_since = clock_now_ms();
        m->episodes++;
        log_warn(COMP_SCHED,
                 "Back-pressure: no new task process starts and no work is claimed "
                 "from other nodes until it is over (new executions are accepted and queue)");
    } else if (before && !m->pressure) {
        m->pressure_since = 0;
        log_info(COMP_SCHED, "Back-pressure over: starting the queued tasks again");
        /* What waited meanwhile: dispatch looks at the executions waiting
         * for a slot; queued work and offers of other nodes are claimed. */
        eng->work_now = 1;
        if (eng->cluster) {
            engine__node_want_claim(eng);
            engine__remote_want(eng, REMOTE_WANT_OFFERS);
        }
    }
    eng->pressure = m->pressure;

    pthread_mutex_lock(&m->mu);
    m->pub.sampled_at = clock_now_ms();
    m->pub.interval_ms = c->interval_ms;
    m->pub.memory_used_pct = mem.used_pct;
    m->pub.memory_used_bytes = mem.used;
    m->pub.memory_total_bytes = mem.total;
    m->pub.memory_cgroup = mem.cgroup;
    m->pub.disk_free_bytes = dk.free_bytes;
    m->pub.disk_total_bytes = dk.total_bytes;
    m->pub.disk_used_pct = dk.used_pct;
    m->pub.inodes_used_pct = dk.inodes_used_pct;
    m->pub.fds_open = fd.open;
    m->pub.fds_limit = fd.limit;
    m->pub.fds_used_pct = fd.used_pct;
    m->pub.memory_warn_pct = c->memory_warn_pct;
    m->pub.memory_high_pct = c->memory_high_pct;
    m->pub.disk_warn_pct = c->disk_warn_pct;
    m->pub.fds_warn_pct = c->fds_warn_pct;
    m->pub.fds_high_pct = c->fds_high_pct;
    m->pub.disk_min_free_bytes = mark;
    m->pub.warn = m->warn;
    m->pub.pressure = m->pressure;
    m->pub.pressure_since = m->pressure_since;
    m->pub.pressure_episodes = m->episodes;
    pressure_words(m, &mem, &dk, &fd, mark, m->pub.reason, sizeof(m->pub.reason), m->pub.fix,
                   sizeof(m->pub.fix));
    pthread_mutex_unlock(&m->mu);
}

void engine__monitor_turn(struct engine *eng)
{
    struct monitor_state *m = eng->monitor;
    int64_t now = clock_mono_ms();
    int reconfigured = 0;

    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    if (m->reconfigure) {
        config_copy(&m->cfg, m->dir, sizeof(m->dir), &m->pending);
        m->reconfigure = 0;
        m->next_at = 0;
        reconfigured = 1;
    }
    pthread_mutex_unlock(&m->mu);
    if (reconfigured) {
        const struct engine_monitor_config *c = &m->cfg;
        char disk[48];
        if (c->disk_min_free >= 0)
            fmt_bytes(c->disk_min_free, disk, sizeof(disk));
        else if (c->disk_min_free_pct > 0)
            snprintf(disk, sizeof(disk), "%g%% of the file system", c->disk_min_free_pct);
        else
            snprintf(disk, sizeof(disk), "the default");
        log_info(COMP_SCHED,
                 "Resource monitor thresholds set: memory warning %g%%, high-water "
                 "%g%%; disk warning %g%% used, high-water %s free; file descriptors warning "
                 "%g%%, high-water %g%%",
                 c->memory_warn_pct, c->memory_high_pct, c->disk_warn_pct, disk, c->fds_warn_pct,
                 c->fds_high_pct);
    }
    if (m->next_at && now < m->next_at)
        return;
    sample(eng, m);
    m->next_at = now + m->cfg.interval_ms;
}
