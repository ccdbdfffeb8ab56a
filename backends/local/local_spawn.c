/* local_spawn.c — starting one agentix-server for a local sandbox: build its environment, spawn it
 * in its own session with nothing of the host inherited but the environment, learn its port from
 * the port file it writes once listening, and wait for GET /health — all bounded by the config's
 * timeout, and watching that the server has not died meanwhile. */
#include "backends/local/local_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/backend/runtime.h"
#include "agentix/clock.h"
#include "agentix/expiry.h"
#include "agentix/fdio.h"

extern char **environ;

#define PORT_FILE "server.port"
#define TOKEN_FD 3 /* where the server finds the read end of the token's pipe */
#define TOKEN_FD_TEXT "3"

/* ---- environment: the host's minus LD_PRELOAD, then the config's, then the runtime's own ---- */

static int kv_has_key_n(const agx_kv *kv, const char *key, size_t len)
{
    size_t n = kv ? agx_kv_count(kv) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = agx_kv_key_at(kv, i);
        if (strncmp(k, key, len) == 0 && k[len] == '\0')
            return 1;
    }
    return 0;
}

static void env_free(char **envp)
{
    for (size_t i = 0; envp && envp[i]; i++)
        free(envp[i]);
    free(envp);
}

static int env_push(char **envp, size_t *n, const char *key, const char *value)
{
    if (asprintf(&envp[*n], "%s=%s", key, value) < 0) {
        envp[*n] = NULL;
        return -1;
    }
    (*n)++;
    envp[*n] = NULL;
    return 0;
}

static int env_build(const agx_kv *cfg_env, const agx_kv *ours, char ***out, agx_error *err)
{
    size_t host = 0;
    while (environ && environ[host])
        host++;
    size_t cap = host + (cfg_env ? agx_kv_count(cfg_env) : 0) + agx_kv_count(ours) + 1;
    char **envp = calloc(cap, sizeof *envp);
    if (!envp)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building the server environment");
    size_t n = 0;
    for (size_t i = 0; i < host; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t klen = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        /* LD_PRELOAD would load the host's tools (sanitizers, valgrind) into the runtime. */
        if (!eq || (klen == 10 && !strncmp(environ[i], "LD_PRELOAD", 10)) ||
            kv_has_key_n(cfg_env, environ[i], klen) || kv_has_key_n(ours, environ[i], klen))
            continue;
        if (!(envp[n] = strdup(environ[i])))
            goto oom;
        envp[++n] = NULL;
    }
    for (size_t i = 0; cfg_env && i < agx_kv_count(cfg_env); i++) {
        const char *k = agx_kv_key_at(cfg_env, i);
        if (strchr(k, '=')) {
            env_free(envp);
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "environment variable name '%s' contains '='", k);
        }
        if (!kv_has_key_n(ours, k, strlen(k)) && env_push(envp, &n, k, agx_kv_value_at(cfg_env, i)))
            goto oom;
    }
    for (size_t i = 0; i < agx_kv_count(ours); i++)
        if (env_push(envp, &n, agx_kv_key_at(ours, i), agx_kv_value_at(ours, i)))
            goto oom;
    *out = envp;
    return 0;
oom:
    env_free(envp);
    return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building the server environment");
}

static int runtime_env(const agx_local_spawn_args *a, agx_kv **out, agx_error *err)
{
    char port_file[AGX_LOCAL_PATH_MAX], work[AGX_LOCAL_PATH_MAX], expiry[24];
    snprintf(port_file, sizeof port_file, "%s/" PORT_FILE, a->workdir);
    snprintf(work, sizeof work, "%s/" AGX_LOCAL_WORK, a->workdir);
    snprintf(expiry, sizeof expiry, "%lld", (long long)a->expiry_ms);
    agx_kv *kv = agx_kv_new();
    /* Port 0: the server binds any free port and reports it, so there is no race for a port. The
     * token comes through a pipe on fd TOKEN_FD: no environment or file of the sandbox holds it. */
    if (!kv || agx_kv_set(kv, "AGENTIX_BIND_HOST", "127.0.0.1") ||
        agx_kv_set(kv, "AGENTIX_BIND_PORT", "0") || agx_kv_set(kv, "AGENTIX_PORT_FILE", port_file) ||
        agx_kv_set(kv, "AGENTIX_TOKEN_FD", TOKEN_FD_TEXT) || agx_kv_set(kv, "AGENTIX_FILES_ROOT", work) ||
        (a->expiry_ms > 0 && agx_kv_set(kv, AGX_EXPIRY_ENV, expiry))) {
        agx_kv_free(kv);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building the server environment");
    }
    *out = kv;
    return 0;
}

