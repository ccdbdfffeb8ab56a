/* renewer.c — extends, in the background, the expiry of every sandbox this process created and has
 * not deleted (renewer.h; host → backend extend_sandbox or runtime POST /expiry). Up to
 * AGX_RENEWER_THREADS_MAX threads take the entry due first; each is extended every third of its
 * expiry (AGX_EXPIRY_RENEW_DIVISOR), so two extensions in a row may fail before it passes. A
 * failure is retried after 1 s, doubling up to a sixth of the expiry; a sandbox its backend
 * reports gone leaves the table. Threads exist only while something is tracked and exit when the
 * table is empty; a forked child starts with an empty table (it does not own its parent's
 * sandboxes). */
#include "core/host/renewer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/clock.h"
#include "agentix/expiry.h"
#include "core/host/admission.h"
#include "core/host/deployment_internal.h"
#include "core/host/runtime_channel.h"

#define RETRY_FIRST_MS 1000
#define IDLE_EXIT_MS 2000 /* a thread with nothing tracked ends after this */
#define GONE_AFTER_MS 10000 /* unextended this long past its expiry: the sandbox has ended */

typedef struct entry {
    char backend[64]; /* the deployment's name (a wrapper backend's sandboxes are its own) */
    agx_deployment *dep;
    agx_sandbox *sb;
    int64_t expiry_ms;
    int64_t due_ms;   /* agx_clock_ms() of the next extension */
    int64_t retry_ms; /* the pause after the next failure */
    int64_t ok_ms;    /* agx_clock_ms() of the last expiry known to be set (creation, extension) */
    int slot;
    bool busy;        /* a thread is extending it */
    bool dropped;     /* untracked while busy: the untracker frees it once the thread is done */
    struct entry *next;
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;      /* the table changed */
static pthread_cond_t done_cv; /* an extension finished */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static entry *head;
static size_t count, threads;
static uint64_t n_ok, n_failed;
static entry *volatile parents; /* a forked child: the parent's table, kept reachable, never used */

static void child_after_fork(void)
{
    /* The threads did not come along; the parent's sandboxes stay the parent's. The entries are
     * not freed (another thread of the parent may have held the lock at the fork), only kept
     * reachable, as the engine keeps the parent's default engine. */
    pthread_mutex_init(&mu, NULL);
    agx_cond_init(&cv);
    agx_cond_init(&done_cv);
    if (head)
        parents = head;
    head = NULL;
    count = threads = 0;
}

static void init(void)
{
    agx_cond_init(&cv);
    agx_cond_init(&done_cv);
    pthread_atfork(NULL, NULL, child_after_fork);
}

static void lock(void)
{
    pthread_once(&once, init);
    pthread_mutex_lock(&mu);
}

static int64_t first_due(int64_t expiry_ms)
{
    int64_t every = expiry_ms / AGX_EXPIRY_RENEW_DIVISOR;
    return agx_clock_ms() + (every < AGX_EXPIRY_RENEW_MIN_MS ? AGX_EXPIRY_RENEW_MIN_MS : every);
}

static void entry_free(entry *e)
{
    agx_admission_release(e->backend, e->slot);
    agx_sandbox_free(e->sb);
    agx_deployment_unref(e->dep);
    free(e);
}

/* Caller holds mu. The entry due first that no thread is extending. */
static entry *earliest_locked(void)
{
    entry *best = NULL;
    for (entry *e = head; e; e = e->next)
        if (!e->busy && (!best || e->due_ms < best->due_ms))
            best = e;
    return best;
}

static void unlink_locked(entry *e)
{
    for (entry **p = &head; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            count--;
            return;
        }
}

/* Extends e (mu not held) and books the outcome (mu held again on return). */
static void extend_one(entry *e)
{
    e->busy = true;
    pthread_mutex_unlock(&mu);
    agx_error err;
    agx_error_clear(&err);
    int rc = agx_deployment_extend(e->dep, e->sb, e->expiry_ms, &err);
    pthread_mutex_lock(&mu);
    e->busy = false;
    pthread_cond_broadcast(&done_cv);
    if (e->dropped)
        return; /* its untracker waits for this and frees it */
    if (rc == 0) {
        n_ok++;
        e->ok_ms = agx_clock_ms();
        e->due_ms = first_due(e->expiry_ms);
        e->retry_ms = RETRY_FIRST_MS;
    } else if (rc == AGX_ERR_NOT_FOUND ||
               agx_clock_ms() > e->ok_ms + e->expiry_ms + GONE_AFTER_MS) {
        /* Gone (deleted elsewhere, killed), or its expiry passed without an extension: the
         * runtime has ended itself. Nothing left to extend. */
        n_failed++;
        unlink_locked(e);
        entry_free(e);
    } else {
        n_failed++;
        e->due_ms = agx_clock_ms() + e->retry_ms;
        int64_t cap = e->expiry_ms / (2 * AGX_EXPIRY_RENEW_DIVISOR);
        e->retry_ms = e->retry_ms * 2 < cap ? e->retry_ms * 2 : (cap > RETRY_FIRST_MS ? cap : RETRY_FIRST_MS);
    }
}

static void *renew_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    int64_t idle_since = agx_clock_ms();
    for (;;) {
        entry *e = earliest_locked();
        int64_t now = agx_clock_ms();
        if (e && e->due_ms <= now) {
            extend_one(e);
            idle_since = agx_clock_ms();
            continue;
        }
        if (!head && now - idle_since >= IDLE_EXIT_MS)
            break;
        int64_t until = e ? e->due_ms : idle_since + IDLE_EXIT_MS;
        if (!e && head)
            until = now + 1000; /* every entry is busy: look again soon */
        agx_cond_wait_until(&cv, &mu, until);
        if (head)
            idle_since = agx_clock_ms();
    }
    threads--;
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Caller holds mu: one more thread while there are fewer than entries (and the cap). */
static void maybe_spawn_locked(void)
{
    if (threads >= AGX_RENEWER_THREADS_MAX || threads >= count)
        return;
    pthread_attr_t at;
    pthread_t t;
    if (pthread_attr_init(&at) != 0)
        return;
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&at, 256 * 1024);
    if (pthread_create(&t, &at, renew_main, NULL) == 0)
        threads++;
    pthread_attr_destroy(&at);
}

