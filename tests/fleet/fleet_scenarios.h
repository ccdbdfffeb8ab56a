/* fleet_scenarios.h — the fleet/pool/map/cleanup/gc scenarios, written once and run over each
 * backend (test_fleet_local.c, test_fleet_docker.c) through a small harness. */
#ifndef AGX_TEST_FLEET_SCENARIOS_H
#define AGX_TEST_FLEET_SCENARIOS_H

#include <stddef.h>

#include "agentix/fleet.h"

typedef struct fleet_harness {
    const char *backend;               /* the real backend's name, for agx_load_deployment */
    agx_sandbox_config *(*config)(void); /* a fresh base config for this backend */
    void (*kill_server)(const char *sandbox_id); /* kill the sandbox's runtime, not through delete */
    /* Sandboxes labelled agentix.run=run, counted without the backend's list (docker CLI, or the
     * local records on disk). */
    size_t (*count_run)(const char *run);
    /* Of those, the ones whose runtime started (NULL: count_run) — what a killed host's owner
     * watch leaves for gc (docker removes the never-started ones by itself). */
    size_t (*count_started)(const char *run);
    size_t scale; /* fleet size used by the scenarios */
    /* Size of the fleet whose host is SIGKILLed in the middle of its creates (gc then deletes
     * every leftover); 0 leaves the scenario out. */
    size_t mid_create_fleet;
} fleet_harness;

/* Runs every scenario; argv lets the test re-execute itself as a child host. */
int fleet_scenarios_main(const fleet_harness *h, int argc, char **argv);

#endif
