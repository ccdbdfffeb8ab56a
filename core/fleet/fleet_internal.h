/* fleet_internal.h (internal) — what fleets, pools and maps share: the create-with-retries step
 * (fleet_create.c), the fleet internals the map uses, and the error rule and the parallel-for on
 * the engine's blocking pool of fleet_util.c. Below them: the owner registry of the host library
 * (and its agx_parallel_fn type). */
#ifndef AGX_CORE_FLEET_INTERNAL_H
#define AGX_CORE_FLEET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "agentix/clock.h"
#include "agentix/fleet.h"
#include "core/host/owner.h"
#include "core/host/parallel.h"

/* ---- one sandbox with retries (fleet_create.c) ---- */
void agx_retry_policy_defaults(agx_retry_policy *rp);
/* Creates one sandbox from cfg (owner labels already in it), retrying retriable errors with
 * backoff; registers it. *cancel (may be NULL) stops waiting between attempts. *attempts counts
 * the creates tried. On failure *sb and *owned are NULL and nothing is left. */
int agx_fleet_create_one(agx_deployment *dep, const agx_sandbox_config *cfg,
                         const agx_retry_policy *rp, atomic_int *cancel, agx_sandbox **sb,
                         agx_owned **owned, unsigned *attempts, agx_error *err);

/* ---- fleet internals the map uses ---- */
agx_deployment *agx_fleet_deployment(agx_fleet *f);
/* Ready item indices into idx (capacity n); returns how many. */
size_t agx_fleet_ready_items(agx_fleet *f, size_t *idx, size_t n);

/* Runs fn(user, i) for every i in [0, n) on up to min(parallelism, n) lanes: the caller's and
 * lanes on the default engine's blocking pool (so at most that pool's size run at once); when
 * lanes cannot start, fewer (at least the caller's) run every index (fleet_util.c). */
void agx_fleet_parallel(size_t n, size_t parallelism, agx_parallel_fn fn, void *user);

/* The code of the pool's last failed refill while creates keep failing (its error into why when
 * not NULL), else 0 (pool.c). */
int agx_pool_failing_code(agx_pool *p, agx_error *why);

/* Whether an error means the sandbox (or its worker) died: retry elsewhere. */
bool agx_fleet_error_is_dead_sandbox(int rc, const agx_error *err);

#endif
