/* k8s_internal.h — shared declarations of the k8s-pool backend (host → backend → Kubernetes API →
 * pre-warmed pod running agentix-server): the connection (server, TLS, credentials), the API
 * request helper, kubeconfig/YAML loading, pod inspection and the claim. */
#ifndef AGX_K8S_INTERNAL_H
#define AGX_K8S_INTERNAL_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "agentix/backend/toolkit.h"
#include "agentix/deployment.h"
#include "agentix/error.h"

#define AGX_K8S_MAX_FILE (1u << 20)     /* kubeconfig, token and CA files */
#define AGX_K8S_MAX_LIST (64u << 20)    /* a PodList */
#define AGX_K8S_MAX_EVENT (4u << 20)    /* one watch event line */
#define AGX_K8S_DEFAULT_PORT 8000
#define AGX_K8S_REAP_EVERY_MS 30000     /* a backend instance reaps expired claimed pods this often */
#define AGX_K8S_REAP_GRACE_MS 10000     /* an expiry counts as passed this long after it */

/* ---- connection and credentials (k8s_config.c, k8s_auth.c) ---- */

typedef struct agx_k8s_exec {
    char **argv;      /* command + args, NULL-terminated */
    agx_kv *env;      /* extra environment */
    char *api_version;
    char *cluster_json; /* ExecCredential spec.cluster when provideClusterInfo, else NULL */
} agx_k8s_exec;

typedef struct agx_k8s_conn {
    char *server;     /* "https://host:port" without trailing slash */
    char *ca_pem;
    size_t ca_len;
    char *cert_pem, *key_pem;
    size_t cert_len, key_len;
    int insecure;
    char *connect_to; /* curl CONNECT_TO rule for tls-server-name, NULL = none */
    char *token;      /* static bearer token */
    char *token_file; /* re-read while it rotates */
    char *basic;      /* "user:password" */
    agx_k8s_exec *exec;
    char *namespace;  /* from the context or the service account */
    char *origin;     /* where this came from, for messages */

    pthread_mutex_t mu; /* guards the cached rotating credentials below */
    char *cached_token;
    int64_t cached_until_ms; /* monotonic; 0 = never loaded */
    char *exec_cert, *exec_key;
} agx_k8s_conn;

/* One request's credentials, copied so a rotation meanwhile cannot free them under the request. */
typedef struct agx_k8s_cred {
    char *authorization; /* header value or NULL */
    char *cert, *key;    /* exec-issued client cert/key (PEM) or NULL: use the conn's */
} agx_k8s_cred;

/* Resolves the connection: AGENTIX_K8S_KUBECONFIG, $KUBECONFIG (merged), ~/.kube/config, else
 * in-cluster. context may be NULL (current-context). */
int agx_k8s_conn_load(agx_k8s_conn *c, const char *context, agx_error *err);
void agx_k8s_conn_clear(agx_k8s_conn *c);
int agx_k8s_cred_get(agx_k8s_conn *c, int force_refresh, agx_k8s_cred *out, agx_error *err);
void agx_k8s_cred_clear(agx_k8s_cred *cr);

/* YAML (or JSON) text → a jansson tree; scalars stay strings. Bounded in size and depth. */
int agx_k8s_yaml_parse(const char *text, size_t len, json_t **out, agx_error *err);
int agx_k8s_base64_decode(const char *in, char **out, size_t *len);

/* ---- the backend instance ---- */

typedef enum { AGX_K8S_URL_POD_IP, AGX_K8S_URL_PROXY, AGX_K8S_URL_TEMPLATE } agx_k8s_url_kind;

typedef struct agx_k8s {
    agx_k8s_conn conn;
    char *ns, *pool, *container, *url_template, *runtime_token;
    char *claim_secret; /* $AGENTIX_K8S_CLAIM_SECRET: what claims of claim-mode runtimes present */
    agx_k8s_url_kind url_kind;
    agx_http_share *share; /* kept-alive API connections: a claim costs no TLS handshake */
    _Atomic int64_t reaped_at; /* agx_clock_ms() of the last reap of expired claimed pods */
} agx_k8s;

/* ---- API requests (k8s_api.c) ---- */

typedef struct agx_k8s_call {
    const char *method;
    const char *path;         /* "/api/v1/…" with query */
    const char *content_type; /* with a body */
    const char *body;
    const agx_kv *headers;    /* extra request headers, may be NULL */
    int fresh;                /* a connection of its own, not the instance's kept-alive ones */
    int64_t deadline_ms;      /* agx_clock_ms() bound; 0 = default timeout */
    size_t max_body;
    agx_http_sink_fn sink;
    void *sink_user;
    int attempts;             /* out: attempts made */
} agx_k8s_call;

