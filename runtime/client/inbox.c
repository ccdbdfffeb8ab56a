/* inbox.c — the RPC client's way in (runtime → loop thread → host threads): each event is routed
 * by call_id to its call; values are decoded here, once, on the loop thread (one copy from the
 * transport's buffer, cheaper overall than handing raw bytes to the consumer and decoding there);
 * stream items go to the call's window-sized ring or its callback; anything that breaks the
 * protocol fails that call (and cancels it remotely), never the connection. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/client_impl.h"
#include "core/base/mpraw.h"
#include "runtime/wire/rpc_error.h"

#define IN_CREDIT_MAX (1u << 30)

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

/* Whether event is "<k's name>:<suffix>"; *suffix then points after the ':'. */
static bool event_of_kind(const char *event, agx_wire_kind k, const char **suffix)
{
    const char *name = agx_wire_kind_name(k);
    size_t n = strlen(name);
    if (strncmp(event, name, n) != 0 || event[n] != AGX_EV_SEP)
        return false;
    *suffix = event + n + 1;
    return true;
}

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
    if (k->scb) {
        k->scb(k->user, AGX_CALL_ITEM, v, NULL);
        uint32_t half = k->window > 1 ? k->window / 2 : 1;
        if (++k->consumed >= half &&
            agx_client_emit_control(c, k, AGX_EV_CREDIT, k->consumed, NULL) == 0) {
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
    const char *colon = strrchr(p->event, AGX_EV_SEP), *suffix;
    if (!colon || strcmp(colon + 1, AGX_SUFFIX_RESULT) != 0)
        return false;
    agx_mp_span span;
    agx_value *v = NULL;
    if (agx_mp_map_find(data, len, AGX_F_VALUE, &span) != 1 ||
        agx_value_from_msgpack(span.data, span.len, &c->limits, &v, NULL) != 0)
        return false;
    agx_call *notify = NULL;
    agx_client_lock(c);
    agx_call *k = agx_callmap_get(c, id);
    bool mine = k && (k->shape == AGX_KIND_UNARY || k->shape == AGX_KIND_DESCRIBE) &&
                event_of_kind(p->event, k->shape, &suffix) && suffix == colon + 1;
    if (mine)
        agx_client_end_locked(c, k, 0, NULL, v, &notify);
    agx_client_unlock(c);
    if (!mine) {
        agx_value_free(v);
        return false;
    }
    agx_client_notify(c, notify);
    if (c->hhead)
        agx_client_run_dirty(c);
    return true;
}

void agx_client_on_event(agx_sio_conn *conn, const agx_sio_packet *p, void *ud)
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
    if (agx_mp_map_find(data, len, AGX_F_CALL_ID, &span) != 1 || agx_mp_get_str(span, &ids, &idn) ||
        !parse_id(ids, idn, &id))
        return; /* not one of ours: dropped, like any unknown call_id */
    if (result_fast_path(c, p, id, data, len))
        return;
    agx_client_lock(c);
    agx_call *k = agx_callmap_get(c, id);
    agx_client_unlock(c);
    if (!k)
        return;

    const char *kind;
    agx_error e;
    agx_client_err_reset(&e);
    if (!event_of_kind(p->event, k->shape, &kind)) {
        agx_error_set(&e, AGX_ERR_PROTOCOL, "the runtime answered with '%.64s'", p->event);
        call_protocol_error(c, k, &e);
        return;
    }
    bool value_kind = !strcmp(kind, AGX_SUFFIX_RESULT) || !strcmp(kind, AGX_SUFFIX_ITEM) ||
                      !strcmp(kind, AGX_SUFFIX_OUT);
    if (value_kind) {
        agx_value *v = NULL;
        int found = agx_mp_map_find(data, len, AGX_F_VALUE, &span);
        if (found != 1) {
            agx_error_set(&e, AGX_ERR_PROTOCOL, "'%s' without a value", p->event);
        } else if (agx_value_from_msgpack(span.data, span.len, &c->limits, &v, &e) != 0) {
            agx_error_prefix(&e, "decoding '%s'", p->event);
        }
        if (e.code) {
            call_protocol_error(c, k, &e);
            return;
        }
        if (!strcmp(kind, AGX_SUFFIX_RESULT) && k->shape != AGX_KIND_STREAM && k->shape != AGX_KIND_BIDI)
            agx_client_end_call(c, k, 0, NULL, v);
        else if (strcmp(kind, AGX_SUFFIX_RESULT) != 0 &&
                 (k->shape == AGX_KIND_STREAM || k->shape == AGX_KIND_BIDI))
            on_item(c, k, v);
        else {
            agx_value_free(v);
            agx_error_set(&e, AGX_ERR_PROTOCOL, "unexpected '%s'", p->event);
            call_protocol_error(c, k, &e);
        }
    } else if (!strcmp(kind, AGX_SUFFIX_ERROR)) {
        int rc = agx_mp_map_find(data, len, AGX_F_ERROR, &span) == 1
                     ? agx_rpc_error_from_msgpack(span, &e)
                     : agx_error_set(&e, AGX_ERR_PROTOCOL, "'%s' without an error", p->event);
        agx_client_end_call(c, k, rc, &e, NULL);
    } else if (!strcmp(kind, AGX_SUFFIX_END) && (k->shape == AGX_KIND_STREAM || k->shape == AGX_KIND_BIDI)) {
        agx_client_end_call(c, k, 0, NULL, NULL);
    } else if (!strcmp(kind, AGX_SUFFIX_CREDIT) && k->shape == AGX_KIND_BIDI) {
        uint64_t n = 0;
        if (agx_mp_map_find(data, len, AGX_F_N, &span) != 1 || agx_mp_get_uint(span, &n)) {
            agx_error_set(&e, AGX_ERR_PROTOCOL, "'%s' without a count n", p->event);
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
        agx_client_run_dirty(c);
}

