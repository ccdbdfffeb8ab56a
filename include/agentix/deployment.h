/* deployment.h — the host side of a sandbox: configuration, the loaded backend (a "deployment"),
 * create / delete / get / list, and scoped sessions that never leak a sandbox.
 *
 * Flow: host → agx_load_deployment("docker") → backend plugin → agx_deployment_create() →
 * agx_sandbox {id, runtime_url, token, headers} → client.h connects to runtime_url.
 * Every function here is thread-safe; one agx_deployment may be used from many threads at once. */
#ifndef AGENTIX_DEPLOYMENT_H
#define AGENTIX_DEPLOYMENT_H

#include <stddef.h>
#include <stdint.h>

#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- agx_kv: an ordered list of string pairs (env, labels, options, headers, filters) ---- */
typedef struct agx_kv agx_kv;
AGX_API agx_kv *agx_kv_new(void);
AGX_API void agx_kv_free(agx_kv *kv);
AGX_API agx_kv *agx_kv_copy(const agx_kv *kv);
AGX_API int agx_kv_set(agx_kv *kv, const char *key, const char *value); /* replaces an existing key */
AGX_API const char *agx_kv_get(const agx_kv *kv, const char *key);      /* NULL when absent */
AGX_API int agx_kv_remove(agx_kv *kv, const char *key);                 /* AGX_ERR_NOT_FOUND when absent */
AGX_API size_t agx_kv_count(const agx_kv *kv);
AGX_API const char *agx_kv_key_at(const agx_kv *kv, size_t i);
AGX_API const char *agx_kv_value_at(const agx_kv *kv, size_t i);

/* ---- agx_sandbox_config: what to start ---- */
typedef struct agx_sandbox_config agx_sandbox_config;
AGX_API agx_sandbox_config *agx_sandbox_config_new(void);
AGX_API void agx_sandbox_config_free(agx_sandbox_config *cfg);
AGX_API agx_sandbox_config *agx_sandbox_config_copy(const agx_sandbox_config *cfg);

AGX_API int agx_sandbox_config_set_image(agx_sandbox_config *cfg, const char *image);       /* task image */
AGX_API int agx_sandbox_config_set_bundle(agx_sandbox_config *cfg, const char *bundle);     /* bundle image or path */
AGX_API int agx_sandbox_config_set_platform(agx_sandbox_config *cfg, const char *platform); /* "linux/amd64" */
AGX_API int agx_sandbox_config_set_cpus(agx_sandbox_config *cfg, double cpus);              /* 0 = backend default */
AGX_API int agx_sandbox_config_set_memory(agx_sandbox_config *cfg, uint64_t bytes);         /* 0 = backend default */
AGX_API int agx_sandbox_config_set_timeout_ms(agx_sandbox_config *cfg, int64_t ms);         /* create→ready, default 120000 */
AGX_API const char *agx_sandbox_config_image(const agx_sandbox_config *cfg);
AGX_API const char *agx_sandbox_config_bundle(const agx_sandbox_config *cfg);
AGX_API const char *agx_sandbox_config_platform(const agx_sandbox_config *cfg);
AGX_API double agx_sandbox_config_cpus(const agx_sandbox_config *cfg);
AGX_API uint64_t agx_sandbox_config_memory(const agx_sandbox_config *cfg);
AGX_API int64_t agx_sandbox_config_timeout_ms(const agx_sandbox_config *cfg);
/* Expiry (expiry.h): the sandbox ends itself this long after its creation unless this process
 * extends it, which it does in the background until the sandbox is deleted or the process ends.
 * AGX_EXPIRY_MIN_MS..AGX_EXPIRY_MAX_MS; 0 = the default ($AGENTIX_EXPIRY_MS, else
 * AGX_EXPIRY_DEFAULT_MS). The config agx_deployment_create hands a backend always holds the value
 * in force. */
