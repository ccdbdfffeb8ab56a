/* sio_conn_impl.h — the inside of agx_sio_conn, shared by the two roles that drive it from their
 * lws callbacks: sio_server.c (one conn per accepted websocket) and sio_client.c (the conn of
 * the one dialled websocket). The roles feed received bytes and WRITEABLE turns in; the conn does
 * Engine.IO/Socket.IO, heartbeat, the send queue and the close bookkeeping. Private to
 * runtime/transport. Loop thread only. */
#ifndef AGX_TRANSPORT_SIO_CONN_IMPL_H
#define AGX_TRANSPORT_SIO_CONN_IMPL_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <uv.h>

#include "runtime/transport/sio_conn.h"

#define AGX_SIO_SOCKET_SID_LEN 20
/* Most bytes one lws_write carries; also the protocols' tx_packet_size, so lws hands the whole
 * chunk to one send() instead of 64 KiB pieces. */
#define SIO_WRITE_CHUNK ((size_t)1 << 20)
/* Bytes lws reads per RECEIVE callback (protocols' rx_buffer_size, context pt_serv_buf_size). */
#define SIO_RX_CHUNK 65536

typedef enum sio_conn_state {
    SIO_OPENING = 0, /* websocket up (or dialling), Socket.IO CONNECT not done */
    SIO_CONNECTED,
    SIO_CLOSING,     /* flushing the queue, then the websocket closes */
    SIO_DEAD         /* the websocket is gone; on_close has been called (if due) */
} sio_conn_state;

/* One queued wire unit: whole websocket frames, already framed (and masked on the client), so
 * a Socket.IO header and its attachment leave in one lws_write and one syscall. */
typedef struct sio_frame {
    struct sio_frame *next;
    size_t cap;             /* bytes in data[] */
    size_t off, len;        /* the wire bytes are data[off .. off+len) */
    unsigned char data[];
} sio_frame;

#define SIO_SPARE_FRAMES 4

struct agx_sio_conn {
    struct lws *wsi;
    uv_loop_t *loop;
    bool client;
    bool raw;                 /* wsi is an lws raw socket: websocket framing is ours (sio_wsraw.c) */
    sio_conn_state state;
    const agx_sio_handlers *h;
    agx_sio_limits lim;

    /* server role */
    bool (*authorize)(const json_t *auth, void *ud);
    uint32_t ping_interval_ms, ping_timeout_ms, connect_timeout_ms;
    bool awaiting_pong;
    bool hb_grace;            /* a heartbeat deadline passed; one more poll before failing */
    /* client role */
    json_t *connect_data;  /* CONNECT payload, owned; NULL = none */
    bool got_open;
    uint64_t peer_max_payload; /* 0 = unknown */

    char eio_sid[AGX_EIO_SID_MAX + 1];
    char sid[AGX_EIO_SID_MAX + 1]; /* Socket.IO sid (CONNECT reply) */

    /* receive: a message spread over several lws RECEIVE calls is gathered here */
    uint8_t *rx;
    size_t rx_len, rx_cap;
    size_t peak_bytes;        /* the largest receive buffer it ever had (heap trimmed after) */
    bool rx_binary;
    agx_sio_decoder dec;

    /* send queue (frames in wire order) and recycled frames */
    sio_frame *head, *tail;
    bool head_started;        /* part of the head unit is already written */
    bool in_writeable;        /* inside on_drain from a WRITEABLE turn */
    size_t queued;
    bool congested;
    sio_frame *spare[SIO_SPARE_FRAMES];
    int64_t next_ack_id;
    uint64_t mask_state;      /* client: xorshift state for websocket masking keys */

    uv_timer_t hb_timer;      /* server: next ping / pong deadline; client: dead-server watchdog */
    uv_timer_t connect_timer; /* no Socket.IO CONNECT in time */
    int open_handles;         /* timers not yet closed */

    bool reported_connect;    /* on_connect ran, so on_close is due */
    bool always_report_close; /* client: on_close even without on_connect */
    bool hard_close;          /* drop the queue and close the socket at the next chance */
    uint16_t ws_close_code;
    agx_error why;
    bool why_set;

