/* test_client_engine.c — the engine's own contract (engine.h, the async parts of client.h) against
 * a real agentix-server from the local backend: a completion queue whose fd is readable exactly
 * while completions wait and whose callbacks run on the processing thread; async connect
 * (callback exactly once, calls before the CONNECT, a failed dial, a free mid-connect); async bidi
 * with non-blocking input and SEND_READY; blocking calls refused on an I/O thread; a client freed
 * from its own callback; the blocking pool (1,000 requested creates on a pool of 4: never more
 * than 4 at once, all done, from one thread); an engine freed while a client is open; and a
 * forked child that gets a default engine of its own. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/plugin.h"
#include "check.h"
#include "harness.h"

static test_server srv;

static bool fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* ---- the completion queue ---- */

typedef struct unary_seen {
    int calls, status;
    int64_t value;
    pthread_t thread;
} unary_seen;

static void unary_cb(void *user, int status, agx_value *result, const agx_error *err)
{
    (void)err;
    unary_seen *u = user;
    u->calls++;
    u->status = status;
    u->value = result ? agx_value_get_int64(result) : -1;
    u->thread = pthread_self();
    agx_value_free(result);
}

static void connect_cb(void *user, agx_client *c, int status, const agx_error *err)
{
    (void)c;
    (void)err;
    int *seen = user; /* [0] calls, [1] status */
    seen[0]++;
    seen[1] = status;
}

static void test_queue(void)
{
    agx_engine_options eo;
    agx_engine_options_init(&eo);
    eo.delivery = AGX_DELIVER_QUEUE;
    agx_engine *e = NULL;
    agx_error err;
    CHECK_OK(agx_engine_new(&eo, &e, &err), &err);
    int fd = agx_engine_fd(e);
    CHECK(fd >= 0 && !fd_readable(fd));
    CHECK(agx_engine_process(e, 0, 0) == 0);

    agx_client_options o;
    agx_client_options_init(&o);
    o.engine = e;
    int conn[2] = {0, 0};
    agx_client *c = NULL;
    CHECK_OK(agx_client_connect_sandbox_async(srv.sb, &o, connect_cb, conn, &c, &err), &err);
    /* a call started before the CONNECT is sent once connected */
    unary_seen u = {0};
    agx_value *args = h_ints(2, 40, 2);
    CHECK_OK(agx_client_call_async(c, "demo::add", args, NULL, 30000, unary_cb, &u, &err), &err);
    agx_value_free(args);
    while (u.calls == 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        CHECK(poll(&p, 1, 30000) == 1); /* the callbacks wait: the fd says so */
        CHECK(conn[0] == 0 || conn[0] == 1);
        agx_engine_process(e, 0, 0);
    }
    CHECK(conn[0] == 1 && conn[1] == 0);
    CHECK(u.calls == 1 && u.status == 0 && u.value == 42);
    CHECK(pthread_equal(u.thread, pthread_self())); /* run by agx_engine_process, here */
    CHECK(!fd_readable(fd)); /* nothing waits any more */
    CHECK(agx_engine_process(e, 0, 50) == 0); /* a wait that runs out */
    agx_client_free(c);
    agx_engine_free(e);

    /* an engine that delivers on its threads has no queue */
    agx_engine_options_init(&eo);
    CHECK_OK(agx_engine_new(&eo, &e, &err), &err);
    CHECK(agx_engine_fd(e) == -1);
    CHECK(agx_engine_process(e, 0, 0) == AGX_ERR_INVALID_ARGUMENT);
    agx_engine_free(e);
}

