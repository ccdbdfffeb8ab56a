/* engine_pool.c — the engine's bounded pool of blocking threads (engine.h): sandbox create and
 * delete run here through the backends' synchronous vtable (agx_deployment_create / _delete), so
 * a host can ask for 1,000 creates from one thread: they queue FIFO and at most pool_threads run
 * at once. Threads start on demand and end after POOL_IDLE_SECS without work. The outcome is
 * delivered like every engine callback (engine.c): on the pool thread, or through the
 * completion queue. The fleet layer runs its creates and deletes here too (agx_engine_run). */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/client_impl.h"

#define POOL_IDLE_SECS 10

typedef struct engine_job {
    struct engine_job *next;
    agx_engine *e;
    agx_completion comp;
    void (*work)(void *arg);
    void (*done)(void *arg); /* delivered after work; NULL = nothing to deliver */
    void (*drop)(void *arg); /* frees arg at the end; NULL = nothing to free */
    void *arg;
} engine_job;

struct pool_slot {
    agx_engine *e;
    pthread_t tid;
    bool used, exited;
};

#define JOB_OF(k) ((engine_job *)((char *)(k) - offsetof(engine_job, comp)))

static void job_run(agx_completion *k)
{
    engine_job *j = JOB_OF(k);
    j->done(j->arg);
}

static void job_finish(engine_job *j)
{
    agx_engine *e = j->e;
    if (j->drop)
        j->drop(j->arg);
    free(j);
    pthread_mutex_lock(&e->pool_mu);
    e->jobs_open--;
    pthread_cond_broadcast(&e->pool_idle_cv);
    pthread_mutex_unlock(&e->pool_mu);
}

static void job_release(agx_completion *k) { job_finish(JOB_OF(k)); }

static void *pool_main(void *arg)
{
    pool_slot *slot = arg;
    agx_engine *e = slot->e;
    pthread_setname_np(pthread_self(), "agx-pool");
    agx_engine_block_sigpipe();
    pthread_mutex_lock(&e->pool_mu);
    for (;;) {
        int rc = 0;
        while (!e->jobs_head && !e->pool_stop && rc != ETIMEDOUT) {
            e->pool_waiting++;
            rc = agx_cond_wait_until(&e->pool_cv, &e->pool_mu,
                                     agx_deadline_ms(POOL_IDLE_SECS * 1000));
            e->pool_waiting--;
        }
        engine_job *j = e->jobs_head;
        if (!j)
            break; /* idle long enough, or stopping */
        e->jobs_head = j->next;
        if (!e->jobs_head)
            e->jobs_tail = NULL;
        pthread_mutex_unlock(&e->pool_mu);
        j->work(j->arg);
        if (j->done)
            agx_engine_deliver(e, &j->comp); /* a fresh completion: it takes the job */
        else
            job_finish(j);
        pthread_mutex_lock(&e->pool_mu);
    }
    e->pool_threads--;
    slot->exited = true; /* joined by the next submit or by the stop */
    pthread_cond_broadcast(&e->pool_idle_cv);
    pthread_mutex_unlock(&e->pool_mu);
    return NULL;
}

/* Joins threads that ended (pool_mu held; they have left their loop, so this is quick). */
static void reap_locked(agx_engine *e)
{
    for (unsigned i = 0; i < e->pool_max; i++)
        if (e->pool_slots[i].used && e->pool_slots[i].exited) {
            pthread_join(e->pool_slots[i].tid, NULL);
            e->pool_slots[i].used = e->pool_slots[i].exited = false;
        }
}

static int spawn_locked(agx_engine *e)
{
    reap_locked(e);
    for (unsigned i = 0; i < e->pool_max; i++) {
        pool_slot *slot = &e->pool_slots[i];
        if (slot->used)
            continue;
        slot->e = e;
        int rc = pthread_create(&slot->tid, NULL, pool_main, slot);
        if (rc == 0) {
            slot->used = true;
            e->pool_threads++;
        }
        return rc;
    }
    return EAGAIN;
}

