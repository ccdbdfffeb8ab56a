/* echo_server.c — a small agentix-server stand-in for the transport interop tests: a sio_server on
 * 127.0.0.1 that the official socket.io-client (peer_client.test.js) and raw ws clients
 * (negative.test.js) talk to. Prints "PORT n" once listening and one line per connection event;
 * SIGTERM shuts it down gracefully and it exits 0 only if the loop closed cleanly.
 *
 * Events it understands:
 *   "echo"  (binary, 1 attachment): emits "echo" back with the same bytes (header and payload
 *           sent as two iovecs) and, if an ack was asked, acks ["ok", <bytes>].
 *   "ask"   : emits "question" [<args…>] asking for an ack; the client's ack is forwarded as
 *           "answer" with the ack's arguments.
 *   anything else with an ack: acks [event name]. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/transport/sio_server.h"

typedef struct app {
    const char *token;
    uv_signal_t sigterm, sigint;
    agx_sio_server *server;
} app;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static bool authorize(const json_t *auth, void *ud)
{
    app *a = ud;
    if (!a->token)
        return true;
    const char *t = json_string_value(json_object_get(auth, "token"));
    return t && strcmp(t, a->token) == 0;
}

static void on_connect(agx_sio_conn *c, void *ud)
{
    say("CONNECT %s", agx_sio_conn_sid(c));
}

static void report(const char *what, int rc, const agx_error *e)
{
    if (rc)
        say("ERROR %s: %s", what, e->message);
}

static void echo(agx_sio_conn *c, const agx_sio_packet *p)
{
    agx_error e;
    if (p->nattach != 1) {
        say("ERROR echo wants exactly one attachment, got %u", p->nattach);
        return;
    }
    /* Two pieces on purpose: the transport must send them as one attachment frame. */
    size_t half = p->attach[0].len / 2;
    struct iovec iov[2] = {{(void *)p->attach[0].data, half},
                           {(void *)(p->attach[0].data + half), p->attach[0].len - half}};
    report("emit echo", agx_sio_conn_emit(c, "echo", NULL, iov, 2, NULL, &e), &e);
    if (p->ack_id != AGX_SIO_NO_ACK) {
        json_t *args = json_pack("[s]", "ok");
        report("ack echo", agx_sio_conn_ack(c, p->ack_id, args, iov, 2, &e), &e);
        json_decref(args);
    }
}

static void on_event(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    agx_error e;
    say("EVENT %s ack=%lld attachments=%u", p->event, (long long)p->ack_id, p->nattach);
    if (strcmp(p->event, "echo") == 0) {
        echo(c, p);
    } else if (strcmp(p->event, "ask") == 0) {
        json_t *args = json_array();
        for (size_t i = 1; i < json_array_size(p->data); i++)
            json_array_append(args, json_array_get(p->data, i));
        int64_t id;
        report("emit question", agx_sio_conn_emit(c, "question", args, NULL, 0, &id, &e), &e);
        json_decref(args);
    } else if (p->ack_id != AGX_SIO_NO_ACK) {
        json_t *args = json_pack("[s]", p->event);
        report("ack", agx_sio_conn_ack(c, p->ack_id, args, NULL, 0, &e), &e);
        json_decref(args);
    }
}

static void on_ack(agx_sio_conn *c, const agx_sio_packet *p, void *ud)
{
    agx_error e;
    say("ACK %lld", (long long)p->ack_id);
    report("emit answer", agx_sio_conn_emit(c, "answer", p->data, NULL, 0, NULL, &e), &e);
}

static void on_close(agx_sio_conn *c, const agx_error *why, void *ud)
{
    say("CLOSE %s %s", agx_error_code_name(why->code), why->message);
}

static void on_signal(uv_signal_t *s, int signum)
{
    app *a = s->data;
    say("SHUTDOWN");
    agx_sio_server_shutdown(a->server);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
}

static uint32_t num_arg(const char *v)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || n > UINT32_MAX) {
        fprintf(stderr, "echo_server: bad number '%s'\n", v);
        exit(2);
    }
    return (uint32_t)n;
}

int main(int argc, char **argv)
{
    app a = {0};
    agx_sio_server_config cfg = {.host = "127.0.0.1"};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port"))
            cfg.port = (int)num_arg(v);
        else if (!strcmp(k, "--ping-interval"))
            cfg.ping_interval_ms = num_arg(v);
        else if (!strcmp(k, "--ping-timeout"))
            cfg.ping_timeout_ms = num_arg(v);
        else if (!strcmp(k, "--connect-timeout"))
            cfg.connect_timeout_ms = num_arg(v);
        else if (!strcmp(k, "--max-payload"))
            cfg.limits.max_payload = num_arg(v);
        else if (!strcmp(k, "--token"))
            a.token = v;
        else {
            fprintf(stderr, "echo_server: unknown option %s\n", k);
            return 2;
        }
    }
    cfg.authorize = authorize;
    cfg.handlers = (agx_sio_handlers){.on_connect = on_connect,
                                      .on_event = on_event,
                                      .on_ack = on_ack,
                                      .on_close = on_close,
                                      .ud = &a};
    uv_loop_t loop;
    uv_loop_init(&loop);
    agx_error err;
    if (agx_sio_server_start(&loop, &cfg, &a.server, &err) != 0) {
        fprintf(stderr, "echo_server: %s\n", err.message);
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_init(&loop, &a.sigterm);
    uv_signal_init(&loop, &a.sigint);
    a.sigterm.data = a.sigint.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    say("PORT %d", agx_sio_server_port(a.server));
    uv_run(&loop, UV_RUN_DEFAULT);
    agx_sio_server_free(a.server);
    int rc = uv_loop_close(&loop);
    say("EXIT %s", rc == 0 ? "clean" : uv_strerror(rc));
    return rc == 0 ? 0 : 1;
}
