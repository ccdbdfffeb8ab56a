/* sio_dial.c — the socket under a dialled connection (sio_client.h), on plain libuv: resolve and
 * connect (TCP, or a Unix socket), TLS when https (sio_tls.c), the websocket upgrade (request
 * built by sio_client.c, response checked by ws_frame.c), then the link the conn (sio_conn.c)
 * writes through and the frames it reads from.
 *
 * Reads land in the dialer's one shared buffer and are consumed inside the read callback (the
 * conn copies only a message that spans reads), so an idle connection holds no receive buffer;
 * the rest of a large data frame (a stream item) is read straight into the conn's message
 * buffer instead, where that copy would have put it.
 * Writes try the socket first (uv_try_write); only what the kernel does not take is copied and
 * handed to uv_write, and while that write is in flight the link is "choked" and the conn's
 * next writeable turn waits for its completion. Turns asked for while not choked are given once
 * per loop iteration by the dialer's idle handle, never from inside the asking call. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentix/unix_url.h"
#include "runtime/transport/sio_client_impl.h"

static agx_sio_client *of_conn(const agx_sio_conn *conn) { return conn->owner; }

/* ---- ending the socket ---- */

static void sock_closed(uv_handle_t *h)
{
    agx_sio_client *c = h->data;
    c->sock_open = false;
    sio_conn_detach(&c->conn); /* on_close (if due), then the conn's timers close */
    sio_client_maybe_release(c);
}

/* A dial that ends without a socket (never made, or the lookup failed): report from the loop,
 * never from inside the call that ended it. */
static void kick_fired(uv_timer_t *t)
{
    agx_sio_client *c = t->data;
    if (!c->sock_open && !c->gai)
        sio_conn_detach(&c->conn);
}

static void close_bound_fired(uv_timer_t *t)
{
    agx_sio_client *c = t->data;
    sio_conn_set_why(&c->conn, AGX_ERR_TIMEOUT, "the close did not finish in time");
    sio_dial_down(c);
}

void sio_dial_down(agx_sio_client *c)
{
    if (c->st == DIAL_DOWN)
        return;
    c->st = DIAL_DOWN;
    if (c->in_turns)
        c->want_turn = false; /* the dialer skips it */
    if (c->sock_open) {
        if (!uv_is_closing(&c->sock.handle))
            uv_close(&c->sock.handle, sock_closed);
    } else if (!c->gai && c->timer_open) {
        uv_timer_start(&c->timer, kick_fired, 0, 0);
    } else if (c->gai) {
        uv_cancel((uv_req_t *)c->gai); /* a lookup not started yet ends now; else when it returns */
    } /* the lookup's callback ends it */
}

static void fail_io(agx_sio_client *c, const char *what, int uverr)
{
    if (c->conn.link)
        sio_conn_set_why(&c->conn, AGX_ERR_UNAVAILABLE, "%s: %s", what, uv_strerror(uverr));
    else
        sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "%s: %s", what, uv_strerror(uverr));
    sio_dial_down(c);
}

/* ---- writing ---- */

static void write_done(uv_write_t *req, int status);
static void turn_request(agx_sio_client *c);

static void start_write(agx_sio_client *c)
{
    free(c->wbuf);
    c->wbuf = c->pend;
    uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)c->pend_len);
    c->pend = NULL;
    c->pend_len = c->pend_cap = 0;
    c->writing = true;
    c->wreq.data = c; /* uv_write leaves data as it was: write_done finds c through it */
    int rc = uv_write(&c->wreq, &c->sock.stream, &b, 1, write_done);
    if (rc) {
        c->writing = false;
        fail_io(c, "writing to the socket failed", rc);
    }
}

static void write_done(uv_write_t *req, int status)
{
    agx_sio_client *c = req->data;
    c->writing = false;
    free(c->wbuf); /* idle: give the bytes back */
    c->wbuf = NULL;
    if (status < 0) {
        if (status != UV_ECANCELED)
            fail_io(c, "writing to the socket failed", status);
        return;
    }
    if (c->pend_len && c->st != DIAL_DOWN) {
        start_write(c);
        return;
    }
    if (c->want_turn)
        turn_request(c);
}

