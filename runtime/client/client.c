/* client.c — the host's RPC client connection (client.h): one agentix-server connection served
 * by the client's own libuv loop thread. Host threads hand work over through the dirty-call FIFO
 * (client_impl.h); this file turns that work into Socket.IO events, routes the runtime's replies
 * to their calls by call_id, and ends every call in flight when the connection goes.
 *
 * Connect errors keep the transport's code: AGX_ERR_PROTOCOL when the server refused the Socket.IO
 * CONNECT (a wrong or missing token: "the server refused the Socket.IO connection: invalid
 * token"), AGX_ERR_UNAVAILABLE when nothing answers, AGX_ERR_TIMEOUT when the handshake did not
 * finish within connect_timeout_ms. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/client_impl.h"
#include "runtime/shared/mpraw.h"
#include "runtime/shared/rpc_error.h"

#define DEFAULT_CONNECT_TIMEOUT 10000
#define DEFAULT_WINDOW 64
#define MAX_WINDOW 65536
#define MAX_HEADERS 64
#define IN_CREDIT_MAX (1u << 30)

void agx_client_lock(agx_client *c) { pthread_mutex_lock(&c->mu); }
void agx_client_unlock(agx_client *c) { pthread_mutex_unlock(&c->mu); }

/* ---- the id map [mu] ---- */

static int map_grow(agx_client *c)
{
    size_t n = c->nbuckets ? c->nbuckets * 2 : 256;
    agx_call **b = calloc(n, sizeof *b);
    if (!b)
        return AGX_ERR_NO_MEMORY;
    for (size_t i = 0; i < c->nbuckets; i++)
        for (agx_call *k = c->buckets[i], *next; k; k = next) {
            next = k->hnext;
            k->hnext = b[k->id & (n - 1)];
            b[k->id & (n - 1)] = k;
        }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
    return 0;
}

static int map_put(agx_client *c, agx_call *k)
{
    if (c->count >= c->nbuckets && map_grow(c) != 0)
        return AGX_ERR_NO_MEMORY;
    agx_call **slot = &c->buckets[k->id & (c->nbuckets - 1)];
    k->hnext = *slot;
    *slot = k;
    k->in_map = true;
    k->refs++;
    c->count++;
    return 0;
}

static agx_call *map_get(agx_client *c, uint64_t id)
{
    if (!c->nbuckets)
        return NULL;
    for (agx_call *k = c->buckets[id & (c->nbuckets - 1)]; k; k = k->hnext)
        if (k->id == id)
            return k;
    return NULL;
}

/* Unlinks without dropping the map's reference: the caller hands it on or drops it. */
static void map_del(agx_client *c, agx_call *k)
{
    if (!k->in_map)
        return;
    for (agx_call **p = &c->buckets[k->id & (c->nbuckets - 1)]; *p; p = &(*p)->hnext)
        if (*p == k) {
            *p = k->hnext;
            break;
        }
    k->hnext = NULL;
    k->in_map = false;
    c->count--;
}

/* ---- handing work to the loop ---- */

void agx_client_mark_locked(agx_client *c, agx_call *k, unsigned bits)
{
    k->pend |= bits;
    if (k->dirty)
        return;
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
        uv_async_send(&c->wake);
}

static int fail_fast_locked(agx_client *c, agx_error *err)
{
    if (c->closing)
        return agx_error_set(err, AGX_ERR_CANCELLED, "the client is closing");
    agx_error_copy(err, &c->dead_why);
    return c->dead_why.code;
}

int agx_client_submit(agx_client *c, agx_call *k, agx_error *err)
{
    agx_client_lock(c);
    int rc;
    if (c->closing || c->state != CS_CONNECTED)
        rc = fail_fast_locked(c, err);
    else if ((rc = map_put(c, k)) != 0)
        agx_error_set(err, rc, "out of memory registering a call");
    else
        agx_client_mark_locked(c, k, PEND_START);
    agx_client_unlock(c);
    return rc;
}

/* ---- ending calls (loop thread) ---- */

/* Ends k (lock held) and links it on *notify, keeping the map's reference until notify_all has
 * woken its waiter or run its callback outside the lock. */
