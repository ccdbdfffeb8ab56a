/* sio_client.c — the host's dialling side of the transport, its front half: the runtime URL
 * (http, https, ws, wss and http+unix), the curl-style connect-to rule, the extra headers and the
 * websocket upgrade request are checked and built here, once, when a connection starts; then
 * sio_dial.c opens the socket and runs the websocket under the conn (sio_conn.c), and sio_tls.c
 * puts TLS on it for https. This file also owns the lifecycle: close, free, and the release of
 * the memory once every handle the client opened on the loop has closed.
 *
 * Why not libwebsockets here (docs/ARCHITECTURE.md, "The client engine"): one lws context per
 * connection cost ~650 KB, lws 4.1 contexts cannot be created from many threads at once, and
 * its client parser handed https payload over one byte per call. The websocket protocol a
 * client needs is small and already ours (ws_frame.c decodes, sio_send.c frames). */
#include "runtime/transport/sio_client_impl.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentix/unix_url.h"

#define DEFAULT_CONNECT_TIMEOUT 10000
#define HOST_MAX 256
#define HEADERS_MAX 64
#define HEADER_BYTES_MAX 8192
#define TOKEN_MAX 2048
#define SIO_PATH "/socket.io/?EIO=4&transport=websocket"
#define PREFIX_MAX 1024 /* bytes of a URL path prefix (e.g. a k8s apiserver proxy path) */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define UNIX_PATH_MAX_BYTES 1024 /* dialled through /proc/self/fd, so not sun_path's 108 */

/* What parse_url finds; strings are copied into the client afterwards. */
typedef struct url_parts {
    bool tls, unix_sock;
    char host[HOST_MAX];        /* TCP: URL host, brackets stripped */
    int port;
    char host_header[HOST_MAX + 8];
    char path[PREFIX_MAX + sizeof SIO_PATH]; /* <URL path prefix>/socket.io/?EIO=4&... */
    char unix_path[UNIX_PATH_MAX_BYTES];
    char dial_host[HOST_MAX];
    int dial_port;
} url_parts;

/* ---- URL and connect-to parsing ---- */

static bool host_chars_ok(const char *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr(".-_:%", h[i]))
            return false;
    return true;
}

/* Digits of a port 1..65535 in s[0..n); -1 when n is 0 (absent); -2 when malformed. */
static int parse_port(const char *s, size_t n)
{
    if (n == 0)
        return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -2;
        v = v * 10 + (s[i] - '0');
        if (v > 65535)
            return -2;
    }
    return v == 0 ? -2 : (int)v;
}

/* Splits "host:port" / "[v6]:port" at the last colon outside brackets. *port = -1 if absent. */
static int split_host_port(const char *s, size_t n, char *host, size_t cap, int *port)
{
    size_t hlen = n;
    const char *hs = s, *ps = NULL;
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
            ps = rb + 2;
        }
    } else {
        const char *colon = memrchr(s, ':', n);
        if (colon) {
            hlen = (size_t)(colon - s);
            ps = colon + 1;
        }
    }
    if (hlen >= cap || !host_chars_ok(hs, hlen))
        return -1;
    memcpy(host, hs, hlen);
    host[hlen] = '\0';
    if (ps && (*port = parse_port(ps, (size_t)(s + n - ps))) < 0)
        return -1;
    return 0;
}

/* A URL path character (RFC 3986 pchar or '/'): the prefix goes verbatim into the request line. */
static bool path_char(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("-._~!$&'()*+,;=:@%/", ch));
}

/* The websocket path from the URL's path: a proxy (the k8s apiserver's pods/<name>:<port>/proxy)
 * may put the server under a prefix; trailing slashes are dropped. */
static int set_path(url_parts *u, const char *tail)
{
    size_t n = strlen(tail);
    while (n && tail[n - 1] == '/')
        n--;
    if (n >= PREFIX_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!path_char((unsigned char)tail[i]))
            return -1;
    snprintf(u->path, sizeof u->path, "%.*s" SIO_PATH, (int)n, tail);
    return 0;
}