static int pend_append(agx_sio_client *c, const unsigned char *p, size_t n)
{
    if (c->pend_len + n > c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap : 4096;
        while (cap < c->pend_len + n)
            cap *= 2;
        unsigned char *nb = realloc(c->pend, cap);
        if (!nb)
            return -1;
        c->pend = nb;
        c->pend_cap = cap;
    }
    memcpy(c->pend + c->pend_len, p, n);
    c->pend_len += n;
    return 0;
}

int sio_dial_send(agx_sio_client *c, const unsigned char *p, size_t n)
{
    if (c->st == DIAL_DOWN || !c->sock_open)
        return -1;
    if (!c->writing && !c->pend_len) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
        int w = uv_try_write(&c->sock.stream, &b, 1);
        if (w < 0 && w != UV_EAGAIN) {
            fail_io(c, "writing to the socket failed", w);
            return -1;
        }
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
        if (n == 0)
            return 0;
    }
    if (pend_append(c, p, n) != 0) {
        sio_conn_set_why(&c->conn, AGX_ERR_NO_MEMORY, "out of memory queueing a write");
        sio_dial_down(c);
        return -1;
    }
    if (!c->writing)
        start_write(c);
    return c->st == DIAL_DOWN ? -1 : 0;
}

/* ---- the link ops under the conn ---- */

static int link_write(agx_sio_conn *conn, const unsigned char *p, size_t n)
{
    agx_sio_client *c = of_conn(conn);
    return c->ssl ? sio_tls_write(c, p, n) : sio_dial_send(c, p, n);
}

/* Plain sockets only (a TLS link encrypts through its own buffer and does not offer this): what
 * the socket takes of iov now. */
static long link_writev_now(agx_sio_conn *conn, const struct iovec *iov, int iovcnt)
{
    agx_sio_client *c = of_conn(conn);
    uv_buf_t b[8];
    if (c->st == DIAL_DOWN || !c->sock_open || iovcnt < 1 || iovcnt > 8)
        return -1;
    for (int i = 0; i < iovcnt; i++)
        b[i] = uv_buf_init(iov[i].iov_base, (unsigned)iov[i].iov_len);
    int w = uv_try_write(&c->sock.stream, b, (unsigned)iovcnt);
    if (w == UV_EAGAIN)
        return 0;
    return w < 0 ? -1 : w; /* the conn fails itself and closes the link on its next turn */
}

static bool link_choked(const agx_sio_conn *conn)
{
    const agx_sio_client *c = of_conn(conn);
    return c->writing || c->pend_len;
}

static void turns_run(uv_idle_t *h)
{
    agx_sio_dialer *d = h->data;
    agx_sio_client *list = d->turn_head; /* turns asked for while these run wait a round */
    d->turn_head = d->turn_tail = NULL;
    while (list) {
        agx_sio_client *c = list;
        list = c->turn_next;
        c->turn_next = NULL;
        c->in_turns = false;
        if (!c->want_turn || c->writing || c->st != DIAL_OPEN || !c->conn.link)
            continue;
        c->want_turn = false;
        if (sio_conn_writeable(&c->conn) != 0)
            sio_dial_down(c);
    }
    if (!d->turn_head)
        uv_idle_stop(&d->turns);
}

static void turn_request(agx_sio_client *c)
{
    agx_sio_dialer *d = c->d;
    if (c->in_turns || c->writing)
        return; /* a write in flight gives the turn when it completes */
    c->in_turns = true;
    if (d->turn_tail)
        d->turn_tail->turn_next = c;
    else
        d->turn_head = c;
    d->turn_tail = c;
    uv_idle_start(&d->turns, turns_run);
}

static void link_want_write(agx_sio_conn *conn)
{
    agx_sio_client *c = of_conn(conn);
    c->want_turn = true;
    turn_request(c);
}

static void link_arm_close(agx_sio_conn *conn, int secs)
{
    agx_sio_client *c = of_conn(conn);
    if (c->timer_open)
        uv_timer_start(&c->timer, close_bound_fired, (uint64_t)secs * 1000, 0);
    link_want_write(conn); /* the turn closes once the queue is out */
}

