/* test_expiry.c — expiries and admission control on the local backend, with real agentix-server
 * processes: a sandbox lives while its host extends it and ends itself once the host is killed
 * (SIGKILL, no clean-up of any kind); gc deletes by dead owner and by passed expiry; POST /expiry
 * refuses a wrong token; a runtime in claim mode (AGENTIX_AUTH=claim, as E2B templates and warm
 * k8s pods run it) takes its token once, from a claim presenting its claim secret, refuses CONNECTs
 * until then and keeps the secret out of its environment; admission's cap holds across processes
 * and a killed holder's slots come back; the create rate and a service's Retry-After hold creates back. Child hosts are this
 * program re-executed (--child), so nothing of the parent's threads is forked.
 *
 * Usage: test_expiry (all scenarios) | test_expiry --child MODE N EXPIRY_MS */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "agentix/agentix.h"
#include "agentix/backend/labels.h"
#include "agentix/backend/process.h"
#include "agentix/backend/runtime.h"
#include "agentix/clock.h"
#include "agentix/fdio.h"
#include "check.h"

#define MAX_SB 16

static char root[512], state[512], self_exe[4096];
static agx_deployment *dep;

static agx_sandbox_config *config(int64_t expiry_ms, const char *run)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    if (expiry_ms)
        CHECK(agx_sandbox_config_set_expiry_ms(cfg, expiry_ms) == 0);
    if (run)
        CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), AGX_LABEL_RUN, run) == 0);
    return cfg;
}

/* ---- child hosts ---- */

/* Creates n sandboxes, prints their ids, then: "hold" waits to be killed; "leave" exits without
 * deleting (and, with "leave-unowned", names no owner process: only the expiry can end them). */
static int child_main(const char *mode, int n, int64_t expiry_ms)
{
    agx_error err;
    CHECK_OK(agx_load_deployment("local", &dep, &err), &err);
    for (int i = 0; i < n; i++) {
        agx_sandbox_config *cfg = config(expiry_ms, "expiry-test");
        if (strcmp(mode, "leave-unowned") == 0)
            CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), AGX_LABEL_OWNER_PID, "0") == 0 &&
                  agx_kv_set(agx_sandbox_config_labels(cfg), AGX_LABEL_OWNER_HOST, "elsewhere") == 0);
        agx_sandbox *sb = NULL;
        CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
        printf("%s\n", agx_sandbox_id(sb));
        fflush(stdout);
        agx_sandbox_free(sb);
        agx_sandbox_config_free(cfg);
    }
    printf("ready\n");
    fflush(stdout);
    if (strcmp(mode, "hold") == 0)
        for (;;)
            pause();
    _exit(0); /* no delete, no clean-up: as a crash would leave them */
}

typedef struct child {
    pid_t pid;
    FILE *out;
    char ids[MAX_SB][128];
    int n;
} child;