/* ---- spawning ---- */

static int spawn_setup(const agx_local_spawn_args *a, int token_fd, posix_spawn_file_actions_t *fa,
                       posix_spawnattr_t *at)
{
    char log[AGX_LOCAL_PATH_MAX], work[AGX_LOCAL_PATH_MAX];
    snprintf(log, sizeof log, "%s/server.log", a->workdir);
    snprintf(work, sizeof work, "%s/" AGX_LOCAL_WORK, a->workdir);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    /* Own session: the group can be signalled as one and the host's terminal signals skip it.
     * Default dispositions and an empty mask: the host may ignore SIGPIPE or block signals.
     * Every fd above stderr is closed: the host's sockets and pipes stay with the host. */
    int rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (!rc)
        rc = posix_spawn_file_actions_addopen(fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(fa, 1, 2);
    if (!rc)
        rc = posix_spawn_file_actions_adddup2(fa, token_fd, TOKEN_FD);
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, TOKEN_FD + 1);
    if (!rc)
        rc = posix_spawn_file_actions_addchdir_np(fa, work);
    if (!rc)
        rc = posix_spawnattr_setflags(at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    if (!rc)
        rc = posix_spawnattr_setsigmask(at, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(at, &all);
    return rc;
}

/* A pipe holding the token, its write end closed: the server reads it to EOF. */
static int token_pipe(const char *token, int *rd, agx_error *err)
{
    int p[2];
    size_t n = strlen(token);
    /* Above the standard streams and TOKEN_FD, so the spawn's dup2 never collides with it. */
    if (pipe2(p, O_CLOEXEC) != 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot make the token's pipe: %s", strerror(errno));
    ssize_t w = write(p[1], token, n); /* 32 bytes: far below the pipe's capacity */
    close(p[1]);
    if (w != (ssize_t)n) {
        close(p[0]);
        return agx_error_set(err, AGX_ERR_IO, "cannot write the token's pipe");
    }
    *rd = p[0];
    return 0;
}

static int spawn_server(const agx_local_spawn_args *a, char **envp, agx_local_proc *proc,
                        agx_error *err)
{
    int token_fd = -1;
    int rc = token_pipe(a->token, &token_fd, err);
    if (rc)
        return rc;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    if (posix_spawn_file_actions_init(&fa)) {
        close(token_fd);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory preparing to spawn");
    }
    if (posix_spawnattr_init(&at)) {
        posix_spawn_file_actions_destroy(&fa);
        close(token_fd);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory preparing to spawn");
    }
    rc = spawn_setup(a, token_fd, &fa, &at);
    pid_t pid = 0;
    /* argv[0] names the sandbox: delete tells its server from any process by it (local_proc.c). */
    char argv0[AGX_LOCAL_ID_MAX + sizeof AGX_LOCAL_ARGV0];
    snprintf(argv0, sizeof argv0, AGX_LOCAL_ARGV0 "%s", a->id);
    char *argv[] = {argv0, NULL};
    if (!rc)
        rc = posix_spawn(&pid, a->server, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(token_fd);
    if (rc)
        return agx_error_set(err, AGX_ERR_IO, "cannot start '%s' in '%s': %s", a->server,
                             a->workdir, strerror(rc));
    memset(proc, 0, sizeof *proc);
    proc->pid = pid;
    proc->is_child = 1;
    /* Readable until we reap it (a zombie reads as gone, which is what it is). */
    agx_local_proc_start_ticks(pid, &proc->start_ticks);
    return 0;
}

/* ---- readiness ---- */

/* The port the server reports, 0 while the file is absent or incomplete. */
static int read_port(const char *workdir)
{
    char path[AGX_LOCAL_PATH_MAX], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/" PORT_FILE, workdir);
    if (agx_file_read(path, 16, 1, &text, &len, NULL))
        return 0;
    char *end;
    errno = 0;
    long port = strtol(text, &end, 10);
    int complete = end != text && (*end == '\n' || (*end == '\0' && len > 0));
    free(text);
    return !errno && complete && port > 0 && port <= 65535 ? (int)port : 0;
}

typedef struct ready_ctx {
    const agx_local_spawn_args *a;
    agx_local_proc *proc;
    int *port;
} ready_ctx;

/* Between probes: a server that exited fails the wait at once, saying how it ended. */
static int server_alive(void *user, agx_error *err)
{
    ready_ctx *r = user;
    if (agx_local_proc_running(r->proc))
        return 0;
    char how[96] = "exited";
    if (r->proc->reaped)
        agx_local_proc_describe_exit(r->proc->exit_status, how, sizeof how);
    agx_error_set(err, AGX_ERR_BACKEND,
                  "agentix-server '%s' %s before answering /health; its log (%s/server.log) is in "
                  "the error detail", r->a->server, how, r->a->workdir);
    return err ? err->code : AGX_ERR_BACKEND;
}

static int timed_out(const agx_local_spawn_args *a, int port, agx_error *err)
{
    agx_error_set(err, AGX_ERR_TIMEOUT,
                  "agentix-server '%s' did not answer GET /health %s%d within %lld ms; its log is "
                  "in the error detail (raise the config's timeout if the machine is busy)",
                  a->server, port ? "on port " : "(port file not written) ", port,
                  (long long)a->timeout_ms);
    if (err)
        err->retriable = 1;
    return AGX_ERR_TIMEOUT;
}

/* First the port file (the server binds port 0), then the toolkit's health wait on it — never
 * through a proxy: a host proxy must not see loopback traffic. */
static int wait_ready(const agx_local_spawn_args *a, agx_local_proc *proc, int *port,
                      agx_error *err)
{
    int64_t deadline = agx_clock_ms() + a->timeout_ms;
    ready_ctx r = {a, proc, port};
    for (int64_t step = 2; !(*port = read_port(a->workdir)); step = step * 2 > 100 ? 100 : step * 2) {
        int rc = server_alive(&r, err);
        if (rc)
            return rc;
        int64_t left = deadline - agx_clock_ms();
        if (left <= 0)
            return timed_out(a, 0, err);
        agx_clock_sleep_ms(step < left ? step : left);
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", *port);
    agx_health_wait w = {.runtime_url = url, .what = "agentix-server", .no_proxy = 1,
                         .deadline_ms = deadline, .first_interval_ms = 2, .max_interval_ms = 100,
                         .alive = server_alive, .user = &r};
    int rc = agx_health_wait_run(&w, err);
    return rc == AGX_ERR_TIMEOUT ? timed_out(a, *port, err) : rc;
}

int agx_local_spawn(const agx_local_spawn_args *a, agx_local_proc *proc, agx_error *err)
{
    agx_kv *ours = NULL;
    char **envp = NULL;
    int rc = runtime_env(a, &ours, err);
    if (!rc)
        rc = env_build(a->env, ours, &envp, err);
    agx_kv_free(ours);
    if (!rc)
        rc = spawn_server(a, envp, proc, err);
    env_free(envp);
    return rc;
}

int agx_local_wait_ready(const agx_local_spawn_args *a, agx_local_proc *proc, int *port,
                         agx_error *err)
{
    *port = 0;
    int rc = wait_ready(a, proc, port, err);
    if (rc) {
        char log[AGX_LOCAL_PATH_MAX];
        snprintf(log, sizeof log, "%s/server.log", a->workdir);
        agx_fs_log_tail(log, err);
        agx_local_proc_stop(proc, a->id, 0, NULL);
    }
    return rc;
}
