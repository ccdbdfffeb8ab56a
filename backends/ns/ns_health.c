/* ns_health.c — the readiness probe of an ns sandbox: GET /health over the sandbox's Unix socket
 * (network none) or its published 127.0.0.1 port (private network), answered 200
 * {"status":"ok"}. The socket sits in a folder the sandbox can write, so it is opened without
 * following a symlink and must be a socket; curl then dials it through /proc/self/fd. */
#include "backends/ns/ns_internal.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BODY_MAX 4096
#define ATTEMPT_MS 2000

typedef struct body {
    char data[BODY_MAX];
    size_t len;
} body;

static size_t on_body(char *p, size_t size, size_t nmemb, void *user)
{
    body *b = user;
    size_t n = size * nmemb;
    if (n > BODY_MAX - b->len)
        return 0;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return n;
}

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
    CURL *h = curl_easy_init();
    int ok = 0;
    if (h) {
        body b = {.len = 0};
        long ms = budget_ms < ATTEMPT_MS ? (long)budget_ms : ATTEMPT_MS, status = 0;
        curl_easy_setopt(h, CURLOPT_URL, url);
        if (fd >= 0)
            curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, via);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*"); /* local traffic never goes through a proxy */
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        ok = curl_easy_perform(h) == CURLE_OK &&
             curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200;
        curl_easy_cleanup(h);
        if (ok) {
            json_t *doc = json_loadb(b.data, b.len, 0, NULL);
            const char *st = json_string_value(json_object_get(doc, "status"));
            ok = st && strcmp(st, "ok") == 0;
            json_decref(doc);
        }
    }
    if (fd >= 0)
        close(fd);
    return ok;
}
