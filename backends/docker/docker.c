/* docker.c — the `docker` backend: a sandbox is a container of the task image running the bundle's
 * agentix-server, which it takes read-only from the bundle's carrier container (VolumesFrom).
 *
 * Flow: host → agx_load_deployment("docker") → this vtable → Docker Engine API (libcurl over the
 * daemon's socket, never the docker CLI) → container → client.h connects to
 * http://127.0.0.1:<published port>. Containers carry the labels agentix.sandbox=1,
 * agentix.bundle=<image> and the config's labels — the ownership record among them
 * (backend/labels.h) — so any process can get, list or delete them, and gc finds leaks.
 *
 * Configuration (environment, read by construct):
 *   DOCKER_HOST              unix:///path or tcp://127.0.0.1:port
 *                            (default unix:///var/run/docker.sock)
 *   AGENTIX_DOCKER_NETWORK   "host" to share the host's network (default: bridge with the runtime
 *                            port published on 127.0.0.1); per sandbox: option docker.network */
#include "backends/docker/docker_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentix/plugin.h"

static void reap_unstarted(agx_docker *d, int64_t deadline);

/* ---- construct / destruct ---- */

static int read_network(agx_docker *d, agx_error *err)
{
    const char *n = getenv("AGENTIX_DOCKER_NETWORK");
    if (!n || !*n || strcmp(n, "bridge") == 0)
        return 0;
    if (strcmp(n, "host") == 0) {
        d->host_network = 1;
        return 0;
    }
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "AGENTIX_DOCKER_NETWORK='%s' must be 'bridge' or 'host'", n);
}

static int docker_construct(void **self, agx_error *err)
{
    agx_docker *d = calloc(1, sizeof *d);
    if (!d)
        return agx_error_set(err, AGX_ERR_NO_MEMORY,
                             "out of memory constructing the docker backend");
    int rc = read_network(d, err);
    if (!rc)
        rc = agx_docker_connect(d, err);
    if (rc) {
        free(d);
        return rc;
    }
    /* The watch that removes what a kill of this process mid-create would leave (docker_watch.c),
     * then what earlier hosts left. */
    rc = agx_docker_watch_ensure(err);
    if (rc) {
        agx_error_prefix(err, "the docker backend's owner watch");
        free(d);
        return rc;
    }
    atomic_init(&d->reaped_at, agx_clock_ms());
    reap_unstarted(d, agx_clock_ms() + 2000);
    *self = d;
    return 0;
}

/* Sandboxes outlive the instance: sessions delete them; labels let sweepers find leaks. */
static void docker_destruct(void *self)
{
    free(self);
}

/* ---- ids ---- */

static int check_id(const char *id, agx_error *err)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n >= AGX_DOCKER_ID_MAX ||
        strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "'%s' is not a docker sandbox id (a container id)",
                             id ? id : "(null)");
    return 0;
}

/* Inspects a container; *out NULL with 0 when it does not exist. Containers that are not agentix
 * sandboxes are reported as absent, so get/delete never touch a user's other containers. */
static int inspect_sandbox(const agx_docker *d, const char *id, json_t **out, agx_error *err)
{
    char path[AGX_DOCKER_ID_MAX + 32];
    snprintf(path, sizeof path, "/containers/%s/json", id);
    int rc = agx_docker_call(d, "GET", path, NULL, 0, "inspecting the sandbox", out, NULL, err);
    if (rc == AGX_ERR_NOT_FOUND) {
        agx_error_clear(err);
        return 0;
    }
    if (rc)
        return rc;
    json_t *labels = json_object_get(json_object_get(*out, "Config"), "Labels");
    json_t *mark = json_object_get(labels, AGX_LABEL_SANDBOX);
    if (!json_is_string(mark)) /* a bundle's carrier: gc may delete leftover ones */
        mark = json_object_get(labels, AGX_LABEL_CARRIER);
    if (!json_is_string(mark) || strcmp(json_string_value(mark), "1") != 0) {
        json_decref(*out);
        *out = NULL;
    }
    return 0;
}

/* ---- delete ---- */