static void end_locked(agx_client *c, agx_call *k, int status, const agx_error *err,
                       agx_value *result, agx_call **notify)
{
    if (!k->in_map) { /* ended already: a late reply, or a cancel racing a terminal event */
        agx_value_free(result);
        return;
    }
    map_del(c, k);
    if (k->started) {
        k->started = false;
        c->inflight--;
    }
    agx_call_end_locked(k, status, err, result);
    k->fnext = *notify;
    *notify = k;
}

static void timer_unlink(agx_client *c, agx_call *k)
{
    if (!k->timed)
        return;
    if (k->tprev)
        k->tprev->tnext = k->tnext;
    else
        c->thead = k->tnext;
    if (k->tnext)
        k->tnext->tprev = k->tprev;
    else
        c->ttail = k->tprev;
    k->tprev = k->tnext = NULL;
    k->timed = false;
}

/* Runs the callbacks of calls ended under the lock (now released), then drops their refs. */
static void notify_all(agx_client *c, agx_call *list)
{
    if (!list)
        return;
    /* The list was built by prepending: restore the order the calls ended in. */
    agx_call *rev = NULL;
    while (list) {
        agx_call *n = list->fnext;
        list->fnext = rev;
        rev = list;
        list = n;
    }
    for (agx_call *k = rev; k; k = k->fnext) {
        timer_unlink(c, k);
        if (k->ucb) {
            agx_value *res = k->result;
            k->result = NULL;
            k->ucb(k->user, k->status, res, &k->err);
        } else if (k->scb) {
            k->scb(k->user, k->status ? AGX_CALL_ERROR : AGX_CALL_END, NULL, &k->err);
        } else {
            /* Woken outside the lock, so the waiter does not wake only to block on it. */
            pthread_cond_broadcast(&k->cv);
        }
    }
    agx_client_lock(c);
    while (rev) {
        agx_call *n = rev->fnext;
        agx_call_unref_locked(rev);
        rev = n;
    }
    agx_client_unlock(c);
}

static void end_call(agx_client *c, agx_call *k, int status, const agx_error *err,
                     agx_value *result)
{
    agx_call *notify = NULL;
    timer_unlink(c, k);
    agx_client_lock(c);
    end_locked(c, k, status, err, result, &notify);
    agx_client_unlock(c);
    notify_all(c, notify);
}

/* Every call in the map ends with why (lock not held). */
static void end_all(agx_client *c, const agx_error *why)
{
    agx_call *notify = NULL;
    agx_client_lock(c);
    for (size_t i = 0; i < c->nbuckets; i++)
        while (c->buckets[i])
            end_locked(c, c->buckets[i], why->code, why, NULL, &notify);
    agx_client_unlock(c);
    notify_all(c, notify);
}

/* ---- emitting (loop thread) ---- */

static int emit(agx_client *c, const char *event, const void *data, size_t len, agx_error *err)
{
    agx_sio_conn *conn = agx_sio_client_conn(c->sio);
    if (!conn)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "the connection to %s is gone", c->url);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    return agx_sio_conn_emit(conn, event, NULL, &iov, 1, NULL, err);
}

/* {call_id} or {call_id, n} into the scratch buffer, then emitted. */
static int emit_control(agx_client *c, agx_call *k, const char *event, int64_t n, agx_error *err)
{
    agx_buf *b = &c->scratch;
    b->len = 0;
    if (agx_mp_put_map(b, n >= 0 ? 2 : 1) || agx_mp_put_str(b, "call_id", 7) ||
        agx_mp_put_str(b, k->idstr, k->idlen) ||
        (n >= 0 && (agx_mp_put_str(b, "n", 1) || agx_mp_put_uint(b, (uint64_t)n))))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    return emit(c, event, b->data, b->len, err);
}

static const char *start_event(call_shape s)
{
    switch (s) {
    case SHAPE_UNARY:
        return "unary";
    case SHAPE_STREAM:
        return "stream";
    case SHAPE_BIDI:
        return "bidi:start";
    case SHAPE_DESCRIBE:
        return "describe";
    }
    return "unary";
}

static void timer_arm(agx_client *c);

