/* protocol.h — the words of the runtime protocol (docs/PROTOCOL.md), each defined once here and
 * used by both ends: the host's client (runtime/client), agentix-server (runtime/server) and
 * agentix-worker (runtime/worker) — Socket.IO event names, the kind of a call, the fields of
 * event payloads and worker frames, worker frame types and the framework's error types.
 * No other file spells one of these words as a string literal (the error types are public:
 * error.h's AGX_REMOTE_*).
 *
 * Internal (runtime/wire); the shapes are module.h's agx_shape, public for module authors. */
#ifndef AGX_RUNTIME_WIRE_PROTOCOL_H
#define AGX_RUNTIME_WIRE_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>

#include "agentix/error.h"
#include "agentix/module.h"

/* ---- the kind of a call: a function's shape (agx_shape, same values), describe, or an expiry
 * extension (answered like a unary call, by the server itself) ---- */
typedef enum agx_wire_kind {
    AGX_KIND_UNARY = AGX_SHAPE_UNARY,
    AGX_KIND_STREAM = AGX_SHAPE_STREAM,
    AGX_KIND_BIDI = AGX_SHAPE_BIDI,
    AGX_KIND_DESCRIBE,
    AGX_KIND_EXPIRY,
    AGX_KIND_COUNT
} agx_wire_kind;

/* ---- Socket.IO events, host → runtime ---- */
#define AGX_EV_UNARY "unary"              /* {call_id, target, args, kwargs} */
#define AGX_EV_STREAM "stream"            /* {call_id, target, args, kwargs, window} */
#define AGX_EV_BIDI_START "bidi:start"    /* {call_id, target, shape, args, kwargs, window} */
#define AGX_EV_DESCRIBE "describe"        /* {call_id, target} */
#define AGX_EV_BIDI_IN "bidi:in"          /* {call_id, item} */
#define AGX_EV_BIDI_END_IN "bidi:end_in"  /* {call_id} */
#define AGX_EV_CANCEL "cancel"            /* {call_id} */
#define AGX_EV_CREDIT "credit"            /* {call_id, n} */
#define AGX_EV_EXPIRY "expiry"            /* {call_id, n}: the expiry becomes now + n ms */

/* ---- Socket.IO events, runtime → host: "<kind>:<suffix>" ---- */
#define AGX_EV_SEP ':'
#define AGX_SUFFIX_RESULT "result" /* unary, describe: {call_id, value} */
#define AGX_SUFFIX_ITEM "item"     /* stream: {call_id, value} */
#define AGX_SUFFIX_OUT "out"       /* bidi: {call_id, value} */
#define AGX_SUFFIX_END "end"       /* stream, bidi: {call_id} */
#define AGX_SUFFIX_ERROR "error"   /* every kind: {call_id, error} */
#define AGX_SUFFIX_CREDIT "credit" /* bidi input credit: {call_id, n} */
#define AGX_SUFFIX_SET "set"       /* expiry: {call_id, n} */
#define AGX_EV_UNARY_RESULT "unary:result"
#define AGX_EV_DESCRIBE_RESULT "describe:result"
#define AGX_EV_STREAM_ITEM "stream:item"
#define AGX_EV_STREAM_END "stream:end"
#define AGX_EV_BIDI_OUT "bidi:out"
#define AGX_EV_BIDI_END "bidi:end"
#define AGX_EV_BIDI_CREDIT "bidi:credit"
#define AGX_EV_UNARY_ERROR "unary:error"
#define AGX_EV_STREAM_ERROR "stream:error"
#define AGX_EV_BIDI_ERROR "bidi:error"
#define AGX_EV_DESCRIBE_ERROR "describe:error"
#define AGX_EV_EXPIRY_SET "expiry:set" /* {call_id, n}: ms until the expiry (agentix/expiry.h) */
#define AGX_EV_EXPIRY_ERROR "expiry:error" /* {call_id, error}: a bad n, or a runtime ending */

