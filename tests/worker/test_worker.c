/* test_worker.c — agentix-worker driven directly over its pipes, as agentix-server drives it:
 * every shape of the demo module, argument binding and validation errors, describe, cancellation,
 * credit flow control, concurrency, crashes and shutdown.
 *
 * Usage: test_worker <agentix-worker> <module dir> [valgrind]
 * With "valgrind" the worker itself runs under memcheck and must exit cleanly (a smaller set). */
#include "check.h"
#include "wkharness.h"

#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *worker_path, *module_dir;
static bool under_valgrind;

/* The worker (under memcheck in the valgrind run), with or without a bulk ring. */
static wkh *start_with(bool ring)
{
    wkh *(*spawn)(const char *const *, const char *, const char *const *) =
        ring ? wkh_start_ring : wkh_start;
    if (under_valgrind) {
        const char *argv[] = {"/usr/bin/valgrind", "--quiet", "--error-exitcode=99",
                              "--leak-check=full", "--errors-for-leak-kinds=definite,indirect",
                              "--show-leak-kinds=definite,indirect", worker_path, NULL};
        return spawn(argv, module_dir, NULL);
    }
    const char *argv[] = {worker_path, NULL};
    return spawn(argv, module_dir, NULL);
}

static wkh *start(void) { return start_with(false); }

static void finish_clean(wkh *h)
{
    int st = wkh_finish(h, 60000);
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker exit status %d", st);
}

static void test_unary_and_binding(void)
{
    wkh *h = start();
    agx_value *v = wkh_unary(h, 1, "demo::add", wkh_args(2, agx_value_int(2), agx_value_int(3)), NULL);
    CHECK(agx_value_get_int64(v) == 5);
    agx_value_free(v);
    v = wkh_unary(h, 2, "demo::add", wkh_args(1, agx_value_int(2)), NULL); /* b defaults to 1 */
    CHECK(agx_value_get_int64(v) == 3);
    agx_value_free(v);
    v = wkh_unary(h, 3, "demo::add", wkh_args(1, agx_value_int(2)), wkh_kwargs(1, "b", agx_value_int(40)));
    CHECK(agx_value_get_int64(v) == 42);
    agx_value_free(v);
    v = wkh_unary(h, 4, "demo::add", NULL, wkh_kwargs(2, "b", agx_value_int(1), "a", agx_value_int(-8)));
    CHECK(agx_value_get_int64(v) == -7);
    agx_value_free(v);

    /* echo returns any value unchanged, binary included. */
    agx_value *m = agx_value_map();
    agx_value_map_set(m, "bin", agx_value_binary("\0\xff", 2));
    agx_value_map_set(m, "list", wkh_args(3, agx_value_nil(), agx_value_double(1.5), agx_value_string("é")));
    agx_value *want = agx_value_copy(m);
    v = wkh_unary(h, 5, "demo::echo", wkh_args(1, m), NULL);
    CHECK(agx_value_equal(v, want));
    agx_value_free(v);
    agx_value_free(want);
    finish_clean(h);
}

