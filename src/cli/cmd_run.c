/*
 * cmd_run.c - `orch run` and `orch resume`: the engine in this process, a live
 * progress line on a terminal, and a summary table at the end.
 */
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "cli.h"
#include "dag/dag.h"
#include "engine/engine.h"
#include "engine/netpolicy.h"
#include "view/view.h"

#include "base/banned.h"

static const struct cli_opt run_opts[] = {
    {"param", "K=V", "set a workflow param (repeatable; V follows its declared type)", 1},
    {"params-file", "FILE", "the params as a JSON or YAML object (--param wins)", 0},
    {"workers", "N", "task processes running at once (default $ORCH_WORKERS or CPU count)", 0},
    {"max-output", "BYTES", "output kept per task attempt, the tail (default 1048576)", 0},
    {"kill-grace", "DURATION", "SIGTERM to SIGKILL grace on timeout/cancel (default 10s)", 0},
    {"task-user", "USER", "run command tasks as this user (orch runs as root; default $ORCH_TASK_USER)", 0},
    {"json", NULL, "print the finished execution as JSON on stdout", 0},
    {"timing", NULL, "print the seconds from submission to the end of the execution on stderr", 0},
    {NULL, NULL, NULL, 0},
};

#define DEFAULT_SHUTDOWN_GRACE_MS 30000 /* as a server's */

static const struct cli_cmd run_cmd = {
    "run", "FILE",
    "Run a workflow definition (JSON or YAML) to completion on the local data directory.\n"
    "Exit status: 0 succeeded, 1 failed, 3 invalid definition or params, 4 timed out,\n"
    "5 cancelled, 70 internal error.",
    run_opts,
};

static const struct cli_opt resume_opts[] = {
    {"workers", "N", "task processes running at once (default $ORCH_WORKERS or CPU count)", 0},
    {"max-output", "BYTES", "output kept per task attempt, the tail (default 1048576)", 0},
    {"kill-grace", "DURATION", "SIGTERM to SIGKILL grace on timeout/cancel (default 10s)", 0},
    {"shutdown-grace", "DURATION",
     "on SIGTERM/SIGINT, how long running tasks may finish (default $ORCH_SHUTDOWN_GRACE or 30s)",
     0},
    {"task-user", "USER", "run command tasks as this user (orch runs as root; default $ORCH_TASK_USER)", 0},
    {"json", NULL, "print the finished executions as JSON on stdout", 0},
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd resume_cmd = {
    "resume", "[ID]",
    "Continue unfinished executions after a crash: finished tasks are kept, tasks that\n"
    "were running are run again (the lost attempt is recorded). Without ID, every\n"
    "unfinished execution of the data directory not owned by a live process.\n"
    "SIGTERM/SIGINT stops as a server does: running tasks may finish within the shutdown\n"
    "grace, then they are interrupted and left for the next 'orch resume' (exit status 8);\n"
    "a second signal ends the grace.",
    resume_opts,
};

/* ------------------------------------------------------------------ progress */

struct progress {
    int tty;
    int shown;
    int64_t start_ms;
    char line[256];
    size_t total, done, running;
    char current[128];
};

static struct progress *g_progress;
static struct engine *g_engine;
static void observe_locked(struct progress *p, const struct engine_event *ev);

static void progress_clear(void)
{
    if (g_progress && g_progress->tty && g_progress->shown) {
        ssize_t w = write(2, "\r\033[K", 4);
        (void)w;
    }
}

static void progress_draw(void)
{
    struct progress *p = g_progress;
    char dur[32];
    int n;
    if (!p || !p->tty || !p->total)
        return;
    clock_fmt_duration(clock_now_ms() - p->start_ms, dur, sizeof(dur));
    n = snprintf(p->line, sizeof(p->line), "\r\033[K[%zu/%zu] %zu running%s%s  %s", p->done,
                 p->total, p->running, p->current[0] ? ": " : "", p->current, dur);
    if (n > 0) {
        ssize_t w = write(2, p->line, strlen(p->line));
        (void)w;
        p->shown = 1;
    }
}

/*
 * The line is also redrawn every PROGRESS_TICK_MS by a thread of its own, so
 * that its clock moves while tasks run without events. g_progress_mu orders
 * the writes of that thread, of the observer and of log lines (the log hooks
 * hold it from before a log line is written until the line is redrawn).
 */
#define PROGRESS_TICK_MS 200
static pthread_mutex_t g_progress_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_tick_cond = PTHREAD_COND_INITIALIZER;
static pthread_t g_tick_thread;
static int g_tick_running, g_tick_stop;

static void hook_before_log(void)
{
    pthread_mutex_lock(&g_progress_mu);
    progress_clear();
}

static void hook_after_log(void)
{
    progress_draw();
    pthread_mutex_unlock(&g_progress_mu);
}

static void *tick_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_progress_mu);
    while (!g_tick_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += PROGRESS_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g_tick_cond, &g_progress_mu, &ts);
        if (!g_tick_stop && g_progress && g_progress->shown)
            progress_draw();
    }
    pthread_mutex_unlock(&g_progress_mu);
    return NULL;
}

