/*
 * cmd_doctor.c - `orch doctor`: run every check (api/doctor.c) on the local
 * data directory or DATABASE_URL, or print a server's GET /v1/doctor; one
 * line per check, --json for scripts, exit status 1 when a check fails.
 *
 * `--bundle FILE.tar.gz` also gathers what support asks for into one
 * archive: the report, versions, settings and environment, workflow
 * definitions, failed executions with the tail of their tasks' output, the
 * health, and the tail of the server's log (--log FILE). Secrets never go
 * in: settings are masked as `orch config show` masks them, environment
 * variables whose name says they hold a credential are dropped to
 * "[redacted]", definitions lose their literal credentials
 * (dag_redact_definition) and every value under a credential-like name,
 * and every text written passes a scrubber for the shapes of secrets (API
 * keys, passwords in URLs and key=value strings, Authorization values).
 * The files are written into a private temporary directory and packed by
 * Debian's tar (spawned without a shell), then removed.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "api/doctor.h"
#include "base/clock.h"
#include "base/redis.h"
#include "base/strbuf.h"
#include "base/xalloc.h"
#include "client/client.h"
#include "cli.h"
#include "dag/dag.h"
#include "view/view.h"

#include "base/banned.h"

extern char **environ;

#define BUNDLE_LOG_TAIL   (1024 * 1024) /* bytes of the server's log */
#define BUNDLE_TASK_TAIL  (64 * 1024)   /* bytes of output per failed execution */
#define BUNDLE_FAILED_MAX 20

