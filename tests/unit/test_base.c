/* Unit tests for src/base: strbuf, durations, ISO 8601, ids, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/date.h"
#include "base/err.h"
#include "base/id.h"
#include "base/resource.h"
#include "base/metrics.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

static void test_strbuf_grow_and_detach(void **state)
{
    struct strbuf sb = STRBUF_INIT;
    char *p;
    size_t len;
    (void)state;

    assert_string_equal(sb.buf, "");
    for (int i = 0; i < 1000; i++)
        assert_int_equal(strbuf_addf(&sb, "%d,", i % 10), 0);
    assert_int_equal(sb.len, 2000);
    assert_int_equal(sb.buf[sb.len], '\0');
    p = strbuf_detach(&sb, &len);
    assert_int_equal(len, 2000);
    assert_int_equal(sb.len, 0);
    assert_string_equal(sb.buf, "");
    free(p);
    strbuf_release(&sb);
}

static void test_strbuf_bounded(void **state)
{
    struct strbuf sb;
    (void)state;
    strbuf_init(&sb, 8);
    assert_int_equal(strbuf_adds(&sb, "12345678"), 0);
    assert_int_equal(strbuf_adds(&sb, "9"), ERR_TOO_BIG);
    assert_int_equal(sb.len, 8);
    assert_string_equal(sb.buf, "12345678");
    assert_int_equal(strbuf_addf(&sb, "%s", "x"), ERR_TOO_BIG);
    strbuf_release(&sb);
    assert_int_equal(sb.len, 0);
}

static void test_strbuf_json(void **state)
{
    struct strbuf sb = STRBUF_INIT;
    (void)state;
    strbuf_add_json_str(&sb, "a\"b\\c\n\x01");
    assert_string_equal(sb.buf, "\"a\\\"b\\\\c\\n\\u0001\"");
    strbuf_release(&sb);
    strbuf_add_urlencoded(&sb, "aZ09-._~ /?&=%\xc3\xa9");
    assert_string_equal(sb.buf, "aZ09-._~%20%2F%3F%26%3D%25%C3%A9");
    strbuf_release(&sb);
}

static void test_duration(void **state)
{
    struct err err = ERR_INIT;
    int64_t ms = -1;
    (void)state;

    assert_int_equal(clock_parse_duration("90s", &ms, &err), 0);
    assert_int_equal(ms, 90000);
    assert_int_equal(clock_parse_duration("10m", &ms, &err), 0);
    assert_int_equal(ms, 600000);
    assert_int_equal(clock_parse_duration("1h30m", &ms, &err), 0);
    assert_int_equal(ms, 5400000);
    assert_int_equal(clock_parse_duration("250ms", &ms, &err), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(clock_parse_duration("1.5", &ms, &err), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(clock_parse_duration("2d", &ms, &err), 0);
    assert_int_equal(ms, 172800000);
    assert_int_equal(clock_parse_duration("", &ms, &err), ERR_INVALID);
    assert_int_equal(clock_parse_duration("10x", &ms, &err), ERR_INVALID);
    assert_non_null(strstr(err.msg, "unit"));
    assert_int_equal(clock_parse_duration("-5", &ms, &err), ERR_INVALID);
    assert_int_equal(clock_parse_duration("h", &ms, &err), ERR_INVALID);
    assert_int_equal(clock_parse_duration("99999d", &ms, &err), ERR_INVALID);
    assert_int_equal(clock_parse_duration("1e400", &ms, &err), ERR_INVALID);
}

static void test_iso8601(void **state)
{
    char buf[CLOCK_ISO_MAX];
    int64_t ms;
    (void)state;

    assert_string_equal(clock_iso8601(0, buf), "1970-01-01T00:00:00.000Z");
    assert_string_equal(clock_iso8601(1795946400123LL, buf), "2026-11-29T10:00:00.123Z");
    assert_int_equal(clock_parse_iso8601("2026-11-29T10:00:00.123Z", &ms), 0);
    assert_int_equal(ms, 1795946400123LL);
    assert_int_equal(clock_parse_iso8601("2026-11-29T11:00:00+01:00", &ms), 0);
    assert_int_equal(ms, 1795946400000LL);
    assert_int_equal(clock_parse_iso8601("2026-11-29", &ms), 0);
    assert_int_equal(ms, 1795910400000LL);
    assert_int_equal(clock_parse_iso8601("2026-02-30", &ms), ERR_INVALID);
    assert_int_equal(clock_parse_iso8601("2026-11-29T25:00Z", &ms), ERR_INVALID);
    assert_int_equal(clock_parse_iso8601("yesterday", &ms), ERR_INVALID);
    for (int64_t d = -800000; d < 800000; d += 997) {
        int64_t y;
        unsigned m, dd;
        clock_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(clock_days_from_civil(y, m, dd), d);
    }
}

static void test_date(void **state)
{
    (void)state;
    /* Floor division rounds toward negative infinity, also on exact multiples. */
    assert_int_equal(date_floor_div(7, 2), 3);
    assert_int_equal(date_floor_div(-7, 2), -4);
    assert_int_equal(date_floor_div(-8, 2), -4);
    assert_int_equal(date_floor_div(0, 5), 0);
    assert_int_equal(date_floor_div(-1, 1000), -1);
    assert_int_equal(date_floor_div(-1000, 1000), -1);
    assert_int_equal(date_floor_div(-1001, 1000), -2);
    assert_int_equal(date_floor_div(INT64_MIN, 1), INT64_MIN);
    assert_int_equal(date_floor_div(INT64_MAX, 86400), INT64_MAX / 86400);
    /* Leap years: every 4th, not every 100th, every 400th; also before year 0. */
    assert_true(date_is_leap(2024));
    assert_false(date_is_leap(2026));
    assert_false(date_is_leap(1900));
    assert_false(date_is_leap(2100));
    assert_true(date_is_leap(2000));
    assert_true(date_is_leap(0));
    assert_true(date_is_leap(-4));
    assert_false(date_is_leap(-100));
    assert_true(date_is_leap(-400));
    /* Days in month, February by year. */
    assert_int_equal(date_days_in_month(2026, 1), 31);
    assert_int_equal(date_days_in_month(2026, 2), 28);
    assert_int_equal(date_days_in_month(2024, 2), 29);
    assert_int_equal(date_days_in_month(2100, 2), 28);
    assert_int_equal(date_days_in_month(2026, 4), 30);
    assert_int_equal(date_days_in_month(2026, 12), 31);
    /* Weekdays: 1970-01-01 was a Thursday, 1969-12-28 a Sunday. */
    assert_int_equal(date_weekday(0), 4);
    assert_int_equal(date_weekday(-4), 0);
    assert_int_equal(date_weekday(-1), 3);
    assert_int_equal(date_weekday(clock_days_from_civil(2026, 12, 7)), 1);
    assert_int_equal(date_weekday(clock_days_from_civil(1600, 1, 1)), 6);
    /* The month lengths agree with the civil day count over a 400-year cycle. */
    for (int64_t y = 1600; y < 2000; y++)
        for (unsigned m = 1; m <= 12; m++)
            assert_int_equal(clock_days_from_civil(y + (m == 12), m % 12 + 1, 1) -
                                 clock_days_from_civil(y, m, 1),
                             date_days_in_month(y, m));
}