static void tick_start(void)
{
    g_tick_stop = 0;
    g_tick_running = pthread_create(&g_tick_thread, NULL, tick_main, NULL) == 0;
}

static void tick_stop(void)
{
    if (!g_tick_running)
        return;
    pthread_mutex_lock(&g_progress_mu);
    g_tick_stop = 1;
    pthread_cond_signal(&g_tick_cond);
    pthread_mutex_unlock(&g_progress_mu);
    pthread_join(g_tick_thread, NULL);
    g_tick_running = 0;
}

static void observe(void *arg, const struct engine_event *ev)
{
    struct progress *p = arg;
    pthread_mutex_lock(&g_progress_mu);
    observe_locked(p, ev);
    pthread_mutex_unlock(&g_progress_mu);
}

static void observe_locked(struct progress *p, const struct engine_event *ev)
{
    p->total = ev->tasks_total;
    p->done = ev->tasks_done;
    p->running = ev->tasks_running;
    if (ev->task && ev->type == ENGINE_EV_TASK_STARTED)
        snprintf(p->current, sizeof(p->current), "%s", ev->task);
    if (ev->type == ENGINE_EV_EXEC_FINISHED) {
        progress_clear();
        p->shown = 0;
        return;
    }
    if (p->tty) {
        progress_clear();
        progress_draw();
    }
}

/*
 * SIGINT/SIGTERM: `orch run` cancels its execution. `orch resume` (g_interrupt)
 * stops as a server does: nothing new starts, running tasks may finish within
 * the shutdown grace, then what still runs is interrupted and left unfinished
 * for the next resume; a second signal ends the grace.
 */
static volatile sig_atomic_t g_interrupt, g_signals;
static int64_t g_grace_ms;

static void on_signal(int sig)
{
    (void)sig;
    if (g_signals < 2)
        g_signals++;
    if (!g_engine)
        return;
    if (g_interrupt)
        engine_request_stop(g_engine, g_signals > 1 ? 0 : g_grace_ms);
    else
        engine_request_cancel_all(g_engine);
}

static void catch_signals(struct engine *eng)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGHUP);
    g_engine = eng;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

/* ------------------------------------------------------------------ summary */

/* The summary of execution `d`, with its workflow's outputs from `st`. */
static void print_summary(struct store *st, const struct exec_detail *d)
{
    struct cli_run_view v;
    struct err err = ERR_INIT;
    int bad;

    memset(&v, 0, sizeof(v));
    v.id = d->exec.id;
    v.status = exec_status_name(d->exec.status);
    v.duration_ms =
        d->exec.finished_at && d->exec.started_at ? d->exec.finished_at - d->exec.started_at : 0;
    v.retry_ms = d->exec.retried_at && d->exec.finished_at >= d->exec.retried_at
                     ? d->exec.finished_at - d->exec.retried_at
                     : -1;
    v.tasks = xcalloc(d->ntasks ? d->ntasks : 1, sizeof(*v.tasks));
    v.ntasks = d->ntasks;
    for (size_t i = 0; i < d->ntasks; i++) {
        const struct task_run_row *t = &d->tasks[i];
        v.tasks[i].name = t->name;
        v.tasks[i].status = task_status_name(t->status);
        v.tasks[i].attempt = t->attempt;
        v.tasks[i].duration_ms =
            t->started_at && t->finished_at ? t->finished_at - t->started_at : -1;
        v.tasks[i].error = t->error ? t->error : "";
        v.tasks[i].instance = t->instance;
        v.counts[t->status]++;
    }
    v.rows = cli_task_order_detail(d, &v.nrows);
    bad = engine_exec_outputs(st, d, &v.outputs, &err) != 0;
    cli_print_run_summary(&v);
    if (bad)
        printf("Outputs: cannot be filled in: %s\n", err.msg);
    cli_run_view_release(&v);
}

