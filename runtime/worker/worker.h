/* worker.h — agentix-worker's internal parts: the process state, one call's state, the module
 * resolver, argument binding and the thread pool. The worker runs module functions for
 * agentix-server: frames in on stdin, frames out on stdout (docs/PROTOCOL.md §4). */
#ifndef AGX_WORKER_H
#define AGX_WORKER_H

#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/clock.h"
#include "agentix/module.h"
#include "agentix/value.h"
#include "core/base/module_ctx.h"
#include "runtime/wire/frame.h"
#include "runtime/wire/protocol.h"
#include "runtime/wire/ring.h"

#define WK_MAX_THREADS 1024     /* calls beyond this many wait in a queue */
#define WK_SHUTDOWN_WAIT_MS 2000 /* how long `shutdown` waits for cancelled calls to end */
#define WK_EOF_WAIT_MS 1000      /* the same when the server vanished (stdin EOF) */

/* A resolved "module::function", cached for the life of the worker. */
typedef struct wk_target {
    char *key; /* "module::function" */
    const agx_function *fn;
    agx_value **defaults; /* per parameter: parsed default_json, NULL when required */
    struct wk_target *next;
} wk_target;

typedef struct wk_module {
    char *name;
    void *handle;
    const agx_module *desc;
    struct wk_module *next;
} wk_module;

typedef struct wk_resolver {
    pthread_mutex_t mu;
    char **dirs; /* search path */
    size_t n_dirs;
    char *path_text; /* for NotFound messages */
    wk_module *modules;
    wk_target *buckets[256];
} wk_resolver;

/* A queued inbound bidi item (raw msgpack, decoded when the function takes it). */
typedef struct wk_in_item {
    struct wk_in_item *next;
    size_t len;
    unsigned char data[];
} wk_in_item;

typedef struct wk_worker wk_worker;

typedef struct wk_call {
    agx_ctx ctx; /* first: the module sees &ctx */
    wk_worker *w;
    uint64_t id;
    bool describe; /* a describe request rather than a call */
    agx_shape shape;
    char *target; /* NUL-terminated copy */
    size_t target_len;
    unsigned char *args_raw, *kwargs_raw; /* copies of the frame's spans (may be NULL) */
    size_t args_len, kwargs_len;
    const wk_target *tgt;
    agx_value *args; /* bound map */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t credit; /* output items the server still accepts */
    bool cancelled;
    int cancel_fd; /* eventfd, -1 until the function asks for it */
    wk_in_item *in_head, *in_tail;
    size_t in_len;
    bool in_ended;
    uint32_t in_ungranted; /* consumed inputs not yet granted back with in_credit */
    uint64_t n_in, n_out;  /* counts, for error messages */

    /* outcome, written by the function's own thread (forced: by the reader, for a peer that broke
     * the protocol; it wins over cancellation) */
    agx_value *result;
    bool failed, forced;
    char fail_type[AGX_ERROR_TYPE_MAX];
    char fail_msg[AGX_ERROR_MESSAGE_MAX];

    agx_buf out;    /* frame encoding scratch of the function's thread (emit, terminal) */
    agx_buf in_out; /* the same for in_credit, which recv may send from another thread */
    struct wk_call *next;     /* pool queue */
    struct wk_call *reg_next; /* registry chain */
} wk_call;

/* One pool thread's mailbox: an idle thread sleeps on its own semaphore and is handed its next
 * call directly, so a submit wakes exactly one thread, which needs no lock to take the call. */
typedef struct wk_slot {
    sem_t wake;
    wk_call *call;            /* handed over by submit; NULL = woken to stop */
    struct wk_slot *next_idle;
    struct wk_pool *pool;
} wk_slot;

typedef struct wk_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* a thread exited (stop waits on it) */
    wk_call *head, *tail;    /* calls no idle thread could take, FIFO */
    wk_slot *idle;           /* idle threads, most recently idle first (its cache is warm) */
    size_t n_threads;        /* running (not yet exited) */
    size_t started;          /* slots used in threads[], all joined at stop */
    size_t max_threads;      /* AGENTIX_WORKER_THREADS (the server's cap), ≤ WK_MAX_THREADS */
    pthread_t threads[WK_MAX_THREADS];
    wk_slot slots[WK_MAX_THREADS];
    bool stopping;
} wk_pool;