static void test_validation_errors(void)
{
    wkh *h = start();
    wkh_call(h, 1, "demo::add", AGX_SHAPE_UNARY, NULL, NULL, 0);
    wkh_expect_error(h, 1, "ValidationError", "missing required parameter 'a'", false);
    wkh_call(h, 2, "demo::add", AGX_SHAPE_UNARY, wkh_args(1, agx_value_string("x")), NULL, 0);
    wkh_expect_error(h, 2, "ValidationError", "parameter 'a' must be int, got string", false);
    wkh_call(h, 3, "demo::add", AGX_SHAPE_UNARY, wkh_args(1, agx_value_int(1)),
             wkh_kwargs(1, "b", agx_value_double(2.5)), 0);
    wkh_expect_error(h, 3, "ValidationError", "parameter 'b' must be int, got double", false);
    wkh_call(h, 4, "demo::add", AGX_SHAPE_UNARY,
             wkh_args(3, agx_value_int(1), agx_value_int(2), agx_value_int(3)), NULL, 0);
    wkh_expect_error(h, 4, "ValidationError", "takes 2 positional arguments but 3 were given", false);
    wkh_call(h, 5, "demo::add", AGX_SHAPE_UNARY, wkh_args(1, agx_value_int(1)),
             wkh_kwargs(1, "c", agx_value_int(2)), 0);
    wkh_expect_error(h, 5, "ValidationError", "unexpected keyword argument 'c'", false);
    wkh_call(h, 6, "demo::add", AGX_SHAPE_UNARY, wkh_args(1, agx_value_int(1)),
             wkh_kwargs(1, "a", agx_value_int(2)), 0);
    wkh_expect_error(h, 6, "ValidationError", "multiple values for parameter 'a'", false);
    /* nil is accepted only where the default is null */
    wkh_call(h, 7, "demo::add", AGX_SHAPE_UNARY, wkh_args(2, agx_value_int(1), agx_value_nil()), NULL, 0);
    wkh_expect_error(h, 7, "ValidationError", "parameter 'b' must be int, got nil", false);

    wkh_call(h, 8, "demo::add", AGX_SHAPE_STREAM, wkh_args(1, agx_value_int(1)), NULL, 4);
    wkh_expect_error(h, 8, "ShapeMismatch", "demo::add is a unary function but was called as stream", false);
    wkh_call(h, 9, "demo::count", AGX_SHAPE_BIDI, wkh_args(1, agx_value_int(1)), NULL, 4);
    wkh_expect_error(h, 9, "ShapeMismatch", "called as bidi", false);

    wkh_call(h, 10, "nosuchmod::f", AGX_SHAPE_UNARY, NULL, NULL, 0);
    wkh_expect_error(h, 10, "NotFound", module_dir, false);
    wkh_call(h, 11, "demo::nope", AGX_SHAPE_UNARY, NULL, NULL, 0);
    wkh_expect_error(h, 11, "NotFound", "module 'demo' has no function 'nope' (it has: add, echo", false);
    wkh_call(h, 12, "../demo::add", AGX_SHAPE_UNARY, NULL, NULL, 0);
    wkh_expect_error(h, 12, "BadRequest", "module::function", false);
    wkh_call(h, 13, "demo", AGX_SHAPE_UNARY, NULL, NULL, 0);
    wkh_expect_error(h, 13, "BadRequest", "module::function", false);

    /* A module function's own failure, with its type. */
    wkh_call(h, 14, "demo::fail", AGX_SHAPE_UNARY,
             wkh_args(2, agx_value_string("ValueError"), agx_value_string("boom 42")), NULL, 0);
    wkh_expect_error(h, 14, "ValueError", "boom 42", false);

    /* A malformed call frame still gets its terminal error. */
    agx_buf f = {0};
    size_t mark;
    CHECK(agx_frame_begin(&f, AGX_FRAME_CALL, 3, &mark) == 0);
    agx_mp_put_cstr(&f, "id");
    agx_mp_put_uint(&f, 15);
    agx_mp_put_cstr(&f, "target");
    agx_mp_put_cstr(&f, "demo::add");
    agx_mp_put_cstr(&f, "shape");
    agx_mp_put_cstr(&f, "sideways");
    CHECK(agx_frame_end(&f, mark, NULL) == 0);
    wkh_send_raw(h, &f);
    agx_buf_free(&f);
    wkh_expect_error(h, 15, "BadRequest", "shape", false);

    /* The worker still works after all that. */
    agx_value *v = wkh_unary(h, 16, "demo::add", wkh_args(1, agx_value_int(0)), NULL);
    CHECK(agx_value_get_int64(v) == 1);
    agx_value_free(v);
    finish_clean(h);
}

