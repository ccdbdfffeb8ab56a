/* fuzz_docker_api.c — libFuzzer target for the docker backend's decoders of Engine API answers
 * (backends/docker/docker_info.c): a container's inspect document (get) and the summaries of
 * GET /containers/json (list), read into sandbox infos. The input is one JSON document: an object
 * is decoded as an inspect answer and as one summary, an array as a list answer. An info that
 * comes out must hold what it promises: an id, a state, a runtime URL only with a port. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/docker/docker_internal.h"

static void check(agx_sandbox_info *info)
{
    if (!info)
        return;
    const char *url = agx_sandbox_info_runtime_url(info);
    if (!agx_sandbox_info_id(info) || (url && strncmp(url, "http://127.0.0.1:", 17) != 0) ||
        agx_sandbox_info_created_at(info) < 0)
        abort();
    agx_sandbox_info_free(info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (!j)
        return 0;
    if (json_is_object(j)) {
        check(agx_docker_info_from_inspect("fuzzed-id", j));
        check(agx_docker_info_from_summary(j));
    } else if (json_is_array(j)) {
        size_t i;
        json_t *c;
        json_array_foreach(j, i, c)
            check(agx_docker_info_from_summary(c));
    }
    json_decref(j);
    return 0;
}
