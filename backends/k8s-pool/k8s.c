/* k8s.c — the k8s-pool backend plugin (host → agx_load_deployment("k8s-pool") → this → Kubernetes
 * API → a pre-warmed pod running agentix-server). Sandboxes are pods claimed from a pool that a
 * ReplicaSet keeps warm (see docs/K8S.md); create = claim, delete = delete the pod (grace 0, UID
 * precondition), get = the pod's state, list = claimed pods of the pool by label.
 *
 * Configuration (environment, read by construct):
 *   AGENTIX_K8S_POOL         pool name (label agentix.dev/pool), required
 *   AGENTIX_K8S_NAMESPACE    namespace (default: the context's, the service account's, "default")
 *   AGENTIX_K8S_CONTEXT      kubeconfig context (default: current-context)
 *   AGENTIX_K8S_KUBECONFIG   kubeconfig file (else $KUBECONFIG, ~/.kube/config, in-cluster)
 *   AGENTIX_K8S_RUNTIME_URL  "pod-ip" (default: http://{ip}:{port}), "proxy" (API-server pod
 *                            proxy with the credentials as headers), or a template using {ip}
 *                            {port} {name} {namespace} {pool}
 *   AGENTIX_K8S_CONTAINER    the runtime container's name (default "runtime")
 *   AGENTIX_K8S_RUNTIME_TOKEN the pool's agentix-server token, if it has one (pools whose
 *                            runtimes run AGENTIX_AUTH=claim get a per-sandbox token at claim)
 *   AGENTIX_K8S_CLAIM_SECRET the claim secret of such a pool, if it has one
 *
 * Expiry: the claim writes the ownership record (agentix.expires among it) into the pod's labels;
 * extend_sandbox keeps agentix.expires current and extends the runtime's own expiry, which the
 * claim starts. Kubernetes has no deadline a client can extend (activeDeadlineSeconds only
 * shrinks), so the runtime deletes its own pod when its expiry passes (runtime/server/k8s_self.c,
 * with the pod's token, which may delete only that pod) and the ReplicaSet refills the pool. A
 * claimed pod whose expiry passed anyway (the delete failed) is deleted by whoever sees it first:
 * any k8s-pool backend claiming from the pool (at most every AGX_K8S_REAP_EVERY_MS) and agx_gc. */
#include "backends/k8s-pool/k8s_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agentix/plugin.h"

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

static void k8s_destruct(void *self)
{
    agx_k8s *k = self;
    if (!k)
        return;
    agx_k8s_conn_clear(&k->conn);
    agx_http_share_free(k->share);
    free(k->ns);
    free(k->pool);
    free(k->container);
    free(k->url_template);
    free(k->runtime_token);
    free(k->claim_secret);
    free(k);
}

static int name_ok(const char *what, const char *v, agx_error *err)
{
    size_t n = strlen(v);
    int ok = n > 0 && n <= 63;
    for (size_t i = 0; ok && i < n; i++)
        ok = (v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-' ||
             (v[i] == '.' && strcmp(what, "AGENTIX_K8S_POOL") == 0);
    if (!ok || v[0] == '-' || v[n - 1] == '-')
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "k8s-pool: %s='%s' is not a valid name (1-63 of [a-z0-9-], "
                             "alphanumeric at both ends)", what, v);
    return 0;
}

static int url_mode(agx_k8s *k, agx_error *err)
{
    const char *mode = env_or("AGENTIX_K8S_RUNTIME_URL", "pod-ip");
    if (strcmp(mode, "pod-ip") == 0) {
        k->url_kind = AGX_K8S_URL_POD_IP;
        return 0;
    }
    if (strcmp(mode, "proxy") == 0) {
        k->url_kind = AGX_K8S_URL_PROXY;
        if (k->conn.cert_pem)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "k8s-pool: AGENTIX_K8S_RUNTIME_URL=proxy needs token credentials "
                                 "(a runtime client cannot present the kubeconfig's client "
                                 "certificate); use pod-ip or a template");
        return 0;
    }
    if (strncmp(mode, "http://", 7) == 0 || strncmp(mode, "https://", 8) == 0) {
        k->url_kind = AGX_K8S_URL_TEMPLATE;
        return (k->url_template = strdup(mode)) ? 0
                                                : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "k8s-pool: AGENTIX_K8S_RUNTIME_URL='%s' must be pod-ip, proxy, or an "
                         "http(s):// template with {ip} {port} {name} {namespace} {pool}", mode);
}

