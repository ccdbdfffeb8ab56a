/* test_docker_daemon_down.c — the docker backend when its daemon stops mid-operation (issue 4),
 * against the real dockerd. The machine's dockerd is shared with other tests, so it is never
 * stopped: the backend talks to a unix-socket proxy (DOCKER_HOST=unix://<temp>/docker.sock) that
 * relays to /var/run/docker.sock, and "the daemon stops" when the proxy drops every connection and
 * stops listening — before the task container's start is forwarded, while create waits for
 * /health, and during delete. Each must fail with AGX_ERR_UNAVAILABLE naming DOCKER_HOST's
 * socket; once the proxy listens again, what the backend could not remove is found by the run's
 * label (agx_deployment_list) and deleting it (as `agentix gc` does) leaves no container. A
 * daemon back within the create timeout finds nothing left: create retries its cleanup.
 * Needs dockerd and the test images (scripts/setup.d/docker.sh); fails, never skips, without. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agentix/deployment.h"
#include "check.h"

#define DEBIAN "agx-test-debian:12"
#define BUNDLE "agx-test-bundle-daemon-down:" AGX_TEST_BUNDLE_TAG
#define REAL_SOCKET "/var/run/docker.sock"
#define MAX_CONNS 64

/* ---- the proxy ---- */

/* When the daemon goes away, always before the chosen request is forwarded: CUT_AFTER_START at
 * the request with index cut_index counted from the task container's start (request 0);
 * CUT_AT_DELETE at the first DELETE. */
typedef enum { CUT_NEVER, CUT_AFTER_START, CUT_AT_DELETE } cut_mode;

typedef struct conn {
    int client, daemon;
} conn;

static struct {
    pthread_mutex_t mu;
    pthread_t thread;
    char dir[64], path[128];
    int listener;
    conn conns[MAX_CONNS];
    int nconns;
    cut_mode mode;
    int cut_index;   /* CUT_AFTER_START: the request index after start that is not forwarded */
    int since_start; /* requests seen since the start request; -1 before it */
    int down, want_up, quit, cuts;
} px = {.mu = PTHREAD_MUTEX_INITIALIZER, .listener = -1};

static int listen_unix(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    CHECK_MSG(len < sizeof a.sun_path, "socket path too long: %s", path);
    memcpy(a.sun_path, path, len + 1);
    unlink(path);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    CHECK(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(s, 64) == 0);
    return s;
}

static int connect_daemon(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", REAL_SOCKET);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s >= 0 && connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        s = -1;
    }
    return s;
}

static void drop(int i)
{
    close(px.conns[i].client);
    close(px.conns[i].daemon);
    px.conns[i] = px.conns[--px.nconns];
}

/* The daemon "stops": every connection ends and nothing listens on the socket any more. */
static void go_down(void)
{
    while (px.nconns)
        drop(0);
    close(px.listener);
    px.listener = -1;
    unlink(px.path);
    px.down = 1;
    px.cuts++;
}

static int is_request(const char *b, size_t n, const char *method)
{
    size_t m = strlen(method);
    return n > m && memcmp(b, method, m) == 0 && b[m] == ' ';
}

static int contains(const char *b, size_t n, const char *needle)
{
    return memmem(b, n, needle, strlen(needle)) != NULL;
}

/* Decides, for a chunk from the backend, whether the daemon goes away before it is forwarded.
 * A request always starts a chunk: curl sends the next one only after the previous answer. */
static int cut_before(const char *b, size_t n)
{
    int starts = is_request(b, n, "GET") || is_request(b, n, "POST") ||
                 is_request(b, n, "DELETE") || is_request(b, n, "HEAD");
    if (!starts)
        return 0;
    if (px.mode == CUT_AT_DELETE)
        return is_request(b, n, "DELETE");
    if (px.mode != CUT_AFTER_START)
        return 0;
    if (px.since_start < 0 && is_request(b, n, "POST") && contains(b, n, "/containers/") &&
        contains(b, n, "/start "))
        px.since_start = 0;
    else if (px.since_start >= 0)
        px.since_start++;
    return px.since_start >= 0 && px.since_start == px.cut_index;
}

/* Relays one chunk from fd `from` to `to`; 0 when the pair must be dropped. */
static int relay(int i, int from_client)
{
    char buf[65536];
    int from = from_client ? px.conns[i].client : px.conns[i].daemon;
    int to = from_client ? px.conns[i].daemon : px.conns[i].client;
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0)
        return 0;
    if (from_client && cut_before(buf, (size_t)n)) {
        go_down();
        return -1;
    }
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0;
        off += w;
    }
    return 1;
}

