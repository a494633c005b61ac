/*
 * cron.c - cron expression parser and next-fire computation.
 *
 * cron_next() walks the UTC time line one offset interval at a time: an
 * interval [a, b) is a stretch of instants with one UTC offset o, so its
 * instants map one-to-one onto the wall times [a + o, b + o). Inside an
 * interval the first matching wall time gives the first fire, found by
 * next_wall() with field-by-field skipping (no minute-by-minute scan). Gaps
 * and overlaps are where consecutive intervals' wall ranges leave a hole or
 * overlap; the DST rules of cron.h decide which interval owns a wall time.
 */
#include "cron.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/date.h"
#include "base/xalloc.h"

#include "base/banned.h"

#define DAY_S 86400
/* Lookback/lookahead that covers every interval whose wall range can reach ours. */
#define CRON_NEAR_S (2 * TZ_OFFSET_LIMIT + 3600)

/* ============================================================ parsing */

enum cron_field {
    CRON_MINUTE,
    CRON_HOUR,
    CRON_DOM,
    CRON_MONTH,
    CRON_DOW,
    CRON_NFIELDS,
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field_desc {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value i + name_base */
    int nnames, name_base;
};

static const struct field_desc fields[CRON_NFIELDS] = {
    {"minute", 0, 59, NULL, 0, 0},          {"hour", 0, 23, NULL, 0, 0},
    {"day-of-month", 1, 31, NULL, 0, 0},    {"month", 1, 12, month_names, 12, 1},
    {"day-of-week", 0, 7, dow_names, 7, 0},
};

/* Numbers are read up to this value; anything larger is out of range anyway. */
#define NUM_CAP 1000000

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

struct item_scan {
    const char *p, *end;
    const struct field_desc *fd;
    struct err *err;
};

/* A value: a number, or a name where the field has names. */
static int scan_value(struct item_scan *s, int *out)
{
    const char *start = s->p;

    if (s->p < s->end && is_digit(*s->p)) {
        long v = 0;
        while (s->p < s->end && is_digit(*s->p)) {
            if (v < NUM_CAP)
                v = v * 10 + (*s->p - '0');
            s->p++;
        }
        if (v < s->fd->min || v > s->fd->max)
            return err_set(s->err, ERR_INVALID, "%s: %.*s is out of range %d-%d", s->fd->name,
                           (int)(s->p - start > 20 ? 20 : s->p - start), start, s->fd->min,
                           s->fd->max);
        *out = (int)v;
        return 0;
    }
    if (s->p < s->end && is_alpha(*s->p)) {
        size_t n;
        while (s->p < s->end && is_alpha(*s->p))
            s->p++;
        n = (size_t)(s->p - start);
        if (n == 3) {
            for (int i = 0; i < s->fd->nnames; i++)
                if (lower(start[0]) == s->fd->names[i][0] &&
                    lower(start[1]) == s->fd->names[i][1] &&
                    lower(start[2]) == s->fd->names[i][2]) {
                    *out = i + s->fd->name_base;
                    return 0;
                }
        }
        if ((n == 1 && (lower(*start) == 'l' || lower(*start) == 'w')) ||
            (n == 2 && lower(start[0]) == 'l' && lower(start[1]) == 'w'))
            return err_set(s->err, ERR_INVALID,
                           "%s: '%.*s' is not supported (Quartz extension; list the days instead)",
                           s->fd->name, (int)n, start);
        if (!s->fd->nnames)
            return err_set(s->err, ERR_INVALID, "%s: '%.*s' is not a number", s->fd->name,
                           (int)(n > 20 ? 20 : n), start);
        return err_set(s->err, ERR_INVALID, "%s: unknown name '%.*s' (use %s, %s, ...)",
                       s->fd->name, (int)(n > 20 ? 20 : n), start, s->fd->names[0],
                       s->fd->names[1]);
    }
    if (s->p >= s->end)
        return err_set(s->err, ERR_INVALID, "%s: value missing", s->fd->name);
    if (*s->p == '?' || *s->p == '#')
        return err_set(s->err, ERR_INVALID, "%s: '%c' is not supported (Quartz extension)",
                       s->fd->name, *s->p);
    return err_set(s->err, ERR_INVALID, "%s: unexpected character '%c'", s->fd->name, *s->p);
}

static int scan_step(struct item_scan *s, int *out)
{
    const char *start = s->p;
    long v = 0;

    if (s->p >= s->end || !is_digit(*s->p))
        return err_set(s->err, ERR_INVALID, "%s: step must be a number", s->fd->name);
    while (s->p < s->end && is_digit(*s->p)) {
        if (v < NUM_CAP)
            v = v * 10 + (*s->p - '0');
        s->p++;
    }
    if (v == 0)
        return err_set(s->err, ERR_INVALID, "%s: step 0 is not allowed", s->fd->name);
    if (v >= NUM_CAP)
        return err_set(s->err, ERR_INVALID, "%s: step %.*s is too large", s->fd->name,
                       (int)(s->p - start > 20 ? 20 : s->p - start), start);
    *out = (int)v;
    return 0;
}

/* One list item: "*", "*\/s", "a", "a-b", "a-b/s", "a/s". Adds its values to *bits. */
static int parse_item(const struct field_desc *fd, const char *p, const char *end, uint64_t *bits,
                      struct err *err)
{
    struct item_scan s = {p, end, fd, err};
    int lo = 0, hi = 0, step = 1, single = 0;

