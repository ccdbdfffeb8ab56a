/* client.c — the host's RPC client connection (client.h): one agentix-server connection, a cheap
 * object on one I/O thread of an agx_engine (engine.c). This file connects (options, headers,
 * connect-to, CA; the blocking form waits for the Socket.IO CONNECT, the async form reports it
 * through the engine), runs the connection's life on its I/O thread (dial, CONNECT, loss, the
 * end of every call it carried), and frees it from any thread. The work itself flows through
 * outbox.c (host → runtime) and inbox.c (runtime → host).
 *
 * Lifetime: the client is reference counted (client_impl.h); the loop side holds its reference
 * until the transport and the timer have closed on the loop, so freeing from any thread — a
 * callback of the client itself included — never pulls memory from under the loop.
 *
 * Connect errors keep the transport's code: AGX_ERR_PROTOCOL when the server refused the Socket.IO
 * CONNECT (a wrong or missing token: "the server refused the Socket.IO connection: invalid
 * token"), AGX_ERR_UNAVAILABLE when nothing answers, AGX_ERR_TIMEOUT when the handshake did not
 * finish within connect_timeout_ms. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/client_impl.h"

#define DEFAULT_CONNECT_TIMEOUT 10000
#define DEFAULT_WINDOW 64
#define MAX_WINDOW 65536
#define MAX_HEADERS 64

/* ---- references ---- */

static void client_destroy(agx_client *c)
{
    agx_call *k = c->freelist;
    while (k) {
        agx_call *n = k->dnext;
        agx_buf_free(&k->payload);
        free(k);
        k = n;
    }
    free(c->buckets);
    agx_buf_free(&c->scratch);
    free(c->url);
    free(c->dial);
    free(c->dead_why);
    pthread_cond_destroy(&c->state_cv);
    pthread_mutex_destroy(&c->mu);
    agx_engine *e = c->e;
    io_thread *t = c->t;
    free(c);
    agx_engine_client_gone(e, t);
}

void agx_client_lock(agx_client *c) { pthread_mutex_lock(&c->mu); }

void agx_client_unlock(agx_client *c)
{
    bool gone = c->refs == 0;
    pthread_mutex_unlock(&c->mu);
    if (gone)
        client_destroy(c);
}

/* ---- the connect callback ---- */

#define CONN_OF(k) ((agx_client *)((char *)(k) - offsetof(agx_client, conn_comp)))

static void conn_run(agx_completion *k)
{
    agx_client *c = CONN_OF(k);
    agx_client_lock(c);
    bool report = c->conn_due && !c->conn_reported;
    c->conn_reported |= report;
    int status = 0;
    agx_error *e = NULL;
    if (report && c->state != CS_CONNECTED) {
        e = malloc(sizeof *e);
        if (e)
            status = agx_client_fail_fast_locked(c, e);
        else
            status = AGX_ERR_NO_MEMORY;
    }
    agx_client_unlock(c);
    if (report)
        c->ccb(c->cuser, c, status, e);
    free(e);
}

static void conn_release(agx_completion *k)
{
    agx_client *c = CONN_OF(k);
    agx_client_lock(c);
    c->refs--;
    agx_client_unlock(c);
}

/* The connect is settled (lock held by nobody): report it once, if a callback was given. */
static void settle_connect(agx_client *c)
{
    agx_client_lock(c);
    bool go = c->ccb && !c->conn_due;
    c->conn_due = true;
    if (go)
        c->refs++; /* the pending completion's */
    agx_client_unlock(c);
    if (go && !agx_engine_deliver(c->e, &c->conn_comp)) {
        agx_client_lock(c);
        c->refs--;
        agx_client_unlock(c);
    }
}

/* ---- the connection on its loop ---- */

static void loop_release_check(agx_client *c)
{
    if (c->sio_open || c->timer_open)
        return;
    agx_client_lock(c);
    c->refs--; /* the loop side's */
    agx_client_unlock(c);
}

static void timer_closed(uv_handle_t *h)
{
    agx_client *c = h->data;
    c->timer_open = false;
    loop_release_check(c);
}

static void sio_release(agx_client *c)
{
    if (!c->sio_open)
        return;
    c->sio_open = false;
    agx_sio_client_free(c->sio); /* no handler of it runs after this */
    c->sio = NULL;
}

static void on_connect(agx_sio_conn *conn, void *ud)
{
    (void)conn;
    agx_client *c = ud;
    agx_client_lock(c);
    if (c->state == CS_CONNECTING && !c->closing)
        c->state = CS_CONNECTED;
    bool up = c->state == CS_CONNECTED;
    pthread_cond_broadcast(&c->state_cv);
    agx_client_unlock(c);
    if (!up)
        return;
    settle_connect(c);
    agx_sio_cork(); /* calls started while connecting leave together */
    agx_client_run_dirty(c);
    agx_sio_uncork();
}