    void *userdata;
    void (*released)(agx_sio_conn *c); /* the role frees c (called once the timers closed) */
    void (*abort_dial)(agx_sio_conn *c); /* client: end a conn with no websocket yet */
    void *owner;
    agx_sio_conn *prev, *next; /* the server's list */
    agx_sio_conn *cork_next;   /* the corked list of sio_send.c */
    bool in_cork_list;
};

typedef struct sio_conn_params {
    bool client;
    const agx_sio_handlers *h;
    const agx_sio_limits *lim; /* already resolved (sio_limits_resolve) */
    uint32_t ping_interval_ms, ping_timeout_ms, connect_timeout_ms;
    bool (*authorize)(const json_t *auth, void *ud);
    const char *token; /* client */
    void (*released)(agx_sio_conn *c);
    void (*abort_dial)(agx_sio_conn *c);
    void *owner;
} sio_conn_params;

/* Fills the defaults of sio_conn.h into *out. */
void sio_limits_resolve(const agx_sio_limits *in, agx_sio_limits *out);

/* Initialises c (caller-allocated, zeroed) and starts its timers (the connect timer at once). */
int sio_conn_init(agx_sio_conn *c, uv_loop_t *loop, const sio_conn_params *p, agx_error *err);

/* (Re)starts the connect timeout from now: the client calls it once its lws context is up, so
 * context setup does not eat into the caller's connect budget. */
void sio_conn_start_connect_timer(agx_sio_conn *c);

/* The websocket is established: the server sends its open packet and starts pinging; the client
 * waits for the open packet. */
int sio_conn_attach(agx_sio_conn *c, struct lws *wsi);

/* A RECEIVE callback's bytes. Returns -1 when lws must close the websocket now. */
int sio_conn_receive(agx_sio_conn *c, const void *in, size_t len);
/* The same for a piece of a message from any websocket parser: first/final piece of the message,
 * its type (read on the first piece), and the bytes of the current frame still to come. */
int sio_conn_receive_piece(agx_sio_conn *c, const void *in, size_t len, bool first, bool final,
                           bool binary, size_t remaining);

/* A WRITEABLE turn: one lws_write. Returns -1 when lws must close the websocket now. */
int sio_conn_writeable(agx_sio_conn *c);

/* The websocket is gone (CLOSED, CONNECTION_ERROR, context destroy): reports on_close if due,
 * closes the timers, and calls released() once they are closed. Idempotent. */
void sio_conn_detach(agx_sio_conn *c);

/* Records why the connection ends (the first reason wins) and closes it hard: the queue is
 * dropped and the socket closed with ws_code. Safe from timers and handlers. */
void sio_conn_fail(agx_sio_conn *c, int code, uint16_t ws_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records why the connection ends, unless a reason is already set. */
void sio_conn_set_why(agx_sio_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sio_send.c: queue a text frame (front = a control frame that jumps the queue), drop the
 * queue, free the recycled units, ask lws for a WRITEABLE turn. */
int sio_queue_text(agx_sio_conn *c, const char *s, size_t n, bool front);
void sio_queue_drop(agx_sio_conn *c);
void sio_queue_free_spares(agx_sio_conn *c);
void sio_want_write(agx_sio_conn *c);
/* Queues a websocket control frame (ping 0x9 / pong 0xA / close 0x8, payload <= 125 bytes)
 * ahead of the data units. */
int sio_queue_control(agx_sio_conn *c, unsigned opcode, const void *payload, size_t n);
/* Before the callback returns -1 to close: tells the peer c->ws_close_code in a close frame
 * (lws does it for its websockets; a raw socket gets ours, best effort). */
void sio_close_reason(agx_sio_conn *c);

/* Frees what init allocated that is not tied to the timers (queue, buffers, decoder). */
void sio_conn_dispose(agx_sio_conn *c);

/* len bytes from the kernel's CSPRNG. */
void sio_random_bytes(void *buf, size_t len);
/* Random url-safe id of len chars (Engine.IO / Socket.IO sids). buf holds len+1. */
void sio_random_id(char *buf, size_t len);

/* lws context plumbing common to both roles. */
void sio_lws_log_init(void);
/* Finishes a context whose first lws_context_destroy ran and whose handles closed on the loop. */
void sio_lws_context_finish(struct lws_context *ctx);

#endif
