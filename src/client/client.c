/*
 * client.c - the REST client on libcurl's easy interface.
 *
 * The CLI makes one request at a time, so the easy interface is enough; the
 * handle is kept between requests (curl_easy_reset keeps its connections)
 * so that polling and paging reuse one keep-alive connection.
 */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/curl_api.h"
#include "base/strbuf.h"
#include "base/xalloc.h"

#include "base/banned.h"

#define CONNECT_TIMEOUT_MS_DEFAULT 10000L
#define TIMEOUT_MS_DEFAULT         60000L

struct client {
    CURL *curl;
    char *base_url;
    char *auth_header; /* "Authorization: Bearer KEY", or NULL */
    char *cacert;      /* CA certificate file for https, or NULL */
    long connect_timeout_ms;
    long timeout_ms;
    char errbuf[CURL_ERROR_SIZE];
};

/* State of one transfer, shared by the header and write callbacks. */
struct xfer {
    CURL *curl;
    struct client_response *out;
    struct strbuf body; /* bounded by CLIENT_MAX_RESPONSE */
    int too_big;
    /* streaming (fn != NULL) */
    client_line_fn fn;
    void *arg;
    int mode;           /* 0 undecided, 1 lines to fn, 2 collect the body */
    struct strbuf line; /* bounded by CLIENT_MAX_LINE */
    int stopped;
};

static const struct curl_api *cu; /* while a client is alive */

int client_new(const struct client_config *cfg, struct client **out, struct err *err)
{
    struct client *c;
    const char *u = cfg->base_url;
    size_t n;

    *out = NULL;
    if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) ||
        !u[strncmp(u, "http://", 7) ? 8 : 7])
        return err_set(err, ERR_INVALID, "invalid server URL '%s' (use http://HOST:PORT)",
                       u ? u : "");
    cu = curl_api_acquire(err);
    if (!cu)
        return ERR_INTERNAL;
    c = xcalloc(1, sizeof(*c));
    c->curl = cu->easy_init();
    if (!c->curl) {
        free(c);
        curl_api_release();
        return err_set(err, ERR_INTERNAL, "cannot create a libcurl handle");
    }
    c->base_url = xstrdup(u);
    n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    if (cfg->api_key && *cfg->api_key)
        c->auth_header = xasprintf("Authorization: Bearer %s", cfg->api_key);
    if (cfg->cacert && *cfg->cacert)
        c->cacert = xstrdup(cfg->cacert);
    c->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : CONNECT_TIMEOUT_MS_DEFAULT;
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : TIMEOUT_MS_DEFAULT;
    *out = c;
    return 0;
}

void client_free(struct client *c)
{
    if (!c)
        return;
    cu->easy_cleanup(c->curl);
    if (c->auth_header) {
        /* The key is a secret: do not leave it in freed memory. */
        memset(c->auth_header, 0, strlen(c->auth_header));
        free(c->auth_header);
    }
    free(c->base_url);
    free(c->cacert);
    free(c);
    curl_api_release();
}

const char *client_base_url(const struct client *c)
{
    return c->base_url;
}

void client_response_release(struct client_response *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

/* ------------------------------------------------------------------ callbacks */

static void copy_value(char *dst, size_t dstlen, const char *v, size_t len)
{
    while (len && (*v == ' ' || *v == '\t')) {
        v++;
        len--;
    }
    while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
        len--;
    if (len >= dstlen)
        len = dstlen - 1;
    memcpy(dst, v, len);
    dst[len] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nitems, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * nitems;
    static const struct {
        const char *name;
        size_t off, cap;
    } wanted[] = {
        {"x-request-id", offsetof(struct client_response, request_id),
         sizeof(((struct client_response *)0)->request_id)},
        {"retry-after", offsetof(struct client_response, retry_after),
         sizeof(((struct client_response *)0)->retry_after)},
        {"content-type", offsetof(struct client_response, content_type),
         sizeof(((struct client_response *)0)->content_type)},
        {"www-authenticate", offsetof(struct client_response, www_authenticate),
         sizeof(((struct client_response *)0)->www_authenticate)},
    };

    /* A status line starts a new set of headers (after a 100 Continue, say). */
    if (len >= 5 && !strncmp(data, "HTTP/", 5)) {
        for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
            ((char *)x->out + wanted[i].off)[0] = '\0';
        return len;
    }
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        size_t nl = strlen(wanted[i].name);
        if (len > nl && data[nl] == ':' && !strncasecmp(data, wanted[i].name, nl)) {
            copy_value((char *)x->out + wanted[i].off, wanted[i].cap, data + nl + 1, len - nl - 1);
            break;
        }
    }
    return len;
}

