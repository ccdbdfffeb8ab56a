/* local.c — the `local` backend, the embedded default: a sandbox is an agentix-server child
 * process on 127.0.0.1 with its own working directory, no containers involved.
 *
 * Flow: host → agx_load_deployment("local") → this vtable → create(): <root>/<id>/, spawn the
 * server (local_spawn.c), wait for /health → client.h connects to http://127.0.0.1:<port>.
 * Sandboxes this process created are kept in a table (their processes are our children); each
 * one's <workdir>/sandbox.json lets get/list/delete in other processes find it too.
 *
 * Configuration (environment, read by construct):
 *   AGENTIX_LOCAL_SERVER  agentix-server to run (default: <libdir>/agentix/bin/agentix-server)
 *   AGENTIX_LOCAL_ROOT    parent of the sandboxes' working dirs (default $TMPDIR/agentix-local) */
#include "backends/local/local_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentix/backend/runtime.h"
#include "agentix/backend/table.h"
#include "agentix/clock.h"
#include "agentix/plugin.h"

#define DEFAULT_TIMEOUT_MS 120000
#define ID_RANDOM_BYTES 12

typedef struct local_entry {
    agx_local_record rec;
} local_entry;

typedef struct agx_local {
    agx_sandbox_table *table; /* sandboxes this instance created and has not deleted */
    char server[AGX_LOCAL_PATH_MAX];
    char root[AGX_LOCAL_PATH_MAX / 2]; /* leaves room for /<id>/<file> below it */
} agx_local;

/* ---- construct / destruct ---- */

static int find_server(char *out, size_t n, agx_error *err)
{
    const char *env = getenv("AGENTIX_LOCAL_SERVER");
    if (env) {
        char real[PATH_MAX];
        struct stat st;
        if (!*env || !realpath(env, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode) ||
            access(real, X_OK) != 0 || strlen(real) >= n)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "AGENTIX_LOCAL_SERVER='%s' is not an executable file; point it at "
                                 "agentix-server, or unset it to use the one installed beside "
                                 "libagentix", env);
        memcpy(out, real, strlen(real) + 1);
        return 0;
    }
    if (agx_runtime_bin_path("agentix-server", out, n, NULL) != 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "cannot locate libagentix's folder to find agentix-server; set "
                             "AGENTIX_LOCAL_SERVER to its path");
    if (access(out, X_OK) != 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "agentix-server is not at '%s' (%s); install the runtime beside "
                             "libagentix or set AGENTIX_LOCAL_SERVER to its path",
                             out, strerror(errno));
    return 0;
}

static int find_root(char *out, size_t n, agx_error *err)
{
    const char *env = getenv("AGENTIX_LOCAL_ROOT");
    if (env) {
        /* Room for "/<id>/sandbox.json.tmp" below it. */
        if (env[0] != '/' || strlen(env) + AGX_LOCAL_ID_MAX + 32 >= n)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "AGENTIX_LOCAL_ROOT='%s' must be an absolute path shorter than "
                                 "%zu bytes", env, n - AGX_LOCAL_ID_MAX - 32);
        snprintf(out, n, "%s", env);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    if (!tmp || tmp[0] != '/' || strlen(tmp) + AGX_LOCAL_ID_MAX + 64 >= n)
        tmp = "/tmp";
    snprintf(out, n, "%s/agentix-local", tmp);
    return 0;
}

static void entry_free(void *item)
{
    local_entry *e = item;
    agx_local_record_clear(&e->rec);
    free(e);
}

static int local_construct(void **self, agx_error *err)
{
    agx_local *l = calloc(1, sizeof *l);
    if (!l || !(l->table = agx_sandbox_table_new(entry_free))) {
        free(l);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory constructing the local backend");
    }
    int rc = find_server(l->server, sizeof l->server, err);
    if (!rc)
        rc = find_root(l->root, sizeof l->root, err);
    if (rc) {
        agx_sandbox_table_free(l->table);
        free(l);
        return rc;
    }
    *self = l;
    return 0;
}

/* Sandboxes outlive the instance: sessions delete them, and a sweeper finds leaks on disk. */
static void local_destruct(void *self)
{
    agx_local *l = self;
    if (!l)
        return;
    agx_sandbox_table_free(l->table);
    free(l);
}

