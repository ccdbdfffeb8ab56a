/* fuzz_ws_frame.c — libFuzzer target for runtime/transport/ws_frame.c, which reads the bytes an
 * http:// runtime server sends the host: the HTTP 101 upgrade response, then websocket frames.
 *
 * Input: byte 0 sets the read size (1..256 bytes per feed, as a socket would split it); the rest
 * is fed to the upgrade parser and, once that accepts, to the frame parser; the rest is also fed
 * to a second frame parser on its own, so frame seeds need no valid response. The sink checks
 * what the parser promises: message runs start with `first`, end with `final`, control frames
 * are whole, of a known opcode and at most 125 bytes; and agx_ws_frames_data_left (what the
 * client reads in place) always equals what the last run said remains of its frame. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/transport/ws_frame.h"

/* RFC 6455's example: the accept for key "dGhlIHNhbXBsZSBub25jZQ==". */
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

typedef struct {
    bool in_message;
    bool binary;
    size_t bytes;
    size_t left; /* what the last data run said remains of its frame */
} sink_state;

static int on_data(void *ud, const unsigned char *p, size_t n, bool first, bool final,
                   bool binary, size_t left)
{
    sink_state *s = ud;
    if (!p || first == s->in_message || (!first && binary != s->binary) || (final && left))
        abort();
    if (n)
        s->bytes += (size_t)p[0] + p[n - 1]; /* touch both ends of the run */
    s->in_message = !final;
    s->binary = binary;
    s->left = left;
    return 0;
}

static int on_control(void *ud, unsigned opcode, const unsigned char *p, size_t n)
{
    (void)ud;
    if ((opcode != 0x8 && opcode != 0x9 && opcode != 0xA) || n > 125 || (n && !p))
        abort();
    return opcode == 0x8; /* a close ends the connection, as in sio_client.c */
}

static void frames(const unsigned char *in, size_t len, size_t step)
{
    sink_state st = {0};
    agx_ws_frames f = {0};
    const agx_ws_sink sink = {.data = on_data, .control = on_control, .ud = &st};
    while (len) {
        /* agx_ws_frames_data_left is what an in-place read takes next (sio_dial.c): it must be
         * exactly what the parser said remains of the current data frame, and feeding that much
         * must end the frame. Odd steps read that way, as the client does after a large frame. */
        uint64_t dl = agx_ws_frames_data_left(&f);
        if (dl != st.left)
            abort();
        size_t n = len < step ? len : step;
        if (dl && (step & 1) && dl <= len)
            n = (size_t)dl;
        const char *why = NULL;
        int rc = agx_ws_frames_feed(&f, in, n, &sink, &why);
        if (rc == 0 && dl && n == dl && agx_ws_frames_data_left(&f) != 0)
            abort();
        if (rc == AGX_WS_BAD && (!why || !*why))
            abort();
        if (rc)
            return;
        in += n;
        len -= n;
    }
}

static void upgrade_then_frames(const unsigned char *in, size_t len, size_t step)
{
    agx_ws_head h = {0};
    while (len) {
        size_t n = len < step ? len : step, used = 0;
        const char *why = NULL;
        int status = -1;
        int rc = agx_ws_head_feed(&h, in, n, ACCEPT, &used, &why, &status);
        if (rc < 0 && (!why || !*why || status < 0 || status > 999))
            abort();
        if (rc == 1 && used > n)
            abort();
        if (rc < 0)
            break;
        if (rc == 1) {
            frames(in + used, len - used, step);
            break;
        }
        in += n;
        len -= n;
    }
    agx_ws_head_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)data[0] + 1;
    upgrade_then_frames(data + 1, size - 1, step);
    frames(data + 1, size - 1, step);
    return 0;
}