static void timer_insert(agx_client *c, agx_call *k)
{
    k->deadline = uv_now(&c->loop) + (uint64_t)k->timeout_ms;
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
        rc = emit(c, start_event(k->shape), k->payload.data, k->payload.len, &e);
        if (rc == 0 && k->ucb && k->timeout_ms > 0)
            timer_insert(c, k);
    }
    for (in_item *it = ins, *next; it; it = next) {
        next = it->next;
        if (rc == 0 && !(pend & PEND_CANCEL))
            rc = emit(c, "bidi:in", it->data, it->len, &e);
        free(it);
    }
    if (rc == 0 && (pend & PEND_END_IN) && !(pend & PEND_CANCEL))
        rc = emit_control(c, k, "bidi:end_in", -1, &e);
    if (rc == 0 && (pend & PEND_CREDIT) && credit && !(pend & PEND_CANCEL) &&
        (rc = emit_control(c, k, "credit", credit, &e)) == 0)
        k->granted += credit;
    if (pend & PEND_CANCEL) {
        if (!(pend & PEND_START) || rc == 0)
            emit_control(c, k, "cancel", -1, &e); /* a gone connection ends the call anyway */
        sent_cancel = true;
    }
    if (rc) {
        if (!(pend & PEND_CANCEL) && k->shape != SHAPE_UNARY && k->shape != SHAPE_DESCRIBE)
            emit_control(c, k, "cancel", -1, NULL);
        agx_error_prefix(&e, "sending call %s", k->idstr);
        end_call(c, k, rc, &e, NULL);
    } else if (sent_cancel) {
        agx_client_lock(c);
        bool timeout = k->cancel_timeout;
        agx_client_unlock(c);
        if (timeout)
            agx_error_set(&e, AGX_ERR_TIMEOUT, "call %s timed out; it was cancelled", k->idstr);
        else
            agx_error_set(&e, AGX_ERR_CANCELLED, "call %s was cancelled", k->idstr);
        snprintf(e.remote_type, sizeof e.remote_type, "%s", timeout ? "Timeout" : "Cancelled");
        end_call(c, k, e.code, &e, NULL);
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
static void run_dirty(agx_client *c)
{
    agx_client_lock(c);
    promote_held_locked(c);
    while (c->dhead) {
        agx_sio_conn *conn = agx_sio_client_conn(c->sio);
        if (conn && agx_sio_conn_congested(conn))
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
static void drop_dirty(agx_client *c)
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
        for (in_item *it = k->in_head, *next; it; it = next) {
            next = it->next;
            free(it);
        }
        k->in_head = k->in_tail = NULL;
        agx_call_unref_locked(k);
    }
    c->dtail = NULL;
    agx_client_unlock(c);
}

/* ---- async unary deadlines ---- */

static void timer_fired(uv_timer_t *t)
{
    agx_client *c = t->data;
    uint64_t now = uv_now(&c->loop);
    while (c->thead && c->thead->deadline <= now) {
        agx_call *k = c->thead;
        timer_unlink(c, k);
        emit_control(c, k, "cancel", -1, NULL);
        agx_error e;
        agx_error_set(&e, AGX_ERR_TIMEOUT, "call %s timed out after %d ms; it was cancelled",
                      k->idstr, k->timeout_ms);
        snprintf(e.remote_type, sizeof e.remote_type, "Timeout");
        end_call(c, k, AGX_ERR_TIMEOUT, &e, NULL);
    }
    timer_arm(c);
}

static void timer_arm(agx_client *c)
{
    if (!c->thead) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_now(&c->loop);
    uv_timer_start(&c->timer, timer_fired, c->thead->deadline > now ? c->thead->deadline - now : 0,
                   0);
}

/* ---- incoming events (loop thread) ---- */

static bool parse_id(const char *s, size_t n, uint64_t *id)
{
    if (n == 0 || n >= CALL_ID_MAX)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        int d;
        if (s[i] >= '0' && s[i] <= '9')
            d = s[i] - '0';
        else if (s[i] >= 'a' && s[i] <= 'z')
            d = s[i] - 'a' + 10;
        else
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / 36)
            return false;
        v = v * 36 + (uint64_t)d;
    }
    *id = v;
    return true;
}

static const char *shape_prefix(call_shape s)
{
    switch (s) {
    case SHAPE_UNARY:
        return "unary:";
    case SHAPE_STREAM:
        return "stream:";
    case SHAPE_BIDI:
        return "bidi:";
    case SHAPE_DESCRIBE:
        return "describe:";
    }
    return "";
}

