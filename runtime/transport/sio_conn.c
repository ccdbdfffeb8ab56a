/* sio_conn.c — one Socket.IO connection over one websocket, shared by both transport roles (the
 * host's client and each connection of agentix-server): Engine.IO heartbeat, Socket.IO CONNECT,
 * receiving and dispatching events/acks to the RPC layer, and the close bookkeeping. Sending
 * lives in sio_send.c. The roles (sio_server.c over lws through sio_lws.c, sio_client.c on
 * libuv) only translate their socket's events into the sio_conn_* calls of sio_conn_impl.h. */
#include "runtime/transport/sio_conn_impl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DEFAULT_MAX_PAYLOAD ((size_t)64 << 20)
#define DEFAULT_HIGH_WATERMARK ((size_t)1 << 20)
#define RX_KEEP_CAP ((size_t)256 << 10)   /* a larger receive buffer is freed after use */
#define CLOSE_FLUSH_SECS 5                /* a graceful close gets this long to flush */
#define HARD_CLOSE_SECS 2                 /* a failed conn gets this long to send its close frame */

/* ---- limits, ids ---- */

void sio_limits_resolve(const agx_sio_limits *in, agx_sio_limits *out)
{
    *out = in ? *in : (agx_sio_limits){0};
    if (!out->max_payload)
        out->max_payload = DEFAULT_MAX_PAYLOAD;
    if (!out->high_watermark)
        out->high_watermark = DEFAULT_HIGH_WATERMARK;
    if (!out->low_watermark || out->low_watermark > out->high_watermark)
        out->low_watermark = out->high_watermark / 4;
    if (!out->queue_limit)
        out->queue_limit = out->max_payload + out->high_watermark;
    if (!out->max_text || out->max_text > out->max_payload)
        out->max_text = out->max_payload;
}

void sio_random_bytes(void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom((unsigned char *)buf + got, len - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            abort(); /* the kernel's CSPRNG never fails on Linux >= 3.17 once seeded */
        got += (size_t)n;
    }
}

void sio_random_id(char *buf, size_t len)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[AGX_EIO_SID_MAX];
    if (len > sizeof raw)
        len = sizeof raw;
    sio_random_bytes(raw, len);
    for (size_t i = 0; i < len; i++)
        buf[i] = alphabet[raw[i] & 63];
    buf[len] = '\0';
}

/* ---- ending a connection ---- */

