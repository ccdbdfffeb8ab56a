/* test_client.c — the RPC client (client.h) against a real agentix-server running the demo
 * module: every shape, arguments, remote errors, timeouts, cancellation, describe, connect
 * failures, bidi input credit, callback forms and freeing unfinished calls. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "demo_calls.h"
#include "harness.h"

static test_server srv;
static agx_client *cl;

static int64_t call_int(const char *target, agx_value *args, agx_value *kwargs)
{
    agx_value *r = NULL;
    agx_error err;
    CHECK_OK(agx_client_call(cl, target, args, kwargs, 10000, &r, &err), &err);
    CHECK_MSG(agx_value_type_of(r) == AGX_VALUE_INT, "got %s",
              agx_value_type_name(agx_value_type_of(r)));
    int64_t v = agx_value_get_int64(r);
    agx_value_free(r);
    agx_value_free(args);
    agx_value_free(kwargs);
    return v;
}

/* The call must fail with AGX_ERR_REMOTE and that remote type. */
static void expect_remote(const char *target, agx_value *args, agx_value *kwargs, const char *type)
{
    agx_value *r = NULL;
    agx_error err;
    int rc = agx_client_call(cl, target, args, kwargs, 10000, &r, &err);
    CHECK_MSG(rc == AGX_ERR_REMOTE, "%s: rc %d (%s)", target, rc, err.message);
    CHECK(r == NULL);
    CHECK_STREQ(err.remote_type, type);
    CHECK(err.message[0]);
    agx_value_free(args);
    agx_value_free(kwargs);
}

static void test_unary_args(void)
{
    CHECK(call_int("demo::add", h_ints(2, 2, 3), NULL) == 5);
    CHECK(call_int("demo::add", h_ints(1, 41), NULL) == 42); /* b defaults to 1 */
    CHECK(call_int("demo::add", NULL, h_kw("a", agx_value_int(7), "b", agx_value_int(8), NULL)) ==
          15);
    CHECK(call_int("demo::add", h_ints(1, 2), h_kw("b", agx_value_int(10), NULL)) == 12);

    agx_value *v = h_kw("s", agx_value_string("héllo"), "bin", agx_value_binary("\0\1\2", 3),
                        "list", h_ints(3, 1, 2, 3), "nil", agx_value_nil(), "d",
                        agx_value_double(2.5), NULL);
    agx_value *args = agx_value_array();
    agx_value_array_push(args, agx_value_copy(v));
    agx_value *r = NULL;
    agx_error err;
    CHECK_OK(agx_client_call(cl, "demo::echo", args, NULL, 10000, &r, &err), &err);
    CHECK(agx_value_equal(r, v));
    agx_value_free(r);
    agx_value_free(args);
    agx_value_free(v);
}

