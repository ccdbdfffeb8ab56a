/* subprocess_backend.c — an out-of-tree deployment backend, written against an installed agentix
 * only: the plugin ABI (agentix/plugin.h) and the backend toolkit (agentix/backend/toolkit.h).
 * A sandbox is an agentix-server process on 127.0.0.1 with its own working directory.
 *
 * Flow: host → agx_load_deployment("subprocess") (manifest on $AGENTIX_PLUGIN_PATH) → create():
 * mkdir <root>/<id>, spawn the agentix-server installed beside libagentix (agx_runtime_bin_path)
 * with a fresh token (agx_random_hex), read the port it reports, wait for /health
 * (agx_health_wait_run) → {id, http://127.0.0.1:<port>, token} → the host's client connects.
 * delete() stops the process group and removes the directory; a sandbox already gone is success.
 *
 * Configuration (environment, read by construct):
 *   AGENTIX_SUBPROCESS_ROOT  parent of the sandboxes' directories (default $TMPDIR or /tmp)
 * Of the config it honours env (and, as every backend, labels and timeout_ms): the vtable says so
 * (config_fields), and agentix refuses a config setting any other field before create() runs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, posix_spawn_file_actions_addchdir_np */
#endif
#include <agentix/backend/toolkit.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NAME "subprocess"
#define PATH_MAX_LEN 4096
#define DEFAULT_TIMEOUT_MS 60000

extern char **environ;

typedef struct sp_box {
    char id[40];
    char dir[PATH_MAX_LEN];
    pid_t pid;
    struct sp_box *next;
} sp_box;

typedef struct sp_backend {
    pthread_mutex_t mu;
    sp_box *boxes; /* the sandboxes this instance created and has not deleted */
    char server[PATH_MAX_LEN];
    char root[PATH_MAX_LEN / 2];
} sp_backend;

static int sp_construct(void **self, agx_error *err)
{
    if (agx_backend_toolkit_version() < AGX_BACKEND_TOOLKIT_VERSION)
        return agx_error_set(err, AGX_ERR_ABI, NAME ": libagentix has toolkit %u, built for %u",
                             agx_backend_toolkit_version(), AGX_BACKEND_TOOLKIT_VERSION);
    sp_backend *b = calloc(1, sizeof *b);
    if (!b)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, NAME ": out of memory");
    const char *root = getenv("AGENTIX_SUBPROCESS_ROOT");
    if (!root || !*root)
        root = getenv("TMPDIR");
    snprintf(b->root, sizeof b->root, "%s/agentix-subprocess", root && *root ? root : "/tmp");
    int rc = agx_runtime_bin_path("agentix-server", b->server, sizeof b->server, err);
    if (!rc && access(b->server, X_OK) != 0)
        rc = agx_error_set(err, AGX_ERR_NOT_FOUND, NAME ": no agentix-server at %s", b->server);
    if (rc) {
        free(b);
        return rc;
    }
    pthread_mutex_init(&b->mu, NULL);
    *self = b;
    return 0;
}

static void sp_destruct(void *self)
{
    sp_backend *b = self;
    for (sp_box *x = b->boxes, *next; x; x = next) { /* sandboxes outlive the instance */
        next = x->next;
        free(x);
    }
    pthread_mutex_destroy(&b->mu);
    free(b);
}

/* ---- the process ---- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* SIGTERM to the group, then SIGKILL after 2 s; reaps the server. */
static void stop(pid_t pid)
{
    kill(-pid, SIGTERM);
    int64_t deadline = agx_deadline_ms(2000);
    while (waitpid(pid, NULL, WNOHANG) == 0) {
        if (agx_clock_ms() >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, NULL, 0);
            break;
        }
        agx_clock_sleep_ms(10);
    }
}

static int spawn_server(sp_backend *b, sp_box *x, const char *token,
                        const agx_sandbox_config *cfg, agx_error *err)
{
    char port_file[PATH_MAX_LEN + 16], log[PATH_MAX_LEN + 16];
    snprintf(port_file, sizeof port_file, "%s/server.port", x->dir);
    snprintf(log, sizeof log, "%s/server.log", x->dir);
    /* Ours first (getenv takes the first), then the config's env, then the host's. */
    const agx_kv *env = agx_sandbox_config_env_const(cfg);
    size_t n_host = 0, n_cfg = env ? agx_kv_count(env) : 0;
    while (environ[n_host])
        n_host++;
    char **envp = calloc(n_host + n_cfg + 6, sizeof *envp);
    if (!envp)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, NAME ": out of memory");
    size_t k = 0;
    int bad = asprintf(&envp[k++], "AGENTIX_BIND_HOST=127.0.0.1") < 0 ||
              asprintf(&envp[k++], "AGENTIX_BIND_PORT=0") < 0 ||
              asprintf(&envp[k++], "AGENTIX_PORT_FILE=%s", port_file) < 0 ||
              asprintf(&envp[k++], "AGENTIX_TOKEN=%s", token) < 0 ||
              asprintf(&envp[k++], "AGENTIX_FILES_ROOT=%s", x->dir) < 0;
    for (size_t i = 0; !bad && i < n_cfg; i++)
        bad = asprintf(&envp[k++], "%s=%s", agx_kv_key_at(env, i), agx_kv_value_at(env, i)) < 0;
    size_t owned = k;
    for (size_t i = 0; i < n_host; i++)
        envp[k++] = environ[i];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addchdir_np(&fa, x->dir);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID); /* its own group: stop() reaches all */
    char *argv[] = {b->server, NULL};
    pid_t pid = 0;
    int rc = bad ? ENOMEM : posix_spawn(&pid, b->server, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    for (size_t i = 0; i < owned; i++)
        free(envp[i]);
    free(envp);
    if (rc)
        return agx_error_set(err, AGX_ERR_IO, NAME ": cannot start %s: %s", b->server, strerror(rc));
    x->pid = pid;
    return 0;
}