static void set_why(agx_sio_conn *c, int code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void set_why(agx_sio_conn *c, int code, const char *fmt, va_list ap)
{
    if (c->why_set)
        return;
    c->why_set = true;
    agx_error_setv(&c->why, (agx_error_code)code, fmt, ap);
}

void sio_conn_set_why(agx_sio_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_why(c, code, fmt, ap);
    va_end(ap);
}

static void stop_timers(agx_sio_conn *c)
{
    if (c->open_handles) {
        uv_timer_stop(&c->hb_timer);
        uv_timer_stop(&c->connect_timer);
    }
}


void sio_conn_fail(agx_sio_conn *c, int code, uint16_t ws_code, const char *fmt, ...)
{
    if (c->state == SIO_DEAD)
        return;
    va_list ap;
    va_start(ap, fmt);
    set_why(c, code, fmt, ap);
    va_end(ap);
    sio_queue_drop(c);
    stop_timers(c);
    c->state = SIO_CLOSING;
    c->hard_close = true;
    c->ws_close_code = ws_code;
    /* From a timer there is no link callback to return -1 from: the next writeable turn closes
     * (with ws_code), and a peer that never becomes writable is cut off by the link's bound. */
    if (c->link)
        c->link->arm_close(c, HARD_CLOSE_SECS);
    else if (c->abort_dial)
        c->abort_dial(c);
}

/* Flushes what is queued, then closes with 1000. */
static void begin_graceful_close(agx_sio_conn *c)
{
    if (c->state == SIO_CLOSING || c->state == SIO_DEAD)
        return;
    c->state = SIO_CLOSING;
    c->ws_close_code = SIO_WS_NORMAL;
    stop_timers(c);
    if (c->link) {
        c->link->arm_close(c, CLOSE_FLUSH_SECS);
    } else if (c->abort_dial) {
        c->abort_dial(c);
    }
}

void agx_sio_conn_close(agx_sio_conn *c)
{
    if (!c || c->state == SIO_CLOSING || c->state == SIO_DEAD)
        return;
    sio_conn_set_why(c, AGX_OK, "closed by this side");
    if (c->state == SIO_CONNECTED)
        sio_queue_text(c, "41", 2, false);
    begin_graceful_close(c);
}

static void timer_closed(uv_handle_t *h)
{
    agx_sio_conn *c = h->data;
    if (--c->open_handles == 0 && c->released)
        c->released(c);
}

void sio_conn_detach(agx_sio_conn *c)
{
    if (c->state == SIO_DEAD)
        return;
    c->state = SIO_DEAD;
    c->link = NULL;
    c->link_ptr = NULL;
    sio_queue_drop(c);
    stop_timers(c);
    if (c->reported_connect || c->always_report_close) {
        if (!c->why_set)
            sio_conn_set_why(c, AGX_ERR_UNAVAILABLE, "the connection was lost");
        if (c->h->on_close)
            c->h->on_close(c, &c->why, c->h->ud);
    }
    if (c->open_handles) {
        uv_close((uv_handle_t *)&c->hb_timer, timer_closed);
        uv_close((uv_handle_t *)&c->connect_timer, timer_closed);
    } else if (c->released) {
        c->released(c);
    }
}

static void rx_release(agx_sio_conn *c);

void sio_conn_dispose(agx_sio_conn *c)
{
    sio_queue_drop(c);
    sio_queue_free_spares(c, 0);
    rx_release(c);
    c->rx_len = 0;
    agx_sio_decoder_dispose(&c->dec);
    json_decref(c->connect_data);
    c->connect_data = NULL;
}

/* ---- timers ---- */

/* Once per heartbeat: a connection that carried no message since the last one gives back its
 * receive buffer and recycled send units, so a burst does not raise its idle footprint for good.
 * Busy connections keep them (no allocation per message while traffic flows). */
static void idle_trim(agx_sio_conn *c)
{
    if (!c->active) {
        if (c->rx_len == 0)
            rx_release(c);
        sio_queue_free_spares(c, SIO_SPARE_IDLE_CAP);
    }
    c->active = false;
}

static void hb_fired(uv_timer_t *t);

/* A heartbeat deadline passed. Timers run before the loop polls sockets, so after a busy
 * stretch the awaited ping/pong may be sitting unread: give the loop one poll (a 1 ms grace
 * turn) before declaring the peer dead. */
static bool hb_grace(agx_sio_conn *c)
{
    if (c->hb_grace)
        return false;
    c->hb_grace = true;
    uv_timer_start(&c->hb_timer, hb_fired, 1, 0);
    return true;
}

static void hb_fired(uv_timer_t *t)
{
    agx_sio_conn *c = t->data;
    if (c->client) {
        if (!hb_grace(c))
            sio_conn_fail(c, AGX_ERR_TIMEOUT, SIO_WS_GOINGAWAY,
                          "no ping from the server within %u ms: the connection is dead",
                          c->ping_interval_ms + c->ping_timeout_ms);
        return;
    }
    if (c->awaiting_pong) {
        if (!hb_grace(c))
            sio_conn_fail(c, AGX_ERR_TIMEOUT, SIO_WS_GOINGAWAY,
                          "no pong within %u ms: the peer is dead", c->ping_timeout_ms);
        return;
    }
    idle_trim(c);
    if (sio_queue_text(c, "2", 1, true) != 0) {
        sio_conn_fail(c, AGX_ERR_NO_MEMORY, SIO_WS_UNEXPECTED_CONDITION,
                      "out of memory queueing a ping");
        return;
    }
    c->awaiting_pong = true;
    uv_timer_start(&c->hb_timer, hb_fired, c->ping_timeout_ms, 0);
}

static void connect_fired(uv_timer_t *t)
{
    agx_sio_conn *c = t->data;
    if (c->client)
        sio_conn_fail(c, AGX_ERR_TIMEOUT, SIO_WS_GOINGAWAY,
                      "connecting timed out after %u ms", c->connect_timeout_ms);
    else
        sio_conn_fail(c, AGX_ERR_TIMEOUT, SIO_WS_POLICY_VIOLATION,
                      "no Socket.IO CONNECT within %u ms", c->connect_timeout_ms);
}

static void arm_watchdog(agx_sio_conn *c)
{
    c->hb_grace = false;
    uv_timer_start(&c->hb_timer, hb_fired, (uint64_t)c->ping_interval_ms + c->ping_timeout_ms, 0);
}

/* ---- setup ---- */

int sio_conn_init(agx_sio_conn *c, uv_loop_t *loop, const sio_conn_params *p, agx_error *err)
{
    c->loop = loop;
    c->client = p->client;
    c->state = SIO_OPENING;
    c->h = p->h;
    c->lim = *p->lim;
    c->authorize = p->authorize;
    c->ping_interval_ms = p->ping_interval_ms;
    c->ping_timeout_ms = p->ping_timeout_ms;
    c->connect_timeout_ms = p->connect_timeout_ms;
    c->released = p->released;
    c->abort_dial = p->abort_dial;
    c->owner = p->owner;
    c->rx_total = p->rx_total;
    c->always_report_close = p->client;
    if (p->client) {
        while (!c->mask_state)
            sio_random_bytes(&c->mask_state, sizeof c->mask_state);
    }
    agx_sio_decoder_init(&c->dec, c->lim.max_payload);
    if (p->client && p->token) {
        c->connect_data = json_pack("{s:s}", "token", p->token);
        if (!c->connect_data)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "the token must be valid UTF-8");
    }
    uv_timer_init(loop, &c->hb_timer);
    uv_timer_init(loop, &c->connect_timer);
    c->hb_timer.data = c->connect_timer.data = c;
    c->open_handles = 2;
    sio_conn_start_connect_timer(c);
    return 0;
}

