/* files.c — the built-in `agentix.files` module: upload, download, stat and list files in the
 * sandbox, confined to one root (AGENTIX_FILES_ROOT, default the worker's cwd). Paths are
 * normalised lexically (no `..` above the root, absolute paths only inside it; a NUL byte is
 * refused, never cut at) and then opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so
 * no symlink can lead outside; kernels without openat2 get a component walk that follows no
 * symlinks at all. Files are opened non-blocking and must be regular (a FIFO or device would block
 * the call forever); download refuses a file with more than one hard link, since another link may
 * lie outside the root (AGENTIX_FILES_HARDLINKS=allow lifts that). */
#include "agentix/fdio.h"
#include "agentix/module.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_DOWNLOAD ((off_t)60 << 20) /* the reply must fit one 64 MiB frame */
#define CHUNK_MIN 4096                 /* download_stream's item size bounds */
#define CHUNK_MAX (16 << 20)

typedef struct root {
    int fd;
    char path[PATH_MAX];
} root;

static bool have_openat2;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

/* AGENTIX_FILES_NO_OPENAT2=1 takes the component walk even where openat2 exists (the tests cover
 * both paths with it). */
static void probe_openat2(void)
{
    const char *off = getenv("AGENTIX_FILES_NO_OPENAT2");
    if (off && strcmp(off, "1") == 0)
        return;
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof how);
    have_openat2 = fd >= 0; /* ENOSYS on old kernels, EPERM under some seccomp profiles */
    if (fd >= 0)
        close((int)fd);
}

static int open_root(agx_ctx *ctx, root *r)
{
    const char *env = getenv("AGENTIX_FILES_ROOT");
    const char *want = env && *env ? env : ".";
    if (!realpath(want, r->path))
        return agx_ctx_fail(ctx, "FileNotFoundError", "files root '%s' (AGENTIX_FILES_ROOT): %s", want,
                            strerror(errno));
    r->fd = open(r->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->fd < 0)
        return agx_ctx_fail(ctx, "OSError", "files root '%s': %s", r->path, strerror(errno));
    return 0;
}

/* Normalises `path` to a relative path under the root ("." for the root itself): resolves "." and
 * "..", strips the root prefix from absolute paths. -1 when it leads outside. */
static int normalize(const root *r, const char *path, char *out, size_t outlen)
{
    char tmp[PATH_MAX + 2];
    const char *rel = path;
    if (path[0] == '/') {
        size_t rl = strlen(r->path);
        /* compare the normalised absolute path with the root */
        char abs[PATH_MAX];
        root slash = {.fd = -1, .path = "/"};
        if (normalize(&slash, path + 1, abs, sizeof abs) != 0)
            return -1;
        snprintf(tmp, sizeof tmp, "/%s", strcmp(abs, ".") == 0 ? "" : abs);
        if (strcmp(r->path, "/") == 0)
            rel = tmp + 1;
        else if (strncmp(tmp, r->path, rl) == 0 && (tmp[rl] == '/' || tmp[rl] == '\0'))
            rel = tmp + rl + (tmp[rl] == '/');
        else
            return -1;
    }
    size_t len = 0;
    for (const char *p = rel; *p;) {
        const char *end = strchr(p, '/');
        size_t cl = end ? (size_t)(end - p) : strlen(p);
        if (cl == 2 && p[0] == '.' && p[1] == '.') {
            if (len == 0)
                return -1;
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* the slash */
        } else if (cl > 0 && !(cl == 1 && p[0] == '.')) {
            if (len + cl + 2 > outlen)
                return -1;
            if (len)
                out[len++] = '/';
            memcpy(out + len, p, cl);
            len += cl;
        }
        p += cl + (end ? 1 : 0);
    }
    if (len == 0)
        out[len++] = '.';
    out[len] = '\0';
    return 0;
}

