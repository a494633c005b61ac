/*
 * main.c - the orch command: dispatch to subcommands (wiring only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "cli.h"

#include "base/banned.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: orch COMMAND [options]\n"
            "\n"
            "Workflows on the local data directory (--data-dir, $ORCH_DATA_DIR or ./.orch):\n"
            "  run FILE              run a workflow to completion\n"
            "  validate FILE         check a workflow definition\n"
            "  resume [ID]           continue executions interrupted by a crash\n"
            "  executions list       list executions (--status, --workflow, --limit)\n"
            "  executions show ID    show an execution, its tasks and attempts\n"
            "  logs ID [TASK]        print captured task output\n"
            "  schedules next EXPR   the next fire times of a cron expression (--tz, --from)\n"
            "  schedules validate EXPR  check a cron expression (cadence or fixed-time)\n"
            "  init [DIR]            write an example workflow and a config file to start from\n"
            "  version               print the version\n"
            "\n"
            "As a client of a server (--server URL or $ORCH_SERVER, --api-key KEY or\n"
            "$ORCH_API_KEY), executions list/show and logs ask the server, and:\n"
            "  workflows apply FILE  create a workflow or a new version of it (also offline)\n"
            "  workflows list        list workflows (show NAME, delete NAME)\n"
            "  trigger NAME          start an execution (--param K=V, --wait)\n"
            "  cancel ID             cancel an execution\n"
            "  retry ID              re-run the failed tasks of an execution\n"
            "  health                the server's health (the local store's without one)\n"
            "  logs ID --follow      stream task output until the execution ends\n"
            "\n"
            "Server:\n"
            "  server                run the HTTP API, the engine and workers (--listen ADDR)\n"
            "  worker                the engine and workers only, no HTTP API (PostgreSQL)\n"
            "  keys create|list|revoke  API keys for the server (offline on the store)\n"
            "  db migrate|status     the store's schema, and the nodes that share it\n"
            "\n"
            "With --database-url or $DATABASE_URL (postgres://...), every command works on\n"
            "that PostgreSQL database instead of the data directory, and any number of\n"
            "servers and workers share it.\n"
            "\n"
            "Run 'orch COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    const char *cmd;

    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        if (argc > 2 && strcmp(argv[2], "--help") && strcmp(argv[2], "-h")) {
            cli_error("unknown option '%s' for 'orch version'", argv[2]);
            return EXIT_USAGE;
        }
        if (argc > 2) {
            printf("usage: orch version\n\nPrint the version.\n");
            return EXIT_OK;
        }
        printf("orch %s\n", ORCH_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 2, argv + 2);
    if (!strcmp(cmd, "validate"))
        return cmd_validate(argc - 2, argv + 2);
    if (!strcmp(cmd, "resume"))
        return cmd_resume(argc - 2, argv + 2);
    if (!strcmp(cmd, "executions"))
        return cmd_executions(argc - 2, argv + 2);
    if (!strcmp(cmd, "logs"))
        return cmd_logs(argc - 2, argv + 2);
    if (!strcmp(cmd, "schedules"))
        return cmd_schedules(argc - 2, argv + 2);
    if (!strcmp(cmd, "workflows"))
        return cmd_workflows(argc - 2, argv + 2);
    if (!strcmp(cmd, "trigger"))
        return cmd_trigger(argc - 2, argv + 2);
    if (!strcmp(cmd, "cancel"))
        return cmd_cancel(argc - 2, argv + 2);
    if (!strcmp(cmd, "retry"))
        return cmd_retry(argc - 2, argv + 2);
    if (!strcmp(cmd, "health"))
        return cmd_health(argc - 2, argv + 2);
    if (!strcmp(cmd, "server"))
        return cmd_server(argc - 2, argv + 2);
    if (!strcmp(cmd, "worker"))
        return cmd_worker(argc - 2, argv + 2);
    if (!strcmp(cmd, "db"))
        return cmd_db(argc - 2, argv + 2);
    if (!strcmp(cmd, "keys"))
        return cmd_keys(argc - 2, argv + 2);
    if (!strcmp(cmd, "init"))
        return cmd_init(argc - 2, argv + 2);
    cli_error("unknown command '%s' (see 'orch --help')", cmd);
    return EXIT_USAGE;
}
