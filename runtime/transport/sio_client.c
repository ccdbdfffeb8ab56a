/* sio_client.c — the host's dialling side of the transport: one lws client context on the RPC
 * client's libuv loop, one websocket to agentix-server's /socket.io/ (optionally dialled at a
 * connect-to address), driving the agx_sio_conn of sio_conn.c. Teardown follows the lws 4.1
 * foreign-loop recipe: first lws_context_destroy from a timer once the conn is gone, the loop
 * drains, second lws_context_destroy in agx_sio_client_free.
 *
 * For http:// the socket is an lws raw socket and the websocket on it is ours: the HTTP upgrade
 * (with the Sec-WebSocket-Accept check) and the frame parser of ws_frame.c. lws 4.1's own client parser
 * handles received payload one byte per call, which capped streams at a few hundred MB/s; ours
 * hands whole runs of payload to the conn. Sends were already pre-framed. lws 4.1 cannot put
 * TLS on a raw client socket, so https:// uses lws's websocket client (and its parser). */
#include "runtime/transport/sio_client.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/transport/sio_conn_impl.h"
#include "runtime/transport/ws_frame.h"

#define DEFAULT_CONNECT_TIMEOUT 10000
#define HOST_MAX 256
#define HEADERS_MAX 64
#define HEADER_BYTES_MAX 8192
#define SIO_PATH "/socket.io/?EIO=4&transport=websocket"
#define PREFIX_MAX 1024 /* bytes of a URL path prefix (e.g. a k8s apiserver proxy path) */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

struct agx_sio_client {
    uv_loop_t *loop;
    void *foreign_loops[1];
    struct lws_context *ctx;
    struct lws_protocols protocols[2];
    agx_sio_conn conn;
    agx_sio_handlers h;
    agx_sio_limits lim;

    bool tls;
    char url[HOST_MAX + 16];    /* scheme://host:port, for messages */
    char host[HOST_MAX];        /* URL host, brackets stripped */
    int port;
    char host_header[HOST_MAX + 8];
    char path[PREFIX_MAX + sizeof SIO_PATH]; /* <URL path prefix>/socket.io/?EIO=4&... */
    char dial_host[HOST_MAX];
    int dial_port;
    char *ca_file;
    agx_sio_header *headers;    /* copies; one allocation holds the strings */
    size_t nheaders;

    struct lws *dial_wsi;       /* the raw socket being dialled or open */

    /* the websocket on the raw socket */
    char ws_accept[32];         /* the Sec-WebSocket-Accept the server must answer */
    bool upgraded;
    agx_ws_head hs;             /* the upgrade response, gathered */
    agx_ws_frames frames;

    uv_timer_t kick;            /* runs teardown steps outside lws callbacks */
    bool kick_open;
    bool conn_released;
    bool closing;
    bool destroy_started;
};

/* ---- URL and connect-to parsing ---- */

/* Splits "host:port" / "[v6]:port" at the last colon outside brackets. *port = -1 if absent. */
static int split_host_port(const char *s, size_t n, char *host, size_t cap, int *port)
{
    size_t hlen = n;
    const char *hs = s;
    *port = -1;
    if (n && s[0] == '[') {
        const char *rb = memchr(s, ']', n);
        if (!rb)
            return -1;
        hs = s + 1;
        hlen = (size_t)(rb - hs);
        size_t rest = n - (size_t)(rb + 1 - s);
        if (rest) {
            if (rb[1] != ':')
                return -1;
            *port = 0;
        }
    } else {
        const char *colon = NULL;
        for (size_t i = 0; i < n; i++)
            if (s[i] == ':')
                colon = s + i;
        if (colon) {
            hlen = (size_t)(colon - s);
            *port = 0;
        }
    }
    if (hlen >= cap)
        return -1;
    memcpy(host, hs, hlen);
    host[hlen] = '\0';
    for (size_t i = 0; i < hlen; i++)
        if (!isalnum((unsigned char)host[i]) && !strchr(".-_:%", host[i]))
            return -1;
    if (*port == 0) {
        const char *ps = hs + hlen + (s[0] == '[' ? 2 : 1);
        const char *pe = s + n;
        long v = 0;
        if (ps == pe)
            return -1;
        for (const char *p = ps; p < pe; p++) {
            if (!isdigit((unsigned char)*p))
                return -1;
            v = v * 10 + (*p - '0');
            if (v > 65535)
                return -1;
        }
        if (v == 0)
            return -1;
        *port = (int)v;
    }
    return 0;
}

