/*
 * resource.h - what the process and its machine have left: memory (the
 * tighter of the system and the process's cgroup), free space and inodes of
 * a directory's file system, open file descriptors against RLIMIT_NOFILE.
 *
 * Read from the kernel each call (a few small file reads, a statvfs and a
 * readdir of /proc/self/fd): callers sample every few seconds at most (the
 * engine's resource monitor, GET /v1/health). Nothing is cached and nothing
 * is logged here. Safe from any thread. A figure that cannot be read is -1.
 */
#ifndef ORCH_BASE_RESOURCE_H
#define ORCH_BASE_RESOURCE_H

struct resource_memory {
    double used_pct; /* the higher of the two below; -1 when neither is known */
    double sys_pct;  /* (MemTotal - MemAvailable) / MemTotal, percent; -1 unknown */
    double cg_pct;   /* the cgroup's working set / its limit, percent; -1 without a limit */
    long long used;  /* bytes in use of `total` that used_pct is taken from; -1 unknown */
    long long total; /* MemTotal or the cgroup's limit, bytes; -1 unknown */
    int cgroup;      /* used_pct is the cgroup's (v2 memory.max or v1 limit_in_bytes) */
    long long rss;   /* the process's resident set, bytes; -1 unknown */
};

/*
 * Memory now. The cgroup's use is its working set: memory.current less the
 * inactive file cache (the kernel reclaims it before anything fails), as
 * container runtimes count it; v2 (memory.current / memory.max) or v1
 * (memory.usage_in_bytes / memory.limit_in_bytes), at the path of
 * /proc/self/cgroup or, in a cgroup namespace, at the mount's root.
 */
void resource_memory(struct resource_memory *out);

struct resource_disk {
    int ok;               /* 0: statvfs failed (every figure below -1) */
    long long free_bytes; /* available to an unprivileged writer (f_bavail) */
    long long total_bytes;
    double free_pct;      /* free_bytes / total_bytes, percent */
    double used_pct;      /* 100 - free_pct */
    long long files_free; /* inodes available (f_favail); -1 when the file system has none */
    long long files_total;
    double inodes_used_pct; /* -1 when the file system counts no inodes (f_files 0) */
};

/* The file system of `dir` (borrowed). */
void resource_disk(const char *dir, struct resource_disk *out);

struct resource_fds {
    long long open;  /* descriptors open now; -1 unknown */
    long long limit; /* the soft RLIMIT_NOFILE; -1 when unlimited */
    double used_pct; /* open / limit, percent; -1 unknown */
};

void resource_fds(struct resource_fds *out);

#endif
