/* ns_health.c — the host's readiness probe of an ns sandbox's runtime (GET /health, answered
 * 200 {"status":"ok"}) over the sandbox's Unix socket (network none) or its published 127.0.0.1
 * port (private network). The socket sits in a folder the sandbox can write, so it is opened
 * without following a symlink and must be a socket (agx_unix_socket_open); the toolkit's HTTP
 * client then dials it through /proc/self/fd. */
#include "backends/ns/ns_internal.h"

#include "agentix/unix_url.h"

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
    int fd = agx_unix_socket_open(sock_path, via, n);
    if (fd < 0)
        return -2;
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
