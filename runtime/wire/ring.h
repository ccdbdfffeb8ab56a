/* ring.h — the bulk rings between agentix-server and its agentix-worker (docs/PROTOCOL.md §4.1):
 * shared memory that large payloads cross instead of the pipes, so their bytes skip the pipe's
 * write and read copies and its page churn. Two per worker, one each way:
 *   - out (fd AGX_RING_FD): the worker writes large binary stream/bidi items into it; the frame
 *     `item {id, ring_at, ring_len}` says "my value is a binary of ring_len bytes at ring_at";
 *   - in (fd AGX_RING_IN_FD): the server writes large `bidi:in` items (their msgpack) into it;
 *     the frame `in {id, ring_at, ring_len}` says where.
 * The frames on the pipes stay the order and the authority; a ring without room sends the
 * payload through the pipe as before (the worker first waits briefly for its out ring).
 *
 * Layout: a memfd of AGX_RING_CTRL + size bytes, created and sealed by the server (no shrink, no
 * grow: the worker cannot make the server's mapping fault). The first page is control: the
 * reader publishes there how far it has consumed (`released`, a monotonic byte position); the
 * data area follows. Positions are monotonic u64 byte counts; the data offset of position p is
 * p % size. A payload never wraps: when it would pass the end of the area the writer skips to the
 * next lap.
 *
 * Trust: the worker runs user code. Reading the out ring, the server takes nothing from shared
 * memory but the bytes a frame points at, after checking the reference against its own position
 * (agx_ring_accept). Writing the in ring, the only thing it reads is the worker's `released`,
 * which agx_ring_place clamps (a lie makes the ring look full, or lets the server overwrite inputs
 * the worker has not read: its own loss). A hostile worker can change only its own payloads.
 *
 * Internal (runtime/wire): linked into agentix-server and agentix-worker. */
#ifndef AGX_RUNTIME_RING_H
#define AGX_RUNTIME_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/error.h"

#define AGX_RING_FD 3                          /* the worker's out ring (worker → server) */
#define AGX_RING_IN_FD 4                       /* the worker's in ring (server → worker) */
#define AGX_RING_CTRL ((size_t)4096)           /* the control page before the data area */
#define AGX_RING_SIZE ((size_t)2 << 20)        /* the data area of each ring */
#define AGX_RING_MIN_ITEM ((size_t)16 << 10)   /* smaller items go through the pipe */

typedef struct agx_ring {
    int fd;
    unsigned char *map;  /* AGX_RING_CTRL + size bytes, shared */
    size_t size;         /* of the data area */
    uint64_t pos;        /* reader: the next position it accepts; writer: the next free one */
} agx_ring;

/* Server (for both rings): a sealed memfd of AGX_RING_CTRL + size bytes, mapped. -1 (errno set)
 * on failure. */
int agx_ring_create(agx_ring *r, size_t size);
/* Worker: maps the inherited fd when it is a memfd sealed against shrinking and growing with a
 * data area of at least one item; marks it close-on-exec (commands the worker runs never get it).
 * false (r zeroed) when there is none or it is not one: that direction then uses the pipe alone. */
bool agx_ring_attach(agx_ring *r, int fd);
/* Unmaps and closes; safe on a zeroed ring. */
void agx_ring_close(agx_ring *r);

/* Writer: where len bytes go, given how far the reader released. true with *at (a position) and
 * the ring's pos advanced past them; false when they do not fit now (the caller uses the pipe) —
 * also when `released` is past pos (a reader that lies). */
bool agx_ring_place(agx_ring *r, size_t len, uint64_t *at);
/* Writer: the reader's `released` position (acquire). */
uint64_t agx_ring_released(const agx_ring *r);
/* The bytes at position at (checked or placed before). */
static inline unsigned char *agx_ring_data(const agx_ring *r, uint64_t at)
{
    return r->map + AGX_RING_CTRL + (size_t)(at % r->size);
}

/* Reader: checks a frame's reference against the ring's own position — at is pos, or the start
 * of the next lap when the payload would not fit before the end; len is 1..size and does not pass
 * the end. 0 and the ring's pos advanced past the payload, or AGX_ERR_PROTOCOL naming what is
 * wrong (the writer is broken or hostile: drop it). */
int agx_ring_accept(agx_ring *r, uint64_t at, uint64_t len, agx_error *err);
/* Reader: publishes its pos as `released` (release): the writer may reuse what lies before it. */
void agx_ring_release(agx_ring *r);

#endif
