/* client_peer.c — the host-side transport (sio_client) as a test program, driven by
 * peer_server.test.js against the official socket.io@4 server and a few hand-made bad servers.
 *
 *   transport_client_peer URL [--token T] [--connect-to SPEC] [--header NAME=VALUE]
 *                             [--connect-timeout MS] [--ca-file PEM] [--expect CODE:TEXT]
 *
 * Without --expect it runs the full exchange: binary "echo" with an ack (event and ack both carry
 * the bytes back), a plain event with an ack, "bulk" events until the send queue is congested
 * and then drained (queue_limit enforced), "ready", then answers the server's "question" with a
 * binary ack and closes when the server says "done". With --expect the connection must end with
 * that error code and a message containing TEXT. Exit 0 = every expectation held and the loop
 * closed cleanly. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/transport/sio_client.h"

#define ECHO_LEN 200000
#define BULK_LEN (256 * 1024)

typedef struct peer {
    agx_sio_client *client;
    const char *expect;
    uint8_t echo_bytes[ECHO_LEN];
    int64_t echo_ack, plain_ack;
    bool echo_event_ok, echo_ack_ok, plain_ack_ok, congested, drained, limit_hit, question_ok;
    bool ready_sent;
    int failures;
    bool close_ok;
} peer;

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

static void expect(peer *p, bool cond, const char *what)
{
    say("%s - %s", cond ? "ok" : "FAIL", what);
    if (!cond)
        p->failures++;
}

static bool same_bytes(const agx_sio_bytes *b, const uint8_t *want, size_t n)
{
    return b->len == n && memcmp(b->data, want, n) == 0;
}

static void send_ready_when_done(agx_sio_conn *c, peer *p)
{
    if (p->ready_sent || !p->echo_event_ok || !p->echo_ack_ok || !p->plain_ack_ok || !p->drained)
        return;
    agx_error e;
    p->ready_sent = true;
    expect(p, agx_sio_conn_emit(c, "ready", NULL, NULL, 0, NULL, &e) == 0, "emit ready");
}

/* Fills the queue past the high watermark, then past queue_limit. */
static void flood(agx_sio_conn *c, peer *p)
{
    static uint8_t bulk[BULK_LEN];
    struct iovec iov = {bulk, sizeof bulk};
    agx_error e;
    for (int i = 0; i < 64; i++) {
        int rc = agx_sio_conn_emit(c, "bulk", NULL, &iov, 1, NULL, &e);
        if (rc == AGX_ERR_LIMIT) {
            p->limit_hit = true;
            break;
        }
        if (rc != 0) {
            expect(p, false, e.message);
            return;
        }
        if (agx_sio_conn_congested(c))
            p->congested = true;
    }
    say("QUEUED %zu", agx_sio_conn_queued_bytes(c));
    expect(p, p->congested, "send queue reported congestion");
    expect(p, p->limit_hit, "queue_limit refused an emit with AGX_ERR_LIMIT");
}

static void on_connect(agx_sio_conn *c, void *ud)
{
    peer *p = ud;
    agx_error e;
    say("CONNECTED %s", agx_sio_conn_sid(c));
    if (p->expect)
        return;
    for (size_t i = 0; i < ECHO_LEN; i++)
        p->echo_bytes[i] = (uint8_t)(i * 7 + 3);
    /* three pieces: the transport joins them into one attachment */
    struct iovec iov[3] = {{p->echo_bytes, 10}, {p->echo_bytes + 10, ECHO_LEN - 20},
                           {p->echo_bytes + ECHO_LEN - 10, 10}};
    expect(p, agx_sio_conn_emit(c, "echo", NULL, iov, 3, &p->echo_ack, &e) == 0, "emit echo");
    json_t *args = json_pack("[i,s]", 1, "two");
    expect(p, agx_sio_conn_emit(c, "plain", args, NULL, 0, &p->plain_ack, &e) == 0, "emit plain");
    json_decref(args);
    expect(p, p->echo_ack != p->plain_ack, "distinct ack ids");
    flood(c, p);
}

static void on_event(agx_sio_conn *c, const agx_sio_packet *pkt, void *ud)
{
    peer *p = ud;
    agx_error e;
    say("EVENT %s ack=%lld attachments=%u", pkt->event, (long long)pkt->ack_id, pkt->nattach);
    if (strcmp(pkt->event, "echo") == 0) {
        p->echo_event_ok = pkt->nattach == 1 &&
                           agx_sio_placeholder_index(json_array_get(pkt->data, 1)) == 0 &&
                           same_bytes(&pkt->attach[0], p->echo_bytes, ECHO_LEN);
        expect(p, p->echo_event_ok, "echo event carries the bytes back");
    } else if (strcmp(pkt->event, "question") == 0) {
        p->question_ok = pkt->ack_id != AGX_SIO_NO_ACK && pkt->nattach == 1 &&
                         same_bytes(&pkt->attach[0], (const uint8_t *)"Q", 1);
        expect(p, p->question_ok, "question has a binary arg and wants an ack");
        json_t *args = json_pack("[s]", "answer");
        struct iovec iov = {(void *)"A!", 2};
        expect(p, agx_sio_conn_ack(c, pkt->ack_id, args, &iov, 1, &e) == 0, "binary ack sent");
        json_decref(args);
    } else if (strcmp(pkt->event, "done") == 0) {
        agx_sio_client_close(p->client);
    }
    send_ready_when_done(c, p);
}