static void on_drain(agx_sio_conn *conn, void *ud)
{
    (void)conn;
    agx_client_run_dirty(ud);
}

/* The connection is gone (or never came): every call it carried ends, the connect callback (if
 * still due) reports why, and the transport is released. */
static void connection_ended(agx_client *c, const agx_error *why)
{
    agx_error *e = malloc(sizeof *e);
    agx_client_lock(c);
    bool closing = c->closing;
    if (!e) {
        /* no room for the reason: the calls still end, with a fixed one */
    } else if (closing) {
        agx_error_set(e, AGX_ERR_CANCELLED, "the client was closed");
    } else {
        agx_error_copy(e, why);
        if (e->code == AGX_OK)
            agx_error_set(e, AGX_ERR_UNAVAILABLE, "the connection closed");
        if (c->state == CS_CONNECTED) {
            /* A call in flight on a lost connection fails as UNAVAILABLE, whatever the cause. */
            e->code = AGX_ERR_UNAVAILABLE;
            agx_error_prefix(e, "lost the connection to %s", c->url);
        } else {
            agx_error_prefix(e, "cannot connect to %s", c->url);
        }
        e->retriable = 1;
    }
    if (!c->dead_why) {
        c->dead_why = e;
        e = NULL;
    }
    c->state = CS_DEAD;
    pthread_cond_broadcast(&c->state_cv);
    agx_client_unlock(c);
    free(e);
    agx_client_drop_dirty(c);
    agx_error fixed;
    if (!c->dead_why)
        agx_error_set(&fixed, AGX_ERR_NO_MEMORY, "the connection ended (out of memory)");
    agx_client_end_all(c, c->dead_why ? c->dead_why : &fixed);
    settle_connect(c);
}

static void on_close(agx_sio_conn *conn, const agx_error *why, void *ud)
{
    (void)conn;
    agx_client *c = ud;
    connection_ended(c, why);
    sio_release(c);
    loop_release_check(c);
}

