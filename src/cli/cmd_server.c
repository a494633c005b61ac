/*
 * cmd_server.c - `orch server`: the HTTP API, the engine and its workers in
 * one process on the data directory (wiring only).
 *
 * The engine's loop runs on this (main) thread; the API's HTTP threads talk
 * to it through engine_post_*(). SIGTERM/SIGINT: stop accepting connections,
 * let running tasks finish for the shutdown grace, then the engine records
 * what is still running as lost (the next start resumes it) and returns;
 * then the HTTP side stops. A second signal ends the grace at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "auth/auth.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/redis.h"
#include "base/sdnotify.h"
#include "base/xalloc.h"
#include "cli.h"
#include "dag/dag.h"
#include "engine/engine.h"
#include "engine/monitor.h"

#include "base/banned.h"

#define DEFAULT_SHUTDOWN_GRACE_MS 30000
#define REDIS_START_TIMEOUT_MS    2000 /* the check at start: connect, AUTH, PING */

/* The options of every node: the engine, its workers, its name and lease. */
#define NODE_OPTS                                                                                  \
    {"workers", "N", "task processes running at once (default $ORCH_WORKERS or CPU count)", 0},    \
        {"max-output", "BYTES", "output kept per task attempt, the tail (default 1048576)", 0},    \
        {"kill-grace", "DURATION", "SIGTERM to SIGKILL grace on timeout/cancel (default 10s)", 0}, \
        {"task-user", "USER",                                                                      \
         "run command tasks as this user (orch runs as root; default $ORCH_TASK_USER)", 0},       \
        {"shutdown-grace", "DURATION",                                                             \
         "on SIGTERM/SIGINT, how long running tasks may finish (default $ORCH_SHUTDOWN_GRACE "    \
         "or 30s)",                                                                                \
         0},                                                                                       \
        {"node", "NAME",                                                                           \
         "this node's name among the nodes of the store (default $ORCH_NODE or host:pid)", 0},     \
        {"lease", "DURATION",                                                                      \
         "a node silent this long loses its executions to the others (default $ORCH_LEASE or "    \
         "30s)",                                                                                   \
         0},                                                                                       \
        {"metrics-listen", "ADDR",                                                                 \
         "also serve GET /metrics (Prometheus) alone on this address (default "                   \
         "$ORCH_METRICS_LISTEN or none)",                                                          \
         0},                                                                                       \
        {"metrics-auth", "none|key",                                                               \
         "whether GET /metrics needs an API key with the read scope (default $ORCH_METRICS_AUTH " \
         "or key)",                                                                                \
         0},                                                                                       \
        {"redis-url", "URL",                                                                       \
         "Redis beside PostgreSQL, the nodes' fast path: redis://[:PASSWORD@]HOST[:PORT][/DB] "   \
         "or unix:///PATH[?db=N] (default $ORCH_REDIS_URL, else $REDIS_URL)",                     \
         0}

static const struct cli_opt server_opts[] = {
    {"listen", "ADDR", "address to listen on (default $ORCH_LISTEN or 127.0.0.1:8080)", 0},
    {"http-threads", "N",
     "threads answering HTTP requests (default $ORCH_HTTP_THREADS or CPU count)", 0},
    {"tls-cert", "FILE",
     "serve HTTPS with this PEM certificate (chain) (default $ORCH_TLS_CERT; needs --tls-key)", 0},
    {"tls-key", "FILE", "the PEM private key of --tls-cert (default $ORCH_TLS_KEY)", 0},
    {"register", "PATH",
     "register a workflow definition file, or every *.json, *.yaml and *.yml in a directory "
     "(repeatable; again on SIGHUP)",
     1},
    {"watch", NULL,
     "reload a --register definition when its file changes (one that does not validate keeps "
     "the previous version)",
     0},
    {"no-ui", NULL, "do not serve the web pages at / (default: served, unless $ORCH_UI=off)", 0},
    NODE_OPTS,
    {NULL, NULL, NULL, 0},
};