static void test_describe(void)
{
    wkh *h = start();
    wkh_describe(h, 1, "demo::add");
    agx_value *f = wkh_expect(h, 1, "description", 30000);
    const agx_value *d = agx_value_map_get(f, "value");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(d, "name"), NULL), "demo::add");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(d, "shape"), NULL), "unary");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(d, "result"), NULL), "int");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(d, "doc"), NULL), "a + b");
    const agx_value *params = agx_value_map_get(d, "params");
    CHECK(agx_value_array_len(params) == 2);
    const agx_value *a = agx_value_array_at(params, 0), *b = agx_value_array_at(params, 1);
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(a, "name"), NULL), "a");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(a, "type"), NULL), "int");
    CHECK(agx_value_get_bool(agx_value_map_get(a, "required")));
    CHECK(!agx_value_get_bool(agx_value_map_get(b, "required")));
    CHECK(agx_value_get_int64(agx_value_map_get(b, "default")) == 1);
    agx_value_free(f);
    wkh_describe(h, 2, "demo::sum_bidi");
    f = wkh_expect(h, 2, "description", 30000);
    d = agx_value_map_get(f, "value");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(d, "shape"), NULL), "bidi");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(d, "input"), NULL), "int");
    agx_value_free(f);
    wkh_describe(h, 3, "demo::missing");
    wkh_expect_error(h, 3, "NotFound", "no function 'missing'", false);
    finish_clean(h);
}

static void test_stream(void)
{
    wkh *h = start();
    wkh_call(h, 7, "demo::count", AGX_SHAPE_STREAM, wkh_args(1, agx_value_int(3)),
             wkh_kwargs(1, "size", agx_value_int(5)), 64);
    for (int i = 0; i < 3; i++) {
        agx_value *f = wkh_expect(h, 7, "item", 30000);
        const agx_value *item = agx_value_map_get(f, "value");
        CHECK(agx_value_get_int64(agx_value_map_get(item, "i")) == i);
        size_t len;
        const char *data = agx_value_get_binary(agx_value_map_get(item, "data"), &len);
        CHECK(len == 5 && data[0] == 'a' + i && data[4] == 'a' + i);
        agx_value_free(f);
    }
    agx_value_free(wkh_expect(h, 7, "end", 30000));
    /* Zero items: straight to end. */
    wkh_call(h, 8, "demo::count", AGX_SHAPE_STREAM, wkh_args(1, agx_value_int(0)), NULL, 0);
    agx_value_free(wkh_expect(h, 8, "end", 30000));
    finish_clean(h);
}

static void test_bidi(void)
{
    wkh *h = start();
    wkh_call(h, 3, "demo::echo_bidi", AGX_SHAPE_BIDI, NULL, NULL, 64);
    uint64_t credits = 0;
    for (int i = 0; i < 5; i++) {
        wkh_in(h, 3, agx_value_int(i * 10));
        agx_value *f = wkh_next_data(h, 3, 30000, &credits);
        CHECK(f && strcmp(wkh_frame_type(f), "item") == 0);
        CHECK(agx_value_get_int64(agx_value_map_get(f, "value")) == i * 10);
        agx_value_free(f);
    }
    /* Each input was consumed with the queue left empty: all credit came back (before each echo). */
    CHECK(credits == 5);
    wkh_simple(h, AGX_FRAME_END_IN, 3);
    agx_value *e = wkh_next_data(h, 3, 30000, NULL);
    CHECK(e && strcmp(wkh_frame_type(e), "end") == 0);
    agx_value_free(e);

    wkh_call(h, 4, "demo::sum_bidi", AGX_SHAPE_BIDI, NULL, NULL, 64);
    for (int i = 1; i <= 3; i++)
        wkh_in(h, 4, agx_value_int(i));
    wkh_simple(h, AGX_FRAME_END_IN, 4);
    int64_t want[] = {1, 3, 6};
    for (int i = 0; i < 3; i++) {
        agx_value *f = wkh_next_data(h, 4, 30000, NULL);
        CHECK(f != NULL);
        CHECK_STREQ(wkh_frame_type(f), "item");
        CHECK(agx_value_get_int64(agx_value_map_get(f, "value")) == want[i]);
        agx_value_free(f);
    }
    agx_value *f = wkh_next_data(h, 4, 30000, NULL);
    CHECK(f != NULL);
    CHECK_STREQ(wkh_frame_type(f), "end");
    agx_value_free(f);

    /* An input of the wrong type fails the call naming the item. */
    wkh_call(h, 5, "demo::sum_bidi", AGX_SHAPE_BIDI, NULL, NULL, 64);
    wkh_in(h, 5, agx_value_string("x"));
    wkh_expect_error(h, 5, "ValidationError", "input item 0 is string", false);
    finish_clean(h);
}

