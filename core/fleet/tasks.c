/* tasks.c — map M tasks over a fleet or a pool (host → agx_client → runtime in each sandbox):
 * P workers each hold one sandbox at a time, call the task's function, retry a task whose sandbox
 * died on a fresh one, and deliver results as they complete (callback or iterator). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fleet/fleet_internal.h"

#define CANCEL_GRACE_MS 10000 /* how long a closed client may take to fail its call */
#define ACQUIRE_SLICE_MS 250  /* pool waits are cut so a cancel is seen this fast */

typedef struct map_worker {
    agx_map *m;
    pthread_t thread;
    bool started;
    /* fleet: the item this worker uses, and its client */
    size_t item;
    bool has_item;
    agx_client *client;
    agx_error slot_err;
    /* pool: the current lease */
    agx_lease *lease;
    /* the call in flight (guarded by m->mu) */
    bool done;
    int status;
    agx_value *value;
    agx_error err;
} map_worker;

typedef struct result_node {
    agx_map_result *r;
    struct result_node *next;
} result_node;

struct agx_map {
    agx_map_options o;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* a result was delivered */
    pthread_cond_t call_cv; /* a call finished, or cancel */
    pthread_mutex_t cb_mu;  /* serialises on_result */
    atomic_size_t next_task;
    atomic_int cancel;
    size_t delivered;
    size_t live_workers;
    result_node *q_head, *q_tail;
    size_t failed;
    agx_map_result first_failure; /* task, status and err of the first failed task */
    map_worker *w;
    size_t n_workers;
};

void agx_map_options_init(agx_map_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->parallelism = 8;
    opts->max_attempts = 3;
    opts->acquire_timeout_ms = 600000;
}

void agx_map_result_free(agx_map_result *r)
{
    if (!r)
        return;
    agx_value_free(r->value);
    free(r);
}

/* ---- outcomes ---- */

/* How the last attempt ended, as the classifier needs it. */
typedef struct attempt_end {
    bool no_sandbox;  /* no sandbox could be had */
    int create_code;  /* then: the code of the create failure behind it (0 unknown) */
    bool dead;        /* the sandbox died under the call */
    bool bash;        /* the call was agentix.bash::run: its value says how the command ended */
} attempt_end;

static bool value_flag(const agx_value *v, const char *key)
{
    return agx_value_get_bool(agx_value_map_get(v, key));
}

/* Exactly one outcome per result; a returned call leaves no error behind. */
static void classify(agx_map_result *r, const attempt_end *a)
{
    if (r->status == AGX_ERR_CANCELLED) {
        r->outcome = AGX_OUTCOME_CANCELLED;
    } else if (a->no_sandbox) {
        r->outcome = r->status == AGX_ERR_RATE_LIMITED || a->create_code == AGX_ERR_RATE_LIMITED
                         ? AGX_OUTCOME_RATE_LIMITED
                         : AGX_OUTCOME_CREATE_FAILED;
    } else if (r->status == 0) {
        agx_error_clear(&r->err);
        r->outcome = AGX_OUTCOME_OK;
        if (a->bash && agx_value_type_of(r->value) == AGX_VALUE_MAP) {
            r->exit_code = (int)agx_value_get_int64(agx_value_map_get(r->value, "exit_code"));
            r->outcome = value_flag(r->value, "oom_killed")  ? AGX_OUTCOME_OOM
                         : value_flag(r->value, "timed_out") ? AGX_OUTCOME_TIMEOUT
                         : r->exit_code != 0                 ? AGX_OUTCOME_NONZERO_EXIT
                                                             : AGX_OUTCOME_OK;
        }
    } else if (a->dead) {
        r->outcome = AGX_OUTCOME_SANDBOX_LOST;
    } else if (r->status == AGX_ERR_TIMEOUT) {
        r->outcome = AGX_OUTCOME_TIMEOUT;
    } else {
        r->outcome = AGX_OUTCOME_REMOTE_ERROR;
    }
}

