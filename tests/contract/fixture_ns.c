/* fixture_ns.c — the contract suite's fixture for `ns`: the real kernel (namespaces, overlayfs,
 * cgroups, pasta), a real bundle from `agentix build --output DIR` (the demo module and the
 * contract tool in it), the Debian test image exported once from dockerd into the layer cache.
 * The world's own account of what is left is the kernel's: this process moves into cgroups of its
 * own, below which the backend nests every sandbox's groups, and the mounts and sandbox folders
 * of its state root are counted (ns_world.h). */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "contract.h"
#include "ns_world.h"

#define ROOT "/var/tmp/agx-ns-contract-" AGX_TEST_BUNDLE_TAG /* one per build tree */

static void setup(void)
{
    CHECK(system("mkdir -p " ROOT) == 0);
    setenv("AGENTIX_NS_ROOT", ROOT, 1);
    CHECK_MSG(system("rm -rf " ROOT "/bundle && '" AGX_CLI "' build --name agx-contract-ns "
                     "--module '" AGX_TEST_MODULES "/demo.so' --tool '" AGX_CONTRACT_TOOL
                     "' --output " ROOT "/bundle --quiet >/dev/null") == 0,
              "agentix build --output failed");
    ns_world_enter("contract");
}

static void teardown(void)
{
    ns_world_leave();
}

static void config(agx_sandbox_config *cfg)
{
    CHECK(agx_sandbox_config_set_image(cfg, "agx-test-debian:12") == 0);
    CHECK(agx_sandbox_config_set_bundle(cfg, ROOT "/bundle") == 0);
    /* Network none: every contract call, the renewal and the expiry checks go through the
     * http+unix:// runtime URL (test_ns covers the private network's TCP URL). */
    CHECK(agx_kv_set(agx_sandbox_config_options(cfg), "ns.network", "none") == 0);
}

static int leftovers(void)
{
    return ns_world_leftovers(ROOT, "contract");
}

/* The bundle's real runtime refuses a malformed setting and exits once the sandbox runs. */
static int failing_create(agx_sandbox_config *cfg, const char **what)
{
    *what = "the bundle's agentix-server exits at start (AGENTIX_MAX_PAYLOAD=1)";
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "AGENTIX_MAX_PAYLOAD", "1") == 0);
    return AGX_ERR_BACKEND;
}

const contract_fixture contract_ns = {
    .backend = "ns",
    .honours = AGX_CONFIG_IMAGE | AGX_CONFIG_BUNDLE | AGX_CONFIG_CPUS | AGX_CONFIG_MEMORY |
               AGX_CONFIG_ENV,
    .concurrency = 8,
    .setup = setup,
    .teardown = teardown,
    .config = config,
    .leftovers = leftovers,
    .failing_create = failing_create,
    .bundle_bin = "/opt/agentix/bin",
};
