/*
 * handlers_keys.c - /v1/keys: API keys, for admins.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/log.h"
#include "view/view.h"

#include "base/banned.h"

static const char *const no_args[] = {NULL};

static void problem(json_t *details, const char *path, const char *msg)
{
    json_t *d = json_object();
    json_object_set_new(d, "path", api__json_string(path, strlen(path)));
    json_object_set_new(d, "message", api__json_string(msg, strlen(msg)));
    json_array_append_new(details, d);
}

/*
 * Read {"name", "scopes", "expiresIn"} from the body. Returns 0, or -1 after
 * replying (400 for a body that is not a JSON object, 422 with every problem).
 */
static int key_request(struct api_request *req, json_t **out_doc, const char **name,
                       unsigned *scopes, int64_t *expires_in)
{
    json_error_t jerr;
    json_t *doc, *v, *details;
    const char *key;

    *out_doc = NULL;
    if (req->body.len == 0) {
        api__reply_error(req, 400, NULL,
                         "the request body must be a JSON object such as {\"name\": \"ci\", "
                         "\"scopes\": [\"read\"], \"expiresIn\": \"30d\"}");
        return -1;
    }
    doc = json_loadb(req->body.buf, req->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        api__reply_error(req, 400, NULL,
                         "the request body is not valid JSON: line %d column %d: %s", jerr.line,
                         jerr.column, jerr.text);
        return -1;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        api__reply_error(req, 400, NULL, "the request body must be a JSON object");
        return -1;
    }
    details = json_array();
    json_object_foreach(doc, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "scopes") && strcmp(key, "expiresIn")) {
            char path[100], msg[120];
            snprintf(path, sizeof(path), "$.%.64s", key);
            snprintf(msg, sizeof(msg), "unknown field '%.64s' (use name, scopes, expiresIn)", key);
            problem(details, path, msg);
        }
    }
    v = json_object_get(doc, "name");
    *name = json_string_value(v);
    if (!v)
        problem(details, "$.name", "'name' is required");
    else if (!*name || !auth_valid_key_name(*name))
        problem(details, "$.name", "'name' must be a string of 1 to 200 printable characters");
    *scopes = KEY_SCOPE_READ;
    v = json_object_get(doc, "scopes");
    if (v && !json_is_array(v)) {
        problem(details, "$.scopes", "'scopes' must be an array of read, write, admin");
    } else if (v) {
        size_t i;
        json_t *s;
        *scopes = 0;
        if (json_array_size(v) == 0)
            problem(details, "$.scopes", "'scopes' must name at least one scope");
        json_array_foreach(v, i, s)
        {
            unsigned bit;
            char path[40];
            snprintf(path, sizeof(path), "$.scopes[%zu]", i);
            if (!json_is_string(s) || auth_scope_parse(json_string_value(s), &bit))
                problem(details, path, "unknown scope (use read, write or admin)");
            else
                *scopes |= bit;
        }
    }
    *expires_in = 0;
    v = json_object_get(doc, "expiresIn");
    if (v && !json_is_null(v)) {
        struct err e = ERR_INIT;
        char num[32];
        const char *text = json_is_string(v) ? json_string_value(v) : NULL;
        if (json_is_integer(v)) { /* a number of seconds, as everywhere in the API */
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            text = num;
        }
        if (!text)
            problem(details, "$.expiresIn",
                    "'expiresIn' must be a duration such as \"30d\" or a number of seconds");
        else if (clock_parse_duration(text, expires_in, &e))
            problem(details, "$.expiresIn", e.msg);
        else if (*expires_in <= 0)
            problem(details, "$.expiresIn", "'expiresIn' must be more than zero");
    }
    if (json_array_size(details)) {
        api__reply_error(req, 422, details, "invalid key request");
        json_decref(doc);
        return -1;
    }
    json_decref(details);
    *out_doc = doc;
    return 0;
}

void api__keys_create(struct api_request *req)
{
    struct key_row row;
    struct err err = ERR_INIT;
    struct store *wr;
    char key[AUTH_KEY_BUF];
    const char *name = NULL;
    unsigned scopes = 0;
    int64_t expires_in = 0, now = clock_now_ms();
    json_t *doc = NULL, *o;
    char loc[64];
    int rc;

    if (api__query_check(req, no_args))
        return;
    if (key_request(req, &doc, &name, &scopes, &expires_in))
        return;
    wr = api__write_store(req);
    if (!wr)
        goto out;
    rc = auth_key_create(wr, name, scopes, expires_in ? now + expires_in : 0, now, key, &row, &err);
    if (rc == ERR_INVALID) {
        json_t *details = json_array();
        problem(details, "$", err.msg);
        api__reply_error(req, 422, details, "invalid key request: %s", err.msg);
        goto out;
    }
    if (rc) {
        api__reply_err(req, &err);
        goto out;
    }
    log_info("API", "Created API key %s '%s' (%s) request_id=%s by=%s", row.prefix, row.name,
             auth_scope_top(row.scopes), req->request_id, req->key.prefix);
    o = view_key(&row);
    json_object_set_new(o, "key", json_string(key));
    sodium_memzero(key, sizeof(key));
    api__reply_json(req, 201, o);
    snprintf(loc, sizeof(loc), "/v1/keys/%s", row.id);
    api__reply_header(req, "Location", loc);
    key_row_release(&row);
out:
    json_decref(doc);
}

void api__keys_list(struct api_request *req)
{
    struct key_row *rows = NULL;
    struct err err = ERR_INIT;
    struct store *rd;
    json_t *items, *o;
    size_t n = 0;

    if (api__query_check(req, no_args))
        return;
    rd = api__read_store(req);
    if (!rd)
        return;
    if (store_keys_list(rd, &rows, &n, &err)) {
        api__reply_err(req, &err);
        return;
    }
    items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, view_key(&rows[i]));
    key_rows_free(rows, n);
    o = json_object();
    json_object_set_new(o, "items", items);
    api__reply_json(req, 200, o);
}

void api__keys_revoke(struct api_request *req)
{
    const char *id = req->params.values[0];
    struct err err = ERR_INIT;
    struct store *wr;

    if (api__query_check(req, no_args))
        return;
    wr = api__write_store(req);
    if (!wr)
        return;
    if (store_key_revoke(wr, id, clock_now_ms(), &err)) {
        api__reply_err(req, &err);
        return;
    }
    log_info("API", "Revoked API key %.64s request_id=%s by=%s", id, req->request_id,
             req->key.prefix);
    api__reply_empty(req, 204);
}
