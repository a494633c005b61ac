#include "child.h"

#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <linux/close_range.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"

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

/*
 * Where a program was found, by (PATH, name), for a second: a fan-out of a
 * thousand tasks running the same command looks it up once, not once per
 * task (each lookup is an access() per directory of PATH before the one
 * that holds it). A program installed meanwhile in an earlier directory of
 * PATH is seen within that second; one removed is looked up again at once
 * (child_start retries when the exec of a cached path fails).
 */
#define PATH_CACHE_SIZE 32
#define PATH_CACHE_MS 1000

struct path_entry {
    char *path; /* the PATH it was looked up in ("" if the environment has none) */
    char *name;
    char *prog;
    int64_t at_ms;
};

static pthread_mutex_t path_mu = PTHREAD_MUTEX_INITIALIZER;
static struct path_entry path_cache[PATH_CACHE_SIZE];
static unsigned path_next;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void path_entry_clear(struct path_entry *e)
{
    free(e->path);
    free(e->name);
    free(e->prog);
    memset(e, 0, sizeof(*e));
}

/* resolve_program through the cache; *cached: 1 if the answer came from it. */
static int resolve_program_cached(const char *name, char *const *envp, char *out, size_t outlen,
                                  int *cached)
{
    const char *path = "";
    int64_t now = mono_ms();
    int rc;

    *cached = 0;
    for (char *const *e = envp; e && *e; e++)
        if (!strncmp(*e, "PATH=", 5))
            path = *e + 5;
    pthread_mutex_lock(&path_mu);
    for (int i = 0; i < PATH_CACHE_SIZE; i++) {
        struct path_entry *e = &path_cache[i];
        if (!e->name || now - e->at_ms > PATH_CACHE_MS || strcmp(e->name, name) ||
            strcmp(e->path, path) || strlen(e->prog) >= outlen)
            continue;
        memcpy(out, e->prog, strlen(e->prog) + 1);
        *cached = 1;
        pthread_mutex_unlock(&path_mu);
        return 0;
    }
    pthread_mutex_unlock(&path_mu);
    rc = resolve_program(name, envp, out, outlen);
    if (rc == 0) {
        struct path_entry *e;
        pthread_mutex_lock(&path_mu);
        e = &path_cache[path_next++ % PATH_CACHE_SIZE];
        path_entry_clear(e);
        e->path = xstrdup(path);
        e->name = xstrdup(name);
        e->prog = xstrdup(out);
        e->at_ms = now;
        pthread_mutex_unlock(&path_mu);
    }
    return rc;
}

/* Forget where `name` was found (its exec failed). */
static void path_cache_forget(const char *name)
{
    pthread_mutex_lock(&path_mu);
    for (int i = 0; i < PATH_CACHE_SIZE; i++)
        if (path_cache[i].name && !strcmp(path_cache[i].name, name))
            path_entry_clear(&path_cache[i]);
    pthread_mutex_unlock(&path_mu);
}

/* ------------------------------------------------------------------ per-task cgroups */

/*
 * Where cgroup v2 is writable, each task runs in a cgroup of its own,
 * <our cgroup>/orch-<pid>/<n>: everything it starts stays in it
 * (setsid and double forks included), and writing 1 to its cgroup.kill ends
 * all of it. Elsewhere (no cgroup2 mount, read-only, no cgroup.kill: kernels
 * before 5.14), or with ORCH_TASK_CGROUPS=off, the subreaper fallback
 * (child_sweep_orphans) is all there is.
 */
static pthread_once_t cg_once = PTHREAD_ONCE_INIT;
static char cg_base[1024]; /* "" when tasks get no cgroup */

/* Remove the task cgroups <dir>/<n> (those still in use stay). The guard
 * calls it in a process forked from a threaded orch, where a lock another
 * thread held at the fork stays held: so no opendir() (it allocates), only
 * system calls on a stack buffer. */
static void cg_remove_tasks(const char *dir)
{
    struct dent64 {
        unsigned long long ino;
        long long off;
        unsigned short reclen;
        unsigned char type;
        char name[];
    };
    char buf[4096] __attribute__((aligned(8)));
    char sub[1700];
    long n;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof(buf))) > 0)
        for (long at = 0; at < n;) {
            const struct dent64 *de = (const struct dent64 *)(buf + at);
            at += de->reclen;
            if (de->name[0] >= '1' && de->name[0] <= '9') {
                snprintf(sub, sizeof(sub), "%s/%s", dir, de->name);
                rmdir(sub); /* fails, and stays, if something still runs in it */
            }
        }
    close(fd);
}

