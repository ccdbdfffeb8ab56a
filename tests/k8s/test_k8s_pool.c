/* test_k8s_pool.c — the k8s-pool backend end to end against the stateful fake API server
 * (tests/fakes/k8s): a host loads `k8s-pool` by name, claims sandboxes whose real agentix-server
 * answers unary, stream and bidi calls through runtime_url; same-image claims and in-place image
 * swaps (also across a compacted watch history: 410 → re-get → re-watch); an image-pull failure;
 * pool exhaustion and waiting on a watch; injected 429/500/403; bearer-token, client-certificate,
 * exec-plugin and in-cluster auth; races of two hosts × 16 threads on a refilling pool of 8 (no
 * pod handed out twice); and nothing left claimed at the end. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/client.h"
#include "agentix/deployment.h"
#include "check.h"
#include "demo_calls.h"
#include "k8s_fake.h"

static k8s_fake fake;
static char kc_token[700];

static agx_deployment *load(void)
{
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("k8s-pool", &dep, &err), &err);
    return dep;
}

static agx_sandbox_config *config(const char *image, int64_t timeout_ms)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg);
    if (image)
        CHECK(agx_sandbox_config_set_image(cfg, image) == 0);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, timeout_ms) == 0);
    return cfg;
}

/* Unary, stream and bidi through the sandbox's runtime_url (tests/support/demo_calls.h). */
static void exercise(const agx_sandbox *sb)
{
    agx_error err;
    CHECK_OK(agx_test_demo_session(sb, &err), &err);
}

static void fake_config(const char *json)
{
    json_decref(k8s_fake_hook(&fake, "/fake/config", json));
}

static void fault(const char *json)
{
    json_decref(k8s_fake_hook(&fake, "/fake/faults", json));
}