static void accept_one(void)
{
    int c = accept4(px.listener, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    int d = px.nconns < MAX_CONNS ? connect_daemon() : -1;
    if (d < 0) {
        close(c);
        return;
    }
    px.conns[px.nconns++] = (conn){c, d};
}

static void *proxy_main(void *arg)
{
    (void)arg;
    struct pollfd fds[1 + 2 * MAX_CONNS];
    for (;;) {
        pthread_mutex_lock(&px.mu);
        if (px.quit) {
            if (!px.down)
                go_down();
            pthread_mutex_unlock(&px.mu);
            return NULL;
        }
        if (px.down && px.want_up) {
            px.listener = listen_unix(px.path);
            px.down = px.want_up = 0;
        }
        int n = 0;
        fds[n++] = (struct pollfd){.fd = px.listener, .events = POLLIN};
        for (int i = 0; i < px.nconns; i++) {
            fds[n++] = (struct pollfd){.fd = px.conns[i].client, .events = POLLIN};
            fds[n++] = (struct pollfd){.fd = px.conns[i].daemon, .events = POLLIN};
        }
        int nc = px.nconns;
        pthread_mutex_unlock(&px.mu);
        if (poll(fds, (nfds_t)n, 50) <= 0) /* a short tick notices the main thread's requests */
            continue;
        pthread_mutex_lock(&px.mu);
        for (int i = nc - 1; i >= 0 && !px.down; i--) {
            int r = 1;
            if (fds[1 + 2 * i].revents)
                r = relay(i, 1);
            if (r == 1 && fds[2 + 2 * i].revents)
                r = relay(i, 0);
            if (r == 0)
                drop(i);
        }
        if (!px.down && fds[0].revents & POLLIN)
            accept_one();
        pthread_mutex_unlock(&px.mu);
    }
}

static void proxy_arm(cut_mode mode, int cut_index)
{
    pthread_mutex_lock(&px.mu);
    px.mode = mode;
    px.cut_index = cut_index;
    px.since_start = -1;
    px.cuts = 0;
    pthread_mutex_unlock(&px.mu);
}

/* "The daemon restarts": the proxy listens again. Waits (bounded) until it does. */
static void proxy_up(void)
{
    pthread_mutex_lock(&px.mu);
    px.mode = CUT_NEVER;
    px.want_up = px.down;
    pthread_mutex_unlock(&px.mu);
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&px.mu);
        int up = !px.down;
        pthread_mutex_unlock(&px.mu);
        if (up)
            return;
        usleep(10000);
    }
    CHECK_MSG(0, "the proxy did not listen again within 2 s");
}

static int proxy_cuts(void)
{
    pthread_mutex_lock(&px.mu);
    int n = px.cuts;
    pthread_mutex_unlock(&px.mu);
    return n;
}

/* ---- the test ---- */

static char run_id[17];
static agx_deployment *dep;

static int leftovers(void)
{
    char cmd[256], line[256];
    snprintf(cmd, sizeof cmd, "DOCKER_HOST=unix://" REAL_SOCKET
             " docker ps -aq --filter label=agentix.test.run=%s", run_id);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    int n = 0;
    while (fgets(line, sizeof line, p))
        n++;
    CHECK(pclose(p) == 0);
    return n;
}

/* A sandbox of this run; `broken` makes its runtime exit at once (AGENTIX_WORKER points at
 * nothing) so create deterministically keeps asking the daemon how the container is doing.
 * timeout_ms also bounds how long a failed create retries removing its container. */
static agx_sandbox_config *config(int broken, int64_t timeout_ms)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_image(cfg, DEBIAN) == 0 &&
          agx_sandbox_config_set_bundle(cfg, BUNDLE) == 0 &&
          agx_sandbox_config_set_timeout_ms(cfg, timeout_ms) == 0 &&
          agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.test.run", run_id) == 0);
    if (broken)
        CHECK(agx_kv_set(agx_sandbox_config_env(cfg), "AGENTIX_WORKER", "/nonexistent") == 0);
    return cfg;
}

static void check_unavailable(int rc, const agx_error *err)
{
    fprintf(stderr, "  %s: %s\n", agx_error_code_name(rc), err->message);
    /* Unavailable as a rule; on a loaded machine the engine call can instead reach the create's
     * own deadline first (timeout) — either way the message names the socket. */
    CHECK_MSG(rc == AGX_ERR_UNAVAILABLE || rc == AGX_ERR_TIMEOUT, "got %s: %s",
              agx_error_code_name(rc), err->message);
    CHECK_CONTAINS(err->message, px.path);
}

/* After the daemon came back: the sandboxes of this run (as many as `expect`) are listed by
 * label and deleting them, as `agentix gc` does, leaves no container of the run. */
static void sweep(size_t expect)
{
    agx_kv *labels = agx_kv_new();
    CHECK(labels && agx_kv_set(labels, "agentix.test.run", run_id) == 0);
    agx_sandbox_list *list = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_list(dep, labels, &list, &err), &err);
    agx_kv_free(labels);
    CHECK_MSG(agx_sandbox_list_count(list) == expect, "listed %zu sandboxes of the run, want %zu",
              agx_sandbox_list_count(list), expect);
    for (size_t i = 0; i < agx_sandbox_list_count(list); i++)
        CHECK_OK(agx_deployment_delete(dep, agx_sandbox_info_id(agx_sandbox_list_at(list, i)),
                                       &err), &err);
    agx_sandbox_list_free(list);
    CHECK(leftovers() == 0);
}

