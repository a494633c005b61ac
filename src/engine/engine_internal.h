/*
 * engine_internal.h - state shared between the engine's own files. Never
 * included from outside src/engine/.
 */
#ifndef ORCH_ENGINE_INTERNAL_H
#define ORCH_ENGINE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <pthread.h>
#include <signal.h>

#include "base/clock.h"
#include "base/strbuf.h"
#include "child.h"
#include "dag/dag.h"
#include "engine.h"
#include "sched/cron.h"
#include "sched/tz.h"
#include "store/store.h"
#include "hooks.h"
#include "transition.h"

#define COMP "Engine"
#define COMP_TASK "TaskExecutor"
#define COMP_SCHED "Scheduler"
#define ERR_TAIL 240        /* bytes of stderr kept for the error message */
#define OUT_TAIL 4096       /* bytes of stdout kept for a task's default output */
#define SCHED_SYNC_MS 30000 /* the scheduler re-reads the definitions at least this often */

struct exec;
struct proc;

/* A min-heap of timers on the monotonic clock (timer.c). */
enum timer_kind {
    TIMER_TASK_TIMEOUT, /* a running attempt exceeded its timeout */
    TIMER_KILL,         /* grace after SIGTERM is over: SIGKILL the group */
    TIMER_RETRY,        /* back-off over: the queued task may start */
    TIMER_KIND_WAKE,    /* the kind's own timer (a sleep's end): its wake hook (kind.h) */
    TIMER_EXEC_DEADLINE, /* the execution's timeout */
    TIMER_MAX_QUEUED,    /* a task has been queued longer than the workflow's maxQueued */
    TIMER_MAX_RUNNING,   /* an execution has run longer than the workflow's maxRunning */
    TIMER_PID_WRITE,     /* make a turn happen so a new process's pid is committed */
    TIMER_COMMIT_RETRY   /* the database was busy: the held commit is tried again */
};

struct timer {
    int64_t at; /* CLOCK_MONOTONIC ms */
    enum timer_kind kind;
    struct exec *ex;
    struct proc *proc;
    size_t idx;
    int attempt;
    uint64_t gen; /* the generation of `ex` when armed (0: no execution) */
};

struct timer_heap {
    struct timer *items;
    size_t n;
    size_t alloc;
};

void engine__timer_add(struct timer_heap *h, const struct timer *t);
/* The earliest timer, or NULL. */
const struct timer *engine__timer_peek(const struct timer_heap *h);
void engine__timer_pop(struct timer_heap *h, struct timer *out);
/* Remove every timer that refers to `ex` (if not NULL) or `proc` (if not NULL). */
void engine__timer_purge(struct timer_heap *h, const struct exec *ex, const struct proc *proc);
void engine__timer_release(struct timer_heap *h);
/* A new execution generation (never 0, never reused). */
uint64_t engine__exec_gen_next(void);
/* The timers of `ex` are forgotten in O(1): its generation is recorded dead
 * (its timers are skipped when they reach the top of the heap, and dropped
 * all at once when the dead generations pass half the heap) and `ex` gets a
 * new one. */
void engine__timers_forget_exec(struct engine *eng, struct exec *ex);
/* Is a timer of generation `gen` forgotten? */
int engine__timer_gen_dead(const struct engine *eng, uint64_t gen);
/* The earliest timer, once those of forgotten executions on top are dropped;
 * NULL: none. */
const struct timer *engine__timer_first_live(struct engine *eng);

/*
 * The loop's one deadline (deadline.c): the monotonic ms by which the loop must
 * turn again, the earliest of the timer heap and of the periodic deadlines
 * kept as fields (heartbeat, reconnect, cancel poll, scheduler re-read and
 * next due time `next_due`, wall-clock ms or 0, retention, tick, stop grace,
 * a workflow task's poll, libcurl's timer); at most the time now when work
 * is pending; INT64_MAX: none.
 */
