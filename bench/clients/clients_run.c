/* clients_run.c — the measuring child of agentix-bench-clients (bench_clients.c): opens N runtime
 * connections through the public client API, spread round-robin over the sandboxes of the targets
 * file, each doing one demo::echo call and then held open, and reports what that cost this
 * process: threads, RSS and fds per held connection, CPU per connect, connect latencies (the first
 * S one after another, the rest W at a time), one-call latency and failures. One JSON line out.
 *
 * --api blocking: agx_client_connect / agx_client_call from W host threads (the simple API).
 * --api async: agx_client_connect_async / agx_client_call_async from this one thread, W in flight,
 * completions taken from the engine's completion queue (poll on agx_engine_fd, then
 * agx_engine_process), the way a host with its own event loop drives agentix.
 * Either way the engine has T I/O threads (--threads). */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "agentix/client.h"
#include "bench/clients/clients.h"

#define TARGETS_MAX 256
#define CALL_TIMEOUT_MS 60000
#define CONNECT_TIMEOUT_MS 60000

typedef struct target {
    char url[512];
    char token[128];
} target;

typedef struct run {
    target t[TARGETS_MAX];
    int nt;
    long n, inflight, seq;
    bool async;
    unsigned engine_threads;
    const char *ca_file;
    agx_client **c;
    double *conn_us, *call_us;
    atomic_long next;
    atomic_long failures;
    char first_error[256];
    pthread_mutex_t mu;
} run;

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* A "Key: value" number of /proc/self/status (kB for sizes). */
static long proc_status(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return v;
}

static long open_fds(void)
{
    long n = 0;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    for (long fd = 0; fd < (long)rl.rlim_cur; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* p-th percentile of v[0..n) (sorts a copy). */
static double pct(const double *v, long n, double p)
{
    if (n <= 0)
        return 0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s)
        return 0;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    long i = (long)(p / 100 * (double)n);
    double r = s[i < n ? i : n - 1];
    free(s);
    return r;
}

static void failed(run *r, const char *what, const agx_error *err)
{
    atomic_fetch_add(&r->failures, 1);
    pthread_mutex_lock(&r->mu);
    if (!r->first_error[0]) {
        snprintf(r->first_error, sizeof r->first_error, "%s: %.200s", what,
                 err ? err->message : "?");
        for (char *p = r->first_error; *p; p++)
            if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
                *p = '\''; /* it goes into a JSON string */
    }
    pthread_mutex_unlock(&r->mu);
}

static void read_targets(run *r, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "clients: cannot read %s\n", path);
        exit(1);
    }
    while (r->nt < TARGETS_MAX &&
           fscanf(f, "%511s %127s", r->t[r->nt].url, r->t[r->nt].token) == 2)
        r->nt++;
    fclose(f);
    if (!r->nt) {
        fprintf(stderr, "clients: no targets in %s\n", path);
        exit(1);
    }
}

static void client_options(const run *r, long i, agx_client_options *o)
{
    agx_client_options_init(o);
    o->token = r->t[i % r->nt].token;
    o->connect_timeout_ms = CONNECT_TIMEOUT_MS;
    o->ca_file = r->ca_file;
}

static agx_value *echo_args(long i)
{
    agx_value *a = agx_value_array();
    agx_value_array_push(a, agx_value_int(i));
    return a;
}

/* ---- blocking API: W host threads ---- */

static void connect_one(run *r, long i)
{
    agx_client_options o;
    client_options(r, i, &o);
    agx_error err;
    agx_error_clear(&err);
    double t0 = now_us();
    if (agx_client_connect(r->t[i % r->nt].url, &o, &r->c[i], &err) != 0)
        failed(r, "connect", &err);
    r->conn_us[i] = now_us() - t0;
}

static void call_one(run *r, long i)
{
    if (!r->c[i])
        return;
    agx_value *args = echo_args(i), *res = NULL;
    agx_error err;
    agx_error_clear(&err);
    double t0 = now_us();
    if (agx_client_call(r->c[i], "demo::echo", args, NULL, CALL_TIMEOUT_MS, &res, &err) != 0)
        failed(r, "call", &err);
    r->call_us[i] = now_us() - t0;
    agx_value_free(res);
    agx_value_free(args);
}