AGX_API int agx_sandbox_config_set_expiry_ms(agx_sandbox_config *cfg, int64_t ms);
AGX_API int64_t agx_sandbox_config_expiry_ms(const agx_sandbox_config *cfg);
/* The config owns these lists; callers may modify them through the returned pointer. */
AGX_API agx_kv *agx_sandbox_config_env(agx_sandbox_config *cfg);
AGX_API agx_kv *agx_sandbox_config_labels(agx_sandbox_config *cfg);
AGX_API agx_kv *agx_sandbox_config_options(agx_sandbox_config *cfg); /* backend-specific, e.g. "docker.network" */
AGX_API const agx_kv *agx_sandbox_config_env_const(const agx_sandbox_config *cfg);
AGX_API const agx_kv *agx_sandbox_config_labels_const(const agx_sandbox_config *cfg);
AGX_API const agx_kv *agx_sandbox_config_options_const(const agx_sandbox_config *cfg);

/* The config fields a backend may or may not honour. A backend declares the ones it honours
 * (plugin.h); agx_deployment_create refuses a config that sets any other with
 * AGX_ERR_UNSUPPORTED naming the field and the backend, before the backend runs, so switching
 * backends never silently changes what a config means. "Set" means: a non-empty string, cpus or
 * memory above 0, at least one env pair. Labels and timeout_ms have no bit: every backend honours
 * them, nor does the expiry (agx_sandbox_config_set_expiry_ms: the core and every backend keep
 * it). Options are namespaced "<backend>.<name>": a backend refuses unknown options of its own
 * namespace and leaves other namespaces to the backends they name. */
typedef enum agx_config_field {
    AGX_CONFIG_IMAGE = 1u << 0,    /* agx_sandbox_config_set_image */
    AGX_CONFIG_BUNDLE = 1u << 1,   /* agx_sandbox_config_set_bundle */
    AGX_CONFIG_PLATFORM = 1u << 2, /* agx_sandbox_config_set_platform */
    AGX_CONFIG_CPUS = 1u << 3,     /* agx_sandbox_config_set_cpus */
    AGX_CONFIG_MEMORY = 1u << 4,   /* agx_sandbox_config_set_memory */
    AGX_CONFIG_ENV = 1u << 5,      /* agx_sandbox_config_env */
} agx_config_field;
#define AGX_CONFIG_ALL 0x3fu
/* The field's name as messages and docs spell it ("image", …); NULL for an unknown bit. */
AGX_API const char *agx_config_field_name(agx_config_field field);

/* ---- agx_sandbox: a created sandbox, everything a client needs to reach its runtime ---- */
typedef struct agx_sandbox agx_sandbox;
/* For backends: a new sandbox record. token may be NULL (no token). */
AGX_API agx_sandbox *agx_sandbox_new(const char *backend, const char *id, const char *runtime_url,
                             const char *token);
AGX_API void agx_sandbox_free(agx_sandbox *sb);
AGX_API agx_sandbox *agx_sandbox_copy(const agx_sandbox *sb);
AGX_API const char *agx_sandbox_id(const agx_sandbox *sb);
AGX_API const char *agx_sandbox_runtime_url(const agx_sandbox *sb);
AGX_API const char *agx_sandbox_token(const agx_sandbox *sb); /* NULL when the runtime takes no token */
AGX_API const char *agx_sandbox_backend(const agx_sandbox *sb);
AGX_API agx_kv *agx_sandbox_headers(agx_sandbox *sb);         /* extra HTTP headers a client must send */
AGX_API const agx_kv *agx_sandbox_headers_const(const agx_sandbox *sb);

/* ---- agx_sandbox_info: what get/list report ---- */
typedef enum agx_sandbox_state {
    AGX_SANDBOX_UNKNOWN = 0,
    AGX_SANDBOX_CREATING,
    AGX_SANDBOX_RUNNING,
    AGX_SANDBOX_STOPPED,
    AGX_SANDBOX_ERROR,
    AGX_SANDBOX_GONE
} agx_sandbox_state;
AGX_API const char *agx_sandbox_state_name(agx_sandbox_state s); /* "running", … */

