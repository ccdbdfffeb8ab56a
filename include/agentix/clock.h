/* clock.h — the one clock agentix waits by, for hosts, modules, backends and the runtime alike:
 * monotonic milliseconds, deadlines derived from timeouts, sleeps that resume after signals, and
 * condition variables that wait on the monotonic clock (a wall-clock jump never stretches or cuts
 * a wait). Part of libagentix-runtime; every function is thread-safe. */
#ifndef AGENTIX_CLOCK_H
#define AGENTIX_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Milliseconds of CLOCK_MONOTONIC: for measuring and deadlines, never for dates. */
AGX_API int64_t agx_clock_ms(void);
/* Microseconds of CLOCK_MONOTONIC: for measuring what takes less than a millisecond. */
AGX_API int64_t agx_clock_us(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME): for timestamps and ages. */
AGX_API int64_t agx_clock_wall_ms(void);
/* Sleeps ms (≤ 0 returns at once); a signal does not cut the sleep short. */
AGX_API void agx_clock_sleep_ms(int64_t ms);

/* The agx_clock_ms() deadline of a timeout: timeout_ms < 0 → -1 (none), else now + timeout_ms. */
AGX_API int64_t agx_deadline_ms(int64_t timeout_ms);
/* Milliseconds left until deadline_ms (0 when passed); -1 for the deadline -1 (none). */
AGX_API int64_t agx_deadline_left_ms(int64_t deadline_ms);

/* An RFC 3339 UTC time ("2026-11-22T02:00:48.320620497Z", as Docker, Kubernetes and cloud APIs
 * write them) → unix milliseconds (fraction digits past the third ignored); 0 when unparsable. */
AGX_API int64_t agx_time_parse_ms(const char *s);

/* Initialises cv to wait on CLOCK_MONOTONIC, as agx_cond_wait_until expects. 0 or an errno. */
AGX_API int agx_cond_init(pthread_cond_t *cv);
/* Waits on cv (initialised by agx_cond_init, mu held) until signalled or deadline_ms (an
 * agx_clock_ms() value; -1 = no deadline). 0 when woken (check your predicate: wakeups may be
 * spurious), ETIMEDOUT once the deadline has passed. */
AGX_API int agx_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms);

#ifdef __cplusplus
}
#endif
#endif
