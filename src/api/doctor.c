/*
 * doctor.c - the checks of `orch doctor` and GET /v1/doctor (see doctor.h).
 *
 * Each check adds one line or a few (one per problem found, e.g. one per
 * invalid workflow), in the order of the troubleshooting guide: the
 * database, the machine, definitions, keys, schedules, the scheduler,
 * PostgreSQL's own figures, Redis, stuck work, clocks. A check that cannot
 * look (no server running here, not PostgreSQL) says so at level ok.
 * Everything shown is built from the store's rows and the process's own
 * figures; key texts never reach here (only public prefixes), and database
 * messages never hold a password.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "api_internal.h"
#include "base/clock.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "doctor.h"
#include "sched/cron.h"
#include "sched/due.h"
#include "sched/tz.h"

#include "base/banned.h"

#define DOCTOR_DB_SLOW_MS       100.0 /* SELECT 1 slower than this: warn */
#define DOCTOR_MEM_WARN_PCT     85.0
#define DOCTOR_MEM_FAIL_PCT     95.0
#define DOCTOR_DISK_WARN_PCT    10.0 /* free space or inodes below this share: warn */
#define DOCTOR_DISK_FAIL_PCT    2.0
#define DOCTOR_DISK_WARN_BYTES  (1024LL * 1024 * 1024)
#define DOCTOR_FDS_WARN_PCT     80.0
#define DOCTOR_FDS_FAIL_PCT     95.0
#define DOCTOR_KEY_SOON_MS      (7LL * 24 * 3600 * 1000)
#define DOCTOR_SCHED_STALE_MS   60000         /* a scheduler tick older than this: stopped */
#define DOCTOR_OVERDUE_MS       60000         /* a due time this late was missed */
#define DOCTOR_QUEUED_MS        (5 * 60 * 1000) /* queued this long without maxQueued */
#define DOCTOR_FAILING_MIN      3             /* same cause this often in an hour */
#define DOCTOR_SESSION_MS       60000         /* a session active or idle in a transaction */
#define DOCTOR_SLOW_MEAN_MS     100.0         /* a statement this slow on average */
#define DOCTOR_BLOAT_MIN_DEAD   10000
#define DOCTOR_SPACE_MIN_BYTES  (8LL * 1024 * 1024) /* bloat smaller than this is not worth it */
#define DOCTOR_CLOCK_WARN_MS    1000
#define DOCTOR_CLOCK_FAIL_MS    30000
#define DOCTOR_TEXT_MAX         1024

enum level { LVL_OK = 0, LVL_WARN, LVL_FAIL };
static const char *const level_names[] = {"ok", "warn", "fail"};

struct report {
    json_t *checks;
    int counts[3];
    const struct doctor_input *in;
    int64_t now;
    char zone[128]; /* this machine's time zone */
};

/* Fold whitespace runs (libpq's messages span lines) into one space. */
static void one_line(char *s)
{
    char *w = s;
    int space = 0;

    for (char *r = s; *r; r++) {
        if (isspace((unsigned char)*r)) {
            space = w != s;
            continue;
        }
        if (space)
            *w++ = ' ';
        space = 0;
        *w++ = *r;
    }
    *w = '\0';
}

static void add(struct report *r, const char *name, enum level lvl, const char *fix,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add(struct report *r, const char *name, enum level lvl, const char *fix,
                const char *fmt, ...)
{
    char found[DOCTOR_TEXT_MAX];
    json_t *o = json_object();
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(found, sizeof(found), fmt, ap);
    va_end(ap);
    one_line(found);
    json_object_set_new(o, "name", api__json_string(name, strlen(name)));
    json_object_set_new(o, "level", json_string(level_names[lvl]));
    json_object_set_new(o, "found", api__json_string(found, strlen(found)));
    json_object_set_new(o, "fix", fix ? api__json_string(fix, strlen(fix)) : json_null());
    json_array_append_new(r->checks, o);
    r->counts[lvl]++;
}

static char *iso(int64_t ms, char *buf)
{
    return clock_iso8601(ms, buf);
}

static char *ago(int64_t ms, char *buf, size_t len)
{
    return clock_fmt_duration(ms < 0 ? 0 : ms, buf, len);
}

/* ------------------------------------------------------------------ database */

void doctor_db_cause(const char *msg, const char **out_cause, const char **out_fix)
{
    static const struct {
        const char *needle, *cause, *fix;
    } rules[] = {
        {"no data directory", "no data directory",
         "pass --data-dir DIR (or set ORCH_DATA_DIR) to where orch keeps its data, or "
         "DATABASE_URL for PostgreSQL"},
        {"password authentication failed", "wrong credentials",
         "check the user and password in DATABASE_URL (postgres://USER:PASSWORD@HOST:PORT/DB); "
         "psql \"$DATABASE_URL\" -c 'SELECT 1' must connect"},
        {"no password supplied", "wrong credentials",
         "the server wants a password: put it in DATABASE_URL (postgres://USER:PASSWORD@HOST/DB) "
         "or in ~/.pgpass"},
        {"role \"", "wrong credentials",
         "the user in DATABASE_URL does not exist on the server: fix the name or create the role "
         "(CREATE ROLE ... LOGIN PASSWORD ...)"},
        {"no pg_hba.conf entry", "refused by pg_hba.conf",
         "the server does not accept this user from this address: add a line to pg_hba.conf "
         "and reload PostgreSQL (or use sslmode=require if it only accepts TLS)"},
        {"does not exist", "database missing",
         "create the database (createdb -h HOST -U USER NAME) or fix its name in DATABASE_URL"},
        {"SSL", "TLS problem",
         "check sslmode and sslrootcert in DATABASE_URL against the server's TLS setup "
         "('server does not support SSL' means sslmode=require against a server without TLS)"},
        {"certificate", "TLS problem",
         "the server's certificate is not trusted or does not match the host: set sslrootcert "
         "to its CA file, or check the host name in DATABASE_URL"},
        {"too many clients", "connection slots exhausted",
         "the server has no connection slot left: raise max_connections, or lower "
         "ORCH_DB_POOL_SIZE on the nodes that share it"},
        {"remaining connection slots", "connection slots exhausted",
         "the server has no connection slot left: raise max_connections, or lower "
         "ORCH_DB_POOL_SIZE on the nodes that share it"},
        {"Connection refused", "unreachable",
         "nothing listens there: is PostgreSQL running (pg_isready -d \"$DATABASE_URL\"; "
         "systemctl status postgresql)? Check the host and port in DATABASE_URL"},
        {"timeout expired", "unreachable",
         "no answer from the host: check the host and port in DATABASE_URL, the network and "
         "firewalls (pg_isready -d \"$DATABASE_URL\")"},
        {"could not translate host name", "unreachable",
         "the host name in DATABASE_URL does not resolve: fix it (or /etc/hosts, DNS)"},
        {"No route to host", "unreachable",
         "the network does not reach the host: check the host in DATABASE_URL and the network"},
        {"Network is unreachable", "unreachable",
         "the network does not reach the host: check the host in DATABASE_URL and the network"},
        {"the database system is starting up", "starting",
         "PostgreSQL is starting or recovering: wait, then run orch doctor again"},
        {"the database system is shutting down", "unreachable",
         "PostgreSQL is shutting down: start it again (systemctl start postgresql)"},
        {"disk full", "disk full",
         "free space on the disk of the data directory; orch continues by itself once there is"},
        {"ermission denied", "permission denied",
         "orch's user cannot read or write the data directory: check its owner and mode "
         "(ls -ld DIR), or run orch as the user that owns it"},
        {"database is locked", "locked",
         "another process holds the database: orch server and orch run on one data directory "
         "wait for each other; try again"},
        {"newer", "schema newer than this orch",
         "the database was migrated by a newer orch: upgrade this orch binary"},
        {"unable to open", "cannot open the data directory",
         "check that the data directory exists and orch's user may write it "
         "(--data-dir or ORCH_DATA_DIR)"},
        {"No such file or directory", "unreachable",
         "no PostgreSQL socket there: is the server running, and is the host in DATABASE_URL "
         "right? (a missing host means the local socket)"},
    };

    *out_cause = "database error";
    *out_fix = "read the message; psql \"$DATABASE_URL\" -c 'SELECT 1' (PostgreSQL) or the "
               "data directory's permissions (SQLite) show more";
    if (!msg)
        return;
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if (strstr(msg, rules[i].needle)) {
            *out_cause = rules[i].cause;
            *out_fix = rules[i].fix;
            return;
        }
    }
}

