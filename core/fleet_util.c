/* fleet_util.c — the small machinery fleets, pools and maps share on the host side: a monotonic
 * clock with condition variables on it, a bounded parallel-for over indices, and the rule that
 * tells a dead sandbox from a failed task. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/fleet_internal.h"

int64_t agx_fleet_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void agx_fleet_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

int64_t agx_fleet_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : agx_fleet_now_ms() + timeout_ms;
}

int agx_fleet_cond_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    if (deadline_ms < 0)
        return pthread_cond_wait(cv, mu);
    if (agx_fleet_now_ms() >= deadline_ms)
        return ETIMEDOUT;
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    return pthread_cond_timedwait(cv, mu, &ts);
}

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

void agx_fleet_parallel(size_t n, size_t parallelism, agx_parallel_fn fn, void *user)
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

bool agx_fleet_error_is_dead_sandbox(int rc, const agx_error *err)
{
    if (rc == AGX_ERR_UNAVAILABLE)
        return true;
    return rc == AGX_ERR_REMOTE && err && strcmp(err->remote_type, "WorkerExited") == 0;
}

/* lws 4.1.6 contexts are not safe to create while another thread creates or destroys one (seen
 * under memcheck: lws_create_context crashing in uv_poll_start, a dial aborted on a freed wsi), so
 * the clients fleets, pools and maps open and close take turns. A connect or close is a few ms;
 * sandbox creates dominate. */
static pthread_mutex_t client_mu = PTHREAD_MUTEX_INITIALIZER;

int agx_fleet_client_connect(const agx_sandbox *sb, const agx_client_options *opts,
                             agx_client **out, agx_error *err)
{
    pthread_mutex_lock(&client_mu);
    int rc = agx_client_connect_sandbox(sb, opts, out, err);
    pthread_mutex_unlock(&client_mu);
    return rc;
}

void agx_fleet_client_free(agx_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&client_mu);
    agx_client_free(c);
    pthread_mutex_unlock(&client_mu);
}
