/* rpc_error.c — the error map of a failed call: built by the worker (or the server for its own
 * failures), relayed to the host, and turned into the host's agx_error there (see rpc_error.h). */
#include "runtime/wire/rpc_error.h"

#include <stdio.h>
#include <string.h>

/* Bounded length of s: the longest the receiving agx_error field can hold, ending on a UTF-8
 * character boundary so the str stays valid. */
static size_t cut(const char *s, size_t max)
{
    if (!s)
        return 0;
    size_t len = strnlen(s, max);
    if (len < max)
        return len;
    len = max - 1;
    while (len > 0 && ((unsigned char)s[len] & 0xc0) == 0x80)
        len--;
    return len;
}

int agx_rpc_error_pack(agx_buf *b, const char *type, const char *message, const char *detail,
                       bool cancelled)
{
    size_t mark = b->len;
    if (!type || !*type)
        type = AGX_RPC_INTERNAL;
    int rc = agx_mp_put_map(b, 4) || agx_mp_put_lit(b, AGX_F_TYPE) ||
             agx_mp_put_str(b, type, cut(type, AGX_ERROR_TYPE_MAX)) ||
             agx_mp_put_lit(b, AGX_F_MESSAGE) ||
             agx_mp_put_str(b, message ? message : "", cut(message, AGX_ERROR_MESSAGE_MAX)) ||
             agx_mp_put_lit(b, AGX_F_DETAIL) ||
             (detail && *detail ? agx_mp_put_str(b, detail, cut(detail, AGX_ERROR_DETAIL_MAX))
                                : agx_mp_put_nil(b)) ||
             agx_mp_put_lit(b, AGX_F_CANCELLED) || agx_mp_put_bool(b, cancelled);
    if (rc) {
        b->len = mark;
        return AGX_ERR_NO_MEMORY;
    }
    return 0;
}

int agx_rpc_error_pack_cancelled(agx_buf *b)
{
    return agx_rpc_error_pack(b, AGX_RPC_CANCELLED, "remote call cancelled", NULL, true);
}

static const char *type_of_code(int code)
{
    switch (code) {
    case AGX_ERR_CANCELLED: return AGX_RPC_CANCELLED;
    case AGX_ERR_NOT_FOUND: return AGX_RPC_NOT_FOUND;
    case AGX_ERR_TIMEOUT: return AGX_RPC_TIMEOUT;
    case AGX_ERR_LIMIT: return AGX_RPC_LIMIT;
    case AGX_ERR_INVALID_ARGUMENT: return AGX_RPC_BAD_REQUEST;
    default: return AGX_RPC_INTERNAL;
    }
}

int agx_rpc_error_pack_agx(agx_buf *b, const agx_error *err)
{
    const char *type = err->remote_type[0] ? err->remote_type : type_of_code(err->code);
    return agx_rpc_error_pack(b, type, err->message, err->detail, err->code == AGX_ERR_CANCELLED);
}

/* Copies a msgpack str (or nil → "") into a fixed buffer; -1 when the span is another type. */
static int copy_str(agx_mp_span s, char *dst, size_t cap)
{
    const char *p;
    size_t len;
    dst[0] = '\0';
    if (s.len == 0 || agx_mp_is_nil(s))
        return 0;
    if (agx_mp_get_str(s, &p, &len) != 0)
        return -1;
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, p, len);
    dst[len] = '\0';
    return 0;
}

static int malformed(agx_error *out, const char *what)
{
    return agx_error_set(out, AGX_ERR_PROTOCOL,
                         "the runtime sent a malformed error (%s); expected a map {type, message, "
                         "detail, cancelled}",
                         what);
}

/* Sets the code last: agx_error_set clears detail and remote_type. */
static int finish(agx_error *out, const char *type, const char *message, const char *detail,
                  bool cancelled)
{
    int code = cancelled ? AGX_ERR_CANCELLED : AGX_ERR_REMOTE;
    agx_error_set(out, code, "%s", message[0] ? message : type);
    agx_error_set_detail(out, detail, (size_t)-1);
    if (out)
        snprintf(out->remote_type, sizeof out->remote_type, "%s", type);
    return code;
}

int agx_rpc_error_from_msgpack(agx_mp_span error, agx_error *out)
{
    char type[AGX_ERROR_TYPE_MAX], message[AGX_ERROR_MESSAGE_MAX], detail[AGX_ERROR_DETAIL_MAX];
    agx_mp_span t = {0}, m = {0}, d = {0}, c = {0};
    bool cancelled = false;
    if (!agx_mp_is_map(error) || agx_mp_map_find(error.data, error.len, AGX_F_TYPE, &t) < 0)
        return malformed(out, "not a map");
    agx_mp_map_find(error.data, error.len, AGX_F_MESSAGE, &m);
    agx_mp_map_find(error.data, error.len, AGX_F_DETAIL, &d);
    agx_mp_map_find(error.data, error.len, AGX_F_CANCELLED, &c);
    if (copy_str(t, type, sizeof type) != 0 || !type[0])
        return malformed(out, "'type' is not a non-empty string");
    if (copy_str(m, message, sizeof message) != 0)
        return malformed(out, "'message' is not a string");
    if (copy_str(d, detail, sizeof detail) != 0)
        return malformed(out, "'detail' is not a string");
    if (c.len && !agx_mp_is_nil(c) && agx_mp_get_bool(c, &cancelled) != 0)
        return malformed(out, "'cancelled' is not a bool");
    return finish(out, type, message, detail, cancelled);
}

/* Bounded copy of a string value (nil/absent → ""); -1 for other types. */
static int copy_value_str(const agx_value *v, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (agx_value_type_of(v) == AGX_VALUE_NIL)
        return 0;
    if (agx_value_type_of(v) != AGX_VALUE_STRING)
        return -1;
    size_t len;
    const char *s = agx_value_get_string(v, &len);
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return 0;
}

int agx_rpc_error_from_value(const agx_value *error, agx_error *out)
{
    char type[AGX_ERROR_TYPE_MAX], message[AGX_ERROR_MESSAGE_MAX], detail[AGX_ERROR_DETAIL_MAX];
    if (agx_value_type_of(error) != AGX_VALUE_MAP)
        return malformed(out, "not a map");
    if (copy_value_str(agx_value_map_get(error, AGX_F_TYPE), type, sizeof type) != 0 || !type[0])
        return malformed(out, "'type' is not a non-empty string");
    if (copy_value_str(agx_value_map_get(error, AGX_F_MESSAGE), message, sizeof message) != 0)
        return malformed(out, "'message' is not a string");
    if (copy_value_str(agx_value_map_get(error, AGX_F_DETAIL), detail, sizeof detail) != 0)
        return malformed(out, "'detail' is not a string");
    const agx_value *c = agx_value_map_get(error, AGX_F_CANCELLED);
    agx_value_type ct = agx_value_type_of(c);
    if (ct != AGX_VALUE_NIL && ct != AGX_VALUE_BOOL)
        return malformed(out, "'cancelled' is not a bool");
    return finish(out, type, message, detail, agx_value_get_bool(c));
}
