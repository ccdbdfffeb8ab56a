/* ns_sandbox.c — the lifecycle of one ns sandbox (host → ns backend → cgroups + namespaces +
 * overlay → agentix-ns-init → agentix-server → GET /health):
 *
 *   create: resolve image and bundle → pick an id and make <root>/sandboxes/<id> → write the
 *   record (nothing runs yet) → cgroups with their limits → upper/work/rootfs/run dirs → clone the
 *   sandbox's first process (record updated with its pid) → pasta for a private network (record
 *   updated) → let it exec → wait for /health → record says "running".
 *   teardown: SIGKILL to the sandbox's PID 1 (checked against its start time) ends the PID
 *   namespace and with it every process and every mount of the sandbox; pasta is killed; the
 *   cgroups are emptied and removed; the sandbox's folder goes.
 *
 * A host killed at any instant leaves a record naming everything that exists (the record is
 * written before each thing is started, and every process starts inside the sandbox's cgroups),
 * so agx_ns_sweep can remove it once the owner is seen dead. */
#include "backends/ns/ns_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOKEN_BYTES 16
#define ID_BYTES 12

/* Is pid still the process the record names (same start time, not a zombie)? */
static int same_process(int64_t pid, uint64_t start)
{
    uint64_t ticks;
    return pid > 1 && agx_ns_start_ticks((pid_t)pid, &ticks) == 0 && ticks == start;
}

/* ---- teardown ---- */

/* SIGKILL pid if it is still the recorded process and wait until it is gone (reaped when it is
 * our child). */
static int kill_recorded(int64_t pid, uint64_t start, int own, const char *what, agx_error *err)
{
    if (pid <= 1)
        return 0;
    if (own) {
        kill((pid_t)pid, SIGKILL);
        for (int waited = 0;; waited += 2) {
            pid_t r = waitpid((pid_t)pid, NULL, WNOHANG);
            if (r == (pid_t)pid || (r < 0 && errno == ECHILD))
                return 0;
            if (waited >= AGX_NS_KILL_WAIT_MS)
                break;
            agx_clock_sleep_ms(2);
        }
    } else {
        if (!same_process(pid, start))
            return 0; /* gone already, or the pid is someone else's now */
        kill((pid_t)pid, SIGKILL);
        for (int waited = 0; waited < AGX_NS_KILL_WAIT_MS; waited += 2) {
            if (!same_process(pid, start))
                return 0;
            agx_clock_sleep_ms(2);
        }
    }
    return agx_error_set(err, AGX_ERR_TIMEOUT,
                         "%s (pid %lld) did not exit within %d ms of SIGKILL; check it with "
                         "`ps -o stat= -p %lld` and delete the sandbox again",
                         what, (long long)pid, AGX_NS_KILL_WAIT_MS, (long long)pid);
}

int agx_ns_teardown(const agx_ns *ns, agx_ns_record *r, int own, agx_error *err)
{
    int rc = kill_recorded(r->pid, r->pid_start, own, "the sandbox's init", err);
    if (!rc)
        rc = kill_recorded(r->pasta_pid, r->pasta_start, own, "pasta", err);
    if (!rc)
        rc = agx_ns_cgroup_destroy(&r->cg, err);
    if (rc)
        return rc;
    char dir[AGX_NS_PATH_MAX], netns[AGX_NS_PATH_MAX + 8];
    agx_ns_sandbox_dir(ns, r->id, dir, sizeof dir);
    snprintf(netns, sizeof netns, "%s/netns", dir);
    agx_ns_netns_unpin(netns);
    return agx_fs_rmtree(dir, err);
}

/* ---- create ---- */

typedef struct create_ctx {
    agx_ns *ns;
    const agx_sandbox_config *cfg;
    agx_ns_opts o;
    agx_ns_layers layers;
    agx_ns_bundle bundle;
    agx_ns_record r;
    char dir[256]; /* <root (≤ 60)>/sandboxes/<id> */
    char token[2 * TOKEN_BYTES + 1];
    int log_fd;
    int token_fd; /* read end of the pipe the token waits in for the server */
    char **envp;
    size_t nenv;
} create_ctx;