static int double_claims(void)
{
    json_t *st = k8s_fake_hook(&fake, "/fake/stats", NULL);
    int n = (int)json_integer_value(json_object_get(st, "double_claims"));
    json_decref(st);
    return n;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

/* ---- cases ---- */

static void test_construct_errors(void)
{
    fprintf(stderr, "-- test_construct_errors\n");
    agx_deployment *dep = NULL;
    agx_error err;
    unsetenv("AGENTIX_K8S_POOL");
    CHECK(agx_load_deployment("k8s-pool", &dep, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_MSG(strstr(err.message, "AGENTIX_K8S_POOL"), "%s", err.message);
    setenv("AGENTIX_K8S_POOL", "test", 1);
    setenv("AGENTIX_K8S_RUNTIME_URL", "ftp://x", 1);
    CHECK(agx_load_deployment("k8s-pool", &dep, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_MSG(strstr(err.message, "AGENTIX_K8S_RUNTIME_URL"), "%s", err.message);
    unsetenv("AGENTIX_K8S_RUNTIME_URL");
    setenv("AGENTIX_K8S_KUBECONFIG", "/nonexistent/kubeconfig", 1);
    CHECK(agx_load_deployment("k8s-pool", &dep, &err) != 0);
    CHECK_MSG(strstr(err.message, "/nonexistent/kubeconfig"), "%s", err.message);
    k8s_fake_use(kc_token);
}

static void test_same_image(agx_deployment *dep)
{
    fprintf(stderr, "-- test_same_image\n");
    agx_error err;
    agx_sandbox_config *cfg = config(NULL, 30000);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "rollout", "r1") == 0);
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK(strncmp(agx_sandbox_runtime_url(sb), "http://127.0.0.1:", 17) == 0);
    exercise(sb);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), "rollout"), "r1");
    agx_sandbox_info_free(info);
    agx_kv *sel = agx_kv_new();
    agx_kv_set(sel, "rollout", "r1");
    agx_sandbox_list *list = NULL;
    CHECK_OK(agx_deployment_list(dep, sel, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1);
    agx_sandbox_list_free(list);
    agx_kv_free(sel);
    /* The same image the pool runs, spelled differently: still no swap. */
    CHECK(agx_sandbox_config_set_image(cfg, "docker.io/library/python:3.12") == 0);
    agx_sandbox *sb2 = NULL;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb2, &err), &err);
    CHECK(strcmp(agx_sandbox_id(sb), agx_sandbox_id(sb2)) != 0);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb2), &err), &err);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err); /* gone: still fine */
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(sb), &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    agx_sandbox_free(sb);
    agx_sandbox_free(sb2);
    /* The pool's bundle is fixed: another one is refused, the pool's own is fine. */
    CHECK(agx_sandbox_config_set_bundle(cfg, "registry.example/other-bundle:2") == 0);
    CHECK(agx_deployment_create(dep, cfg, &sb, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_MSG(strstr(err.message, "bundle"), "%s", err.message);
    CHECK(agx_sandbox_config_set_bundle(cfg, "agentix-bundle:test") == 0);
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    /* Bad labels fail before any API call. */
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "bad label", "x") == 0);
    CHECK(agx_deployment_create(dep, cfg, &sb, &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_sandbox_config_free(cfg);
}

static void *compact_later(void *arg)
{
    (void)arg;
    usleep(300 * 1000);
    json_decref(k8s_fake_hook(&fake, "/fake/compact", "{}"));
    return NULL;
}

static void test_image_swap(agx_deployment *dep)
{
    fprintf(stderr, "-- test_image_swap\n");
    agx_error err;
    fake_config("{\"swap_delay_ms\":800}");
    pthread_t t;
    CHECK(pthread_create(&t, NULL, compact_later, NULL) == 0); /* the swap watch sees 410 */
    agx_sandbox_config *cfg = config("registry.example/task:v2", 30000);
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    pthread_join(t, NULL);
    exercise(sb);
    json_t *st = k8s_fake_hook(&fake, "/fake/stats", NULL), *pod;
    size_t i;
    int seen = 0;
    json_array_foreach(json_object_get(st, "pods"), i, pod)
        if (strcmp(json_string_value(json_object_get(pod, "name")), agx_sandbox_id(sb)) == 0) {
            CHECK_STREQ(json_string_value(json_object_get(pod, "image")), "registry.example/task:v2");
            seen = 1;
        }
    CHECK(seen);
    json_decref(st);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    fake_config("{\"swap_delay_ms\":50}");

    /* An image that cannot be pulled fails fast with the reason, leaving nothing claimed. */
    fake_config("{\"fail_images\":[\"registry.example/missing:v9\"]}");
    CHECK(agx_sandbox_config_set_image(cfg, "registry.example/missing:v9") == 0);
    CHECK(agx_deployment_create(dep, cfg, &sb, &err) == AGX_ERR_BACKEND);
    CHECK_MSG(strstr(err.message, "ErrImagePull"), "%s", err.message);
    CHECK(sb == NULL);
    CHECK(k8s_fake_count(&fake, "claimed") == 0);
    /* A crash loop likewise. */
    fake_config("{\"crash_images\":[\"registry.example/crash:v1\"]}");
    CHECK(agx_sandbox_config_set_image(cfg, "registry.example/crash:v1") == 0);
    CHECK(agx_deployment_create(dep, cfg, &sb, &err) == AGX_ERR_BACKEND);
    CHECK_MSG(strstr(err.message, "CrashLoopBackOff"), "%s", err.message);
    agx_sandbox_config_free(cfg);
}

static void *release_ready_later(void *arg)
{
    (void)arg;
    usleep(500 * 1000);
    fake_config("{\"hold_ready\":false}");
    return NULL;
}

static void test_exhaustion(agx_deployment *dep)
{
    fprintf(stderr, "-- test_exhaustion\n");
    agx_error err;
    /* Both warm pods idle, then replacements held not-Ready (the fake's hold_ready): after taking
     * both, the pool is empty until the test says otherwise — no race with a delay. */
    for (int i = 0; i < 2400 && k8s_fake_count(&fake, "idle") < 2; i++)
        usleep(50 * 1000);
    CHECK_MSG(k8s_fake_count(&fake, "idle") >= 2, "the pool did not refill to 2 idle pods");
    fake_config("{\"hold_ready\":true}");
    agx_sandbox_config *cfg = config(NULL, 30000);
    agx_sandbox *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(agx_deployment_create(dep, cfg, &a, &err), &err);
    CHECK_OK(agx_deployment_create(dep, cfg, &b, &err), &err);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 2000) == 0);
    CHECK(agx_deployment_create(dep, cfg, &c, &err) == AGX_ERR_UNAVAILABLE);
    CHECK_MSG(strstr(err.message, "pool exhausted"), "%s", err.message);
    CHECK(err.retriable);
    /* With time to wait, the claim rides the watch until a replacement is Ready (released from
     * another thread while the claim waits; released earlier, the claim takes it at once). */
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, release_ready_later, NULL) == 0);
    CHECK_OK(agx_deployment_create(dep, cfg, &c, &err), &err);
    pthread_join(t, NULL);
    exercise(c);
    agx_sandbox *all[] = {a, b, c};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(all[i]), &err), &err);
        agx_sandbox_free(all[i]);
    }
    agx_sandbox_config_free(cfg);
}

