/* resolve.c — from "module::function" to a function pointer: finds <module>.so on the module search
 * path, dlopens it once, checks its descriptor, and caches each target with its parsed defaults so
 * repeated calls do no lookup work beyond one hash probe. */
#include "runtime/worker/worker.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_MAX_LEN 128

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static int add_dir(wk_resolver *r, const char *dir, size_t len)
{
    char **nd = realloc(r->dirs, (r->n_dirs + 1) * sizeof *nd);
    if (!nd)
        return -1;
    r->dirs = nd;
    if (!(nd[r->n_dirs] = dup_n(dir, len)))
        return -1;
    r->n_dirs++;
    return 0;
}

/* <dir of the worker executable>/../modules: the install layout puts the worker in
 * <libdir>/agentix/bin and modules in <libdir>/agentix/modules. */
static int default_dir(wk_resolver *r, char *errbuf, size_t errlen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(errbuf, errlen, "cannot find the worker executable (/proc/self/exe); set AGENTIX_MODULE_PATH");
        return -1;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/../modules", exe);
    return add_dir(r, dir, strlen(dir));
}

int wk_resolver_init(wk_resolver *r, char *errbuf, size_t errlen)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    const char *env = getenv("AGENTIX_MODULE_PATH");
    if (env && *env) {
        for (const char *p = env; *p;) {
            const char *end = strchr(p, ':');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            if (len > 0 && add_dir(r, p, len) != 0)
                goto oom;
            p += len + (end ? 1 : 0);
        }
    }
    if (r->n_dirs == 0 && default_dir(r, errbuf, errlen) != 0)
        return -1;
    size_t total = 0;
    for (size_t i = 0; i < r->n_dirs; i++)
        total += strlen(r->dirs[i]) + 1;
    if (!(r->path_text = malloc(total + 1)))
        goto oom;
    r->path_text[0] = '\0';
    for (size_t i = 0; i < r->n_dirs; i++) {
        if (i)
            strcat(r->path_text, ":");
        strcat(r->path_text, r->dirs[i]);
    }
    return 0;
oom:
    snprintf(errbuf, errlen, "out of memory reading AGENTIX_MODULE_PATH");
    return -1;
}

static void target_free(wk_target *t)
{
    if (t->defaults)
        for (size_t i = 0; i < t->fn->n_params; i++)
            agx_value_free(t->defaults[i]);
    free(t->defaults);
    free(t->key);
    free(t);
}

void wk_resolver_destroy(wk_resolver *r)
{
    for (size_t b = 0; b < AGX_ARRAY_LEN(r->buckets); b++)
        for (wk_target *t = r->buckets[b], *next; t; t = next) {
            next = t->next;
            target_free(t);
        }
    for (wk_module *m = r->modules, *next; m; m = next) {
        next = m->next;
        dlclose(m->handle);
        free(m->name);
        free(m);
    }
    for (size_t i = 0; i < r->n_dirs; i++)
        free(r->dirs[i]);
    free(r->dirs);
    free(r->path_text);
    pthread_mutex_destroy(&r->mu);
}

static size_t bucket_of(const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h % 256);
}

/* Module names become file names: keep them to one plain path component. */
static bool valid_module_name(const char *s, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

typedef struct resolve_err {
    char *type, *msg;
    size_t type_len, msg_len;
} resolve_err;

__attribute__((format(printf, 3, 4))) static int fail(resolve_err *e, const char *type, const char *fmt, ...)
{
    snprintf(e->type, e->type_len, "%s", type);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, e->msg_len, fmt, ap);
    va_end(ap);
    return -1;
}