static void test_cancel_each_shape(void)
{
    wkh *h = start();
    char path[256];
    snprintf(path, sizeof path, "/tmp/agx-wk-cancel-%d", (int)getpid());
    unlink(path);

    wkh_call(h, 1, "demo::sleep", AGX_SHAPE_UNARY, wkh_args(1, agx_value_int(600000)), NULL, 0);
    wkh_call(h, 2, "demo::wait_cancel", AGX_SHAPE_STREAM, wkh_args(1, agx_value_string(path)), NULL, 8);
    wkh_call(h, 3, "demo::echo_bidi", AGX_SHAPE_BIDI, NULL, NULL, 8);
    agx_value_free(wkh_expect(h, 2, "item", 30000)); /* it is now blocked in its wait */
    wkh_in(h, 3, agx_value_int(1));
    agx_value *f = wkh_next_data(h, 3, 30000, NULL);
    CHECK(f && strcmp(wkh_frame_type(f), "item") == 0);
    agx_value_free(f);
    /* Cancelling a call before or while it runs; cancelling an unknown id is ignored. */
    wkh_simple(h, AGX_FRAME_CANCEL, 1);
    wkh_simple(h, AGX_FRAME_CANCEL, 2);
    wkh_simple(h, AGX_FRAME_CANCEL, 3);
    wkh_simple(h, AGX_FRAME_CANCEL, 999);
    wkh_expect_error(h, 1, "Cancelled", NULL, true);
    wkh_expect_error(h, 2, "Cancelled", NULL, true);
    f = wkh_next_data(h, 3, 30000, NULL);
    CHECK(f != NULL);
    CHECK_STREQ(wkh_frame_type(f), "error");
    CHECK(agx_value_get_bool(agx_value_map_get(agx_value_map_get(f, "error"), "cancelled")));
    agx_value_free(f);
    /* The function itself saw the cancellation. */
    FILE *fp = fopen(path, "r");
    CHECK_MSG(fp != NULL, "wait_cancel left no proof in %s", path);
    char line[32] = "";
    CHECK(fgets(line, sizeof line, fp) != NULL);
    fclose(fp);
    CHECK_STREQ(line, "cancelled\n");
    unlink(path);
    /* A stream blocked on credit is cancellable too. */
    wkh_call(h, 4, "demo::count", AGX_SHAPE_STREAM, wkh_args(1, agx_value_int(100)), NULL, 1);
    agx_value_free(wkh_expect(h, 4, "item", 30000));
    wkh_simple(h, AGX_FRAME_CANCEL, 4);
    wkh_expect_error(h, 4, "Cancelled", NULL, true);
    finish_clean(h);
}

