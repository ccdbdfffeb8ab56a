/* module_ctx.c — the agx_ctx_* entry points modules call (module.h); each forwards to the worker
 * through the context's ops table (module_ctx.h). Also the shape and type names of module.h. */
#include "core/base/module_ctx.h"

#include <stdarg.h>
#include <stdio.h>

const char *agx_shape_name(agx_shape s)
{
    switch (s) {
    case AGX_SHAPE_UNARY: return "unary";
    case AGX_SHAPE_STREAM: return "stream";
    case AGX_SHAPE_BIDI: return "bidi";
    }
    return "unknown";
}

const char *agx_type_name(agx_type t)
{
    static const char *const names[] = {"any",    "nil",    "bool",  "int", "number",
                                         "string", "binary", "array", "map"};
    return (unsigned)t < AGX_ARRAY_LEN(names) ? names[t] : "unknown";
}

const agx_value *agx_ctx_args(agx_ctx *ctx) { return ctx ? ctx->ops->args(ctx) : NULL; }

const agx_value *agx_ctx_arg(agx_ctx *ctx, const char *name)
{
    return name ? agx_value_map_get(agx_ctx_args(ctx), name) : NULL;
}

int agx_ctx_emit(agx_ctx *ctx, agx_value *item)
{
    if (!ctx) {
        agx_value_free(item);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    return ctx->ops->emit(ctx, item);
}

int agx_ctx_recv(agx_ctx *ctx, int timeout_ms, agx_value **item)
{
    if (!ctx || !item)
        return AGX_ERR_INVALID_ARGUMENT;
    *item = NULL;
    return ctx->ops->recv(ctx, timeout_ms, item);
}

bool agx_ctx_cancelled(agx_ctx *ctx) { return ctx && ctx->ops->cancelled(ctx); }

int agx_ctx_cancel_fd(agx_ctx *ctx) { return ctx ? ctx->ops->cancel_fd(ctx) : -1; }

int agx_ctx_return(agx_ctx *ctx, agx_value *value)
{
    if (!ctx) {
        agx_value_free(value);
        return AGX_ERR_INVALID_ARGUMENT;
    }
    return ctx->ops->ret(ctx, value);
}

int agx_ctx_fail(agx_ctx *ctx, const char *type, const char *fmt, ...)
{
    char message[AGX_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    return ctx ? ctx->ops->fail(ctx, type, message) : AGX_ERR_INVALID_ARGUMENT;
}