static int make_dir(create_ctx *c, agx_error *err)
{
    char parent[AGX_NS_PATH_MAX];
    snprintf(parent, sizeof parent, "%s/sandboxes", c->ns->root);
    int rc = agx_fs_mkdirs(parent, err);
    for (int attempt = 0; !rc && attempt < 4; attempt++) {
        char hex[2 * ID_BYTES + 1];
        if ((rc = agx_random_hex(hex, ID_BYTES, err)))
            break;
        snprintf(c->r.id, sizeof c->r.id, AGX_NS_ID_PREFIX "%s", hex);
        agx_ns_sandbox_dir(c->ns, c->r.id, c->dir, sizeof c->dir);
        if (mkdir(c->dir, 0700) == 0)
            return 0;
        if (errno != EEXIST)
            return agx_error_set(err, AGX_ERR_IO, "cannot create '%s': %s", c->dir,
                                 strerror(errno));
    }
    return rc ? rc : agx_error_set(err, AGX_ERR_CONFLICT, "no free sandbox id under '%s'", parent);
}

static int subdirs(create_ctx *c, agx_error *err)
{
    static const char *const names[] = {"upper", "work", "rootfs", "run"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char p[AGX_NS_PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", c->dir, names[i]);
        if (mkdir(p, 0755) != 0)
            return agx_error_set(err, AGX_ERR_IO, "cannot create '%s': %s", p, strerror(errno));
    }
    return 0;
}

static int env_add(create_ctx *c, const char *k, const char *v)
{
    size_t kl = strlen(k);
    for (size_t i = 0; i < c->nenv; i++)
        if (strncmp(c->envp[i], k, kl) == 0 && c->envp[i][kl] == '=') {
            free(c->envp[i]);
            c->envp[i] = NULL;
            if (asprintf(&c->envp[i], "%s=%s", k, v) < 0)
                return -1;
            return 0;
        }
    char **grown = realloc(c->envp, (c->nenv + 2) * sizeof *grown);
    if (!grown)
        return -1;
    c->envp = grown;
    if (asprintf(&c->envp[c->nenv], "%s=%s", k, v) < 0)
        return -1;
    c->envp[++c->nenv] = NULL;
    return 0;
}

static int is_reserved(const char *k)
{
    return strncmp(k, "AGENTIX_", 8) == 0 &&
           (strcmp(k, "AGENTIX_TOKEN") == 0 || strcmp(k, "AGENTIX_TOKEN_FD") == 0 ||
            strcmp(k, "AGENTIX_AUTH") == 0 || strcmp(k, "AGENTIX_LISTEN") == 0 ||
            strcmp(k, "AGENTIX_BIND_HOST") == 0 || strcmp(k, "AGENTIX_BIND_PORT") == 0 ||
            strcmp(k, AGX_EXPIRY_ENV) == 0);
}

/* The image's environment, then HOME/HOSTNAME defaults, then the config's env, then the
 * runtime's own variables. agentix-server puts the bundle's bin/ first on PATH itself, as it does
 * on every backend (docs/BUNDLES.md). */
static int build_env(create_ctx *c, agx_error *err)
{
    int bad = 0;
    for (int i = 0; !bad && c->layers.env && c->layers.env[i]; i++) {
        const char *eq = strchr(c->layers.env[i], '=');
        if (!eq)
            continue;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(eq - c->layers.env[i]), c->layers.env[i]);
        bad = env_add(c, key, eq + 1);
    }
    bad = bad || env_add(c, "HOME", "/root") || env_add(c, "HOSTNAME", c->o.hostname);
    const agx_kv *user = agx_sandbox_config_env_const(c->cfg);
    for (size_t i = 0; !bad && user && i < agx_kv_count(user); i++) {
        const char *k = agx_kv_key_at(user, i);
        if (!*k || strchr(k, '=') || is_reserved(k))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "env '%s' cannot be set: %s", k,
                                 is_reserved(k) ? "the ns backend sets it for the runtime"
                                                : "names are non-empty and contain no '='");
        bad = env_add(c, k, agx_kv_value_at(user, i));
    }
    char fd[16], expiry[24];
    snprintf(fd, sizeof fd, "%d", c->token_fd);
    bad = bad || env_add(c, "AGENTIX_TOKEN_FD", fd);
    /* The runtime ends itself (and with it init and the namespace) when its expiry passes with
     * no extension: a host killed at any instant leaves no process tree running past it. */
    int64_t expiry_ms = agx_sandbox_config_expiry_ms(c->cfg);
    snprintf(expiry, sizeof expiry, "%lld", (long long)expiry_ms);
    bad = bad || (expiry_ms > 0 && env_add(c, AGX_EXPIRY_ENV, expiry));
    if (c->o.net == AGX_NS_NET_NONE)
        bad = bad || env_add(c, "AGENTIX_LISTEN", "unix:" AGX_NS_RUN_DIR "/" AGX_NS_SOCKET_NAME);
    else
        bad = bad || env_add(c, "AGENTIX_BIND_HOST", "0.0.0.0") ||
              env_add(c, "AGENTIX_BIND_PORT", "8000");
    if (bad)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory building the sandbox's env");
    return 0;
}