static void test_flow_control(void)
{
    wkh *h = start();
    wkh_call(h, 1, "demo::count", AGX_SHAPE_STREAM, wkh_args(1, agx_value_int(10)), NULL, 4);
    for (int i = 0; i < 4; i++)
        agx_value_free(wkh_expect(h, 1, "item", 30000));
    /* Out of credit: a round trip through the worker (describe) and a pause show nothing more. */
    wkh_describe(h, 2, "demo::count");
    agx_value_free(wkh_expect(h, 2, "description", 30000));
    agx_value *f = wkh_next(h, 1, 300);
    CHECK_MSG(f == NULL, "item sent without credit: %s", f ? wkh_frame_type(f) : "");
    wkh_credit(h, 1, 3);
    for (int i = 4; i < 7; i++) {
        f = wkh_expect(h, 1, "item", 30000);
        CHECK(agx_value_get_int64(agx_value_map_get(agx_value_map_get(f, "value"), "i")) == i);
        agx_value_free(f);
    }
    CHECK(wkh_next(h, 1, 300) == NULL);
    wkh_credit(h, 1, 100);
    for (int i = 7; i < 10; i++)
        agx_value_free(wkh_expect(h, 1, "item", 30000));
    agx_value_free(wkh_expect(h, 1, "end", 30000));

    /* Inputs beyond the window: echo_bidi blocks in emit (window 1, no credit) after taking at most
     * two inputs, so of 70 sent at least 67 wait unconsumed, over the 64 allowed. */
    wkh_call(h, 3, "demo::echo_bidi", AGX_SHAPE_BIDI, NULL, NULL, 1);
    for (int i = 0; i < 70; i++)
        wkh_in(h, 3, agx_value_int(i));
    for (;;) {
        f = wkh_next_data(h, 3, 30000, NULL);
        CHECK(f != NULL);
        if (strcmp(wkh_frame_type(f), "item") != 0)
            break;
        agx_value_free(f);
    }
    CHECK_STREQ(wkh_frame_type(f), "error");
    const agx_value *e = agx_value_map_get(f, "error");
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(e, "type"), NULL), "LimitExceeded");
    CHECK_CONTAINS(agx_value_get_string(agx_value_map_get(e, "message"), NULL), "without credit");
    CHECK(!agx_value_get_bool(agx_value_map_get(e, "cancelled")));
    agx_value_free(f);
    finish_clean(h);
}

/* 100 calls run at once: each demo::wait_cancel emits one item once it runs and then blocks until
 * cancelled, so seeing all 100 items proves all 100 are running together — whatever the
 * machine's speed, no clock involved. Then every one is cancelled. */
static void test_concurrent_calls(void)
{
    wkh *h = start();
    for (uint64_t id = 1; id <= 100; id++)
        wkh_call(h, id, "demo::wait_cancel", AGX_SHAPE_STREAM, NULL, NULL, 4);
    for (uint64_t id = 1; id <= 100; id++)
        agx_value_free(wkh_expect(h, id, "item", 120000));
    for (uint64_t id = 1; id <= 100; id++)
        wkh_simple(h, AGX_FRAME_CANCEL, id);
    for (uint64_t id = 1; id <= 100; id++)
        wkh_expect_error(h, id, "Cancelled", NULL, true);
    finish_clean(h);
}

/* More calls than threads (1024): the rest wait their turn and still all finish. */
static void test_more_calls_than_threads(void)
{
    wkh *h = start();
    const uint64_t n = 1100;
    for (uint64_t id = 1; id <= n; id++)
        wkh_call(h, id, "demo::sleep", AGX_SHAPE_UNARY, wkh_args(1, agx_value_int(300)), NULL, 0);
    for (uint64_t id = 1; id <= n; id++)
        agx_value_free(wkh_expect(h, id, "result", 60000));
    finish_clean(h);
}

