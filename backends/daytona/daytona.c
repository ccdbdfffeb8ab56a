/* daytona.c — the `daytona` backend: a sandbox is a Daytona sandbox from a snapshot holding an
 * `agentix build` bundle; agentix-server runs from the snapshot's entrypoint or is started through
 * the toolbox process API (daytona_create.c), and is reached through Daytona's preview proxy.
 *
 * Flow: host → agx_load_deployment("daytona") → this vtable → Daytona API (Authorization: Bearer)
 * → sandbox → client.h connects to the preview URL of port 8000, sending X-Daytona-Preview-Token
 * (carried in the sandbox's headers) and the runtime token. Sandboxes carry the labels
 * agentix.sandbox=1 and the config's labels (the ownership record among them). The expiry is
 * Daytona's auto-stop (idle minutes) with auto-delete on stop; extend_sandbox resets the idle timer
 * (last-activity), keeps the agentix.expires label current and extends the runtime's own.
 *
 * Configuration (environment, read by construct):
 *   DAYTONA_API_KEY     required
 *   DAYTONA_API_URL     default https://app.daytona.io/api
 *   DAYTONA_TARGET      region (us, eu, …); default: the organisation's
 *   AGENTIX_CONNECT_TO  HOST:PORT:CONNECT_HOST:CONNECT_PORT for the health wait (the client reads
 *                       the same variable), to reach preview host names through another address */
#include "backends/daytona/daytona_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/plugin.h"

/* ---- construct / destruct ---- */

static void daytona_destruct(void *self)
{
    agx_daytona *d = self;
    if (!d)
        return;
    agx_cloud_fini(&d->cloud);
    free(d->target);
    free(d);
}

static int daytona_construct(void **self, agx_error *err)
{
    const char *key;
    int rc = agx_cloud_env_required("DAYTONA_API_KEY", &key, err);
    if (rc)
        return rc;
    agx_daytona *d = calloc(1, sizeof *d);
    char *auth = NULL;
    if (!d || asprintf(&auth, "Bearer %s", key) < 0) {
        free(d);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory constructing the daytona "
                                                     "backend");
    }
    const char *api = getenv("DAYTONA_API_URL");
    const char *target = getenv("DAYTONA_TARGET");
    rc = agx_cloud_init(&d->cloud, "Daytona", "daytona", api && *api ? api : AGX_DAYTONA_DEFAULT_API,
                        "Authorization", auth, err);
    free(auth);
    if (!rc && target && *target) {
        size_t n = strlen(target);
        if (n > 64 || strspn(target, "abcdefghijklmnopqrstuvwxyz0123456789-_") != n)
            rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                               "DAYTONA_TARGET='%.64s' must be a region name such as us or eu",
                               target);
        else if (!(d->target = strdup(target)))
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory constructing the daytona "
                                                       "backend");
    }
    if (rc) {
        daytona_destruct(d);
        return rc;
    }
    *self = d;
    return 0;
}

/* ---- get ---- */

int agx_daytona_get_dto(const agx_daytona *d, const char *id, json_t **out, agx_error *err)
{
    char path[AGX_CLOUD_ID_MAX + 16];
    snprintf(path, sizeof path, "/sandbox/%s", id);
    agx_cloud_call call = {.method = "GET", .path = path, .idempotent = 1,
                           .what = "getting the sandbox"};
    int rc = agx_cloud_request(&d->cloud, &call, NULL, out, err);
    if (!rc && !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "Daytona described sandbox '%s' without a JSON "
                                                  "object", id);
    }
    return rc;
}

