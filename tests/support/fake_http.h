/* fake_http.h — the scripted HTTP peer the unit tests of HTTP clients share (core/http, the docker
 * backend's Engine API client, backends/cloud): listening sockets on 127.0.0.1 or a unix path, a
 * request reader (headers plus a Content-Length body), answers written from a short spec, and a
 * server thread that answers one connection per scripted answer, in order.
 *
 * Answer specs: a full response starting "HTTP/" is written as is; otherwise
 * "<status> [Name: value|]body" becomes a response with that status, the optional header,
 * Content-Length and Connection: close. A NULL answer reads until the client gives up and answers
 * nothing (a server that hangs). */
#ifndef AGX_TEST_FAKE_HTTP_H
#define AGX_TEST_FAKE_HTTP_H

#include <pthread.h>
#include <stddef.h>

/* A listening socket on 127.0.0.1, port 0 (the kernel picks); *port receives it. */
int agx_fake_http_tcp(int *port);
/* A listening unix socket at path (an existing file there is replaced). */
int agx_fake_http_unix(const char *path);

/* Reads one request into out (NUL-terminated, at most n - 1 bytes): until the blank line after
 * the headers and, when there is one, the Content-Length body. */
void agx_fake_http_read(int fd, char *out, size_t n);
/* Writes the answer a spec describes (above); content_type may be NULL. */
void agx_fake_http_reply(int fd, const char *spec, const char *content_type);

/* One connection per answer, in order; last_request holds the latest request read. */
typedef struct agx_fake_http {
    int fd;
    pthread_t thread;
    const char *const *answers;
    int n_answers;
    int served;
    char last_request[4096];
} agx_fake_http;

/* Serves answers[0..n) on the listening socket fd (taking it over) from a thread. */
void agx_fake_http_start(agx_fake_http *s, int fd, const char *const *answers, int n);
/* Waits for every answer to be served (or the socket to be shut down), then closes the socket. */
void agx_fake_http_stop(agx_fake_http *s);
/* Shuts the socket down first, for a test that does not use every answer. */
void agx_fake_http_abort(agx_fake_http *s);

#endif
