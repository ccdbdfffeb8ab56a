/* test_local.c — what is particular to the local backend (the contract every backend keeps is
 * tests/contract's): the server process it spawns (no inherited fds, the config's env, no loader
 * variables, its own process group, nothing of it left after delete), servers that exit or never
 * answer, sandboxes of other processes and of a dead owner found through their records, bad
 * configuration. The plugin is loaded from the build tree with dlopen, the way discovery loads
 * it. */
#include <curl/curl.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/client.h"
#include "agentix/plugin.h"
#include "check.h"

static const agx_backend_vtable *vt;
static char root[1024];

/* ---- helpers ---- */

static void *construct_with(const char *server)
{
    setenv("AGENTIX_LOCAL_SERVER", server, 1);
    agx_error err;
    void *self = NULL;
    CHECK_OK(vt->construct(&self, &err), &err);
    return self;
}

static agx_sandbox_config *config(const char *label_key, const char *label_value, int64_t timeout_ms)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg);
    if (label_key)
        CHECK(agx_kv_set(agx_sandbox_config_labels(cfg), label_key, label_value) == 0);
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "AGX_TEST_VAR", "from-config") == 0);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, timeout_ms) == 0);
    return cfg;
}

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p;
    (void)u;
    return s * n;
}

static long http_status(const char *url, const char *path)
{
    char full[256];
    snprintf(full, sizeof full, "%s%s", url, path);
    CURL *h = curl_easy_init();
    CHECK(h);
    curl_easy_setopt(h, CURLOPT_URL, full);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

/* The server's pid, from the record the backend keeps beside it. */
static pid_t record_pid(const char *id)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/sandbox.json", root, id);
    json_t *doc = json_load_file(path, 0, NULL);
    CHECK_MSG(doc, "no readable %s", path);
    pid_t pid = (pid_t)json_integer_value(json_object_get(doc, "pid"));
    json_decref(doc);
    CHECK(pid > 1);
    return pid;
}

/* Gone, or a zombie: an orphan's zombie stays until PID 1 reaps it, and in containers whose
 * PID 1 never reaps that is forever. */
