/*
 * Unit tests for src/sched/cron: every syntax form, the error messages, the
 * 22 worked cases of research/cron.md section 5, DST behaviour of cadence and
 * fixed-time schedules with each dst option in Europe/Berlin,
 * Australia/Sydney and Australia/Lord_Howe, the 3-hour catch-up limit, the
 * search horizon, and formatting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/err.h"
#include "sched/cron.h"
#include "sched/due.h"
#include "sched/tz.h"

/* ------------------------------------------------------------ helpers */

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    int64_t yy = y - (mo <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60;
}

static const struct tz *zone(const char *name)
{
    const struct tz *tz;
    struct err err = ERR_INIT;
    if (tz_load(name, &tz, &err))
        fail_msg("%s: %s", name, err.msg);
    return tz;
}

static struct cron_expr parse_ok(const char *expr)
{
    struct cron_expr ce;
    struct err err = ERR_INIT;
    if (cron_parse(expr, &ce, &err))
        fail_msg("'%s': %s", expr, err.msg);
    return ce;
}

static void expect_error(const char *expr, const char *msg)
{
    struct cron_expr ce;
    struct err err = ERR_INIT;
    int rc = cron_parse(expr, &ce, &err);
    if (rc != ERR_INVALID)
        fail_msg("'%s' was accepted", expr);
    if (strcmp(err.msg, msg) != 0)
        fail_msg("'%s': got \"%s\", want \"%s\"", expr, err.msg, msg);
    assert_int_equal(err.code, ERR_INVALID);
}

static uint64_t bits(const int *v, size_t n)
{
    uint64_t b = 0;
    for (size_t i = 0; i < n; i++)
        b |= (uint64_t)1 << v[i];
    return b;
}

#define BITS(...)   bits((const int[]){__VA_ARGS__}, sizeof((const int[]){__VA_ARGS__}) / sizeof(int))
#define ALL_MINUTES ((((uint64_t)1) << 60) - 1)

/* The next n fires from `start` (each strictly after the previous) must be `want`. */
static void expect_fires_dst(const char *expr, const char *zname, const struct cron_dst *dst,
                             int64_t start, const int64_t *want, size_t n)
{
    struct cron_expr ce = parse_ok(expr);
    const struct tz *tz = zone(zname);
    int64_t t = start;
    for (size_t i = 0; i < n; i++) {
        int64_t got = -1;
        int rc = cron_next(&ce, tz, dst, t, &got);
        if (rc || got != want[i]) {
            char g[CRON_INSTANT_MAX] = "", w[CRON_INSTANT_MAX];
            if (!rc)
                cron_format_instant(got, tz, g);
            cron_format_instant(want[i], tz, w);
            fail_msg("'%s' %s fire %zu: rc %d got %lld (%s), want %lld (%s)", expr, zname, i, rc,
                     (long long)got, g, (long long)want[i], w);
        }
        assert_true(got > t);
        t = got;
    }
}

