/* cmd_bench.c — `agentix bench`: a quick timing of the whole sandbox lifecycle on one backend —
 * create, connect, one agentix.bash::run, delete — N times with P at once, with p50/p95/max per
 * phase and sandboxes per second. The full rollout benchmark (against `docker run`, warm-pool
 * acquire) is bench/rollout; this one answers "how fast is this backend here" from the shell. */
#include "cli/cli.h"

#include "agentix/clock.h"
#include "agentix/fleet.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define AGX_BENCH_MAX_N 100000
#define AGX_BENCH_MAX_P 256

static void agx_bench_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix bench [--backend NAME] [--image I] [--bundle B] [-n N] [--parallel P]\n"
            "                     [--command CMD] [--json]\n\n"
            "Time N sandbox lifecycles, P at once: create, connect, one agentix.bash::run of CMD,\n"
            "delete. Prints p50/p95/max of each phase and of the whole task, the wall time and\n"
            "sandboxes per second. Each sandbox is a fleet of one (owner labels, create retries):\n"
            "Ctrl-C deletes those in flight, and `agentix gc` collects them if the bench is\n"
            "killed. The rollout benchmark against `docker run` and the warm pool's acquire\n"
            "latency is the bench/rollout program.\n\n"
            "Options:\n"
            "  --backend NAME   deployment backend (default $AGENTIX_BACKEND, else local)\n"
            "  --image I        task image\n"
            "  --bundle B       runtime bundle\n"
            "  -n N             lifecycles (default 10, at most 100000)\n"
            "  --parallel P     at once (default 4, at most 256)\n"
            "  --command CMD    the command run in each sandbox (default 'true')\n"
            "  --json           one JSON object: {\"backend\", \"n\", \"parallel\", \"ok\", \"failed\",\n"
            "                   \"wall_ms\", \"sandboxes_per_s\", \"create_ms\": {\"p50\", \"p95\", \"max\"},\n"
            "                   \"call_ms\": {...}, \"delete_ms\": {...}, \"task_ms\": {...}}\n"
            "  --help           this text\n\n"
            "A progress bar is drawn on stderr when it is a terminal (one line per task otherwise).\n\n"
            "Exit status: 0 every lifecycle succeeded, 1 one failed (the first error on stderr;\n"
            "every sandbox created was still deleted), 2 usage error.\n");
}

enum { PH_CREATE, PH_CALL, PH_DELETE, PH_TASK, PH_N };
static const char *const agx_bench_phase[PH_N] = {"create_ms", "call_ms", "delete_ms", "task_ms"};

typedef struct agx_bench {
    agx_deployment *dep;
    agx_sandbox_config *cfg;
    const char *command;
    size_t n, next, done, failed;
    double *ms[PH_N]; /* per task */
    int json;
    agx_error first_err;
    pthread_mutex_t mu;
} agx_bench;

static double agx_bench_now(void) { return (double)agx_clock_us() / 1e3; } /* ms, sub-ms exact */

static int agx_bench_call(agx_bench *b, const agx_sandbox *sb, agx_error *err)
{
    agx_client *c = NULL;
    agx_value *kwargs = agx_value_map(), *res = NULL;
    int rc = kwargs && agx_value_map_set(kwargs, "command", agx_value_string(b->command)) == 0
                 ? agx_client_connect_sandbox(sb, NULL, &c, err)
                 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc)
        rc = agx_client_call(c, "agentix.bash::run", NULL, kwargs, 120000, &res, err);
    if (!rc && agx_value_get_int64(agx_value_map_get(res, "exit_code")) != 0)
        rc = agx_error_set(err, AGX_ERR_REMOTE, "the command exited with %lld: %.200s",
                           (long long)agx_value_get_int64(agx_value_map_get(res, "exit_code")),
                           agx_value_get_string(agx_value_map_get(res, "stderr"), NULL));
    agx_value_free(res);
    agx_value_free(kwargs);
    agx_client_free(c);
    return rc;
}

