/* runtime_channel.h (internal) — the open runtime connections this process may extend a sandbox's
 * expiry over (the `expiry` event, docs/PROTOCOL.md §1.1). The RPC client (runtime/client, a layer
 * above this one) registers each connection it opens to a sandbox; agx_runtime_expiry_extend
 * (runtime_expiry.c), which the background renewal and the backends' extend_sandbox use, sends
 * the extension over one of them when there is one and falls back to POST /expiry otherwise — so
 * a sandbox with a client open costs no extra request per renewal, and one without stays
 * renewable. Thread-safe. */
#ifndef AGX_CORE_HOST_RUNTIME_CHANNEL_H
#define AGX_CORE_HOST_RUNTIME_CHANNEL_H

#include <stdint.h>

#include "agentix/deployment.h"
#include "agentix/error.h"

/* Extends the expiry to now + expiry_ms over the connection ctx, answering by deadline_ms (an
 * agx_clock_ms() instant). 0, or an error (the caller then tries POST /expiry). */
typedef int (*agx_runtime_channel_fn)(void *ctx, int64_t expiry_ms, int64_t deadline_ms,
                                      agx_error *err);
/* Drops the registry's hold on ctx: called once, after agx_runtime_channel_remove and after any
 * extension in flight over it has returned. */
typedef void (*agx_runtime_channel_release_fn)(void *ctx);

/* Registers a connection to the sandbox with this id and runtime URL. Returns its handle, or 0
 * (nothing registered, release not called) when out of memory or an argument is missing. */
uint64_t agx_runtime_channel_add(const char *sandbox_id, const char *runtime_url,
                                 agx_runtime_channel_fn extend,
                                 agx_runtime_channel_release_fn release, void *ctx);
/* Unregisters a handle (0 and unknown handles are no-ops); never waits. */
void agx_runtime_channel_remove(uint64_t handle);

/* Extends sb's expiry over a registered connection to it, newest first. 0 when one answered;
 * AGX_ERR_NOT_FOUND when none is registered or none could extend it (err untouched then). */
int agx_runtime_channel_extend(const agx_sandbox *sb, int64_t expiry_ms, int64_t deadline_ms);

/* Extensions over a connection and by POST /expiry so far (agx_renewal_stats). */
void agx_runtime_channel_counts(uint64_t *over_connection, uint64_t *over_http);
void agx_runtime_channel_count_http(void);

#endif
