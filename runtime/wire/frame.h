/* frame.h — the worker frame codec (agentix-server ↔ agentix-worker over pipes, docs/PROTOCOL.md
 * §4): a u32 little-endian length, then that many bytes of one msgpack map with a `type` key.
 *
 * Reading: an agx_frame_reader takes bytes from a stream in any pieces and hands out complete
 * frames as agx_frame views. A view decodes only the routing fields (type, id, n, window, pid,
 * target, shape) and keeps the payload fields (value, item, error, args, kwargs) as raw msgpack
 * spans, so the server can relay an `item`'s value into the host event `{call_id, value}` byte for
 * byte (agx_mp_put_raw) without building a value tree.
 *
 * Writing: agx_frame_write_* append one complete frame (prefix included) to an agx_buf; a writer
 * that owns the fd sends the buffer with agx_frame_send_all. Nothing here locks: one writer per fd.
 *
 * Internal (runtime/wire): linked into agentix-server and agentix-worker. */
#ifndef AGX_RUNTIME_FRAME_H
#define AGX_RUNTIME_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/error.h"
#include "agentix/module.h"
#include "agentix/value.h"
#include "core/base/mpraw.h"
#include "runtime/wire/protocol.h"

#define AGX_FRAME_HEADER_SIZE 4u
#define AGX_FRAME_MAX_DEFAULT ((size_t)64 << 20) /* AGENTIX_MAX_PAYLOAD default */
#define AGX_FRAME_WINDOW_DEFAULT 64u             /* stream/bidi output window */
#define AGX_FRAME_WINDOW_MAX 65536u              /* a larger window is clamped to this */
#define AGX_FRAME_IN_WINDOW 64u                  /* bidi input items the host may send up front */

typedef enum agx_frame_type {
    AGX_FRAME_INVALID = 0,
    /* server → worker */
    AGX_FRAME_CALL,     /* {id, target, shape, args, kwargs, window} */
    AGX_FRAME_IN,       /* {id, item} */
    AGX_FRAME_END_IN,   /* {id} */
    AGX_FRAME_CREDIT,   /* {id, n} */
    AGX_FRAME_CANCEL,   /* {id} */
    AGX_FRAME_DESCRIBE, /* {id, target} */
    AGX_FRAME_SHUTDOWN, /* {} */
    /* worker → server */
    AGX_FRAME_READY,       /* {pid} */
    AGX_FRAME_BOOT_ERROR,  /* {error} */
    AGX_FRAME_RESULT,      /* {id, value} */
    AGX_FRAME_ERROR,       /* {id, error} */
    AGX_FRAME_ITEM,        /* {id, value} */
    AGX_FRAME_END,         /* {id} */
    AGX_FRAME_IN_CREDIT,   /* {id, n} */
    AGX_FRAME_DESCRIPTION, /* {id, value} */
    AGX_FRAME_TYPE_COUNT
} agx_frame_type;

/* The wire name ("call", "in_credit", …); "invalid" outside the enum. */
const char *agx_frame_type_name(agx_frame_type t);
/* AGX_FRAME_INVALID for unknown names. */
agx_frame_type agx_frame_type_from_name(const char *name, size_t len);
/* Frames whose sender ends the call: result, error, end, description. */
bool agx_frame_is_terminal(agx_frame_type t);

/* A decoded frame: borrowed pointers into the reader's buffer (or the body given to
 * agx_frame_parse), valid until the next call on that reader. Fields the type does not carry are
 * zero / empty spans. */
typedef struct agx_frame {
    agx_frame_type type;
    const unsigned char *body; /* the whole msgpack map */
    size_t body_len;
    uint64_t id;          /* every frame but ready, boot_error, shutdown */
    uint64_t n;           /* credit, in_credit: n ≥ 1 */
    uint64_t pid;         /* ready */
    uint32_t window;      /* call: clamped to 1..AGX_FRAME_WINDOW_MAX; absent/0 → default */
    agx_shape shape;      /* call */
    const char *target;   /* call, describe: "module::function", not NUL-terminated */
    size_t target_len;
    agx_mp_span value;    /* result, item, description */
    bool in_ring;         /* item: the value is a binary of ring_len bytes in the worker's bulk
                           * ring at position ring_at (ring.h), not in `value`; in: the item's
                           * msgpack is in the server's ring there, not in `item` */
    uint64_t ring_at, ring_len;
    const unsigned char *ring_bytes; /* item: set by the server once agx_ring_accept checked them */
    agx_mp_span item;     /* in */
    agx_mp_span error;    /* error, boot_error: the error map (see rpc_error.h) */
    agx_mp_span args;     /* call: an array (empty span when absent) */
    agx_mp_span kwargs;   /* call: a map (empty span when absent) */
} agx_frame;