static void test_crash(void)
{
    static const struct {
        const char *how;
        int sig, code;
    } cases[] = {{"segv", SIGSEGV, 0}, {"abort", SIGABRT, 0}, {"exit", 0, 3}};
    for (size_t i = 0; i < AGX_ARRAY_LEN(cases); i++) {
        wkh *h = start();
        wkh_call(h, 1, "demo::crash", AGX_SHAPE_UNARY, wkh_args(1, agx_value_string(cases[i].how)), NULL, 0);
        int st = wkh_wait_exit(h, 30000);
        CHECK_MSG(st != -1, "worker did not die on crash(%s)", cases[i].how);
        /* Sanitizer builds report a fatal signal themselves and exit non-zero instead. */
        if (cases[i].sig)
            CHECK_MSG(WIFSIGNALED(st) ? WTERMSIG(st) == cases[i].sig : WEXITSTATUS(st) != 0,
                      "crash(%s): status %#x", cases[i].how, st);
        else
            CHECK(WIFEXITED(st) && WEXITSTATUS(st) == cases[i].code);
    }
}

static void test_shutdown_with_calls_in_flight(void)
{
    wkh *h = start();
    wkh_call(h, 1, "demo::sleep", AGX_SHAPE_UNARY, wkh_args(1, agx_value_int(600000)), NULL, 0);
    wkh_call(h, 2, "demo::wait_cancel", AGX_SHAPE_STREAM, NULL, NULL, 4);
    wkh_call(h, 3, "demo::count", AGX_SHAPE_STREAM, wkh_args(1, agx_value_int(1000)), NULL, 2);
    wkh_call(h, 4, "demo::echo_bidi", AGX_SHAPE_BIDI, NULL, NULL, 4);
    agx_value_free(wkh_expect(h, 2, "item", 30000));
    int64_t t0 = wkh_now_ms();
    wkh_simple(h, AGX_FRAME_SHUTDOWN, 0);
    /* Every call in flight ends with its terminal frame before the worker exits. */
    wkh_expect_error(h, 1, "Cancelled", NULL, true);
    wkh_expect_error(h, 2, "Cancelled", NULL, true);
    agx_value *f;
    while (strcmp(wkh_frame_type(f = wkh_next(h, 3, 30000)), "item") == 0)
        agx_value_free(f);
    CHECK_STREQ(wkh_frame_type(f), "error");
    agx_value_free(f);
    wkh_expect_error(h, 4, "Cancelled", NULL, true);
    int st = wkh_wait_exit(h, 30000);
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
    fprintf(stderr, "   shutdown took %lld ms\n", (long long)(wkh_now_ms() - t0));
}

static void test_stdin_eof_exits(void)
{
    wkh *h = start();
    wkh_call(h, 1, "demo::sleep", AGX_SHAPE_UNARY, wkh_args(1, agx_value_int(600000)), NULL, 0);
    int st = wkh_finish(h, 30000); /* closing stdin: the server is gone */
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %#x", st);
}

/* Frames far larger than a pipe's buffer cross intact in both directions. */
static void test_large_frames(void)
{
    wkh *h = start();
    size_t n = 5u << 20;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 13);
    agx_value *v = agx_value_binary(data, n);
    agx_value *want = agx_value_copy(v);
    agx_value *got = wkh_unary(h, 1, "demo::echo", wkh_args(1, v), NULL);
    CHECK(agx_value_equal(got, want));
    agx_value_free(got);
    agx_value_free(want);
    free(data);
    finish_clean(h);
}

/* 256 MiB in 1 MiB binary items through a window of 8, credit granted as items are consumed:
 * every byte arrives, in order. */
static void test_large_stream(void)
{
    wkh *h = start();
    const int64_t total = 256ll << 20, chunk = 1 << 20;
    wkh_call(h, 1, "demo::produce_bytes", AGX_SHAPE_STREAM,
             wkh_args(2, agx_value_int(total), agx_value_int(chunk)), NULL, 8);
    int64_t got = 0, t0 = wkh_now_ms();
    for (;;) {
        agx_value *f = wkh_next(h, 1, 30000);
        CHECK(f != NULL);
        if (strcmp(wkh_frame_type(f), "end") == 0) {
            agx_value_free(f);
            break;
        }
        CHECK_STREQ(wkh_frame_type(f), "item");
        size_t len;
        const unsigned char *d = agx_value_get_binary(agx_value_map_get(f, "value"), &len);
        CHECK(len == (size_t)chunk && d[0] == 7 && d[len - 1] == (unsigned char)((chunk - 1) * 31 + 7));
        got += (int64_t)len;
        agx_value_free(f);
        wkh_credit(h, 1, 1);
    }
    CHECK(got == total);
    fprintf(stderr, "   256 MiB streamed in %lld ms\n", (long long)(wkh_now_ms() - t0));
    finish_clean(h);
}

