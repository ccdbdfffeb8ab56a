/* renewer.h (internal) — the process-wide table of sandboxes whose expiry this process extends
 * (renewer.c): agx_deployment_create adds each sandbox it returns, agx_deployment_delete removes
 * it, and a few background threads extend every one every third of its expiry through
 * agx_deployment_extend (the backend's extend_sandbox, else the runtime's POST /expiry). When the
 * process dies the extensions stop and every sandbox ends itself within one expiry. Entries are
 * keyed by the deployment's name and the sandbox id; one reported gone, or left unextended past
 * its expiry, leaves the table (with its admission slot). */
#ifndef AGX_CORE_HOST_RENEWER_H
#define AGX_CORE_HOST_RENEWER_H

#include <stddef.h>
#include <stdint.h>

#include "agentix/deployment.h"

#define AGX_RENEWER_THREADS_MAX 8

/* Starts extending sb (copied) through dep (its reference is taken: the deployment's instance
 * lives until its last tracked sandbox is untracked). slot: the admission slot the sandbox holds
 * (-1 none), given back when the sandbox is untracked. Out of memory: not tracked (the sandbox
 * then ends at its first expiry) and 0 returned after giving the slot back. */
int agx_renewer_track(agx_deployment *dep, const agx_sandbox *sb, int64_t expiry_ms, int slot);
/* Stops extending backend/id (backend: the deployment's name; after a delete succeeded); waits
 * for an extension in flight.
 * Unknown ids are a no-op. */
void agx_renewer_untrack(const char *backend, const char *id);
/* agx_renewal_stats_get (deployment.h) reads the table's counts. */

#endif
