/* value_json.c — the JSON codec for value trees, for humans and JSON-speaking peers: CLI
 * arguments and output, config files, HTTP bodies. Binary travels as {"$base64":"…"}. The wire
 * between host, runtime server and worker is msgpack (value_msgpack.c); JSON is not on the hot path,
 * so this rides on jansson and converts its tree. */
#include "core/base/value_internal.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BASE64_KEY "$base64"

/* ---- base64 (RFC 4648, standard alphabet, padded) ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64_encode(const unsigned char *in, size_t len, size_t *out_len)
{
    size_t n = (len + 2) / 3 * 4;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = B64[(v >> 6) & 63];
        *o++ = B64[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        *o++ = B64[v >> 18];
        *o++ = B64[(v >> 12) & 63];
        *o++ = i + 1 < len ? B64[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o = '\0';
    *out_len = n;
    return out;
}

static int b64_digit(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict: length a multiple of 4, padding only at the end, no whitespace. Writes into a binary
 * value allocated once at its final size. */
static agx_value *base64_decode(const char *in, size_t len, int *rc)
{
    *rc = AGX_ERR_INVALID_ARGUMENT;
    if (len % 4)
        return NULL;
    size_t pad = 0;
    if (len && in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    size_t out_len = len / 4 * 3 - pad;
    agx_value *v = agx_value_bytes_alloc(AGX_VALUE_BINARY, out_len);
    if (!v) {
        *rc = AGX_ERR_NO_MEMORY;
        return NULL;
    }
    unsigned char *o = (unsigned char *)v->as.bytes.data;
    size_t w = 0;
    for (size_t i = 0; i < len; i += 4) {
        bool last = i + 4 == len;
        uint32_t acc = 0;
        for (size_t k = 0; k < 4; k++) {
            int dgt = last && k >= 4 - pad ? 0 : b64_digit((unsigned char)in[i + k]);
            if (dgt < 0) {
                agx_value_free(v);
                return NULL;
            }
            acc = acc << 6 | (uint32_t)dgt;
        }
        unsigned char bytes[3] = {(unsigned char)(acc >> 16), (unsigned char)(acc >> 8), (unsigned char)acc};
        size_t take = last ? 3 - pad : 3;
        memcpy(o + w, bytes, take);
        w += take;
    }
    *rc = 0;
    return v;
}

/* ---- UTF-8: JSON text must be valid UTF-8, so strings are checked before they are written ---- */

static bool utf8_valid(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

/* ---- encoder: value tree → jansson tree → text ---- */

static bool is_reserved_map(const agx_value *v)
{
    /* A map that looks exactly like the binary form would come back as binary: refuse it rather
     * than silently change the type on a round trip. */
    return v->as.map.len == 1 && v->as.map.entries[0].key_len == sizeof BASE64_KEY - 1 &&
           memcmp(v->as.map.entries[0].key, BASE64_KEY, sizeof BASE64_KEY - 1) == 0 &&
           v->as.map.entries[0].value->type == AGX_VALUE_STRING;
}

static int to_json_string(const char *s, size_t len, json_t **out, agx_error *err)
{
    if (!utf8_valid((const unsigned char *)s, len))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "json: a string is not valid UTF-8; send it as binary instead");
    *out = json_stringn_nocheck(s, len);
    return *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "json: out of memory");
}

static int to_json_binary(const agx_value *v, json_t **out, agx_error *err)
{
    size_t n;
    char *text = base64_encode((const unsigned char *)v->as.bytes.data, v->as.bytes.len, &n);
    json_t *obj = json_object();
    json_t *str = text ? json_stringn_nocheck(text, n) : NULL;
    free(text);
    if (!obj || !str || json_object_setn_new_nocheck(obj, BASE64_KEY, sizeof BASE64_KEY - 1, str)) {
        json_decref(obj);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "json: out of memory encoding a %zu-byte binary", v->as.bytes.len);
    }
    *out = obj;
    return 0;
}

static int to_json(const agx_value *v, size_t depth, json_t **out, agx_error *err);

