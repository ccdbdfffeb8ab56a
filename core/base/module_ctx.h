/* module_ctx.h — how the agx_ctx_* calls a module makes (module.h) reach the worker that runs it:
 * libagentix-runtime holds the entry points (modules link it, not the worker executable) and
 * forwards each through the ops table the worker puts at the head of every call's context.
 *
 * Internal to libagentix-runtime (core/base) and agentix-worker. */
#ifndef AGX_RUNTIME_MODULE_CTX_H
#define AGX_RUNTIME_MODULE_CTX_H

#include "agentix/module.h"

typedef struct agx_ctx_ops {
    const agx_value *(*args)(agx_ctx *ctx);
    int (*emit)(agx_ctx *ctx, agx_value *item);
    int (*recv)(agx_ctx *ctx, int timeout_ms, agx_value **item);
    bool (*cancelled)(agx_ctx *ctx);
    int (*cancel_fd)(agx_ctx *ctx);
    int (*ret)(agx_ctx *ctx, agx_value *value);
    /* message is already formatted; returns the negative code agx_ctx_fail hands back */
    int (*fail)(agx_ctx *ctx, const char *type, const char *message);
} agx_ctx_ops;

/* The worker's per-call context starts with this (C's first-member rule makes the cast valid). */
struct agx_ctx {
    const agx_ctx_ops *ops;
};

#endif