static void check_database(struct report *r)
{
    const struct doctor_input *in = r->in;
    const char *backend = in->postgres ? "PostgreSQL" : "SQLite";
    struct err err = ERR_INIT;
    int64_t t0;
    double ms;
    int version = 0;

    if (!in->st) {
        const char *cause, *fix;
        doctor_db_cause(in->open_error, &cause, &fix);
        add(r, "database", LVL_FAIL, fix, "%s: %s: %s", backend, cause,
            in->open_error ? in->open_error : "cannot open the store");
        return;
    }
    t0 = clock_mono_ns();
    if (store_ping(in->st, &err)) {
        const char *cause, *fix;
        doctor_db_cause(err.msg, &cause, &fix);
        add(r, "database", LVL_FAIL, fix, "%s: %s: %s", backend, cause, err.msg);
        return;
    }
    ms = (double)(clock_mono_ns() - t0) / 1e6;
    if (store_schema_version(in->st, &version, &err))
        version = -1;
    if (ms > DOCTOR_DB_SLOW_MS)
        add(r, "database", LVL_WARN,
            "the database answers slowly: look at its load (the postgres lines below) and the "
            "network between this host and it",
            "%s %s reachable, but SELECT 1 took %.1f ms; schema version %d", backend,
            store_where(in->st), ms, version);
    else
        add(r, "database", LVL_OK, NULL,
            "%s %s reachable, SELECT 1 in %.2f ms (connect %.1f ms); schema version %d of %d",
            backend, store_where(in->st), ms, in->connect_ms, version, store_schema_latest());
}

static void check_pool(struct report *r)
{
    json_t *p = r->in->pool;
    long long size, in_use, waiting, exhausted, hour, timeout_ms;
    const char *kind;

    if (!p) {
        add(r, "database.pool", LVL_OK, NULL,
            "no server here: its connection pool is shown by orch doctor --server URL");
        return;
    }
    size = json_integer_value(json_object_get(p, "size"));
    in_use = json_integer_value(json_object_get(p, "inUse"));
    waiting = json_integer_value(json_object_get(p, "waiting"));
    exhausted = json_integer_value(json_object_get(p, "exhausted"));
    hour = json_integer_value(json_object_get(p, "exhaustedLastHour"));
    timeout_ms = json_integer_value(json_object_get(p, "timeoutMs"));
    kind = json_string_value(json_object_get(p, "kind"));
    if (hour > 0 || (size > 0 && in_use >= size && waiting > 0))
        add(r, "database.pool", LVL_WARN,
            "requests wait for a database connection and get 503 when none frees in time: "
            "raise ORCH_DB_POOL_SIZE (and PostgreSQL's max_connections to match, for every "
            "node), or find the slow requests holding them (the postgres.sessions line, "
            "pg_stat_activity)",
            "%s: %lld of %lld in use, %lld waiting; %lld request%s waited the whole %lld ms "
            "for one in the last hour (%lld since the server started)",
            kind ? kind : "pool", in_use, size, waiting, hour, hour == 1 ? "" : "s", timeout_ms,
            exhausted);
    else if (exhausted > 0)
        add(r, "database.pool", LVL_OK, NULL,
            "%lld of %lld connections in use, none waiting; not exhausted in the last hour "
            "(%lld time%s since the server started)",
            in_use, size, exhausted, exhausted == 1 ? "" : "s");
    else
        add(r, "database.pool", LVL_OK, NULL,
            "%lld of %lld connections in use, none waiting, never exhausted", in_use, size);
}

/* ------------------------------------------------------------------ the machine */

static void check_cpu(struct report *r)
{
    FILE *f = fopen("/proc/loadavg", "re");
    double l1 = -1, l5 = -1, l15 = -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double quota = -1;
    char line[64];

    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) != 3)
            l1 = -1;
        fclose(f);
    }
    f = fopen("/sys/fs/cgroup/cpu.max", "re");
    if (f) {
        long long q, period;
        if (fgets(line, sizeof(line), f) && sscanf(line, "%lld %lld", &q, &period) == 2 &&
            period > 0)
            quota = (double)q / (double)period;
        fclose(f);
    }
    if (ncpu < 1)
        ncpu = 1;
    if (l1 < 0) {
        add(r, "cpu", LVL_OK, NULL, "load average unknown (no /proc/loadavg); %ld CPUs", ncpu);
        return;
    }
    if (l5 > 2.0 * (double)ncpu)
        add(r, "cpu", LVL_WARN,
            "the machine is overloaded: find what runs (top); lower --workers or add machines",
            "load %.2f %.2f %.2f on %ld CPUs%s", l1, l5, l15, ncpu,
            quota > 0 ? " (a cgroup CPU quota applies)" : "");
    else if (quota > 0)
        add(r, "cpu", LVL_OK, NULL, "load %.2f %.2f %.2f on %ld CPUs; cgroup quota %.2f CPUs", l1,
            l5, l15, ncpu, quota);
    else
        add(r, "cpu", LVL_OK, NULL, "load %.2f %.2f %.2f on %ld CPUs", l1, l5, l15, ncpu);
}

static void check_memory(struct report *r)
{
    double sys, cg, top;
    double warn = r->in->mem_warn_pct > 0 ? r->in->mem_warn_pct : DOCTOR_MEM_WARN_PCT;
    double fail = r->in->mem_high_pct > 0 ? r->in->mem_high_pct : DOCTOR_MEM_FAIL_PCT;
    const char *which = "system";

    api__memory_used(&sys, &cg);
    top = sys;
    if (cg > top) {
        top = cg;
        which = "cgroup";
    }
    if (top < 0) {
        add(r, "memory", LVL_OK, NULL, "memory use unknown (no /proc/meminfo)");
        return;
    }
    if (top >= warn || top >= fail)
        add(r, "memory", top >= fail ? LVL_FAIL : LVL_WARN,
            "find what uses it (top -o %MEM); lower --workers, or raise the machine's or the "
            "container's memory limit",
            "%s memory %.1f%% used (system %.0f%%%s), above %s %.1f%% (%s)", which, top, sys,
            cg >= 0 ? ", a cgroup limit applies" : "",
            top >= fail ? "the high-water mark" : "the warning threshold", top >= fail ? fail : warn,
            top >= fail ? "ORCH_MEMORY_HIGH_WATER: a server holds new tasks"
                        : "ORCH_MEMORY_WARN");
    else if (cg >= 0)
        add(r, "memory", LVL_OK, NULL, "system %.0f%% used, cgroup %.0f%% of its limit", sys, cg);
    else
        add(r, "memory", LVL_OK, NULL, "system %.0f%% used, no cgroup limit", sys);
}

/* A server's resource monitor: back-pressure, and commits failing for lack
 * of space. */
static void check_pressure(struct report *r)
{
    const struct engine_monitor_state *ms = r->in->monitor;
    const struct engine_stats *es = r->in->es;
    char at[CLOCK_ISO_MAX];

    if (es && es->disk_full)
        add(r, "disk.full", LVL_FAIL,
            "free space on the disk of the data directory (du -sh shows orch's part): nothing "
            "accepted is lost, and the server continues by itself once there is",
            "the server's commits fail for lack of space since %s: %s; state changes are held",
            iso(es->disk_full_since, at), es->disk_error);
    if (!ms || !ms->enabled)
        return;
    if (ms->pressure)
        add(r, "pressure", LVL_WARN, ms->fix[0] ? ms->fix : "see the memory and disk lines",
            "back-pressure since %s: %s; new task processes wait and no execution is claimed",
            iso(ms->pressure_since, at), ms->reason);
    else
        add(r, "pressure", LVL_OK, NULL, "no back-pressure (the resource monitor samples every %s)",
            ago(ms->interval_ms, at, sizeof(at)));
}

