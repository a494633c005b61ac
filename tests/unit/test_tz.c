/*
 * Unit tests for src/sched/tz: known offsets and transitions of real zones
 * (Debian's tzdata), footer rules far past the tables, gaps and overlaps, bad
 * names, corrupt and truncated files (built here byte by byte and loaded from
 * a temporary ORCH_TZDIR), the cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "sched/tz.h"

#define H 3600

/* ------------------------------------------------------------ helpers */

static const struct tz *load(const char *name)
{
    struct err err = ERR_INIT;
    const struct tz *tz = NULL;
    int rc = tz_load(name, &tz, &err);
    if (rc)
        fail_msg("tz_load(%s): %s", name, err.msg);
    assert_non_null(tz);
    return tz;
}

static int offset_at(const struct tz *tz, int64_t t)
{
    int off = 12345678;
    int64_t local;
    assert_int_equal(tz_utc_to_local(tz, t, &local, &off), 0);
    assert_true(local == t + off);
    return off;
}

/* The next transition after `after` must be exactly (t, before, after_off). */
static void expect_transition(const struct tz *tz, int64_t after, int64_t t, int before,
                              int after_off)
{
    int64_t got;
    int b, a;
    assert_int_equal(tz_next_transition(tz, after, &got, &b, &a), 0);
    assert_int_equal(got, t);
    assert_int_equal(b, before);
    assert_int_equal(a, after_off);
    assert_int_equal(offset_at(tz, t - 1), before);
    assert_int_equal(offset_at(tz, t), after_off);
}

static int l2u(const struct tz *tz, int64_t local, int64_t out[2])
{
    out[0] = out[1] = -1;
    return tz_local_to_utc(tz, local, out);
}

/* A gap at transition t from `before` to `after`: edges, inside, and outside. */
static void expect_gap(const struct tz *tz, int64_t t, int before, int after)
{
    int64_t u[2], end;
    int gap;
    assert_true(after > before);
    assert_int_equal(l2u(tz, t + before - 1, u), 1);
    assert_int_equal(u[0], t - 1);
    for (int64_t l = t + before; l < t + after; l += (after - before) / 4) {
        assert_int_equal(l2u(tz, l, u), 0);
        assert_int_equal(tz_gap_end(tz, l, &end, &gap), 0);
        assert_int_equal(end, t);
        assert_int_equal(gap, after - before);
    }
    assert_int_equal(l2u(tz, t + after - 1, u), 0);
    assert_int_equal(l2u(tz, t + after, u), 1);
    assert_int_equal(u[0], t);
    assert_int_equal(tz_gap_end(tz, t + after, &end, &gap), ERR_NOT_FOUND);
}

/* An overlap at transition t from `before` down to `after`. */
static void expect_overlap(const struct tz *tz, int64_t t, int before, int after)
{
    int64_t u[2];
    assert_true(after < before);
    assert_int_equal(l2u(tz, t + after - 1, u), 1);
    assert_int_equal(u[0], t + after - before - 1);
    assert_int_equal(l2u(tz, t + after, u), 2);
    assert_int_equal(u[0], t + after - before);
    assert_int_equal(u[1], t);
    assert_int_equal(l2u(tz, t + before - 1, u), 2);
    assert_int_equal(u[0], t - 1);
    assert_int_equal(u[1], t + before - after - 1);
    assert_int_equal(l2u(tz, t + before, u), 1);
    assert_int_equal(u[0], t + before - after);
    assert_int_equal(tz_gap_end(tz, t + after, NULL, NULL), ERR_NOT_FOUND);
}

/* Every instant maps to a wall time whose instants include it. */
static void expect_roundtrip(const struct tz *tz, int64_t from, int64_t to, int64_t step)
{
    for (int64_t t = from; t < to; t += step) {
        int64_t local, u[2];
        int n;
        assert_int_equal(tz_utc_to_local(tz, t, &local, NULL), 0);
        n = l2u(tz, local, u);
        assert_true(n == 1 || n == 2);
        assert_true(u[0] == t || (n == 2 && u[1] == t));
    }
}

/* ----------------------------------------------------- a TZif builder */

struct ttype {
    int32_t utoff;
    int isdst;
};

struct tzif {
    unsigned char buf[4096];
    size_t len;
};

static void put8(struct tzif *f, unsigned v)
{
    assert_true(f->len < sizeof(f->buf));
    f->buf[f->len++] = (unsigned char)v;
}

static void put32(struct tzif *f, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        put8(f, (v >> (8 * i)) & 0xff);
}

