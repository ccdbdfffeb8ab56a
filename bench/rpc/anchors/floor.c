/* floor.c — the physical floor anchor of bench/rpc: the RPC shape of agentix (host → TCP →
 * runtime server → pipe → worker → pipe → server → TCP → host) with nothing but length-prefixed
 * frames and blocking system calls, so agentix's figures can be read against what loopback TCP
 * plus one pipe hop cost on this machine in the same run.
 *
 * Three processes: this one (the client), a forked "server" that relays frames between its TCP
 * connection and a forked "worker" over two pipes (one thread per direction, as a relay that
 * parses frames), and the worker that echoes unary frames and produces stream items.
 * Measures, with the same shapes as agentix-bench-rpc: sequential unary latency (p50/p99),
 * pipelined throughput with 64 calls in flight, stream throughput of 64 KiB items (MB/s), a
 * stream of 16-byte items (items/s) and bidi echo with 32 items outstanding (items/s); prints
 * one JSON line.
 *
 * Usage: agentix-bench-floor [--n N] [--pipelined M] [--stream-items K] [--payload BYTES]
 *                            [--inflight W] [--item-bytes B] [--small-items S] [--bidi-items D] */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../rows.h"

#define FRAME_MAX (16u * 1024 * 1024)
#define IO_TIMEOUT_S 30 /* no wait of the client is unbounded; a dead peer ends the run */
#define KIND_UNARY 'U'
#define KIND_STREAM 'S'
#define KIND_ITEM 'I'
#define KIND_END 'E'
#define SMALL_ITEM_BYTES 16 /* agentix's small-item row streams 16-byte data */
#define BIDI_OUTSTANDING 32 /* as agentix-bench-rpc's bidi row */
#define PIPE_BYTES (1 << 20) /* F_SETPIPE_SZ, as agentix-server's worker pipes */

typedef struct options {
    long n, pipelined, stream_items, payload, inflight, item_bytes, small_items, bidi_items;
} options;

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, errno ? strerror(errno) : "unexpected end of data");
    exit(1);
}

/* ---- frames: u32 little-endian length, then the bytes; the first byte says the kind ----
 * Reads are buffered (one read takes as many frames as the kernel has) and writes are gathered
 * until the writer would block on input, so small frames cost what a careful C program pays, not
 * one system call each: the floor stays a floor for the small-item and bidi rows too. Frames at
 * least DIRECT_MIN bytes go out with writev from where they lie (no copy). */

#define BUF_CAP (64u * 1024)
#define DIRECT_MIN (16u * 1024)

typedef struct rbuf {
    int fd;
    char *buf;
    size_t cap, start, end;
} rbuf;

typedef struct wbuf {
    int fd;
    char buf[BUF_CAP];
    size_t len;
} wbuf;

static int writev_full(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static int wb_flush(wbuf *w)
{
    struct iovec iov = {w->buf, w->len};
    w->len = 0;
    return iov.iov_len ? writev_full(w->fd, &iov, 1) : 0;
}

/* Appends one frame; large frames are written at once, after what is gathered. */
static int wb_frame(wbuf *w, const void *data, uint32_t len)
{
    unsigned char hdr[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};
    if (len >= DIRECT_MIN) {
        struct iovec iov[3] = {{w->buf, w->len}, {hdr, 4}, {(void *)data, len}};
        int rc = w->len ? writev_full(w->fd, iov, 3) : writev_full(w->fd, iov + 1, 2);
        w->len = 0;
        return rc;
    }
    if (w->len + 4 + len > BUF_CAP && wb_flush(w))
        return -1;
    memcpy(w->buf + w->len, hdr, 4);
    memcpy(w->buf + w->len + 4, data, len);
    w->len += 4 + (size_t)len;
    return 0;
}

static uint32_t rb_len(const rbuf *r)
{
    const unsigned char *h = (const unsigned char *)r->buf + r->start;
    return h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
}

/* Whether a whole frame is buffered (a relay flushes its output before it would block). */
static int rb_ready(const rbuf *r)
{
    size_t have = r->end - r->start;
    return have >= 4 && have - 4 >= rb_len(r);
}

/* The next frame (*frame points into the buffer until the next call); its length, or -1. */
static long rb_frame(rbuf *r, const char **frame)
{
    for (;;) {
        size_t have = r->end - r->start;
        if (have >= 4) {
            uint32_t len = rb_len(r);
            if (len == 0 || len > FRAME_MAX) {
                errno = EPROTO;
                return -1;
            }
            if (have - 4 >= len) {
                *frame = r->buf + r->start + 4;
                r->start += 4 + (size_t)len;
                return (long)len;
            }
            if (4 + (size_t)len > r->cap) {
                char *p = realloc(r->buf, 4 + (size_t)len);
                if (!p)
                    return -1;
                r->buf = p;
                r->cap = 4 + (size_t)len;
            }
        }
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, have);
            r->start = 0;
            r->end = have;
        }
        /* The rest of a large frame is read on its own, so its bytes are never moved. */
        size_t want = r->cap - r->end;
        if (r->end - r->start >= 4 && rb_len(r) >= DIRECT_MIN)
            want = 4 + (size_t)rb_len(r) - (r->end - r->start);
        ssize_t n = read(r->fd, r->buf + r->end, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        r->end += (size_t)n;
    }
}

