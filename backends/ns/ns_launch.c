/* ns_launch.c — starting one sandbox's process tree (host → clone → PID 1 of the sandbox →
 * exec of agentix-ns-init, which runs agentix-server). Our own clone code rather than a launcher
 * binary: one process fewer to start, the child joins its cgroups before it does anything else,
 * and it stops before exec so the host can finish what needs the child's pid (user namespace maps,
 * pasta) — see the backend README for the measurements behind the choice.
 *
 * The child is a copy of a possibly multi-threaded host: between clone and exec it only makes
 * system calls (no malloc, no stdio, no locks, no libc call that involves the other threads). Everything it needs — paths, options, argv, envp,
 * the seccomp program — is prepared by the host. Its steps, in order:
 *   fds above 2 marked close-on-exec; join the cgroups; new cgroup namespace; mounts made private;
 *   overlayfs root; bundle and socket dir cloned as detached mounts (open_tree); pivot_root into
 *   the overlay and drop the old root; then, with the sandbox's root as "/", so that symlinks in
 *   the image resolve inside it: the bundle (read-only) at its prefix, the socket dir at
 *   /run/agentix, /proc of the new PID namespace with sensitive files masked, a minimal /dev;
 *   hostname; loopback up; optionally a user namespace (the host writes its maps); wait for the
 *   host's go; ids, seccomp, capability bounding set; exec.
 * Mounts live in the sandbox's mount namespace only: the host's mount table never sees them, and
 * they vanish with the namespace however the sandbox ends. A failed step is reported to the host
 * as (step, errno) over the status pipe; a host that dies first closes the control pipe and the
 * child exits at its next read. */
#include "backends/ns/ns_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_STACK (256 * 1024)

enum step {
    S_NONE, S_FDS, S_CGROUP, S_OOM, S_CGNS, S_PRIVATE, S_OVERLAY, S_BUNDLE_TREE, S_BUNDLE_RO, S_RUN_TREE,
    S_PIVOT, S_MKDIR, S_BUNDLE_MOVE, S_RUN_MOVE, S_PROC, S_DEV, S_PROC_MASK, S_HOSTNAME, S_LO,
    S_SYSCTL, S_USERNS, S_WAIT, S_IDS, S_SECCOMP, S_CAPS, S_STDIO, S_EXEC, S_COUNT
};

static const char *const step_names[S_COUNT] = {
    [S_NONE] = "starting", [S_FDS] = "closing inherited descriptors",
    [S_CGROUP] = "joining its cgroups", [S_OOM] = "raising its OOM score", [S_CGNS] = "creating its cgroup namespace",
    [S_PRIVATE] = "making mounts private", [S_OVERLAY] = "mounting the overlayfs root",
    [S_BUNDLE_TREE] = "cloning the bundle mount", [S_BUNDLE_RO] = "making the bundle read-only",
    [S_RUN_TREE] = "cloning the socket folder mount", [S_PIVOT] = "pivot_root into the overlay",
    [S_MKDIR] = "creating mount points in the root", [S_BUNDLE_MOVE] = "mounting the bundle",
    [S_RUN_MOVE] = "mounting the socket folder", [S_PROC] = "mounting /proc",
    [S_DEV] = "creating /dev", [S_PROC_MASK] = "masking /proc files",
    [S_HOSTNAME] = "setting the hostname", [S_LO] = "bringing up the loopback interface",
    [S_SYSCTL] = "setting network sysctls", [S_USERNS] = "creating its user namespace",
    [S_WAIT] = "waiting for the host", [S_IDS] = "switching to uid/gid 0 of its user namespace",
    [S_SECCOMP] = "installing the seccomp filter", [S_CAPS] = "dropping capabilities",
    [S_STDIO] = "setting up stdio", [S_EXEC] = "executing agentix-ns-init",
};

/* Docker's default capability set: what a root task normally needs, nothing that reaches the
 * kernel's global state (no SYS_ADMIN, SYS_MODULE, SYS_TIME, NET_ADMIN, SYS_PTRACE, …). */
static const int keep_caps[] = {CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FOWNER,     CAP_FSETID,
                                CAP_KILL,   CAP_SETGID,       CAP_SETUID,     CAP_SETPCAP,
                                CAP_NET_BIND_SERVICE, CAP_NET_RAW, CAP_SYS_CHROOT, CAP_MKNOD,
                                CAP_AUDIT_WRITE, CAP_SETFCAP};

