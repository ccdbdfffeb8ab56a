/* fuzz_ns_layer.c — libFuzzer target for the ns backend's layer decoder (backends/ns/ns_layer.c):
 * a layer is untrusted (any image a user names), and what it writes becomes a sandbox's root. Each
 * input is unpacked into a fresh folder below a private parent; afterwards the parent must hold
 * that folder and nothing else (no entry escaped through "..", an absolute path, a symlinked
 * parent or a hard link), then the folder is removed. Small limits keep runs fast; they are the
 * same code paths as the defaults. Runs as root (whiteouts are device nodes, opaque markers
 * trusted xattrs), like the backend. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backends/ns/ns_internal.h"

static char parent[64];

static void only_root_left(void)
{
    DIR *d = opendir(parent);
    if (!d)
        abort();
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "root")) {
            fprintf(stderr, "fuzz_ns_layer: '%s' escaped the layer folder\n", e->d_name);
            abort();
        }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!parent[0]) {
        snprintf(parent, sizeof parent, "/tmp/agx-fuzz-ns-layer-XXXXXX");
        if (!mkdtemp(parent))
            abort();
    }
    char root[96];
    snprintf(root, sizeof root, "%s/root", parent);
    if (mkdir(root, 0755) != 0)
        abort();
    int dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0)
        abort();
    agx_ns_layer_limits lim = {.max_bytes = 1u << 20, .max_entries = 2000, .max_path = 1024};
    agx_error err;
    agx_ns_layer_unpack_mem(data, size, dirfd, &lim, &err);
    close(dirfd);
    only_root_left();
    if (agx_fs_rmtree(root, &err) != 0) {
        fprintf(stderr, "fuzz_ns_layer: %s\n", err.message);
        abort();
    }
    return 0;
}
