/* calls.c — the routing at the heart of the server: a host's RPC events become worker frames and
 * the worker's frames become the host's events (docs/PROTOCOL.md §2–§3).
 *
 * A call is known to its connection by the host's call_id and to the worker by a server-assigned
 * id that is never reused. Every call ends with exactly one terminal event: the first of the
 * worker's terminal frame, a cancel, a protocol violation, or the worker's death. A call the
 * server ended while the worker still runs it (cancelled, its host gone) is detached: frames for
 * it are dropped, and the worker must end it within the cancel grace or be recycled.
 *
 * Budgets (docs/PROTOCOL.md §3): bytes queued to all hosts together, bytes the worker holds for
 * calls in flight, calls per worker (its threads). New work that would pass one is refused with
 * LimitExceeded; nothing grows past them. */
#include "runtime/server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/wire/rpc_error.h"

#define MSG_MAX 512

/* ---- lookup and lifetime ---- */

static srv_call *find_cid(const srv_conn *c, const char *cid, size_t len)
{
    uint64_t h = srv_hash_bytes(cid, len);
    for (srv_map_node *n = srv_map_chain(&c->calls, h); n; n = n->next) {
        srv_call *call = srv_container_of(n, srv_call, by_cid);
        if (n->hash == h && call->cid_len == len && memcmp(call->cid, cid, len) == 0)
            return call;
    }
    return NULL;
}

static srv_call *find_id(const srv_server *s, uint64_t id)
{
    uint64_t h = srv_hash_u64(id);
    for (srv_map_node *n = srv_map_chain(&s->calls, h); n; n = n->next) {
        srv_call *call = srv_container_of(n, srv_call, by_id);
        if (call->id == id)
            return call;
    }
    return NULL;
}

static srv_call *call_new(srv_conn *conn, srv_wproc *wp, agx_wire_kind kind, const srv_req *r)
{
    srv_server *s = conn->srv;
    srv_call *call = calloc(1, sizeof *call + r->cid_len + 1);
    if (!call)
        return NULL;
    call->conn = conn;
    call->wp = wp;
    call->id = ++s->next_id;
    call->kind = kind;
    call->in_credit = AGX_FRAME_IN_WINDOW;
    call->cid_len = r->cid_len;
    memcpy(call->cid, r->cid, r->cid_len);
    call->by_id.hash = srv_hash_u64(call->id);
    call->by_cid.hash = srv_hash_bytes(r->cid, r->cid_len);
    if (srv_map_insert(&s->calls, &call->by_id) != 0) {
        free(call);
        return NULL;
    }
    if (srv_map_insert(&conn->calls, &call->by_cid) != 0) {
        srv_map_remove(&s->calls, &call->by_id);
        free(call);
        return NULL;
    }
    call->wp_next = wp->calls;
    if (wp->calls)
        wp->calls->wp_prev = call;
    wp->calls = call;
    return call;
}

static void hold(srv_call *call, size_t n)
{
    call->held += n;
    call->wp->held += n;
}

/* Off its connection: the host has had (or will never need) the terminal event. */
static void call_detach(srv_call *call)
{
    if (!call->conn)
        return;
    srv_map_remove(&call->conn->calls, &call->by_cid);
    call->conn = NULL;
}

/* ---- the worker's threads: at most worker_threads calls are sent, the rest wait here ---- */

static void dequeue(srv_call *call)
{
    srv_wproc *wp = call->wp;
    srv_call *prev = NULL;
    for (srv_call *c = wp->queue_head; c; prev = c, c = c->q_next) {
        if (c != call)
            continue;
        if (prev)
            prev->q_next = c->q_next;
        else
            wp->queue_head = c->q_next;
        if (wp->queue_tail == c)
            wp->queue_tail = prev;
        wp->nqueued--;
        break;
    }
    call->queued = false;
    agx_buf_free(&call->qframes);
    memset(&call->qframes, 0, sizeof call->qframes);
    if (!prev)
        srv_worker_queue_arm(wp);
}

