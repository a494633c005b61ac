/*
 * id.h - prefixed, time-ordered identifiers.
 *
 * An id is a prefix ("ex_"), then 16 Crockford base32 characters encoding
 * 48 bits of milliseconds since the epoch and 32 more bits. Within a
 * process, ids are strictly increasing (the 32 bits count up within a
 * millisecond from a random start), so sorting ids sorts by creation time
 * and "newest first" is a keyset scan. Thread-safe.
 */
#ifndef ORCH_BASE_ID_H
#define ORCH_BASE_ID_H

#include <stdint.h>

#define ID_MAX 32 /* room for any prefix up to 15 chars + 16 + NUL */

/* Write a new id with `prefix` (e.g. "ex_") into out[ID_MAX]; returns out. */
char *id_new(const char *prefix, char *out);

/* The smallest id with `prefix` of instant `ms` (every id made at or after
 * `ms` sorts at or after it) into out[ID_MAX]; returns out. */
char *id_at(const char *prefix, int64_t ms, char *out);

/* The creation time encoded in an id (ms), or -1 if it is not one of ours. */
int64_t id_time_ms(const char *id);

#endif