static void test_remote_errors(void)
{
    agx_value *r = NULL;
    agx_error err;
    agx_value *fa = agx_value_array();
    agx_value_array_push(fa, agx_value_string("MyError"));
    agx_value_array_push(fa, agx_value_string("it broke"));
    CHECK(agx_client_call(cl, "demo::fail", fa, NULL, 10000, &r, &err) == AGX_ERR_REMOTE);
    CHECK_STREQ(err.remote_type, "MyError");
    CHECK_CONTAINS(err.message, "it broke");
    agx_value_free(fa);

    agx_value *bad = agx_value_array();
    agx_value_array_push(bad, agx_value_string("not an int"));
    expect_remote("demo::add", bad, NULL, "ValidationError");
    expect_remote("demo::add", NULL, NULL, "ValidationError"); /* a is required */
    expect_remote("demo::count", h_ints(1, 3), NULL, "ShapeMismatch");
    expect_remote("demo::no_such_function", NULL, NULL, "NotFound");
    expect_remote("no_such_module::f", NULL, NULL, "NotFound");

    /* Refused locally, before anything is sent. */
    CHECK(agx_client_call(cl, "no-colons", NULL, NULL, 0, &r, &err) == AGX_ERR_INVALID_ARGUMENT);
    /* Over max_payload: refused on the calling thread, the connection stays up. */
    agx_value *big = agx_value_array();
    char *blob = calloc(1, (64u << 20) + 1);
    CHECK(blob);
    agx_value_array_push(big, agx_value_binary(blob, (64u << 20) + 1));
    free(blob);
    CHECK(agx_client_call(cl, "demo::echo", big, NULL, 0, &r, &err) == AGX_ERR_LIMIT);
    agx_value_free(big);
    CHECK(agx_client_is_connected(cl));
    agx_value *notarr = agx_value_int(1);
    CHECK(agx_client_call(cl, "demo::add", notarr, NULL, 0, &r, &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_value_free(notarr);
}

static void test_unary_timeout(void)
{
    agx_value *r = NULL;
    agx_error err;
    agx_value *args = h_ints(1, 60000);
    int rc = agx_client_call(cl, "demo::sleep", args, NULL, 200, &r, &err);
    CHECK_MSG(rc == AGX_ERR_TIMEOUT, "rc %d (%s)", rc, err.message);
    agx_value_free(args);
    /* The connection and the worker are still usable. */
    CHECK(call_int("demo::add", h_ints(2, 1, 1), NULL) == 2);
    args = h_ints(1, 5);
    CHECK_OK(agx_client_call(cl, "demo::sleep", args, NULL, 10000, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == 5);
    agx_value_free(r);
    agx_value_free(args);
}

static void test_describe(void)
{
    agx_value *d = NULL;
    agx_error err;
    CHECK_OK(agx_client_describe(cl, "demo::add", 10000, &d, &err), &err);
    CHECK_CONTAINS(agx_value_get_string(agx_value_map_get(d, "name"), NULL), "add");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(d, "shape"), NULL), "unary");
    const agx_value *params = agx_value_map_get(d, "params");
    CHECK(agx_value_array_len(params) == 2);
    CHECK_STREQ(
        agx_value_get_string(agx_value_map_get(agx_value_array_at(params, 0), "name"), NULL), "a");
    agx_value_free(d);
    CHECK_OK(agx_client_describe(cl, "demo::echo_bidi", 10000, &d, &err), &err);
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(d, "shape"), NULL), "bidi");
    agx_value_free(d);
    CHECK(agx_client_describe(cl, "demo::nope", 10000, &d, &err) == AGX_ERR_REMOTE);
    CHECK_STREQ(err.remote_type, "NotFound");
}

static void test_stream(void)
{
    agx_call *call = NULL;
    agx_error err;
    agx_value *args = h_ints(2, 300, 100);
    CHECK_OK(agx_client_stream(cl, "demo::count", args, NULL, &call, &err), &err);
    agx_value_free(args);
    agx_value *item;
    int rc, n = 0;
    while ((rc = agx_call_next(call, 10000, &item, &err)) == 1) {
        CHECK(agx_value_get_int64(agx_value_map_get(item, "i")) == n);
        size_t len = 0;
        const char *data = agx_value_get_binary(agx_value_map_get(item, "data"), &len);
        CHECK(len == 100 && data[0] == 'a' + n % 26);
        agx_value_free(item);
        n++;
    }
    CHECK_OK(rc, &err);
    CHECK(n == 300);
    CHECK(agx_call_next(call, 1000, &item, &err) == 0); /* stays at the end */
    agx_call_free(call);

    /* An error before any item, and a shape mismatch. */
    args = h_ints(1, -1);
    CHECK_OK(agx_client_stream(cl, "demo::count", args, NULL, &call, &err), &err);
    agx_value_free(args);
    CHECK(agx_call_next(call, 10000, &item, &err) == AGX_ERR_REMOTE);
    CHECK_STREQ(err.remote_type, "ValueError");
    agx_call_free(call);
    args = h_ints(2, 1, 2);
    CHECK_OK(agx_client_stream(cl, "demo::add", args, NULL, &call, &err), &err);
    agx_value_free(args);
    CHECK(agx_call_next(call, 10000, &item, &err) == AGX_ERR_REMOTE);
    CHECK_STREQ(err.remote_type, "ShapeMismatch");
    agx_call_free(call);
}

