/*
 * tz.c - TZif reader, POSIX TZ footer rules, UTC <-> wall time mapping.
 *
 * Written from RFC 9636 (TZif) and POSIX XBD 8.3 (the TZ variable); see tz.h
 * for the model. A zone is kept as the list of instants where the offset
 * changes (transitions whose offset equals the previous one are dropped),
 * plus the footer rule, which governs every instant after the file's last
 * transition.
 */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/date.h"
#include "base/xalloc.h"

#include "base/banned.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define DAY_S          86400

/* Longest footer we accept; tzdata's longest is about 45 bytes. */
#define TZ_FOOTER_MAX 255

enum tz_rule_kind {
    TZ_RULE_JULIAN1, /* Jn: day n of 1..365, February 29 never counted */
    TZ_RULE_DAY0,    /* n: zero-based day 0..365, February 29 counted */
    TZ_RULE_MONTH,   /* Mm.w.d: weekday d of week w (5 = last) of month m */
};

struct tz_rule {
    enum tz_rule_kind kind;
    int day; /* Jn and n forms */
    int month, week, wday;
    int32_t secs; /* wall time of the change on that day; may be < 0 or > 24h */
};

struct tz_footer {
    int present; /* a non-empty footer */
    int has_dst;
    int32_t std_off, dst_off; /* UTC offsets, east positive */
    struct tz_rule start, end;
};

struct tz {
    char *name;
    size_t n;          /* offset changes in the table */
    int64_t *at;       /* ascending instants of the changes */
    int32_t *off;      /* offset from at[i] on */
    int32_t off0;      /* offset before at[0] (time type 0) */
    int64_t table_end; /* the file's last transition; the footer governs t > table_end */
    struct tz_footer ft;
};

static struct tz tz_builtin_utc = {
    .name = (char *)"UTC",
    .n = 0,
    .at = NULL,
    .off = NULL,
    .off0 = 0,
    .table_end = INT64_MIN,
    .ft = {0},
};

/* ---------------------------------------------------------------- dates */

static int64_t year_of_instant(int64_t t)
{
    int64_t y;
    unsigned m, d;
    clock_civil_from_days(date_floor_div(t, DAY_S), &y, &m, &d);
    return y;
}

/* ------------------------------------------------------- footer rules */

/* Days since the epoch of the date named by rule r in year y. */
static int64_t rule_day(const struct tz_rule *r, int64_t y)
{
    int64_t jan1 = clock_days_from_civil(y, 1, 1);

    switch (r->kind) {
    case TZ_RULE_JULIAN1:
        return jan1 + r->day - 1 + (date_is_leap(y) && r->day >= 60);
    case TZ_RULE_DAY0:
        return jan1 + r->day;
    case TZ_RULE_MONTH:
        break;
    }
    {
        int64_t first = clock_days_from_civil(y, (unsigned)r->month, 1);
        int delta = (r->wday - date_weekday(first) + 7) % 7;
        unsigned day = 1 + (unsigned)delta + 7 * (unsigned)(r->week - 1);
        unsigned dim = date_days_in_month(y, (unsigned)r->month);
        while (day > dim)
            day -= 7;
        return first + day - 1;
    }
}

/* The instant DST starts (to_dst) or ends in year y. */
static int64_t footer_event(const struct tz_footer *ft, int64_t y, int to_dst)
{
    if (to_dst)
        return rule_day(&ft->start, y) * DAY_S + ft->start.secs - ft->std_off;
    return rule_day(&ft->end, y) * DAY_S + ft->end.secs - ft->dst_off;
}

/*
 * The footer's offset at t: the kind of the latest event at or before t
 * (DST start or end) decides. Event times stay within about 8 days of their
 * year, so years y-2..y+2 contain that event. At equal instants a start
 * counts as later than an end, so an end that meets the next start (as in
 * "all year DST" rules like "EST5EDT,0/0,J365/25") leaves DST in effect.
 */