static void test_ids_increase(void **state)
{
    char a[ID_MAX], b[ID_MAX];
    int64_t now = clock_now_ms();
    (void)state;

    id_new("ex_", a);
    assert_int_equal(strlen(a), 19);
    assert_memory_equal(a, "ex_", 3);
    for (int i = 0; i < 100000; i++) {
        id_new("ex_", b);
        assert_true(strcmp(a, b) < 0);
        memcpy(a, b, sizeof(a));
    }
    assert_true(id_time_ms(a) >= now);
    assert_true(id_time_ms(a) <= clock_now_ms() + 1000);
    assert_int_equal(id_time_ms("ex_short"), -1);
}

/* The manual clock: both readings move together, only forward, and a turn
 * reads the time once. */
static void test_manual_clock(void **state)
{
    const int64_t wall = 1800000000000LL;
    char a[ID_MAX], b[ID_MAX];
    (void)state;

    assert_false(clock_is_manual());
    assert_int_equal(clock_auto_until(), 0);
    clock_use_manual(wall, 5000);
    assert_true(clock_is_manual());
    assert_int_equal(clock_now_ms(), wall);
    assert_int_equal(clock_mono_ms(), 5000);
    assert_int_equal(clock_now_ms(), wall); /* it stands still */
    clock_advance(250);
    clock_advance(-5);
    assert_int_equal(clock_now_ms(), wall + 250);
    assert_int_equal(clock_mono_ms(), 5250);
    clock_advance_to(5100); /* never backwards */
    assert_int_equal(clock_mono_ms(), 5250);
    clock_advance_to(6000);
    assert_int_equal(clock_mono_ms(), 6000);
    assert_int_equal(clock_now_ms(), wall + 1000);

    /* A turn reads it once; fresh readings and other turns see it move. */
    clock_turn_begin();
    clock_advance(10);
    assert_int_equal(clock_mono_ms(), 6000);
    assert_int_equal(clock_now_ms(), wall + 1000);
    assert_int_equal(clock_mono_fresh_ms(), 6010);
    assert_int_equal(clock_now_fresh_ms(), wall + 1010);
    clock_turn_begin();
    assert_int_equal(clock_mono_ms(), 6010);
    clock_turn_end();
    clock_advance(5);
    assert_int_equal(clock_mono_ms(), 6015);

    /* Ids stay strictly increasing while the clock stands still. */
    id_new("ex_", a);
    for (int i = 0; i < 1000; i++) {
        id_new("ex_", b);
        assert_true(strcmp(a, b) < 0);
        memcpy(a, b, sizeof(a));
    }

    assert_int_equal(clock_auto_until(), 0);
    clock_set_auto(9000);
    assert_int_equal(clock_auto_until(), 9000);
    clock_set_auto(CLOCK_AUTO_FOREVER);
    assert_int_equal(clock_auto_until(), CLOCK_AUTO_FOREVER);
    clock_use_real();
    assert_false(clock_is_manual());
    assert_int_equal(clock_auto_until(), 0); /* a real clock never auto-advances */
    {
        int64_t before = clock_now_ms();
        clock_advance(10LL * 86400 * 1000); /* no effect on the real clock */
        assert_true(clock_now_ms() - before < 86400 * 1000);
    }
}

