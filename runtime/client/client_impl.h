/* client_impl.h — the inside of agx_client and agx_call (client.h), shared by the files of
 * runtime/client: client.c (connect, free, the loop thread's lifecycle), outbox.c (work from host
 * threads to the runtime), inbox.c (events from the runtime to calls), callmap.c (calls in
 * flight by id, and how they end) and calls.c (the host-thread side: encoding, submitting,
 * waiting, stream/bidi handles).
 *
 * Threading model: one mutex per client guards every field marked [mu]; the loop thread alone
 * touches the fields marked [loop]. Host threads never touch the transport: they mark a call
 * dirty (pending work bits + a FIFO of dirty calls) and wake the loop with one uv_async_send when
 * the FIFO was empty, so a burst of calls costs one wake. Calls leave the id map only on the
 * loop thread (a terminal event, a cancel or timeout being sent, the connection ending), so the
 * loop thread may use a call it found in the map without holding the lock. Private to
 * runtime/client. */
#ifndef AGX_CLIENT_IMPL_H
#define AGX_CLIENT_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>

#include "agentix/client.h"
#include "agentix/clock.h"
#include "runtime/transport/sio_client.h"
#include "runtime/wire/protocol.h"


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
    int refs;                  /* user handle + id map + dirty FIFO */
    struct agx_call *hnext;    /* id map chain */
    struct agx_call *dnext;    /* dirty FIFO */
    bool in_map, dirty;
    unsigned pend;
    uint32_t credit_n;
    in_item *in_head, *in_tail;
    bool done;
    int status;                /* 0 ended well, else the agx_error_code */
    agx_error err;
    agx_value *result;         /* unary/describe */
    agx_value **ring;          /* stream/bidi items not yet taken, capacity = window */
    uint32_t window, rhead, rcount;
    uint32_t consumed;         /* items taken since the last credit */
    uint32_t in_credit;        /* bidi:in items the runtime will still accept */
    bool send_closed, cancelling, cancel_timeout;
    bool started;              /* its opening event went out: counts in client.inflight */
    pthread_cond_t cv;

    /* callback forms (fixed at creation) */
    agx_unary_cb ucb;
    agx_stream_cb scb;
    void *user;
    int timeout_ms;            /* async unary: > 0 arms a loop timer */

    /* [loop] */
    uint64_t received;         /* stream/bidi items that arrived */
    uint64_t granted;          /* credit sent: the runtime may send window + granted items */
    uint64_t deadline;         /* uv_now based */
    struct agx_call *tprev, *tnext;
    bool timed;
    struct agx_call *fnext;    /* list of calls to notify after the lock is dropped */
};

/* Calls started and not ended on one connection. agentix-server refuses calls beyond its own
 * per-connection cap (4096); the client holds later opening events back instead, so any number
 * of pipelined calls succeed. */
#define CLIENT_INFLIGHT_MAX 4096

typedef enum client_state { CS_CONNECTING, CS_CONNECTED, CS_DEAD } client_state;

struct agx_client {
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer;          /* async unary deadlines */
    pthread_t thread;
    agx_sio_client *sio;

    pthread_mutex_t mu;
    pthread_cond_t state_cv;
    /* [mu] */
    client_state state;
    bool closing;
    agx_error dead_why;        /* why the connection ended (state CS_DEAD) */
    agx_call **buckets;        /* id map: chained, indexed by id & mask (ids are sequential) */
    size_t nbuckets, count;
    agx_call *dhead, *dtail;   /* dirty FIFO */
    agx_call *hhead, *htail;   /* calls waiting for an in-flight slot (still marked dirty) */
    size_t inflight;           /* started calls not yet ended */
    agx_call *freelist;        /* recycled calls, keeping their payload buffers */
    size_t nfree;
    uint64_t next_id;

    /* fixed after connect */
    char *url;
    int call_timeout_ms;
    uint32_t window;
    agx_codec_limits limits;

    /* [loop] */
    agx_buf scratch;           /* small control payloads */
    agx_call *thead, *ttail;   /* async unary deadlines, sorted */
};

/* Internal API between the files of runtime/client. "lock" = the client mutex held; "loop" =
 * the loop thread only. */
void agx_client_lock(agx_client *c);
void agx_client_unlock(agx_client *c);

/* outbox.c: host threads → loop thread → runtime */
/* Queues work bits on a call (lock); wakes the loop when the FIFO was empty. */
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
/* Wakes waiters / runs callbacks of a notify list outside the lock, then drops the references. */
void agx_client_notify(agx_client *c, agx_call *list);
/* Ends one call / every call in flight (loop; they take the lock). */
void agx_client_end_call(agx_client *c, agx_call *k, int status, const agx_error *err,
                         agx_value *result);
void agx_client_end_all(agx_client *c, const agx_error *why);
void agx_client_timer_unlink(agx_client *c, agx_call *k); /* loop */

/* inbox.c: runtime → loop thread → calls (the transport's on_event handler) */
void agx_client_on_event(agx_sio_conn *conn, const agx_sio_packet *p, void *ud);

/* calls.c */
/* Drops the bidi input items still queued for sending. */
void agx_call_free_inputs(agx_call *k);
/* Drops one reference (lock); frees or recycles the call at zero. */
void agx_call_unref_locked(agx_call *k);
/* Records how a call ended (lock, loop); the caller wakes waiters after dropping the lock. */
void agx_call_end_locked(agx_call *k, int status, const agx_error *err, agx_value *result);

/* agx_error_clear without touching the whole 2.6 KB buffer: the client's hot paths use it. */
static inline void agx_client_err_reset(agx_error *e)
{
    e->code = AGX_OK;
    e->retriable = 0;
    e->message[0] = e->detail[0] = e->remote_type[0] = '\0';
}

#endif