static void test_api_errors(agx_deployment *dep)
{
    fprintf(stderr, "-- test_api_errors\n");
    agx_error err;
    agx_sandbox_config *cfg = config(NULL, 30000);
    agx_sandbox *sb = NULL;
    /* Throttled, then a failing server: retried with backoff, the claim still lands once. */
    fault("{\"method\":\"GET\",\"path\":\"/pods$\",\"status\":429,\"count\":2,\"retry_after\":0}");
    fault("{\"method\":\"PATCH\",\"path\":\"/pods/\",\"status\":503,\"count\":1}");
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    /* Forbidden is not retried and says what the account needs. */
    fault("{\"method\":\"GET\",\"path\":\"/pods$\",\"status\":403,\"count\":1}");
    CHECK(agx_deployment_create(dep, cfg, &sb, &err) == AGX_ERR_BACKEND);
    CHECK_MSG(strstr(err.message, "403"), "%s", err.message);
    CHECK(!err.retriable);
    agx_sandbox_config_free(cfg);
}

static void claim_and_release(const char *kubeconfig)
{
    k8s_fake_use(kubeconfig);
    agx_deployment *dep = load();
    agx_error err;
    agx_sandbox_config *cfg = config(NULL, 30000);
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    exercise(sb);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
}

static void test_auth(void)
{
    fprintf(stderr, "-- test_auth\n");
    char kc[700], user[1400], cmd0[1600];
    /* Client certificate, files relative to the kubeconfig's folder. */
    k8s_fake_kubeconfig(&fake, "kc-cert", "    client-certificate: certs/client.crt\n"
                        "    client-key: certs/client.key\n", kc, sizeof kc);
    claim_and_release(kc);
    /* A wrong token is refused with a message about credentials. */
    k8s_fake_kubeconfig(&fake, "kc-bad", "    token: wrong\n", kc, sizeof kc);
    k8s_fake_use(kc);
    agx_deployment *dep = load();
    agx_error err;
    agx_sandbox_config *cfg = config(NULL, 5000);
    agx_sandbox *sb = NULL;
    CHECK(agx_deployment_create(dep, cfg, &sb, &err) == AGX_ERR_BACKEND);
    CHECK_MSG(strstr(err.message, "401"), "%s", err.message);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    /* An exec credential plugin printing an ExecCredential. */
    char script[700];
    snprintf(script, sizeof script, "%s/exec-cred.sh", fake.dir);
    FILE *f = fopen(script, "w");
    CHECK(f);
    fprintf(f, "#!/bin/sh\ncase \"$KUBERNETES_EXEC_INFO\" in *ExecCredential*) ;; *) exit 3;; esac\n"
               "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
               "\"status\":{\"token\":\"%s\",\"expirationTimestamp\":\"2099-01-01T00:00:00Z\"}}'\n",
            K8S_FAKE_TOKEN);
    fclose(f);
    chmod(script, 0755);
    snprintf(user, sizeof user, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
             "      command: %s\n      interactiveMode: Never\n", script);
    k8s_fake_kubeconfig(&fake, "kc-exec", user, kc, sizeof kc);
    claim_and_release(kc);
    /* $KUBECONFIG: a missing file is skipped; for each name and current-context the first file
     * wins (the second's wrong token and other context are ignored). */
    char second[700], list[2200];
    k8s_fake_kubeconfig(&fake, "kc-second", "    token: wrong-token\n", second, sizeof second);
    snprintf(cmd0, sizeof cmd0, "sed -i 's/^current-context: fake/current-context: other/' '%s'", second);
    CHECK(system(cmd0) == 0);
    snprintf(list, sizeof list, "%s/missing:%s:%s", fake.dir, kc_token, second);
    unsetenv("AGENTIX_K8S_KUBECONFIG");
    setenv("KUBECONFIG", list, 1);
    setenv("AGENTIX_K8S_POOL", "test", 1);
    dep = load();
    cfg = config(NULL, 30000);
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    unsetenv("KUBECONFIG");
    /* In-cluster: service host/port and a service-account folder whose token rotates (the fake
     * accepts only the current content of its rotating-token file besides the fixed token). */
    char sa[700], cmd[4096], port[16];
    snprintf(sa, sizeof sa, "%s/sa", fake.dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/certs/ca.crt' '%s/ca.crt' && printf rot-1 > "
             "'%s/token' && printf rot-1 > '%s/rotating-token' && printf default > '%s/namespace'",
             sa, fake.dir, sa, sa, fake.dir, sa);
    CHECK(system(cmd) == 0);
    snprintf(port, sizeof port, "%d", fake.port);
    unsetenv("AGENTIX_K8S_KUBECONFIG");
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", sa, 1); /* no ~/.kube/config there */
    unsetenv("KUBECONFIG");
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    setenv("AGENTIX_K8S_SERVICEACCOUNT_DIR", sa, 1);
    setenv("AGENTIX_K8S_POOL", "test", 1);
    dep = load();
    cfg = config(NULL, 30000);
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    /* Rotation: the old token is refused now; the 401 makes the backend re-read the file. */
    snprintf(cmd, sizeof cmd, "printf rot-2 > '%s/token' && printf rot-2 > '%s/rotating-token'", sa,
             fake.dir);
    CHECK(system(cmd) == 0);
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    if (home)
        setenv("HOME", home, 1);
    free(home);
    k8s_fake_use(kc_token);
}

