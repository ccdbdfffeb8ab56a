/* demo.c — the `demo` test module the worker, server, client and example tests call through the
 * whole chain (host → server → worker → here): one function per shape and per failure mode. The
 * names and signatures are relied on by other engineers' tests; keep them exactly. */
#include "agentix/module.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t arg_int(agx_ctx *ctx, const char *name) { return agx_value_get_int64(agx_ctx_arg(ctx, name)); }

/* Waits up to ms for the call to be cancelled; true when it was. ms < 0 waits for cancellation. */
static bool wait_cancel_fd(agx_ctx *ctx, int ms)
{
    struct pollfd p = {.fd = agx_ctx_cancel_fd(ctx), .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, ms);
    while (rc < 0 && errno == EINTR);
    return rc > 0;
}

static int add(agx_ctx *ctx)
{
    return agx_ctx_return(ctx, agx_value_int(arg_int(ctx, "a") + arg_int(ctx, "b")));
}

static int echo(agx_ctx *ctx) { return agx_ctx_return(ctx, agx_value_copy(agx_ctx_arg(ctx, "value"))); }

static int sleep_ms(agx_ctx *ctx)
{
    int64_t ms = arg_int(ctx, "ms");
    if (ms < 0 || ms > 86400000)
        return agx_ctx_fail(ctx, "ValueError", "ms must be in 0..86400000, got %lld", (long long)ms);
    if (wait_cancel_fd(ctx, (int)ms))
        return AGX_ERR_CANCELLED;
    return agx_ctx_return(ctx, agx_value_int(ms));
}

static int fail(agx_ctx *ctx)
{
    return agx_ctx_fail(ctx, agx_value_get_string(agx_ctx_arg(ctx, "type"), NULL), "%s",
                        agx_value_get_string(agx_ctx_arg(ctx, "message"), NULL));
}

static int crash(agx_ctx *ctx)
{
    const char *how = agx_value_get_string(agx_ctx_arg(ctx, "how"), NULL);
    if (strcmp(how, "segv") == 0)
        raise(SIGSEGV);
    else if (strcmp(how, "abort") == 0)
        abort();
    else if (strcmp(how, "exit") == 0)
        _exit(3);
    return agx_ctx_fail(ctx, "ValueError", "how must be \"segv\", \"abort\" or \"exit\", got \"%s\"", how);
}

static int count(agx_ctx *ctx)
{
    int64_t n = arg_int(ctx, "n"), size = arg_int(ctx, "size");
    if (n < 0 || size < 0 || size > (64 << 20))
        return agx_ctx_fail(ctx, "ValueError", "n must be >= 0 and size in 0..64 MiB");
    char *data = calloc(1, (size_t)size + 1);
    if (!data)
        return agx_ctx_fail(ctx, "MemoryError", "cannot allocate %lld bytes", (long long)size);
    int rc = 0;
    for (int64_t i = 0; i < n && rc == 0; i++) {
        memset(data, 'a' + (int)(i % 26), (size_t)size);
        agx_value *item = agx_value_map();
        agx_value_map_set(item, "i", agx_value_int(i));
        agx_value_map_set(item, "data", agx_value_binary(data, (size_t)size));
        rc = agx_ctx_emit(ctx, item);
    }
    free(data);
    return rc;
}

static int produce_bytes(agx_ctx *ctx)
{
    int64_t total = arg_int(ctx, "total"), chunk = arg_int(ctx, "chunk");
    if (total < 0 || chunk <= 0 || chunk > (16 << 20))
        return agx_ctx_fail(ctx, "ValueError", "total must be >= 0 and chunk in 1..16 MiB");
    char *data = malloc((size_t)chunk);
    if (!data)
        return agx_ctx_fail(ctx, "MemoryError", "cannot allocate %lld bytes", (long long)chunk);
    for (int64_t i = 0; i < chunk; i++)
        data[i] = (char)(i * 31 + 7);
    int rc = 0;
    for (int64_t sent = 0; sent < total && rc == 0; sent += chunk) {
        size_t len = (size_t)(total - sent < chunk ? total - sent : chunk);
        rc = agx_ctx_emit(ctx, agx_value_binary(data, len));
    }
    free(data);
    return rc;
}

