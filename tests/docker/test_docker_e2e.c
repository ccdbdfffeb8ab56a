/* test_docker_e2e.c — end to end through real parts: `agentix build --docker` makes the bundle,
 * the docker backend starts it in task images with and without a libc, and the C client calls
 * agentix.bash::run "cat /etc/os-release; id" and the bundled user module's (tests/modules/demo)
 * unary, stream and bidi functions (tests/support/demo_calls.h) in each sandbox — one at a time in
 * both images, then 20 sandboxes at once — before every sandbox is deleted and no container of this run is left.
 * Needs dockerd and the test images (scripts/setup.d/docker.sh); fails, never skips, without. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "agentix/client.h"
#include "agentix/deployment.h"
#include "agentix/value.h"
#include "check.h"
#include "demo_calls.h"
#include "docker_count.h"

#define DEBIAN "agx-test-debian:12"
#define BUSYBOX "agx-test-busybox:1"
#define CONCURRENT 20
#define BUNDLE "agx-test-bundle-e2e:" AGX_TEST_BUNDLE_TAG

static char run_id[17];
static agx_deployment *dep;

static int leftovers(void) { return agx_test_docker_count("agentix.test.run", run_id); }

static const char *text(const agx_value *v)
{
    size_t len;
    const char *s = v ? agx_value_get_string(v, &len) : NULL;
    return s ? s : (const char *)(v ? agx_value_get_binary(v, &len) : NULL);
}

/* create → call → delete; 0 or the failing status with err filled. */
static int roundtrip(const char *image, const char *os_id, agx_error *err)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_image(cfg, image) == 0 &&
          agx_sandbox_config_set_bundle(cfg, BUNDLE) == 0 &&
          agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.test.run", run_id) == 0);
    agx_sandbox *sb = NULL;
    int rc = agx_session_begin(dep, cfg, &sb, err);
    agx_sandbox_config_free(cfg);
    if (rc)
        return rc;
    agx_client *c = NULL;
    agx_value *kwargs = agx_value_map(), *result = NULL;
    CHECK(kwargs && agx_value_map_set(kwargs, "command",
                                      agx_value_string("cat /etc/os-release; id")) == 0);
    /* 20 clients at once on a small machine (or under valgrind) connect slowly: the default 10 s
     * bound is for one connection on a responsive host (demo_calls.h has the test bounds). */
    rc = agx_test_connect(sb, &c, err);
    if (!rc)
        rc = agx_client_call(c, "agentix.bash::run", NULL, kwargs, AGX_TEST_CALL_MS, &result, err);
    if (!rc) {
        const char *out = text(agx_value_map_get(result, "stdout"));
        CHECK_MSG(agx_value_get_int64(agx_value_map_get(result, "exit_code")) == 0,
                  "exit code in %s: stderr %s", image, text(agx_value_map_get(result, "stderr")));
        CHECK_CONTAINS(out, os_id);
        CHECK_CONTAINS(out, "uid=0(root)");
        rc = agx_test_demo_calls(c, err); /* the user module carried in the bundle */
    }
    agx_value_free(result);
    agx_value_free(kwargs);
    agx_client_free(c);
    agx_error body_err;
    agx_error_copy(&body_err, err);
    return agx_session_end(dep, sb, rc, &body_err, err);
}

static void test_debian(void)
{
    agx_error err;
    CHECK_OK(roundtrip(DEBIAN, "ID=debian", &err), &err);
    CHECK(leftovers() == 0);
}

static void test_busybox(void)
{
    agx_error err;
    CHECK_OK(roundtrip(BUSYBOX, "ID=busybox", &err), &err);
    CHECK(leftovers() == 0);
}

typedef struct worker {
    pthread_t thread;
    int index, rc;
    agx_error err;
} worker;

static void *one(void *arg)
{
    worker *w = arg;
    w->rc = roundtrip(w->index % 2 ? BUSYBOX : DEBIAN, w->index % 2 ? "ID=busybox" : "ID=debian",
                      &w->err);
    return NULL;
}

static void test_concurrent(void)
{
    worker w[CONCURRENT];
    for (int i = 0; i < CONCURRENT; i++) {
        w[i] = (worker){.index = i};
        CHECK(pthread_create(&w[i].thread, NULL, one, &w[i]) == 0);
    }
    int failed = 0;
    for (int i = 0; i < CONCURRENT; i++) {
        pthread_join(w[i].thread, NULL);
        if (w[i].rc) {
            failed++;
            fprintf(stderr, "sandbox %d: %s: %s\n  %s\n", i, agx_error_code_name(w[i].rc),
                    w[i].err.message, w[i].err.detail);
        }
    }
    CHECK(failed == 0);
    CHECK(leftovers() == 0);
}

int main(void)
{
    unsigned char r[8];
    CHECK(getrandom(r, sizeof r, 0) == (ssize_t)sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        sprintf(run_id + 2 * i, "%02x", r[i]);
    fprintf(stderr, "run label agentix.test.run=%s\n", run_id);
    CHECK_MSG(system("'" AGX_CLI "' build --name " BUNDLE " --module '" AGX_DEMO_MODULE "' --docker --quiet >/dev/null") == 0,
              "agentix build --docker failed");
    CHECK_MSG(system("sh '" AGX_TEST_SOURCE_DIR "/retire_carriers.sh' " BUNDLE) == 0,
              "retire_carriers.sh failed");
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &dep, &err), &err);
    TEST_RUN(test_debian);
    TEST_RUN(test_busybox);
    TEST_RUN(test_concurrent);
    agx_deployment_free(dep);
    return 0;
}
