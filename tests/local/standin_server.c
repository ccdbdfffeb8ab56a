/* standin_server.c — a stand-in for agentix-server used by the local backend's tests only while
 * the real server is not built: it speaks just enough of the startup contract (AGENTIX_BIND_HOST,
 * AGENTIX_BIND_PORT=0, AGENTIX_PORT_FILE written once listening, GET /health) to exercise
 * create/delete/get/list. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    const char *host = getenv("AGENTIX_BIND_HOST");
    const char *port = getenv("AGENTIX_BIND_PORT");
    const char *port_file = getenv("AGENTIX_PORT_FILE");
    if (!host || !port || !port_file || !getenv("AGENTIX_TOKEN") || !getenv("AGENTIX_FILES_ROOT")) {
        fprintf(stderr, "standin: missing AGENTIX_* environment\n");
        return 2;
    }
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    inet_pton(AF_INET, host, &a.sin_addr);
    socklen_t alen = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 16) ||
        getsockname(s, (struct sockaddr *)&a, &alen)) {
        perror("standin: listen");
        return 1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", ntohs(a.sin_port)) < 0 || fclose(f) || rename(tmp, port_file)) {
        perror("standin: port file");
        return 1;
    }
    fprintf(stderr, "standin: listening on %s:%d\n", host, ntohs(a.sin_port));
    for (;;) {
        int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        char req[2048];
        ssize_t n = read(c, req, sizeof req - 1);
        const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 33\r\n"
                          "Connection: close\r\n\r\n{\"status\":\"ok\",\"version\":\"0.1.0\"}";
        const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        int health = n > 0 && strncmp(req, "GET /health ", 12) == 0;
        if (write(c, health ? ok : nf, health ? sizeof ok - 1 : sizeof nf - 1) < 0)
            perror("standin: write");
        close(c);
    }
}