static int k8s_construct(void **self, agx_error *err)
{
    *self = NULL;
    const char *pool = getenv("AGENTIX_K8S_POOL");
    if (!pool || !*pool)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "k8s-pool: AGENTIX_K8S_POOL is not set (the pool's name, its pods' "
                             AGX_K8S_LABEL_POOL " label; see `agentix k8s-pool manifest`)");
    agx_k8s *k = calloc(1, sizeof *k);
    if (!k)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = agx_k8s_conn_load(&k->conn, getenv("AGENTIX_K8S_CONTEXT"), err);
    if (rc) {
        free(k);
        return rc;
    }
    const char *ns = env_or("AGENTIX_K8S_NAMESPACE", k->conn.namespace ? k->conn.namespace : "default");
    if ((rc = name_ok("AGENTIX_K8S_POOL", pool, err)) || (rc = name_ok("AGENTIX_K8S_NAMESPACE", ns, err)))
        goto fail;
    const char *container = env_or("AGENTIX_K8S_CONTAINER", "runtime");
    const char *token = getenv("AGENTIX_K8S_RUNTIME_TOKEN"),
               *claim = getenv("AGENTIX_K8S_CLAIM_SECRET");
    if (!(k->ns = strdup(ns)) || !(k->pool = strdup(pool)) || !(k->container = strdup(container)) ||
        (token && *token && !(k->runtime_token = strdup(token))) ||
        (claim && *claim && !(k->claim_secret = strdup(claim)))) {
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    if ((rc = url_mode(k, err)) || (rc = agx_http_share_new(&k->share, err)))
        goto fail;
    *self = k;
    return 0;
fail:
    k8s_destruct(k);
    return rc;
}

static int proxy_headers(agx_k8s *k, agx_sandbox *sb, agx_error *err)
{
    agx_k8s_cred cred;
    int rc = agx_k8s_cred_get(&k->conn, 0, &cred, err);
    if (rc == 0 && cred.authorization &&
        agx_kv_set(agx_sandbox_headers(sb), "Authorization", cred.authorization))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    agx_k8s_cred_clear(&cred);
    return rc;
}

static int k8s_create(void *self, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err)
{
    agx_k8s *k = self;
    *out = NULL;
    json_t *pod = NULL;
    char token[33];
    int64_t deadline = agx_clock_ms() + agx_sandbox_config_timeout_ms(cfg);
    int rc = agx_k8s_claim(k, cfg, &pod, token, err);
    if (rc)
        return rc;
    char *url = NULL;
    const char *name = agx_k8s_str(pod, "metadata.name");
    if ((rc = agx_k8s_runtime_url(k, pod, &url, err)) == 0) {
        *out = agx_sandbox_new("k8s-pool", name, url, *token ? token : k->runtime_token);
        if (!*out)
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        else if (k->url_kind == AGX_K8S_URL_PROXY && (rc = proxy_headers(k, *out, err)))
            agx_sandbox_free(*out), *out = NULL;
    }
    /* The warm runtime had no expiry (the pool owned it): from its claim on, it has ours. */
    if (rc == 0 && (rc = agx_k8s_runtime_extend(k, *out, agx_sandbox_config_expiry_ms(cfg),
                                                deadline, err)) != 0) {
        agx_error_prefix(err, "k8s-pool: claimed pod %s", name);
        agx_sandbox_free(*out);
        *out = NULL;
    }
    if (rc) {
        agx_error ignored;
        agx_k8s_pod_delete(k, name, agx_k8s_str(pod, "metadata.uid"), &ignored);
    }
    free(url);
    json_decref(pod);
    /* After a claim that worked, with what is left of its time: an API that fails a create
     * never makes it wait for this too. */
    if (rc == 0)
        agx_k8s_reap_expired(k, deadline);
    return rc;
}

/* GET pods/{name}; *pod NULL with 0 when it does not exist. */
static int fetch(agx_k8s *k, const char *name, json_t **pod, agx_error *err)
{
    *pod = NULL;
    char *path = agx_http_escape(name), *full = NULL;
    if (!path || asprintf(&full, "/api/v1/namespaces/%s/pods/%s", k->ns, path) < 0) {
        free(path);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_k8s_call call = {.method = "GET", .path = full, .deadline_ms = agx_clock_ms() + 30000};
    agx_http_response resp;
    int rc = agx_k8s_api(k, &call, &resp, err);
    if (rc == 0 && resp.status != 404 && (rc = agx_k8s_status_error(&resp, "get pod", err)) == 0 &&
        !(*pod = json_loads(resp.body, 0, NULL)))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "get pod %s: the answer is not JSON", name);
    agx_http_response_clear(&resp);
    free(path);
    free(full);
    return rc;
}