static void rb_init(rbuf *r, int fd)
{
    *r = (rbuf){.fd = fd, .buf = malloc(BUF_CAP), .cap = BUF_CAP};
    if (!r->buf)
        die("malloc");
}

/* ---- worker: echo unary and bidi frames, produce stream items ---- */

/* Stream request: kind, u32 count, u32 item size. Items carry their index after the kind, as
 * agentix's small items carry {i, data}. */
static void worker_stream(wbuf *out, const char *req, long len)
{
    uint32_t count, size;
    if (len < 9)
        die("worker: short stream request");
    memcpy(&count, req + 1, 4);
    memcpy(&size, req + 5, 4);
    if (size < 1 || size > FRAME_MAX - 5)
        die("worker: bad stream item size");
    char *item = malloc(size + 5);
    if (!item)
        die("worker: malloc");
    memset(item, 0x5a, size + 5);
    item[0] = KIND_ITEM;
    uint32_t body = size < 64 ? size + 5 : size; /* small items: kind + index + data */
    for (uint32_t i = 0; i < count; i++) {
        memcpy(item + 1, &i, 4);
        if (wb_frame(out, item, body))
            die("worker: write");
    }
    free(item);
    char end = KIND_END;
    if (wb_frame(out, &end, 1) || wb_flush(out))
        die("worker: write");
}

static void worker_main(int in, int out)
{
    rbuf r;
    rb_init(&r, in);
    static wbuf w;
    w.fd = out;
    const char *frame;
    long len;
    for (;;) {
        if (!rb_ready(&r) && wb_flush(&w))
            die("worker: write");
        if ((len = rb_frame(&r, &frame)) <= 0)
            break;
        if (frame[0] == KIND_STREAM)
            worker_stream(&w, frame, len);
        else if (wb_frame(&w, frame, (uint32_t)len))
            die("worker: write");
    }
    free(r.buf);
    _exit(0);
}

/* ---- server: relays frames between TCP and the worker's pipes ---- */

typedef struct relay {
    int from, to;
} relay;

static void *relay_run(void *arg)
{
    relay *rl = arg;
    rbuf r;
    rb_init(&r, rl->from);
    wbuf *w = malloc(sizeof *w);
    if (!w)
        die("server: malloc");
    w->fd = rl->to;
    w->len = 0;
    const char *frame;
    long len;
    for (;;) {
        if (!rb_ready(&r) && wb_flush(w))
            break;
        if ((len = rb_frame(&r, &frame)) <= 0 || wb_frame(w, frame, (uint32_t)len))
            break;
    }
    free(r.buf);
    free(w);
    shutdown(rl->to, SHUT_WR); /* only meaningful for the socket; harmless on a pipe */
    return NULL;
}

