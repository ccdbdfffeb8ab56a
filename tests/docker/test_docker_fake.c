/* test_docker_fake.c — the docker backend against a scripted fake of the Engine API on a unix
 * socket, for what a real dockerd will not do on demand: API versions too old or too new, a
 * service that is not Docker, a carrier another process creates between our inspect and our
 * create (the 409 path), 503s worth retrying, a start the engine refuses (the container must be
 * removed and its logs read), and a daemon that goes away mid-create. No dockerd needed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agentix/deployment.h"
#include "check.h"
#include "fake_http.h"

#define MAX_ROUTES 16
#define MAX_ANSWERS 4

/* A route answers requests whose "METHOD /path" starts with match; successive hits take the next
 * answer, the last one repeating. */
typedef struct route {
    const char *match;
    const char *answers[MAX_ANSWERS];
    int hits;
} route;

typedef struct fake {
    int fd, health_fd, health_port;
    pthread_t thread, health_thread;
    pthread_mutex_t mu;
    route routes[MAX_ROUTES];
    int n_routes;
    char log[16384]; /* "METHOD /path\n" per request */
    char sock[108];
} fake;

static fake F;

static void reply(int c, const char *status_and_body)
{
    agx_fake_http_reply(c, status_and_body, "application/json");
}

static void *fake_serve(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(F.fd, NULL, NULL);
        if (c < 0)
            return NULL; /* closed by the test */
        char req[8192], line[512];
        agx_fake_http_read(c, req, sizeof req);
        snprintf(line, sizeof line, "%.*s", (int)strcspn(req, "\r"), req);
        char *proto = strstr(line, " HTTP/");
        if (proto)
            *proto = '\0';
        pthread_mutex_lock(&F.mu);
        size_t len = strlen(F.log);
        snprintf(F.log + len, sizeof F.log - len, "%s\n", line);
        const char *answer = "404 {\"message\":\"fake: no route\"}";
        for (int i = 0; i < F.n_routes; i++) {
            route *r = &F.routes[i];
            if (strncmp(line, r->match, strlen(r->match)) == 0) {
                int last = 0;
                while (last + 1 < MAX_ANSWERS && r->answers[last + 1])
                    last++;
                answer = r->answers[r->hits < last ? r->hits : last];
                r->hits++;
                break;
            }
        }
        pthread_mutex_unlock(&F.mu);
        reply(c, answer);
        close(c);
    }
}

