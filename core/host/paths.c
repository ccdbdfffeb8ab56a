/* paths.c — locating libagentix on disk (dladdr on one of its own symbols) and the runtime
 * binaries, modules and backend plugins laid out beside it, in the build tree and installed;
 * the backend toolkit's view of them (runtime.h) and its version (toolkit.h). */
#include "core/host/paths.h"

#include "agentix/backend/runtime.h"
#include "agentix/backend/toolkit.h"
#include "agentix/error.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char agx_libdir_buf[PATH_MAX];
static const char *agx_libdir_value;
static pthread_once_t agx_libdir_once = PTHREAD_ONCE_INIT;

static void agx_libdir_compute(void)
{
    Dl_info info;
    if (!dladdr((void *)&agx_path_libdir, &info) || !info.dli_fname)
        return;
    char *real = realpath(info.dli_fname, NULL);
    if (!real)
        return;
    char *slash = strrchr(real, '/');
    if (slash && slash != real && (size_t)(slash - real) < sizeof agx_libdir_buf) {
        memcpy(agx_libdir_buf, real, (size_t)(slash - real));
        agx_libdir_buf[slash - real] = '\0';
        agx_libdir_value = agx_libdir_buf;
    }
    free(real);
}

const char *agx_path_libdir(void)
{
    pthread_once(&agx_libdir_once, agx_libdir_compute);
    return agx_libdir_value;
}

int agx_path_join(char *out, size_t n, const char *a, const char *b)
{
    int len = snprintf(out, n, "%s/%s", a, b);
    if (len < 0 || (size_t)len >= n)
        return AGX_ERR_LIMIT;
    return 0;
}

static int agx_path_under_libdir(const char *rel, char *out, size_t n)
{
    const char *libdir = agx_path_libdir();
    if (!libdir)
        return AGX_ERR_NOT_FOUND;
    return agx_path_join(out, n, libdir, rel);
}

int agx_path_runtime_bin(const char *name, char *out, size_t n)
{
    if (!name || !*name || strchr(name, '/') || !out)
        return AGX_ERR_INVALID_ARGUMENT;
    char rel[PATH_MAX];
    if (agx_path_join(rel, sizeof rel, "agentix/bin", name) != 0)
        return AGX_ERR_LIMIT;
    return agx_path_under_libdir(rel, out, n);
}

int agx_path_module_dir(char *out, size_t n)
{
    return out ? agx_path_under_libdir("agentix/modules", out, n) : AGX_ERR_INVALID_ARGUMENT;
}

int agx_path_plugin_dir(char *out, size_t n)
{
    return out ? agx_path_under_libdir("agentix/backends", out, n) : AGX_ERR_INVALID_ARGUMENT;
}

/* ---- the backend toolkit's view ---- */

const char *agx_runtime_libdir(void) { return agx_path_libdir(); }

int agx_runtime_bin_path(const char *name, char *out, size_t n, agx_error *err)
{
    int rc = agx_path_runtime_bin(name, out, n);
    if (rc == AGX_ERR_INVALID_ARGUMENT)
        return agx_error_set(err, rc, "runtime binary name '%.64s' is empty or has a '/'",
                             name ? name : "(null)");
    if (rc == AGX_ERR_NOT_FOUND)
        return agx_error_set(err, rc, "cannot locate libagentix, so not the runtime binaries "
                                      "beside it (<libdir>/agentix/bin/%s)", name);
    if (rc)
        return agx_error_set(err, rc, "the path of runtime binary '%s' is too long", name);
    return 0;
}

unsigned agx_backend_toolkit_version(void) { return AGX_BACKEND_TOOLKIT_VERSION; }
