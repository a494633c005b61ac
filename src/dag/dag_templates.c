/*
 * dag_templates.c - pass 3 of a definition: the {{ ... }} placeholders of
 * command tasks (template.h) are checked where they are written, so that a
 * reference that can never be filled is a definition error, not a failure at
 * run time:
 *   - params.NAME must be a declared param;
 *   - tasks.NAME must be a task upstream of this one (reachable through
 *     dependsOn), whose output is known once it has succeeded;
 *   - execution.id and scheduledFor are always there;
 *   - item and index only in a task that fans out over a list (forEach).
 * Placeholders may stand in a command's arguments, its shell string and the
 * values of the task's env; in an HTTP task's url, header values, body and
 * username; in the param values a workflow task passes; in `forEach` (which
 * must be one placeholder) and in a task's `when` condition (expr.h), which
 * is parsed here too. The workflow's `outputs` may name any of its tasks.
 */
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "dag_internal.h"
#include "expr.h"
#include "template.h"

#include "base/banned.h"

/* upstream[j] = 1 for every task `i` depends on, directly or not. Returns 1
 * if that is all of them, 0 if a dependsOn entry of `i` or of one of them was
 * lost to a problem found before (refs[].lost). */
static int mark_upstream(const struct workflow *wf, const struct dag__task_refs *refs, size_t i,
                         unsigned char *upstream, size_t *stack)
{
    size_t n = 0;
    int known = 1;

    memset(upstream, 0, wf->ntasks);
    stack[n++] = i;
    while (n) {
        size_t ti = stack[--n];
        const struct dag_task *t = &wf->tasks[ti];
        if (refs[ti].lost)
            known = 0;
        for (size_t k = 0; k < t->ndeps; k++) {
            size_t d = t->deps[k];
            if (!upstream[d]) {
                upstream[d] = 1;
                stack[n++] = d;
            }
        }
    }
    return known;
}

static size_t find_task(const struct workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->ntasks; i++)
        if (wf->tasks[i].name && !strcmp(wf->tasks[i].name, name))
            return i;
    return (size_t)-1;
}

static int has_param(const struct workflow *wf, const char *name)
{
    for (size_t i = 0; i < wf->nparams; i++)
        if (!strcmp(wf->params[i].name, name))
            return 1;
    return 0;
}

static int has_output(const struct dag_task *t)
{
    return t->type == TASK_COMMAND || t->type == TASK_HTTP || t->type == TASK_WORKFLOW ||
           t->for_each || t->for_each_json;
}

/* What a placeholder at hand may name. */
struct scope {
    size_t ti;                      /* the task it belongs to; NO_TASK: the workflow's outputs */
    const unsigned char *upstream;  /* tasks upstream of ti */
    int items;                      /* item and index are there */
    /* Cleared when problems found before made it unknowable (no messages then):
     * deps: some dependsOn entry of ti or of a task upstream was lost;
     * names: some task has no name. */
    int deps_known, names_known;
};

#define NO_TASK ((size_t)-1)

static void check_ref(struct dag__parser *p, const struct dag__path *at,
                      const struct tpl_ref *ref, const struct scope *sc)
{
    const struct workflow *wf = p->wf;
    size_t ti = sc->ti;
    {
        switch (ref->root) {
        case TPL_PARAMS:
            if (!p->params_broken && !has_param(wf, ref->name))
                dag__problem(p, at, 0, 0,
                             "{{ %.*s%s }}: the workflow declares no param '%.*s%s'",
                             DAG__Q(ref->path), DAG__Q(ref->name));
            break;
        case TPL_TASKS: {
            size_t j = find_task(wf, ref->name);
            if (j == (size_t)-1) {
                if (sc->names_known)
                    dag__problem(p, at, 0, 0, "{{ %.*s%s }}: there is no task '%.*s%s'",
                                 DAG__Q(ref->path), DAG__Q(ref->name));
            } else if (ti != NO_TASK && (j == ti || !sc->upstream[j])) {
                if (sc->deps_known)
                dag__problem(p, at, 0, 0,
                             "{{ %.*s%s }}: task '%.*s%s' is not upstream of '%.*s%s' (add it "
                             "to dependsOn, directly or through another task)",
                             DAG__Q(ref->path), DAG__Q(ref->name), DAG__Q(wf->tasks[ti].name));
            } else if (!has_output(&wf->tasks[j]))
                dag__problem(p, at, 0, 0,
                             "{{ %.*s%s }}: task '%.*s%s' has no output (command, http and "
                             "workflow tasks have one, and tasks with forEach)",
                             DAG__Q(ref->path), DAG__Q(ref->name));
            break;
        }
        case TPL_EXECUTION:
            if (strcmp(ref->path, "execution.id") != 0)
                dag__problem(p, at, 0, 0, "{{ %.*s%s }}: an execution has 'execution.id' only",
                             DAG__Q(ref->path));
            break;
        case TPL_SCHEDULED_FOR:
            break;
        case TPL_ITEM:
        case TPL_INDEX:
            if (!sc->items)
                dag__problem(p, at, 0, 0, "{{ %.*s%s }}: 'item' and 'index' exist only in a "
                             "task that fans out over a list (forEach), not in its forEach, "
                             "when or the workflow's outputs",
                             DAG__Q(ref->path));
            break;
        }
    }
}