static void dial(agx_client *c)
{
    uv_timer_init(&c->t->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    agx_sio_client_config *cfg = c->dial;
    cfg->dialer = c->t->dialer;
    cfg->handlers = (agx_sio_handlers){.on_connect = on_connect,
                                       .on_event = agx_client_on_event,
                                       .on_drain = on_drain,
                                       .on_close = on_close,
                                       .ud = c};
    agx_error err;
    int rc = agx_sio_client_connect(&c->t->loop, cfg, &c->sio, &err);
    agx_client_lock(c);
    c->dial = NULL;
    agx_client_unlock(c);
    free(cfg);
    if (rc == 0) {
        c->sio_open = true;
        return;
    }
    connection_ended(c, &err);
}

/* The user freed the client: calls end as cancelled, the connect callback (if still due) reports
 * it, and the transport closes cleanly (DISCONNECT after what is queued). Once this returns no
 * callback of the client runs any more (loop_done). Idempotent. */
static void loop_teardown(agx_client *c)
{
    agx_client_lock(c);
    bool done = c->loop_done;
    agx_client_unlock(c);
    if (done)
        return;
    agx_client_drop_dirty(c);
    agx_error e;
    agx_error_set(&e, AGX_ERR_CANCELLED, "the client was closed");
    agx_client_end_all(c, &e);
    while (c->thead)
        agx_client_timer_unlink(c, c->thead);
    settle_connect(c);
    agx_client_lock(c);
    c->loop_done = true;
    pthread_cond_broadcast(&c->state_cv);
    agx_client_unlock(c);
    if (c->sio_open)
        agx_sio_client_close(c->sio); /* on_close then releases it */
    if (c->timer_open)
        uv_close((uv_handle_t *)&c->timer, timer_closed);
    else
        loop_release_check(c);
}

void agx_client_loop_turn(agx_client *c)
{
    agx_client_lock(c);
    c->ready = false;
    bool closing = c->closing, need_dial = !c->dialled && !closing;
    c->dialled = true;
    agx_client_unlock(c);
    if (need_dial)
        dial(c);
    if (closing) {
        loop_teardown(c);
    } else {
        agx_sio_cork(); /* the calls host threads queued since the last turn leave together */
        agx_client_run_dirty(c);
        agx_sio_uncork();
    }
    agx_client_lock(c);
    c->refs--; /* the ready list's */
    agx_client_unlock(c);
}

/* ---- connect ---- */

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

static size_t str_bytes(const char *s) { return s ? strlen(s) + 1 : 0; }

static const char *put_str(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = memcpy(*p, s, n);
    *p += n;
    return d;
}

/* The transport config, deep-copied into one allocation (the loop dials with it later). */
static int build_dial(agx_client *c, const char *url, const agx_client_options *o,
                      const agx_kv *extra, agx_error *err)
{
    const agx_kv *lists[2] = {o->headers, extra};
    size_t nh = 0, bytes = 0;
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; lists[l] && i < agx_kv_count(lists[l]); i++) {
            nh++;
            bytes += str_bytes(agx_kv_key_at(lists[l], i)) + str_bytes(agx_kv_value_at(lists[l], i));
        }
    if (nh > MAX_HEADERS)
        return agx_error_set(err, AGX_ERR_LIMIT, "at most %d extra headers", MAX_HEADERS);
    const char *connect_to = o->connect_to ? o->connect_to : getenv("AGENTIX_CONNECT_TO");
    /* the CA: the client's options, else its engine's, else the environment (read now, so a
     * host may set it any time before connecting) */
    const char *ca_file = o->ca_file, *ca_dir = o->ca_dir;
    if (!ca_file && !ca_dir) {
        ca_file = c->e->ca_file;
        ca_dir = c->e->ca_dir;
    }
    if (!ca_file && !ca_dir) {
        ca_file = getenv("AGENTIX_CA_FILE");
        ca_dir = getenv("AGENTIX_CA_DIR");
        ca_file = ca_file && *ca_file ? ca_file : NULL;
        ca_dir = ca_dir && *ca_dir ? ca_dir : NULL;
    }
    bytes += str_bytes(url) + str_bytes(o->token) + str_bytes(connect_to) + str_bytes(ca_file) +
             str_bytes(ca_dir);
    size_t head = sizeof(agx_sio_client_config) + nh * sizeof(agx_sio_header);
    agx_sio_client_config *cfg = calloc(1, head + bytes);
    if (!cfg)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    agx_sio_header *hs = (agx_sio_header *)(cfg + 1);
    char *p = (char *)cfg + head;
    size_t k = 0;
    for (int l = 0; l < 2; l++)
        for (size_t i = 0; lists[l] && i < agx_kv_count(lists[l]); i++, k++) {
            hs[k].name = put_str(&p, agx_kv_key_at(lists[l], i));
            hs[k].value = put_str(&p, agx_kv_value_at(lists[l], i));
        }
    cfg->url = put_str(&p, url);
    cfg->token = put_str(&p, o->token);
    cfg->connect_to = put_str(&p, connect_to);
    cfg->ca_file = put_str(&p, ca_file);
    cfg->ca_dir = put_str(&p, ca_dir);
    cfg->headers = hs;
    cfg->nheaders = nh;
    int ct = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT;
    cfg->connect_timeout_ms = (uint32_t)ct;
    cfg->limits.max_payload = o->max_payload;
    int rc = agx_sio_client_config_check(cfg, err); /* bad URLs fail here, not on the loop */
    if (rc) {
        free(cfg);
        return rc;
    }
    c->dial = cfg;
    return 0;
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
    c->conn_comp.run = conn_run;
    c->conn_comp.release = conn_release;
    return 0;
}

/* A new client placed on an I/O thread of its engine, its dial handed to that thread. */
static int client_start(const char *url, const agx_client_options *opts, const agx_kv *extra,
                        agx_connect_cb cb, void *user, agx_client **out, agx_error *err)
{
    *out = NULL;
    agx_client_options o;
    resolve_options(opts, &o);
    agx_engine *e = agx_engine_resolve(o.engine, err);
    if (!e)
        return err ? err->code : AGX_ERR_UNAVAILABLE;
    agx_client *c = calloc(1, sizeof *c);
    if (!c)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    c->e = e;
    int rc = client_init(c, url, &o, err);
    if (rc == 0)
        rc = build_dial(c, url, &o, extra, err);
    if (rc) {
        free(c->url);
        free(c->dial);
        pthread_cond_destroy(&c->state_cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return rc;
    }
    c->ccb = cb;
    c->cuser = user;
    c->t = &e->io[atomic_fetch_add(&e->next_io, 1) % e->nio];
    atomic_fetch_add(&e->clients, 1);
    atomic_fetch_add(&e->open_clients, 1);
    pthread_mutex_lock(&c->t->mu);
    c->t->clients++;
    pthread_mutex_unlock(&c->t->mu);
    agx_client_lock(c);
    c->refs = 2; /* the caller's handle and the loop side */
    c->state = CS_CONNECTING;
    agx_engine_schedule_locked(c);
    agx_client_unlock(c);
    *out = c;
    return 0;
}

/* Waits for the CONNECT (or the failure); a little longer than the transport's own connect
 * timer, which normally reports first with the precise reason. */
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

int agx_client_refuse_blocking(const char *what, agx_error *err)
{
    if (!agx_engine_on_io_thread())
        return 0;
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "%s blocks, and was called on an engine I/O thread (from a callback): "
                         "use the callback forms there",
                         what);
}