static const struct cli_opt doctor_opts[] = {
    {"json", NULL, "print the report as JSON", 0},
    {"bundle", "FILE", "also write a support bundle (.tar.gz) to FILE, without secrets", 0},
    {"log", "FILE", "the server's log file: its disk is checked and its tail bundled", 0},
    CLI_SERVER_OPTS,
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd doctor_cmd = {
    "doctor",
    NULL,
    "Check everything the troubleshooting guide checks: the database (reachable, latency,\n"
    "credentials, TLS), the pool, CPU, memory, disk and inodes, open files, every workflow\n"
    "definition, API keys about to expire, refused requests, every schedule (cron, time\n"
    "zone, next fire), the scheduler, slow queries and long sessions (PostgreSQL), stuck\n"
    "and repeatedly failing work, and the clocks. One line per check: ok, warn or fail,\n"
    "what was found and what to do. Exit status 1 when a check fails.\n"
    "Without a server it looks at the local data directory (or DATABASE_URL); with\n"
    "--server URL it prints that server's report (GET /v1/doctor, an admin key).",
    doctor_opts,
};

/* ------------------------------------------------------------------ printing */

static void print_report(const json_t *rep)
{
    const json_t *counts = json_object_get(rep, "counts");
    json_t *checks = json_object_get(rep, "checks"), *c;
    size_t i;

    json_array_foreach(checks, i, c)
    {
        const char *fix = json_string_value(json_object_get(c, "fix"));
        printf("%-4s  %-24s %s%s%s\n", cli_jstr(c, "level"), cli_jstr(c, "name"),
               cli_jstr(c, "found"), fix ? " | fix: " : "", fix ? fix : "");
    }
    printf("\n%lld failed, %lld warnings, %lld ok (%s, orch %s)\n", cli_jint(counts, "fail", 0),
           cli_jint(counts, "warn", 0), cli_jint(counts, "ok", 0), cli_jstr(rep, "mode"),
           cli_jstr(rep, "version"));
}

/* ------------------------------------------------------------------ the report */

static int64_t lease_ms(void)
{
    const char *v = getenv("ORCH_LEASE");
    int64_t ms = 30000;
    struct err err = ERR_INIT;

    if (v && *v && clock_parse_duration(v, &ms, &err) == 0 && ms > 0)
        return ms;
    return 30000;
}

static json_t *local_report(const struct cli_args *a, struct store **out_st)
{
    struct doctor_input in = {0};
    struct redis_target redis = REDIS_TARGET_INIT;
    char redis_bad[ERR_MSG_MAX] = "";
    const char *url = cli_database_url(a);
    const char *dir = cli_data_dir(a);
    struct err err = ERR_INIT;
    char msg[ERR_MSG_MAX + 128];
    struct stat sb;
    int64_t t0;
    json_t *rep;

    *out_st = NULL;
    in.location = url ? url : dir;
    in.postgres = url != NULL;
    in.data_dir = dir;
    in.log_path = cli_get(a, "log");
    in.lease_ms = lease_ms();
    in.fds_open = in.fds_limit = -1;
    {
        /* The resource monitor's memory thresholds (a bad value: the defaults). */
        struct engine_monitor_config mc;
        struct err merr = ERR_INIT;
        if (cli_monitor_settings(dir, &mc, &merr) == 0) {
            in.mem_warn_pct = mc.memory_warn_pct;
            in.mem_high_pct = mc.memory_high_pct;
        }
    }
    t0 = clock_mono_ns();
    if (!url && stat(dir, &sb) != 0) {
        snprintf(msg, sizeof(msg),
                 "no data directory at '%s' (pass --data-dir DIR, or set ORCH_DATA_DIR or "
                 "DATABASE_URL)",
                 dir);
        in.open_error = msg;
    } else if (store_open(in.location, STORE_READONLY, &in.st, &err)) {
        /* (Never the URL itself: it may hold a password; libpq's messages do not.) */
        snprintf(msg, sizeof(msg), "%s", err.msg);
        in.open_error = msg;
        in.st = NULL;
    }
    in.connect_ms = (double)(clock_mono_ns() - t0) / 1e6;
    if (cli_redis_url(a)) {
        /* A URL that does not parse is said on the redis line, without the URL. */
        if (redis_target_parse(cli_redis_url(a), &redis, &err) == 0) {
            in.redis = &redis;
        } else {
            snprintf(redis_bad, sizeof(redis_bad), "%s", err.msg);
            in.redis_invalid = redis_bad;
        }
    }
    rep = doctor_run(&in);
    redis_target_free(&redis);
    *out_st = in.st;
    return rep;
}

/* ------------------------------------------------------------------ secrets out */

static int key_char(int c)
{
    return isalnum(c) || c == '_' || c == '-';
}

/*
 * Append `len` bytes of `s` to `out` with the shapes of secrets replaced by
 * "[redacted]": API keys (sk_ and 20 or more key characters; the 12-character
 * public prefixes stay), the password of a URL's user-info, the value of
 * password=/passwd=/pwd=/secret=/token= words, and what follows Bearer or
 * Basic.
 */
static void scrub(struct strbuf *out, const char *s, size_t len)
{
    static const char *const words[] = {"password", "passwd", "pwd", "secret", "token",
                                        "api_key", "apikey"};
    size_t i = 0;

    while (i < len) {
        size_t n;
        int done = 0;

        if (len - i > 3 && !strncmp(s + i, "sk_", 3)) {
            n = 3;
            while (i + n < len && key_char((unsigned char)s[i + n]))
                n++;
            if (n - 3 >= 20) {
                strbuf_adds(out, "sk_[redacted]");
                i += n;
                continue;
            }
        }
        if (len - i > 3 && !strncmp(s + i, "://", 3)) {
            /* scheme://user:password@host */
            size_t j = i + 3, colon = 0;
            while (j < len && s[j] != '@' && s[j] != '/' && !isspace((unsigned char)s[j]) &&
                   s[j] != '"') {
                if (s[j] == ':' && !colon)
                    colon = j;
                j++;
            }
            if (j < len && s[j] == '@' && colon) {
                strbuf_add(out, s + i, colon + 1 - i);
                strbuf_adds(out, "[redacted]");
                i = j;
                continue;
            }
        }
        for (size_t w = 0; w < sizeof(words) / sizeof(words[0]) && !done; w++) {
            size_t wl = strlen(words[w]);
            if (len - i > wl && !strncasecmp(s + i, words[w], wl) &&
                (s[i + wl] == '=' || s[i + wl] == ':') &&
                (i == 0 || !isalnum((unsigned char)s[i - 1]))) {
                size_t j = i + wl + 1;
                while (j < len && s[j] == ' ')
                    j++;
                if (j < len && s[j] == '"' && s[i + wl] == ':') {
                    /* "password": "x" in JSON */
                    j++;
                }
                n = j;
                while (n < len && !isspace((unsigned char)s[n]) && s[n] != '&' && s[n] != '"' &&
                       s[n] != '\'' && s[n] != ',' && s[n] != ';')
                    n++;
                if (n > j) {
                    strbuf_add(out, s + i, j - i);
                    strbuf_adds(out, "[redacted]");
                    i = n;
                    done = 1;
                }
            }
        }
        if (done)
            continue;
        if (len - i > 7 && (!strncasecmp(s + i, "Bearer ", 7) || !strncasecmp(s + i, "Basic  ", 6))) {
            size_t wl = s[i + 1] == 'e' || s[i + 1] == 'E' ? 7 : 6;
            size_t j = i + wl;
            while (j < len && s[j] == ' ')
                j++;
            n = j;
            while (n < len && !isspace((unsigned char)s[n]) && s[n] != '"' && s[n] != '\'')
                n++;
            if (n - j >= 8) {
                strbuf_add(out, s + i, j - i);
                strbuf_adds(out, "[redacted]");
                i = n;
                continue;
            }
        }
        strbuf_addch(out, s[i]);
        i++;
    }
}

/* Replace the string values of members with credential-like names, deep. */
static void redact_json(json_t *v)
{
    const char *k;
    json_t *m;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach(v, k, m)
        {
            if (json_is_string(m) && dag_header_is_credential(k))
                json_object_set_new(v, k, json_string("[redacted]"));
            else
                redact_json(m);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, m) redact_json(m);
    }
}

