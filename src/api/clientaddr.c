/*
 * clientaddr.c - who the client is: trusted proxy networks (CIDR lists), the
 * client address behind them from X-Forwarded-For, and the key under which
 * connections are counted per address. Pure: no sockets, no libmicrohttpd.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "base/xalloc.h"

#include "base/banned.h"

/* Parse one address (v4 or v6) into family + 16 bytes; IPv4-mapped IPv6 is IPv4. */
static int parse_addr(const char *s, int *family, unsigned char out[16])
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(out, mapped, 12)) {
            memmove(out, out + 12, 4);
            memset(out + 4, 0, 12);
            *family = AF_INET;
        } else {
            *family = AF_INET6;
        }
        return 0;
    }
    return -1;
}

int api__cidrs_parse(const char *list, struct api_cidrs *out, struct err *err)
{
    const char *p = list;

    memset(out, 0, sizeof(*out));
    while (p && *p) {
        char item[INET6_ADDRSTRLEN + 8], *slash, *end;
        size_t n = strcspn(p, ",");
        struct api_cidr c;
        long bits;
        int max;

        while (n && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == 0 || n >= sizeof(item)) {
            api__cidrs_release(out);
            if (n == 0)
                return err_set(err, ERR_INVALID, "an empty entry in the list of networks");
            return err_set(err, ERR_INVALID, "'%.60s...' is not an address or network", p);
        }
        memcpy(item, p, n);
        item[n] = '\0';
        memset(&c, 0, sizeof(c));
        slash = strchr(item, '/');
        if (slash)
            *slash = '\0';
        if (parse_addr(item, &c.family, c.addr)) {
            if (slash)
                *slash = '/';
            err_set(err, ERR_INVALID, "'%s' is not an address or network (a.b.c.d/n, x::y/n)",
                    item);
            api__cidrs_release(out);
            return ERR_INVALID;
        }
        max = c.family == AF_INET ? 32 : 128;
        bits = max;
        if (slash) {
            bits = strtol(slash + 1, &end, 10);
            if (!slash[1] || *end || bits < 0 || bits > max) {
                *slash = '/';
                err_set(err, ERR_INVALID, "'%s': the prefix length must be 0 to %d", item, max);
                api__cidrs_release(out);
                return ERR_INVALID;
            }
        }
        c.bits = (int)bits;
        XGROW(out->items, out->alloc, out->n + 1);
        out->items[out->n++] = c;
        p += strcspn(p, ",");
        if (*p == ',')
            p++;
    }
    return 0;
}

void api__cidrs_release(struct api_cidrs *c)
{
    free(c->items);
    memset(c, 0, sizeof(*c));
}

static int match(const struct api_cidrs *c, int family, const unsigned char a[16])
{
    for (size_t i = 0; i < c->n; i++) {
        const struct api_cidr *e = &c->items[i];
        int full = e->bits / 8, rest = e->bits % 8;

        if (e->family != family || memcmp(e->addr, a, (size_t)full))
            continue;
        if (rest && ((e->addr[full] ^ a[full]) & (0xff00 >> rest)))
            continue;
        return 1;
    }
    return 0;
}

int api__cidrs_match_text(const struct api_cidrs *c, const char *addr)
{
    unsigned char a[16];
    int family;

    if (!c->n || parse_addr(addr, &family, a))
        return 0;
    return match(c, family, a);
}

/* family + 16 bytes from a socket address; -1 if it is neither v4 nor v6. */
static int sockaddr_bytes(const struct sockaddr *sa, int *family, unsigned char out[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        *family = AF_INET;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
        *family = AF_INET6;
        if (!memcmp(out, mapped, 12)) {
            memmove(out, out + 12, 4);
            memset(out + 4, 0, 12);
            *family = AF_INET;
        }
        return 0;
    }
    return -1;
}

int api__cidrs_match(const struct api_cidrs *c, const struct sockaddr *sa)
{
    unsigned char a[16];
    int family;

    if (!c->n || !sa || sockaddr_bytes(sa, &family, a))
        return 0;
    return match(c, family, a);
}

void api__addr_key(const struct sockaddr *sa, unsigned char out[API_ADDR_KEY_LEN])
{
    unsigned char a[16];
    int family = 0;

    memset(out, 0, API_ADDR_KEY_LEN);
    if (!sa || sockaddr_bytes(sa, &family, a))
        return;
    out[0] = family == AF_INET ? 4 : 6;
    /* One IPv6 client usually holds a whole /64: count it as one address. */
    memcpy(out + 1, a, family == AF_INET ? 4 : 8);
}

void api__client_from_forwarded(const struct api_cidrs *trusted, const char *peer,
                                const char *forwarded, char *out, size_t outlen)
{
    const char *end;

    snprintf(out, outlen, "%s", peer);
    if (!forwarded || !api__cidrs_match_text(trusted, peer))
        return;
    /* Right to left: each entry was added by the proxy to its right, the
     * right-most by `peer`. The first one that is not a trusted proxy is the
     * client; anything left of it may have been written by the client. */
    end = forwarded + strlen(forwarded);
    for (;;) {
        const char *start = end, *s;
        char item[INET6_ADDRSTRLEN + 1];
        unsigned char a[16];
        size_t n;
        int family;

        while (start > forwarded && start[-1] != ',')
            start--;
        s = start;
        n = (size_t)(end - start);
        while (n && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0 || n >= sizeof(item))
            return; /* garbage: the nearest trusted hop stays the client */
        memcpy(item, s, n);
        item[n] = '\0';
        if (parse_addr(item, &family, a))
            return;
        snprintf(out, outlen, "%s", item);
        if (!match(trusted, family, a) || start == forwarded)
            return;
        end = start - 1; /* the comma */
    }
}
