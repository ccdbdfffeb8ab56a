/* fuzz_owner_labels.c — libFuzzer target for judging a sandbox's owner and expiry from its labels
 * (agx_owner_judge, agx_label_unix_ms; core/host/owner.c): the input is "key=value" lines, the
 * first line's value (if a number) the sandbox's creation time. Hostile values must never crash or
 * judge an owner "gone" without a pid to look at. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/backend/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    agx_kv *labels = agx_kv_new();
    if (!text || !labels) {
        free(text);
        agx_kv_free(labels);
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    int64_t created = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (!created)
            created = agx_label_unix_ms(eq + 1);
        agx_kv_set(labels, line, eq + 1);
    }
    agx_owner_verdict v = agx_owner_judge(labels, created);
    if (v != AGX_OWNER_UNKNOWN && v != AGX_OWNER_ALIVE && v != AGX_OWNER_GONE)
        abort();
    const char *pid = agx_kv_get(labels, AGX_LABEL_OWNER_PID);
    if (v == AGX_OWNER_GONE && !pid && !agx_kv_get(labels, AGX_LABEL_CREATOR))
        abort(); /* gone needs a pid to have looked at */
    int64_t exp = agx_label_unix_ms(agx_kv_get(labels, AGX_LABEL_EXPIRES));
    if (exp < 0)
        abort();
    agx_kv_free(labels);
    free(text);
    return 0;
}