/* Without openat2: every component opened with O_NOFOLLOW, so symlinks are refused (ELOOP). */
static int walk_open(int rootfd, const char *rel, int flags, mode_t mode)
{
    int cur = dup(rootfd);
    char comp[NAME_MAX + 1];
    const char *p = rel;
    while (cur >= 0) {
        const char *end = strchr(p, '/');
        size_t cl = end ? (size_t)(end - p) : strlen(p);
        if (cl > NAME_MAX) {
            close(cur);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(comp, p, cl);
        comp[cl] = '\0';
        int next = end ? openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                       : openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
        int e = errno;
        struct stat st;
        /* O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR: name the real reason */
        if (next < 0 && e == ENOTDIR && fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(st.st_mode))
            e = ELOOP;
        close(cur);
        /* O_PATH | O_NOFOLLOW opens a final symlink itself instead of refusing it */
        if (!end && next >= 0 && (flags & O_PATH) && fstat(next, &st) == 0 && S_ISLNK(st.st_mode)) {
            close(next);
            next = -1;
            e = ELOOP;
        }
        errno = e;
        if (!end || next < 0)
            return next;
        cur = next;
        p = end + 1;
    }
    return -1;
}

/* Opens a normalised relative path beneath the root. */
static int open_beneath(const root *r, const char *rel, int flags, mode_t mode)
{
    pthread_once(&probe_once, probe_openat2);
    if (have_openat2) {
        struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC), .mode = (flags & O_CREAT) ? mode : 0,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        return (int)syscall(SYS_openat2, r->fd, rel, &how, sizeof how);
    }
    if (strcmp(rel, ".") == 0)
        return openat(r->fd, ".", flags | O_CLOEXEC, mode);
    return walk_open(r->fd, rel, flags, mode);
}

/* The error for a failed open of `path`, typed like Python's OSError subclasses. */
static int fail_errno(agx_ctx *ctx, const char *path, int e)
{
    switch (e) {
    case EXDEV:
    case ELOOP:
        if (!have_openat2)
            return agx_ctx_fail(ctx, "PermissionError", "path '%s' goes through a symlink; without "
                                "openat2 (Linux < 5.6) symlinks are not followed", path);
        return agx_ctx_fail(ctx, "PermissionError", "path '%s' leads outside the files root (through a "
                            "symlink)", path);
    case EACCES:
    case EPERM: return agx_ctx_fail(ctx, "PermissionError", "path '%s': %s", path, strerror(e));
    case ENOENT: return agx_ctx_fail(ctx, "FileNotFoundError", "path '%s' does not exist", path);
    case ENOTDIR: return agx_ctx_fail(ctx, "NotADirectoryError", "path '%s': a component is not a directory", path);
    case EISDIR: return agx_ctx_fail(ctx, "IsADirectoryError", "path '%s' is a directory", path);
    default: return agx_ctx_fail(ctx, "OSError", "path '%s': %s", path, strerror(e));
    }
}

/* Opens the root and normalises the call's `path` argument into rel. */
static int prepare(agx_ctx *ctx, root *r, const char *path, char *rel, size_t rel_len)
{
    if (!path || !*path)
        return agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "path must not be empty");
    int rc = open_root(ctx, r);
    if (rc)
        return rc;
    if (normalize(r, path, rel, rel_len) != 0) {
        close(r->fd);
        return agx_ctx_fail(ctx, "PermissionError", "path '%s' is outside the files root %s", path, r->path);
    }
    return 0;
}

/* The path argument, or NULL (the call failed) when it holds a NUL byte: C would read up to it only,
 * and `sub\0/../..` would quietly mean `sub`. */
static const char *path_arg(agx_ctx *ctx)
{
    size_t len = 0;
    const char *p = agx_value_get_string(agx_ctx_arg(ctx, "path"), &len);
    if (p && memchr(p, '\0', len)) {
        agx_ctx_fail(ctx, AGX_REMOTE_VALIDATION, "path holds a NUL byte at offset %zu; paths cannot "
                     "contain NUL", (size_t)((const char *)memchr(p, '\0', len) - p));
        return NULL;
    }
    return p;
}

