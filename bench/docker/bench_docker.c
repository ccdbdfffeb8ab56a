/* bench_docker.c — sandbox lifecycle latency of the `docker` backend (host → docker backend →
 * Engine API → task container running the bundle's agentix-server): create→ready p50/p95 over N
 * sequential creates and over C concurrent creates (threads, two rounds a side), and delete
 * p50/p95, next to the anchor measured in the same run on the same image and bundle: the docker
 * CLI doing the same thing by hand — `docker run -d --volumes-from <carrier>:ro -p
 * 127.0.0.1::8000 --entrypoint /opt/agentix/bin/agentix-server IMAGE`, `docker port`, GET /health polled every 25 ms until it
 * answers 200, and `docker rm -f` for delete. The anchor may use the CLI; agentix does not.
 * Target: our p50 create→ready ≤ 1.0× the anchor's. Prints a table and one JSON line; no
 * thresholds here (figures are read, never asserted). */
#include <agentix/agentix.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_N 1000
#define READY_TIMEOUT_MS 120000
#define ANCHOR_POLL_MS 25

typedef struct bench_opts {
    const char *bundle, *image;
    size_t n, concurrency;
} bench_opts;

/* One phase's samples, in ms: create→ready and delete. */
typedef struct samples {
    double create[2 * MAX_N], del[2 * MAX_N]; /* the concurrent phase runs twice per side */
    size_t n;
} samples;

/* The run: both contenders' phases, the anchor's carrier, the label that marks our containers. */
typedef struct bench {
    bench_opts o;
    agx_deployment *dep;
    char run_id[17], carrier[160];
    samples ours_seq, ours_conc, cli_seq, cli_conc;
} bench;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of v[0..n) (a sorted copy; v keeps its order). */
static double pct(const double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    double s[2 * MAX_N];
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_double);
    size_t k = (size_t)(q * (double)n + 0.999999);
    return s[k == 0 ? 0 : (k > n ? n - 1 : k - 1)];
}

static char g_run_id[17]; /* the label value of this run's containers, for the sweep on failure */

/* On a failure mid-run: removes every container this run labelled, so nothing is left behind. */
static void sweep(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "docker ps -aq --filter label=agentix.bench.run=%s | "
             "xargs -r docker rm -f >/dev/null", g_run_id);
    if (g_run_id[0] && system(cmd) != 0)
        fprintf(stderr, "agentix-bench-docker: the sweep of label agentix.bench.run=%s failed\n",
                g_run_id);
}