static int connect_blocking(const char *url, const agx_client_options *opts, const agx_kv *extra,
                            agx_client **out, agx_error *err)
{
    int rc = agx_client_refuse_blocking("agx_client_connect", err);
    if (rc)
        return rc;
    agx_client *c;
    if ((rc = client_start(url, opts, extra, NULL, NULL, &c, err)) != 0)
        return rc;
    int ct = opts && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms
                                                  : DEFAULT_CONNECT_TIMEOUT;
    if ((rc = wait_connected(c, ct, err)) != 0) {
        agx_client_free(c);
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
    if (out)
        *out = NULL;
    if (!runtime_url || !out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_connect: no URL or out");
    return connect_blocking(runtime_url, opts, NULL, out, err);
}

/* The sandbox's token and headers over the caller's options. */
static int sandbox_options(const agx_sandbox *sb, const agx_client_options *opts,
                           agx_client_options *o, agx_error *err)
{
    if (!sb || !agx_sandbox_runtime_url(sb))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_client_connect_sandbox: the sandbox has no runtime URL");
    resolve_options(opts, o);
    if (!o->token)
        o->token = agx_sandbox_token(sb);
    return 0;
}

int agx_client_connect_sandbox(const agx_sandbox *sb, const agx_client_options *opts,
                               agx_client **out, agx_error *err)
{
    if (out)
        *out = NULL;
    agx_client_options o;
    int rc = out ? sandbox_options(sb, opts, &o, err)
                 : agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_client_connect_sandbox: out "
                                                                "is NULL");
    if (!rc)
        rc = connect_blocking(agx_sandbox_runtime_url(sb), &o, agx_sandbox_headers_const(sb), out,
                              err);
    if (!rc)
        agx_client_channel_register(*out, sb);
    return rc;
}

int agx_client_connect_async(const char *runtime_url, const agx_client_options *opts,
                             agx_connect_cb cb, void *user, agx_client **out, agx_error *err)
{
    if (out)
        *out = NULL;
    if (!runtime_url || !out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_client_connect_async: no URL or out");
    return client_start(runtime_url, opts, NULL, cb, user, out, err);
}

int agx_client_connect_sandbox_async(const agx_sandbox *sb, const agx_client_options *opts,
                                     agx_connect_cb cb, void *user, agx_client **out,
                                     agx_error *err)
{
    if (out)
        *out = NULL;
    agx_client_options o;
    int rc = out ? sandbox_options(sb, opts, &o, err)
                 : agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "agx_client_connect_sandbox_async: out is NULL");
    if (!rc)
        rc = client_start(agx_sandbox_runtime_url(sb), &o, agx_sandbox_headers_const(sb), cb, user,
                          out, err);
    if (!rc) /* used once connected: until then an extension falls back to POST /expiry */
        agx_client_channel_register(*out, sb);
    return rc;
}

/* ---- free ---- */

void agx_client_free(agx_client *c)
{
    if (!c)
        return;
    agx_client_channel_unregister(c);
    agx_client_lock(c);
    if (c->closing) { /* a second free of one handle: a bug in the caller, ignored */
        agx_client_unlock(c);
        return;
    }
    c->closing = true;
    agx_engine_schedule_locked(c); /* the loop's turn tears down (or finds it done) */
    agx_client_unlock(c);
    if (agx_engine_on_io_thread()) {
        /* On the client's own loop: tear down right here. On another I/O thread: waiting could
         * deadlock two loops freeing each other's clients, so the turn does it. */
        if (agx_client_loop_is_own(c))
            loop_teardown(c);
    } else {
        agx_client_lock(c);
        while (!c->loop_done)
            pthread_cond_wait(&c->state_cv, &c->mu);
        agx_client_unlock(c);
    }
    agx_engine *e = c->e;
    agx_client_lock(c);
    c->refs--; /* the caller's handle */
    agx_client_unlock(c);
    atomic_fetch_sub(&e->open_clients, 1);
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
