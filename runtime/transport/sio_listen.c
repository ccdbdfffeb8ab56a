/* sio_listen.c — the listening socket and accept loop of agentix-server (see sio_listen.h). A
 * libuv poll on the socket accepts in bounded batches; running out of descriptors (or kernel
 * memory) stops the poll and retries after a backoff that doubles up to a second, so a full fd
 * table costs a few wakeups a second instead of a spinning core and a flooded log. */
#include "runtime/transport/sio_listen.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ACCEPTS_PER_WAKEUP 64
#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS 1000
#define LOG_EVERY_MS 10000 /* a repeated condition is logged at most this often */

struct sio_listener {
    uv_loop_t *loop;
    int fd;
    int port;
    char *unix_path;
    uv_poll_t poll;
    uv_timer_t backoff;
    int open_handles;
    unsigned holds;
    bool backing_off, polling, closing;
    uint64_t backoff_ms;
    uint64_t last_log_ms;
    unsigned long suppressed; /* failures not logged since the last line */
    void (*on_accept)(int fd, void *ud);
    void *ud;
};

long sio_raise_fd_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return -1;
    if (r.rlim_cur < r.rlim_max) {
        rlim_t want = r.rlim_max;
        r.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &r) != 0)
            getrlimit(RLIMIT_NOFILE, &r);
    }
    return r.rlim_cur == RLIM_INFINITY ? (long)INT32_MAX : (long)r.rlim_cur;
}

/* ---- accepting ---- */

static void on_readable(uv_poll_t *h, int status, int events);

/* The poll runs only when nothing holds it back. */
static void update(sio_listener *l)
{
    bool want = !l->closing && !l->backing_off && l->holds == 0;
    if (want && !l->polling)
        uv_poll_start(&l->poll, UV_READABLE, on_readable);
    else if (!want && l->polling)
        uv_poll_stop(&l->poll);
    l->polling = want;
}

static void backoff_fired(uv_timer_t *t)
{
    sio_listener *l = t->data;
    l->backing_off = false;
    update(l);
}

static void log_failure(sio_listener *l, int e)
{
    uint64_t now = uv_now(l->loop);
    if (l->last_log_ms && now - l->last_log_ms < LOG_EVERY_MS) {
        l->suppressed++;
        return;
    }
    char more[64] = "";
    if (l->suppressed)
        snprintf(more, sizeof more, " (%lu more since the last report)", l->suppressed);
    fprintf(stderr,
            "agentix-server: cannot accept a connection: %s; pausing accepts for %llu ms%s\n",
            strerror(e), (unsigned long long)l->backoff_ms, more);
    l->last_log_ms = now;
    l->suppressed = 0;
}

/* Out of descriptors or memory: stop taking connections for a while. */
static void back_off(sio_listener *l, int e)
{
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_FIRST_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    log_failure(l, e);
    l->backing_off = true;
    update(l);
    uv_timer_start(&l->backoff, backoff_fired, l->backoff_ms, 0);
}

/* Errors of one pending connection (it is gone, or the network is): the next one may be fine. */
static bool transient(int e)
{
    return e == EINTR || e == ECONNABORTED || e == EPROTO || e == ENETDOWN || e == ENOPROTOOPT ||
           e == EHOSTDOWN || e == ENONET || e == EHOSTUNREACH || e == EOPNOTSUPP ||
           e == ENETUNREACH || e == EPERM;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    sio_listener *l = h->data;
    (void)events;
    if (status < 0) {
        back_off(l, -status);
        return;
    }
    for (int i = 0; i < ACCEPTS_PER_WAKEUP && l->polling; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK)
                return;
            if (transient(e))
                continue;
            back_off(l, e); /* EMFILE, ENFILE, ENOBUFS, ENOMEM, anything unexpected */
            return;
        }
        l->backoff_ms = 0;
        if (!l->unix_path) {
            int one = 1; /* small frames (acks, pings) must not wait for Nagle */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        l->on_accept(fd, l->ud);
    }
}

void sio_listener_hold(sio_listener *l)
{
    l->holds++;
    update(l);
}