struct wk_worker {
    int in_fd, out_fd;
    pthread_mutex_t out_mu;
    pthread_cond_t out_cv;   /* out_pend drained below its bound, or the flusher finished */
    bool out_broken;
    bool out_flushing;       /* a thread is writing; others append to out_pend for it */
    agx_buf out_pend, out_write; /* frames waiting; the batch being written (flusher only) */
    agx_ring ring;           /* the out bulk ring from the server (ring.h), or none; under out_mu */
    agx_ring in_ring;        /* the in bulk ring, or none; the reader thread's alone */
    size_t max_frame;

    pthread_mutex_t mu; /* the registry; taken before any call's mu */
    pthread_cond_t drained;
    wk_call *calls[1024];
    size_t n_calls;

    wk_resolver resolver;
    wk_pool pool;
};

/* out.c: frames to the server, never interleaved. While one thread writes, frames from the
 * others gather behind it and go out in its next write (one syscall for many results). */
void wk_send(wk_worker *w, const agx_buf *frame);
/* The same for a frame whose last tail_len bytes are sent from tail (a binary item's bytes,
 * after the header agx_frame_write_bin_head built in frame). */
void wk_send_tail(wk_worker *w, const agx_buf *frame, const void *tail, size_t tail_len);
/* A binary stream item of len bytes into the bulk ring, its frame (built in frame) pointing at
 * it: true once sent (or dropped with everything else after the server went away); false when
 * there is no ring or no room in it now — send it through the pipe then. */
bool wk_send_ring_item(wk_worker *w, agx_buf *frame, uint64_t id, const void *bin, size_t len);
void wk_out_destroy(wk_worker *w);
/* Sends an error frame for id (used before a call exists, and for terminals). */
void wk_send_error(wk_worker *w, agx_buf *scratch, uint64_t id, const char *type, const char *msg,
                   bool cancelled);

/* calls.c */
wk_call *wk_call_new(wk_worker *w, const agx_frame *f);
void wk_call_free(wk_call *c);
void wk_call_run(wk_call *c); /* on a pool thread: resolve, bind, run, send the terminal frame */
/* Registry; the lookups are done with w->mu held. */
bool wk_registry_add(wk_worker *w, wk_call *c);
wk_call *wk_registry_find(wk_worker *w, uint64_t id);
void wk_registry_remove(wk_worker *w, wk_call *c);
/* With c->mu held. */
void wk_call_cancel_locked(wk_call *c);

/* resolve.c */
int wk_resolver_init(wk_resolver *r, char *errbuf, size_t errlen);
void wk_resolver_destroy(wk_resolver *r);
/* 0 with *out, or -1 with type/message filled (NotFound, ModuleError, BadRequest). */
int wk_resolve(wk_resolver *r, const char *target, const wk_target **out, char *type, size_t type_len,
               char *msg, size_t msg_len);
agx_value *wk_describe(const wk_target *t);

/* bind.c: binds positional then keyword arguments to the declared parameters, applies defaults and
 * checks types. 0 with *out (a map in parameter order), or -1 with a ValidationError message. */
int wk_bind(const wk_target *t, const agx_value *args, const agx_value *kwargs, agx_value **out,
            char *msg, size_t msg_len);
/* Whether v is acceptable for a declared type (nullable: also accepts nil). */
bool wk_type_accepts(agx_type type, const agx_value *v, bool nullable);

/* pool.c */
void wk_pool_init(wk_pool *p);
/* false when no thread can run the call (none could be started): the caller still owns it. */
bool wk_pool_submit(wk_pool *p, wk_call *c);
/* Stops idle threads and joins them all; false if some are still busy after timeout_ms. */
bool wk_pool_stop(wk_pool *p, int timeout_ms);

#endif
