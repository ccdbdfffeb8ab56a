/* runtime_expiry.c — the host's side of a runtime's expiry and claim (backend toolkit, runtime.h;
 * host → runtime, docs/PROTOCOL.md §1.1): an expiry is extended over a client connection open to
 * the sandbox (runtime_channel.h) or, when none is, by POST /expiry; POST /claim gives a runtime
 * started in claim mode its per-sandbox token and first expiry. Both POSTs carry no body: the
 * values travel in headers. */
#include "agentix/backend/runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/backend/http.h"
#include "agentix/clock.h"
#include "agentix/expiry.h"
#include "agentix/unix_url.h"
#include "core/host/runtime_channel.h"

#define CALL_MAX_MS 10000
#define ANSWER_MAX (4u << 10)

/* Loopback runtimes are never reached through a proxy (a host proxy must not see them). */
static int is_loopback(const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 || strncmp(h, "[::1]", 5) == 0;
}

/* The sandbox's headers (a proxy's), its token, the claim secret (claims) and the expiry. */
static agx_kv *request_headers(const agx_sandbox *sb, const char *claim, int64_t expiry_ms)
{
    agx_kv *h = agx_kv_copy(agx_sandbox_headers_const(sb));
    char ms[24];
    snprintf(ms, sizeof ms, "%lld", (long long)expiry_ms);
    const char *token = agx_sandbox_token(sb);
    if (!h || agx_kv_set(h, AGX_HTTP_HEADER_EXPIRY_MS, ms) ||
        (token && agx_kv_set(h, AGX_HTTP_HEADER_TOKEN, token)) ||
        (claim && agx_kv_set(h, AGX_HTTP_HEADER_CLAIM, claim))) {
        agx_kv_free(h);
        return NULL;
    }
    return h;
}

agx_kv *agx_runtime_expiry_headers(const agx_sandbox *sb, const char *claim_secret,
                                   int64_t expiry_ms)
{
    return sb ? request_headers(sb, claim_secret, expiry_ms) : NULL;
}

/* The URL to POST to: <runtime_url><path>, or for an http+unix runtime URL (an ns sandbox with
 * no network) http://localhost<prefix><path> over its socket, opened into *sock (via names it). */
static int target_url(const agx_sandbox *sb, const char *path, char **url, char *via, size_t n,
                      int *sock, agx_error *err)
{
    const char *ru = agx_sandbox_runtime_url(sb), *rest = NULL;
    char sock_path[AGX_UNIX_URL_PATH_MAX + 1];
    int unix_url = agx_unix_url_split(ru, sock_path, sizeof sock_path, &rest);
    if (unix_url < 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "its runtime URL '%.200s' has a bad "
                             "socket path", ru);
    if (unix_url) {
        *sock = agx_unix_socket_open(sock_path, via, n);
        if (*sock < 0)
            return agx_error_set(err, errno == ENOENT ? AGX_ERR_NOT_FOUND : AGX_ERR_UNAVAILABLE,
                                 "its runtime socket %s: %s", sock_path, strerror(errno));
        size_t keep = strlen(rest);
        while (keep && rest[keep - 1] == '/')
            keep--;
        if (asprintf(url, "http://localhost%.*s%s", (int)keep, rest, path) >= 0)
            return 0;
        close(*sock);
        *sock = -1;
    } else if (asprintf(url, "%s%s", ru, path) >= 0) {
        return 0;
    }
    *url = NULL;
    return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
}