/* ---- async connect on the I/O threads ---- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count;
    int status;
    char msg[AGX_ERROR_MESSAGE_MAX];
} waiter;

#define WAITER_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, ""}

static void waiter_note(waiter *w, int status, const agx_error *err)
{
    pthread_mutex_lock(&w->mu);
    w->count++;
    w->status = status;
    snprintf(w->msg, sizeof w->msg, "%s", err ? err->message : "");
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void waiter_wait(waiter *w, int n)
{
    pthread_mutex_lock(&w->mu);
    while (w->count < n)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static void connect_noted(void *user, agx_client *c, int status, const agx_error *err)
{
    (void)c;
    waiter_note(user, status, err);
}

static void test_connect_async(void)
{
    agx_error err;
    agx_client *c = NULL;
    /* nothing listens: the callback reports it, once */
    waiter w = WAITER_INIT;
    CHECK_OK(agx_client_connect_async("http://127.0.0.1:1", NULL, connect_noted, &w, &c, &err),
             &err);
    waiter_wait(&w, 1);
    CHECK_MSG(w.status == AGX_ERR_UNAVAILABLE, "%d %s", w.status, w.msg);
    CHECK(!agx_client_is_connected(c));
    agx_value *r = NULL, *args = h_ints(1, 1);
    CHECK(agx_client_call(c, "demo::add", args, NULL, 1000, &r, &err) == AGX_ERR_UNAVAILABLE);
    agx_value_free(args);
    agx_client_free(c);
    CHECK(w.count == 1);

    /* bad URLs fail at once, with no client and no callback */
    CHECK(agx_client_connect_async("ftp://x", NULL, connect_noted, &w, &c, &err) ==
          AGX_ERR_INVALID_ARGUMENT);
    CHECK(c == NULL && w.count == 1);

    /* freed before the CONNECT: the callback says cancelled, before free returns */
    waiter w2 = WAITER_INIT;
    agx_client_options o;
    agx_client_options_init(&o);
    o.token = srv.token;
    CHECK_OK(agx_client_connect_async(srv.url, &o, connect_noted, &w2, &c, &err), &err);
    agx_client_free(c);
    CHECK(w2.count == 1);
    CHECK_MSG(w2.status == 0 || w2.status == AGX_ERR_CANCELLED, "%d %s", w2.status, w2.msg);
}

/* ---- bidi with callbacks and non-blocking input ---- */

typedef struct bidi_run {
    agx_call *call;
    waiter done;
    pthread_mutex_t mu; /* feed runs on this thread first, then on the I/O thread */
    int sent, to_send, limits, ready;
    int64_t last_sum;
    int outs;
} bidi_run;

static void feed_locked(bidi_run *b)
{
    agx_error err;
    while (b->sent < b->to_send) {
        agx_value *v = agx_value_int(1);
        int rc = agx_call_send_nowait(b->call, v, &err);
        agx_value_free(v);
        if (rc == AGX_ERR_LIMIT) {
            CHECK_CONTAINS(err.message, "no input credit");
            b->limits++;
            return;
        }
        CHECK_OK(rc, &err);
        b->sent++;
    }
    CHECK_OK(agx_call_close_send(b->call, &err), &err);
}

static void feed(bidi_run *b)
{
    pthread_mutex_lock(&b->mu);
    feed_locked(b);
    pthread_mutex_unlock(&b->mu);
}

static void bidi_cb(void *user, agx_call_event ev, agx_value *item, const agx_error *err)
{
    bidi_run *b = user;
    if (ev == AGX_CALL_SEND_READY) {
        pthread_mutex_lock(&b->mu);
        b->ready++;
        feed_locked(b);
        pthread_mutex_unlock(&b->mu);
    } else if (ev == AGX_CALL_ITEM) {
        b->last_sum = agx_value_get_int64(item);
        b->outs++;
        agx_value_free(item);
    } else {
        waiter_note(&b->done, ev == AGX_CALL_END ? 0 : err->code, err);
    }
}

