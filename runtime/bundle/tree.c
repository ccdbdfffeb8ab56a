/* tree.c — reading a built bundle tree back: an ordered walk (each folder's names sorted bytewise,
 * so the order never depends on the filesystem or the locale), the content digest over it, the
 * deterministic ustar export, and the BUNDLE metadata. */
#include "runtime/bundle/bundle_internal.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define AGX_TAR_BLOCK 512
#define AGX_META_MAX 4096

typedef struct tree_walk {
    agx_tree_cb cb;
    void *user;
    size_t count;
} tree_walk;

static int tree_name_cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int tree_skip_dots(const struct dirent *d)
{
    return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int tree_entry(tree_walk *w, const char *full, const char *rel, int depth, agx_error *err);

static int tree_dir(tree_walk *w, const char *full, const char *rel, int depth, agx_error *err)
{
    if (depth > AGX_BUNDLE_MAX_DEPTH)
        return agx_error_set(err, AGX_ERR_LIMIT, "%s: folders nested deeper than %d", full,
                             AGX_BUNDLE_MAX_DEPTH);
    struct dirent **list;
    int n = scandir(full, &list, tree_skip_dots, tree_name_cmp);
    if (n < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot list %s: %s", full, strerror(errno));
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char *cfull = rc == 0 ? agx_bundle_join(full, list[i]->d_name) : NULL;
        char *crel = rc == 0 ? (*rel ? agx_bundle_join(rel, list[i]->d_name) : strdup(list[i]->d_name))
                             : NULL;
        if (rc == 0 && (!cfull || !crel))
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
        if (rc == 0)
            rc = tree_entry(w, cfull, crel, depth + 1, err);
        free(cfull);
        free(crel);
        free(list[i]);
    }
    free(list);
    return rc;
}

static int tree_entry(tree_walk *w, const char *full, const char *rel, int depth, agx_error *err)
{
    if (++w->count > AGX_BUNDLE_MAX_ENTRIES * 2)
        return agx_error_set(err, AGX_ERR_LIMIT, "more than %d entries in the tree",
                             AGX_BUNDLE_MAX_ENTRIES * 2);
    struct stat st;
    if (lstat(full, &st) != 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot stat %s: %s", full, strerror(errno));
    char link[PATH_MAX] = "";
    unsigned mode;
    if (S_ISDIR(st.st_mode)) {
        mode = 0755;
    } else if (S_ISREG(st.st_mode)) {
        mode = (st.st_mode & 0111) ? 0755 : 0644;
    } else if (S_ISLNK(st.st_mode)) {
        ssize_t n = readlink(full, link, sizeof link - 1);
        if (n < 0)
            return agx_error_set(err, AGX_ERR_IO, "cannot read link %s: %s", full, strerror(errno));
        link[n] = '\0';
        mode = 0777;
    } else {
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "%s is not a file, folder or symbolic link", full);
    }
    int rc = w->cb(w->user, rel, full, &st, mode, S_ISLNK(st.st_mode) ? link : NULL, err);
    if (rc == 0 && S_ISDIR(st.st_mode))
        rc = tree_dir(w, full, rel, depth, err);
    return rc;
}

int agx_tree_walk(const char *dir, agx_tree_cb cb, void *user, agx_error *err)
{
    tree_walk w = {.cb = cb, .user = user};
    return tree_dir(&w, dir, "", 0, err);
}

/* ---- digest ---- */

static int digest_file(EVP_MD_CTX *md, const char *full, agx_error *err)
{
    FILE *f = fopen(full, "rbe");
    if (!f)
        return agx_error_set(err, AGX_ERR_IO, "cannot open %s: %s", full, strerror(errno));
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        EVP_DigestUpdate(md, buf, n);
    int rc = ferror(f) ? agx_error_set(err, AGX_ERR_IO, "cannot read %s", full) : 0;
    fclose(f);
    return rc;
}

static int digest_cb(void *user, const char *rel, const char *full, const struct stat *st,
                     unsigned mode, const char *link, agx_error *err)
{
    EVP_MD_CTX *md = user;
    if (strcmp(rel, AGX_BUNDLE_META) == 0)
        return 0;
    char head[64];
    char kind = S_ISDIR(st->st_mode) ? 'd' : link ? 'l' : 'f';
    int hn = snprintf(head, sizeof head, "%c %04o ", kind, mode);
    EVP_DigestUpdate(md, head, (size_t)hn);
    EVP_DigestUpdate(md, rel, strlen(rel) + 1);
    if (link)
        EVP_DigestUpdate(md, link, strlen(link) + 1);
    if (kind != 'f')
        return 0;
    hn = snprintf(head, sizeof head, "%020llu", (unsigned long long)st->st_size);
    EVP_DigestUpdate(md, head, (size_t)hn + 1);
    return digest_file(md, full, err);
}

int agx_bundle_digest(const char *dir, char digest[AGX_BUNDLE_DIGEST_MAX], agx_error *err)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        return agx_error_set(err, AGX_ERR_INTERNAL, "OpenSSL SHA-256 is not available");
    }
    int rc = agx_tree_walk(dir, digest_cb, md, err);
    unsigned char sum[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (rc == 0 && EVP_DigestFinal_ex(md, sum, &len) != 1)
        rc = agx_error_set(err, AGX_ERR_INTERNAL, "SHA-256 failed");
    EVP_MD_CTX_free(md);
    if (rc != 0)
        return rc;
    int off = snprintf(digest, AGX_BUNDLE_DIGEST_MAX, "sha256:");
    for (unsigned i = 0; i < len && off + 2 < AGX_BUNDLE_DIGEST_MAX; i++)
        off += snprintf(digest + off, (size_t)(AGX_BUNDLE_DIGEST_MAX - off), "%02x", sum[i]);
    return 0;
}

