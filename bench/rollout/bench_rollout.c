/* bench_rollout.c — the rollout benchmark, for one or more backends in the same run (e.g. docker
 * and ns): per backend, create→ready latency one sandbox at a time (create, then delete, N
 * times); M tasks, each one agentix.bash::run of a short command in its own sandbox (a map over a
 * warm pool: acquire, run, delete), at parallelism 8 and 16 — total wall time, sandboxes/s,
 * p50/p95 per-task latency; the warm pool's acquire latency (p50/p99) with K ready sandboxes.
 * Next to them the anchor, the same M tasks as a sequential shell loop of `docker run --rm IMAGE
 * sh -c CMD` (anchor_docker_run.sh; the anchor may use the docker CLI, agentix does not), and the
 * ratios between backends. Prints a table and one JSON line; no thresholds here. */
#include <agentix/agentix.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TASKS 100000
#define MAX_RUNS 8
#define MAX_BACKENDS 4

typedef struct bench_opts {
    const char *backends[MAX_BACKENDS];
    size_t nbackends;
    const char *bundle, *ns_bundle, *image, *command, *anchor_script;
    size_t tasks, anchor_tasks, acquires, pool_k, creates;
    size_t parallel[MAX_RUNS];
    size_t nparallel;
} bench_opts;

typedef struct figures {
    double wall_s, per_s, p50_ms, p95_ms, p99_ms;
    size_t ok, failed;
} figures;

/* Everything measured on one backend. */
typedef struct backend_figures {
    const char *name;
    figures create, del; /* one at a time: create→ready, then delete */
    figures runs[MAX_RUNS];
    figures acq, acq_conn;
} backend_figures;

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

/* Nearest-rank percentile of v[0..n) (sorted here). */
static double pct(double *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    size_t k = (size_t)(q * (double)n + 0.999999);
    return v[k == 0 ? 0 : (k > n ? n - 1 : k - 1)];
}

static void die(const char *what, const agx_error *err)
{
    fprintf(stderr, "bench-rollout: %s: %s (%s)\n  %s\n", what, err->message,
            agx_error_code_name(err->code), err->detail);
    exit(1);
}

/* ---- agentix: a map of M commands over a warm pool of K = P ---- */

typedef struct collect {
    double *lat;
    size_t n, failed;
    agx_error first;
} collect;

static void on_result(void *user, agx_map_result *r)
{
    collect *c = user;
    int64_t code = r->status ? -1 : agx_value_get_int64(agx_value_map_get(r->value, "exit_code"));
    if (r->status || code != 0) {
        if (c->failed++ == 0) {
            if (r->status)
                agx_error_copy(&c->first, &r->err);
            else
                agx_error_set(&c->first, AGX_ERR_REMOTE, "task %zu exited %lld", r->task, (long long)code);
        }
    } else {
        c->lat[c->n++] = (double)r->duration_ms;
    }
}

/* The ns backend takes the bundle as a folder or tarball (`agentix build --output`); the others
 * as an image. */
static agx_sandbox_config *config(const bench_opts *o, const char *backend)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    const char *bundle = strcmp(backend, "ns") == 0 ? o->ns_bundle : o->bundle;
    if (!cfg || (o->image && agx_sandbox_config_set_image(cfg, o->image)) ||
        (bundle && agx_sandbox_config_set_bundle(cfg, bundle))) {
        fprintf(stderr, "bench-rollout: bad --image or --bundle\n");
        exit(2);
    }
    return cfg;
}

