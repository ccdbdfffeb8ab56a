/* test_docker.c — the docker backend against a real dockerd and the backend contract: lifecycle in
 * both test images (agx-test-debian:12, agx-test-busybox:1), host networking, 20 concurrent
 * sandboxes, and every failure path (daemon unreachable, missing image, a bundle that is not a
 * bundle, runtimes that exit, cannot run or never answer) each leaving no container behind.
 *
 * Bundles are hand-made (make_bundle.sh) around standin_runtime.c until `agentix build` lands.
 * Every sandbox carries agentix.test.run=<random per run>, and leftovers are counted with the
 * docker CLI (independent of the backend's own list). No daemon → the test fails, never skips. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/deployment.h"
#include "check.h"
#include "docker_count.h"
#include "agentix/backend/http.h"
#include "agentix/backend/labels.h"
#include "agentix/clock.h"

#define DEBIAN "agx-test-debian:12"
#define BUSYBOX "agx-test-busybox:1"
#define MISSING_IMAGE "127.0.0.1:1/agx-test-missing:1" /* a registry that refuses at once */
#define CONCURRENT 20

static char run_id[2 * 8 + 1];
static char bundle_ok[256], bundle_exit[256], bundle_hang[256], bundle_dyn[256];
static agx_deployment *dep;

/* ---- helpers ---- */

static void make_bundle(const char *repo, const char *server, const char *tag, char *out, size_t n)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "sh '%s/make_bundle.sh' '%s' '%s' %s", AGX_TEST_SOURCE_DIR, repo,
             server, tag ? tag : "");
    FILE *p = popen(cmd, "r");
    CHECK_MSG(p && fgets(out, (int)n, p), "make_bundle.sh %s failed", repo);
    out[strcspn(out, "\n")] = '\0';
    CHECK_MSG(pclose(p) == 0 && out[0], "make_bundle.sh %s failed", repo);
}

static int leftovers(void) { return agx_test_docker_count("agentix.test.run", run_id); }

static agx_sandbox_config *config(const char *image, const char *bundle)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg);
    CHECK(agx_sandbox_config_set_image(cfg, image) == 0);
    CHECK(agx_sandbox_config_set_bundle(cfg, bundle) == 0);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.test.run", run_id) == 0);
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "AGX_TEST_ENV", "from-config") == 0);
    return cfg;
}

/* GET url (with the sandbox token as a bearer when token != NULL); returns the status. */
static long http_get(const char *url, const char *token, char *body, size_t n)
{
    agx_kv *h = agx_kv_new();
    char auth[128];
    if (token) {
        snprintf(auth, sizeof auth, "Bearer %s", token);
        CHECK(agx_kv_set(h, "Authorization", auth) == 0);
    }
    agx_http_request req = {.method = "GET", .url = url, .headers = h, .timeout_ms = 10000};
    agx_http_response resp;
    agx_error err;
    int rc = agx_http_perform(&req, &resp, &err);
    long status = rc ? -1 : resp.status;
    snprintf(body, n, "%s", rc ? err.message : resp.body);
    agx_http_response_clear(&resp);
    agx_kv_free(h);
    return status;
}

/* The runtime answers, inside the expected image, and only with the sandbox's token. */
static void check_runtime(const agx_sandbox *sb, const char *os_id)
{
    char url[160], body[512];
    snprintf(url, sizeof url, "%s/health", agx_sandbox_runtime_url(sb));
    CHECK_MSG(http_get(url, NULL, body, sizeof body) == 200, "%s: %s", url, body);
    snprintf(url, sizeof url, "%s/info", agx_sandbox_runtime_url(sb));
    CHECK_MSG(http_get(url, agx_sandbox_token(sb), body, sizeof body) == 200, "%s: %s", url, body);
    CHECK_CONTAINS(body, os_id);
    CHECK_CONTAINS(body, "uid=0");
    CHECK(http_get(url, "0123456789abcdef0123456789abcdef", body, sizeof body) == 401);
}

static void docker_inspect(const char *id, const char *format, char *out, size_t n)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "docker inspect --format '%s' %s", format, id);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    out[0] = '\0';
    CHECK(fgets(out, (int)n, p) != NULL);
    out[strcspn(out, "\n")] = '\0';
    CHECK(pclose(p) == 0);
}

