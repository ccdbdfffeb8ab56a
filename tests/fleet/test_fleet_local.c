/* test_fleet_local.c — the fleet scenarios (fleet_scenarios.c) over the `local` backend: sandboxes
 * are agentix-server processes from this build under a private AGENTIX_LOCAL_ROOT; a runtime is
 * "killed" by SIGKILL to its process group, and leftovers are counted from the records on disk. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fleet_scenarios.h"

static char root[1024];

static agx_sandbox_config *local_config(void)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    return cfg;
}

static json_t *record(const char *id)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/sandbox.json", root, id);
    return json_load_file(path, 0, NULL);
}

/* Gone, or a zombie (it holds no socket any more). */
static int dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (got <= 0)
        return 1;
    buf[got] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'Z';
}

static void local_kill(const char *id)
{
    json_t *doc = record(id);
    CHECK_MSG(doc, "no record for %s", id);
    pid_t pid = (pid_t)json_integer_value(json_object_get(doc, "pid"));
    json_decref(doc);
    CHECK(pid > 1);
    CHECK(kill(-pid, SIGKILL) == 0);
    for (int i = 0; i < 1000 && !dead(pid); i++)
        usleep(10 * 1000);
    CHECK(dead(pid));
}

static size_t local_count(const char *run)
{
    DIR *d = opendir(root);
    CHECK(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        json_t *doc = record(e->d_name);
        const char *r = json_string_value(json_object_get(json_object_get(doc, "labels"), "agentix.run"));
        n += r && strcmp(r, run) == 0;
        json_decref(doc);
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--child") != 0) {
        snprintf(root, sizeof root, "%s/fleet-root-XXXXXX", AGX_TEST_BINARY_DIR);
        CHECK(mkdtemp(root));
        setenv("AGENTIX_LOCAL_ROOT", root, 1);
    } else {
        snprintf(root, sizeof root, "%s", getenv("AGENTIX_LOCAL_ROOT"));
    }
    unsetenv("AGENTIX_LOCAL_SERVER"); /* the server beside libagentix */
    fleet_harness h = {.backend = "local", .config = local_config, .kill_server = local_kill,
                       .count_run = local_count, .scale = 6, .mid_create_fleet = 12};
    int rc = fleet_scenarios_main(&h, argc, argv);
    if (rc == 0 && (argc < 2 || strcmp(argv[1], "--child") != 0))
        CHECK_MSG(rmdir(root) == 0, "%s is not empty: %s", root, strerror(errno));
    return rc;
}
