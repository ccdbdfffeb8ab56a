/* rpc_error.h — the error map every failed call carries end to end (worker `error` frame → server
 * → host `*:error` event): {type, message, detail, cancelled} (docs/PROTOCOL.md §2), and its
 * conversion to the host's agx_error.
 *
 * Internal (runtime/wire): linked into libagentix (the client), agentix-server and agentix-worker. */
#ifndef AGX_RUNTIME_RPC_ERROR_H
#define AGX_RUNTIME_RPC_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#include "agentix/error.h"
#include "agentix/value.h"
#include "core/base/mpraw.h"
#include "runtime/wire/protocol.h"

/* Appends the map {type, message, detail, cancelled} to b. NULL/empty detail encodes nil; NULL
 * message encodes "". Strings are cut at the agx_error buffer sizes so a peer never has to. */
int agx_rpc_error_pack(agx_buf *b, const char *type, const char *message, const char *detail,
                       bool cancelled);
/* The standard cancellation error: {type:"Cancelled", message:"remote call cancelled",
 * detail:nil, cancelled:true}. */
int agx_rpc_error_pack_cancelled(agx_buf *b);
/* From a local agx_error: type is err->remote_type when set, else derived from the code
 * (AGX_ERR_CANCELLED → Cancelled, NOT_FOUND → NotFound, TIMEOUT → Timeout, LIMIT →
 * LimitExceeded, INVALID_ARGUMENT → BadRequest, anything else → InternalError). */
int agx_rpc_error_pack_agx(agx_buf *b, const agx_error *err);

/* Fills out from an encoded error map and returns the code it carries: AGX_ERR_CANCELLED when
 * `cancelled` is true, else AGX_ERR_REMOTE; remote_type, message and detail are copied (cut to
 * fit). A span that is not such a map gives AGX_ERR_PROTOCOL with out describing that. */
int agx_rpc_error_from_msgpack(agx_mp_span error, agx_error *out);
/* The same from a value tree (a map with the same keys). */
int agx_rpc_error_from_value(const agx_value *error, agx_error *out);

#endif
