/* test_client_protocol.c — the client against a scripted Socket.IO peer (the transport's server
 * role on its own thread) that breaks the protocol in the ways a faulty or hostile runtime could:
 * unknown call ids and junk events (dropped), answers of the wrong shape, missing or undecodable
 * values, more stream items than the window allows, malformed credit. Also checks what the real
 * server cannot show directly: credit is returned in batches of half a window, a timed-out call
 * sends `cancel`, error maps convert, and no more than CLIENT_INFLIGHT_MAX calls are in flight. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check.h"
#include "harness.h"
#include "core/base/mpraw.h"
#include "runtime/wire/rpc_error.h"
#include "runtime/transport/sio_server.h"

#define WINDOW 16
#define COUNT_ITEMS 1000
#define HOLD_CALLS 5000
#define INFLIGHT_CAP 4096 /* CLIENT_INFLIGHT_MAX */

/* ---- the scripted peer (its loop thread) ---- */

static uv_loop_t sloop;
static uv_async_t sstop;
static agx_sio_server *ssrv;
static pthread_t sthread;
static pthread_mutex_t smu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t scv = PTHREAD_COND_INITIALIZER; /* a cancel arrived */

/* [smu] what the peer saw */
static int credit_events, credit_bad, cancels;
static uint64_t credit_total;
static size_t hold_max;

/* [loop] the count stream and the held unary calls */
static char count_id[32];
static uint64_t count_sent, count_allowed;
static char (*held)[16];
static size_t nheld, held_total;

static void put_id(agx_buf *b, const char *id)
{
    agx_mp_put_str(b, "call_id", 7);
    agx_mp_put_cstr(b, id);
}

static void send_event(agx_sio_conn *c, const char *event, agx_buf *b)
{
    struct iovec iov = {.iov_base = b->data, .iov_len = b->len};
    agx_error err;
    CHECK_OK(agx_sio_conn_emit(c, event, NULL, &iov, 1, NULL, &err), &err);
    b->len = 0;
}

static void send_int(agx_sio_conn *c, const char *event, const char *id, int64_t v)
{
    agx_buf b = {0};
    agx_mp_put_map(&b, 2);
    put_id(&b, id);
    agx_mp_put_str(&b, "value", 5);
    agx_mp_put_int(&b, v);
    send_event(c, event, &b);
    agx_buf_free(&b);
}

static void pump_count(agx_sio_conn *c)
{
    while (count_id[0] && count_sent < count_allowed && count_sent < COUNT_ITEMS)
        send_int(c, "stream:item", count_id, (int64_t)count_sent++);
    if (count_id[0] && count_sent == COUNT_ITEMS) {
        agx_buf b = {0};
        agx_mp_put_map(&b, 1);
        put_id(&b, count_id);
        send_event(c, "stream:end", &b);
        agx_buf_free(&b);
        count_id[0] = '\0';
    }
}