static void test_bidi_async(void)
{
    agx_client *c = h_connect(&srv);
    bidi_run b = {.done = WAITER_INIT, .mu = PTHREAD_MUTEX_INITIALIZER, .to_send = 1000};
    agx_error err;
    CHECK_OK(agx_client_bidi_async(c, "demo::sum_bidi", NULL, NULL, bidi_cb, &b, &b.call, &err),
             &err);
    feed(&b); /* 64 go (the initial input credit), then the callbacks carry on */
    waiter_wait(&b.done, 1);
    CHECK_MSG(b.done.status == 0, "%s", b.done.msg);
    CHECK(b.sent == 1000 && b.outs == 1000 && b.last_sum == 1000);
    CHECK(b.limits >= 1 && b.ready >= 1 && b.ready <= b.limits);
    agx_call_free(b.call);
    agx_client_free(c);
}

/* ---- I/O-thread rules ---- */

typedef struct on_loop {
    agx_client *c;
    int rc;
    char msg[AGX_ERROR_MESSAGE_MAX];
    waiter w;
} on_loop;

static void blocking_inside(void *user, int status, agx_value *result, const agx_error *err)
{
    (void)status;
    (void)err;
    on_loop *l = user;
    agx_value_free(result);
    agx_value *r = NULL, *args = h_ints(1, 1);
    agx_error e;
    l->rc = agx_client_call(l->c, "demo::add", args, NULL, 1000, &r, &e);
    snprintf(l->msg, sizeof l->msg, "%s", e.message);
    agx_value_free(args);
    agx_client_free(l->c); /* from its own callback: torn down in place */
    waiter_note(&l->w, 0, NULL);
}

static void test_io_thread_rules(void)
{
    on_loop l = {.c = h_connect(&srv), .w = WAITER_INIT};
    agx_error err;
    agx_value *args = h_ints(1, 1);
    CHECK_OK(agx_client_call_async(l.c, "demo::add", args, NULL, 30000, blocking_inside, &l, &err),
             &err);
    agx_value_free(args);
    waiter_wait(&l.w, 1);
    CHECK_MSG(l.rc == AGX_ERR_INVALID_ARGUMENT, "a blocking call on an I/O thread: %d", l.rc);
    CHECK_CONTAINS(l.msg, "I/O thread");
}

/* ---- the blocking pool ---- */

static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cv = PTHREAD_COND_INITIALIZER;
static int in_create, max_in_create, created;

static int slow_construct(void **self, agx_error *err)
{
    (void)err;
    *self = NULL;
    return 0;
}

static void slow_destruct(void *self) { (void)self; }

/* Holds each create until the next one is waiting or all are in: the most that can run at once
 * do, and the test reads that maximum without any timing. */
static int slow_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out,
                       agx_error *err)
{
    (void)self, (void)cfg;
    pthread_mutex_lock(&pool_mu);
    in_create++;
    if (in_create > max_in_create)
        max_in_create = in_create;
    pthread_cond_broadcast(&pool_cv);
    while (in_create < 4 && created < 996)
        pthread_cond_wait(&pool_cv, &pool_mu);
    char id[32];
    snprintf(id, sizeof id, "slow-%d", created++);
    in_create--;
    pthread_cond_broadcast(&pool_cv);
    pthread_mutex_unlock(&pool_mu);
    *out = agx_sandbox_new("slow", id, "http://127.0.0.1:1", NULL);
    return *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
}

static int slow_delete(void *self, const char *id, agx_error *err)
{
    (void)self, (void)id, (void)err;
    return 0;
}

static int slow_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    (void)self, (void)id, (void)out;
    return agx_error_set(err, AGX_ERR_UNSUPPORTED, "no get");
}

static const agx_backend_vtable slow_backend = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "slow",
    .construct = slow_construct,
    .destruct = slow_destruct,
    .create_sandbox = slow_create,
    .delete_sandbox = slow_delete,
    .get_sandbox = slow_get,
};

typedef struct pool_run {
    agx_engine *e;
    agx_deployment *dep;
    int created_ok, deleted_ok;
} pool_run;

static void deleted_cb(void *user, int status, const agx_error *err)
{
    CHECK_OK(status, err);
    ((pool_run *)user)->deleted_ok++;
}

