/* hostile.c — the `hostile` test module: functions that misbehave the way hostile or careless
 * module code does, for the attack tests (tests/attack/): one that ignores cancellation, one that
 * holds a large argument while it waits. */
#include "agentix/module.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

static int64_t arg_int(agx_ctx *ctx, const char *name) { return agx_value_get_int64(agx_ctx_arg(ctx, name)); }

/* Sleeps ms without ever looking at cancellation: the worker's thread stays stuck. */
static int ignore_cancel(agx_ctx *ctx)
{
    int64_t ms = arg_int(ctx, "ms");
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return agx_ctx_return(ctx, agx_value_int(ms));
}

/* Keeps its (large) argument alive until cancelled or ms pass; returns its size. */
static int hold(agx_ctx *ctx)
{
    size_t len = 0;
    agx_value_get_binary(agx_ctx_arg(ctx, "blob"), &len);
    struct pollfd p = {.fd = agx_ctx_cancel_fd(ctx), .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, (int)arg_int(ctx, "ms"));
    while (rc < 0 && errno == EINTR);
    if (rc > 0)
        return AGX_ERR_CANCELLED;
    return agx_ctx_return(ctx, agx_value_int((int64_t)len));
}

static const agx_param ignore_params[] = {{"ms", AGX_TYPE_INT, NULL}};
static const agx_param hold_params[] = {{"ms", AGX_TYPE_INT, NULL}, {"blob", AGX_TYPE_BINARY, NULL}};

static const agx_function functions[] = {
    AGX_FUNCTION("ignore_cancel", AGX_SHAPE_UNARY, ignore_cancel, ignore_params, AGX_TYPE_INT),
    AGX_FUNCTION("hold", AGX_SHAPE_UNARY, hold, hold_params, AGX_TYPE_INT),
};
AGX_MODULE("hostile", functions);