/* The code behind a failure to get a sandbox: the pool's last create error, or the fleet item's. */
static int create_code(map_worker *w)
{
    if (w->m->o.pool)
        return agx_pool_failing_code(w->m->o.pool, NULL);
    return w->slot_err.code;
}

/* ---- delivery ---- */

static void deliver(agx_map *m, agx_map_result *r)
{
    pthread_mutex_lock(&m->mu);
    if (r->status && m->failed++ == 0) {
        m->first_failure.task = r->task;
        m->first_failure.status = r->status;
        agx_error_copy(&m->first_failure.err, &r->err);
    }
    pthread_mutex_unlock(&m->mu);
    result_node *n = NULL;
    if (m->o.on_result) {
        pthread_mutex_lock(&m->cb_mu);
        m->o.on_result(m->o.result_user, r);
        pthread_mutex_unlock(&m->cb_mu);
        agx_map_result_free(r);
    } else if (!(n = malloc(sizeof *n))) {
        agx_map_result_free(r); /* cannot queue it: the count below still ends the map */
    }
    pthread_mutex_lock(&m->mu);
    if (n) {
        n->r = r;
        n->next = NULL;
        if (m->q_tail)
            m->q_tail->next = n;
        else
            m->q_head = n;
        m->q_tail = n;
    }
    m->delivered++;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

static void deliver_failure(agx_map *m, size_t task, int code, const agx_error *why)
{
    agx_map_result *r = calloc(1, sizeof *r);
    if (!r) {
        pthread_mutex_lock(&m->mu);
        m->delivered++;
        pthread_cond_broadcast(&m->cv);
        pthread_mutex_unlock(&m->mu);
        return;
    }
    r->task = task;
    r->status = code;
    agx_error_copy(&r->err, why);
    r->err.code = code;
    attempt_end end = {.no_sandbox = code != AGX_ERR_CANCELLED && code != AGX_ERR_NO_MEMORY};
    classify(r, &end);
    deliver(m, r);
}

/* ---- one call ---- */

static void on_call_done(void *user, int status, agx_value *result, const agx_error *err)
{
    map_worker *w = user;
    pthread_mutex_lock(&w->m->mu);
    w->status = status;
    w->value = result;
    if (status)
        agx_error_copy(&w->err, err);
    w->done = true;
    pthread_cond_broadcast(&w->m->call_cv);
    pthread_mutex_unlock(&w->m->mu);
}

static agx_client *worker_client(map_worker *w)
{
    return w->m->o.pool ? agx_lease_client(w->lease) : w->client;
}

/* Closes the worker's connection so the call in flight ends (its callback runs during the close),
 * and gives up the sandbox: a pool lease is deleted, a fleet item keeps its sandbox. */
static void abandon_sandbox(map_worker *w)
{
    agx_map *m = w->m;
    if (m->o.pool) {
        agx_pool_release(m->o.pool, w->lease, false, NULL);
        w->lease = NULL;
    } else {
        agx_client_free(w->client);
        w->client = NULL;
    }
    pthread_mutex_lock(&m->mu);
    int64_t deadline = agx_clock_ms() + CANCEL_GRACE_MS;
    while (!w->done && agx_cond_wait_until(&m->call_cv, &m->mu, deadline) != ETIMEDOUT) {
    }
    agx_value_free(w->value);
    w->value = NULL;
    pthread_mutex_unlock(&m->mu);
}

static int call_task(map_worker *w, const char *target, const agx_value *args,
                     const agx_value *kwargs, agx_value **value, agx_error *err)
{
    agx_map *m = w->m;
    pthread_mutex_lock(&m->mu);
    w->done = false;
    w->value = NULL;
    agx_error_clear(&w->err);
    pthread_mutex_unlock(&m->mu);
    int tmo = m->o.task_timeout_ms > 0 ? m->o.task_timeout_ms : -1;
    int rc = agx_client_call_async(worker_client(w), target, args, kwargs, tmo, on_call_done, w, err);
    if (rc)
        return rc;
    int64_t deadline = tmo > 0 ? agx_clock_ms() + tmo + CANCEL_GRACE_MS : -1;
    bool timed_out = false;
    pthread_mutex_lock(&m->mu);
    while (!w->done && !atomic_load(&m->cancel))
        if (agx_cond_wait_until(&m->call_cv, &m->mu, deadline) == ETIMEDOUT) {
            timed_out = true;
            break;
        }
    if (w->done) {
        rc = w->status;
        *value = w->value;
        w->value = NULL;
        if (rc)
            agx_error_copy(err, &w->err);
        pthread_mutex_unlock(&m->mu);
        return rc;
    }
    pthread_mutex_unlock(&m->mu);
    abandon_sandbox(w);
    if (timed_out)
        return agx_error_set(err, AGX_ERR_TIMEOUT, "task timed out after %d ms and the runtime "
                             "did not end the call; its connection was closed", tmo);
    return agx_error_set(err, AGX_ERR_CANCELLED, "task cancelled (agx_map_cancel)");
}

/* ---- getting and giving back a sandbox ---- */

static int take_sandbox(map_worker *w, const agx_sandbox **sb, agx_error *err)
{
    agx_map *m = w->m;
    if (m->o.pool) {
        /* In slices, so agx_map_cancel does not wait for a pool that cannot refill. */
        int64_t deadline = agx_deadline_ms(m->o.acquire_timeout_ms);
        int rc;
        for (;;) {
            int slice = ACQUIRE_SLICE_MS;
            bool last = false;
            if (deadline >= 0) {
                int64_t left = deadline - agx_clock_ms();
                if (left <= slice) {
                    slice = left > 0 ? (int)left : 0;
                    last = true;
                }
            }
            rc = agx_pool_acquire(m->o.pool, slice, &w->lease, err);
            if (rc != AGX_ERR_TIMEOUT || last)
                break;
            if (atomic_load(&m->cancel))
                return agx_error_set(err, AGX_ERR_CANCELLED, "task cancelled while waiting for a sandbox");
        }
        if (rc == AGX_ERR_TIMEOUT) {
            /* Say why in the pool's own terms, not the last slice's. */
            agx_error why;
            agx_error_clear(&why);
            if (agx_pool_failing_code(m->o.pool, &why))
                agx_error_set(err, AGX_ERR_TIMEOUT, "no sandbox from the pool within "
                              "acquire_timeout_ms=%d; creates are failing: %s",
                              m->o.acquire_timeout_ms, why.message);
            else
                agx_error_set(err, AGX_ERR_TIMEOUT, "no sandbox from the pool within "
                              "acquire_timeout_ms=%d", m->o.acquire_timeout_ms);
        }
        *sb = rc ? NULL : agx_lease_sandbox(w->lease);
        return rc;
    }
    if (!w->has_item) {
        agx_error_copy(err, &w->slot_err);
        return w->slot_err.code ? w->slot_err.code : AGX_ERR_UNAVAILABLE;
    }
    *sb = agx_fleet_sandbox(m->o.fleet, w->item);
    if (!*sb)
        return agx_error_set(err, AGX_ERR_CANCELLED, "the fleet was destroyed");
    if (w->client)
        return 0;
    int rc = agx_client_connect_sandbox(*sb, NULL, &w->client, err);
    if (rc)
        agx_error_prefix(err, "connecting to sandbox %s", agx_sandbox_id(*sb));
    return rc;
}

/* broken: the sandbox died or is in an unknown state — replace it (fleet) or delete it (pool). */
static void give_back(map_worker *w, bool broken)
{
    agx_map *m = w->m;
    if (m->o.pool) {
        if (w->lease)
            agx_pool_release(m->o.pool, w->lease, !broken && m->o.reuse, NULL);
        w->lease = NULL;
        return;
    }
    if (!broken)
        return;
    agx_client_free(w->client);
    w->client = NULL;
    if (atomic_load(&m->cancel) || !w->has_item)
        return;
    if (agx_fleet_replace(m->o.fleet, w->item, &w->slot_err) != 0) {
        agx_error_prefix(&w->slot_err, "replacing the dead sandbox of fleet item %zu", w->item);
        w->has_item = false;
    }
}

/* ---- tasks ---- */

static int build_call(agx_map *m, size_t task, unsigned attempt, const agx_sandbox *sb,
                      const char **target, agx_value **args, agx_value **kwargs, agx_error *err)
{
    *target = NULL;
    *args = *kwargs = NULL;
    if (m->o.build) {
        int rc = m->o.build(m->o.build_user, task, attempt, sb, target, args, kwargs, err);
        if (rc == 0 && !*target)
            rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "the map's build gave no target for task %zu", task);
        return rc;
    }
    *target = "agentix.bash::run";
    *kwargs = agx_value_map();
    if (!*kwargs || agx_value_map_set(*kwargs, "command", agx_value_string(m->o.commands[task])) != 0)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building task %zu", task);
    return 0;
}

