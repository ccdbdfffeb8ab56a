/* pool.c — a warm pool over any deployment (host → backend): refill jobs on the engine's blocking
 * pool (engine.h) keep K sandboxes created, connected (agx_client) and registered, at most
 * refill_parallelism at once; acquire hands one out after a health check, replacing any that fail
 * it; release deletes it or returns it clean. Invariant: once settled, ready == K — refills and
 * a clean release count the creates in flight, and a create that lands in a full pool is
 * deleted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fleet/fleet_internal.h"
#include "runtime/client/engine_run.h"

struct agx_lease {
    agx_sandbox *sb;
    agx_owned *owned;
    agx_client *client;
    agx_lease *prev, *next; /* every live lease of the pool, ready or handed out */
    agx_lease *qnext;       /* ready queue, oldest first */
};

struct agx_pool {
    agx_deployment *dep;
    agx_sandbox_config *cfg; /* with owner labels */
    agx_pool_options opts;
    char *probe;
    pthread_mutex_t mu;
    pthread_cond_t ready_cv;  /* a lease became ready, or the pool stops */
    pthread_cond_t refill_cv; /* a refill job ended, or the pool stops */
    agx_lease *all;
    agx_lease *q_head, *q_tail;
    agx_pool_stats st;
    bool stop;
    atomic_int cancel;
    agx_error last_err;   /* of the last failed refill, while creates keep failing */
    bool failing;
    int64_t retry_at;     /* refills pause until then after a failure */
    agx_engine *engine;   /* whose pool runs the refills (the default engine) */
    size_t jobs;          /* refill jobs queued or running */
};

const agx_sandbox *agx_lease_sandbox(const agx_lease *l)
{
    return l ? l->sb : NULL;
}

agx_client *agx_lease_client(agx_lease *l)
{
    return l ? l->client : NULL;
}

void agx_pool_options_init(agx_pool_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    agx_retry_policy_defaults(&opts->retry);
    opts->probe_target = "agentix.bash::run";
    opts->health_timeout_ms = 2000;
    opts->connect_timeout_ms = 10000;
}

/* ---- leases ---- */

static int lease_destroy(agx_lease *l, agx_error *err)
{
    if (!l)
        return 0;
    agx_client_free(l->client);
    int rc = agx_owner_delete(l->owned, err);
    agx_sandbox_free(l->sb);
    free(l);
    return rc;
}

/* Any answer to describe(probe) but a transport failure proves the runtime serves: NotFound does. */
static bool probe_answers(agx_pool *p, agx_lease *l, agx_error *err)
{
    agx_value *d = NULL;
    agx_error e;
    int rc = agx_client_describe(l->client, p->probe, p->opts.health_timeout_ms, &d, &e);
    agx_value_free(d);
    bool ok = !(rc == AGX_ERR_UNAVAILABLE || rc == AGX_ERR_TIMEOUT || rc == AGX_ERR_CANCELLED ||
                rc == AGX_ERR_PROTOCOL || rc == AGX_ERR_IO);
    if (!ok)
        agx_error_copy(err, &e);
    return ok;
}

static int lease_make(agx_pool *p, agx_lease **out, agx_error *err)
{
    *out = NULL;
    agx_lease *l = calloc(1, sizeof *l);
    if (!l)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory for a pool sandbox");
    unsigned attempts;
    int rc = agx_fleet_create_one(p->dep, p->cfg, &p->opts.retry, &p->cancel, &l->sb, &l->owned,
                                  &attempts, err);
    if (rc == 0) {
        agx_client_options co;
        agx_client_options_init(&co);
        co.connect_timeout_ms = p->opts.connect_timeout_ms;
        rc = agx_client_connect_sandbox(l->sb, &co, &l->client, err);
        if (rc)
            agx_error_prefix(err, "new sandbox %s refused a client (deleted)", agx_sandbox_id(l->sb));
    }
    /* The first call starts the runtime's worker: pay for it here, not in acquire. */
    if (rc == 0 && p->probe && !probe_answers(p, l, err)) {
        rc = err ? err->code : AGX_ERR_UNAVAILABLE;
        agx_error_prefix(err, "new sandbox %s failed its health check (deleted)", agx_sandbox_id(l->sb));
    }
    if (rc) {
        lease_destroy(l, NULL);
        return rc;
    }
    *out = l;
    return 0;
}

/* Called with p->mu held. */
static void link_ready_locked(agx_pool *p, agx_lease *l)
{
    l->qnext = NULL;
    if (p->q_tail)
        p->q_tail->qnext = l;
    else
        p->q_head = l;
    p->q_tail = l;
    p->st.ready++;
    pthread_cond_broadcast(&p->ready_cv);
}

static void unlink_all_locked(agx_pool *p, agx_lease *l)
{
    if (l->prev)
        l->prev->next = l->next;
    else if (p->all == l)
        p->all = l->next;
    if (l->next)
        l->next->prev = l->prev;
    l->prev = l->next = NULL;
}

