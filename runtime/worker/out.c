/* out.c — the worker's only way to the server: whole frames written under one lock, so frames
 * from concurrent calls never interleave on stdout. */
#include "runtime/worker/worker.h"

#include "runtime/shared/rpc_error.h"

#include <stdio.h>

void wk_send(wk_worker *w, const agx_buf *frame)
{
    agx_error err;
    pthread_mutex_lock(&w->out_mu);
    /* Once the server is gone (EPIPE) nothing more is written; stdin EOF ends the process. */
    if (!w->out_broken && agx_frame_send_all(w->out_fd, frame->data, frame->len, &err) != 0) {
        w->out_broken = true;
        fprintf(stderr, "agentix-worker: %s\n", err.message);
    }
    pthread_mutex_unlock(&w->out_mu);
}

void wk_send_error(wk_worker *w, agx_buf *scratch, uint64_t id, const char *type, const char *msg,
                   bool cancelled)
{
    size_t mark;
    scratch->len = 0;
    if (agx_frame_begin(scratch, AGX_FRAME_ERROR, 2, &mark) != 0 ||
        agx_mp_put_cstr(scratch, "id") != 0 || agx_mp_put_uint(scratch, id) != 0 ||
        agx_mp_put_cstr(scratch, "error") != 0 ||
        agx_rpc_error_pack(scratch, type, msg, NULL, cancelled) != 0 ||
        agx_frame_end(scratch, mark, NULL) != 0) {
        fprintf(stderr, "agentix-worker: out of memory answering call %llu\n", (unsigned long long)id);
        return;
    }
    wk_send(w, scratch);
}