void sio_conn_start_connect_timer(agx_sio_conn *c)
{
    uv_update_time(c->loop); /* the loop's cached now may be stale (before uv_run, long setup) */
    uv_timer_start(&c->connect_timer, connect_fired, c->connect_timeout_ms, 0);
}

int sio_conn_attach_link(agx_sio_conn *c, const sio_link_ops *ops, void *link_ptr)
{
    c->link = ops;
    c->link_ptr = link_ptr;
    if (c->client)
        return 0; /* the server speaks first */
    agx_eio_open open = {.ping_interval_ms = c->ping_interval_ms,
                         .ping_timeout_ms = c->ping_timeout_ms,
                         .max_payload = c->lim.max_payload};
    sio_random_id(open.sid, AGX_SIO_SOCKET_SID_LEN);
    memcpy(c->eio_sid, open.sid, sizeof c->eio_sid);
    char buf[256];
    size_t n;
    if (agx_eio_encode_open(buf, sizeof buf, &open, &n, NULL) != 0 ||
        sio_queue_text(c, buf, n, false) != 0)
        return -1;
    uv_timer_start(&c->hb_timer, hb_fired, c->ping_interval_ms, 0);
    return 0;
}

/* ---- receiving ---- */

static int protocol_error(agx_sio_conn *c, const char *what)
{
    sio_conn_fail(c, AGX_ERR_PROTOCOL, SIO_WS_PROTOCOL_ERR, "%s", what);
    return -1;
}

/* Both roles end the Socket.IO handshake here: the connection is up, its owner is told. */
static int connected(agx_sio_conn *c)
{
    c->state = SIO_CONNECTED;
    uv_timer_stop(&c->connect_timer);
    c->reported_connect = true;
    if (c->h->on_connect)
        c->h->on_connect(c, c->h->ud);
    return 0;
}

static int server_connect(agx_sio_conn *c, const agx_sio_packet *p)
{
    if (c->state != SIO_OPENING)
        return protocol_error(c, "socket.io: a second CONNECT on the connection");
    if (c->authorize && !c->authorize(p->data, c->h->ud)) {
        static const char refusal[] = "44{\"message\":\"invalid token\"}";
        sio_conn_set_why(c, AGX_ERR_PROTOCOL, "the client sent an invalid token");
        if (sio_queue_text(c, refusal, sizeof refusal - 1, false) != 0)
            return protocol_error(c, "out of memory");
        begin_graceful_close(c);
        return 0;
    }
    sio_random_id(c->sid, AGX_SIO_SOCKET_SID_LEN);
    char buf[64];
    int n = snprintf(buf, sizeof buf, "40{\"sid\":\"%s\"}", c->sid);
    if (sio_queue_text(c, buf, (size_t)n, false) != 0)
        return protocol_error(c, "out of memory");
    return connected(c);
}

