/* test_outcomes.c — every fault a map task can meet, injected for real, and the one outcome each
 * result must carry (fleet.h's agx_outcome): a command's non-zero exit, a task deadline, the
 * sandbox's memory limit (docker enforces one), a sandbox killed under its task, creates refused
 * by admission (rate_limited), creates that fail, an exception in the remote function, and
 * agx_map_cancel. Also a call deadline at the client: `sleep 1000` with a 2 s deadline returns
 * within 2 s + grace, the command is gone from the sandbox, and the next call on the same sandbox
 * succeeds.
 *
 * Usage: test_outcomes local | test_outcomes docker (dockerd, `agentix build --docker`). */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentix/agentix.h"
#include "agentix/clock.h"
#include "check.h"

#define DEBIAN "agx-test-debian:12"
#define BUNDLE "agx-test-bundle-outcomes:test"
#define KILLED_COMMAND "sleep 60.125" /* found by its argv, so no other process matches */
#define GRACE_MS 3000 /* what a loaded machine may add to a deadline before the call returns */

static const char *backend;
static char root[512];
static agx_deployment *dep;

static agx_sandbox_config *config(void)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, 120000) == 0);
    if (strcmp(backend, "docker") == 0)
        CHECK(agx_sandbox_config_set_image(cfg, DEBIAN) == 0 &&
              agx_sandbox_config_set_bundle(cfg, getenv("AGX_OUTCOMES_MISSING_BUNDLE")
                                                     ? "127.0.0.1:1/agx-test-missing:1"
                                                     : BUNDLE) == 0);
    return cfg;
}

/* ---- killing a sandbox's runtime behind the backend's back ---- */

static void kill_sandbox(const char *id)
{
    char cmd[1024];
    if (strcmp(backend, "docker") == 0) {
        CHECK(strspn(id, "0123456789abcdef") == strlen(id));
        snprintf(cmd, sizeof cmd, "docker kill %s >/dev/null 2>&1", id);
    } else {
        snprintf(cmd, sizeof cmd, "kill -9 -$(sed -n 's/.*\"pid\":\\([0-9]*\\).*/\\1/p' "
                 "'%s/%s/sandbox.json')", root, id);
    }
    CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
}

/* ---- a map over a one-sandbox pool, results kept by task ---- */

#define MAX_TASKS 4
static agx_map_result results[MAX_TASKS];

static void keep(void *user, agx_map_result *r)
{
    (void)user;
    CHECK(r->task < MAX_TASKS);
    results[r->task] = *r;
    results[r->task].value = NULL;
}

typedef struct mapspec {
    agx_deployment *dep;
    const char *const *commands;
    size_t tasks;
    int task_timeout_ms, acquire_timeout_ms;
    unsigned max_attempts;
    agx_map_build_fn build;
    int cancel_after_ms;
    const char *kill_after_start; /* a task's command starts: kill its sandbox */
} mapspec;

typedef struct killer {
    agx_pool *pool;
    int wait_ms;
    int cancel_after_ms;
    agx_map *m;
} killer;

static void *kill_main(void *arg)
{
    killer *k = arg;
    if (k->cancel_after_ms) {
        agx_clock_sleep_ms(k->cancel_after_ms);
        agx_map_cancel(k->m);
        return NULL;
    }
    /* Not after a fixed delay: on a loaded machine the pool's sandbox may not exist yet after
     * seconds, and a kill that finds nothing lets the task end ok. Host-side, the sandbox's
     * processes are visible on either backend; the command's argv is this test's own. */
    int64_t until = agx_clock_ms() + k->wait_ms;
    while (system("pgrep -fx '" KILLED_COMMAND "' >/dev/null") != 0) {
        CHECK_MSG(agx_clock_ms() < until, "'%s' did not start within %d ms", KILLED_COMMAND,
                  k->wait_ms);
        agx_clock_sleep_ms(100);
    }
    /* The one leased sandbox of the pool: kill it under its task. */
    agx_kv *f = agx_kv_new();
    agx_sandbox_list *list = NULL;
    agx_error err;
    CHECK(agx_kv_set(f, AGX_LABEL_RUN, "outcomes-kill") == 0);
    CHECK_OK(agx_deployment_list(dep, f, &list, &err), &err);
    for (size_t i = 0; i < agx_sandbox_list_count(list); i++)
        kill_sandbox(agx_sandbox_info_id(agx_sandbox_list_at(list, i)));
    agx_sandbox_list_free(list);
    agx_kv_free(f);
    return NULL;
}