/* ------------------------------------------------------------------ writing files */

static int write_text(const char *dir, const char *name, const char *text, size_t len)
{
    char path[4096];
    struct strbuf sb = STRBUF_INIT;
    FILE *f;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    scrub(&sb, text, len);
    f = fopen(path, "wxe");
    if (!f || fwrite(sb.buf, 1, sb.len, f) != sb.len)
        rc = -1;
    if (f && fclose(f) != 0)
        rc = -1;
    if (rc)
        cli_error("cannot write '%s': %s", path, strerror(errno));
    strbuf_release(&sb);
    return rc;
}

static int write_json(const char *dir, const char *name, json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    int rc;

    if (!text)
        return -1;
    rc = write_text(dir, name, text, strlen(text));
    free(text);
    return rc;
}

/* The last `max` bytes of file `path` (a heap string), or NULL. */
static char *file_tail(const char *path, size_t max, size_t *out_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    char *buf;
    off_t from;
    ssize_t n;
    size_t got = 0;

    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return NULL;
    }
    from = sb.st_size > (off_t)max ? sb.st_size - (off_t)max : 0;
    buf = xmalloc(max + 1);
    while (got < max && (n = pread(fd, buf + got, max - got, from + (off_t)got)) > 0)
        got += (size_t)n;
    close(fd);
    buf[got] = '\0';
    *out_len = got;
    return buf;
}

static int write_versions(const char *dir, struct store *st)
{
    struct strbuf sb = STRBUF_INIT;
    struct utsname u;
    size_t len = 0;
    char *os = file_tail("/etc/os-release", 4096, &len);
    int v = 0, rc;
    struct err err = ERR_INIT;

    strbuf_addf(&sb, "orch %s\n", ORCH_VERSION);
    if (uname(&u) == 0)
        strbuf_addf(&sb, "kernel: %s %s %s %s\n", u.sysname, u.release, u.version, u.machine);
    if (st && store_schema_version(st, &v, &err) == 0)
        strbuf_addf(&sb, "store: %s, schema version %d (this orch brings %d)\n",
                    store_backend_name(st), v, store_schema_latest());
    strbuf_adds(&sb, "\n/etc/os-release:\n");
    if (os)
        strbuf_add(&sb, os, len);
    rc = write_text(dir, "versions.txt", sb.buf, sb.len);
    free(os);
    strbuf_release(&sb);
    return rc;
}

static int interesting_env(const char *name, size_t n)
{
    static const char *const exact[] = {"DATABASE_URL", "TZ", "LANG", "PATH", "HOME", "USER",
                                        "TMPDIR", "SHELL"};
    if ((n > 5 && !strncmp(name, "ORCH_", 5)) || (n > 2 && !strncmp(name, "PG", 2)) ||
        (n > 3 && !strncmp(name, "LC_", 3)))
        return 1;
    for (size_t i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
        if (strlen(exact[i]) == n && !strncmp(name, exact[i], n))
            return 1;
    return 0;
}

static int write_environment(const char *dir)
{
    struct strbuf sb = STRBUF_INIT;
    json_t *settings = cli_settings_json();
    int rc;

    strbuf_adds(&sb, "# orch's environment (variables that matter to it; credentials redacted)\n");
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        char name[256];
        size_t n;
        if (!eq)
            continue;
        n = (size_t)(eq - *e);
        if (!interesting_env(*e, n) || n >= sizeof(name))
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)n, *e);
        if (dag_header_is_credential(name))
            strbuf_addf(&sb, "%s=[redacted]\n", name);
        else
            strbuf_addf(&sb, "%s\n", *e);
    }
    rc = write_text(dir, "environment.txt", sb.buf, sb.len);
    strbuf_release(&sb);
    if (!rc)
        rc = write_json(dir, "settings.json", settings);
    json_decref(settings);
    return rc;
}

/* A definition as it may be shown: literal credentials and every value under
 * a credential-like name replaced. Takes `def`. */
static json_t *redacted_definition(json_t *def)
{
    dag_redact_definition(def);
    redact_json(def);
    return def;
}

