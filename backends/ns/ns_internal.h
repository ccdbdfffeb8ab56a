/* ns_internal.h — the pieces of the `ns` backend (host → ns backend → an isolated process tree:
 * its own mount, PID, IPC, UTS, network and cgroup namespaces, an overlayfs root from the task
 * image, the bundle mounted read-only, agentix-server started by a tiny init as PID 1).
 *
 *   ns_config.c   environment and per-sandbox options
 *   ns_record.c   the on-disk record of a sandbox (state dir, never visible inside a sandbox)
 *   ns_cgroup.c   cgroup v1 / v2 detection, limits, killing everything inside, removal
 *   ns_layer.c    one image layer (a tar) unpacked safely into a directory (fuzzed)
 *   ns_cache.c    the content-addressed layer cache shared by every sandbox and host process
 *   ns_image.c    task image → ordered layer dirs (Docker Engine export, OCI layout, rootfs dir)
 *   ns_bundle.c   the bundle (a directory or a tarball) → a directory to mount
 *   ns_seccomp.c  the default seccomp filter, compiled once per deployment
 *   ns_launch.c   clone + namespaces + mounts + pivot_root + limits, then exec of agentix-ns-init
 *   ns_net.c      the private network (pasta) and host port selection
 *   ns_health.c   GET /health and POST /expiry over a Unix socket or 127.0.0.1
 *   ns_sandbox.c  create / delete / sweep: the lifecycle, writing the record before anything runs
 *   ns.c          the vtable */
#ifndef AGX_BACKEND_NS_INTERNAL_H
#define AGX_BACKEND_NS_INTERNAL_H

#include <linux/filter.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agentix/backend/toolkit.h"
#include "agentix/deployment.h"
#include "agentix/error.h"

#define AGX_NS_ID_PREFIX "ns-"
#define AGX_NS_ID_MAX 64 /* "ns-" + 24 hex digits fits with room to spare */
#define AGX_NS_PATH_MAX 4096
#define AGX_NS_DEFAULT_TIMEOUT_MS 120000
#define AGX_NS_PREFIX_DEFAULT "/opt/agentix" /* where a bundle is mounted unless BUNDLE says */
#define AGX_NS_RUN_DIR "/run/agentix"          /* the sandbox's view of its host socket dir */
#define AGX_NS_SOCKET_NAME "agentix.sock"
#define AGX_NS_TCP_PORT 8000                   /* the runtime's port inside a private network */
#define AGX_NS_MAX_LAYERS 128
#define AGX_NS_KILL_WAIT_MS 30000 /* SIGKILL → gone; generous for the reason local_internal.h gives */
#define AGX_NS_OOM_SCORE_ADJ "500" /* oom_score_adj of every sandbox process (ns_launch.c) */

/* A fresh mmap'd stack for a clone child. Under ASan its shadow may still hold the poison of a
 * thread stack that lived at the same address (ASan does not clear shadow on munmap/mmap), which
 * the child would report as a stack overflow: clear it. */
#if defined(__SANITIZE_ADDRESS__)
#define AGX_NS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AGX_NS_ASAN 1
#endif
#endif
#ifdef AGX_NS_ASAN
#include <sanitizer/asan_interface.h>
#define agx_ns_stack_ready(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define agx_ns_stack_ready(p, n) ((void)(p), (void)(n))
#endif

typedef enum { AGX_NS_NET_NONE = 0, AGX_NS_NET_PRIVATE = 1 } agx_ns_net;

/* ---- configuration (ns_config.c) ---- */

typedef struct agx_ns_cgroup_info agx_ns_cgroup_info;

typedef struct agx_ns {
    char root[256];           /* AGENTIX_NS_ROOT: state dir (sandboxes/, cache/) */
    char init_path[AGX_NS_PATH_MAX]; /* agentix-ns-init (static) */
    char pasta[AGX_NS_PATH_MAX];     /* pasta executable, "" when absent */
    char docker_socket[108];  /* Docker Engine socket for image exports */
    int userns;               /* AGENTIX_NS_USERNS: sandbox root lives in its own user namespace */
    int cap_last;             /* /proc/sys/kernel/cap_last_cap */
    struct sock_fprog seccomp; /* the compiled default filter (ns_seccomp.c) */
    agx_ns_cgroup_info *cg;   /* what the kernel offers (ns_cgroup.c) */
    pthread_mutex_t mu;
    agx_sandbox_table *table; /* sandboxes this instance created (their processes are ours) */
    struct agx_ns_image_memo *images; /* image name → layer dirs, resolved once per instance */
    int64_t owner_start;      /* start ticks of this host process */
    int64_t stale_dir_ms;     /* AGENTIX_NS_STALE_DIR_MS: a record-less sandbox folder this old
                                 is abandoned (its creator was killed before the record) */
} agx_ns;

