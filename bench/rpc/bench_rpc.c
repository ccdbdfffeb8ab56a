/* bench_rpc.c — agentix's own side of bench/rpc: starts a real agentix-server (127.0.0.1, an
 * ephemeral port, the test `demo` module) and drives it through the public client API
 * (client.h), host → agentix-server → agentix-worker → demo function → back, measuring:
 *   - unary: sequential round trips of demo::echo with a PAYLOAD-byte binary (p50/p99, µs);
 *   - pipelined: unary calls/s with INFLIGHT calls in flight (agx_client_call_async);
 *   - stream: MB/s of demo::produce_bytes in ITEM-BYTES items, and items/s of small items
 *     (demo::count with 16-byte data);
 *   - bidi: items/s echoed by demo::echo_bidi with a bounded number of items outstanding;
 *   - files: MB/s of agentix.files::download_stream of a FILE-BYTES file (default 1 GiB, written
 *     beforehand to the server's temporary files root, on tmpfs when /dev/shm exists, so the disk
 *     is not what is measured) in its default 256 KiB items; and MB/s of the same size sent
 *     back with agentix.files::upload_stream in 256 KiB items.
 * Prints one JSON line with the same keys as the anchors (bench/rpc/anchors/README.md) plus
 * stream_small_items_per_s, bidi_items_per_s, files_download_mb_per_s and
 * files_upload_mb_per_s. run.sh puts it next
 * to the anchors.
 *
 * Usage: agentix-bench-rpc --server PATH --modules DIR [--n N] [--pipelined M] [--inflight W]
 *          [--stream-items K] [--item-bytes B] [--small-items S] [--bidi-items D] [--payload P]
 *          [--file-bytes F] */
#include <errno.h>
#include <stddef.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentix/client.h"
#include "rows.h"

#define CALL_TIMEOUT_MS 30000
#define BIDI_OUTSTANDING 32 /* below the stream window, so echo_bidi never blocks on its output */

typedef struct options {
    const char *server, *modules;
    long n, pipelined, inflight, stream_items, item_bytes, small_items, bidi_items, payload;
    long file_bytes;
} options;

static void die(const char *what, const agx_error *err)
{
    fprintf(stderr, "agentix-bench-rpc: %s%s%s\n", what, err ? ": " : "", err ? err->message : "");
    exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- arguments ---- */

static void parse_args(int argc, char **argv, options *o)
{
    *o = (options){.n = 2000, .pipelined = 20000, .inflight = 64,
                   .stream_items = STREAM_ITEMS_DEFAULT, .item_bytes = 65536,
                   .small_items = 100000, .bidi_items = 20000, .payload = 64,
                   .file_bytes = 1L << 30};
    static const struct { const char *name; size_t off; } nums[] = {
        {"--n", offsetof(options, n)},
        {"--pipelined", offsetof(options, pipelined)},
        {"--inflight", offsetof(options, inflight)},
        {"--stream-items", offsetof(options, stream_items)},
        {"--item-bytes", offsetof(options, item_bytes)},
        {"--small-items", offsetof(options, small_items)},
        {"--bidi-items", offsetof(options, bidi_items)},
        {"--payload", offsetof(options, payload)},
        {"--file-bytes", offsetof(options, file_bytes)},
    };
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            goto usage;
        if (!strcmp(argv[i], "--server")) {
            o->server = argv[i + 1];
            continue;
        }
        if (!strcmp(argv[i], "--modules")) {
            o->modules = argv[i + 1];
            continue;
        }
        size_t k = 0;
        while (k < sizeof nums / sizeof nums[0] && strcmp(argv[i], nums[k].name))
            k++;
        char *end;
        long v = k < sizeof nums / sizeof nums[0] ? strtol(argv[i + 1], &end, 10) : -1;
        long max = k < sizeof nums / sizeof nums[0] && nums[k].off == offsetof(options, file_bytes)
                       ? 1L << 40 : 100000000;
        if (v < 0 || v > max || *end)
            goto usage;
        *(long *)((char *)o + nums[k].off) = v;
    }
    if (o->server && o->modules && o->n >= 1 && o->inflight >= 1 && o->payload >= 1 &&
        o->item_bytes >= 1 && o->item_bytes <= (16 << 20))
        return;
usage:
    fprintf(stderr,
            "usage: %s --server <agentix-server> --modules <dir with demo module> [--n N] "
            "[--pipelined M] [--inflight W] [--stream-items K] [--item-bytes B (<= 16 MiB)] "
            "[--small-items S] [--bidi-items D] [--payload P] [--file-bytes F]\n",
            argv[0]);
    exit(2);
}