static void workdir_of(const agx_local *l, const char *id, char *out, size_t n)
{
    snprintf(out, n, "%s/%.*s", l->root, AGX_LOCAL_ID_MAX - 1, id);
}

static int check_id(const char *id, agx_error *err)
{
    if (!id || !agx_local_id_valid(id))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "'%s' is not a local sandbox id (letters, digits, '-' and '_')",
                             id ? id : "(null)");
    return 0;
}

/* ---- create ---- */

/* A fresh id whose folder does not exist, and its staging folder (local_stage.c); ids are random,
 * a clash only means drawing again. */
static int make_workdir(agx_local *l, agx_local_record *r, char *dir, char *stage, size_t n,
                        agx_error *err)
{
    int rc = agx_fs_mkdirs(l->root, err);
    for (int attempt = 0; !rc && attempt < 4; attempt++) {
        char hex[2 * ID_RANDOM_BYTES + 1];
        if ((rc = agx_random_hex(hex, ID_RANDOM_BYTES, err)))
            break;
        snprintf(r->id, sizeof r->id, "local-%s", hex);
        workdir_of(l, r->id, dir, n);
        if (access(dir, F_OK) == 0)
            continue;
        return agx_local_stage_make(l->root, r->id, stage, n, err);
    }
    return rc ? rc : agx_error_set(err, AGX_ERR_CONFLICT, "no free sandbox id under '%s'", l->root);
}

/* Records the sandbox in its staging folder, moves that into place as dir and runs the server
 * there; on failure stops it (the caller removes stage or dir, whichever exists). */
static int start_server(agx_local *l, const agx_sandbox_config *cfg, const char *dir,
                        const char *stage, const char *token, agx_local_record *r, agx_error *err)
{
    agx_local_spawn_args a = {
        .server = l->server,
        .id = r->id,
        .workdir = dir,
        .token = token,
        .env = cfg ? agx_sandbox_config_env_const(cfg) : NULL,
        .timeout_ms = cfg ? agx_sandbox_config_timeout_ms(cfg) : DEFAULT_TIMEOUT_MS,
        .expiry_ms = cfg ? agx_sandbox_config_expiry_ms(cfg) : 0,
    };
    const agx_kv *labels = cfg ? agx_sandbox_config_labels_const(cfg) : NULL;
    int rc = agx_labels_check(labels, "local", err);
    if (rc)
        return rc;
    r->labels = labels ? agx_kv_copy(labels) : agx_kv_new();
    r->owner_pid = getpid();
    r->created_at = agx_clock_wall_ms();
    if (!r->labels)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory copying labels");
    /* The ownership record is on disk before the folder is in place and before anything runs
     * (pid 0: not started), then again with the pid before the wait: a host killed at any instant
     * leaves a folder gc can judge, and a server that ends itself at its expiry. */
    rc = agx_local_record_write(stage, r, err);
    if (!rc)
        rc = agx_local_stage_commit(stage, dir, err);
    if (!rc)
        rc = agx_local_spawn(&a, &r->proc, err);
    if (rc)
        return rc;
    rc = agx_local_record_write(dir, r, err);
    if (!rc)
        rc = agx_local_wait_ready(&a, &r->proc, &r->port, err);
    if (!rc)
        rc = agx_local_record_write(dir, r, err);
    if (rc)
        agx_local_proc_stop(&r->proc, r->id, 0, NULL);
    return rc;
}

static int local_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out,
                        agx_error *err)
{
    agx_local *l = self;
    *out = NULL;
    local_entry *e = calloc(1, sizeof *e);
    if (!e)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating a local sandbox");
    char dir[AGX_LOCAL_PATH_MAX], stage[AGX_LOCAL_PATH_MAX], token[33], url[64];
    int rc = agx_random_hex(token, 16, err);
    if (!rc)
        rc = make_workdir(l, &e->rec, dir, stage, sizeof dir, err);
    if (rc) {
        free(e);
        return rc;
    }
    rc = start_server(l, cfg, dir, stage, token, &e->rec, err);
    if (!rc) {
        snprintf(url, sizeof url, "http://127.0.0.1:%d", e->rec.port);
        *out = agx_sandbox_new("local", e->rec.id, url, token);
        if (!*out)
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory creating a local sandbox");
        else if ((rc = agx_sandbox_table_add(l->table, e->rec.id, e, err)) != 0) {
            agx_sandbox_free(*out);
            *out = NULL;
        }
        if (rc)
            agx_local_proc_stop(&e->rec.proc, e->rec.id, 0, NULL);
    }
    if (rc) {
        if (access(stage, F_OK) == 0)
            agx_fs_rmtree(stage, NULL);
        else
            agx_fs_rmtree(dir, NULL);
        agx_local_record_clear(&e->rec);
        free(e);
        return rc;
    }
    return 0;
}

