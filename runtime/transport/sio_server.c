/* sio_server.c — agentix-server's listening side: an lws vhost on the caller's libuv loop that
 * answers GET and HEAD /health, admits websocket upgrades on /socket.io/?EIO=4&transport=websocket
 * only, and gives each accepted websocket an agx_sio_conn (sio_conn.c) that the RPC layer talks
 * to. The listening socket is ours (sio_listen.c): accepted sockets are adopted into the vhost, so
 * running out of descriptors backs off instead of spinning, and accepting pauses while the server
 * holds as many sockets as its descriptor budget allows.
 * Shutdown follows the lws 4.1 foreign-loop recipe: close the connections, first
 * lws_context_destroy from a timer (never inside an lws callback), let the loop drain, second
 * lws_context_destroy in agx_sio_server_free. */
#include "runtime/transport/sio_server.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/transport/sio_conn_impl.h"
#include "runtime/transport/sio_listen.h"

#ifndef AGX_VERSION
#define AGX_VERSION "unknown"
#endif

#define DEFAULT_PING_INTERVAL 25000
#define DEFAULT_PING_TIMEOUT 20000
#define DEFAULT_CONNECT_TIMEOUT 45000
#define SHUTDOWN_GRACE_MS 2000   /* connections get this long to flush their DISCONNECT */
#define LWS_FD_TABLE_MAX 65536   /* lws sizes its fd tables for this many at most */
#define FD_RESERVE 64            /* descriptors kept for everything but sockets (worker pipes…) */
#define TRIM_AFTER_BYTES ((size_t)1 << 20) /* a conn that held more: give the heap back on close */

struct pss {
    agx_sio_conn *conn;
    bool reply_pending; /* an HTTP wsi with its body still to write */
    size_t reply_len;
    char reply[LWS_PRE + AGX_SIO_HTTP_BODY_MAX];
};

struct agx_sio_http_request {
    struct lws *wsi;
};

struct agx_sio_server {
    uv_loop_t *loop;
    void *foreign_loops[1];
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct lws_protocols protocols[2];
    char *host;
    char *unix_path; /* NULL: TCP on host:port */
    int port;
    sio_listener *listener;
    size_t nsockets;    /* adopted sockets not yet destroyed (HTTP and websocket) */
    size_t max_sockets; /* accepting pauses at this many */
    bool held;          /* the listener is held because of max_sockets */
    uint32_t ping_interval_ms, ping_timeout_ms, connect_timeout_ms;
    agx_sio_limits lim;
    size_t rx_total; /* receive buffers of all connections (lim.rx_budget bounds it) */
    bool (*authorize)(const json_t *auth, void *ud);
    agx_sio_http_fn on_http;
    agx_sio_handlers h;
    char health[LWS_PRE + 256];
    size_t health_len;

    agx_sio_conn *conns; /* websockets not yet closed */
    size_t nconns;
    uv_timer_t stop_timer;    /* runs the first lws_context_destroy outside lws callbacks */
    bool stop_timer_open;
    bool shutting_down;
    bool destroy_started;
};

static agx_sio_server *server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* ---- connections ---- */

static void conn_released(agx_sio_conn *c)
{
    bool big = c->peak_bytes > TRIM_AFTER_BYTES;
    sio_conn_dispose(c);
    free(c);
    /* Large messages leave free heap that glibc keeps; give it back once their owner is gone. */
    if (big)
        malloc_trim(0);
}

