/* sio_conn_impl.h — the inside of agx_sio_conn, shared by the two roles that drive it:
 * sio_server.c (one conn per accepted websocket, over libwebsockets: sio_lws.c) and sio_client.c
 * (the conn of one dialled websocket, on plain libuv). The role's socket is a "link" (the ops
 * below): it feeds received bytes and writeable turns in; the conn does Engine.IO/Socket.IO,
 * heartbeat, the send queue and the close bookkeeping. Private to runtime/transport. Loop thread
 * only. */
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

/* RFC 6455 close codes the conn sends (the numbers lws's enum lws_close_status uses too). */
enum {
    SIO_WS_NORMAL = 1000,
    SIO_WS_GOINGAWAY = 1001,
    SIO_WS_PROTOCOL_ERR = 1002,
    SIO_WS_ABNORMAL = 1006, /* never sent on the wire: the link failed */
    SIO_WS_POLICY_VIOLATION = 1008,
    SIO_WS_MESSAGE_TOO_LARGE = 1009,
    SIO_WS_UNEXPECTED_CONDITION = 1011,
    SIO_WS_TRY_AGAIN_LATER = 1013
};

/* The socket under a conn. Every op is called on the loop thread with the conn it serves. */
typedef struct sio_link_ops {
    /* Writes n bytes (whole websocket frames, already masked on the client) in order after what
     * was written before; what the socket does not take now the link keeps and sends later
     * (choked() is true meanwhile). -1 when the socket failed. */
    int (*write)(agx_sio_conn *c, const unsigned char *p, size_t n);
    /* Asks for a writeable turn: sio_conn_writeable once the link can take more (never from
     * inside this call). */
    void (*want_write)(agx_sio_conn *c);
    /* True while earlier writes are still being flushed. */
    bool (*choked)(const agx_sio_conn *c);
    /* The conn is closing: a writeable turn returns -1 once the queue is out; the link ends the
     * socket anyway after secs. Safe from timers and handlers. */
    void (*arm_close)(agx_sio_conn *c, int secs);
    /* For links whose websocket framing is not ours (lws's websocket server): tell the peer
     * c->ws_close_code as the socket closes. NULL = the conn writes a close frame itself. */
    void (*close_reason)(agx_sio_conn *c);
    /* Optional (NULL = not offered): gathers iov straight into the socket without blocking and
     * keeps none of it; only called when choked() is false and nothing is queued, so the bytes
     * follow everything written before. Bytes the socket took (0 when full), -1 when it failed.
     * Lets a large attachment leave from the caller's buffer instead of a copy in the queue. */
    long (*writev_now)(agx_sio_conn *c, const struct iovec *iov, int iovcnt);
} sio_link_ops;

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
/* Recycled units up to this size stay through idle periods (pings and pongs reuse them). */
#define SIO_SPARE_IDLE_CAP 4096

struct agx_sio_conn {
    const sio_link_ops *link; /* the socket; NULL until attached and once it is gone */
    void *link_ptr;           /* the link's own object (an lws wsi, the dialled client) */
    uv_loop_t *loop;
    bool client;
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
    uint8_t *rx;              /* from agx_value_buffer_alloc: it may become a value (adopt_tail) */
    size_t rx_len, rx_cap;
    size_t rx_delivering;     /* bytes of rx in the message being delivered (0: not from rx) */
    size_t *rx_total; /* the server's sum of every connection's rx_cap (lim.rx_budget); NULL: none */
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
    bool active;              /* a message went either way since the last heartbeat */
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
    size_t *rx_total; /* server: the counter lim->rx_budget bounds, shared by its connections */
} sio_conn_params;

/* Fills the defaults of sio_conn.h into *out. */
void sio_limits_resolve(const agx_sio_limits *in, agx_sio_limits *out);

/* Initialises c (caller-allocated, zeroed) and starts its timers (the connect timer at once). */
int sio_conn_init(agx_sio_conn *c, uv_loop_t *loop, const sio_conn_params *p, agx_error *err);

/* (Re)starts the connect timeout from now. */
void sio_conn_start_connect_timer(agx_sio_conn *c);

/* The websocket is established on a link: the server sends its open packet and starts pinging;
 * the client waits for the open packet. Returns -1 when the link must close now. */
int sio_conn_attach_link(agx_sio_conn *c, const sio_link_ops *ops, void *link_ptr);

/* Where the next `left` bytes of the message being received would be copied, when the receive
 * buffer already has room for them (else NULL): a link may read them straight there and pass
 * them to sio_conn_receive_piece as usual, which then skips its copy. Valid until the next call
 * into the conn. */
unsigned char *sio_conn_rx_slot(agx_sio_conn *c, size_t left);

/* A piece of a message from the link's websocket parser: first/final piece of the message, its
 * type (read on the first piece), and the bytes of the current frame still to come. Returns -1
 * when the link must close the socket now. */
int sio_conn_receive_piece(agx_sio_conn *c, const void *in, size_t len, bool first, bool final,
                           bool binary, size_t remaining);

/* A writeable turn: one link write. Returns -1 when the link must close the socket now. */
int sio_conn_writeable(agx_sio_conn *c);

/* The socket is gone (closed, failed, its context destroyed): reports on_close if due, closes the
 * timers, and calls released() once they are closed. Idempotent. */
void sio_conn_detach(agx_sio_conn *c);

/* sio_lws.c: the link over a libwebsockets websocket (agentix-server's role). */
/* Attaches c to wsi (sio_conn_attach_link with the lws ops). */
int sio_conn_attach(agx_sio_conn *c, struct lws *wsi);
/* A RECEIVE callback's bytes. Returns -1 when lws must close the websocket now. */
int sio_conn_receive(agx_sio_conn *c, const void *in, size_t len);

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
void sio_queue_free_spares(agx_sio_conn *c, size_t keep_cap); /* those over keep_cap bytes */
void sio_want_write(agx_sio_conn *c);
/* Queues a websocket control frame (ping 0x9 / pong 0xA / close 0x8, payload <= 125 bytes)
 * ahead of the data units. */
int sio_queue_control(agx_sio_conn *c, unsigned opcode, const void *payload, size_t n);
/* Before the link closes the socket: tells the peer c->ws_close_code in a close frame (the link's
 * close_reason, or ours written through the link, best effort). */
void sio_close_reason(agx_sio_conn *c);

/* Frees what init allocated that is not tied to the timers (queue, buffers, decoder). */
void sio_conn_dispose(agx_sio_conn *c);

/* len bytes from the kernel's CSPRNG. */
void sio_random_bytes(void *buf, size_t len);
/* Random url-safe id of len chars (Engine.IO / Socket.IO sids). buf holds len+1. */
void sio_random_id(char *buf, size_t len);

/* lws context plumbing (sio_lws.c). */
void sio_lws_log_init(void);
/* Finishes a context whose first lws_context_destroy ran and whose handles closed on the loop. */
void sio_lws_context_finish(struct lws_context *ctx);

#endif
