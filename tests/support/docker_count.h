/* docker_count.h — how the docker-backed tests count what is left: containers (any state) carrying
 * a label, asked of the docker CLI rather than of the code under test, so a leak the backend's own
 * list would miss still fails the test; and how they sweep what crashed runs left. */
#ifndef AGX_TEST_DOCKER_COUNT_H
#define AGX_TEST_DOCKER_COUNT_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agentix/deployment.h"
#include "check.h"

/* Containers labelled key=value (value: letters, digits and . - _ : / only, as in run ids and image
 * names, so it is safe inside the shell command): in any state, or only running ones. */
static inline int agx_test_docker_count_in(const char *key, const char *value, int running_only);
static inline int agx_test_docker_count(const char *key, const char *value)
{
    return agx_test_docker_count_in(key, value, 0);
}

static inline int agx_test_docker_count_in(const char *key, const char *value, int running_only)
{
    for (const char *c = value; *c; c++)
        CHECK_MSG((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '.' || *c == '-' || *c == '_' || *c == ':' || *c == '/',
                  "label value '%s' is not a plain token", value);
    char cmd[512], line[256];
    int len = snprintf(cmd, sizeof cmd, "docker ps -q%s --filter 'label=%s=%s'",
                       running_only ? "" : "a", key, value);
    CHECK(len > 0 && (size_t)len < sizeof cmd);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    int n = 0;
    while (fgets(line, sizeof line, p))
        n++;
    CHECK(pclose(p) == 0);
    return n;
}

/* Sandboxes of earlier runs whose process died (a crashed test cannot delete its sandboxes) are
 * deleted through dep, found the way a leak sweeper finds them: containers carrying label_key
 * whose agentix.owner=<host>:<pid> names this host and no live process. Live runs are left alone.
 * label_key: letters, digits and '.' only. */
static inline void agx_test_docker_sweep_dead(agx_deployment *dep, const char *label_key)
{
    char host[256] = "", line[512], cmd[512];
    CHECK(gethostname(host, sizeof host - 1) == 0);
    CHECK(strspn(label_key, "abcdefghijklmnopqrstuvwxyz0123456789.") == strlen(label_key));
    snprintf(cmd, sizeof cmd, "docker ps -a --filter label=%s "
             "--format '{{.ID}} {{.Label \"agentix.owner\"}}'", label_key);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    while (fgets(line, sizeof line, p)) {
        char id[128], owner[320];
        if (sscanf(line, "%127s %319s", id, owner) != 2)
            continue;
        char *colon = strrchr(owner, ':');
        if (!colon || (size_t)(colon - owner) != strlen(host) || strncmp(owner, host, strlen(host)))
            continue;
        pid_t pid = (pid_t)atol(colon + 1);
        if (pid <= 0 || kill(pid, 0) == 0 || errno != ESRCH)
            continue;
        agx_error err;
        fprintf(stderr, "sweeping %s of dead test process %d\n", id, (int)pid);
        CHECK_OK(agx_deployment_delete(dep, id, &err), &err);
    }
    CHECK(pclose(p) == 0);
}

#endif
