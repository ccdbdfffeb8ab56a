/* fuzz_json.c — libFuzzer target for the JSON decoder (CLI input, configs, HTTP bodies): decoding
 * must never crash, and whatever decodes must re-encode to text that decodes to an equal tree and
 * re-encodes identically. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agx_value *v = NULL;
    agx_error err;
    if (agx_value_from_json((const char *)data, size, NULL, &v, &err) != 0) {
        if (v || err.code == 0)
            abort();
        return 0;
    }
    /* Everything JSON can carry decodes to something JSON can write back (no NaN, no big uint). */
    char *text = NULL, *text2 = NULL;
    if (agx_value_to_json(v, &text, &err) != 0)
        abort();
    agx_value *back = NULL;
    if (agx_value_from_json(text, strlen(text), NULL, &back, &err) != 0)
        abort();
    if (!agx_value_equal(v, back))
        abort();
    if (agx_value_to_json(back, &text2, &err) != 0 || strcmp(text, text2) != 0)
        abort();
    /* And through msgpack: the two codecs agree on the tree. */
    void *mp = NULL;
    size_t mp_len = 0;
    agx_value *via = NULL;
    if (agx_value_to_msgpack(v, &mp, &mp_len, &err) != 0 ||
        agx_value_from_msgpack(mp, mp_len, NULL, &via, &err) != 0 || !agx_value_equal(v, via))
        abort();
    free(mp);
    agx_value_free(via);
    free(text);
    free(text2);
    agx_value_free(back);
    agx_value_free(v);
    return 0;
}