static const struct cli_opt worker_opts[] = {
    NODE_OPTS,
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd worker_cmd = {
    "worker",
    NULL,
    "Run the engine and its workers, without the HTTP API, as one more node on the\n"
    "PostgreSQL database of --database-url or $DATABASE_URL: it claims queued executions\n"
    "and those of nodes that died, and may fire the schedules when it holds their lease.",
    worker_opts,
};

static const struct cli_cmd server_cmd = {
    "server",
    NULL,
    "Run the HTTP API (/v1), the engine and its workers on the local data directory (or,\n"
    "with $DATABASE_URL, as one node of several on a PostgreSQL database).\n"
    "Every endpoint except /v1/health/scheduler, /v1/health/live and /v1/health/ready\n"
    "needs 'Authorization: Bearer <key>';\n"
    "create a key with 'orch keys create --name admin --scope admin'. Environment:\n"
    "ORCH_HTTP_TIMEOUT (idle connection timeout, 30s), ORCH_MAX_BODY (bytes, 4 MiB + 64 KiB),\n"
    "ORCH_HTTP_THREADS (CPU count), ORCH_MAX_FOLLOWERS (log streams open at once, 256),\n"
    "ORCH_AUTH_FAIL_LIMIT (failed authentications per client\n"
    "and window before 429, 20; 0 = none), ORCH_AUTH_FAIL_WINDOW (1m). On PostgreSQL\n"
    "($DATABASE_URL): ORCH_DB_POOL_SIZE (connections of the HTTP threads, 10) and\n"
    "ORCH_DB_POOL_TIMEOUT (how long a request waits for one before 503, 5s).\n"
    "Against slow clients: ORCH_HTTP_CONNECTIONS_PER_ADDRESS (64; 0 = none),\n"
    "ORCH_HTTP_HEAD_TIMEOUT (time for a request's line and headers, 10s); behind a reverse\n"
    "proxy, ORCH_TRUSTED_PROXIES (its addresses or CIDRs: X-Forwarded-For names the client).\n"
    "GET /metrics (Prometheus) needs a read key unless --metrics-auth none.",
    server_opts,
};

/* ------------------------------------------------------------------ signals */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int saved = errno;
    ssize_t w = write(sig_pipe[1], &b, 1);
    (void)w;
    errno = saved;
}

struct watcher {
    struct api_server *srv;
    struct engine *eng;
    int64_t grace_ms;
    const struct cli_args *args; /* its --register paths: registered again on SIGHUP */
    const char *monitor_dir;     /* the resource monitor's directory: its thresholds too */
};

/* SIGHUP: register the definitions of every --register path again (a changed
 * file becomes a new version; one that does not validate is reported and
 * keeps its version), then have the scheduler re-read them. */
static void reload(struct watcher *w)
{
    struct store *st = NULL;
    int n = 0, failed = 0;

    sdnotify_send("RELOADING=1");
    log_info("API", "Received SIGHUP: %s",
             cli_get(w->args, "register") ? "registering the workflow definitions again"
                                          : "re-reading the schedules (no --register paths)");
    for (int i = 0; i < w->args->nvals; i++) {
        if (strcmp(w->args->vals[i].opt->name, "register"))
            continue;
        if (!st && cli_open_store(w->args, 1, &st))
            break;
        n++;
        if (cli_reload_path(st, w->args->vals[i].value) != EXIT_OK)
            failed++;
    }
    store_free(st);
    if (failed)
        log_warn("API",
                 "Reload: %d of %d --register paths had problems (their previous "
                 "versions are kept)",
                 failed, n);
    engine_schedules_changed(w->eng);
    {
        /* The resource monitor's thresholds, from the config file read again. */
        struct engine_monitor_config mcfg;
        struct err merr = ERR_INIT;
        if (cli_config_reread() != 0)
            log_warn("API", "Reload: the config file has problems: the resource monitor keeps "
                     "its thresholds");
        else if (cli_monitor_settings(w->monitor_dir, &mcfg, &merr) != 0)
            log_warn("API", "Reload: %s: the resource monitor keeps its thresholds", merr.msg);
        else
            engine_monitor_configure(w->eng, &mcfg);
    }
    sdnotify_send("READY=1");
}

