/*
 * strbuf.h - a growable byte string.
 *
 * Invariants: `buf` is never NULL (it points to a static empty string until
 * the first growth) and is always NUL-terminated at buf[len]. Members are
 * readable; change them only through these functions.
 *
 * A strbuf may carry a maximum (`max`, 0 = unbounded): an append that would
 * exceed it appends nothing and returns ERR_TOO_BIG. Use a maximum for any
 * data whose size comes from outside (request bodies, task output).
 */
#ifndef ORCH_BASE_STRBUF_H
#define ORCH_BASE_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

extern char strbuf_empty[];

struct strbuf {
    size_t len;
    size_t alloc;
    size_t max;
    char *buf;
};

#define STRBUF_INIT {0, 0, 0, strbuf_empty}

void strbuf_init(struct strbuf *sb, size_t max);
/* Free the storage and reset to empty (the maximum is kept). */
void strbuf_release(struct strbuf *sb);
/* Keep the storage, make it empty. */
void strbuf_reset(struct strbuf *sb);
/* Hand the storage to the caller (who frees it); sb is reset to empty. */
char *strbuf_detach(struct strbuf *sb, size_t *out_len);

int strbuf_add(struct strbuf *sb, const void *data, size_t len);
int strbuf_adds(struct strbuf *sb, const char *s);
int strbuf_addch(struct strbuf *sb, int c);
int strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/*
 * Append `len` bytes of `s` as valid UTF-8: every byte sequence that is not
 * well-formed UTF-8 (overlong forms, surrogates, code points past U+10FFFF,
 * truncated sequences) and every NUL byte becomes U+FFFD. For text from
 * outside (task output, error messages) on its way into JSON.
 */
int strbuf_add_utf8(struct strbuf *sb, const char *s, size_t len);

/* Append `s` as a JSON string literal, quotes included. */
int strbuf_add_json_str(struct strbuf *sb, const char *s);

/* Append `s` percent-encoded (RFC 3986): all but A-Z a-z 0-9 - . _ ~ */
int strbuf_add_urlencoded(struct strbuf *sb, const char *s);

#endif
