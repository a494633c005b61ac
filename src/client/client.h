/*
 * client.h - a small REST client of the orch server, for the CLI.
 *
 * One struct client holds a libcurl easy handle, so consecutive requests
 * reuse one keep-alive connection. Only http and https are allowed,
 * redirects are not followed, every request has a connect timeout and (but
 * for streams) a total timeout, and response bodies are capped
 * (CLIENT_MAX_RESPONSE): a bigger answer is an error, not an abort.
 *
 * Threading: a struct client is used from one thread at a time. The first
 * client_new() initialises libcurl (curl_global_init), so call it before
 * starting threads.
 *
 * Errors: functions return 0 or a negative ERR_* code and fill `err` (if not
 * NULL) on failure. A request that got an HTTP answer succeeded at this
 * level whatever its status: the caller reads out->status. Transport
 * failures are ERR_IO ("cannot connect to http://127.0.0.1:8080: Connection
 * refused"), ERR_TIMEOUT, ERR_TOO_BIG (the answer is over the cap) or
 * ERR_INVALID (a bad server URL). With https, a server whose certificate
 * does not verify is ERR_IO with a message that says so (and how to pass the
 * CA's certificate).
 */
#ifndef ORCH_CLIENT_CLIENT_H
#define ORCH_CLIENT_CLIENT_H

#include <jansson.h>
#include <stddef.h>

#include "base/err.h"

#ifndef CLIENT_MAX_RESPONSE
#define CLIENT_MAX_RESPONSE (64u << 20) /* a page of 1000 executions is well under 1 MiB */
#endif
#ifndef CLIENT_MAX_LINE
#define CLIENT_MAX_LINE (16u << 20) /* one line of a stream (a log chunk is at most 1 MiB) */
#endif

struct client_config {
    const char *base_url;    /* "http://127.0.0.1:8080" (http or https; a final '/' is ignored) */
    const char *api_key;     /* sent as "Authorization: Bearer KEY", or NULL */
    long connect_timeout_ms; /* 0: 10 s */
    long timeout_ms;         /* a whole request but streams; 0: 60 s */
    const char *cacert;      /* https: the PEM CA certificate(s) to verify the server with;
                                NULL: the system's. Verification is always on. */
};

/*
 * An answer. Members are readable; the strings and `json` belong to the
 * response and are freed by client_response_release().
 */
struct client_response {
    long status;                /* HTTP status (200, 404, ...) */
    char *body;                 /* the raw body, NUL-terminated; "" when empty */
    size_t len;                 /* its length */
    json_t *json;               /* the body parsed as JSON, or NULL if empty or not JSON */
    char request_id[64];        /* X-Request-Id, or "" */
    char retry_after[32];       /* Retry-After, or "" */
    char content_type[128];     /* Content-Type, or "" */
    char www_authenticate[512]; /* WWW-Authenticate, or "" */
    char fallback_msg[256];     /* private: "HTTP 502: <start of body>" */
};

#define CLIENT_RESPONSE_INIT                                                                       \
    {                                                                                              \
        0, NULL, 0, NULL, {0}, {0}, {0}, {0},                                                      \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

struct client;

/*
 * Make a client for the server at cfg->base_url (strings are copied).
 * ERR_INVALID with a message if the URL is not http:// or https://.
 * Free with client_free().
 */
int client_new(const struct client_config *cfg, struct client **out, struct err *err);
void client_free(struct client *c);

/* The server's base URL, without a final '/'. Borrowed from the client. */
const char *client_base_url(const struct client *c);

/*
 * Perform one request: `method` ("GET", "POST", "DELETE"), `path` starting
 * with '/' (query included, already escaped: see client_escape), an optional
 * body of `body_len` bytes sent as application/json (NULL for none), and
 * optional extra header lines (a NULL-terminated array of "Name: value").
 * Fills *out (release it with client_response_release, also on failure).
 */
int client_request(struct client *c, const char *method, const char *path, const char *body,
                   size_t body_len, const char *const *headers, struct client_response *out,
                   struct err *err);

/* client_request() with a JSON body (serialised compactly), or none if `body` is NULL. */
int client_request_json(struct client *c, const char *method, const char *path, const json_t *body,
                        const char *const *headers, struct client_response *out, struct err *err);

/*
 * Called for each line of a streamed answer, without its '\n'. Return 0 to
 * go on, non-zero to stop the transfer (client_stream then returns
 * ERR_INTERNAL with "stopped by the caller" and leaves the status in *out).
 */
typedef int (*client_line_fn)(void *arg, const char *line, size_t len);

/*
 * GET `path` and hand each line of a 2xx answer to `fn` as it arrives, with
 * no total timeout (for application/x-ndjson streams that last as long as
 * an execution). An answer with another status is collected in out->body /
 * out->json as client_request() does, and `fn` is not called.
 */
int client_stream(struct client *c, const char *path, client_line_fn fn, void *arg,
                  struct client_response *out, struct err *err);

void client_response_release(struct client_response *r);

/*
 * The error message of an answer: the "message" of the server's error
 * object ({"error": {"code", "message", "details"}}), else the start of the
 * body, else "HTTP <status>". Borrowed from the response.
 */
const char *client_error_message(const struct client_response *r);
/* The server's error code ("not_found"), or "" if the body has none. */
const char *client_error_code(const struct client_response *r);

/* Percent-encode `s` for a URL path segment or query value (RFC 3986
 * unreserved characters are kept). The caller frees the result. */
char *client_escape(const char *s);

#endif
