/* cmd_k8s_pool.c — `agentix k8s-pool manifest`: the Kubernetes objects of a warm pool for the
 * k8s-pool backend (host → backend → API → these pods). A ReplicaSet whose pods carry
 * agentix.dev/pool=<name>, agentix.dev/state=idle (its selector includes state=idle, so a claim's
 * relabelling orphans the pod and the ReplicaSet starts a replacement) and run the bundle's
 * agentix-server on port 8000 in the task image; the bundle reaches /opt/agentix either as an
 * image volume or copied by an init container into an emptyDir. A runtime in claim mode deletes
 * its own pod when its expiry passes (runtime/server/k8s_self.c): the pods run as their own
 * service account and get the downward-API env that needs. Optionally the RBAC the backend needs
 * and what limits the pods' account to deleting itself (a Role and a ValidatingAdmissionPolicy).
 * Printed as YAML (or JSON), ready for `kubectl apply -f -`. */
#include "cli/cli.h"

#include "agentix/backend/labels.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static void k8s_pool_help(FILE *out)
{
    fprintf(out,
            "Usage: agentix k8s-pool manifest --pool NAME --bundle IMAGE --image IMAGE [options]\n\n"
            "Print the objects of a pre-warmed pod pool for the k8s-pool backend (see docs/K8S.md):\n"
            "a ReplicaSet of idle pods running the bundle's agentix-server in the task image.\n\n"
            "Options:\n"
            "  --pool NAME          pool name (label " AGX_K8S_LABEL_POOL "; AGENTIX_K8S_POOL)\n"
            "  --bundle IMAGE       bundle image from `agentix build` (holds /opt/agentix)\n"
            "  --image IMAGE        the pool's default task image (claims with this image are\n"
            "                       the fast path; others swap the image in place)\n"
            "  --replicas N         idle pods to keep warm (default 8)\n"
            "  --namespace NS       namespace (default \"default\")\n"
            "  --bundle-mode MODE   image-volume (default; Kubernetes >= 1.33 image volumes) or\n"
            "                       init-copy (an init container runs the bundle's own `cp`\n"
            "                       — add `tool = /bin/cp` to the bundle — into an emptyDir)\n"
            "  --claim-secret NAME  claims must present key `claim` of this Secret (set in the\n"
            "                       host as AGENTIX_K8S_CLAIM_SECRET); without it the first claim\n"
            "                       wins. By default each runtime waits for its claim\n"
            "                       (AGENTIX_AUTH=claim), which gives it a token of its sandbox's own\n"
            "  --token-secret NAME  instead, one token for the whole pool: AGENTIX_TOKEN from key\n"
            "                       `token` of this Secret (the host's AGENTIX_K8S_RUNTIME_TOKEN)\n"
            "  --rbac               also print the Role and RoleBinding the backend needs, bound\n"
            "                       to service account `agentix` of the namespace, and the pods'\n"
            "                       own service account agentix-pool-NAME with the Role and\n"
            "                       ValidatingAdmissionPolicy that let a pod delete only itself\n"
            "                       (Kubernetes >= 1.30; a claimed pod deletes itself at expiry)\n"
            "  --json               JSON (a v1 List) instead of YAML\n"
            "  --help               this text\n\n"
            "Exit status: 0 printed, 2 usage error.\n");
}

/* ---- a small YAML writer for jansson trees (strings always double-quoted: valid YAML) ---- */

static void yaml_scalar(FILE *out, json_t *v)
{
    if (json_is_string(v)) {
        char *s = json_dumps(v, JSON_ENCODE_ANY);
        fputs(s ? s : "\"\"", out);
        free(s);
    } else if (json_is_integer(v)) {
        fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_boolean(v)) {
        fputs(json_is_true(v) ? "true" : "false", out);
    } else {
        fputs("null", out);
    }
}

static int is_empty_container(json_t *v)
{
    return (json_is_object(v) && json_object_size(v) == 0) || (json_is_array(v) && json_array_size(v) == 0);
}

