/* chaos.c — hosts killed (SIGKILL, or SIGSEGV) at random instants, per backend, and what they
 * leave, counted with the backend's own view (agentix-server processes for local, the docker
 * CLI, the fakes' state), never with agentix's list:
 *   phase 1, short expiry (4 s), no gc: after the expiry + 30 s nothing of the run serves or
 *   exists — docker: + 120 s, for a loaded engine's backlog (ENGINE_LAG_MS), and + 120 s more
 *   for it to delete containers whose runtime ended;
 *   phase 2, long expiry (10 min): after the requests in flight settled, one `agentix gc` run gets
 *   the run to zero.
 * Each killed host (this program re-executed with --child) runs sessions, plain creates, a fleet
 * with a map and a pool with a map at once, in a loop, until it is killed 0.5–3 s after it
 * started — with SIGKILL, or every other one with SIGSEGV (a crash inside the host). Prints one
 * JSON line of figures.
 *
 * Usage: chaos BACKEND [--kills N] [--seed S]    (BACKEND: local docker e2b daytona k8s-pool)
 * CTest runs 5 kills per backend, the five at once (chaos_all.sh); bench/leases/chaos-soak.sh
 * runs 20. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/agentix.h"
#include "agentix/clock.h"
#include "check.h"
#include "cloud_fake.h"
#include "k8s_fake.h"

#define SHORT_EXPIRY_MS 4000
/* The long run's expiry: 10 min; Daytona's fake counts auto-stop minutes of 4 s, so a day there. */
#define LONG_EXPIRY_MS (strcmp(backend, "daytona") == 0 ? 86400000 : 600000)
#define SETTLE_MS 30000
/* docker: a loaded engine works through a backlog — it was seen starting a container 44 s after
 * its create, on the start request of a host killed meanwhile, and a runtime's expiry counts from
 * its start — so its runs get this much more to end, and as much again for the engine to delete
 * the containers whose runtime ended. */
#define ENGINE_LAG_MS (strcmp(backend, "docker") == 0 ? 120000 : 0)
/* Polling the docker CLI costs a process start each time, itself load on two cores. */
#define POLL_MS (strcmp(backend, "docker") == 0 ? 1000 : 200)
#define BUNDLE "agx-test-bundle-chaos:test"

static const char *backend;
static char work[600], run_id[64];
static agx_fake *cloud;
static k8s_fake kf;

/* ---- the child host: everything at once, until killed ---- */

static agx_sandbox_config *config(int64_t expiry)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, 120000) == 0 &&
          agx_sandbox_config_set_expiry_ms(cfg, expiry) == 0 &&
          agx_kv_set(agx_sandbox_config_labels(cfg), AGX_LABEL_RUN, run_id) == 0);
    if (strcmp(backend, "docker") == 0)
        CHECK(agx_sandbox_config_set_image(cfg, "agx-test-debian:12") == 0 &&
              agx_sandbox_config_set_bundle(cfg, BUNDLE) == 0);
    return cfg;
}

typedef struct host {
    agx_deployment *dep;
    agx_sandbox_config *cfg;
} host;

static void echo(const agx_sandbox *sb)
{
    agx_client *c = NULL;
    agx_error err;
    if (agx_client_connect_sandbox(sb, NULL, &c, &err) != 0)
        return;
    agx_value *kw = agx_value_map(), *res = NULL;
    agx_value_map_set(kw, "command", agx_value_string("echo hi"));
    agx_client_call(c, "agentix.bash::run", NULL, kw, 30000, &res, &err);
    agx_value_free(kw);
    agx_value_free(res);
    agx_client_free(c);
}

static void *sessions(void *arg)
{
    host *h = arg;
    for (;;) {
        agx_error err;
        AGX_SESSION(sb, h->dep, h->cfg, &err);
        if (sb)
            echo(sb);
    }
    return NULL;
}

static void *plain_creates(void *arg)
{
    host *h = arg;
    for (;;) {
        agx_sandbox *sb = NULL;
        agx_error err;
        if (agx_deployment_create(h->dep, h->cfg, &sb, &err) == 0) {
            echo(sb);
            agx_deployment_delete(h->dep, agx_sandbox_id(sb), &err);
            agx_sandbox_free(sb);
        }
    }
    return NULL;
}

