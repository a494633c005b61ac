/*
 * netpolicy.c - where HTTP tasks may connect (see netpolicy.h).
 */
#include "netpolicy.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

#include "base/banned.h"

enum rule_kind { RULE_LINK_LOCAL, RULE_OWN, RULE_DENY, RULE_ALLOW };

struct netrule {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network bytes, host bits cleared */
    int prefix;             /* bits */
    int port;               /* 0: any */
    enum rule_kind kind;
    char text[64];          /* as written (or made), for messages */
};

struct netpolicy {
    struct netrule *rules;
    size_t n, alloc;
};

static void add_rule(struct netpolicy *np, const struct netrule *r)
{
    XGROW(np->rules, np->alloc, np->n + 1);
    np->rules[np->n++] = *r;
}

static void mask(struct netrule *r)
{
    int len = r->family == AF_INET ? 4 : 16;
    for (int i = 0; i < len; i++) {
        int bits = r->prefix - i * 8;
        if (bits >= 8)
            continue;
        r->addr[i] &= bits <= 0 ? 0 : (unsigned char)(0xff << (8 - bits));
    }
}

static int parse_uint(const char *s, size_t n, long max, long *out)
{
    long v = 0;
    if (n == 0 || n > 6)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* One entry e[0..n): 10.0.0.0/8, 1.2.3.4:80, fd00::/8, [::1]:8080, [fe80::]/10. */
static int parse_rule(const char *e, size_t n, enum rule_kind kind, struct netrule *r)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *a = e, *rest;
    size_t alen;
    long v;

    memset(r, 0, sizeof(*r));
    r->kind = kind;
    snprintf(r->text, sizeof(r->text), "%.*s", (int)n, e);
    if (n && e[0] == '[') {
        const char *close = memchr(e, ']', n);
        if (!close)
            return -1;
        a = e + 1;
        alen = (size_t)(close - a);
        rest = close + 1;
        r->family = AF_INET6;
    } else {
        size_t colons = 0;
        for (size_t i = 0; i < n; i++)
            colons += e[i] == ':';
        r->family = colons >= 2 ? AF_INET6 : AF_INET;
        alen = strcspn(e, r->family == AF_INET6 ? "/," : "/:,");
        if (alen > n)
            alen = n;
        rest = e + alen;
    }
    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, a, alen);
    addr[alen] = '\0';
    if (inet_pton(r->family, addr, r->addr) != 1)
        return -1;
    r->prefix = r->family == AF_INET ? 32 : 128;
    if (rest < e + n && *rest == '/') {
        size_t plen = strcspn(rest + 1, ":");
        if (rest + 1 + plen > e + n)
            plen = (size_t)(e + n - rest - 1);
        if (parse_uint(rest + 1, plen, r->prefix, &v))
            return -1;
        r->prefix = (int)v;
        rest += 1 + plen;
    }
    if (rest < e + n && *rest == ':') {
        if (parse_uint(rest + 1, (size_t)(e + n - rest - 1), 65535, &v) || v == 0)
            return -1;
        r->port = (int)v;
        rest = e + n;
    }
    if (rest != e + n)
        return -1;
    mask(r);
    return 0;
}