int64_t engine__next_deadline(struct engine *eng, int64_t next_due);
/*
 * The epoll timeout that waits for `deadline` (-1: none), read against a
 * fresh clock (the turn may have been long). With a manual clock that
 * auto-advances (base/clock.h), and nothing of the outside world the loop
 * waits on (a process, an HTTP request, other nodes), the clock moves to the
 * deadline instead and the timeout is 0.
 */
int engine__wait_ms(struct engine *eng, int64_t deadline);
/* After the wait: a manual clock moves by the real time it took when it
 * waited on processes or requests; then the next turn reads its time. */
void engine__wait_end(struct engine *eng);

/* ------------------------------------------------------------------ state
 *
 * Owned by the loop thread; other threads use only engine->mu, engine->cv,
 * engine->cmds and engine->stats (under mu).
 */
enum watch_kind { WATCH_PIDFD, WATCH_OUT, WATCH_ERR, WATCH_WAKE, WATCH_DB, WATCH_HTTP, WATCH_REDIS };

struct watch {
    enum watch_kind kind;
    struct proc *proc;
};

/* Per-attempt record of committed log chunks, to keep only the tail. */
struct chunk_len {
    int seq;
    size_t len;
};

/*
 * A started (or about to start) command process. Invariants:
 *   - it is on eng->to_spawn until spawned, then on eng->procs until reaped
 *     and freed; eng->nprocs counts both, eng->nreaped those of them
 *     already reaped (slot_freed: their slots are free again);
 *   - ex == NULL: run for another node (spec and owner set); else the run
 *     ex->runs[idx] holds it in `proc` while attempt `attempt` is current
 *     and not given up; once given up, `stale` is set and only its reaping
 *     is left (its late report is dropped);
 *   - pend[] holds output read since the last commit; undo/trk_undo are
 *     meaningful only while a commit that flushed it is under way.
 */
struct proc {
    struct child ch;
    struct exec *ex;    /* NULL: a process run for another node's execution (remote.c) */
    char exec_id[ID_MAX];
    json_t *spec;       /* run for another node: what to run */
    char *owner;        /* run for another node: its owner */
    int rcancel;        /* run for another node: its owner gave it up */
    size_t idx;
    int attempt;
    int64_t started_mono;
    int stale;       /* its attempt was given up (timeout, cancel); only reaping is left */
    int term_sent;   /* SIGTERM sent to the group */
    int pid_dirty;   /* pid/pgid not yet written to the store */
    int reaped;
    int slot_freed;    /* reaped on its exit: counted in eng->nreaped until freed */
    int pid_unwatched; /* its pidfd is out of the epoll set (it exited) */
    struct watch w_pid, w_out, w_err;
    struct strbuf pend[2]; /* output read this turn, by stream (0 stdout, 1 stderr) */
    int seq;
    struct chunk_track {
        struct chunk_len *chunks;
        size_t n, alloc, head;
        size_t kept; /* bytes of this stream kept in the store */
    } trk[2];        /* by stream: the cap applies to each */
    struct {
        size_t head, kept; /* trk before the flush of a commit that may fail */
        int added;         /* a chunk was added to trk */
    } trk_undo[2];
    int seq_undo, undo; /* undo: flushed in the commit under way */
    char err_tail[ERR_TAIL];
    size_t err_tail_len;
    char out_tail[OUT_TAIL];
    size_t out_tail_len;
    char *output_path; /* $ORCH_OUTPUT of this attempt */
    int rlog;          /* its live log stream in Redis has its expiry (redisbus.c) */
    size_t rlog_off[2]; /* bytes of each stream read so far (the live log's offsets) */
    struct proc *next;
};

/*
 * One task run of an execution: a task of the workflow (idx < ntasks) or a
 * fan-out item. Invariants (engine__check, transition.c):
 *   - `status` changes only through engine__run_move() (the table of legal
 *     moves) or engine__run_load() (as the store holds it);
 *   - queued_in_ready => status == queued (its FIFO entry may stay behind,
 *     skipped, after it leaves: dispatch() checks both);
 *   - running and not a group => proc, http, remote, a child (workflow task)
 *     or a sleep timer; proc or remote => running;
 *   - dirty <=> listed once in its execution's drun; db_attempt == attempt
 *     once committed (it is the fencing token of the next update);
 *   - pending: remaining == the number of its dependencies not final.
 */