/* ---- delete ---- */

static int local_delete(void *self, const char *id, agx_error *err)
{
    agx_local *l = self;
    int rc = check_id(id, err);
    if (rc)
        return rc;
    char dir[AGX_LOCAL_PATH_MAX];
    workdir_of(l, id, dir, sizeof dir);
    local_entry *e = agx_sandbox_table_take(l->table, id);
    if (e) {
        rc = agx_local_proc_stop(&e->rec.proc, id, AGX_LOCAL_STOP_GRACE_MS, err);
        if (rc) {
            agx_sandbox_table_add(l->table, id, e, NULL); /* still ours: a later delete retries */
            return rc;
        }
        entry_free(e);
    } else {
        /* Another process's sandbox, or one already gone. The record says which pid serves it,
         * but sandbox code can write it: the pid is used only if the live process checks out,
         * and the real server is found by its command line whatever the record says. */
        agx_local_record r;
        int read = agx_local_record_read(dir, &r, NULL);
        if (read != 0)
            memset(&r, 0, sizeof r); /* missing or damaged: nothing to trust in it */
        rc = agx_local_proc_stop(&r.proc, id, AGX_LOCAL_STOP_GRACE_MS, err);
        agx_local_record_clear(&r);
        if (rc)
            return rc;
    }
    return agx_fs_rmtree(dir, err);
}

/* ---- get / list ---- */

/* State from the process and the folder: a dead server with its folder left is "stopped" (delete
 * it to clean up); without the folder it is "gone". */
static agx_sandbox_info *info_from_record(agx_local_record *r, int dir_exists, agx_error *err)
{
    /* A record read from disk may name any pid: running means that pid is this sandbox's server. */
    int running = r->proc.is_child ? agx_local_proc_running(&r->proc)
                                   : agx_local_proc_is_server(r->proc.pid, r->proc.start_ticks, r->id);
    agx_sandbox_state st = running ? (r->port ? AGX_SANDBOX_RUNNING : AGX_SANDBOX_CREATING)
                                   : (dir_exists ? AGX_SANDBOX_STOPPED : AGX_SANDBOX_GONE);
    agx_sandbox_info *info = agx_sandbox_info_new(r->id, st);
    char buf[160];
    int bad = !info;
    if (info && r->port) {
        snprintf(buf, sizeof buf, "http://127.0.0.1:%d", r->port);
        bad |= agx_sandbox_info_set_runtime_url(info, buf) != 0;
    }
    if (info && !running) {
        char how[96] = "is not running";
        if (r->proc.is_child && r->proc.reaped)
            agx_local_proc_describe_exit(r->proc.exit_status, how, sizeof how);
        snprintf(buf, sizeof buf, "agentix-server (pid %d) %s", (int)r->proc.pid, how);
        bad |= agx_sandbox_info_set_detail(info, buf) != 0;
    }
    if (info)
        agx_sandbox_info_set_created_at(info, r->created_at);
    /* A running server's expiry follows its extensions, which the record does not see; a stopped
     * one can no longer be extended: its label is the last word. */
    if (info && !running)
        agx_sandbox_info_set_expires_at(info, agx_label_unix_ms(agx_kv_get(r->labels, AGX_LABEL_EXPIRES)));
    agx_kv *labels = info ? agx_sandbox_info_labels(info) : NULL;
    for (size_t i = 0; labels && r->labels && i < agx_kv_count(r->labels); i++)
        bad |= agx_kv_set(labels, agx_kv_key_at(r->labels, i), agx_kv_value_at(r->labels, i)) != 0;
    if (bad) {
        agx_sandbox_info_free(info);
        agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory describing sandbox '%s'", r->id);
        return NULL;
    }
    return info;
}

