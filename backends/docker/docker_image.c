/* docker_image.c — what a docker sandbox is made from (host → docker backend → engine): the task
 * image, present locally or pulled; the bundle image, checked to really be an agentix bundle; and
 * the bundle's carrier container, one per bundle image, whose /opt/agentix volume every sandbox
 * of that bundle mounts read-only with VolumesFrom. */
#include "backends/docker/docker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PULL_LINE_MAX (64u << 10)
#define NAME_ESC_MAX 1024

/* ---- pulling ---- */

/* The pull answers a stream of JSON lines; errors can arrive as a line after a 200. */
typedef struct pull_state {
    const char *image;
    int progress;             /* AGENTIX_DOCKER_PROGRESS: report status lines on stderr */
    char line[PULL_LINE_MAX];
    size_t len;
    int overlong;             /* the current line did not fit; skipped */
    char error[512];          /* the last "error" a line reported */
    char head[1024];          /* the start of the body, for non-2xx answers */
    size_t head_len;
} pull_state;

static void pull_line(pull_state *p)
{
    json_t *j = json_loadb(p->line, p->len, 0, NULL);
    if (!j)
        return;
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *status = json_string_value(json_object_get(j, "status"));
    if (e)
        snprintf(p->error, sizeof p->error, "%s", e);
    else if (p->progress && status && !json_object_get(j, "progressDetail"))
        fprintf(stderr, "agentix docker: pulling %s: %s %s\n", p->image, status,
                json_string_value(json_object_get(j, "id")) ?: "");
    json_decref(j);
}

static int pull_sink(const char *data, size_t len, void *user)
{
    pull_state *p = user;
    size_t room = sizeof p->head - 1 - p->head_len, take = len < room ? len : room;
    memcpy(p->head + p->head_len, data, take);
    p->head_len += take;
    p->head[p->head_len] = '\0';
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n') {
            if (!p->overlong)
                pull_line(p);
            p->len = 0;
            p->overlong = 0;
        } else if (p->len < sizeof p->line) {
            p->line[p->len++] = data[i];
        } else {
            p->overlong = 1;
        }
    }
    return 0;
}

static int split_platform(const char *platform, char *q, size_t n, agx_error *err)
{
    q[0] = '\0';
    if (!platform || !*platform)
        return 0;
    char esc[256];
    int rc = agx_docker_escape(platform, esc, sizeof esc, err);
    if (!rc)
        snprintf(q, n, "&platform=%s", esc);
    return rc;
}

static int pull(const agx_docker *d, const char *image, const char *platform, agx_error *err)
{
    char esc[NAME_ESC_MAX], plat[300];
    int rc = agx_docker_escape(image, esc, sizeof esc, err);
    if (!rc)
        rc = split_platform(platform, plat, sizeof plat, err);
    if (rc)
        return rc;
    pull_state *p = calloc(1, sizeof *p);
    char *url = malloc(sizeof d->base + sizeof esc + sizeof plat + 64);
    if (!p || !url) {
        free(p);
        free(url);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory pulling '%s'", image);
    }
    p->image = image;
    const char *prog = getenv("AGENTIX_DOCKER_PROGRESS");
    p->progress = prog && *prog && strcmp(prog, "0") != 0;
    sprintf(url, "%s/images/create?fromImage=%s%s", d->base, esc, plat);
    agx_http_request req = {.method = "POST", .url = url,
                            .unix_socket = d->socket_path[0] ? d->socket_path : NULL,
                            .timeout_ms = agx_docker_bounded_ms(AGX_DOCKER_PULL_TIMEOUT_MS),
                            .sink = pull_sink,
                            .sink_user = p};
    agx_http_response resp;
    rc = agx_http_perform(&req, &resp, err);
    if (!rc && (resp.status < 200 || resp.status >= 300)) {
        /* The sink consumed the body: give the status check the part it kept. */
        free(resp.body);
        resp.body = strdup(p->head);
        resp.body_len = resp.body ? strlen(resp.body) : 0;
        rc = agx_http_check_status(&resp, "pulling the image", err);
    } else if (!rc && p->error[0]) {
        rc = agx_error_set(err, AGX_ERR_NOT_FOUND, "pulling the image: %s", p->error);
    }
    agx_http_response_clear(&resp);
    free(url);
    free(p);
    return rc;
}

/* ---- images ---- */

static int inspect_image(const agx_docker *d, const char *image, json_t **out, agx_error *err)
{
    char esc[NAME_ESC_MAX], path[NAME_ESC_MAX + 32];
    int rc = agx_docker_escape(image, esc, sizeof esc, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/images/%s/json", esc);
    rc = agx_docker_call(d, "GET", path, NULL, 0, "inspecting the image", out, NULL, err);
    if (!rc && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "the Docker daemon described image '%s' "
                           "without an object", image);
    }
    return rc;
}

