/* cli_parse.c — the decoders of what users type or pipe into `agentix`: durations, K=V pairs and
 * the `create --json` document that `call`, `exec` and `delete --sandbox-json` read back. Pure
 * (no I/O, no printing), so they are fuzzed (tests/fuzz/cli_inputs). */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define DURATION_MAX_MS 1e15 /* about 31,700 years: far beyond any timeout, inside int64 */

int agx_cli_duration_ms(const char *s, int64_t *out)
{
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0))
        return -1;
    double unit;
    if (*end == '\0' || strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60e3;
    else if (strcmp(end, "h") == 0)
        unit = 3600e3;
    else if (strcmp(end, "d") == 0)
        unit = 86400e3;
    else
        return -1;
    double ms = v * unit;
    if (!(ms <= DURATION_MAX_MS))
        return -1;
    *out = (int64_t)ms;
    return 0;
}

int agx_cli_kv_split(const char *arg, char sep, char *key, size_t cap, const char **value)
{
    const char *s = strchr(arg, sep);
    if (!s || s == arg)
        return -1;
    size_t klen = (size_t)(s - arg);
    if (klen >= cap)
        return -2;
    memcpy(key, arg, klen);
    key[klen] = '\0';
    const char *v = s + 1;
    if (sep == ':')
        v += strspn(v, " ");
    *value = v;
    return 0;
}

static const char *json_str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int sandbox_from_json(json_t *root, const char *what, agx_sandbox **out, agx_error *err)
{
    const char *backend = json_str(root, "backend"), *id = json_str(root, "id");
    const char *url = json_str(root, "runtime_url");
    json_t *tok = json_object_get(root, "token"), *hdr = json_object_get(root, "headers");
    if (!backend || !id || !url || (tok && !json_is_string(tok) && !json_is_null(tok)) ||
        (hdr && !json_is_object(hdr) && !json_is_null(hdr)))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s is not the output of `agentix create --json`: it needs string "
                             "backend, id and runtime_url, a string or null token and a headers "
                             "object", what);
    agx_sandbox *sb = agx_sandbox_new(backend, id, url, json_string_value(tok));
    if (!sb)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(hdr, k, v) {
        if (!json_is_string(v)) {
            agx_sandbox_free(sb);
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s: header '%.100s' is not a string",
                                 what, k);
        }
        if (agx_kv_set(agx_sandbox_headers(sb), k, json_string_value(v)) != 0) {
            agx_sandbox_free(sb);
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        }
    }
    *out = sb;
    return 0;
}

int agx_cli_sandbox_parse(const char *text, size_t len, const char *what, agx_sandbox **out,
                          agx_error *err)
{
    *out = NULL;
    if (len > AGX_CLI_SANDBOX_JSON_MAX)
        return agx_error_set(err, AGX_ERR_LIMIT, "%s is larger than %u bytes", what,
                             AGX_CLI_SANDBOX_JSON_MAX);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s is not a JSON object (%s)", what,
                             root ? "another JSON type" : jerr.text);
    }
    int rc = sandbox_from_json(root, what, out, err);
    json_decref(root);
    return rc;
}
