/*
 * auth.c - API key generation, hashing, verification and Bearer parsing.
 */
#include "auth.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/clock.h"

#include "base/banned.h"

int auth_init(struct err *err)
{
    /* 0: initialised now, 1: already; -1: no usable entropy source. */
    if (sodium_init() < 0)
        return err_set(err, ERR_INTERNAL, "cannot initialise libsodium");
    return 0;
}

void auth_key_generate(char *out)
{
    unsigned char bytes[AUTH_KEY_RANDOM_BYTES];

    randombytes_buf(bytes, sizeof(bytes));
    memcpy(out, AUTH_KEY_PREFIX, 3);
    sodium_bin2base64(out + 3, AUTH_KEY_BUF - 3, bytes, sizeof(bytes),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(bytes, sizeof(bytes));
}

void auth_key_hash(const char *key, size_t len, unsigned char out[KEY_HASH_LEN])
{
    crypto_hash_sha256(out, (const unsigned char *)key, (unsigned long long)len);
}

void auth_key_prefix(const char *key, size_t len, char out[KEY_PREFIX_MAX])
{
    size_t n = len < AUTH_PREFIX_LEN ? len : AUTH_PREFIX_LEN;
    memcpy(out, key, n);
    out[n] = '\0';
}

const char *auth_result_name(enum auth_result r)
{
    switch (r) {
    case AUTH_OK:
        return "ok";
    case AUTH_MISSING:
        return "missing";
    case AUTH_BAD_SCHEME:
        return "bad_scheme";
    case AUTH_MALFORMED:
        return "malformed";
    case AUTH_UNKNOWN:
        return "unknown";
    case AUTH_REVOKED:
        return "revoked";
    case AUTH_EXPIRED:
        return "expired";
    }
    return "?";
}

static int key_char(int c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

/* A token that can be quoted back as a scheme name: short and alphabetic. */
static int quotable_scheme(const char *s, size_t len)
{
    if (len == 0 || len > 20)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
            return 0;
    return 1;
}

static enum auth_result bad(enum auth_result r, char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum auth_result bad(enum auth_result r, char *msg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, AUTH_MSG_MAX, fmt, ap);
    va_end(ap);
    return r;
}

enum auth_result auth_parse_bearer(const char *header, const char **out_key, size_t *out_len,
                                   char *msg)
{
    const char *key;
    size_t slen = 0, len;

    *out_key = NULL;
    *out_len = 0;
    msg[0] = '\0';
    if (!header)
        return bad(AUTH_MISSING, msg,
                   "missing Authorization header: send 'Authorization: Bearer <API key>'");
    if (!*header)
        return bad(AUTH_MALFORMED, msg,
                   "empty Authorization header: send 'Authorization: Bearer <API key>'");
    while (header[slen] && header[slen] != ' ' && header[slen] != '\t')
        slen++;
    /* The scheme is case-insensitive (RFC 7235 section 2.1): "bearer" works. */
    if (slen != 6 || strncasecmp(header, "Bearer", 6) != 0) {
        /* Never quote what may be the key itself sent without a scheme. */
        if (!strncmp(header, AUTH_KEY_PREFIX, 3))
            return bad(AUTH_BAD_SCHEME, msg,
                       "no authorization scheme: expected 'Bearer' and one space before the API "
                       "key");
        if (quotable_scheme(header, slen))
            return bad(AUTH_BAD_SCHEME, msg,
                       "unsupported authorization scheme '%.*s': expected 'Bearer'", (int)slen,
                       header);
        return bad(AUTH_BAD_SCHEME, msg, "unsupported authorization scheme: expected 'Bearer'");
    }
    if (header[6] == '\0')
        return bad(AUTH_MALFORMED, msg,
                   "malformed Authorization header: no API key after 'Bearer'");
    if (header[6] != ' ')
        return bad(AUTH_MALFORMED, msg,
                   "malformed Authorization header: separate 'Bearer' and the API key with "
                   "exactly one space");
    key = header + 7;
    if (*key == ' ' || *key == '\t')
        return bad(AUTH_MALFORMED, msg,
                   "malformed Authorization header: more than one space after 'Bearer' (use "
                   "exactly one)");
    if (*key == '\0')
        return bad(AUTH_MALFORMED, msg,
                   "malformed Authorization header: no API key after 'Bearer '");
    len = strnlen(key, AUTH_KEY_MAX_LEN + 1);
    if (len > AUTH_KEY_MAX_LEN)
        return bad(AUTH_MALFORMED, msg, "malformed API key: too long");
    for (size_t i = 0; i < len; i++) {
        if (key[i] == ' ' || key[i] == '\t')
            return bad(AUTH_MALFORMED, msg,
                       "malformed Authorization header: unexpected whitespace in or after the API "
                       "key");
        if (!key_char((unsigned char)key[i]))
            return bad(AUTH_MALFORMED, msg,
                       "malformed API key: it contains a character other than A-Z, a-z, 0-9, "
                       "'_' and '-'");
    }
    if (strncmp(key, AUTH_KEY_PREFIX, 3) != 0)
        return bad(AUTH_MALFORMED, msg, "malformed API key: orch API keys start with 'sk_'");
    if (len < AUTH_KEY_MIN_LEN)
        return bad(AUTH_MALFORMED, msg,
                   "malformed API key: too short (keys are 'sk_' and 43 more characters)");
    *out_key = key;
    *out_len = len;
    return AUTH_OK;
}

int auth_verify(struct store *st, const char *key, size_t len, int64_t now, struct key_row *out,
                enum auth_result *out_result, char *msg, struct err *err)
{
    unsigned char hash[KEY_HASH_LEN];
    char prefix[KEY_PREFIX_MAX];
    char when[CLOCK_ISO_MAX];
    struct key_row row;
    struct err e = ERR_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    memset(&row, 0, sizeof(row));
    msg[0] = '\0';
    /* Hash first, so a lookup that finds nothing takes as long as one that does. */
    auth_key_hash(key, len, hash);
    auth_key_prefix(key, len, prefix);
    rc = store_key_get_by_prefix(st, prefix, &row, &e);
    if (rc == ERR_NOT_FOUND) {
        *out_result = AUTH_UNKNOWN;
        snprintf(msg, AUTH_MSG_MAX, "unknown API key: no key matches the one presented");
        return 0;
    }
    if (rc) {
        if (err)
            *err = e;
        return rc;
    }
    if (sodium_memcmp(hash, row.hash, KEY_HASH_LEN) != 0) {
        key_row_release(&row);
        *out_result = AUTH_UNKNOWN;
        snprintf(msg, AUTH_MSG_MAX, "unknown API key: no key matches the one presented");
        return 0;
    }
    if (row.revoked_at) {
        *out_result = AUTH_REVOKED;
        snprintf(msg, AUTH_MSG_MAX, "API key %s... was revoked at %s", row.prefix,
                 clock_iso8601(row.revoked_at, when));
        key_row_release(&row);
        return 0;
    }
    if (row.expires_at && now >= row.expires_at) {
        *out_result = AUTH_EXPIRED;
        snprintf(msg, AUTH_MSG_MAX, "API key %s... expired at %s", row.prefix,
                 clock_iso8601(row.expires_at, when));
        key_row_release(&row);
        return 0;
    }
    *out_result = AUTH_OK;
    *out = row;
    return 0;
}

/* ------------------------------------------------------------------ scopes */

unsigned auth_scope_closure(unsigned scopes)
{
    if (scopes & KEY_SCOPE_ADMIN)
        scopes |= KEY_SCOPE_WRITE;
    if (scopes & KEY_SCOPE_WRITE)
        scopes |= KEY_SCOPE_READ;
    return scopes;
}

int auth_scope_allows(unsigned have, unsigned need)
{
    return (auth_scope_closure(have) & need) == need;
}

int auth_scope_parse(const char *name, unsigned *out)
{
    if (!strcmp(name, "read"))
        *out = KEY_SCOPE_READ;
    else if (!strcmp(name, "write"))
        *out = KEY_SCOPE_WRITE;
    else if (!strcmp(name, "admin"))
        *out = KEY_SCOPE_ADMIN;
    else
        return ERR_INVALID;
    return 0;
}

const char *auth_scope_name(unsigned bit)
{
    switch (bit) {
    case KEY_SCOPE_READ:
        return "read";
    case KEY_SCOPE_WRITE:
        return "write";
    case KEY_SCOPE_ADMIN:
        return "admin";
    }
    return "?";
}

int auth_scopes_parse_list(const char *list, unsigned *out, struct err *err)
{
    unsigned scopes = 0;
    const char *p = list;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        char name[16];
        unsigned bit;

        if (n == 0 || n >= sizeof(name))
            return err_set(err, ERR_INVALID, "invalid scope list '%s' (use read, write or admin)",
                           list);
        memcpy(name, p, n);
        name[n] = '\0';
        if (auth_scope_parse(name, &bit))
            return err_set(err, ERR_INVALID, "unknown scope '%s' (use read, write or admin)", name);
        scopes |= bit;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = scopes;
    return 0;
}

void auth_scopes_format(unsigned scopes, char *out, size_t outlen)
{
    static const unsigned order[] = {KEY_SCOPE_READ, KEY_SCOPE_WRITE, KEY_SCOPE_ADMIN};
    size_t used = 0;

    if (outlen)
        out[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        int n;
        if (!(scopes & order[i]))
            continue;
        n = snprintf(out + used, outlen - used, "%s%s", used ? "," : "", auth_scope_name(order[i]));
        if (n < 0 || (size_t)n >= outlen - used)
            return;
        used += (size_t)n;
    }
}

const char *auth_scope_top(unsigned scopes)
{
    if (scopes & KEY_SCOPE_ADMIN)
        return "admin";
    if (scopes & KEY_SCOPE_WRITE)
        return "write";
    if (scopes & KEY_SCOPE_READ)
        return "read";
    return "none";
}
