/* fleet.c — N sandboxes at once over any deployment (host → backend × N): bounded parallel
 * creates with retries (on the engine's blocking pool), all-or-nothing or best-effort, a destroy
 * that deletes each sandbox exactly once whichever threads call it, and the non-blocking forms
 * that report through the engine. */
#include <stdlib.h>
#include <string.h>

#include "core/fleet/fleet_internal.h"
#include "runtime/client/engine_run.h"

typedef struct fleet_item {
    agx_sandbox *sb;
    agx_owned *owned; /* non-NULL while the item holds a live, registered sandbox */
    int status;
    agx_error *err; /* only for items that failed: an agx_error is 2.6 KB */
    unsigned attempts;
} fleet_item;

struct agx_fleet {
    agx_deployment *dep;
    agx_sandbox_config *cfg; /* with owner labels */
    agx_fleet_options opts;
    pthread_mutex_t mu;         /* items, retired, destroyed */
    pthread_mutex_t destroy_mu; /* one destroy at a time; later ones find nothing left */
    pthread_mutex_t cb_mu;      /* serialises on_item */
    size_t n;
    fleet_item *items;
    agx_sandbox **retired; /* records of replaced sandboxes, freed with the fleet */
    size_t n_retired;
    atomic_int cancel;     /* destroy started, or an all-or-nothing create failed */
    size_t first_failed;   /* all-or-nothing: the failure that cancelled the rest */
    bool failed;
};

void agx_fleet_options_init(agx_fleet_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->parallelism = 8;
    opts->mode = AGX_FLEET_ALL_OR_NOTHING;
    agx_retry_policy_defaults(&opts->retry);
}

static void fleet_release(agx_fleet *f)
{
    for (size_t i = 0; f->items && i < f->n; i++) {
        agx_sandbox_free(f->items[i].sb);
        free(f->items[i].err);
    }
    for (size_t i = 0; i < f->n_retired; i++)
        agx_sandbox_free(f->retired[i]);
    free(f->retired);
    free(f->items);
    agx_sandbox_config_free(f->cfg);
    pthread_mutex_destroy(&f->mu);
    pthread_mutex_destroy(&f->destroy_mu);
    pthread_mutex_destroy(&f->cb_mu);
    free(f);
}

/* Called with f->mu held. Out of memory keeps the status, without its text. */
static void item_settle_locked(fleet_item *it, int rc, const agx_error *e)
{
    it->status = rc;
    if (rc == 0) {
        free(it->err);
        it->err = NULL;
        return;
    }
    if (!it->err)
        it->err = malloc(sizeof *it->err);
    if (it->err)
        agx_error_copy(it->err, e);
}

static void create_item(void *user, size_t i)
{
    agx_fleet *f = user;
    fleet_item *it = &f->items[i];
    agx_sandbox *sb = NULL;
    agx_owned *owned = NULL;
    unsigned attempts = 0;
    agx_error e;
    agx_error_clear(&e);
    int rc;
    if (atomic_load(&f->cancel))
        rc = agx_error_set(&e, AGX_ERR_CANCELLED, "not created: another item of the fleet failed");
    else
        rc = agx_fleet_create_one(f->dep, f->cfg, &f->opts.retry, &f->cancel, &sb, &owned,
                                  &attempts, &e);
    pthread_mutex_lock(&f->mu);
    it->sb = sb;
    it->owned = owned;
    it->attempts = attempts;
    item_settle_locked(it, rc, &e);
    if (rc && rc != AGX_ERR_CANCELLED && f->opts.mode == AGX_FLEET_ALL_OR_NOTHING && !f->failed) {
        f->failed = true;
        f->first_failed = i;
        atomic_store(&f->cancel, 1);
    }
    pthread_mutex_unlock(&f->mu);
    if (f->opts.on_item) {
        pthread_mutex_lock(&f->cb_mu);
        f->opts.on_item(f->opts.user, i, rc, rc ? &e : NULL);
        pthread_mutex_unlock(&f->cb_mu);
    }
}

