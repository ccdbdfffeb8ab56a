/* sio_send.c — the sending half of an agx_sio_conn (both transport roles: the host's client and
 * each agentix-server connection): events and acks become pre-framed websocket units (a
 * Socket.IO header frame plus its attachment frame, masked on the client) in a byte-accounted
 * queue, written one link write per writeable turn, or at once when the queue is idle; a large
 * attachment goes straight from the caller's buffer into the socket when nothing is queued (on
 * the server as it is; on a client when the caller gave the buffer up, masked where it lies),
 * and only what the socket does not take is copied. */
#include <stdlib.h>
#include <string.h>

#include "runtime/transport/sio_conn_impl.h"

#define SPARE_MAX_CAP ((size_t)1 << 20)     /* larger units are freed, not kept for reuse */
#define HEADER_GUESS 256                    /* first try for an event/ack text frame */
#define DIRECT_WRITE_MAX ((size_t)64 << 10) /* larger units wait for a WRITEABLE turn */

/* ---- frames and the send queue ---- */

#define WS_HDR_MAX 14 /* 2 + 8 (64-bit length) + 4 (mask key) */

static size_t ws_header_len(size_t n, bool masked)
{
    return (n < 126 ? 2 : n <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
}

/* Client frames must be masked (RFC 6455 §5.3); the key only has to be unpredictable to
 * browsers' cache-poisoning attackers, so a per-connection xorshift seeded from getrandom is
 * plenty. */
static uint32_t next_mask(agx_sio_conn *c)
{
    uint64_t x = c->mask_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c->mask_state = x;
    return (uint32_t)(x >> 16);
}

/* XORs n bytes that start `at` bytes into a masked payload (the key turns every 4 bytes). */
static void apply_mask(unsigned char *p, size_t n, const unsigned char key[4], size_t at)
{
    unsigned char kk[8];
    for (int j = 0; j < 8; j++)
        kk[j] = key[(at + (size_t)j) & 3];
    uint64_t k8;
    memcpy(&k8, kk, 8);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= k8;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= kk[i & 7];
}

/* Writes the frame header for an n-byte payload at p (ws_header_len bytes); on a client it ends
 * with a fresh mask key, also put in key (the payload is masked by the caller). */
static void ws_frame_head(agx_sio_conn *c, unsigned char *p, unsigned opcode, size_t n,
                          unsigned char key[4])
{
    size_t i = 0;
    p[i++] = (unsigned char)(0x80 | opcode); /* FIN + opcode */
    unsigned char maskbit = c->client ? 0x80 : 0;
    if (n < 126) {
        p[i++] = maskbit | (unsigned char)n;
    } else if (n <= 0xffff) {
        p[i++] = maskbit | 126;
        p[i++] = (unsigned char)(n >> 8);
        p[i++] = (unsigned char)n;
    } else {
        p[i++] = maskbit | 127;
        for (int s = 56; s >= 0; s -= 8)
            p[i++] = (unsigned char)((uint64_t)n >> s);
    }
    if (c->client) {
        uint32_t m = next_mask(c);
        key[0] = (unsigned char)(m >> 24);
        key[1] = (unsigned char)(m >> 16);
        key[2] = (unsigned char)(m >> 8);
        key[3] = (unsigned char)m;
        memcpy(p + i, key, 4);
    }
}

/* The header and, on a client, the mask of the n-byte payload that follows it. */
static void ws_frame(agx_sio_conn *c, unsigned char *p, unsigned opcode, size_t n)
{
    unsigned char key[4];
    ws_frame_head(c, p, opcode, n, key);
    if (c->client)
        apply_mask(p + ws_header_len(n, true), n, key, 0);
}

static sio_frame *frame_get(agx_sio_conn *c, size_t cap)
{
    for (int i = 0; i < SIO_SPARE_FRAMES; i++) {
        sio_frame *f = c->spare[i];
        if (f && f->cap >= cap && f->cap / 4 <= cap + 4096) {
            c->spare[i] = NULL;
            f->next = NULL;
            f->off = f->len = 0;
            return f;
        }
    }
    sio_frame *f = malloc(sizeof *f + cap);
    if (!f)
        return NULL;
    f->next = NULL;
    f->cap = cap;
    f->off = f->len = 0;
    return f;
}

static void frame_put(agx_sio_conn *c, sio_frame *f)
{
    if (f->cap <= SPARE_MAX_CAP)
        for (int i = 0; i < SIO_SPARE_FRAMES; i++)
            if (!c->spare[i]) {
                c->spare[i] = f;
                return;
            }
    free(f);
}

void sio_want_write(agx_sio_conn *c)
{
    if (c->link && c->state != SIO_DEAD)
        c->link->want_write(c);
}

/* Control frames (ping/pong) jump the queue: the head is never a half-written unit, since the
 * link takes a whole unit per write, and Engine.IO frames may sit between a Socket.IO header and
 * its attachments. */
static void q_push(agx_sio_conn *c, sio_frame *f, bool front)
{
    if (front && c->head_started) {
        f->next = c->head->next; /* never split a unit that is half on the wire */
        c->head->next = f;
        if (c->tail == c->head)
            c->tail = f;
    } else if (front) {
        f->next = c->head;
        c->head = f;
        if (!c->tail)
            c->tail = f;
    } else {
        f->next = NULL;
        if (c->tail)
            c->tail->next = f;
        else
            c->head = f;
        c->tail = f;
    }
    c->queued += f->len;
    if (c->queued >= c->lim.high_watermark)
        c->congested = true;
}

void sio_queue_drop(agx_sio_conn *c)
{
    sio_frame *f = c->head;
    while (f) {
        sio_frame *n = f->next;
        free(f);
        f = n;
    }
    c->head = c->tail = NULL;
    c->queued = 0;
    c->head_started = false;
}

void sio_queue_free_spares(agx_sio_conn *c, size_t keep_cap)
{
    for (int i = 0; i < SIO_SPARE_FRAMES; i++)
        if (c->spare[i] && c->spare[i]->cap > keep_cap) {
            free(c->spare[i]);
            c->spare[i] = NULL;
        }
}

static int write_head(agx_sio_conn *c);

/* Corking (sio_conn.h): per loop thread, connections that queued while corked. */
static __thread int cork_depth;
static __thread agx_sio_conn *cork_list;

/* The direct write of send_soon: when nothing is on the way, write what is queued now instead
 * of waiting a loop turn for WRITEABLE (the latency of a unary call is mostly these turns). */
static bool can_write_now(agx_sio_conn *c)
{
    return c->head && c->head->len <= DIRECT_WRITE_MAX && !c->in_writeable && c->link &&
           !c->hard_close && (c->state == SIO_CONNECTED || c->state == SIO_OPENING) &&
           !c->link->choked(c);
}

static void write_now(agx_sio_conn *c)
{
    if (write_head(c) != 0) {
        sio_conn_fail(c, AGX_ERR_UNAVAILABLE, SIO_WS_ABNORMAL,
                      "writing to the websocket failed");
        return;
    }
    if (c->congested && c->queued < c->lim.low_watermark)
        c->congested = false;
}

void agx_sio_cork(void) { cork_depth++; }

void agx_sio_uncork(void)
{
    if (cork_depth <= 0 || --cork_depth > 0)
        return;
    while (cork_list) {
        agx_sio_conn *c = cork_list;
        cork_list = c->cork_next;
        c->in_cork_list = false;
        c->cork_next = NULL;
        if (c->state == SIO_DEAD)
            continue;
        if (can_write_now(c))
            write_now(c);
        if (c->head)
            sio_want_write(c);
    }
}

/* After queueing f: when the queue was idle and f is small, write at once instead of waiting a
 * loop turn for WRITEABLE (the latency of a unary call is mostly these turns); otherwise, or for
 * what is left, ask for WRITEABLE. Bulk goes through WRITEABLE turns, so a burst of emits queues
 * (and reports congestion) the same way whatever the socket buffer holds. Never calls a handler:
 * congestion that clears here clears silently. */
static void send_soon(agx_sio_conn *c, sio_frame *f)
{
    if (cork_depth > 0 && c->head == f) {
        if (!c->in_cork_list) {
            c->in_cork_list = true;
            c->cork_next = cork_list;
            cork_list = c;
        }
        return; /* uncork writes it, with whatever queues behind it */
    }
    if (c->in_cork_list)
        return;
    if (c->head == f && !f->next && can_write_now(c)) {
        write_now(c);
        if (!c->head || c->state == SIO_DEAD)
            return;
    }
    sio_want_write(c);
}

static int queue_frame(agx_sio_conn *c, unsigned opcode, const void *s, size_t n, bool front)
{
    sio_frame *f = frame_get(c, WS_HDR_MAX + n);
    if (!f)
        return AGX_ERR_NO_MEMORY;
    size_t hl = ws_header_len(n, c->client);
    if (n)
        memcpy(f->data + hl, s, n);
    ws_frame(c, f->data, opcode, n);
    f->off = 0;
    f->len = hl + n;
    q_push(c, f, front);
    send_soon(c, f);
    return 0;
}

int sio_queue_text(agx_sio_conn *c, const char *s, size_t n, bool front)
{
    return queue_frame(c, 1, s, n, front);
}

int sio_queue_control(agx_sio_conn *c, unsigned opcode, const void *payload, size_t n)
{
    return n <= 125 ? queue_frame(c, opcode, payload, n, true) : AGX_ERR_INVALID_ARGUMENT;
}

void sio_close_reason(agx_sio_conn *c)
{
    if (!c->link)
        return;
    if (c->link->close_reason) {
        c->link->close_reason(c);
        return;
    }
    /* Only at a frame boundary: the socket closes right after, so this is a courtesy. */
    if (c->head_started)
        return;
    unsigned char p[WS_HDR_MAX + 2];
    uint16_t code = c->ws_close_code ? c->ws_close_code : SIO_WS_NORMAL;
    size_t hl = ws_header_len(2, c->client);
    p[hl] = (unsigned char)(code >> 8);
    p[hl + 1] = (unsigned char)code;
    ws_frame(c, p, 8, 2);
    (void)c->link->write(c, p, hl + 2);
}

/* ---- sending events and acks ---- */

typedef struct out_msg {
    const char *event;   /* NULL = an ack */
    int64_t ack_id;
    const json_t *args;
    bool attach;
    bool scratch; /* the attachment's bytes are the caller's to lose (agx_sio_conn_emit_scratch) */
} out_msg;

static int encode_msg(const out_msg *m, char *buf, size_t cap, size_t *len, agx_error *err)
{
    if (m->event)
        return agx_sio_encode_event(buf, cap, NULL, m->event, m->args, m->attach, m->ack_id,
                                    len, err);
    return agx_sio_encode_ack(buf, cap, NULL, m->ack_id, m->args, m->attach, len, err);
}

static size_t iov_total(const struct iovec *iov, size_t n)
{
    size_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += iov[i].iov_len;
    return t;
}

/* Builds one unit: [text frame][binary frame]? The text is encoded after a WS_HDR_MAX reserve and
 * its header written just before it, so nothing moves; the unit grows once if the first guess
 * for the text was short. */
static int build_unit(agx_sio_conn *c, const out_msg *m, const struct iovec *iov, size_t iovcnt,
                      size_t alen, sio_frame **out, agx_error *err)
{
    size_t extra = iov ? WS_HDR_MAX + alen : 0, tlen = 0;
    sio_frame *f = frame_get(c, WS_HDR_MAX + HEADER_GUESS + extra);
    if (!f)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory queueing an event");
    int rc = encode_msg(m, (char *)f->data + WS_HDR_MAX, f->cap - WS_HDR_MAX - extra, &tlen, err);
    if (rc == AGX_ERR_LIMIT) {
        frame_put(c, f);
        f = frame_get(c, WS_HDR_MAX + tlen + 1 + extra);
        if (!f)
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory queueing an event");
        rc = encode_msg(m, (char *)f->data + WS_HDR_MAX, f->cap - WS_HDR_MAX - extra, &tlen, err);
    }
    if (rc) {
        frame_put(c, f);
        return rc;
    }
    size_t hl = ws_header_len(tlen, c->client);
    f->off = WS_HDR_MAX - hl;
    ws_frame(c, f->data + f->off, 1, tlen);
    f->len = hl + tlen;
    if (iov) {
        unsigned char *h2 = f->data + WS_HDR_MAX + tlen;
        size_t hl2 = ws_header_len(alen, c->client);
        unsigned char *p = h2 + hl2;
        for (size_t i = 0; i < iovcnt; i++) {
            if (iov[i].iov_len)
                memcpy(p, iov[i].iov_base, iov[i].iov_len);
            p += iov[i].iov_len;
        }
        ws_frame(c, h2, 2, alen);
        f->len += hl2 + alen;
    }
    *out = f;
    return 0;
}

/* ---- large attachments straight from the caller's buffer ---- */

#define DIRECT_ATTACH_MIN ((size_t)16 << 10) /* smaller ones are copied and coalesced */
#define DIRECT_IOV_MAX 8

/* Whether a unit may skip the queue: nothing queued or held back by the link, so its bytes go
 * right after what is on the wire, and the caller's bytes can be the wire bytes: unmasked
 * (server) frames, or a client's attachment the caller gave up, masked where it lies. */
static bool can_send_direct(agx_sio_conn *c, const out_msg *m, size_t alen, size_t iovcnt)
{
    return alen >= DIRECT_ATTACH_MIN && iovcnt < DIRECT_IOV_MAX && (!c->client || m->scratch) &&
           !c->head && c->link && c->link->writev_now && !c->hard_close && !c->link->choked(c);
}

/* Writes [text frame][binary frame header] from a stack buffer and the attachment from the
 * caller's iovecs in one gathered send; only what the socket does not take is copied into a
 * queued unit, which is then the head and already started (nothing may go in front of it).
 * 1 when the message did not fit the header buffer (the caller queues it as usual; nothing was
 * masked yet). */
static int send_direct(agx_sio_conn *c, const out_msg *m, const struct iovec *iov, size_t iovcnt,
                       size_t alen, agx_error *err)
{
    unsigned char hb[WS_HDR_MAX + HEADER_GUESS + WS_HDR_MAX];
    size_t tlen = 0;
    agx_error ignored;
    if (encode_msg(m, (char *)hb + WS_HDR_MAX, HEADER_GUESS, &tlen, &ignored) != 0)
        return 1;
    size_t hl = ws_header_len(tlen, c->client), off = WS_HDR_MAX - hl;
    ws_frame(c, hb + off, 1, tlen);
    size_t hl2 = ws_header_len(alen, c->client);
    unsigned char key[4] = {0};
    ws_frame_head(c, hb + WS_HDR_MAX + tlen, 2, alen, key);
    for (size_t i = 0, at = 0; c->client && i < iovcnt; at += iov[i].iov_len, i++)
        apply_mask(iov[i].iov_base, iov[i].iov_len, key, at);
    struct iovec v[DIRECT_IOV_MAX];
    v[0] = (struct iovec){hb + off, hl + tlen + hl2};
    for (size_t i = 0; i < iovcnt; i++)
        v[i + 1] = iov[i];
    size_t total = v[0].iov_len + alen;
    long n = c->link->writev_now(c, v, (int)iovcnt + 1);
    if (n < 0) {
        sio_conn_fail(c, AGX_ERR_UNAVAILABLE, SIO_WS_ABNORMAL, "writing to the websocket failed");
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "socket.io: writing to the websocket failed");
    }
    c->active = true;
    if ((size_t)n == total)
        return 0;
    sio_frame *f = frame_get(c, total - (size_t)n);
    if (!f) {
        /* Part of the unit is on the wire: without the rest the stream is broken. */
        sio_conn_fail(c, AGX_ERR_NO_MEMORY, SIO_WS_UNEXPECTED_CONDITION,
                      "out of memory queueing the rest of an event");
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory queueing an event");
    }
    size_t skip = (size_t)n;
    for (size_t i = 0; i < iovcnt + 1; i++) {
        size_t l = v[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        memcpy(f->data + f->len, (const char *)v[i].iov_base + skip, l - skip);
        f->len += l - skip;
        skip = 0;
    }
    q_push(c, f, false);
    c->head_started = true;
    sio_want_write(c);
    return 0;
}

static int send_msg(agx_sio_conn *c, const out_msg *m, const struct iovec *iov, size_t iovcnt,
                    agx_error *err)
{
    if (!c || c->state != SIO_CONNECTED)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "socket.io: the connection is not open");
    size_t alen = iov ? iov_total(iov, iovcnt) : 0;
    if (c->peer_max_payload && alen > c->peer_max_payload)
        return agx_error_set(err, AGX_ERR_LIMIT,
                             "socket.io: a %zu-byte attachment is over the peer's maxPayload (%llu)",
                             alen, (unsigned long long)c->peer_max_payload);
    if (c->queued && c->queued + alen > c->lim.queue_limit)
        return agx_error_set(err, AGX_ERR_LIMIT,
                             "socket.io: send queue full (%zu bytes queued, limit %zu): wait "
                             "for on_drain",
                             c->queued, c->lim.queue_limit);
    if (iov && can_send_direct(c, m, alen, iovcnt)) {
        int drc = send_direct(c, m, iov, iovcnt, alen, err);
        if (drc <= 0)
            return drc;
    }
    sio_frame *f = NULL;
    int rc = build_unit(c, m, iov, iovcnt, alen, &f, err);
    if (rc)
        return rc;
    c->active = true;
    q_push(c, f, false);
    send_soon(c, f);
    return 0;
}

