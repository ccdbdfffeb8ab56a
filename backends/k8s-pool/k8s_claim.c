/* k8s_claim.c — create = claim (host → backend → Kubernetes API → warm pod): list the pool's idle
 * pods, take one with a single JSON patch whose `test` op guards the state label (422 = another
 * client won: next candidate) and which also swaps the container image when the config asks for
 * another one; the relabelled pod leaves the ReplicaSet's selector, so the ReplicaSet orphans it and
 * starts a replacement. With no idle pod, wait on a watch until one appears or the timeout. After
 * an image swap, watch the pod from the patch's resourceVersion until the new container is ready.
 * Same-image claims cost two API round trips: the list and the patch. */
#include "backends/k8s-pool/k8s_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/random.h>

/* ---- the claim patch ---- */

static int add_op(json_t *ops, const char *op, const char *path, const char *value)
{
    return json_array_append_new(ops, json_pack("{s:s, s:s, s:s}", "op", op, "path", path, "value",
                                                value));
}

static int label_op(json_t *ops, const char *op, const char *key, const char *value)
{
    char *esc = agx_k8s_pointer_escape(key), *path = NULL;
    int rc = !esc || asprintf(&path, "/metadata/labels/%s", esc) < 0 || add_op(ops, op, path, value);
    free(esc);
    free(path);
    return rc;
}

static char *claim_patch(json_t *pod, const char *claim, const agx_kv *labels, size_t cindex,
                         const char *image)
{
    json_t *ops = json_array();
    char ipath[64];
    snprintf(ipath, sizeof ipath, "/spec/containers/%zu/image", cindex);
    int bad = !ops || label_op(ops, "test", AGX_K8S_LABEL_STATE, AGX_K8S_STATE_IDLE) ||
              add_op(ops, "test", "/metadata/uid", agx_k8s_str(pod, "metadata.uid")) ||
              label_op(ops, "replace", AGX_K8S_LABEL_STATE, AGX_K8S_STATE_CLAIMED) ||
              label_op(ops, "add", AGX_K8S_LABEL_CLAIM, claim);
    for (size_t i = 0; !bad && labels && i < agx_kv_count(labels); i++)
        bad = label_op(ops, "add", agx_kv_key_at(labels, i), agx_kv_value_at(labels, i));
    if (!bad && image)
        bad = add_op(ops, "replace", ipath, image);
    char *body = bad ? NULL : json_dumps(ops, JSON_COMPACT);
    json_decref(ops);
    return body;
}

typedef struct claim_ctx {
    agx_k8s *k;
    const agx_sandbox_config *cfg;
    const char *image; /* NULL: keep the pod's */
    char claim[33];
    char token[33]; /* claim mode: the runtime token this claim gives the pod */
    int64_t deadline;
} claim_ctx;

/* After an uncertain outcome (a transport error, or a 422 on a retried patch): is the pod ours? */
static json_t *get_pod(agx_k8s *k, const char *name, int64_t deadline, long *status, agx_error *err)
{
    char *path = NULL;
    *status = 0;
    if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s", k->ns, name) < 0)
        return NULL;
    agx_k8s_call call = {.method = "GET", .path = path, .deadline_ms = deadline};
    agx_http_response resp;
    json_t *pod = NULL;
    if (agx_k8s_api(k, &call, &resp, err) == 0) {
        *status = resp.status;
        if (resp.status == 200)
            pod = json_loads(resp.body, 0, NULL);
        else
            agx_k8s_status_error(&resp, "get pod", err);
    }
    agx_http_response_clear(&resp);
    free(path);
    return pod;
}

static int ours(json_t *pod, const char *claim)
{
    json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
    const char *c = json_string_value(json_object_get(labels, AGX_K8S_LABEL_CLAIM));
    return c && strcmp(c, claim) == 0;
}