static void die(const char *what, const char *detail)
{
    sweep();
    fprintf(stderr, "agentix-bench-docker: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void die_err(const char *what, const agx_error *err)
{
    sweep();
    fprintf(stderr, "agentix-bench-docker: %s: %s (%s)\n  %s\n", what, err->message,
            agx_error_code_name(err->code), err->detail);
    exit(1);
}

/* ---- agentix: the docker backend ---- */

static agx_sandbox_config *config_new(const bench *b)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    if (!cfg || agx_sandbox_config_set_image(cfg, b->o.image) ||
        agx_sandbox_config_set_bundle(cfg, b->o.bundle) ||
        agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.bench.run", b->run_id))
        die("out of memory building the sandbox config", NULL);
    return cfg;
}

static agx_sandbox *ours_create(bench *b, double *ms)
{
    agx_sandbox_config *cfg = config_new(b);
    agx_sandbox *sb = NULL;
    agx_error err;
    double t0 = now_ms();
    if (agx_deployment_create(b->dep, cfg, &sb, &err))
        die_err("agx_deployment_create", &err);
    *ms = now_ms() - t0;
    agx_sandbox_config_free(cfg);
    return sb;
}

static double ours_delete(bench *b, agx_sandbox *sb)
{
    agx_error err;
    double t0 = now_ms();
    if (agx_deployment_delete(b->dep, agx_sandbox_id(sb), &err))
        die_err("agx_deployment_delete", &err);
    double ms = now_ms() - t0;
    agx_sandbox_free(sb);
    return ms;
}

/* ---- the anchor: the docker CLI + GET /health ---- */

/* Runs cmd through the shell and keeps the first line of its stdout; 0 when it exited 0. */
static int sh_line(const char *cmd, char *out, size_t n)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    out[0] = '\0';
    if (fgets(out, (int)n, p))
        out[strcspn(out, "\r\n")] = '\0';
    char sink[256];
    while (fgets(sink, sizeof sink, p))
        ;
    return pclose(p) == 0 && out[0] ? 0 : -1;
}

/* One GET /health on 127.0.0.1:port with a 1 s bound; 1 when it answered 200. */
static int health_ok(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 1};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    static const char req[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    char buf[64] = {0};
    int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
             send(fd, req, sizeof req - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof req - 1) &&
             recv(fd, buf, sizeof buf - 1, 0) >= 12 && strncmp(buf + 8, " 200", 4) == 0;
    close(fd);
    return ok;
}

/* docker run + docker port + /health; the container id goes to id. */
static double cli_create(const bench *b, char *id, size_t n)
{
    char token[33], cmd[1024], line[128];
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        die("getrandom failed", NULL);
    for (size_t i = 0; i < sizeof r; i++)
        sprintf(token + 2 * i, "%02x", r[i]);
    double t0 = now_ms();
    snprintf(cmd, sizeof cmd,
             "docker run -d --label agentix.bench.run=%s --volumes-from %s -p 127.0.0.1::8000 "
             "-e AGENTIX_BIND_HOST=0.0.0.0 -e AGENTIX_BIND_PORT=8000 -e AGENTIX_TOKEN=%s "
             "--entrypoint /opt/agentix/bin/agentix-server '%s'",
             b->run_id, b->carrier, token, b->o.image);
    if (sh_line(cmd, id, n))
        die("anchor: docker run failed", cmd);
    snprintf(cmd, sizeof cmd, "docker port %s 8000/tcp", id);
    if (sh_line(cmd, line, sizeof line))
        die("anchor: docker port failed", id);
    const char *colon = strrchr(line, ':');
    int port = colon ? atoi(colon + 1) : 0;
    if (port <= 0 || port > 65535)
        die("anchor: docker port printed no port", line);
    while (!health_ok(port)) {
        if (now_ms() - t0 > READY_TIMEOUT_MS)
            die("anchor: the runtime never answered /health", id);
        usleep(ANCHOR_POLL_MS * 1000);
    }
    return now_ms() - t0;
}

static double cli_delete(const char *id)
{
    char cmd[256], line[128];
    snprintf(cmd, sizeof cmd, "docker rm -f %s", id);
    double t0 = now_ms();
    if (sh_line(cmd, line, sizeof line))
        die("anchor: docker rm -f failed", id);
    return now_ms() - t0;
}

/* ---- phases ---- */

typedef enum contender { OURS, CLI } contender;

/* One sandbox's life in a phase: create, then (once every sibling is ready) delete. */
typedef struct slot {
    pthread_t thread;
    bench *b;
    contender who;
    samples *s;
    size_t i;
    pthread_barrier_t *all_ready;
} slot;

static void one_life(bench *b, contender who, samples *s, size_t i, pthread_barrier_t *all_ready)
{
    if (who == OURS) {
        agx_sandbox *sb = ours_create(b, &s->create[i]);
        if (all_ready)
            pthread_barrier_wait(all_ready);
        s->del[i] = ours_delete(b, sb);
    } else {
        char id[128];
        s->create[i] = cli_create(b, id, sizeof id);
        if (all_ready)
            pthread_barrier_wait(all_ready);
        s->del[i] = cli_delete(id);
    }
}

static void *slot_main(void *arg)
{
    slot *sl = arg;
    one_life(sl->b, sl->who, sl->s, sl->i, sl->all_ready);
    return NULL;
}

/* The two contenders take turns, one sandbox each, so a shift in the shared machine's load
 * lands on both rather than on whichever ran second. */
static void run_sequential(bench *b)
{
    for (size_t i = 0; i < b->o.n; i++) {
        one_life(b, OURS, &b->ours_seq, i, NULL);
        one_life(b, CLI, &b->cli_seq, i, NULL);
    }
    b->ours_seq.n = b->cli_seq.n = b->o.n;
}

/* One round: C creates at once; all are ready before the C deletes start (also at once). The
 * samples are appended to s. */
static void run_concurrent(bench *b, contender who, samples *s)
{
    size_t c = b->o.concurrency;
    slot *sl = calloc(c, sizeof *sl);
    pthread_barrier_t all_ready;
    if (!sl || pthread_barrier_init(&all_ready, NULL, (unsigned)c))
        die("out of memory starting the concurrent phase", NULL);
    for (size_t i = 0; i < c; i++) {
        sl[i] = (slot){.b = b, .who = who, .s = s, .i = s->n + i, .all_ready = &all_ready};
        if (pthread_create(&sl[i].thread, NULL, slot_main, &sl[i]))
            die("pthread_create failed", NULL);
    }
    for (size_t i = 0; i < c; i++)
        pthread_join(sl[i].thread, NULL);
    pthread_barrier_destroy(&all_ready);
    free(sl);
    s->n += c;
}

/* Rounds in the order ours, CLI, CLI, ours: a steady drift in the shared machine's load then
 * weighs on both sides alike. */
static void run_concurrent_abba(bench *b)
{
    run_concurrent(b, OURS, &b->ours_conc);
    run_concurrent(b, CLI, &b->cli_conc);
    run_concurrent(b, CLI, &b->cli_conc);
    run_concurrent(b, OURS, &b->ours_conc);
}

/* One sandbox created and deleted through the backend before measuring: the bundle's carrier
 * exists afterwards (the anchor mounts the same one) and both paths start warm. */
static void warm_up(bench *b)
{
    double ms;
    agx_sandbox *sb = ours_create(b, &ms);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "docker inspect -f '{{index .HostConfig.VolumesFrom 0}}' %s",
             agx_sandbox_id(sb));
    if (sh_line(cmd, b->carrier, sizeof b->carrier) || !strstr(b->carrier, ":ro"))
        die("could not read the sandbox's carrier from docker inspect", b->carrier);
    ours_delete(b, sb);
    char id[128];
    cli_create(b, id, sizeof id);
    cli_delete(id);
}