static void yaml_node(FILE *out, json_t *v, int indent);

static void yaml_value_after_key(FILE *out, json_t *v, int indent)
{
    if (is_empty_container(v)) {
        fputs(json_is_object(v) ? " {}\n" : " []\n", out);
    } else if (json_is_object(v) || json_is_array(v)) {
        fputc('\n', out);
        yaml_node(out, v, json_is_object(v) ? indent + 2 : indent);
    } else {
        fputc(' ', out);
        yaml_scalar(out, v);
        fputc('\n', out);
    }
}

static void yaml_node(FILE *out, json_t *v, int indent)
{
    const char *key;
    json_t *child;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach(v, key, child) {
            fprintf(out, "%*s%s:", indent, "", key);
            yaml_value_after_key(out, child, indent);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, child) {
            fprintf(out, "%*s- ", indent, "");
            if (json_is_object(child) && json_object_size(child)) {
                /* the first key on the dash line, the rest aligned under it */
                int first = 1;
                json_t *c2;
                json_object_foreach(child, key, c2) {
                    fprintf(out, "%*s%s:", first ? 0 : indent + 2, "", key);
                    yaml_value_after_key(out, c2, indent + 2);
                    first = 0;
                }
            } else if (json_is_array(child) && json_array_size(child)) {
                fputc('\n', out);
                yaml_node(out, child, indent + 2);
            } else {
                yaml_scalar(out, child);
                fputc('\n', out);
            }
        }
    }
}

/* ---- the objects ---- */

typedef struct pool_args {
    const char *pool, *bundle, *image, *ns, *mode, *secret, *claim_secret;
    long replicas;
    int rbac, json;
} pool_args;

/* env entry name ← the downward API's fieldPath */
static json_t *field_env(const char *name, const char *path)
{
    return json_pack("{s:s, s:{s:{s:s}}}", "name", name, "valueFrom", "fieldRef", "fieldPath", path);
}

/* Claim mode: a token per sandbox at claim, and the pod deletes itself when its claim's expiry
 * passes (it needs to know which pod it is: the downward API). */
static void claim_env(json_t *env)
{
    json_array_append_new(env, json_pack("{s:s, s:s}", "name", "AGENTIX_AUTH", "value", "claim"));
    json_array_append_new(env, json_pack("{s:s, s:s}", "name", "AGENTIX_K8S_SELF_DELETE", "value", "1"));
    json_array_append_new(env, field_env("AGENTIX_POD_NAME", "metadata.name"));
    json_array_append_new(env, field_env("AGENTIX_POD_NAMESPACE", "metadata.namespace"));
    json_array_append_new(env, field_env("AGENTIX_POD_UID", "metadata.uid"));
}

static void pod_account(const pool_args *a, char *out, size_t cap)
{
    snprintf(out, cap, "agentix-pool-%s", a->pool);
}

static json_t *runtime_container(const pool_args *a)
{
    json_t *env = json_pack("[{s:s, s:s}, {s:s, s:s}]", "name", "AGENTIX_BIND_HOST", "value", "0.0.0.0",
                            "name", "AGENTIX_BIND_PORT", "value", "8000");
    if (a->secret)
        json_array_append_new(env, json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", "AGENTIX_TOKEN",
                                             "valueFrom", "secretKeyRef", "name", a->secret, "key", "token"));
    else /* each runtime gets a token of its sandbox's own when claimed (docs/K8S.md) */
        claim_env(env);
    if (a->claim_secret)
        json_array_append_new(env, json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", "AGENTIX_CLAIM_SECRET",
                                             "valueFrom", "secretKeyRef", "name", a->claim_secret,
                                             "key", "claim"));
    return json_pack(
        "{s:s, s:s, s:[s], s:o, s:[{s:s, s:i}], s:{s:{s:s, s:s}, s:i, s:i}, s:[{s:s, s:s, s:b}]}",
        "name", "runtime", "image", a->image, "command", "/opt/agentix/bin/agentix-server", "env", env,
        "ports", "name", "runtime", "containerPort", 8000, "readinessProbe", "httpGet", "path",
        "/health", "port", "runtime", "periodSeconds", 1, "failureThreshold", 3, "volumeMounts",
        "name", "agentix-bundle", "mountPath", "/opt/agentix", "readOnly", 1);
}

