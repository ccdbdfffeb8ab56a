/* bench_ns_launch.c — the ns backend's launcher against bubblewrap, paired: each round runs
 * `sh -c 'echo hi'` in a fresh isolated sandbox on the same rootfs (the task image's layer from
 * the ns layer cache) once through each, in alternating order, and times start → the sandbox's
 * exit. (Which launcher the ns backend uses is decided by these figures and by robustness:
 * backends/ns/README.md.)
 *
 *   ns     what a create does before the runtime: sandbox folder, cgroups (pids limit), clone into
 *          mount/PID/IPC/UTS/net/cgroup namespaces, overlayfs root, bundle and socket folder
 *          mounts, pivot_root, /proc, /dev, hostname, lo up, user namespace with identity maps,
 *          seccomp, capability drop, exec of agentix-ns-init → sh. Teardown (cgroups removed,
 *          folder removed) is timed on its own.
 *   bwrap  bwrap --unshare-all --die-with-parent --ro-bind ROOTFS / --proc /proc --dev /dev
 *          --tmpfs /tmp sh -c 'echo hi' (no overlay, no cgroups, no seccomp: less work).
 *
 * Prints each contender's p50/p95/mean, the p50 ratio and the median of the per-round ratios,
 * and one JSON line. Needs root, the ns backend's cgroups, bwrap (Debian bubblewrap), dockerd for
 * the image (exported once into AGENTIX_NS_ROOT's cache). No thresholds.
 * Usage: bench-ns-launch [--image I] [--n N] [--bwrap PATH] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backends/ns/ns_internal.h"

typedef struct stats {
    double p50, p95, mean;
} stats;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static stats summarize(const double *v, size_t n)
{
    double *s = malloc(n * sizeof *s);
    if (!s)
        exit(1);
    memcpy(s, v, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_double);
    stats st = {.p50 = s[(n - 1) / 2], .p95 = s[(size_t)(0.95 * (double)(n - 1) + 0.5)]};
    for (size_t i = 0; i < n; i++)
        st.mean += s[i] / (double)n;
    free(s);
    return st;
}

static void die(const char *what, const agx_error *err)
{
    fprintf(stderr, "bench-ns-launch: %s: %s\n  %s\n", what, err->message, err->detail);
    exit(1);
}

static double now_ms(void) { return (double)agx_clock_us() / 1e3; }

/* ---- the ns launcher ---- */

typedef struct ns_env {
    agx_ns ns;
    agx_ns_layers layers;
    char bundle[300];
} ns_env;

