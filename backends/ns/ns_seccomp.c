/* ns_seccomp.c — the default seccomp filter of every ns sandbox, compiled once per deployment
 * with libseccomp and handed to the launcher as a ready BPF program (the cloned child only calls
 * prctl with it: no allocation between clone and exec).
 *
 * Shape: allow by default, refuse with EPERM what a task has no business doing and what widens the
 * kernel surface (Docker's default profile refuses the same families): kernel modules, kexec,
 * reboot, swap, clocks, keyrings, BPF, perf, userfaultfd, io_uring, handles to host files, every
 * mount call (old and new API), pivot_root, new namespaces (unshare, setns, clone with CLONE_NEW*)
 * and the x86 I/O port calls. clone3 answers ENOSYS so libc falls back to clone, whose flags the
 * filter can see. System calls of another ABI (i386, x32 on x86-64) kill the process. */
#include "backends/ns/ns_internal.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *const refused[] = {
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms",
    "init_module", "io_uring_enter", "io_uring_register", "io_uring_setup", "ioperm", "iopl",
    "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount",
    "mount_setattr", "move_mount", "name_to_handle_at", "nfsservctl", "open_by_handle_at",
    "open_tree", "perf_event_open", "pivot_root", "query_module", "quotactl", "quotactl_fd",
    "reboot", "request_key", "setns", "settimeofday", "stime", "swapoff", "swapon", "syslog",
    "_sysctl", "umount", "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86",
    "vm86old", "fanotify_init", "open_tree_attr",
};

/* clone with any CLONE_NEW* flag: one rule per flag, since libseccomp compares a masked argument
 * only for equality (flags & F == F). */
static int build_clone(scmp_filter_ctx ctx)
{
    int clone = seccomp_syscall_resolve_name("clone");
    if (clone < 0)
        return 0;
    static const unsigned long flags[] = {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER,
                                          CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        if (seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), clone, 1,
                             SCMP_A0(SCMP_CMP_MASKED_EQ, flags[i], flags[i])) != 0)
            return -1;
    return 0;
}

int agx_ns_seccomp_build(struct sock_fprog *out, agx_error *err)
{
    memset(out, 0, sizeof *out);
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "seccomp_init failed");
    int rc = -1, fd = -1;
    if (seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) == 0) {
        rc = 0;
        for (size_t i = 0; !rc && i < sizeof refused / sizeof *refused; i++) {
            int nr = seccomp_syscall_resolve_name(refused[i]);
            if (nr >= 0)
                rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        }
        int clone3 = seccomp_syscall_resolve_name("clone3");
        if (!rc && clone3 >= 0)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
        if (!rc)
            rc = build_clone(ctx);
    }
    /* libseccomp 2.5 exports BPF to a file descriptor only: a memfd, read back. */
    if (!rc && ((fd = memfd_create("agx-seccomp", MFD_CLOEXEC)) < 0 ||
                seccomp_export_bpf(ctx, fd) != 0))
        rc = -1;
    seccomp_release(ctx);
    off_t len = rc ? 0 : lseek(fd, 0, SEEK_END);
    if (!rc && (len <= 0 || len % (off_t)sizeof(struct sock_filter) != 0 || len > (1 << 20)))
        rc = -1;
    struct sock_filter *prog = rc ? NULL : malloc((size_t)len);
    if (prog && pread(fd, prog, (size_t)len, 0) != len) {
        free(prog);
        prog = NULL;
    }
    if (fd >= 0)
        close(fd);
    if (!prog)
        return agx_error_set(err, AGX_ERR_INTERNAL, "cannot compile the ns seccomp filter "
                             "(libseccomp); is libseccomp2 installed and up to date?");
    out->filter = prog;
    out->len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
    return 0;
}

void agx_ns_seccomp_free(struct sock_fprog *prog)
{
    free(prog->filter);
    prog->filter = NULL;
    prog->len = 0;
}
