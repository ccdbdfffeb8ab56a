/* client.h — the host's side of the runtime protocol: connect to a sandbox's runtime_url and call
 * its functions as unary, streaming or bidirectional calls (the C `RuntimeClient.remote`).
 *
 * Flow: host threads → agx_client (one Socket.IO connection, served by the client's own event-loop
 * thread) → agentix-server in the sandbox → worker → user function, and back.
 *
 * Threading: one agx_client multiplexes any number of concurrent calls from any number of host
 * threads. An agx_call handle is used by one thread at a time. Callback forms run their callback
 * on the client's event-loop thread: keep it short and never block in it.
 * Nothing waits forever: blocking calls take a timeout (ms; 0 = the client's default, <0 = none),
 * and a lost connection fails every call in flight with AGX_ERR_UNAVAILABLE.
 * A failed remote function reports AGX_ERR_REMOTE with err->remote_type ("ValidationError",
 * "ShapeMismatch", "NotFound", "WorkerExited", or the module's own type) and its message;
 * a cancelled call reports AGX_ERR_CANCELLED. */
#ifndef AGENTIX_CLIENT_H
#define AGENTIX_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/deployment.h"
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
} agx_client_options;
AGX_API void agx_client_options_init(agx_client_options *opts);

/* Connects (WebSocket upgrade, Engine.IO open, Socket.IO CONNECT with the token) or fails within
 * connect_timeout_ms. http:// and https:// URLs are accepted (ws/wss is derived). */
AGX_API int agx_client_connect(const char *runtime_url, const agx_client_options *opts, agx_client **out,
                       agx_error *err);
/* Same, taking the URL, token and headers from a sandbox (opts may be NULL). */
AGX_API int agx_client_connect_sandbox(const agx_sandbox *sb, const agx_client_options *opts,
                               agx_client **out, agx_error *err);
/* Disconnects: calls in flight fail with AGX_ERR_CANCELLED, then the loop thread is joined.
 * Every agx_call must be freed before the client. */
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
    AGX_CALL_ITEM = 1,  /* item is owned by the callback */
    AGX_CALL_END = 0,   /* the last callback of a call that succeeded */
    AGX_CALL_ERROR = -1 /* the last callback of a call that failed; err says why */
} agx_call_event;
/* Items arrive in order; credit for an item is returned when its callback returns. */
typedef void (*agx_stream_cb)(void *user, agx_call_event ev, agx_value *item, const agx_error *err);
/* *out (may be NULL) can be used with agx_call_cancel; agx_call_free it after the last callback. */
AGX_API int agx_client_stream_async(agx_client *c, const char *target, const agx_value *args,
                            const agx_value *kwargs, agx_stream_cb cb, void *user, agx_call **out,
                            agx_error *err);

/* ---- describe ---- */
/* The function's shape and signature:
 * {name, shape:"unary"|"stream"|"bidi", params:[{name, type, required, default?}], result, doc}. */
AGX_API int agx_client_describe(agx_client *c, const char *target, int timeout_ms, agx_value **out,
                        agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