static agx_sandbox_state map_state(const char *s)
{
    static const char *const creating[] = {"creating", "restoring", "starting", "pending_build",
                                           "building_snapshot", "pulling_snapshot", "resuming",
                                           NULL};
    static const char *const stopped[] = {"stopped", "stopping", "archived", "archiving",
                                          "paused", "pausing", "resizing", "snapshotting",
                                          "forking", NULL};
    if (!s)
        return AGX_SANDBOX_UNKNOWN;
    if (strcmp(s, "started") == 0)
        return AGX_SANDBOX_RUNNING;
    if (strcmp(s, "error") == 0 || strcmp(s, "build_failed") == 0)
        return AGX_SANDBOX_ERROR;
    if (strcmp(s, "destroying") == 0 || strcmp(s, "destroyed") == 0)
        return AGX_SANDBOX_GONE;
    for (int i = 0; creating[i]; i++)
        if (strcmp(s, creating[i]) == 0)
            return AGX_SANDBOX_CREATING;
    for (int i = 0; stopped[i]; i++)
        if (strcmp(s, stopped[i]) == 0)
            return AGX_SANDBOX_STOPPED;
    return AGX_SANDBOX_UNKNOWN;
}

agx_sandbox_info *agx_daytona_info_from(const agx_daytona *d, json_t *s)
{
    const char *id = json_string_value(json_object_get(s, "id"));
    if (!id || agx_cloud_check_id(&d->cloud, id, NULL) != 0)
        return NULL;
    const char *state = json_string_value(json_object_get(s, "state"));
    const char *reason = json_string_value(json_object_get(s, "errorReason"));
    agx_sandbox_info *info = agx_sandbox_info_new(id, map_state(state));
    char detail[300];
    snprintf(detail, sizeof detail, "state %.32s%s%.200s", state ? state : "?",
             reason ? ", error reason: " : "", reason ? reason : "");
    int bad = !info || agx_sandbox_info_set_detail(info, detail) != 0;
    if (!bad)
        agx_sandbox_info_set_created_at(
            info, agx_time_parse_ms(json_string_value(json_object_get(s, "createdAt"))));
    if (!bad)
        bad = agx_cloud_info_labels(info, json_object_get(s, "labels"));
    if (!bad) /* kept current by extend_sandbox */
        agx_sandbox_info_set_expires_at(info, agx_label_unix_ms(json_string_value(
                                                  json_object_get(json_object_get(s, "labels"),
                                                                  AGX_LABEL_EXPIRES))));
    if (bad) {
        agx_sandbox_info_free(info);
        return NULL;
    }
    return info;
}

static int daytona_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    agx_daytona *d = self;
    *out = NULL;
    int rc = agx_cloud_check_id(&d->cloud, id, err);
    json_t *s = NULL;
    if (!rc)
        rc = agx_daytona_get_dto(d, id, &s, err);
    if (rc == AGX_ERR_NOT_FOUND) {
        agx_error_clear(err);
        *out = agx_sandbox_info_new(id, AGX_SANDBOX_GONE);
        if (*out && agx_sandbox_info_set_detail(*out, "no such Daytona sandbox (deleted or never "
                                                      "created)") != 0) {
            agx_sandbox_info_free(*out);
            *out = NULL;
        }
        rc = *out ? 0 : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory describing '%s'", id);
    } else if (!rc && !(*out = agx_daytona_info_from(d, s))) {
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "Daytona described sandbox '%s' without a "
                                                  "usable id", id);
    }
    json_decref(s);
    return rc;
}

/* ---- delete ---- */

static int retry_conflict(const agx_http_response *resp)
{
    return resp->status == 409; /* "Sandbox state change in progress" */
}

int agx_daytona_delete_wait(const agx_daytona *d, const char *id, int64_t deadline_ms,
                            agx_error *err)
{
    char path[AGX_CLOUD_ID_MAX + 16];
    snprintf(path, sizeof path, "/sandbox/%s", id);
    agx_cloud_call call = {.method = "DELETE", .path = path, .idempotent = 1,
                           .what = "deleting the sandbox", .deadline_ms = deadline_ms,
                           .retry_also = retry_conflict};
    int rc = agx_cloud_request(&d->cloud, &call, NULL, NULL, err);
    /* Soft delete: the answer says "destroying"; the sandbox holds quota until GET says 404. */
    int64_t start = agx_clock_ms(), interval = 0;
    while (!rc) {
        json_t *s = NULL;
        rc = agx_daytona_get_dto(d, id, &s, err);
        const char *state = json_string_value(json_object_get(s, "state"));
        int gone = !rc && state && strcmp(state, "destroyed") == 0;
        json_decref(s);
        if (rc || gone)
            break;
        if (agx_clock_ms() >= deadline_ms) {
            rc = agx_error_set(err, AGX_ERR_TIMEOUT, "Daytona sandbox '%s' is still %s %lld ms "
                               "after its delete; it may hold quota until Daytona finishes",
                               id, state ? state : "there", (long long)(agx_clock_ms() - start));
            if (err)
                err->retriable = 1;
            break;
        }
        interval = agx_cloud_poll_interval(start, agx_clock_ms(), interval);
        agx_clock_sleep_ms(interval);
    }
    if (rc == AGX_ERR_NOT_FOUND) {
        agx_error_clear(err);
        rc = 0;
    }
    return rc;
}