static void run_task(map_worker *w, agx_map_result *r)
{
    agx_map *m = w->m;
    int64_t start = agx_clock_ms();
    unsigned max = m->o.max_attempts ? m->o.max_attempts : 1;
    attempt_end end = {0};
    for (;;) {
        agx_error_clear(&r->err);
        end = (attempt_end){0};
        if (atomic_load(&m->cancel)) {
            r->status = agx_error_set(&r->err, AGX_ERR_CANCELLED, "task cancelled before it ran");
            break;
        }
        const agx_sandbox *sb = NULL;
        int rc = take_sandbox(w, &sb, &r->err);
        if (rc) {
            /* A fleet sandbox that refuses a connection is dead: replace it and go on. */
            bool dead = !m->o.pool && w->has_item && sb;
            if (dead) {
                give_back(w, true);
                if (++r->attempts < max)
                    continue;
            }
            end.dead = dead;
            end.no_sandbox = !dead;
            end.create_code = create_code(w);
            r->status = rc;
            break;
        }
        snprintf(r->sandbox_id, sizeof r->sandbox_id, "%s", agx_sandbox_id(sb));
        if (atomic_load(&m->cancel)) {
            give_back(w, false);
            r->status = agx_error_set(&r->err, AGX_ERR_CANCELLED, "task cancelled before it ran");
            break;
        }
        const char *target;
        agx_value *args, *kwargs, *value = NULL;
        rc = build_call(m, r->task, r->attempts, sb, &target, &args, &kwargs, &r->err);
        r->attempts++;
        end.bash = rc == 0 && strcmp(target, "agentix.bash::run") == 0;
        if (rc == 0)
            rc = call_task(w, target, args, kwargs, &value, &r->err);
        agx_value_free(args);
        agx_value_free(kwargs);
        r->status = rc;
        if (rc == 0) {
            r->value = value;
            give_back(w, false);
            break;
        }
        bool dead = agx_fleet_error_is_dead_sandbox(rc, &r->err);
        end.dead = dead;
        bool unknown = dead || rc == AGX_ERR_TIMEOUT || rc == AGX_ERR_CANCELLED;
        give_back(w, unknown);
        if (!dead || r->attempts >= max || atomic_load(&m->cancel))
            break;
    }
    if (r->status && r->attempts > 1)
        agx_error_prefix(&r->err, "after %u attempts", r->attempts);
    classify(r, &end);
    r->duration_ms = agx_clock_ms() - start;
}