/* ---- ustar ---- */

typedef struct tar_out {
    FILE *f;
} tar_out;

/* width-1 zero-padded octal digits and a NUL (callers check that v fits). */
static void tar_octal(char *field, size_t width, unsigned long long v)
{
    field[width - 1] = '\0';
    for (size_t i = width - 1; i-- > 0; v >>= 3)
        field[i] = (char)('0' + (v & 7));
}

/* Fills name/prefix: the path fits in name (100) or splits at a '/' into prefix (155) + name. */
static int tar_path(char *hdr, const char *path, agx_error *err)
{
    size_t len = strlen(path);
    if (len <= 100) {
        memcpy(hdr, path, len);
        return 0;
    }
    for (size_t i = len > 101 ? len - 101 : 0; i < len && i <= 155; i++) {
        if (path[i] != '/' || len - i - 1 > 100 || len - i - 1 == 0)
            continue;
        memcpy(hdr + 345, path, i);
        memcpy(hdr, path + i + 1, len - i - 1);
        return 0;
    }
    return agx_error_set(err, AGX_ERR_LIMIT, "path too long for a tar entry: %s", path);
}

static int tar_header(tar_out *t, const char *path, char type, unsigned mode,
                      unsigned long long size, const char *link, agx_error *err)
{
    char hdr[AGX_TAR_BLOCK];
    memset(hdr, 0, sizeof hdr);
    int rc = tar_path(hdr, path, err);
    if (rc != 0)
        return rc;
    if (size > 077777777777ULL)
        return agx_error_set(err, AGX_ERR_LIMIT, "%s is larger than 8 GiB", path);
    if (link && strlen(link) > 100)
        return agx_error_set(err, AGX_ERR_LIMIT, "link target too long for tar: %s", link);
    tar_octal(hdr + 100, 8, mode);
    tar_octal(hdr + 108, 8, 0);
    tar_octal(hdr + 116, 8, 0);
    tar_octal(hdr + 124, 12, size);
    tar_octal(hdr + 136, 12, 0);
    hdr[156] = type;
    if (link)
        memcpy(hdr + 157, link, strlen(link));
    memcpy(hdr + 257, "ustar", 6);
    memcpy(hdr + 263, "00", 2);
    memcpy(hdr + 265, "root", 4);
    memcpy(hdr + 297, "root", 4);
    tar_octal(hdr + 329, 8, 0);
    tar_octal(hdr + 337, 8, 0);
    memset(hdr + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < sizeof hdr; i++)
        sum += (unsigned char)hdr[i];
    snprintf(hdr + 148, 8, "%06o", sum);
    hdr[155] = ' ';
    if (fwrite(hdr, 1, sizeof hdr, t->f) != sizeof hdr)
        return agx_error_set(err, AGX_ERR_IO, "cannot write the tar stream: %s", strerror(errno));
    return 0;
}

