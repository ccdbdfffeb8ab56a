/* calls.c — the host-thread side of the RPC client (client.h): a call's opening event is encoded
 * once on the calling thread, handed to the loop thread (client.c) through the dirty FIFO, and
 * the caller then waits on the call's own condition variable. Stream and bidi handles hold up to
 * one window of decoded items; taking items returns credit in batches of half a window, so a
 * slow reader slows the remote producer without one credit event per item. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/expiry.h"
#include "runtime/client/client_impl.h"
#include "core/base/mpraw.h"

#define TARGET_MAX 512
#define FREELIST_MAX 1024
#define RECYCLE_PAYLOAD_MAX (64u << 10)
#define BIDI_INITIAL_CREDIT 64 /* PROTOCOL.md §3 */

/* timeout 0 = the client's default (call_timeout_ms, itself 0 = none); < 0 = none. */
static int resolve_timeout(const agx_client *c, int timeout_ms)
{
    if (timeout_ms != 0)
        return timeout_ms;
    return c->call_timeout_ms > 0 ? c->call_timeout_ms : -1;
}

/* 0 when woken, ETIMEDOUT when the deadline (agx_clock_ms; -1 = none) passed. Lock held. */
static int wait_call(agx_call *k, int64_t deadline)
{
    return agx_wakeup_wait(&k->wake, &k->c->mu, deadline);
}

/* ---- life of a call ---- */

void agx_call_free_inputs(agx_call *k)
{
    for (in_item *it = k->in_head, *next; it; it = next) {
        next = it->next;
        free(it);
    }
    k->in_head = k->in_tail = NULL;
}

void agx_call_unref_locked(agx_call *k)
{
    if (--k->refs > 0)
        return;
    agx_client *c = k->c;
    agx_value_free(k->result);
    k->result = NULL;
    for (uint32_t i = 0; i < k->rcount; i++)
        agx_value_free(k->ring[(k->rhead + i) % k->window]);
    free(k->ring);
    k->ring = NULL;
    agx_call_free_inputs(k);
    c->refs--; /* the call's hold on its client; agx_client_unlock frees the client at zero */
    if (c->nfree < FREELIST_MAX && k->payload.cap <= RECYCLE_PAYLOAD_MAX) {
        k->dnext = c->freelist;
        c->freelist = k;
        c->nfree++;
        return;
    }
    agx_buf_free(&k->payload);
    free(k);
}

/* ---- callbacks, through the engine ---- */

#define CALL_OF(p) ((agx_call *)((char *)(p) - offsetof(agx_call, comp)))

void agx_call_consumed_locked(agx_call *k, uint32_t n)
{
    uint32_t half = k->window > 1 ? k->window / 2 : 1;
    k->consumed += n;
    if (k->consumed >= half && !k->done) {
        k->credit_n += k->consumed;
        k->consumed = 0;
        agx_client_mark_locked(k->c, k, PEND_CREDIT);
    }
}

/* Runs whatever callbacks are due, in order: send-ready, items, then the end (exactly once). */
static void call_run(agx_completion *p)
{
    agx_call *k = CALL_OF(p);
    agx_client *c = k->c;
    for (;;) {
        agx_client_lock(c);
        if (k->delivered_end) {
            agx_client_unlock(c);
            return;
        }
        if (k->ucb) {
            if (!k->done) {
                agx_client_unlock(c);
                return;
            }
            k->delivered_end = true;
            agx_value *res = k->result;
            k->result = NULL;
            agx_client_unlock(c);
            k->ucb(k->user, k->status, res, k->status ? &k->err : NULL);
            return;
        }
        if (k->send_ready_due) {
            k->send_ready_due = false;
            agx_client_unlock(c);
            k->scb(k->user, AGX_CALL_SEND_READY, NULL, NULL);
            continue;
        }
        if (k->rcount && !k->cancelling) {
            agx_value *v = k->ring[k->rhead];
            k->ring[k->rhead] = NULL;
            k->rhead = (k->rhead + 1) % k->window;
            k->rcount--;
            agx_call_consumed_locked(k, 1); /* credit as the callback returns, in batches */
            agx_client_unlock(c);
            k->scb(k->user, AGX_CALL_ITEM, v, NULL);
            continue;
        }
        if (!k->done) {
            agx_client_unlock(c);
            return;
        }
        k->delivered_end = true;
        int status = k->status;
        agx_client_unlock(c);
        k->scb(k->user, status ? AGX_CALL_ERROR : AGX_CALL_END, NULL, status ? &k->err : NULL);
        return;
    }
}