/* A URL path character (RFC 3986 pchar or '/'): the prefix goes verbatim into the request line. */
static bool path_char(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("-._~!$&'()*+,;=:@%/", ch));
}

/* The websocket path from the URL's path: a proxy (the k8s apiserver's pods/<name>:<port>/proxy)
 * may put the server under a prefix; trailing slashes are dropped. */
static int set_path(agx_sio_client *c, const char *tail)
{
    size_t n = strlen(tail);
    while (n && tail[n - 1] == '/')
        n--;
    if (n >= PREFIX_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!path_char((unsigned char)tail[i]))
            return -1;
    snprintf(c->path, sizeof c->path, "%.*s" SIO_PATH, (int)n, tail);
    return 0;
}

static int parse_url(agx_sio_client *c, const char *url, agx_error *err)
{
    static const struct {
        const char *prefix;
        bool tls;
        int port;
    } schemes[] = {{"http://", false, 80}, {"ws://", false, 80},
                   {"https://", true, 443}, {"wss://", true, 443}};
    const char *rest = NULL;
    int def = 0;
    for (size_t i = 0; url && i < sizeof schemes / sizeof *schemes; i++)
        if (strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
            rest = url + strlen(schemes[i].prefix);
            c->tls = schemes[i].tls;
            def = schemes[i].port;
        }
    if (!rest)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "runtime URL '%s' must start with http://, https://, ws:// or wss://",
                             url ? url : "(null)");
    size_t n = strcspn(rest, "/?#");
    if (set_path(c, rest + n) != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "runtime URL '%s' may have a path prefix (the transport then uses "
                             "<prefix>/socket.io/) but no query or fragment, and the prefix must "
                             "be under %d bytes of URL path characters",
                             url, PREFIX_MAX);
    if (n == 0 || split_host_port(rest, n, c->host, sizeof c->host, &c->port) != 0 || !*c->host)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "runtime URL '%s' has a bad host or port",
                             url);
    bool v6 = strchr(c->host, ':') != NULL;
    if (c->port < 0)
        c->port = def;
    if (c->port == def)
        snprintf(c->host_header, sizeof c->host_header, v6 ? "[%s]" : "%s", c->host);
    else
        snprintf(c->host_header, sizeof c->host_header, v6 ? "[%s]:%d" : "%s:%d", c->host,
                 c->port);
    snprintf(c->dial_host, sizeof c->dial_host, "%s", c->host);
    c->dial_port = c->port;
    snprintf(c->url, sizeof c->url, "%s://%s", c->tls ? "https" : "http", c->host_header);
    return 0;
}

/* Splits s at its next ':' outside brackets into [s, *end). */
static const char *next_field(const char *s)
{
    int depth = 0;
    for (; *s; s++) {
        if (*s == '[')
            depth++;
        else if (*s == ']')
            depth--;
        else if (*s == ':' && depth == 0)
            return s;
    }
    return s;
}

static int parse_field_host(const char *s, size_t n, char *out, size_t cap)
{
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']')
        s++, n -= 2;
    if (n >= cap)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)out[i]) && !strchr(".-_:%", out[i]))
            return -1;
    return 0;
}

static int parse_field_port(const char *s, size_t n, int *out)
{
    long v = 0;
    *out = -1;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > 65535)
            return -1;
    }
    if (v == 0)
        return -1;
    *out = (int)v;
    return 0;
}

/* curl's CONNECT_TO rule: "HOST:PORT:CONNECT_HOST:CONNECT_PORT"; empty HOST/PORT match any,
 * empty CONNECT_HOST/CONNECT_PORT keep the URL's. */