/* Remove the empty cgroups of orch processes that are gone (their guard
 * died with them): siblings orch-<pid> of cg_base. */
static void cg_remove_stale(void)
{
    char parent[1024], path[1400];
    char *slash;
    DIR *d;
    struct dirent *de;

    snprintf(parent, sizeof(parent), "%s", cg_base);
    slash = strrchr(parent, '/');
    if (!slash)
        return;
    *slash = '\0';
    if (!(d = opendir(parent)))
        return;
    while ((de = readdir(d))) {
        char *end;
        long pid;
        if (strncmp(de->d_name, "orch-", 5))
            continue;
        pid = strtol(de->d_name + 5, &end, 10);
        if (*end || pid <= 0 || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 ||
            errno != ESRCH)
            continue;
        snprintf(path, sizeof(path), "%s/%s", parent, de->d_name);
        cg_remove_tasks(path);
        rmdir(path);
    }
    closedir(d);
}

static void cg_init(void)
{
    const char *mnt = NULL, *off = getenv("ORCH_TASK_CGROUPS");
    char line[1024], probe[1100];
    FILE *f;

    cg_base[0] = '\0';
    if (off && !strcmp(off, "off"))
        return;
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0)
        mnt = "/sys/fs/cgroup"; /* cgroup v2 only */
    else if (access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0)
        mnt = "/sys/fs/cgroup/unified"; /* hybrid */
    if (!mnt || !(f = fopen("/proc/self/cgroup", "re")))
        return;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "0::", 3))
            continue;
        line[strcspn(line, "\n")] = '\0';
        if ((size_t)snprintf(cg_base, sizeof(cg_base), "%s%s/orch-%d", mnt,
                             strcmp(line + 3, "/") ? line + 3 : "", (int)getpid()) >=
            sizeof(cg_base))
            cg_base[0] = '\0';
        break;
    }
    fclose(f);
    if (!cg_base[0])
        return;
    cg_remove_stale();
    snprintf(probe, sizeof(probe), "%s/cgroup.kill", cg_base);
    if ((mkdir(cg_base, 0755) != 0 && errno != EEXIST) || access(probe, W_OK) != 0) {
        rmdir(cg_base);
        cg_base[0] = '\0';
    }
}

/* Write `text` to <cg_base>/<id>/<file>; 0 or -1. */
static int cg_write(int id, const char *file, const char *text)
{
    char path[1200];
    int fd, ok;

    snprintf(path, sizeof(path), "%s/%d/%s", cg_base, id, file);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return ok ? 0 : -1;
}

/*
 * Empty cgroups of finished tasks, kept for the next tasks: creating and
 * removing a cgroup (mkdir, rmdir) costs the kernel far more than the
 * read of cgroup.events that shows one empty. A cgroup comes here only once
 * empty (nothing can join an empty cgroup but through its cgroup.procs).
 * The guard removes those left when orch ends.
 */
#define CG_POOL_SIZE 64
static pthread_mutex_t cg_mu = PTHREAD_MUTEX_INITIALIZER;
static int cg_pool[CG_POOL_SIZE];
static int cg_npool;
/* Cgroups seen empty after their task's end (by id, modulo the size: a
 * collision only costs a look), so the release need not read again. */
#define CG_SEEN_SIZE 1024
static int cg_seen_empty[CG_SEEN_SIZE];

static void cg_mark_empty(int id)
{
    pthread_mutex_lock(&cg_mu);
    cg_seen_empty[id % CG_SEEN_SIZE] = id;
    pthread_mutex_unlock(&cg_mu);
}

/* Was `id` seen empty since its task ended? Forgets it either way. */
static int cg_take_empty(int id)
{
    int seen;
    pthread_mutex_lock(&cg_mu);
    seen = cg_seen_empty[id % CG_SEEN_SIZE] == id;
    if (seen)
        cg_seen_empty[id % CG_SEEN_SIZE] = 0;
    pthread_mutex_unlock(&cg_mu);
    return seen;
}

/*
 * A cgroup for a task about to start: its id (> 0), with the path of its
 * cgroup.procs in `procs` (the child writes itself there), or 0 for none.
 */
