/* kv.c — agx_kv, the ordered string pairs a host hands to a backend (env, labels, options) and a
 * backend hands back to the client (HTTP headers for the runtime). Insertion order is kept because
 * backends pass env and labels on in the order the host gave them. */
#include "agentix/deployment.h"
#include "core/host/records.h"

#include <stdlib.h>
#include <string.h>

typedef struct agx_kv_pair {
    char *key;
    char *value;
} agx_kv_pair;

struct agx_kv {
    agx_kv_pair *items;
    size_t count;
    size_t cap;
};

agx_kv *agx_kv_new(void)
{
    return calloc(1, sizeof(agx_kv));
}

void agx_kv_free(agx_kv *kv)
{
    if (!kv)
        return;
    for (size_t i = 0; i < kv->count; i++) {
        free(kv->items[i].key);
        free(kv->items[i].value);
    }
    free(kv->items);
    free(kv);
}

static long agx_kv_find(const agx_kv *kv, const char *key)
{
    for (size_t i = 0; i < kv->count; i++)
        if (strcmp(kv->items[i].key, key) == 0)
            return (long)i;
    return -1;
}

static int agx_kv_append(agx_kv *kv, const char *key, const char *value)
{
    if (kv->count == kv->cap) {
        size_t cap = kv->cap ? kv->cap * 2 : 8;
        agx_kv_pair *items = realloc(kv->items, cap * sizeof *items);
        if (!items)
            return AGX_ERR_NO_MEMORY;
        kv->items = items;
        kv->cap = cap;
    }
    char *k = strdup(key);
    char *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return AGX_ERR_NO_MEMORY;
    }
    kv->items[kv->count].key = k;
    kv->items[kv->count].value = v;
    kv->count++;
    return 0;
}

int agx_kv_set(agx_kv *kv, const char *key, const char *value)
{
    if (!kv || !key || !*key || !value)
        return AGX_ERR_INVALID_ARGUMENT;
    long at = agx_kv_find(kv, key);
    if (at < 0)
        return agx_kv_append(kv, key, value);
    char *v = strdup(value);
    if (!v)
        return AGX_ERR_NO_MEMORY;
    free(kv->items[at].value);
    kv->items[at].value = v;
    return 0;
}

const char *agx_kv_get(const agx_kv *kv, const char *key)
{
    if (!kv || !key)
        return NULL;
    long at = agx_kv_find(kv, key);
    return at < 0 ? NULL : kv->items[at].value;
}

int agx_kv_remove(agx_kv *kv, const char *key)
{
    if (!kv || !key)
        return AGX_ERR_INVALID_ARGUMENT;
    long at = agx_kv_find(kv, key);
    if (at < 0)
        return AGX_ERR_NOT_FOUND;
    free(kv->items[at].key);
    free(kv->items[at].value);
    memmove(&kv->items[at], &kv->items[at + 1], (kv->count - (size_t)at - 1) * sizeof *kv->items);
    kv->count--;
    return 0;
}

agx_kv *agx_kv_copy(const agx_kv *kv)
{
    if (!kv)
        return NULL;
    agx_kv *out = agx_kv_new();
    if (!out)
        return NULL;
    for (size_t i = 0; i < kv->count; i++) {
        if (agx_kv_append(out, kv->items[i].key, kv->items[i].value) != 0) {
            agx_kv_free(out);
            return NULL;
        }
    }
    return out;
}

size_t agx_kv_count(const agx_kv *kv)
{
    return kv ? kv->count : 0;
}

const char *agx_kv_key_at(const agx_kv *kv, size_t i)
{
    return kv && i < kv->count ? kv->items[i].key : NULL;
}

const char *agx_kv_value_at(const agx_kv *kv, size_t i)
{
    return kv && i < kv->count ? kv->items[i].value : NULL;
}

int agx_str_replace(char **slot, const char *s)
{
    char *copy = NULL;
    if (s && !(copy = strdup(s)))
        return AGX_ERR_NO_MEMORY;
    free(*slot);
    *slot = copy;
    return 0;
}