static int conn_open(agx_sio_server *s, struct lws *wsi, struct pss *pss)
{
    agx_sio_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    sio_conn_params p = {.client = false,
                         .h = &s->h,
                         .lim = &s->lim,
                         .ping_interval_ms = s->ping_interval_ms,
                         .ping_timeout_ms = s->ping_timeout_ms,
                         .connect_timeout_ms = s->connect_timeout_ms,
                         .authorize = s->authorize,
                         .released = conn_released,
                         .owner = s,
                         .rx_total = &s->rx_total};
    if (sio_conn_init(c, s->loop, &p, NULL) != 0) {
        sio_conn_dispose(c);
        free(c);
        return -1;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    pss->conn = c;
    return sio_conn_attach(c, wsi);
}

static void schedule_stop(agx_sio_server *s, uint64_t ms);

static void conn_gone(agx_sio_server *s, struct pss *pss)
{
    agx_sio_conn *c = pss->conn;
    if (!c)
        return;
    pss->conn = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    s->nconns--;
    sio_conn_detach(c);
    if (s->shutting_down && s->nconns == 0 && !s->destroy_started)
        schedule_stop(s, 0);
}

/* ---- HTTP: /health and 404 ---- */

static int http_done(struct lws *wsi)
{
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Queues status and body (JSON) on the wsi; the body goes out when it is writeable. HEAD gets the
 * headers GET would get, no body. */
static int http_reply(struct lws *wsi, struct pss *pss, unsigned status, const char *body,
                      size_t len, bool head)
{
    if (len > AGX_SIO_HTTP_BODY_MAX)
        len = 0;
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
                                      *end = buf + sizeof buf - 1;
    if (lws_add_http_common_headers(wsi, status, "application/json", len, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    if (len == 0 || head)
        return http_done(wsi);
    memcpy(pss->reply + LWS_PRE, body, len);
    pss->reply_len = len;
    pss->reply_pending = true;
    lws_callback_on_writable(wsi);
    return 0;
}

int agx_sio_http_header(const agx_sio_http_request *r, const char *name, char *out, size_t n)
{
    if (!r || !name || !out || n == 0 || n > INT32_MAX)
        return -1;
    out[0] = '\0';
    if (strcasecmp(name, "Authorization") == 0) {
        int len = lws_hdr_total_length(r->wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
        if (len <= 0 || (size_t)len >= n)
            return -1;
        return lws_hdr_copy(r->wsi, out, (int)n, WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ? -1 : len;
    }
    char key[96];
    size_t k = 0;
    for (; name[k] && k < sizeof key - 2; k++)
        key[k] = (char)((name[k] >= 'A' && name[k] <= 'Z') ? name[k] + 32 : name[k]);
    key[k++] = ':';
    key[k] = '\0';
    int len = lws_hdr_custom_length(r->wsi, key, (int)k);
    if (len < 0 || (size_t)len >= n)
        return -1;
    return lws_hdr_custom_copy(r->wsi, out, (int)n, key, (int)k) < 0 ? -1 : len;
}

/* GET or HEAD /health, else the owner's routes (on_http), else 404. Requests with a body are refused:
 * no route takes one, and an unread body would be taken for the next request. */
static int serve_http(agx_sio_server *s, struct lws *wsi, struct pss *pss, const char *path)
{
    bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    bool head = !get && lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    bool post = !get && !head && lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    if ((get || head) && path && strcmp(path, "/health") == 0)
        return http_reply(wsi, pss, HTTP_STATUS_OK, s->health + LWS_PRE, s->health_len, head);
    char clen[24];
    if (lws_hdr_copy(wsi, clen, sizeof clen, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
        strtoul(clen, NULL, 10) > 0) {
        lws_return_http_status(wsi, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, NULL);
        return -1; /* the body is not read: close rather than mistake it for a request */
    }
    if (s->on_http && path && (get || post)) {
        agx_sio_http_request r = {wsi};
        char body[AGX_SIO_HTTP_BODY_MAX + 1];
        body[0] = '\0';
        int status = s->on_http(&r, get ? "GET" : "POST", path, body, sizeof body, s->h.ud);
        if (status > 0)
            return http_reply(wsi, pss, (unsigned)status, body, strlen(body), false);
    }
    lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
    return http_done(wsi);
}

static int write_reply(struct lws *wsi, struct pss *pss)
{
    if (!pss->reply_pending)
        return 0;
    pss->reply_pending = false;
    if (lws_write(wsi, (unsigned char *)pss->reply + LWS_PRE, pss->reply_len,
                  LWS_WRITE_HTTP_FINAL) != (int)pss->reply_len)
        return -1;
    return http_done(wsi);
}

/* ---- sockets: adoption and the descriptor budget ---- */

/* Every wsi of the vhost is an adopted socket: at max_sockets the listener is held, so further
 * peers wait in the kernel's backlog until one goes. */
static void socket_counted(agx_sio_server *s, int delta)
{
    if (!s)
        return;
    if (delta > 0)
        s->nsockets++;
    else if (s->nsockets)
        s->nsockets--;
    if (!s->listener)
        return;
    bool full = s->nsockets >= s->max_sockets;
    if (full && !s->held)
        sio_listener_hold(s->listener);
    else if (!full && s->held)
        sio_listener_release(s->listener);
    s->held = full;
}

static void on_accept(int fd, void *ud)
{
    agx_sio_server *s = ud;
    /* lws owns fd from here: on failure it closes it. */
    if (!lws_adopt_socket_vhost(s->vh, fd))
        lwsl_info("agentix: adopting an accepted socket failed\n");
}

/* The socket budget: the fd limit (raised by the caller, see sio_raise_fd_limit) minus a reserve,
 * and what lws's tables hold. */
static void size_budget(agx_sio_server *s, struct lws_context_creation_info *info)
{
    struct rlimit r;
    long lim = getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY
                   ? (long)r.rlim_cur
                   : LWS_FD_TABLE_MAX;
    if (lim > LWS_FD_TABLE_MAX)
        lim = LWS_FD_TABLE_MAX;
    if (lim < 2 * FD_RESERVE)
        lim = 2 * FD_RESERVE;
    info->fd_limit_per_thread = (unsigned int)lim;
    s->max_sockets = (size_t)(lim - FD_RESERVE);
}

/* Only an Engine.IO v4 websocket session on /socket.io/ may upgrade; anything else (a polling
 * transport, another EIO version, an upgrade from an existing sid) is refused here. */
static bool upgrade_allowed(agx_sio_server *s, struct lws *wsi)
{
    char uri[32], arg[64];
    if (s->shutting_down)
        return false;
    if (lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) <= 0 ||
        strcmp(uri, "/socket.io/") != 0)
        return false;
    const char *v = lws_get_urlarg_by_name(wsi, "EIO=", arg, sizeof arg);
    if (!v || strcmp(v, "4") != 0)
        return false;
    v = lws_get_urlarg_by_name(wsi, "transport=", arg, sizeof arg);
    if (!v || strcmp(v, "websocket") != 0)
        return false;
    return lws_get_urlarg_by_name(wsi, "sid=", arg, sizeof arg) == NULL;
}

static int server_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct pss *pss = user;
    agx_sio_server *s;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return serve_http(server_of(wsi), wsi, pss, in);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return pss ? write_reply(wsi, pss) : -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return upgrade_allowed(server_of(wsi), wsi) ? 0 : 1;
    case LWS_CALLBACK_ESTABLISHED:
        return conn_open(server_of(wsi), wsi, pss);
    case LWS_CALLBACK_RECEIVE:
        return pss && pss->conn ? sio_conn_receive(pss->conn, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return pss && pss->conn ? sio_conn_writeable(pss->conn) : -1;
    case LWS_CALLBACK_CLOSED:
        s = server_of(wsi);
        if (pss)
            conn_gone(s, pss);
        return 0;
    case LWS_CALLBACK_WSI_CREATE:
        socket_counted(server_of(wsi), +1);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        socket_counted(server_of(wsi), -1);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- start ---- */

static int copy_config(agx_sio_server *s, const agx_sio_server_config *cfg, agx_error *err)
{
    if (cfg->port < 0 || cfg->port > 65535)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "port %d is out of range", cfg->port);
    s->host = strdup(cfg->host ? cfg->host : "127.0.0.1");
    if (!s->host || (cfg->unix_path && !(s->unix_path = strdup(cfg->unix_path))))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    s->port = cfg->port;
    s->ping_interval_ms = cfg->ping_interval_ms ? cfg->ping_interval_ms : DEFAULT_PING_INTERVAL;
    s->ping_timeout_ms = cfg->ping_timeout_ms ? cfg->ping_timeout_ms : DEFAULT_PING_TIMEOUT;
    s->connect_timeout_ms =
        cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT;
    sio_limits_resolve(&cfg->limits, &s->lim);
    s->authorize = cfg->authorize;
    s->on_http = cfg->on_http;
    s->h = cfg->handlers;
    json_t *health = json_pack("{s:s,s:s}", "status", "ok", "version",
                               cfg->version ? cfg->version : AGX_VERSION);
    size_t n = health ? json_dumpb(health, s->health + LWS_PRE, sizeof s->health - LWS_PRE,
                                   JSON_COMPACT)
                      : 0;
    json_decref(health);
    if (n == 0 || n > sizeof s->health - LWS_PRE)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "the version string is not valid");
    s->health_len = n;
    return 0;
}

static void release(agx_sio_server *s)
{
    sio_listener_close(s->listener);
    free(s->host);
    free(s->unix_path);
    free(s);
}

/* A context whose vhost failed: tear it down on the spot. The caller is outside the loop (see
 * sio_server.h), so a few loop turns close the handles lws opened. */
static void abandon_context(agx_sio_server *s)
{
    lws_context_destroy(s->ctx);
    for (int i = 0; i < 16; i++)
        uv_run(s->loop, UV_RUN_NOWAIT);
    sio_lws_context_finish(s->ctx);
    s->ctx = NULL;
}

int agx_sio_server_start(uv_loop_t *loop, const agx_sio_server_config *cfg, agx_sio_server **out,
                         agx_error *err)
{
    *out = NULL;
    if (!loop || !cfg)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "sio server: no loop or config");
    agx_sio_server *s = calloc(1, sizeof *s);
    if (!s)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = copy_config(s, cfg, err);
    if (rc == 0) {
        sio_listen_config lc = {.host = s->host, .port = s->port, .unix_path = s->unix_path,
                                .on_accept = on_accept, .ud = s};
        rc = sio_listener_open(loop, &lc, &s->listener, err);
    }
    if (rc) {
        release(s);
        return rc;
    }
    s->port = sio_listener_port(s->listener);
    sio_listener_hold(s->listener); /* until the vhost exists */
    sio_lws_log_init();
    s->loop = loop;
    s->foreign_loops[0] = loop;
    s->protocols[0] = (struct lws_protocols){.name = "sio",
                                             .callback = server_cb,
                                             .per_session_data_size = sizeof(struct pss),
                                             .rx_buffer_size = SIO_RX_CHUNK,
                                             .tx_packet_size = SIO_WRITE_CHUNK};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                   LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    info.foreign_loops = s->foreign_loops;
    info.user = s;
    info.pt_serv_buf_size = SIO_RX_CHUNK;
    size_budget(s, &info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    s->ctx = lws_create_context(&info);
    if (!s->ctx) {
        release(s);
        return agx_error_set(err, AGX_ERR_UNAVAILABLE,
                             "cannot start libwebsockets on libuv (is the "
                             "libwebsockets-evlib-uv package installed?)");
    }
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* sockets come from our listener */
    info.protocols = s->protocols;
    info.vhost_name = "agentix";
    s->vh = lws_create_vhost(s->ctx, &info);
    if (!s->vh) {
        abandon_context(s);
        rc = agx_error_set(err, AGX_ERR_UNAVAILABLE, "cannot create the libwebsockets vhost");
        release(s);
        return rc;
    }
    sio_listener_release(s->listener);
    uv_timer_init(loop, &s->stop_timer);
    s->stop_timer.data = s;
    s->stop_timer_open = true;
    *out = s;
    return 0;
}

int agx_sio_server_port(const agx_sio_server *s) { return s->port; }

size_t agx_sio_server_connection_count(const agx_sio_server *s) { return s->nconns; }

/* ---- shutdown ---- */

static void stop_timer_closed(uv_handle_t *h) { (void)h; }

static void stop_fired(uv_timer_t *t)
{
    agx_sio_server *s = t->data;
    s->destroy_started = true;
    uv_close((uv_handle_t *)&s->stop_timer, stop_timer_closed);
    s->stop_timer_open = false;
    /* Closes the listener and any connection that did not finish flushing (their on_close runs
     * from inside this call). */
    lws_context_destroy(s->ctx);
}

static void schedule_stop(agx_sio_server *s, uint64_t ms)
{
    if (s->stop_timer_open)
        uv_timer_start(&s->stop_timer, stop_fired, ms, 0);
}

void agx_sio_server_shutdown(agx_sio_server *s)
{
    if (!s || s->shutting_down)
        return;
    s->shutting_down = true;
    sio_listener_close(s->listener); /* no new connection from here */
    s->listener = NULL;
    for (agx_sio_conn *c = s->conns; c; c = c->next)
        agx_sio_conn_close(c);
    schedule_stop(s, s->nconns ? SHUTDOWN_GRACE_MS : 0);
}

void agx_sio_server_free(agx_sio_server *s)
{
    if (!s)
        return;
    if (!s->shutting_down || !s->destroy_started) {
        agx_sio_server_shutdown(s);
        uv_run(s->loop, UV_RUN_DEFAULT);
    }
    sio_lws_context_finish(s->ctx);
    release(s);
}