struct trun {
    enum task_status status;
    int attempt;
    int db_attempt; /* the attempt number the store holds (fencing token) */
    int remaining;  /* dependencies not yet final */
    int failures;   /* attempts that count against the retry budget (failed, timed out, lost) */
    int lost_runs;  /* lost attempts run again outside it (up to cfg.max_lost_attempts) */
    int64_t available_at;
    /* When its current (or next) attempt became queued: set by every move to
     * queued (transition.c), a retry's moved on to its back-off's end; written
     * with the run and copied into the attempt's row when the attempt begins. */
    int64_t queued_at;
    int64_t started_at;
    int64_t finished_at;
    int64_t attempt_started_at;
    int64_t ready_at;  /* when it last entered its execution's ready FIFO (wall-clock ms) */
    char *error;
    char *output;      /* JSON object text once succeeded (command tasks), or NULL */
    int remote;        /* the current attempt is offered to, or run by, another node */
    struct proc *proc; /* live process of the current attempt */
    int dirty;           /* its row is written by the next commit (listed in ex->drun) */
    int queued_in_ready; /* present in the exec's ready list */
    int is_new;          /* a fan-out instance made this turn: inserted, not updated */
    /* A fan-out instance (idx >= the workflow's task count): one item of the
     * forEach task `group`, which it runs as that task with item and index. */
    size_t group;        /* (size_t)-1 for the workflow's own tasks */
    int item_index;
    char *item;          /* JSON text */
    char *name;          /* "task[3]" */
    /* A forEach task (a group) once its list is known: its instances are the
     * runs first .. first + ninst - 1; it is running until all are final. */
    int expanded;
    size_t first, ninst;
    size_t inst_next;    /* the next instance to make ready (maxParallel) */
    size_t inst_final;   /* instances final */
    size_t inst_bad;     /* instances that failed, timed out or were cancelled */
    size_t inst_active;  /* instances made ready and not final yet */
    /* A workflow task: the child execution of the current attempt. */
    char child_id[ID_MAX];
    void *http;          /* an HTTP task's request in flight (httptask.c), or NULL */
};

struct pending_attempt {
    struct exec *ex;
    int insert;
    struct attempt_row row; /* error and node owned here */
};

/*
 * One execution advanced by this node. Invariants (engine__check):
 *   - nfinal == its final runs; nrunning == its running runs that are not
 *     forEach groups (a group takes no slot);
 *   - `status` changes only through engine__exec_move(); a final execution
 *     (not lost or handed off) has all its runs final;
 *   - `life` (enum exec_life, transition.h) says whether it is new, handed
 *     off, stored or lost; only new/handoff are inserted, only stored ones
 *     updated, lost and handed-off ones are never written again;
 *   - dirty_slot != 0 <=> listed in eng->dirty <=> dirty, ndrun > 0 or new;
 *   - runs[] may move when a group fans out: nothing holds a struct trun *
 *     across dispatch().
 */
