/*
 * fuzz_api - libFuzzer target for what the API parses from a request before
 * any handler runs: the Authorization header, the path (router), query
 * argument values, request ids, the Accept-Encoding value, and the UTF-8
 * repair of text echoed in JSON; and the gzip of an answer.
 *
 * The whole input is used as each of these in turn (as text, NUL-terminated
 * at the first NUL; the UTF-8 repair gets every byte). Properties checked:
 * an accepted Bearer key lies inside the header and has only key characters;
 * a matched route's placeholders are non-empty and short; a repaired string
 * is valid JSON text; gzipped bytes inflate back to the input.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "api/api_internal.h"
#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "DELETE", "PUT"};
    char *s = malloc(size + 1);
    char msg[AUTH_MSG_MAX], allow[64], bad[40];
    struct api_path_params params;
    const char *key = NULL;
    size_t len = 0;
    unsigned mask;
    int64_t ms;
    int n;
    json_t *j;
    char *dump;

    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    if (auth_parse_bearer(s, &key, &len, msg) == AUTH_OK) {
        assert(key > s && key + len <= s + strlen(s));
        assert(len >= AUTH_KEY_MIN_LEN && len <= AUTH_KEY_MAX_LEN);
        assert(!memcmp(key, "sk_", 3));
        for (size_t i = 0; i < len; i++)
            assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-",
                          key[i]) &&
                   key[i]);
    } else {
        assert(key == NULL && len == 0 && msg[0]);
    }

    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++) {
        const struct api_route *r = api__route_match(api__routes, api__nroutes, methods[m], s,
                                                     &params, allow, sizeof(allow));
        if (r) {
            for (size_t i = 0; i < params.n; i++) {
                size_t pl = strlen(params.values[i]);
                assert(pl > 0 && pl < API_PARAM_MAX && !strchr(params.values[i], '/'));
            }
        }
    }

    if (api__parse_limit(s, &n) == 0)
        assert(n >= 1 && n <= API_LIST_MAX);
    if (api__parse_status_list(s, &mask, bad, sizeof(bad)) == 0)
        assert(mask != 0 && mask < (1u << EXEC_STATUS_COUNT));
    (void)api__parse_instant(s, &ms);
    (void)api__parse_bool(s, &n);
    (void)api__valid_request_id(s);
    (void)api__valid_idempotency_key(s);
    (void)api__valid_exec_id(s);

    n = api__accepts_gzip(s);
    assert(n == 0 || n == 1);
    {
        char *z;
        size_t zlen;
        if (api__gzip(data, size, 1, &z, &zlen) == 0) {
            unsigned char *back = malloc(size + 1);
            z_stream st;
            memset(&st, 0, sizeof(st));
            assert(back && zlen < size);
            assert(inflateInit2(&st, 16 + 15) == Z_OK);
            st.next_in = (unsigned char *)z;
            st.avail_in = (unsigned)zlen;
            st.next_out = back;
            st.avail_out = (unsigned)size + 1;
            assert(inflate(&st, Z_FINISH) == Z_STREAM_END);
            assert(st.total_out == size && !memcmp(back, data, size));
            inflateEnd(&st);
            free(back);
            free(z);
        }
    }

    j = api__json_string((const char *)data, size);
    assert(j);
    dump = json_dumps(j, JSON_ENCODE_ANY);
    assert(dump);
    free(dump);
    json_decref(j);
    free(s);
    return 0;
}