static int check_options(const agx_fleet_options *o, agx_error *err)
{
    if (o->struct_size != sizeof *o)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_fleet_options not initialised: call agx_fleet_options_init");
    if (o->count == 0 || o->count > 100000)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "fleet count %zu is out of range (1..100000)", o->count);
    if (o->mode != AGX_FLEET_ALL_OR_NOTHING && o->mode != AGX_FLEET_BEST_EFFORT)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "unknown fleet mode %d", (int)o->mode);
    return 0;
}

int agx_fleet_create(agx_deployment *dep, const agx_sandbox_config *cfg,
                     const agx_fleet_options *opts, agx_fleet **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_fleet_create: out is NULL");
    *out = NULL;
    if (!dep || !opts)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_fleet_create: deployment and options are required");
    int rc = check_options(opts, err);
    if (rc)
        return rc;
    agx_fleet *f = calloc(1, sizeof *f);
    if (!f)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating a fleet");
    f->dep = dep;
    f->opts = *opts;
    f->opts.run_id = NULL; /* not kept: the labels hold it */
    f->n = opts->count;
    if (!f->opts.parallelism)
        f->opts.parallelism = 8;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->destroy_mu, NULL);
    pthread_mutex_init(&f->cb_mu, NULL);
    atomic_init(&f->cancel, 0);
    f->items = calloc(f->n, sizeof *f->items);
    if (!f->items) {
        fleet_release(f);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory for %zu fleet items", opts->count);
    }
    rc = agx_owner_config(cfg, opts->run_id, &f->cfg, err);
    if (rc) {
        fleet_release(f);
        return rc;
    }
    agx_fleet_parallel(f->n, f->opts.parallelism, create_item, f);
    if (f->failed) {
        size_t i = f->first_failed;
        if (f->items[i].err)
            agx_error_copy(err, f->items[i].err);
        else
            agx_error_set(err, f->items[i].status, "create failed (no memory for its message)");
        agx_error_prefix(err, "fleet item %zu of %zu (all-or-nothing: every sandbox created was deleted)",
                         i, f->n);
        rc = f->items[i].status;
        agx_fleet_free(f);
        return rc;
    }
    atomic_store(&f->cancel, 0);
    *out = f;
    return 0;
}

size_t agx_fleet_size(const agx_fleet *f)
{
    return f ? f->n : 0;
}