static int parse_list(struct netpolicy *np, const char *list, enum rule_kind kind,
                      const char *what, struct err *err)
{
    const char *p = list;

    while (p && *p) {
        size_t n = strcspn(p, ",");
        const char *e = p;
        size_t len = n;
        struct netrule r;
        while (len && (*e == ' ' || *e == '\t')) {
            e++;
            len--;
        }
        while (len && (e[len - 1] == ' ' || e[len - 1] == '\t'))
            len--;
        if (len && parse_rule(e, len, kind, &r) != 0)
            return err_set(err, ERR_INVALID,
                           "invalid %s entry '%.*s' (a network such as 10.0.0.0/8, an "
                           "address, or an address and port such as 127.0.0.1:8080 or "
                           "[::1]:8080)",
                           what, (int)(len > 100 ? 100 : len), e);
        if (len)
            add_rule(np, &r);
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int netpolicy_new(const char *allow, const char *deny, struct netpolicy **out, struct err *err)
{
    struct netpolicy *np = xcalloc(1, sizeof(*np));
    int rc;

    *out = NULL;
    rc = parse_list(np, "169.254.0.0/16,fe80::/10", RULE_LINK_LOCAL, "default", err);
    if (!rc)
        rc = parse_list(np, deny, RULE_DENY, "ORCH_HTTP_DENY", err);
    if (!rc)
        rc = parse_list(np, allow, RULE_ALLOW, "ORCH_HTTP_ALLOW", err);
    if (rc) {
        netpolicy_free(np);
        return rc;
    }
    *out = np;
    return 0;
}

void netpolicy_free(struct netpolicy *np)
{
    if (!np)
        return;
    free(np->rules);
    free(np);
}

/* A rule for the single address `sa` at `port`. */
static void add_own(struct netpolicy *np, int family, const void *bytes, int port)
{
    struct netrule r;
    char a[INET6_ADDRSTRLEN];

    memset(&r, 0, sizeof(r));
    r.family = family;
    memcpy(r.addr, bytes, family == AF_INET ? 4 : 16);
    r.prefix = family == AF_INET ? 32 : 128;
    r.port = port;
    r.kind = RULE_OWN;
    inet_ntop(family, bytes, a, sizeof(a));
    snprintf(r.text, sizeof(r.text), family == AF_INET ? "%s:%d" : "[%s]:%d", a, port);
    add_rule(np, &r);
}

int netpolicy_deny_listener(struct netpolicy *np, const char *hostport, struct err *err)
{
    struct netrule r;
    unsigned char any[16] = {0};
    size_t n = strlen(hostport);

    if (parse_rule(hostport, n, RULE_OWN, &r) != 0 || !r.port ||
        r.prefix != (r.family == AF_INET ? 32 : 128))
        return err_set(err, ERR_INVALID, "invalid listen address '%s'", hostport);
    if (memcmp(r.addr, any, r.family == AF_INET ? 4 : 16) != 0) {
        add_own(np, r.family, r.addr, r.port);
        return 0;
    }
    /* A wildcard: every address of this host at that port. */
    {
        struct netrule lo;
        struct ifaddrs *ifs = NULL;
        if (parse_rule("127.0.0.0/8", 11, RULE_OWN, &lo) == 0) {
            lo.port = r.port;
            snprintf(lo.text, sizeof(lo.text), "127.0.0.0/8:%d", r.port);
            add_rule(np, &lo);
        }
        {
            struct in6_addr l6 = IN6ADDR_LOOPBACK_INIT;
            add_own(np, AF_INET6, &l6, r.port);
        }
        if (getifaddrs(&ifs) == 0) {
            for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
                if (!i->ifa_addr)
                    continue;
                if (i->ifa_addr->sa_family == AF_INET)
                    add_own(np, AF_INET,
                            &((const struct sockaddr_in *)(const void *)i->ifa_addr)->sin_addr,
                            r.port);
                else if (i->ifa_addr->sa_family == AF_INET6)
                    add_own(np, AF_INET6,
                            &((const struct sockaddr_in6 *)(const void *)i->ifa_addr)->sin6_addr,
                            r.port);
            }
            freeifaddrs(ifs);
        }
    }
    return 0;
}

static int matches(const struct netrule *r, int family, const unsigned char *a, int port)
{
    int full = r->prefix / 8, bits = r->prefix % 8;

    if (r->family != family || (r->port && r->port != port))
        return 0;
    if (memcmp(r->addr, a, (size_t)full) != 0)
        return 0;
    if (bits && (a[full] & (unsigned char)(0xff << (8 - bits))) != r->addr[full])
        return 0;
    return 1;
}

int netpolicy_check(const struct netpolicy *np, const struct sockaddr *sa, char *why,
                    size_t whylen)
{
    unsigned char a[16];
    int family, port;
    char text[INET6_ADDRSTRLEN], where[INET6_ADDRSTRLEN + 16];
    const struct netrule *deny = NULL;

    if (!np)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;
        family = AF_INET;
        memcpy(a, &s4->sin_addr, 4);
        port = ntohs(s4->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;
        port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            family = AF_INET;
            memcpy(a, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            family = AF_INET6;
            memcpy(a, &s6->sin6_addr, 16);
        }
    } else {
        return 0; /* not an IP connection (a proxy's Unix socket): nothing to check */
    }
    for (size_t i = 0; i < np->n; i++) {
        const struct netrule *r = &np->rules[i];
        if (!matches(r, family, a, port))
            continue;
        if (r->kind == RULE_ALLOW)
            return 0;
        if (!deny)
            deny = r;
    }
    if (!deny)
        return 0;
    inet_ntop(family, a, text, sizeof(text));
    snprintf(where, sizeof(where), family == AF_INET ? "%s:%d" : "[%s]:%d", text, port);
    snprintf(why, whylen, "refused to connect to %s: %s%s%s (to allow it: ORCH_HTTP_ALLOW=%s)",
             where,
             deny->kind == RULE_LINK_LOCAL ? "a link-local address ("
             : deny->kind == RULE_OWN      ? "orch's own API ("
                                           : "denied by ORCH_HTTP_DENY (",
             deny->text, ")", deny->kind == RULE_OWN ? where : text);
    return -1;
}
