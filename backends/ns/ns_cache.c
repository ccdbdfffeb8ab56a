/* ns_cache.c — the content-addressed layer cache under <root>/cache, shared by every sandbox and
 * every host process on the machine:
 *
 *   layers/<sha256 hex>/root/   a complete, unpacked layer (overlayfs lower dir), never modified
 *   images/<key>.json           an image's ordered layer digests and its environment
 *   bundles/<sha256 hex>/root/  an unpacked bundle tarball
 *   tmp/<pid>-<start>-<rand>/   work in progress of one unpacker
 *   locks/<name>.lock           flock files: one unpacker per layer/image at a time
 *
 * Crash safety: a layer is unpacked in tmp/ and appears under layers/ only by rename(2), which is
 * atomic, so a half-unpacked layer is never used. Two hosts racing for one layer serialize on its
 * lock; if they did not (digest unknown before reading), the loser's rename fails and it discards
 * its copy. tmp/ entries name their unpacker (pid + start time): the sweep removes those whose
 * unpacker is dead. */
#include "backends/ns/ns_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOCK_WAIT_MS (30 * 60 * 1000) /* an export of a large image may hold a lock this long */

int agx_ns_cache_dir(const agx_ns *ns, const char *sub, char *out, size_t n, agx_error *err)
{
    if ((size_t)snprintf(out, n, "%s/cache/%s", ns->root, sub) >= n)
        return agx_error_set(err, AGX_ERR_LIMIT, "cache path too long");
    return agx_fs_mkdirs(out, err);
}

static int hex64(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

int agx_ns_cache_layer_path(const agx_ns *ns, const char *hex, char *out, size_t n)
{
    struct stat st;
    out[0] = '\0';
    if (!hex64(hex))
        return -1;
    snprintf(out, n, "%s/cache/layers/%s/root", ns->root, hex);
    if (lstat(out, &st) != 0 || !S_ISDIR(st.st_mode)) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int agx_ns_cache_lock(const agx_ns *ns, const char *name, agx_error *err)
{
    char dir[AGX_NS_PATH_MAX], path[AGX_NS_PATH_MAX + 128];
    int rc = agx_ns_cache_dir(ns, "locks", dir, sizeof dir, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/%s.lock", dir, name);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot open lock '%s': %s", path, strerror(errno));
    for (int waited = 0;; waited += 50) {
        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
            return fd;
        if (errno != EWOULDBLOCK || waited >= LOCK_WAIT_MS) {
            close(fd);
            return agx_error_set(err, AGX_ERR_TIMEOUT,
                                 "cache lock '%s' is held by another process for over %d s "
                                 "(an unpacker stuck?)", path, LOCK_WAIT_MS / 1000);
        }
        agx_clock_sleep_ms(50);
    }
}

/* tmp/<pid>-<start>-<random>/ with root/ inside; returns the root's fd. */
static int make_tmp(const agx_ns *ns, char *tmp, size_t n, agx_error *err)
{
    char dir[AGX_NS_PATH_MAX], hex[17];
    int rc = agx_ns_cache_dir(ns, "tmp", dir, sizeof dir, err);
    if (!rc)
        rc = agx_random_hex(hex, 8, err);
    if (rc)
        return rc;
    char root[AGX_NS_PATH_MAX + 8];
    if ((size_t)snprintf(tmp, n, "%s/%d-%lld-%s", dir, (int)getpid(), (long long)ns->owner_start,
                         hex) >= n ||
        (size_t)snprintf(root, sizeof root, "%s/root", tmp) >= sizeof root)
        return agx_error_set(err, AGX_ERR_LIMIT, "cache path too long under '%s'", dir);
    if (mkdir(tmp, 0700) != 0 || mkdir(root, 0755) != 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot create '%s': %s", root, strerror(errno));
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot open '%s': %s", root, strerror(errno));
    return fd;
}

int agx_ns_cache_layer_put(const agx_ns *ns, const char *hex, agx_ns_fill_fn fill, void *user,
                           char *out_hex, agx_error *err)
{
    char have[AGX_NS_PATH_MAX];
    if (hex && agx_ns_cache_layer_path(ns, hex, have, sizeof have) == 0) {
        snprintf(out_hex, 65, "%s", hex);
        return 0;
    }
    int lock = -1;
    if (hex) {
        char name[80];
        snprintf(name, sizeof name, "layer-%s", hex);
        if ((lock = agx_ns_cache_lock(ns, name, err)) < 0)
            return lock;
        if (agx_ns_cache_layer_path(ns, hex, have, sizeof have) == 0) { /* made meanwhile */
            close(lock);
            snprintf(out_hex, 65, "%s", hex);
            return 0;
        }
    }
    char tmp[AGX_NS_PATH_MAX] = "", layers[AGX_NS_PATH_MAX], digest[65] = "";
    int rc = agx_ns_cache_dir(ns, "layers", layers, sizeof layers, err);
    int fd = rc ? rc : make_tmp(ns, tmp, sizeof tmp, err);
    if (fd < 0)
        rc = fd;
    if (!rc) {
        rc = fill(fd, user, digest, err);
        close(fd);
    }
    if (!rc && (!hex64(digest) || (hex && strcmp(digest, hex) != 0)))
        rc = agx_error_set(err, AGX_ERR_PROTOCOL,
                           "layer content does not match its digest (expected sha256:%s, read "
                           "sha256:%s): the image is damaged", hex ? hex : "?", digest);
    if (!rc) {
        char final[AGX_NS_PATH_MAX + 80];
        snprintf(final, sizeof final, "%s/%s", layers, digest);
        if (rename(tmp, final) != 0 && errno != EEXIST && errno != ENOTEMPTY)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot move a layer into '%s': %s", final,
                               strerror(errno));
        /* EEXIST/ENOTEMPTY: another process put the same layer there first; ours goes. */
        snprintf(out_hex, 65, "%s", digest);
    }
    if (tmp[0])
        agx_fs_rmtree(tmp, NULL); /* gone already when renamed */
    if (lock >= 0)
        close(lock);
    return rc;
}

void agx_ns_cache_sweep_tmp(const agx_ns *ns)
{
    char dir[AGX_NS_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/cache/tmp", ns->root);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long long pid, start;
        char rest[32];
        if (sscanf(e->d_name, "%lld-%lld-%31s", &pid, &start, rest) != 3)
            continue;
        uint64_t ticks;
        if (pid > 1 && agx_ns_start_ticks((pid_t)pid, &ticks) == 0 &&
            (long long)ticks == start)
            continue; /* its unpacker still runs */
        char path[AGX_NS_PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        agx_fs_rmtree(path, NULL);
    }
    closedir(d);
}
