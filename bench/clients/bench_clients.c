/* bench_clients.c — bench/clients: what one host process pays to hold many runtime connections.
 * The parent creates enough `local` sandboxes (real agentix-server + worker processes), then for
 * each N runs, in fresh processes one after the other:
 *   - agentix: this program again (--child, clients_run.c): N connections through the public
 *     client API, each doing one demo::echo call and staying open;
 *   - node: the anchor (anchor_node.js): the same N connections and calls with the official
 *     socket.io-client in ONE node process;
 * and prints their JSON lines and a table with the ratios the targets are read from:
 *   engine threads (<= 4 at 10,000), RSS per held connection (<= 32 KiB and below node's),
 *   client CPU per connect (<= 0.5x node's), sequential connect p50 (<= node's), failures (0).
 * With --tls the sandboxes are reached through TLS-terminating proxies (tls_proxy.js, one per
 * sandbox; a test CA made with openssl) and both sides dial https.
 *
 * Usage: agentix-bench-clients --server PATH --modules DIR [--n 100,1000,10000]
 *          [--per-sandbox K] [--inflight W] [--seq S] [--api blocking|async] [--threads T]
 *          [--tls] [--no-node] [--node-anchor FILE] */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/deployment.h"
#include "bench/clients/clients.h"

#define MAX_NS 8
#define MAX_SANDBOXES 256
#define JSON_MAX 4096

typedef struct options {
    const char *server, *modules, *node_anchor, *api;
    long ns[MAX_NS];
    int nn;
    long per_sandbox, inflight, seq, threads;
    bool tls, node;
} options;

static void die(const char *what, const agx_error *err)
{
    fprintf(stderr, "agentix-bench-clients: %s%s%s\n", what, err ? ": " : "",
            err ? err->message : "");
    exit(1);
}

static long parse_long(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || *end || v < 1 || v > max ? -1 : v;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --server <agentix-server> --modules <dir with the demo module> "
            "[--n 100,1000,10000] [--per-sandbox K (1000)] [--inflight W (64)] [--seq S (200)] "
            "[--api blocking|async] [--threads T (engine I/O threads, 1)] [--tls] [--no-node] "
            "[--node-anchor FILE]\n",
            argv0);
    exit(2);
}

static void parse_ns(options *o, const char *s, const char *argv0)
{
    o->nn = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (o->nn == MAX_NS || (o->ns[o->nn] = parse_long(t, 1000000)) < 0)
            usage(argv0);
        o->nn++;
    }
    if (!o->nn)
        usage(argv0);
}

static void parse_args(int argc, char **argv, options *o)
{
    *o = (options){.node_anchor = AGX_CLIENTS_NODE_ANCHOR, .api = "blocking", .per_sandbox = 1000,
                   .inflight = 64, .seq = 200, .threads = 1, .node = true,
                   .ns = {100, 1000, 10000}, .nn = 3};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tls")) {
            o->tls = true;
            continue;
        }
        if (!strcmp(a, "--no-node")) {
            o->node = false;
            continue;
        }
        if (!v)
            usage(argv[0]);
        i++;
        if (!strcmp(a, "--server"))
            o->server = v;
        else if (!strcmp(a, "--modules"))
            o->modules = v;
        else if (!strcmp(a, "--node-anchor"))
            o->node_anchor = v;
        else if (!strcmp(a, "--api") && (!strcmp(v, "blocking") || !strcmp(v, "async")))
            o->api = v;
        else if (!strcmp(a, "--n"))
            parse_ns(o, v, argv[0]);
        else if (!strcmp(a, "--per-sandbox") && (o->per_sandbox = parse_long(v, 100000)) > 0)
            ;
        else if (!strcmp(a, "--inflight") && (o->inflight = parse_long(v, 100000)) > 0)
            ;
        else if (!strcmp(a, "--seq") && (o->seq = parse_long(v, 1000000)) > 0)
            ;
        else if (!strcmp(a, "--threads") && (o->threads = parse_long(v, 64)) > 0)
            ;
        else
            usage(argv[0]);
    }
    if (!o->server || !o->modules)
        usage(argv[0]);
    /* the servers run in their sandboxes' folders: absolute paths */
    static char server[4096], modules[4096];
    if (!realpath(o->server, server) || !realpath(o->modules, modules)) {
        fprintf(stderr, "agentix-bench-clients: %s or %s: %s\n", o->server, o->modules,
                strerror(errno));
        exit(2);
    }
    o->server = server;
    o->modules = modules;
}

