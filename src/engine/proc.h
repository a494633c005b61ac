/*
 * proc.h - the processes of command tasks (proc.c): a `struct proc` per
 * attempt run here, for this node's executions or for another node's offers.
 * The command kind of the task-kind table lives there too (kind.h). Loop
 * thread only.
 */
#ifndef ORCH_ENGINE_PROC_H
#define ORCH_ENGINE_PROC_H

#include <stddef.h>

#include "store/store.h"

struct engine;
struct exec;
struct proc;

/*
 * The life of a process (struct proc, engine_internal.h): made when its
 * attempt begins (or an offer is claimed), started by engine__spawn_pending()
 * after the commit, read by engine__proc_read() while its pipes have output,
 * ended through engine__proc_exited() once its pidfd says so (the attempt's
 * result applied unless the attempt was given up meanwhile), and freed by
 * engine__procs_collect() once reaped and its output committed.
 */
/* Start the processes of the attempts begun this turn. */
void engine__spawn_pending(struct engine *eng);
/* Read what is available from one pipe of `p` (0 stdout, 1 stderr), bounded per turn. */
void engine__proc_read(struct engine *eng, struct proc *p, int stream);
/* The pidfd of `p` is readable: reap it, drain its pipes, end its group and
 * what it left, and apply its result (or report it to its owner). */
void engine__proc_exited(struct engine *eng, struct proc *p);
/* Is the pid of `p` (pid_dirty) worth a commit of its own? Once it has run
 * for PID_WRITE_DELAY_MS (its timer makes a turn then) or ended. Before that
 * it goes only with a commit made for something else: a chain of short tasks
 * then commits once per task, the pid with the result, not twice. */
int engine__proc_pid_due(const struct proc *p);
/* Free the processes that are reaped and whose output is committed. */
void engine__procs_collect(struct engine *eng);
/* Has every process ended (those held for a commit included)? 1 or 0. */
int engine__procs_all_reaped(const struct engine *eng);
/* SIGTERM to the group of `p` (now), SIGKILL after the grace (a timer); its
 * attempt is given up (stale) either way. */
void engine__proc_terminate(struct engine *eng, struct proc *p);
/* At the engine's end: kill and reap what still runs, free everything. */
void engine__procs_free(struct engine *eng);

/* An attempt offered to the other nodes is run here after all (remote.c):
 * its process is started after the commit. */
void engine__remote_run_local(struct engine *eng, struct exec *ex, size_t idx);
/* Run the attempt another node offered (`o`, claimed by us). */
void engine__remote_run_for(struct engine *eng, const struct offer_row *o);
/* The result of our attempt another node ran (`o`, found current by remote.c):
 * the attempt ends with it, or is lost with its runner. */
void engine__remote_result(struct engine *eng, struct exec *ex, size_t idx,
                           const struct offer_row *o);

#endif
