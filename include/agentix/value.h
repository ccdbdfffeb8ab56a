/* value.h — the dynamic value tree that carries arguments, results and stream items end to end
 * (host → runtime server → worker and back), with its msgpack and JSON codecs.
 *
 * Ownership: every constructor returns a new tree the caller owns and releases with
 * agx_value_free. Container setters take ownership of the child they are given, also on failure
 * (so `agx_value_map_set(m, "k", agx_value_int(1))` never leaks). Accessors return borrowed
 * pointers that live as long as their container. A tree is not synchronised: share it between
 * threads only read-only. Map keys are strings; maps keep insertion order. */
#ifndef AGENTIX_VALUE_H
#define AGENTIX_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_value agx_value;

typedef enum agx_value_type {
    AGX_VALUE_NIL = 0,
    AGX_VALUE_BOOL,
    AGX_VALUE_INT,    /* int64_t */
    AGX_VALUE_UINT,   /* uint64_t; decoders produce it only above INT64_MAX */
    AGX_VALUE_DOUBLE,
    AGX_VALUE_STRING, /* UTF-8 bytes with a length; may contain NUL */
    AGX_VALUE_BINARY,
    AGX_VALUE_ARRAY,
    AGX_VALUE_MAP
} agx_value_type;

/* Constructors. They return NULL only when memory runs out. */
AGX_API agx_value *agx_value_nil(void);
AGX_API agx_value *agx_value_bool(bool b);
AGX_API agx_value *agx_value_int(int64_t i);
AGX_API agx_value *agx_value_uint(uint64_t u);
AGX_API agx_value *agx_value_double(double d);
AGX_API agx_value *agx_value_string(const char *s);                 /* NULL s gives nil */
AGX_API agx_value *agx_value_string_n(const char *s, size_t len);
AGX_API agx_value *agx_value_binary(const void *data, size_t len);
AGX_API agx_value *agx_value_array(void);
AGX_API agx_value *agx_value_map(void);

/* Buffers that become values without a copy: fill a buffer from agx_value_buffer_alloc (read a
 * message into it, say), then make a string or binary of the bytes at its end with
 * agx_value_buffer_adopt; the value owns the whole buffer from then on and agx_value_free releases
 * it. Large buffers come from, and return to, the same small recycled pool as large values, so a
 * stream of them neither copies nor faults pages in. alloc gives cap usable bytes (NULL when memory
 * runs out); free releases a buffer never adopted (NULL is fine). adopt: data .. data+len must lie
 * in buf's cap bytes; data[len] becomes the value's NUL (so nothing may read buf past data+len
 * afterwards); NULL (buf still the caller's) for a span outside buf or a type other than STRING or
 * BINARY. */
AGX_API void *agx_value_buffer_alloc(size_t cap);
AGX_API void agx_value_buffer_free(void *buf, size_t cap);
AGX_API agx_value *agx_value_buffer_adopt(void *buf, size_t cap, agx_value_type type,
                                          const void *data, size_t len);

/* Containers. Return 0 or AGX_ERR_INVALID_ARGUMENT (wrong container type) / AGX_ERR_NO_MEMORY. */
AGX_API int agx_value_array_push(agx_value *array, agx_value *item);
AGX_API int agx_value_map_set(agx_value *map, const char *key, agx_value *value); /* replaces an existing key */
AGX_API int agx_value_map_set_n(agx_value *map, const char *key, size_t key_len, agx_value *value);
/* Removes a key and returns its value to the caller (NULL when absent). */
AGX_API agx_value *agx_value_map_take(agx_value *map, const char *key);

AGX_API void agx_value_free(agx_value *v);
AGX_API agx_value *agx_value_copy(const agx_value *v);
AGX_API bool agx_value_equal(const agx_value *a, const agx_value *b); /* deep; INT 5 == UINT 5; NaN != NaN */

/* Accessors. Type mismatches return the zero value (false, 0, NULL); check agx_value_type first
 * when it matters. agx_value_get_int64 also accepts a UINT that fits, and vice versa. */
AGX_API agx_value_type agx_value_type_of(const agx_value *v); /* NULL reads as NIL */
AGX_API const char *agx_value_type_name(agx_value_type t);    /* "nil", "bool", "int", … */
AGX_API bool agx_value_get_bool(const agx_value *v);
AGX_API int64_t agx_value_get_int64(const agx_value *v);
AGX_API uint64_t agx_value_get_uint64(const agx_value *v);
AGX_API double agx_value_get_double(const agx_value *v);      /* INT and UINT convert */
AGX_API const char *agx_value_get_string(const agx_value *v, size_t *len); /* NUL-terminated too */
AGX_API const void *agx_value_get_binary(const agx_value *v, size_t *len);

AGX_API size_t agx_value_array_len(const agx_value *v);
AGX_API const agx_value *agx_value_array_at(const agx_value *v, size_t i);
AGX_API size_t agx_value_map_len(const agx_value *v);
AGX_API const char *agx_value_map_key_at(const agx_value *v, size_t i, size_t *key_len);
AGX_API const agx_value *agx_value_map_value_at(const agx_value *v, size_t i);
AGX_API const agx_value *agx_value_map_get(const agx_value *map, const char *key);
AGX_API const agx_value *agx_value_map_get_n(const agx_value *map, const char *key, size_t key_len);

/* Codec limits: a decoder refuses input beyond them with AGX_ERR_LIMIT, never allocating more
 * than the input justifies. NULL limits mean agx_codec_limits_default(). */
typedef struct agx_codec_limits {
    size_t max_depth;   /* nesting of arrays/maps, default 64 */
    size_t max_bytes;   /* encoded input size, default 64 MiB */
    size_t max_items;   /* total values in one tree, default 1,000,000 */
} agx_codec_limits;
AGX_API agx_codec_limits agx_codec_limits_default(void);

/* msgpack (msgpack-c). Strings are msgpack str, binary is bin, ext type 0 (what JS peers send for
 * ArrayBuffers) decodes as binary, the JS `undefined` (fixext1 type 0) decodes as nil. Non-string
 * map keys are rejected. The encoder writes into a malloc'd buffer the caller frees. */
AGX_API int agx_value_to_msgpack(const agx_value *v, void **out, size_t *out_len, agx_error *err);
AGX_API int agx_value_from_msgpack(const void *data, size_t len, const agx_codec_limits *limits,
                           agx_value **out, agx_error *err);
/* Appends the encoding to an existing growable buffer (used by framers to avoid copies). */
typedef struct agx_buf {
    char *data;
    size_t len;
    size_t cap;
} agx_buf;
AGX_API int agx_buf_reserve(agx_buf *b, size_t extra);
AGX_API int agx_buf_append(agx_buf *b, const void *data, size_t len);
AGX_API void agx_buf_free(agx_buf *b);
AGX_API int agx_value_pack_into(const agx_value *v, agx_buf *buf, agx_error *err);

/* JSON (jansson). Binary encodes as {"$base64":"…"} and that form decodes back to binary; a UINT
 * above INT64_MAX cannot be written as a JSON integer and fails with AGX_ERR_LIMIT; non-finite
 * doubles fail too. The encoder returns a malloc'd NUL-terminated string. */
AGX_API int agx_value_to_json(const agx_value *v, char **out, agx_error *err);
AGX_API int agx_value_from_json(const char *text, size_t len, const agx_codec_limits *limits,
                        agx_value **out, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
