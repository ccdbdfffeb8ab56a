/* client_impl.h — the inside of agx_engine, agx_client and agx_call (engine.h, client.h), shared
 * by the files of runtime/client: engine.c (I/O threads, the process default, delivery of
 * callbacks and the completion queue), engine_pool.c (the bounded pool running sandbox
 * create/delete), client.c (connect, free, a connection's life on its I/O thread), outbox.c
 * (work from host threads to the runtime), inbox.c (events from the runtime to calls), callmap.c
 * (calls in flight by id, and how they end) and calls.c (the host-thread side: encoding,
 * submitting, waiting, stream/bidi handles).
 *
 * Threading model: each client lives on one I/O thread of its engine (its "loop"). One mutex per
 * client guards every field marked [mu]; the loop thread alone touches the fields marked [loop].
 * Host threads never touch the transport: they mark a call dirty (pending work bits + a FIFO of
 * dirty calls) and put the client on its I/O thread's ready list, waking the thread with one
 * uv_async_send (libuv coalesces them), so a burst of calls costs one wake. Calls leave the id
 * map only on the loop thread (a terminal event, a cancel or timeout being sent, the connection
 * ending), so the loop thread may use a call it found in the map without holding the lock.
 * Lock order: client mu → I/O thread mu, and client mu → engine cq_mu; never the reverse.
 * Private to runtime/client. */
#ifndef AGX_CLIENT_IMPL_H
#define AGX_CLIENT_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "agentix/client.h"
#include "agentix/clock.h"
#include "agentix/engine.h"
#include "runtime/client/engine_run.h"
#include "runtime/client/wakeup.h"
#include "runtime/transport/sio_client.h"
#include "runtime/wire/protocol.h"

/* ---- delivery of callbacks (engine.c) ---- */

/* A callback that is due. In AGX_DELIVER_IO_THREAD mode run() is called at once on the
 * delivering thread; in AGX_DELIVER_QUEUE mode the completion waits in the engine's queue for
 * agx_engine_process. A completion is pending (queued or running) at most once; one delivered
 * again while it runs is run again after, so one owner's callbacks never overlap. run() looks at
 * its owner's state and runs whatever callbacks are due; release() drops the reference the
 * pending completion held, once it is no longer pending. */
typedef struct agx_completion {
    struct agx_completion *next;
    void (*run)(struct agx_completion *self);
    void (*release)(struct agx_completion *self);
    bool queued, running, again; /* [engine cq_mu] */
} agx_completion;

typedef struct io_thread io_thread;
typedef struct pool_slot pool_slot; /* a pool thread (engine_pool.c) */

struct io_thread {
    agx_engine *e;
    pthread_t tid;
    uv_loop_t loop;
    uv_async_t wake;
    agx_sio_dialer *dialer;
    pthread_mutex_t mu;
    /* [mu] */
    agx_client *ready_head, *ready_tail; /* clients with work for this thread */
    atomic_bool has_ready;               /* ready_head != NULL, readable without the lock */
    bool stop;
    size_t clients;                      /* clients placed here and not yet released */
    /* [loop] */
    agx_call *wake_head;                 /* blocked readers to wake once this read is decoded */
};

struct agx_engine {
    unsigned nio;
    io_thread *io;
    atomic_uint next_io;       /* round-robin placement */
    agx_engine_delivery delivery;
    char *ca_file, *ca_dir;
    bool is_default;

    /* completion queue (AGX_DELIVER_QUEUE) */
    pthread_mutex_t cq_mu;
    pthread_cond_t cq_cv;
    agx_completion *cq_head, *cq_tail; /* [cq_mu] */
    int efd;                   /* eventfd, readable while the queue is not empty */
    bool efd_set;              /* [cq_mu] */

    /* blocking pool (engine_pool.c) [pool_mu] */
    pthread_mutex_t pool_mu;
    pthread_cond_t pool_cv, pool_idle_cv;
    struct engine_job *jobs_head, *jobs_tail;
    unsigned pool_max, pool_threads, pool_waiting;
    pool_slot *pool_slots;     /* pool_max of them */
    size_t jobs_open;          /* queued or running, callbacks not yet delivered */
    bool pool_stop;