/* A runtime that never answers: create fails with TIMEOUT saying so, and leaves nothing. The
 * budget must let a loaded machine create and start the container first, so that the wait that
 * runs out is the health wait: under ASan beside two CPU hogs the start alone took over 14.6 s.
 * A budget that ran out earlier (still a TIMEOUT that leaves nothing) is doubled, up to 60 s. */
static void expect_health_timeout(void)
{
    for (int budget = 15000;; budget *= 2) {
        agx_sandbox_config *cfg = config(DEBIAN, bundle_hang);
        CHECK(agx_sandbox_config_set_timeout_ms(cfg, budget) == 0);
        agx_sandbox *sb = NULL;
        agx_error err;
        int rc = agx_deployment_create(dep, cfg, &sb, &err);
        agx_sandbox_config_free(cfg);
        fprintf(stderr, "   -> %d ms: %s: %s\n", budget, agx_error_code_name(rc), err.message);
        CHECK_MSG(rc == AGX_ERR_TIMEOUT && sb == NULL, "expected TIMEOUT, got %s: %s",
                  agx_error_code_name(rc), err.message);
        CHECK_MSG(leftovers() == 0, "a failed create left a container behind");
        /* Its log line (hang-standin: …) may not be written yet when a busy machine starts the
         * container late, so the message is what is checked. */
        if (strstr(err.message, "did not answer /health") ||
            strstr(err.detail, "did not answer /health"))
            return;
        CHECK_MSG(budget < 60000, "create never reached the health wait within 60 s: %s",
                  err.message);
    }
}

/* create must fail with `code`, say `needle` in its message (or detail), and leave nothing. */
static void expect_create_fails(agx_sandbox_config *cfg, int code, const char *needle)
{
    agx_sandbox *sb = NULL;
    agx_error err;
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    fprintf(stderr, "   -> %s: %s\n      detail: %.200s\n", agx_error_code_name(rc), err.message,
            err.detail);
    CHECK_MSG(rc == code, "expected %s, got %s: %s", agx_error_code_name(code),
              agx_error_code_name(rc), err.message);
    CHECK(sb == NULL);
    if (!strstr(err.message, needle))
        CHECK_CONTAINS(err.detail, needle);
    CHECK_MSG(leftovers() == 0, "a failed create left a container behind");
    agx_sandbox_config_free(cfg);
}

/* ---- tests ---- */

static void test_unreachable_daemon(void)
{
    agx_deployment *d = NULL;
    agx_error err;
    setenv("DOCKER_HOST", "unix:///nonexistent/agx-docker.sock", 1);
    CHECK(agx_load_deployment("docker", &d, &err) == AGX_ERR_UNAVAILABLE && !d);
    CHECK_CONTAINS(err.message, "DOCKER_HOST=unix:///nonexistent/agx-docker.sock");
    setenv("DOCKER_HOST", "tcp://127.0.0.1:1", 1); /* nothing listens on port 1 */
    CHECK(agx_load_deployment("docker", &d, &err) == AGX_ERR_UNAVAILABLE && !d);
    CHECK_CONTAINS(err.message, "DOCKER_HOST");
    setenv("DOCKER_HOST", "ssh://somewhere", 1);
    CHECK(agx_load_deployment("docker", &d, &err) == AGX_ERR_INVALID_ARGUMENT && !d);
    CHECK_CONTAINS(err.message, "DOCKER_HOST");
    setenv("DOCKER_HOST", "tcp://192.0.2.1:2375", 1); /* never contacted: refused while parsing */
    CHECK(agx_load_deployment("docker", &d, &err) == AGX_ERR_INVALID_ARGUMENT && !d);
    unsetenv("DOCKER_HOST");
    setenv("AGENTIX_DOCKER_NETWORK", "overlay", 1);
    CHECK(agx_load_deployment("docker", &d, &err) == AGX_ERR_INVALID_ARGUMENT && !d);
    CHECK_CONTAINS(err.message, "AGENTIX_DOCKER_NETWORK");
    unsetenv("AGENTIX_DOCKER_NETWORK");
}

