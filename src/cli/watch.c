/*
 * watch.c - `orch server --register PATH --watch`: reload a definition when
 * its file changes.
 *
 * One thread waits on inotify (IN_CLOSE_WRITE: a file written in place;
 * IN_MOVED_TO: one renamed into place, as editors save) for the directories
 * of the --register paths, and registers a changed definition file exactly
 * as --register does at start, on its own store connection. A file that does
 * not validate changes nothing: the previous version stays in use and each
 * problem is logged with the path, the line and the column. A deleted file
 * changes nothing either (delete a workflow through the API).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "cli.h"
#include "dag/dag.h"
#include "engine/engine.h"

#include "base/banned.h"

struct watch_dir {
    int wd;
    char *dir;
    char *only; /* a --register FILE: the one name watched in dir; NULL: every definition */
};

struct cli_watch {
    struct store *st;
    struct engine *eng;
    int ifd, stopfd;
    struct watch_dir *dirs;
    size_t ndirs, alloc;
    pthread_t thread;
    int started;
};

static int is_definition_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' &&
           ((n > 5 && !strcmp(name + n - 5, ".json")) ||
            (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml")));
}

/* Check the file first, so that its problems go to the log with where they are. */
static int check_file(const char *path)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct dag_yaml_map pos = DAG_YAML_MAP_INIT;
    struct workflow *wf = NULL;
    char *text, *json = NULL;
    size_t len;
    int code, ok;

    text = cli_read_file(path, DAG_MAX_BYTES, &len, &code);
    if (!text)
        return -1;
    if (dag_is_yaml(path, text, len)) {
        ok = dag_yaml_to_json(text, len, &json, &pos, &probs) == 0 &&
             dag_parse(json, strlen(json), &wf, &probs) == 0;
    } else {
        ok = strlen(text) == len && dag_parse(text, len, &wf, &probs) == 0;
        if (strlen(text) != len && !probs.n)
            log_warn("API",
                     "Not reloading %s: it contains a NUL byte; the previous version stays "
                     "in use",
                     path);
    }
    dag_yaml_locate(&pos, &probs);
    for (size_t i = 0; i < probs.n; i++) {
        const struct dag_problem *p = &probs.items[i];
        if (p->line && strcmp(p->path, "$"))
            log_warn("API",
                     "Not reloading %s: line %d, column %d: %s: %s; the previous version "
                     "stays in use",
                     path, p->line, p->column, p->path, p->message);
        else
            log_warn("API", "Not reloading %s: %s: %s; the previous version stays in use", path,
                     p->path, p->message);
    }
    workflow_free(wf);
    dag_problems_release(&probs);
    dag_yaml_map_release(&pos);
    free(json);
    free(text);
    return ok ? 0 : -1;
}

static void reload(struct cli_watch *w, const char *path)
{
    struct cli_registered reg;

    if (check_file(path))
        return;
    if (cli_register_workflow(w->st, path, &reg) != EXIT_OK) {
        log_warn("API", "Not reloading %s (see above); the previous version stays in use", path);
        return;
    }
    if (reg.changed) {
        log_info("API", "Reloaded workflow '%s' version %d from %s", reg.name, reg.version, path);
        engine_schedules_changed(w->eng);
    }
}