    atomic_size_t open_clients; /* clients the host has not freed yet */
    atomic_size_t clients;     /* clients whose memory is not released yet [cq_mu for the wait] */
};

/* Delivers a completion (any thread, no client lock held). Returns true when it was not pending:
 * it now is, and the caller's reference passed to it (release() drops it after the run); false
 * when it was already pending (the pending run will see the new state): the caller keeps its
 * reference. */
bool agx_engine_deliver(agx_engine *e, agx_completion *k);
/* True on any engine's I/O thread; on the I/O thread c lives on. */
bool agx_engine_on_io_thread(void);
bool agx_client_loop_is_own(const agx_client *c);
/* The engine for a connect (opts->engine or the default). */
agx_engine *agx_engine_resolve(agx_engine *e, agx_error *err);
/* Puts c on its I/O thread's ready list and wakes the thread (c's lock held). */
void agx_engine_schedule_locked(agx_client *c);
/* A client was released (its memory goes): the engine's count drops. */
void agx_engine_client_gone(agx_engine *e, io_thread *t);
/* Blocks SIGPIPE on the calling thread (the engine's threads). */
void agx_engine_block_sigpipe(void);
/* engine_pool.c: the thread slots of a pool of n (zeroed); stops the pool (waits for the jobs
 * asked for and their callbacks), from agx_engine_free. */
pool_slot *agx_engine_pool_slots(unsigned n);
void agx_engine_pool_stop(agx_engine *e);

/* ---- the expiry channel (client_expiry.c) ---- */

/* Registers a client connected to sb as a way to extend sb's expiry (core/host/runtime_channel.h);
 * on failure the host library keeps using POST /expiry. */
void agx_client_channel_register(agx_client *c, const agx_sandbox *sb);
/* Unregisters it (agx_client_free). */
void agx_client_channel_unregister(agx_client *c);

/* ---- calls ---- */

/* Work a host thread leaves for the loop thread, in the order the loop performs it. */
enum {
    PEND_START = 1u << 0,  /* emit the opening event (payload) */
    PEND_IN = 1u << 1,     /* emit the queued bidi:in items */
    PEND_END_IN = 1u << 2, /* emit bidi:end_in */
    PEND_CREDIT = 1u << 3, /* emit credit {n: credit_n} */
    PEND_CANCEL = 1u << 4  /* emit cancel, then end the call with Cancelled (or Timeout) */
};

/* One encoded bidi:in payload; the bytes follow the header in the same allocation. */
typedef struct in_item {
    struct in_item *next;
    size_t len;
    size_t pad_; /* keeps data 16-byte aligned on LP64 */
    unsigned char data[];
} in_item;

#define CALL_ID_MAX 14 /* base 36 of a uint64 is at most 13 digits */

struct agx_call {
    agx_client *c;
    uint64_t id;
    char idstr[CALL_ID_MAX];
    uint8_t idlen;
    agx_wire_kind shape;
    agx_buf payload;           /* the opening event, encoded on the submitting thread */

    /* [mu] */
    int refs;                  /* user handle + id map + dirty FIFO + a pending completion */
    struct agx_call *hnext;    /* id map chain */
    struct agx_call *dnext;    /* dirty FIFO */
    bool in_map, dirty;
    unsigned pend;
    uint32_t credit_n;
    in_item *in_head, *in_tail;
    bool done;
    bool delivered_end;        /* the callback form's last callback has run */
    int status;                /* 0 ended well, else the agx_error_code */
    agx_error err;
    agx_value *result;         /* unary/describe */
    agx_value **ring;          /* stream/bidi items not yet taken, capacity = window */
    uint32_t window, rhead, rcount;
    uint32_t consumed;         /* items taken since the last credit */
    uint32_t in_credit;        /* bidi:in items the runtime will still accept */
    bool send_closed, cancelling, cancel_timeout;
    bool send_ready_wanted;    /* send_nowait found no credit: report AGX_CALL_SEND_READY */
    bool send_ready_due;
    bool started;              /* its opening event went out: counts in client.inflight */
    agx_wakeup wake;           /* what a host thread blocked on this call sleeps on */