/* Sends waiting calls (their frames, in order) while the worker has threads free. */
static void dispatch(srv_wproc *wp)
{
    srv_server *s = wp->srv;
    while (wp->queue_head && wp->ncalls < s->cfg.worker_threads) {
        agx_buf *b = srv_worker_buf(wp);
        if (!b)
            return;
        srv_call *call = wp->queue_head;
        if (agx_buf_append(b, call->qframes.data, call->qframes.len) != 0) {
            fprintf(stderr, "agentix-server: out of memory sending a waiting call\n");
            return;
        }
        dequeue(call);
        call->sent = true;
        wp->ncalls++;
    }
}

static void call_free(srv_call *call)
{
    srv_wproc *wp = call->wp;
    srv_map_remove(&wp->srv->calls, &call->by_id);
    call_detach(call);
    if (call->wp_prev)
        call->wp_prev->wp_next = call->wp_next;
    else
        wp->calls = call->wp_next;
    if (call->wp_next)
        call->wp_next->wp_prev = call->wp_prev;
    bool sent = call->sent;
    if (call->queued)
        dequeue(call);
    if (sent)
        wp->ncalls--;
    wp->held -= call->held;
    free(call->in_sizes);
    free(call);
    if (sent)
        dispatch(wp); /* a thread is free */
}

void srv_call_drop(srv_call *call)
{
    if (!call->conn)
        srv_worker_unwatch(call->wp, call);
    call_free(call);
}

/* ---- frames to the worker ---- */

/* Where a call's frames go: the worker's batch, or the call's own buffer while it waits. */
static agx_buf *call_buf(srv_call *call)
{
    return call->queued ? &call->qframes : srv_worker_buf(call->wp);
}

static void send_id_frame(srv_call *call, agx_frame_type type)
{
    agx_buf *b = call_buf(call);
    if (b && agx_frame_write_id(b, type, call->id) != 0)
        fprintf(stderr, "agentix-server: out of memory queueing a frame for the worker\n");
}

/* A frame over AGENTIX_MAX_PAYLOAD would make the worker drop its whole input stream (and with
 * it every call): the one call that carries it is refused instead. A host message under the limit
 * can still make a slightly larger frame (the frame's own keys), hence the check here. */
static int frame_fits(const srv_server *s, agx_buf *b, size_t mark)
{
    if (b->len - mark - AGX_FRAME_HEADER_SIZE <= s->cfg.max_payload)
        return 0;
    b->len = mark;
    return AGX_ERR_LIMIT;
}

/* ---- ending calls ---- */

/* A terminal event that cannot be queued breaks the one-terminal promise: the host would wait
 * forever, so its connection is closed instead (the host's client fails every call on it). */
static void terminal_sent(srv_conn *conn, int rc)
{
    if (rc && rc != AGX_ERR_UNAVAILABLE)
        agx_sio_conn_close(conn->sio);
}

/* Hands a call the host no longer waits for to the worker's supervision: it gets a cancel, and
 * must end within the grace. A worker that no longer takes frames frees it at once. */
static void call_cancel_in_worker(srv_call *call)
{
    call_detach(call);
    if (call->queued || !srv_worker_buf(call->wp)) {
        call_free(call); /* never reached the worker, or the worker takes nothing more */
        return;
    }
    send_id_frame(call, AGX_FRAME_CANCEL);
    srv_worker_watch(call->wp, call);
}

/* Ends a call with an error the server decided; the worker is told to stop it when tell_worker
 * (else the worker has ended it or is gone). */
static void call_fail(srv_call *call, const char *type, const char *message, bool cancelled,
                      bool tell_worker)
{
    srv_conn *conn = call->conn;
    int rc = srv_emit_error(conn->srv, conn->sio, agx_wire_error_event(call->kind), call->cid,
                            call->cid_len, type, message, cancelled);
    if (tell_worker)
        call_cancel_in_worker(call);
    else
        call_free(call);
    terminal_sent(conn, rc);
}

