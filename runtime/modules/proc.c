/* proc.c — child processes for agentix.bash (see proc.h): each command runs under its own
 * subreaper (reaper.c), so a timeout, a cancel or the worker's death kills everything the command
 * started, `setsid` daemons included. */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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
        size_t klen, vlen = 0;
        const char *k = agx_value_map_key_at(env, i, &klen);
        const agx_value *v = agx_value_map_value_at(env, i);
        if (klen == 0 || memchr(k, '=', klen) || memchr(k, '\0', klen))
            return agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "env: '%.*s' is not a variable name",
                                (int)(klen > 100 ? 100 : klen), k);
        if (agx_value_type_of(v) != AGX_VALUE_STRING)
            return agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "env: the value of '%.*s' must be a string",
                                (int)(klen > 100 ? 100 : klen), k);
        const char *val = agx_value_get_string(v, &vlen);
        if (memchr(val, '\0', vlen))
            return agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "env: the value of '%.*s' holds a NUL byte",
                                (int)(klen > 100 ? 100 : klen), k);
    }
    return 0;
}

const char *proc_string_arg(agx_ctx *ctx, const char *name, bool *bad)
{
    size_t len = 0;
    const char *s = agx_value_get_string(agx_ctx_arg(ctx, name), &len); /* nil → NULL */
    if (s && memchr(s, '\0', len)) {
        agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "%s holds a NUL byte at offset %zu", name,
                     (size_t)((const char *)memchr(s, '\0', len) - s));
        *bad = true;
        return NULL;
    }
    return s;
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
        reaper_signal_kill(&p->r);
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

/* The spawn itself: pipes for the child's streams, and the command under its subreaper. */
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
    char *argv_c[] = {shell_path, "-c", (char *)command, NULL};
    char *argv_s[] = {shell_path, NULL};
    int rc = reaper_spawn(&p->r, command ? argv_c : argv_s, envp, cwd, in[0], out[1], err[1]);
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
    p->r.ctl = p->in_fd = p->out_fd = p->err_fd = -1;
    p->r.done = true; /* nothing to wait for until spawned */
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
    p->timeout_s = timeout_s;
    if (timeout_s > 0 && start_watchdog(p) != 0) {
        proc_finish(p, true);
        return agx_ctx_fail(ctx, "OSError", "cannot start the timeout thread");
    }
    return 0;
}

void proc_kill(proc *p) { reaper_signal_kill(&p->r); }

int proc_pump(agx_ctx *ctx, proc *p, proc_sink sink, void *arg)
{
    char *buf = malloc(CHUNK);
    if (!buf)
        return agx_ctx_fail(ctx, "MemoryError", "out of memory");
    int fds[2] = {p->out_fd, p->err_fd};
    bool open_[2] = {true, true};
    int rc = 0;
    /* Until the command has exited and its output has ended (or gone quiet). */
    while (open_[0] || open_[1] || !p->r.have_status) {
        /* Quiet only counts after the exit was seen: output written just before the command
         * exited may arrive between this poll and the status read below, and it must still be
         * read. */
        bool exited = p->r.have_status;
        struct pollfd pf[4] = {
            {.fd = open_[0] ? fds[0] : -1, .events = POLLIN},
            {.fd = open_[1] ? fds[1] : -1, .events = POLLIN},
            {.fd = agx_ctx_cancel_fd(ctx), .events = POLLIN},
            {.fd = exited ? -1 : p->r.ctl, .events = POLLIN}, /* the status arrives here */
        };
        int n = poll(pf, 4, exited ? QUIET_AFTER_EXIT_MS : -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (pf[2].revents & POLLIN) {
            proc_kill(p);
            rc = AGX_ERR_CANCELLED;
            break;
        }
        if (pf[3].revents)
            reaper_poll(&p->r);
        if (n == 0 && exited)
            break; /* the command is gone and nothing more came: leave background jobs be */
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
        reaper_kill(&p->r);
    else
        reaper_release(&p->r);
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    int status = p->r.status;
    if (!p->r.have_status)
        return -1;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}