static void *worker_main(void *arg)
{
    map_worker *w = arg;
    agx_map *m = w->m;
    for (size_t t; (t = atomic_fetch_add(&m->next_task, 1)) < m->o.tasks;) {
        agx_map_result *r = calloc(1, sizeof *r);
        if (!r) {
            agx_error e;
            agx_error_set(&e, AGX_ERR_NO_MEMORY, "out of memory for task %zu's result", t);
            deliver_failure(m, t, AGX_ERR_NO_MEMORY, &e);
            continue;
        }
        r->task = t;
        run_task(w, r);
        deliver(m, r);
        if (!m->o.pool && !w->has_item)
            break; /* this worker's fleet item is gone; the others take the remaining tasks */
    }
    agx_client_free(w->client);
    w->client = NULL;
    pthread_mutex_lock(&m->mu);
    bool last = --m->live_workers == 0;
    pthread_mutex_unlock(&m->mu);
    if (last) {
        /* Every worker lost its sandbox: what nobody can run fails with the last reason. */
        agx_error e;
        if (atomic_load(&m->cancel))
            agx_error_set(&e, AGX_ERR_CANCELLED, "task cancelled before it ran");
        else
            agx_error_set(&e, AGX_ERR_UNAVAILABLE, "no sandbox left in the fleet to run it: %s",
                          w->slot_err.message);
        for (size_t t; (t = atomic_fetch_add(&m->next_task, 1)) < m->o.tasks;)
            deliver_failure(m, t, e.code, &e);
    }
    return NULL;
}

