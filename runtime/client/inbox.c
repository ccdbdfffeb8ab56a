/* inbox.c — the RPC client's way in (runtime → loop thread → host threads): each event, decoded by
 * event.c, is routed by call_id to its call; values are decoded once, on the loop thread (one
 * copy from the transport's buffer, cheaper overall than handing raw bytes to the consumer and
 * decoding there); stream items go to the call's window-sized ring, where a blocking reader takes
 * them or the engine delivers them to the call's callback; anything that breaks the protocol
 * fails that call (and cancels it remotely), never the connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/client_impl.h"
#include "runtime/client/event.h"

#define IN_CREDIT_MAX (1u << 30)
#define WAKE_BATCH 64 /* items after which a blocked reader is woken before the read ends */

/* ---- incoming events (loop thread) ---- */

/* Ends a call the runtime broke the protocol on, and tells the runtime to stop it. */
static void call_protocol_error(agx_client *c, agx_call *k, agx_error *e)
{
    if (k->shape == AGX_KIND_STREAM || k->shape == AGX_KIND_BIDI)
        agx_client_emit_control(c, k, AGX_EV_CANCEL, -1, NULL);
    agx_error_prefix(e, "call %s", k->idstr);
    agx_client_end_call(c, k, e->code, e, NULL);
}

static void on_item(agx_client *c, agx_call *k, agx_value *v)
{
    if (++k->received > k->window + k->granted) {
        agx_value_free(v);
        agx_error e;
        agx_error_set(&e, AGX_ERR_PROTOCOL,
                      "the runtime sent more items than the window (%u) and credit allow",
                      k->window);
        call_protocol_error(c, k, &e);
        return;
    }
    bool listed = !k->scb && !k->wake_pending;
    agx_client_lock(c);
    /* received - taken <= window + granted - taken <= window: the ring cannot overflow. */
    k->ring[(k->rhead + k->rcount) % k->window] = v;
    k->rcount++;
    if (listed)
        k->refs++; /* the wake list's: the host may free the call before the read ends */
    agx_client_unlock(c);
    if (k->scb) {
        agx_call_deliver(k);
        return;
    }
    /* A blocked reader is woken once the whole read is decoded, not per item: a futex wake and
     * a reader's wait per item were a fifth of this thread's time on a stream of small items.
     * Every WAKE_BATCH items it is woken at once anyway, so a large read keeps it busy too. */
    io_thread *t = c->t;
    if (listed) {
        k->wake_pending = true;
        k->wake_items = 0;
        k->wnext = t->wake_head;
        t->wake_head = k;
    }
    if (++k->wake_items >= WAKE_BATCH) {
        k->wake_items = 0;
        agx_wakeup_all(&k->wake);
    }
}

void agx_client_wake_flush(io_thread *t)
{
    agx_call *list = t->wake_head;
    t->wake_head = NULL;
    for (agx_call *k = list; k; k = k->wnext)
        agx_wakeup_all(&k->wake); /* valid: the list holds a reference */
    while (list) {
        agx_call *k = list;
        list = k->wnext;
        k->wnext = NULL;
        k->wake_pending = false;
        agx_client *c = k->c;
        agx_client_lock(c);
        agx_call_unref_locked(k);
        agx_client_unlock(c);
    }
}

/* The common unary/describe answer, with one lock for lookup and completion. False leaves the
 * event (its value still the caller's) to the general path: unknown, or for another shape. */
static bool result_fast_path(agx_client *c, agx_client_event *ev)
{
    agx_call *notify = NULL;
    agx_client_lock(c);
    agx_call *k = agx_callmap_get(c, ev->id);
    bool mine = k && (k->shape == AGX_KIND_UNARY || k->shape == AGX_KIND_DESCRIBE) &&
                ev->shape == k->shape;
    if (mine)
        agx_client_end_locked(c, k, 0, NULL, ev->value, &notify);
    agx_client_unlock(c);
    if (!mine)
        return false;
    agx_client_notify(c, notify);
    if (c->hhead)
        agx_client_run_dirty(c);
    return true;
}

static void on_credit(agx_client *c, agx_call *k, uint64_t n)
{
    agx_client_lock(c);
    uint64_t total = (uint64_t)k->in_credit + n;
    k->in_credit = total > IN_CREDIT_MAX ? IN_CREDIT_MAX : (uint32_t)total;
    /* A callback bidi waiting for credit is told it may send again (through the engine). */
    bool ready = k->send_ready_wanted && k->in_credit > 0;
    if (ready) {
        k->send_ready_wanted = false;
        k->send_ready_due = true;
    }
    agx_client_unlock(c);
    agx_wakeup_all(&k->wake);
    if (ready && k->scb)
        agx_call_deliver(k);
}

/* A large item or result is handed to the host in the buffer it was received in (no copy). */
#define ADOPT_MIN ((size_t)16 << 10)

static agx_value *adopt_tail(void *conn, agx_value_type type, const void *data, size_t len)
{
    return agx_sio_conn_adopt_tail(conn, type, data, len);
}

void agx_client_on_event(agx_sio_conn *conn, const agx_sio_packet *p, void *ud)
{
    agx_client *c = ud;
    if (!p->event || p->nattach != 1)
        return; /* not an RPC event (PROTOCOL.md §2: one msgpack attachment) */
    agx_client_event ev;
    agx_error e;
    agx_client_err_reset(&e);
    const agx_client_adopt adopt = {adopt_tail, conn, ADOPT_MIN};
    int rc = agx_client_event_decode(p->event, p->attach[0].data, p->attach[0].len, &c->limits,
                                      &adopt, &ev, &e);
    if (rc == AGX_CEV_NOT_OURS)
        return; /* not one of ours: dropped, like any unknown call_id */
    if (rc == 0 && ev.kind == AGX_CEV_RESULT && result_fast_path(c, &ev))
        return;
    agx_client_lock(c);
    agx_call *k = agx_callmap_get(c, ev.id);
    agx_client_unlock(c);
    if (!k) {
        agx_value_free(ev.value);
        return;
    }
    if (rc == 0 && ev.shape != k->shape) {
        agx_value_free(ev.value);
        rc = agx_error_set(&e, AGX_ERR_PROTOCOL, "the runtime answered with '%.64s'", p->event);
    }
    if (rc) {
        call_protocol_error(c, k, &e);
        return;
    }
    switch (ev.kind) {
    case AGX_CEV_RESULT: agx_client_end_call(c, k, 0, NULL, ev.value); break;
    case AGX_CEV_ITEM: on_item(c, k, ev.value); break;
    case AGX_CEV_END: agx_client_end_call(c, k, 0, NULL, NULL); break;
    case AGX_CEV_ERROR: agx_client_end_call(c, k, ev.error_code, &ev.error, NULL); break;
    case AGX_CEV_CREDIT: on_credit(c, k, ev.n); break;
    }
    if (c->hhead) /* read on the loop thread, its only writer */
        agx_client_run_dirty(c);
}