/* The local store's workflows, failed executions and their output. */
static int bundle_local(const char *dir, struct store *st)
{
    struct workflow_row *wfs = NULL;
    size_t nwf = 0;
    struct exec_list list = {0};
    struct exec_filter f = {0};
    struct err err = ERR_INIT;
    char name[300];
    int rc = 0;

    if (store_workflows_list(st, &wfs, &nwf, &err) == 0) {
        for (size_t i = 0; i < nwf && !rc; i++) {
            json_t *def = json_loads(wfs[i].definition, 0, NULL);
            if (!def)
                continue;
            snprintf(name, sizeof(name), "workflows/%s.json", wfs[i].name);
            rc = write_json(dir, name, redacted_definition(def));
            json_decref(def);
        }
        workflow_rows_free(wfs, nwf);
    }
    f.status_mask = 1u << EXEC_FAILED;
    f.limit = BUNDLE_FAILED_MAX;
    if (!rc && store_executions_list(st, &f, &list, &err) == 0) {
        json_t *page = view_exec_list(&list, BUNDLE_FAILED_MAX);
        rc = write_json(dir, "executions-failed.json", page);
        json_decref(page);
        for (size_t i = 0; i < list.n && i < 5 && !rc; i++) {
            struct log_list logs = {0};
            struct strbuf sb = STRBUF_INIT;
            size_t from = 0;
            if (store_logs_get(st, list.items[i].id, -1, &logs, &err))
                continue;
            for (size_t k = 0; k < logs.n; k++) {
                const struct log_chunk *c = &logs.items[k];
                strbuf_addf(&sb, "--- task %d attempt %d %s\n", c->task_idx, c->attempt,
                            c->stream == LOG_STREAM_STDERR ? "stderr" : "stdout");
                strbuf_add(&sb, c->data, c->len);
                if (c->len && c->data[c->len - 1] != '\n')
                    strbuf_addch(&sb, '\n');
            }
            if (sb.len > BUNDLE_TASK_TAIL)
                from = sb.len - BUNDLE_TASK_TAIL;
            snprintf(name, sizeof(name), "logs/%s.txt", list.items[i].id);
            rc = write_text(dir, name, sb.buf + from, sb.len - from);
            strbuf_release(&sb);
            log_list_release(&logs);
        }
        exec_list_release(&list);
    }
    return rc;
}

/* GET `path` of the server into file `name`; a failure is written too. */
static void fetch_json(struct client *c, const char *dir, const char *name, const char *path,
                       json_t **keep)
{
    struct client_response r = CLIENT_RESPONSE_INIT;
    struct err err = ERR_INIT;

    if (client_request(c, "GET", path, NULL, 0, NULL, &r, &err) == 0 && r.json) {
        redact_json(r.json);
        write_json(dir, name, r.json);
        if (keep)
            *keep = json_incref(r.json);
    } else {
        char msg[600];
        snprintf(msg, sizeof(msg), "GET %s: %s\n", path,
                 err.msg[0] ? err.msg : client_error_message(&r));
        write_text(dir, name, msg, strlen(msg));
    }
    client_response_release(&r);
}

static void bundle_remote(const char *dir, struct client *c)
{
    json_t *wfs = NULL, *items, *w;
    size_t i;

    fetch_json(c, dir, "health.json", "/v1/health", NULL);
    fetch_json(c, dir, "executions-failed.json", "/v1/executions?status=failed&limit=20", NULL);
    fetch_json(c, dir, "workflows.json", "/v1/workflows", &wfs);
    items = json_object_get(wfs, "items");
    json_array_foreach(items, i, w)
    {
        const char *n = json_string_value(json_object_get(w, "name"));
        char path[300], file[300];
        char *esc;
        if (!n || !dag_valid_workflow_name(n))
            continue;
        esc = client_escape(n);
        snprintf(path, sizeof(path), "/v1/workflows/%s", esc);
        snprintf(file, sizeof(file), "workflows/%s.json", n);
        fetch_json(c, dir, file, path, NULL);
        free(esc);
    }
    json_decref(wfs);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Run tar without a shell: tar -czf FILE -C TMP orch-bundle. */
static int pack(const char *file, const char *tmp)
{
    char *argv[] = {(char *)"tar", (char *)"-czf", (char *)file, (char *)"-C", (char *)tmp,
                    (char *)"orch-bundle", NULL};
    pid_t pid;
    int st, rc;

    rc = posix_spawnp(&pid, "tar", NULL, NULL, argv, environ);
    if (rc) {
        cli_error("cannot run tar: %s", strerror(rc));
        return -1;
    }
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        cli_error("tar could not write '%s'", file);
        return -1;
    }
    return 0;
}