/* ------------------------------------------------------------------ shared */

/* An integer setting in lo..hi: 0, or -1 with "invalid WHAT 'V' (use LO..HI UNIT)" printed. */
static int int_setting(const char *v, long long lo, long long hi, const char *what,
                       const char *unit, long long *out)
{
    char *end;
    long long n = strtoll(v, &end, 10);

    if (*end || n < lo || n > hi) {
        cli_error("invalid %s '%s' (use %lld..%lld%s)", what, v, lo, hi, unit);
        return -1;
    }
    *out = n;
    return 0;
}

/* Notifications: ORCH_NOTIFY_URL, _ON, _ATTEMPTS, _BACKOFF and ORCH_PUBLIC_URL. */
static int notify_settings(struct engine_config *cfg)
{
    struct err err = ERR_INIT;
    const char *v = getenv("ORCH_NOTIFY_URL");
    long long n;

    if (v && *v) {
        if (strncasecmp(v, "http://", 7) && strncasecmp(v, "https://", 8)) {
            cli_error("invalid ORCH_NOTIFY_URL: it must start with http:// or https://");
            return -1;
        }
        cfg->notify_url = v;
    }
    v = getenv("ORCH_NOTIFY_ON");
    if (v && *v) {
        char buf[256];
        char *save = NULL, *tok;
        if (strlen(v) >= sizeof(buf)) {
            cli_error("invalid ORCH_NOTIFY_ON: too long");
            return -1;
        }
        snprintf(buf, sizeof(buf), "%s", v);
        cfg->notify_on = 0;
        for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
            unsigned bit = dag_notify_event(tok);
            if (!bit) {
                cli_error("invalid ORCH_NOTIFY_ON: unknown event '%s' (any of failed, timed_out, "
                          "succeeded, cancelled, stuck, comma-separated)", tok);
                return -1;
            }
            cfg->notify_on |= bit;
        }
    }
    v = getenv("ORCH_NOTIFY_ATTEMPTS");
    if (v && *v) {
        if (int_setting(v, 1, 100, "ORCH_NOTIFY_ATTEMPTS", "", &n))
            return -1;
        cfg->notify_attempts = (int)n;
    }
    v = getenv("ORCH_NOTIFY_BACKOFF");
    if (v && *v) {
        int64_t ms;
        if (clock_parse_duration(v, &ms, &err) || ms < 1 || ms > 3600 * 1000) {
            cli_error("invalid ORCH_NOTIFY_BACKOFF: %s", err.code ? err.msg : "use 1ms to 1h");
            return -1;
        }
        cfg->notify_backoff_ms = ms;
    }
    v = getenv("ORCH_PUBLIC_URL");
    if (v && *v) {
        if (strncasecmp(v, "http://", 7) && strncasecmp(v, "https://", 8)) {
            cli_error("invalid ORCH_PUBLIC_URL: it must start with http:// or https://");
            return -1;
        }
        cfg->public_url = v;
    }
    return 0;
}

