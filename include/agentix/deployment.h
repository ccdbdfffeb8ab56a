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
 * them. Options are namespaced "<backend>.<name>": a backend refuses unknown options of its own
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
AGX_API const char *agx_sandbox_info_id(const agx_sandbox_info *info);
AGX_API agx_sandbox_state agx_sandbox_info_state(const agx_sandbox_info *info);
AGX_API const char *agx_sandbox_info_runtime_url(const agx_sandbox_info *info); /* may be NULL */
AGX_API const char *agx_sandbox_info_detail(const agx_sandbox_info *info);      /* may be NULL */
AGX_API int64_t agx_sandbox_info_created_at(const agx_sandbox_info *info);      /* unix ms, 0 unknown */
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
AGX_API void agx_deployment_free(agx_deployment *dep);
AGX_API const char *agx_deployment_name(const agx_deployment *dep);
/* The AGX_CONFIG_* fields this backend honours: a host that wants to adapt a config to the backend
 * (drop a task image on `local`, say) asks here and does so explicitly. A backend built before
 * backends declared them reports AGX_CONFIG_ALL (nothing is refused for it). */
AGX_API uint32_t agx_deployment_config_fields(const agx_deployment *dep);

/* create: returns a running sandbox whose runtime answers, or fails leaving nothing behind. A
 * config setting a field the backend does not honour, or an option of the backend's namespace it
 * does not know, is refused first (AGX_ERR_UNSUPPORTED, AGX_ERR_INVALID_ARGUMENT). */
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