/* Performs the call with credentials, TLS and retries (429/5xx with backoff and Retry-After;
 * one credential refresh on 401). resp->status says how it ended. */
int agx_k8s_api(agx_k8s *k, agx_k8s_call *call, agx_http_response *resp, agx_error *err);
/* err from a non-2xx response, naming what failed and the API's Status message. */
int agx_k8s_status_error(const agx_http_response *resp, const char *what, agx_error *err);

/* Watch: the sink splits newline-delimited events and hands each parsed one to fn; fn returns 0
 * to go on, 1 when done, 2 when the watch expired (410: relist), or a negative error. The watch
 * returns what fn returned, 2 for an HTTP 410 or a dropped stream (re-read, then watch again), or
 * 0 when the stream ended without an answer. */
typedef int (*agx_k8s_event_fn)(const char *type, json_t *object, void *user, agx_error *err);
int agx_k8s_watch(agx_k8s *k, const char *query, int64_t deadline_ms, agx_k8s_event_fn fn,
                  void *user, agx_error *err);

/* ---- pods (k8s_pod.c) ---- */

const char *agx_k8s_str(json_t *obj, const char *path); /* "a.b.c" dotted lookup of a string */
json_t *agx_k8s_container_status(json_t *pod, const char *container);
json_t *agx_k8s_container_spec(json_t *pod, const char *container, size_t *index);
int agx_k8s_pod_ready(json_t *pod);
int agx_k8s_pod_claimable(json_t *pod, const char *container);
int agx_k8s_image_equal(const char *a, const char *b);
/* The failure reason of the container (ErrImagePull, CrashLoopBackOff…) or NULL. */
const char *agx_k8s_container_failure(json_t *cstatus, const char **message);
int agx_k8s_runtime_url(agx_k8s *k, json_t *pod, char **out, agx_error *err);
agx_sandbox_state agx_k8s_pod_state(json_t *pod, const char *container);
/* A claimed pod as a sandbox info (k8s.c; fuzzed with the pod decoders above: tests/fuzz/k8s_api).
 * NULL with err when the pod has no name, or out of memory. */
agx_sandbox_info *agx_k8s_info_of(agx_k8s *k, json_t *pod, agx_error *err);
/* One line of a watch stream: {type, object}. 0 with *type (borrowed from *ev) and *object, or -1
 * with err; *ev (the decoded line) is the caller's to json_decref either way. */
int agx_k8s_watch_event(const char *line, size_t len, json_t **ev, const char **type,
                        json_t **object, agx_error *err);
int agx_k8s_label_ok(const char *key, const char *value);
char *agx_k8s_pointer_escape(const char *s);
char *agx_k8s_selector(agx_k8s *k, const char *state, const agx_kv *extra);

/* ---- claim (k8s_claim.c) ---- */

/* token: in claim mode (the pod's runtime runs AGENTIX_AUTH=claim) the per-sandbox runtime token
 * the claim gave it, else "" (the pool's token, if any, applies). */
int agx_k8s_claim(agx_k8s *k, const agx_sandbox_config *cfg, json_t **pod, char token[33],
                  agx_error *err);
int agx_k8s_pod_delete(agx_k8s *k, const char *name, const char *uid, agx_error *err);
/* Deletes the pool's claimed pods whose agentix.expires passed (beyond AGX_K8S_REAP_GRACE_MS):
 * their host stopped extending them and Kubernetes itself would keep them forever. At most every
 * AGX_K8S_REAP_EVERY_MS per instance (other calls return at once); bounded to 2 s and
 * deadline_ms; best effort. */
void agx_k8s_reap_expired(agx_k8s *k, int64_t deadline_ms);
/* The runtime's POST /expiry: through the API server's pod proxy with the backend's own TLS and
 * credentials when the runtime URL is one (AGENTIX_K8S_RUNTIME_URL=proxy), else directly. */
int agx_k8s_runtime_extend(agx_k8s *k, const agx_sandbox *sb, int64_t expiry_ms,
                           int64_t deadline_ms, agx_error *err);
/* The runtime's POST /claim (claim mode) likewise, with the sandbox's token and the pool's claim
 * secret (if any). AGX_ERR_CONFLICT when another client claimed it first. */
int agx_k8s_runtime_claim(agx_k8s *k, const agx_sandbox *sb, int64_t expiry_ms,
                          int64_t deadline_ms, agx_error *err);

#endif