static void test_stream_cancel(void)
{
    char marker[256];
    snprintf(marker, sizeof marker, "%s/cancel-stream", srv.dir);
    agx_value *kw = h_kw("path", agx_value_string(marker), NULL);
    agx_call *call = NULL;
    agx_error err;
    CHECK_OK(agx_client_stream(cl, "demo::wait_cancel", NULL, kw, &call, &err), &err);
    agx_value_free(kw);
    agx_value *item;
    CHECK(agx_call_next(call, 10000, &item, &err) == 1);
    CHECK_STREQ(agx_value_get_string(item, NULL), "waiting");
    agx_value_free(item);
    CHECK(agx_call_cancel(call) == 0);
    CHECK(agx_call_next(call, 10000, &item, &err) == AGX_ERR_CANCELLED);
    CHECK(agx_call_cancel(call) == 0); /* harmless when done */
    agx_call_free(call);
    CHECK_MSG(h_wait_file(marker, 10000), "the function never saw the cancel");

    /* Freeing an unfinished stream cancels it too. */
    snprintf(marker, sizeof marker, "%s/free-stream", srv.dir);
    kw = h_kw("path", agx_value_string(marker), NULL);
    CHECK_OK(agx_client_stream(cl, "demo::wait_cancel", NULL, kw, &call, &err), &err);
    agx_value_free(kw);
    CHECK(agx_call_next(call, 10000, &item, &err) == 1);
    agx_value_free(item);
    agx_call_free(call);
    CHECK_MSG(h_wait_file(marker, 10000), "freeing the call did not cancel it");

    /* A long producer cut short after a few items, and a call freed before its first item. */
    agx_value *args = h_ints(1, 100000000);
    CHECK_OK(agx_client_stream(cl, "demo::count", args, NULL, &call, &err), &err);
    for (int i = 0; i < 5; i++) {
        CHECK(agx_call_next(call, 10000, &item, &err) == 1);
        agx_value_free(item);
    }
    agx_call_free(call);
    CHECK_OK(agx_client_stream(cl, "demo::count", args, NULL, &call, &err), &err);
    agx_call_free(call);
    agx_value_free(args);
    CHECK(call_int("demo::add", h_ints(2, 20, 22), NULL) == 42);
}

/* Large items and results (16 KiB and more) reach the host in the buffer they were received in:
 * every byte must be there, strings NUL-terminated, sizes around the threshold included. */
static void check_pattern(const agx_value *item, size_t want)
{
    size_t len = 0;
    const unsigned char *d = agx_value_get_binary(item, &len);
    CHECK(d && len == want);
    for (size_t i = 0; i < len; i++)
        CHECK(d[i] == (unsigned char)(i * 31 + 7));
}

static void test_large_values(void)
{
    agx_error err;
    const int64_t chunks[] = {(16 << 10) - 64, 16 << 10, 100000, 300000};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        int64_t chunk = chunks[c], total = chunk * 4 + 12345;
        agx_value *args = h_ints(2, total, chunk);
        agx_call *call = NULL;
        CHECK_OK(agx_client_stream(cl, "demo::produce_bytes", args, NULL, &call, &err), &err);
        agx_value_free(args);
        agx_value *item;
        int rc;
        int64_t got = 0;
        while ((rc = agx_call_next(call, 10000, &item, &err)) == 1) {
            size_t want = (size_t)(total - got < chunk ? total - got : chunk);
            check_pattern(item, want);
            got += (int64_t)want;
            agx_value_free(item);
        }
        CHECK_OK(rc, &err);
        CHECK(got == total);
        agx_call_free(call);
    }
    /* A large string and binary as unary results, and a large string through a bidi. */
    size_t n = 200000;
    char *text = malloc(n + 1);
    CHECK(text != NULL);
    for (size_t i = 0; i < n; i++)
        text[i] = (char)('a' + i % 26);
    text[n] = '\0';
    agx_value *vals[] = {agx_value_string(text), agx_value_binary(text, n / 2)};
    for (size_t i = 0; i < 2; i++) {
        agx_value *kw = h_kw("value", agx_value_copy(vals[i]), NULL), *r = NULL;
        CHECK_OK(agx_client_call(cl, "demo::echo", NULL, kw, 10000, &r, &err), &err);
        CHECK(agx_value_equal(r, vals[i]));
        size_t len = 0;
        const char *s = agx_value_get_string(r, &len);
        CHECK(i == 1 || (s && len == n && strlen(s) == n));
        agx_value_free(r);
        agx_value_free(kw);
    }
    agx_call *call = NULL;
    CHECK_OK(agx_client_bidi(cl, "demo::echo_bidi", NULL, NULL, &call, &err), &err);
    agx_value *item = NULL;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(agx_call_send(call, vals[0], 10000, &err), &err);
        CHECK(agx_call_next(call, 10000, &item, &err) == 1);
        CHECK(agx_value_equal(item, vals[0]));
        agx_value_free(item);
    }
    CHECK_OK(agx_call_close_send(call, &err), &err);
    CHECK(agx_call_next(call, 10000, &item, &err) == 0);
    agx_call_free(call);
    agx_value_free(vals[0]);
    agx_value_free(vals[1]);
    free(text);
}

