/* docker_api.c — the docker backend's link to the Docker Engine (host → docker backend → engine
 * HTTP API over DOCKER_HOST): where the daemon is, which API version both sides speak, JSON calls
 * with the engine's error text, container logs and removal. the toolkit's HTTP client carries the bytes. */
#include "backends/docker/docker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/var/run/docker.sock"
#define MAX_ENGINE_BODY (32u << 20) /* container lists of big hosts stay well below */

int agx_docker_escape(const char *s, char *out, size_t n, agx_error *err)
{
    char *e = agx_http_escape(s);
    if (!e)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory escaping '%s'", s);
    size_t len = strlen(e);
    int rc = 0;
    if (len >= n)
        rc = agx_error_set(err, AGX_ERR_LIMIT,
                           "'%.64s…' is too long (%zu bytes escaped, at most %zu)", s, len, n - 1);
    else
        memcpy(out, e, len + 1);
    free(e);
    return rc;
}

/* ---- DOCKER_HOST ---- */

static int is_loopback(const char *host, size_t len)
{
    return (len == 9 && strncmp(host, "127.0.0.1", 9) == 0) ||
           (len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
           (len == 5 && strncmp(host, "[::1]", 5) == 0);
}

static int parse_host(agx_docker *d, agx_error *err)
{
    const char *env = getenv("DOCKER_HOST");
    const char *h = env && *env ? env : "unix://" DEFAULT_SOCKET;
    snprintf(d->host, sizeof d->host, "%s", h);
    if (strncmp(h, "unix://", 7) == 0) {
        const char *path = h + 7;
        if (path[0] != '/' || strlen(path) >= sizeof d->socket_path)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "DOCKER_HOST='%s': a unix socket needs an absolute path shorter "
                                 "than %zu bytes (unix:///var/run/docker.sock)",
                                 h, sizeof d->socket_path);
        snprintf(d->socket_path, sizeof d->socket_path, "%s", path);
        snprintf(d->base, sizeof d->base, "http://localhost");
        return 0;
    }
    if (strncmp(h, "tcp://", 6) == 0) {
        const char *hp = h + 6, *colon = strrchr(hp, ':');
        char *end = NULL;
        long port = colon ? strtol(colon + 1, &end, 10) : 0;
        if (!colon || colon == hp || !end || *end != '\0' || end == colon + 1 || port < 1 ||
            port > 65535)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "DOCKER_HOST='%s' is not tcp://HOST:PORT", h);
        /* Sandboxes publish their runtime port on the daemon's 127.0.0.1, which this host reaches
         * only when the daemon runs here. */
        if (!is_loopback(hp, (size_t)(colon - hp)))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "DOCKER_HOST='%s': the docker backend reaches sandboxes on the "
                                 "daemon's 127.0.0.1, so the daemon must run on this machine "
                                 "(tcp://127.0.0.1:PORT or a unix socket)", h);
        snprintf(d->base, sizeof d->base, "http://%.*s:%ld", (int)(colon - hp), hp, port);
        return 0;
    }
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "DOCKER_HOST='%s' is neither unix:///PATH nor tcp://127.0.0.1:PORT", h);
}

/* "1.41" → 41; -1 unless it is 1.<minor>. */
static int api_minor(json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strncmp(s, "1.", 2) != 0)
        return -1;
    char *end;
    long m = strtol(s + 2, &end, 10);
    return *end || end == s + 2 || m < 0 || m > 999 ? -1 : (int)m;
}

static int negotiate(agx_docker *d, agx_error *err)
{
    char url[sizeof d->base + 16];
    snprintf(url, sizeof url, "%s/version", d->base);
    agx_http_request req = {.method = "GET", .url = url,
                            .unix_socket = d->socket_path[0] ? d->socket_path : NULL,
                            .connect_timeout_ms = 3000, .timeout_ms = 10000, .max_body = 1 << 20};
    agx_http_response resp;
    int rc = agx_http_perform(&req, &resp, err);
    if (rc) {
        char why[AGX_ERROR_MESSAGE_MAX];
        snprintf(why, sizeof why, "%s", err ? err->message : "");
        agx_error_set(err, AGX_ERR_UNAVAILABLE,
                      "the Docker daemon does not answer at DOCKER_HOST=%s; start dockerd or point "
                      "DOCKER_HOST at a running daemon (%s)", d->host, why);
        agx_http_response_clear(&resp);
        return AGX_ERR_UNAVAILABLE;
    }
    rc = agx_http_check_status(&resp, "GET /version", err);
    json_t *v = rc ? NULL : json_loadb(resp.body, resp.body_len, 0, NULL);
    agx_http_response_clear(&resp);
    if (rc) {
        agx_error_prefix(err, "the service at DOCKER_HOST=%s is not a Docker daemon", d->host);
        return rc;
    }
    int max = api_minor(json_object_get(v, "ApiVersion"));
    int min = api_minor(json_object_get(v, "MinAPIVersion"));
    json_decref(v);
    if (max < 0)
        return agx_error_set(err, AGX_ERR_PROTOCOL,
                             "the service at DOCKER_HOST=%s answered /version without an "
                             "ApiVersion; is it a Docker daemon?", d->host);
    int use = max < AGX_DOCKER_API_MAX_MINOR ? max : AGX_DOCKER_API_MAX_MINOR;
    if (use < AGX_DOCKER_API_MIN_MINOR || (min > 0 && min > use))
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "the Docker daemon at DOCKER_HOST=%s speaks API 1.%d..1.%d; agentix "
                             "needs one of 1.%d..1.%d (Docker Engine 20.10 or newer)",
                             d->host, min, max, AGX_DOCKER_API_MIN_MINOR, AGX_DOCKER_API_MAX_MINOR);
    size_t len = strlen(d->base);
    snprintf(d->base + len, sizeof d->base - len, "/v1.%d", use);
    return 0;
}

