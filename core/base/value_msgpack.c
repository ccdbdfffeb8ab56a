/* value_msgpack.c — the msgpack codec for value trees: every Socket.IO payload between host and
 * runtime server, and every worker frame, goes through it. The encoder writes straight into the
 * caller's agx_buf with msgpack-c's packer (through mpraw.h). The decoder is our own on purpose:
 * it is iterative and bounded, so a hostile peer can neither exhaust the stack nor make it
 * allocate more than the input justifies — msgpack-c's unpacker reserves memory from the counts
 * in headers before it has seen the bytes behind them. */
#include "core/base/value_internal.h"
#include "core/base/mpraw.h"

#include <stdlib.h>
#include <string.h>

/* ---- encoder ---- */

/* Encoding goes through the msgpack-c packer behind core/base/mpraw.h, so the runtime's
 * header writers and this encoder share one implementation of the format. */
static int put_failed(int rc, agx_error *err)
{
    if (rc == AGX_ERR_LIMIT)
        return agx_error_set(err, rc, "msgpack: a string or binary exceeds the 4 GiB format limit");
    return agx_error_set(err, AGX_ERR_NO_MEMORY, "msgpack: out of memory growing the output");
}

static int encode(agx_buf *b, const agx_value *v, size_t depth, agx_error *err);

static int encode_container(agx_buf *b, const agx_value *v, size_t depth, agx_error *err)
{
    if (depth >= AGX_VALUE_MAX_DEPTH)
        return agx_error_set(err, AGX_ERR_LIMIT, "msgpack: the tree nests deeper than %d containers",
                             AGX_VALUE_MAX_DEPTH);
    bool is_map = v->type == AGX_VALUE_MAP;
    size_t n = is_map ? v->as.map.len : v->as.arr.len;
    if (n > UINT32_MAX)
        return agx_error_set(err, AGX_ERR_LIMIT, "msgpack: a container of %zu items exceeds the format limit", n);
    int rc = is_map ? agx_mp_put_map(b, (uint32_t)n) : agx_mp_put_array(b, (uint32_t)n);
    if (rc)
        return put_failed(rc, err);
    for (size_t i = 0; !rc && i < n; i++) {
        if (is_map) {
            const agx_map_entry *e = &v->as.map.entries[i];
            if ((rc = agx_mp_put_str(b, e->key, e->key_len)) != 0)
                return put_failed(rc, err);
            rc = encode(b, e->value, depth + 1, err);
        } else {
            rc = encode(b, v->as.arr.items[i], depth + 1, err);
        }
    }
    return rc;
}

static int encode(agx_buf *b, const agx_value *v, size_t depth, agx_error *err)
{
    int rc;
    switch (agx_value_type_of(v)) {
    case AGX_VALUE_NIL:
        rc = agx_mp_put_nil(b);
        break;
    case AGX_VALUE_BOOL:
        rc = agx_mp_put_bool(b, v->as.b);
        break;
    case AGX_VALUE_INT:
        rc = agx_mp_put_int(b, v->as.i);
        break;
    case AGX_VALUE_UINT:
        rc = agx_mp_put_uint(b, v->as.u);
        break;
    case AGX_VALUE_DOUBLE:
        rc = agx_mp_put_double(b, v->as.d);
        break;
    case AGX_VALUE_STRING:
        rc = agx_mp_put_str(b, v->as.bytes.data, v->as.bytes.len);
        break;
    case AGX_VALUE_BINARY:
        rc = agx_mp_put_bin(b, v->as.bytes.data, v->as.bytes.len);
        break;
    case AGX_VALUE_ARRAY:
    case AGX_VALUE_MAP:
        return encode_container(b, v, depth, err);
    default:
        return agx_error_set(err, AGX_ERR_INTERNAL, "msgpack: value of unknown type %d", (int)v->type);
    }
    return rc ? put_failed(rc, err) : 0;
}