static void server_main(int listener)
{
    int conn = accept(listener, NULL, NULL);
    close(listener);
    if (conn < 0)
        die("server: accept");
    int one = 1;
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int to_worker[2], from_worker[2];
    if (pipe2(to_worker, O_CLOEXEC) || pipe2(from_worker, O_CLOEXEC))
        die("server: pipe");
    /* The pipe size agentix-server gives its worker pipes (SRV_PIPE_SIZE): with the default
     * 64 KiB a 64 KiB item never fits whole and every item costs the writer a sleep. */
    (void)fcntl(to_worker[1], F_SETPIPE_SZ, PIPE_BYTES);
    (void)fcntl(from_worker[0], F_SETPIPE_SZ, PIPE_BYTES);
    pid_t worker = fork();
    if (worker < 0)
        die("server: fork");
    if (worker == 0) {
        close(conn);
        close(to_worker[1]);
        close(from_worker[0]);
        worker_main(to_worker[0], from_worker[1]);
    }
    close(to_worker[0]);
    close(from_worker[1]);
    relay up = {conn, to_worker[1]}, down = {from_worker[0], conn};
    pthread_t t;
    if (pthread_create(&t, NULL, relay_run, &down))
        die("server: pthread_create");
    relay_run(&up);       /* client closed: EOF to the worker, which exits */
    close(to_worker[1]);
    pthread_join(t, NULL); /* the worker's EOF ends the downward relay */
    close(from_worker[0]);
    close(conn);
    waitpid(worker, NULL, 0);
    _exit(0);
}

/* ---- client: the measurements ---- */

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The client's end of the connection: buffered like the relay's. */
typedef struct conn {
    rbuf r;
    wbuf w;
} conn;

static void send_frame(conn *c, const void *data, long len, int flush)
{
    if (wb_frame(&c->w, data, (uint32_t)len) || (flush && wb_flush(&c->w)))
        die("client: write");
}

static long recv_frame(conn *c, const char **frame)
{
    long len = rb_frame(&c->r, frame);
    if (len <= 0)
        die("client: read");
    return len;
}

static void call(conn *c, const char *payload, long len)
{
    const char *reply;
    send_frame(c, payload, len, 1);
    if (recv_frame(c, &reply) != len)
        die("client: read reply");
}

static void unary(conn *c, const options *o, const char *payload, double *p50, double *p99)
{
    for (long i = 0; i < (o->n < 200 ? o->n : 200); i++) /* warm-up */
        call(c, payload, o->payload);
    double *us = malloc((size_t)o->n * sizeof *us);
    if (!us)
        die("client: malloc");
    for (long i = 0; i < o->n; i++) {
        double t0 = now_us();
        call(c, payload, o->payload);
        us[i] = now_us() - t0;
    }
    qsort(us, (size_t)o->n, sizeof *us, cmp_double);
    *p50 = us[(size_t)(0.50 * (double)o->n)];
    long i99 = (long)(0.99 * (double)o->n);
    *p99 = us[i99 < o->n ? i99 : o->n - 1];
    free(us);
}

/* Keeps `window` frames of `payload` outstanding until `total` have come back (pipelined unary
 * calls, bidi echo): each reply lets one more go out, sent at once as agentix's calls are. */
static double windowed(conn *c, long total, long window, const char *payload, long len)
{
    if (total == 0)
        return 0;
    const char *reply;
    long sent = 0, done = 0;
    double t0 = now_us();
    for (; sent < total && sent < window; sent++)
        send_frame(c, payload, len, sent + 1 == total || sent + 1 == window);
    while (done < total) {
        if (recv_frame(c, &reply) != len)
            die("client: read reply");
        done++;
        if (sent < total) {
            send_frame(c, payload, len, 1);
            sent++;
        }
    }
    return (double)total / ((now_us() - t0) / 1e6);
}

/* Asks the worker for `items` items of `size` bytes; returns the seconds until the end frame, and
 * in *first (when given) the seconds until the first FIRST_STREAM_BYTES had arrived (all of them,
 * for a shorter stream). */
static double stream(conn *c, long items, long size, double *first)
{
    char req[9] = {KIND_STREAM};
    uint32_t count = (uint32_t)items, sz = (uint32_t)size;
    memcpy(req + 1, &count, 4);
    memcpy(req + 5, &sz, 4);
    const char *frame;
    long got = 0;
    double t0 = now_us(), t_first = 0;
    send_frame(c, req, sizeof req, 1);
    for (;;) {
        long len = recv_frame(c, &frame);
        if (frame[0] == KIND_END)
            break;
        if (len < size)
            die("client: short stream item");
        got++;
        if (!t_first && (double)got * (double)size >= FIRST_STREAM_BYTES)
            t_first = now_us();
    }
    if (got != items) {
        errno = EPROTO;
        die("client: stream lost items");
    }
    double t_end = now_us();
    if (first)
        *first = ((t_first ? t_first : t_end) - t0) / 1e6;
    return (t_end - t0) / 1e6;
}

/* ---- setup ---- */