static void put64(struct tzif *f, uint64_t v)
{
    put32(f, (uint32_t)(v >> 32));
    put32(f, (uint32_t)v);
}

static void put_header(struct tzif *f, int version, uint32_t timecnt, uint32_t typecnt,
                       uint32_t leapcnt)
{
    memcpy(f->buf + f->len, "TZif", 4);
    f->len += 4;
    put8(f, (unsigned)version);
    for (int i = 0; i < 15; i++)
        put8(f, 0);
    put32(f, 0);       /* isutcnt */
    put32(f, 0);       /* isstdcnt */
    put32(f, leapcnt); /* leapcnt */
    put32(f, timecnt);
    put32(f, typecnt);
    put32(f, 4); /* charcnt: "ABC\0" */
}

static void put_block(struct tzif *f, int tsize, const int64_t *times, const uint8_t *idx,
                      size_t nt, const struct ttype *types, size_t ntypes, uint32_t leapcnt)
{
    for (size_t i = 0; i < nt; i++) {
        if (tsize == 8)
            put64(f, (uint64_t)times[i]);
        else
            put32(f, (uint32_t)(int32_t)times[i]);
    }
    for (size_t i = 0; i < nt; i++)
        put8(f, idx[i]);
    for (size_t i = 0; i < ntypes; i++) {
        put32(f, (uint32_t)types[i].utoff);
        put8(f, (unsigned)types[i].isdst);
        put8(f, 0);
    }
    put8(f, 'A');
    put8(f, 'B');
    put8(f, 'C');
    put8(f, 0);
    for (uint32_t i = 0; i < leapcnt; i++) {
        if (tsize == 8)
            put64(f, 78796800);
        else
            put32(f, 78796800);
        put32(f, i + 1);
    }
}

/*
 * A TZif file: version 0 (v1 data only) or '2'..'4' (a minimal v1 block, then
 * the 64-bit block and the footer; footer NULL = omit it, to corrupt the file).
 */
static void build(struct tzif *f, int version, const int64_t *times, const uint8_t *idx, size_t nt,
                  const struct ttype *types, size_t ntypes, const char *footer)
{
    static const struct ttype utc = {0, 0};
    f->len = 0;
    if (version == 0) {
        put_header(f, 0, (uint32_t)nt, (uint32_t)ntypes, 0);
        put_block(f, 4, times, idx, nt, types, ntypes, 0);
        return;
    }
    put_header(f, version, 0, 1, 0);
    put_block(f, 4, NULL, NULL, 0, &utc, 1, 0);
    put_header(f, version, (uint32_t)nt, (uint32_t)ntypes, 0);
    put_block(f, 8, times, idx, nt, types, ntypes, 0);
    if (footer) {
        put8(f, '\n');
        for (const char *p = footer; *p; p++)
            put8(f, (unsigned char)*p);
        put8(f, '\n');
    }
}

/* A zone with no transitions and only a footer rule. */
static struct tz *footer_zone(const char *footer, struct err *err, int *rc)
{
    struct tzif f;
    struct ttype t = {0, 0};
    struct tz *tz = NULL;
    build(&f, '2', NULL, NULL, 0, &t, 1, footer);
    *rc = tz_parse("test", f.buf, f.len, &tz, err);
    return tz;
}

static struct tz *must_footer_zone(const char *footer)
{
    struct err err = ERR_INIT;
    int rc;
    struct tz *tz = footer_zone(footer, &err, &rc);
    if (rc)
        fail_msg("footer '%s': %s", footer, err.msg);
    return tz;
}

static int64_t utc(int y, int mo, int d, int h, int mi)
{
    /* Days from civil, for test expectations (proleptic Gregorian). */
    int64_t yy = y - (mo <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60;
}

/* ------------------------------------------------------------ tests */

static void test_utc(void **state)
{
    const char *names[] = {"UTC", "Etc/UTC"};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        const struct tz *tz = load(names[i]);
        int64_t u[2];
        assert_string_equal(tz_name(tz), names[i]);
        assert_int_equal(offset_at(tz, 0), 0);
        assert_int_equal(offset_at(tz, utc(2090, 6, 1, 0, 0)), 0);
        assert_int_equal(offset_at(tz, -utc(2090, 6, 1, 0, 0)), 0);
        assert_int_equal(tz_next_transition(tz, 0, NULL, NULL, NULL), ERR_NOT_FOUND);
        assert_int_equal(l2u(tz, 1000, u), 1);
        assert_int_equal(u[0], 1000);
        assert_int_equal(tz_gap_end(tz, 1000, NULL, NULL), ERR_NOT_FOUND);
    }
    assert_string_equal(tz_name(tz_utc()), "UTC");
    assert_int_equal(offset_at(tz_utc(), 123456789), 0);
    assert_int_equal(tz_next_transition(tz_utc(), 0, NULL, NULL, NULL), ERR_NOT_FOUND);
    tz_free(NULL);
}