/* ---- refill ---- */

static void refill_job(void *arg);

/* Queues refill jobs while the pool is short (counting creates in flight) and fewer than
 * refill_parallelism jobs exist (p->mu held). Every job that ends calls it again. */
static void refill_kick_locked(agx_pool *p)
{
    while (!p->stop && p->st.ready + p->st.creating < p->opts.size &&
           p->jobs < p->opts.refill_parallelism) {
        p->st.creating++;
        p->jobs++;
        if (agx_engine_run(p->engine, refill_job, NULL, NULL, p, NULL) != 0) {
            p->st.creating--;
            p->jobs--;
            break; /* the next release or acquire tries again */
        }
    }
}

/* One sandbox for the pool (on a pool thread): after a failed create it first waits out the
 * pause, so a backend that keeps refusing is not hammered. */
static void refill_job(void *arg)
{
    agx_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop && agx_clock_ms() < p->retry_at)
        agx_cond_wait_until(&p->refill_cv, &p->mu, p->retry_at);
    agx_lease *l = NULL;
    int rc = AGX_ERR_CANCELLED;
    agx_error e;
    agx_error_clear(&e);
    if (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        rc = lease_make(p, &l, &e);
        pthread_mutex_lock(&p->mu);
    }
    p->st.creating--;
    if (rc == 0 && !p->stop && p->st.ready >= p->opts.size) {
        /* A clean release filled the pool meanwhile: K stays K. */
        pthread_mutex_unlock(&p->mu);
        lease_destroy(l, NULL);
        pthread_mutex_lock(&p->mu);
        p->st.created++;
        p->st.deleted++;
    } else if (rc == 0 && !p->stop) {
        l->next = p->all;
        if (p->all)
            p->all->prev = l;
        p->all = l;
        p->st.created++;
        p->failing = false;
        link_ready_locked(p, l);
    } else if (rc == 0) {
        pthread_mutex_unlock(&p->mu);
        lease_destroy(l, NULL); /* made while the pool was being freed: ours to delete */
        pthread_mutex_lock(&p->mu);
    } else if (!p->stop) {
        p->st.create_failures++;
        p->failing = true;
        agx_error_copy(&p->last_err, &e);
        int pause = p->opts.retry.max_backoff_ms > 0 ? p->opts.retry.max_backoff_ms : 1000;
        p->retry_at = agx_clock_ms() + pause;
        pthread_cond_broadcast(&p->ready_cv);
    }
    p->jobs--;
    refill_kick_locked(p);
    pthread_cond_broadcast(&p->refill_cv);
    pthread_mutex_unlock(&p->mu);
}

static void pool_release_memory(agx_pool *p)
{
    free(p->probe);
    agx_sandbox_config_free(p->cfg);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->ready_cv);
    pthread_cond_destroy(&p->refill_cv);
    free(p);
}

/* Stops refilling and waits for the jobs in flight (a create under way finishes, bounded by the
 * backend's timeout, and its sandbox is deleted). */