static int32_t footer_offset(const struct tz_footer *ft, int64_t t)
{
    int64_t y, best = INT64_MIN;
    int best_kind = -1; /* 0 = end of DST, 1 = start */

    if (!ft->has_dst)
        return ft->std_off;
    y = year_of_instant(t);
    for (int64_t yy = y - 2; yy <= y + 2; yy++) {
        int64_t e = footer_event(ft, yy, 0);
        int64_t s = footer_event(ft, yy, 1);
        if (e <= t && (e > best || (e == best && best_kind < 0))) {
            best = e;
            best_kind = 0;
        }
        if (s <= t && (s > best || (s == best && best_kind < 1))) {
            best = s;
            best_kind = 1;
        }
    }
    return best_kind == 1 ? ft->dst_off : ft->std_off;
}

/*
 * First instant e > lo (e <= TZ_TIME_MAX) where the footer's offset changes.
 * The calendar repeats every 400 years, so a rule that changes nothing in
 * 401 years never changes anything.
 */
static int footer_next_change(const struct tz_footer *ft, int64_t lo, int64_t *out)
{
    int64_t y0, found_year = 0, best = 0;
    int found = 0;

    if (!ft->has_dst)
        return ERR_NOT_FOUND;
    y0 = year_of_instant(lo) - 1;
    for (int64_t yy = y0; yy <= y0 + 402; yy++) {
        int beyond = 1;
        for (int k = 0; k < 2; k++) {
            int64_t e = footer_event(ft, yy, k);
            if (e <= TZ_TIME_MAX)
                beyond = 0;
            if (e <= lo || e > TZ_TIME_MAX || (found && e >= best))
                continue;
            if (footer_offset(ft, e - 1) != footer_offset(ft, e)) {
                if (!found)
                    found_year = yy;
                best = e;
                found = 1;
            }
        }
        /* A later year's events could still come first if they spill over. */
        if ((found && yy > found_year) || beyond)
            break;
    }
    if (!found)
        return ERR_NOT_FOUND;
    *out = best;
    return 0;
}

/* ---------------------------------------------------- POSIX TZ parsing */

struct tz_scan {
    const char *p;
    const char *end;
    const char *why; /* set on failure */
};

static int scan_peek(const struct tz_scan *s)
{
    return s->p < s->end ? (unsigned char)*s->p : -1;
}

static int scan_isdigit(int c)
{
    return c >= '0' && c <= '9';
}

