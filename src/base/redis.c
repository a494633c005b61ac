/*
 * redis.c - Redis URLs and blocking connections (redis.h).
 *
 * The parser works on a copy of the URL, cut in place: scheme, then the
 * userinfo up to the last '@' (so an unencoded '@' or '/' in a password does
 * not end it early), then the host and port or the socket path, then the
 * database. `shown` is built from the parts, never from the text, so it
 * cannot carry the password whatever the URL looked like.
 */
#include "redis.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/un.h>

#include "base/strbuf.h"
#include "base/xalloc.h"

#include "base/banned.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..len) into a new string; NULL if an escape is broken or
 * decodes to a NUL or a control character. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            c = hi * 16 + lo;
            i += 2;
        }
        if (c < 0x20 || c == 0x7f) {
            free(out);
            return NULL;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return out;
}

/* A decimal number of at most 10 digits in [lo, hi]; -1 if not. */
static long parse_num(const char *s, size_t len, long lo, long hi)
{
    long v = 0;

    if (len == 0 || len > 10)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v >= lo && v <= hi ? v : -1;
}

static int host_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_';
}

static void build_shown(struct redis_target *t, const char *scheme)
{
    struct strbuf sb = STRBUF_INIT;

    strbuf_addf(&sb, "%s://", scheme);
    if (t->user || t->password) {
        if (t->user)
            strbuf_add_urlencoded(&sb, t->user);
        if (t->password)
            strbuf_adds(&sb, ":***");
        strbuf_addch(&sb, '@');
    }
    if (t->path) {
        strbuf_adds(&sb, t->path);
        if (t->db)
            strbuf_addf(&sb, "?db=%d", t->db);
    } else {
        if (strchr(t->host, ':'))
            strbuf_addf(&sb, "[%s]:%d", t->host, t->port);
        else
            strbuf_addf(&sb, "%s:%d", t->host, t->port);
        if (t->db)
            strbuf_addf(&sb, "/%d", t->db);
    }
    t->shown = strbuf_detach(&sb, NULL);
}

/* The userinfo "user:password" (s[0..len)) into t->user and t->password. */
static int parse_userinfo(const char *s, size_t len, struct redis_target *t, struct err *err)
{
    const char *colon = memchr(s, ':', len);

    if (!colon)
        return err_set(err, ERR_INVALID,
                       "the part before '@' must be ':PASSWORD' or 'USER:PASSWORD' "
                       "(a password alone goes after a colon)");
    if (colon > s) {
        t->user = pct_decode(s, (size_t)(colon - s));
        if (!t->user)
            return err_set(err, ERR_INVALID, "the user has a bad %%-escape or a control "
                           "character");
    }
    if ((size_t)(colon - s) + 1 == len)
        return err_set(err, ERR_INVALID, "the password after ':' is empty");
    t->password = pct_decode(colon + 1, len - (size_t)(colon - s) - 1);
    if (!t->password)
        return err_set(err, ERR_INVALID, "the password has a bad %%-escape or a control "
                       "character");
    return 0;
}

/* "host[:port][/db]" of a redis:// URL. */
static int parse_tcp(char *s, struct redis_target *t, struct err *err)
{
    char *slash = strchr(s, '/');
    char *end, *port = NULL;
    long v;

    if (strchr(s, '?') || strchr(s, '#'))
        return err_set(err, ERR_INVALID, "a redis:// URL takes no '?' or '#' part (the database "
                       "goes in the path: redis://host:6379/2)");
    if (slash) {
        *slash = '\0';
        if (slash[1]) {
            v = parse_num(slash + 1, strlen(slash + 1), 0, INT_MAX);
            if (v < 0)
                return err_set(err, ERR_INVALID, "the database after '/' must be a number "
                               "(0 to %d)", INT_MAX);
            t->db = (int)v;
        }
    }
    if (*s == '[') {
        end = strchr(s, ']');
        if (!end || !memchr(s + 1, ':', (size_t)(end - s - 1)))
            return err_set(err, ERR_INVALID, "an IPv6 address must be written [address]");
        for (char *p = s + 1; p < end; p++)
            if (!(host_char((unsigned char)*p) || *p == ':' || *p == '%'))
                return err_set(err, ERR_INVALID, "the IPv6 address has a bad character");
        *end = '\0';
        t->host = xstrdup(s + 1);
        if (end[1] == ':')
            port = end + 2;
        else if (end[1])
            return err_set(err, ERR_INVALID, "unexpected text after the IPv6 address");
    } else {
        char *colon = strchr(s, ':');
        if (colon) {
            *colon = '\0';
            port = colon + 1;
        }
        if (!*s)
            return err_set(err, ERR_INVALID, "no host (redis://HOST:6379)");
        for (char *p = s; *p; p++)
            if (!host_char((unsigned char)*p))
                return err_set(err, ERR_INVALID, "the host has a bad character");
        t->host = xstrdup(s);
    }
    t->port = REDIS_DEFAULT_PORT;
    if (port) {
        v = parse_num(port, strlen(port), 1, 65535);
        if (v < 0)
            return err_set(err, ERR_INVALID, "the port must be a number from 1 to 65535");
        t->port = (int)v;
    }
    return 0;
}