    /* callback forms (fixed at creation) */
    agx_unary_cb ucb;
    agx_stream_cb scb;
    void *user;
    int timeout_ms;            /* async unary: > 0 arms a loop timer */
    agx_completion comp;       /* the callbacks' delivery */

    /* [loop] */
    uint64_t received;         /* stream/bidi items that arrived */
    uint64_t granted;          /* credit sent: the runtime may send window + granted items */
    uint64_t deadline;         /* uv_now based */
    struct agx_call *tprev, *tnext;
    bool timed;
    struct agx_call *fnext;    /* list of calls to notify after the lock is dropped */
    struct agx_call *wnext;    /* the I/O thread's list of readers to wake after this read */
    bool wake_pending;         /* on that list, holding a reference */
    uint32_t wake_items;       /* items that came since its reader was last woken */
};

/* Calls started and not ended on one connection. agentix-server refuses calls beyond its own
 * per-connection cap (4096); the client holds later opening events back instead, so any number
 * of pipelined calls succeed. */
#define CLIENT_INFLIGHT_MAX 4096

typedef enum client_state { CS_CONNECTING, CS_CONNECTED, CS_DEAD } client_state;

struct agx_client {
    agx_engine *e;
    io_thread *t;
    agx_sio_client *sio;       /* [loop] */

    pthread_mutex_t mu;
    pthread_cond_t state_cv;
    /* [mu] */
    int refs;                  /* user handle + loop side + ready list + pending completion +
                                  calls not yet freed (recycled ones on the freelist do not count)
                                  + the expiry channel's hold (client_expiry.c) */
    client_state state;
    bool closing;              /* agx_client_free was called */
    uint64_t channel;          /* its registration as an expiry channel (0 none); set before the
                                  handle is returned, read by agx_client_free */
    bool ready;                /* on the I/O thread's ready list */
    agx_client *rnext;         /* [t->mu] next on that list */
    bool dialled;              /* the loop took the dial */
    bool loop_done;            /* the loop side has let go: no callback runs any more */
    agx_error *dead_why;       /* why the connection ended (state CS_DEAD) */
    agx_call **buckets;        /* id map: chained, indexed by id & mask (ids are sequential) */
    size_t nbuckets, count;
    agx_call *dhead, *dtail;   /* dirty FIFO */
    agx_call *hhead, *htail;   /* calls waiting for an in-flight slot (still marked dirty) */
    size_t inflight;           /* started calls not yet ended */
    agx_call *freelist;        /* recycled calls, keeping their payload buffers */
    size_t nfree;
    uint64_t next_id;

    /* connect callback (fixed at creation) */
    agx_connect_cb ccb;
    void *cuser;
    agx_completion conn_comp;
    bool conn_due;             /* [mu] the connect is settled: conn_comp reports it */
    bool conn_reported;        /* [mu] reported (exactly once) */

    /* fixed after connect */
    char *url;
    int call_timeout_ms;
    uint32_t window;
    agx_codec_limits limits;
    agx_sio_client_config *dial; /* what the loop dials with; freed once dialled */

    /* [loop] */
    agx_buf scratch;           /* small control payloads */
    uv_timer_t timer;          /* async unary deadlines */
    bool timer_open;
    agx_call *thead, *ttail;   /* async unary deadlines, sorted */
    bool sio_open;             /* sio not yet freed */
};

/* Internal API between the files of runtime/client. "lock" = the client mutex held; "loop" =
 * the client's loop thread only. */
void agx_client_lock(agx_client *c);
/* Unlocks; frees the client when its last reference went while the lock was held (nothing can
 * reach a client without a reference, so nobody else holds or waits for the lock then). */
