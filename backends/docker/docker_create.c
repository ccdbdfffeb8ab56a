/* docker_create.c — creating one docker sandbox (host → docker backend → engine → task container):
 * the task container runs the bundle's agentix-server from the carrier's volume, publishes the
 * runtime port on 127.0.0.1 (or shares the host's network), and counts as created only once
 * GET /health answers. Its labels (the ownership record) are in the create request itself; it
 * runs with AutoRemove, so a runtime that ends itself at its expiry leaves no container behind,
 * and the backend attaches to its output before starting it (docker_attach.c) so a failed create
 * still reports its last lines. Any failure removes the container; every engine call of the
 * create is bounded by its timeout. */
#include "backends/docker/docker_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agentix/expiry.h"

#define TOKEN_BYTES 16
#define NAME_BYTES 6
#define HEALTH_PROBE_MAX_MS 2000

typedef struct create_ctx {
    const agx_docker *d;
    const agx_sandbox_config *cfg;
    const char *image, *bundle, *platform;
    int host_network;
    int64_t deadline;
    char carrier[64];
    char token[2 * TOKEN_BYTES + 1];
    char id[AGX_DOCKER_ID_MAX];
    int port;
    agx_docker_attach *attach; /* the container's output while it is being created */
} create_ctx;

/* ---- options and validation ---- */

/* The core already refused options of ours it does not know (docker.c declares them). */
static int read_options(create_ctx *c, agx_error *err)
{
    const char *v = agx_kv_get(agx_sandbox_config_options_const(c->cfg), "docker.network");
    if (!v)
        return 0;
    if (strcmp(v, "host") != 0 && strcmp(v, "bridge") != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "docker.network='%.64s' must be 'bridge' or 'host'", v);
    c->host_network = strcmp(v, "host") == 0;
    return 0;
}

/* The engine takes JSON, so names and values must be UTF-8. */
static int check_utf8(const char *what, const char *k, const char *v, agx_error *err)
{
    json_t *jk = json_string(k), *jv = json_string(v);
    int ok = jk && jv;
    json_decref(jk);
    json_decref(jv);
    return ok ? 0 : agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                  "%s '%.64s' is not valid UTF-8 (name or value)", what, k);
}

static int check_config(create_ctx *c, agx_error *err)
{
    c->image = agx_sandbox_config_image(c->cfg);
    c->bundle = agx_sandbox_config_bundle(c->cfg);
    c->platform = agx_sandbox_config_platform(c->cfg);
    if (!c->image || !*c->image)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "the docker backend needs a task image "
                             "(agx_sandbox_config_set_image)");
    if (!c->bundle || !*c->bundle)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "the docker backend needs a bundle image "
                             "(agx_sandbox_config_set_bundle); `agentix build` makes one");
    if (c->bundle[0] == '/' || c->bundle[0] == '.')
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "bundle '%s' is a path; the docker backend takes the bundle image "
                             "that `agentix build` imported into Docker", c->bundle);
    int rc = check_utf8("image", c->image, c->bundle, err);
    if (rc)
        return rc;
    int64_t t = agx_sandbox_config_timeout_ms(c->cfg);
    c->deadline = agx_clock_ms() + (t > 0 ? t : AGX_DOCKER_DEFAULT_TIMEOUT_MS);
    c->host_network = c->d->host_network;
    return read_options(c, err);
}

/* ---- the create body ---- */

static int is_reserved_env(const char *k)
{
    return strcmp(k, "AGENTIX_BIND_HOST") == 0 || strcmp(k, "AGENTIX_BIND_PORT") == 0 ||
           strcmp(k, "AGENTIX_TOKEN") == 0 || strcmp(k, AGX_EXPIRY_ENV) == 0;
}

static int add_env(json_t *env, const char *k, const char *v)
{
    char *s = malloc(strlen(k) + strlen(v) + 2);
    if (!s)
        return -1;
    sprintf(s, "%s=%s", k, v);
    int rc = json_array_append_new(env, json_string(s));
    free(s);
    return rc;
}

static int no_memory(json_t *partial, agx_error *err)
{
    json_decref(partial);
    return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building the container request");
}