static void test_berlin(void **state)
{
    const struct tz *tz = load("Europe/Berlin");
    (void)state;
    assert_int_equal(offset_at(tz, utc(2026, 1, 15, 12, 0)), 1 * H);
    assert_int_equal(offset_at(tz, utc(2026, 7, 1, 12, 0)), 2 * H);
    /* 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET. */
    expect_transition(tz, utc(2026, 1, 1, 0, 0), 1774746000, 1 * H, 2 * H);
    expect_transition(tz, 1774746000, 1792890000, 2 * H, 1 * H);
    expect_gap(tz, 1774746000, 1 * H, 2 * H);
    expect_overlap(tz, 1792890000, 2 * H, 1 * H);
    /* Past the table (2037): the footer "CET-1CEST,M3.5.0,M10.5.0/3". */
    expect_transition(tz, utc(2090, 1, 1, 0, 0), 3794173200, 1 * H, 2 * H);
    expect_transition(tz, 3794173200, 3812922000, 2 * H, 1 * H);
    expect_gap(tz, 3794173200, 1 * H, 2 * H);
    expect_overlap(tz, 3812922000, 2 * H, 1 * H);
    expect_roundtrip(tz, utc(2025, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0), 1799);
    expect_roundtrip(tz, utc(2089, 12, 1, 0, 0), utc(2091, 1, 1, 0, 0), 3607);
    /* The table ends in 2037 and the footer continues seamlessly. */
    expect_transition(tz, utc(2037, 12, 1, 0, 0), utc(2038, 3, 28, 1, 0), 1 * H, 2 * H);
}

static void test_new_york(void **state)
{
    const struct tz *tz = load("America/New_York");
    (void)state;
    assert_int_equal(offset_at(tz, utc(2026, 1, 15, 12, 0)), -5 * H);
    assert_int_equal(offset_at(tz, utc(2026, 7, 1, 12, 0)), -4 * H);
    expect_transition(tz, utc(2026, 1, 1, 0, 0), 1772953200, -5 * H, -4 * H);
    expect_transition(tz, 1772953200, 1793512800, -4 * H, -5 * H);
    expect_gap(tz, 1772953200, -5 * H, -4 * H);
    expect_overlap(tz, 1793512800, -4 * H, -5 * H);
    /* "EST5EDT,M3.2.0,M11.1.0" in 2090: March 12 and November 5. */
    expect_transition(tz, utc(2090, 1, 1, 0, 0), 3792985200, -5 * H, -4 * H);
    expect_transition(tz, 3792985200, 3813544800, -4 * H, -5 * H);
    expect_gap(tz, 3792985200, -5 * H, -4 * H);
    expect_overlap(tz, 3813544800, -4 * H, -5 * H);
    /* Links resolve to the same data. */
    assert_int_equal(offset_at(load("US/Eastern"), utc(2026, 7, 1, 0, 0)), -4 * H);
    assert_string_equal(tz_name(load("US/Eastern")), "US/Eastern");
}

static void test_sydney(void **state)
{
    const struct tz *tz = load("Australia/Sydney");
    (void)state;
    /* Southern hemisphere: DST in January, standard time in July. */
    assert_int_equal(offset_at(tz, utc(2026, 1, 15, 0, 0)), 11 * H);
    assert_int_equal(offset_at(tz, utc(2026, 7, 1, 0, 0)), 10 * H);
    expect_transition(tz, utc(2026, 1, 1, 0, 0), 1775318400, 11 * H, 10 * H);
    expect_transition(tz, 1775318400, 1791043200, 10 * H, 11 * H);
    expect_overlap(tz, 1775318400, 11 * H, 10 * H);
    expect_gap(tz, 1791043200, 10 * H, 11 * H);
    expect_transition(tz, utc(2090, 1, 1, 0, 0), 3794745600, 11 * H, 10 * H);
    expect_transition(tz, 3794745600, 3810470400, 10 * H, 11 * H);
    expect_roundtrip(tz, utc(2089, 12, 1, 0, 0), utc(2091, 1, 1, 0, 0), 3607);
}

