/*
 * watch.c - the loop's epoll set: a subsystem watches its descriptors
 * (processes' pipes and pidfds, the database's socket) through it. Part of
 * the engine's core (docs/internals/engine.md).
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "base/log.h"
#include "engine_internal.h"

#include "base/banned.h"

void engine__watch_add(struct engine *eng, int fd, struct watch *w)
{
    struct epoll_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = w;
    if (epoll_ctl(eng->epfd, EPOLL_CTL_ADD, fd, &ev))
        log_error(COMP, "epoll_ctl: %s", strerror(errno));
}

void engine__watch_del(struct engine *eng, int fd)
{
    if (fd >= 0)
        epoll_ctl(eng->epfd, EPOLL_CTL_DEL, fd, NULL);
}
