/* floor.c — the physical floor anchor of bench/rpc: the RPC shape of agentix (host → TCP →
 * runtime server → pipe → worker → pipe → server → TCP → host) with nothing but length-prefixed
 * frames and blocking system calls, so agentix's figures can be read against what loopback TCP
 * plus one pipe hop cost on this machine in the same run.
 *
 * Three processes: this one (the client), a forked "server" that relays frames between its TCP
 * connection and a forked "worker" over two pipes (one thread per direction, as a relay that
 * parses frames), and the worker that echoes unary frames and produces stream items.
 * Measures sequential unary latency (p50/p99), pipelined throughput with 64 calls in flight, and
 * stream throughput of 64 KiB items; prints one JSON line.
 *
 * Usage: agentix-bench-floor [--n N] [--pipelined M] [--stream-items K] [--payload BYTES]
 *                            [--inflight W] [--item-bytes B] */
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

#define FRAME_MAX (16u * 1024 * 1024)
#define IO_TIMEOUT_S 30 /* no wait of the client is unbounded; a dead peer ends the run */
#define KIND_UNARY 'U'
#define KIND_STREAM 'S'
#define KIND_ITEM 'I'
#define KIND_END 'E'

typedef struct options {
    long n, pipelined, stream_items, payload, inflight, item_bytes;
} options;

static void die(const char *what)
{
    fprintf(stderr, "floor: %s: %s\n", what, errno ? strerror(errno) : "unexpected end of data");
    exit(1);
}

/* ---- frames: u32 little-endian length, then the bytes; the first byte says the kind ---- */

static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

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

static int frame_write(int fd, const void *data, uint32_t len)
{
    unsigned char hdr[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};
    struct iovec iov[2] = {{hdr, 4}, {(void *)data, len}};
    return writev_full(fd, iov, 2);
}

/* Reads one frame into *buf (grown as needed, bounded by FRAME_MAX); returns its length or -1. */
static long frame_read(int fd, char **buf, size_t *cap)
{
    unsigned char hdr[4];
    if (read_full(fd, hdr, 4))
        return -1;
    uint32_t len = hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (len == 0 || len > FRAME_MAX) {
        errno = EPROTO;
        return -1;
    }
    if (len > *cap) {
        char *p = realloc(*buf, len);
        if (!p)
            return -1;
        *buf = p;
        *cap = len;
    }
    return read_full(fd, *buf, len) ? -1 : (long)len;
}

/* ---- worker: echo unary frames, produce stream items ---- */

static void worker_stream(int out, const char *req, long len)
{
    uint32_t count, size;
    if (len < 9)
        die("worker: short stream request");
    memcpy(&count, req + 1, 4);
    memcpy(&size, req + 5, 4);
    if (size < 1 || size > FRAME_MAX)
        die("worker: bad stream item size");
    char *item = malloc(size);
    if (!item)
        die("worker: malloc");
    memset(item, 0x5a, size);
    item[0] = KIND_ITEM;
    for (uint32_t i = 0; i < count; i++)
        if (frame_write(out, item, size))
            die("worker: write");
    free(item);
    char end = KIND_END;
    if (frame_write(out, &end, 1))
        die("worker: write");
}

static void worker_main(int in, int out)
{
    char *buf = NULL;
    size_t cap = 0;
    long len;
    while ((len = frame_read(in, &buf, &cap)) > 0) {
        if (buf[0] == KIND_STREAM)
            worker_stream(out, buf, len);
        else if (frame_write(out, buf, (uint32_t)len))
            die("worker: write");
    }
    free(buf);
    _exit(0);
}

/* ---- server: relays frames between TCP and the worker's pipes ---- */

typedef struct relay {
    int from, to;
} relay;