static void fmt_bytes(double b, char *out, size_t len)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, len, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void check_disk(struct report *r, const char *name, const char *what, const char *path)
{
    struct statvfs v;
    char *abs = realpath(path, NULL);
    double free_pct, inode_pct = 100;
    long long free_b;
    char fb[32];
    enum level lvl = LVL_OK;

    if (statvfs(path, &v) != 0 || v.f_blocks == 0) {
        add(r, name, LVL_WARN, "check that the path exists and orch's user may read it",
            "cannot look at the disk of the %s %s: %s", what, abs ? abs : path, strerror(errno));
        free(abs);
        return;
    }
    free_b = (long long)v.f_bavail * (long long)v.f_frsize;
    free_pct = 100.0 * (double)v.f_bavail / (double)v.f_blocks;
    if (v.f_files > 0)
        inode_pct = 100.0 * (double)v.f_favail / (double)v.f_files;
    fmt_bytes((double)free_b, fb, sizeof(fb));
    if (free_pct < DOCTOR_DISK_FAIL_PCT || free_b == 0 || inode_pct < DOCTOR_DISK_FAIL_PCT)
        lvl = LVL_FAIL;
    else if (free_pct < DOCTOR_DISK_WARN_PCT || free_b < DOCTOR_DISK_WARN_BYTES ||
             inode_pct < DOCTOR_DISK_WARN_PCT)
        lvl = LVL_WARN;
    add(r, name, lvl,
        lvl == LVL_OK ? NULL
                      : "free space there (du -sh on the data directory shows orch's part); "
                        "finished executions and their output older than ORCH_RETENTION are "
                        "deleted: a shorter retention keeps less",
        "%s %s: %s free (%.1f%%), %.1f%% of inodes free", what, abs ? abs : path, fb, free_pct,
        inode_pct);
    free(abs);
}

static void check_files(struct report *r)
{
    const struct doctor_input *in = r->in;
    struct rlimit rl;

    if (in->fds_open >= 0 && in->fds_limit > 0) {
        double pct = 100.0 * (double)in->fds_open / (double)in->fds_limit;
        enum level lvl = pct >= DOCTOR_FDS_FAIL_PCT   ? LVL_FAIL
                         : pct >= DOCTOR_FDS_WARN_PCT ? LVL_WARN
                                                      : LVL_OK;
        add(r, "files", lvl,
            lvl == LVL_OK ? NULL
                          : "raise the limit (LimitNOFILE= in the systemd unit, ulimit -n) or "
                            "find what holds them (ls -l /proc/PID/fd)",
            "%lld open files of a limit of %lld (%.0f%%)", in->fds_open, in->fds_limit, pct);
        return;
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_max == RLIM_INFINITY) {
        add(r, "files", LVL_OK, NULL, "no limit on open files");
        return;
    }
    add(r, "files", rl.rlim_max < 1024 ? LVL_WARN : LVL_OK,
        rl.rlim_max < 1024 ? "a server needs a descriptor per connection and task: raise the hard "
                             "limit (LimitNOFILE=, /etc/security/limits.conf)"
                           : NULL,
        "a server started here may open %llu files (its soft limit is raised to the hard one); "
        "no server here to count what it holds",
        (unsigned long long)rl.rlim_max);
}

/* ------------------------------------------------------------------ definitions */

static void check_workflows(struct report *r, struct workflow_row *rows, size_t n)
{
    size_t bad = 0;

    for (size_t i = 0; i < n; i++) {
        struct dag_problems probs = DAG_PROBLEMS_INIT;
        struct workflow *wf = NULL;
        char name[160];

        if (dag_parse(rows[i].definition, strlen(rows[i].definition), &wf, &probs) == 0)
            engine_check_subflows(r->in->st, wf, &probs);
        if (probs.n) {
            bad++;
            snprintf(name, sizeof(name), "workflow %s", rows[i].name);
            add(r, name, LVL_FAIL,
                "fix the definition and apply it again (orch validate FILE shows every problem; "
                "orch workflows apply FILE records it)",
                "version %d is invalid: %s: %s%s", rows[i].version, probs.items[0].path,
                probs.items[0].message, probs.n > 1 ? " (and more)" : "");
        }
        workflow_free(wf);
        dag_problems_release(&probs);
    }
    if (!bad)
        add(r, "workflows", LVL_OK, NULL, "%zu workflow%s, every definition valid", n,
            n == 1 ? "" : "s");
}

/* ------------------------------------------------------------------ keys and refused requests */

static void check_keys(struct report *r)
{
    struct key_row *keys = NULL;
    size_t n = 0, live = 0, bad = 0;
    struct err err = ERR_INIT;
    char when[CLOCK_ISO_MAX], in_buf[32], name[64];

    if (store_keys_list(r->in->st, &keys, &n, &err)) {
        add(r, "keys", LVL_WARN, "see the database line", "cannot list the API keys: %s",
            err.msg);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct key_row *k = &keys[i];
        if (k->revoked_at)
            continue;
        live++;
        if (!k->expires_at || k->expires_at - r->now > DOCTOR_KEY_SOON_MS)
            continue;
        bad++;
        snprintf(name, sizeof(name), "key %.50s", k->name ? k->name : k->prefix);
        if (k->expires_at <= r->now)
            add(r, name, LVL_WARN,
                "its clients get 401 'expired': create a new key (orch keys create --name N "
                "--expires 90d), give it to them, then orch keys revoke the old one",
                "API key '%s' (%s...) expired at %s", k->name ? k->name : "", k->prefix,
                iso(k->expires_at, when));
        else
            add(r, name, LVL_WARN,
                "create a replacement now (orch keys create --name N --expires 90d), give it to "
                "its clients, then revoke this one",
                "API key '%s' (%s...) expires in %s, at %s", k->name ? k->name : "", k->prefix,
                ago(k->expires_at - r->now, in_buf, sizeof(in_buf)), iso(k->expires_at, when));
    }
    if (!bad)
        add(r, "keys", LVL_OK, NULL, "%zu active API key%s, none expiring within 7 days", live,
            live == 1 ? "" : "s");
    key_rows_free(keys, n);
}

static const char *auth_fix(const char *reason)
{
    if (!reason)
        return "see the message";
    if (!strcmp(reason, "malformed"))
        return "the client's Authorization header is malformed: it must be exactly "
               "'Authorization: Bearer <key>' (one space, nothing else); fix the client's script";
    if (!strcmp(reason, "missing"))
        return "the client sends no Authorization header: add 'Authorization: Bearer <key>'";
    if (!strcmp(reason, "bad_scheme"))
        return "the client uses another scheme: send 'Authorization: Bearer <key>'";
    if (!strcmp(reason, "unknown"))
        return "no key here matches: a typo, a key of another server, or one deleted; give the "
               "client a valid key (orch keys list)";
    if (!strcmp(reason, "revoked") || !strcmp(reason, "expired"))
        return "the client still uses an old key: give it a valid one (orch keys create)";
    return "see the message";
}

static void check_auth(struct report *r)
{
    json_t *groups = r->in->authfails;
    size_t i;
    json_t *g;

    if (!groups) {
        add(r, "auth", LVL_OK, NULL,
            "no server here: the refused requests it saw are shown by orch doctor --server URL");
        return;
    }
    if (!json_array_size(groups)) {
        add(r, "auth", LVL_OK, NULL, "no request refused for its API key in the last hour");
        return;
    }
    json_array_foreach(groups, i, g)
    {
        char name[128];
        const char *client = json_string_value(json_object_get(g, "client"));
        const char *reason = json_string_value(json_object_get(g, "reason"));
        snprintf(name, sizeof(name), "auth %s %s", client ? client : "?", reason ? reason : "");
        add(r, name, LVL_WARN, auth_fix(json_string_value(json_object_get(g, "reason"))),
            "%lld request%s from %s refused in the last hour: %s",
            (long long)json_integer_value(json_object_get(g, "count")),
            json_integer_value(json_object_get(g, "count")) == 1 ? "" : "s", client ? client : "?",
            json_string_value(json_object_get(g, "message"))
                ? json_string_value(json_object_get(g, "message"))
                : "?");
    }
}

/* ------------------------------------------------------------------ schedules */

void doctor_local_zone(char *out, size_t outlen)
{
    const char *tz = getenv("TZ");
    char link[PATH_MAX];
    ssize_t n;

    if (tz && *tz) {
        snprintf(out, outlen, "%s", tz[0] == ':' ? tz + 1 : tz);
        return;
    }
    n = readlink("/etc/localtime", link, sizeof(link) - 1);
    if (n > 0) {
        const char *z;
        link[n] = '\0';
        z = strstr(link, "zoneinfo/");
        if (z) {
            snprintf(out, outlen, "%s", z + strlen("zoneinfo/"));
            return;
        }
    }
    snprintf(out, outlen, "UTC");
}

