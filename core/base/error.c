/* error.c — filling agx_error: every layer (core, backends, runtime client) reports through it. */
#include "agentix/error.h"

#include <stdio.h>
#include <string.h>

void agx_error_clear(agx_error *err)
{
    if (!err)
        return;
    err->code = AGX_OK;
    err->retriable = 0;
    err->message[0] = '\0';
    err->detail[0] = '\0';
    err->remote_type[0] = '\0';
}

int agx_error_setv(agx_error *err, agx_error_code code, const char *fmt, va_list ap)
{
    if (!err)
        return code;
    err->code = code;
    err->retriable = 0;
    err->detail[0] = '\0';
    err->remote_type[0] = '\0';
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    return code;
}

int agx_error_set(agx_error *err, agx_error_code code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = agx_error_setv(err, code, fmt, ap);
    va_end(ap);
    return rc;
}

void agx_error_set_detail(agx_error *err, const char *detail, size_t len)
{
    if (!err)
        return;
    if (!detail) {
        err->detail[0] = '\0';
        return;
    }
    if (len == (size_t)-1)
        len = strlen(detail);
    if (len >= sizeof err->detail)
        len = sizeof err->detail - 1;
    memcpy(err->detail, detail, len);
    err->detail[len] = '\0';
}

void agx_error_prefix(agx_error *err, const char *fmt, ...)
{
    if (!err)
        return;
    char old[AGX_ERROR_MESSAGE_MAX];
    memcpy(old, err->message, sizeof old);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    /* Truncation is the intent here: the message buffer is bounded. */
    size_t used = n < 0 ? 0 : (size_t)n;
    if (used >= sizeof err->message - 1)
        return;
    size_t room = sizeof err->message - used - 1;
    const char sep[] = ": ";
    size_t seplen = sizeof sep - 1 < room ? sizeof sep - 1 : room;
    memcpy(err->message + used, sep, seplen);
    used += seplen;
    room -= seplen;
    size_t oldlen = strnlen(old, sizeof old);
    if (oldlen > room)
        oldlen = room;
    memcpy(err->message + used, old, oldlen);
    err->message[used + oldlen] = '\0';
}

void agx_error_copy(agx_error *dst, const agx_error *src)
{
    if (!dst || dst == src)
        return;
    if (!src) {
        agx_error_clear(dst);
        return;
    }
    memcpy(dst, src, sizeof *dst);
}

const char *agx_error_code_name(int code)
{
    static const char *const names[] = {
        "OK", "INVALID_ARGUMENT", "NOT_FOUND", "CONFLICT", "UNAVAILABLE", "TIMEOUT",
        "BACKEND", "PROTOCOL", "CANCELLED", "NO_MEMORY", "IO", "REMOTE", "ABI", "LIMIT",
        "UNSUPPORTED", "INTERNAL", "RATE_LIMITED",
    };
    int idx = -code;
    if (idx < 0 || (size_t)idx >= sizeof names / sizeof names[0])
        return "UNKNOWN";
    return names[idx];
}
