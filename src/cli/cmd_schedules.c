/*
 * cmd_schedules.c - offline schedule tools: "orch schedules next" prints the
 * next fire times of a cron expression (or an interval) in a time zone, and
 * "orch schedules validate" checks an expression and says what kind it is.
 *
 * Neither needs a data directory or a server: they only run cron_parse(),
 * tz_load() and sched_next_due() (src/sched/). Exit status: 0, 2 for a bad
 * command line (including --from and --count), 3 for a bad expression or an
 * unknown time zone.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/date.h"
#include "base/err.h"
#include "cli.h"
#include "dag/dag.h"
#include "sched/cron.h"
#include "sched/due.h"
#include "sched/tz.h"

#include "base/banned.h"

#define NEXT_COUNT_DEFAULT 10
#define NEXT_COUNT_MAX 1000

static const struct cli_opt next_opts[] = {
    {"tz", "ZONE", "IANA time zone of the schedule (default UTC)", 0},
    {"count", "N", "how many fire times (default 10, max 1000)", 0},
    {"from", "INSTANT",
     "start after INSTANT (default now): 2026-03-08T12:00:00Z, with an offset, or a local "
     "date/time in --tz (2026-03-08, 2026-03-08T01:30)",
     0},
    {"every", "DURATION", "an interval schedule (\"30s\", \"1h\") instead of EXPR", 0},
    {"dst-skipped", "shift|skip", "fixed-time wall times in a DST gap (default shift)", 0},
    {"dst-repeated", "first|last|both", "fixed-time wall times in a DST overlap (default first)",
     0},
    {"json", NULL, "print {\"expression\", \"timezone\", \"times\": [...]}", 0},
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd next_cmd = {
    "schedules next", "EXPR",
    "Print the next fire times of a cron expression (or of --every DURATION), strictly\n"
    "after --from, one ISO 8601 instant with its UTC offset per line. Offline: nothing is\n"
    "scheduled. Exit status: 0, 2 bad command line, 3 bad expression or unknown zone.",
    next_opts,
};

static const struct cli_opt validate_opts[] = {
    {"tz", "ZONE", "IANA time zone of the schedule (default UTC)", 0},
    {"json", NULL, "print {\"valid\", \"expression\", \"timezone\", \"kind\", \"error\"}", 0},
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd validate_cmd = {
    "schedules validate", "EXPR",
    "Check a cron expression and say whether it is a cadence or a fixed-time schedule.\n"
    "Exit status: 0 valid, 2 bad command line, 3 invalid expression or unknown zone.",
    validate_opts,
};

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2));
    printf("%s\n", s ? s : "null");
    free(s);
}

/* The message of a tz_load() failure, with a "did you mean" for an unknown
 * zone as the definition validator gives. */
static void zone_error(const char *name, int rc, const struct err *err, char *out, size_t len)
{
    char sug[128];
    if (rc == ERR_NOT_FOUND && dag_suggest_zone(name, sug, sizeof(sug)) == 0)
        snprintf(out, len, "%s (did you mean '%s'?)", err->msg, sug);
    else
        snprintf(out, len, "%s", err->msg);
}

/* The zone of --tz (default UTC); prints the error. */
static int load_zone(const struct cli_args *a, const struct tz **out)
{
    const char *name = cli_get(a, "tz");
    struct err err = ERR_INIT;
    int rc;

    if (!name)
        name = "UTC";
    if ((rc = tz_load(name, out, &err)) < 0) {
        char msg[sizeof(err.msg) + 160];
        zone_error(name, rc, &err, msg, sizeof(msg));
        cli_error("%s", msg);
        return -1;
    }
    return 0;
}

/* The single EXPR argument; prints the error. */
static const char *one_expr(const struct cli_args *a, const char *cmd)
{
    if (a->npos == 1)
        return a->pos[0];
    if (a->npos == 0)
        cli_error("'orch %s' needs a cron expression (quoted: '0 2 * * *')", cmd);
    else
        cli_error("'orch %s' takes the expression as one argument (quote it: '0 2 * * *')",
                  cmd);
    return NULL;
}