static int same_zone(const char *a, const char *b)
{
    static const char *const utc[] = {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT",
                                      "Zulu", "Etc/Zulu", "Universal", "Etc/Universal"};
    int ua = 0, ub = 0;

    if (!strcmp(a, b))
        return 1;
    for (size_t i = 0; i < sizeof(utc) / sizeof(utc[0]); i++) {
        ua |= !strcmp(a, utc[i]);
        ub |= !strcmp(b, utc[i]);
    }
    return ua && ub;
}

/* The state row of (workflow, name), or NULL. */
static const struct schedule_row *state_of(const struct schedule_row *rows, size_t n,
                                           const char *wf, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].workflow, wf) && !strcmp(rows[i].name, name))
            return &rows[i];
    return NULL;
}

/* One schedule spec (a definition's entry or an API schedule's JSON). */
static void check_one_schedule(struct report *r, const char *wf, const char *sname,
                               json_t *spec, const struct schedule_row *row, size_t *bad)
{
    const char *cron = json_string_value(json_object_get(spec, "cron"));
    const char *zone = json_string_value(json_object_get(spec, "timezone"));
    json_t *every = json_object_get(spec, "every");
    json_t *enabled = json_object_get(spec, "enabled");
    char name[300], at[CRON_INSTANT_MAX], at_utc[CLOCK_ISO_MAX], note[400] = "";
    struct cron_expr ce;
    struct err err = ERR_INIT;
    const struct tz *tz = NULL;
    int64_t next = 0;

    snprintf(name, sizeof(name), "schedule %s/%s", wf, sname);
    if (!zone)
        zone = "UTC";
    if (cron && cron_parse(cron, &ce, &err)) {
        (*bad)++;
        add(r, name, LVL_FAIL,
            "fix the expression in the definition and apply it again (orch schedules validate "
            "'EXPR' checks one): it never fires as it is",
            "bad cron expression '%s': %s", cron, err.msg);
        return;
    }
    if (!cron && !every) {
        (*bad)++;
        add(r, name, LVL_FAIL, "give it 'cron' or 'every'", "neither 'cron' nor 'every'");
        return;
    }
    if (tz_load(zone, &tz, &err)) {
        char hint[128] = "";
        char sug[96];
        if (dag_suggest_zone(zone, sug, sizeof(sug)) == 0)
            snprintf(hint, sizeof(hint), " (did you mean '%s'?)", sug);
        (*bad)++;
        add(r, name, LVL_FAIL,
            "use an IANA zone name this machine's tzdata has (ls /usr/share/zoneinfo; "
            "apt-get install tzdata)",
            "time zone '%s' is not known to this machine's tzdata%s: %s", zone, hint, err.msg);
        return;
    }
    if (!same_zone(zone, r->zone))
        snprintf(note, sizeof(note),
                 "; note: its zone %s differs from this machine's (%s): it fires by %s's clock",
                 zone, r->zone, zone);
    if (json_is_false(enabled) || (row && row->paused)) {
        add(r, name, LVL_OK, NULL, "%s%s%s", json_is_false(enabled) ? "disabled" : "paused",
            cron ? ", cron " : "", cron ? cron : "");
        return;
    }
    if (row && row->next_fire_at) {
        next = row->next_fire_at;
    } else if (cron) {
        struct sched_rule rule = {&ce, NULL, 0};
        int64_t s;
        if (sched_next_due(&rule, tz, r->now / 1000, &s) == 0)
            next = s * 1000;
    }
    at[0] = '\0';
    if (next && cron_format_instant(next / 1000, tz, at))
        at[0] = '\0';
    if (cron)
        add(r, name, LVL_OK,
            note[0] ? "if it runs at the wrong time, set its 'timezone' to the zone its time is "
                      "meant in"
                    : NULL,
            "cron '%s' in %s, next fire %s (%s)%s", cron, zone, next ? at : "none",
            next ? iso(next, at_utc) : "-", note);
    else
        add(r, name, LVL_OK, NULL, "every %s, next fire %s",
            json_is_string(every) ? json_string_value(every) : "(seconds)",
            next ? iso(next, at_utc) : "(when the scheduler first looks)");
}

/* Returns how many schedules there are (definitions' and the API's). */
static size_t check_schedules(struct report *r, struct workflow_row *wfs, size_t nwf,
                              struct schedule_row *rows, size_t nrows)
{
    size_t total = 0, bad = 0;

    for (size_t i = 0; i < nwf; i++) {
        json_t *def = json_loads(wfs[i].definition, 0, NULL);
        json_t *list = json_object_get(def, "schedules");
        size_t k;
        json_t *spec;

        json_array_foreach(list, k, spec)
        {
            char sname[64];
            const char *n = json_string_value(json_object_get(spec, "name"));
            if (!json_is_object(spec))
                continue;
            if (!n) {
                snprintf(sname, sizeof(sname), "schedule-%zu", k);
                n = sname;
            }
            total++;
            check_one_schedule(r, wfs[i].name, n, spec, state_of(rows, nrows, wfs[i].name, n),
                               &bad);
        }
        json_decref(def);
    }
    for (size_t i = 0; i < nrows; i++) {
        json_t *spec;
        if (!rows[i].from_api || !rows[i].spec)
            continue;
        spec = json_loads(rows[i].spec, 0, NULL);
        if (json_is_object(spec)) {
            total++;
            check_one_schedule(r, rows[i].workflow, rows[i].name, spec, &rows[i], &bad);
        }
        json_decref(spec);
    }
    if (!total)
        add(r, "schedules", LVL_OK, NULL, "no schedules");
    /* (each schedule, good or bad, has its own line) */
    return total;
}

/* ------------------------------------------------------------------ the scheduler */

static size_t count_overdue(struct report *r, struct schedule_row *rows, size_t n,
                            const struct schedule_row **oldest)
{
    size_t late = 0;

    *oldest = NULL;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].paused || !rows[i].next_fire_at ||
            r->now - rows[i].next_fire_at < DOCTOR_OVERDUE_MS)
            continue;
        late++;
        if (!*oldest || rows[i].next_fire_at < (*oldest)->next_fire_at)
            *oldest = &rows[i];
    }
    return late;
}

static void check_scheduler(struct report *r, struct schedule_row *rows, size_t nrows,
                            size_t n)
{
    const struct engine_stats *es = r->in->es;
    const struct schedule_row *oldest;
    size_t late = count_overdue(r, rows, nrows, &oldest);
    char a[CLOCK_ISO_MAX], d1[32], d2[32];
    const char *start_fix = "start the scheduler: run orch server on this store (systemctl start "
                            "orch); orch worker does not fire schedules";

    if (es) {
        int running = es->running && es->sched_running;
        int64_t tick_age = r->now - es->sched_last_tick_at;
        if (es->cluster && !es->sched_leader) {
            add(r, "scheduler", LVL_OK, NULL,
                "standby: another node holds the scheduler lease and fires the schedules");
        } else if (!running) {
            add(r, "scheduler", LVL_FAIL, start_fix, "the scheduler is not running");
            return;
        } else if (tick_age > DOCTOR_SCHED_STALE_MS) {
            add(r, "scheduler", LVL_FAIL,
                "the engine's loop is stuck or starved: look at the log for errors; restart the "
                "server if it does not recover",
                "the scheduler's last tick was %s ago", ago(tick_age, d1, sizeof(d1)));
            return;
        } else {
            char lag[64] = "no fire yet";
            if (es->sched_last_fire_at)
                snprintf(lag, sizeof(lag), "the last one %lld ms late",
                         (long long)es->sched_last_lag_ms);
            add(r, "scheduler", LVL_OK, NULL,
                "running (%s), last tick %s ago, %zu active schedule%s, %llu fires since start, "
                "%s",
                es->cluster ? "leader" : "single node", ago(tick_age, d1, sizeof(d1)),
                es->sched_active, es->sched_active == 1 ? "" : "s",
                (unsigned long long)es->sched_fires, lag);
        }
    } else {
        struct node_row *nodes = NULL;
        size_t nn = 0, live = 0;
        struct err err = ERR_INIT;
        const char *who = NULL;

        if (store_nodes_list(r->in->st, &nodes, &nn, &err) == 0) {
            for (size_t i = 0; i < nn; i++) {
                int64_t now = nodes[i].db_now ? nodes[i].db_now : r->now;
                if (nodes[i].stopped_at || now - nodes[i].heartbeat_at > r->in->lease_ms ||
                    !nodes[i].role || strcmp(nodes[i].role, "server"))
                    continue;
                if (!live++)
                    who = nodes[i].id;
            }
        }
        if (!live && !late && n)
            add(r, "scheduler", LVL_FAIL, start_fix,
                "no orch server is running on this store: its %zu schedule%s will not fire", n,
                n == 1 ? "" : "s");
        else if (!live && !late)
            add(r, "scheduler", LVL_OK, NULL, "no orch server is running on this store (and "
                                               "no schedules to fire)");
        else if (live)
            add(r, "scheduler", LVL_OK, NULL, "%zu server%s running on this store (%s)", live,
                live == 1 ? "" : "s", who ? who : "?");
        node_rows_free(nodes, nn);
        if (!live && late) {
            add(r, "scheduler", LVL_FAIL, start_fix,
                "the scheduler is not running: no orch server on this store, and %zu "
                "schedule%s overdue (%s/%s was due at %s, %s ago)",
                late, late == 1 ? " is" : "s are", oldest->workflow, oldest->name,
                iso(oldest->next_fire_at, a), ago(r->now - oldest->next_fire_at, d2, sizeof(d2)));
            return;
        }
    }
    if (late)
        add(r, "scheduler.missed", LVL_WARN,
            "the scheduler is behind: look at the log for errors; a catch-up policy decides what "
            "it fires later",
            "%zu schedule%s overdue: %s/%s was due at %s (%s ago)", late,
            late == 1 ? " is" : "s are", oldest->workflow, oldest->name,
            iso(oldest->next_fire_at, a), ago(r->now - oldest->next_fire_at, d2, sizeof(d2)));
}

