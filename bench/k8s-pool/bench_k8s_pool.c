/* bench_k8s_pool.c — claim→ready latency of the k8s-pool backend (host → backend → Kubernetes API
 * → warm pod) against the local fake API server (tests/fakes/k8s, TLS + bearer token, pods running
 * this build's agentix-server): N sequential and M concurrent same-image claims from a warm pool,
 * p50/p99 of agx_deployment_create (it returns once the pod is claimed and Ready), and API
 * requests per claim as the fake counts them — next to the anchor of seed 003 (scitix
 * agent-sandbox: "< 100 ms allocation" from a pre-warmed pool) — and the fake's own floor: the
 * claim's first request (the LIST) alone over libcurl, sequential and all at once.
 *
 *   agentix-bench-k8s-pool [--sequential 100] [--concurrent 32] [--work DIR]
 * Prints a table and one JSON line. No thresholds: the figures are read, not asserted. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agentix/deployment.h"
#include "check.h"
#include "k8s_fake.h"

#define ANCHOR_CLAIM_MS 100.0

static k8s_fake fake;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long api_requests(void)
{
    json_t *st = k8s_fake_hook(&fake, "/fake/stats", NULL);
    long n = (long)json_integer_value(json_object_get(st, "requests"));
    json_decref(st);
    return n;
}

static void wait_idle(int n)
{
    for (int i = 0; i < 2400 && k8s_fake_count(&fake, "idle") < n; i++)
        usleep(50 * 1000);
    CHECK_MSG(k8s_fake_count(&fake, "idle") >= n, "the pool did not refill to %d idle pods", n);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

typedef struct result {
    int n;
    double p50, p99;
    double requests_per_claim;
} result;

static agx_sandbox *claim(agx_deployment *dep, double *ms)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, 120000) == 0);
    agx_error err;
    agx_sandbox *sb = NULL;
    double t0 = now_ms();
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    *ms = now_ms() - t0;
    agx_sandbox_config_free(cfg);
    return sb;
}

static void release(agx_deployment *dep, agx_sandbox *sb)
{
    agx_error err;
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
}

static result sequential(agx_deployment *dep, int n)
{
    double *lat = calloc((size_t)n, sizeof *lat);
    long requests = 0;
    CHECK(lat);
    for (int i = 0; i < n; i++) {
        wait_idle(2); /* a warm pool: what is measured is the claim, not the refill */
        long before = api_requests();
        agx_sandbox *sb = claim(dep, &lat[i]);
        requests += api_requests() - before;
        release(dep, sb);
    }
    result r = {n, pct(lat, n, 0.5), pct(lat, n, 0.99), (double)requests / n};
    free(lat);
    return r;
}

typedef struct worker {
    agx_deployment *dep;
    pthread_barrier_t *start;
    double ms;
    agx_sandbox *sb;
} worker;

static void *concurrent_one(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->start);
    w->sb = claim(w->dep, &w->ms);
    return NULL;
}

