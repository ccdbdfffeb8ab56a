/* k8s_fake.h — drives tests/fakes/k8s/fake_k8s.py for the k8s-pool tests and bench: start it on
 * port 0 (TLS with a CA made by openssl now, a bearer token, a pool ReplicaSet), write kubeconfigs
 * that reach it by token or client certificate, call its /fake/ hooks, stop it (and its pods). */
#ifndef AGX_TEST_K8S_FAKE_H
#define AGX_TEST_K8S_FAKE_H

#include <jansson.h>
#include <sys/types.h>

#define K8S_FAKE_TOKEN "test-token-0123456789"
/* The default pool's runtimes take their token at claim (AGENTIX_AUTH=claim) and want this claim
 * secret, which k8s_fake_start gives the host (AGENTIX_K8S_CLAIM_SECRET). */
#define K8S_FAKE_CLAIM_SECRET "test-claim-secret-42"

typedef struct k8s_fake {
    pid_t pid;
    int port;
    int tls;
    char dir[512];   /* certificates, kubeconfigs, port file */
    char server[128];
} k8s_fake;

/* replicas: the pool size; manifest: the pool's ReplicaSet (YAML or JSON, e.g. from `agentix
 * k8s-pool manifest`), NULL for a built-in one. Exits on failure. */
void k8s_fake_start(k8s_fake *f, const char *dir, int tls, int replicas, const char *manifest);
/* The same with the agentix-server each pod runs (default: this build's). */
void k8s_fake_start_server(k8s_fake *f, const char *dir, int tls, int replicas,
                           const char *manifest, const char *server);
void k8s_fake_stop(k8s_fake *f);
/* Writes a kubeconfig at dir/<name> and returns its path (static buffer per call site copy). */
void k8s_fake_kubeconfig(const k8s_fake *f, const char *name, const char *user_yaml, char *path,
                         size_t cap);
/* POST (body != NULL) or GET of a /fake/ hook; returns the parsed answer (caller frees). */
json_t *k8s_fake_hook(const k8s_fake *f, const char *path, const char *body);
/* Points the backend at the fake: AGENTIX_K8S_KUBECONFIG, AGENTIX_K8S_POOL=pool. */
void k8s_fake_use(const char *kubeconfig);
/* Pods of the pool in a given state label ("idle", "claimed"), terminating ones excluded. */
int k8s_fake_count(const k8s_fake *f, const char *state);

#endif
