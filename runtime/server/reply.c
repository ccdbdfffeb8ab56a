/* reply.c — events from the server to a host (docs/PROTOCOL.md §2). A worker's value is relayed
 * without decoding: the event's msgpack map is a small header built in a reused buffer
 * ({call_id, value: …}) plus the worker's value bytes as a second iovec, which the transport
 * sends from where they lie when its queue is empty (a large value) or copies into its send
 * queue. No allocation per event. */
#include "runtime/server/server.h"

#include <stdio.h>

#include "runtime/wire/rpc_error.h"

static int emit(agx_sio_conn *c, const char *event, const agx_buf *head, agx_mp_span tail)
{
    struct iovec iov[2] = {{head->data, head->len}, {(void *)tail.data, tail.len}};
    agx_error err;
    int rc = agx_sio_conn_emit(c, event, NULL, iov, tail.len ? 2 : 1, NULL, &err);
    if (rc && rc != AGX_ERR_UNAVAILABLE)
        fprintf(stderr, "agentix-server: cannot send '%s': %s\n", event, err.message);
    return rc;
}

/* {call_id: cid, …n_more entries follow} into the scratch buffer. */
static int head(agx_buf *b, uint32_t entries, const char *cid, size_t cid_len)
{
    b->len = 0;
    int rc = agx_mp_put_map(b, entries);
    if (!rc)
        rc = agx_mp_put_lit(b, AGX_F_CALL_ID);
    if (!rc)
        rc = agx_mp_put_str(b, cid, cid_len);
    return rc;
}

int srv_emit_span(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
                  size_t cid_len, const char *key, agx_mp_span value)
{
    int rc = head(&s->scratch, 2, cid, cid_len);
    if (!rc)
        rc = agx_mp_put_cstr(&s->scratch, key);
    if (!rc && !value.len)
        rc = agx_mp_put_nil(&s->scratch);
    /* AGENTIX_MAX_PAYLOAD bounds messages both ways: the host's client uses the same limit. */
    if (!rc && s->scratch.len + value.len > s->cfg.max_payload)
        return AGX_ERR_LIMIT;
    return rc ? rc : emit(c, event, &s->scratch, value);
}

int srv_emit_bin(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
                 size_t cid_len, const char *key, const void *data, size_t len)
{
    int rc = head(&s->scratch, 2, cid, cid_len);
    if (!rc)
        rc = agx_mp_put_cstr(&s->scratch, key);
    if (!rc)
        rc = agx_mp_put_bin_head(&s->scratch, len);
    if (!rc && s->scratch.len + len > s->cfg.max_payload)
        return AGX_ERR_LIMIT;
    return rc ? rc : emit(c, event, &s->scratch, (agx_mp_span){data, len});
}

int srv_emit_cid(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
                 size_t cid_len)
{
    int rc = head(&s->scratch, 1, cid, cid_len);
    return rc ? rc : emit(c, event, &s->scratch, (agx_mp_span){0});
}

int srv_emit_n(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
               size_t cid_len, uint64_t n)
{
    int rc = head(&s->scratch, 2, cid, cid_len);
    if (!rc)
        rc = agx_mp_put_lit(&s->scratch, AGX_F_N);
    if (!rc)
        rc = agx_mp_put_uint(&s->scratch, n);
    return rc ? rc : emit(c, event, &s->scratch, (agx_mp_span){0});
}

int srv_emit_error(srv_server *s, agx_sio_conn *c, const char *event, const char *cid,
                   size_t cid_len, const char *type, const char *message, bool cancelled)
{
    int rc = head(&s->scratch, 2, cid, cid_len);
    if (!rc)
        rc = agx_mp_put_lit(&s->scratch, AGX_F_ERROR);
    if (!rc)
        rc = cancelled && !message ? agx_rpc_error_pack_cancelled(&s->scratch)
                                   : agx_rpc_error_pack(&s->scratch, type, message, NULL,
                                                        cancelled);
    return rc ? rc : emit(c, event, &s->scratch, (agx_mp_span){0});
}