static int cg_prepare(char *procs, size_t len)
{
    static int seq;
    char path[1200];
    int id = 0;

    pthread_once(&cg_once, cg_init);
    if (!cg_base[0])
        return 0;
    pthread_mutex_lock(&cg_mu);
    if (cg_npool > 0)
        id = cg_pool[--cg_npool];
    pthread_mutex_unlock(&cg_mu);
    if (!id) {
        id = __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED);
        snprintf(path, sizeof(path), "%s/%d", cg_base, id);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return 0;
    }
    if ((size_t)snprintf(procs, len, "%s/%d/cgroup.procs", cg_base, id) >= len) {
        snprintf(path, sizeof(path), "%s/%d", cg_base, id);
        rmdir(path);
        return 0;
    }
    return id;
}

/* Is the cgroup `id` empty? 1 yes, 0 no, -1 unknown. */
static int cg_is_empty(int id)
{
    char path[1200], buf[256];
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "%s/%d/cgroup.events", cg_base, id);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return strstr(buf, "populated 0") ? 1 : 0;
}

/* Wait (100 ms at most) until the killed processes of the task's cgroup
 * have exited, so that those reparented to us can be reaped at once. */
static int cg_wait_empty(int id)
{
    int empty;
    for (int i = 0; (empty = cg_is_empty(id)) == 0 && i < 200; i++)
        usleep(500);
    return empty == 1;
}

/* Remove the task's cgroup once its processes are gone (a killed one empties
 * within moments); what cannot be removed now goes with orch-<pid>. */
static void cg_remove(int id)
{
    char path[1200];

    snprintf(path, sizeof(path), "%s/%d", cg_base, id);
    for (int i = 0; i < 200 && rmdir(path) != 0 && errno == EBUSY; i++)
        usleep(500);
}

/* The task of cgroup `id` is over: an empty cgroup goes to the pool, any
 * other is killed and removed. `empty`: known empty (no need to look). */
static void cg_release(int id, int empty)
{
    if (cg_take_empty(id))
        empty = 1;
    if (!empty)
        empty = cg_is_empty(id) == 1;
    if (empty) {
        int pooled = 0;
        pthread_mutex_lock(&cg_mu);
        if (cg_npool < CG_POOL_SIZE) {
            cg_pool[cg_npool++] = id;
            pooled = 1;
        }
        pthread_mutex_unlock(&cg_mu);
        if (pooled)
            return;
    } else {
        cg_write(id, "cgroup.kill", "1");
    }
    cg_remove(id);
}

const char *child_cgroup_base(void)
{
    pthread_once(&cg_once, cg_init);
    return cg_base;
}

/* Why the child could not exec: written by the child into its spawn_args
 * (orch's memory, which it shares until exec or exit), read by orch once the
 * clone returns (CLONE_VFORK: after the child has exec'd or exited). */
struct spawn_failure {
    int step; /* SPAWN_*, 0 if it exec'd */
    int err;  /* errno */
};

enum { SPAWN_SETUP = 1, SPAWN_DIR, SPAWN_USER, SPAWN_PARENT, SPAWN_EXEC };

/* What the child needs, all prepared by the parent before the clone. */
struct spawn_args {
    const struct child *c;
    const char *prog;
    pid_t parent;
    int out_w, err_w;
    struct spawn_failure fail; /* written by the child if it cannot exec */
    int keep_below;    /* > 0: the child shares orch's descriptor table and takes its own copy
                          of the descriptors below this one only (all it needs is there) */
    int guard_fd;      /* -1: no guard */
    int cg_id;         /* 0: no cgroup */
    const char *procs; /* its cgroup.procs */
};

/* The kernel's struct sigaction, large enough for every architecture's; the
 * handler comes first in all of them, and all zeros is SIG_DFL. */
struct kernel_sigaction {
    void *handler;
    unsigned long rest[4];
};

/* Raw system calls only in the child (it shares orch's memory until exec;
 * no sanitizer bookkeeping there either). */
#define CHILD_CODE __attribute__((no_sanitize_address))

CHILD_CODE static long sys(long nr, long a, long b, long c, long d)
{
    return syscall(nr, a, b, c, d);
}

