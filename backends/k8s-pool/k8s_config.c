/* k8s_config.c — where the backend finds its API server and credentials (host → backend →
 * Kubernetes API): AGENTIX_K8S_KUBECONFIG, else the files of $KUBECONFIG merged the client-go way
 * (for each map key — a cluster, user or context name, and current-context — the first file to
 * set it wins; relative paths resolve against the file's folder), else ~/.kube/config, else the
 * in-cluster service account (KUBERNETES_SERVICE_HOST/PORT, token file re-read as it rotates). */
#include "backends/k8s-pool/k8s_internal.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* ---- small helpers ---- */

int agx_k8s_base64_decode(const char *in, char **out, size_t *len)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    char *buf = malloc(n / 4 * 3 + 4);
    if (!buf)
        return -1;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = in[i];
        if (ch == '=' || ch == '\n' || ch == '\r' || ch == ' ')
            continue;
        const char *p = strchr(tbl, ch);
        if (!p || !ch) {
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (unsigned)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    buf[o] = '\0';
    *out = buf;
    *len = o;
    return 0;
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static char *resolve_path(const char *dir, const char *p)
{
    char *out = NULL;
    if (p[0] == '/' || !dir)
        return strdup(p);
    return asprintf(&out, "%s/%s", dir, p) < 0 ? NULL : out;
}

/* The "-data" (base64) form wins over the file form, as in client-go and the Python client. */
static int load_pem(json_t *entry, const char *data_key, const char *file_key, char **pem,
                    size_t *len, agx_error *err)
{
    const char *data = jstr(entry, data_key), *file = jstr(entry, file_key);
    if (data) {
        if (agx_k8s_base64_decode(data, pem, len) != 0)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "kubeconfig: %s is not base64",
                                 data_key);
        return 0;
    }
    if (!file)
        return 0;
    char *path = resolve_path(jstr(entry, "_dir"), file);
    if (!path)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = agx_file_read(path, AGX_K8S_MAX_FILE, 0, pem, len, err);
    free(path);
    return rc;
}

/* Prefixes err's message with the file it is about (copied first: source and target overlap). */
static int in_file(agx_error *err, const char *path, int rc)
{
    char msg[sizeof err->message];
    snprintf(msg, sizeof msg, "%s", err->message);
    agx_error_set(err, rc, "%s: %s", path, msg);
    return rc;
}

/* ---- merging kubeconfig files ---- */

typedef struct merged {
    json_t *clusters, *users, *contexts; /* name → entry (with "_dir") */
    char *current;
    int files;
} merged;

static int merge_list(json_t *doc, const char *list, const char *inner, json_t *into,
                      const char *dir, agx_error *err)
{
    json_t *arr = json_object_get(doc, list), *item;
    size_t i;
    if (arr && !json_is_array(arr))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "kubeconfig: %s is not a list", list);
    json_array_foreach(arr, i, item) {
        const char *name = jstr(item, "name");
        json_t *body = json_object_get(item, inner);
        if (!name || !json_is_object(body))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "kubeconfig: an entry of %s lacks a name or its %s", list, inner);
        if (json_object_get(into, name))
            continue; /* first file wins */
        json_t *copy = json_deep_copy(body);
        if (!copy || (dir && json_object_set_new(copy, "_dir", json_string(dir))) ||
            json_object_set_new(into, name, copy))
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    return 0;
}