/* Wall time runs from the pool's start (nothing warm) to the pool's end (surplus deleted). */
static figures run_product(agx_deployment *dep, const char *backend, const bench_opts *o, size_t p)
{
    agx_sandbox_config *cfg = config(o, backend);
    const char **cmds = calloc(o->tasks, sizeof *cmds);
    collect c = {.lat = calloc(o->tasks, sizeof(double))};
    if (!cmds || !c.lat)
        exit(1);
    for (size_t i = 0; i < o->tasks; i++)
        cmds[i] = o->command;
    agx_error err;
    double t0 = now_ms();
    agx_pool_options po;
    agx_pool_options_init(&po);
    po.size = p;
    po.refill_parallelism = p;
    po.connect_timeout_ms = 60000;
    agx_pool *pool = NULL;
    if (agx_pool_new(dep, cfg, &po, &pool, &err) != 0)
        die("pool", &err);
    agx_map_options mo;
    agx_map_options_init(&mo);
    mo.pool = pool;
    mo.tasks = o->tasks;
    mo.parallelism = p;
    mo.commands = cmds;
    mo.task_timeout_ms = 120000;
    mo.on_result = on_result;
    mo.result_user = &c;
    int rc = agx_map_run(&mo, &err);
    agx_pool_free(pool);
    double wall = now_ms() - t0;
    if (rc && c.failed == 0)
        die("map", &err);
    if (c.failed)
        fprintf(stderr, "bench-rollout: P=%zu: %zu tasks failed; first: %s\n", p, c.failed,
                c.first.message);
    figures f = {.wall_s = wall / 1e3, .ok = c.n, .failed = c.failed};
    f.per_s = (double)c.n / f.wall_s;
    f.p50_ms = pct(c.lat, c.n, 0.50);
    f.p95_ms = pct(c.lat, c.n, 0.95);
    f.p99_ms = pct(c.lat, c.n, 0.99);
    free(c.lat);
    free(cmds);
    agx_sandbox_config_free(cfg);
    return f;
}

/* ---- warm pool acquire latency ---- */

/* Acquires in bursts of K from a full pool (wait_ready K, then K acquires back to back while the
 * refills of the earlier ones start), each lease deleted after the burst. probe: the pool's
 * health-check target, or NULL for the connection check only. */
static figures run_acquire(agx_deployment *dep, const char *backend, const bench_opts *o,
                           bool with_probe)
{
    agx_sandbox_config *cfg = config(o, backend);
    agx_pool_options po;
    agx_pool_options_init(&po);
    po.size = o->pool_k;
    po.refill_parallelism = o->pool_k;
    po.connect_timeout_ms = 60000;
    if (!with_probe)
        po.probe_target = NULL;
    agx_pool *pool = NULL;
    agx_error err;
    if (agx_pool_new(dep, cfg, &po, &pool, &err) != 0)
        die("pool", &err);
    double *lat = calloc(o->acquires, sizeof(double));
    agx_lease **held = calloc(o->pool_k, sizeof *held);
    if (!lat || !held)
        exit(1);
    figures f = {0};
    while (f.ok < o->acquires) {
        if (agx_pool_wait_ready(pool, o->pool_k, 300000, &err) != 0)
            die("pool warm-up", &err);
        size_t burst = 0;
        for (; burst < o->pool_k && f.ok < o->acquires; burst++) {
            double t0 = now_ms();
            if (agx_pool_acquire(pool, 60000, &held[burst], &err) != 0)
                die("acquire", &err);
            lat[f.ok++] = now_ms() - t0;
        }
        for (size_t i = 0; i < burst; i++)
            if (agx_pool_release(pool, held[i], false, &err) != 0)
                die("release", &err);
    }
    agx_pool_free(pool);
    f.p50_ms = pct(lat, f.ok, 0.50);
    f.p95_ms = pct(lat, f.ok, 0.95);
    f.p99_ms = pct(lat, f.ok, 0.99);
    free(held);
    free(lat);
    agx_sandbox_config_free(cfg);
    return f;
}

/* ---- create→ready, one at a time ---- */

/* N sequential create (returns once /health answers) + delete pairs; each timed on its own. */
static void run_creates(agx_deployment *dep, const char *backend, const bench_opts *o,
                        figures *create, figures *del)
{
    agx_sandbox_config *cfg = config(o, backend);
    double *c = calloc(o->creates, sizeof(double)), *d = calloc(o->creates, sizeof(double));
    if (!c || !d)
        exit(1);
    agx_error err;
    double t0 = now_ms();
    for (size_t i = 0; i < o->creates; i++) {
        agx_sandbox *sb = NULL;
        double a = now_ms();
        if (agx_deployment_create(dep, cfg, &sb, &err) != 0)
            die("create", &err);
        double b = now_ms();
        if (agx_deployment_delete(dep, agx_sandbox_id(sb), &err) != 0)
            die("delete", &err);
        c[i] = b - a;
        d[i] = now_ms() - b;
        agx_sandbox_free(sb);
    }
    *create = (figures){.ok = o->creates, .wall_s = (now_ms() - t0) / 1e3};
    create->per_s = (double)o->creates / create->wall_s;
    *del = (figures){.ok = o->creates};
    create->p50_ms = pct(c, o->creates, 0.50);
    create->p95_ms = pct(c, o->creates, 0.95);
    create->p99_ms = pct(c, o->creates, 0.99);
    del->p50_ms = pct(d, o->creates, 0.50);
    del->p95_ms = pct(d, o->creates, 0.95);
    free(c);
    free(d);
    agx_sandbox_config_free(cfg);
}

