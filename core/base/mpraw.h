/* mpraw.h — msgpack without a value tree: walk an encoded map's top-level entries, read scalars in
 * place, and append encoded objects to a buffer. The runtime server and the worker use it to route
 * frames and events by a few header fields (type, id, call_id) while relaying payloads (`value`,
 * `args`, `item`) as the exact bytes they arrived in, never decoding or re-encoding them.
 *
 * Internal (core/base: agx_mpraw, inside libagentix-runtime and linked by the protocol's programs).
 * Every reader is bounded by the given length and checks
 * each length field against the bytes left, so malformed input is an error, never a read past the
 * end; walking does not recurse, so nesting depth costs nothing here (the value decoder limits it). */
#ifndef AGX_RUNTIME_MPRAW_H
#define AGX_RUNTIME_MPRAW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/value.h"

/* One complete encoded msgpack object inside a larger buffer (borrowed). len 0 means absent. */
typedef struct agx_mp_span {
    const unsigned char *data;
    size_t len;
} agx_mp_span;

/* Length of the first complete object in data[0..len). 0, or AGX_ERR_PROTOCOL when it is
 * malformed, truncated or uses a reserved byte (0xc1). */
int agx_mp_skip(const void *data, size_t len, size_t *obj_len);

/* Iterates the top-level entries of a map that must fill data[0..len) exactly. */
typedef struct agx_mp_map_iter {
    const unsigned char *p;
    const unsigned char *end;
    uint32_t left;
} agx_mp_map_iter;
/* 0, or AGX_ERR_PROTOCOL when data is not one map (with nothing after it). */
int agx_mp_map_open(agx_mp_map_iter *it, const void *data, size_t len);
/* 1 with the next entry (key must be a str), 0 at the end, AGX_ERR_PROTOCOL when malformed. */
int agx_mp_map_next(agx_mp_map_iter *it, const char **key, size_t *key_len, agx_mp_span *value);
/* Finds key in a map (first match); 1 found, 0 absent, AGX_ERR_PROTOCOL when malformed. */
int agx_mp_map_find(const void *data, size_t len, const char *key, agx_mp_span *value);

/* Scalar reads of one span; each returns 0, or AGX_ERR_PROTOCOL when the span holds another type. */
int agx_mp_get_str(agx_mp_span s, const char **str, size_t *len); /* not NUL-terminated */
/* A str or bin span: its type (STRING or BINARY) and payload, in place. */
int agx_mp_get_bytes(agx_mp_span s, agx_value_type *type, const unsigned char **data, size_t *len);
int agx_mp_get_uint(agx_mp_span s, uint64_t *u);                  /* any non-negative integer */
int agx_mp_get_bool(agx_mp_span s, bool *b);
bool agx_mp_is_nil(agx_mp_span s);
bool agx_mp_is_map(agx_mp_span s);
bool agx_mp_is_array(agx_mp_span s);
/* Compares a span holding a str with a C string. */
bool agx_mp_str_eq(agx_mp_span s, const char *cstr);

/* Writers (msgpack-c's packer): append the smallest encoding to b. 0, AGX_ERR_NO_MEMORY, or
 * AGX_ERR_LIMIT for a string or binary over the format's 4 GiB. */
int agx_mp_put_map(agx_buf *b, uint32_t n);
int agx_mp_put_array(agx_buf *b, uint32_t n);
int agx_mp_put_str(agx_buf *b, const char *s, size_t len);
int agx_mp_put_cstr(agx_buf *b, const char *s); /* NULL writes nil */
/* A string literal (a protocol word: protocol.h), its length known at compile time. */
#define agx_mp_put_lit(b, lit) agx_mp_put_str((b), "" lit, sizeof(lit) - 1)
int agx_mp_put_bin(agx_buf *b, const void *data, size_t len);
/* Only the header of a binary of len bytes: the caller sends the bytes after it (writev). */
int agx_mp_put_bin_head(agx_buf *b, size_t len);
int agx_mp_put_uint(agx_buf *b, uint64_t u);
int agx_mp_put_int(agx_buf *b, int64_t i);
int agx_mp_put_double(agx_buf *b, double d); /* float64 */
int agx_mp_put_bool(agx_buf *b, bool v);
int agx_mp_put_nil(agx_buf *b);
/* Appends already-encoded bytes (one object, e.g. a relayed span) as they are. */
int agx_mp_put_raw(agx_buf *b, const void *data, size_t len);

#endif
