/* sio_client_impl.h — the inside of the dialling side (sio_client.h), shared by its files:
 * sio_client.c (config: URL, connect-to, headers, the upgrade request; lifecycle and release),
 * sio_dial.c (the libuv socket: dial, the link ops under the conn, reads, writes, writeable
 * turns, the upgrade response and frames) and sio_tls.c (TLS over that socket with OpenSSL).
 * Private to runtime/transport. Loop thread only. */
#ifndef AGX_TRANSPORT_SIO_CLIENT_IMPL_H
#define AGX_TRANSPORT_SIO_CLIENT_IMPL_H

#include <openssl/ssl.h>

#include "runtime/transport/sio_client.h"
#include "runtime/transport/sio_conn_impl.h"
#include "runtime/transport/ws_frame.h"

/* Bytes one read takes (the dialer's shared buffer); a TLS connection's plaintext goes through a
 * second buffer of the same size. 64 KiB: measured, 256 KiB reads made the kernel's copy into
 * the buffer and ours out of it miss the cache, costing a quarter of a 64 KiB-item stream. */
#define SIO_DIAL_RBUF ((size_t)64 << 10)

typedef struct sio_tls_ctx sio_tls_ctx; /* one SSL_CTX per CA setting (sio_tls.c) */

struct agx_sio_dialer {
    uv_loop_t *loop;
    uv_idle_t turns;            /* gives queued writeable turns, once per loop iteration */
    agx_sio_client *turn_head, *turn_tail;
    unsigned char *rbuf;        /* socket bytes, lent to one read at a time */
    bool rbuf_lent;
    unsigned char *pbuf;        /* TLS plaintext */
    sio_tls_ctx *tls;           /* contexts made so far */
    size_t users;               /* clients not yet released */
    bool freed, handle_closed;
    bool *gone;                 /* set when the dialer's memory is released (private dialers) */
    void (*read_hook)(void *ud); /* agx_sio_dialer_set_read_hook */
    void *read_hook_ud;
};

typedef enum dial_state {
    DIAL_RESOLVING,   /* uv_getaddrinfo in flight */
    DIAL_CONNECTING,  /* socket connect in flight */
    DIAL_TLS,         /* TLS handshake */
    DIAL_UPGRADING,   /* upgrade request sent, waiting for 101 */
    DIAL_OPEN,        /* the websocket is up: the conn has its link */
    DIAL_DOWN         /* the socket is gone or going */
} dial_state;

struct agx_sio_client {
    agx_sio_dialer *d;
    bool private_dialer;
    agx_sio_conn conn;
    agx_sio_handlers h;         /* the caller's; emptied by agx_sio_client_free */
    agx_sio_limits lim;

    /* from the config (sio_client.c) */
    char *label;                /* scheme://host[:port] or the socket path, for messages */
    char *dial_host;            /* TCP: where to connect (connect-to applied) */
    int dial_port;
    char *unix_path;            /* Unix socket: its path (dial_host NULL) */
    char *tls_name;             /* https: the name the certificate must carry; NULL = plain */
    SSL_CTX *tls_ctx;           /* https: the dialer's context for the CA setting */
    char *request;              /* the upgrade request, until sent */
    size_t request_len;
    char ws_accept[32];         /* the Sec-WebSocket-Accept the server must answer */

    /* the socket (sio_dial.c) */
    dial_state st;
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } sock;
    bool sock_open;             /* sock was initialised and not yet closed */
    uv_connect_t creq;
    uv_getaddrinfo_t *gai;      /* while resolving */
    struct addrinfo *ai, *ai_next;
    uv_timer_t timer;           /* kick (0 ms: report a dial that ended without a socket) and
                                   the bound on a close */
    bool timer_open;
    agx_ws_head hs;
    agx_ws_frames frames;
    unsigned char *rx_lent; /* the conn's receive buffer, lent to the read under way */
    bool probe;             /* the last read ended a large frame in place: read little next */
    bool direct_rest;       /* the last read left part of a large frame: read the rest in place */
    bool large_end;         /* the read being handled ended a large frame */

    /* writes */
    uv_write_t wreq;
    unsigned char *wbuf;        /* the bytes of the write in flight */
    unsigned char *pend;        /* bytes waiting behind it */
    size_t pend_len, pend_cap;
    bool writing;
    bool want_turn, in_turns;
    agx_sio_client *turn_next;

    /* TLS (sio_tls.c) */
    SSL *ssl;
    const unsigned char *tls_in; /* ciphertext of the current read, for the BIO */
    size_t tls_in_len;

    /* release */
    bool conn_released, freed;
};

/* sio_client.c */
/* Frees c once nothing of it is left on the loop (socket, timer, conn timers, a lookup). */
void sio_client_maybe_release(agx_sio_client *c);
/* Records why the dial failed (first reason wins): "cannot open a websocket to <label> (<how
 * dialled>): <what>". */
void sio_client_dial_failed(agx_sio_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sio_dial.c */
void sio_dial_start(agx_sio_client *c);
/* Ends the socket (or the dial): the conn is detached once it has closed. Idempotent. */
void sio_dial_down(agx_sio_client *c);
/* Bytes through to the socket, below TLS: what the socket does not take now is kept and sent
 * in order. -1 when the socket failed. */
int sio_dial_send(agx_sio_client *c, const unsigned char *p, size_t n);
/* Plaintext from the socket (after TLS): the upgrade response, then frames. -1 = close now. */
int sio_dial_feed(agx_sio_client *c, const unsigned char *p, size_t n);
/* The socket (or the TLS session) is ready for the upgrade request. -1 = close now. */
int sio_dial_upgrade(agx_sio_client *c);

/* sio_tls.c */
/* The dialer's context for this CA setting (made on first use). */
int sio_tls_ctx_get(agx_sio_dialer *d, const char *ca_file, const char *ca_dir, SSL_CTX **out,
                    agx_error *err);
void sio_tls_ctx_free_all(agx_sio_dialer *d);
/* Starts the client side of a TLS session on c's connected socket. -1 = fail. */
int sio_tls_start(agx_sio_client *c, SSL_CTX *ctx);
/* Ciphertext read from the socket: drives the handshake, then decrypts into sio_dial_feed.
 * -1 = close now (why recorded). */
int sio_tls_read(agx_sio_client *c, const unsigned char *p, size_t n);
/* Plaintext to encrypt and send. -1 = the session failed. */
int sio_tls_write(agx_sio_client *c, const unsigned char *p, size_t n);
void sio_tls_free(agx_sio_client *c);

#endif
