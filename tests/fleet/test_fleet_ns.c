/* test_fleet_ns.c — the fleet scenarios (fleet_scenarios.c) over the `ns` backend: sandboxes from
 * agx-test-busybox:1 with a bundle folder from `agentix build --output`, under a private
 * AGENTIX_NS_ROOT; a runtime is "killed" by SIGKILL to the sandbox's PID 1 (which ends its PID
 * namespace), and leftovers are counted from the records on disk. Needs what `ctest -L ns` needs
 * (root, cgroups, dockerd for the image); fails, never skips, without. */
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fleet_scenarios.h"

/* One state folder per build tree: trees built side by side (release, sanitizers) may run this
 * test at the same time and must not rebuild each other's bundle under a running fleet. */
#define ROOT "/var/tmp/agx-ns-fleet-" AGX_TEST_BUNDLE_TAG

static agx_sandbox_config *ns_config(void)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_image(cfg, "agx-test-busybox:1") == 0 &&
          agx_sandbox_config_set_bundle(cfg, ROOT "/bundle") == 0 &&
          agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    return cfg;
}

static json_t *record(const char *id)
{
    char path[1024];
    snprintf(path, sizeof path, ROOT "/sandboxes/%s/sandbox.json", id);
    return json_load_file(path, 0, NULL);
}

static void ns_kill(const char *id)
{
    json_t *doc = record(id);
    CHECK_MSG(doc, "no record for %s", id);
    pid_t pid = (pid_t)json_integer_value(json_object_get(doc, "pid"));
    json_decref(doc);
    CHECK(pid > 1);
    CHECK(kill(pid, SIGKILL) == 0);
    /* Gone once its /proc entry is (it is reaped by its host process's delete or by nobody:
     * either way the runtime no longer answers). */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/pid", (int)pid);
    for (int i = 0; i < 1000 && access(path, F_OK) == 0; i++)
        usleep(10 * 1000);
}

static size_t ns_count(const char *run)
{
    DIR *d = opendir(ROOT "/sandboxes");
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        json_t *doc = record(e->d_name);
        const char *r =
            json_string_value(json_object_get(json_object_get(doc, "labels"), "agentix.run"));
        n += r && strcmp(r, run) == 0;
        json_decref(doc);
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--child") != 0) {
        setenv("AGENTIX_NS_ROOT", ROOT, 1);
        CHECK_MSG(system("mkdir -p " ROOT " && rm -rf " ROOT "/bundle && '" AGX_CLI "' build "
                         "--name agx-ns-fleet:1 --output " ROOT "/bundle --quiet >/dev/null") == 0,
                  "agentix build --output failed");
    }
    fleet_harness h = {.backend = "ns", .config = ns_config, .kill_server = ns_kill,
                       .count_run = ns_count, .scale = 6, .mid_create_fleet = 12};
    return fleet_scenarios_main(&h, argc, argv);
}
