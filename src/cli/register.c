/*
 * register.c - recording workflow definitions from files in the store:
 * `orch workflows apply` without a server and `orch server --register`.
 * Each definition is checked (its workflow tasks too: the workflows they run
 * exist and none leads back) before it becomes the newest version.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "cli.h"
#include "dag/dag.h"
#include "engine/engine.h"
#include "store/store.h"

#include "base/banned.h"

/* A definition file of a directory: *.json, *.yaml or *.yml, not hidden. */
static int is_definition_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && ((n > 5 && !strcmp(name + n - 5, ".json")) ||
                              (n > 5 && !strcmp(name + n - 5, ".yaml")) ||
                              (n > 4 && !strcmp(name + n - 4, ".yml")));
}


int cli_register_workflow(struct store *st, const char *path, struct cli_registered *out)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct dag_yaml_map pos = DAG_YAML_MAP_INIT;
    struct workflow *wf = NULL;
    struct err err = ERR_INIT;
    char *def;
    size_t len;
    int code, version = 0, prev = 0;
    char *old = NULL;

    memset(out, 0, sizeof(*out));
    def = cli_read_definition(path, &len, &code, &pos);
    if (!def)
        return code;
    if (strlen(def) != len || dag_parse(def, len, &wf, &probs)) {
        cli_print_problems(path, &probs, &pos);
        if (strlen(def) != len)
            fprintf(stderr, "  $: contains a NUL byte\n");
        dag_problems_release(&probs);
        dag_yaml_map_release(&pos);
        free(def);
        return EXIT_INVALID;
    }
    if (engine_check_subflows(st, wf, &probs) != 0) {
        cli_print_problems(path, &probs, &pos);
        dag_problems_release(&probs);
        dag_yaml_map_release(&pos);
        workflow_free(wf);
        free(def);
        return EXIT_INVALID;
    }
    dag_yaml_map_release(&pos);
    if (store_workflow_get(st, wf->name, 0, &old, &prev, NULL))
        prev = 0;
    free(old);
    if (store_workflow_put(st, wf->name, def, clock_now_ms(), &version, &err)) {
        cli_error("cannot register '%s': %s", path, err.msg);
        workflow_free(wf);
        free(def);
        return EXIT_INTERNAL;
    }
    snprintf(out->name, sizeof(out->name), "%s", wf->name);
    out->version = version;
    out->changed = version != prev;
    out->ntasks = wf->ntasks;
    workflow_free(wf);
    free(def);
    return EXIT_OK;
}

/* Record the definition in `path` as the newest version of its workflow. */
static int register_file(struct store *st, const char *path)
{
    struct cli_registered reg;
    int code = cli_register_workflow(st, path, &reg);

    if (code != EXIT_OK)
        return code;
    if (reg.changed)
        log_info("API", "Registered workflow '%s' version %d from %s", reg.name, reg.version,
                 path);
    else
        log_info("API", "Workflow '%s' version %d is up to date with %s", reg.name, reg.version,
                 path);
    return EXIT_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Are the workflows that the workflow tasks in file `path` run registered?
 * (1 too for a file that does not parse: registering it says why.) */
static int callees_registered(struct store *st, const char *path)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    size_t len;
    int code, ok = 1;
    char *def = NULL, *text = cli_read_file(path, DAG_MAX_BYTES, &len, &code);

    if (text && dag_is_yaml(path, text, len)) {
        if (dag_yaml_to_json(text, len, &def, NULL, &probs) == 0)
            len = strlen(def);
        free(text);
    } else {
        def = text;
    }
    if (def && strlen(def) == len && dag_parse(def, len, &wf, &probs) == 0) {
        for (size_t i = 0; i < wf->ntasks && ok; i++) {
            const char *callee = wf->tasks[i].subflow.workflow;
            char *other = NULL;
            int version;
            if (callee && store_workflow_get(st, callee, 0, &other, &version, NULL) != 0)
                ok = 0;
            free(other);
        }
    }
    workflow_free(wf);
    dag_problems_release(&probs);
    free(def);
    return ok;
}

/* keep_going: a file that fails is reported and the others are registered
 * all the same (the first failure's status is returned). */
static int register_path(struct store *st, const char *path, int keep_going)
{
    struct stat sb;
    DIR *d;
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, alloc = 0;
    int code = EXIT_OK, failed = EXIT_OK;

    if (stat(path, &sb) != 0) {
        cli_error("cannot register '%s': %s", path, strerror(errno));
        return EXIT_NOT_FOUND;
    }
    if (!S_ISDIR(sb.st_mode))
        return register_file(st, path);
    d = opendir(path);
    if (!d) {
        cli_error("cannot read directory '%s': %s", path, strerror(errno));
        return EXIT_NOT_FOUND;
    }
    while ((de = readdir(d)) != NULL) {
        if (!is_definition_name(de->d_name))
            continue;
        XGROW(names, alloc, n + 1);
        names[n++] = xasprintf("%s/%s", path, de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    /* In name order, but a workflow after those its workflow tasks run. */
    {
        unsigned char *done = xcalloc(n ? n : 1, 1);
        size_t left = n;
        while (left && code == EXIT_OK) {
            size_t before = left;
            for (size_t i = 0; i < n && code == EXIT_OK; i++) {
                if (done[i] || !callees_registered(st, names[i]))
                    continue;
                code = register_file(st, names[i]);
                done[i] = 1;
                left--;
                if (code != EXIT_OK && keep_going) {
                    if (failed == EXIT_OK)
                        failed = code;
                    code = EXIT_OK;
                }
            }
            if (left == before) {
                /* The rest wait for workflows nobody registers: say which. */
                for (size_t i = 0; i < n && code == EXIT_OK; i++)
                    if (!done[i]) {
                        code = register_file(st, names[i]);
                        if (code != EXIT_OK && keep_going) {
                            if (failed == EXIT_OK)
                                failed = code;
                            code = EXIT_OK;
                        }
                    }
                break;
            }
        }
        free(done);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (code == EXIT_OK && n == 0)
        log_warn("API", "No *.json, *.yaml or *.yml workflow definitions in '%s'", path);
    return code != EXIT_OK ? code : failed;
}

int cli_register_path(struct store *st, const char *path)
{
    return register_path(st, path, 0);
}

int cli_reload_path(struct store *st, const char *path)
{
    return register_path(st, path, 1);
}
