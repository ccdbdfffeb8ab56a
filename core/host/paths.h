/* paths.h (internal) — where libagentix finds what ships beside it. The build tree and an
 * installed prefix share one shape relative to the library (see cmake/AgxLayout.cmake):
 *   <libdir>/libagentix.so, <libdir>/agentix/{backends,modules,bin}/
 * so every lookup starts from the library's own location (dladdr), never from the cwd. */
#ifndef AGX_CORE_PATHS_H
#define AGX_CORE_PATHS_H

#include <stddef.h>

/* The canonical folder holding the loaded libagentix, or NULL if it cannot be determined.
 * Computed once; the string lives for the process lifetime. */
const char *agx_path_libdir(void);

/* Writes "<a>/<b>" into out. AGX_ERR_LIMIT when it does not fit. */
int agx_path_join(char *out, size_t n, const char *a, const char *b);

/* <libdir>/agentix/bin/<name> (e.g. agentix-server). AGX_ERR_NOT_FOUND when libdir is unknown,
 * AGX_ERR_INVALID_ARGUMENT for an empty name or one containing '/', AGX_ERR_LIMIT if too long.
 * Does not check that the file exists. */
int agx_path_runtime_bin(const char *name, char *out, size_t n);

/* <libdir>/agentix/modules and <libdir>/agentix/backends; same errors as above. */
int agx_path_module_dir(char *out, size_t n);
int agx_path_plugin_dir(char *out, size_t n);

#endif
