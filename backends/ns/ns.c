/* ns.c — the `ns` backend: daemonless isolated sandboxes. Each sandbox is a process tree in its
 * own namespaces with an overlayfs root made from the task image's layers (cached once for every
 * sandbox and host process), the bundle mounted read-only, agentix-server listening on a Unix
 * socket (network none, the default) or on port 8000 of a private network published on the host's
 * 127.0.0.1 (network private). See backends/ns/README.md.
 *
 * Flow: host → agx_load_deployment("ns") → this vtable → create (ns_sandbox.c) → runtime_url
 * http+unix://… or http://127.0.0.1:<port> → client.h. Sandboxes this instance created are kept
 * in a table (their first processes are our children); the on-disk record in the state dir lets
 * get/list/delete in other processes, and the stale sweep, find every sandbox. */
#include "backends/ns/ns_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#define EXTEND_MS 10000 /* one extension's bound: the renewer tries again well before the expiry */

static void record_free(void *item)
{
    agx_ns_record_clear(item);
    free(item);
}

static int ns_construct(void **self, agx_error *err)
{
    agx_ns *ns = calloc(1, sizeof *ns);
    if (!ns || !(ns->table = agx_sandbox_table_new(record_free))) {
        free(ns);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory constructing the ns backend");
    }
    uint64_t ticks = 0;
    int rc = agx_ns_config_load(ns, err);
    if (!rc)
        rc = agx_ns_cgroup_detect(&ns->cg, err);
    if (!rc)
        rc = agx_ns_seccomp_build(&ns->seccomp, err);
    if (!rc && agx_ns_start_ticks(getpid(), &ticks) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot read this process's start time from /proc");
    if (rc) {
        agx_ns_seccomp_free(&ns->seccomp);
        agx_ns_cgroup_info_free(ns->cg);
        agx_sandbox_table_free(ns->table);
        free(ns);
        return rc;
    }
    ns->owner_start = (int64_t)ticks;
    pthread_mutex_init(&ns->mu, NULL);
    *self = ns;
    return 0;
}

/* Sandboxes outlive the instance: sessions delete them, and the sweep finds leaks on disk. */
static void ns_destruct(void *self)
{
    agx_ns *ns = self;
    if (!ns)
        return;
    agx_sandbox_table_free(ns->table);
    agx_ns_image_memo_free(ns);
    agx_ns_seccomp_free(&ns->seccomp);
    agx_ns_cgroup_info_free(ns->cg);
    pthread_mutex_destroy(&ns->mu);
    free(ns);
}

/* ---- the table ---- */

int agx_ns_entry_add(agx_ns *ns, const agx_ns_record *r, agx_error *err)
{
    agx_ns_record *copy = malloc(sizeof *copy);
    agx_kv *labels = agx_kv_copy(r->labels);
    if (!copy || !labels) {
        free(copy);
        agx_kv_free(labels);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory recording sandbox '%s'", r->id);
    }
    *copy = *r;
    copy->labels = labels;
    int rc = agx_sandbox_table_add(ns->table, copy->id, copy, err);
    if (rc)
        record_free(copy);
    return rc;
}

int agx_ns_entry_owned(agx_ns *ns, const char *id)
{
    return agx_sandbox_table_visit(ns->table, id, NULL, NULL);
}

static int check_id(const char *id, agx_error *err)
{
    if (!id || strncmp(id, AGX_NS_ID_PREFIX, strlen(AGX_NS_ID_PREFIX)) != 0 ||
        !agx_ns_id_valid(id))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "'%s' is not an ns sandbox id",
                             id ? id : "(null)");
    return 0;
}

/* ---- vtable ---- */

static int ns_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err)
{
    return agx_ns_create(self, cfg, out, err);
}

