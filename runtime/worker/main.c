/* main.c — agentix-worker: the subprocess of agentix-server that runs module functions. It reads
 * frames from the server on stdin, runs each call on its own thread, and writes frames back on
 * stdout (docs/PROTOCOL.md §4). stdin EOF means the server is gone: cancel everything and exit. */
#include "runtime/worker/worker.h"

#include "runtime/wire/rpc_error.h"

#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Module code printing to stdout must not corrupt the frame stream, and must not read frames from
 * stdin: the frames move to private close-on-exec fds, fd 1 becomes stderr, fd 0 /dev/null. */
static int take_stdio(wk_worker *w)
{
    /* The bulk rings (ring.h) first: their fds are the ones the server put there. */
    (void)agx_ring_attach(&w->ring, AGX_RING_FD);
    (void)agx_ring_attach(&w->in_ring, AGX_RING_IN_FD);
    w->in_fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
    w->out_fd = fcntl(1, F_DUPFD_CLOEXEC, 3);
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (w->in_fd < 0 || w->out_fd < 0 || devnull < 0 || dup2(devnull, 0) < 0 || dup2(2, 1) < 0) {
        fprintf(stderr, "agentix-worker: cannot set up its pipes: %s\n", strerror(errno));
        return -1;
    }
    close(devnull);
    return 0;
}

static void boot_error(wk_worker *w, const char *type, const char *msg)
{
    agx_buf e = {0}, f = {0};
    fprintf(stderr, "agentix-worker: %s\n", msg);
    if (agx_rpc_error_pack(&e, type, msg, NULL, false) == 0 &&
        agx_frame_write_boot_error(&f, (agx_mp_span){(const unsigned char *)e.data, e.len}) == 0)
        wk_send(w, &f);
    agx_buf_free(&e);
    agx_buf_free(&f);
}

/* AGENTIX_MAX_PAYLOAD bounds one frame, as it bounds one websocket message at the server. */
static int read_max_frame(wk_worker *w, char *msg, size_t len)
{
    const char *env = getenv("AGENTIX_MAX_PAYLOAD");
    w->max_frame = AGX_FRAME_MAX_DEFAULT;
    if (!env || !*env)
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(env, &end, 10);
    if (errno || *end || v < 1024 || v > UINT32_MAX) {
        snprintf(msg, len, "AGENTIX_MAX_PAYLOAD='%.40s' is not a byte count in 1024..4294967295", env);
        return -1;
    }
    w->max_frame = (size_t)v;
    return 0;
}

/* AGENTIX_WORKER_THREADS: the server refuses calls beyond it, so more threads are never needed. */
static int read_max_threads(wk_worker *w, char *msg, size_t len)
{
    const char *env = getenv("AGENTIX_WORKER_THREADS");
    if (!env || !*env)
        return 0;
    char *end;
    errno = 0;
    unsigned long v = strtoul(env, &end, 10);
    if (errno || *end || v < 1 || v > WK_MAX_THREADS) {
        snprintf(msg, len, "AGENTIX_WORKER_THREADS='%.40s' is not a count in 1..%d", env,
                 WK_MAX_THREADS);
        return -1;
    }
    w->pool.max_threads = v;
    return 0;
}

static void start_call(wk_worker *w, const agx_frame *f)
{
    wk_call *c = wk_call_new(w, f);
    agx_buf scratch = {0};
    if (!c) {
        wk_send_error(w, &scratch, f->id, AGX_RPC_INTERNAL, "the worker is out of memory", false);
        agx_buf_free(&scratch);
        return;
    }
    pthread_mutex_lock(&w->mu);
    bool added = wk_registry_add(w, c);
    pthread_mutex_unlock(&w->mu);
    if (!added) {
        /* Answering would end the call already running under this id: report and drop. */
        fprintf(stderr, "agentix-worker: protocol error: call id %llu is already in flight\n",
                (unsigned long long)f->id);
        wk_call_free(c);
        return;
    }
    if (!wk_pool_submit(&w->pool, c)) {
        wk_registry_remove(w, c);
        wk_send_error(w, &scratch, f->id, AGX_RPC_INTERNAL,
                      "the worker cannot start a thread for the call (out of resources)", false);
        agx_buf_free(&scratch);
        wk_call_free(c);
    }
}