static void lifecycle(const char *image, const char *os_id, int host_network)
{
    agx_sandbox_config *cfg = config(image, bundle_ok);
    if (host_network) {
        CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "docker.network", "host") == 0);
        CHECK(agx_sandbox_config_set_platform(cfg, "linux/amd64") == 0);
    }
    CHECK(agx_sandbox_config_set_cpus(cfg, 0.5) == 0);
    CHECK(agx_sandbox_config_set_memory(cfg, 256u << 20) == 0);
    agx_sandbox *sb = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    agx_sandbox_config_free(cfg);
    const char *id = agx_sandbox_id(sb);
    CHECK(strlen(id) == 64);
    CHECK_STREQ(agx_sandbox_backend(sb), "docker");
    CHECK(strncmp(agx_sandbox_runtime_url(sb), "http://127.0.0.1:", 17) == 0);
    CHECK(agx_sandbox_token(sb) && strlen(agx_sandbox_token(sb)) == 32);
    check_runtime(sb, os_id);

    /* What the engine was asked for: bundle read-only from the carrier, port on loopback only,
     * labels, resources. */
    char got[512];
    docker_inspect(id, "{{json .HostConfig.VolumesFrom}}", got, sizeof got);
    CHECK_CONTAINS(got, "agentix-carrier-");
    CHECK_CONTAINS(got, ":ro\"");
    docker_inspect(id, "{{json .HostConfig.PortBindings}}", got, sizeof got);
    if (host_network)
        CHECK(strstr(got, "8000") == NULL);
    else
        CHECK_CONTAINS(got, "\"HostIp\":\"127.0.0.1\"");
    docker_inspect(id, "{{index .Config.Labels \"agentix.sandbox\"}} {{index .Config.Labels "
                       "\"agentix.bundle\"}} {{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}",
                   got, sizeof got);
    char want[512];
    snprintf(want, sizeof want, "1 %s 500000000 268435456", bundle_ok);
    CHECK_STREQ(got, want);

    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, id, &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), "agentix.test.run"), run_id);
    /* The ownership record agx_deployment_create stamps: owner, run, nonce, expiry. */
    CHECK(agx_kv_get(agx_sandbox_info_labels_const(info), AGX_LABEL_OWNER_PID) != NULL);
    CHECK(agx_kv_get(agx_sandbox_info_labels_const(info), AGX_LABEL_OWNER_START) != NULL);
    CHECK(agx_kv_get(agx_sandbox_info_labels_const(info), AGX_LABEL_RUN) != NULL);
    CHECK(agx_kv_get(agx_sandbox_info_labels_const(info), AGX_LABEL_CREATE) != NULL);
    CHECK(agx_label_unix_ms(agx_kv_get(agx_sandbox_info_labels_const(info), AGX_LABEL_EXPIRES)) >
          agx_clock_wall_ms());
    CHECK(agx_sandbox_info_expires_at(info) == 0); /* running: the runtime holds its expiry */
    CHECK(agx_sandbox_info_created_at(info) > 0);
    CHECK_STREQ(agx_sandbox_info_runtime_url(info), agx_sandbox_runtime_url(sb));
    agx_sandbox_info_free(info);

    agx_kv *filter = agx_kv_new();
    CHECK(agx_kv_set(filter, "agentix.test.run", run_id) == 0);
    agx_sandbox_list *list = NULL;
    CHECK_OK(agx_deployment_list(dep, filter, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1);
    CHECK_STREQ(agx_sandbox_info_id(agx_sandbox_list_at(list, 0)), id);
    agx_sandbox_list_free(list);

    CHECK_OK(agx_deployment_delete(dep, id, &err), &err);
    CHECK_OK(agx_deployment_get(dep, id, &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    CHECK_OK(agx_deployment_delete(dep, id, &err), &err); /* gone already: success */
    CHECK_OK(agx_deployment_list(dep, filter, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 0);
    agx_sandbox_list_free(list);
    agx_kv_free(filter);
    agx_sandbox_free(sb);
    CHECK(leftovers() == 0);
}

static void test_lifecycle_debian(void) { lifecycle(DEBIAN, "ID=debian", 0); }
static void test_lifecycle_busybox(void) { lifecycle(BUSYBOX, "ID=busybox", 0); }
static void test_lifecycle_host_network(void) { lifecycle(DEBIAN, "ID=debian", 1); }

/* get/delete never touch containers that are not agentix sandboxes, even when asked to. */
static void test_foreign_container(void)
{
    char cmd[256], id[128];
    snprintf(cmd, sizeof cmd, "docker create --label agentix.test.run=%s %s true", run_id, BUSYBOX);
    FILE *p = popen(cmd, "r");
    CHECK(p && fgets(id, sizeof id, p));
    CHECK(pclose(p) == 0);
    id[strcspn(id, "\n")] = '\0';
    agx_error err;
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, id, &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    CHECK_OK(agx_deployment_delete(dep, id, &err), &err);
    CHECK(leftovers() == 1);
    snprintf(cmd, sizeof cmd, "docker rm -f %s >/dev/null", id);
    CHECK(system(cmd) == 0);
    CHECK(agx_deployment_delete(dep, "../etc", &err) == AGX_ERR_INVALID_ARGUMENT);
}

typedef struct worker {
    pthread_t thread;
    int index;
    int failed;
    agx_error err;
} worker;

static char bundle_race[256]; /* new to the daemon: the concurrent creates race for its carrier */

static void *concurrent_one(void *arg)
{
    worker *w = arg;
    agx_sandbox_config *cfg = config(w->index % 2 ? BUSYBOX : DEBIAN, bundle_race);
    agx_sandbox *sb = NULL;
    w->failed = agx_deployment_create(dep, cfg, &sb, &w->err);
    agx_sandbox_config_free(cfg);
    if (w->failed)
        return NULL;
    check_runtime(sb, w->index % 2 ? "ID=busybox" : "ID=debian");
    w->failed = agx_deployment_delete(dep, agx_sandbox_id(sb), &w->err);
    agx_sandbox_free(sb);
    return NULL;
}

static void test_concurrent(void)
{
    make_bundle("agx-test-bundle-race", AGX_STANDIN_STATIC, run_id, bundle_race,
                sizeof bundle_race);
    worker w[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++) {
        w[i] = (worker){.index = i};
        CHECK(pthread_create(&w[i].thread, NULL, concurrent_one, &w[i]) == 0);
    }
    int failures = 0;
    for (int i = 0; i < CONCURRENT; i++) {
        pthread_join(w[i].thread, NULL);
        if (w[i].failed) {
            failures++;
            fprintf(stderr, "sandbox %d: %s: %s\n  %s\n", i, agx_error_code_name(w[i].failed),
                    w[i].err.message, w[i].err.detail);
        }
    }
    CHECK(failures == 0);
    agx_kv *filter = agx_kv_new();
    CHECK(agx_kv_set(filter, "agentix.test.run", run_id) == 0);
    agx_sandbox_list *list = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_list(dep, filter, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 0);
    agx_sandbox_list_free(list);
    agx_kv_free(filter);
    CHECK(leftovers() == 0);
    char label[320], cmd[1024];
    snprintf(label, sizeof label, "agentix.bundle=%s", bundle_race);
    CHECK_MSG(agx_test_docker_count("agentix.bundle", bundle_race) == 1,
              "expected exactly one carrier for %s", bundle_race);
    /* The run's bundle is retired with its carrier; shared bundles keep theirs. */
    snprintf(cmd, sizeof cmd, "docker rm $(docker ps -aq --filter 'label=%s') >/dev/null && "
             "docker rmi %s >/dev/null", label, bundle_race);
    CHECK(system(cmd) == 0);
}

static void test_failures(void)
{
    agx_sandbox_config *cfg;
    fprintf(stderr, "  task image missing, no registry\n");
    expect_create_fails(config(MISSING_IMAGE, bundle_ok), AGX_ERR_NOT_FOUND, MISSING_IMAGE);
    fprintf(stderr, "  bundle image missing\n");
    expect_create_fails(config(DEBIAN, MISSING_IMAGE), AGX_ERR_NOT_FOUND, MISSING_IMAGE);
    fprintf(stderr, "  a platform the task image is not built for\n");
    cfg = config(DEBIAN, bundle_ok);
    CHECK(agx_sandbox_config_set_platform(cfg, "linux/arm64") == 0);
    expect_create_fails(cfg, AGX_ERR_NOT_FOUND, "linux/arm64");
    fprintf(stderr, "  a bundle that is not a bundle\n");
    expect_create_fails(config(DEBIAN, BUSYBOX), AGX_ERR_INVALID_ARGUMENT, "not an agentix bundle");
    fprintf(stderr, "  a bundle path\n");
    expect_create_fails(config(DEBIAN, "/opt/bundle"), AGX_ERR_INVALID_ARGUMENT, "is a path");
    fprintf(stderr, "  no image\n");
    cfg = agx_sandbox_config_new();
    CHECK(agx_sandbox_config_set_bundle(cfg, bundle_ok) == 0);
    expect_create_fails(cfg, AGX_ERR_INVALID_ARGUMENT, "task image");
    fprintf(stderr, "  unknown option\n");
    cfg = config(DEBIAN, bundle_ok);
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "docker.netwrok", "host") == 0);
    expect_create_fails(cfg, AGX_ERR_INVALID_ARGUMENT, "docker.netwrok");
    fprintf(stderr, "  env the backend owns\n");
    cfg = config(DEBIAN, bundle_ok);
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "AGENTIX_TOKEN", "mine") == 0);
    expect_create_fails(cfg, AGX_ERR_INVALID_ARGUMENT, "AGENTIX_TOKEN");
    fprintf(stderr, "  a label that is not UTF-8\n");
    cfg = config(DEBIAN, bundle_ok);
    CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), "team", "caf\xe9") == 0);
    expect_create_fails(cfg, AGX_ERR_INVALID_ARGUMENT, "not valid UTF-8");
    fprintf(stderr, "  runtime exits at once: its log is quoted\n");
    expect_create_fails(config(DEBIAN, bundle_exit), AGX_ERR_BACKEND,
                        "exit-standin: cannot start: this runtime always fails");
    fprintf(stderr, "  task image that cannot run the runtime (no libc for a dynamic binary)\n");
    expect_create_fails(config(BUSYBOX, bundle_dyn), AGX_ERR_BACKEND, "agentix-server");
    fprintf(stderr, "  runtime never answers\n");
    expect_health_timeout();
    fprintf(stderr, "  the config's env did not arrive: the stand-in refuses, create says so\n");
    cfg = config(DEBIAN, bundle_ok);
    CHECK(agx_kv_remove(agx_sandbox_config_env(cfg), "AGX_TEST_ENV") == 0);
    expect_create_fails(cfg, AGX_ERR_BACKEND, "AGX_TEST_ENV=from-config did not arrive");
}