static void child_start(child *c, const char *mode, int n, int64_t expiry_ms)
{
    int p[2];
    CHECK(pipe(p) == 0);
    char ns[16], ms[24];
    snprintf(ns, sizeof ns, "%d", n);
    snprintf(ms, sizeof ms, "%lld", (long long)expiry_ms);
    c->pid = fork();
    CHECK(c->pid >= 0);
    if (c->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no host behind */
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(self_exe, self_exe, "--child", mode, ns, ms, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    c->out = fdopen(p[0], "r");
    c->n = 0;
    char line[256];
    while (fgets(line, sizeof line, c->out) && strcmp(line, "ready\n") != 0) {
        line[strcspn(line, "\n")] = '\0';
        CHECK(c->n < MAX_SB);
        snprintf(c->ids[c->n++], sizeof c->ids[0], "%.127s", line);
    }
    CHECK_MSG(c->n == n, "the child host made %d of %d sandboxes", c->n, n);
}

static void child_reap(child *c, int kill9)
{
    if (kill9)
        CHECK(kill(c->pid, SIGKILL) == 0);
    int st;
    CHECK(waitpid(c->pid, &st, 0) == c->pid);
    fclose(c->out);
}

/* ---- the backend's own view: the server process named by the record on disk ---- */

/* 1 while sandbox id's agentix-server runs (pid and start time from its record). */
static int server_runs(const char *id)
{
    char path[1024], *text = NULL;
    size_t len;
    snprintf(path, sizeof path, "%s/%s/sandbox.json", root, id);
    if (agx_file_read(path, 1 << 20, 1, &text, &len, NULL) != 0)
        return 0;
    json_t *doc = json_loadb(text, len, 0, NULL);
    free(text);
    long pid = (long)json_integer_value(json_object_get(doc, "pid"));
    uint64_t start = (uint64_t)json_integer_value(json_object_get(doc, "pid_start"));
    json_decref(doc);
    agx_proc_stat st;
    return pid > 1 && agx_proc_stat_read(pid, &st) == 0 && st.state != 'Z' && st.start_ticks == start;
}

/* Waits up to bound_ms for every server of c to end; returns how many still run. */
static int wait_servers_end(const child *c, int64_t bound_ms)
{
    int64_t until = agx_clock_ms() + bound_ms;
    for (;;) {
        int n = 0;
        for (int i = 0; i < c->n; i++)
            n += server_runs(c->ids[i]);
        if (n == 0 || agx_clock_ms() > until)
            return n;
        agx_clock_sleep_ms(100);
    }
}

/* ---- scenarios ---- */

/* agentix.bash::run of cmd over an open client; its stdout (caller frees). */
static char *bash_over(agx_client *c, const char *cmd)
{
    agx_error err;
    agx_value *kw = agx_value_map(), *res = NULL;
    CHECK(agx_value_map_set(kw, "command", agx_value_string(cmd)) == 0);
    CHECK_OK(agx_client_call(c, "agentix.bash::run", NULL, kw, 30000, &res, &err), &err);
    char *out = strdup(agx_value_get_string(agx_value_map_get(res, "stdout"), NULL));
    agx_value_free(kw);
    agx_value_free(res);
    return out;
}

/* The same over a client of its own. */
static char *bash(const agx_sandbox *sb, const char *cmd)
{
    agx_error err;
    agx_client *c = NULL;
    CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
    char *out = bash_over(c, cmd);
    agx_client_free(c);
    return out;
}

/* A 2 s expiry outlives three expiries while this process extends it in the background. */
static void test_extended_while_host_lives(void)
{
    agx_sandbox_config *cfg = config(2000, NULL);
    agx_sandbox *sb = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    agx_clock_sleep_ms(6500);
    char *out = bash(sb, "echo alive");
    CHECK_STREQ(out, "alive\n");
    free(out);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
}

/* While a client connection made by agx_client_connect_sandbox is open, the background renewal
 * moves the runtime's expiry over it (no HTTP request of its own); once the client is freed it
 * goes back to POST /expiry. agx_client_extend_expiry answers the time left. */
static void test_renewed_over_connection(void)
{
    agx_renewal_stats s0, s1, s2;
    agx_renewal_stats_get(&s0);
    CHECK_MSG(s0.tracked == 0, "%llu sandboxes still tracked", (unsigned long long)s0.tracked);
    agx_sandbox_config *cfg = config(2000, NULL);
    agx_sandbox *sb = NULL;
    agx_client *c = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
    agx_clock_sleep_ms(6500); /* three expiries, about nine renewals */
    char *out = bash_over(c, "echo alive");
    CHECK_STREQ(out, "alive\n");
    free(out);
    agx_renewal_stats_get(&s1);
    CHECK(s1.tracked == 1);
    CHECK_MSG(s1.runtime_over_connection > s0.runtime_over_connection &&
                  s1.runtime_over_http == s0.runtime_over_http,
              "renewals over the connection %llu -> %llu, over HTTP %llu -> %llu",
              (unsigned long long)s0.runtime_over_connection,
              (unsigned long long)s1.runtime_over_connection,
              (unsigned long long)s0.runtime_over_http, (unsigned long long)s1.runtime_over_http);

    int64_t left = 0;
    CHECK_OK(agx_client_extend_expiry(c, 60000, 10000, &left, &err), &err);
    CHECK_MSG(left > 50000 && left <= 60000, "left %lld ms", (long long)left);
    CHECK(agx_client_extend_expiry(c, 1000, 10000, &left, &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_OK(agx_client_extend_expiry(c, 2000, 10000, &left, &err), &err);
    agx_client_free(c);

    /* No connection any more: the next renewals are POSTs, and the sandbox lives on. */
    int64_t until = agx_clock_ms() + 60000;
    do {
        agx_clock_sleep_ms(200);
        agx_renewal_stats_get(&s2);
    } while (s2.runtime_over_http == s1.runtime_over_http && agx_clock_ms() < until);
    CHECK_MSG(s2.runtime_over_http > s1.runtime_over_http, "no renewal by POST /expiry in 60 s");
    out = bash(sb, "echo still");
    CHECK_STREQ(out, "still\n");
    free(out);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
}

/* A host killed with SIGKILL: every server it made ends by itself within its expiry (no gc), and
 * one gc then deletes what is left on disk (owner gone). */
static void test_host_killed(void)
{
    child c;
    child_start(&c, "hold", 3, 2000);
    for (int i = 0; i < c.n; i++)
        CHECK(server_runs(c.ids[i]));
    child_reap(&c, 1);
    int64_t t0 = agx_clock_ms();
    CHECK_MSG(wait_servers_end(&c, 2000 + 30000) == 0, "servers outlived their expiry + 30 s");
    fprintf(stderr, "   3 servers of a killed host ended %lld ms after the kill (expiry 2000 ms)\n",
            (long long)(agx_clock_ms() - t0));
    agx_gc_options go;
    agx_gc_options_init(&go);
    go.run_id = "expiry-test";
    agx_gc_report rep;
    agx_error err;
    CHECK_OK(agx_gc(dep, &go, &rep, &err), &err);
    CHECK(rep.deleted == 3 && rep.failed == 0);
    agx_sandbox_list *list = NULL;
    agx_kv *f = agx_kv_new();
    CHECK(agx_kv_set(f, AGX_LABEL_RUN, "expiry-test") == 0);
    CHECK_OK(agx_deployment_list(dep, f, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 0);
    agx_sandbox_list_free(list);
    agx_kv_free(f);
}

static void on_gc(void *user, const agx_sandbox_info *info, agx_gc_verdict v, const agx_error *e)
{
    (void)info;
    (void)e;
    ((int *)user)[v]++;
}

/* No owner process to judge (another host's, or none): gc deletes it only once its expiry passed;
 * before, it keeps it. */
static void test_gc_by_expiry(void)
{
    child c;
    child_start(&c, "leave-unowned", 1, 2000);
    child_reap(&c, 0);
    agx_gc_options go;
    agx_gc_options_init(&go);
    go.run_id = "expiry-test";
    go.dry_run = true;
    int counts[AGX_GC_CARRIER + 1] = {0};
    go.on_sandbox = on_gc;
    go.user = counts;
    agx_error err;
    agx_gc_report rep;
    CHECK_MSG(wait_servers_end(&c, 2000 + 30000) == 0, "the unowned server outlived its expiry");
    go.expiry_grace_ms = 3600 * 1000; /* a grace not yet over: kept */
    CHECK_OK(agx_gc(dep, &go, &rep, &err), &err);
    CHECK(counts[AGX_GC_KEPT] == 1 && rep.deleted == 0);
    go.expiry_grace_ms = 0;
    go.dry_run = false;
    memset(counts, 0, sizeof counts);
    CHECK_OK(agx_gc(dep, &go, &rep, &err), &err);
    CHECK_MSG(counts[AGX_GC_EXPIRED] == 1 && rep.deleted == 1, "expired %d deleted %zu",
              counts[AGX_GC_EXPIRED], rep.deleted);
}

/* POST /expiry: the runtime's token is required; bounds are checked before anything is sent. */
static void test_extend_checks(void)
{
    agx_sandbox_config *cfg = config(0, NULL);
    agx_sandbox *sb = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    int64_t deadline = agx_clock_ms() + 20000;
    CHECK_OK(agx_runtime_expiry_extend(sb, 60000, deadline, &err), &err);
    CHECK_OK(agx_deployment_extend(dep, sb, 0, &err), &err);
    CHECK(agx_runtime_expiry_extend(sb, 10, deadline, &err) == AGX_ERR_INVALID_ARGUMENT);
    agx_sandbox *forged = agx_sandbox_new("local", agx_sandbox_id(sb), agx_sandbox_runtime_url(sb),
                                          "0000000000000000");
    CHECK(agx_runtime_expiry_extend(forged, 60000, deadline, &err) == AGX_ERR_BACKEND);
    CHECK_CONTAINS(err.message, "401");
    agx_sandbox_free(forged);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    CHECK(agx_deployment_extend(dep, sb, 0, &err) != 0); /* nothing serves it any more */
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
}

/* A runtime started in claim mode: no token until a claim with the claim secret gives one; the
 * first claim wins; the secret is gone from /proc/<pid>/environ; CONNECT needs the claimed token. */
static void test_claim(void)
{
    char dir[600], port_file[700], cmd[1400];
    snprintf(dir, sizeof dir, "%s/claim-XXXXXX", AGX_TEST_BINARY_DIR);
    CHECK(mkdtemp(dir));
    snprintf(port_file, sizeof port_file, "%s/port", dir);
    /* Spawned with an environment of its own (this process has threads: no setenv after fork). */
    char port_var[800];
    snprintf(port_var, sizeof port_var, "AGENTIX_PORT_FILE=%s", port_file);
    char *envp[] = {"AGENTIX_AUTH=claim", "AGENTIX_CLAIM_SECRET=claim-secret-for-the-test",
                    "AGENTIX_BIND_HOST=127.0.0.1", "AGENTIX_BIND_PORT=0", port_var,
                    "PATH=/usr/bin:/bin", NULL};
    char *argv[] = {AGX_TEST_SERVER, NULL};
    pid_t pid;
    CHECK(posix_spawn(&pid, AGX_TEST_SERVER, NULL, NULL, argv, envp) == 0);
    char *text = NULL;
    agx_error err;
    for (int i = 0; i < 300 && agx_file_read(port_file, 64, 0, &text, NULL, &err) != 0; i++)
        agx_clock_sleep_ms(50);
    CHECK_MSG(text, "the claim-mode server wrote no port file");
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", atoi(text));
    free(text);
    int64_t deadline = agx_clock_ms() + 20000;
    agx_sandbox *mine = agx_sandbox_new("local", "claimed", url, "the-sandbox-token-1");
    agx_sandbox *other = agx_sandbox_new("local", "claimed", url, "someone-elses-token");
    CHECK(mine && other);
    /* Nobody connects before the claim, not even with the token that will be set. */
    agx_client_options co;
    agx_client_options_init(&co);
    co.connect_timeout_ms = 10000;
    agx_client *c = NULL;
    CHECK(agx_client_connect_sandbox(mine, &co, &c, &err) != 0 && !c);
    CHECK(agx_runtime_claim(mine, "a-wrong-secret", 60000, deadline, &err) == AGX_ERR_BACKEND);
    CHECK_CONTAINS(err.message, "401");
    CHECK(agx_runtime_claim(mine, NULL, 60000, deadline, &err) == AGX_ERR_BACKEND);
    CHECK_OK(agx_runtime_claim(mine, "claim-secret-for-the-test", 60000, deadline, &err), &err);
    CHECK(agx_runtime_claim(other, "claim-secret-for-the-test", 60000, deadline, &err) ==
          AGX_ERR_CONFLICT);
    CHECK_OK(agx_runtime_expiry_extend(mine, 60000, deadline, &err), &err);
    CHECK(agx_runtime_expiry_extend(other, 60000, deadline, &err) == AGX_ERR_BACKEND);
    CHECK(agx_client_connect_sandbox(other, &co, &c, &err) != 0 && !c);
    CHECK_OK(agx_client_connect_sandbox(mine, &co, &c, &err), &err);
    agx_client_free(c);
    /* The claim secret was scrubbed from the environment block the kernel shows. */
    char environ_path[64], *env = NULL;
    size_t env_len = 0;
    snprintf(environ_path, sizeof environ_path, "/proc/%d/environ", (int)pid);
    CHECK_OK(agx_file_read(environ_path, 1 << 20, 0, &env, &env_len, &err), &err);
    CHECK_MSG(!memmem(env, env_len, "claim-secret-for-the-test", 25),
              "the claim secret is readable in /proc/<pid>/environ");
    free(env);
    agx_sandbox_free(mine);
    agx_sandbox_free(other);
    CHECK(kill(pid, SIGTERM) == 0);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

static size_t live_host(void)
{
    agx_admission_stats st;
    agx_error err;
    CHECK_OK(agx_admission_stats_get("local", &st, &err), &err);
    return st.live_host;
}

/* Cap 2, shared with a child host: its slots count here, and come back when it is killed. */
static void test_admission_cap(void)
{
    agx_admission_options o;
    agx_admission_options_init(&o);
    o.max_live = 2;
    agx_error err;
    CHECK_OK(agx_admission_set("local", &o, &err), &err);
    setenv("AGENTIX_MAX_SANDBOXES_LOCAL", "2", 1); /* the child's knob: the same cap */
    child c;
    child_start(&c, "hold", 2, 60000);
    CHECK(live_host() == 2);
    agx_sandbox_config *cfg = config(0, NULL);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 800) == 0);
    agx_sandbox *sb = NULL;
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    CHECK_MSG(rc == AGX_ERR_RATE_LIMITED && err.retriable && !sb, "got %s: %s",
              agx_error_code_name(rc), err.message);
    CHECK_CONTAINS(err.message, "a free slot");
    child_reap(&c, 1); /* the kernel drops its locks: its slots are free at once */
    CHECK(live_host() == 0);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK(live_host() == 1);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    CHECK(live_host() == 0); /* given back once the delete is confirmed */
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
    for (int i = 0; i < c.n; i++) /* the killed child's sandboxes, still within their expiry */
        CHECK_OK(agx_deployment_delete(dep, c.ids[i], &err), &err);
    unsetenv("AGENTIX_MAX_SANDBOXES_LOCAL");
    o.max_live = 0;
    CHECK_OK(agx_admission_set("local", &o, &err), &err);
}

/* One create per 10 s: a second at once waits past its 500 ms timeout; a service's Retry-After
 * (agx_admission_defer) holds the next create back the same way. */
static void test_admission_rate(void)
{
    agx_admission_options o;
    agx_admission_options_init(&o);
    o.creates_per_s = 0.1;
    agx_error err;
    CHECK_OK(agx_admission_set("local", &o, &err), &err);
    agx_sandbox_config *cfg = config(0, NULL);
    agx_sandbox *sb = NULL, *sb2 = NULL;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 500) == 0);
    int rc = agx_deployment_create(dep, cfg, &sb2, &err);
    CHECK_MSG(rc == AGX_ERR_RATE_LIMITED && !sb2, "got %s", agx_error_code_name(rc));
    CHECK_CONTAINS(err.message, "create rate");
    o.creates_per_s = 1000;
    CHECK_OK(agx_admission_set("local", &o, &err), &err);
    agx_admission_defer("local", 60000);
    rc = agx_deployment_create(dep, cfg, &sb2, &err);
    CHECK_MSG(rc == AGX_ERR_RATE_LIMITED && !sb2, "got %s", agx_error_code_name(rc));
    CHECK_CONTAINS(err.message, "Retry-After");
    agx_admission_stats st;
    CHECK_OK(agx_admission_stats_get("local", &st, &err), &err);
    CHECK(st.admitted >= 1);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(sb), &err), &err);
    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
    o.creates_per_s = 0;
    CHECK_OK(agx_admission_set("local", &o, &err), &err);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], atoi(argv[3]), atoll(argv[4]));
    ssize_t len = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    CHECK(len > 0);
    self_exe[len] = '\0';
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); /* servers of killed hosts are reaped here */
    snprintf(root, sizeof root, "%s/expiry-root-XXXXXX", AGX_TEST_BINARY_DIR);
    CHECK(mkdtemp(root));
    snprintf(state, sizeof state, "%s/expiry-state-XXXXXX", AGX_TEST_BINARY_DIR);
    CHECK(mkdtemp(state));
    setenv("AGENTIX_LOCAL_ROOT", root, 1);
    setenv("AGENTIX_STATE_DIR", state, 1);
    unsetenv("AGENTIX_LOCAL_SERVER");
    unsetenv("AGENTIX_EXPIRY_MS");
    agx_error err;
    CHECK_OK(agx_load_deployment("local", &dep, &err), &err);
    fprintf(stderr, "-- test_extended_while_host_lives\n");
    test_extended_while_host_lives();
    fprintf(stderr, "-- test_renewed_over_connection\n");
    test_renewed_over_connection();
    fprintf(stderr, "-- test_host_killed\n");
    test_host_killed();
    fprintf(stderr, "-- test_gc_by_expiry\n");
    test_gc_by_expiry();
    fprintf(stderr, "-- test_extend_checks\n");
    test_extend_checks();
    fprintf(stderr, "-- test_claim\n");
    test_claim();
    fprintf(stderr, "-- test_admission_cap\n");
    test_admission_cap();
    fprintf(stderr, "-- test_admission_rate\n");
    test_admission_rate();
    agx_deployment_free(dep);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", root, state);
    CHECK(system(cmd) == 0);
    return 0;
}
