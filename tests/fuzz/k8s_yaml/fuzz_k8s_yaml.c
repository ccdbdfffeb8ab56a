/* fuzz_k8s_yaml.c — libFuzzer target for agx_k8s_yaml_parse (kubeconfig YAML → jansson tree):
 * any input either parses into an object or fails with an error, never crashes or leaks. */
#include <stddef.h>
#include <stdint.h>

#include "backends/k8s-pool/k8s_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = NULL;
    agx_error err;
    if (agx_k8s_yaml_parse((const char *)data, size, &doc, &err) == 0) {
        if (!json_is_object(doc))
            __builtin_trap();
        json_decref(doc);
    }
    return 0;
}