static int check_bundle(claim_ctx *cx, json_t *pod, agx_error *err)
{
    const char *want = agx_sandbox_config_bundle(cx->cfg);
    json_t *ann = json_object_get(json_object_get(pod, "metadata"), "annotations");
    const char *have = json_string_value(json_object_get(ann, AGX_K8S_ANNOTATION_BUNDLE));
    if (!want || !*want || (have && agx_k8s_image_equal(want, have)))
        return 0;
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "k8s-pool: pool '%s' runs bundle %s, the config asks for %s (a warm pod "
                         "cannot change its bundle; make a pool for it with `agentix k8s-pool "
                         "manifest`)", cx->k->pool, have ? have : "(unannotated)", want);
}

/* Whether the pod's runtime takes its token at claim time (its container says AGENTIX_AUTH=claim). */
static int claim_mode(const agx_k8s *k, json_t *pod)
{
    json_t *env = json_object_get(agx_k8s_container_spec(pod, k->container, NULL), "env");
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        if (name && strcmp(name, "AGENTIX_AUTH") == 0)
            return strcmp(json_string_value(json_object_get(e, "value")) ?: "", "claim") == 0;
    }
    return 0;
}

/* The candidate's runtime gets our expiry before the claim: a host killed between the claim and
 * anything after it leaves a runtime that still ends itself. In claim mode it also gets a fresh
 * token of this sandbox's own (POST /claim, once: the first claimer wins, so two hosts never share
 * a runtime, and one that lost here moves on to the next candidate). Otherwise (a pool-wide token,
 * or none) the expiry alone: lost the race after all, the winner sets its own expiry at once (an
 * extension is absolute). Nobody claims it: the idle runtime ends at that expiry and the kubelet
 * starts it afresh. 1 when the runtime does not answer or was claimed already (the next candidate
 * is tried), else 0. */
static int arm_runtime(claim_ctx *cx, json_t *pod)
{
    int claiming = claim_mode(cx->k, pod);
    int64_t expiry = agx_sandbox_config_expiry_ms(cx->cfg);
    if (!claiming && expiry <= 0)
        return 0;
    if (claiming && expiry <= 0)
        expiry = AGX_EXPIRY_MAX_MS; /* a claim carries an expiry; the core always gives one */
    char *url = NULL;
    agx_error err;
    if (agx_k8s_runtime_url(cx->k, pod, &url, &err) != 0)
        return 1;
    cx->token[0] = '\0';
    if (claiming && agx_random_hex(cx->token, 16, &err) != 0) {
        free(url);
        return 1;
    }
    agx_sandbox *sb = agx_sandbox_new("k8s-pool", agx_k8s_str(pod, "metadata.name"), url,
                                      claiming ? cx->token : cx->k->runtime_token);
    free(url);
    int64_t bound = agx_clock_ms() + 5000;
    if (bound > cx->deadline)
        bound = cx->deadline;
    int rc = !sb ? AGX_ERR_NO_MEMORY
             : claiming ? agx_k8s_runtime_claim(cx->k, sb, expiry, bound, &err)
                        : agx_k8s_runtime_extend(cx->k, sb, expiry, bound, &err);
    agx_sandbox_free(sb);
    if (rc && claiming)
        cx->token[0] = '\0';
    return rc ? 1 : 0;
}

