/* proc.c — child processes for agentix.bash (see proc.h): spawned with posix_spawn into their own
 * process group so a timeout or a cancel can kill everything the command started. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CHUNK (64 * 1024)
/* After the shell exits, output still arriving is collected until the pipes are quiet this long;
 * background jobs that keep them open do not hold the call. */
#define QUIET_AFTER_EXIT_MS 200

static char shell_path[PATH_MAX] = "/bin/sh";
static pthread_once_t shell_once = PTHREAD_ONCE_INIT;

/* bash when it is on PATH (the task image may not have it), else the POSIX shell. */
static void find_shell(void)
{
    const char *path = getenv("PATH");
    if (!path)
        return;
    for (const char *p = path; *p;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char cand[PATH_MAX];
        if (len > 0 && len < sizeof cand - 6) {
            snprintf(cand, sizeof cand, "%.*s/bash", (int)len, p);
            if (access(cand, X_OK) == 0) {
                snprintf(shell_path, sizeof shell_path, "%s", cand);
                return;
            }
        }
        p += len + (end ? 1 : 0);
    }
}

int proc_check_env(agx_ctx *ctx, const agx_value *env)
{
    for (size_t i = 0; i < agx_value_map_len(env); i++) {
        size_t klen;
        const char *k = agx_value_map_key_at(env, i, &klen);
        if (klen == 0 || memchr(k, '=', klen) || memchr(k, '\0', klen))
            return agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "env: '%.*s' is not a variable name",
                                (int)(klen > 100 ? 100 : klen), k);
        if (agx_value_type_of(agx_value_map_value_at(env, i)) != AGX_VALUE_STRING)
            return agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "env: the value of '%.*s' must be a string",
                                (int)(klen > 100 ? 100 : klen), k);
    }
    return 0;
}

/* environ with the given variables set (replacing same-named ones): a NULL-terminated array whose
 * strings are in *owned (freed together). */
static char **make_env(const agx_value *env, char ***owned)
{
    size_t n = 0, m = agx_value_map_len(env);
    while (environ[n])
        n++;
    char **out = calloc(n + m + 1, sizeof *out);
    *owned = calloc(m + 1, sizeof **owned);
    if (!out || !*owned) {
        free(out);
        free(*owned);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
        if (!agx_value_map_get_n(env, environ[i], nl))
            out[k++] = environ[i];
    }
    for (size_t i = 0; i < m; i++) {
        size_t klen, vlen;
        const char *key = agx_value_map_key_at(env, i, &klen);
        const char *val = agx_value_get_string(agx_value_map_value_at(env, i), &vlen);
        char *s = malloc(klen + vlen + 2);
        if (!s)
            break;
        memcpy(s, key, klen);
        s[klen] = '=';
        memcpy(s + klen + 1, val, vlen);
        s[klen + 1 + vlen] = '\0';
        (*owned)[i] = s;
        out[k++] = s;
    }
    return out;
}

static void free_env(char **env, char **owned)
{
    for (size_t i = 0; owned && owned[i]; i++)
        free(owned[i]);
    free(owned);
    free(env);
}

