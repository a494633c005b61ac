/*
 * query.c - pure parsers for what arrives in a request line or header:
 * query arguments, ids, the listen address, and UTF-8 repair for JSON.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "base/clock.h"

#include "base/banned.h"

int api__parse_uint(const char *s, int max, int *out)
{
    long v = 0;

    if (!s || !*s || strlen(s) > 10)
        return ERR_INVALID;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return ERR_INVALID;
        v = v * 10 + (*p - '0');
        if (v > max)
            return ERR_INVALID;
    }
    *out = (int)v;
    return 0;
}

int api__parse_limit(const char *s, int *out)
{
    int v;
    if (api__parse_uint(s, API_LIST_MAX, &v) || v < 1)
        return ERR_INVALID;
    *out = v;
    return 0;
}

int api__parse_status_list(const char *s, unsigned *out_mask, char *bad, size_t badlen)
{
    unsigned mask = 0;
    const char *p = s;

    if (badlen)
        bad[0] = '\0';
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[32];
        enum exec_status st;

        if (n == 0 || n >= sizeof(name)) {
            snprintf(bad, badlen, "%.*s", (int)(n < 31 ? n : 31), p);
            return ERR_INVALID;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        if (exec_status_parse(name, &st)) {
            snprintf(bad, badlen, "%s", name);
            return ERR_INVALID;
        }
        mask |= 1u << st;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out_mask = mask;
    return 0;
}

int api__parse_instant(const char *s, int64_t *out_ms)
{
    size_t n = strlen(s);
    size_t digits = strspn(s, "0123456789");

    if (n > 0 && digits == n) {
        long long v;
        char *end;
        if (n > 15)
            return ERR_INVALID;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno || *end)
            return ERR_INVALID;
        *out_ms = v;
        return 0;
    }
    return clock_parse_iso8601(s, out_ms) ? ERR_INVALID : 0;
}

int api__parse_bool(const char *s, int *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "1"))
        *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "0"))
        *out = 0;
    else
        return ERR_INVALID;
    return 0;
}

int api__valid_request_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > API_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int api__valid_idempotency_key(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > API_IDEMPOTENCY_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int api__valid_exec_id(const char *s)
{
    return !strncmp(s, "ex_", 3) && strlen(s) == 19 && id_time_ms(s) >= 0;
}

/* Length of the valid UTF-8 sequence at s (of n bytes left), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned cp, min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

json_t *api__json_string(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    struct strbuf sb = STRBUF_INIT;
    json_t *j;
    size_t i = 0, clean = 0;

    /* Most strings are valid: check first, copy only when a repair is needed. */
    while (clean < len) {
        size_t k = utf8_seq(u + clean, len - clean);
        if (!k)
            break;
        clean += k;
    }
    if (clean == len)
        return json_stringn_nocheck(s, len);
    while (i < len) {
        size_t k = utf8_seq(u + i, len - i);
        if (k) {
            strbuf_add(&sb, s + i, k);
            i += k;
        } else {
            strbuf_add(&sb, "\xef\xbf\xbd", 3);
            i++;
        }
    }
    j = json_stringn_nocheck(sb.buf, sb.len);
    strbuf_release(&sb);
    return j;
}

int api_parse_listen(const char *s, struct sockaddr_storage *out, socklen_t *out_len,
                     struct err *err)
{
    char host[256], port[8];
    const char *colon, *portstr;
    struct addrinfo hints, *res = NULL, *pick;
    size_t hlen;
    int p, rc;

    if (!s || !*s)
        return err_set(err, ERR_INVALID, "empty listen address");
    if (strspn(s, "0123456789") == strlen(s)) {
        snprintf(host, sizeof(host), "127.0.0.1");
        portstr = s;
    } else if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return err_set(err, ERR_INVALID,
                           "invalid listen address '%s' (use [v6addr]:port, e.g. [::1]:8080)", s);
        hlen = (size_t)(close - s - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return err_set(err, ERR_INVALID, "invalid listen address '%s'", s);
        memcpy(host, s + 1, hlen);
        host[hlen] = '\0';
        portstr = close + 2;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return err_set(err, ERR_INVALID,
                           "invalid listen address '%s' (use host:port, e.g. 127.0.0.1:8080)", s);
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen))
            return err_set(err, ERR_INVALID,
                           "invalid listen address '%s' (write IPv6 addresses as [addr]:port)", s);
        if (hlen >= sizeof(host))
            return err_set(err, ERR_INVALID, "invalid listen address '%s'", s);
        memcpy(host, s, hlen);
        host[hlen] = '\0';
        if (hlen == 0)
            snprintf(host, sizeof(host), "0.0.0.0");
        portstr = colon + 1;
    }
    if (api__parse_uint(portstr, 65535, &p))
        return err_set(err, ERR_INVALID, "invalid port in listen address '%s' (use 0 to 65535)", s);
    snprintf(port, sizeof(port), "%d", p);

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return err_set(err, ERR_INVALID, "cannot resolve listen address '%s': %s", s,
                       gai_strerror(rc));
    /* Prefer IPv4 when a name has both (localhost): predictable for clients. */
    pick = res;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    if (pick->ai_addrlen > sizeof(*out)) {
        freeaddrinfo(res);
        return err_set(err, ERR_INVALID, "unsupported listen address '%s'", s);
    }
    memset(out, 0, sizeof(*out));
    memcpy(out, pick->ai_addr, pick->ai_addrlen);
    *out_len = (socklen_t)pick->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int api__etag_matches(const char *if_none_match, const char *etag)
{
    const char *p = if_none_match;
    size_t elen = strlen(etag);

    /* A list of entity tags ("a", W/"b") or "*"; weak comparison (RFC 9110 13.1.2). */
    while (*p) {
        const char *start;
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (!strncmp(p, "W/", 2))
            p += 2;
        start = p;
        if (*p == '"') {
            const char *close = strchr(p + 1, '"');
            if (!close)
                return 0;
            p = close + 1;
        } else {
            while (*p && *p != ',')
                p++;
        }
        if ((size_t)(p - start) == elen && !memcmp(start, etag, elen))
            return 1;
    }
    return 0;
}
