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
            "  version               print the version\n"
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
    cli_error("unknown command '%s' (see 'orch --help')", cmd);
    return EXIT_USAGE;
}
