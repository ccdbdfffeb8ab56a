/* fake_http.c — see fake_http.h. */
#include "fake_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"

int agx_fake_http_tcp(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 16) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

int agx_fake_http_unix(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    CHECK(strlen(path) < sizeof a.sun_path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 16) == 0);
    return fd;
}

void agx_fake_http_read(int fd, char *out, size_t n)
{
    size_t len = 0;
    out[0] = '\0';
    while (len < n - 1) {
        ssize_t r = read(fd, out + len, n - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        out[len] = '\0';
        char *end = strstr(out, "\r\n\r\n");
        const char *cl = strstr(out, "Content-Length: ");
        if (end && (!cl || len >= (size_t)(end + 4 - out) + strtoul(cl + 16, NULL, 10)))
            break;
    }
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            perror("fake_http: write"); /* the client went away: its test says what it expected */
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

void agx_fake_http_reply(int fd, const char *spec, const char *content_type)
{
    if (strncmp(spec, "HTTP/", 5) == 0) {
        write_all(fd, spec, strlen(spec));
        return;
    }
    const char *body = strchr(spec, ' ');
    body = body ? body + 1 : "";
    const char *bar = strchr(body, '|');
    char extra[256] = "";
    /* "Name: value|body" adds a header (a JSON or plain body starts otherwise) */
    if (bar && ((*body >= 'A' && *body <= 'Z') || (*body >= 'a' && *body <= 'z')) &&
        memchr(body, ':', (size_t)(bar - body))) {
        snprintf(extra, sizeof extra, "%.*s\r\n", (int)(bar - body), body);
        body = bar + 1;
    }
    char ctype[128] = "";
    if (content_type)
        snprintf(ctype, sizeof ctype, "Content-Type: %s\r\n", content_type);
    char head[512];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %.3s X\r\n%sContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n", spec, ctype, strlen(body), extra);
    CHECK(n > 0 && (size_t)n < sizeof head);
    write_all(fd, head, (size_t)n);
    write_all(fd, body, strlen(body));
}

static void *serve(void *arg)
{
    agx_fake_http *s = arg;
    for (int i = 0; i < s->n_answers; i++) {
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        agx_fake_http_read(c, s->last_request, sizeof s->last_request);
        s->served++;
        if (s->answers[i]) {
            agx_fake_http_reply(c, s->answers[i], NULL);
        } else {
            char sink[256];
            while (read(c, sink, sizeof sink) > 0) {
            }
        }
        close(c);
    }
    return NULL;
}

void agx_fake_http_start(agx_fake_http *s, int fd, const char *const *answers, int n)
{
    *s = (agx_fake_http){.fd = fd, .answers = answers, .n_answers = n};
    CHECK(pthread_create(&s->thread, NULL, serve, s) == 0);
}

void agx_fake_http_stop(agx_fake_http *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

void agx_fake_http_abort(agx_fake_http *s)
{
    shutdown(s->fd, SHUT_RDWR);
    agx_fake_http_stop(s);
}
