/*
 * sdnotify.c - the service manager's notification protocol, by hand: an
 * AF_UNIX datagram to the path in $NOTIFY_SOCKET ('@' at its start names the
 * abstract namespace: a NUL byte there, and no trailing NUL in the address).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/sdnotify.h"

#include "base/banned.h"

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static int64_t watchdog_ms;

extern char **environ;

/* The entries taken out of the environment stay referenced here: unsetenv()
 * drops them without freeing them, and they may be heap copies (which leak
 * checkers would report) or parts of the initial block. */
static char *dropped[3];

static void drop_env(const char *name, int slot)
{
    size_t n = strlen(name);

    for (char **e = environ; e && *e; e++)
        if (!strncmp(*e, name, n) && (*e)[n] == '=')
            dropped[slot] = *e;
    unsetenv(name);
}

int sdnotify_init(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    const char *usec = getenv("WATCHDOG_USEC");
    const char *wpid = getenv("WATCHDOG_PID");
    size_t n;

    if (usec && *usec) {
        char *end;
        long long v;
        errno = 0;
        v = strtoll(usec, &end, 10);
        /* WATCHDOG_PID, when set, names the process meant (not a child's). */
        if (!errno && !*end && v > 0 &&
            (!wpid || !*wpid || strtoll(wpid, NULL, 10) == (long long)getpid()))
            watchdog_ms = v / 1000 > 0 ? v / 1000 : 1;
    }
    if (path && *path && (path[0] == '/' || path[0] == '@') &&
        (n = strlen(path)) < sizeof(notify_addr.sun_path)) {
        memset(&notify_addr, 0, sizeof(notify_addr));
        notify_addr.sun_family = AF_UNIX;
        memcpy(notify_addr.sun_path, path, n);
        if (path[0] == '@') {
            notify_addr.sun_path[0] = '\0';
            notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
        } else {
            notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
        }
        notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    drop_env("NOTIFY_SOCKET", 0);
    drop_env("WATCHDOG_USEC", 1);
    drop_env("WATCHDOG_PID", 2);
    if (notify_fd < 0)
        watchdog_ms = 0;
    return notify_fd >= 0;
}

int sdnotify_send(const char *state)
{
    ssize_t w;

    if (notify_fd < 0)
        return -1;
    do
        w = sendto(notify_fd, state, strlen(state), MSG_NOSIGNAL,
                   (const struct sockaddr *)&notify_addr, notify_len);
    while (w < 0 && errno == EINTR);
    return w < 0 ? -1 : 0;
}

int64_t sdnotify_watchdog_ms(void)
{
    return watchdog_ms;
}