/* Reads the items of call id up to its end; each must be chunk bytes (the last: what remains of
 * total) of demo::produce_bytes's pattern, every byte checked; credit: one back per item read.
 * Returns the bytes read. */
static int64_t read_pattern_stream(wkh *h, uint64_t id, int64_t chunk, bool credit)
{
    int64_t got = 0;
    for (;;) {
        agx_value *f = wkh_next(h, id, 30000);
        CHECK(f != NULL);
        if (strcmp(wkh_frame_type(f), "end") == 0) {
            agx_value_free(f);
            return got;
        }
        CHECK_STREQ(wkh_frame_type(f), "item");
        size_t len;
        const unsigned char *d = agx_value_get_binary(agx_value_map_get(f, "value"), &len);
        CHECK(d && len > 0 && len <= (size_t)chunk);
        for (size_t i = 0; i < len; i++)
            CHECK_MSG(d[i] == (unsigned char)(i * 31 + 7), "byte %zu of an item at %lld is wrong", i,
                      (long long)got);
        got += (int64_t)len;
        agx_value_free(f);
        if (credit)
            wkh_credit(h, id, 1);
    }
}

/* demo::produce_bytes of total bytes in chunk-byte items as call id (window items, credit back
 * per item when credit), every byte checked; how many of the items came through the ring. */
static size_t ring_stream(wkh *h, uint64_t id, int64_t total, int64_t chunk, uint32_t window,
                          bool credit)
{
    h->ring_items = 0;
    wkh_call(h, id, "demo::produce_bytes", AGX_SHAPE_STREAM,
             wkh_args(2, agx_value_int(total), agx_value_int(chunk)), NULL, window);
    CHECK(read_pattern_stream(h, id, chunk, credit) == total);
    return h->ring_items;
}

/* The bulk ring (runtime/wire/ring.h) from the worker's end: large items go into it and arrive
 * whole; items whose size does not divide the ring skip to the next lap without a byte lost;
 * with nothing released the ring fills up and the rest go through the pipe, in order; released,
 * the ring is used again; small items never use it. */
static void test_ring(void)
{
    wkh *h = start_with(true);
    /* 2 MiB / 48 KiB: a lap every 42 items; a window of 8 never fills the ring. */
    size_t n = ring_stream(h, 1, 200 * (48 << 10), 48 << 10, 8, true);
    CHECK_MSG(n == 200, "%zu of 200 items came through the ring", n);

    /* Nothing released: 32 items of 64 KiB fill the 2 MiB ring, the other 32 take the pipe. */
    h->ring_hold = true;
    wkh_ring_release(h);
    n = ring_stream(h, 2, 64 << 16, 1 << 16, 64, false);
    CHECK_MSG(n == 32, "%zu items through a ring that holds 32", n);

    h->ring_hold = false;
    wkh_ring_release(h);
    n = ring_stream(h, 3, 8 << 16, 1 << 16, 64, false);
    CHECK_MSG(n == 8, "%zu of 8 items through the released ring", n);

    n = ring_stream(h, 4, 100 * 1000, 1000, 256, false);
    CHECK_MSG(n == 0, "%zu small items used the ring", n);
    finish_clean(h);
}

