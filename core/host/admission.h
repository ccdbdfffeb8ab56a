/* admission.h (internal) — admission control (admission.c; the public knobs are in deployment.h):
 * what agx_deployment_create waits for before it asks a backend for a sandbox. */
#ifndef AGX_CORE_HOST_ADMISSION_H
#define AGX_CORE_HOST_ADMISSION_H

#include <stdint.h>

#include "agentix/error.h"

/* Waits until backend has a free slot (when capped) and a create token (when rate-limited), until
 * deadline_ms (agx_clock_ms()). *slot: the slot held (-1 when uncapped). 0, or
 * AGX_ERR_RATE_LIMITED (retriable) naming what was waited for; AGX_ERR_IO/INVALID_ARGUMENT when
 * the state file or a knob is unusable. */
int agx_admission_acquire(const char *backend, int64_t deadline_ms, int *slot, agx_error *err);
/* Gives a slot back (slot < 0: no-op). */
void agx_admission_release(const char *backend, int slot);

#endif
