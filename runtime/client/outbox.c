/* outbox.c — the RPC client's way out (host threads → loop thread → runtime): host threads
 * mark calls dirty, the loop thread drains the dirty FIFO into Socket.IO events (opening events,
 * bidi input, end of input, credit, cancel) once the connection is up, holds opening events back
 * past CLIENT_INFLIGHT_MAX calls in flight or while the transport is congested, and runs async
 * unary deadlines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/client_impl.h"
#include "core/base/mpraw.h"
#include "runtime/wire/rpc_error.h"

/* ---- handing work to the loop ---- */

void agx_client_mark_locked(agx_client *c, agx_call *k, unsigned bits)
{
    k->pend |= bits;
    if (k->dirty || c->loop_done || c->state == CS_DEAD)
        return; /* queued already, or nobody will send it: the calls have ended */
    k->dirty = true;
    k->refs++;
    k->dnext = NULL;
    bool was_empty = !c->dhead;
    if (c->dtail)
        c->dtail->dnext = k;
    else
        c->dhead = k;
    c->dtail = k;
    if (was_empty && !c->closing)
        agx_engine_schedule_locked(c);
}

int agx_client_fail_fast_locked(agx_client *c, agx_error *err)
{
    if (c->closing)
        return agx_error_set(err, AGX_ERR_CANCELLED, "the client is closing");
    if (!c->dead_why)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "the connection to %s is gone", c->url);
    agx_error_copy(err, c->dead_why);
    return c->dead_why->code;
}

int agx_client_submit(agx_client *c, agx_call *k, bool keep_ref, agx_error *err)
{
    agx_client_lock(c);
    int rc;
    if (c->closing || c->state == CS_DEAD) { /* while connecting, calls wait for the CONNECT */
        rc = agx_client_fail_fast_locked(c, err);
    } else if ((rc = agx_callmap_put(c, k)) != 0) {
        agx_error_set(err, rc, "out of memory registering a call");
    } else {
        if (!keep_ref)
            k->refs--; /* the caller's reference became the map's */
        agx_client_mark_locked(c, k, PEND_START);
    }
    agx_client_unlock(c);
    return rc;
}

/* ---- emitting (loop thread) ---- */

/* The open connection, or NULL with err saying it is gone. */
static agx_sio_conn *open_conn(agx_client *c, agx_error *err)
{
    agx_sio_conn *conn = c->sio_open ? agx_sio_client_conn(c->sio) : NULL;
    if (!conn)
        agx_error_set(err, AGX_ERR_UNAVAILABLE, "the connection to %s is gone", c->url);
    return conn;
}

static int emit(agx_client *c, const char *event, const void *data, size_t len, agx_error *err)
{
    agx_sio_conn *conn = open_conn(c, err);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    return conn ? agx_sio_conn_emit(conn, event, NULL, &iov, 1, NULL, err) : AGX_ERR_UNAVAILABLE;
}

/* A bidi:in payload, freed right after: the transport may mask it where it lies and send it from
 * there (an upload's 256 KiB items then skip the copy into the send queue). */
static int emit_input(agx_client *c, in_item *it, agx_error *err)
{
    agx_sio_conn *conn = open_conn(c, err);
    struct iovec iov = {.iov_base = it->data, .iov_len = it->len};
    return conn ? agx_sio_conn_emit_scratch(conn, AGX_EV_BIDI_IN, &iov, 1, err) : AGX_ERR_UNAVAILABLE;
}

/* {call_id} or {call_id, n} into the scratch buffer, then emitted. */
int agx_client_emit_control(agx_client *c, agx_call *k, const char *event, int64_t n,
                            agx_error *err)
{
    agx_buf *b = &c->scratch;
    b->len = 0;
    if (agx_mp_put_map(b, n >= 0 ? 2 : 1) || agx_mp_put_lit(b, AGX_F_CALL_ID) ||
        agx_mp_put_str(b, k->idstr, k->idlen) ||
        (n >= 0 && (agx_mp_put_lit(b, AGX_F_N) || agx_mp_put_uint(b, (uint64_t)n))))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    return emit(c, event, b->data, b->len, err);
}