struct exec {
    char id[ID_MAX];
    uint64_t gen; /* its timers carry it (engine__timers_forget_exec) */
    struct workflow *wf;
    int version;
    char *params;
    char **base_env; /* NULL-terminated: inherited + workflow env + params */
    enum exec_status status;
    int64_t created_at, started_at, finished_at;
    int64_t retried_at; /* the newest retry's start, 0 if none (started_at stays the first) */
    char *error;
    struct trun *runs;
    size_t nfinal;
    size_t nrunning; /* tasks in TASK_RUNNING */
    /* FIFOs of run indices that are queued and available, by kind, so that a
     * command waiting for a process slot never holds up anything else:
     * [0] commands, [1] sleeps, HTTP and workflow tasks, [2] noops and forEach
     * tasks about to fan out (neither takes a slot or counts against
     * concurrency). */
    struct fifo {
        size_t *v;
        size_t head, n, alloc;
    } ready[3];
    enum exec_life life;
    int dirty;       /* its row is written by the next commit */
    int finished_reported; /* its end was logged and reported to the observer */
    int notified;    /* notify.c: its end's (1) and its "stuck" (2) notifications are written */
    int tasks_new;   /* task runs not yet inserted */
    int unclaimed;   /* new: cfg.claim is called by the commit that inserts it (never,
                      * if it ends first), so cfg.release is not called either */
    /* Runs whose row the next commit writes (their `dirty` set), in the order
     * they were touched; emptied by the commit (transition.c). */
    size_t *drun;
    size_t ndrun, drun_alloc;
    size_t dirty_slot; /* 1 + its place in eng->dirty, 0 when not listed */
    char *idem_key;  /* Idempotency-Key of the submission, written with the insert */
    char *schedule_id;     /* the schedule that fired it, or NULL */
    char *schedule_name;
    int64_t scheduled_for; /* its due time (ms) */
    char *scheduled_for_text; /* ISO 8601 in the schedule's zone, for ORCH_SCHEDULED_FOR */
    int writes;      /* this turn writes something of it (cluster.c, for the fence) */
    size_t nruns, runs_alloc; /* runs: the workflow's tasks, then fan-out instances */
    json_t *ctx;              /* placeholders' context shared by its runs, or NULL (exec.c) */
    struct wf_metrics *metrics_wf; /* its workflow's counters, once looked up (metrics.c) */
    /* A child execution (a workflow task's): its parent and task. */
    char *parent_id;
    int parent_task_idx;
    int depth;
    struct exec *next, *prev; /* on eng->execs */
    /* Its place on the engine's lists (exec.c), so that a turn visits only
     * the executions something happened to: `visit` (on eng->visit: ready
     * work, or a task that ended, since dispatch last looked; or on
     * eng->slot_wait: a command waiting for a process slot) and `done` (on
     * eng->done: final or dropped, to be freed once written). */
    struct exec_link {
        struct exec *prev, *next;
        int on; /* 0: on no list, else the list (EXEC_LIST_*) */
    } visit, done;
};

/*
 * What the core calls of a subsystem. The core (exec.c, attempt.c,
 * transition.c, commit.c, timer.c, hooks.c, kind.c, watch.c) never names a
 * subsystem's function: it calls through the kind table (kind.h), the commit
 * hooks (hooks.h) and these tables, one per subsystem, each defined (const)
 * in the subsystem's file and set by engine_new(). A subsystem calls the
 * core by name. unit.engine_layers checks it on the objects
 * (src/engine/layers.py, docs/internals/engine.md).
 */
struct group_ops { /* forEach groups: fanout.c's engine__group_ops */
    /* Instance `idx` of group `g` became final with `st`: the group decides. */
    void (*step)(struct engine *eng, struct exec *ex, size_t g, enum task_status st);
    /* Task `g` ended without running (skipped, upstream failed, cancelled):
     * if it is a group, its items that have not started end with it. */
    void (*close)(struct engine *eng, struct exec *ex, size_t g, enum task_status st);
};
struct child_ops { /* workflow tasks: subflow.c's engine__child_ops */
    /* Execution `child` ended: if it is a workflow task's, its parent's task
     * ends with it. */
    void (*done)(struct engine *eng, struct exec *child);
};
struct node_ops { /* the node in a cluster: cluster.c's engine__node_ops */
    /* No worker slot is free here: a new execution is queued for any node. */
    int (*busy)(const struct engine *eng);
    /* A new execution was queued for any node: wake them, and look for work
     * to claim here too once a slot is free. */
    void (*handoff)(struct engine *eng);
};

/* A queue of executions, through one of their exec_link members. */
struct exec_queue {
    struct exec *head, *tail;
};
enum { EXEC_LIST_VISIT = 1, EXEC_LIST_SLOT_WAIT, EXEC_LIST_DONE };

