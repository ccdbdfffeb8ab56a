/* out.c — the worker's only way to the server: whole frames, never interleaved on stdout.
 * Results of concurrent calls are combined: the thread that finds nobody writing becomes the
 * flusher and keeps writing until nothing is pending, while the others append their frames to
 * out_pend and return at once — under load one write carries many results, and no call thread
 * sleeps on the pipe lock. out_pend is bounded: past WK_OUT_PEND_MAX a sender waits. A frame may
 * come in two parts (a binary item's bytes after its header): a flusher writes both with one
 * writev from where they lie; only a frame that has to wait for another's flush is copied.
 * A large binary stream item goes into the bulk ring instead when there is room (ring.h): its
 * frame only points at it; a full ring is waited for briefly before the pipe takes the item. */
#include "runtime/worker/worker.h"

#include "runtime/wire/rpc_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#define WK_OUT_PEND_MAX ((size_t)8 << 20)
#define WK_OUT_KEEP_CAP ((size_t)1 << 20) /* larger batch buffers are freed once written */

/* Writes all of iov (retrying EINTR and short writes). 0 or AGX_ERR_IO. */
static int writev_all(int fd, struct iovec *iov, int cnt, agx_error *err)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return agx_error_set(err, AGX_ERR_IO, "writing worker frames: %s", strerror(errno));
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Writes iov, then whatever gathered meanwhile, until nothing is pending. Called with out_mu
 * held and out_flushing set; returns with out_mu held. */
static void flush_from(wk_worker *w, struct iovec *iov, int cnt)
{
    for (;;) {
        pthread_mutex_unlock(&w->out_mu);
        agx_error err;
        int rc = writev_all(w->out_fd, iov, cnt, &err);
        pthread_mutex_lock(&w->out_mu);
        /* Once the server is gone (EPIPE) nothing more is written; stdin EOF ends the process. */
        if (rc != 0 && !w->out_broken) {
            w->out_broken = true;
            fprintf(stderr, "agentix-worker: %s\n", err.message);
        }
        if (w->out_broken || w->out_pend.len == 0)
            break;
        agx_buf t = w->out_write;
        w->out_write = w->out_pend;
        w->out_pend = t;
        w->out_pend.len = 0;
        iov[0] = (struct iovec){w->out_write.data, w->out_write.len};
        cnt = 1;
        pthread_cond_broadcast(&w->out_cv);
    }
    w->out_pend.len = 0;
    w->out_write.len = 0;
    if (w->out_write.cap > WK_OUT_KEEP_CAP)
        agx_buf_free(&w->out_write);
    w->out_flushing = false;
    pthread_cond_broadcast(&w->out_cv);
}

/* With out_mu held: waits while the flusher has a full backlog. */
static void pend_wait(wk_worker *w)
{
    while (w->out_flushing && !w->out_broken && w->out_pend.len >= WK_OUT_PEND_MAX)
        pthread_cond_wait(&w->out_cv, &w->out_mu);
}

/* With out_mu held and a flusher at work: gives it frame and tail; false without memory. */
static bool pend_append(wk_worker *w, const agx_buf *frame, const void *tail, size_t tail_len)
{
    size_t mark = w->out_pend.len;
    if (agx_buf_append(&w->out_pend, frame->data, frame->len) == 0 &&
        agx_buf_append(&w->out_pend, tail, tail_len) == 0)
        return true;
    w->out_pend.len = mark;
    return false;
}

/* With out_mu held and nobody flushing: this thread writes frame and tail, then the backlog. */
static void flush_now(wk_worker *w, const agx_buf *frame, const void *tail, size_t tail_len)
{
    w->out_flushing = true;
    struct iovec iov[2] = {{frame->data, frame->len}, {(void *)tail, tail_len}};
    flush_from(w, iov, tail_len ? 2 : 1);
}

