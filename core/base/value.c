/* value.c — the dynamic value tree that carries call arguments, results and stream items between
 * host, runtime server and worker. Strings and binaries live in one allocation with their node;
 * maps keep insertion order and add a hash index once they outgrow a linear scan. */
#include "core/base/value_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MAP_INDEX_MIN 16 /* below this many keys a linear scan beats hashing */

/* ---- hashing: SipHash-1-3 with a per-process random key, so peers cannot force collisions ---- */

static uint64_t hash_key[2];
static pthread_once_t hash_once = PTHREAD_ONCE_INIT;

static void hash_seed(void)
{
    if (getrandom(hash_key, sizeof hash_key, GRND_NONBLOCK) != (ssize_t)sizeof hash_key) {
        /* No entropy yet (early boot): still vary per process rather than fail. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        hash_key[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&ts;
        hash_key[1] = (uint64_t)ts.tv_sec * 0xbf58476d1ce4e5b9ull ^ (uint64_t)getpid();
    }
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                               \
    do {                                                                                       \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);                              \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                                 \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                                 \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);                              \
    } while (0)

static uint64_t key_hash(const char *key, size_t len)
{
    pthread_once(&hash_once, hash_seed);
    uint64_t k0 = hash_key[0], k1 = hash_key[1];
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1;
    uint64_t v2 = 0x6c7967656e657261ull ^ k0, v3 = 0x7465646279746573ull ^ k1;
    const unsigned char *p = (const unsigned char *)key;
    size_t full = len & ~(size_t)7;
    for (size_t i = 0; i < full; i += 8) {
        uint64_t m;
        memcpy(&m, p + i, 8); /* little-endian hosts only matter for hash quality, not results */
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < (len & 7); i++)
        b |= (uint64_t)p[full + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- constructors ---- */

static agx_value *value_new(agx_value_type type)
{
    agx_value *v = calloc(1, sizeof *v);
    if (v)
        v->type = type;
    return v;
}

agx_value *agx_value_nil(void) { return value_new(AGX_VALUE_NIL); }

agx_value *agx_value_bool(bool b)
{
    agx_value *v = value_new(AGX_VALUE_BOOL);
    if (v)
        v->as.b = b;
    return v;
}

agx_value *agx_value_int(int64_t i)
{
    agx_value *v = value_new(AGX_VALUE_INT);
    if (v)
        v->as.i = i;
    return v;
}

agx_value *agx_value_uint(uint64_t u)
{
    agx_value *v = value_new(AGX_VALUE_UINT);
    if (v)
        v->as.u = u;
    return v;
}

agx_value *agx_value_double(double d)
{
    agx_value *v = value_new(AGX_VALUE_DOUBLE);
    if (v)
        v->as.d = d;
    return v;
}

/* ---- recycled blocks of large strings and binaries ----
 * Stream items are large binaries made on one thread and freed on another (the client's I/O
 * thread decodes them and the host frees them; the worker builds them and frees them once
 * encoded). glibc gives the freed top of an arena back to the kernel past its trim threshold
 * (128 KiB by default), so each new 64 KiB item faulted its pages in again: a fifth of the
 * client's CPU on a stream. A few freed blocks are kept for the next value of about the same
 * size instead. Bounded: BLOCK_SLOTS blocks of at most BLOCK_MAX bytes, process-wide. */
#define BLOCK_MIN ((size_t)16 << 10)
#define BLOCK_MAX (((size_t)1 << 20) + 4096) /* a 1 MiB item with its value header */
#define BLOCK_SLOTS 8

static pthread_mutex_t block_mu = PTHREAD_MUTEX_INITIALIZER;
static agx_value *block_slot[BLOCK_SLOTS]; /* freed values; as.bytes.block says their size */

/* A kept block of `need` to 2 × `need` bytes, or NULL. */
static agx_value *block_take(size_t need)
{
    agx_value *v = NULL;
    pthread_mutex_lock(&block_mu);
    for (int i = 0; i < BLOCK_SLOTS && !v; i++) {
        agx_value *b = block_slot[i];
        if (b && b->as.bytes.block >= need && b->as.bytes.block / 2 <= need) {
            v = b;
            block_slot[i] = NULL;
        }
    }
    pthread_mutex_unlock(&block_mu);
    return v;
}

/* Keeps v's block when there is a free slot; false when the caller must free it. */
static bool block_keep(agx_value *v)
{
    bool kept = false;
    pthread_mutex_lock(&block_mu);
    for (int i = 0; i < BLOCK_SLOTS && !kept; i++)
        if (!block_slot[i]) {
            block_slot[i] = v;
            kept = true;
        }
    pthread_mutex_unlock(&block_mu);
    return kept;
}

agx_value *agx_value_bytes_alloc(agx_value_type type, size_t len)
{
    if (len > SIZE_MAX - sizeof(agx_value) - 1)
        return NULL;
    size_t need = sizeof(agx_value) + len + 1;
    bool large = need >= BLOCK_MIN && need <= BLOCK_MAX;
    agx_value *v = large ? block_take(need) : NULL;
    size_t block = v ? v->as.bytes.block : need;
    if (!v && !(v = malloc(need)))
        return NULL;
    v->type = type;
    v->as.bytes.data = (char *)(v + 1);
    v->as.bytes.len = len;
    v->as.bytes.block = block;
    v->as.bytes.data[len] = '\0';
    return v;
}

/* ---- buffers that become values (value.h) ----
 * A buffer is the payload of a block laid out as a large value: the header in front (unused
 * while the buffer is, so it keeps the block's true size), one spare byte behind for the NUL a
 * string or binary value carries. A recycled block may be up to twice what was asked, as for
 * agx_value_bytes_alloc; its true size goes back to the pool with it. */
void *agx_value_buffer_alloc(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(agx_value) - 1)
        return NULL;
    size_t need = sizeof(agx_value) + cap + 1;
    agx_value *v = need >= BLOCK_MIN && need <= BLOCK_MAX ? block_take(need) : NULL;
    size_t block = v ? v->as.bytes.block : need;
    if (!v && !(v = malloc(need)))
        return NULL;
    v->type = AGX_VALUE_BINARY; /* so agx_value_buffer_free frees it like a value */
    v->as.bytes.block = block;
    return v + 1;
}

void agx_value_buffer_free(void *buf, size_t cap)
{
    (void)cap; /* the header knows the block's size */
    if (buf)
        agx_value_free((agx_value *)buf - 1); /* back to the pool, or to malloc */
}

agx_value *agx_value_buffer_adopt(void *buf, size_t cap, agx_value_type type, const void *data,
                                  size_t len)
{
    uintptr_t at = (uintptr_t)data, lo = (uintptr_t)buf;
    if (!buf || !data || (type != AGX_VALUE_STRING && type != AGX_VALUE_BINARY) || at < lo ||
        len > cap || at - lo > cap - len)
        return NULL;
    agx_value *v = (agx_value *)buf - 1;
    v->type = type; /* as.bytes.block: set by agx_value_buffer_alloc */
    v->as.bytes.data = (char *)buf + (at - lo);
    v->as.bytes.len = len;
    v->as.bytes.data[len] = '\0'; /* at most the spare byte past cap */
    return v;
}

static agx_value *bytes_new(agx_value_type type, const void *data, size_t len)
{
    if (!data && len)
        return agx_value_nil();
    agx_value *v = agx_value_bytes_alloc(type, len);
    if (v && len)
        memcpy(v->as.bytes.data, data, len);
    return v;
}

agx_value *agx_value_string(const char *s)
{
    return s ? bytes_new(AGX_VALUE_STRING, s, strlen(s)) : agx_value_nil();
}

agx_value *agx_value_string_n(const char *s, size_t len) { return bytes_new(AGX_VALUE_STRING, s, len); }

agx_value *agx_value_binary(const void *data, size_t len) { return bytes_new(AGX_VALUE_BINARY, data, len); }

agx_value *agx_value_array(void) { return value_new(AGX_VALUE_ARRAY); }

agx_value *agx_value_map(void) { return value_new(AGX_VALUE_MAP); }

/* ---- arrays ---- */

static int grow(void **ptr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 4;
    while (ncap < need)
        ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
    if (ncap > SIZE_MAX / elem)
        return AGX_ERR_NO_MEMORY;
    void *p = realloc(*ptr, ncap * elem);
    if (!p)
        return AGX_ERR_NO_MEMORY;
    *ptr = p;
    *cap = ncap;
    return 0;
}

int agx_value_array_reserve(agx_value *a, size_t n)
{
    if (!a || a->type != AGX_VALUE_ARRAY)
        return AGX_ERR_INVALID_ARGUMENT;
    if (n > SIZE_MAX - a->as.arr.len)
        return AGX_ERR_NO_MEMORY;
    size_t need = a->as.arr.len + n;
    if (need <= a->as.arr.cap)
        return 0;
    if (need > SIZE_MAX / sizeof(agx_value *))
        return AGX_ERR_NO_MEMORY;
    void *p = realloc(a->as.arr.items, need * sizeof(agx_value *));
    if (!p)
        return AGX_ERR_NO_MEMORY;
    a->as.arr.items = p;
    a->as.arr.cap = need;
    return 0;
}

int agx_value_array_push(agx_value *a, agx_value *item)
{
    int rc = AGX_ERR_INVALID_ARGUMENT;
    if (!a || a->type != AGX_VALUE_ARRAY || !item)
        goto fail;
    rc = grow((void **)&a->as.arr.items, &a->as.arr.cap, a->as.arr.len + 1, sizeof(agx_value *));
    if (rc)
        goto fail;
    a->as.arr.items[a->as.arr.len++] = item;
    return 0;
fail:
    agx_value_free(item);
    return rc;
}

/* ---- maps ---- */

static size_t index_slot(const agx_value *m, uint64_t hash) { return (size_t)hash & (m->as.map.index_cap - 1); }

static void index_insert(agx_value *m, size_t entry)
{
    size_t mask = m->as.map.index_cap - 1;
    size_t s = index_slot(m, m->as.map.entries[entry].hash);
    while (m->as.map.index[s])
        s = (s + 1) & mask;
    m->as.map.index[s] = (uint32_t)(entry + 1);
}

/* (Re)builds the index sized for at least `want` keys at a load factor of at most 1/2; drops it
 * for small maps. */
static int index_rebuild(agx_value *m, size_t want)
{
    if (want <= MAP_INDEX_MIN || want >= UINT32_MAX / 2) {
        free(m->as.map.index);
        m->as.map.index = NULL;
        m->as.map.index_cap = 0;
        return 0;
    }
    size_t cap = 64;
    while (cap < want * 2)
        cap *= 2;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx)
        return AGX_ERR_NO_MEMORY;
    free(m->as.map.index);
    m->as.map.index = idx;
    m->as.map.index_cap = cap;
    for (size_t i = 0; i < m->as.map.len; i++)
        index_insert(m, i);
    return 0;
}