static int process_gone(pid_t pid)
{
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 1;
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

/* Live processes whose process group is pgid (the server leads its own): the server, its worker
 * and whatever they started. A zombie (Z) or a process being reaped (X) is dead — what delete
 * promises; one that is still exiting (killed, releasing its memory and files) is not. With
 * report, each one counted is printed. */
static int group_walk(pid_t pgid, int report)
{
    DIR *d = opendir("/proc");
    CHECK(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char path[300], buf[1024];
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t got = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (got <= 0)
            continue;
        buf[got] = '\0';
        char *p = strrchr(buf, ')'), state;
        int ppid, pgrp;
        if (p && sscanf(p + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
            !strchr("ZXx", state)) {
            n++;
            if (report)
                fprintf(stderr, "still in process group %d: %s", (int)pgid, buf);
        }
    }
    closedir(d);
    return n;
}

static int group_members(pid_t pgid) { return group_walk(pgid, 0); }
/* No live process in group pgid; the ones there are printed. */
static int group_empty(pid_t pgid) { return group_walk(pgid, 1) == 0; }

/* The sandbox answers remote calls: agentix.bash::run in its working dir (the work folder inside
 * the backend's folder of the sandbox, which holds the record), with the config's env. */
static void check_remote_call(const agx_sandbox *sb)
{
    agx_client *c = NULL;
    agx_error err;
    CHECK_OK(agx_client_connect_sandbox(sb, NULL, &c, &err), &err);
    agx_value *kwargs = agx_value_map();
    CHECK(kwargs && agx_value_map_set(kwargs, "command", agx_value_string("pwd; echo \"$AGX_TEST_VAR\"")) == 0);
    agx_value *result = NULL;
    CHECK_OK(agx_client_call(c, "agentix.bash::run", NULL, kwargs, 30000, &result, &err), &err);
    CHECK(agx_value_get_int64(agx_value_map_get(result, "exit_code")) == 0);
    char want[1200];
    snprintf(want, sizeof want, "%s/%s/work\nfrom-config\n", root, agx_sandbox_id(sb));
    CHECK_STREQ(agx_value_get_string(agx_value_map_get(result, "stdout"), NULL), want);
    agx_value_free(result);
    agx_value_free(kwargs);
    agx_client_free(c);
}

static int root_entries(void)
{
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

static agx_sandbox_state state_of(void *self, const char *id)
{
    agx_error err;
    agx_sandbox_info *info = NULL;
    CHECK_OK(vt->get_sandbox(self, id, &info, &err), &err);
    CHECK_STREQ(agx_sandbox_info_id(info), id);
    agx_sandbox_state st = agx_sandbox_info_state(info);
    agx_sandbox_info_free(info);
    return st;
}

/* A signal is delivered asynchronously: poll (bounded) until the backend sees the state. */
static agx_sandbox_state await_state(void *self, const char *id, agx_sandbox_state want)
{
    agx_sandbox_state st = state_of(self, id);
    for (int i = 0; i < 1000 && st != want; i++) {
        usleep(10000);
        st = state_of(self, id);
    }
    return st;
}

/* Reads /proc/<pid>/environ into buf with NULs turned into newlines. */
static void proc_environ(pid_t pid, char *buf, size_t n)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    ssize_t got = read(fd, buf, n - 1);
    close(fd);
    CHECK(got > 0);
    for (ssize_t i = 0; i < got; i++)
        if (buf[i] == '\0')
            buf[i] = '\n';
    buf[got] = '\0';
}

/* ---- tests ---- */

static void test_lifecycle(void)
{
    /* An fd the host forgot to mark close-on-exec must not reach the server. */
    char leak_path[1100];
    snprintf(leak_path, sizeof leak_path, "%s.leak-probe", root);
    int leaky = open(leak_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(leaky >= 0);
    setenv("LD_PRELOAD", "", 1);

    void *self = construct_with(AGX_TEST_SERVER);
    agx_sandbox_config *cfg = config("suite", "lifecycle", 60000);
    agx_sandbox *sb = NULL;
    agx_error err;
    CHECK_OK(vt->create_sandbox(self, cfg, &sb, &err), &err);
    const char *id = agx_sandbox_id(sb);
    CHECK_CONTAINS(agx_sandbox_runtime_url(sb), "http://127.0.0.1:");
    CHECK_STREQ(agx_sandbox_backend(sb), "local");
    CHECK(agx_sandbox_token(sb) && strlen(agx_sandbox_token(sb)) == 32);
    CHECK(http_status(agx_sandbox_runtime_url(sb), "/health") == 200);

    pid_t pid = record_pid(id);
    char fdpath[64], target[1200] = "";
    snprintf(fdpath, sizeof fdpath, "/proc/%d/fd/%d", (int)pid, leaky);
    ssize_t tl = readlink(fdpath, target, sizeof target - 1);
    if (tl > 0)
        target[tl] = '\0';
    CHECK_MSG(tl < 0 || strcmp(target, leak_path) != 0, "server inherited host fd %d", leaky);
    static char env[65536];
    proc_environ(pid, env, sizeof env);
    CHECK_CONTAINS(env, "\nAGX_TEST_VAR=from-config\n");
    CHECK_CONTAINS(env, "AGENTIX_BIND_HOST=127.0.0.1\n");
    CHECK_CONTAINS(env, "AGENTIX_TOKEN_FD=3\n"); /* the token came through a pipe… */
    CHECK(!strstr(env, agx_sandbox_token(sb)));   /* …and is in no environment */
    CHECK(!strstr(env, "LD_PRELOAD="));
    check_remote_call(sb);
    CHECK(group_members(pid) >= 2); /* the server and its worker */

    agx_sandbox_info *info = NULL;
    CHECK_OK(vt->get_sandbox(self, id, &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING);
    CHECK_STREQ(agx_sandbox_info_runtime_url(info), agx_sandbox_runtime_url(sb));
    CHECK_STREQ(agx_kv_get(agx_sandbox_info_labels_const(info), "suite"), "lifecycle");
    CHECK(agx_sandbox_info_created_at(info) > 0);
    agx_sandbox_info_free(info);

    CHECK_OK(vt->delete_sandbox(self, id, &err), &err);
    CHECK(process_gone(pid));
    CHECK_MSG(group_empty(pid), "processes of sandbox %s outlived its delete", id);
    CHECK(state_of(self, id) == AGX_SANDBOX_GONE);
    CHECK_OK(vt->delete_sandbox(self, id, &err), &err); /* already gone: success */
    CHECK(root_entries() == 0);

    agx_sandbox_free(sb);
    agx_sandbox_config_free(cfg);
    vt->destruct(self);
    close(leaky);
    unlink(leak_path);
    unsetenv("LD_PRELOAD");
}

static void test_exits_at_start(void)
{
    const char *servers[] = {"/bin/false", AGX_TEST_SOURCE_DIR "/exit_server.sh"};
    const char *says[] = {"exited with status 1", "exited with status 3"};
    for (int i = 0; i < 2; i++) {
        void *self = construct_with(servers[i]);
        agx_sandbox_config *cfg = config(NULL, NULL, 30000);
        agx_sandbox *sb = NULL;
        agx_error err;
        int rc = vt->create_sandbox(self, cfg, &sb, &err);
        CHECK(rc == AGX_ERR_BACKEND && sb == NULL);
        CHECK_CONTAINS(err.message, says[i]);
        CHECK_CONTAINS(err.message, "server.log");
        if (i == 1)
            CHECK_CONTAINS(err.detail, "boom: the stand-in refuses to start (token set: yes)");
        CHECK(root_entries() == 0);
        agx_sandbox_config_free(cfg);
        vt->destruct(self);
    }
}

static void test_never_healthy(void)
{
    char pid_file[1100];
    snprintf(pid_file, sizeof pid_file, "%s.hang-pid", root);
    unlink(pid_file);
    void *self = construct_with(AGX_TEST_SOURCE_DIR "/hang_server.sh");
    agx_sandbox_config *cfg = config(NULL, NULL, 1500);
    CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "HANG_PID_FILE", pid_file) == 0);
    agx_sandbox *sb = NULL;
    agx_error err;
    int rc = vt->create_sandbox(self, cfg, &sb, &err);
    CHECK(rc == AGX_ERR_TIMEOUT && sb == NULL);
    CHECK(err.retriable == 1);
    CHECK_CONTAINS(err.message, "did not answer GET /health");
    FILE *f = fopen(pid_file, "r");
    CHECK_MSG(f, "the hanging server never started");
    int pid = 0;
    CHECK(fscanf(f, "%d", &pid) == 1 && pid > 1);
    fclose(f);
    unlink(pid_file);
    CHECK_MSG(process_gone(pid), "hanging server %d still runs", pid);
    CHECK(root_entries() == 0);
    agx_sandbox_config_free(cfg);
    vt->destruct(self);
}

static int list_has(const agx_sandbox_list *list, const char *id)
{
    for (size_t i = 0; i < agx_sandbox_list_count(list); i++)
        if (!strcmp(agx_sandbox_info_id(agx_sandbox_list_at(list, i)), id))
            return 1;
    return 0;
}

static void test_list_and_other_process(void)
{
    void *self = construct_with(AGX_TEST_SERVER);
    void *other = construct_with(AGX_TEST_SERVER); /* stands for another host process */
    agx_sandbox_config *ca = config("team", "a", 60000), *cb = config("team", "b", 60000);
    agx_sandbox *a = NULL, *b = NULL;
    agx_error err;
    CHECK_OK(vt->create_sandbox(self, ca, &a, &err), &err);
    CHECK_OK(vt->create_sandbox(self, cb, &b, &err), &err);

    agx_kv *filter = agx_kv_new();
    CHECK(filter && agx_kv_set(filter, "team", "a") == 0);
    agx_sandbox_list *list = NULL;
    CHECK_OK(vt->list_sandboxes(self, filter, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1 && list_has(list, agx_sandbox_id(a)));
    agx_sandbox_list_free(list);
    CHECK_OK(vt->list_sandboxes(other, filter, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1 && list_has(list, agx_sandbox_id(a)));
    CHECK(agx_sandbox_info_state(agx_sandbox_list_at(list, 0)) == AGX_SANDBOX_RUNNING);
    agx_sandbox_list_free(list);
    CHECK_OK(vt->list_sandboxes(other, NULL, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 2 && list_has(list, agx_sandbox_id(b)));
    agx_sandbox_list_free(list);

    /* The other instance stops b's server from the record on disk; then b reads as gone. */
    pid_t pid_b = record_pid(agx_sandbox_id(b));
    CHECK(state_of(other, agx_sandbox_id(b)) == AGX_SANDBOX_RUNNING);
    CHECK_OK(vt->delete_sandbox(other, agx_sandbox_id(b), &err), &err);
    CHECK(state_of(self, agx_sandbox_id(b)) == AGX_SANDBOX_GONE);
    CHECK_OK(vt->delete_sandbox(self, agx_sandbox_id(b), &err), &err);
    CHECK(process_gone(pid_b));

    /* A server that died on its own: its folder remains, so it reads as stopped until deleted. */
    pid_t pid_a = record_pid(agx_sandbox_id(a));
    CHECK(kill(pid_a, SIGKILL) == 0);
    CHECK(await_state(self, agx_sandbox_id(a), AGX_SANDBOX_STOPPED) == AGX_SANDBOX_STOPPED);
    CHECK_OK(vt->list_sandboxes(self, filter, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1);
    CHECK(agx_sandbox_info_state(agx_sandbox_list_at(list, 0)) == AGX_SANDBOX_STOPPED);
    agx_sandbox_list_free(list);
    CHECK_OK(vt->delete_sandbox(self, agx_sandbox_id(a), &err), &err);
    CHECK(process_gone(pid_a));
    CHECK(group_empty(pid_a) && group_empty(pid_b));
    CHECK(root_entries() == 0);

    agx_kv_free(filter);
    agx_sandbox_free(a);
    agx_sandbox_free(b);
    agx_sandbox_config_free(ca);
    agx_sandbox_config_free(cb);
    vt->destruct(other);
    vt->destruct(self);
}

/* A host process that created a sandbox and died without deleting it: its server lives on,
 * orphaned. Another process finds it by label, sees whose it was, and deletes it. */
static void test_orphan_of_dead_owner(void)
{
    /* The orphans are reparented to this process rather than to a PID 1 that may never reap
     * them, so the test leaves no zombie on the machine. */
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int fds[2];
    CHECK(pipe2(fds, O_CLOEXEC) == 0);
    pid_t owner = fork();
    CHECK(owner >= 0);
    if (owner == 0) {
        close(fds[0]);
        void *self = construct_with(AGX_TEST_SERVER);
        agx_sandbox_config *cfg = config("suite", "orphan", 60000);
        agx_sandbox *sb = NULL;
        agx_error err;
        int rc = vt->create_sandbox(self, cfg, &sb, &err);
        char id[64] = "";
        if (rc == 0)
            snprintf(id, sizeof id, "%s", agx_sandbox_id(sb));
        int ok = write(fds[1], id, sizeof id) == (ssize_t)sizeof id;
        agx_sandbox_free(sb);
        agx_sandbox_config_free(cfg);
        vt->destruct(self); /* frees memory, leaves the sandbox running */
        _exit(rc == 0 && ok ? 0 : 1);
    }
    close(fds[1]);
    char id[64] = "";
    CHECK(read(fds[0], id, sizeof id) == (ssize_t)sizeof id && id[0]);
    close(fds[0]);
    int status = 0;
    CHECK(waitpid(owner, &status, 0) == owner && WIFEXITED(status) && WEXITSTATUS(status) == 0);

    void *self = construct_with(AGX_TEST_SERVER);
    pid_t pid = record_pid(id);
    CHECK(kill(pid, 0) == 0);
    agx_kv *filter = agx_kv_new();
    CHECK(filter && agx_kv_set(filter, "suite", "orphan") == 0);
    agx_sandbox_list *list = NULL;
    agx_error err;
    CHECK_OK(vt->list_sandboxes(self, filter, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 1 && list_has(list, id));
    CHECK(agx_sandbox_info_state(agx_sandbox_list_at(list, 0)) == AGX_SANDBOX_RUNNING);
    agx_sandbox_list_free(list);
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/sandbox.json", root, id);
    json_t *doc = json_load_file(path, 0, NULL);
    CHECK(doc && json_integer_value(json_object_get(doc, "owner_pid")) == owner);
    json_decref(doc);

    CHECK_OK(vt->delete_sandbox(self, id, &err), &err);
    CHECK(process_gone(pid) && group_empty(pid));
    CHECK(state_of(self, id) == AGX_SANDBOX_GONE);
    CHECK(root_entries() == 0);
    agx_kv_free(filter);
    vt->destruct(self);
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    CHECK(prctl(PR_SET_CHILD_SUBREAPER, 0) == 0);
}

/* Field 22 of /proc/<pid>/stat, the process's start time in clock ticks (what owner labels and
 * staging names carry). */
static unsigned long long start_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    CHECK(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    CHECK(p);
    unsigned long long v = 0;
    for (int field = 2; field < 22 && p; field++)
        p = strchr(p + 1, ' ');
    CHECK(p && sscanf(p + 1, "%llu", &v) == 1 && v > 0);
    return v;
}

static void make_stage(const char *name)
{
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, name);
    CHECK(mkdir(path, 0700) == 0);
    snprintf(path, sizeof path, "%s/%s/work", root, name);
    CHECK(mkdir(path, 0700) == 0);
}

/* A host killed inside a create, before its sandbox folder was in place, leaves a staging folder
 * naming it; the next list removes it once that process is gone, and keeps those of a creator
 * that still runs (a create in flight) and names it cannot judge. */
static void test_staging_of_killed_create(void)
{
    pid_t child = fork();
    CHECK(child >= 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    unsigned long long dead_start = start_ticks(child);
    CHECK(kill(child, SIGKILL) == 0 && waitpid(child, NULL, 0) == child);
    char dead[256], live[256];
    snprintf(dead, sizeof dead, ".new-%d-%llu-local-0123abcd", (int)child, dead_start);
    snprintf(live, sizeof live, ".new-%d-%llu-local-4567ef01", (int)getpid(), start_ticks(getpid()));
    make_stage(dead);
    make_stage(live);
    make_stage(".new-not-a-creator");
    void *self = construct_with(AGX_TEST_SERVER);
    agx_sandbox_list *list = NULL;
    agx_error err;
    CHECK_OK(vt->list_sandboxes(self, NULL, &list, &err), &err);
    CHECK(agx_sandbox_list_count(list) == 0); /* staging folders are never sandboxes */
    agx_sandbox_list_free(list);
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", root, dead);
    CHECK_MSG(access(path, F_OK) != 0, "%s survived the sweep", dead);
    CHECK(root_entries() == 2);
    const char *keep[] = {live, ".new-not-a-creator"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s/work", root, keep[i]);
        CHECK(rmdir(path) == 0);
        snprintf(path, sizeof path, "%s/%s", root, keep[i]);
        CHECK(rmdir(path) == 0);
    }
    vt->destruct(self);
}

static void test_bad_input(void)
{
    void *self = NULL;
    agx_error err;
    setenv("AGENTIX_LOCAL_SERVER", "/nonexistent/agentix-server", 1);
    CHECK(vt->construct(&self, &err) == AGX_ERR_INVALID_ARGUMENT && self == NULL);
    CHECK_CONTAINS(err.message, "AGENTIX_LOCAL_SERVER='/nonexistent/agentix-server'");
    setenv("AGENTIX_LOCAL_SERVER", AGX_TEST_SERVER, 1);
    setenv("AGENTIX_LOCAL_ROOT", "relative/root", 1);
    CHECK(vt->construct(&self, &err) == AGX_ERR_INVALID_ARGUMENT && self == NULL);
    CHECK_CONTAINS(err.message, "AGENTIX_LOCAL_ROOT");
    setenv("AGENTIX_LOCAL_ROOT", root, 1);

    self = construct_with(AGX_TEST_SERVER);
    CHECK(vt->delete_sandbox(self, "../etc", &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK(vt->delete_sandbox(self, "", &err) == AGX_ERR_INVALID_ARGUMENT);
    CHECK_OK(vt->delete_sandbox(self, "local-000000000000000000000000", &err), &err);
    CHECK(state_of(self, "local-000000000000000000000000") == AGX_SANDBOX_GONE);
    agx_sandbox_info *info = NULL;
    CHECK(vt->get_sandbox(self, "a/b", &info, &err) == AGX_ERR_INVALID_ARGUMENT && !info);
    agx_sandbox_config *cfg = config("bad", "\xff\xfe", 60000);
    agx_sandbox *sb = NULL;
    CHECK(vt->create_sandbox(self, cfg, &sb, &err) == AGX_ERR_INVALID_ARGUMENT && !sb);
    CHECK_CONTAINS(err.message, "UTF-8");
    CHECK(root_entries() == 0);
    agx_sandbox_config_free(cfg);
    vt->destruct(self);
}

/* The way hosts use it: discovered by name from the manifest beside libagentix, running the
 * agentix-server installed beside it (no AGENTIX_LOCAL_SERVER), in a session that deletes the
 * sandbox when the block is left. */
static void test_session_via_discovery(void)
{
    unsetenv("AGENTIX_LOCAL_SERVER");
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("local", &dep, &err), &err);
    CHECK_STREQ(agx_deployment_name(dep), "local");
    agx_sandbox_config *cfg = config("suite", "session", 60000);
    pid_t pid = 0;
    char id[64] = "";
    {
        AGX_SESSION(sb, dep, cfg, &err);
        CHECK_MSG(sb, "%s\n  detail: %s", err.message, err.detail);
        snprintf(id, sizeof id, "%s", agx_sandbox_id(sb));
        pid = record_pid(id);
        CHECK(http_status(agx_sandbox_runtime_url(sb), "/health") == 200);
        check_remote_call(sb);
    }
    CHECK(err.code == AGX_OK);
    CHECK(process_gone(pid) && group_empty(pid));
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, id, &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE);
    agx_sandbox_info_free(info);
    CHECK(root_entries() == 0);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(dep);
}

/* At exit, also after a failed CHECK: whatever a failing test left in the root is deleted, so a
 * red run leaves no server running. A passing run has nothing to sweep. */
static void sweep_root(void)
{
    if (!root[0])
        return;
    DIR *d = opendir(root);
    if (!d)
        return;
    setenv("AGENTIX_LOCAL_SERVER", AGX_TEST_SERVER, 1);
    setenv("AGENTIX_LOCAL_ROOT", root, 1);
    void *self = NULL;
    agx_error err;
    if (vt->construct(&self, &err) == 0) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && vt->delete_sandbox(self, e->d_name, &err) != 0)
                fprintf(stderr, "sweep: %s: %s\n", e->d_name, err.message);
        vt->destruct(self);
    }
    closedir(d);
    rmdir(root);
    const char *side[] = {".leak-probe", ".hang-pid"};
    for (size_t i = 0; i < 2; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s%s", root, side[i]);
        unlink(path);
    }
}

int main(void)
{
    void *so = dlopen(AGX_LOCAL_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    CHECK_MSG(so, "dlopen: %s", dlerror());
    agx_backend_entry_fn entry = (agx_backend_entry_fn)dlsym(so, "agx_backend_local");
    CHECK(entry);
    vt = entry();
    CHECK(vt->abi_version == AGX_PLUGIN_ABI_VERSION && !strcmp(vt->name, "local"));

    snprintf(root, sizeof root, "%s/local-root-XXXXXX", AGX_TEST_BINARY_DIR);
    CHECK(mkdtemp(root));
    setenv("AGENTIX_LOCAL_ROOT", root, 1);
    atexit(sweep_root);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    TEST_RUN(test_lifecycle);
    TEST_RUN(test_exits_at_start);
    TEST_RUN(test_never_healthy);
    TEST_RUN(test_list_and_other_process);
    TEST_RUN(test_orphan_of_dead_owner);
    TEST_RUN(test_staging_of_killed_create);
    TEST_RUN(test_bad_input);
    TEST_RUN(test_session_via_discovery);

    CHECK(root_entries() == 0);
    CHECK(rmdir(root) == 0);
    root[0] = '\0';
    curl_global_cleanup();
    dlclose(so);
    return 0;
}
