/* fuzz_server_request.c — agentix-server's check of a host's RPC payload (runtime/server/request.c):
 * any bytes as the one attachment of each start and in-call event must give a verdict (accepted
 * with every span inside the input, or refused with a message), never a crash or a read past the
 * end. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/server/server.h"

static void within(const uint8_t *data, size_t size, agx_mp_span s)
{
    if (s.len && (s.data < data || s.data + s.len > data + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const events[] = {"unary", "stream", "bidi:start", "describe", "credit"};
    static const agx_wire_kind kinds[] = {AGX_KIND_UNARY, AGX_KIND_STREAM, AGX_KIND_BIDI, AGX_KIND_DESCRIBE, AGX_KIND_STREAM};
    /* A private copy, so that the sanitizer sees reads one byte past it. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    json_t *placeholder = json_pack("{s:b,s:i}", "_placeholder", 1, "num", 0);
    for (size_t i = 0; i < sizeof events / sizeof *events; i++) {
        agx_sio_packet p;
        memset(&p, 0, sizeof p);
        p.type = AGX_SIO_BINARY_EVENT;
        p.event = events[i];
        p.nattach = 1;
        p.data = json_pack("[sO]", events[i], placeholder);
        p.attach[0].data = copy;
        p.attach[0].len = size;
        srv_req r;
        char msg[256];
        uint32_t window;
        uint64_t n;
        if (srv_req_parse(&p, &r, msg, sizeof msg) == 0) {
            if (!r.cid_ok || r.cid_len < 1 || r.cid_len > SRV_CALL_ID_MAX)
                abort();
            within(copy, size, (agx_mp_span){(const unsigned char *)r.cid, r.cid_len});
            within(copy, size, r.args);
            within(copy, size, r.kwargs);
            within(copy, size, r.item);
            if (r.target)
                within(copy, size, (agx_mp_span){(const unsigned char *)r.target, r.target_len});
            if (srv_req_check_start(&r, kinds[i], &window, msg, sizeof msg) == 0 &&
                kinds[i] != AGX_KIND_DESCRIBE && (window < 1 || window > AGX_FRAME_WINDOW_MAX))
                abort();
            if (srv_req_get_n(&r, &n, msg, sizeof msg) == 0 && (n < 1 || n > UINT32_MAX))
                abort();
        }
        json_decref(p.data);
    }
    json_decref(placeholder);
    free(copy);
    return 0;
}
