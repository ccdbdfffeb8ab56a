/* deployment.c — the host's handle on a backend: agx_load_deployment (registry → manifest →
 * dlopen → vtable check → construct) and the agx_deployment_* wrappers every host call goes
 * through. The wrappers validate arguments before a backend sees them — including config fields
 * and options the backend does not honour (plugin.h: config_fields, options), refused here once
 * for every backend — and make sure a failing backend always leaves a usable error, whatever the
 * backend itself filled in. Every create goes through admission (admission.c), gets the
 * ownership record (owner.c) and, once it exists, has its expiry extended in the background
 * (renewer.c) until its delete. */
#include "core/host/plugin_registry.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/backend/runtime.h"
#include "agentix/clock.h"
#include "core/host/admission.h"
#include "core/host/deployment_internal.h"
#include "core/host/owner.h"
#include "core/host/renewer.h"

struct agx_deployment {
    const agx_backend_vtable *vt;
    void *self;
    atomic_int refs; /* the host's handle + one per sandbox the renewer extends through it */
    char name[AGX_MANIFEST_NAME_MAX + 1];
};

/* A backend reported failure: keep its error if it gave one, else say which call failed. */
static int agx_backend_failed(const agx_deployment *dep, const char *op, int rc, agx_error *err)
{
    if (rc > 0 || rc < AGX_ERR_INTERNAL)
        rc = AGX_ERR_INTERNAL; /* not an agx_error_code: the backend broke its contract */
    if (err->code == AGX_OK || !err->message[0]) {
        agx_error_set(err, rc, "backend '%s': %s failed (%s) without an error message", dep->name,
                      op, agx_error_code_name(rc));
    }
    err->code = rc;
    return rc;
}

static int agx_load_vtable(const char *name, const agx_backend_vtable **vt, agx_error *err)
{
    *vt = agx_plugin_registered(name);
    if (*vt)
        return 0;
    agx_plugin_scan scan;
    int rc = agx_plugin_scan_run(&scan, err);
    if (rc != 0)
        return rc;
    size_t idx = 0;
    rc = agx_plugin_scan_find(&scan, name, &idx, err);
    if (rc == 0)
        rc = agx_plugin_resolve(&scan.items[idx], vt, err);
    agx_plugin_scan_dispose(&scan);
    return rc;
}

int agx_load_deployment(const char *name, agx_deployment **out, agx_error *err)
{
    agx_error_clear(err);
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_load_deployment: out is NULL");
    *out = NULL;
    if (!name || !agx_manifest_name_valid(name))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_load_deployment: '%s' is not a backend name (letters, digits, "
                             "'.', '_', '-')",
                             name ? name : "(null)");
    const agx_backend_vtable *vt = NULL;
    int rc = agx_load_vtable(name, &vt, err);
    if (rc != 0)
        return rc;
    agx_deployment *dep = calloc(1, sizeof *dep);
    if (!dep)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory loading backend '%s'", name);
    dep->vt = vt;
    atomic_init(&dep->refs, 1);
    snprintf(dep->name, sizeof dep->name, "%s", name);
    agx_error cerr;
    agx_error_clear(&cerr);
    rc = vt->construct(&dep->self, &cerr);
    if (rc != 0) {
        agx_backend_failed(dep, "construct", rc, &cerr);
        rc = cerr.code;
        char own[AGX_MANIFEST_NAME_MAX + 16];
        snprintf(own, sizeof own, "backend '%s'", dep->name);
        if (strncmp(cerr.message, own, strlen(own)) != 0)
            agx_error_prefix(&cerr, "%s", own);
        agx_error_copy(err, &cerr);
        free(dep);
        return rc;
    }
    *out = dep;
    return 0;
}

agx_deployment *agx_deployment_ref(agx_deployment *dep)
{
    if (dep)
        atomic_fetch_add(&dep->refs, 1);
    return dep;
}

void agx_deployment_unref(agx_deployment *dep)
{
    if (!dep || atomic_fetch_sub(&dep->refs, 1) != 1)
        return;
    if (dep->vt->destruct)
        dep->vt->destruct(dep->self);
    free(dep);
}

void agx_deployment_free(agx_deployment *dep)
{
    agx_deployment_unref(dep);
}

const char *agx_deployment_name(const agx_deployment *dep)
{
    return dep ? dep->name : NULL;
}

uint32_t agx_deployment_config_fields(const agx_deployment *dep)
{
    uint32_t fields = 0;
    const char *const *options = NULL;
    if (dep)
        agx_plugin_vtable_config(dep->vt, &fields, &options);
    return fields;
}

/* ---- what the backend honours (plugin.h: config_fields, options) ---- */

/* Which AGX_CONFIG_* fields cfg sets, and the value of one for the message. */
static uint32_t fields_set(const agx_sandbox_config *cfg)
{
    const char *image = agx_sandbox_config_image(cfg), *bundle = agx_sandbox_config_bundle(cfg),
               *platform = agx_sandbox_config_platform(cfg);
    return (image && *image ? AGX_CONFIG_IMAGE : 0) | (bundle && *bundle ? AGX_CONFIG_BUNDLE : 0) |
           (platform && *platform ? AGX_CONFIG_PLATFORM : 0) |
           (agx_sandbox_config_cpus(cfg) > 0 ? AGX_CONFIG_CPUS : 0) |
           (agx_sandbox_config_memory(cfg) > 0 ? AGX_CONFIG_MEMORY : 0) |
           (agx_kv_count(agx_sandbox_config_env_const(cfg)) ? AGX_CONFIG_ENV : 0);
}