/* The config's env, then the runtime's own variables, which the config may not set. */
static int build_env(const create_ctx *c, json_t **out, agx_error *err)
{
    json_t *env = *out = json_array();
    const agx_kv *user = agx_sandbox_config_env_const(c->cfg);
    if (!env)
        return no_memory(NULL, err);
    for (size_t i = 0; user && i < agx_kv_count(user); i++) {
        const char *k = agx_kv_key_at(user, i), *v = agx_kv_value_at(user, i);
        int rc = check_utf8("env", k, v, err);
        if (!rc && (!*k || strchr(k, '=') || is_reserved_env(k)))
            rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "env '%s' cannot be set: %s", k,
                               is_reserved_env(k) ? "the docker backend sets it for the runtime"
                                                  : "names are non-empty and contain no '='");
        if (!rc && add_env(env, k, v) != 0)
            rc = no_memory(NULL, err);
        if (rc) {
            json_decref(env);
            *out = NULL;
            return rc;
        }
    }
    char port[16], expiry[24];
    snprintf(port, sizeof port, "%d", c->host_network ? c->port : AGX_DOCKER_PORT);
    snprintf(expiry, sizeof expiry, "%lld", (long long)agx_sandbox_config_expiry_ms(c->cfg));
    /* With the host's network the runtime must not listen on every interface of the host. */
    if (add_env(env, "AGENTIX_BIND_HOST", c->host_network ? "127.0.0.1" : "0.0.0.0") ||
        add_env(env, "AGENTIX_BIND_PORT", port) || add_env(env, "AGENTIX_TOKEN", c->token) ||
        (agx_sandbox_config_expiry_ms(c->cfg) > 0 && add_env(env, AGX_EXPIRY_ENV, expiry))) {
        *out = NULL;
        return no_memory(env, err);
    }
    return 0;
}

static int build_labels(const create_ctx *c, json_t **out, agx_error *err)
{
    json_t *l = *out = json_object();
    const agx_kv *user = agx_sandbox_config_labels_const(c->cfg);
    int bad = !l;
    for (size_t i = 0; !bad && user && i < agx_kv_count(user); i++) {
        const char *k = agx_kv_key_at(user, i), *v = agx_kv_value_at(user, i);
        int rc = check_utf8("label", k, v, err);
        if (rc) {
            json_decref(l);
            *out = NULL;
            return rc;
        }
        bad |= json_object_set_new(l, k, json_string(v)) != 0;
    }
    /* Ours last: a user label cannot disguise an agentix sandbox. The ownership record came
     * with the config's labels. */
    bad = bad || json_object_set_new(l, AGX_LABEL_SANDBOX, json_string("1")) ||
          json_object_set_new(l, AGX_LABEL_BUNDLE, json_string(c->bundle));
    if (!bad && c->host_network) { /* no published port tells get/list where the runtime is */
        char port[16];
        snprintf(port, sizeof port, "%d", c->port);
        bad = json_object_set_new(l, AGX_LABEL_PORT, json_string(port)) != 0;
    }
    if (bad) {
        *out = NULL;
        return no_memory(l, err);
    }
    return 0;
}

static int build_host_config(const create_ctx *c, json_t **out, agx_error *err)
{
    char from[80];
    snprintf(from, sizeof from, "%s:ro", c->carrier);
    /* AutoRemove: a runtime that ends (its expiry passed, a kill) takes its container along. */
    json_t *hc = *out = json_pack("{s:[s], s:b}", "VolumesFrom", from, "AutoRemove", 1);
    if (!hc)
        return no_memory(NULL, err);
    int bad = 0;
    double cpus = agx_sandbox_config_cpus(c->cfg);
    uint64_t mem = agx_sandbox_config_memory(c->cfg);
    if (cpus > 0)
        bad |= json_object_set_new(hc, "NanoCpus", json_integer((json_int_t)(cpus * 1e9))) != 0;
    if (mem > 0)
        bad |= json_object_set_new(hc, "Memory", json_integer((json_int_t)mem)) != 0;
    if (c->host_network)
        bad |= json_object_set_new(hc, "NetworkMode", json_string("host")) != 0;
    else
        bad |= json_object_set_new(hc, "PortBindings",
                                   json_pack("{s:[{s:s, s:s}]}", "8000/tcp", "HostIp", "127.0.0.1",
                                             "HostPort", "")) != 0;
    if (bad) {
        *out = NULL;
        return no_memory(hc, err);
    }
    return 0;
}