static const char *label(json_t *pod, const char *key)
{
    return json_string_value(json_object_get(json_object_get(json_object_get(pod, "metadata"),
                                                              "labels"), key));
}

/* A sandbox of ours: a pod of this pool in the claimed state, not being deleted (a terminating pod
 * was deleted: get and list report it gone at once, as other backends do). */
static int is_sandbox(agx_k8s *k, json_t *pod)
{
    const char *p = label(pod, AGX_K8S_LABEL_POOL), *s = label(pod, AGX_K8S_LABEL_STATE);
    return p && s && strcmp(p, k->pool) == 0 && strcmp(s, AGX_K8S_STATE_CLAIMED) == 0 &&
           !json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp");
}

static int k8s_delete(void *self, const char *id, agx_error *err)
{
    agx_k8s *k = self;
    json_t *pod = NULL;
    int rc = fetch(k, id, &pod, err);
    if (rc || !pod)
        return rc;
    if (json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp"))
        rc = 0; /* already being deleted: deleting again succeeds */
    else if (!is_sandbox(k, pod))
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                           "k8s-pool: pod %s is not a claimed sandbox of pool '%s'; not deleting it",
                           id, k->pool);
    else
        rc = agx_k8s_pod_delete(k, id, agx_k8s_str(pod, "metadata.uid"), err);
    json_decref(pod);
    return rc;
}

static int64_t created_ms(json_t *pod)
{
    return agx_time_parse_ms(agx_k8s_str(pod, "metadata.creationTimestamp"));
}

agx_sandbox_info *agx_k8s_info_of(agx_k8s *k, json_t *pod, agx_error *err)
{
    agx_sandbox_info *info = agx_sandbox_info_new(agx_k8s_str(pod, "metadata.name"),
                                                  agx_k8s_pod_state(pod, k->container));
    if (!info) {
        agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    char *url = NULL;
    agx_error ignored;
    if (agx_k8s_runtime_url(k, pod, &url, &ignored) == 0)
        agx_sandbox_info_set_runtime_url(info, url);
    free(url);
    const char *msg = NULL, *why = agx_k8s_container_failure(agx_k8s_container_status(pod, k->container), &msg);
    char detail[512];
    snprintf(detail, sizeof detail, "phase %s%s%s", agx_k8s_str(pod, "status.phase") ?: "unknown",
             why ? ", " : "", why ? why : "");
    agx_sandbox_info_set_detail(info, detail);
    agx_sandbox_info_set_created_at(info, created_ms(pod));
    agx_sandbox_info_set_expires_at(info, agx_label_unix_ms(label(pod, AGX_LABEL_EXPIRES)));
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(json_object_get(pod, "metadata"), "labels"), key, v)
        if (json_is_string(v) && agx_kv_set(agx_sandbox_info_labels(info), key, json_string_value(v))) {
            agx_sandbox_info_free(info);
            agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
            return NULL;
        }
    return info;
}

static int k8s_get(void *self, const char *id, agx_sandbox_info **out, agx_error *err)
{
    agx_k8s *k = self;
    *out = NULL;
    json_t *pod = NULL;
    int rc = fetch(k, id, &pod, err);
    if (rc == 0 && (!pod || !is_sandbox(k, pod))) {
        /* Deleted, or never a sandbox of this pool (an idle pod, another pool's): gone, as every
         * backend reports it (plugin.h). */
        if (!(*out = agx_sandbox_info_new(id, AGX_SANDBOX_GONE)))
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    } else if (rc == 0 && !(*out = agx_k8s_info_of(k, pod, err))) {
        rc = err->code;
    }
    json_decref(pod);
    return rc;
}