static void test_err(void **state)
{
    struct err err = ERR_INIT;
    (void)state;
    assert_int_equal(err_set(&err, ERR_NOT_FOUND, "no task '%s'", "x"), ERR_NOT_FOUND);
    err_prefix(&err, "cannot run");
    assert_string_equal(err.msg, "cannot run: no task 'x'");
    assert_string_equal(err_name(ERR_STORE), "ERR_STORE");
    assert_int_equal(err_set(NULL, ERR_IO, "ignored"), ERR_IO);
}

/* The figures of this machine: within their ranges; an unknown directory is not ok. */
static void test_resource(void **state)
{
    struct resource_memory m;
    struct resource_disk dk;
    struct resource_fds f;
    (void)state;

    resource_memory(&m);
    assert_true(m.sys_pct > 0 && m.sys_pct <= 100);
    assert_true(m.used_pct >= m.sys_pct && m.used_pct <= 100);
    assert_true(m.cg_pct == -1 || (m.cg_pct >= 0 && m.cgroup == (m.cg_pct >= m.sys_pct)));
    assert_true(m.used > 0 && m.total >= m.used);
    assert_true(m.rss > 0);

    resource_disk(".", &dk);
    assert_true(dk.ok);
    assert_true(dk.total_bytes > 0 && dk.free_bytes >= 0 && dk.free_bytes <= dk.total_bytes);
    assert_true(dk.used_pct >= 0 && dk.used_pct <= 100);
    assert_true(dk.free_pct + dk.used_pct > 99.99 && dk.free_pct + dk.used_pct < 100.01);
    resource_disk("/nonexistent/orch-test", &dk);
    assert_false(dk.ok);
    assert_true(dk.free_bytes == -1 && dk.used_pct == -1 && dk.inodes_used_pct == -1);

    resource_fds(&f);
    assert_true(f.open >= 3); /* stdin, stdout, stderr */
    assert_true(f.limit == -1 || (f.limit >= f.open && f.used_pct > 0 && f.used_pct <= 100));
}

/* ------------------------------------------------------------------ metrics */

