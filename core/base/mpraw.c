/* mpraw.c — msgpack walked in place: the server and worker route frames and events by their header
 * fields and relay payload bytes untouched (see mpraw.h). */
#include "core/base/mpraw.h"

#include <msgpack/pack.h>

#include <string.h>

static uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t be64(const unsigned char *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

/* The shape of one object's head: header bytes, payload bytes that follow it, and how many child
 * objects follow (arrays: n, maps: 2n). */
typedef struct mp_head {
    size_t head;
    uint64_t payload;
    uint64_t children;
} mp_head;

/* Reads the head of the object at p; -1 when the head itself is truncated or the byte reserved. */
static int mp_read_head(const unsigned char *p, size_t avail, mp_head *h)
{
    if (avail < 1)
        return -1;
    unsigned char c = p[0];
    h->head = 1;
    h->payload = 0;
    h->children = 0;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return 0;
    if ((c & 0xf0) == 0x80) {
        h->children = 2u * (c & 0x0f);
        return 0;
    }
    if ((c & 0xf0) == 0x90) {
        h->children = c & 0x0f;
        return 0;
    }
    if ((c & 0xe0) == 0xa0) {
        h->payload = c & 0x1f;
        return 0;
    }
    size_t lenbytes = 0;
    switch (c) {
    case 0xc4: case 0xd9: lenbytes = 1; break;             /* bin8, str8 */
    case 0xc5: case 0xda: lenbytes = 2; break;             /* bin16, str16 */
    case 0xc6: case 0xdb: lenbytes = 4; break;             /* bin32, str32 */
    case 0xc7: h->head = 3; break;                          /* ext8: len, type */
    case 0xc8: h->head = 4; break;                          /* ext16 */
    case 0xc9: h->head = 6; break;                          /* ext32 */
    case 0xca: h->head = 5; return avail < 5 ? -1 : 0;      /* float32 */
    case 0xcb: h->head = 9; return avail < 9 ? -1 : 0;      /* float64 */
    case 0xcc: case 0xd0: h->head = 2; return avail < 2 ? -1 : 0;
    case 0xcd: case 0xd1: h->head = 3; return avail < 3 ? -1 : 0;
    case 0xce: case 0xd2: h->head = 5; return avail < 5 ? -1 : 0;
    case 0xcf: case 0xd3: h->head = 9; return avail < 9 ? -1 : 0;
    case 0xd4: h->head = 2; h->payload = 1; return avail < 2 ? -1 : 0;  /* fixext1..16 */
    case 0xd5: h->head = 2; h->payload = 2; return avail < 2 ? -1 : 0;
    case 0xd6: h->head = 2; h->payload = 4; return avail < 2 ? -1 : 0;
    case 0xd7: h->head = 2; h->payload = 8; return avail < 2 ? -1 : 0;
    case 0xd8: h->head = 2; h->payload = 16; return avail < 2 ? -1 : 0;
    case 0xdc: h->head = 3; if (avail < 3) return -1; h->children = be16(p + 1); return 0;
    case 0xdd: h->head = 5; if (avail < 5) return -1; h->children = be32(p + 1); return 0;
    case 0xde: h->head = 3; if (avail < 3) return -1; h->children = 2ull * be16(p + 1); return 0;
    case 0xdf: h->head = 5; if (avail < 5) return -1; h->children = 2ull * be32(p + 1); return 0;
    default: return -1; /* 0xc1 */
    }
    if (lenbytes) {
        h->head = 1 + lenbytes;
        if (avail < h->head)
            return -1;
        h->payload = lenbytes == 1 ? p[1] : lenbytes == 2 ? be16(p + 1) : be32(p + 1);
        return 0;
    }
    /* ext8/16/32: length then a type byte */
    if (avail < h->head)
        return -1;
    h->payload = c == 0xc7 ? p[1] : c == 0xc8 ? be16(p + 1) : be32(p + 1);
    return 0;
}

int agx_mp_skip(const void *data, size_t len, size_t *obj_len)
{
    const unsigned char *start = data, *p = data, *end = p + len;
    uint64_t pending = 1; /* objects still to walk; each needs at least one byte */
    while (pending) {
        mp_head h;
        if (mp_read_head(p, (size_t)(end - p), &h) != 0)
            return AGX_ERR_PROTOCOL;
        p += h.head;
        if (h.payload > (uint64_t)(end - p))
            return AGX_ERR_PROTOCOL;
        p += h.payload;
        pending = pending - 1 + h.children;
        if (pending > (uint64_t)(end - p)) /* cannot be satisfied: refuse before walking it */
            return AGX_ERR_PROTOCOL;
    }
    *obj_len = (size_t)(p - start);
    return 0;
}

int agx_mp_map_open(agx_mp_map_iter *it, const void *data, size_t len)
{
    const unsigned char *p = data;
    mp_head h;
    size_t total;
    if (!p || mp_read_head(p, len, &h) != 0)
        return AGX_ERR_PROTOCOL;
    bool is_map = (p[0] & 0xf0) == 0x80 || p[0] == 0xde || p[0] == 0xdf;
    if (!is_map || agx_mp_skip(p, len, &total) != 0 || total != len)
        return AGX_ERR_PROTOCOL;
    it->p = p + h.head;
    it->end = p + len;
    it->left = (uint32_t)(h.children / 2);
    return 0;
}

int agx_mp_map_next(agx_mp_map_iter *it, const char **key, size_t *key_len, agx_mp_span *value)
{
    if (it->left == 0)
        return 0;
    size_t klen, vlen;
    if (agx_mp_skip(it->p, (size_t)(it->end - it->p), &klen) != 0)
        return AGX_ERR_PROTOCOL;
    agx_mp_span k = {it->p, klen};
    if (agx_mp_get_str(k, key, key_len) != 0)
        return AGX_ERR_PROTOCOL;
    it->p += klen;
    if (agx_mp_skip(it->p, (size_t)(it->end - it->p), &vlen) != 0)
        return AGX_ERR_PROTOCOL;
    value->data = it->p;
    value->len = vlen;
    it->p += vlen;
    it->left--;
    return 1;
}

int agx_mp_map_find(const void *data, size_t len, const char *key, agx_mp_span *value)
{
    agx_mp_map_iter it;
    if (agx_mp_map_open(&it, data, len) != 0)
        return AGX_ERR_PROTOCOL;
    size_t want = strlen(key);
    const char *k;
    size_t klen;
    agx_mp_span v;
    int rc;
    while ((rc = agx_mp_map_next(&it, &k, &klen, &v)) == 1) {
        if (klen == want && memcmp(k, key, want) == 0) {
            *value = v;
            return 1;
        }
    }
    return rc;
}

int agx_mp_get_str(agx_mp_span s, const char **str, size_t *len)
{
    mp_head h;
    if (s.len == 0 || mp_read_head(s.data, s.len, &h) != 0)
        return AGX_ERR_PROTOCOL;
    unsigned char c = s.data[0];
    bool is_str = (c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb;
    if (!is_str || h.head + h.payload > s.len)
        return AGX_ERR_PROTOCOL;
    *str = (const char *)s.data + h.head;
    *len = (size_t)h.payload;
    return 0;
}

int agx_mp_get_bytes(agx_mp_span s, agx_value_type *type, const unsigned char **data, size_t *len)
{
    mp_head h;
    if (s.len == 0 || mp_read_head(s.data, s.len, &h) != 0)
        return AGX_ERR_PROTOCOL;
    unsigned char c = s.data[0];
    bool is_str = (c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda || c == 0xdb;
    bool is_bin = c == 0xc4 || c == 0xc5 || c == 0xc6;
    if ((!is_str && !is_bin) || h.payload > s.len - h.head)
        return AGX_ERR_PROTOCOL;
    *type = is_str ? AGX_VALUE_STRING : AGX_VALUE_BINARY;
    *data = s.data + h.head;
    *len = (size_t)h.payload;
    return 0;
}

int agx_mp_get_uint(agx_mp_span s, uint64_t *u)
{
    if (s.len == 0)
        return AGX_ERR_PROTOCOL;
    const unsigned char *p = s.data;
    unsigned char c = p[0];
    int64_t i;
    if (c <= 0x7f) {
        *u = c;
        return 0;
    }
    switch (c) {
    case 0xcc: if (s.len < 2) break; *u = p[1]; return 0;
    case 0xcd: if (s.len < 3) break; *u = be16(p + 1); return 0;
    case 0xce: if (s.len < 5) break; *u = be32(p + 1); return 0;
    case 0xcf: if (s.len < 9) break; *u = be64(p + 1); return 0;
    case 0xd0: if (s.len < 2) break; i = (int8_t)p[1]; goto sig;
    case 0xd1: if (s.len < 3) break; i = (int16_t)be16(p + 1); goto sig;
    case 0xd2: if (s.len < 5) break; i = (int32_t)be32(p + 1); goto sig;
    case 0xd3: if (s.len < 9) break; i = (int64_t)be64(p + 1); goto sig;
    default: break;
    }
    return AGX_ERR_PROTOCOL;
sig:
    if (i < 0)
        return AGX_ERR_PROTOCOL;
    *u = (uint64_t)i;
    return 0;
}

int agx_mp_get_bool(agx_mp_span s, bool *b)
{
    if (s.len == 0 || (s.data[0] != 0xc2 && s.data[0] != 0xc3))
        return AGX_ERR_PROTOCOL;
    *b = s.data[0] == 0xc3;
    return 0;
}

bool agx_mp_is_nil(agx_mp_span s) { return s.len > 0 && s.data[0] == 0xc0; }

bool agx_mp_is_map(agx_mp_span s)
{
    return s.len > 0 && ((s.data[0] & 0xf0) == 0x80 || s.data[0] == 0xde || s.data[0] == 0xdf);
}

bool agx_mp_is_array(agx_mp_span s)
{
    return s.len > 0 && ((s.data[0] & 0xf0) == 0x90 || s.data[0] == 0xdc || s.data[0] == 0xdd);
}

bool agx_mp_str_eq(agx_mp_span s, const char *cstr)
{
    const char *str;
    size_t len;
    return agx_mp_get_str(s, &str, &len) == 0 && len == strlen(cstr) && memcmp(str, cstr, len) == 0;
}

/* ---- writers ---- */

int agx_mp_put_raw(agx_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (agx_buf_reserve(b, len) != 0)
        return AGX_ERR_NO_MEMORY;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* The writers use msgpack-c's packer (its inline functions pick the smallest encoding of every
 * integer, string, binary and container header) writing into an agx_buf. Decoding stays our own,
 * bounded walker: msgpack-c's unpacker sizes its allocations from header counts before it has
 * seen the bytes behind them. */
static int buf_write(void *data, const char *bytes, size_t len)
{
    return agx_mp_put_raw(data, bytes, len) == 0 ? 0 : -1;
}

static msgpack_packer packer_for(agx_buf *b)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, buf_write);
    return pk;
}

static int packed(int rc) { return rc == 0 ? 0 : AGX_ERR_NO_MEMORY; }

int agx_mp_put_map(agx_buf *b, uint32_t n)
{
    msgpack_packer pk = packer_for(b);
    return packed(msgpack_pack_map(&pk, n));
}

int agx_mp_put_array(agx_buf *b, uint32_t n)
{
    msgpack_packer pk = packer_for(b);
    return packed(msgpack_pack_array(&pk, n));
}

int agx_mp_put_str(agx_buf *b, const char *s, size_t len)
{
    if (len > UINT32_MAX)
        return AGX_ERR_LIMIT;
    msgpack_packer pk = packer_for(b);
    int rc = packed(msgpack_pack_str(&pk, len));
    return rc ? rc : agx_mp_put_raw(b, s, len);
}

int agx_mp_put_cstr(agx_buf *b, const char *s)
{
    return s ? agx_mp_put_str(b, s, strlen(s)) : agx_mp_put_nil(b);
}

int agx_mp_put_bin_head(agx_buf *b, size_t len)
{
    if (len > UINT32_MAX)
        return AGX_ERR_LIMIT;
    msgpack_packer pk = packer_for(b);
    return packed(msgpack_pack_bin(&pk, len));
}

int agx_mp_put_bin(agx_buf *b, const void *data, size_t len)
{
    int rc = agx_mp_put_bin_head(b, len);
    return rc ? rc : agx_mp_put_raw(b, data, len);
}

int agx_mp_put_uint(agx_buf *b, uint64_t u)
{
    msgpack_packer pk = packer_for(b);
    return packed(msgpack_pack_uint64(&pk, u));
}

int agx_mp_put_int(agx_buf *b, int64_t i)
{
    msgpack_packer pk = packer_for(b);
    return packed(msgpack_pack_int64(&pk, i));
}

int agx_mp_put_double(agx_buf *b, double d)
{
    msgpack_packer pk = packer_for(b); /* always float64, as JS peers (notepack) send */
    return packed(msgpack_pack_double(&pk, d));
}

int agx_mp_put_bool(agx_buf *b, bool v)
{
    msgpack_packer pk = packer_for(b);
    return packed(v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

int agx_mp_put_nil(agx_buf *b)
{
    msgpack_packer pk = packer_for(b);
    return packed(msgpack_pack_nil(&pk));
}