/* Parse exactly `n` digits at s into *out. */
static int digits(const char *s, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/*
 * A local date ("2026-03-08") or date and time ("2026-03-08T01:30" or with
 * ":SS") without an offset, as wall seconds. Returns 0, or -1 if `s` is not
 * of that form.
 */
static int parse_local(const char *s, int64_t *out_local_s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h = 0, mi = 0, sec = 0;
    size_t len = strlen(s);

    if (len < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -1;
    if (len > 10) {
        if ((s[10] != 'T' && s[10] != ' ') || len < 16 || digits(s + 11, 2, &h) || s[13] != ':' ||
            digits(s + 14, 2, &mi))
            return -1;
        if (len > 16 && (len != 19 || s[16] != ':' || digits(s + 17, 2, &sec)))
            return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 59)
        return -1;
    if (mo == 2 && d == 29 && !date_is_leap(y))
        return -1;
    *out_local_s = clock_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
                   mi * 60 + sec;
    return 0;
}

/*
 * --from as UTC seconds: an instant with Z or an offset, or a local date or
 * date-time on the wall clock of tz (a wall time in a DST gap means the end
 * of the gap; one in an overlap, its first pass). Default: now. Prints the
 * error.
 */
static int parse_from(const char *s, const struct tz *tz, int64_t *out_s)
{
    int64_t local, utc[2], ms;
    int n;

    if (!s) {
        ms = clock_now_ms();
        *out_s = ms / 1000;
        return 0;
    }
    if (parse_local(s, &local) == 0) {
        n = tz_local_to_utc(tz, local, utc);
        if (n > 0) {
            *out_s = utc[0];
            return 0;
        }
        if (n == 0 && tz_gap_end(tz, local, &utc[0], NULL) == 0) {
            *out_s = utc[0] - 1; /* every instant from the gap's end on is after s */
            return 0;
        }
    } else if (clock_parse_iso8601(s, &ms) == 0) {
        /* Fire times are whole seconds, so "strictly after" floors the fraction away. */
        *out_s = date_floor_div(ms, 1000);
        return 0;
    }
    cli_error("invalid --from '%s' (use 2026-03-08T12:00:00Z, 2026-03-08T07:00:00-05:00, "
              "or a local 2026-03-08 or 2026-03-08T01:30 in --tz)",
              s);
    return -1;
}

static int parse_count(const char *s, int *out)
{
    char *end;
    long v;

    if (!s) {
        *out = NEXT_COUNT_DEFAULT;
        return 0;
    }
    v = strtol(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || v < 1 || v > NEXT_COUNT_MAX) {
        cli_error("invalid --count '%s' (a whole number from 1 to %d)", s, NEXT_COUNT_MAX);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_dst(const struct cli_args *a, struct cron_dst *dst)
{
    const char *sk = cli_get(a, "dst-skipped");
    const char *rp = cli_get(a, "dst-repeated");

    if (sk && !strcmp(sk, "shift")) {
        dst->skipped = CRON_SKIPPED_SHIFT;
    } else if (sk && !strcmp(sk, "skip")) {
        dst->skipped = CRON_SKIPPED_SKIP;
    } else if (sk) {
        cli_error("invalid --dst-skipped '%s' (allowed: shift, skip)", sk);
        return -1;
    }
    if (rp && !strcmp(rp, "first")) {
        dst->repeated = CRON_REPEATED_FIRST;
    } else if (rp && !strcmp(rp, "last")) {
        dst->repeated = CRON_REPEATED_LAST;
    } else if (rp && !strcmp(rp, "both")) {
        dst->repeated = CRON_REPEATED_BOTH;
    } else if (rp) {
        cli_error("invalid --dst-repeated '%s' (allowed: first, last, both)", rp);
        return -1;
    }
    return 0;
}

/* Wall seconds to "2026-03-08" and "02:30". */
static void wall_parts(int64_t local_s, char date[16], char hm[8])
{
    int64_t days = date_floor_div(local_s, 86400), y;
    int64_t sod = local_s - days * 86400;
    unsigned m, d;

    clock_civil_from_days(days, &y, &m, &d);
    snprintf(date, 16, "%04lld-%02u-%02u", (long long)y, m, d);
    snprintf(hm, 8, "%02d:%02d", (int)(sod / 3600), (int)(sod / 60 % 60));
}

/*
 * For a fixed-time fire at t whose own wall time does not match (so it is
 * the shifted fire of wall times skipped by a gap ending at t), a note such
 * as "(shifted: 02:30 does not exist on 2026-03-08)"; "" otherwise.
 */
static void shift_note(const struct cron_expr *ce, const struct tz *tz, int64_t t, char *out,
                       size_t size)
{
    int64_t local, tr, first = 0, w, days, y;
    int before, after, nmatch = 0;
    unsigned m, d;

    out[0] = '\0';
    if (ce->cadence || tz_utc_to_local(tz, t, &local, NULL) < 0)
        return;
    days = date_floor_div(local, 86400);
    clock_civil_from_days(days, &y, &m, &d);
    if (cron_matches(ce, y, (int)m, (int)d, (int)((local - days * 86400) / 3600),
                     (int)((local - days * 86400) / 60 % 60)))
        return;
    if (tz_next_transition(tz, t - 1, &tr, &before, &after) < 0 || tr != t || after <= before)
        return;
    for (w = t + before; w < t + after; w += 60) {
        int64_t wd = date_floor_div(w, 86400), wy;
        unsigned wm, wdd;
        clock_civil_from_days(wd, &wy, &wm, &wdd);
        if (cron_matches(ce, wy, (int)wm, (int)wdd, (int)((w - wd * 86400) / 3600),
                         (int)((w - wd * 86400) / 60 % 60))) {
            if (!nmatch++)
                first = w;
        }
    }
    if (nmatch) {
        char date[16], hm[8];
        wall_parts(first, date, hm);
        if (nmatch == 1)
            snprintf(out, size, "  (shifted: %s does not exist on %s)", hm, date);
        else
            snprintf(out, size, "  (shifted: %s and %d more times do not exist on %s)", hm,
                     nmatch - 1, date);
    }
}

static int schedules_next(int argc, char **argv)
{
    struct cron_dst dst = CRON_DST_INIT;
    struct err err = ERR_INIT;
    struct sched_rule rule;
    struct cron_expr ce;
    struct cli_args a;
    const struct tz *tz;
    const char *expr = NULL, *every;
    int64_t every_ms = 0, t;
    json_t *times = NULL;
    int count, json, rc, i;

    rc = cli_parse(&next_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    every = cli_get(&a, "every");
    json = cli_flag(&a, "json");
    if (every) {
        if (a.npos) {
            cli_error("give either EXPR or --every, not both");
            return EXIT_USAGE;
        }
        if (clock_parse_duration(every, &every_ms, &err) < 0) {
            cli_error("invalid --every '%s': %s", every, err.msg);
            return EXIT_USAGE;
        }
        if (every_ms < 1000 || every_ms % 1000) {
            cli_error("invalid --every '%s': must be a whole number of seconds, at least 1s",
                      every);
            return EXIT_USAGE;
        }
    } else {
        expr = one_expr(&a, "schedules next");
        if (!expr)
            return EXIT_USAGE;
    }
    if (parse_count(cli_get(&a, "count"), &count) < 0 || parse_dst(&a, &dst) < 0)
        return EXIT_USAGE;
    if (expr && cron_parse(expr, &ce, &err) < 0) {
        cli_error("invalid cron expression '%s': %s", expr, err.msg);
        return EXIT_INVALID;
    }
    if (load_zone(&a, &tz) < 0)
        return EXIT_INVALID;
    if (parse_from(cli_get(&a, "from"), tz, &t) < 0)
        return EXIT_USAGE;
    rule.cron = expr ? &ce : NULL;
    rule.dst = &dst;
    rule.every_s = every_ms / 1000;

    if (json)
        times = json_array();
    for (i = 0; i < count; i++) {
        char when[CRON_INSTANT_MAX], note[128] = "";
        rc = sched_next_due(&rule, tz, t, &t);
        if (rc == ERR_NOT_FOUND) {
            fprintf(stderr, "orch: no further fire time within 30 years\n");
            break;
        }
        if (rc < 0 || cron_format_instant(t, tz, when) < 0) {
            cli_error("fire times after --from are out of the supported range");
            json_decref(times);
            return EXIT_USAGE;
        }
        if (json) {
            json_array_append_new(times, json_string(when));
            continue;
        }
        if (expr)
            shift_note(&ce, tz, t, note, sizeof(note));
        printf("%s%s\n", when, note);
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "expression", expr ? json_string(expr) : json_null());
        if (every)
            json_object_set_new(o, "every", json_string(every));
        json_object_set_new(o, "timezone", json_string(tz_name(tz)));
        json_object_set_new(o, "kind", json_string(!expr        ? "interval"
                                                   : ce.cadence ? "cadence"
                                                                : "fixed-time"));
        json_object_set_new(o, "times", times);
        print_json(o);
        json_decref(o);
    }
    return EXIT_OK;
}

static const char cadence_note[] =
    "cadence schedule: it follows real time, so across a DST change matching wall times that are "
    "skipped never fire and those that repeat fire on both passes";
static const char fixed_note[] =
    "fixed-time schedule: it fires once per matching wall time; one skipped by a DST gap (up to 3h) "
    "fires when the clock jumps, one that repeats fires on the first pass only";

static int schedules_validate(int argc, char **argv)
{
    struct err err = ERR_INIT;
    struct cron_expr ce;
    struct cli_args a;
    const struct tz *tz = NULL;
    const char *expr, *zone;
    int rc, json, bad_zone = 0;

    rc = cli_parse(&validate_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    json = cli_flag(&a, "json");
    expr = one_expr(&a, "schedules validate");
    if (!expr)
        return EXIT_USAGE;
    zone = cli_get(&a, "tz") ? cli_get(&a, "tz") : "UTC";
    rc = cron_parse(expr, &ce, &err);
    if (rc == 0) {
        int zrc = tz_load(zone, &tz, &err);
        if (zrc < 0) {
            char msg[sizeof(err.msg) + 160];
            zone_error(zone, zrc, &err, msg, sizeof(msg));
            size_t len = strlen(msg);
            if (len >= sizeof(err.msg))
                len = sizeof(err.msg) - 1;
            memcpy(err.msg, msg, len);
            err.msg[len] = '\0';
            bad_zone = 1;
        }
    }
    if (json) {
        json_t *o = json_object();
        json_object_set_new(o, "valid", json_boolean(rc == 0 && !bad_zone));
        json_object_set_new(o, "expression", json_string(expr));
        json_object_set_new(o, "timezone", json_string(zone));
        if (rc == 0 && !bad_zone)
            json_object_set_new(o, "kind", json_string(ce.cadence ? "cadence" : "fixed-time"));
        else
            json_object_set_new(o, "error", json_string(err.msg));
        print_json(o);
        json_decref(o);
    } else if (bad_zone) {
        cli_error("%s", err.msg);
    } else if (rc == 0) {
        printf("valid: '%s' in %s is a %s\n", expr, tz_name(tz),
               ce.cadence ? cadence_note : fixed_note);
    } else {
        cli_error("invalid cron expression '%s': %s", expr, err.msg);
    }
    return rc || bad_zone ? EXIT_INVALID : EXIT_OK;
}

int cmd_schedules(int argc, char **argv)
{
    if (argc >= 1 && !strcmp(argv[0], "next"))
        return schedules_next(argc - 1, argv + 1);
    if (argc >= 1 && !strcmp(argv[0], "validate"))
        return schedules_validate(argc - 1, argv + 1);
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        printf("usage: orch schedules next EXPR [--tz ZONE] [--count N] [--from INSTANT]\n"
               "                          [--every DURATION] [--dst-skipped shift|skip]\n"
               "                          [--dst-repeated first|last|both] [--json]\n"
               "       orch schedules validate EXPR [--tz ZONE] [--json]\n"
               "with a server (--server URL or ORCH_SERVER, --api-key KEY or ORCH_API_KEY):\n"
               "       orch schedules list [--workflow NAME] [--json]\n"
               "       orch schedules show ID [--json]\n"
               "       orch schedules pause|resume|delete ID\n"
               "       orch schedules backfill ID --from TIME --until TIME [--json]\n");
        return EXIT_OK;
    }
    if (argc >= 1) {
        int code = cli_remote_schedules(argc, argv);
        if (code >= 0)
            return code;
    }
    cli_error("'orch schedules' needs a subcommand: next, validate, list, show, pause, resume, "
              "backfill or delete");
    return EXIT_USAGE;
}
