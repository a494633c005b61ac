/*
 * gzip.c - compressed answers. A client whose Accept-Encoding accepts gzip
 * (RFC 9110, 12.5.3) gets a JSON answer of API_GZIP_MIN bytes or more, and
 * the web pages' files, gzipped: a 1,000-task execution's detail is about
 * 500 KB of JSON and a tenth of that compressed. zlib's deflate writes the
 * gzip wrapper itself (windowBits 16 + 15).
 *
 * Every answer that could be compressed says "Vary: Accept-Encoding", and a
 * compressed one has an ETag of its own (the plain one with "-gz" inside the
 * quotes): the two are different bytes (RFC 9110, 8.8.3).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "api_internal.h"
#include "base/xalloc.h"

#include "base/banned.h"

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Is the weight of a "q=" parameter zero? A qvalue is "0" or "1" with up to
 * three decimals; "0", "0.", "0.0", "0.00", "0.000" weigh nothing, anything
 * else is taken as accepting (a malformed weight never forbids).
 */
static int q_is_zero(const char *v, size_t n)
{
    if (n == 0 || v[0] != '0')
        return 0;
    if (n == 1)
        return 1;
    if (v[1] != '.' || n > 5)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (v[i] != '0')
            return 0;
    return 1;
}

int api__accepts_gzip(const char *ae)
{
    int gzip = -1, star = -1; /* -1 unnamed, 0 refused, 1 accepted */
    const char *p = ae;

    if (!ae)
        return 0;
    while (*p) {
        const char *name, *end;
        size_t nlen;
        int ok = 1;

        while (ows(*p) || *p == ',')
            p++;
        if (!*p)
            break;
        name = p;
        while (*p && *p != ',' && *p != ';' && !ows(*p))
            p++;
        nlen = (size_t)(p - name);
        /* Parameters: only q matters. */
        while (*p && *p != ',') {
            const char *k, *v;
            while (ows(*p) || *p == ';')
                p++;
            k = p;
            while (*p && *p != '=' && *p != ',' && *p != ';')
                p++;
            if (*p != '=')
                continue;
            end = p;
            while (end > k && ows(end[-1]))
                end--;
            v = ++p;
            while (ows(*v))
                v++;
            p = v;
            while (*p && *p != ',' && *p != ';' && !ows(*p))
                p++;
            if (end - k == 1 && (*k == 'q' || *k == 'Q') && q_is_zero(v, (size_t)(p - v)))
                ok = 0;
            while (ows(*p))
                p++;
        }
        if ((nlen == 4 && !strncasecmp(name, "gzip", 4)) ||
            (nlen == 6 && !strncasecmp(name, "x-gzip", 6)))
            gzip = ok;
        else if (nlen == 1 && *name == '*')
            star = ok;
    }
    return gzip >= 0 ? gzip : star > 0;
}

int api__gzip(const void *in, size_t len, int level, char **out, size_t *outlen)
{
    z_stream z;
    uLong cap;
    char *buf;
    int rc;

    memset(&z, 0, sizeof(z));
    if (len > UINT32_MAX / 2 || deflateInit2(&z, level, Z_DEFLATED, 16 + 15, 8,
                                             Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    cap = deflateBound(&z, (uLong)len);
    buf = xmalloc(cap);
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)cap;
    rc = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    /* Not smaller: the plain bytes are the better answer. */
    if (rc != Z_STREAM_END || z.total_out >= len) {
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = z.total_out;
    return 0;
}

void api__etag_gz(const char *etag, char *out, size_t size)
{
    size_t n = strlen(etag);

    /* "abc" -> "abc-gz"; a tag that is not quoted is left as it is. */
    if (n < 2 || etag[n - 1] != '"' || n + 4 > size) {
        snprintf(out, size, "%s", etag);
        return;
    }
    memcpy(out, etag, n - 1);
    memcpy(out + n - 1, "-gz\"", 5);
}
