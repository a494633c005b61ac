/*
 * ui_assets.h - the files of ui/, compiled into orch (the table is generated
 * by cmake/embed_ui.cmake into the build directory); served by ui.c.
 */
#ifndef ORCH_API_UI_ASSETS_H
#define ORCH_API_UI_ASSETS_H

#include <stddef.h>

struct ui_asset {
    const char *path; /* relative to ui/: "index.html", "app.js" */
    const char *type; /* Content-Type */
    const char *etag; /* quoted: "\"0123abcd...\"" */
    const char *data; /* `len` bytes (not NUL-terminated as far as `len` is concerned) */
    size_t len;
};

extern const struct ui_asset ui_assets[];
extern const size_t ui_nassets;

#endif
