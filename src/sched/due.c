/*
 * due.c - the next due time of a schedule (see due.h).
 */
#include "due.h"

#include "base/date.h"

#include "base/banned.h"

int sched_next_due(const struct sched_rule *rule, const struct tz *tz, int64_t after_s,
                   int64_t *out_s)
{
    if (after_s < SCHED_AFTER_MIN_S || after_s > SCHED_AFTER_MAX_S)
        return ERR_INVALID;
    if (rule->cron)
        return tz ? cron_next(rule->cron, tz, rule->dst, after_s, out_s) : ERR_INVALID;
    if (rule->every_s < 1 || rule->every_s > SCHED_EVERY_MAX_S)
        return ERR_INVALID;
    /* At most after_s + every_s: no overflow inside the bounds above. */
    *out_s = (date_floor_div(after_s, rule->every_s) + 1) * rule->every_s;
    return 0;
}
