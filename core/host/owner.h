/* owner.h (internal) — the registry of sandboxes this process owns (owner.c): what fleets, pools
 * and maps (core/fleet) create through, what the SIGINT/SIGTERM cleanup (owner_cleanup.c) empties
 * and what gc (gc.c) judges owners by. The owner labels themselves are public
 * (agentix/backend/labels.h). */
#ifndef AGX_CORE_HOST_OWNER_H
#define AGX_CORE_HOST_OWNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/backend/labels.h"
#include "agentix/deployment.h"
#include "agentix/error.h"

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
/* The ownership record of one create (labels.h): a copy of cfg with the owner labels it lacks, a
 * fresh nonce, the expiry in force (the config's, else the default) and its agentix.expires label.
 * What agx_deployment_create hands the backend. */
int agx_owner_stamp(const agx_sandbox_config *cfg, agx_sandbox_config **out, agx_error *err);
/* $AGENTIX_EXPIRY_MS, validated, else AGX_EXPIRY_DEFAULT_MS. */
int agx_expiry_default_ms(int64_t *out, agx_error *err);
/* Adds the owner labels to a copy of cfg. */
int agx_owner_config(const agx_sandbox_config *cfg, const char *run_id, agx_sandbox_config **out,
                     agx_error *err);
/* Start time (field 22 of /proc/<pid>/stat) of pid; 0 when there is no such process. */
uint64_t agx_owner_proc_start(long pid);
bool agx_run_id_valid(const char *s);

const char *agx_owner_host(void); /* gethostname(), read once */
/* Claims and deletes every registered sandbox not being deleted already (8 at a time); returns how
 * many were deleted. Handles stay with their owners, marked done. */
size_t agx_owner_sweep(void);
/* While closing, creates cannot begin and landing creates are deleted at once. */
void agx_owner_set_closing(bool closing);
/* Waits until no create is in flight or the deadline (agx_clock_ms) passes; returns how many are
 * left. */
size_t agx_owner_wait_inflight(int64_t deadline_ms);

#endif