static int daytona_delete(void *self, const char *id, agx_error *err)
{
    agx_daytona *d = self;
    int rc = agx_cloud_check_id(&d->cloud, id, err);
    if (!rc)
        rc = agx_daytona_delete_wait(d, id, agx_clock_ms() + AGX_CLOUD_DELETE_TIMEOUT_MS, err);
    return rc;
}

/* ---- list ---- */

static char *labels_query(const agx_kv *labels)
{
    json_t *o = NULL;
    if (agx_cloud_kv_json(labels, "label", &o, NULL) != 0)
        return NULL;
    char *text = json_object_set_new(o, AGX_LABEL_SANDBOX, json_string("1")) == 0
                     ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)
                     : NULL;
    json_decref(o);
    char *esc = text ? agx_http_escape(text) : NULL;
    free(text);
    return esc;
}

static int push_page(const agx_daytona *d, json_t *items, agx_sandbox_list *list, agx_error *err)
{
    size_t i;
    json_t *s;
    json_array_foreach(items, i, s) {
        agx_sandbox_info *info = agx_daytona_info_from(d, s);
        if (info && agx_sandbox_list_push(list, info) != 0) {
            agx_sandbox_info_free(info);
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing sandboxes");
        }
    }
    return 0;
}

int agx_daytona_list_into(const agx_daytona *d, const agx_kv *labels, int64_t deadline_ms,
                          agx_sandbox_list *list, agx_error *err)
{
    char *q = labels_query(labels);
    if (!q)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "labels to list by must be valid "
                                                            "UTF-8 (or out of memory)");
    char *cursor = NULL;
    int rc = 0;
    for (int page = 0; !rc; page++) {
        char *esc = cursor ? agx_http_escape(cursor) : NULL, *path = NULL;
        if ((cursor && !esc) || asprintf(&path, "/sandbox?labels=%s&limit=100%s%s", q,
                                         esc ? "&cursor=" : "", esc ? esc : "") < 0)
            path = NULL;
        free(esc);
        free(cursor);
        cursor = NULL;
        if (!path || page >= AGX_CLOUD_MAX_PAGES) {
            free(path);
            rc = agx_error_set(err, path ? AGX_ERR_PROTOCOL : AGX_ERR_NO_MEMORY,
                               "listing Daytona sandboxes: %s",
                               path ? "more than 1000 pages" : "out of memory");
            break;
        }
        json_t *body = NULL;
        agx_cloud_call call = {.method = "GET", .path = path, .idempotent = 1,
                               .what = "listing sandboxes", .deadline_ms = deadline_ms};
        rc = agx_cloud_request(&d->cloud, &call, NULL, &body, err);
        free(path);
        json_t *items = json_object_get(body, "items");
        if (!rc && !json_is_array(items))
            rc = agx_error_set(err, AGX_ERR_PROTOCOL, "listing Daytona sandboxes: no items");
        if (!rc)
            rc = push_page(d, items, list, err);
        const char *next = json_string_value(json_object_get(body, "nextCursor"));
        if (!rc && next && *next && strlen(next) < 1024 && !(cursor = strdup(next)))
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing sandboxes");
        json_decref(body);
        if (!cursor)
            break;
    }
    free(cursor);
    free(q);
    return rc;
}