static void test_lord_howe(void **state)
{
    const struct tz *tz = load("Australia/Lord_Howe");
    (void)state;
    /* +10:30 standard, +11 DST: a 30-minute shift. */
    assert_int_equal(offset_at(tz, utc(2026, 7, 1, 0, 0)), 37800);
    assert_int_equal(offset_at(tz, utc(2026, 1, 1, 0, 0)), 39600);
    expect_transition(tz, utc(2026, 1, 1, 0, 0), 1775314800, 39600, 37800);
    expect_transition(tz, 1775314800, 1791041400, 37800, 39600);
    expect_overlap(tz, 1775314800, 39600, 37800);
    expect_gap(tz, 1791041400, 37800, 39600);
    expect_transition(tz, utc(2090, 1, 1, 0, 0), 3794742000, 39600, 37800);
    expect_transition(tz, 3794742000, 3810468600, 37800, 39600);
    expect_gap(tz, 3810468600, 37800, 39600);
}

static void test_apia(void **state)
{
    const struct tz *tz = load("Pacific/Apia");
    int64_t end;
    int gap;
    (void)state;
    /* 2011-12-29 24:00 -10:00 became 2011-12-31 00:00 +14:00: a whole day skipped. */
    expect_transition(tz, utc(2011, 10, 1, 0, 0), 1325239200, -10 * H, 14 * H);
    expect_gap(tz, 1325239200, -10 * H, 14 * H);
    assert_int_equal(tz_gap_end(tz, utc(2011, 12, 30, 12, 0), &end, &gap), 0);
    assert_int_equal(end, 1325239200);
    assert_int_equal(gap, 24 * H);
    /* DST ended for good in 2021: +13 ever after, also past the table. */
    expect_transition(tz, utc(2021, 1, 1, 0, 0), 1617458400, 14 * H, 13 * H);
    assert_int_equal(tz_next_transition(tz, 1617458400, NULL, NULL, NULL), ERR_NOT_FOUND);
    assert_int_equal(offset_at(tz, utc(2090, 1, 1, 0, 0)), 13 * H);
}

static void test_kolkata(void **state)
{
    const struct tz *tz = load("Asia/Kolkata");
    int64_t u[2];
    (void)state;
    assert_int_equal(offset_at(tz, utc(1980, 1, 1, 0, 0)), 19800);
    assert_int_equal(offset_at(tz, utc(2090, 6, 1, 0, 0)), 19800);
    assert_int_equal(tz_next_transition(tz, 0, NULL, NULL, NULL), ERR_NOT_FOUND);
    assert_int_equal(l2u(tz, utc(2026, 1, 2, 9, 0), u), 1);
    assert_int_equal(u[0], utc(2026, 1, 2, 3, 30));
}

