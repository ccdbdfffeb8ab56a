/* value_internal.h — the value tree's layout, shared by the tree (value.c) and its codecs
 * (value_msgpack.c, value_json.c) so they walk and build trees without going through accessors. */
#ifndef AGX_CORE_VALUE_INTERNAL_H
#define AGX_CORE_VALUE_INTERNAL_H

#include "agentix/value.h"

typedef struct agx_map_entry {
    char *key; /* NUL-terminated copy; key_len may include interior NULs */
    size_t key_len;
    uint64_t hash; /* kept so the index can be rebuilt without rehashing */
    agx_value *value;
} agx_map_entry;

struct agx_value {
    agx_value_type type;
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double d;
        struct {
            char *data; /* inside the value's own allocation: just past the struct, or (a
                           buffer handed over, agx_value_buffer_adopt) anywhere in it */
            size_t len;
            size_t block; /* bytes in that allocation (large ones are recycled, value.c) */
        } bytes;
        struct {
            agx_value **items;
            size_t len, cap;
        } arr;
        struct {
            agx_map_entry *entries;
            size_t len, cap;
            uint32_t *index; /* open addressing, entry index + 1 (0 = empty); NULL for small maps */
            size_t index_cap; /* power of two */
        } map;
    } as;
};

/* Builds a string or binary value with room for len bytes (plus a NUL) left uninitialised for
 * the caller to fill: decoders write straight into it with one memcpy. */
agx_value *agx_value_bytes_alloc(agx_value_type type, size_t len);

/* Reserve room for n more children so a decoder that knows the count allocates once. */
int agx_value_array_reserve(agx_value *array, size_t n);
int agx_value_map_reserve(agx_value *map, size_t n);

/* The deepest tree the codecs handle. Free, copy, equal and the encoders recurse, so encoders
 * refuse deeper caller-built trees with AGX_ERR_LIMIT, and decoders clamp max_depth to it: a peer
 * cannot hand us a tree we could not free or send back without risking the stack. */
#define AGX_VALUE_MAX_DEPTH 1000

/* Resolves NULL and zero fields to the defaults and clamps max_depth to AGX_VALUE_MAX_DEPTH. */
agx_codec_limits agx_codec_limits_resolve(const agx_codec_limits *limits);

#endif
