/* wakeup.c — the event count a host thread blocked on a call sleeps on (wakeup.h). A waiter reads
 * seq under the caller's mutex before releasing it, so a predicate change made after that (under
 * the same mutex) bumps seq after the read and the futex refuses to sleep on the old value; the
 * sleeper count, published before the wait and read after the bump (both sequentially
 * consistent), lets a waker skip the system call when nobody can be asleep. */
#include "runtime/client/wakeup.h"

#include "agentix/clock.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void agx_wakeup_all(agx_wakeup *w)
{
    __atomic_add_fetch(&w->seq, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&w->sleepers, __ATOMIC_SEQ_CST))
        syscall(SYS_futex, &w->seq, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

int agx_wakeup_wait(agx_wakeup *w, pthread_mutex_t *mu, int64_t deadline_ms)
{
    struct timespec at, *until = NULL;
    if (deadline_ms >= 0) {
        if (agx_clock_ms() >= deadline_ms)
            return ETIMEDOUT;
        /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time, agx_clock_ms's clock. */
        at = (struct timespec){.tv_sec = (time_t)(deadline_ms / 1000),
                               .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
        until = &at;
    }
    uint32_t seen = __atomic_load_n(&w->seq, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&w->sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(mu);
    long r = syscall(SYS_futex, &w->seq, FUTEX_WAIT_BITSET_PRIVATE, seen, until, NULL,
                     FUTEX_BITSET_MATCH_ANY);
    int e = r < 0 ? errno : 0;
    __atomic_sub_fetch(&w->sleepers, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(mu);
    return e == ETIMEDOUT ? ETIMEDOUT : 0; /* EAGAIN (seq moved) and EINTR are wakeups */
}