static int write_bundle(const struct cli_args *a, const char *file, json_t *report,
                        struct store *st, struct client *c)
{
    const char *tmpdir = getenv("TMPDIR");
    char tmp[4096], dir[4200];
    const char *logp = cli_get(a, "log");
    int rc = 0;
    static const char readme[] =
        "orch support bundle (orch doctor --bundle)\n\n"
        "doctor.json             the checks and what they found\n"
        "versions.txt            orch, the kernel, the OS, the store's schema\n"
        "environment.txt         orch's environment (credentials redacted)\n"
        "settings.json           every setting as `orch config show` shows it (secrets masked)\n"
        "workflows/              the workflow definitions (literal credentials redacted)\n"
        "executions-failed.json  the newest failed executions\n"
        "logs/                   task output of the newest failed executions (local), and\n"
        "                        the tail of the server's log (--log FILE)\n"
        "health.json             the server's health (with --server)\n\n"
        "Keys, passwords in URLs, HTTP task credentials and values named like secrets are\n"
        "replaced by [redacted]. Task output is written by your tasks: read it before you\n"
        "send the bundle.\n";

    snprintf(tmp, sizeof(tmp), "%s/orch-bundle-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(tmp)) {
        cli_error("cannot make a temporary directory: %s", strerror(errno));
        return EXIT_INTERNAL;
    }
    snprintf(dir, sizeof(dir), "%s/orch-bundle", tmp);
    {
        char sub[4300];
        int bad = mkdir(dir, 0700);
        snprintf(sub, sizeof(sub), "%s/workflows", dir);
        bad = bad || mkdir(sub, 0700);
        snprintf(sub, sizeof(sub), "%s/logs", dir);
        bad = bad || mkdir(sub, 0700);
        if (bad) {
            cli_error("cannot make '%s': %s", sub, strerror(errno));
            rc = -1;
        }
    }
    if (!rc)
        rc = write_text(dir, "README.txt", readme, sizeof(readme) - 1) ||
             write_json(dir, "doctor.json", report) || write_versions(dir, st) ||
             write_environment(dir);
    if (!rc && st)
        rc = bundle_local(dir, st);
    if (!rc && c)
        bundle_remote(dir, c);
    if (!rc && logp) {
        size_t len = 0;
        char *tail = file_tail(logp, BUNDLE_LOG_TAIL, &len);
        if (tail)
            rc = write_text(dir, "logs/orch.log", tail, len);
        else
            cli_error("cannot read the log '%s': %s (not bundled)", logp, strerror(errno));
        free(tail);
    }
    if (!rc)
        rc = pack(file, tmp);
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (rc)
        return EXIT_INTERNAL;
    fprintf(stderr, "support bundle written to %s (read it before you send it)\n", file);
    return EXIT_OK;
}

/* ------------------------------------------------------------------ the command */

int cmd_doctor(int argc, char **argv)
{
    struct cli_args a;
    struct store *st = NULL;
    struct client *c = NULL;
    json_t *rep = NULL;
    const char *bundle;
    int rc = cli_parse(&doctor_cmd, argc, argv, &a), code = EXIT_OK;

    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch doctor' takes no arguments");
        return EXIT_USAGE;
    }
    bundle = cli_get(&a, "bundle");
    if (bundle && !*bundle) {
        cli_error("--bundle needs a file name (FILE.tar.gz)");
        return EXIT_USAGE;
    }
    if (cli_server(&a)) {
        struct client_response r = CLIENT_RESPONSE_INIT;
        c = cli_client_open(&a, &code);
        if (!c)
            return code;
        code = cli_client_call(c, "GET", "/v1/doctor", &r);
        if (code == EXIT_OK && !json_is_array(json_object_get(r.json, "checks"))) {
            cli_error("the server's answer is not a doctor report (HTTP %ld)", r.status);
            code = EXIT_INTERNAL;
        }
        if (code == EXIT_OK)
            rep = json_incref(r.json);
        client_response_release(&r);
        if (code != EXIT_OK) {
            client_free(c);
            return code;
        }
    } else {
        rep = local_report(&a, &st);
    }
    if (cli_flag(&a, "json"))
        cli_print_json(rep);
    else
        print_report(rep);
    code = strcmp(cli_jstr(rep, "status"), "fail") ? EXIT_OK : EXIT_FAILED;
    if (bundle) {
        int b = write_bundle(&a, bundle, rep, st, c);
        if (b != EXIT_OK)
            code = b;
    }
    json_decref(rep);
    store_free(st);
    client_free(c);
    return code;
}