#define FIRES(expr, zname, dst, start, ...)                                                        \
    expect_fires_dst(expr, zname, dst, start, (const int64_t[]){__VA_ARGS__},                      \
                     sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

static const struct cron_dst dst_default = CRON_DST_INIT;
static const struct cron_dst dst_skip = {CRON_SKIPPED_SKIP, CRON_REPEATED_FIRST};
static const struct cron_dst dst_last = {CRON_SKIPPED_SHIFT, CRON_REPEATED_LAST};
static const struct cron_dst dst_both = {CRON_SKIPPED_SHIFT, CRON_REPEATED_BOTH};

/* A zone built from a POSIX TZ footer alone (a minimal TZif v2 file). */
static struct tz *footer_zone(const char *footer)
{
    unsigned char buf[512];
    size_t len = 0;
    struct tz *tz = NULL;
    struct err err = ERR_INIT;
    for (int part = 0; part < 2; part++) {
        static const unsigned char head[] = {'T', 'Z', 'i', 'f', '2'};
        memcpy(buf + len, head, 5);
        memset(buf + len + 5, 0, 39);
        buf[len + 39] = 1; /* typecnt = 1 */
        buf[len + 43] = 4; /* charcnt = 4 */
        len += 44;
        memset(buf + len, 0, 6); /* one type: offset 0, no DST, abbreviation 0 */
        len += 6;
        memcpy(buf + len, "ABC", 4);
        len += 4;
    }
    buf[len++] = '\n';
    memcpy(buf + len, footer, strlen(footer));
    len += strlen(footer);
    buf[len++] = '\n';
    if (tz_parse("synthetic", buf, len, &tz, &err))
        fail_msg("footer '%s': %s", footer, err.msg);
    return tz;
}

/* ------------------------------------------------------------ syntax */

static void test_parse_star_and_values(void **state)
{
    struct cron_expr ce = parse_ok("* * * * *");
    (void)state;
    assert_true(ce.minutes == ALL_MINUTES);
    assert_int_equal(ce.hours, 0xffffff);
    assert_int_equal(ce.doms, 0xfffffffe);
    assert_int_equal(ce.months, 0x1ffe);
    assert_int_equal(ce.dows, 0x7f);
    assert_true(ce.dom_star && ce.dow_star && ce.cadence);

    ce = parse_ok("  5\t4 3 2 1  ");
    assert_true(ce.minutes == BITS(5));
    assert_int_equal(ce.hours, BITS(4));
    assert_int_equal(ce.doms, BITS(3));
    assert_int_equal(ce.months, BITS(2));
    assert_int_equal(ce.dows, BITS(1));
    assert_false(ce.dom_star || ce.dow_star || ce.cadence);

    ce = parse_ok("59 23 31 12 6");
    assert_true(ce.minutes == BITS(59));
    assert_int_equal(ce.doms, BITS(31));
}

static void test_parse_lists(void **state)
{
    struct cron_expr ce = parse_ok("1,2,5,9 0-4,8-12 1,15 * *");
    (void)state;
    assert_true(ce.minutes == BITS(1, 2, 5, 9));
    assert_int_equal(ce.hours, BITS(0, 1, 2, 3, 4, 8, 9, 10, 11, 12));
    assert_int_equal(ce.doms, BITS(1, 15));
    ce = parse_ok("5,5,5 * * * *"); /* duplicates are harmless */
    assert_true(ce.minutes == BITS(5));
}

static void test_parse_ranges(void **state)
{
    struct cron_expr ce = parse_ok("10-14 9-17 1-7 6-8 1-5");
    (void)state;
    assert_true(ce.minutes == BITS(10, 11, 12, 13, 14));
    assert_int_equal(ce.hours, BITS(9, 10, 11, 12, 13, 14, 15, 16, 17));
    assert_int_equal(ce.doms, BITS(1, 2, 3, 4, 5, 6, 7));
    assert_int_equal(ce.months, BITS(6, 7, 8));
    assert_int_equal(ce.dows, BITS(1, 2, 3, 4, 5));
    ce = parse_ok("7-7 * * * *");
    assert_true(ce.minutes == BITS(7));
}

static void test_parse_steps(void **state)
{
    struct cron_expr ce = parse_ok("*/25 */6 */10 */5 */2");
    (void)state;
    /* The step restarts at each enclosing unit: :00 :25 :50, days 1 11 21 31. */
    assert_true(ce.minutes == BITS(0, 25, 50));
    assert_int_equal(ce.hours, BITS(0, 6, 12, 18));
    assert_int_equal(ce.doms, BITS(1, 11, 21, 31));
    assert_int_equal(ce.months, BITS(1, 6, 11));
    assert_int_equal(ce.dows, BITS(0, 2, 4, 6));
    ce = parse_ok("10-30/7 9-17/4 * * *");
    assert_true(ce.minutes == BITS(10, 17, 24));
    assert_int_equal(ce.hours, BITS(9, 13, 17));
    ce = parse_ok("*/60 */100 * * *"); /* steps past the range keep only the first value */
    assert_true(ce.minutes == BITS(0));
    assert_int_equal(ce.hours, BITS(0));
    ce = parse_ok("*/1 * * * *");
    assert_true(ce.minutes == ALL_MINUTES);
}

static void test_parse_value_step(void **state)
{
    /* N/s means N-max/s (a croniter and robfig extension). */
    struct cron_expr ce = parse_ok("5/20 20/2 25/3 10/1 1/2");
    (void)state;
    assert_true(ce.minutes == BITS(5, 25, 45));
    assert_int_equal(ce.hours, BITS(20, 22));
    assert_int_equal(ce.doms, BITS(25, 28, 31));
    assert_int_equal(ce.months, BITS(10, 11, 12));
    /* Day-of-week max is 7, so 1/2 = 1,3,5,7 and 7 is Sunday. */
    assert_int_equal(ce.dows, BITS(0, 1, 3, 5));
    ce = parse_ok("0 0 * * 5/2");
    assert_int_equal(ce.dows, BITS(0, 5));
}

static void test_parse_names(void **state)
{
    struct cron_expr ce = parse_ok("0 0 * jan-mar mon,wed,FRI");
    (void)state;
    assert_int_equal(ce.months, BITS(1, 2, 3));
    assert_int_equal(ce.dows, BITS(1, 3, 5));
    ce = parse_ok("0 0 * JAN,Jul-sep,dEc sun-sat");
    assert_int_equal(ce.months, BITS(1, 7, 8, 9, 12));
    assert_int_equal(ce.dows, 0x7f);
    ce = parse_ok("0 0 * feb-11/3 mon-fri/2");
    assert_int_equal(ce.months, BITS(2, 5, 8, 11));
    assert_int_equal(ce.dows, BITS(1, 3, 5));
    ce = parse_ok("0 0 * 1-Mar Mon-5");
    assert_int_equal(ce.months, BITS(1, 2, 3));
    assert_int_equal(ce.dows, BITS(1, 2, 3, 4, 5));
    ce = parse_ok("0 0 * * fri/1"); /* name + step = name-max/step */
    assert_int_equal(ce.dows, BITS(0, 5, 6));
}

static void test_parse_sunday(void **state)
{
    struct cron_expr a = parse_ok("0 0 * * 0");
    struct cron_expr b = parse_ok("0 0 * * 7");
    struct cron_expr c = parse_ok("0 0 * * sun");
    struct cron_expr d = parse_ok("0 0 * * 5-7");
    struct cron_expr e = parse_ok("0 0 * * 0-7");
    (void)state;
    assert_int_equal(a.dows, BITS(0));
    assert_int_equal(b.dows, BITS(0));
    assert_int_equal(c.dows, BITS(0));
    assert_int_equal(d.dows, BITS(0, 5, 6));
    assert_int_equal(e.dows, 0x7f);
    assert_false(e.dow_star);                         /* restricted although it covers the week */
    assert_true(cron_matches(&b, 2026, 3, 8, 0, 0));  /* a Sunday */
    assert_false(cron_matches(&b, 2026, 3, 9, 0, 0)); /* a Monday */
}

static void test_parse_macros(void **state)
{
    static const char *pairs[][2] = {
        {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"}, {"  @DAILY ", "0 0 * * *"}, {"@Hourly", "0 * * * *"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        struct cron_expr a = parse_ok(pairs[i][0]);
        struct cron_expr b = parse_ok(pairs[i][1]);
        assert_memory_equal(&a, &b, sizeof(a));
    }
    assert_true(parse_ok("@hourly").cadence);
    assert_false(parse_ok("@daily").cadence);
    expect_error("@reboot", "@reboot is not supported: it is not a time schedule (run the "
                            "workflow from a start-up hook instead)");
    expect_error("@daily 5", "@daily takes no fields");
    expect_error("@every 5m", "unknown macro '@every' (expected @yearly, @annually, @monthly, "
                              "@weekly, @daily, @midnight or @hourly)");
    expect_error("@", "unknown macro '@' (expected @yearly, @annually, @monthly, @weekly, "
                      "@daily, @midnight or @hourly)");
}

static void test_parse_classification(void **state)
{
    static const struct {
        const char *expr;
        int cadence, dom_star, dow_star;
    } cases[] = {
        {"@hourly", 1, 1, 1},         {"*/15 * * * *", 1, 1, 1},  {"30 * * * *", 1, 1, 1},
        {"*/15 1 * * *", 1, 1, 1},    {"0 */2 * * *", 1, 1, 1},   {"*,5 3 * * *", 1, 1, 1},
        {"30 2 * * *", 0, 1, 1},      {"0 9 * * 1-5", 0, 1, 0},   {"0,30 8-17 * * *", 0, 1, 1},
        {"0-59 0-23 * * *", 0, 1, 1}, {"0 0 */2 * MON", 0, 0, 0}, {"0 0 1-31 * *", 0, 0, 1},
        {"0 0 * * */1", 0, 1, 0},     {"0 0 1 * *", 0, 0, 1},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cron_expr ce = parse_ok(cases[i].expr);
        if (ce.cadence != cases[i].cadence || ce.dom_star != cases[i].dom_star ||
            ce.dow_star != cases[i].dow_star)
            fail_msg("'%s': cadence %d dom_star %d dow_star %d", cases[i].expr, ce.cadence,
                     ce.dom_star, ce.dow_star);
    }
}

static void test_parse_errors(void **state)
{
    static const char *cases[][2] = {
        {"", "empty expression"},
        {"   ", "empty expression"},
        {"* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
        {"* * * * * *",
         "expected 5 fields, got 6 (seconds are not supported; use an 'every' schedule)"},
        {"0 * * * * * 2026",
         "expected 5 fields, got 7 (seconds are not supported; use an 'every' schedule)"},
        {"60 * * * *", "minute: 60 is out of range 0-59"},
        {"* 24 * * *", "hour: 24 is out of range 0-23"},
        {"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
        {"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
        {"* * * 0 *", "month: 0 is out of range 1-12"},
        {"* * * 13 *", "month: 13 is out of range 1-12"},
        {"* * * * 8", "day-of-week: 8 is out of range 0-7"},
        {"99999999999999999999 * * * *", "minute: 99999999999999999999 is out of range 0-59"},
        {"*/0 * * * *", "minute: step 0 is not allowed"},
        {"1-5/0 * * * *", "minute: step 0 is not allowed"},
        {"* 10-5 * * *", "hour: range 10-5 is reversed"},
        {"* * * * fri-mon", "day-of-week: range fri-mon is reversed"},
        {"* * * dec-jan *", "month: range dec-jan is reversed"},
        {"* * * * 7-1", "day-of-week: range 7-1 is reversed"},
        {"*/ * * * *", "minute: step must be a number"},
        {"*/x * * * *", "minute: step must be a number"},
        {"*/9999999 * * * *", "minute: step 9999999 is too large"},
        {"1, * * * *", "minute: empty item in list"},
        {",1 * * * *", "minute: empty item in list"},
        {"1,,2 * * * *", "minute: empty item in list"},
        {"1- * * * *", "minute: value missing"},
        {"-1 * * * *", "minute: unexpected character '-'"},
        {"*-5 * * * *", "minute: '*' cannot start a range"},
        {"** * * * *", "minute: unexpected character '*' in '**'"},
        {"1-2-3 * * * *", "minute: unexpected character '-' in '1-2-3'"},
        {"5x * * * *", "minute: unexpected character 'x' in '5x'"},
        {"1/2/3 * * * *", "minute: unexpected character '/' in '1/2/3'"},
        {"abc * * * *", "minute: 'abc' is not a number"},
        {"* * * * monday", "day-of-week: unknown name 'monday' (use sun, mon, ...)"},
        {"* * * january *", "month: unknown name 'january' (use jan, feb, ...)"},
        {"* * * * jan", "day-of-week: unknown name 'jan' (use sun, mon, ...)"},
        {"* * ? * *", "day-of-month: '?' is not supported (Quartz extension)"},
        {"* * L * *", "day-of-month: 'L' is not supported (Quartz extension; list the days "
                      "instead)"},
        {"* * 15W * *", "day-of-month: 'W' is not supported (Quartz extension)"},
        {"* * * * 5#3", "day-of-week: '#' is not supported (Quartz extension)"},
        {"* * * * 5L", "day-of-week: 'L' is not supported (Quartz extension)"},
        {"0 0 30 2 *", "never fires: day-of-month 30 does not occur in month 2"},
        {"0 0 31 4 *", "never fires: day-of-month 31 does not occur in month 4"},
        {"0 0 31 2,4,6,9,11 *", "never fires: day-of-month 31 does not occur in months 2,4,6,9,11"},
        {"0 0 30,31 feb *", "never fires: day-of-month 30,31 does not occur in month 2"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_error(cases[i][0], cases[i][1]);
}

static void test_parse_too_long(void **state)
{
    char buf[CRON_EXPR_MAX + 2];
    (void)state;
    memset(buf, ' ', sizeof(buf) - 1);
    buf[sizeof(buf) - 1] = '\0';
    memcpy(buf, "* * * * *", 9);
    expect_error(buf, "expression too long (more than 1024 characters)");
    buf[CRON_EXPR_MAX] = '\0';
    parse_ok(buf);
}

static void test_never_fires_is_only_an_error_when_nothing_matches(void **state)
{
    (void)state;
    parse_ok("0 0 29 2 *");      /* every leap year */
    parse_ok("0 0 31 4 MON");    /* both restricted: every Monday in April */
    parse_ok("0 0 30 2,3 *");    /* March 30 */
    parse_ok("0 0 31 * *");      /* seven months */
    parse_ok("0 0 29-31 feb *"); /* Feb 29 */
}

static void test_matches(void **state)
{
    struct cron_expr ce = parse_ok("30 4 1,15 * 5"); /* the crontab(5) example */
    (void)state;
    assert_true(cron_matches(&ce, 2026, 5, 1, 4, 30));  /* the 1st (a Friday too) */
    assert_true(cron_matches(&ce, 2026, 5, 15, 4, 30)); /* the 15th */
    assert_true(cron_matches(&ce, 2026, 5, 8, 4, 30));  /* a Friday */
    assert_false(cron_matches(&ce, 2026, 5, 7, 4, 30)); /* neither */
    assert_false(cron_matches(&ce, 2026, 5, 8, 4, 31));
    assert_false(cron_matches(&ce, 2026, 2, 30, 4, 30)); /* no such date */
    ce = parse_ok("* * 13 * fri");
    assert_true(cron_matches(&ce, 2026, 2, 13, 0, 0));
    assert_true(cron_matches(&ce, 2026, 3, 13, 0, 0)); /* OR: the 13th is a Friday */
    ce = parse_ok("* * * * fri");
    assert_false(cron_matches(&ce, 2026, 3, 12, 0, 0));
}

/* ------------------------------------------------ cron.md section 5 */

static void test_worked_cases(void **state)
{
    const struct cron_dst *d = &dst_default;
    (void)state;
    /* 1: spring gap, fixed-time: caught up at 03:00 EDT */
    FIRES("30 2 * * *", "America/New_York", d, utc(2026, 3, 7, 12, 0), utc(2026, 3, 8, 7, 0),
          utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30));
    /* 2: fall overlap, fixed-time: first pass only */
    FIRES("30 1 * * *", "America/New_York", d, utc(2026, 10, 31, 12, 0), utc(2026, 11, 1, 5, 30),
          utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30));
    /* 3: fall overlap, hourly cadence: both passes */
    FIRES("30 * * * *", "America/New_York", d, utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 4, 30),
          utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30));
    /* 4: spring gap, cadence */
    FIRES("*/20 * * * *", "America/New_York", d, utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 6, 40),
          utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 20));
    /* 5: minute wildcard in the repeated hour */
    FIRES("*/15 1 * * *", "America/New_York", d, utc(2026, 11, 1, 5, 20), utc(2026, 11, 1, 5, 30),
          utc(2026, 11, 1, 5, 45), utc(2026, 11, 1, 6, 0));
    /* 6: hour step across fall-back */
    FIRES("0 */2 * * *", "America/New_York", d, utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 4, 0),
          utc(2026, 11, 1, 7, 0), utc(2026, 11, 1, 9, 0));
    /* 7: London gap 01:00-02:00 */
    FIRES("30 1 * * *", "Europe/London", d, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0),
          utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30));
    /* 8: cadence through the repeated hour */
    FIRES("*/10 * * * *", "Europe/London", d, utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 0, 50),
          utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 10));
    /* 9: weekly on a 23-hour day (cronie cronnext bug #218) */
    FIRES("0 12 * * 0", "Europe/Berlin", d, utc(2022, 3, 24, 11, 0), utc(2022, 3, 27, 10, 0),
          utc(2022, 4, 3, 10, 0), utc(2022, 4, 10, 10, 0));
    /* 10: 7 = Sunday, 25-hour day */
    FIRES("5 4 * * 7", "Europe/Paris", d, utc(2026, 10, 24, 0, 0), utc(2026, 10, 25, 3, 5),
          utc(2026, 11, 1, 3, 5), utc(2026, 11, 8, 3, 5));
    /* 11: midnight does not exist */
    FIRES("0 0 * * *", "America/Havana", d, utc(2026, 3, 7, 12, 0), utc(2026, 3, 8, 5, 0),
          utc(2026, 3, 9, 4, 0), utc(2026, 3, 10, 4, 0));
    /* 12: 30-minute DST gap, cadence */
    FIRES("0 * * * *", "Australia/Lord_Howe", d, utc(2019, 10, 5, 15, 13), utc(2019, 10, 5, 16, 0),
          utc(2019, 10, 5, 17, 0), utc(2019, 10, 5, 18, 0));
    /* 13: 30-minute DST gap, fixed-time */
    FIRES("15 2 * * *", "Australia/Lord_Howe", d, utc(2019, 10, 5, 12, 0), utc(2019, 10, 5, 15, 30),
          utc(2019, 10, 6, 15, 15), utc(2019, 10, 7, 15, 15));
    /* 14: southern fall-back, fixed-time */
    FIRES("30 2 * * 0", "Australia/Sydney", d, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 15, 30),
          utc(2026, 4, 11, 16, 30), utc(2026, 4, 18, 16, 30));
    /* 15: skipped calendar day (24-hour jump): dropped, not caught up */
    FIRES("0 12 * * *", "Pacific/Apia", d, utc(2011, 12, 29, 0, 0), utc(2011, 12, 29, 22, 0),
          utc(2011, 12, 30, 22, 0), utc(2011, 12, 31, 22, 0));
    /* 16: +05:30, no DST */
    FIRES("0 9 * * 1-5", "Asia/Kolkata", d, utc(2026, 1, 2, 0, 0), utc(2026, 1, 2, 3, 30),
          utc(2026, 1, 5, 3, 30), utc(2026, 1, 6, 3, 30));
    /* 17: DOM/DOW OR rule */
    FIRES("0 0 1 * MON", "UTC", d, utc(2024, 1, 1, 0, 0), utc(2024, 1, 8, 0, 0),
          utc(2024, 1, 15, 0, 0), utc(2024, 1, 22, 0, 0));
    /* 18: a step counts as restricted (Vixie differs) */
    FIRES("0 0 */2 * MON", "UTC", d, utc(2024, 1, 1, 0, 0), utc(2024, 1, 3, 0, 0),
          utc(2024, 1, 5, 0, 0), utc(2024, 1, 7, 0, 0));
    /* 19: the first-Sunday trick is an OR here (Vixie only) */
    FIRES("0 0 1-7 * */7", "UTC", d, utc(2024, 1, 1, 0, 0), utc(2024, 1, 2, 0, 0),
          utc(2024, 1, 3, 0, 0), utc(2024, 1, 4, 0, 0));
    /* 20: leap day */
    FIRES("0 0 29 2 *", "UTC", d, utc(2025, 1, 1, 0, 0), utc(2028, 2, 29, 0, 0),
          utc(2032, 2, 29, 0, 0), utc(2036, 2, 29, 0, 0));
    /* 21: skips short months; the start is exclusive */
    FIRES("0 0 31 * *", "UTC", d, utc(2026, 1, 31, 0, 0), utc(2026, 3, 31, 0, 0),
          utc(2026, 5, 31, 0, 0), utc(2026, 7, 31, 0, 0));
    /* 22: year rollover, start exclusive */
    FIRES("59 23 31 12 *", "UTC", d, utc(2026, 12, 31, 23, 59), utc(2027, 12, 31, 23, 59),
          utc(2028, 12, 31, 23, 59), utc(2029, 12, 31, 23, 59));
}