static int dir_exists(const char *dir)
{
    struct stat st;
    return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode);
}

typedef struct describe_ctx {
    const agx_kv *filter;
    int exists, match;
    agx_sandbox_info *info;
    agx_error *err;
} describe_ctx;

/* Under the table's lock: the record stays ours while it is read. */
static void describe_own(void *item, void *ctx)
{
    local_entry *e = item;
    describe_ctx *d = ctx;
    d->match = agx_labels_match(e->rec.labels, d->filter);
    if (d->match)
        d->info = info_from_record(&e->rec, d->exists, d->err);
}

/* Looks up one sandbox: ours from the table, others from disk. *out NULL with 0 means no record.
 * filter (may be NULL) skips sandboxes whose labels do not match. */
static int describe(agx_local *l, const char *id, const agx_kv *filter, agx_sandbox_info **out,
                    agx_error *err)
{
    char dir[AGX_LOCAL_PATH_MAX];
    workdir_of(l, id, dir, sizeof dir);
    *out = NULL;
    describe_ctx d = {.filter = filter, .exists = dir_exists(dir), .err = err};
    if (agx_sandbox_table_visit(l->table, id, describe_own, &d)) {
        *out = d.info;
        return d.match && !d.info ? AGX_ERR_NO_MEMORY : 0;
    }
    agx_local_record r;
    int rc = agx_local_record_read(dir, &r, err);
    if (rc == AGX_ERR_NOT_FOUND)
        return 0;
    if (rc)
        return rc;
    if (agx_labels_match(r.labels, filter)) {
        *out = info_from_record(&r, 1, err);
        rc = *out ? 0 : AGX_ERR_NO_MEMORY;
    }
    agx_local_record_clear(&r);
    return rc;
}

static int local_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    *out = NULL;
    int rc = check_id(id, err);
    if (!rc)
        rc = describe(self, id, NULL, out, err);
    if (rc || *out)
        return rc;
    *out = agx_sandbox_info_new(id, AGX_SANDBOX_GONE);
    if (!*out || agx_sandbox_info_set_detail(*out, "no such local sandbox (deleted, or never "
                                                   "created under this AGENTIX_LOCAL_ROOT)")) {
        agx_sandbox_info_free(*out);
        *out = NULL;
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory describing sandbox '%s'", id);
    }
    return 0;
}

static int local_list(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err)
{
    agx_local *l = self;
    *out = NULL;
    agx_sandbox_list *list = agx_sandbox_list_new();
    if (!list)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing local sandboxes");
    DIR *d = opendir(l->root);
    if (!d && errno != ENOENT) {
        agx_sandbox_list_free(list);
        return agx_error_set(err, AGX_ERR_IO, "cannot read AGENTIX_LOCAL_ROOT '%s': %s", l->root,
                             strerror(errno));
    }
    agx_local_stage_sweep(l->root); /* what hosts killed mid-create left (local_stage.c) */
    int rc = 0;
    struct dirent *de;
    while (d && rc == 0 && (de = readdir(d)) != NULL) {
        if (!agx_local_id_valid(de->d_name))
            continue;
        agx_sandbox_info *info = NULL;
        agx_error ignored;
        /* A record that cannot be read (half-removed, or damaged by the sandbox) is skipped: list
         * reports what it can tell; delete of that id still reports the problem. */
        if (describe(l, de->d_name, labels, &info, &ignored) == AGX_ERR_NO_MEMORY)
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing local sandboxes");
        else if (info && agx_sandbox_list_push(list, info) != 0)
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing local sandboxes");
    }
    if (d)
        closedir(d);
    if (rc) {
        agx_sandbox_list_free(list);
        return rc;
    }
    *out = list;
    return 0;
}

static const agx_backend_vtable local_vtable = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "local",
    .construct = local_construct,
    .destruct = local_destruct,
    .create_sandbox = local_create,
    .delete_sandbox = local_delete,
    .get_sandbox = local_get,
    .list_sandboxes = local_list,
    /* A host process: no image, bundle, platform or resources to apply (plugin.h). */
    .config_fields = AGX_CONFIG_ENV,
};

AGX_EXPORT const agx_backend_vtable *agx_backend_local(void);
const agx_backend_vtable *agx_backend_local(void)
{
    return &local_vtable;
}
