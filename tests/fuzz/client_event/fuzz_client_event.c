/* fuzz_client_event.c — libFuzzer target for agx_client_event_decode (runtime/client/event.c), the
 * host client's decoder of what a runtime sends: the input is the event name (up to the first NUL,
 * at most 64 bytes) followed by the msgpack payload. Whatever comes out must be coherent: "not
 * ours", an error with a message, or an event of a known kind whose value is there exactly when
 * the kind carries one. Each input is decoded twice, the second time with an adopt hook that takes
 * every string or binary ending the payload (as the client takes its receive buffer): both must
 * agree, value for value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/event.h"

/* The hook: the bytes must lie inside the payload and end it; it hands back a copy. */
typedef struct span {
    const unsigned char *p;
    size_t n;
    bool called;
} span;

static agx_value *adopt_copy(void *ud, agx_value_type type, const void *data, size_t len)
{
    span *payload = ud;
    payload->called = true;
    const unsigned char *b = data;
    if (b < payload->p || b + len != payload->p + payload->n)
        abort();
    return type == AGX_VALUE_STRING ? agx_value_string_n(data, len) : agx_value_binary(data, len);
}

static void check_adopted(const char *name, const unsigned char *payload, size_t len,
                          const agx_codec_limits *lim, int rc, const agx_value *value)
{
    span sp = {payload, len, false};
    agx_client_adopt adopt = {adopt_copy, &sp, 0};
    agx_client_event ev;
    agx_error err;
    agx_error_clear(&err);
    int rc2 = agx_client_event_decode(name, payload, len, lim, &adopt, &ev, &err);
    /* The same decode but for the hand-over; a taken value (a str or bin) must equal the copy. */
    if (rc2 != rc || (value != NULL) != (ev.value != NULL) ||
        (sp.called && value && !agx_value_equal(value, ev.value)))
        abort();
    agx_value_free(ev.value);
}

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
    int rc = agx_client_event_decode(name, payload, len, &lim, NULL, &ev, &err);
    check_adopted(name, payload, len, &lim, rc, ev.value);
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