static int tar_body(tar_out *t, const char *full, unsigned long long size, agx_error *err)
{
    FILE *f = fopen(full, "rbe");
    if (!f)
        return agx_error_set(err, AGX_ERR_IO, "cannot open %s: %s", full, strerror(errno));
    unsigned char buf[65536];
    unsigned long long done = 0;
    int rc = 0;
    size_t n;
    while (rc == 0 && done < size && (n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (n > size - done)
            n = (size_t)(size - done);
        if (fwrite(buf, 1, n, t->f) != n)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot write the tar stream: %s", strerror(errno));
        done += n;
    }
    fclose(f);
    if (rc == 0 && done != size)
        rc = agx_error_set(err, AGX_ERR_IO, "%s changed size while being archived", full);
    static const unsigned char zeros[AGX_TAR_BLOCK];
    size_t pad = (size_t)((AGX_TAR_BLOCK - size % AGX_TAR_BLOCK) % AGX_TAR_BLOCK);
    if (rc == 0 && pad && fwrite(zeros, 1, pad, t->f) != pad)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot write the tar stream: %s", strerror(errno));
    return rc;
}

static int tar_cb(void *user, const char *rel, const char *full, const struct stat *st,
                  unsigned mode, const char *link, agx_error *err)
{
    tar_out *t = user;
    char path[PATH_MAX];
    int dir = S_ISDIR(st->st_mode);
    if (snprintf(path, sizeof path, "%s/%s%s", &AGX_BUNDLE_PREFIX[1], rel, dir ? "/" : "") >=
        (int)sizeof path)
        return agx_error_set(err, AGX_ERR_LIMIT, "path too long: %s", rel);
    if (dir)
        return tar_header(t, path, '5', mode, 0, NULL, err);
    if (link)
        return tar_header(t, path, '2', mode, 0, link, err);
    int rc = tar_header(t, path, '0', mode, (unsigned long long)st->st_size, NULL, err);
    return rc == 0 ? tar_body(t, full, (unsigned long long)st->st_size, err) : rc;
}

int agx_bundle_write_tar(const char *dir, FILE *out, agx_error *err)
{
    tar_out t = {.f = out};
    /* The folders of the prefix itself ("opt/", "opt/agentix/"), then the tree. */
    char prefix[PATH_MAX];
    snprintf(prefix, sizeof prefix, "%s/", &AGX_BUNDLE_PREFIX[1]);
    int rc = 0;
    for (char *p = prefix; rc == 0 && (p = strchr(p, '/')) != NULL; p++) {
        char saved = p[1];
        p[1] = '\0';
        rc = tar_header(&t, prefix, '5', 0755, 0, NULL, err);
        p[1] = saved;
    }
    if (rc == 0)
        rc = agx_tree_walk(dir, tar_cb, &t, err);
    static const unsigned char zeros[AGX_TAR_BLOCK * 2];
    if (rc == 0 && fwrite(zeros, 1, sizeof zeros, out) != sizeof zeros)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot write the tar stream: %s", strerror(errno));
    if (rc == 0 && fflush(out) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot write the tar stream: %s", strerror(errno));
    return rc;
}

/* ---- BUNDLE metadata ---- */

int agx_bundle_read_meta(const char *dir, char *name, size_t nname,
                         char digest[AGX_BUNDLE_DIGEST_MAX], agx_error *err)
{
    char *path = agx_bundle_join(dir, AGX_BUNDLE_META);
    FILE *f = path ? fopen(path, "re") : NULL;
    if (!f) {
        int rc = agx_error_set(err, AGX_ERR_NOT_FOUND, "%s is not a bundle tree (no %s file)", dir,
                               AGX_BUNDLE_META);
        free(path);
        return rc;
    }
    char line[512];
    int format = 0, have_digest = 0;
    size_t total = 0;
    name[0] = '\0';
    while (fgets(line, sizeof line, f) && (total += strlen(line)) < AGX_META_MAX) {
        line[strcspn(line, "\r\n")] = '\0';
        if (strncmp(line, "format = ", 9) == 0)
            format = atoi(line + 9);
        else if (strncmp(line, "name = ", 7) == 0)
            snprintf(name, nname, "%s", line + 7);
        else if (strncmp(line, "digest = ", 9) == 0 && strlen(line + 9) < AGX_BUNDLE_DIGEST_MAX)
            have_digest = snprintf(digest, AGX_BUNDLE_DIGEST_MAX, "%s", line + 9) > 0;
    }
    fclose(f);
    int rc = 0;
    if (format != AGX_BUNDLE_FORMAT || !have_digest)
        rc = agx_error_set(err, AGX_ERR_ABI, "%s: unsupported bundle format (expected format = %d "
                           "and a digest)", path, AGX_BUNDLE_FORMAT);
    free(path);
    return rc;
}