typedef struct agx_sandbox_info agx_sandbox_info;
AGX_API agx_sandbox_info *agx_sandbox_info_new(const char *id, agx_sandbox_state state);
AGX_API void agx_sandbox_info_free(agx_sandbox_info *info);
AGX_API int agx_sandbox_info_set_runtime_url(agx_sandbox_info *info, const char *url);
AGX_API int agx_sandbox_info_set_detail(agx_sandbox_info *info, const char *detail);
AGX_API void agx_sandbox_info_set_created_at(agx_sandbox_info *info, int64_t unix_ms);
/* When the sandbox ends by itself unless extended (unix ms), as far as the backend can tell: the
 * provider's own deadline, or the agentix.expires label where the backend keeps it current (or
 * where nothing can extend it any more: a stopped runtime); 0 = unknown, e.g. a running runtime
 * whose label cannot follow its extensions. agx_gc collects sandboxes whose expiry has passed. */
AGX_API void agx_sandbox_info_set_expires_at(agx_sandbox_info *info, int64_t unix_ms);
AGX_API const char *agx_sandbox_info_id(const agx_sandbox_info *info);
AGX_API agx_sandbox_state agx_sandbox_info_state(const agx_sandbox_info *info);
AGX_API const char *agx_sandbox_info_runtime_url(const agx_sandbox_info *info); /* may be NULL */
AGX_API const char *agx_sandbox_info_detail(const agx_sandbox_info *info);      /* may be NULL */
AGX_API int64_t agx_sandbox_info_created_at(const agx_sandbox_info *info);      /* unix ms, 0 unknown */
AGX_API int64_t agx_sandbox_info_expires_at(const agx_sandbox_info *info);      /* unix ms, 0 unknown */
AGX_API agx_kv *agx_sandbox_info_labels(agx_sandbox_info *info);
AGX_API const agx_kv *agx_sandbox_info_labels_const(const agx_sandbox_info *info);

/* A list of infos, as returned by agx_deployment_list. */
typedef struct agx_sandbox_list agx_sandbox_list;
AGX_API agx_sandbox_list *agx_sandbox_list_new(void);
AGX_API int agx_sandbox_list_push(agx_sandbox_list *list, agx_sandbox_info *info); /* takes ownership */
AGX_API size_t agx_sandbox_list_count(const agx_sandbox_list *list);
AGX_API const agx_sandbox_info *agx_sandbox_list_at(const agx_sandbox_list *list, size_t i);
AGX_API void agx_sandbox_list_free(agx_sandbox_list *list);

/* ---- agx_deployment: a constructed backend ---- */
typedef struct agx_deployment agx_deployment;

/* Finds the backend `name` (in-process registrations first, then manifests on
 * $AGENTIX_PLUGIN_PATH, then the plugin directory next to libagentix), loads it, checks its ABI
 * and constructs it. Unknown names fail with AGX_ERR_NOT_FOUND listing the available names. */
AGX_API int agx_load_deployment(const char *name, agx_deployment **out, agx_error *err);
/* The backend instance itself lives on until the sandboxes it created and still extends are
 * deleted or gone: their expiries keep being extended through it while this process runs. */
AGX_API void agx_deployment_free(agx_deployment *dep);
AGX_API const char *agx_deployment_name(const agx_deployment *dep);
/* The AGX_CONFIG_* fields this backend honours: a host that wants to adapt a config to the backend
 * (drop a task image on `local`, say) asks here and does so explicitly. A backend built before
 * backends declared them reports AGX_CONFIG_ALL (nothing is refused for it). */
AGX_API uint32_t agx_deployment_config_fields(const agx_deployment *dep);