static void call_release(agx_completion *p)
{
    agx_call *k = CALL_OF(p);
    agx_client *c = k->c;
    agx_client_lock(c);
    agx_call_unref_locked(k);
    agx_client_unlock(c);
}

void agx_call_deliver(agx_call *k)
{
    agx_client *c = k->c;
    agx_client_lock(c);
    k->refs++; /* the pending completion's */
    agx_client_unlock(c);
    if (!agx_engine_deliver(c->e, &k->comp)) {
        agx_client_lock(c);
        agx_call_unref_locked(k);
        agx_client_unlock(c);
    }
}

void agx_call_end_locked(agx_call *k, int status, const agx_error *err, agx_value *result)
{
    k->done = true;
    k->status = status;
    if (status && err)
        agx_error_copy(&k->err, err);
    else
        agx_client_err_reset(&k->err);
    k->result = result; /* the loop thread wakes waiters once the lock is dropped */
}

/* A fresh call (recycled when possible) holding the creator's reference and a new id. */
static agx_call *call_alloc(agx_client *c, agx_wire_kind shape)
{
    agx_client_lock(c);
    agx_call *k = c->freelist;
    if (k) {
        c->freelist = k->dnext;
        c->nfree--;
    }
    uint64_t id = c->next_id++;
    c->refs++; /* the call holds its client */
    agx_client_unlock(c);
    if (k) {
        agx_buf keep = k->payload;
        memset(k, 0, sizeof *k);
        k->payload = keep;
    } else if (!(k = calloc(1, sizeof *k))) {
        agx_client_lock(c);
        c->refs--;
        agx_client_unlock(c);
        return NULL;
    }
    k->c = c;
    k->id = id;
    k->shape = shape;
    k->refs = 1;
    k->comp.run = call_run;
    k->comp.release = call_release;
    char tmp[CALL_ID_MAX];
    int n = 0;
    do {
        int d = (int)(id % 36);
        tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
        id /= 36;
    } while (id);
    for (int i = 0; i < n; i++)
        k->idstr[i] = tmp[n - 1 - i];
    k->idlen = (uint8_t)n;
    return k;
}

static void call_drop(agx_call *k)
{
    agx_client *c = k->c;
    agx_client_lock(c);
    agx_call_unref_locked(k);
    agx_client_unlock(c);
}

/* {call_id, target, shape, args, kwargs[, window]} — or {call_id, target} for describe. */
static int encode_start(agx_call *k, const char *target, const agx_value *args,
                        const agx_value *kwargs, agx_error *err)
{
    agx_buf *b = &k->payload;
    b->len = 0;
    bool full = k->shape != AGX_KIND_DESCRIBE;
    bool win = k->shape == AGX_KIND_STREAM || k->shape == AGX_KIND_BIDI;
    int rc = agx_mp_put_map(b, full ? (win ? 6 : 5) : 2) || agx_mp_put_lit(b, AGX_F_CALL_ID) ||
             agx_mp_put_str(b, k->idstr, k->idlen) || agx_mp_put_lit(b, AGX_F_TARGET) ||
             agx_mp_put_cstr(b, target);
    if (rc == 0 && full) {
        const char *sn = agx_shape_name((agx_shape)k->shape); /* describe has none */
        rc = agx_mp_put_lit(b, AGX_F_SHAPE) || agx_mp_put_cstr(b, sn) ||
             agx_mp_put_lit(b, AGX_F_ARGS);
        if (rc == 0)
            rc = args ? agx_value_pack_into(args, b, err) : agx_mp_put_array(b, 0);
        if (rc == 0)
            rc = agx_mp_put_lit(b, AGX_F_KWARGS);
        if (rc == 0)
            rc = kwargs ? agx_value_pack_into(kwargs, b, err) : agx_mp_put_map(b, 0);
        if (rc == 0 && win)
            rc = agx_mp_put_lit(b, AGX_F_WINDOW) || agx_mp_put_uint(b, k->window);
    }
    if (rc > 0 || rc == AGX_ERR_NO_MEMORY)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory encoding a call");
    if (rc == 0 && b->len > k->c->limits.max_bytes)
        return agx_error_set(err, AGX_ERR_LIMIT,
                             "the call's arguments encode to %zu bytes, over max_payload (%zu)",
                             b->len, k->c->limits.max_bytes);
    return rc;
}