/* ------------------------------------------------------------ DST */

/* Berlin 2026: gap 02:00-03:00 on 03-29 (01:00Z), overlap 02:00-03:00 on 10-25 (00:00-02:00Z). */
static void test_berlin_fixed(void **state)
{
    const char *z = "Europe/Berlin";
    (void)state;
    FIRES("30 2 * * *", z, &dst_default, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0),
          utc(2026, 3, 30, 0, 30));
    FIRES("30 2 * * *", z, &dst_skip, utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 0, 30));
    FIRES("30 2 * * *", z, &dst_last, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 1, 0));
    FIRES("30 2 * * *", z, &dst_default, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 30),
          utc(2026, 10, 26, 1, 30));
    FIRES("30 2 * * *", z, &dst_skip, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 30),
          utc(2026, 10, 26, 1, 30));
    FIRES("30 2 * * *", z, &dst_last, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 1, 30),
          utc(2026, 10, 26, 1, 30));
    FIRES("30 2 * * *", z, &dst_both, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 30),
          utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 1, 30));
    /* Starting between the two passes. */
    FIRES("30 2 * * *", z, &dst_default, utc(2026, 10, 25, 0, 45), utc(2026, 10, 26, 1, 30));
    FIRES("30 2 * * *", z, &dst_last, utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 30));
    FIRES("30 2 * * *", z, &dst_both, utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 1, 30));
    /* Several skipped wall times coalesce into one fire at the end of the gap. */
    FIRES("0,15,30,45 2 * * *", z, &dst_default, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0),
          utc(2026, 3, 30, 0, 0));
    FIRES("0,30 2,3 * * *", z, &dst_default, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0),
          utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 0));
    FIRES("0,30 2,3 * * *", z, &dst_skip, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 0),
          utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 0));
    /* The fire at the end of the gap is an instant like any other: exclusive start. */
    FIRES("30 2 * * *", z, &dst_default, utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30));
    FIRES("30 2 * * *", z, &dst_default, utc(2026, 3, 29, 0, 59), utc(2026, 3, 29, 1, 0));
    /* The footer rule: 2090's gap is on March 26. */
    FIRES("30 2 * * *", z, &dst_default, utc(2090, 3, 25, 12, 0), utc(2090, 3, 26, 1, 0),
          utc(2090, 3, 27, 0, 30));
}