/* Per-sandbox choices from the config (options "ns.*" and the resources). */
typedef struct agx_ns_opts {
    agx_ns_net net;
    int host_loopback;        /* ns.host_loopback=1: the private network reaches the host's lo */
    char hostname[65];
    double cpus;
    uint64_t memory;
    int64_t pids;             /* ns.pids, 0 = the default (AGX_NS_DEFAULT_PIDS) */
    int64_t timeout_ms;
} agx_ns_opts;

#define AGX_NS_DEFAULT_PIDS 4096

int agx_ns_config_load(agx_ns *ns, agx_error *err);
int agx_ns_opts_read(const agx_ns *ns, const agx_sandbox_config *cfg, agx_ns_opts *o,
                     agx_error *err);

/* ---- cgroups (ns_cgroup.c) ---- */

#define AGX_NS_CG_MAX 6 /* one path per v1 hierarchy we use, or the single v2 group */

typedef struct agx_ns_cgroups {
    int n;
    char path[AGX_NS_CG_MAX][512]; /* absolute directories, created by agx_ns_cgroup_create */
} agx_ns_cgroups;

/* Detects the hierarchies (v1 controllers mounted under /sys/fs/cgroup/<c>, or a v2 mount with
 * the controllers enabled) and this process's place in them. */
int agx_ns_cgroup_detect(agx_ns_cgroup_info **out, agx_error *err);
void agx_ns_cgroup_info_free(agx_ns_cgroup_info *info);
/* One line for READMEs and errors: "cgroup v1: memory pids cpu" etc. */
const char *agx_ns_cgroup_describe(const agx_ns_cgroup_info *info);
/* Creates the sandbox's groups (named id) and applies the limits; a limit the kernel cannot
 * enforce fails naming it. Paths are filled in before any mkdir so a crash leaves a record. */
int agx_ns_cgroup_plan(const agx_ns_cgroup_info *info, const char *id, agx_ns_cgroups *cg);
int agx_ns_cgroup_create(const agx_ns_cgroup_info *info, const agx_ns_cgroups *cg,
                         const agx_ns_opts *o, agx_error *err);
/* Kills every process in the groups (freezing v1 groups first so none forks past the kill) and
 * removes them. Groups already gone are fine. */
int agx_ns_cgroup_destroy(const agx_ns_cgroups *cg, agx_error *err);
/* Number of processes still in the groups (tests and sweeps). */
int agx_ns_cgroup_count(const agx_ns_cgroups *cg);
/* OOM kills counted by the memory controller of the groups (0 when none or unknown). */
long agx_ns_cgroup_oom_kills(const agx_ns_cgroups *cg);
/* Test seam: AGENTIX_NS_TEST_HIDE_CONTROLLERS="memory,pids" makes detection ignore those. */

/* ---- layers and the cache (ns_layer.c, ns_cache.c) ---- */

/* Limits on one layer's content (untrusted input). */
typedef struct agx_ns_layer_limits {
    uint64_t max_bytes;    /* total file bytes written */
    uint64_t max_entries;  /* entries */
    size_t max_path;       /* bytes of one entry's path */
} agx_ns_layer_limits;

/* Reads one layer from fd (tar, optionally gzip/zstd/xz/bzip2-compressed) into the existing
 * empty directory dirfd: whiteouts (.wh.NAME) become overlayfs whiteouts (0:0 character devices),
 * opaque markers (.wh..wh..opq) the trusted.overlay.opaque xattr. Paths are resolved beneath
 * dirfd (no "..", no absolute escape, no symlink followed out of it), device nodes are refused,
 * hard links must point inside. sha256_hex (65 bytes, may be NULL) receives the digest of the raw
 * bytes read from fd. what names the source in messages. */
int agx_ns_layer_unpack(int fd, int dirfd, const agx_ns_layer_limits *lim, const char *what,
                        char *sha256_hex, agx_error *err);
