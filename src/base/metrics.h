/*
 * metrics.h - counters and histograms updated without a lock, and the
 * Prometheus text exposition format (version 0.0.4) to show them.
 *
 * Threading: a counter or histogram may be updated from any thread (relaxed
 * atomic adds: no lock, no ordering) and read by another while it changes;
 * a reader sees each value whole, and a histogram's buckets and sum possibly
 * one observation apart (its count is the sum of its buckets, so _count
 * always equals the +Inf bucket).
 *
 * Labels are the caller's: this module writes what it is given, escaped.
 * Never make a label of an unbounded value (an id, a key): every distinct
 * value is a series kept by every Prometheus that scrapes it.
 *
 * The writers append to a strbuf and return its error (ERR_TOO_BIG past the
 * buffer's maximum); members of the structs are private.
 */
#ifndef ORCH_BASE_METRICS_H
#define ORCH_BASE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/strbuf.h"

/* A counter (only goes up). Zero-initialised: METRICS_COUNTER_INIT or memset. */
struct metrics_counter {
    atomic_uint_fast64_t v;
};

static inline void metrics_counter_add(struct metrics_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

static inline uint64_t metrics_counter_get(const struct metrics_counter *c)
{
    return atomic_load_explicit(&c->v, memory_order_relaxed);
}

/* The bucket bounds of every duration histogram, in seconds: 1 ms to 5 min. */
#define METRICS_NBUCKETS 14
extern const double metrics_bucket_bounds[METRICS_NBUCKETS];

/* A histogram of durations with the bounds above (+Inf besides). */
struct metrics_hist {
    atomic_uint_fast64_t buckets[METRICS_NBUCKETS + 1]; /* not cumulative; last: +Inf */
    atomic_uint_fast64_t sum_ns;
};

/* Record one duration (negative counts as 0). Any thread, no lock. */
void metrics_hist_observe_ns(struct metrics_hist *h, int64_t ns);
static inline void metrics_hist_observe_ms(struct metrics_hist *h, int64_t ms)
{
    metrics_hist_observe_ns(h, ms * 1000000);
}

/* CLOCK_MONOTONIC now, in ns: the real clock, never a test's manual one. */
int64_t metrics_now_ns(void);

/* ------------------------------------------------------------------ exposition */

/* The Content-Type of the text format this module writes. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n" (type: counter, gauge, histogram). */
int metrics_family(struct strbuf *out, const char *name, const char *type, const char *help);

/*
 * Append `name="value"` (with a leading comma when `first` is 0) to `labels`,
 * the value escaped as the format wants (\\, \", \n). Returns the strbuf's
 * error.
 */
int metrics_label(struct strbuf *labels, int first, const char *name, const char *value);

/* One sample: name{labels} value. `labels` may be NULL or "" for none. */
int metrics_sample_u64(struct strbuf *out, const char *name, const char *labels, uint64_t v);
int metrics_sample_i64(struct strbuf *out, const char *name, const char *labels, int64_t v);
int metrics_sample_f(struct strbuf *out, const char *name, const char *labels, double v);

/* The _bucket (cumulative, le in seconds), _sum (seconds) and _count samples
 * of a histogram (its family line is the caller's). */
int metrics_hist_write(struct strbuf *out, const char *name, const char *labels,
                       const struct metrics_hist *h);

/*
 * The standard process_* families of this process: process_cpu_seconds_total,
 * process_resident_memory_bytes, process_virtual_memory_bytes,
 * process_open_fds, process_max_fds, process_start_time_seconds (from
 * /proc/self). A figure that cannot be read is left out.
 */
int metrics_process_write(struct strbuf *out);

#endif