static int overlay_opts(create_ctx *c, char *out, size_t n, agx_error *err)
{
    size_t o = (size_t)snprintf(out, n, "lowerdir=");
    for (int i = c->layers.n - 1; i >= 0 && o < n; i--)
        o += (size_t)snprintf(out + o, n - o, "%s%s", c->layers.dir[i], i ? ":" : "");
    if (o < n)
        o += (size_t)snprintf(out + o, n - o, ",upperdir=%s/upper,workdir=%s/work", c->dir, c->dir);
    /* The kernel takes at most a page of mount options. */
    if (o >= n || o >= 4000)
        return agx_error_set(err, AGX_ERR_LIMIT,
                             "the image has too many layers (%d) for one overlayfs mount's "
                             "options; use a shorter AGENTIX_NS_ROOT or flatten the image",
                             c->layers.n);
    return 0;
}

static int wait_ready(create_ctx *c, int64_t deadline, agx_error *err)
{
    char sock[AGX_NS_PATH_MAX];
    snprintf(sock, sizeof sock, "%s/run/" AGX_NS_SOCKET_NAME, c->dir);
    for (int64_t step = 1;; step = step * 2 > 50 ? 50 : step * 2) {
        int status;
        if (waitpid((pid_t)c->r.pid, &status, WNOHANG) == (pid_t)c->r.pid) {
            c->r.pid = 0; /* reaped: nothing to kill */
            return agx_error_set(err, AGX_ERR_BACKEND,
                                 "the sandbox's runtime exited (%s %d) before answering /health; "
                                 "its log is in the error detail",
                                 WIFEXITED(status) ? "status" : "signal",
                                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        }
        int64_t left = deadline - agx_clock_ms();
        if (left > 0 && agx_ns_health_ok(c->o.net == AGX_NS_NET_NONE ? sock : NULL, c->r.port, left))
            return 0;
        left = deadline - agx_clock_ms();
        if (left <= 0) {
            agx_error_set(err, AGX_ERR_TIMEOUT,
                          "the sandbox's runtime did not answer GET /health within %lld ms; its "
                          "log is in the error detail (raise the config's timeout on a busy "
                          "machine)", (long long)c->o.timeout_ms);
            if (err)
                err->retriable = 1;
            return AGX_ERR_TIMEOUT;
        }
        agx_clock_sleep_ms((int)(step < left ? step : left));
    }
}

/* The token goes to the server through a pipe (AGENTIX_TOKEN_FD), never the environment: no
 * /proc/<pid>/environ in the sandbox ever holds it, and once the server has read it to EOF the
 * pipe is empty. It is written and the write end closed before the clone, so the server's read
 * ends at EOF and no other process holds the write end. */
static int token_pipe(create_ctx *c, agx_error *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return agx_error_set(err, AGX_ERR_IO, "pipe: %s", strerror(errno));
    size_t n = strlen(c->token);
    ssize_t w = write(p[1], c->token, n);
    close(p[1]);
    if (w != (ssize_t)n) {
        close(p[0]);
        return agx_error_set(err, AGX_ERR_IO, "cannot pass the token through a pipe");
    }
    /* A host run with its standard streams closed may get 0..2 here, which the sandbox's stdio
     * takes over: keep the token's number above them. */
    c->token_fd = p[0] > 2 ? p[0] : fcntl(p[0], F_DUPFD_CLOEXEC, 3);
    if (p[0] <= 2)
        close(p[0]);
    if (c->token_fd < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot move the token's pipe: %s", strerror(errno));
    return 0;
}

static int start(create_ctx *c, agx_error *err)
{
    agx_ns *ns = c->ns;
    int64_t deadline = agx_clock_ms() + c->o.timeout_ms;
    int rc = agx_ns_cgroup_create(ns->cg, &c->r.cg, &c->o, err);
    if (!rc)
        rc = subdirs(c, err);
    char opts[4096], rootfs[AGX_NS_PATH_MAX], run[AGX_NS_PATH_MAX], log[AGX_NS_PATH_MAX];
    snprintf(rootfs, sizeof rootfs, "%s/rootfs", c->dir);
    snprintf(run, sizeof run, "%s/run", c->dir);
    snprintf(log, sizeof log, "%s/server.log", c->dir);
    if (!rc)
        rc = overlay_opts(c, opts, sizeof opts, err);
    if (!rc)
        rc = token_pipe(c, err);
    if (!rc)
        rc = build_env(c, err);
    if (!rc && (c->log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot create '%s': %s", log, strerror(errno));
    if (rc)
        return rc;
    char server[300];
    snprintf(server, sizeof server, "%s/bin/agentix-server", c->bundle.prefix);
    char *argv[] = {"agentix-ns-init", server, NULL};
    agx_ns_launch l = {.ns = ns, .rootfs = rootfs, .overlay_opts = opts,
                       .bundle_dir = c->bundle.dir, .bundle_prefix = c->bundle.prefix,
                       .run_dir = run, .hostname = c->o.hostname, .cg = &c->r.cg,
                       .log_fd = c->log_fd, .token_fd = c->token_fd, .argv = argv, .envp = c->envp};
    agx_ns_child child;
    rc = agx_ns_launch_start(&l, &child, err);
    if (child.pid > 0) {
        c->r.pid = child.pid;
        c->r.pid_start = child.start_ticks;
        int wrc = agx_ns_record_write(ns, &c->r, rc ? NULL : err);
        rc = rc ? rc : wrc;
    }
    if (!rc && c->o.net == AGX_NS_NET_PRIVATE) {
        char plog[AGX_NS_PATH_MAX], netns[AGX_NS_PATH_MAX];
        snprintf(plog, sizeof plog, "%s/pasta.log", c->dir);
        snprintf(netns, sizeof netns, "%s/netns", c->dir);
        pid_t p = 0;
        rc = agx_ns_netns_pin(child.pid, netns, err);
        if (!rc)
            rc = agx_ns_pasta_start(ns, netns, c->r.port, c->o.host_loopback, &c->r.cg, plog, &p,
                                err);
        if (p > 0) {
            c->r.pasta_pid = p;
            agx_ns_start_ticks(p, &c->r.pasta_start);
            int wrc = agx_ns_record_write(ns, &c->r, rc ? NULL : err);
            rc = rc ? rc : wrc;
        }
    }
    if (!rc)
        rc = agx_ns_launch_release(ns, &child, deadline, err);
    agx_ns_child_close(&child);
    if (!rc)
        rc = wait_ready(c, deadline, err);
    if (!rc) {
        snprintf(c->r.state, sizeof c->r.state, "running");
        rc = agx_ns_record_write(ns, &c->r, err);
    }
    return rc;
}

static int prepare(create_ctx *c, agx_error *err)
{
    const char *image = agx_sandbox_config_image(c->cfg);
    const char *bundle = agx_sandbox_config_bundle(c->cfg);
    if (!image || !*image)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "the ns backend needs a task image (agx_sandbox_config_set_image): "
                             "a Docker image name, oci:/path/to/layout[:ref] or dir:/path/to/rootfs");
    if (!bundle || !*bundle)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "the ns backend needs a bundle (agx_sandbox_config_set_bundle): the "
                             "folder or tarball `agentix build --output` wrote");
    int rc = agx_ns_opts_read(c->ns, c->cfg, &c->o, err);
    if (!rc)
        rc = agx_labels_check(agx_sandbox_config_labels_const(c->cfg), "ns", err);
    if (!rc)
        rc = agx_ns_bundle_resolve(c->ns, bundle, &c->bundle, err);
    if (!rc)
        rc = agx_ns_image_resolve(c->ns, image, &c->layers, err);
    if (!rc)
        rc = agx_random_hex(c->token, TOKEN_BYTES, err);
    return rc;
}

static int init_record(create_ctx *c, agx_error *err)
{
    agx_ns_record *r = &c->r;
    const agx_kv *labels = agx_sandbox_config_labels_const(c->cfg);
    snprintf(r->state, sizeof r->state, "creating");
    r->net = c->o.net;
    r->owner_pid = getpid();
    r->owner_start = (uint64_t)c->ns->owner_start;
    r->created_at = agx_clock_wall_ms();
    if (!(r->labels = labels ? agx_kv_copy(labels) : agx_kv_new()))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory copying labels");
    if (!c->o.hostname[0]) {
        size_t n = strnlen(r->id, sizeof c->o.hostname - 1);
        memcpy(c->o.hostname, r->id, n);
        c->o.hostname[n] = '\0';
    }
    agx_ns_cgroup_plan(c->ns->cg, r->id, &r->cg);
    if (c->o.net == AGX_NS_NET_PRIVATE) {
        int rc = agx_ns_free_port(&r->port, err);
        if (rc)
            return rc;
    }
    return agx_ns_record_write(c->ns, r, err);
}

/* The last lines of server.log into err->detail. */
static void log_tail(const char *dir, agx_error *err)
{
    char log[AGX_NS_PATH_MAX];
    snprintf(log, sizeof log, "%s/server.log", dir);
    agx_fs_log_tail(log, err);
}

int agx_ns_create(agx_ns *ns, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err)
{
    *out = NULL;
    create_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating an ns sandbox");
    c->ns = ns;
    c->cfg = cfg;
    c->log_fd = -1;
    c->token_fd = -1;
    int rc = prepare(c, err), made = 0;
    if (!rc && !(rc = make_dir(c, err))) {
        made = 1;
        rc = init_record(c, err);
    }
    if (!rc)
        rc = start(c, err);
    char url[512];
    if (!rc && agx_ns_runtime_url(ns, &c->r, url, sizeof url) != 0)
        rc = agx_error_set(err, AGX_ERR_LIMIT, "the sandbox's socket path is too long for a URL");
    if (!rc && !(*out = agx_sandbox_new("ns", c->r.id, url, c->token)))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating an ns sandbox");
    if (c->log_fd >= 0)
        close(c->log_fd);
    if (c->token_fd >= 0)
        close(c->token_fd);
    if (rc && made) {
        log_tail(c->dir, err);
        agx_ns_teardown(ns, &c->r, 1, NULL);
    }
    if (!rc)
        rc = agx_ns_entry_add(ns, &c->r, err);
    if (rc && *out) {
        agx_ns_teardown(ns, &c->r, 1, NULL);
        agx_sandbox_free(*out);
        *out = NULL;
    }
    for (size_t i = 0; i < c->nenv; i++)
        free(c->envp[i]);
    free(c->envp);
    agx_ns_layers_clear(&c->layers);
    agx_ns_record_clear(&c->r);
    free(c);
    return rc;
}

/* ---- the sweep ---- */

static int owner_alive(const agx_ns_record *r)
{
    return same_process(r->owner_pid, r->owner_start);
}

static int dir_age_ms(const char *dir, int64_t *age)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return -1;
    *age = agx_clock_wall_ms() - ((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
    return 0;
}

int agx_ns_sweep(agx_ns *ns, int *removed, agx_error *err)
{
    *removed = 0;
    char parent[AGX_NS_PATH_MAX];
    snprintf(parent, sizeof parent, "%s/sandboxes", ns->root);
    DIR *d = opendir(parent);
    if (!d)
        return errno == ENOENT ? 0
                               : agx_error_set(err, AGX_ERR_IO, "cannot read '%s': %s", parent,
                                               strerror(errno));
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, AGX_NS_ID_PREFIX, strlen(AGX_NS_ID_PREFIX)) != 0 ||
            !agx_ns_id_valid(de->d_name))
            continue;
        agx_ns_record r;
        char dir[AGX_NS_PATH_MAX];
        agx_ns_sandbox_dir(ns, de->d_name, dir, sizeof dir);
        int rrc = agx_ns_record_read(ns, de->d_name, &r, NULL);
        if (rrc == AGX_ERR_NOT_FOUND) {
            /* Killed between mkdir and the first record: nothing ran. Young ones may still be
             * getting their record. */
            int64_t age;
            char pin[AGX_NS_PATH_MAX + 8];
            snprintf(pin, sizeof pin, "%s/netns", dir);
            if (dir_age_ms(dir, &age) == 0 && age >= ns->stale_dir_ms) {
                agx_ns_netns_unpin(pin);
                if (agx_fs_rmtree(dir, NULL) == 0)
                    (*removed)++;
            }
            continue;
        }
        if (rrc != 0 || owner_alive(&r) || agx_ns_entry_owned(ns, r.id)) {
            agx_ns_record_clear(&r);
            continue;
        }
        int trc = agx_ns_teardown(ns, &r, 0, rc ? NULL : err);
        if (trc == 0)
            (*removed)++;
        else if (!rc)
            rc = trc;
        agx_ns_record_clear(&r);
    }
    closedir(d);
    agx_ns_cache_sweep_tmp(ns);
    return rc;
}
