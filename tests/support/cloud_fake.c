/* cloud_fake.c — see cloud_fake.h: process control of the python fake, its control endpoints
 * through the toolkit's HTTP client, and the concurrent session workload. */
#include "cloud_fake.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "agentix/backend/toolkit.h"
#include "demo_calls.h"

#ifndef AGX_PYTHON3
#define AGX_PYTHON3 "python3"
#endif

struct agx_fake {
    pid_t pid;
    int in_fd; /* the fake's stdin: closing it stops the fake */
    int port;
    bool tls;  /* started with --tls-dir: its port speaks https (CA from $AGENTIX_CA_FILE) */
};

/* ---- process ---- */

static int read_port(int fd)
{
    char buf[256];
    size_t len = 0;
    int64_t deadline = agx_clock_ms() + 60000;
    while (len < sizeof buf - 1) {
        int64_t left = deadline - agx_clock_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t n = read(fd, buf + len, 1);
        if (n <= 0)
            return -1;
        len++;
        buf[len] = '\0';
        if (buf[len - 1] == '\n')
            break;
    }
    int port = 0;
    return sscanf(buf, "PORT %d", &port) == 1 && port > 0 && port < 65536 ? port : -1;
}

agx_fake *agx_fake_start(const char *const *argv)
{
    int in[2], out[2];
    CHECK(pipe2(in, O_CLOEXEC) == 0 && pipe2(out, O_CLOEXEC) == 0);
    size_t argc = 0;
    while (argv[argc])
        argc++;
    char **args = calloc(argc + 2, sizeof *args);
    CHECK(args);
    args[0] = (char *)AGX_PYTHON3;
    for (size_t i = 0; i < argc; i++)
        args[i + 1] = (char *)argv[i];
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* the test died: the fake stops its servers */
        dup2(in[0], 0);
        dup2(out[1], 1);
        execvp(args[0], args);
        fprintf(stderr, "cannot run %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    free(args);
    close(in[0]);
    close(out[1]);
    agx_fake *f = calloc(1, sizeof *f);
    CHECK(f);
    f->pid = pid;
    f->in_fd = in[1];
    for (size_t i = 0; i < argc; i++)
        f->tls |= strcmp(argv[i], "--tls-dir") == 0;
    f->port = read_port(out[0]);
    close(out[0]);
    CHECK_MSG(f->port > 0, "the fake %s did not print its port (is %s with python3-yaml "
              "installed?)", argv[0], AGX_PYTHON3);
    return f;
}

/* The test build's paths (tests/support/CMakeLists.txt). */
static agx_fake *start_with(const char *script, const char *spec, const char *const *extra,
                            int cap, const char *server)
{
    char caps[16];
    snprintf(caps, sizeof caps, "%d", cap);
    const char *argv[32] = {script, "--server", server ? server : AGX_TEST_SERVER,
                            "--module-path", AGX_TEST_MODULES, "--spec", spec, "--cap", caps};
    size_t n = 9;
    for (size_t i = 0; extra[i]; i++) {
        CHECK(n < sizeof argv / sizeof *argv - 1);
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    return agx_fake_start(argv);
}

/* The E2B fake, plain or (tls_dir) behind its TLS front, with a route limiter (rate_limit > 0),
 * and the environment pointed at it. */
static agx_fake *start_e2b(int cap, const char *server, const char *tls_dir, int rate_limit)
{
    CHECK_MSG(access(AGX_SPEC_DIR "/e2b-openapi.yml", R_OK) == 0,
              "the E2B spec is not at %s (set AGX_CLOUD_SPEC_DIR)", AGX_SPEC_DIR);
    char rate[16];
    snprintf(rate, sizeof rate, "%d", rate_limit);
    const char *extra[] = {"--api-key", AGX_FAKE_E2B_KEY, "--template", "agentix", "--template",
                           "other", "--rate-limit", rate, tls_dir ? "--tls-dir" : NULL, tls_dir,
                           NULL};
    agx_fake *f = start_with(AGX_E2B_FAKE, AGX_SPEC_DIR "/e2b-openapi.yml", extra, cap, server);
    const char *scheme = tls_dir ? "https" : "http";
    char url[64], ct[64];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d", scheme, f->port);
    snprintf(ct, sizeof ct, "::127.0.0.1:%d", f->port);
    setenv("E2B_API_URL", url, 1);
    setenv("AGENTIX_CONNECT_TO", ct, 1); /* backend health wait and client alike */
    setenv("AGENTIX_E2B_SCHEME", scheme, 1);
    setenv("E2B_TEMPLATE_ID", "agentix", 1);
    unsetenv("E2B_DOMAIN");
    return f;
}

agx_fake *agx_fake_start_e2b(int cap, const char *server)
{
    return start_e2b(cap, server, NULL, 0);
}

agx_fake *agx_fake_start_e2b_rate(int cap, const char *server, int rate_limit)
{
    return start_e2b(cap, server, NULL, rate_limit);
}

agx_fake *agx_fake_start_e2b_tls(int cap, const char *tls_dir)
{
    return start_e2b(cap, NULL, tls_dir, 0);
}

static agx_fake *start_daytona(int cap, const char *server, const char *minute)
{
    CHECK_MSG(access(AGX_SPEC_DIR "/daytona-openapi.yaml", R_OK) == 0,
              "the Daytona spec is not at %s (set AGX_CLOUD_SPEC_DIR)", AGX_SPEC_DIR);
    const char *extra[] = {"--api-key", AGX_FAKE_DAYTONA_KEY, "--proxy-domain",
                           AGX_FAKE_DAYTONA_DOMAIN, "--snapshot", "agentix", "--bare-snapshot",
                           "bare", "--minute-s", minute, NULL};
    agx_fake *f = start_with(AGX_DAYTONA_FAKE, AGX_SPEC_DIR "/daytona-openapi.yaml", extra, cap,
                             server);
    char url[64], ct[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api", f->port);
    snprintf(ct, sizeof ct, "::127.0.0.1:%d", f->port);
    setenv("DAYTONA_API_URL", url, 1);
    setenv("AGENTIX_CONNECT_TO", ct, 1);
    setenv("DAYTONA_TARGET", "us", 1);
    return f;
}

agx_fake *agx_fake_start_daytona(int cap, const char *server)
{
    return start_daytona(cap, server, "60");
}

agx_fake *agx_fake_start_daytona_minute(int cap, double minute_s)
{
    char m[32];
    snprintf(m, sizeof m, "%g", minute_s);
    return start_daytona(cap, NULL, m);
}

void agx_fake_expect_create_fails(agx_fake *f, agx_deployment *dep, const agx_sandbox_config *cfg,
                                  int code, const char *want)
{
    agx_sandbox *sb = NULL;
    agx_error err;
    int rc = agx_deployment_create(dep, cfg, &sb, &err);
    CHECK_MSG(rc == code, "got %d (%s): %s", rc, agx_error_code_name(rc), err.message);
    CHECK(sb == NULL);
    CHECK_CONTAINS(err.message, want);
    CHECK_MSG(agx_fake_live(f) == 0, "a failed create left a sandbox in the fake");
}

int agx_fake_port(const agx_fake *f)
{
    return f->port;
}

void agx_fake_stop(agx_fake *f)
{
    close(f->in_fd);
    int status = 0;
    for (int i = 0; i < 200; i++) { /* 20 s for the fake to stop its servers */
        if (waitpid(f->pid, &status, WNOHANG) == f->pid) {
            free(f);
            return;
        }
        usleep(100000);
    }
    kill(f->pid, SIGKILL);
    waitpid(f->pid, &status, 0);
    free(f);
    CHECK_MSG(0, "the fake did not stop within 20 s");
}

/* ---- control ---- */

long agx_fake_raw(agx_fake *f, const char *method, const char *path, const char *header,
                  const char *json, char **body)
{
    char url[512];
    snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", f->tls ? "https" : "http", f->port, path);
    agx_kv *h = agx_kv_new();
    CHECK(h);
    if (header) {
        const char *colon = strchr(header, ':');
        CHECK(colon);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)(colon - header), header);
        CHECK(agx_kv_set(h, name, colon + 1 + strspn(colon + 1, " ")) == 0);
    }
    agx_http_request req = {.method = method, .url = url, .headers = h, .body = json,
                            .body_len = json ? strlen(json) : 0, .timeout_ms = 30000};
    agx_http_response resp;
    agx_error err;
    CHECK_OK(agx_http_perform(&req, &resp, &err), &err);
    long status = resp.status;
    if (body)
        *body = strdup(resp.body ? resp.body : "");
    agx_http_response_clear(&resp);
    agx_kv_free(h);
    return status;
}

void agx_fake_faults(agx_fake *f, const char *json)
{
    CHECK(agx_fake_raw(f, "POST", "/_fake/faults", NULL, json, NULL) == 200);
}

json_t *agx_fake_stats(agx_fake *f)
{
    char *body = NULL;
    CHECK(agx_fake_raw(f, "GET", "/_fake/stats", NULL, NULL, &body) == 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    CHECK(j);
    return j;
}

int agx_fake_live(agx_fake *f)
{
    json_t *s = agx_fake_stats(f);
    int live = (int)json_integer_value(json_object_get(s, "live"));
    json_decref(s);
    return live;
}

int agx_fake_kill(agx_fake *f, const char *id)
{
    char path[256];
    snprintf(path, sizeof path, "/_fake/kill/%s", id);
    return agx_fake_raw(f, "POST", path, NULL, NULL, NULL) == 200;
}

static double event_time(json_t *ev, const char *what, double after, size_t *from)
{
    for (size_t i = *from; i < json_array_size(ev); i++) {
        json_t *e = json_array_get(ev, i);
        double t = json_number_value(json_array_get(e, 0));
        if (t >= after && strcmp(json_string_value(json_array_get(e, 1)) ?: "", what) == 0) {
            *from = i + 1;
            return t;
        }
    }
    return -1;
}

double agx_fake_event_gap(agx_fake *f, const char *a, const char *b)
{
    json_t *s = agx_fake_stats(f);
    json_t *ev = json_object_get(s, "events");
    size_t from = 0;
    double ta = event_time(ev, a, 0, &from);
    double tb = ta < 0 ? -1 : event_time(ev, b, ta, &from);
    json_decref(s);
    return tb < 0 ? -1 : tb - ta;
}

int agx_fake_event_count(agx_fake *f, const char *what)
{
    json_t *s = agx_fake_stats(f);
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(s, "events"), i, e) {
        n += strcmp(json_string_value(json_array_get(e, 1)) ?: "", what) == 0;
    }
    json_decref(s);
    return n;
}

void agx_fake_finish(agx_fake *f)
{
    json_t *s = agx_fake_stats(f);
    json_t *v = json_object_get(s, "violations");
    for (size_t i = 0; i < json_array_size(v); i++)
        fprintf(stderr, "spec violation: %s\n", json_string_value(json_array_get(v, i)));
    CHECK_MSG(json_array_size(v) == 0, "%zu spec violations", json_array_size(v));
    CHECK_MSG(json_integer_value(json_object_get(s, "checked")) > 0, "no message was checked");
    int live = (int)json_integer_value(json_object_get(s, "live"));
    json_decref(s);
    CHECK_MSG(live == 0, "%d sandboxes left alive in the fake", live);
    agx_fake_stop(f);
}

/* ---- workload ---- */

typedef struct session_job {
    agx_deployment *dep;
    const agx_sandbox_config *cfg;
    agx_fake *fake;
    int rc;
    agx_error err;
} session_job;

/* Holds the sandbox until the fake has refused a create at its cap (bounded), so the cap is
 * reached whatever the machine's speed; then the calls run. */
static int session_body(agx_sandbox *sb, void *user, agx_error *err)
{
    session_job *j = user;
    for (int i = 0; i < 600 && agx_fake_event_count(j->fake, "cap") == 0; i++)
        usleep(100000);
    if (agx_fake_event_count(j->fake, "cap") == 0)
        return agx_error_set(err, AGX_ERR_TIMEOUT, "the fake never reached its cap");
    return agx_test_demo_session(sb, err);
}

static void *session_thread(void *arg)
{
    session_job *j = arg;
    j->rc = agx_session_run(j->dep, j->cfg, session_body, j, &j->err);
    return NULL;
}

void agx_fake_concurrent_sessions(agx_fake *f, agx_deployment *dep, const agx_sandbox_config *cfg,
                                  int n)
{
    session_job *jobs = calloc((size_t)n, sizeof *jobs);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    CHECK(jobs && th);
    for (int i = 0; i < n; i++) {
        jobs[i] = (session_job){.dep = dep, .cfg = cfg, .fake = f};
        CHECK(pthread_create(&th[i], NULL, session_thread, &jobs[i]) == 0);
    }
    int failed = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].rc) {
            fprintf(stderr, "session %d failed: %s (%s)\n", i, jobs[i].err.message,
                    jobs[i].err.detail);
            failed++;
        }
    }
    free(jobs);
    free(th);
    CHECK_MSG(failed == 0, "%d of %d concurrent sessions failed", failed, n);
}

void agx_fake_expect_spec_refusal(agx_fake *f, const char *method, const char *path,
                                  const char *header, const char *json, const char *body_says,
                                  const char *names)
{
    char *body = NULL;
    long st = agx_fake_raw(f, method, path, header, json, &body);
    CHECK_MSG(st == 400, "%s %s against the spec was answered %ld", method, path, st);
    CHECK_CONTAINS(body, body_says);
    free(body);
    json_t *s = agx_fake_stats(f);
    json_t *v = json_object_get(s, "violations");
    CHECK(json_array_size(v) == 1);
    CHECK_CONTAINS(json_string_value(json_array_get(v, 0)), names);
    json_decref(s);
    CHECK(agx_fake_live(f) == 0);
    agx_fake_stop(f);
}
