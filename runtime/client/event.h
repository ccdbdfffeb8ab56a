/* event.h — the host client's decoder of one runtime → host event (docs/PROTOCOL.md §2): the event
 * name and its msgpack payload in, the call it is for and what it says out. Pure — no call table,
 * no lock, no I/O — so it is fuzzed on its own (tests/fuzz/client_event): the runtime may be
 * hostile, and whatever it sends must end as "not ours" (dropped), a well-formed event, or a
 * protocol error that fails one call. inbox.c routes what this decodes. */
#ifndef AGX_CLIENT_EVENT_H
#define AGX_CLIENT_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "agentix/error.h"
#include "agentix/value.h"
#include "runtime/wire/protocol.h"

typedef enum agx_client_event_kind {
    AGX_CEV_RESULT, /* <unary|describe>:result {value}; expiry:set {n} (value: n as an int) */
    AGX_CEV_ITEM,   /* stream:item / bidi:out {value} */
    AGX_CEV_END,    /* stream:end / bidi:end */
    AGX_CEV_ERROR,  /* <shape>:error {error} */
    AGX_CEV_CREDIT  /* bidi:credit {n} */
} agx_client_event_kind;

typedef struct agx_client_event {
    uint64_t id;                  /* the call (its call_id, base 36) */
    agx_wire_kind shape;          /* the kind its name starts with */
    agx_client_event_kind kind;
    agx_value *value;             /* RESULT, ITEM: decoded, owned by the caller */
    int error_code;               /* ERROR: what agx_rpc_error_from_msgpack said (AGX_ERR_REMOTE, …) */
    agx_error error;              /* ERROR: the runtime's error */
    uint64_t n;                   /* CREDIT, expiry:set */
} agx_client_event;

#define AGX_CEV_NOT_OURS 1 /* no call_id this client could have issued: drop the event */

/* Optional: takes a large string or binary value without a copy. When the value is a str or bin of
 * at least min bytes and the last thing in the payload, fn(ud, type, bytes, n) is asked for it
 * (the client hands its receive buffer over: agx_sio_conn_adopt_tail); NULL from fn = decode a
 * copy as usual. After fn returns a value, the decoder reads nothing more of the payload. */
typedef struct agx_client_adopt {
    agx_value *(*fn)(void *ud, agx_value_type type, const void *data, size_t len);
    void *ud;
    size_t min;
} agx_client_adopt;

/* Decodes event (the Socket.IO event name) with its payload (data, len; the one attachment).
 * 0: *out is a well-formed event. AGX_CEV_NOT_OURS: nothing to route. A negative code: the event is
 * for call out->id but malformed (err says how): fail that call. limits bound value decoding (and
 * an adopted value alike); adopt may be NULL. */
int agx_client_event_decode(const char *event, const unsigned char *data, size_t len,
                            const agx_codec_limits *limits, const agx_client_adopt *adopt,
                            agx_client_event *out, agx_error *err);

#endif