/* GET <runtime_url>/health with the sandbox's headers, trusting the fake's CA. */
static long health_through(const agx_sandbox *sb)
{
    char url[1024], ca[700];
    snprintf(url, sizeof url, "%s/health", agx_sandbox_runtime_url(sb));
    snprintf(ca, sizeof ca, "%s/certs/ca.crt", fake.dir);
    CURL *h = curl_easy_init();
    CHECK(h);
    struct curl_slist *hd = NULL;
    const agx_kv *hs = agx_sandbox_headers_const(sb);
    for (size_t i = 0; i < agx_kv_count(hs); i++) {
        char line[1024];
        snprintf(line, sizeof line, "%s: %s", agx_kv_key_at(hs, i), agx_kv_value_at(hs, i));
        hd = curl_slist_append(hd, line);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return status;
}

static void test_runtime_url_modes(void)
{
    fprintf(stderr, "-- test_runtime_url_modes\n");
    agx_error err;
    agx_sandbox_config *cfg = config(NULL, 30000);
    agx_sandbox *sb = NULL;
    /* API-server pod proxy: the URL names the pod, the credentials travel as headers. */
    setenv("AGENTIX_K8S_RUNTIME_URL", "proxy", 1);
    agx_deployment *dep = load();
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    char want[512];
    snprintf(want, sizeof want, "%s/api/v1/namespaces/default/pods/%s:", fake.server, agx_sandbox_id(sb));
    CHECK_MSG(strncmp(agx_sandbox_runtime_url(sb), want, strlen(want)) == 0, "%s",
              agx_sandbox_runtime_url(sb));
    CHECK_STREQ(agx_kv_get(agx_sandbox_headers_const(sb), "Authorization"), "Bearer " K8S_FAKE_TOKEN);
    CHECK(health_through(sb) == 200);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_deployment_free(dep);
    /* A template (a router or gateway in front of the pods). */
    setenv("AGENTIX_K8S_RUNTIME_URL", "http://{ip}:{port}/", 1);
    dep = load();
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK(strncmp(agx_sandbox_runtime_url(sb), "http://127.0.0.1:", 17) == 0);
    exercise(sb);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_deployment_free(dep);
    unsetenv("AGENTIX_K8S_RUNTIME_URL");
    agx_sandbox_config_free(cfg);
}

/* ---- races: two hosts × 16 threads on a refilling pool of 8 ---- */

#define RACE_THREADS 16
#define RACE_CLAIMS 2

typedef struct racer {
    agx_deployment *dep;
    char ids[RACE_CLAIMS][128];
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    agx_error err;
    /* Generous: each claim may wait for refills, and sanitizer builds on a loaded machine start
     * pods slowly. Still bounded. */
    agx_sandbox_config *cfg = config(NULL, 240000);
    for (int i = 0; i < RACE_CLAIMS; i++) {
        agx_sandbox *sb = NULL;
        CHECK_OK(agx_deployment_create(r->dep, cfg, &sb, &err), &err);
        /* Pod names are never reused, so a name seen twice is a pod handed out twice. */
        snprintf(r->ids[i], sizeof r->ids[i], "%s", agx_sandbox_id(sb));
        CHECK_OK(agx_deployment_delete(r->dep, agx_sandbox_id(sb), &err), &err);
        agx_sandbox_free(sb);
    }
    agx_sandbox_config_free(cfg);
    return NULL;
}

static void race_host(const char *out_path)
{
    agx_deployment *dep = load();
    pthread_t t[RACE_THREADS];
    static racer rs[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        rs[i].dep = dep;
        CHECK(pthread_create(&t[i], NULL, race, &rs[i]) == 0);
    }
    FILE *f = fopen(out_path, "w");
    CHECK(f);
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(t[i], NULL);
        for (int j = 0; j < RACE_CLAIMS; j++)
            fprintf(f, "%s\n", rs[i].ids[j]);
    }
    fclose(f);
    agx_deployment_free(dep);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_races(void)
{
    fprintf(stderr, "-- test_races (pid %d)\n", (int)getpid());
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/race-a.txt", fake.dir);
    snprintf(b, sizeof b, "%s/race-b.txt", fake.dir);
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        race_host(b);
        _exit(0);
    }
    race_host(a);
    int st;
    CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *names[2 * RACE_THREADS * RACE_CLAIMS], line[256];
    size_t n = 0;
    const char *files[] = {a, b};
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(files[i], "r");
        CHECK(f);
        while (fgets(line, sizeof line, f) && n < sizeof names / sizeof *names) {
            line[strcspn(line, "\n")] = '\0';
            names[n++] = strdup(line);
        }
        fclose(f);
    }
    CHECK(n == 2 * RACE_THREADS * RACE_CLAIMS);
    qsort(names, n, sizeof *names, cmp);
    for (size_t i = 1; i < n; i++)
        CHECK_MSG(strcmp(names[i - 1], names[i]) != 0, "pod %s handed out twice", names[i]);
    CHECK(double_claims() == 0);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
}