static int scan_isalpha(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int scan_number(struct tz_scan *s, int max, int *out)
{
    int v = 0, nd = 0;

    while (scan_isdigit(scan_peek(s))) {
        v = v * 10 + (*s->p - '0');
        s->p++;
        if (++nd > 3 || v > max) {
            s->why = "number out of range";
            return -1;
        }
    }
    if (!nd) {
        s->why = "number expected";
        return -1;
    }
    *out = v;
    return 0;
}

static int scan_abbr(struct tz_scan *s)
{
    size_t n = 0;

    if (scan_peek(s) == '<') {
        s->p++;
        while (scan_isalpha(scan_peek(s)) || scan_isdigit(scan_peek(s)) || scan_peek(s) == '+' ||
               scan_peek(s) == '-') {
            s->p++;
            n++;
        }
        if (scan_peek(s) != '>' || n == 0) {
            s->why = "bad quoted abbreviation";
            return -1;
        }
        s->p++;
        return 0;
    }
    while (scan_isalpha(scan_peek(s))) {
        s->p++;
        n++;
    }
    if (n == 0) {
        s->why = "abbreviation expected";
        return -1;
    }
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh <= max_hours; the value in seconds. */
static int scan_hms(struct tz_scan *s, int max_hours, int32_t *out)
{
    int sign = 1, h, m = 0, sec = 0;

    if (scan_peek(s) == '+' || scan_peek(s) == '-') {
        sign = *s->p == '-' ? -1 : 1;
        s->p++;
    }
    if (scan_number(s, max_hours, &h))
        return -1;
    if (scan_peek(s) == ':') {
        s->p++;
        if (scan_number(s, 59, &m))
            return -1;
        if (scan_peek(s) == ':') {
            s->p++;
            if (scan_number(s, 59, &sec))
                return -1;
        }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return 0;
}

static int scan_rule(struct tz_scan *s, struct tz_rule *r)
{
    int c = scan_peek(s);

    memset(r, 0, sizeof(*r));
    if (c == 'J') {
        s->p++;
        r->kind = TZ_RULE_JULIAN1;
        if (scan_number(s, 365, &r->day))
            return -1;
        if (r->day < 1) {
            s->why = "Julian day 0";
            return -1;
        }
    } else if (c == 'M') {
        s->p++;
        r->kind = TZ_RULE_MONTH;
        if (scan_number(s, 12, &r->month) || scan_peek(s) != '.')
            goto bad;
        s->p++;
        if (scan_number(s, 5, &r->week) || scan_peek(s) != '.')
            goto bad;
        s->p++;
        if (scan_number(s, 6, &r->wday))
            goto bad;
        if (r->month < 1 || r->week < 1)
            goto bad;
    } else {
        r->kind = TZ_RULE_DAY0;
        if (scan_number(s, 365, &r->day))
            return -1;
    }
    r->secs = 2 * 3600;
    if (scan_peek(s) == '/') {
        s->p++;
        /* TZif v3+ allows -167..167 hours here (RFC 9636 3.3.1). */
        if (scan_hms(s, 167, &r->secs))
            return -1;
    }
    return 0;
bad:
    s->why = "bad M rule";
    return -1;
}

/* Parse a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". */
static int parse_footer(const char *str, size_t len, struct tz_footer *ft, const char **why)
{
    struct tz_scan s = {str, str + len, NULL};
    int32_t v;

    memset(ft, 0, sizeof(*ft));
    if (len == 0)
        return 0;
    if (scan_abbr(&s) || scan_hms(&s, 24, &v))
        goto fail;
    ft->std_off = -v; /* POSIX counts west of Greenwich as positive */
    ft->dst_off = ft->std_off + 3600;
    ft->present = 1;
    if (scan_peek(&s) == -1)
        return 0;
    if (scan_abbr(&s))
        goto fail;
    ft->has_dst = 1;
    if (scan_peek(&s) != ',') {
        if (scan_hms(&s, 24, &v))
            goto fail;
        ft->dst_off = -v;
    }
    if (scan_peek(&s) != ',') {
        /* POSIX leaves the default rule to the implementation; zic never omits it. */
        s.why = "daylight saving time without a rule";
        goto fail;
    }
    s.p++;
    if (scan_rule(&s, &ft->start))
        goto fail;
    if (scan_peek(&s) != ',') {
        s.why = "second rule expected";
        goto fail;
    }
    s.p++;
    if (scan_rule(&s, &ft->end))
        goto fail;
    if (scan_peek(&s) != -1) {
        s.why = "trailing characters";
        goto fail;
    }
    if (ft->dst_off <= -TZ_OFFSET_LIMIT || ft->dst_off >= TZ_OFFSET_LIMIT) {
        s.why = "offset out of range";
        goto fail;
    }
    return 0;
fail:
    *why = s.why ? s.why : "syntax error";
    return -1;
}

/* ------------------------------------------------------------ TZif */

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t get_be64(const unsigned char *p)
{
    uint64_t v = (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
    return (int64_t)v;
}

struct tzif_counts {
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static void read_counts(const unsigned char *h, struct tzif_counts *c)
{
    c->isutcnt = get_be32(h + 20);
    c->isstdcnt = get_be32(h + 24);
    c->leapcnt = get_be32(h + 28);
    c->timecnt = get_be32(h + 32);
    c->typecnt = get_be32(h + 36);
    c->charcnt = get_be32(h + 40);
}

/* Size of a data block whose times take `tsize` bytes (4 in v1, 8 in v2+). */
static uint64_t block_size(const struct tzif_counts *c, unsigned tsize)
{
    return (uint64_t)c->timecnt * tsize + c->timecnt + (uint64_t)c->typecnt * 6 + c->charcnt +
           (uint64_t)c->leapcnt * (tsize + 4) + c->isstdcnt + c->isutcnt;
}

#define TZIF_HEADER 44

static int tz_build(struct tz *tz, const struct tzif_counts *c, const unsigned char *blk,
                    unsigned tsize, const char **why)
{
    const unsigned char *times = blk;
    const unsigned char *idx = times + (size_t)c->timecnt * tsize;
    const unsigned char *types = idx + c->timecnt;
    int32_t prev;

    if (c->typecnt == 0 || c->typecnt > 256) {
        *why = "bad number of time types";
        return -1;
    }
    if (c->charcnt == 0) {
        *why = "no time zone abbreviations";
        return -1;
    }
    if ((c->isstdcnt && c->isstdcnt != c->typecnt) || (c->isutcnt && c->isutcnt != c->typecnt)) {
        *why = "bad indicator counts";
        return -1;
    }
    if (c->leapcnt) {
        *why = "leap-second time zone files are not supported";
        return -1;
    }
    for (uint32_t i = 0; i < c->typecnt; i++) {
        const unsigned char *tt = types + (size_t)i * 6;
        int32_t utoff = (int32_t)get_be32(tt);
        if (utoff <= -TZ_OFFSET_LIMIT || utoff >= TZ_OFFSET_LIMIT) {
            *why = "UTC offset out of range";
            return -1;
        }
        if (tt[4] > 1 || tt[5] >= c->charcnt) {
            *why = "bad time type";
            return -1;
        }
    }
    tz->at = xcalloc(c->timecnt + 2, sizeof(*tz->at));
    tz->off = xcalloc(c->timecnt + 2, sizeof(*tz->off));
    tz->off0 = (int32_t)get_be32(types);
    prev = tz->off0;
    tz->table_end = INT64_MIN;
    for (uint32_t i = 0; i < c->timecnt; i++) {
        const unsigned char *tp = times + (size_t)i * tsize;
        int64_t t = tsize == 8 ? get_be64(tp) : (int64_t)(int32_t)get_be32(tp);
        int32_t o;
        if (idx[i] >= c->typecnt) {
            *why = "bad transition type index";
            return -1;
        }
        if (i > 0 && t <= tz->table_end) {
            *why = "transitions out of order";
            return -1;
        }
        tz->table_end = t;
        o = (int32_t)get_be32(types + (size_t)idx[i] * 6);
        if (o != prev) {
            tz->at[tz->n] = t;
            tz->off[tz->n] = o;
            tz->n++;
            prev = o;
        }
    }
    return 0;
}

/*
 * Where the footer takes over from a table that ends with another offset
 * (inconsistent data), make that change an explicit transition at
 * table_end + 1 so tz_next_transition() reports it.
 */
static void tz_join_footer(struct tz *tz)
{
    int32_t last = tz->n ? tz->off[tz->n - 1] : tz->off0;
    int32_t fo;

    if (!tz->ft.present || tz->table_end == INT64_MIN)
        return;
    if (tz->table_end < TZ_TIME_MIN - 1 || tz->table_end >= TZ_TIME_MAX)
        return;
    fo = footer_offset(&tz->ft, tz->table_end + 1);
    if (fo != last) {
        tz->at[tz->n] = tz->table_end + 1;
        tz->off[tz->n] = fo;
        tz->n++;
    }
}

void tz_free(struct tz *tz)
{
    if (!tz || tz == &tz_builtin_utc)
        return;
    free(tz->name);
    free(tz->at);
    free(tz->off);
    free(tz);
}

int tz_parse(const char *name, const void *data, size_t len, struct tz **out, struct err *err)
{
    const unsigned char *d = data;
    struct tzif_counts c;
    struct tz *tz = NULL;
    const char *why = NULL;
    const unsigned char *blk;
    unsigned tsize = 4;
    uint64_t need;
    int version;

    *out = NULL;
    if (len < TZIF_HEADER || memcmp(d, "TZif", 4) != 0) {
        why = "not a TZif file";
        goto fail;
    }
    version = d[4];
    if (version != 0 && (version < '2' || version > '4')) {
        why = "unsupported TZif version";
        goto fail;
    }
    read_counts(d, &c);
    need = TZIF_HEADER + block_size(&c, 4);
    if (need > len) {
        why = "truncated file";
        goto fail;
    }
    blk = d + TZIF_HEADER;
    if (version != 0) {
        const unsigned char *h2 = d + need;
        if (len - need < TZIF_HEADER || memcmp(h2, "TZif", 4) != 0) {
            why = "truncated file (no version 2 header)";
            goto fail;
        }
        read_counts(h2, &c);
        blk = h2 + TZIF_HEADER;
        tsize = 8;
        if (block_size(&c, 8) > len - need - TZIF_HEADER) {
            why = "truncated file";
            goto fail;
        }
        need += TZIF_HEADER + block_size(&c, 8);
    }
    tz = xcalloc(1, sizeof(*tz));
    tz->name = xstrdup(name ? name : "");
    if (tz_build(tz, &c, blk, tsize, &why))
        goto fail;
    if (version != 0) {
        const unsigned char *f = d + need;
        size_t rest = len - need, flen = 0;
        if (rest < 2 || f[0] != '\n') {
            why = "missing footer";
            goto fail;
        }
        while (1 + flen < rest && f[1 + flen] != '\n' && flen <= TZ_FOOTER_MAX) {
            if (f[1 + flen] == '\0')
                break;
            flen++;
        }
        if (1 + flen >= rest || f[1 + flen] != '\n') {
            why = "bad footer";
            goto fail;
        }
        if (parse_footer((const char *)f + 1, flen, &tz->ft, &why)) {
            err_set(err, ERR_INVALID, "time zone '%s': bad footer '%.*s' (%s)", tz->name, (int)flen,
                    (const char *)f + 1, why);
            tz_free(tz);
            return ERR_INVALID;
        }
        if (tz->ft.present &&
            (tz->ft.std_off <= -TZ_OFFSET_LIMIT || tz->ft.std_off >= TZ_OFFSET_LIMIT)) {
            why = "footer offset out of range";
            goto fail;
        }
        tz_join_footer(tz);
    }
    *out = tz;
    return 0;
fail:
    err_set(err, ERR_INVALID, "time zone '%s': corrupt file (%s)", name ? name : "", why);
    tz_free(tz);
    return ERR_INVALID;
}

/* ------------------------------------------------------------ queries */

static int in_range(int64_t t)
{
    return t >= TZ_TIME_MIN && t <= TZ_TIME_MAX;
}

static int32_t offset_at(const struct tz *tz, int64_t t)
{
    size_t lo = 0, hi = tz->n;

    if (tz->ft.present && t > tz->table_end)
        return footer_offset(&tz->ft, t);
    /* Largest i with at[i] <= t. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? tz->off[lo - 1] : tz->off0;
}

const char *tz_name(const struct tz *tz)
{
    return tz->name;
}

int tz_utc_to_local(const struct tz *tz, int64_t utc_s, int64_t *out_local_s, int *out_offset_s)
{
    int32_t o;

    if (!in_range(utc_s))
        return ERR_INVALID;
    o = offset_at(tz, utc_s);
    if (out_local_s)
        *out_local_s = utc_s + o;
    if (out_offset_s)
        *out_offset_s = o;
    return 0;
}

int tz_next_transition(const struct tz *tz, int64_t after_s, int64_t *out_s, int *out_before_s,
                       int *out_after_s)
{
    size_t lo = 0, hi = tz->n;
    int64_t t, from;

    if (!in_range(after_s))
        return ERR_INVALID;
    /* First i with at[i] > after_s. */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->at[mid] <= after_s)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < tz->n) {
        /* Every table entry precedes the footer's domain (see tz_join_footer). */
        t = tz->at[lo];
        if (out_s)
            *out_s = t;
        if (out_before_s)
            *out_before_s = lo ? tz->off[lo - 1] : tz->off0;
        if (out_after_s)
            *out_after_s = tz->off[lo];
        return 0;
    }
    if (!tz->ft.present)
        return ERR_NOT_FOUND;
    /*
     * The footer's own changes count from table_end + 2 on: at table_end + 1
     * the previous instant still belongs to the table.
     */
    from = after_s;
    if (tz->table_end != INT64_MIN && from < tz->table_end + 1)
        from = tz->table_end + 1;
    if (from > TZ_TIME_MAX || footer_next_change(&tz->ft, from, &t))
        return ERR_NOT_FOUND;
    if (out_s)
        *out_s = t;
    if (out_before_s)
        *out_before_s = footer_offset(&tz->ft, t - 1);
    if (out_after_s)
        *out_after_s = footer_offset(&tz->ft, t);
    return 0;
}

int tz_local_to_utc(const struct tz *tz, int64_t local_s, int64_t out[2])
{
    /* Distinct offsets are at most 256 types + 2 footer offsets. */
    int32_t cand[260];
    int64_t sol[2];
    size_t nc = 0;
    int ns = 0;
    int64_t t;

    if (!in_range(local_s))
        return ERR_INVALID;
    /* Any solution u = local_s - offset(u) lies within TZ_OFFSET_LIMIT of local_s. */
    t = local_s - TZ_OFFSET_LIMIT;
    if (t < TZ_TIME_MIN)
        t = TZ_TIME_MIN;
    cand[nc++] = offset_at(tz, t);
    for (;;) {
        int64_t tr;
        int after;
        size_t k;
        if (tz_next_transition(tz, t, &tr, NULL, &after) || tr > local_s + TZ_OFFSET_LIMIT)
            break;
        for (k = 0; k < nc && cand[k] != after; k++)
            ;
        if (k == nc && nc < sizeof(cand) / sizeof(cand[0]))
            cand[nc++] = after;
        t = tr;
    }
    /* Sort candidates by decreasing offset: solutions come out ascending. */
    for (size_t i = 1; i < nc; i++)
        for (size_t j = i; j > 0 && cand[j - 1] < cand[j]; j--) {
            int32_t x = cand[j];
            cand[j] = cand[j - 1];
            cand[j - 1] = x;
        }
    for (size_t i = 0; i < nc; i++) {
        int64_t u = local_s - cand[i];
        if (!in_range(u) || offset_at(tz, u) != cand[i])
            continue;
        if (ns < 2)
            sol[ns++] = u;
        else
            sol[1] = u; /* keep the first and the last */
    }
    for (int i = 0; i < ns; i++)
        out[i] = sol[i];
    return ns;
}

int tz_gap_end(const struct tz *tz, int64_t local_s, int64_t *out_utc_s, int *out_gap_s)
{
    int64_t u[2], t;
    int n = tz_local_to_utc(tz, local_s, u);

    if (n < 0)
        return n;
    if (n > 0)
        return ERR_NOT_FOUND;
    t = local_s - TZ_OFFSET_LIMIT;
    if (t < TZ_TIME_MIN)
        t = TZ_TIME_MIN;
    for (;;) {
        int64_t tr;
        int before, after;
        if (tz_next_transition(tz, t, &tr, &before, &after) || tr > local_s + TZ_OFFSET_LIMIT)
            return ERR_NOT_FOUND;
        if (before < after && tr + before <= local_s && local_s < tr + after) {
            if (out_utc_s)
                *out_utc_s = tr;
            if (out_gap_s)
                *out_gap_s = after - before;
            return 0;
        }
        t = tr;
    }
}

/* ---------------------------------------------------------- loading */

static int valid_name(const char *name, const char **why)
{
    size_t len = strlen(name);

    if (len == 0) {
        *why = "empty name";
        return 0;
    }
    if (len > TZ_NAME_MAX) {
        *why = "name too long";
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '/' || c == '_' || c == '+' || c == '-';
        if (!ok) {
            *why = "only letters, digits, '/', '_', '+' and '-' are allowed";
            return 0;
        }
    }
    if (name[0] == '/' || name[len - 1] == '/' || strstr(name, "//")) {
        *why = "empty path component";
        return 0;
    }
    return 1;
}

static int read_file(const char *path, const char *name, unsigned char **out_buf, size_t *out_len,
                     struct err *err)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t got = 0;
    int fd, rc = 0;

    *out_buf = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return err_set(err, ERR_NOT_FOUND, "unknown time zone '%s'", name);
        return err_set(err, ERR_IO, "cannot open time zone file '%s': %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rc = err_set(err, ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = err_set(err, ERR_NOT_FOUND, "unknown time zone '%s'", name);
        goto out;
    }
    if (st.st_size > TZ_FILE_MAX) {
        rc = err_set(err, ERR_INVALID, "time zone '%s': file too large", name);
        goto out;
    }
    buf = xmalloc((size_t)st.st_size + 1);
    while (got < (size_t)st.st_size + 1) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = err_set(err, ERR_IO, "cannot read '%s': %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > (size_t)st.st_size) {
        rc = err_set(err, ERR_IO, "'%s' changed while being read", path);
        goto out;
    }
    *out_buf = buf;
    *out_len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

struct tz_cache_entry {
    char *path;
    struct tz *tz;
    struct tz_cache_entry *next;
};

static pthread_mutex_t tz_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz_cache_entry *tz_cache;

/* Caller holds tz_cache_lock. */
static struct tz *cache_find(const char *path)
{
    for (struct tz_cache_entry *e = tz_cache; e; e = e->next)
        if (strcmp(e->path, path) == 0)
            return e->tz;
    return NULL;
}

const struct tz *tz_utc(void)
{
    return &tz_builtin_utc;
}

int tz_load(const char *name, const struct tz **out, struct err *err)
{
    const char *dir = getenv("ORCH_TZDIR");
    const char *why = NULL;
    unsigned char *data = NULL;
    struct tz *tz = NULL, *found;
    char *path = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    if (!valid_name(name, &why))
        return err_set(err, ERR_INVALID, "invalid time zone name '%.*s': %s", TZ_NAME_MAX, name,
                       why);
    if (!dir || !*dir)
        dir = TZ_DEFAULT_DIR;
    path = xasprintf("%s/%s", dir, name);

    pthread_mutex_lock(&tz_cache_lock);
    found = cache_find(path);
    pthread_mutex_unlock(&tz_cache_lock);
    if (found) {
        *out = found;
        rc = 0;
        goto out;
    }

    /* Read and parse without the lock; a racing loader of the same zone loses below. */
    rc = read_file(path, name, &data, &len, err);
    if (rc == ERR_NOT_FOUND && (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
        *out = &tz_builtin_utc;
        rc = 0;
        goto out;
    }
    if (rc)
        goto out;
    rc = tz_parse(name, data, len, &tz, err);
    if (rc)
        goto out;

    pthread_mutex_lock(&tz_cache_lock);
    found = cache_find(path);
    if (!found) {
        struct tz_cache_entry *e = xmalloc(sizeof(*e));
        e->path = path;
        e->tz = tz;
        e->next = tz_cache;
        tz_cache = e;
        found = tz;
        path = NULL;
        tz = NULL;
    }
    pthread_mutex_unlock(&tz_cache_lock);
    *out = found;
out:
    tz_free(tz);
    free(data);
    free(path);
    return rc;
}

void tz_cache_clear(void)
{
    struct tz_cache_entry *e, *next;

    pthread_mutex_lock(&tz_cache_lock);
    e = tz_cache;
    tz_cache = NULL;
    pthread_mutex_unlock(&tz_cache_lock);
    for (; e; e = next) {
        next = e->next;
        tz_free(e->tz);
        free(e->path);
        free(e);
    }
}