static int parse_url(url_parts *u, const char *url, agx_error *err)
{
    static const struct {
        const char *prefix;
        bool tls, unix_sock;
        int port;
    } schemes[] = {{"http://", false, false, 80},      {"ws://", false, false, 80},
                   {"https://", true, false, 443},     {"wss://", true, false, 443},
                   {"http+unix://", false, true, 0},   {"ws+unix://", false, true, 0}};
    const char *rest = NULL;
    int def = 0;
    for (size_t i = 0; url && i < sizeof schemes / sizeof *schemes; i++)
        if (strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
            rest = url + strlen(schemes[i].prefix);
            u->tls = schemes[i].tls;
            u->unix_sock = schemes[i].unix_sock;
            def = schemes[i].port;
        }
    if (!rest)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "runtime URL '%.200s' must start with http://, https://, ws://, "
                             "wss:// or http+unix://",
                             url ? url : "(null)");
    size_t n = strcspn(rest, "/?#");
    if (set_path(u, rest + n) != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "runtime URL '%.200s' may have a path prefix (the transport then "
                             "uses <prefix>/socket.io/) but no query or fragment, and the prefix "
                             "must be under %d bytes of URL path characters",
                             url, PREFIX_MAX);
    if (u->unix_sock) {
        if (agx_unix_url_decode_path(rest, n, u->unix_path, sizeof u->unix_path) != 0)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "runtime URL '%.200s': after http+unix:// comes the absolute "
                                 "path of the socket, percent-encoded (/ as %%2F), at most %zu "
                                 "bytes",
                                 url, sizeof u->unix_path - 1);
        snprintf(u->host_header, sizeof u->host_header, "localhost");
        return 0;
    }
    if (n == 0 || split_host_port(rest, n, u->host, sizeof u->host, &u->port) != 0 || !*u->host)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "runtime URL '%.200s' has a bad host or port", url);
    bool v6 = strchr(u->host, ':') != NULL;
    if (u->port < 0)
        u->port = def;
    if (u->port == def)
        snprintf(u->host_header, sizeof u->host_header, v6 ? "[%s]" : "%s", u->host);
    else
        snprintf(u->host_header, sizeof u->host_header, v6 ? "[%s]:%d" : "%s:%d", u->host,
                 u->port);
    snprintf(u->dial_host, sizeof u->dial_host, "%s", u->host);
    u->dial_port = u->port;
    return 0;
}

/* The next ':' outside brackets, or the end of s. */
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
    if (n >= cap || !host_chars_ok(s, n))
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

/* curl's CONNECT_TO rule: "HOST:PORT:CONNECT_HOST:CONNECT_PORT"; empty HOST/PORT match any,
 * empty CONNECT_HOST/CONNECT_PORT keep the URL's. Not for Unix sockets. */
static int apply_connect_to(url_parts *u, const char *spec, agx_error *err)
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
    int port = parse_port(f[1], (size_t)(f[2] - 1 - f[1]));
    int cport = parse_port(f[3], (size_t)(f[4] - f[3]));
    if (parse_field_host(f[0], (size_t)(f[1] - 1 - f[0]), host, sizeof host) || port == -2 ||
        parse_field_host(f[2], (size_t)(f[3] - 1 - f[2]), chost, sizeof chost) || cport == -2 ||
        *f[4])
        goto bad;
    if (u->unix_sock || (*host && strcasecmp(host, u->host) != 0) ||
        (port >= 0 && port != u->port))
        return 0; /* the rule is for another URL */
    if (*chost)
        snprintf(u->dial_host, sizeof u->dial_host, "%s", chost);
    if (cport >= 0)
        u->dial_port = cport;
    return 0;
bad:
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "connect-to '%.200s' is not HOST:PORT:CONNECT_HOST:CONNECT_PORT", spec);
}

/* ---- the upgrade request ---- */

static bool header_ok(const agx_sio_header *h)
{
    if (!h->name || !h->value || !*h->name)
        return false;
    for (const char *p = h->name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    for (const char *p = h->value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    return true;
}

static int check_headers(const agx_sio_client_config *cfg, size_t *bytes, agx_error *err)
{
    *bytes = 0;
    if (!cfg->nheaders)
        return 0;
    if (!cfg->headers || cfg->nheaders > HEADERS_MAX)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "at most %d extra headers",
                             HEADERS_MAX);
    for (size_t i = 0; i < cfg->nheaders; i++) {
        if (!header_ok(&cfg->headers[i]))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "extra header #%zu has a bad name or a CR/LF in its value", i);
        *bytes += strlen(cfg->headers[i].name) + strlen(cfg->headers[i].value) + 4;
    }
    if (*bytes > HEADER_BYTES_MAX)
        return agx_error_set(err, AGX_ERR_LIMIT, "extra headers exceed %d bytes",
                             HEADER_BYTES_MAX);
    return 0;
}

