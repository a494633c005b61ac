#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/banned.h"

static int sys_pidfd_open(pid_t pid)
{
    return (int)syscall(SYS_pidfd_open, pid, 0);
}

int64_t child_proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    ssize_t n;
    int fd;
    char *p;
    long long start = 0;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name may contain spaces and parentheses: skip to the last ')'. */
    p = strrchr(buf, ')');
    if (!p)
        return 0;
    p++;
    /* Fields after the name start at field 3 (state); starttime is field 22. */
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p + 1, ' ');
    }
    if (!p || sscanf(p, " %lld", &start) != 1)
        return 0;
    return (int64_t)start;
}

/*
 * Find `name` in the PATH of the child's environment (not ours: a task may set
 * its own PATH), as execvp would. Writes the full path into out; returns 0, or
 * ENOENT / EACCES.
 */
static int resolve_program(const char *name, char *const *envp, char *out, size_t outlen)
{
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    int saw_eacces = 0;

    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, "PATH=", 5))
            path = *e + 5;
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t dlen = colon ? (size_t)(colon - path) : strlen(path);
        int n;
        if (dlen == 0)
            n = snprintf(out, outlen, "%s", name); /* empty entry: the current directory */
        else
            n = snprintf(out, outlen, "%.*s/%s", (int)dlen, path, name);
        if (n > 0 && (size_t)n < outlen) {
            if (access(out, X_OK) == 0) {
                struct stat sb;
                if (stat(out, &sb) == 0 && S_ISREG(sb.st_mode))
                    return 0;
            } else if (errno == EACCES) {
                saw_eacces = 1;
            }
        }
        if (!colon)
            break;
        path = colon + 1;
    }
    return saw_eacces ? EACCES : ENOENT;
}

int child_start(struct child *c, struct err *err)
{
    char prog[4096];
    int out[2] = {-1, -1}, errp[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dflt;
    int rc = 0, fa_init = 0, attr_init = 0;
    pid_t pid;

    c->pid = 0;
    c->pidfd = c->out_fd = c->err_fd = -1;
    c->exited = 0;
    c->exit_code = -1;
    c->signal = 0;
    c->proc_start = 0;

    if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
        rc = err_set(err, ERR_IO, "cannot create pipe: %s", strerror(errno));
        goto out;
    }
    if (posix_spawn_file_actions_init(&fa)) {
        rc = err_set(err, ERR_IO, "cannot prepare spawn");
        goto out;
    }
    fa_init = 1;
    if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) ||
        posix_spawn_file_actions_adddup2(&fa, out[1], 1) ||
        posix_spawn_file_actions_adddup2(&fa, errp[1], 2) ||
        posix_spawn_file_actions_addclosefrom_np(&fa, 3) ||
        (c->dir && posix_spawn_file_actions_addchdir_np(&fa, c->dir))) {
        rc = err_set(err, ERR_IO, "cannot prepare spawn");
        goto out;
    }
    if (posix_spawnattr_init(&attr)) {
        rc = err_set(err, ERR_IO, "cannot prepare spawn");
        goto out;
    }
    attr_init = 1;
    /* Own process group (so a timeout can signal the whole tree), an empty
     * signal mask, and default dispositions for the signals we handle. */
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGHUP);
    sigaddset(&dflt, SIGQUIT);
    sigaddset(&dflt, SIGCHLD);
    if (posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF) ||
        posix_spawnattr_setpgroup(&attr, 0) || posix_spawnattr_setsigmask(&attr, &none) ||
        posix_spawnattr_setsigdefault(&attr, &dflt)) {
        rc = err_set(err, ERR_IO, "cannot prepare spawn");
        goto out;
    }
    if (strchr(c->argv[0], '/')) {
        if ((size_t)snprintf(prog, sizeof(prog), "%s", c->argv[0]) >= sizeof(prog))
            rc = ENAMETOOLONG;
        else
            rc = 0;
    } else if (!c->argv[0][0]) {
        rc = ENOENT;
    } else {
        rc = resolve_program(c->argv[0], c->envp, prog, sizeof(prog));
    }
    if (!rc)
        rc = posix_spawn(&pid, prog, &fa, &attr, c->argv, c->envp);
    if (rc) {
        int e = rc;
        if (e == ENOENT && c->dir && access(c->dir, X_OK) != 0)
            rc = err_set(err, ERR_NOT_FOUND, "cannot run '%s': working directory '%s': %s",
                         c->argv[0], c->dir, strerror(errno));
        else
            rc = err_set(err, e == ENOENT ? ERR_NOT_FOUND : ERR_IO, "cannot run '%s': %s",
                         c->argv[0], strerror(e));
        goto out;
    }
    c->pid = pid;
    c->pidfd = sys_pidfd_open(pid);
    if (c->pidfd < 0) {
        /* Cannot watch it: do not leave it running unwatched. */
        int e = errno;
        kill(-pid, SIGKILL);
        waitpid(pid, NULL, 0);
        rc = err_set(err, ERR_IO, "cannot watch process %d: %s", (int)pid, strerror(e));
        goto out;
    }
    fcntl(c->pidfd, F_SETFD, FD_CLOEXEC);
    c->proc_start = child_proc_start_time(pid);
    close(out[1]);
    close(errp[1]);
    out[1] = errp[1] = -1;
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(errp[0], F_SETFL, O_NONBLOCK);
    c->out_fd = out[0];
    c->err_fd = errp[0];
    out[0] = errp[0] = -1;
    rc = 0;