/* The runtime's /health, on 127.0.0.1: always healthy. */
static void *health_serve(void *arg)
{
    (void)arg;
    for (;;) {
        int c = accept(F.health_fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char req[2048];
        agx_fake_http_read(c, req, sizeof req);
        reply(c, "200 {\"status\":\"ok\"}");
        close(c);
    }
}

static void fake_start(void)
{
    memset(&F, 0, sizeof F);
    pthread_mutex_init(&F.mu, NULL);
    snprintf(F.sock, sizeof F.sock, "/tmp/agx-fake-docker-%d.sock", (int)getpid());
    unlink(F.sock);
    F.fd = agx_fake_http_unix(F.sock);
    F.health_fd = agx_fake_http_tcp(&F.health_port);
    CHECK(pthread_create(&F.thread, NULL, fake_serve, NULL) == 0);
    CHECK(pthread_create(&F.health_thread, NULL, health_serve, NULL) == 0);
    char host[160];
    snprintf(host, sizeof host, "unix://%s", F.sock);
    setenv("DOCKER_HOST", host, 1);
}

static void fake_stop(void)
{
    shutdown(F.fd, SHUT_RDWR);
    shutdown(F.health_fd, SHUT_RDWR);
    pthread_join(F.thread, NULL);
    pthread_join(F.health_thread, NULL);
    close(F.fd);
    close(F.health_fd);
    unlink(F.sock);
    pthread_mutex_destroy(&F.mu);
}

static void fake_route(const char *match, const char *a0, const char *a1, const char *a2)
{
    pthread_mutex_lock(&F.mu);
    CHECK(F.n_routes < MAX_ROUTES);
    F.routes[F.n_routes++] = (route){.match = match, .answers = {a0, a1, a2}};
    pthread_mutex_unlock(&F.mu);
}

static void fake_reset(void)
{
    pthread_mutex_lock(&F.mu);
    F.n_routes = 0;
    F.log[0] = '\0';
    pthread_mutex_unlock(&F.mu);
}

static int log_count(const char *needle)
{
    int n = 0;
    pthread_mutex_lock(&F.mu);
    for (const char *p = F.log; (p = strstr(p, needle)) != NULL; p++)
        n++;
    pthread_mutex_unlock(&F.mu);
    return n;
}

#define IMAGE_ID "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define CARRIER "agentix-carrier-0123456789ab"
#define CONTAINER "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"

static char inspect_running[512];

/* A daemon where images, the bundle and everything after the carrier work. */
static void routes_for_create(void)
{
    fake_route("GET /version", "200 {\"ApiVersion\":\"1.41\",\"MinAPIVersion\":\"1.12\"}", NULL,
               NULL);
    fake_route("GET /v1.41/images/", "200 {\"Id\":\"" IMAGE_ID "\",\"Config\":{\"Labels\":"
               "{\"agentix.bundle.format\":\"1\"},\"Volumes\":{\"/opt/agentix\":{}}}}", NULL, NULL);
    snprintf(inspect_running, sizeof inspect_running,
             "200 {\"Id\":\"" CONTAINER "\",\"State\":{\"Status\":\"running\"},"
             "\"NetworkSettings\":{\"Ports\":{\"8000/tcp\":[{\"HostIp\":\"127.0.0.1\","
             "\"HostPort\":\"%d\"}]}}}", F.health_port);
    fake_route("GET /v1.41/containers/" CONTAINER "/json", inspect_running, NULL, NULL);
    fake_route("GET /v1.41/containers/" CONTAINER "/logs", "200 fake log line\n", NULL, NULL);
    fake_route("DELETE /v1.41/containers/" CONTAINER, "204 ", NULL, NULL);
}

static agx_sandbox_config *config(void)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_image(cfg, "task:1") == 0 &&
          agx_sandbox_config_set_bundle(cfg, "bundle:1") == 0 &&
          agx_sandbox_config_set_timeout_ms(cfg, 20000) == 0);
    return cfg;
}

/* ---- tests ---- */

static void expect_construct(const char *version_answer, int code, const char *needle)
{
    fake_reset();
    fake_route("GET /version", version_answer, NULL, NULL);
    agx_deployment *d = NULL;
    agx_error err;
    int rc = agx_load_deployment("docker", &d, &err);
    CHECK_MSG(rc == code, "got %s: %s", agx_error_code_name(rc), err.message);
    if (rc == 0) {
        agx_deployment_free(d);
        return;
    }
    CHECK(!d);
    CHECK_CONTAINS(err.message, needle);
}

static void test_versions(void)
{
    expect_construct("200 {\"ApiVersion\":\"1.40\",\"MinAPIVersion\":\"1.12\"}",
                     AGX_ERR_UNSUPPORTED, "Docker Engine 20.10 or newer");
    expect_construct("200 {\"ApiVersion\":\"1.52\",\"MinAPIVersion\":\"1.48\"}",
                     AGX_ERR_UNSUPPORTED, "speaks API 1.48..1.52");
    expect_construct("404 {\"message\":\"page not found\"}", AGX_ERR_NOT_FOUND,
                     "is not a Docker daemon");
    expect_construct("200 {\"hello\":\"world\"}", AGX_ERR_PROTOCOL, "without an ApiVersion");
    expect_construct("200 {\"ApiVersion\":\"1.52\",\"MinAPIVersion\":\"1.24\"}", 0, "");
    /* A newer daemon is spoken to in the newest version we know. */
    agx_deployment *d = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &d, &err), &err);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(d, CONTAINER, &info, &err), &err);
    CHECK(agx_sandbox_info_state(info) == AGX_SANDBOX_GONE); /* the fake has no such container */
    agx_sandbox_info_free(info);
    agx_deployment_free(d);
    CHECK(log_count("GET /v1.47/containers/" CONTAINER "/json") == 1);
}

