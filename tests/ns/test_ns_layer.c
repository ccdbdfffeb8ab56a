/* test_ns_layer.c — the ns backend's layer decoder (backends/ns/ns_layer.c) on the fuzz target's
 * seed tars (tests/fuzz/ns_layer/seeds): what a well-formed layer becomes on disk (owners, modes
 * with setuid, symlinks, hard links, FIFOs kept; devices skipped; overlayfs whiteouts as 0:0
 * character devices and the opaque xattr; a path replaced by a later entry of another type), and
 * that hostile layers are refused without writing outside their folder ("..", absolute paths,
 * a symlinked parent, hard links out, malformed whiteouts). Host-side code only: it runs under
 * ASan and valgrind too. Needs root (whiteouts are device nodes, opaque markers trusted xattrs). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "backends/ns/ns_internal.h"
#include "check.h"

static char work[64];

/* Unpacks seed `name` into a fresh <work>/<name>; returns the decoder's code, err filled. */
static int unpack(const char *name, agx_error *err)
{
    char path[512], dir[128];
    snprintf(path, sizeof path, "%s/%s", AGX_NS_LAYER_SEEDS, name);
    snprintf(dir, sizeof dir, "%s/%s", work, name);
    CHECK(mkdir(dir, 0755) == 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC), dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    CHECK(fd >= 0 && dfd >= 0);
    agx_ns_layer_limits lim;
    agx_ns_layer_limits_default(&lim);
    char hex[65] = "";
    int rc = agx_ns_layer_unpack(fd, dfd, &lim, name, hex, err);
    if (rc == 0)
        CHECK(strlen(hex) == 64); /* the digest of the raw bytes, for the cache's check */
    close(fd);
    close(dfd);
    return rc;
}

static struct stat at(const char *seed, const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s/%s", work, seed, rel);
    CHECK_MSG(lstat(p, &st) == 0, "%s: %s", p, strerror(errno));
    return st;
}

static int exists(const char *seed, const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s/%s", work, seed, rel);
    return lstat(p, &st) == 0;
}

static void basic(void)
{
    agx_error err;
    CHECK_OK(unpack("basic", &err), &err);
    struct stat st = at("basic", "bin/tool");
    CHECK(S_ISREG(st.st_mode) && (st.st_mode & 07777) == 04755 && st.st_uid == 1000 &&
          st.st_gid == 1000 && st.st_size == 18);
    CHECK(st.st_nlink == 2); /* bin/hl is a hard link to it */
    CHECK(S_ISLNK(at("basic", "bin/sh").st_mode));
    CHECK(S_ISFIFO(at("basic", "run/fifo").st_mode));
    CHECK(!exists("basic", "dev/null")); /* devices are skipped: the sandbox has its own /dev */
}

static void whiteouts(void)
{
    agx_error err;
    CHECK_OK(unpack("whiteouts", &err), &err);
    struct stat st = at("whiteouts", "etc/hostname");
    CHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
    CHECK(!exists("whiteouts", "etc/.wh.hostname") && !exists("whiteouts", "var/.wh..wh..opq"));
    char p[256], v[8] = "";
    snprintf(p, sizeof p, "%s/whiteouts/var", work);
    CHECK(getxattr(p, "trusted.overlay.opaque", v, sizeof v) == 1 && v[0] == 'y');
    CHECK(S_ISREG(at("whiteouts", "var/new").st_mode));
}

static void names(void)
{
    agx_error err;
    CHECK_OK(unpack("pax-long", &err), &err);
    char rel[300];
    snprintf(rel, sizeof rel, "a/%0200d/c", 0);
    memset(rel + 2, 'b', 200);
    CHECK(S_ISREG(at("pax-long", rel).st_mode));
    CHECK(S_ISREG(at("pax-long", "x/y").st_mode)); /* "./x/./y" */
    CHECK_OK(unpack("gzip", &err), &err);
    CHECK(at("gzip", "a/b").st_size == 200);
    /* x: dir → file → dir again; z: a symlink replaced by a file, never written through */
    CHECK_OK(unpack("replace", &err), &err);
    CHECK(S_ISDIR(at("replace", "x").st_mode) && !exists("replace", "x/y"));
    CHECK(S_ISREG(at("replace", "z").st_mode));
}

static void hostile(void)
{
    agx_error err;
    int rc = unpack("escapes", &err);
    CHECK_MSG(rc == AGX_ERR_PROTOCOL, "got %s: %s", agx_error_code_name(rc), err.message);
    CHECK_CONTAINS(err.message, "../outside");
    char p[128];
    snprintf(p, sizeof p, "%s/outside", work);
    CHECK(access(p, F_OK) != 0);
    /* Each hostile entry alone: refused, nothing outside the folder. */
    static const char *const one[][2] = {{"abs-symlink-parent", "lnk/agx-ns-layer-escape-canary"},
                                         {"hardlink-out", "hl"},
                                         {"hardlink-abs", "hl"},
                                         {"bad-whiteout", ".wh.."}};
    for (size_t i = 0; i < sizeof one / sizeof *one; i++) {
        rc = unpack(one[i][0], &err);
        CHECK_MSG(rc != 0, "%s was accepted", one[i][0]);
        CHECK_CONTAINS(err.message, one[i][1]);
    }
    CHECK(access("/tmp/agx-ns-layer-escape-canary", F_OK) != 0);
    snprintf(p, sizeof p, "%s/abs-symlink-parent/lnk", work);
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISLNK(st.st_mode)); /* stored, never followed */
    /* An absolute entry path lands inside the folder. */
    CHECK_OK(unpack("absolute", &err), &err);
    CHECK(S_ISREG(at("absolute", "abs").st_mode));
}

int main(void)
{
    snprintf(work, sizeof work, "/tmp/agx-test-ns-layer-XXXXXX");
    CHECK(mkdtemp(work));
    basic();
    whiteouts();
    names();
    hostile();
    agx_error err;
    CHECK_OK(agx_fs_rmtree(work, &err), &err);
    printf("test_ns_layer: ok\n");
    return 0;
}
