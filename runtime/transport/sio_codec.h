/* sio_codec.h — the wire codec under both transport roles (host client ↔ agentix-server):
 * Engine.IO v4 packets and Socket.IO v5 packets in the default parser's text form, plus the
 * binary-attachment reassembly state machine. Pure: no I/O, no globals, no threads; safe to use
 * from any thread on distinct objects. Every input is treated as hostile: anything malformed is
 * AGX_ERR_PROTOCOL (AGX_ERR_LIMIT for size/count caps), never a crash. Internal header. */
#ifndef AGX_TRANSPORT_SIO_CODEC_H
#define AGX_TRANSPORT_SIO_CODEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/error.h"

/* ---- Engine.IO v4 ---- */

typedef enum agx_eio_type {
    AGX_EIO_OPEN = 0,
    AGX_EIO_CLOSE = 1,
    AGX_EIO_PING = 2,
    AGX_EIO_PONG = 3,
    AGX_EIO_MESSAGE = 4,
    AGX_EIO_UPGRADE = 5,
    AGX_EIO_NOOP = 6
} agx_eio_type;

#define AGX_EIO_SID_MAX 64 /* longest sid accepted from a server (the node server uses 20) */

/* Splits a text websocket frame into its Engine.IO type and payload (the bytes after the type
 * character; *payload points into frame). A binary frame is always a MESSAGE and needs no call.
 * Errors: empty frame or unknown type. */
int agx_eio_decode(const char *frame, size_t len, agx_eio_type *type, const char **payload,
                   size_t *payload_len, agx_error *err);

typedef struct agx_eio_open {
    char sid[AGX_EIO_SID_MAX + 1];
    uint32_t ping_interval_ms;
    uint32_t ping_timeout_ms;
    uint64_t max_payload;
} agx_eio_open;

/* Writes the open packet `0{"sid":…,"upgrades":[],"pingInterval":…,"pingTimeout":…,"maxPayload":…}`
 * into buf (cap bytes); *len = its length (no NUL counted; one is written when it fits).
 * sid must be [A-Za-z0-9_-]{1,64}. AGX_ERR_LIMIT when cap is too small. */
int agx_eio_encode_open(char *buf, size_t cap, const agx_eio_open *open, size_t *len,
                        agx_error *err);
/* Parses an open packet's payload (after the '0'): sid (string, ≤ AGX_EIO_SID_MAX, printable),
 * pingInterval and pingTimeout (integers 1..2^31-1 ms), maxPayload (optional, ≥0). */
int agx_eio_parse_open(const char *payload, size_t len, agx_eio_open *out, agx_error *err);

/* ---- Socket.IO v5, default parser ---- */

typedef enum agx_sio_type {
    AGX_SIO_CONNECT = 0,
    AGX_SIO_DISCONNECT = 1,
    AGX_SIO_EVENT = 2,
    AGX_SIO_ACK = 3,
    AGX_SIO_CONNECT_ERROR = 4,
    AGX_SIO_BINARY_EVENT = 5,
    AGX_SIO_BINARY_ACK = 6
} agx_sio_type;

#define AGX_SIO_MAX_ATTACHMENTS 10    /* socket.io-parser's maxAttachments */
#define AGX_SIO_NSP_MAX 127           /* longest namespace accepted, bytes */
#define AGX_SIO_NO_ACK ((int64_t)-1)  /* ack_id of a packet that asks for no ack */
#define AGX_SIO_ACK_ID_MAX ((int64_t)9007199254740991) /* 2^53-1: what a JS Number holds exactly */

typedef struct agx_sio_bytes {
    const uint8_t *data;
    size_t len;
} agx_sio_bytes;

/* A decoded packet. Owned by whoever decoded it (agx_sio_packet_clear releases it).
 * Validation done by the decoder, so consumers need not repeat it:
 *  CONNECT: data absent or an object.   DISCONNECT: no data.
 *  EVENT/BINARY_EVENT: data is a non-empty array whose first element is a string (or a number,
 *    rendered into `event`), not a reserved name (connect, connect_error, disconnect,
 *    disconnecting, newListener, removeListener).
 *  ACK/BINARY_ACK: data is an array (maybe empty) and ack_id is set.
 *  CONNECT_ERROR: data is a string or an object.
 *  BINARY_*: 0 ≤ nattach ≤ 10 (0 completes at once, as in socket.io-parser) and every
 *    placeholder {"_placeholder":true,"num":i} in data has 0 ≤ i < nattach;
 *    non-binary types carry no attachment-count prefix.
 *  CONNECT_ERROR objects need not carry "message" (the JS parser does not require it). */
