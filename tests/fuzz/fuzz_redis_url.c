/* libFuzzer target: Redis URLs (src/base/redis.c). Whatever the input, a
 * parsed target is consistent, its `shown` form never holds the password
 * and parses back to the same target. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(const char *a, const char *b)
{
    return a == b || (a && b && !strcmp(a, b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct err err = ERR_INIT;
    struct redis_target t, back;
    struct redis_cmd cmds[2];

    memcpy(s, data, size);
    s[size] = '\0';
    if (redis_target_parse(s, &t, &err) != 0) {
        if (t.shown || t.password || t.host || t.path || t.user || err.code != ERR_INVALID)
            abort();
        free(s);
        return 0;
    }
    if (!t.shown || (!t.host == !t.path) || t.db < 0)
        abort();
    if (t.host && (t.port < 1 || t.port > 65535))
        abort();
    if (redis_handshake(&t, cmds) != (t.password ? 1 : 0) + (t.db ? 1 : 0))
        abort();
    /* What is shown parses back to the same place, with "***" for the password:
     * so the password is nowhere else in it (a user, host or path that happens
     * to hold the same text is its own field). */
    if (redis_target_parse(t.shown, &back, &err) != 0)
        abort();
    if (!same(t.host, back.host) || !same(t.path, back.path) || !same(t.user, back.user) ||
        t.port != back.port || t.db != back.db || t.tls != back.tls ||
        !same(t.shown, back.shown) || !t.password != !back.password ||
        (back.password && strcmp(back.password, "***")))
        abort();
    redis_target_free(&back);
    redis_target_free(&t);
    free(s);
    return 0;
}
