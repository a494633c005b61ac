/*
 * scheduler.h - what the engine's loop and the cluster code ask of the
 * scheduler (scheduler.c). Its state is `struct sched_state`, private to
 * scheduler.c, behind eng->sched: made by engine_new(), freed by
 * engine_free(). engine_enable_scheduler() and engine_schedules_changed()
 * (engine.h) are its public side.
 */
#ifndef ORCH_ENGINE_SCHEDULER_H
#define ORCH_ENGINE_SCHEDULER_H

#include <stdint.h>

struct engine;
struct sched;

/* The scheduler's state, empty and off. */
struct sched_state *engine__sched_new(void);
/* Free eng->sched (NULL is fine) and what it holds. */
void engine__sched_free(struct engine *eng);

/* Is the scheduler enabled (engine_enable_scheduler())? */
int engine__sched_on(const struct engine *eng);
/* Re-read the schedules from the store before the next tick. */
void engine__sched_reload(struct engine *eng);
/* This node now holds the scheduler lease: due times after `prev_tick`
 * (wall-clock ms) are late, not missed, and the schedules are re-read. */
void engine__sched_lead(struct engine *eng, int64_t prev_tick);
/* Did engine_schedules_changed() run since the last call? (Clears it.) */
int engine__sched_take_changed(struct engine *eng);
/* One turn of the scheduler: re-read the schedules when asked or every
 * SCHED_SYNC_MS, then fire what is due. The wall-clock ms of the next due
 * time (0: none). */
int64_t engine__sched_turn(struct engine *eng);
/* Monotonic ms of the next periodic re-read (in the past until the first). */
int64_t engine__sched_next_sync(const struct engine *eng);
/* The schedule with id `id` that this node knows, or NULL. */
const struct sched *engine__sched_find(const struct engine *eng, const char *id);
/* Drop the fires not written yet that started execution `exec_id` (it was
 * lost to another node). */
void engine__sched_fires_drop(struct engine *eng, const char *exec_id);

#endif