static double run_ns(ns_env *e, int round, double *teardown_ms)
{
    char dir[320], p[4][400], opts[2048];
    agx_error err;
    snprintf(dir, sizeof dir, "%.200s/sandboxes/ns-bench%06d", e->ns.root, round);
    static const char *const sub[] = {"upper", "work", "rootfs", "run"};
    agx_ns_cgroups cg;
    agx_ns_opts o = {.pids = 256};
    char id[32];
    snprintf(id, sizeof id, "ns-bench%06d", round);
    double t0 = now_ms();
    if (agx_fs_mkdirs(dir, &err) != 0)
        die("mkdir", &err);
    for (int i = 0; i < 4; i++) {
        snprintf(p[i], sizeof p[i], "%s/%s", dir, sub[i]);
        if (mkdir(p[i], 0755) != 0)
            exit(1);
    }
    double tm = now_ms();
    agx_ns_cgroup_plan(e->ns.cg, id, &cg);
    if (agx_ns_cgroup_create(e->ns.cg, &cg, &o, &err) != 0)
        die("cgroups", &err);
    double tc = now_ms();
    snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", e->layers.dir[0], p[0], p[1]);
    char log[400];
    snprintf(log, sizeof log, "%s/out", dir);
    int fd = open(log, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    char *argv[] = {"agentix-ns-init", "/bin/sh", "-c", "echo hi", NULL};
    char *envp[] = {"PATH=/bin:/usr/bin", NULL};
    agx_ns_launch l = {.ns = &e->ns, .rootfs = p[2], .overlay_opts = opts,
                       .bundle_dir = e->bundle, .bundle_prefix = "/opt/agentix", .run_dir = p[3],
                       .hostname = id, .cg = &cg, .log_fd = fd, .argv = argv, .envp = envp};
    agx_ns_child c;
    if (agx_ns_launch_start(&l, &c, &err) != 0)
        die("launch", &err);
    double ts = now_ms();
    if (agx_ns_launch_release(&e->ns, &c, agx_clock_ms() + 30000, &err) != 0)
        die("launch", &err);
    double tr = now_ms();
    int status;
    if (waitpid(c.pid, &status, 0) != c.pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench-ns-launch: the ns sandbox failed (status %d)\n", status);
        exit(1);
    }
    double t1 = now_ms();
    if (getenv("NS_BENCH_PHASES"))
        fprintf(stderr, "mkdir %.1f cgroup %.1f start %.1f release %.1f run %.1f\n", tm - t0,
                tc - tm, ts - tc, tr - ts, t1 - tr);
    close(fd);
    char *out = NULL;
    if (agx_file_read(log, 64, 1, &out, NULL, &err) != 0 || strcmp(out, "hi\n") != 0) {
        fprintf(stderr, "bench-ns-launch: the ns sandbox printed '%s'\n", out ? out : "?");
        exit(1);
    }
    free(out);
    if (agx_ns_cgroup_destroy(&cg, &err) != 0 || agx_fs_rmtree(dir, &err) != 0)
        die("teardown", &err);
    *teardown_ms = now_ms() - t1;
    return t1 - t0;
}

/* ---- bubblewrap ---- */

static double run_bwrap(const char *bwrap, const char *rootfs)
{
    double t0 = now_ms();
    int pfd[2];
    if (pipe(pfd) != 0)
        exit(1);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        execl(bwrap, bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", rootfs, "/",
              "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/sh", "-c", "echo hi",
              (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char buf[16] = "";
    ssize_t n = read(pfd[0], buf, sizeof buf - 1);
    close(pfd[0]);
    int status;
    waitpid(pid, &status, 0);
    double t = now_ms() - t0;
    if (n != 3 || strcmp(buf, "hi\n") != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "bench-ns-launch: bwrap failed (status %d, output '%s')\n", status, buf);
        exit(1);
    }
    return t;
}

int main(int argc, char **argv)
{
    const char *image = "agx-test-busybox:1", *bwrap = "/usr/bin/bwrap";
    int n = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--image") == 0)
            image = argv[i + 1];
        else if (strcmp(argv[i], "--n") == 0)
            n = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--bwrap") == 0)
            bwrap = argv[i + 1];
    }
    if (n < 1 || n > 100000 || access(bwrap, X_OK) != 0) {
        fprintf(stderr, "usage: bench-ns-launch [--image I] [--n N] [--bwrap PATH] (bwrap: %s)\n",
                bwrap);
        return 2;
    }
    static ns_env e;
    agx_error err;
    if (agx_ns_config_load(&e.ns, &err) || agx_ns_cgroup_detect(&e.ns.cg, &err) ||
        agx_ns_seccomp_build(&e.ns.seccomp, &err))
        die("ns setup", &err);
    pthread_mutex_init(&e.ns.mu, NULL);
    if (agx_ns_image_resolve(&e.ns, image, &e.layers, &err) != 0)
        die("image", &err);
    if (e.layers.n != 1) {
        fprintf(stderr, "bench-ns-launch: %s has %d layers; bwrap binds one rootfs (use a "
                "single-layer image)\n", image, e.layers.n);
        return 2;
    }
    snprintf(e.bundle, sizeof e.bundle, "%s/bench-bundle", e.ns.root);
    if (agx_fs_mkdirs(e.bundle, &err) != 0)
        die("bundle folder", &err);
    double *a = calloc((size_t)n, sizeof *a), *b = calloc((size_t)n, sizeof *b);
    double *td = calloc((size_t)n, sizeof *td), *ratio = calloc((size_t)n, sizeof *ratio);
    if (!a || !b || !td || !ratio)
        return 1;
    run_ns(&e, 999999, &td[0]); /* warm-up of both: page cache, first mounts */
    run_bwrap(bwrap, e.layers.dir[0]);
    for (int i = 0; i < n; i++) {
        if (i % 2 == 0) {
            a[i] = run_ns(&e, i, &td[i]);
            b[i] = run_bwrap(bwrap, e.layers.dir[0]);
        } else {
            b[i] = run_bwrap(bwrap, e.layers.dir[0]);
            a[i] = run_ns(&e, i, &td[i]);
        }
        ratio[i] = a[i] / b[i];
    }
    stats sa = summarize(a, (size_t)n), sb = summarize(b, (size_t)n);
    stats st = summarize(td, (size_t)n), sr = summarize(ratio, (size_t)n);
    printf("launch of sh -c 'echo hi' on %s, %d paired rounds (start -> exit, ms)\n", image, n);
    printf("%-34s %8s %8s %8s\n", "", "p50", "p95", "mean");
    printf("%-34s %8.1f %8.1f %8.1f\n", "ns launcher (own clone code)", sa.p50, sa.p95, sa.mean);
    printf("%-34s %8.1f %8.1f %8.1f\n", "bwrap --unshare-all", sb.p50, sb.p95, sb.mean);
    printf("%-34s %8.1f %8.1f %8.1f\n", "ns teardown (cgroups, folder)", st.p50, st.p95, st.mean);
    printf("ns/bwrap: p50 ratio %.2f, median of per-round ratios %.2f\n", sa.p50 / sb.p50, sr.p50);
    printf("{\"bench\":\"ns-launch\",\"image\":\"%s\",\"n\":%d,\"ns\":{\"p50_ms\":%.2f,"
           "\"p95_ms\":%.2f,\"mean_ms\":%.2f,\"teardown_p50_ms\":%.2f},\"bwrap\":{\"p50_ms\":%.2f,"
           "\"p95_ms\":%.2f,\"mean_ms\":%.2f},\"p50_ratio\":%.3f,\"paired_ratio_median\":%.3f}\n",
           image, n, sa.p50, sa.p95, sa.mean, st.p50, sb.p50, sb.p95, sb.mean, sa.p50 / sb.p50,
           sr.p50);
    agx_ns_layers_clear(&e.layers);
    agx_ns_image_memo_free(&e.ns);
    agx_ns_seccomp_free(&e.ns.seccomp);
    agx_ns_cgroup_info_free(e.ns.cg);
    free(a);
    free(b);
    free(td);
    free(ratio);
    return 0;
}
