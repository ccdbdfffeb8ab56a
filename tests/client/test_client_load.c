/* test_client_load.c — one connection under load: 16 host threads × 1,000 concurrent calls
 * (half the threads pipelining async calls, half blocking), every result checked; and a 1 GiB
 * stream read by a slow consumer while the memory of this process, the server and the worker
 * stays bounded by the flow-control windows; a 32 MiB upload sent at full speed and read back
 * byte for byte. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

#define THREADS 16
#define CALLS 1000

static test_server srv;
static agx_client *cl;

typedef struct worker {
    int index;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, wrong;
} worker;

static void on_result(void *user, int status, agx_value *result, const agx_error *err)
{
    worker *w = user;
    (void)err;
    pthread_mutex_lock(&w->mu);
    /* demo::add(i, index) — the sum tells which call this was; duplicates would overflow. */
    if (status != 0 || agx_value_type_of(result) != AGX_VALUE_INT)
        w->wrong++;
    w->done++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    agx_value_free(result);
}

static void *run_blocking(void *arg)
{
    worker *w = arg;
    agx_error err;
    for (int i = 0; i < CALLS; i++) {
        agx_value *a = h_ints(2, i, w->index), *r = NULL;
        int rc = agx_client_call(cl, "demo::add", a, NULL, 120000, &r, &err);
        if (rc != 0 || agx_value_get_int64(r) != i + w->index) {
            fprintf(stderr, "call %d of thread %d: rc %d %s\n", i, w->index, rc, err.message);
            w->wrong++;
        }
        w->done++;
        agx_value_free(r);
        agx_value_free(a);
    }
    return NULL;
}

/* Async results are checked by sum: each thread's results must add up to Σ(i + index). */
static int64_t async_sum[THREADS];
static pthread_mutex_t sum_mu = PTHREAD_MUTEX_INITIALIZER;

static void on_result_sum(void *user, int status, agx_value *result, const agx_error *err)
{
    worker *w = user;
    if (status == 0) {
        pthread_mutex_lock(&sum_mu);
        async_sum[w->index] += agx_value_get_int64(result);
        pthread_mutex_unlock(&sum_mu);
    }
    on_result(user, status, result, err);
}

