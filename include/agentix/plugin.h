/* plugin.h — the backend ABI: what a deployment backend shared object exports, and how the core
 * discovers it (the C counterpart of the Python entry-point group `agentix.deployment`).
 *
 * A backend is a shared object exporting one function (its name is given by the manifest; mark it
 * AGX_EXPORT, the plugin is best built with hidden visibility) that returns a pointer to a static
 * agx_backend_vtable. Besides this header it needs only the backend toolkit
 * (agentix/backend/toolkit.h). A manifest file `<anything>.agxplugin` names it:
 *
 *     # agentix backend manifest
 *     name    = docker
 *     library = libagentix-backend-docker.so   # relative to the manifest's folder, or absolute
 *     symbol  = agx_backend_docker
 *
 * Discovery reads manifests from each folder of $AGENTIX_PLUGIN_PATH (colon-separated, in order),
 * then from the plugin folder installed beside libagentix (<libdir>/agentix/backends). A name
 * claimed by two manifests is a conflict (AGX_ERR_CONFLICT naming both files), whichever folders
 * they are in. In-process registrations (agx_register_deployment) override manifests.
 *
 * Contract every backend must keep (tests hold the shipped backends to it):
 *  - construct() takes no arguments: it reads its configuration from environment variables and
 *    fails at once with AGX_ERR_INVALID_ARGUMENT naming a missing or malformed variable;
 *  - create() either returns a running sandbox whose runtime answers /health, or fails and leaves
 *    nothing behind (no container, pod, process or remote sandbox);
 *  - config_fields lists every config field create() honours, and create() honours each of them
 *    (the core refuses the others before create() runs; see agx_config_field in deployment.h);
 *    options lists the "<name>.<option>" keys it knows (the core refuses other keys of its
 *    namespace); create() still refuses values it cannot honour;
 *  - a runtime started from a bundle has the bundle's bin/ first on PATH, for itself and for every
 *    command it runs (agentix-server does this itself when it runs from a bundle tree);
 *  - delete() of a sandbox that is already gone succeeds; get() of it answers AGX_SANDBOX_GONE;
 *  - every function may be called from many threads at once on one instance;
 *  - every wait is bounded (the config's timeout, or the backend's documented default);
 *  - create() writes the config's labels (the ownership record, backend/labels.h) in the request
 *    that makes the sandbox exist, and starts the runtime with the config's expiry
 *    (agx_sandbox_config_expiry_ms → AGENTIX_EXPIRY_MS, expiry.h), stamping it also where the
 *    provider enforces a deadline of its own;
 *  - errors set err->retriable for conditions worth retrying (429, 5xx, transient timeouts). */
#ifndef AGENTIX_PLUGIN_H
#define AGENTIX_PLUGIN_H

#include <stdint.h>

#include "agentix/deployment.h"
#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGX_PLUGIN_ABI_VERSION 1u

typedef struct agx_backend_vtable {
    uint32_t abi_version; /* AGX_PLUGIN_ABI_VERSION the backend was built against */
    uint32_t struct_size; /* sizeof(agx_backend_vtable) at build time */
    const char *name;     /* must equal the manifest's name */
    int (*construct)(void **self, agx_error *err);
    void (*destruct)(void *self);
    int (*create_sandbox)(void *self, const agx_sandbox_config *cfg, agx_sandbox **out,
                          agx_error *err);
    int (*delete_sandbox)(void *self, const char *sandbox_id, agx_error *err);
    int (*get_sandbox)(void *self, const char *sandbox_id, agx_sandbox_info **out, agx_error *err);
    /* Optional (NULL): sandboxes this library created that carry every label in `labels`. */
    int (*list_sandboxes)(void *self, const agx_kv *labels, agx_sandbox_list **out, agx_error *err);
    /* ---- read only when struct_size covers them (a backend built before they existed declares
     * nothing, the core refuses nothing for it and extends the runtime's expiry only) ---- */
    /* AGX_CONFIG_* bits of the config fields create_sandbox honours; 0 = none of them. */
    uint32_t config_fields;
    /* NULL-terminated option keys it knows, each "<name>.<option>"; NULL = none. */
    const char *const *options;
    /* Optional (NULL): moves the sandbox's expiry to now + expiry_ms everywhere it is enforced —
     * the runtime (agx_runtime_expiry_extend, backend/runtime.h) and the provider's own deadline
     * (E2B's timeout, a label a reaper reads). AGX_ERR_NOT_FOUND when the sandbox is gone. NULL:
     * the core extends the runtime's expiry only. The host library calls it in the background
     * every third of the expiry (AGX_EXPIRY_RENEW_DIVISOR) while the sandbox lives. */
    int (*extend_sandbox)(void *self, const agx_sandbox *sb, int64_t expiry_ms, agx_error *err);
} agx_backend_vtable;

typedef const agx_backend_vtable *(*agx_backend_entry_fn)(void);

/* Registers a backend in-process under vtable->name (the vtable must outlive the process's use
 * of it). It overrides any manifest of that name. Registering a name twice replaces it. */
AGX_API int agx_register_deployment(const agx_backend_vtable *vtable, agx_error *err);
AGX_API int agx_unregister_deployment(const char *name, agx_error *err);

/* ---- discovery report (what `agentix plugins` prints) ---- */
typedef struct agx_plugin_report agx_plugin_report;
/* Scans every manifest and tries to load (dlopen + symbol + ABI check, not construct) each one. */
AGX_API int agx_plugin_report_scan(agx_plugin_report **out, agx_error *err);
AGX_API void agx_plugin_report_free(agx_plugin_report *r);
AGX_API size_t agx_plugin_report_count(const agx_plugin_report *r);
AGX_API const char *agx_plugin_report_name(const agx_plugin_report *r, size_t i);
AGX_API const char *agx_plugin_report_manifest(const agx_plugin_report *r, size_t i); /* "(in-process)" */
AGX_API const char *agx_plugin_report_library(const agx_plugin_report *r, size_t i);
/* 0 when the plugin loads; otherwise the error code, with the exact error in *message. */
AGX_API int agx_plugin_report_status(const agx_plugin_report *r, size_t i, const char **message);
/* The folders searched, in order, colon-separated (for messages and `agentix plugins`). */
AGX_API const char *agx_plugin_report_search_path(const agx_plugin_report *r);

#ifdef __cplusplus
}
#endif
#endif