/* Returns the entry index of key, or -1. */
static ptrdiff_t map_find(const agx_value *m, const char *key, size_t key_len, uint64_t hash)
{
    const agx_map_entry *e = m->as.map.entries;
    if (!m->as.map.index) {
        for (size_t i = 0; i < m->as.map.len; i++)
            if (e[i].key_len == key_len && memcmp(e[i].key, key, key_len) == 0)
                return (ptrdiff_t)i;
        return -1;
    }
    size_t mask = m->as.map.index_cap - 1;
    for (size_t s = index_slot(m, hash); m->as.map.index[s]; s = (s + 1) & mask) {
        size_t i = m->as.map.index[s] - 1;
        if (e[i].hash == hash && e[i].key_len == key_len && memcmp(e[i].key, key, key_len) == 0)
            return (ptrdiff_t)i;
    }
    return -1;
}

static uint64_t map_hash(const agx_value *m, const char *key, size_t key_len, size_t len_after)
{
    /* Small maps never consult the hash; skip computing it until an index is (about to be) used. */
    return (m->as.map.index || len_after > MAP_INDEX_MIN) ? key_hash(key, key_len) : 0;
}

int agx_value_map_reserve(agx_value *m, size_t n)
{
    if (!m || m->type != AGX_VALUE_MAP)
        return AGX_ERR_INVALID_ARGUMENT;
    if (n > SIZE_MAX - m->as.map.len)
        return AGX_ERR_NO_MEMORY;
    return grow((void **)&m->as.map.entries, &m->as.map.cap, m->as.map.len + n, sizeof(agx_map_entry));
}

