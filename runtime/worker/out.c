/* out.c — the worker's only way to the server: whole frames, never interleaved on stdout.
 * Results of concurrent calls are combined: the thread that finds nobody writing becomes the
 * flusher and keeps writing until nothing is pending, while the others append their frames to
 * out_pend and return at once — under load one write carries many results, and no call thread
 * sleeps on the pipe lock. out_pend is bounded: past WK_OUT_PEND_MAX a sender waits. A frame may
 * come in two parts (a binary item's bytes after its header): a flusher writes both with one
 * writev from where they lie; only a frame that has to wait for another's flush is copied. */
#include "runtime/worker/worker.h"

#include "runtime/wire/rpc_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

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

void wk_send_tail(wk_worker *w, const agx_buf *frame, const void *tail, size_t tail_len)
{
    pthread_mutex_lock(&w->out_mu);
    while (w->out_flushing && !w->out_broken && w->out_pend.len >= WK_OUT_PEND_MAX)
        pthread_cond_wait(&w->out_cv, &w->out_mu);
    if (w->out_flushing && !w->out_broken) {
        size_t mark = w->out_pend.len;
        if (agx_buf_append(&w->out_pend, frame->data, frame->len) == 0 &&
            agx_buf_append(&w->out_pend, tail, tail_len) == 0) {
            pthread_mutex_unlock(&w->out_mu);
            return;
        }
        /* No memory to queue it: wait for the flusher to finish and write it ourselves. */
        w->out_pend.len = mark;
        while (w->out_flushing)
            pthread_cond_wait(&w->out_cv, &w->out_mu);
    }
    if (!w->out_broken) {
        w->out_flushing = true;
        struct iovec iov[2] = {{frame->data, frame->len}, {(void *)tail, tail_len}};
        flush_from(w, iov, tail_len ? 2 : 1);
    }
    pthread_mutex_unlock(&w->out_mu);
}

void wk_send(wk_worker *w, const agx_buf *frame) { wk_send_tail(w, frame, NULL, 0); }

void wk_out_destroy(wk_worker *w)
{
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