typedef struct worker_arg {
    run *r;
    bool call;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    for (long i; (i = atomic_fetch_add(&w->r->next, 1)) < w->r->n;)
        w->call ? call_one(w->r, i) : connect_one(w->r, i);
    return NULL;
}

static void parallel(run *r, long from, bool call)
{
    atomic_store(&r->next, from);
    long nt = r->inflight < r->n - from ? r->inflight : r->n - from;
    pthread_t *th = calloc((size_t)(nt > 0 ? nt : 1), sizeof *th);
    worker_arg w = {r, call};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 << 10);
    long started = 0;
    for (; started < nt; started++)
        if (pthread_create(&th[started], &attr, worker, &w) != 0)
            break;
    pthread_attr_destroy(&attr);
    if (started == 0)
        worker(&w);
    for (long i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
}

static void drive_blocking(run *r, long seq_n, double *connect_wall)
{
    for (long i = 0; i < seq_n; i++)
        connect_one(r, i);
    double t0 = now_us();
    parallel(r, seq_n, false);
    *connect_wall = (now_us() - t0) / 1e6;
}

static void calls_blocking(run *r) { parallel(r, 0, true); }

/* ---- async API: this one thread, completions from the engine's queue ---- */

typedef struct slot {
    run *r;
    long i;
    double t0;
} slot;

static agx_engine *engine;
static long pending, next_i, limit_i; /* [this thread only: callbacks run in agx_engine_process] */
static slot *slots;

/* Runs completions until nothing is pending, waiting on the engine's fd like a host loop would. */
static void drain(void)
{
    struct pollfd p = {.fd = agx_engine_fd(engine), .events = POLLIN};
    while (pending > 0) {
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            break;
        agx_engine_process(engine, 0, 0);
    }
}

static void start_connect(run *r, long i);

static void connected(void *user, agx_client *c, int status, const agx_error *err)
{
    slot *s = user;
    s->r->conn_us[s->i] = now_us() - s->t0;
    if (status)
        failed(s->r, "connect", err);
    (void)c;
    pending--;
    if (next_i < limit_i)
        start_connect(s->r, next_i++);
}

static void start_connect(run *r, long i)
{
    agx_client_options o;
    client_options(r, i, &o);
    o.engine = engine;
    slot *s = &slots[i];
    *s = (slot){r, i, now_us()};
    agx_error err;
    agx_error_clear(&err);
    pending++;
    if (agx_client_connect_async(r->t[i % r->nt].url, &o, connected, s, &r->c[i], &err) != 0) {
        pending--;
        failed(r, "connect", &err);
    }
}

static void start_call(run *r, long i);

static void called(void *user, int status, agx_value *result, const agx_error *err)
{
    slot *s = user;
    s->r->call_us[s->i] = now_us() - s->t0;
    if (status)
        failed(s->r, "call", err);
    agx_value_free(result);
    pending--;
    while (next_i < limit_i && !s->r->c[next_i])
        next_i++;
    if (next_i < limit_i)
        start_call(s->r, next_i++);
}

static void start_call(run *r, long i)
{
    agx_value *args = echo_args(i);
    agx_error err;
    agx_error_clear(&err);
    slot *s = &slots[i];
    *s = (slot){r, i, now_us()};
    pending++;
    if (agx_client_call_async(r->c[i], "demo::echo", args, NULL, CALL_TIMEOUT_MS, called, s,
                              &err) != 0) {
        pending--;
        failed(r, "call", &err);
    }
    agx_value_free(args);
}

static void drive_async(run *r, long seq_n, double *connect_wall)
{
    for (long i = 0; i < seq_n; i++) { /* one after another */
        next_i = limit_i = 0;
        start_connect(r, i);
        drain();
    }
    double t0 = now_us();
    next_i = seq_n;
    limit_i = r->n;
    while (next_i < limit_i && pending < r->inflight)
        start_connect(r, next_i++);
    drain();
    *connect_wall = (now_us() - t0) / 1e6;
}

static void calls_async(run *r)
{
    next_i = 0;
    limit_i = r->n;
    while (next_i < limit_i && pending < r->inflight) {
        if (r->c[next_i])
            start_call(r, next_i);
        next_i++;
    }
    drain();
}

/* ---- main of the child ---- */