size_t agx_fleet_ready(const agx_fleet *f)
{
    if (!f)
        return 0;
    agx_fleet *m = (agx_fleet *)f;
    pthread_mutex_lock(&m->mu);
    size_t n = 0;
    for (size_t i = 0; i < m->n; i++)
        n += m->items[i].owned != NULL;
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t agx_fleet_ready_items(agx_fleet *f, size_t *idx, size_t cap)
{
    pthread_mutex_lock(&f->mu);
    size_t n = 0;
    for (size_t i = 0; i < f->n && n < cap; i++)
        if (f->items[i].owned)
            idx[n++] = i;
    pthread_mutex_unlock(&f->mu);
    return n;
}

agx_deployment *agx_fleet_deployment(agx_fleet *f)
{
    return f->dep;
}

const agx_sandbox *agx_fleet_sandbox(const agx_fleet *f, size_t i)
{
    if (!f || i >= f->n)
        return NULL;
    agx_fleet *m = (agx_fleet *)f;
    pthread_mutex_lock(&m->mu);
    const agx_sandbox *sb = m->items[i].owned ? m->items[i].sb : NULL;
    pthread_mutex_unlock(&m->mu);
    return sb;
}

int agx_fleet_status(const agx_fleet *f, size_t i, agx_error *err)
{
    if (!f || i >= f->n)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "no fleet item %zu", i);
    agx_fleet *m = (agx_fleet *)f;
    pthread_mutex_lock(&m->mu);
    int rc = m->items[i].status;
    if (rc && m->items[i].err)
        agx_error_copy(err, m->items[i].err);
    else if (rc)
        agx_error_set(err, rc, "create failed (no memory for its message)");
    else if (err)
        agx_error_clear(err);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

unsigned agx_fleet_attempts(const agx_fleet *f, size_t i)
{
    if (!f || i >= f->n)
        return 0;
    agx_fleet *m = (agx_fleet *)f;
    pthread_mutex_lock(&m->mu);
    unsigned a = m->items[i].attempts;
    pthread_mutex_unlock(&m->mu);
    return a;
}

static int retire_locked(agx_fleet *f, agx_sandbox *sb)
{
    if (!sb)
        return 0;
    agx_sandbox **grown = realloc(f->retired, (f->n_retired + 1) * sizeof *grown);
    if (!grown)
        return -1;
    f->retired = grown;
    f->retired[f->n_retired++] = sb;
    return 0;
}

int agx_fleet_replace(agx_fleet *f, size_t i, agx_error *err)
{
    if (!f || i >= f->n)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "no fleet item %zu", i);
    pthread_mutex_lock(&f->mu);
    fleet_item *it = &f->items[i];
    if (atomic_load(&f->cancel)) {
        pthread_mutex_unlock(&f->mu);
        return agx_error_set(err, AGX_ERR_CANCELLED, "the fleet is being destroyed");
    }
    agx_owned *old = it->owned;
    it->owned = NULL;
    /* The old record stays readable for whoever still holds its pointer. */
    if (retire_locked(f, it->sb) != 0) {
        it->owned = old;
        pthread_mutex_unlock(&f->mu);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory replacing fleet item %zu", i);
    }
    it->sb = NULL;
    pthread_mutex_unlock(&f->mu);

    agx_error e;
    agx_error_clear(&e);
    agx_owner_delete(old, &e); /* a failed delete leaves it labelled for agx_gc */
    agx_sandbox *sb = NULL;
    agx_owned *owned = NULL;
    unsigned attempts = 0;
    int rc = agx_fleet_create_one(f->dep, f->cfg, &f->opts.retry, &f->cancel, &sb, &owned,
                                  &attempts, &e);
    pthread_mutex_lock(&f->mu);
    bool destroying = atomic_load(&f->cancel);
    if (rc == 0 && !destroying) {
        it->sb = sb;
        it->owned = owned;
        sb = NULL;
        owned = NULL;
    } else if (rc == 0) {
        rc = agx_error_set(&e, AGX_ERR_CANCELLED, "the fleet was destroyed during the replacement");
    }
    it->attempts += attempts;
    item_settle_locked(it, rc, &e);
    pthread_mutex_unlock(&f->mu);
    agx_owner_delete(owned, NULL); /* the fleet was destroyed meanwhile: ours to delete */
    agx_sandbox_free(sb);
    if (rc)
        agx_error_copy(err, &e);
    return rc;
}

typedef struct destroy_run {
    agx_owned **owned;
    int *rc;
    agx_error *errs;
} destroy_run;

static void destroy_one(void *user, size_t i)
{
    destroy_run *d = user;
    d->rc[i] = agx_owner_delete(d->owned[i], &d->errs[i]);
}

int agx_fleet_destroy(agx_fleet *f, agx_error *err)
{
    if (!f)
        return 0;
    pthread_mutex_lock(&f->destroy_mu);
    atomic_store(&f->cancel, 1);
    pthread_mutex_lock(&f->mu);
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += f->items[i].owned != NULL;
    destroy_run d = {n ? calloc(n, sizeof *d.owned) : NULL, n ? calloc(n, sizeof *d.rc) : NULL,
                     n ? calloc(n, sizeof *d.errs) : NULL};
    int rc = 0;
    if (n && (!d.owned || !d.rc || !d.errs)) {
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory destroying the fleet");
        n = 0; /* nothing taken: the items keep their sandboxes for a later destroy or cleanup */
    }
    size_t k = 0;
    for (size_t i = 0; i < f->n && k < n; i++)
        if (f->items[i].owned) {
            d.owned[k++] = f->items[i].owned;
            f->items[i].owned = NULL;
        }
    pthread_mutex_unlock(&f->mu);
    agx_fleet_parallel(k, f->opts.parallelism, destroy_one, &d);
    for (size_t i = 0; i < k && rc == 0; i++)
        if (d.rc[i]) {
            rc = d.rc[i];
            agx_error_copy(err, &d.errs[i]);
            agx_error_prefix(err, "destroying the fleet");
        }
    free(d.owned);
    free(d.rc);
    free(d.errs);
    pthread_mutex_unlock(&f->destroy_mu);
    return rc;
}

