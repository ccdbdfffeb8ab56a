/* fleet_create.c — one sandbox for a fleet or a pool (host → backend): create through the
 * deployment, retry what the backend marks retriable with jittered exponential backoff, and
 * register the result in the owner registry before anyone else sees it. */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/fleet/fleet_internal.h"

void agx_retry_policy_defaults(agx_retry_policy *rp)
{
    rp->max_attempts = 4;
    rp->initial_backoff_ms = 250;
    rp->max_backoff_ms = 8000;
}

/* ±25 %, so many creates refused together do not come back together. */
static int jittered(int ms)
{
    unsigned r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (unsigned)agx_clock_ms();
    int span = ms / 2;
    return span > 0 ? ms - ms / 4 + (int)(r % (unsigned)(span + 1)) : ms;
}

/* Sleeps ms in short slices; returns 1 when cancelled meanwhile. */
static int nap(int ms, atomic_int *cancel)
{
    int64_t end = agx_clock_ms() + ms;
    for (int64_t left; (left = end - agx_clock_ms()) > 0;) {
        if (cancel && atomic_load(cancel))
            return 1;
        agx_clock_sleep_ms(left < 50 ? left : 50);
    }
    return cancel && atomic_load(cancel);
}

static int attempt(agx_deployment *dep, const agx_sandbox_config *cfg, agx_sandbox **sb,
                   agx_owned **owned, agx_error *e)
{
    int rc = agx_owner_create_begin(e);
    if (rc)
        return rc;
    agx_sandbox *s = NULL;
    rc = agx_deployment_create(dep, cfg, &s, e);
    if (rc == 0) {
        rc = agx_owner_track(dep, agx_sandbox_id(s), owned, e);
        if (rc)
            agx_sandbox_free(s);
        else
            *sb = s;
    }
    agx_owner_create_end();
    return rc;
}

int agx_fleet_create_one(agx_deployment *dep, const agx_sandbox_config *cfg,
                         const agx_retry_policy *rp, atomic_int *cancel, agx_sandbox **sb,
                         agx_owned **owned, unsigned *attempts, agx_error *err)
{
    *sb = NULL;
    *owned = NULL;
    *attempts = 0;
    unsigned max = rp->max_attempts ? rp->max_attempts : 1;
    int backoff = rp->initial_backoff_ms > 0 ? rp->initial_backoff_ms : 1;
    agx_error e;
    agx_error_clear(&e);
    for (;;) {
        if (cancel && atomic_load(cancel))
            return agx_error_set(err, AGX_ERR_CANCELLED, "create cancelled%s%s",
                                 *attempts ? " while retrying: " : "", *attempts ? e.message : "");
        (*attempts)++;
        int rc = attempt(dep, cfg, sb, owned, &e);
        if (rc == 0)
            return 0;
        if (!e.retriable || *attempts >= max || rc == AGX_ERR_CANCELLED) {
            if (*attempts > 1)
                agx_error_prefix(&e, "after %u attempts", *attempts);
            agx_error_copy(err, &e);
            return rc;
        }
        if (nap(jittered(backoff), cancel)) {
            agx_error_copy(err, &e);
            agx_error_prefix(err, "create cancelled while retrying");
            if (err)
                err->code = AGX_ERR_CANCELLED;
            return AGX_ERR_CANCELLED;
        }
        int cap = rp->max_backoff_ms > 0 ? rp->max_backoff_ms : backoff;
        backoff = backoff > cap / 2 ? cap : backoff * 2;
    }
}