static int apply_connect_to(agx_sio_client *c, const char *spec, agx_error *err)
{
    const char *f[5];
    f[0] = spec;
    for (int i = 1; i < 5; i++) {
        f[i] = next_field(f[i - 1]);
        if (i < 4) {
            if (!*f[i])
                goto bad;
            f[i]++;
        }
    }
    char host[HOST_MAX], chost[HOST_MAX];
    int port, cport;
    if (parse_field_host(f[0], (size_t)(f[1] - 1 - f[0]), host, sizeof host) ||
        parse_field_port(f[1], (size_t)(f[2] - 1 - f[1]), &port) ||
        parse_field_host(f[2], (size_t)(f[3] - 1 - f[2]), chost, sizeof chost) ||
        parse_field_port(f[3], (size_t)(f[4] - f[3]), &cport) || *f[4])
        goto bad;
    if ((*host && strcasecmp(host, c->host) != 0) || (port >= 0 && port != c->port))
        return 0; /* the rule is for another URL */
    if (*chost)
        snprintf(c->dial_host, sizeof c->dial_host, "%s", chost);
    if (cport >= 0)
        c->dial_port = cport;
    return 0;
bad:
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "connect-to '%s' is not HOST:PORT:CONNECT_HOST:CONNECT_PORT", spec);
}

static bool header_ok(const agx_sio_header *h)
{
    if (!h->name || !h->value || !*h->name)
        return false;
    for (const char *p = h->name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    for (const char *p = h->value; *p; p++)
        if (*p == '\r' || *p == '\n' || *p == '\0')
            return false;
    return true;
}

static int copy_headers(agx_sio_client *c, const agx_sio_client_config *cfg, agx_error *err)
{
    if (!cfg->nheaders)
        return 0;
    if (!cfg->headers || cfg->nheaders > HEADERS_MAX)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "at most %d extra headers",
                             HEADERS_MAX);
    size_t bytes = 0;
    for (size_t i = 0; i < cfg->nheaders; i++) {
        if (!header_ok(&cfg->headers[i]))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "extra header #%zu has a bad name or a CR/LF in its value", i);
        bytes += strlen(cfg->headers[i].name) + strlen(cfg->headers[i].value) + 4;
    }
    if (bytes > HEADER_BYTES_MAX)
        return agx_error_set(err, AGX_ERR_LIMIT, "extra headers exceed %d bytes",
                             HEADER_BYTES_MAX);
    char *blob = malloc(cfg->nheaders * sizeof(agx_sio_header) + bytes);
    if (!blob)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    c->headers = (agx_sio_header *)blob;
    char *p = blob + cfg->nheaders * sizeof(agx_sio_header);
    for (size_t i = 0; i < cfg->nheaders; i++) {
        size_t nl = strlen(cfg->headers[i].name) + 1, vl = strlen(cfg->headers[i].value) + 1;
        c->headers[i].name = memcpy(p, cfg->headers[i].name, nl);
        p += nl;
        c->headers[i].value = memcpy(p, cfg->headers[i].value, vl);
        p += vl;
    }
    c->nheaders = cfg->nheaders;
    return 0;
}

static int append_headers(agx_sio_client *c, char **p, size_t room)
{
    for (size_t i = 0; i < c->nheaders; i++) {
        int n = snprintf(*p, room, "%s: %s\r\n", c->headers[i].name, c->headers[i].value);
        if (n < 0 || (size_t)n >= room)
            return -1;
        *p += n;
        room -= (size_t)n;
    }
    return 0;
}

/* ---- teardown steps ---- */

static void kick_closed(uv_handle_t *h) { (void)h; }

static void kick_fired(uv_timer_t *t)
{
    agx_sio_client *c = t->data;
    if (c->conn.state != SIO_DEAD && !c->conn.link_ptr && !c->dial_wsi)
        sio_conn_detach(&c->conn); /* a dial that was aborted or never started */
    if (c->closing && c->conn_released && !c->destroy_started) {
        c->destroy_started = true;
        uv_close((uv_handle_t *)&c->kick, kick_closed);
        c->kick_open = false;
        lws_context_destroy(c->ctx);
    }
}

static void kick(agx_sio_client *c)
{
    if (c->kick_open)
        uv_timer_start(&c->kick, kick_fired, 0, 0);
}

static void conn_released(agx_sio_conn *conn)
{
    agx_sio_client *c = conn->owner;
    c->conn_released = true;
    kick(c);
}