static int daytona_list(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err)
{
    *out = NULL;
    agx_sandbox_list *list = agx_sandbox_list_new();
    if (!list)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory listing sandboxes");
    int rc = agx_daytona_list_into(self, labels, 0, list, err);
    if (rc) {
        agx_sandbox_list_free(list);
        return rc;
    }
    *out = list;
    return 0;
}

static int daytona_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out,
                          agx_error *err)
{
    return agx_daytona_create(self, cfg, out, err);
}

/* ---- expiry ---- */

/* The labels with agentix.expires moved to now + expiry_ms (PUT replaces them all). */
static int relabel(agx_daytona *d, const char *id, int64_t expiry_ms, int64_t deadline,
                   agx_error *err)
{
    json_t *dto = NULL;
    int rc = agx_daytona_get_dto(d, id, &dto, err);
    json_t *labels = rc ? NULL : json_deep_copy(json_object_get(dto, "labels"));
    json_decref(dto);
    if (rc)
        return rc;
    char expires[24];
    snprintf(expires, sizeof expires, "%lld", (long long)(agx_clock_wall_ms() + expiry_ms));
    if (!json_is_object(labels))
        labels = json_object();
    json_t *body = labels && json_object_set_new(labels, AGX_LABEL_EXPIRES, json_string(expires)) == 0
                       ? json_pack("{s:O}", "labels", labels)
                       : NULL;
    json_decref(labels);
    if (!body)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory relabelling sandbox %s", id);
    char path[AGX_CLOUD_ID_MAX + 32];
    snprintf(path, sizeof path, "/sandbox/%s/labels", id);
    agx_cloud_call call = {.method = "PUT", .path = path, .body = body, .idempotent = 1,
                           .what = "updating the sandbox's expiry label", .deadline_ms = deadline};
    rc = agx_cloud_request(&d->cloud, &call, NULL, NULL, err);
    json_decref(body);
    return rc;
}

static int daytona_extend(void *self, const agx_sandbox *sb, int64_t expiry_ms, agx_error *err)
{
    agx_daytona *d = self;
    const char *id = agx_sandbox_id(sb);
    int64_t deadline = agx_clock_ms() + 30000;
    char path[AGX_CLOUD_ID_MAX + 32];
    snprintf(path, sizeof path, "/sandbox/%s/last-activity", id);
    agx_cloud_call call = {.method = "POST", .path = path, .idempotent = 1,
                           .what = "resetting the sandbox's idle timer", .deadline_ms = deadline};
    int rc = agx_cloud_check_id(&d->cloud, id, err);
    if (!rc)
        rc = agx_cloud_request(&d->cloud, &call, NULL, NULL, err);
    if (!rc)
        rc = relabel(d, id, expiry_ms, deadline, err);
    if (!rc)
        rc = agx_runtime_expiry_extend(sb, expiry_ms, deadline, err);
    return rc;
}

/* The options create() reads (the core refuses other daytona.* keys). */
static const char *const daytona_options[] = {"daytona.start", "daytona.from", "daytona.public",
                                              "daytona.server", "daytona.auto_stop_min", NULL};

static const agx_backend_vtable daytona_vtable = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "daytona",
    .construct = daytona_construct,
    .destruct = daytona_destruct,
    .create_sandbox = daytona_create,
    .delete_sandbox = daytona_delete,
    .get_sandbox = daytona_get,
    .list_sandboxes = daytona_list,
    .extend_sandbox = daytona_extend,
    /* image names the snapshot (or, with daytona.from=image, the image to build, the only case
     * where cpus and memory apply: create() refuses them otherwise). */
    .config_fields = AGX_CONFIG_IMAGE | AGX_CONFIG_CPUS | AGX_CONFIG_MEMORY | AGX_CONFIG_ENV,
    .options = daytona_options,
};

AGX_EXPORT const agx_backend_vtable *agx_backend_daytona(void);
const agx_backend_vtable *agx_backend_daytona(void)
{
    return &daytona_vtable;
}