static void *watchdog(void *arg)
{
    proc *p = arg;
    int64_t deadline = agx_deadline_ms((int64_t)(p->timeout_s * 1000.0));
    pthread_mutex_lock(&p->mu);
    int rc = 0;
    while (!p->done && rc != ETIMEDOUT)
        rc = agx_cond_wait_until(&p->cv, &p->mu, deadline);
    if (!p->done) {
        atomic_store(&p->timed_out, true);
        kill(-p->pid, SIGKILL);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int start_watchdog(proc *p)
{
    agx_cond_init(&p->cv);
    pthread_mutex_init(&p->mu, NULL);
    if (pthread_create(&p->watchdog, NULL, watchdog, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        return -1;
    }
    p->has_watchdog = true;
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static int check_cwd(agx_ctx *ctx, const char *cwd)
{
    struct stat st;
    if (!cwd)
        return 0;
    if (stat(cwd, &st) != 0)
        return agx_ctx_fail(ctx, "FileNotFoundError", "cwd '%s': %s", cwd, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return agx_ctx_fail(ctx, "NotADirectoryError", "cwd '%s' is not a directory", cwd);
    return 0;
}

/* The spawn itself: pipes, the child's fds, its own process group and default signals. */
static int spawn(proc *p, const char *command, const char *cwd, char **envp, bool with_stdin)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if ((with_stdin ? pipe2(in, O_CLOEXEC) : (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC))) < 0 ||
        pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
        int e = errno;
        close_fd(&in[0]), close_fd(&in[1]), close_fd(&out[0]), close_fd(&out[1]), close_fd(&err[0]);
        close_fd(&err[1]);
        return e;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    if (cwd)
        posix_spawn_file_actions_addchdir_np(&fa, cwd);
    /* The worker ignores SIGPIPE and its threads may block signals: give the shell the defaults. */
    sigset_t def, none;
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    char *argv_c[] = {shell_path, "-c", (char *)command, NULL};
    char *argv_s[] = {shell_path, NULL};
    int rc = posix_spawn(&p->pid, shell_path, &fa, &at, command ? argv_c : argv_s, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    if (rc != 0) {
        close_fd(&in[1]), close_fd(&out[0]), close_fd(&err[0]);
        return rc;
    }
    p->in_fd = in[1];
    p->out_fd = out[0];
    p->err_fd = err[0];
    if (p->in_fd >= 0)
        fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
    return 0;
}

int proc_start(agx_ctx *ctx, proc *p, const char *command, const char *cwd, const agx_value *env,
               bool with_stdin, double timeout_s)
{
    memset(p, 0, sizeof *p);
    p->pidfd = p->in_fd = p->out_fd = p->err_fd = -1;
    pthread_once(&shell_once, find_shell);
    int rc = check_cwd(ctx, cwd);
    if (rc == 0)
        rc = proc_check_env(ctx, env);
    if (rc)
        return rc;
    char **owned = NULL, **envp = make_env(env, &owned);
    if (!envp)
        return agx_ctx_fail(ctx, "MemoryError", "out of memory building the environment");
    int e = spawn(p, command, cwd, envp, with_stdin);
    free_env(envp, owned);
    if (e)
        return agx_ctx_fail(ctx, "OSError", "cannot start %s: %s", shell_path, strerror(e));
    p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
    if (p->pidfd >= 0)
        fcntl(p->pidfd, F_SETFD, FD_CLOEXEC);
    p->timeout_s = timeout_s;
    if (timeout_s > 0 && start_watchdog(p) != 0) {
        proc_finish(p, true);
        return agx_ctx_fail(ctx, "OSError", "cannot start the timeout thread");
    }
    return 0;
}

void proc_kill(proc *p)
{
    if (!p->reaped)
        kill(-p->pid, SIGKILL);
}

/* Reaps the child if it has exited; true once reaped. */
static bool try_reap(proc *p)
{
    if (!p->reaped && waitpid(p->pid, &p->status, WNOHANG) == p->pid)
        p->reaped = true;
    return p->reaped;
}

int proc_pump(agx_ctx *ctx, proc *p, proc_sink sink, void *arg)
{
    char *buf = malloc(CHUNK);
    if (!buf)
        return agx_ctx_fail(ctx, "MemoryError", "out of memory");
    int fds[2] = {p->out_fd, p->err_fd};
    bool open_[2] = {true, true};
    int rc = 0;
    /* Until the shell has exited and its output has ended (or gone quiet). */
    while (open_[0] || open_[1] || !p->reaped) {
        /* Quiet only counts after the exit was seen: output written just before the shell exited
         * may arrive between this poll and the reap below (without pidfd, the reap is tried on
         * every pass), and it must still be read. */
        bool exit_seen = p->reaped;
        struct pollfd pf[4] = {
            {.fd = open_[0] ? fds[0] : -1, .events = POLLIN},
            {.fd = open_[1] ? fds[1] : -1, .events = POLLIN},
            {.fd = agx_ctx_cancel_fd(ctx), .events = POLLIN},
            {.fd = p->reaped ? -1 : p->pidfd, .events = POLLIN},
        };
        int wait_ms = p->reaped ? QUIET_AFTER_EXIT_MS : p->pidfd < 0 ? 50 : -1;
        int n = poll(pf, 4, wait_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (pf[2].revents & POLLIN) {
            proc_kill(p);
            rc = AGX_ERR_CANCELLED;
            break;
        }
        if (pf[3].revents || p->pidfd < 0 || (!open_[0] && !open_[1]))
            try_reap(p);
        if (n == 0 && exit_seen)
            break; /* the shell is gone and nothing more came: leave background jobs be */
        for (int s = 0; s < 2 && rc == 0; s++) {
            if (!open_[s] || !(pf[s].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t r = read(fds[s], buf, CHUNK);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0)
                open_[s] = false;
            else
                rc = sink(arg, s + 1, buf, (size_t)r);
        }
        if (rc)
            break;
    }
    free(buf);
    return rc;
}

int proc_finish(proc *p, bool kill_first)
{
    if (p->has_watchdog) {
        pthread_mutex_lock(&p->mu);
        p->done = true;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->watchdog, NULL);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        p->has_watchdog = false;
    }
    if (kill_first)
        proc_kill(p);
    while (!p->reaped && waitpid(p->pid, &p->status, 0) < 0 && errno == EINTR)
        ;
    p->reaped = true;
    close_fd(&p->pidfd);
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    if (WIFEXITED(p->status))
        return WEXITSTATUS(p->status);
    return WIFSIGNALED(p->status) ? 128 + WTERMSIG(p->status) : -1;
}