static void check_one(struct dag__parser *p, const struct dag__path *at, const char *text,
                      const struct scope *sc)
{
    struct tpl *t = NULL;
    struct err err = ERR_INIT;

    if (!text || !strstr(text, "{{"))
        return;
    if (tpl_parse(text, &t, &err) != 0) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return;
    }
    for (size_t r = 0; r < tpl_nrefs(t); r++)
        check_ref(p, at, tpl_ref_at(t, r), sc);
    tpl_free(t);
}

static void check_when(struct dag__parser *p, const struct dag__path *at, const char *text,
                       const struct scope *sc)
{
    struct expr *e = NULL;
    struct err err = ERR_INIT;

    if (expr_parse(text, &e, &err) != 0) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return;
    }
    for (size_t r = 0; r < expr_nrefs(e); r++)
        check_ref(p, at, expr_ref_at(e, r), sc);
    expr_free(e);
}

/* The strings of a JSON body or of params, each a template. */
static void check_json_strings(struct dag__parser *p, const struct dag__path *at,
                               const json_t *v, const struct scope *sc, int depth)
{
    const char *key;
    json_t *e;
    size_t i;

    if (depth > 64)
        return;
    if (json_is_string(v)) {
        check_one(p, at, json_string_value(v), sc);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, e)
        {
            struct dag__path f = {at, key, 0};
            check_json_strings(p, &f, e, sc, depth + 1);
        }
    } else if (json_is_array(v)) {
        json_array_foreach((json_t *)v, i, e)
        {
            struct dag__path f = {at, NULL, i};
            check_json_strings(p, &f, e, sc, depth + 1);
        }
    }
}

static void check_json_text(struct dag__parser *p, const struct dag__path *at, const char *text,
                            const struct scope *sc)
{
    json_t *v;

    if (!text || !strstr(text, "{{"))
        return;
    v = json_loads(text, JSON_DECODE_ANY, NULL);
    check_json_strings(p, at, v, sc, 0);
    json_decref(v);
}

/* forEach: exactly one placeholder, which must name a list when it runs. */
static void check_for_each(struct dag__parser *p, const struct dag__path *at, const char *text,
                           const struct scope *sc)
{
    struct tpl *t = NULL;
    struct err err = ERR_INIT;
    size_t n = strlen(text);

    if (tpl_parse(text, &t, &err) != 0) {
        dag__problem(p, at, 0, 0, "%s", err.msg);
        return;
    }
    if (tpl_nrefs(t) != 1 || strncmp(text, "{{", 2) != 0 || n < 4 ||
        strcmp(text + n - 2, "}}") != 0)
        dag__problem(p, at, 0, 0, "'forEach' must be a list, or one placeholder that names a "
                     "list (\"{{ tasks.list.output.files }}\"), got '%.*s%s'", DAG__Q(text));
    else
        check_ref(p, at, tpl_ref_at(t, 0), sc);
    tpl_free(t);
}

/*
 * Placeholders where a shell would run their value as code. In a shell
 * string each value becomes one single-quoted word, which protects it only
 * where the author wrote it unquoted: inside "..." the quotes are literal
 * and $(...) in the value runs; inside '...' they end orch's quoting; in a
 * here-document the value is expanded like in "..."; after `eval` or as the
 * script of `sh -c` the value is code. And in an argv that runs `sh -c`, the
 * script argument is shell code that orch does not quote at all. These are
 * refused with the safe form in the message.
 */