static int64_t run_map(const mapspec *s, const char *run)
{
    memset(results, 0, sizeof results);
    agx_sandbox_config *cfg = config();
    agx_pool_options po;
    agx_pool_options_init(&po);
    po.size = 1;
    po.run_id = run;
    po.retry.max_attempts = 1;
    po.health_timeout_ms = 20000;
    agx_pool *p = NULL;
    agx_error err;
    CHECK_OK(agx_pool_new(s->dep ? s->dep : dep, cfg, &po, &p, &err), &err);
    agx_sandbox_config_free(cfg);
    agx_map_options mo;
    agx_map_options_init(&mo);
    mo.pool = p;
    mo.tasks = s->tasks;
    mo.parallelism = 1;
    mo.commands = s->build ? NULL : s->commands;
    mo.build = s->build;
    mo.task_timeout_ms = s->task_timeout_ms;
    mo.max_attempts = s->max_attempts ? s->max_attempts : 1;
    mo.acquire_timeout_ms = s->acquire_timeout_ms ? s->acquire_timeout_ms : 120000;
    mo.on_result = keep;
    agx_map *m = NULL;
    int64_t t0 = agx_clock_ms();
    CHECK_OK(agx_map_start(&mo, &m, &err), &err);
    killer k = {.pool = p, .wait_ms = 120000, .cancel_after_ms = s->cancel_after_ms, .m = m};
    pthread_t t;
    bool killing = s->kill_after_start || s->cancel_after_ms;
    if (killing)
        CHECK(pthread_create(&t, NULL, kill_main, &k) == 0);
    CHECK_OK(agx_map_wait(m, 300000, &err), &err);
    int64_t took = agx_clock_ms() - t0;
    if (killing)
        pthread_join(t, NULL);
    agx_map_free(m);
    agx_pool_free(p);
    return took;
}

static void expect(size_t task, agx_outcome want)
{
    agx_map_result *r = &results[task];
    fprintf(stderr, "   task %zu: %s (status %s, exit %d)%s%s\n", task, agx_outcome_name(r->outcome),
            agx_error_code_name(r->status), r->exit_code, r->err.message[0] ? ": " : "",
            r->err.message);
    CHECK_MSG(r->outcome == want, "task %zu: outcome %s, want %s", task,
              agx_outcome_name(r->outcome), agx_outcome_name(want));
    /* No stale error: a returned call leaves none; a failure says what happened. */
    CHECK((r->status == 0) == (r->err.code == AGX_OK && r->err.message[0] == '\0'));
}

/* ---- scenarios ---- */

static void test_nonzero_exit(void)
{
    const char *cmds[] = {"exit 3", "echo fine"};
    mapspec s = {.commands = cmds, .tasks = 2};
    run_map(&s, "outcomes-exit");
    expect(0, AGX_OUTCOME_NONZERO_EXIT);
    CHECK(results[0].exit_code == 3 && results[0].status == 0);
    expect(1, AGX_OUTCOME_OK);
}

static void test_task_deadline(void)
{
    const char *cmds[] = {"sleep 1000"};
    mapspec s = {.commands = cmds, .tasks = 1, .task_timeout_ms = 2000};
    int64_t took = run_map(&s, "outcomes-deadline");
    expect(0, AGX_OUTCOME_TIMEOUT);
    CHECK(results[0].status == AGX_ERR_TIMEOUT);
    fprintf(stderr, "   a 2 s task deadline returned after %lld ms\n", (long long)took);
}

