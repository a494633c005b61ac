/*
 * monitor.h - the resource monitor of a node, and its back-pressure.
 *
 * Part of the scheduler component: the engine's loop samples memory (the
 * tighter of the system and the process's cgroup), the free space and inodes
 * of the data directory's file system and the process's open file
 * descriptors every `interval_ms` (base/resource.h), on its own timer: no
 * thread of its own.
 *
 * Warnings: crossing a warning threshold logs one line
 * ("WARN [Scheduler] High memory usage detected: 87%"), and going back
 * MONITOR_HYSTERESIS_PCT points under it logs one more
 * ("INFO [Scheduler] Memory usage back to normal: 78%"): once per crossing,
 * never once per sample.
 *
 * Back-pressure: above a high-water mark (memory use, open fds) or under it
 * (free disk space), the node starts no new task process (command tasks stay
 * queued, their waitingOn says why) and claims no work from other nodes
 * (queued executions, offers, the executions of dead nodes); new executions
 * are still accepted and queue. It ends once every figure is back past its
 * mark by the hysteresis (memory and fds MONITOR_HYSTERESIS_PCT points under,
 * free space a tenth above), and the queued tasks start.
 */
#ifndef ORCH_ENGINE_MONITOR_H
#define ORCH_ENGINE_MONITOR_H

#include <stdint.h>

#include "base/err.h"

struct engine;

#define MONITOR_HYSTERESIS_PCT            5.0 /* a percentage is back to normal this many points under */
#define MONITOR_DEFAULT_INTERVAL_MS       5000
#define MONITOR_DEFAULT_DISK_MIN_FREE     (1LL << 30) /* 1 GiB ... */
#define MONITOR_DEFAULT_DISK_MIN_FREE_PCT 5.0 /* ... or 5% of a file system smaller than 20 GiB */

struct engine_monitor_config {
    int64_t interval_ms;    /* between samples (default 5 s) */
    double memory_warn_pct; /* warn above this share of memory in use (default 85) */
    double memory_high_pct; /* back-pressure above it (default 90; 100: never) */
    double disk_warn_pct;   /* warn above this share of the disk's space or inodes used (90) */
    /* Back-pressure under this much free space: bytes (>= 0; 0: never), or a
     * percentage of the file system's size (disk_min_free -1, pct > 0);
     * both -1: the default, 1 GiB but at most 5% of the file system. */
    long long disk_min_free;
    double disk_min_free_pct;
    double fds_warn_pct; /* warn above this share of RLIMIT_NOFILE open (80) */
    double fds_high_pct; /* back-pressure above it (90; 100: never) */
    const char *dir;     /* the data directory (its file system is sampled); copied */
};

void engine_monitor_config_init(struct engine_monitor_config *cfg);

/*
 * Sample the resources on the engine's loop (server mode). Call before
 * engine_run(); the first sample is taken on its first turn.
 */
void engine_enable_monitor(struct engine *eng, const struct engine_monitor_config *cfg);

/*
 * New thresholds (a settings reload): applied, and a sample taken, on the
 * loop's next turn. Thread-safe; does nothing when the monitor is not enabled.
 */
void engine_monitor_configure(struct engine *eng, const struct engine_monitor_config *cfg);

/* What the monitor found: bits of engine_monitor_state.warn and .pressure. */
enum engine_monitor_bits {
    MONITOR_MEMORY = 1 << 0,
    MONITOR_DISK = 1 << 1,   /* space (warn), free space under the mark (pressure) */
    MONITOR_INODES = 1 << 2, /* warn only */
    MONITOR_FDS = 1 << 3,
};

/* The monitor's last sample and state (for /v1/health, waitingOn, /metrics). */
struct engine_monitor_state {
    int enabled;        /* 0: no monitor (everything else 0) */
    int64_t sampled_at; /* wall-clock ms of the last sample, 0 before the first */
    int64_t interval_ms;
    double memory_used_pct;                          /* -1 unknown */
    long long memory_used_bytes, memory_total_bytes; /* -1 unknown */
    int memory_cgroup;                               /* measured against the cgroup's limit */
    long long disk_free_bytes, disk_total_bytes;     /* -1 unknown */
    double disk_used_pct, inodes_used_pct;           /* -1 unknown */
    long long fds_open, fds_limit;                   /* -1 unknown (limit: unlimited) */
    double fds_used_pct;                             /* -1 unknown */
    /* The thresholds in force (the disk's mark in bytes for its size). */
    double memory_warn_pct, memory_high_pct, disk_warn_pct, fds_warn_pct, fds_high_pct;
    long long disk_min_free_bytes;
    unsigned warn;              /* MONITOR_* above their warning threshold */
    unsigned pressure;          /* MONITOR_* past their high-water mark: 0 = none */
    int64_t pressure_since;     /* wall-clock ms, 0 when none */
    uint64_t pressure_episodes; /* times back-pressure began since the start */
    char reason[400];           /* what holds it, in words ("" when none) */
    char fix[300];              /* what to do about it ("" when none) */
};

/* A consistent copy of the state (thread-safe). */
void engine_monitor_get(struct engine *eng, struct engine_monitor_state *out);

#endif