int main(void)
{
    agx_error err;
    unsigned char r[8];
    CHECK(getrandom(r, sizeof r, 0) == (ssize_t)sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        sprintf(run_id + 2 * i, "%02x", r[i]);
    fprintf(stderr, "run label agentix.test.run=%s\n", run_id);
    TEST_RUN(test_unreachable_daemon);
    /* The daemon must answer: the docker tests fail when it does not (scripts/setup.d/docker.sh
     * starts one). */
    CHECK_OK(agx_load_deployment("docker", &dep, &err), &err);
    agx_test_docker_sweep_dead(dep, "agentix.test.run");
    make_bundle("agx-test-bundle-standin", AGX_STANDIN_STATIC, NULL, bundle_ok, sizeof bundle_ok);
    make_bundle("agx-test-bundle-exit", AGX_TEST_SOURCE_DIR "/exit_server.sh", NULL, bundle_exit,
                sizeof bundle_exit);
    make_bundle("agx-test-bundle-hang", AGX_TEST_SOURCE_DIR "/hang_server.sh", NULL, bundle_hang,
                sizeof bundle_hang);
    make_bundle("agx-test-bundle-dynamic", AGX_STANDIN_DYNAMIC, NULL, bundle_dyn,
                sizeof bundle_dyn);
    TEST_RUN(test_lifecycle_debian);
    TEST_RUN(test_lifecycle_busybox);
    TEST_RUN(test_lifecycle_host_network);
    TEST_RUN(test_foreign_container);
    TEST_RUN(test_failures);
    TEST_RUN(test_concurrent);
    agx_deployment_free(dep);
    return 0;
}
