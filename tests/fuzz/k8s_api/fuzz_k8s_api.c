/* fuzz_k8s_api.c — libFuzzer target for the k8s-pool backend's decoders of Kubernetes API answers
 * (backends/k8s-pool/k8s_pod.c, k8s.c, k8s_api.c): a pod as the pool sees it (state, readiness,
 * whether it can be claimed, why its container failed, its runtime URL under each URL scheme, the
 * sandbox info of a claimed pod) and a line of a watch stream. The first byte picks the URL
 * scheme; the rest is a pod (JSON) or, when it does not parse as an object, a watch line. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/k8s-pool/k8s_internal.h"

static void pod_checks(agx_k8s *k, json_t *pod)
{
    agx_sandbox_state st = agx_k8s_pod_state(pod, k->container);
    if ((unsigned)st > AGX_SANDBOX_GONE)
        abort();
    (void)agx_k8s_pod_ready(pod);
    (void)agx_k8s_pod_claimable(pod, k->container);
    const char *msg = NULL;
    (void)agx_k8s_container_failure(agx_k8s_container_status(pod, k->container), &msg);
    char *url = NULL;
    agx_error err;
    if (agx_k8s_runtime_url(k, pod, &url, &err) == 0) {
        if (!url)
            abort();
        free(url);
    }
    agx_sandbox_info *info = agx_k8s_info_of(k, pod, &err);
    if (info) {
        if (!agx_sandbox_info_id(info) || agx_sandbox_info_created_at(info) < 0)
            abort();
        agx_sandbox_info_free(info);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    agx_k8s k = {.ns = "agents", .pool = "py", .container = "runtime",
                 .url_template = "http://{name}.{namespace}.svc:{port}/x?ip={ip}",
                 .url_kind = (agx_k8s_url_kind)(data[0] % 3)};
    k.conn.server = "https://10.0.0.1:6443";
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    json_t *pod = json_loadb(text, len, 0, NULL);
    if (json_is_object(pod))
        pod_checks(&k, pod);
    json_decref(pod);
    json_t *ev = NULL, *obj = NULL;
    const char *type = NULL;
    agx_error err;
    if (agx_k8s_watch_event(text, len, &ev, &type, &obj, &err) == 0) {
        if (!type || !json_is_object(obj))
            abort();
        pod_checks(&k, obj);
    }
    json_decref(ev);
    return 0;
}