/* Decodes one frame body (the map, without the length prefix) into a view and checks that the
 * type is known and carries its required fields with the right kinds; unknown keys are ignored.
 * AGX_ERR_PROTOCOL with a message naming the field otherwise. On error, out->type and out->id are
 * still set when they could be read (so a worker can answer a bad call with an error frame). */
int agx_frame_parse(const void *body, size_t len, agx_frame *out, agx_error *err);

/* item or in {id, ring_at, ring_len}: the payload lies in a bulk ring (ring.h) — an item's value
 * is a binary of len bytes, an in's item is len bytes of msgpack. */
int agx_frame_write_ring(agx_buf *b, agx_frame_type type, uint64_t id, uint64_t at, uint64_t len);

/* ---- incremental reader ---- */
typedef struct agx_frame_reader agx_frame_reader;

/* max_frame bounds one frame's body (0 → AGX_FRAME_MAX_DEFAULT). The buffer grows to the largest
 * frame in flight and is released when it empties above 8 MiB. NULL when memory runs out. */
agx_frame_reader *agx_frame_reader_new(size_t max_frame);
void agx_frame_reader_free(agx_frame_reader *r);
/* Copies bytes in. AGX_ERR_NO_MEMORY, or the reader's sticky error. */
int agx_frame_reader_feed(agx_frame_reader *r, const void *data, size_t len, agx_error *err);
/* Reads once from fd straight into the buffer (no extra copy): bytes read (> 0), 0 at EOF,
 * AGX_ERR_IO (EAGAIN included: the caller polls; EINTR is retried), or the sticky error. */
long agx_frame_reader_read_fd(agx_frame_reader *r, int fd, agx_error *err);
/* 1 with the next complete frame in *out, 0 when more bytes are needed, or a negative code.
 * A length of 0 (AGX_ERR_PROTOCOL) or over max_frame (AGX_ERR_LIMIT) is sticky: the stream has no
 * boundary left, so drop the peer. A body that is not a valid frame (agx_frame_parse fails) is
 * consumed and reported with AGX_ERR_PROTOCOL and the view filled as far as it could be read; the
 * next call continues with the following frame. */
int agx_frame_reader_next(agx_frame_reader *r, agx_frame *out, agx_error *err);
/* Whether a sticky error (bad length) ended the stream. */
bool agx_frame_reader_broken(const agx_frame_reader *r);
/* Bytes received but not yet returned as frames (a partial frame at EOF means a truncated peer). */
size_t agx_frame_reader_pending(const agx_frame_reader *r);

/* ---- writers: each appends one complete frame to b; 0 or a negative code ---- */
/* Low level, for frames not covered below: begin writes the prefix placeholder, the map header
 * for 1 + n_fields entries and the type; the caller appends n_fields key/value pairs with agx_mp_*;
 * end patches the length (AGX_ERR_LIMIT when the body exceeds UINT32_MAX). */
int agx_frame_begin(agx_buf *b, agx_frame_type type, uint32_t n_fields, size_t *mark);
int agx_frame_end(agx_buf *b, size_t mark, agx_error *err);

int agx_frame_write_call(agx_buf *b, uint64_t id, const char *target, size_t target_len,
                         agx_shape shape, agx_mp_span args, agx_mp_span kwargs, uint32_t window);
int agx_frame_write_describe(agx_buf *b, uint64_t id, const char *target, size_t target_len);
int agx_frame_write_shutdown(agx_buf *b);
int agx_frame_write_ready(agx_buf *b, uint64_t pid);
int agx_frame_write_boot_error(agx_buf *b, agx_mp_span error);
/* end_in, cancel, end: {id}. */
int agx_frame_write_id(agx_buf *b, agx_frame_type type, uint64_t id);
/* credit, in_credit: {id, n}. */
int agx_frame_write_credit(agx_buf *b, agx_frame_type type, uint64_t id, uint64_t n);
/* result/item/description ({id, value}), in ({id, item}), error ({id, error}) with the payload as
 * already-encoded msgpack (relayed bytes, or an rpc_error map). */
int agx_frame_write_payload(agx_buf *b, agx_frame_type type, uint64_t id, agx_mp_span payload);
/* The same with the payload encoded from a value tree straight into b (no intermediate copy);
 * NULL value encodes nil. */
int agx_frame_write_value(agx_buf *b, agx_frame_type type, uint64_t id, const agx_value *value,
                          agx_error *err);

/* A result/item/description frame whose value is a binary of bin_len bytes, up to (not with)
 * those bytes: the prefix counts them, and the caller sends them right after b's bytes (one
 * writev from where they lie, no copy into b). AGX_ERR_LIMIT past 4 GiB. */
int agx_frame_write_bin_head(agx_buf *b, agx_frame_type type, uint64_t id, size_t bin_len,
                             agx_error *err);

/* Writes all of data to a blocking fd (retries EINTR and short writes). 0 or AGX_ERR_IO. */
int agx_frame_send_all(int fd, const void *data, size_t len, agx_error *err);

#endif