int agx_value_map_set_n(agx_value *m, const char *key, size_t key_len, agx_value *value)
{
    int rc = AGX_ERR_INVALID_ARGUMENT;
    if (!m || m->type != AGX_VALUE_MAP || !value || (!key && key_len))
        goto fail;
    if (!key)
        key = "";
    uint64_t hash = map_hash(m, key, key_len, m->as.map.len + 1);
    ptrdiff_t at = map_find(m, key, key_len, hash);
    if (at >= 0) {
        agx_value_free(m->as.map.entries[at].value);
        m->as.map.entries[at].value = value;
        return 0;
    }
    rc = AGX_ERR_NO_MEMORY;
    if (m->as.map.len >= UINT32_MAX - 1 ||
        grow((void **)&m->as.map.entries, &m->as.map.cap, m->as.map.len + 1, sizeof(agx_map_entry)))
        goto fail;
    char *k = malloc(key_len + 1);
    if (!k)
        goto fail;
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    size_t i = m->as.map.len;
    if (!m->as.map.index && i + 1 > MAP_INDEX_MIN) {
        /* Crossing the threshold: earlier entries were stored without hashes. */
        for (size_t j = 0; j < i; j++)
            m->as.map.entries[j].hash = key_hash(m->as.map.entries[j].key, m->as.map.entries[j].key_len);
    }
    m->as.map.entries[i] = (agx_map_entry){k, key_len, hash, value};
    m->as.map.len++;
    if (m->as.map.index && m->as.map.len * 2 <= m->as.map.index_cap) {
        index_insert(m, i);
    } else if (m->as.map.len > MAP_INDEX_MIN && index_rebuild(m, m->as.map.len * 2)) {
        /* Keep the map consistent: undo the insert; the caller still gets value freed. */
        m->as.map.len--;
        free(k);
        goto fail;
    }
    return 0;
fail:
    agx_value_free(value);
    return rc;
}

