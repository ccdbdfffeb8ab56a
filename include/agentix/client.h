/* client.h — the host's side of the runtime protocol: connect to a sandbox's runtime_url and call
 * its functions as unary, streaming or bidirectional calls (the C `RuntimeClient.remote`).
 *
 * Flow: host threads → agx_client (one Socket.IO connection, a cheap object on an agx_engine's
 * I/O thread, engine.h) → agentix-server in the sandbox → worker → user function, and back.
 * Runtime URLs: http://, https:// (TLS, certificate always verified: ca_file / ca_dir below),
 * ws://, wss://, and http+unix://<percent-encoded socket path>[/prefix] (PROTOCOL.md §1).
 *
 * Threading: connect, call, stream, cancel and free from any number of host threads at once; one
 * agx_client multiplexes any number of concurrent calls. An agx_call handle is used by one
 * thread at a time. Callback forms run their callbacks where the engine's delivery says
 * (engine.h): by default on the connection's I/O thread — keep them short and never block there
 * (the blocking calls refuse to run on an I/O thread).
 * Nothing waits forever: blocking calls take a timeout (ms; 0 = the client's default, <0 = none),
 * and a lost connection fails every call it carried with AGX_ERR_UNAVAILABLE (and only those).
 * A failed remote function reports AGX_ERR_REMOTE with err->remote_type ("ValidationError",
 * "ShapeMismatch", "NotFound", "WorkerExited", or the module's own type) and its message;
 * a cancelled call reports AGX_ERR_CANCELLED. */
#ifndef AGENTIX_CLIENT_H
#define AGENTIX_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/deployment.h"
#include "agentix/engine.h"
#include "agentix/error.h"
#include "agentix/export.h"
#include "agentix/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_client agx_client;
typedef struct agx_call agx_call;

typedef struct agx_client_options {
    uint32_t struct_size;       /* set by agx_client_options_init */
    const char *token;          /* sent in the Socket.IO CONNECT as {token}; NULL = none */
    const agx_kv *headers;      /* extra HTTP headers for the WebSocket upgrade; copied */
    /* "HOST:PORT:CONNECT_HOST:CONNECT_PORT": reach HOST:PORT of the URL at another address while
     * the URL (Host header, TLS name) stays as it is — the same rule as curl's CONNECT_TO.
     * Also read from $AGENTIX_CONNECT_TO when NULL. */
    const char *connect_to;
    int connect_timeout_ms;     /* default 10000 */
    int call_timeout_ms;        /* default for unary calls given timeout 0; default 0 = none */
    size_t max_payload;         /* largest event accepted, default 64 MiB */
    uint32_t stream_window;     /* stream/bidi items the runtime may send ahead, default 64 */
    agx_engine *engine;         /* the engine the connection runs on; NULL = the default one */
    /* https: CA bundle file / hashed CA folder to verify the server against (the certificate
     * must also name the URL's host); both NULL = the engine's, else $AGENTIX_CA_FILE /
     * $AGENTIX_CA_DIR, else OpenSSL's default store (engine.h). Verification is never off. */
    const char *ca_file;
    const char *ca_dir;
} agx_client_options;
AGX_API void agx_client_options_init(agx_client_options *opts);

/* Connects (WebSocket upgrade, Engine.IO open, Socket.IO CONNECT with the token) or fails within
 * connect_timeout_ms. http:// and https:// URLs are accepted (ws/wss is derived). */
AGX_API int agx_client_connect(const char *runtime_url, const agx_client_options *opts, agx_client **out,
                       agx_error *err);
/* Same, taking the URL, token and headers from a sandbox (opts may be NULL). */
AGX_API int agx_client_connect_sandbox(const agx_sandbox *sb, const agx_client_options *opts,
                               agx_client **out, agx_error *err);
/* Connects without blocking: *out is the client at once, and cb (NULL = none) is called exactly
 * once when the Socket.IO CONNECT is done (status 0) or the connection failed (status < 0, err
 * says why; the client stays usable only for agx_client_free). Calls may be started right away:
 * they are sent once connected, or fail with the connection's error. Immediate errors (bad URL or
 * options, no engine) are returned, with *out NULL and no callback. */
typedef void (*agx_connect_cb)(void *user, agx_client *c, int status, const agx_error *err);
AGX_API int agx_client_connect_async(const char *runtime_url, const agx_client_options *opts,
                             agx_connect_cb cb, void *user, agx_client **out, agx_error *err);
AGX_API int agx_client_connect_sandbox_async(const agx_sandbox *sb, const agx_client_options *opts,
                                     agx_connect_cb cb, void *user, agx_client **out,
                                     agx_error *err);
/* Disconnects (a connect still in progress is abandoned, its callback reports
 * AGX_ERR_CANCELLED): calls in flight end with AGX_ERR_CANCELLED. With delivery on the I/O
 * threads, no callback of this client runs once this returns (when called from a callback of
 * another connection on another I/O thread it does not wait, so that thread's callbacks for this
 * client may still finish); with a completion queue, the cancelled calls' callbacks still come
 * through agx_engine_process. agx_call handles stay valid until freed (before or after the
 * client). Safe from any thread, callbacks included. NULL is a no-op. */
