#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <unistd.h>

#include "clock.h"

static enum log_level threshold = LOG_INFO;
static int log_fd = 2;
static void (*hook_before)(void);
static void (*hook_after)(void);
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

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
    pthread_mutex_unlock(&log_lock);
}

int log_enabled(enum log_level level)
{
    return level <= threshold;
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
    pthread_mutex_lock(&log_lock);
    if (hook_before)
        hook_before();
    {
        ssize_t off = 0;
        while (off < n) {
            ssize_t w = write(log_fd, line + off, (size_t)(n - off));
            if (w <= 0)
                break;
            off += w;
        }
    }
    if (hook_after)
        hook_after();
    pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, component, fmt, ap);
    va_end(ap);
}