int agx_value_map_set(agx_value *m, const char *key, agx_value *value)
{
    if (!key) {
        agx_value_free(value);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    return agx_value_map_set_n(m, key, strlen(key), value);
}

agx_value *agx_value_map_take(agx_value *m, const char *key)
{
    if (!m || m->type != AGX_VALUE_MAP || !key)
        return NULL;
    size_t key_len = strlen(key);
    ptrdiff_t at = map_find(m, key, key_len, map_hash(m, key, key_len, 0));
    if (at < 0)
        return NULL;
    agx_map_entry *e = m->as.map.entries;
    agx_value *v = e[at].value;
    free(e[at].key);
    memmove(e + at, e + at + 1, (m->as.map.len - (size_t)at - 1) * sizeof *e);
    m->as.map.len--;
    if (m->as.map.index) {
        /* Entry positions shifted; rebuilding in place cannot fail when the size is unchanged. */
        if (m->as.map.len <= MAP_INDEX_MIN) {
            index_rebuild(m, 0);
        } else {
            memset(m->as.map.index, 0, m->as.map.index_cap * sizeof *m->as.map.index);
            for (size_t i = 0; i < m->as.map.len; i++)
                index_insert(m, i);
        }
    }
    return v;
}

/* ---- lifetime ---- */

void agx_value_free(agx_value *v)
{
    if (!v)
        return;
    if (v->type == AGX_VALUE_ARRAY) {
        for (size_t i = 0; i < v->as.arr.len; i++)
            agx_value_free(v->as.arr.items[i]);
        free(v->as.arr.items);
    } else if (v->type == AGX_VALUE_MAP) {
        for (size_t i = 0; i < v->as.map.len; i++) {
            free(v->as.map.entries[i].key);
            agx_value_free(v->as.map.entries[i].value);
        }
        free(v->as.map.entries);
        free(v->as.map.index);
    } else if ((v->type == AGX_VALUE_STRING || v->type == AGX_VALUE_BINARY) &&
               v->as.bytes.block >= BLOCK_MIN && v->as.bytes.block <= BLOCK_MAX && block_keep(v)) {
        return;
    }
    free(v);
}

agx_value *agx_value_copy(const agx_value *v)
{
    if (!v)
        return NULL;
    agx_value *c = NULL;
    switch (v->type) {
    case AGX_VALUE_STRING:
    case AGX_VALUE_BINARY:
        return bytes_new(v->type, v->as.bytes.data, v->as.bytes.len);
    case AGX_VALUE_ARRAY:
        c = agx_value_array();
        if (!c || agx_value_array_reserve(c, v->as.arr.len))
            goto fail;
        for (size_t i = 0; i < v->as.arr.len; i++) {
            agx_value *item = agx_value_copy(v->as.arr.items[i]);
            if (!item || agx_value_array_push(c, item))
                goto fail;
        }
        return c;
    case AGX_VALUE_MAP:
        c = agx_value_map();
        if (!c || agx_value_map_reserve(c, v->as.map.len))
            goto fail;
        for (size_t i = 0; i < v->as.map.len; i++) {
            const agx_map_entry *e = &v->as.map.entries[i];
            agx_value *item = agx_value_copy(e->value);
            if (!item || agx_value_map_set_n(c, e->key, e->key_len, item))
                goto fail;
        }
        return c;
    default:
        c = value_new(v->type);
        if (c)
            c->as = v->as;
        return c;
    }
fail:
    agx_value_free(c);
    return NULL;
}

/* ---- comparison ---- */

static bool int_equal(const agx_value *a, const agx_value *b)
{
    if (a->type == b->type)
        return a->as.u == b->as.u; /* same bits either way */
    const agx_value *s = a->type == AGX_VALUE_INT ? a : b, *u = s == a ? b : a;
    return s->as.i >= 0 && (uint64_t)s->as.i == u->as.u;
}

static bool is_integer(agx_value_type t) { return t == AGX_VALUE_INT || t == AGX_VALUE_UINT; }

bool agx_value_equal(const agx_value *a, const agx_value *b)
{
    agx_value_type ta = agx_value_type_of(a), tb = agx_value_type_of(b);
    if (is_integer(ta) && is_integer(tb))
        return int_equal(a, b);
    if (ta != tb)
        return false;
    switch (ta) {
    case AGX_VALUE_NIL:
        return true;
    case AGX_VALUE_BOOL:
        return a->as.b == b->as.b;
    case AGX_VALUE_DOUBLE:
        return a->as.d == b->as.d;
    case AGX_VALUE_STRING:
    case AGX_VALUE_BINARY:
        return a->as.bytes.len == b->as.bytes.len &&
               memcmp(a->as.bytes.data, b->as.bytes.data, a->as.bytes.len) == 0;
    case AGX_VALUE_ARRAY:
        if (a->as.arr.len != b->as.arr.len)
            return false;
        for (size_t i = 0; i < a->as.arr.len; i++)
            if (!agx_value_equal(a->as.arr.items[i], b->as.arr.items[i]))
                return false;
        return true;
    case AGX_VALUE_MAP:
        /* Keys are unique in each map, so equal sizes plus every key of a matching in b suffice;
         * order does not matter. */
        if (a->as.map.len != b->as.map.len)
            return false;
        for (size_t i = 0; i < a->as.map.len; i++) {
            const agx_map_entry *e = &a->as.map.entries[i];
            const agx_value *other = agx_value_map_get_n(b, e->key, e->key_len);
            if (!other || !agx_value_equal(e->value, other))
                return false;
        }
        return true;
    default:
        return false;
    }
}

/* ---- accessors ---- */

agx_value_type agx_value_type_of(const agx_value *v) { return v ? v->type : AGX_VALUE_NIL; }

const char *agx_value_type_name(agx_value_type t)
{
    static const char *const names[] = {"nil", "bool", "int", "uint", "double",
                                        "string", "binary", "array", "map"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

bool agx_value_get_bool(const agx_value *v) { return v && v->type == AGX_VALUE_BOOL && v->as.b; }

int64_t agx_value_get_int64(const agx_value *v)
{
    if (!v)
        return 0;
    if (v->type == AGX_VALUE_INT)
        return v->as.i;
    if (v->type == AGX_VALUE_UINT && v->as.u <= INT64_MAX)
        return (int64_t)v->as.u;
    return 0;
}

uint64_t agx_value_get_uint64(const agx_value *v)
{
    if (!v)
        return 0;
    if (v->type == AGX_VALUE_UINT)
        return v->as.u;
    if (v->type == AGX_VALUE_INT && v->as.i >= 0)
        return (uint64_t)v->as.i;
    return 0;
}

double agx_value_get_double(const agx_value *v)
{
    switch (agx_value_type_of(v)) {
    case AGX_VALUE_DOUBLE:
        return v->as.d;
    case AGX_VALUE_INT:
        return (double)v->as.i;
    case AGX_VALUE_UINT:
        return (double)v->as.u;
    default:
        return 0.0;
    }
}

static const char *get_bytes(const agx_value *v, agx_value_type type, size_t *len)
{
    bool ok = v && v->type == type;
    if (len)
        *len = ok ? v->as.bytes.len : 0;
    return ok ? v->as.bytes.data : NULL;
}

const char *agx_value_get_string(const agx_value *v, size_t *len) { return get_bytes(v, AGX_VALUE_STRING, len); }

const void *agx_value_get_binary(const agx_value *v, size_t *len) { return get_bytes(v, AGX_VALUE_BINARY, len); }

size_t agx_value_array_len(const agx_value *v) { return v && v->type == AGX_VALUE_ARRAY ? v->as.arr.len : 0; }

const agx_value *agx_value_array_at(const agx_value *v, size_t i)
{
    return i < agx_value_array_len(v) ? v->as.arr.items[i] : NULL;
}

size_t agx_value_map_len(const agx_value *v) { return v && v->type == AGX_VALUE_MAP ? v->as.map.len : 0; }

const char *agx_value_map_key_at(const agx_value *v, size_t i, size_t *key_len)
{
    bool ok = i < agx_value_map_len(v);
    if (key_len)
        *key_len = ok ? v->as.map.entries[i].key_len : 0;
    return ok ? v->as.map.entries[i].key : NULL;
}

const agx_value *agx_value_map_value_at(const agx_value *v, size_t i)
{
    return i < agx_value_map_len(v) ? v->as.map.entries[i].value : NULL;
}

const agx_value *agx_value_map_get_n(const agx_value *m, const char *key, size_t key_len)
{
    if (!m || m->type != AGX_VALUE_MAP || (!key && key_len))
        return NULL;
    if (!key)
        key = "";
    ptrdiff_t at = map_find(m, key, key_len, map_hash(m, key, key_len, 0));
    return at < 0 ? NULL : m->as.map.entries[at].value;
}

const agx_value *agx_value_map_get(const agx_value *m, const char *key)
{
    return key ? agx_value_map_get_n(m, key, strlen(key)) : NULL;
}

/* ---- codec limits ---- */

agx_codec_limits agx_codec_limits_default(void)
{
    return (agx_codec_limits){.max_depth = 64, .max_bytes = 64u << 20, .max_items = 1000000};
}

agx_codec_limits agx_codec_limits_resolve(const agx_codec_limits *limits)
{
    /* Zero fields read as "default" so a zero-initialised struct with one field set works. */
    agx_codec_limits d = agx_codec_limits_default();
    if (!limits)
        return d;
    agx_codec_limits r = *limits;
    if (!r.max_depth)
        r.max_depth = d.max_depth;
    if (r.max_depth > AGX_VALUE_MAX_DEPTH)
        r.max_depth = AGX_VALUE_MAX_DEPTH;
    if (!r.max_bytes)
        r.max_bytes = d.max_bytes;
    if (!r.max_items)
        r.max_items = d.max_items;
    return r;
}
