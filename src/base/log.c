#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"

static enum log_level threshold = LOG_INFO;
static int log_fd = 2;
static void (*hook_before)(void);
static void (*hook_after)(void);
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int hooks_set; /* the lock is taken only while hooks are set */

static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_set_level(enum log_level level)
{
    threshold = level;
}

enum log_level log_get_level(void)
{
    return threshold;
}

int log_parse_level(const char *s, enum log_level *out)
{
    static const char *const lower[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, lower[i])) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (!strcasecmp(s, "warning")) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

void log_set_hooks(void (*before)(void), void (*after)(void))
{
    pthread_mutex_lock(&log_lock);
    hook_before = before;
    hook_after = after;
    atomic_store(&hooks_set, before || after);
    pthread_mutex_unlock(&log_lock);
}

int log_enabled(enum log_level level)
{
    return level <= threshold;
}

/*
 * Write one whole line. A line (at most 4 KiB, PIPE_BUF) goes out in one
 * write(2), which neither a pipe nor a file interleaves with another's, so
 * no lock is held unless hooks must run around it (a terminal's progress
 * line): the HTTP threads' access lines do not wait on each other.
 */
static void emit(const char *line, size_t n)
{
    int locked = atomic_load(&hooks_set);

    if (locked) {
        pthread_mutex_lock(&log_lock);
        if (hook_before)
            hook_before();
    }
    {
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(log_fd, line + off, n - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    if (locked) {
        if (hook_after)
            hook_after();
        pthread_mutex_unlock(&log_lock);
    }
}

void log_text(enum log_level level, const char *component, const char *text, size_t len)
{
    char line[4096];
    size_t n, c = strlen(component), l = strlen(names[level]);

    if (!log_enabled(level))
        return;
    clock_iso8601(clock_now_fresh_ms(), line); /* "%s %s [%s] " by hand */
    n = strlen(line);
    if (c > 64)
        c = 64;
    line[n++] = ' ';
    memcpy(line + n, names[level], l);
    n += l;
    line[n++] = ' ';
    line[n++] = '[';
    memcpy(line + n, component, c);
    n += c;
    line[n++] = ']';
    line[n++] = ' ';
    if (len > sizeof(line) - 2 - n)
        len = sizeof(line) - 2 - n;
    memcpy(line + n, text, len);
    n += len;
    line[n++] = '\n';
    emit(line, n);
}

void log_vmsg(enum log_level level, const char *component, const char *fmt, va_list ap)
{
    char line[4096];
    char ts[CLOCK_ISO_MAX];
    int n, m;

    if (!log_enabled(level))
        return;
    clock_iso8601(clock_now_fresh_ms(), ts); /* when it is written, not the turn's time */
    n = snprintf(line, sizeof(line), "%s %s [%s] ", ts, names[level], component);
    if (n < 0)
        return;
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    if (m < 0)
        return;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    emit(line, (size_t)n);
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}