static int ns_delete(void *self, const char *id, agx_error *err)
{
    agx_ns *ns = self;
    int rc = check_id(id, err);
    if (rc)
        return rc;
    agx_ns_record *mine = agx_sandbox_table_take(ns->table, id);
    if (mine) {
        rc = agx_ns_teardown(ns, mine, 1, err);
        if (rc && agx_sandbox_table_add(ns->table, id, mine, NULL) == 0)
            return rc; /* still ours: a later delete retries */
        record_free(mine);
        return rc;
    }
    agx_ns_record r;
    rc = agx_ns_record_read(ns, id, &r, err);
    if (rc == AGX_ERR_NOT_FOUND) {
        char dir[AGX_NS_PATH_MAX];
        agx_ns_sandbox_dir(ns, id, dir, sizeof dir);
        return agx_fs_rmtree(dir, err); /* nothing ran without a record */
    }
    if (rc)
        return agx_error_prefix(err, "cannot tell what runs for ns sandbox '%s'", id), rc;
    rc = agx_ns_teardown(ns, &r, 0, err);
    agx_ns_record_clear(&r);
    return rc;
}

static int alive(const agx_ns_record *r)
{
    uint64_t ticks;
    return r->pid > 1 && agx_ns_start_ticks((pid_t)r->pid, &ticks) == 0 &&
           ticks == r->pid_start;
}

static agx_sandbox_info *describe(const agx_ns *ns, const agx_ns_record *r, agx_error *err)
{
    int running = alive(r);
    agx_sandbox_state st = running ? (strcmp(r->state, "running") == 0 ? AGX_SANDBOX_RUNNING
                                                                       : AGX_SANDBOX_CREATING)
                                   : AGX_SANDBOX_STOPPED;
    agx_sandbox_info *info = agx_sandbox_info_new(r->id, st);
    char buf[512];
    int bad = !info;
    if (info && running && agx_ns_runtime_url(ns, r, buf, sizeof buf) == 0)
        bad |= agx_sandbox_info_set_runtime_url(info, buf) != 0;
    long oom = agx_ns_cgroup_oom_kills(&r->cg);
    if (info && (!running || oom)) {
        snprintf(buf, sizeof buf, "%s%s%ld OOM kill(s) in the sandbox's memory cgroup",
                 running ? "" : "the sandbox's init is not running (delete it); ",
                 oom ? "" : "", oom);
        bad |= agx_sandbox_info_set_detail(info, buf) != 0;
    }
    if (info) { /* agentix.expires is kept current by ns_extend */
        agx_sandbox_info_set_created_at(info, r->created_at);
        agx_sandbox_info_set_expires_at(info, agx_label_unix_ms(agx_kv_get(r->labels,
                                                                           AGX_LABEL_EXPIRES)));
    }
    agx_kv *labels = info ? agx_sandbox_info_labels(info) : NULL;
    for (size_t i = 0; labels && r->labels && i < agx_kv_count(r->labels); i++)
        bad |= agx_kv_set(labels, agx_kv_key_at(r->labels, i), agx_kv_value_at(r->labels, i)) != 0;
    if (labels && oom) {
        snprintf(buf, sizeof buf, "%ld", oom);
        bad |= agx_kv_set(labels, "agentix.ns.oom_kills", buf) != 0;
    }
    if (bad) {
        agx_sandbox_info_free(info);
        agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory describing sandbox '%s'", r->id);
        return NULL;
    }
    return info;
}

static int ns_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    agx_ns *ns = self;
    *out = NULL;
    int rc = check_id(id, err);
    if (rc)
        return rc;
    agx_ns_record r;
    rc = agx_ns_record_read(ns, id, &r, err);
    if (rc == AGX_ERR_NOT_FOUND) {
        *out = agx_sandbox_info_new(id, AGX_SANDBOX_GONE);
        if (!*out || agx_sandbox_info_set_detail(*out, "no such ns sandbox (deleted, or never "
                                                       "created under this AGENTIX_NS_ROOT)")) {
            agx_sandbox_info_free(*out);
            *out = NULL;
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory describing '%s'", id);
        }
        return 0;
    }
    if (rc)
        return rc;
    *out = describe(ns, &r, err);
    agx_ns_record_clear(&r);
    return *out ? 0 : AGX_ERR_NO_MEMORY;
}

