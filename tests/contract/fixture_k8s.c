/* fixture_k8s.c — the contract suite's fixture for `k8s-pool`: the stateful fake API server
 * (tests/fakes/k8s, TLS, a bearer token) whose simulated kubelet runs a bundle-shaped copy of this
 * build's runtime per pod, a warm pool smaller than the concurrency scenario so claims wait for
 * refills. The world's own account of what is left is the fake's count of claimed pods. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "contract.h"
#include "k8s_fake.h"

static k8s_fake fake;
static char bin[1024], dir[768];

static void setup(void)
{
    const char *server = contract_bundle_tree("k8s", bin, sizeof bin);
    snprintf(dir, sizeof dir, "%s/k8s-%d", AGX_CONTRACT_WORK, (int)getpid());
    k8s_fake_start_server(&fake, dir, 1, 4, NULL, server);
    char kc[900];
    k8s_fake_kubeconfig(&fake, "kc-token", "    token: " K8S_FAKE_TOKEN "\n", kc, sizeof kc);
    k8s_fake_use(kc);
}

static void teardown(void)
{
    k8s_fake_stop(&fake);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static void config(agx_sandbox_config *cfg)
{
    (void)cfg; /* the pool's pod template holds image and bundle */
}

static int leftovers(void)
{
    return k8s_fake_count(&fake, "claimed");
}

/* The claim swaps in an image the kubelet cannot pull: the claimed pod must be given up. */
static int failing_create(agx_sandbox_config *cfg, const char **what)
{
    *what = "a claimed pod whose new image cannot be pulled (ErrImagePull)";
    json_decref(k8s_fake_hook(&fake, "/fake/config",
                              "{\"fail_images\":[\"registry.example/contract-missing:1\"]}"));
    CHECK(agx_sandbox_config_set_image(cfg, "registry.example/contract-missing:1") == 0);
    return AGX_ERR_BACKEND;
}

const contract_fixture contract_k8s = {
    .backend = "k8s-pool",
    .honours = AGX_CONFIG_IMAGE | AGX_CONFIG_BUNDLE,
    .concurrency = 6,
    .setup = setup,
    .teardown = teardown,
    .config = config,
    .leftovers = leftovers,
    .failing_create = failing_create,
    .bundle_bin = bin,
};
