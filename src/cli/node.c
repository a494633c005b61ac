/*
 * node.c - an orch process as a node of the store: its name, its lease, its
 * row in `nodes` (wiring only; the engine renews it).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cli.h"
#include "engine/engine.h"

#include "base/banned.h"

#define NODE_NAME_MAX 120

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NODE_NAME_MAX)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == '"' || *s == '\\' || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

int cli_node_settings(const struct cli_args *a, struct engine_node *nd, char *idbuf,
                      size_t idlen)
{
    const char *v = cli_get(a, "node");
    struct err err = ERR_INIT;

    memset(nd, 0, sizeof(*nd));
    if (!v || !*v)
        v = getenv("ORCH_NODE");
    if (v && *v) {
        if (!name_ok(v)) {
            cli_error("invalid node name '%.64s' (1 to %d printable characters, no spaces or "
                      "quotes)", v, NODE_NAME_MAX);
            return -1;
        }
        snprintf(idbuf, idlen, "%s", v);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(idbuf, idlen, "%s:%d", host, (int)getpid());
    }
    nd->id = idbuf;
    nd->lease_ms = ENGINE_DEFAULT_LEASE_MS;
    v = cli_get(a, "lease");
    if (!v || !*v)
        v = getenv("ORCH_LEASE");
    if (v && *v) {
        if (clock_parse_duration(v, &nd->lease_ms, &err)) {
            cli_error("invalid lease: %s", err.msg);
            return -1;
        }
        if (nd->lease_ms < 1000 || nd->lease_ms > 3600 * 1000) {
            cli_error("invalid lease '%s' (use 1s to 1h)", v);
            return -1;
        }
    }
    return 0;
}

/* Is node `id` an earlier process of this host that is gone? */
static int dead_here(struct store *st, const char *id)
{
    struct node_row *rows = NULL;
    struct err err = ERR_INIT;
    char host[64] = "localhost";
    size_t n = 0;
    int dead = 0;

    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    if (store_nodes_list(st, &rows, &n, &err))
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].id, id) || strcmp(rows[i].host, host))
            continue;
        if (rows[i].pid == (int)getpid() || (kill(rows[i].pid, 0) != 0 && errno == ESRCH))
            dead = 1;
    }
    node_rows_free(rows, n);
    return dead;
}

int cli_node_register(struct store *st, const struct engine_node *nd, const char *role,
                      int slots)
{
    struct node_row row;
    struct err err = ERR_INIT;
    char host[64] = "localhost";
    int rc;

    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    memset(&row, 0, sizeof(row));
    row.id = (char *)nd->id;
    row.host = host;
    row.pid = (int)getpid();
    row.role = (char *)role;
    row.version = (char *)ORCH_VERSION;
    row.slots = slots;
    rc = store_node_register(st, &row, nd->lease_ms, &err);
    if (rc == ERR_BUSY && dead_here(st, nd->id))
        rc = store_node_register(st, &row, 0, &err); /* its process is gone: take the name */
    if (rc == ERR_FULL && !nd->cluster)
        log_warn("Engine", "Node '%s' not registered: %s", nd->id, err.msg);
    else if (rc)
        cli_error("cannot register node '%s': %s", nd->id, err.msg);
    return rc;
}
