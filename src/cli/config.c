/*
 * config.c - settings from a file: --config FILE, else $ORCH_CONFIG, else
 * /etc/orch/orch.conf when it exists.
 *
 * The format: one `KEY = value` per line, KEY the name of the environment
 * variable of the setting (ORCH_LISTEN, DATABASE_URL, ...), the value the
 * rest of the line with surrounding blanks (and one pair of matching quotes)
 * taken off; lines starting with '#' and blank lines are skipped. An unknown
 * key or one given twice is an error that names the file and line.
 *
 * Precedence: a flag over the environment over the file over the default.
 * The file is read once, when a command's options have been parsed; each of
 * its settings that the environment does not set (or sets empty) is put into
 * the process's environment, so that every place that reads a setting sees
 * it the same way. Tasks never see them: orch's own variables (ORCH_*,
 * DATABASE_URL) are kept out of their environment (engine.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "base/redis.h"
#include "base/xalloc.h"
#include "cli.h"

#include "base/banned.h"

#ifndef CLI_CONFIG_DEFAULT
#define CLI_CONFIG_DEFAULT "/etc/orch/orch.conf"
#endif
#define CONFIG_MAX_BYTES (256 * 1024)

enum secret { PLAIN = 0, SECRET_URL, SECRET_ALL };

struct setting {
    const char *name;
    const char *flag; /* the option that overrides it, or NULL */
    const char *def;  /* the default, as shown */
    enum secret secret;
};