void srv_call_abort(srv_call *call, const char *type, const char *message, bool cancelled)
{
    if (call->conn)
        call_fail(call, type, message, cancelled, true);
}

void srv_queue_expire(srv_wproc *wp)
{
    srv_server *s = wp->srv;
    uint64_t now = uv_now(s->loop);
    while (wp->queue_head && wp->queue_head->queued_at + s->cfg.queue_wait_ms <= now) {
        srv_call *call = wp->queue_head;
        char msg[MSG_MAX];
        snprintf(msg, sizeof msg, "agentix-worker is saturated: all %u of its threads ran calls "
                 "for the %u ms this call waited (%zu calls wait); retry when calls finish, or "
                 "cancel calls that do not end", s->cfg.worker_threads, s->cfg.queue_wait_ms,
                 wp->nqueued);
        if (!s->saturated_logged || now - s->saturated_logged >= 10000) {
            fprintf(stderr, "agentix-server: %s\n", msg);
            s->saturated_logged = now;
        }
        if (call->conn)
            call_fail(call, AGX_RPC_LIMIT, msg, false, false);
        else
            call_free(call);
    }
    srv_worker_queue_arm(wp);
}

void srv_fail_worker_calls(srv_server *s, srv_wproc *wp, const char *message)
{
    (void)s;
    while (wp->calls) {
        srv_call *call = wp->calls;
        if (call->conn)
            call_fail(call, AGX_RPC_WORKER_EXITED, message, false, false);
        else
            srv_call_drop(call);
    }
}

void srv_cancel_all(srv_server *s, const char *message)
{
    for (srv_conn *conn = s->conns; conn; conn = conn->next)
        for (size_t i = 0; i < conn->calls.nb; i++)
            while (conn->calls.b[i])
                call_fail(srv_container_of(conn->calls.b[i], srv_call, by_cid),
                          AGX_RPC_CANCELLED, message, true, true);
}

/* An answer the server cannot address to a call it knows (call_id "" when unreadable). */
static void reply_error(srv_conn *conn, agx_wire_kind kind, const srv_req *r, const char *type,
                        const char *message)
{
    const char *cid = r->cid_ok ? r->cid : "";
    size_t len = r->cid_ok ? r->cid_len : 0;
    srv_emit_error(conn->srv, conn->sio, agx_wire_error_event(kind), cid, len, type, message, false);
}

/* ---- budgets ---- */

/* Bytes queued to all hosts. Recounted at most once per millisecond of loop time (a walk over the
 * connections) and raised by what was queued since, so it never undercounts by much. */
static size_t queued_total(srv_server *s)
{
    uint64_t now = uv_now(s->loop);
    if (now != s->queued_stamp) {
        size_t t = 0;
        for (srv_conn *c = s->conns; c; c = c->next)
            t += agx_sio_conn_queued_bytes(c->sio);
        s->queued_total = t;
        s->queued_stamp = now;
    }
    return s->queued_total;
}

/* Whether n more bytes for conn fit what the server holds for hosts: a connection with nothing
 * queued always gets one message through (a reading host is not starved by slow ones). */
static bool queue_fits(srv_conn *conn, size_t n, char *msg, size_t len)
{
    srv_server *s = conn->srv;
    size_t mine = agx_sio_conn_queued_bytes(conn->sio), all = queued_total(s);
    if (mine + n > s->queue_cap) {
        snprintf(msg, len, "the host is not reading its connection: %zu bytes are queued to it "
                 "(limit %zu); read faster or use smaller windows", mine, s->queue_cap);
        return false;
    }
    if (mine > 0 && all + n > s->cfg.queue_budget) {
        snprintf(msg, len, "agentix-server holds %zu bytes for hosts that are not reading their "
                 "connections (AGENTIX_QUEUE_BUDGET %zu); read faster or use smaller windows",
                 all, s->cfg.queue_budget);
        return false;
    }
    return true;
}

