#include "clock.h"

#include <ctype.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "date.h"

/*
 * The manual clock: fixed origins plus the time it has been advanced by, in
 * one atomic, so the two readings always move together.
 */
static _Atomic int manual;
static int64_t manual_wall, manual_mono;
static _Atomic int64_t manual_elapsed;
static _Atomic int64_t auto_until;

static int64_t real_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The time of the calling thread's turn, while one runs. */
static _Thread_local struct {
    int on;
    int64_t wall, mono;
} turn;

int64_t clock_now_fresh_ms(void)
{
    if (atomic_load(&manual))
        return manual_wall + atomic_load(&manual_elapsed);
    return real_ms(CLOCK_REALTIME);
}

int64_t clock_mono_fresh_ms(void)
{
    if (atomic_load(&manual))
        return manual_mono + atomic_load(&manual_elapsed);
    return real_ms(CLOCK_MONOTONIC);
}

int64_t clock_now_ms(void)
{
    return turn.on ? turn.wall : clock_now_fresh_ms();
}

int64_t clock_mono_ms(void)
{
    return turn.on ? turn.mono : clock_mono_fresh_ms();
}

void clock_turn_begin(void)
{
    turn.wall = clock_now_fresh_ms();
    turn.mono = clock_mono_fresh_ms();
    turn.on = 1;
}

void clock_turn_end(void)
{
    turn.on = 0;
}

int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void clock_use_manual(int64_t wall_ms, int64_t mono_ms)
{
    manual_wall = wall_ms;
    manual_mono = mono_ms;
    atomic_store(&manual_elapsed, 0);
    atomic_store(&auto_until, 0);
    atomic_store(&manual, 1);
}

void clock_use_real(void)
{
    atomic_store(&manual, 0);
    atomic_store(&auto_until, 0);
}

int clock_is_manual(void)
{
    return atomic_load(&manual);
}

void clock_advance(int64_t ms)
{
    if (ms > 0 && atomic_load(&manual))
        atomic_fetch_add(&manual_elapsed, ms);
}

void clock_advance_to(int64_t mono_ms)
{
    int64_t cur;

    if (!atomic_load(&manual))
        return;
    cur = atomic_load(&manual_elapsed);
    while (manual_mono + cur < mono_ms &&
           !atomic_compare_exchange_weak(&manual_elapsed, &cur, mono_ms - manual_mono))
        ;
}

void clock_set_auto(int64_t until_mono_ms)
{
    atomic_store(&auto_until, until_mono_ms > 0 ? until_mono_ms : 0);
}

int64_t clock_auto_until(void)
{
    return atomic_load(&manual) ? atomic_load(&auto_until) : 0;
}

/* Calendar arithmetic in 400-year eras (146097 days), March-based years. */
int64_t clock_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void clock_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* `v` (< 10^n) in n decimal digits with leading zeros. */
static void iso_digits(char *out, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

char *clock_iso8601(int64_t ms, char *out)
{
    int64_t secs = date_floor_div(ms, 1000);
    int64_t msr = ms - secs * 1000;
    int64_t days = date_floor_div(secs, DATE_DAY_S);
    int64_t sod = secs - days * DATE_DAY_S;
    int64_t y;
    unsigned m, d;

    clock_civil_from_days(days, &y, &m, &d);
    if (y < 0)
        y = 0;
    if (y > 9999)
        y = 9999;
    /* "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ" written by hand: the API's lists
     * write several instants per row, and snprintf was a tenth of a list
     * call's CPU time (bench/README.md). */
    iso_digits(out, (unsigned)y, 4);
    out[4] = '-';
    iso_digits(out + 5, m % 13, 2);
    out[7] = '-';
    iso_digits(out + 8, d % 32, 2);
    out[10] = 'T';
    iso_digits(out + 11, (unsigned)(sod / 3600) % 24, 2);
    out[13] = ':';
    iso_digits(out + 14, (unsigned)(sod / 60 % 60), 2);
    out[16] = ':';
    iso_digits(out + 17, (unsigned)(sod % 60), 2);
    out[19] = '.';
    iso_digits(out + 20, (unsigned)msr % 1000, 3);
    out[23] = 'Z';
    out[24] = '\0';
    return out;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int clock_parse_iso8601(const char *s, int64_t *out_ms)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        return ERR_INVALID;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return ERR_INVALID;
    if (mo == 2 && d == 29 && !date_is_leap(y))
        return ERR_INVALID;
    if (*p == '\0')
        goto done;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return ERR_INVALID;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
        return ERR_INVALID;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &sec))
            return ERR_INVALID;
        if (*p == '.') {
            int scale = 100;
            p++;
            if (!isdigit((unsigned char)*p))
                return ERR_INVALID;
            while (isdigit((unsigned char)*p)) {
                frac += (*p - '0') * scale;
                scale /= 10;
                p++;
            }
        }
    }
    if (h > 23 || mi > 59 || sec > 60)
        return ERR_INVALID;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh))
            return ERR_INVALID;
        if (*p == ':')
            p++;
        if (digits(&p, 2, &om) || oh > 23 || om > 59)
            return ERR_INVALID;
        off = sign * (oh * 60 + om);
    } else {
        return ERR_INVALID;
    }
    if (*p != '\0')
        return ERR_INVALID;
