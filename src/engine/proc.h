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

/* An attempt offered to the other nodes is run here after all (remote.c):
 * its process is started after the commit. */
void engine__remote_run_local(struct engine *eng, struct exec *ex, size_t idx);
/* Run the attempt another node offered (`o`, claimed by us). */
void engine__remote_run_for(struct engine *eng, const struct offer_row *o);

#endif