/* ---- the server under test ---- */

typedef struct server {
    pid_t pid;
    char dir[64];
    char url[64];
    char file[96]; /* the download row's file, under the files root (dir) */
} server;

static void server_start(server *s, const options *o)
{
    /* tmpfs when there is one: the download row's file then lives in memory only. */
    snprintf(s->dir, sizeof s->dir, "/dev/shm/agx-bench-rpc-XXXXXX");
    if (!mkdtemp(s->dir)) {
        snprintf(s->dir, sizeof s->dir, "/tmp/agx-bench-rpc-XXXXXX");
        if (!mkdtemp(s->dir))
            die("cannot create a temporary directory", NULL);
    }
    char port_file[96];
    snprintf(port_file, sizeof port_file, "%s/port", s->dir);
    s->pid = fork();
    if (s->pid < 0)
        die("fork failed", NULL);
    if (s->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed bench leaves no server behind */
        setenv("AGENTIX_BIND_HOST", "127.0.0.1", 1);
        setenv("AGENTIX_BIND_PORT", "0", 1);
        setenv("AGENTIX_PORT_FILE", port_file, 1);
        setenv("AGENTIX_MODULE_PATH", o->modules, 1);
        setenv("AGENTIX_FILES_ROOT", s->dir, 1);
        unsetenv("AGENTIX_TOKEN");
        setenv("AGENTIX_AUTH", "none", 1); /* the bench's own loopback server */
        execl(o->server, o->server, (char *)NULL);
        _exit(127);
    }
    int port = 0;
    for (int i = 0; i < 1000 && port <= 0; i++) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        int st;
        if (port <= 0 && waitpid(s->pid, &st, WNOHANG) == s->pid)
            die("agentix-server exited at start", NULL);
        if (port <= 0)
            sleep_ms(10);
    }
    if (port <= 0 || port > 65535)
        die("agentix-server wrote no port within 10 s", NULL);
    unlink(port_file);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", port);
}

static void server_stop(server *s)
{
    if (s->file[0])
        unlink(s->file);
    kill(s->pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
            rmdir(s->dir);
            return;
        }
        sleep_ms(10);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    rmdir(s->dir);
}

/* ---- unary ---- */

static agx_value *echo_args(const char *payload, size_t len)
{
    agx_value *args = agx_value_array();
    agx_value_array_push(args, agx_value_binary(payload, len));
    return args;
}