/* ------------------------------------------------------------------ PostgreSQL */

static void check_pg_statements(struct report *r)
{
    struct store_diag_rows ext = STORE_DIAG_ROWS_INIT, rows = STORE_DIAG_ROWS_INIT;
    struct err err = ERR_INIT;
    const char *enable =
        "to list slow statements: add shared_preload_libraries = 'pg_stat_statements' to "
        "postgresql.conf, restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements; in "
        "orch's database (Debian's postgresql package includes it)";

    if (store_diag(r->in->st, STORE_DIAG_PG_EXTENSION, NULL, 0, &ext, &err)) {
        add(r, "postgres.statements", LVL_WARN, enable, "cannot look for pg_stat_statements: %s",
            err.msg);
        return;
    }
    if (!store_diag_cell(&ext, 0, 0) || !strcmp(store_diag_cell(&ext, 0, 0), "0")) {
        const char *pre = store_diag_cell(&ext, 0, 2);
        add(r, "postgres.statements", LVL_OK, enable,
            "pg_stat_statements is not installed in this database (shared_preload_libraries = "
            "'%s'): slow statements cannot be listed",
            pre ? pre : "");
        store_diag_rows_release(&ext);
        return;
    }
    store_diag_rows_release(&ext);
    if (store_diag(r->in->st, STORE_DIAG_PG_STATEMENTS, NULL, 0, &rows, &err)) {
        add(r, "postgres.statements", LVL_WARN, enable,
            "pg_stat_statements is installed but cannot be read: %s", err.msg);
        return;
    }
    if (!rows.nrows) {
        add(r, "postgres.statements", LVL_OK, NULL, "pg_stat_statements has no statements yet");
    } else {
        char list[DOCTOR_TEXT_MAX] = "";
        size_t used = 0;
        double top = strtod(store_diag_cell(&rows, 0, 2) ? store_diag_cell(&rows, 0, 2) : "0",
                            NULL);
        for (size_t i = 0; i < rows.nrows && used < sizeof(list); i++) {
            int w = snprintf(list + used, sizeof(list) - used, "%s%s ms mean x%s: %.120s",
                             i ? "; " : "", store_diag_cell(&rows, i, 2),
                             store_diag_cell(&rows, i, 1),
                             store_diag_cell(&rows, i, 0) ? store_diag_cell(&rows, i, 0) : "?");
            if (w > 0)
                used += (size_t)w;
        }
        add(r, "postgres.statements", top >= DOCTOR_SLOW_MEAN_MS ? LVL_WARN : LVL_OK,
            top >= DOCTOR_SLOW_MEAN_MS
                ? "slow statements: EXPLAIN (ANALYZE, BUFFERS) the slowest, add the index it "
                  "lacks or VACUUM ANALYZE its tables; reset the figures with SELECT "
                  "pg_stat_statements_reset()"
                : NULL,
            "top %zu statements by mean time: %s", rows.nrows, list);
    }
    store_diag_rows_release(&rows);
}

static void check_pg_sessions(struct report *r)
{
    struct store_diag_rows rows = STORE_DIAG_ROWS_INIT;
    struct err err = ERR_INIT;
    int64_t p = DOCTOR_SESSION_MS;
    char list[DOCTOR_TEXT_MAX] = "", d[32];
    size_t used = 0;

    if (store_diag(r->in->st, STORE_DIAG_PG_SESSIONS, &p, 1, &rows, &err)) {
        add(r, "postgres.sessions", LVL_WARN, "see the database line",
            "cannot read pg_stat_activity: %s", err.msg);
        return;
    }
    if (!rows.nrows) {
        add(r, "postgres.sessions", LVL_OK, NULL,
            "no session active or idle in a transaction for more than a minute");
        store_diag_rows_release(&rows);
        return;
    }
    for (size_t i = 0; i < rows.nrows && used < sizeof(list); i++) {
        const char *age = store_diag_cell(&rows, i, 2);
        int w = snprintf(list + used, sizeof(list) - used, "%spid %s %s for %s (%s): %.100s",
                         i ? "; " : "", store_diag_cell(&rows, i, 0),
                         store_diag_cell(&rows, i, 1) ? store_diag_cell(&rows, i, 1) : "?",
                         ago(age ? strtoll(age, NULL, 10) : 0, d, sizeof(d)),
                         store_diag_cell(&rows, i, 4) ? store_diag_cell(&rows, i, 4) : "",
                         store_diag_cell(&rows, i, 3) ? store_diag_cell(&rows, i, 3) : "");
        if (w > 0)
            used += (size_t)w;
    }
    add(r, "postgres.sessions", LVL_WARN,
        "a long transaction holds locks and keeps VACUUM from cleaning up: end it (SELECT "
        "pg_terminate_backend(PID)) and fix the client that leaves it open; "
        "idle_in_transaction_session_timeout ends such sessions by itself",
        "%zu long session%s: %s", rows.nrows, rows.nrows == 1 ? "" : "s", list);
    store_diag_rows_release(&rows);
}