static int docker_delete(void *self, const char *id, agx_error *err)
{
    agx_docker *d = self;
    json_t *c = NULL;
    int rc = check_id(id, err);
    if (!rc)
        rc = inspect_sandbox(d, id, &c, err);
    if (rc || !c)
        return rc; /* gone already (or never a sandbox): nothing to delete */
    /* By the full id: a short id the caller passed must not match another container later. */
    const char *full = json_string_value(json_object_get(c, "Id"));
    rc = agx_docker_remove(d, full ? full : id, err);
    json_decref(c);
    if (rc)
        agx_error_prefix(err, "deleting docker sandbox '%.12s'", id);
    return rc;
}

/* ---- get / list ---- */

static int docker_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    agx_docker *d = self;
    *out = NULL;
    json_t *c = NULL;
    int rc = check_id(id, err);
    if (!rc)
        rc = inspect_sandbox(d, id, &c, err);
    if (rc)
        return rc;
    if (!c) {
        *out = agx_sandbox_info_new(id, AGX_SANDBOX_GONE);
        if (*out && agx_sandbox_info_set_detail(*out, "no such docker sandbox (deleted, or not "
                                                      "an agentix container)") != 0) {
            agx_sandbox_info_free(*out);
            *out = NULL;
        }
    } else {
        *out = agx_docker_info_from_inspect(id, c);
        json_decref(c);
    }
    return *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory describing '%s'", id);
}

/* {"label": ["<mark>=1", "k=v", …]} */
static char *list_filter(const char *mark, const agx_kv *labels)
{
    char m[64];
    snprintf(m, sizeof m, "%s=1", mark);
    json_t *l = json_array(), *f = json_pack("{s:o}", "label", l);
    int bad = !f || json_array_append_new(l, json_string(m)) != 0;
    for (size_t i = 0; !bad && labels && i < agx_kv_count(labels); i++) {
        const char *k = agx_kv_key_at(labels, i), *v = agx_kv_value_at(labels, i);
        char *s = malloc(strlen(k) + strlen(v) + 2);
        if (!s)
            break;
        sprintf(s, "%s=%s", k, v);
        bad |= json_array_append_new(l, json_string(s)) != 0;
        free(s);
    }
    char *text = bad ? NULL : json_dumps(f, JSON_COMPACT);
    json_decref(f);
    char *esc = text ? agx_http_escape(text) : NULL;
    free(text);
    return esc;
}

static int push_summary(agx_sandbox_list *list, json_t *c)
{
    if (!json_string_value(json_object_get(c, "Id")))
        return 0; /* nothing to report it by */
    agx_sandbox_info *info = agx_docker_info_from_summary(c);
    if (!info || agx_sandbox_list_push(list, info) != 0) {
        agx_sandbox_info_free(info);
        return -1;
    }
    return 0;
}

/* GET /containers/json?all=1 with a label filter; the array in *arr. */
static int list_raw(agx_docker *d, const char *mark, const agx_kv *labels, json_t **arr,
                    agx_error *err)
{
    *arr = NULL;
    char *filter = list_filter(mark, labels);
    char *path = filter ? malloc(strlen(filter) + 64) : NULL;
    if (!path) {
        free(filter);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing docker sandboxes");
    }
    sprintf(path, "/containers/json?all=1&filters=%s", filter);
    free(filter);
    int rc = agx_docker_call(d, "GET", path, NULL, 0, "listing sandboxes", arr, NULL, err);
    free(path);
    if (!rc && !json_is_array(*arr)) {
        json_decref(*arr);
        *arr = NULL;
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "listing containers: the answer is not an array");
    }
    return rc;
}

static int bundle_in_use(json_t *sandboxes, const char *bundle)
{
    size_t i;
    json_t *c;
    json_array_foreach(sandboxes, i, c) {
        const char *b = json_string_value(json_object_get(json_object_get(c, "Labels"), AGX_LABEL_BUNDLE));
        if (b && bundle && strcmp(b, bundle) == 0)
            return 1;
    }
    return 0;
}

int agx_docker_list_leftover_carriers(const agx_docker *dc, agx_sandbox_list *list, agx_error *err)
{
    agx_docker *d = (agx_docker *)dc;
    json_t *carriers = NULL, *sandboxes = NULL;
    int rc = list_raw(d, AGX_LABEL_CARRIER, NULL, &carriers, err);
    if (!rc)
        rc = list_raw(d, AGX_LABEL_SANDBOX, NULL, &sandboxes, err);
    size_t i;
    json_t *c;
    json_array_foreach(rc ? NULL : carriers, i, c) {
        const char *b = json_string_value(json_object_get(json_object_get(c, "Labels"), AGX_LABEL_BUNDLE));
        if (!bundle_in_use(sandboxes, b) && push_summary(list, c) != 0)
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing carriers");
    }
    json_decref(carriers);
    json_decref(sandboxes);
    return rc;
}

