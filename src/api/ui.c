/*
 * ui.c - the web pages compiled into orch (ui_assets.c, generated from ui/):
 * GET /assets/<file> answers the file; any other GET outside /v1 that a
 * browser makes (Accept: text/html) answers index.html, so that the pages'
 * own paths (/executions/ex_..., /login) load them (history routing). A
 * client that does not ask for HTML there gets the API's 404, as before.
 *
 * Every answer has the headers of api__ui_headers(); assets have an ETag
 * (a hash of their bytes) and are revalidated (If-None-Match: 304).
 */
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "ui_assets.h"

#include "base/banned.h"

#define ASSETS_PREFIX "/assets/"

const char api__ui_csp[] = "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'; form-action 'self'";

static const struct ui_asset *find(const char *path)
{
    for (size_t i = 0; i < ui_nassets; i++)
        if (!strcmp(ui_assets[i].path, path))
            return &ui_assets[i];
    return NULL;
}

/* Does the Accept value name text/html (a browser loading a page)? */
static int wants_html(const char *accept)
{
    const char *p;

    for (p = accept; p && (p = strcasestr(p, "text/html")) != NULL; p += 9) {
        char after = p[9];
        if ((p == accept || p[-1] == ',' || p[-1] == ' ') &&
            (after == '\0' || after == ',' || after == ';' || after == ' '))
            return 1;
    }
    return 0;
}

int api__ui_claims(const char *path, const char *accept)
{
    if (!strcmp(path, "/v1") || !strncmp(path, "/v1/", 4) || !strcmp(path, "/metrics"))
        return 0;
    if (!strncmp(path, ASSETS_PREFIX, strlen(ASSETS_PREFIX)))
        return 1;
    return wants_html(accept);
}

void api__ui_serve(struct api_request *req)
{
    const struct ui_asset *a;
    const char *inm;

    if (!strncmp(req->path, ASSETS_PREFIX, strlen(ASSETS_PREFIX)))
        a = find(req->path + strlen(ASSETS_PREFIX));
    else
        a = find("index.html");
    if (!a) {
        api__reply_error(req, 404, NULL, "no such file of the web pages: %.100s", req->path);
        return;
    }
    inm = api__header(req, "If-None-Match");
    if (inm && api__etag_matches(inm, a->etag))
        api__reply_empty(req, 304);
    else
        api__reply_static(req, 200, a->type, a->data, a->len);
    api__reply_header(req, "ETag", a->etag);
    req->cache_control = "no-cache";
}