CHILD_CODE static void spawn_fail(struct spawn_args *a, int step, int e)
{
    __atomic_store_n(&a->fail.err, e, __ATOMIC_RELAXED);
    __atomic_store_n(&a->fail.step, step, __ATOMIC_RELEASE);
    sys(SYS_exit_group, 127, 0, 0, 0);
    __builtin_unreachable();
}

/* fd onto `target`, without close-on-exec. */
CHILD_CODE static int move_fd(int fd, int target)
{
    if (fd == target)
        return (int)sys(SYS_fcntl, fd, F_SETFD, 0, 0);
    return sys(SYS_dup3, fd, target, 0, 0) < 0 ? -1 : 0;
}

/*
 * The child between vfork and exec. It runs on orch's memory while orch
 * waits: raw system calls only, nothing written but its own stack and, if it
 * cannot exec, a->fail. Own process group and cgroup; registered with the
 * guard; stdin /dev/null,
 * stdout/stderr the pipes; default signal dispositions and an empty mask; the
 * task user's ids if configured; then PR_SET_PDEATHSIG, so the task dies with
 * orch, and a check that orch has not died already (then our parent is
 * someone else).
 */
__attribute__((noinline, noreturn)) CHILD_CODE static void
spawn_child(struct spawn_args *a)
{
    static const struct kernel_sigaction dfl; /* all zeros: SIG_DFL */
    const struct child *c = a->c;
    struct kernel_sigaction old;
    unsigned long none = 0;
    long fd;

    /* Its own descriptor table first, a copy of the few low descriptors that
     * hold all it needs: the cost does not grow with orch's open files (no
     * copy of the whole table at the clone, nothing to close at exec). */
    if (a->keep_below > 0 &&
        sys(SYS_close_range, a->keep_below, ~0U, CLOSE_RANGE_UNSHARE, 0) != 0)
        spawn_fail(a, SPAWN_SETUP, errno);
    /* Signals: a handler of orch's must never run here. */
    for (int sig = 1; sig < 65; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP)
            continue;
        if (sys(SYS_rt_sigaction, sig, 0, (long)&old, 8) != 0 || old.handler == SIG_DFL)
            continue;
        if (old.handler == SIG_IGN && sig != SIGPIPE && sig != SIGINT && sig != SIGTERM &&
            sig != SIGHUP && sig != SIGQUIT && sig != SIGCHLD)
            continue;
        sys(SYS_rt_sigaction, sig, (long)&dfl, 0, 8);
    }
    if (sys(SYS_setpgid, 0, 0, 0, 0) != 0)
        spawn_fail(a, SPAWN_SETUP, errno);
    if (a->cg_id) {
        /* Into its cgroup before it runs anything ("0": the writer). */
        fd = sys(SYS_openat, AT_FDCWD, (long)a->procs, O_WRONLY | O_CLOEXEC, 0);
        if (fd < 0 || sys(SYS_write, fd, (long)"0", 1, 0) != 1)
            spawn_fail(a, SPAWN_SETUP, errno);
        sys(SYS_close, fd, 0, 0, 0);
    }
    if (a->guard_fd >= 0) {
        /* Its group (and cgroup) is the guard's to kill should orch die. */
        int msg[3];
        msg[0] = 1;
        msg[1] = (int)sys(SYS_getpid, 0, 0, 0, 0);
        msg[2] = a->cg_id;
        syscall(SYS_sendto, a->guard_fd, msg, sizeof(msg), MSG_NOSIGNAL, NULL, 0);
    }
    fd = sys(SYS_openat, AT_FDCWD, (long)"/dev/null", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0 || move_fd((int)fd, 0) || move_fd(a->out_w, 1) || move_fd(a->err_w, 2))
        spawn_fail(a, SPAWN_SETUP, errno);
    if (c->dir && sys(SYS_chdir, (long)c->dir, 0, 0, 0) != 0)
        spawn_fail(a, SPAWN_DIR, errno);
    if (c->drop_ids) {
        /* The death signal is cleared by an id change, so it is set after. */
        gid_t g = c->gid;
        if (sys(SYS_setgroups, 1, (long)&g, 0, 0) != 0 || sys(SYS_setresgid, g, g, g, 0) != 0 ||
            sys(SYS_setresuid, c->uid, c->uid, c->uid, 0) != 0)
            spawn_fail(a, SPAWN_USER, errno);
    }
    if (sys(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0) != 0)
        spawn_fail(a, SPAWN_SETUP, errno);
    if (sys(SYS_getppid, 0, 0, 0, 0) != a->parent)
        spawn_fail(a, SPAWN_PARENT, ESRCH); /* orch died before the prctl */
    /* Every descriptor but 0-2 closes at exec. */
    if (sys(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC, 0) != 0)
        spawn_fail(a, SPAWN_SETUP, errno);
    sys(SYS_rt_sigprocmask, SIG_SETMASK, (long)&none, 0, 8);
    sys(SYS_execve, (long)a->prog, (long)c->argv, (long)c->envp, 0);
    spawn_fail(a, SPAWN_EXEC, errno);
    __builtin_unreachable();
}