typedef struct child_args {
    const agx_ns_launch *l;
    int ctl_rd, st_wr, init_fd, devnull;
    int cg_fd[AGX_NS_CG_MAX];
    int ncg;
    int userns, cap_last;
    const struct sock_fprog *seccomp;
} child_args;

typedef struct child_report {
    int step;
    int err;
} child_report;

static void fail(const child_args *a, int step)
{
    child_report r = {step, errno};
    if (write(a->st_wr, &r, sizeof r) < 0) {
        /* nothing left to tell anyone */
    }
    _exit(127);
}

/* mkdir -p of an absolute path, in the child (no allocation). */
static int mkdir_p(const char *path, mode_t mode)
{
    char buf[512];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return errno = ENAMETOOLONG, -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (!c)
                return 0;
        }
    }
}

static int make_node(const char *path, unsigned major, unsigned minor)
{
    return mknod(path, S_IFCHR | 0666, makedev(major, minor));
}

static int make_dev(void)
{
    static const struct { const char *name; unsigned major, minor; } nodes[] = {
        {"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
        {"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0}};
    static const struct { const char *target, *name; } links[] = {
        {"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
        {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
        {"pts/ptmx", "/dev/ptmx"}};
    if (mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m") != 0)
        return -1;
    for (size_t i = 0; i < sizeof nodes / sizeof *nodes; i++)
        if (make_node(nodes[i].name, nodes[i].major, nodes[i].minor) != 0)
            return -1;
    for (size_t i = 0; i < sizeof links / sizeof *links; i++)
        if (symlink(links[i].target, links[i].name) != 0)
            return -1;
    if (mkdir("/dev/pts", 0755) != 0 || mkdir("/dev/shm", 01777) != 0 ||
        mount("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620") != 0 ||
        mount("shm", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k") != 0)
        return -1;
    return 0;
}

/* What Docker masks too: kernel memory, keys and timers hidden; kernel knobs read-only. */
static int mask_proc(void)
{
    static const char *const hide[] = {"/proc/kcore", "/proc/keys", "/proc/timer_list",
                                       "/proc/sched_debug", "/proc/kallsyms"};
    static const char *const ro[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/irq",
                                     "/proc/bus", "/proc/fs"};
    for (size_t i = 0; i < sizeof hide / sizeof *hide; i++)
        if (mount("/dev/null", hide[i], NULL, MS_BIND, NULL) != 0 && errno != ENOENT)
            return -1;
    for (size_t i = 0; i < sizeof ro / sizeof *ro; i++) {
        if (mount(ro[i], ro[i], NULL, MS_BIND | MS_REC, NULL) != 0) {
            if (errno == ENOENT)
                continue;
            return -1;
        }
        if (mount(NULL, ro[i], NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, NULL) != 0)
            return -1;
    }
    return 0;
}

static int loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, "lo", 3);
    int rc = ioctl(s, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        rc = ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
    return rc;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int drop_caps(int cap_last)
{
    uint64_t keep = 0;
    for (size_t i = 0; i < sizeof keep_caps / sizeof *keep_caps; i++)
        keep |= 1ull << keep_caps[i];
    for (int c = 0; c <= cap_last; c++)
        if (!(keep & (1ull << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0 && errno != EINVAL)
            return -1;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    d[0].effective = d[0].permitted = d[0].inheritable = (uint32_t)keep;
    d[1].effective = d[1].permitted = d[1].inheritable = (uint32_t)(keep >> 32);
    return (int)syscall(SYS_capset, &h, d);
}

static int setup_root(const child_args *a)
{
    const agx_ns_launch *l = a->l;
    if (mount("overlay", l->rootfs, "overlay", 0, l->overlay_opts) != 0)
        fail(a, S_OVERLAY);
    int bundle = (int)syscall(SYS_open_tree, AT_FDCWD, l->bundle_dir,
                              OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (bundle < 0)
        fail(a, S_BUNDLE_TREE);
    struct mount_attr ro = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (syscall(SYS_mount_setattr, bundle, "", AT_EMPTY_PATH | AT_RECURSIVE, &ro, sizeof ro) != 0)
        fail(a, S_BUNDLE_RO);
    int run = (int)syscall(SYS_open_tree, AT_FDCWD, l->run_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    struct mount_attr rw = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC};
    if (run < 0 || syscall(SYS_mount_setattr, run, "", AT_EMPTY_PATH, &rw, sizeof rw) != 0)
        fail(a, S_RUN_TREE);
    /* From here paths resolve inside the sandbox's root: an image's symlink cannot point a mount
     * at a host path. */
    if (chdir(l->rootfs) != 0 || syscall(SYS_pivot_root, ".", ".") != 0 ||
        umount2(".", MNT_DETACH) != 0 || chdir("/") != 0)
        fail(a, S_PIVOT);
    if (mkdir_p(l->bundle_prefix, 0755) != 0 || mkdir_p(AGX_NS_RUN_DIR, 0755) != 0 ||
        mkdir_p("/proc", 0555) != 0 || mkdir_p("/dev", 0755) != 0)
        fail(a, S_MKDIR);
    if (syscall(SYS_move_mount, bundle, "", AT_FDCWD, l->bundle_prefix,
                MOVE_MOUNT_F_EMPTY_PATH) != 0)
        fail(a, S_BUNDLE_MOVE);
    if (syscall(SYS_move_mount, run, "", AT_FDCWD, AGX_NS_RUN_DIR, MOVE_MOUNT_F_EMPTY_PATH) != 0)
        fail(a, S_RUN_MOVE);
    close(bundle);
    close(run);
    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        fail(a, S_PROC);
    if (make_dev() != 0)
        fail(a, S_DEV);
    return 0;
}

/* Closes every descriptor above 2 except the ones the child uses. The host's end of the control
 * pipe must go at once: while the child held a copy it would never see EOF when the host dies
 * (it would wait for 'G' forever), nor would a sibling child cloned by another thread of the same
 * host that still held ours. No allocation: the few kept numbers are sorted on the stack. */
static int close_others(const child_args *a)
{
    const agx_ns_launch *l = a->l;
    unsigned keep[8 + AGX_NS_CG_MAX];
    int n = 0;
    int fixed[] = {a->ctl_rd, a->st_wr, a->init_fd, a->devnull, l->log_fd, l->token_fd};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        if (fixed[i] > 2)
            keep[n++] = (unsigned)fixed[i];
    for (int i = 0; i < a->ncg; i++)
        keep[n++] = (unsigned)a->cg_fd[i];
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            unsigned t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned from = 3;
    for (int i = 0; i < n; i++) {
        if (keep[i] > from && syscall(SYS_close_range, from, keep[i] - 1, 0) != 0)
            return -1;
        if (keep[i] + 1 > from)
            from = keep[i] + 1;
    }
    return (int)syscall(SYS_close_range, from, ~0u, 0);
}

static int child_main(void *arg)
{
    const child_args *a = arg;
    const agx_ns_launch *l = a->l;
    umask(0);
    /* Nothing of the host's descriptors may reach the sandbox: what the child does not use is
     * closed now, what it uses is closed on exec. */
    if (close_others(a) != 0 || syscall(SYS_close_range, 3, ~0u, CLOSE_RANGE_CLOEXEC) != 0)
        fail(a, S_FDS);
    /* …except the token's pipe, which the server reads to EOF and closes (AGENTIX_TOKEN_FD). */
    if (l->token_fd > 2 && fcntl(l->token_fd, F_SETFD, 0) != 0)
        fail(a, S_FDS);
    for (int i = 0; i < a->ncg; i++)
        if (write(a->cg_fd[i], "0", 1) != 1)
            fail(a, S_CGROUP);
    /* Every process of the sandbox inherits a raised OOM score, pasta (also in the sandbox's
     * memory group, started by the host) keeps 0: a task that overruns the memory limit is the
     * kernel's pick, not pasta — which would cut the runtime off and leave the task running (seen:
     * 300 MB against 64 MiB killed pasta). Lowering pasta's score instead needs CAP_SYS_RESOURCE,
     * which some hosts withhold even from root; raising is always allowed. */
    if (write_file("/proc/self/oom_score_adj", AGX_NS_OOM_SCORE_ADJ) != 0)
        fail(a, S_OOM);
    if (unshare(CLONE_NEWCGROUP) != 0)
        fail(a, S_CGNS);
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        fail(a, S_PRIVATE);
    setup_root(a);
    if (sethostname(l->hostname, strlen(l->hostname)) != 0)
        fail(a, S_HOSTNAME);
    if (loopback_up() != 0)
        fail(a, S_LO);
    /* In a user namespace the task's root holds no capability over the network namespace, so
     * let it bind low ports like root in a container would. */
    if (a->userns && write_file("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0") != 0)
        fail(a, S_SYSCTL);
    if (mask_proc() != 0)
        fail(a, S_PROC_MASK);
    if (a->userns && unshare(CLONE_NEWUSER) != 0)
        fail(a, S_USERNS);
    char c = 'R';
    if (write(a->st_wr, &c, 1) != 1 || read(a->ctl_rd, &c, 1) != 1 || c != 'G')
        _exit(126); /* the host is gone or gave up: nothing was started */
    /* Raw system calls: glibc's setresuid/setresgid would signal every thread it believes the
     * process has and wait for each to switch too — threads of the host that this child (made
     * by clone, not fork) does not have, so it would wait forever. */
    if (a->userns && (syscall(SYS_setresgid, 0, 0, 0) != 0 || syscall(SYS_setresuid, 0, 0, 0) != 0))
        fail(a, S_IDS);
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, a->seccomp, 0, 0) != 0)
        fail(a, S_SECCOMP);
    if (drop_caps(a->cap_last) != 0)
        fail(a, S_CAPS);
    if (dup2(a->devnull, 0) < 0 || dup2(l->log_fd, 1) < 0 || dup2(l->log_fd, 2) < 0)
        fail(a, S_STDIO);
    syscall(SYS_execveat, a->init_fd, "", l->argv, l->envp, AT_EMPTY_PATH);
    fail(a, S_EXEC);
    return 127;
}

/* ---- host side ---- */

/* Reads exactly n bytes (or EOF → 0 bytes) before the deadline; -1 on timeout or error. */
static ssize_t read_until(int fd, void *buf, size_t n, int64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        int64_t left = deadline - agx_clock_ms();
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, left > 0 ? (int)left : 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t k = read(fd, (char *)buf + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            return (ssize_t)got;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

static int report_failure(int st, int first, int64_t deadline, agx_error *err)
{
    child_report r;
    ((char *)&r)[0] = (char)first;
    ssize_t k = read_until(st, (char *)&r + 1, sizeof r - 1, deadline);
    if (k != (ssize_t)sizeof r - 1 || r.step <= S_NONE || r.step >= S_COUNT)
        return agx_error_set(err, AGX_ERR_BACKEND, "the sandbox's first process failed while "
                             "setting up (no reason given)");
    const char *hint = "";
    if (r.step == S_OVERLAY)
        hint = " (is overlayfs available? `modprobe overlay`; the upper dir must not be on "
               "overlayfs)";
    else if (r.step == S_USERNS)
        hint = " (set AGENTIX_NS_USERNS=0 where user namespaces are disabled)";
    return agx_error_set(err, r.step == S_OVERLAY ? AGX_ERR_UNSUPPORTED : AGX_ERR_BACKEND,
                         "sandbox setup failed %s: %s%s", step_names[r.step], strerror(r.err),
                         hint);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

void agx_ns_child_close(agx_ns_child *c)
{
    close_fd(&c->ctl);
    close_fd(&c->status_fd);
}

static int open_cgroup_procs(const agx_ns_cgroups *cg, child_args *a, agx_error *err)
{
    a->ncg = 0;
    for (int i = 0; i < cg->n; i++) {
        char path[640];
        snprintf(path, sizeof path, "%s/cgroup.procs", cg->path[i]);
        a->cg_fd[i] = open(path, O_WRONLY | O_CLOEXEC);
        if (a->cg_fd[i] < 0)
            return agx_error_set(err, AGX_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        a->ncg++;
    }
    return 0;
}

int agx_ns_launch_start(const agx_ns_launch *l, agx_ns_child *c, agx_error *err)
{
    memset(c, 0, sizeof *c);
    c->ctl = c->status_fd = -1;
    child_args a = {.l = l, .ctl_rd = -1, .st_wr = -1, .init_fd = -1, .devnull = -1,
                    .userns = l->ns->userns, .cap_last = l->ns->cap_last,
                    .seccomp = &l->ns->seccomp};
    int ctl[2] = {-1, -1}, st[2] = {-1, -1}, rc = 0;
    void *stack = MAP_FAILED;
    if (pipe2(ctl, O_CLOEXEC) != 0 || pipe2(st, O_CLOEXEC) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "pipe: %s", strerror(errno));
    if (!rc && (a.init_fd = open(l->ns->init_path, O_PATH | O_CLOEXEC)) < 0)
        rc = agx_error_set(err, AGX_ERR_NOT_FOUND, "cannot open agentix-ns-init '%s': %s",
                           l->ns->init_path, strerror(errno));
    if (!rc && (a.devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        rc = agx_error_set(err, AGX_ERR_IO, "cannot open /dev/null: %s", strerror(errno));
    if (!rc)
        rc = open_cgroup_procs(l->cg, &a, err);
    if (!rc) {
        stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (stack == MAP_FAILED)
            rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "cannot map a stack for the sandbox");
        else
            agx_ns_stack_ready(stack, CHILD_STACK);
    }
    if (!rc) {
        a.ctl_rd = ctl[0];
        a.st_wr = st[1];
        pid_t pid = clone(child_main, (char *)stack + CHILD_STACK,
                          CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET |
                              SIGCHLD,
                          &a);
        if (pid < 0)
            rc = agx_error_set(err, errno == EPERM ? AGX_ERR_UNSUPPORTED : AGX_ERR_IO,
                               "cannot create the sandbox's namespaces (clone): %s%s",
                               strerror(errno),
                               errno == EPERM ? "; the ns backend needs root (CAP_SYS_ADMIN)" : "");
        else
            c->pid = pid;
    }
    if (stack != MAP_FAILED)
        munmap(stack, CHILD_STACK); /* the child has its own copy of the address space */
    for (int i = 0; i < a.ncg; i++)
        close(a.cg_fd[i]);
    close_fd(&a.init_fd);
    close_fd(&a.devnull);
    close_fd(&ctl[0]);
    close_fd(&st[1]);
    c->ctl = ctl[1];
    c->status_fd = st[0];
    if (rc) {
        agx_ns_child_close(c);
        return rc;
    }
    agx_ns_start_ticks(c->pid, &c->start_ticks);
    char first;
    int64_t deadline = agx_clock_ms() + 30000;
    ssize_t k = read_until(c->status_fd, &first, 1, deadline);
    if (k == 1 && first == 'R')
        return 0;
    if (k == 1)
        return report_failure(c->status_fd, first, deadline, err);
    return agx_error_set(err, k == 0 ? AGX_ERR_BACKEND : AGX_ERR_TIMEOUT,
                         "the sandbox's first process %s before it was set up",
                         k == 0 ? "died" : "did not report within 30 s");
}

static int write_map(pid_t pid, const char *which, agx_error *err)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, which);
    /* Identity over the whole range: files of the image keep their owners, while the sandbox's
     * root holds capabilities only in its own namespace, which owns none of the others. */
    const char *map = "0 0 4294967295\n";
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? write(fd, map, strlen(map)) : -1;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (n != (ssize_t)strlen(map))
        return agx_error_set(err, AGX_ERR_IO, "cannot write %s: %s", path, strerror(e));
    return 0;
}

int agx_ns_launch_release(const agx_ns *ns, agx_ns_child *c, int64_t deadline_ms,
                          agx_error *err)
{
    int rc = 0;
    if (ns->userns)
        rc = write_map(c->pid, "uid_map", err);
    if (!rc && ns->userns)
        rc = write_map(c->pid, "gid_map", err);
    char go = 'G';
    if (!rc && write(c->ctl, &go, 1) != 1)
        rc = agx_error_set(err, AGX_ERR_BACKEND, "the sandbox's first process is gone");
    if (!rc) {
        /* EOF: the status pipe closed on exec, so the init runs. */
        char first;
        int64_t now = agx_clock_ms(), deadline = deadline_ms > now ? deadline_ms : now + 1;
        ssize_t k = read_until(c->status_fd, &first, 1, deadline);
        if (k == 1)
            rc = report_failure(c->status_fd, first, deadline, err);
        else if (k < 0)
            rc = agx_error_set(err, AGX_ERR_TIMEOUT, "the sandbox's first process did not exec "
                               "agentix-ns-init in time");
    }
    agx_ns_child_close(c);
    return rc;
}
