/* module.h — for authors of remote functions: how a module shared object declares its functions,
 * and the context a function runs with inside the worker.
 *
 * Flow: host calls "mymod::greet" → agentix-server → agentix-worker finds `mymod.so` on
 * AGENTIX_MODULE_PATH, dlopens it, reads its agx_module descriptor (the exported symbol
 * `agx_module_descriptor`), binds and validates the arguments against the declared parameters,
 * then calls the function on its own thread with an agx_ctx.
 *
 * Example:
 *     static int greet(agx_ctx *ctx) {
 *         const char *name = agx_value_get_string(agx_ctx_arg(ctx, "name"), NULL);
 *         return agx_ctx_return(ctx, agx_value_string(name));
 *     }
 *     static const agx_param greet_params[] = {
 *         {"name", AGX_TYPE_STRING, NULL},          // required
 *         {"times", AGX_TYPE_INT, "1"},             // default given as JSON
 *     };
 *     static const agx_function functions[] = {
 *         AGX_FUNCTION("greet", AGX_SHAPE_UNARY, greet, greet_params, AGX_TYPE_STRING),
 *     };
 *     AGX_MODULE("mymod", functions);
 */
#ifndef AGENTIX_MODULE_H
#define AGENTIX_MODULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/error.h"
#include "agentix/export.h"
#include "agentix/value.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGX_MODULE_ABI_VERSION 1u

typedef enum agx_shape { AGX_SHAPE_UNARY = 0, AGX_SHAPE_STREAM = 1, AGX_SHAPE_BIDI = 2 } agx_shape;
AGX_API const char *agx_shape_name(agx_shape s); /* "unary", "stream", "bidi" */

/* Declared parameter and result types. A parameter whose default is "null" also accepts nil. */
typedef enum agx_type {
    AGX_TYPE_ANY = 0,
    AGX_TYPE_NIL,
    AGX_TYPE_BOOL,
    AGX_TYPE_INT,    /* int64, or a uint64 that fits */
    AGX_TYPE_NUMBER, /* int or double */
    AGX_TYPE_STRING,
    AGX_TYPE_BINARY,
    AGX_TYPE_ARRAY,
    AGX_TYPE_MAP
} agx_type;
AGX_API const char *agx_type_name(agx_type t);

typedef struct agx_param {
    const char *name;
    agx_type type;
    const char *default_json; /* NULL: required */
} agx_param;

typedef struct agx_ctx agx_ctx;
/* Returns 0, or a negative code: after agx_ctx_fail, or the AGX_ERR_CANCELLED that agx_ctx_emit /
 * agx_ctx_recv returned (the call then ends as Cancelled). Unary: returning without agx_ctx_return
 * gives nil. Stream/bidi: returning 0 ends the output. */
typedef int (*agx_function_fn)(agx_ctx *ctx);

typedef struct agx_function {
    const char *name;
    agx_shape shape;
    agx_function_fn fn;
    const agx_param *params;
    size_t n_params;
    agx_type result_type; /* unary: the return value; stream/bidi: each item sent out */
    agx_type input_type;  /* bidi: each item received */
    const char *doc;
} agx_function;

typedef struct agx_module {
    uint32_t abi_version; /* AGX_MODULE_ABI_VERSION */
    uint32_t struct_size; /* sizeof(agx_module) */
    const char *name;     /* must equal the file name without ".so" */
    const agx_function *functions;
    size_t n_functions;
} agx_module;

#define AGX_MODULE_SYMBOL "agx_module_descriptor"
#define AGX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define AGX_FUNCTION(name_, shape_, fn_, params_, result_)                                      \
    {.name = (name_), .shape = (shape_), .fn = (fn_), .params = (params_),                      \
     .n_params = AGX_ARRAY_LEN(params_), .result_type = (result_), .input_type = AGX_TYPE_ANY,  \
     .doc = NULL}
#define AGX_FUNCTION_NOARGS(name_, shape_, fn_, result_)                                        \
    {.name = (name_), .shape = (shape_), .fn = (fn_), .params = NULL, .n_params = 0,            \
     .result_type = (result_), .input_type = AGX_TYPE_ANY, .doc = NULL}
#define AGX_MODULE(name_, functions_)                                                          \
    AGX_EXPORT const agx_module agx_module_descriptor = {                                     \
        AGX_MODULE_ABI_VERSION, sizeof(agx_module), (name_), (functions_),                     \
        AGX_ARRAY_LEN(functions_)}

/* ---- the context a function runs with ----
 * Use it from the function's own thread; a bidi function may also run its input side on one extra
 * thread (agx_ctx_recv there, agx_ctx_emit on the function's thread). It is invalid once the
 * function returns. */
/* All arguments, bound by name with defaults applied and types checked: a map. */
AGX_API const agx_value *agx_ctx_args(agx_ctx *ctx);
AGX_API const agx_value *agx_ctx_arg(agx_ctx *ctx, const char *name); /* NULL when not declared */
/* Stream/bidi: sends one item (takes ownership). Blocks while the host has not consumed earlier
 * items (flow control). Returns 0, or AGX_ERR_CANCELLED once the call is cancelled. */
AGX_API int agx_ctx_emit(agx_ctx *ctx, agx_value *item);
/* Bidi: next input item. 1 with *item (caller owns), 0 at end of input, AGX_ERR_TIMEOUT,
 * or AGX_ERR_CANCELLED. timeout_ms < 0 waits until input or cancellation. */
AGX_API int agx_ctx_recv(agx_ctx *ctx, int timeout_ms, agx_value **item);
AGX_API bool agx_ctx_cancelled(agx_ctx *ctx);
/* A file descriptor that becomes readable when the call is cancelled (for poll loops). */
AGX_API int agx_ctx_cancel_fd(agx_ctx *ctx);
/* Unary: the result (takes ownership). */
AGX_API int agx_ctx_return(agx_ctx *ctx, agx_value *value);
/* Fails the call with an error of the given type ("ValueError", "PermissionError", …). Returns a
 * negative code to return from the function: `return agx_ctx_fail(ctx, "X", "…");` */
AGX_API int agx_ctx_fail(agx_ctx *ctx, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