/* Containers of this run still present (docker CLI, independent of the backend's own list). */
static int leftovers(const bench *b)
{
    char cmd[160], line[160];
    snprintf(cmd, sizeof cmd, "docker ps -aq --filter label=agentix.bench.run=%s", b->run_id);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    int n = 0;
    while (fgets(line, sizeof line, p))
        n++;
    return pclose(p) == 0 ? n : -1;
}

/* ---- report ---- */

static void row(const char *what, const double *ours, size_t on, const double *cli, size_t cn)
{
    double o50 = pct(ours, on, .50), o95 = pct(ours, on, .95);
    double c50 = pct(cli, cn, .50), c95 = pct(cli, cn, .95);
    printf("%-30s %9.1f %9.1f %9.1f %9.1f %7.2fx %7.2fx\n", what, o50, o95, c50, c95,
           c50 > 0 ? o50 / c50 : 0, c95 > 0 ? o95 / c95 : 0);
}

static void json_pair(const char *key, const double *ours, size_t on, const double *cli, size_t cn,
                      const char *sep)
{
    printf("\"%s\":{\"ours_p50_ms\":%.1f,\"ours_p95_ms\":%.1f,\"cli_p50_ms\":%.1f,"
           "\"cli_p95_ms\":%.1f}%s",
           key, pct(ours, on, .50), pct(ours, on, .95), pct(cli, cn, .50), pct(cli, cn, .95), sep);
}