/* Dispatch visits `ex` in this turn (or the next): call when one of its runs
 * became ready or ended, or its status changed. */
void engine__exec_visit(struct engine *eng, struct exec *ex);
/* `ex` may be freed once written: execs_collect looks at it. */
void engine__exec_done(struct engine *eng, struct exec *ex);

/* Taken by another node (or never committed): nothing of it is written. */
static inline int engine__exec_lost(const struct exec *ex)
{
    return ex->life == EXEC_LIFE_LOST;
}

/* Made on this node and not inserted yet (the next commit inserts it). */
static inline int engine__exec_unstored(const struct exec *ex)
{
    return ex->life == EXEC_LIFE_NEW || ex->life == EXEC_LIFE_HANDOFF;
}

/* Made for any node: not advanced here. */
static inline int engine__exec_handoff(const struct exec *ex)
{
    return ex->life == EXEC_LIFE_HANDOFF || ex->life == EXEC_LIFE_HANDED_OFF;
}

/* The definition task run `idx` runs: its own, or its group's for an instance. */
static inline const struct dag_task *engine__task(const struct exec *ex, size_t idx)
{
    return &ex->wf->tasks[idx < ex->wf->ntasks ? idx : ex->runs[idx].group];
}

/* The name of run `idx` as logs and the API show it: "load", "process[3]". */
static inline const char *engine__task_name(const struct exec *ex, size_t idx)
{
    return idx < ex->wf->ntasks ? ex->wf->tasks[idx].name : ex->runs[idx].name;
}

static inline int engine__is_group(const struct dag_task *t)
{
    return t->for_each != NULL || t->for_each_json != NULL;
}

/* One schedule of a workflow definition, as the scheduler keeps it. */
struct sched {
    char id[ID_MAX];
    char *workflow;
    char *name;
    char *definition; /* the workflow's newest definition (parsed again for each fire) */
    int version;
    struct dag_schedule spec; /* copied scalars; cron_text/timezone/params owned below */
    char *cron_text;
    char *tzname;
    char *params;
    const struct tz *tz;
    char *spec_hash;
    int paused;
    int64_t next_fire_at; /* ms; 0 = none */
    int64_t last_fire_at;
    int dirty;            /* state row to write with the turn */
    int64_t buffered;     /* bufferOne: a due time waiting for the previous run, 0 = none */
    int64_t *queue;       /* bufferAll: due times waiting, oldest first */
    size_t nqueue, queue_alloc;
    int from_api;         /* created through the API: its spec is kept in its state row */
    char *api_spec;
    int is_new;           /* no state row yet: inserted (else only its state is updated) */
    int gone;             /* its row was deleted meanwhile: fire no more */
};

/* A write about a task offer, made with the turn's commit (remote.c). */
enum roff_kind { ROFF_PUT, ROFF_DELETE, ROFF_CANCEL, ROFF_REPORT };

struct roff_op {
    enum roff_kind kind;
    struct offer_row row; /* strings owned */
};

struct pending_fire {
    struct fire_row row; /* schedule_id and reason owned */
};

enum cmd_type { CMD_SUBMIT, CMD_CANCEL, CMD_RETRY, CMD_BACKFILL };

/* A command from another thread; the caller blocks until `done`. */
#define ENGINE_WF_CACHE 8 /* workflow definitions kept parsed for submissions */

struct cmd {
    enum cmd_type type;
    const char *name;     /* SUBMIT: workflow name */
    const char *params;   /* SUBMIT: params JSON or NULL */
    const char *idem;     /* SUBMIT: idempotency key or NULL */
    const char *exec_id;  /* CANCEL, RETRY; BACKFILL: the schedule id */
    int64_t from, until;  /* BACKFILL: the window (ms) */
    int count;            /* BACKFILL: due times handled */
    char out_id[ID_MAX];
    int existing;
    int rc;
    struct err err;
    int done;
    /* SUBMIT without a waiter: the execution it created (until answered), and
     * its row as the commit that holds it wrote it (row.id[0] set; strings
     * owned), so that the answer needs no read of the store. */
    struct exec *ex;
    struct exec_row row;
    /* Set: the poster does not wait; done_fn(done_arg) is called once the
     * command is answered (after unlocking mu), and is its last use here. */
    void (*done_fn)(void *arg);
    void *done_arg;
    struct cmd *next;
};

