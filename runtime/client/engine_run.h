/* engine_run.h (internal) — running blocking work on an engine's pool, for the other parts of
 * libagentix (the fleet layer's creates and deletes, core/fleet/). */
#ifndef AGX_RUNTIME_CLIENT_ENGINE_RUN_H
#define AGX_RUNTIME_CLIENT_ENGINE_RUN_H

#include "agentix/engine.h"

/* Queues work(arg) on e's pool (FIFO; at most pool_threads run at once). After it, done(arg) is
 * delivered like every engine callback (on the pool thread, or through the completion queue);
 * done NULL = nothing is delivered (the work reports its outcome itself). Then drop(arg) runs
 * (NULL = nothing to free). Returns 0, or an error with nothing queued. */
int agx_engine_run(agx_engine *e, void (*work)(void *), void (*done)(void *), void (*drop)(void *),
                   void *arg, agx_error *err);

#endif