/* Ends a call for a reason outside the function (it wins over the cancellation it causes). */
static void force_fail_locked(wk_call *c, const char *type, const char *why)
{
    c->failed = c->forced = true;
    snprintf(c->fail_type, sizeof c->fail_type, "%s", type);
    snprintf(c->fail_msg, sizeof c->fail_msg, "%s: %s", c->target, why);
    wk_call_cancel_locked(c);
}

/* An `in` item beyond the granted window means the server ignored flow control. */
static void queue_input(wk_call *c, const agx_frame *f)
{
    if (c->in_ended) {
        fprintf(stderr, "agentix-worker: protocol error: input for call %llu after end_in\n",
                (unsigned long long)c->id);
        return;
    }
    if (c->in_len >= AGX_FRAME_IN_WINDOW) {
        force_fail_locked(c, AGX_RPC_LIMIT, "more than 64 input items were sent without credit");
        return;
    }
    wk_in_item *it = malloc(sizeof *it + f->item.len);
    if (!it) {
        force_fail_locked(c, AGX_RPC_INTERNAL, "the worker ran out of memory queueing an input item");
        return;
    }
    it->next = NULL;
    it->len = f->item.len;
    memcpy(it->data, f->item.data, f->item.len);
    if (c->in_tail)
        c->in_tail->next = it;
    else
        c->in_head = it;
    c->in_tail = it;
    c->in_len++;
    pthread_cond_broadcast(&c->cv);
}

/* Frames about a call in flight: ignored when the call has already ended (a race, not an error). */
static void call_frame(wk_worker *w, const agx_frame *f)
{
    pthread_mutex_lock(&w->mu);
    wk_call *c = wk_registry_find(w, f->id);
    if (c) {
        pthread_mutex_lock(&c->mu);
        switch (f->type) {
        case AGX_FRAME_IN: queue_input(c, f); break;
        case AGX_FRAME_END_IN:
            c->in_ended = true;
            pthread_cond_broadcast(&c->cv);
            break;
        case AGX_FRAME_CREDIT:
            c->credit += f->n;
            pthread_cond_broadcast(&c->cv);
            break;
        case AGX_FRAME_CANCEL: wk_call_cancel_locked(c); break;
        default: break;
        }
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&w->mu);
}

static void cancel_all(wk_worker *w)
{
    pthread_mutex_lock(&w->mu);
    for (size_t b = 0; b < AGX_ARRAY_LEN(w->calls); b++)
        for (wk_call *c = w->calls[b]; c; c = c->reg_next) {
            pthread_mutex_lock(&c->mu);
            wk_call_cancel_locked(c);
            pthread_mutex_unlock(&c->mu);
        }
    pthread_mutex_unlock(&w->mu);
}

/* Waits until every call has sent its terminal frame; false after timeout_ms. */
static bool wait_drained(wk_worker *w, int timeout_ms)
{
    int64_t deadline = agx_deadline_ms(timeout_ms);
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (w->n_calls > 0 && rc != ETIMEDOUT)
        rc = agx_cond_wait_until(&w->drained, &w->mu, deadline);
    bool drained = w->n_calls == 0;
    pthread_mutex_unlock(&w->mu);
    return drained;
}

typedef enum { RUN_SHUTDOWN, RUN_EOF, RUN_BROKEN } run_end;

/* One frame from the server; false when it asks the worker to stop. */
static bool dispatch(wk_worker *w, const agx_frame *f)
{
    switch (f->type) {
    case AGX_FRAME_CALL:
    case AGX_FRAME_DESCRIBE: start_call(w, f); return true;
    case AGX_FRAME_IN:
    case AGX_FRAME_END_IN:
    case AGX_FRAME_CREDIT:
    case AGX_FRAME_CANCEL: call_frame(w, f); return true;
    case AGX_FRAME_SHUTDOWN: return false;
    default:
        fprintf(stderr, "agentix-worker: protocol error: the server sent a '%s' frame\n",
                agx_frame_type_name(f->type));
        return true;
    }
}

/* An `in` whose item lies in the in ring: the reference must be the ring's next one. */
static bool ring_input(wk_worker *w, agx_frame *f)
{
    agx_error err;
    if (agx_ring_accept(&w->in_ring, f->ring_at, f->ring_len, &err) != 0) {
        fprintf(stderr, "agentix-worker: protocol error: %s\n", err.message);
        return false;
    }
    f->item = (agx_mp_span){agx_ring_data(&w->in_ring, f->ring_at), (size_t)f->ring_len};
    return true;
}

