/* test_second_copy — a program that carries the host library's internals (agx_host, linked
 * statically, the way only tests do) and loads a backend, which brings libagentix.so with it:
 * discovery must refuse, since the process would hold two plugin and owner registries. */
#include <stdlib.h>

#include "agentix/deployment.h"
#include "check.h"

int main(void)
{
    setenv("AGENTIX_PLUGIN_PATH", AGX_TEST_PLUGINDIR, 1);
    agx_deployment *dep = NULL;
    agx_error err;
    int rc = agx_load_deployment("local", &dep, &err);
    CHECK_MSG(rc == AGX_ERR_ABI, "expected ABI, got %s: %s", agx_error_code_name(rc), err.message);
    CHECK(dep == NULL);
    CHECK_CONTAINS(err.message, "brings its own libagentix");
    return 0;
}
