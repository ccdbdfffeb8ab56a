/* fixture_local.c — the contract suite's fixture for `local`: sandboxes are agentix-server
 * processes under a private AGENTIX_LOCAL_ROOT; their world's own account is that folder and the
 * processes whose working directory lies inside it (/proc), not the backend's records. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "contract.h"

static char root[1024];

static void setup(void)
{
    snprintf(root, sizeof root, "%s/local-root-XXXXXX", AGX_CONTRACT_WORK);
    CHECK(mkdtemp(root));
    setenv("AGENTIX_LOCAL_ROOT", root, 1);
    unsetenv("AGENTIX_LOCAL_SERVER"); /* the server installed beside libagentix, as hosts use it */
}

static void teardown(void)
{
    CHECK_MSG(rmdir(root) == 0, "%s is not empty after the suite", root);
}

static void config(agx_sandbox_config *cfg)
{
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "AGENTIX_MODULE_PATH", AGX_TEST_MODULES) == 0);
}

/* Processes whose cwd is below root, plus entries in root. */
static int leftovers(void)
{
    int n = 0;
    DIR *d = opendir(root);
    CHECK(d);
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    d = opendir("/proc");
    CHECK(d);
    size_t rl = strlen(root);
    while ((e = readdir(d))) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char link[300], cwd[2048];
        snprintf(link, sizeof link, "/proc/%s/cwd", e->d_name);
        ssize_t len = readlink(link, cwd, sizeof cwd - 1);
        if (len <= 0)
            continue;
        cwd[len] = '\0';
        if (strncmp(cwd, root, rl) == 0 && cwd[rl] == '/') {
            fprintf(stderr, "leftover: process %s in %s\n", e->d_name, cwd);
            n++;
        }
    }
    closedir(d);
    return n;
}

/* The real server refuses a malformed setting at start and exits: the backend has made the
 * working folder and spawned the process by then. */
static int failing_create(agx_sandbox_config *cfg, const char **what)
{
    *what = "agentix-server exits at start (AGENTIX_MAX_PAYLOAD=1 is below its minimum)";
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "AGENTIX_MAX_PAYLOAD", "1") == 0);
    return AGX_ERR_BACKEND;
}

const contract_fixture contract_local = {
    .backend = "local",
    .honours = AGX_CONFIG_ENV,
    .concurrency = 8,
    .setup = setup,
    .teardown = teardown,
    .config = config,
    .leftovers = leftovers,
    .failing_create = failing_create,
};