int agx_docker_connect(agx_docker *d, agx_error *err)
{
    int rc = parse_host(d, err);
    return rc ? rc : negotiate(d, err);
}

/* ---- calls ---- */

/* A request that may not have reached the engine is repeated only when repeating is harmless. */
static int engine_retry(int rc, const agx_http_response *resp, const agx_error *err, void *user)
{
    const char *method = user;
    if (rc == 0)
        return resp->status == 429 || resp->status == 502 || resp->status == 503 ||
               resp->status == 504;
    return err && err->retriable && (strcmp(method, "GET") == 0 || strcmp(method, "DELETE") == 0);
}

static __thread int64_t bound_ms; /* agx_docker_bound: 0 = none */

void agx_docker_bound(int64_t deadline_ms)
{
    bound_ms = deadline_ms;
}

long agx_docker_bounded_ms(long ms)
{
    if (!bound_ms)
        return ms;
    int64_t left = bound_ms - agx_clock_ms();
    return left < 1 ? 1 : left < ms ? (long)left : ms;
}

static int engine_request(const agx_docker *d, const char *method, const char *path,
                          const char *body, long timeout_ms, size_t max_body,
                          agx_http_response *resp, agx_error *err)
{
    if (timeout_ms <= 0)
        timeout_ms = AGX_DOCKER_CALL_TIMEOUT_MS;
    if (bound_ms) {
        int64_t left = bound_ms - agx_clock_ms();
        if (left <= 0) {
            memset(resp, 0, sizeof *resp);
            agx_error_set(err, AGX_ERR_TIMEOUT, "%s %s: the create's timeout has passed", method,
                          path);
            if (err)
                err->retriable = 1;
            return AGX_ERR_TIMEOUT;
        }
        if (left < timeout_ms)
            timeout_ms = (long)left;
    }
    size_t ulen = strlen(d->base) + strlen(path) + 1;
    char *url = malloc(ulen);
    if (!url)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory calling the Docker daemon");
    snprintf(url, ulen, "%s%s", d->base, path);
    agx_http_request req = {.method = method, .url = url,
                            .unix_socket = d->socket_path[0] ? d->socket_path : NULL,
                            .body = body, .body_len = body ? strlen(body) : 0,
                            .connect_timeout_ms = timeout_ms < 5000 ? timeout_ms : 5000,
                            .timeout_ms = timeout_ms, .max_body = max_body};
    agx_http_retry retry = {.max_attempts = 3, .base_delay_ms = 200, .max_delay_ms = 2000,
                            .deadline_ms = bound_ms, .should_retry = engine_retry,
                            .user = (void *)method};
    int rc = agx_http_perform_retry(&req, &retry, resp, err);
    free(url);
    return rc;
}

int agx_docker_call(const agx_docker *d, const char *method, const char *path, json_t *body,
                    long timeout_ms, const char *what, json_t **out, long *status, agx_error *err)
{
    if (out)
        *out = NULL;
    if (status)
        *status = 0;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (body && !text)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory encoding a Docker request");
    agx_http_response resp;
    int rc = engine_request(d, method, path, text, timeout_ms, MAX_ENGINE_BODY, &resp, err);
    free(text);
    if (status)
        *status = resp.status;
    if (rc)
        agx_error_prefix(err, "%s", what); /* the transport's message names the socket and URL */
    else
        rc = agx_http_check_status(&resp, what, err);
    if (!rc && out && resp.body_len) {
        json_error_t je;
        *out = json_loadb(resp.body, resp.body_len, 0, &je);
        if (!*out)
            rc = agx_error_set(err, AGX_ERR_PROTOCOL,
                               "%s: the Docker daemon answered invalid JSON (%s)", what, je.text);
    }
    agx_http_response_clear(&resp);
    return rc;
}