void agx_fleet_free(agx_fleet *f)
{
    if (!f)
        return;
    agx_fleet_destroy(f, NULL);
    fleet_release(f);
}

/* ---- without blocking: on the engine's pool ---- */

typedef struct fleet_async {
    agx_deployment *dep;
    agx_sandbox_config *cfg;
    agx_fleet_options opts;
    char *run_id;
    agx_fleet_cb cb;
    agx_fleet_done_cb dcb;
    void *user;
    agx_fleet *f;
    int status;
    agx_error err;
} fleet_async;

static void async_create(void *arg)
{
    fleet_async *a = arg;
    a->status = agx_fleet_create(a->dep, a->cfg, &a->opts, &a->f, &a->err);
}

static void async_destroy(void *arg)
{
    fleet_async *a = arg;
    a->status = agx_fleet_destroy(a->f, &a->err);
}

static void async_done(void *arg)
{
    fleet_async *a = arg;
    if (a->cb) {
        agx_fleet *f = a->f;
        a->f = NULL;
        a->cb(a->user, a->status, f, a->status ? &a->err : NULL);
    } else {
        a->dcb(a->user, a->status, a->status ? &a->err : NULL);
    }
}

static void async_free(void *arg)
{
    fleet_async *a = arg;
    if (a->cb)
        agx_fleet_free(a->f); /* only when the callback never took it */
    agx_sandbox_config_free(a->cfg);
    free(a->run_id);
    free(a);
}

int agx_fleet_create_async(agx_engine *e, agx_deployment *dep, const agx_sandbox_config *cfg,
                           const agx_fleet_options *opts, agx_fleet_cb cb, void *user,
                           agx_error *err)
{
    if (!dep || !cfg || !opts || !cb)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_fleet_create_async: deployment, config, options and callback "
                             "are required");
    int rc = check_options(opts, err);
    if (rc)
        return rc;
    if (!e && !(e = agx_engine_default(err)))
        return err ? err->code : AGX_ERR_UNAVAILABLE;
    fleet_async *a = calloc(1, sizeof *a);
    if (!a || !(a->cfg = agx_sandbox_config_copy(cfg)) ||
        (opts->run_id && !(a->run_id = strdup(opts->run_id)))) {
        if (a)
            agx_sandbox_config_free(a->cfg);
        free(a);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    a->dep = dep;
    a->opts = *opts;
    a->opts.run_id = a->run_id;
    a->cb = cb;
    a->user = user;
    rc = agx_engine_run(e, async_create, async_done, async_free, a, err);
    if (rc)
        async_free(a);
    return rc;
}

int agx_fleet_destroy_async(agx_engine *e, agx_fleet *f, agx_fleet_done_cb cb, void *user,
                            agx_error *err)
{
    if (!f || !cb)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_fleet_destroy_async: fleet and callback are required");
    if (!e && !(e = agx_engine_default(err)))
        return err ? err->code : AGX_ERR_UNAVAILABLE;
    fleet_async *a = calloc(1, sizeof *a);
    if (!a)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    a->f = f;
    a->dcb = cb;
    a->user = user;
    int rc = agx_engine_run(e, async_destroy, async_done, async_free, a, err);
    if (rc)
        free(a);
    return rc;
}