static void field_value(const agx_sandbox_config *cfg, uint32_t field, char *out, size_t n)
{
    switch (field) {
    case AGX_CONFIG_IMAGE: snprintf(out, n, "'%.200s'", agx_sandbox_config_image(cfg)); break;
    case AGX_CONFIG_BUNDLE: snprintf(out, n, "'%.200s'", agx_sandbox_config_bundle(cfg)); break;
    case AGX_CONFIG_PLATFORM: snprintf(out, n, "'%.64s'", agx_sandbox_config_platform(cfg)); break;
    case AGX_CONFIG_CPUS: snprintf(out, n, "%g", agx_sandbox_config_cpus(cfg)); break;
    case AGX_CONFIG_MEMORY:
        snprintf(out, n, "%llu bytes", (unsigned long long)agx_sandbox_config_memory(cfg));
        break;
    default:
        snprintf(out, n, "%zu variables (first '%.64s')",
                 agx_kv_count(agx_sandbox_config_env_const(cfg)),
                 agx_kv_key_at(agx_sandbox_config_env_const(cfg), 0));
    }
}

/* "env, labels, timeout_ms": what a message offers instead. */
static void honoured_list(uint32_t fields, char *out, size_t n)
{
    size_t len = 0;
    for (uint32_t bit = 1; bit & AGX_CONFIG_ALL; bit <<= 1)
        if ((fields & bit) && len < n)
            len += (size_t)snprintf(out + len, n - len, "%s, ",
                                    agx_config_field_name((agx_config_field)bit));
    if (len < n)
        snprintf(out + len, n - len, "labels, timeout_ms");
}

static int refuse_field(const agx_deployment *dep, uint32_t fields, uint32_t field,
                        const agx_sandbox_config *cfg, agx_error *err)
{
    char value[256], honoured[128];
    field_value(cfg, field, value, sizeof value);
    honoured_list(fields, honoured, sizeof honoured);
    return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                         "backend '%s' does not honour the config field '%s' (set to %s); leave "
                         "it unset for this backend, or use a backend that honours it ('%s' "
                         "honours: %s)",
                         dep->name, agx_config_field_name((agx_config_field)field), value,
                         dep->name, honoured);
}

static int known_option(const char *const *options, const char *key)
{
    for (size_t i = 0; options && options[i]; i++)
        if (strcmp(options[i], key) == 0)
            return 1;
    return 0;
}

static int refuse_option(const agx_deployment *dep, const char *const *options, const char *key,
                         agx_error *err)
{
    char known[256] = "none";
    size_t len = 0;
    for (size_t i = 0; options && options[i] && len < sizeof known; i++)
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", options[i]);
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "backend '%s' has no option '%.128s' (its options: %s)", dep->name, key,
                         known);
}

/* Refuses what the backend declared it cannot honour, before it sees the config. */
static int check_honoured(const agx_deployment *dep, const agx_sandbox_config *cfg, agx_error *err)
{
    uint32_t fields;
    const char *const *options;
    if (agx_plugin_vtable_config(dep->vt, &fields, &options) != 0)
        return 0; /* built before backends declared: nothing to hold it to */
    uint32_t extra = fields_set(cfg) & ~fields;
    if (extra)
        return refuse_field(dep, fields, extra & (~extra + 1u), cfg, err);
    const agx_kv *opts = agx_sandbox_config_options_const(cfg);
    size_t own = strlen(dep->name);
    for (size_t i = 0; i < agx_kv_count(opts); i++) {
        const char *key = agx_kv_key_at(opts, i);
        if (!strchr(key, '.'))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "option '%.128s' names no backend; options are "
                                 "'<backend>.<name>', e.g. '%s.…'",
                                 key, dep->name);
        if (strncmp(key, dep->name, own) == 0 && key[own] == '.' && !known_option(options, key))
            return refuse_option(dep, options, key, err);
    }
    return 0;
}

