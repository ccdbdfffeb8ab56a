/* fdio.c — whole, bounded reads and writes on file descriptors and small files (fdio.h), the one
 * copy of the EINTR / short-transfer loops every side needs. */
#include "agentix/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int agx_fd_write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int agx_fd_read_all(int fd, size_t max, const char *what, char **out, size_t *len, agx_error *err)
{
    *out = NULL;
    if (max > SIZE_MAX / 4)
        max = SIZE_MAX / 4; /* keeps max + 1 and the doubling below from overflowing */
    size_t cap = max < 4096 ? max + 1 : 4096, used = 0;
    char *buf = malloc(cap);
    if (!buf)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory reading %s", what);
    for (;;) {
        if (used == cap) { /* grow towards max + 1: one byte more tells an oversized input */
            size_t ncap = cap > (max + 1) / 2 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory reading %s", what);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            return agx_error_set(err, AGX_ERR_IO, "cannot read %s: %s", what, strerror(e));
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            free(buf);
            return agx_error_set(err, AGX_ERR_LIMIT, "%s is larger than %zu bytes", what, max);
        }
    }
    if (used == cap) {
        char *nb = realloc(buf, used + 1);
        if (!nb) {
            free(buf);
            return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory reading %s", what);
        }
        buf = nb;
    }
    buf[used] = '\0';
    *out = buf;
    if (len)
        *len = used;
    return 0;
}

int agx_file_read(const char *path, size_t max, int no_follow, char **out, size_t *len,
                  agx_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | (no_follow ? O_NOFOLLOW : 0));
    if (fd < 0) {
        int e = errno;
        return agx_error_set(err, e == ENOENT ? AGX_ERR_NOT_FOUND : AGX_ERR_IO,
                             "cannot open '%s': %s", path, strerror(e));
    }
    char what[300];
    snprintf(what, sizeof what, "'%.280s'", path);
    int rc = agx_fd_read_all(fd, max, what, out, len, err);
    close(fd);
    return rc;
}