static void stop_refills(agx_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    atomic_store(&p->cancel, 1);
    pthread_cond_broadcast(&p->refill_cv);
    pthread_cond_broadcast(&p->ready_cv);
    while (p->jobs)
        pthread_cond_wait(&p->refill_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int agx_pool_new(agx_deployment *dep, const agx_sandbox_config *cfg, const agx_pool_options *opts,
                 agx_pool **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_pool_new: out is NULL");
    *out = NULL;
    if (!dep || !opts || opts->struct_size != sizeof *opts)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_pool_new: a deployment and options from agx_pool_options_init "
                             "are required");
    if (opts->size == 0 || opts->size > 10000)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "pool size %zu is out of range (1..10000)",
                             opts->size);
    agx_pool *p = calloc(1, sizeof *p);
    if (!p)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating a pool");
    p->dep = dep;
    p->opts = *opts;
    p->opts.run_id = NULL;
    p->opts.probe_target = NULL;
    if (!p->opts.refill_parallelism)
        p->opts.refill_parallelism = opts->size < 4 ? opts->size : 4;
    if (p->opts.health_timeout_ms <= 0)
        p->opts.health_timeout_ms = 2000;
    pthread_mutex_init(&p->mu, NULL);
    agx_cond_init(&p->ready_cv);
    agx_cond_init(&p->refill_cv);
    atomic_init(&p->cancel, 0);
    int rc = agx_owner_config(cfg, opts->run_id, &p->cfg, err);
    if (rc == 0 && opts->probe_target && !(p->probe = strdup(opts->probe_target)))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating a pool");
    if (rc == 0 && !(p->engine = agx_engine_default(err)))
        rc = err ? err->code : AGX_ERR_UNAVAILABLE;
    if (rc == 0) {
        pthread_mutex_lock(&p->mu);
        refill_kick_locked(p);
        bool none = p->jobs == 0;
        pthread_mutex_unlock(&p->mu);
        if (none)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot queue the pool's refills");
    }
    if (rc) {
        agx_pool_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* Connected, and (with a probe) the runtime answers a describe. */
static bool lease_healthy(agx_pool *p, agx_lease *l)
{
    return agx_client_is_connected(l->client) && (!p->probe || probe_answers(p, l, NULL));
}

static int acquire_timeout(agx_pool *p, int timeout_ms, agx_error *err)
{
    if (p->failing)
        return agx_error_set(err, AGX_ERR_TIMEOUT,
                             "no pool sandbox became ready within %d ms; creates are failing: %s",
                             timeout_ms, p->last_err.message);
    return agx_error_set(err, AGX_ERR_TIMEOUT,
                         "no pool sandbox became ready within %d ms (%zu being created, %zu leased)",
                         timeout_ms, p->st.creating, p->st.leased);
}

int agx_pool_acquire(agx_pool *p, int timeout_ms, agx_lease **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_pool_acquire: out is NULL");
    *out = NULL;
    if (!p)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_pool_acquire: pool is NULL");
    int64_t deadline = agx_deadline_ms(timeout_ms);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->q_head && !p->stop)
            if (timeout_ms == 0 ||
                agx_cond_wait_until(&p->ready_cv, &p->mu, deadline) == ETIMEDOUT) {
                int rc = acquire_timeout(p, timeout_ms, err);
                pthread_mutex_unlock(&p->mu);
                return rc;
            }
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            return agx_error_set(err, AGX_ERR_CANCELLED, "the pool is being freed");
        }
        agx_lease *l = p->q_head;
        p->q_head = l->qnext;
        if (!p->q_head)
            p->q_tail = NULL;
        p->st.ready--;
        p->st.leased++;
        refill_kick_locked(p);
        pthread_mutex_unlock(&p->mu);
        if (lease_healthy(p, l)) {
            *out = l;
            return 0;
        }
        pthread_mutex_lock(&p->mu);
        p->st.unhealthy++;
        p->st.leased--;
        unlink_all_locked(p, l);
        pthread_mutex_unlock(&p->mu);
        lease_destroy(l, NULL);
        pthread_mutex_lock(&p->mu);
        p->st.deleted++;
    }
}

int agx_pool_release(agx_pool *p, agx_lease *l, bool clean, agx_error *err)
{
    if (!p || !l)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_pool_release: pool and lease are required");
    pthread_mutex_lock(&p->mu);
    p->st.leased--;
    /* Back to the ready set only if the refills in flight will not fill it anyway: a settled pool
     * holds exactly K. */
    if (clean && !p->stop && p->st.ready + p->st.creating < p->opts.size &&
        agx_client_is_connected(l->client)) {
        link_ready_locked(p, l);
        pthread_mutex_unlock(&p->mu);
        return 0;
    }
    unlink_all_locked(p, l);
    refill_kick_locked(p);
    pthread_mutex_unlock(&p->mu);
    int rc = lease_destroy(l, err);
    pthread_mutex_lock(&p->mu);
    p->st.deleted++;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

int agx_pool_failing_code(agx_pool *p, agx_error *why)
{
    pthread_mutex_lock(&p->mu);
    int code = p->failing ? p->last_err.code : 0;
    if (code && why)
        agx_error_copy(why, &p->last_err);
    pthread_mutex_unlock(&p->mu);
    return code;
}

void agx_pool_stats_get(agx_pool *p, agx_pool_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

int agx_pool_wait_ready(agx_pool *p, size_t ready, int timeout_ms, agx_error *err)
{
    if (!p)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_pool_wait_ready: pool is NULL");
    if (ready > p->opts.size)
        ready = p->opts.size;
    int64_t deadline = agx_deadline_ms(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&p->mu);
    while (p->st.ready < ready && !p->stop)
        if (agx_cond_wait_until(&p->ready_cv, &p->mu, deadline) == ETIMEDOUT) {
            rc = acquire_timeout(p, timeout_ms, err);
            break;
        }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

static void destroy_slot(void *user, size_t i)
{
    agx_lease **all = user;
    lease_destroy(all[i], NULL);
}

void agx_pool_free(agx_pool *p)
{
    if (!p)
        return;
    stop_refills(p);
    size_t n = 0;
    for (agx_lease *l = p->all; l; l = l->next)
        n++;
    agx_lease **all = n ? calloc(n, sizeof *all) : NULL;
    size_t k = 0;
    for (agx_lease *l = p->all, *next; l; l = next) {
        next = l->next;
        if (all)
            all[k++] = l;
        else
            lease_destroy(l, NULL); /* no memory for the list: one at a time */
    }
    p->all = NULL;
    agx_fleet_parallel(k, 8, destroy_slot, all);
    free(all);
    pool_release_memory(p);
}