int agx_clients_child(int argc, char **argv)
{
    if (argc < 9) {
        fprintf(stderr, "clients: bad child arguments\n");
        return 2;
    }
    static run r;
    pthread_mutex_init(&r.mu, NULL);
    read_targets(&r, argv[2]);
    r.n = atol(argv[3]);
    r.inflight = atol(argv[4]);
    r.seq = atol(argv[5]);
    r.async = !strcmp(argv[6], "async");
    r.engine_threads = (unsigned)atol(argv[7]);
    r.ca_file = strcmp(argv[8], "-") ? argv[8] : NULL;
    char threads[16];
    snprintf(threads, sizeof threads, "%u", r.engine_threads);
    setenv("AGENTIX_ENGINE_THREADS", threads, 1); /* the default engine the blocking API uses */
    if (r.ca_file)
        setenv("AGENTIX_CA_FILE", r.ca_file, 1);
    r.c = calloc((size_t)r.n, sizeof *r.c);
    r.conn_us = calloc((size_t)r.n, sizeof *r.conn_us);
    r.call_us = calloc((size_t)r.n, sizeof *r.call_us);
    if (!r.c || !r.conn_us || !r.call_us)
        return 1;
    long seq_n = r.seq < r.n ? r.seq : r.n;

    long threads0 = proc_status("Threads"), fds0 = open_fds();
    long rss0 = proc_status("VmRSS");
    size_t heap0 = mallinfo2().uordblks; /* bytes malloc'd and not freed, every arena */
    if (r.async) {
        agx_engine_options eo;
        agx_engine_options_init(&eo);
        eo.io_threads = r.engine_threads;
        eo.delivery = AGX_DELIVER_QUEUE;
        agx_error err;
        if (agx_engine_new(&eo, &engine, &err) != 0 ||
            !(slots = calloc((size_t)r.n, sizeof *slots))) {
            fprintf(stderr, "clients: %s\n", err.message);
            return 1;
        }
    }
    double cpu0 = cpu_us(), wall = 0;
    if (r.async)
        drive_async(&r, seq_n, &wall);
    else
        drive_blocking(&r, seq_n, &wall);
    double cpu1 = cpu_us();
    if (r.async)
        calls_async(&r);
    else
        calls_blocking(&r);
    usleep(1000 * 1000); /* idle: what a held connection costs between calls */
    long rss1 = proc_status("VmRSS"), threads1 = proc_status("Threads");
    size_t heap1 = mallinfo2().uordblks;
    long fds1 = open_fds();

    printf("{\"side\":\"agentix\",\"api\":\"%s\",\"tls\":%s,\"n\":%ld,\"sandboxes\":%d,"
           "\"inflight\":%ld,\"threads\":%ld,\"engine_threads\":%ld,"
           "\"rss_per_conn_kib\":%.1f,\"heap_per_conn_kib\":%.1f,\"cpu_per_connect_us\":%.1f,"
           "\"seq_connect_p50_us\":%.1f,\"seq_connect_p99_us\":%.1f,"
           "\"connect_p50_us\":%.1f,\"connect_p99_us\":%.1f,\"connect_wall_s\":%.3f,"
           "\"call_p50_us\":%.1f,\"fds_per_conn\":%.2f,\"failures\":%ld,\"first_error\":\"%s\"}\n",
           r.async ? "async" : "blocking", r.ca_file ? "true" : "false", r.n, r.nt, r.inflight,
           threads1, threads1 - threads0, (double)(rss1 - rss0) / (double)r.n,
           ((double)heap1 - (double)heap0) / 1024.0 / (double)r.n,
           (cpu1 - cpu0) / (double)r.n, pct(r.conn_us, seq_n, 50), pct(r.conn_us, seq_n, 99),
           pct(r.conn_us + seq_n, r.n - seq_n, 50), pct(r.conn_us + seq_n, r.n - seq_n, 99), wall,
           pct(r.call_us, r.n, 50), (double)(fds1 - fds0) / (double)r.n,
           atomic_load(&r.failures), r.first_error);
    fflush(stdout);
    for (long i = 0; i < r.n; i++)
        agx_client_free(r.c[i]);
    if (engine) {
        agx_engine_process(engine, 0, 0); /* the cancelled calls' callbacks, if any */
        agx_engine_free(engine);
        free(slots);
    }
    free(r.c);
    free(r.conn_us);
    free(r.call_us);
    return 0;
}