/* ---- logs ---- */

size_t agx_docker_demux(const char *in, size_t len, char *out, size_t n)
{
    if (n == 0)
        return 0;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)in;
    int framed = len >= 8 && p[0] <= 2 && p[1] == 0 && p[2] == 0 && p[3] == 0;
    if (!framed) {
        o = len < n - 1 ? len : n - 1;
        memcpy(out, in, o);
    } else {
        size_t i = 0;
        while (i + 8 <= len && o < n - 1) {
            size_t size = (size_t)p[i + 4] << 24 | (size_t)p[i + 5] << 16 | (size_t)p[i + 6] << 8 |
                          (size_t)p[i + 7];
            i += 8;
            if (size > len - i)
                size = len - i; /* a cut frame: keep what arrived */
            size_t take = size < n - 1 - o ? size : n - 1 - o;
            memcpy(out + o, in + i, take);
            o += take;
            i += size;
        }
    }
    out[o] = '\0';
    return o;
}

void agx_docker_logs_tail(const agx_docker *d, const char *id, char *out, size_t n)
{
    if (n)
        out[0] = '\0';
    char eid[AGX_DOCKER_ID_MAX * 3 + 1], path[sizeof eid + 64];
    if (agx_docker_escape(id, eid, sizeof eid, NULL))
        return;
    snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1&tail=%d", eid,
             AGX_DOCKER_LOG_TAIL);
    agx_http_response resp;
    if (engine_request(d, "GET", path, NULL, 10000, 1u << 20, &resp, NULL) == 0 &&
        resp.status == 200) {
        /* Keep the end: with a small buffer the last lines say most about a failure. */
        char *all = malloc(resp.body_len + 1);
        if (all) {
            size_t len = agx_docker_demux(resp.body, resp.body_len, all, resp.body_len + 1);
            size_t skip = len >= n ? len - (n - 1) : 0;
            snprintf(out, n, "%s", all + skip);
            free(all);
        }
    }
    agx_http_response_clear(&resp);
}

/* ---- removal ---- */

int agx_docker_remove(const agx_docker *d, const char *id, agx_error *err)
{
    char eid[AGX_DOCKER_ID_MAX * 3 + 1], path[sizeof eid + 32];
    int rc = agx_docker_escape(id, eid, sizeof eid, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "/containers/%s?force=1&v=1", eid);
    rc = agx_docker_call(d, "DELETE", path, NULL, 0, "removing the container", NULL, NULL, err);
    if (rc == AGX_ERR_NOT_FOUND) {
        agx_error_clear(err);
        return 0;
    }
    /* 409 "removal already in progress": someone else (AutoRemove, often) is deleting it. It is
     * gone only once inspect says so: wait for that, briefly, so "deleted" means gone. */
    if (rc == AGX_ERR_CONFLICT && err && strstr(err->message, "already in progress")) {
        agx_error_clear(err);
        char ipath[sizeof eid + 32];
        snprintf(ipath, sizeof ipath, "/containers/%s/json", eid);
        for (int i = 0; i < 50; i++) {
            agx_error e;
            if (agx_docker_call(d, "GET", ipath, NULL, 0, "inspecting a container being removed",
                                NULL, NULL, &e) == AGX_ERR_NOT_FOUND)
                break;
            agx_clock_sleep_ms(100);
        }
        return 0;
    }
    return rc;
}

int agx_docker_list_unstarted(const agx_docker *d, const char *const *labels, json_t **out,
                              agx_error *err)
{
    *out = NULL;
    json_t *label = json_array(), *filters = json_object();
    int bad = !label || !filters || json_array_append_new(label, json_string(AGX_LABEL_SANDBOX "=1"));
    for (size_t i = 0; !bad && labels && labels[i]; i++)
        bad = json_array_append_new(label, json_string(labels[i])) != 0;
    bad = bad || json_object_set(filters, "label", label) ||
          json_object_set_new(filters, "status", json_pack("[s]", "created"));
    char *text = bad ? NULL : json_dumps(filters, JSON_COMPACT);
    char *f = text ? agx_http_escape(text) : NULL;
    char *path = NULL;
    int rc = f && asprintf(&path, "/containers/json?all=1&filters=%s", f) >= 0
                 ? agx_docker_call(d, "GET", path, NULL, 0, "listing containers that never "
                                   "started", out, NULL, err)
                 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc && !json_is_array(*out)) {
        json_decref(*out);
        *out = NULL;
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "the Docker daemon listed containers as "
                           "something other than an array");
    }
    free(path);
    free(f);
    free(text);
    json_decref(label);
    json_decref(filters);
    return rc;
}
