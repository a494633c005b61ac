/*
 * curl_api.h - libcurl, loaded with dlopen on first use.
 *
 * Linking libcurl pulls some thirty libraries (TLS, Kerberos, LDAP, ...)
 * into every orch command and cost about 10 ms of start-up each (hyperfine:
 * an empty program 2.1 ms, linked with -lcurl 12.0 ms), while only the REST
 * client (src/client) and HTTP tasks (src/engine/httpcall.c) use it. They
 * call its functions through the table this returns; the library stays
 * loaded for the rest of the process, and curl_global_init holds while any
 * user has acquired it. Thread-safe.
 */
#ifndef ORCH_BASE_CURL_API_H
#define ORCH_BASE_CURL_API_H

/* No compile-time type checks: the functions are called through pointers. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#include "base/err.h"

struct curl_api {
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *h);
    void (*easy_reset)(CURL *h);
    CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
    CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
    CURLcode (*easy_perform)(CURL *h);
    const char *(*easy_strerror)(CURLcode code);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *m);
    CURLMcode (*multi_setopt)(CURLM *m, CURLMoption opt, ...);
    CURLMcode (*multi_add_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_remove_handle)(CURLM *m, CURL *h);
    CURLMcode (*multi_socket_action)(CURLM *m, curl_socket_t s, int ev, int *running);
    CURLMsg *(*multi_info_read)(CURLM *m, int *left);
    struct curl_slist *(*slist_append)(struct curl_slist *l, const char *s);
    void (*slist_free_all)(struct curl_slist *l);
};

/* Load libcurl (once) and initialise it for one more user. NULL and ERR_IO
 * ("cannot load libcurl (install libcurl4): ...") if it cannot be. */
const struct curl_api *curl_api_acquire(struct err *err);
/* The user is done: the last one cleans libcurl's global state up. */
void curl_api_release(void);

#endif
