/* parallel.c — a bounded parallel-for over indices (parallel.h): threads take the next index
 * from one atomic counter, the caller's thread among them. */
#include "core/host/parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

typedef struct parallel_run {
    agx_parallel_fn fn;
    void *user;
    size_t n;
    atomic_size_t next;
} parallel_run;

static void *parallel_worker(void *arg)
{
    parallel_run *r = arg;
    for (size_t i; (i = atomic_fetch_add(&r->next, 1)) < r->n;)
        r->fn(r->user, i);
    return NULL;
}

void agx_parallel_for(size_t n, size_t parallelism, agx_parallel_fn fn, void *user)
{
    if (n == 0)
        return;
    parallel_run r = {.fn = fn, .user = user, .n = n};
    atomic_init(&r.next, 0);
    size_t extra = (parallelism < n ? parallelism : n);
    extra = extra ? extra - 1 : 0;
    pthread_t *t = extra ? calloc(extra, sizeof *t) : NULL;
    size_t started = 0;
    for (; t && started < extra; started++)
        if (pthread_create(&t[started], NULL, parallel_worker, &r) != 0)
            break; /* fewer threads; the caller's one below still covers every index */
    parallel_worker(&r);
    for (size_t i = 0; i < started; i++)
        pthread_join(t[i], NULL);
    free(t);
}