static result concurrent(agx_deployment *dep, int n)
{
    wait_idle(n);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    worker *ws = calloc((size_t)n, sizeof *ws);
    pthread_t *ts = calloc((size_t)n, sizeof *ts);
    double *lat = calloc((size_t)n, sizeof *lat);
    CHECK(ws && ts && lat);
    long before = api_requests();
    for (int i = 0; i < n; i++) {
        ws[i] = (worker){dep, &start, 0, NULL};
        CHECK(pthread_create(&ts[i], NULL, concurrent_one, &ws[i]) == 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(ts[i], NULL);
        lat[i] = ws[i].ms;
    }
    long requests = api_requests() - before;
    for (int i = 0; i < n; i++)
        release(dep, ws[i].sb);
    result r = {n, pct(lat, n, 0.5), pct(lat, n, 0.99), (double)requests / n};
    pthread_barrier_destroy(&start);
    free(ws);
    free(ts);
    free(lat);
    return r;
}

/* ---- the fake's own floor: the same LIST a claim starts with, over plain libcurl ---- */

static size_t sink(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static double list_once(CURL *h)
{
    char url[512], ca[700];
    snprintf(url, sizeof url, "%s/api/v1/namespaces/default/pods?labelSelector=agentix.dev%%2Fpool"
             "%%3Dtest%%2Cagentix.dev%%2Fstate%%3Didle&fieldSelector=status.phase%%3DRunning",
             fake.server);
    snprintf(ca, sizeof ca, "%s/certs/ca.crt", fake.dir);
    struct curl_slist *hd = curl_slist_append(NULL, "Authorization: Bearer " K8S_FAKE_TOKEN);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    double t0 = now_ms();
    CHECK(curl_easy_perform(h) == CURLE_OK);
    double ms = now_ms() - t0;
    curl_slist_free_all(hd);
    return ms;
}

static void *floor_one(void *arg)
{
    worker *w = arg;
    CURL *h = curl_easy_init();
    CHECK(h);
    pthread_barrier_wait(w->start);
    w->ms = list_once(h);
    curl_easy_cleanup(h);
    return NULL;
}

/* p50 of one LIST: sequential on a kept-alive connection, and n at once on new connections. */
static void list_floor(int n, double *seq_p50, double *con_p50)
{
    double lat[64];
    CURL *h = curl_easy_init();
    CHECK(h);
    list_once(h);
    for (int i = 0; i < 64; i++)
        lat[i] = list_once(h);
    curl_easy_cleanup(h);
    *seq_p50 = pct(lat, 64, 0.5);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)n);
    worker *ws = calloc((size_t)n, sizeof *ws);
    pthread_t *ts = calloc((size_t)n, sizeof *ts);
    double *cl = calloc((size_t)n, sizeof *cl);
    CHECK(ws && ts && cl);
    for (int i = 0; i < n; i++) {
        ws[i] = (worker){NULL, &start, 0, NULL};
        CHECK(pthread_create(&ts[i], NULL, floor_one, &ws[i]) == 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(ts[i], NULL);
        cl[i] = ws[i].ms;
    }
    *con_p50 = pct(cl, n, 0.5);
    pthread_barrier_destroy(&start);
    free(ws);
    free(ts);
    free(cl);
}

int main(int argc, char **argv)
{
    int nseq = 100, ncon = 32;
    char work[600];
    snprintf(work, sizeof work, "/tmp/agentix-bench-k8s-pool-%d", (int)getpid());
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sequential") == 0)
            nseq = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--concurrent") == 0)
            ncon = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--work") == 0)
            snprintf(work, sizeof work, "%s", argv[i + 1]);
        else
            CHECK_MSG(0, "unknown argument %s (--sequential N --concurrent M --work DIR)", argv[i]);
    }
    CHECK(nseq > 0 && ncon > 0);
    k8s_fake_start(&fake, work, 1, ncon + 2, NULL);
    char kc[700];
    k8s_fake_kubeconfig(&fake, "kubeconfig", "    token: " K8S_FAKE_TOKEN "\n", kc, sizeof kc);
    k8s_fake_use(kc);
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("k8s-pool", &dep, &err), &err);

    result s = sequential(dep, nseq);
    result c = concurrent(dep, ncon);
    double floor_seq, floor_con;
    wait_idle(ncon);
    list_floor(ncon, &floor_seq, &floor_con);
    agx_deployment_free(dep);
    k8s_fake_stop(&fake);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", work);
    CHECK(system(cmd) == 0);

    printf("k8s-pool claim->ready against the local fake API server (TLS, bearer token)\n");
    printf("%-28s %8s %10s %10s %14s\n", "", "claims", "p50 ms", "p99 ms", "API req/claim");
    printf("%-28s %8d %10.2f %10.2f %14.2f\n", "sequential, same image", s.n, s.p50, s.p99,
           s.requests_per_claim);
    printf("%-28s %8d %10.2f %10.2f %14.2f\n", "concurrent, same image", c.n, c.p50, c.p99,
           c.requests_per_claim);
    printf("%-28s %8s %10s %10s %14s\n", "anchor (seed 003, scitix)", "-", "<100", "-", "-");
    printf("fake floor: one LIST of the idle pods p50 %.2f ms (kept-alive), %.2f ms (%d at once, "
           "new TLS connections)\n", floor_seq, floor_con, ncon);
    printf("{\"bench\":\"k8s-pool\",\"sequential\":{\"n\":%d,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"api_requests_per_claim\":%.2f},\"concurrent\":{\"n\":%d,\"p50_ms\":%.3f,"
           "\"p99_ms\":%.3f,\"api_requests_per_claim\":%.2f},\"anchor\":{\"seed\":\"003\","
           "\"claim_ms\":%.0f},\"fake_list_p50_ms\":{\"sequential\":%.3f,\"concurrent\":%.3f}}\n",
           s.n, s.p50, s.p99, s.requests_per_claim, c.n, c.p50, c.p99, c.requests_per_claim,
           ANCHOR_CLAIM_MS, floor_seq, floor_con);
    return 0;
}
