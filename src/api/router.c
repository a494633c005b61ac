/*
 * router.c - the route table of /v1 and the (pure) matcher.
 */
#include <stdio.h>
#include <string.h>

#include "api_internal.h"

#include "base/banned.h"

const struct api_route api__routes[] = {
    {"GET", "/v1/health", KEY_SCOPE_READ, api__health},
    {"GET", "/v1/health/scheduler", 0, api__health_scheduler},
    {"GET", "/v1/health/live", 0, api__health_live},
    {"GET", "/v1/health/ready", 0, api__health_ready},
    {"GET", "/v1/nodes", KEY_SCOPE_READ, api__nodes_list},
    {"POST", "/v1/workflows", KEY_SCOPE_WRITE, api__workflows_put},
    {"GET", "/v1/workflows", KEY_SCOPE_READ, api__workflows_list},
    {"GET", "/v1/workflows/{name}", KEY_SCOPE_READ, api__workflows_get},
    {"DELETE", "/v1/workflows/{name}", KEY_SCOPE_WRITE, api__workflows_delete},
    {"GET", "/v1/workflows/{name}/graph", KEY_SCOPE_READ, api__workflows_graph},
    {"GET", "/v1/workflows/{name}/versions", KEY_SCOPE_READ, api__workflows_versions},
    {"GET", "/v1/stats/executions", KEY_SCOPE_READ, api__stats_executions},
    {"POST", "/v1/workflows/{name}/executions", KEY_SCOPE_WRITE, api__executions_submit},
    {"GET", "/v1/executions", KEY_SCOPE_READ, api__executions_list},
    {"GET", "/v1/executions/{id}", KEY_SCOPE_READ, api__executions_get},
    {"POST", "/v1/executions/{id}/cancel", KEY_SCOPE_WRITE, api__executions_cancel},
    {"POST", "/v1/executions/{id}/retry", KEY_SCOPE_WRITE, api__executions_retry},
    {"GET", "/v1/executions/{id}/logs", KEY_SCOPE_READ, api__executions_logs},
    {"GET", "/v1/executions/{id}/tasks", KEY_SCOPE_READ, api__executions_tasks},
    {"GET", "/v1/executions/{id}/notifications", KEY_SCOPE_READ, api__executions_notifications},
    {"GET", "/v1/schedules", KEY_SCOPE_READ, api__schedules_list},
    {"POST", "/v1/schedules", KEY_SCOPE_WRITE, api__schedules_create},
    {"GET", "/v1/schedules/{id}", KEY_SCOPE_READ, api__schedules_get},
    {"PATCH", "/v1/schedules/{id}", KEY_SCOPE_WRITE, api__schedules_patch},
    {"DELETE", "/v1/schedules/{id}", KEY_SCOPE_WRITE, api__schedules_delete},
    {"GET", "/v1/schedules/{id}/next", KEY_SCOPE_READ, api__schedules_next},
    {"GET", "/v1/schedules/{id}/preview", KEY_SCOPE_READ, api__schedules_preview},
    {"GET", "/v1/schedules/{id}/fires", KEY_SCOPE_READ, api__schedules_fires},
    {"POST", "/v1/schedules/{id}/pause", KEY_SCOPE_WRITE, api__schedules_pause},
    {"POST", "/v1/schedules/{id}/resume", KEY_SCOPE_WRITE, api__schedules_resume},
    {"POST", "/v1/schedules/{id}/backfill", KEY_SCOPE_WRITE, api__schedules_backfill},
    {"POST", "/v1/session", 0, api__session_create},
    {"GET", "/v1/session", 0, api__session_get},
    {"DELETE", "/v1/session", 0, api__session_delete},
    {"POST", "/v1/keys", KEY_SCOPE_ADMIN, api__keys_create},
    {"GET", "/v1/keys", KEY_SCOPE_ADMIN, api__keys_list},
    {"DELETE", "/v1/keys/{id}", KEY_SCOPE_ADMIN, api__keys_revoke},
    {"GET", "/v1/doctor", KEY_SCOPE_ADMIN, api__doctor},
    /* Prometheus; a read key unless --metrics-auth none (http.c). */
    {"GET", "/metrics", KEY_SCOPE_READ, api__metrics},
};

const size_t api__nroutes = sizeof(api__routes) / sizeof(api__routes[0]);

int api__route_has_etag(const struct api_route *r)
{
    return r->handler == api__executions_get || r->handler == api__executions_tasks ||
           r->handler == api__executions_list || r->handler == api__health ||
           r->handler == api__workflows_graph || r->handler == api__stats_executions ||
           r->handler == api__workflows_versions;
}

/*
 * Does `path` fit `pattern`? Segments are compared literally, except that a
 * "{name}" segment takes any non-empty segment (without '/'), whose value
 * goes to *params.
 */
static int path_fits(const char *pattern, const char *path, struct api_path_params *params)
{
    const char *p = pattern, *s = path;

    params->n = 0;
    for (;;) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            size_t n = strcspn(s, "/");
            if (!close || n == 0 || n >= API_PARAM_MAX || params->n >= API_MAX_PARAMS)
                return 0;
            memcpy(params->values[params->n], s, n);
            params->values[params->n][n] = '\0';
            params->n++;
            p = close + 1;
            s += n;
            continue;
        }
        if (*p != *s)
            return 0;
        if (*p == '\0')
            return 1;
        p++;
        s++;
    }
}

const struct api_route *api__route_match(const struct api_route *routes, size_t n,
                                         const char *method, const char *path,
                                         struct api_path_params *params, char *allow,
                                         size_t allowlen)
{
    struct api_path_params tmp;
    size_t used = 0;

    if (allowlen)
        allow[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!path_fits(routes[i].pattern, path, &tmp))
            continue;
        if (!strcmp(routes[i].method, method)) {
            *params = tmp;
            return &routes[i];
        }
        if (used < allowlen) {
            /* HEAD goes wherever GET does. */
            int w = snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "",
                             routes[i].method, strcmp(routes[i].method, "GET") ? "" : ", HEAD");
            if (w > 0)
                used += (size_t)w;
        }
    }
    return NULL;
}
