/* pool.c — the threads calls run on: one per call in flight (a blocking function must not stall
 * the others), reused when idle, at most WK_MAX_THREADS; calls beyond that wait in FIFO order. */
#include "runtime/worker/worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void wk_pool_init(wk_pool *p)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
}

static void *pool_thread(void *arg)
{
    wk_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (!p->head)
            break;
        wk_call *c = p->head;
        p->queued--;
        p->head = c->next;
        if (!p->head)
            p->tail = NULL;
        c->next = NULL;
        pthread_mutex_unlock(&p->mu);
        wk_call_run(c);
        pthread_mutex_lock(&p->mu);
    }
    p->n_threads--; /* counts running threads; the slot stays for the join */
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

bool wk_pool_submit(wk_pool *p, wk_call *c)
{
    bool queued = true;
    pthread_mutex_lock(&p->mu);
    c->next = NULL;
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
    p->queued++;
    /* A signalled thread stays counted as idle until it wakes, so two calls arriving together
     * would both pick the same idle thread; compare the queue with the idle threads instead, and
     * start another thread whenever the idle ones cannot cover what is queued. */
    if (p->idle > 0)
        pthread_cond_signal(&p->cv);
    if (p->queued > p->idle && p->started < WK_MAX_THREADS) {
        int rc = pthread_create(&p->threads[p->started], NULL, pool_thread, p);
        if (rc == 0) {
            p->started++;
            p->n_threads++;
        } else if (p->n_threads == 0) {
            /* No thread will ever take it (and so it is the only one queued): hand it back. */
            fprintf(stderr, "agentix-worker: cannot start a thread: %s\n", strerror(rc));
            p->head = p->tail = NULL;
            p->queued = 0;
            queued = false;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return queued;
}

bool wk_pool_stop(wk_pool *p, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    int rc = 0;
    while (p->n_threads > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&p->cv, &p->mu, &deadline);
    bool all = p->n_threads == 0;
    pthread_mutex_unlock(&p->mu);
    if (!all)
        return false;
    for (size_t i = 0; i < p->started; i++)
        pthread_join(p->threads[i], NULL);
    return true;
}