typedef struct ready {
    const sp_box *x;
} ready;

static int server_alive(void *user, agx_error *err)
{
    const sp_box *x = ((ready *)user)->x;
    int status;
    if (waitpid(x->pid, &status, WNOHANG) == 0)
        return 0;
    return agx_error_set(err, AGX_ERR_BACKEND, NAME ": agentix-server exited before answering "
                                               "/health; see %s/server.log", x->dir);
}

/* The server binds port 0 and writes the port it got; then the toolkit waits for /health. */
static int wait_ready(const sp_box *x, int64_t deadline, int *port, agx_error *err)
{
    char path[PATH_MAX_LEN + 16], *text = NULL;
    snprintf(path, sizeof path, "%s/server.port", x->dir);
    ready r = {x};
    for (*port = 0; !*port;) {
        int rc = server_alive(&r, err);
        if (rc)
            return rc;
        if (agx_file_read(path, 16, 1, &text, NULL, NULL) == 0) {
            *port = strchr(text, '\n') ? atoi(text) : 0;
            free(text);
        }
        if (!*port && agx_clock_ms() >= deadline)
            return agx_error_set(err, AGX_ERR_TIMEOUT, NAME ": agentix-server wrote no port");
        if (!*port)
            agx_clock_sleep_ms(5);
    }
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", *port);
    agx_health_wait w = {.runtime_url = url, .what = NAME " sandbox runtime", .no_proxy = 1,
                         .deadline_ms = deadline, .alive = server_alive, .user = &r};
    return agx_health_wait_run(&w, err);
}

/* ---- the vtable ---- */

static int sp_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err)
{
    sp_backend *b = self;
    sp_box *x = calloc(1, sizeof *x);
    char token[33], hex[17];
    int rc = x ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, NAME ": out of memory");
    if (!rc)
        rc = agx_random_hex(hex, 8, err);
    if (!rc)
        rc = agx_random_hex(token, 16, err);
    if (!rc) {
        snprintf(x->id, sizeof x->id, "sp-%s", hex);
        snprintf(x->dir, sizeof x->dir, "%s/%s", b->root, x->id);
        if ((mkdir(b->root, 0700) != 0 && errno != EEXIST) || mkdir(x->dir, 0700) != 0)
            rc = agx_error_set(err, AGX_ERR_IO, NAME ": cannot create %s: %s", x->dir,
                               strerror(errno));
    }
    if (!rc)
        rc = spawn_server(b, x, token, cfg, err);
    int64_t t = agx_sandbox_config_timeout_ms(cfg);
    int port = 0;
    if (!rc)
        rc = wait_ready(x, agx_deadline_ms(t > 0 ? t : DEFAULT_TIMEOUT_MS), &port, err);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    agx_sandbox *sb = rc ? NULL : agx_sandbox_new(NAME, x->id, url, token);
    if (!rc && !sb)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, NAME ": out of memory");
    if (rc) { /* a failed create leaves nothing behind */
        if (x && x->pid > 0)
            stop(x->pid);
        if (x && x->dir[0])
            nftw(x->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(x);
        return rc;
    }
    pthread_mutex_lock(&b->mu);
    x->next = b->boxes;
    b->boxes = x;
    pthread_mutex_unlock(&b->mu);
    *out = sb;
    return 0;
}

static sp_box *take(sp_backend *b, const char *id)
{
    pthread_mutex_lock(&b->mu);
    sp_box **p = &b->boxes;
    while (*p && strcmp((*p)->id, id) != 0)
        p = &(*p)->next;
    sp_box *x = *p;
    if (x)
        *p = x->next;
    pthread_mutex_unlock(&b->mu);
    return x;
}

static int sp_delete(void *self, const char *id, agx_error *err)
{
    (void)err;
    sp_box *x = take(self, id);
    if (!x)
        return 0; /* gone already (or never ours): delete is idempotent */
    stop(x->pid);
    nftw(x->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(x);
    return 0;
}

static int sp_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    sp_backend *b = self;
    pthread_mutex_lock(&b->mu);
    sp_box *x = b->boxes;
    while (x && strcmp(x->id, id) != 0)
        x = x->next;
    int alive = x && kill(x->pid, 0) == 0;
    pthread_mutex_unlock(&b->mu);
    if (!x)
        return agx_error_set(err, AGX_ERR_NOT_FOUND, NAME ": no sandbox '%s'", id);
    *out = agx_sandbox_info_new(id, alive ? AGX_SANDBOX_RUNNING : AGX_SANDBOX_STOPPED);
    return *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, NAME ": out of memory");
}

static const agx_backend_vtable vtable = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = NAME,
    .construct = sp_construct,
    .destruct = sp_destruct,
    .create_sandbox = sp_create,
    .delete_sandbox = sp_delete,
    .get_sandbox = sp_get,
    .config_fields = AGX_CONFIG_ENV, /* the installed runtime on this host: no image, bundle… */
};

/* The entry the manifest names: the one symbol this plugin exports. */
AGX_EXPORT const agx_backend_vtable *agx_backend_subprocess(void);
const agx_backend_vtable *agx_backend_subprocess(void) { return &vtable; }