static void *relay_run(void *arg)
{
    relay *r = arg;
    char *buf = NULL;
    size_t cap = 0;
    long len;
    while ((len = frame_read(r->from, &buf, &cap)) > 0)
        if (frame_write(r->to, buf, (uint32_t)len))
            break;
    free(buf);
    shutdown(r->to, SHUT_WR); /* only meaningful for the socket; harmless on a pipe */
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

static void call(int fd, const char *payload, long len, char **buf, size_t *cap)
{
    if (frame_write(fd, payload, (uint32_t)len))
        die("client: write");
    if (frame_read(fd, buf, cap) != len)
        die("client: read reply");
}

static void unary(int fd, const options *o, const char *payload, double *p50, double *p99)
{
    char *buf = NULL;
    size_t cap = 0;
    for (long i = 0; i < (o->n < 200 ? o->n : 200); i++) /* warm-up */
        call(fd, payload, o->payload, &buf, &cap);
    double *us = malloc((size_t)o->n * sizeof *us);
    if (!us)
        die("client: malloc");
    for (long i = 0; i < o->n; i++) {
        double t0 = now_us();
        call(fd, payload, o->payload, &buf, &cap);
        us[i] = now_us() - t0;
    }
    qsort(us, (size_t)o->n, sizeof *us, cmp_double);
    *p50 = us[(size_t)(0.50 * (double)o->n)];
    long i99 = (long)(0.99 * (double)o->n);
    *p99 = us[i99 < o->n ? i99 : o->n - 1];
    free(us);
    free(buf);
}

static double pipelined(int fd, const options *o, const char *payload)
{
    if (o->pipelined == 0)
        return 0;
    char *buf = NULL;
    size_t cap = 0;
    long sent = 0, done = 0;
    double t0 = now_us();
    for (; sent < o->pipelined && sent < o->inflight; sent++)
        if (frame_write(fd, payload, (uint32_t)o->payload))
            die("client: write");
    while (done < o->pipelined) {
        if (frame_read(fd, &buf, &cap) != o->payload)
            die("client: read reply");
        done++;
        if (sent < o->pipelined && frame_write(fd, payload, (uint32_t)o->payload) == 0)
            sent++;
        else if (sent < o->pipelined)
            die("client: write");
    }
    free(buf);
    return (double)o->pipelined / ((now_us() - t0) / 1e6);
}

static double stream(int fd, const options *o)
{
    if (o->stream_items == 0)
        return 0;
    char req[9] = {KIND_STREAM};
    uint32_t count = (uint32_t)o->stream_items, size = (uint32_t)o->item_bytes;
    memcpy(req + 1, &count, 4);
    memcpy(req + 5, &size, 4);
    char *buf = NULL;
    size_t cap = 0;
    double bytes = 0, t0 = now_us();
    if (frame_write(fd, req, sizeof req))
        die("client: write");
    for (;;) {
        long len = frame_read(fd, &buf, &cap);
        if (len <= 0)
            die("client: read item");
        if (buf[0] == KIND_END)
            break;
        bytes += (double)len;
    }
    free(buf);
    if (bytes != (double)o->stream_items * (double)o->item_bytes) {
        errno = EPROTO;
        die("client: stream lost items");
    }
    return bytes / 1e6 / ((now_us() - t0) / 1e6);
}

/* ---- setup ---- */

static void parse_args(int argc, char **argv, options *o)
{
    *o = (options){.n = 2000, .pipelined = 20000, .stream_items = 2000, .payload = 64,
                   .inflight = 64, .item_bytes = 65536};
    static const struct { const char *name; size_t off; long min; } args[] = {
        {"--n", offsetof(options, n), 1},
        {"--pipelined", offsetof(options, pipelined), 0},
        {"--stream-items", offsetof(options, stream_items), 0},
        {"--payload", offsetof(options, payload), 1},
        {"--inflight", offsetof(options, inflight), 1},
        {"--item-bytes", offsetof(options, item_bytes), 1},
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
                            "[--stream-items K] [--payload BYTES] [--inflight W] [--item-bytes B]\n",
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
    int fd = connect_loopback(port);

    char *payload = malloc((size_t)o.payload);
    if (!payload)
        die("malloc");
    memset(payload, 0x61, (size_t)o.payload);
    payload[0] = KIND_UNARY;
    double p50, p99;
    unary(fd, &o, payload, &p50, &p99);
    double cps = pipelined(fd, &o, payload);
    double mbps = stream(fd, &o);
    free(payload);
    close(fd);
    int status = 0;
    waitpid(server, &status, 0);

    printf("{\"anchor\":\"floor-c\",\"hops\":\"tcp-loopback+pipe\",\"payload_bytes\":%ld,"
           "\"unary_calls\":%ld,\"unary_p50_us\":%.1f,\"unary_p99_us\":%.1f,"
           "\"pipelined_calls\":%ld,\"inflight\":%ld,\"pipelined_calls_per_s\":%.0f,"
           "\"stream_items\":%ld,\"stream_item_bytes\":%ld,\"stream_mb_per_s\":%.1f}\n",
           o.payload, o.n, p50, p99, o.pipelined, o.inflight, cps, o.stream_items, o.item_bytes,
           mbps);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