/* One lifecycle; timings into b->ms[*][i]. A fleet of one: owner labels, retries of retriable
 * create errors, and registration for the SIGINT/SIGTERM cleanup handler. */
static int agx_bench_one(agx_bench *b, size_t i, agx_error *err)
{
    agx_fleet_options fo;
    agx_fleet_options_init(&fo);
    fo.count = 1;
    double t0 = agx_bench_now();
    agx_fleet *f = NULL;
    int rc = agx_fleet_create(b->dep, b->cfg, &fo, &f, err);
    double t1 = agx_bench_now();
    if (rc)
        return rc;
    rc = agx_bench_call(b, agx_fleet_sandbox(f, 0), err);
    double t2 = agx_bench_now();
    agx_error derr;
    int drc = agx_fleet_destroy(f, &derr);
    double t3 = agx_bench_now();
    agx_fleet_free(f);
    if (!rc && drc) {
        agx_error_copy(err, &derr);
        rc = drc;
    }
    b->ms[PH_CREATE][i] = t1 - t0;
    b->ms[PH_CALL][i] = t2 - t1;
    b->ms[PH_DELETE][i] = t3 - t2;
    b->ms[PH_TASK][i] = t3 - t0;
    return rc;
}

static void *agx_bench_worker(void *arg)
{
    agx_bench *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->mu);
        size_t i = b->next < b->n ? b->next++ : b->n;
        pthread_mutex_unlock(&b->mu);
        if (i == b->n)
            return NULL;
        agx_error err;
        int rc = agx_bench_one(b, i, &err);
        pthread_mutex_lock(&b->mu);
        b->done++;
        if (rc && b->failed++ == 0)
            agx_error_copy(&b->first_err, &err);
        if (!b->json)
            agx_cli_progress("bench", b->done, b->n, rc ? "failed" : "ok");
        pthread_mutex_unlock(&b->mu);
    }
}

static int agx_bench_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile q (0..1) of the sorted v[0..n), nearest rank. */
static double agx_bench_pct(const double *v, size_t n, double q)
{
    size_t k = (size_t)(q * (double)n + 0.999999);
    return n ? v[k == 0 ? 0 : (k > n ? n - 1 : k - 1)] : 0;
}

static int agx_bench_report(agx_bench *b, size_t p, double wall)
{
    size_t ok = b->n - b->failed;
    json_t *root = json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:f}", "backend",
                             agx_deployment_name(b->dep), "n", (json_int_t)b->n, "parallel",
                             (json_int_t)p, "ok", (json_int_t)ok, "failed", (json_int_t)b->failed,
                             "wall_ms", wall, "sandboxes_per_s", wall > 0 ? (double)ok * 1e3 / wall : 0);
    if (!b->json)
        printf("%s: %zu lifecycles, %zu at once: %zu ok, %zu failed, wall %.0f ms, %.2f sandboxes/s\n"
               "%-10s %10s %10s %10s\n", agx_deployment_name(b->dep), b->n, p, ok, b->failed, wall,
               wall > 0 ? (double)ok * 1e3 / wall : 0, "phase", "p50 ms", "p95 ms", "max ms");
    for (int ph = 0; ph < PH_N; ph++) {
        qsort(b->ms[ph], b->n, sizeof(double), agx_bench_cmp);
        double p50 = agx_bench_pct(b->ms[ph], b->n, 0.5), p95 = agx_bench_pct(b->ms[ph], b->n, 0.95);
        double mx = b->n ? b->ms[ph][b->n - 1] : 0;
        if (root)
            json_object_set_new(root, agx_bench_phase[ph],
                                json_pack("{s:f, s:f, s:f}", "p50", p50, "p95", p95, "max", mx));
        if (!b->json)
            printf("%-10.*s %10.1f %10.1f %10.1f\n", (int)strlen(agx_bench_phase[ph]) - 3,
                   agx_bench_phase[ph], p50, p95, mx);
    }
    if (b->json)
        return agx_cli_print_json(root, 0);
    json_decref(root);
    return fflush(stdout) == 0 ? AGX_CLI_OK : AGX_CLI_ERROR;
}