static void *watch_main(void *arg)
{
    struct cli_watch *w = arg;
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));

    for (;;) {
        struct pollfd pf[2] = {{w->ifd, POLLIN, 0}, {w->stopfd, POLLIN, 0}};
        char **paths = NULL;
        size_t np = 0, alloc = 0;
        ssize_t n;

        if (poll(pf, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("API", "Watching the definitions stopped: %s", strerror(errno));
            return NULL;
        }
        if (pf[1].revents)
            return NULL;
        n = read(w->ifd, buf, sizeof(buf));
        if (n <= 0)
            continue;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                log_warn("API", "Too many changes at once: some definitions were not reloaded");
                continue;
            }
            if (!ev->len || !(ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)))
                continue;
            for (size_t i = 0; i < w->ndirs; i++) {
                char *path;
                int dup = 0;
                if (w->dirs[i].wd != ev->wd)
                    continue;
                if (w->dirs[i].only ? strcmp(w->dirs[i].only, ev->name)
                                    : !is_definition_name(ev->name))
                    continue;
                path = xasprintf("%s/%s", w->dirs[i].dir, ev->name);
                for (size_t k = 0; k < np && !dup; k++)
                    dup = !strcmp(paths[k], path);
                if (dup) {
                    free(path);
                    continue;
                }
                XGROW(paths, alloc, np + 1);
                paths[np++] = path;
            }
        }
        for (size_t i = 0; i < np; i++) {
            reload(w, paths[i]);
            free(paths[i]);
        }
        free(paths);
    }
}

static int add_dir(struct cli_watch *w, const char *dir, const char *only)
{
    int wd = inotify_add_watch(w->ifd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_ONLYDIR);

    if (wd < 0) {
        cli_error("cannot watch '%s': %s", dir, strerror(errno));
        return -1;
    }
    XGROW(w->dirs, w->alloc, w->ndirs + 1);
    w->dirs[w->ndirs].wd = wd;
    w->dirs[w->ndirs].dir = xstrdup(dir);
    w->dirs[w->ndirs].only = only ? xstrdup(only) : NULL;
    w->ndirs++;
    return 0;
}

void cli_watch_stop(struct cli_watch *w)
{
    if (!w)
        return;
    if (w->started) {
        uint64_t one = 1;
        ssize_t n = write(w->stopfd, &one, sizeof(one));
        (void)n;
        pthread_join(w->thread, NULL);
    }
    for (size_t i = 0; i < w->ndirs; i++) {
        free(w->dirs[i].dir);
        free(w->dirs[i].only);
    }
    free(w->dirs);
    if (w->ifd >= 0)
        close(w->ifd);
    if (w->stopfd >= 0)
        close(w->stopfd);
    store_free(w->st);
    free(w);
}

int cli_watch_start(const struct cli_args *a, struct engine *eng, struct cli_watch **out)
{
    struct cli_watch *w = xcalloc(1, sizeof(*w));

    *out = NULL;
    w->eng = eng;
    w->ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    w->stopfd = eventfd(0, EFD_CLOEXEC);
    if (w->ifd < 0 || w->stopfd < 0) {
        cli_error("cannot watch the definitions: %s", strerror(errno));
        cli_watch_stop(w);
        return EXIT_INTERNAL;
    }
    for (int i = 0; i < a->nvals; i++) {
        const char *path = a->vals[i].value;
        struct stat sb;
        int rc;
        if (strcmp(a->vals[i].opt->name, "register"))
            continue;
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
            rc = add_dir(w, path, NULL);
        } else {
            char *copy = xstrdup(path), *slash = strrchr(copy, '/');
            if (slash == copy)
                rc = add_dir(w, "/", slash + 1);
            else if (slash) {
                *slash = '\0';
                rc = add_dir(w, copy, slash + 1);
            } else
                rc = add_dir(w, ".", copy);
            free(copy);
        }
        if (rc) {
            cli_watch_stop(w);
            return EXIT_NOT_FOUND;
        }
    }
    if (!w->ndirs) {
        cli_error("--watch needs --register PATH (the definitions to watch)");
        cli_watch_stop(w);
        return EXIT_USAGE;
    }
    if (cli_open_store(a, 1, &w->st)) {
        cli_watch_stop(w);
        return EXIT_INTERNAL;
    }
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        cli_error("cannot start a thread");
        cli_watch_stop(w);
        return EXIT_INTERNAL;
    }
    w->started = 1;
    for (size_t i = 0; i < w->ndirs; i++)
        log_info("API", "Watching %s%s%s for changed definitions", w->dirs[i].dir,
                 w->dirs[i].only ? "/" : "", w->dirs[i].only ? w->dirs[i].only : "");
    *out = w;
    return EXIT_OK;
}