/* "/path/to/socket[?db=n]" of a unix:// URL. */
static int parse_unix(char *s, struct redis_target *t, struct err *err)
{
    char *q = strchr(s, '?');
    long v;

    if (strchr(s, '#'))
        return err_set(err, ERR_INVALID, "a unix:// URL takes no '#' part");
    if (q) {
        *q = '\0';
        if (strncmp(q + 1, "db=", 3))
            return err_set(err, ERR_INVALID, "a unix:// URL takes only '?db=N' after the path");
        v = parse_num(q + 4, strlen(q + 4), 0, INT_MAX);
        if (v < 0)
            return err_set(err, ERR_INVALID, "the database of '?db=' must be a number (0 to %d)",
                           INT_MAX);
        t->db = (int)v;
    }
    if (*s != '/')
        return err_set(err, ERR_INVALID, "the socket path must be absolute "
                       "(unix:///run/redis/redis.sock)");
    if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return err_set(err, ERR_INVALID, "the socket path is longer than %zu bytes",
                       sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return err_set(err, ERR_INVALID, "the socket path has a control character");
    t->path = xstrdup(s);
    return 0;
}

int redis_target_parse(const char *url, struct redis_target *t, struct err *err)
{
    static const struct redis_target empty = REDIS_TARGET_INIT;
    const char *scheme;
    char *copy = NULL, *rest, *at;
    size_t slen;
    int rc;

    *t = empty;
    if (!url || !*url)
        return err_set(err, ERR_INVALID, "empty Redis URL");
    if (strlen(url) > REDIS_URL_MAX)
        return err_set(err, ERR_INVALID, "the Redis URL is longer than %d bytes", REDIS_URL_MAX);
    if (!strncmp(url, "redis://", 8)) {
        scheme = "redis";
    } else if (!strncmp(url, "rediss://", 9)) {
        scheme = "rediss";
        t->tls = 1;
    } else if (!strncmp(url, "unix://", 7)) {
        scheme = "unix";
    } else {
        /* Show no part of it: it may be a password pasted in the wrong place. */
        return err_set(err, ERR_INVALID,
                       "a Redis URL starts with redis://, rediss:// or unix://");
    }
    slen = strlen(scheme) + 3;
    copy = xstrdup(url + slen);
    rest = copy;
    at = strrchr(rest, '@');
    if (at) {
        rc = parse_userinfo(rest, (size_t)(at - rest), t, err);
        if (rc)
            goto fail;
        rest = at + 1;
    }
    for (char *p = rest; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            rc = err_set(err, ERR_INVALID, "the Redis URL has a blank or control character");
            goto fail;
        }
    }
    rc = t->tls || !strcmp(scheme, "redis") ? parse_tcp(rest, t, err) : parse_unix(rest, t, err);
    if (rc)
        goto fail;
    free(copy);
    build_shown(t, scheme);
    return 0;
fail:
    free(copy);
    redis_target_free(t);
    return rc;
}

void redis_target_free(struct redis_target *t)
{
    static const struct redis_target empty = REDIS_TARGET_INIT;

    if (!t)
        return;
    if (t->password) {
        volatile char *p = t->password;
        while (*p)
            *p++ = 0;
    }
    free(t->host);
    free(t->path);
    free(t->user);
    free(t->password);
    free(t->shown);
    *t = empty;
}