int cli_engine_settings(const struct cli_args *a, struct engine_config *cfg)
{
    const char *v;
    struct err err = ERR_INIT;
    long long n;

    engine_config_init(cfg);
    v = cli_get(a, "workers");
    if (!v)
        v = getenv("ORCH_WORKERS");
    if (v && *v) {
        if (int_setting(v, 1, 4096, "worker count", "", &n))
            return -1;
        cfg->workers = (int)n;
    }
    v = cli_get(a, "max-output");
    if (!v)
        v = getenv("ORCH_MAX_OUTPUT");
    if (v && *v) {
        if (int_setting(v, 1024, 1LL << 30, "output cap", " bytes", &n))
            return -1;
        cfg->output_cap = (size_t)n;
    }
    cfg->http_allow = getenv("ORCH_HTTP_ALLOW");
    cfg->http_deny = getenv("ORCH_HTTP_DENY");
    {
        struct netpolicy *np = NULL;
        if (netpolicy_new(cfg->http_allow, cfg->http_deny, &np, &err)) {
            cli_error("%s", err.msg);
            return -1;
        }
        netpolicy_free(np);
    }
    v = getenv("ORCH_MAX_TASK_OUTPUT");
    if (v && *v) {
        if (int_setting(v, 64, 16LL << 20, "ORCH_MAX_TASK_OUTPUT", " bytes", &n))
            return -1;
        cfg->task_output_cap = (size_t)n;
    }
    v = cli_get(a, "kill-grace");
    if (!v)
        v = getenv("ORCH_KILL_GRACE");
    if (v && *v) {
        int64_t ms;
        if (clock_parse_duration(v, &ms, &err)) {
            cli_error("invalid kill grace: %s", err.msg);
            return -1;
        }
        cfg->kill_grace_ms = ms;
    }
    v = getenv("ORCH_MAX_LOST_ATTEMPTS");
    if (v && *v) {
        if (int_setting(v, 0, 100, "ORCH_MAX_LOST_ATTEMPTS", "", &n))
            return -1;
        cfg->max_lost_attempts = (int)n;
    }
    if (notify_settings(cfg))
        return -1;
    v = cli_get(a, "task-user");
    if (!v)
        v = getenv("ORCH_TASK_USER");
    if (v && *v) {
        struct passwd *pw = getpwnam(v);
        if (!pw) {
            cli_error("no user '%s' (--task-user)", v);
            return -1;
        }
        if (geteuid() != 0) {
            cli_error("--task-user '%s' needs orch to run as root", v);
            return -1;
        }
        cfg->task_user = 1;
        cfg->task_uid = pw->pw_uid;
        cfg->task_gid = pw->pw_gid;
    }
    /* Task outputs in the data directory, not in a $TMPDIR shared with other
     * users (on PostgreSQL, when a data directory is named). */
    if (!cli_database_url(a) || cli_get(a, "data-dir") || getenv("ORCH_DATA_DIR")) {
        static char outputs[4096];
        const char *dir = cli_data_dir(a);
        if ((size_t)snprintf(outputs, sizeof(outputs), "%s/outputs", dir) >= sizeof(outputs)) {
            cli_error("data directory path is too long");
            return -1;
        }
        if (cli_database_url(a))
            mkdir(dir, 0700); /* SQLite's store creates it; on PostgreSQL, here */
        cfg->output_dir = outputs;
    }
    v = getenv("ORCH_RETENTION");
    if (v && *v) {
        int64_t ms;
        if (clock_parse_duration(v, &ms, &err)) {
            cli_error("invalid ORCH_RETENTION: %s", err.msg);
            return -1;
        }
        cfg->retention_ms = ms; /* 0 keeps finished executions forever */
    }
    return 0;
}

/* Run the engine until its executions end; print their results. */
/*
 * Run the engine until its executions end; print their results. With
 * `timing`, print the seconds from `t0` (just before the submission) to the
 * end of the run on stderr: what a client sees, without process start-up.
 */
static int run_engine(struct engine *eng, struct store *st, char **ids, size_t nids, int json,
                      int64_t t0, int timing)
{
    struct err err = ERR_INIT;
    int rc, code = EXIT_OK;

    catch_signals(eng);
    signal(SIGPIPE, SIG_IGN);

    rc = engine_run(eng, &err);
    tick_stop();
    if (timing)
        fprintf(stderr, "submit-to-complete %.6f s\n", (double)(clock_mono_ns() - t0) / 1e9);
    progress_clear();
    g_engine = NULL;
    if (rc) {
        cli_error("%s", err.msg);
        return EXIT_INTERNAL;
    }
    for (size_t i = 0; i < nids; i++) {
        struct exec_detail *d = NULL;
        int c;
        if (store_execution_get(st, ids[i], &d, &err)) {
            cli_error("%s", err.msg);
            return EXIT_INTERNAL;
        }
        if (g_interrupt && !exec_status_is_final(d->exec.status)) {
            /* Stopped by a signal: left, unfinished, for the next resume. */
            size_t nfinal = 0;
            for (size_t k = 0; k < d->ntasks; k++)
                nfinal += task_status_is_final(d->tasks[k].status) != 0;
            if (json) {
                json_t *j = cli_exec_json(st, d);
                cli_print_json(j);
                json_decref(j);
            } else {
                printf("%sExecution %s interrupted (%zu of %zu task%s final): 'orch resume' "
                       "continues it\n", i ? "\n" : "", d->exec.id, nfinal, d->ntasks,
                       d->ntasks == 1 ? "" : "s");
            }
            code = EXIT_INTERRUPTED;
            exec_detail_free(d);
            continue;
        }
        if (json) {
            json_t *j = cli_exec_json(st, d);
            cli_print_json(j);
            json_decref(j);
        } else {
            if (i)
                printf("\n");
            print_summary(st, d);
        }
        c = cli_exit_for_status(d->exec.status);
        if (c > code && code != EXIT_INTERRUPTED)
            code = c;
        exec_detail_free(d);
    }
    fflush(stdout);
    return code;
}

