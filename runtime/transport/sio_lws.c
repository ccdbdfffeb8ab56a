/* sio_lws.c — the link of an agx_sio_conn over a libwebsockets websocket (agentix-server's role,
 * sio_server.c): writes go out as lws_write(LWS_WRITE_HTTP) of our pre-framed units, or, for a
 * large attachment while lws holds nothing back, gathered straight into the (plain TCP) socket;
 * writeable turns are lws's, a close is bounded by an lws timeout and the close code is lws's
 * lws_close_reason. Also the lws logging and context plumbing the server role needs. */
#include "runtime/transport/sio_conn_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

static struct lws *wsi_of(const agx_sio_conn *c) { return c->link_ptr; }

static int lws_link_write(agx_sio_conn *c, const unsigned char *p, size_t n)
{
    /* LWS_WRITE_HTTP passes the bytes through untouched: they are complete websocket frames.
     * lws buffers whatever the socket does not take and holds WRITEABLE back until it is out. */
    int w = lws_write(wsi_of(c), (unsigned char *)p, n, LWS_WRITE_HTTP);
    return w < 0 || (size_t)w < n ? -1 : 0;
}

/* The server listens without TLS (it sits behind the sandbox's port mapping), so the socket
 * carries our websocket frames as they are; sio_send.c calls this only when lws has nothing
 * buffered, so the order on the wire is kept. */
static long lws_link_writev_now(agx_sio_conn *c, const struct iovec *iov, int iovcnt)
{
    int fd = (int)lws_get_socket_fd(wsi_of(c));
    if (fd < 0)
        return -1;
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
    ssize_t n;
    do
        n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    return (long)n;
}

static void lws_link_want_write(agx_sio_conn *c) { lws_callback_on_writable(wsi_of(c)); }

/* Whether lws still holds bytes of an earlier write. Not lws_send_pipe_choked: it adds a poll()
 * for POLLOUT, a system call per message sent (each stream item, each reply) that tells nothing
 * a MSG_DONTWAIT send does not: a full socket takes 0 bytes and the rest is queued either way. */
static bool lws_link_choked(const agx_sio_conn *c) { return lws_partial_buffered(wsi_of(c)) != 0; }

/* Asks for a WRITEABLE turn (which closes) and bounds the wait with an lws timeout. lws 4.1's
 * libuv glue re-arms its timer only after socket activity, so poke the service when called from
 * one of our timers, or the bound would wait for unrelated traffic. */
static void lws_link_arm_close(agx_sio_conn *c, int secs)
{
    lws_set_timeout(wsi_of(c), PENDING_TIMEOUT_USER_OK, secs);
    sio_want_write(c);
    lws_cancel_service(lws_get_context(wsi_of(c)));
}

static void lws_link_close_reason(agx_sio_conn *c)
{
    lws_close_reason(wsi_of(c), (enum lws_close_status)c->ws_close_code, NULL, 0);
}

static const sio_link_ops lws_link = {
    .write = lws_link_write,
    .want_write = lws_link_want_write,
    .choked = lws_link_choked,
    .arm_close = lws_link_arm_close,
    .close_reason = lws_link_close_reason,
    .writev_now = lws_link_writev_now,
};

int sio_conn_attach(agx_sio_conn *c, struct lws *wsi)
{
    return sio_conn_attach_link(c, &lws_link, wsi);
}


int sio_conn_receive(agx_sio_conn *c, const void *in, size_t len)
{
    if (c->state == SIO_DEAD || c->hard_close)
        return -1;
    struct lws *wsi = wsi_of(c);
    return sio_conn_receive_piece(c, in, len, lws_is_first_fragment(wsi) != 0,
                                  lws_is_final_fragment(wsi) != 0, lws_frame_is_binary(wsi) != 0,
                                  lws_remaining_packet_payload(wsi));
}

/* ---- lws logging and contexts ---- */

static void lws_log_to_stderr(int level, const char *line)
{
    (void)level;
    fprintf(stderr, "agentix transport (lws): %s", line);
}

static void log_init_once(void)
{
    int level = LLL_ERR;
    const char *env = getenv("AGENTIX_LWS_LOG");
    if (env && *env)
        level = atoi(env);
    lws_set_log_level(level, lws_log_to_stderr);
}

void sio_lws_log_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, log_init_once);
}

void sio_lws_context_finish(struct lws_context *ctx)
{
    if (ctx)
        lws_context_destroy(ctx);
}
