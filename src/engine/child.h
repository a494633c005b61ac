/*
 * child.h - start a command in its own process group and watch it.
 *
 * Modelled on git's run-command: fill a struct child (argv, env, dir), call
 * child_start(), watch child->pidfd, child->out_fd and child->err_fd in an
 * event loop, and call child_reap() when the pidfd is readable. No shell is
 * involved unless argv says so ("/bin/sh", "-c", ...). Every descriptor of
 * ours is closed in the child (O_CLOEXEC everywhere plus closefrom).
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

    /* Outputs of child_start (owned by the struct; child_release closes them). */
    pid_t pid;          /* also the process group id */
    int pidfd;          /* readable when the child exits; -1 if closed */
    int out_fd;         /* read end of the child's stdout, non-blocking; -1 once at EOF */
    int err_fd;         /* read end of the child's stderr, non-blocking; -1 once at EOF */
    int64_t proc_start; /* start time in clock ticks since boot (from /proc), 0 if unknown */

    /* Result of child_reap. */
    int exited;    /* 1 once reaped */
    int exit_code; /* exit status if it exited, else -1 */
    int signal;    /* the signal that ended it, else 0 */
};

#define CHILD_INIT {NULL, NULL, NULL, 0, -1, -1, -1, 0, 0, -1, 0}

/* Start the child. Returns 0, or ERR_IO / ERR_NOT_FOUND with a message such as
 * "cannot run 'foo': No such file or directory". On failure nothing is left open. */
int child_start(struct child *c, struct err *err);

/*
 * Collect the exit status if the child has exited (non-blocking). Returns 1 if
 * reaped (exit_code/signal set), 0 if still running, negative on error.
 */
int child_reap(struct child *c);

/* Send `sig` to the child's whole process group (ignores an already gone group). */
void child_signal_group(const struct child *c, int sig);

/* Close every descriptor still open. Does not wait: reap first. */
void child_release(struct child *c);

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

#endif
