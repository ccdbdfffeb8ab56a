/* docker_info.c — what the Engine API says about a container, read into an agx_sandbox_info: the
 * inspect document (get) and the list summary (list). The daemon is trusted to be the daemon, but
 * its answers are decoded like any input from outside: every field checked, nothing assumed
 * present (fuzzed: tests/fuzz/docker_api). */
#include "backends/docker/docker_internal.h"

#include <stdio.h>
#include <string.h>

static agx_sandbox_state map_state(const char *s)
{
    if (!s)
        return AGX_SANDBOX_UNKNOWN;
    if (strcmp(s, "created") == 0 || strcmp(s, "restarting") == 0)
        return AGX_SANDBOX_CREATING;
    if (strcmp(s, "running") == 0 || strcmp(s, "paused") == 0)
        return AGX_SANDBOX_RUNNING;
    if (strcmp(s, "exited") == 0)
        return AGX_SANDBOX_STOPPED;
    if (strcmp(s, "dead") == 0)
        return AGX_SANDBOX_ERROR;
    if (strcmp(s, "removing") == 0)
        return AGX_SANDBOX_GONE;
    return AGX_SANDBOX_UNKNOWN;
}

/* The runtime URL of a running sandbox from its published port (host network: unknown here). */
static const char *published_port(json_t *ports)
{
    json_t *b = json_array_get(json_object_get(ports, "8000/tcp"), 0);
    return json_string_value(json_object_get(b, "HostPort"));
}

static agx_sandbox_info *info_new(const char *id, const char *status, const char *port,
                                  const char *detail, int64_t created, json_t *labels)
{
    if (!port) /* host network: the port the backend chose, recorded as a label */
        port = json_string_value(json_object_get(labels, AGX_LABEL_PORT));
    agx_sandbox_info *info = agx_sandbox_info_new(id, map_state(status));
    if (!info)
        return NULL;
    int bad = 0;
    char url[64];
    if (port && *port && map_state(status) == AGX_SANDBOX_RUNNING) {
        snprintf(url, sizeof url, "http://127.0.0.1:%.8s", port);
        bad |= agx_sandbox_info_set_runtime_url(info, url) != 0;
    }
    if (detail && *detail)
        bad |= agx_sandbox_info_set_detail(info, detail) != 0;
    agx_sandbox_info_set_created_at(info, created);
    /* A running runtime enforces its own expiry, which its labels cannot follow (they are
     * immutable); one that stopped keeps the expiry it was created with. */
    if (map_state(status) != AGX_SANDBOX_RUNNING)
        agx_sandbox_info_set_expires_at(
            info, agx_label_unix_ms(json_string_value(json_object_get(labels, AGX_LABEL_EXPIRES))));
    const char *k;
    json_t *v;
    json_object_foreach(labels, k, v) {
        if (json_is_string(v))
            bad |= agx_kv_set(agx_sandbox_info_labels(info), k, json_string_value(v)) != 0;
    }
    if (bad) {
        agx_sandbox_info_free(info);
        return NULL;
    }
    return info;
}

agx_sandbox_info *agx_docker_info_from_inspect(const char *id, json_t *c)
{
    json_t *state = json_object_get(c, "State");
    const char *status = json_string_value(json_object_get(state, "Status"));
    char detail[256] = "";
    if (status && strcmp(status, "running") != 0)
        snprintf(detail, sizeof detail, "container %.32s (exit code %lld)%s%.160s", status,
                 (long long)json_integer_value(json_object_get(state, "ExitCode")),
                 json_string_length(json_object_get(state, "Error")) ? ": " : "",
                 json_string_value(json_object_get(state, "Error")) ?: "");
    json_t *ports = json_object_get(json_object_get(c, "NetworkSettings"), "Ports");
    int64_t created = agx_time_parse_ms(json_string_value(json_object_get(c, "Created")));
    return info_new(id, status, published_port(ports), detail, created,
                    json_object_get(json_object_get(c, "Config"), "Labels"));
}

agx_sandbox_info *agx_docker_info_from_summary(json_t *c)
{
    const char *port = NULL;
    char buf[24];
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(c, "Ports"), i, p) {
        json_int_t pub = json_integer_value(json_object_get(p, "PublicPort"));
        if (json_integer_value(json_object_get(p, "PrivatePort")) == AGX_DOCKER_PORT && pub > 0 &&
            pub <= 65535) {
            snprintf(buf, sizeof buf, "%lld", (long long)pub);
            port = buf;
        }
    }
    const char *id = json_string_value(json_object_get(c, "Id"));
    if (!id)
        return NULL;
    /* seconds since the epoch; anything past year 9999 is not a creation time */
    json_int_t secs = json_integer_value(json_object_get(c, "Created"));
    int64_t created = secs > 0 && secs < 253402300800LL ? (int64_t)secs * 1000 : 0;
    return info_new(id, json_string_value(json_object_get(c, "State")), port,
                    json_string_value(json_object_get(c, "Status")), created,
                    json_object_get(c, "Labels"));
}