int agx_value_pack_into(const agx_value *v, agx_buf *buf, agx_error *err)
{
    if (!buf)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_value_pack_into: buf is NULL");
    size_t mark = buf->len;
    int rc = encode(buf, v, 0, err);
    if (rc)
        buf->len = mark; /* leave no half-written value behind for the framer */
    return rc;
}

int agx_value_to_msgpack(const agx_value *v, void **out, size_t *out_len, agx_error *err)
{
    if (!out || !out_len)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_value_to_msgpack: out and out_len are required");
    *out = NULL;
    *out_len = 0;
    agx_buf b = {0};
    int rc = agx_value_pack_into(v, &b, err);
    if (rc) {
        agx_buf_free(&b);
        return rc;
    }
    *out = b.data;
    *out_len = b.len;
    return 0;
}

/* ---- decoder ---- */

typedef struct decoder {
    const uint8_t *start, *p, *end;
    agx_codec_limits lim;
    size_t items;
    agx_error *err;
} decoder;

static size_t offset(const decoder *d) { return (size_t)(d->p - d->start); }

static int truncated(decoder *d)
{
    return agx_error_set(d->err, AGX_ERR_PROTOCOL, "msgpack: input ends inside a value at byte %zu of %zu",
                         offset(d), (size_t)(d->end - d->start));
}

static int read_be(decoder *d, size_t width, uint64_t *out)
{
    if ((size_t)(d->end - d->p) < width)
        return truncated(d);
    uint64_t v = 0;
    for (size_t i = 0; i < width; i++)
        v = v << 8 | d->p[i];
    d->p += width;
    *out = v;
    return 0;
}

static int read_bytes(decoder *d, agx_value_type type, size_t len, agx_value **out)
{
    if ((size_t)(d->end - d->p) < len)
        return truncated(d);
    agx_value *v = agx_value_bytes_alloc(type, len);
    if (!v)
        return agx_error_set(d->err, AGX_ERR_NO_MEMORY, "msgpack: out of memory for a %zu-byte value", len);
    memcpy(v->as.bytes.data, d->p, len);
    d->p += len;
    *out = v;
    return 0;
}

static int scalar(decoder *d, agx_value *v, agx_value **out)
{
    if (!v)
        return agx_error_set(d->err, AGX_ERR_NO_MEMORY, "msgpack: out of memory");
    *out = v;
    return 0;
}

/* ext: type 0 is what JS peers send for ArrayBuffers (binary) and, as fixext1, for `undefined`. */
static int read_ext(decoder *d, uint8_t tag, size_t len, agx_value **out)
{
    if (d->p >= d->end)
        return truncated(d);
    int8_t type = (int8_t)*d->p++;
    if (type != 0)
        return agx_error_set(d->err, AGX_ERR_PROTOCOL,
                             "msgpack: unsupported ext type %d at byte %zu (only type 0, binary or undefined, is understood)",
                             type, offset(d) - 2);
    if (tag == 0xd4) {
        if (d->p >= d->end)
            return truncated(d);
        d->p++;
        return scalar(d, agx_value_nil(), out);
    }
    return read_bytes(d, AGX_VALUE_BINARY, len, out);
}

static int read_container(decoder *d, agx_value_type type, size_t n, size_t depth, agx_value **out)
{
    if (depth + 1 > d->lim.max_depth)
        return agx_error_set(d->err, AGX_ERR_LIMIT, "msgpack: nesting deeper than %zu at byte %zu; raise max_depth if this is expected",
                             d->lim.max_depth, offset(d));
    if (n > d->lim.max_items - d->items)
        return agx_error_set(d->err, AGX_ERR_LIMIT, "msgpack: a container of %zu items would exceed max_items (%zu)",
                             n, d->lim.max_items);
    /* Every item needs at least one byte (a map entry two): refuse counts the input cannot hold
     * before reserving room for them. */
    size_t left = (size_t)(d->end - d->p);
    if (type == AGX_VALUE_MAP ? n > left / 2 : n > left)
        return agx_error_set(d->err, AGX_ERR_PROTOCOL, "msgpack: a container claims %zu items but only %zu bytes follow",
                             n, left);
    agx_value *v = type == AGX_VALUE_MAP ? agx_value_map() : agx_value_array();
    if (!v || (type == AGX_VALUE_MAP ? agx_value_map_reserve(v, n) : agx_value_array_reserve(v, n))) {
        agx_value_free(v);
        return agx_error_set(d->err, AGX_ERR_NO_MEMORY, "msgpack: out of memory for a container of %zu items", n);
    }
    *out = v;
    return 0;
}

