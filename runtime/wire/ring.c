/* ring.c — a bulk ring's two ends (ring.h): the server creates and seals every ring, the worker
 * maps it; the writer (the worker for the out ring, the server for the in ring) places payloads,
 * the reader checks every reference a frame makes against its own position and releases. */
#include "runtime/wire/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define RING_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static uint64_t *released_word(const agx_ring *r) { return (uint64_t *)(void *)r->map; }

int agx_ring_create(agx_ring *r, size_t size)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    int fd = memfd_create("agentix-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -1;
    void *map = MAP_FAILED;
    if (ftruncate(fd, (off_t)(AGX_RING_CTRL + size)) != 0 ||
        fcntl(fd, F_ADD_SEALS, RING_SEALS) != 0 ||
        (map = mmap(NULL, AGX_RING_CTRL + size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)) ==
            MAP_FAILED) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    r->fd = fd;
    r->map = map;
    r->size = size;
    return 0;
}

bool agx_ring_attach(agx_ring *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW) ||
        fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size < (off_t)(AGX_RING_CTRL + 2 * AGX_RING_MIN_ITEM) ||
        st.st_size > (off_t)(AGX_RING_CTRL + ((size_t)1 << 30)))
        return false;
    size_t total = (size_t)st.st_size;
    void *map = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return false;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    r->fd = fd;
    r->map = map;
    r->size = total - AGX_RING_CTRL;
    r->pos = agx_ring_released(r);
    return true;
}

void agx_ring_close(agx_ring *r)
{
    if (r->map)
        munmap(r->map, AGX_RING_CTRL + r->size);
    if (r->fd >= 0)
        close(r->fd);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

uint64_t agx_ring_released(const agx_ring *r)
{
    return __atomic_load_n(released_word(r), __ATOMIC_ACQUIRE);
}

bool agx_ring_place(agx_ring *r, size_t len, uint64_t *at)
{
    if (!r->map || len == 0 || len > r->size)
        return false;
    uint64_t released = agx_ring_released(r);
    if (released > r->pos) /* a reader never runs ahead of what was placed: it lies */
        return false;
    uint64_t start = r->pos, off = start % r->size;
    if (off + len > r->size)
        start += r->size - off; /* the rest of this lap is skipped */
    if (start + len - released > r->size)
        return false;
    *at = start;
    r->pos = start + len;
    return true;
}

int agx_ring_accept(agx_ring *r, uint64_t at, uint64_t len, agx_error *err)
{
    if (!r->map)
        return agx_error_set(err, AGX_ERR_PROTOCOL,
                             "a payload in a bulk ring, but none was set up");
    if (len == 0 || len > r->size)
        return agx_error_set(err, AGX_ERR_PROTOCOL,
                             "a bulk ring item of %llu bytes (the ring holds 1..%zu)",
                             (unsigned long long)len, r->size);
    uint64_t off = r->pos % r->size;
    bool next_lap = at == r->pos + (r->size - off) && off != 0 && off + len > r->size;
    if (at != r->pos && !next_lap)
        return agx_error_set(err, AGX_ERR_PROTOCOL,
                             "a bulk ring item at position %llu; the next one is at %llu",
                             (unsigned long long)at, (unsigned long long)r->pos);
    if (at % r->size + len > r->size)
        return agx_error_set(err, AGX_ERR_PROTOCOL,
                             "a bulk ring item of %llu bytes at position %llu passes the end",
                             (unsigned long long)len, (unsigned long long)at);
    r->pos = at + len;
    return 0;
}

void agx_ring_release(agx_ring *r)
{
    if (r->map)
        __atomic_store_n(released_word(r), r->pos, __ATOMIC_RELEASE);
}
