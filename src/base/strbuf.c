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