/* Hand the complete lines in x->line to the caller; keep the partial one. */
static int deliver_lines(struct xfer *x, int final)
{
    size_t start = 0;
    for (size_t i = 0; i < x->line.len; i++) {
        if (x->line.buf[i] != '\n')
            continue;
        if (x->fn(x->arg, x->line.buf + start, i - start)) {
            x->stopped = 1;
            return -1;
        }
        start = i + 1;
    }
    if (final && start < x->line.len) {
        if (x->fn(x->arg, x->line.buf + start, x->line.len - start)) {
            x->stopped = 1;
            return -1;
        }
        start = x->line.len;
    }
    if (start) {
        size_t rest = x->line.len - start;
        memmove(x->line.buf, x->line.buf + start, rest);
        x->line.len = rest;
        x->line.buf[rest] = '\0';
    }
    return 0;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *arg)
{
    struct xfer *x = arg;
    size_t len = size * nmemb;

    if (x->fn && x->mode == 0) {
        long status = 0;
        cu->easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
        x->mode = status >= 200 && status < 300 ? 1 : 2;
    }
    if (x->mode == 1) {
        if (strbuf_add(&x->line, data, len)) {
            x->too_big = 1;
            return 0; /* a line over the cap: abort the transfer */
        }
        return deliver_lines(x, 0) ? 0 : len;
    }
    if (strbuf_add(&x->body, data, len)) {
        x->too_big = 1;
        return 0;
    }
    return len;
}

/* ------------------------------------------------------------------ requests */

static void fill_fallback(struct client_response *r)
{
    size_t n = 0;
    while (n < r->len && n < 160 && r->body[n] != '\n' && r->body[n] != '\r')
        n++;
    if (n)
        snprintf(r->fallback_msg, sizeof(r->fallback_msg), "HTTP %ld: %.*s", r->status, (int)n,
                 r->body);
    else
        snprintf(r->fallback_msg, sizeof(r->fallback_msg), "HTTP %ld", r->status);
}

/* Turn a libcurl failure into an error code and a message naming the server. */
static int transfer_error(struct client *c, CURLcode cc, struct xfer *x, struct err *err)
{
    long oserr = 0;

    if (x->too_big)
        return err_set(err, ERR_TOO_BIG, "the answer of %s is larger than the limit of %u bytes",
                       c->base_url, x->fn ? CLIENT_MAX_LINE : CLIENT_MAX_RESPONSE);
    if (x->stopped)
        return err_set(err, ERR_INTERNAL, "stopped by the caller");
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        cu->easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
        return err_set(err, ERR_IO, "cannot connect to %s: %s", c->base_url,
                       oserr ? strerror((int)oserr)
                             : (c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc)));
    case CURLE_COULDNT_RESOLVE_HOST:
        return err_set(err, ERR_IO, "cannot connect to %s: cannot resolve the host name",
                       c->base_url);
    case CURLE_OPERATION_TIMEDOUT:
        return err_set(err, ERR_TIMEOUT, "no answer from %s in time: %s", c->base_url,
                       c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc));
    case CURLE_PEER_FAILED_VERIFICATION:
        return err_set(err, ERR_IO,
                       "cannot verify the TLS certificate of %s: %s (%s)", c->base_url,
                       c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc),
                       c->cacert ? "is --cacert the certificate of the CA that signed it?"
                                 : "pass the certificate of the CA that signed it with "
                                   "--cacert FILE or ORCH_CACERT");
    case CURLE_SSL_CACERT_BADFILE:
        return err_set(err, ERR_IO, "cannot use the CA certificate '%s': %s", c->cacert,
                       c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc));
    case CURLE_SSL_CONNECT_ERROR:
        return err_set(err, ERR_IO, "TLS handshake with %s failed: %s (is it an HTTPS server?)",
                       c->base_url, c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc));
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
        if (!strncmp(c->base_url, "http://", 7))
            return err_set(err, ERR_IO,
                           "request to %s failed: %s (if the server serves HTTPS, use https://)",
                           c->base_url, c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc));
        return err_set(err, ERR_IO, "request to %s failed: %s", c->base_url,
                       c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc));
    case CURLE_UNSUPPORTED_PROTOCOL:
        return err_set(err, ERR_INVALID, "invalid server URL '%s': %s", c->base_url,
                       c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc));
    default:
        return err_set(err, ERR_IO, "request to %s failed: %s", c->base_url,
                       c->errbuf[0] ? c->errbuf : cu->easy_strerror(cc));
    }
}

/*
 * Set up the handle for one request. Everything is set again each time:
 * curl_easy_reset clears the options of the previous request but keeps
 * the open connection.
 */