static void script(agx_sio_conn *c, const char *event, const char *id, const char *target)
{
    agx_buf b = {0};
    if (!strcmp(target, "t::ok")) {
        send_int(c, "unary:result", id, 7);
    } else if (!strcmp(target, "t::junk_first")) {
        send_int(c, "unary:result", "zzzzzz", 1);      /* an id never issued */
        send_int(c, "unary:result", "NOT-AN-ID", 1);   /* not base 36 */
        agx_mp_put_array(&b, 1);                       /* not a map */
        agx_mp_put_int(&b, 1);
        send_event(c, "unary:result", &b);
        agx_error err;
        CHECK_OK(agx_sio_conn_emit(c, "unary:result", NULL, NULL, 0, NULL, &err),
                 &err); /* no attachment */
        send_int(c, "unary:result", id, 7);
    } else if (!strcmp(target, "t::wrong_shape")) {
        send_int(c, "stream:item", id, 1);
    } else if (!strcmp(target, "t::no_value")) {
        agx_mp_put_map(&b, 1);
        put_id(&b, id);
        send_event(c, "unary:result", &b);
    } else if (!strcmp(target, "t::too_deep")) {
        agx_mp_put_map(&b, 2);
        put_id(&b, id);
        agx_mp_put_str(&b, "value", 5);
        for (int i = 0; i < 200; i++)
            agx_mp_put_array(&b, 1);
        agx_mp_put_nil(&b);
        send_event(c, "unary:result", &b);
    } else if (!strcmp(target, "t::error") || !strcmp(target, "t::cancelled")) {
        bool cancelled = !strcmp(target, "t::cancelled");
        agx_mp_put_map(&b, 2);
        put_id(&b, id);
        agx_mp_put_str(&b, "error", 5);
        agx_rpc_error_pack(&b, cancelled ? "Cancelled" : "MyType", "went wrong", "the detail",
                           cancelled);
        send_event(c, "unary:error", &b);
    } else if (!strcmp(target, "t::overflow")) {
        for (int i = 0; i <= WINDOW; i++)
            send_int(c, "stream:item", id, i);
    } else if (!strcmp(target, "t::count")) {
        snprintf(count_id, sizeof count_id, "%s", id);
        count_sent = 0;
        count_allowed = WINDOW;
        pump_count(c);
    } else if (!strcmp(target, "t::bad_credit")) {
        agx_mp_put_map(&b, 2);
        put_id(&b, id);
        agx_mp_put_str(&b, "n", 1);
        agx_mp_put_cstr(&b, "many");
        send_event(c, "bidi:credit", &b);
    } else if (!strcmp(target, "t::hold")) {
        snprintf(held[nheld++], sizeof held[0], "%s", id);
        held_total++;
        pthread_mutex_lock(&smu);
        hold_max = nheld > hold_max ? nheld : hold_max;
        pthread_mutex_unlock(&smu);
        /* Answer in bulk once the client stops at its cap, or when all have come. */
        if (nheld >= INFLIGHT_CAP || held_total == HOLD_CALLS) {
            for (size_t i = 0; i < nheld; i++)
                send_int(c, "unary:result", held[i], 1);
            nheld = 0;
        }
    } /* t::silent and anything else: no answer */
    (void)event;
    agx_buf_free(&b);
}

static void on_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    (void)ud;
    CHECK(p->nattach == 1);
    const unsigned char *d = p->attach[0].data;
    size_t len = p->attach[0].len;
    agx_mp_span s;
    const char *str;
    size_t n;
    char id[32] = "", target[64] = "";
    if (agx_mp_map_find(d, len, "call_id", &s) == 1 && agx_mp_get_str(s, &str, &n) == 0 &&
        n < sizeof id)
        memcpy(id, str, n);
    if (agx_mp_map_find(d, len, "target", &s) == 1 && agx_mp_get_str(s, &str, &n) == 0 &&
        n < sizeof target)
        memcpy(target, str, n);
    if (!strcmp(p->event, "credit")) {
        uint64_t k = 0;
        bool ok = agx_mp_map_find(d, len, "n", &s) == 1 && agx_mp_get_uint(s, &k) == 0;
        pthread_mutex_lock(&smu);
        credit_events++;
        credit_total += k;
        credit_bad += !ok || k == 0 || k % (WINDOW / 2) != 0; /* batches may merge */
        pthread_mutex_unlock(&smu);
        if (!strcmp(id, count_id)) {
            count_allowed += k;
            pump_count(c);
        }
    } else if (!strcmp(p->event, "cancel")) {
        pthread_mutex_lock(&smu);
        cancels++;
        pthread_cond_broadcast(&scv);
        pthread_mutex_unlock(&smu);
    } else if (target[0]) {
        script(c, p->event, id, target);
    }
}

static void closed(uv_handle_t *h) { (void)h; }

static void on_stop(uv_async_t *a)
{
    agx_sio_server_shutdown(ssrv);
    uv_close((uv_handle_t *)a, closed);
}

static void *peer_main(void *arg)
{
    (void)arg;
    uv_run(&sloop, UV_RUN_DEFAULT);
    return NULL;
}

static int peer_start(void)
{
    held = calloc(HOLD_CALLS, sizeof *held);
    CHECK(held);
    CHECK(uv_loop_init(&sloop) == 0);
    uv_async_init(&sloop, &sstop, on_stop);
    agx_sio_server_config cfg = {.handlers = {.on_event = on_event}};
    agx_error err;
    CHECK_OK(agx_sio_server_start(&sloop, &cfg, &ssrv, &err), &err);
    CHECK(pthread_create(&sthread, NULL, peer_main, NULL) == 0);
    return agx_sio_server_port(ssrv);
}

static void peer_stop(void)
{
    uv_async_send(&sstop);
    pthread_join(sthread, NULL);
    agx_sio_server_free(ssrv);
    CHECK(uv_loop_close(&sloop) == 0);
    free(held);
}