int agx_sio_conn_emit(agx_sio_conn *c, const char *event, const json_t *args,
                      const struct iovec *iov, size_t iovcnt, int64_t *ack_id, agx_error *err)
{
    if (!event)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "socket.io: no event name");
    out_msg m = {event, ack_id && c ? c->next_ack_id : AGX_SIO_NO_ACK, args, iov != NULL, false};
    int rc = send_msg(c, &m, iov, iovcnt, err);
    if (rc == 0 && ack_id)
        *ack_id = c->next_ack_id++;
    return rc;
}

int agx_sio_conn_emit_scratch(agx_sio_conn *c, const char *event, const struct iovec *iov,
                              size_t iovcnt, agx_error *err)
{
    if (!event || !iov)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "socket.io: no event name or attachment");
    out_msg m = {event, AGX_SIO_NO_ACK, NULL, true, true};
    return send_msg(c, &m, iov, iovcnt, err);
}

int agx_sio_conn_ack(agx_sio_conn *c, int64_t ack_id, const json_t *args, const struct iovec *iov,
                     size_t iovcnt, agx_error *err)
{
    out_msg m = {NULL, ack_id, args, iov != NULL, false};
    return send_msg(c, &m, iov, iovcnt, err);
}

/* ---- writing ---- */

/* One link write of up to SIO_WRITE_CHUNK bytes of the head unit. The units are raw websocket
 * frames, so a large one can go out over several turns; the link then never has to copy more
 * than one chunk's unsent tail into its own buffer. */
