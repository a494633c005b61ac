/*
 * auth.h - API keys: generation, hashing, verification, strict parsing of the
 * Authorization header, and scopes.
 *
 * A key is "sk_" followed by the unpadded base64url text of 32 random bytes
 * (46 characters in all). Only its SHA-256 is stored, with its first
 * AUTH_PREFIX_LEN characters as a non-secret handle that finds the row and is
 * shown to people (lists, log lines). A presented key is looked up by its
 * prefix and accepted only if the hash of the whole key matches, compared in
 * constant time; whether a matching key is revoked or expired is said only
 * after that, so someone without the key learns nothing from the answer.
 *
 * Call auth_init() once, before any thread is started. Everything else is
 * thread-safe (the store passed in is used from the calling thread only).
 */
#ifndef ORCH_AUTH_AUTH_H
#define ORCH_AUTH_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "store/store.h"

#define AUTH_KEY_PREFIX       "sk_"
#define AUTH_KEY_RANDOM_BYTES 32
#define AUTH_KEY_LEN          46  /* "sk_" + 43 base64url characters */
#define AUTH_KEY_MIN_LEN      35  /* "sk_" + at least 32 characters */
#define AUTH_KEY_MAX_LEN      256 /* longer header values are malformed, not looked up */
#define AUTH_KEY_BUF          64  /* room for a generated key and its NUL */
#define AUTH_PREFIX_LEN       12  /* characters of a key kept as its public prefix */
#define AUTH_NAME_MAX         200 /* longest key name */
#define AUTH_MSG_MAX          256 /* room for any failure message */

/* Initialise the crypto library; 0 or ERR_INTERNAL. */
int auth_init(struct err *err);

/* Write a new random key into out[AUTH_KEY_BUF]. */
void auth_key_generate(char *out);
/* SHA-256 of the `len` bytes of `key`. */
void auth_key_hash(const char *key, size_t len, unsigned char out[KEY_HASH_LEN]);
/* The public prefix of `key` (its first AUTH_PREFIX_LEN characters, fewer if it
 * is shorter) into out[KEY_PREFIX_MAX]. */
void auth_key_prefix(const char *key, size_t len, char out[KEY_PREFIX_MAX]);

/* Why a request was (not) authenticated. */
enum auth_result {
    AUTH_OK = 0,
    AUTH_MISSING,    /* no Authorization header */
    AUTH_BAD_SCHEME, /* not "Bearer" */
    AUTH_MALFORMED,  /* extra spaces, empty key, not an sk_ key */
    AUTH_UNKNOWN,    /* no stored key matches */
    AUTH_REVOKED,    /* the key matches but was revoked */
    AUTH_EXPIRED,    /* the key matches but has expired */
};

/* Short name of a result for log lines ("missing", "revoked"), never NULL. */
const char *auth_result_name(enum auth_result r);

/*
 * Parse an Authorization header value (NULL when the header is absent)
 * strictly: "Bearer" (in any case, RFC 7235), exactly one space, then the key, which must be "sk_"
 * followed by at least 32 characters of [A-Za-z0-9_-] and nothing else. On
 * AUTH_OK, *out_key points into `header` and *out_len is the key's length;
 * otherwise msg[AUTH_MSG_MAX] says what is wrong (without quoting the key).
 */
enum auth_result auth_parse_bearer(const char *header, const char **out_key, size_t *out_len,
                                   char *msg);

/*
 * Check a key (as parsed) against the keys of `st` at time `now`. Sets
 * *out_result: AUTH_OK with the key's row in *out (release it with
 * key_row_release), or AUTH_UNKNOWN, AUTH_REVOKED or AUTH_EXPIRED with a
 * message in msg[AUTH_MSG_MAX] (*out is then empty). Returns 0, or a negative
 * code with `err` filled when the store failed (no result then).
 */
int auth_verify(struct store *st, const char *key, size_t len, int64_t now, struct key_row *out,
                enum auth_result *out_result, char *msg, struct err *err);

/* --- scopes: admin implies write, write implies read --- */

/* `scopes` with the scopes they imply added. */
unsigned auth_scope_closure(unsigned scopes);
/* Does a key with `have` (enum key_scope bits) satisfy `need` (one bit, or 0)? */
int auth_scope_allows(unsigned have, unsigned need);
/* Parse one scope name ("read", "write", "admin"); 0 or ERR_INVALID. */
int auth_scope_parse(const char *name, unsigned *out);
/* Name of one scope bit, or "?" */
const char *auth_scope_name(unsigned bit);
/* Parse "read", "write,admin", ... (comma-separated names) into bits; 0 or
 * ERR_INVALID with a message. The result is not closed over implications. */
int auth_scopes_parse_list(const char *list, unsigned *out, struct err *err);
/* "read,write,admin" (the bits set, in that order) into out. */
void auth_scopes_format(unsigned scopes, char *out, size_t outlen);
/* The single widest scope of `scopes` ("admin", "write", "read" or "none"). */
const char *auth_scope_top(unsigned scopes);

/* --- managing keys (the CLI and the /v1/keys endpoints) --- */

/* Is `name` a valid key name: 1 to AUTH_NAME_MAX printable characters, no
 * control characters, not blank? */
int auth_valid_key_name(const char *name);

/*
 * Create a key named `name` with `scopes` (closed over implications),
 * expiring at `expires_at` (0 = never), and record its hash in `st`. The key
 * text goes to out_key[AUTH_KEY_BUF] (shown once, never stored) and its row
 * to *out_row (release with key_row_release). ERR_INVALID for a bad name or
 * no scope, ERR_CONFLICT if a key that is not revoked has that name already.
 */
int auth_key_create(struct store *st, const char *name, unsigned scopes, int64_t expires_at,
                    int64_t now, char *out_key, struct key_row *out_row, struct err *err);

#endif
