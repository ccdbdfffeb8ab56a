/* standin_runtime.c — a stand-in for the bundle's agentix-server in the docker backend's tests,
 * used until `agentix build` makes real bundles: linked statically so it runs in any task image
 * (busybox has no libc), it checks what the backend must hand the runtime and refuses to start
 * otherwise, then serves
 *   GET /health → 200 {"status":"ok"}
 *   GET /info   → 200 "<first /etc/os-release ID line>\nuid=<uid>\n" with the right
 *                 "Authorization: Bearer <AGENTIX_TOKEN>", 401 without it.
 * The checks: AGENTIX_BIND_HOST/PORT/TOKEN set (token: 32 hex digits), AGX_TEST_ENV=from-config
 * (the config's env reaches the container) and /opt/agentix mounted read-only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int refuse(const char *why)
{
    fprintf(stderr, "standin: refusing to start: %s\n", why);
    return 2;
}

static void os_id(char *out, size_t n)
{
    snprintf(out, n, "ID=unknown");
    FILE *f = fopen("/etc/os-release", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "ID=", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(out, n, "%s", line);
            break;
        }
    }
    if (f)
        fclose(f);
}

static void answer(int c, const char *status, const char *body)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", status,
                     strlen(body), body);
    if (write(c, buf, (size_t)n) < 0)
        perror("standin: write");
}

static void serve(int c, const char *token)
{
    char req[4096];
    ssize_t n = read(c, req, sizeof req - 1);
    if (n <= 0)
        return;
    req[n] = '\0';
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    if (strncmp(req, "GET /health ", 12) == 0) {
        answer(c, "200 OK", "{\"status\":\"ok\"}");
    } else if (strncmp(req, "GET /info ", 10) == 0) {
        if (!strstr(req, auth)) {
            answer(c, "401 Unauthorized", "bad token\n");
            return;
        }
        char id[256], body[320];
        os_id(id, sizeof id);
        snprintf(body, sizeof body, "%s\nuid=%d\n", id, (int)getuid());
        answer(c, "200 OK", body);
    } else {
        answer(c, "404 Not Found", "");
    }
}

int main(void)
{
    const char *host = getenv("AGENTIX_BIND_HOST"), *port = getenv("AGENTIX_BIND_PORT");
    const char *token = getenv("AGENTIX_TOKEN"), *env = getenv("AGX_TEST_ENV");
    if (!host || !port || !token)
        return refuse("AGENTIX_BIND_HOST, AGENTIX_BIND_PORT or AGENTIX_TOKEN missing");
    if (strlen(token) != 32 || strspn(token, "0123456789abcdef") != 32)
        return refuse("AGENTIX_TOKEN is not 32 hex digits");
    if (!env || strcmp(env, "from-config") != 0)
        return refuse("AGX_TEST_ENV=from-config did not arrive");
    int fd = open("/opt/agentix/.write-probe", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EROFS)
        return refuse("/opt/agentix is writable; the bundle must be mounted read-only");
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (s < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) {
        perror("standin: listen");
        return 1;
    }
    fprintf(stderr, "standin: listening on %s:%s\n", host, port);
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        serve(c, token);
        close(c);
    }
}