static const uint8_t EXT_FIX_LEN[] = {1, 2, 4, 8, 16}; /* d4..d8 */

/* Reads one value; a container comes back empty with its item count in *children. */
static int read_value(decoder *d, size_t depth, agx_value **out, size_t *children)
{
    *children = 0;
    if (++d->items > d->lim.max_items)
        return agx_error_set(d->err, AGX_ERR_LIMIT, "msgpack: more than max_items (%zu) values", d->lim.max_items);
    if (d->p >= d->end)
        return truncated(d);
    uint8_t tag = *d->p++;
    uint64_t u = 0;
    int rc;
    if (tag <= 0x7f)
        return scalar(d, agx_value_int(tag), out);
    if (tag >= 0xe0)
        return scalar(d, agx_value_int((int8_t)tag), out);
    if (tag <= 0x9f || (tag >= 0xdc && tag <= 0xdf)) {
        bool is_map = tag <= 0x8f || tag >= 0xde;
        if (tag <= 0x9f)
            u = tag & 0x0f;
        else if ((rc = read_be(d, (tag & 1) ? 4 : 2, &u)))
            return rc;
        *children = (size_t)u;
        return read_container(d, is_map ? AGX_VALUE_MAP : AGX_VALUE_ARRAY, (size_t)u, depth, out);
    }
    if (tag <= 0xbf)
        return read_bytes(d, AGX_VALUE_STRING, tag & 0x1f, out);
    switch (tag) {
    case 0xc0:
        return scalar(d, agx_value_nil(), out);
    case 0xc2:
    case 0xc3:
        return scalar(d, agx_value_bool(tag == 0xc3), out);
    case 0xc4: case 0xc5: case 0xc6:
        if ((rc = read_be(d, (size_t)1 << (tag - 0xc4), &u)))
            return rc;
        return read_bytes(d, AGX_VALUE_BINARY, (size_t)u, out);
    case 0xc7: case 0xc8: case 0xc9:
        if ((rc = read_be(d, (size_t)1 << (tag - 0xc7), &u)))
            return rc;
        return read_ext(d, tag, (size_t)u, out);
    case 0xca: {
        if ((rc = read_be(d, 4, &u)))
            return rc;
        uint32_t bits = (uint32_t)u;
        float f;
        memcpy(&f, &bits, sizeof f);
        return scalar(d, agx_value_double(f), out);
    }
    case 0xcb: {
        if ((rc = read_be(d, 8, &u)))
            return rc;
        double f;
        memcpy(&f, &u, sizeof f);
        return scalar(d, agx_value_double(f), out);
    }
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        if ((rc = read_be(d, (size_t)1 << (tag - 0xcc), &u)))
            return rc;
        return scalar(d, u > INT64_MAX ? agx_value_uint(u) : agx_value_int((int64_t)u), out);
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        size_t width = (size_t)1 << (tag - 0xd0);
        if ((rc = read_be(d, width, &u)))
            return rc;
        /* Sign-extend from the encoded width. */
        unsigned shift = (unsigned)(64 - 8 * width);
        int64_t i = (int64_t)(u << shift) >> shift;
        return scalar(d, agx_value_int(i), out);
    }
    case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        return read_ext(d, tag, EXT_FIX_LEN[tag - 0xd4], out);
    case 0xd9: case 0xda: case 0xdb:
        if ((rc = read_be(d, (size_t)1 << (tag - 0xd9), &u)))
            return rc;
        return read_bytes(d, AGX_VALUE_STRING, (size_t)u, out);
    default: /* 0xc1 is reserved */
        return agx_error_set(d->err, AGX_ERR_PROTOCOL, "msgpack: invalid type byte 0x%02x at byte %zu", tag, offset(d) - 1);
    }
}