/* base64 of n bytes into out (cap >= 4 * ceil(n / 3) + 1). */
static void b64(const unsigned char *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* The GET with a fresh Sec-WebSocket-Key; remembers the Sec-WebSocket-Accept it implies. */
static int build_request(agx_sio_client *c, const url_parts *u, const agx_sio_client_config *cfg,
                         size_t header_bytes)
{
    unsigned char rnd[16], sha[SHA_DIGEST_LENGTH];
    char key[32], cat[96];
    sio_random_bytes(rnd, sizeof rnd);
    b64(rnd, sizeof rnd, key);
    int kn = snprintf(cat, sizeof cat, "%s" WS_GUID, key);
    SHA1((const unsigned char *)cat, (size_t)kn, sha);
    b64(sha, sizeof sha, c->ws_accept);
    size_t cap = 256 + strlen(u->path) + strlen(u->host_header) + header_bytes;
    char *r = malloc(cap), *p = r;
    if (!r)
        return -1;
    p += snprintf(p, cap, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                          "Sec-WebSocket-Version: 13\r\n",
                  u->path, u->host_header, key);
    for (size_t i = 0; i < cfg->nheaders; i++)
        p += snprintf(p, cap - (size_t)(p - r), "%s: %s\r\n", cfg->headers[i].name,
                      cfg->headers[i].value);
    p += snprintf(p, cap - (size_t)(p - r), "\r\n");
    c->request = r;
    c->request_len = (size_t)(p - r);
    return 0;
}

/* ---- failures and release ---- */

void sio_client_dial_failed(agx_sio_client *c, int code, const char *fmt, ...)
{
    if (c->conn.why_set)
        return;
    char what[AGX_ERROR_MESSAGE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (c->unix_path)
        sio_conn_set_why(&c->conn, code, "cannot open a websocket to %s: %s", c->label, what);
    else
        sio_conn_set_why(&c->conn, code, "cannot open a websocket to %s (dialled %s:%d): %s",
                         c->label, c->dial_host, c->dial_port, what);
}

static void dialer_maybe_free(agx_sio_dialer *d)
{
    if (!d->freed || !d->handle_closed || d->users)
        return;
    if (d->gone)
        *d->gone = true;
    sio_tls_ctx_free_all(d);
    free(d->rbuf);
    free(d->pbuf);
    free(d);
}

static void release(agx_sio_client *c)
{
    agx_sio_dialer *d = c->d;
    sio_conn_dispose(&c->conn);
    sio_tls_free(c);
    agx_ws_head_free(&c->hs);
    free(c->wbuf);
    free(c->pend);
    free(c->request);
    free(c->label);
    free(c->dial_host);
    free(c->unix_path);
    free(c->tls_name);
    free(c);
    if (d) {
        d->users--;
        dialer_maybe_free(d);
    }
}

void sio_client_maybe_release(agx_sio_client *c)
{
    if (c->freed && c->conn_released && !c->sock_open && !c->timer_open && !c->gai)
        release(c);
}

static void timer_closed(uv_handle_t *h)
{
    agx_sio_client *c = h->data;
    c->timer_open = false;
    sio_client_maybe_release(c);
}

static void conn_released(agx_sio_conn *conn)
{
    agx_sio_client *c = conn->owner;
    c->conn_released = true;
    if (c->timer_open && !uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, timer_closed); /* the last handle to go */
    sio_client_maybe_release(c);
}

static void abort_dial(agx_sio_conn *conn) { sio_dial_down(conn->owner); }

/* ---- dialers ---- */

static void turns_closed(uv_handle_t *h)
{
    agx_sio_dialer *d = h->data;
    d->handle_closed = true;
    dialer_maybe_free(d);
}

int agx_sio_dialer_new(uv_loop_t *loop, agx_sio_dialer **out, agx_error *err)
{
    agx_sio_dialer *d = calloc(1, sizeof *d);
    if (!d)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    d->loop = loop;
    uv_idle_init(loop, &d->turns);
    d->turns.data = d;
    *out = d;
    return 0;
}

void agx_sio_dialer_set_read_hook(agx_sio_dialer *d, void (*fn)(void *ud), void *ud)
{
    d->read_hook = fn;
    d->read_hook_ud = ud;
}

void agx_sio_dialer_free(agx_sio_dialer *d)
{
    if (!d || d->freed)
        return;
    d->freed = true;
    uv_close((uv_handle_t *)&d->turns, turns_closed);
}

/* ---- public ---- */

static char *dup_or_null(const char *s, bool *oom)
{
    char *r = s ? strdup(s) : NULL;
    if (s && !r)
        *oom = true;
    return r;
}

/* Copies what the connection needs after connect from the parsed URL. */
static int take_parts(agx_sio_client *c, const url_parts *u, const char *url)
{
    bool oom = false;
    if (u->unix_sock) {
        c->label = dup_or_null(u->unix_path, &oom);
        c->unix_path = dup_or_null(u->unix_path, &oom);
    } else {
        size_t n = strlen(u->host_header) + 16;
        c->label = malloc(n);
        if (c->label)
            snprintf(c->label, n, "%s://%s", u->tls ? "https" : "http", u->host_header);
        oom = !c->label;
        c->dial_host = dup_or_null(u->dial_host, &oom);
        c->dial_port = u->dial_port;
        if (u->tls)
            c->tls_name = dup_or_null(u->host, &oom);
    }
    (void)url;
    return oom ? -1 : 0;
}

/* The checks of a config that need no loop: URL, connect-to, headers, token. */
static int check_config(url_parts *u, const agx_sio_client_config *cfg, size_t *hbytes,
                        agx_error *err)
{
    int rc = parse_url(u, cfg->url, err);
    if (rc == 0 && cfg->connect_to && *cfg->connect_to)
        rc = apply_connect_to(u, cfg->connect_to, err);
    if (rc == 0)
        rc = check_headers(cfg, hbytes, err);
    if (rc == 0 && cfg->token && strlen(cfg->token) > TOKEN_MAX)
        rc = agx_error_set(err, AGX_ERR_LIMIT, "the token is over %d bytes", TOKEN_MAX);
    return rc;
}

int agx_sio_client_config_check(const agx_sio_client_config *cfg, agx_error *err)
{
    url_parts *u = calloc(1, sizeof *u);
    if (!u)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    size_t hbytes = 0;
    int rc = check_config(u, cfg, &hbytes, err);
    free(u);
    return rc;
}

static int configure(agx_sio_client *c, const agx_sio_client_config *cfg, agx_error *err)
{
    url_parts *u = calloc(1, sizeof *u); /* ~3 KB: not on the caller's stack */
    if (!u)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    size_t hbytes = 0;
    int rc = check_config(u, cfg, &hbytes, err);
    if (rc == 0 && (take_parts(c, u, cfg->url) || build_request(c, u, cfg, hbytes)))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (rc == 0 && u->tls)
        rc = sio_tls_ctx_get(c->d, cfg->ca_file, cfg->ca_dir, &c->tls_ctx, err);
    free(u);
    return rc;
}

int agx_sio_client_connect(uv_loop_t *loop, const agx_sio_client_config *cfg,
                           agx_sio_client **out, agx_error *err)
{
    *out = NULL;
    if (!loop || !cfg || (cfg->dialer && cfg->dialer->loop != loop))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "sio client: no loop or config, or a dialer of another loop");
    agx_sio_client *c = calloc(1, sizeof *c);
    if (!c)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    c->h = cfg->handlers;
    sio_limits_resolve(&cfg->limits, &c->lim);
    int rc = 0;
    if (cfg->dialer) {
        c->d = cfg->dialer;
    } else {
        rc = agx_sio_dialer_new(loop, &c->d, err);
        c->private_dialer = rc == 0;
    }
    if (c->d)
        c->d->users++;
    if (rc == 0)
        rc = configure(c, cfg, err);
    sio_conn_params p = {.client = true,
                         .h = &c->h,
                         .lim = &c->lim,
                         .connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
                                                                       : DEFAULT_CONNECT_TIMEOUT,
                         .token = cfg->token,
                         .released = conn_released,
                         .abort_dial = abort_dial,
                         .owner = c};
    if (rc == 0)
        rc = sio_conn_init(&c->conn, loop, &p, err); /* only fails on a non-UTF-8 token */
    if (rc) {
        agx_sio_dialer *pd = c->private_dialer ? c->d : NULL;
        if (c->conn.open_handles) {
            /* the conn's timers are the only handles opened: free once they have closed */
            c->conn.always_report_close = false;
            c->freed = true;
            sio_conn_detach(&c->conn);
        } else {
            release(c);
        }
        if (pd) {
            bool gone = false;
            pd->gone = &gone;
            agx_sio_dialer_free(pd);
            while (!gone)
                uv_run(loop, UV_RUN_ONCE); /* its close callback, so the loop can be closed */
        }
        return rc;
    }
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    sio_dial_start(c);
    *out = c;
    return 0;
}

agx_sio_conn *agx_sio_client_conn(agx_sio_client *c)
{
    return c && c->conn.state == SIO_CONNECTED ? &c->conn : NULL;
}

void agx_sio_client_close(agx_sio_client *c)
{
    if (c && c->conn.state != SIO_DEAD)
        agx_sio_conn_close(&c->conn);
}

void agx_sio_client_free(agx_sio_client *c)
{
    if (!c || c->freed)
        return;
    c->h = (agx_sio_handlers){0}; /* no handler after free */
    c->freed = true;
    bool private_dialer = c->private_dialer;
    agx_sio_dialer *d = c->d;
    uv_loop_t *loop = d->loop;
    if (c->conn.state != SIO_DEAD) {
        sio_conn_set_why(&c->conn, AGX_OK, "freed");
        sio_dial_down(c);
    }
    sio_client_maybe_release(c); /* c may be gone from here on */
    if (private_dialer) {
        /* Closing handles make uv_run return without blocking, so this only runs our closes
         * (and whatever else is ready) even when the caller's loop has other handles. */
        bool gone = false;
        d->gone = &gone;
        agx_sio_dialer_free(d);
        while (!gone)
            uv_run(loop, UV_RUN_ONCE);
    }
}