/* Another hard link to the file may be outside the files root (made by code in the sandbox). */
static bool hardlinks_allowed(void)
{
    const char *v = getenv("AGENTIX_FILES_HARDLINKS");
    return v && strcmp(v, "allow") == 0;
}

static agx_value *stat_value(const char *name_key, const char *name, const struct stat *st)
{
    agx_value *v = agx_value_map();
    agx_value_map_set(v, name_key, agx_value_string(name));
    agx_value_map_set(v, "size", agx_value_int((int64_t)st->st_size));
    agx_value_map_set(v, "mode", agx_value_int((int64_t)(st->st_mode & 07777)));
    agx_value_map_set(v, "is_dir", agx_value_bool(S_ISDIR(st->st_mode)));
    agx_value_map_set(v, "mtime", agx_value_double((double)st->st_mtim.tv_sec + st->st_mtim.tv_nsec / 1e9));
    return v;
}

/* ---- upload: atomic (temp file + rename), parent directories created ---- */

/* Opens (creating as needed) the directory part of rel; returns its fd and points *base at the
 * last component. */
static int open_parent(agx_ctx *ctx, const root *r, const char *path, char *rel, const char **base)
{
    char *slash = strrchr(rel, '/');
    *base = slash ? slash + 1 : rel;
    if (!slash)
        return open_beneath(r, ".", O_RDONLY | O_DIRECTORY, 0);
    for (char *p = rel;; p++) {
        if (*p != '/' && p != slash)
            continue;
        char saved = *p;
        *p = '\0';
        int fd = open_beneath(r, rel, O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0 && errno == ENOENT) {
            char *prev = strrchr(rel, '/');
            int pfd = prev ? (*prev = '\0', open_beneath(r, rel, O_RDONLY | O_DIRECTORY, 0))
                           : open_beneath(r, ".", O_RDONLY | O_DIRECTORY, 0);
            if (prev)
                *prev = '/';
            if (pfd >= 0) {
                if (mkdirat(pfd, prev ? prev + 1 : rel, 0755) != 0 && errno != EEXIST)
                    fd = -1;
                else
                    fd = open_beneath(r, rel, O_RDONLY | O_DIRECTORY, 0);
                int e = errno;
                close(pfd);
                errno = e;
            }
        }
        *p = saved;
        if (fd < 0 || p == slash) {
            if (fd < 0)
                fail_errno(ctx, path, errno);
            return fd < 0 ? -1 : fd;
        }
        close(fd);
    }
}

/* A new file's first step: a temporary file (.agx-upload-…) beside path, so the file appears
 * whole or not at all. 0 with *fd and *dir (the parent folder), tmp and *base (path's last
 * component, inside rel) set; else the call's failure. */