#define COALESCE_MAX ((size_t)32 << 10) /* small units written together, through a stack buffer */

/* Pops the head unit, which is fully written. */
static void head_done(agx_sio_conn *c)
{
    sio_frame *f = c->head;
    c->head = f->next;
    if (!c->head)
        c->tail = NULL;
    c->head_started = false;
    frame_put(c, f);
}

/* Several small whole units in one link write (one send) — after a corked batch. Returns 1 when
 * it wrote, 0 when the head is not such a run (write_head then writes the head alone). */
static int write_coalesced(agx_sio_conn *c)
{
    size_t total = 0;
    int units = 0;
    for (sio_frame *f = c->head; f && total + f->len <= COALESCE_MAX; f = f->next, units++)
        total += f->len;
    if (units < 2 || c->head_started)
        return 0;
    unsigned char buf[COALESCE_MAX];
    size_t off = 0;
    for (int i = 0; i < units; i++) {
        memcpy(buf + off, c->head->data + c->head->off, c->head->len);
        off += c->head->len;
        c->queued -= c->head->len;
        head_done(c);
    }
    if (c->link->write(c, buf, total) != 0) {
        sio_conn_set_why(c, AGX_ERR_UNAVAILABLE, "writing to the websocket failed");
        return -1;
    }
    return 1;
}

