/* sio_client.h — the dialling side of the transport, used by the host's RPC client (agx_client,
 * through its engine) to reach agentix-server: opens a socket (TCP, TCP + TLS, or a Unix socket),
 * performs the websocket upgrade on /socket.io/?EIO=4&transport=websocket, sends CONNECT {token},
 * answers the server's pings, watches for a dead server, and then behaves as one agx_sio_conn
 * (sio_conn.h). Plain libuv and OpenSSL: no libwebsockets on this side. Internal header.
 *
 * Dialers: the per-loop state many clients share — one receive buffer (a socket's bytes are
 * consumed within its read callback, so one buffer per loop serves every connection), the list of
 * connections waiting for a writeable turn, and the TLS contexts (one per CA setting). The engine
 * keeps one dialer per I/O thread; a client connected without one gets a private dialer.
 *
 * Threading: every function here must be called on the loop's thread, and all handlers run
 * there. Other threads reach the transport by posting to that loop (uv_async_send). Nothing here
 * blocks, except agx_sio_client_free of a client with a private dialer (see there). Writes to a
 * socket the server closed raise SIGPIPE on the loop's thread: block or ignore it there (the
 * engine's threads block it).
 *
 * Lifecycle: connect → (handlers.on_connect, events…) → handlers.on_close exactly once, whether
 * the dial failed, the server refused, the link died, or agx_sio_client_close was called (unless
 * agx_sio_client_free came first) → agx_sio_client_free. */
#ifndef AGX_TRANSPORT_SIO_CLIENT_H
#define AGX_TRANSPORT_SIO_CLIENT_H

#include <jansson.h>
#include <uv.h>

#include "agentix/error.h"
#include "runtime/transport/sio_conn.h"

typedef struct agx_sio_client agx_sio_client;
typedef struct agx_sio_dialer agx_sio_dialer;

/* A dialer for clients on `loop` (its thread). */
int agx_sio_dialer_new(uv_loop_t *loop, agx_sio_dialer **out, agx_error *err);
/* Closes the dialer's handle; the memory goes once the loop has run its close callback and the
 * last client using it was released. Loop thread. NULL is a no-op. */
void agx_sio_dialer_free(agx_sio_dialer *d);
/* fn(ud) runs on the loop after every read callback of the dialer's connections: a busy socket
 * is read many times per loop iteration (libuv reads until the kernel has nothing left), and work
 * the owner queued meanwhile — stream credit above all — should not wait for all of it. fn must
 * not free the dialer. NULL = none. */
void agx_sio_dialer_set_read_hook(agx_sio_dialer *d, void (*fn)(void *ud), void *ud);

typedef struct agx_sio_header {
    const char *name;  /* without the colon, e.g. "Authorization" */
    const char *value;
} agx_sio_header;

typedef struct agx_sio_client_config {
    /* http://host:port[/prefix] or https://…; ws:// and wss:// too; http+unix://<percent-encoded
     * absolute socket path>[/prefix] for a Unix socket (PROTOCOL.md §1). The websocket path is
     * always <prefix>/socket.io/. */
    const char *url;
    const char *token;           /* CONNECT data {"token": token}; NULL = CONNECT with no data */
    const agx_sio_header *headers; /* extra headers on the upgrade request; copied */
    size_t nheaders;
    /* "HOST:PORT:CONNECT_HOST:CONNECT_PORT" (curl CONNECT_TO): when the URL's host and port
     * match HOST:PORT (an empty HOST or PORT matches any), dial CONNECT_HOST:CONNECT_PORT
     * instead while the Host header and TLS name stay the URL's. NULL = none. */
    const char *connect_to;
    /* https: CA bundle file and/or hashed CA folder the server's certificate must chain to;
     * both NULL = OpenSSL's default store (which honours SSL_CERT_FILE / SSL_CERT_DIR). The
     * certificate's name must match the URL's host. Verification is never off. */
    const char *ca_file;
    const char *ca_dir;
    uint32_t connect_timeout_ms; /* from dial to the CONNECT reply; 0 = 10000 */
    agx_sio_limits limits;       /* zeros = defaults (sio_conn.h) */
    agx_sio_handlers handlers;   /* on_close reports failures to connect too */
    agx_sio_dialer *dialer;      /* shared per-loop state; NULL = a private one */
} agx_sio_client_config;

/* Starts connecting; returns at once. Success of the connection is reported by on_connect,
 * failure (timeout, refused, TLS verification, CONNECT_ERROR such as "invalid token", a CONNECT
 * reply without sid) by on_close. The config is copied. Errors returned here are only immediate
 * ones: AGX_ERR_INVALID_ARGUMENT (bad URL, connect_to or header), AGX_ERR_LIMIT (token or
 * headers too long), AGX_ERR_UNAVAILABLE (TLS context: a CA file that cannot be read),
 * AGX_ERR_NO_MEMORY. Loop thread (or before the loop runs). */
int agx_sio_client_connect(uv_loop_t *loop, const agx_sio_client_config *cfg,
                           agx_sio_client **out, agx_error *err);

/* The checks connect makes before dialling that need no loop (URL, connect-to, headers, token):
 * the same errors, from any thread, so a caller can refuse a bad config at once. */
int agx_sio_client_config_check(const agx_sio_client_config *cfg, agx_error *err);

/* The connection; valid from on_connect until on_close returns, NULL outside that window. */
agx_sio_conn *agx_sio_client_conn(agx_sio_client *c);

/* Clean close: sends DISCONNECT ("41") after what is queued, then closes the socket. on_close
 * follows (why->code AGX_OK) unless it already ran. Idempotent. Loop thread. */
void agx_sio_client_close(agx_sio_client *c);

/* Releases the client: no handler runs after this. A connection still open is cut (DISCONNECT
 * is not sent: call agx_sio_client_close first and free in or after on_close for a clean end).
 * The memory goes once the loop has closed the client's handles. With a shared dialer this
 * returns at once and may be called from any loop callback, the client's own handlers included.
 * With a private dialer it also runs the loop (UV_RUN_DEFAULT) until those handles are closed,
 * so it must then not be called from inside a loop callback. NULL is a no-op. Loop thread. */
void agx_sio_client_free(agx_sio_client *c);

#endif