/* ---- the map ---- */

static int check_options(const agx_map_options *o, agx_error *err)
{
    if (!o || o->struct_size != sizeof *o)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_map_options not initialised: call agx_map_options_init");
    if (!o->fleet == !o->pool)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "a map runs over exactly one fleet or pool");
    if (!o->build == !o->commands)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "a map needs exactly one of build and commands");
    for (size_t i = 0; o->commands && i < o->tasks; i++)
        if (!o->commands[i])
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "commands[%zu] is NULL", i);
    if (o->task_timeout_ms < 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "task_timeout_ms is negative");
    return 0;
}

static void map_release(agx_map *m)
{
    for (result_node *n = m->q_head, *next; n; n = next) {
        next = n->next;
        agx_map_result_free(n->r);
        free(n);
    }
    free(m->w);
    pthread_mutex_destroy(&m->mu);
    pthread_mutex_destroy(&m->cb_mu);
    pthread_cond_destroy(&m->cv);
    pthread_cond_destroy(&m->call_cv);
    free(m);
}

static int assign_workers(agx_map *m, agx_error *err)
{
    size_t p = m->o.parallelism ? m->o.parallelism : 8;
    if (p > m->o.tasks)
        p = m->o.tasks;
    size_t *items = NULL;
    if (m->o.fleet) {
        size_t n = agx_fleet_size(m->o.fleet);
        items = calloc(n ? n : 1, sizeof *items);
        if (!items)
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory starting the map");
        n = agx_fleet_ready_items(m->o.fleet, items, n);
        if (n == 0 && m->o.tasks) {
            free(items);
            return agx_error_set(err, AGX_ERR_UNAVAILABLE, "the fleet holds no live sandbox to map over");
        }
        if (p > n)
            p = n;
    }
    m->w = calloc(p ? p : 1, sizeof *m->w);
    if (!m->w) {
        free(items);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory starting the map");
    }
    m->n_workers = p;
    for (size_t i = 0; i < p; i++) {
        m->w[i].m = m;
        if (items) {
            m->w[i].item = items[i];
            m->w[i].has_item = true;
        }
    }
    free(items);
    return 0;
}

