/* config.c — agentix-server's configuration, all from the environment the backend starts it with
 * (docs/PROTOCOL.md §1 lists the variables). Every variable is validated; a bad one stops the
 * server at start with a message naming it, never a silent default. */
#include "runtime/server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_HOST "0.0.0.0"
#define DEFAULT_PORT 8000
#define PATH_VAR_MAX 4096


static const char *env_get(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* An unsigned decimal in [lo, hi]; absent leaves *out as is. */
static int env_uint(const char *name, uint64_t lo, uint64_t hi, uint64_t *out, char *msg,
                    size_t len)
{
    const char *v = env_get(name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long u = strtoull(v, &end, 10);
    if (errno || *end || v[0] == '-' || v[0] == '+' || u < lo || u > hi)
        return srv_bad(msg, len, "%s='%.64s' is not a whole number in %llu..%llu", name, v,
                   (unsigned long long)lo, (unsigned long long)hi);
    *out = u;
    return 0;
}

static int env_str(const char *name, size_t max, char **out, char *msg, size_t len)
{
    const char *v = env_get(name);
    if (!v)
        return 0;
    if (strlen(v) > max)
        return srv_bad(msg, len, "%s is longer than %zu bytes", name, max);
    if (!(*out = strdup(v)))
        return srv_bad(msg, len, "out of memory");
    return 0;
}

/* The directory of this executable: the worker and the built-in modules are found from it. */
static int self_dir(char *dir, size_t cap, char *msg, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
    if (n <= 0)
        return srv_bad(msg, len, "cannot find the server executable (/proc/self/exe: %s); set "
                   "AGENTIX_WORKER and AGENTIX_MODULE_PATH", strerror(errno));
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    return 0;
}

static int load_worker(srv_config *c, const char *dir, char *msg, size_t len)
{
    if (env_str("AGENTIX_WORKER", PATH_VAR_MAX, &c->worker_path, msg, len))
        return -1;
    bool from_env = c->worker_path != NULL;
    if (!from_env) {
        size_t n = strlen(dir) + sizeof "/agentix-worker";
        if (!(c->worker_path = malloc(n)))
            return srv_bad(msg, len, "out of memory");
        snprintf(c->worker_path, n, "%s/agentix-worker", dir);
    }
    struct stat st;
    const char *why = NULL;
    if (stat(c->worker_path, &st) != 0 || access(c->worker_path, X_OK) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    if (why)
        return srv_bad(msg, len, "%s'%s' is not an executable file (%s)%s",
                   from_env ? "AGENTIX_WORKER=" : "the worker ", c->worker_path, why,
                   from_env ? "" : "; set AGENTIX_WORKER to the path of agentix-worker");
    return 0;
}

/* A runtime started from a bundle tree (<prefix>/lib/agentix/bin/agentix-server, with the
 * <prefix>/BUNDLE marker; docs/BUNDLES.md) puts <prefix>/bin first on PATH, so the bundle's tools
 * are found by the server, the worker and every command it runs, whatever PATH the task image or
 * the backend gave. Other installations leave PATH alone. */
#define BUNDLE_RUNTIME_DIR "/lib/agentix/bin"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int bundle_path(const char *dir, char *msg, size_t len)
{
    size_t n = strlen(dir), sl = strlen(BUNDLE_RUNTIME_DIR);
    if (n <= sl || strcmp(dir + n - sl, BUNDLE_RUNTIME_DIR) != 0)
        return 0;
    char marker[PATH_MAX + 16];
    snprintf(marker, sizeof marker, "%.*s/BUNDLE", (int)(n - sl), dir);
    struct stat st;
    if (stat(marker, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    const char *old = env_get("PATH");
    if (!old)
        old = DEFAULT_PATH;
    size_t bl = n - sl + sizeof "/bin" - 1;
    char *path = malloc(bl + strlen(old) + 2);
    if (!path)
        return srv_bad(msg, len, "out of memory");
    snprintf(path, bl + strlen(old) + 2, "%.*s/bin:%s", (int)(n - sl), dir, old);
    int rc = 0;
    if (strncmp(old, path, bl + 1) != 0 && setenv("PATH", path, 1) != 0) /* not first already */
        rc = srv_bad(msg, len, "cannot put the bundle's bin/ on PATH: %s", strerror(errno));
    free(path);
    return rc;
}

/* The worker searches AGENTIX_MODULE_PATH first, then the built-in modules beside the runtime. */
static int load_module_path(srv_config *c, const char *dir, char *msg, size_t len)
{
    const char *v = env_get("AGENTIX_MODULE_PATH");
    if (v && strlen(v) > PATH_VAR_MAX)
        return srv_bad(msg, len, "AGENTIX_MODULE_PATH is longer than %d bytes", PATH_VAR_MAX);
    size_t n = (v ? strlen(v) + 1 : 0) + strlen(dir) + sizeof "/../modules";
    if (!(c->module_path = malloc(n)))
        return srv_bad(msg, len, "out of memory");
    snprintf(c->module_path, n, "%s%s%s/../modules", v ? v : "", v ? ":" : "", dir);
    return 0;
}

/* AGENTIX_LISTEN=unix:<absolute path> (the ns backend's default: no network in the sandbox). It
 * excludes AGENTIX_BIND_HOST/PORT so a server never listens somewhere its backend did not mean. */
static int load_listen(srv_config *c, char *msg, size_t len)
{
    const char *v = env_get("AGENTIX_LISTEN");
    if (!v)
        return 0;
    if (strncmp(v, "unix:", 5) != 0 || v[5] != '/' || strlen(v + 5) >= SRV_UNIX_PATH_MAX)
        return srv_bad(msg, len, "AGENTIX_LISTEN='%.64s' must be unix:<absolute path> (under %d "
                       "bytes)", v, SRV_UNIX_PATH_MAX);
    if (env_get("AGENTIX_BIND_HOST") || env_get("AGENTIX_BIND_PORT"))
        return srv_bad(msg, len, "AGENTIX_LISTEN and AGENTIX_BIND_HOST/AGENTIX_BIND_PORT are both "
                       "set; set one or the other");
    if (!(c->unix_path = strdup(v + 5)))
        return srv_bad(msg, len, "out of memory");
    return 0;
}

int srv_config_load(srv_config *c, char *msg, size_t len)
{
    memset(c, 0, sizeof *c);
    uint64_t port = DEFAULT_PORT, ping_iv = 0, ping_to = 0, max_payload = AGX_FRAME_MAX_DEFAULT;
    uint64_t grace = SRV_CANCEL_GRACE_MS, threads = SRV_WORKER_THREADS_MAX, queue = 0, held = 0, recv = 0;
    uint64_t qwait = SRV_QUEUE_WAIT_MS, boot = SRV_BOOT_TIMEOUT_MS;
    char dir[PATH_MAX];
    if (env_str("AGENTIX_BIND_HOST", 255, &c->host, msg, len) ||
        env_uint("AGENTIX_BIND_PORT", 0, 65535, &port, msg, len) ||
        env_str("AGENTIX_PORT_FILE", PATH_VAR_MAX, &c->port_file, msg, len) ||
        env_uint("AGENTIX_PING_INTERVAL_MS", 1, INT32_MAX, &ping_iv, msg, len) ||
        env_uint("AGENTIX_PING_TIMEOUT_MS", 1, INT32_MAX, &ping_to, msg, len) ||
        env_uint("AGENTIX_MAX_PAYLOAD", 1024, UINT32_MAX, &max_payload, msg, len) ||
        env_uint("AGENTIX_CANCEL_GRACE_MS", 1, 3600000, &grace, msg, len) ||
        env_uint("AGENTIX_WORKER_BOOT_MS", 1, 3600000, &boot, msg, len) ||
        env_uint("AGENTIX_WORKER_THREADS", 1, SRV_WORKER_THREADS_MAX, &threads, msg, len) ||
        env_uint("AGENTIX_QUEUE_WAIT_MS", 1, INT32_MAX, &qwait, msg, len) ||
        env_uint("AGENTIX_QUEUE_BUDGET", 1024, UINT64_MAX >> 1, &queue, msg, len) ||
        env_uint("AGENTIX_WORKER_BUDGET", 1024, UINT64_MAX >> 1, &held, msg, len) ||
        env_uint("AGENTIX_RECV_BUDGET", 1024, UINT64_MAX >> 1, &recv, msg, len) ||
        env_str("AGENTIX_WORKER_PID_FILE", PATH_VAR_MAX, &c->worker_pid_file, msg, len) ||
        load_listen(c, msg, len) || self_dir(dir, sizeof dir, msg, len) || bundle_path(dir, msg, len) ||
        load_worker(c, dir, msg, len) ||
        load_module_path(c, dir, msg, len))
        return -1;
    if (!c->host && !(c->host = strdup(DEFAULT_HOST)))
        return srv_bad(msg, len, "out of memory");
    c->port = (int)port;
    c->ping_interval_ms = (uint32_t)ping_iv;
    c->ping_timeout_ms = (uint32_t)ping_to;
    c->max_payload = (size_t)max_payload;
    c->cancel_grace_ms = (uint32_t)grace;
    c->boot_timeout_ms = (uint32_t)boot;
    c->worker_threads = (uint32_t)threads;
    c->queue_wait_ms = (uint32_t)qwait;
    /* Budgets across connections and for the worker, in largest messages (M) unless given. */
    c->queue_budget = queue ? (size_t)queue : 4 * c->max_payload;
    c->worker_budget = held ? (size_t)held : 2 * c->max_payload;
    c->recv_budget = recv ? (size_t)recv : 4 * c->max_payload;
    return 0;
}

void srv_config_free(srv_config *c)
{
    free(c->host);
    free(c->port_file);
    free(c->unix_path);
    free(c->worker_path);
    free(c->module_path);
    free(c->worker_pid_file);
    memset(c, 0, sizeof *c);
}

int srv_write_file_atomic(const char *path, const char *text)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp)
        return -1;
    snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    size_t tl = strlen(text);
    int rc = -1;
    if (fd >= 0) {
        bool ok = write(fd, text, tl) == (ssize_t)tl;
        ok = close(fd) == 0 && ok;
        if (ok && rename(tmp, path) == 0)
            rc = 0;
        else
            unlink(tmp);
    }
    int e = errno;
    free(tmp);
    errno = e;
    return rc;
}