int agx_renewer_track(agx_deployment *dep, const agx_sandbox *sb, int64_t expiry_ms, int slot)
{
    entry *e = calloc(1, sizeof *e);
    if (e && !(e->sb = agx_sandbox_copy(sb))) {
        free(e);
        e = NULL;
    }
    if (!e) {
        agx_admission_release(agx_deployment_name(dep), slot);
        return 0;
    }
    e->dep = agx_deployment_ref(dep);
    snprintf(e->backend, sizeof e->backend, "%s", agx_deployment_name(dep));
    e->ok_ms = agx_clock_ms();
    e->expiry_ms = expiry_ms;
    e->due_ms = first_due(expiry_ms);
    e->retry_ms = RETRY_FIRST_MS;
    e->slot = slot;
    lock();
    e->next = head;
    head = e;
    count++;
    maybe_spawn_locked();
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    return 0;
}

void agx_renewer_untrack(const char *backend, const char *id)
{
    if (!backend || !id)
        return;
    lock();
    for (entry *e = head; e; e = e->next) {
        if (strcmp(agx_sandbox_id(e->sb), id) != 0 || strcmp(e->backend, backend) != 0)
            continue;
        unlink_locked(e);
        e->dropped = true;
        while (e->busy)
            pthread_cond_wait(&done_cv, &mu);
        entry_free(e);
        break;
    }
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

void agx_renewal_stats_get(agx_renewal_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    lock();
    out->tracked = count;
    out->extended = n_ok;
    out->failed = n_failed;
    pthread_mutex_unlock(&mu);
    agx_runtime_channel_counts(&out->runtime_over_connection, &out->runtime_over_http);
}
