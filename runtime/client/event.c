/* event.c — decoding one runtime → host event (see event.h). */
#include "runtime/client/event.h"

#include <string.h>

#include "core/base/mpraw.h"
#include "runtime/wire/rpc_error.h"

#define ID_DIGITS_MAX 13 /* base 36 of a uint64 */

static bool parse_id(const char *s, size_t n, uint64_t *id)
{
    if (n == 0 || n > ID_DIGITS_MAX)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d;
        if (s[i] >= '0' && s[i] <= '9')
            d = s[i] - '0';
        else if (s[i] >= 'a' && s[i] <= 'z')
            d = s[i] - 'a' + 10;
        else
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / 36)
            return false;
        v = v * 36 + (uint64_t)d;
    }
    *id = v;
    return true;
}

/* "<kind>:<suffix>" into kind and the suffix's text; false for any other name. */
static bool split_name(const char *event, agx_wire_kind *kind, const char **suffix)
{
    for (int k = 0; k < AGX_KIND_COUNT; k++) {
        const char *name = agx_wire_kind_name((agx_wire_kind)k);
        size_t n = strlen(name);
        if (strncmp(event, name, n) == 0 && event[n] == AGX_EV_SEP) {
            *kind = (agx_wire_kind)k;
            *suffix = event + n + 1;
            return true;
        }
    }
    return false;
}

/* A large str or bin that ends the payload is taken as it lies (adopt), under the same limit as
 * decoding it. */
static bool adopt_value(agx_mp_span span, const unsigned char *end, const agx_codec_limits *limits,
                        const agx_client_adopt *adopt, agx_value **out)
{
    agx_value_type type;
    const unsigned char *bytes;
    size_t n;
    size_t max_bytes = limits && limits->max_bytes ? limits->max_bytes
                                                   : agx_codec_limits_default().max_bytes;
    if (!adopt || !adopt->fn || span.data + span.len != end || span.len > max_bytes ||
        agx_mp_get_bytes(span, &type, &bytes, &n) != 0 || n < adopt->min)
        return false;
    *out = adopt->fn(adopt->ud, type, bytes, n);
    return *out != NULL;
}

static int decode_value(const char *event, const unsigned char *data, size_t len,
                        const agx_codec_limits *limits, const agx_client_adopt *adopt,
                        agx_value **out, agx_error *err)
{
    agx_mp_span span;
    if (agx_mp_map_find(data, len, AGX_F_VALUE, &span) != 1)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "'%.64s' without a value", event);
    if (adopt_value(span, data + len, limits, adopt, out))
        return 0;
    if (agx_value_from_msgpack(span.data, span.len, limits, out, err) != 0) {
        agx_error_prefix(err, "decoding '%.64s'", event);
        return err->code ? err->code : AGX_ERR_PROTOCOL;
    }
    return 0;
}

int agx_client_event_decode(const char *event, const unsigned char *data, size_t len,
                            const agx_codec_limits *limits, const agx_client_adopt *adopt,
                            agx_client_event *out, agx_error *err)
{
    memset(out, 0, sizeof *out);
    agx_mp_span span;
    const char *ids;
    size_t idn;
    if (!event || !data || agx_mp_map_find(data, len, AGX_F_CALL_ID, &span) != 1 ||
        agx_mp_get_str(span, &ids, &idn) || !parse_id(ids, idn, &out->id))
        return AGX_CEV_NOT_OURS; /* like any unknown call_id */
    const char *kind;
    if (!split_name(event, &out->shape, &kind))
        return agx_error_set(err, AGX_ERR_PROTOCOL, "the runtime answered with '%.64s'", event);
    bool streaming = out->shape == AGX_KIND_STREAM || out->shape == AGX_KIND_BIDI;
    if (out->shape == AGX_KIND_EXPIRY && strcmp(kind, AGX_SUFFIX_SET) == 0) {
        /* {n}: ms until the expiry, handed to the waiting call as its result */
        out->kind = AGX_CEV_RESULT;
        if (agx_mp_map_find(data, len, AGX_F_N, &span) != 1 || agx_mp_get_uint(span, &out->n) ||
            out->n > INT64_MAX)
            return agx_error_set(err, AGX_ERR_PROTOCOL, "'%.64s' without a count n", event);
        out->value = agx_value_int((int64_t)out->n);
        return out->value ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    if (strcmp(kind, AGX_SUFFIX_RESULT) == 0 && !streaming && out->shape != AGX_KIND_EXPIRY) {
        out->kind = AGX_CEV_RESULT;
        return decode_value(event, data, len, limits, adopt, &out->value, err);
    }
    if ((strcmp(kind, AGX_SUFFIX_ITEM) == 0 && out->shape == AGX_KIND_STREAM) ||
        (strcmp(kind, AGX_SUFFIX_OUT) == 0 && out->shape == AGX_KIND_BIDI)) {
        out->kind = AGX_CEV_ITEM;
        return decode_value(event, data, len, limits, adopt, &out->value, err);
    }
    if (strcmp(kind, AGX_SUFFIX_END) == 0 && streaming) {
        out->kind = AGX_CEV_END;
        return 0;
    }
    if (strcmp(kind, AGX_SUFFIX_ERROR) == 0) {
        out->kind = AGX_CEV_ERROR;
        agx_error_clear(&out->error);
        out->error_code = agx_mp_map_find(data, len, AGX_F_ERROR, &span) == 1
                              ? agx_rpc_error_from_msgpack(span, &out->error)
                              : agx_error_set(&out->error, AGX_ERR_PROTOCOL,
                                              "'%.64s' without an error", event);
        return 0;
    }
    if (strcmp(kind, AGX_SUFFIX_CREDIT) == 0 && out->shape == AGX_KIND_BIDI) {
        out->kind = AGX_CEV_CREDIT;
        if (agx_mp_map_find(data, len, AGX_F_N, &span) != 1 || agx_mp_get_uint(span, &out->n))
            return agx_error_set(err, AGX_ERR_PROTOCOL, "'%.64s' without a count n", event);
        return 0;
    }
    return agx_error_set(err, AGX_ERR_PROTOCOL, "unexpected '%.64s'", event);
}
