/*
 * cron.h - cron expressions: parsing and next fire time in a time zone.
 *
 * Pure functions: no I/O, no clocks, no global state; safe from any thread.
 * The rules are those of research/cron.md section 3; docs/internals/
 * scheduler.md explains them with examples and lists every place where we
 * differ from Vixie cron and from croniter.
 *
 * Syntax: exactly five fields, "minute hour day-of-month month day-of-week",
 * separated by spaces or tabs, or one of the macros @yearly (= @annually,
 * "0 0 1 1 *"), @monthly ("0 0 1 * *"), @weekly ("0 0 * * 0"), @daily
 * (= @midnight, "0 0 * * *") and @hourly ("0 * * * *"). @reboot is
 * rejected. A field is a comma-separated list of items: "*", "N", "A-B"
 * (A <= B), "*" or "A-B" followed by "/STEP", or "N/STEP" (= "N-max/STEP").
 * Months (jan..dec) and weekdays (sun..sat) may be given by their first
 * three letters in any case, also inside ranges and lists. Weekdays 0 and 7
 * are both Sunday.
 *
 * Day rule: day-of-month and day-of-week are "restricted" unless the field
 * is exactly "*". When both are restricted a day matches if EITHER matches;
 * otherwise both must match (so the restricted one decides).
 */
#ifndef ORCH_SCHED_CRON_H
#define ORCH_SCHED_CRON_H

#include <stdint.h>

#include "base/err.h"
#include "tz.h"

/* Longest expression accepted by cron_parse(). */
#define CRON_EXPR_MAX 1024

/* cron_next() looks this far past `after` before giving up (30 years). */
#define CRON_HORIZON_S ((int64_t)30 * 366 * 86400)

/*
 * The range of `after` that cron_next() accepts (UTC seconds, about
 * +-34,000 years): far enough inside tz.h's range to look CRON_HORIZON_S
 * ahead, plus a few days for the widest UTC offsets.
 */
#define CRON_AFTER_MIN_S (TZ_TIME_MIN + 4 * 86400)
#define CRON_AFTER_MAX_S (TZ_TIME_MAX - CRON_HORIZON_S - 4 * 86400)

/* Longest gap (spring forward) whose skipped fixed times are caught up. */
#define CRON_MAX_CATCHUP_S (3 * 3600)

/*
 * A parsed expression. Members are readable; set them only through
 * cron_parse(). Bit n of a set means value n matches.
 */
struct cron_expr {
    uint64_t minutes;       /* bits 0-59 */
    uint32_t hours;         /* bits 0-23 */
    uint32_t doms;          /* bits 1-31 */
    uint16_t months;        /* bits 1-12 */
    uint8_t dows;           /* bits 0-6, 0 = Sunday (7 is folded into 0) */
    unsigned char dom_star; /* the day-of-month field was exactly "*" */
    unsigned char dow_star; /* the day-of-week field was exactly "*" */
    /*
     * Cadence (minute or hour field starts with '*': "*\/15 * * * *",
     * "30 * * * *", "@hourly") or fixed-time (everything else: "30 2 * * *",
     * "0 9 * * 1-5", "@daily"). See cron_next() for what differs.
     */
    unsigned char cadence;
};

/* What fixed-time schedules do with wall times that do not exist or exist twice. */
struct cron_dst {
    enum cron_dst_skipped {
        CRON_SKIPPED_SHIFT = 0, /* fire at the end of a gap of <= 3 hours (default) */
        CRON_SKIPPED_SKIP,      /* do not fire */
    } skipped;
    enum cron_dst_repeated {
        CRON_REPEATED_FIRST = 0, /* fire on the first pass only (default) */
        CRON_REPEATED_LAST,      /* fire on the second pass only */
        CRON_REPEATED_BOTH,      /* fire on both passes */
    } repeated;
};

#define CRON_DST_INIT                                                                              \
    {                                                                                              \
        CRON_SKIPPED_SHIFT, CRON_REPEATED_FIRST                                                    \
    }

/*
 * Parse `expr` into *out. Returns 0, or ERR_INVALID with a message naming
 * the field and the problem, for example
 *   "day-of-week: 8 is out of range 0-7"
 *   "minute: step 0 is not allowed"
 *   "hour: range 10-5 is reversed"
 *   "expected 5 fields, got 6 (seconds are not supported; use an 'every' schedule)"
 *   "never fires: day-of-month 30 does not occur in month 2"
 * An expression that can never match a date is an error. *out is written
 * only on success.
 */
int cron_parse(const char *expr, struct cron_expr *out, struct err *err);

/*
 * Does the wall-clock minute (year, month 1-12, day 1-31, hour, minute)
 * match? The date must be valid. For tests and for callers that display
 * schedules.
 */
int cron_matches(const struct cron_expr *ce, int64_t year, int month, int day, int hour,
                 int minute);

/*
 * The smallest fire instant strictly greater than after_s (UTC seconds),
 * for `ce` evaluated on the wall clock of `tz`, into *out_s. `dst` may be
 * NULL for the defaults (CRON_DST_INIT).
 *
 * Matching is per wall-clock minute (fire instants have wall seconds 0).
 * - Cadence schedules follow real time: they fire at every instant whose
 *   wall time matches, so matching wall times inside a gap never fire and
 *   those inside an overlap fire on both passes. `dst` is ignored.
 * - Fixed-time schedules fire once per matching wall time. One that exists
 *   once fires then. One in an overlap fires on the first pass (or per
 *   dst->repeated). One in a gap of at most 3 hours fires at the first
 *   instant after the gap, and all of a gap's wall times coalesce into that
 *   one fire (dst->skipped = CRON_SKIPPED_SKIP drops them instead); one in a
 *   longer gap (a zone correction such as Samoa skipping 2011-12-30) is
 *   dropped.
 *
 * Returns 0; ERR_NOT_FOUND if nothing fires within CRON_HORIZON_S of
 * after_s; ERR_INVALID if after_s is outside [CRON_AFTER_MIN_S,
 * CRON_AFTER_MAX_S]. A schedule's due time, cron or interval, is
 * sched_next_due() in due.h, built on this.
 */
int cron_next(const struct cron_expr *ce, const struct tz *tz, const struct cron_dst *dst,
              int64_t after_s, int64_t *out_s);

/* Room for cron_format_instant()'s output, NUL included. */
#define CRON_INSTANT_MAX 48

/*
 * Write utc_s as ISO 8601 wall time with its UTC offset in tz, e.g.
 * "2026-03-08T03:00:00-04:00" (offsets with seconds, which only old local
 * mean times have, print as "+00:19:32"), into out[CRON_INSTANT_MAX].
 * Returns 0, or ERR_INVALID (out holds "") if utc_s is out of range.
 */
int cron_format_instant(int64_t utc_s, const struct tz *tz, char *out);

#endif