static const struct setting settings[] = {
    {"ORCH_DATA_DIR", "data-dir", "./.orch", PLAIN},
    {"DATABASE_URL", "database-url", "(none: the data directory's SQLite)", SECRET_URL},
    {"ORCH_REDIS_URL", "redis-url", "(none: PostgreSQL alone)", SECRET_URL},
    {"ORCH_REDIS_TLS_CA_CERT", NULL, "(the system's CA certificates)", PLAIN},
    {"ORCH_REDIS_TLS_CERT", NULL, "(none: no client certificate)", PLAIN},
    {"ORCH_REDIS_TLS_KEY", NULL, "(none: no client certificate)", PLAIN},
    {"ORCH_REDIS_TLS_INSECURE", NULL, "0 (verify the server's certificate and name)", PLAIN},
    {"ORCH_LOG_LEVEL", "log-level", "info", PLAIN},
    {"ORCH_SERVER", "server", "(none: the local data directory)", PLAIN},
    {"ORCH_API_KEY", "api-key", "(none)", SECRET_ALL},
    {"ORCH_CACERT", "cacert", "(the system's CA certificates)", PLAIN},
    {"ORCH_LISTEN", "listen", "127.0.0.1:8080", PLAIN},
    {"ORCH_TLS_CERT", "tls-cert", "(none: plain HTTP)", PLAIN},
    {"ORCH_TLS_KEY", "tls-key", "(none: plain HTTP)", PLAIN},
    {"ORCH_UI", "no-ui", "on", PLAIN},
    {"ORCH_METRICS_LISTEN", "metrics-listen", "(none: /metrics on the API's address only)", PLAIN},
    {"ORCH_METRICS_AUTH", "metrics-auth", "key", PLAIN},
    {"ORCH_WORKERS", "workers", "(CPU count)", PLAIN},
    {"ORCH_MAX_OUTPUT", "max-output", "1048576", PLAIN},
    {"ORCH_MAX_TASK_OUTPUT", NULL, "262144", PLAIN},
    {"ORCH_KILL_GRACE", "kill-grace", "10s", PLAIN},
    {"ORCH_SHUTDOWN_GRACE", "shutdown-grace", "30s", PLAIN},
    {"ORCH_MAX_LOST_ATTEMPTS", NULL, "3", PLAIN},
    {"ORCH_TASK_USER", "task-user", "(orch's own user)", PLAIN},
    {"ORCH_TASK_CGROUPS", NULL, "(on where cgroup v2 is writable)", PLAIN},
    {"ORCH_RETENTION", NULL, "30d", PLAIN},
    {"ORCH_HTTP_ALLOW", NULL, "(none)", PLAIN},
    {"ORCH_HTTP_DENY", NULL, "(none)", PLAIN},
    {"ORCH_NODE", "node", "(host:pid)", PLAIN},
    {"ORCH_LEASE", "lease", "30s", PLAIN},
    {"ORCH_HTTP_TIMEOUT", NULL, "30s", PLAIN},
    {"ORCH_HTTP_HEAD_TIMEOUT", NULL, "10s", PLAIN},
    {"ORCH_HTTP_THREADS", NULL, "(CPU count)", PLAIN},
    {"ORCH_HTTP_CONNECTIONS_PER_ADDRESS", NULL, "64", PLAIN},
    {"ORCH_MAX_BODY", NULL, "4259840", PLAIN},
    {"ORCH_MAX_FOLLOWERS", NULL, "256", PLAIN},
    {"ORCH_AUTH_FAIL_LIMIT", NULL, "20", PLAIN},
    {"ORCH_AUTH_FAIL_WINDOW", NULL, "1m", PLAIN},
    {"ORCH_TRUSTED_PROXIES", NULL, "(none)", PLAIN},
    {"ORCH_DB_POOL_SIZE", NULL, "10", PLAIN},
    {"ORCH_DB_POOL_TIMEOUT", NULL, "5s", PLAIN},
    {"ORCH_SQLITE_SYNC", NULL, "full", PLAIN},
    {"ORCH_TZDIR", NULL, "/usr/share/zoneinfo", PLAIN},
    {"ORCH_NO_PROGRESS", NULL, "(unset: progress on a terminal)", PLAIN},
    {"ORCH_MONITOR_INTERVAL", NULL, "5s", PLAIN},
    {"ORCH_MEMORY_WARN", NULL, "85%", PLAIN},
    {"ORCH_MEMORY_HIGH_WATER", NULL, "90%", PLAIN},
    {"ORCH_DISK_WARN", NULL, "90%", PLAIN},
    {"ORCH_DISK_HIGH_WATER", NULL, "1GiB (at most 5% of the file system)", PLAIN},
    {"ORCH_FDS_WARN", NULL, "80%", PLAIN},
    {"ORCH_FDS_HIGH_WATER", NULL, "90%", PLAIN},
    {"ORCH_NOTIFY_URL", NULL, "(none)", SECRET_ALL},
    {"ORCH_NOTIFY_ON", NULL, "failed,timed_out", PLAIN},
    {"ORCH_NOTIFY_ATTEMPTS", NULL, "8", PLAIN},
    {"ORCH_NOTIFY_BACKOFF", NULL, "1s", PLAIN},
    {"ORCH_PUBLIC_URL", NULL, "(http[s]://the listen address)", PLAIN},
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

/* What was read, for `orch config show`. */
static struct {
    int loaded;
    char *path;          /* the file read, or NULL */
    const char *path_from; /* "flag", "env", "default" */
    char note[256];      /* why none was read ("... does not exist") */
    int from_file[NSETTINGS]; /* put into the environment from the file */
    int in_file[NSETTINGS];   /* given in the file (maybe overridden by the environment) */
    char *file_val[NSETTINGS]; /* the file's values as last read (cli_config_reread), owned */
} cfg;

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64];

    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static int setting_index(const char *name)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!strcmp(settings[i].name, name))
            return (int)i;
    return -1;
}

static const char *suggest(const char *name)
{
    const char *best = NULL;
    size_t bestd = 4;

    for (size_t i = 0; i < NSETTINGS; i++) {
        size_t d = edit_distance(name, settings[i].name);
        if (d < bestd) {
            bestd = d;
            best = settings[i].name;
        }
    }
    return best;
}