#define SH_SAFE                                                                             \
    "write the placeholder unquoted (orch makes each value one single-quoted word): "    \
    "echo {{ params.x }}, or pass the value through env: \"env\": {\"X\": \"{{ params.x }}\"} " \
    "and echo \"$X\""
#define SH_CODE_SAFE                                                                          \
    "pass the value as an argument after the script and use \"$1\" there: "               \
    "[\"sh\", \"-c\", \"echo \\\"$1\\\"\", \"sh\", \"{{ params.x }}\"], or through env: "     \
    "\"env\": {\"X\": \"{{ params.x }}\"} and \"$X\" in the script"

static const char *const shell_names[] = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"};

static int is_shell(const char *w, size_t n)
{
    size_t b = n;

    while (b && w[b - 1] != '/')
        b--;
    for (size_t i = 0; i < sizeof(shell_names) / sizeof(shell_names[0]); i++)
        if (strlen(shell_names[i]) == n - b && !memcmp(shell_names[i], w + b, n - b))
            return 1;
    return 0;
}

static int word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && !memcmp(w, lit, n);
}

/* One problem naming the placeholder at s[at] ("{{ ... }}", cut when long). */
static size_t shell_problem(struct dag__parser *p, const struct dag__path *path, const char *s,
                            size_t at, const char *where, const char *safe)
{
    const char *end = strstr(s + at + 2, "}}");
    size_t len = end ? (size_t)(end - (s + at)) + 2 : strlen(s + at);

    dag__problem(p, path, 0, 0, "%.*s%s is %s; %s", len > 100 ? 100 : (int)len, s + at,
                 len > 100 ? "..." : "", where, safe);
    return len;
}

static size_t skip_placeholder(const char *s, size_t at)
{
    const char *end = strstr(s + at + 2, "}}");
    return end ? (size_t)(end - s) + 2 : at + strlen(s + at);
}

enum sh_ctx { SH_CMD, SH_DQ, SH_BQ, SH_PAREN };

struct sh_cmd {
    size_t nwords;     /* words ended so far in this simple command */
    int eval;          /* its first word is `eval` */
    int not_prefix;    /* a word that is no wrapper (env, exec, ...) has ended */
    int shell;         /* the command (after wrappers) is a shell */
    int skip;          /* the next word is an option's argument (-o NAME) */
    int dash_c;        /* ... given an option with c (-c, -ec) */
    int script_seen;   /* ... and the script word after it has ended */
};

/* Words that run the command after them: env A=1 sh -c, exec, nohup, ... */
static int is_wrapper(const char *w, size_t n)
{
    static const char *const wrappers[] = {"env",  "exec",   "command", "nohup",   "sudo",
                                           "nice", "time",   "setsid",  "xargs",   "busybox",
                                           "timeout", "stdbuf", "ionice", "chrt"};
    if (memchr(w, '=', n) || (n > 1 && w[0] == '-') || (n && w[0] >= '0' && w[0] <= '9'))
        return 1; /* an assignment, an option of the wrapper or a number (nice -n 5) */
    for (size_t i = 0; i < sizeof(wrappers) / sizeof(wrappers[0]); i++)
        if (word_is(w, n, wrappers[i]))
            return 1;
    return 0;
}

static void end_word(const char *s, size_t from, size_t to, struct sh_cmd *c)
{
    const char *w = s + from;
    size_t n = to - from;

    if (c->nwords == 0 && (word_is(w, n, "if") || word_is(w, n, "then") ||
                           word_is(w, n, "else") || word_is(w, n, "elif") ||
                           word_is(w, n, "do") || word_is(w, n, "while") ||
                           word_is(w, n, "until") || word_is(w, n, "!") || word_is(w, n, "{")))
        return; /* a reserved word: the command starts after it */
    if (c->nwords == 0 && word_is(w, n, "eval"))
        c->eval = 1;
    if (!c->shell) {
        if (!c->not_prefix && is_shell(w, n))
            c->shell = 1;
        else if (!is_wrapper(w, n))
            c->not_prefix = 1;
    } else if (c->skip) {
        c->skip = 0;
    } else if (!c->script_seen && n > 1 && (w[0] == '-' || w[0] == '+')) {
        if (w[0] == '-' && w[1] != '-' && memchr(w + 1, 'c', n - 1))
            c->dash_c = 1;
        if (memchr(w + 1, 'o', n - 1) && w[1] != '-')
            c->skip = 1; /* -o pipefail */
    } else if (c->dash_c) {
        c->script_seen = 1;
    } else {
        c->script_seen = 1; /* sh FILE: a script file, whose arguments are not code */
    }
    c->nwords++;
}

