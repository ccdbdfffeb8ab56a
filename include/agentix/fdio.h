/* fdio.h — whole reads and writes on file descriptors and small files, bounded in size, resumed
 * after EINTR and short transfers: what every side that handles a file or a pipe needs once.
 * Part of libagentix-runtime; thread-safe. */
#ifndef AGENTIX_FDIO_H
#define AGENTIX_FDIO_H

#include <stddef.h>

#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes all len bytes to fd. 0, or -1 with errno set (a write that makes no progress is EIO). */
AGX_API int agx_fd_write_all(int fd, const void *data, size_t len);

/* Reads fd to its end into a malloc'd, NUL-terminated buffer (*out; *len without the NUL, len
 * may be NULL). More than max bytes fails with AGX_ERR_LIMIT without reading further; errors
 * name `what` (a path, "the pipe", …). */
AGX_API int agx_fd_read_all(int fd, size_t max, const char *what, char **out, size_t *len,
                            agx_error *err);

/* Opens path (O_NOFOLLOW when no_follow) and reads it like agx_fd_read_all. A missing file is
 * AGX_ERR_NOT_FOUND, other open and read failures AGX_ERR_IO; messages name the path. */
AGX_API int agx_file_read(const char *path, size_t max, int no_follow, char **out, size_t *len,
                          agx_error *err);

#ifdef __cplusplus
}
#endif
#endif
