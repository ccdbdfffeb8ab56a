/* contract_bundle.c — a bundle-shaped tree for the fakes (see contract.h): the fakes run their
 * "sandboxes" from a server path, so pointing them at a copy of this build's runtime laid out as
 * a bundle (docs/BUNDLES.md) is what a template or pool image built from a bundle looks like to
 * the runtime. The real bundle, with its own loader, is the docker fixture's. */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "contract.h"

const char *contract_bundle_tree(const char *name, char *bin, size_t n)
{
    static char server[1024];
    char dir[768], cmd[4096];
    snprintf(dir, sizeof dir, "%s/bundle-%s", AGX_CONTRACT_WORK, name);
    int len = snprintf(cmd, sizeof cmd,
                       "set -e; rm -rf '%1$s'; mkdir -p '%1$s/lib/agentix/bin' '%1$s/bin'; "
                       "cp '" AGX_RUNTIME_DIR "/agentix-server' '" AGX_RUNTIME_DIR "/agentix-worker' "
                       "'%1$s/lib/agentix/bin/'; ln -s '" AGX_BUILTIN_MODULES "' "
                       "'%1$s/lib/agentix/modules'; cp '" AGX_CONTRACT_TOOL "' '%1$s/bin/'; "
                       "printf '# agentix bundle (contract suite)\\nformat = 1\\nname = contract\\n"
                       "prefix = %1$s\\n' > '%1$s/BUNDLE'", dir);
    CHECK(len > 0 && (size_t)len < sizeof cmd);
    CHECK_MSG(system(cmd) == 0, "could not lay out the bundle tree %s", dir);
    snprintf(server, sizeof server, "%s/lib/agentix/bin/agentix-server", dir);
    snprintf(bin, n, "%s/bin", dir);
    return server;
}
