/*
 * handlers_nodes.c - GET /v1/nodes: the orch processes that share the store,
 * with their last heartbeat and what they own.
 */
#include <string.h>

#include "api_internal.h"
#include "store/store.h"
#include "view/view.h"

#include "base/banned.h"

void api__nodes_list(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    struct node_row *rows = NULL;
    struct err err = ERR_INIT;
    struct store *rd;
    size_t n = 0;
    int64_t lease = api__lease_ms(req);
    json_t *items, *o;

    if (api__query_check(req, no_args))
        return;
    rd = api__read_store(req);
    if (!rd)
        return;
    if (store_nodes_list(rd, &rows, &n, &err)) {
        api__reply_err(req, &err);
        return;
    }
    items = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct node_row *r = &rows[i];
        int64_t age = r->db_now - r->heartbeat_at;
        const char *state = r->stopped_at ? "stopped" : age > lease ? "lost" : "alive";
        json_t *e = json_object();
        json_object_set_new(e, "id", json_string(r->id));
        json_object_set_new(e, "role", json_string(r->role));
        json_object_set_new(e, "host", json_string(r->host));
        json_object_set_new(e, "pid", json_integer(r->pid));
        json_object_set_new(e, "version", json_string(r->version));
        json_object_set_new(e, "state", json_string(state));
        json_object_set_new(e, "self", json_boolean(api__node(req) &&
                                                    !strcmp(api__node(req), r->id)));
        json_object_set_new(e, "startedAt", view_instant(r->started_at));
        json_object_set_new(e, "lastHeartbeatAt", view_instant(r->heartbeat_at));
        json_object_set_new(e, "heartbeatAgeMs", json_integer(age > 0 ? age : 0));
        json_object_set_new(e, "stoppedAt",
                            r->stopped_at ? view_instant(r->stopped_at) : json_null());
        json_object_set_new(e, "executions", json_integer(r->executions));
        json_array_append_new(items, e);
    }
    node_rows_free(rows, n);
    o = json_object();
    json_object_set_new(o, "items", items);
    json_object_set_new(o, "leaseMs", json_integer(lease));
    api__reply_json(req, 200, o);
}
