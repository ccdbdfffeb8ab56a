/* k8s_pod.c — reading Pod objects for the claim (host → backend → pod): is a pod claimable, has
 * its new container come up after an image swap, did the image pull fail, what runtime_url
 * reaches it, which sandbox state it is in; plus label checks and selectors. */
#include "backends/k8s-pool/k8s_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *agx_k8s_str(json_t *obj, const char *path)
{
    char key[128];
    while (obj && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key)
            return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        obj = json_object_get(obj, key);
        path += n + (path[n] == '.');
    }
    return json_string_value(obj);
}

static json_t *find_named(json_t *arr, const char *name, size_t *index)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        const char *n = json_string_value(json_object_get(v, "name"));
        if (n && strcmp(n, name) == 0) {
            if (index)
                *index = i;
            return v;
        }
    }
    return NULL;
}

json_t *agx_k8s_container_spec(json_t *pod, const char *container, size_t *index)
{
    return find_named(json_object_get(json_object_get(pod, "spec"), "containers"), container, index);
}

json_t *agx_k8s_container_status(json_t *pod, const char *container)
{
    return find_named(json_object_get(json_object_get(pod, "status"), "containerStatuses"),
                      container, NULL);
}

int agx_k8s_pod_ready(json_t *pod)
{
    json_t *conds = json_object_get(json_object_get(pod, "status"), "conditions"), *c;
    size_t i;
    json_array_foreach(conds, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        const char *s = json_string_value(json_object_get(c, "status"));
        if (t && s && strcmp(t, "Ready") == 0)
            return strcmp(s, "True") == 0;
    }
    return 0;
}

/* Idle, Ready, not terminating, with an IP, running our container: worth a claim attempt. */
int agx_k8s_pod_claimable(json_t *pod, const char *container)
{
    json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
    const char *state = json_string_value(json_object_get(labels, AGX_K8S_LABEL_STATE));
    return state && strcmp(state, AGX_K8S_STATE_IDLE) == 0 && agx_k8s_pod_ready(pod) &&
           !json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp") &&
           agx_k8s_str(pod, "status.podIP") && agx_k8s_container_spec(pod, container, NULL);
}

/* Docker-style reference normalisation: "python:3" == "docker.io/library/python:3". */
static void normalise_image(const char *in, char *out, size_t cap)
{
    const char *slash = strchr(in, '/');
    int has_registry = slash && (memchr(in, '.', (size_t)(slash - in)) ||
                                 memchr(in, ':', (size_t)(slash - in)) ||
                                 strncmp(in, "localhost/", 10) == 0);
    const char *last = strrchr(in, '/');
    const char *name = last ? last + 1 : in;
    int tagged = strchr(name, ':') || strchr(in, '@');
    snprintf(out, cap, "%s%s%s%s", has_registry ? "" : "docker.io/",
             has_registry || slash ? "" : "library/", in, tagged ? "" : ":latest");
}

int agx_k8s_image_equal(const char *a, const char *b)
{
    char na[1024], nb[1024];
    normalise_image(a, na, sizeof na);
    normalise_image(b, nb, sizeof nb);
    return strcmp(na, nb) == 0;
}

const char *agx_k8s_container_failure(json_t *cs, const char **message)
{
    static const char *const fatal[] = {"ErrImagePull", "ImagePullBackOff", "CrashLoopBackOff",
                                        "InvalidImageName", "ErrImageNeverPull",
                                        "CreateContainerConfigError", "CreateContainerError",
                                        "RunContainerError"};
    json_t *waiting = json_object_get(json_object_get(cs, "state"), "waiting");
    const char *reason = json_string_value(json_object_get(waiting, "reason"));
    *message = json_string_value(json_object_get(waiting, "message"));
    for (size_t i = 0; reason && i < sizeof fatal / sizeof *fatal; i++)
        if (strcmp(reason, fatal[i]) == 0)
            return reason;
    return NULL;
}

static long container_port(agx_k8s *k, json_t *pod)
{
    json_t *c = agx_k8s_container_spec(pod, k->container, NULL), *p, *first = NULL;
    size_t i;
    json_array_foreach(json_object_get(c, "ports"), i, p) {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (name && strcmp(name, "runtime") == 0)
            return (long)json_integer_value(json_object_get(p, "containerPort"));
        if (!first)
            first = p;
    }
    return first ? (long)json_integer_value(json_object_get(first, "containerPort"))
                 : AGX_K8S_DEFAULT_PORT;
}