/* ---- fields of event payloads and worker frames ---- */
#define AGX_F_CALL_ID "call_id"
#define AGX_F_TARGET "target"   /* "module::function" */
#define AGX_F_SHAPE "shape"     /* "unary" | "stream" | "bidi" (agx_shape_name) */
#define AGX_F_ARGS "args"
#define AGX_F_KWARGS "kwargs"
#define AGX_F_WINDOW "window"
#define AGX_F_ITEM "item"
#define AGX_F_VALUE "value"
#define AGX_F_ERROR "error"
#define AGX_F_N "n"
#define AGX_F_TYPE "type"       /* a worker frame's type; an error map's type */
#define AGX_F_ID "id"           /* worker frames: the server's call number */
#define AGX_F_PID "pid"
#define AGX_F_RING_AT "ring_at"   /* worker item: its binary value is in the bulk ring (ring.h) */
#define AGX_F_RING_LEN "ring_len" /* … at that position, of that many bytes */
#define AGX_F_TOKEN "token"     /* the Socket.IO CONNECT data */
/* the error map {type, message, detail, cancelled} */
#define AGX_F_MESSAGE "message"
#define AGX_F_DETAIL "detail"
#define AGX_F_CANCELLED "cancelled"
/* describe's answer */
#define AGX_F_NAME "name"
#define AGX_F_PARAMS "params"
#define AGX_F_REQUIRED "required"
#define AGX_F_DEFAULT "default"
#define AGX_F_RESULT "result"
#define AGX_F_INPUT "input"
#define AGX_F_DOC "doc"

#define AGX_TARGET_SEP "::" /* module::function */

/* ---- worker frame types (server ↔ worker, PROTOCOL.md §4) ---- */
#define AGX_FR_CALL "call"
#define AGX_FR_IN "in"
#define AGX_FR_END_IN "end_in"
#define AGX_FR_CREDIT "credit"
#define AGX_FR_CANCEL "cancel"
#define AGX_FR_DESCRIBE "describe"
#define AGX_FR_SHUTDOWN "shutdown"
#define AGX_FR_READY "ready"
#define AGX_FR_BOOT_ERROR "boot_error"
#define AGX_FR_RESULT "result"
#define AGX_FR_ERROR "error"
#define AGX_FR_ITEM "item"
#define AGX_FR_END "end"
#define AGX_FR_IN_CREDIT "in_credit"
#define AGX_FR_DESCRIPTION "description"

/* ---- the framework's error types: public (error.h's AGX_REMOTE_*), since hosts read them in
 * err->remote_type and modules fail with them; named here for the protocol's code ---- */
#define AGX_RPC_BAD_REQUEST AGX_REMOTE_BAD_REQUEST
#define AGX_RPC_NOT_FOUND AGX_REMOTE_NOT_FOUND
#define AGX_RPC_SHAPE_MISMATCH AGX_REMOTE_SHAPE_MISMATCH
#define AGX_RPC_VALIDATION AGX_REMOTE_VALIDATION
#define AGX_RPC_MODULE_ERROR AGX_REMOTE_MODULE_ERROR
#define AGX_RPC_WORKER_EXITED AGX_REMOTE_WORKER_EXITED
#define AGX_RPC_CANCELLED AGX_REMOTE_CANCELLED
#define AGX_RPC_TIMEOUT AGX_REMOTE_TIMEOUT
#define AGX_RPC_LIMIT AGX_REMOTE_LIMIT
#define AGX_RPC_INTERNAL AGX_REMOTE_INTERNAL
#define AGX_RPC_GENERIC AGX_REMOTE_GENERIC

/* ---- per kind ---- */
/* "unary", "stream", "bidi" (agx_shape_name), "describe": the prefix of the runtime's events. */
const char *agx_wire_kind_name(agx_wire_kind k);
/* The event that starts a call of this kind: unary, stream, bidi:start, describe. */
const char *agx_wire_start_event(agx_wire_kind k);
/* The kind a start event names; false for any other event. */
bool agx_wire_kind_of_start(const char *event, agx_wire_kind *out);
/* "<kind>:error", the terminal error event of every kind. */
const char *agx_wire_error_event(agx_wire_kind k);
/* The shape "unary" / "stream" / "bidi" names (len bytes, not NUL-terminated); false otherwise. */
bool agx_wire_shape_of(const char *name, size_t len, agx_shape *out);

#endif