static int merge_file(merged *m, const char *path, int must_exist, agx_error *err)
{
    struct stat st;
    if (!must_exist && stat(path, &st) != 0)
        return 0; /* client-go skips missing files listed in $KUBECONFIG */
    char *text = NULL;
    size_t len = 0;
    int rc = agx_file_read(path, AGX_K8S_MAX_FILE, 0, &text, &len, err);
    if (rc)
        return rc;
    json_t *doc = NULL;
    rc = agx_k8s_yaml_parse(text, len, &doc, err);
    free(text);
    if (rc)
        return in_file(err, path, rc);
    char *copy = strdup(path);
    const char *dir = copy ? dirname(copy) : NULL;
    if (!(rc = merge_list(doc, "clusters", "cluster", m->clusters, dir, err)) &&
        !(rc = merge_list(doc, "users", "user", m->users, dir, err)) &&
        !(rc = merge_list(doc, "contexts", "context", m->contexts, dir, err))) {
        const char *cur = jstr(doc, "current-context");
        if (!m->current && cur && *cur && !(m->current = strdup(cur)))
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    if (rc)
        in_file(err, path, rc);
    free(copy);
    json_decref(doc);
    m->files++;
    return rc;
}

/* ---- from a merged config to a connection ---- */

static int set_server(agx_k8s_conn *c, const char *server, const char *tls_name, agx_error *err)
{
    size_t n = strlen(server);
    while (n && server[n - 1] == '/')
        n--;
    if (strncmp(server, "https://", 8) != 0 && strncmp(server, "http://", 7) != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s: server '%s' must be an http:// or https:// URL", c->origin, server);
    if (!(c->server = strndup(server, n)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!tls_name || !*tls_name)
        return 0;
    /* tls-server-name: the URL names the certificate's host, CONNECT_TO reaches the real one. */
    const char *hp = strstr(c->server, "://") + 3;
    size_t hl = strcspn(hp, "/");
    const char *colon = memrchr(hp, ':', hl);
    const char *port = colon && !memchr(colon, ']', (size_t)(hp + hl - colon)) ? colon + 1 : "443";
    int plen = colon ? (int)(hp + hl - port) : 3;
    int host_len = colon ? (int)(colon - hp) : (int)hl;
    char *url = NULL, *rule = NULL;
    if (asprintf(&url, "https://%s:%.*s%s", tls_name, plen, port, hp + hl) < 0 ||
        asprintf(&rule, "%s:%.*s:%.*s:%.*s", tls_name, plen, port, host_len, hp, plen, port) < 0) {
        free(url);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    free(c->server);
    c->server = url;
    c->connect_to = rule;
    return 0;
}

static int load_exec(agx_k8s_conn *c, json_t *ex, json_t *cluster, agx_error *err)
{
    const char *cmd = jstr(ex, "command"), *api = jstr(ex, "apiVersion");
    if (!cmd || !api)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s: users[].user.exec needs command and apiVersion", c->origin);
    json_t *args = json_object_get(ex, "args"), *env = json_object_get(ex, "env"), *v;
    size_t i, nargs = json_array_size(args);
    agx_k8s_exec *e = calloc(1, sizeof *e);
    if (!e || !(e->argv = calloc(nargs + 2, sizeof *e->argv)) || !(e->env = agx_kv_new()))
        goto oom;
    c->exec = e;
    if (!(e->argv[0] = strdup(cmd)) || !(e->api_version = strdup(api)))
        goto oom;
    json_array_foreach(args, i, v) {
        if (!json_is_string(v) || !(e->argv[i + 1] = strdup(json_string_value(v))))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s: exec args must be strings",
                                 c->origin);
    }
    json_array_foreach(env, i, v) {
        if (!jstr(v, "name") || !jstr(v, "value"))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "%s: exec env entries need name and value", c->origin);
        if (agx_kv_set(e->env, jstr(v, "name"), jstr(v, "value")))
            goto oom;
    }
    if (json_is_true(json_object_get(ex, "provideClusterInfo")) ||
        (jstr(ex, "provideClusterInfo") && strcmp(jstr(ex, "provideClusterInfo"), "true") == 0)) {
        json_t *ci = json_pack("{s:s?, s:s?}", "server", jstr(cluster, "server"),
                               "certificate-authority-data", jstr(cluster, "certificate-authority-data"));
        e->cluster_json = ci ? json_dumps(ci, JSON_COMPACT) : NULL;
        json_decref(ci);
        if (!e->cluster_json)
            goto oom;
    }
    return 0;
oom:
    if (e && !c->exec) {
        free(e->argv);
        free(e);
    }
    return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
}

static int is_true(json_t *v)
{
    return json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0);
}

static int load_user(agx_k8s_conn *c, json_t *user, json_t *cluster, agx_error *err)
{
    int rc;
    if (json_object_get(user, "auth-provider"))
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "%s: the legacy auth-provider is not supported; use an exec plugin "
                             "(e.g. gke-gcloud-auth-plugin, kubelogin) or a token", c->origin);
    if ((rc = load_pem(user, "client-certificate-data", "client-certificate", &c->cert_pem,
                       &c->cert_len, err)) ||
        (rc = load_pem(user, "client-key-data", "client-key", &c->key_pem, &c->key_len, err)))
        return rc;
    if (!c->cert_pem != !c->key_pem)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s: a client certificate needs its key (and the key its certificate)",
                             c->origin);
    const char *token = jstr(user, "token"), *tfile = jstr(user, "tokenFile");
    const char *name = jstr(user, "username"), *pass = jstr(user, "password");
    if (token && !(c->token = strdup(token)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!token && tfile && !(c->token_file = resolve_path(jstr(user, "_dir"), tfile)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (name && pass && asprintf(&c->basic, "%s:%s", name, pass) < 0)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    json_t *ex = json_object_get(user, "exec");
    if (json_is_object(ex) && (rc = load_exec(c, ex, cluster, err)))
        return rc;
    return 0;
}

static int from_merged(agx_k8s_conn *c, merged *m, const char *context, agx_error *err)
{
    const char *name = context && *context ? context : m->current;
    if (!name)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s: no current-context; set one or AGENTIX_K8S_CONTEXT", c->origin);
    json_t *ctx = json_object_get(m->contexts, name);
    if (!ctx)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s: no context named '%s'", c->origin,
                             name);
    const char *cname = jstr(ctx, "cluster"), *uname = jstr(ctx, "user"), *ns = jstr(ctx, "namespace");
    json_t *cluster = cname ? json_object_get(m->clusters, cname) : NULL;
    json_t *user = uname ? json_object_get(m->users, uname) : NULL;
    if (!cluster || !jstr(cluster, "server"))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s: context '%s' names no cluster with a server", c->origin, name);
    if (ns && !(c->namespace = strdup(ns)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    c->insecure = is_true(json_object_get(cluster, "insecure-skip-tls-verify"));
    int rc;
    if ((rc = set_server(c, jstr(cluster, "server"), jstr(cluster, "tls-server-name"), err)) ||
        (rc = load_pem(cluster, "certificate-authority-data", "certificate-authority", &c->ca_pem,
                       &c->ca_len, err)))
        return rc;
    if (user && (rc = load_user(c, user, cluster, err)))
        return rc;
    return 0;
}

static int load_kubeconfig(agx_k8s_conn *c, const char *paths, int explicit_path,
                           const char *context, agx_error *err)
{
    merged m = {json_object(), json_object(), json_object(), NULL, 0};
    char *list = strdup(paths);
    int rc = 0;
    if (!m.clusters || !m.users || !m.contexts || !list)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    char *save = NULL;
    for (char *p = list ? strtok_r(list, ":", &save) : NULL; !rc && p; p = strtok_r(NULL, ":", &save))
        rc = merge_file(&m, p, explicit_path, err);
    if (!rc && m.files == 0)
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "none of the files in %s exists", c->origin);
    if (!rc)
        rc = from_merged(c, &m, context, err);
    free(list);
    free(m.current);
    json_decref(m.clusters);
    json_decref(m.users);
    json_decref(m.contexts);
    return rc;
}

static int load_in_cluster(agx_k8s_conn *c, agx_error *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    const char *dir = getenv("AGENTIX_K8S_SERVICEACCOUNT_DIR");
    if (!dir || !*dir)
        dir = SA_DIR;
    char *url = NULL, *ca = NULL, *nsfile = NULL, *ns = NULL;
    int v6 = strchr(host, ':') != NULL, rc = 0;
    if (asprintf(&url, v6 ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0 ||
        asprintf(&c->token_file, "%s/token", dir) < 0 || asprintf(&ca, "%s/ca.crt", dir) < 0 ||
        asprintf(&nsfile, "%s/namespace", dir) < 0) {
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if ((rc = set_server(c, url, NULL, err)) ||
        (rc = agx_file_read(ca, AGX_K8S_MAX_FILE, 0, &c->ca_pem, &c->ca_len, err)))
        goto out;
    if (agx_file_read(nsfile, 256, 0, &ns, NULL, NULL) == 0) {
        ns[strcspn(ns, "\r\n")] = '\0';
        if (*ns)
            c->namespace = strdup(ns);
    }
out:
    free(url);
    free(ca);
    free(nsfile);
    free(ns);
    return rc;
}

int agx_k8s_conn_load(agx_k8s_conn *c, const char *context, agx_error *err)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    const char *explicit_path = getenv("AGENTIX_K8S_KUBECONFIG"), *env = getenv("KUBECONFIG");
    const char *home = getenv("HOME");
    char *def = NULL;
    struct stat st;
    int rc;
    if (explicit_path && *explicit_path) {
        c->origin = strdup("AGENTIX_K8S_KUBECONFIG");
        rc = load_kubeconfig(c, explicit_path, 1, context, err);
    } else if (env && *env) {
        c->origin = strdup("$KUBECONFIG");
        rc = load_kubeconfig(c, env, 0, context, err);
    } else if (home && asprintf(&def, "%s/.kube/config", home) >= 0 && stat(def, &st) == 0) {
        c->origin = strdup(def);
        rc = load_kubeconfig(c, def, 1, context, err);
    } else if (getenv("KUBERNETES_SERVICE_HOST") && getenv("KUBERNETES_SERVICE_PORT")) {
        c->origin = strdup("in-cluster service account");
        rc = load_in_cluster(c, err);
    } else {
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                           "k8s-pool: no Kubernetes API configured: set AGENTIX_K8S_KUBECONFIG or "
                           "KUBECONFIG, create ~/.kube/config, or run in a pod "
                           "(KUBERNETES_SERVICE_HOST/PORT)");
    }
    free(def);
    if (rc)
        agx_k8s_conn_clear(c);
    return rc;
}

static void exec_free(agx_k8s_exec *e)
{
    if (!e)
        return;
    for (size_t i = 0; e->argv && e->argv[i]; i++)
        free(e->argv[i]);
    free(e->argv);
    agx_kv_free(e->env);
    free(e->api_version);
    free(e->cluster_json);
    free(e);
}

void agx_k8s_conn_clear(agx_k8s_conn *c)
{
    free(c->server);
    free(c->ca_pem);
    free(c->cert_pem);
    free(c->key_pem);
    free(c->connect_to);
    free(c->token);
    free(c->token_file);
    free(c->basic);
    exec_free(c->exec);
    free(c->namespace);
    free(c->origin);
    free(c->cached_token);
    free(c->exec_cert);
    free(c->exec_key);
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
}