static void test_metrics_text(void **state)
{
    struct strbuf lb = STRBUF_INIT, out = STRBUF_INIT, small;
    struct metrics_counter c = {0};
    (void)state;

    /* Label values are escaped as the text format wants. */
    assert_int_equal(metrics_label(&lb, 1, "workflow", "a\"b\\c\nd"), 0);
    assert_int_equal(metrics_label(&lb, 0, "status", "failed"), 0);
    assert_string_equal(lb.buf, "workflow=\"a\\\"b\\\\c\\nd\",status=\"failed\"");
    metrics_counter_add(&c, 2);
    metrics_counter_add(&c, 1);
    assert_int_equal(metrics_counter_get(&c), 3);
    assert_int_equal(metrics_family(&out, "x_total", "counter", "Things."), 0);
    assert_int_equal(metrics_sample_u64(&out, "x_total", lb.buf, metrics_counter_get(&c)), 0);
    assert_int_equal(metrics_sample_i64(&out, "y", NULL, -4), 0);
    assert_int_equal(metrics_sample_f(&out, "z", "", 0.25), 0);
    assert_string_equal(out.buf, "# HELP x_total Things.\n# TYPE x_total counter\n"
                                 "x_total{workflow=\"a\\\"b\\\\c\\nd\",status=\"failed\"} 3\n"
                                 "y -4\nz 0.25\n");
    /* Past the buffer's maximum: the strbuf's error, nothing half-written. */
    strbuf_init(&small, 8);
    assert_int_equal(metrics_sample_u64(&small, "a_long_name", NULL, 1), ERR_TOO_BIG);
    strbuf_release(&small);
    strbuf_release(&lb);
    strbuf_release(&out);
}

static void test_metrics_hist(void **state)
{
    struct metrics_hist h;
    struct strbuf out = STRBUF_INIT;
    (void)state;

    memset(&h, 0, sizeof(h));
    metrics_hist_observe_ns(&h, -5);                /* counts as 0: the first bucket */
    metrics_hist_observe_ms(&h, 1);                 /* on a bound: that bucket (le) */
    metrics_hist_observe_ms(&h, 7);                 /* 0.01 */
    metrics_hist_observe_ms(&h, 3600 * 1000);       /* past the last bound: +Inf only */
    assert_int_equal(metrics_hist_write(&out, "d_seconds", "k=\"v\"", &h), 0);
    assert_non_null(strstr(out.buf, "d_seconds_bucket{k=\"v\",le=\"0.001\"} 2\n"));
    assert_non_null(strstr(out.buf, "d_seconds_bucket{k=\"v\",le=\"0.005\"} 2\n"));
    assert_non_null(strstr(out.buf, "d_seconds_bucket{k=\"v\",le=\"0.01\"} 3\n"));
    assert_non_null(strstr(out.buf, "d_seconds_bucket{k=\"v\",le=\"300\"} 3\n"));
    assert_non_null(strstr(out.buf, "d_seconds_bucket{k=\"v\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(out.buf, "d_seconds_sum{k=\"v\"} 3600.008000000\n"));
    assert_non_null(strstr(out.buf, "d_seconds_count{k=\"v\"} 4\n"));
    strbuf_reset(&out);
    assert_int_equal(metrics_hist_write(&out, "e_seconds", NULL, &h), 0);
    assert_non_null(strstr(out.buf, "e_seconds_bucket{le=\"+Inf\"} 4\ne_seconds_sum 3600.008"));
    assert_non_null(strstr(out.buf, "e_seconds_count 4\n"));
    strbuf_release(&out);
}

static void test_metrics_process(void **state)
{
    struct strbuf out = STRBUF_INIT;
    (void)state;

    assert_int_equal(metrics_process_write(&out), 0);
    assert_non_null(strstr(out.buf, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(out.buf, "\nprocess_resident_memory_bytes "));
    assert_non_null(strstr(out.buf, "\nprocess_open_fds "));
    assert_non_null(strstr(out.buf, "\nprocess_max_fds "));
    assert_non_null(strstr(out.buf, "\nprocess_start_time_seconds "));
    assert_null(strstr(out.buf, "process_resident_memory_bytes 0\n"));
    strbuf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_grow_and_detach),
        cmocka_unit_test(test_strbuf_bounded),
        cmocka_unit_test(test_strbuf_json),
        cmocka_unit_test(test_duration),
        cmocka_unit_test(test_iso8601),
        cmocka_unit_test(test_date),
        cmocka_unit_test(test_ids_increase),
        cmocka_unit_test(test_err),
        cmocka_unit_test(test_manual_clock),
        cmocka_unit_test(test_resource),
        cmocka_unit_test(test_metrics_text),
        cmocka_unit_test(test_metrics_hist),
        cmocka_unit_test(test_metrics_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