done:
    *out_ms = (clock_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 +
               mi * 60 + sec - off * 60) * 1000 + frac;
    return 0;
}

#define DURATION_MAX_MS (10LL * 366 * 86400 * 1000)

int clock_parse_duration(const char *s, int64_t *out_ms, struct err *err)
{
    const char *p = s;
    double total = 0;
    int groups = 0;
    char *end;

    while (isspace((unsigned char)*p))
        p++;
    if (*p == '\0')
        return err_set(err, ERR_INVALID, "empty duration");
    /* A bare number is seconds. */
    {
        double v = strtod(p, &end);
        if (end != p && *end == '\0' && isfinite(v)) {
            if (v < 0)
                return err_set(err, ERR_INVALID, "duration '%s' is negative", s);
            total = v * 1000;
            goto check;
        }
    }
    while (*p) {
        double v, unit;
        if (!isdigit((unsigned char)*p) && *p != '.')
            return err_set(err, ERR_INVALID,
                           "invalid duration '%s' (use e.g. \"90s\", \"10m\", \"1h30m\")", s);
        v = strtod(p, &end);
        if (end == p || !isfinite(v))
            return err_set(err, ERR_INVALID, "invalid duration '%s'", s);
        p = end;
        if (p[0] == 'm' && p[1] == 's') {
            unit = 1;
            p += 2;
        } else if (*p == 's') {
            unit = 1000;
            p++;
        } else if (*p == 'm') {
            unit = 60000;
            p++;
        } else if (*p == 'h') {
            unit = 3600000;
            p++;
        } else if (*p == 'd') {
            unit = 86400000;
            p++;
        } else {
            return err_set(err, ERR_INVALID,
                           "invalid duration '%s': missing or unknown unit (use ms, s, m, h, d)",
                           s);
        }
        total += v * unit;
        groups++;
    }
    if (!groups)
        return err_set(err, ERR_INVALID, "invalid duration '%s'", s);
check:
    if (total > (double)DURATION_MAX_MS)
        return err_set(err, ERR_INVALID, "duration '%s' is too long (max 10 years)", s);
    *out_ms = (int64_t)llround(total);
    return 0;
}

char *clock_fmt_duration(int64_t ms, char *out, size_t outlen)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000)
        snprintf(out, outlen, "%lldms", (long long)ms);
    else if (ms < 60000)
        snprintf(out, outlen, "%lld.%03llds", (long long)(ms / 1000), (long long)(ms % 1000));
    else if (ms < 3600000)
        snprintf(out, outlen, "%lldm%02llds", (long long)(ms / 60000),
                 (long long)(ms / 1000 % 60));
    else
        snprintf(out, outlen, "%lldh%02lldm", (long long)(ms / 3600000),
                 (long long)(ms / 60000 % 60));
    return out;
}