static int read_key(decoder *d, const char **key, size_t *len)
{
    if (d->p >= d->end)
        return truncated(d);
    uint8_t tag = *d->p++;
    uint64_t n = 0;
    if (tag >= 0xa0 && tag <= 0xbf) {
        n = tag & 0x1f;
    } else if (tag >= 0xd9 && tag <= 0xdb) {
        int rc = read_be(d, (size_t)1 << (tag - 0xd9), &n);
        if (rc)
            return rc;
    } else {
        return agx_error_set(d->err, AGX_ERR_PROTOCOL,
                             "msgpack: map key at byte %zu is not a string (type byte 0x%02x); maps need string keys",
                             offset(d) - 1, tag);
    }
    if ((uint64_t)(d->end - d->p) < n)
        return truncated(d);
    *key = (const char *)d->p;
    *len = (size_t)n;
    d->p += n;
    return 0;
}

typedef struct frame {
    agx_value *container;
    size_t left;
} frame;

static int push_frame(frame **st, size_t *cap, frame *local, size_t depth, frame f)
{
    if (depth == *cap) {
        size_t ncap = *cap * 2;
        frame *n = *st == local ? malloc(ncap * sizeof *n) : realloc(*st, ncap * sizeof *n);
        if (!n)
            return AGX_ERR_NO_MEMORY;
        if (*st == local)
            memcpy(n, local, depth * sizeof *n);
        *st = n;
        *cap = ncap;
    }
    (*st)[depth] = f;
    return 0;
}

/* Iterative: containers are attached to their parent as soon as they are read, so on any error
 * freeing the root releases everything built so far. */
static int decode(decoder *d, agx_value **root)
{
    frame local[16], *st = local;
    size_t cap = 16, depth = 0;
    int rc = 0;
    *root = NULL;
    do {
        frame *top = depth ? &st[depth - 1] : NULL;
        const char *key = NULL;
        size_t key_len = 0;
        if (top && top->container->type == AGX_VALUE_MAP && (rc = read_key(d, &key, &key_len)))
            break;
        agx_value *v = NULL;
        size_t children;
        if ((rc = read_value(d, depth, &v, &children)))
            break;
        if (!top) {
            *root = v;
        } else {
            top->left--;
            rc = key ? agx_value_map_set_n(top->container, key, key_len, v) : agx_value_array_push(top->container, v);
            if (rc) {
                agx_error_set(d->err, rc, "msgpack: out of memory adding to a container");
                break;
            }
        }
        if (children && (rc = push_frame(&st, &cap, local, depth++, (frame){v, children}))) {
            agx_error_set(d->err, rc, "msgpack: out of memory for the nesting stack");
            break;
        }
        while (depth && st[depth - 1].left == 0)
            depth--;
    } while (depth);
    if (st != local)
        free(st);
    return rc;
}

int agx_value_from_msgpack(const void *data, size_t len, const agx_codec_limits *limits, agx_value **out,
                           agx_error *err)
{
    if (!out || (!data && len))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_value_from_msgpack: out is required and data may be NULL only when len is 0");
    *out = NULL;
    decoder d = {.start = data, .p = data, .end = (const uint8_t *)data + len,
                 .lim = agx_codec_limits_resolve(limits), .err = err};
    if (len > d.lim.max_bytes)
        return agx_error_set(err, AGX_ERR_LIMIT, "msgpack: %zu bytes exceed max_bytes (%zu)", len, d.lim.max_bytes);
    if (len == 0)
        return agx_error_set(err, AGX_ERR_PROTOCOL, "msgpack: empty input holds no value");
    agx_value *root;
    int rc = decode(&d, &root);
    if (!rc && d.p != d.end)
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "msgpack: %zu trailing bytes after the value (at byte %zu)",
                           (size_t)(d.end - d.p), offset(&d));
    if (rc) {
        agx_value_free(root);
        return rc;
    }
    *out = root;
    return 0;
}
