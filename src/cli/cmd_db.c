/*
 * cmd_db.c - `orch db migrate` and `orch db status`: the store's schema and
 * the nodes that share it (wiring only).
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "cli.h"
#include "store/store.h"

#include "base/banned.h"

static const struct cli_opt db_opts[] = {
    {"json", NULL, "print JSON", 0},
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd migrate_cmd = {
    "db migrate",
    NULL,
    "Bring the store's schema up to this orch's version (in one transaction, under a lock,\n"
    "so that nodes starting at once do not race). Servers and workers do it at start too.",
    db_opts,
};

static const struct cli_cmd status_cmd = {
    "db status",
    NULL,
    "Show the store: backend, schema version, and the nodes that share it with their last\n"
    "heartbeat (a node whose heartbeat is older than its lease has lost what it owned).",
    db_opts,
};

static int db_migrate(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct err err = ERR_INIT;
    int version = 0, rc;

    rc = cli_parse(&migrate_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch db migrate' takes no arguments");
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(&a))
        return EXIT_USAGE;
    if (cli_open_store(&a, 1, &st))
        return EXIT_INTERNAL;
    rc = store_schema_version(st, &version, &err);
    if (rc) {
        cli_error("%s", err.msg);
        store_free(st);
        return EXIT_INTERNAL;
    }
    if (cli_flag(&a, "json"))
        printf("{\"backend\":\"%s\",\"schemaVersion\":%d,\"latest\":%d}\n",
               store_backend_name(st), version, store_schema_latest());
    else
        printf("%s store at %s: schema version %d (latest %d)\n", store_backend_name(st),
               store_where(st), version, store_schema_latest());
    store_free(st);
    return EXIT_OK;
}

static int db_status(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct err err = ERR_INIT;
    struct node_row *nodes = NULL;
    size_t n = 0;
    int version = 0, rc, code = EXIT_OK;

    rc = cli_parse(&status_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch db status' takes no arguments");
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(&a))
        return EXIT_USAGE;
    if (cli_open_store(&a, 0, &st))
        return EXIT_INTERNAL;
    if (store_schema_version(st, &version, &err) || store_nodes_list(st, &nodes, &n, &err)) {
        cli_error("%s", err.msg);
        store_free(st);
        return EXIT_INTERNAL;
    }
    if (cli_flag(&a, "json")) {
        json_t *o = json_object(), *arr = json_array();
        char *text;
        json_object_set_new(o, "backend", json_string(store_backend_name(st)));
        json_object_set_new(o, "location", json_string(store_where(st)));
        json_object_set_new(o, "schemaVersion", json_integer(version));
        json_object_set_new(o, "latest", json_integer(store_schema_latest()));
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "id", json_string(nodes[i].id));
            json_object_set_new(e, "role", json_string(nodes[i].role));
            json_object_set_new(e, "host", json_string(nodes[i].host));
            json_object_set_new(e, "pid", json_integer(nodes[i].pid));
            json_object_set_new(e, "heartbeatAgeMs",
                                json_integer(nodes[i].db_now - nodes[i].heartbeat_at));
            json_object_set_new(e, "stopped", json_boolean(nodes[i].stopped_at != 0));
            json_object_set_new(e, "executions", json_integer(nodes[i].executions));
            json_array_append_new(arr, e);
        }
        json_object_set_new(o, "nodes", arr);
        text = json_dumps(o, JSON_COMPACT);
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
    } else {
        printf("backend:  %s\nlocation: %s\nschema:   version %d (this orch: %d)%s\n",
               store_backend_name(st), store_where(st), version, store_schema_latest(),
               version < store_schema_latest() ? ": run 'orch db migrate'" : "");
        printf("nodes:    %zu\n", n);
        if (n)
            printf("\n%-28s %-7s %-20s %8s %12s %10s\n", "NODE", "ROLE", "HOST", "PID",
                   "HEARTBEAT", "EXECUTIONS");
        for (size_t i = 0; i < n; i++) {
            char age[32];
            clock_fmt_duration(nodes[i].db_now - nodes[i].heartbeat_at, age, sizeof(age));
            printf("%-28s %-7s %-20s %8d %12s %10lld%s\n", nodes[i].id, nodes[i].role,
                   nodes[i].host, nodes[i].pid, nodes[i].stopped_at ? "stopped" : age,
                   (long long)nodes[i].executions, "");
        }
    }
    node_rows_free(nodes, n);
    store_free(st);
    return code;
}

int cmd_db(int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        FILE *f = argc < 1 ? stderr : stdout;
        fprintf(f, "usage: orch db migrate|status [options]\n\n"
                   "  migrate   bring the store's schema up to date\n"
                   "  status    schema version and the nodes sharing the store\n");
        return argc < 1 ? EXIT_USAGE : EXIT_OK;
    }
    if (!strcmp(argv[0], "migrate"))
        return db_migrate(argc - 1, argv + 1);
    if (!strcmp(argv[0], "status"))
        return db_status(argc - 1, argv + 1);
    if (argv[0][0] == '-')
        cli_error("'orch db' needs a command before its options: migrate or status");
    else
        cli_error("unknown command 'db %s' (use migrate or status)", argv[0]);
    return EXIT_USAGE;
}
