/* engine.c — the agx_engine of engine.h: a fixed set of I/O threads, each one libuv loop with one
 * transport dialer (runtime/transport/sio_client.h) that multiplexes every connection placed on
 * it; the lazily created process default; and the delivery of callbacks — run at once on the
 * delivering thread, or queued for agx_engine_process behind an eventfd a host loop can poll.
 *
 * Host threads hand a client to its I/O thread through the thread's ready list (client.c does
 * the work in agx_client_loop_turn); the list holds a client reference so a client freed
 * meanwhile stays valid until its turn. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/client/client_impl.h"

#define IO_THREADS_MAX 64
#define POOL_THREADS_MAX 1024
#define DEFAULT_POOL_THREADS 16
#define FREE_WAIT_MS 30000 /* agx_engine_free: for freed clients to finish closing */

static __thread io_thread *tls_io; /* the I/O thread running on this thread, if any */

bool agx_engine_on_io_thread(void) { return tls_io != NULL; }
bool agx_client_loop_is_own(const agx_client *c) { return tls_io && tls_io == c->t; }

/* ---- I/O threads ---- */

static void io_stop(io_thread *t)
{
    agx_client_wake_flush(t);
    agx_sio_dialer_free(t->dialer);
    t->dialer = NULL;
    uv_close((uv_handle_t *)&t->wake, NULL);
}

/* The clients host threads handed to this thread (their ready list), each taking its turn. */
static void io_run_ready(io_thread *t)
{
    pthread_mutex_lock(&t->mu);
    agx_client *list = t->ready_head;
    t->ready_head = t->ready_tail = NULL;
    atomic_store(&t->has_ready, false);
    pthread_mutex_unlock(&t->mu);
    while (list) {
        agx_client *c = list;
        list = c->rnext;
        c->rnext = NULL;
        agx_client_loop_turn(c); /* drops the ready list's reference */
    }
}

/* After each read on this thread: the readers its items were for are woken, and turns that came
 * in meanwhile (a consumer's credit) go now rather than after libuv has drained every readable
 * socket. */
static void io_read_hook(void *ud)
{
    io_thread *t = ud;
    agx_client_wake_flush(t);
    if (atomic_load(&t->has_ready))
        io_run_ready(t);
}

static void io_wake(uv_async_t *a)
{
    io_thread *t = a->data;
    pthread_mutex_lock(&t->mu);
    bool stop = t->stop;
    pthread_mutex_unlock(&t->mu);
    io_run_ready(t);
    if (stop)
        io_stop(t);
}

/* Writes to a socket the server closed raise SIGPIPE (libuv writes with write(2)): on our threads
 * it stays blocked, the write fails with EPIPE, and the host's own disposition is untouched. */