static int build_body(const create_ctx *c, json_t **out, agx_error *err)
{
    json_t *env = NULL, *labels = NULL, *hc = NULL;
    *out = NULL;
    int rc = build_env(c, &env, err);
    if (!rc)
        rc = build_labels(c, &labels, err);
    if (!rc)
        rc = build_host_config(c, &hc, err);
    if (rc) {
        json_decref(env);
        json_decref(labels);
        return rc;
    }
    /* json_object_set_new takes the reference whether it succeeds or not. */
    json_t *body = json_pack("{s:s, s:[s], s:[]}", "Image", c->image, "Entrypoint",
                             AGX_DOCKER_SERVER, "Cmd");
    if (!body) {
        json_decref(env);
        json_decref(labels);
        json_decref(hc);
        return no_memory(NULL, err);
    }
    int bad = json_object_set_new(body, "Env", env) != 0;
    bad |= json_object_set_new(body, "Labels", labels) != 0;
    bad |= json_object_set_new(body, "HostConfig", hc) != 0;
    if (!c->host_network)
        bad |= json_object_set_new(body, "ExposedPorts", json_pack("{s:{}}", "8000/tcp")) != 0;
    if (bad)
        return no_memory(body, err);
    *out = body;
    return 0;
}

/* ---- the container's life ---- */

/* A free port on the host's 127.0.0.1 for host networking. Another process could take it before
 * the runtime binds; the runtime then exits and create fails cleanly with its log. */
static int pick_host_port(int *port, agx_error *err)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int ok = s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(s, (struct sockaddr *)&a, &len) == 0;
    int e = errno;
    if (s >= 0)
        close(s);
    if (!ok)
        return agx_error_set(err, AGX_ERR_IO, "cannot find a free port on 127.0.0.1: %s",
                             strerror(e));
    *port = ntohs(a.sin_port);
    return 0;
}

static int create_container(create_ctx *c, agx_error *err)
{
    char name[8 + 2 * NAME_BYTES + 1], hex[2 * NAME_BYTES + 1], plat[300] = "", path[400];
    int rc = agx_random_hex(hex, NAME_BYTES, err);
    if (rc)
        return rc;
    snprintf(name, sizeof name, "agentix-%s", hex);
    if (c->platform && *c->platform) {
        char esc[256];
        if ((rc = agx_docker_escape(c->platform, esc, sizeof esc, err)))
            return rc;
        snprintf(plat, sizeof plat, "&platform=%s", esc);
    }
    json_t *body = NULL, *out = NULL;
    if ((rc = build_body(c, &body, err)))
        return rc;
    snprintf(path, sizeof path, "/containers/create?name=%s%s", name, plat);
    rc = agx_docker_call(c->d, "POST", path, body, 0, "creating the task container", &out, NULL,
                         err);
    json_decref(body);
    const char *id = rc ? NULL : json_string_value(json_object_get(out, "Id"));
    if (!rc && (!id || strlen(id) >= sizeof c->id || strspn(id, "0123456789abcdef") != strlen(id)))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "the Docker daemon created a container without "
                           "a usable Id");
    if (!rc)
        snprintf(c->id, sizeof c->id, "%s", id);
    json_decref(out);
    return rc;
}

static int inspect(const create_ctx *c, json_t **out, agx_error *err)
{
    char path[AGX_DOCKER_ID_MAX + 32];
    snprintf(path, sizeof path, "/containers/%s/json", c->id);
    return agx_docker_call(c->d, "GET", path, NULL, 0, "inspecting the task container", out, NULL,
                           err);
}