/* create: returns a running sandbox whose runtime answers, or fails leaving nothing behind. A
 * config setting a field the backend does not honour, or an option of the backend's namespace it
 * does not know, is refused first (AGX_ERR_UNSUPPORTED, AGX_ERR_INVALID_ARGUMENT). Every sandbox
 * carries this process's ownership record (backend/labels.h) and an expiry this process extends
 * in the background until the sandbox is deleted (expiry.h): a host killed at any instant leaves
 * nothing running past one expiry. Admission control (agx_admission_options, below) may make it
 * wait for capacity, within the config's timeout. */
AGX_API int agx_deployment_create(agx_deployment *dep, const agx_sandbox_config *cfg, agx_sandbox **out,
                          agx_error *err);
/* delete: deleting a sandbox that is already gone succeeds. */
AGX_API int agx_deployment_delete(agx_deployment *dep, const char *sandbox_id, agx_error *err);
AGX_API int agx_deployment_get(agx_deployment *dep, const char *sandbox_id, agx_sandbox_info **out,
                       agx_error *err);
/* get: a sandbox that was deleted, or that this backend never made, is reported with state
 * AGX_SANDBOX_GONE (not an error); a malformed id is AGX_ERR_INVALID_ARGUMENT. */
/* list: sandboxes this library created whose labels include every pair of `labels` (NULL = all).
 * AGX_ERR_UNSUPPORTED when the backend has no list. */
AGX_API int agx_deployment_list(agx_deployment *dep, const agx_kv *labels, agx_sandbox_list **out,
                        agx_error *err);

/* extend: moves the sandbox's expiry to now + expiry_ms (0 = the config default, see
 * agx_sandbox_config_set_expiry_ms) at the runtime and wherever the backend's provider enforces
 * one. Sandboxes this process created are extended in the background already (every third of their
 * expiry, until deleted); this is for sandboxes created elsewhere (`agentix create`) or an extra
 * margin. AGX_ERR_NOT_FOUND when the sandbox is gone. */
AGX_API int agx_deployment_extend(agx_deployment *dep, const agx_sandbox *sb, int64_t expiry_ms,
                                  agx_error *err);

/* What the background renewal of this process has done so far, for a host's metrics: the
 * sandboxes it extends now, extensions that succeeded and failed, and how the runtimes' own
 * expiries were moved (moves that succeeded, either way) — over a client connection open to the
 * sandbox (the `expiry` event, no request of its own: the renewal's way while
 * agx_client_connect_sandbox's connection is up) or by an HTTP POST /expiry (no connection open).
 * A backend whose provider enforces the expiry too (E2B's timeout, Daytona's auto-stop, k8s's
 * label) also makes its provider call each time. */
typedef struct agx_renewal_stats {
    uint64_t tracked;
    uint64_t extended, failed;
    uint64_t runtime_over_connection, runtime_over_http;
} agx_renewal_stats;
AGX_API void agx_renewal_stats_get(agx_renewal_stats *out);

/* ---- admission control: per backend, shared by every agentix process of this host ----
 * A cap on live sandboxes (created and not yet confirmed deleted, plus creates in flight) and a
 * create rate (a token bucket). agx_deployment_create waits for both, within the config's timeout
 * (then AGX_ERR_RATE_LIMITED, retriable). The state is one file per backend under
 * $AGENTIX_STATE_DIR (default $XDG_RUNTIME_DIR/agentix, else /tmp/agentix-<uid>): each live
 * sandbox holds an open-file-description lock on one byte of it, which the kernel drops when its
 * process dies, so the slots of a killed host come back at once (its sandboxes end by their
 * expiry); the bucket lives in the file under a short lock. A slot is given back when the
 * sandbox's delete succeeds (or its expiry extension learns it is gone), never earlier.
 * Defaults come from the environment, read at a backend's first create:
 *   AGENTIX_MAX_SANDBOXES[_<BACKEND>]  cap (BACKEND upper-cased, '-' → '_'; 0 or unset = none)
 *   AGENTIX_CREATE_RATE[_<BACKEND>]    creates per second, decimal (0 or unset = no limit)
 *   AGENTIX_CREATE_BURST[_<BACKEND>]   creates allowed back to back after a quiet spell (default 1)
 * Processes sharing a backend should agree on them: each enforces its own cap over the shared
 * slots and refills the shared bucket at its own rate. */