typedef struct sender {
    agx_call *call;
    int n;
    int rc;
} sender;

static void *send_all(void *arg)
{
    sender *s = arg;
    agx_error err;
    for (int i = 1; i <= s->n && s->rc == 0; i++) {
        agx_value *v = agx_value_int(i);
        s->rc = agx_call_send(s->call, v, 20000, &err);
        agx_value_free(v);
    }
    if (s->rc == 0)
        s->rc = agx_call_close_send(s->call, &err);
    return NULL;
}

static void test_bidi(void)
{
    /* 1000 inputs: far beyond the initial 64, so input credit has to flow back. */
    agx_call *call = NULL;
    agx_error err;
    CHECK_OK(agx_client_bidi(cl, "demo::sum_bidi", NULL, NULL, &call, &err), &err);
    sender s = {.call = call, .n = 1000};
    pthread_t t;
    pthread_create(&t, NULL, send_all, &s);
    agx_value *item;
    int rc, n = 0;
    int64_t last = 0;
    while ((rc = agx_call_next(call, 20000, &item, &err)) == 1) {
        n++;
        last = agx_value_get_int64(item);
        CHECK(last == (int64_t)n * (n + 1) / 2);
        agx_value_free(item);
    }
    CHECK_OK(rc, &err);
    pthread_join(t, NULL);
    CHECK(s.rc == 0);
    CHECK(n == 1000 && last == 500500);
    agx_value *v = agx_value_int(1);
    CHECK(agx_call_send(call, v, 1000, &err) == AGX_ERR_INVALID_ARGUMENT); /* input closed */
    agx_value_free(v);
    agx_call_free(call);
}

/* The function stops reading while nobody takes its output: the sender must stall on credit
 * after at most the initial input credit plus what the function consumed before its output
 * window filled; then reading the output lets everything through. */
static void test_bidi_slow_reader_bounds_sender(void)
{
    agx_call *call = NULL;
    agx_error err;
    CHECK_OK(agx_client_bidi(cl, "demo::echo_bidi", NULL, NULL, &call, &err), &err);
    int sent = 0, rc;
    for (;;) {
        agx_value *v = agx_value_int(sent);
        rc = agx_call_send(call, v, 500, &err);
        agx_value_free(v);
        if (rc)
            break;
        sent++;
        CHECK_MSG(sent <= 64 + 64 + 4, "sent %d items without credit", sent);
    }
    CHECK_MSG(rc == AGX_ERR_TIMEOUT, "rc %d: %s", rc, err.message);
    CHECK_MSG(sent >= 64, "only %d items accepted", sent);
    /* Reading one window of output lets the function consume more input. */
    agx_value *item;
    for (int i = 0; i < 64; i++) {
        CHECK(agx_call_next(call, 10000, &item, &err) == 1);
        CHECK(agx_value_get_int64(item) == i);
        agx_value_free(item);
    }
    agx_value *v = agx_value_int(sent);
    CHECK_OK(agx_call_send(call, v, 10000, &err), &err);
    agx_value_free(v);
    sent++;
    CHECK_OK(agx_call_close_send(call, &err), &err);
    int n = 64;
    while ((rc = agx_call_next(call, 10000, &item, &err)) == 1) {
        CHECK(agx_value_get_int64(item) == n);
        agx_value_free(item);
        n++;
    }
    CHECK_OK(rc, &err);
    CHECK(n == sent);
    agx_call_free(call);
}

static void test_bidi_cancel(void)
{
    agx_call *call = NULL;
    agx_error err;
    CHECK_OK(agx_client_bidi(cl, "demo::echo_bidi", NULL, NULL, &call, &err), &err);
    agx_value *v = agx_value_string("x"), *item;
    CHECK_OK(agx_call_send(call, v, 10000, &err), &err);
    CHECK(agx_call_next(call, 10000, &item, &err) == 1);
    CHECK(agx_value_equal(item, v));
    agx_value_free(item);
    CHECK(agx_call_cancel(call) == 0);
    CHECK(agx_call_next(call, 10000, &item, &err) == AGX_ERR_CANCELLED);
    CHECK(agx_call_send(call, v, 1000, &err) == AGX_ERR_CANCELLED);
    agx_value_free(v);
    agx_call_free(call);
    /* Freed with input still open. */
    CHECK_OK(agx_client_bidi(cl, "demo::echo_bidi", NULL, NULL, &call, &err), &err);
    agx_call_free(call);
    CHECK(call_int("demo::add", h_ints(1, 1), NULL) == 2);
}

