/* test_create_bounds.c — a create's timeout is a bound on every failure path: with a 5 s timeout,
 * against an API that refuses connections and one that accepts and never answers, every backend's
 * create fails within 5 s + 1 s (the clean-up after it included). local: a runtime that exits at
 * once / never listens; docker: a daemon that answered /version and then refuses / hangs; e2b,
 * daytona: a closed port / a listener that never answers; k8s-pool: the same behind a kubeconfig.
 * The bound is not asserted under valgrind (AGX_UNDER_VALGRIND), where everything is slower.
 *
 * Usage: test_create_bounds */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agentix/agentix.h"
#include "agentix/clock.h"
#include "check.h"

#define TIMEOUT_MS 5000
#define BOUND_MS (TIMEOUT_MS + 1000)

static char dir[512];
static int worst_ok = 1;

/* ---- listeners that never answer, ports that refuse ---- */

typedef struct mute {
    int fd;
    int docker;      /* answer GET …/version first, as a daemon would, then go mute */
    int refuse_after; /* docker: close the listener once /version was answered */
} mute;

static const char version_reply[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 44\r\n\r\n"
    "{\"ApiVersion\":\"1.43\",\"MinAPIVersion\":\"1.12\"}";

/* Accepts and holds every connection without a word (after the version answer, for docker). */
static void *mute_main(void *arg)
{
    mute *m = arg;
    for (;;) {
        int c = accept(m->fd, NULL, NULL);
        if (c < 0) {
            free(m);
            return NULL;
        }
        if (m->docker) {
            char buf[4096];
            ssize_t n = read(c, buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = '\0';
            if (strstr(buf, "/version ")) {
                ssize_t w = write(c, version_reply, sizeof version_reply - 1);
                (void)w;
                close(c);
                if (m->refuse_after) {
                    close(m->fd); /* from now on: connection refused */
                    free(m);
                    return NULL;
                }
                continue;
            }
        }
        /* Held open, never answered, until the process ends. */
    }
}

static int tcp_listener(int *port, int listen_too)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    *port = ntohs(a.sin_port);
    if (!listen_too) {
        close(fd); /* bound once, now closed: connections are refused */
        return -1;
    }
    CHECK(listen(fd, 64) == 0);
    return fd;
}

static void start_mute(int fd, int docker, int refuse_after)
{
    mute *m = calloc(1, sizeof *m);
    CHECK(m);
    *m = (mute){fd, docker, refuse_after};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, mute_main, m) == 0);
    pthread_detach(t);
}

/* ---- one create ---- */

/* dep: a deployment loaded already (freed here), or NULL to load backend now. */
static void bounded_on(agx_deployment *dep, const char *backend, const char *what,
                       agx_sandbox_config *cfg)
{
    agx_error err;
    if (!dep)
        CHECK_OK(agx_load_deployment(backend, &dep, &err), &err);
    CHECK(agx_sandbox_config_set_timeout_ms(cfg, TIMEOUT_MS) == 0);
    agx_sandbox *sb = NULL;
    int64_t t0 = agx_clock_ms();
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    int64_t took = agx_clock_ms() - t0;
    fprintf(stderr, "   %-8s %-28s %5lld ms  %s: %.140s\n", backend, what, (long long)took,
            agx_error_code_name(rc), err.message);
    CHECK(rc != 0 && !sb);
    if (!getenv("AGX_UNDER_VALGRIND") && took > BOUND_MS) {
        fprintf(stderr, "   ^ over the bound of %d ms\n", BOUND_MS);
        worst_ok = 0;
    }
    agx_deployment_free(dep);
    agx_sandbox_config_free(cfg);
}

static void bounded_create(const char *backend, const char *what, agx_sandbox_config *cfg)
{
    bounded_on(NULL, backend, what, cfg);
}

static agx_sandbox_config *plain(void)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg);
    return cfg;
}

/* ---- per backend ---- */

