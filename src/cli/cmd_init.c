/*
 * cmd_init.c - `orch init [DIR]`: a commented example workflow and a config
 * file to start from. Never overwrites a file that exists.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "cli.h"

#include "base/banned.h"

static const struct cli_opt init_opts[] = {
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd init_cmd = {
    "init",
    "[DIR]",
    "Write a commented example workflow (DIR/workflows/hello.yaml) and a config file\n"
    "(DIR/orch.conf, every setting commented out) to start from; DIR defaults to the\n"
    "current directory. Files that exist are left alone.\n"
    "Exit status: 0 written (or already there), 2 bad command line, 70 cannot write.",
    init_opts,
};

static const char hello_yaml[] =
    "# hello.yaml - an example workflow. Check it with `orch validate hello.yaml`,\n"
    "# run it with `orch run hello.yaml`, or serve a folder of workflows with\n"
    "# `orch server --register workflows --watch` (edits are picked up as you save).\n"
    "#\n"
    "# The name identifies the workflow: lower case letters, digits, '.', '_', '-'.\n"
    "name: hello\n"
    "description: Say hello, count to three, then report\n"
    "\n"
    "# Params are given with `orch run hello.yaml --param who=world`, with\n"
    "# --params-file FILE (JSON or YAML), or in the body of a trigger.\n"
    "params:\n"
    "  who:\n"
    "    type: string\n"
    "    default: world\n"
    "    description: who to greet\n"
    "\n"
    "tasks:\n"
    "  # A string command runs with /bin/sh -c; {{ params.who }} is filled in\n"
    "  # as one shell-quoted word when the task starts (so leave it unquoted).\n"
    "  - name: greet\n"
    "    command: echo hello, {{ params.who }}\n"
    "\n"
    "  # A literal block (|) keeps the lines as written: a multi-line script.\n"
    "  - name: count\n"
    "    dependsOn: [greet]\n"
    "    retries: 2          # attempts after the first one fails\n"
    "    timeout: 1m         # per attempt\n"
    "    command: |\n"
    "      for i in 1 2 3; do\n"
    "        echo \"$i\"\n"
    "      done\n"
    "\n"
    "  # A list command runs without a shell: each item is one argument.\n"
    "  - name: report\n"
    "    dependsOn: [count]\n"
    "    command: [echo, done]\n"
    "\n"
    "# Run it every day at 06:00 in Paris (remove the comments to enable):\n"
    "# schedules:\n"
    "#   - name: daily\n"
    "#     cron: \"0 6 * * *\"\n"
    "#     timezone: Europe/Paris\n";

static const char orch_conf[] =
    "# orch.conf - settings of `orch server` and `orch worker`, one `KEY = value`\n"
    "# a line, with the names of the environment variables (an environment\n"
    "# variable that is set wins). Lines starting with # are comments; every\n"
    "# setting below is commented out and shows its default.\n"
    "\n"
    "# Where the API listens.\n"
    "# ORCH_LISTEN = 127.0.0.1:8080\n"
    "\n"
    "# The local data directory (SQLite store, logs), used without DATABASE_URL.\n"
    "# ORCH_DATA_DIR = ./.orch\n"
    "\n"
    "# A PostgreSQL database shared by several servers and workers.\n"
    "# DATABASE_URL = postgres://orch@localhost/orch\n"
    "\n"
    "# Task processes running at once (default: the CPU count).\n"
    "# ORCH_WORKERS = 4\n"
    "\n"
    "# error, warn, info or debug.\n"
    "# ORCH_LOG_LEVEL = info\n"
    "\n"
    "# HTTP: idle connection timeout, largest request body, threads.\n"
    "# ORCH_HTTP_TIMEOUT = 30s\n"
    "# ORCH_MAX_BODY = 4259840\n"
    "# ORCH_HTTP_THREADS = 4\n"
    "\n"
    "# Failed authentications per client and window before 429 (0 = no limit).\n"
    "# ORCH_AUTH_FAIL_LIMIT = 20\n"
    "# ORCH_AUTH_FAIL_WINDOW = 1m\n"
    "\n"
    "# Behind a reverse proxy: its addresses or CIDRs (X-Forwarded-For then names the client).\n"
    "# ORCH_TRUSTED_PROXIES = 127.0.0.1\n"
    "\n"
    "# How long running tasks get to finish on shutdown.\n"
    "# ORCH_SHUTDOWN_GRACE = 30s\n";

/* Write `text` to `path` unless it exists. Returns 0, or -1 (printed). */
static int write_new(const char *path, const char *text)
{
    size_t len = strlen(text), off = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

    if (fd < 0 && errno == EEXIST) {
        printf("%s exists: left as it is\n", path);
        return 0;
    }
    if (fd < 0) {
        cli_error("cannot create '%s': %s", path, strerror(errno));
        return -1;
    }
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            cli_error("cannot write '%s': %s", path, strerror(errno));
            close(fd);
            unlink(path);
            return -1;
        }
        off += (size_t)n;
    }
    if (close(fd) != 0) {
        cli_error("cannot write '%s': %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    printf("wrote %s\n", path);
    return 0;
}

static int make_dir(const char *path)
{
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    cli_error("cannot create directory '%s': %s", path, strerror(errno));
    return -1;
}

int cmd_init(int argc, char **argv)
{
    struct cli_args a;
    const char *dir;
    char *wfdir = NULL, *hello = NULL, *conf = NULL;
    int rc;

    rc = cli_parse(&init_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos > 1) {
        cli_error("'orch init' takes at most one directory");
        return EXIT_USAGE;
    }
    dir = a.npos ? a.pos[0] : ".";
    wfdir = xasprintf("%s/workflows", dir);
    hello = xasprintf("%s/hello.yaml", wfdir);
    conf = xasprintf("%s/orch.conf", dir);
    rc = EXIT_INTERNAL;
    if (make_dir(dir) == 0 && make_dir(wfdir) == 0 && write_new(hello, hello_yaml) == 0 &&
        write_new(conf, orch_conf) == 0)
        rc = EXIT_OK;
    if (rc == EXIT_OK)
        printf("next: orch run %s\n", hello);
    free(wfdir);
    free(hello);
    free(conf);
    return rc;
}