static void queued_add(srv_server *s, size_t n) { s->queued_total += n; }

/* Whether a call of n bytes may go to the worker: its threads and the bytes its calls hold. One
 * call always fits an idle worker. */
static bool worker_fits(srv_server *s, srv_wproc *wp, size_t n, char *msg, size_t len)
{
    if (wp->nqueued >= SRV_QUEUE_MAX) {
        snprintf(msg, len, "agentix-worker is saturated: all %u of its threads run calls and %zu "
                 "more wait; retry when calls finish", s->cfg.worker_threads, wp->nqueued);
        return false;
    }
    if (wp->held > 0 && srv_worker_holds(wp) + n > s->cfg.worker_budget) {
        snprintf(msg, len, "agentix-worker holds %zu bytes for calls in flight and %zu in its "
                 "bulk rings (AGENTIX_WORKER_BUDGET %zu); retry when calls finish", wp->held,
                 srv_worker_holds(wp) - wp->held, s->cfg.worker_budget);
        return false;
    }
    if (srv_worker_backlog(wp) >= s->backlog_cap) {
        snprintf(msg, len, "agentix-worker is not reading its input: %zu bytes wait for it",
                 srv_worker_backlog(wp));
        return false;
    }
    return true;
}

/* Bidi inputs the worker holds, oldest first: in_credit from the worker releases them. */
static int in_push(srv_call *call, size_t n)
{
    if (!call->in_sizes && !(call->in_sizes = calloc(AGX_FRAME_IN_WINDOW, sizeof *call->in_sizes)))
        return AGX_ERR_NO_MEMORY;
    if (call->in_count < AGX_FRAME_IN_WINDOW) {
        call->in_sizes[(call->in_head + call->in_count) % AGX_FRAME_IN_WINDOW] = (uint32_t)n;
        call->in_count++;
    }
    hold(call, n);
    return 0;
}

static void in_release(srv_call *call, uint64_t n)
{
    for (; n > 0 && call->in_count > 0; n--) {
        size_t sz = call->in_sizes[call->in_head];
        call->in_head = (uint8_t)((call->in_head + 1) % AGX_FRAME_IN_WINDOW);
        call->in_count--;
        call->held -= sz;
        call->wp->held -= sz;
    }
}

/* ---- host events ---- */

/* A call's kind is its function's shape (the same values), describe aside. */
static agx_shape shape_of(agx_wire_kind k)
{
    return k == AGX_KIND_DESCRIBE ? AGX_SHAPE_UNARY : (agx_shape)k;
}