static json_t *pod_spec(const pool_args *a)
{
    json_t *spec = json_pack("{s:[o], s:i}", "containers", runtime_container(a),
                             "terminationGracePeriodSeconds", 5);
    /* Claim mode: the pod's own account, whose token may delete only this pod (rbac()); a
     * pool-wide token's pods need no API access at all. */
    char account[128];
    pod_account(a, account, sizeof account);
    if (!a->secret)
        json_object_set_new(spec, "serviceAccountName", json_string(account));
    json_object_set_new(spec, "automountServiceAccountToken", json_boolean(!a->secret));
    if (strcmp(a->mode, "image-volume") == 0) {
        json_object_set_new(spec, "volumes", json_pack("[{s:s, s:{s:s, s:s}}]", "name", "agentix-bundle",
                                                       "image", "reference", a->bundle, "pullPolicy",
                                                       "IfNotPresent"));
    } else {
        json_object_set_new(spec, "volumes", json_pack("[{s:s, s:{}}]", "name", "agentix-bundle", "emptyDir"));
        json_object_set_new(spec, "initContainers", json_pack(
            "[{s:s, s:s, s:[s, s, s, s], s:[{s:s, s:s}]}]", "name", "agentix-bundle", "image", a->bundle,
            "command", "/opt/agentix/bin/cp", "-a", "/opt/agentix/.", "/agentix-bundle/",
            "volumeMounts", "name", "agentix-bundle", "mountPath", "/agentix-bundle"));
        /* the runtime mounts the copy read-write-free: readOnly stays */
    }
    return spec;
}

static json_t *replicaset(const pool_args *a)
{
    char name[128];
    snprintf(name, sizeof name, "agentix-pool-%s", a->pool);
    json_t *labels = json_pack("{s:s, s:s}", AGX_K8S_LABEL_POOL, a->pool, AGX_K8S_LABEL_STATE,
                               AGX_K8S_STATE_IDLE);
    json_t *rs = json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:i, s:{s:O}, s:{s:{s:O, s:{s:s}}, s:o}}}",
                     "apiVersion", "apps/v1", "kind", "ReplicaSet", "metadata", "name", name,
                     "namespace", a->ns, "labels", AGX_K8S_LABEL_POOL, a->pool, "spec", "replicas",
                     (int)a->replicas, "selector", "matchLabels", labels, "template", "metadata",
                     "labels", labels, "annotations", AGX_K8S_ANNOTATION_BUNDLE, a->bundle, "spec",
                     pod_spec(a));
    json_decref(labels); /* "O" took a reference for each use */
    return rs;
}

/* The pods' own account: RBAC lets it delete pods of the namespace (names are generated, so no
 * resourceNames), and the admission policy narrows that to the pod named in the token itself
 * (the API server puts it in userInfo.extra; the policy API is v1 from Kubernetes 1.30): hostile
 * code in a sandbox that reads the token can at most end its own sandbox. */