static int load_module(wk_resolver *r, const char *name, wk_module **out, resolve_err *e)
{
    for (wk_module *m = r->modules; m; m = m->next)
        if (strcmp(m->name, name) == 0) {
            *out = m;
            return 0;
        }
    char path[PATH_MAX];
    struct stat st;
    size_t i;
    for (i = 0; i < r->n_dirs; i++) {
        snprintf(path, sizeof path, "%s/%s.so", r->dirs[i], name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            break;
    }
    if (i == r->n_dirs)
        return fail(e, AGX_RPC_NOT_FOUND, "module '%s' not found: no %s.so in the module search path %s "
                    "(AGENTIX_MODULE_PATH)", name, name, r->path_text);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return fail(e, AGX_RPC_MODULE_ERROR, "module '%s' (%s) cannot be loaded: %s", name, path, dlerror());
    const agx_module *d = dlsym(h, AGX_MODULE_SYMBOL);
    const char *why = !d ? "it exports no " AGX_MODULE_SYMBOL " (use AGX_MODULE)"
                      : d->abi_version != AGX_MODULE_ABI_VERSION || d->struct_size != sizeof(agx_module)
                          ? "it was built for another module ABI; rebuild it against this agentix"
                      : !d->name || strcmp(d->name, name) != 0 ? "its descriptor names another module"
                                                              : NULL;
    if (why) {
        dlclose(h);
        return fail(e, AGX_RPC_MODULE_ERROR, "module '%s' (%s): %s", name, path, why);
    }
    wk_module *m = calloc(1, sizeof *m);
    if (!m || !(m->name = strdup(name))) {
        free(m);
        dlclose(h);
        return fail(e, AGX_RPC_INTERNAL, "out of memory loading module '%s'", name);
    }
    m->handle = h;
    m->desc = d;
    m->next = r->modules;
    r->modules = m;
    *out = m;
    return 0;
}

/* Parses and checks the declared defaults once, so a broken module fails at first use, clearly. */
static int make_target(const char *key, const wk_module *m, const agx_function *fn, wk_target **out,
                       resolve_err *e)
{
    wk_target *t = calloc(1, sizeof *t);
    if (!t || !(t->key = strdup(key)) ||
        (fn->n_params && !(t->defaults = calloc(fn->n_params, sizeof *t->defaults)))) {
        if (t)
            free(t->key);
        free(t);
        return fail(e, AGX_RPC_INTERNAL, "out of memory resolving '%s'", key);
    }
    t->fn = fn;
    for (size_t i = 0; i < fn->n_params; i++) {
        const agx_param *p = &fn->params[i];
        if (!p->name) {
            target_free(t);
            return fail(e, AGX_RPC_MODULE_ERROR, "%s: parameter %zu has no name", key, i);
        }
        if (!p->default_json)
            continue;
        agx_error err;
        if (agx_value_from_json(p->default_json, strlen(p->default_json), NULL, &t->defaults[i],
                                &err) != 0 ||
            !wk_type_accepts(p->type, t->defaults[i], true)) {
            target_free(t);
            return fail(e, AGX_RPC_MODULE_ERROR, "%s (module %s): parameter '%s' has a default (%s) that "
                        "is not valid JSON of type %s", key, m->name, p->name, p->default_json,
                        agx_type_name(p->type));
        }
    }
    *out = t;
    return 0;
}

static int resolve_locked(wk_resolver *r, const char *target, wk_target **out, resolve_err *e)
{
    const char *sep = strstr(target, AGX_TARGET_SEP);
    const char *fname = sep ? sep + sizeof AGX_TARGET_SEP - 1 : NULL;
    if (!sep || !*fname || strlen(fname) > NAME_MAX_LEN || !valid_module_name(target, (size_t)(sep - target)))
        return fail(e, AGX_RPC_BAD_REQUEST, "target '%.200s' is not \"module::function\" (module names use "
                    "letters, digits, '_', '-', '.')", target);
    char module[NAME_MAX_LEN + 1];
    snprintf(module, sizeof module, "%.*s", (int)(sep - target), target);

    wk_module *m;
    if (load_module(r, module, &m, e) != 0)
        return -1;
    const agx_module *d = m->desc;
    for (size_t i = 0; i < d->n_functions; i++)
        if (d->functions[i].name && strcmp(d->functions[i].name, fname) == 0)
            return make_target(target, m, &d->functions[i], out, e);
    char list[256] = "";
    for (size_t i = 0, used = 0; i < d->n_functions && used < sizeof list - 8; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "",
                                 d->functions[i].name ? d->functions[i].name : "?");
    return fail(e, AGX_RPC_NOT_FOUND, "module '%s' has no function '%s' (it has: %s)", module, fname, list);
}

int wk_resolve(wk_resolver *r, const char *target, const wk_target **out, char *type, size_t type_len,
               char *msg, size_t msg_len)
{
    resolve_err e = {type, msg, type_len, msg_len};
    size_t b = bucket_of(target);
    pthread_mutex_lock(&r->mu);
    for (wk_target *t = r->buckets[b]; t; t = t->next)
        if (strcmp(t->key, target) == 0) {
            *out = t;
            pthread_mutex_unlock(&r->mu);
            return 0;
        }
    wk_target *t = NULL;
    int rc = resolve_locked(r, target, &t, &e);
    if (rc == 0) {
        t->next = r->buckets[b];
        r->buckets[b] = t;
        *out = t;
    }
    pthread_mutex_unlock(&r->mu);
    return rc;
}

/* {name, shape, params:[{name, type, required, default}], result, doc} (+ input for bidi). */
agx_value *wk_describe(const wk_target *t)
{
    const agx_function *fn = t->fn;
    agx_value *d = agx_value_map(), *params = agx_value_array();
    for (size_t i = 0; i < fn->n_params; i++) {
        agx_value *p = agx_value_map();
        agx_value_map_set(p, AGX_F_NAME, agx_value_string(fn->params[i].name));
        agx_value_map_set(p, AGX_F_TYPE, agx_value_string(agx_type_name(fn->params[i].type)));
        agx_value_map_set(p, AGX_F_REQUIRED, agx_value_bool(t->defaults[i] == NULL));
        agx_value_map_set(p, AGX_F_DEFAULT, t->defaults[i] ? agx_value_copy(t->defaults[i]) : agx_value_nil());
        agx_value_array_push(params, p);
    }
    agx_value_map_set(d, AGX_F_NAME, agx_value_string(t->key));
    agx_value_map_set(d, AGX_F_SHAPE, agx_value_string(agx_shape_name(fn->shape)));
    agx_value_map_set(d, AGX_F_PARAMS, params);
    agx_value_map_set(d, AGX_F_RESULT, agx_value_string(agx_type_name(fn->result_type)));
    if (fn->shape == AGX_SHAPE_BIDI)
        agx_value_map_set(d, AGX_F_INPUT, agx_value_string(agx_type_name(fn->input_type)));
    agx_value_map_set(d, AGX_F_DOC, agx_value_string(fn->doc)); /* NULL doc gives nil */
    return d;
}
