/* ns_net.c — the private network of an ns sandbox: pasta (Debian's passt package) gives the
 * sandbox's network namespace a tap interface with outbound access through the host's sockets,
 * and publishes the runtime's port 8000 on the host's 127.0.0.1 only. No bridge, no iptables
 * rule, no sysctl and no address range is touched on the host: nothing global to clean up, and
 * pasta's only state is its process, which runs inside the sandbox's cgroups (so the sweep that
 * empties them finds it too). See the README for the measurements against veth + NAT.
 *
 * pasta (Debian 12's) cannot enter a namespace through /proc/<pid>/ns/net from its own isolated
 * view, so the namespace is pinned by a bind mount on <sandbox dir>/netns for it: the only host
 * mount a sandbox has, removed by teardown and by the sweep (its path follows from the id).
 *
 * pasta's defaults forward every port bound on either side ("auto"); here every direction is set
 * explicitly: one TCP port in, nothing else, and the host's loopback is unreachable from the
 * sandbox (--no-map-gw) unless the sandbox asks for ns.host_loopback=1. */
#include "backends/ns/ns_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

int agx_ns_free_port(int *port, agx_error *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
             getsockname(fd, (struct sockaddr *)&a, &len) == 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (!ok)
        return agx_error_set(err, AGX_ERR_IO, "cannot find a free port on 127.0.0.1: %s",
                             strerror(e));
    *port = ntohs(a.sin_port);
    return 0;
}

typedef struct pasta_args {
    char *const *argv;
    int cg_fd[AGX_NS_CG_MAX];
    int ncg, log_fd, null_fd;
} pasta_args;

/* The vfork child: joins the cgroups, then execs; system calls only. */
static int pasta_child(void *arg)
{
    const pasta_args *a = arg;
    for (int i = 0; i < a->ncg; i++)
        if (write(a->cg_fd[i], "0", 1) != 1)
            _exit(126);
    /* Default dispositions and an empty mask, whatever the host set (an ignored signal would
     * stay ignored across exec). The handler table is this child's own: no CLONE_SIGHAND. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setsid();
    if (dup2(a->null_fd, 0) < 0 || dup2(a->log_fd, 1) < 0 || dup2(a->log_fd, 2) < 0)
        _exit(126);
    execv(a->argv[0], a->argv);
    _exit(127);
}

int agx_ns_netns_pin(pid_t pid, const char *file, agx_error *err)
{
    char src[64];
    snprintf(src, sizeof src, "/proc/%d/ns/net", (int)pid);
    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot create '%s': %s", file, strerror(errno));
    close(fd);
    if (mount(src, file, NULL, MS_BIND, NULL) != 0)
        return agx_error_set(err, AGX_ERR_IO, "cannot bind %s to '%s': %s", src, file,
                             strerror(errno));
    return 0;
}

void agx_ns_netns_unpin(const char *file)
{
    umount2(file, MNT_DETACH); /* not mounted (EINVAL) or gone (ENOENT): nothing to undo */
}

int agx_ns_pasta_start(const agx_ns *ns, const char *netns, int host_port, int host_loopback,
                       const agx_ns_cgroups *cg, const char *log_path, pid_t *out,
                       agx_error *err)
{
    char tcp[64];
    snprintf(tcp, sizeof tcp, "127.0.0.1/%d:%d", host_port, AGX_NS_TCP_PORT);
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)ns->pasta;
    argv[n++] = "--foreground";
    argv[n++] = "--runas"; /* as nobody it could not enter a namespace owned by root */
    argv[n++] = "0:0";
    argv[n++] = "--quiet";
    argv[n++] = "--config-net";
    argv[n++] = "--netns";
    argv[n++] = (char *)netns;
    argv[n++] = "--netns-only";
    argv[n++] = "--tcp-ports";
    argv[n++] = tcp;
    argv[n++] = "--udp-ports";
    argv[n++] = "none";
    argv[n++] = "--tcp-ns";
    argv[n++] = "none";
    argv[n++] = "--udp-ns";
    argv[n++] = "none";
    if (!host_loopback)
        argv[n++] = "--no-map-gw";
    argv[n] = NULL;
    pasta_args a = {.argv = argv, .ncg = 0, .log_fd = -1, .null_fd = -1};
    int rc = 0;
    for (int i = 0; !rc && i < cg->n; i++) {
        char path[640];
        snprintf(path, sizeof path, "%s/cgroup.procs", cg->path[i]);
        if ((a.cg_fd[i] = open(path, O_WRONLY | O_CLOEXEC)) < 0)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        else
            a.ncg++;
    }
    if (!rc && ((a.log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0 ||
                (a.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0))
        rc = agx_error_set(err, AGX_ERR_IO, "cannot open '%s' for pasta: %s", log_path,
                           strerror(errno));
    void *stack = MAP_FAILED;
    if (!rc && (stack = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0)) == MAP_FAILED)
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "cannot map a stack to start pasta");
    else if (!rc)
        agx_ns_stack_ready(stack, 65536);
    if (!rc) {
        pid_t p = clone(pasta_child, (char *)stack + 65536, CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
        if (p < 0)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot start pasta: %s", strerror(errno));
        else
            *out = p;
    }
    if (stack != MAP_FAILED)
        munmap(stack, 65536);
    for (int i = 0; i < a.ncg; i++)
        close(a.cg_fd[i]);
    if (a.log_fd >= 0)
        close(a.log_fd);
    if (a.null_fd >= 0)
        close(a.null_fd);
    return rc;
}