static void test_carrier_race(void)
{
    fake_reset();
    routes_for_create();
    char carrier_json[256];
    snprintf(carrier_json, sizeof carrier_json, "200 {\"Image\":\"%s\"}", IMAGE_ID);
    /* Missing at our inspect, made by someone else before our create, visible afterwards. */
    fake_route("GET /v1.41/containers/" CARRIER "/json", "404 {\"message\":\"No such container\"}",
               carrier_json, NULL);
    fake_route("POST /v1.41/containers/create?name=" CARRIER,
               "409 {\"message\":\"Conflict. The container name is already in use\"}", NULL, NULL);
    /* The task container: the first create is refused with a 503 worth retrying. */
    fake_route("POST /v1.41/containers/create?name=agentix-",
               "503 {\"message\":\"busy\"}", "201 {\"Id\":\"" CONTAINER "\"}", NULL);
    fake_route("POST /v1.41/containers/" CONTAINER "/start", "204 ", NULL, NULL);
    agx_deployment *d = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &d, &err), &err);
    agx_sandbox_config *cfg = config();
    agx_sandbox *sb = NULL;
    CHECK_OK(agx_deployment_create(d, cfg, &sb, &err), &err);
    agx_sandbox_config_free(cfg);
    CHECK_STREQ(agx_sandbox_id(sb), CONTAINER);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", F.health_port);
    CHECK_STREQ(agx_sandbox_runtime_url(sb), url);
    agx_sandbox_free(sb);
    agx_deployment_free(d);
    CHECK(log_count("POST /v1.41/containers/create?name=" CARRIER) == 1);
    CHECK(log_count("GET /v1.41/containers/" CARRIER "/json") == 2);
    CHECK(log_count("POST /v1.41/containers/create?name=agentix-") == 3); /* 503 retried */
    CHECK(log_count("DELETE") == 0);
}

static void test_refused_start_cleans_up(void)
{
    fake_reset();
    routes_for_create();
    char carrier_json[256];
    snprintf(carrier_json, sizeof carrier_json, "200 {\"Image\":\"%s\"}", IMAGE_ID);
    fake_route("GET /v1.41/containers/" CARRIER "/json", carrier_json, NULL, NULL);
    fake_route("POST /v1.41/containers/create?name=agentix-", "201 {\"Id\":\"" CONTAINER "\"}",
               NULL, NULL);
    fake_route("POST /v1.41/containers/" CONTAINER "/start",
               "500 {\"message\":\"OCI runtime create failed: no cgroups\"}", NULL, NULL);
    agx_deployment *d = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &d, &err), &err);
    agx_sandbox_config *cfg = config();
    agx_sandbox *sb = NULL;
    CHECK(agx_deployment_create(d, cfg, &sb, &err) == AGX_ERR_BACKEND && !sb);
    CHECK_CONTAINS(err.message, "OCI runtime create failed: no cgroups");
    CHECK_CONTAINS(err.detail, "fake log line");
    CHECK(log_count("DELETE /v1.41/containers/" CONTAINER "?force=1&v=1") == 1);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(d);
}

static void test_daemon_gone_mid_create(void)
{
    fake_reset();
    routes_for_create();
    agx_deployment *d = NULL;
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &d, &err), &err);
    fake_stop(); /* nothing answers from here on */
    agx_sandbox_config *cfg = config();
    agx_sandbox *sb = NULL;
    CHECK(agx_deployment_create(d, cfg, &sb, &err) == AGX_ERR_UNAVAILABLE && !sb);
    CHECK(err.retriable);
    CHECK_CONTAINS(err.message, "inspecting the image");
    CHECK_CONTAINS(err.message, F.sock);
    CHECK(agx_deployment_delete(d, CONTAINER, &err) == AGX_ERR_UNAVAILABLE);
    CHECK(err.retriable);
    agx_sandbox_config_free(cfg);
    agx_deployment_free(d);
}

int main(void)
{
    fake_start();
    TEST_RUN(test_versions);
    TEST_RUN(test_carrier_race);
    TEST_RUN(test_refused_start_cleans_up);
    TEST_RUN(test_daemon_gone_mid_create);
    unsetenv("DOCKER_HOST");
    return 0;
}
