/* sio_client.h — the dialling side of the transport, used by the host's RPC client
 * (agx_client) to reach agentix-server: opens the websocket on /socket.io/?EIO=4&transport=
 * websocket, sends CONNECT {token}, answers the server's pings, watches for a dead server, and
 * then behaves as one agx_sio_conn (sio_conn.h). libwebsockets client on the caller's uv loop.
 * Internal header.
 *
 * Threading: every function here must be called on the loop's thread (the loop passed to
 * agx_sio_client_connect), and all handlers run there. The RPC client owns that loop and its
 * thread; other threads reach the transport by uv_async_send to that loop, whose callback then
 * calls agx_sio_conn_emit etc. Nothing here blocks.
 *
 * Lifecycle: connect → (handlers.on_connect, events…) → handlers.on_close exactly once, whether
 * the dial failed, the server refused, the link died, or agx_sio_client_close was called →
 * agx_sio_client_free after the loop drained. */
#ifndef AGX_TRANSPORT_SIO_CLIENT_H
#define AGX_TRANSPORT_SIO_CLIENT_H

#include <jansson.h>
#include <uv.h>

#include "agentix/error.h"
#include "runtime/transport/sio_conn.h"

typedef struct agx_sio_client agx_sio_client;

typedef struct agx_sio_header {
    const char *name;  /* without the colon, e.g. "Authorization" */
    const char *value;
} agx_sio_header;

typedef struct agx_sio_client_config {
    const char *url;             /* http://host:port[/] or https://…; ws:// and wss:// too.
                                    The websocket path is always /socket.io/ */
    const char *token;           /* CONNECT data {"token": token}; NULL = CONNECT with no data */
    const agx_sio_header *headers; /* extra headers on the upgrade request; copied */
    size_t nheaders;
    /* "HOST:PORT:CONNECT_HOST:CONNECT_PORT" (curl CONNECT_TO): when the URL's host and port
     * match HOST:PORT (an empty HOST or PORT matches any), dial CONNECT_HOST:CONNECT_PORT
     * instead while the Host header and TLS name stay the URL's. NULL = none. */
    const char *connect_to;
    const char *ca_file;         /* https: PEM bundle to verify the server; NULL = system default */
    uint32_t connect_timeout_ms; /* from dial to the CONNECT reply; 0 = 10000 */
    agx_sio_limits limits;       /* zeros = defaults (sio_conn.h) */
    agx_sio_handlers handlers;   /* on_close reports failures to connect too */
} agx_sio_client_config;

/* Starts connecting; returns at once. Success of the connection is reported by on_connect,
 * failure (timeout, refused, CONNECT_ERROR such as "invalid token", a CONNECT reply without sid)
 * by on_close. The config is copied. Errors returned here are only immediate ones:
 * AGX_ERR_INVALID_ARGUMENT (bad URL or connect_to), AGX_ERR_UNAVAILABLE (lws context / libuv
 * plugin), AGX_ERR_NO_MEMORY. Loop thread (or before the loop runs). */
int agx_sio_client_connect(uv_loop_t *loop, const agx_sio_client_config *cfg,
                           agx_sio_client **out, agx_error *err);

/* The connection; valid from on_connect until on_close returns, NULL outside that window. */
agx_sio_conn *agx_sio_client_conn(agx_sio_client *c);

/* Clean close: sends DISCONNECT ("41") after what is queued, closes the websocket, stops the
 * timers and starts the lws teardown. on_close follows (why->code AGX_OK) unless it already ran.
 * Idempotent. Loop thread. */
void agx_sio_client_close(agx_sio_client *c);

/* Releases the client. Call once uv_run has returned after agx_sio_client_close (or after
 * on_close): lws needs those loop iterations to close its handles. Without a prior close it closes
 * and then runs the loop (UV_RUN_DEFAULT) itself, so it must not be called from inside a loop
 * callback in that case. NULL is a no-op. */
void agx_sio_client_free(agx_sio_client *c);

#endif
