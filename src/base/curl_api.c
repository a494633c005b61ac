/*
 * curl_api.c - libcurl through dlopen (curl_api.h).
 */
#include "curl_api.h"

#include <dlfcn.h>
#include <pthread.h>

#include "base/banned.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct curl_api api;
static void *lib;                     /* loaded once, never closed */
static CURLcode (*global_init)(long flags);
static void (*global_cleanup)(void);
static int users;                     /* curl_global_init holds while > 0 */

static int load(struct err *err)
{
    void *h;

    if (lib)
        return 0;
    h = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return err_set(err, ERR_IO, "cannot load libcurl (install libcurl4): %s", dlerror());
#define LOAD(dst, name)                                                                            \
    do {                                                                                           \
        *(void **)&(dst) = dlsym(h, name);                                                         \
        if (!(dst)) {                                                                              \
            dlclose(h);                                                                            \
            return err_set(err, ERR_IO, "libcurl lacks %s", name);                                 \
        }                                                                                          \
    } while (0)
    LOAD(global_init, "curl_global_init");
    LOAD(global_cleanup, "curl_global_cleanup");
    LOAD(api.easy_init, "curl_easy_init");
    LOAD(api.easy_cleanup, "curl_easy_cleanup");
    LOAD(api.easy_reset, "curl_easy_reset");
    LOAD(api.easy_setopt, "curl_easy_setopt");
    LOAD(api.easy_getinfo, "curl_easy_getinfo");
    LOAD(api.easy_perform, "curl_easy_perform");
    LOAD(api.easy_strerror, "curl_easy_strerror");
    LOAD(api.multi_init, "curl_multi_init");
    LOAD(api.multi_cleanup, "curl_multi_cleanup");
    LOAD(api.multi_setopt, "curl_multi_setopt");
    LOAD(api.multi_add_handle, "curl_multi_add_handle");
    LOAD(api.multi_remove_handle, "curl_multi_remove_handle");
    LOAD(api.multi_socket_action, "curl_multi_socket_action");
    LOAD(api.multi_info_read, "curl_multi_info_read");
    LOAD(api.slist_append, "curl_slist_append");
    LOAD(api.slist_free_all, "curl_slist_free_all");
#undef LOAD
    lib = h;
    return 0;
}

const struct curl_api *curl_api_acquire(struct err *err)
{
    const struct curl_api *out = &api;

    pthread_mutex_lock(&mu);
    if (load(err) != 0) {
        out = NULL;
    } else if (users == 0 && global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        err_set(err, ERR_IO, "cannot initialise libcurl");
        out = NULL;
    } else {
        users++;
    }
    pthread_mutex_unlock(&mu);
    return out;
}

void curl_api_release(void)
{
    pthread_mutex_lock(&mu);
    if (users > 0 && --users == 0)
        global_cleanup();
    pthread_mutex_unlock(&mu);
}