/* ---- sandboxes ---- */

typedef struct fleet {
    agx_deployment *dep;
    agx_sandbox *sb[MAX_SANDBOXES];
    int n;
    char root[64];
    char targets[96]; /* the file the children read: one "url token" line per sandbox */
} fleet;

static fleet the_fleet; /* deleted at exit, also when a step dies */

static void fleet_delete(void)
{
    fleet *f = &the_fleet;
    for (int i = 0; i < f->n; i++) {
        agx_error err;
        agx_error_clear(&err);
        if (agx_deployment_delete(f->dep, agx_sandbox_id(f->sb[i]), &err))
            fprintf(stderr, "agentix-bench-clients: deleting %s: %s\n",
                    agx_sandbox_id(f->sb[i]), err.message);
        agx_sandbox_free(f->sb[i]);
    }
    f->n = 0;
    if (f->dep)
        agx_deployment_free(f->dep);
    f->dep = NULL;
    if (*f->targets)
        unlink(f->targets);
    if (*f->root)
        rmdir(f->root);
}

static void on_signal(int sig)
{
    (void)sig;
    exit(130); /* runs fleet_delete */
}

static void fleet_create(const options *o, int count)
{
    fleet *f = &the_fleet;
    snprintf(f->root, sizeof f->root, "/tmp/agx-bench-clients-XXXXXX");
    if (!mkdtemp(f->root))
        die("cannot create a temporary directory", NULL);
    atexit(fleet_delete);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    setenv("AGENTIX_LOCAL_ROOT", f->root, 1);
    setenv("AGENTIX_LOCAL_SERVER", o->server, 1);
    agx_error err;
    agx_error_clear(&err);
    if (agx_load_deployment("local", &f->dep, &err))
        die("loading the local backend", &err);
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    if (!cfg || agx_kv_set(agx_sandbox_config_env(cfg), "AGENTIX_MODULE_PATH", o->modules))
        die("out of memory", NULL);
    for (int i = 0; i < count; i++) {
        if (agx_deployment_create(f->dep, cfg, &f->sb[i], &err))
            die("creating a local sandbox", &err);
        f->n++;
    }
    agx_sandbox_config_free(cfg);
    snprintf(f->targets, sizeof f->targets, "%.63s/targets", f->root);
}

/* ---- one measurement in a fresh process ---- */

