/*
 * sched_probe - answers time zone and cron queries on stdin, one answer line
 * per query line, for the differential tests in tests/e2e (which compare it
 * with Python's zoneinfo and the croniter-based oracle). One process serves
 * any number of queries and zones.
 *
 *   z NAME                    select zone NAME           -> "ok" | "error MSG"
 *   o T                       offset at instant T        -> "OFF"
 *   l L                       instants of wall time L    -> "N [U1 [U2]]"
 *   t FROM TO                 transitions in (FROM, TO]  -> "T:BEFORE:AFTER ..." (may be empty)
 *   g L                       gap containing wall time L -> "T GAP" | "none"
 *   p EXPR                    parse a cron expression    -> "ok M H DOM MON DOW DOMSTAR DOWSTAR
 * CADENCE" c ZONE AFTER N SK REP EXPR  next N fires             -> "T1 T2 ... [-]" ("-": none
 * further) SK = shift|skip, REP = first|last|both f T ZONE                  ISO 8601 with offset ->
 * "2026-03-08T03:00:00-04:00" Errors answer "error MESSAGE". Times are integer seconds since the
 * epoch.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "sched/cron.h"
#include "sched/tz.h"

#include "base/banned.h"

static const struct tz *zone;

static int parse_i64(const char **p, int64_t *out)
{
    char *end;
    long long v = strtoll(*p, &end, 10);
    if (end == *p)
        return -1;
    *p = end;
    *out = v;
    return 0;
}

static void cmd_zone(const char *arg)
{
    struct err err = ERR_INIT;
    const struct tz *z;
    if (tz_load(arg, &z, &err)) {
        printf("error %s\n", err.msg);
        zone = NULL;
        return;
    }
    zone = z;
    printf("ok\n");
}

static void cmd_transitions(const char *arg)
{
    int64_t from, to, t;
    int before, after, first = 1;
    if (parse_i64(&arg, &from) || parse_i64(&arg, &to)) {
        printf("error usage\n");
        return;
    }
    t = from;
    while (!tz_next_transition(zone, t, &t, &before, &after) && t <= to) {
        printf("%s%" PRId64 ":%d:%d", first ? "" : " ", t, before, after);
        first = 0;
    }
    printf("\n");
}

static void cmd_cron(const char *arg)
{
    char zname[TZ_NAME_MAX + 1], sk[16], rep[16];
    struct cron_dst dst = CRON_DST_INIT;
    struct cron_expr ce;
    struct err err = ERR_INIT;
    const struct tz *z;
    long long after;
    int n, used = 0;

    if (sscanf(arg, "%255s %lld %d %15s %15s %n", zname, &after, &n, sk, rep, &used) != 5 ||
        !used) {
        printf("error usage\n");
        return;
    }
    dst.skipped = strcmp(sk, "skip") == 0 ? CRON_SKIPPED_SKIP : CRON_SKIPPED_SHIFT;
    dst.repeated = strcmp(rep, "last") == 0   ? CRON_REPEATED_LAST
                   : strcmp(rep, "both") == 0 ? CRON_REPEATED_BOTH
                                              : CRON_REPEATED_FIRST;
    if (tz_load(zname, &z, &err) || cron_parse(arg + used, &ce, &err)) {
        printf("error %s\n", err.msg);
        return;
    }
    {
        int64_t t = after;
        for (int i = 0; i < n; i++) {
            int rc = cron_next(&ce, z, &dst, t, &t);
            if (rc) {
                printf("%s%s", i ? " " : "", rc == ERR_NOT_FOUND ? "-" : err_name(rc));
                break;
            }
            printf("%s%" PRId64, i ? " " : "", t);
        }
        printf("\n");
    }
}

int main(void)
{
    static char line[8192];

    while (fgets(line, sizeof(line), stdin)) {
        size_t len = strlen(line);
        const char *arg = line + 2;
        int64_t a;
        if (len && line[len - 1] == '\n')
            line[--len] = '\0';
        if (len < 1)
            continue;
        if (line[0] == 'z') {
            cmd_zone(arg);
        } else if (line[0] == 'p') {
            struct cron_expr ce;
            struct err err = ERR_INIT;
            if (cron_parse(arg, &ce, &err))
                printf("error %s\n", err.msg);
            else
                printf("ok %" PRIx64 " %" PRIx32 " %" PRIx32 " %x %x %d %d %d\n", ce.minutes,
                       ce.hours, ce.doms, (unsigned)ce.months, (unsigned)ce.dows, ce.dom_star,
                       ce.dow_star, ce.cadence);
        } else if (line[0] == 'c') {
            cmd_cron(arg);
        } else if (line[0] == 'f') {
            char buf[CRON_INSTANT_MAX], zname[TZ_NAME_MAX + 1];
            const struct tz *z;
            struct err err = ERR_INIT;
            long long t;
            if (sscanf(arg, "%lld %255s", &t, zname) != 2 || tz_load(zname, &z, &err) ||
                cron_format_instant(t, z, buf))
                printf("error %s\n", err.msg);
            else
                printf("%s\n", buf);
        } else if (!zone) {
            printf("error no zone selected\n");
        } else if (line[0] == 'o' && !parse_i64(&arg, &a)) {
            int off;
            if (tz_utc_to_local(zone, a, NULL, &off))
                printf("error range\n");
            else
                printf("%d\n", off);
        } else if (line[0] == 'l' && !parse_i64(&arg, &a)) {
            int64_t u[2];
            int n = tz_local_to_utc(zone, a, u);
            if (n < 0)
                printf("error range\n");
            else if (n == 0)
                printf("0\n");
            else if (n == 1)
                printf("1 %" PRId64 "\n", u[0]);
            else
                printf("2 %" PRId64 " %" PRId64 "\n", u[0], u[1]);
        } else if (line[0] == 'g' && !parse_i64(&arg, &a)) {
            int64_t t;
            int gap;
            if (tz_gap_end(zone, a, &t, &gap))
                printf("none\n");
            else
                printf("%" PRId64 " %d\n", t, gap);
        } else if (line[0] == 't') {
            cmd_transitions(arg);
        } else {
            printf("error bad query\n");
        }
    }
    tz_cache_clear();
    return 0;
}