static int k8s_list(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err)
{
    agx_k8s *k = self;
    *out = NULL;
    for (size_t i = 0; labels && i < agx_kv_count(labels); i++)
        if (!agx_k8s_label_ok(agx_kv_key_at(labels, i), agx_kv_value_at(labels, i)))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "k8s-pool: list: %s=%s is not a "
                                 "valid Kubernetes label", agx_kv_key_at(labels, i),
                                 agx_kv_value_at(labels, i));
    char *sel = agx_k8s_selector(k, AGX_K8S_STATE_CLAIMED, labels), *path = NULL;
    if (!sel || asprintf(&path, "/api/v1/namespaces/%s/pods?labelSelector=%s", k->ns, sel) < 0) {
        free(sel);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_k8s_call call = {.method = "GET", .path = path, .deadline_ms = agx_clock_ms() + 30000};
    agx_http_response resp;
    int rc = agx_k8s_api(k, &call, &resp, err);
    json_t *doc = NULL, *pod;
    if (rc == 0 && (rc = agx_k8s_status_error(&resp, "list pods", err)) == 0) {
        doc = json_loads(resp.body, 0, NULL); /* not inside json_is_array: it is a macro */
        if (!json_is_array(json_object_get(doc, "items")))
            rc = agx_error_set(err, AGX_ERR_PROTOCOL, "list pods: the answer is not a PodList");
    }
    agx_sandbox_list *list = rc ? NULL : agx_sandbox_list_new();
    if (rc == 0 && !list)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    size_t i;
    json_array_foreach(rc ? NULL : json_object_get(doc, "items"), i, pod) {
        if (!is_sandbox(k, pod))
            continue; /* terminating */
        agx_sandbox_info *info = agx_k8s_info_of(k, pod, err);
        if (!info || agx_sandbox_list_push(list, info)) {
            rc = info ? agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory") : err->code;
            break;
        }
    }
    if (rc)
        agx_sandbox_list_free(list);
    else
        *out = list;
    json_decref(doc);
    agx_http_response_clear(&resp);
    free(sel);
    free(path);
    return rc;
}

/* ---- expiry ---- */

/* The claim label follows the extension (only while the pod is still our claimed one), then the
 * runtime's own expiry. */
static int k8s_extend(void *self, const agx_sandbox *sb, int64_t expiry_ms, agx_error *err)
{
    agx_k8s *k = self;
    int64_t deadline = agx_clock_ms() + 30000;
    const char *name = agx_sandbox_id(sb);
    char *path = agx_http_escape(name), *full = NULL, *body = NULL;
    if (!path || asprintf(&full, "/api/v1/namespaces/%s/pods/%s", k->ns, path) < 0 ||
        asprintf(&body, "[{\"op\":\"test\",\"path\":\"/metadata/labels/agentix.dev~1state\","
                 "\"value\":\"" AGX_K8S_STATE_CLAIMED "\"},{\"op\":\"add\",\"path\":"
                 "\"/metadata/labels/" AGX_LABEL_EXPIRES "\",\"value\":\"%lld\"}]",
                 (long long)(agx_clock_wall_ms() + expiry_ms)) < 0) {
        free(path);
        free(full);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_k8s_call call = {.method = "PATCH", .path = full, .body = body,
                         .content_type = "application/json-patch+json", .deadline_ms = deadline};
    agx_http_response resp;
    int rc = agx_k8s_api(k, &call, &resp, err);
    if (rc == 0 && (resp.status == 404 || resp.status == 422))
        rc = agx_error_set(err, AGX_ERR_NOT_FOUND, "k8s-pool: pod %s is gone (or no longer a "
                           "claimed sandbox)", name);
    else if (rc == 0)
        rc = agx_k8s_status_error(&resp, "extend the pod's expiry label", err);
    agx_http_response_clear(&resp);
    free(path);
    free(full);
    free(body);
    return rc ? rc : agx_k8s_runtime_extend(k, sb, expiry_ms, deadline, err);
}

static const agx_backend_vtable vtable = {
    .abi_version = AGX_PLUGIN_ABI_VERSION,
    .struct_size = sizeof(agx_backend_vtable),
    .name = "k8s-pool",
    .construct = k8s_construct,
    .destruct = k8s_destruct,
    .create_sandbox = k8s_create,
    .delete_sandbox = k8s_delete,
    .get_sandbox = k8s_get,
    .list_sandboxes = k8s_list,
    .extend_sandbox = k8s_extend,
    /* image swaps the container's image; bundle must be the pool's; env and resources are the
     * pod template's (a warm pod is already running). */
    .config_fields = AGX_CONFIG_IMAGE | AGX_CONFIG_BUNDLE,
};

AGX_EXPORT const agx_backend_vtable *agx_backend_k8s_pool(void);
const agx_backend_vtable *agx_backend_k8s_pool(void)
{
    return &vtable;
}