static const sio_link_ops uv_link = {
    .write = link_write,
    .want_write = link_want_write,
    .choked = link_choked,
    .arm_close = link_arm_close,
    .writev_now = link_writev_now,
};

static const sio_link_ops tls_link = {
    .write = link_write,
    .want_write = link_want_write,
    .choked = link_choked,
    .arm_close = link_arm_close,
};

/* ---- the upgrade and frames ---- */

int sio_dial_upgrade(agx_sio_client *c)
{
    c->st = DIAL_UPGRADING;
    int rc = c->ssl ? sio_tls_write(c, (unsigned char *)c->request, c->request_len)
                    : sio_dial_send(c, (unsigned char *)c->request, c->request_len);
    free(c->request);
    c->request = NULL;
    return rc;
}

#define DIRECT_READ_MIN ((size_t)16 << 10) /* smaller frame rests come with what follows */
#define PROBE_READ ((size_t)4 << 10)        /* a read after a large frame (on_alloc) */

static int ws_data(void *ud, const unsigned char *p, size_t n, bool first, bool final,
                   bool binary, size_t left)
{
    agx_sio_client *c = ud;
    if (left == 0 && (!first || n >= DIRECT_READ_MIN))
        c->large_end = true;
    return sio_conn_receive_piece(&c->conn, p, n, first, final, binary, left);
}

static int ws_control(void *ud, unsigned opcode, const unsigned char *p, size_t n)
{
    agx_sio_conn *conn = &((agx_sio_client *)ud)->conn;
    if (opcode == 0x9) /* ping: a pong with its payload */
        return sio_queue_control(conn, 0xA, p, n) ? -1 : 0;
    if (opcode == 0xA)
        return 0;
    /* close: answer with the peer's code and end; the close is reported by detach */
    conn->ws_close_code = n >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : SIO_WS_NORMAL;
    sio_conn_set_why(conn, AGX_ERR_UNAVAILABLE, "the server closed the websocket (code %u)",
                     conn->ws_close_code);
    sio_close_reason(conn);
    return -1;
}

static int frames(agx_sio_client *c, const unsigned char *p, size_t n)
{
    const agx_ws_sink sink = {.data = ws_data, .control = ws_control, .ud = c};
    const char *why = NULL;
    int rc = agx_ws_frames_feed(&c->frames, p, n, &sink, &why);
    if (rc == AGX_WS_BAD) {
        sio_conn_fail(&c->conn, AGX_ERR_PROTOCOL, SIO_WS_PROTOCOL_ERR, "%s", why);
        sio_close_reason(&c->conn);
    }
    return rc ? -1 : 0;
}

int sio_dial_feed(agx_sio_client *c, const unsigned char *p, size_t n)
{
    if (c->st == DIAL_OPEN)
        return frames(c, p, n);
    if (c->st != DIAL_UPGRADING)
        return n ? -1 : 0; /* nothing is due from the server before the request */
    size_t used = 0;
    const char *why = NULL;
    int status = 0;
    int rc = agx_ws_head_feed(&c->hs, p, n, c->ws_accept, &used, &why, &status);
    if (rc < 0) {
        if (status)
            sio_client_dial_failed(c, rc, "%s%d", why, status);
        else
            sio_client_dial_failed(c, rc, "%s", why);
        return -1;
    }
    if (rc == 0)
        return 0;
    agx_ws_head_free(&c->hs);
    c->st = DIAL_OPEN;
    if (sio_conn_attach_link(&c->conn, c->ssl ? &tls_link : &uv_link, c) != 0)
        return -1;
    return frames(c, p + used, n - used);
}

/* ---- reading ---- */


/* The rest of a large data frame is read straight into the conn's message buffer, where the
 * parser would copy it (plain sockets only: TLS decrypts into its own buffer), to its last byte:
 * a rest that arrives in pieces is not read together with the next frame, which would then be
 * copied. */
