/* rollout_run.c — one task, start to end, as a chain of engine callbacks on the host's one thread:
 * a fleet of one sandbox from the task image (agx_fleet_create_async: retries on retriable
 * create errors, owner labels, registered for the cleanup handler), a connection
 * (agx_client_connect_sandbox_async), the task's files through agentix.files::upload
 * (agx_client_call_async), its command through agentix.bash::run_stream (agx_client_stream_async)
 * with the output echoed line by line as it arrives, the exit code against the expected outcome,
 * and the delete (agx_fleet_destroy_async). */
#include "rollout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TASK_DIR "task" /* files and the command's cwd, relative to the runtime's files root */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(rollout_result *res, const char *what, const agx_error *err)
{
    res->status = TASK_ERROR;
    snprintf(res->error, sizeof res->error, "%s: %.500s (%s)", what, err->message,
             agx_error_code_name(err->code));
}

/* The command's output, echoed as "[task] line" — whole lines only, so tasks running at once do
 * not interleave mid-line (their callbacks take turns on the host's thread). */
typedef struct echo {
    rollout *r;
    size_t task;
    char line[4096];
    size_t len;
    char *capture;            /* stdout kept for expect_stdout (bounded) */
    size_t cap_len, cap_max;
} echo;

static void echo_flush(echo *e)
{
    if (e->len == 0)
        return;
    if (!e->r->quiet) {
        printf("[%zu %s] %.*s\n", e->task, e->r->tasks[e->task].name, (int)e->len, e->line);
        fflush(stdout);
    }
    e->len = 0;
}

static void echo_bytes(echo *e, const char *data, size_t len, bool is_stdout)
{
    if (is_stdout && e->capture) {
        size_t n = len < e->cap_max - e->cap_len ? len : e->cap_max - e->cap_len;
        memcpy(e->capture + e->cap_len, data, n);
        e->cap_len += n;
        e->capture[e->cap_len] = '\0';
    }
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' || e->len == sizeof e->line) {
            echo_flush(e);
            if (data[i] == '\n')
                continue;
        }
        e->line[e->len++] = data[i];
    }
}

/* ---- one task as a chain of callbacks ---- */

/* A task in flight. Every callback below runs on the host's one thread, inside
 * agx_engine_process (the engine delivers through its completion queue), so nothing here locks. */
typedef struct task_run {
    rollout *r;
    size_t i;
    double t0;
    agx_fleet *fleet;
    agx_client *client;
    agx_call *call;
    size_t next_file;
    echo e;
    char capture[65536];
} task_run;

static void teardown(task_run *t);

static void task_failed(task_run *t, const char *what, const agx_error *err)
{
    fail(&t->r->results[t->i], what, err);
    teardown(t);
}

static void finish(task_run *t)
{
    rollout *r = t->r;
    rollout_result *res = &r->results[t->i];
    res->total_s = now_s() - t->t0;
    r->runs[t->i] = NULL;
    r->running--;
    fprintf(stderr, "rollout: task %zu %s: %s in %.2f s%s%s\n", t->i, r->tasks[t->i].name,
            res->status == TASK_OK ? "ok" : res->status == TASK_MISMATCH ? "MISMATCH" : "ERROR",
            res->total_s, res->error[0] ? ": " : "", res->error);
    free(t);
    rollout_next(r);
}

static void destroyed(void *user, int status, const agx_error *err)
{
    task_run *t = user;
    if (status) {
        t->r->delete_failures++;
        if (t->r->results[t->i].status != TASK_ERROR)
            fail(&t->r->results[t->i], "delete", err);
    } else {
        t->r->deleted++;
    }
    agx_fleet_free(t->fleet);
    finish(t);
}

/* The client and the call go (any callback still due ends now, as cancelled), then the sandbox. */
static void teardown(task_run *t)
{
    agx_call_free(t->call);
    t->call = NULL;
    agx_client_free(t->client);
    t->client = NULL;
    agx_error err;
    if (!t->fleet)
        finish(t);
    else if (agx_fleet_destroy_async(t->r->engine, t->fleet, destroyed, t, &err) != 0)
        destroyed(t, err.code, &err);
}

static void streamed(void *user, agx_call_event ev, agx_value *item, const agx_error *err)
{
    task_run *t = user;
    rollout_result *res = &t->r->results[t->i];
    if (ev == AGX_CALL_ITEM) {
        const char *type = agx_value_get_string(agx_value_map_get(item, "type"), NULL);
        size_t len = 0;
        const char *data = agx_value_get_binary(agx_value_map_get(item, "data"), &len);
        if (type && strcmp(type, "exit") == 0)
            res->exit_code = (int)agx_value_get_int64(agx_value_map_get(item, "exit_code"));
        else if (data)
            echo_bytes(&t->e, data, len, type && strcmp(type, "stdout") == 0);
        agx_value_free(item);
        return;
    }
    echo_flush(&t->e);
    const rollout_task *task = &t->r->tasks[t->i];
    agx_error e;
    if (ev == AGX_CALL_ERROR) {
        fail(res, "run", err);
    } else if (res->exit_code < 0) {
        agx_error_set(&e, AGX_ERR_PROTOCOL, "run_stream ended without an exit item");
        fail(res, "run", &e);
    } else {
        res->status = res->exit_code == task->expect_exit &&
                              (!task->expect_stdout || strstr(t->capture, task->expect_stdout))
                          ? TASK_OK
                          : TASK_MISMATCH;
    }
    teardown(t);
}