void agx_engine_block_sigpipe(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *io_main(void *arg)
{
    io_thread *t = arg;
    tls_io = t;
    agx_engine_block_sigpipe();
    char name[16];
    snprintf(name, sizeof name, "agx-io-%u", (unsigned)(t - t->e->io));
    pthread_setname_np(pthread_self(), name); /* visible in top/perf/gdb */
    uv_run(&t->loop, UV_RUN_DEFAULT);
    return NULL;
}

void agx_engine_schedule_locked(agx_client *c)
{
    if (c->ready)
        return;
    c->ready = true;
    c->refs++; /* the ready list's */
    io_thread *t = c->t;
    pthread_mutex_lock(&t->mu);
    c->rnext = NULL;
    if (t->ready_tail)
        t->ready_tail->rnext = c;
    else
        t->ready_head = c;
    t->ready_tail = c;
    atomic_store(&t->has_ready, true);
    pthread_mutex_unlock(&t->mu);
    uv_async_send(&t->wake); /* libuv coalesces wakes until the thread runs */
}

void agx_engine_client_gone(agx_engine *e, io_thread *t)
{
    pthread_mutex_lock(&t->mu);
    t->clients--;
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_lock(&e->cq_mu);
    atomic_fetch_sub(&e->clients, 1);
    pthread_cond_broadcast(&e->cq_cv); /* agx_engine_free may be waiting for the last one */
    pthread_mutex_unlock(&e->cq_mu);
}

/* Clients the host freed finish closing on their loops (a DISCONNECT flushed, at most a few
 * seconds); their cancelled calls' callbacks may still wait in the queue: run them here. */
static bool wait_clients_released(agx_engine *e)
{
    int64_t deadline = agx_deadline_ms(FREE_WAIT_MS);
    for (;;) {
        if (e->delivery == AGX_DELIVER_QUEUE)
            agx_engine_process(e, 0, 0);
        pthread_mutex_lock(&e->cq_mu);
        int rc = 0;
        while (atomic_load(&e->clients) && !e->cq_head && rc != ETIMEDOUT)
            rc = agx_cond_wait_until(&e->cq_cv, &e->cq_mu, deadline);
        bool done = atomic_load(&e->clients) == 0;
        pthread_mutex_unlock(&e->cq_mu);
        if (done)
            return true;
        if (rc == ETIMEDOUT)
            return false;
    }
}

/* ---- delivery ---- */

static void run_pending(agx_engine *e, agx_completion *k)
{
    for (;;) {
        k->run(k);
        pthread_mutex_lock(&e->cq_mu);
        if (k->again) {
            k->again = false;
            pthread_mutex_unlock(&e->cq_mu);
            continue;
        }
        k->running = false;
        pthread_mutex_unlock(&e->cq_mu);
        break;
    }
    k->release(k);
}

bool agx_engine_deliver(agx_engine *e, agx_completion *k)
{
    pthread_mutex_lock(&e->cq_mu);
    if (k->queued) {
        pthread_mutex_unlock(&e->cq_mu);
        return false;
    }
    if (k->running) {
        k->again = true;
        pthread_mutex_unlock(&e->cq_mu);
        return false;
    }
    if (e->delivery == AGX_DELIVER_IO_THREAD) {
        k->running = true;
        pthread_mutex_unlock(&e->cq_mu);
        run_pending(e, k);
        return true;
    }
    k->queued = true;
    k->next = NULL;
    if (e->cq_tail)
        e->cq_tail->next = k;
    else
        e->cq_head = k;
    e->cq_tail = k;
    if (!e->efd_set) {
        e->efd_set = true;
        eventfd_write(e->efd, 1);
    }
    pthread_cond_signal(&e->cq_cv);
    pthread_mutex_unlock(&e->cq_mu);
    return true;
}

int agx_engine_fd(const agx_engine *e)
{
    return e && e->delivery == AGX_DELIVER_QUEUE ? e->efd : -1;
}

/* Completions in the queue now (cq_mu held). */
static size_t queue_len(const agx_engine *e)
{
    size_t n = 0;
    for (const agx_completion *k = e->cq_head; k; k = k->next)
        n++;
    return n;
}

int agx_engine_process(agx_engine *e, int max, int timeout_ms)
{
    if (!e || e->delivery != AGX_DELIVER_QUEUE)
        return AGX_ERR_INVALID_ARGUMENT;
    int64_t deadline = agx_deadline_ms(timeout_ms);
    pthread_mutex_lock(&e->cq_mu);
    int rc = 0;
    while (!e->cq_head && timeout_ms != 0 && rc != ETIMEDOUT)
        rc = agx_cond_wait_until(&e->cq_cv, &e->cq_mu, deadline);
    /* max 0: what waits now, not what the callbacks cause (a busy stream would never stop) */
    size_t limit = max > 0 ? (size_t)max : queue_len(e);
    int n = 0;
    while (e->cq_head && (size_t)n < limit) {
        agx_completion *k = e->cq_head;
        e->cq_head = k->next;
        if (!e->cq_head)
            e->cq_tail = NULL;
        k->queued = false;
        k->running = true;
        if (!e->cq_head && e->efd_set) {
            eventfd_t v;
            eventfd_read(e->efd, &v);
            e->efd_set = false;
        }
        pthread_mutex_unlock(&e->cq_mu);
        run_pending(e, k);
        n++;
        pthread_mutex_lock(&e->cq_mu);
    }
    pthread_mutex_unlock(&e->cq_mu);
    return n;
}

/* ---- creation ---- */

void agx_engine_options_init(agx_engine_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->io_threads = 1;
    opts->pool_threads = DEFAULT_POOL_THREADS;
    opts->delivery = AGX_DELIVER_IO_THREAD;
}

static void engine_destroy(agx_engine *e)
{
    if (e->efd >= 0)
        close(e->efd);
    pthread_mutex_destroy(&e->cq_mu);
    pthread_cond_destroy(&e->cq_cv);
    pthread_mutex_destroy(&e->pool_mu);
    pthread_cond_destroy(&e->pool_cv);
    pthread_cond_destroy(&e->pool_idle_cv);
    free(e->ca_file);
    free(e->ca_dir);
    free(e->io);
    free(e->pool_slots);
    free(e);
}

/* Stops and joins the first n I/O threads (their loops hold no client). */
static void io_threads_stop(agx_engine *e, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        io_thread *t = &e->io[i];
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_mutex_unlock(&t->mu);
        uv_async_send(&t->wake);
        pthread_join(t->tid, NULL);
        uv_loop_close(&t->loop);
        pthread_mutex_destroy(&t->mu);
    }
}

