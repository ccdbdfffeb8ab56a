/* expiry.c — agentix-server's own expiry (docs/PROTOCOL.md §1.1, agentix/expiry.h): the server
 * ends itself — drained as on SIGTERM — when its expiry passes without being extended, and so
 * ends its container, process, pod or VM's purpose with it. The expiry starts at
 * AGENTIX_EXPIRY_MS after the start (absent: none) and is moved by an authenticated host: the
 * Socket.IO event `expiry {call_id, n}` over an open connection, or HTTP POST /expiry with the
 * token in X-Agentix-Token when no connection is open. Also answers the HTTP routes besides /health
 * (srv_http): POST /claim, by which a runtime started in claim mode (AGENTIX_AUTH=claim) gets its
 * per-sandbox token and its first expiry, once. */
#include "runtime/server/server.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/expiry.h"

#define MSG_MAX 256

static void on_expired(uv_timer_t *t)
{
    srv_server *s = t->data;
    fprintf(stderr, "agentix-server: expired (not extended within its expiry): ending\n");
    srv_k8s_self_delete(s); /* a claimed k8s pod: the pod object goes too (k8s_self.c) */
    srv_drain(s, "the sandbox's expiry passed");
}

/* A decimal number of ms in the allowed range, or -1. */
static int64_t parse_ms(const char *v)
{
    if (!v || !*v || strlen(v) > 15 || strspn(v, "0123456789") != strlen(v))
        return -1;
    long long ms = strtoll(v, NULL, 10);
    return ms >= AGX_EXPIRY_MIN_MS && ms <= AGX_EXPIRY_MAX_MS ? (int64_t)ms : -1;
}

int srv_expiry_init(srv_server *s, char *msg, size_t len)
{
    s->expiry.timer.data = s;
    if (uv_timer_init(s->loop, &s->expiry.timer) != 0)
        return srv_bad(msg, len, "cannot create the expiry timer");
    s->expiry.open = true;
    uv_unref((uv_handle_t *)&s->expiry.timer); /* never what keeps the loop alive */
    const char *v = getenv(AGX_EXPIRY_ENV);
    if (!v || !*v)
        return 0;
    int64_t ms = parse_ms(v);
    if (ms < 0)
        return srv_bad(msg, len, AGX_EXPIRY_ENV "='%.32s' must be milliseconds from %lld to %lld",
                       v, (long long)AGX_EXPIRY_MIN_MS, (long long)AGX_EXPIRY_MAX_MS);
    srv_expiry_extend(s, ms);
    return 0;
}

void srv_expiry_extend(srv_server *s, int64_t ms)
{
    if (!s->expiry.open || s->draining)
        return;
    s->expiry.set = true;
    s->expiry.at = (int64_t)uv_now(s->loop) + ms;
    uv_timer_start(&s->expiry.timer, on_expired, (uint64_t)ms, 0);
}

int64_t srv_expiry_left_ms(srv_server *s)
{
    if (!s->expiry.set)
        return -1;
    int64_t left = s->expiry.at - (int64_t)uv_now(s->loop);
    return left > 0 ? left : 0;
}

void srv_expiry_close(srv_server *s, uv_close_cb done)
{
    if (!s->expiry.open)
        return;
    s->expiry.open = false;
    uv_timer_stop(&s->expiry.timer);
    uv_close((uv_handle_t *)&s->expiry.timer, done);
}

/* ---- over the runtime connection ---- */

void srv_expiry_on_event(srv_conn *conn, const agx_sio_packet *p)
{
    srv_server *s = conn->srv;
    srv_req r;
    char msg[MSG_MAX];
    uint64_t n = 0;
    if (srv_req_parse(p, &r, msg, sizeof msg) != 0 || !r.cid_ok) {
        fprintf(stderr, "agentix-server: '%s' ignored: %s\n", AGX_EV_EXPIRY, msg);
        return; /* no call id to answer to */
    }
    const char *type = AGX_RPC_BAD_REQUEST;
    if (srv_req_get_n(&r, &n, msg, sizeof msg) != 0 || n < AGX_EXPIRY_MIN_MS ||
        n > AGX_EXPIRY_MAX_MS) {
        snprintf(msg, sizeof msg, "n must be the expiry in ms, %lld..%lld",
                 (long long)AGX_EXPIRY_MIN_MS, (long long)AGX_EXPIRY_MAX_MS);
    } else if (s->draining || !s->expiry.open) {
        type = AGX_RPC_GENERIC;
        snprintf(msg, sizeof msg, "the runtime is shutting down");
    } else {
        srv_expiry_extend(s, (int64_t)n);
        int64_t left = srv_expiry_left_ms(s);
        srv_emit_n(s, conn->sio, AGX_EV_EXPIRY_SET, r.cid, r.cid_len,
                   left > 0 ? (uint64_t)left : 1);
        return;
    }
    srv_emit_error(s, conn->sio, AGX_EV_EXPIRY_ERROR, r.cid, r.cid_len, type, msg, false);
}