static void run_command(task_run *t)
{
    rollout *r = t->r;
    const rollout_task *task = &r->tasks[t->i];
    double timeout = task->timeout_s > 0 ? task->timeout_s : r->default_timeout_s;
    /* The task folder exists only when files were uploaded: make sure, then run inside it. */
    size_t wlen = strlen(task->command) + 64;
    char *wrapped = malloc(wlen);
    agx_error err;
    if (!wrapped) {
        agx_error_set(&err, AGX_ERR_NO_MEMORY, "out of memory");
        return task_failed(t, "run", &err);
    }
    snprintf(wrapped, wlen, "mkdir -p " TASK_DIR " && cd " TASK_DIR " && {\n%s\n}", task->command);
    agx_value *kw = agx_value_map();
    agx_value_map_set(kw, "command", agx_value_string(wrapped));
    free(wrapped);
    agx_value_map_set(kw, "timeout", agx_value_double(timeout));
    /* The command is bounded by its timeout in the sandbox; the host's watchdog gets a margin. */
    t->r->deadline[t->i] = now_s() + timeout + 30;
    int rc = agx_client_stream_async(t->client, "agentix.bash::run_stream", NULL, kw, streamed, t,
                                     &t->call, &err);
    agx_value_free(kw);
    if (rc)
        task_failed(t, "run", &err);
}

static void upload_next(task_run *t);

static void uploaded(void *user, int status, agx_value *result, const agx_error *err)
{
    task_run *t = user;
    agx_value_free(result);
    if (status)
        return task_failed(t, "upload", err);
    upload_next(t);
}

/* The task's files, one agentix.files::upload at a time, then the command. */
static void upload_next(task_run *t)
{
    const rollout_task *task = &t->r->tasks[t->i];
    if (!task->files || t->next_file >= agx_value_map_len(task->files))
        return run_command(t);
    size_t klen = 0, vlen = 0, i = t->next_file++;
    const char *path = agx_value_map_key_at(task->files, i, &klen);
    const char *content = agx_value_get_string(agx_value_map_value_at(task->files, i), &vlen);
    char full[1024];
    snprintf(full, sizeof full, TASK_DIR "/%.*s", (int)klen, path);
    agx_value *kw = agx_value_map();
    agx_value_map_set(kw, "path", agx_value_string(full));
    agx_value_map_set(kw, "content", agx_value_binary(content, vlen));
    agx_error err;
    int rc = agx_client_call_async(t->client, "agentix.files::upload", NULL, kw, 60000, uploaded,
                                   t, &err);
    agx_value_free(kw);
    if (rc)
        task_failed(t, "upload", &err);
}

static void connected(void *user, agx_client *c, int status, const agx_error *err)
{
    (void)c;
    task_run *t = user;
    if (status)
        return task_failed(t, "connect", err);
    upload_next(t);
}

static void created(void *user, int status, agx_fleet *f, const agx_error *err)
{
    task_run *t = user;
    rollout_result *res = &t->r->results[t->i];
    res->create_s = now_s() - t->t0;
    if (status)
        return task_failed(t, "create", err);
    t->fleet = f;
    t->r->created++;
    const agx_sandbox *sb = agx_fleet_sandbox(f, 0);
    snprintf(res->sandbox_id, sizeof res->sandbox_id, "%s", agx_sandbox_id(sb));
    agx_client_options opts;
    agx_client_options_init(&opts);
    opts.engine = t->r->engine;
    opts.connect_timeout_ms = 60000; /* many sandboxes at once on a small machine */
    agx_error e;
    if (agx_client_connect_sandbox_async(sb, &opts, connected, t, &t->client, &e) != 0)
        task_failed(t, "connect", &e);
}

void rollout_start_task(rollout *r, size_t i)
{
    rollout_result *res = &r->results[i];
    const rollout_task *task = &r->tasks[i];
    res->exit_code = -1;
    task_run *t = calloc(1, sizeof *t);
    agx_sandbox_config *cfg = t ? agx_sandbox_config_copy(r->base) : NULL;
    if (!cfg ||
        (task->image && r->task_images && agx_sandbox_config_set_image(cfg, task->image) != 0)) {
        agx_sandbox_config_free(cfg);
        free(t);
        res->status = TASK_ERROR;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    *t = (task_run){.r = r, .i = i, .t0 = now_s()};
    t->e = (echo){.r = r, .task = i, .capture = task->expect_stdout ? t->capture : NULL,
                  .cap_max = sizeof t->capture - 1};
    r->runs[i] = t;
    r->running++;
    agx_fleet_options fo;
    agx_fleet_options_init(&fo);
    fo.count = 1;
    fo.run_id = r->run_id;
    agx_error err;
    int rc = agx_fleet_create_async(r->engine, r->dep, cfg, &fo, created, t, &err);
    agx_sandbox_config_free(cfg);
    if (rc)
        task_failed(t, "create", &err);
}

void rollout_watchdog(rollout *r)
{
    double now = now_s();
    for (size_t i = 0; i < r->ntasks; i++) {
        task_run *t = r->runs[i];
        if (t && t->call && r->deadline[i] > 0 && now > r->deadline[i]) {
            r->deadline[i] = 0;
            agx_call_cancel(t->call); /* its callback then reports the cancellation */
        }
    }
}