static void test_oom(void)
{
    if (strcmp(backend, "docker") != 0) {
        fprintf(stderr, "   (docker only: the local backend enforces no memory limit)\n");
        return;
    }
    /* 64 MiB for the sandbox; tail keeps all of a newline-free input in memory. */
    agx_error err;
    const char *cmds[] = {"head -c 400m /dev/zero | tail > /dev/null"};
    memset(results, 0, sizeof results);
    agx_sandbox_config *mcfg = config();
    CHECK(agx_sandbox_config_set_memory(mcfg, 64u << 20) == 0);
    agx_pool_options po;
    agx_pool_options_init(&po);
    po.size = 1;
    po.run_id = "outcomes-oom";
    agx_pool *p = NULL;
    CHECK_OK(agx_pool_new(dep, mcfg, &po, &p, &err), &err);
    agx_sandbox_config_free(mcfg);
    agx_map_options mo;
    agx_map_options_init(&mo);
    mo.pool = p;
    mo.tasks = 1;
    mo.commands = cmds;
    mo.max_attempts = 1;
    mo.on_result = keep;
    CHECK_OK(agx_map_run(&mo, &err), &err);
    agx_pool_free(p);
    expect(0, AGX_OUTCOME_OOM);
    CHECK(results[0].exit_code == 137);
}

static void test_sandbox_killed(void)
{
    const char *cmds[] = {KILLED_COMMAND};
    mapspec s = {.commands = cmds, .tasks = 1, .kill_after_start = "yes"};
    run_map(&s, "outcomes-kill");
    expect(0, AGX_OUTCOME_SANDBOX_LOST);
}

/* One create per 1000 s: the pool's first sandbox serves task 0 and is deleted; the refill is
 * refused by admission, so task 1 gets no sandbox. */
static void test_rate_limited(void)
{
    agx_admission_options o;
    agx_admission_options_init(&o);
    o.creates_per_s = 0.001;
    agx_error err;
    CHECK_OK(agx_admission_set(backend, &o, &err), &err);
    const char *cmds[] = {"true", "true"};
    mapspec s = {.commands = cmds, .tasks = 2, .acquire_timeout_ms = 4000};
    run_map(&s, "outcomes-rate");
    expect(0, AGX_OUTCOME_OK);
    expect(1, AGX_OUTCOME_RATE_LIMITED);
    o.creates_per_s = 0;
    CHECK_OK(agx_admission_set(backend, &o, &err), &err);
}

static void test_create_failed(void)
{
    agx_deployment *bad = NULL;
    agx_error err;
    if (strcmp(backend, "docker") == 0) {
        CHECK_OK(agx_load_deployment("docker", &bad, &err), &err);
    } else {
        setenv("AGENTIX_LOCAL_SERVER", AGX_EXIT_SERVER, 1); /* a runtime that exits at once */
        CHECK_OK(agx_load_deployment("local", &bad, &err), &err);
        unsetenv("AGENTIX_LOCAL_SERVER");
    }
    const char *cmds[] = {"true"};
    mapspec s = {.dep = bad, .commands = cmds, .tasks = 1, .acquire_timeout_ms = 4000};
    if (strcmp(backend, "docker") == 0)
        setenv("AGX_OUTCOMES_MISSING_BUNDLE", "1", 1);
    run_map(&s, "outcomes-create");
    unsetenv("AGX_OUTCOMES_MISSING_BUNDLE");
    expect(0, AGX_OUTCOME_CREATE_FAILED);
    agx_deployment_free(bad);
}

static int build_missing_file(void *user, size_t task, unsigned attempt, const agx_sandbox *sb,
                              const char **target, agx_value **args, agx_value **kwargs,
                              agx_error *err)
{
    (void)user, (void)task, (void)attempt, (void)sb, (void)args, (void)err;
    *target = "agentix.files::download";
    *kwargs = agx_value_map();
    agx_value_map_set(*kwargs, "path", agx_value_string("no/such/file"));
    return 0;
}

static void test_remote_error(void)
{
    mapspec s = {.tasks = 1, .build = build_missing_file};
    run_map(&s, "outcomes-remote");
    expect(0, AGX_OUTCOME_REMOTE_ERROR);
    CHECK_STREQ(results[0].err.remote_type, "FileNotFoundError");
}

