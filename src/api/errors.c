/*
 * errors.c - the one JSON error shape and the one mapping from ERR_* codes to
 * HTTP statuses.
 */
#include <string.h>

#include "api_internal.h"

#include "base/banned.h"

int api__status_for_err(int code)
{
    switch (code) {
    case 0:
        return 200;
    case ERR_INVALID:
        return 422;
    case ERR_NOT_FOUND:
        return 404;
    case ERR_CONFLICT:
    case ERR_FENCED:
        return 409;
    case ERR_TOO_BIG:
        return 413;
    case ERR_BUSY:
        return 503; /* stopping, or the database is locked: retry */
    case ERR_TIMEOUT:
        return 503;
    case ERR_STORE:
        return 503; /* the database is unreachable or failing */
    case ERR_FULL:
        return 503; /* its disk is full: writes wait until space is freed */
    case ERR_NOMEM:
        return 503;
    case ERR_IO:
        return 500;
    case ERR_INTERNAL:
        return 500;
    }
    return 500;
}

const char *api__code_for_status(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 401:
        return "invalid_token";
    case 403:
        return "forbidden";
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 408:
        return "request_timeout";
    case 409:
        return "conflict";
    case 413:
        return "payload_too_large";
    case 414:
        return "uri_too_long";
    case 431:
        return "headers_too_large";
    case 422:
        return "validation_failed";
    case 429:
        return "rate_limited";
    case 503:
        return "unavailable";
    }
    return "internal";
}

json_t *api__error_json(int status, const char *message, json_t *details)
{
    json_t *e = json_object();
    json_t *o = json_object();

    json_object_set_new(e, "code", json_string(api__code_for_status(status)));
    json_object_set_new(e, "message", api__json_string(message, strlen(message)));
    json_object_set_new(e, "details", details ? details : json_array());
    json_object_set_new(o, "error", e);
    return o;
}