static void check_echo(const agx_value *result, size_t len)
{
    size_t got = 0;
    if (!agx_value_get_binary(result, &got) || got != len)
        die("demo::echo returned something else than its payload", NULL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void bench_unary(agx_client *c, const agx_value *args, size_t len, long n, double *p50,
                        double *p99)
{
    double *us = malloc((size_t)n * sizeof *us);
    if (!us)
        die("out of memory", NULL);
    agx_error err = {0};
    for (long i = -(n < 200 ? n : 200); i < n; i++) { /* negative i: warm-up */
        agx_value *result = NULL;
        double t0 = now_s();
        if (agx_client_call(c, "demo::echo", args, NULL, CALL_TIMEOUT_MS, &result, &err))
            die("unary call failed", &err);
        double t = (now_s() - t0) * 1e6;
        check_echo(result, len);
        agx_value_free(result);
        if (i >= 0)
            us[i] = t;
    }
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    *p50 = us[n / 2];
    *p99 = us[(size_t)((double)n * 0.99) < (size_t)n ? (size_t)((double)n * 0.99) : (size_t)n - 1];
    free(us);
}

/* Pipelined: the callback (on the client's loop thread) only counts and posts a slot back; this
 * thread issues a new call per free slot, so exactly `inflight` calls are outstanding. */
typedef struct pipe_state {
    sem_t slots;
    atomic_long failed;
    size_t len;
} pipe_state;

static void on_unary(void *user, int status, agx_value *result, const agx_error *err)
{
    pipe_state *ps = user;
    size_t got = 0;
    if (status != 0 || !agx_value_get_binary(result, &got) || got != ps->len) {
        if (atomic_fetch_add(&ps->failed, 1) == 0)
            fprintf(stderr, "agentix-bench-rpc: pipelined call failed: %s\n",
                    err ? err->message : "wrong result");
    }
    agx_value_free(result);
    sem_post(&ps->slots);
}

static double bench_pipelined(agx_client *c, const agx_value *args, size_t len, long total,
                              long inflight)
{
    if (total == 0)
        return 0;
    pipe_state ps = {.len = len};
    sem_init(&ps.slots, 0, (unsigned)inflight);
    agx_error err = {0};
    double t0 = now_s();
    for (long i = 0; i < total; i++) {
        sem_wait(&ps.slots);
        if (agx_client_call_async(c, "demo::echo", args, NULL, CALL_TIMEOUT_MS, on_unary, &ps,
                                  &err))
            die("pipelined call failed to start", &err);
    }
    for (long i = 0; i < inflight; i++)
        sem_wait(&ps.slots);
    double dt = now_s() - t0;
    sem_destroy(&ps.slots);
    if (atomic_load(&ps.failed))
        die("pipelined calls failed", NULL);
    return (double)total / dt;
}

/* ---- stream ---- */

/* Reads a stream to its end; returns the number of items and adds their binary bytes to *bytes
 * (items that are maps contribute their "data" field). *t_first (when given) gets the time the
 * first FIRST_STREAM_BYTES had arrived (0 when the stream was shorter). */
static long drain(agx_call *call, long long *bytes, double *t_first)
{
    agx_error err = {0};
    agx_value *item;
    long items = 0;
    int rc;
    while ((rc = agx_call_next(call, CALL_TIMEOUT_MS, &item, &err)) == 1) {
        size_t len = 0;
        if (agx_value_type_of(item) == AGX_VALUE_MAP)
            agx_value_get_binary(agx_value_map_get(item, "data"), &len);
        else
            agx_value_get_binary(item, &len);
        *bytes += (long long)len;
        items++;
        agx_value_free(item);
        if (t_first && !*t_first && (double)*bytes >= FIRST_STREAM_BYTES)
            *t_first = now_s();
    }
    if (rc < 0)
        die("stream failed", &err);
    return items;
}

/* MB/s of the whole stream; *first_mbps gets the rate over its first FIRST_STREAM_BYTES. */
static double bench_stream_bytes(agx_client *c, long items, long item_bytes, double *first_mbps)
{
    *first_mbps = 0;
    if (items == 0)
        return 0;
    agx_value *kw = agx_value_map();
    agx_value_map_set(kw, "total", agx_value_int((int64_t)items * item_bytes));
    agx_value_map_set(kw, "chunk", agx_value_int(item_bytes));
    agx_call *call = NULL;
    agx_error err = {0};
    long long bytes = 0;
    double t0 = now_s(), t_first = 0;
    if (agx_client_stream(c, "demo::produce_bytes", NULL, kw, &call, &err))
        die("stream call failed to start", &err);
    long got = drain(call, &bytes, &t_first);
    double t_end = now_s(), dt = t_end - t0;
    agx_call_free(call);
    agx_value_free(kw);
    if (got != items || bytes != (long long)items * item_bytes)
        die("demo::produce_bytes streamed the wrong number of bytes", NULL);
    *first_mbps = first_stream_mbps((double)bytes, (t_first ? t_first : t_end) - t0);
    return (double)bytes / 1e6 / dt;
}

static double bench_stream_small(agx_client *c, long items)
{
    if (items == 0)
        return 0;
    agx_value *kw = agx_value_map();
    agx_value_map_set(kw, "n", agx_value_int(items));
    agx_value_map_set(kw, "size", agx_value_int(16));
    agx_call *call = NULL;
    agx_error err = {0};
    long long bytes = 0;
    double t0 = now_s();
    if (agx_client_stream(c, "demo::count", NULL, kw, &call, &err))
        die("stream call failed to start", &err);
    long got = drain(call, &bytes, NULL);
    double dt = now_s() - t0;
    agx_call_free(call);
    agx_value_free(kw);
    if (got != items)
        die("demo::count streamed the wrong number of items", NULL);
    return (double)items / dt;
}

/* ---- files ---- */

static double bench_files(agx_client *c, server *s, long file_bytes)
{
    if (file_bytes == 0)
        return 0;
    snprintf(s->file, sizeof s->file, "%s/download.bin", s->dir);
    int fd = open(s->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    char *block = malloc(1 << 20);
    if (fd < 0 || !block)
        die("cannot create the file to download", NULL);
    for (size_t i = 0; i < (1 << 20); i++)
        block[i] = (char)(i * 131 + i / 4093);
    /* Real bytes, not a sparse file: reading a hole zeroes pages, far slower here than a copy. */
    for (long done = 0; done < file_bytes;) {
        size_t n = file_bytes - done < (1 << 20) ? (size_t)(file_bytes - done) : (1 << 20);
        ssize_t w = write(fd, block, n);
        if (w <= 0)
            die("cannot write the file to download (is the temporary folder full?)", NULL);
        done += w;
    }
    free(block);
    close(fd);
    agx_value *kw = agx_value_map();
    agx_value_map_set(kw, "path", agx_value_string("download.bin"));
    agx_call *call = NULL;
    agx_error err = {0};
    long long bytes = 0;
    double t0 = now_s();
    if (agx_client_stream(c, "agentix.files::download_stream", NULL, kw, &call, &err))
        die("download_stream failed to start", &err);
    drain(call, &bytes, NULL);
    double dt = now_s() - t0;
    agx_call_free(call);
    agx_value_free(kw);
    unlink(s->file);
    s->file[0] = '\0';
    if (bytes != file_bytes)
        die("agentix.files::download_stream streamed the wrong number of bytes", NULL);
    return (double)bytes / 1e6 / dt;
}

/* agentix.files::upload_stream of file_bytes in 256 KiB binary items (the same bytes each time:
 * the host side's cost is the send, not making data); MB/s until its {path, size} item. */
static double bench_upload(agx_client *c, server *s, long file_bytes)
{
    if (file_bytes == 0)
        return 0;
    enum { PIECE = 256 << 10 };
    char *data = malloc(PIECE);
    if (!data)
        die("out of memory", NULL);
    for (size_t i = 0; i < PIECE; i++)
        data[i] = (char)(i * 131 + i / 4093);
    agx_value *piece = agx_value_binary(data, PIECE);
    free(data);
    agx_value *kw = agx_value_map();
    agx_value_map_set(kw, "path", agx_value_string("upload.bin"));
    agx_call *call = NULL;
    agx_error err = {0};
    double t0 = now_s();
    if (agx_client_bidi(c, "agentix.files::upload_stream", NULL, kw, &call, &err))
        die("upload_stream failed to start", &err);
    for (long sent = 0; sent < file_bytes; sent += PIECE) {
        agx_value *last = NULL;
        const agx_value *item = piece;
        if (file_bytes - sent < PIECE) { /* the tail */
            size_t n = 0;
            const char *b = agx_value_get_binary(piece, &n);
            item = last = agx_value_binary(b, (size_t)(file_bytes - sent));
        }
        int rc = agx_call_send(call, item, CALL_TIMEOUT_MS, &err);
        agx_value_free(last);
        if (rc)
            die("upload_stream send failed", &err);
    }
    if (agx_call_close_send(call, &err))
        die("upload_stream close-send failed", &err);
    agx_value *done = NULL;
    if (agx_call_next(call, CALL_TIMEOUT_MS, &done, &err) != 1)
        die("upload_stream sent no {path, size}", &err);
    double dt = now_s() - t0;
    int64_t size = agx_value_get_int64(agx_value_map_get(done, "size"));
    agx_value_free(done);
    agx_call_free(call);
    agx_value_free(kw);
    agx_value_free(piece);
    snprintf(s->file, sizeof s->file, "%s/upload.bin", s->dir);
    unlink(s->file);
    s->file[0] = '\0';
    if (size != file_bytes)
        die("agentix.files::upload_stream wrote the wrong number of bytes", NULL);
    return (double)file_bytes / 1e6 / dt;
}

/* ---- bidi ---- */

static double bench_bidi(agx_client *c, long items, const agx_value *item)
{
    if (items == 0)
        return 0;
    agx_call *call = NULL;
    agx_error err = {0};
    double t0 = now_s();
    if (agx_client_bidi(c, "demo::echo_bidi", NULL, NULL, &call, &err))
        die("bidi call failed to start", &err);
    long sent = 0, received = 0;
    while (received < items) {
        while (sent < items && sent - received < BIDI_OUTSTANDING) {
            if (agx_call_send(call, item, CALL_TIMEOUT_MS, &err))
                die("bidi send failed", &err);
            if (++sent == items && agx_call_close_send(call, &err))
                die("bidi close-send failed", &err);
        }
        agx_value *echoed;
        int rc = agx_call_next(call, CALL_TIMEOUT_MS, &echoed, &err);
        if (rc != 1)
            die("bidi echo ended early", rc < 0 ? &err : NULL);
        agx_value_free(echoed);
        received++;
    }
    agx_value *extra;
    if (agx_call_next(call, CALL_TIMEOUT_MS, &extra, &err) != 0)
        die("bidi call did not end after close-send", &err);
    double dt = now_s() - t0;
    agx_call_free(call);
    return (double)items / dt;
}

int main(int argc, char **argv)
{
    options o;
    parse_args(argc, argv, &o);
    signal(SIGPIPE, SIG_IGN);
    server s;
    server_start(&s, &o);

    agx_client *c = NULL;
    agx_error err = {0};
    if (agx_client_connect(s.url, NULL, &c, &err)) {
        server_stop(&s);
        die("cannot connect to agentix-server", &err);
    }
    size_t len = (size_t)o.payload;
    char *payload = malloc(len);
    if (!payload)
        die("out of memory", NULL);
    memset(payload, 'a', len);
    agx_value *args = echo_args(payload, len);

    double p50, p99;
    bench_unary(c, args, len, o.n, &p50, &p99);
    double cps = bench_pipelined(c, args, len, o.pipelined, o.inflight);
    double first_mbps;
    double mbps = bench_stream_bytes(c, o.stream_items, o.item_bytes, &first_mbps);
    double small = bench_stream_small(c, o.small_items);
    agx_value *item = agx_value_binary(payload, len);
    double bidi = bench_bidi(c, o.bidi_items, item);
    double files = bench_files(c, &s, o.file_bytes);
    double upload = bench_upload(c, &s, o.file_bytes);
    agx_value_free(item);

    printf("{\"bench\":\"agentix-rpc\",\"hops\":\"tcp-loopback+pipe\",\"transport\":\"websocket\","
           "\"payload_bytes\":%ld,\"unary_calls\":%ld,\"unary_p50_us\":%.1f,\"unary_p99_us\":%.1f,"
           "\"pipelined_calls\":%ld,\"inflight\":%ld,\"pipelined_calls_per_s\":%.0f,"
           "\"stream_items\":%ld,\"stream_item_bytes\":%ld,\"stream_mb_per_s\":%.1f,"
           "\"stream_first_mb_per_s\":%.1f,"
           "\"stream_small_items\":%ld,\"stream_small_items_per_s\":%.0f,"
           "\"bidi_items\":%ld,\"bidi_items_per_s\":%.0f,"
           "\"files_download_bytes\":%ld,\"files_download_mb_per_s\":%.1f,"
           "\"files_upload_mb_per_s\":%.1f}\n",
           o.payload, o.n, p50, p99, o.pipelined, o.inflight, cps, o.stream_items, o.item_bytes,
           mbps, first_mbps, o.small_items, small, o.bidi_items, bidi, o.file_bytes, files, upload);
    fflush(stdout);

    agx_value_free(args);
    free(payload);
    agx_client_free(c);
    server_stop(&s);
    return 0;
}
