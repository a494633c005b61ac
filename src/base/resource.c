/*
 * resource.c - memory, disk and file descriptor figures from the kernel
 * (see resource.h). Shared by the engine's resource monitor and the API's
 * health, so that both say the same.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "resource.h"

#include "banned.h"

#define CGROUP_ROOT "/sys/fs/cgroup"
/* A cgroup v1 limit at least this large is "no limit" (the kernel writes
 * PAGE_COUNTER_MAX pages, about 2^63 bytes). */
#define CGROUP_V1_UNLIMITED (1LL << 60)

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

/* The value of `key` in a "key value" file (memory.stat), or -1. */
static long long read_keyed(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    char line[160];
    size_t kl = strlen(key);
    long long v = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            v = strtoll(line + kl + 1, NULL, 10);
            break;
        }
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

/* System memory: *total and *avail in bytes (-1 unknown). */
static void system_memory(long long *total, long long *avail)
{
    FILE *f = fopen("/proc/meminfo", "re");
    char line[128];

    *total = *avail = -1;
    if (!f)
        return;
    while (fgets(line, sizeof(line), f)) {
        long long v;
        if (sscanf(line, "MemTotal: %lld kB", &v) == 1)
            *total = v * 1024;
        else if (sscanf(line, "MemAvailable: %lld kB", &v) == 1)
            *avail = v * 1024;
    }
    fclose(f);
}

/*
 * The directory of our cgroup for `controller` ("" for v2's unified line
 * "0::/path", "memory" for v1's "N:...memory...:/path") under `mount`, into
 * dir: the path /proc/self/cgroup names when it exists there, else the
 * mount's root (a cgroup namespace shows our own group as its root).
 * 0, or -1 when /proc/self/cgroup has no such line.
 */
static int cgroup_dir(const char *controller, const char *mount, const char *probe, char *dir,
                      size_t cap)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[1024], path[1200];
    int found = -1;

    if (!f)
        return -1;
    while (found < 0 && fgets(line, sizeof(line), f)) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        size_t n;
        if (!c2)
            continue;
        *c2 = '\0';
        if (*controller) {
            /* "4:memory:/x" or "4:cpu,memory:/x" */
            const char *list = c1 + 1, *p = list;
            size_t cl = strlen(controller);
            int has = 0;
            while (*p) {
                size_t len = strcspn(p, ",");
                if (len == cl && !strncmp(p, controller, cl))
                    has = 1;
                p += len + (p[len] == ',');
            }
            if (!has)
                continue;
        } else if (strcmp(line, "0") || c1[1] != '\0') {
            continue;
        }
        n = strcspn(c2 + 1, "\n");
        c2[1 + n] = '\0';
        snprintf(path, sizeof(path), "%s%s/%s", mount, c2 + 1, probe);
        if (access(path, R_OK) == 0)
            snprintf(dir, cap, "%s%s", mount, c2 + 1);
        else
            snprintf(dir, cap, "%s", mount);
        found = 0;
    }
    fclose(f);
    return found;
}

/* Our cgroup's working set against its limit, percent, or -1 without a limit. */
static double cgroup_memory(long long *used_out, long long *limit_out)
{
    char dir[1100], path[1200];
    long long cur, max, inactive;

    *used_out = *limit_out = -1;
    if (cgroup_dir("", CGROUP_ROOT, "memory.current", dir, sizeof(dir)) == 0) {
        snprintf(path, sizeof(path), "%s/memory.current", dir);
        cur = read_number(path);
        snprintf(path, sizeof(path), "%s/memory.max", dir);
        max = read_number(path);
        snprintf(path, sizeof(path), "%s/memory.stat", dir);
        inactive = read_keyed(path, "inactive_file");
    } else {
        cur = -1;
        max = -1;
        inactive = -1;
    }
    if ((cur < 0 || max <= 0) && cgroup_dir("memory", CGROUP_ROOT "/memory",
                                            "memory.usage_in_bytes", dir, sizeof(dir)) == 0) {
        snprintf(path, sizeof(path), "%s/memory.usage_in_bytes", dir);
        cur = read_number(path);
        snprintf(path, sizeof(path), "%s/memory.limit_in_bytes", dir);
        max = read_number(path);
        if (max >= CGROUP_V1_UNLIMITED)
            max = -1;
        snprintf(path, sizeof(path), "%s/memory.stat", dir);
        inactive = read_keyed(path, "total_inactive_file");
    }
    if (cur < 0 || max <= 0)
        return -1;
    if (inactive > 0 && inactive < cur)
        cur -= inactive;
    *used_out = cur;
    *limit_out = max;
    return 100.0 * (double)cur / (double)max;
}

void resource_memory(struct resource_memory *out)
{
    long long total, avail, cg_used, cg_limit;

    memset(out, 0, sizeof(*out));
    out->rss = rss_bytes();
    system_memory(&total, &avail);
    out->sys_pct = total > 0 && avail >= 0 ? 100.0 * (double)(total - avail) / (double)total : -1;
    out->cg_pct = cgroup_memory(&cg_used, &cg_limit);
    /* A limit above the machine's memory is no limit in practice. */
    if (out->cg_pct >= 0 && total > 0 && cg_limit >= total)
        out->cg_pct = -1;
    if (out->cg_pct >= 0 && out->cg_pct >= out->sys_pct) {
        out->used_pct = out->cg_pct;
        out->used = cg_used;
        out->total = cg_limit;
        out->cgroup = 1;
    } else {
        out->used_pct = out->sys_pct;
        out->used = out->sys_pct >= 0 ? total - avail : -1;
        out->total = out->sys_pct >= 0 ? total : -1;
    }
}

void resource_disk(const char *dir, struct resource_disk *out)
{
    struct statvfs vfs;

    memset(out, 0, sizeof(*out));
    out->free_bytes = out->total_bytes = out->files_free = out->files_total = -1;
    out->free_pct = out->used_pct = out->inodes_used_pct = -1;
    if (statvfs(dir, &vfs) != 0 || vfs.f_blocks == 0)
        return;
    out->ok = 1;
    out->free_bytes = (long long)vfs.f_bavail * (long long)vfs.f_frsize;
    out->total_bytes = (long long)vfs.f_blocks * (long long)vfs.f_frsize;
    out->free_pct = 100.0 * (double)vfs.f_bavail / (double)vfs.f_blocks;
    out->used_pct = 100.0 - out->free_pct;
    if (vfs.f_files > 0) {
        out->files_free = (long long)vfs.f_favail;
        out->files_total = (long long)vfs.f_files;
        out->inodes_used_pct = 100.0 * (double)(vfs.f_files - vfs.f_favail) / (double)vfs.f_files;
    }
}

void resource_fds(struct resource_fds *out)
{
    DIR *d = opendir("/proc/self/fd");
    struct rlimit rl;

    out->open = -1;
    out->used_pct = -1;
    if (d) {
        long long n = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                n++;
        closedir(d);
        out->open = n > 0 ? n - 1 : 0; /* not the directory's own */
    }
    out->limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                     ? (long long)rl.rlim_cur
                     : -1;
    if (out->open >= 0 && out->limit > 0)
        out->used_pct = 100.0 * (double)out->open / (double)out->limit;
}
