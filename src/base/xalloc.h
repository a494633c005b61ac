/*
 * xalloc.h - allocation wrappers that abort on out-of-memory.
 *
 * For ordinary internal sizes. Sizes that come from outside (request bodies,
 * task output, definitions) are bounded before they get here (see strbuf.h).
 * xcalloc() and xreallocarray() check the multiplication for overflow.
 */
#ifndef ORCH_BASE_XALLOC_H
#define ORCH_BASE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new heap string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Abort with file/line: a programmer error, in every build. */
#define BUG(...) bug_fl(__FILE__, __LINE__, __VA_ARGS__)
_Noreturn void bug_fl(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Grow *arr (of *alloc elements of `size` bytes) so it holds at least `need`. */
void xgrow(void **arr, size_t *alloc, size_t need, size_t size);
#define XGROW(arr, alloc, need) xgrow((void **)&(arr), &(alloc), (need), sizeof(*(arr)))

#endif