/* Ends a call the runtime broke the protocol on, and tells the runtime to stop it. */
static void call_protocol_error(agx_client *c, agx_call *k, agx_error *e)
{
    if (k->shape == SHAPE_STREAM || k->shape == SHAPE_BIDI)
        emit_control(c, k, "cancel", -1, NULL);
    agx_error_prefix(e, "call %s", k->idstr);
    end_call(c, k, e->code, e, NULL);
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
    if (k->scb) {
        k->scb(k->user, AGX_CALL_ITEM, v, NULL);
        uint32_t half = k->window > 1 ? k->window / 2 : 1;
        if (++k->consumed >= half && emit_control(c, k, "credit", k->consumed, NULL) == 0) {
            k->granted += k->consumed;
            k->consumed = 0;
        }
        return;
    }
    agx_client_lock(c);
    /* received - taken <= window + granted - taken <= window: the ring cannot overflow. */
    k->ring[(k->rhead + k->rcount) % k->window] = v;
    k->rcount++;
    agx_client_unlock(c);
    pthread_cond_signal(&k->cv); /* k stays valid: it is in the map, which only this thread edits */
}

/* The common unary/describe answer, with one lock for lookup and completion. False leaves the
 * event (malformed, unknown, or for another shape) to the general path. */
static bool result_fast_path(agx_client *c, const agx_sio_packet *p, uint64_t id,
                             const unsigned char *data, size_t len)
{
    size_t n = strlen(p->event);
    if (n < 7 || strcmp(p->event + n - 7, ":result") != 0)
        return false;
    agx_mp_span span;
    agx_value *v = NULL;
    if (agx_mp_map_find(data, len, "value", &span) != 1 ||
        agx_value_from_msgpack(span.data, span.len, &c->limits, &v, NULL) != 0)
        return false;
    agx_call *notify = NULL;
    agx_client_lock(c);
    agx_call *k = map_get(c, id);
    const char *pre = k ? shape_prefix(k->shape) : "";
    bool mine = k && (k->shape == SHAPE_UNARY || k->shape == SHAPE_DESCRIBE) &&
                strlen(pre) == n - 6 && strncmp(p->event, pre, n - 6) == 0;
    if (mine)
        end_locked(c, k, 0, NULL, v, &notify);
    agx_client_unlock(c);
    if (!mine) {
        agx_value_free(v);
        return false;
    }
    notify_all(c, notify);
    if (c->hhead)
        run_dirty(c);
    return true;
}

