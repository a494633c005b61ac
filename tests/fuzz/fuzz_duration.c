/* libFuzzer target: durations and ISO 8601 instants (src/base/clock.c), and
 * the UTF-8 sanitizer (src/base/strbuf.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct err err = ERR_INIT;
    struct strbuf sb = STRBUF_INIT;
    int64_t ms;
    char buf[CLOCK_ISO_MAX];

    memcpy(s, data, size);
    s[size] = '\0';
    if (clock_parse_duration(s, &ms, &err) == 0 && ms < 0)
        abort();
    if (clock_parse_iso8601(s, &ms) == 0) {
        int64_t back;
        clock_iso8601(ms, buf);
        /* What we print, we parse back to the same instant (years 0..9999). */
        if (ms >= -62167219200000LL && ms < 253402300800000LL &&
            (clock_parse_iso8601(buf, &back) != 0 || back != ms))
            abort();
    }
    strbuf_add_utf8(&sb, (const char *)data, size);
    if (memchr(sb.buf, '\0', sb.len))
        abort();
    strbuf_release(&sb);
    free(s);
    return 0;
}
