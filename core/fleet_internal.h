/* fleet_internal.h (internal) — what fleets, pools, maps, cleanup and gc share: the registry of
 * sandboxes this process owns (owner.c), the create-with-retries step (fleet_create.c), clocks and
 * a small parallel-for (fleet_util.c). */
#ifndef AGX_CORE_FLEET_INTERNAL_H
#define AGX_CORE_FLEET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "agentix/fleet.h"

/* ---- clocks and waits ---- */
int64_t agx_fleet_now_ms(void); /* CLOCK_MONOTONIC */
/* Condition variables here run on CLOCK_MONOTONIC. */
void agx_fleet_cond_init(pthread_cond_t *cv);
/* Waits on cv until deadline_ms (agx_fleet_now_ms clock; <0 = forever). Returns ETIMEDOUT past it. */
int agx_fleet_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);
/* Deadline for a timeout: <0 → -1 (forever), else now + timeout. */
int64_t agx_fleet_deadline(int timeout_ms);

/* Runs fn(user, i) for every i in [0, n) on up to min(parallelism, n) lanes: the caller's and
 * lanes on the default engine's blocking pool (so at most that pool's size run at once); when
 * lanes cannot start, fewer (at least the caller's) run every index. */
typedef void (*agx_parallel_fn)(void *user, size_t i);
void agx_fleet_parallel(size_t n, size_t parallelism, agx_parallel_fn fn, void *user);

/* ---- registry of owned sandboxes (owner.c) ---- */
typedef struct agx_owned agx_owned;

/* Around every create: begin fails with AGX_ERR_CANCELLED once cleanup started; end pairs with a
 * successful begin. Cleanup waits for creates in flight. */
int agx_owner_create_begin(agx_error *err);
void agx_owner_create_end(void);
/* Registers a created sandbox. When cleanup has started, or memory runs out, the sandbox is
 * deleted at once and an error returned (*out NULL). */
int agx_owner_track(agx_deployment *dep, const char *sandbox_id, agx_owned **out, agx_error *err);
/* Deletes the sandbox exactly once (whoever — owner or cleanup thread — claims it first does the
 * delete; the other waits for it), unregisters and frees the handle. NULL is a no-op (0). When the
 * delete fails the sandbox stays registered (an unowned entry for cleanup) and the error is
 * returned; the handle is freed either way. */
int agx_owner_delete(agx_owned *o, agx_error *err);
/* Adds the owner labels to a copy of cfg. */
int agx_owner_config(const agx_sandbox_config *cfg, const char *run_id, agx_sandbox_config **out,
                     agx_error *err);
/* Start time (field 22 of /proc/<pid>/stat) of pid; 0 when there is no such process. */
uint64_t agx_owner_proc_start(long pid);
bool agx_run_id_valid(const char *s);

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

/* Whether an error means the sandbox (or its worker) died: retry elsewhere. */
bool agx_fleet_error_is_dead_sandbox(int rc, const agx_error *err);

#endif
