/* client_expiry.c — a connection to a sandbox as a way to extend the sandbox's expiry (host
 * renewal → core/host/runtime_channel.h → here → the `expiry` event): agx_client_connect_sandbox
 * registers each client it returns, agx_client_free unregisters it. The registry holds a
 * reference on the client, so an extension in flight while the host frees its handle ends on a
 * closed client (and falls back to POST /expiry) instead of touching freed memory. */
#include <stdint.h>

#include "agentix/clock.h"
#include "core/host/runtime_channel.h"
#include "runtime/client/client_impl.h"

#define EXTEND_MAX_MS 10000 /* as POST /expiry's bound */

static int extend_over(void *ctx, int64_t expiry_ms, int64_t deadline_ms, agx_error *err)
{
    agx_client *c = ctx;
    if (!agx_client_is_connected(c)) /* not yet, or no more: POST /expiry, at once */
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "not connected");
    int64_t left = deadline_ms - agx_clock_ms();
    if (left <= 0)
        return agx_error_set(err, AGX_ERR_TIMEOUT, "no time left");
    return agx_client_extend_expiry(c, expiry_ms, left < EXTEND_MAX_MS ? (int)left : EXTEND_MAX_MS,
                                    NULL, err);
}

static void release(void *ctx)
{
    agx_client *c = ctx;
    agx_client_lock(c);
    c->refs--; /* the channel's hold; agx_client_unlock frees the client at zero */
    agx_client_unlock(c);
}

void agx_client_channel_register(agx_client *c, const agx_sandbox *sb)
{
    agx_client_lock(c);
    c->refs++;
    agx_client_unlock(c);
    c->channel = agx_runtime_channel_add(agx_sandbox_id(sb), agx_sandbox_runtime_url(sb),
                                         extend_over, release, c);
    if (!c->channel)
        release(c);
}

void agx_client_channel_unregister(agx_client *c)
{
    uint64_t h = c->channel;
    c->channel = 0;
    agx_runtime_channel_remove(h);
}