static void test_footer_rules(void **state)
{
    struct tz *tz;
    (void)state;

    /* Mm.w.d with the default 02:00 and an explicit /3. */
    tz = must_footer_zone("CET-1CEST,M3.5.0,M10.5.0/3");
    expect_transition(tz, utc(2090, 1, 1, 0, 0), 3794173200, 1 * H, 2 * H);
    tz_free(tz);

    /* Jn: day 60 is March 1 in every year (February 29 is never counted). */
    tz = must_footer_zone("AAA3BBB,J60/2,J300/2");
    expect_transition(tz, utc(2024, 1, 1, 0, 0), utc(2024, 3, 1, 5, 0), -3 * H, -2 * H);
    expect_transition(tz, utc(2025, 1, 1, 0, 0), utc(2025, 3, 1, 5, 0), -3 * H, -2 * H);
    tz_free(tz);

    /* n: zero-based and February 29 counts, so day 59 is Feb 29 in a leap year. */
    tz = must_footer_zone("AAA3BBB,59/2,299/2");
    expect_transition(tz, utc(2024, 1, 1, 0, 0), utc(2024, 2, 29, 5, 0), -3 * H, -2 * H);
    expect_transition(tz, utc(2025, 1, 1, 0, 0), utc(2025, 3, 1, 5, 0), -3 * H, -2 * H);
    tz_free(tz);

    /* Negative rule time (America/Nuuk): last Sunday of March at -1:00 = Saturday 23:00. */
    tz = must_footer_zone("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    expect_transition(tz, utc(2026, 1, 1, 0, 0), utc(2026, 3, 29, 1, 0), -2 * H, -1 * H);
    expect_transition(tz, utc(2026, 3, 30, 0, 0), utc(2026, 10, 25, 1, 0), -1 * H, -2 * H);
    tz_free(tz);

    /* Times past 24h (Asia/Jerusalem: Thursday +26h = Friday 02:00; Gaza: +50h). */
    tz = must_footer_zone("IST-2IDT,M3.4.4/26,M10.5.0");
    expect_transition(tz, utc(2026, 1, 1, 0, 0), utc(2026, 3, 27, 0, 0), 2 * H, 3 * H);
    tz_free(tz);
    tz = must_footer_zone("EET-2EEST,M3.4.4/50,M10.4.4/50");
    expect_transition(tz, utc(2026, 1, 1, 0, 0), utc(2026, 3, 28, 0, 0), 2 * H, 3 * H);
    expect_transition(tz, utc(2026, 4, 1, 0, 0), utc(2026, 10, 23, 23, 0), 3 * H, 2 * H);
    tz_free(tz);

    /* Explicit DST offset and half hours (Lord Howe). */
    tz = must_footer_zone("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0");
    expect_transition(tz, utc(2090, 1, 1, 0, 0), 3794742000, 39600, 37800);
    tz_free(tz);

    /* Negative DST (Europe/Dublin): winter is the "DST" with the lower offset. */
    tz = must_footer_zone("IST-1GMT0,M10.5.0,M3.5.0/1");
    assert_int_equal(offset_at(tz, utc(2026, 1, 15, 0, 0)), 0);
    assert_int_equal(offset_at(tz, utc(2026, 7, 15, 0, 0)), 1 * H);
    expect_transition(tz, utc(2026, 1, 1, 0, 0), utc(2026, 3, 29, 1, 0), 0, 1 * H);
    tz_free(tz);

    /* DST all year: the end meets the next start, nothing ever changes. */
    tz = must_footer_zone("EST5EDT,0/0,J365/25");
    assert_int_equal(offset_at(tz, utc(2026, 1, 1, 0, 0)), -4 * H);
    assert_int_equal(offset_at(tz, utc(2026, 12, 31, 23, 59)), -4 * H);
    assert_int_equal(offset_at(tz, utc(2027, 1, 1, 4, 30)), -4 * H);
    assert_int_equal(tz_next_transition(tz, utc(2026, 1, 1, 0, 0), NULL, NULL, NULL),
                     ERR_NOT_FOUND);
    tz_free(tz);

    /* No DST, odd offsets with seconds, quoted names. */
    tz = must_footer_zone("<+0530>-5:30:15");
    assert_int_equal(offset_at(tz, 0), 5 * H + 30 * 60 + 15);
    tz_free(tz);
}

static void test_bad_footers(void **state)
{
    static const char *bad[] = {
        "EST5EDT",                    /* DST without a rule */
        "EST",                        /* no offset */
        "5",                          /* no name */
        "EST25",                      /* hour out of range */
        "EST5:60",                    /* minute out of range */
        "EST5EDT,M13.1.0,M11.1.0",    /* month 13 */
        "EST5EDT,M3.6.0,M11.1.0",     /* week 6 */
        "EST5EDT,M3.2.7,M11.1.0",     /* weekday 7 */
        "EST5EDT,M3.2.0",             /* one rule */
        "EST5EDT,M3.2.0,M11.1.0,",    /* trailing comma */
        "EST5EDT,J0,J100",            /* Julian day 0 */
        "EST5EDT,366,100",            /* day 366 */
        "EST5EDT,M3.2.0/168,M11.1.0", /* 168 hours */
        "<AB5",                       /* unterminated quote */
        "<>5",                        /* empty quoted name */
        "EST5EDT-25,M3.2.0,M11.1.0",  /* DST offset out of range */
        "EST5 ",                      /* trailing space */
    };
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct err err = ERR_INIT;
        int rc;
        struct tz *tz = footer_zone(bad[i], &err, &rc);
        if (rc != ERR_INVALID)
            fail_msg("footer '%s' accepted", bad[i]);
        assert_null(tz);
        assert_non_null(strstr(err.msg, "footer"));
    }
}

static void test_v1_file(void **state)
{
    static const int64_t times[] = {-100000, 1000000, 2000000};
    static const uint8_t idx[] = {1, 2, 1};
    static const struct ttype types[] = {{1234, 0}, {3600, 0}, {7200, 1}};
    struct tzif f;
    struct tz *tz = NULL;
    struct err err = ERR_INIT;
    (void)state;
    build(&f, 0, times, idx, 3, types, 3, NULL);
    assert_int_equal(tz_parse("v1", f.buf, f.len, &tz, &err), 0);
    assert_int_equal(offset_at(tz, -200000), 1234); /* type 0 before the first transition */
    assert_int_equal(offset_at(tz, 0), 3600);
    assert_int_equal(offset_at(tz, 1500000), 7200);
    assert_int_equal(offset_at(tz, 3000000), 3600); /* no footer: the last type stays */
    expect_transition(tz, 0, 1000000, 3600, 7200);
    expect_transition(tz, 1000000, 2000000, 7200, 3600);
    assert_int_equal(tz_next_transition(tz, 2000000, NULL, NULL, NULL), ERR_NOT_FOUND);
    tz_free(tz);
}

