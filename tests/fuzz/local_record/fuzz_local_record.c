/* fuzz_local_record.c — libFuzzer target for the local backend's sandbox.json decoder
 * (backends/local/local_record.c): the file sits in a folder the sandbox's own code can write,
 * and other host processes read it to list and delete sandboxes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "backends/local/local_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agx_local_record r;
    agx_error err;
    if (agx_local_record_parse((const char *)data, size, "fuzz", &r, &err) == 0) {
        /* A record that decodes is one delete would act on: its fields must be in range (pid 0:
         * written before the server was spawned). */
        if (r.proc.pid < 0 || r.proc.pid == 1 || r.port < 0 || r.port > 65535 || !agx_local_id_valid(r.id) || !r.labels)
            abort();
        agx_local_record_clear(&r);
    }
    return 0;
}