AGX_API void agx_client_free(agx_client *c);
AGX_API bool agx_client_is_connected(const agx_client *c);

/* ---- unary ---- */
/* target is "module::function"; args an array or NULL; kwargs a map or NULL. *result is owned by
 * the caller. */
AGX_API int agx_client_call(agx_client *c, const char *target, const agx_value *args,
                    const agx_value *kwargs, int timeout_ms, agx_value **result, agx_error *err);

/* ---- stream and bidi ---- */
AGX_API int agx_client_stream(agx_client *c, const char *target, const agx_value *args,
                      const agx_value *kwargs, agx_call **out, agx_error *err);
AGX_API int agx_client_bidi(agx_client *c, const char *target, const agx_value *args,
                    const agx_value *kwargs, agx_call **out, agx_error *err);
/* Next item: returns 1 with *item (caller owns), 0 at the end, or a negative error. Consuming an
 * item returns credit to the runtime, so a slow reader slows the remote producer. */
AGX_API int agx_call_next(agx_call *call, int timeout_ms, agx_value **item, agx_error *err);
/* Bidi input. Blocks (up to timeout) while the remote function has not consumed earlier items. */
AGX_API int agx_call_send(agx_call *call, const agx_value *item, int timeout_ms, agx_error *err);
AGX_API int agx_call_close_send(agx_call *call, agx_error *err);
/* Asks the runtime to cancel; the call then ends with AGX_ERR_CANCELLED. Harmless when done. */
AGX_API int agx_call_cancel(agx_call *call);
/* Cancels the call if it has not ended, and frees it. */
AGX_API void agx_call_free(agx_call *call);

/* ---- callback forms, for hosts with their own event loop ---- */
/* Called exactly once. result is owned by the callback (NULL on failure). */
typedef void (*agx_unary_cb)(void *user, int status, agx_value *result, const agx_error *err);
AGX_API int agx_client_call_async(agx_client *c, const char *target, const agx_value *args,
                          const agx_value *kwargs, int timeout_ms, agx_unary_cb cb, void *user,
                          agx_error *err);

typedef enum agx_call_event {
    AGX_CALL_SEND_READY = 2, /* bidi: the function consumed input; agx_call_send_nowait may go on */
    AGX_CALL_ITEM = 1,  /* item is owned by the callback */
    AGX_CALL_END = 0,   /* the last callback of a call that succeeded */
    AGX_CALL_ERROR = -1 /* the last callback of a call that failed; err says why */
} agx_call_event;
/* Items arrive in order; credit for an item is returned when its callback returns. */
typedef void (*agx_stream_cb)(void *user, agx_call_event ev, agx_value *item, const agx_error *err);
/* *out (may be NULL) can be used with agx_call_cancel; agx_call_free it after the last callback
 * (or before: the call is then cancelled and its last callback still runs). */
AGX_API int agx_client_stream_async(agx_client *c, const char *target, const agx_value *args,
                            const agx_value *kwargs, agx_stream_cb cb, void *user, agx_call **out,
                            agx_error *err);
/* Bidi with callbacks: outputs arrive as AGX_CALL_ITEM, then one END or ERROR. Input goes in with
 * agx_call_send_nowait and ends with agx_call_close_send. out is required. */
AGX_API int agx_client_bidi_async(agx_client *c, const char *target, const agx_value *args,
                          const agx_value *kwargs, agx_stream_cb cb, void *user, agx_call **out,
                          agx_error *err);
/* Bidi input without blocking: queues item and returns 0 while the remote function has input
 * credit (PROTOCOL.md §3), else AGX_ERR_LIMIT ("no input credit"): the call's callback then gets
 * AGX_CALL_SEND_READY once the function has consumed earlier items. Other errors as for
 * agx_call_send. Works on blocking bidi calls too. */
AGX_API int agx_call_send_nowait(agx_call *call, const agx_value *item, agx_error *err);

/* ---- describe ---- */
/* The function's shape and signature:
 * {name, shape:"unary"|"stream"|"bidi", params:[{name, type, required, default?}], result, doc}. */
AGX_API int agx_client_describe(agx_client *c, const char *target, int timeout_ms, agx_value **out,
                        agx_error *err);

/* ---- expiry ---- */
/* Moves the sandbox's expiry (expiry.h) to now + expiry_ms over this connection (the `expiry`
 * event, docs/PROTOCOL.md §1.1) and answers, in *left_ms (may be NULL), the ms until the new
 * expiry. The host library does this in the background for the sandboxes it created while a
 * connection made by agx_client_connect_sandbox is open to them (agx_renewal_stats); call it for
 * a sandbox created elsewhere. timeout_ms as for agx_client_call. Errors: AGX_ERR_INVALID_ARGUMENT
 * for an expiry outside AGX_EXPIRY_MIN_MS..AGX_EXPIRY_MAX_MS, AGX_ERR_REMOTE when the runtime
 * refuses (it is shutting down), the connection's errors otherwise. */
AGX_API int agx_client_extend_expiry(agx_client *c, int64_t expiry_ms, int timeout_ms,
                                     int64_t *left_ms, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
