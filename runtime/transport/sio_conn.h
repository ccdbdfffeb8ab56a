/* sio_conn.h — one Socket.IO connection, the same object in both transport roles: the host's
 * client connection to agentix-server (sio_client.h) and each connection agentix-server accepts
 * (sio_server.h). The RPC layers above emit events / acks on it and are told about incoming
 * events, acks, send-queue drain and close through agx_sio_handlers. Internal header.
 *
 * Threading: an agx_sio_conn belongs to the uv loop it was created on. Every function here MUST
 * be called on that loop's thread (from a loop callback: a uv_async, uv_timer, or one of the
 * handlers below). To feed it from other threads, post to the loop with uv_async_send and call
 * these from the async callback. Nothing here blocks.
 *
 * Lifetime: a conn handle is valid from on_connect until on_close returns (the transport frees it
 * after that). On the server only connections that got on_connect get on_close; the client role
 * reports every end, a failed dial included (sio_client.h). */
#ifndef AGX_TRANSPORT_SIO_CONN_H
#define AGX_TRANSPORT_SIO_CONN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "agentix/error.h"
#include "agentix/value.h"
#include "runtime/transport/sio_codec.h"

typedef struct agx_sio_conn agx_sio_conn;

/* Largest websocket message a server-role connection takes before its Socket.IO CONNECT has been
 * accepted: a CONNECT with a token of the longest size, and room to spare. Before CONNECT only
 * Engine.IO control packets and a CONNECT may arrive; anything else (an event, binary data, a
 * larger message) closes the connection before it is parsed or buffered. */
#define AGX_SIO_PREAUTH_MAX 8192

/* Send-queue and size limits of a connection (both roles). 0 in any field = its default. */
typedef struct agx_sio_limits {
    size_t max_payload;    /* largest incoming ws message; over it the conn closes with 1009.
                              Default 64 MiB (PROTOCOL.md §1). Also advertised as maxPayload. */
    size_t high_watermark; /* queued bytes at/over which agx_sio_conn_congested() is true;
                              default 1 MiB */
    size_t low_watermark;  /* after congestion, on_drain fires once queued bytes fall below this;
                              default high_watermark / 4 */
    size_t queue_limit;    /* hard cap on queued bytes: an emit that would pass it fails with
                              AGX_ERR_LIMIT (one message is always accepted on an empty queue);
                              default max_payload + high_watermark */
    size_t max_text;       /* largest incoming text message (Socket.IO packets are parsed as JSON:
                              a big one costs far more than its bytes); over it the conn closes
                              with 1009. Default max_payload. */
    size_t rx_budget;      /* server role: bytes all connections together may hold in messages
                              received in part (their receive buffers); a message that would
                              pass it closes its connection with 1013 (try again later) before it
                              is buffered. 0 = no server-wide bound (each connection still has
                              max_payload). */
} agx_sio_limits;

/* Handlers, all called on the loop thread, never re-entrantly from an agx_sio_conn_* call made
 * by the caller (emit/ack/close never call back synchronously). Any may be NULL. */
typedef struct agx_sio_handlers {
    /* Socket.IO CONNECT completed (server: token accepted, reply sent; client: reply with sid). */
    void (*on_connect)(agx_sio_conn *c, void *ud);
    /* An EVENT or BINARY_EVENT: p->event is the name, p->data the whole array (element 0 is the
     * name; placeholders are left in place and map to p->attach[i]), p->ack_id is AGX_SIO_NO_ACK
     * or an id to answer with agx_sio_conn_ack. p and its bytes are borrowed: valid only during
     * the call (copy what you keep). */
    void (*on_event)(agx_sio_conn *c, const agx_sio_packet *p, void *ud);
    /* An ACK or BINARY_ACK answering an id this side got from agx_sio_conn_emit; p->data is the
     * args array. Acks for ids never issued are dropped before this. Borrowed, as for on_event. */
    void (*on_ack)(agx_sio_conn *c, const agx_sio_packet *p, void *ud);
    /* The send queue fell below low_watermark after having reached high_watermark. */
    void (*on_drain)(agx_sio_conn *c, void *ud);
    /* The connection is gone. why->code is AGX_OK for a close this side asked for
     * (agx_sio_conn_close, shutdown), else: AGX_ERR_UNAVAILABLE (peer disconnected, socket error,
     * dial failed), AGX_ERR_TIMEOUT (ping/pong or connect timeout), AGX_ERR_PROTOCOL (the peer broke
     * the protocol; CONNECT_ERROR from a server, e.g. "invalid token"), AGX_ERR_LIMIT (message
     * over max_payload). why->message says which. After this returns c is freed. */
    void (*on_close)(agx_sio_conn *c, const agx_error *why, void *ud);
    void *ud; /* passed to every handler */
} agx_sio_handlers;

