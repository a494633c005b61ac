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

/*
 * One clock for the engine, the scheduler and the store: every deadline,
 * lease, heartbeat, retention cut-off and recorded instant reads these two.
 * It is the system's clock unless a test switches to a manual one, which
 * moves only when told (clock_advance) or, with auto-advance on, when the
 * engine's loop would otherwise wait for a deadline (see clock_set_auto).
 * Both readings move together under a manual clock. Safe from any thread.
 */

/*
 * Wall-clock time in milliseconds since the epoch (UTC). On a thread inside
 * a turn (clock_turn_begin), the time read when the turn began.
 */
int64_t clock_now_ms(void);
/* Monotonic time in milliseconds (arbitrary origin); the same turn rule. */
int64_t clock_mono_ms(void);
/* The same clocks read now, inside a turn or not. */
int64_t clock_now_fresh_ms(void);
int64_t clock_mono_fresh_ms(void);

/*
 * A turn of an event loop reads the time once: from clock_turn_begin() until
 * clock_turn_end(), clock_now_ms() and clock_mono_ms() on the calling thread
 * return the values read at its clock_turn_begin(), so what one turn records
 * (created, finished, attempt times) and arms (timers, leases) agrees, and
 * the store's stamps of that turn too. Other threads are not affected.
 */
void clock_turn_begin(void);
void clock_turn_end(void);
/*
 * The system's monotonic clock in nanoseconds, manual or not: it measures how
 * long work takes (request latency, benchmarks), which a test must not fake.
 */
int64_t clock_mono_ns(void);

/*
 * Switch to a manual clock that reads `wall_ms` and `mono_ms` now and stands
 * still until advanced; auto-advance is off. For tests: call it before any
 * thread reads the clock, and clock_use_real() once they are done.
 */
void clock_use_manual(int64_t wall_ms, int64_t mono_ms);
/* Back to the system's clock. */
void clock_use_real(void);
/* 1 while the clock is manual. */
int clock_is_manual(void);
/* Move a manual clock forward by `ms` (>= 0); no effect on the real one. */
void clock_advance(int64_t ms);
/* Move a manual clock forward to monotonic `mono_ms` (never backwards). */
void clock_advance_to(int64_t mono_ms);

/*
 * Auto-advance of a manual clock, like a paused clock in a test runtime:
 * when the engine's loop has nothing to do but wait for its next deadline,
 * and no process or request of its own can report meanwhile, it moves the
 * clock to that deadline instead of sleeping; while it waits on processes or
 * requests, the clock moves by the real time the wait took. It never moves the
 * clock past `until_mono_ms` (CLOCK_AUTO_FOREVER: no bound), so a test that
 * runs the engine on a thread decides how far its time goes. 0 turns it off.
 */
#define CLOCK_AUTO_FOREVER INT64_MAX
void clock_set_auto(int64_t until_mono_ms);
/* The bound of auto-advance, or 0 when it is off (or the clock is real). */
int64_t clock_auto_until(void);

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
