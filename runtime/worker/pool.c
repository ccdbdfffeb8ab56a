/* pool.c — the threads calls run on: one per call in flight (a blocking function must not stall
 * the others), reused when idle, at most WK_MAX_THREADS; calls beyond that wait in FIFO order.
 * Idle threads form a LIFO stack of mailboxes: a submitted call goes straight to the most
 * recently idle thread and wakes only it (no shared condition variable, no thundering herd of
 * threads re-taking the pool lock); a thread that finishes a call takes queued work first. */
#include "runtime/worker/worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void wk_pool_init(wk_pool *p)
{
    memset(p, 0, sizeof *p);
    p->max_threads = WK_MAX_THREADS;
    pthread_mutex_init(&p->mu, NULL);
    agx_cond_init(&p->cv);
}

static wk_call *queue_pop(wk_pool *p)
{
    wk_call *c = p->head;
    if (c) {
        p->head = c->next;
        if (!p->head)
            p->tail = NULL;
        c->next = NULL;
    }
    return c;
}

/* Sleeps until submit hands a call over (returned) or stop wakes it (NULL). */
static wk_call *slot_wait(wk_slot *s)
{
    while (sem_wait(&s->wake) != 0 && errno == EINTR) {
    }
    wk_call *c = s->call;
    s->call = NULL;
    return c;
}

static void *pool_thread(void *arg)
{
    wk_slot *s = arg;
    wk_pool *p = s->pool;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        wk_call *c = queue_pop(p);
        if (!c) {
            if (p->stopping)
                break;
            s->next_idle = p->idle;
            p->idle = s;
            pthread_mutex_unlock(&p->mu);
            c = slot_wait(s);
            if (c)
                wk_call_run(c);
            pthread_mutex_lock(&p->mu);
            continue;
        }
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
    c->next = NULL;
    pthread_mutex_lock(&p->mu);
    wk_slot *s = p->idle;
    if (s) {
        p->idle = s->next_idle;
        s->call = c;
        pthread_mutex_unlock(&p->mu);
        sem_post(&s->wake);
        return true;
    }
    if (p->tail)
        p->tail->next = c;
    else
        p->head = c;
    p->tail = c;
    if (p->started < p->max_threads) {
        s = &p->slots[p->started];
        s->pool = p;
        sem_init(&s->wake, 0, 0);
        int rc = pthread_create(&p->threads[p->started], NULL, pool_thread, s);
        if (rc == 0) {
            p->started++;
            p->n_threads++;
        } else {
            sem_destroy(&s->wake);
            if (p->n_threads == 0) {
                /* No thread will ever take it (and so it is the only one queued): hand it back. */
                fprintf(stderr, "agentix-worker: cannot start a thread: %s\n", strerror(rc));
                p->head = p->tail = NULL;
                queued = false;
            }
        }
    }
    pthread_mutex_unlock(&p->mu);
    return queued;
}

bool wk_pool_stop(wk_pool *p, int timeout_ms)
{
    int64_t deadline = agx_deadline_ms(timeout_ms);
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    for (wk_slot *s = p->idle; s; s = s->next_idle)
        sem_post(&s->wake); /* call is NULL: wakes it to see `stopping` */
    p->idle = NULL;
    int rc = 0;
    while (p->n_threads > 0 && rc != ETIMEDOUT)
        rc = agx_cond_wait_until(&p->cv, &p->mu, deadline);
    bool all = p->n_threads == 0;
    pthread_mutex_unlock(&p->mu);
    if (!all)
        return false;
    for (size_t i = 0; i < p->started; i++) {
        pthread_join(p->threads[i], NULL);
        sem_destroy(&p->slots[i].wake);
    }
    return true;
}
