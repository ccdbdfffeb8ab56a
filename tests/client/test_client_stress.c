/* test_client_stress.c — the engine from many host threads at once: 64 threads connect (blocking
 * and async), call in all three shapes (blocking and callback forms), cancel and free against
 * four `local` sandboxes, for a bounded number of operations (argv[3] rounds per thread; the
 * valgrind run takes fewer). Connections live on two engines: the default one (2 I/O threads,
 * callbacks on them) and one delivering through its completion queue, drained by two processing
 * threads at once. Some clients are shared by all threads; others belong to one thread, which
 * frees them with calls still in flight or still connecting. Every result is checked, every
 * callback must come exactly once, and every failure must be the cancellation the test caused.
 * Run under ASan, TSan and valgrind, the point is zero reports and zero crashes. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "harness.h"

#define THREADS 64
#define SANDBOXES 4
#define WAIT_MS 120000

static test_server srv[SANDBOXES];
static agx_client *shared[SANDBOXES];
static agx_engine *qengine; /* callbacks through its queue */
static atomic_bool processing = true;
static int rounds;
static atomic_long ops_done, cancels_seen;

/* ---- a thread's bookkeeping of its callbacks ---- */

typedef struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;          /* callbacks still due */
} tally;

/* One async operation: its callbacks must end exactly once. */
typedef struct op {
    tally *t;
    int ends;
    int status;
    long items, next_expected;
    long want_items;   /* stream: items expected when not cancelled */
    bool may_cancel;   /* a cancel or free raced it: AGX_ERR_CANCELLED is fine */
    agx_call *call;    /* bidi async: where more input goes */
    int to_send, sent, echoed;
} op;

static void tally_add(tally *t)
{
    pthread_mutex_lock(&t->mu);
    t->open++;
    pthread_mutex_unlock(&t->mu);
}

static void op_end(op *o, int status)
{
    pthread_mutex_lock(&o->t->mu);
    o->ends++;
    o->status = status;
    o->t->open--;
    pthread_cond_broadcast(&o->t->cv);
    pthread_mutex_unlock(&o->t->mu);
}

static void tally_wait(tally *t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&t->mu);
    int rc = 0;
    while (t->open > 0 && rc == 0)
        rc = pthread_cond_timedwait(&t->cv, &t->mu, &ts);
    CHECK_MSG(t->open == 0, "%d callbacks never came", t->open);
    pthread_mutex_unlock(&t->mu);
}

static void check_op(const op *o)
{
    CHECK_MSG(o->ends == 1, "an operation ended %d times", o->ends);
    if (o->status == AGX_ERR_CANCELLED && o->may_cancel) {
        atomic_fetch_add(&cancels_seen, 1);
        return;
    }
    CHECK_MSG(o->status == 0, "an operation failed: %d", o->status);
    if (o->want_items >= 0)
        CHECK_MSG(o->items == o->want_items, "%ld items of %ld", o->items, o->want_items);
}

/* ---- callbacks ---- */

static void unary_done(void *user, int status, agx_value *result, const agx_error *err)
{
    op *o = user;
    if (status == 0)
        CHECK(agx_value_get_int64(result) == o->next_expected);
    else
        CHECK_MSG(status == AGX_ERR_CANCELLED && o->may_cancel, "unary: %d %s", status,
                  err ? err->message : "");
    agx_value_free(result);
    op_end(o, status);
}

static void stream_event(void *user, agx_call_event ev, agx_value *item, const agx_error *err)
{
    op *o = user;
    if (ev == AGX_CALL_ITEM) {
        const agx_value *i = agx_value_map_get(item, "i");
        CHECK(i && agx_value_get_int64(i) == o->next_expected);
        o->next_expected++;
        o->items++;
        agx_value_free(item);
        return;
    }
    CHECK(ev != AGX_CALL_SEND_READY);
    if (ev == AGX_CALL_ERROR)
        CHECK_MSG(err && err->code == AGX_ERR_CANCELLED && o->may_cancel, "stream: %s",
                  err ? err->message : "");
    op_end(o, ev == AGX_CALL_END ? 0 : err->code);
}

static void bidi_feed(op *o)
{
    agx_error err;
    while (o->sent < o->to_send) {
        agx_value *v = agx_value_int(o->sent);
        int rc = agx_call_send_nowait(o->call, v, &err);
        agx_value_free(v);
        if (rc == AGX_ERR_LIMIT)
            return; /* AGX_CALL_SEND_READY comes */
        CHECK_OK(rc, &err);
        o->sent++;
    }
    CHECK_OK(agx_call_close_send(o->call, &err), &err);
}