/* ---- the anchor ---- */

static figures run_anchor(const bench_opts *o)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sh '%s' %zu '%s' '%s'", o->anchor_script, o->anchor_tasks,
             o->image ? o->image : "agx-test-busybox:1", o->command);
    double *lat = calloc(o->anchor_tasks, sizeof(double));
    figures f = {0};
    double t0 = now_ms();
    FILE *p = popen(cmd, "r");
    if (!p || !lat)
        exit(1);
    char line[256];
    while (fgets(line, sizeof line, p)) {
        size_t i;
        double ms;
        int rc;
        if (sscanf(line, "task %zu %lf %d", &i, &ms, &rc) != 3 || f.ok + f.failed >= o->anchor_tasks)
            continue;
        if (rc == 0)
            lat[f.ok++] = ms;
        else
            f.failed++;
    }
    int st = pclose(p);
    f.wall_s = (now_ms() - t0) / 1e3;
    if (st != 0 || f.ok == 0) {
        fprintf(stderr, "bench-rollout: the anchor failed (status %d, %zu ok)\n", st, f.ok);
        exit(1);
    }
    f.per_s = (double)f.ok / f.wall_s;
    f.p50_ms = pct(lat, f.ok, 0.50);
    f.p95_ms = pct(lat, f.ok, 0.95);
    f.p99_ms = pct(lat, f.ok, 0.99);
    free(lat);
    return f;
}

/* ---- arguments and output ---- */

static size_t count(const char *name, const char *v, size_t max)
{
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || x < 1 || x > max) {
        fprintf(stderr, "bench-rollout: %s wants 1..%zu, got '%s'\n", name, max, v);
        exit(2);
    }
    return (size_t)x;
}

static void parse_parallel(bench_opts *o, const char *v)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    o->nparallel = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nparallel == MAX_RUNS) {
            fprintf(stderr, "bench-rollout: at most %d parallelism values\n", MAX_RUNS);
            exit(2);
        }
        o->parallel[o->nparallel++] = count("--parallel", t, 256);
    }
}

static void parse_backends(bench_opts *o, const char *v)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    o->nbackends = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nbackends == MAX_BACKENDS) {
            fprintf(stderr, "bench-rollout: at most %d backends\n", MAX_BACKENDS);
            exit(2);
        }
        o->backends[o->nbackends++] = t;
    }
    if (o->nbackends == 0) {
        fprintf(stderr, "bench-rollout: --backend wants a name or a list such as docker,ns\n");
        exit(2);
    }
}

/* 0 is allowed (the part is skipped). */
static size_t count0(const char *name, const char *v, size_t max)
{
    return strcmp(v, "0") == 0 ? 0 : count(name, v, max);
}

