/* client.c — the host's RPC client connection (client.h): one agentix-server connection served
 * by the client's own libuv loop thread. This file connects (options, headers, connect-to, the
 * wait for the Socket.IO CONNECT), runs the loop thread, ends every call in flight when the
 * connection goes, and tears everything down on agx_client_free. The work itself flows through
 * outbox.c (host → runtime) and inbox.c (runtime → host).
 *
 * Connect errors keep the transport's code: AGX_ERR_PROTOCOL when the server refused the Socket.IO
 * CONNECT (a wrong or missing token: "the server refused the Socket.IO connection: invalid
 * token"), AGX_ERR_UNAVAILABLE when nothing answers, AGX_ERR_TIMEOUT when the handshake did not
 * finish within connect_timeout_ms. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/client_impl.h"

#define DEFAULT_CONNECT_TIMEOUT 10000
#define DEFAULT_WINDOW 64
#define MAX_WINDOW 65536
#define MAX_HEADERS 64

void agx_client_lock(agx_client *c) { pthread_mutex_lock(&c->mu); }
void agx_client_unlock(agx_client *c) { pthread_mutex_unlock(&c->mu); }

/* ---- connection lifecycle (loop thread) ---- */

static void on_connect(agx_sio_conn *conn, void *ud)
{
    (void)conn;
    agx_client *c = ud;
    agx_client_lock(c);
    if (c->state == CS_CONNECTING)
        c->state = CS_CONNECTED;
    pthread_cond_broadcast(&c->state_cv);
    agx_client_unlock(c);
}

static void on_drain(agx_sio_conn *conn, void *ud)
{
    (void)conn;
    agx_client_run_dirty(ud);
}

static void on_close(agx_sio_conn *conn, const agx_error *why, void *ud)
{
    (void)conn;
    agx_client *c = ud;
    agx_error e;
    agx_client_lock(c);
    bool closing = c->closing;
    if (closing) {
        agx_error_set(&e, AGX_ERR_CANCELLED, "the client was closed");
    } else {
        agx_error_copy(&e, why);
        if (e.code == AGX_OK)
            agx_error_set(&e, AGX_ERR_UNAVAILABLE, "the connection closed");
        if (c->state == CS_CONNECTED) {
            /* A call in flight on a lost connection fails as UNAVAILABLE, whatever the cause. */
            e.code = AGX_ERR_UNAVAILABLE;
            agx_error_prefix(&e, "lost the connection to %s", c->url);
        } else {
            agx_error_prefix(&e, "cannot connect to %s", c->url);
        }
        e.retriable = 1;
    }
    agx_error_copy(&c->dead_why, &e);
    c->state = CS_DEAD;
    pthread_cond_broadcast(&c->state_cv);
    agx_client_unlock(c);
    agx_client_drop_dirty(c);
    agx_client_end_all(c, &e);
}

static void handle_closed(uv_handle_t *h) { (void)h; }

