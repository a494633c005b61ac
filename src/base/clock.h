/*
 * clock.h - time helpers.
 *
 * Instants users read (created, started, finished) are UTC milliseconds since
 * the epoch from CLOCK_REALTIME; durations and timeouts use CLOCK_MONOTONIC.
 */
#ifndef ORCH_BASE_CLOCK_H
#define ORCH_BASE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Wall-clock time in milliseconds since the epoch (UTC). */
int64_t clock_now_ms(void);
/* Monotonic time in milliseconds / nanoseconds (arbitrary origin). */
int64_t clock_mono_ms(void);
int64_t clock_mono_ns(void);

#define CLOCK_ISO_MAX 32
/* Format `ms` as "2026-11-29T10:00:00.123Z" into out[CLOCK_ISO_MAX]; returns out. */
char *clock_iso8601(int64_t ms, char *out);

/*
 * Parse an RFC 3339 instant ("2026-11-29T10:00:00Z", "...T10:00:00.5+01:00")
 * or a date "2026-11-29" (midnight UTC) into milliseconds. Returns 0 or
 * ERR_INVALID.
 */
int clock_parse_iso8601(const char *s, int64_t *out_ms);

/*
 * Parse a duration: a number of seconds ("90", "1.5") or a string of
 * number+unit groups ("90s", "10m", "1h30m", "250ms", "2d"; units ms s m h d).
 * Result in milliseconds, must be >= 0 and fit in 10 years.
 * Returns 0 or ERR_INVALID with a message in err.
 */
int clock_parse_duration(const char *s, int64_t *out_ms, struct err *err);

/* Format a duration for people: "1.204s", "350ms", "2m03s", "1h02m". */
char *clock_fmt_duration(int64_t ms, char *out, size_t outlen);

/* Days from 1970-01-01 for a proleptic Gregorian date (no libc, no TZ). */
int64_t clock_days_from_civil(int64_t y, unsigned m, unsigned d);
/* Inverse of clock_days_from_civil. */
void clock_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d);

#endif
