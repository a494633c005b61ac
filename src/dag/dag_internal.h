/*
 * dag_internal.h - state shared between the dag module's own files.
 * Never included from outside src/dag/.
 *
 * A parse runs in two passes over one struct dag__parser:
 *   1. dag_parse.c walks the JSON, checks every field and fills a struct
 *      workflow (strings heap-owned), recording each dependsOn entry as a
 *      name borrowed from the JSON document (struct dag__dep_ref);
 *   2. dag_graph.c resolves those names to indices and checks the graph
 *      (duplicate names, unknown or repeated dependencies, cycles), then
 *      computes the topological order when nothing was wrong.
 * Problems from both passes go through dag__problem().
 */
#ifndef ORCH_DAG_DAG_INTERNAL_H
#define ORCH_DAG_DAG_INTERNAL_H

#include <stddef.h>

#include "dag.h"

/*
 * Budget of edit-distance cells (product of the two lengths) spent on
 * "did you mean" suggestions in one parse. A definition with thousands of
 * unknown names must not make the parser quadratic; once the budget is spent
 * problems are still reported, only without suggestions.
 */
#ifndef DAG__SUGGEST_BUDGET
#define DAG__SUGGEST_BUDGET (32u * 1024 * 1024)
#endif

/* Longest name for which a suggestion is looked for or offered. */
#define DAG__SUGGEST_MAX_LEN 128

/* Longest quoted subject in a message before it is cut with "...". */
#define DAG__QUOTE_MAX 140

/*
 * A JSON path as a chain of stack-allocated segments from the leaf up to
 * the root ("$"); a NULL chain is the root itself. Rendered only when a
 * problem is reported, so the happy path allocates nothing for paths.
 */
struct dag__path {
    const struct dag__path *up;
    const char *key; /* object member name, or NULL for an array element */
    size_t index;    /* array index when key is NULL */
};

/* One dependsOn entry: the name (borrowed from the JSON) and its index in the array. */
struct dag__dep_ref {
    const char *name;
    size_t pos;
};

struct dag__task_refs {
    struct dag__dep_ref *refs;
    size_t n;
    int lost; /* an entry was not a string or named no task: its deps are incomplete */
};

struct dag__parser {
    struct dag_problems *probs;
    size_t nproblems;            /* problems found by this parse, stored or dropped */
    size_t suggest_budget;       /* edit-distance cells left, see DAG__SUGGEST_BUDGET */
    struct workflow *wf;         /* being built; owned by dag_parse() */
    struct dag__task_refs *refs; /* [nrefs] dependsOn names per task, or NULL */
    size_t nrefs;
    int params_broken; /* "params" was not an object: no param name is known */
};

/*
 * Record one problem at `at` (line/column 0 when unknown). The message is
 * formatted, then control characters are escaped and any broken UTF-8
 * (from cutting a long subject) is replaced, so it is safe to print or put
 * in JSON. Beyond DAG_MAX_PROBLEMS stored problems only `dropped` grows.
 */
void dag__problem(struct dag__parser *p, const struct dag__path *at, int line, int column,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Append one object member segment of a path: ".key" or ["odd key"]. */
struct strbuf;
void dag__path_add_key(struct strbuf *sb, const char *key);

/* Are the stored problems full (so work spent on a nicer message is wasted)? */
int dag__problems_full(const struct dag__parser *p);

/*
 * The nearest of `cands[0..n)` to `word` by edit distance (with adjacent
 * transpositions), when close enough relative to the lengths to be a
 * plausible typo; NULL otherwise. `exclude` (may be NULL) is never offered;
 * NULL entries in `cands` are skipped. Spends p->suggest_budget.
 */
const char *dag__suggest(struct dag__parser *p, const char *word, const char *const *cands,
                         size_t n, const char *exclude);

/*
 * Quoting a subject of unbounded length in a message: use the format
 * "'%.*s%s'" with the arguments DAG__Q(s); long subjects are cut at a
 * character boundary and end with "...".
 */
size_t dag__qlen(const char *s);
const char *dag__qell(const char *s);
#define DAG__Q(s) (int)dag__qlen(s), (s), dag__qell(s)

/* Pass 2: resolve dependencies, check the graph, compute wf->topo if no problem so far. */
void dag__check_graph(struct dag__parser *p);

/* Pass 3 (dag_templates.c): the {{ ... }} placeholders of command tasks refer
 * to declared params, upstream tasks, the execution and its due time. */
void dag__check_templates(struct dag__parser *p);

/* Free the strings of an HTTP request's fields (dag.c). */
struct dag_http;
void dag__http_release(struct dag_http *h);

/* Pass 1b (dag_secrets.c): no literal credentials in HTTP tasks and webhooks. */
void dag__check_credentials(struct dag__parser *p);

#endif
