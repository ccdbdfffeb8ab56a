/* test_sio_loop.c — the two transport roles against each other on one libuv loop (the way a host
 * test can embed agentix-server's transport next to the RPC client's): token check, binary events
 * and acks both ways over iovecs, a large attachment, congestion and drain, client close, a
 * refused token, server shutdown with a client still connected, a loop that drains and closes
 * (the valgrind run checks the teardown leaks nothing), per-connection buffers that grow for
 * a large message and are given back on both ends once the connection idles, and a client write
 * the kernel cannot take at once (a stopped server: the rest goes out when the write completes).
 *
 * Usage: transport_loop <transport_echo_server> */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "runtime/transport/sio_client.h"
#include "runtime/transport/sio_client_impl.h"
#include "runtime/transport/sio_conn_impl.h"
#include "runtime/transport/sio_server.h"

static const char *echo_server_path;

#define BIG (3 * 1024 * 1024 + 5)

typedef struct world {
    uv_loop_t loop;
    agx_sio_server *server;
    agx_sio_client *client;
    agx_sio_conn *server_conn;
    uint8_t *big;
    int server_events, client_events, client_acks, server_acks, drains;
    int server_closes, client_closes;
    int client_close_code;
    char client_close_msg[AGX_ERROR_MESSAGE_MAX];
    int64_t big_ack;
    bool shutdown_with_client;
} world;

static bool authorize(const json_t *auth, void *ud)
{
    const char *t = json_string_value(json_object_get(auth, "token"));
    return t && strcmp(t, "good") == 0;
}

/* ---- server side: echo every binary event back as "back" and ack with the same bytes ---- */

static void srv_connect(agx_sio_conn *c, void *ud)
{
    world *w = ud;
    w->server_conn = c;
    agx_sio_conn_set_userdata(c, w);
    CHECK(agx_sio_conn_userdata(c) == w);
    CHECK(strlen(agx_sio_conn_sid(c)) > 0);
    if (w->shutdown_with_client)
        agx_sio_server_shutdown(w->server);
}

static void srv_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    world *w = ud;
    agx_error err;
    w->server_events++;
    CHECK(p->nattach == 1);
    struct iovec iov = {(void *)p->attach[0].data, p->attach[0].len};
    CHECK_OK(agx_sio_conn_emit(c, "back", NULL, &iov, 1, NULL, &err), &err);
    if (p->ack_id != AGX_SIO_NO_ACK) {
        json_t *args = json_pack("[s]", p->event);
        CHECK_OK(agx_sio_conn_ack(c, p->ack_id, args, &iov, 1, &err), &err);
        json_decref(args);
    }
}

static void srv_ack(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    world *w = ud;
    w->server_acks++;
    CHECK(json_array_size(p->data) == 1);
    CHECK_STREQ(json_string_value(json_array_get(p->data, 0)), "thanks");
}

static void srv_close(agx_sio_conn *c, const agx_error *why, void *ud)
{
    world *w = ud;
    w->server_closes++;
    w->server_conn = NULL;
}

/* ---- client side ---- */

static void cli_connect(agx_sio_conn *c, void *ud)
{
    world *w = ud;
    agx_error err;
    CHECK(agx_sio_client_conn(w->client) == c);
    if (w->shutdown_with_client)
        return;
    /* three iovecs make one attachment */
    struct iovec iov[3] = {{w->big, 1}, {w->big + 1, BIG - 2}, {w->big + BIG - 1, 1}};
    CHECK_OK(agx_sio_conn_emit(c, "big", NULL, iov, 3, &w->big_ack, &err), &err);
    CHECK(agx_sio_conn_congested(c)); /* 3 MiB over the 1 MiB default high watermark */
    CHECK(agx_sio_conn_queued_bytes(c) >= BIG);
    /* the server asks the client for an ack: emitted from the server side directly */
    int64_t id;
    CHECK(w->server_conn != NULL);
    CHECK_OK(agx_sio_conn_emit(w->server_conn, "ask", NULL, NULL, 0, &id, &err), &err);
}