static void test_berlin_cadence(void **state)
{
    const char *z = "Europe/Berlin";
    const struct cron_dst *all[] = {&dst_default, &dst_skip, &dst_last, &dst_both};
    (void)state;
    /* The dst options do not apply to cadence schedules. */
    for (size_t i = 0; i < 4; i++) {
        FIRES("30 * * * *", z, all[i], utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 0, 30),
              utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2, 30));
        FIRES("30 * * * *", z, all[i], utc(2026, 10, 24, 23, 0), utc(2026, 10, 24, 23, 30),
              utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 25, 2, 30));
        FIRES("*/30 2 * * *", z, all[i], utc(2026, 3, 28, 12, 0), utc(2026, 3, 30, 0, 0));
        FIRES("*/30 2 * * *", z, all[i], utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 0, 0),
              utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30),
              utc(2026, 10, 26, 1, 0));
    }
    FIRES("@hourly", z, &dst_default, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 0),
          utc(2026, 3, 29, 2, 0));
}

/*
 * Sydney 2026: fall back 03:00 AEDT -> 02:00 AEST at 04-04 16:00Z (overlap
 * 02:00-03:00), spring forward 02:00 AEST -> 03:00 AEDT at 10-03 16:00Z.
 */
static void test_sydney(void **state)
{
    const char *z = "Australia/Sydney";
    (void)state;
    FIRES("30 2 * * *", z, &dst_default, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 15, 30),
          utc(2026, 4, 5, 16, 30));
    FIRES("30 2 * * *", z, &dst_last, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 16, 30),
          utc(2026, 4, 5, 16, 30));
    FIRES("30 2 * * *", z, &dst_both, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 15, 30),
          utc(2026, 4, 4, 16, 30), utc(2026, 4, 5, 16, 30));
    FIRES("30 2 * * *", z, &dst_default, utc(2026, 10, 3, 0, 0), utc(2026, 10, 3, 16, 0),
          utc(2026, 10, 4, 15, 30));
    FIRES("30 2 * * *", z, &dst_skip, utc(2026, 10, 3, 0, 0), utc(2026, 10, 4, 15, 30));
    FIRES("*/30 2 * * *", z, &dst_default, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 15, 0),
          utc(2026, 4, 4, 15, 30), utc(2026, 4, 4, 16, 0), utc(2026, 4, 4, 16, 30),
          utc(2026, 4, 5, 16, 0));
    FIRES("*/30 2 * * *", z, &dst_skip, utc(2026, 10, 3, 0, 0), utc(2026, 10, 4, 15, 0));
    /* 2090 from the footer: fall back 04-01 16:00Z, spring forward 09-30 16:00Z. */
    FIRES("30 2 * * *", z, &dst_both, utc(2090, 4, 1, 0, 0), utc(2090, 4, 1, 15, 30),
          utc(2090, 4, 1, 16, 30));
    FIRES("30 2 * * *", z, &dst_default, utc(2090, 9, 30, 0, 0), utc(2090, 9, 30, 16, 0));
}