static void test_cancel(void)
{
    const char *cmds[] = {"sleep 60", "sleep 60"};
    mapspec s = {.commands = cmds, .tasks = 2, .cancel_after_ms = 2000};
    run_map(&s, "outcomes-cancel");
    expect(0, AGX_OUTCOME_CANCELLED);
    expect(1, AGX_OUTCOME_CANCELLED);
}

/* How many processes of the sandbox run the marked sleep. */
static int marked_sleeps(const agx_sandbox *sb)
{
    char cmd[512], line[64];
    if (strcmp(backend, "docker") == 0)
        snprintf(cmd, sizeof cmd, "docker top %s -eo args 2>/dev/null | grep -c '^sleep 1000.0421$'",
                 agx_sandbox_id(sb));
    else
        snprintf(cmd, sizeof cmd, "pgrep -fxc 'sleep 1000.0421'");
    FILE *p = popen(cmd, "r");
    CHECK(p);
    int n = fgets(line, sizeof line, p) ? atoi(line) : 0;
    pclose(p);
    return n;
}

/* A call deadline ends the remote command and its descendants, and the sandbox stays usable. */
static void test_call_deadline(void)
{
    agx_sandbox_config *cfg = config();
    agx_sandbox *sb = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    agx_client *c = NULL;
    CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
    agx_value *kw = agx_value_map(), *res = NULL;
    CHECK(agx_value_map_set(kw, "command", agx_value_string("sleep 1000.0421 & wait")) == 0);
    int64_t t0 = agx_clock_ms();
    int rc = agx_client_call(c, "agentix.bash::run", NULL, kw, 2000, &res, &err);
    int64_t took = agx_clock_ms() - t0;
    fprintf(stderr, "   sleep 1000 with a 2 s deadline: %s after %lld ms\n",
            agx_error_code_name(rc), (long long)took);
    CHECK(rc == AGX_ERR_TIMEOUT && !res);
    if (!getenv("AGX_UNDER_VALGRIND"))
        CHECK_MSG(took <= 2000 + GRACE_MS, "returned after %lld ms", (long long)took);
    int left = 1;
    for (int i = 0; i < 100 && (left = marked_sleeps(sb)) > 0; i++)
        agx_clock_sleep_ms(100);
    CHECK_MSG(left == 0, "the cancelled command's sleep still runs in the sandbox");
    CHECK(agx_value_map_set(kw, "command", agx_value_string("echo next")) == 0);
    CHECK_OK(agx_client_call(c, "agentix.bash::run", NULL, kw, 30000, &res, &err), &err);
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(res, "stdout"), NULL), "next\n");
    agx_value_free(res);
    agx_value_free(kw);
    agx_client_free(c);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc == 2, "usage: test_outcomes local|docker");
    backend = argv[1];
    snprintf(root, sizeof root, "%s/outcomes-root-XXXXXX", AGX_TEST_BINARY_DIR);
    CHECK(mkdtemp(root));
    setenv("AGENTIX_LOCAL_ROOT", root, 1);
    char state[600];
    snprintf(state, sizeof state, "%s/state", root);
    CHECK(mkdir(state, 0700) == 0);
    setenv("AGENTIX_STATE_DIR", state, 1);
    unsetenv("AGENTIX_LOCAL_SERVER");
    if (strcmp(backend, "docker") == 0)
        CHECK_MSG(system("'" AGX_CLI "' build --name " BUNDLE " --docker --quiet >/dev/null") == 0,
                  "agentix build --docker failed");
    agx_error err;
    CHECK_OK(agx_load_deployment(backend, &dep, &err), &err);
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {{"nonzero_exit", test_nonzero_exit},   {"task_deadline", test_task_deadline},
                 {"oom", test_oom},                     {"sandbox_killed", test_sandbox_killed},
                 {"rate_limited", test_rate_limited},   {"create_failed", test_create_failed},
                 {"remote_error", test_remote_error},   {"cancel", test_cancel},
                 {"call_deadline", test_call_deadline}};
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        fprintf(stderr, "-- %s\n", tests[i].name);
        tests[i].fn();
    }
    agx_deployment_free(dep);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
    return 0;
}