static int to_json_container(const agx_value *v, size_t depth, json_t **out, agx_error *err)
{
    if (depth >= AGX_VALUE_MAX_DEPTH)
        return agx_error_set(err, AGX_ERR_LIMIT, "json: the tree nests deeper than %d containers", AGX_VALUE_MAX_DEPTH);
    bool is_map = v->type == AGX_VALUE_MAP;
    if (is_map && is_reserved_map(v))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "json: a map whose only key is \"" BASE64_KEY "\" with a string value is reserved for binary");
    json_t *c = is_map ? json_object() : json_array();
    if (!c)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "json: out of memory");
    size_t n = is_map ? v->as.map.len : v->as.arr.len;
    for (size_t i = 0; i < n; i++) {
        json_t *child;
        const agx_map_entry *e = is_map ? &v->as.map.entries[i] : NULL;
        int rc = to_json(e ? e->value : v->as.arr.items[i], depth + 1, &child, err);
        if (!rc && e && !utf8_valid((const unsigned char *)e->key, e->key_len)) {
            json_decref(child);
            rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "json: a map key is not valid UTF-8");
        }
        if (!rc && (e ? json_object_setn_new_nocheck(c, e->key, e->key_len, child) : json_array_append_new(c, child)))
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "json: out of memory");
        if (rc) {
            json_decref(c);
            return rc;
        }
    }
    *out = c;
    return 0;
}

static int to_json(const agx_value *v, size_t depth, json_t **out, agx_error *err)
{
    json_t *j = NULL;
    switch (agx_value_type_of(v)) {
    case AGX_VALUE_NIL:
        j = json_null();
        break;
    case AGX_VALUE_BOOL:
        j = json_boolean(v->as.b);
        break;
    case AGX_VALUE_INT:
        j = json_integer((json_int_t)v->as.i);
        break;
    case AGX_VALUE_UINT:
        if (v->as.u > INT64_MAX)
            return agx_error_set(err, AGX_ERR_LIMIT,
                                 "json: %llu is above INT64_MAX and cannot be a JSON integer; use msgpack or a string",
                                 (unsigned long long)v->as.u);
        j = json_integer((json_int_t)v->as.u);
        break;
    case AGX_VALUE_DOUBLE:
        if (!isfinite(v->as.d))
            return agx_error_set(err, AGX_ERR_LIMIT, "json: %g has no JSON form (NaN and infinities are not JSON numbers)", v->as.d);
        j = json_real(v->as.d);
        break;
    case AGX_VALUE_STRING:
        return to_json_string(v->as.bytes.data, v->as.bytes.len, out, err);
    case AGX_VALUE_BINARY:
        return to_json_binary(v, out, err);
    case AGX_VALUE_ARRAY:
    case AGX_VALUE_MAP:
        return to_json_container(v, depth, out, err);
    default:
        return agx_error_set(err, AGX_ERR_INTERNAL, "json: value of unknown type %d", (int)v->type);
    }
    if (!j)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "json: out of memory");
    *out = j;
    return 0;
}

static int buf_sink(const char *chunk, size_t size, void *data) { return agx_buf_append(data, chunk, size) ? -1 : 0; }

int agx_value_to_json(const agx_value *v, char **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_value_to_json: out is required");
    *out = NULL;
    json_t *j;
    int rc = to_json(v, 0, &j, err);
    if (rc)
        return rc;
    agx_buf b = {0};
    /* Dump straight into our buffer: the caller frees with free(), whatever allocator jansson was
     * given. Precision 17 makes every double read back bit-exact. */
    if (json_dump_callback(j, buf_sink, &b, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17)) ||
        agx_buf_append(&b, "", 1)) {
        json_decref(j);
        agx_buf_free(&b);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "json: out of memory writing the text");
    }
    json_decref(j);
    *out = b.data;
    return 0;
}

/* ---- decoder: text → jansson tree → value tree ---- */

typedef struct json_decoder {
    agx_codec_limits lim;
    size_t items;
    agx_error *err;
} json_decoder;

static int from_json(json_decoder *d, const json_t *j, size_t depth, agx_value **out);