/*
 * The engine. Invariants:
 *   - eng->dirty lists each execution with something for the next commit
 *     to write, once; emptied only by a successful commit;
 *   - nremote == the runs of live executions offered to other nodes;
 *   - commit_held: the last commit found the database busy; nothing of its
 *     writes has been acted on (no spawn, no reply) until it commits;
 *   - db_down: nothing is committed or acted on (reconnecting, or the disk
 *     is full: disk_full);
 *   - only the loop thread touches it, but for mu, cv, cmds, stats and the
 *     sig_atomic_t flags set from other threads or signal handlers.
 */
struct engine {
    struct store *st;
    struct engine_config cfg;
    struct netpolicy *netpol; /* where HTTP tasks may connect */
    char *output_dir;
    char node[128];
    int epfd;
    int wakefd;
    struct watch w_wake;
    struct exec *execs;
    /* Executions with something for the next commit to write (their row,
     * dirty runs, or all of them when new): the commit visits only these
     * (transition.c keeps the list; exec->dirty_slot is the way back). */
    struct exec **dirty;
    size_t ndirty, dirty_alloc;
    /* The subsystems' commit hooks (hooks.c), in the order added. */
    struct {
        const struct engine_hook *h;
        void *arg;
    } *hooks;
    size_t nhooks, hooks_alloc;
    size_t nexecs;          /* on `execs` */
    struct exec_queue visit; /* executions dispatch looks at next */
    struct exec_queue slot_wait; /* executions whose next command waits for a slot */
    struct exec_queue done;  /* executions execs_collect looks at */
    size_t nready;          /* entries in the ready FIFOs of all executions */
    int64_t longest_at;     /* when stats last walked the executions for the longest */
    int64_t longest_ms;
    int64_t oldest_queued_ms; /* ... the oldest ready task's wait then */
    size_t tasks_running;     /* ... the running runs then (ex->nrunning summed) */
    struct proc *procs;
    size_t nprocs; /* live processes (slots in use) */
    size_t nreaped; /* of those, exited and reaped, held until their end is committed:
                       their slots are free for the next start (in the same commit) */
    struct timer_heap timers;
    /* Generations of executions whose timers are forgotten but may still be
     * in `timers` (timer.c): an open-addressing set, 0 = empty slot. */
    uint64_t *dead_gens;
    size_t ndead_gens, dead_gens_cap;
    struct pending_attempt *patt;
    size_t npatt, patt_alloc;
    struct proc **to_spawn;
    size_t nspawn, spawn_alloc;
    engine_observer_fn observer;
    void *observer_arg;
    volatile sig_atomic_t cancel_all;
    int cancel_all_done;
    uint64_t exec_changes; /* execution rows changed: published by each commit */
    int work_now; /* something to do without waiting */
    /* When a wait on processes began (real ns), with a manual clock (timer.c); 0: none. */
    int64_t wait_real_ns;
    /* The turn's commit found the database busy: its writes are held in
     * memory (nothing of them is acted on) and it is tried again from a
     * TIMER_COMMIT_RETRY, busy_tries times at most (commit.c). */
    int commit_held;
    int busy_tries;
    int64_t busy_retry_at; /* monotonic ms */