static int temp_open(agx_ctx *ctx, const char *path, char *rel, size_t rel_len, int *dir,
                     int *fd, char tmp[64], const char **base)
{
    root r;
    int rc = prepare(ctx, &r, path, rel, rel_len);
    if (rc)
        return rc;
    if (strcmp(rel, ".") == 0) {
        close(r.fd);
        return agx_ctx_fail(ctx, "IsADirectoryError", "path '%s' is the files root", path);
    }
    *dir = open_parent(ctx, &r, path, rel, base);
    close(r.fd);
    if (*dir < 0)
        return AGX_ERR_REMOTE;
    *fd = -1;
    for (int attempt = 0; attempt < 100 && *fd < 0; attempt++) {
        snprintf(tmp, 64, ".agx-upload-%d-%lx-%d", (int)getpid(), (unsigned long)pthread_self() & 0xffffff,
                 attempt);
        *fd = openat(*dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (*fd < 0 && errno != EEXIST)
            break;
    }
    if (*fd < 0) {
        rc = fail_errno(ctx, path, errno);
        close(*dir);
        return rc;
    }
    return 0;
}

/* The last step: closes fd and renames the temporary file over path when ok (else, or when that
 * fails, removes it); closes dir. 0 or the call's failure. */
static int temp_finish(agx_ctx *ctx, const char *path, int dir, int fd, const char *tmp,
                       const char *base, bool ok)
{
    int rc = 0;
    if (close(fd) != 0 && ok)
        rc = agx_ctx_fail(ctx, "OSError", "writing '%s': %s", path, strerror(errno));
    else if (ok && renameat(dir, tmp, dir, base) != 0)
        rc = fail_errno(ctx, path, errno);
    if (!ok || rc)
        unlinkat(dir, tmp, 0);
    close(dir);
    return rc;
}

static agx_value *upload_result(const char *path, int64_t size)
{
    agx_value *v = agx_value_map();
    agx_value_map_set(v, "path", agx_value_string(path));
    agx_value_map_set(v, "size", agx_value_int(size));
    return v;
}

static int upload(agx_ctx *ctx)
{
    const char *path = path_arg(ctx);
    if (!path)
        return AGX_ERR_REMOTE;
    size_t len;
    const char *data = agx_value_get_binary(agx_ctx_arg(ctx, "content"), &len);
    char rel[PATH_MAX], tmp[64];
    const char *base;
    int dir, fd;
    int rc = temp_open(ctx, path, rel, sizeof rel, &dir, &fd, tmp, &base);
    if (rc)
        return rc;
    if (agx_fd_write_all(fd, data ? data : "", len) != 0) {
        rc = agx_ctx_fail(ctx, "OSError", "writing '%s': %s", path, strerror(errno));
        temp_finish(ctx, path, dir, fd, tmp, base, false);
        return rc;
    }
    rc = temp_finish(ctx, path, dir, fd, tmp, base, true);
    return rc ? rc : agx_ctx_return(ctx, upload_result(path, (int64_t)len));
}

/* upload of any size: the binary items sent in are written as they come (memory: the input
 * window), and at the end of input the file replaces path whole; one item out, {path, size}. */
static int upload_stream(agx_ctx *ctx)
{
    const char *path = path_arg(ctx);
    if (!path)
        return AGX_ERR_REMOTE;
    char rel[PATH_MAX], tmp[64];
    const char *base;
    int dir, fd;
    int rc = temp_open(ctx, path, rel, sizeof rel, &dir, &fd, tmp, &base);
    if (rc)
        return rc;
    int64_t size = 0;
    agx_value *item;
    while ((rc = agx_ctx_recv(ctx, -1, &item)) == 1) {
        size_t len = 0;
        const char *data = agx_value_get_binary(item, &len);
        int w = agx_fd_write_all(fd, data ? data : "", len);
        agx_value_free(item);
        if (w != 0) {
            rc = agx_ctx_fail(ctx, "OSError", "writing '%s': %s", path, strerror(errno));
            break;
        }
        size += (int64_t)len;
    }
    int done = temp_finish(ctx, path, dir, fd, tmp, base, rc == 0);
    if (rc || done)
        return rc ? rc : done;
    return agx_ctx_emit(ctx, upload_result(path, size));
}

/* Opens path (confined to the files root) with flags: 0 with *fd, or the failed call's status. */
static int open_in_root(agx_ctx *ctx, const char *path, int flags, int *fd)
{
    root r;
    char rel[PATH_MAX];
    int rc = prepare(ctx, &r, path, rel, sizeof rel);
    if (rc)
        return rc;
    *fd = open_beneath(&r, rel, flags, 0);
    int e = errno;
    close(r.fd);
    return *fd < 0 ? fail_errno(ctx, path, e) : 0;
}

/* Opens path for reading as download and download_stream do: a regular file in the root with
 * one hard link (unless allowed), left blocking. 0 with *fd and *st, or the call's failure. */
static int open_download(agx_ctx *ctx, const char *path, int *fdp, struct stat *st)
{
    int fd;
    /* Non-blocking: opening a FIFO would otherwise wait for a writer, for good. */
    int rc = open_in_root(ctx, path, O_RDONLY | O_NONBLOCK | O_NOCTTY, &fd);
    if (rc)
        return rc;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        int e = errno;
        bool fstat_ok = fstat(fd, st) == 0;
        close(fd);
        if (!fstat_ok)
            return fail_errno(ctx, path, e);
        return S_ISDIR(st->st_mode) ? fail_errno(ctx, path, EISDIR)
                                    : agx_ctx_fail(ctx, "OSError", "path '%s' is not a regular file", path);
    }
    if (st->st_nlink > 1 && !hardlinks_allowed()) {
        close(fd);
        return agx_ctx_fail(ctx, "PermissionError", "file '%s' has %lu hard links and another may lie "
                            "outside the files root; copy it (cp) and download the copy, or set "
                            "AGENTIX_FILES_HARDLINKS=allow in the sandbox", path,
                            (unsigned long)st->st_nlink);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    *fdp = fd;
    return 0;
}

static int download(agx_ctx *ctx)
{
    const char *path = path_arg(ctx);
    if (!path)
        return AGX_ERR_REMOTE;
    int fd;
    struct stat st;
    int rc = open_download(ctx, path, &fd, &st);
    if (rc)
        return rc;
    if (st.st_size > MAX_DOWNLOAD) {
        close(fd);
        return agx_ctx_fail(ctx, AGX_REMOTE_LIMIT, "file '%s' is %lld bytes; download takes at most %lld "
                            "(stream larger files with download_stream)", path,
                            (long long)st.st_size, (long long)MAX_DOWNLOAD);
    }
    /* Read straight into the buffer the value will own (no copy into it afterwards). */
    size_t cap = (size_t)st.st_size;
    unsigned char *buf = agx_value_buffer_alloc(cap);
    size_t got = 0;
    while (buf && got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* shrank while reading: return what is there */
        got += (size_t)n;
    }
    close(fd);
    if (!buf)
        return agx_ctx_fail(ctx, "MemoryError", "out of memory reading '%s'", path);
    return agx_ctx_return(ctx, agx_value_buffer_adopt(buf, cap, AGX_VALUE_BINARY, buf, got));
}

static int stat_fn(agx_ctx *ctx)
{
    const char *path = path_arg(ctx);
    if (!path)
        return AGX_ERR_REMOTE;
    int fd;
    int rc = open_in_root(ctx, path, O_PATH, &fd);
    if (rc)
        return rc;
    struct stat st;
    rc = fstat(fd, &st);
    int e = errno;
    close(fd);
    if (rc != 0)
        return fail_errno(ctx, path, e);
    return agx_ctx_return(ctx, stat_value("path", path, &st));
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int list(agx_ctx *ctx)
{
    const char *path = path_arg(ctx);
    if (!path)
        return AGX_ERR_REMOTE;
    int fd;
    int rc = open_in_root(ctx, path, O_RDONLY | O_DIRECTORY | O_NONBLOCK, &fd);
    if (rc)
        return rc;
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return fail_errno(ctx, path, e);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn)
                break;
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    if (n)
        qsort(names, n, sizeof *names, by_name);
    agx_value *arr = agx_value_array();
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        /* Entries are described as they are: a symlink is not followed. */
        if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) == 0) {
            agx_value *v = stat_value("name", names[i], &st);
            agx_value_map_set(v, "is_link", agx_value_bool(S_ISLNK(st.st_mode)));
            agx_value_array_push(arr, v);
        }
        free(names[i]);
    }
    free(names);
    closedir(d);
    return agx_ctx_return(ctx, arr);
}