static void cli_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    world *w = ud;
    agx_error err;
    w->client_events++;
    if (strcmp(p->event, "ask") == 0) {
        CHECK(p->ack_id != AGX_SIO_NO_ACK);
        json_t *args = json_pack("[s]", "thanks");
        CHECK_OK(agx_sio_conn_ack(c, p->ack_id, args, NULL, 0, &err), &err);
        json_decref(args);
        return;
    }
    CHECK_STREQ(p->event, "back");
    CHECK(p->nattach == 1 && p->attach[0].len == BIG);
    CHECK(memcmp(p->attach[0].data, w->big, BIG) == 0);
}

static void cli_ack(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    world *w = ud;
    w->client_acks++;
    CHECK(p->ack_id == w->big_ack);
    CHECK(p->type == AGX_SIO_BINARY_ACK && p->attach[0].len == BIG);
    CHECK(memcmp(p->attach[0].data, w->big, BIG) == 0);
}

static void cli_drain(agx_sio_conn *c, void *ud)
{
    world *w = ud;
    w->drains++;
    CHECK(!agx_sio_conn_congested(c));
}

static void maybe_close(world *w)
{
    if (w->client_events == 2 && w->client_acks == 1 && w->server_acks == 1)
        agx_sio_client_close(w->client);
}

static void cli_event_then_close(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    cli_event(c, p, ud);
    maybe_close(ud);
}

static void cli_ack_then_close(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    cli_ack(c, p, ud);
    maybe_close(ud);
}

static void cli_close(agx_sio_conn *c, const agx_error *why, void *ud)
{
    world *w = ud;
    w->client_closes++;
    w->client_close_code = why->code;
    snprintf(w->client_close_msg, sizeof w->client_close_msg, "%s", why->message);
    agx_sio_client_close(w->client);
    if (!w->shutdown_with_client)
        agx_sio_server_shutdown(w->server);
}

