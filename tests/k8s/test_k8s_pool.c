/* test_k8s_pool.c — the k8s-pool backend end to end against the stateful fake API server
 * (tests/fakes/k8s): a host loads `k8s-pool` by name, claims sandboxes whose real agentix-server
 * answers unary, stream and bidi calls through runtime_url; same-image claims and in-place image
 * swaps (also across a compacted watch history: 410 → re-get → re-watch); an image-pull failure;
 * pool exhaustion and waiting on a watch; injected 429/500/403; bearer-token, client-certificate,
 * exec-plugin and in-cluster auth; races of two hosts × 16 threads on a refilling pool of 8 (no
 * pod handed out twice); a claimed pod whose host is gone deleting itself at its expiry (its own
 * service-account token over verified TLS) and the pool refilling, that token unable to do
 * anything else, and a server whose self-delete is misconfigured or cannot reach the API still
 * ending at its expiry and saying why; and nothing left claimed at the end. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/client.h"
#include "agentix/clock.h"
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

/* One request to the fake (its CA trusted): the HTTP status, 0 when none came. Takes hd. */
static long fake_request(const char *method, const char *url, struct curl_slist *hd,
                         const char *body, long timeout_ms)
{
    char ca[700];
    snprintf(ca, sizeof ca, "%s/certs/ca.crt", fake.dir);
    CURL *h = curl_easy_init();
    CHECK(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    return status;
}

/* GET <runtime_url>/health with the sandbox's headers, trusting the fake's CA. */
static long health_through(const agx_sandbox *sb)
{
    char url[1024];
    snprintf(url, sizeof url, "%s/health", agx_sandbox_runtime_url(sb));
    struct curl_slist *hd = NULL;
    const agx_kv *hs = agx_sandbox_headers_const(sb);
    for (size_t i = 0; i < agx_kv_count(hs); i++) {
        char line[1024];
        snprintf(line, sizeof line, "%s: %s", agx_kv_key_at(hs, i), agx_kv_value_at(hs, i));
        hd = curl_slist_append(hd, line);
    }
    return fake_request("GET", url, hd, NULL, 10000L);
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

/* ---- a claimed pod deletes itself at its expiry ---- */

static json_t *stats_pod(json_t *st, const char *name)
{
    size_t i;
    json_t *pod;
    json_array_foreach(json_object_get(st, "pods"), i, pod)
        if (strcmp(json_string_value(json_object_get(pod, "name")), name) == 0)
            return pod;
    return NULL;
}

static int stat_int(const char *key)
{
    json_t *st = k8s_fake_hook(&fake, "/fake/stats", NULL);
    int n = (int)json_integer_value(json_object_get(st, key));
    json_decref(st);
    return n;
}

static int pod_exists(const char *name)
{
    json_t *st = k8s_fake_hook(&fake, "/fake/stats", NULL);
    int there = stats_pod(st, name) != NULL;
    json_decref(st);
    return there;
}

/* `agentix create --expiry 2s`: a host that claims and exits, never extending the expiry. */
static void create_and_leave(char *id, size_t cap)
{
    FILE *p = popen("'" AGX_CLI "' create --backend k8s-pool --expiry 2s --json", "r");
    CHECK(p);
    char out[8192];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    CHECK_MSG(pclose(p) == 0, "agentix create failed: %s", out);
    json_t *doc = json_loads(out, 0, NULL);
    CHECK_MSG(json_string_value(json_object_get(doc, "id")), "%s", out);
    snprintf(id, cap, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
}

static void test_self_delete(void)
{
    fprintf(stderr, "-- test_self_delete\n");
    int before = stat_int("pod_self_deletes");
    char id[256];
    create_and_leave(id, sizeof id);
    CHECK(pod_exists(id));
    /* Bounds, not timings: the 2 s expiry plus a loaded sanitizer build. No other actor claims
     * from the pool meanwhile, so no reaper runs: the pod deletes itself or stays. */
    for (int i = 0; i < 1200 && pod_exists(id); i++)
        agx_clock_sleep_ms(100);
    CHECK_MSG(!pod_exists(id), "claimed pod %s outlived its expiry by 120 s", id);
    CHECK(stat_int("pod_self_deletes") == before + 1);
    /* The ReplicaSet refills the pool; nothing stays claimed. */
    for (int i = 0; i < 1200 && k8s_fake_count(&fake, "idle") < 2; i++)
        agx_clock_sleep_ms(100);
    CHECK(k8s_fake_count(&fake, "idle") == 2);
    CHECK(k8s_fake_count(&fake, "claimed") == 0);
}

/* method path with a bearer token over the fake's verified TLS: the HTTP status. */
static long api_as(const char *method, const char *path, const char *token, const char *body,
                   const char *ctype)
{
    char url[1024], auth[1200], ct[128];
    snprintf(url, sizeof url, "%s%s", fake.server, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype ? ctype : "application/json");
    return fake_request(method, url, curl_slist_append(curl_slist_append(NULL, auth), ct), body,
                        30000L);
}

static void read_text(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    CHECK_MSG(f, "cannot read %s", path);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* A pod's token (what code in the sandbox can read) may delete that pod and nothing else. */
static void test_pod_token_scope(void)
{
    fprintf(stderr, "-- test_pod_token_scope\n");
    for (int i = 0; i < 1200 && k8s_fake_count(&fake, "idle") < 2; i++)
        agx_clock_sleep_ms(100);
    json_t *st = k8s_fake_hook(&fake, "/fake/stats", NULL);
    json_t *a = json_array_get(json_object_get(st, "pods"), 0);
    json_t *b = json_array_get(json_object_get(st, "pods"), 1);
    CHECK(a && b);
    char tok[4096], path[600], body[256];
    read_text(json_string_value(json_object_get(a, "token_file")), tok, sizeof tok);
    const char *an = json_string_value(json_object_get(a, "name"));
    const char *bn = json_string_value(json_object_get(b, "name"));
    snprintf(path, sizeof path, "/api/v1/namespaces/default/pods/%s", bn);
    snprintf(body, sizeof body, "{\"preconditions\":{\"uid\":\"%s\"}}",
             json_string_value(json_object_get(b, "uid")));
    CHECK(api_as("DELETE", path, tok, body, NULL) == 403);   /* another pod */
    CHECK(api_as("GET", "/api/v1/namespaces/default/pods", tok, NULL, NULL) == 403);
    CHECK(api_as("GET", "/fake/stats", tok, NULL, NULL) == 403);
    snprintf(path, sizeof path, "/api/v1/namespaces/default/pods/%s", an);
    CHECK(api_as("PATCH", path, tok, "{\"metadata\":{\"labels\":{\"x\":\"y\"}}}",
                 "application/merge-patch+json") == 403); /* even its own pod: delete only */
    CHECK(api_as("DELETE", "/api/v1/namespaces/other/pods/x", tok, NULL, NULL) == 403);
    CHECK(api_as("DELETE", path, tok, "{\"preconditions\":{\"uid\":\"0000-not-its-uid\"}}",
                 NULL) == 409);
    CHECK(api_as("DELETE", path, "pod.forged-token", NULL, NULL) == 401);
    CHECK(pod_exists(an) && pod_exists(bn));
    json_decref(st);
}

/* agentix-server with self-delete on and env (NULL-terminated "K=V" list on top of the claim-mode
 * basics) expires after 2 s: it must end (exit 0) whatever happens to the delete, and its log
 * must hold want. */
static void expire_with(const char *const *extra, const char *want)
{
    char logp[700];
    snprintf(logp, sizeof logp, "%s/selfdel.log", fake.dir);
    const char *env[32] = {"AGENTIX_AUTH=claim", "AGENTIX_EXPIRY_MS=2000", "AGENTIX_BIND_HOST=127.0.0.1",
                           "AGENTIX_BIND_PORT=0", ("AGENTIX_MODULE_PATH=" AGX_TEST_MODULES_DIR),
                           "AGENTIX_K8S_SELF_DELETE=1"};
    size_t n = 6;
    for (size_t i = 0; extra[i] && n < 31; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    const char *argv[] = {AGX_SERVER, NULL};
    pid_t pid;
    CHECK(posix_spawn(&pid, AGX_SERVER, &fa, NULL, (char *const *)argv, (char *const *)env) == 0);
    posix_spawn_file_actions_destroy(&fa);
    int st = 0;
    pid_t got = 0;
    for (int i = 0; i < 1200 && (got = waitpid(pid, &st, WNOHANG)) == 0; i++)
        agx_clock_sleep_ms(100);
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    char log[8192];
    read_text(logp, log, sizeof log);
    CHECK_MSG(got == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "agentix-server did not end by its expiry: %s", log);
    CHECK_MSG(strstr(log, "expired"), "%s", log);
    CHECK_MSG(strstr(log, want), "wanted '%s' in: %s", want, log);
}

static void test_self_delete_misconfigured(void)
{
    fprintf(stderr, "-- test_self_delete_misconfigured\n");
    char port[64], ca[700], cafile[800], bad_ca[800], tokf[800], tokp[700];
    snprintf(port, sizeof port, "KUBERNETES_SERVICE_PORT=%d", fake.port);
    snprintf(ca, sizeof ca, "%s/certs", fake.dir);
    snprintf(cafile, sizeof cafile, "AGENTIX_K8S_CA_FILE=%s/ca.crt", ca);
    snprintf(bad_ca, sizeof bad_ca, "AGENTIX_K8S_CA_FILE=%s/client.crt", ca); /* not the CA */
    snprintf(tokp, sizeof tokp, "%s/some-token", fake.dir);
    FILE *f = fopen(tokp, "w");
    CHECK(f);
    fputs("pod.unknown-token\n", f);
    fclose(f);
    snprintf(tokf, sizeof tokf, "AGENTIX_K8S_TOKEN_FILE=%s", tokp);
    /* A name that is no pod name: no self-delete, said at start; the expiry still ends it. */
    const char *bad_name[] = {"AGENTIX_POD_NAME=Not_A_Pod", "AGENTIX_POD_NAMESPACE=default",
                              "AGENTIX_POD_UID=0f0e", "KUBERNETES_SERVICE_HOST=127.0.0.1", port,
                              tokf, cafile, NULL};
    expire_with(bad_name, "will NOT delete its pod at expiry: AGENTIX_POD_NAME");
    /* No service host (not in a pod). */
    const char *no_host[] = {"AGENTIX_POD_NAME=p", "AGENTIX_POD_NAMESPACE=default",
                             "AGENTIX_POD_UID=0f0e", tokf, cafile, NULL};
    expire_with(no_host, "KUBERNETES_SERVICE_HOST is not set");
    /* A CA that did not sign the API server's certificate: the TLS check refuses it. */
    const char *wrong_ca[] = {"AGENTIX_POD_NAME=p", "AGENTIX_POD_NAMESPACE=default",
                              "AGENTIX_POD_UID=0f0e", "KUBERNETES_SERVICE_HOST=127.0.0.1", port,
                              tokf, bad_ca, NULL};
    expire_with(wrong_ca, "could not delete its pod default/p: TLS with 127.0.0.1:");
    /* The API reached, the token not a pod's: the answer is logged. */
    const char *unknown[] = {"AGENTIX_POD_NAME=p", "AGENTIX_POD_NAMESPACE=default",
                             "AGENTIX_POD_UID=0f0e", "KUBERNETES_SERVICE_HOST=127.0.0.1", port,
                             tokf, cafile, NULL};
    expire_with(unknown, "DELETE of its pod default/p answered 401");
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
    test_pod_token_scope();
    test_self_delete();
    test_self_delete_misconfigured();
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
