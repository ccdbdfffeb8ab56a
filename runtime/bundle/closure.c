/* closure.c — which shared libraries the bundle must carry: starting from the planned executables
 * and modules, follows DT_NEEDED through each object's RUNPATH (or RPATH), then the build host's
 * loader folders (/etc/ld.so.conf.d, then the defaults), the way ld.so would — without running
 * anything. Adds the dynamic loader itself and the plugins libraries dlopen at run time, which no
 * DT_NEEDED names. */
#include "runtime/bundle/bundle_internal.h"
#include "runtime/bundle/elf.h"

#include <elf.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGX_CLOSURE_MAX_DIRS 64

/* Libraries that dlopen a plugin at run time from a compiled-in folder: the plugin is carried
 * beside them and the folder string is pointed at the bundle (see stage.c). libwebsockets 4.1
 * loads its libuv event loop this way (LWS_WITH_EVLIB_PLUGINS). */
static const struct {
    const char *lib_prefix;
    const char *plugin;
    const char *package; /* Debian package that ships the plugin, for the error message */
} closure_plugins[] = {
    {"libwebsockets.so.", "libwebsockets-evlib_uv.so", "libwebsockets-evlib-uv"},
};

typedef struct closure_dirs {
    char *d[AGX_CLOSURE_MAX_DIRS];
    size_t n;
} closure_dirs;

static void dirs_add(closure_dirs *ds, const char *dir)
{
    if (ds->n == AGX_CLOSURE_MAX_DIRS || dir[0] != '/')
        return;
    for (size_t i = 0; i < ds->n; i++)
        if (strcmp(ds->d[i], dir) == 0)
            return;
    char *copy = strdup(dir);
    if (copy)
        ds->d[ds->n++] = copy;
}

static void dirs_free(closure_dirs *ds)
{
    for (size_t i = 0; i < ds->n; i++)
        free(ds->d[i]);
    ds->n = 0;
}

/* The build host's loader folders: /etc/ld.so.conf.d/\*.conf (as ldconfig reads them), then the
 * compiled-in defaults of glibc on 64-bit systems. */
static void dirs_system(closure_dirs *ds)
{
    glob_t g;
    if (glob("/etc/ld.so.conf.d/*.conf", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            FILE *f = fopen(g.gl_pathv[i], "re");
            char line[PATH_MAX];
            while (f && fgets(line, sizeof line, f)) {
                line[strcspn(line, "#\r\n \t")] = '\0';
                dirs_add(ds, line);
            }
            if (f)
                fclose(f);
        }
        globfree(&g);
    }
    static const char *const defaults[] = {"/lib64", "/usr/lib64", "/lib", "/usr/lib"};
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        dirs_add(ds, defaults[i]);
}

/* Splits a RUNPATH/RPATH list, expanding $ORIGIN; entries with other loader tokens ($LIB,
 * $PLATFORM) are skipped rather than guessed. */
static void dirs_from_path(closure_dirs *ds, const char *list, const char *origin)
{
    for (const char *p = list; p && *p;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char item[PATH_MAX], out[PATH_MAX];
        if (n < sizeof item) {
            memcpy(item, p, n);
            item[n] = '\0';
            const char *rest = NULL;
            if (strncmp(item, "$ORIGIN", 7) == 0)
                rest = item + 7;
            else if (strncmp(item, "${ORIGIN}", 9) == 0)
                rest = item + 9;
            if (rest && snprintf(out, sizeof out, "%s%s", origin, rest) < (int)sizeof out)
                dirs_add(ds, out);
            else if (!rest && !strchr(item, '$'))
                dirs_add(ds, item);
        }
        p = colon ? colon + 1 : p + n;
    }
}

static char *dir_of(const char *path)
{
    char *d = strdup(path);
    char *slash = d ? strrchr(d, '/') : NULL;
    if (slash)
        *(slash == d ? slash + 1 : slash) = '\0';
    return d;
}

/* A file that ld.so would accept for this bundle: an ELF of the bundle's machine. */
static int closure_candidate_ok(const char *path, uint16_t machine)
{
    if (access(path, R_OK) != 0)
        return 0;
    agx_elf_info info;
    int rc = agx_elf_read(path, &info, NULL);
    int ok = rc == 0 && info.machine == machine;
    if (rc == 0)
        agx_elf_info_free(&info);
    return ok;
}

typedef struct closure {
    agx_plan *p;
    closure_dirs sys;
} closure;

static int closure_find(closure *c, const agx_elf_info *who, const char *origin, const char *name,
                        char found[PATH_MAX], agx_error *err)
{
    if (strchr(name, '/'))
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "DT_NEEDED '%s' is a path; only library names can be bundled", name);
    closure_dirs own = {0};
    dirs_from_path(&own, who->runpath ? who->runpath : who->rpath, origin);
    const closure_dirs *lists[2] = {&own, &c->sys};
    int rc = AGX_ERR_NOT_FOUND;
    for (size_t l = 0; l < 2 && rc != 0; l++)
        for (size_t i = 0; i < lists[l]->n && rc != 0; i++)
            if (snprintf(found, PATH_MAX, "%s/%s", lists[l]->d[i], name) < PATH_MAX &&
                closure_candidate_ok(found, c->p->machine))
                rc = 0;
    dirs_free(&own);
    if (rc != 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "library %s is needed but not found in the object's RUNPATH nor the "
                             "loader folders of this host (install its package)",
                             name);
    return 0;
}

/* Plans lib/<name> with the content of the file found (its real path). */
static int closure_add_lib(closure *c, const char *name, const char *found, agx_error *err)
{
    char real[PATH_MAX], dst[PATH_MAX];
    if (!realpath(found, real))
        return agx_error_set(err, AGX_ERR_IO, "cannot resolve %s", found);
    snprintf(dst, sizeof dst, "lib/%s", name);
    return agx_plan_add(c->p, dst, real, AGX_PLAN_LIB, NULL, err);
}