static int client_connected(agx_sio_conn *c, const agx_sio_packet *p)
{
    if (c->state != SIO_OPENING || !c->got_open)
        return protocol_error(c, "socket.io: unexpected CONNECT reply");
    const char *sid = json_string_value(json_object_get(p->data, "sid"));
    size_t n = sid ? strlen(sid) : 0;
    if (n == 0 || n > AGX_EIO_SID_MAX)
        return protocol_error(c, "socket.io: the CONNECT reply has no sid (a Socket.IO v2 "
                                 "server? agentix needs Socket.IO v5)");
    memcpy(c->sid, sid, n + 1);
    return connected(c);
}

static int connect_error(agx_sio_conn *c, const agx_sio_packet *p)
{
    if (!c->client)
        return protocol_error(c, "socket.io: CONNECT_ERROR from a client");
    const char *msg = json_is_string(p->data)
                          ? json_string_value(p->data)
                          : json_string_value(json_object_get(p->data, "message"));
    sio_conn_fail(c, AGX_ERR_PROTOCOL, SIO_WS_NORMAL,
                  "the server refused the Socket.IO connection: %s",
                  msg ? msg : "(no message)");
    return -1;
}

static int dispatch(agx_sio_conn *c, const agx_sio_packet *p)
{
    if (strcmp(p->nsp, "/") != 0) {
        if (!c->client && p->type == AGX_SIO_CONNECT) {
            char buf[AGX_SIO_NSP_MAX + 64];
            int n = snprintf(buf, sizeof buf, "44%s,{\"message\":\"Invalid namespace\"}", p->nsp);
            return sio_queue_text(c, buf, (size_t)n, false) ? protocol_error(c, "out of memory") : 0;
        }
        return protocol_error(c, "socket.io: packet for a namespace that is not connected");
    }
    switch (p->type) {
    case AGX_SIO_CONNECT:
        return c->client ? client_connected(c, p) : server_connect(c, p);
    case AGX_SIO_CONNECT_ERROR:
        return connect_error(c, p);
    case AGX_SIO_DISCONNECT:
        sio_conn_set_why(c, AGX_ERR_UNAVAILABLE, "the peer disconnected");
        begin_graceful_close(c);
        return 0;
    case AGX_SIO_EVENT:
    case AGX_SIO_BINARY_EVENT:
        if (c->state != SIO_CONNECTED)
            return c->state == SIO_CLOSING ? 0 : protocol_error(c, "socket.io: event before CONNECT");
        if (c->h->on_event)
            c->h->on_event(c, p, c->h->ud);
        return 0;
    case AGX_SIO_ACK:
    case AGX_SIO_BINARY_ACK:
        if (c->state != SIO_CONNECTED)
            return c->state == SIO_CLOSING ? 0 : protocol_error(c, "socket.io: ack before CONNECT");
        if (p->ack_id < c->next_ack_id && c->h->on_ack)
            c->h->on_ack(c, p, c->h->ud);
        return 0;
    }
    return protocol_error(c, "socket.io: unknown packet type");
}

static int deliver(agx_sio_conn *c, int rc, agx_error *e)
{
    if (rc < 0) {
        sio_conn_fail(c, e->code, rc == AGX_ERR_LIMIT ? SIO_WS_MESSAGE_TOO_LARGE
                                                      : SIO_WS_PROTOCOL_ERR,
                      "%s", e->message);
        return -1;
    }
    if (rc == 0)
        return 0;
    rc = dispatch(c, &c->dec.pkt);
    if (c->dec.state == AGX_SIO_DEC_READY)
        agx_sio_decoder_dispose(&c->dec); /* drop the packet's JSON now, not at the next frame */
    return rc;
}

static int client_open(agx_sio_conn *c, const char *payload, size_t len)
{
    agx_eio_open open;
    agx_error e;
    if (c->got_open)
        return protocol_error(c, "engine.io: a second open packet");
    if (agx_eio_parse_open(payload, len, &open, &e) != 0)
        return protocol_error(c, e.message);
    c->got_open = true;
    memcpy(c->eio_sid, open.sid, sizeof c->eio_sid);
    c->ping_interval_ms = open.ping_interval_ms;
    c->ping_timeout_ms = open.ping_timeout_ms;
    c->peer_max_payload = open.max_payload;
    char buf[4096];
    size_t n;
    if (agx_sio_encode(buf, sizeof buf, AGX_SIO_CONNECT, NULL, AGX_SIO_NO_ACK, 0,
                       c->connect_data, &n, &e) != 0 ||
        sio_queue_text(c, buf, n, false) != 0)
        return protocol_error(c, "socket.io: cannot encode the CONNECT packet (token too long?)");
    arm_watchdog(c);
    return 0;
}

