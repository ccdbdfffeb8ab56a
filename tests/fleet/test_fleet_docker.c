/* test_fleet_docker.c — the fleet scenarios (fleet_scenarios.c) over the `docker` backend with a
 * real runtime bundle made by `agentix build --docker` in the Debian test image: a runtime is
 * "killed" with `docker kill`, leftovers are counted with the docker CLI by the run's label.
 * Needs dockerd and the test images (tests/docker/README.md); fails, never skips, without. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "docker_count.h"
#include "fleet_scenarios.h"

#define DEBIAN "agx-test-debian:12"
#define BUNDLE "agx-test-bundle-fleet:" AGX_TEST_BUNDLE_TAG

static agx_sandbox_config *docker_config(void)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_image(cfg, DEBIAN) == 0 &&
          agx_sandbox_config_set_bundle(cfg, BUNDLE) == 0 &&
          agx_sandbox_config_set_timeout_ms(cfg, 120000) == 0);
    return cfg;
}

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    return n > 0 && n < 100 && strspn(id, "0123456789abcdef") == n;
}

static void docker_kill(const char *id)
{
    CHECK(valid_id(id));
    char cmd[300];
    snprintf(cmd, sizeof cmd, "docker kill %s >/dev/null", id);
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
    /* Returns once the container has stopped; it may already be deleted by then (whoever saw
     * the runtime die may delete it at once), which is fine: its runtime is gone either way. */
    snprintf(cmd, sizeof cmd, "docker wait %s >/dev/null 2>&1", id);
    int ignored = system(cmd);
    (void)ignored;
}

static size_t docker_count(const char *run)
{
    return (size_t)agx_test_docker_count("agentix.run", run);
}

static size_t docker_count_started(const char *run)
{
    return (size_t)agx_test_docker_count_in("agentix.run", run, 1);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--child") != 0) {
        CHECK_MSG(system("'" AGX_CLI "' build --name " BUNDLE " --docker --quiet >/dev/null") == 0,
                  "agentix build --docker failed");
        CHECK_MSG(system("sh '" AGX_DOCKER_TEST_DIR "/retire_carriers.sh' " BUNDLE) == 0,
                  "retire_carriers.sh failed");
    }
    fleet_harness h = {.backend = "docker", .config = docker_config, .kill_server = docker_kill,
                       .count_run = docker_count, .count_started = docker_count_started,
                       .scale = 6, .mid_create_fleet = 20};
    return fleet_scenarios_main(&h, argc, argv);
}