static void self_delete_rbac(const pool_args *a, json_t *items)
{
    char account[128], policy[192], user[256], match[384];
    pod_account(a, account, sizeof account);
    snprintf(policy, sizeof policy, "agentix-pool-%s-%s-self-delete", a->ns, a->pool);
    snprintf(user, sizeof user, "system:serviceaccount:%s:%s", a->ns, account);
    snprintf(match, sizeof match, "request.userInfo.username == '%s'", user);
    static const char check[] =
        "has(request.userInfo.extra) && "
        "'authentication.kubernetes.io/pod-name' in request.userInfo.extra && "
        "request.userInfo.extra['authentication.kubernetes.io/pod-name'].exists(n, n == request.name)";
    json_array_append_new(items, json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:[{s:[s], s:[s], s:[s]}]}", "apiVersion",
        "rbac.authorization.k8s.io/v1", "kind", "Role", "metadata", "name", policy, "namespace", a->ns,
        "rules", "apiGroups", "", "resources", "pods", "verbs", "delete"));
    json_array_append_new(items, json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "apiVersion",
        "rbac.authorization.k8s.io/v1", "kind", "RoleBinding", "metadata", "name", policy, "namespace",
        a->ns, "roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "Role", "name", policy,
        "subjects", "kind", "ServiceAccount", "name", account, "namespace", a->ns));
    json_array_append_new(items, json_pack(
        "{s:s, s:s, s:{s:s}, s:{s:s, s:{s:[{s:[s], s:[s], s:[s], s:[s]}]}, s:[{s:s, s:s}],"
        " s:[{s:s, s:s, s:s}]}}",
        "apiVersion", "admissionregistration.k8s.io/v1", "kind", "ValidatingAdmissionPolicy",
        "metadata", "name", policy, "spec", "failurePolicy", "Fail", "matchConstraints",
        "resourceRules", "apiGroups", "", "apiVersions", "v1", "operations", "DELETE", "resources",
        "pods", "matchConditions", "name", "pool-pod-account", "expression", match, "validations",
        "expression", check, "message", "a pool pod's service account may delete only its own pod",
        "reason", "Forbidden"));
    json_array_append_new(items, json_pack(
        "{s:s, s:s, s:{s:s}, s:{s:s, s:[s], s:{s:{s:{s:s}}}}}", "apiVersion",
        "admissionregistration.k8s.io/v1", "kind", "ValidatingAdmissionPolicyBinding", "metadata",
        "name", policy, "spec", "policyName", policy, "validationActions", "Deny", "matchResources",
        "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name", a->ns));
}

/* The pods' own account (claim mode; the ReplicaSet names it): no token mounted elsewhere by
 * default — the pod template asks for it. */
static json_t *pod_service_account(const pool_args *a)
{
    char account[128];
    pod_account(a, account, sizeof account);
    return json_pack("{s:s, s:s, s:{s:s, s:s}, s:b}", "apiVersion", "v1", "kind", "ServiceAccount",
                     "metadata", "name", account, "namespace", a->ns, "automountServiceAccountToken", 0);
}

static void rbac(const pool_args *a, json_t *items)
{
    char name[128];
    snprintf(name, sizeof name, "agentix-pool-%s", a->pool);
    json_array_append_new(items, json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:[{s:[s], s:[s], s:[s, s, s, s, s]}, {s:[s], s:[s], s:[s, s]}]}",
        "apiVersion", "rbac.authorization.k8s.io/v1", "kind", "Role", "metadata", "name", name,
        "namespace", a->ns, "rules", "apiGroups", "", "resources", "pods", "verbs", "get", "list",
        "watch", "patch", "delete", "apiGroups", "", "resources", "pods/proxy", "verbs", "get", "create"));
    json_array_append_new(items, json_pack(
        "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s}, s:[{s:s, s:s, s:s}]}", "apiVersion",
        "rbac.authorization.k8s.io/v1", "kind", "RoleBinding", "metadata", "name", name, "namespace",
        a->ns, "roleRef", "apiGroup", "rbac.authorization.k8s.io", "kind", "Role", "name", name,
        "subjects", "kind", "ServiceAccount", "name", "agentix", "namespace", a->ns));
    if (!a->secret)
        self_delete_rbac(a, items);
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 50 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