/* Emits one item, then blocks until cancelled and leaves proof of it in `path` (when given), so
 * tests can tell that cancellation reached the function and not only the frames. */
static int wait_cancel(agx_ctx *ctx)
{
    int rc = agx_ctx_emit(ctx, agx_value_string("waiting"));
    if (rc)
        return rc;
    if (!wait_cancel_fd(ctx, -1))
        return agx_ctx_fail(ctx, "RuntimeError", "cancel fd failed");
    const char *path = agx_value_get_string(agx_ctx_arg(ctx, "path"), NULL);
    if (path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t n = write(fd, "cancelled\n", 10);
            (void)n;
            close(fd);
        }
    }
    return AGX_ERR_CANCELLED;
}

static int echo_bidi(agx_ctx *ctx)
{
    agx_value *item;
    int rc;
    while ((rc = agx_ctx_recv(ctx, -1, &item)) == 1)
        if ((rc = agx_ctx_emit(ctx, item)) != 0)
            return rc;
    return rc;
}

static int sum_bidi(agx_ctx *ctx)
{
    agx_value *item;
    int64_t sum = 0;
    int rc;
    while ((rc = agx_ctx_recv(ctx, -1, &item)) == 1) {
        sum += agx_value_get_int64(item);
        agx_value_free(item);
        if ((rc = agx_ctx_emit(ctx, agx_value_int(sum))) != 0)
            return rc;
    }
    return rc;
}

static const agx_param add_params[] = {{"a", AGX_TYPE_INT, NULL}, {"b", AGX_TYPE_INT, "1"}};
static const agx_param echo_params[] = {{"value", AGX_TYPE_ANY, NULL}};
static const agx_param sleep_params[] = {{"ms", AGX_TYPE_INT, NULL}};
static const agx_param fail_params[] = {{"type", AGX_TYPE_STRING, NULL}, {"message", AGX_TYPE_STRING, NULL}};
static const agx_param crash_params[] = {{"how", AGX_TYPE_STRING, NULL}};
static const agx_param count_params[] = {{"n", AGX_TYPE_INT, NULL}, {"size", AGX_TYPE_INT, "0"}};
static const agx_param produce_params[] = {{"total", AGX_TYPE_INT, NULL}, {"chunk", AGX_TYPE_INT, NULL}};
static const agx_param wait_cancel_params[] = {{"path", AGX_TYPE_STRING, "null"}};

static const agx_function functions[] = {
    {.name = "add", .shape = AGX_SHAPE_UNARY, .fn = add, .params = add_params,
     .n_params = AGX_ARRAY_LEN(add_params), .result_type = AGX_TYPE_INT, .doc = "a + b"},
    AGX_FUNCTION("echo", AGX_SHAPE_UNARY, echo, echo_params, AGX_TYPE_ANY),
    AGX_FUNCTION("sleep", AGX_SHAPE_UNARY, sleep_ms, sleep_params, AGX_TYPE_INT),
    AGX_FUNCTION("fail", AGX_SHAPE_UNARY, fail, fail_params, AGX_TYPE_NIL),
    AGX_FUNCTION("crash", AGX_SHAPE_UNARY, crash, crash_params, AGX_TYPE_NIL),
    AGX_FUNCTION("count", AGX_SHAPE_STREAM, count, count_params, AGX_TYPE_MAP),
    AGX_FUNCTION("produce_bytes", AGX_SHAPE_STREAM, produce_bytes, produce_params, AGX_TYPE_BINARY),
    AGX_FUNCTION("wait_cancel", AGX_SHAPE_STREAM, wait_cancel, wait_cancel_params, AGX_TYPE_STRING),
    AGX_FUNCTION_NOARGS("echo_bidi", AGX_SHAPE_BIDI, echo_bidi, AGX_TYPE_ANY),
    {.name = "sum_bidi", .shape = AGX_SHAPE_BIDI, .fn = sum_bidi, .result_type = AGX_TYPE_INT,
     .input_type = AGX_TYPE_INT, .doc = "running sum of the ints sent in"},
};
AGX_MODULE("demo", functions);
