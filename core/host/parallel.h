/* parallel.h (internal) — a bounded parallel-for over indices (parallel.c), for work that fans out
 * to a backend: the owner registry's sweep, fleets' creates and deletes. */
#ifndef AGX_CORE_HOST_PARALLEL_H
#define AGX_CORE_HOST_PARALLEL_H

#include <stddef.h>

/* Runs fn(user, i) for every i in [0, n) on up to min(parallelism, n) threads, the caller's
 * among them; when threads cannot start, fewer (at least the caller's) run every index. */
typedef void (*agx_parallel_fn)(void *user, size_t i);
void agx_parallel_for(size_t n, size_t parallelism, agx_parallel_fn fn, void *user);

#endif
