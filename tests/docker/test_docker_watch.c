/* test_docker_watch.c — the docker backend's owner watch (backends/docker/docker_watch.c,
 * watch_main.c) against the real dockerd: a host process that loaded the backend holds a
 * container it created and never started (as a SIGKILL between the create and the start leaves
 * one) and is SIGKILLed; with no gc and no other agentix process, its watch removes that
 * container, leaves alone a never-started container of another owner and a running one of the
 * dead host, and then exits.
 *
 * Usage: test_docker_watch   (needs dockerd and agx-test-busybox:1, tests/docker/README.md) */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/agentix.h"
#include "agentix/backend/labels.h"
#include "agentix/clock.h"
#include "check.h"

#define IMAGE "agx-test-busybox:1"

static char run[40];

/* `docker create` (or run -d) of a container labelled as an agentix sandbox of run, owned by
 * the process whose owner labels are in owner. */
static void docker_container(const agx_kv *owner, const char *how, const char *tag)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "docker %s -q --label " AGX_LABEL_SANDBOX "=1 --label agentix.test.watch=%s "
             "--label agentix.test.tag=%s --label " AGX_LABEL_OWNER_HOST "=%s --label "
             AGX_LABEL_OWNER_PID "=%s --label " AGX_LABEL_OWNER_START "=%s " IMAGE " sleep 600 "
             ">/dev/null",
             how, run, tag, agx_kv_get(owner, AGX_LABEL_OWNER_HOST),
             agx_kv_get(owner, AGX_LABEL_OWNER_PID), agx_kv_get(owner, AGX_LABEL_OWNER_START));
    CHECK_MSG(system(cmd) == 0, "%s", cmd);
}

/* The host: loads the docker backend (its watch starts), makes its containers, waits to be
 * killed. */
static int host_main(int ready_fd)
{
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &dep, &err), &err);
    agx_kv *me = agx_kv_new();
    CHECK(me && agx_owner_labels_set(me, NULL, &err) == 0);
    docker_container(me, "create", "mine-unstarted");
    docker_container(me, "run -d", "mine-running");
    CHECK(write(ready_fd, "r", 1) == 1);
    pause();
    return 0;
}

static int count(const char *tag, const char *status)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "docker ps -aq --filter label=agentix.test.watch=%s --filter "
             "label=agentix.test.tag=%s %s%s | wc -l", run, tag, status ? "--filter status=" : "",
             status ? status : "");
    FILE *p = popen(cmd, "r");
    CHECK(p);
    int n = -1;
    CHECK(fscanf(p, "%d", &n) == 1);
    pclose(p);
    return n;
}

/* Watches of owner pid that still run (their command lines name it). */
static int watches_of(pid_t pid)
{
    DIR *d = opendir("/proc");
    CHECK(d);
    struct dirent *e;
    int n = 0;
    char want[32];
    snprintf(want, sizeof want, "%d", (int)pid);
    while ((e = readdir(d))) {
        char path[300], buf[512];
        snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[len] = '\0';
        /* argv: path, --owner-pid, PID, ... (NUL-separated) */
        const char *a0 = buf, *a1 = a0 + strlen(a0) + 1, *a2 = a1 < buf + len ? a1 + strlen(a1) + 1 : a1;
        n += strstr(a0, "agentix-docker-watch") && a2 < buf + len && strcmp(a2, want) == 0;
    }
    closedir(d);
    return n;
}

int main(void)
{
    snprintf(run, sizeof run, "w%d-%lld", (int)getpid(), (long long)agx_clock_wall_ms());
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); /* the dead host's watch is reaped here */
    int fds[2];
    CHECK(pipe(fds) == 0);
    pid_t host = fork();
    CHECK(host >= 0);
    if (host == 0) {
        close(fds[0]);
        _exit(host_main(fds[1]));
    }
    close(fds[1]);
    char c;
    CHECK_MSG(read(fds[0], &c, 1) == 1, "the host did not get ready");
    close(fds[0]);
    CHECK(watches_of(host) == 1);

    /* A never-started container of another owner (this test process, alive): never touched. */
    agx_kv *me = agx_kv_new();
    agx_error err;
    CHECK(me && agx_owner_labels_set(me, NULL, &err) == 0);
    docker_container(me, "create", "other-unstarted");
    CHECK(count("mine-unstarted", "created") == 1 && count("other-unstarted", "created") == 1);

    CHECK(kill(host, SIGKILL) == 0 && waitpid(host, NULL, 0) == host);
    int64_t until = agx_clock_ms() + 90000;
    while (count("mine-unstarted", NULL) > 0 && agx_clock_ms() < until)
        agx_clock_sleep_ms(250);
    CHECK_MSG(count("mine-unstarted", NULL) == 0, "the dead host's never-started container is "
              "still there 90 s after the kill");
    CHECK(count("other-unstarted", "created") == 1); /* its owner lives */
    CHECK(count("mine-running", "running") == 1);    /* started: its expiry's business */
    while (watches_of(host) > 0 && agx_clock_ms() < until + 60000) {
        agx_clock_sleep_ms(250);
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
    }
    CHECK_MSG(watches_of(host) == 0, "the watch did not exit");

    char cmd[256];
    snprintf(cmd, sizeof cmd, "docker rm -f $(docker ps -aq --filter label=agentix.test.watch=%s) "
             ">/dev/null", run);
    CHECK(system(cmd) == 0);
    agx_kv_free(me);
    printf("test_docker_watch: ok\n");
    return 0;
}