typedef struct agx_admission_options {
    uint32_t struct_size;  /* set by agx_admission_options_init */
    unsigned max_live;     /* 0 = no cap; at most 65536 */
    double creates_per_s;  /* 0 = no limit */
    unsigned burst;        /* ≥ 1 */
} agx_admission_options;
AGX_API void agx_admission_options_init(agx_admission_options *opts);
/* Replaces this process's settings for backend (a backend name, e.g. "docker"). */
AGX_API int agx_admission_set(const char *backend, const agx_admission_options *opts,
                              agx_error *err);
typedef struct agx_admission_stats {
    size_t live_host;     /* slots held on this host, by every process (0 without a cap) */
    size_t live_process;  /* held by this process */
    uint64_t admitted;    /* creates this process let through */
    uint64_t waited;      /* of which had to wait (cap, rate or a service's Retry-After) */
} agx_admission_stats;
AGX_API int agx_admission_stats_get(const char *backend, agx_admission_stats *out, agx_error *err);
/* For backends: the service asked for no creates during the next ms (HTTP 429 Retry-After); every
 * agentix process of this host that rate-limits backend waits it out before its next create. */
AGX_API void agx_admission_defer(const char *backend, int64_t ms);

/* ---- sessions: create on entry, delete on every exit ---- */
/* begin: create. On failure nothing exists and *out is NULL. */
AGX_API int agx_session_begin(agx_deployment *dep, const agx_sandbox_config *cfg, agx_sandbox **out,
                      agx_error *err);
/* end: deletes and frees the sandbox (NULL is a no-op returning body_status). body_status is the
 * status of the work done inside the session, body_err its error (may be NULL). Returns
 * body_status when it failed — err keeps the body's error, and a delete failure is appended to
 * err->detail — else the delete's status with its error in err. */
AGX_API int agx_session_end(agx_deployment *dep, agx_sandbox *sb, int body_status,
                    const agx_error *body_err, agx_error *err);
/* Callback form: begin, body, end with the rules above. */
typedef int (*agx_session_body_fn)(agx_sandbox *sb, void *user, agx_error *err);
AGX_API int agx_session_run(agx_deployment *dep, const agx_sandbox_config *cfg, agx_session_body_fn body,
                    void *user, agx_error *err);

/* Scoped form (GCC/Clang): the sandbox is deleted when the block is left by any path
 * (return, break, goto out of the block). Delete failures in the scoped form are written to the
 * scope's agx_error only if it held no error yet.
 *
 *   agx_error err;
 *   {
 *       AGX_SESSION(sb, dep, cfg, &err);
 *       if (!sb) return err.code;       // create failed, nothing to delete
 *       ... use sb ...
 *   }                                   // deleted here
 */
typedef struct agx_session_scope {
    agx_deployment *dep;
    agx_sandbox *sb;
    agx_error *err;
} agx_session_scope;
AGX_API void agx_session_scope_cleanup(agx_session_scope *scope);
#define AGX_SESSION_CONCAT_(a, b) a##b
#define AGX_SESSION_CONCAT(a, b) AGX_SESSION_CONCAT_(a, b)
#define AGX_SESSION(sb, dep, cfg, errp)                                                        \
    agx_sandbox *sb = NULL;                                                                    \
    __attribute__((cleanup(agx_session_scope_cleanup)))                                        \
    agx_session_scope AGX_SESSION_CONCAT(agx_session_scope_, __LINE__) = {(dep), NULL, (errp)}; \
    if (agx_session_begin((dep), (cfg), &sb, (errp)) == 0)                                     \
        AGX_SESSION_CONCAT(agx_session_scope_, __LINE__).sb = sb

#ifdef __cplusplus
}
#endif
#endif
