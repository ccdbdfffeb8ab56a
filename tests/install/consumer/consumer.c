/* consumer.c — a host program outside the agentix tree, built against an installed agentix (via
 * pkg-config and via find_package) to prove the installed headers, library and packages work. */
#include <agentix/agentix.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what)
{
    fprintf(stderr, "consumer: %s\n", what);
    return 1;
}

int main(void)
{
    if (strcmp(agx_version(), AGX_VERSION_STRING) != 0)
        return fail("agx_version() differs from the installed header");

    agx_value *v = agx_value_map();
    if (!v || agx_value_map_set(v, "answer", agx_value_int(42)) != 0)
        return fail("building a value failed");
    agx_error err;
    char *json = NULL;
    if (agx_value_to_json(v, &json, &err) != 0)
        return fail(err.message);
    int json_ok = strstr(json, "\"answer\"") && strstr(json, "42");
    free(json);
    agx_value_free(v);
    if (!json_ok)
        return fail("value JSON lacks the field");

    agx_deployment *dep = NULL;
    int rc = agx_load_deployment("nope", &dep, &err);
    if (rc != AGX_ERR_NOT_FOUND || dep || !strstr(err.message, "no deployment backend 'nope'; available:"))
        return fail("loading an unknown backend did not fail with the NOT_FOUND listing");
    printf("consumer ok: agentix %s; %s\n", agx_version(), err.message);
    return 0;
}
