/* test_client_failures.c — the client when the other side dies: agentix-server SIGKILLed with
 * calls of every shape in flight (all fail promptly with AGX_ERR_UNAVAILABLE, later calls fail
 * fast), the worker dying mid-call (WorkerExited, then the next call succeeds), and connections
 * sharing one engine I/O thread: a server killed mid-call and a peer gone mid-connect fail
 * exactly the calls and the connect they carried, while the neighbour's calls complete. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "harness.h"

typedef struct blocked {
    agx_client *c;
    int ms; /* 0 = sleep_ms */
    int rc;
    agx_error err;
} blocked;

static int sleep_ms = 600000;

static void *sleep_call(void *arg)
{
    blocked *b = arg;
    agx_value *r = NULL, *args = h_ints(1, b->ms ? b->ms : sleep_ms);
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

/* ---- one I/O thread, several connections: a failure stays with its own connection ---- */

typedef struct connect_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
    char msg[AGX_ERROR_MESSAGE_MAX];
} connect_wait;

static void connect_settled(void *user, agx_client *c, int status, const agx_error *err)
{
    (void)c;
    connect_wait *w = user;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    w->status = status;
    snprintf(w->msg, sizeof w->msg, "%s", err ? err->message : "");
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* A TCP listener that never answers: connections complete in the kernel and sit in the backlog. */
static int mute_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 8) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static void test_failure_stays_on_its_connection(void)
{
    agx_engine *e = NULL;
    agx_engine_options eo;
    agx_engine_options_init(&eo);
    eo.io_threads = 1; /* every connection below shares one loop */
    agx_error err;
    CHECK_OK(agx_engine_new(&eo, &e, &err), &err);
    test_server a, b;
    h_server_start(&a);
    h_server_start(&b);
    agx_client_options o;
    agx_client_options_init(&o);
    o.engine = e;
    agx_client *ca = NULL, *cb = NULL;
    CHECK_OK(agx_client_connect_sandbox(a.sb, &o, &ca, &err), &err);
    CHECK_OK(agx_client_connect_sandbox(b.sb, &o, &cb, &err), &err);

    /* calls on both; a connect in progress to a peer that never answers */
    blocked ba[2] = {{.c = ca}, {.c = ca}}, bb[2] = {{.c = cb, .ms = 3000}, {.c = cb, .ms = 3000}};
    pthread_t ta[2], tb[2];
    for (int i = 0; i < 2; i++) {
        pthread_create(&ta[i], NULL, sleep_call, &ba[i]);
        pthread_create(&tb[i], NULL, sleep_call, &bb[i]);
    }
    int port, lfd = mute_listener(&port);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    connect_wait w = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    agx_client *cm = NULL;
    o.connect_timeout_ms = 60000;
    CHECK_OK(agx_client_connect_async(url, &o, connect_settled, &w, &cm, &err), &err);
    h_sleep_ms(300); /* the calls are in flight, the dial is waiting for the upgrade */

    close(lfd);        /* the peer of the connect goes: its queued connection is reset */
    h_server_kill(&a); /* and a's server dies mid-call */
    for (int i = 0; i < 2; i++) {
        pthread_join(ta[i], NULL);
        CHECK_MSG(ba[i].rc == AGX_ERR_UNAVAILABLE, "a: rc %d: %s", ba[i].rc, ba[i].err.message);
        pthread_join(tb[i], NULL);
        CHECK_MSG(bb[i].rc == 0, "b's call failed with a's server: %s", bb[i].err.message);
    }
    pthread_mutex_lock(&w.mu);
    while (!w.done)
        pthread_cond_wait(&w.cv, &w.mu);
    pthread_mutex_unlock(&w.mu);
    CHECK_MSG(w.status == AGX_ERR_UNAVAILABLE, "connect: %d %s", w.status, w.msg);
    CHECK(!agx_client_is_connected(ca) && agx_client_is_connected(cb));
    agx_value *r = NULL, *args = h_ints(2, 20, 22);
    CHECK_OK(agx_client_call(cb, "demo::add", args, NULL, 30000, &r, &err), &err);
    CHECK(agx_value_get_int64(r) == 42);
    agx_value_free(r);
    agx_value_free(args);
    agx_client_free(cm);
    agx_client_free(ca);
    agx_client_free(cb);
    agx_engine_free(e);
    h_server_stop(&a);
    h_server_stop(&b);
}

int main(int argc, char **argv)
{
    h_init(argc, argv);
    TEST_RUN(test_worker_exits);
    TEST_RUN(test_server_killed);
    TEST_RUN(test_failure_stays_on_its_connection);
    return 0;
}