static unsigned char *direct_slot(agx_sio_client *c, size_t *len)
{
    uint64_t left = c->st == DIAL_OPEN && !c->ssl ? agx_ws_frames_data_left(&c->frames) : 0;
    if (left == 0 || (left < DIRECT_READ_MIN && !c->direct_rest) || left > SIZE_MAX)
        return NULL;
    *len = (size_t)left;
    return sio_conn_rx_slot(&c->conn, (size_t)left);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    agx_sio_client *c = h->data;
    agx_sio_dialer *d = c->d;
    size_t left = 0;
    unsigned char *slot = direct_slot(c, &left);
    if (slot) {
        c->rx_lent = slot;
        *buf = uv_buf_init((char *)slot, left > UINT_MAX ? UINT_MAX : (unsigned)left);
        return;
    }
    if (!d->rbuf)
        d->rbuf = malloc(SIO_DIAL_RBUF);
    if (d->rbuf && !d->rbuf_lent) {
        d->rbuf_lent = true;
        /* Right after a large frame the next one is likely large too: read only enough to learn
         * its length, so the rest of it comes in place rather than through this buffer. */
        size_t n = c->probe ? PROBE_READ : SIO_DIAL_RBUF;
        c->probe = false;
        *buf = uv_buf_init((char *)d->rbuf, (unsigned)n);
        return;
    }
    /* never expected (libuv reads one stream at a time), but correct if it happens */
    char *b = malloc(65536);
    *buf = uv_buf_init(b, b ? 65536 : 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    agx_sio_client *c = s->data;
    agx_sio_dialer *d = c->d;
    int rc = 0;
    c->large_end = false;
    if (nread > 0 && c->st != DIAL_DOWN) {
        const unsigned char *p = (const unsigned char *)buf->base;
        rc = c->ssl ? sio_tls_read(c, p, (size_t)nread) : sio_dial_feed(c, p, (size_t)nread);
    } else if (nread < 0) {
        if (nread == UV_EOF) {
            if (c->conn.link)
                sio_conn_set_why(&c->conn, AGX_ERR_UNAVAILABLE, "the server closed the connection");
            else
                sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE,
                                       "the connection closed during the upgrade");
        } else if (c->conn.link) {
            sio_conn_set_why(&c->conn, AGX_ERR_UNAVAILABLE, "reading the socket failed: %s",
                             uv_strerror((int)nread));
        } else {
            sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "reading the socket failed: %s",
                                   uv_strerror((int)nread));
        }
        rc = -1;
    }
    if (buf->base == (char *)d->rbuf) {
        d->rbuf_lent = false;
        c->direct_rest = false;
        /* A large frame ended in the shared buffer: read little next, as after one in place. */
        c->probe = nread > 0 && c->large_end && agx_ws_frames_data_left(&c->frames) == 0;
    } else if (buf->base && buf->base == (char *)c->rx_lent) {
        c->rx_lent = NULL; /* the conn's own buffer (only compared: it may be gone by now) */
        c->probe = nread > 0 && agx_ws_frames_data_left(&c->frames) == 0;
        c->direct_rest = nread > 0 && !c->probe;
    } else {
        free(buf->base);
    }
    if (rc != 0)
        sio_dial_down(c);
    if (d->read_hook && !d->freed)
        d->read_hook(d->read_hook_ud);
}

/* ---- dialling ---- */

static void connected(agx_sio_client *c)
{
    int rc = uv_read_start(&c->sock.stream, on_alloc, on_read);
    if (rc) {
        fail_io(c, "reading the socket failed", rc);
        return;
    }
    if (c->unix_path == NULL)
        uv_tcp_nodelay(&c->sock.tcp, 1); /* small frames: latency over batching */
    if (c->tls_ctx) {
        c->st = DIAL_TLS;
        if (sio_tls_start(c, c->tls_ctx) != 0)
            sio_dial_down(c);
        return;
    }
    if (sio_dial_upgrade(c) != 0)
        sio_dial_down(c);
}

static void try_next_address(agx_sio_client *c);

/* The socket of a failed address is closed; the next address gets a fresh one (the handle's
 * memory is reused only after its close callback). */