/* Expands {ip} {port} {name} {namespace} {pool} in a template. */
static int expand(const char *tpl, json_t *pod, const char *ip, long port, agx_k8s *k, char **out)
{
    char portbuf[16];
    snprintf(portbuf, sizeof portbuf, "%ld", port);
    const char *name = agx_k8s_str(pod, "metadata.name");
    const char *keys[] = {"{ip}", "{port}", "{name}", "{namespace}", "{pool}"};
    const char *vals[] = {ip, portbuf, name, k->ns, k->pool};
    size_t cap = strlen(tpl) + 1;
    for (size_t i = 0; i < 5; i++)
        cap += 4 * (vals[i] ? strlen(vals[i]) : 0) + 8;
    char *buf = malloc(cap), *o = buf;
    if (!buf)
        return -1;
    for (const char *s = tpl; *s;) {
        size_t i = 0;
        for (; i < 5; i++)
            if (strncmp(s, keys[i], strlen(keys[i])) == 0)
                break;
        if (i < 5) {
            const char *v = vals[i] ? vals[i] : "";
            int v6 = i == 0 && strchr(v, ':');
            o += sprintf(o, v6 ? "[%s]" : "%s", v);
            s += strlen(keys[i]);
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    *out = buf;
    return 0;
}

int agx_k8s_runtime_url(agx_k8s *k, json_t *pod, char **out, agx_error *err)
{
    const char *ip = agx_k8s_str(pod, "status.podIP");
    long port = container_port(k, pod);
    const char *tpl = k->url_kind == AGX_K8S_URL_TEMPLATE ? k->url_template
                      : k->url_kind == AGX_K8S_URL_PROXY
                          ? NULL
                          : "http://{ip}:{port}";
    if (!tpl) {
        char *proxy = NULL;
        if (asprintf(&proxy, "%s/api/v1/namespaces/{namespace}/pods/{name}:{port}/proxy",
                     k->conn.server) < 0)
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        int rc = expand(proxy, pod, ip, port, k, out);
        free(proxy);
        return rc ? agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory") : 0;
    }
    if (!ip && strstr(tpl, "{ip}"))
        return agx_error_set(err, AGX_ERR_BACKEND, "pod %s has no IP yet",
                             agx_k8s_str(pod, "metadata.name"));
    return expand(tpl, pod, ip, port, k, out) ? agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory")
                                              : 0;
}

agx_sandbox_state agx_k8s_pod_state(json_t *pod, const char *container)
{
    const char *phase = agx_k8s_str(pod, "status.phase"), *msg;
    if (json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp"))
        return AGX_SANDBOX_STOPPED;
    if (!phase || strcmp(phase, "Pending") == 0)
        return AGX_SANDBOX_CREATING;
    if (strcmp(phase, "Succeeded") == 0)
        return AGX_SANDBOX_STOPPED;
    if (strcmp(phase, "Failed") == 0 ||
        agx_k8s_container_failure(agx_k8s_container_status(pod, container), &msg))
        return AGX_SANDBOX_ERROR;
    if (strcmp(phase, "Running") == 0)
        return agx_k8s_pod_ready(pod) ? AGX_SANDBOX_RUNNING : AGX_SANDBOX_CREATING;
    return AGX_SANDBOX_UNKNOWN;
}

/* Label keys [prefix/]name and values as Kubernetes validates them; values also keep selectors
 * we build from them unambiguous. */
static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 63 || !isalnum((unsigned char)s[0]) || !isalnum((unsigned char)s[n - 1]))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
            return 0;
    return 1;
}

int agx_k8s_label_ok(const char *key, const char *value)
{
    const char *slash = strchr(key, '/');
    if (slash) {
        size_t pl = (size_t)(slash - key);
        if (pl == 0 || pl > 253)
            return 0;
        for (size_t i = 0; i < pl; i++)
            if (!isalnum((unsigned char)key[i]) && key[i] != '-' && key[i] != '.')
                return 0;
        key = slash + 1;
    }
    return name_ok(key, strlen(key)) && (!*value || name_ok(value, strlen(value)));
}

char *agx_k8s_pointer_escape(const char *s)
{
    char *out = malloc(strlen(s) * 2 + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++) {
        if (*s == '~' || *s == '/') {
            *o++ = '~';
            *o++ = *s == '~' ? '0' : '1';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

/* labelSelector=pool=P,state=S[,k=v…], percent-encoded for a query. */
char *agx_k8s_selector(agx_k8s *k, const char *state, const agx_kv *extra)
{
    size_t cap = strlen(k->pool) + 128;
    for (size_t i = 0; extra && i < agx_kv_count(extra); i++)
        cap += strlen(agx_kv_key_at(extra, i)) + strlen(agx_kv_value_at(extra, i)) + 2;
    char *sel = malloc(cap);
    if (!sel)
        return NULL;
    int n = snprintf(sel, cap, AGX_K8S_LABEL_POOL "=%s", k->pool);
    if (state)
        n += snprintf(sel + n, cap - (size_t)n, "," AGX_K8S_LABEL_STATE "=%s", state);
    for (size_t i = 0; extra && i < agx_kv_count(extra); i++)
        n += snprintf(sel + n, cap - (size_t)n, ",%s=%s", agx_kv_key_at(extra, i),
                      agx_kv_value_at(extra, i));
    char *esc = agx_http_escape(sel);
    free(sel);
    return esc;
}