static void bidi_event(void *user, agx_call_event ev, agx_value *item, const agx_error *err)
{
    op *o = user;
    if (ev == AGX_CALL_SEND_READY) {
        bidi_feed(o);
        return;
    }
    if (ev == AGX_CALL_ITEM) {
        CHECK(agx_value_get_int64(item) == o->echoed);
        o->echoed++;
        o->items++;
        agx_value_free(item);
        return;
    }
    CHECK_MSG(ev == AGX_CALL_END, "bidi: %s", err ? err->message : "");
    op_end(o, 0);
}

static void connect_done(void *user, agx_client *c, int status, const agx_error *err)
{
    op *o = user;
    (void)c;
    CHECK_MSG(status == 0 || (status == AGX_ERR_CANCELLED && o->may_cancel), "connect: %s",
              err ? err->message : "");
    op_end(o, status);
}

/* ---- operations ---- */

typedef struct worker {
    int id;
    unsigned seed;
    tally t;
} worker;

static agx_value *add_args(long a, long b) { return h_ints(2, (int)a, (int)b); }

static agx_client *own_client(worker *w, bool async, op *conn_op)
{
    test_server *s = &srv[rand_r(&w->seed) % SANDBOXES];
    agx_client_options o;
    agx_client_options_init(&o);
    o.engine = rand_r(&w->seed) % 2 ? qengine : NULL;
    agx_client *c = NULL;
    agx_error err;
    if (!async) {
        o.token = s->token;
        CHECK_OK(agx_client_connect(s->url, &o, &c, &err), &err);
        return c;
    }
    *conn_op = (op){.t = &w->t, .want_items = -1, .may_cancel = true};
    tally_add(&w->t);
    CHECK_OK(agx_client_connect_sandbox_async(s->sb, &o, connect_done, conn_op, &c, &err), &err);
    return c;
}