static void start(world *w, const char *token, bool shutdown_with_client)
{
    memset(w, 0, sizeof *w);
    w->shutdown_with_client = shutdown_with_client;
    CHECK(uv_loop_init(&w->loop) == 0);
    agx_error err;
    agx_sio_server_config scfg = {.port = 0,
                                  .authorize = authorize,
                                  .handlers = {.on_connect = srv_connect,
                                               .on_event = srv_event,
                                               .on_ack = srv_ack,
                                               .on_close = srv_close,
                                               .ud = w}};
    CHECK_OK(agx_sio_server_start(&w->loop, &scfg, &w->server, &err), &err);
    CHECK(agx_sio_server_port(w->server) > 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", agx_sio_server_port(w->server));
    w->big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        w->big[i] = (uint8_t)(i * 31 + 7);
    agx_sio_client_config ccfg = {.url = url,
                                  .token = token,
                                  .handlers = {.on_connect = cli_connect,
                                               .on_event = cli_event_then_close,
                                               .on_ack = cli_ack_then_close,
                                               .on_drain = cli_drain,
                                               .on_close = cli_close,
                                               .ud = w}};
    CHECK_OK(agx_sio_client_connect(&w->loop, &ccfg, &w->client, &err), &err);
}

static void finish(world *w)
{
    CHECK(uv_run(&w->loop, UV_RUN_DEFAULT) == 0);
    agx_sio_client_free(w->client);
    agx_sio_server_free(w->server);
    CHECK(uv_loop_close(&w->loop) == 0);
    free(w->big);
}

static void test_exchange(void)
{
    world w;
    start(&w, "good", false);
    finish(&w);
    CHECK(w.server_events == 1 && w.server_acks == 1);
    CHECK(w.client_events == 2 && w.client_acks == 1);
    CHECK(w.drains == 1);
    CHECK(w.client_closes == 1 && w.client_close_code == AGX_OK);
    CHECK(w.server_closes == 1);
}

static void test_refused(void)
{
    world w;
    start(&w, "bad", false);
    finish(&w);
    CHECK(w.client_closes == 1);
    CHECK(w.client_close_code == AGX_ERR_PROTOCOL);
    CHECK_CONTAINS(w.client_close_msg, "invalid token");
    CHECK(w.server_closes == 0); /* never connected on the server side */
}

static void test_shutdown_with_client(void)
{
    world w;
    start(&w, "good", true);
    finish(&w);
    CHECK(w.client_closes == 1);
    CHECK(w.client_close_code == AGX_ERR_UNAVAILABLE);
    CHECK_CONTAINS(w.client_close_msg, "disconnected");
    CHECK(w.server_closes == 1);
}

static void test_bad_config(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    agx_error err;
    agx_sio_client *c = NULL;
    const char *bad_urls[] = {"ftp://x", "http://", "http://host:0", "http://host:99999",
                              "http://host/path?q=1", "http://host/p#f", "http://host/a\"b",
                              "http://[::1", "http://a b:1"};
    for (size_t i = 0; i < sizeof bad_urls / sizeof *bad_urls; i++) {
        agx_sio_client_config cfg = {.url = bad_urls[i]};
        CHECK_MSG(agx_sio_client_connect(&loop, &cfg, &c, &err) == AGX_ERR_INVALID_ARGUMENT,
                  "url %s accepted", bad_urls[i]);
        CHECK(c == NULL);
    }
    agx_sio_client_config cfg = {.url = "http://h:1", .connect_to = "h:1:x"};
    CHECK(agx_sio_client_connect(&loop, &cfg, &c, &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_sio_header hdr = {"Bad Name", "v"};
    agx_sio_client_config cfg2 = {.url = "http://h:1", .headers = &hdr, .nheaders = 1};
    CHECK(agx_sio_client_connect(&loop, &cfg2, &c, &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_sio_header hdr2 = {"X-Ok", "line\r\nInjected: 1"};
    agx_sio_client_config cfg3 = {.url = "http://h:1", .headers = &hdr2, .nheaders = 1};
    CHECK(agx_sio_client_connect(&loop, &cfg3, &c, &err) == AGX_ERR_INVALID_ARGUMENT);

    /* a port in use is reported by start, with the errno text */
    agx_sio_server *s1 = NULL, *s2 = NULL;
    agx_sio_server_config sc = {.port = 0};
    CHECK_OK(agx_sio_server_start(&loop, &sc, &s1, &err), &err);
    sc.port = agx_sio_server_port(s1);
    CHECK(agx_sio_server_start(&loop, &sc, &s2, &err) == AGX_ERR_IO);
    CHECK_CONTAINS(err.message, "in use");
    CHECK(s2 == NULL);
    agx_sio_server_shutdown(s1);
    uv_run(&loop, UV_RUN_DEFAULT);
    agx_sio_server_free(s1);
    CHECK(uv_loop_close(&loop) == 0);
}

/* ---- buffers given back when idle ---- */

#define IDLE_MSG (200 * 1024) /* spans reads on both ends, below the 256 KiB kept-buffer cap */

typedef struct idle_world {
    uv_loop_t loop;
    uv_timer_t poll;
    agx_sio_server *server;
    agx_sio_client *client;
    agx_sio_conn *sconn, *cconn;
    uint8_t *msg;
    int got_server, got_client;
    bool grown_server, grown_client, released;
    int polls;
} idle_world;

static bool holds_buffers(const agx_sio_conn *c)
{
    bool spares = false; /* small ones stay for pings and pongs */
    for (int i = 0; i < SIO_SPARE_FRAMES; i++)
        spares |= c->spare[i] && c->spare[i]->cap > SIO_SPARE_IDLE_CAP;
    return c->rx != NULL || spares;
}

static void idle_srv_connect(agx_sio_conn *c, void *ud) { ((idle_world *)ud)->sconn = c; }

static void idle_srv_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    idle_world *w = ud;
    CHECK(p->nattach == 1 && p->attach[0].len == IDLE_MSG);
    w->got_server++;
    struct iovec iov = {w->msg, IDLE_MSG};
    agx_error err;
    CHECK_OK(agx_sio_conn_emit(c, "big", NULL, &iov, 1, NULL, &err), &err);
}

static void idle_cli_connect(agx_sio_conn *c, void *ud)
{
    idle_world *w = ud;
    w->cconn = c;
    struct iovec iov = {w->msg, IDLE_MSG};
    agx_error err;
    CHECK_OK(agx_sio_conn_emit(c, "big", NULL, &iov, 1, NULL, &err), &err);
}

static void idle_cli_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    idle_world *w = ud;
    CHECK(p->nattach == 1 && p->attach[0].len == IDLE_MSG);
    CHECK(memcmp(p->attach[0].data, w->msg, IDLE_MSG) == 0);
    w->got_client++;
}

static void idle_poll(uv_timer_t *t)
{
    idle_world *w = t->data;
    if (w->got_client == 1 && w->got_server == 1 && !w->grown_client) {
        /* right after the exchange both ends still hold what the big message needed */
        w->grown_server = holds_buffers(w->sconn);
        w->grown_client = holds_buffers(w->cconn);
        CHECK_MSG(w->grown_server && w->grown_client, "no buffer grew for a %d-byte message",
                  IDLE_MSG);
    }
    if (w->grown_client && !holds_buffers(w->sconn) && !holds_buffers(w->cconn)) {
        w->released = true;
        uv_timer_stop(t);
        agx_sio_client_close(w->client);
        agx_sio_server_shutdown(w->server);
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    CHECK_MSG(++w->polls < 30000, "buffers still held after %d polls", w->polls);
}

static void test_idle_release(void)
{
    idle_world w;
    memset(&w, 0, sizeof w);
    CHECK(uv_loop_init(&w.loop) == 0);
    w.msg = malloc(IDLE_MSG);
    for (size_t i = 0; i < IDLE_MSG; i++)
        w.msg[i] = (uint8_t)(i * 7);
    agx_error err;
    agx_sio_server_config scfg = {.ping_interval_ms = 40,
                                  .handlers = {.on_connect = idle_srv_connect,
                                               .on_event = idle_srv_event,
                                               .ud = &w}};
    CHECK_OK(agx_sio_server_start(&w.loop, &scfg, &w.server, &err), &err);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", agx_sio_server_port(w.server));
    agx_sio_client_config ccfg = {.url = url,
                                  .handlers = {.on_connect = idle_cli_connect,
                                               .on_event = idle_cli_event,
                                               .ud = &w}};
    CHECK_OK(agx_sio_client_connect(&w.loop, &ccfg, &w.client, &err), &err);
    uv_timer_init(&w.loop, &w.poll);
    w.poll.data = &w;
    uv_timer_start(&w.poll, idle_poll, 1, 1);
    CHECK(uv_run(&w.loop, UV_RUN_DEFAULT) == 0);
    CHECK(w.released);
    agx_sio_client_free(w.client);
    agx_sio_server_free(w.server);
    CHECK(uv_loop_close(&w.loop) == 0);
    free(w.msg);
}

/* ---- a write the kernel cannot take at once ---- */

/* Far more than a stopped peer's socket buffers take (send buffer at most 4 MiB by default, a
 * receive buffer that grows only while its owner reads). */
#define STALL_MSG (16 * 1024 * 1024)

typedef struct stall_world {
    uv_loop_t loop;
    uv_timer_t poll;
    agx_sio_client *client;
    pid_t server;
    FILE *server_out; /* its stdout, kept open until it exits (a closed pipe would kill it) */
    uint8_t *msg;
    bool stopped, resumed, acked;
    int64_t ack_id;
    int polls;
} stall_world;

/* The echo server (tests/transport/echo_server.c) in a process of its own, so it can be stopped;
 * it dies with the test. Returns its port. */
static int spawn_echo_server(stall_world *w)
{
    int out[2];
    CHECK(pipe(out) == 0);
    w->server = fork();
    CHECK(w->server >= 0);
    if (w->server == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        execl(echo_server_path, echo_server_path, "--port", "0", (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    w->server_out = fdopen(out[0], "r");
    CHECK(w->server_out);
    char line[128];
    int port = 0;
    CHECK_MSG(fgets(line, sizeof line, w->server_out) && sscanf(line, "PORT %d", &port) == 1 &&
              port > 0, "the echo server did not print its port");
    return port; /* its few later lines wait in the pipe */
}

static void stall_poll(uv_timer_t *t)
{
    stall_world *w = t->data;
    /* The socket refused the rest: the client's uv_write is in flight. Let the server read. */
    if (w->client->writing) {
        CHECK(kill(w->server, SIGCONT) == 0);
        w->resumed = true;
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    CHECK_MSG(++w->polls < 60000, "the client's write never waited for the stopped server");
}

static void stall_connect(agx_sio_conn *c, void *ud)
{
    stall_world *w = ud;
    CHECK(kill(w->server, SIGSTOP) == 0);
    w->stopped = true;
    struct iovec iov = {w->msg, STALL_MSG};
    agx_error err;
    CHECK_OK(agx_sio_conn_emit(c, "echo", NULL, &iov, 1, &w->ack_id, &err), &err);
    uv_timer_start(&w->poll, stall_poll, 1, 1);
}

static void stall_ack(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    stall_world *w = ud;
    CHECK(p->ack_id == w->ack_id && p->nattach == 1 && p->attach[0].len == STALL_MSG);
    CHECK(memcmp(p->attach[0].data, w->msg, STALL_MSG) == 0);
    w->acked = true;
    agx_sio_client_close(w->client);
}

static void stall_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud) {} /* the echo */

static void test_write_waits_for_socket(void)
{
    stall_world w;
    memset(&w, 0, sizeof w);
    CHECK(uv_loop_init(&w.loop) == 0);
    w.msg = malloc(STALL_MSG);
    CHECK(w.msg);
    for (size_t i = 0; i < STALL_MSG; i++)
        w.msg[i] = (uint8_t)(i * 13 + 1);
    int port = spawn_echo_server(&w);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    uv_timer_init(&w.loop, &w.poll);
    w.poll.data = &w;
    agx_sio_client_config ccfg = {.url = url,
                                  .handlers = {.on_connect = stall_connect,
                                               .on_event = stall_event,
                                               .on_ack = stall_ack,
                                               .ud = &w}};
    agx_error err;
    CHECK_OK(agx_sio_client_connect(&w.loop, &ccfg, &w.client, &err), &err);
    CHECK(uv_run(&w.loop, UV_RUN_DEFAULT) == 0);
    CHECK(w.stopped && w.resumed && w.acked);
    agx_sio_client_free(w.client);
    CHECK(uv_loop_close(&w.loop) == 0);
    int st = 0;
    CHECK(kill(w.server, SIGTERM) == 0 && waitpid(w.server, &st, 0) == w.server);
    fclose(w.server_out);
    free(w.msg);
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc == 2, "usage: %s <transport_echo_server>", argv[0]);
    echo_server_path = argv[1];
    TEST_RUN(test_exchange);
    TEST_RUN(test_refused);
    TEST_RUN(test_shutdown_with_client);
    TEST_RUN(test_bad_config);
    TEST_RUN(test_idle_release);
    TEST_RUN(test_write_waits_for_socket);
    return 0;
}
