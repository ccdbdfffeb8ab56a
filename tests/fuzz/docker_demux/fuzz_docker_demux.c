/* fuzz_docker_demux.c — libFuzzer target for agx_docker_demux, the docker backend's reader of the
 * engine's log stream (bytes from dockerd → the log tail quoted in a failed create's error).
 * The first input byte picks the output size, so both a roomy and a tiny buffer are exercised;
 * the output must stay NUL-terminated within bounds and never longer than the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/docker/docker_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = data[0] == 0 ? size : data[0]; /* 0: as large as the stream, else 1..255 */
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    /* Exact-size heap copies so ASan sees any read past the input or write past the output. */
    char *copy = malloc(len ? len : 1), *out = malloc(n);
    if (!copy || !out)
        abort();
    memcpy(copy, in, len);
    size_t got = agx_docker_demux(copy, len, out, n);
    if (got >= n || got > len || out[got] != '\0')
        abort();
    /* The output's bytes are the input's payload bytes: an unframed stream is copied as it is. */
    if ((len < 8 || memcmp(copy + 1, "\0\0\0", 3) != 0 || (unsigned char)copy[0] > 2) &&
        memcmp(out, copy, got) != 0)
        abort();
    free(copy);
    free(out);
    return 0;
}
