/* fuzz_cli_inputs.c — libFuzzer target for what users type or pipe into `agentix`
 * (cli/cli_parse.c). The first byte picks the decoder: 0 the `create --json` document of
 * --sandbox-json, 1 a duration (--timeout 90s), 2 a K=V pair (--env, --label), 3 a K:V header; the
 * rest is the input. Each result is checked against what the decoder promises. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] & 3;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    if (which == 0) {
        agx_sandbox *sb = NULL;
        agx_error err;
        if (agx_cli_sandbox_parse(in, len, "fuzz", &sb, &err) == 0) {
            if (!sb || !agx_sandbox_id(sb) || !agx_sandbox_backend(sb) || !agx_sandbox_runtime_url(sb))
                abort();
            agx_sandbox_free(sb);
        } else if (sb) {
            abort();
        }
        return 0;
    }
    char *s = malloc(len + 1); /* argv strings end at their first NUL */
    if (!s)
        return 0;
    memcpy(s, in, len);
    s[len] = '\0';
    if (which == 1) {
        int64_t ms = -1;
        if (agx_cli_duration_ms(s, &ms) == 0 && (ms < 0 || ms > (int64_t)1e15))
            abort();
    } else {
        char sep = which == 2 ? '=' : ':', key[256];
        const char *v = NULL;
        int rc = agx_cli_kv_split(s, sep, key, sizeof key, &v);
        if (rc == 0 && (!v || !key[0] || strlen(key) >= sizeof key || strchr(key, sep) ||
                        v < s || v > s + strlen(s)))
            abort();
    }
    free(s);
    return 0;
}