static int guard_fd_for_child(void);

CHILD_CODE static int spawn_entry(void *arg)
{
    spawn_child(arg);
}

/*
 * Descriptor slots for a spawn: three low descriptors, reserved once (open on
 * /dev/null) while orch has few files open. For each spawn the write ends of
 * the child's pipes and the guard's socket are put in them (dup3), so that
 * the child, which starts on orch's descriptor table, can take a copy of
 * only the descriptors below the highest slot (see spawn_child). After the
 * spawn they hold /dev/null again. Without slots (EMFILE at reservation) a
 * child copies the whole table, as fork does.
 */
enum { SLOT_OUT, SLOT_ERR, SLOT_GUARD, NSLOTS };
static pthread_mutex_t slot_mu = PTHREAD_MUTEX_INITIALIZER;
static int slot_fd[NSLOTS] = {-1, -1, -1};
static int slot_null = -1;
static int slot_ok;

void child_reserve_fds(void)
{
    pthread_mutex_lock(&slot_mu);
    if (!slot_ok) {
        int ok = (slot_null = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;
        for (int i = 0; ok && i < NSLOTS; i++)
            ok = (slot_fd[i] = fcntl(slot_null, F_DUPFD_CLOEXEC, 0)) >= 0;
        if (ok) {
            slot_ok = 1;
        } else {
            for (int i = 0; i < NSLOTS; i++) {
                if (slot_fd[i] >= 0)
                    close(slot_fd[i]);
                slot_fd[i] = -1;
            }
            if (slot_null >= 0)
                close(slot_null);
            slot_null = -1;
        }
    }
    pthread_mutex_unlock(&slot_mu);
}

/* Put `fd` in slot `i` (close-on-exec); *arg: the descriptor the child uses. */
static int slot_put(int i, int fd, int *arg)
{
    if (fd < 0 || dup3(fd, slot_fd[i], O_CLOEXEC) < 0)
        return -1;
    *arg = slot_fd[i];
    return 0;
}

/* The slots hold /dev/null again (the child's copies are its own). */
static void slots_clear(void)
{
    for (int i = 0; i < NSLOTS; i++)
        dup3(slot_null, slot_fd[i], O_CLOEXEC);
}

int child_start(struct child *c, struct err *err)
{
    char prog[4096], procs[1300];
    int out[2] = {-1, -1}, errp[2] = {-1, -1}, pidfd = -1;
    struct spawn_args sa;
    sigset_t all, old;
    /* The child's stack: this frame's, which nothing uses while it runs
     * (CLONE_VFORK: this thread waits until it has exec'd or exited). */
    char stack[16384] __attribute__((aligned(16)));
    int rc = 0, saved, slots = 0, cached = 0, step, flags;
    pid_t pid;

    c->pid = 0;
    c->pidfd = c->out_fd = c->err_fd = -1;
    c->exited = 0;
    c->exit_code = -1;
    c->signal = 0;
    c->proc_start = 0;
    c->cgroup = 0;

    if (pipe2(out, O_CLOEXEC) || pipe2(errp, O_CLOEXEC)) {
        rc = err_set(err, ERR_IO, "cannot create pipe: %s", strerror(errno));
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
        rc = resolve_program_cached(c->argv[0], c->envp, prog, sizeof(prog), &cached);
    }
    if (rc) {
        int e = rc;
        rc = err_set(err, e == ENOENT ? ERR_NOT_FOUND : ERR_IO, "cannot run '%s': %s",
                     c->argv[0], strerror(e));
        goto out;
    }
    memset(&sa, 0, sizeof(sa));
    sa.c = c;
    sa.prog = prog;
    sa.parent = getpid();
    sa.out_w = out[1];
    sa.err_w = errp[1];
    sa.guard_fd = guard_fd_for_child();
    sa.cg_id = cg_prepare(procs, sizeof(procs));
    sa.procs = procs;
    child_reserve_fds();
    pthread_mutex_lock(&slot_mu);
    if (slot_ok) {
        slots = 1;
        if (slot_put(SLOT_OUT, out[1], &sa.out_w) || slot_put(SLOT_ERR, errp[1], &sa.err_w) ||
            (sa.guard_fd >= 0 && slot_put(SLOT_GUARD, sa.guard_fd, &sa.guard_fd))) {
            /* Not in the slots: the child copies the whole table. */
            slots_clear();
            slots = 0;
            sa.out_w = out[1];
            sa.err_w = errp[1];
            sa.guard_fd = guard_fd_for_child();
        } else {
            for (int i = 0; i < NSLOTS; i++)
                if (slot_fd[i] >= sa.keep_below)
                    sa.keep_below = slot_fd[i] + 1;
        }
    }
    if (!slots)
        pthread_mutex_unlock(&slot_mu);
    /* No signal handler of ours may run in the child before it resets them.
     * CLONE_VM|CLONE_VFORK (as vfork): no copy of orch's memory, the child
     * runs at once, and orch goes on once it has exec'd (or failed). With the
     * slots, CLONE_FILES too: no copy of orch's descriptor table either.
     * CLONE_PIDFD: the pidfd comes with the clone (close-on-exec), where
     * pidfd_open would be one more call (and kernels before 5.2 refuse it:
     * then pidfd_open after all, which fails there too, as before). */
    flags = CLONE_VM | CLONE_VFORK | (slots ? CLONE_FILES : 0) | SIGCHLD;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid = clone(spawn_entry, stack + sizeof(stack), flags | CLONE_PIDFD, &sa, &pidfd);
    if (pid < 0 && errno == EINVAL) {
        pidfd = -1;
        pid = clone(spawn_entry, stack + sizeof(stack), flags, &sa);
    }
    saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (slots) {
        /* The pipes' write ends in their slots must go (EOF once the child exits). */
        slots_clear();
        pthread_mutex_unlock(&slot_mu);
    }
    if (pid < 0) {
        if (sa.cg_id)
            cg_release(sa.cg_id, 1); /* nothing ever ran in it */
        rc = err_set(err, ERR_IO, "cannot run '%s': %s", c->argv[0], strerror(saved));
        goto out;
    }
    c->cgroup = sa.cg_id;
    /* Set: what it could not do (it has exited 127). */
    step = __atomic_load_n(&sa.fail.step, __ATOMIC_ACQUIRE);
    if (step) {
        int e = __atomic_load_n(&sa.fail.err, __ATOMIC_RELAXED);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
        if (pidfd >= 0)
            close(pidfd);
        child_guard(pid, 0);
        if (c->cgroup)
            cg_release(c->cgroup, 0);
        c->cgroup = 0;
        if (step == SPAWN_EXEC && cached && (e == ENOENT || e == EACCES)) {
            /* A program found in the cache is gone: look it up again. */
            path_cache_forget(c->argv[0]);
            close(out[0]);
            close(out[1]);
            close(errp[0]);
            close(errp[1]);
            return child_start(c, err);
        }
        if (step == SPAWN_DIR)
            rc = err_set(err, e == ENOENT ? ERR_NOT_FOUND : ERR_IO,
                         "cannot run '%s': working directory '%s': %s", c->argv[0], c->dir,
                         strerror(e));
        else if (step == SPAWN_USER)
            rc = err_set(err, ERR_IO, "cannot run '%s' as uid %d: %s", c->argv[0], (int)c->uid,
                         strerror(e));
        else
            rc = err_set(err, e == ENOENT ? ERR_NOT_FOUND : ERR_IO, "cannot run '%s': %s",
                         c->argv[0], strerror(e));
        goto out;
    }
    c->pid = pid;
    c->pidfd = pidfd >= 0 ? pidfd : sys_pidfd_open(pid);
    if (c->pidfd < 0) {
        /* Cannot watch it: do not leave it running unwatched. */
        int e = errno;
        kill(-pid, SIGKILL);
        if (c->cgroup)
            cg_write(c->cgroup, "cgroup.kill", "1");
        waitpid(pid, NULL, 0);
        child_guard(pid, 0);
        if (c->cgroup)
            cg_release(c->cgroup, 0);
        c->cgroup = 0;
        rc = err_set(err, ERR_IO, "cannot watch process %d: %s", (int)pid, strerror(e));
        goto out;
    }
    if (pidfd < 0)
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
    /* What left the group too (nothing, mostly: then one read shows it). An
     * empty cgroup stays empty (nothing joins it but through its
     * cgroup.procs), which its release then need not read again. */
    if (c->pid > 0 && c->cgroup && sig == SIGKILL) {
        if (cg_is_empty(c->cgroup) == 1 ||
            (cg_write(c->cgroup, "cgroup.kill", "1") == 0 && cg_wait_empty(c->cgroup)))
            cg_mark_empty(c->cgroup);
    }
}

void child_release(struct child *c)
{
    if (c->pidfd >= 0) {
        close(c->pidfd);
        child_guard(c->pid, 0); /* its group was ended with it */
        if (c->cgroup) {
            cg_release(c->cgroup, 0); /* killed and removed unless empty */
            c->cgroup = 0;
        }
    }
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
        if (fstat(fd, &sb) != 0 || (sb.st_uid != me && me != 0)) {
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

int child_become_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1) == 0 ? 0 : ERR_IO;
}

/* Read /proc/<pid>/environ (at most 64 KiB) into a heap buffer; NULL if gone. */
static char *read_environ(pid_t pid, size_t *len)
{
    char path[64], *buf;
    size_t cap = 65536;
    ssize_t n;
    int fd;

    *len = 0;
    snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    buf = malloc(cap);
    if (!buf) {
        close(fd);
        return NULL;
    }
    while (*len < cap && (n = read(fd, buf + *len, cap - *len)) > 0)
        *len += (size_t)n;
    close(fd);
    return buf;
}

/* The children of this process (the orphans reparented to a subreaper go to
 * the thread group leader's list). Returns how many pids were put in out. */
static size_t list_children(pid_t *out, size_t max)
{
    char path[64], buf[8192];
    size_t n = 0, len = 0;
    ssize_t r;
    int fd;

    snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)getpid(), (int)getpid());
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    while (len < sizeof(buf) - 1 && (r = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    for (char *p = buf; *p && n < max;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            break;
        if (v > 1)
            out[n++] = (pid_t)v;
        p = end;
    }
    return n;
}

int child_sweep_orphans(const pid_t *live, size_t nlive,
                        int (*keep)(void *arg, const char *env, size_t len), void *arg)
{
    pid_t kids[512], guard = child_guard_pid();
    int killed = 0;

    /* Killing an orphan reparents its own children to us: a few rounds. */
    for (int round = 0; round < 8; round++) {
        size_t n = list_children(kids, sizeof(kids) / sizeof(kids[0]));
        int acted = 0;
        for (size_t i = 0; i < n; i++) {
            pid_t pid = kids[i];
            size_t len = 0, k;
            char *env;
            int status;

            for (k = 0; k < nlive && live[k] != pid; k++)
                ;
            if (k < nlive)
                continue; /* a task process we started: its owner reaps it */
            if (pid == guard)
                continue;
            if (waitpid(pid, &status, WNOHANG) == pid)
                continue; /* an orphan that had exited: reaped */
            env = read_environ(pid, &len);
            if (env && keep && keep(arg, env, len)) {
                free(env);
                continue;
            }
            free(env);
            if (getpgid(pid) == pid)
                kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            killed++;
            acted = 1;
            /* Reap it (SIGKILL is prompt; do not wait long for one stuck in the kernel). */
            for (int t = 0; t < 100 && waitpid(pid, &status, WNOHANG) == 0; t++)
                usleep(1000);
        }
        if (!acted)
            break;
    }
    return killed;
}

/* ------------------------------------------------------------------ the guard */

/*
 * The guard: a small process forked from orch that outlives it. orch sends it
 * the process group of every task it starts (and again when the group ended);
 * when orch dies, however it dies, the guard reads end-of-file and kills the
 * groups still open. PR_SET_PDEATHSIG only reaches a task's first process;
 * this reaches the rest of its group.
 */
struct guard_msg {
    int op;   /* 1 add, 0 remove */
    int pgid; /* the task's process group */
    int cg;   /* add: its cgroup id, 0 for none */
};

#define GUARD_MAX 65536

static pthread_mutex_t guard_mu = PTHREAD_MUTEX_INITIALIZER;
static int guard_fd = -1;
static pid_t guard_pid;
static struct guard_msg guard_groups[GUARD_MAX]; /* used in the guard process only */

static void guard_main(int fd)
{
    struct sigaction sa;
    struct guard_msg m;
    size_t n = 0;
    sigset_t none;
    ssize_t r;
    int null;

    prctl(PR_SET_NAME, "orch-guard");
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    /* It must outlive orch: a terminal's signal to the group is not for it. */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGSEGV && sig != SIGBUS &&
            sig != SIGFPE && sig != SIGILL && sig != SIGABRT && sig != SIGCHLD)
            sigaction(sig, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    if (dup2(fd, 3) != 3)
        _exit(1);
    syscall(SYS_close_range, 4U, ~0U, 0);
    for (;;) {
        r = read(3, &m, sizeof(m));
        if (r < 0 && errno == EINTR)
            continue;
        if (r != (ssize_t)sizeof(m))
            break; /* EOF: orch is gone (or closed it) */
        if (m.op) {
            if (n < GUARD_MAX)
                guard_groups[n++] = m;
        } else {
            for (size_t i = 0; i < n; i++)
                if (guard_groups[i].pgid == m.pgid) {
                    guard_groups[i] = guard_groups[--n];
                    break;
                }
        }
    }
    for (size_t i = 0; i < n; i++)
        if (guard_groups[i].pgid > 1)
            kill(-guard_groups[i].pgid, SIGKILL);
    if (cg_base[0]) {
        /* And what left the groups; then the cgroups themselves, once empty. */
        for (size_t i = 0; i < n; i++)
            if (guard_groups[i].cg > 0)
                cg_write(guard_groups[i].cg, "cgroup.kill", "1");
        for (size_t i = 0; i < n; i++)
            if (guard_groups[i].cg > 0)
                cg_remove(guard_groups[i].cg);
        cg_remove_tasks(cg_base); /* the empty ones kept for reuse */
        for (int i = 0; i < 200 && rmdir(cg_base) != 0 && errno == EBUSY; i++)
            usleep(500);
    }
    _exit(0);
}

/* Start the guard once per process; 0, or -1 (then tasks are not guarded). */
static int guard_start_locked(void)
{
    int p[2];
    sigset_t all, old;
    pid_t pid;

    if (guard_fd >= 0)
        return 0;
    pthread_once(&cg_once, cg_init); /* the guard needs to know where the cgroups are */
    /* A socket, not a pipe: sending to a dead guard must not raise SIGPIPE. */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) != 0)
        return -1;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0) {
        close(p[1]);
        guard_main(p[0]);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(p[0]);
    if (pid < 0) {
        close(p[1]);
        return -1;
    }
    guard_pid = pid;
    guard_fd = p[1];
    return 0;
}

