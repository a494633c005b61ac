/*
 * err.h - the project's error codes and the error carrier.
 *
 * Functions that can fail return int: 0 on success or a negative ERR_* code.
 * Where a caller needs a message, the function takes a `struct err *err`
 * which it fills only on failure (code + message); on success it is left
 * untouched, so calls can be chained and the top level decides whether to
 * log or return the message. `err` may be NULL when the caller does not care.
 */
#ifndef ORCH_BASE_ERR_H
#define ORCH_BASE_ERR_H

#include <stddef.h>

enum err_code {
    ERR_OK = 0,
    ERR_NOMEM = -1,     /* out of memory (rare: xmalloc aborts) */
    ERR_INVALID = -2,   /* bad input from a user or a file */
    ERR_NOT_FOUND = -3, /* no such object */
    ERR_CONFLICT = -4,  /* state does not allow it (stale attempt, duplicate) */
    ERR_IO = -5,        /* system call or file failure */
    ERR_TIMEOUT = -6,   /* deadline passed */
    ERR_STORE = -7,     /* database failure */
    ERR_TOO_BIG = -8,   /* a bounded size was exceeded */
    ERR_BUSY = -9,      /* resource temporarily unavailable (retry) */
    ERR_INTERNAL = -10, /* a bug or an impossible state */
    ERR_FENCED = -11,   /* another node owns it now (its lease passed to another) */
    ERR_FULL = -12,     /* the database's disk is full: nothing written (retry once freed) */
};

#define ERR_MSG_MAX 512

/* Members are readable by callers; set them through err_set() only. */
struct err {
    int code;
    char msg[ERR_MSG_MAX];
};

#define ERR_INIT {0, {0}}

/* Fill `err` (if not NULL) with `code` and a printf-style message; returns `code`. */
int err_set(struct err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "prefix: " to the message already in `err` (for context as it bubbles up). */
void err_prefix(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short symbolic name of a code ("ERR_NOT_FOUND"), never NULL. */
const char *err_name(int code);

/* Human text for a code ("not found"), never NULL. */
const char *err_str(int code);

#endif
