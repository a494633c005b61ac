/*
 * proc.c - command tasks: the processes of their attempts, and the command
 * kind of the task-kind table (kind.h).
 *
 * An attempt of a command task is a process here (a `struct proc`, started by
 * child.c after the turn's commit) or, when no worker slot is free and the
 * cluster has room, an offer another node runs (remote.c). A `struct proc`
 * also runs an attempt another node offered (p->ex NULL). Loop thread only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "engine_internal.h"
#include "kind.h"
#include "proc.h"
#include "recovery.h"
#include "redisbus.h"
#include "remote.h"
#include "render.h"

#include "base/banned.h"

#define READ_CHUNK 65536
#define READ_BUDGET (256 * 1024) /* bytes read from one pipe per turn, for fairness */
#define PID_WRITE_DELAY_MS 20    /* a started process's pid is committed within this */

/* A process to start after the commit (in to_spawn), taking a slot. */
static struct proc *proc_new(struct engine *eng, struct exec *ex, const char *exec_id, size_t idx,
                             int attempt)
{
    struct proc *p = xcalloc(1, sizeof(*p));
    struct child init = CHILD_INIT;
    p->ch = init;
    p->ex = ex;
    snprintf(p->exec_id, sizeof(p->exec_id), "%s", exec_id);
    p->idx = idx;
    p->attempt = attempt;
    strbuf_init(&p->pend[0], 0);
    strbuf_init(&p->pend[1], 0);
    XGROW(eng->to_spawn, eng->spawn_alloc, eng->nspawn + 1);
    eng->to_spawn[eng->nspawn++] = p;
    eng->nprocs++;
    return p;
}

void engine__remote_run_local(struct engine *eng, struct exec *ex, size_t idx)
{
    struct trun *r = &ex->runs[idx];
    r->proc = proc_new(eng, ex, ex->id, idx, r->attempt);
    log_info(COMP_TASK, "Task '%s' taken back from the offers: runs here (attempt %d)",
             engine__task_name(ex, idx), r->attempt);
}

void engine__remote_run_for(struct engine *eng, const struct offer_row *o)
{
    struct proc *p = proc_new(eng, NULL, o->exec_id, (size_t)o->task_idx, o->attempt);
    p->spec = json_loads(o->spec ? o->spec : "{}", 0, NULL);
    p->owner = o->owner ? xstrdup(o->owner) : NULL;
}

/* ------------------------------------------------------------------ processes */

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGPIPE: return "SIGPIPE";
    case SIGHUP: return "SIGHUP";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGQUIT: return "SIGQUIT";
    }
    return "signal";
}

/* Terminate the group of a live process: SIGTERM now (after commit), SIGKILL after grace. */
void engine__proc_terminate(struct engine *eng, struct proc *p)
{
    struct timer tm;
    p->stale = 1;
    if (p->term_sent || !p->ch.pid)
        return;
    child_signal_group(&p->ch, SIGTERM);
    p->term_sent = 1;
    memset(&tm, 0, sizeof(tm));
    tm.at = clock_mono_ms() + eng->cfg.kill_grace_ms;
    tm.kind = TIMER_KILL;
    tm.proc = p;
    engine__timer_add(&eng->timers, &tm);
}

static void proc_unlink_free(struct engine *eng, struct proc *p)
{
    struct proc **pp = &eng->procs;
    while (*pp && *pp != p)
        pp = &(*pp)->next;
    if (*pp)
        *pp = p->next;
    engine__timer_purge(&eng->timers, NULL, p);
    if (!p->pid_unwatched)
        engine__watch_del(eng, p->ch.pidfd);
    engine__watch_del(eng, p->ch.out_fd);
    engine__watch_del(eng, p->ch.err_fd);
    child_release(&p->ch);
    strbuf_release(&p->pend[0]);
    strbuf_release(&p->pend[1]);
    free(p->trk[0].chunks);
    free(p->trk[1].chunks);
    if (p->output_path)
        unlink(p->output_path);
    free(p->output_path);
    json_decref(p->spec);
    free(p->owner);
    if (p->slot_freed)
        eng->nreaped--;
    free(p);
    eng->nprocs--;
}

