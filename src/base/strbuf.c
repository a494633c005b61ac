#include "strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

char strbuf_empty[1];

void strbuf_init(struct strbuf *sb, size_t max)
{
    sb->len = 0;
    sb->alloc = 0;
    sb->max = max;
    sb->buf = strbuf_empty;
}

void strbuf_release(struct strbuf *sb)
{
    if (sb->alloc)
        free(sb->buf);
    strbuf_init(sb, sb->max);
}

void strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->alloc)
        sb->buf[0] = '\0';
}

char *strbuf_detach(struct strbuf *sb, size_t *out_len)
{
    char *p;
    if (out_len)
        *out_len = sb->len;
    p = sb->alloc ? sb->buf : xstrdup("");
    strbuf_init(sb, sb->max);
    return p;
}

static int grow(struct strbuf *sb, size_t extra)
{
    size_t need = sb->len + extra + 1;
    size_t n;

    if (sb->max && sb->len + extra > sb->max)
        return ERR_TOO_BIG;
    if (need <= sb->alloc)
        return 0;
    n = sb->alloc ? sb->alloc : 64;
    while (n < need)
        n *= 2;
    if (sb->alloc) {
        sb->buf = xrealloc(sb->buf, n);
    } else {
        sb->buf = xmalloc(n);
        sb->buf[0] = '\0';
    }
    sb->alloc = n;
    return 0;
}

int strbuf_add(struct strbuf *sb, const void *data, size_t len)
{
    int rc = grow(sb, len);
    if (rc)
        return rc;
    if (len)
        memcpy(sb->buf + sb->len, data, len);
    sb->len += len;
    sb->buf[sb->len] = '\0';
    return 0;
}

int strbuf_adds(struct strbuf *sb, const char *s)
{
    return strbuf_add(sb, s, strlen(s));
}

int strbuf_addch(struct strbuf *sb, int c)
{
    char ch = (char)c;
    return strbuf_add(sb, &ch, 1);
}

int strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    int n, rc;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return ERR_INVALID;
    rc = grow(sb, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
    return 0;
}

int strbuf_addf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    int rc;
    va_start(ap, fmt);
    rc = strbuf_vaddf(sb, fmt, ap);
    va_end(ap);
    return rc;
}

/* Length of the well-formed UTF-8 sequence at p (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    if (c >= 0x01 && c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return left >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return left >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return left >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
                       (p[3] & 0xc0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

int strbuf_add_utf8(struct strbuf *sb, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int rc = 0;

    while (i < len && !rc) {
        size_t run = i;
        size_t n;
        /* Copy the longest valid run in one go. */
        while (run < len && (n = utf8_seq(p + run, len - run)) > 0)
            run += n;
        if (run > i)
            rc = strbuf_add(sb, s + i, run - i);
        i = run;
        if (i < len && !rc) {
            rc = strbuf_add(sb, "\xef\xbf\xbd", 3);
            i++;
        }
    }
    return rc;
}

int strbuf_add_json_str(struct strbuf *sb, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = strbuf_addch(sb, '"');

    for (; !rc && *p; p++) {
        switch (*p) {
        case '"': rc = strbuf_adds(sb, "\\\""); break;
        case '\\': rc = strbuf_adds(sb, "\\\\"); break;
        case '\n': rc = strbuf_adds(sb, "\\n"); break;
        case '\r': rc = strbuf_adds(sb, "\\r"); break;
        case '\t': rc = strbuf_adds(sb, "\\t"); break;
        default:
            if (*p < 0x20)
                rc = strbuf_addf(sb, "\\u%04x", *p);
            else
                rc = strbuf_addch(sb, *p);
        }
    }
    return rc ? rc : strbuf_addch(sb, '"');
}

int strbuf_add_urlencoded(struct strbuf *sb, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int rc;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = strbuf_addch(sb, c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            rc = strbuf_add(sb, e, sizeof(e));
        }
        if (rc)
            return rc;
    }
    return 0;
}
