/*
 * owner.c - which local orch process runs an execution: an flock(2) on
 * DATA_DIR/locks/EXEC_ID.lock, held while the engine runs it. The kernel
 * drops the lock when the process dies (even by kill -9), so `orch resume`
 * can take over exactly the executions whose owner is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "cli.h"

#include "base/banned.h"

struct lock {
    char id[ID_MAX];
    int fd;
};

struct owner {
    char *dir;
    struct lock *locks;
    size_t n, alloc;
};

struct owner *owner_new(const char *data_dir)
{
    struct owner *o = xcalloc(1, sizeof(*o));
    o->dir = xasprintf("%s/locks", data_dir);
    mkdir(o->dir, 0700);
    return o;
}

void owner_free(struct owner *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->n; i++)
        close(o->locks[i].fd);
    free(o->locks);
    free(o->dir);
    free(o);
}

int owner_claim(void *arg, const char *exec_id)
{
    struct owner *o = arg;
    char *path;
    int fd;

    for (size_t i = 0; i < o->n; i++)
        if (!strcmp(o->locks[i].id, exec_id))
            return 0;
    path = xasprintf("%s/%s.lock", o->dir, exec_id);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(path);
    if (fd < 0)
        return ERR_IO;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return ERR_BUSY;
    }
    XGROW(o->locks, o->alloc, o->n + 1);
    snprintf(o->locks[o->n].id, ID_MAX, "%s", exec_id);
    o->locks[o->n].fd = fd;
    o->n++;
    return 0;
}

void owner_release(void *arg, const char *exec_id)
{
    struct owner *o = arg;
    for (size_t i = 0; i < o->n; i++) {
        if (!strcmp(o->locks[i].id, exec_id)) {
            char *path = xasprintf("%s/%s.lock", o->dir, exec_id);
            unlink(path);
            free(path);
            close(o->locks[i].fd);
            o->locks[i] = o->locks[--o->n];
            return;
        }
    }
}