static void start_call(srv_conn *conn, const agx_sio_packet *p, agx_wire_kind kind)
{
    srv_server *s = conn->srv;
    srv_req r;
    char msg[MSG_MAX];
    uint32_t window = AGX_FRAME_WINDOW_DEFAULT;
    if (srv_req_parse(p, &r, msg, sizeof msg) != 0 ||
        srv_req_check_start(&r, kind, &window, msg, sizeof msg) != 0) {
        reply_error(conn, kind, &r, AGX_RPC_BAD_REQUEST, msg);
        return;
    }
    if (s->draining) {
        reply_error(conn, kind, &r, AGX_RPC_CANCELLED, "agentix-server is shutting down");
        return;
    }
    if (find_cid(conn, r.cid, r.cid_len)) {
        /* The call already running under this id keeps running; this answer is the host's cue
         * that it reused an id (its client should never do that). */
        snprintf(msg, sizeof msg, "call_id '%.*s' is already in flight on this connection",
                 (int)(r.cid_len > 64 ? 64 : r.cid_len), r.cid);
        reply_error(conn, kind, &r, AGX_RPC_BAD_REQUEST, msg);
        return;
    }
    if (conn->calls.n >= SRV_CALLS_PER_CONN_MAX) {
        snprintf(msg, sizeof msg, "more than %d calls in flight on one connection",
                 SRV_CALLS_PER_CONN_MAX);
        reply_error(conn, kind, &r, AGX_RPC_LIMIT, msg);
        return;
    }
    srv_wproc *wp = srv_worker_get(s, msg, sizeof msg);
    if (!wp) {
        reply_error(conn, kind, &r, AGX_RPC_WORKER_EXITED, msg);
        return;
    }
    if (!worker_fits(s, wp, r.args.len + r.kwargs.len, msg, sizeof msg)) {
        reply_error(conn, kind, &r, AGX_RPC_LIMIT, msg);
        return;
    }
    srv_call *call = call_new(conn, wp, kind, &r);
    /* A free thread: straight into the worker's batch; else the call waits with its frames. */
    if (call && (wp->queue_head || wp->ncalls >= s->cfg.worker_threads)) {
        call->queued = true;
        call->queued_at = uv_now(s->loop);
    }
    agx_buf *b = call ? call_buf(call) : srv_worker_buf(wp);
    size_t mark = b->len;
    int rc = call ? 0 : AGX_ERR_NO_MEMORY;
    if (!rc)
        rc = kind == AGX_KIND_DESCRIBE
                 ? agx_frame_write_describe(b, call->id, r.target, r.target_len)
                 : agx_frame_write_call(b, call->id, r.target, r.target_len, shape_of(kind),
                                        r.args, r.kwargs, window);
    if (!rc)
        rc = frame_fits(s, b, mark);
    if (rc == 0) {
        hold(call, b->len - mark);
        if (!call->queued) {
            call->sent = true;
            wp->ncalls++;
        } else {
            if (wp->queue_tail)
                wp->queue_tail->q_next = call;
            else
                wp->queue_head = call;
            wp->queue_tail = call;
            wp->nqueued++;
            if (wp->queue_head == call)
                srv_worker_queue_arm(wp);
        }
        return;
    }
    if (call)
        call_free(call);
    if (rc == AGX_ERR_LIMIT) {
        snprintf(msg, sizeof msg, "the call's arguments exceed AGENTIX_MAX_PAYLOAD (%zu bytes)",
                 s->cfg.max_payload);
        reply_error(conn, kind, &r, AGX_RPC_LIMIT, msg);
    } else {
        reply_error(conn, kind, &r, AGX_RPC_INTERNAL, "agentix-server is out of memory");
    }
}

/* The call an in-call event is about; NULL (the event is dropped) when unknown or finished — a
 * race with the call's end, not an error. A malformed event for a live call fails it. */
static srv_call *event_call(srv_conn *conn, const agx_sio_packet *p, srv_req *r)
{
    char msg[MSG_MAX];
    int rc = srv_req_parse(p, r, msg, sizeof msg);
    srv_call *call = r->cid_ok ? find_cid(conn, r->cid, r->cid_len) : NULL;
    if (rc != 0 && call) {
        call_fail(call, AGX_RPC_BAD_REQUEST, msg, false, true);
        return NULL;
    }
    return call;
}

static void on_cancel(srv_conn *conn, const agx_sio_packet *p)
{
    srv_req r;
    srv_call *call = event_call(conn, p, &r);
    if (call)
        call_fail(call, AGX_RPC_CANCELLED, NULL, true, true);
}

static void on_credit(srv_conn *conn, const agx_sio_packet *p)
{
    srv_req r;
    char msg[MSG_MAX];
    uint64_t n;
    srv_call *call = event_call(conn, p, &r);
    if (!call || call->kind == AGX_KIND_UNARY || call->kind == AGX_KIND_DESCRIBE)
        return;
    if (srv_req_get_n(&r, &n, msg, sizeof msg) != 0) {
        call_fail(call, AGX_RPC_BAD_REQUEST, msg, false, true);
        return;
    }
    agx_buf *b = call_buf(call);
    if (b && agx_frame_write_credit(b, AGX_FRAME_CREDIT, call->id, n) != 0)
        call_fail(call, AGX_RPC_INTERNAL, "agentix-server is out of memory", false, true);
}