static void local_bounds(void)
{
    char pidfile[600];
    snprintf(pidfile, sizeof pidfile, "%s/hang.pid", dir);
    setenv("HANG_PID_FILE", pidfile, 1);
    setenv("AGENTIX_LOCAL_ROOT", dir, 1);
    setenv("AGENTIX_LOCAL_SERVER", AGX_TEST_LOCAL_DIR "/exit_server.sh", 1);
    bounded_create("local", "runtime exits at once", plain());
    setenv("AGENTIX_LOCAL_SERVER", AGX_TEST_LOCAL_DIR "/hang_server.sh", 1);
    bounded_create("local", "runtime never listens", plain());
    unsetenv("AGENTIX_LOCAL_SERVER");
}

static int unix_listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    CHECK(fd >= 0 && strlen(path) < sizeof a.sun_path);
    strcpy(a.sun_path, path);
    unlink(path);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 64) == 0);
    return fd;
}

static agx_sandbox_config *docker_cfg(void)
{
    agx_sandbox_config *cfg = plain();
    CHECK(agx_sandbox_config_set_image(cfg, "agx-test-debian:12") == 0 &&
          agx_sandbox_config_set_bundle(cfg, "agx-test-bundle:none") == 0);
    return cfg;
}

static void docker_bounds(void)
{
    char sock[600], host[700];
    snprintf(sock, sizeof sock, "%s/refuse.sock", dir);
    start_mute(unix_listener(sock), 1, 1);
    snprintf(host, sizeof host, "unix://%s", sock);
    setenv("DOCKER_HOST", host, 1);
    agx_deployment *dep = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &dep, &err), &err); /* answers /version, then refuses */
    bounded_on(dep, "docker", "daemon refuses", docker_cfg());
    snprintf(sock, sizeof sock, "%s/hang.sock", dir);
    start_mute(unix_listener(sock), 1, 0);
    snprintf(host, sizeof host, "unix://%s", sock);
    setenv("DOCKER_HOST", host, 1);
    bounded_create("docker", "daemon never answers", docker_cfg());
    unsetenv("DOCKER_HOST");
}

static void cloud_bounds(const char *backend, const char *url_var, const char *key_var,
                         const char *key, const char *path)
{
    int port;
    char url[128];
    setenv(key_var, key, 1);
    tcp_listener(&port, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    setenv(url_var, url, 1);
    bounded_create(backend, "API refuses", plain());
    start_mute(tcp_listener(&port, 1), 0, 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    setenv(url_var, url, 1);
    bounded_create(backend, "API never answers", plain());
}

static void k8s_bounds(void)
{
    char kc[600];
    snprintf(kc, sizeof kc, "%s/kubeconfig", dir);
    setenv("AGENTIX_K8S_KUBECONFIG", kc, 1);
    setenv("AGENTIX_K8S_POOL", "bounds", 1);
    for (int hang = 0; hang <= 1; hang++) {
        int port, fd = tcp_listener(&port, hang);
        if (hang)
            start_mute(fd, 0, 0);
        FILE *f = fopen(kc, "w");
        CHECK(f);
        fprintf(f, "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: k\n"
                   "  cluster:\n    server: http://127.0.0.1:%d\ncontexts:\n- name: c\n"
                   "  context:\n    cluster: k\n    user: u\n    namespace: default\nusers:\n"
                   "- name: u\n  user:\n    token: t\n", port);
        CHECK(fclose(f) == 0);
        bounded_create("k8s-pool", hang ? "API never answers" : "API refuses", plain());
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/bounds-XXXXXX", AGX_TEST_BINARY_DIR);
    CHECK(mkdtemp(dir));
    char state[600];
    snprintf(state, sizeof state, "%s/state", dir);
    setenv("AGENTIX_STATE_DIR", state, 1);
    unsetenv("AGENTIX_CONNECT_TO");
    fprintf(stderr, "create with a %d ms timeout, bound %d ms:\n", TIMEOUT_MS, BOUND_MS);
    local_bounds();
    docker_bounds();
    setenv("E2B_TEMPLATE_ID", "agentix", 1);
    cloud_bounds("e2b", "E2B_API_URL", "E2B_API_KEY", "e2b_0123456789abcdef0123456789abcdef", "");
    cloud_bounds("daytona", "DAYTONA_API_URL", "DAYTONA_API_KEY", "dtn_key", "/api");
    k8s_bounds();
    CHECK_MSG(worst_ok, "a create went past its timeout + 1 s (see above)");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return 0;
}
