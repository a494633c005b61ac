/*
 * due.h - the next due time of a schedule: the one rule that the engine's
 * scheduler, the API (next fire, `next`, `preview`, backfill) and the CLI
 * (`orch schedules next`) all use.
 *
 * Pure: no I/O, no clocks, no global state; safe from any thread.
 */
#ifndef ORCH_SCHED_DUE_H
#define ORCH_SCHED_DUE_H

#include <stdint.h>

#include "cron.h"
#include "tz.h"

/*
 * What a schedule fires on: a cron expression on the wall clock of a zone,
 * or a fixed interval counted from the epoch (00:00:00 UTC on 1970-01-01),
 * so an interval's due times are the same on every node and after every
 * restart. Borrowed pointers; the caller keeps them alive during the call.
 */
struct sched_rule {
    const struct cron_expr *cron; /* a cron schedule; NULL for an interval */
    const struct cron_dst *dst;   /* cron only: DST rules, NULL for the defaults */
    int64_t every_s;              /* interval only: 1 to SCHED_EVERY_MAX_S seconds */
};

/*
 * The one bound, for both kinds: `after` must lie in
 * [SCHED_AFTER_MIN_S, SCHED_AFTER_MAX_S] (UTC seconds, about +-34,000
 * years), the range in which cron_next() can look CRON_HORIZON_S ahead in
 * any zone. Every due time found is then inside the zones' range too, so
 * it can be formatted with cron_format_instant().
 */
#define SCHED_AFTER_MIN_S CRON_AFTER_MIN_S
#define SCHED_AFTER_MAX_S CRON_AFTER_MAX_S

/* The longest interval: the cron horizon (an interval always fires within it). */
#define SCHED_EVERY_MAX_S CRON_HORIZON_S

/*
 * The first due time of `rule` strictly after after_s (UTC seconds), in
 * `tz` (used by cron rules only; may be NULL for an interval), into *out_s.
 * - cron: cron_next() with rule->dst (see cron.h for DST gaps and overlaps);
 * - interval: the next multiple of every_s since the epoch, so
 *   (floor(after_s / every_s) + 1) * every_s, also before 1970.
 * Returns 0; ERR_NOT_FOUND if a cron rule fires nowhere within
 * CRON_HORIZON_S after after_s (an interval always fires); ERR_INVALID if
 * after_s is outside [SCHED_AFTER_MIN_S, SCHED_AFTER_MAX_S], or an
 * interval is outside 1 to SCHED_EVERY_MAX_S seconds, or a cron rule has
 * no zone. *out_s is written only on success.
 */
int sched_next_due(const struct sched_rule *rule, const struct tz *tz, int64_t after_s,
                   int64_t *out_s);

#endif
