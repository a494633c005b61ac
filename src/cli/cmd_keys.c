/*
 * cmd_keys.c - `orch keys create|list|revoke`: API keys, offline on the data
 * directory (works with or without a server running on it).
 */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/clock.h"
#include "cli.h"
#include "view/view.h"

#include "base/banned.h"

static const struct cli_opt create_opts[] = {
    {"name", "NAME", "the key's name (required; unique among keys not revoked)", 0},
    {"scope", "SCOPE",
     "read, write or admin (admin implies write, write implies read; "
     "default read; repeatable, or comma-separated)",
     1},
    {"expires", "DURATION", "expire after this long (30d, 12h, ...; default never)", 0},
    {"json", NULL, "print the key and its record as JSON", 0},
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd create_cmd = {
    "keys create",
    NULL,
    "Create an API key for the HTTP API and print it once: only its hash is stored, so it\n"
    "cannot be shown again. The key alone goes to stdout (KEY=$(orch keys create ...)),\n"
    "its description to stderr.",
    create_opts,
};

static const struct cli_opt list_opts[] = {
    {"json", NULL, "print the keys as JSON", 0},
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd list_cmd = {
    "keys list",
    NULL,
    "List API keys (never the keys themselves: their prefix only).",
    list_opts,
};

static const struct cli_opt revoke_opts[] = {
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd revoke_cmd = {
    "keys revoke",
    "ID|NAME",
    "Revoke an API key: requests with it get 401 from now on.",
    revoke_opts,
};

static void keys_usage(FILE *f)
{
    fprintf(f, "usage: orch keys create --name NAME [--scope read|write|admin] [--expires 30d]\n"
               "       orch keys list\n"
               "       orch keys revoke ID|NAME\n");
}

static int keys_create(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct key_row row;
    struct err err = ERR_INIT;
    char key[AUTH_KEY_BUF];
    char scopes_txt[32], when[CLOCK_ISO_MAX];
    const char *name, *exp;
    unsigned scopes = 0;
    int64_t now = clock_now_ms(), expires_at = 0;
    int rc;

    rc = cli_parse(&create_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch keys create' takes no arguments (use --name)");
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(&a))
        return EXIT_USAGE;
    name = cli_get(&a, "name");
    if (!name) {
        cli_error("'orch keys create' needs --name NAME");
        return EXIT_USAGE;
    }
    for (int i = 0; i < a.nvals; i++) {
        unsigned bits;
        if (strcmp(a.vals[i].opt->name, "scope"))
            continue;
        if (auth_scopes_parse_list(a.vals[i].value, &bits, &err)) {
            cli_error("%s", err.msg);
            return EXIT_USAGE;
        }
        scopes |= bits;
    }
    if (!scopes)
        scopes = KEY_SCOPE_READ;
    exp = cli_get(&a, "expires");
    if (exp) {
        int64_t ms;
        if (clock_parse_duration(exp, &ms, &err) || ms <= 0) {
            cli_error("invalid --expires '%s': %s", exp,
                      err.msg[0] ? err.msg : "use a duration such as 30d");
            return EXIT_USAGE;
        }
        expires_at = now + ms;
    }
    if (auth_init(&err)) {
        cli_error("%s", err.msg);
        return EXIT_INTERNAL;
    }
    if (cli_open_store(&a, 1, &st))
        return EXIT_INTERNAL;
    rc = auth_key_create(st, name, scopes, expires_at, now, key, &row, &err);
    store_free(st);
    if (rc) {
        cli_error("cannot create the key: %s", err.msg);
        return rc == ERR_INVALID ? EXIT_USAGE : cli_exit_for_err(rc);
    }
    if (cli_flag(&a, "json")) {
        json_t *o = view_key(&row);
        char *s;
        json_object_set_new(o, "key", json_string(key));
        s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s);
        sodium_memzero(s, strlen(s));
        free(s);
        json_decref(o);
    } else {
        auth_scopes_format(row.scopes, scopes_txt, sizeof(scopes_txt));
        fprintf(stderr, "Created API key '%s' (%s, prefix %s, scopes %s, %s%s).\n", row.name,
                row.id, row.prefix, scopes_txt, row.expires_at ? "expires " : "never expires",
                row.expires_at ? clock_iso8601(row.expires_at, when) : "");
        fprintf(stderr, "It is shown only this once; use it as 'Authorization: Bearer <key>':\n");
        fflush(stderr);
        printf("%s\n", key);
    }
    fflush(stdout);
    sodium_memzero(key, sizeof(key));
    key_row_release(&row);
    return EXIT_OK;
}

static const char *key_state(const struct key_row *k, int64_t now)
{
    if (k->revoked_at)
        return "revoked";
    if (k->expires_at && now >= k->expires_at)
        return "expired";
    return "active";
}

static void fmt_instant(int64_t ms, char *out)
{
    if (!ms) {
        snprintf(out, CLOCK_ISO_MAX, "-");
        return;
    }
    clock_iso8601(ms, out);
    out[19] = 'Z'; /* to the second is enough in a table */
    out[20] = '\0';
}

static int keys_list(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct key_row *rows = NULL;
    struct err err = ERR_INIT;
    size_t n = 0;
    int64_t now = clock_now_ms();
    int rc;

    rc = cli_parse(&list_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch keys list' takes no arguments");
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(&a))
        return EXIT_USAGE;
    if (cli_open_store(&a, 0, &st))
        return cli_exit_for_err(ERR_NOT_FOUND);
    rc = store_keys_list(st, &rows, &n, &err);
    store_free(st);
    if (rc) {
        cli_error("%s", err.msg);
        return cli_exit_for_err(rc);
    }
    if (cli_flag(&a, "json")) {
        json_t *o = json_object(), *items = json_array();
        char *s;
        for (size_t i = 0; i < n; i++)
            json_array_append_new(items, view_key(&rows[i]));
        json_object_set_new(o, "items", items);
        s = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else if (n == 0) {
        printf("No API keys. Create one with 'orch keys create --name NAME --scope admin'.\n");
    } else {
        printf("%-20s  %-16s  %-15s  %-16s  %-7s  %-20s  %-20s  %s\n", "ID", "NAME", "PREFIX",
               "SCOPES", "STATE", "CREATED", "EXPIRES", "LAST USED");
        for (size_t i = 0; i < n; i++) {
            char scopes[32], c[CLOCK_ISO_MAX], e[CLOCK_ISO_MAX], u[CLOCK_ISO_MAX];
            auth_scopes_format(rows[i].scopes, scopes, sizeof(scopes));
            fmt_instant(rows[i].created_at, c);
            fmt_instant(rows[i].expires_at, e);
            fmt_instant(rows[i].last_used_at, u);
            printf("%-20s  %-16.40s  %-12s...  %-16s  %-7s  %-20s  %-20s  %s\n", rows[i].id,
                   rows[i].name ? rows[i].name : "", rows[i].prefix, scopes,
                   key_state(&rows[i], now), c, e, u);
        }
    }
    key_rows_free(rows, n);
    return EXIT_OK;
}

static int keys_revoke(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct err err = ERR_INIT;
    int rc;

    rc = cli_parse(&revoke_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos != 1) {
        cli_error("'orch keys revoke' needs exactly one key id or name");
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(&a))
        return EXIT_USAGE;
    if (cli_open_store(&a, 1, &st))
        return EXIT_INTERNAL;
    rc = store_key_revoke(st, a.pos[0], clock_now_ms(), &err);
    store_free(st);
    if (rc) {
        cli_error("%s", err.msg);
        return cli_exit_for_err(rc);
    }
    printf("Revoked API key '%s'.\n", a.pos[0]);
    return EXIT_OK;
}

int cmd_keys(int argc, char **argv)
{
    if (argc < 1) {
        keys_usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        keys_usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[0], "create"))
        return keys_create(argc - 1, argv + 1);
    if (!strcmp(argv[0], "list"))
        return keys_list(argc - 1, argv + 1);
    if (!strcmp(argv[0], "revoke"))
        return keys_revoke(argc - 1, argv + 1);
    cli_error("unknown keys command '%s' (use create, list or revoke)", argv[0]);
    return EXIT_USAGE;
}