static const char *const cmds[] = {"echo a", "echo b", "echo c", "echo d"};

static void *fleet_maps(void *arg)
{
    host *h = arg;
    for (;;) {
        agx_fleet_options fo;
        agx_fleet_options_init(&fo);
        fo.count = 2;
        fo.mode = AGX_FLEET_BEST_EFFORT;
        fo.run_id = run_id;
        agx_fleet *f = NULL;
        agx_error err;
        if (agx_fleet_create(h->dep, h->cfg, &fo, &f, &err) == 0) {
            agx_map_options mo;
            agx_map_options_init(&mo);
            mo.fleet = f;
            mo.tasks = 4;
            mo.commands = cmds;
            agx_map_run(&mo, &err);
        }
        agx_fleet_free(f);
    }
    return NULL;
}

static void *pool_maps(void *arg)
{
    host *h = arg;
    for (;;) {
        agx_pool_options po;
        agx_pool_options_init(&po);
        po.size = 2;
        po.run_id = run_id;
        agx_pool *p = NULL;
        agx_error err;
        if (agx_pool_new(h->dep, h->cfg, &po, &p, &err) == 0) {
            agx_map_options mo;
            agx_map_options_init(&mo);
            mo.pool = p;
            mo.tasks = 4;
            mo.parallelism = 2;
            mo.commands = cmds;
            agx_map_run(&mo, &err);
        }
        agx_pool_free(p);
    }
    return NULL;
}

static int child_main(int64_t expiry)
{
    host h = {.cfg = config(expiry)};
    agx_error err;
    CHECK_OK(agx_load_deployment(backend, &h.dep, &err), &err);
    void *(*fns[])(void *) = {sessions, plain_creates, fleet_maps, pool_maps};
    pthread_t t;
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        CHECK(pthread_create(&t, NULL, fns[i], &h) == 0);
    printf("started\n");
    fflush(stdout);
    for (;;)
        pause();
}

/* ---- the backend's own count of the run ---- */

static int count_local(void)
{
    /* agentix-server processes whose working folder lies under this run's root. */
    DIR *d = opendir("/proc");
    CHECK(d);
    struct dirent *e;
    int n = 0;
    char link[300], target[PATH_MAX], root[PATH_MAX];
    snprintf(root, sizeof root, "%s/local/", work);
    while ((e = readdir(d))) {
        if (strspn(e->d_name, "0123456789") != strlen(e->d_name))
            continue;
        snprintf(link, sizeof link, "/proc/%s/cwd", e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        char comm[64] = "", path[300];
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            fclose(f);
        }
        n += strncmp(target, root, strlen(root)) == 0 && strncmp(comm, "agentix-server", 14) == 0;
    }
    closedir(d);
    return n;
}

/* docker: containers of the last count whose runtime ended — nothing runs in their cgroup — and
 * which the engine deletes itself (AutoRemove). How long the engine takes to notice the end and
 * delete them is its own pace, which a loaded machine slows by tens of seconds (its listing then
 * still says "running" for a container with no process left). */
static int engine_removing;

/* The kernel's view of which containers still run anything: every process's cgroup lines, read
 * once per count (a container's cgroup path holds its full id). */
static char *cgroups_read(void)
{
    size_t cap = 1 << 16, len = 0;
    char *all = malloc(cap), path[64], buf[4096];
    CHECK(all);
    DIR *d = opendir("/proc");
    CHECK(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%.20s/cgroup", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* ended meanwhile */
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        if (len + n + 1 > cap) {
            cap = 2 * (len + n + 1);
            all = realloc(all, cap);
            CHECK(all);
        }
        memcpy(all + len, buf, n);
        len += n;
    }
    closedir(d);
    all[len] = '\0';
    return all;
}

/* Containers of the run; *serving: those with a process in their cgroup — the runtime runs, or a
 * start is under way (not a "created" container a kill left between its creation and its
 * start, nor one whose runtime ended, whatever the engine's listing says yet). */