    /* Server mode. */
    int persistent;
    volatile sig_atomic_t stop_requested;
    volatile sig_atomic_t stop_again; /* asked again while stopping: a new grace */
    volatile int64_t stop_grace_ms;
    int stopping;
    int interrupted;
    int64_t stop_deadline; /* monotonic ms */
    pthread_mutex_t mu;    /* guards cmds, stats, and `stopping` for posters */
    pthread_cond_t cv;
    struct cmd *cmds;      /* incoming, LIFO (reversed when taken) */
    struct cmd **replies;  /* answered after this turn's commit */
    size_t nreplies, replies_alloc;
    /* Submissions: the definitions parsed last (server.c), shared by the
     * executions made from them (workflow_ref), so that a definition read
     * again is not parsed again. */
    struct wf_cached {
        char *name, *def;
        int version;
        struct workflow *wf;
    } wf_cache[ENGINE_WF_CACHE];
    unsigned wf_cache_next;
    struct engine_stats stats;
    int64_t next_purge;    /* monotonic ms */
    void (*tick_fn)(void *arg); /* engine_set_tick() */
    void *tick_arg;
    int64_t tick_ms, next_tick; /* interval; monotonic ms */

    /* Scheduler (server mode): scheduler.c's, see scheduler.h. */
    struct sched_state *sched;

    /* Node and cluster: cluster.c's state (struct node_state, private to
     * it) behind `node_st`; here what the loop and the commit read too. */
    struct node_state *node_st;
    char *node_id; /* the node's name (engine_set_node), or NULL */
    int cluster;   /* a node of a cluster (PostgreSQL): waits on other nodes */
    int db_down;
    int64_t db_retry_at;      /* monotonic ms */
    int64_t db_backoff;
    int disk_full; /* a commit found the disk full: db_down is set as well, the
                    * turn's writes are held and the commit retried (commit.c) */

    /* Tasks run on other nodes: remote.c's state behind `remote`; the count
     * is kept by the transition writer (transition.c). */
    struct remote_state *remote;
    size_t nremote;           /* our attempts offered or running elsewhere */
    const char *attempt_node; /* the node to record in the next attempt_end, or NULL */

    void *http; /* HTTP tasks (httptask.c), made when the first one starts */
    struct engine_metrics *metrics; /* counters for /metrics (metrics.c) */
    struct subflow_state *subflow; /* workflow tasks (subflow.c) */

    /* What the core calls of the subsystems (above), set by engine_new(). */
    const struct group_ops *group_ops;
    const struct child_ops *child_ops;
    const struct node_ops *node_ops;
    /* The resource monitor (monitor.c), NULL when not enabled, and the
     * back-pressure it decided (MONITOR_* bits; 0: none): no new task process
     * starts and no work is claimed while it is not 0. */
    struct monitor_state *monitor;
    unsigned pressure;
    struct notify_state *notify;   /* notifications (notify.c) */
    struct redis_state *redis;     /* Redis beside PostgreSQL (redisbus.c), NULL without */
};

/* The worker slots taken: processes to start or running (not those already
 * reaped, whose end is only waiting for the commit that also starts the next). */
static inline size_t engine__slots_busy(const struct engine *eng)
{
    return eng->nprocs - eng->nreaped;
}

/* ------------------------------------------------------------------ metrics (metrics.c)
 *
 * Counted where the events happen, on the loop's thread, without a lock. */
struct engine_metrics;
struct wf_metrics;
struct engine_metrics *engine__metrics_new(void);
void engine__metrics_free(struct engine_metrics *m);
/* An execution was created here / reached its final status (its end time set). */
void engine__metrics_exec_started(struct engine *eng, struct exec *ex);
void engine__metrics_exec_finished(struct engine *eng, struct exec *ex);
/* An attempt of run `idx` ended with `ast` after `took_ms`. */
void engine__metrics_attempt(struct engine *eng, const struct exec *ex, size_t idx,
                             enum attempt_status ast, int64_t took_ms);
/* A write transaction took `ns` (ok), or failed. */
void engine__metrics_commit(struct engine *eng, int64_t ns, int ok);
void engine__metrics_sched_fire(struct engine *eng, int64_t lag_ms);
void engine__metrics_sched_skip(struct engine *eng);
/* `n` executions were taken over from nodes whose lease expired. */
void engine__metrics_taken_over(struct engine *eng, size_t n);