static void test_table_then_footer(void **state)
{
    /* Transitions that change only the DST flag are not transitions. */
    static const int64_t times[] = {100, 200, 300};
    static const uint8_t idx[] = {1, 2, 1};
    static const struct ttype types[] = {{0, 0}, {3600, 0}, {3600, 1}};
    struct tzif f;
    struct tz *tz = NULL;
    struct err err = ERR_INIT;
    (void)state;
    build(&f, '3', times, idx, 3, types, 3, "AAA-2");
    assert_int_equal(tz_parse("x", f.buf, f.len, &tz, &err), 0);
    expect_transition(tz, 0, 100, 0, 3600);
    /* The footer (+2) disagrees with the last type (+1): a change right after the table. */
    expect_transition(tz, 100, 301, 3600, 7200);
    assert_int_equal(offset_at(tz, 300), 3600);
    assert_int_equal(tz_next_transition(tz, 301, NULL, NULL, NULL), ERR_NOT_FOUND);
    tz_free(tz);

    /* An empty footer keeps the last type. */
    build(&f, '2', times, idx, 3, types, 3, "");
    assert_int_equal(tz_parse("x", f.buf, f.len, &tz, &err), 0);
    assert_int_equal(offset_at(tz, 1000000), 3600);
    tz_free(tz);
}

static void expect_corrupt(const void *data, size_t len, const char *what)
{
    struct err err = ERR_INIT;
    struct tz *tz = (struct tz *)1;
    int rc = tz_parse("bad", data, len, &tz, &err);
    if (rc != ERR_INVALID)
        fail_msg("%s: accepted (rc %d)", what, rc);
    assert_null(tz);
    assert_true(strlen(err.msg) > 0);
}

static void test_corrupt(void **state)
{
    static const int64_t times[] = {100, 50};
    static const uint8_t idx[] = {0, 0};
    static const uint8_t bad_idx[] = {0, 5};
    static const struct ttype types[] = {{3600, 0}};
    static const struct ttype huge[] = {{26 * 3600, 0}};
    static const struct ttype baddst[] = {{0, 2}};
    struct tzif f;
    (void)state;

    expect_corrupt("", 0, "empty");
    expect_corrupt("TZif2", 5, "short");
    build(&f, '2', times, idx, 1, types, 1, "AAA-1");
    f.buf[4] = '1';
    expect_corrupt(f.buf, f.len, "version 1 byte");
    f.buf[4] = '9';
    expect_corrupt(f.buf, f.len, "version 9");
    memcpy(f.buf, "TZig", 4);
    expect_corrupt(f.buf, f.len, "magic");
    build(&f, '2', times, idx, 2, types, 1, "AAA-1");
    expect_corrupt(f.buf, f.len, "out of order");
    build(&f, '2', times + 1, bad_idx + 1, 1, types, 1, "AAA-1");
    expect_corrupt(f.buf, f.len, "type index");
    build(&f, '2', NULL, NULL, 0, huge, 1, "AAA-1");
    expect_corrupt(f.buf, f.len, "offset 26h");
    build(&f, '2', NULL, NULL, 0, baddst, 1, "AAA-1");
    expect_corrupt(f.buf, f.len, "isdst 2");
    build(&f, '2', NULL, NULL, 0, types, 1, NULL);
    expect_corrupt(f.buf, f.len, "no footer");
    build(&f, '2', NULL, NULL, 0, types, 1, "AAA-1");
    f.len--; /* drop the final newline */
    expect_corrupt(f.buf, f.len, "unterminated footer");
    build(&f, '2', NULL, NULL, 0, types, 1, "AAA-30");
    expect_corrupt(f.buf, f.len, "footer offset");
    /* typecnt 0 */
    f.len = 0;
    put_header(&f, 0, 0, 0, 0);
    put8(&f, 'A');
    put8(&f, 'B');
    put8(&f, 'C');
    put8(&f, 0);
    expect_corrupt(f.buf, f.len, "no types");
    /* leap seconds */
    f.len = 0;
    put_header(&f, 0, 0, 1, 2);
    put_block(&f, 4, NULL, NULL, 0, types, 1, 2);
    expect_corrupt(f.buf, f.len, "leap seconds");
    /* a count far beyond the data */
    build(&f, 0, times, idx, 1, types, 1, NULL);
    f.buf[35] = 0xff;
    expect_corrupt(f.buf, f.len, "timecnt too large");
}

