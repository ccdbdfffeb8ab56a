/* fuzz_worker_bind.c — libFuzzer target for the worker's argument binding (runtime/worker/bind.c):
 * the host sends a call's positional and keyword arguments (decoded from msgpack with the worker's
 * limits), and wk_bind matches them to a function's declared parameters, applies defaults and
 * checks types. The input is one msgpack value: [args, kwargs], or args alone (an array), or kwargs
 * alone (a map); its first byte also picks one of the declared signatures below. A binding that
 * succeeds must hold exactly one well-typed value per parameter. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/worker/worker.h"

static const agx_param p_mixed[] = {
    {"a", AGX_TYPE_INT, NULL},        {"b", AGX_TYPE_STRING, "\"x\""},
    {"c", AGX_TYPE_NUMBER, "null"},   {"d", AGX_TYPE_MAP, "{}"},
    {"e", AGX_TYPE_ARRAY, "[]"},      {"f", AGX_TYPE_BINARY, "null"},
    {"g", AGX_TYPE_BOOL, "false"},    {"h", AGX_TYPE_ANY, "null"},
};
static const agx_param p_one[] = {{"value", AGX_TYPE_ANY, NULL}};
/* More parameters than bind's on-stack slots (16): the heap path. */
static const agx_param p_many[] = {
    {"p0", AGX_TYPE_INT, "0"},  {"p1", AGX_TYPE_INT, "1"},  {"p2", AGX_TYPE_INT, "2"},
    {"p3", AGX_TYPE_INT, "3"},  {"p4", AGX_TYPE_INT, "4"},  {"p5", AGX_TYPE_INT, "5"},
    {"p6", AGX_TYPE_INT, "6"},  {"p7", AGX_TYPE_INT, "7"},  {"p8", AGX_TYPE_INT, "8"},
    {"p9", AGX_TYPE_INT, "9"},  {"p10", AGX_TYPE_INT, "10"}, {"p11", AGX_TYPE_INT, "11"},
    {"p12", AGX_TYPE_INT, "12"}, {"p13", AGX_TYPE_INT, "13"}, {"p14", AGX_TYPE_INT, "14"},
    {"p15", AGX_TYPE_INT, "15"}, {"p16", AGX_TYPE_INT, "16"}, {"p17", AGX_TYPE_STRING, NULL},
};

static int noop(agx_ctx *ctx)
{
    (void)ctx;
    return 0;
}

static const agx_function fns[] = {
    {.name = "mixed", .shape = AGX_SHAPE_UNARY, .fn = noop, .params = p_mixed,
     .n_params = AGX_ARRAY_LEN(p_mixed), .result_type = AGX_TYPE_ANY},
    {.name = "one", .shape = AGX_SHAPE_UNARY, .fn = noop, .params = p_one,
     .n_params = AGX_ARRAY_LEN(p_one), .result_type = AGX_TYPE_ANY},
    {.name = "many", .shape = AGX_SHAPE_UNARY, .fn = noop, .params = p_many,
     .n_params = AGX_ARRAY_LEN(p_many), .result_type = AGX_TYPE_ANY},
    {.name = "none", .shape = AGX_SHAPE_UNARY, .fn = noop, .result_type = AGX_TYPE_ANY},
};
#define NFNS (sizeof fns / sizeof *fns)

static wk_target targets[NFNS];

/* Targets as the resolver builds them: defaults parsed from their JSON once. */
static void setup(void)
{
    for (size_t t = 0; t < NFNS; t++) {
        targets[t].key = (char *)fns[t].name;
        targets[t].fn = &fns[t];
        targets[t].defaults = calloc(fns[t].n_params + 1, sizeof *targets[t].defaults);
        for (size_t i = 0; i < fns[t].n_params; i++) {
            const char *j = fns[t].params[i].default_json;
            if (j && agx_value_from_json(j, strlen(j), NULL, &targets[t].defaults[i], NULL) != 0)
                abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1)
        return 0;
    const wk_target *t = &targets[data[0] % NFNS];
    agx_codec_limits lim = agx_codec_limits_default();
    agx_value *in = NULL;
    if (agx_value_from_msgpack(data, size, &lim, &in, NULL) != 0)
        return 0;
    agx_value *args = NULL, *kwargs = NULL;
    if (agx_value_type_of(in) == AGX_VALUE_ARRAY && agx_value_array_len(in) == 2 &&
        agx_value_type_of(agx_value_array_at(in, 0)) == AGX_VALUE_ARRAY &&
        agx_value_type_of(agx_value_array_at(in, 1)) == AGX_VALUE_MAP) {
        args = agx_value_copy(agx_value_array_at(in, 0));
        kwargs = agx_value_copy(agx_value_array_at(in, 1));
    } else if (agx_value_type_of(in) == AGX_VALUE_ARRAY) {
        args = agx_value_copy(in);
        kwargs = agx_value_map();
    } else if (agx_value_type_of(in) == AGX_VALUE_MAP) {
        args = agx_value_array();
        kwargs = agx_value_copy(in);
    }
    agx_value_free(in);
    if (args && kwargs) {
        agx_value *out = NULL;
        char msg[512];
        if (wk_bind(t, args, kwargs, &out, msg, sizeof msg) == 0) {
            if (agx_value_map_len(out) != t->fn->n_params)
                abort();
            for (size_t i = 0; i < t->fn->n_params; i++) {
                const agx_value *v = agx_value_map_get(out, t->fn->params[i].name);
                bool nullable = t->defaults[i] && agx_value_type_of(t->defaults[i]) == AGX_VALUE_NIL;
                if (!v || !wk_type_accepts(t->fn->params[i].type, v, nullable))
                    abort();
            }
            agx_value_free(out);
        } else if (!msg[0] || out) {
            abort();
        }
    }
    agx_value_free(args);
    agx_value_free(kwargs);
    return 0;
}
