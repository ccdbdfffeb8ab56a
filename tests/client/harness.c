/* harness.c — see harness.h. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "demo_calls.h"

static const char *server_bin;
static char module_dir[4096]; /* absolute: the server runs in its sandbox's folder */

/* Servers still running, stopped at exit so a failed CHECK leaves no process or folder behind. */
#define LIVE_MAX 8
static test_server *live[LIVE_MAX];
static bool at_exit; /* CHECK (which exits) must not run inside exit's handlers */

static void stop_live(void)
{
    at_exit = true;
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i])
            h_server_stop(live[i]);
}

void h_init(int argc, char **argv)
{
    CHECK_MSG(argc >= 3, "usage: %s <agentix-server> <module dir>", argv[0]);
    server_bin = argv[1];
    CHECK_MSG(realpath(argv[2], module_dir), "module folder %s: %s", argv[2], strerror(errno));
    /* The server of this build; the backend plugin itself is found beside libagentix. */
    setenv("AGENTIX_LOCAL_SERVER", server_bin, 1);
    signal(SIGPIPE, SIG_IGN);
    atexit(stop_live);
}

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n > 0;
}

/* The server's pid from its sandbox record ("pid" is also its process group). */
static pid_t record_pid(const test_server *s)
{
    char path[320], buf[4096];
    snprintf(path, sizeof path, "%s/local/%s/sandbox.json", s->dir, agx_sandbox_id(s->sb));
    CHECK_MSG(read_small(path, buf, sizeof buf), "cannot read %s", path);
    const char *p = strstr(buf, "\"pid\"");
    CHECK_MSG(p, "no \"pid\" in %s", path);
    p += 5;
    while (*p == ' ' || *p == ':')
        p++;
    long pid = strtol(p, NULL, 10);
    CHECK_MSG(pid > 1, "bad pid in %s", path);
    return (pid_t)pid;
}

void h_server_start(test_server *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/agx-client-test-XXXXXX");
    CHECK(mkdtemp(s->dir));
    char root[192], pid_file[192];
    snprintf(root, sizeof root, "%s/local", s->dir);
    snprintf(pid_file, sizeof pid_file, "%s/worker.pid", s->dir);
    for (int i = 0; i < LIVE_MAX; i++)
        if (!live[i]) {
            live[i] = s;
            break;
        }
    agx_error err;
    agx_error_clear(&err);
    setenv("AGENTIX_LOCAL_ROOT", root, 1); /* per server, so nothing collides */
    CHECK_OK(agx_load_deployment("local", &s->dep, &err), &err);
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg);
    agx_kv *env = agx_sandbox_config_env(cfg);
    CHECK(agx_kv_set(env, "AGENTIX_MODULE_PATH", module_dir) == 0);
    CHECK(agx_kv_set(env, "AGENTIX_WORKER_PID_FILE", pid_file) == 0);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, 60000) == 0);
    int rc = agx_deployment_create(s->dep, cfg, &s->sb, &err);
    agx_sandbox_config_free(cfg);
    CHECK_OK(rc, &err);
    const char *url = agx_sandbox_runtime_url(s->sb), *token = agx_sandbox_token(s->sb);
    CHECK(url && strlen(url) < sizeof s->url && token && strlen(token) < sizeof s->token);
    snprintf(s->url, sizeof s->url, "%s", url);
    snprintf(s->token, sizeof s->token, "%s", token);
    CHECK_MSG(sscanf(url, "http://127.0.0.1:%d", &s->port) == 1 && s->port > 0 &&
                  s->port < 65536, "unexpected runtime url %s", url);
    s->pid = record_pid(s);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    closedir(d);
    rmdir(dir);
}

/* Deletes the sandbox (the backend stops and reaps the server's group, then removes its folder). */
static void delete_sandbox(test_server *s)
{
    if (!s->sb)
        return;
    agx_error err;
    agx_error_clear(&err);
    int rc = agx_deployment_delete(s->dep, agx_sandbox_id(s->sb), &err);
    agx_sandbox_free(s->sb);
    s->sb = NULL;
    s->pid = 0;
    if (at_exit) {
        if (rc)
            fprintf(stderr, "deleting the sandbox failed (%d): %s\n", rc, err.message);
        return;
    }
    CHECK_OK(rc, &err);
}

void h_server_stop(test_server *s)
{
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i] == s)
            live[i] = NULL;
    delete_sandbox(s);
    if (s->dep) {
        agx_deployment_free(s->dep);
        s->dep = NULL;
    }
    char root[192];
    snprintf(root, sizeof root, "%s/local", s->dir);
    rmdir(root);
    remove_dir(s->dir);
}

void h_server_kill(test_server *s)
{
    if (s->pid > 0)
        kill(s->pid, SIGKILL);
    delete_sandbox(s);
}

pid_t h_worker_pid(const test_server *s)
{
    char path[192], buf[32];
    snprintf(path, sizeof path, "%s/worker.pid", s->dir);
    return read_small(path, buf, sizeof buf) ? (pid_t)atoi(buf) : 0;
}

agx_client *h_connect(const test_server *s)
{
    agx_client *c = NULL;
    agx_error err;
    agx_error_clear(&err);
    CHECK_OK(agx_test_connect(s->sb, &c, &err), &err); /* demo_calls.h: a loaded machine's bound */
    CHECK(agx_client_is_connected(c));
    return c;
}

long h_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long kib = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

bool h_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

bool h_wait_file(const char *path, int ms)
{
    for (int i = 0; i <= ms / 10; i++) {
        if (h_file_exists(path))
            return true;
        h_sleep_ms(10);
    }
    return false;
}

agx_value *h_ints(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    agx_value *a = agx_value_array();
    for (int i = 0; i < n; i++)
        agx_value_array_push(a, agx_value_int(va_arg(ap, int)));
    va_end(ap);
    return a;
}

agx_value *h_kw(const char *key, ...)
{
    va_list ap;
    va_start(ap, key);
    agx_value *m = agx_value_map();
    for (const char *k = key; k; k = va_arg(ap, const char *))
        agx_value_map_set(m, k, va_arg(ap, agx_value *));
    va_end(ap);
    return m;
}