/*
 * A here-document's operator at s[i] ("<<"): its delimiter, and whether its
 * body is expanded (an unquoted delimiter). Returns the offset after it.
 */
static size_t read_heredoc_op(const char *s, size_t i, char *delim, size_t dcap, int *expand,
                              int *tabs)
{
    size_t n = 0;

    i += 2;
    *tabs = s[i] == '-';
    if (*tabs)
        i++;
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    *expand = 1;
    while (s[i] && !strchr(" \t\n;&|<>()", s[i])) {
        if (s[i] == '\'' || s[i] == '"' || s[i] == '\\') {
            *expand = 0;
            i++;
            continue;
        }
        if (n + 1 < dcap)
            delim[n++] = s[i];
        i++;
    }
    delim[n] = '\0';
    return i;
}

static void check_shell_string(struct dag__parser *p, const struct dag__path *at, const char *s)
{
    enum sh_ctx st[64];
    unsigned parens[64];
    size_t n = 1, i = 0, wstart = 0;
    int word = 0, hd_pending = 0, hd_expand = 0, hd_tabs = 0;
    char hd[64] = "";
    struct sh_cmd cmd;

    memset(&cmd, 0, sizeof(cmd));
    st[0] = SH_CMD;
    parens[0] = 0;
#define SH_PUSH(c)                                                                          \
    do {                                                                                    \
        if (n < 64) {                                                                       \
            st[n] = (c);                                                                    \
            parens[n++] = 0;                                                                \
        }                                                                                   \
    } while (0)
#define SH_START_WORD()                                                                     \
    do {                                                                                    \
        if (!word) {                                                                        \
            word = 1;                                                                       \
            wstart = i;                                                                     \
        }                                                                                   \
    } while (0)
    while (s[i]) {
        enum sh_ctx c = st[n - 1];
        char ch = s[i];

        if (ch == '{' && s[i + 1] == '{') {
            if (c == SH_DQ)
                shell_problem(p, at, s, i, "inside double quotes, where the shell still runs "
                              "$(...) and backquotes in its value", SH_SAFE);
            else if (cmd.eval)
                shell_problem(p, at, s, i, "run as shell code by 'eval'", SH_CODE_SAFE);
            else if (cmd.dash_c && !cmd.script_seen)
                shell_problem(p, at, s, i, "in the script of 'sh -c', which runs it as shell "
                              "code", SH_CODE_SAFE);
            if (c != SH_DQ)
                SH_START_WORD();
            i = skip_placeholder(s, i);
            continue;
        }
        if (c == SH_DQ) {
            if (ch == '\\' && s[i + 1])
                i++;
            else if (ch == '"')
                n--;
            else if (ch == '`')
                SH_PUSH(SH_BQ);
            else if (ch == '$' && s[i + 1] == '(') {
                SH_PUSH(SH_PAREN);
                i++;
            }
            i++;
            continue;
        }
        if (ch == '\\' && s[i + 1]) {
            SH_START_WORD();
            i += 2;
            continue;
        }
        if (ch == '\'' || (ch == '$' && s[i + 1] == '\'')) {
            int ansi = ch == '$';
            SH_START_WORD();
            for (i += ansi ? 2 : 1; s[i] && s[i] != '\'';) {
                if (ansi && s[i] == '\\' && s[i + 1]) {
                    i += 2;
                } else if (s[i] == '{' && s[i + 1] == '{') {
                    shell_problem(p, at, s, i, "inside single quotes, which end orch's own "
                                  "quoting of the value", SH_SAFE);
                    i = skip_placeholder(s, i);
                } else {
                    i++;
                }
            }
            if (s[i])
                i++;
            continue;
        }
        if (ch == '"') {
            SH_START_WORD();
            SH_PUSH(SH_DQ);
            i++;
            continue;
        }
        if (ch == '`' && c == SH_BQ) {
            n--;
            i++;
            continue;
        }
        if (ch == '`' || (ch == '$' && s[i + 1] == '(')) {
            SH_START_WORD();
            SH_PUSH(ch == '`' ? SH_BQ : SH_PAREN);
            i += ch == '`' ? 1 : 2;
            continue;
        }
        if (c == SH_PAREN && ch == ')' && !parens[n - 1]) {
            n--;
            i++;
            continue;
        }
        if (ch == '#' && !word) {
            while (s[i] && s[i] != '\n')
                i++;
            continue;
        }
        if (ch == '<' && s[i + 1] == '<' && s[i + 2] == '<') {
            if (word)
                end_word(s, wstart, i, &cmd);
            word = 0;
            i += 3; /* a here-string: its word is an ordinary one */
            continue;
        }
        if (ch == '<' && s[i + 1] == '<') {
            if (word)
                end_word(s, wstart, i, &cmd);
            word = 0;
            i = read_heredoc_op(s, i, hd, sizeof(hd), &hd_expand, &hd_tabs);
            hd_pending = 1;
            continue;
        }
        if (ch == ' ' || ch == '\t' || ch == '\n' || strchr(";&|()<>", ch)) {
            if (word)
                end_word(s, wstart, i, &cmd);
            word = 0;
            if (c == SH_PAREN && ch == '(')
                parens[n - 1]++;
            else if (c == SH_PAREN && ch == ')')
                parens[n - 1]--;
            if (ch != ' ' && ch != '\t' && ch != '<' && ch != '>')
                memset(&cmd, 0, sizeof(cmd));
            i++;
            if (ch == '\n' && hd_pending) {
                /* The here-document's body: lines up to the delimiter. */
                while (s[i]) {
                    size_t ls = i, le = i + strcspn(s + i, "\n");
                    size_t t = ls;
                    int found = 0;
                    if (hd_tabs)
                        while (s[t] == '\t')
                            t++;
                    if (le - t == strlen(hd) && !memcmp(s + t, hd, le - t))
                        found = 1;
                    for (size_t k = ls; !found && hd_expand && k + 1 < le; k++)
                        if (s[k] == '{' && s[k + 1] == '{')
                            k = shell_problem(p, at, s, k, "in a here-document, where the "
                                              "shell runs $(...) and backquotes in its value",
                                              SH_SAFE) + k - 1;
                    i = s[le] ? le + 1 : le;
                    if (found)
                        break;
                }
                hd_pending = 0;
            }
            continue;
        }
        SH_START_WORD();
        i++;
    }
#undef SH_PUSH
#undef SH_START_WORD
}