static void on_event(agx_sio_conn *conn, const agx_sio_packet *p, void *ud)
{
    (void)conn;
    agx_client *c = ud;
    if (!p->event || p->nattach != 1)
        return; /* not an RPC event (PROTOCOL.md §2: one msgpack attachment) */
    const unsigned char *data = p->attach[0].data;
    size_t len = p->attach[0].len;
    agx_mp_span span;
    const char *ids;
    size_t idn;
    uint64_t id;
    if (agx_mp_map_find(data, len, "call_id", &span) != 1 || agx_mp_get_str(span, &ids, &idn) ||
        !parse_id(ids, idn, &id))
        return; /* not one of ours: dropped, like any unknown call_id */
    if (result_fast_path(c, p, id, data, len))
        return;
    agx_client_lock(c);
    agx_call *k = map_get(c, id);
    agx_client_unlock(c);
    if (!k)
        return;

    const char *pre = shape_prefix(k->shape);
    size_t pl = strlen(pre);
    agx_error e;
    agx_client_err_reset(&e);
    if (strncmp(p->event, pre, pl) != 0) {
        agx_error_set(&e, AGX_ERR_PROTOCOL, "the runtime answered with '%.64s'", p->event);
        call_protocol_error(c, k, &e);
        return;
    }
    const char *kind = p->event + pl;
    bool value_kind = !strcmp(kind, "result") || !strcmp(kind, "item") || !strcmp(kind, "out");
    if (value_kind) {
        agx_value *v = NULL;
        int found = agx_mp_map_find(data, len, "value", &span);
        if (found != 1) {
            agx_error_set(&e, AGX_ERR_PROTOCOL, "'%s' without a value", p->event);
        } else if (agx_value_from_msgpack(span.data, span.len, &c->limits, &v, &e) != 0) {
            agx_error_prefix(&e, "decoding '%s'", p->event);
        }
        if (e.code) {
            call_protocol_error(c, k, &e);
            return;
        }
        if (!strcmp(kind, "result") && k->shape != SHAPE_STREAM && k->shape != SHAPE_BIDI)
            end_call(c, k, 0, NULL, v);
        else if (strcmp(kind, "result") != 0 && (k->shape == SHAPE_STREAM || k->shape == SHAPE_BIDI))
            on_item(c, k, v);
        else {
            agx_value_free(v);
            agx_error_set(&e, AGX_ERR_PROTOCOL, "unexpected '%s'", p->event);
            call_protocol_error(c, k, &e);
        }
    } else if (!strcmp(kind, "error")) {
        int rc = agx_mp_map_find(data, len, "error", &span) == 1
                     ? agx_rpc_error_from_msgpack(span, &e)
                     : agx_error_set(&e, AGX_ERR_PROTOCOL, "'%s' without an error", p->event);
        end_call(c, k, rc, &e, NULL);
    } else if (!strcmp(kind, "end") && (k->shape == SHAPE_STREAM || k->shape == SHAPE_BIDI)) {
        end_call(c, k, 0, NULL, NULL);
    } else if (!strcmp(kind, "credit") && k->shape == SHAPE_BIDI) {
        uint64_t n = 0;
        if (agx_mp_map_find(data, len, "n", &span) != 1 || agx_mp_get_uint(span, &n)) {
            agx_error_set(&e, AGX_ERR_PROTOCOL, "'bidi:credit' without a count n");
            call_protocol_error(c, k, &e);
            return;
        }
        agx_client_lock(c);
        uint64_t total = (uint64_t)k->in_credit + n;
        k->in_credit = total > IN_CREDIT_MAX ? IN_CREDIT_MAX : (uint32_t)total;
        agx_client_unlock(c);
        pthread_cond_broadcast(&k->cv);
    } else {
        agx_error_set(&e, AGX_ERR_PROTOCOL, "unexpected '%.64s'", p->event);
        call_protocol_error(c, k, &e);
    }
    if (c->hhead) /* read on the loop thread, its only writer */
        run_dirty(c);
}

/* ---- connection lifecycle (loop thread) ---- */

static void on_connect(agx_sio_conn *conn, void *ud)
{
    (void)conn;
    agx_client *c = ud;
    agx_client_lock(c);
    if (c->state == CS_CONNECTING)
        c->state = CS_CONNECTED;
    pthread_cond_broadcast(&c->state_cv);
    agx_client_unlock(c);
}

static void on_drain(agx_sio_conn *conn, void *ud)
{
    (void)conn;
    run_dirty(ud);
}

static void on_close(agx_sio_conn *conn, const agx_error *why, void *ud)
{
    (void)conn;
    agx_client *c = ud;
    agx_error e;
    agx_client_lock(c);
    bool closing = c->closing;
    if (closing) {
        agx_error_set(&e, AGX_ERR_CANCELLED, "the client was closed");
    } else {
        agx_error_copy(&e, why);
        if (e.code == AGX_OK)
            agx_error_set(&e, AGX_ERR_UNAVAILABLE, "the connection closed");
        if (c->state == CS_CONNECTED) {
            /* A call in flight on a lost connection fails as UNAVAILABLE, whatever the cause. */
            e.code = AGX_ERR_UNAVAILABLE;
            agx_error_prefix(&e, "lost the connection to %s", c->url);
        } else {
            agx_error_prefix(&e, "cannot connect to %s", c->url);
        }
        e.retriable = 1;
    }
    agx_error_copy(&c->dead_why, &e);
    c->state = CS_DEAD;
    pthread_cond_broadcast(&c->state_cv);
    agx_client_unlock(c);
    drop_dirty(c);
    end_all(c, &e);
}

static void handle_closed(uv_handle_t *h) { (void)h; }