int agx_deployment_create(agx_deployment *dep, const agx_sandbox_config *cfg, agx_sandbox **out,
                          agx_error *err)
{
    agx_error_clear(err);
    if (out)
        *out = NULL;
    if (!dep || !cfg || !out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_deployment_create: deployment, config and out are required");
    int rc = check_honoured(dep, cfg, err);
    if (rc != 0)
        return rc;
    int64_t deadline = agx_clock_ms() + agx_sandbox_config_timeout_ms(cfg);
    agx_sandbox_config *stamped = NULL;
    rc = agx_owner_stamp(cfg, &stamped, err);
    if (rc)
        return rc;
    int slot = -1;
    rc = agx_admission_acquire(dep->name, deadline, &slot, err);
    if (rc) {
        agx_sandbox_config_free(stamped);
        return rc;
    }
    /* What admission waited counts against the create's timeout. */
    int64_t left = deadline - agx_clock_ms();
    agx_sandbox_config_set_timeout_ms(stamped, left > 0 ? left : 1);
    agx_error berr;
    agx_error_clear(&berr);
    agx_sandbox *sb = NULL;
    rc = dep->vt->create_sandbox(dep->self, stamped, &sb, &berr);
    if (rc == 0 && !sb)
        rc = agx_error_set(&berr, AGX_ERR_INTERNAL,
                           "backend '%s': create reported success but returned no sandbox",
                           dep->name);
    int64_t expiry = agx_sandbox_config_expiry_ms(stamped);
    agx_sandbox_config_free(stamped);
    if (rc != 0) {
        /* A record handed back with a failure is not a live sandbox (the contract says create
         * leaves nothing behind); drop it so the caller never sees a half-made one. */
        agx_sandbox_free(sb);
        agx_admission_release(dep->name, slot);
        rc = agx_backend_failed(dep, "create", rc, &berr);
        agx_error_copy(err, &berr);
        return rc;
    }
    agx_renewer_track(dep, sb, expiry, slot);
    *out = sb;
    return 0;
}

int agx_deployment_extend(agx_deployment *dep, const agx_sandbox *sb, int64_t expiry_ms,
                          agx_error *err)
{
    agx_error_clear(err);
    if (!dep || !sb)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_deployment_extend: a deployment and a sandbox are required");
    int rc = expiry_ms ? 0 : agx_expiry_default_ms(&expiry_ms, err);
    if (rc)
        return rc;
    agx_backend_extend_fn extend = agx_plugin_vtable_extend(dep->vt);
    if (!extend)
        return agx_runtime_expiry_extend(sb, expiry_ms, agx_clock_ms() + 30000, err);
    agx_error berr;
    agx_error_clear(&berr);
    rc = extend(dep->self, sb, expiry_ms, &berr);
    if (rc != 0) {
        rc = agx_backend_failed(dep, "extend", rc, &berr);
        agx_error_copy(err, &berr);
    }
    return rc;
}

static int agx_check_id(const agx_deployment *dep, const char *id, const char *op, agx_error *err)
{
    if (!dep || !id || !*id)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_deployment_%s: a deployment and a non-empty sandbox id are "
                             "required",
                             op);
    return 0;
}

int agx_deployment_delete(agx_deployment *dep, const char *sandbox_id, agx_error *err)
{
    agx_error_clear(err);
    int rc = agx_check_id(dep, sandbox_id, "delete", err);
    if (rc != 0)
        return rc;
    agx_error berr;
    agx_error_clear(&berr);
    rc = dep->vt->delete_sandbox(dep->self, sandbox_id, &berr);
    if (rc != 0) {
        rc = agx_backend_failed(dep, "delete", rc, &berr);
        agx_error_copy(err, &berr);
        return rc;
    }
    /* Confirmed gone: no more extensions, and its admission slot is given back. */
    agx_renewer_untrack(dep->name, sandbox_id);
    return 0;
}

int agx_deployment_get(agx_deployment *dep, const char *sandbox_id, agx_sandbox_info **out,
                       agx_error *err)
{
    agx_error_clear(err);
    if (out)
        *out = NULL;
    int rc = agx_check_id(dep, sandbox_id, "get", err);
    if (rc != 0)
        return rc;
    if (!out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_deployment_get: out is NULL");
    agx_error berr;
    agx_error_clear(&berr);
    agx_sandbox_info *info = NULL;
    rc = dep->vt->get_sandbox(dep->self, sandbox_id, &info, &berr);
    if (rc == 0 && !info)
        rc = agx_error_set(&berr, AGX_ERR_INTERNAL,
                           "backend '%s': get reported success but returned nothing", dep->name);
    if (rc != 0) {
        agx_sandbox_info_free(info);
        rc = agx_backend_failed(dep, "get", rc, &berr);
        agx_error_copy(err, &berr);
        return rc;
    }
    *out = info;
    return 0;
}

int agx_deployment_list(agx_deployment *dep, const agx_kv *labels, agx_sandbox_list **out,
                        agx_error *err)
{
    agx_error_clear(err);
    if (out)
        *out = NULL;
    if (!dep || !out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_deployment_list: deployment and out are required");
    agx_backend_list_fn list = agx_plugin_vtable_list(dep->vt);
    if (!list)
        return agx_error_set(err, AGX_ERR_UNSUPPORTED, "backend '%s' cannot list sandboxes",
                             dep->name);
    agx_error berr;
    agx_error_clear(&berr);
    agx_sandbox_list *result = NULL;
    int rc = list(dep->self, labels, &result, &berr);
    if (rc == 0 && !result)
        rc = agx_error_set(&berr, AGX_ERR_INTERNAL,
                           "backend '%s': list reported success but returned nothing", dep->name);
    if (rc != 0) {
        agx_sandbox_list_free(result);
        rc = agx_backend_failed(dep, "list", rc, &berr);
        agx_error_copy(err, &berr);
        return rc;
    }
    *out = result;
    return 0;
}