/* The file as a stream of binary items of `chunk` bytes (the last may be shorter), read as it
 * is sent: no size limit, memory bounded by one chunk here and the stream window downstream. */
static int download_stream(agx_ctx *ctx)
{
    const char *path = path_arg(ctx);
    if (!path)
        return AGX_ERR_REMOTE;
    int64_t chunk = agx_value_get_int64(agx_ctx_arg(ctx, "chunk"));
    if (chunk < CHUNK_MIN || chunk > CHUNK_MAX)
        return agx_ctx_fail(ctx, "ValueError", "chunk must be an int in %d..%d bytes", CHUNK_MIN,
                            CHUNK_MAX);
    int fd;
    struct stat st;
    int rc = open_download(ctx, path, &fd, &st);
    if (rc)
        return rc;
    /* Each chunk is read straight into the buffer its item owns (no copy into the value); the
     * buffers are recycled once the worker has written the items out. */
    for (;;) {
        unsigned char *buf = agx_value_buffer_alloc((size_t)chunk);
        if (!buf) {
            close(fd);
            return agx_ctx_fail(ctx, "MemoryError", "out of memory for a %lld-byte chunk",
                                (long long)chunk);
        }
        size_t got = 0;
        while (got < (size_t)chunk) {
            ssize_t n = read(fd, buf + got, (size_t)chunk - got);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int e = errno;
                agx_value_buffer_free(buf, (size_t)chunk);
                close(fd);
                return fail_errno(ctx, path, e);
            }
            if (n == 0)
                break;
            got += (size_t)n;
        }
        if (got == 0) {
            agx_value_buffer_free(buf, (size_t)chunk);
            break;
        }
        rc = agx_ctx_emit(ctx, agx_value_buffer_adopt(buf, (size_t)chunk, AGX_VALUE_BINARY, buf, got));
        if (rc != 0 || got < (size_t)chunk)
            break;
    }
    close(fd);
    return rc;
}