static void parse(int argc, char **argv, bench_opts *o)
{
    *o = (bench_opts){.backends = {"docker"}, .nbackends = 1, .creates = 20, .image = "agx-test-busybox:1", .command = "echo hello",
                      .anchor_script = AGX_ANCHOR_SCRIPT, .tasks = 100, .anchor_tasks = 100,
                      .acquires = 200, .pool_k = 8, .parallel = {8, 16}, .nparallel = 2};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            printf("Usage: bench-rollout [--backend docker[,ns]] [--bundle B] [--ns-bundle DIR]\n"
                   "         [--image I] [--command C] [--tasks M] [--parallel 8,16]\n"
                   "         [--anchor-tasks N] [--creates C] [--pool-k K] [--acquires A]\n"
                   "Defaults: docker, agx-test-busybox:1, 'echo hello', M=N=100, P=8,16, C=20,\n"
                   "K=8, A=200 (C or A = 0 skips that part). --bundle is the bundle image the\n"
                   "image-based backends mount; --ns-bundle the folder or tarball of the same\n"
                   "bundle (`agentix build --output`) for ns.\n");
            exit(0);
        }
        if (!v) {
            fprintf(stderr, "bench-rollout: %s needs a value (or unknown option)\n", a);
            exit(2);
        }
        i++;
        if (strcmp(a, "--backend") == 0) parse_backends(o, v);
        else if (strcmp(a, "--bundle") == 0) o->bundle = v;
        else if (strcmp(a, "--ns-bundle") == 0) o->ns_bundle = v;
        else if (strcmp(a, "--creates") == 0) o->creates = count0(a, v, MAX_TASKS);
        else if (strcmp(a, "--image") == 0) o->image = v;
        else if (strcmp(a, "--command") == 0) o->command = v;
        else if (strcmp(a, "--tasks") == 0) o->tasks = count(a, v, MAX_TASKS);
        else if (strcmp(a, "--anchor-tasks") == 0) o->anchor_tasks = count(a, v, MAX_TASKS);
        else if (strcmp(a, "--acquires") == 0) o->acquires = count0(a, v, MAX_TASKS);
        else if (strcmp(a, "--pool-k") == 0) o->pool_k = count(a, v, 256);
        else if (strcmp(a, "--parallel") == 0) parse_parallel(o, v);
        else {
            fprintf(stderr, "bench-rollout: unknown option '%s'\n", a);
            exit(2);
        }
    }
}

static void row(const char *name, const figures *f, size_t tasks)
{
    printf("%-34s %6zu %9.2f %12.2f %10.1f %10.1f\n", name, tasks, f->wall_s, f->per_s, f->p50_ms,
           f->p95_ms);
}

static void measure(const bench_opts *o, const char *backend, backend_figures *b)
{
    b->name = backend;
    agx_deployment *dep = NULL;
    agx_error err;
    if (agx_load_deployment(backend, &dep, &err) != 0)
        die("backend", &err);
    if (o->creates) {
        fprintf(stderr, "bench-rollout: %s, %zu creates one at a time\n", backend, o->creates);
        run_creates(dep, backend, o, &b->create, &b->del);
    }
    for (size_t i = 0; i < o->nparallel; i++) {
        fprintf(stderr, "bench-rollout: %s, %zu tasks at parallelism %zu\n", backend, o->tasks,
                o->parallel[i]);
        b->runs[i] = run_product(dep, backend, o, o->parallel[i]);
    }
    if (o->acquires) {
        fprintf(stderr, "bench-rollout: %s, warm pool K=%zu, %zu acquires\n", backend, o->pool_k,
                o->acquires);
        b->acq = run_acquire(dep, backend, o, true);
        b->acq_conn = run_acquire(dep, backend, o, false);
    }
    agx_deployment_free(dep);
}

static void print_table(const bench_opts *o, const figures *anchor, const backend_figures *bf)
{
    printf("\nrollout of %zu tasks (agentix.bash::run '%s', a sandbox each), image %s\n", o->tasks,
           o->command, o->image);
    printf("%-34s %6s %9s %12s %10s %10s\n", "", "tasks", "wall_s", "sandboxes/s", "p50_ms",
           "p95_ms");
    row("anchor: docker run loop", anchor, o->anchor_tasks);
    for (size_t k = 0; k < o->nbackends; k++) {
        const backend_figures *b = &bf[k];
        char name[96];
        if (o->creates) {
            snprintf(name, sizeof name, "%s: create->ready, 1 at a time", b->name);
            row(name, &b->create, o->creates);
            printf("%-34s %6s %9s %12s %10.1f %10.1f\n", "  (then delete)", "", "", "",
                   b->del.p50_ms, b->del.p95_ms);
        }
        for (size_t i = 0; i < o->nparallel; i++) {
            snprintf(name, sizeof name, "%s P=%zu (%.1fx anchor)", b->name, o->parallel[i],
                     b->runs[i].per_s / anchor->per_s);
            row(name, &b->runs[i], o->tasks);
            if (b->runs[i].failed)
                printf("  %zu tasks failed\n", b->runs[i].failed);
        }
        if (o->acquires) {
            printf("%s warm pool K=%zu acquire, health probe (describe): p50 %.3f ms, p95 %.3f ms, "
                   "p99 %.3f ms (%zu acquires)\n", b->name, o->pool_k, b->acq.p50_ms,
                   b->acq.p95_ms, b->acq.p99_ms, b->acq.ok);
            printf("%s warm pool K=%zu acquire, connection check only:   p50 %.3f ms, p95 %.3f ms, "
                   "p99 %.3f ms (%zu acquires)\n", b->name, o->pool_k, b->acq_conn.p50_ms,
                   b->acq_conn.p95_ms, b->acq_conn.p99_ms, b->acq_conn.ok);
        }
    }
    /* Every backend's create p50 against the first one's (docker's in `--backend docker,ns`). */
    for (size_t k = 1; o->creates && k < o->nbackends; k++)
        printf("create->ready p50, %s / %s: %.3fx\n", bf[k].name, bf[0].name,
               bf[k].create.p50_ms / bf[0].create.p50_ms);
}