static void op_unary_blocking(agx_client *c, long a, long b)
{
    agx_value *args = add_args(a, b), *r = NULL;
    agx_error err;
    CHECK_OK(agx_client_call(c, "demo::add", args, NULL, WAIT_MS, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == a + b);
    agx_value_free(r);
    agx_value_free(args);
}

static void op_stream_blocking(worker *w, agx_client *c)
{
    long n = 5 + rand_r(&w->seed) % 30, cut = rand_r(&w->seed) % 3 ? -1 : n / 2;
    agx_value *kw = h_kw("n", agx_value_int(n), NULL);
    agx_call *k = NULL;
    agx_error err;
    CHECK_OK(agx_client_stream(c, "demo::count", NULL, kw, &k, &err), &err);
    agx_value_free(kw);
    long got = 0;
    for (;;) {
        agx_value *item = NULL;
        int rc = agx_call_next(k, WAIT_MS, &item, &err);
        if (rc == 1) {
            CHECK(agx_value_get_int64(agx_value_map_get(item, "i")) == got);
            agx_value_free(item);
            if (++got == cut)
                agx_call_cancel(k);
            continue;
        }
        if (cut >= 0 && rc == AGX_ERR_CANCELLED)
            atomic_fetch_add(&cancels_seen, 1);
        else
            CHECK_MSG(rc == 0 && got == n, "stream: rc %d, %ld of %ld: %s", rc, got, n,
                      err.message);
        break;
    }
    agx_call_free(k);
}

static void op_bidi_blocking(worker *w, agx_client *c)
{
    int n = 1 + rand_r(&w->seed) % 10;
    agx_call *k = NULL;
    agx_error err;
    CHECK_OK(agx_client_bidi(c, "demo::echo_bidi", NULL, NULL, &k, &err), &err);
    for (int i = 0; i < n; i++) {
        agx_value *v = agx_value_int(i * 3), *back = NULL;
        CHECK_OK(agx_call_send(k, v, WAIT_MS, &err), &err);
        CHECK(agx_call_next(k, WAIT_MS, &back, &err) == 1);
        CHECK(agx_value_get_int64(back) == i * 3);
        agx_value_free(v);
        agx_value_free(back);
    }
    CHECK_OK(agx_call_close_send(k, &err), &err);
    agx_value *extra = NULL;
    CHECK_MSG(agx_call_next(k, WAIT_MS, &extra, &err) == 0, "bidi end: %s", err.message);
    agx_call_free(k);
}

/* Async calls on a client this thread frees while they may still be in flight. */
static void op_own_async(worker *w, bool free_early)
{
    op conn, u, s;
    agx_client *c = own_client(w, true, &conn);
    u = (op){.t = &w->t, .want_items = -1, .next_expected = 7 + w->id, .may_cancel = free_early};
    s = (op){.t = &w->t, .want_items = 20, .may_cancel = free_early};
    agx_error err;
    agx_value *args = add_args(7, w->id);
    tally_add(&w->t);
    CHECK_OK(agx_client_call_async(c, "demo::add", args, NULL, WAIT_MS, unary_done, &u, &err),
             &err);
    agx_value_free(args);
    agx_value *kw = h_kw("n", agx_value_int(20), NULL);
    agx_call *k = NULL;
    tally_add(&w->t);
    CHECK_OK(agx_client_stream_async(c, "demo::count", NULL, kw, stream_event, &s, &k, &err),
             &err);
    agx_value_free(kw);
    if (free_early) {
        agx_client_free(c); /* mid-connect or mid-call: everything still due ends, once */
        tally_wait(&w->t);
    } else {
        tally_wait(&w->t);
        agx_client_free(c);
    }
    agx_call_free(k); /* after the client: the handle outlives it */
    check_op(&conn);
    check_op(&u);
    s.want_items = s.status ? -1 : 20;
    check_op(&s);
}

static void op_shared_async(worker *w, agx_client *c)
{
    op b = {.t = &w->t, .want_items = -1, .to_send = 1 + rand_r(&w->seed) % 100};
    op u = {.t = &w->t, .want_items = -1, .next_expected = 5};
    agx_error err;
    tally_add(&w->t);
    CHECK_OK(agx_client_bidi_async(c, "demo::echo_bidi", NULL, NULL, bidi_event, &b, &b.call,
                                   &err),
             &err);
    agx_value *args = h_ints(1, 5);
    tally_add(&w->t);
    CHECK_OK(agx_client_call_async(c, "demo::sleep", args, NULL, WAIT_MS, unary_done, &u, &err),
             &err);
    agx_value_free(args);
    /* the first items go from this thread, the rest from SEND_READY callbacks: the callbacks run
     * elsewhere, so feeding and the callbacks are serialised through the call's lock only */
    bidi_feed(&b);
    tally_wait(&w->t);
    agx_call_free(b.call);
    check_op(&u);
    CHECK_MSG(b.echoed == b.to_send, "bidi echoed %d of %d", b.echoed, b.to_send);
    check_op(&b);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    for (int r = 0; r < rounds; r++) {
        agx_client *sc = shared[rand_r(&w->seed) % SANDBOXES];
        switch (rand_r(&w->seed) % 7) {
        case 0: {
            agx_client *c = own_client(w, false, NULL);
            op_unary_blocking(c, w->id, r);
            agx_client_free(c);
            break;
        }
        case 1:
            op_unary_blocking(sc, r, w->id);
            break;
        case 2:
            op_stream_blocking(w, sc);
            break;
        case 3:
            op_bidi_blocking(w, sc);
            break;
        case 4:
            op_own_async(w, false);
            break;
        case 5:
            op_own_async(w, true);
            break;
        case 6:
            op_shared_async(w, sc);
            break;
        }
        atomic_fetch_add(&ops_done, 1);
    }
    return NULL;
}

static void *processor_main(void *arg)
{
    (void)arg;
    while (atomic_load(&processing))
        agx_engine_process(qengine, 0, 50);
    return NULL;
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    rounds = argc > 3 ? atoi(argv[3]) : 30;
    CHECK(rounds > 0);
    setenv("AGENTIX_ENGINE_THREADS", "2", 1); /* the default engine, made on first use */
    agx_error err;
    agx_engine_options eo;
    agx_engine_options_init(&eo);
    eo.io_threads = 2;
    eo.delivery = AGX_DELIVER_QUEUE;
    CHECK_OK(agx_engine_new(&eo, &qengine, &err), &err);
    for (int i = 0; i < SANDBOXES; i++) {
        h_server_start(&srv[i]);
        shared[i] = h_connect(&srv[i]);
    }
    pthread_t proc[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&proc[i], NULL, processor_main, NULL) == 0);
    static worker ws[THREADS];
    pthread_t th[THREADS];
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 512 << 10);
    for (int i = 0; i < THREADS; i++) {
        ws[i] = (worker){.id = i, .seed = 1000u + (unsigned)i};
        pthread_mutex_init(&ws[i].t.mu, NULL);
        pthread_cond_init(&ws[i].t.cv, NULL);
        CHECK(pthread_create(&th[i], &attr, worker_main, &ws[i]) == 0);
    }
    pthread_attr_destroy(&attr);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    atomic_store(&processing, false);
    for (int i = 0; i < 2; i++)
        pthread_join(proc[i], NULL);
    CHECK(atomic_load(&ops_done) == (long)THREADS * rounds);
    printf("%ld operations by %d threads, %ld cancellations seen\n", atomic_load(&ops_done),
           THREADS, atomic_load(&cancels_seen));
    for (int i = 0; i < SANDBOXES; i++) {
        agx_client_free(shared[i]);
        h_server_stop(&srv[i]);
    }
    agx_engine_free(qengine);
    for (int i = 0; i < THREADS; i++) {
        pthread_mutex_destroy(&ws[i].t.mu);
        pthread_cond_destroy(&ws[i].t.cv);
    }
    return 0;
}
