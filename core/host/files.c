/* files.c — the state folders of backends that keep their sandboxes on disk (files.h, part of
 * the backend toolkit): folders made and removed without following links, records replaced
 * atomically, the runtime's log quoted in create errors. */
#include "agentix/backend/files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentix/fdio.h"

#define PATH_MAX_LEN 4096

static int io_error(agx_error *err, const char *what, const char *path)
{
    int e = errno;
    return agx_error_set(err, AGX_ERR_IO, "%s '%s': %s", what, path, strerror(e));
}

/* Empties the directory open as dfd (consumed), then the caller removes it. */
static int rm_contents(int dfd, const char *top, int depth, agx_error *err)
{
    if (depth > AGX_FS_RMTREE_MAX_DEPTH) {
        close(dfd);
        return agx_error_set(err, AGX_ERR_LIMIT,
                             "cannot remove '%s': directories nested deeper than %d levels; "
                             "remove it by hand", top, AGX_FS_RMTREE_MAX_DEPTH);
    }
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return io_error(err, "cannot read directory under", top);
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR && errno != EPERM) {
            rc = io_error(err, "cannot remove a file under", top);
            break;
        }
        int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) {
            rc = io_error(err, "cannot open a directory under", top);
            break;
        }
        rc = rm_contents(sub, top, depth + 1, err);
        if (rc == 0 && unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT)
            rc = io_error(err, "cannot remove a directory under", top);
    }
    if (rc == 0 && errno != 0)
        rc = io_error(err, "cannot read directory under", top);
    closedir(d);
    return rc;
}

int agx_fs_rmtree(const char *path, agx_error *err)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        if (errno == ENOENT)
            return 0;
        return io_error(err, "cannot open directory", path);
    }
    int rc = rm_contents(dfd, path, 0, err);
    if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
        rc = io_error(err, "cannot remove directory", path);
    return rc;
}

int agx_fs_mkdirs(const char *path, agx_error *err)
{
    char buf[PATH_MAX_LEN];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof buf)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "directory path '%s' is empty or too long", path);
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return io_error(err, "cannot create directory", buf);
        if (c == '\0')
            break;
        *p = c;
    }
    return 0;
}

int agx_fs_write_atomic(const char *path, const char *data, size_t len, agx_error *err)
{
    char tmp[PATH_MAX_LEN];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "path '%s' is too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return io_error(err, "cannot create", tmp);
    int bad = agx_fd_write_all(fd, data, len);
    if (close(fd) != 0)
        bad = -1;
    if (bad || rename(tmp, path) != 0) {
        int rc = io_error(err, "cannot write", path);
        unlink(tmp);
        return rc;
    }
    return 0;
}

void agx_fs_log_tail(const char *path, agx_error *err)
{
    if (!err)
        return;
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char note[160];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(note, sizeof note, "(no %.120s)", name);
        agx_error_set_detail(err, note, (size_t)-1);
        return;
    }
    char buf[AGX_FS_LOG_TAIL_BYTES + 1];
    struct stat st;
    off_t from = 0;
    if (fstat(fd, &st) == 0 && st.st_size > AGX_FS_LOG_TAIL_BYTES)
        from = st.st_size - AGX_FS_LOG_TAIL_BYTES;
    ssize_t n = pread(fd, buf, AGX_FS_LOG_TAIL_BYTES, from);
    close(fd);
    if (n <= 0) {
        snprintf(note, sizeof note, "(%.120s is empty)", name);
        agx_error_set_detail(err, note, (size_t)-1);
        return;
    }
    buf[n] = '\0';
    const char *start = buf;
    if (from > 0) { /* begin at a whole line */
        const char *nl = memchr(buf, '\n', (size_t)n);
        if (nl && nl + 1 < buf + n)
            start = nl + 1;
    }
    agx_error_set_detail(err, start, (size_t)(buf + n - start));
}
