/* contract.h — the backend contract suite (include/agentix/plugin.h states the contract): one set
 * of scenarios (contract.c) run against every backend through a fixture (fixture_<backend>.c).
 * A fixture brings up what its backend needs (a fake service, a bundle, the environment), says how
 * to make a working sandbox and a create that fails after the backend has begun, and looks at the
 * backend's world on its own — the docker CLI, the fake's state, /proc — rather than trusting the
 * backend's list, so a leak the backend cannot see still fails the suite.
 *
 * Flow: test_contract <backend> → fixture setup → each scenario (agx_load_deployment → create /
 * get / list / delete, calls through runtime_url) → fixture teardown (nothing left). */
#ifndef AGX_TEST_CONTRACT_H
#define AGX_TEST_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "agentix/deployment.h"

typedef struct contract_fixture {
    const char *backend;   /* the name agx_load_deployment takes */
    uint32_t honours;      /* AGX_CONFIG_* bits the backend must declare, no more, no less */
    int concurrency;       /* sandboxes created at once in the concurrency scenario */
    /* Brings up the backend's world; called once before the scenarios. */
    void (*setup)(void);
    /* Stops it, checking its own invariants (a fake's spec violations, say). */
    void (*teardown)(void);
    /* What a working sandbox needs on this backend (image, bundle, module path…). */
    void (*config)(agx_sandbox_config *cfg);
    /* Sandboxes of this run that exist by the backend's world's own account. */
    int (*leftovers)(void);
    /* Arranges that creating from cfg fails after the backend has begun making the sandbox (a
     * runtime that cannot start, a pod whose image cannot be pulled…). Returns the expected
     * code; *what names the failure for the log. */
    int (*failing_create)(agx_sandbox_config *cfg, const char **what);
    /* Undoes what failing_create arranged outside cfg (faults in a fake); may be NULL. */
    void (*after_failing)(void);
    /* The bin/ of the bundle the runtime runs from, as commands inside see it; NULL: this
     * backend runs no bundle (and refuses one). */
    const char *bundle_bin;
} contract_fixture;

extern const contract_fixture contract_local, contract_docker, contract_e2b, contract_daytona,
    contract_k8s;

/* The run's label value (agentix.contract.run=<it>), random per process: every sandbox the suite
 * creates carries it, and fixtures count leftovers by it where their world has labels. */
const char *contract_run_id(void);
#define CONTRACT_RUN_LABEL "agentix.contract.run"

/* A bundle-shaped tree for backends whose fakes run a server from a path: <dir>/lib/agentix/bin
 * holds copies of this build's agentix-server and agentix-worker, <dir>/lib/agentix/modules the
 * built-in modules, <dir>/bin the contract tool, <dir>/BUNDLE the marker. Returns the server's
 * path (static storage) and writes <dir>/bin into bin (n bytes). */
const char *contract_bundle_tree(const char *name, char *bin, size_t n);

/* The tool every bundle in the suite carries: prints CONTRACT_TOOL_SAYS. */
#define CONTRACT_TOOL "agx-contract-tool"
#define CONTRACT_TOOL_SAYS "contract tool: ok"

#endif
