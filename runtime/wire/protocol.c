/* protocol.c — the per-kind tables of the runtime protocol's words (protocol.h): which event
 * starts a call of each kind, which one ends it in error, and the kind and shape names. */
#include "runtime/wire/protocol.h"

#include <string.h>

static const char *const start_events[AGX_KIND_COUNT] = {
    [AGX_KIND_UNARY] = AGX_EV_UNARY,
    [AGX_KIND_STREAM] = AGX_EV_STREAM,
    [AGX_KIND_BIDI] = AGX_EV_BIDI_START,
    [AGX_KIND_DESCRIBE] = AGX_EV_DESCRIBE,
    [AGX_KIND_EXPIRY] = AGX_EV_EXPIRY,
};

static const char *const error_events[AGX_KIND_COUNT] = {
    [AGX_KIND_UNARY] = AGX_EV_UNARY_ERROR,
    [AGX_KIND_STREAM] = AGX_EV_STREAM_ERROR,
    [AGX_KIND_BIDI] = AGX_EV_BIDI_ERROR,
    [AGX_KIND_DESCRIBE] = AGX_EV_DESCRIBE_ERROR,
    [AGX_KIND_EXPIRY] = AGX_EV_EXPIRY_ERROR,
};

const char *agx_wire_kind_name(agx_wire_kind k)
{
    if (k == AGX_KIND_DESCRIBE || k == AGX_KIND_EXPIRY)
        return agx_wire_start_event(k); /* their names are their opening events */
    return agx_shape_name((agx_shape)k);
}

const char *agx_wire_start_event(agx_wire_kind k)
{
    return (unsigned)k < AGX_KIND_COUNT ? start_events[k] : AGX_EV_UNARY;
}

bool agx_wire_kind_of_start(const char *event, agx_wire_kind *out)
{
    for (int k = 0; k < AGX_KIND_COUNT; k++)
        if (strcmp(event, start_events[k]) == 0) {
            *out = (agx_wire_kind)k;
            return true;
        }
    return false;
}

const char *agx_wire_error_event(agx_wire_kind k)
{
    return (unsigned)k < AGX_KIND_COUNT ? error_events[k] : error_events[AGX_KIND_UNARY];
}

bool agx_wire_shape_of(const char *name, size_t len, agx_shape *out)
{
    static const agx_shape shapes[] = {AGX_SHAPE_UNARY, AGX_SHAPE_STREAM, AGX_SHAPE_BIDI};
    for (size_t i = 0; i < AGX_ARRAY_LEN(shapes); i++) {
        const char *n = agx_shape_name(shapes[i]);
        if (strlen(n) == len && memcmp(n, name, len) == 0) {
            *out = shapes[i];
            return true;
        }
    }
    return false;
}