/* One POST to <runtime_url><path>; maps the answer to the documented errors. */
static int post(const agx_sandbox *sb, const char *path, const agx_kv *headers, int64_t deadline_ms,
                const char *what, agx_error *err)
{
    int64_t left = deadline_ms - agx_clock_ms();
    if (left <= 0)
        return agx_error_set(err, AGX_ERR_TIMEOUT, "%s sandbox %s: no time left", what,
                             agx_sandbox_id(sb));
    char *url = NULL, via[32];
    int sock = -1;
    int rc = target_url(sb, path, &url, via, sizeof via, &sock, err);
    if (rc) {
        agx_error_prefix(err, "%s sandbox %s", what, agx_sandbox_id(sb));
        return rc;
    }
    long bound = left < CALL_MAX_MS ? (long)left : CALL_MAX_MS;
    const char *ct = getenv("AGENTIX_CONNECT_TO");
    agx_http_request req = {.method = "POST", .url = url, .headers = headers,
                            .unix_socket = sock >= 0 ? via : NULL,
                            .connect_to = ct && *ct && sock < 0 ? ct : NULL,
                            .no_proxy = sock >= 0 || is_loopback(agx_sandbox_runtime_url(sb)),
                            .connect_timeout_ms = bound, .timeout_ms = bound, .max_body = ANSWER_MAX};
    agx_http_response resp;
    rc = agx_http_perform(&req, &resp, err);
    if (sock >= 0)
        close(sock);
    if (rc) {
        agx_error_prefix(err, "%s sandbox %s", what, agx_sandbox_id(sb));
    } else if (resp.status == 404) {
        rc = agx_error_set(err, AGX_ERR_UNSUPPORTED, "%s sandbox %s: its runtime has no %s (an "
                           "agentix-server older than expiries)", what, agx_sandbox_id(sb), path);
    } else if (resp.status == 502 && resp.body && strstr(resp.body, "not found")) {
        rc = agx_error_set(err, AGX_ERR_NOT_FOUND, "%s sandbox %s: the proxy says it is gone",
                           what, agx_sandbox_id(sb));
    } else if (resp.status == 409) {
        rc = agx_error_set(err, AGX_ERR_CONFLICT, "%s sandbox %s: its runtime was claimed already",
                           what, agx_sandbox_id(sb));
    } else {
        char w[128];
        snprintf(w, sizeof w, "%s sandbox %s", what, agx_sandbox_id(sb));
        rc = agx_http_check_status(&resp, w, err);
    }
    agx_http_response_clear(&resp);
    free(url);
    return rc;
}

static int check_args(const agx_sandbox *sb, int64_t expiry_ms, const char *fn, agx_error *err)
{
    if (!sb || !agx_sandbox_runtime_url(sb))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s: a sandbox is required", fn);
    if (expiry_ms < AGX_EXPIRY_MIN_MS || expiry_ms > AGX_EXPIRY_MAX_MS)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s: expiry %lld ms is outside "
                             "%lld..%lld", fn, (long long)expiry_ms, (long long)AGX_EXPIRY_MIN_MS,
                             (long long)AGX_EXPIRY_MAX_MS);
    return 0;
}

int agx_runtime_expiry_extend(const agx_sandbox *sb, int64_t expiry_ms, int64_t deadline_ms,
                              agx_error *err)
{
    int rc = check_args(sb, expiry_ms, "agx_runtime_expiry_extend", err);
    if (rc)
        return rc;
    /* Over a connection the client has open to it, when there is one (no request of its own). */
    if (agx_runtime_channel_extend(sb, expiry_ms, deadline_ms) == 0)
        return 0;
    agx_kv *h = request_headers(sb, NULL, expiry_ms);
    if (!h)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory extending an expiry");
    rc = post(sb, AGX_HTTP_PATH_EXPIRY, h, deadline_ms, "extending the expiry of", err);
    agx_kv_free(h);
    if (rc == 0) /* counted like the connection's: extensions made, not attempts */
        agx_runtime_channel_count_http();
    return rc;
}

int agx_runtime_claim(const agx_sandbox *sb, const char *claim_secret, int64_t expiry_ms,
                      int64_t deadline_ms, agx_error *err)
{
    int rc = check_args(sb, expiry_ms, "agx_runtime_claim", err);
    if (!rc && (!agx_sandbox_token(sb) || !*agx_sandbox_token(sb)))
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_runtime_claim: the sandbox has no "
                           "token to give its runtime");
    if (rc)
        return rc;
    agx_kv *h = request_headers(sb, claim_secret, expiry_ms);
    if (!h)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory claiming a runtime");
    /* Callers claim a runtime that answered its readiness probe: a refused connection is retried
     * a few times only (a pod being deleted must not hold a claim that has other candidates). A
     * claim that reached the runtime is never repeated blindly — a second one would be refused. */
    for (int64_t pause = 20;; pause *= 2) {
        agx_error_clear(err);
        rc = post(sb, AGX_HTTP_PATH_CLAIM, h, deadline_ms, "claiming the runtime of", err);
        if (rc != AGX_ERR_UNAVAILABLE || pause > 80 || agx_clock_ms() + pause >= deadline_ms)
            break;
        agx_clock_sleep_ms(pause);
    }
    agx_kv_free(h);
    return rc;
}