static void *run_async_sum(void *arg)
{
    worker *w = arg;
    agx_error err;
    for (int i = 0; i < CALLS; i++) {
        agx_value *a = h_ints(2, i, w->index);
        CHECK_OK(agx_client_call_async(cl, "demo::add", a, NULL, 120000, on_result_sum, w, &err),
                 &err);
        agx_value_free(a);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 300; /* a hang guard, not a performance bound */
    pthread_mutex_lock(&w->mu);
    while (w->done < CALLS && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0) {
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void test_16_threads(void)
{
    static worker w[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].index = i;
        pthread_mutex_init(&w[i].mu, NULL);
        pthread_cond_init(&w[i].cv, NULL);
        pthread_create(&t[i], NULL, i % 2 ? run_blocking : run_async_sum, &w[i]);
    }
    int total = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        pthread_mutex_lock(&w[i].mu);
        CHECK_MSG(w[i].done == CALLS && w[i].wrong == 0, "thread %d: %d done, %d wrong", i,
                  w[i].done, w[i].wrong);
        pthread_mutex_unlock(&w[i].mu);
        if (i % 2 == 0)
            CHECK_MSG(async_sum[i] == (int64_t)CALLS * (CALLS - 1) / 2 + (int64_t)CALLS * i,
                      "thread %d: sum %lld", i, (long long)async_sum[i]);
        total += w[i].done;
        pthread_mutex_destroy(&w[i].mu);
        pthread_cond_destroy(&w[i].cv);
    }
    CHECK(total == THREADS * CALLS);
}

/* 1 GiB in 64 KiB items. The bound: one window (64 items = 4 MiB) held by the client, one by the
 * server, one in the worker, plus socket/pipe buffers and allocator slack — 64 MiB over the
 * baseline leaves room for all of that and still catches unbounded buffering (which would grow
 * by hundreds of MiB while the consumer sleeps). */
static void test_1gib_stream(void)
{
    const int64_t total = 1LL << 30, chunk = 64 << 10;
    const long bound_kib = 64 * 1024;
    agx_value *args = agx_value_array();
    agx_value_array_push(args, agx_value_int(total));
    agx_value_array_push(args, agx_value_int(chunk));
    /* Warm the worker so its baseline includes the module. */
    agx_value *r = NULL, *a2 = h_ints(1, 1);
    agx_error err;
    CHECK_OK(agx_client_call(cl, "demo::add", a2, NULL, 10000, &r, &err), &err);
    agx_value_free(r);
    agx_value_free(a2);
    pid_t self = getpid(), wpid = h_worker_pid(&srv);
    CHECK(wpid > 0);
    long base_self = h_rss_kib(self), base_srv = h_rss_kib(srv.pid), base_wk = h_rss_kib(wpid);
    long max_self = 0, max_srv = 0, max_wk = 0;

    agx_call *call = NULL;
    CHECK_OK(agx_client_stream(cl, "demo::produce_bytes", args, NULL, &call, &err), &err);
    agx_value_free(args);
    agx_value *item;
    int rc;
    int64_t got = 0, n = 0;
    while ((rc = agx_call_next(call, 60000, &item, &err)) == 1) {
        size_t len = 0;
        const unsigned char *d = agx_value_get_binary(item, &len);
        CHECK(len == (size_t)chunk && d[1] == (unsigned char)(1 * 31 + 7) &&
              d[len - 1] == (unsigned char)((chunk - 1) * 31 + 7));
        for (size_t i = 0; n < 300 && i < len; i++) /* every byte of the first items */
            CHECK(d[i] == (unsigned char)(i * 31 + 7));
        got += (int64_t)len;
        agx_value_free(item);
        if (n < 200)
            h_sleep_ms(5); /* slow at first: the producer must wait, not buffer */
        if (n % 256 == 0 || n < 200) {
            long s = h_rss_kib(self) - base_self, v = h_rss_kib(srv.pid) - base_srv,
                 w = h_rss_kib(wpid) - base_wk;
            max_self = s > max_self ? s : max_self;
            max_srv = v > max_srv ? v : max_srv;
            max_wk = w > max_wk ? w : max_wk;
        }
        n++;
    }
    CHECK_OK(rc, &err);
    CHECK(got == total);
    agx_call_free(call);
    fprintf(stderr, "   RSS growth KiB: client %ld, server %ld, worker %ld (bound %ld)\n",
            max_self, max_srv, max_wk, bound_kib);
    CHECK(max_self < bound_kib);
    CHECK(max_srv < bound_kib);
    CHECK(max_wk < bound_kib);
}

/* The byte at offset `at` of the uploaded file: depends on the offset, so a mask applied at the
 * wrong place in an item (or a remainder sent twice or lost) shows. */
static unsigned char upload_byte(int64_t at) { return (unsigned char)(at * 131 + at / 4093); }

/* agentix.files::upload_stream of 32 MiB in 256 KiB items, sent as fast as the input credit
 * allows (the client masks large items where they lie and sends them from there; what the socket
 * does not take is queued), then downloaded back and compared byte for byte. */
static void test_upload_content(void)
{
    enum { PIECE = 256 << 10 };
    const int64_t total = 32LL << 20;
    unsigned char *buf = malloc(PIECE);
    CHECK(buf);
    agx_value *kw = agx_value_map();
    agx_value_map_set(kw, "path", agx_value_string("upload-content.bin"));
    agx_call *call = NULL;
    agx_error err;
    CHECK_OK(agx_client_bidi(cl, "agentix.files::upload_stream", NULL, kw, &call, &err), &err);
    for (int64_t at = 0; at < total; at += PIECE) {
        for (size_t i = 0; i < PIECE; i++)
            buf[i] = upload_byte(at + (int64_t)i);
        agx_value *piece = agx_value_binary(buf, PIECE);
        CHECK_OK(agx_call_send(call, piece, 60000, &err), &err);
        agx_value_free(piece);
    }
    CHECK_OK(agx_call_close_send(call, &err), &err);
    agx_value *done = NULL;
    CHECK(agx_call_next(call, 60000, &done, &err) == 1);
    CHECK(agx_value_get_int64(agx_value_map_get(done, "size")) == total);
    agx_value_free(done);
    agx_call_free(call);

    call = NULL;
    CHECK_OK(agx_client_stream(cl, "agentix.files::download_stream", NULL, kw, &call, &err), &err);
    agx_value *item;
    int rc;
    int64_t at = 0, wrong = -1;
    while ((rc = agx_call_next(call, 60000, &item, &err)) == 1) {
        size_t len = 0;
        const unsigned char *d = agx_value_get_binary(item, &len);
        for (size_t i = 0; d && i < len && wrong < 0; i++)
            if (d[i] != upload_byte(at + (int64_t)i))
                wrong = at + (int64_t)i;
        at += (int64_t)len;
        agx_value_free(item);
    }
    CHECK_OK(rc, &err);
    CHECK_MSG(wrong < 0, "the uploaded file differs at byte %lld", (long long)wrong);
    CHECK(at == total);
    agx_call_free(call);
    agx_value_free(kw);
    free(buf);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_server_start(&srv);
    cl = h_connect(&srv);
    TEST_RUN(test_16_threads);
    TEST_RUN(test_1gib_stream);
    TEST_RUN(test_upload_content);
    agx_client_free(cl);
    h_server_stop(&srv);
    return 0;
}