/* Starts argv (dies with the bench) with its stdout on a pipe; the read end in *out_fd. */
static pid_t spawn_stdout(char *const argv[], int *out_fd)
{
    int fds[2];
    if (pipe(fds))
        die("pipe failed", NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed", NULL);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "agentix-bench-clients: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    *out_fd = fds[0];
    return pid;
}

/* Runs argv with stdout captured; returns the last line that looks like a JSON object. */
static bool run_capture(char *const argv[], char *out, size_t cap)
{
    int fd;
    pid_t pid = spawn_stdout(argv, &fd);
    FILE *in = fdopen(fd, "r");
    char line[JSON_MAX];
    *out = '\0';
    while (in && fgets(line, sizeof line, in))
        if (line[0] == '{')
            snprintf(out, cap, "%s", line);
    if (in)
        fclose(in);
    int st = 0;
    waitpid(pid, &st, 0);
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        out[--n] = '\0';
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 && n;
}

static void write_targets(const fleet *f, const char *proxy_ports)
{
    FILE *t = fopen(f->targets, "w");
    if (!t)
        die("cannot write the targets file", NULL);
    for (int i = 0; i < f->n; i++) {
        const char *url = agx_sandbox_runtime_url(f->sb[i]);
        int port = 0;
        if (proxy_ports) { /* the i-th proxy port fronts sandbox i */
            const char *p = proxy_ports;
            for (int k = 0; k < i && p; k++)
                p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL;
            port = p ? atoi(p) : 0;
            if (port <= 0)
                die("the TLS proxy reported too few ports", NULL);
            fprintf(t, "https://localhost:%d %s\n", port, agx_sandbox_token(f->sb[i]));
        } else {
            fprintf(t, "%s %s\n", url, agx_sandbox_token(f->sb[i]));
        }
    }
    fclose(t);
}

/* ---- the optional TLS front ---- */

/* One node proxy (tls_proxy.js) per sandbox, so the fronts are not the bottleneck. */
typedef struct tls_front {
    pid_t pids[MAX_SANDBOXES];
    int n;
    char dir[128];
    char ca[160];
    char ports[2048];
} tls_front;

static pid_t proxy_start(const char *dir, const char *backend_url, char *port, size_t cap)
{
    int bport = 0, fd;
    sscanf(backend_url, "http://127.0.0.1:%d", &bport);
    char bp[16];
    snprintf(bp, sizeof bp, "%d", bport);
    char *const argv[] = {"node", AGX_CLIENTS_TLS_PROXY, (char *)dir, bp, NULL};
    pid_t pid = spawn_stdout(argv, &fd);
    FILE *in = fdopen(fd, "r");
    if (!in || !fgets(port, (int)cap, in))
        die("the TLS proxy did not start", NULL);
    fclose(in);
    port[strcspn(port, "\r\n")] = '\0';
    return pid;
}

static void tls_front_start(tls_front *tf, const fleet *f)
{
    snprintf(tf->dir, sizeof tf->dir, "%s/tls", f->root);
    if (mkdir(tf->dir, 0700))
        die("cannot create the TLS folder", NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s' 'IP:127.0.0.1,DNS:localhost'", AGX_CLIENTS_MAKE_CERTS,
             tf->dir);
    if (system(cmd) != 0)
        die("making the test CA failed (is openssl installed?)", NULL);
    snprintf(tf->ca, sizeof tf->ca, "%s/ca.crt", tf->dir);
    size_t len = 0;
    for (int i = 0; i < f->n; i++) {
        char port[16];
        tf->pids[tf->n++] = proxy_start(tf->dir, agx_sandbox_runtime_url(f->sb[i]), port,
                                        sizeof port);
        len += (size_t)snprintf(tf->ports + len, sizeof tf->ports - len, "%s%s", i ? "," : "",
                                port);
    }
}

static void tls_front_stop(tls_front *tf)
{
    for (int i = 0; i < tf->n; i++) {
        kill(tf->pids[i], SIGTERM);
        waitpid(tf->pids[i], NULL, 0);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tf->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "agentix-bench-clients: could not remove %s\n", tf->dir);
}

/* ---- the table ---- */

/* A number field of a JSON line (0 when absent). */
static double jnum(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtod(p + strlen(pat), NULL) : 0;
}

static void ratio(char *buf, size_t cap, double a, double b)
{
    if (a > 0 && b > 0)
        snprintf(buf, cap, "%.2fx", a / b);
    else
        snprintf(buf, cap, "-");
}

static void print_table(const options *o, char ours[][JSON_MAX], char node[][JSON_MAX])
{
    printf("\n%-8s %-28s %12s %12s %10s\n", "N", "measure", "agentix", "node", "ratio");
    static const struct {
        const char *key, *label;
    } rows[] = {
        {"threads", "threads (process)"},
        {"engine_threads", "engine I/O threads"},
        {"rss_per_conn_kib", "RSS per held conn (KiB)"},
        {"heap_per_conn_kib", "malloc'd per held conn (KiB)"},
        {"cpu_per_connect_us", "client CPU per connect (us)"},
        {"seq_connect_p50_us", "sequential connect p50 (us)"},
        {"seq_connect_p99_us", "sequential connect p99 (us)"},
        {"connect_p50_us", "concurrent connect p50 (us)"},
        {"connect_p99_us", "concurrent connect p99 (us)"},
        {"connect_wall_s", "connect all, wall (s)"},
        {"call_p50_us", "one call each, p50 (us)"},
        {"fds_per_conn", "fds per conn"},
        {"failures", "failures"},
    };
    for (int i = 0; i < o->nn; i++) {
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++) {
            double a = jnum(ours[i], rows[r].key), b = jnum(node[i], rows[r].key);
            char rb[32];
            ratio(rb, sizeof rb, a, b);
            printf("%-8ld %-28s %12.2f %12.2f %10s\n", o->ns[i], rows[r].label, a, b, rb);
        }
        double rss = jnum(ours[i], "rss_per_conn_kib"), nrss = jnum(node[i], "rss_per_conn_kib");
        double cpu = jnum(ours[i], "cpu_per_connect_us"), ncpu = jnum(node[i], "cpu_per_connect_us");
        double sp = jnum(ours[i], "seq_connect_p50_us"), nsp = jnum(node[i], "seq_connect_p50_us");
        double et = jnum(ours[i], "engine_threads");
        printf("%-8ld targets: threads<=4 %s, rss<=32KiB %s, rss<node %s, cpu<=0.5x node %s, "
               "seq p50<=node %s, failures %s\n\n",
               o->ns[i], et <= 4 ? "met" : "MISSED", rss <= 32 ? "met" : "MISSED",
               *node[i] ? (rss < nrss ? "met" : "MISSED") : "-",
               *node[i] ? (cpu <= 0.5 * ncpu ? "met" : "MISSED") : "-",
               *node[i] ? (sp <= nsp ? "met" : "MISSED") : "-",
               jnum(ours[i], "failures") == 0 && (!*node[i] || jnum(node[i], "failures") == 0)
                   ? "none"
                   : "SOME");
    }
}