/*
 * Lord Howe 2026: 02:00 (+11) -> 01:30 (+10:30) at 04-04 15:00Z (overlap
 * 01:30-02:00), 02:00 (+10:30) -> 02:30 (+11) at 10-03 15:30Z (gap 02:00-02:30).
 */
static void test_lord_howe(void **state)
{
    const char *z = "Australia/Lord_Howe";
    (void)state;
    FIRES("45 1 * * *", z, &dst_default, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 14, 45),
          utc(2026, 4, 5, 15, 15));
    FIRES("45 1 * * *", z, &dst_last, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 15, 15),
          utc(2026, 4, 5, 15, 15));
    FIRES("45 1 * * *", z, &dst_both, utc(2026, 4, 4, 0, 0), utc(2026, 4, 4, 14, 45),
          utc(2026, 4, 4, 15, 15), utc(2026, 4, 5, 15, 15));
    FIRES("15 2 * * *", z, &dst_default, utc(2026, 10, 3, 0, 0), utc(2026, 10, 3, 15, 30),
          utc(2026, 10, 4, 15, 15));
    FIRES("15 2 * * *", z, &dst_skip, utc(2026, 10, 3, 0, 0), utc(2026, 10, 4, 15, 15));
    FIRES("*/15 * * * *", z, &dst_default, utc(2026, 10, 3, 15, 20), utc(2026, 10, 3, 15, 30),
          utc(2026, 10, 3, 15, 45));
    FIRES("*/15 * * * *", z, &dst_default, utc(2026, 4, 4, 14, 20), utc(2026, 4, 4, 14, 30),
          utc(2026, 4, 4, 14, 45), utc(2026, 4, 4, 15, 0), utc(2026, 4, 4, 15, 15),
          utc(2026, 4, 4, 15, 30));
    FIRES("*/15 * * * *", z, &dst_last, utc(2026, 4, 4, 14, 20), utc(2026, 4, 4, 14, 30),
          utc(2026, 4, 4, 14, 45), utc(2026, 4, 4, 15, 0));
}

