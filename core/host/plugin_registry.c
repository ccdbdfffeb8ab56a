/* plugin_registry.c — the process-wide backend registry: in-process registrations
 * (agx_register_deployment), the dlopen cache, and turning a manifest candidate into a checked
 * vtable. One mutex guards both tables; it is never held while calling into a plugin or dlopen
 * (a plugin's ELF constructor may itself call agx_register_deployment). */
#include "core/host/plugin_registry.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t agx_registry_lock = PTHREAD_MUTEX_INITIALIZER;

static const agx_backend_vtable **agx_registered;
static size_t agx_registered_count, agx_registered_cap;

/* Backend objects stay loaded for the process lifetime: sandboxes, vtables and strings handed out
 * by a backend may outlive any one agx_deployment, and unloading code that another thread might
 * still be inside is not worth the risk. The cache only avoids repeated dlopen calls. */
typedef struct agx_dl_entry {
    struct agx_dl_entry *next;
    void *handle;
    char path[];
} agx_dl_entry;
static agx_dl_entry *agx_dl_cache;

/* A backend links libagentix: the copy it brings must be this one. A program that linked the host
 * library's internals statically (instead of libagentix.so) would otherwise load a second library
 * with a second registry, and sandboxes and labels would be tracked twice. */
static int agx_plugin_same_library(void *h, const agx_plugin_candidate *c, agx_error *err)
{
    void *theirs = dlsym(h, "agx_load_deployment");
    if (!theirs || theirs == (void *)&agx_load_deployment)
        return 0;
    return agx_error_set(err, AGX_ERR_ABI,
                         "backend '%s' (%s) brings its own libagentix beside the host library this "
                         "program carries: link the program against libagentix.so instead of the "
                         "host library's internals", c->name, c->library);
}

agx_backend_list_fn agx_plugin_vtable_list(const agx_backend_vtable *vt)
{
    size_t need = offsetof(agx_backend_vtable, list_sandboxes) + sizeof vt->list_sandboxes;
    return vt->struct_size >= need ? vt->list_sandboxes : NULL;
}

agx_backend_extend_fn agx_plugin_vtable_extend(const agx_backend_vtable *vt)
{
    size_t need = offsetof(agx_backend_vtable, extend_sandbox) + sizeof vt->extend_sandbox;
    return vt->struct_size >= need ? vt->extend_sandbox : NULL;
}

int agx_plugin_vtable_config(const agx_backend_vtable *vt, uint32_t *fields,
                             const char *const **options)
{
    size_t need = offsetof(agx_backend_vtable, options) + sizeof vt->options;
    if (vt->struct_size < need) {
        *fields = AGX_CONFIG_ALL;
        *options = NULL;
        return -1;
    }
    *fields = vt->config_fields & AGX_CONFIG_ALL;
    *options = vt->options;
    return 0;
}

int agx_plugin_vtable_check(const agx_backend_vtable *vt, const char *expect_name, agx_error *err)
{
    if (vt->abi_version != AGX_PLUGIN_ABI_VERSION)
        return agx_error_set(err, AGX_ERR_ABI,
                             "backend '%s' was built for backend ABI %u, this libagentix speaks "
                             "ABI %u; rebuild it against this agentix",
                             expect_name, vt->abi_version, AGX_PLUGIN_ABI_VERSION);
    if (vt->struct_size < offsetof(agx_backend_vtable, list_sandboxes))
        return agx_error_set(err, AGX_ERR_ABI,
                             "backend '%s' vtable is %u bytes, smaller than ABI %u requires (%zu)",
                             expect_name, vt->struct_size, AGX_PLUGIN_ABI_VERSION,
                             offsetof(agx_backend_vtable, list_sandboxes));
    if (!vt->name || strcmp(vt->name, expect_name) != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "backend '%s': its vtable calls itself '%s'; the manifest name and "
                             "vtable->name must match",
                             expect_name, vt->name ? vt->name : "(null)");
    const char *missing = !vt->construct        ? "construct"
                          : !vt->create_sandbox ? "create_sandbox"
                          : !vt->delete_sandbox ? "delete_sandbox"
                          : !vt->get_sandbox    ? "get_sandbox"
                                                : NULL;
    if (missing)
        return agx_error_set(err, AGX_ERR_ABI, "backend '%s' has no %s function (required)",
                             expect_name, missing);
    return 0;
}

static void *agx_dl_lookup(const char *path)
{
    for (agx_dl_entry *e = agx_dl_cache; e; e = e->next)
        if (strcmp(e->path, path) == 0)
            return e->handle;
    return NULL;
}