/* A large bidi:in item goes into the worker's in ring (ring.h) when it has room and the frame
 * goes straight to the worker's pipe buffer (a waiting call's frames are sent later, out of the
 * ring's order): 0 with the `in {id, ring_at, ring_len}` frame in b and *ringed = its bytes, 1
 * when it takes the pipe, or an error code. */
static int in_ring_frame(srv_call *call, agx_buf *b, agx_mp_span item, size_t *ringed)
{
    agx_ring *ring = &call->wp->in_ring;
    uint64_t before = ring->pos, at;
    if (call->queued || item.len < AGX_RING_MIN_ITEM || !agx_ring_place(ring, item.len, &at))
        return 1;
    size_t mark = b->len;
    int rc = agx_frame_write_ring(b, AGX_FRAME_IN, call->id, at, item.len);
    if (rc) {
        b->len = mark;
        ring->pos = before;
        return rc;
    }
    memcpy(agx_ring_data(ring, at), item.data, item.len);
    *ringed = item.len;
    return 0;
}

static void on_bidi_in(srv_conn *conn, const agx_sio_packet *p)
{
    srv_server *s = conn->srv;
    srv_req r;
    srv_call *call = event_call(conn, p, &r);
    if (!call || call->kind != AGX_KIND_BIDI)
        return;
    const char *problem = NULL;
    if (!r.item.len)
        problem = "bidi:in without an item";
    else if (call->in_ended)
        problem = "bidi:in after bidi:end_in";
    if (problem) {
        call_fail(call, AGX_RPC_BAD_REQUEST, problem, false, true);
        return;
    }
    char msg[MSG_MAX];
    if (call->in_credit == 0) {
        call_fail(call, AGX_RPC_LIMIT,
                  "bidi:in beyond the input credit the function granted (bidi:credit)", false, true);
        return;
    }
    if (srv_worker_backlog(call->wp) >= s->backlog_cap ||
        (call->wp->held > 0 && srv_worker_holds(call->wp) + r.item.len > s->cfg.worker_budget)) {
        snprintf(msg, sizeof msg, "agentix-worker holds %zu bytes for calls in flight and %zu "
                 "wait for it (AGENTIX_WORKER_BUDGET %zu)", call->wp->held,
                 srv_worker_backlog(call->wp), s->cfg.worker_budget);
        call_fail(call, AGX_RPC_LIMIT, msg, false, true);
        return;
    }
    call->in_credit--;
    srv_heap_moved(s, r.item.len);
    agx_buf *b = call_buf(call);
    if (!b)
        return;
    size_t mark = b->len, ringed = 0;
    int rc = in_ring_frame(call, b, r.item, &ringed);
    if (rc == 1)
        rc = agx_frame_write_payload(b, AGX_FRAME_IN, call->id, r.item);
    if (!rc)
        rc = frame_fits(s, b, mark);
    if (!rc)
        rc = in_push(call, b->len - mark + ringed);
    if (rc)
        call_fail(call, rc == AGX_ERR_LIMIT ? AGX_RPC_LIMIT : AGX_RPC_INTERNAL,
                  rc == AGX_ERR_LIMIT ? "the bidi:in item exceeds AGENTIX_MAX_PAYLOAD"
                                      : "agentix-server is out of memory",
                  false, true);
}

static void on_end_in(srv_conn *conn, const agx_sio_packet *p)
{
    srv_req r;
    srv_call *call = event_call(conn, p, &r);
    if (!call || call->kind != AGX_KIND_BIDI || call->in_ended)
        return;
    call->in_ended = true;
    send_id_frame(call, AGX_FRAME_END_IN);
}