static void on_ack(agx_sio_conn *c, const agx_sio_packet *pkt, void *ud)
{
    peer *p = ud;
    say("ACK %lld attachments=%u", (long long)pkt->ack_id, pkt->nattach);
    if (pkt->ack_id == p->echo_ack) {
        p->echo_ack_ok = pkt->type == AGX_SIO_BINARY_ACK &&
                         json_is_string(json_array_get(pkt->data, 0)) &&
                         strcmp(json_string_value(json_array_get(pkt->data, 0)), "ok") == 0 &&
                         same_bytes(&pkt->attach[0], p->echo_bytes, ECHO_LEN);
        expect(p, p->echo_ack_ok, "binary ack carries the bytes back");
    } else if (pkt->ack_id == p->plain_ack) {
        json_t *want = json_pack("[s,i,s]", "plain-ok", 1, "two");
        p->plain_ack_ok = json_equal(pkt->data, want);
        json_decref(want);
        expect(p, p->plain_ack_ok, "plain ack has the server's args");
    }
    send_ready_when_done(c, p);
}

static void on_drain(agx_sio_conn *c, void *ud)
{
    peer *p = ud;
    if (p->drained)
        return;
    p->drained = true;
    say("DRAIN %zu", agx_sio_conn_queued_bytes(c));
    expect(p, !agx_sio_conn_congested(c), "not congested after on_drain");
    send_ready_when_done(c, p);
}

static void on_close(agx_sio_conn *c, const agx_error *why, void *ud)
{
    peer *p = ud;
    say("CLOSE %s %s", agx_error_code_name(why->code), why->message);
    if (p->expect) {
        const char *colon = strchr(p->expect, ':');
        size_t n = colon ? (size_t)(colon - p->expect) : strlen(p->expect);
        p->close_ok = strlen(agx_error_code_name(why->code)) == n &&
                      strncmp(agx_error_code_name(why->code), p->expect, n) == 0 &&
                      (!colon || strstr(why->message, colon + 1));
    } else {
        p->close_ok = why->code == AGX_OK && p->question_ok && p->ready_sent;
    }
    expect(p, p->close_ok, "the connection ended as expected");
    expect(p, agx_sio_client_conn(p->client) == NULL, "no conn handle once closed");
    agx_sio_client_close(p->client);
}

int main(int argc, char **argv)
{
    static peer p;
    agx_sio_header headers[8];
    agx_sio_client_config cfg = {0};
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [options]\n", argv[0]);
        return 2;
    }
    cfg.url = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--token")) {
            cfg.token = v;
        } else if (!strcmp(k, "--connect-to")) {
            cfg.connect_to = v;
        } else if (!strcmp(k, "--ca-file")) {
            cfg.ca_file = v;
        } else if (!strcmp(k, "--connect-timeout")) {
            cfg.connect_timeout_ms = (uint32_t)atoi(v);
        } else if (!strcmp(k, "--expect")) {
            p.expect = v;
        } else if (!strcmp(k, "--header") && cfg.nheaders < 8) {
            char *eq = strchr(argv[i + 1], '=');
            if (!eq)
                return 2;
            *eq = '\0';
            headers[cfg.nheaders++] = (agx_sio_header){argv[i + 1], eq + 1};
        } else {
            fprintf(stderr, "unknown option %s\n", k);
            return 2;
        }
    }
    cfg.headers = headers;
    cfg.limits = (agx_sio_limits){.high_watermark = 512 * 1024, .queue_limit = 2 * 1024 * 1024};
    cfg.handlers = (agx_sio_handlers){.on_connect = on_connect,
                                      .on_event = on_event,
                                      .on_ack = on_ack,
                                      .on_drain = on_drain,
                                      .on_close = on_close,
                                      .ud = &p};
    uv_loop_t loop;
    uv_loop_init(&loop);
    agx_error err;
    if (agx_sio_client_connect(&loop, &cfg, &p.client, &err) != 0) {
        say("CONNECT-ERROR %s %s", agx_error_code_name(err.code), err.message);
        uv_loop_close(&loop);
        return 1;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    agx_sio_client_free(p.client);
    int rc = uv_loop_close(&loop);
    say("EXIT %s", rc == 0 ? "clean" : uv_strerror(rc));
    return rc == 0 && p.close_ok && p.failures == 0 ? 0 : 1;
}
