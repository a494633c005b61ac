/*
 * main.c - the orch command: dispatch to subcommands (wiring only).
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/prctl.h>

#include "base/log.h"
#include "base/xalloc.h"
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
            "  logs ID [TASK]        print captured task output (--follow: until it ends)\n"
            "  cancel ID             cancel an execution (one another orch process runs: asks it)\n"
            "  retry ID              re-run the failed tasks of an execution here\n"
            "  schedules next EXPR   the next fire times of a cron expression (--tz, --from)\n"
            "  schedules validate EXPR  check a cron expression (cadence or fixed-time)\n"
            "  init [DIR]            write an example workflow and a config file to start from\n"
            "  (an execution ID may be a unique prefix, or 'latest' [--workflow NAME])\n"
            "  version               print the version\n"
            "\n"
            "As a client of a server (--server URL or $ORCH_SERVER, --api-key KEY or\n"
            "$ORCH_API_KEY), executions list/show and logs ask the server, and:\n"
            "  workflows apply FILE  create a workflow or a new version of it (also offline)\n"
            "  workflows list        list workflows (show NAME, delete NAME)\n"
            "  trigger NAME          start an execution (--param K=V, --wait)\n"
            "  cancel ID, retry ID   cancel an execution, re-run its failed tasks\n"
            "  schedules list|show|pause|resume|backfill|delete  the server's schedules\n"
            "  health                the server's health (the local store's without one)\n"
            "  logs ID --follow      stream task output until the execution ends\n"
            "\n"
            "Server:\n"
            "  server                run the HTTP API, the engine and workers (--listen ADDR)\n"
            "  worker                the engine and workers only, no HTTP API (PostgreSQL)\n"
            "  keys create|list|revoke  API keys for the server (offline on the store)\n"
            "  db migrate|status     the store's schema, and the nodes that share it\n"
            "  config show           every setting, its value and where it comes from\n"
            "  doctor                check everything that can go wrong, one line each, with\n"
            "                        the fix (--server URL: the server's view; --bundle FILE)\n"
            "\n"
            "With --database-url or $DATABASE_URL (postgres://...), every command works on\n"
            "that PostgreSQL database instead of the data directory, and any number of\n"
            "servers and workers share it.\n"
            "\n"
            "Settings come from flags, else the environment, else the config file (--config\n"
            "FILE, $ORCH_CONFIG or /etc/orch/orch.conf), else the defaults.\n"
            "\n"
            "Run 'orch COMMAND --help' for the options of a command.\n");
}

/*
 * Raise the soft limit of open files to the hard one: a server holds a
 * descriptor per connection, log stream and running task, and the usual soft
 * limit (1024) is far below what the hard limit allows.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/*
 * glibc returns the top of a heap to the kernel as soon as 128 KiB of it is
 * free, and maps it again at the next burst: under a steady load of requests
 * that is a brk and a page fault per turn, and each shrink flushes the TLB of
 * every core the process runs on. Keep up to 8 MiB free per heap instead;
 * blocks of 4 MiB and more still get their own mapping.
 */
static void tune_malloc(void)
{
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
    mallopt(M_TOP_PAD, 1 << 20);
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

extern char **environ;

/*
 * orch's environment may hold secrets (DATABASE_URL with its password, API
 * keys), and /proc/<orch>/environ shows the block the process started with,
 * whatever getenv sees later. So: keep a private copy of the environment
 * (getenv, the tasks' environment and HTTP task credentials read it), blank
 * the original block, and make the process non-dumpable, which makes its
 * /proc files root's: a task of the same user can read neither environ nor
 * mem, nor ptrace orch. A task running as root still can read memory: run
 * tasks as another user (--task-user) for that.
 */
/* The copy, kept for the process's life: setenv (a config file's settings)
 * replaces `environ` with an array of its own and leaves this one behind. */
static char **env_copy;

static void hide_environment(void)
{
    size_t n = 0;
    char **copy;

    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    while (environ && environ[n])
        n++;
    copy = xcalloc(n + 1, sizeof(*copy));
    for (size_t i = 0; i < n; i++)
        copy[i] = xstrdup(environ[i]);
    for (size_t i = 0; i < n; i++)
        memset(environ[i], 0, strlen(environ[i]));
    environ = env_copy = copy;
}

int main(int argc, char **argv)
{
    const char *cmd;

    tune_malloc();
    hide_environment();
    raise_fd_limit();

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
    if (!strcmp(cmd, "config"))
        return cmd_config(argc - 2, argv + 2);
    if (!strcmp(cmd, "init"))
        return cmd_init(argc - 2, argv + 2);
    if (!strcmp(cmd, "doctor"))
        return cmd_doctor(argc - 2, argv + 2);
    cli_error("unknown command '%s' (see 'orch --help')", cmd);
    return EXIT_USAGE;
}