static int agx_bench_count(const char *opt, const char *v, size_t max, size_t *out)
{
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || x < 1 || x > max)
        return agx_cli_usage_error("bench", "%s wants 1..%zu, got '%s'", opt, max, v);
    *out = (size_t)x;
    return AGX_CLI_OK;
}

static int agx_bench_parse(int argc, char **argv, agx_bench *b, const char **backend, size_t *p)
{
    static const char *const cmd = "bench";
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int m, rc = 0;
        if (strcmp(argv[i], "--json") == 0)
            b->json = 1;
        else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--backend", &v)) != 0)
            rc = m < 0 ? AGX_CLI_USAGE : (*backend = v, 0);
        else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--image", &v)) != 0)
            rc = m < 0 || agx_sandbox_config_set_image(b->cfg, v) ? AGX_CLI_USAGE : 0;
        else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--bundle", &v)) != 0)
            rc = m < 0 || agx_sandbox_config_set_bundle(b->cfg, v) ? AGX_CLI_USAGE : 0;
        else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--command", &v)) != 0)
            rc = m < 0 ? AGX_CLI_USAGE : (b->command = v, 0);
        else if ((m = agx_cli_opt(cmd, argc, argv, &i, "-n", &v)) != 0)
            rc = m < 0 ? AGX_CLI_USAGE : agx_bench_count("-n", v, AGX_BENCH_MAX_N, &b->n);
        else if ((m = agx_cli_opt(cmd, argc, argv, &i, "--parallel", &v)) != 0)
            rc = m < 0 ? AGX_CLI_USAGE : agx_bench_count("--parallel", v, AGX_BENCH_MAX_P, p);
        else
            rc = agx_cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        if (rc)
            return rc;
    }
    return AGX_CLI_OK;
}

static int agx_bench_go(agx_bench *b, size_t p)
{
    for (int ph = 0; ph < PH_N; ph++)
        if (!(b->ms[ph] = calloc(b->n, sizeof(double))))
            return AGX_CLI_ERROR;
    if (p > b->n)
        p = b->n;
    pthread_t th[AGX_BENCH_MAX_P];
    size_t started = 0;
    double t0 = agx_bench_now();
    while (started < p && pthread_create(&th[started], NULL, agx_bench_worker, b) == 0)
        started++;
    if (started == 0)
        agx_bench_worker(b);
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double wall = agx_bench_now() - t0;
    agx_cli_progress_done();
    int rc = agx_bench_report(b, started ? started : 1, wall);
    if (b->failed)
        return agx_cli_fail("bench", &b->first_err);
    return rc;
}

static int agx_bench_run(int argc, char **argv)
{
    agx_bench b = {.n = 10, .command = "true", .cfg = agx_sandbox_config_new()};
    size_t p = 4;
    const char *backend = NULL;
    agx_error err;
    int rc = b.cfg ? agx_bench_parse(argc, argv, &b, &backend, &p) : AGX_CLI_ERROR;
    /* Ctrl-C deletes the sandboxes in flight before the process dies. */
    if (!rc && agx_cleanup_install(30000, &err) != 0)
        rc = agx_cli_fail("bench", &err);
    if (!rc)
        rc = agx_cli_load("bench", backend, &b.dep);
    if (!rc) {
        pthread_mutex_init(&b.mu, NULL);
        rc = agx_bench_go(&b, p);
        pthread_mutex_destroy(&b.mu);
    }
    for (int ph = 0; ph < PH_N; ph++)
        free(b.ms[ph]);
    agx_cleanup_uninstall();
    agx_deployment_free(b.dep);
    agx_sandbox_config_free(b.cfg);
    return rc;
}

const agx_cli_command agx_cli_cmd_bench = {
    .name = "bench",
    .summary = "time create / call / delete of N sandboxes on a backend",
    .run = agx_bench_run,
    .help = agx_bench_help,
};