/* An argv that runs `sh -c SCRIPT ...` (or `env ... sh -c`): no placeholder in SCRIPT. */
static void check_argv_shell(struct dag__parser *p, const struct dag__path *cmd,
                             const struct dag_task *t)
{
    size_t k = 0;
    int dash_c = 0;

    if (!t->argv || !t->argc || !t->argv[0])
        return;
    {
        const char *a0 = t->argv[0];
        size_t l = strlen(a0);
        if ((l == 3 || (l > 3 && a0[l - 4] == '/')) && !strcmp(a0 + l - 3, "env"))
            for (k = 1; k < t->argc && t->argv[k] &&
                        (t->argv[k][0] == '-' || strchr(t->argv[k], '='));
                 k++)
                if (!strcmp(t->argv[k], "-u") || !strcmp(t->argv[k], "-C") ||
                    !strcmp(t->argv[k], "-S"))
                    k++;
    }
    if (k >= t->argc || !t->argv[k] || !is_shell(t->argv[k], strlen(t->argv[k])))
        return;
    for (k++; k < t->argc && t->argv[k]; k++) {
        const char *a = t->argv[k];
        if (!strcmp(a, "--")) {
            k++;
            break;
        }
        if (!((a[0] == '-' || a[0] == '+') && a[1]))
            break;
        if (a[0] == '-' && a[1] == '-')
            continue;
        if (a[0] == '-' && strchr(a + 1, 'c'))
            dash_c = 1;
        if (strchr(a + 1, 'o'))
            k++; /* -o NAME */
    }
    if (dash_c && k < t->argc && t->argv[k] && strstr(t->argv[k], "{{")) {
        struct dag__path at = {cmd, NULL, k};
        shell_problem(p, &at, t->argv[k], (size_t)(strstr(t->argv[k], "{{") - t->argv[k]),
                      "in the script of 'sh -c', which runs it as shell code", SH_CODE_SAFE);
    }
}