int main(void)
{
    char dir[600], manifest[700], cmd[2048];
    snprintf(dir, sizeof dir, "%s/k8s-pool-test-%d", AGX_TEST_BINARY_DIR, (int)getpid());
    /* The pool is what `agentix k8s-pool manifest` prints, loaded by the fake as YAML. */
    snprintf(manifest, sizeof manifest, "%s.pool.yaml", dir);
    snprintf(cmd, sizeof cmd, "'%s' k8s-pool manifest --pool test --bundle agentix-bundle:test "
             "--image python:3.12 --replicas 2 > '%s'", AGX_CLI, manifest);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
    k8s_fake_start(&fake, dir, 1, 2, manifest);
    k8s_fake_kubeconfig(&fake, "kc-token", "    token: " K8S_FAKE_TOKEN "\n", kc_token,
                        sizeof kc_token);
    k8s_fake_use(kc_token);

    test_construct_errors();
    agx_deployment *dep = load();
    test_same_image(dep);
    test_image_swap(dep);
    test_exhaustion(dep);
    test_api_errors(dep);
    test_auth();
    test_runtime_url_modes();
    agx_deployment_free(dep);
    k8s_fake_stop(&fake);

    /* The races get a pool of 8. */
    k8s_fake_start(&fake, dir, 1, 8, manifest);
    k8s_fake_kubeconfig(&fake, "kc-token", "    token: " K8S_FAKE_TOKEN "\n", kc_token,
                        sizeof kc_token);
    k8s_fake_use(kc_token);
    test_races();

    /* Nothing left claimed after the sessions end. */
    dep = load();
    agx_sandbox_list *list = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_list(dep, NULL, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 0);
    agx_sandbox_list_free(list);
    agx_deployment_free(dep);
    CHECK(k8s_fake_count(&fake, "claimed") == 0);
    k8s_fake_stop(&fake);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", dir, manifest);
    CHECK(system(cmd) == 0);
    printf("k8s-pool: all cases passed\n");
    return 0;
}