/* ---- the client side ---- */

static agx_client *cl;

static int call(const char *target, int timeout_ms, agx_value **r, agx_error *err)
{
    *r = NULL;
    return agx_client_call(cl, target, NULL, NULL, timeout_ms, r, err);
}

static int read_cancels(void)
{
    pthread_mutex_lock(&smu);
    int n = cancels;
    pthread_mutex_unlock(&smu);
    return n;
}

/* Waits until the peer has seen `want` cancels in all (the clock only guards against a hang). */
static void wait_cancels(int want)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 120; /* a hang guard */
    pthread_mutex_lock(&smu);
    while (cancels < want && pthread_cond_timedwait(&scv, &smu, &ts) == 0) {
    }
    int n = cancels;
    pthread_mutex_unlock(&smu);
    CHECK_MSG(n >= want, "the peer saw %d cancels, wanted %d", n, want);
}

static void test_junk_is_dropped(void)
{
    agx_value *r;
    agx_error err;
    CHECK_OK(call("t::junk_first", 10000, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == 7);
    agx_value_free(r);
    CHECK_OK(call("t::ok", 10000, &r, &err), &err);
    agx_value_free(r);
}

static void test_broken_answers(void)
{
    agx_value *r;
    agx_error err;
    int rc = call("t::wrong_shape", 10000, &r, &err);
    CHECK_MSG(rc == AGX_ERR_PROTOCOL, "rc %d: %s", rc, err.message);
    CHECK(r == NULL);
    rc = call("t::no_value", 10000, &r, &err);
    CHECK_MSG(rc == AGX_ERR_PROTOCOL, "rc %d: %s", rc, err.message);
    rc = call("t::too_deep", 10000, &r, &err);
    CHECK_MSG(rc == AGX_ERR_LIMIT || rc == AGX_ERR_PROTOCOL, "rc %d: %s", rc, err.message);
    CHECK(agx_client_is_connected(cl)); /* one bad answer fails one call, not the connection */
}

static void test_error_maps(void)
{
    agx_value *r;
    agx_error err;
    CHECK(call("t::error", 10000, &r, &err) == AGX_ERR_REMOTE);
    CHECK_STREQ(err.remote_type, "MyType");
    CHECK_STREQ(err.message, "went wrong");
    CHECK_STREQ(err.detail, "the detail");
    CHECK(call("t::cancelled", 10000, &r, &err) == AGX_ERR_CANCELLED);
}

static void test_timeout_sends_cancel(void)
{
    int before = read_cancels();
    agx_value *r;
    agx_error err;
    CHECK(call("t::silent", 100, &r, &err) == AGX_ERR_TIMEOUT);
    wait_cancels(before + 1);
}

static void test_window_overflow(void)
{
    int before = read_cancels();
    agx_call *k;
    agx_error err;
    CHECK_OK(agx_client_stream(cl, "t::overflow", NULL, NULL, &k, &err), &err);
    /* Take nothing until the client has refused the burst (it cancels the call when item
     * WINDOW + 1 arrives). An item taken earlier may return credit before the burst's last item
     * arrives; that item is then within the window and credit, the client rightly accepts it, and
     * the peer (which ignores credit and sends nothing more) leaves the stream open. */
    wait_cancels(before + 1);
    agx_value *item;
    int rc, n = 0;
    while ((rc = agx_call_next(k, 10000, &item, &err)) == 1) {
        agx_value_free(item);
        n++;
    }
    CHECK_MSG(rc == AGX_ERR_PROTOCOL, "rc %d: %s", rc, err.message);
    CHECK_MSG(n <= WINDOW, "%d items accepted past a window of %d", n, WINDOW);
    agx_call_free(k);
}

static void test_bad_credit(void)
{
    agx_call *k;
    agx_error err;
    CHECK_OK(agx_client_bidi(cl, "t::bad_credit", NULL, NULL, &k, &err), &err);
    agx_value *item;
    CHECK(agx_call_next(k, 10000, &item, &err) == AGX_ERR_PROTOCOL);
    agx_call_free(k);
}

static void test_credit_batches(void)
{
    agx_call *k;
    agx_error err;
    CHECK_OK(agx_client_stream(cl, "t::count", NULL, NULL, &k, &err), &err);
    agx_value *item;
    int rc, n = 0;
    while ((rc = agx_call_next(k, 10000, &item, &err)) == 1) {
        CHECK(agx_value_get_int64(item) == n);
        agx_value_free(item);
        n++;
    }
    CHECK_OK(rc, &err);
    CHECK(n == COUNT_ITEMS);
    agx_call_free(k);
    pthread_mutex_lock(&smu);
    /* Credit comes in whole half windows (merged when the consumer outruns the loop): never one
     * event per item, and never more than what was taken. */
    CHECK_MSG(credit_bad == 0, "%d credit events were not multiples of %d", credit_bad, WINDOW / 2);
    CHECK_MSG(credit_events <= COUNT_ITEMS / (WINDOW / 2), "%d credit events for %d items",
              credit_events, COUNT_ITEMS);
    CHECK_MSG(credit_total <= COUNT_ITEMS && credit_total >= COUNT_ITEMS - WINDOW,
              "credit %llu for %d items", (unsigned long long)credit_total, COUNT_ITEMS);
    pthread_mutex_unlock(&smu);
}

static pthread_mutex_t hmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hcv = PTHREAD_COND_INITIALIZER;
static int hold_done, hold_ok;

static void on_held(void *user, int status, agx_value *result, const agx_error *err)
{
    (void)user;
    (void)err;
    pthread_mutex_lock(&hmu);
    hold_done++;
    hold_ok += status == 0 && agx_value_get_int64(result) == 1;
    pthread_cond_signal(&hcv);
    pthread_mutex_unlock(&hmu);
    agx_value_free(result);
}

static void test_inflight_cap(void)
{
    agx_error err;
    for (int i = 0; i < HOLD_CALLS; i++)
        CHECK_OK(agx_client_call_async(cl, "t::hold", NULL, NULL, -1, on_held, NULL, &err), &err);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 120; /* a hang guard */
    pthread_mutex_lock(&hmu);
    while (hold_done < HOLD_CALLS && pthread_cond_timedwait(&hcv, &hmu, &ts) == 0) {
    }
    CHECK_MSG(hold_done == HOLD_CALLS && hold_ok == HOLD_CALLS, "%d done, %d ok", hold_done,
              hold_ok);
    pthread_mutex_unlock(&hmu);
    pthread_mutex_lock(&smu);
    CHECK_MSG(hold_max == INFLIGHT_CAP, "the peer held %zu calls at once", hold_max);
    pthread_mutex_unlock(&smu);
}

static int nested_rc = 1;

static void on_nested(void *user, int status, agx_value *result, const agx_error *err)
{
    (void)user;
    (void)err;
    CHECK(status == 0);
    agx_value_free(result);
    agx_value *r = NULL;
    agx_error e;
    int rc = agx_client_call(cl, "t::ok", NULL, NULL, 1000, &r, &e); /* would wait on itself */
    pthread_mutex_lock(&hmu);
    nested_rc = rc;
    pthread_cond_signal(&hcv);
    pthread_mutex_unlock(&hmu);
}

static void test_blocking_in_callback_refused(void)
{
    agx_error err;
    CHECK_OK(agx_client_call_async(cl, "t::ok", NULL, NULL, 10000, on_nested, NULL, &err), &err);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 60; /* a hang guard */
    pthread_mutex_lock(&hmu);
    while (nested_rc == 1 && pthread_cond_timedwait(&hcv, &hmu, &ts) == 0) {
    }
    CHECK_MSG(nested_rc == AGX_ERR_INVALID_ARGUMENT, "rc %d", nested_rc);
    pthread_mutex_unlock(&hmu);
}

int main(void)
{
    int port = peer_start();
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    agx_client_options o;
    agx_client_options_init(&o);
    o.stream_window = WINDOW;
    agx_error err;
    CHECK_OK(agx_client_connect(url, &o, &cl, &err), &err);
    TEST_RUN(test_junk_is_dropped);
    TEST_RUN(test_broken_answers);
    TEST_RUN(test_error_maps);
    TEST_RUN(test_timeout_sends_cancel);
    TEST_RUN(test_window_overflow);
    TEST_RUN(test_bad_credit);
    TEST_RUN(test_credit_batches);
    TEST_RUN(test_inflight_cap);
    TEST_RUN(test_blocking_in_callback_refused);
    agx_client_free(cl);
    peer_stop();
    return 0;
}