void wk_send_tail(wk_worker *w, const agx_buf *frame, const void *tail, size_t tail_len)
{
    pthread_mutex_lock(&w->out_mu);
    pend_wait(w);
    if (w->out_flushing && !w->out_broken) {
        if (pend_append(w, frame, tail, tail_len)) {
            pthread_mutex_unlock(&w->out_mu);
            return;
        }
        /* No memory to queue it: wait for the flusher to finish and write it ourselves. */
        while (w->out_flushing)
            pthread_cond_wait(&w->out_cv, &w->out_mu);
    }
    if (!w->out_broken)
        flush_now(w, frame, tail, tail_len);
    pthread_mutex_unlock(&w->out_mu);
}

/* The ring place is taken at the moment the frame gets its turn on the pipe (both under out_mu),
 * so the server meets ring items in the order they were placed: what it checks (ring.h). */
/* A full ring means the server is behind on this worker's frames; it frees a slot within one
 * item's relay. Sending the item through the pipe instead would cost the server the very pipe copy
 * the ring saves and keep it behind, so wait a little first (out_mu released, so the flusher can
 * write the frames the server needs to get there): WK_RING_WAITS pauses of WK_RING_PAUSE_NS. */
#define WK_RING_WAITS 200
#define WK_RING_PAUSE_NS 100000L

static void ring_pause(wk_worker *w)
{
    pthread_mutex_unlock(&w->out_mu);
    struct timespec ts = {0, WK_RING_PAUSE_NS};
    nanosleep(&ts, NULL);
    pthread_mutex_lock(&w->out_mu);
}

bool wk_send_ring_item(wk_worker *w, agx_buf *frame, uint64_t id, const void *bin, size_t len)
{
    bool sent = false;
    int waits = len <= w->ring.size ? 0 : WK_RING_WAITS; /* too large for the ring: never wait */
    pthread_mutex_lock(&w->out_mu);
    pend_wait(w);
    for (;;) {
        if (w->out_broken) {
            sent = true; /* the server is gone: dropped like every frame from now on */
            break;
        }
        uint64_t before = w->ring.pos, at;
        if (!agx_ring_place(&w->ring, len, &at)) {
            if (waits++ < WK_RING_WAITS) {
                ring_pause(w);
                continue;
            }
            break;
        }
        frame->len = 0;
        if (agx_frame_write_ring(frame, AGX_FRAME_ITEM, id, at, len) != 0) {
            w->ring.pos = before;
            break;
        }
        memcpy(agx_ring_data(&w->ring, at), bin, len);
        if (!w->out_flushing) {
            flush_now(w, frame, NULL, 0);
            sent = true;
            break;
        }
        if (pend_append(w, frame, NULL, 0)) {
            sent = true;
            break;
        }
        w->ring.pos = before; /* no memory to queue the frame: undo, wait for the flusher */
        while (w->out_flushing)
            pthread_cond_wait(&w->out_cv, &w->out_mu);
    }
    pthread_mutex_unlock(&w->out_mu);
    return sent;
}

void wk_send(wk_worker *w, const agx_buf *frame) { wk_send_tail(w, frame, NULL, 0); }

void wk_out_destroy(wk_worker *w)
{
    agx_ring_close(&w->ring);
    agx_ring_close(&w->in_ring);
    agx_buf_free(&w->out_pend);
    agx_buf_free(&w->out_write);
    pthread_cond_destroy(&w->out_cv);
    pthread_mutex_destroy(&w->out_mu);
}

void wk_send_error(wk_worker *w, agx_buf *scratch, uint64_t id, const char *type, const char *msg,
                   bool cancelled)
{
    size_t mark;
    scratch->len = 0;
    if (agx_frame_begin(scratch, AGX_FRAME_ERROR, 2, &mark) != 0 ||
        agx_mp_put_lit(scratch, AGX_F_ID) != 0 || agx_mp_put_uint(scratch, id) != 0 ||
        agx_mp_put_lit(scratch, AGX_F_ERROR) != 0 ||
        agx_rpc_error_pack(scratch, type, msg, NULL, cancelled) != 0 ||
        agx_frame_end(scratch, mark, NULL) != 0) {
        fprintf(stderr, "agentix-worker: out of memory answering call %llu\n", (unsigned long long)id);
        return;
    }
    wk_send(w, scratch);
}
