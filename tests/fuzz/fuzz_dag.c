/*
 * fuzz_dag.c - libFuzzer target for the workflow definition parser.
 *
 * Parses the input, checks the invariants the rest of orch relies on
 * (every problem has a path and a message; a parsed workflow has a valid
 * topological order and in-range edges), and frees everything, so
 * LeakSanitizer sees any leak on any path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dag/dag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

static void check_workflow(const struct workflow *wf)
{
    size_t n = wf->ntasks, nedges = 0, nchildren = 0;
    size_t *pos = calloc(n ? n : 1, sizeof(*pos));

    check(pos != NULL);
    check(wf->name != NULL && dag_valid_workflow_name(wf->name));
    check(n > 0 && n <= DAG_MAX_TASKS);
    for (size_t i = 0; i < n; i++) {
        check(wf->topo[i] < n && pos[wf->topo[i]] == 0);
        pos[wf->topo[i]] = i + 1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct dag_task *t = &wf->tasks[i];
        check(t->name != NULL);
        check(dag_find_task(wf, t->name) == (long)i);
        for (size_t k = 0; k < t->ndeps; k++)
            check(t->deps[k] < n && pos[t->deps[k]] < pos[i]);
        for (size_t k = 0; k < t->nchildren; k++)
            check(t->children[k] < n);
        nedges += t->ndeps;
        nchildren += t->nchildren;
        if (t->type == TASK_COMMAND) {
            check((t->argv != NULL) != (t->shell != NULL));
            if (t->argv) {
                check(t->argc > 0 && t->argv[t->argc] == NULL && t->argv[0][0] != '\0');
                for (size_t k = 0; k < t->argc; k++)
                    check(t->argv[k] != NULL);
            }
        } else {
            check(t->argv == NULL && t->shell == NULL);
        }
        check(t->retries >= 0 && t->retries <= 100);
        check(t->backoff.initial_ms <= t->backoff.max_ms);
        check(t->backoff.factor >= 1 && t->backoff.factor <= 100);
        check(t->timeout_ms >= 0 && t->sleep_ms >= 0);
        check(strcmp(dag_task_type_name(t->type), "unknown") != 0);
        check(strcmp(dag_run_if_name(t->run_if), "unknown") != 0);
    }
    check(nedges == nchildren);
    for (size_t i = 0; i < wf->nparams; i++)
        check(wf->params[i].name != NULL &&
              !(wf->params[i].required && wf->params[i].default_json));
    free(pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    int rc = dag_parse((const char *)data, size, &wf, &probs);

    if (rc == 0) {
        check(wf != NULL && probs.n == 0 && probs.dropped == 0);
        check_workflow(wf);
    } else {
        check(wf == NULL && probs.n > 0 && probs.n <= DAG_MAX_PROBLEMS);
        for (size_t i = 0; i < probs.n; i++) {
            check(probs.items[i].path[0] == '$');
            check(probs.items[i].message[0] != '\0');
        }
    }
    workflow_free(wf);
    dag_problems_release(&probs);
    return 0;
}
