/* harness.c — see harness.h. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

static const char *server_bin, *module_dir;

/* Servers still running, stopped at exit so a failed CHECK leaves no process or folder behind. */
#define LIVE_MAX 8
static test_server *live[LIVE_MAX];

static void stop_live(void)
{
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i])
            h_server_stop(live[i]);
}

void h_init(int argc, char **argv)
{
    CHECK_MSG(argc >= 3, "usage: %s <agentix-server> <module dir>", argv[0]);
    server_bin = argv[1];
    module_dir = argv[2];
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

void h_server_start(test_server *s)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/agx-client-test-XXXXXX");
    CHECK(mkdtemp(s->dir));
    char port_file[192], pid_file[192];
    snprintf(port_file, sizeof port_file, "%s/port", s->dir);
    snprintf(pid_file, sizeof pid_file, "%s/worker.pid", s->dir);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test killed by its timeout leaves no server */
        setenv("AGENTIX_BIND_HOST", "127.0.0.1", 1);
        setenv("AGENTIX_BIND_PORT", "0", 1);
        setenv("AGENTIX_PORT_FILE", port_file, 1);
        setenv("AGENTIX_WORKER_PID_FILE", pid_file, 1);
        setenv("AGENTIX_TOKEN", TEST_TOKEN, 1);
        setenv("AGENTIX_MODULE_PATH", module_dir, 1);
        execl(server_bin, server_bin, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < LIVE_MAX; i++)
        if (!live[i]) {
            live[i] = s;
            break;
        }
    char buf[32];
    for (int i = 0; i < 2000 && !read_small(port_file, buf, sizeof buf); i++) {
        int st;
        CHECK_MSG(waitpid(pid, &st, WNOHANG) == 0, "agentix-server exited at start (status %d)",
                  st);
        h_sleep_ms(10);
    }
    s->port = atoi(buf);
    CHECK_MSG(s->port > 0 && s->port < 65536, "no port in %s", port_file);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
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

static bool reap(pid_t pid, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return true;
        h_sleep_ms(10);
    }
    return false;
}

void h_server_stop(test_server *s)
{
    for (int i = 0; i < LIVE_MAX; i++)
        if (live[i] == s)
            live[i] = NULL;
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        if (!reap(s->pid, 10000)) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        s->pid = 0;
    }
    remove_dir(s->dir);
}

void h_server_kill(test_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

pid_t h_worker_pid(const test_server *s)
{
    char path[192], buf[32];
    snprintf(path, sizeof path, "%s/worker.pid", s->dir);
    return read_small(path, buf, sizeof buf) ? (pid_t)atoi(buf) : 0;
}

agx_client *h_connect(const test_server *s)
{
    agx_client_options o;
    agx_client_options_init(&o);
    o.token = TEST_TOKEN;
    agx_client *c = NULL;
    agx_error err;
    agx_error_clear(&err);
    CHECK_OK(agx_client_connect(s->url, &o, &c, &err), &err);
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