void srv_on_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    (void)ud;
    srv_conn *conn = agx_sio_conn_userdata(c);
    const char *ev = p->event;
    if (!conn || !ev)
        return;
    agx_wire_kind kind;
    if (agx_wire_kind_of_start(ev, &kind) && kind == AGX_KIND_EXPIRY)
        srv_expiry_on_event(conn, p); /* answered by the server itself, no worker call */
    else if (agx_wire_kind_of_start(ev, &kind))
        start_call(conn, p, kind);
    else if (strcmp(ev, AGX_EV_CREDIT) == 0)
        on_credit(conn, p);
    else if (strcmp(ev, AGX_EV_BIDI_IN) == 0)
        on_bidi_in(conn, p);
    else if (strcmp(ev, AGX_EV_BIDI_END_IN) == 0)
        on_end_in(conn, p);
    else if (strcmp(ev, AGX_EV_CANCEL) == 0)
        on_cancel(conn, p);
    /* Other events are not part of the protocol: dropped, like the Python anchor does. */
}

/* ---- worker frames ---- */

/* A frame the call's kind cannot receive: a worker bug. The call ends; the worker is told. */
static void violation(srv_call *call, const agx_frame *f)
{
    char msg[MSG_MAX];
    snprintf(msg, sizeof msg, "agentix-worker sent '%s' for a %s call (a worker bug)",
             agx_frame_type_name(f->type), agx_wire_kind_name(call->kind));
    fprintf(stderr, "agentix-server: %s\n", msg);
    call_fail(call, AGX_RPC_INTERNAL, msg, false, true);
}

/* An output item, bounded by what the host's connection has queued: the window bounds one call,
 * this bounds all of a connection's calls together against a host that stopped reading. */
static void relay_item(srv_call *call, const agx_frame *f)
{
    srv_conn *conn = call->conn;
    srv_server *s = conn->srv;
    char msg[MSG_MAX];
    size_t len = f->in_ring ? (size_t)f->ring_len : f->value.len;
    if (!queue_fits(conn, len, msg, sizeof msg)) {
        call_fail(call, AGX_RPC_LIMIT, msg, false, true);
        return;
    }
    const char *ev = call->kind == AGX_KIND_STREAM ? AGX_EV_STREAM_ITEM : AGX_EV_BIDI_OUT;
    int rc = f->in_ring ? srv_emit_bin(s, conn->sio, ev, call->cid, call->cid_len, AGX_F_VALUE,
                                       f->ring_bytes, len)
                        : srv_emit_span(s, conn->sio, ev, call->cid, call->cid_len, AGX_F_VALUE,
                                        f->value);
    if (rc == 0) {
        queued_add(s, len);
        srv_heap_moved(s, len);
    }
    if (rc && rc != AGX_ERR_UNAVAILABLE) {
        snprintf(msg, sizeof msg, "an item of %zu bytes cannot be sent to the host: over "
                 "AGENTIX_MAX_PAYLOAD (%zu) or its connection's send queue limit",
                 len, s->cfg.max_payload);
        call_fail(call, AGX_RPC_LIMIT, msg, false, true);
    }
}

static void relay_terminal(srv_call *call, const char *event, const char *key, agx_mp_span v)
{
    srv_conn *conn = call->conn;
    srv_server *s = conn->srv;
    char msg[MSG_MAX];
    int rc;
    if (key && !queue_fits(conn, v.len, msg, sizeof msg))
        rc = srv_emit_error(s, conn->sio, agx_wire_error_event(call->kind), call->cid, call->cid_len,
                            AGX_RPC_LIMIT, msg, false);
    else if (key)
        rc = srv_emit_span(s, conn->sio, event, call->cid, call->cid_len, key, v);
    else
        rc = srv_emit_cid(s, conn->sio, event, call->cid, call->cid_len);
    if (rc == 0 && key)
        queued_add(s, v.len);
    if (rc == AGX_ERR_LIMIT) {
        /* Too large for the host's max payload or its send queue: the call still ends, with an
         * error that says why (small enough to always fit). */
        snprintf(msg, sizeof msg, "the %s (%zu bytes) cannot be sent to the host: over its max "
                 "payload or its connection's send queue limit", key ? key : "event", v.len);
        rc = srv_emit_error(s, conn->sio, agx_wire_error_event(call->kind), call->cid, call->cid_len,
                            AGX_RPC_LIMIT, msg, false);
    }
    call_free(call);
    terminal_sent(conn, rc);
}

