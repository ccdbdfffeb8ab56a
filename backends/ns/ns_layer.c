/* ns_layer.c — one image layer (untrusted input: any image a user names) unpacked into a cache
 * directory that overlayfs then uses as a lower layer.
 *
 * libarchive decodes (tar in its ustar, pax and GNU forms; gzip, bzip2, xz, zstd and lz4 through
 * the libraries it links, never an external program): the formats Docker and OCI layers come in
 * are many and subtle, and libarchive is a long-fuzzed Debian library. What it does not do is
 * write safely, so writing is ours, and conservative:
 *  - every path is made relative, "." parts dropped, ".." refused, bounded in length;
 *  - parent folders are walked one component at a time with O_NOFOLLOW: a symlink in a parent
 *    path is an error, so no entry lands outside the layer's folder (a layer never needs one:
 *    Docker and OCI diffs name real paths);
 *  - files are created O_EXCL|O_NOFOLLOW after removing what was there; hard links must name an
 *    entry inside the layer (resolved the same way); symlinks are stored, never followed;
 *  - character and block devices are skipped (the sandbox gets its own /dev), as are sockets;
 *  - file bytes, entry count and path length are bounded (agx_ns_layer_limits);
 *  - whiteouts .wh.NAME become overlayfs whiteouts (a 0:0 character device NAME) and the opaque
 *    marker .wh..wh..opq becomes the trusted.overlay.opaque xattr on its folder.
 * Owners, modes (setuid included: the cache folder is root-only) and file times are kept. Extended
 * attributes are not (file capabilities included); see the README. */
#include "backends/ns/ns_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define READ_CHUNK (128 * 1024)
#define WH_PREFIX ".wh."
#define WH_OPAQUE ".wh..wh..opq"

void agx_ns_layer_limits_default(agx_ns_layer_limits *lim)
{
    lim->max_bytes = 64ull << 30; /* 64 GiB: large SWE-bench images exist */
    lim->max_entries = 4u << 20;
    lim->max_path = 4096;
}

typedef struct unpack {
    struct archive *a;
    int root;
    const agx_ns_layer_limits *lim;
    const char *what;
    uint64_t bytes, entries;
    agx_error *err;
    /* fd source */
    int fd;
    unsigned char *buf;
    EVP_MD_CTX *md;
} unpack;

static int fail(unpack *u, int code, const char *path, const char *why)
{
    return agx_error_set(u->err, code, "layer %s: entry '%.200s': %s", u->what, path, why);
}

/* Normalizes an archive path into out: relative, no "." or empty parts, no "..". Returns the
 * length, 0 for the layer root itself, -1 when refused. */
