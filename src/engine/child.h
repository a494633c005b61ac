/*
 * child.h - start a command in its own process group and watch it.
 *
 * Modelled on git's run-command: fill a struct child (argv, env, dir), call
 * child_start(), watch child->pidfd, child->out_fd and child->err_fd in an
 * event loop, and call child_reap() when the pidfd is readable. No shell is
 * involved unless argv says so ("/bin/sh", "-c", ...). Every descriptor of
 * ours is closed in the child (O_CLOEXEC everywhere plus close_range).
 *
 * Containment: the child gets PR_SET_PDEATHSIG (SIGKILL), so it dies with
 * the thread that started it (start children from the long-lived event-loop
 * thread only), and exits at once if orch died before that was set. A task's
 * background processes that leave its process group (setsid, double fork)
 * stay in the task's cgroup where cgroup v2 is writable (child_cgroup_base),
 * and are reparented to orch once their parent exits (child_become_subreaper)
 * and ended by child_sweep_orphans everywhere.
 *
 * Thread/loop affinity: none; a child is owned by one thread.
 */
#ifndef ORCH_ENGINE_CHILD_H
#define ORCH_ENGINE_CHILD_H

#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

struct child {
    /* Inputs (borrowed, must stay valid until child_start returns). */
    char *const *argv; /* NULL-terminated; argv[0] is looked up in PATH if it has no '/' */
    char *const *envp; /* the complete environment of the child */
    const char *dir;   /* working directory, or NULL to inherit */
    int drop_ids;      /* run as uid/gid below (orch must be root) */
    uid_t uid;
    gid_t gid;

    /* Outputs of child_start (owned by the struct; child_release closes them). */
    pid_t pid;          /* also the process group id */
    int pidfd;          /* readable when the child exits; -1 if closed */
    int out_fd;         /* read end of the child's stdout, non-blocking; -1 once at EOF */
    int err_fd;         /* read end of the child's stderr, non-blocking; -1 once at EOF */
    int64_t proc_start; /* start time in clock ticks since boot (from /proc), 0 if unknown */
    int cgroup;         /* 1 if it runs in a cgroup of its own (child_cgroup_base) */

    /* Result of child_reap. */
    int exited;    /* 1 once reaped */
    int exit_code; /* exit status if it exited, else -1 */
    int signal;    /* the signal that ended it, else 0 */
};

#define CHILD_INIT {NULL, NULL, NULL, 0, 0, 0, 0, -1, -1, -1, 0, 0, 0, -1, 0}

/* Start the child. Returns 0, or ERR_IO / ERR_NOT_FOUND with a message such as
 * "cannot run 'foo': No such file or directory". On failure nothing is left open. */
int child_start(struct child *c, struct err *err);

/* Reserve the few low descriptors child_start spawns through (once; call it
 * early, while few files are open: then spawning costs the same however many
 * descriptors orch has open later). child_start calls it too. */
void child_reserve_fds(void);

/*
 * Collect the exit status if the child has exited (non-blocking). Returns 1 if
 * reaped (exit_code/signal set), 0 if still running, negative on error.
 */
int child_reap(struct child *c);

/* Send `sig` to the child's whole process group (ignores an already gone group);
 * SIGKILL also ends the rest of its cgroup, if it has one. */
void child_signal_group(const struct child *c, int sig);

/* Close every descriptor still open. Does not wait: reap first. */
void child_release(struct child *c);

/*
 * The cgroup under which each task gets one of its own (cgroup v2 where
 * writable, with cgroup.kill; not with ORCH_TASK_CGROUPS=off), or "" when
 * tasks get none and only the subreaper fallback holds them.
 */
const char *child_cgroup_base(void);

/* Start time (clock ticks since boot) of process `pid` from /proc, or 0 if gone. */
int64_t child_proc_start_time(pid_t pid);

/*
 * Kill the process group `pgid` with SIGKILL if its leader still runs and
 * started at `proc_start` (guards against PID reuse). Returns 1 if a group was
 * signalled, 0 if none matched.
 */
int child_kill_orphan_group(pid_t pgid, int64_t proc_start);

/*
 * Kill (SIGKILL, whole process group) every process of ours whose environment
 * holds ORCH_EXECUTION_ID=exec_id, ORCH_TASK=task and ORCH_ATTEMPT=attempt: the
 * recovery path for an attempt whose pid was never recorded. Returns the
 * number of groups signalled.
 */
int child_kill_by_env(const char *exec_id, const char *task, int attempt);

/*
 * Make this process a child subreaper (PR_SET_CHILD_SUBREAPER): the
 * descendants of a task that leave its process group (setsid, double fork)
 * are reparented to us when their parent exits, instead of to init, so
 * child_sweep_orphans can find them. Returns 0 or ERR_IO.
 */
int child_become_subreaper(void);

/*
 * The fallback for where there is no per-task cgroup: kill (SIGKILL, with its
 * process group if it leads one) and reap every child of ours that is not in
 * `live` (the task processes we started) and that `keep` does not claim.
 * keep(arg, env, len) gets the process's environment block (NUL-separated) and
 * returns 1 for a process that still belongs to a running task; a process
 * whose environment cannot be read is killed. Exited orphans are reaped.
 * Returns the number of processes killed.
 */
int child_sweep_orphans(const pid_t *live, size_t nlive,
                        int (*keep)(void *arg, const char *env, size_t len), void *arg);

/*
 * The guard of task process groups: add (1) or remove (0) the group `pgid`.
 * The first use forks the guard, a small process that outlives orch: when
 * orch dies, however it dies, the guard kills (SIGKILL) every group still
 * added, and its cgroup. A child of child_start adds its own group (and
 * cgroup) before it execs; child_release removes it.
 */
void child_guard(pid_t pgid, int add);

/* The guard's pid, 0 if there is none. */
pid_t child_guard_pid(void);

#endif