static void abort_dial(agx_sio_conn *conn)
{
    agx_sio_client *c = conn->owner;
    if (c->dial_wsi) {
        lws_set_timeout(c->dial_wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        c->dial_wsi = NULL;
    }
    kick(c);
}

/* ---- the websocket on the raw socket: upgrade ---- */

static int hs_request(agx_sio_client *c, struct lws *wsi)
{
    unsigned char rnd[16], sha[20];
    char key[32], cat[96];
    sio_random_bytes(rnd, sizeof rnd);
    lws_b64_encode_string((const char *)rnd, (int)sizeof rnd, key, (int)sizeof key);
    snprintf(cat, sizeof cat, "%s" WS_GUID, key);
    lws_SHA1((const unsigned char *)cat, strlen(cat), sha);
    lws_b64_encode_string((const char *)sha, (int)sizeof sha, c->ws_accept,
                          (int)sizeof c->ws_accept);
    size_t cap = LWS_PRE + 1024 + sizeof c->path + HOST_MAX + HEADER_BYTES_MAX + HEADERS_MAX * 4;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return -1;
    char *start = (char *)buf + LWS_PRE, *p = start;
    size_t room = cap - LWS_PRE - 3;
    int n = snprintf(p, room,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n",
                     c->path, c->host_header, key);
    p += n;
    int rc = append_headers(c, &p, room - (size_t)n);
    if (rc == 0) {
        memcpy(p, "\r\n", 2);
        p += 2;
        size_t len = (size_t)(p - start);
        rc = lws_write(wsi, (unsigned char *)start, len, LWS_WRITE_RAW) == (int)len ? 0 : -1;
    }
    free(buf);
    return rc;
}

static int hs_fail(agx_sio_client *c, int code, const char *what, int status)
{
    if (!c->conn.why_set) {
        c->conn.why_set = true;
        agx_error_set(&c->conn.why, code, "cannot open a websocket to %s (dialled %s:%d): %s%.0d",
                      c->url, c->dial_host, c->dial_port, what, status);
    }
    return -1;
}

/* ---- the websocket on the raw socket: frames from the server ---- */

static int ws_data(void *ud, const unsigned char *p, size_t n, bool first, bool final,
                   bool binary, size_t left)
{
    agx_sio_client *c = ud;
    return sio_conn_receive_piece(&c->conn, p, n, first, final, binary, left);
}

static int ws_control(void *ud, unsigned opcode, const unsigned char *p, size_t n)
{
    agx_sio_conn *conn = &((agx_sio_client *)ud)->conn;
    if (opcode == 0x9) /* ping: a pong with its payload */
        return sio_queue_control(conn, 0xA, p, n) ? -1 : 0;
    if (opcode == 0xA)
        return 0;
    /* close: answer with the peer's code and end; the close is reported by detach */
    conn->ws_close_code = n >= 2 ? (uint16_t)(p[0] << 8 | p[1]) : SIO_WS_NORMAL;
    sio_close_reason(conn);
    return -1;
}

static int ws_receive(agx_sio_client *c, const unsigned char *in, size_t len)
{
    const agx_ws_sink sink = {.data = ws_data, .control = ws_control, .ud = c};
    const char *why = NULL;
    int rc = agx_ws_frames_feed(&c->frames, in, len, &sink, &why);
    if (rc == AGX_WS_BAD) {
        sio_conn_fail(&c->conn, AGX_ERR_PROTOCOL, SIO_WS_PROTOCOL_ERR, "%s", why);
        sio_close_reason(&c->conn);
    }
    return rc ? -1 : 0;
}

/* Bytes from the raw socket: the upgrade response first, then frames. */
static int raw_receive(agx_sio_client *c, struct lws *wsi, const unsigned char *in, size_t len)
{
    agx_sio_conn *conn = &c->conn;
    if (c->upgraded)
        return conn->link_ptr == wsi ? ws_receive(c, in, len) : -1;
    if (wsi != c->dial_wsi || conn->state != SIO_OPENING)
        return -1;
    size_t used = 0;
    const char *why = NULL;
    int status = 0;
    int rc = agx_ws_head_feed(&c->hs, in, len, c->ws_accept, &used, &why, &status);
    if (rc < 0)
        return hs_fail(c, rc, why, status);
    if (rc == 0)
        return 0;
    agx_ws_head_free(&c->hs);
    c->upgraded = true;
    if (sio_conn_attach_raw(conn, wsi))
        return -1;
    return ws_receive(c, in + used, len - used);
}

/* ---- lws callback ---- */

static int client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    agx_sio_client *c = ctx ? lws_context_user(ctx) : NULL;
    if (!c)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    agx_sio_conn *conn = &c->conn;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        return append_headers(c, (char **)in, len);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        /* May run inside lws_client_connect_via_info: report from the loop, not from here. */
        if (wsi != c->dial_wsi)
            return 0;
        c->dial_wsi = NULL;
        if (conn->state != SIO_DEAD && !conn->why_set) {
            conn->why_set = true;
            agx_error_set(&conn->why, AGX_ERR_UNAVAILABLE,
                          "cannot open a websocket to %s (dialled %s:%d): %.200s%s", c->url,
                          c->dial_host, c->dial_port, in ? (const char *)in : "unknown error",
                          c->tls && in && strstr(in, "SSL")
                              ? " (TLS handshake or certificate check failed; see ca_file)"
                              : "");
        }
        kick(c);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED: /* https: lws's own websocket */
        if (wsi != c->dial_wsi || conn->state != SIO_OPENING)
            return -1;
        return sio_conn_attach(conn, wsi);
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return conn->link_ptr == wsi ? sio_conn_receive(conn, in, len) : -1;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return conn->link_ptr == wsi ? sio_conn_writeable(conn) : -1;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (wsi == c->dial_wsi)
            c->dial_wsi = NULL;
        if (conn->link_ptr == wsi)
            sio_conn_detach(conn);
        return 0;
    case LWS_CALLBACK_RAW_CONNECTED: /* http: a raw socket with our websocket on it */
        if (wsi != c->dial_wsi || conn->state != SIO_OPENING)
            return -1;
        return hs_request(c, wsi);
    case LWS_CALLBACK_RAW_RX:
        return raw_receive(c, wsi, in, len);
    case LWS_CALLBACK_RAW_WRITEABLE:
        return conn->link_ptr == wsi ? sio_conn_writeable(conn) : 0;
    case LWS_CALLBACK_RAW_CLOSE:
        if (wsi == c->dial_wsi) {
            c->dial_wsi = NULL;
            if (conn->link_ptr != wsi && !conn->why_set) {
                conn->why_set = true;
                agx_error_set(&conn->why, AGX_ERR_UNAVAILABLE,
                              "cannot open a websocket to %s (dialled %s:%d): the connection "
                              "closed during the upgrade",
                              c->url, c->dial_host, c->dial_port);
            }
            kick(c);
        }
        if (conn->link_ptr == wsi)
            sio_conn_detach(conn);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- public ---- */

static void release(agx_sio_client *c)
{
    sio_conn_dispose(&c->conn);
    agx_ws_head_free(&c->hs);
    free(c->headers);
    free(c->ca_file);
    free(c);
}

static void release_conn_owner(agx_sio_conn *conn) { release(conn->owner); }

static int create_context(agx_sio_client *c, agx_error *err)
{
    c->foreign_loops[0] = c->loop;
    c->protocols[0] = (struct lws_protocols){
        .name = "sio", .callback = client_cb, .rx_buffer_size = SIO_RX_CHUNK,
        .tx_packet_size = SIO_WRITE_CHUNK};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    /* TLS only for https: lws 4.1 creates the client vhost's SSL_CTX whenever the context does
     * the SSL global init, and never frees it once a second client context has existed in the
     * process (~700 KB each), so http:// clients must not ask for it at all. */
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   (c->tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
    info.foreign_loops = c->foreign_loops;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = c->protocols;
    info.user = c;
    /* what one recv() takes on the raw socket: streams of 64 KiB items want several per call */
    info.pt_serv_buf_size = 4 * SIO_RX_CHUNK;
    info.client_ssl_ca_filepath = c->ca_file;
    c->ctx = lws_create_context(&info);
    if (!c->ctx)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE,
                             "cannot start libwebsockets on libuv (is the libwebsockets-evlib-uv "
                             "package installed?)");
    return 0;
}

static void dial(agx_sio_client *c)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = c->dial_host;
    ci.port = c->dial_port;
    /* http: the websocket upgrade and framing are ours (see the top); lws 4.1 has no TLS for
     * raw client sockets, so https keeps lws's websocket client. */
    ci.method = c->tls ? NULL : "RAW";
    ci.path = c->path;
    ci.host = c->host_header;
    ci.ssl_connection = c->tls ? LCCSCF_USE_SSL : 0;
    ci.protocol = NULL;
    ci.local_protocol_name = "sio";
    ci.ietf_version_or_minus_one = -1;
    ci.pwsi = &c->dial_wsi;
    /* lws may report a failure synchronously (CONNECTION_ERROR) and return NULL; the kick
     * reports it from the loop either way. */
    if (!lws_client_connect_via_info(&ci)) {
        c->dial_wsi = NULL;
        if (!c->conn.why_set) {
            c->conn.why_set = true;
            agx_error_set(&c->conn.why, AGX_ERR_UNAVAILABLE,
                          "cannot open a websocket to %s (dialled %s:%d)", c->url, c->dial_host,
                          c->dial_port);
        }
        kick(c);
    }
}

