/*
 * owner.c - which local orch process runs an execution.
 *
 * Each process holds one flock(2) for its lifetime, on
 * DATA_DIR/locks/proc_PID_NONCE.lock (the nonce keeps a reused pid from
 * looking like a dead owner's), and names itself as the owner of each
 * execution it runs through a symbolic link DATA_DIR/locks/EXEC_ID.owner whose
 * target is that lock file's name. So file descriptors do not grow with the
 * executions a process runs or queues: one for the process, none per
 * execution.
 *
 * The kernel drops the process lock when the process dies (even by kill -9),
 * so an owner is gone exactly when its lock can be taken (or its lock file is
 * missing) and `orch resume` can take over the executions it named. A fresh
 * claim is one symlink(2), which fails if the execution is named already;
 * taking over from a dead owner happens under an flock on the locks directory
 * so two processes cannot both take the same execution.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/id.h"
#include "base/xalloc.h"
#include "cli.h"

#include "base/banned.h"

#define TOKEN_MAX 96

struct owner {
    char *dir;
    char token[TOKEN_MAX]; /* "proc_PID_NONCE.lock", the name of our lock file */
    int fd;                /* our process lock, -1 if it could not be taken */
};

struct owner *owner_new(const char *data_dir)
{
    struct owner *o = xcalloc(1, sizeof(*o));
    char nonce[ID_MAX];
    char *path;

    o->dir = xasprintf("%s/locks", data_dir);
    mkdir(o->dir, 0700);
    id_new("", nonce);
    snprintf(o->token, sizeof(o->token), "proc_%ld_%s.lock", (long)getpid(), nonce);
    path = xasprintf("%s/%s", o->dir, o->token);
    o->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (o->fd >= 0 && flock(o->fd, LOCK_EX | LOCK_NB) != 0) {
        close(o->fd);
        unlink(path);
        o->fd = -1;
    }
    free(path);
    return o;
}

void owner_free(struct owner *o)
{
    if (!o)
        return;
    if (o->fd >= 0) {
        /* Executions still named by us (queued at shutdown) now name a
         * missing lock: a gone owner, so they can be resumed. */
        char *path = xasprintf("%s/%s", o->dir, o->token);
        unlink(path);
        free(path);
        close(o->fd);
    }
    free(o->dir);
    free(o);
}

/* The owner named by `path` into buf: 0, or -1 if there is no such link. */
static int read_owner(const char *path, char *buf, size_t size)
{
    ssize_t n = readlink(path, buf, size - 1);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return 0;
}

/* 1 if the process whose lock file is DIR/token still holds it. */
static int owner_alive(const struct owner *o, const char *token)
{
    char *path;
    int fd, alive;

    if (strncmp(token, "proc_", 5) || strchr(token, '/'))
        return 0;
    path = xasprintf("%s/%s", o->dir, token);
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        free(path);
        return errno != ENOENT;
    }
    alive = flock(fd, LOCK_EX | LOCK_NB) != 0;
    if (!alive)
        unlink(path); /* a dead process's lock: nobody will hold it again */
    close(fd);
    free(path);
    return alive;
}

/* Take over exec_id's link if its owner is gone, under the directory lock. */
static int take_over(struct owner *o, const char *path)
{
    char cur[TOKEN_MAX];
    int dfd, rc = 0;

    dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return ERR_IO;
    if (flock(dfd, LOCK_EX) != 0) {
        close(dfd);
        return ERR_IO;
    }
    if (read_owner(path, cur, sizeof(cur)) == 0) {
        if (!strcmp(cur, o->token))
            goto out;
        if (owner_alive(o, cur)) {
            rc = ERR_BUSY;
            goto out;
        }
        unlink(path);
    }
    if (symlink(o->token, path) != 0)
        rc = errno == EEXIST ? ERR_BUSY : ERR_IO;
out:
    flock(dfd, LOCK_UN);
    close(dfd);
    return rc;
}

int owner_claim(void *arg, const char *exec_id)
{
    struct owner *o = arg;
    char *path;
    int rc = 0;

    if (o->fd < 0)
        return ERR_IO;
    path = xasprintf("%s/%s.owner", o->dir, exec_id);
    if (symlink(o->token, path) != 0)
        rc = errno == EEXIST ? take_over(o, path) : ERR_IO;
    free(path);
    return rc;
}

void owner_release(void *arg, const char *exec_id)
{
    struct owner *o = arg;
    char cur[TOKEN_MAX];
    char *path = xasprintf("%s/%s.owner", o->dir, exec_id);

    if (read_owner(path, cur, sizeof(cur)) == 0 && !strcmp(cur, o->token))
        unlink(path);
    free(path);
}