/* ------------------------------------------------------------------ shared between the files */

/* The resource monitor (monitor.c): sample when due (each turn); the
 * monotonic ms of the next sample (INT64_MAX: no monitor); sample on the
 * next turn (space was freed); free it (engine_free). */
void engine__monitor_turn(struct engine *eng);
int64_t engine__monitor_next(const struct engine *eng);
void engine__monitor_soon(struct engine *eng);
void engine__monitor_free(struct engine *eng);

/* The loop's epoll (watch.c): watch `fd` for input, reported with `w`; stop. */
void engine__watch_add(struct engine *eng, int fd, struct watch *w);
void engine__watch_del(struct engine *eng, int fd);
/* exec.c: an execution ends early (cancel, timeout, maxRunning). */
void engine__exec_abort(struct engine *eng, struct exec *ex, enum exec_status st,
                       const char *reason);

/* exec.c: a new execution of `wf` (taken) at `version`, in memory, linked
 * and inserted by the next commit; logged as started once committed. */
int engine__exec_create(struct engine *eng, struct workflow *wf, int version,
                       const char *params_json, struct exec **out, struct err *err);
void engine__log_started(const struct exec *ex);
void engine__wake(struct engine *eng);
int engine__post(struct engine *eng, struct cmd *c);
void engine__reply_now(struct engine *eng, struct cmd *c);
void engine__reply_after_commit(struct engine *eng, struct cmd *c);
void engine__replies_flush(struct engine *eng, int rc, const struct err *err);
void engine__commands_run(struct engine *eng);
void engine__commands_refuse(struct engine *eng, const char *why);
/* The same with the code to answer (ERR_FULL: the disk is full). */
void engine__commands_refuse_code(struct engine *eng, int code, const char *why);
/* This turn's commit failed: the executions its submits created are dropped
 * (their callers are told it failed; nothing of them is written later). */
void engine__replies_drop_new(struct engine *eng, const char *why);
/* Empty one entry of eng->wf_cache (server.c). */
void engine__wf_cache_drop(struct wf_cached *w);
void engine__interrupt_running(struct engine *eng);
void engine__stats_update(struct engine *eng);
void engine__purge_old(struct engine *eng);
void engine__scheds_clear(struct engine *eng);
void engine__sched_sync(struct engine *eng);
int64_t engine__sched_tick(struct engine *eng);
void engine__cmd_backfill(struct engine *eng, struct cmd *c);

/* exec.c, for fan-out groups (fanout.c); task kinds use kind.h */
/* Replace the string *dst (freed) with a copy of src (or NULL). */
void engine__set_str(char **dst, const char *src);
void engine__task_finalize(struct engine *eng, struct exec *ex, size_t idx, enum task_status st,
                           const char *error);
void engine__task_make_ready(struct engine *eng, struct exec *ex, size_t idx);
/* Fill in the progress counts of `ev` and pass it to the observer. */
void engine__task_event(struct engine *eng, struct exec *ex, struct engine_event *ev);

/* exec.c, for recovery.c: an execution rebuilt from the store. */
struct exec *engine__exec_alloc(struct workflow *wf, const char *params); /* takes wf */
void engine__exec_free(struct exec *ex);
/* Put a rebuilt execution on the live list (and the lists of work to visit),
 * or take it off again when it is not taken after all. */
void engine__exec_link_in(struct engine *eng, struct exec *ex);
void engine__exec_unlink(struct engine *eng, struct exec *ex);
/* Arm its timeout and maxRunning, `elapsed_ms` of them already gone. */
void engine__exec_start_deadline(struct engine *eng, struct exec *ex, int64_t elapsed_ms);
/* Run `idx` is queued (ready now, or at its back-off's end) or pending with
 * every dependency final (queued, or final by its runIf, and propagated). */
void engine__run_resume(struct engine *eng, struct exec *ex, size_t idx, int64_t now);


#endif