/* Every proper prefix of a real file is rejected, never read past its end. */
static void test_truncated(void **state)
{
    const char *paths[] = {"/usr/share/zoneinfo/Europe/Berlin",
                           "/usr/share/zoneinfo/Australia/Lord_Howe"};
    (void)state;
    for (size_t p = 0; p < 2; p++) {
        FILE *fp = fopen(paths[p], "rb");
        unsigned char *data = xmalloc(TZ_FILE_MAX);
        size_t len;
        struct tz *tz = NULL;
        struct err err = ERR_INIT;
        assert_non_null(fp);
        len = fread(data, 1, TZ_FILE_MAX, fp);
        fclose(fp);
        assert_int_equal(tz_parse("whole", data, len, &tz, &err), 0);
        tz_free(tz);
        for (size_t cut = 0; cut < len; cut++) {
            /* A fresh, exactly sized copy so ASan sees any overread. */
            unsigned char *copy = xmalloc(cut ? cut : 1);
            memcpy(copy, data, cut);
            expect_corrupt(copy, cut, "prefix");
            free(copy);
        }
        free(data);
    }
}

static void test_bad_names(void **state)
{
    static const char *bad[] = {
        "",        "/etc/passwd", "../etc/passwd", "Europe/../../etc/passwd", "Europe//Berlin",
        "Europe/", "Euro pe",     "zone.tab",      "Europe/Berlin\n",         "Europe\\Berlin",
        "~/x",     "$HOME",
    };
    struct err err = ERR_INIT;
    const struct tz *tz = (const struct tz *)1;
    char longname[TZ_NAME_MAX + 2];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tz_load(bad[i], &tz, &err), ERR_INVALID);
        assert_null(tz);
        assert_non_null(strstr(err.msg, "invalid time zone name"));
    }
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(tz_load(longname, &tz, &err), ERR_INVALID);
    assert_int_equal(tz_load("Nowhere/Special", &tz, &err), ERR_NOT_FOUND);
    assert_string_equal(err.msg, "unknown time zone 'Nowhere/Special'");
    assert_int_equal(tz_load("Europe", &tz, &err), ERR_NOT_FOUND); /* a directory */
    assert_int_equal(tz_load("Europe/Berlin/x", &tz, &err), ERR_NOT_FOUND);
}

/* --------------------------------------------- files in a temp ORCH_TZDIR */

static char tmpdir[64];

static void write_file(const char *name, const void *data, size_t len)
{
    char path[256];
    FILE *fp;
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
}

static int setup_tmpdir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/orch-test-tz-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    setenv("ORCH_TZDIR", tmpdir, 1);
    tz_cache_clear();
    return 0;
}

static int teardown_tmpdir(void **state)
{
    static const char *names[] = {"Good", "Empty", "Garbage", "Cut", "Big", "Sub/Zone"};
    char path[256];
    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    snprintf(path, sizeof(path), "%s/Sub", tmpdir);
    rmdir(path);
    rmdir(tmpdir);
    unsetenv("ORCH_TZDIR");
    tz_cache_clear();
    return 0;
}

static void test_tzdir_files(void **state)
{
    static const struct ttype types[] = {{-3 * H, 0}};
    struct tzif f;
    struct err err = ERR_INIT;
    const struct tz *tz, *again;
    char path[256];
    unsigned char *big;
    (void)state;

    build(&f, '2', NULL, NULL, 0, types, 1, "AAA3");
    write_file("Good", f.buf, f.len);
    tz = load("Good");
    assert_int_equal(offset_at(tz, 0), -3 * H);
    snprintf(path, sizeof(path), "%s/Sub", tmpdir);
    assert_int_equal(mkdir(path, 0700), 0);
    write_file("Sub/Zone", f.buf, f.len);
    assert_int_equal(offset_at(load("Sub/Zone"), 0), -3 * H);

    write_file("Empty", "", 0);
    assert_int_equal(tz_load("Empty", &tz, &err), ERR_INVALID);
    assert_string_equal(err.msg, "time zone 'Empty': corrupt file (not a TZif file)");
    {
        const char *junk = "TZif2 this is not a zone file at all, but long enough to parse";
        write_file("Garbage", junk, strlen(junk));
    }
    assert_int_equal(tz_load("Garbage", &tz, &err), ERR_INVALID);
    write_file("Cut", f.buf, f.len - 3);
    assert_int_equal(tz_load("Cut", &tz, &err), ERR_INVALID);
    big = xcalloc(1, TZ_FILE_MAX + 1);
    write_file("Big", big, TZ_FILE_MAX + 1);
    free(big);
    assert_int_equal(tz_load("Big", &tz, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "too large"));

    /* Zones not in the directory are unknown; UTC falls back to the built-in zone. */
    assert_int_equal(tz_load("Europe/Berlin", &tz, &err), ERR_NOT_FOUND);
    assert_int_equal(tz_load("UTC", &tz, &err), 0);
    assert_ptr_equal(tz, tz_utc());
    assert_int_equal(tz_load("Etc/UTC", &tz, &err), 0);
    assert_ptr_equal(tz, tz_utc());

    /* The cache returns the same zone until cleared, even if the file changes. */
    again = load("Good");
    assert_ptr_equal(again, load("Good"));
    write_file("Good", "junk", 4);
    assert_ptr_equal(again, load("Good"));
    tz_cache_clear();
    assert_int_equal(tz_load("Good", &tz, &err), ERR_INVALID);
}