static void print_json(const bench_opts *o, const figures *anchor, const backend_figures *bf)
{
    printf("{\"bench\":\"rollout\",\"tasks\":%zu,\"anchor\":{\"tasks\":%zu,\"wall_s\":%.3f,"
           "\"per_s\":%.3f,\"p50_ms\":%.1f,\"p95_ms\":%.1f},\"backends\":[", o->tasks,
           o->anchor_tasks, anchor->wall_s, anchor->per_s, anchor->p50_ms, anchor->p95_ms);
    for (size_t k = 0; k < o->nbackends; k++) {
        const backend_figures *b = &bf[k];
        printf("%s{\"backend\":\"%s\",\"create\":{\"n\":%zu,\"p50_ms\":%.2f,\"p95_ms\":%.2f,"
               "\"delete_p50_ms\":%.2f,\"x_first_backend\":%.3f},\"runs\":[", k ? "," : "",
               b->name, o->creates, b->create.p50_ms, b->create.p95_ms, b->del.p50_ms,
               o->creates ? b->create.p50_ms / bf[0].create.p50_ms : 0.0);
        for (size_t i = 0; i < o->nparallel; i++)
            printf("%s{\"parallel\":%zu,\"ok\":%zu,\"failed\":%zu,\"wall_s\":%.3f,\"per_s\":%.3f,"
                   "\"p50_ms\":%.1f,\"p95_ms\":%.1f,\"x_anchor\":%.2f}", i ? "," : "",
                   o->parallel[i], b->runs[i].ok, b->runs[i].failed, b->runs[i].wall_s,
                   b->runs[i].per_s, b->runs[i].p50_ms, b->runs[i].p95_ms,
                   b->runs[i].per_s / anchor->per_s);
        printf("],\"acquire\":{\"k\":%zu,\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f},"
               "\"acquire_no_probe\":{\"k\":%zu,\"n\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f}}",
               o->pool_k, b->acq.ok, b->acq.p50_ms, b->acq.p99_ms, o->pool_k, b->acq_conn.ok,
               b->acq_conn.p50_ms, b->acq_conn.p99_ms);
    }
    printf("]}\n");
}

int main(int argc, char **argv)
{
    bench_opts o;
    parse(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (size_t k = 0; k < o.nbackends; k++)
        if (strcmp(o.backends[k], "ns") == 0 && !o.ns_bundle) {
            fprintf(stderr, "bench-rollout: the ns backend needs --ns-bundle DIR (the folder "
                    "`agentix build --output DIR` wrote)\n");
            return 2;
        }
    agx_error err;
    if (agx_cleanup_install(60000, &err) != 0) /* an interrupted bench leaves nothing */
        die("cleanup handler", &err);
    fprintf(stderr, "bench-rollout: anchor, %zu x docker run --rm %s sh -c '%s'\n", o.anchor_tasks,
            o.image, o.command);
    figures anchor = run_anchor(&o);
    backend_figures bf[MAX_BACKENDS];
    memset(bf, 0, sizeof bf);
    for (size_t k = 0; k < o.nbackends; k++)
        measure(&o, o.backends[k], &bf[k]);
    print_table(&o, &anchor, bf);
    print_json(&o, &anchor, bf);
    agx_cleanup_uninstall();
    int failed = 0;
    for (size_t k = 0; k < o.nbackends; k++)
        for (size_t i = 0; i < o.nparallel; i++)
            failed |= bf[k].runs[i].failed > 0;
    return failed;
}
