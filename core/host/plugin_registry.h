/* plugin_registry.h (internal) — the process-wide plugin registry (the one piece of global state
 * agentix has): in-process registrations, the cache of dlopen'ed backend objects, manifest scans
 * over the search path, and the vtable checks shared by loading and `agentix plugins`. */
#ifndef AGX_CORE_PLUGIN_REGISTRY_H
#define AGX_CORE_PLUGIN_REGISTRY_H

#include <limits.h>
#include <stddef.h>

#include "agentix/plugin.h"
#include "core/host/plugin_manifest.h"

/* Most manifests one scan reads; more is surely a misconfigured path. */
#define AGX_PLUGIN_SCAN_MAX 1024

typedef int (*agx_backend_list_fn)(void *self, const agx_kv *labels, agx_sandbox_list **out,
                                   agx_error *err);

typedef struct agx_plugin_candidate {
    char name[AGX_MANIFEST_NAME_MAX + 1]; /* "" when a broken manifest named nothing readable */
    char manifest[PATH_MAX];
    char library[PATH_MAX]; /* resolved against the manifest's folder; "" if unknown */
    char symbol[AGX_MANIFEST_SYMBOL_MAX + 1];
    int status;      /* 0, or why the manifest itself is unusable */
    agx_error error; /* when status != 0 */
} agx_plugin_candidate;

typedef struct agx_plugin_scan {
    agx_plugin_candidate *items;
    size_t count;
    size_t cap;
    char *search_path; /* folders searched, in order, colon-separated */
} agx_plugin_scan;

/* Reads every manifest on the search path ($AGENTIX_PLUGIN_PATH, <libdir>/agentix/backends, the
 * compiled-in plugin folder). Broken manifests become candidates with a status; only running out
 * of memory fails the scan. */
int agx_plugin_scan_run(agx_plugin_scan *scan, agx_error *err);
void agx_plugin_scan_dispose(agx_plugin_scan *scan);

/* The one candidate claiming `name`: AGX_ERR_NOT_FOUND (message lists the available names and the
 * search path) or AGX_ERR_CONFLICT (message names both manifests). A broken manifest claiming the
 * name returns its own error. */
int agx_plugin_scan_find(const agx_plugin_scan *scan, const char *name, size_t *index,
                         agx_error *err);

/* dlopen (cached for the process lifetime) + dlsym + entry call + vtable check. No construct. */
int agx_plugin_resolve(const agx_plugin_candidate *c, const agx_backend_vtable **out,
                       agx_error *err);

typedef int (*agx_backend_extend_fn)(void *self, const agx_sandbox *sb, int64_t expiry_ms,
                                     agx_error *err);
/* extend_sandbox, or NULL when absent or outside the struct the backend was built with. */
agx_backend_extend_fn agx_plugin_vtable_extend(const agx_backend_vtable *vt);

/* ABI version, size, name and required functions. */
int agx_plugin_vtable_check(const agx_backend_vtable *vt, const char *expect_name, agx_error *err);
/* list_sandboxes, or NULL when absent or outside the struct the backend was built with. */
agx_backend_list_fn agx_plugin_vtable_list(const agx_backend_vtable *vt);

/* What the backend declares it honours (config_fields, options); 0 when it declares it, -1 when
 * its vtable predates the declaration (then *fields = AGX_CONFIG_ALL and *options = NULL). */
int agx_plugin_vtable_config(const agx_backend_vtable *vt, uint32_t *fields,
                             const char *const **options);

/* In-process registrations: the vtable registered under name, or NULL. */
const agx_backend_vtable *agx_plugin_registered(const char *name);
/* Copies up to cap registered vtables into out; returns how many exist. */
size_t agx_plugin_registered_snapshot(const agx_backend_vtable **out, size_t cap);

#endif
