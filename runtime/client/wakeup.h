/* wakeup.h (internal) — how a host thread blocked on one call (agx_call_next, a bidi send waiting
 * for credit, a blocking unary) is woken by the I/O thread or another host thread: an event
 * count and a futex instead of a pthread condition variable.
 *
 * Why: glibc's pthread_cond_wait takes the mutex back in its "contended" state, so the waiter's
 * next unlock always makes a futex wake call, woken or not. On a stream whose host reads as fast
 * as items arrive, that was one of the host thread's two system calls per item. Here the
 * waiter takes the lock back normally, and a wake costs a system call only while someone sleeps.
 *
 * The rules are a condition variable's: the predicate is changed with the mutex held (the wake may
 * come after the unlock), the waiter checks it with the mutex held and waits in a loop, and
 * spurious wakeups happen. */
#ifndef AGX_RUNTIME_CLIENT_WAKEUP_H
#define AGX_RUNTIME_CLIENT_WAKEUP_H

#include <pthread.h>
#include <stdint.h>

typedef struct agx_wakeup {
    uint32_t seq;      /* bumped by every wake: what a sleeper's futex waits to change */
    uint32_t sleepers; /* threads inside agx_wakeup_wait */
} agx_wakeup;          /* all zero = ready; nothing to destroy */

/* Wakes every thread waiting on w. Any thread, mutex held or not. */
void agx_wakeup_all(agx_wakeup *w);

/* With mu held: releases it, sleeps until woken or deadline_ms (agx_clock_ms; -1 = none), takes
 * it back. 0 when woken (or spuriously), ETIMEDOUT when the deadline passed. */
int agx_wakeup_wait(agx_wakeup *w, pthread_mutex_t *mu, int64_t deadline_ms);

#endif
