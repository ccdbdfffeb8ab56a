/* sio_server.h — the listening side of the transport, used by agentix-server in the sandbox:
 * accepts Socket.IO v5 / Engine.IO v4 websocket connections from hosts, checks their token,
 * runs the heartbeat, and hands events to the RPC layer as agx_sio_conn (sio_conn.h). Also serves
 * GET /health. Built on libwebsockets (libuv event lib, foreign loop) on the caller's uv loop.
 * Internal header.
 *
 * Threading: every function here runs on the loop's thread, handlers too (see sio_conn.h).
 *
 * Wire behaviour (PROTOCOL.md §1): websocket upgrade only on /socket.io/ with EIO=4 and
 * transport=websocket (anything else is refused at the HTTP stage); open packet with sid,
 * upgrades [], pingInterval, pingTimeout, maxPayload; the server pings, no pong within
 * pingTimeout closes; no CONNECT within connect_timeout closes; CONNECT to a namespace other than
 * "/" gets CONNECT_ERROR {"message":"Invalid namespace"} (the connection stays); a refused token
 * gets CONNECT_ERROR {"message":"invalid token"} and the connection closes; GET /health answers
 * 200 {"status":"ok","version":…} (HEAD: the same headers); other GET and POST requests go to the
 * owner's on_http, and what it does not serve is 404; a request with a body is refused (413) and
 * closed. Before its CONNECT a connection may send only Engine.IO control packets and one CONNECT
 * of at most AGX_SIO_PREAUTH_MAX bytes (sio_conn.h): anything else closes it. */
#ifndef AGX_TRANSPORT_SIO_SERVER_H
#define AGX_TRANSPORT_SIO_SERVER_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "agentix/error.h"
#include "runtime/transport/sio_conn.h"

typedef struct agx_sio_server agx_sio_server;

/* ---- HTTP routes besides /health (agentix-server's POST /expiry and /claim) ---- */
#define AGX_SIO_HTTP_BODY_MAX 512
/* A request being answered; valid only during the on_http call. */
typedef struct agx_sio_http_request agx_sio_http_request;
/* The value of a request header (case-insensitive name) into out, NUL-terminated: its length, or
 * -1 when absent or not shorter than n. */
int agx_sio_http_header(const agx_sio_http_request *r, const char *name, char *out, size_t n);
/* Answers a GET or POST (no body) to path: the HTTP status, with a JSON body of at most
 * AGX_SIO_HTTP_BODY_MAX bytes written NUL-terminated into body (may stay ""); 0 = not served
 * (404). Called on the loop thread, before any authentication: check it yourself. */
typedef int (*agx_sio_http_fn)(const agx_sio_http_request *r, const char *method, const char *path,
                               char *body, size_t body_cap, void *ud);

typedef struct agx_sio_server_config {
    const char *host;            /* address to bind; NULL = "127.0.0.1" */
    int port;                    /* 0 = ephemeral (see agx_sio_server_port) */
    /* Listen on this Unix socket path instead of TCP (host and port are then ignored): absolute,
     * shorter than sun_path. A socket file left there by an earlier server is replaced; any other
     * kind of file is an error. NULL = TCP. */
    const char *unix_path;
    const char *version;         /* reported by /health; NULL = AGX_VERSION of the library */
    uint32_t ping_interval_ms;   /* 0 = 25000 */
    uint32_t ping_timeout_ms;    /* 0 = 20000 */
    uint32_t connect_timeout_ms; /* no Socket.IO CONNECT within this closes; 0 = 45000 */
    agx_sio_limits limits;       /* zeros = defaults (sio_conn.h) */
    /* Decides a CONNECT: auth is the CONNECT data (an object) or NULL when it had none. Return
     * true to accept. NULL = accept everyone. Typically compares auth.token with the server's
     * token in constant time. Called on the loop thread. */
    bool (*authorize)(const json_t *auth, void *ud);
    agx_sio_http_fn on_http;     /* NULL = /health only; gets handlers.ud */
    agx_sio_handlers handlers;   /* handlers.ud is also passed to authorize */
} agx_sio_server_config;

/* Binds and starts listening; the server then runs as the loop runs. The config is copied
 * (strings too). Errors: AGX_ERR_IO (bind failed: address in use, bad host),
 * AGX_ERR_INVALID_ARGUMENT, AGX_ERR_UNAVAILABLE (the lws libuv plugin could not be loaded).
 * The number of sockets held at once is bounded by the process's RLIMIT_NOFILE at this call
 * (raise it first: sio_listen.h's sio_raise_fd_limit): at the bound, accepting pauses; out of
 * descriptors anyway, it backs off.
 * Call it on the loop's thread but not from inside a loop callback (typically before uv_run):
 * if lws fails to listen after the bind probe passed, it turns the loop a few times
 * (UV_RUN_NOWAIT) to release the handles lws had opened. */
int agx_sio_server_start(uv_loop_t *loop, const agx_sio_server_config *cfg, agx_sio_server **out,
                         agx_error *err);

/* The TCP port actually bound (useful with port 0); 0 on a Unix socket. */
int agx_sio_server_port(const agx_sio_server *s);

/* Number of websocket connections currently open (including ones not yet CONNECTed). */
size_t agx_sio_server_connection_count(const agx_sio_server *s);

/* Graceful shutdown, asynchronous: stops accepting, sends DISCONNECT and closes every connection
 * (each gets on_close with AGX_OK), stops all timers and starts the lws context teardown.
 * Afterwards the server holds no active handle that keeps the loop alive once teardown is done,
 * so uv_run(loop, UV_RUN_DEFAULT) returns once the caller's own handles are closed too.
 * Idempotent. Loop thread. */
void agx_sio_server_shutdown(agx_sio_server *s);

/* Releases the server. Call after agx_sio_server_shutdown once uv_run has returned (the loop has
 * drained; lws needs those iterations to close its libuv handles), before uv_loop_close. Called
 * earlier (no shutdown, or its teardown not yet started) it shuts down and runs the loop
 * (UV_RUN_DEFAULT) itself, so then it must not be called from inside a loop callback. NULL is a
 * no-op. */
void agx_sio_server_free(agx_sio_server *s);

#endif
