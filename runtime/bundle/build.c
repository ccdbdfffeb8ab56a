/* build.c — `agentix build` end to end on the build host: plans the runtime (agentix-server,
 * agentix-worker, built-in modules, taken from beside the running libagentix), the spec's modules,
 * tools and files; resolves their library closure; writes and rewrites the tree; stamps it with
 * its content digest in BUNDLE. Layout of the tree: docs/BUNDLES.md. */
#include "runtime/bundle/bundle_internal.h"

#include "agentix/backend/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGX_BUILD_STAGES 4

/* Loaded by agentix-worker by name; every bundle carries them. */
static const char *const build_builtin_modules[] = {"agentix.bash.so", "agentix.files.so"};
static const char *const build_runtime_bins[] = {"agentix-server", "agentix-worker"};

static void build_progress(const agx_bundle_build_options *o, int no, const char *stage,
                           size_t done, size_t total)
{
    if (o && o->progress)
        o->progress(o->progress_user, no, AGX_BUILD_STAGES, stage, done, total);
}

/* The output folder: created, or an existing empty one. *created says whether to remove it on
 * failure. */
static int build_open_dir(const char *dir, int *created, agx_error *err)
{
    *created = 0;
    if (mkdir(dir, 0755) == 0) {
        *created = 1;
        return chmod(dir, 0755) == 0 ? 0
                                      : agx_error_set(err, AGX_ERR_IO, "cannot set mode of %s: %s",
                                                      dir, strerror(errno));
    }
    if (errno != EEXIST)
        return agx_error_set(err, AGX_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d)
        return agx_error_set(err, AGX_ERR_CONFLICT, "%s exists and is not a folder", dir);
    struct dirent *de;
    int empty = 1;
    while (empty && (de = readdir(d)) != NULL)
        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
    closedir(d);
    return empty ? 0 : agx_error_set(err, AGX_ERR_CONFLICT,
                                     "output folder %s is not empty (remove it or pick another)", dir);
}

static int build_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

static int build_plan_runtime(agx_plan *p, const char *libdir, agx_error *err)
{
    char src[PATH_MAX], dst[PATH_MAX], target[PATH_MAX], real[PATH_MAX];
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < sizeof build_runtime_bins / sizeof *build_runtime_bins; i++) {
        const char *bin = build_runtime_bins[i];
        snprintf(src, sizeof src, "%s/agentix/bin/%s", libdir, bin);
        if (!realpath(src, real))
            return agx_error_set(err, AGX_ERR_NOT_FOUND,
                                 "runtime binary %s not found (build the %s target, or reinstall "
                                 "agentix)",
                                 src, bin);
        /* Where libagentix looks for it (<libdir>/agentix/bin), plus bin/ for people. */
        snprintf(dst, sizeof dst, "lib/agentix/bin/%s", bin);
        rc = agx_closure_add_root(p, dst, real, 0, err);
        snprintf(target, sizeof target, "../lib/agentix/bin/%s", bin);
        snprintf(dst, sizeof dst, "bin/%s", bin);
        if (rc == 0)
            rc = agx_plan_add(p, dst, target, AGX_PLAN_SYMLINK, NULL, err);
    }
    for (size_t i = 0; rc == 0 && i < sizeof build_builtin_modules / sizeof *build_builtin_modules;
         i++) {
        snprintf(src, sizeof src, "%s/agentix/modules/%s", libdir, build_builtin_modules[i]);
        if (!realpath(src, real))
            return agx_error_set(err, AGX_ERR_NOT_FOUND,
                                 "built-in module %s not found (build it, or reinstall agentix)", src);
        snprintf(dst, sizeof dst, "lib/agentix/modules/%s", build_builtin_modules[i]);
        rc = agx_closure_add_root(p, dst, real, 1, err);
    }
    return rc;
}