/* A 64 KiB binary whose bytes say which input it is. */
static agx_value *numbered_blob(int i)
{
    unsigned char *d = malloc(1 << 16);
    CHECK(d);
    for (size_t k = 0; k < 1 << 16; k++)
        d[k] = (unsigned char)(i + k * 7);
    agx_value *v = agx_value_binary(d, 1 << 16);
    free(d);
    return v;
}

static void expect_echo(wkh *h, uint64_t id, int i)
{
    agx_value *f = wkh_next_data(h, id, 30000, NULL);
    CHECK(f && strcmp(wkh_frame_type(f), "item") == 0);
    size_t len;
    const unsigned char *d = agx_value_get_binary(agx_value_map_get(f, "value"), &len);
    CHECK_MSG(d && len == 1 << 16, "echo %d: %zu bytes", i, len);
    for (size_t k = 0; k < len; k++)
        CHECK_MSG(d[k] == (unsigned char)(i + k * 7), "echo %d: byte %zu is wrong", i, k);
    agx_value_free(f);
}

/* The in ring (server → worker), with the harness as the server: large inputs cross it and come
 * back whole and in order through the out ring; with the worker stopped, 31 inputs of 64 KiB
 * fill it and the other 9 take the pipe, in order; once the worker has read them the ring takes
 * inputs again. */
static void test_ring_in(void)
{
    wkh *h = start_with(true);
    wkh_call(h, 7, "demo::echo_bidi", AGX_SHAPE_BIDI, NULL, NULL, 64);
    CHECK(kill(h->pid, SIGSTOP) == 0);
    for (int i = 0; i < 40; i++)
        wkh_in(h, 7, numbered_blob(i));
    CHECK_MSG(h->in_ring_items == 31, "%zu of 40 inputs of 64 KiB in a 2 MiB ring", h->in_ring_items);
    CHECK(kill(h->pid, SIGCONT) == 0);
    for (int i = 0; i < 40; i++)
        expect_echo(h, 7, i);
    h->in_ring_items = 0;
    for (int i = 40; i < 50; i++) {
        wkh_in(h, 7, numbered_blob(i));
        expect_echo(h, 7, i);
    }
    CHECK_MSG(h->in_ring_items == 10, "%zu of 10 inputs through the released ring", h->in_ring_items);
    wkh_simple(h, AGX_FRAME_END_IN, 7);
    agx_value *e = wkh_next_data(h, 7, 30000, NULL);
    CHECK(e && strcmp(wkh_frame_type(e), "end") == 0);
    agx_value_free(e);
    finish_clean(h);
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc >= 3, "usage: test_worker <agentix-worker> <module dir> [valgrind]");
    worker_path = argv[1];
    module_dir = argv[2];
    under_valgrind = argc > 3 && strcmp(argv[3], "valgrind") == 0;
    signal(SIGPIPE, SIG_IGN);
    if (under_valgrind) {
        TEST_RUN(test_unary_and_binding);
        TEST_RUN(test_validation_errors);
        TEST_RUN(test_stream);
        TEST_RUN(test_bidi);
        TEST_RUN(test_cancel_each_shape);
        TEST_RUN(test_ring);
        TEST_RUN(test_ring_in);
        return 0;
    }
    TEST_RUN(test_unary_and_binding);
    TEST_RUN(test_validation_errors);
    TEST_RUN(test_describe);
    TEST_RUN(test_stream);
    TEST_RUN(test_bidi);
    TEST_RUN(test_cancel_each_shape);
    TEST_RUN(test_flow_control);
    TEST_RUN(test_concurrent_calls);
    TEST_RUN(test_more_calls_than_threads);
    TEST_RUN(test_crash);
    TEST_RUN(test_shutdown_with_calls_in_flight);
    TEST_RUN(test_stdin_eof_exits);
    TEST_RUN(test_large_frames);
    TEST_RUN(test_large_stream);
    TEST_RUN(test_ring);
    TEST_RUN(test_ring_in);
    return 0;
}