/* 0 when running; otherwise an error describing how the container ended. */
static int check_running(const create_ctx *c, agx_error *err)
{
    json_t *info = NULL;
    int rc = inspect(c, &info, err);
    if (rc == AGX_ERR_NOT_FOUND)
        return agx_error_set(err, AGX_ERR_BACKEND,
                             "the runtime in container %.12s (task image '%s') ended before "
                             "answering /health and its container was removed (AutoRemove); its "
                             "last output is in the detail (a task image that cannot run the "
                             "bundle's agentix-server also ends this way)", c->id, c->image);
    if (rc)
        return rc;
    json_t *state = json_object_get(info, "State");
    const char *status = json_string_value(json_object_get(state, "Status"));
    if (!status || strcmp(status, "running") == 0 || strcmp(status, "created") == 0) {
        json_decref(info);
        return 0;
    }
    json_int_t code = json_integer_value(json_object_get(state, "ExitCode"));
    if (strcmp(status, "removing") == 0 || strcmp(status, "dead") == 0)
        status = "exited"; /* AutoRemove is at work */
    const char *why = json_string_value(json_object_get(state, "Error"));
    rc = agx_error_set(err, AGX_ERR_BACKEND,
                       "the runtime in container %.12s (task image '%s') %s with code %lld%s%s "
                       "before answering /health; its last log lines are in the detail (a task "
                       "image that cannot run the bundle's agentix-server also ends this way)",
                       c->id, c->image, status, (long long)code, why && *why ? ": " : "",
                       why ? why : "");
    json_decref(info);
    return rc;
}

static int start_container(create_ctx *c, agx_error *err)
{
    char path[AGX_DOCKER_ID_MAX + 32];
    snprintf(path, sizeof path, "/containers/%s/start", c->id);
    long status = 0;
    int rc = agx_docker_call(c->d, "POST", path, NULL, 0, "starting the task container", NULL,
                             &status, err);
    if (rc && status == 304) { /* already started */
        agx_error_clear(err);
        rc = 0;
    }
    if (rc)
        return rc;
    if (c->host_network)
        return 0;
    json_t *info = NULL;
    if ((rc = inspect(c, &info, err)))
        return rc == AGX_ERR_NOT_FOUND ? check_running(c, err) : rc;
    json_t *binds = json_object_get(json_object_get(json_object_get(info, "NetworkSettings"),
                                                    "Ports"), "8000/tcp");
    size_t i;
    json_t *b;
    json_array_foreach(binds, i, b) {
        const char *p = json_string_value(json_object_get(b, "HostPort"));
        long port = p ? strtol(p, NULL, 10) : 0;
        if (port > 0 && port < 65536) {
            c->port = (int)port;
            break;
        }
    }
    json_decref(info);
    if (c->port)
        return 0;
    /* A runtime that died at once has its ports unpublished already: say how it ended. */
    rc = check_running(c, err);
    return rc ? rc : agx_error_set(err, AGX_ERR_BACKEND, "the Docker daemon published no host "
                                   "port for the runtime's 8000/tcp");
}

/* Between probes; at the deadline the wait itself says what timed out. */
static int container_alive(void *user, agx_error *err)
{
    const create_ctx *c = user;
    return agx_clock_ms() >= c->deadline ? 0 : check_running(c, err);
}

/* The runtime's published port on loopback (never through a proxy), until the create deadline;
 * a container that stopped fails at once. */
