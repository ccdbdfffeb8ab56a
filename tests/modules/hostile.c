/* hostile.c — the `hostile` test module: functions that misbehave the way hostile or careless
 * module code does, for the attack tests (tests/attack/): one that ignores cancellation, one that
 * holds a large argument while it waits, and three that go after the bulk rings between the worker
 * and the server (runtime/wire/ring.h): resizing them, forging frames that point into the out
 * ring, and lying about how far the in ring was read. */
#include "agentix/module.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RING_FD 3    /* where agentix-server puts the worker's out ring (AGX_RING_FD) */
#define RING_IN_FD 4 /* … and its in ring (AGX_RING_IN_FD) */

static int64_t arg_int(agx_ctx *ctx, const char *name) { return agx_value_get_int64(agx_ctx_arg(ctx, name)); }

/* Sleeps ms without ever looking at cancellation: the worker's thread stays stuck. */
static int ignore_cancel(agx_ctx *ctx)
{
    int64_t ms = arg_int(ctx, "ms");
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return agx_ctx_return(ctx, agx_value_int(ms));
}

/* Keeps its (large) argument alive until cancelled or ms pass; returns its size. */
static int hold(agx_ctx *ctx)
{
    size_t len = 0;
    agx_value_get_binary(agx_ctx_arg(ctx, "blob"), &len);
    struct pollfd p = {.fd = agx_ctx_cancel_fd(ctx), .events = POLLIN};
    int rc;
    do
        rc = poll(&p, 1, (int)arg_int(ctx, "ms"));
    while (rc < 0 && errno == EINTR);
    if (rc > 0)
        return AGX_ERR_CANCELLED;
    return agx_ctx_return(ctx, agx_value_int((int64_t)len));
}

/* Tries to shrink and to grow both bulk rings (either would let the worker make the server's
 * mapping fault); returns what the kernel answered, e.g. "out shrink=EPERM grow=EPERM, in …". */
static int ring_resize(agx_ctx *ctx)
{
    char out[128];
    size_t n = 0;
    static const int fds[] = {RING_FD, RING_IN_FD};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (fstat(fds[i], &st) != 0)
            return agx_ctx_fail(ctx, "RuntimeError", "no bulk ring at fd %d", fds[i]);
        int shrink = ftruncate(fds[i], 0) == 0 ? 0 : errno;
        int grow = ftruncate(fds[i], st.st_size * 2) == 0 ? 0 : errno;
        n += (size_t)snprintf(out + n, sizeof out - n, "%s%s shrink=%s grow=%s", i ? ", " : "",
                              i ? "in" : "out",
                              shrink == EPERM ? "EPERM" : shrink ? "other" : "done",
                              grow == EPERM ? "EPERM" : grow ? "other" : "done");
    }
    return agx_ctx_return(ctx, agx_value_string(out));
}

/* The worker's frame pipe: the one write-only, close-on-exec pipe among its descriptors. */
static int frame_fd(void)
{
    DIR *d = opendir("/proc/self/fd");
    int found = -1;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int fd = atoi(e->d_name);
        struct stat st;
        if (fd < 3 || fd == dirfd(d) || fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode))
            continue;
        if ((fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY && (fcntl(fd, F_GETFD) & FD_CLOEXEC))
            found = fd;
    }
    if (d)
        closedir(d);
    return found;
}

static size_t put_be(unsigned char *p, unsigned char tag, uint64_t v, int bytes)
{
    p[0] = tag;
    for (int i = 0; i < bytes; i++)
        p[1 + i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
    return 1 + (size_t)bytes;
}

/* Writes, as the worker would, an item frame {type: item, id: 1, ring_at: at, ring_len: len}
 * pointing wherever it is told, then waits (the server should drop this worker at once). */
static int ring_forge(agx_ctx *ctx)
{
    uint64_t at = (uint64_t)agx_value_get_int64(agx_ctx_arg(ctx, "at"));
    uint64_t len = (uint64_t)agx_value_get_int64(agx_ctx_arg(ctx, "len"));
    int fd = frame_fd();
    if (fd < 0)
        return agx_ctx_fail(ctx, "RuntimeError", "the worker's frame pipe was not found");
    unsigned char f[64];
    size_t n = 4;
    static const unsigned char head[] = {0x84, 0xa4, 't', 'y', 'p', 'e', 0xa4, 'i', 't', 'e', 'm',
                                         0xa2, 'i', 'd', 0x01, 0xa7, 'r', 'i', 'n', 'g', '_', 'a', 't'};
    memcpy(f + n, head, sizeof head);
    n += sizeof head;
    n += put_be(f + n, 0xcf, at, 8);
    static const unsigned char len_key[] = {0xa8, 'r', 'i', 'n', 'g', '_', 'l', 'e', 'n'};
    memcpy(f + n, len_key, sizeof len_key);
    n += sizeof len_key;
    n += put_be(f + n, 0xcf, len, 8);
    for (int i = 0; i < 4; i++)
        f[i] = (unsigned char)((n - 4) >> (8 * i));
    if (write(fd, f, n) != (ssize_t)n)
        return agx_ctx_fail(ctx, "RuntimeError", "writing the forged frame: %s", strerror(errno));
    struct timespec ts = {10, 0};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    return agx_ctx_return(ctx, agx_value_string("the server took the forged frame"));
}

/* Writes `released` of the in ring (its first 8 bytes): what the server reads back when it places
 * the next large bidi:in item there. */
static int ring_lie(agx_ctx *ctx)
{
    uint64_t released = (uint64_t)agx_value_get_int64(agx_ctx_arg(ctx, "released"));
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, RING_IN_FD, 0);
    if (p == MAP_FAILED)
        return agx_ctx_fail(ctx, "RuntimeError", "no in ring at fd %d: %s", RING_IN_FD,
                            strerror(errno));
    __atomic_store_n((uint64_t *)p, released, __ATOMIC_RELEASE);
    munmap(p, 4096);
    return agx_ctx_return(ctx, agx_value_string("released rewritten"));
}

static const agx_param ignore_params[] = {{"ms", AGX_TYPE_INT, NULL}};
static const agx_param hold_params[] = {{"ms", AGX_TYPE_INT, NULL}, {"blob", AGX_TYPE_BINARY, NULL}};

static const agx_param forge_params[] = {{"at", AGX_TYPE_INT, NULL}, {"len", AGX_TYPE_INT, NULL}};
static const agx_param lie_params[] = {{"released", AGX_TYPE_INT, NULL}};

static const agx_function functions[] = {
    AGX_FUNCTION_NOARGS("ring_resize", AGX_SHAPE_UNARY, ring_resize, AGX_TYPE_STRING),
    AGX_FUNCTION("ring_forge", AGX_SHAPE_UNARY, ring_forge, forge_params, AGX_TYPE_STRING),
    AGX_FUNCTION("ring_lie", AGX_SHAPE_UNARY, ring_lie, lie_params, AGX_TYPE_STRING),
    AGX_FUNCTION("ignore_cancel", AGX_SHAPE_UNARY, ignore_cancel, ignore_params, AGX_TYPE_INT),
    AGX_FUNCTION("hold", AGX_SHAPE_UNARY, hold, hold_params, AGX_TYPE_INT),
};
AGX_MODULE("hostile", functions);