static run_end read_loop(wk_worker *w, agx_frame_reader *r)
{
    agx_error err;
    agx_buf scratch = {0};
    run_end end = RUN_BROKEN;
    for (;;) {
        long n = agx_frame_reader_read_fd(r, w->in_fd, &err);
        if (n <= 0) {
            if (n < 0 || agx_frame_reader_pending(r) > 0)
                fprintf(stderr, "agentix-worker: %s\n",
                        n < 0 ? err.message : "the server closed the pipe in the middle of a frame");
            end = n == 0 ? RUN_EOF : RUN_BROKEN;
            break;
        }
        agx_frame f;
        int rc;
        while ((rc = agx_frame_reader_next(r, &f, &err)) != 0) {
            if (rc == 1 && f.in_ring && !ring_input(w, &f))
                goto out; /* the server broke the ring's order: nothing can be trusted after */
            if (rc == 1) {
                bool go_on = dispatch(w, &f);
                if (f.in_ring) /* copied into the call's input queue (or dropped) by now */
                    agx_ring_release(&w->in_ring);
                if (!go_on) {
                    end = RUN_SHUTDOWN;
                    goto out;
                }
                continue;
            }
            fprintf(stderr, "agentix-worker: protocol error: %s\n", err.message);
            if (agx_frame_reader_broken(r))
                goto out; /* no frame boundary left: the server sees the exit and respawns */
            /* A malformed call still gets its one terminal frame, so the host does not hang. */
            if (f.type == AGX_FRAME_CALL || f.type == AGX_FRAME_DESCRIBE)
                wk_send_error(w, &scratch, f.id, AGX_RPC_BAD_REQUEST, err.message, false);
        }
    }
out:
    agx_buf_free(&scratch);
    return end;
}

static void worker_destroy(wk_worker *w)
{
    wk_resolver_destroy(&w->resolver);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->drained);
    wk_out_destroy(w);
    pthread_mutex_destroy(&w->pool.mu);
    pthread_cond_destroy(&w->pool.cv);
}

int main(void)
{
    static wk_worker w; /* large (registry, thread slots): not on the stack */
    char msg[AGX_ERROR_MESSAGE_MAX];
    signal(SIGPIPE, SIG_IGN); /* a vanished server shows as EPIPE and stdin EOF */
    /* Streams allocate and free ~64 KiB units at a high rate: glibc's default 128 KiB trim
     * threshold gave the heap top back to the kernel and faulted it in again every few items
     * (a third of the server's CPU in a stream). Keep up to 2 MiB of free heap top. */
    mallopt(M_TRIM_THRESHOLD, 2 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    if (take_stdio(&w) != 0)
        return 1;
    pthread_mutex_init(&w.out_mu, NULL);
    pthread_cond_init(&w.out_cv, NULL);
    pthread_mutex_init(&w.mu, NULL);
    agx_cond_init(&w.drained);
    wk_pool_init(&w.pool);
    if (read_max_frame(&w, msg, sizeof msg) != 0 || read_max_threads(&w, msg, sizeof msg) != 0 ||
        wk_resolver_init(&w.resolver, msg, sizeof msg) != 0) {
        boot_error(&w, AGX_RPC_BAD_REQUEST, msg);
        return 1;
    }
    agx_frame_reader *r = agx_frame_reader_new(w.max_frame);
    agx_buf ready = {0};
    if (!r || agx_frame_write_ready(&ready, (uint64_t)getpid()) != 0) {
        boot_error(&w, AGX_RPC_INTERNAL, "out of memory at start");
        return 1;
    }
    wk_send(&w, &ready);
    agx_buf_free(&ready);

    run_end end = read_loop(&w, r);
    agx_frame_reader_free(r);
    cancel_all(&w);
    bool drained = wait_drained(&w, end == RUN_SHUTDOWN ? WK_SHUTDOWN_WAIT_MS : WK_EOF_WAIT_MS);
    /* Calls stuck in module code past the grace period cannot be torn down safely: leave them. */
    if (!drained || !wk_pool_stop(&w.pool, 500))
        _exit(end == RUN_BROKEN ? 2 : 0);
    worker_destroy(&w);
    close(w.in_fd);
    close(w.out_fd);
    return end == RUN_BROKEN ? 2 : 0;
}