    if (p == end)
        return err_set(err, ERR_INVALID, "%s: empty item in list", fd->name);
    if (*s.p == '*') {
        s.p++;
        lo = fd->min;
        hi = fd->max;
        if (s.p < end && *s.p == '-')
            return err_set(err, ERR_INVALID, "%s: '*' cannot start a range", fd->name);
    } else {
        if (scan_value(&s, &lo))
            return ERR_INVALID;
        hi = lo;
        single = 1;
        if (s.p < end && *s.p == '-') {
            const char *rstart = p;
            s.p++;
            if (scan_value(&s, &hi))
                return ERR_INVALID;
            if (lo > hi)
                return err_set(err, ERR_INVALID, "%s: range %.*s is reversed", fd->name,
                               (int)(s.p - rstart > 40 ? 40 : s.p - rstart), rstart);
            single = 0;
        }
    }
    if (s.p < end && *s.p == '/') {
        s.p++;
        if (scan_step(&s, &step))
            return ERR_INVALID;
        if (single)
            hi = fd->max; /* N/s means N-max/s */
    }
    if (s.p < end) {
        if (*s.p == '?' || *s.p == '#' || *s.p == 'L' || *s.p == 'W')
            return err_set(err, ERR_INVALID, "%s: '%c' is not supported (Quartz extension)",
                           fd->name, *s.p);
        return err_set(err, ERR_INVALID, "%s: unexpected character '%c' in '%.*s'", fd->name, *s.p,
                       (int)(end - p > 40 ? 40 : end - p), p);
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return 0;
}

static int parse_field(const struct field_desc *fd, const char *p, const char *end, uint64_t *bits,
                       struct err *err)
{
    *bits = 0;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *iend = comma ? comma : end;
        if (parse_item(fd, p, iend, bits, err))
            return ERR_INVALID;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

struct macro {
    const char *name;
    const char *expansion;
};

static const struct macro macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static int word_eq_nocase(const char *a, size_t alen, const char *b)
{
    if (alen != strlen(b))
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (lower(a[i]) != b[i])
            return 0;
    return 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* "30" or "30,31": the values of `bits` between lo and hi, comma-separated. */
static void list_bits(char *out, size_t outlen, uint64_t bits, int lo, int hi)
{
    size_t len = 0;

    out[0] = '\0';
    for (int v = lo; v <= hi; v++) {
        if (!(bits >> v & 1))
            continue;
        int n = snprintf(out + len, outlen - len, "%s%d", len ? "," : "", v);
        if (n < 0 || (size_t)n >= outlen - len)
            return;
        len += (size_t)n;
    }
}

/* Rule 2: an expression that matches no date at all is an error. */
static int check_fires(const struct cron_expr *ce, struct err *err)
{
    char doms[128], months[64];

    /* With both day fields restricted any matching weekday fires; with "*" every day exists. */
    if (ce->dom_star || !ce->dow_star)
        return 0;
    for (int m = 1; m <= 12; m++) {
        if (!(ce->months >> m & 1))
            continue;
        /* 2000 is a leap year: every day a month can have. */
        for (int d = 1; d <= (int)date_days_in_month(2000, (unsigned)m); d++)
            if (ce->doms >> d & 1)
                return 0;
    }
    list_bits(doms, sizeof(doms), ce->doms, 1, 31);
    list_bits(months, sizeof(months), ce->months, 1, 12);
    return err_set(err, ERR_INVALID, "never fires: day-of-month %s does not occur in month%s %s",
                   doms, strchr(months, ',') ? "s" : "", months);
}

static int parse_fields(const char *expr, struct cron_expr *out, struct err *err)
{
    const char *start[CRON_NFIELDS + 3], *end[CRON_NFIELDS + 3];
    uint64_t bits[CRON_NFIELDS];
    struct cron_expr ce;
    const char *p = expr;
    int n = 0;

    for (;;) {
        while (is_space(*p))
            p++;
        if (!*p)
            break;
        if (n < CRON_NFIELDS + 3)
            start[n] = p;
        while (*p && !is_space(*p))
            p++;
        if (n < CRON_NFIELDS + 3)
            end[n] = p;
        n++;
    }
    if (n == 0)
        return err_set(err, ERR_INVALID, "empty expression");
    if (n != CRON_NFIELDS) {
        if (n == 6 || n == 7)
            return err_set(err, ERR_INVALID,
                           "expected 5 fields, got %d (seconds are not supported; use an "
                           "'every' schedule)",
                           n);
        return err_set(err, ERR_INVALID,
                       "expected 5 fields (minute hour day-of-month month day-of-week), got %d", n);
    }
    for (int i = 0; i < CRON_NFIELDS; i++)
        if (parse_field(&fields[i], start[i], end[i], &bits[i], err))
            return ERR_INVALID;
    memset(&ce, 0, sizeof(ce));
    ce.minutes = bits[CRON_MINUTE];
    ce.hours = (uint32_t)bits[CRON_HOUR];
    ce.doms = (uint32_t)bits[CRON_DOM];
    ce.months = (uint16_t)bits[CRON_MONTH];
    /* 7 is Sunday, like 0. */
    ce.dows = (uint8_t)((bits[CRON_DOW] | (bits[CRON_DOW] >> 7)) & 0x7f);
    ce.dom_star = end[CRON_DOM] - start[CRON_DOM] == 1 && *start[CRON_DOM] == '*';
    ce.dow_star = end[CRON_DOW] - start[CRON_DOW] == 1 && *start[CRON_DOW] == '*';
    ce.cadence = *start[CRON_MINUTE] == '*' || *start[CRON_HOUR] == '*';
    if (check_fires(&ce, err))
        return ERR_INVALID;
    *out = ce;
    return 0;
}

int cron_parse(const char *expr, struct cron_expr *out, struct err *err)
{
    const char *p = expr, *w;
    size_t wlen;

    if (strnlen(expr, CRON_EXPR_MAX + 1) > CRON_EXPR_MAX)
        return err_set(err, ERR_INVALID, "expression too long (more than %d characters)",
                       CRON_EXPR_MAX);
    while (is_space(*p))
        p++;
    if (*p != '@')
        return parse_fields(expr, out, err);
    w = p;
    while (*p && !is_space(*p))
        p++;
    wlen = (size_t)(p - w);
    while (is_space(*p))
        p++;
    if (word_eq_nocase(w, wlen, "@reboot"))
        return err_set(err, ERR_INVALID,
                       "@reboot is not supported: it is not a time schedule "
                       "(run the workflow from a start-up hook instead)");
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
        if (!word_eq_nocase(w, wlen, macros[i].name))
            continue;
        if (*p)
            return err_set(err, ERR_INVALID, "%s takes no fields", macros[i].name);
        return parse_fields(macros[i].expansion, out, err);
    }
    return err_set(err, ERR_INVALID,
                   "unknown macro '%.*s' (expected @yearly, @annually, @monthly, @weekly, "
                   "@daily, @midnight or @hourly)",
                   (int)(wlen > 20 ? 20 : wlen), w);
}

/* ============================================================ matching */

static int day_matches(const struct cron_expr *ce, int64_t days, unsigned d)
{
    int dm = ce->doms >> d & 1;
    int wm = ce->dows >> date_weekday(days) & 1;

    if (ce->dom_star || ce->dow_star)
        return dm && wm;
    return dm || wm;
}

int cron_matches(const struct cron_expr *ce, int64_t year, int month, int day, int hour, int minute)
{
    if (month < 1 || month > 12 || day < 1 ||
        day > (int)date_days_in_month(year, (unsigned)month) || hour < 0 || hour > 23 ||
        minute < 0 || minute > 59)
        return 0;
    return (ce->months >> month & 1) && (ce->hours >> hour & 1) && (ce->minutes >> minute & 1) &&
           day_matches(ce, clock_days_from_civil(year, (unsigned)month, (unsigned)day),
                       (unsigned)day);
}

/* Lowest set bit of `bits` at position >= from, or -1. */
static int next_bit(uint64_t bits, int from)
{
    if (from >= 64)
        return -1;
    bits &= ~(uint64_t)0 << from;
    return bits ? __builtin_ctzll(bits) : -1;
}

/*
 * The first matching wall time (minute-aligned, local seconds) in
 * [from_w, limit_w). Returns 0 and sets *out_w, or ERR_NOT_FOUND.
 */
static int next_wall(const struct cron_expr *ce, int64_t from_w, int64_t limit_w, int64_t *out_w)
{
    int64_t w = date_floor_div(from_w + 59, 60) * 60;
    int64_t days = date_floor_div(w, DAY_S), y;
    int sod = (int)(w - days * DAY_S);
    unsigned m, d;
    int h = sod / 3600, mi = sod % 3600 / 60;

    clock_civil_from_days(days, &y, &m, &d);
    for (;;) {
        int nb;

        if (days * DAY_S + h * 3600 + mi * 60 >= limit_w)
            return ERR_NOT_FOUND;
        if (!(ce->months >> m & 1)) {
            nb = next_bit(ce->months, (int)m + 1);
            if (nb < 0) {
                y++;
                nb = next_bit(ce->months, 1);
            }
            m = (unsigned)nb;
            d = 1;
            h = mi = 0;
            days = clock_days_from_civil(y, m, d);
            continue;
        }
        if (!day_matches(ce, days, d)) {
            goto next_day;
        }
        if (!(ce->hours >> h & 1)) {
            nb = next_bit(ce->hours, h);
            if (nb < 0)
                goto next_day;
            h = nb;
            mi = 0;
            continue;
        }
        nb = next_bit(ce->minutes, mi);
        if (nb < 0 || nb > 59) {
            h++;
            mi = 0;
            if (h > 23)
                goto next_day;
            continue;
        }
        mi = nb;
        w = days * DAY_S + h * 3600 + mi * 60;
        if (w >= limit_w)
            return ERR_NOT_FOUND;
        *out_w = w;
        return 0;
    next_day:
        days++;
        d++;
        h = mi = 0;
        if (d > date_days_in_month(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
}

/* ============================================================ next fire */

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* End of the offset interval that contains t: the next transition, or `cap`. */
static int64_t interval_end(const struct tz *tz, int64_t t, int64_t cap)
{
    int64_t tr;

    if (tz_next_transition(tz, t, &tr, NULL, NULL) || tr > cap)
        return cap;
    return tr;
}

/*
 * The lowest wall time that starts any interval beginning at or after b:
 * min over transitions T in [b, b + CRON_NEAR_S] of T + offset after T.
 * Intervals starting later cannot reach below the wall times before b.
 */
static int64_t later_wall_floor(const struct tz *tz, int64_t b)
{
    int64_t lowest = INT64_MAX, t = b - 1, tr;
    int after;

    while (!tz_next_transition(tz, t, &tr, NULL, &after) && tr <= b + CRON_NEAR_S) {
        lowest = min64(lowest, tr + after);
        t = tr;
    }
    return lowest;
}

/*
 * The highest wall time reached by intervals that ended at or before `t`
 * (their end instant plus their offset), looking back CRON_NEAR_S; earlier
 * intervals end too low to matter.
 */
static int64_t earlier_wall_ceiling(const struct tz *tz, int64_t t)
{
    int64_t highest = INT64_MIN, s = t - CRON_NEAR_S, tr;
    int before;

    while (!tz_next_transition(tz, s, &tr, &before, NULL) && tr <= t) {
        highest = max64(highest, tr + before);
        s = tr;
    }
    return highest;
}

int cron_next(const struct cron_expr *ce, const struct tz *tz, const struct cron_dst *dst,
              int64_t after_s, int64_t *out_s)
{
    static const struct cron_dst defaults = CRON_DST_INIT;
    int64_t horizon, a, b, covered, w;
    int off, prev_off = 0, first = 1;

    if (!dst)
        dst = &defaults;
    if (!ce->minutes || !ce->hours || !ce->doms || !ce->months || !ce->dows)
        BUG("cron_next: expression not from cron_parse()");
    if (after_s < CRON_AFTER_MIN_S || after_s > CRON_AFTER_MAX_S)
        return ERR_INVALID;
    horizon = after_s + CRON_HORIZON_S;
    /*
     * Interval [a, b) with offset `off`; `covered` is the highest wall time
     * owned by earlier intervals (fixed-time schedules fire a wall time in
     * the first interval that has it).
     */
    tz_utc_to_local(tz, after_s, NULL, &off);
    a = after_s;
    b = interval_end(tz, after_s, horizon + 1);
    covered = earlier_wall_ceiling(tz, after_s);
    for (;;) {
        int64_t lo_w = max64(a, after_s + 1) + off;
        int64_t hi_w = b + off;

        if (!ce->cadence) {
            int64_t later = later_wall_floor(tz, b);
            if (!first && off > prev_off && a > after_s && dst->skipped == CRON_SKIPPED_SHIFT &&
                off - prev_off <= CRON_MAX_CATCHUP_S) {
                /* A gap: its wall times fire once, at its end (instant a). */
                int64_t glo = max64(covered, a + prev_off);
                int64_t ghi = min64(a + off, later);
                if (glo < ghi && !next_wall(ce, glo, ghi, &w)) {
                    *out_s = a;
                    return 0;
                }
            }
            if (dst->repeated == CRON_REPEATED_FIRST)
                lo_w = max64(lo_w, covered);
            else if (dst->repeated == CRON_REPEATED_LAST)
                hi_w = min64(hi_w, later);
        }
        if (lo_w < hi_w && !next_wall(ce, lo_w, hi_w, &w)) {
            *out_s = w - off;
            return 0;
        }
        if (b > horizon)
            return ERR_NOT_FOUND;
        covered = max64(covered, b + off);
        prev_off = off;
        tz_utc_to_local(tz, b, NULL, &off);
        a = b;
        b = interval_end(tz, a, horizon + 1);
        first = 0;
    }
}

int cron_format_instant(int64_t utc_s, const struct tz *tz, char *out)
{
    int64_t local, days, y;
    unsigned m, d;
    int off, sod, aoff;
    char sign;

    out[0] = '\0';
    if (tz_utc_to_local(tz, utc_s, &local, &off))
        return ERR_INVALID;
    days = date_floor_div(local, DAY_S);
    sod = (int)(local - days * DAY_S);
    clock_civil_from_days(days, &y, &m, &d);
    sign = off < 0 ? '-' : '+';
    aoff = off < 0 ? -off : off;
    if (aoff % 60)
        snprintf(out, CRON_INSTANT_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d%c%02d:%02d:%02d",
                 (long long)y, m, d, sod / 3600, sod / 60 % 60, sod % 60, sign, aoff / 3600,
                 aoff / 60 % 60, aoff % 60);
    else
        snprintf(out, CRON_INSTANT_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d%c%02d:%02d", (long long)y,
                 m, d, sod / 3600, sod / 60 % 60, sod % 60, sign, aoff / 3600, aoff / 60 % 60);
    return 0;
}
