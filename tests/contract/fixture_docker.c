/* fixture_docker.c — the contract suite's fixture for `docker`: a real dockerd, a real bundle made
 * by `agentix build --docker` (the demo module and the contract tool in it), the Debian test image
 * as task image. The world's own account of what is left is the docker CLI's, by the run label. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "contract.h"
#include "docker_count.h"

#define BUNDLE "agx-contract-bundle:" AGX_TEST_BUNDLE_TAG

static void setup(void)
{
    CHECK_MSG(system("'" AGX_CLI "' build --name " BUNDLE " --module '" AGX_TEST_MODULES
                     "/demo.so' --tool '" AGX_CONTRACT_TOOL "' --docker --quiet >/dev/null") == 0,
              "agentix build --docker failed (is dockerd up? scripts/setup.d/docker.sh)");
    CHECK_MSG(system("sh '" AGX_SOURCE_DIR "/tests/docker/retire_carriers.sh' " BUNDLE) == 0,
              "retire_carriers.sh failed");
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &dep, &err), &err);
    agx_test_docker_sweep_dead(dep, CONTRACT_RUN_LABEL);
    agx_deployment_free(dep);
}

static void teardown(void) {}

static void config(agx_sandbox_config *cfg)
{
    CHECK(agx_sandbox_config_set_image(cfg, "agx-test-debian:12") == 0);
    CHECK(agx_sandbox_config_set_bundle(cfg, BUNDLE) == 0);
}

static int leftovers(void)
{
    return agx_test_docker_count(CONTRACT_RUN_LABEL, contract_run_id());
}

/* The bundle's real runtime refuses a malformed setting and exits once its container runs. */
static int failing_create(agx_sandbox_config *cfg, const char **what)
{
    *what = "the bundle's agentix-server exits at start (AGENTIX_MAX_PAYLOAD=1)";
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "AGENTIX_MAX_PAYLOAD", "1") == 0);
    return AGX_ERR_BACKEND;
}

const contract_fixture contract_docker = {
    .backend = "docker",
    .honours = AGX_CONFIG_ALL,
    .concurrency = 8,
    .setup = setup,
    .teardown = teardown,
    .config = config,
    .leftovers = leftovers,
    .failing_create = failing_create,
    .bundle_bin = "/opt/agentix/bin",
};