static int parse(int argc, char **argv, pool_args *a)
{
    const char *cmd = "k8s-pool manifest", *reps = NULL;
    for (int i = 2; i < argc; i++) {
        int m;
        if ((m = agx_cli_opt(cmd, argc, argv, &i, "--pool", &a->pool)) ||
            (m = agx_cli_opt(cmd, argc, argv, &i, "--bundle", &a->bundle)) ||
            (m = agx_cli_opt(cmd, argc, argv, &i, "--image", &a->image)) ||
            (m = agx_cli_opt(cmd, argc, argv, &i, "--namespace", &a->ns)) ||
            (m = agx_cli_opt(cmd, argc, argv, &i, "--bundle-mode", &a->mode)) ||
            (m = agx_cli_opt(cmd, argc, argv, &i, "--token-secret", &a->secret)) ||
            (m = agx_cli_opt(cmd, argc, argv, &i, "--claim-secret", &a->claim_secret)) ||
            (m = agx_cli_opt(cmd, argc, argv, &i, "--replicas", &reps))) {
            if (m < 0)
                return AGX_CLI_USAGE;
        } else if (strcmp(argv[i], "--rbac") == 0) {
            a->rbac = 1;
        } else if (strcmp(argv[i], "--json") == 0) {
            a->json = 1;
        } else {
            return agx_cli_usage_error(cmd, "unknown argument '%s' (see --help)", argv[i]);
        }
    }
    if (!a->pool || !a->bundle || !a->image)
        return agx_cli_usage_error(cmd, "--pool, --bundle and --image are required");
    if (a->secret && a->claim_secret)
        return agx_cli_usage_error(cmd, "--token-secret (one token for the pool) and --claim-secret "
                                        "(a token per sandbox, set at claim) exclude each other");
    if (!valid_name(a->pool) || !valid_name(a->ns))
        return agx_cli_usage_error(cmd, "pool and namespace names are 1-50 of [a-z0-9-], "
                                        "alphanumeric at both ends");
    char *end = NULL;
    a->replicas = reps ? strtol(reps, &end, 10) : 8;
    if (reps && (*end || a->replicas < 0 || a->replicas > 10000))
        return agx_cli_usage_error(cmd, "--replicas must be 0..10000, got '%s'", reps);
    if (strcmp(a->mode, "image-volume") != 0 && strcmp(a->mode, "init-copy") != 0)
        return agx_cli_usage_error(cmd, "--bundle-mode is image-volume or init-copy, got '%s'", a->mode);
    return AGX_CLI_OK;
}

static int k8s_pool_run(int argc, char **argv)
{
    if (agx_cli_wants_help(argc, argv) || argc < 2 || strcmp(argv[1], "manifest") != 0) {
        k8s_pool_help(argc >= 2 && strcmp(argv[1], "manifest") != 0 && !agx_cli_wants_help(argc, argv)
                          ? stderr
                          : stdout);
        return agx_cli_wants_help(argc, argv) ? AGX_CLI_OK : AGX_CLI_USAGE;
    }
    pool_args a = {.ns = "default", .mode = "image-volume"};
    int rc = parse(argc, argv, &a);
    if (rc != AGX_CLI_OK)
        return rc;
    json_t *items = json_array();
    json_array_append_new(items, replicaset(&a));
    if (!a.secret)
        json_array_append_new(items, pod_service_account(&a));
    if (a.rbac)
        rbac(&a, items);
    if (a.json)
        return agx_cli_print_json(json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "List",
                                            "items", items), 0);
    size_t i;
    json_t *doc;
    printf("# agentix k8s-pool: pool '%s' (bundle %s, task image %s) — kubectl apply -f -\n", a.pool,
           a.bundle, a.image);
    json_array_foreach(items, i, doc) {
        if (i)
            printf("---\n");
        yaml_node(stdout, doc, 0);
    }
    json_decref(items);
    return fflush(stdout) == 0 ? AGX_CLI_OK : AGX_CLI_ERROR;
}

const agx_cli_command agx_cli_cmd_k8s_pool = {
    .name = "k8s-pool",
    .summary = "print the Kubernetes objects of a warm pod pool (k8s-pool backend)",
    .run = k8s_pool_run,
    .help = k8s_pool_help,
};