static struct curl_slist *prepare(struct client *c, struct xfer *x, const char *method,
                                  const char *url, const char *body, size_t body_len,
                                  const char *const *headers, int stream)
{
    struct curl_slist *hl = NULL;
    CURL *h = c->curl;

    cu->easy_reset(h);
    c->errbuf[0] = '\0';
    cu->easy_setopt(h, CURLOPT_URL, url);
    cu->easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    cu->easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    cu->easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
    cu->easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    cu->easy_setopt(h, CURLOPT_TIMEOUT_MS, stream ? 0L : c->timeout_ms);
    cu->easy_setopt(h, CURLOPT_USERAGENT, "orch/" ORCH_VERSION);
    /* (Peer and host verification are libcurl's defaults; set them all the same.) */
    cu->easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    cu->easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->cacert)
        cu->easy_setopt(h, CURLOPT_CAINFO, c->cacert);
    cu->easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    cu->easy_setopt(h, CURLOPT_HEADERDATA, x);
    cu->easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    cu->easy_setopt(h, CURLOPT_WRITEDATA, x);
    if (stream) {
        /* A follow stream may be quiet for long: let TCP notice a dead peer. */
        cu->easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    }
    if (!strcmp(method, "GET")) {
        cu->easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(method, "POST")) {
        cu->easy_setopt(h, CURLOPT_POST, 1L);
        cu->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
        cu->easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    } else {
        cu->easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        if (body) {
            cu->easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            cu->easy_setopt(h, CURLOPT_POSTFIELDS, body);
        }
    }
    if (c->auth_header)
        hl = cu->slist_append(hl, c->auth_header);
    if (body) {
        int own_type = 0;
        for (size_t i = 0; headers && headers[i]; i++)
            own_type |= !strncasecmp(headers[i], "Content-Type:", 13);
        if (!own_type)
            hl = cu->slist_append(hl, "Content-Type: application/json");
    }
    hl = cu->slist_append(hl, "Accept: application/json, application/x-ndjson");
    /* No "Expect: 100-continue" round trip for bodies over 1 KiB. */
    hl = cu->slist_append(hl, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        hl = cu->slist_append(hl, headers[i]);
    cu->easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    return hl;
}

static int perform(struct client *c, const char *method, const char *path, const char *body,
                   size_t body_len, const char *const *headers, client_line_fn fn, void *arg,
                   struct client_response *out, struct err *err)
{
    struct xfer x;
    struct curl_slist *hl;
    CURLcode cc;
    char *url;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&x, 0, sizeof(x));
    x.curl = c->curl;
    x.out = out;
    x.fn = fn;
    x.arg = arg;
    strbuf_init(&x.body, CLIENT_MAX_RESPONSE);
    strbuf_init(&x.line, CLIENT_MAX_LINE);

    if (path[0] != '/')
        BUG("client path '%s' does not start with '/'", path);
    url = xasprintf("%s%s", c->base_url, path);
    hl = prepare(c, &x, method, url, body, body_len, headers, fn != NULL);
    cc = cu->easy_perform(c->curl);
    cu->easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &out->status);
    if (cc == CURLE_OK && x.mode == 1 && deliver_lines(&x, 1))
        cc = CURLE_WRITE_ERROR;
    if (cc != CURLE_OK)
        rc = transfer_error(c, cc, &x, err);
    out->body = strbuf_detach(&x.body, &out->len);
    if (out->len)
        out->json = json_loadb(out->body, out->len, 0, NULL);
    fill_fallback(out);
    strbuf_release(&x.line);
    cu->slist_free_all(hl);
    free(url);
    return rc;
}

int client_request(struct client *c, const char *method, const char *path, const char *body,
                   size_t body_len, const char *const *headers, struct client_response *out,
                   struct err *err)
{
    return perform(c, method, path, body, body_len, headers, NULL, NULL, out, err);
}

int client_request_json(struct client *c, const char *method, const char *path, const json_t *body,
                        const char *const *headers, struct client_response *out, struct err *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc;

    if (body && !text) {
        memset(out, 0, sizeof(*out));
        return err_set(err, ERR_INVALID, "cannot serialise the request body");
    }
    rc = perform(c, method, path, text, text ? strlen(text) : 0, headers, NULL, NULL, out, err);
    free(text);
    return rc;
}

int client_stream(struct client *c, const char *path, client_line_fn fn, void *arg,
                  struct client_response *out, struct err *err)
{
    if (!fn)
        BUG("client_stream without a line function");
    return perform(c, "GET", path, NULL, 0, NULL, fn, arg, out, err);
}

/* ------------------------------------------------------------------ helpers */

const char *client_error_message(const struct client_response *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    json_t *m = e ? json_object_get(e, "message") : NULL;

    if (json_is_string(m) && json_string_length(m))
        return json_string_value(m);
    return r->fallback_msg[0] ? r->fallback_msg : "no answer";
}

const char *client_error_code(const struct client_response *r)
{
    json_t *e = r->json ? json_object_get(r->json, "error") : NULL;
    json_t *code = e ? json_object_get(e, "code") : NULL;
    return json_is_string(code) ? json_string_value(code) : "";
}

char *client_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s);
    char *out = xmalloc(n * 3 + 1), *p = out;

    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            *p++ = (char)ch;
        } else {
            *p++ = '%';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 15];
        }
    }
    *p = '\0';
    return out;
}
