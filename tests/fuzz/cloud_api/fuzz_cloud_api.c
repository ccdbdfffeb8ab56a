/* fuzz_cloud_api.c — libFuzzer target for the decoders of the E2B and Daytona APIs' answers: E2B's
 * sandbox entries (list, get) and create answer, Daytona's Sandbox DTO (get, list pages). The
 * first byte picks the decoder, the rest is one JSON document (an array: each element). A vendor
 * answer is input from outside: what decodes must be a usable sandbox — a valid id, a runtime URL
 * on the vendor's domain when one is given. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/daytona/daytona_internal.h"
#include "backends/e2b/e2b_internal.h"

static agx_e2b e2b = {.cloud = {.service = "E2B"}, .domain = "e2b.app", .scheme = "https"};
static agx_daytona daytona = {.cloud = {.service = "Daytona"}};

static void check_info(agx_sandbox_info *info)
{
    if (!info)
        return;
    const char *id = agx_sandbox_info_id(info), *url = agx_sandbox_info_runtime_url(info);
    if (!id || agx_cloud_check_id(&e2b.cloud, id, NULL) != 0 ||
        (url && strncmp(url, "https://8000-", 13) != 0))
        abort();
    agx_sandbox_info_free(info);
}

static void one(int which, json_t *j)
{
    if (which == 0) {
        check_info(agx_e2b_info_from(&e2b, j));
    } else if (which == 1) {
        agx_sandbox *sb = NULL;
        agx_error err;
        if (agx_e2b_sandbox_from(&e2b, j, NULL, &sb, &err) == 0) {
            if (!sb || strncmp(agx_sandbox_runtime_url(sb), "https://8000-", 13) != 0 ||
                agx_cloud_check_id(&e2b.cloud, agx_sandbox_id(sb), NULL) != 0)
                abort();
            agx_sandbox_free(sb);
        } else if (sb) {
            abort();
        }
    } else {
        check_info(agx_daytona_info_from(&daytona, j));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] % 3;
    json_t *j = json_loadb((const char *)data + 1, size - 1, JSON_DECODE_ANY, NULL);
    if (!j)
        return 0;
    if (json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
            one(which, e);
    } else {
        one(which, j);
    }
    json_decref(j);
    return 0;
}
