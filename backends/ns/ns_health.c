/* ns_health.c — the host's HTTP to an ns sandbox's runtime: the readiness probe (GET /health,
 * answered 200 {"status":"ok"}) and the expiry's extension (POST /expiry), over the sandbox's Unix
 * socket (network none) or its published 127.0.0.1 port (private network). The socket sits in a folder the sandbox can write, so it is opened without
 * following a symlink and must be a socket; the toolkit's HTTP client then dials it through
 * /proc/self/fd. */
#include "backends/ns/ns_internal.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BODY_MAX 4096
#define ATTEMPT_MS 2000

/* The runtime's socket (sock_path, never through a symlink, and a socket) as a /proc/self/fd
 * path in via, and the URL of `path` on it; or 127.0.0.1:port. Returns the descriptor to close
 * after the request (-1 for TCP), or -2 when the socket is missing or not one. */
static int dial(const char *sock_path, int port, const char *path, char *via, char *url, size_t n)
{
    if (!sock_path) {
        snprintf(url, n, "http://127.0.0.1:%d%s", port, path);
        return -1;
    }
    struct stat st;
    int fd = open(sock_path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return -2;
    }
    snprintf(via, n, "/proc/self/fd/%d", fd);
    snprintf(url, n, "http://localhost%s", path);
    return fd;
}

int agx_ns_health_ok(const char *sock_path, int port, int64_t budget_ms)
{
    char via[64], url[64];
    int fd = dial(sock_path, port, "/health", via, url, sizeof url);
    if (fd == -2)
        return 0;
    long ms = budget_ms < ATTEMPT_MS ? (long)budget_ms : ATTEMPT_MS;
    agx_http_request req = {.method = "GET", .url = url, .unix_socket = fd >= 0 ? via : NULL,
                            .connect_timeout_ms = ms > 0 ? ms : 1, .timeout_ms = ms > 0 ? ms : 1,
                            .max_body = BODY_MAX, .no_proxy = 1};
    agx_http_response resp;
    int ok = agx_http_perform(&req, &resp, NULL) == 0 && resp.status == 200;
    if (ok) {
        json_t *doc = json_loadb(resp.body, resp.body_len, 0, NULL);
        const char *st = json_string_value(json_object_get(doc, "status"));
        ok = st && strcmp(st, "ok") == 0;
        json_decref(doc);
    }
    agx_http_response_clear(&resp);
    if (fd >= 0)
        close(fd);
    return ok;
}

int agx_ns_expiry_post(const char *sock_path, int port, const agx_sandbox *sb, int64_t expiry_ms,
                       int64_t budget_ms, agx_error *err)
{
    char via[64], url[64];
    int fd = dial(sock_path, port, AGX_HTTP_PATH_EXPIRY, via, url, sizeof url);
    if (fd == -2)
        return agx_error_set(err, AGX_ERR_NOT_FOUND, "ns sandbox '%s' has no runtime socket (it "
                             "ended)", agx_sandbox_id(sb));
    agx_kv *h = agx_runtime_expiry_headers(sb, NULL, expiry_ms);
    agx_http_request req = {.method = "POST", .url = url, .unix_socket = fd >= 0 ? via : NULL,
                            .headers = h, .connect_timeout_ms = budget_ms,
                            .timeout_ms = budget_ms, .max_body = BODY_MAX, .no_proxy = 1};
    agx_http_response resp;
    int rc = h ? agx_http_perform(&req, &resp, err)
               : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory extending an expiry");
    if (!rc) {
        char what[96];
        snprintf(what, sizeof what, "extending the expiry of ns sandbox %s", agx_sandbox_id(sb));
        rc = agx_http_check_status(&resp, what, err);
        agx_http_response_clear(&resp);
    }
    agx_kv_free(h);
    if (fd >= 0)
        close(fd);
    return rc;
}
