/* fuzz_client_event.c — libFuzzer target for agx_client_event_decode (runtime/client/event.c), the
 * host client's decoder of what a runtime sends: the input is the event name (up to the first NUL,
 * at most 64 bytes) followed by the msgpack payload. Whatever comes out must be coherent: "not
 * ours", an error with a message, or an event of a known kind whose value is there exactly when
 * the kind carries one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size < 65 ? size : 65);
    if (!nul)
        return 0;
    char name[65];
    memcpy(name, data, (size_t)(nul - data) + 1);
    const unsigned char *payload = nul + 1;
    size_t len = size - (size_t)(nul - data) - 1;
    agx_codec_limits lim = agx_codec_limits_default();
    agx_client_event ev;
    agx_error err;
    agx_error_clear(&err);
    int rc = agx_client_event_decode(name, payload, len, &lim, &ev, &err);
    if (rc == 0) {
        bool carries = ev.kind == AGX_CEV_RESULT || ev.kind == AGX_CEV_ITEM;
        if (carries != (ev.value != NULL) || (ev.kind == AGX_CEV_ERROR && !ev.error.message[0]))
            abort();
    } else if (rc < 0) {
        if (!err.message[0] || ev.value)
            abort();
    } else if (rc != AGX_CEV_NOT_OURS || ev.value) {
        abort();
    }
    agx_value_free(ev.value);
    return 0;
}