typedef struct agx_sio_packet {
    agx_sio_type type;
    char nsp[AGX_SIO_NSP_MAX + 1]; /* "/" when the wire omitted it */
    int64_t ack_id;                /* AGX_SIO_NO_ACK or 0..AGX_SIO_ACK_ID_MAX */
    json_t *data;                  /* owned reference; NULL when the packet had no JSON */
    const char *event;             /* EVENT types: data[0] as a string (points into data or
                                      event_num); NULL otherwise */
    char event_num[24];
    unsigned nattach;              /* attachments announced (BINARY_* only) */
    /* Attachment bytes, in order. When a packet is delivered by agx_sio_decoder, the last one
     * points into the caller's frame buffer and the others into decoder-owned copies: all are
     * valid until the next decoder call. */
    agx_sio_bytes attach[AGX_SIO_MAX_ATTACHMENTS];
} agx_sio_packet;

/* Parses the text of one Socket.IO packet (the EIO message payload, i.e. after the '4').
 * *out is overwritten, not released (clear a previous packet first). On success *out owns
 * data; on error *out is left empty (data NULL). */
int agx_sio_decode(const char *s, size_t len, agx_sio_packet *out, agx_error *err);
void agx_sio_packet_clear(agx_sio_packet *p);
/* agx_sio_decode's path around the JSON parser: the args array when the text is exactly
 * ["<name>",{"_placeholder":true,"num":0}] with a plain name (letters, digits, _:.-, at most 64),
 * else NULL (the parser then decides; also NULL without memory). */
json_t *agx_sio_plain_event(const char *s, size_t len);

/* The index i of a placeholder object {"_placeholder":true,"num":i}; -1 when v is not a
 * placeholder, -2 when it is one whose num is not an integer in 0..9. */
int agx_sio_placeholder_index(const json_t *v);

/* Encodes a packet's text form as a whole websocket text frame: "4" + type + ["<n>-"] +
 * ["<nsp>,"] + [ack id] + [JSON of data]. nsp NULL or "/" is omitted. data may be NULL.
 * buf NULL with cap 0 measures: *len gets the size needed. AGX_ERR_LIMIT when cap is too small,
 * AGX_ERR_INVALID_ARGUMENT for a bad nsp / ack id / nattach. Never allocates when data is NULL. */
int agx_sio_encode(char *buf, size_t cap, agx_sio_type type, const char *nsp, int64_t ack_id,
                   unsigned nattach, const json_t *data, size_t *len, agx_error *err);

/* The event/ack frames the transports send, without building a json_t for the common case:
 *   event: 42[ack]["<event>",<args…>]           or 451-[ack]["<event>",<args…>,{placeholder 0}]
 *   ack:   43<id>[<args…>]                      or 461-<id>[<args…>,{placeholder 0}]
 * args is NULL or a JSON array whose elements are spliced in; with_attachment selects the binary
 * form with exactly one attachment (the caller sends its bytes as the next, binary, frame).
 * The event name is JSON-escaped here; reserved names are AGX_ERR_INVALID_ARGUMENT.
 * buf NULL with cap 0 measures. */
int agx_sio_encode_event(char *buf, size_t cap, const char *nsp, const char *event,
                         const json_t *args, int with_attachment, int64_t ack_id, size_t *len,
                         agx_error *err);
int agx_sio_encode_ack(char *buf, size_t cap, const char *nsp, int64_t ack_id, const json_t *args,
                       int with_attachment, size_t *len, agx_error *err);

/* ---- the reassembly state machine: one per connection, fed every ws message in order ---- */

typedef enum agx_sio_decoder_state {
    AGX_SIO_DEC_IDLE = 0,     /* waiting for a text packet */
    AGX_SIO_DEC_ATTACHMENTS,  /* a BINARY_* header arrived; binary frames pending */
    AGX_SIO_DEC_READY,        /* dec->pkt is complete and valid until the next call */
    AGX_SIO_DEC_FAILED        /* a protocol error happened; the connection must close */
} agx_sio_decoder_state;

typedef struct agx_sio_decoder {
    agx_sio_decoder_state state;
    agx_sio_packet pkt;
    unsigned received;                       /* attachments received so far */
    size_t held_bytes;                       /* bytes in owned[] */
    size_t max_held_bytes;                   /* cap on buffered attachment bytes (AGX_ERR_LIMIT) */
    uint8_t *owned[AGX_SIO_MAX_ATTACHMENTS]; /* copies of non-final attachments */
} agx_sio_decoder;

/* max_held_bytes bounds the copies kept while later attachments are pending (e.g. max payload). */
void agx_sio_decoder_init(agx_sio_decoder *d, size_t max_held_bytes);
/* Frees everything held; the decoder may be re-initialised afterwards. */
void agx_sio_decoder_dispose(agx_sio_decoder *d);

/* Feed the payload of one Engine.IO MESSAGE that came as a text frame (after the '4'), or one
 * binary frame. Returns 1 when d->pkt is a complete packet (valid until the next feed or
 * dispose), 0 when more binary frames are needed, <0 on a protocol error (state FAILED; every
 * later feed fails too). Errors: malformed text; text while attachments are pending; a binary
 * frame with no BINARY_* header pending; attachment bytes over max_held_bytes. */
int agx_sio_decoder_text(agx_sio_decoder *d, const char *s, size_t len, agx_error *err);
int agx_sio_decoder_binary(agx_sio_decoder *d, const uint8_t *b, size_t len, agx_error *err);

#endif