static void on_wake(uv_async_t *a)
{
    agx_client *c = a->data;
    agx_client_lock(c);
    bool closing = c->closing;
    agx_client_unlock(c);
    if (!closing) {
        run_dirty(c);
        return;
    }
    drop_dirty(c);
    agx_error e;
    agx_error_set(&e, AGX_ERR_CANCELLED, "the client was closed");
    end_all(c, &e);
    while (c->thead)
        timer_unlink(c, c->thead);
    agx_sio_client_close(c->sio);
    uv_close((uv_handle_t *)&c->wake, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void *loop_main(void *arg)
{
    agx_client *c = arg;
    pthread_setname_np(pthread_self(), "agx-client"); /* visible in top/perf/gdb */
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- connect / free ---- */

static int add_headers(agx_sio_header *h, size_t *n, const agx_kv *kv, agx_error *err)
{
    for (size_t i = 0; kv && i < agx_kv_count(kv); i++) {
        if (*n >= MAX_HEADERS)
            return agx_error_set(err, AGX_ERR_LIMIT, "at most %d extra headers", MAX_HEADERS);
        h[*n].name = agx_kv_key_at(kv, i);
        h[*n].value = agx_kv_value_at(kv, i);
        (*n)++;
    }
    return 0;
}

static void client_destroy(agx_client *c)
{
    pthread_mutex_lock(&c->mu);
    agx_call *k = c->freelist;
    c->freelist = NULL;
    pthread_mutex_unlock(&c->mu);
    while (k) {
        agx_call *n = k->dnext;
        pthread_cond_destroy(&k->cv);
        agx_buf_free(&k->payload);
        free(k);
        k = n;
    }
    free(c->buckets);
    agx_buf_free(&c->scratch);
    free(c->url);
    pthread_cond_destroy(&c->state_cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Stops the loop thread after a connect that never produced a usable client. */
static void shutdown_loop(agx_client *c)
{
    agx_client_lock(c);
    c->closing = true;
    agx_client_unlock(c);
    uv_async_send(&c->wake);
    pthread_join(c->thread, NULL);
    agx_sio_client_free(c->sio);
    uv_loop_close(&c->loop);
    client_destroy(c);
}

static int client_init(agx_client *c, const char *url, const agx_client_options *o,
                       agx_error *err)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    /* Adaptive: the loop thread holds the lock only briefly, and a host thread woken by a reply
     * would otherwise often sleep again on the lock it still holds. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&c->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_cond_init(&c->state_cv, &ca);
    pthread_condattr_destroy(&ca);
    c->next_id = 1;
    c->call_timeout_ms = o->call_timeout_ms;
    c->window = o->stream_window ? o->stream_window : DEFAULT_WINDOW;
    if (c->window > MAX_WINDOW)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "stream_window %u is over %u",
                             o->stream_window, MAX_WINDOW);
    c->limits = agx_codec_limits_default();
    if (o->max_payload)
        c->limits.max_bytes = o->max_payload;
    if (!(c->url = strdup(url)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = uv_loop_init(&c->loop);
    if (rc)
        return agx_error_set(err, AGX_ERR_IO, "uv_loop_init: %s", uv_strerror(rc));
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    uv_timer_init(&c->loop, &c->timer);
    c->timer.data = c;
    return 0;
}

/* Closes the loop's own handles and runs it until they (and what the transport left) close. */
static void loop_discard(agx_client *c)
{
    uv_close((uv_handle_t *)&c->wake, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
}

static int start_transport(agx_client *c, const char *url, const agx_client_options *o,
                           const agx_kv *extra_headers, agx_error *err)
{
    agx_sio_header hdrs[MAX_HEADERS];
    size_t nh = 0;
    int rc = add_headers(hdrs, &nh, o->headers, err);
    if (rc == 0)
        rc = add_headers(hdrs, &nh, extra_headers, err);
    if (rc)
        return rc;
    const char *connect_to = o->connect_to ? o->connect_to : getenv("AGENTIX_CONNECT_TO");
    int ct = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT;
    agx_sio_client_config cfg = {
        .url = url,
        .token = o->token,
        .headers = hdrs,
        .nheaders = nh,
        .connect_to = connect_to,
        .connect_timeout_ms = (uint32_t)ct,
        .limits = {.max_payload = o->max_payload},
        .handlers = {.on_connect = on_connect,
                     .on_event = on_event,
                     .on_drain = on_drain,
                     .on_close = on_close,
                     .ud = c},
    };
    return agx_sio_client_connect(&c->loop, &cfg, &c->sio, err);
}

/* Waits for on_connect / on_close; a little longer than the transport's own connect timer,
 * which normally reports first with the precise reason. */
static int wait_connected(agx_client *c, int ct, agx_error *err)
{
    struct timespec ts;
    agx_deadline(ct + 2000, &ts);
    int rc = 0;
    agx_client_lock(c);
    while (c->state == CS_CONNECTING && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->state_cv, &c->mu, &ts);
    if (c->state == CS_CONNECTED)
        rc = 0;
    else if (c->state == CS_DEAD)
        rc = fail_fast_locked(c, err);
    else
        rc = agx_error_set(err, AGX_ERR_TIMEOUT, "cannot connect to %s within %d ms", c->url, ct);
    agx_client_unlock(c);
    return rc;
}

/* Defaults overlaid with the caller's options, reading only the struct_size bytes the caller's
 * build knows about (a host built against an older header passes a shorter struct). */
static void resolve_options(const agx_client_options *in, agx_client_options *out)
{
    agx_client_options_init(out);
    if (!in)
        return;
    size_t n = in->struct_size && in->struct_size < sizeof *in ? in->struct_size : sizeof *in;
    memcpy(out, in, n);
    out->struct_size = sizeof *out;
}

static int connect_impl(const char *url, const agx_client_options *opts, const agx_kv *extra,
                        agx_client **out, agx_error *err)
{
    if (out)
        *out = NULL;
    if (!url || !out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_connect: no URL or out");
    agx_client_options resolved;
    resolve_options(opts, &resolved);
    const agx_client_options *o = &resolved;
    agx_client *c = calloc(1, sizeof *c);
    if (!c)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = client_init(c, url, o, err);
    if (rc) {
        if (c->wake.data)
            loop_discard(c);
        client_destroy(c);
        return rc;
    }
    rc = start_transport(c, url, o, extra, err);
    if (rc) {
        loop_discard(c);
        client_destroy(c);
        return rc;
    }
    rc = pthread_create(&c->thread, NULL, loop_main, c);
    if (rc) {
        agx_sio_client_free(c->sio); /* runs the loop until the transport has closed */
        loop_discard(c);
        client_destroy(c);
        return agx_error_set(err, AGX_ERR_IO, "cannot start the client thread: %s", strerror(rc));
    }
    rc = wait_connected(c, o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                                     : DEFAULT_CONNECT_TIMEOUT, err);
    if (rc) {
        shutdown_loop(c);
        return rc;
    }
    *out = c;
    return 0;
}

void agx_client_options_init(agx_client_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT;
    opts->max_payload = 64u << 20;
    opts->stream_window = DEFAULT_WINDOW;
}

int agx_client_connect(const char *runtime_url, const agx_client_options *opts, agx_client **out,
                       agx_error *err)
{
    return connect_impl(runtime_url, opts, NULL, out, err);
}

int agx_client_connect_sandbox(const agx_sandbox *sb, const agx_client_options *opts,
                               agx_client **out, agx_error *err)
{
    if (out)
        *out = NULL;
    if (!sb || !agx_sandbox_runtime_url(sb))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_client_connect_sandbox: the sandbox has no runtime URL");
    agx_client_options o;
    resolve_options(opts, &o);
    if (!o.token)
        o.token = agx_sandbox_token(sb);
    return connect_impl(agx_sandbox_runtime_url(sb), &o, agx_sandbox_headers_const(sb), out, err);
}

void agx_client_free(agx_client *c)
{
    if (!c)
        return;
    if (pthread_equal(pthread_self(), c->thread)) {
        /* Joining the loop thread from itself would hang; refusing leaks less than hanging. */
        fprintf(stderr, "agentix: agx_client_free called from a client callback; not freed "
                        "(free the client from a host thread)\n");
        return;
    }
    shutdown_loop(c);
}

bool agx_client_is_connected(const agx_client *c)
{
    if (!c)
        return false;
    agx_client *m = (agx_client *)c;
    agx_client_lock(m);
    bool up = m->state == CS_CONNECTED && !m->closing;
    agx_client_unlock(m);
    return up;
}