int redis_handshake(const struct redis_target *t, struct redis_cmd out[2])
{
    int n = 0;

    if (t->password) {
        struct redis_cmd *c = &out[n++];
        c->argc = 0;
        c->argv[c->argc] = "AUTH";
        c->argvlen[c->argc++] = 4;
        if (t->user) {
            c->argv[c->argc] = t->user;
            c->argvlen[c->argc++] = strlen(t->user);
        }
        c->argv[c->argc] = t->password;
        c->argvlen[c->argc++] = strlen(t->password);
    }
    if (t->db) {
        /* The number's text lives in the command itself. */
        struct redis_cmd *c = &out[n++];
        snprintf(c->num, sizeof(c->num), "%d", t->db);
        c->argc = 2;
        c->argv[0] = "SELECT";
        c->argvlen[0] = 6;
        c->argv[1] = c->num;
        c->argvlen[1] = strlen(c->num);
    }
    return n;
}

int redis_handshake_check(const struct redis_target *t, const struct redis_cmd *cmd,
                          const redisReply *reply, struct err *err)
{
    int auth = !strcmp(cmd->argv[0], "AUTH");

    if (!reply)
        return err_set(err, ERR_IO, "%s: the connection failed during %s", t->shown,
                       auth ? "AUTH" : "SELECT");
    if (reply->type != REDIS_REPLY_ERROR)
        return 0;
    if (redis_tunnel_error(reply->str))
        return err_set(err, ERR_IO, "%s", redis_tunnel_error(reply->str));
    if (auth) {
        /* The reply's text is not shown: a server may echo what it was sent. */
        if (reply->str && strstr(reply->str, "without any password configured"))
            return err_set(err, ERR_INVALID,
                           "%s refused the password: the server has none set (drop it from "
                           "the URL, or set requirepass)",
                           t->shown);
        return err_set(err, ERR_INVALID, "%s refused the password%s", t->shown,
                       t->user ? " (or the user)" : "");
    }
    return err_set(err, ERR_INVALID, "%s: cannot select database %d: %.200s", t->shown, t->db,
                   reply->str ? reply->str : "error");
}

/* The failure of a command on `c` that got no reply. */
static int io_failure(const struct redis_target *t, redisContext *c, int timeout_ms,
                      struct err *err)
{
    if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
        return err_set(err, ERR_TIMEOUT, "%s did not answer within %d ms", t->shown, timeout_ms);
    return err_set(err, ERR_IO, "lost the connection to %s: %s", t->shown,
                   c->errstr[0] ? c->errstr : "unknown error");
}

redisContext *redis_connect_sync(const struct redis_target *t, int timeout_ms, struct err *err)
{
    struct timeval tv;
    struct redis_cmd cmds[2];
    redisContext *c;
    redisReply *r;
    const char *path = t->path;
    int n;

    if (t->tls && !(path = redis_tunnel_path(t, err)))
        return NULL;
    if (timeout_ms < 1)
        timeout_ms = 1;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    c = path ? redisConnectUnixWithTimeout(path, tv)
             : redisConnectWithTimeout(t->host, t->port, tv);
    if (!c) {
        err_set(err, ERR_NOMEM, "cannot reach %s: out of memory", t->shown);
        return NULL;
    }
    if (c->err) {
        err_set(err, ERR_IO, "cannot reach %s: %s", t->shown,
                c->errstr[0] ? c->errstr : "connection failed");
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        err_set(err, ERR_IO, "cannot reach %s: cannot set a timeout", t->shown);
        redisFree(c);
        return NULL;
    }
    n = redis_handshake(t, cmds);
    for (int i = 0; i < n; i++) {
        r = redisCommandArgv(c, cmds[i].argc, cmds[i].argv, cmds[i].argvlen);
        if (!r) {
            io_failure(t, c, timeout_ms, err);
            redisFree(c);
            return NULL;
        }
        if (redis_handshake_check(t, &cmds[i], r, err)) {
            freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "PING");
    if (!r) {
        io_failure(t, c, timeout_ms, err);
        redisFree(c);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        if (redis_tunnel_error(r->str))
            err_set(err, ERR_IO, "%s", redis_tunnel_error(r->str));
        else if (r->str && !strncmp(r->str, "NOAUTH", 6))
            err_set(err, ERR_INVALID, "%s needs a password (give it in the URL: "
                    "redis://:PASSWORD@host)", t->shown);
        else
            err_set(err, ERR_IO, "%s answered PING with: %.200s", t->shown,
                    r->str ? r->str : "an error");
        freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

void redis_log_key(char buf[REDIS_LOG_KEY_MAX], const char *exec_id, int task_idx, int attempt)
{
    snprintf(buf, REDIS_LOG_KEY_MAX, REDIS_LOG_KEY_PREFIX "%.64s:%d:%d", exec_id, task_idx,
             attempt);
}
