/* ns_health.c — the readiness probe of an ns sandbox: GET /health over the sandbox's Unix socket
 * (network none) or its published 127.0.0.1 port (private network), answered 200
 * {"status":"ok"}. The socket sits in a folder the sandbox can write, so it is opened without
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

int agx_ns_health_ok(const char *sock_path, int port, int64_t budget_ms)
{
    int fd = -1;
    char via[64], url[64];
    if (sock_path) {
        struct stat st;
        fd = open(sock_path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
            if (fd >= 0)
                close(fd);
            return 0;
        }
        snprintf(via, sizeof via, "/proc/self/fd/%d", fd);
        snprintf(url, sizeof url, "http://localhost/health");
    } else {
        snprintf(url, sizeof url, "http://127.0.0.1:%d/health", port);
    }
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
