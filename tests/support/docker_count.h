/* docker_count.h — how the docker-backed tests count what is left: containers (any state) carrying
 * a label, asked of the docker CLI rather than of the code under test, so a leak the backend's own
 * list would miss still fails the test. */
#ifndef AGX_TEST_DOCKER_COUNT_H
#define AGX_TEST_DOCKER_COUNT_H

#include <stdio.h>

#include "check.h"

/* Containers labelled key=value (value: letters, digits and . - _ : / only, as in run ids and image
 * names, so it is safe inside the shell command). */
static inline int agx_test_docker_count(const char *key, const char *value)
{
    for (const char *c = value; *c; c++)
        CHECK_MSG((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '.' || *c == '-' || *c == '_' || *c == ':' || *c == '/',
                  "label value '%s' is not a plain token", value);
    char cmd[512], line[256];
    int len = snprintf(cmd, sizeof cmd, "docker ps -aq --filter 'label=%s=%s'", key, value);
    CHECK(len > 0 && (size_t)len < sizeof cmd);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    int n = 0;
    while (fgets(line, sizeof line, p))
        n++;
    CHECK(pclose(p) == 0);
    return n;
}

#endif