static const agx_param upload_params[] = {{"path", AGX_TYPE_STRING, NULL}, {"content", AGX_TYPE_BINARY, NULL}};
static const agx_param path_params[] = {{"path", AGX_TYPE_STRING, NULL}};
static const agx_param list_params[] = {{"path", AGX_TYPE_STRING, "\".\""}};
static const agx_param stream_params[] = {{"path", AGX_TYPE_STRING, NULL},
                                          {"chunk", AGX_TYPE_INT, "262144"}};

static const agx_function functions[] = {
    {.name = "upload", .shape = AGX_SHAPE_UNARY, .fn = upload, .params = upload_params,
     .n_params = AGX_ARRAY_LEN(upload_params), .result_type = AGX_TYPE_MAP,
     .doc = "Writes content to path atomically (temp file + rename), creating parent directories; "
            "returns {path, size}."},
    {.name = "upload_stream", .shape = AGX_SHAPE_BIDI, .fn = upload_stream, .params = path_params,
     .n_params = AGX_ARRAY_LEN(path_params), .result_type = AGX_TYPE_MAP,
     .input_type = AGX_TYPE_BINARY,
     .doc = "Writes the binary items sent in to path, of any size, atomically once the input ends "
            "(temp file + rename); sends one item, {path, size}."},
    {.name = "download", .shape = AGX_SHAPE_UNARY, .fn = download, .params = path_params,
     .n_params = AGX_ARRAY_LEN(path_params), .result_type = AGX_TYPE_BINARY,
     .doc = "Returns the file's bytes (at most 60 MiB)."},
    {.name = "download_stream", .shape = AGX_SHAPE_STREAM, .fn = download_stream,
     .params = stream_params, .n_params = AGX_ARRAY_LEN(stream_params),
     .result_type = AGX_TYPE_BINARY,
     .doc = "Streams the file's bytes, of any size, as binary items of chunk bytes (default 256 KiB, "
            "4 KiB..16 MiB); the last item may be shorter, an empty file streams no item."},
    {.name = "stat", .shape = AGX_SHAPE_UNARY, .fn = stat_fn, .params = path_params,
     .n_params = AGX_ARRAY_LEN(path_params), .result_type = AGX_TYPE_MAP,
     .doc = "Returns {path, size, mode, is_dir, mtime}."},
    {.name = "list", .shape = AGX_SHAPE_UNARY, .fn = list, .params = list_params,
     .n_params = AGX_ARRAY_LEN(list_params), .result_type = AGX_TYPE_ARRAY,
     .doc = "Returns the directory's entries sorted by name: [{name, size, mode, is_dir, mtime, is_link}]."},
};
AGX_MODULE("agentix.files", functions);
