/*
 * fuzz_yaml.c - libFuzzer target for YAML definitions.
 *
 * Converts the input to JSON with positions, parses the result as a
 * definition, locates its problems, and checks the invariants: a failed
 * conversion has exactly one problem at "$" with a position; a converted
 * document survives JSON to YAML and back unchanged. Everything is freed,
 * so LeakSanitizer sees any leak on any path.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dag/dag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dag_yaml_map map = DAG_YAML_MAP_INIT;
    struct dag_problems probs = DAG_PROBLEMS_INIT;
    struct workflow *wf = NULL;
    json_t *doc = NULL;
    char *json = NULL;

    if (dag_yaml_load((const char *)data, size, &doc, &map, &probs) != 0) {
        check(doc == NULL && probs.n == 1 && map.n == 0);
        check(!strcmp(probs.items[0].path, "$"));
        dag_problems_release(&probs);
        return 0;
    }
    check(doc != NULL && probs.n == 0);
    for (size_t i = 0; i < map.n; i++)
        check(map.items[i].path[0] == '$' && map.items[i].line >= 1 && map.items[i].column >= 1);
    {
        char *yaml = dag_json_to_yaml(doc);
        json_t *back = NULL;
        struct dag_problems p2 = DAG_PROBLEMS_INIT;
        check(yaml != NULL);
        /* The way back may nest one level deeper than the limit allows only if doc did. */
        if (dag_yaml_load(yaml, strlen(yaml), &back, NULL, &p2) == 0)
            check(json_equal(doc, back));
        json_decref(back);
        dag_problems_release(&p2);
        free(yaml);
    }
    json = json_dumps(doc, JSON_COMPACT | JSON_ENCODE_ANY);
    check(json != NULL);
    if (dag_parse(json, strlen(json), &wf, &probs) != 0) {
        dag_yaml_locate(&map, &probs);
        for (size_t i = 0; i < probs.n; i++)
            check(probs.items[i].line >= 0 && probs.items[i].column >= 0);
    }
    workflow_free(wf);
    free(json);
    json_decref(doc);
    dag_problems_release(&probs);
    dag_yaml_map_release(&map);
    return 0;
}
