/*
 * log.h - leveled log lines.
 *
 * Each line is one event:
 *   2026-11-29T10:00:00.123Z ERROR [TaskExecutor] Task 'extract' failed: exit status 2
 * written to stderr (or the sink set with log_set_sink). Thread-safe: a line
 * is formatted in a local buffer and written with one write(2).
 */
#ifndef ORCH_BASE_LOG_H
#define ORCH_BASE_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
};

/* Set the threshold; lines above it are dropped. Default LOG_INFO. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info", "debug" (case-insensitive); returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);
/* Write lines to `fd` (default 2). */
void log_set_fd(int fd);
/*
 * Optional hook called before each line is written (for example to clear a
 * live progress line on a terminal) and after (to redraw it). Called with the
 * log's mutex held: the hook must not log.
 */
void log_set_hooks(void (*before)(void), void (*after)(void));

int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap);
/* A line whose text is formatted already (`len` bytes, no newline): the
 * same line as log_msg(level, component, "%.*s", len, text), without printf. */
void log_text(enum log_level level, const char *component, const char *text, size_t len);

#define log_error(comp, ...) log_msg(LOG_ERROR, comp, __VA_ARGS__)
#define log_warn(comp, ...)  log_msg(LOG_WARN, comp, __VA_ARGS__)
#define log_info(comp, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled(LOG_INFO))                                                                 \
            log_msg(LOG_INFO, comp, __VA_ARGS__);                                                  \
    } while (0)
#define log_debug(comp, ...)                                                                       \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_msg(LOG_DEBUG, comp, __VA_ARGS__);                                                 \
    } while (0)

#endif