static int check_request(agx_client *c, const char *target, const agx_value *args,
                         const agx_value *kwargs, agx_error *err)
{
    if (!c)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "no client");
    if (!target || !strstr(target, AGX_TARGET_SEP) || strlen(target) >= TARGET_MAX)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "target '%.80s' must be \"module::function\" (under %d bytes)",
                             target ? target : "(null)", TARGET_MAX);
    if (args && agx_value_type_of(args) != AGX_VALUE_ARRAY)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "args must be an array, not %s",
                             agx_value_type_name(agx_value_type_of(args)));
    if (kwargs && agx_value_type_of(kwargs) != AGX_VALUE_MAP)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "kwargs must be a map, not %s",
                             agx_value_type_name(agx_value_type_of(kwargs)));
    return 0;
}

/* Creates, encodes and submits a call; on success *out holds the creator's reference. */
static int call_begin(agx_client *c, agx_wire_kind shape, const char *target, const agx_value *args,
                      const agx_value *kwargs, agx_call **out, agx_error *err)
{
    *out = NULL;
    int rc = check_request(c, target, args, kwargs, err);
    if (rc)
        return rc;
    agx_call *k = call_alloc(c, shape);
    if (!k)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (shape == AGX_KIND_STREAM || shape == AGX_KIND_BIDI) {
        k->window = c->window;
        k->in_credit = BIDI_INITIAL_CREDIT;
        if (!(k->ring = calloc(k->window, sizeof *k->ring))) {
            call_drop(k);
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        }
    }
    rc = encode_start(k, target, args, kwargs, err);
    if (rc) {
        call_drop(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* On failure drops the caller's reference; on success keeps it or (keep_ref false) hands it over. */
static int submit(agx_call *k, bool keep_ref, agx_error *err)
{
    int rc = agx_client_submit(k->c, k, keep_ref, err);
    if (rc)
        call_drop(k);
    return rc;
}

/* Waits for a unary/describe call to end; on timeout cancels it. Drops the caller's reference. */
static int wait_result(agx_call *k, int timeout_ms, agx_value **result, agx_error *err)
{
    agx_client *c = k->c;
    int64_t deadline = agx_deadline_ms(resolve_timeout(c, timeout_ms));
    int rc = 0;
    agx_client_lock(c);
    while (!k->done && rc != ETIMEDOUT)
        rc = wait_call(k, deadline);
    if (k->done) {
        rc = k->status;
        if (rc == 0) {
            *result = k->result;
            k->result = NULL;
        } else {
            agx_error_copy(err, &k->err);
        }
    } else {
        k->cancelling = k->cancel_timeout = true;
        agx_client_mark_locked(c, k, PEND_CANCEL);
        rc = agx_error_set(err, AGX_ERR_TIMEOUT, "call %s timed out after %d ms; it was cancelled",
                           k->idstr, resolve_timeout(c, timeout_ms));
        if (err)
            snprintf(err->remote_type, sizeof err->remote_type, AGX_RPC_TIMEOUT);
        if (err)
            err->retriable = 1;
    }
    agx_call_unref_locked(k);
    agx_client_unlock(c);
    return rc;
}

/* ---- unary and describe ---- */

/* The blocking unary shapes (a call and a describe) differ only in kind and in the name their
 * errors carry. */
static int call_blocking(agx_client *c, const char *what, agx_wire_kind kind, const char *target,
                         const agx_value *args, const agx_value *kwargs, int timeout_ms,
                         agx_value **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s: result is NULL", what);
    *out = NULL;
    agx_call *k;
    int rc = agx_client_refuse_blocking(what, err);
    if (rc)
        return rc;
    rc = call_begin(c, kind, target, args, kwargs, &k, err);
    if (rc == 0)
        rc = submit(k, true, err);
    return rc ? rc : wait_result(k, timeout_ms, out, err);
}

int agx_client_call(agx_client *c, const char *target, const agx_value *args,
                    const agx_value *kwargs, int timeout_ms, agx_value **result, agx_error *err)
{
    return call_blocking(c, "agx_client_call", AGX_KIND_UNARY, target, args, kwargs, timeout_ms,
                         result, err);
}

int agx_client_describe(agx_client *c, const char *target, int timeout_ms, agx_value **out,
                        agx_error *err)
{
    return call_blocking(c, "agx_client_describe", AGX_KIND_DESCRIBE, target, NULL, NULL,
                         timeout_ms, out, err);
}

/* ---- expiry ---- */

/* {call_id, n} */
static int encode_expiry(agx_call *k, int64_t expiry_ms, agx_error *err)
{
    agx_buf *b = &k->payload;
    b->len = 0;
    if (agx_mp_put_map(b, 2) || agx_mp_put_lit(b, AGX_F_CALL_ID) ||
        agx_mp_put_str(b, k->idstr, k->idlen) || agx_mp_put_lit(b, AGX_F_N) ||
        agx_mp_put_uint(b, (uint64_t)expiry_ms))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory encoding an expiry");
    return 0;
}

int agx_client_extend_expiry(agx_client *c, int64_t expiry_ms, int timeout_ms, int64_t *left_ms,
                             agx_error *err)
{
    if (left_ms)
        *left_ms = 0;
    if (!c)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_extend_expiry: no client");
    if (expiry_ms < AGX_EXPIRY_MIN_MS || expiry_ms > AGX_EXPIRY_MAX_MS)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_extend_expiry: expiry "
                             "%lld ms is outside %lld..%lld", (long long)expiry_ms,
                             (long long)AGX_EXPIRY_MIN_MS, (long long)AGX_EXPIRY_MAX_MS);
    int rc = agx_client_refuse_blocking("agx_client_extend_expiry", err);
    if (rc)
        return rc;
    agx_call *k = call_alloc(c, AGX_KIND_EXPIRY);
    if (!k)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if ((rc = encode_expiry(k, expiry_ms, err)) != 0) {
        call_drop(k);
        return rc;
    }
    agx_value *left = NULL;
    rc = submit(k, true, err);
    if (rc == 0)
        rc = wait_result(k, timeout_ms, &left, err);
    if (rc == 0 && left_ms)
        *left_ms = agx_value_get_int64(left);
    agx_value_free(left);
    return rc;
}

int agx_client_call_async(agx_client *c, const char *target, const agx_value *args,
                          const agx_value *kwargs, int timeout_ms, agx_unary_cb cb, void *user,
                          agx_error *err)
{
    if (!cb)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_call_async: no callback");
    agx_call *k;
    int rc = call_begin(c, AGX_KIND_UNARY, target, args, kwargs, &k, err);
    if (rc)
        return rc;
    k->ucb = cb;
    k->user = user;
    k->timeout_ms = resolve_timeout(c, timeout_ms);
    return submit(k, false, err); /* the map's reference keeps it until the callback has run */
}

/* ---- stream and bidi ---- */

static int start_streaming(agx_client *c, agx_wire_kind shape, const char *target,
                           const agx_value *args, const agx_value *kwargs, agx_stream_cb cb,
                           void *user, agx_call **out, agx_error *err)
{
    agx_call *k;
    int rc = call_begin(c, shape, target, args, kwargs, &k, err);
    if (rc)
        return rc;
    k->scb = cb;
    k->user = user;
    rc = submit(k, out != NULL, err);
    if (rc == 0 && out)
        *out = k;
    return rc;
}

int agx_client_stream(agx_client *c, const char *target, const agx_value *args,
                      const agx_value *kwargs, agx_call **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_stream: out is NULL");
    *out = NULL;
    return start_streaming(c, AGX_KIND_STREAM, target, args, kwargs, NULL, NULL, out, err);
}

int agx_client_bidi(agx_client *c, const char *target, const agx_value *args,
                    const agx_value *kwargs, agx_call **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_bidi: out is NULL");
    *out = NULL;
    return start_streaming(c, AGX_KIND_BIDI, target, args, kwargs, NULL, NULL, out, err);
}

int agx_client_stream_async(agx_client *c, const char *target, const agx_value *args,
                            const agx_value *kwargs, agx_stream_cb cb, void *user, agx_call **out,
                            agx_error *err)
{
    if (out)
        *out = NULL;
    if (!cb)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_stream_async: no callback");
    return start_streaming(c, AGX_KIND_STREAM, target, args, kwargs, cb, user, out, err);
}

int agx_client_bidi_async(agx_client *c, const char *target, const agx_value *args,
                          const agx_value *kwargs, agx_stream_cb cb, void *user, agx_call **out,
                          agx_error *err)
{
    if (!out || !cb)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_client_bidi_async: no callback or out");
    *out = NULL;
    return start_streaming(c, AGX_KIND_BIDI, target, args, kwargs, cb, user, out, err);
}

static int cancelled_error(agx_call *k, agx_error *err)
{
    int rc = agx_error_set(err, AGX_ERR_CANCELLED, "call %s was cancelled", k->idstr);
    if (err)
        snprintf(err->remote_type, sizeof err->remote_type, AGX_RPC_CANCELLED);
    return rc;
}

int agx_call_next(agx_call *k, int timeout_ms, agx_value **item, agx_error *err)
{
    if (!item)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_call_next: item is NULL");
    *item = NULL;
    if (!k || k->scb || (k->shape != AGX_KIND_STREAM && k->shape != AGX_KIND_BIDI))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_call_next needs a stream or bidi call without a callback");
    agx_client *c = k->c;
    if (agx_client_refuse_blocking("agx_call_next", err))
        return AGX_ERR_INVALID_ARGUMENT;
    int64_t deadline = agx_deadline_ms(resolve_timeout(c, timeout_ms));
    int rc = 0;
    agx_client_lock(c);
    for (;;) {
        if (k->cancelling) {
            rc = cancelled_error(k, err);
            break;
        }
        if (k->rcount) {
            *item = k->ring[k->rhead];
            k->ring[k->rhead] = NULL;
            k->rhead = (k->rhead + 1) % k->window;
            k->rcount--;
            agx_call_consumed_locked(k, 1);
            rc = 1;
            break;
        }
        if (k->done) {
            rc = k->status;
            if (rc)
                agx_error_copy(err, &k->err);
            break;
        }
        if (rc == ETIMEDOUT) {
            rc = agx_error_set(err, AGX_ERR_TIMEOUT, "no item from call %s within %d ms",
                               k->idstr, resolve_timeout(c, timeout_ms));
            break;
        }
        rc = wait_call(k, deadline);
    }
    agx_client_unlock(c);
    return rc;
}

/* One bidi:in payload {call_id, item} in a single allocation (in_item header + bytes). */
static int encode_input(agx_call *k, const agx_value *item, in_item **out, agx_error *err)
{
    agx_buf b = {0};
    int rc = agx_buf_reserve(&b, sizeof(in_item) + 64);
    if (rc == 0) {
        b.len = sizeof(in_item);
        rc = agx_mp_put_map(&b, 2) || agx_mp_put_lit(&b, AGX_F_CALL_ID) ||
             agx_mp_put_str(&b, k->idstr, k->idlen) || agx_mp_put_lit(&b, AGX_F_ITEM)
                 ? AGX_ERR_NO_MEMORY
                 : 0;
    }
    if (rc == 0)
        rc = agx_value_pack_into(item, &b, err);
    if (rc) {
        agx_buf_free(&b);
        return rc == AGX_ERR_NO_MEMORY ? agx_error_set(err, rc, "out of memory encoding an item")
                                       : rc;
    }
    if (b.len - sizeof(in_item) > k->c->limits.max_bytes) {
        size_t n = b.len - sizeof(in_item);
        agx_buf_free(&b);
        return agx_error_set(err, AGX_ERR_LIMIT,
                             "the item encodes to %zu bytes, over max_payload (%zu)", n,
                             k->c->limits.max_bytes);
    }
    in_item *it = (in_item *)b.data;
    it->next = NULL;
    it->len = b.len - sizeof(in_item);
    *out = it;
    return 0;
}

/* Why input cannot go in now (lock): 0 when the call takes input. */
static int input_closed_locked(agx_call *k, agx_error *err)
{
    if (k->send_closed)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "call %s: input was already closed",
                             k->idstr);
    if (k->cancelling)
        return cancelled_error(k, err);
    if (k->done) {
        if (k->status) {
            agx_error_copy(err, &k->err);
            return k->status;
        }
        return agx_error_set(err, AGX_ERR_CONFLICT,
                             "call %s has ended; its function reads no more input", k->idstr);
    }
    return 0;
}

/* Hands an encoded item to the loop (lock; input credit available). */
static void queue_input_locked(agx_call *k, in_item *it)
{
    k->in_credit--;
    if (k->in_tail)
        k->in_tail->next = it;
    else
        k->in_head = it;
    k->in_tail = it;
    agx_client_mark_locked(k->c, k, PEND_IN);
}

int agx_call_send(agx_call *k, const agx_value *item, int timeout_ms, agx_error *err)
{
    if (!k || k->shape != AGX_KIND_BIDI || !item)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_call_send needs a bidi call and an item");
    if (agx_client_refuse_blocking("agx_call_send", err))
        return AGX_ERR_INVALID_ARGUMENT;
    in_item *it = NULL;
    int rc = encode_input(k, item, &it, err);
    if (rc)
        return rc;
    agx_client *c = k->c;
    int64_t deadline = agx_deadline_ms(resolve_timeout(c, timeout_ms));
    int w = 0;
    agx_client_lock(c);
    while (!k->send_closed && !k->done && !k->cancelling && !k->in_credit && w != ETIMEDOUT)
        w = wait_call(k, deadline);
    if ((rc = input_closed_locked(k, err)) == 0) {
        if (!k->in_credit) {
            rc = agx_error_set(err, AGX_ERR_TIMEOUT,
                               "call %s: the remote function did not take input within %d ms",
                               k->idstr, resolve_timeout(c, timeout_ms));
        } else {
            queue_input_locked(k, it);
            it = NULL;
        }
    }
    agx_client_unlock(c);
    free(it);
    return rc;
}

int agx_call_send_nowait(agx_call *k, const agx_value *item, agx_error *err)
{
    if (!k || k->shape != AGX_KIND_BIDI || !item)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_call_send_nowait needs a bidi call and an item");
    in_item *it = NULL;
    int rc = encode_input(k, item, &it, err);
    if (rc)
        return rc;
    agx_client *c = k->c;
    agx_client_lock(c);
    if ((rc = input_closed_locked(k, err)) == 0) {
        if (!k->in_credit) {
            k->send_ready_wanted = true;
            rc = agx_error_set(err, AGX_ERR_LIMIT,
                               "call %s: no input credit (the remote function has not consumed "
                               "earlier items); wait for AGX_CALL_SEND_READY",
                               k->idstr);
        } else {
            queue_input_locked(k, it);
            it = NULL;
        }
    }
    agx_client_unlock(c);
    free(it);
    return rc;
}

int agx_call_close_send(agx_call *k, agx_error *err)
{
    if (!k || k->shape != AGX_KIND_BIDI)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_call_close_send needs a bidi call");
    agx_client *c = k->c;
    agx_client_lock(c);
    if (!k->send_closed) {
        k->send_closed = true;
        if (!k->done && !k->cancelling)
            agx_client_mark_locked(c, k, PEND_END_IN);
        agx_wakeup_all(&k->wake);
    }
    agx_client_unlock(c);
    return 0;
}

/* Lock held. */
static void cancel_locked(agx_call *k)
{
    if (k->done || k->cancelling)
        return;
    k->cancelling = true;
    agx_client_mark_locked(k->c, k, PEND_CANCEL);
    agx_wakeup_all(&k->wake);
}

int agx_call_cancel(agx_call *k)
{
    if (!k)
        return AGX_ERR_INVALID_ARGUMENT;
    agx_client_lock(k->c);
    cancel_locked(k);
    agx_client_unlock(k->c);
    return 0;
}

void agx_call_free(agx_call *k)
{
    if (!k)
        return;
    agx_client *c = k->c;
    agx_client_lock(c);
    cancel_locked(k);
    agx_call_unref_locked(k);
    agx_client_unlock(c);
}