void child_guard(pid_t pgid, int add)
{
    struct guard_msg m;
    ssize_t w;

    if (pgid <= 1)
        return;
    memset(&m, 0, sizeof(m));
    m.op = add;
    m.pgid = pgid;
    pthread_mutex_lock(&guard_mu);
    if (add)
        guard_start_locked();
    if (guard_fd >= 0) {
        do {
            w = send(guard_fd, &m, sizeof(m), MSG_NOSIGNAL);
        } while (w < 0 && errno == EINTR);
        if (w < 0) {
            /* It died (killed by someone): a new one takes the next groups. */
            close(guard_fd);
            guard_fd = -1;
            waitpid(guard_pid, NULL, WNOHANG);
        }
    }
    pthread_mutex_unlock(&guard_mu);
}

/* The guard's socket, started if need be, for a child to register itself. */
static int guard_fd_for_child(void)
{
    int fd;
    pthread_mutex_lock(&guard_mu);
    guard_start_locked();
    fd = guard_fd;
    pthread_mutex_unlock(&guard_mu);
    return fd;
}

pid_t child_guard_pid(void)
{
    pid_t pid;
    pthread_mutex_lock(&guard_mu);
    pid = guard_fd >= 0 ? guard_pid : 0;
    pthread_mutex_unlock(&guard_mu);
    return pid;
}