/* A filter naming agentix.carrier asks for the leftover carriers (what agx_gc's carriers option
 * collects), not for sandboxes. */
static int docker_list(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err)
{
    agx_docker *d = self;
    *out = NULL;
    agx_sandbox_list *list = agx_sandbox_list_new();
    if (!list)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing docker sandboxes");
    int rc;
    if (labels && agx_kv_get(labels, AGX_LABEL_CARRIER)) {
        rc = agx_docker_list_leftover_carriers(d, list, err);
    } else {
        json_t *arr = NULL;
        rc = list_raw(d, AGX_LABEL_SANDBOX, labels, &arr, err);
        size_t i;
        json_t *c;
        json_array_foreach(arr, i, c) {
            if (!rc && push_summary(list, c) != 0)
                rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing docker sandboxes");
        }
        json_decref(arr);
    }
    if (rc) {
        agx_sandbox_list_free(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* ---- containers that never started ----
 * A host killed between a container's creation and its start leaves a container that never ran
 * (AutoRemove acts only on one that ran and stopped), so its runtime never got to end itself.
 * The creating process's owner watch removes its own at once when it ends (docker_watch.c);
 * every docker backend of the host also removes those whose owner is gone or whose expiry passed,
 * at construct and, after a successful create, every AGX_DOCKER_REAP_EVERY_MS (gc does too). */

static int reap_one(agx_docker *d, json_t *c)
{
    const char *id = json_string_value(json_object_get(c, "Id"));
    int64_t created = json_integer_value(json_object_get(c, "Created")) * 1000;
    if (!id || agx_clock_wall_ms() - created < AGX_DOCKER_REAP_AGE_MS)
        return 0; /* a create of a live host may be between its two steps right now */
    agx_kv *labels = agx_kv_new();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(c, "Labels"), k, v)
        if (labels && json_is_string(v))
            agx_kv_set(labels, k, json_string_value(v));
    agx_owner_verdict owner = labels ? agx_owner_judge(labels, created) : AGX_OWNER_ALIVE;
    int64_t expires = agx_label_unix_ms(agx_kv_get(labels, AGX_LABEL_EXPIRES));
    agx_kv_free(labels);
    agx_error err;
    if (owner == AGX_OWNER_GONE || (owner == AGX_OWNER_UNKNOWN && expires && agx_clock_wall_ms() > expires))
        return agx_docker_remove(d, id, &err) == 0;
    return 0;
}

static void reap_unstarted(agx_docker *d, int64_t deadline)
{
    agx_docker_bound(deadline);
    json_t *arr = NULL;
    agx_error err;
    size_t i;
    json_t *c;
    if (agx_docker_list_unstarted(d, NULL, &arr, &err) == 0)
        json_array_foreach(arr, i, c)
            reap_one(d, c);
    agx_docker_bound(0);
    json_decref(arr);
}

static int docker_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out,
                         agx_error *err)
{
    agx_docker *d = self;
    int rc = agx_docker_create(d, cfg, out, err);
    int64_t now = agx_clock_ms(), last = atomic_load(&d->reaped_at);
    if (rc == 0 && now - last >= AGX_DOCKER_REAP_EVERY_MS &&
        atomic_compare_exchange_strong(&d->reaped_at, &last, now))
        reap_unstarted(d, now + 2000);
    return rc;
}

/* The options create() reads (the core refuses other docker.* keys). */
static const char *const docker_options[] = {"docker.network", NULL};

static const agx_backend_vtable docker_vtable = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "docker",
    .construct = docker_construct,
    .destruct = docker_destruct,
    .create_sandbox = docker_create,
    .delete_sandbox = docker_delete,
    .get_sandbox = docker_get,
    .list_sandboxes = docker_list,
    .config_fields = AGX_CONFIG_ALL,
    .options = docker_options,
};

AGX_EXPORT const agx_backend_vtable *agx_backend_docker(void);
const agx_backend_vtable *agx_backend_docker(void)
{
    return &docker_vtable;
}
