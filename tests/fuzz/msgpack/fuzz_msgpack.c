/* fuzz_msgpack.c — libFuzzer target for the msgpack decoder every peer's payload goes through:
 * decoding must never crash, and whatever decodes must re-encode to bytes that decode to an equal
 * tree and re-encode identically. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool has_nan(const agx_value *v)
{
    switch (agx_value_type_of(v)) {
    case AGX_VALUE_DOUBLE:
        return agx_value_get_double(v) != agx_value_get_double(v);
    case AGX_VALUE_ARRAY:
        for (size_t i = 0; i < agx_value_array_len(v); i++)
            if (has_nan(agx_value_array_at(v, i)))
                return true;
        return false;
    case AGX_VALUE_MAP:
        for (size_t i = 0; i < agx_value_map_len(v); i++)
            if (has_nan(agx_value_map_value_at(v, i)))
                return true;
        return false;
    default:
        return false;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agx_codec_limits lim = agx_codec_limits_default();
    lim.max_items = 100000; /* keep each run fast; the bound logic is the same */
    agx_value *v = NULL;
    agx_error err;
    if (agx_value_from_msgpack(data, size, &lim, &v, &err) != 0) {
        if (v || err.code == 0)
            abort();
        return 0;
    }
    void *enc = NULL, *enc2 = NULL;
    size_t enc_len = 0, enc2_len = 0;
    if (agx_value_to_msgpack(v, &enc, &enc_len, &err) != 0)
        abort(); /* anything we decoded we can encode */
    agx_value *back = NULL;
    if (agx_value_from_msgpack(enc, enc_len, &lim, &back, &err) != 0)
        abort();
    if (!has_nan(v) && !agx_value_equal(v, back))
        abort();
    agx_value *copy = agx_value_copy(back);
    if (!copy || (!has_nan(v) && !agx_value_equal(copy, v)))
        abort();
    if (agx_value_to_msgpack(back, &enc2, &enc2_len, &err) != 0 || enc2_len != enc_len ||
        memcmp(enc, enc2, enc_len) != 0)
        abort();
    free(enc);
    free(enc2);
    agx_value_free(copy);
    agx_value_free(back);
    agx_value_free(v);
    return 0;
}