/* ---- callback forms ---- */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int pending, ok, errors, last_status;
    int64_t sum;
    int items;
    char remote_type[64];
} waiter;

static void waiter_init(waiter *w, int pending)
{
    memset(w, 0, sizeof *w);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->pending = pending;
}

static void waiter_wait(waiter *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 120; /* a hang guard, not a performance bound */
    pthread_mutex_lock(&w->mu);
    while (w->pending > 0 && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0) {
    }
    CHECK_MSG(w->pending == 0, "%d callbacks never came", w->pending);
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
}

static void on_unary(void *user, int status, agx_value *result, const agx_error *err)
{
    waiter *w = user;
    pthread_mutex_lock(&w->mu);
    if (status == 0) {
        w->ok++;
        w->sum += agx_value_get_int64(result);
    } else {
        w->errors++;
        w->last_status = status;
        snprintf(w->remote_type, sizeof w->remote_type, "%s", err->remote_type);
    }
    w->pending--;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    agx_value_free(result);
}

static void on_stream(void *user, agx_call_event ev, agx_value *item, const agx_error *err)
{
    waiter *w = user;
    pthread_mutex_lock(&w->mu);
    if (ev == AGX_CALL_ITEM) {
        CHECK(agx_value_get_int64(agx_value_map_get(item, "i")) == w->items);
        w->items++;
    } else {
        w->last_status = ev == AGX_CALL_END ? 0 : err->code;
        if (ev == AGX_CALL_ERROR)
            snprintf(w->remote_type, sizeof w->remote_type, "%s", err->remote_type);
        w->pending--;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    agx_value_free(item);
}

/* Counts items of any kind. */
static void on_any_stream(void *user, agx_call_event ev, agx_value *item, const agx_error *err)
{
    waiter *w = user;
    pthread_mutex_lock(&w->mu);
    if (ev == AGX_CALL_ITEM) {
        w->items++;
    } else {
        w->last_status = ev == AGX_CALL_END ? 0 : err->code;
        w->pending--;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    agx_value_free(item);
}

static void test_callbacks(void)
{
    waiter w;
    agx_error err;
    waiter_init(&w, 500);
    for (int i = 0; i < 500; i++) {
        agx_value *a = h_ints(2, i, 1);
        CHECK_OK(agx_client_call_async(cl, "demo::add", a, NULL, 10000, on_unary, &w, &err), &err);
        agx_value_free(a);
    }
    waiter_wait(&w);
    CHECK(w.ok == 500 && w.sum == 499 * 500 / 2 + 500);

    waiter_init(&w, 1);
    agx_value *a = h_ints(1, 60000);
    CHECK_OK(agx_client_call_async(cl, "demo::sleep", a, NULL, 200, on_unary, &w, &err), &err);
    agx_value_free(a);
    waiter_wait(&w);
    CHECK(w.errors == 1 && w.last_status == AGX_ERR_TIMEOUT);

    waiter_init(&w, 1);
    a = h_ints(1, 1000);
    CHECK_OK(agx_client_stream_async(cl, "demo::count", a, NULL, on_stream, &w, NULL, &err), &err);
    agx_value_free(a);
    waiter_wait(&w);
    CHECK(w.items == 1000 && w.last_status == 0);

    /* Cancelled through its handle: the last callback says Cancelled. */
    waiter_init(&w, 1);
    agx_call *call = NULL;
    a = h_ints(1, 100000000);
    CHECK_OK(agx_client_stream_async(cl, "demo::count", a, NULL, on_stream, &w, &call, &err), &err);
    agx_value_free(a);
    h_sleep_ms(50);
    CHECK(agx_call_cancel(call) == 0);
    waiter_wait(&w);
    CHECK(w.last_status == AGX_ERR_CANCELLED);
    agx_call_free(call);
}

static void test_connect_failures(void)
{
    agx_client_options o;
    agx_client_options_init(&o);
    o.token = "wrong";
    agx_client *c = NULL;
    agx_error err;
    int rc = agx_client_connect(srv.url, &o, &c, &err);
    CHECK_MSG(rc == AGX_ERR_PROTOCOL, "rc %d: %s", rc, err.message);
    CHECK_CONTAINS(err.message, "invalid token");
    CHECK(c == NULL);
    o.token = NULL;
    CHECK(agx_client_connect(srv.url, &o, &c, &err) == AGX_ERR_PROTOCOL);
    CHECK_CONTAINS(err.message, "invalid token");

    /* Nothing listens on port 1; a short connect timeout bounds the wait either way. */
    o.token = srv.token;
    o.connect_timeout_ms = 2000;
    rc = agx_client_connect("http://127.0.0.1:1", &o, &c, &err);
    CHECK_MSG(rc == AGX_ERR_UNAVAILABLE || rc == AGX_ERR_TIMEOUT, "rc %d: %s", rc, err.message);
    CHECK(c == NULL);
    CHECK(agx_client_connect("ftp://x", &o, &c, &err) == AGX_ERR_INVALID_ARGUMENT);

    /* connect_to: a URL naming another host:port reaches the server through the rule (with a
     * bound for a loaded machine again: this connect must succeed). */
    o.connect_timeout_ms = AGX_TEST_CONNECT_MS;
    char rule[128];
    snprintf(rule, sizeof rule, "sandbox.invalid:80:127.0.0.1:%d", srv.port);
    o.connect_to = rule;
    CHECK_OK(agx_client_connect("http://sandbox.invalid", &o, &c, &err), &err);
    agx_value *r = NULL, *args = h_ints(1, 1);
    CHECK_OK(agx_client_call(c, "demo::add", args, NULL, 10000, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == 2);
    agx_value_free(r);
    agx_value_free(args);
    agx_client_free(c);

    /* From a sandbox record: its URL, token and headers, with the rule from the environment. */
    setenv("AGENTIX_CONNECT_TO", rule, 1);
    agx_sandbox *sb = agx_sandbox_new("local", "sb-1", "http://sandbox.invalid", srv.token);
    CHECK(sb);
    CHECK(agx_kv_set(agx_sandbox_headers(sb), "X-Agentix-Test", "1") == 0);
    CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
    args = h_ints(2, 2, 2);
    CHECK_OK(agx_client_call(c, "demo::add", args, NULL, 10000, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == 4);
    agx_value_free(r);
    agx_value_free(args);
    agx_client_free(c);
    unsetenv("AGENTIX_CONNECT_TO");
    CHECK(agx_client_connect_sandbox(sb, &o, &c, &err) == 0); /* o.connect_to still routes */
    agx_client_free(c);
    agx_sandbox_free(sb);
}

/* The host goes away with a stream open: the runtime cancels the function. */
static void test_client_free_cancels(void)
{
    agx_client *c = h_connect(&srv);
    char marker[256];
    snprintf(marker, sizeof marker, "%s/client-free", srv.dir);
    agx_value *kw = h_kw("path", agx_value_string(marker), NULL);
    waiter w;
    waiter_init(&w, 1);
    agx_error err;
    CHECK_OK(agx_client_stream_async(c, "demo::wait_cancel", NULL, kw, on_any_stream, &w, NULL,
                                     &err),
             &err);
    agx_value_free(kw);
    pthread_mutex_lock(&w.mu);
    for (int i = 0; i < 1000 && w.items == 0; i++) {
        pthread_mutex_unlock(&w.mu);
        h_sleep_ms(10);
        pthread_mutex_lock(&w.mu);
    }
    CHECK_MSG(w.items == 1, "the function did not start");
    pthread_mutex_unlock(&w.mu);
    agx_client_free(c);
    waiter_wait(&w);
    CHECK(w.last_status == AGX_ERR_CANCELLED);
    CHECK_MSG(h_wait_file(marker, 10000), "disconnecting did not cancel the function");
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    h_server_start(&srv);
    cl = h_connect(&srv);
    TEST_RUN(test_unary_args);
    TEST_RUN(test_remote_errors);
    TEST_RUN(test_unary_timeout);
    TEST_RUN(test_describe);
    TEST_RUN(test_stream);
    TEST_RUN(test_stream_cancel);
    TEST_RUN(test_large_values);
    TEST_RUN(test_bidi);
    TEST_RUN(test_bidi_slow_reader_bounds_sender);
    TEST_RUN(test_bidi_cancel);
    TEST_RUN(test_callbacks);
    /* These make their own clients while `cl` stays connected: several clients alive at once in
     * one process must not leak (memcheck and LeakSanitizer check it). */
    TEST_RUN(test_connect_failures);
    TEST_RUN(test_client_free_cancels);
    agx_client_free(cl);
    h_server_stop(&srv);
    return 0;
}