/* Queues an event on namespace "/". When the queue is idle a small message is written to the
 * socket at once (no loop turn); otherwise it leaves on the next WRITEABLE turns.
 *   args: NULL or a JSON array of extra arguments after the event name (not stolen).
 *   iov/iovcnt: iov NULL = a plain EVENT; otherwise a BINARY_EVENT with exactly one attachment
 *     whose bytes are the concatenation of the iovecs (copied into the queue before returning,
 *     so the caller's buffers may be reused at once), placed after args as a placeholder.
 *   ack_id: NULL = no ack wanted; else the transport assigns an ack id, stores it here, and
 *     delivers the answer to on_ack.
 * Errors: AGX_ERR_UNAVAILABLE (not connected / closing), AGX_ERR_LIMIT (the queue would pass
 * queue_limit, or the attachment is over the peer's maxPayload), AGX_ERR_INVALID_ARGUMENT
 * (reserved or empty event name), AGX_ERR_NO_MEMORY. Loop thread only. */
int agx_sio_conn_emit(agx_sio_conn *c, const char *event, const json_t *args,
                      const struct iovec *iov, size_t iovcnt, int64_t *ack_id, agx_error *err);
/* agx_sio_conn_emit of a BINARY_EVENT without args or ack whose attachment the caller gives up:
 * its bytes may be overwritten (a client masks them in place, so a large one can leave from
 * where it lies instead of a copy in the queue) and must not be read after the call. */
int agx_sio_conn_emit_scratch(agx_sio_conn *c, const char *event, const struct iovec *iov,
                              size_t iovcnt, agx_error *err);

/* Answers an event that asked for an ack (its p->ack_id), with args (NULL = []) and optionally one
 * binary attachment (iov as for emit). Same errors as emit. Loop thread only. */
int agx_sio_conn_ack(agx_sio_conn *c, int64_t ack_id, const json_t *args, const struct iovec *iov,
                     size_t iovcnt, agx_error *err);

/* From inside on_event/on_ack only: when the len bytes at data are the end of the message being
 * delivered and that message was gathered in the connection's receive buffer, hands the buffer
 * over as a string or binary value of those bytes (no copy; the value owns it, with data[len] its
 * NUL) and starts the next message in another buffer. NULL otherwise (the message came whole in
 * the link's read buffer, or the bytes are elsewhere): copy them then. After a non-NULL return
 * nothing of the message may be read any more. Loop thread. */
agx_value *agx_sio_conn_adopt_tail(agx_sio_conn *c, agx_value_type type, const void *data,
                                   size_t len);

/* Starts a clean close: queues DISCONNECT ("41"), flushes what is queued, then closes the
 * websocket (1000). on_close follows later with why->code == AGX_OK. Idempotent. Loop thread. */
void agx_sio_conn_close(agx_sio_conn *c);

/* Bytes waiting in the send queue (frame payloads, not counting framing overhead). */
size_t agx_sio_conn_queued_bytes(const agx_sio_conn *c);

/* Batching on the calling (loop) thread: between agx_sio_cork and agx_sio_uncork, emits and acks
 * only queue; uncork then writes each touched connection's small units together, in one send
 * where they fit. For a loop callback that emits many answers at once (a batch of worker results,
 * a batch of host calls). Nests. */
void agx_sio_cork(void);
void agx_sio_uncork(void);
/* True from when queued bytes reach high_watermark until they fall below low_watermark.
 * Producers should stop emitting while it is true and resume in on_drain: the queue never grows
 * past queue_limit. (A small message written straight through inside an emit may clear it
 * without an on_drain; so check this after each emit rather than counting on on_drain.) */
bool agx_sio_conn_congested(const agx_sio_conn *c);
/* The Socket.IO sid of this connection (the one in the CONNECT reply; the node client's
 * socket.id). Empty before on_connect. */
const char *agx_sio_conn_sid(const agx_sio_conn *c);
/* Per-connection pointer for the layer above; NULL until set. */
void agx_sio_conn_set_userdata(agx_sio_conn *c, void *p);
void *agx_sio_conn_userdata(const agx_sio_conn *c);

#endif
