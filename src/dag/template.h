/*
 * template.h - "{{ ref }}" placeholders in workflow strings: parsing, the
 * refs they name (for validation at definition time) and rendering against
 * an execution's context.
 *
 * Syntax. A placeholder is "{{", optional white space (spaces, tabs,
 * newlines), a ref, optional white space, "}}". A ref is one of
 *
 *     params.NAME              then any .field / [N] (object params)
 *     tasks.NAME.output        then any .field / [N]
 *     execution.id
 *     scheduledFor
 *     item                     then any .field / [N] (fan-out items)
 *     index
 *
 * where NAME and field are [A-Za-z_][A-Za-z0-9_-]* and N is a decimal index
 * of at most 9 digits. Everything outside placeholders is literal text; a
 * lone "{" or "}}" is literal. To write a literal "{{", use the quoted form
 * "{{ '{{' }}": a placeholder holding a single-quoted string (which cannot
 * contain a ') inserts that string as literal text. There is no other escape.
 *
 * Errors name a position as "column C" (1-based, counted in bytes), or
 * "line L, column C" when the text has a newline before the position.
 *
 * Context. Rendering reads a JSON object of the form
 *     {"params": {...}, "tasks": {"NAME": {"output": ...}},
 *      "execution": {"id": ...}, "scheduledFor": "...", "item": ..., "index": N}
 * Any member may be absent; a ref to an absent value is an error at render time.
 *
 * Pure: no I/O, no global state; safe to call from any thread.
 */
#ifndef ORCH_DAG_TEMPLATE_H
#define ORCH_DAG_TEMPLATE_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

/* Limits on untrusted templates. */
#ifndef TPL_MAX_BYTES
#define TPL_MAX_BYTES (1024u * 1024) /* a longer template is rejected (ERR_TOO_BIG) */
#endif
#ifndef TPL_MAX_OUTPUT
#define TPL_MAX_OUTPUT (1024u * 1024) /* a longer rendering is an error (ERR_TOO_BIG) */
#endif

/* What a ref starts with; the member name in the context is tpl_root_name(). */
enum tpl_root {
    TPL_PARAMS = 0,
    TPL_TASKS,
    TPL_EXECUTION,
    TPL_SCHEDULED_FOR,
    TPL_ITEM,
    TPL_INDEX,
};

/* How tpl_render() inserts values. */
enum tpl_quote {
    TPL_RAW = 0, /* as is */
    /*
     * For a command run by POSIX sh: each inserted value becomes one single-
     * quoted shell word ('...', with each ' written as '\''), so no value can
     * inject shell syntax, expand variables or split into several words.
     * Literal text of the template is the author's shell code and passes
     * unchanged, so write placeholders unquoted: echo {{ params.msg }}.
     */
    TPL_SHELL,
    /*
     * For a URL: each byte of an inserted value other than A-Z a-z 0-9 - . _ ~
     * is percent-encoded ("a b&c/d" becomes "a%20b%26c%2Fd"), and so are the
     * dots of a value that is "." or "..": a value is one path segment or
     * query value, and cannot add parameters, path segments or climb the path.
     * (Where it may stand, the host, is the caller's to check.)
     */
    TPL_URL,
};

struct tpl_seg; /* private: one .field or [N] step */

/*
 * One parsed ref. The first four members are readable; the others are private.
 * All strings are owned by the ref.
 */
struct tpl_ref {
    enum tpl_root root;
    char *name;    /* TPL_PARAMS: the param; TPL_TASKS: the task; else NULL */
    char *path;    /* the ref as written: "tasks.extract.output.files[0].path" */
    size_t column; /* 1 + the byte offset of the ref in the parsed text */
    struct tpl_seg *segs;
    size_t nsegs;
};

struct tpl; /* opaque: a parsed template */

/*
 * Parse `text` (NUL-terminated, at most TPL_MAX_BYTES). On success returns 0
 * and *out is a new template (free with tpl_free). On failure returns
 * ERR_INVALID (ERR_TOO_BIG for an over-long text), *out is NULL and `err`
 * says what and where: "unclosed '{{' at column 5", "empty placeholder at
 * column 1", "unknown root 'param' at column 4 (known: ...)".
 */
int tpl_parse(const char *text, struct tpl **out, struct err *err);

/* Accepts NULL. */
void tpl_free(struct tpl *t);

/* The refs of `t` in the order written; tpl_ref_at() is borrowed from `t`. */
size_t tpl_nrefs(const struct tpl *t);
const struct tpl_ref *tpl_ref_at(const struct tpl *t, size_t i);

/*
 * Render `t` against `ctx` into *out, a new NUL-terminated string the caller
 * frees with free(). String values are inserted as is, other values as
 * compact JSON text ("3", "true", "null", "{\"a\":1}"), each then quoted as
 * `quote` says. On failure *out is NULL and the error is ERR_NOT_FOUND for
 * an absent value ("tasks.extract.output.path: no field 'path'"),
 * ERR_INVALID for a value of the wrong shape or a string holding a NUL byte,
 * ERR_TOO_BIG past TPL_MAX_OUTPUT bytes.
 */
int tpl_render(const struct tpl *t, const json_t *ctx, enum tpl_quote quote, char **out,
               struct err *err);

/*
 * Like tpl_render() with TPL_RAW, but as a JSON value: when `t` is exactly
 * one ref placeholder (no text around it, not even spaces), *out is the
 * referenced value itself ("{{ tasks.list.output.files }}" gives the array);
 * otherwise it is the rendered text as a JSON string (ERR_INVALID if that is
 * not valid UTF-8). *out is a new reference: json_decref() it.
 */
int tpl_eval_json(const struct tpl *t, const json_t *ctx, json_t **out, struct err *err);

/*
 * Building blocks for other parsers that embed placeholders (expr.h).
 *
 * tpl_ref_parse() parses one "{{ ref }}" starting at text[*pos] (which must
 * be "{{"); the quoted literal form is not accepted. On success *pos is just
 * past "}}" and *out is filled (release with tpl_ref_release); on failure
 * *out is zeroed and positions in `err` are relative to the start of `text`.
 */
int tpl_ref_parse(const char *text, size_t *pos, struct tpl_ref *out, struct err *err);
void tpl_ref_release(struct tpl_ref *ref);

/*
 * Find the value `ref` names in `ctx`. *out is borrowed from `ctx`. Errors as
 * for tpl_render(), the message starting with the ref's path.
 */
int tpl_ref_lookup(const struct tpl_ref *ref, const json_t *ctx, json_t **out, struct err *err);

/*
 * Byte `off` of `text` as messages name it (see the top of this file),
 * returned by value so that it can be used inline: tpl_where(text, off).s
 */
struct tpl_pos {
    char s[48];
};
struct tpl_pos tpl_where(const char *text, size_t off);

/* "params", "tasks", "execution", "scheduledFor", "item", "index". Never NULL. */
const char *tpl_root_name(enum tpl_root root);

#endif
