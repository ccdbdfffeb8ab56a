/* fuzz_sio.c — libFuzzer target for the transport codec (runtime/transport/sio_codec.c), the
 * first thing a network peer's bytes reach in both the host client and agentix-server.
 *
 * Input: a sequence of frames, each `kind(1) len(2, big-endian) bytes(len)`; kind bit 0 set = a
 * binary websocket frame, else a text frame. Every frame goes through the same path as on a
 * connection (Engine.IO decode, then the Socket.IO reassembly state machine). Each complete
 * packet is re-encoded and decoded again, and must come back with the same type, namespace, ack
 * id and JSON. The whole input is also fed to the one-shot decoders. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/transport/sio_codec.h"

static void roundtrip(const agx_sio_packet *p)
{
    agx_error err;
    size_t need;
    if (agx_sio_encode(NULL, 0, p->type, p->nsp, p->ack_id, p->nattach, p->data, &need, &err))
        abort(); /* whatever the decoder accepted, the encoder must accept */
    char *buf = malloc(need + 1);
    size_t len;
    if (!buf || agx_sio_encode(buf, need + 1, p->type, p->nsp, p->ack_id, p->nattach, p->data,
                               &len, &err) ||
        len != need)
        abort();
    agx_sio_packet q;
    if (agx_sio_decode(buf + 1, len - 1, &q, &err) != 0)
        abort();
    if (q.type != p->type || strcmp(q.nsp, p->nsp) != 0 || q.ack_id != p->ack_id ||
        q.nattach != p->nattach || (p->data && !json_equal(q.data, p->data)) ||
        (!p->data && q.data))
        abort();
    agx_sio_packet_clear(&q);
    free(buf);
}

static void feed_frame(agx_sio_decoder *d, int binary, const uint8_t *b, size_t n)
{
    agx_error err;
    int rc;
    if (binary) {
        rc = agx_sio_decoder_binary(d, b, n, &err);
    } else {
        agx_eio_type type;
        const char *payload;
        size_t plen;
        if (agx_eio_decode((const char *)b, n, &type, &payload, &plen, &err) != 0)
            return;
        if (type == AGX_EIO_OPEN) {
            agx_eio_open open;
            agx_eio_parse_open(payload, plen, &open, &err);
            return;
        }
        if (type != AGX_EIO_MESSAGE)
            return;
        rc = agx_sio_decoder_text(d, payload, plen, &err);
    }
    if (rc == 1) {
        const agx_sio_packet *p = &d->pkt;
        for (unsigned i = 0; i < p->nattach; i++)
            if (p->attach[i].len && !p->attach[i].data)
                abort();
        roundtrip(p);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agx_sio_decoder d;
    agx_sio_decoder_init(&d, 4096);
    size_t i = 0;
    while (i + 3 <= size) {
        int binary = data[i] & 1;
        size_t n = ((size_t)data[i + 1] << 8) | data[i + 2];
        i += 3;
        if (n > size - i)
            n = size - i;
        /* a private copy, so reads past the frame are caught by ASan */
        uint8_t *frame = malloc(n ? n : 1);
        if (!frame)
            abort();
        memcpy(frame, data + i, n);
        feed_frame(&d, binary, frame, n);
        free(frame);
        i += n;
    }
    agx_sio_decoder_dispose(&d);

    agx_sio_packet p;
    agx_error err;
    if (agx_sio_decode((const char *)data, size, &p, &err) == 0) {
        roundtrip(&p);
        agx_sio_packet_clear(&p);
    }
    agx_eio_open open;
    agx_eio_parse_open((const char *)data, size, &open, &err);
    return 0;
}
