/*
 * view.h - JSON views of stored objects, with the field names of the API
 * (camelCase): the CLI's --json output and the HTTP API share them.
 *
 * Every function returns a new jansson reference owned by the caller
 * (json_decref it). Instants are ISO 8601 UTC strings, or null when unset.
 */
#ifndef ORCH_VIEW_VIEW_H
#define ORCH_VIEW_VIEW_H

#include <jansson.h>

#include "store/store.h"

/* {"id", "workflow", "workflowVersion", "status", "params", "createdAt",
 *  "startedAt", "finishedAt", "durationMs", "error"} */
json_t *view_exec_summary(const struct exec_row *row);
/* The summary plus "tasks": [{"name", "status", "attempts": [...], ...}] */
json_t *view_exec_detail(const struct exec_detail *d);
/* {"items": [...summaries], "nextCursor": "ex_..." or null} */
json_t *view_exec_list(const struct exec_list *list, int limit);
/* Null or an ISO 8601 string for an instant in ms (0 = null). */
json_t *view_instant(int64_t ms);

#endif