static void test_catchup_limit(void **state)
{
    /* DST of exactly 3 hours is caught up, 3 hours and a minute is a correction. */
    struct tz *three = footer_zone("AAA0BBB-3,M3.5.0/1,M10.5.0/4");
    struct tz *more = footer_zone("AAA0BBB-3:01,M3.5.0/1,M10.5.0/4");
    struct cron_expr ce = parse_ok("30 2 * * *");
    int64_t t;
    (void)state;
    /* 2026-03-29 01:00 local (= 01:00Z) jumps to 04:00 or 04:01. */
    assert_int_equal(cron_next(&ce, three, NULL, utc(2026, 3, 28, 12, 0), &t), 0);
    assert_int_equal(t, utc(2026, 3, 29, 1, 0));
    assert_int_equal(cron_next(&ce, more, NULL, utc(2026, 3, 28, 12, 0), &t), 0);
    assert_int_equal(t, utc(2026, 3, 29, 23, 29)); /* 03-30 02:30 +03:01 */
    /* Antarctica/Troll: +00 -> +02, a 2-hour gap, caught up. */
    FIRES("30 1 * * *", "Antarctica/Troll", &dst_default, utc(2026, 3, 28, 12, 0),
          utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 23, 30));
    tz_free(three);
    tz_free(more);
}

static void test_horizon(void **state)
{
    /*
     * A 24:59 jump every February 29 (or March 1) at 00:00: Feb 29 never
     * exists, and the gap is too long to catch up. Nothing fires in 30 years.
     */
    struct tz *tz = footer_zone("AAA0BBB-24:59,59/0,J365/23");
    struct cron_expr fixed = parse_ok("0 12 29 2 *");
    struct cron_expr cad = parse_ok("*/5 * 29 2 *");
    int64_t t = 0;
    (void)state;
    assert_int_equal(cron_next(&fixed, tz, NULL, utc(2026, 1, 1, 0, 0), &t), ERR_NOT_FOUND);
    assert_int_equal(cron_next(&cad, tz, NULL, utc(2026, 1, 1, 0, 0), &t), ERR_NOT_FOUND);
    tz_free(tz);

    /* Out-of-range starts are rejected; the horizon itself is ~30 years. */
    assert_int_equal(cron_next(&fixed, tz_utc(), NULL, INT64_MAX, &t), ERR_INVALID);
    assert_int_equal(cron_next(&fixed, tz_utc(), NULL, INT64_MIN, &t), ERR_INVALID);
    assert_int_equal(cron_next(&fixed, tz_utc(), NULL, TZ_TIME_MAX - CRON_HORIZON_S, &t),
                     ERR_INVALID);
    assert_int_equal(cron_next(&fixed, tz_utc(), NULL, utc(2096, 3, 1, 0, 0), &t), 0);
    assert_int_equal(t, utc(2104, 2, 29, 12, 0)); /* 2100 is not a leap year */
    /* Far past and future work too. */
    assert_int_equal(cron_next(&fixed, tz_utc(), NULL, utc(1600, 1, 1, 0, 0), &t), 0);
    assert_int_equal(t, utc(1600, 2, 29, 12, 0));
    assert_int_equal(cron_next(&fixed, zone("Europe/Berlin"), NULL, utc(9999, 1, 1, 0, 0), &t), 0);
    assert_int_equal(t, utc(10000, 2, 29, 11, 0));
}