/* ---- main ---- */

static void raise_nofile(long need)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)need;
    if (rl.rlim_cur >= want)
        return;
    if (rl.rlim_max < want) {
        rl.rlim_max = want; /* root may raise the hard limit up to fs.nr_open */
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        fprintf(stderr, "agentix-bench-clients: cannot raise RLIMIT_NOFILE to %ld: %s\n", need,
                strerror(errno));
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--child"))
        return agx_clients_child(argc, argv);
    options o;
    parse_args(argc, argv, &o);
    long maxn = 0;
    for (int i = 0; i < o.nn; i++)
        maxn = o.ns[i] > maxn ? o.ns[i] : maxn;
    long nsb = (maxn + o.per_sandbox - 1) / o.per_sandbox;
    if (nsb > MAX_SANDBOXES)
        die("too many sandboxes: raise --per-sandbox", NULL);
    /* children (servers, clients, node, the proxy) inherit it: each side holds maxn sockets */
    raise_nofile(2 * maxn + 4096);
    signal(SIGPIPE, SIG_IGN);
    fleet_create(&o, (int)nsb);
    tls_front tf = {0};
    if (o.tls)
        tls_front_start(&tf, &the_fleet);
    write_targets(&the_fleet, o.tls ? tf.ports : NULL);

    static char ours[MAX_NS][JSON_MAX], node[MAX_NS][JSON_MAX];
    int failed = 0;
    for (int i = 0; i < o.nn; i++) {
        char n[24], inflight[24], seq[24], threads[24];
        snprintf(n, sizeof n, "%ld", o.ns[i]);
        snprintf(inflight, sizeof inflight, "%ld", o.inflight);
        snprintf(seq, sizeof seq, "%ld", o.seq);
        snprintf(threads, sizeof threads, "%ld", o.threads);
        char self[4096];
        ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
        if (sl <= 0)
            die("cannot find this program", NULL);
        self[sl] = '\0';
        char *cargv[] = {self, "--child", the_fleet.targets, n, inflight, seq, (char *)o.api,
                         threads, o.tls ? tf.ca : "-", NULL};
        if (!run_capture(cargv, ours[i], JSON_MAX)) {
            fprintf(stderr, "agentix-bench-clients: the agentix run for N=%ld failed\n", o.ns[i]);
            failed = 1;
        }
        printf("%s\n", ours[i]);
        fflush(stdout);
        if (o.node) {
            char *nargv[] = {"node", "--expose-gc", (char *)o.node_anchor, the_fleet.targets, n,
                             inflight, seq, o.tls ? tf.ca : "-", NULL};
            if (!run_capture(nargv, node[i], JSON_MAX)) {
                fprintf(stderr, "agentix-bench-clients: the node anchor for N=%ld failed\n",
                        o.ns[i]);
                failed = 1;
            }
            printf("%s\n", node[i]);
            fflush(stdout);
        }
    }
    print_table(&o, ours, node);
    if (o.tls)
        tls_front_stop(&tf);
    return failed;
}