static void check_pg_bloat(struct report *r)
{
    struct store_diag_rows rows = STORE_DIAG_ROWS_INIT;
    struct err err = ERR_INIT;
    size_t worst = (size_t)-1;
    char sz[32];

    if (store_diag(r->in->st, STORE_DIAG_PG_BLOAT, NULL, 0, &rows, &err)) {
        add(r, "postgres.bloat", LVL_WARN, "see the database line",
            "cannot read pg_stat_user_tables: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < rows.nrows; i++) {
        long long dead = strtoll(store_diag_cell(&rows, i, 1) ? store_diag_cell(&rows, i, 1) : "0",
                                 NULL, 10);
        long long live = strtoll(store_diag_cell(&rows, i, 2) ? store_diag_cell(&rows, i, 2) : "0",
                                 NULL, 10);
        if (dead >= DOCTOR_BLOAT_MIN_DEAD && dead * 5 > live) {
            worst = i;
            break;
        }
    }
    if (worst != (size_t)-1) {
        fmt_bytes(strtod(store_diag_cell(&rows, worst, 3) ? store_diag_cell(&rows, worst, 3) : "0",
                         NULL),
                  sz, sizeof(sz));
        add(r, "postgres.bloat", LVL_WARN,
            "VACUUM (ANALYZE) that table; if autovacuum never runs, check that it is on and that "
            "no long transaction (postgres.sessions) holds it back",
            "table %s has %s dead rows against %s live ones (%s with its indexes); last vacuum %s",
            store_diag_cell(&rows, worst, 0), store_diag_cell(&rows, worst, 1),
            store_diag_cell(&rows, worst, 2), sz,
            store_diag_cell(&rows, worst, 4) ? store_diag_cell(&rows, worst, 4) : "never");
    } else if (rows.nrows) {
        add(r, "postgres.bloat", LVL_OK, NULL,
            "no table of orch's with many dead rows (the most: %s, %s dead, %s live)",
            store_diag_cell(&rows, 0, 0), store_diag_cell(&rows, 0, 1),
            store_diag_cell(&rows, 0, 2));
    } else {
        add(r, "postgres.bloat", LVL_OK, NULL, "no table statistics yet");
    }
    store_diag_rows_release(&rows);
}

/* Table and index bloat: the space a relation takes beyond what its rows
 * need, estimated from the planner's statistics (STORE_DIAG_PG_SPACE); a
 * line per relation that wastes more than DOCTOR_SPACE_MIN_BYTES and more
 * than half of its size. */
static void check_pg_space(struct report *r)
{
    struct store_diag_rows rows = STORE_DIAG_ROWS_INIT;
    struct err err = ERR_INIT;
    size_t bad = 0;
    double most = 0;
    char most_b[32];

    if (store_diag(r->in->st, STORE_DIAG_PG_SPACE, NULL, 0, &rows, &err)) {
        add(r, "postgres.bloat.size", LVL_WARN, "see the database line",
            "cannot estimate the tables' and indexes' bloat: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < rows.nrows; i++) {
        const char *kind = store_diag_cell(&rows, i, 0), *rel = store_diag_cell(&rows, i, 1);
        const char *tbl = store_diag_cell(&rows, i, 2);
        double bytes = strtod(store_diag_cell(&rows, i, 3) ? store_diag_cell(&rows, i, 3) : "0",
                              NULL);
        double need = strtod(store_diag_cell(&rows, i, 4) ? store_diag_cell(&rows, i, 4) : "0",
                             NULL);
        const char *nrows = store_diag_cell(&rows, i, 5);
        double waste = bytes - need;
        char name[200], fix[600], b1[32], b2[32], b3[32];
        int index = kind && !strcmp(kind, "index");

        if (waste > most)
            most = waste;
        if (!rel || waste < (double)DOCTOR_SPACE_MIN_BYTES || waste * 2 <= bytes)
            continue;
        bad++;
        fmt_bytes(bytes, b1, sizeof(b1));
        fmt_bytes(need, b2, sizeof(b2));
        fmt_bytes(waste, b3, sizeof(b3));
        snprintf(name, sizeof(name), "postgres.bloat.%s %s", index ? "index" : "table", rel);
        if (index)
            snprintf(fix, sizeof(fix),
                     "rebuild it without blocking writes: REINDEX INDEX CONCURRENTLY %s; "
                     "then keep autovacuum on for table %s (and no long transaction holding it "
                     "back)",
                     rel, tbl ? tbl : "?");
        else
            snprintf(fix, sizeof(fix),
                     "VACUUM (ANALYZE) %s makes the space reusable by new rows; to give it back "
                     "to the system, VACUUM FULL %s (it locks the table while it copies it) or "
                     "pg_repack; then keep autovacuum on for it",
                     rel, rel);
        add(r, name, LVL_WARN, fix,
            "%s %s%s%s takes %s where its %s %s need about %s: %s (%.0f%%) is bloat "
            "(estimated from the planner's statistics)",
            index ? "index" : "table", rel, index ? " of table " : "", index && tbl ? tbl : "",
            b1, nrows ? nrows : "?", index ? "entries" : "rows", b2, b3, 100.0 * waste / bytes);
    }
    if (!bad) {
        fmt_bytes(most, most_b, sizeof(most_b));
        add(r, "postgres.bloat.size", LVL_OK, NULL,
            rows.nrows ? "no table or index of orch's with much bloat (the most: about %s, "
                         "estimated from the planner's statistics)"
                       : "no statistics yet to estimate the tables' and indexes' bloat%.0s",
            most_b);
    }
    store_diag_rows_release(&rows);
}

static void check_clock(struct report *r)
{
    struct store_diag_rows rows = STORE_DIAG_ROWS_INIT;
    struct err err = ERR_INIT;
    int64_t before, after, db, skew;

    if (!r->in->postgres) {
        add(r, "clock", LVL_OK, NULL, "one clock: the embedded store uses this machine's");
        return;
    }
    before = clock_now_fresh_ms();
    if (store_diag(r->in->st, STORE_DIAG_CLOCK, NULL, 0, &rows, &err) || !rows.nrows) {
        add(r, "clock", LVL_WARN, "see the database line", "cannot read the database's clock: %s",
            err.msg);
        store_diag_rows_release(&rows);
        return;
    }
    after = clock_now_fresh_ms();
    db = strtoll(store_diag_cell(&rows, 0, 0) ? store_diag_cell(&rows, 0, 0) : "0", NULL, 10);
    store_diag_rows_release(&rows);
    skew = db - (before + after) / 2;
    if (llabs(skew) >= DOCTOR_CLOCK_WARN_MS)
        add(r, "clock", llabs(skew) >= DOCTOR_CLOCK_FAIL_MS ? LVL_FAIL : LVL_WARN,
            "synchronise the clocks (chrony or systemd-timesyncd on both machines): leases and "
            "schedules go by the database's clock, logs and timeouts by this one's",
            "this machine's clock is %lld ms %s the database's", (long long)llabs(skew),
            skew > 0 ? "behind" : "ahead of");
    else
        add(r, "clock", LVL_OK, NULL, "this machine's clock is within %lld ms of the database's",
            (long long)llabs(skew));
}

/* Every live node's clock against the database's, as its last heartbeat
 * recorded it (nodes.clock_offset_ms): one line per node off by more than
 * DOCTOR_CLOCK_WARN_MS, else one ok line. */
static void check_node_clocks(struct report *r)
{
    const char *fix = "synchronise that node's clock with NTP (chrony or systemd-timesyncd; "
                      "chronyc tracking or timedatectl shows the state): leases and schedules "
                      "go by the database's clock, its logs, timeouts and the instants it writes "
                      "by its own";
    struct node_row *nodes = NULL;
    size_t nn = 0, live = 0, known = 0, bad = 0;
    struct err err = ERR_INIT;
    int64_t most = 0;

    if (store_nodes_list(r->in->st, &nodes, &nn, &err)) {
        add(r, "clock.nodes", LVL_WARN, "see the database line", "cannot list the nodes: %s",
            err.msg);
        return;
    }
    for (size_t i = 0; i < nn; i++) {
        const struct node_row *n = &nodes[i];
        int64_t now = n->db_now ? n->db_now : r->now, off = n->clock_offset_ms;
        char name[160], at[CLOCK_ISO_MAX];

        if (n->stopped_at || now - n->heartbeat_at > r->in->lease_ms)
            continue;
        live++;
        if (!n->clock_known)
            continue;
        known++;
        if (llabs(off) > llabs(most))
            most = off;
        if (llabs(off) < DOCTOR_CLOCK_WARN_MS)
            continue;
        bad++;
        snprintf(name, sizeof(name), "clock.node %s", n->id);
        add(r, name, llabs(off) >= DOCTOR_CLOCK_FAIL_MS ? LVL_FAIL : LVL_WARN, fix,
            "node %s's clock (%s, pid %d) is %lld ms %s the database's (at its heartbeat of %s)",
            n->id, n->host ? n->host : "?", n->pid, (long long)llabs(off),
            off > 0 ? "ahead of" : "behind", iso(n->heartbeat_at, at));
    }
    if (!live)
        add(r, "clock.nodes", LVL_OK, NULL, "no live node on this store to compare");
    else if (!bad && !known)
        add(r, "clock.nodes", LVL_OK, NULL,
            "%zu live node%s, none has recorded its clock yet (an older orch)", live,
            live == 1 ? "" : "s");
    else if (!bad)
        add(r, "clock.nodes", LVL_OK, NULL,
            "%zu live node%s, every clock within %lld ms of the database's at its last "
            "heartbeat",
            live, live == 1 ? "" : "s", (long long)llabs(most));
    node_rows_free(nodes, nn);
}

/* ------------------------------------------------------------------ stuck work */

static void check_orphans(struct report *r)
{
    struct store_diag_rows rows = STORE_DIAG_ROWS_INIT;
    struct err err = ERR_INIT;
    int64_t p = r->now - r->in->lease_ms;

    if (store_diag(r->in->st, STORE_DIAG_ORPHANS, &p, 1, &rows, &err)) {
        add(r, "stuck.orphans", LVL_WARN, "see the database line", "cannot look: %s", err.msg);
        return;
    }
    if (rows.nrows)
        add(r, "stuck.orphans", LVL_FAIL,
            "start a server or worker on this store: it takes them over and retries what was "
            "running (orch resume does it on a data directory)",
            "%zu%s running execution%s with no live owner: %s (workflow %s) is owned by node %s, "
            "which stopped or stopped renewing its lease",
            rows.nrows, rows.nrows >= 20 ? "+" : "", rows.nrows == 1 ? "" : "s",
            store_diag_cell(&rows, 0, 0), store_diag_cell(&rows, 0, 1),
            store_diag_cell(&rows, 0, 2));
    else
        add(r, "stuck.orphans", LVL_OK, NULL, "every running execution has a live owner");
    store_diag_rows_release(&rows);
}

static int64_t max_queued_of(struct workflow_row *wfs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(wfs[i].name, name))
            continue;
        struct dag_problems probs = DAG_PROBLEMS_INIT;
        struct workflow *wf = NULL;
        int64_t v = 0;
        if (dag_parse(wfs[i].definition, strlen(wfs[i].definition), &wf, &probs) == 0)
            v = wf->max_queued_ms;
        workflow_free(wf);
        dag_problems_release(&probs);
        return v;
    }
    return 0;
}

