/*
 * redis.h - where Redis is (its URL) and a blocking connection to it.
 *
 * Redis is optional in orch: a fast path beside the store, never the source
 * of truth. This module knows URLs and connections only; what orch keeps in
 * Redis (wake-ups, dispatch, live logs, limits) lives with its users.
 *
 * URLs (ORCH_REDIS_URL, --redis-url):
 *   redis://[[user]:password@]host[:port][/db]     (host may be [v6 address])
 *   rediss://...                                    (TLS: hiredis 0.14 has none,
 *                                                    so through a local tunnel:
 *                                                    redis_tunnel_path below)
 *   unix://[[user]:password@]/path/to/socket[?db=n]
 * User and password may be percent-encoded. A password never appears in a
 * message: `shown` (the URL with the password as "***") is the only form that
 * logs and errors use.
 *
 * Threads: a redisContext is not thread-safe; use one per thread. The parse
 * functions are pure. Nothing here logs.
 */
#ifndef ORCH_BASE_REDIS_H
#define ORCH_BASE_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "base/err.h"

#define REDIS_DEFAULT_PORT 6379
#define REDIS_URL_MAX      4096 /* longer URLs are refused */

/*
 * Live task logs (written by the engine, read by the API): one capped stream
 * per attempt, key REDIS_LOG_KEY_PREFIX "<execution id>:<task idx>:<attempt>".
 * Entries: s = "out" | "err", o = the offset (decimal) of d's first byte in
 * that stream of the attempt's output, d = the bytes; the last entry has
 * end = the attempt's final status name (and no s, o, d).
 */
#define REDIS_LOG_KEY_PREFIX "orch:log:"
#define REDIS_LOG_KEY_MAX    128

/* Members are readable by callers; filled by redis_target_parse, released by
 * redis_target_free. */
struct redis_target {
    char *host;     /* NULL for a unix socket */
    int port;       /* REDIS_DEFAULT_PORT when the URL has none */
    char *path;     /* unix socket path, or NULL */
    char *user;     /* ACL user, or NULL */
    char *password; /* or NULL: never logged, never in an error */
    int db;         /* SELECT n; 0 by default */
    int tls;        /* rediss:// */
    char *shown;    /* the URL with the password replaced by "***": the only form logs and errors
                       use */
};

#define REDIS_TARGET_INIT {NULL, 0, NULL, NULL, NULL, 0, 0, NULL}

/*
 * Parse `url` into `t` (which it initialises). 0, or ERR_INVALID with a
 * message naming the problem (never the password); on failure `t` holds
 * nothing to free (redis_target_free on it is harmless).
 */
int redis_target_parse(const char *url, struct redis_target *t, struct err *err);

/* Release what `t` holds and clear it (the password's bytes are wiped). */
void redis_target_free(struct redis_target *t);

/*
 * A blocking connection for a thread of its own (API threads, CLI, doctor):
 * connect within `timeout_ms` (also the timeout of each later command), AUTH,
 * SELECT, PING. Returns the context (the caller frees it with redisFree), or
 * NULL with `err` set: ERR_IO "cannot reach <shown>: <why>", ERR_INVALID
 * "<shown> refused the password" / "<shown> needs a password" / "<shown>:
 * cannot select database n: ..." / for rediss:// the TLS tunnel's reason
 * (ERR_IO: certificate refused, ...) or a bad TLS setting, ERR_TIMEOUT when it
 * connected but did not answer in time.
 */
redisContext *redis_connect_sync(const struct redis_target *t, int timeout_ms, struct err *err);

/*
 * The commands an async connection must send first, in order (AUTH when
 * there is a password, then SELECT when db is not 0): for
 * redisAsyncCommandArgv(ac, cb, priv, c->argc, c->argv, c->argvlen). The
 * strings point into `t` and into `out` itself (valid while both are).
 * Returns how many (0..2) were put in `out`.
 */
struct redis_cmd {
    int argc;
    const char *argv[3];
    size_t argvlen[3];
    char num[16]; /* SELECT's number */
};
int redis_handshake(const struct redis_target *t, struct redis_cmd out[2]);

/*
 * Check the reply to handshake command `cmd` (from redis_handshake): 0 if it
 * succeeded, else ERR_INVALID (or ERR_IO for a NULL reply: the connection
 * failed) with the same message redis_connect_sync gives ("<shown> refused
 * the password", ...). `reply` may be NULL.
 */
int redis_handshake_check(const struct redis_target *t, const struct redis_cmd *cmd,
                          const redisReply *reply, struct err *err);

/*
 * rediss:// (redistls.c): the path of the local unix socket that stands for
 * TLS target `t` (made at the first call for its host and port, then the
 * same for the process's life), or NULL with `err` (a bad CA file, client
 * certificate, ...). A client connects there and speaks plain RESP; one pump
 * thread per process carries the bytes over TLS, verifying the server's
 * certificate (ORCH_REDIS_TLS_CA_CERT, else the system's CAs) and its name
 * (the URL's host). Thread-safe.
 */
const char *redis_tunnel_path(const struct redis_target *t, struct err *err);

/*
 * When the tunnel cannot reach the server or the TLS handshake fails, the
 * client's first reply is an error starting with REDIS_TUNNEL_ERR. Given an
 * error reply's text: the tunnel's message (naming the URL without its
 * password), or NULL when it is an error of the server.
 */
#define REDIS_TUNNEL_ERR "ORCHTLS "
const char *redis_tunnel_error(const char *reply_str);

/* The log stream key of an attempt (REDIS_LOG_KEY_PREFIX above) into buf
 * (REDIS_LOG_KEY_MAX bytes). */
void redis_log_key(char buf[REDIS_LOG_KEY_MAX], const char *exec_id, int task_idx, int attempt);

#endif