static void relay_in_credit(srv_call *call, const agx_frame *f)
{
    in_release(call, f->n);
    uint64_t c = (uint64_t)call->in_credit + f->n;
    call->in_credit = c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
    srv_emit_n(call->conn->srv, call->conn->sio, AGX_EV_BIDI_CREDIT, call->cid, call->cid_len, f->n);
}

void srv_route_worker_frame(srv_server *s, srv_wproc *wp, const agx_frame *f)
{
    srv_call *call = find_id(s, f->id);
    if (!call || call->wp != wp)
        return; /* unknown: dropped */
    if (!call->conn) {
        /* Detached (its host has its terminal event): only the worker's end of it matters. */
        if (agx_frame_is_terminal(f->type))
            srv_call_drop(call);
        return;
    }
    bool streaming = call->kind == AGX_KIND_STREAM || call->kind == AGX_KIND_BIDI;
    switch (f->type) {
    case AGX_FRAME_ITEM:
        if (!streaming)
            break;
        relay_item(call, f);
        return;
    case AGX_FRAME_END:
        if (!streaming)
            break;
        relay_terminal(call, call->kind == AGX_KIND_STREAM ? AGX_EV_STREAM_END : AGX_EV_BIDI_END, NULL,
                       (agx_mp_span){0});
        return;
    case AGX_FRAME_RESULT:
        if (call->kind != AGX_KIND_UNARY)
            break;
        relay_terminal(call, AGX_EV_UNARY_RESULT, AGX_F_VALUE, f->value);
        return;
    case AGX_FRAME_DESCRIPTION:
        if (call->kind != AGX_KIND_DESCRIBE)
            break;
        relay_terminal(call, AGX_EV_DESCRIBE_RESULT, AGX_F_VALUE, f->value);
        return;
    case AGX_FRAME_ERROR:
        relay_terminal(call, agx_wire_error_event(call->kind), AGX_F_ERROR, f->error);
        return;
    case AGX_FRAME_IN_CREDIT:
        if (call->kind != AGX_KIND_BIDI)
            break;
        relay_in_credit(call, f);
        return;
    default: break;
    }
    violation(call, f);
}

/* ---- connections ---- */

void srv_on_connect(agx_sio_conn *c, void *ud)
{
    srv_server *s = ud;
    srv_conn *conn = calloc(1, sizeof *conn);
    if (!conn) {
        agx_sio_conn_close(c);
        return;
    }
    conn->srv = s;
    conn->sio = c;
    conn->next = s->conns;
    if (s->conns)
        s->conns->prev = conn;
    s->conns = conn;
    agx_sio_conn_set_userdata(c, conn);
}

/* A host that goes away cancels its calls: the worker stops them, nothing is sent back. */
void srv_on_close(agx_sio_conn *c, const agx_error *why, void *ud)
{
    srv_server *s = ud;
    (void)why;
    srv_conn *conn = agx_sio_conn_userdata(c);
    if (!conn)
        return;
    agx_sio_conn_set_userdata(c, NULL);
    for (size_t i = 0; i < conn->calls.nb; i++)
        while (conn->calls.b[i])
            call_cancel_in_worker(srv_container_of(conn->calls.b[i], srv_call, by_cid));
    srv_map_free(&conn->calls);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        s->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    free(conn);
}