/* The same from a memory buffer (the fuzz target's entry). */
int agx_ns_layer_unpack_mem(const void *data, size_t len, int dirfd,
                            const agx_ns_layer_limits *lim, agx_error *err);
void agx_ns_layer_limits_default(agx_ns_layer_limits *lim);

/* The cache under <root>/cache: layers/sha256/<hex>/ (complete layers only: each is unpacked in
 * tmp/ and renamed into place), images/<key>.json (ordered layer digests), locks/. */
typedef int (*agx_ns_fill_fn)(int fd_or_dirfd, void *user, char *sha256_hex, agx_error *err);
/* Path of a cached layer dir, "" when absent. */
int agx_ns_cache_layer_path(const agx_ns *ns, const char *hex, char *out, size_t n);
/* Makes sure layer <hex> is in the cache: if absent, under an exclusive lock, calls fill with a
 * fresh empty dir fd in tmp/, checks the digest fill reports equals hex, renames it into place.
 * hex may be NULL when the digest is only known after reading (fill's digest names it then). */
int agx_ns_cache_layer_put(const agx_ns *ns, const char *hex, agx_ns_fill_fn fill, void *user,
                           char *out_hex, agx_error *err);
/* Removes tmp/ leftovers of dead unpackers (their lock is free). */
void agx_ns_cache_sweep_tmp(const agx_ns *ns);
/* Exclusive lock on <root>/cache/locks/<name>.lock; returns the fd (close to release). */
int agx_ns_cache_lock(const agx_ns *ns, const char *name, agx_error *err);
int agx_ns_cache_dir(const agx_ns *ns, const char *sub, char *out, size_t n, agx_error *err);

/* ---- images (ns_image.c) ---- */

typedef struct agx_ns_layers {
    int n;
    char *dir[AGX_NS_MAX_LAYERS]; /* lowest first; owned */
    char **env;                   /* the image config's Env ("K=V", NULL-terminated) or NULL */
} agx_ns_layers;
void agx_ns_layers_clear(agx_ns_layers *l);
/* Resolves the config's image: "dir:/path" or an absolute directory (a rootfs used as is),
 * "oci:/path[:ref]" (an OCI image layout), anything else a Docker Engine image (exported once). */
int agx_ns_image_resolve(agx_ns *ns, const char *image, agx_ns_layers *out, agx_error *err);
void agx_ns_image_memo_free(agx_ns *ns);

/* ---- bundles (ns_bundle.c) ---- */

typedef struct agx_ns_bundle {
    char dir[AGX_NS_PATH_MAX];    /* what appears at prefix */
    char prefix[256];
} agx_ns_bundle;
int agx_ns_bundle_resolve(const agx_ns *ns, const char *bundle, agx_ns_bundle *out,
                          agx_error *err);

/* ---- seccomp (ns_seccomp.c) ---- */

int agx_ns_seccomp_build(struct sock_fprog *out, agx_error *err);
void agx_ns_seccomp_free(struct sock_fprog *prog);

/* ---- launching (ns_launch.c) ---- */

typedef struct agx_ns_launch {
    /* all prepared by the host before clone: the child only makes system calls */
    const agx_ns *ns;
    const char *rootfs;        /* <sbdir>/rootfs, the overlay's mount point */
    const char *overlay_opts;  /* lowerdir=…,upperdir=…,workdir=… */
    const char *bundle_dir, *bundle_prefix;
    const char *run_dir;       /* <sbdir>/run → AGX_NS_RUN_DIR */
    const char *resolv;        /* a resolv.conf to bind over /etc/resolv.conf, or NULL */
    const char *hostname;
    const agx_ns_cgroups *cg;
    int log_fd;                /* stdout/stderr of init and server */
    int token_fd;              /* read end of a pipe holding the token: inherited by the server
                                * under the same number (AGENTIX_TOKEN_FD), nothing else */
    char *const *argv;         /* agentix-ns-init's */
    char *const *envp;
} agx_ns_launch;

typedef struct agx_ns_child {
    pid_t pid;                 /* PID 1 of the sandbox, as the host sees it */
    uint64_t start_ticks;
    int ctl;                   /* the host's end of the control pipe pair; -1 once done */
    int status_fd;
} agx_ns_child;