int agx_engine_run(agx_engine *e, void (*work)(void *), void (*done)(void *),
                   void (*drop)(void *), void *arg, agx_error *err)
{
    engine_job *j = calloc(1, sizeof *j);
    if (!j)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    *j = (engine_job){.e = e, .work = work, .done = done, .drop = drop, .arg = arg};
    j->comp.run = job_run;
    j->comp.release = job_release;
    pthread_mutex_lock(&e->pool_mu);
    if (e->pool_stop) {
        pthread_mutex_unlock(&e->pool_mu);
        free(j);
        return agx_error_set(err, AGX_ERR_CANCELLED, "the engine is being freed");
    }
    if (!e->pool_waiting && e->pool_threads < e->pool_max) {
        int rc = spawn_locked(e);
        if (rc && e->pool_threads == 0) {
            pthread_mutex_unlock(&e->pool_mu);
            free(j);
            return agx_error_set(err, AGX_ERR_IO, "cannot start a pool thread: %s",
                                 strerror(rc));
        } /* else the threads there are take it in turn */
    }
    j->next = NULL;
    if (e->jobs_tail)
        e->jobs_tail->next = j;
    else
        e->jobs_head = j;
    e->jobs_tail = j;
    e->jobs_open++;
    pthread_cond_signal(&e->pool_cv);
    pthread_mutex_unlock(&e->pool_mu);
    return 0;
}

/* ---- sandbox create/delete ---- */

typedef struct sandbox_op {
    agx_deployment *dep;
    agx_sandbox_config *cfg; /* create */
    char *id;                /* delete */
    agx_create_cb ccb;
    agx_delete_cb dcb;
    void *user;
    int status;
    agx_sandbox *sb;
    agx_error err;
} sandbox_op;

static void op_work(void *arg)
{
    sandbox_op *o = arg;
    agx_error_clear(&o->err);
    if (o->ccb)
        o->status = agx_deployment_create(o->dep, o->cfg, &o->sb, &o->err);
    else
        o->status = agx_deployment_delete(o->dep, o->id, &o->err);
}

static void op_done(void *arg)
{
    sandbox_op *o = arg;
    if (o->ccb) {
        agx_sandbox *sb = o->sb;
        o->sb = NULL;
        o->ccb(o->user, o->status, sb, o->status ? &o->err : NULL);
    } else {
        o->dcb(o->user, o->status, o->status ? &o->err : NULL);
    }
}

static void op_free(void *arg)
{
    sandbox_op *o = arg;
    agx_sandbox_free(o->sb);
    agx_sandbox_config_free(o->cfg);
    free(o->id);
    free(o);
}

int agx_deployment_create_async(agx_engine *e, agx_deployment *dep, const agx_sandbox_config *cfg,
                                agx_create_cb cb, void *user, agx_error *err)
{
    if (!dep || !cfg || !cb)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_deployment_create_async: no deployment, config or callback");
    if (!(e = agx_engine_resolve(e, err)))
        return err ? err->code : AGX_ERR_UNAVAILABLE;
    sandbox_op *o = calloc(1, sizeof *o);
    if (!o || !(o->cfg = agx_sandbox_config_copy(cfg))) {
        free(o);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    o->dep = dep;
    o->ccb = cb;
    o->user = user;
    int rc = agx_engine_run(e, op_work, op_done, op_free, o, err);
    if (rc)
        op_free(o);
    return rc;
}

int agx_deployment_delete_async(agx_engine *e, agx_deployment *dep, const char *id,
                                agx_delete_cb cb, void *user, agx_error *err)
{
    if (!dep || !id || !cb)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_deployment_delete_async: no deployment, id or callback");
    if (!(e = agx_engine_resolve(e, err)))
        return err ? err->code : AGX_ERR_UNAVAILABLE;
    sandbox_op *o = calloc(1, sizeof *o);
    if (!o || !(o->id = strdup(id))) {
        free(o);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    o->dep = dep;
    o->dcb = cb;
    o->user = user;
    int rc = agx_engine_run(e, op_work, op_done, op_free, o, err);
    if (rc)
        op_free(o);
    return rc;
}

pool_slot *agx_engine_pool_slots(unsigned n) { return calloc(n, sizeof(pool_slot)); }

void agx_engine_pool_stop(agx_engine *e)
{
    pthread_mutex_lock(&e->pool_mu);
    /* Jobs already asked for still run; their callbacks still come (through the queue: processed
     * here, on the freeing thread). */
    while (e->jobs_open) {
        if (e->delivery == AGX_DELIVER_QUEUE) {
            pthread_mutex_unlock(&e->pool_mu);
            agx_engine_process(e, 0, 100);
            pthread_mutex_lock(&e->pool_mu);
        } else {
            pthread_cond_wait(&e->pool_idle_cv, &e->pool_mu);
        }
    }
    e->pool_stop = true;
    pthread_cond_broadcast(&e->pool_cv);
    while (e->pool_threads)
        pthread_cond_wait(&e->pool_idle_cv, &e->pool_mu);
    reap_locked(e);
    pthread_mutex_unlock(&e->pool_mu);
}
