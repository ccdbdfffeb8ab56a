/* consumer_runtime.c — sandbox-side code outside the agentix tree (what a runtime module links),
 * built against an installed libagentix-runtime alone (agentix-runtime.pc, agentix::runtime): the
 * values, their codecs and errors work without libagentix and its host-side dependencies. */
#include <agentix/agentix.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
    fprintf(stderr, "consumer_runtime: %s\n", what);
    return 1;
}

int main(void)
{
    if (strcmp(agx_version(), AGX_VERSION_STRING) != 0)
        return fail("agx_version() differs from the installed header");
    agx_error err;
    agx_value *v = NULL;
    const char *json = "{\"n\": [1, 2, 3]}";
    if (agx_value_from_json(json, strlen(json), NULL, &v, &err) != 0)
        return fail(err.message);
    const agx_value *n = agx_value_map_get(v, "n");
    int ok = n && agx_value_array_len(n) == 3;
    agx_value_free(v);
    if (!ok)
        return fail("the decoded value lacks the 3-element array 'n'");
    printf("consumer_runtime ok: agentix %s\n", agx_version());
    return 0;
}
