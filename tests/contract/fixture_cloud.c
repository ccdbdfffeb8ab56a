/* fixture_cloud.c — the contract suite's fixtures for `e2b` and `daytona`: the vendors' fakes
 * (tests/fakes/e2b, tests/fakes/daytona, requests and answers checked against the official specs),
 * whose sandboxes run a bundle-shaped copy of this build's runtime. The world's own account of
 * what is left is the fake's count of live sandboxes; teardown also requires zero spec
 * violations. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "cloud_fake.h"
#include "contract.h"

static agx_fake *fake;
static char e2b_bin[1024], daytona_bin[1024];

static void teardown(void)
{
    agx_fake_finish(fake); /* zero live sandboxes, zero spec violations */
    fake = NULL;
}

static int leftovers(void)
{
    return agx_fake_live(fake);
}

/* ---- e2b ---- */

static void e2b_setup(void)
{
    fake = agx_fake_start_e2b(100, contract_bundle_tree("e2b", e2b_bin, sizeof e2b_bin));
    setenv("E2B_API_KEY", AGX_FAKE_E2B_KEY, 1);
}

static void e2b_config(agx_sandbox_config *cfg)
{
    (void)cfg; /* the template, E2B_TEMPLATE_ID, holds the bundle */
}

/* The sandbox is placed, then its port never opens: the health wait runs out and the backend must
 * delete what it made. The bound leaves the placement itself ample time on a loaded machine. */
static int e2b_failing_create(agx_sandbox_config *cfg, const char **what)
{
    *what = "a placed sandbox whose port never opens (fault port_closed)";
    agx_fake_faults(fake, "{\"port_closed\": 1000000}");
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 15000) == 0);
    return AGX_ERR_TIMEOUT;
}

static void e2b_after_failing(void)
{
    agx_fake_faults(fake, "{\"port_closed\": 0}");
}

const contract_fixture contract_e2b = {
    .backend = "e2b",
    .honours = AGX_CONFIG_IMAGE,
    .concurrency = 8,
    .setup = e2b_setup,
    .teardown = teardown,
    .config = e2b_config,
    .leftovers = leftovers,
    .failing_create = e2b_failing_create,
    .after_failing = e2b_after_failing,
    .bundle_bin = e2b_bin,
};

/* ---- daytona ---- */

static void daytona_setup(void)
{
    fake = agx_fake_start_daytona(100, contract_bundle_tree("daytona", daytona_bin,
                                                            sizeof daytona_bin));
    setenv("DAYTONA_API_KEY", AGX_FAKE_DAYTONA_KEY, 1);
}

static void daytona_config(agx_sandbox_config *cfg)
{
    CHECK(agx_sandbox_config_set_image(cfg, "agentix") == 0); /* the snapshot */
}

/* The sandbox is created, then ends in state "error": the backend must delete it. */
static int daytona_failing_create(agx_sandbox_config *cfg, const char **what)
{
    (void)cfg;
    *what = "a created sandbox that ends in state error (fault error_state)";
    agx_fake_faults(fake, "{\"error_state\": 1}");
    return AGX_ERR_BACKEND;
}

const contract_fixture contract_daytona = {
    .backend = "daytona",
    .honours = AGX_CONFIG_IMAGE | AGX_CONFIG_CPUS | AGX_CONFIG_MEMORY | AGX_CONFIG_ENV,
    .concurrency = 8,
    .setup = daytona_setup,
    .teardown = teardown,
    .config = daytona_config,
    .leftovers = leftovers,
    .failing_create = daytona_failing_create,
    .bundle_bin = daytona_bin,
};
