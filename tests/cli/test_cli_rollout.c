/* test_cli_rollout.c — leak-proof rollouts on a real dockerd, through the built programs only:
 * examples/rollout's task list on docker (every outcome as expected, leaked 0); a 20-sandbox
 * rollout host killed with -9 mid-run, after which `agentix gc --backend docker --run R` deletes
 * every leftover; and the same host stopped with SIGINT, whose cleanup handler deletes everything
 * itself. Leftovers are counted with the docker CLI (label agentix.run=R), independently of the
 * backend's own list. Needs dockerd and the test images (scripts/setup.d/docker.sh); fails, never
 * skips, without them. */
#include "check.h"
#include "docker_count.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BUNDLE "agx-test-bundle-cli:" AGX_TEST_BUNDLE_TAG
#define IMAGE "agx-test-busybox:1"
#define SANDBOXES 20

static char dir[256], tasks_file[300];

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void new_run_id(char *out, size_t size, const char *what)
{
    unsigned char r[6];
    CHECK(getrandom(r, sizeof r, 0) == (ssize_t)sizeof r);
    snprintf(out, size, "cli-%s-%02x%02x%02x%02x%02x%02x", what, r[0], r[1], r[2], r[3], r[4], r[5]);
    fprintf(stderr, "run label agentix.run=%s\n", out);
}

/* Containers (any state) labelled agentix.run=run_id, counted by the docker CLI. */
static int containers(const char *run_id) { return agx_test_docker_count("agentix.run", run_id); }

/* Starts the rollout host on docker over the 20 sleeping tasks; returns its pid. */
static pid_t start_host(const char *run_id)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        execl(AGX_ROLLOUT, AGX_ROLLOUT, "--backend", "docker", "--bundle", BUNDLE, "--tasks",
              tasks_file, "--parallel", "20", "--run-id", run_id, "--quiet", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until at least `want` containers of the run exist (the rollout is under way). */
static void wait_containers(const char *run_id, int want, pid_t host)
{
    long deadline = now_ms() + 300000;
    int n = 0;
    while ((n = containers(run_id)) < want) {
        CHECK_MSG(now_ms() < deadline, "only %d of %d sandboxes after 300 s", n, want);
        CHECK_MSG(waitpid(host, NULL, WNOHANG) == 0, "the rollout host ended early");
        usleep(100000);
    }
    fprintf(stderr, "%d containers of the run exist\n", n);
}

static int wait_host(pid_t pid, int timeout_s)
{
    long deadline = now_ms() + timeout_s * 1000L;
    int status = 0;
    pid_t r;
    while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            CHECK_MSG(0, "the rollout host did not end within %d s", timeout_s);
        }
        usleep(50000);
    }
    CHECK(r == pid);
    return status;
}

static void test_rollout_on_docker(void)
{
    char run_id[64], cmd[1024];
    new_run_id(run_id, sizeof run_id, "tasks");
    snprintf(cmd, sizeof cmd,
             "'%s' --backend docker --bundle " BUNDLE " --parallel 4 --run-id %s --quiet > '%s/out'",
             AGX_ROLLOUT, run_id, dir);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "cat '%s/out' >&2", dir);
    CHECK(system(cmd) == 0);
    CHECK_MSG(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "rollout-host exited %d", rc);
    snprintf(cmd, sizeof cmd, "grep -q 'sandboxes: created 6, deleted 6, leaked 0' '%s/out'", dir);
    CHECK(system(cmd) == 0);
    CHECK(containers(run_id) == 0);
}

static void test_kill9_then_gc(void)
{
    char run_id[64], cmd[512];
    new_run_id(run_id, sizeof run_id, "kill9");
    pid_t host = start_host(run_id);
    wait_containers(run_id, SANDBOXES / 4, host); /* creates still in flight */
    CHECK(kill(host, SIGKILL) == 0);
    int status = wait_host(host, 30);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int left = containers(run_id);
    fprintf(stderr, "%d containers left by the killed host\n", left);
    CHECK(left > 0); /* the host had no chance to clean up: gc has work to do */
    /* A create the daemon was serving when the host died still lands: wait until the count has
     * held for 3 s (bounded, 120 s), then collect twice (the second pass must find nothing). */
    for (int held = 0, i = 0, before = left; held < 3 && i < 120; i++) {
        sleep(1);
        int now = containers(run_id);
        held = now == before ? held + 1 : 0;
        before = now;
    }
    snprintf(cmd, sizeof cmd, "'%s' gc --backend docker --run %s >&2", AGX_CLI, run_id);
    CHECK(system(cmd) == 0);
    CHECK(system(cmd) == 0);
    CHECK_MSG(containers(run_id) == 0, "%d containers left after gc", containers(run_id));
}

static void test_sigint_cleans_up(void)
{
    char run_id[64];
    new_run_id(run_id, sizeof run_id, "sigint");
    pid_t host = start_host(run_id);
    wait_containers(run_id, SANDBOXES / 4, host); /* creates still in flight */
    CHECK(kill(host, SIGINT) == 0);
    int status = wait_host(host, 180);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "status %d", status);
    CHECK_MSG(containers(run_id) == 0, "%d containers left after SIGINT", containers(run_id));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/agx-test-cli-rollout-XXXXXX");
    CHECK(mkdtemp(dir));
    snprintf(tasks_file, sizeof tasks_file, "%s/tasks.json", dir);
    FILE *f = fopen(tasks_file, "w");
    CHECK(f);
    fprintf(f, "[{\"name\": \"sleeper\", \"image\": \"" IMAGE "\", \"command\": \"sleep 120\"}");
    for (int i = 1; i < SANDBOXES; i++)
        fprintf(f, ", {\"name\": \"sleeper\", \"image\": \"" IMAGE "\", \"command\": \"sleep 120\"}");
    fprintf(f, "]\n");
    CHECK(fclose(f) == 0);
    CHECK_MSG(system("'" AGX_CLI "' build --name " BUNDLE " --docker --quiet >/dev/null") == 0,
              "agentix build --docker failed (is dockerd running? scripts/setup.d/docker.sh)");
    CHECK_MSG(system("sh '" AGX_RETIRE_CARRIERS "' " BUNDLE) == 0, "retire_carriers.sh failed");
    TEST_RUN(test_rollout_on_docker);
    TEST_RUN(test_kill9_then_gc);
    TEST_RUN(test_sigint_cleans_up);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return 0;
}