/* Clones the sandbox's first process. It joins the cgroups, sets up its namespaces and root and
 * stops before exec; agx_ns_launch_release lets it exec once the host is done (uid maps, pasta).
 * Returns once the child is stopped there or failed. */
int agx_ns_launch_start(const agx_ns_launch *l, agx_ns_child *c, agx_error *err);
int agx_ns_launch_release(const agx_ns *ns, agx_ns_child *c, int64_t deadline_ms,
                          agx_error *err);
void agx_ns_child_close(agx_ns_child *c);

/* ---- network (ns_net.c) ---- */

/* A free TCP port on 127.0.0.1 for the runtime's published port. */
int agx_ns_free_port(int *port, agx_error *err);
/* Pins the network namespace of pid on file (created) with a bind mount, for pasta. */
int agx_ns_netns_pin(pid_t pid, const char *file, agx_error *err);
void agx_ns_netns_unpin(const char *file);
/* Starts pasta in the foreground for the network namespace pinned at netns, in the sandbox's
 * cgroups, publishing 127.0.0.1:host_port → port 8000 inside. */
int agx_ns_pasta_start(const agx_ns *ns, const char *netns, int host_port, int host_loopback,
                       const agx_ns_cgroups *cg, const char *log_path, pid_t *out,
                       agx_error *err);

/* ---- health (ns_health.c) ---- */

/* 1 when GET /health answered 200 {"status":"ok"}: over the Unix socket at sock_path (opened
 * without following a symlink: the socket's folder is writable inside the sandbox) or, with
 * sock_path NULL, at 127.0.0.1:port. */
int agx_ns_health_ok(const char *sock_path, int port, int64_t budget_ms);

/* ---- sandboxes (ns_sandbox.c, ns_record.c) ---- */

/* Ids name folders we may delete: [A-Za-z0-9_-], 1..AGX_NS_ID_MAX-1 bytes. */
int agx_ns_id_valid(const char *id);
/* Start time of pid (clock ticks since boot) when it runs and is not a zombie: 0, else -1. With
 * the recorded start time it tells the recorded process from a later one that reused its pid. */
int agx_ns_start_ticks(pid_t pid, uint64_t *ticks);

typedef struct agx_ns_record {
    char id[AGX_NS_ID_MAX];
    char state[16];        /* "creating", "running" */
    int64_t pid;           /* PID 1 of the sandbox (host view), 0 before it exists */
    uint64_t pid_start;
    int64_t pasta_pid;
    uint64_t pasta_start;
    int net;               /* agx_ns_net */
    int port;              /* private: the published port on 127.0.0.1 */
    int64_t owner_pid;
    uint64_t owner_start;  /* with owner_pid: tells a live owner from a reused pid */
    int64_t created_at;
    agx_ns_cgroups cg;
    agx_kv *labels;
} agx_ns_record;

int agx_ns_record_write(const agx_ns *ns, const agx_ns_record *r, agx_error *err);
int agx_ns_record_read(const agx_ns *ns, const char *id, agx_ns_record *r, agx_error *err);
int agx_ns_record_parse(const char *text, size_t len, const char *what, agx_ns_record *r,
                        agx_error *err);
void agx_ns_record_clear(agx_ns_record *r);
void agx_ns_sandbox_dir(const agx_ns *ns, const char *id, char *out, size_t n);
/* The runtime URL of a record: http+unix://<escaped socket path>/ or http://127.0.0.1:<port>. */
int agx_ns_runtime_url(const agx_ns *ns, const agx_ns_record *r, char *out, size_t n);

/* The table of sandboxes this instance created (ns.c): their first processes are our children. */
int agx_ns_entry_add(agx_ns *ns, const agx_ns_record *r, agx_error *err);
int agx_ns_entry_owned(agx_ns *ns, const char *id);

int agx_ns_create(agx_ns *ns, const agx_sandbox_config *cfg, agx_sandbox **out, agx_error *err);
/* Kills the sandbox's processes (checked against pid + start time), removes its cgroups and
 * directories. own_pid1 > 0: a child of this process, reaped here. */
int agx_ns_teardown(const agx_ns *ns, agx_ns_record *r, int own_children, agx_error *err);
/* Removes every sandbox whose owner process is dead; *removed counts them. */
int agx_ns_sweep(agx_ns *ns, int *removed, agx_error *err);

#endif
