/* clock.c — the monotonic clock, deadlines, resumed sleeps and monotonic condition variables
 * (clock.h) that every wait in agentix goes through, host and sandbox side. */
#include "agentix/clock.h"

#include <errno.h>
#include <stddef.h>

static int64_t ms_of(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t agx_clock_ms(void) { return ms_of(CLOCK_MONOTONIC); }

int64_t agx_clock_wall_ms(void) { return ms_of(CLOCK_REALTIME); }

int64_t agx_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void agx_clock_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int64_t agx_deadline_ms(int64_t timeout_ms)
{
    return timeout_ms < 0 ? -1 : agx_clock_ms() + timeout_ms;
}

int64_t agx_deadline_left_ms(int64_t deadline_ms)
{
    if (deadline_ms < 0)
        return -1;
    int64_t left = deadline_ms - agx_clock_ms();
    return left > 0 ? left : 0;
}

int64_t agx_time_parse_ms(const char *s)
{
    struct tm tm = {0};
    const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (!rest)
        return 0;
    time_t t = timegm(&tm);
    if (t < 0 || t > 253402300799) /* beyond year 9999 (or before 1970): not a time APIs mean */
        return 0;
    int64_t ms = (int64_t)t * 1000;
    if (*rest == '.') /* milliseconds: the first three fraction digits */
        for (int i = 1, scale = 100; i <= 3 && rest[i] >= '0' && rest[i] <= '9'; i++, scale /= 10)
            ms += (rest[i] - '0') * scale;
    return ms > 0 ? ms : 0;
}

int agx_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc)
        return rc;
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (!rc)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

int agx_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t deadline_ms)
{
    if (deadline_ms < 0)
        return pthread_cond_wait(cv, mu);
    if (agx_clock_ms() >= deadline_ms)
        return ETIMEDOUT;
    struct timespec ts = {.tv_sec = (time_t)(deadline_ms / 1000),
                          .tv_nsec = (long)(deadline_ms % 1000) * 1000000L};
    return pthread_cond_timedwait(cv, mu, &ts);
}