static void parse_args(int argc, char **argv, options *o)
{
    *o = (options){.n = 2000, .pipelined = 20000, .stream_items = STREAM_ITEMS_DEFAULT,
                   .payload = 64, .inflight = 64, .item_bytes = 65536, .small_items = 100000,
                   .bidi_items = 20000};
    static const struct { const char *name; size_t off; long min; } args[] = {
        {"--n", offsetof(options, n), 1},
        {"--pipelined", offsetof(options, pipelined), 0},
        {"--stream-items", offsetof(options, stream_items), 0},
        {"--payload", offsetof(options, payload), 1},
        {"--inflight", offsetof(options, inflight), 1},
        {"--item-bytes", offsetof(options, item_bytes), 1},
        {"--small-items", offsetof(options, small_items), 0},
        {"--bidi-items", offsetof(options, bidi_items), 0},
    };
    for (int i = 1; i < argc; i += 2) {
        size_t k = 0;
        while (k < sizeof args / sizeof args[0] && strcmp(argv[i], args[k].name) != 0)
            k++;
        char *end = NULL;
        long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
        if (k == sizeof args / sizeof args[0] || !end || *end || v < args[k].min ||
            v > (long)FRAME_MAX) {
            fprintf(stderr, "floor: bad argument '%s'\nusage: %s [--n N] [--pipelined M] "
                            "[--stream-items K] [--payload BYTES] [--inflight W] [--item-bytes B] "
                            "[--small-items S] [--bidi-items D]\n",
                    argv[i], argv[0]);
            exit(2);
        }
        *(long *)((char *)o + args[k].off) = v;
    }
}

static int listen_loopback(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 1) ||
        getsockname(s, (struct sockaddr *)&a, &alen))
        die("listen on 127.0.0.1");
    *port = ntohs(a.sin_port);
    return s;
}

static int connect_loopback(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a))
        die("connect to 127.0.0.1");
    int one = 1;
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return s;
}

int main(int argc, char **argv)
{
    options o;
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    int port;
    int listener = listen_loopback(&port);
    pid_t server = fork();
    if (server < 0)
        die("fork");
    if (server == 0)
        server_main(listener);
    close(listener);
    static conn c;
    int fd = connect_loopback(port);
    rb_init(&c.r, fd);
    c.w.fd = fd;

    char *payload = malloc((size_t)o.payload);
    if (!payload)
        die("malloc");
    memset(payload, 0x61, (size_t)o.payload);
    payload[0] = KIND_UNARY;
    double p50, p99;
    unary(&c, &o, payload, &p50, &p99);
    double cps = windowed(&c, o.pipelined, o.inflight, payload, o.payload);
    /* Bidi before the streams: measured after a bulk stream on the same connection, this
     * blocking relay's echo lost 2-6x to the kernel (not chased), which made it no floor. */
    double bidi = windowed(&c, o.bidi_items, BIDI_OUTSTANDING, payload, o.payload);
    double t_first = 0;
    double t = o.stream_items ? stream(&c, o.stream_items, o.item_bytes, &t_first) : 0;
    double total = (double)o.stream_items * (double)o.item_bytes;
    double mbps = t > 0 ? total / 1e6 / t : 0;
    double first_mbps = first_stream_mbps(total, t_first);
    t = o.small_items ? stream(&c, o.small_items, SMALL_ITEM_BYTES, NULL) : 0;
    double small = t > 0 ? (double)o.small_items / t : 0;
    free(payload);
    free(c.r.buf);
    close(fd);
    int status = 0;
    waitpid(server, &status, 0);

    printf("{\"anchor\":\"floor-c\",\"hops\":\"tcp-loopback+pipe\",\"payload_bytes\":%ld,"
           "\"unary_calls\":%ld,\"unary_p50_us\":%.1f,\"unary_p99_us\":%.1f,"
           "\"pipelined_calls\":%ld,\"inflight\":%ld,\"pipelined_calls_per_s\":%.0f,"
           "\"stream_items\":%ld,\"stream_item_bytes\":%ld,\"stream_mb_per_s\":%.1f,"
           "\"stream_first_mb_per_s\":%.1f,"
           "\"stream_small_items\":%ld,\"stream_small_items_per_s\":%.0f,"
           "\"bidi_items\":%ld,\"bidi_items_per_s\":%.0f}\n",
           o.payload, o.n, p50, p99, o.pipelined, o.inflight, cps, o.stream_items, o.item_bytes,
           mbps, first_mbps, o.small_items, small, o.bidi_items, bidi);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
