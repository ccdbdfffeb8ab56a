/* files.h — the files of a backend that keeps its sandboxes in a state folder of its own (local,
 * ns): folders made and removed without following a symlink (a sandbox may write inside them),
 * records replaced atomically, a log's tail quoted in an error. Part of the backend toolkit
 * (toolkit.h), in libagentix; thread-safe. */
#ifndef AGENTIX_BACKEND_FILES_H
#define AGENTIX_BACKEND_FILES_H

#include <stddef.h>

#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGX_FS_RMTREE_MAX_DEPTH 256 /* deeper trees fail with AGX_ERR_LIMIT (one fd per level) */
#define AGX_FS_LOG_TAIL_BYTES 1536  /* what agx_fs_log_tail quotes at most */

/* Removes the tree at path, never following a symlink (one inside is removed as a link). A
 * missing path is success. AGX_ERR_IO naming the path, AGX_ERR_LIMIT past the depth bound. */
AGX_API int agx_fs_rmtree(const char *path, agx_error *err);
/* mkdir -p: every missing folder of the absolute or relative path is made with mode 0700 (the
 * umask applies); existing ones are left as they are. */
AGX_API int agx_fs_mkdirs(const char *path, agx_error *err);
/* Replaces path with data atomically: written to "<path>.tmp" (mode 0600, not through a
 * symlink), then renamed over path, so a reader sees the old or the new content, never a part. */
AGX_API int agx_fs_write_atomic(const char *path, const char *data, size_t len, agx_error *err);
/* Puts the last lines (up to AGX_FS_LOG_TAIL_BYTES, starting at a whole line) of the log at path
 * into err->detail, or "(no <name>)" / "(<name> is empty)"; never follows a symlink. For create
 * errors that should show what the runtime said before it died. err may be NULL. */
AGX_API void agx_fs_log_tail(const char *path, agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
