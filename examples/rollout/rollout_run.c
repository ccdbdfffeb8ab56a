/* rollout_run.c — one task, start to end: a fleet of one sandbox from the task image (retries on
 * retriable create errors, owner labels, registered for the cleanup handler), the task's files
 * through agentix.files::upload, its command through agentix.bash::run_stream with the output
 * echoed line by line as it arrives, the exit code against the expected outcome, and the delete. */
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
 * not interleave mid-line. */
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
        pthread_mutex_lock(&e->r->mu);
        printf("[%zu %s] %.*s\n", e->task, e->r->tasks[e->task].name, (int)e->len, e->line);
        fflush(stdout);
        pthread_mutex_unlock(&e->r->mu);
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

static int upload_files(agx_client *c, const rollout_task *t, agx_error *err)
{
    for (size_t i = 0; t->files && i < agx_value_map_len(t->files); i++) {
        size_t klen = 0, vlen = 0;
        const char *path = agx_value_map_key_at(t->files, i, &klen);
        const char *content = agx_value_get_string(agx_value_map_value_at(t->files, i), &vlen);
        char full[1024];
        snprintf(full, sizeof full, TASK_DIR "/%.*s", (int)klen, path);
        agx_value *kw = agx_value_map(), *res = NULL;
        agx_value_map_set(kw, "path", agx_value_string(full));
        agx_value_map_set(kw, "content", agx_value_binary(content, vlen));
        int rc = agx_client_call(c, "agentix.files::upload", NULL, kw, 60000, &res, err);
        agx_value_free(kw);
        agx_value_free(res);
        if (rc)
            return rc;
    }
    return 0;
}

/* run_stream: echoes output, returns 0 with *exit_code, or an error. */
static int run_command(rollout *r, size_t i, agx_client *c, echo *e, int *exit_code,
                       agx_error *err)
{
    const rollout_task *t = &r->tasks[i];
    double timeout = t->timeout_s > 0 ? t->timeout_s : r->default_timeout_s;
    /* The task folder exists only when files were uploaded: make sure, then run inside it. */
    size_t wlen = strlen(t->command) + 64;
    char *wrapped = malloc(wlen);
    if (!wrapped)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    snprintf(wrapped, wlen, "mkdir -p " TASK_DIR " && cd " TASK_DIR " && {\n%s\n}", t->command);
    agx_value *kw = agx_value_map();
    agx_value_map_set(kw, "command", agx_value_string(wrapped));
    free(wrapped);
    agx_value_map_set(kw, "timeout", agx_value_double(timeout));
    agx_call *call = NULL;
    int rc = agx_client_stream(c, "agentix.bash::run_stream", NULL, kw, &call, err);
    agx_value_free(kw);
    *exit_code = -1;
    agx_value *item = NULL;
    /* The command is bounded by its timeout in the sandbox; the wait here gets a margin. */
    int wait_ms = (int)(timeout * 1000) + 30000;
    while (!rc && (rc = agx_call_next(call, wait_ms, &item, err)) == 1) {
        const char *type = agx_value_get_string(agx_value_map_get(item, "type"), NULL);
        size_t len = 0;
        const char *data = agx_value_get_binary(agx_value_map_get(item, "data"), &len);
        if (type && strcmp(type, "exit") == 0)
            *exit_code = (int)agx_value_get_int64(agx_value_map_get(item, "exit_code"));
        else if (data)
            echo_bytes(e, data, len, type && strcmp(type, "stdout") == 0);
        agx_value_free(item);
        rc = 0;
    }
    echo_flush(e);
    agx_call_free(call);
    if (!rc && *exit_code < 0)
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "run_stream ended without an exit item");
    return rc;
}

/* Connect, upload, run, judge: everything that happens inside the sandbox. */
static void in_sandbox(rollout *r, size_t i, const agx_sandbox *sb, rollout_result *res)
{
    const rollout_task *t = &r->tasks[i];
    agx_error err;
    agx_client_options opts;
    agx_client_options_init(&opts);
    opts.connect_timeout_ms = 60000; /* many sandboxes at once on a small machine */
    agx_client *c = NULL;
    if (agx_client_connect_sandbox(sb, &opts, &c, &err) != 0)
        return fail(res, "connect", &err);
    char capture[65536];
    echo e = {.r = r, .task = i, .capture = t->expect_stdout ? capture : NULL,
              .cap_max = sizeof capture - 1};
    capture[0] = '\0';
    if (upload_files(c, t, &err) != 0)
        fail(res, "upload", &err);
    else if (run_command(r, i, c, &e, &res->exit_code, &err) != 0)
        fail(res, "run", &err);
    else
        res->status = res->exit_code == t->expect_exit &&
                              (!t->expect_stdout || strstr(capture, t->expect_stdout))
                          ? TASK_OK
                          : TASK_MISMATCH;
    agx_client_free(c);
}

void rollout_run_task(rollout *r, size_t i)
{
    rollout_result *res = &r->results[i];
    const rollout_task *t = &r->tasks[i];
    double t0 = now_s();
    res->exit_code = -1;
    agx_sandbox_config *cfg = agx_sandbox_config_copy(r->base);
    if (!cfg || (t->image && r->task_images && agx_sandbox_config_set_image(cfg, t->image) != 0)) {
        agx_sandbox_config_free(cfg);
        res->status = TASK_ERROR;
        snprintf(res->error, sizeof res->error, "out of memory");
        return;
    }
    agx_fleet_options fo;
    agx_fleet_options_init(&fo);
    fo.count = 1;
    fo.run_id = r->run_id;
    agx_fleet *fleet = NULL;
    agx_error err;
    int rc = agx_fleet_create(r->dep, cfg, &fo, &fleet, &err);
    agx_sandbox_config_free(cfg);
    res->create_s = now_s() - t0;
    if (rc) {
        fail(res, "create", &err);
        res->total_s = now_s() - t0;
        return;
    }
    const agx_sandbox *sb = agx_fleet_sandbox(fleet, 0);
    snprintf(res->sandbox_id, sizeof res->sandbox_id, "%s", agx_sandbox_id(sb));
    pthread_mutex_lock(&r->mu);
    r->created++;
    pthread_mutex_unlock(&r->mu);
    in_sandbox(r, i, sb, res);
    int drc = agx_fleet_destroy(fleet, &err);
    pthread_mutex_lock(&r->mu);
    if (drc)
        r->delete_failures++;
    else
        r->deleted++;
    pthread_mutex_unlock(&r->mu);
    if (drc && res->status != TASK_ERROR)
        fail(res, "delete", &err);
    agx_fleet_free(fleet);
    res->total_s = now_s() - t0;
}