static int agx_dl_open(const agx_plugin_candidate *c, void **out, agx_error *err)
{
    pthread_mutex_lock(&agx_registry_lock);
    void *cached = agx_dl_lookup(c->library);
    pthread_mutex_unlock(&agx_registry_lock);
    if (cached) {
        *out = cached;
        return 0;
    }
    if (access(c->library, F_OK) != 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "backend '%s': shared object %s does not exist (manifest %s); build "
                             "or install it, or fix 'library' in the manifest",
                             c->name, c->library, c->manifest);
    void *h = dlopen(c->library, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        return agx_error_set(err, AGX_ERR_IO, "backend '%s': cannot load %s (manifest %s): %s",
                             c->name, c->library, c->manifest, why ? why : "unknown dlopen error");
    }
    int rc = agx_plugin_same_library(h, c, err);
    if (rc) {
        dlclose(h);
        return rc;
    }
    size_t len = strlen(c->library);
    agx_dl_entry *e = malloc(sizeof *e + len + 1);
    pthread_mutex_lock(&agx_registry_lock);
    if (agx_dl_lookup(c->library) || !e) {
        /* Another thread cached it first (or no memory to cache): dlopen refcounts, so the
         * extra reference is simply released again. */
        pthread_mutex_unlock(&agx_registry_lock);
        free(e);
        *out = h;
        return 0;
    }
    e->handle = h;
    memcpy(e->path, c->library, len + 1);
    e->next = agx_dl_cache;
    agx_dl_cache = e;
    pthread_mutex_unlock(&agx_registry_lock);
    *out = h;
    return 0;
}

int agx_plugin_resolve(const agx_plugin_candidate *c, const agx_backend_vtable **out,
                       agx_error *err)
{
    void *h = NULL;
    int rc = agx_dl_open(c, &h, err);
    if (rc != 0)
        return rc;
    dlerror();
    void *sym = dlsym(h, c->symbol);
    if (!sym)
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "backend '%s': symbol '%s' not found in %s (manifest %s)", c->name,
                             c->symbol, c->library, c->manifest);
    agx_backend_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry); /* object → function pointer without a pedantic cast */
    const agx_backend_vtable *vt = entry();
    if (!vt)
        return agx_error_set(err, AGX_ERR_ABI, "backend '%s': %s() in %s returned no vtable",
                             c->name, c->symbol, c->library);
    rc = agx_plugin_vtable_check(vt, c->name, err);
    if (rc != 0)
        return rc;
    *out = vt;
    return 0;
}

static long agx_registered_find(const char *name)
{
    for (size_t i = 0; i < agx_registered_count; i++)
        if (strcmp(agx_registered[i]->name, name) == 0)
            return (long)i;
    return -1;
}

int agx_register_deployment(const agx_backend_vtable *vtable, agx_error *err)
{
    if (!vtable || !vtable->name || !agx_manifest_name_valid(vtable->name))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_register_deployment: the vtable needs a name of letters, "
                             "digits, '.', '_' or '-'");
    int rc = agx_plugin_vtable_check(vtable, vtable->name, err);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&agx_registry_lock);
    long at = agx_registered_find(vtable->name);
    if (at >= 0) {
        agx_registered[at] = vtable;
    } else {
        if (agx_registered_count == agx_registered_cap) {
            size_t cap = agx_registered_cap ? agx_registered_cap * 2 : 8;
            const agx_backend_vtable **v = realloc(agx_registered, cap * sizeof *v);
            if (!v) {
                pthread_mutex_unlock(&agx_registry_lock);
                return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory registering '%s'",
                                     vtable->name);
            }
            agx_registered = v;
            agx_registered_cap = cap;
        }
        agx_registered[agx_registered_count++] = vtable;
    }
    pthread_mutex_unlock(&agx_registry_lock);
    return 0;
}

int agx_unregister_deployment(const char *name, agx_error *err)
{
    if (!name)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_unregister_deployment: no name");
    pthread_mutex_lock(&agx_registry_lock);
    long at = agx_registered_find(name);
    if (at >= 0) {
        memmove(&agx_registered[at], &agx_registered[at + 1],
                (agx_registered_count - (size_t)at - 1) * sizeof *agx_registered);
        agx_registered_count--;
    }
    pthread_mutex_unlock(&agx_registry_lock);
    if (at < 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND, "no backend '%s' is registered in-process",
                             name);
    return 0;
}

const agx_backend_vtable *agx_plugin_registered(const char *name)
{
    pthread_mutex_lock(&agx_registry_lock);
    long at = agx_registered_find(name);
    const agx_backend_vtable *vt = at >= 0 ? agx_registered[at] : NULL;
    pthread_mutex_unlock(&agx_registry_lock);
    return vt;
}

size_t agx_plugin_registered_snapshot(const agx_backend_vtable **out, size_t cap)
{
    pthread_mutex_lock(&agx_registry_lock);
    size_t n = agx_registered_count;
    for (size_t i = 0; i < n && i < cap; i++)
        out[i] = agx_registered[i];
    pthread_mutex_unlock(&agx_registry_lock);
    return n;
}

/* The registration array is freed at exit so leak checkers see a clean process; the dlopen cache
 * is deliberately kept (see above). */
__attribute__((destructor)) static void agx_registry_release(void)
{
    pthread_mutex_lock(&agx_registry_lock);
    free(agx_registered);
    agx_registered = NULL;
    agx_registered_count = agx_registered_cap = 0;
    pthread_mutex_unlock(&agx_registry_lock);
}