static int count_docker(int *serving)
{
    char cmd[256], id[80], state[64];
    snprintf(cmd, sizeof cmd, "docker ps -a --no-trunc --filter label=agentix.run=%s "
             "--format '{{.ID}} {{.State}}'", run_id);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    char *cgroups = cgroups_read();
    int n = 0;
    *serving = engine_removing = 0;
    while (fscanf(p, "%79s %63s", id, state) == 2) {
        n++;
        bool runs = strstr(cgroups, id) != NULL;
        *serving += runs;
        engine_removing += !runs && strcmp(state, "created") != 0;
    }
    free(cgroups);
    CHECK(pclose(p) == 0);
    return n;
}

static int count_k8s(int *serving)
{
    json_t *s = k8s_fake_hook(&kf, "/fake/stats", NULL);
    size_t i;
    json_t *p;
    int n = 0;
    *serving = 0;
    json_array_foreach(json_object_get(s, "pods"), i, p) {
        const char *r = json_string_value(json_object_get(json_object_get(p, "labels"), AGX_LABEL_RUN));
        if (!r || strcmp(r, run_id) != 0 || json_is_true(json_object_get(p, "terminating")))
            continue;
        n++;
        /* Its claimed runtime still serves unless the kubelet restarted it (it ended itself). */
        *serving += json_integer_value(json_object_get(p, "restarts")) == 0;
    }
    json_decref(s);
    return n;
}

/* Sandboxes of the run that exist; *serving: of those, with their runtime still up (k8s). */
static int count(int *serving)
{
    int n;
    if (strcmp(backend, "local") == 0)
        n = count_local();
    else if (strcmp(backend, "docker") == 0)
        return count_docker(serving);
    else if (strcmp(backend, "k8s-pool") == 0)
        return count_k8s(serving);
    else {
        json_t *st = agx_fake_stats(cloud);
        n = (int)json_integer_value(json_object_get(json_object_get(st, "by_run"), run_id));
        json_decref(st);
    }
    *serving = n;
    return n;
}

/* What a failing run left, into the log (stderr): for docker each container's state, when it
 * started and ended, and the end of its runtime's output — the reason it did not end itself. */
static void describe_leftovers(void)
{
    if (strcmp(backend, "docker") != 0)
        return;
    char cmd[768];
    snprintf(cmd, sizeof cmd, "date -u +%%FT%%T >&2; docker ps -a --filter label=agentix.run=%s "
             "--format '{{.ID}} {{.State}} created={{.CreatedAt}} ({{.Status}})' | while read id rest; "
             "do echo \"$id $rest procs=$(grep -ls \"$id\" /proc/[0-9]*/cgroup | wc -l)\"; done >&2",
             run_id);
    int ignored = system(cmd);
    snprintf(cmd, sizeof cmd,
             "for c in $(docker ps -aq --filter label=agentix.run=%s); do "
             "docker inspect --format '{{.Name}} {{.State.Status}} started={{.State.StartedAt}} "
             "finished={{.State.FinishedAt}} exit={{.State.ExitCode}} error={{.State.Error}} "
             "pid={{.State.Pid}}' $c; docker logs --tail 20 $c 2>&1 | sed 's/^/    /'; "
             "docker top $c 2>&1 | sed 's/^/    /'; done >&2",
             run_id);
    ignored = system(cmd);
    (void)ignored;
}

/* ---- setup per backend ---- */

static void setup(void)
{
    char dir[700];
    if (strcmp(backend, "local") == 0) {
        snprintf(dir, sizeof dir, "%s/local", work);
        CHECK(mkdir(dir, 0700) == 0);
        setenv("AGENTIX_LOCAL_ROOT", dir, 1);
        unsetenv("AGENTIX_LOCAL_SERVER");
    } else if (strcmp(backend, "docker") == 0) {
        CHECK_MSG(system("'" AGX_CLI "' build --name " BUNDLE " --docker --quiet >/dev/null") == 0,
                  "agentix build --docker failed");
    } else if (strcmp(backend, "e2b") == 0) {
        cloud = agx_fake_start_e2b(1000, NULL);
        setenv("E2B_API_KEY", AGX_FAKE_E2B_KEY, 1);
    } else if (strcmp(backend, "daytona") == 0) {
        cloud = agx_fake_start_daytona_minute(1000, SHORT_EXPIRY_MS / 1000.0); /* 1 min ≈ 4 s */
        setenv("DAYTONA_API_KEY", AGX_FAKE_DAYTONA_KEY, 1);
    } else if (strcmp(backend, "k8s-pool") == 0) {
        snprintf(dir, sizeof dir, "%s/k8s", work);
        k8s_fake_start(&kf, dir, 1, 8, NULL);
        char kc[700];
        k8s_fake_kubeconfig(&kf, "kc", "    token: " K8S_FAKE_TOKEN "\n", kc, sizeof kc);
        k8s_fake_use(kc);
    } else {
        CHECK_MSG(0, "unknown backend %s", backend);
    }
}

