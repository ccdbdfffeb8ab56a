/* ns_bundle.c — the bundle a sandbox runs its runtime from (docs/BUNDLES.md): the folder
 * `agentix build --output DIR` wrote, mounted read-only as it is, or the tarball of
 * `--output FILE.tar` (entries opt/agentix/…), unpacked once into the cache under the SHA-256 of
 * its bytes with the same safe unpacker as image layers. Either way BUNDLE must say format 1, and
 * its prefix is where the tree is mounted. */
#include "backends/ns/ns_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* BUNDLE: "key = value" lines; format must be 1, prefix absolute (default /opt/agentix). */
static int read_meta(const char *dir, const char *what, agx_ns_bundle *b, agx_error *err)
{
    char path[AGX_NS_PATH_MAX + 16], *text;
    size_t len;
    snprintf(path, sizeof path, "%s/BUNDLE", dir);
    if (agx_file_read(path, 64 * 1024, 1, &text, &len, NULL) != 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "bundle '%s' has no BUNDLE file: build it with `agentix build "
                             "--output DIR` (or FILE.tar)", what);
    int format = 0;
    snprintf(b->prefix, sizeof b->prefix, "%s", AGX_NS_PREFIX_DEFAULT);
    /* strtok_r: creates run on many threads at once, and strtok's one hidden position made a
     * concurrent create read another's BUNDLE as "format 0". */
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char key[32], value[256];
        if (sscanf(line, " %31[a-z_] = %255s", key, value) != 2)
            continue;
        if (strcmp(key, "format") == 0)
            format = atoi(value);
        else if (strcmp(key, "prefix") == 0)
            snprintf(b->prefix, sizeof b->prefix, "%s", value);
    }
    free(text);
    if (format != 1)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "bundle '%s' is of format %d; this agentix reads format 1", what,
                             format);
    if (b->prefix[0] != '/' || strstr(b->prefix, "..") || strcmp(b->prefix, "/") == 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "bundle '%s' names prefix '%s'; it must be an absolute folder", what,
                             b->prefix);
    char server[AGX_NS_PATH_MAX + 32];
    snprintf(server, sizeof server, "%s/bin/agentix-server", dir);
    if (access(server, F_OK) != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "bundle '%s' has no bin/agentix-server", what);
    return 0;
}

/* a then b into out; -1 when it does not fit. */
static int join2(char *out, size_t n, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la + lb >= n)
        return -1;
    memcpy(out, a, la);
    memcpy(out + la, b, lb + 1);
    return 0;
}

typedef struct tar_fill {
    int fd;
    const char *what;
} tar_fill;

static int fill(int dirfd, void *user, char *hex, agx_error *err)
{
    tar_fill *t = user;
    agx_ns_layer_limits lim;
    agx_ns_layer_limits_default(&lim);
    return agx_ns_layer_unpack(t->fd, dirfd, &lim, t->what, hex, err);
}

int agx_ns_bundle_resolve(const agx_ns *ns, const char *bundle, agx_ns_bundle *out,
                          agx_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (bundle[0] != '/' || stat(bundle, &st) != 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "bundle '%s' is missing: the ns backend takes the absolute path of "
                             "the folder or tarball `agentix build --output` wrote", bundle);
    if (S_ISDIR(st.st_mode)) {
        if (strlen(bundle) >= sizeof out->dir)
            return agx_error_set(err, AGX_ERR_LIMIT, "bundle path too long");
        snprintf(out->dir, sizeof out->dir, "%s", bundle);
        return read_meta(out->dir, bundle, out, err);
    }
    if (!S_ISREG(st.st_mode))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "bundle '%s' is neither a folder nor a tarball", bundle);
    /* A tarball: unpacked once, keyed by its content (a rebuilt bundle is a new entry). Which
     * content a file holds is remembered by its identity (device, inode, size, mtime), so later
     * creates neither read nor hash it again. */
    char hex[65] = "", root[AGX_NS_PATH_MAX], memo[AGX_NS_PATH_MAX + 160], *text = NULL;
    size_t len;
    int rc = agx_ns_cache_dir(ns, "images", root, sizeof root, err);
    if (rc)
        return rc;
    snprintf(memo, sizeof memo, "%s/bundle-%llx-%llx-%llx-%llx.%09ld", root,
             (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
             (unsigned long long)st.st_size, (unsigned long long)st.st_mtim.tv_sec,
             st.st_mtim.tv_nsec);
    if (agx_file_read(memo, 64, 1, &text, &len, NULL) == 0 && len == 64)
        snprintf(hex, sizeof hex, "%s", text);
    free(text);
    if (!hex[0] || agx_ns_cache_layer_path(ns, hex, root, sizeof root) != 0) {
        tar_fill t = {.fd = open(bundle, O_RDONLY | O_CLOEXEC), .what = bundle};
        if (t.fd < 0)
            return agx_error_set(err, AGX_ERR_IO, "cannot open bundle '%s': %s", bundle,
                                 strerror(errno));
        rc = agx_ns_cache_layer_put(ns, NULL, fill, &t, hex, err);
        close(t.fd);
        if (rc)
            return agx_error_prefix(err, "unpacking bundle '%s'", bundle), rc;
        agx_fs_write_atomic(memo, hex, 64, NULL);
    }
    if (agx_ns_cache_layer_path(ns, hex, root, sizeof root) != 0)
        return agx_error_set(err, AGX_ERR_IO, "the unpacked bundle '%s' vanished from the cache",
                             bundle);
    /* The tree sits at <prefix> inside the tarball; BUNDLE at its top says which prefix. */
    if (join2(out->dir, sizeof out->dir, root, AGX_NS_PREFIX_DEFAULT) != 0)
        return agx_error_set(err, AGX_ERR_LIMIT, "cache path too long for bundle '%s'", bundle);
    rc = read_meta(out->dir, bundle, out, err);
    if (!rc && strcmp(out->prefix, AGX_NS_PREFIX_DEFAULT) != 0) {
        char prefix[sizeof out->prefix];
        memcpy(prefix, out->prefix, sizeof prefix);
        if (join2(out->dir, sizeof out->dir, root, prefix) != 0)
            return agx_error_set(err, AGX_ERR_LIMIT, "cache path too long for bundle '%s'", bundle);
        rc = read_meta(out->dir, bundle, out, err);
    }
    return rc;
}