static int write_head(agx_sio_conn *c)
{
    int co = write_coalesced(c);
    if (co != 0)
        return co < 0 ? -1 : 0;
    sio_frame *f = c->head;
    size_t n = f->len < SIO_WRITE_CHUNK ? f->len : SIO_WRITE_CHUNK;
    /* The link keeps whatever the socket does not take and holds writeable turns back until it
     * is out. */
    if (c->link->write(c, f->data + f->off, n) != 0) {
        sio_conn_set_why(c, AGX_ERR_UNAVAILABLE, "writing to the websocket failed");
        return -1;
    }
    f->off += n;
    f->len -= n;
    c->queued -= n;
    c->head_started = f->len > 0;
    if (f->len == 0) {
        c->head = f->next;
        if (!c->head)
            c->tail = NULL;
        frame_put(c, f);
    }
    return 0;
}

int sio_conn_writeable(agx_sio_conn *c)
{
    if (c->hard_close) {
        sio_close_reason(c);
        return -1;
    }
    if (!c->head) {
        if (c->state == SIO_CLOSING) {
            sio_close_reason(c);
            return -1;
        }
        return 0;
    }
    if (write_head(c) != 0)
        return -1;
    if (c->congested && c->queued < c->lim.low_watermark) {
        c->congested = false;
        if (c->state == SIO_CONNECTED && c->h->on_drain) {
            c->in_writeable = true; /* an emit from on_drain waits for the next turn */
            c->h->on_drain(c, c->h->ud);
            c->in_writeable = false;
        }
    }
    if (c->head || c->state == SIO_CLOSING)
        sio_want_write(c);
    return 0;
}

/* ---- accessors ---- */

size_t agx_sio_conn_queued_bytes(const agx_sio_conn *c) { return c->queued; }
bool agx_sio_conn_congested(const agx_sio_conn *c) { return c->congested; }