static void check_queued(struct report *r, struct workflow_row *wfs, size_t nwf)
{
    struct store_diag_rows rows = STORE_DIAG_ROWS_INIT;
    struct err err = ERR_INIT;
    size_t late = 0;
    char d1[32], d2[32];

    if (store_diag(r->in->st, STORE_DIAG_QUEUED, NULL, 0, &rows, &err)) {
        add(r, "stuck.queued", LVL_WARN, "see the database line", "cannot look: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < rows.nrows; i++) {
        const char *wf = store_diag_cell(&rows, i, 0);
        const char *since = store_diag_cell(&rows, i, 2);
        int64_t limit = max_queued_of(wfs, nwf, wf ? wf : "");
        int64_t age = since ? r->now - strtoll(since, NULL, 10) : 0;
        char name[160];

        if (age < (limit ? limit : DOCTOR_QUEUED_MS))
            continue;
        late++;
        snprintf(name, sizeof(name), "stuck.queued %s", wf ? wf : "?");
        add(r, name, LVL_WARN,
            "nothing takes them: every worker slot is busy or no server/worker runs; orch health "
            "shows the slots: add --workers or nodes, or look for tasks that never end",
            "%s task run%s of workflow %s queued, the oldest for %s (%s %s)",
            store_diag_cell(&rows, i, 1), strcmp(store_diag_cell(&rows, i, 1), "1") ? "s" : "",
            wf ? wf : "?", ago(age, d1, sizeof(d1)), limit ? "its maxQueued is" : "over",
            ago(limit ? limit : DOCTOR_QUEUED_MS, d2, sizeof(d2)));
    }
    if (!late)
        add(r, "stuck.queued", LVL_OK, NULL, "no task queued longer than its maxQueued (or 5m)");
    store_diag_rows_release(&rows);
}

/* The last non-empty line of the newest attempt's stderr (else stdout) of
 * (exec_id, task_idx), into out; "" when there is none. */
static void last_output_line(struct store *st, const char *exec_id, int task_idx, char *out,
                             size_t outlen)
{
    struct log_list logs = {0};
    struct err err = ERR_INIT;
    int best_attempt = -1, best_stream = 0;
    const struct log_chunk *pick = NULL;

    out[0] = '\0';
    if (store_logs_get(st, exec_id, task_idx, &logs, &err))
        return;
    for (size_t i = 0; i < logs.n; i++) {
        const struct log_chunk *c = &logs.items[i];
        int line = 0;
        for (size_t k = 0; k < c->len && !line; k++)
            line = !isspace((unsigned char)c->data[k]);
        if (!line)
            continue;
        if (c->attempt > best_attempt ||
            (c->attempt == best_attempt && (c->stream == LOG_STREAM_STDERR ||
                                            best_stream != LOG_STREAM_STDERR))) {
            best_attempt = c->attempt;
            best_stream = c->stream;
            pick = c;
        }
    }
    if (pick) {
        size_t end = pick->len, start;
        while (end > 0 && isspace((unsigned char)pick->data[end - 1]))
            end--;
        start = end;
        while (start > 0 && pick->data[start - 1] != '\n')
            start--;
        snprintf(out, outlen, "%.*s", (int)(end - start), pick->data + start);
        for (char *p = out; *p; p++)
            if ((unsigned char)*p < 0x20)
                *p = ' ';
    }
    log_list_release(&logs);
}

static void check_failing(struct report *r)
{
    struct store_diag_rows rows = STORE_DIAG_ROWS_INIT;
    struct err err = ERR_INIT;
    int64_t since = r->now - 3600 * 1000;
    size_t shown = 0;

    if (store_diag(r->in->st, STORE_DIAG_FAILURES, &since, 1, &rows, &err)) {
        add(r, "stuck.failing", LVL_WARN, "see the database line", "cannot look: %s", err.msg);
        return;
    }
    for (size_t i = 0; i < rows.nrows && shown < 5; i++) {
        long long n = strtoll(store_diag_cell(&rows, i, 3) ? store_diag_cell(&rows, i, 3) : "0",
                              NULL, 10);
        const char *wf = store_diag_cell(&rows, i, 0), *task = store_diag_cell(&rows, i, 1);
        const char *error = store_diag_cell(&rows, i, 2);
        const char *exec = store_diag_cell(&rows, i, 4);
        char line[300], name[300], fix[400];

        if (n < DOCTOR_FAILING_MIN)
            continue;
        shown++;
        last_output_line(r->in->st, exec ? exec : "",
                         (int)strtol(store_diag_cell(&rows, i, 5) ? store_diag_cell(&rows, i, 5)
                                                                  : "0",
                                     NULL, 10),
                         line, sizeof(line));
        snprintf(name, sizeof(name), "stuck.failing %s/%s", wf ? wf : "?", task ? task : "?");
        snprintf(fix, sizeof(fix),
                 "the same cause every time: retrying will not help until it is fixed; orch logs "
                 "%s %s shows the whole output",
                 exec ? exec : "ID", task ? task : "TASK");
        if (line[0] && error && strstr(error, line) && strstr(error, line) > error) {
            /* "exit status 1: <line>": the line is the cause, the rest how it ended. */
            int plen = (int)(strstr(error, line) - error);
            while (plen > 0 && (error[plen - 1] == ' ' || error[plen - 1] == ':'))
                plen--;
            add(r, name, LVL_WARN, fix, "%s failed %lld times in the last hour: %s (%.*s)",
                task ? task : "?", n, line, plen, error);
        } else if (line[0] && error && !strstr(error, line)) {
            add(r, name, LVL_WARN, fix, "%s failed %lld times in the last hour: %s (%s)",
                task ? task : "?", n, line, error);
        } else if (error) {
            add(r, name, LVL_WARN, fix, "%s failed %lld times in the last hour: %s",
                task ? task : "?", n, error);
        } else
            add(r, name, LVL_WARN, fix, "%s failed %lld times in the last hour: %s",
                task ? task : "?", n, line[0] ? line : error ? error : "no error recorded");
    }
    if (!shown)
        add(r, "stuck.failing", LVL_OK, NULL,
            "no task failed %d times or more with the same cause in the last hour",
            DOCTOR_FAILING_MIN);
    store_diag_rows_release(&rows);
}

/* ------------------------------------------------------------------ all of it */

/* ------------------------------------------------------------------ Redis */

#define DOCTOR_REDIS_SLOW_MS 10.0 /* a PING slower than this: warn */

/* What `redis-cli --stat` shows, in one line; the cause and the fix when it
 * cannot be reached. The URL is always the shown form (no password). */
static void check_redis(struct report *r)
{
    const struct doctor_input *in = r->in;
    const struct engine_stats *es = in->es;
    struct api_redis_probe p;
    char mem[32];

    if (in->redis_invalid) {
        add(r, "redis", LVL_FAIL,
            "correct ORCH_REDIS_URL: redis://[:PASSWORD@]HOST[:PORT][/DB] or "
            "unix:///PATH[?db=N] (orch server refuses to start with this one)",
            "invalid ORCH_REDIS_URL: %s", in->redis_invalid);
        return;
    }
    if (!in->api_redis && !in->redis) {
        add(r, "redis", LVL_OK, NULL,
            "not configured (ORCH_REDIS_URL unset: the nodes use PostgreSQL alone)");
        return;
    }
    if (api__redis_probe_target(in->redis, in->api_redis,
                                es && es->redis_dispatch_stream[0] ? es->redis_dispatch_stream
                                                                   : "orch:dispatch",
                                es && es->redis_dispatch_group[0] ? es->redis_dispatch_group
                                                                  : "orch-nodes",
                                &p) != 0) {
        const char *fix;
        if (strstr(p.error, "refused the password") || strstr(p.error, "needs a password"))
            fix = "put Redis's password (its requirepass, or the ACL user's) in ORCH_REDIS_URL: "
                  "redis://:PASSWORD@HOST:PORT; meanwhile the nodes run on PostgreSQL alone";
        else if (strstr(p.error, "database"))
            fix = "use a database number Redis has (its 'databases' setting) in ORCH_REDIS_URL";
        else
            fix = "start Redis or correct ORCH_REDIS_URL (check with redis-cli -u URL ping); "
                  "meanwhile the nodes run on PostgreSQL alone: slower wake-ups and dispatch, "
                  "per-node auth limits, live logs of other nodes from the store";
        add(r, "redis", LVL_WARN, fix, "Redis unreachable: %s", p.error);
        return;
    }
    fmt_bytes((double)(p.used_memory > 0 ? p.used_memory : 0), mem, sizeof(mem));
    add(r, "redis", p.latency_ms > DOCTOR_REDIS_SLOW_MS ? LVL_WARN : LVL_OK,
        p.latency_ms > DOCTOR_REDIS_SLOW_MS
            ? "Redis answers slowly: look at its host's load, its memory (swap) and slow "
              "commands (redis-cli slowlog get)"
            : NULL,
        "%s answers PING in %.1f ms (Redis %s): %s used, %lld ops/s; dispatch stream %lld "
        "entries, %lld pending",
        in->api_redis ? api__redis_shown(in->api_redis) : in->redis->shown, p.latency_ms,
        p.version[0] ? p.version : "?", mem, p.ops_per_sec < 0 ? 0 : p.ops_per_sec,
        p.stream_len < 0 ? 0 : p.stream_len, p.pending < 0 ? 0 : p.pending);
    if (es && es->redis_configured && !es->redis_ok) {
        char since[64] = "";
        if (es->redis_degraded_since)
            ago(r->now - es->redis_degraded_since, since, sizeof(since));
        add(r, "redis.engine", LVL_WARN,
            "the engine reconnects by itself with back-off; if it stays so, look at the "
            "server's log for 'WARN [Redis]' and at Redis's maxclients and timeout",
            "the engine of this node works without Redis%s%s%s%s",
            since[0] ? " for " : "", since, es->redis_error[0] ? ": " : "", es->redis_error);
    }
}

json_t *doctor_run(const struct doctor_input *in)
{
    struct report r = {0};
    struct workflow_row *wfs = NULL;
    struct schedule_row *sch = NULL;
    size_t nwf = 0, nsch = 0;
    struct err err = ERR_INIT;
    char at[CLOCK_ISO_MAX];
    json_t *o, *counts;

    r.checks = json_array();
    r.in = in;
    r.now = clock_now_fresh_ms();
    doctor_local_zone(r.zone, sizeof(r.zone));

    check_database(&r);
    check_pool(&r);
    check_cpu(&r);
    check_memory(&r);
    if (in->data_dir && (!in->postgres || access(in->data_dir, F_OK) == 0))
        check_disk(&r, "disk", "data directory", in->data_dir);
    else
        check_disk(&r, "disk", "working directory (tasks run here)", ".");
    if (in->log_path)
        check_disk(&r, "disk.log", "log location", in->log_path);
    check_files(&r);
    check_pressure(&r);

    if (in->st) {
        if (store_workflows_list(in->st, &wfs, &nwf, &err))
            add(&r, "workflows", LVL_WARN, "see the database line",
                "cannot list the workflows: %s", err.msg);
        else
            check_workflows(&r, wfs, nwf);
        check_keys(&r);
    }
    check_auth(&r);
    if (in->st) {
        if (store_schedules_list(in->st, &sch, &nsch, &err)) {
            add(&r, "schedules", LVL_WARN, "see the database line",
                "cannot list the schedules: %s", err.msg);
        } else {
            size_t total = check_schedules(&r, wfs, nwf, sch, nsch);
            check_scheduler(&r, sch, nsch, total);
        }
        if (in->postgres) {
            check_pg_statements(&r);
            check_pg_sessions(&r);
            check_pg_bloat(&r);
            check_pg_space(&r);
        }
    }
    check_redis(&r);
    if (in->st) {
        check_orphans(&r);
        check_queued(&r, wfs, nwf);
        check_failing(&r);
        check_clock(&r);
        if (in->postgres)
            check_node_clocks(&r);
    }
    workflow_rows_free(wfs, nwf);
    schedule_rows_free(sch, nsch);

    o = json_object();
    json_object_set_new(o, "status", json_string(r.counts[LVL_FAIL]   ? "fail"
                                                 : r.counts[LVL_WARN] ? "warn"
                                                                      : "ok"));
    json_object_set_new(o, "mode", json_string(in->es ? "server" : "local"));
    json_object_set_new(o, "version", json_string(ORCH_VERSION));
    json_object_set_new(o, "checkedAt", json_string(iso(r.now, at)));
    counts = json_object();
    for (int i = 0; i < 3; i++)
        json_object_set_new(counts, level_names[i], json_integer(r.counts[i]));
    json_object_set_new(o, "counts", counts);
    json_object_set_new(o, "checks", r.checks);
    return o;
}

/* ------------------------------------------------------------------ GET /v1/doctor */

/* Where this process's stderr goes, when it is a file (the server's log). */
static int log_file(char *out, size_t outlen)
{
    struct stat sb;
    ssize_t n;

    if (fstat(2, &sb) != 0 || !S_ISREG(sb.st_mode))
        return -1;
    n = readlink("/proc/self/fd/2", out, outlen - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    return 0;
}

void api__doctor(struct api_request *req)
{
    static const char *const no_args[] = {NULL};
    struct doctor_input in = {0};
    struct engine_stats es;
    struct api_pool_stats ps;
    struct engine_monitor_state ms;
    char logp[PATH_MAX];
    int64_t t0;
    json_t *pool, *report;

    if (api__query_check(req, no_args))
        return;
    engine_get_stats(api__engine(req), &es);
    api__pool_stats(req, &ps);
    pool = json_object();
    json_object_set_new(pool, "kind", json_string(ps.kind));
    json_object_set_new(pool, "size", json_integer(ps.size));
    json_object_set_new(pool, "inUse", json_integer(ps.in_use));
    json_object_set_new(pool, "waiting", json_integer(ps.waiting));
    json_object_set_new(pool, "exhausted", json_integer((json_int_t)ps.exhausted));
    json_object_set_new(pool, "exhaustedLastHour", json_integer((json_int_t)ps.exhausted_hour));
    json_object_set_new(pool, "timeoutMs", json_integer(ps.timeout_ms));

    in.location = api__store_location(req);
    in.postgres = store_location_is_postgres(in.location);
    in.data_dir = api__data_dir(req);
    in.log_path = log_file(logp, sizeof(logp)) == 0 ? logp : NULL;
    in.lease_ms = api__lease_ms(req);
    t0 = clock_mono_ns();
    in.st = api__read_store(req); /* (replied 503 if it failed: replaced below) */
    in.connect_ms = (double)(clock_mono_ns() - t0) / 1e6;
    if (in.st && !es.db_ok) {
        /* The engine's own connection is down while the API's answers. */
        in.st = NULL;
        in.open_error = es.db_error;
    } else if (!in.st) {
        in.open_error = req->store_error[0] ? req->store_error : "the database is unavailable";
    }
    in.es = &es;
    in.pool = pool;
    in.authfails = api__authfails_json(api__authfails(req), clock_now_ms());
    in.api_redis = api__redis(req);
    api__fds_used(&in.fds_open, &in.fds_limit);
    engine_monitor_get(api__engine(req), &ms);
    if (ms.enabled) {
        in.monitor = &ms;
        in.mem_warn_pct = ms.memory_warn_pct;
        in.mem_high_pct = ms.memory_high_pct;
    }
    report = doctor_run(&in);
    json_decref(pool);
    json_decref(in.authfails);
    api__reply_json(req, 200, report);
}
