/*
 * ui.c - the web pages compiled into orch (ui_assets.c, generated from ui/):
 * GET /assets/<file> answers the file; any other GET outside /v1 that a
 * browser makes (Accept: text/html) answers index.html, so that the pages'
 * own paths (/executions/ex_..., /login) load them (history routing). A
 * client that does not ask for HTML there gets the API's 404, as before.
 *
 * Every answer has the headers of api__ui_headers(); assets have an ETag
 * (a hash of their bytes) and are revalidated (If-None-Match: 304). A
 * client that accepts gzip gets each file compressed once (level 9, at its
 * first request) and kept for the life of the process.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_internal.h"
#include "ui_assets.h"
#include "base/xalloc.h"

#include "base/banned.h"

#define ASSETS_PREFIX "/assets/"

const char api__ui_csp[] = "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                           "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                           "base-uri 'none'; form-action 'self'";

/* The gzipped files, by index in ui_assets[]: made under gz_mu, never freed. */
struct gz_asset {
    int done; /* tried: data is NULL when gzip did not make it smaller */
    char *data;
    size_t len;
    char etag[80];
};
static pthread_mutex_t gz_mu = PTHREAD_MUTEX_INITIALIZER;
static struct gz_asset *gz_assets;

static const struct gz_asset *gz_get(const struct ui_asset *a)
{
    size_t i = (size_t)(a - ui_assets);
    struct gz_asset *g;

    pthread_mutex_lock(&gz_mu);
    if (!gz_assets)
        gz_assets = xcalloc(ui_nassets ? ui_nassets : 1, sizeof(*gz_assets));
    g = &gz_assets[i];
    if (!g->done) {
        g->done = 1;
        if (api__gzip(a->data, a->len, 9, &g->data, &g->len) == 0)
            api__etag_gz(a->etag, g->etag, sizeof(g->etag));
    }
    pthread_mutex_unlock(&gz_mu);
    return g->data ? g : NULL;
}

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
    const struct gz_asset *g = NULL;
    const char *inm;

    if (!strncmp(req->path, ASSETS_PREFIX, strlen(ASSETS_PREFIX)))
        a = find(req->path + strlen(ASSETS_PREFIX));
    else
        a = find("index.html");
    if (!a) {
        api__reply_error(req, 404, NULL, "no such file of the web pages: %.100s", req->path);
        return;
    }
    if (a->len >= API_GZIP_MIN && api__accepts_gzip(api__header(req, "Accept-Encoding")))
        g = gz_get(a);
    inm = api__header(req, "If-None-Match");
    if (inm && (api__etag_matches(inm, a->etag) || (g && api__etag_matches(inm, g->etag)))) {
        api__reply_empty(req, 304);
    } else if (g) {
        api__reply_static(req, 200, a->type, g->data, g->len);
        api__reply_header(req, "Content-Encoding", "gzip");
    } else {
        api__reply_static(req, 200, a->type, a->data, a->len);
    }
    api__reply_header(req, "ETag", g ? g->etag : a->etag);
    if (a->len >= API_GZIP_MIN)
        api__reply_header(req, "Vary", "Accept-Encoding");
    req->cache_control = "no-cache";
}