static void check_task(struct dag__parser *p, const struct dag__path *task, size_t i,
                       const unsigned char *upstream, int deps_known, int names_known)
{
    const struct dag_task *t = &p->wf->tasks[i];
    struct scope plain = {i, upstream, 0, deps_known, names_known};
    struct scope sc = {i, upstream, t->for_each || t->for_each_json, deps_known, names_known};
    struct dag__path cmd = {task, "command", 0};
    struct dag__path env = {task, "env", 0};

    if (t->when) {
        struct dag__path at = {task, "when", 0};
        check_when(p, &at, t->when, &plain);
    }
    if (t->for_each) {
        struct dag__path at = {task, "forEach", 0};
        check_for_each(p, &at, t->for_each, &plain);
    }
    if (t->shell) {
        check_one(p, &cmd, t->shell, &sc);
        check_shell_string(p, &cmd, t->shell);
    }
    check_argv_shell(p, &cmd, t);
    for (size_t k = 0; t->argv && k < t->argc; k++) {
        struct dag__path at = {&cmd, NULL, k};
        if (k == 0 && t->argv[k] && strstr(t->argv[k], "{{"))
            dag__problem(p, &at, 0, 0, "the program name 'command[0]' cannot be a "
                         "template (pass values as arguments)");
        else
            check_one(p, &at, t->argv[k], &sc);
    }
    for (size_t k = 0; k < t->nenv; k++) {
        struct dag__path at = {&env, t->env[k].key, 0};
        check_one(p, &at, t->env[k].value, &sc);
    }
    if (t->type == TASK_HTTP) {
        struct dag__path url = {task, "url", 0};
        struct dag__path hdr = {task, "headers", 0};
        struct dag__path body = {task, "body", 0};
        struct dag__path auth = {task, "auth", 0};
        struct dag__path user = {&auth, "username", 0};
        check_one(p, &url, t->http.url, &sc);
        for (size_t k = 0; k < t->http.nheaders; k++) {
            struct dag__path at = {&hdr, t->http.headers[k].key, 0};
            check_one(p, &at, t->http.headers[k].value, &sc);
        }
        check_one(p, &body, t->http.body, &sc);
        check_json_text(p, &body, t->http.body_json, &sc);
        check_one(p, &user, t->http.username, &sc);
    }
    if (t->type == TASK_WORKFLOW) {
        struct dag__path at = {task, "params", 0};
        check_json_text(p, &at, t->subflow.params_json, &sc);
    }
}

static int has_tpl(const char *s)
{
    return s && strstr(s, "{{") != NULL;
}

/* Does task `t` hold a placeholder or a condition? (Finding what is upstream
 * costs O(tasks), so it is done only for those.) */
static int needs_check(const struct dag_task *t)
{
    if (t->when || t->for_each || has_tpl(t->shell) || has_tpl(t->http.url) ||
        has_tpl(t->http.body) || has_tpl(t->http.body_json) || has_tpl(t->http.username) ||
        has_tpl(t->subflow.params_json))
        return 1;
    for (size_t k = 0; t->argv && k < t->argc; k++)
        if (has_tpl(t->argv[k]))
            return 1;
    for (size_t k = 0; k < t->nenv; k++)
        if (has_tpl(t->env[k].value))
            return 1;
    for (size_t k = 0; k < t->http.nheaders; k++)
        if (has_tpl(t->http.headers[k].value))
            return 1;
    return 0;
}

void dag__check_templates(struct dag__parser *p)
{
    struct workflow *wf = p->wf;
    unsigned char *upstream = xcalloc(wf->ntasks ? wf->ntasks : 1, 1);
    size_t *stack = xcalloc(wf->ntasks ? wf->ntasks : 1, sizeof(*stack));
    int names_known = 1;

    for (size_t i = 0; i < wf->ntasks; i++)
        if (!wf->tasks[i].name)
            names_known = 0;
    for (size_t i = 0; i < wf->ntasks; i++) {
        struct dag__path tasks = {NULL, "tasks", 0};
        struct dag__path task = {&tasks, NULL, i};
        int deps_known;
        if (!needs_check(&wf->tasks[i]))
            continue;
        deps_known = mark_upstream(wf, p->refs, i, upstream, stack) && wf->tasks[i].name;
        check_task(p, &task, i, upstream, deps_known, names_known);
    }
    if (wf->outputs_json) {
        struct dag__path at = {NULL, "outputs", 0};
        struct scope sc = {NO_TASK, upstream, 0, 1, names_known};
        check_json_text(p, &at, wf->outputs_json, &sc);
    }
    free(stack);
    free(upstream);
}
