/*
 * tz.h - IANA time zones from TZif files, without libc's TZ machinery.
 *
 * The scheduler matches cron expressions on the wall clock of a schedule's
 * own zone, in a multi-threaded server. localtime_r()/mktime() only know the
 * process-wide TZ, and switching it with setenv()+tzset() races with every
 * getenv() in the process. So we read the zone files ourselves: a TZif v1-v4
 * reader (RFC 9636) plus the POSIX TZ rule in the file's footer, which
 * governs instants after the file's last transition (Debian's files list
 * transitions up to 2037; the footer carries the rule beyond).
 *
 * Model. A zone is a function from a UTC instant (seconds since the epoch,
 * no leap seconds) to a UTC offset in seconds, east positive. The local
 * ("wall") time of an instant t is t + offset(t), also counted in seconds
 * since 1970-01-01 00:00 of that wall clock. A transition is an instant T
 * where offset(T - 1) != offset(T); changes of abbreviation or DST flag
 * alone are not transitions here. When the offset increases, the wall times
 * [T + before, T + after) do not exist (a gap); when it decreases, the wall
 * times [T + after, T + before) happen twice (an overlap).
 *
 * Zones are immutable once built and may be shared by any number of threads
 * without locking. Instants and wall times passed to these functions must
 * lie in [TZ_TIME_MIN, TZ_TIME_MAX] (about +-34,000 years); outside that
 * range the functions return ERR_INVALID.
 *
 * Offsets are bounded: a file with an offset of 26 hours or more, in its
 * table or its footer, is rejected as corrupt (RFC 9636 says offsets SHOULD
 * lie in [-89999, 93599]).
 */
#ifndef ORCH_SCHED_TZ_H
#define ORCH_SCHED_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct tz;

#define TZ_TIME_MAX ((int64_t)1 << 40)
#define TZ_TIME_MIN (-TZ_TIME_MAX)

/* Longest zone name accepted by tz_load(). */
#define TZ_NAME_MAX 255

/* Largest zone file read (the largest in tzdata is about 4 KiB). */
#define TZ_FILE_MAX (256 * 1024)

/* Every offset is strictly between -TZ_OFFSET_LIMIT and +TZ_OFFSET_LIMIT. */
#define TZ_OFFSET_LIMIT (26 * 3600)

/*
 * Look up the zone `name` (an IANA name such as "Europe/Berlin", "UTC" or
 * the link "US/Eastern"). The file is read from /usr/share/zoneinfo/<name>,
 * or from $ORCH_TZDIR/<name> when ORCH_TZDIR is set (for tests). Names may
 * contain only [A-Za-z0-9/_+-], must not start or end with '/' and must not
 * contain an empty component. "UTC" and "Etc/UTC" work even when the tzdata
 * package is missing (a built-in zone is used when their file is absent).
 * Leap-second ("right/") files are rejected.
 *
 * On success *out points to a zone owned by a process-wide cache (keyed by
 * the file's path), valid until the process exits or tz_cache_clear() runs;
 * do not free it. Thread-safe. On failure *out is NULL and the return is
 * ERR_INVALID (bad name, corrupt file), ERR_NOT_FOUND (no such zone) or
 * ERR_IO, with a message in err.
 */
int tz_load(const char *name, const struct tz **out, struct err *err);

/* The built-in UTC zone (no file involved). Never NULL, never freed. */
const struct tz *tz_utc(void);

/*
 * Free every cached zone. For tests only: no other thread may be using the
 * cache or any zone it returned.
 */
void tz_cache_clear(void);

/*
 * Build a zone from the bytes of a TZif file (`len` bytes at `data`) without
 * touching the cache or the file system; `name` is only recorded (tz_name)
 * and used in messages. For tests and fuzzing. On success the caller owns
 * *out and frees it with tz_free(). On failure *out is NULL and the return is
 * ERR_INVALID with a message in err.
 */
int tz_parse(const char *name, const void *data, size_t len, struct tz **out, struct err *err);

/* Free a zone returned by tz_parse(). NULL is accepted. Never pass a cached zone. */
void tz_free(struct tz *tz);

/* The name the zone was loaded under ("US/Eastern" stays "US/Eastern"). */
const char *tz_name(const struct tz *tz);

/*
 * The UTC offset in effect at instant utc_s, and the wall time there.
 * Either output may be NULL. Returns 0, or ERR_INVALID out of range.
 */
int tz_utc_to_local(const struct tz *tz, int64_t utc_s, int64_t *out_local_s, int *out_offset_s);

/*
 * The instants whose wall time is local_s, ascending, in out[0..n-1].
 * Returns n: 0 when local_s falls in a gap, 1 normally, 2 in an overlap (the
 * first and the second pass); or ERR_INVALID out of range. If malformed data
 * made a wall time occur more than twice, out holds the first and the last.
 */
int tz_local_to_utc(const struct tz *tz, int64_t local_s, int64_t out[2]);

/*
 * The first transition strictly after after_s: *out_s = T, with the offsets
 * before and after it (either pointer may be NULL). Returns 0, ERR_NOT_FOUND
 * when the offset never changes after after_s, or ERR_INVALID out of range.
 */
int tz_next_transition(const struct tz *tz, int64_t after_s, int64_t *out_s, int *out_before_s,
                       int *out_after_s);

/*
 * If wall time local_s falls in a gap, set *out_utc_s to the first instant
 * after the gap (the transition instant, whose wall time is the first one
 * that exists again) and *out_gap_s to the gap's length, and return 0.
 * Returns ERR_NOT_FOUND if local_s exists, ERR_INVALID out of range.
 * Either output may be NULL.
 */
int tz_gap_end(const struct tz *tz, int64_t local_s, int64_t *out_utc_s, int *out_gap_s);

#endif
