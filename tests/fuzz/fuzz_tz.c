/*
 * fuzz_tz - libFuzzer target for the TZif reader and POSIX TZ footer rules.
 *
 * The input is a zone file. When it parses, the zone's invariants are checked
 * at a set of instants: a wall time's instants include the instant it came
 * from (or bracket it, when bad data repeats a wall time three times), and
 * each transition really changes the offset.
 *
 * tz.c is included rather than linked so that this target's coverage
 * instrumentation (tests/fuzz/CMakeLists.txt adds -fsanitize=fuzzer to the
 * target only) reaches the code under test.
 */
#include "../../src/sched/tz.c"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_instant(const struct tz *tz, int64_t t)
{
    int64_t local, u[2], tr;
    int off, n, before, after;

    if (tz_utc_to_local(tz, t, &local, &off))
        return;
    if (off <= -TZ_OFFSET_LIMIT || off >= TZ_OFFSET_LIMIT || local != t + off)
        abort();
    n = tz_local_to_utc(tz, local, u);
    if (n == 1 && u[0] != t)
        abort();
    if (n == 2 && !(u[0] < u[1] && u[0] <= t && t <= u[1]))
        abort();
    if (n != 1 && n != 2 && n != ERR_INVALID)
        abort();
    if (!tz_next_transition(tz, t, &tr, &before, &after)) {
        int b2, a2;
        if (tr <= t || before == after)
            abort();
        if (in_range(tr) && (tz_utc_to_local(tz, tr - 1, NULL, &b2) ||
                             tz_utc_to_local(tz, tr, NULL, &a2) || b2 != before || a2 != after))
            abort();
    }
    if (tz_local_to_utc(tz, local + 1800, u) == 0) {
        int gap;
        if (!tz_gap_end(tz, local + 1800, &tr, &gap) && gap <= 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t probes[] = {0,           -1,          1,           1000000000,
                                     2000000000,  2147483647,  4102444800,  -2147483648LL,
                                     -5000000000, 10000000000, TZ_TIME_MAX, TZ_TIME_MIN};
    struct tz *tz = NULL;
    struct err err = ERR_INIT;
    int64_t t;

    if (tz_parse("fuzz", data, size, &tz, &err)) {
        if (tz || err.code != ERR_INVALID || !err.msg[0])
            abort();
        return 0;
    }
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
        check_instant(tz, probes[i]);
    /* Walk the first transitions from 1900 and check around each. */
    t = -2208988800LL;
    for (int i = 0; i < 40; i++) {
        if (tz_next_transition(tz, t, &t, NULL, NULL))
            break;
        check_instant(tz, t - 1);
        check_instant(tz, t);
    }
    tz_free(tz);
    return 0;
}