/* Keep the last `cap` bytes of a stream in buf[*len]. */
static void tail_add(char *buf, size_t *blen, size_t cap, const char *data, size_t len)
{
    if (len >= cap) {
        memcpy(buf, data + len - cap, cap);
        *blen = cap;
        return;
    }
    if (*blen + len > cap) {
        size_t drop = *blen + len - cap;
        memmove(buf, buf + drop, *blen - drop);
        *blen -= drop;
    }
    memcpy(buf + *blen, data, len);
    *blen += len;
}

/* Read what is available from one pipe (bounded per turn). */
void engine__proc_read(struct engine *eng, struct proc *p, int stream)
{
    int *fdp = stream == 0 ? &p->ch.out_fd : &p->ch.err_fd;
    char buf[READ_CHUNK];
    size_t budget = READ_BUDGET;

    while (*fdp >= 0 && budget > 0) {
        ssize_t n = read(*fdp, buf, sizeof(buf));
        if (n > 0) {
            struct strbuf *sb = &p->pend[stream];
            budget -= (size_t)n < budget ? (size_t)n : budget;
            /* Bound what waits for the commit: keep the newest output_cap bytes. */
            if (sb->len + (size_t)n > 2 * eng->cfg.output_cap && sb->len > 0) {
                size_t keep = eng->cfg.output_cap;
                if (keep > sb->len)
                    keep = sb->len;
                memmove(sb->buf, sb->buf + sb->len - keep, keep);
                sb->len = keep;
                sb->buf[keep] = '\0';
            }
            strbuf_add(sb, buf, (size_t)n);
            engine__redis_log(eng, p, stream, buf, (size_t)n); /* live, across nodes */
            if (stream == 1)
                tail_add(p->err_tail, &p->err_tail_len, ERR_TAIL, buf, (size_t)n);
            else
                tail_add(p->out_tail, &p->out_tail_len, OUT_TAIL, buf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or error: stop watching this pipe. */
        engine__watch_del(eng, *fdp);
        close(*fdp);
        *fdp = -1;
        return;
    }
}

static void last_line(const struct proc *p, char *out, size_t outlen)
{
    size_t end = p->err_tail_len, start;
    while (end > 0 && (p->err_tail[end - 1] == '\n' || p->err_tail[end - 1] == '\r' ||
                       p->err_tail[end - 1] == ' '))
        end--;
    start = end;
    while (start > 0 && p->err_tail[start - 1] != '\n')
        start--;
    if (end - start >= outlen)
        start = end - (outlen - 1);
    memcpy(out, p->err_tail + start, end - start);
    out[end - start] = '\0';
    for (char *c = out; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
}

/*
 * The output of a command attempt that exited 0: the JSON object it wrote to
 * $ORCH_OUTPUT, or {"exitCode": 0, "stdout": the tail of its stdout}. Returns
 * 0 with *out (compact JSON text), or -1 with a message for the attempt's
 * failure (not an object, too big).
 */
static int task_output(struct engine *eng, struct proc *p, char **out, char *msg, size_t msglen)
{
    size_t cap = eng->cfg.task_output_cap;
    json_t *o = NULL;
    FILE *f = NULL;

    *out = NULL;
    if (p->output_path) {
        /* Never through a symlink, never a FIFO or device; a regular file
         * written by the task's user (ours, or the task user). */
        int fd = open(p->output_path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat sb;
        if (fd >= 0 && (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) ||
                        (sb.st_uid != geteuid() &&
                         !(eng->cfg.task_user && sb.st_uid == eng->cfg.task_uid)))) {
            close(fd);
            snprintf(msg, msglen, "its output ($ORCH_OUTPUT) is not a regular file of its user");
            return -1;
        }
        if (fd >= 0 && !(f = fdopen(fd, "rb")))
            close(fd);
        if (fd < 0 && errno == ELOOP) {
            snprintf(msg, msglen, "its output ($ORCH_OUTPUT) is a symbolic link");
            return -1;
        }
    }
    if (f) {
        struct stat sb;
        /* As much as the file holds (no more than the cap and one byte). */
        size_t want = fstat(fileno(f), &sb) == 0 && (uint64_t)sb.st_size <= cap
                          ? (size_t)sb.st_size + 1
                          : cap + 1;
        char *buf = xmalloc(want + 1);
        size_t n = fread(buf, 1, want, f);
        json_error_t jerr;
        fclose(f);
        if (n > cap) {
            free(buf);
            snprintf(msg, msglen,
                     "its output ($ORCH_OUTPUT) is larger than the limit of %zu bytes "
                     "(ORCH_MAX_TASK_OUTPUT)",
                     cap);
            return -1;
        }
        o = n ? json_loadb(buf, n, JSON_REJECT_DUPLICATES, &jerr) : NULL;
        free(buf);
        if (!o || !json_is_object(o)) {
            if (!n)
                snprintf(msg, msglen, "its output ($ORCH_OUTPUT) is empty: write a JSON object");
            else if (!o)
                snprintf(msg, msglen, "its output ($ORCH_OUTPUT) is not valid JSON: line %d "
                         "column %d: %s", jerr.line, jerr.column, jerr.text);
            else
                snprintf(msg, msglen, "its output ($ORCH_OUTPUT) must be a JSON object, not %s",
                         json_is_array(o) ? "an array" : json_is_string(o) ? "a string"
                                                       : "a scalar");
            json_decref(o);
            return -1;
        }
    } else {
        /* No file: the exit code and the tail of stdout (valid UTF-8, without
         * its last newlines). */
        struct strbuf sb = STRBUF_INIT;
        size_t len = p->out_tail_len;
        while (len > 0 && (p->out_tail[len - 1] == '\n' || p->out_tail[len - 1] == '\r'))
            len--;
        strbuf_add_utf8(&sb, p->out_tail, len);
        o = json_object();
        json_object_set_new(o, "exitCode", json_integer(0));
        json_object_set_new(o, "stdout", json_stringn(sb.buf, sb.len));
        strbuf_release(&sb);
    }
    *out = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (!*out || strlen(*out) > cap) {
        free(*out);
        *out = NULL;
        snprintf(msg, msglen, "its output is larger than the limit of %zu bytes "
                 "(ORCH_MAX_TASK_OUTPUT)", cap);
        return -1;
    }
    return 0;
}

/* child_sweep_orphans: does this orphan belong to a task process still running
 * here? Its $ORCH_OUTPUT names the attempt; without one, any running task may
 * own it. */
static int orphan_keep(void *arg, const char *env, size_t len)
{
    struct engine *eng = arg;
    const char *out = NULL;
    size_t outlen = 0;

    for (size_t off = 0; off < len;) {
        size_t l = strnlen(env + off, len - off);
        if (l > 11 && !memcmp(env + off, "ORCH_OUTPUT=", 12)) {
            out = env + off + 12;
            outlen = l - 12;
        }
        off += l + 1;
    }
    for (const struct proc *q = eng->procs; q; q = q->next) {
        if (q->reaped || !q->ch.pid)
            continue;
        if (!out || (q->output_path && strlen(q->output_path) == outlen &&
                     !memcmp(q->output_path, out, outlen)))
            return 1;
    }
    return 0;
}

/* End what a finished task left behind outside its process group (setsid,
 * double fork: reparented to us, the subreaper) and reap exited orphans. */
static void sweep_orphans(struct engine *eng, int keep_running)
{
    pid_t *live = NULL;
    size_t n = 0, alloc = 0;
    int killed;

    for (const struct proc *q = eng->procs; q; q = q->next) {
        if (q->reaped || !q->ch.pid)
            continue;
        XGROW(live, alloc, n + 1);
        live[n++] = q->ch.pid;
    }
    killed = child_sweep_orphans(live, n, keep_running ? orphan_keep : NULL, eng);
    if (killed)
        log_info(COMP_TASK, "Killed %d process%s left behind by finished tasks", killed,
                 killed == 1 ? "" : "es");
    free(live);
}

/* The process of `p` exited: collect output, apply the result (if not stale). */
void engine__proc_exited(struct engine *eng, struct proc *p)
{
    struct exec *ex = p->ex;
    struct trun *r;
    char msg[512], line[200];
    int code, sig;

    if (child_reap(&p->ch) != 1)
        return;
    p->reaped = 1;
    /* Its slot is free from now: a task waiting for one starts in this
     * turn, its start committed along with this end. */
    if (!p->slot_freed) {
        p->slot_freed = 1;
        eng->nreaped++;
    }
    engine__proc_read(eng, p, 0);
    engine__proc_read(eng, p, 1);
    /* The leader is gone: end what is left of its group (background children),
     * and what left the group. */
    child_signal_group(&p->ch, SIGKILL);
    sweep_orphans(eng, 1);
    engine__watch_del(eng, p->ch.pidfd);
    p->pid_unwatched = 1;
    code = p->ch.exit_code;
    sig = p->ch.signal;
    engine__redis_log_end(eng, p, p->rcancel || p->stale ? "cancelled"
                                  : code == 0 && !sig   ? "succeeded"
                                                        : "failed");
    if (!ex) {
        /* Run for another node: report to its owner. */
        char *out = NULL;
        if (p->rcancel) {
            engine__remote_report(eng, p, "cancelled", code, sig, "cancelled by its owner", NULL);
        } else if (code == 0 && !sig) {
            if (task_output(eng, p, &out, msg, sizeof(msg)) != 0)
                engine__remote_report(eng, p, "failed", 0, 0, msg, NULL);
            else
                engine__remote_report(eng, p, "succeeded", 0, 0, NULL, out);
            free(out);
        } else {
            last_line(p, line, sizeof(line));
            if (sig)
                snprintf(msg, sizeof(msg), "killed by signal %d (%s)%s%s", sig,
                         signal_name(sig), line[0] ? ": " : "", line);
            else
                snprintf(msg, sizeof(msg), "exit status %d%s%s", code, line[0] ? ": " : "",
                         line);
            engine__remote_report(eng, p, "failed", code, sig, msg, NULL);
        }
        return;
    }
    r = &ex->runs[p->idx];
    if (p->stale || r->proc != p || r->attempt != p->attempt || r->status != TASK_RUNNING) {
        /* Fencing: this attempt was already given up; its report is dropped. */
        log_info(COMP_TASK, "Task '%s': dropped late report of attempt %d (current attempt %d, %s)",
                  engine__task_name(ex, p->idx), p->attempt, r->attempt, task_status_name(r->status));
        return;
    }
    r->proc = NULL;
    if (code == 0) {
        char *out = NULL;
        if (task_output(eng, p, &out, msg, sizeof(msg)) != 0) {
            engine__attempt_end(eng, ex, p->idx, ATTEMPT_FAILED, 0, 0, msg, p->ch.pid, p->ch.pid,
                                p->ch.proc_start, 1);
            return;
        }
        free(r->output);
        r->output = out;
        engine__attempt_end(eng, ex, p->idx, ATTEMPT_SUCCEEDED, 0, 0, NULL, p->ch.pid, p->ch.pid,
                            p->ch.proc_start, 1);
        return;
    }
    last_line(p, line, sizeof(line));
    if (sig)
        snprintf(msg, sizeof(msg), "killed by signal %d (%s)%s%s", sig, signal_name(sig),
                 line[0] ? ": " : "", line);
    else
        snprintf(msg, sizeof(msg), "exit status %d%s%s", code, line[0] ? ": " : "", line);
    engine__attempt_end(eng, ex, p->idx, ATTEMPT_FAILED, code, sig, msg, p->ch.pid, p->ch.pid,
                        p->ch.proc_start, 1);
}

/* Start the processes of the attempts begun this turn (after the commit). */
void engine__spawn_pending(struct engine *eng)
{
    for (size_t i = 0; i < eng->nspawn; i++) {
        struct proc *p = eng->to_spawn[i];
        struct exec *ex = p->ex;
        const struct dag_task *t = ex ? engine__task(ex, p->idx) : NULL;
        struct trun *r = ex ? &ex->runs[p->idx] : NULL;
        char **envp, **env_owned = NULL;
        char *sh_argv[4];
        struct err err = ERR_INIT;
        int rc;

        char **rargv = NULL;
        const char *name;
        struct rendered rd;

        memset(&rd, 0, sizeof(rd));

        p->next = eng->procs;
        eng->procs = p;
        if (p->stale) {
            /* Cancelled before it could start. */
            p->reaped = 1;
            if (!ex)
                engine__remote_report(eng, p, "cancelled", -1, 0, "cancelled before it started",
                                      NULL);
            continue;
        }
        free(p->output_path);
        p->output_path = xasprintf("%s/%s-%zu-%d.json", eng->output_dir, p->exec_id, p->idx,
                                   p->attempt);
        unlink(p->output_path); /* a leftover of a crash */
        if (ex) {
            char msg[512];
            if (engine__render_task(ex, p->idx, &rd, msg, sizeof(msg)) != 0) {
                p->reaped = 1;
                r->proc = NULL;
                engine__attempt_end(eng, ex, p->idx, ATTEMPT_FAILED, -1, 0, msg, 0, 0, 0, 0);
                eng->work_now = 1;
                continue;
            }
            envp = engine__task_env_borrowed(ex, p->idx, p->attempt, p->output_path, &rd,
                                             &env_owned);
            if (t->shell) {
                sh_argv[0] = (char *)"/bin/sh";
                sh_argv[1] = (char *)"-c";
                sh_argv[2] = rd.shell ? rd.shell : t->shell;
                sh_argv[3] = NULL;
                p->ch.argv = sh_argv;
            } else {
                p->ch.argv = rd.argv ? rd.argv : t->argv;
            }
            p->ch.dir = t->working_dir;
            name = engine__task_name(ex, p->idx);
        } else {
            /* Run for another node: what its offer says. */
            const json_t *argv = json_object_get(p->spec, "argv");
            const char *shell = json_string_value(json_object_get(p->spec, "shell"));
            envp = engine__runner_env(p->spec, p->output_path);
            if (shell) {
                sh_argv[0] = (char *)"/bin/sh";
                sh_argv[1] = (char *)"-c";
                sh_argv[2] = (char *)shell;
                sh_argv[3] = NULL;
                p->ch.argv = sh_argv;
            } else {
                rargv = xcalloc(json_array_size(argv) + 1, sizeof(*rargv));
                for (size_t k = 0; k < json_array_size(argv); k++)
                    rargv[k] = (char *)json_string_value(json_array_get(argv, k));
                p->ch.argv = rargv;
            }
            p->ch.dir = json_string_value(json_object_get(p->spec, "dir"));
            name = json_string_value(json_object_get(p->spec, "task"));
            if (!name)
                name = "?";
        }
        p->ch.envp = envp;
        p->ch.drop_ids = eng->cfg.task_user;
        p->ch.uid = eng->cfg.task_uid;
        p->ch.gid = eng->cfg.task_gid;
        rc = (p->ch.argv && p->ch.argv[0]) ? child_start(&p->ch, &err)
                                           : err_set(&err, ERR_INVALID, "nothing to run");
        if (ex) {
            free(envp); /* the entries: borrowed, or in env_owned */
            engine__strv_free(env_owned);
        } else {
            engine__strv_free(envp);
        }
        free(rargv);
        if (ex)
            engine__rendered_release(&rd, t);
        p->ch.argv = NULL;
        p->ch.envp = NULL;
        if (rc) {
            p->reaped = 1;
            if (!ex) {
                engine__remote_report(eng, p, "failed", -1, 0, err.msg, NULL);
                continue;
            }
            r->proc = NULL;
            engine__attempt_end(eng, ex, p->idx, ATTEMPT_FAILED, -1, 0, err.msg, 0, 0, 0, 1);
            eng->work_now = 1;
            continue;
        }
        p->started_mono = clock_mono_fresh_ms(); /* its timeout counts from the spawn */
        p->pid_dirty = 1;
        p->w_pid.kind = WATCH_PIDFD;
        p->w_pid.proc = p;
        p->w_out.kind = WATCH_OUT;
        p->w_out.proc = p;
        p->w_err.kind = WATCH_ERR;
        p->w_err.proc = p;
        engine__watch_add(eng, p->ch.pidfd, &p->w_pid);
        engine__watch_add(eng, p->ch.out_fd, &p->w_out);
        engine__watch_add(eng, p->ch.err_fd, &p->w_err);
        log_info(COMP_TASK, "Task '%s' started (attempt %d, pid %d)", name, p->attempt,
                 (int)p->ch.pid);
        if (ex && t->timeout_ms > 0) {
            struct timer tm;
            memset(&tm, 0, sizeof(tm));
            tm.at = p->started_mono + t->timeout_ms;
            tm.kind = TIMER_TASK_TIMEOUT;
            tm.ex = ex;
            tm.gen = ex->gen;
            tm.proc = p;
            tm.idx = p->idx;
            tm.attempt = p->attempt;
            engine__timer_add(&eng->timers, &tm);
        }
        /*
         * The pid is written with the next commit made for anything else, or
         * with the turn of this timer. Most short tasks end before, so their
         * pid goes in with their result (no commit, and no sync, of its own);
         * a longer one's within PID_WRITE_DELAY_MS. Should orch die before, the
         * recovery finds the orphan by its ORCH_* environment instead.
         */
        {
            struct timer tm;
            memset(&tm, 0, sizeof(tm));
            tm.at = p->started_mono + PID_WRITE_DELAY_MS; /* then engine__proc_pid_due() */
            tm.kind = TIMER_PID_WRITE;
            tm.proc = p;
            engine__timer_add(&eng->timers, &tm);
        }
    }
    eng->nspawn = 0;
}

int engine__proc_pid_due(const struct proc *p)
{
    return p->reaped || clock_mono_ms() - p->started_mono >= PID_WRITE_DELAY_MS;
}

/* Free processes that are fully done (reaped and pipes drained or closed). */
void engine__procs_collect(struct engine *eng)
{
    struct proc *p = eng->procs, *next;
    for (; p; p = next) {
        next = p->next;
        if (p->reaped && !p->pend[0].len && !p->pend[1].len && !p->pid_dirty) {
            int was_counted = p->slot_freed;
            proc_unlink_free(eng, p);
            /* A slot is free: queued tasks may start without waiting for an
             * event (one freed on its exit was already counted free by this
             * turn's dispatch: no turn of its own then, unless one waits). */
            if (!was_counted || eng->slot_wait.head)
                eng->work_now = 1;
        }
    }
}

/* Every process has ended (those held for a commit included). */
int engine__procs_all_reaped(const struct engine *eng)
{
    for (const struct proc *p = eng->procs; p; p = p->next)
        if (!p->reaped)
            return 0;
    return 1;
}

/* At the engine's end: the processes still running are killed and reaped,
 * what they left behind too, and those never started freed. */
void engine__procs_free(struct engine *eng)
{
    while (eng->procs) {
        struct proc *p = eng->procs;
        if (!p->reaped && p->ch.pid) {
            child_signal_group(&p->ch, SIGKILL);
            while (child_reap(&p->ch) == 0)
                usleep(1000);
        }
        p->reaped = 1;
        proc_unlink_free(eng, p);
    }
    sweep_orphans(eng, 0);
    for (size_t i = 0; i < eng->nspawn; i++) {
        struct proc *p = eng->to_spawn[i];
        strbuf_release(&p->pend[0]);
        strbuf_release(&p->pend[1]);
        json_decref(p->spec);
        free(p->owner);
        free(p);
    }
}

/* ------------------------------------------------------------------ attempts run elsewhere */

void engine__remote_result(struct engine *eng, struct exec *ex, size_t idx,
                           const struct offer_row *o)
{
    struct trun *r = &ex->runs[idx];
    char why[240];

    eng->attempt_node = o->runner;
    if (o->runner_gone || !o->finished_at || (o->status && !strcmp(o->status, "lost"))) {
        snprintf(why, sizeof(why), "lost: the node running it (%.120s) died or stopped",
                 o->runner_node ? o->runner_node : "?");
        log_warn(COMP_TASK, "Task '%s' attempt %d was lost with node '%s'",
                 engine__task_name(ex, idx), r->attempt, o->runner_node ? o->runner_node : "?");
        /* Its process may live on, orphaned, on this machine: end it first. */
        if (o->runner && o->pid > 0 && engine__same_host(eng, o->runner) &&
            child_kill_orphan_group(o->pid, o->proc_start))
            log_warn(COMP_TASK, "Task '%s': killed orphaned process group %d of attempt %d",
                     engine__task_name(ex, idx), o->pid, r->attempt);
        engine__attempt_end(eng, ex, idx, ATTEMPT_LOST, -1, 0, why, o->pid, o->pid,
                            o->proc_start, 1);
    } else if (o->status && !strcmp(o->status, "succeeded")) {
        free(r->output);
        r->output = o->output ? xstrdup(o->output) : NULL;
        engine__attempt_end(eng, ex, idx, ATTEMPT_SUCCEEDED, 0, 0, NULL, o->pid, o->pid,
                            o->proc_start, 1);
    } else {
        engine__attempt_end(eng, ex, idx, ATTEMPT_FAILED, o->exit_code, o->signal,
                            o->error ? o->error : "failed", o->pid, o->pid, o->proc_start, 1);
    }
    eng->attempt_node = NULL;
    eng->work_now = 1;
}

/* ------------------------------------------------------------------ the command kind */

/* The process is started after the commit; with no slot free, it is offered. */
static void command_begin(struct engine *eng, struct exec *ex, size_t idx, int offer)
{
    const struct dag_task *t = engine__task(ex, idx);
    struct trun *r = &ex->runs[idx];

    if (offer) {
        char msg[512];
        json_t *spec = engine__task_spec(ex, idx, msg, sizeof(msg));
        if (!spec) {
            /* A placeholder that cannot be filled will not be filled by a retry. */
            engine__attempt_fail(eng, ex, idx, ATTEMPT_FAILED, msg, 0);
            return;
        }
        engine__run_remote(eng, ex, idx, 1);
        engine__remote_offer(eng, ex, idx, spec);
        json_decref(spec);
        if (t->timeout_ms > 0)
            engine__attempt_timer(eng, TIMER_TASK_TIMEOUT, ex, idx, t->timeout_ms);
        return;
    }
    r->proc = proc_new(eng, ex, ex->id, idx, r->attempt);
}

static void command_cancel(struct engine *eng, struct exec *ex, size_t idx,
                           enum attempt_status ast, const char *reason)
{
    struct trun *r = &ex->runs[idx];
    struct proc *p = r->proc;

    if (!p) {
        /* Offered to, or run by, another node: it is told to stop. */
        engine__remote_cancel(eng, ex, idx);
        engine__attempt_fail(eng, ex, idx, ast, reason, 0);
        return;
    }
    r->proc = NULL;
    if (p->ch.pid)
        engine__proc_terminate(eng, p);
    else
        p->stale = 1; /* not started yet: the spawn is skipped */
    engine__attempt_end(eng, ex, idx, ast, -1, 0, reason, p->ch.pid, p->ch.pid, p->ch.proc_start,
                        0);
}

static void command_timeout(struct engine *eng, struct exec *ex, size_t idx, const char *msg)
{
    struct trun *r = &ex->runs[idx];
    struct proc *p = r->proc;

    if (!p) {
        /* Offered to, or run by, another node: it is told to stop. */
        if (!r->remote)
            return;
        engine__remote_cancel(eng, ex, idx);
        engine__attempt_fail(eng, ex, idx, ATTEMPT_TIMED_OUT, msg, 1);
        return;
    }
    r->proc = NULL;
    engine__proc_terminate(eng, p);
    engine__attempt_end(eng, ex, idx, ATTEMPT_TIMED_OUT, -1, 0, msg, p->ch.pid, p->ch.pid,
                        p->ch.proc_start, 1);
}

/* A process here is terminated and its attempt run again at the next start;
 * an attempt another node runs goes on there. */
static int command_interrupt(struct engine *eng, struct exec *ex, size_t idx,
                             struct attempt_row *ran)
{
    struct trun *r = &ex->runs[idx];
    struct proc *p = r->proc;

    if (!p)
        return 0;
    r->proc = NULL;
    engine__proc_terminate(eng, p);
    ran->pid = ran->pgid = p->ch.pid;
    ran->proc_start = p->ch.proc_start;
    return 1;
}

/* The process died with its owner (or is killed now): the attempt is lost. */
static void command_restore(struct engine *eng, struct exec *ex, size_t idx,
                            const struct attempt_row *last, int64_t now)
{
    (void)now;
    engine__attempt_restored(eng, ex, idx, last, 1);
    engine__attempt_lost(eng, ex, idx, last, 1, NULL);
}

const struct task_kind engine__kind_command = {
    .name = "command",
    .queue = KIND_QUEUE_SLOT,
    .begin = command_begin,
    .cancel = command_cancel,
    .timeout = command_timeout,
    .interrupt = command_interrupt,
    .restore = command_restore,
};