static void timer_arm(agx_client *c);

static void timer_insert(agx_client *c, agx_call *k)
{
    if (!c->timer_open)
        return; /* the client is going: its calls end anyway */
    k->deadline = uv_now(&c->t->loop) + (uint64_t)k->timeout_ms;
    agx_call *after = c->ttail;
    while (after && after->deadline > k->deadline)
        after = after->tprev;
    k->tprev = after;
    k->tnext = after ? after->tnext : c->thead;
    if (k->tnext)
        k->tnext->tprev = k;
    else
        c->ttail = k;
    if (after)
        after->tnext = k;
    else
        c->thead = k;
    k->timed = true;
    if (c->thead == k)
        timer_arm(c);
}

/* Performs the work queued on one call. Returns the error that ended it, if any. */
static void run_work(agx_client *c, agx_call *k, unsigned pend, uint32_t credit, in_item *ins)
{
    agx_error e;
    int rc = 0;
    bool sent_cancel = false;
    agx_client_err_reset(&e);
    if (pend & PEND_START) {
        rc = emit(c, agx_wire_start_event(k->shape), k->payload.data, k->payload.len, &e);
        if (rc == 0 && k->ucb && k->timeout_ms > 0)
            timer_insert(c, k);
    }
    for (in_item *it = ins, *next; it; it = next) {
        next = it->next;
        if (rc == 0 && !(pend & PEND_CANCEL))
            rc = emit_input(c, it, &e);
        free(it);
    }
    if (rc == 0 && (pend & PEND_END_IN) && !(pend & PEND_CANCEL))
        rc = agx_client_emit_control(c, k, AGX_EV_BIDI_END_IN, -1, &e);
    if (rc == 0 && (pend & PEND_CREDIT) && credit && !(pend & PEND_CANCEL) &&
        (rc = agx_client_emit_control(c, k, AGX_EV_CREDIT, credit, &e)) == 0)
        k->granted += credit;
    if (pend & PEND_CANCEL) {
        if (!(pend & PEND_START) || rc == 0)
            agx_client_emit_control(c, k, AGX_EV_CANCEL, -1,
                                    &e); /* a gone connection ends the call anyway */
        sent_cancel = true;
    }
    if (rc) {
        if (!(pend & PEND_CANCEL) && (k->shape == AGX_KIND_STREAM || k->shape == AGX_KIND_BIDI))
            agx_client_emit_control(c, k, AGX_EV_CANCEL, -1, NULL);
        agx_error_prefix(&e, "sending call %s", k->idstr);
        agx_client_end_call(c, k, rc, &e, NULL);
    } else if (sent_cancel) {
        agx_client_lock(c);
        bool timeout = k->cancel_timeout;
        agx_client_unlock(c);
        if (timeout)
            agx_error_set(&e, AGX_ERR_TIMEOUT, "call %s timed out; it was cancelled", k->idstr);
        else
            agx_error_set(&e, AGX_ERR_CANCELLED, "call %s was cancelled", k->idstr);
        snprintf(e.remote_type, sizeof e.remote_type, "%s", timeout ? AGX_RPC_TIMEOUT : AGX_RPC_CANCELLED);
        agx_client_end_call(c, k, e.code, &e, NULL);
    }
}

/* Moves held calls, oldest first, to the front of the dirty FIFO while slots are free (lock). */
static void promote_held_locked(agx_client *c)
{
    agx_call *first = NULL, *last = NULL;
    size_t room = c->inflight < CLIENT_INFLIGHT_MAX ? CLIENT_INFLIGHT_MAX - c->inflight : 0;
    while (c->hhead && room) {
        agx_call *k = c->hhead;
        c->hhead = k->dnext;
        k->dnext = NULL;
        if (last)
            last->dnext = k;
        else
            first = k;
        last = k;
        room--;
    }
    if (!c->hhead)
        c->htail = NULL;
    if (!first)
        return;
    last->dnext = c->dhead;
    c->dhead = first;
    if (!c->dtail)
        c->dtail = last;
}