static int io_thread_start(agx_engine *e, io_thread *t, agx_error *err)
{
    t->e = e;
    pthread_mutex_init(&t->mu, NULL);
    int rc = uv_loop_init(&t->loop);
    if (rc) {
        pthread_mutex_destroy(&t->mu);
        return agx_error_set(err, AGX_ERR_IO, "uv_loop_init: %s", uv_strerror(rc));
    }
    uv_async_init(&t->loop, &t->wake, io_wake);
    t->wake.data = t;
    if ((rc = agx_sio_dialer_new(&t->loop, &t->dialer, err)) == 0)
        agx_sio_dialer_set_read_hook(t->dialer, io_read_hook, t);
    if (rc == 0 && (rc = pthread_create(&t->tid, NULL, io_main, t)) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot start an engine I/O thread: %s",
                           strerror(rc));
    if (rc) {
        if (t->dialer)
            agx_sio_dialer_free(t->dialer);
        uv_close((uv_handle_t *)&t->wake, NULL);
        uv_run(&t->loop, UV_RUN_DEFAULT);
        uv_loop_close(&t->loop);
        pthread_mutex_destroy(&t->mu);
    }
    return rc;
}

static int dup_opt(const char *v, char **out, agx_error *err)
{
    if (v && !*v)
        v = NULL;
    if (v && !(*out = strdup(v)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    return 0;
}

int agx_engine_new(const agx_engine_options *opts, agx_engine **out, agx_error *err)
{
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_engine_new: out is NULL");
    *out = NULL;
    agx_engine_options o;
    agx_engine_options_init(&o);
    if (opts) {
        size_t n = opts->struct_size && opts->struct_size < sizeof o ? opts->struct_size
                                                                     : sizeof o;
        memcpy(&o, opts, n);
    }
    if (o.io_threads < 1 || o.io_threads > IO_THREADS_MAX)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "io_threads %u is not 1..%d",
                             o.io_threads, IO_THREADS_MAX);
    if (o.pool_threads < 1 || o.pool_threads > POOL_THREADS_MAX)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "pool_threads %u is not 1..%d",
                             o.pool_threads, POOL_THREADS_MAX);
    if (o.delivery != AGX_DELIVER_IO_THREAD && o.delivery != AGX_DELIVER_QUEUE)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "unknown delivery %d",
                             (int)o.delivery);
    agx_engine *e = calloc(1, sizeof *e);
    if (!e || !(e->io = calloc(o.io_threads, sizeof *e->io)) ||
        !(e->pool_slots = agx_engine_pool_slots(o.pool_threads))) {
        if (e)
            free(e->io);
        free(e);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    e->efd = -1;
    e->delivery = o.delivery;
    e->pool_max = o.pool_threads;
    pthread_mutex_init(&e->cq_mu, NULL);
    pthread_mutex_init(&e->pool_mu, NULL);
    agx_cond_init(&e->cq_cv);
    agx_cond_init(&e->pool_cv);
    agx_cond_init(&e->pool_idle_cv);
    int rc = dup_opt(o.ca_file, &e->ca_file, err);
    if (rc == 0)
        rc = dup_opt(o.ca_dir, &e->ca_dir, err);
    if (rc == 0 && e->delivery == AGX_DELIVER_QUEUE &&
        (e->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        rc = agx_error_set(err, AGX_ERR_IO, "eventfd: %s", strerror(errno));
    unsigned started = 0;
    for (; rc == 0 && started < o.io_threads; started++)
        if ((rc = io_thread_start(e, &e->io[started], err)) != 0)
            break;
    if (rc) {
        io_threads_stop(e, started);
        engine_destroy(e);
        return rc;
    }
    e->nio = o.io_threads;
    *out = e;
    return 0;
}

/* A positive number from the environment within [1, max]; def when unset. */
static int env_count(const char *name, unsigned def, unsigned max, unsigned *out, agx_error *err)
{
    const char *v = getenv(name);
    *out = def;
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || n < 1 || n > max)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s='%.40s' must be a number 1..%u",
                             name, v, max);
    *out = (unsigned)n;
    return 0;
}