static long normalize(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = in; *p;) {
        while (*p == '/')
            p++;
        size_t n = strcspn(p, "/");
        if (n == 0)
            break;
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return -1;
        if (!(n == 1 && p[0] == '.')) {
            if (o + n + 2 > cap)
                return -1;
            if (o)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    out[o] = '\0';
    return (long)o;
}

/* Opens the folder holding path's last component, creating missing folders (0755) when create
 * is set; never follows a symlink. *name points at the last component. */
static int open_parent(unpack *u, char *path, int create, char **name)
{
    int fd = dup(u->root);
    char *p = path;
    for (;;) {
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        if (create && mkdirat(fd, p, 0755) != 0 && errno != EEXIST) {
            *slash = '/';
            close(fd);
            return -1;
        }
        int next = openat(fd, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        *slash = '/';
        close(fd);
        if (next < 0)
            return -1;
        fd = next;
        p = slash + 1;
    }
    *name = p;
    return fd;
}

/* Removes what sits at name (a folder with everything in it) so an entry can take its place. */
static int remove_at(int dirfd, const char *name, int depth)
{
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if ((errno != EISDIR && errno != EPERM) || depth > 512)
        return -1;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = remove_at(fd, e->d_name, depth + 1);
    closedir(d);
    return rc ? rc : unlinkat(dirfd, name, AT_REMOVEDIR);
}

static void set_meta(int dirfd, const char *name, struct archive_entry *e, int is_link)
{
    int flags = AT_SYMLINK_NOFOLLOW;
    if (fchownat(dirfd, name, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e), flags) != 0) {
        /* a foreign owner on a filesystem that refuses it: keep root */
    }
    if (!is_link)
        fchmodat(dirfd, name, archive_entry_perm(e) & 07777, 0);
    struct timespec ts[2] = {{archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
                             {archive_entry_mtime(e), archive_entry_mtime_nsec(e)}};
    utimensat(dirfd, name, ts, AT_SYMLINK_NOFOLLOW);
}

static int write_data(unpack *u, int fd, const char *path)
{
    for (;;) {
        const void *block;
        size_t size;
        la_int64_t offset;
        int r = archive_read_data_block(u->a, &block, &size, &offset);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return fail(u, AGX_ERR_PROTOCOL, path, archive_error_string(u->a));
        if (offset < 0 || size > u->lim->max_bytes - u->bytes)
            return fail(u, AGX_ERR_LIMIT, path, "the layer's files exceed the size limit");
        u->bytes += size;
        const char *p = block;
        while (size) {
            ssize_t w = pwrite(fd, p, size, offset);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return fail(u, AGX_ERR_IO, path, strerror(errno));
            p += w;
            size -= (size_t)w;
            offset += w;
        }
    }
}

static int entry_file(unpack *u, int dirfd, const char *name, const char *path,
                      struct archive_entry *e)
{
    if (remove_at(dirfd, name, 0) != 0)
        return fail(u, AGX_ERR_IO, path, strerror(errno));
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(u, AGX_ERR_IO, path, strerror(errno));
    int rc = write_data(u, fd, path);
    if (!rc && archive_entry_size_is_set(e) && ftruncate(fd, archive_entry_size(e)) != 0)
        rc = fail(u, AGX_ERR_IO, path, strerror(errno));
    close(fd);
    if (!rc)
        set_meta(dirfd, name, e, 0);
    return rc;
}

static int entry_hardlink(unpack *u, int dirfd, const char *name, const char *path,
                          const char *target)
{
    char t[4096];
    char *tname;
    if (normalize(target, t, sizeof t) <= 0)
        return fail(u, AGX_ERR_PROTOCOL, path, "hard link to a path outside the layer");
    int tdir = open_parent(u, t, 0, &tname);
    if (tdir < 0)
        return fail(u, AGX_ERR_PROTOCOL, path, "hard link to an entry not in the layer");
    int rc = 0;
    if (remove_at(dirfd, name, 0) != 0 || linkat(tdir, tname, dirfd, name, 0) != 0)
        rc = fail(u, AGX_ERR_PROTOCOL, path, "hard link target is not a file of the layer");
    close(tdir);
    return rc;
}

static int whiteout(unpack *u, int dirfd, const char *name, const char *path)
{
    if (strcmp(name, WH_OPAQUE) == 0) {
        /* The folder itself: "." of dirfd through /proc, since dirfd is O_PATH. */
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", dirfd);
        if (setxattr(self, "trusted.overlay.opaque", "y", 1, 0) != 0)
            return fail(u, AGX_ERR_IO, path, "cannot mark the folder opaque (trusted xattrs "
                        "unsupported by the cache's filesystem?)");
        return 0;
    }
    const char *hidden = name + strlen(WH_PREFIX);
    if (!*hidden || strcmp(hidden, ".") == 0 || strcmp(hidden, "..") == 0)
        return fail(u, AGX_ERR_PROTOCOL, path, "malformed whiteout");
    if (remove_at(dirfd, hidden, 0) != 0 || mknodat(dirfd, hidden, S_IFCHR | 0, makedev(0, 0)) != 0)
        return fail(u, AGX_ERR_IO, path, strerror(errno));
    return 0;
}

static int entry(unpack *u, struct archive_entry *e)
{
    const char *raw = archive_entry_pathname(e);
    char path[4096];
    long n = raw && strlen(raw) <= u->lim->max_path ? normalize(raw, path, sizeof path) : -1;
    if (n < 0)
        return fail(u, AGX_ERR_PROTOCOL, raw ? raw : "(none)", "path refused (too long, or '..')");
    if (n == 0)
        return 0; /* the layer root: its folder exists already */
    if (++u->entries > u->lim->max_entries)
        return fail(u, AGX_ERR_LIMIT, path, "too many entries in one layer");
    char *name;
    int dirfd = open_parent(u, path, 1, &name);
    if (dirfd < 0)
        return fail(u, AGX_ERR_PROTOCOL, path, "a parent folder is a symlink or not a folder");
    int rc = 0;
    const char *hard = archive_entry_hardlink(e);
    mode_t type = archive_entry_filetype(e);
    if (strncmp(name, WH_PREFIX, strlen(WH_PREFIX)) == 0) {
        rc = whiteout(u, dirfd, name, path);
    } else if (hard) {
        rc = entry_hardlink(u, dirfd, name, path, hard);
    } else if (type == AE_IFREG) {
        rc = entry_file(u, dirfd, name, path, e);
    } else if (type == AE_IFDIR) {
        struct stat st;
        if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode) &&
            remove_at(dirfd, name, 0) != 0)
            rc = fail(u, AGX_ERR_IO, path, strerror(errno));
        if (!rc && mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
            rc = fail(u, AGX_ERR_IO, path, strerror(errno));
        if (!rc)
            set_meta(dirfd, name, e, 0);
    } else if (type == AE_IFLNK) {
        const char *target = archive_entry_symlink(e);
        if (!target || strlen(target) >= 4096)
            rc = fail(u, AGX_ERR_PROTOCOL, path, "symlink target missing or too long");
        else if (remove_at(dirfd, name, 0) != 0 || symlinkat(target, dirfd, name) != 0)
            rc = fail(u, AGX_ERR_IO, path, strerror(errno));
        else
            set_meta(dirfd, name, e, 1);
    } else if (type == AE_IFIFO) {
        if (remove_at(dirfd, name, 0) != 0 || mknodat(dirfd, name, S_IFIFO | 0600, 0) != 0)
            rc = fail(u, AGX_ERR_IO, path, strerror(errno));
        else
            set_meta(dirfd, name, e, 0);
    }
    /* Devices and sockets: skipped (see the top). */
    close(dirfd);
    return rc;
}

static int run(unpack *u)
{
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(u->a, &e);
        if (r == ARCHIVE_EOF)
            return 0;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
            return agx_error_set(u->err, AGX_ERR_PROTOCOL, "layer %s is not a valid tar: %s",
                                 u->what, archive_error_string(u->a));
        int rc = entry(u, e);
        if (rc)
            return rc;
    }
}

