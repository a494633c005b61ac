/*
 * fuzz_cron - libFuzzer target for cron expressions and next-fire times.
 *
 * The input is an expression (text, so the seed corpus stays readable). When
 * it parses, cron_next() runs from instants picked by a hash of the input in
 * a few zones with DST quirks and with each dst option, and every answer is
 * checked: strictly later than the start, and either a matching wall time or
 * (fixed-time schedules) the end of a gap.
 *
 * cron.c is included rather than linked so that this target's coverage
 * instrumentation reaches it (tests/fuzz/CMakeLists.txt instruments only the
 * target); tz.c comes from the library (it has its own fuzzer).
 */
#include "../../src/sched/cron.c"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const zone_names[] = {"UTC",          "Europe/Berlin",    "Australia/Lord_Howe",
                                         "Pacific/Apia", "America/Santiago", "Asia/Gaza"};
#define NZONES (sizeof(zone_names) / sizeof(zone_names[0]))

/* Instants near DST transitions and calendar edges. */
static const int64_t starts[] = {
    1774745999,                /* Berlin gap */
    1792886400,                /* Berlin overlap */
    1775314800,                /* Lord Howe fall back */
    1791041399,                /* Lord Howe spring forward */
    1325196000,                /* Apia's skipped day */
    1709164800,                /* 2024-02-29 */
    4107542400,                /* 2100-03-01 */
    -1,         0, 3794173200, /* Berlin 2090 */
};

static void check(const struct cron_expr *ce, const struct tz *tz, int64_t start,
                  const struct cron_dst *dst)
{
    int64_t t = start, next, local, days, y, tr;
    unsigned m, d;
    int sod;

    for (int i = 0; i < 4; i++) {
        int rc = cron_next(ce, tz, dst, t, &next);
        if (rc == ERR_NOT_FOUND || rc == ERR_INVALID)
            return;
        if (rc || next <= t || next > t + CRON_HORIZON_S + 2 * 86400)
            abort();
        if (tz_utc_to_local(tz, next, &local, NULL))
            abort();
        days = date_floor_div(local, DAY_S);
        sod = (int)(local - days * DAY_S);
        clock_civil_from_days(days, &y, &m, &d);
        if (!cron_matches(ce, y, (int)m, (int)d, sod / 3600, sod / 60 % 60) || sod % 60) {
            /* Only a fixed-time schedule catching up a gap fires at another wall time. */
            if (ce->cadence || tz_next_transition(tz, next - 1, &tr, NULL, NULL) || tr != next)
                abort();
        }
        t = next;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct tz *zones[NZONES];
    static int loaded;
    char buf[CRON_EXPR_MAX + 16];
    struct cron_expr ce, again;
    struct err err = ERR_INIT;
    uint32_t h = 2166136261u;

    if (!loaded) {
        for (size_t i = 0; i < NZONES; i++)
            if (tz_load(zone_names[i], &zones[i], NULL))
                zones[i] = tz_utc();
        loaded = 1;
    }
    if (size >= sizeof(buf))
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    if (cron_parse(buf, &ce, &err)) {
        if (err.code != ERR_INVALID || !err.msg[0])
            abort();
        return 0;
    }
    if (cron_parse(buf, &again, NULL) || memcmp(&ce, &again, sizeof(ce)) != 0)
        abort();
    for (size_t i = 0; i < size; i++)
        h = (h ^ data[i]) * 16777619u;
    for (int k = 0; k < 3; k++) {
        const struct tz *tz = zones[(h >> (4 * k)) % NZONES];
        int64_t start = starts[(h >> (8 + 3 * k)) % (sizeof(starts) / sizeof(starts[0]))] +
                        (int64_t)((h >> 16) % 172800) - 86400;
        struct cron_dst dst = {(enum cron_dst_skipped)((h >> (20 + k)) & 1),
                               (enum cron_dst_repeated)((h >> (24 + 2 * k)) % 3)};
        check(&ce, tz, start, &dst);
    }
    return 0;
}
