/* test_idle_rss.c — the memory footprint of an idle sandbox runtime (issue 3): agentix-server and
 * the agentix-worker it starts, as a backend runs them, must together stay under 8 MB resident.
 * The bound holds because the server links libagentix-runtime + the transport (never libagentix,
 * which drags in curl and its TLS/Kerberos closure) and the worker links libagentix-runtime only;
 * this test also checks those libraries stay unmapped, so a regression names its cause.
 * A memory bound, not a timing one: "idle" is the moment the server reports its worker ready. */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IDLE_RSS_LIMIT_KB (8 * 1024)
#define WAIT_START_MS 30000
#define WAIT_EXIT_MS 30000
#define POLL_MS 20

/* Libraries only the host side needs; mapping one in the sandbox runtime is the regression. */
static const char *const host_only_libs[] = {"libagentix.so", "libcurl", "libgnutls", "libkrb5",
                                             "libnettle", "libssh2", "libldap"};

/* Set while a server runs, so a failed CHECK (which exits) leaves no process or file behind. */
static pid_t g_server = -1;
static char g_dir[] = "/tmp/agx-idle-rss.XXXXXX";
static char g_port_file[128], g_wpid_file[128];

static void cleanup(void)
{
    if (g_server > 0) {
        kill(g_server, SIGKILL); /* the worker sees its pipes close and exits */
        waitpid(g_server, NULL, 0);
        g_server = -1;
    }
    unlink(g_port_file);
    unlink(g_wpid_file);
    rmdir(g_dir);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* The file's first line as a positive integer, or 0 while it is missing or still empty. */
static unsigned long read_number_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    unsigned long v = 0;
    if (fscanf(f, "%lu", &v) != 1)
        v = 0;
    fclose(f);
    return v;
}

/* A "Name:   N kB" field of /proc/<pid>/status; -1 when absent. */
static long status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f, "cannot open %s: %s", path, strerror(errno));
    size_t flen = strlen(field);
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
            kb = strtol(line + flen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* Fails naming the first host-only library mapped into pid. */
static void check_no_host_libs(pid_t pid, const char *who)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    CHECK_MSG(f, "cannot open %s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        for (size_t i = 0; i < sizeof host_only_libs / sizeof host_only_libs[0]; i++)
            CHECK_MSG(!strstr(line, host_only_libs[i]), "%s maps %s, which only hosts need: %s",
                      who, host_only_libs[i], line);
    }
    fclose(f);
}

static pid_t start_server(const char *server, const char *port_file, const char *wpid_file)
{
    pid_t pid = fork();
    CHECK_MSG(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* Only what a backend sets; module path and worker come from the server's own layout. */
        unsetenv("AGENTIX_MODULE_PATH");
        unsetenv("AGENTIX_WORKER");
        setenv("AGENTIX_BIND_HOST", "127.0.0.1", 1);
        setenv("AGENTIX_BIND_PORT", "0", 1);
        setenv("AGENTIX_PORT_FILE", port_file, 1);
        setenv("AGENTIX_WORKER_PID_FILE", wpid_file, 1);
        setenv("AGENTIX_TOKEN", "idle-rss-test-token", 1); /* a server needs one to start */
        execl(server, server, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", server, strerror(errno));
        _exit(127);
    }
    return pid;
}

/* Waits for the port file (listening) and the worker pid file (worker ready). */
static pid_t wait_idle(pid_t server, const char *port_file, const char *wpid_file)
{
    for (long waited = 0; waited < WAIT_START_MS; waited += POLL_MS) {
        int status;
        pid_t r = waitpid(server, &status, WNOHANG);
        CHECK_MSG(r == 0, "agentix-server exited during start-up (status %d)", status);
        unsigned long wpid = read_number_file(wpid_file);
        if (read_number_file(port_file) && wpid)
            return (pid_t)wpid;
        sleep_ms(POLL_MS);
    }
    CHECK_MSG(false, "agentix-server did not listen and report its worker ready within %d ms",
              WAIT_START_MS);
    return -1;
}

static void stop_server(pid_t server, pid_t worker)
{
    CHECK(kill(server, SIGTERM) == 0);
    int status = 0;
    long waited = 0;
    while (waitpid(server, &status, WNOHANG) == 0) {
        if (waited >= WAIT_EXIT_MS) {
            kill(worker, SIGKILL);
            CHECK_MSG(false, "agentix-server did not exit within %d ms of SIGTERM", WAIT_EXIT_MS);
        }
        sleep_ms(POLL_MS);
        waited += POLL_MS;
    }
    g_server = -1;
    CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "agentix-server did not exit cleanly after SIGTERM (status %d)", status);
    /* The drain waits for its worker, so it is gone (reaped) by now. */
    CHECK_MSG(kill(worker, 0) != 0 && errno == ESRCH, "agentix-worker %d outlived its server",
              (int)worker);
}

int main(int argc, char **argv)
{
    CHECK_MSG(argc == 2, "usage: test_idle_rss <agentix-server>");
    CHECK_MSG(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
    snprintf(g_port_file, sizeof g_port_file, "%s/port", g_dir);
    snprintf(g_wpid_file, sizeof g_wpid_file, "%s/worker.pid", g_dir);
    atexit(cleanup);

    pid_t server = g_server = start_server(argv[1], g_port_file, g_wpid_file);
    pid_t worker = wait_idle(server, g_port_file, g_wpid_file);

    long srv_rss = status_kb(server, "VmRSS"), wk_rss = status_kb(worker, "VmRSS");
    long srv_anon = status_kb(server, "RssAnon"), wk_anon = status_kb(worker, "RssAnon");
    CHECK_MSG(srv_rss > 0 && wk_rss > 0, "no VmRSS for the server (%ld) or worker (%ld)", srv_rss,
              wk_rss);
    printf("idle VmRSS: agentix-server %ld kB (anon %ld), agentix-worker %ld kB (anon %ld), "
           "sum %ld kB, limit %d kB\n",
           srv_rss, srv_anon, wk_rss, wk_anon, srv_rss + wk_rss, IDLE_RSS_LIMIT_KB);
    check_no_host_libs(server, "agentix-server");
    check_no_host_libs(worker, "agentix-worker");
    CHECK_MSG(srv_rss + wk_rss < IDLE_RSS_LIMIT_KB,
              "idle agentix-server + agentix-worker use %ld kB resident, over the %d kB bound",
              srv_rss + wk_rss, IDLE_RSS_LIMIT_KB);

    stop_server(server, worker);
    printf("test_idle_rss: ok\n");
    return 0;
}