/* (a) The container exists, its start never reaches the daemon. */
static void test_down_before_start(void)
{
    agx_sandbox_config *cfg = config(0, 3000);
    agx_sandbox *sb = NULL;
    agx_error err;
    proxy_arm(CUT_AFTER_START, 0);
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    agx_sandbox_config_free(cfg);
    CHECK(!sb && proxy_cuts() == 1);
    check_unavailable(rc, &err);
    CHECK(leftovers() == 1); /* removing it needed the daemon too */
    proxy_up();
    sweep(1);
}

/* Containers of the run left once the daemon had up to 30 s to act on them (AutoRemove). */
static int leftovers_settled(int want)
{
    int n = leftovers();
    for (int i = 0; i < 300 && n != want; i++) {
        usleep(100 * 1000);
        n = leftovers();
    }
    return n;
}

/* (b) Started and answered; the runtime exits without answering /health, and the daemon goes away
 * at request 1 after start, the inspect for the published port: the one request that always
 * follows a start (what comes after depends on whether the runtime exited and AutoRemove removed
 * its container before it, which load decides). The daemon itself removes the exited container
 * (AutoRemove): nothing is left although the backend's own removal could not reach it. */
static void test_down_waiting_for_health(void)
{
    agx_sandbox_config *cfg = config(1, 3000);
    agx_sandbox *sb = NULL;
    agx_error err;
    proxy_arm(CUT_AFTER_START, 1);
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    agx_sandbox_config_free(cfg);
    CHECK(!sb && proxy_cuts() == 1);
    check_unavailable(rc, &err);
    CHECK(leftovers_settled(0) == 0);
    proxy_up();
    sweep(0);
}

/* (c) A healthy sandbox whose delete never reaches the daemon. */
static void test_down_during_delete(void)
{
    agx_sandbox_config *cfg = config(0, 120000);
    agx_sandbox *sb = NULL;
    agx_error err;
    proxy_arm(CUT_NEVER, -1);
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    agx_sandbox_config_free(cfg);
    proxy_arm(CUT_AT_DELETE, -1);
    int rc = agx_deployment_delete(dep, agx_sandbox_id(sb), &err);
    CHECK(proxy_cuts() == 1);
    check_unavailable(rc, &err);
    agx_sandbox_free(sb);
    CHECK(leftovers() == 1);
    proxy_up();
    sweep(1);
}

/* "Restarts the daemon" a second after the cut, while create is still within its timeout. */
static void *restart_after_cut(void *arg)
{
    (void)arg;
    for (int i = 0; i < 6000 && proxy_cuts() == 0; i++)
        usleep(10000);
    CHECK_MSG(proxy_cuts() == 1, "the daemon was not cut within 60 s");
    sleep(1);
    proxy_up();
    return NULL;
}

/* (d) The daemon is back before the create timeout: the failed create leaves nothing. */
static void test_back_within_timeout(void)
{
    agx_sandbox_config *cfg = config(0, 120000);
    agx_sandbox *sb = NULL;
    agx_error err;
    pthread_t t;
    proxy_arm(CUT_AFTER_START, 0);
    CHECK(pthread_create(&t, NULL, restart_after_cut, NULL) == 0);
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    pthread_join(t, NULL);
    agx_sandbox_config_free(cfg);
    CHECK(!sb);
    check_unavailable(rc, &err);
    CHECK(!strstr(err.message, "failed too"));
    CHECK(leftovers() == 0);
    sweep(0);
}

int main(void)
{
    unsigned char r[8];
    CHECK(getrandom(r, sizeof r, 0) == (ssize_t)sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        sprintf(run_id + 2 * i, "%02x", r[i]);
    fprintf(stderr, "run label agentix.test.run=%s\n", run_id);
    CHECK_MSG(system("DOCKER_HOST=unix://" REAL_SOCKET " '" AGX_CLI "' build --name " BUNDLE
                     " --docker --quiet >/dev/null") == 0,
              "agentix build --docker failed");

    snprintf(px.dir, sizeof px.dir, "/tmp/agx-dockerdown-XXXXXX");
    CHECK(mkdtemp(px.dir));
    snprintf(px.path, sizeof px.path, "%s/docker.sock", px.dir);
    px.listener = listen_unix(px.path);
    px.since_start = -1;
    CHECK(pthread_create(&px.thread, NULL, proxy_main, NULL) == 0);
    char host[160];
    snprintf(host, sizeof host, "unix://%s", px.path);
    CHECK(setenv("DOCKER_HOST", host, 1) == 0);
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &dep, &err), &err);

    TEST_RUN(test_down_before_start);
    TEST_RUN(test_down_waiting_for_health);
    TEST_RUN(test_down_during_delete);
    TEST_RUN(test_back_within_timeout);

    agx_deployment_free(dep);
    pthread_mutex_lock(&px.mu);
    px.quit = 1;
    pthread_mutex_unlock(&px.mu);
    pthread_join(px.thread, NULL);
    CHECK(rmdir(px.dir) == 0);
    return 0;
}
