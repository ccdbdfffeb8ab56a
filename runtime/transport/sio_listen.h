/* sio_listen.h — agentix-server's listening socket, owned here rather than by libwebsockets so the
 * accept loop can survive a peer that exhausts file descriptors: accepted sockets are handed to
 * the server role (sio_server.c), which adopts them into lws. On EMFILE / ENFILE (or no memory
 * for a socket) accepting pauses with a growing backoff instead of spinning on a listen socket
 * that stays readable, and the condition is logged at a bounded rate. The server also pauses it
 * while it holds as many connections as its fd budget allows, so excess peers wait in the
 * kernel's backlog instead of being accepted and dropped. TCP (IPv4 or IPv6) or a Unix socket.
 * Internal header; loop thread only. */
#ifndef AGX_TRANSPORT_SIO_LISTEN_H
#define AGX_TRANSPORT_SIO_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "agentix/error.h"

typedef struct sio_listener sio_listener;

typedef struct sio_listen_config {
    const char *host;      /* numeric or resolvable address; NULL, "", "0.0.0.0", "::" = any */
    int port;              /* 0 = ephemeral */
    const char *unix_path; /* non-NULL: a Unix socket here instead of TCP (absolute, < sun_path);
                              a socket file left by an earlier server is replaced, any other file
                              refused */
    /* Takes an accepted, non-blocking, close-on-exec socket (owns it from here on). */
    void (*on_accept)(int fd, void *ud);
    void *ud;
} sio_listen_config;

/* Binds and listens. Errors: AGX_ERR_INVALID_ARGUMENT (bad address or path), AGX_ERR_IO (bind
 * failed: address in use, permission). */
int sio_listener_open(uv_loop_t *loop, const sio_listen_config *cfg, sio_listener **out,
                      agx_error *err);
/* The TCP port bound (0 for a Unix socket). */
int sio_listener_port(const sio_listener *l);
/* While held, no connection is accepted (they wait in the backlog). Counted: each hold needs a
 * release. */
void sio_listener_hold(sio_listener *l);
void sio_listener_release(sio_listener *l);
/* Stops listening, closes the socket (removing a Unix socket's file) and frees l once its handles
 * have closed. NULL is a no-op. */
void sio_listener_close(sio_listener *l);

/* Raises this process's soft RLIMIT_NOFILE to its hard limit; the resulting soft limit. */
long sio_raise_fd_limit(void);

#endif