/* Only in-library decompressors: a filter that would run an external program is refused. */
static int setup(struct archive *a)
{
    int (*filters[])(struct archive *) = {archive_read_support_filter_gzip,
                                          archive_read_support_filter_bzip2,
                                          archive_read_support_filter_xz,
                                          archive_read_support_filter_zstd,
                                          archive_read_support_filter_lz4};
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++)
        if (filters[i](a) != ARCHIVE_OK)
            return -1;
    return archive_read_support_format_tar(a) == ARCHIVE_OK ? 0 : -1;
}

static la_ssize_t fd_read(struct archive *a, void *user, const void **out)
{
    (void)a;
    unpack *u = user;
    for (;;) {
        ssize_t n = read(u->fd, u->buf, READ_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0)
            EVP_DigestUpdate(u->md, u->buf, (size_t)n);
        *out = u->buf;
        return n;
    }
}

static int drain_and_digest(unpack *u, char *hex)
{
    const void *ignored;
    while (fd_read(u->a, u, &ignored) > 0) {
    }
    unsigned char md[32];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(u->md, md, &len) != 1 || len != 32)
        return -1;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

int agx_ns_layer_unpack(int fd, int dirfd, const agx_ns_layer_limits *lim, const char *what,
                        char *sha256_hex, agx_error *err)
{
    unpack u = {.root = dirfd, .lim = lim, .what = what, .err = err, .fd = fd};
    u.a = archive_read_new();
    u.buf = malloc(READ_CHUNK);
    u.md = EVP_MD_CTX_new();
    int rc = 0;
    if (!u.a || !u.buf || !u.md || EVP_DigestInit_ex(u.md, EVP_sha256(), NULL) != 1 || setup(u.a))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "cannot set up the layer reader");
    if (!rc && archive_read_open(u.a, &u, NULL, fd_read, NULL) != ARCHIVE_OK)
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "layer %s is not a tar archive: %s", what,
                           archive_error_string(u.a));
    if (!rc)
        rc = run(&u);
    if (!rc && sha256_hex && drain_and_digest(&u, sha256_hex) != 0)
        rc = agx_error_set(err, AGX_ERR_INTERNAL, "SHA-256 of layer %s failed", what);
    if (u.a)
        archive_read_free(u.a);
    EVP_MD_CTX_free(u.md);
    free(u.buf);
    return rc;
}

int agx_ns_layer_unpack_mem(const void *data, size_t len, int dirfd,
                            const agx_ns_layer_limits *lim, agx_error *err)
{
    unpack u = {.root = dirfd, .lim = lim, .what = "(memory)", .err = err, .fd = -1};
    u.a = archive_read_new();
    int rc = 0;
    if (!u.a || setup(u.a))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "cannot set up the layer reader");
    if (!rc && archive_read_open_memory(u.a, data, len) != ARCHIVE_OK)
        rc = agx_error_set(err, AGX_ERR_PROTOCOL, "not a tar archive: %s",
                           archive_error_string(u.a));
    if (!rc)
        rc = run(&u);
    if (u.a)
        archive_read_free(u.a);
    return rc;
}
