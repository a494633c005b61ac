/*
 * subflow.h - workflow tasks (subflow.c): a child execution per task, its end
 * applied to the parent after the commit; its state is struct subflow_state,
 * private to it, behind eng->subflow. Loop thread only.
 */
#ifndef ORCH_ENGINE_SUBFLOW_H
#define ORCH_ENGINE_SUBFLOW_H

#include <stdint.h>

struct engine;
struct exec;
struct subflow_state;
struct child_ops;

/* subflow.c: its state is struct subflow_state, private to it, behind eng->subflow. */
struct subflow_state *engine__subflow_new(void);
/* Look at the workflow tasks whose child is not here on the next turn. */
void engine__subflow_want_check(struct engine *eng);
/* Is a look due (asked, or its poll time passed)? engine__subflow_poll() looks. */
int engine__subflow_poll_due(const struct engine *eng);
/* Monotonic ms of the next look, 0 = none. */
int64_t engine__subflow_poll_at(const struct engine *eng);
void engine__subflow_child_done(struct engine *eng, struct exec *child);
/* What the core calls of the workflow tasks (engine_internal.h, struct child_ops). */
extern const struct child_ops engine__child_ops;
void engine__subflow_poll(struct engine *eng);
/* After the commit: apply the ends of children, send the cancels. */
void engine__subflow_act(struct engine *eng);
void engine__subflow_free(struct engine *eng);

#endif
