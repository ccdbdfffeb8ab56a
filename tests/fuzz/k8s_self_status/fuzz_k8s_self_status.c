/* fuzz_k8s_self_status.c — the status line of the API server's answer to a pod's self-delete
 * (runtime/server/k8s_self.c): any bytes give a status of 100..599 or -1, never a crash or a read
 * past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/server/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1); /* exact size: the sanitizer sees a read past it */
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    int status = srv_http_status(copy, size);
    if (status != -1 && (status < 100 || status > 599))
        abort();
    free(copy);
    return 0;
}
