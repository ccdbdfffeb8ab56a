/* fuzz_frame.c — libFuzzer target for the worker frame reader (runtime/wire/frame.h), which
 * parses bytes from another process: the input is fed in pieces whose sizes come from the first
 * byte, every frame handed out is walked (payload spans skipped and error maps converted), a bulk
 * ring reference is checked as the server checks it (never past the ring once accepted), and
 * nothing may crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>

#include "runtime/wire/frame.h"
#include "runtime/wire/ring.h"
#include "runtime/wire/rpc_error.h"

static void walk(const agx_frame *f, agx_ring *ring)
{
    const agx_mp_span spans[] = {f->value, f->item, f->error, f->args, f->kwargs};
    for (size_t i = 0; i < sizeof spans / sizeof spans[0]; i++) {
        size_t len;
        if (spans[i].len && agx_mp_skip(spans[i].data, spans[i].len, &len) == 0 && len != spans[i].len)
            __builtin_trap(); /* a span is exactly one object */
    }
    if (f->error.len) {
        agx_error e;
        agx_rpc_error_from_msgpack(f->error, &e);
    }
    if (f->in_ring) {
        agx_error e;
        uint64_t before = ring->pos;
        if (agx_ring_accept(ring, f->ring_at, f->ring_len, &e) == 0 &&
            (f->ring_len == 0 || f->ring_at % ring->size + f->ring_len > ring->size ||
             ring->pos != f->ring_at + f->ring_len || f->ring_at < before))
            __builtin_trap();
    }
    if (f->value.len) {
        agx_value *v = NULL;
        if (agx_value_from_msgpack(f->value.data, f->value.len, NULL, &v, NULL) == 0)
            agx_value_free(v);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 16) + 1;
    data++;
    size--;
    agx_frame_reader *r = agx_frame_reader_new(1 << 16);
    agx_error err;
    /* The server's check needs only the ring's geometry: it reads no shared memory. */
    unsigned char fake;
    agx_ring ring = {.fd = -1, .map = &fake, .size = AGX_RING_SIZE};
    for (size_t off = 0; off < size; off += step) {
        size_t len = size - off < step ? size - off : step;
        if (agx_frame_reader_feed(r, data + off, len, &err) != 0)
            break;
        agx_frame f;
        int rc;
        while ((rc = agx_frame_reader_next(r, &f, &err)) != 0) {
            if (rc == 1)
                walk(&f, &ring);
            else if (agx_frame_reader_broken(r))
                break;
        }
    }
    agx_frame_reader_free(r);
    return 0;
}