/* Turns signals into a graceful stop; a 0 byte on the pipe ends it. */
static void *watcher_main(void *arg)
{
    struct watcher *w = arg;
    int seen = 0;

    for (;;) {
        unsigned char b;
        ssize_t n = read(sig_pipe[0], &b, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || b == 0)
            break;
        if (b == SIGHUP) {
            if (!seen)
                reload(w);
            continue;
        }
        if (seen++ == 0) {
            sdnotify_send("STOPPING=1");
            char grace[32];
            clock_fmt_duration(w->grace_ms, grace, sizeof(grace));
            log_info(w->srv ? "API" : "Engine",
                     "Received %s: shutting down (running tasks may finish within %s; "
                     "send it again to stop now)",
                     b == SIGINT ? "SIGINT" : "SIGTERM", grace);
            if (w->srv)
                api_server_quiesce(w->srv);
            engine_request_stop(w->eng, w->grace_ms);
        } else {
            log_warn(w->srv ? "API" : "Engine", "Received %s again: stopping running tasks now",
                     b == SIGINT ? "SIGINT" : "SIGTERM");
            engine_request_stop(w->eng, 0);
        }
    }
    return NULL;
}

static void watchdog_ping(void *arg)
{
    (void)arg;
    sdnotify_send("WATCHDOG=1");
}

/* ------------------------------------------------------------------ settings */

static int env_duration(const char *flag_value, const char *env, int64_t def, const char *what,
                        int64_t *out)
{
    const char *v = flag_value ? flag_value : getenv(env);
    struct err err = ERR_INIT;

    *out = def;
    if (!v || !*v)
        return 0;
    if (clock_parse_duration(v, out, &err)) {
        cli_error("invalid %s: %s", what, err.msg);
        return -1;
    }
    return 0;
}

