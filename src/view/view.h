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

#include "base/strbuf.h"
#include "store/store.h"

/* {"id", "workflow", "workflowVersion", "status", "params", "createdAt",
 *  "startedAt", "finishedAt", "durationMs", "error", "scheduleId", "scheduledFor"}
 * (scheduleId and scheduledFor are null unless a schedule fired it) */
json_t *view_exec_summary(const struct exec_row *row);
/* The summary plus "tasks": [{"name", "status", "attempts": [...], ...}] */
json_t *view_exec_detail(const struct exec_detail *d);
/* One task run of a detail (d->tasks[i]), as in "tasks" above; its group's
 * name is looked up in `names` (the workflow's tasks), or in d if NULL. */
json_t *view_task_run(const struct exec_detail *d, size_t i, const struct exec_detail *names);
/* The detail of a large fan-out, read by store_execution_page without the
 * instances: "tasks" the workflow's tasks, each forEach task with
 * "instances": {"total", "byStatus"} (from d->counts) and a null "output",
 * and "instancesOmitted" (they are listed by GET /v1/executions/{id}/tasks). */
json_t *view_exec_detail_grouped(const struct exec_detail *d);
/* Set "outputs" of a detail (null until set): the workflow's outputs, JSON text or NULL. */
void view_exec_set_outputs(json_t *detail, const char *outputs_json);
/* {"items": [...summaries], "nextCursor": "ex_..." or null}: the first `limit`
 * rows; nextCursor is set when the list holds more than `limit` rows (fetch
 * limit + 1 to know). */
json_t *view_exec_list(const struct exec_list *list, int limit);
/*
 * The same list written straight into `sb` as compact JSON, without building a
 * jansson tree: the API's hot path (GET /v1/executions). `next_cursor` is the
 * id to give as nextCursor, or NULL. Returns 0 or ERR_TOO_BIG (sb's maximum).
 */
int view_exec_list_write(struct strbuf *sb, const struct exec_list *list, size_t n,
                         const char *next_cursor);

/* A JSON string of `len` bytes of text from outside, made valid UTF-8 (every
 * invalid sequence and NUL becomes U+FFFD); never NULL. */
json_t *view_text(const char *s, size_t len);

/* Null or an ISO 8601 string for an instant in ms (0 = null). */
json_t *view_instant(int64_t ms);

/* {"id", "name", "prefix", "scopes": ["read", ...], "createdAt", "expiresAt",
 *  "lastUsedAt", "revokedAt"}: an API key without its secret. */
json_t *view_key(const struct key_row *row);
/* {"name", "version", "createdAt", "description", "tasks": N} of a workflow
 * version from its definition text, plus "definition": {...} (the parsed
 * text, its literal credentials redacted: dag_redact_definition) if
 * `with_definition`. `created_at` 0 gives null. */
json_t *view_workflow(const char *name, int version, int64_t created_at, const char *definition,
                      int with_definition);

#endif
