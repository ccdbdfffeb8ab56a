/* stage.c — materializes the build plan as the bundle tree: copies every file with a normalized
 * mode, points libwebsockets' compiled-in plugin folder at the bundle, and rewrites each dynamic
 * ELF with patchelf (a Debian tool, trusted; the bundled binaries themselves are never run):
 * interpreter → <prefix>/lib/<loader>, RUNPATH → <prefix>/lib, and DF_1_NODEFLIB so a library
 * missing from the bundle fails loudly instead of being taken from the task image. */
#include "runtime/bundle/bundle_internal.h"
#include "runtime/bundle/elf.h"

#include "agentix/clock.h"
#include "agentix/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGX_STAGE_TOOL_TIMEOUT_MS 120000
#define AGX_BUNDLE_LIBDIR AGX_BUNDLE_PREFIX "/lib"

extern char **environ;

static int stage_copy(const char *src, const char *dst, mode_t mode, agx_error *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot open %s: %s", src, strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return agx_error_set(err, AGX_ERR_IO, "cannot create %s: %s", dst, strerror(errno));
    }
    int rc = 0;
    uint8_t buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot read %s: %s", src, strerror(errno));
        if (r <= 0)
            break;
        if (agx_fd_write_all(out, buf, (size_t)r) != 0) {
            rc = agx_error_set(err, AGX_ERR_IO, "cannot write %s: %s", dst, strerror(errno));
            break;
        }
    }
    if (rc == 0 && fchmod(out, mode) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot set mode of %s: %s", dst, strerror(errno));
    if (close(out) != 0 && rc == 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot write %s: %s", dst, strerror(errno));
    close(in);
    return rc;
}

/* Replaces every NUL-bounded occurrence of from (a whole C string, never a substring of a longer
 * one) with to, NUL-padded. Returns the number replaced. */
static size_t stage_replace_cstring(uint8_t *data, size_t len, const char *from, const char *to)
{
    size_t flen = strlen(from), tlen = strlen(to), count = 0;
    if (tlen > flen || flen == 0)
        return 0;
    for (size_t i = 1; i + flen < len; i++) {
        if (data[i - 1] != 0 || data[i + flen] != 0 || memcmp(data + i, from, flen) != 0)
            continue;
        memcpy(data + i, to, tlen);
        memset(data + i + tlen, 0, flen - tlen);
        count++;
        i += flen;
    }
    return count;
}

/* libwebsockets 4.1 scans its compiled-in LWS_INSTALL_LIBDIR for the evlib plugin and offers no
 * option or variable to change it; in the bundle's private copy that folder becomes
 * <prefix>/lib, where closure.c put the plugin. */
static int stage_patch_plugin_dir(const char *file, const char *from, agx_error *err)
{
    uint8_t *data;
    size_t len;
    int rc = agx_file_load(file, AGX_ELF_MAX_FILE, &data, &len, err);
    if (rc != 0)
        return rc;
    char real[PATH_MAX];
    size_t n = stage_replace_cstring(data, len, from, AGX_BUNDLE_LIBDIR);
    if (realpath(from, real) && strcmp(real, from) != 0)
        n += stage_replace_cstring(data, len, real, AGX_BUNDLE_LIBDIR);
    if (n == 0)
        rc = agx_error_set(err, AGX_ERR_UNSUPPORTED,
                           "%s: its compiled-in plugin folder %s was not found (or is shorter than "
                           "%s); this libwebsockets build cannot be bundled",
                           file, from, AGX_BUNDLE_LIBDIR);
    int fd = rc == 0 ? open(file, O_WRONLY | O_TRUNC | O_CLOEXEC) : -1;
    if (rc == 0 && (fd < 0 || agx_fd_write_all(fd, data, len) != 0))
        rc = agx_error_set(err, AGX_ERR_IO, "cannot rewrite %s: %s", file, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && rc == 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot rewrite %s: %s", file, strerror(errno));
    free(data);
    return rc;
}

/* Runs a host tool found on PATH, collecting its output (bounded) for the error detail. */
static int stage_run(char *const argv[], agx_error *err)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return agx_error_set(err, AGX_ERR_IO, "pipe: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    pid_t pid;
    int sp = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (sp != 0) {
        close(pfd[0]);
        return agx_error_set(err, AGX_ERR_NOT_FOUND, "cannot run %s: %s (install the %s package)",
                             argv[0], strerror(sp), argv[0]);
    }
    char out[AGX_ERROR_DETAIL_MAX];
    size_t used = 0;
    int64_t deadline = agx_deadline_ms(AGX_STAGE_TOOL_TIMEOUT_MS);
    int timed_out = 0;
    for (;;) {
        int64_t left = agx_deadline_left_ms(deadline);
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr == 0) {
            timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        char buf[1024];
        ssize_t r = read(pfd[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t take = (size_t)r < sizeof out - 1 - used ? (size_t)r : sizeof out - 1 - used;
        memcpy(out + used, buf, take);
        used += take;
    }
    close(pfd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    out[used] = '\0';
    if (timed_out)
        return agx_error_set(err, AGX_ERR_TIMEOUT, "%s did not finish within %d s", argv[0],
                             AGX_STAGE_TOOL_TIMEOUT_MS / 1000);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        agx_error_set(err, AGX_ERR_IO, "%s failed: %.300s", argv[0], out);
        agx_error_set_detail(err, out, used);
        return AGX_ERR_IO;
    }
    return 0;
}

static int stage_patchelf(const agx_plan *p, const agx_plan_entry *e, const char *file,
                          agx_error *err)
{
    char interp[PATH_MAX];
    snprintf(interp, sizeof interp, "%s/%s", AGX_BUNDLE_LIBDIR, p->interp_name ? p->interp_name : "");
    char *argv[10];
    int n = 0;
    argv[n++] = "patchelf";
    if (e->kind == AGX_PLAN_EXEC) {
        if (!p->interp_name)
            return agx_error_set(err, AGX_ERR_INTERNAL, "no dynamic loader planned for %s", e->dst);
        argv[n++] = "--set-interpreter";
        argv[n++] = interp;
    }
    argv[n++] = "--set-rpath";
    argv[n++] = AGX_BUNDLE_LIBDIR;
    argv[n++] = "--no-default-lib";
    argv[n++] = (char *)file;
    argv[n] = NULL;
    int rc = stage_run(argv, err);
    if (rc != 0)
        agx_error_prefix(err, "rewriting %s", e->dst);
    return rc;
}

static int stage_entry(const agx_plan *p, const agx_plan_entry *e, const char *dir, agx_error *err)
{
    char *full = agx_bundle_join(dir, e->dst);
    char *parent = strdup(e->dst);
    if (!full || !parent) {
        free(full);
        free(parent);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    }
    char *slash = strrchr(parent, '/');
    int rc = 0;
    if (slash) {
        *slash = '\0';
        rc = agx_bundle_mkdirs(dir, parent, err);
    }
    if (rc == 0 && e->kind == AGX_PLAN_SYMLINK) {
        if (symlink(e->src, full) != 0)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot create link %s: %s", full, strerror(errno));
    } else if (rc == 0) {
        struct stat st;
        mode_t mode = 0644;
        if (e->executable || (stat(e->src, &st) == 0 && (st.st_mode & 0111)))
            mode = 0755;
        rc = stage_copy(e->src, full, mode, err);
        if (rc == 0 && e->plugin_dir_from)
            rc = stage_patch_plugin_dir(full, e->plugin_dir_from, err);
        if (rc == 0 && (e->kind == AGX_PLAN_EXEC || e->kind == AGX_PLAN_LIB))
            rc = stage_patchelf(p, e, full, err);
    }
    free(full);
    free(parent);
    return rc;
}

int agx_stage_write(const agx_plan *p, const char *dir, const agx_bundle_build_options *o,
                    int stage_no, int nstages, agx_error *err)
{
    for (size_t i = 0; i < p->n; i++) {
        if (o && o->progress)
            o->progress(o->progress_user, stage_no, nstages, "copying and rewriting files", i, p->n);
        int rc = stage_entry(p, &p->e[i], dir, err);
        if (rc != 0)
            return rc;
    }
    if (o && o->progress)
        o->progress(o->progress_user, stage_no, nstages, "copying and rewriting files", p->n, p->n);
    return 0;
}