static int on_text(agx_sio_conn *c, const char *s, size_t len)
{
    agx_eio_type type;
    const char *payload;
    size_t plen;
    agx_error e;
    if (agx_eio_decode(s, len, &type, &payload, &plen, &e) != 0)
        return protocol_error(c, e.message);
    switch (type) {
    case AGX_EIO_MESSAGE:
        /* Before CONNECT nothing but a CONNECT is parsed (PROTOCOL.md §1). */
        if (!c->client && c->state == SIO_OPENING && (plen == 0 || payload[0] != '0'))
            return protocol_error(c, "socket.io: a packet other than CONNECT before CONNECT");
        c->active = true;
        return deliver(c, agx_sio_decoder_text(&c->dec, payload, plen, &e), &e);
    case AGX_EIO_PING:
        if (!c->client)
            return protocol_error(c, "engine.io: ping from a client (invalid heartbeat direction)");
        if (c->state == SIO_CLOSING)
            return 0;
        idle_trim(c);
        arm_watchdog(c);
        return sio_queue_text(c, "3", 1, true) ? protocol_error(c, "out of memory") : 0;
    case AGX_EIO_PONG:
        if (c->client)
            return protocol_error(c, "engine.io: pong from the server (invalid heartbeat direction)");
        if (c->awaiting_pong && c->state != SIO_CLOSING) {
            c->awaiting_pong = false;
            c->hb_grace = false;
            uv_timer_start(&c->hb_timer, hb_fired, c->ping_interval_ms, 0);
        }
        return 0;
    case AGX_EIO_OPEN:
        return c->client ? client_open(c, payload, plen)
                         : protocol_error(c, "engine.io: open packet from a client");
    case AGX_EIO_CLOSE:
        sio_conn_set_why(c, AGX_ERR_UNAVAILABLE, "the peer closed the engine.io session");
        begin_graceful_close(c);
        return 0;
    case AGX_EIO_NOOP:
        return 0;
    case AGX_EIO_UPGRADE:
        break;
    }
    return protocol_error(c, "engine.io: unexpected upgrade packet on a websocket session");
}

static int on_message(agx_sio_conn *c, const uint8_t *data, size_t len, bool binary)
{
    agx_error e;
    if (binary) {
        c->active = true;
        return deliver(c, agx_sio_decoder_binary(&c->dec, data, len, &e), &e);
    }
    return on_text(c, (const char *)data, len);
}

/* The largest message this connection may receive now: a server connection without a
 * CONNECT takes only what a CONNECT needs. */
static size_t message_limit(const agx_sio_conn *c)
{
    if (!c->client && c->state != SIO_CONNECTED)
        return AGX_SIO_PREAUTH_MAX;
    return c->rx_binary ? c->lim.max_payload : c->lim.max_text;
}

/* The receive buffer holds a message that came in several pieces (or frames). Its size counts
 * against the server-wide rx_budget: each connection alone is bounded by max_payload, but many
 * authenticated peers each holding a partly sent message would otherwise add up without bound. */
static void rx_release(agx_sio_conn *c)
{
    if (c->rx_total)
        *c->rx_total -= c->rx_cap;
    agx_value_buffer_free(c->rx, c->rx_cap);
    c->rx = NULL;
    c->rx_cap = 0;
}

/* The buffer is sized to the message when its length is known (a single frame: its header says
 * how much follows), so a buffer the client hands over as a value holds no slack; only a message
 * in several frames grows by doubling. */
static int rx_grow(agx_sio_conn *c, size_t need, size_t max)
{
    size_t cap = need < 4096 ? 4096 : need;
    if (c->rx_len && c->rx_cap <= max / 2 && c->rx_cap * 2 > cap)
        cap = c->rx_cap * 2;
    if (c->rx_total && c->lim.rx_budget &&
        *c->rx_total - c->rx_cap + cap > c->lim.rx_budget) {
        sio_conn_fail(c, AGX_ERR_LIMIT, SIO_WS_TRY_AGAIN_LATER,
                      "the server's receive buffers are full (%zu of %zu bytes held for messages "
                      "received in part); this %zu-byte message was refused: send it again later",
                      *c->rx_total, c->lim.rx_budget, need);
        return -1;
    }
    uint8_t *nb = agx_value_buffer_alloc(cap);
    if (!nb) {
        sio_conn_fail(c, AGX_ERR_NO_MEMORY, SIO_WS_UNEXPECTED_CONDITION,
                      "out of memory receiving a %zu-byte message", need);
        return -1;
    }
    if (c->rx_len)
        memcpy(nb, c->rx, c->rx_len);
    agx_value_buffer_free(c->rx, c->rx_cap);
    if (c->rx_total)
        *c->rx_total += cap - c->rx_cap;
    c->rx = nb;
    c->rx_cap = cap;
    if (cap > c->peak_bytes)
        c->peak_bytes = cap;
    return 0;
}