static void report(const bench *b)
{
    const samples *os = &b->ours_seq, *oc = &b->ours_conc, *cs = &b->cli_seq, *cc = &b->cli_conc;
    printf("docker sandbox lifecycle: image %s, bundle %s, %zu sequential, %zu concurrent "
           "(2 rounds a side)\n",
           b->o.image, b->o.bundle, b->o.n, b->o.concurrency);
    printf("%-30s %9s %9s %9s %9s %8s %8s\n", "ms", "ours p50", "ours p95", "cli p50", "cli p95",
           "p50 x", "p95 x");
    row("create->ready, sequential", os->create, os->n, cs->create, cs->n);
    row("create->ready, concurrent", oc->create, oc->n, cc->create, cc->n);
    row("delete, sequential", os->del, os->n, cs->del, cs->n);
    row("delete, concurrent", oc->del, oc->n, cc->del, cc->n);
    double ratio = pct(os->create, os->n, .50) / pct(cs->create, cs->n, .50);
    double cratio = pct(oc->create, oc->n, .50) / pct(cc->create, cc->n, .50);
    printf("target: our p50 create->ready <= 1.00x the CLI anchor's: sequential %.2fx (%s), "
           "concurrent %.2fx (%s)\n", ratio, ratio <= 1.0 ? "met" : "missed", cratio,
           cratio <= 1.0 ? "met" : "missed");
    printf("{\"bench\":\"docker\",\"image\":\"%s\",\"bundle\":\"%s\",\"n\":%zu,\"concurrency\":%zu,",
           b->o.image, b->o.bundle, b->o.n, b->o.concurrency);
    json_pair("create_seq", os->create, os->n, cs->create, cs->n, ",");
    json_pair("create_conc", oc->create, oc->n, cc->create, cc->n, ",");
    json_pair("delete_seq", os->del, os->n, cs->del, cs->n, ",");
    json_pair("delete_conc", oc->del, oc->n, cc->del, cc->n, "");
    printf(",\"target_create_p50_ratio\":1.0,\"create_p50_ratio\":%.3f,"
           "\"create_conc_p50_ratio\":%.3f}\n", ratio, cratio);
}

static size_t count_arg(const char *flag, const char *v)
{
    char *end;
    unsigned long x = strtoul(v, &end, 10);
    if (*end || x == 0 || x > MAX_N)
        die("bad count (1..1000)", flag);
    return (size_t)x;
}

static bench_opts parse(int argc, char **argv)
{
    bench_opts o = {.bundle = "agx-bench-bundle-docker:bench", .image = "agx-test-debian:12",
                    .n = 20, .concurrency = 20};
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            die("missing value after", a);
        if (strcmp(a, "--n") == 0)
            o.n = count_arg(a, v);
        else if (strcmp(a, "--concurrency") == 0)
            o.concurrency = count_arg(a, v);
        else if (strcmp(a, "--bundle") == 0)
            o.bundle = v;
        else if (strcmp(a, "--image") == 0)
            o.image = v;
        else
            die("usage: agentix-bench-docker [--n N] [--concurrency C] [--bundle IMAGE] "
                "[--image IMAGE]; unknown argument", a);
    }
    if (strpbrk(o.image, "'\\") || strpbrk(o.bundle, "'\\"))
        die("image and bundle names may not contain quotes", NULL);
    return o;
}

int main(int argc, char **argv)
{
    static bench b; /* samples are large: not on the stack */
    b.o = parse(argc, argv);
    unsigned char r[8];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        die("getrandom failed", NULL);
    for (size_t i = 0; i < sizeof r; i++)
        sprintf(b.run_id + 2 * i, "%02x", r[i]);
    memcpy(g_run_id, b.run_id, sizeof g_run_id);
    agx_error err;
    if (agx_load_deployment("docker", &b.dep, &err))
        die_err("agx_load_deployment(\"docker\")", &err);
    warm_up(&b);
    run_sequential(&b);
    run_concurrent_abba(&b);
    agx_deployment_free(b.dep);
    report(&b);
    int left = leftovers(&b);
    if (left != 0) {
        fprintf(stderr, "agentix-bench-docker: %d container(s) of this run left behind%s\n", left,
                left < 0 ? " (docker ps failed)" : "");
        sweep();
        return 1;
    }
    return 0;
}
