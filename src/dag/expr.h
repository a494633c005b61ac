/*
 * expr.h - boolean expressions for task conditions ("when").
 *
 * Grammar, loosest binding first:
 *
 *     expr    := and ( "or" and )*
 *     and     := cmp ( "and" cmp )*
 *     cmp     := unary [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" ) unary ]
 *     unary   := "not" unary | operand
 *     operand := NUMBER | STRING | "true" | "false" | "null" | "{{ ref }}" | "(" expr ")"
 *
 * so "not" binds tighter than comparisons, which bind tighter than "and",
 * then "or"; comparisons do not chain ("a < b < c" is an error). NUMBER is
 * JSON-like: -?digits[.digits][(e|E)[+-]digits]. STRING is in '...' or "..."
 * with the escapes \\ \' \" \n \t \r. A ref is written as in templates
 * (template.h), e.g. {{ tasks.check.output.count }}. Keywords are lowercase.
 *
 * Meaning:
 *   - == and != compare any two JSON values deeply; numbers by value
 *     (1 == 1.0), strings bytewise, objects regardless of key order.
 *   - < <= > >= need two numbers (by value) or two strings (bytewise);
 *     anything else is an error when evaluated.
 *   - and, or, not need booleans (anything else is an error: no "truthiness");
 *     and/or evaluate left to right and stop as soon as the result is known,
 *     so "false and X" never evaluates X.
 *   - The whole expression must give a boolean.
 *
 * Limits: at most EXPR_MAX_LEN bytes and EXPR_MAX_DEPTH nested parentheses
 * and "not"s, so hostile input cannot exhaust the stack. Errors name the
 * position like templates do ("unexpected ')' at column 12").
 *
 * Pure: no I/O, no global state; safe to call from any thread. A parsed
 * expression is immutable and may be evaluated concurrently.
 */
#ifndef ORCH_DAG_EXPR_H
#define ORCH_DAG_EXPR_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"
#include "template.h"

#ifndef EXPR_MAX_LEN
#define EXPR_MAX_LEN 4096 /* bytes of expression text */
#endif
#ifndef EXPR_MAX_DEPTH
#define EXPR_MAX_DEPTH 64 /* nested "(" and "not" */
#endif

struct expr; /* opaque: a parsed expression */

/*
 * Parse `text` (NUL-terminated). On success returns 0 and *out is a new
 * expression (free with expr_free). On failure returns ERR_INVALID (or
 * ERR_TOO_BIG past EXPR_MAX_LEN), *out is NULL and `err` says what and
 * where: "expected an operand at column 5", "unterminated string at column 3".
 */
int expr_parse(const char *text, struct expr **out, struct err *err);

/* Accepts NULL. */
void expr_free(struct expr *e);

/* The refs of `e` in the order written (as for tpl_ref_at; borrowed from `e`). */
size_t expr_nrefs(const struct expr *e);
const struct tpl_ref *expr_ref_at(const struct expr *e, size_t i);

/*
 * Evaluate `e` against a context shaped as for tpl_render(). On success
 * *out_bool is 0 or 1. On failure *out_bool is 0 and the error is that of
 * the ref lookup (ERR_NOT_FOUND, ERR_INVALID) or ERR_INVALID for a type
 * error ("'and' needs booleans, got string \"x\"").
 */
int expr_eval(const struct expr *e, const json_t *ctx, int *out_bool, struct err *err);

#endif