static void on_wake(uv_async_t *a)
{
    agx_client *c = a->data;
    agx_client_lock(c);
    bool closing = c->closing;
    agx_client_unlock(c);
    if (!closing) {
        agx_sio_cork(); /* the calls host threads queued since the last wake leave together */
        agx_client_run_dirty(c);
        agx_sio_uncork();
        return;
    }
    agx_client_drop_dirty(c);
    agx_error e;
    agx_error_set(&e, AGX_ERR_CANCELLED, "the client was closed");
    agx_client_end_all(c, &e);
    while (c->thead)
        agx_client_timer_unlink(c, c->thead);
    agx_sio_client_close(c->sio);
    uv_close((uv_handle_t *)&c->wake, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
}

static void *loop_main(void *arg)
{
    agx_client *c = arg;
    pthread_setname_np(pthread_self(), "agx-client"); /* visible in top/perf/gdb */
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- connect / free ---- */

static int add_headers(agx_sio_header *h, size_t *n, const agx_kv *kv, agx_error *err)
{
    for (size_t i = 0; kv && i < agx_kv_count(kv); i++) {
        if (*n >= MAX_HEADERS)
            return agx_error_set(err, AGX_ERR_LIMIT, "at most %d extra headers", MAX_HEADERS);
        h[*n].name = agx_kv_key_at(kv, i);
        h[*n].value = agx_kv_value_at(kv, i);
        (*n)++;
    }
    return 0;
}

static void client_destroy(agx_client *c)
{
    pthread_mutex_lock(&c->mu);
    agx_call *k = c->freelist;
    c->freelist = NULL;
    pthread_mutex_unlock(&c->mu);
    while (k) {
        agx_call *n = k->dnext;
        pthread_cond_destroy(&k->cv);
        agx_buf_free(&k->payload);
        free(k);
        k = n;
    }
    free(c->buckets);
    agx_buf_free(&c->scratch);
    free(c->url);
    pthread_cond_destroy(&c->state_cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Stops the loop thread after a connect that never produced a usable client. */
static void shutdown_loop(agx_client *c)
{
    agx_client_lock(c);
    c->closing = true;
    agx_client_unlock(c);
    uv_async_send(&c->wake);
    pthread_join(c->thread, NULL);
    agx_sio_client_free(c->sio);
    uv_loop_close(&c->loop);
    client_destroy(c);
}

static int client_init(agx_client *c, const char *url, const agx_client_options *o,
                       agx_error *err)
{
    /* Adaptive: the loop thread holds the lock only briefly, and a host thread woken by a reply
     * would otherwise often sleep again on the lock it still holds. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&c->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    agx_cond_init(&c->state_cv);
    c->next_id = 1;
    c->call_timeout_ms = o->call_timeout_ms;
    c->window = o->stream_window ? o->stream_window : DEFAULT_WINDOW;
    if (c->window > MAX_WINDOW)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "stream_window %u is over %u",
                             o->stream_window, MAX_WINDOW);
    c->limits = agx_codec_limits_default();
    if (o->max_payload)
        c->limits.max_bytes = o->max_payload;
    if (!(c->url = strdup(url)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = uv_loop_init(&c->loop);
    if (rc)
        return agx_error_set(err, AGX_ERR_IO, "uv_loop_init: %s", uv_strerror(rc));
    uv_async_init(&c->loop, &c->wake, on_wake);
    c->wake.data = c;
    uv_timer_init(&c->loop, &c->timer);
    c->timer.data = c;
    return 0;
}

/* Closes the loop's own handles and runs it until they (and what the transport left) close.
 * With a transport still open, it is freed in between: its free runs the loop to completion,
 * which returns only once no handle of ours is left open. */
static void loop_discard(agx_client *c, agx_sio_client *transport)
{
    uv_close((uv_handle_t *)&c->wake, handle_closed);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    agx_sio_client_free(transport);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
}

static int start_transport(agx_client *c, const char *url, const agx_client_options *o,
                           const agx_kv *extra_headers, agx_error *err)
{
    agx_sio_header hdrs[MAX_HEADERS];
    size_t nh = 0;
    int rc = add_headers(hdrs, &nh, o->headers, err);
    if (rc == 0)
        rc = add_headers(hdrs, &nh, extra_headers, err);
    if (rc)
        return rc;
    const char *connect_to = o->connect_to ? o->connect_to : getenv("AGENTIX_CONNECT_TO");
    int ct = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT;
    agx_sio_client_config cfg = {
        .url = url,
        .token = o->token,
        .headers = hdrs,
        .nheaders = nh,
        .connect_to = connect_to,
        .connect_timeout_ms = (uint32_t)ct,
        .limits = {.max_payload = o->max_payload},
        .handlers = {.on_connect = on_connect,
                     .on_event = agx_client_on_event,
                     .on_drain = on_drain,
                     .on_close = on_close,
                     .ud = c},
    };
    return agx_sio_client_connect(&c->loop, &cfg, &c->sio, err);
}

/* Waits for on_connect / on_close; a little longer than the transport's own connect timer,
 * which normally reports first with the precise reason. */
static int wait_connected(agx_client *c, int ct, agx_error *err)
{
    int64_t deadline = agx_deadline_ms((int64_t)ct + 2000);
    int rc = 0;
    agx_client_lock(c);
    while (c->state == CS_CONNECTING && rc != ETIMEDOUT)
        rc = agx_cond_wait_until(&c->state_cv, &c->mu, deadline);
    if (c->state == CS_CONNECTED)
        rc = 0;
    else if (c->state == CS_DEAD)
        rc = agx_client_fail_fast_locked(c, err);
    else
        rc = agx_error_set(err, AGX_ERR_TIMEOUT, "cannot connect to %s within %d ms", c->url, ct);
    agx_client_unlock(c);
    return rc;
}

/* Defaults overlaid with the caller's options, reading only the struct_size bytes the caller's
 * build knows about (a host built against an older header passes a shorter struct). */
static void resolve_options(const agx_client_options *in, agx_client_options *out)
{
    agx_client_options_init(out);
    if (!in)
        return;
    size_t n = in->struct_size && in->struct_size < sizeof *in ? in->struct_size : sizeof *in;
    memcpy(out, in, n);
    out->struct_size = sizeof *out;
}

static int connect_impl(const char *url, const agx_client_options *opts, const agx_kv *extra,
                        agx_client **out, agx_error *err)
{
    if (out)
        *out = NULL;
    if (!url || !out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_connect: no URL or out");
    agx_client_options resolved;
    resolve_options(opts, &resolved);
    const agx_client_options *o = &resolved;
    agx_client *c = calloc(1, sizeof *c);
    if (!c)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = client_init(c, url, o, err);
    if (rc) {
        if (c->wake.data)
            loop_discard(c, NULL);
        client_destroy(c);
        return rc;
    }
    rc = start_transport(c, url, o, extra, err);
    if (rc) {
        loop_discard(c, NULL);
        client_destroy(c);
        return rc;
    }
    rc = pthread_create(&c->thread, NULL, loop_main, c);
    if (rc) {
        loop_discard(c, c->sio);
        client_destroy(c);
        return agx_error_set(err, AGX_ERR_IO, "cannot start the client thread: %s", strerror(rc));
    }
    rc = wait_connected(c, o->connect_timeout_ms > 0 ? o->connect_timeout_ms
                                                     : DEFAULT_CONNECT_TIMEOUT, err);
    if (rc) {
        shutdown_loop(c);
        return rc;
    }
    *out = c;
    return 0;
}

void agx_client_options_init(agx_client_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT;
    opts->max_payload = 64u << 20;
    opts->stream_window = DEFAULT_WINDOW;
}

int agx_client_connect(const char *runtime_url, const agx_client_options *opts, agx_client **out,
                       agx_error *err)
{
    return connect_impl(runtime_url, opts, NULL, out, err);
}

int agx_client_connect_sandbox(const agx_sandbox *sb, const agx_client_options *opts,
                               agx_client **out, agx_error *err)
{
    if (out)
        *out = NULL;
    if (!sb || !agx_sandbox_runtime_url(sb))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_client_connect_sandbox: the sandbox has no runtime URL");
    agx_client_options o;
    resolve_options(opts, &o);
    if (!o.token)
        o.token = agx_sandbox_token(sb);
    return connect_impl(agx_sandbox_runtime_url(sb), &o, agx_sandbox_headers_const(sb), out, err);
}

void agx_client_free(agx_client *c)
{
    if (!c)
        return;
    if (pthread_equal(pthread_self(), c->thread)) {
        /* Joining the loop thread from itself would hang; refusing leaks less than hanging. */
        fprintf(stderr, "agentix: agx_client_free called from a client callback; not freed "
                        "(free the client from a host thread)\n");
        return;
    }
    shutdown_loop(c);
}

bool agx_client_is_connected(const agx_client *c)
{
    if (!c)
        return false;
    agx_client *m = (agx_client *)c;
    agx_client_lock(m);
    bool up = m->state == CS_CONNECTED && !m->closing;
    agx_client_unlock(m);
    return up;
}