static int build_plan_spec(agx_plan *p, const agx_bundle_spec *s, agx_error *err)
{
    char dst[PATH_MAX];
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < s->nmodules; i++) {
        const char *base = s->modules[i].dst;
        size_t n = strlen(base);
        if (n < 4 || strcmp(base + n - 3, ".so") != 0)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "module %s: the file name must be <module name>.so, as "
                                 "agentix-worker loads modules by name",
                                 s->modules[i].src);
        snprintf(dst, sizeof dst, "lib/agentix/modules/%s", base);
        rc = agx_closure_add_root(p, dst, s->modules[i].src, 1, err);
    }
    for (size_t i = 0; rc == 0 && i < s->ntools; i++) {
        snprintf(dst, sizeof dst, "bin/%s", s->tools[i].dst);
        rc = agx_closure_add_root(p, dst, s->tools[i].src, 0, err);
    }
    for (size_t i = 0; rc == 0 && i < s->nfiles; i++) {
        struct stat st;
        if (stat(s->files[i].src, &st) != 0 || !S_ISREG(st.st_mode))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "file %s is not a regular file",
                                 s->files[i].src);
        rc = agx_plan_add(p, s->files[i].dst, s->files[i].src, AGX_PLAN_PLAIN, NULL, err);
    }
    return rc;
}

static int build_write_meta(const char *dir, const char *name, const char *digest, agx_error *err)
{
    char *path = agx_bundle_join(dir, AGX_BUNDLE_META);
    FILE *f = path ? fopen(path, "wxe") : NULL;
    if (!f) {
        int rc = agx_error_set(err, AGX_ERR_IO, "cannot create %s/%s: %s", dir, AGX_BUNDLE_META,
                               strerror(errno));
        free(path);
        return rc;
    }
    fprintf(f,
            "# agentix bundle: a runtime tree mounted at %s (see docs/BUNDLES.md)\n"
            "format = %d\nname = %s\nprefix = %s\ndigest = %s\n",
            AGX_BUNDLE_PREFIX, AGX_BUNDLE_FORMAT, name, AGX_BUNDLE_PREFIX, digest);
    int rc = 0;
    if (fchmod(fileno(f), 0644) != 0 || ferror(f))
        rc = agx_error_set(err, AGX_ERR_IO, "cannot write %s", path);
    if (fclose(f) != 0 && rc == 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot write %s", path);
    free(path);
    return rc;
}

static int build_into(const agx_bundle_spec *s, const char *dir, const agx_bundle_build_options *o,
                      char digest[AGX_BUNDLE_DIGEST_MAX], agx_error *err)
{
    const char *libdir = o && o->runtime_libdir ? o->runtime_libdir : agx_runtime_libdir();
    if (!libdir)
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "cannot locate libagentix, so not the runtime binaries beside it");
    agx_plan plan = {0};
    build_progress(o, 1, "planning the runtime and the spec", 0, 0);
    int rc = build_plan_runtime(&plan, libdir, err);
    if (rc == 0)
        rc = build_plan_spec(&plan, s, err);
    build_progress(o, 2, "resolving shared libraries", 0, 0);
    if (rc == 0)
        rc = agx_closure_resolve(&plan, err);
    if (rc == 0 && !plan.interp_name)
        rc = agx_error_set(err, AGX_ERR_INTERNAL, "no dynamic loader found for the runtime");
    build_progress(o, 2, "resolving shared libraries", plan.n, plan.n);
    if (rc == 0)
        rc = agx_stage_write(&plan, dir, o, 3, AGX_BUILD_STAGES, err);
    agx_plan_free(&plan);
    build_progress(o, 4, "computing the content digest", 0, 0);
    if (rc == 0)
        rc = agx_bundle_digest(dir, digest, err);
    if (rc == 0)
        rc = build_write_meta(dir, s->name, digest, err);
    build_progress(o, 4, "computing the content digest", 1, 1);
    return rc;
}

int agx_bundle_build_tree(const agx_bundle_spec *s, const char *dir,
                          const agx_bundle_build_options *o, char digest[AGX_BUNDLE_DIGEST_MAX],
                          agx_error *err)
{
    if (!s || !dir || !*dir || !digest)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "bundle spec and output folder needed");
    if (!agx_bundle_spec_name(s))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "the bundle has no name (set 'name = NAME:TAG' or --name)");
    int created;
    int rc = build_open_dir(dir, &created, err);
    if (rc != 0)
        return rc;
    rc = build_into(s, dir, o, digest, err);
    if (rc != 0) {
        /* Never leave a half-built tree that looks like a bundle. */
        nftw(dir, build_rm_one, 16, FTW_DEPTH | FTW_PHYS);
        if (!created)
            mkdir(dir, 0755);
    }
    return rc;
}
