/* test_client_failures.c — the client when the other side dies: agentix-server SIGKILLed with
 * calls of every shape in flight (all fail promptly with AGX_ERR_UNAVAILABLE, later calls fail
 * fast), and the worker dying mid-call (WorkerExited, then the next call succeeds). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "harness.h"

typedef struct blocked {
    agx_client *c;
    int rc;
    agx_error err;
} blocked;

static void *sleep_call(void *arg)
{
    blocked *b = arg;
    agx_value *r = NULL, *args = h_ints(1, 600000);
    b->rc = agx_client_call(b->c, "demo::sleep", args, NULL, -1, &r, &b->err);
    agx_value_free(args);
    agx_value_free(r);
    return NULL;
}

static void test_worker_exits(void)
{
    test_server srv;
    h_server_start(&srv);
    agx_client *c = h_connect(&srv);
    agx_error err;
    agx_value *r = NULL;
    const char *hows[] = {"segv", "exit"};
    for (size_t i = 0; i < 2; i++) {
        agx_value *args = agx_value_array();
        agx_value_array_push(args, agx_value_string(hows[i]));
        int rc = agx_client_call(c, "demo::crash", args, NULL, 30000, &r, &err);
        agx_value_free(args);
        CHECK_MSG(rc == AGX_ERR_REMOTE, "rc %d: %s", rc, err.message);
        CHECK_STREQ(err.remote_type, "WorkerExited");
        args = h_ints(2, 40, 2);
        CHECK_OK(agx_client_call(c, "demo::add", args, NULL, 30000, &r, &err), &err);
        CHECK(agx_value_get_int64(r) == 42);
        agx_value_free(r);
        agx_value_free(args);
    }

    /* Killed from outside during a call: demo::wait_cancel's first item says the function is
     * running in the worker (no guessing how long that takes), and it never ends by itself. */
    agx_call *call = NULL;
    agx_value *item = NULL;
    CHECK_OK(agx_client_stream(c, "demo::wait_cancel", NULL, NULL, &call, &err), &err);
    CHECK_OK(agx_call_next(call, 60000, &item, &err) == 1 ? 0 : -1, &err);
    agx_value_free(item);
    pid_t wpid = 0;
    for (int i = 0; i < 6000 && !(wpid = h_worker_pid(&srv)); i++)
        h_sleep_ms(10);
    CHECK(wpid > 0);
    kill(wpid, SIGKILL);
    int rc = agx_call_next(call, 60000, &item, &err);
    CHECK_MSG(rc == AGX_ERR_REMOTE, "rc %d: %s", rc, err.message);
    CHECK_STREQ(err.remote_type, "WorkerExited");
    agx_call_free(call);
    agx_value *args = h_ints(1, 1);
    CHECK_OK(agx_client_call(c, "demo::add", args, NULL, 30000, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == 2);
    agx_value_free(r);
    agx_value_free(args);
    agx_client_free(c);
    h_server_stop(&srv);
}

static void test_server_killed(void)
{
    test_server srv;
    h_server_start(&srv);
    agx_client *c = h_connect(&srv);
    agx_error err;
    blocked b[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        b[i] = (blocked){.c = c};
        pthread_create(&t[i], NULL, sleep_call, &b[i]);
    }
    agx_call *stream = NULL, *bidi = NULL;
    agx_value *args = h_ints(1, 100000000), *item;
    CHECK_OK(agx_client_stream(c, "demo::count", args, NULL, &stream, &err), &err);
    agx_value_free(args);
    CHECK_OK(agx_client_bidi(c, "demo::echo_bidi", NULL, NULL, &bidi, &err), &err);
    CHECK(agx_call_next(stream, 10000, &item, &err) == 1);
    agx_value_free(item);
    h_sleep_ms(200);

    h_server_kill(&srv);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(b[i].rc == AGX_ERR_UNAVAILABLE, "rc %d: %s", b[i].rc, b[i].err.message);
    }
    int rc;
    while ((rc = agx_call_next(stream, 10000, &item, &err)) == 1)
        agx_value_free(item); /* items that arrived before the kill */
    CHECK_MSG(rc == AGX_ERR_UNAVAILABLE, "stream rc %d: %s", rc, err.message);
    CHECK(agx_call_next(bidi, 10000, &item, &err) == AGX_ERR_UNAVAILABLE);
    agx_value *v = agx_value_int(1);
    CHECK(agx_call_send(bidi, v, 10000, &err) == AGX_ERR_UNAVAILABLE);
    agx_value_free(v);
    agx_call_free(stream);
    agx_call_free(bidi);

    CHECK(!agx_client_is_connected(c));
    agx_value *r = NULL;
    args = h_ints(1, 1);
    CHECK(agx_client_call(c, "demo::add", args, NULL, -1, &r, &err) == AGX_ERR_UNAVAILABLE);
    CHECK(err.message[0]);
    CHECK(agx_client_stream(c, "demo::count", args, NULL, &stream, &err) == AGX_ERR_UNAVAILABLE);
    agx_value_free(args);
    agx_client_free(c);
    h_server_stop(&srv);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    TEST_RUN(test_worker_exits);
    TEST_RUN(test_server_killed);
    return 0;
}