/* Drains the dirty FIFO, pausing while the transport's send queue is congested (on_drain
 * resumes) and holding opening events back while CLIENT_INFLIGHT_MAX calls are in flight. */
void agx_client_run_dirty(agx_client *c)
{
    agx_sio_conn *conn = c->sio_open ? agx_sio_client_conn(c->sio) : NULL;
    if (!conn)
        return; /* not connected yet (on_connect runs it) or gone (drop_dirty) */
    agx_client_lock(c);
    promote_held_locked(c);
    while (c->dhead) {
        if (!(conn = c->sio_open ? agx_sio_client_conn(c->sio) : NULL) ||
            agx_sio_conn_congested(conn))
            break;
        agx_call *k = c->dhead;
        c->dhead = k->dnext;
        if (!c->dhead)
            c->dtail = NULL;
        if ((k->pend & PEND_START) && !k->done && !(k->pend & PEND_CANCEL) &&
            c->inflight >= CLIENT_INFLIGHT_MAX) {
            k->dnext = NULL; /* stays marked dirty: later work just adds bits */
            if (c->htail)
                c->htail->dnext = k;
            else
                c->hhead = k;
            c->htail = k;
            continue;
        }
        k->dirty = false;
        if ((k->pend & PEND_START) && !k->done) {
            k->started = true;
            c->inflight++;
        }
        unsigned pend = k->pend;
        uint32_t credit = k->credit_n;
        in_item *ins = k->in_head;
        k->pend = 0;
        k->credit_n = 0;
        k->in_head = k->in_tail = NULL;
        bool skip = k->done;
        agx_client_unlock(c);
        if (skip) {
            for (in_item *it = ins, *next; it; it = next) {
                next = it->next;
                free(it);
            }
        } else {
            run_work(c, k, pend, credit, ins);
        }
        agx_client_lock(c);
        agx_call_unref_locked(k);
    }
    agx_client_unlock(c);
}

/* Drops the FIFO without doing its work (the client is closing). */
void agx_client_drop_dirty(agx_client *c)
{
    agx_client_lock(c);
    promote_held_locked(c);
    if (c->hhead) { /* no slots: splice the rest in front anyway, all are dropped */
        c->htail->dnext = c->dhead;
        if (!c->dtail)
            c->dtail = c->htail;
        c->dhead = c->hhead;
        c->hhead = c->htail = NULL;
    }
    while (c->dhead) {
        agx_call *k = c->dhead;
        c->dhead = k->dnext;
        k->dirty = false;
        k->pend = 0;
        agx_call_free_inputs(k);
        agx_call_unref_locked(k);
    }
    c->dtail = NULL;
    agx_client_unlock(c);
}

/* ---- async unary deadlines ---- */

static void timer_fired(uv_timer_t *t)
{
    agx_client *c = t->data;
    uint64_t now = uv_now(&c->t->loop);
    while (c->thead && c->thead->deadline <= now) {
        agx_call *k = c->thead;
        agx_client_timer_unlink(c, k);
        agx_client_emit_control(c, k, AGX_EV_CANCEL, -1, NULL);
        agx_error e;
        agx_error_set(&e, AGX_ERR_TIMEOUT, "call %s timed out after %d ms; it was cancelled",
                      k->idstr, k->timeout_ms);
        snprintf(e.remote_type, sizeof e.remote_type, AGX_RPC_TIMEOUT);
        agx_client_end_call(c, k, AGX_ERR_TIMEOUT, &e, NULL);
    }
    timer_arm(c);
}

static void timer_arm(agx_client *c)
{
    if (!c->thead) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_now(&c->t->loop);
    uv_timer_start(&c->timer, timer_fired, c->thead->deadline > now ? c->thead->deadline - now : 0,
                   0);
}