void sio_listener_release(sio_listener *l)
{
    if (l->holds)
        l->holds--;
    update(l);
}

/* ---- opening ---- */

static const char *bind_iface(const char *host)
{
    if (!host || !*host || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
        return NULL;
    return host;
}

static int open_tcp(sio_listener *l, const char *host, int port, agx_error *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res = NULL;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    const char *iface = bind_iface(host);
    if (!iface && host && strcmp(host, "::") == 0)
        hints.ai_family = AF_INET6;
    else if (!iface)
        hints.ai_family = AF_INET;
    int g = getaddrinfo(iface, portstr, &hints, &res);
    if (g != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "cannot resolve listen address '%s': %s",
                             host ? host : "", gai_strerror(g));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    int rc = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, SOMAXCONN) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot listen on %s:%d: %s (choose another port)",
                           host && *host ? host : "*", port, strerror(errno));
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (!rc && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                  : ((struct sockaddr_in *)&ss)->sin_port);
    if (rc && fd >= 0)
        close(fd);
    l->fd = rc ? -1 : fd;
    return rc;
}

/* An old socket file left by an earlier server is replaced (nothing listens on it any more once
 * that server is gone); any other kind of file is refused rather than deleted. */
static int open_unix(sio_listener *l, const char *path, agx_error *err)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (path[0] != '/' || strlen(path) >= sizeof a.sun_path)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "unix socket path '%s' must be absolute and under %zu bytes", path,
                             sizeof a.sun_path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return agx_error_set(err, AGX_ERR_IO,
                                 "cannot listen on unix:%s: a file that is not a socket is there",
                                 path);
        if (unlink(path) != 0)
            return agx_error_set(err, AGX_ERR_IO, "cannot replace the old socket unix:%s: %s",
                                 path, strerror(errno));
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, SOMAXCONN) != 0) {
        int rc = agx_error_set(err, AGX_ERR_IO, "cannot listen on unix:%s: %s", path,
                               strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (!(l->unix_path = strdup(path))) {
        close(fd);
        unlink(path);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    l->fd = fd;
    return 0;
}

int sio_listener_open(uv_loop_t *loop, const sio_listen_config *cfg, sio_listener **out,
                      agx_error *err)
{
    *out = NULL;
    if (!cfg->on_accept)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "listener: no accept handler");
    if (!cfg->unix_path && (cfg->port < 0 || cfg->port > 65535))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "port %d is out of range", cfg->port);
    sio_listener *l = calloc(1, sizeof *l);
    if (!l)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    l->loop = loop;
    l->fd = -1;
    l->on_accept = cfg->on_accept;
    l->ud = cfg->ud;
    int rc = cfg->unix_path ? open_unix(l, cfg->unix_path, err)
                            : open_tcp(l, cfg->host, cfg->port, err);
    if (rc == 0 && uv_poll_init(loop, &l->poll, l->fd) != 0) {
        rc = agx_error_set(err, AGX_ERR_IO, "cannot watch the listening socket");
        close(l->fd);
        if (l->unix_path)
            unlink(l->unix_path);
    }
    if (rc) {
        free(l->unix_path);
        free(l);
        return rc;
    }
    uv_timer_init(loop, &l->backoff);
    l->poll.data = l->backoff.data = l;
    l->open_handles = 2;
    update(l);
    *out = l;
    return 0;
}

int sio_listener_port(const sio_listener *l) { return l->port; }

static void handle_closed(uv_handle_t *h)
{
    sio_listener *l = h->data;
    if (--l->open_handles == 0) {
        free(l->unix_path);
        free(l);
    }
}

void sio_listener_close(sio_listener *l)
{
    if (!l || l->closing)
        return;
    l->closing = true;
    update(l);
    uv_timer_stop(&l->backoff);
    uv_close((uv_handle_t *)&l->poll, handle_closed);
    uv_close((uv_handle_t *)&l->backoff, handle_closed);
    close(l->fd);
    if (l->unix_path)
        unlink(l->unix_path);
}
