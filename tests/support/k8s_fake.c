/* k8s_fake.c — see k8s_fake.h (tests/support). The fake is a child of the test; it exits (stopping every pod
 * process) when asked, or on its own when the test dies. */
#include "k8s_fake.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

extern char **environ;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK_MSG(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static const char pool_rs[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"agentix-pool-test\","
    "\"labels\":{\"agentix.dev/pool\":\"test\"}},\"spec\":{\"replicas\":2,\"selector\":{\"matchLabels\":"
    "{\"agentix.dev/pool\":\"test\",\"agentix.dev/state\":\"idle\"}},\"template\":{\"metadata\":"
    "{\"labels\":{\"agentix.dev/pool\":\"test\",\"agentix.dev/state\":\"idle\"},\"annotations\":"
    "{\"agentix.dev/bundle\":\"agentix-bundle:test\"}},\"spec\":{\"containers\":[{\"name\":\"runtime\","
    "\"image\":\"python:3.12\",\"env\":[{\"name\":\"AGENTIX_AUTH\",\"value\":\"claim\"},"
    "{\"name\":\"AGENTIX_CLAIM_SECRET\",\"value\":\"" K8S_FAKE_CLAIM_SECRET "\"},"
    "{\"name\":\"AGENTIX_K8S_SELF_DELETE\",\"value\":\"1\"},"
    "{\"name\":\"AGENTIX_POD_NAME\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.name\"}}},"
    "{\"name\":\"AGENTIX_POD_NAMESPACE\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.namespace\"}}},"
    "{\"name\":\"AGENTIX_POD_UID\",\"valueFrom\":{\"fieldRef\":{\"fieldPath\":\"metadata.uid\"}}}],"
    "\"ports\":[{\"name\":\"runtime\",\"containerPort\":8000}]}]}}}}";

void k8s_fake_start(k8s_fake *f, const char *dir, int tls, int replicas, const char *manifest)
{
    k8s_fake_start_server(f, dir, tls, replicas, manifest, AGX_TEST_SERVER);
}

void k8s_fake_start_server(k8s_fake *f, const char *dir, int tls, int replicas,
                           const char *manifest, const char *server)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    f->tls = tls;
    char cmd[2048], portfile[600], rs[600], reps[16], certs[600], rot[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    CHECK(system(cmd) == 0);
    snprintf(certs, sizeof certs, "%s/certs", dir);
    if (tls) {
        snprintf(cmd, sizeof cmd, "sh '%s' '%s'", AGX_MAKE_CERTS, certs);
        CHECK_MSG(system(cmd) == 0, "openssl could not make the test CA (is openssl installed?)");
    }
    snprintf(portfile, sizeof portfile, "%s/port", dir);
    snprintf(rot, sizeof rot, "%s/rotating-token", dir); /* accepted while it exists */
    snprintf(rs, sizeof rs, "%s", manifest ? manifest : "");
    if (!manifest) {
        snprintf(rs, sizeof rs, "%s/pool.json", dir);
        write_file(rs, pool_rs);
    }
    snprintf(reps, sizeof reps, "%d", replicas);
    const char *argv[64] = {AGX_PYTHON, AGX_FAKE_K8S, "--port-file", portfile, "--server",
                            server, "--module-path", AGX_TEST_MODULES, "--replicaset", rs,
                            "--replicas", reps, "--token", K8S_FAKE_TOKEN, "--token-file", rot};
    size_t n = 16;
    if (tls) {
        argv[n++] = "--tls-dir";
        argv[n++] = certs;
    }
    argv[n] = NULL;
    CHECK(posix_spawn(&f->pid, argv[0], NULL, NULL, (char *const *)argv, environ) == 0);
    /* Bounds for a loaded machine (sanitizer builds beside other jobs on 2 cores): python starts
     * in well under a second and each pod's server in a fraction of one when the machine is idle. */
    for (int i = 0; i < 2400; i++) {
        FILE *pf = fopen(portfile, "r");
        if (pf) {
            CHECK(fscanf(pf, "%d", &f->port) == 1);
            fclose(pf);
            break;
        }
        int st;
        CHECK_MSG(waitpid(f->pid, &st, WNOHANG) == 0, "fake_k8s.py exited early");
        sleep_ms(50);
    }
    CHECK_MSG(f->port > 0, "fake_k8s.py did not start within 120 s");
    snprintf(f->server, sizeof f->server, "%s://127.0.0.1:%d", tls ? "https" : "http", f->port);
    /* The pool is warm once every replica is idle and Ready. */
    for (int i = 0; i < 3600 && k8s_fake_count(f, "idle") < replicas; i++)
        sleep_ms(50);
    CHECK_MSG(k8s_fake_count(f, "idle") >= replicas, "the fake's pool did not warm up in 180 s");
}

void k8s_fake_stop(k8s_fake *f)
{
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 400; i++) {
        if (waitpid(f->pid, &st, WNOHANG) == f->pid) {
            f->pid = 0;
            return;
        }
        sleep_ms(50);
    }
    kill(f->pid, SIGKILL);
    waitpid(f->pid, &st, 0);
    f->pid = 0;
    CHECK_MSG(0, "fake_k8s.py did not stop within 20 s of SIGTERM");
}

void k8s_fake_kubeconfig(const k8s_fake *f, const char *name, const char *user_yaml, char *path,
                         size_t cap)
{
    char text[4096], ca[700];
    snprintf(path, cap, "%s/%s", f->dir, name);
    snprintf(ca, sizeof ca, "    certificate-authority: certs/ca.crt\n");
    snprintf(text, sizeof text,
             "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n"
             "  cluster:\n    server: %s\n%s"
             "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
             "    namespace: default\n"
             "users:\n- name: tester\n  user:\n%s",
             f->server, f->tls ? ca : "", user_yaml);
    write_file(path, text);
}

void k8s_fake_use(const char *kubeconfig)
{
    setenv("AGENTIX_K8S_KUBECONFIG", kubeconfig, 1);
    setenv("AGENTIX_K8S_POOL", "test", 1);
    setenv("AGENTIX_K8S_CLAIM_SECRET", K8S_FAKE_CLAIM_SECRET, 1);
}

typedef struct buf {
    char *data;
    size_t len;
} buf;

static size_t collect(char *p, size_t s, size_t n, void *u)
{
    buf *b = u;
    char *d = realloc(b->data, b->len + s * n + 1);
    if (!d)
        return 0;
    memcpy(d + b->len, p, s * n);
    b->len += s * n;
    d[b->len] = '\0';
    b->data = d;
    return s * n;
}

json_t *k8s_fake_hook(const k8s_fake *f, const char *path, const char *body)
{
    char url[512], ca[600];
    snprintf(url, sizeof url, "%s%s", f->server, path);
    snprintf(ca, sizeof ca, "%s/certs/ca.crt", f->dir);
    CURL *h = curl_easy_init();
    CHECK(h);
    buf b = {NULL, 0};
    struct curl_slist *hd = curl_slist_append(NULL, "Authorization: Bearer " K8S_FAKE_TOKEN);
    hd = curl_slist_append(hd, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    /* Generous: the fake is one Python process answering over TLS, which a loaded machine (the
     * chaos tests run five backends at once on two cores) was seen keeping past 10 s. */
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    if (f->tls)
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    CHECK_MSG(rc == CURLE_OK && status == 200, "fake hook %s: curl %d, HTTP %ld", path, rc, status);
    json_t *doc = json_loads(b.data ? b.data : "{}", 0, NULL);
    free(b.data);
    CHECK(doc);
    return doc;
}

int k8s_fake_count(const k8s_fake *f, const char *state)
{
    json_t *st = k8s_fake_hook(f, "/fake/stats", NULL), *pod;
    size_t i;
    int n = 0;
    json_array_foreach(json_object_get(st, "pods"), i, pod) {
        const char *s = json_string_value(json_object_get(json_object_get(pod, "labels"), "agentix.dev/state"));
        const char *phase = json_string_value(json_object_get(pod, "phase"));
        int ready = json_is_true(json_object_get(pod, "ready"));
        if (s && strcmp(s, state) == 0 && !json_is_true(json_object_get(pod, "terminating")) &&
            (strcmp(state, "idle") != 0 || (phase && strcmp(phase, "Running") == 0 && ready)))
            n++;
    }
    json_decref(st);
    return n;
}
