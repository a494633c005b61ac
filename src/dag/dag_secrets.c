/*
 * dag_secrets.c - no credentials written in a definition.
 *
 * A definition is shown to every API key with the read scope (GET
 * /v1/workflows/{name}), so an HTTP task's credentials never belong in it.
 * They come from the environment through `auth` (the names of variables:
 * bearerEnv, basic with passwordEnv, or header/query with valueEnv), or from
 * placeholders filled in at run time (an upstream task's output, a param
 * given when the execution starts). Refused, each with its JSON path:
 *   - a header whose name says it carries a credential (Authorization,
 *     Proxy-Authorization, Cookie, and any name containing auth, token,
 *     secret, passw, apikey, api-key, api_key, session, signature or
 *     credential) unless its value is placeholders only, after an optional
 *     scheme word: "Bearer {{ tasks.login.output.token }}";
 *   - user-info in the url (http://user:password@host/);
 *   - a query parameter whose name says it is a secret (sig, pwd, a
 *     name ending in _key, -key or .key, or containing one of the words above) whose value
 *     is not placeholders only: ?token=abc;
 *   - in those values, a placeholder naming a param that has a default
 *     (the default is written in the definition).
 * dag_redact_definition() applies the same rules to a definition stored
 * before they existed, before it is shown.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/strbuf.h"
#include "base/xalloc.h"
#include "dag_internal.h"
#include "template.h"

#include "base/banned.h"

#define REDACTED "[redacted]"

static const char *const cred_words[] = {"auth",    "token",   "secret",    "passw",
                                         "apikey",  "api-key", "api_key",   "cookie",
                                         "session", "signature", "credential"};

static int has_word(const char *s, size_t n)
{
    for (size_t w = 0; w < sizeof(cred_words) / sizeof(cred_words[0]); w++) {
        size_t wl = strlen(cred_words[w]);
        for (size_t i = 0; i + wl <= n; i++)
            if (!strncasecmp(s + i, cred_words[w], wl))
                return 1;
    }
    return 0;
}

int dag_header_is_credential(const char *name)
{
    return has_word(name, strlen(name));
}

int dag_query_key_is_secret(const char *key, size_t len)
{
    if (len == 3 && (!strncasecmp(key, "sig", 3) || !strncasecmp(key, "pwd", 3)))
        return 1;
    /* access_key, private-key, subscription.key, apikey */
    if (len > 3 && !strncasecmp(key + len - 3, "key", 3) &&
        strchr("_-.iI", key[len - 4]))
        return 1;
    return has_word(key, len);
}

/*
 * Is v[0..n) made of placeholders only (at least one), with spaces between,
 * after an optional scheme word ("Bearer ") when `scheme`? The quoted form
 * {{ '...' }} is literal text.
 */
static int only_placeholders(const char *v, size_t n, int scheme)
{
    size_t i = 0;
    int any = 0;

    if (scheme) {
        size_t j = 0;
        while (j < n && ((v[j] >= 'A' && v[j] <= 'Z') || (v[j] >= 'a' && v[j] <= 'z') ||
                         v[j] == '-'))
            j++;
        if (j && j < n && v[j] == ' ')
            i = j;
    }
    while (i < n) {
        const char *end;
        size_t j;
        if (v[i] == ' ') {
            i++;
            continue;
        }
        if (i + 1 >= n || v[i] != '{' || v[i + 1] != '{')
            return 0;
        for (j = i + 2; j < n && (v[j] == ' ' || v[j] == '\t' || v[j] == '\n'); j++)
            ;
        if (j < n && v[j] == '\'')
            return 0;
        end = memmem(v + i + 2, n - i - 2, "}}", 2);
        if (!end)
            return 0;
        i = (size_t)(end - v) + 2;
        any = 1;
    }
    return any;
}