int agx_docker_image_ensure(const agx_docker *d, const char *image, const char *platform,
                            json_t **inspect, agx_error *err)
{
    *inspect = NULL;
    int rc = inspect_image(d, image, inspect, err);
    if (rc != AGX_ERR_NOT_FOUND)
        return rc;
    rc = pull(d, image, platform, err);
    if (!rc)
        rc = inspect_image(d, image, inspect, err);
    if (rc) {
        char why[AGX_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s", err ? err->message : "");
        int retriable = err && err->retriable;
        agx_error_set(err, AGX_ERR_NOT_FOUND,
                      "image '%s' is not present on the Docker daemon at %s and could not be "
                      "pulled (%s); build or load it there, or check the name and registry access",
                      image, d->host, why);
        if (err)
            err->retriable = retriable;
        return AGX_ERR_NOT_FOUND;
    }
    return 0;
}

/* ---- bundles ---- */

int agx_docker_bundle_check(const char *bundle, json_t *inspect, agx_error *err)
{
    json_t *config = json_object_get(inspect, "Config");
    json_t *format = json_object_get(json_object_get(config, "Labels"), AGX_LABEL_BUNDLE_FORMAT);
    json_t *volume = json_object_get(json_object_get(config, "Volumes"), AGX_DOCKER_PREFIX);
    const char *missing = !json_is_string(format) ? "no label agentix.bundle.format"
                          : !volume              ? "no VOLUME " AGX_DOCKER_PREFIX
                                                 : NULL;
    if (missing)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "'%s' is not an agentix bundle image (%s); pass the image that "
                             "`agentix build` made as the bundle, and the task image as the image",
                             bundle, missing);
    if (strcmp(json_string_value(format), "1") != 0)
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "bundle '%s' has format '%.32s'; this agentix runs bundles of format "
                             "1: rebuild it with this version's `agentix build`",
                             bundle, json_string_value(format));
    return 0;
}

/* ---- carriers ---- */

/* Checks an existing carrier. After a 409 (wait_ms > 0) the winner's create may still be running:
 * wait until the carrier is inspectable. AGX_ERR_NOT_FOUND when there is none. */
static int carrier_verify(const agx_docker *d, const char *name, const char *image_id,
                          int64_t wait_ms, agx_error *err)
{
    char path[128];
    snprintf(path, sizeof path, "/containers/%s/json", name);
    int64_t deadline = agx_clock_ms() + wait_ms;
    for (int64_t delay = 50;; delay = delay < 800 ? delay * 2 : delay) {
        json_t *c = NULL;
        int rc = agx_docker_call(d, "GET", path, NULL, 0, "inspecting the carrier", &c, NULL, err);
        if (!rc) {
            const char *img = json_string_value(json_object_get(c, "Image"));
            if (!img || strcmp(img, image_id) != 0)
                rc = agx_error_set(err, AGX_ERR_CONFLICT,
                                   "container '%s' exists but does not carry bundle image %s; "
                                   "remove it (docker rm %s) and retry",
                                   name, image_id, name);
            json_decref(c);
            return rc;
        }
        if (rc != AGX_ERR_NOT_FOUND || agx_clock_ms() + delay > deadline)
            return rc;
        agx_clock_sleep_ms(delay);
    }
}

static int carrier_create(const agx_docker *d, const char *bundle, const char *image_id,
                          const char *name, agx_error *err)
{
    json_t *body = json_pack("{s:s, s:[s], s:b, s:{s:s, s:s}}", "Image", image_id, "Entrypoint",
                             AGX_DOCKER_SERVER, "NetworkDisabled", 1, "Labels", AGX_LABEL_CARRIER,
                             "1", AGX_LABEL_BUNDLE, bundle);
    if (!body)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating a carrier");
    char path[128];
    snprintf(path, sizeof path, "/containers/create?name=%s", name);
    int rc = agx_docker_call(d, "POST", path, body, 0, "creating the bundle's carrier container",
                             NULL, NULL, err);
    json_decref(body);
    return rc;
}

int agx_docker_carrier_ensure(const agx_docker *d, const char *bundle, json_t *inspect, char *out,
                              size_t n, agx_error *err)
{
    const char *id = json_string_value(json_object_get(inspect, "Id"));
    const char *hex = id && strncmp(id, "sha256:", 7) == 0 ? id + 7 : id;
    if (!hex || strlen(hex) < 12 || strspn(hex, "0123456789abcdef") < 12)
        return agx_error_set(err, AGX_ERR_PROTOCOL,
                             "the Docker daemon gave bundle '%s' no usable image id", bundle);
    snprintf(out, n, "agentix-carrier-%.12s", hex);
    /* The common case, the carrier exists: one inspect. */
    int rc = carrier_verify(d, out, id, 0, err);
    if (rc == AGX_ERR_NOT_FOUND) {
        agx_error_clear(err);
        rc = carrier_create(d, bundle, id, out, err);
        if (rc == AGX_ERR_CONFLICT) { /* another create made it meanwhile */
            agx_error_clear(err);
            rc = carrier_verify(d, out, id, 10000, err);
        }
    }
    if (rc)
        agx_error_prefix(err, "bundle '%s'", bundle);
    return rc;
}
