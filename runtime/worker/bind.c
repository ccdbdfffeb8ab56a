/* bind.c — matches a call's positional and keyword arguments to the function's declared
 * parameters (like Python's Signature.bind), fills defaults and checks declared types, so module
 * code only ever sees a complete, well-typed argument map. */
#include "runtime/worker/worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool wk_type_accepts(agx_type type, const agx_value *v, bool nullable)
{
    agx_value_type vt = agx_value_type_of(v);
    if (vt == AGX_VALUE_NIL && (nullable || type == AGX_TYPE_NIL || type == AGX_TYPE_ANY))
        return true;
    switch (type) {
    case AGX_TYPE_ANY: return true;
    case AGX_TYPE_NIL: return false;
    case AGX_TYPE_BOOL: return vt == AGX_VALUE_BOOL;
    case AGX_TYPE_INT: return vt == AGX_VALUE_INT; /* decoders make UINT only above INT64_MAX */
    case AGX_TYPE_NUMBER: return vt == AGX_VALUE_INT || vt == AGX_VALUE_UINT || vt == AGX_VALUE_DOUBLE;
    case AGX_TYPE_STRING: return vt == AGX_VALUE_STRING;
    case AGX_TYPE_BINARY: return vt == AGX_VALUE_BINARY;
    case AGX_TYPE_ARRAY: return vt == AGX_VALUE_ARRAY;
    case AGX_TYPE_MAP: return vt == AGX_VALUE_MAP;
    }
    return false;
}

static int param_index(const agx_function *fn, const char *name, size_t len)
{
    for (size_t i = 0; i < fn->n_params; i++)
        if (strlen(fn->params[i].name) == len && memcmp(fn->params[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* Collects the value for each parameter (borrowed), or reports the first binding error. */
static int collect(const wk_target *t, const agx_value *args, const agx_value *kwargs,
                   const agx_value **slot, char *msg, size_t msg_len)
{
    const agx_function *fn = t->fn;
    size_t npos = agx_value_array_len(args);
    if (npos > fn->n_params) {
        snprintf(msg, msg_len, "%s takes %zu positional argument%s but %zu were given", t->key,
                 fn->n_params, fn->n_params == 1 ? "" : "s", npos);
        return -1;
    }
    for (size_t i = 0; i < npos; i++)
        slot[i] = agx_value_array_at(args, i);
    for (size_t k = 0; k < agx_value_map_len(kwargs); k++) {
        size_t klen;
        const char *key = agx_value_map_key_at(kwargs, k, &klen);
        int i = param_index(fn, key, klen);
        if (i < 0) {
            snprintf(msg, msg_len, "%s got an unexpected keyword argument '%.*s'", t->key,
                     (int)(klen > 100 ? 100 : klen), key);
            return -1;
        }
        if (slot[i]) {
            snprintf(msg, msg_len, "%s got multiple values for parameter '%s'", t->key,
                     fn->params[i].name);
            return -1;
        }
        slot[i] = agx_value_map_value_at(kwargs, k);
    }
    for (size_t i = 0; i < fn->n_params; i++) {
        if (!slot[i])
            slot[i] = t->defaults[i];
        if (!slot[i]) {
            snprintf(msg, msg_len, "%s missing required parameter '%s'", t->key, fn->params[i].name);
            return -1;
        }
        bool nullable = t->defaults[i] && agx_value_type_of(t->defaults[i]) == AGX_VALUE_NIL;
        if (!wk_type_accepts(fn->params[i].type, slot[i], nullable)) {
            snprintf(msg, msg_len, "%s: parameter '%s' must be %s%s, got %s", t->key,
                     fn->params[i].name, agx_type_name(fn->params[i].type),
                     nullable ? " or nil" : "", agx_value_type_name(agx_value_type_of(slot[i])));
            return -1;
        }
    }
    return 0;
}

int wk_bind(const wk_target *t, const agx_value *args, const agx_value *kwargs, agx_value **out,
            char *msg, size_t msg_len)
{
    const agx_function *fn = t->fn;
    const agx_value *slots_small[16] = {0};
    const agx_value **slot = slots_small;
    if (fn->n_params > AGX_ARRAY_LEN(slots_small) && !(slot = calloc(fn->n_params, sizeof *slot))) {
        snprintf(msg, msg_len, "out of memory binding %s", t->key);
        return -1;
    }
    int rc = collect(t, args, kwargs, slot, msg, msg_len);
    agx_value *map = NULL;
    if (rc == 0) {
        map = agx_value_map();
        for (size_t i = 0; map && i < fn->n_params; i++)
            if (agx_value_map_set(map, fn->params[i].name, agx_value_copy(slot[i])) != 0) {
                agx_value_free(map);
                map = NULL;
            }
        if (!map) {
            snprintf(msg, msg_len, "out of memory binding %s", t->key);
            rc = -1;
        }
    }
    if (slot != slots_small)
        free(slot);
    *out = map;
    return rc;
}