static char *trim(char *s)
{
    size_t n;

    while (*s == ' ' || *s == '\t')
        s++;
    n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static char *mask(const struct setting *s, const char *value);

/* Parse the file's text: 0, or -1 with the problem printed. Its values are
 * kept in cfg.file_val; with `apply` (the first read), those the environment
 * does not set go into it. */
static int parse(const char *path, char *text, int apply)
{
    char *vals[NSETTINGS] = {0};
    char *line = text, *next;
    int lineno = 0, rc = 0;

    for (; line && rc == 0; line = next) {
        char *eq, *key, *val;
        int idx;
        size_t n;

        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        key = trim(line);
        if (!*key || *key == '#')
            continue;
        eq = strchr(key, '=');
        if (!eq) {
            cli_error("%s:%d: expected 'KEY = value' (a setting's environment variable name, "
                      "such as ORCH_LISTEN)", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        val = trim(eq + 1);
        key = trim(key);
        idx = setting_index(key);
        if (idx < 0) {
            const char *s = suggest(key);
            if (!strcmp(key, "ORCH_CONFIG"))
                cli_error("%s:%d: ORCH_CONFIG cannot be set in the config file", path, lineno);
            else if (s)
                cli_error("%s:%d: unknown setting '%.64s' (did you mean '%s'?)", path, lineno,
                          key, s);
            else
                cli_error("%s:%d: unknown setting '%.64s' (see 'orch config show' for the "
                          "known ones)", path, lineno, key);
            rc = -1;
            break;
        }
        if (vals[idx]) {
            cli_error("%s:%d: %s is set twice", path, lineno, key);
            rc = -1;
            break;
        }
        n = strlen(val);
        if (n >= 2 && (val[0] == '"' || val[0] == '\'') && val[n - 1] == val[0]) {
            val[n - 1] = '\0';
            val++;
        }
        vals[idx] = val;
    }
    if (rc == 0) {
        struct stat sb;
        int secret = 0;
        for (size_t i = 0; i < NSETTINGS; i++) {
            char *m;
            if (!vals[i] || settings[i].secret == PLAIN)
                continue;
            m = mask(&settings[i], vals[i]);
            secret |= strcmp(m, vals[i]) != 0;
            free(m);
        }
        if (secret && stat(path, &sb) == 0 && (sb.st_mode & S_IROTH))
            fprintf(stderr,
                    "orch: warning: %s holds a secret (a password or an API key) and every user "
                    "can read it: chmod o-r %s\n",
                    path, path);
        for (size_t i = 0; i < NSETTINGS; i++) {
            free(cfg.file_val[i]);
            cfg.file_val[i] = vals[i] ? xstrdup(vals[i]) : NULL;
        }
        for (size_t i = 0; i < NSETTINGS && apply; i++) {
            const char *env;
            if (!vals[i])
                continue;
            cfg.in_file[i] = 1;
            env = getenv(settings[i].name);
            if (env && *env)
                continue; /* the environment wins */
            if (setenv(settings[i].name, vals[i], 1) != 0) {
                cli_error("cannot set %s: %s", settings[i].name, strerror(errno));
                return -1;
            }
            cfg.from_file[i] = 1;
        }
    }
    return rc;
}

int cli_config_load(const char *flag_path)
{
    const char *path = flag_path, *env = getenv("ORCH_CONFIG");
    char *text;
    size_t len;
    int code, rc;
    FILE *f;

    if (cfg.loaded)
        return 0;
    cfg.loaded = 1;
    cfg.path_from = "flag";
    if (!path || !*path) {
        path = env;
        cfg.path_from = "env";
    }
    if (!path || !*path) {
        struct stat sb;
        path = CLI_CONFIG_DEFAULT;
        cfg.path_from = "default";
        if (stat(path, &sb) != 0) {
            snprintf(cfg.note, sizeof(cfg.note), "none (%s does not exist)", path);
            return 0;
        }
        /* The packaged file may be readable by the service's group only:
         * other users' commands go on without it. */
        f = fopen(path, "re");
        if (!f) {
            snprintf(cfg.note, sizeof(cfg.note), "none (%s: %s)", path, strerror(errno));
            return 0;
        }
        fclose(f);
    }
    text = cli_read_file(path, CONFIG_MAX_BYTES, &len, &code);
    if (!text) {
        cli_error("cannot read the config file '%s' (from %s)", path,
                  !strcmp(cfg.path_from, "flag") ? "--config" : "ORCH_CONFIG");
        return -1;
    }
    if (memchr(text, '\0', len)) {
        cli_error("%s: not a text file", path);
        free(text);
        return -1;
    }
    rc = parse(path, text, 1);
    free(text);
    if (rc == 0)
        cfg.path = xstrdup(path);
    return rc;
}

int cli_config_reread(void)
{
    char *text;
    size_t len;
    int code, rc;

    if (!cfg.path)
        return 0;
    text = cli_read_file(cfg.path, CONFIG_MAX_BYTES, &len, &code);
    if (!text) {
        cli_error("cannot read the config file '%s'", cfg.path);
        return -1;
    }
    if (memchr(text, '\0', len)) {
        cli_error("%s: not a text file", cfg.path);
        free(text);
        return -1;
    }
    rc = parse(cfg.path, text, 0);
    free(text);
    return rc;
}

const char *cli_setting(const char *name)
{
    int i = setting_index(name);
    const char *env = getenv(name);

    if (i < 0 || (env && *env && !cfg.from_file[i]))
        return env;
    return cfg.file_val[i] ? cfg.file_val[i] : (cfg.from_file[i] ? NULL : env);
}

/* ------------------------------------------------------------------ show */

/* `value` with its secrets replaced by "****": a URL's password, a key=value
 * string's password=..., or everything but a key's public prefix. */
static char *mask(const struct setting *s, const char *value)
{
    if (s->secret == SECRET_ALL) {
        if (!strncmp(value, "sk_", 3) && strlen(value) > 12)
            return xasprintf("%.12s****", value);
        return xstrdup("****");
    }
    if (s->secret == SECRET_URL && !strcmp(s->name, "ORCH_REDIS_URL")) {
        /* Its parser's form: a password may hold an unencoded '@' or '/'. */
        struct redis_target t;
        char *out;
        if (redis_target_parse(value, &t, NULL))
            return xstrdup("**** (not a valid Redis URL)");
        out = xstrdup(t.shown);
        redis_target_free(&t);
        return out;
    }
    if (s->secret == SECRET_URL) {
        const char *scheme = strstr(value, "://");
        if (scheme) {
            const char *auth = scheme + 3;
            const char *at = strchr(auth, '@');
            const char *colon = strchr(auth, ':');
            const char *slash = strchr(auth, '/');
            if (at && (!slash || at < slash) && colon && colon < at)
                return xasprintf("%.*s****%s", (int)(colon + 1 - value), value, at);
            return xstrdup(value);
        } else {
            /* key=value words: password=... (maybe quoted) */
            const char *p = strstr(value, "password");
            if (p) {
                const char *q = p + 8, *end;
                while (*q == ' ')
                    q++;
                if (*q == '=') {
                    q++;
                    while (*q == ' ')
                        q++;
                    if (*q == '\'') {
                        end = strchr(q + 1, '\'');
                        end = end ? end + 1 : q + strlen(q);
                    } else {
                        end = q + strcspn(q, " ");
                    }
                    return xasprintf("%.*s****%s", (int)(q - value), value, end);
                }
            }
            return xstrdup(value);
        }
    }
    return xstrdup(value);
}

static const struct cli_opt config_opts[] = {
    {"json", NULL, "print JSON", 0},
    {NULL, NULL, NULL, 0},
};

static const struct cli_cmd config_show_cmd = {
    "config show",
    NULL,
    "Print every setting, its effective value and where it comes from: flag,\n"
    "env (the environment), file (the config file) or default; secrets masked.\n"
    "The config file is --config FILE, else $ORCH_CONFIG, else /etc/orch/orch.conf\n"
    "when it exists: 'KEY = value' lines, KEY a setting's environment variable name,\n"
    "'#' comments. A flag wins over the environment, which wins over the file.",
    config_opts,
};

int cmd_config(int argc, char **argv)
{
    struct cli_args a;
    json_t *list = NULL;
    int rc, js;

    if (argc < 1 || (strcmp(argv[0], "show") && strcmp(argv[0], "--help") &&
                     strcmp(argv[0], "-h"))) {
        if (argc >= 1)
            cli_error("unknown command 'config %s' (use 'orch config show')", argv[0]);
        else
            cli_error("usage: orch config show [--config FILE] [--json]");
        return EXIT_USAGE;
    }
    if (strcmp(argv[0], "show")) {
        cli_usage(&config_show_cmd, 0);
        return EXIT_OK;
    }
    rc = cli_parse(&config_show_cmd, argc - 1, argv + 1, &a);
    if (rc)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    if (a.npos) {
        cli_error("'orch config show' takes no arguments");
        return EXIT_USAGE;
    }
    js = cli_flag(&a, "json");
    if (js)
        list = json_array();
    else if (cfg.path)
        printf("config file: %s (%s)\n\n", cfg.path,
               !strcmp(cfg.path_from, "flag")  ? "--config"
               : !strcmp(cfg.path_from, "env") ? "ORCH_CONFIG"
                                               : "default location");
    else
        printf("config file: %s\n\n", cfg.note);
    if (!js)
        printf("%-34s %-40s %s\n", "SETTING", "VALUE", "SOURCE");
    for (size_t i = 0; i < NSETTINGS; i++) {
        const struct setting *s = &settings[i];
        const char *flag = s->flag ? cli_get(&a, s->flag) : NULL;
        const char *env = getenv(s->name);
        const char *source, *value;
        char *shown;

        if (flag && *flag) {
            source = "flag";
            value = flag;
        } else if (env && *env) {
            source = cfg.from_file[i] ? "file" : "env";
            value = env;
        } else {
            source = "default";
            value = NULL;
        }
        shown = value ? mask(s, value) : NULL;
        if (js) {
            json_t *o = json_object();
            json_object_set_new(o, "name", json_string(s->name));
            json_object_set_new(o, "value", shown ? json_string(shown) : json_null());
            json_object_set_new(o, "default", json_string(s->def));
            json_object_set_new(o, "source", json_string(source));
            if (s->flag) {
                char *fl = xasprintf("--%s", s->flag);
                json_object_set_new(o, "flag", json_string(fl));
                free(fl);
            }
            json_array_append_new(list, o);
        } else {
            printf("%-34s %-40s %s%s\n", s->name, shown ? shown : s->def, source,
                   cfg.in_file[i] && !cfg.from_file[i] && value
                       ? " (over the file's)"
                       : "");
        }
        free(shown);
    }
    if (js) {
        json_t *o = json_object();
        char *text;
        json_object_set_new(o, "configFile", cfg.path ? json_string(cfg.path) : json_null());
        json_object_set_new(o, "settings", list);
        text = json_dumps(o, JSON_INDENT(2));
        printf("%s\n", text ? text : "{}");
        free(text);
        json_decref(o);
    } else {
        printf("\nFlags of other commands (--listen, --workers, ...) override these for that "
               "command.\n");
    }
    return EXIT_OK;
}

json_t *cli_settings_json(void)
{
    json_t *list = json_array();

    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *env = getenv(settings[i].name);
        json_t *o = json_object();
        char *shown = env && *env ? mask(&settings[i], env) : NULL;

        json_object_set_new(o, "name", json_string(settings[i].name));
        json_object_set_new(o, "value", shown ? json_string(shown) : json_null());
        json_object_set_new(o, "default", json_string(settings[i].def));
        json_object_set_new(o, "source", json_string(!shown                ? "default"
                                                     : cfg.from_file[i] ? "file"
                                                                        : "env"));
        json_array_append_new(list, o);
        free(shown);
    }
    return list;
}
