/* fuzz_runtime_url.c — libFuzzer target for the runtime URL, connect-to rule and extra headers
 * the host's client checks before it dials (runtime/transport/sio_client.c): the URL comes from a
 * backend, that is from a provider's API or a sandbox record, and must never crash or overflow
 * the parser, only be accepted or refused with AGX_ERR_INVALID_ARGUMENT / AGX_ERR_LIMIT.
 *
 * Input: up to three NUL-separated fields — URL, connect-to rule, one "Name: value" header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/transport/sio_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *url = buf;
    const char *ct = url + strlen(url) + 1;
    const char *hdr = ct + strlen(ct) + 1;
    char *colon = strchr(hdr, ':');
    agx_sio_header h = {hdr, colon ? colon + 1 : ""};
    if (colon)
        *colon = '\0';
    agx_sio_client_config cfg = {.url = url, .connect_to = *ct ? ct : NULL,
                                 .headers = *hdr ? &h : NULL, .nheaders = *hdr ? 1 : 0};
    agx_error err;
    int rc = agx_sio_client_config_check(&cfg, &err);
    if (rc != 0 && rc != AGX_ERR_INVALID_ARGUMENT && rc != AGX_ERR_LIMIT)
        abort(); /* only refusals are expected (no memory is not, at these sizes) */
    free(buf);
    return 0;
}