out:
    if (attr_init)
        posix_spawnattr_destroy(&attr);
    if (fa_init)
        posix_spawn_file_actions_destroy(&fa);
    for (int i = 0; i < 2; i++) {
        if (out[i] >= 0)
            close(out[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    return rc;
}

int child_reap(struct child *c)
{
    int status;
    pid_t r;

    if (c->exited)
        return 1;
    do {
        r = waitpid(c->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return ERR_IO;
    if (r == 0)
        return 0;
    c->exited = 1;
    if (WIFEXITED(status)) {
        c->exit_code = WEXITSTATUS(status);
        c->signal = 0;
    } else if (WIFSIGNALED(status)) {
        c->exit_code = -1;
        c->signal = WTERMSIG(status);
    }
    return 1;
}

void child_signal_group(const struct child *c, int sig)
{
    if (c->pid > 0)
        kill(-c->pid, sig);
}

void child_release(struct child *c)
{
    if (c->pidfd >= 0)
        close(c->pidfd);
    if (c->out_fd >= 0)
        close(c->out_fd);
    if (c->err_fd >= 0)
        close(c->err_fd);
    c->pidfd = c->out_fd = c->err_fd = -1;
}

int child_kill_orphan_group(pid_t pgid, int64_t proc_start)
{
    int64_t now_start;

    if (pgid <= 1)
        return 0;
    now_start = child_proc_start_time(pgid);
    if (now_start && proc_start && now_start == proc_start) {
        kill(-pgid, SIGKILL);
        return 1;
    }
    /* The leader is gone (or was reused) but members of its group may remain:
     * signal the group only if no process with that pid exists any more, so
     * a reused pid (a different process leading another group) is untouched. */
    if (!now_start && kill(-pgid, 0) == 0) {
        kill(-pgid, SIGKILL);
        return 1;
    }
    return 0;
}

/* Does the NUL-separated environment block `env` of `len` bytes hold `entry`? */
static int env_has(const char *env, size_t len, const char *entry)
{
    size_t elen = strlen(entry);
    for (size_t off = 0; off < len;) {
        size_t l = strnlen(env + off, len - off);
        if (l == elen && !memcmp(env + off, entry, elen))
            return 1;
        off += l + 1;
    }
    return 0;
}

int child_kill_by_env(const char *exec_id, const char *task, int attempt)
{
    char want_ex[128], want_task[512], want_att[64];
    DIR *d = opendir("/proc");
    struct dirent *de;
    int killed = 0;
    uid_t me = getuid();

    if (!d)
        return 0;
    snprintf(want_ex, sizeof(want_ex), "ORCH_EXECUTION_ID=%s", exec_id);
    snprintf(want_task, sizeof(want_task), "ORCH_TASK=%s", task);
    snprintf(want_att, sizeof(want_att), "ORCH_ATTEMPT=%d", attempt);
    while ((de = readdir(d))) {
        char path[64], *buf;
        struct stat sb;
        pid_t pid;
        ssize_t n;
        size_t len = 0, cap = 65536;
        int fd;

        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        pid = (pid_t)strtol(de->d_name, NULL, 10);
        if (pid == getpid())
            continue;
        snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (fstat(fd, &sb) != 0 || sb.st_uid != me) {
            close(fd);
            continue;
        }
        buf = malloc(cap);
        if (!buf) {
            close(fd);
            continue;
        }
        while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
            len += (size_t)n;
        close(fd);
        if (env_has(buf, len, want_ex) && env_has(buf, len, want_task) &&
            env_has(buf, len, want_att)) {
            pid_t pgid = getpgid(pid);
            if (pgid > 1 && pgid != getpgrp()) {
                kill(-pgid, SIGKILL);
                killed++;
            }
        }
        free(buf);
    }
    closedir(d);
    return killed;
}