static int env_int(const char *env, long min, long max, long *out)
{
    const char *v = getenv(env);
    char *end;
    long n;

    if (!v || !*v)
        return 0;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || *end || n < min || n > max) {
        cli_error("invalid %s '%s' (use %ld to %ld)", env, v, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

static int api_settings(const struct cli_args *a, struct api_config *cfg, int64_t *grace_ms)
{
    int64_t ms;
    long n;

    if (a->cmd == &worker_cmd) {
        api_config_init(cfg);
        return env_duration(cli_get(a, "shutdown-grace"), "ORCH_SHUTDOWN_GRACE",
                            DEFAULT_SHUTDOWN_GRACE_MS, "shutdown grace", grace_ms);
    }
    api_config_init(cfg);
    cfg->listen = cli_get(a, "listen");
    if (!cfg->listen || !*cfg->listen)
        cfg->listen = getenv("ORCH_LISTEN");
    if (!cfg->listen || !*cfg->listen)
        cfg->listen = API_DEFAULT_LISTEN;
    if (env_duration(NULL, "ORCH_HTTP_TIMEOUT", (int64_t)API_DEFAULT_TIMEOUT_S * 1000,
                     "ORCH_HTTP_TIMEOUT", &ms))
        return -1;
    if (ms < 1000 || ms > 3600 * 1000) {
        cli_error("invalid ORCH_HTTP_TIMEOUT (use 1s to 1h)");
        return -1;
    }
    cfg->timeout_s = (int)(ms / 1000);
    n = (long)cfg->max_body;
    if (env_int("ORCH_MAX_BODY", 1024, 1L << 30, &n))
        return -1;
    cfg->max_body = (size_t)n;
    n = 0;
    if (cli_get(a, "http-threads")) {
        const char *v = cli_get(a, "http-threads");
        char *end;
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || !*v || *end || n < 1 || n > 256) {
            cli_error("invalid --http-threads '%s' (use 1 to 256)", v);
            return -1;
        }
    } else if (env_int("ORCH_HTTP_THREADS", 1, 256, &n)) {
        return -1;
    }
    cfg->threads = (int)n;
    /* Read by the log streams themselves (handlers_executions.c); checked here. */
    n = 0;
    if (env_int("ORCH_MAX_FOLLOWERS", 1, 1000000, &n))
        return -1;
    n = API_DEFAULT_POOL_SIZE;
    if (env_int("ORCH_DB_POOL_SIZE", 1, 1000, &n))
        return -1;
    cfg->pool_size = (int)n;
    if (env_duration(NULL, "ORCH_DB_POOL_TIMEOUT", API_DEFAULT_POOL_TIMEOUT_MS,
                     "ORCH_DB_POOL_TIMEOUT", &cfg->pool_timeout_ms))
        return -1;
    if (cfg->pool_timeout_ms < 1 || cfg->pool_timeout_ms > 600000) {
        cli_error("invalid ORCH_DB_POOL_TIMEOUT (use 1ms to 10m)");
        return -1;
    }
    n = cfg->auth_fail_limit;
    if (env_int("ORCH_AUTH_FAIL_LIMIT", 0, 1000000, &n))
        return -1;
    cfg->auth_fail_limit = (int)n;
    if (env_duration(NULL, "ORCH_AUTH_FAIL_WINDOW", API_DEFAULT_AUTH_FAIL_WINDOW_MS,
                     "ORCH_AUTH_FAIL_WINDOW", &cfg->auth_fail_window_ms))
        return -1;
    if (cfg->auth_fail_window_ms < 1000) {
        cli_error("invalid ORCH_AUTH_FAIL_WINDOW (use at least 1s)");
        return -1;
    }
    n = cfg->conns_per_address;
    if (env_int("ORCH_HTTP_CONNECTIONS_PER_ADDRESS", 0, 100000, &n))
        return -1;
    cfg->conns_per_address = (int)n;
    if (env_duration(NULL, "ORCH_HTTP_HEAD_TIMEOUT", API_DEFAULT_HEAD_TIMEOUT_MS,
                     "ORCH_HTTP_HEAD_TIMEOUT", &cfg->head_timeout_ms))
        return -1;
    if (cfg->head_timeout_ms < 1000 || cfg->head_timeout_ms > 3600 * 1000) {
        cli_error("invalid ORCH_HTTP_HEAD_TIMEOUT (use 1s to 1h)");
        return -1;
    }
    cfg->trusted_proxies = getenv("ORCH_TRUSTED_PROXIES");
    cfg->tls_cert = cli_get(a, "tls-cert");
    if (!cfg->tls_cert || !*cfg->tls_cert)
        cfg->tls_cert = getenv("ORCH_TLS_CERT");
    cfg->tls_key = cli_get(a, "tls-key");
    if (!cfg->tls_key || !*cfg->tls_key)
        cfg->tls_key = getenv("ORCH_TLS_KEY");
    if (cfg->tls_cert && !*cfg->tls_cert)
        cfg->tls_cert = NULL;
    if (cfg->tls_key && !*cfg->tls_key)
        cfg->tls_key = NULL;
    if (cli_flag(a, "no-ui")) {
        cfg->no_ui = 1;
    } else {
        const char *v = getenv("ORCH_UI");
        if (v && *v) {
            if (!strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false")) {
                cfg->no_ui = 1;
            } else if (strcmp(v, "on") && strcmp(v, "1") && strcmp(v, "true")) {
                cli_error("invalid ORCH_UI '%s' (use on or off)", v);
                return -1;
            }
        }
    }
    if (!cfg->tls_cert != !cfg->tls_key) {
        cli_error("HTTPS needs both a certificate and its key: %s",
                  cfg->tls_cert ? "add --tls-key FILE (or ORCH_TLS_KEY)"
                                : "add --tls-cert FILE (or ORCH_TLS_CERT)");
        return -1;
    }
    return env_duration(cli_get(a, "shutdown-grace"), "ORCH_SHUTDOWN_GRACE",
                        DEFAULT_SHUTDOWN_GRACE_MS, "shutdown grace", grace_ms);
}


/* --metrics-listen and --metrics-auth (or their settings). */
static int metrics_settings(const struct cli_args *a, const char **addr, int *auth)
{
    const char *v = cli_get(a, "metrics-auth");

    *addr = cli_get(a, "metrics-listen");
    if (!*addr || !**addr)
        *addr = getenv("ORCH_METRICS_LISTEN");
    if (*addr && !**addr)
        *addr = NULL;
    if (!v || !*v)
        v = getenv("ORCH_METRICS_AUTH");
    if (!v || !*v || !strcmp(v, "key")) {
        *auth = API_METRICS_AUTH_KEY;
    } else if (!strcmp(v, "none")) {
        *auth = API_METRICS_AUTH_NONE;
    } else {
        cli_error("invalid --metrics-auth '%s' (use none, or key: an API key with the read "
                  "scope)",
                  v);
        return -1;
    }
    return 0;
}

/* The --metrics-listen port: GET /metrics alone. */
static int metrics_start(const struct cli_args *a, const char *addr, int auth, const char *dir,
                         struct engine *eng, const struct engine_node *nd,
                         struct api_server *main_srv, struct api_server **out)
{
    struct api_config mcfg;
    struct err err = ERR_INIT;

    api_config_init(&mcfg);
    mcfg.listen = addr;
    mcfg.data_dir = dir;
    mcfg.store_location = cli_store_location(a);
    mcfg.engine = eng;
    mcfg.node = nd->id;
    mcfg.lease_ms = nd->lease_ms;
    mcfg.threads = 1;
    mcfg.pool_size = 2;
    mcfg.metrics_only = 1;
    mcfg.metrics_auth = auth;
    mcfg.metrics_of = main_srv;
    if (api_server_start(&mcfg, out, &err)) {
        cli_error("--metrics-listen: %s", err.msg);
        return err.code == ERR_INVALID ? EXIT_USAGE : EXIT_INTERNAL;
    }
    log_info(main_srv ? "API" : "Engine", "Metrics: %s/metrics (%s)", api_server_url(*out),
             auth == API_METRICS_AUTH_NONE ? "no key needed"
                                           : "an API key with the read scope needed");
    return EXIT_OK;
}

/* ------------------------------------------------------------------ the command */

/* Take over the executions a previous process left unfinished. */
static int resume_unfinished(struct store *st, struct engine *eng)
{
    struct err err = ERR_INIT;
    char **ids = NULL;
    size_t nids = 0, taken = 0;

    if (store_executions_unfinished(st, &ids, &nids, &err)) {
        cli_error("%s", err.msg);
        return -1;
    }
    for (size_t i = 0; i < nids; i++) {
        if (engine_resume(eng, ids[i], &err) == 0)
            taken++;
        else
            log_info("Engine", "Execution %s not resumed: %s", ids[i], err.msg);
        free(ids[i]);
    }
    free(ids);
    if (nids)
        log_info("Engine", "Resumed %zu of %zu unfinished executions", taken, nids);
    return 0;
}

/*
 * Redis (ORCH_REDIS_URL): a URL that does not parse stops the start with a
 * usage error (rediss:// goes through a local TLS tunnel: base/redis.h); on
 * the data directory's SQLite (one node) it is ignored, with a warning. Then one try
 * to connect, to say at start whether it answers: unreachable or refusing the
 * password, the node starts all the same, on PostgreSQL alone until Redis
 * answers (the engine and the API try again on their own). Messages name the
 * URL without its password. 1 when `t` is to be used, 0 when not, -1 on a
 * usage error.
 */
static int redis_settings(const struct cli_args *a, int on_postgres, struct redis_target *t)
{
    const char *url = cli_redis_url(a);
    struct err err = ERR_INIT;
    redisContext *c;

    if (!url)
        return 0;
    if (redis_target_parse(url, t, &err)) {
        cli_error("invalid Redis URL (--redis-url or $ORCH_REDIS_URL): %s", err.msg);
        return -1;
    }
    if (!on_postgres) {
        log_warn("Redis", "%s is not used: Redis serves the nodes of a PostgreSQL store "
                 "($DATABASE_URL), and the data directory's SQLite has one node",
                 t->shown);
        redis_target_free(t);
        return 0;
    }
    c = redis_connect_sync(t, REDIS_START_TIMEOUT_MS, &err);
    if (!c) {
        log_warn("Redis", "%s; running on PostgreSQL alone until Redis answers", err.msg);
        return 1;
    }
    {
        redisReply *r = redisCommand(c, "INFO server");
        const char *v = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, "redis_version:")
                                                          : NULL;
        log_info("Redis", "Using %s (Redis %.*s)", t->shown, v ? (int)strcspn(v + 14, "\r\n") : 1,
                 v ? v + 14 : "?");
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    return 1;
}

static int serve(const struct cli_cmd *cmd, int argc, char **argv)
{
    struct cli_args a;
    struct engine_config ecfg;
    struct engine_node nd;
    struct engine_monitor_config mcfg;
    struct api_config acfg;
    struct redis_target redis = REDIS_TARGET_INIT;
    struct store *st = NULL;
    struct engine *eng = NULL;
    struct owner *own = NULL;
    struct api_server *srv = NULL, *msrv = NULL;
    struct cli_watch *cw = NULL;
    const char *metrics_listen = NULL;
    int metrics_auth = API_METRICS_AUTH_KEY;
    struct err err = ERR_INIT;
    struct sigaction sa, old_int, old_term, old_hup;
    sigset_t stopsigs, oldmask;
    int masked = 0;
    struct watcher w;
    pthread_t watcher;
    int watching = 0, registered = 0, worker = cmd == &worker_cmd;
    int64_t grace_ms = DEFAULT_SHUTDOWN_GRACE_MS;
    const char *dir, *url;
    char node_id[128];
    int code = EXIT_OK, rc;

    rc = cli_parse(cmd, argc, argv, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    /* Before any thread starts; tasks do not inherit NOTIFY_SOCKET. */
    sdnotify_init();
    if (a.npos) {
        cli_error("'orch %s' takes no arguments (see 'orch %s --help')", cmd->name, cmd->name);
        return EXIT_USAGE;
    }
    if (cli_apply_log_level(&a))
        return EXIT_USAGE;
    if (cli_engine_settings(&a, &ecfg) || api_settings(&a, &acfg, &grace_ms) ||
        metrics_settings(&a, &metrics_listen, &metrics_auth) ||
        cli_node_settings(&a, &nd, node_id, sizeof(node_id)))
        return EXIT_USAGE;
    if (!ecfg.public_url && !worker) {
        /* Links in notifications: without ORCH_PUBLIC_URL, the listen address. */
        static char base[300];
        snprintf(base, sizeof(base), "%s://%s", acfg.tls_cert && *acfg.tls_cert ? "https" : "http", acfg.listen);
        ecfg.public_url = base;
    }
    acfg.metrics_auth = metrics_auth;
    url = cli_database_url(&a);
    if (worker && !url) {
        cli_error("'orch worker' joins the nodes of a PostgreSQL store: set $DATABASE_URL or "
                  "--database-url (on the data directory's SQLite, use 'orch server')");
        return EXIT_USAGE;
    }
    rc = redis_settings(&a, url != NULL, &redis);
    if (rc < 0)
        return EXIT_USAGE;
    if (rc > 0) {
        ecfg.redis = &redis;
        acfg.redis = &redis;
    }
    if (auth_init(&err)) {
        cli_error("%s", err.msg);
        code = EXIT_INTERNAL;
        goto out;
    }
    dir = cli_data_dir(&a);
    if (cli_monitor_settings(dir, &mcfg, &err)) {
        cli_error("%s", err.msg);
        code = EXIT_USAGE;
        goto out;
    }
    if (cli_open_store(&a, 1, &st)) {
        code = EXIT_INTERNAL;
        goto out;
    }
    for (int i = 0; i < a.nvals; i++) {
        if (strcmp(a.vals[i].opt->name, "register"))
            continue;
        code = cli_register_path(st, a.vals[i].value);
        if (code)
            goto out;
        registered = 1;
    }
    if (!url) {
        /* One node on the data directory: flock'd ownership of executions. */
        own = owner_new(dir);
        ecfg.claim = owner_claim;
        ecfg.release = owner_release;
        ecfg.owner_arg = own;
    }
    /* From the moment the API answers, a SIGTERM must stop the server
     * gracefully: hold the stop signals until their handler is installed
     * (the threads made meanwhile, the API's and the watcher's, keep them
     * blocked for good). */
    sigemptyset(&stopsigs);
    sigaddset(&stopsigs, SIGINT);
    sigaddset(&stopsigs, SIGTERM);
    sigaddset(&stopsigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stopsigs, &oldmask);
    masked = 1;
    if (engine_new(st, &ecfg, &eng, &err)) {
        cli_error("%s", err.msg);
        code = EXIT_INTERNAL;
        goto out;
    }
    engine_set_persistent(eng, 1);
    nd.cluster = url != NULL;
    nd.claim_work = 1;
    rc = cli_node_register(st, &nd, worker ? "worker" : "server", ecfg.workers);
    if (rc && !(rc == ERR_FULL && !url)) {
        /* (One node on a full disk starts all the same: reads and health
         * answer, the engine pauses until there is space.) */
        code = EXIT_INTERNAL;
        goto out;
    }
    if (engine_set_node(eng, &nd, &err)) {
        cli_error("%s", err.msg);
        code = EXIT_INTERNAL;
        goto out;
    }
    if (!worker && cli_flag(&a, "watch")) {
        code = cli_watch_start(&a, eng, &cw);
        if (code)
            goto out;
    }
    /* Fire the schedules of the definitions in the store (those just
     * registered included: the scheduler reads them on its first turn; the
     * nudge makes that explicit should the order ever change). With several
     * nodes, the holder of the scheduler lease fires them. */
    engine_enable_scheduler(eng);
    {
        /* The resource monitor samples the data directory's file system (on
         * PostgreSQL without one: the working directory's, as health does). */
        struct stat sb;
        if (stat(mcfg.dir, &sb) != 0)
            mcfg.dir = ".";
        engine_enable_monitor(eng, &mcfg);
    }
    if (registered)
        engine_schedules_changed(eng);
    /* On PostgreSQL the node claims what it owned before a restart, what is
     * queued and what dead nodes left, as it runs. */
    if (!url && resume_unfinished(st, eng)) {
        code = EXIT_INTERNAL;
        goto out;
    }

    signal(SIGPIPE, SIG_IGN);
    /* The engine's figures before anything listens: health answers "running"
     * from the first request (the loop turns as soon as the setup below ends). */
    engine_publish_stats(eng);
    if (!worker) {
        acfg.data_dir = dir;
        acfg.store_location = cli_store_location(&a);
        acfg.engine = eng;
        acfg.node = nd.id;
        acfg.lease_ms = nd.lease_ms;
        if (api_server_start(&acfg, &srv, &err)) {
            cli_error("%s", err.msg);
            code = err.code == ERR_INVALID ? EXIT_USAGE : EXIT_INTERNAL;
            goto out;
        }
        /* HTTP tasks must not call this server's API ("http[s]://ADDR:PORT"). */
        if (engine_http_deny_listener(eng, strstr(api_server_url(srv), "://") + 3, &err)) {
            cli_error("%s", err.msg);
            code = EXIT_INTERNAL;
            goto out;
        }
    }
    if (metrics_listen) {
        code = metrics_start(&a, metrics_listen, metrics_auth, dir, eng, &nd, srv, &msrv);
        if (code)
            goto out;
    }

    if (pipe2(sig_pipe, O_CLOEXEC) != 0) {
        cli_error("cannot create a pipe: %s", strerror(errno));
        code = EXIT_INTERNAL;
        goto out;
    }
    w.srv = srv;
    w.eng = eng;
    w.grace_ms = grace_ms;
    w.args = &a;
    w.monitor_dir = mcfg.dir;
    if (pthread_create(&watcher, NULL, watcher_main, &w) != 0) {
        cli_error("cannot start a thread");
        code = EXIT_INTERNAL;
        goto out;
    }
    watching = 1;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    masked = 0;

    if (worker) {
        log_info("Engine", "orch %s worker '%s' on %s (%d workers, lease %llds)", ORCH_VERSION,
                 nd.id, store_where(st), ecfg.workers, (long long)(nd.lease_ms / 1000));
    } else if (url) {
        log_info("API", "orch %s node '%s' listening on %s (%s, %d workers, lease %llds)",
                 ORCH_VERSION, nd.id, api_server_url(srv), store_where(st), ecfg.workers,
                 (long long)(nd.lease_ms / 1000));
        log_info("API", "Get an API key: orch keys create --name admin --scope admin "
                 "(with the same DATABASE_URL)");
    } else {
        const char *dur = NULL;
        struct err derr = ERR_INIT;
        if (store_durability(st, &dur, &derr) != 0)
            dur = NULL;
        log_info("API", "orch %s listening on %s (data directory '%s', %d workers, SQLite %s)",
                 ORCH_VERSION, api_server_url(srv), dir, ecfg.workers, dur ? dur : "");
        log_info("API", "Get an API key: orch keys create --name admin --scope admin --data-dir %s",
                 dir);
    }

    if (srv && !acfg.no_ui)
        log_info("API", "Web UI: %s/ (sign in with an API key)", api_server_url(srv));

    /* Type=notify: ready once listening; the watchdog's pings come from the
     * engine's loop, so that they stop when it is stuck. */
    if (sdnotify_watchdog_ms() > 0)
        engine_set_tick(eng, sdnotify_watchdog_ms() / 2, watchdog_ping, NULL);
    if (srv) {
        char status[300];
        snprintf(status, sizeof(status), "READY=1\nSTATUS=listening on %s", api_server_url(srv));
        sdnotify_send(status);
    } else {
        sdnotify_send("READY=1\nSTATUS=running");
    }
    rc = engine_run(eng, &err);
    sdnotify_send("STOPPING=1");
    if (rc) {
        log_error("Engine", "The engine stopped: %s", err.msg);
        code = EXIT_INTERNAL;
    }
    cli_watch_stop(cw);
    cw = NULL;
    engine_node_stop(eng);
    /* Whether the engine stopped on request or on a failure, stop taking requests. */
    if (srv)
        api_server_quiesce(srv);
    api_server_quiesce(msrv);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    api_server_free(msrv);
    msrv = NULL;
    api_server_free(srv);
    srv = NULL;
    log_info(worker ? "Engine" : "API", "%s stopped", worker ? "Worker" : "Server");

out:
    if (masked)
        pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
    cli_watch_stop(cw);
    if (watching) {
        unsigned char zero = 0;
        ssize_t wr = write(sig_pipe[1], &zero, 1);
        (void)wr;
        pthread_join(watcher, NULL);
    }
    if (sig_pipe[0] >= 0) {
        close(sig_pipe[0]);
        close(sig_pipe[1]);
        sig_pipe[0] = sig_pipe[1] = -1;
    }
    api_server_free(msrv);
    api_server_free(srv);
    engine_free(eng);
    owner_free(own);
    store_free(st);
    redis_target_free(&redis);
    return code;
}

int cmd_server(int argc, char **argv)
{
    return serve(&server_cmd, argc, argv);
}

int cmd_worker(int argc, char **argv)
{
    return serve(&worker_cmd, argc, argv);
}