static int from_json_object(json_decoder *d, const json_t *j, size_t depth, agx_value **out)
{
    const json_t *b64 = json_object_size(j) == 1 ? json_object_getn(j, BASE64_KEY, sizeof BASE64_KEY - 1) : NULL;
    if (b64 && json_is_string(b64)) {
        int rc;
        *out = base64_decode(json_string_value(b64), json_string_length(b64), &rc);
        if (rc == AGX_ERR_NO_MEMORY)
            return agx_error_set(d->err, rc, "json: out of memory decoding base64");
        if (rc)
            return agx_error_set(d->err, rc, "json: the \"" BASE64_KEY "\" value is not valid padded base64");
        return 0;
    }
    agx_value *m = agx_value_map();
    if (!m || agx_value_map_reserve(m, json_object_size(j))) {
        agx_value_free(m);
        return agx_error_set(d->err, AGX_ERR_NO_MEMORY, "json: out of memory");
    }
    const char *key;
    size_t key_len;
    json_t *child;
    json_object_keylen_foreach((json_t *)j, key, key_len, child) {
        agx_value *v;
        int rc = from_json(d, child, depth + 1, &v);
        if (!rc && (rc = agx_value_map_set_n(m, key, key_len, v)))
            agx_error_set(d->err, rc, "json: out of memory");
        if (rc) {
            agx_value_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

static int from_json_array(json_decoder *d, const json_t *j, size_t depth, agx_value **out)
{
    agx_value *a = agx_value_array();
    if (!a || agx_value_array_reserve(a, json_array_size(j))) {
        agx_value_free(a);
        return agx_error_set(d->err, AGX_ERR_NO_MEMORY, "json: out of memory");
    }
    size_t i;
    json_t *child;
    json_array_foreach(j, i, child) {
        agx_value *v;
        int rc = from_json(d, child, depth + 1, &v);
        if (!rc && (rc = agx_value_array_push(a, v)))
            agx_error_set(d->err, rc, "json: out of memory");
        if (rc) {
            agx_value_free(a);
            return rc;
        }
    }
    *out = a;
    return 0;
}

static int from_json(json_decoder *d, const json_t *j, size_t depth, agx_value **out)
{
    if (++d->items > d->lim.max_items)
        return agx_error_set(d->err, AGX_ERR_LIMIT, "json: more than max_items (%zu) values", d->lim.max_items);
    agx_value *v = NULL;
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY:
        if (depth + 1 > d->lim.max_depth)
            return agx_error_set(d->err, AGX_ERR_LIMIT, "json: nesting deeper than %zu; raise max_depth if this is expected",
                                 d->lim.max_depth);
        return json_is_object(j) ? from_json_object(d, j, depth, out) : from_json_array(d, j, depth, out);
    case JSON_STRING:
        v = agx_value_string_n(json_string_value(j), json_string_length(j));
        break;
    case JSON_INTEGER:
        v = agx_value_int((int64_t)json_integer_value(j));
        break;
    case JSON_REAL:
        v = agx_value_double(json_real_value(j));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        v = agx_value_bool(json_is_true(j));
        break;
    case JSON_NULL:
        v = agx_value_nil();
        break;
    }
    if (!v)
        return agx_error_set(d->err, AGX_ERR_NO_MEMORY, "json: out of memory");
    *out = v;
    return 0;
}

static int parse_error(const json_error_t *je, agx_error *err)
{
    int code;
    switch (json_error_code(je)) {
    case json_error_out_of_memory:
        code = AGX_ERR_NO_MEMORY;
        break;
    case json_error_stack_overflow:
    case json_error_numeric_overflow:
        code = AGX_ERR_LIMIT;
        break;
    default:
        code = AGX_ERR_INVALID_ARGUMENT;
        break;
    }
    return agx_error_set(err, code, "json: %s at line %d column %d (byte %d)", je->text, je->line, je->column, je->position);
}

int agx_value_from_json(const char *text, size_t len, const agx_codec_limits *limits, agx_value **out, agx_error *err)
{
    if (!out || (!text && len))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_value_from_json: out is required and text may be NULL only when len is 0");
    *out = NULL;
    json_decoder d = {.lim = agx_codec_limits_resolve(limits), .err = err};
    if (len > d.lim.max_bytes)
        return agx_error_set(err, AGX_ERR_LIMIT, "json: %zu bytes exceed max_bytes (%zu)", len, d.lim.max_bytes);
    json_error_t je;
    /* jansson enforces its own nesting bound while parsing (no unbounded recursion); ours is
     * checked while converting. */
    json_t *j = json_loadb(text ? text : "", len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        return parse_error(&je, err);
    int rc = from_json(&d, j, 0, out);
    json_decref(j);
    return rc;
}