/* ---- HTTP ---- */

static int reply(char *body, size_t cap, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reply(char *body, size_t cap, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, cap, fmt, ap);
    va_end(ap);
    return status;
}

/* X-Agentix-Token naming the server's token. */
static bool token_ok(srv_server *s, const agx_sio_http_request *r)
{
    char tok[SRV_TOKEN_MAX + 1];
    int n = agx_sio_http_header(r, AGX_HTTP_HEADER_TOKEN, tok, sizeof tok);
    return srv_token_check(&s->token, n >= 0 ? tok : NULL, n >= 0 ? (size_t)n : 0);
}

/* The expiry a POST asks for (X-Agentix-Expiry-Ms), or the reply refusing it: a value out of
 * range, or a runtime already shutting down. 0 when *ms holds an expiry to apply. */
static int requested_expiry(srv_server *s, const agx_sio_http_request *r, int64_t *ms, char *body,
                            size_t cap)
{
    char v[32];
    *ms = agx_sio_http_header(r, AGX_HTTP_HEADER_EXPIRY_MS, v, sizeof v) > 0 ? parse_ms(v) : -1;
    if (*ms < 0)
        return reply(body, cap, 400, "{\"message\":\"" AGX_HTTP_HEADER_EXPIRY_MS " must be "
                                     "milliseconds from %lld to %lld\"}",
                     (long long)AGX_EXPIRY_MIN_MS, (long long)AGX_EXPIRY_MAX_MS);
    if (s->draining)
        return reply(body, cap, 503, "{\"message\":\"the runtime is shutting down\"}");
    return 0;
}

static int post_expiry(srv_server *s, const agx_sio_http_request *r, char *body, size_t cap)
{
    if (!token_ok(s, r))
        return reply(body, cap, 401, "{\"message\":\"the runtime token (" AGX_HTTP_HEADER_TOKEN
                                     ") is missing or wrong\"}");
    int64_t ms;
    int refused = requested_expiry(s, r, &ms, body, cap);
    if (refused)
        return refused;
    srv_expiry_extend(s, ms);
    return reply(body, cap, 200, "{\"" AGX_HTTP_FIELD_EXPIRES_IN "\":%lld}",
                 (long long)srv_expiry_left_ms(s));
}

/* The claim: the token the sandbox's creator made for it (X-Agentix-Token) and the expiry, set
 * once; X-Agentix-Claim must name the claim secret when the server has one. */
static int post_claim(srv_server *s, const agx_sio_http_request *r, char *body, size_t cap)
{
    if (s->token.mode != SRV_AUTH_CLAIM)
        return reply(body, cap, 403, "{\"message\":\"this runtime does not take its token at "
                                     "claim time (AGENTIX_AUTH is not claim)\"}");
    char got[SRV_TOKEN_MAX + 1];
    int n = agx_sio_http_header(r, AGX_HTTP_HEADER_CLAIM, got, sizeof got);
    bool allowed = srv_token_claim_allowed(&s->token, n >= 0 ? got : NULL, n >= 0 ? (size_t)n : 0);
    memset(got, 0, sizeof got);
    if (!allowed)
        return reply(body, cap, 401, "{\"message\":\"the claim secret (" AGX_HTTP_HEADER_CLAIM
                                     ") is missing or wrong\"}");
    if (s->token.set)
        return reply(body, cap, 409, "{\"message\":\"this runtime was claimed already\"}");
    int64_t ms;
    int refused = requested_expiry(s, r, &ms, body, cap);
    if (refused)
        return refused;
    char msg[MSG_MAX];
    n = agx_sio_http_header(r, AGX_HTTP_HEADER_TOKEN, got, sizeof got);
    int rc = srv_token_claim(&s->token, got, n > 0 ? (size_t)n : 0, msg, sizeof msg);
    memset(got, 0, sizeof got);
    if (rc != 0)
        return reply(body, cap, 400, "{\"message\":\"" AGX_HTTP_HEADER_TOKEN ": %s\"}", msg);
    fprintf(stderr, "agentix-server: claimed (token set)\n");
    srv_expiry_extend(s, ms);
    return reply(body, cap, 200, "{\"" AGX_HTTP_FIELD_EXPIRES_IN "\":%lld}",
                 (long long)srv_expiry_left_ms(s));
}

int srv_http(const agx_sio_http_request *r, const char *method, const char *path, char *body,
             size_t cap, void *ud)
{
    srv_server *s = ud;
    if (strcmp(path, AGX_HTTP_PATH_EXPIRY) == 0)
        return strcmp(method, "POST") == 0
                   ? post_expiry(s, r, body, cap)
                   : reply(body, cap, 405, "{\"message\":\"POST only\"}");
    if (strcmp(path, AGX_HTTP_PATH_CLAIM) == 0)
        return strcmp(method, "POST") == 0
                   ? post_claim(s, r, body, cap)
                   : reply(body, cap, 405, "{\"message\":\"POST only\"}");
    return 0;
}