/* Returns 0 with *out (ours), 1 when the pod was lost to another client, or an error. */
static int try_claim(claim_ctx *cx, json_t *pod, json_t **out, agx_error *err)
{
    agx_k8s *k = cx->k;
    int rc = check_bundle(cx, pod, err);
    if (rc)
        return rc;
    if (arm_runtime(cx, pod) != 0)
        return 1;
    size_t cindex = 0;
    json_t *c = agx_k8s_container_spec(pod, k->container, &cindex);
    const char *cur = json_string_value(json_object_get(c, "image"));
    const char *swap = cx->image && cur && !agx_k8s_image_equal(cx->image, cur) ? cx->image : NULL;
    const char *name = agx_k8s_str(pod, "metadata.name");
    char *body = claim_patch(pod, cx->claim, agx_sandbox_config_labels_const(cx->cfg), cindex, swap);
    char *path = NULL;
    if (!body || asprintf(&path, "/api/v1/namespaces/%s/pods/%s", k->ns, name) < 0) {
        free(body);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_k8s_call call = {.method = "PATCH", .path = path, .body = body,
                         .content_type = "application/json-patch+json", .deadline_ms = cx->deadline};
    agx_http_response resp;
    rc = agx_k8s_api(k, &call, &resp, err);
    if (rc == 0 && resp.status == 200) {
        *out = json_loads(resp.body, 0, NULL);
        rc = *out ? 0 : agx_error_set(err, AGX_ERR_PROTOCOL, "claim of %s: the answer is not JSON", name);
    } else if (rc == 0 && (resp.status == 422 || resp.status == 404 || resp.status == 409) &&
               call.attempts <= 1) {
        rc = 1; /* lost the race (test failed), or the pod went away */
    } else {
        /* Unknown outcome: an earlier attempt may have claimed the pod. Look before moving on. */
        agx_error look;
        long status;
        json_t *now = get_pod(k, name, cx->deadline, &status, &look);
        if (now && ours(now, cx->claim)) {
            *out = now;
            rc = 0;
        } else {
            json_decref(now);
            if (rc == 0 && (resp.status == 422 || resp.status == 404 || resp.status == 409))
                rc = 1;
            else if (rc == 0)
                rc = agx_k8s_status_error(&resp, "claim pod", err);
        }
    }
    agx_http_response_clear(&resp);
    free(body);
    free(path);
    return rc;
}

/* ---- waiting for an idle pod ---- */

typedef struct idle_wait {
    claim_ctx *cx;
    json_t *found; /* a claimable pod seen on the watch */
} idle_wait;

static int status_event_expired(json_t *obj)
{
    return json_integer_value(json_object_get(obj, "code")) == 410;
}

static int on_idle_event(const char *type, json_t *obj, void *user, agx_error *err)
{
    idle_wait *w = user;
    if (strcmp(type, "ERROR") == 0) {
        if (status_event_expired(obj))
            return 2;
        return agx_error_set(err, AGX_ERR_BACKEND, "watch for idle pods: %s",
                             json_string_value(json_object_get(obj, "message")) ?: "error event");
    }
    if ((strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0) &&
        agx_k8s_pod_claimable(obj, w->cx->k->container)) {
        w->found = json_incref(obj);
        return 1;
    }
    return 0;
}

static int list_idle(claim_ctx *cx, json_t **items, char **rv, agx_error *err)
{
    agx_k8s *k = cx->k;
    char *sel = agx_k8s_selector(k, AGX_K8S_STATE_IDLE, NULL), *path = NULL;
    if (!sel || asprintf(&path, "/api/v1/namespaces/%s/pods?labelSelector=%s"
                         "&fieldSelector=status.phase%%3DRunning", k->ns, sel) < 0) {
        free(sel);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_k8s_call call = {.method = "GET", .path = path, .deadline_ms = cx->deadline};
    agx_http_response resp;
    int rc = agx_k8s_api(k, &call, &resp, err);
    if (rc == 0 && (rc = agx_k8s_status_error(&resp, "list idle pods", err)) == 0) {
        json_t *doc = json_loads(resp.body, 0, NULL);
        const char *v = agx_k8s_str(doc, "metadata.resourceVersion");
        if (!json_is_array(json_object_get(doc, "items")) || !v)
            rc = agx_error_set(err, AGX_ERR_PROTOCOL, "list idle pods: the answer is not a PodList");
        else if ((*rv = strdup(v)))
            *items = json_incref(json_object_get(doc, "items"));
        json_decref(doc);
    }
    agx_http_response_clear(&resp);
    free(sel);
    free(path);
    return rc;
}

/* Tries the claimable pods of items in a random order: concurrent clients holding the same list
 * then rarely collide twice in a row (a shared order from random starts makes them convoy). */
static int claim_from(claim_ctx *cx, json_t *items, json_t **out, agx_error *err)
{
    size_t n = json_array_size(items);
    size_t *order = malloc((n ? n : 1) * sizeof *order);
    if (!order)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n; i > 1; i--) {
        unsigned r = 0;
        if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
            r = (unsigned)i * 2654435761u;
        size_t j = r % i, t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    int rc = 1;
    for (size_t i = 0; i < n && rc == 1; i++) {
        json_t *pod = json_array_get(items, order[i]);
        if (agx_k8s_pod_claimable(pod, cx->k->container))
            rc = try_claim(cx, pod, out, err);
    }
    free(order);
    return rc;
}

static int claim_loop(claim_ctx *cx, json_t **out, agx_error *err)
{
    for (;;) {
        json_t *items = NULL;
        char *rv = NULL;
        int rc = list_idle(cx, &items, &rv, err);
        if (rc == 0)
            rc = claim_from(cx, items, out, err);
        json_decref(items);
        /* Nothing claimable: watch from the list's version for a pod to become idle and Ready. */
        while (rc == 1 && agx_clock_ms() < cx->deadline) {
            idle_wait w = {cx, NULL};
            char *sel = agx_k8s_selector(cx->k, AGX_K8S_STATE_IDLE, NULL), *q = NULL;
            if (!sel || asprintf(&q, "labelSelector=%s&resourceVersion=%s", sel, rv) < 0)
                rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
            else
                rc = agx_k8s_watch(cx->k, q, cx->deadline, on_idle_event, &w, err);
            free(sel);
            free(q);
            if (rc == 1) {
                rc = try_claim(cx, w.found, out, err);
                free(rv);
                rv = strdup(agx_k8s_str(w.found, "metadata.resourceVersion") ?: "0");
            } else if (rc == 0) {
                rc = 1; /* the stream ended with nothing for us: watch again until the deadline */
            }
            json_decref(w.found);
            if (rc != 1 || !rv)
                break;
        }
        free(rv);
        if (rc != 1 && rc != 2)
            return rc;
        if (agx_clock_ms() >= cx->deadline) {
            agx_error_set(err, AGX_ERR_UNAVAILABLE,
                          "k8s-pool: pool exhausted: no idle Ready pod in pool '%s' (namespace %s) "
                          "within %lld ms; scale the pool's ReplicaSet or raise the timeout",
                          cx->k->pool, cx->k->ns, (long long)agx_sandbox_config_timeout_ms(cx->cfg));
            err->retriable = 1;
            return AGX_ERR_UNAVAILABLE;
        }
    }
}

/* ---- waiting for the swapped container ---- */

typedef struct swap_wait {
    claim_ctx *cx;
    const char *old_cid;
    json_t *pod; /* the ready pod */
} swap_wait;

static int on_swap_event(const char *type, json_t *obj, void *user, agx_error *err)
{
    swap_wait *w = user;
    agx_k8s *k = w->cx->k;
    const char *name = agx_k8s_str(obj, "metadata.name");
    if (strcmp(type, "ERROR") == 0)
        return status_event_expired(obj) ? 2
                                          : agx_error_set(err, AGX_ERR_BACKEND, "watch pod: %s",
                                                          json_string_value(json_object_get(obj, "message")) ?: "error");
    if (strcmp(type, "DELETED") == 0 ||
        json_object_get(json_object_get(obj, "metadata"), "deletionTimestamp"))
        return agx_error_set(err, AGX_ERR_BACKEND, "pod %s was deleted during the image swap", name);
    if (strcmp(type, "BOOKMARK") == 0)
        return 0;
    json_t *cs = agx_k8s_container_status(obj, k->container);
    const char *msg = NULL, *why = agx_k8s_container_failure(cs, &msg);
    if (why)
        return agx_error_set(err, AGX_ERR_BACKEND, "pod %s: image %s: %s%s%s", name, w->cx->image,
                             why, msg ? ": " : "", msg ? msg : "");
    const char *cid = json_string_value(json_object_get(cs, "containerID"));
    const char *img = json_string_value(json_object_get(cs, "image"));
    json_t *gen = json_object_get(json_object_get(obj, "metadata"), "generation");
    json_t *seen = json_object_get(json_object_get(obj, "status"), "observedGeneration");
    if (cid && (!w->old_cid || strcmp(cid, w->old_cid) != 0) &&
        json_is_true(json_object_get(cs, "ready")) &&
        json_object_get(json_object_get(cs, "state"), "running") && img &&
        agx_k8s_image_equal(img, w->cx->image) && agx_k8s_pod_ready(obj) &&
        (!seen || !gen || json_integer_value(seen) >= json_integer_value(gen))) {
        w->pod = json_incref(obj);
        return 1;
    }
    return 0;
}

static int wait_swapped(claim_ctx *cx, json_t **pod, const char *old_cid, agx_error *err)
{
    const char *name = agx_k8s_str(*pod, "metadata.name");
    char *rv = strdup(agx_k8s_str(*pod, "metadata.resourceVersion") ?: "0");
    int rc = rv ? 0 : AGX_ERR_NO_MEMORY;
    swap_wait w = {cx, old_cid, NULL};
    while (rc == 0 && agx_clock_ms() < cx->deadline) {
        char *q = NULL;
        if (asprintf(&q, "fieldSelector=metadata.name%%3D%s&resourceVersion=%s", name, rv) < 0) {
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
            break;
        }
        rc = agx_k8s_watch(cx->k, q, cx->deadline, on_swap_event, &w, err);
        free(q);
        if (rc == 2) { /* expired: re-read the pod, then watch from its version */
            long status;
            json_t *now = get_pod(cx->k, name, cx->deadline, &status, err);
            if (!now)
                return status ? err->code : agx_error_set(err, AGX_ERR_BACKEND, "pod %s is gone", name);
            rc = on_swap_event("MODIFIED", now, &w, err);
            free(rv);
            rv = strdup(agx_k8s_str(now, "metadata.resourceVersion") ?: "0");
            json_decref(now);
            if (rc == 0)
                continue;
        }
        break;
    }
    free(rv);
    if (rc == 1) {
        json_decref(*pod);
        *pod = w.pod;
        return 0;
    }
    if (rc == 0)
        return agx_error_set(err, AGX_ERR_TIMEOUT, "pod %s: the container did not become ready on "
                             "image %s within %lld ms", name, cx->image,
                             (long long)agx_sandbox_config_timeout_ms(cx->cfg));
    return rc;
}

/* ---- create ---- */

/* env, cpus and memory are refused by the core (k8s.c declares what this backend honours). */
static int check_config(const agx_sandbox_config *cfg, agx_error *err)
{
    const agx_kv *labels = agx_sandbox_config_labels_const(cfg);
    for (size_t i = 0; i < agx_kv_count(labels); i++) {
        const char *key = agx_kv_key_at(labels, i), *v = agx_kv_value_at(labels, i);
        if (strncmp(key, AGX_K8S_LABEL_PREFIX, strlen(AGX_K8S_LABEL_PREFIX)) == 0 || !agx_k8s_label_ok(key, v))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "k8s-pool: label %s=%s is not a valid Kubernetes label (name ≤ 63 "
                                 "chars of [-_.A-Za-z0-9], alphanumeric at both ends; the prefix "
                                 AGX_K8S_LABEL_PREFIX " is reserved)", key, v);
    }
    return 0;
}

int agx_k8s_claim(agx_k8s *k, const agx_sandbox_config *cfg, json_t **pod, char token[33],
                  agx_error *err)
{
    *pod = NULL;
    token[0] = '\0';
    int rc = check_config(cfg, err);
    if (rc)
        return rc;
    claim_ctx cx = {.k = k, .cfg = cfg, .image = agx_sandbox_config_image(cfg)};
    if (cx.image && !*cx.image)
        cx.image = NULL;
    cx.deadline = agx_clock_ms() + agx_sandbox_config_timeout_ms(cfg);
    if ((rc = agx_random_hex(cx.claim, 16, err)))
        return rc;
    if ((rc = claim_loop(&cx, pod, err)))
        return rc;
    memcpy(token, cx.token, sizeof cx.token);
    /* The answer to the patch: did it swap the image? Then wait for the new container. */
    json_t *cs = agx_k8s_container_status(*pod, k->container);
    const char *img = json_string_value(json_object_get(cs, "image"));
    if (!cx.image || (img && agx_k8s_image_equal(img, cx.image) && agx_k8s_pod_ready(*pod) &&
                      agx_k8s_image_equal(json_string_value(json_object_get(
                          agx_k8s_container_spec(*pod, k->container, NULL), "image")), cx.image)))
        return 0;
    char *old_cid = json_string_value(json_object_get(cs, "containerID"))
                        ? strdup(json_string_value(json_object_get(cs, "containerID")))
                        : NULL;
    rc = wait_swapped(&cx, pod, old_cid, err);
    free(old_cid);
    /* The swapped container runs a fresh runtime, waiting for its claim again: ours, at once. */
    if (rc == 0 && cx.token[0] && arm_runtime(&cx, *pod) != 0)
        rc = agx_error_set(err, AGX_ERR_UNAVAILABLE, "k8s-pool: pod %s: the runtime of the swapped "
                           "image did not take its claim", agx_k8s_str(*pod, "metadata.name"));
    if (rc == 0)
        memcpy(token, cx.token, sizeof cx.token);
    if (rc) { /* leave nothing behind: the claimed pod goes */
        agx_error ignored;
        agx_k8s_pod_delete(k, agx_k8s_str(*pod, "metadata.name"), agx_k8s_str(*pod, "metadata.uid"),
                           &ignored);
        json_decref(*pod);
        *pod = NULL;
    }
    return rc;
}

int agx_k8s_pod_delete(agx_k8s *k, const char *name, const char *uid, agx_error *err)
{
    char *path = NULL, *body = NULL;
    if (asprintf(&path, "/api/v1/namespaces/%s/pods/%s", k->ns, name) < 0 ||
        asprintf(&body, "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\",\"gracePeriodSeconds\":0"
                 "%s%s%s}", uid ? ",\"preconditions\":{\"uid\":\"" : "", uid ? uid : "",
                 uid ? "\"}" : "") < 0) {
        free(path);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_k8s_call call = {.method = "DELETE", .path = path, .body = body,
                         .deadline_ms = agx_clock_ms() + 30000};
    agx_http_response resp;
    int rc = agx_k8s_api(k, &call, &resp, err);
    /* 404: already gone; 409: the UID changed, so ours is gone and a namesake lives on. */
    if (rc == 0 && resp.status != 404 && resp.status != 409)
        rc = agx_k8s_status_error(&resp, "delete pod", err);
    agx_http_response_clear(&resp);
    free(path);
    free(body);
    return rc;
}

/* ---- reaping expired claims ---- */

void agx_k8s_reap_expired(agx_k8s *k, int64_t deadline_ms)
{
    int64_t now = agx_clock_ms(), last = atomic_load(&k->reaped_at);
    if ((last && now - last < AGX_K8S_REAP_EVERY_MS) ||
        !atomic_compare_exchange_strong(&k->reaped_at, &last, now))
        return;
    char *sel = agx_k8s_selector(k, AGX_K8S_STATE_CLAIMED, NULL), *path = NULL;
    if (!sel || asprintf(&path, "/api/v1/namespaces/%s/pods?labelSelector=%s", k->ns, sel) < 0) {
        free(sel);
        return;
    }
    int64_t deadline = now + 2000 < deadline_ms ? now + 2000 : deadline_ms;
    if (deadline <= now)
        return;
    agx_k8s_call call = {.method = "GET", .path = path, .deadline_ms = deadline};
    agx_http_response resp;
    agx_error err;
    json_t *doc = NULL, *pod;
    if (agx_k8s_api(k, &call, &resp, &err) == 0 && resp.status == 200)
        doc = json_loads(resp.body, 0, NULL);
    size_t i;
    int64_t wall = agx_clock_wall_ms();
    json_array_foreach(json_object_get(doc, "items"), i, pod) {
        json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
        int64_t expires = agx_label_unix_ms(json_string_value(json_object_get(labels, AGX_LABEL_EXPIRES)));
        if (expires && wall > expires + AGX_K8S_REAP_GRACE_MS && agx_clock_ms() < deadline)
            agx_k8s_pod_delete(k, agx_k8s_str(pod, "metadata.name"),
                               agx_k8s_str(pod, "metadata.uid"), &err);
    }
    json_decref(doc);
    agx_http_response_clear(&resp);
    free(sel);
    free(path);
}

/* ---- the runtime's expiry ---- */

/* POST path to the runtime through the API server's pod proxy (proxy mode). */
static int proxied_post(agx_k8s *k, const agx_sandbox *sb, const char *path_tail,
                        const char *claim_secret, int64_t expiry_ms, int64_t deadline_ms,
                        const char *what, agx_error *err)
{
    const char *url = agx_sandbox_runtime_url(sb);
    size_t n = strlen(k->conn.server);
    if (strncmp(url, k->conn.server, n) != 0)
        return agx_error_set(err, AGX_ERR_INTERNAL, "k8s-pool: runtime URL %s is not below the "
                             "API server %s", url, k->conn.server);
    /* The sandbox's headers carry the API credentials too; the call adds its own. */
    agx_kv *h = agx_runtime_expiry_headers(sb, claim_secret, expiry_ms);
    char *path = NULL;
    if (!h || asprintf(&path, "%s%s", url + n, path_tail) < 0) {
        agx_kv_free(h);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_kv_remove(h, "Authorization");
    /* A proxied exchange is spliced until a side closes: never keep this connection for the API. */
    if (agx_kv_set(h, "Connection", "close")) {
        agx_kv_free(h);
        free(path);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    agx_k8s_call call = {.method = "POST", .path = path, .headers = h, .deadline_ms = deadline_ms,
                         .fresh = 1};
    agx_http_response resp;
    int rc = agx_k8s_api(k, &call, &resp, err);
    if (rc == 0 && resp.status == 409)
        rc = agx_error_set(err, AGX_ERR_CONFLICT, "k8s-pool: %s: the runtime was claimed already",
                           what);
    else if (rc == 0)
        rc = agx_k8s_status_error(&resp, what, err);
    agx_http_response_clear(&resp);
    agx_kv_free(h);
    free(path);
    return rc;
}

int agx_k8s_runtime_extend(agx_k8s *k, const agx_sandbox *sb, int64_t expiry_ms,
                           int64_t deadline_ms, agx_error *err)
{
    if (k->url_kind != AGX_K8S_URL_PROXY)
        return agx_runtime_expiry_extend(sb, expiry_ms, deadline_ms, err);
    return proxied_post(k, sb, AGX_HTTP_PATH_EXPIRY, NULL, expiry_ms, deadline_ms,
                        "extend the runtime's expiry through the pod proxy", err);
}

int agx_k8s_runtime_claim(agx_k8s *k, const agx_sandbox *sb, int64_t expiry_ms,
                          int64_t deadline_ms, agx_error *err)
{
    if (k->url_kind != AGX_K8S_URL_PROXY)
        return agx_runtime_claim(sb, k->claim_secret, expiry_ms, deadline_ms, err);
    return proxied_post(k, sb, AGX_HTTP_PATH_CLAIM, k->claim_secret, expiry_ms, deadline_ms,
                        "claim the runtime through the pod proxy", err);
}