/* Placeholders of v[0..n) naming a param with a default: a problem for each. */
static void check_defaults(struct dag__parser *p, const struct dag__path *at, const char *v,
                           size_t n, const char *what)
{
    char *text = xstrndup(v, n);
    struct tpl *t = NULL;
    struct err err = ERR_INIT;

    if (tpl_parse(text, &t, &err) == 0) {
        for (size_t r = 0; r < tpl_nrefs(t); r++) {
            const struct tpl_ref *ref = tpl_ref_at(t, r);
            if (ref->root != TPL_PARAMS)
                continue;
            for (size_t k = 0; k < p->wf->nparams; k++)
                if (!strcmp(p->wf->params[k].name, ref->name) && p->wf->params[k].default_json)
                    dag__problem(p, at, 0, 0, "{{ %.*s%s }} in %s names a param with a "
                                 "default, which is written in the definition: declare it "
                                 "without a default (given when the execution starts), or use "
                                 "'auth' with the name of an environment variable",
                                 DAG__Q(ref->path), what);
        }
    }
    tpl_free(t);
    free(text);
}

/* The parts of a url: user-info [ui, ui + uilen) ending at '@' (uilen 0: none)
 * and the query [q, q + qlen) after '?' (q NULL: none). */
struct url_parts {
    const char *ui;
    size_t uilen;
    const char *q;
    size_t qlen;
};

static void url_split(const char *url, struct url_parts *u)
{
    const char *auth = strstr(url, "://");
    const char *q = strchr(url, '?');
    memset(u, 0, sizeof(*u));
    if (auth && strncmp(url, "{{", 2) != 0 && (!q || auth < q)) {
        size_t alen;
        const char *at;
        auth += 3;
        alen = strcspn(auth, "/?#");
        at = memchr(auth, '@', alen);
        if (at) {
            /* the last '@' of the authority ends the user-info */
            const char *last = at;
            while ((at = memchr(last + 1, '@', alen - (size_t)(last + 1 - auth))) != NULL)
                last = at;
            u->ui = auth;
            u->uilen = (size_t)(last - auth) + 1;
        }
    }
    if (q) {
        u->q = q + 1;
        u->qlen = strcspn(q + 1, "#");
    }
}

static const char CRED_SOURCES[] =
    "use 'auth' with the name of an environment variable (\"bearerEnv\", basic with "
    "\"passwordEnv\", or \"header\"/\"query\" with \"valueEnv\"), or a placeholder filled in "
    "at run time";

static void check_http(struct dag__parser *p, const struct dag__path *task, const struct dag_http *h)
{
    struct dag__path hdr = {task, "headers", 0};
    struct dag__path url = {task, "url", 0};

    for (size_t k = 0; k < h->nheaders; k++) {
        struct dag__path at = {&hdr, h->headers[k].key, 0};
        const char *v = h->headers[k].value;
        if (!dag_header_is_credential(h->headers[k].key))
            continue;
        if (!only_placeholders(v, strlen(v), 1))
            dag__problem(p, &at, 0, 0, "header '%.*s%s' carries a credential, which must not "
                         "be written in a definition (every read key can see it): %s "
                         "(\"Bearer {{ tasks.login.output.token }}\")",
                         DAG__Q(h->headers[k].key), CRED_SOURCES);
        else
            check_defaults(p, &at, v, strlen(v), "a credential header");
    }
    if (h->url) {
        struct url_parts u;
        url_split(h->url, &u);
        if (u.uilen)
            dag__problem(p, &url, 0, 0, "the url holds credentials (user-info before '@'), "
                         "which must not be written in a definition (every read key can see "
                         "it): use 'auth' ({\"usernameEnv\": \"USER\", \"passwordEnv\": "
                         "\"PASSWORD\"})");
        for (size_t i = 0; u.q && i < u.qlen;) {
            size_t plen = strcspn(u.q + i, "&"), klen;
            const char *kv = u.q + i;
            if (plen > u.qlen - i)
                plen = u.qlen - i;
            klen = strcspn(kv, "=&#");
            if (klen > plen)
                klen = plen;
            if (klen < plen && dag_query_key_is_secret(kv, klen)) {
                const char *v = kv + klen + 1;
                size_t vlen = plen - klen - 1;
                if (!only_placeholders(v, vlen, 0))
                    dag__problem(p, &url, 0, 0, "query parameter '%.*s' looks like a "
                                 "credential, which must not be written in a definition "
                                 "(every read key can see it): %s (%.*s={{ params.name }}, "
                                 "a param given when the execution starts)",
                                 (int)(klen > 100 ? 100 : klen), kv, CRED_SOURCES,
                                 (int)(klen > 100 ? 100 : klen), kv);
                else
                    check_defaults(p, &url, v, vlen, "a credential query parameter");
            }
            i += plen + 1;
        }
    }
}