static int ns_list(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err)
{
    agx_ns *ns = self;
    *out = NULL;
    agx_sandbox_list *list = agx_sandbox_list_new();
    char parent[AGX_NS_PATH_MAX];
    snprintf(parent, sizeof parent, "%s/sandboxes", ns->root);
    DIR *d = list ? opendir(parent) : NULL;
    if (!list || (!d && errno != ENOENT)) {
        agx_sandbox_list_free(list);
        return agx_error_set(err, list ? AGX_ERR_IO : AGX_ERR_NO_MEMORY,
                             "cannot list ns sandboxes in '%s': %s", parent, strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    while (d && !rc && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, AGX_NS_ID_PREFIX, 3) != 0 || !agx_ns_id_valid(de->d_name))
            continue;
        agx_ns_record r;
        if (agx_ns_record_read(ns, de->d_name, &r, NULL) != 0)
            continue; /* being created or removed right now */
        if (agx_labels_match(r.labels, labels)) {
            agx_sandbox_info *info = describe(ns, &r, err);
            if (!info || agx_sandbox_list_push(list, info) != 0)
                rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing ns sandboxes");
        }
        agx_ns_record_clear(&r);
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

/* Moves the runtime's expiry (which ends the sandbox when it passes) over its socket or port,
 * then agentix.expires in the record, which get/list report and gc judges: the record never
 * promises more than the runtime was told. */
static int ns_extend(void *self, const agx_sandbox *sb, int64_t expiry_ms, agx_error *err)
{
    agx_ns *ns = self;
    const char *id = agx_sandbox_id(sb);
    int64_t now = agx_clock_wall_ms();
    agx_ns_record r;
    int rc = check_id(id, err);
    if (rc || (rc = agx_ns_record_read(ns, id, &r, err)) != 0)
        return rc;
    /* The runtime is reached where the record says it is (the toolkit's extension: over an open
     * client connection, else POST /expiry on the socket or port). */
    char url[AGX_NS_PATH_MAX * 3 + 32], expires[24];
    if (agx_ns_runtime_url(ns, &r, url, sizeof url) != 0 ||
        strcmp(url, agx_sandbox_runtime_url(sb) ? agx_sandbox_runtime_url(sb) : "") != 0)
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "ns sandbox '%s': the runtime URL given "
                           "is not the one this backend made for it", id);
    else
        rc = agx_runtime_expiry_extend(sb, expiry_ms, agx_clock_ms() + EXTEND_MS, err);
    snprintf(expires, sizeof expires, "%lld", (long long)(now + expiry_ms));
    if (!rc && agx_kv_set(r.labels, AGX_LABEL_EXPIRES, expires))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory extending '%s'", id);
    if (!rc)
        rc = agx_ns_record_write(ns, &r, err);
    agx_ns_record_clear(&r);
    return rc;
}

/* The options create() reads (ns_config.c; the core refuses other ns.* keys). */
static const char *const ns_options[] = {"ns.network", "ns.host_loopback", "ns.hostname",
                                         "ns.pids", NULL};

static const agx_backend_vtable ns_vtable = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "ns",
    .construct = ns_construct,
    .destruct = ns_destruct,
    .create_sandbox = ns_create,
    .delete_sandbox = ns_delete,
    .get_sandbox = ns_get,
    .list_sandboxes = ns_list,
    .extend_sandbox = ns_extend,
    /* platform is not honoured: a sandbox runs on this machine's architecture only. */
    .config_fields = AGX_CONFIG_IMAGE | AGX_CONFIG_BUNDLE | AGX_CONFIG_CPUS | AGX_CONFIG_MEMORY |
                     AGX_CONFIG_ENV,
    .options = ns_options,
};

AGX_EXPORT const agx_backend_vtable *agx_backend_ns(void);
const agx_backend_vtable *agx_backend_ns(void) { return &ns_vtable; }

/* Removes every ns sandbox under AGENTIX_NS_ROOT whose creating host process is dead, and
 * half-unpacked cache entries of dead unpackers. `agentix gc` judges by labels and expiry instead;
 * tests call it through dlsym. */
AGX_EXPORT int agx_backend_ns_sweep(int *removed, agx_error *err);
int agx_backend_ns_sweep(int *removed, agx_error *err)
{
    void *self = NULL;
    int rc = ns_construct(&self, err);
    if (rc)
        return rc;
    rc = agx_ns_sweep(self, removed, err);
    ns_destruct(self);
    return rc;
}
