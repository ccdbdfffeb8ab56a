/* request.c — the host side's input check: every RPC event from a host must be a BINARY_EVENT
 * with exactly one attachment holding one msgpack map (docs/PROTOCOL.md §1–§2). This reads the
 * routing fields in place (call_id, target, shape, window, n) and keeps the payload fields (args,
 * kwargs, item) as raw spans that are relayed to the worker byte for byte. Nothing is decoded
 * into a value tree, and every field is bounded before it is used. */
#include "runtime/server/server.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int srv_bad(char *msg, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, len, fmt, ap);
    va_end(ap);
    return -1;
}

/* The attachment of a well-formed RPC event: ["<event>", {"_placeholder":true,"num":0}]. */
static int attachment(const agx_sio_packet *p, agx_mp_span *out, char *msg, size_t len)
{
    if (p->type != AGX_SIO_BINARY_EVENT || p->nattach != 1 || !json_is_array(p->data) ||
        json_array_size(p->data) != 2 ||
        agx_sio_placeholder_index(json_array_get(p->data, 1)) != 0)
        return srv_bad(msg, len, "'%s' must carry exactly one binary attachment holding a msgpack "
                   "map (docs/PROTOCOL.md §1)", p->event);
    out->data = p->attach[0].data;
    out->len = p->attach[0].len;
    return 0;
}

static void read_cid(srv_req *r, agx_mp_span v)
{
    const char *s;
    size_t n;
    if (agx_mp_get_str(v, &s, &n) == 0) {
        r->cid = s;
        r->cid_len = n;
        r->cid_ok = n >= 1 && n <= SRV_CALL_ID_MAX && memchr(s, '\0', n) == NULL;
    }
}

int srv_req_parse(const agx_sio_packet *p, srv_req *r, char *msg, size_t len)
{
    memset(r, 0, sizeof *r);
    agx_mp_span body = {0};
    if (attachment(p, &body, msg, len))
        return -1;
    agx_mp_map_iter it;
    if (body.len == 0 || agx_mp_map_open(&it, body.data, body.len) != 0)
        return srv_bad(msg, len, "the payload of '%s' is not one msgpack map", p->event);
    const char *key;
    size_t klen;
    agx_mp_span v;
    int rc;
    /* call_id first, so that a later malformed field can still be reported to the call. */
    agx_mp_span cid = {0};
    if (agx_mp_map_find(body.data, body.len, AGX_F_CALL_ID, &cid) == 1)
        read_cid(r, cid);
    while ((rc = agx_mp_map_next(&it, &key, &klen, &v)) == 1) {
#define KEY(name) (klen == sizeof name - 1 && memcmp(key, name, klen) == 0)
        if (KEY(AGX_F_TARGET)) {
            if (agx_mp_get_str(v, &r->target, &r->target_len) != 0)
                return srv_bad(msg, len, "'target' must be a string \"module::function\"");
        } else if (KEY(AGX_F_SHAPE))
            r->shape = v;
        else if (KEY(AGX_F_ARGS))
            r->args = agx_mp_is_nil(v) ? (agx_mp_span){0} : v; /* nil = absent = empty */
        else if (KEY(AGX_F_KWARGS))
            r->kwargs = agx_mp_is_nil(v) ? (agx_mp_span){0} : v;
        else if (KEY(AGX_F_ITEM))
            r->item = v;
        else if (KEY(AGX_F_N))
            r->n = v;
        else if (KEY(AGX_F_WINDOW))
            r->window = v;
#undef KEY
    }
    if (rc < 0)
        return srv_bad(msg, len, "the payload of '%s' is not a valid msgpack map", p->event);
    if (!r->cid)
        return srv_bad(msg, len, "missing call_id (a string of 1..%d bytes)", SRV_CALL_ID_MAX);
    if (!r->cid_ok)
        return srv_bad(msg, len, "call_id must be a string of 1..%d bytes without NUL (got %zu bytes)",
                   SRV_CALL_ID_MAX, r->cid_len);
    return 0;
}

/* "module::function": both parts non-empty, no second "::", no NUL, bounded. */
static int check_target(const srv_req *r, char *msg, size_t len)
{
    if (!r->target)
        return srv_bad(msg, len, "missing target (\"module::function\")");
    const char *t = r->target;
    size_t n = r->target_len;
    if (n > SRV_TARGET_MAX)
        return srv_bad(msg, len, "target is %zu bytes; the limit is %d", n, SRV_TARGET_MAX);
    const size_t sl = sizeof AGX_TARGET_SEP - 1;
    const char *sep = n >= sl ? memmem(t, n, AGX_TARGET_SEP, sl) : NULL;
    if (!sep || sep == t || sep + sl == t + n || memchr(t, '\0', n) ||
        memmem(sep + sl, (size_t)(t + n - sep - sl), AGX_TARGET_SEP, sl))
        return srv_bad(msg, len, "target '%.*s' is not of the form \"module::function\"",
                   (int)(n > 128 ? 128 : n), t);
    return 0;
}

int srv_req_check_start(const srv_req *r, agx_wire_kind kind, uint32_t *window, char *msg, size_t len)
{
    if (check_target(r, msg, len))
        return -1;
    if (kind == AGX_KIND_DESCRIBE)
        return 0;
    const char *want = agx_shape_name((agx_shape)kind);
    if (r->shape.len && !agx_mp_str_eq(r->shape, want))
        return srv_bad(msg, len, "shape must be \"%s\" for this event", want);
    if (r->args.len && !agx_mp_is_array(r->args))
        return srv_bad(msg, len, "args must be an array");
    if (r->kwargs.len && !agx_mp_is_map(r->kwargs))
        return srv_bad(msg, len, "kwargs must be a map");
    *window = AGX_FRAME_WINDOW_DEFAULT;
    if (r->window.len && !agx_mp_is_nil(r->window)) {
        uint64_t w;
        if (agx_mp_get_uint(r->window, &w) != 0 || w < 1 || w > UINT32_MAX)
            return srv_bad(msg, len, "window must be a whole number in 1..%u", UINT32_MAX);
        *window = w > AGX_FRAME_WINDOW_MAX ? AGX_FRAME_WINDOW_MAX : (uint32_t)w;
    }
    return 0;
}

int srv_req_get_n(const srv_req *r, uint64_t *n, char *msg, size_t len)
{
    if (!r->n.len || agx_mp_get_uint(r->n, n) != 0 || *n < 1 || *n > UINT32_MAX)
        return srv_bad(msg, len, "n must be a whole number in 1..%u", UINT32_MAX);
    return 0;
}
