/*
 * keys.c - creating API keys (shared by `orch keys create` and POST /v1/keys).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "base/xalloc.h"

#include "base/banned.h"

int auth_valid_key_name(const char *name)
{
    size_t len = strlen(name);
    int visible = 0;

    if (len == 0 || len > AUTH_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
        if (c != ' ')
            visible = 1;
    }
    return visible;
}

/* Is there a key named `name` that is not revoked? (Inside the caller's transaction.) */
static int name_taken(struct store *st, const char *name, int *out_taken, struct err *err)
{
    struct key_row *rows = NULL;
    size_t n = 0;
    int rc = store_keys_list(st, &rows, &n, err);

    if (rc)
        return rc;
    *out_taken = 0;
    for (size_t i = 0; i < n; i++)
        if (!rows[i].revoked_at && rows[i].name && !strcmp(rows[i].name, name))
            *out_taken = 1;
    key_rows_free(rows, n);
    return 0;
}

int auth_key_create(struct store *st, const char *name, unsigned scopes, int64_t expires_at,
                    int64_t now, char *out_key, struct key_row *out_row, struct err *err)
{
    struct key_row row;
    int taken = 0;
    int rc;

    memset(out_row, 0, sizeof(*out_row));
    out_key[0] = '\0';
    if (!auth_valid_key_name(name))
        return err_set(err, ERR_INVALID,
                       "invalid key name: use 1 to %d printable characters, not all blank",
                       AUTH_NAME_MAX);
    scopes = auth_scope_closure(scopes) & (KEY_SCOPE_READ | KEY_SCOPE_WRITE | KEY_SCOPE_ADMIN);
    if (!scopes)
        return err_set(err, ERR_INVALID, "a key needs at least one scope (read, write or admin)");
    if (expires_at && expires_at <= now)
        return err_set(err, ERR_INVALID, "the expiry must be in the future");

    memset(&row, 0, sizeof(row));
    row.name = xstrdup(name);
    row.scopes = scopes;
    row.created_at = now;
    row.expires_at = expires_at;

    rc = store_begin(st, err);
    if (rc)
        goto out;
    rc = name_taken(st, name, &taken, err);
    if (rc == 0 && taken)
        rc = err_set(err, ERR_CONFLICT, "a key named '%s' exists already (revoke it first)", name);
    /*
     * The prefix carries 54 random bits, so two keys sharing one is
     * practically impossible; should it happen, the UNIQUE constraint says
     * so and a fresh key is drawn.
     */
    for (int tries = 0; rc == 0; tries++) {
        struct err e = ERR_INIT;
        auth_key_generate(out_key);
        id_new("key_", row.id);
        auth_key_prefix(out_key, strlen(out_key), row.prefix);
        auth_key_hash(out_key, strlen(out_key), row.hash);
        rc = store_key_insert(st, &row, &e);
        if (rc == ERR_CONFLICT && tries < 3) {
            rc = 0;
            continue;
        }
        if (rc && err)
            *err = e;
        break;
    }
    if (rc == 0)
        rc = store_commit(st, err);
    if (rc)
        store_rollback(st);
out:
    if (rc) {
        sodium_memzero(out_key, AUTH_KEY_BUF);
        key_row_release(&row);
        return rc;
    }
    *out_row = row;
    return 0;
}