int agx_sio_client_connect(uv_loop_t *loop, const agx_sio_client_config *cfg,
                           agx_sio_client **out, agx_error *err)
{
    *out = NULL;
    if (!loop || !cfg)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "sio client: no loop or config");
    agx_sio_client *c = calloc(1, sizeof *c);
    if (!c)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    c->loop = loop;
    c->h = cfg->handlers;
    sio_limits_resolve(&cfg->limits, &c->lim);
    int rc = parse_url(c, cfg->url, err);
    if (rc == 0 && cfg->connect_to && *cfg->connect_to)
        rc = apply_connect_to(c, cfg->connect_to, err);
    if (rc == 0)
        rc = copy_headers(c, cfg, err);
    if (rc == 0 && cfg->ca_file && !(c->ca_file = strdup(cfg->ca_file)))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    sio_conn_params p = {.client = true,
                         .h = &c->h,
                         .lim = &c->lim,
                         .connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                                                                       : DEFAULT_CONNECT_TIMEOUT,
                         .token = cfg->token,
                         .released = conn_released,
                         .abort_dial = abort_dial,
                         .owner = c};
    if (rc == 0 && cfg->token && strlen(cfg->token) > 2048)
        rc = agx_error_set(err, AGX_ERR_LIMIT, "the token is over 2048 bytes");
    if (rc == 0)
        rc = sio_conn_init(&c->conn, loop, &p, err); /* only fails on a non-UTF-8 token */
    if (rc) {
        release(c);
        return rc;
    }
    sio_lws_log_init();
    rc = create_context(c, err);
    if (rc) {
        /* The conn's timers are the only handles opened so far: free once they have closed. */
        c->conn.always_report_close = false;
        c->conn.released = release_conn_owner;
        sio_conn_detach(&c->conn);
        return rc;
    }
    sio_conn_start_connect_timer(&c->conn);
    uv_timer_init(loop, &c->kick);
    c->kick.data = c;
    c->kick_open = true;
    dial(c);
    *out = c;
    return 0;
}

agx_sio_conn *agx_sio_client_conn(agx_sio_client *c)
{
    return c && c->conn.state == SIO_CONNECTED ? &c->conn : NULL;
}

void agx_sio_client_close(agx_sio_client *c)
{
    if (!c || c->closing)
        return;
    c->closing = true;
    if (c->conn.state == SIO_DEAD) {
        if (c->conn_released)
            kick(c);
        return;
    }
    agx_sio_conn_close(&c->conn);
}

void agx_sio_client_free(agx_sio_client *c)
{
    if (!c)
        return;
    if (!c->closing || !c->destroy_started) {
        agx_sio_client_close(c);
        uv_run(c->loop, UV_RUN_DEFAULT);
    }
    sio_lws_context_finish(c->ctx);
    release(c);
}