void dag__check_credentials(struct dag__parser *p)
{
    for (size_t i = 0; i < p->wf->ntasks; i++) {
        struct dag__path tasks = {NULL, "tasks", 0};
        struct dag__path task = {&tasks, NULL, i};
        if (p->wf->tasks[i].type == TASK_HTTP)
            check_http(p, &task, &p->wf->tasks[i].http);
    }
    for (size_t i = 0; i < p->wf->nnotify; i++) {
        struct dag__path notify = {NULL, "notify", 0};
        struct dag__path rule = {&notify, NULL, i};
        struct dag__path hook = {&rule, "webhook", 0};
        check_http(p, &hook, &p->wf->notify[i].hook);
    }
}

/* ------------------------------------------------------------------ redaction */

static size_t redact_url(json_t *task)
{
    json_t *jurl = json_object_get(task, "url");
    const char *url = json_string_value(jurl);
    struct strbuf sb = STRBUF_INIT;
    struct url_parts u;
    size_t n = 0, done = 0;

    if (!url)
        return 0;
    url_split(url, &u);
    if (u.uilen) {
        strbuf_add(&sb, url, (size_t)(u.ui - url));
        strbuf_adds(&sb, REDACTED "@");
        done = (size_t)(u.ui - url) + u.uilen;
        n++;
    }
    for (size_t i = 0; u.q && i < u.qlen;) {
        const char *kv = u.q + i;
        size_t plen = strcspn(kv, "&"), klen;
        if (plen > u.qlen - i)
            plen = u.qlen - i;
        klen = strcspn(kv, "=&#");
        if (klen < plen && dag_query_key_is_secret(kv, klen) &&
            !only_placeholders(kv + klen + 1, plen - klen - 1, 0)) {
            size_t vstart = (size_t)(kv - url) + klen + 1;
            strbuf_add(&sb, url + done, vstart - done);
            strbuf_adds(&sb, REDACTED);
            done = vstart + plen - klen - 1;
            n++;
        }
        i += plen + 1;
    }
    if (n) {
        strbuf_adds(&sb, url + done);
        json_object_set_new(task, "url", json_string(sb.buf));
    }
    strbuf_release(&sb);
    return n;
}

size_t dag_redact_definition(json_t *def)
{
    json_t *tasks = json_object_get(def, "tasks"), *task;
    size_t i, n = 0;

    json_array_foreach(tasks, i, task)
    {
        json_t *type = json_object_get(task, "type");
        json_t *headers = json_object_get(task, "headers"), *v;
        const char *key;
        if (!json_is_object(task) || !json_is_string(type) ||
            strcmp(json_string_value(type), "http") != 0)
            continue;
        json_object_foreach(headers, key, v)
        {
            const char *s = json_string_value(v);
            if (dag_header_is_credential(key) && (!s || !only_placeholders(s, strlen(s), 1))) {
                json_object_set_new(headers, key, json_string(REDACTED));
                n++;
            }
        }
        n += redact_url(task);
    }
    return n;
}