int agx_map_start(const agx_map_options *opts, agx_map **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_map_start: out is NULL");
    *out = NULL;
    int rc = check_options(opts, err);
    if (rc)
        return rc;
    agx_map *m = calloc(1, sizeof *m);
    if (!m)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory starting the map");
    m->o = *opts;
    pthread_mutex_init(&m->mu, NULL);
    pthread_mutex_init(&m->cb_mu, NULL);
    agx_cond_init(&m->cv);
    agx_cond_init(&m->call_cv);
    atomic_init(&m->next_task, 0);
    atomic_init(&m->cancel, 0);
    rc = assign_workers(m, err);
    if (rc) {
        map_release(m);
        return rc;
    }
    m->live_workers = m->n_workers;
    for (size_t i = 0; i < m->n_workers; i++) {
        int e = pthread_create(&m->w[i].thread, NULL, worker_main, &m->w[i]);
        if (e) {
            pthread_mutex_lock(&m->mu);
            m->live_workers -= m->n_workers - i;
            pthread_mutex_unlock(&m->mu);
            if (i == 0) {
                map_release(m);
                return agx_error_set(err, AGX_ERR_IO, "starting a map worker: %s", strerror(e));
            }
            break; /* fewer workers; they take every task */
        }
        m->w[i].started = true;
    }
    *out = m;
    return 0;
}

int agx_map_next(agx_map *m, int timeout_ms, agx_map_result **out, agx_error *err)
{
    if (!m || !out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_map_next: map and out are required");
    *out = NULL;
    int64_t deadline = agx_deadline_ms(timeout_ms);
    pthread_mutex_lock(&m->mu);
    while (!m->q_head && m->delivered < m->o.tasks)
        if (agx_cond_wait_until(&m->cv, &m->mu, deadline) == ETIMEDOUT) {
            size_t done = m->delivered;
            pthread_mutex_unlock(&m->mu);
            return agx_error_set(err, AGX_ERR_TIMEOUT, "no task completed within %d ms (%zu of %zu done)",
                                 timeout_ms, done, m->o.tasks);
        }
    result_node *n = m->q_head;
    if (n) {
        m->q_head = n->next;
        if (!m->q_head)
            m->q_tail = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    if (!n)
        return 0;
    *out = n->r;
    free(n);
    return 1;
}

int agx_map_wait(agx_map *m, int timeout_ms, agx_error *err)
{
    if (!m)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_map_wait: map is NULL");
    int64_t deadline = agx_deadline_ms(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    while (m->delivered < m->o.tasks)
        if (agx_cond_wait_until(&m->cv, &m->mu, deadline) == ETIMEDOUT) {
            rc = agx_error_set(err, AGX_ERR_TIMEOUT, "the map did not finish within %d ms (%zu of %zu done)",
                               timeout_ms, m->delivered, m->o.tasks);
            break;
        }
    pthread_mutex_unlock(&m->mu);
    return rc;
}

void agx_map_cancel(agx_map *m)
{
    if (!m)
        return;
    atomic_store(&m->cancel, 1);
    pthread_mutex_lock(&m->mu);
    pthread_cond_broadcast(&m->call_cv);
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

size_t agx_map_completed(agx_map *m)
{
    if (!m)
        return 0;
    pthread_mutex_lock(&m->mu);
    size_t n = m->delivered;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void agx_map_free(agx_map *m)
{
    if (!m)
        return;
    if (agx_map_completed(m) < m->o.tasks)
        agx_map_cancel(m);
    for (size_t i = 0; i < m->n_workers; i++)
        if (m->w[i].started)
            pthread_join(m->w[i].thread, NULL);
    map_release(m);
}

int agx_map_run(const agx_map_options *opts, agx_error *err)
{
    agx_map *m = NULL;
    int rc = agx_map_start(opts, &m, err);
    if (rc)
        return rc;
    agx_map_wait(m, -1, NULL);
    if (m->failed) {
        rc = m->first_failure.status;
        agx_error_copy(err, &m->first_failure.err);
        agx_error_prefix(err, "%zu of %zu tasks failed; first: task %zu", m->failed, m->o.tasks,
                         m->first_failure.task);
    }
    agx_map_free(m);
    return rc;
}
