/* owner_internal.h (internal) — what the signal cleanup (owner_cleanup.c) and gc (gc.c) need from
 * the owner registry (owner.c). */
#ifndef AGX_CORE_OWNER_INTERNAL_H
#define AGX_CORE_OWNER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

const char *agx_owner_host(void); /* gethostname(), read once */
/* Claims and deletes every registered sandbox not being deleted already (8 at a time); returns how
 * many were deleted. Handles stay with their owners, marked done. */
size_t agx_owner_sweep(void);
/* While closing, creates cannot begin and landing creates are deleted at once. */
void agx_owner_set_closing(bool closing);
/* Waits until no create is in flight or the deadline passes; returns how many are left. */
size_t agx_owner_wait_inflight(int64_t deadline_ms);

#endif