/* ---- killing hosts ---- */

static unsigned seed;

static void kill_one(int64_t expiry, int *peak)
{
    int p[2];
    CHECK(pipe(p) == 0);
    char ms[24], self[PATH_MAX];
    snprintf(ms, sizeof ms, "%lld", (long long)expiry);
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(len > 0);
    self[len] = '\0';
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(self, self, backend, "--child", run_id, ms, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char line[64] = "";
    FILE *f = fdopen(p[0], "r");
    CHECK_MSG(fgets(line, sizeof line, f) && strcmp(line, "started\n") == 0, "a child host did not start");
    int delay = 500 + (int)(rand_r(&seed) % 2500);
    agx_clock_sleep_ms(delay);
    int serving, n = count(&serving);
    if (n > *peak)
        *peak = n;
    /* Every other host dies of a segfault instead (a crash inside the host, as the concurrent
     * connect crash was): whatever handler the process has (a sanitizer's reports and exits 1)
     * runs, no agentix clean-up does. */
    static int n_killed;
    int sig = n_killed++ % 2 ? SIGSEGV : SIGKILL;
    CHECK(kill(pid, sig) == 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFSIGNALED(st) || (sig == SIGSEGV && WIFEXITED(st) && WEXITSTATUS(st) != 0),
              "a host sent %s ended with status %#x", strsignal(sig), st);
    fclose(f);
}

/* Waits until the count holds still for 3 s (requests the dead hosts sent have landed). */
static int settle(int64_t bound_ms)
{
    int64_t until = agx_clock_ms() + bound_ms;
    int serving, last = count(&serving), still = 0;
    while (agx_clock_ms() < until && still < 3000 / POLL_MS) {
        agx_clock_sleep_ms(POLL_MS);
        int now = count(&serving);
        still = now == last ? still + 1 : 0;
        last = now;
    }
    return last;
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc >= 2, "usage: chaos BACKEND [--kills N] [--seed S]");
    backend = argv[1];
    if (argc == 5 && strcmp(argv[2], "--child") == 0) {
        snprintf(run_id, sizeof run_id, "%s", argv[3]);
        return child_main(atoll(argv[4]));
    }
    int kills = 5;
    seed = (unsigned)getpid();
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--kills") == 0)
            kills = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = (unsigned)atoi(argv[i + 1]);
    }
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); /* local servers of killed hosts come here */
    snprintf(work, sizeof work, "%s/chaos-%s-XXXXXX", AGX_TEST_BINARY_DIR, backend);
    CHECK(mkdtemp(work));
    char state[700];
    snprintf(state, sizeof state, "%s/state", work);
    setenv("AGENTIX_STATE_DIR", state, 1);
    setup();

    /* Phase 1: short expiry, no gc. */
    snprintf(run_id, sizeof run_id, "chaos-short-%d", (int)getpid());
    int peak1 = 0, serving;
    for (int i = 0; i < kills; i++)
        kill_one(SHORT_EXPIRY_MS, &peak1);
    int64_t t0 = agx_clock_ms();
    int zero_ms = -1;
    count(&serving);
    while (agx_clock_ms() - t0 < SHORT_EXPIRY_MS + SETTLE_MS + ENGINE_LAG_MS) {
        /* Zero: nothing serves and nothing exists but what the engine is deleting — docker's
         * containers a kill left between their create and their start included (the host's
         * owner watch removes them). */
        int n = count(&serving);
        if (serving == 0 && n - engine_removing == 0) {
            zero_ms = (int)(agx_clock_ms() - t0);
            break;
        }
        agx_clock_sleep_ms(POLL_MS);
    }
    int objects1 = count(&serving), serving1 = serving, removing1 = engine_removing;
    /* What the engine is deleting must then be gone too, at its pace, within a bound. */
    int64_t t1 = agx_clock_ms();
    while (objects1 > 0 && objects1 == engine_removing && agx_clock_ms() - t1 < ENGINE_LAG_MS) {
        agx_clock_sleep_ms(POLL_MS);
        objects1 = count(&serving);
    }
    int gone_ms = objects1 ? -1 : (int)(agx_clock_ms() - t0);
    if (objects1)
        describe_leftovers();
    char short_run[64];
    snprintf(short_run, sizeof short_run, "%s", run_id);

    /* Phase 2: long expiry, one gc. */
    snprintf(run_id, sizeof run_id, "chaos-long-%d", (int)getpid());
    int peak2 = 0;
    for (int i = 0; i < kills; i++)
        kill_one(LONG_EXPIRY_MS, &peak2);
    int before_gc = settle(60000);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' gc --backend %s --run %s --json >/dev/null", AGX_CLI, backend,
             run_id);
    int gc_rc = system(cmd);
    int after_gc = count(&serving);
    if (getenv("AGX_CHAOS_DEBUG") && after_gc) {
        char dbg[1024];
        snprintf(dbg, sizeof dbg, "for p in /proc/[0-9]*; do c=$(readlink $p/cwd); case \"$c\" in "
                 "%s/local/*) echo \"$p $c\"; cat \"$c/sandbox.json\"; echo; ls -la \"$c\";; "
                 "esac; done", work);
        int ignored = system(dbg);
        (void)ignored;
    }
    for (int i = 0; i < 50 && after_gc > 0; i++) { /* deletes the provider finishes in the background */
        agx_clock_sleep_ms(100);
        after_gc = count(&serving);
    }

    printf("{\"chaos\":\"%s\",\"kills\":%d,\"short\":{\"expiry_ms\":%d,\"peak_live\":%d,"
           "\"settle_bound_ms\":%d,\"serving_after_settle\":%d,\"engine_removing_after_settle\":%d,"
           "\"existing_at_end\":%d,\"ms_to_zero\":%d,\"ms_to_gone\":%d},\"long\":{\"expiry_ms\":%d,\"peak_live\":%d,\"before_gc\":%d,"
           "\"gc_exit\":%d,\"after_one_gc\":%d}}\n",
           backend, kills, SHORT_EXPIRY_MS, peak1, SHORT_EXPIRY_MS + SETTLE_MS + ENGINE_LAG_MS, serving1, removing1, objects1,
           zero_ms, gone_ms, LONG_EXPIRY_MS, peak2, before_gc, WEXITSTATUS(gc_rc), after_gc);
    fflush(stdout);
    /* Clean what phase 1 may have left, so a failure below leaves nothing behind either. */
    snprintf(cmd, sizeof cmd, "'%s' gc --backend %s --run %s >/dev/null", AGX_CLI, backend, short_run);
    int ignored = system(cmd);
    (void)ignored;
    CHECK_MSG(zero_ms >= 0, "sandboxes of the short run still served %d ms after the last kill",
              SHORT_EXPIRY_MS + SETTLE_MS + ENGINE_LAG_MS);
    CHECK_MSG(WEXITSTATUS(gc_rc) == 0 && after_gc == 0, "one gc left %d of %d", after_gc, before_gc);
    /* Every backend: a docker container whose create was cut before its start is removed by the
     * dead host's owner watch (backends/docker/docker_watch.c), a claimed k8s pod deletes itself
     * at its expiry (runtime/server/k8s_self.c). */
    CHECK_MSG(objects1 == 0, "%d sandboxes of the short run exist after its expiry + 30 s "
              "(+ %d s for those the engine was deleting)", objects1, ENGINE_LAG_MS / 1000);
    if (cloud)
        agx_fake_stop(cloud);
    if (kf.pid > 0)
        k8s_fake_stop(&kf);
    char rm[700];
    snprintf(rm, sizeof rm, "rm -rf '%s'", work);
    CHECK(system(rm) == 0);
    return 0;
}