static void created_cb(void *user, int status, agx_sandbox *sb, const agx_error *err)
{
    pool_run *p = user;
    CHECK_OK(status, err);
    p->created_ok++;
    agx_error e;
    CHECK_OK(agx_deployment_delete_async(p->e, p->dep, agx_sandbox_id(sb), deleted_cb, p, &e), &e);
    agx_sandbox_free(sb);
}

static void test_pool(void)
{
    agx_error err;
    CHECK_OK(agx_register_deployment(&slow_backend, &err), &err);
    pool_run p = {0};
    CHECK_OK(agx_load_deployment("slow", &p.dep, &err), &err);
    agx_engine_options eo;
    agx_engine_options_init(&eo);
    eo.delivery = AGX_DELIVER_QUEUE;
    eo.pool_threads = 4;
    CHECK_OK(agx_engine_new(&eo, &p.e, &err), &err);
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    for (int i = 0; i < 1000; i++) /* from this one thread: they queue */
        CHECK_OK(agx_deployment_create_async(p.e, p.dep, cfg, created_cb, &p, &err), &err);
    while (p.deleted_ok < 1000)
        agx_engine_process(p.e, 0, 1000);
    CHECK(p.created_ok == 1000);
    CHECK_MSG(max_in_create == 4, "%d creates ran at once on a pool of 4", max_in_create);
    agx_sandbox_config_free(cfg);
    agx_engine_free(p.e);
    agx_deployment_free(p.dep);
    CHECK_OK(agx_unregister_deployment("slow", &err), &err);
}

/* ---- freeing an engine ---- */

static void test_engine_free(void)
{
    agx_engine *e = NULL;
    agx_error err;
    CHECK_OK(agx_engine_new(NULL, &e, &err), &err);
    agx_client_options o;
    agx_client_options_init(&o);
    o.engine = e;
    o.token = srv.token;
    agx_client *c = NULL;
    CHECK_OK(agx_client_connect(srv.url, &o, &c, &err), &err);
    agx_engine_free(e); /* a client is open: refused, said on stderr, nothing breaks */
    agx_value *r = NULL, *args = h_ints(1, 2);
    CHECK_OK(agx_client_call(c, "demo::add", args, NULL, 30000, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == 3);
    agx_value_free(r);
    agx_value_free(args);
    agx_client_free(c);
    agx_engine_free(e);
    agx_engine_free(NULL);
    agx_engine_free(agx_engine_default(NULL)); /* the default one: a no-op */
}

/* ---- fork ---- */
#ifndef __SANITIZE_THREAD__

/* The default engine exists in the parent; a forked child gets one of its own and its calls
 * work (the parent's I/O thread does not exist there). */
static void test_fork(void)
{
    agx_client *c = h_connect(&srv); /* the parent's default engine is up */
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        agx_client *cc = NULL;
        agx_error err;
        agx_value *r = NULL, *args = h_ints(2, 2, 3);
        int ok = agx_client_connect_sandbox(srv.sb, NULL, &cc, &err) == 0 &&
                 agx_client_call(cc, "demo::add", args, NULL, 30000, &r, &err) == 0 &&
                 agx_value_get_int64(r) == 5;
        _exit(ok ? 0 : 1); /* no atexit handlers: the sandbox is the parent's */
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's call failed (%d)", status);
    agx_client_free(c);
}
#endif

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_server_start(&srv);
    TEST_RUN(test_queue);
    TEST_RUN(test_connect_async);
    TEST_RUN(test_bidi_async);
    TEST_RUN(test_io_thread_rules);
    TEST_RUN(test_pool);
    TEST_RUN(test_engine_free);
#ifdef __SANITIZE_THREAD__
    /* ThreadSanitizer ends a child of a multi-threaded fork that starts a thread (die_after_fork):
     * this case runs in the release, ASan and valgrind builds. */
    printf("test_fork: not in the ThreadSanitizer build (it forbids threads after fork)\n");
#else
    TEST_RUN(test_fork);
#endif
    h_server_stop(&srv);
    return 0;
}
