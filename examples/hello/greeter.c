/* greeter.c — a user module for the hello example: what a module author writes. The worker in the
 * sandbox dlopens greeter.so and calls these functions (host → server → worker → here). */
#include <agentix/module.h>

#include <stdio.h>
#include <string.h>

/* unary: greet(name, punctuation="!") -> "Hello, <name><punctuation>" */
static int greet(agx_ctx *ctx)
{
    const char *name = agx_value_get_string(agx_ctx_arg(ctx, "name"), NULL);
    const char *punct = agx_value_get_string(agx_ctx_arg(ctx, "punctuation"), NULL);
    char text[512];
    snprintf(text, sizeof text, "Hello, %s%s", name, punct);
    return agx_ctx_return(ctx, agx_value_string(text));
}

/* stream: countdown(from) yields from, from-1, …, 1 */
static int countdown(agx_ctx *ctx)
{
    int64_t from = agx_value_get_int64(agx_ctx_arg(ctx, "from"));
    if (from < 0 || from > 1000000)
        return agx_ctx_fail(ctx, "ValueError", "from must be in 0..1000000, got %lld", (long long)from);
    for (int64_t i = from; i > 0; i--) {
        int rc = agx_ctx_emit(ctx, agx_value_int(i));
        if (rc != 0)
            return rc; /* cancelled: stop producing */
    }
    return 0;
}

/* bidi: shout() upper-cases every string it receives until the host closes its side */
static int shout(agx_ctx *ctx)
{
    for (;;) {
        agx_value *in = NULL;
        int rc = agx_ctx_recv(ctx, -1, &in);
        if (rc <= 0)
            return rc; /* 0: end of input; < 0: cancelled */
        size_t len = 0;
        const char *s = agx_value_get_string(in, &len);
        char buf[1024];
        size_t n = len < sizeof buf ? len : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (s[i] >= 'a' && s[i] <= 'z') ? (char)(s[i] - 'a' + 'A') : s[i];
        agx_value_free(in);
        rc = agx_ctx_emit(ctx, agx_value_string_n(buf, n));
        if (rc != 0)
            return rc;
    }
}

static const agx_param greet_params[] = {
    {"name", AGX_TYPE_STRING, NULL},
    {"punctuation", AGX_TYPE_STRING, "\"!\""},
};
static const agx_param countdown_params[] = {
    {"from", AGX_TYPE_INT, NULL},
};
static const agx_function functions[] = {
    AGX_FUNCTION("greet", AGX_SHAPE_UNARY, greet, greet_params, AGX_TYPE_STRING),
    AGX_FUNCTION("countdown", AGX_SHAPE_STREAM, countdown, countdown_params, AGX_TYPE_INT),
    AGX_FUNCTION_NOARGS("shout", AGX_SHAPE_BIDI, shout, AGX_TYPE_STRING),
};
AGX_MODULE("greeter", functions);