void agx_client_unlock(agx_client *c);

/* client.c: on the loop thread, the client's turn from its I/O thread's ready list. */
void agx_client_loop_turn(agx_client *c);
/* AGX_ERR_INVALID_ARGUMENT naming `what` on an engine I/O thread, else 0: a blocking wait there
 * would stall every connection of the thread, and wait for itself when the answer comes through
 * it. */
int agx_client_refuse_blocking(const char *what, agx_error *err);

/* outbox.c: host threads → loop thread → runtime */
/* Queues work bits on a call (lock); schedules the client when the FIFO was empty. */
void agx_client_mark_locked(agx_client *c, agx_call *k, unsigned bits);
/* Registers a new call and queues its opening event; fails fast (filling err) when the client is
 * closing or its connection is gone. keep_ref false hands the caller's reference to the call map
 * on success. Takes the lock. */
int agx_client_submit(agx_client *c, agx_call *k, bool keep_ref, agx_error *err);
/* The error a call on a closing or disconnected client gets (lock). */
int agx_client_fail_fast_locked(agx_client *c, agx_error *err);
/* Performs the queued work (loop); drop_dirty discards it when the connection is gone (loop). */
void agx_client_run_dirty(agx_client *c);
void agx_client_drop_dirty(agx_client *c);
/* {call_id} (n < 0) or {call_id, n} as event (loop). */
int agx_client_emit_control(agx_client *c, agx_call *k, const char *event, int64_t n,
                            agx_error *err);

/* callmap.c: calls in flight by id, and how they end */
int agx_callmap_put(agx_client *c, agx_call *k);       /* lock; takes a reference */
agx_call *agx_callmap_get(agx_client *c, uint64_t id); /* lock */
/* Ends k (lock, loop) and links it on *notify keeping the map's reference; a call already ended
 * is left alone (result freed). */
void agx_client_end_locked(agx_client *c, agx_call *k, int status, const agx_error *err,
                           agx_value *result, agx_call **notify);
/* Wakes waiters / delivers callbacks of a notify list outside the lock, then drops the refs. */
void agx_client_notify(agx_client *c, agx_call *list);
/* Ends one call / every call in flight (loop; they take the lock). */
void agx_client_end_call(agx_client *c, agx_call *k, int status, const agx_error *err,
                         agx_value *result);
void agx_client_end_all(agx_client *c, const agx_error *why);
void agx_client_timer_unlink(agx_client *c, agx_call *k); /* loop */

/* inbox.c: runtime → loop thread → calls (the transport's on_event handler) */
void agx_client_on_event(agx_sio_conn *conn, const agx_sio_packet *p, void *ud);
/* Wakes the readers whose items came in the read just decoded (after each read, and before the
 * thread stops): one wake per read rather than one per item. Loop thread. */
void agx_client_wake_flush(io_thread *t);

/* calls.c */
/* Drops the bidi input items still queued for sending. */
void agx_call_free_inputs(agx_call *k);
/* Drops one reference (lock); frees or recycles the call at zero. */
void agx_call_unref_locked(agx_call *k);
/* Records how a call ended (lock, loop); the caller wakes waiters after dropping the lock. */
void agx_call_end_locked(agx_call *k, int status, const agx_error *err, agx_value *result);
/* Delivers the call's callbacks (stream items waiting in its ring, send-ready, its end) through
 * the engine, holding a reference until they ran (lock NOT held). */
void agx_call_deliver(agx_call *k);
/* Returns credit for items a consumer took (lock): batches of half a window. */
void agx_call_consumed_locked(agx_call *k, uint32_t n);

/* agx_error_clear without touching the whole 2.6 KB buffer: the client's hot paths use it. */
static inline void agx_client_err_reset(agx_error *e)
{
    e->code = AGX_OK;
    e->retriable = 0;
    e->message[0] = e->detail[0] = e->remote_type[0] = '\0';
}

#endif
