/* fleet_util.c — the small machinery fleets, pools and maps share on the host side: the rule that
 * tells a dead sandbox from a failed task, and a bounded parallel-for whose lanes run on the
 * engine's blocking pool. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/fleet/fleet_internal.h"
#include "runtime/client/engine_run.h"

bool agx_fleet_error_is_dead_sandbox(int rc, const agx_error *err)
{
    if (rc == AGX_ERR_UNAVAILABLE)
        return true;
    return rc == AGX_ERR_REMOTE && err && strcmp(err->remote_type, AGX_REMOTE_WORKER_EXITED) == 0;
}

/* The lanes of one parallel-for. Heap-held and counted: a lane still queued on the pool when the
 * caller is done finds the run closed and only lets go of it. */
typedef struct parallel_run {
    agx_parallel_fn fn;
    void *user;
    size_t n;
    atomic_size_t next;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs, running;
    bool closed;
} parallel_run;

static void run_unref_unlock(parallel_run *r)
{
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (last) {
        pthread_mutex_destroy(&r->mu);
        pthread_cond_destroy(&r->cv);
        free(r);
    }
}

static void run_indices(parallel_run *r)
{
    for (size_t i; (i = atomic_fetch_add(&r->next, 1)) < r->n;)
        r->fn(r->user, i);
}

static void lane(void *arg)
{
    parallel_run *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->closed) {
        run_unref_unlock(r);
        return;
    }
    r->running++;
    pthread_mutex_unlock(&r->mu);
    run_indices(r);
    pthread_mutex_lock(&r->mu);
    r->running--;
    pthread_cond_broadcast(&r->cv);
    run_unref_unlock(r);
}

/* The lanes run on the default engine's blocking pool (engine.h), the caller's own lane beside
 * them: progress never depends on a free pool thread, so a fleet created from a pool thread (a
 * create callback, agx_fleet_create_async) cannot wait for itself. */
void agx_fleet_parallel(size_t n, size_t parallelism, agx_parallel_fn fn, void *user)
{
    if (n == 0)
        return;
    parallel_run *r = calloc(1, sizeof *r);
    if (!r) { /* no memory for the bookkeeping: the caller does it all */
        for (size_t i = 0; i < n; i++)
            fn(user, i);
        return;
    }
    r->fn = fn;
    r->user = user;
    r->n = n;
    atomic_init(&r->next, 0);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->refs = 1;
    size_t extra = (parallelism < n ? parallelism : n);
    extra = extra ? extra - 1 : 0;
    agx_engine *e = extra ? agx_engine_default(NULL) : NULL;
    for (size_t k = 0; e && k < extra; k++) {
        pthread_mutex_lock(&r->mu);
        r->refs++;
        pthread_mutex_unlock(&r->mu);
        if (agx_engine_run(e, lane, NULL, NULL, r, NULL) != 0) {
            pthread_mutex_lock(&r->mu);
            r->refs--;
            pthread_mutex_unlock(&r->mu);
            break; /* fewer lanes; the caller's still covers every index */
        }
    }
    run_indices(r);
    pthread_mutex_lock(&r->mu);
    r->closed = true;
    while (r->running)
        pthread_cond_wait(&r->cv, &r->mu);
    run_unref_unlock(r);
}