/* The params object text from --param K=V (see cli_params_json). */
static char *params_from_args(const struct cli_args *a, const struct workflow *wf,
                              int *out_exit)
{
    json_t *o = cli_params_json(a, wf, out_exit);
    char *s;
    if (!o)
        return NULL;
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

static int setup(const struct cli_args *a, struct store **st, struct engine **eng,
                 struct owner **own, struct progress *prog)
{
    struct engine_config cfg;
    struct err err = ERR_INIT;

    if (cli_engine_settings(a, &cfg))
        return EXIT_USAGE;
    if (cli_open_store(a, 1, st))
        return EXIT_INTERNAL;
    if (!cli_database_url(a)) {
        *own = owner_new(cli_data_dir(a));
        cfg.claim = owner_claim;
        cfg.release = owner_release;
        cfg.owner_arg = *own;
    }
    if (engine_new(*st, &cfg, eng, &err)) {
        cli_error("%s", err.msg);
        return EXIT_INTERNAL;
    }
    if (cli_database_url(a)) {
        /* On a shared database this process is a node too: it owns what it
         * runs, renews its lease, and is fenced like any other. */
        static char node_id[128];
        struct engine_node nd;
        if (cli_node_settings(a, &nd, node_id, sizeof(node_id)))
            return EXIT_USAGE;
        nd.cluster = 1;
        nd.claim_work = 0;
        if (cli_node_register(*st, &nd, "run", 0)) /* takes no work of others */
            return EXIT_INTERNAL;
        if (engine_set_node(*eng, &nd, &err)) {
            cli_error("%s", err.msg);
            return EXIT_INTERNAL;
        }
    }
    memset(prog, 0, sizeof(*prog));
    prog->tty = isatty(2) && !getenv("ORCH_NO_PROGRESS");
    prog->start_ms = clock_now_ms();
    g_progress = prog;
    log_set_hooks(hook_before_log, hook_after_log);
    engine_set_observer(*eng, observe, prog);
    if (prog->tty)
        tick_start();
    return 0;
}

static void teardown(struct store *st, struct engine *eng, struct owner *own)
{
    tick_stop();
    log_set_hooks(NULL, NULL);
    g_progress = NULL;
    if (eng)
        engine_node_stop(eng);
    engine_free(eng);
    owner_free(own);
    store_free(st);
}

int cmd_run(int argc, char **argv)
{
    struct cli_args a;
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct dag_yaml_map pos = DAG_YAML_MAP_INIT;
    struct workflow *wf = NULL;
    struct store *st = NULL;
    struct engine *eng = NULL;
    struct owner *own = NULL;
    struct progress prog;
    struct err err = ERR_INIT;
    char *def = NULL, *params = NULL;
    char id[ID_MAX];
    char *ids[1];
    size_t len;
    int64_t t0;
    int code, rc;

    rc = cli_parse(&run_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos != 1) {
        cli_error("'orch run' needs exactly one workflow file (see 'orch run --help')");
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(&a))
        return EXIT_USAGE;
    def = cli_read_definition(a.pos[0], &len, &code, &pos);
    if (!def)
        return code;
    if (dag_parse(def, len, &wf, &probs)) {
        cli_print_problems(a.pos[0], &probs, &pos);
        dag_problems_release(&probs);
        dag_yaml_map_release(&pos);
        free(def);
        return EXIT_INVALID;
    }
    dag_yaml_map_release(&pos);
    if (strlen(def) != len) {
        cli_error("invalid workflow '%s': contains a NUL byte", a.pos[0]);
        workflow_free(wf);
        free(def);
        return EXIT_INVALID;
    }
    params = params_from_args(&a, wf, &code);
    workflow_free(wf);
    if (!params) {
        free(def);
        return code;
    }
    code = setup(&a, &st, &eng, &own, &prog);
    if (code)
        goto out;
    t0 = clock_mono_ns();
    rc = engine_submit(eng, def, params, id, &err);
    if (rc) {
        cli_error("%s", err.msg);
        code = cli_exit_for_err(rc);
        goto out;
    }
    ids[0] = id;
    code = run_engine(eng, st, ids, 1, cli_flag(&a, "json"), t0, cli_flag(&a, "timing"));
out:
    teardown(st, eng, own);
    free(def);
    free(params);
    return code;
}

int cmd_resume(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct engine *eng = NULL;
    struct owner *own = NULL;
    struct progress prog;
    struct err err = ERR_INIT;
    char **ids = NULL, **taken = NULL;
    size_t nids = 0, ntaken = 0;
    int code, rc;

    rc = cli_parse(&resume_cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos > 1) {
        cli_error("'orch resume' takes at most one execution id");
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(&a))
        return EXIT_USAGE;
    {
        const char *v = cli_get(&a, "shutdown-grace");
        if (!v)
            v = getenv("ORCH_SHUTDOWN_GRACE");
        g_grace_ms = DEFAULT_SHUTDOWN_GRACE_MS;
        if (v && *v && clock_parse_duration(v, &g_grace_ms, &err)) {
            cli_error("invalid shutdown grace: %s", err.msg);
            return EXIT_USAGE;
        }
    }
    code = setup(&a, &st, &eng, &own, &prog);
    if (code)
        goto out;
    /* A signal from here on stops the resume; it cancels nothing. */
    g_interrupt = 1;
    catch_signals(eng);
    if (a.npos == 1) {
        ids = xcalloc(1, sizeof(*ids));
        ids[0] = xstrdup(a.pos[0]);
        nids = 1;
    } else if (store_executions_unfinished(st, &ids, &nids, &err)) {
        cli_error("%s", err.msg);
        code = EXIT_INTERNAL;
        goto out;
    }
    taken = xcalloc(nids ? nids : 1, sizeof(*taken));
    for (size_t i = 0; i < nids && !g_signals; i++) {
        rc = engine_resume(eng, ids[i], &err);
        if (rc == 0) {
            taken[ntaken++] = ids[i];
            continue;
        }
        if (a.npos == 1) {
            cli_error("%s", err.msg);
            code = rc == ERR_CONFLICT || rc == ERR_BUSY ? EXIT_FAILED : cli_exit_for_err(rc);
            goto out;
        }
        /* Without an id, executions owned by a live process are left alone. */
        log_info("Engine", "Execution %s not resumed: %s", ids[i], err.msg);
    }
    if (!ntaken && g_signals) {
        code = EXIT_INTERRUPTED; /* stopped before it took any */
        goto out;
    }
    if (!ntaken) {
        if (!cli_flag(&a, "json"))
            printf("No unfinished executions to resume.\n");
        code = EXIT_OK;
        goto out;
    }
    code = run_engine(eng, st, taken, ntaken, cli_flag(&a, "json"), 0, 0);
out:
    teardown(st, eng, own);
    for (size_t i = 0; i < nids; i++)
        free(ids[i]);
    free(ids);
    free(taken);
    return code;
}

/* How long `orch cancel` waits for the owner to cancel (as the API's 202 rule). */
#define CANCEL_WAIT_MS 5000

/*
 * A live orch process (`orch run`, `orch resume`, `orch server`) on this data
 * directory runs the execution: record the request in the store, where the
 * owner's engine reads it (engine__cancel_poll), and wait for the cancel.
 */
static int cancel_through_owner(const struct cli_args *a, struct store *st, const char *id)
{
    struct err err = ERR_INIT;
    int64_t until = clock_mono_ms() + CANCEL_WAIT_MS;
    int json = cli_flag(a, "json");

    if (store_execution_request_cancel(st, id, clock_now_ms(), &err)) {
        cli_error("%s", err.msg);
        return err.code == ERR_CONFLICT ? EXIT_FAILED : cli_exit_for_err(err.code);
    }
    for (;;) {
        struct exec_detail *d = NULL;
        enum exec_status status;

        if (store_execution_get(st, id, &d, &err)) {
            cli_error("%s", err.msg);
            return cli_exit_for_err(err.code);
        }
        status = d->exec.status;
        exec_detail_free(d);
        if (exec_status_is_final(status)) {
            if (json)
                printf("{\"id\": \"%s\", \"status\": \"%s\"}\n", id, exec_status_name(status));
            else if (status == EXEC_CANCELLED)
                printf("Execution %s cancelled by the orch process that runs it\n", id);
            else
                printf("Execution %s %s before the cancel was applied\n", id,
                       exec_status_name(status));
            return status == EXEC_CANCELLED ? EXIT_OK : EXIT_FAILED;
        }
        if (clock_mono_ms() >= until || g_signals)
            break;
        usleep(100 * 1000);
    }
    if (json)
        printf("{\"id\": \"%s\", \"status\": \"cancel_requested\"}\n", id);
    else
        printf("Cancel of execution %s recorded: the orch process that runs it will cancel it\n",
               id);
    return EXIT_OK;
}

int cli_local_exec_action(const struct cli_args *a, const char *action)
{
    struct store *st = NULL;
    struct engine *eng = NULL;
    struct owner *own = NULL;
    struct progress prog;
    struct err err = ERR_INIT;
    char id[ID_MAX], *ids[1];
    int code, rc, cancel = !strcmp(action, "cancel");

    if (cli_database_url(a)) {
        cli_error("'orch %s' on a PostgreSQL database goes through a server: pass --server URL "
                  "or set ORCH_SERVER",
                  action);
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(a))
        return EXIT_USAGE;
    {
        struct stat sb;
        if (stat(cli_data_dir(a), &sb) != 0) {
            cli_error("no data directory at '%s' (pass --data-dir, or --server URL for a server)",
                      cli_data_dir(a));
            return EXIT_NOT_FOUND;
        }
    }
    g_grace_ms = DEFAULT_SHUTDOWN_GRACE_MS;
    code = setup(a, &st, &eng, &own, &prog);
    if (code)
        goto out;
    code = cli_resolve_exec(st, a->pos[0], cli_get(a, "workflow"), id);
    if (code)
        goto out;
    /* Take the execution over as `orch resume` does: the lock file of a live
     * owner (an `orch run`, `orch resume` or `orch server` on this data
     * directory) refuses it. */
    rc = cancel ? engine_resume(eng, id, &err) : engine_retry(eng, id, &err);
    if (rc == ERR_BUSY && cancel) {
        code = cancel_through_owner(a, st, id);
        goto out;
    }
    if (rc == ERR_BUSY) {
        /* A finished execution has no owner: this one still runs. */
        cli_error("execution %s is still being run by another orch process on '%s': "
                  "cancel it first ('orch cancel %s')",
                  id, cli_data_dir(a), id);
        code = EXIT_FAILED;
        goto out;
    }
    if (rc) {
        cli_error("%s", err.msg);
        code = rc == ERR_CONFLICT ? EXIT_FAILED : cli_exit_for_err(rc);
        goto out;
    }
    if (cancel && engine_cancel(eng, id, &err)) {
        cli_error("%s", err.msg);
        code = EXIT_INTERNAL;
        goto out;
    }
    if (!cli_flag(a, "json"))
        printf("Execution %s %s\n", id,
               cancel ? "cancelled (no live process owned it)"
                      : "retried here: failed tasks run again in this process");
    fflush(stdout);
    /* A signal stops a retry as it stops `orch resume`: left for the next resume. */
    g_interrupt = !cancel;
    ids[0] = id;
    code = run_engine(eng, st, ids, 1, cli_flag(a, "json"), 0, 0);
    if (cancel && code == EXIT_CANCELLED)
        code = EXIT_OK;
out:
    teardown(st, eng, own);
    return code;
}