static void retry_closed(uv_handle_t *h)
{
    agx_sio_client *c = h->data;
    c->sock_open = false;
    if (c->st == DIAL_DOWN) { /* aborted meanwhile */
        sio_conn_detach(&c->conn);
        sio_client_maybe_release(c);
        return;
    }
    try_next_address(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    agx_sio_client *c = req->data;
    if (status == 0 && c->st == DIAL_CONNECTING) {
        uv_freeaddrinfo(c->ai);
        c->ai = c->ai_next = NULL;
        connected(c);
        return;
    }
    if (c->st == DIAL_CONNECTING && c->ai_next) { /* the next address of the name */
        uv_close(&c->sock.handle, retry_closed);
        return;
    }
    uv_freeaddrinfo(c->ai);
    c->ai = c->ai_next = NULL;
    if (c->st == DIAL_DOWN)
        return; /* aborted: the close callback reports */
    sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "%s", uv_strerror(status));
    sio_dial_down(c);
}

static void tcp_connect(agx_sio_client *c, const struct sockaddr *sa)
{
    uv_tcp_init(c->d->loop, &c->sock.tcp);
    c->sock.handle.data = c;
    c->sock_open = true;
    c->creq.data = c;
    c->st = DIAL_CONNECTING;
    int rc = uv_tcp_connect(&c->creq, &c->sock.tcp, sa, on_connect);
    if (rc) {
        sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "%s", uv_strerror(rc));
        sio_dial_down(c);
    }
}

/* A Unix socket in a folder sandbox code may write (PROTOCOL.md §1): opened without following a
 * planted symlink, checked to be a socket, and connected through /proc/self/fd/<n> — which also
 * lifts sockaddr_un's 108-byte limit on the path. uv_pipe_connect calls connect() before it
 * returns, so the descriptor is closed right after. */
static void unix_connect(agx_sio_client *c)
{
    char via[48];
    int fd = agx_unix_socket_open(c->unix_path, via, sizeof via);
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "the socket path is a symlink "
                                                           "(not followed)");
        else if (e == ENOTSOCK)
            sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "not a socket");
        else
            sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "%s", strerror(e));
        sio_dial_down(c);
        return;
    }
    uv_pipe_init(c->d->loop, &c->sock.pipe, 0);
    c->sock.handle.data = c;
    c->sock_open = true;
    c->creq.data = c;
    c->st = DIAL_CONNECTING;
    uv_pipe_connect(&c->creq, &c->sock.pipe, via, on_connect);
    close(fd);
}

static void try_next_address(agx_sio_client *c)
{
    struct addrinfo *a = c->ai_next;
    c->ai_next = a->ai_next;
    tcp_connect(c, a->ai_addr);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    agx_sio_client *c = req->data;
    free(c->gai);
    c->gai = NULL;
    if (c->st == DIAL_DOWN) { /* aborted meanwhile */
        uv_freeaddrinfo(res);
        if (c->timer_open)
            uv_timer_start(&c->timer, kick_fired, 0, 0);
        return;
    }
    if (status < 0 || !res) {
        uv_freeaddrinfo(res);
        sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "cannot resolve '%s': %s", c->dial_host,
                               uv_strerror(status));
        sio_dial_down(c);
        return;
    }
    c->ai = c->ai_next = res;
    try_next_address(c);
}

void sio_dial_start(agx_sio_client *c)
{
    uv_loop_t *loop = c->d->loop;
    if (c->unix_path) {
        unix_connect(c);
        return;
    }
    /* Numeric addresses (and localhost, RFC 6761) need no lookup: no thread pool, no wait. */
    const char *host = strcmp(c->dial_host, "localhost") == 0 ? "127.0.0.1" : c->dial_host;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(host, c->dial_port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(host, c->dial_port, (struct sockaddr_in6 *)&ss) == 0) {
        tcp_connect(c, (struct sockaddr *)&ss);
        return;
    }
    c->gai = malloc(sizeof *c->gai);
    if (!c->gai) {
        sio_client_dial_failed(c, AGX_ERR_NO_MEMORY, "out of memory");
        sio_dial_down(c);
        return;
    }
    c->gai->data = c;
    c->st = DIAL_RESOLVING;
    char port[8];
    snprintf(port, sizeof port, "%d", c->dial_port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(loop, c->gai, resolved, c->dial_host, port, &hints);
    if (rc) {
        free(c->gai);
        c->gai = NULL;
        sio_client_dial_failed(c, AGX_ERR_UNAVAILABLE, "cannot resolve '%s': %s", c->dial_host,
                               uv_strerror(rc));
        sio_dial_down(c);
    }
}