static int wait_healthy(const create_ctx *c, agx_error *err)
{
    char url[64], what[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", c->port);
    snprintf(what, sizeof what, "the runtime in container %.12s", c->id);
    agx_health_wait w = {.runtime_url = url, .what = what, .no_proxy = 1,
                         .deadline_ms = c->deadline, .first_interval_ms = 25,
                         .max_interval_ms = 500, .probe_timeout_ms = HEALTH_PROBE_MAX_MS,
                         .alive = container_alive, .user = (void *)c};
    return agx_health_wait_run(&w, err);
}

/* A daemon that stopped or is slow under load may answer a little later: removal of a half-made
 * container gets its own grace past the create's deadline and retries until then, because a
 * container left behind costs more than an error that arrives late. */
static int remove_within_grace(const create_ctx *c, agx_error *rm_err)
{
    int64_t until = agx_clock_ms() + AGX_DOCKER_UNDO_GRACE_MS;
    if (until < c->deadline)
        until = c->deadline;
    agx_docker_bound(until);
    for (int64_t delay = 250;; delay = delay < 1000 ? delay * 2 : 2000) {
        agx_error_clear(rm_err);
        int rc = agx_docker_remove(c->d, c->id, rm_err);
        int again = rc == AGX_ERR_UNAVAILABLE || rc == AGX_ERR_TIMEOUT;
        if (!again || agx_clock_ms() + delay >= until)
            return rc;
        agx_clock_sleep_ms(delay);
    }
}

/* Removes the half-made container; its last output becomes the error's detail: from the attach
 * stream (the container may be gone already), else from its logs. */
static void undo(const create_ctx *c, agx_error *err)
{
    if (!c->id[0])
        return;
    char *logs = malloc(AGX_ERROR_DETAIL_MAX);
    if (logs) {
        logs[0] = '\0';
        if (c->attach)
            agx_docker_attach_tail(c->attach, 1000, logs, AGX_ERROR_DETAIL_MAX);
        if (!logs[0])
            agx_docker_logs_tail(c->d, c->id, logs, AGX_ERROR_DETAIL_MAX);
        if (logs[0] && err)
            agx_error_set_detail(err, logs, (size_t)-1);
        free(logs);
    }
    agx_error rm_err;
    if (remove_within_grace(c, &rm_err) != 0 && err) {
        size_t len = strlen(err->message);
        snprintf(err->message + len, sizeof err->message - len,
                 "; removing container %.12s failed too, retried for %d s (delete it once the "
                 "daemon answers; it carries the sandbox labels): %s", c->id,
                 AGX_DOCKER_UNDO_GRACE_MS / 1000, rm_err.message);
    }
}

/* The carrier may have been removed (gc --carriers) since it was ensured: make it again, once. */
static int create_with_carrier(create_ctx *c, json_t *bundle, agx_error *err)
{
    int rc = create_container(c, err);
    if (rc == AGX_ERR_NOT_FOUND && err && strstr(err->message, c->carrier)) {
        agx_error_clear(err);
        rc = agx_docker_carrier_ensure(c->d, c->bundle, bundle, c->carrier, sizeof c->carrier, err);
        if (!rc)
            rc = create_container(c, err);
    }
    return rc;
}

static int create_bounded(create_ctx *c, agx_sandbox **out, agx_error *err);

int agx_docker_create(const agx_docker *d, const agx_sandbox_config *cfg, agx_sandbox **out,
                      agx_error *err)
{
    *out = NULL;
    if (!cfg)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "the docker backend needs a config with an image and a bundle");
    create_ctx c = {.d = d, .cfg = cfg};
    int rc = check_config(&c, err);
    if (rc)
        return rc;
    agx_docker_bound(c.deadline);
    rc = create_bounded(&c, out, err);
    agx_docker_attach_free(c.attach);
    agx_docker_bound(0);
    return rc;
}

static int create_bounded(create_ctx *c, agx_sandbox **out, agx_error *err)
{
    const agx_docker *d = c->d;
    json_t *img = NULL, *bundle = NULL;
    int rc = agx_docker_image_ensure(d, c->image, c->platform, &img, err);
    if (!rc)
        rc = agx_docker_image_ensure(d, c->bundle, c->platform, &bundle, err);
    if (!rc)
        rc = agx_docker_bundle_check(c->bundle, bundle, err);
    if (!rc)
        rc = agx_docker_carrier_ensure(d, c->bundle, bundle, c->carrier, sizeof c->carrier, err);
    json_decref(img);
    if (!rc)
        rc = agx_random_hex(c->token, TOKEN_BYTES, err);
    if (!rc && c->host_network)
        rc = pick_host_port(&c->port, err);
    if (!rc)
        rc = create_with_carrier(c, bundle, err);
    json_decref(bundle);
    if (!rc)
        agx_docker_attach_start(d, c->id, c->deadline, &c->attach);
    if (!rc)
        rc = start_container(c, err);
    if (!rc)
        rc = wait_healthy(c, err);
    if (!rc) {
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", c->port);
        *out = agx_sandbox_new("docker", c->id, url, c->token);
        if (!*out)
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory describing the sandbox");
    }
    if (rc)
        undo(c, err);
    return rc;
}