static int closure_plugins_of(closure *c, const char *name, const char *found, agx_error *err)
{
    for (size_t i = 0; i < sizeof closure_plugins / sizeof closure_plugins[0]; i++) {
        size_t plen = strlen(closure_plugins[i].lib_prefix);
        if (strncmp(name, closure_plugins[i].lib_prefix, plen) != 0)
            continue;
        char *dir = dir_of(found);
        char *plugin = dir ? agx_bundle_join(dir, closure_plugins[i].plugin) : NULL;
        int rc = 0;
        if (!plugin)
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        else if (!closure_candidate_ok(plugin, c->p->machine))
            rc = agx_error_set(err, AGX_ERR_NOT_FOUND,
                               "%s loads its plugin %s at run time, but it is not in %s (install "
                               "the %s package)",
                               name, closure_plugins[i].plugin, dir, closure_plugins[i].package);
        agx_plan_entry *lib = NULL;
        if (rc == 0)
            rc = closure_add_lib(c, closure_plugins[i].plugin, plugin, err);
        if (rc == 0) {
            char dst[PATH_MAX];
            snprintf(dst, sizeof dst, "lib/%s", name);
            lib = agx_plan_find(c->p, dst);
            if (lib && !lib->plugin_dir_from && !(lib->plugin_dir_from = strdup(dir)))
                rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        }
        free(plugin);
        free(dir);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int closure_interp(closure *c, const char *interp, agx_error *err)
{
    const char *base = agx_bundle_basename(interp);
    if (c->p->interp_name && strcmp(c->p->interp_name, base) != 0)
        return agx_error_set(err, AGX_ERR_CONFLICT,
                             "executables use two different dynamic loaders (%s and %s)",
                             c->p->interp_name, interp);
    char real[PATH_MAX], dst[PATH_MAX];
    if (!realpath(interp, real))
        return agx_error_set(err, AGX_ERR_NOT_FOUND, "dynamic loader %s not found", interp);
    if (!c->p->interp_name && !(c->p->interp_name = strdup(base)))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    snprintf(dst, sizeof dst, "lib/%s", base);
    /* libc also names the loader in DT_NEEDED; that entry is the same file. */
    agx_plan_entry *e = agx_plan_find(c->p, dst);
    if (e && strcmp(e->src, real) == 0) {
        e->kind = AGX_PLAN_INTERP;
        return 0;
    }
    return agx_plan_add(c->p, dst, real, AGX_PLAN_INTERP, NULL, err);
}

static int closure_visit(closure *c, size_t idx, agx_error *err)
{
    agx_elf_info info;
    char *src = strdup(c->p->e[idx].src);
    if (!src)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    int rc = agx_elf_read(src, &info, err);
    if (rc == 1)
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s is not an ELF file", src);
    if (rc != 0) {
        free(src);
        return rc;
    }
    if (info.machine != c->p->machine)
        rc = agx_error_set(err, AGX_ERR_CONFLICT, "%s is built for another machine (e_machine %u)",
                           src, info.machine);
    if (rc == 0 && info.interp)
        rc = closure_interp(c, info.interp, err);
    char *origin = dir_of(src);
    if (rc == 0 && !origin)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; rc == 0 && i < info.nneeded; i++) {
        char dst[PATH_MAX], found[PATH_MAX];
        snprintf(dst, sizeof dst, "lib/%s", info.needed[i]);
        if (agx_plan_find(c->p, dst))
            continue;
        rc = closure_find(c, &info, origin, info.needed[i], found, err);
        if (rc == 0)
            rc = closure_add_lib(c, info.needed[i], found, err);
        if (rc == 0)
            rc = closure_plugins_of(c, info.needed[i], found, err);
        if (rc != 0)
            agx_error_prefix(err, "%s", src);
    }
    free(origin);
    free(src);
    agx_elf_info_free(&info);
    return rc;
}

int agx_closure_resolve(agx_plan *p, agx_error *err)
{
    closure c = {.p = p};
    dirs_system(&c.sys);
    int rc = 0;
    /* The plan grows while it is walked: every added library is visited in turn. */
    for (size_t i = 0; rc == 0 && i < p->n; i++)
        if (p->e[i].kind == AGX_PLAN_EXEC || p->e[i].kind == AGX_PLAN_LIB)
            rc = closure_visit(&c, i, err);
    dirs_free(&c.sys);
    return rc;
}

int agx_closure_add_root(agx_plan *p, const char *dst, const char *src, int want_lib, agx_error *err)
{
    agx_elf_info info;
    int rc = agx_elf_read(src, &info, err);
    if (rc < 0)
        return rc;
    agx_plan_kind kind = AGX_PLAN_PLAIN;
    if (rc == 0 && info.is_dynamic)
        kind = info.interp ? AGX_PLAN_EXEC : AGX_PLAN_LIB;
    if (rc == 0 && kind != AGX_PLAN_PLAIN && p->machine && info.machine != p->machine)
        rc = agx_error_set(err, AGX_ERR_CONFLICT, "%s is built for another machine (e_machine %u)",
                           src, info.machine);
    else if (want_lib && (kind != AGX_PLAN_LIB || info.type != ET_DYN))
        rc = agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s is not a shared object", src);
    else
        rc = 0;
    if (rc == 0 && kind != AGX_PLAN_PLAIN && !p->machine)
        p->machine = info.machine;
    agx_elf_info_free(&info);
    return rc == 0 ? agx_plan_add(p, dst, src, kind, NULL, err) : rc;
}