static void test_cache_shared(void **state)
{
    const struct tz *a = load("Europe/Paris");
    (void)state;
    assert_ptr_equal(a, load("Europe/Paris"));
    assert_ptr_not_equal(a, load("Europe/Rome"));
}

static void *load_many(void *arg)
{
    static const char *names[] = {"Europe/Berlin",    "America/New_York", "Asia/Tokyo",
                                  "Australia/Sydney", "Pacific/Apia",     "UTC"};
    const struct tz **out = arg;
    for (int round = 0; round < 50; round++)
        for (size_t i = 0; i < 6; i++) {
            const struct tz *tz;
            if (tz_load(names[i], &tz, NULL))
                return NULL;
            out[i] = tz;
        }
    return arg;
}

static void test_cache_threads(void **state)
{
    pthread_t th[4];
    const struct tz *got[4][6];
    (void)state;
    tz_cache_clear();
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, load_many, got[i]), 0);
    for (int i = 0; i < 4; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_non_null(ret);
    }
    for (int i = 1; i < 4; i++)
        for (int k = 0; k < 6; k++)
            assert_ptr_equal(got[i][k], got[0][k]);
}

static void test_range(void **state)
{
    const struct tz *tz = load("Europe/Berlin");
    int64_t u[2], local;
    (void)state;
    assert_int_equal(tz_utc_to_local(tz, TZ_TIME_MAX + 1, &local, NULL), ERR_INVALID);
    assert_int_equal(tz_utc_to_local(tz, INT64_MIN, &local, NULL), ERR_INVALID);
    assert_int_equal(tz_local_to_utc(tz, TZ_TIME_MIN - 1, u), ERR_INVALID);
    assert_int_equal(tz_next_transition(tz, INT64_MAX, NULL, NULL, NULL), ERR_INVALID);
    assert_int_equal(tz_gap_end(tz, INT64_MAX, NULL, NULL), ERR_INVALID);
    /* The edges of the range work, with the footer rule far in the future. */
    assert_int_equal(tz_utc_to_local(tz, TZ_TIME_MAX, &local, NULL), 0);
    assert_int_equal(tz_utc_to_local(tz, TZ_TIME_MIN, &local, NULL), 0);
    assert_true(tz_local_to_utc(tz, TZ_TIME_MAX - 2 * 86400, u) >= 1);
    assert_int_equal(tz_next_transition(tz, TZ_TIME_MAX - 86400, NULL, NULL, NULL), ERR_NOT_FOUND);
}

static void test_roundtrip_zones(void **state)
{
    static const char *names[] = {"America/Santiago", "Asia/Gaza",       "Africa/Casablanca",
                                  "Europe/Dublin",    "Pacific/Chatham", "America/Nuuk",
                                  "Antarctica/Troll", "Asia/Tehran"};
    (void)state;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        expect_roundtrip(load(names[i]), utc(2020, 1, 1, 0, 0), utc(2100, 1, 1, 0, 0), 86399);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc),
        cmocka_unit_test(test_berlin),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_sydney),
        cmocka_unit_test(test_lord_howe),
        cmocka_unit_test(test_apia),
        cmocka_unit_test(test_kolkata),
        cmocka_unit_test(test_footer_rules),
        cmocka_unit_test(test_bad_footers),
        cmocka_unit_test(test_v1_file),
        cmocka_unit_test(test_table_then_footer),
        cmocka_unit_test(test_corrupt),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test_setup_teardown(test_tzdir_files, setup_tmpdir, teardown_tmpdir),
        cmocka_unit_test(test_cache_shared),
        cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_roundtrip_zones),
    };
    int rc;
    unsetenv("ORCH_TZDIR");
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    tz_cache_clear();
    return rc;
}