static pthread_mutex_t default_mu = PTHREAD_MUTEX_INITIALIZER;
static agx_engine *default_engine;

/* A child of fork() has none of the parent's threads: its first connect makes a default engine
 * of its own. The parent's, with its clients, is unusable there and left alone — kept reachable
 * here (volatile: a store nobody reads would be optimised away), since nothing may free it. */
static agx_engine *volatile forked_away;

static void default_after_fork(void)
{
    pthread_mutex_init(&default_mu, NULL);
    forked_away = default_engine;
    default_engine = NULL;
}

agx_engine *agx_engine_default(agx_error *err)
{
    pthread_mutex_lock(&default_mu);
    agx_engine *e = default_engine;
    if (!e) {
        agx_engine_options o;
        agx_engine_options_init(&o);
        if (env_count("AGENTIX_ENGINE_THREADS", 1, IO_THREADS_MAX, &o.io_threads, err) == 0 &&
            env_count("AGENTIX_ENGINE_POOL", DEFAULT_POOL_THREADS, POOL_THREADS_MAX,
                      &o.pool_threads, err) == 0 &&
            agx_engine_new(&o, &e, err) == 0) {
            static bool hooked;
            if (!hooked)
                hooked = pthread_atfork(NULL, NULL, default_after_fork) == 0;
            e->is_default = true;
            default_engine = e;
        }
    }
    pthread_mutex_unlock(&default_mu);
    return e;
}

agx_engine *agx_engine_resolve(agx_engine *e, agx_error *err)
{
    if (e)
        return e;
    e = agx_engine_default(err);
    if (!e)
        agx_error_prefix(err, "cannot start the default engine");
    return e;
}

void agx_engine_free(agx_engine *e)
{
    if (!e || e->is_default)
        return;
    if (tls_io && tls_io->e == e) {
        fprintf(stderr, "agentix: agx_engine_free called from one of the engine's own "
                        "callbacks; not freed\n");
        return;
    }
    size_t left = atomic_load(&e->open_clients);
    if (left) {
        fprintf(stderr, "agentix: agx_engine_free: %zu client(s) of this engine are still "
                        "open; free them first (the engine is not freed)\n", left);
        return;
    }
    agx_engine_pool_stop(e);
    if (!wait_clients_released(e)) {
        fprintf(stderr, "agentix: agx_engine_free: freed clients did not finish closing within "
                        "%d ms (the engine is not freed)\n", FREE_WAIT_MS);
        return;
    }
    io_threads_stop(e, e->nio);
    engine_destroy(e);
}
