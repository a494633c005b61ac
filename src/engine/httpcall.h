/*
 * httpcall.h - the requests of HTTP tasks, on libcurl's multi interface.
 *
 * The engine's loop thread owns one struct httpcalls. It watches the single
 * descriptor httpcalls_fd() (an epoll descriptor of libcurl's sockets) for
 * reading, wakes at httpcalls_timeout(), and then calls httpcalls_run(),
 * which drives every transfer without blocking and reports each finished
 * one through the `done` callback. No thread per request; connections to the
 * same host are kept alive and reused across tasks.
 *
 * libcurl is loaded (base/curl_api.h) when the first struct httpcalls is
 * made; only http and https are allowed, for the URL and for redirects. A
 * spec's policy (netpolicy.h) is checked on the address of every connection
 * before it is opened: a refused one fails the request with the policy's
 * message, without a packet sent.
 *
 * Not thread-safe: one thread uses a struct httpcalls.
 */
#ifndef ORCH_ENGINE_HTTPCALL_H
#define ORCH_ENGINE_HTTPCALL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/err.h"

struct netpolicy;

struct httpcall_spec {
    const char *method;          /* "GET", "POST", ... (upper case) */
    const char *url;             /* http:// or https:// */
    const char *const *headers;  /* "Name: value" lines, NULL-terminated; or NULL */
    const char *body;            /* request body, or NULL for none */
    size_t body_len;
    int64_t timeout_ms;          /* the whole request; 0 = none */
    int64_t connect_timeout_ms;  /* 0 = the whole-request timeout, or 10 s without one */
    int follow_redirects;        /* 1: follow up to 10 redirects; 0: a 3xx is the answer */
    const char *username;        /* basic auth, or NULL */
    const char *password;        /* with username */
    const char *bearer;          /* "Authorization: Bearer ..." token, or NULL */
    size_t max_body;             /* keep at most this many bytes of the response body */
    const struct netpolicy *policy; /* where it may connect (every connection, also through
                                     * redirects and proxies), or NULL for anywhere;
                                     * borrowed: must outlive the request */
};

struct httpcall_result {
    int ok;                /* 1: a response arrived (any status); 0: see error */
    long status;           /* HTTP status when ok */
    json_t *headers;       /* response headers: object of lower-case name -> value
                            * (repeated names joined with ", "); of the last response
                            * when redirects were followed; never NULL */
    char *body;            /* NUL-terminated (body_len bytes before the NUL); never NULL */
    size_t body_len;
    int body_truncated;    /* the body was longer than max_body */
    char *content_type;    /* or NULL */
    int timed_out;         /* !ok because a timeout expired */
    char error[256];       /* !ok: "Connection timeout after 10s", "Connection refused",
                            * "Timeout after 5s (no complete response)", "Could not resolve
                            * host 'x'", ...: without the method and URL, which the
                            * caller adds */
    int64_t elapsed_ms;
};

void httpcall_result_release(struct httpcall_result *r);

struct httpcalls;

/* Load libcurl and make the multi handle. ERR_IO with a message if libcurl cannot be loaded. */
int httpcalls_new(struct httpcalls **out, struct err *err);
void httpcalls_free(struct httpcalls *hc); /* ends every transfer without calling back */

/* The descriptor to watch for EPOLLIN. Constant for the life of hc. */
int httpcalls_fd(const struct httpcalls *hc);

/* Milliseconds until httpcalls_run() must be called even if the descriptor is
 * quiet; -1 for no deadline. */
int64_t httpcalls_timeout(const struct httpcalls *hc);

/* Requests in flight. */
size_t httpcalls_active(const struct httpcalls *hc);

/* Start a request; `tag` identifies it to done() and httpcalls_cancel(). The
 * spec's strings are copied. ERR_INVALID if the URL or method is refused. */
int httpcalls_start(struct httpcalls *hc, const struct httpcall_spec *spec, void *tag,
                    struct err *err);

/* Abort the request with this tag, if any, without calling back. */
void httpcalls_cancel(struct httpcalls *hc, void *tag);

typedef void (*httpcall_done_fn)(void *tag, struct httpcall_result *res, void *arg);

/* Drive transfers; call done() for each finished one. done() owns nothing of
 * res after it returns (res is released by httpcalls_run), may call
 * httpcalls_start and httpcalls_cancel. */
void httpcalls_run(struct httpcalls *hc, httpcall_done_fn done, void *arg);

#endif
