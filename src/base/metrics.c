/*
 * metrics.c - lock-free counters and histograms, and the text exposition
 * format (see metrics.h).
 */
#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

#include "base/banned.h"

const double metrics_bucket_bounds[METRICS_NBUCKETS] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 60, 300,
};

/* The same bounds in ns, for the observations (integer compares only). */
static const int64_t bounds_ns[METRICS_NBUCKETS] = {
    1000000LL,     5000000LL,     10000000LL,    25000000LL,     50000000LL,
    100000000LL,   250000000LL,   500000000LL,   1000000000LL,   2500000000LL,
    10000000000LL, 30000000000LL, 60000000000LL, 300000000000LL,
};

void metrics_hist_observe_ns(struct metrics_hist *h, int64_t ns)
{
    size_t i = 0;

    if (ns < 0)
        ns = 0;
    while (i < METRICS_NBUCKETS && ns > bounds_ns[i])
        i++;
    atomic_fetch_add_explicit(&h->sum_ns, (uint64_t)ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
}

int64_t metrics_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------------------------------ exposition */

int metrics_family(struct strbuf *out, const char *name, const char *type, const char *help)
{
    return strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int metrics_label(struct strbuf *labels, int first, const char *name, const char *value)
{
    int rc = strbuf_addf(labels, "%s%s=\"", first ? "" : ",", name);

    for (const char *p = value; !rc && *p; p++) {
        if (*p == '\\')
            rc = strbuf_add(labels, "\\\\", 2);
        else if (*p == '"')
            rc = strbuf_add(labels, "\\\"", 2);
        else if (*p == '\n')
            rc = strbuf_add(labels, "\\n", 2);
        else
            rc = strbuf_addch(labels, *p);
    }
    return rc ? rc : strbuf_addch(labels, '"');
}

static int sample_head(struct strbuf *out, const char *name, const char *labels)
{
    if (labels && *labels)
        return strbuf_addf(out, "%s{%s} ", name, labels);
    return strbuf_addf(out, "%s ", name);
}

int metrics_sample_u64(struct strbuf *out, const char *name, const char *labels, uint64_t v)
{
    int rc = sample_head(out, name, labels);
    return rc ? rc : strbuf_addf(out, "%" PRIu64 "\n", v);
}

int metrics_sample_i64(struct strbuf *out, const char *name, const char *labels, int64_t v)
{
    int rc = sample_head(out, name, labels);
    return rc ? rc : strbuf_addf(out, "%" PRId64 "\n", v);
}

int metrics_sample_f(struct strbuf *out, const char *name, const char *labels, double v)
{
    int rc = sample_head(out, name, labels);
    if (rc)
        return rc;
    if (isnan(v))
        return strbuf_adds(out, "NaN\n");
    if (isinf(v))
        return strbuf_adds(out, v > 0 ? "+Inf\n" : "-Inf\n");
    /* %.17g would print 0.10000000000000001; 12 digits are exact enough. */
    return strbuf_addf(out, "%.12g\n", v);
}

int metrics_hist_write(struct strbuf *out, const char *name, const char *labels,
                       const struct metrics_hist *h)
{
    uint64_t cum = 0, sum_ns;
    const char *sep = labels && *labels ? "," : "";
    int rc = 0;

    if (!labels)
        labels = "";
    for (size_t i = 0; !rc && i <= METRICS_NBUCKETS; i++) {
        cum += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
        if (i < METRICS_NBUCKETS)
            rc = strbuf_addf(out, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels, sep,
                             metrics_bucket_bounds[i], cum);
        else
            rc = strbuf_addf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
                             cum);
    }
    sum_ns = atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    if (!rc)
        rc = strbuf_addf(out, "%s_sum%s%s%s %.9f\n", name, *labels ? "{" : "", labels,
                         *labels ? "}" : "", (double)sum_ns / 1e9);
    if (!rc)
        rc = strbuf_addf(out, "%s_count%s%s%s %" PRIu64 "\n", name, *labels ? "{" : "", labels,
                         *labels ? "}" : "", cum);
    return rc;
}

/* ------------------------------------------------------------------ process_* */

/* The boot time (seconds since the epoch) from /proc/stat, or -1. */
static long long boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    char line[256];
    long long bt = -1;

    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, "btime ", 6)) {
            bt = strtoll(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return bt;
}

/* Fields 14 (utime), 15 (stime), 22 (starttime), 23 (vsize), 24 (rss) of
 * /proc/self/stat; 0 or -1. The name (field 2) may hold spaces and
 * parentheses: the fields are counted from after its last ')'. */
static int read_stat(unsigned long long *ut, unsigned long long *stime, unsigned long long *start,
                     unsigned long long *vsize, long long *rss)
{
    FILE *f = fopen("/proc/self/stat", "re");
    char buf[1024];
    size_t n;
    char *p;

    if (!f)
        return -1;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* After ") ": field 3 (state) onwards, one blank between fields. */
    for (int field = 3; *p; field++) {
        char *end;
        unsigned long long v;

        p = strchr(p, ' ');
        if (!p)
            break;
        p++;
        if (field < 14)
            continue;
        v = strtoull(p, &end, 10);
        if (end == p)
            return -1;
        if (field == 14)
            *ut = v;
        else if (field == 15)
            *stime = v;
        else if (field == 22)
            *start = v;
        else if (field == 23)
            *vsize = v;
        else if (field == 24) {
            *rss = (long long)v;
            return 0;
        }
    }
    return -1;
}

int metrics_process_write(struct strbuf *out)
{
    unsigned long long ut, st, start, vsize;
    long long rss, bt;
    long tck = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    struct rlimit rl;
    DIR *d;
    int rc = 0;

    if (read_stat(&ut, &st, &start, &vsize, &rss) == 0 && tck > 0) {
        rc = metrics_family(out, "process_cpu_seconds_total", "counter",
                            "Total user and system CPU time spent in seconds.");
        if (!rc)
            rc = metrics_sample_f(out, "process_cpu_seconds_total", NULL,
                                  (double)(ut + st) / (double)tck);
        if (!rc)
            rc = metrics_family(out, "process_resident_memory_bytes", "gauge",
                                "Resident memory size in bytes.");
        if (!rc)
            rc = metrics_sample_i64(out, "process_resident_memory_bytes", NULL,
                                    rss * (long long)page);
        if (!rc)
            rc = metrics_family(out, "process_virtual_memory_bytes", "gauge",
                                "Virtual memory size in bytes.");
        if (!rc)
            rc = metrics_sample_u64(out, "process_virtual_memory_bytes", NULL, vsize);
        bt = boot_time();
        if (!rc && bt >= 0) {
            rc = metrics_family(out, "process_start_time_seconds", "gauge",
                                "Start time of the process since unix epoch in seconds.");
            if (!rc)
                rc = metrics_sample_f(out, "process_start_time_seconds", NULL,
                                      (double)bt + (double)start / (double)tck);
        }
    }
    d = opendir("/proc/self/fd");
    if (!rc && d) {
        struct dirent *de;
        long long n = 0;
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                n++;
        rc = metrics_family(out, "process_open_fds", "gauge", "Number of open file descriptors.");
        if (!rc)
            rc = metrics_sample_i64(out, "process_open_fds", NULL, n > 0 ? n - 1 : 0);
    }
    if (d)
        closedir(d);
    if (!rc && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        rc = metrics_family(out, "process_max_fds", "gauge",
                            "Maximum number of open file descriptors.");
        if (!rc)
            rc = metrics_sample_u64(out, "process_max_fds", NULL, (uint64_t)rl.rlim_cur);
    }
    return rc;
}