/*
 * sched_next_due(): the one next-due function of the engine, the API and the
 * CLI. The cases each of their former versions handled: intervals counted
 * from the epoch (exact multiples, before 1970, one second), the cron path
 * with its DST rules and its horizon, and one bound for both kinds.
 */
static void test_next_due_interval(void **state)
{
    struct sched_rule every = {NULL, NULL, 60};
    int64_t t = 0;
    (void)state;

    /* Strictly after: an exact multiple moves on to the next one. */
    assert_int_equal(sched_next_due(&every, NULL, 59, &t), 0);
    assert_int_equal(t, 60);
    assert_int_equal(sched_next_due(&every, NULL, 60, &t), 0);
    assert_int_equal(t, 120);
    assert_int_equal(sched_next_due(&every, NULL, 0, &t), 0);
    assert_int_equal(t, 60);
    /* Before 1970 the multiples are floored, not truncated toward zero. */
    assert_int_equal(sched_next_due(&every, NULL, -1, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(sched_next_due(&every, NULL, -60, &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(sched_next_due(&every, NULL, -61, &t), 0);
    assert_int_equal(t, -60);
    /* The zone plays no part: the same instants in any zone. */
    assert_int_equal(sched_next_due(&every, zone("Asia/Kolkata"), 59, &t), 0);
    assert_int_equal(t, 60);
    /* One second: the next second. */
    every.every_s = 1;
    assert_int_equal(sched_next_due(&every, NULL, utc(2026, 3, 29, 1, 0), &t), 0);
    assert_int_equal(t, utc(2026, 3, 29, 1, 0) + 1);
    /* Intervals that do not divide a day still count from the epoch. */
    every.every_s = 7 * 60;
    assert_int_equal(sched_next_due(&every, NULL, utc(2026, 1, 1, 0, 0), &t), 0);
    assert_int_equal(t % (7 * 60), 0);
    assert_true(t > utc(2026, 1, 1, 0, 0) && t <= utc(2026, 1, 1, 0, 7));
    /* Interval bounds: 1 s to SCHED_EVERY_MAX_S; *out_s untouched on error. */
    t = 42;
    every.every_s = 0;
    assert_int_equal(sched_next_due(&every, NULL, 0, &t), ERR_INVALID);
    every.every_s = -60;
    assert_int_equal(sched_next_due(&every, NULL, 0, &t), ERR_INVALID);
    every.every_s = SCHED_EVERY_MAX_S + 1;
    assert_int_equal(sched_next_due(&every, NULL, 0, &t), ERR_INVALID);
    assert_int_equal(t, 42);
    every.every_s = SCHED_EVERY_MAX_S;
    assert_int_equal(sched_next_due(&every, NULL, 0, &t), 0);
    assert_int_equal(t, SCHED_EVERY_MAX_S);
}

static void test_next_due_cron(void **state)
{
    struct cron_expr fixed = parse_ok("30 2 * * *");
    struct sched_rule rule = {&fixed, NULL, 0};
    const struct tz *berlin = zone("Europe/Berlin");
    int64_t t = 0, want = 0;
    (void)state;

    /* The same instants as cron_next(), with the default and given DST rules. */
    assert_int_equal(sched_next_due(&rule, berlin, utc(2026, 3, 28, 12, 0), &t), 0);
    assert_int_equal(t, utc(2026, 3, 29, 1, 0));
    rule.dst = &dst_skip;
    assert_int_equal(sched_next_due(&rule, berlin, utc(2026, 3, 28, 12, 0), &t), 0);
    assert_int_equal(t, utc(2026, 3, 30, 0, 30));
    assert_int_equal(cron_next(&fixed, berlin, &dst_skip, utc(2026, 3, 28, 12, 0), &want), 0);
    assert_int_equal(t, want);
    /* An interval's every_s is ignored by a cron rule. */
    rule.every_s = -1;
    assert_int_equal(sched_next_due(&rule, berlin, utc(2026, 3, 28, 12, 0), &t), 0);
    assert_int_equal(t, want);
    /* A cron rule needs its zone. */
    t = 42;
    assert_int_equal(sched_next_due(&rule, NULL, 0, &t), ERR_INVALID);
    assert_int_equal(t, 42);
    /* Nothing within the horizon passes through as ERR_NOT_FOUND. */
    {
        struct tz *tz = footer_zone("AAA0BBB-24:59,59/0,J365/23");
        struct cron_expr feb29 = parse_ok("0 12 29 2 *");
        struct sched_rule never = {&feb29, NULL, 0};
        assert_int_equal(sched_next_due(&never, tz, utc(2026, 1, 1, 0, 0), &t), ERR_NOT_FOUND);
        tz_free(tz);
    }
}

static void test_next_due_bound(void **state)
{
    struct cron_expr every_minute = parse_ok("* * * * *");
    struct sched_rule cron = {&every_minute, NULL, 0};
    struct sched_rule every = {NULL, NULL, 3600};
    const struct sched_rule *rules[] = {&cron, &every};
    char when[CRON_INSTANT_MAX];
    int64_t t;
    (void)state;

    /* One bound for both kinds, the one cron_next() has. */
    assert_int_equal(SCHED_AFTER_MIN_S, CRON_AFTER_MIN_S);
    assert_int_equal(SCHED_AFTER_MAX_S, CRON_AFTER_MAX_S);
    for (size_t i = 0; i < 2; i++) {
        const struct sched_rule *r = rules[i];
        t = 42;
        assert_int_equal(sched_next_due(r, tz_utc(), SCHED_AFTER_MIN_S - 1, &t), ERR_INVALID);
        assert_int_equal(sched_next_due(r, tz_utc(), SCHED_AFTER_MAX_S + 1, &t), ERR_INVALID);
        assert_int_equal(sched_next_due(r, tz_utc(), INT64_MIN, &t), ERR_INVALID);
        assert_int_equal(sched_next_due(r, tz_utc(), INT64_MAX, &t), ERR_INVALID);
        assert_int_equal(t, 42);
        /* Inside the bound, the due time is inside the zones' range: it formats. */
        assert_int_equal(sched_next_due(r, tz_utc(), SCHED_AFTER_MIN_S, &t), 0);
        assert_true(t > SCHED_AFTER_MIN_S);
        assert_int_equal(cron_format_instant(t, tz_utc(), when), 0);
        assert_int_equal(sched_next_due(r, zone("Pacific/Kiritimati"), SCHED_AFTER_MAX_S, &t), 0);
        assert_true(t > SCHED_AFTER_MAX_S && t <= TZ_TIME_MAX);
        assert_int_equal(cron_format_instant(t, zone("Pacific/Kiritimati"), when), 0);
    }
    /* The longest interval at the top of the bound still lands inside the range. */
    every.every_s = SCHED_EVERY_MAX_S;
    assert_int_equal(sched_next_due(&every, tz_utc(), SCHED_AFTER_MAX_S, &t), 0);
    assert_true(t > SCHED_AFTER_MAX_S && t <= TZ_TIME_MAX);
    assert_int_equal(cron_format_instant(t, tz_utc(), when), 0);
}

static void test_speed(void **state)
{
    static const char *exprs[] = {"0 0 29 2 1", "0 0 29 2 *",  "59 23 31 12 *",        "* * * * *",
                                  "0 0 31 * *", "0 12 13 * 5", "*/7 3-5 */3 feb,aug 0"};
    static const char *zones[] = {"UTC", "America/New_York", "Pacific/Apia", "Australia/Lord_Howe"};
    clock_t t0 = clock();
    long calls = 0;
    (void)state;
    for (size_t e = 0; e < sizeof(exprs) / sizeof(exprs[0]); e++) {
        struct cron_expr ce = parse_ok(exprs[e]);
        for (size_t z = 0; z < sizeof(zones) / sizeof(zones[0]); z++) {
            const struct tz *tz = zone(zones[z]);
            int64_t t = utc(1990, 1, 1, 0, 0);
            for (int i = 0; i < 300; i++) {
                assert_int_equal(cron_next(&ce, tz, NULL, t, &t), 0);
                t += 86400 * 37; /* hop around the calendar */
                calls++;
            }
        }
    }
    /* ~8400 calls; even under ASan this takes well under a second. */
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 10.0);
    assert_int_equal(calls, 8400);
}

static void test_format(void **state)
{
    char buf[CRON_INSTANT_MAX];
    (void)state;
    assert_int_equal(cron_format_instant(utc(2026, 3, 8, 7, 0), zone("America/New_York"), buf), 0);
    assert_string_equal(buf, "2026-03-08T03:00:00-04:00");
    assert_int_equal(cron_format_instant(utc(2026, 1, 2, 3, 30), zone("Asia/Kolkata"), buf), 0);
    assert_string_equal(buf, "2026-01-02T09:00:00+05:30");
    assert_int_equal(cron_format_instant(0, tz_utc(), buf), 0);
    assert_string_equal(buf, "1970-01-01T00:00:00+00:00");
    assert_int_equal(cron_format_instant(utc(2011, 12, 30, 10, 0), zone("Pacific/Apia"), buf), 0);
    assert_string_equal(buf, "2011-12-31T00:00:00+14:00");
    /* Amsterdam's local mean time until 1937 was +00:19:32. */
    assert_int_equal(cron_format_instant(utc(1920, 1, 1, 0, 0), zone("Europe/Amsterdam"), buf), 0);
    assert_string_equal(buf, "1920-01-01T00:19:32+00:19:32");
    assert_int_equal(cron_format_instant(INT64_MAX, tz_utc(), buf), ERR_INVALID);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_star_and_values),
        cmocka_unit_test(test_parse_lists),
        cmocka_unit_test(test_parse_ranges),
        cmocka_unit_test(test_parse_steps),
        cmocka_unit_test(test_parse_value_step),
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_parse_sunday),
        cmocka_unit_test(test_parse_macros),
        cmocka_unit_test(test_parse_classification),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_too_long),
        cmocka_unit_test(test_never_fires_is_only_an_error_when_nothing_matches),
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_worked_cases),
        cmocka_unit_test(test_berlin_fixed),
        cmocka_unit_test(test_berlin_cadence),
        cmocka_unit_test(test_sydney),
        cmocka_unit_test(test_lord_howe),
        cmocka_unit_test(test_catchup_limit),
        cmocka_unit_test(test_horizon),
        cmocka_unit_test(test_next_due_interval),
        cmocka_unit_test(test_next_due_cron),
        cmocka_unit_test(test_next_due_bound),
        cmocka_unit_test(test_speed),
        cmocka_unit_test(test_format),
    };
    int rc;
    unsetenv("ORCH_TZDIR");
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    tz_cache_clear();
    return rc;
}
