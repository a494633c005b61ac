#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void err_prefix(struct err *err, const char *fmt, ...)
{
    char head[ERR_MSG_MAX];
    char old[ERR_MSG_MAX];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(head, sizeof(head), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    {
        /* Truncation is acceptable: messages are bounded by design. */
        size_t hl = strnlen(head, sizeof(err->msg) - 3);
        memcpy(err->msg, head, hl);
        memcpy(err->msg + hl, ": ", 2);
        hl += 2;
        size_t ol = strnlen(old, sizeof(err->msg) - 1 - hl);
        memcpy(err->msg + hl, old, ol);
        err->msg[hl + ol] = '\0';
    }
}

const char *err_name(int code)
{
    switch (code) {
    case ERR_OK: return "ERR_OK";
    case ERR_NOMEM: return "ERR_NOMEM";
    case ERR_INVALID: return "ERR_INVALID";
    case ERR_NOT_FOUND: return "ERR_NOT_FOUND";
    case ERR_CONFLICT: return "ERR_CONFLICT";
    case ERR_IO: return "ERR_IO";
    case ERR_TIMEOUT: return "ERR_TIMEOUT";
    case ERR_STORE: return "ERR_STORE";
    case ERR_TOO_BIG: return "ERR_TOO_BIG";
    case ERR_BUSY: return "ERR_BUSY";
    case ERR_INTERNAL: return "ERR_INTERNAL";
    case ERR_FENCED: return "ERR_FENCED";
    case ERR_FULL: return "ERR_FULL";
    }
    return "ERR_UNKNOWN";
}

const char *err_str(int code)
{
    switch (code) {
    case ERR_OK: return "success";
    case ERR_NOMEM: return "out of memory";
    case ERR_INVALID: return "invalid input";
    case ERR_NOT_FOUND: return "not found";
    case ERR_CONFLICT: return "conflict";
    case ERR_IO: return "i/o error";
    case ERR_TIMEOUT: return "timed out";
    case ERR_STORE: return "database error";
    case ERR_TOO_BIG: return "too big";
    case ERR_BUSY: return "busy";
    case ERR_INTERNAL: return "internal error";
    case ERR_FENCED: return "owned by another node";
    case ERR_FULL: return "disk full";
    }
    return "unknown error";
}