agx_value *agx_sio_conn_adopt_tail(agx_sio_conn *c, agx_value_type type, const void *data,
                                   size_t len)
{
    uintptr_t at = (uintptr_t)data, lo = (uintptr_t)c->rx;
    if (!c->rx_delivering || at < lo || at - lo > c->rx_delivering ||
        len != c->rx_delivering - (at - lo))
        return NULL;
    agx_value *v = agx_value_buffer_adopt(c->rx, c->rx_cap, type, data, len);
    if (!v)
        return NULL;
    if (c->rx_total)
        *c->rx_total -= c->rx_cap;
    c->rx = NULL; /* the next message starts in a fresh buffer (rx_grow) */
    c->rx_cap = 0;
    c->rx_delivering = 0;
    return v;
}

/* Delivers a message from the receive buffer: while it runs, the handler may take the buffer
 * (agx_sio_conn_adopt_tail). */
static int on_rx_message(agx_sio_conn *c, size_t len)
{
    c->rx_delivering = len;
    int rc = on_message(c, c->rx, len, c->rx_binary);
    c->rx_delivering = 0;
    return rc;
}

unsigned char *sio_conn_rx_slot(agx_sio_conn *c, size_t left)
{
    if (c->state == SIO_DEAD || c->hard_close || !c->rx || c->rx_cap - c->rx_len < left)
        return NULL;
    return c->rx + c->rx_len;
}

int sio_conn_receive_piece(agx_sio_conn *c, const void *in, size_t len, bool first, bool final,
                           bool binary, size_t remaining)
{
    if (c->state == SIO_DEAD || c->hard_close)
        return -1;
    if (first) {
        c->rx_len = 0;
        c->rx_binary = binary;
    }
    if (!c->client && c->state == SIO_OPENING && c->rx_binary) {
        sio_conn_fail(c, AGX_ERR_PROTOCOL, SIO_WS_POLICY_VIOLATION,
                      "binary data before the Socket.IO CONNECT");
        sio_close_reason(c);
        return -1;
    }
    size_t max = message_limit(c);
    if (len > max - c->rx_len || remaining > max - c->rx_len - len) {
        sio_conn_fail(c, AGX_ERR_LIMIT, SIO_WS_MESSAGE_TOO_LARGE,
                      "a websocket %s message is over the %zu-byte limit%s",
                      c->rx_binary ? "binary" : "text", max,
                      !c->client && c->state != SIO_CONNECTED ? " before CONNECT" : "");
        sio_close_reason(c);
        return -1;
    }
    bool done = final && remaining == 0;
    int rc;
    if (done && c->rx_len == 0 && in == c->rx && len) {
        rc = on_rx_message(c, len); /* read in place with no earlier piece */
    } else if (done && c->rx_len == 0) {
        rc = on_message(c, in, len, c->rx_binary); /* the common case: no copy */
    } else {
        size_t need = c->rx_len + len + (done ? 0 : remaining);
        if (need > c->rx_cap && rx_grow(c, need, max) != 0) {
            sio_close_reason(c);
            return -1;
        }
        if (in != c->rx + c->rx_len) /* else read in place (sio_conn_rx_slot) */
            memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        if (!done)
            return 0;
        rc = on_rx_message(c, c->rx_len);
        c->rx_len = 0;
        if (c->rx_cap > RX_KEEP_CAP)
            rx_release(c);
    }
    if (rc < 0 || c->hard_close) {
        sio_close_reason(c);
        return -1;
    }
    return 0;
}

/* ---- accessors ---- */

const char *agx_sio_conn_sid(const agx_sio_conn *c) { return c->sid; }
void agx_sio_conn_set_userdata(agx_sio_conn *c, void *p) { c->userdata = p; }
void *agx_sio_conn_userdata(const agx_sio_conn *c) { return c->userdata; }
